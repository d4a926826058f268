//! Global tables (Kafka's `GlobalKTable`) and the stream–global-table joins.
//!
//! A global table is fully replicated: every application instance reads every partition of
//! its topic into a store that every task can read, so a stream joins it on any key it
//! computes from its records, with no co-partitioning and no repartitioning. The global
//! task ([`GlobalTask`]) keeps the stores; at start it reads the topics up to their end
//! before any task processes a record (bootstrapping), then keeps up as they change. A join
//! sees the global value as it is when the stream record is processed, so its results
//! depend on timing, as in Kafka.
//!
//! Names follow Kafka: `global_table` takes the store `<topic>-STATE-STORE-<n>` (unless
//! named), the source `KSTREAM-SOURCE-<n+1>` and the processor `KTABLE-SOURCE-<n+2>`
//! (`Consumed` named `x`: `x-source` and `x`); both joins are `KSTREAM-LEFTJOIN-<n>` (a Kafka
//! quirk). `describe()` prints each global store as
//! `Sub-topology: <n> for global store (will not generate tasks)`.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::kstream::KStream;
use crate::dsl::options::{Consumed, Materialized};
use crate::dsl::table::null_check;
use crate::ops::global::{GlobalJoinNode, GlobalJoiner, GlobalTableSourceNode, KeySelector};
use crate::ops::source::TypedDecoder;
use crate::ops::stateless::forward_unchanged;
use crate::ops::table_source::IsNull;
use crate::processor::{Processor, ProcessorNode};
use crate::serde::{Nullable, SerdeRef};
use crate::store::{StoreBuilder, StoreKind};
use crate::task::node::Data;
use crate::topology::{NodeFactory, NodeKind, TopicName};

pub use crate::task::global::{GlobalStores, GlobalTask};
pub use crate::topology::GlobalStoreTopology;

/// A fully replicated table (Kafka's `GlobalKTable<K, V>`): every instance holds all of it.
/// Made by [`StreamsBuilder::global_table`]; joined by [`KStream::join_global`] and
/// [`KStream::left_join_global`].
pub struct GlobalKTable<'b, K, V> {
    pub(crate) builder: &'b StreamsBuilder,
    pub(crate) store: String,
    pub(crate) queryable: bool,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
}

impl<K, V> Clone for GlobalKTable<'_, K, V> {
    fn clone(&self) -> Self {
        GlobalKTable {
            builder: self.builder,
            store: self.store.clone(),
            queryable: self.queryable,
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for GlobalKTable<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalKTable")
            .field("store", &self.store)
            .finish()
    }
}

impl<K, V> GlobalKTable<'_, K, V> {
    /// The store's name when it was named with [`Materialized::named`] (Kafka's
    /// `queryableStoreName`, null otherwise).
    ///
    /// ```
    /// use freshet_streams::{Consumed, Materialized, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// let named = builder.global_table_with::<String, String>("a", Consumed::default(), Materialized::named("a-store"));
    /// let unnamed = builder.global_table::<String, String>("b");
    /// assert_eq!(named.queryable_store_name(), Some("a-store"));
    /// assert_eq!(unnamed.queryable_store_name(), None);
    /// ```
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.queryable.then_some(self.store.as_str())
    }

    /// The store's name, named or generated (`<topic>-STATE-STORE-<n>`).
    ///
    /// ```
    /// use freshet_streams::StreamsBuilder;
    /// let builder = StreamsBuilder::new();
    /// let table = builder.global_table::<String, String>("countries");
    /// assert_eq!(table.store_name(), "countries-STATE-STORE-0000000000");
    /// ```
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

