//! `StreamsBuilder`: where a topology starts (sources, tables, stores) and `build()`.

use std::cell::RefCell;
use std::sync::Arc;

use crate::dsl::graph::Graph;
use crate::dsl::kstream::KStream;
use crate::dsl::options::Consumed;
use crate::error::Result;
use crate::ops::source::TypedDecoder;
use crate::ops::stateless::forward_unchanged;
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
    ///
    /// ```
    /// use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").map_values(|v| v.len() as i64).to("lengths");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "four".into(), 0)?;
    /// assert_eq!(driver.output::<String, i64>("lengths").read_values()?, vec![4]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let orders = builder.stream::<String, i64>("orders");
    /// assert_eq!(orders.node_name(), "KSTREAM-SOURCE-0000000000");
    /// orders.to("orders-copy");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("orders").pipe("ann".into(), 42, 5)?;
    /// let out = driver.output::<String, i64>("orders-copy").read_records()?;
    /// assert_eq!((out[0].key.as_str(), out[0].value, out[0].timestamp), ("ann", 42, 5));
    ///
    /// // A type with no registered serde is a build error naming the source.
    /// #[derive(Clone)]
    /// struct Point(i32, i32);
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, Point>("points").to("copy");
    /// let err = builder.build().unwrap_err().to_string();
    /// assert!(err.contains("KSTREAM-SOURCE-0000000000"), "{err}");
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn stream<K: Data, V: Data>(&self, topic: &str) -> KStream<'_, K, V> {
        self.stream_with(&[topic], Consumed::default())
    }

    /// A stream of several topics with `consumed`'s serdes, extractor and name (Kafka's
    /// `stream(Collection<String>, Consumed)`).
    ///
    /// ```
    /// use freshet_streams::{BigEndian, Consumed, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let orders = builder.stream_with::<String, i32>(
    ///     &["eu-orders", "us-orders"],
    ///     Consumed::with(Utf8, BigEndian).with_name("orders"),
    /// );
    /// assert_eq!(orders.node_name(), "orders");
    /// orders.to("all-orders");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i32>("eu-orders").pipe("ann".into(), 1, 0)?;
    /// driver.input::<String, i32>("us-orders").pipe("bob".into(), 2, 1)?;
    /// assert_eq!(driver.output::<String, i32>("all-orders").read_values()?, vec![1, 2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
            forward_unchanged::<K, V>(),
        )
    }

    /// Declares a store for the Processor API; connect it to processors by name in
    /// [`KStream::process`].
    ///
    /// ```
    /// use freshet_streams::{
    ///     BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8,
    ///     testing::TopologyTestDriver,
    /// };
    /// /// Forwards a key's first record only, remembering seen keys in the store `seen`.
    /// struct FirstOnly;
    /// impl Processor<String, String, String, String> for FirstOnly {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         let seen = ctx.key_value_store::<String, i64>("seen")?;
    ///         if seen.get(&r.key)?.is_some() {
    ///             return Ok(());
    ///         }
    ///         seen.put(&r.key, &r.timestamp, r.timestamp)?;
    ///         ctx.forward(r)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, i64>("seen", Utf8, BigEndian));
    /// builder.stream::<String, String>("in").process(|| FirstOnly, &["seen"]).to("first");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe_all([("a".into(), "1".into(), 3), ("a".into(), "2".into(), 4), ("b".into(), "3".into(), 5)])?;
    /// assert_eq!(driver.output::<String, String>("first").read_values()?, vec!["1", "3"]);
    /// assert_eq!(driver.key_value_store::<String, i64>("seen")?.get(&"a".into())?, Some((3, 3)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn add_state_store(&self, store: StoreBuilder) {
        self.graph.borrow_mut().add_store(store, None);
    }

    /// Validates the graph and builds the [`Topology`]. Logs (and records in
    /// [`Topology::warnings`]) the stores and internal topics whose names were generated.
    ///
    /// # Errors
    /// [`Error::Topology`](crate::Error::Topology) listing every problem found: missing
    /// serdes, duplicate names, undeclared stores.
    ///
    /// ```
    /// use freshet_streams::{Error, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count().to_stream().to("counts");
    /// let topology = builder.build()?;
    /// // The generated store name is reported: it changes when the topology changes.
    /// assert!(topology.warnings().iter().any(|w| w.contains("KSTREAM-AGGREGATE-STATE-STORE-0000000001")));
    ///
    /// // A processor connected to a store nobody declared: the topology is refused.
    /// # struct Pass;
    /// # impl freshet_streams::Processor<String, String, String, String> for Pass {
    /// #     fn process(&mut self, ctx: &mut freshet_streams::ProcessorContext<'_, '_, String, String>, r: freshet_streams::Record<String, String>) -> freshet_streams::Result<()> { ctx.forward(r) }
    /// # }
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").process(|| Pass, &["missing"]).to("out");
    /// match builder.build() {
    ///     Err(Error::Topology(msg)) => assert!(msg.contains("undeclared store missing"), "{msg}"),
    ///     other => panic!("expected a topology error, got {other:?}"),
    /// }
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ) -> std::result::Result<(crate::task::node::BoxedRecord, i64), String> {
        self.inner.decode(raw, partition_time)
    }

    fn decode_into(
        &self,
        raw: &crate::task::input::RawRecord<'_>,
        partition_time: i64,
        slot: &mut Option<crate::task::node::BoxedRecord>,
    ) -> std::result::Result<i64, String> {
        self.inner.decode_into(raw, partition_time, slot)
    }

    fn offset_reset(&self) -> Option<crate::dsl::options::OffsetReset> {
        Some(self.reset)
    }
}
