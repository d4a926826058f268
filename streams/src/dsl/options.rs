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
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use freshet_streams::{Consumed, Json, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    /// struct Order { item: String, qty: i64 }
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream_with::<String, Order>(&["orders"], Consumed::with(Utf8, Json::default()))
    ///     .map_values(|o| o.qty)
    ///     .to("quantities");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// // The topic holds JSON values.
    /// let orders = driver.input_with::<String, Order>("orders", Arc::new(Utf8), Arc::new(Json::default()));
    /// orders.pipe("ann".into(), Order { item: "pen".into(), qty: 3 }, 0)?;
    /// assert_eq!(driver.output::<String, i64>("quantities").read_values()?, vec![3]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Consumed {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Names the source node.
    ///
    /// ```
    /// # use freshet_streams::{Consumed, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// let orders = builder.stream_with::<String, String>(&["orders"], Consumed::named("orders-source"));
    /// assert_eq!(orders.node_name(), "orders-source");
    /// orders.to("copy");
    /// let topology = builder.build()?;
    /// assert!(topology.describe().to_string().contains("Source: orders-source (topics: [orders])"));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Consumed {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Takes event time from `extractor` instead of the record timestamp.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Consumed, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// // The value is the event time; records keep it downstream.
    /// let consumed = Consumed::with(Utf8, BigEndian).with_timestamp_extractor(|r: &freshet_streams::Record<String, i64>, _| r.value);
    /// builder.stream_with::<String, i64>(&["events"], consumed).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("events").pipe("k".into(), 1_234, 5)?;
    /// assert_eq!(driver.output::<String, i64>("out").read_records()?[0].timestamp, 1_234);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_timestamp_extractor(
        mut self,
        extractor: impl Fn(&Record<K, V>, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.extractor = Some(Arc::new(extractor));
        self
    }

    /// Where to start without a committed offset.
    ///
    /// ```
    /// # use freshet_streams::{Consumed, OffsetReset, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream_with::<String, String>(&["clicks"], Consumed::default().with_offset_reset(OffsetReset::Latest))
    ///     .to("copy");
    /// builder.stream::<String, String>("orders").to("copy2");
    /// let topology = builder.build()?;
    /// // The runtime reads it back per source topic; `None`: the application's default.
    /// assert_eq!(topology.offset_reset("clicks", "my-app"), Some(OffsetReset::Latest));
    /// assert_eq!(topology.offset_reset("orders", "my-app"), None);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.offset_reset = Some(reset);
        self
    }

    /// Names the source node.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Consumed, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let scores = builder.stream_with::<String, i32>(&["scores"], Consumed::with(Utf8, BigEndian).with_name("scores-in"));
    /// assert_eq!(scores.node_name(), "scores-in");
    /// scores.filter(|_, s| *s > 10).to("high-scores");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i32>("scores").pipe_all([("a".into(), 5, 0), ("b".into(), 50, 1)])?;
    /// assert_eq!(driver.output::<String, i32>("high-scores").read_values()?, vec![50]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{Json, Produced, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .map_values(|v| (v.len() as i64, v.to_uppercase()))
    ///     .to_with("out", Produced::with(Utf8, Json::default()));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "ab".into(), 0)?;
    /// // The bytes on the topic: a UTF-8 key and a JSON value.
    /// let raw = driver.output::<String, String>("out").read_raw();
    /// assert_eq!(raw[0].key.as_deref(), Some(&b"k"[..]));
    /// assert_eq!(raw[0].value.as_deref(), Some(&br#"[2,"AB"]"#[..]));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Produced {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Names the sink node.
    ///
    /// ```
    /// # use freshet_streams::{Produced, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").to_with("out", Produced::named("to-out"));
    /// let topology = builder.build()?;
    /// assert!(topology.describe().to_string().contains("Sink: to-out (topic: out)"));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Produced {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Chooses partitions with `partitioner` (`None` from it: the default partitioner).
    ///
    /// ```
    /// # use freshet_streams::{Produced, StreamsBuilder, testing::{DriverConfig, TopologyTestDriver}};
    /// let builder = StreamsBuilder::new();
    /// // Even values to partition 0, odd ones to partition 1.
    /// let by_parity = |_topic: &str, _key: &String, value: &i64, partitions: u32| Some((*value % 2) as u32 % partitions);
    /// builder.stream::<String, i64>("in").to_with("out", Produced::default().with_partitioner(by_parity));
    /// let config = DriverConfig { partitions: 2, ..Default::default() };
    /// let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    /// driver.input::<String, i64>("in").pipe_all([("a".into(), 4, 0), ("a".into(), 7, 1)])?;
    /// let partitions: Vec<_> = driver.output::<String, i64>("out").read_raw().iter().map(|r| r.partition).collect();
    /// assert_eq!(partitions, vec![Some(0), Some(1)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_partitioner(mut self, partitioner: impl StreamPartitioner<K, V> + 'static) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }

    /// Names the sink node.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Produced, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .map_values(|v| v.len() as i32)
    ///     .to_with("lengths", Produced::with(Utf8, BigEndian).with_name("lengths-sink"));
    /// let topology = builder.build()?;
    /// assert!(topology.describe().to_string().contains("Sink: lengths-sink (topic: lengths)"));
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "abc".into(), 0)?;
    /// assert_eq!(driver.output::<String, i32>("lengths").read_values()?, vec![3]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// The repartition topic needs serdes; after `map` none is carried, so a value type
    /// without a registered default needs one here:
    ///
    /// ```
    /// # use freshet_streams::{Grouped, Json, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct View { user: String, page: String }
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("views")
    ///     .map(|user, page| (page.clone(), View { user: user.clone(), page: page.clone() }))
    ///     .group_by_key_with(Grouped::with(Utf8, Json::<View>::default()))
    ///     .count()
    ///     .to_stream()
    ///     .to("views-per-page");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let views = driver.input::<String, String>("views");
    /// views.pipe_all([("ann".into(), "/a".into(), 0), ("bob".into(), "/a".into(), 1)])?;
    /// let out = driver.output::<String, i64>("views-per-page").read_key_values()?;
    /// assert_eq!(out, vec![("/a".into(), 1), ("/a".into(), 2)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Grouped {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            name: None,
        }
    }

    /// Names the grouping (and so its repartition topic).
    ///
    /// ```
    /// # use freshet_streams::{Grouped, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("views")
    ///     .group_by_with(|_user, page| page.clone(), Grouped::named("by-page"))
    ///     .count();
    /// let topology = builder.build()?;
    /// let described = topology.describe().to_string();
    /// assert!(described.contains("Sink: by-page-repartition-sink (topic: by-page-repartition)"), "{described}");
    /// assert!(described.contains("Source: by-page-repartition-source (topics: [by-page-repartition])"));
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("views").pipe("ann".into(), "/a".into(), 0)?;
    /// // Internal topics are prefixed with the application id.
    /// assert!(driver.produced_topic_names().contains("test-driver-app-by-page-repartition"));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Grouped {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Names the grouping.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Grouped, StreamsBuilder, Utf8};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i32>("scores")
    ///     .group_by_with(|player, _| player.to_lowercase(), Grouped::with(Utf8, BigEndian).with_name("by-player"))
    ///     .reduce(|a, b| a + b);
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "by-player-repartition");
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{Json, Repartitioned, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("amounts")
    ///     .select_key(|_, amount| amount.to_string())
    ///     // The repartition topic holds JSON values instead of the stream's big-endian ones.
    ///     .repartition_with(Repartitioned::with(Utf8, Json::default()).with_name("by-amount"))
    ///     .map_values(|amount| amount * 2)
    ///     .to("doubled");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("amounts").pipe("k".into(), 42, 0)?;
    /// let topic = driver.output::<String, String>("test-driver-app-by-amount-repartition").read_raw();
    /// assert_eq!(topic[0].value.as_deref(), Some(&b"42"[..]));
    /// assert_eq!(driver.output::<String, i64>("doubled").read_key_values()?, vec![("42".into(), 84)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Repartitioned {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Names the repartition topic (`<application.id>-<name>-repartition`).
    ///
    /// ```
    /// # use freshet_streams::{Repartitioned, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .select_key(|_, v| v.clone())
    ///     .repartition_with(Repartitioned::named("by-value"))
    ///     .to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert!(driver.produced_topic_names().contains("test-driver-app-by-value-repartition"));
    /// assert_eq!(driver.output::<String, String>("out").read_key_values()?, vec![("v".into(), "v".into())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Repartitioned {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Names the repartition topic.
    ///
    /// ```
    /// # use freshet_streams::{Repartitioned, StreamsBuilder, Utf8};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .repartition_with(Repartitioned::with(Utf8, Utf8).with_name("reshuffle"))
    ///     .to("out");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "reshuffle-repartition");
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The repartition topic's partition count (default: the max of the upstream sources).
    ///
    /// ```
    /// # use freshet_streams::{PartitionCount, Repartitioned, StreamsBuilder, TopicName};
    /// let builder = StreamsBuilder::new();
    /// let input = builder.stream::<String, String>("in");
    /// input.repartition_with(Repartitioned::named("wide").with_number_of_partitions(12)).to("out");
    /// input.repartition_with(Repartitioned::named("same")).to("out2");
    /// let topology = builder.build()?;
    /// let topics = topology.internal_topics();
    /// assert_eq!(topics[0].partitions, PartitionCount::Fixed(12));
    /// assert_eq!(topics[1].partitions, PartitionCount::MaxOf(vec![TopicName::External("in".into())]));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_number_of_partitions(mut self, partitions: u32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Chooses partitions with `partitioner`.
    ///
    /// ```
    /// # use freshet_streams::{Repartitioned, StreamsBuilder, testing::{DriverConfig, TopologyTestDriver}};
    /// let builder = StreamsBuilder::new();
    /// let last = |_topic: &str, _key: &String, _value: &String, partitions: u32| Some(partitions - 1);
    /// builder
    ///     .stream::<String, String>("in")
    ///     .repartition_with(Repartitioned::named("to-last").with_partitioner(last))
    ///     .to("out");
    /// let config = DriverConfig { partitions: 3, ..Default::default() };
    /// let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    /// driver.input::<String, String>("in").pipe_record(freshet_streams::Record::new("k".into(), "v".into(), 0), Some(0))?;
    /// let written = driver.output::<String, String>("test-driver-app-to-last-repartition").read_raw();
    /// assert_eq!(written[0].partition, Some(2));
    /// // The task of partition 2 read it back.
    /// assert_eq!(driver.metrics(2).map(|m| m.records_in), Some(1));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").to_table_with(Materialized::named("latest"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe_all([("a".into(), "1".into(), 0), ("a".into(), "2".into(), 1)])?;
    /// let latest = driver.key_value_store::<String, String>("latest")?;
    /// assert_eq!(latest.get(&"a".into())?, Some(("2".to_string(), 1)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Materialized {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// A store with these serdes (and a generated name).
    ///
    /// ```
    /// # use freshet_streams::{Json, Materialized, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Stats { count: i64, total: i64 }
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("payments")
    ///     .group_by_key()
    ///     .aggregate_with(
    ///         || Stats { count: 0, total: 0 },
    ///         |_, amount, s| Stats { count: s.count + 1, total: s.total + amount },
    ///         Materialized::with(Utf8, Json::default()),
    ///     )
    ///     .to_stream()
    ///     .to("stats");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("payments").pipe_all([("ann".into(), 3, 0), ("ann".into(), 4, 1)])?;
    /// // The store's value serde also writes the results downstream.
    /// let raw = driver.output::<String, String>("stats").read_raw();
    /// assert_eq!(raw[1].value.as_deref(), Some(&br#"{"count":2,"total":7}"#[..]));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with(keys: impl Serde<K> + 'static, values: impl Serde<V> + 'static) -> Self {
        Materialized {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            ..Default::default()
        }
    }

    /// Sets the key serde.
    ///
    /// ```
    /// # use freshet_streams::{Json, Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .group_by_key()
    ///     .count_with(Materialized::named("counts").with_key_serde(Json::<String>::default()));
    /// let topology = builder.build()?;
    /// // The store writes its keys as JSON strings.
    /// let store = topology.stores().find(|s| s.name() == "counts").expect("declared");
    /// let keys = store.key_serde::<String>().expect("a String serde");
    /// assert_eq!(keys.serialize(&"ann".to_string()).ok(), Some(br#""ann""#.to_vec()));
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("in").pipe("ann".into(), "x".into(), 0)?;
    /// assert_eq!(driver.key_value_store::<String, i64>("counts")?.get(&"ann".into())?, Some((1, 0)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_key_serde(mut self, keys: impl Serde<K> + 'static) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Sets the value serde.
    ///
    /// ```
    /// # use freshet_streams::{Json, Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("temperatures")
    ///     .group_by_key()
    ///     .aggregate_with(
    ///         || (i64::MAX, i64::MIN),
    ///         |_, t, (lo, hi)| (lo.min(*t), hi.max(*t)),
    ///         Materialized::named("range").with_value_serde(Json::<(i64, i64)>::default()),
    ///     );
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("temperatures").pipe_all([("oslo".into(), 12, 0), ("oslo".into(), -3, 1)])?;
    /// let range = driver.key_value_store::<String, (i64, i64)>("range")?;
    /// assert_eq!(range.get(&"oslo".into())?, Some(((-3, 12), 1)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_value_serde(mut self, values: impl Serde<V> + 'static) -> Self {
        self.values = Some(Arc::new(values));
        self
    }

    /// Forwards every update instead of caching them until commit.
    ///
    /// The driver commits after each input record, so the cache merges only the updates
    /// one input record makes; here one line makes two updates of one key:
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("lines")
    ///     .flat_map_values(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
    ///     .group_by_key()
    ///     .count_with(Materialized::named("words-per-key").with_caching_disabled())
    ///     .to_stream()
    ///     .to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("lines").pipe("k".into(), "a b".into(), 0)?;
    /// assert_eq!(driver.output::<String, i64>("counts").read_values()?, vec![1, 2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }

    /// Caches updates (the default).
    ///
    /// Updates of a key between two commits go downstream as one (compare
    /// [`with_caching_disabled`](Self::with_caching_disabled)):
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("lines")
    ///     .flat_map_values(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
    ///     .group_by_key()
    ///     .count_with(Materialized::named("words-per-key").with_caching_enabled())
    ///     .to_stream()
    ///     .to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("lines").pipe("k".into(), "a b".into(), 0)?;
    /// assert_eq!(driver.output::<String, i64>("counts").read_values()?, vec![2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_caching_enabled(mut self) -> Self {
        self.caching = true;
        self
    }

    /// No changelog: the store is rebuilt from nothing after a loss of local state.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// let input = builder.stream::<String, String>("in");
    /// input.group_by_key().count_with(Materialized::named("scratch").with_logging_disabled());
    /// input.group_by_key().count_with(Materialized::named("durable"));
    /// let topology = builder.build()?;
    /// let logged = |name: &str| topology.stores().find(|s| s.name() == name).map(|s| s.logging_enabled());
    /// assert_eq!(logged("scratch"), Some(false));
    /// assert_eq!(logged("durable"), Some(true));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// How long a window or session store keeps windows (at least size + grace).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// // Counts per 10 ms window; which windows does the store still hold at stream time 100?
    /// let windows_kept = |materialized: Materialized<String, i64>| -> freshet_streams::Result<Vec<i64>> {
    ///     let builder = StreamsBuilder::new();
    ///     builder
    ///         .stream::<String, String>("clicks")
    ///         .group_by_key()
    ///         .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///         .count_with(materialized);
    ///     let driver = TopologyTestDriver::new(builder.build()?)?;
    ///     let clicks = driver.input::<String, String>("clicks");
    ///     clicks.pipe_all([("ann".into(), "/a".into(), 5), ("ann".into(), "/b".into(), 100)])?;
    ///     let store = driver.window_store::<String, i64>("clicks")?;
    ///     Ok(store.fetch(&"ann".into(), 0, 100)?.into_iter().map(|(start, _, _)| start).collect())
    /// };
    /// // By default a window is kept for size + grace only.
    /// assert_eq!(windows_kept(Materialized::named("clicks"))?, vec![100]);
    /// let hour = Materialized::named("clicks").with_retention(Duration::from_secs(3600));
    /// assert_eq!(windows_kept(hour)?, vec![0, 100]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