impl StreamsBuilder {
    /// A global table of `topic` with the default serdes of `K` and `V` (Kafka's
    /// `globalTable(topic)`). A null value deletes the key; a record with a null key is
    /// dropped.
    ///
    /// ```
    /// use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let countries = builder.global_table::<String, String>("countries");
    /// builder
    ///     .stream::<String, String>("orders")
    ///     .join_global(&countries, |_order, code| code.clone(), |code, name| format!("{code}:{name}"))
    ///     .to("orders-with-country");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("countries").pipe("fr".into(), "France".into(), 0)?;
    /// driver.input::<String, String>("orders").pipe("o1".into(), "fr".into(), 5)?;
    /// let out = driver.output::<String, String>("orders-with-country").read_key_values()?;
    /// assert_eq!(out, vec![("o1".to_string(), "fr:France".to_string())]);
    /// let store = driver.key_value_store::<String, String>("countries-STATE-STORE-0000000000")?;
    /// assert_eq!(store.get(&"fr".to_string())?, Some(("France".to_string(), 0)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn global_table<K: Data, V: Data>(&self, topic: &str) -> GlobalKTable<'_, K, V> {
        self.global_table_with(topic, Consumed::default(), Materialized::default())
    }

    /// A global table of `topic` read with `consumed` (serdes, node names) and kept as
    /// `materialized` says (store name, caching; never logged: the topic is the changelog).
    /// The serdes are `consumed`'s, else `materialized`'s, else the defaults. As in Kafka,
    /// the table always reads its topic from the beginning and keeps the records' own
    /// timestamps: `consumed`'s offset reset and timestamp extractor are not used.
    ///
    /// ```
    /// use freshet_streams::{Consumed, Materialized, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.global_table_with::<String, String>(
    ///     "countries",
    ///     Consumed::with(Utf8, Utf8).with_name("countries"),
    ///     Materialized::named("country-names"),
    /// );
    /// let topology = builder.build()?;
    /// let text = topology.describe().to_string();
    /// assert!(text.contains("Source: countries-source (topics: [countries])"));
    /// assert!(text.contains("Processor: countries (stores: [country-names])"));
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("countries").pipe("fr".into(), "France".into(), 0)?;
    /// let store = driver.key_value_store::<String, String>("country-names")?;
    /// assert_eq!(store.get(&"fr".to_string())?.map(|(v, _)| v), Some("France".to_string()));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn global_table_with<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> GlobalKTable<'_, K, V> {
        let queryable = materialized.name.is_some();
        let store = self
            .graph
            .borrow_mut()
            .store_name_or(materialized.name.clone(), &format!("{topic}-STATE-STORE-"));
        let what = format!("global table {topic}");
        let keys = self.serde_for(consumed.keys.or(materialized.keys), &what);
        let values = self.serde_for(consumed.values.or(materialized.values), &what);
        let mut builder = StoreBuilder::new(store.clone(), StoreKind::KeyValue)
            .with_serdes(keys.clone(), values.clone())
            .with_logging_disabled();
        builder.caching = materialized.caching;
        // Decoded as options so that tombstones and null keys reach the processor.
        let decoder = Arc::new(TypedDecoder::<Option<K>, Option<V>> {
            keys: Arc::new(Nullable(keys.clone())),
            values: Arc::new(Nullable(values.clone())),
            extractor: None,
        });
        let (store_name, k, v) = (store.clone(), keys.clone(), values.clone());
        let factory: NodeFactory = Arc::new(move || {
            Box::new(GlobalTableSourceNode {
                store_name: store_name.clone(),
                keys: k.clone(),
                values: v.clone(),
                store: None,
            })
        });
        self.add_global_nodes(
            topic,
            consumed.name,
            decoder,
            forward_unchanged::<Option<K>, Option<V>>(),
            factory,
            builder,
        );
        GlobalKTable {
            builder: self,
            store,
            queryable,
            keys,
            values,
        }
    }

    /// Adds a global store kept by a [`Processor`] made by `supplier` from every partition
    /// of `topic` (Kafka's `addGlobalStore`). The processor gets each record of the topic
    /// and writes `store`, which every processor of the topology can then read by name
    /// without being connected to it. The store is never logged (the topic is its
    /// changelog); the processor forwards nothing.
    ///
    /// ```
    /// use freshet_streams::{Consumed, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// use freshet_streams::testing::TopologyTestDriver;
    ///
    /// /// Keeps the upper-cased value of each key.
    /// struct Upper;
    /// impl Processor<String, String, (), ()> for Upper {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, (), ()>, r: Record<String, String>) -> Result<()> {
    ///         ctx.key_value_store::<String, String>("upper")?.put(&r.key, &r.value.to_uppercase(), r.timestamp)
    ///     }
    /// }
    ///
    /// let builder = StreamsBuilder::new();
    /// builder.add_global_store(Stores::key_value::<String, String>("upper", Utf8, Utf8), "names", Consumed::with(Utf8, Utf8), || Upper);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("names").pipe("k".into(), "ann".into(), 0)?;
    /// let store = driver.key_value_store::<String, String>("upper")?;
    /// assert_eq!(store.get(&"k".to_string())?, Some(("ANN".to_string(), 0)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn add_global_store<K: Data, V: Data, P>(
        &self,
        store: StoreBuilder,
        topic: &str,
        consumed: Consumed<K, V>,
        supplier: impl Fn() -> P + Send + Sync + 'static,
    ) where
        P: Processor<K, V, (), ()> + 'static,
    {
        let what = format!("global store {}", store.name);
        let keys = self.serde_for(consumed.keys, &what);
        let values = self.serde_for(consumed.values, &what);
        let decoder = Arc::new(TypedDecoder::<K, V> {
            keys,
            values,
            extractor: None,
        });
        let factory: NodeFactory = Arc::new(move || {
            Box::new(ProcessorNode {
                processor: supplier(),
                _types: PhantomData::<fn(K, V, (), ())>,
            })
        });
        self.add_global_nodes(
            topic,
            consumed.name,
            decoder,
            forward_unchanged::<K, V>(),
            factory,
            store.with_logging_disabled(),
        );
    }

    /// Adds a global store's source (`KSTREAM-SOURCE-`, or `<name>-source`) and processor
    /// (`KTABLE-SOURCE-`, or `<name>`), in Kafka's order, and marks the source global.
    fn add_global_nodes(
        &self,
        topic: &str,
        name: Option<String>,
        decoder: Arc<dyn crate::topology::SourceDecoder>,
        source: NodeFactory,
        processor: NodeFactory,
        store: StoreBuilder,
    ) {
        let mut g = self.graph.borrow_mut();
        let source_name = g.name_or(
            name.as_ref().map(|n| format!("{n}-source")),
            "KSTREAM-SOURCE-",
        );
        let source = g.add(
            source_name,
            NodeKind::Source {
                topics: vec![TopicName::External(topic.to_string())],
                decoder,
            },
            &[],
            source,
        );
        let processor_name = g.name_or(name, "KTABLE-SOURCE-");
        let processor = g.add(processor_name, NodeKind::Processor, &[source], processor);
        g.add_store(store, Some(processor));
        g.global_sources.push(source);
    }
}

