//! `KStream`: a record stream and its operators.
//!
//! Every method adds one or more named nodes to the builder's graph and returns a new handle.
//! Key-changing operators (`map`, `select_key`, `flat_map`, `process`) mark the stream
//! *repartition-required*; a later grouping, join or `to_table` then inserts a repartition
//! topic `<application.id>-<name>-repartition`, as Kafka does. Output timestamps and headers
//! are the input record's.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::grouped::KGroupedStream;
use crate::dsl::options::{Grouped, Produced, Repartitioned};
use crate::ops::sink::{SinkNode, SinkTarget};
use crate::ops::stateless::{forward_unchanged, map, pass, stateless};
use crate::partitioner::StreamPartitioner;
use crate::processor::{Processor, ProcessorNode};
use crate::record::Record;
use crate::serde::SerdeRef;
use crate::task::node::Data;
use crate::topology::{InternalTopic, NodeKind, PartitionCount, SinkTopic, TopicName};

/// Topic configs of repartition topics (Kafka's `RepartitionTopicConfig`).
pub(crate) fn repartition_topic_config() -> Vec<(String, String)> {
    vec![
        ("cleanup.policy".into(), "delete".into()),
        ("retention.ms".into(), "-1".into()),
        ("segment.bytes".into(), "52428800".into()),
    ]
}

/// A stream of records (Kafka's `KStream<K, V>`), borrowing its builder.
pub struct KStream<'b, K, V> {
    pub(crate) builder: &'b StreamsBuilder,
    pub(crate) node: usize,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) repartition_required: bool,
}

impl<K, V> Clone for KStream<'_, K, V> {
    fn clone(&self) -> Self {
        KStream {
            builder: self.builder,
            node: self.node,
            keys: self.keys.clone(),
            values: self.values.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

impl<K, V> std::fmt::Debug for KStream<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.builder.graph.borrow();
        f.debug_struct("KStream")
            .field("node", &g.nodes[self.node].name)
            .field("repartition_required", &self.repartition_required)
            .finish()
    }
}

impl<'b, K: Data, V: Data> KStream<'b, K, V> {
    pub(crate) fn new(
        builder: &'b StreamsBuilder,
        node: usize,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
        repartition_required: bool,
    ) -> Self {
        KStream {
            builder,
            node,
            keys,
            values,
            repartition_required,
        }
    }

    /// The name of the node this stream comes out of.
    ///
    /// ```
    /// use freshet_streams::StreamsBuilder;
    /// let builder = StreamsBuilder::new();
    /// let views = builder.stream::<String, String>("views");
    /// let pages = views.map_values(|v| v.to_lowercase());
    /// // Generated names count operators in the order they are added, as Kafka's do.
    /// assert_eq!(views.node_name(), "KSTREAM-SOURCE-0000000000");
    /// assert_eq!(pages.node_name(), "KSTREAM-MAPVALUES-0000000001");
    /// assert_eq!(pages.named("lowercase").node_name(), "lowercase");
    /// ```
    pub fn node_name(&self) -> String {
        self.builder.graph.borrow().nodes[self.node].name.clone()
    }

    /// Names the operator that made this stream (Kafka's `Named.as`), instead of the
    /// generated `KSTREAM-…-0000000007`.
    ///
    /// ```
    /// use freshet_streams::StreamsBuilder;
    /// let builder = StreamsBuilder::new();
    /// let s = builder.stream::<String, String>("in").filter(|_, v| v.len() > 3).named("long-words");
    /// assert_eq!(s.node_name(), "long-words");
    /// ```
    pub fn named(self, name: impl Into<String>) -> Self {
        self.builder
            .graph
            .borrow_mut()
            .rename(self.node, name.into());
        self
    }

