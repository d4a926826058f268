//! `StreamsBuilder`: where a topology starts (sources, tables, stores) and `build()`.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::graph::Graph;
use crate::dsl::kstream::KStream;
use crate::dsl::options::Consumed;
use crate::error::Result;
use crate::ops::source::{SourceNode, TypedDecoder};
use crate::serde::{Serde, SerdeRef};
use crate::store::StoreBuilder;
use crate::task::node::Data;
use crate::topology::{NodeKind, TopicName, Topology};

/// Builds a topology with the DSL (Kafka's `StreamsBuilder`). Streams and tables borrow the
/// builder; [`build`](StreamsBuilder::build) consumes it.
///
/// ```
/// use freshet_streams::StreamsBuilder;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream::<String, String>("page-views")
///     .filter(|_user, page| !page.starts_with("/health"))
///     .to("real-page-views");
/// let topology = builder.build()?;
/// assert!(topology.describe().to_string().contains("KSTREAM-FILTER-0000000001"));
/// # Ok::<(), freshet_streams::Error>(())
/// ```
#[derive(Default)]
pub struct StreamsBuilder {
    pub(crate) graph: RefCell<Graph>,
}

impl std::fmt::Debug for StreamsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsBuilder")
            .field("nodes", &self.graph.borrow().nodes.len())
            .finish()
    }
}

/// A serde that is missing: `build()` reports it; it never runs.
#[derive(Debug)]
pub(crate) struct MissingSerde;

impl<T> Serde<T> for MissingSerde {
    fn serialize(&self, _value: &T) -> std::result::Result<Vec<u8>, String> {
        Err("no serde".into())
    }
    fn deserialize(&self, _bytes: &[u8]) -> std::result::Result<T, String> {
        Err("no serde".into())
    }
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> StreamsBuilder {
        StreamsBuilder::default()
    }

    /// Makes `serde` the default for values of type `T` anywhere in this topology where no
    /// serde is given or carried (Kafka's `default.key.serde` / `default.value.serde`, by
    /// type). `String`, `Bytes`, `Vec<u8>`, the integers, floats, `()` and their `Option`s
    /// are registered already.
    ///
    /// ```
    /// use freshet_streams::{MsgPack, StreamsBuilder};
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct View { page: String }
    /// let builder = StreamsBuilder::new();
    /// builder.register_serde::<View>(MsgPack::default());
    /// builder.stream::<String, View>("views").to("copy");
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn register_serde<T: 'static>(&self, serde: impl Serde<T> + 'static) {
        self.graph.borrow_mut().serdes.register::<T, _>(serde);
    }

    /// The serde for `T`: `given`, else the registered default; a build error naming
    /// `what` when there is none.
    pub(crate) fn serde_for<T: 'static>(
        &self,
        given: Option<SerdeRef<T>>,
        what: &str,
    ) -> SerdeRef<T> {
        if let Some(s) = given {
            return s;
        }
        let mut g = self.graph.borrow_mut();
        match g.serdes.get::<T>() {
            Some(s) => s,
            None => {
                g.errors.push(format!(
                    "no serde for {} at {what}: pass one (Consumed/Produced/Grouped/Materialized::with) or register a default with StreamsBuilder::register_serde",
                    std::any::type_name::<T>()
                ));
                Arc::new(MissingSerde)
            }
        }
    }

    /// A stream of `topic`, with the default serdes of `K` and `V`.
    pub fn stream<K: Data, V: Data>(&self, topic: &str) -> KStream<'_, K, V> {
        self.stream_with(&[topic], Consumed::default())
    }

    /// A stream of several topics with `consumed`'s serdes, extractor and name (Kafka's
    /// `stream(Collection<String>, Consumed)`).
    pub fn stream_with<K: Data, V: Data>(
        &self,
        topics: &[&str],
        consumed: Consumed<K, V>,
    ) -> KStream<'_, K, V> {
        // The name `add_source` gives the node (serde lookups take no index).
        let node_name = consumed
            .name
            .clone()
            .unwrap_or_else(|| format!("KSTREAM-SOURCE-{:010}", self.graph.borrow().index));
        let what = format!("source {node_name} (of {})", topics.join(", "));
        let keys = self.serde_for(consumed.keys, &what);
        let values = self.serde_for(consumed.values, &what);
        let topics = topics
            .iter()
            .map(|t| TopicName::External((*t).to_string()))
            .collect();
        let node = self.add_source_with_reset(
            consumed.name,
            topics,
            keys.clone(),
            values.clone(),
            consumed.extractor,
            consumed.offset_reset,
        );
        KStream::new(self, node, Some(keys), Some(values), false)
    }

    /// Adds a source node reading `topics` (also repartition topics).
    pub(crate) fn add_source<K: Data, V: Data>(
        &self,
        name: Option<String>,
        topics: Vec<TopicName>,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        extractor: Option<crate::dsl::options::TimestampExtractor<K, V>>,
    ) -> usize {
        self.add_source_with_reset(name, topics, keys, values, extractor, None)
    }

    /// [`add_source`](Self::add_source) with the source's offset reset
    /// (`Consumed::with_offset_reset`), which the runtime reads back with
    /// [`Topology::offset_reset`].
    pub(crate) fn add_source_with_reset<K: Data, V: Data>(
        &self,
        name: Option<String>,
        topics: Vec<TopicName>,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        extractor: Option<crate::dsl::options::TimestampExtractor<K, V>>,
        offset_reset: Option<crate::dsl::options::OffsetReset>,
    ) -> usize {
        let mut g = self.graph.borrow_mut();
        let name = g.name_or(name, "KSTREAM-SOURCE-");
        let typed = Arc::new(TypedDecoder {
            keys,
            values,
            extractor,
        });
        let decoder: Arc<dyn crate::topology::SourceDecoder> = match offset_reset {
            Some(reset) => Arc::new(ResetDecoder {
                inner: typed,
                reset,
            }),
            None => typed,
        };
        g.add(
            name,
            NodeKind::Source { topics, decoder },
            &[],
            Arc::new(|| Box::new(SourceNode::<K, V>(PhantomData))),
        )
    }

    /// Declares a store for the Processor API; connect it to processors by name in
    /// [`KStream::process`].
    pub fn add_state_store(&self, store: StoreBuilder) {
        self.graph.borrow_mut().add_store(store, None);
    }

    /// Validates the graph and builds the [`Topology`]. Logs (and records in
    /// [`Topology::warnings`]) the stores and internal topics whose names were generated.
    ///
    /// # Errors
    /// [`Error::Topology`](crate::Error::Topology) listing every problem found: missing
    /// serdes, duplicate names, undeclared stores.
    pub fn build(self) -> Result<Topology> {
        self.graph.into_inner().build()
    }
}

/// A source decoder that also carries the source's offset reset.
struct ResetDecoder {
    inner: Arc<dyn crate::topology::SourceDecoder>,
    reset: crate::dsl::options::OffsetReset,
}

impl crate::topology::SourceDecoder for ResetDecoder {
    fn decode(
        &self,
        raw: &crate::record::InputRecord,
        partition_time: i64,
    ) -> std::result::Result<(Box<dyn std::any::Any + Send>, i64), String> {
        self.inner.decode(raw, partition_time)
    }

    fn offset_reset(&self) -> Option<crate::dsl::options::OffsetReset> {
        Some(self.reset)
    }
}