impl<'b, K: Data, V: Data> KStream<'b, K, V> {
    /// Joins each record with the global table's value for the key `key_selector` maps it
    /// to (Kafka's `join(GlobalKTable, KeyValueMapper, ValueJoiner)`). Records without a
    /// match, with a null mapped key or a null value are dropped; the output keeps the
    /// record's key and timestamp. `key_selector` may return the key or an `Option` of it
    /// (`None`: no key). No co-partitioning is needed; a pending repartition stays pending.
    ///
    /// ```
    /// use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let users = builder.global_table::<String, String>("users");
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .join_global(&users, |user, _page| user.clone(), |page, name| format!("{name} on {page}"))
    ///     .to("named-clicks");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("users").pipe("u1".into(), "Ann".into(), 0)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("u1".into(), "/home".into(), 10)?;
    /// clicks.pipe("u2".into(), "/about".into(), 11)?; // no such user: dropped
    /// let out = driver.output::<String, String>("named-clicks").read_records()?;
    /// assert_eq!(out.len(), 1);
    /// assert_eq!((out[0].key.as_str(), out[0].value.as_str(), out[0].timestamp), ("u1", "Ann on /home", 10));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_global<GK: Data, GV: Data, VR: Data, R: Into<Option<GK>>>(
        &self,
        global: &GlobalKTable<'b, GK, GV>,
        key_selector: impl Fn(&K, &V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, &GV) -> VR + Send + Sync + 'static,
    ) -> KStream<'b, K, VR> {
        let joiner: GlobalJoiner<V, GV, VR> = Arc::new(move |v, g| g.map(|g| joiner(v, g)));
        self.global_join(global, key_selector, joiner, false)
    }

    /// Joins each record with the global table's value for the key `key_selector` maps it
    /// to, or with `None` when there is none (Kafka's `leftJoin(GlobalKTable, …)`). Records
    /// with a null value are dropped, and so are records with a null mapped key, except
    /// those whose own key is null (Kafka's rule: they join with `None`).
    ///
    /// ```
    /// use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let users = builder.global_table::<String, String>("users");
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .left_join_global(&users, |user, _page| user.clone(), |page, name| {
    ///         format!("{} on {page}", name.map_or("someone", |n| n.as_str()))
    ///     })
    ///     .to("named-clicks");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("users").pipe("u1".into(), "Ann".into(), 0)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("u1".into(), "/home".into(), 10)?;
    /// clicks.pipe("u2".into(), "/about".into(), 11)?;
    /// let out = driver.output::<String, String>("named-clicks").read_values()?;
    /// assert_eq!(out, vec!["Ann on /home", "someone on /about"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_global<GK: Data, GV: Data, VR: Data, R: Into<Option<GK>>>(
        &self,
        global: &GlobalKTable<'b, GK, GV>,
        key_selector: impl Fn(&K, &V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    ) -> KStream<'b, K, VR> {
        let joiner: GlobalJoiner<V, GV, VR> = Arc::new(move |v, g| Some(joiner(v, g)));
        self.global_join(global, key_selector, joiner, true)
    }

    fn global_join<GK: Data, GV: Data, VR: Data, R: Into<Option<GK>>>(
        &self,
        global: &GlobalKTable<'b, GK, GV>,
        key_selector: impl Fn(&K, &V) -> R + Send + Sync + 'static,
        joiner: GlobalJoiner<V, GV, VR>,
        left: bool,
    ) -> KStream<'b, K, VR> {
        if !std::ptr::eq(self.builder, global.builder) {
            self.builder.graph.borrow_mut().errors.push(format!(
                "global table {} belongs to another StreamsBuilder",
                global.store
            ));
        }
        let null_keys = null_check(self.builder, self.keys.as_ref());
        let null_values = null_check(self.builder, self.values.as_ref());
        let key_selector: KeySelector<K, V, GK> = Arc::new(move |k, v| key_selector(k, v).into());
        let node = GlobalJoinFactory {
            store_name: global.store.clone(),
            global_keys: global.keys.clone(),
            global_values: global.values.clone(),
            key_selector,
            joiner,
            left,
            null_keys,
            null_values,
            null_global_keys: null_check(self.builder, Some(&global.keys)),
        };
        self.add_node(
            "KSTREAM-LEFTJOIN-",
            Arc::new(move || node.make()),
            self.keys.clone(),
            None,
            self.repartition_required,
        )
    }
}

/// What each task's instance of a global join is made from.
struct GlobalJoinFactory<K, V, GK, GV, VR> {
    store_name: String,
    global_keys: SerdeRef<GK>,
    global_values: SerdeRef<GV>,
    key_selector: KeySelector<K, V, GK>,
    joiner: GlobalJoiner<V, GV, VR>,
    left: bool,
    null_keys: IsNull<K>,
    null_values: IsNull<V>,
    null_global_keys: IsNull<GK>,
}

impl<K: Data, V: Data, GK: Data, GV: Data, VR: Data> GlobalJoinFactory<K, V, GK, GV, VR> {
    fn make(&self) -> Box<dyn crate::task::node::Node> {
        Box::new(GlobalJoinNode {
            store_name: self.store_name.clone(),
            global_keys: self.global_keys.clone(),
            global_values: self.global_values.clone(),
            key_selector: self.key_selector.clone(),
            joiner: self.joiner.clone(),
            left: self.left,
            null_keys: self.null_keys.clone(),
            null_values: self.null_values.clone(),
            null_global_keys: self.null_global_keys.clone(),
            store: None,
        })
    }
}