    /// Adds a processor node after this one.
    pub(crate) fn add_node<K2: Data, V2: Data>(
        &self,
        prefix: &str,
        factory: crate::topology::NodeFactory,
        keys: Option<SerdeRef<K2>>,
        values: Option<SerdeRef<V2>>,
        repartition_required: bool,
    ) -> KStream<'b, K2, V2> {
        let node = {
            let mut g = self.builder.graph.borrow_mut();
            let name = g.name_or(None, prefix);
            g.add(name, NodeKind::Processor, &[self.node], factory)
        };
        KStream::new(self.builder, node, keys, values, repartition_required)
    }

    /// Keeps records matching `predicate`.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i64>("in").filter(|_, v| *v > 1).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("in");
    /// input.pipe("a".into(), 1, 0)?;
    /// input.pipe("b".into(), 2, 0)?;
    /// assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<'b, K, V> {
        let f = pass(predicate);
        self.add_node(
            "KSTREAM-FILTER-",
            f,
            self.keys.clone(),
            self.values.clone(),
            self.repartition_required,
        )
    }

    /// Drops records matching `predicate`.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i64>("in").filter_not(|_, v| *v > 1).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("in");
    /// input.pipe("a".into(), 1, 0)?;
    /// input.pipe("b".into(), 2, 0)?;
    /// assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![1]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<'b, K, V> {
        let f = pass(move |k: &K, v: &V| !predicate(k, v));
        self.add_node(
            "KSTREAM-FILTER-",
            f,
            self.keys.clone(),
            self.values.clone(),
            self.repartition_required,
        )
    }

    /// Maps each record to a new key and value; marks the stream for repartitioning.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").map(|k, v| (v.clone(), k.len() as i64)).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("abc".into(), "x".into(), 0)?;
    /// assert_eq!(driver.output::<String, i64>("out").read_key_values()?, vec![("x".into(), 3)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn map<K2: Data, V2: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<'b, K2, V2> {
        let f = map(move |k: K, v: V| mapper(&k, &v));
        self.add_node("KSTREAM-MAP-", f, None, None, true)
    }

    /// Maps each value, keeping the key (no repartitioning).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").map_values(|v| v.len() as i64).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "four".into(), 0)?;
    /// assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![4]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
    ) -> KStream<'b, K, V2> {
        self.map_values_with_key(move |_, v| mapper(v))
    }

    /// Maps each value with read-only access to the key (Kafka's `ValueMapperWithKey`).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").map_values_with_key(|k, v| format!("{k}:{v}")).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["k:v".to_string()]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn map_values_with_key<V2: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> V2 + Send + Sync + 'static,
    ) -> KStream<'b, K, V2> {
        let f = map(move |k: K, v: V| {
            let v = mapper(&k, &v);
            (k, v)
        });
        self.add_node(
            "KSTREAM-MAPVALUES-",
            f,
            self.keys.clone(),
            None,
            self.repartition_required,
        )
    }

    /// Maps each record to zero or more records, each with the input's timestamp and
    /// headers; marks the stream for repartitioning.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("lines")
    ///     .flat_map(|_, line| line.split(' ').map(|w| (w.to_string(), 1_i64)).collect::<Vec<_>>())
    ///     .to("words");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("lines").pipe("k".into(), "a b".into(), 7)?;
    /// let words = driver.output::<String, i64>("words").read_records()?;
    /// assert_eq!(words.iter().map(|r| (r.key.as_str(), r.timestamp)).collect::<Vec<_>>(), vec![("a", 7), ("b", 7)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        mapper: impl Fn(&K, &V) -> I + Send + Sync + 'static,
    ) -> KStream<'b, K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let f = stateless(move |ctx, r: Record<K, V>| {
            for (k, v) in mapper(&r.key, &r.value) {
                ctx.forward(Record {
                    key: k,
                    value: v,
                    timestamp: r.timestamp,
                    headers: r.headers.clone(),
                })?;
            }
            Ok(())
        });
        self.add_node("KSTREAM-FLATMAP-", f, None, None, true)
    }

    /// Maps each value to zero or more values, keeping the key.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("lines")
    ///     .flat_map_values(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
    ///     .to("words");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("lines").pipe("k".into(), "a b".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("words").read_values()?, vec!["a", "b"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn flat_map_values<V2: Data, I>(
        &self,
        mapper: impl Fn(&V) -> I + Send + Sync + 'static,
    ) -> KStream<'b, K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        let f = stateless(move |ctx, r: Record<K, V>| {
            for v in mapper(&r.value) {
                ctx.forward(Record {
                    key: r.key.clone(),
                    value: v,
                    timestamp: r.timestamp,
                    headers: r.headers.clone(),
                })?;
            }
            Ok(())
        });
        self.add_node(
            "KSTREAM-FLATMAPVALUES-",
            f,
            self.keys.clone(),
            None,
            self.repartition_required,
        )
    }

    /// Sets a new key computed from the record; marks the stream for repartitioning.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").select_key(|_, v| v.to_uppercase()).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_key_values()?, vec![("V".into(), "v".into())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn select_key<K2: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<'b, K2, V> {
        let f = map(move |k: K, v: V| (mapper(&k, &v), v));
        self.add_node("KSTREAM-KEY-SELECT-", f, None, self.values.clone(), true)
    }

    /// Calls `action` on each record and passes it on unchanged.
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let seen = Arc::new(Mutex::new(0));
    /// let counter = seen.clone();
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").peek(move |_, _| *counter.lock().unwrap() += 1).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(*seen.lock().unwrap(), 1);
    /// assert_eq!(driver.output::<String, String>("out").read_values()?.len(), 1);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn peek(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<'b, K, V> {
        let f = pass(move |k: &K, v: &V| {
            action(k, v);
            true
        });
        self.add_node(
            "KSTREAM-PEEK-",
            f,
            self.keys.clone(),
            self.values.clone(),
            self.repartition_required,
        )
    }

    /// Calls `action` on each record; a terminal operation.
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").for_each(move |k, _| sink.lock().unwrap().push(k.clone()));
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(*seen.lock().unwrap(), vec!["k".to_string()]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn for_each(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) {
        let f = stateless(move |_ctx, r: Record<K, V>| {
            action(&r.key, &r.value);
            Ok(())
        });
        let _ = self.add_node::<K, V>("KSTREAM-FOREACH-", f, None, None, false);
    }

    /// Interleaves this stream and `other` in processing order (Kafka's `merge`); needs a
    /// repartition if either input does.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// a.merge(&b).to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// driver.input::<String, String>("b").pipe("k".into(), "2".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["1", "2"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn merge(&self, other: &KStream<'b, K, V>) -> KStream<'b, K, V> {
        let f = pass(|_: &K, _: &V| true);
        let node = {
            let mut g = self.builder.graph.borrow_mut();
            let name = g.name_or(None, "KSTREAM-MERGE-");
            g.add(name, NodeKind::Processor, &[self.node, other.node], f)
        };
        KStream::new(
            self.builder,
            node,
            self.keys.clone().or_else(|| other.keys.clone()),
            self.values.clone().or_else(|| other.values.clone()),
            self.repartition_required || other.repartition_required,
        )
    }

    /// Writes the stream to `topic` with the carried or default serdes.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").to("out");
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 3)?;
    /// let out = driver.output::<String, String>("out").read_records()?;
    /// assert_eq!((out[0].value.as_str(), out[0].timestamp), ("v", 3));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn to(&self, topic: &str) {
        self.to_with(topic, Produced::default())
    }

    /// Writes the stream to `topic` with `produced`'s serdes, partitioner and name.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use freshet_streams::{Json, Produced, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("lines")
    ///     .map_values(|line| line.split(' ').map(str::to_string).collect::<Vec<String>>())
    ///     .to_with("words", Produced::with(Utf8, Json::default()).with_name("words-sink"));
    /// let topology = builder.build()?;
    /// assert!(topology.describe().to_string().contains("Sink: words-sink (topic: words)"));
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("lines").pipe("k".into(), "a b".into(), 0)?;
    /// let words = driver.output_with::<String, Vec<String>>("words", Arc::new(Utf8), Arc::new(Json::default()));
    /// assert_eq!(words.read_values()?, vec![vec!["a".to_string(), "b".to_string()]]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn to_with(&self, topic: &str, produced: Produced<K, V>) {
        self.add_sink(
            produced.name,
            SinkTarget::Fixed(TopicName::External(topic.to_string())),
            produced.keys,
            produced.values,
            produced.partitioner,
        );
    }

    /// Writes each record to the topic `extractor` chooses for it (Kafka's
    /// `TopicNameExtractor`).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").to_dynamic(|r| format!("out-{}", r.key), Default::default());
    /// let mut driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("a".into(), "v".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out-a").read_values()?, vec!["v"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn to_dynamic(
        &self,
        extractor: impl Fn(&Record<K, V>) -> String + Send + Sync + 'static,
        produced: Produced<K, V>,
    ) {
        // describe() shows the extractor's type name (see `topology::describe`).
        let label = std::any::type_name_of_val(&extractor).to_string();
        let node = self.add_sink(
            produced.name,
            SinkTarget::Dynamic(Arc::new(extractor)),
            produced.keys,
            produced.values,
            produced.partitioner,
        );
        self.builder.graph.borrow_mut().nodes[node].kind = NodeKind::Sink {
            topic: SinkTopic::Dynamic(label),
        };
    }

    pub(crate) fn add_sink(
        &self,
        name: Option<String>,
        target: SinkTarget<K, V>,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
        partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
    ) -> usize {
        // The node's name first (serde lookups take no index), so errors can name it.
        let name = self
            .builder
            .graph
            .borrow_mut()
            .name_or(name, "KSTREAM-SINK-");
        let what = match &target {
            SinkTarget::Fixed(t) => format!("sink {} (to {})", name.0, t.shown()),
            SinkTarget::Dynamic(_) => format!("sink {} (with a topic extractor)", name.0),
        };
        let keys = self
            .builder
            .serde_for(keys.or_else(|| self.keys.clone()), &what);
        let values = self
            .builder
            .serde_for(values.or_else(|| self.values.clone()), &what);
        let topic = match &target {
            SinkTarget::Fixed(t) => SinkTopic::Fixed(t.clone()),
            // Labelled by the caller (`to_dynamic`).
            SinkTarget::Dynamic(_) => SinkTopic::Dynamic(String::new()),
        };
        let sink = SinkNode::new(target, keys, values, partitioner);
        let mut g = self.builder.graph.borrow_mut();
        g.add(
            name,
            NodeKind::Sink { topic },
            &[self.node],
            Arc::new(move || Box::new(sink.clone())),
        )
    }

    /// Runs a [`Processor`] made by `supplier` on each record, connected to the stores
    /// named in `stores`; may change the key, so marks the stream for repartitioning.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Splits a line into words, each keyed by itself.
    /// struct Words;
    /// impl Processor<String, String, String, String> for Words {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         for word in r.value.split(' ') {
    ///             ctx.forward(Record::new(word.to_string(), word.to_string(), r.timestamp))?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("lines")
    ///     .process(|| Words, &[])
    ///     .group_by_key() // the key changed: a repartition topic comes first
    ///     .count()
    ///     .to_stream()
    ///     .to("word-counts");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics().len(), 1);
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("lines").pipe("k".into(), "to be or not to be".into(), 0)?;
    /// let counts = driver.output::<String, i64>("word-counts").read_key_values()?;
    /// assert_eq!(counts.last(), Some(&("be".to_string(), 2)));
    /// assert_eq!(counts.len(), 6);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn process<K2: Data, V2: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<'b, K2, V2>
    where
        P: Processor<K, V, K2, V2> + 'static,
    {
        let stream = self.add_node(
            "KSTREAM-PROCESSOR-",
            Arc::new(move || {
                Box::new(ProcessorNode {
                    processor: supplier(),
                    _types: PhantomData,
                })
            }),
            None,
            None,
            true,
        );
        stream.connected_to(stores)
    }

    /// Runs a [`Processor`] that keeps each record's key (Kafka's `processValues`): the key
    /// the processor forwards is replaced by the input's, so no repartition is needed.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Emits the value's length; the key it sets is ignored.
    /// struct Length;
    /// impl Processor<String, String, String, i64> for Length {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, String>) -> Result<()> {
    ///         let len = r.value.len() as i64;
    ///         ctx.forward(r.with_key("ignored".to_string()).with_value(len))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .process_values(|| Length, &[])
    ///     .group_by_key() // the key is kept: no repartition topic
    ///     .reduce(|a, b| a + b)
    ///     .to_stream()
    ///     .to("total-length");
    /// let topology = builder.build()?;
    /// assert!(topology.internal_topics().is_empty());
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("in").pipe_all([("ann".into(), "abc".into(), 0), ("ann".into(), "de".into(), 1)])?;
    /// let out = driver.output::<String, i64>("total-length").read_key_values()?;
    /// assert_eq!(out, vec![("ann".to_string(), 3), ("ann".to_string(), 5)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn process_values<V2: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<'b, K, V2>
    where
        P: Processor<K, V, K, V2> + 'static,
    {
        let stream = self.add_node(
            "KSTREAM-PROCESSVALUES-",
            Arc::new(move || {
                Box::new(crate::ops::fixed_key::FixedKeyNode::<P, K, V, V2> {
                    processor: supplier(),
                    _types: PhantomData,
                })
            }),
            self.keys.clone(),
            None,
            self.repartition_required,
        );
        stream.connected_to(stores)
    }

    /// This stream, its node connected to `stores`.
    fn connected_to(self, stores: &[&str]) -> Self {
        let mut g = self.builder.graph.borrow_mut();
        for s in stores {
            g.connect(self.node, s);
        }
        drop(g);
        self
    }

    /// Writes the stream to a repartition topic and reads it back (Kafka's
    /// `repartition()`), with a generated name and the upstream partition count.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .select_key(|_, v| v.clone())
    ///     .repartition()
    ///     .to("out");
    /// let topology = builder.build()?;
    /// let topic = &topology.internal_topics()[0];
    /// assert_eq!(topic.name.shown(), "KSTREAM-REPARTITION-0000000002-repartition");
    /// assert_eq!(topology.subtopologies().len(), 2);
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 7)?;
    /// let out = driver.output::<String, String>("out").read_records()?;
    /// assert_eq!((out[0].key.as_str(), out[0].timestamp), ("v", 7));
    /// // The repartition topic (with the application id) was written and read back.
    /// assert!(driver.produced_topic_names().contains("test-driver-app-KSTREAM-REPARTITION-0000000002-repartition"));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn repartition(&self) -> KStream<'b, K, V> {
        self.repartition_with(Repartitioned::default())
    }

    /// [`repartition`](Self::repartition) with a name, serdes, partition count and
    /// partitioner.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, Repartitioned, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .select_key(|_, v| v.clone())
    ///     .repartition_with(Repartitioned::named("by-value").with_number_of_partitions(4))
    ///     .to("out");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "by-value-repartition");
    /// let mut driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_key_values()?, vec![("v".into(), "v".into())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn repartition_with(&self, options: Repartitioned<K, V>) -> KStream<'b, K, V> {
        let (prefix, generated) = match options.name {
            Some(n) => (n, false),
            None => (
                self.builder
                    .graph
                    .borrow_mut()
                    .new_name("KSTREAM-REPARTITION-")
                    .0,
                true,
            ),
        };
        let partitions = match options.partitions {
            Some(n) => PartitionCount::Fixed(n),
            None => PartitionCount::MaxOf(Vec::new()),
        };
        // The stream after the topic reads with the serdes it was written with: the given
        // ones, else the upstream's (Kafka's `doRepartition`).
        let what = format!("repartition {prefix}");
        let keys = self
            .builder
            .serde_for(options.keys.or_else(|| self.keys.clone()), &what);
        let values = self
            .builder
            .serde_for(options.values.or_else(|| self.values.clone()), &what);
        let source = self.repartition_through(
            &prefix,
            generated,
            Some(keys.clone()),
            Some(values.clone()),
            partitions,
            options.partitioner,
        );
        KStream::new(self.builder, source, Some(keys), Some(values), false)
    }

    /// Inserts filter (null keys) → sink → `<prefix>-repartition` → source; returns the
    /// source node. Node names follow Kafka's `createRepartitionedSource`: the three
    /// indices are always taken (sink, filter, source); generated names are used when the
    /// prefix is itself generated, else `<topic>-sink`, `-filter`, `-source`.
    pub(crate) fn repartition_through(
        &self,
        prefix: &str,
        generated: bool,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
        partitions: PartitionCount,
        partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
    ) -> usize {
        let topic = if prefix.ends_with("-repartition") {
            prefix.to_string()
        } else {
            format!("{prefix}-repartition")
        };
        let what = format!("repartition topic {topic}");
        let keys = self
            .builder
            .serde_for(keys.or_else(|| self.keys.clone()), &what);
        let values = self
            .builder
            .serde_for(values.or_else(|| self.values.clone()), &what);
        let mut g = self.builder.graph.borrow_mut();
        let (sink_gen, si) = g.new_name("KSTREAM-SINK-");
        let (filter_gen, fi) = g.new_name("KSTREAM-FILTER-");
        // The source's index is taken by `add_source` below (it always takes one).
        let (source_gen, so) = (format!("KSTREAM-SOURCE-{:010}", g.index), g.index);
        let kafka_generated = is_generated(prefix);
        let (sink_name, filter_name, source_name) = if kafka_generated {
            (
                (sink_gen, Some(si)),
                (filter_gen, Some(fi)),
                (source_gen, Some(so)),
            )
        } else {
            (
                (format!("{topic}-sink"), None),
                (format!("{topic}-filter"), None),
                (format!("{topic}-source"), None),
            )
        };
        // Null keys are dropped before the sink (Kafka's repartition filter). The filter is
        // in the topology as Kafka's is, but the sink drops them itself (asking the serde
        // costs no serialization for the built-in ones), so the filter only passes records
        // on and the task skips it: one operator less per record.
        let filter = forward_unchanged::<K, V>();
        let filter = g.add(filter_name, NodeKind::Processor, &[self.node], filter);
        let internal = TopicName::Internal(topic.clone());
        let sink = SinkNode::new(
            SinkTarget::Fixed(internal.clone()),
            keys.clone(),
            values.clone(),
            partitioner,
        )
        .dropping_null_keys();
        g.add(
            sink_name,
            NodeKind::Sink {
                topic: SinkTopic::Fixed(internal.clone()),
            },
            &[filter],
            Arc::new(move || Box::new(sink.clone())),
        );
        g.add_internal_topic(
            InternalTopic {
                name: internal.clone(),
                partitions,
                config: repartition_topic_config(),
            },
            generated,
        );
        drop(g);
        self.builder
            .add_source(Some(source_name.0), vec![internal], keys, values, None)
    }

    /// This stream as a join reads it: itself, or when its key changed upstream, Kafka's
    /// `KStreamImpl.repartitionForJoin` (for stream-stream and stream-table joins), which
    /// writes it to `<name>-repartition` (`name`: the join's, else this stream's node name)
    /// and reads it back. Three indices are always taken; a later join of the same stream
    /// under the stream's own name (an unnamed join) reuses the repartition its previous
    /// join made, as Kafka does.
    pub(crate) fn repartition_for_join(
        &self,
        name: Option<String>,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
    ) -> KStream<'b, K, V> {
        if !self.repartition_required {
            return self.clone();
        }
        let own_name = self.node_name();
        let name = name.unwrap_or_else(|| own_name.clone());
        let cached = self
            .builder
            .graph
            .borrow()
            .join_repartitions
            .get(&self.node)
            .copied();
        let source = match cached {
            Some(source) if name == own_name => {
                let mut g = self.builder.graph.borrow_mut();
                for _ in 0..3 {
                    g.next_index();
                }
                source
            }
            _ => {
                let source = self.repartition_through(
                    &name,
                    is_generated(&name),
                    keys.clone(),
                    values.clone(),
                    PartitionCount::MaxOf(Vec::new()),
                    None,
                );
                self.builder
                    .graph
                    .borrow_mut()
                    .join_repartitions
                    .insert(self.node, source);
                source
            }
        };
        KStream::new(
            self.builder,
            source,
            keys.or_else(|| self.keys.clone()),
            values.or_else(|| self.values.clone()),
            false,
        )
    }

    /// Groups by the current key for an aggregation; repartitions first when the key
    /// changed upstream.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let views = builder.stream::<String, String>("views");
    /// views.group_by_key().count().to_stream().to("views-per-user");
    /// let topology = builder.build()?;
    /// // The key did not change: no repartition topic.
    /// assert!(topology.internal_topics().is_empty());
    /// let driver = TopologyTestDriver::new(topology)?;
    /// let input = driver.input::<String, String>("views");
    /// input.pipe_all([("ann".into(), "/a".into(), 0), ("bob".into(), "/a".into(), 1), ("ann".into(), "/b".into(), 2)])?;
    /// let out = driver.output::<String, i64>("views-per-user").read_key_values()?;
    /// assert_eq!(out, vec![("ann".into(), 1), ("bob".into(), 1), ("ann".into(), 2)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn group_by_key(&self) -> KGroupedStream<'b, K, V> {
        self.group_by_key_with(Grouped::default())
    }

    /// [`group_by_key`](Self::group_by_key) with serdes and a name for the repartition
    /// topic.
    ///
    /// ```
    /// # use freshet_streams::{Grouped, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("views")
    ///     .select_key(|_user, page| page.clone())
    ///     .group_by_key_with(Grouped::named("by-page"))
    ///     .count()
    ///     .to_stream()
    ///     .to("views-per-page");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "by-page-repartition");
    /// let driver = TopologyTestDriver::new(topology)?;
    /// let input = driver.input::<String, String>("views");
    /// input.pipe_all([("ann".into(), "/a".into(), 0), ("bob".into(), "/a".into(), 1)])?;
    /// let out = driver.output::<String, i64>("views-per-page").read_key_values()?;
    /// assert_eq!(out, vec![("/a".into(), 1), ("/a".into(), 2)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn group_by_key_with(&self, grouped: Grouped<K, V>) -> KGroupedStream<'b, K, V> {
        let mut stream = self.clone();
        if grouped.keys.is_some() {
            stream.keys = grouped.keys;
        }
        if grouped.values.is_some() {
            stream.values = grouped.values;
        }
        KGroupedStream::new(stream, grouped.name)
    }

    /// Groups by a new key computed from each record; always repartitions.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("words")
    ///     .group_by(|_k, word| word.chars().next().unwrap_or(' ').to_string())
    ///     .count()
    ///     .to_stream()
    ///     .to("words-per-letter");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics().len(), 1);
    /// let driver = TopologyTestDriver::new(topology)?;
    /// let input = driver.input::<String, String>("words");
    /// input.pipe_all([("1".into(), "apple".into(), 0), ("2".into(), "avocado".into(), 1), ("3".into(), "banana".into(), 2)])?;
    /// let out = driver.output::<String, i64>("words-per-letter").read_key_values()?;
    /// assert_eq!(out, vec![("a".into(), 1), ("a".into(), 2), ("b".into(), 1)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn group_by<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KGroupedStream<'b, K2, V> {
        self.group_by_with(selector, Grouped::default())
    }

    /// [`group_by`](Self::group_by) with serdes and a name.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Grouped, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i32>("scores")
    ///     .group_by_with(|player, _| player.to_lowercase(), Grouped::with(Utf8, BigEndian).with_name("by-player"))
    ///     .reduce(|a, b| a + b)
    ///     .to_stream()
    ///     .to("totals");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "by-player-repartition");
    /// let driver = TopologyTestDriver::new(topology)?;
    /// let input = driver.input::<String, i32>("scores");
    /// input.pipe_all([("Ann".into(), 3, 0), ("ANN".into(), 4, 1)])?;
    /// assert_eq!(driver.output::<String, i32>("totals").read_key_values()?, vec![("ann".into(), 3), ("ann".into(), 7)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn group_by_with<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<'b, K2, V> {
        let mut keyed = self.select_key(selector);
        keyed.repartition_required = true;
        keyed.group_by_key_with(grouped)
    }
}

/// Whether a name has Kafka's generated shape `KSTREAM…-<10 digits>`.
pub(crate) fn is_generated(name: &str) -> bool {
    name.starts_with("KSTREAM")
        && name.len() > 11
        && name.as_bytes()[name.len() - 11] == b'-'
        && name[name.len() - 10..].bytes().all(|b| b.is_ascii_digit())
}
