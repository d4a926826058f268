//! The option values DSL methods take (Kafka's `Consumed`, `Produced`, `Grouped`,
//! `Materialized`, `Repartitioned`): serdes, names and settings, each optional.

use std::sync::Arc;
use std::time::Duration;

use crate::partitioner::StreamPartitioner;
use crate::record::Record;
use crate::serde::{Serde, SerdeRef};

/// Where a source starts when its application has no committed offset (Kafka's
/// `auto.offset.reset` per source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// From the first offset.
    Earliest,
    /// From the end: only new records.
    Latest,
}

/// A timestamp extractor: the record (with its embedded timestamp) and the partition time
/// give the event time (Kafka's `TimestampExtractor`). A negative result is an invalid
/// timestamp, handled by the deserialization policy.
pub type TimestampExtractor<K, V> = Arc<dyn Fn(&Record<K, V>, i64) -> i64 + Send + Sync>;

/// How a source reads its topic: serdes, timestamp extractor, offset reset, node name.
///
/// ```
/// use freshet_streams::{Consumed, OffsetReset, Utf8, BigEndian};
/// let c = Consumed::<String, i64>::with(Utf8, BigEndian)
///     .with_offset_reset(OffsetReset::Earliest)
///     .with_timestamp_extractor(|record, _partition_time| record.value);
/// # let _ = c;
/// ```
pub struct Consumed<K, V> {
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) extractor: Option<TimestampExtractor<K, V>>,
    pub(crate) offset_reset: Option<OffsetReset>,
    pub(crate) name: Option<String>,
}

impl<K, V> std::fmt::Debug for Consumed<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumed")
            .field("name", &self.name)
            .field("offset_reset", &self.offset_reset)
            .finish()
    }
}

impl<K, V> Default for Consumed<K, V> {
    fn default() -> Self {
        Consumed {
            keys: None,
            values: None,
            extractor: None,
            offset_reset: None,
            name: None,
        }
    }
}

impl<K: 'static, V: 'static> Consumed<K, V> {
    /// Reads with these serdes.
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Consumed {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Names the source node.
    pub fn named(name: impl Into<String>) -> Self {
        Consumed {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Takes event time from `extractor` instead of the record timestamp.
    pub fn with_timestamp_extractor(
        mut self,
        extractor: impl Fn(&Record<K, V>, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.extractor = Some(Arc::new(extractor));
        self
    }

    /// Where to start without a committed offset.
    pub fn with_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.offset_reset = Some(reset);
        self
    }

    /// Names the source node.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a sink writes: serdes, partitioner, node name.
pub struct Produced<K, V> {
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
    pub(crate) name: Option<String>,
}

impl<K, V> std::fmt::Debug for Produced<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Produced")
            .field("name", &self.name)
            .finish()
    }
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Produced {
            keys: None,
            values: None,
            partitioner: None,
            name: None,
        }
    }
}

impl<K: 'static, V: 'static> Produced<K, V> {
    /// Writes with these serdes.
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Produced {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Names the sink node.
    pub fn named(name: impl Into<String>) -> Self {
        Produced {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Chooses partitions with `partitioner` (`None` from it: the default partitioner).
    pub fn with_partitioner(mut self, partitioner: impl StreamPartitioner<K, V> + 'static) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }

    /// Names the sink node.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a grouping repartitions: serdes and the repartition topic's name
/// (`<application.id>-<name>-repartition`).
pub struct Grouped<K, V> {
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> std::fmt::Debug for Grouped<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grouped").field("name", &self.name).finish()
    }
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped {
            keys: None,
            values: None,
            name: None,
        }
    }
}

impl<K: 'static, V: 'static> Grouped<K, V> {
    /// Groups with these serdes.
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Grouped {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            name: None,
        }
    }

    /// Names the grouping (and so its repartition topic).
    pub fn named(name: impl Into<String>) -> Self {
        Grouped {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Names the grouping.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How an explicit `repartition()` writes: serdes, name, partition count, partitioner.
pub struct Repartitioned<K, V> {
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
    pub(crate) partitions: Option<u32>,
    pub(crate) partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
}

impl<K, V> std::fmt::Debug for Repartitioned<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repartitioned")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Repartitioned {
            keys: None,
            values: None,
            name: None,
            partitions: None,
            partitioner: None,
        }
    }
}

impl<K: 'static, V: 'static> Repartitioned<K, V> {
    /// Repartitions with these serdes.
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Repartitioned {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Names the repartition topic (`<application.id>-<name>-repartition`).
    pub fn named(name: impl Into<String>) -> Self {
        Repartitioned {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Names the repartition topic.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The repartition topic's partition count (default: the max of the upstream sources).
    pub fn with_number_of_partitions(mut self, partitions: u32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Chooses partitions with `partitioner`.
    pub fn with_partitioner(mut self, partitioner: impl StreamPartitioner<K, V> + 'static) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }
}

/// How a table or aggregation keeps its store: name, serdes, logging, caching, retention.
pub struct Materialized<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) logging: bool,
    pub(crate) caching: bool,
    pub(crate) retention: Option<Duration>,
}

impl<K, V> std::fmt::Debug for Materialized<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materialized")
            .field("name", &self.name)
            .field("logging", &self.logging)
            .field("caching", &self.caching)
            .field("retention", &self.retention)
            .finish()
    }
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Materialized {
            name: None,
            keys: None,
            values: None,
            logging: true,
            caching: true,
            retention: None,
        }
    }
}

impl<K: 'static, V: 'static> Materialized<K, V> {
    /// A store named `name` (queryable by that name; its changelog is
    /// `<application.id>-<name>-changelog`).
    pub fn named(name: impl Into<String>) -> Self {
        Materialized {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// A store with these serdes (and a generated name).
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Materialized {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Sets the key serde.
    pub fn with_key_serde(mut self, keys: impl Serde<K> + 'static) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Sets the value serde.
    pub fn with_value_serde(mut self, values: impl Serde<V> + 'static) -> Self {
        self.values = Some(Arc::new(values));
        self
    }

    /// Forwards every update instead of caching them until commit.
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }

    /// Caches updates (the default).
    pub fn with_caching_enabled(mut self) -> Self {
        self.caching = true;
        self
    }

    /// No changelog: the store is rebuilt from nothing after a loss of local state.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// How long a window or session store keeps windows (at least size + grace).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// These options with `values` as the value serde unless one was given (an
    /// aggregation's default).
    pub(crate) fn with_default_values(mut self, values: Option<SerdeRef<V>>) -> Self {
        self.values = self.values.or(values);
        self
    }
}
