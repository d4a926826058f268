//! Tables: sources ([`StreamsBuilder::table`], [`KStream::to_table`]), operators
//! ([`KTable::filter`], [`KTable::map_values`]), groupings ([`KTable::group_by`] →
//! [`KGroupedTable`]), table-table joins ([`KTable::join`], [`KTable::left_join`],
//! [`KTable::outer_join`]) and stream-table joins ([`KStream::join_table`],
//! [`KStream::left_join_table`]), with Kafka Streams' semantics and names.
//!
//! # Materialization and value getters
//! A table is kept in a key-value store only when something needs it, as in Kafka: a
//! source table (`table(topic)`, `to_table()`) gets its store (`<topic>-STATE-STORE-<n>`,
//! `KSTREAM-TOTABLE-STATE-STORE-<n>`) when it is named ([`Materialized::named`]), joined,
//! grouped, or asked for old values; `filter` / `map_values` only when named; a join
//! result only when given a [`Materialized`]; aggregations always. A join reads the other
//! side's current value through a *value getter* (Kafka's `KTableValueGetterSupplier`):
//! from the table's store when it has one, else computed through its parent's getter.
//!
//! # Old values
//! Table updates flow as [`Change`]s. An operator that needs each update's previous value
//! (grouping, left and outer joins, suppression) asks its parent to send old values;
//! operators that are not materialized pass the request upstream, and a source table asked
//! for them is materialized (Kafka's `enableSendingOldValues(forceMaterialization)`).
//!
//! # Nulls
//! Only `Option`s and `()` can be null. A table source reads values as `Option<V>`: a
//! tombstone (null value) deletes the key. Records with a null key are dropped (counted in
//! the `dropped-records` metric), as Kafka does.
//!
//! # Known gaps
//! Versioned tables (KIP-889/914) and the stream-table join grace period
//! (`Joined.withGracePeriod`) are not supported. Table operators cannot be renamed with
//! `Named`; `map_values` cannot turn a value into a delete.

use std::any::TypeId;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::graph::Graph;
use crate::dsl::kstream::{is_generated, repartition_topic_config, KStream};
use crate::dsl::ktable::{Change, KTable, SendOldValues};
use crate::dsl::options::{Consumed, Grouped, Materialized};
use crate::error::{Error, Result};
use crate::ops::aggregate::decode;
use crate::ops::sink::{SinkNode, SinkTarget};
use crate::ops::stateless::stateless;
use crate::ops::stream_table_join::StreamTableJoinNode;
use crate::ops::table_aggregate::{
    Adder, ChangeSerde, Subtractor, TableAggregateNode, TableSelectNode,
};
use crate::ops::table_join::{JoinGetter, JoinKind, TableJoinNode, TableJoiner, TableMergeNode};
use crate::ops::table_ops::{
    FilterGetter, MapValuesGetter, TableFilterNode, TableMapValuesNode, TableMapper, TablePredicate,
};
use crate::ops::table_source::{IsNull, TableSourceNode, TableStore, ToTableValue};
use crate::record::Record;
use crate::serde::{BigEndian, Nullable, Serde, SerdeRef};
use crate::store::{StoreBuilder, StoreKind, StoreRef};
use crate::task::node::{Data, NodeContext};
use crate::topology::{InternalTopic, NodeFactory, NodeKind, PartitionCount, SinkTopic, TopicName};

// ---------------------------------------------------------------------------------------
// Value getters (Kafka's KTableValueGetter / KTableValueGetterSupplier)
// ---------------------------------------------------------------------------------------

/// Reads a table's current value for a key in a running task (Kafka's
/// `KTableValueGetter`): the value and its timestamp, `None` when absent.
pub(crate) trait ValueGetter<K, V>: Send {
    fn get(&self, key: &K) -> Result<Option<(V, i64)>>;
}

/// Makes a task's value getter; runs in the reading node's `init`.
pub(crate) type MakeGetter<K, V> =
    Arc<dyn Fn(&NodeContext<'_>) -> Result<Box<dyn ValueGetter<K, V>>> + Send + Sync>;

/// How a node reads a table's values (Kafka's `KTableValueGetterSupplier`): the stores
/// the reading node must be connected to, and the getter factory.
pub(crate) struct ValueGetterSupplier<K, V> {
    pub(crate) stores: Vec<String>,
    pub(crate) make: MakeGetter<K, V>,
}

impl<K, V> Clone for ValueGetterSupplier<K, V> {
    fn clone(&self) -> Self {
        ValueGetterSupplier {
            stores: self.stores.clone(),
            make: self.make.clone(),
        }
    }
}

/// Reads a materialized table's key-value store.
struct StoreGetter<K, V> {
    store: StoreRef,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<K: Data, V: Data> ValueGetter<K, V> for StoreGetter<K, V> {
    fn get(&self, key: &K) -> Result<Option<(V, i64)>> {
        let what = format!("store {}", self.store.name);
        let key = match self.keys.serialize_nullable(key) {
            Ok(Some(k)) => k,
            Ok(None) => return Ok(None),
            Err(reason) => {
                return Err(Error::Serde {
                    context: what,
                    reason,
                })
            }
        };
        let found = self
            .store
            .with_kv(|s| freshet_state_store::KeyValueStore::get(s, &key))?;
        found
            .map(|t| Ok((decode(&self.values, &t.value, &what)?, t.timestamp)))
            .transpose()
    }
}

/// The getter of a table materialized in `store` (Kafka's
/// `KTableMaterializedValueGetterSupplier` / `KTableSourceValueGetterSupplier`).
pub(crate) fn store_getter<K: Data, V: Data>(
    store: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
) -> ValueGetterSupplier<K, V> {
    let name = store.clone();
    ValueGetterSupplier {
        stores: vec![store],
        make: Arc::new(move |ctx| {
            Ok(Box::new(StoreGetter {
                store: ctx.store(&name)?,
                keys: keys.clone(),
                values: values.clone(),
            }) as Box<dyn ValueGetter<K, V>>)
        }),
    }
}

/// A getter that cannot be made: `build()` already reports why.
fn no_getter<K: Data, V: Data>(reason: String) -> ValueGetterSupplier<K, V> {
    ValueGetterSupplier {
        stores: Vec::new(),
        make: Arc::new(move |_| Err(Error::Topology(reason.clone()))),
    }
}

// ---------------------------------------------------------------------------------------
// Table entries: per table node, its view and its old-value switch
// ---------------------------------------------------------------------------------------

/// Gives a table's value getter; may materialize a source table (Kafka's
/// `KTableImpl.valueGetterSupplier()`).
pub(crate) type ViewFn<K, V> =
    Arc<dyn Fn(&StreamsBuilder) -> ValueGetterSupplier<K, V> + Send + Sync>;

/// Turns on old values in a table's operator (and, when needed, upstream); `true` when it
/// now sends them (Kafka's `KTableProcessorSupplier.enableSendingOldValues(force)`).
pub(crate) type EnableOldFn = Arc<dyn Fn(&StreamsBuilder, bool) -> bool + Send + Sync>;

/// What the DSL knows about one table node: how to read it and how to make it send old
/// values. Registered per node in the builder's graph; tables built elsewhere (windowed
/// aggregations, suppression) may register theirs with [`register_table`], else a
/// fallback reads their `store` and raises their `send_old_values` flags.
pub(crate) struct TableEntry<K, V> {
    pub(crate) view: ViewFn<K, V>,
    pub(crate) enable_old: EnableOldFn,
    /// Whether this table sends old values (Kafka's `KTableImpl.sendOldValues`).
    pub(crate) sending: SendOldValues,
}

impl<K, V> Clone for TableEntry<K, V> {
    fn clone(&self) -> Self {
        TableEntry {
            view: self.view.clone(),
            enable_old: self.enable_old.clone(),
            sending: self.sending.clone(),
        }
    }
}

impl<K: Data, V: Data> TableEntry<K, V> {
    /// Kafka's `KTableImpl.enableSendingOldValues(forceMaterialization)`.
    pub(crate) fn enable(&self, builder: &StreamsBuilder, force: bool) -> bool {
        if self.sending.get() {
            return true;
        }
        if !(self.enable_old)(builder, force) {
            return false;
        }
        self.sending.enable();
        true
    }
}

/// Registers `entry` for the table node `node`.
pub(crate) fn register_table<K: Data, V: Data>(
    builder: &StreamsBuilder,
    node: usize,
    entry: TableEntry<K, V>,
) {
    builder
        .graph
        .borrow_mut()
        .table_entries
        .insert(node, Arc::new(entry));
}

/// The entry of `table`: the registered one, else one over its `store` and flags.
pub(crate) fn entry_of<K: Data, V: Data>(table: &KTable<'_, K, V>) -> TableEntry<K, V> {
    let registered = table
        .builder
        .graph
        .borrow()
        .table_entries
        .get(&table.node)
        .cloned();
    if let Some(e) = registered.and_then(|e| e.downcast::<TableEntry<K, V>>().ok()) {
        return (*e).clone();
    }
    let flags = table.send_old_values.clone();
    let sending = flags.first().cloned().unwrap_or_default();
    let (node, store) = (table.node, table.store.clone());
    let (keys, values) = (table.keys.clone(), table.values.clone());
    TableEntry {
        view: Arc::new(move |builder: &StreamsBuilder| {
            let node_name = builder.graph.borrow().nodes[node].name.clone();
            let Some(store) = &store else {
                let reason = format!(
                    "the values of table {node_name} cannot be read (it has no store and no value getter)"
                );
                builder.graph.borrow_mut().errors.push(reason.clone());
                return no_getter(reason);
            };
            let kind = builder
                .graph
                .borrow()
                .stores
                .get(store)
                .map(|s| s.kind.clone());
            if kind != Some(StoreKind::KeyValue) {
                let reason = format!(
                    "the values of table {node_name} cannot be read by key (store {store} is not a key-value store)"
                );
                builder.graph.borrow_mut().errors.push(reason.clone());
                return no_getter(reason);
            }
            let what = format!("store {store}");
            let k = builder.serde_for(keys.clone(), &what);
            let v = builder.serde_for(values.clone(), &what);
            store_getter(store.clone(), k, v)
        }),
        enable_old: Arc::new(move |_, _| {
            for f in &flags {
                f.enable();
            }
            true
        }),
        sending,
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Whether a value of `T` is null: only `Option`s and `()` can be; they are checked with
/// `carried` or the registered serde (a serialization to null), other types never are.
pub(crate) fn null_check<T: 'static>(
    builder: &StreamsBuilder,
    carried: Option<&SerdeRef<T>>,
) -> IsNull<T> {
    let nullable = TypeId::of::<T>() == TypeId::of::<()>()
        || std::any::type_name::<T>().starts_with("core::option::Option<");
    if !nullable {
        return Arc::new(|_| false);
    }
    let serde = carried
        .cloned()
        .or_else(|| builder.graph.borrow().serdes.get::<T>());
    match serde {
        Some(s) => Arc::new(move |v| matches!(s.serialize_nullable(v), Ok(None))),
        None => Arc::new(|_| false),
    }
}

/// The topics of the sources feeding `node` within its sub-topology (Kafka's
/// `subTopologySourceNodes`), for co-partition groups.
fn source_topics(g: &Graph, node: usize) -> BTreeSet<TopicName> {
    let mut topics = BTreeSet::new();
    let mut stack = vec![node];
    let mut seen = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        match &g.nodes[n].kind {
            NodeKind::Source { topics: t, .. } => topics.extend(t.iter().cloned()),
            _ => stack.extend(g.nodes[n].parents.iter().copied()),
        }
    }
    topics
}

/// Records that the inputs of `a` and `b` must be co-partitioned (Kafka's
/// `ensureCopartitionWith`).
fn copartition(builder: &StreamsBuilder, a: usize, b: usize) {
    let mut g = builder.graph.borrow_mut();
    let mut topics = source_topics(&g, a);
    topics.extend(source_topics(&g, b));
    g.copartition.push(topics);
}

/// The smaller of two optional graces (a join inherits the smaller window grace).
fn min_grace(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// A key-value store for a table operator.
fn kv_store<K: 'static, V: 'static>(
    name: &str,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
    logging: bool,
    caching: bool,
) -> StoreBuilder {
    let mut store = StoreBuilder::new(name, StoreKind::KeyValue).with_serdes(keys, values);
    store.logging = logging;
    store.caching = caching;
    store
}

/// The shared state of a table source: its store, materialized on demand.
struct SourceState<K, V> {
    node: usize,
    store: String,
    generated: bool,
    logging: bool,
    caching: bool,
    keys: Option<SerdeRef<K>>,
    values: Option<SerdeRef<V>>,
    /// The store's serdes once it is materialized.
    materialized: Mutex<Option<(SerdeRef<K>, SerdeRef<V>)>>,
    send_old: SendOldValues,
}

impl<K: Data, V: Data> SourceState<K, V> {
    fn is_materialized(&self) -> bool {
        self.materialized.lock().is_some()
    }

    /// Adds the store to the topology (once); Kafka's `KTableSource.materialize()`.
    fn materialize(&self, builder: &StreamsBuilder) -> (SerdeRef<K>, SerdeRef<V>) {
        if let Some(s) = self.materialized.lock().clone() {
            return s;
        }
        let what = format!("store {}", self.store);
        let keys = builder.serde_for(self.keys.clone(), &what);
        let values = builder.serde_for(self.values.clone(), &what);
        {
            let mut g = builder.graph.borrow_mut();
            if self.generated {
                g.generated_names.push(format!("store {}", self.store));
            }
            g.add_store(
                kv_store(
                    &self.store,
                    keys.clone(),
                    values.clone(),
                    self.logging,
                    self.caching,
                ),
                Some(self.node),
            );
        }
        *self.materialized.lock() = Some((keys.clone(), values.clone()));
        (keys, values)
    }
}

/// Options of a table source.
pub(crate) struct TableSourceOptions<K, V> {
    /// The store's name (generated names are burned before the call).
    pub(crate) store: String,
    pub(crate) generated: bool,
    /// Materialized from the start (a queryable name was given).
    pub(crate) queryable: bool,
    pub(crate) logging: bool,
    pub(crate) caching: bool,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
}

/// Adds a table source node (Kafka's `KTableSource`) named `name` under `parent`, reading
/// `VIn`s and turning each into the table's new value with `to_value`. Used by
/// `StreamsBuilder::table`, `KStream::to_table`, and results that are tables of a stream
/// (foreign-key joins).
pub(crate) fn add_table_source<'b, K: Data, VIn: Data, V: Data>(
    builder: &'b StreamsBuilder,
    parent: usize,
    name: (String, Option<usize>),
    options: TableSourceOptions<K, V>,
    to_value: ToTableValue<VIn, V>,
) -> KTable<'b, K, V> {
    let key_is_null = null_check(builder, options.keys.as_ref());
    let send_old = SendOldValues::default();
    // The node is added under the same borrow, so its index is the one the store will be
    // connected to when the table is materialized.
    let mut g = builder.graph.borrow_mut();
    let state = Arc::new(SourceState {
        node: g.nodes.len(),
        store: options.store.clone(),
        generated: options.generated,
        logging: options.logging,
        caching: options.caching,
        keys: options.keys.clone(),
        values: options.values.clone(),
        materialized: Mutex::new(None),
        send_old: send_old.clone(),
    });
    let factory_state = state.clone();
    let factory: NodeFactory = Arc::new(move || {
        let store = factory_state
            .materialized
            .lock()
            .clone()
            .map(|(k, v)| TableStore::new(factory_state.store.clone(), k, v));
        Box::new(TableSourceNode {
            key_is_null: key_is_null.clone(),
            to_value: to_value.clone(),
            store,
            send_old: factory_state.send_old.get(),
        })
    });
    let node = g.add(name, NodeKind::Processor, &[parent], factory);
    drop(g);
    if options.queryable {
        state.materialize(builder);
    }
    let (view_state, old_state) = (state.clone(), state);
    let store_name = options.store.clone();
    register_table(
        builder,
        node,
        TableEntry {
            view: Arc::new(move |b: &StreamsBuilder| {
                let (k, v) = view_state.materialize(b);
                store_getter(store_name.clone(), k, v)
            }),
            enable_old: Arc::new(move |b: &StreamsBuilder, force| {
                if !force && !old_state.is_materialized() {
                    return false;
                }
                old_state.send_old.enable();
                old_state.materialize(b);
                true
            }),
            sending: SendOldValues::default(),
        },
    );
    KTable {
        builder,
        node,
        keys: options.keys,
        values: options.values,
        store: options.queryable.then_some(options.store),
        send_old_values: vec![send_old],
        grace_ms: None,
    }
}

// ---------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------

impl StreamsBuilder {
    /// A table of `topic` (Kafka's `StreamsBuilder.table`): the latest value per key, with
    /// the default serdes of `K` and `V`. A record with a null value (tombstone) deletes its
    /// key; a record with a null key is dropped. The table gets a key-value store
    /// `<topic>-STATE-STORE-<n>` only when it must be materialized (a join, a grouping, old
    /// values); name it with [`table_with`](Self::table_with) to query it.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.table::<String, i64>("prices").to_stream().to("price-updates");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let prices = driver.input::<String, Option<i64>>("prices");
    /// prices.pipe("apple".into(), Some(3), 0)?;
    /// prices.pipe("apple".into(), None, 1)?; // a tombstone deletes "apple"
    /// let out = driver.output::<String, Option<i64>>("price-updates").read_values()?;
    /// assert_eq!(out, vec![Some(3), None]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn table<K: Data, V: Data>(&self, topic: &str) -> KTable<'_, K, V> {
        self.table_with(topic, Consumed::default(), Materialized::default())
    }

    /// [`table`](Self::table) with `consumed`'s serdes, timestamp extractor and name
    /// (source `<name>-source`, table `<name>`) and `materialized`'s store options; a
    /// store name ([`Materialized::named`]) materializes the table at once, queryable by
    /// that name.
    ///
    /// ```
    /// # use freshet_streams::{Consumed, Materialized, StreamsBuilder, Utf8, BigEndian};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// let builder = StreamsBuilder::new();
    /// let prices = builder.table_with::<String, i64>(
    ///     "prices",
    ///     Consumed::with(Utf8, BigEndian),
    ///     Materialized::named("prices-store"),
    /// );
    /// assert_eq!(prices.queryable_store_name(), Some("prices-store"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<i64>>("prices").pipe("apple".into(), Some(3), 7)?;
    /// let store = driver.key_value_store::<String, i64>("prices-store")?;
    /// assert_eq!(store.get(&"apple".to_string())?, Some((3, 7)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn table_with<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<'_, K, V> {
        let (store, generated) = match materialized.name.clone() {
            Some(n) => (n, false),
            None => (
                self.graph
                    .borrow_mut()
                    .new_name(&format!("{topic}-STATE-STORE-"))
                    .0,
                true,
            ),
        };
        let keys = consumed.keys.or(materialized.keys);
        let values = consumed.values.or(materialized.values);
        let what = format!("source of table {topic}");
        let key_serde = self.serde_for(keys.clone(), &what);
        let value_serde = self.serde_for(values.clone(), &what);
        let extractor = consumed.extractor.map(|extract| {
            Arc::new(
                move |r: &Record<K, Option<V>>, partition_time: i64| match &r.value {
                    Some(v) => extract(
                        &Record {
                            key: r.key.clone(),
                            value: v.clone(),
                            timestamp: r.timestamp,
                            headers: r.headers.clone(),
                        },
                        partition_time,
                    ),
                    None => r.timestamp,
                },
            ) as crate::dsl::options::TimestampExtractor<K, Option<V>>
        });
        let source = self.add_source::<K, Option<V>>(
            consumed.name.as_ref().map(|n| format!("{n}-source")),
            vec![TopicName::External(topic.to_string())],
            key_serde.clone(),
            Arc::new(Nullable(value_serde.clone())),
            extractor,
        );
        let name = self
            .graph
            .borrow_mut()
            .name_or(consumed.name, "KTABLE-SOURCE-");
        add_table_source(
            self,
            source,
            name,
            TableSourceOptions {
                queryable: !generated,
                store,
                generated,
                logging: materialized.logging,
                caching: materialized.caching,
                keys: Some(key_serde),
                values: Some(value_serde),
            },
            Arc::new(|v: Option<V>| v),
        )
    }
}

impl<'b, K: Data, V: Data> KStream<'b, K, V> {
    /// A table of this stream's records (Kafka's `toTable`): each record sets its key's
    /// value; a null value (only `Option`s have one) deletes it. Repartitions first when
    /// the key changed upstream (topic `KSTREAM-TOTABLE-<n>-repartition`).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("logins")
    ///     .to_table()
    ///     .filter(|_user, device| device != "unknown")
    ///     .to_stream()
    ///     .to("known-logins");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let logins = driver.input::<String, String>("logins");
    /// logins.pipe("ann".into(), "phone".into(), 0)?;
    /// logins.pipe("ann".into(), "unknown".into(), 1)?;
    /// let out = driver.output::<String, Option<String>>("known-logins").read_values()?;
    /// assert_eq!(out, vec![Some("phone".to_string()), None]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn to_table(&self) -> KTable<'b, K, V> {
        self.to_table_with(Materialized::default())
    }

    /// [`to_table`](Self::to_table) with a store name (which materializes the table,
    /// queryable by that name), serdes, caching and logging.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .select_key(|_k, v| v.to_uppercase())
    ///     .to_table_with(Materialized::named("latest"));
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "KSTREAM-TOTABLE-0000000002-repartition");
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "a".into(), 5)?;
    /// let store = driver.key_value_store::<String, String>("latest")?;
    /// assert_eq!(store.get(&"A".to_string())?, Some(("a".to_string(), 5)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn to_table_with(&self, materialized: Materialized<K, V>) -> KTable<'b, K, V> {
        let (name, store, generated) = {
            let mut g = self.builder.graph.borrow_mut();
            let name = g.name_or(None, "KSTREAM-TOTABLE-");
            let (store, generated) = match materialized.name.clone() {
                Some(n) => (n, false),
                None => (g.new_name("KSTREAM-TOTABLE-STATE-STORE-").0, true),
            };
            (name, store, generated)
        };
        let keys = materialized.keys.or_else(|| self.keys.clone());
        let values = materialized.values.or_else(|| self.values.clone());
        let parent = if self.repartition_required {
            self.repartition_through(
                &name.0,
                true,
                keys.clone(),
                values.clone(),
                PartitionCount::MaxOf(Vec::new()),
                None,
            )
        } else {
            self.node
        };
        let value_is_null = null_check(self.builder, values.as_ref());
        add_table_source(
            self.builder,
            parent,
            name,
            TableSourceOptions {
                queryable: !generated,
                store,
                generated,
                logging: materialized.logging,
                caching: materialized.caching,
                keys,
                values,
            },
            Arc::new(move |v: V| if value_is_null(&v) { None } else { Some(v) }),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Table operators
// ---------------------------------------------------------------------------------------

impl<'b, K: Data, V: Data> KTable<'b, K, V> {
    /// Keeps the rows matching `predicate`; a row that stops matching (or never matched)
    /// becomes a delete downstream (Kafka's `KTable.filter`).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.table::<String, i64>("stock").filter(|_item, n| *n > 0).to_stream().to("in-stock");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let stock = driver.input::<String, Option<i64>>("stock");
    /// stock.pipe("pen".into(), Some(2), 0)?;
    /// stock.pipe("pen".into(), Some(0), 1)?;
    /// let out = driver.output::<String, Option<i64>>("in-stock").read_values()?;
    /// assert_eq!(out, vec![Some(2), None]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn filter(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<'b, K, V> {
        self.do_filter(Arc::new(predicate), false, None)
    }

    /// [`filter`](Self::filter), materialized: with a store name the result is kept in that
    /// store (queryable); without one, an index is burned as in Kafka and nothing is kept.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.table::<String, i64>("stock").filter_with(|_, n| *n > 0, Materialized::named("in-stock"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<i64>>("stock").pipe("pen".into(), Some(2), 0)?;
    /// driver.input::<String, Option<i64>>("stock").pipe("ink".into(), Some(0), 0)?;
    /// let store = driver.key_value_store::<String, i64>("in-stock")?;
    /// assert_eq!(store.all()?, vec![("pen".to_string(), 2, 0)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn filter_with(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<'b, K, V> {
        self.do_filter(Arc::new(predicate), false, Some(materialized))
    }

    /// Keeps the rows **not** matching `predicate` (Kafka's `KTable.filterNot`).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.table::<String, i64>("stock").filter_not(|_item, n| *n > 0).to_stream().to("sold-out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let stock = driver.input::<String, Option<i64>>("stock");
    /// stock.pipe("pen".into(), Some(0), 0)?;
    /// stock.pipe("pen".into(), Some(5), 1)?;
    /// let out = driver.output::<String, Option<i64>>("sold-out").read_values()?;
    /// assert_eq!(out, vec![Some(0), None]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn filter_not(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<'b, K, V> {
        self.do_filter(Arc::new(predicate), true, None)
    }

    /// [`filter_not`](Self::filter_not), materialized (see [`filter_with`](Self::filter_with)).
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.table::<String, i64>("stock").filter_not_with(|_, n| *n > 0, Materialized::named("sold-out"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<i64>>("stock").pipe("pen".into(), Some(0), 3)?;
    /// let store = driver.key_value_store::<String, i64>("sold-out")?;
    /// assert_eq!(store.get(&"pen".to_string())?, Some((0, 3)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn filter_not_with(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<'b, K, V> {
        self.do_filter(Arc::new(predicate), true, Some(materialized))
    }

    fn do_filter(
        &self,
        predicate: TablePredicate<K, V>,
        filter_not: bool,
        materialized: Option<Materialized<K, V>>,
    ) -> KTable<'b, K, V> {
        let parent = entry_of(self);
        let (mut keys, mut values) = (self.keys.clone(), self.values.clone());
        let (mut queryable, mut logging, mut caching) = (None, true, true);
        if let Some(m) = materialized {
            if m.name.is_none() {
                // Kafka burns a store index even though nothing is materialized.
                self.builder
                    .graph
                    .borrow_mut()
                    .new_name("KTABLE-FILTER-STATE-STORE-");
            }
            keys = m.keys.or(keys);
            values = m.values.or(values);
            (queryable, logging, caching) = (m.name, m.logging, m.caching);
        }
        let name = self
            .builder
            .graph
            .borrow_mut()
            .name_or(None, "KTABLE-FILTER-");
        // With a materialized parent, old values avoid needless deletes downstream.
        let flag = SendOldValues::default();
        if parent.enable(self.builder, false) {
            flag.enable();
        }
        let store = queryable.as_ref().map(|s| {
            let what = format!("store {s}");
            (
                s.clone(),
                self.builder.serde_for(keys.clone(), &what),
                self.builder.serde_for(values.clone(), &what),
            )
        });
        let (f_pred, f_flag, f_store) = (predicate.clone(), flag.clone(), store.clone());
        let factory: NodeFactory = Arc::new(move || {
            Box::new(TableFilterNode {
                predicate: f_pred.clone(),
                filter_not,
                send_old: f_flag.get(),
                store: f_store.clone().map(|(n, k, v)| TableStore::new(n, k, v)),
            })
        });
        let node = {
            let mut g = self.builder.graph.borrow_mut();
            let node = g.add(name, NodeKind::Processor, &[self.node], factory);
            if let Some((s, k, v)) = &store {
                g.add_store(
                    kv_store(s, k.clone(), v.clone(), logging, caching),
                    Some(node),
                );
            }
            node
        };
        let (v_parent, v_store) = (parent.clone(), store);
        let view: ViewFn<K, V> = Arc::new(move |b: &StreamsBuilder| match &v_store {
            Some((s, k, v)) => store_getter(s.clone(), k.clone(), v.clone()),
            None => {
                let up = (v_parent.view)(b);
                let predicate = predicate.clone();
                ValueGetterSupplier {
                    stores: up.stores.clone(),
                    make: Arc::new(move |ctx| {
                        Ok(Box::new(FilterGetter {
                            parent: (up.make)(ctx)?,
                            predicate: predicate.clone(),
                            filter_not,
                        }) as Box<dyn ValueGetter<K, V>>)
                    }),
                }
            }
        });
        let (o_flag, is_queryable) = (flag.clone(), queryable.is_some());
        let enable_old: EnableOldFn = Arc::new(move |b: &StreamsBuilder, force| {
            if is_queryable || parent.enable(b, force) {
                o_flag.enable();
            }
            o_flag.get()
        });
        register_table(
            self.builder,
            node,
            TableEntry {
                view,
                enable_old,
                sending: SendOldValues::default(),
            },
        );
        KTable {
            builder: self.builder,
            node,
            keys,
            values,
            store: queryable,
            send_old_values: vec![flag],
            grace_ms: self.grace_ms,
        }
    }

    /// Maps each value, keeping the key (Kafka's `KTable.mapValues`); deletes stay
    /// deletes.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.table::<String, String>("names").map_values(|n| n.len() as i64).to_stream().to("lengths");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let names = driver.input::<String, Option<String>>("names");
    /// names.pipe("a".into(), Some("ann".into()), 0)?;
    /// names.pipe("a".into(), None, 1)?;
    /// let out = driver.output::<String, Option<i64>>("lengths").read_values()?;
    /// assert_eq!(out, vec![Some(3), None]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn map_values<V2: Data>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
    ) -> KTable<'b, K, V2> {
        self.do_map_values(Arc::new(move |_k: &K, v: &V| mapper(v)), None)
    }

    /// [`map_values`](Self::map_values), materialized: with a store name the result is
    /// kept in that store (queryable); the value serde comes from `materialized` or the
    /// registered default.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, String>("names")
    ///     .map_values_with(|n| n.len() as i64, Materialized::named("name-lengths"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("names").pipe("a".into(), Some("ann".into()), 4)?;
    /// let store = driver.key_value_store::<String, i64>("name-lengths")?;
    /// assert_eq!(store.get(&"a".to_string())?, Some((3, 4)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn map_values_with<V2: Data>(
        &self,
        mapper: impl Fn(&V) -> V2 + Send + Sync + 'static,
        materialized: Materialized<K, V2>,
    ) -> KTable<'b, K, V2> {
        self.do_map_values(Arc::new(move |_k: &K, v: &V| mapper(v)), Some(materialized))
    }

    fn do_map_values<V2: Data>(
        &self,
        mapper: TableMapper<K, V, V2>,
        materialized: Option<Materialized<K, V2>>,
    ) -> KTable<'b, K, V2> {
        let parent = entry_of(self);
        let mut keys = self.keys.clone();
        let mut values: Option<SerdeRef<V2>> = None;
        let (mut queryable, mut logging, mut caching) = (None, true, true);
        if let Some(m) = materialized {
            if m.name.is_none() {
                self.builder
                    .graph
                    .borrow_mut()
                    .new_name("KTABLE-MAPVALUES-STATE-STORE-");
            }
            keys = m.keys.or(keys);
            values = m.values;
            (queryable, logging, caching) = (m.name, m.logging, m.caching);
        }
        let name = self
            .builder
            .graph
            .borrow_mut()
            .name_or(None, "KTABLE-MAPVALUES-");
        let flag = SendOldValues::default();
        let store = queryable.as_ref().map(|s| {
            let what = format!("store {s}");
            (
                s.clone(),
                self.builder.serde_for(keys.clone(), &what),
                self.builder.serde_for(values.clone(), &what),
            )
        });
        let (f_map, f_flag, f_store) = (mapper.clone(), flag.clone(), store.clone());
        let factory: NodeFactory = Arc::new(move || {
            Box::new(TableMapValuesNode {
                mapper: f_map.clone(),
                send_old: f_flag.get(),
                store: f_store.clone().map(|(n, k, v)| TableStore::new(n, k, v)),
            })
        });
        let node = {
            let mut g = self.builder.graph.borrow_mut();
            let node = g.add(name, NodeKind::Processor, &[self.node], factory);
            if let Some((s, k, v)) = &store {
                g.add_store(
                    kv_store(s, k.clone(), v.clone(), logging, caching),
                    Some(node),
                );
            }
            node
        };
        if store.is_some() && values.is_none() {
            values = store.as_ref().map(|(_, _, v)| v.clone());
        }
        let (v_parent, v_store) = (parent.clone(), store);
        let view: ViewFn<K, V2> = Arc::new(move |b: &StreamsBuilder| match &v_store {
            Some((s, k, v)) => store_getter(s.clone(), k.clone(), v.clone()),
            None => {
                let up = (v_parent.view)(b);
                let mapper = mapper.clone();
                ValueGetterSupplier {
                    stores: up.stores.clone(),
                    make: Arc::new(move |ctx| {
                        Ok(Box::new(MapValuesGetter {
                            parent: (up.make)(ctx)?,
                            mapper: mapper.clone(),
                        }) as Box<dyn ValueGetter<K, V2>>)
                    }),
                }
            }
        });
        let (o_flag, is_queryable) = (flag.clone(), queryable.is_some());
        let enable_old: EnableOldFn = Arc::new(move |b: &StreamsBuilder, force| {
            if is_queryable || parent.enable(b, force) {
                o_flag.enable();
            }
            o_flag.get()
        });
        register_table(
            self.builder,
            node,
            TableEntry {
                view,
                enable_old,
                sending: SendOldValues::default(),
            },
        );
        KTable {
            builder: self.builder,
            node,
            keys,
            values,
            store: queryable,
            send_old_values: vec![flag],
            grace_ms: self.grace_ms,
        }
    }

    /// Kafka's `KTableImpl.enableSendingOldValues(forceMaterialization)`: makes this
    /// table's updates carry old values, materializing a source table when `force` (else
    /// only if it is materialized already); `true` when it now sends them. Kafka's tests
    /// call it on join results; applications need not.
    ///
    /// ```
    /// # use freshet_streams::StreamsBuilder;
    /// let builder = StreamsBuilder::new();
    /// let table = builder.table::<String, String>("t");
    /// assert!(!table.enable_sending_old_values(false)); // not materialized: refused
    /// assert!(table.enable_sending_old_values(true));
    /// assert!(table.sending_old_value_enabled());
    /// ```
    #[doc(hidden)]
    pub fn enable_sending_old_values(&self, force: bool) -> bool {
        entry_of(self).enable(self.builder, force)
    }

    /// Whether this table's updates carry old values (Kafka's `sendingOldValueEnabled`).
    ///
    /// ```
    /// # use freshet_streams::StreamsBuilder;
    /// let builder = StreamsBuilder::new();
    /// let table = builder.table::<String, String>("t");
    /// assert!(!table.sending_old_value_enabled());
    /// ```
    #[doc(hidden)]
    pub fn sending_old_value_enabled(&self) -> bool {
        entry_of(self).sending.get()
    }

    /// A stream of this table's raw updates, `(key, Change(new, old))`, from a node named
    /// `name` that takes no index (as a processor Kafka's tests attach to a table node with
    /// `Topology.addProcessor`). For tests of table operators.
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use freshet_streams::{Change, StreamsBuilder, testing::TopologyTestDriver};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, i64>("t")
    ///     .observe_changes("proc")
    ///     .for_each(move |k, c| sink.lock().unwrap().push((k.clone(), c.clone())));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<i64>>("t").pipe("a".into(), Some(1), 0)?;
    /// assert_eq!(*seen.lock().unwrap(), vec![("a".to_string(), Change { new: Some(1), old: None })]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    #[doc(hidden)]
    pub fn observe_changes(&self, name: &str) -> KStream<'b, K, Change<V>> {
        let f = stateless(|ctx, r: Record<K, Change<V>>| ctx.forward(r));
        let node = self.builder.graph.borrow_mut().add(
            (name.to_string(), None),
            NodeKind::Processor,
            &[self.node],
            f,
        );
        KStream::new(self.builder, node, self.keys.clone(), None, false)
    }
}

// ---------------------------------------------------------------------------------------
// Table-table joins
// ---------------------------------------------------------------------------------------

impl<'b, K: Data, V: Data> KTable<'b, K, V> {
    /// Inner join with `other` on the key (Kafka's `KTable.join`): an update of either
    /// side emits `joiner(this, other)` when both sides have a value, a delete when a side
    /// was deleted while the other has a value, and nothing while the other side is
    /// absent. The result's timestamp is the larger of the two sides'. Both tables are
    /// materialized; their inputs must be co-partitioned.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<i32, String>("names");
    /// let cities = builder.table::<i32, String>("cities");
    /// names.join(&cities, |n, c| format!("{n} in {c}")).to_stream().to("people");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("names").pipe(1, Some("ann".into()), 5)?;
    /// driver.input::<i32, Option<String>>("cities").pipe(1, Some("oslo".into()), 3)?;
    /// let out = driver.output::<i32, Option<String>>("people").read_records()?;
    /// assert_eq!((out[0].value.as_deref(), out[0].timestamp), (Some("ann in oslo"), 5));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KTable<'b, K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<'b, K, VR> {
        self.do_join(other, inner_joiner(joiner), (false, false), None)
    }

    /// [`join`](Self::join) with the result materialized in a store (named, or
    /// `KTABLE-MERGE-STATE-STORE-<n>`).
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<i32, String>("names");
    /// let cities = builder.table::<i32, String>("cities");
    /// names.join_with(&cities, |n, c| format!("{n} in {c}"), Materialized::named("people"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("names").pipe(1, Some("ann".into()), 5)?;
    /// driver.input::<i32, Option<String>>("cities").pipe(1, Some("oslo".into()), 3)?;
    /// let store = driver.key_value_store::<i32, String>("people")?;
    /// assert_eq!(store.get(&1)?, Some(("ann in oslo".to_string(), 5)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_with<VO: Data, VR: Data>(
        &self,
        other: &KTable<'b, K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<'b, K, VR> {
        self.do_join(
            other,
            inner_joiner(joiner),
            (false, false),
            Some(materialized),
        )
    }

    /// Left join with `other` (Kafka's `KTable.leftJoin`): every row of this table is in
    /// the result, joined with `other`'s value when there is one (`None` otherwise). An
    /// update of `other` emits only for keys this table has. The timestamp is the larger of
    /// both sides', or this side's when `other` has no value.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<i32, String>("names");
    /// let cities = builder.table::<i32, String>("cities");
    /// names
    ///     .left_join(&cities, |n, c| format!("{n} in {}", c.map_or("?", |c| c.as_str())))
    ///     .to_stream()
    ///     .to("people");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("names").pipe(1, Some("ann".into()), 5)?;
    /// driver.input::<i32, Option<String>>("cities").pipe(1, Some("oslo".into()), 7)?;
    /// let out = driver.output::<i32, Option<String>>("people").read_records()?;
    /// let got: Vec<_> = out.iter().map(|r| (r.value.clone().unwrap(), r.timestamp)).collect();
    /// assert_eq!(got, vec![("ann in ?".to_string(), 5), ("ann in oslo".to_string(), 7)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<'b, K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<'b, K, VR> {
        self.do_join(other, left_joiner(joiner), (true, false), None)
    }

    /// [`left_join`](Self::left_join) with the result materialized in a store.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<i32, String>("names");
    /// let cities = builder.table::<i32, String>("cities");
    /// names.left_join_with(&cities, |n, c| format!("{n}/{c:?}"), Materialized::named("people"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("names").pipe(1, Some("ann".into()), 5)?;
    /// let store = driver.key_value_store::<i32, String>("people")?;
    /// assert_eq!(store.get(&1)?, Some(("ann/None".to_string(), 5)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_with<VO: Data, VR: Data>(
        &self,
        other: &KTable<'b, K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<'b, K, VR> {
        self.do_join(
            other,
            left_joiner(joiner),
            (true, false),
            Some(materialized),
        )
    }

    /// Outer join with `other` (Kafka's `KTable.outerJoin`): a key is in the result while
    /// either side has it; the joiner sees `None` for the side that does not. The
    /// timestamp is the larger of both sides', or the updated side's when the other has no
    /// value.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let a = builder.table::<i32, String>("a");
    /// let b = builder.table::<i32, String>("b");
    /// a.outer_join(&b, |x, y| format!("{x:?}+{y:?}")).to_stream().to("both");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("b").pipe(1, Some("y".into()), 0)?;
    /// let out = driver.output::<i32, Option<String>>("both").read_values()?;
    /// assert_eq!(out, vec![Some("None+Some(\"y\")".to_string())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<'b, K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<'b, K, VR> {
        self.do_join(other, outer_joiner(joiner), (true, true), None)
    }

    /// [`outer_join`](Self::outer_join) with the result materialized in a store.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let a = builder.table::<i32, String>("a");
    /// let b = builder.table::<i32, String>("b");
    /// a.outer_join_with(&b, |x, y| format!("{x:?}+{y:?}"), Materialized::named("both"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("b").pipe(1, Some("y".into()), 2)?;
    /// let store = driver.key_value_store::<i32, String>("both")?;
    /// assert_eq!(store.get(&1)?, Some(("None+Some(\"y\")".to_string(), 2)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn outer_join_with<VO: Data, VR: Data>(
        &self,
        other: &KTable<'b, K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<'b, K, VR> {
        self.do_join(
            other,
            outer_joiner(joiner),
            (true, true),
            Some(materialized),
        )
    }

    /// Kafka's `KTableImpl.doJoin`.
    fn do_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<'b, K, VO>,
        joiner: TableJoiner<V, VO, VR>,
        (left_outer, right_outer): (bool, bool),
        materialized: Option<Materialized<K, VR>>,
    ) -> KTable<'b, K, VR> {
        let builder = self.builder;
        let store_name = materialized.as_ref().map(|m| {
            builder
                .graph
                .borrow_mut()
                .store_name_or(m.name.clone(), "KTABLE-MERGE-STATE-STORE-")
        });
        let merge_name = builder.graph.borrow_mut().name_or(None, "KTABLE-MERGE-");
        copartition(builder, self.node, other.node);
        let (this_entry, other_entry) = (entry_of(self), entry_of(other));
        if left_outer {
            this_entry.enable(builder, true);
        }
        if right_outer {
            other_entry.enable(builder, true);
        }
        let this_view = (this_entry.view)(builder);
        let other_view = (other_entry.view)(builder);
        let this_name = builder.graph.borrow_mut().name_or(None, "KTABLE-JOINTHIS-");
        let other_name = builder
            .graph
            .borrow_mut()
            .name_or(None, "KTABLE-JOINOTHER-");
        let (this_kind, other_kind) = match (left_outer, right_outer) {
            (false, _) => (JoinKind::Inner, JoinKind::Inner),
            (true, false) => (JoinKind::Left, JoinKind::Right),
            (true, true) => (JoinKind::Outer, JoinKind::Outer),
        };
        let key_is_null = null_check(builder, self.keys.as_ref());
        let (this_flag, other_flag, merge_flag) = (
            SendOldValues::default(),
            SendOldValues::default(),
            SendOldValues::default(),
        );
        let j = joiner.clone();
        let reversed: TableJoiner<VO, V, VR> =
            Arc::new(move |b: Option<&VO>, a: Option<&V>| j(a, b));
        let this_factory: NodeFactory = {
            let (joiner, view, flag, null) = (
                joiner.clone(),
                other_view.clone(),
                this_flag.clone(),
                key_is_null.clone(),
            );
            Arc::new(move || {
                Box::new(TableJoinNode {
                    kind: this_kind,
                    joiner: joiner.clone(),
                    other: view.clone(),
                    getter: None,
                    send_old: flag.get(),
                    key_is_null: null.clone(),
                })
            })
        };
        let other_factory: NodeFactory = {
            let (joiner, view, flag, null) =
                (reversed, this_view.clone(), other_flag.clone(), key_is_null);
            Arc::new(move || {
                Box::new(TableJoinNode {
                    kind: other_kind,
                    joiner: joiner.clone(),
                    other: view.clone(),
                    getter: None,
                    send_old: flag.get(),
                    key_is_null: null.clone(),
                })
            })
        };
        let mut keys = self.keys.clone();
        let mut values: Option<SerdeRef<VR>> = None;
        let mut store = None;
        if let (Some(m), Some(s)) = (materialized, &store_name) {
            keys = m.keys.or(keys);
            let what = format!("store {s}");
            let k = builder.serde_for(keys.clone(), &what);
            let v = builder.serde_for(m.values.clone(), &what);
            values = Some(v.clone());
            store = Some((s.clone(), k, v, m.logging, m.caching));
        }
        let merge_factory: NodeFactory = {
            let (flag, store) = (merge_flag.clone(), store.clone());
            Arc::new(move || {
                Box::new(TableMergeNode {
                    send_old: flag.get(),
                    store: store
                        .clone()
                        .map(|(n, k, v, _, _)| TableStore::new(n, k, v)),
                })
            })
        };
        let node = {
            let mut g = builder.graph.borrow_mut();
            let this_node = g.add(this_name, NodeKind::Processor, &[self.node], this_factory);
            for s in &other_view.stores {
                g.connect(this_node, s);
            }
            let other_node = g.add(
                other_name,
                NodeKind::Processor,
                &[other.node],
                other_factory,
            );
            for s in &this_view.stores {
                g.connect(other_node, s);
            }
            let node = g.add(
                merge_name,
                NodeKind::Processor,
                &[this_node, other_node],
                merge_factory,
            );
            if let Some((s, k, v, logging, caching)) = &store {
                g.add_store(
                    kv_store(s, k.clone(), v.clone(), *logging, *caching),
                    Some(node),
                );
            }
            node
        };
        let view: ViewFn<K, VR> = {
            let store = store.clone();
            Arc::new(move |_b: &StreamsBuilder| match &store {
                Some((s, k, v, _, _)) => store_getter(s.clone(), k.clone(), v.clone()),
                None => {
                    let (left, right, joiner) =
                        (this_view.clone(), other_view.clone(), joiner.clone());
                    let mut stores = left.stores.clone();
                    for s in &right.stores {
                        if !stores.contains(s) {
                            stores.push(s.clone());
                        }
                    }
                    ValueGetterSupplier {
                        stores,
                        make: Arc::new(move |ctx| {
                            Ok(Box::new(JoinGetter {
                                kind: this_kind,
                                joiner: joiner.clone(),
                                left: (left.make)(ctx)?,
                                right: (right.make)(ctx)?,
                            })
                                as Box<dyn ValueGetter<K, VR>>)
                        }),
                    }
                }
            })
        };
        let enable_old: EnableOldFn = {
            let flags = [this_flag, other_flag, merge_flag.clone()];
            Arc::new(move |b: &StreamsBuilder, _force| {
                // Table-table joins need both sides materialized.
                this_entry.enable(b, true);
                other_entry.enable(b, true);
                for f in &flags {
                    f.enable();
                }
                true
            })
        };
        register_table(
            builder,
            node,
            TableEntry {
                view,
                enable_old,
                sending: SendOldValues::default(),
            },
        );
        KTable {
            builder,
            node,
            keys,
            values,
            store: store_name,
            send_old_values: vec![merge_flag],
            grace_ms: min_grace(self.grace_ms, other.grace_ms),
        }
    }
}

fn inner_joiner<V: 'static, VO: 'static, VR: 'static>(
    joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
) -> TableJoiner<V, VO, VR> {
    Arc::new(move |a: Option<&V>, b: Option<&VO>| match (a, b) {
        (Some(a), Some(b)) => Some(joiner(a, b)),
        _ => None,
    })
}

fn left_joiner<V: 'static, VO: 'static, VR: 'static>(
    joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
) -> TableJoiner<V, VO, VR> {
    Arc::new(move |a: Option<&V>, b: Option<&VO>| a.map(|a| joiner(a, b)))
}

fn outer_joiner<V: 'static, VO: 'static, VR: 'static>(
    joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
) -> TableJoiner<V, VO, VR> {
    Arc::new(move |a: Option<&V>, b: Option<&VO>| Some(joiner(a, b)))
}

// ---------------------------------------------------------------------------------------
// Grouping
// ---------------------------------------------------------------------------------------

impl<'b, K: Data, V: Data> KTable<'b, K, V> {
    /// Groups the table's rows by a new key and value for an aggregation (Kafka's
    /// `KTable.groupBy`): each update is sent to a repartition topic as the removal of the
    /// old row from its group and the addition of the new row to its group (one record
    /// when both groups are the same); a pair whose key or value is null (`None`, `()`) is
    /// skipped. Makes this table send old values.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, String>("user-city")
    ///     .group_by(|_user, city| (city.clone(), 1_i64))
    ///     .count()
    ///     .to_stream()
    ///     .to("users-per-city");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let users = driver.input::<String, Option<String>>("user-city");
    /// users.pipe("ann".into(), Some("oslo".into()), 0)?;
    /// users.pipe("ann".into(), Some("rome".into()), 1)?;
    /// let out = driver.output::<String, i64>("users-per-city").read_key_values()?;
    /// assert_eq!(out, vec![("oslo".into(), 1), ("oslo".into(), 0), ("rome".into(), 1)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn group_by<K1: Data, V1: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (K1, V1) + Send + Sync + 'static,
    ) -> KGroupedTable<'b, K1, V1> {
        self.group_by_with(selector, Grouped::default())
    }

    /// [`group_by`](Self::group_by) with serdes for the repartition topic and a name (the
    /// selecting node's name and the topic `<name>-repartition`).
    ///
    /// ```
    /// # use freshet_streams::{Grouped, StreamsBuilder, Utf8, BigEndian};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, String>("user-city")
    ///     .group_by_with(|_u, city| (city.clone(), 1_i64), Grouped::with(Utf8, BigEndian).with_name("by-city"))
    ///     .count();
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "by-city-repartition");
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn group_by_with<K1: Data, V1: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (K1, V1) + Send + Sync + 'static,
        grouped: Grouped<K1, V1>,
    ) -> KGroupedTable<'b, K1, V1> {
        let builder = self.builder;
        let name = builder
            .graph
            .borrow_mut()
            .name_or(grouped.name.clone(), "KTABLE-SELECT-");
        let group_keys = builder.serde_for(grouped.keys.clone(), "group-by of a table");
        let value_is_null = null_check(builder, grouped.values.as_ref());
        let key_is_null = null_check(builder, self.keys.as_ref());
        let selector: crate::ops::table_aggregate::Selector<K, V, K1, V1> = Arc::new(selector);
        let factory: NodeFactory = Arc::new(move || {
            Box::new(TableSelectNode {
                selector: selector.clone(),
                key_is_null: key_is_null.clone(),
                group_keys: group_keys.clone(),
                value_is_null: value_is_null.clone(),
            })
        });
        let node = builder
            .graph
            .borrow_mut()
            .add(name, NodeKind::Processor, &[self.node], factory);
        // The groups need each row's old value to subtract it.
        self.enable_send_old_values();
        KGroupedTable {
            builder,
            node,
            keys: grouped.keys,
            values: grouped.values,
            name: grouped.name,
            repartition: Cell::new(None),
        }
    }
}

/// A table grouped by a new key, ready for an aggregation (Kafka's `KGroupedTable`).
/// Every aggregation reads the groups from a repartition topic
/// `<Grouped name, else the store name>-repartition` and keeps its result in a key-value
/// store (`KTABLE-AGGREGATE-STATE-STORE-<n>` unless named).
pub struct KGroupedTable<'b, K, V> {
    builder: &'b StreamsBuilder,
    node: usize,
    keys: Option<SerdeRef<K>>,
    values: Option<SerdeRef<V>>,
    name: Option<String>,
    /// The repartition source, reused by later aggregations when the grouping is named.
    repartition: Cell<Option<usize>>,
}

impl<K, V> std::fmt::Debug for KGroupedTable<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.builder.graph.borrow();
        f.debug_struct("KGroupedTable")
            .field("node", &g.nodes[self.node].name)
            .field("name", &self.name)
            .finish()
    }
}

impl<'b, K: Data, V: Data> KGroupedTable<'b, K, V> {
    /// Counts the rows per group (Kafka's `KGroupedTable.count`): +1 for a row added to a
    /// group, −1 for a row that left it.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, String>("user-city")
    ///     .group_by(|user, city| (city.clone(), user.clone()))
    ///     .count()
    ///     .to_stream()
    ///     .to("users-per-city");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let users = driver.input::<String, Option<String>>("user-city");
    /// users.pipe("ann".into(), Some("oslo".into()), 0)?;
    /// users.pipe("bob".into(), Some("oslo".into()), 1)?;
    /// users.pipe("ann".into(), None, 2)?;
    /// let out = driver.output::<String, i64>("users-per-city").read_values()?;
    /// assert_eq!(out, vec![1, 2, 1]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count(&self) -> KTable<'b, K, i64> {
        self.count_with(Materialized::default())
    }

    /// [`count`](Self::count) with a store name, serdes, caching and logging.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, String>("user-city")
    ///     .group_by(|user, city| (city.clone(), user.clone()))
    ///     .count_with(Materialized::named("city-counts"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("user-city").pipe("ann".into(), Some("oslo".into()), 4)?;
    /// let store = driver.key_value_store::<String, i64>("city-counts")?;
    /// assert_eq!(store.get(&"oslo".to_string())?, Some((1, 4)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<'b, K, i64> {
        let mut materialized = materialized;
        if materialized.values.is_none() {
            materialized.values = Some(Arc::new(BigEndian));
        }
        self.do_aggregate(
            "KTABLE-AGGREGATE-",
            materialized,
            Arc::new(|_: &K, _: &V, agg: Option<i64>| agg.unwrap_or(0) + 1),
            Arc::new(|_: &K, _: &V, agg: i64| agg - 1),
        )
    }

    /// Combines the values of each group (Kafka's `KGroupedTable.reduce`): `adder(agg,
    /// value)` for a row added to the group (the first row is the aggregate),
    /// `subtractor(agg, value)` for a row that left it.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, i64>("balances")
    ///     .group_by(|_account, balance| ("total".to_string(), *balance))
    ///     .reduce(|agg, v| agg + v, |agg, v| agg - v)
    ///     .to_stream()
    ///     .to("total");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let balances = driver.input::<String, Option<i64>>("balances");
    /// balances.pipe("a".into(), Some(10), 0)?;
    /// balances.pipe("b".into(), Some(5), 1)?;
    /// balances.pipe("a".into(), Some(7), 2)?;
    /// let out = driver.output::<String, i64>("total").read_values()?;
    /// assert_eq!(out, vec![10, 15, 12]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> KTable<'b, K, V> {
        self.reduce_with(adder, subtractor, Materialized::default())
    }

    /// [`reduce`](Self::reduce) with a store name, serdes, caching and logging.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, i64>("balances")
    ///     .group_by(|_account, balance| ("total".to_string(), *balance))
    ///     .reduce_with(|agg, v| agg + v, |agg, v| agg - v, Materialized::named("totals"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<i64>>("balances").pipe("a".into(), Some(10), 3)?;
    /// let store = driver.key_value_store::<String, i64>("totals")?;
    /// assert_eq!(store.get(&"total".to_string())?, Some((10, 3)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn reduce_with(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<'b, K, V> {
        let mut materialized = materialized;
        if materialized.values.is_none() {
            materialized.values = self.values.clone();
        }
        let add: Adder<K, V, V> = Arc::new(move |_: &K, v: &V, agg: Option<V>| match agg {
            None => v.clone(),
            Some(agg) => adder(agg, v.clone()),
        });
        let remove: Subtractor<K, V, V> =
            Arc::new(move |_: &K, v: &V, agg: V| subtractor(agg, v.clone()));
        self.do_aggregate("KTABLE-REDUCE-", materialized, add, remove)
    }

    /// Folds each group's values into an aggregate starting at `initializer()` (Kafka's
    /// `KGroupedTable.aggregate`): `adder` for a row added to the group, `subtractor` for a
    /// row that left it.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.register_serde::<Vec<String>>(freshet_streams::Json::default());
    /// builder
    ///     .table::<String, String>("user-city")
    ///     .group_by(|user, city| (city.clone(), user.clone()))
    ///     .aggregate(
    ///         Vec::<String>::new,
    ///         |_city, user, mut users| { users.push(user.clone()); users },
    ///         |_city, user, mut users| { users.retain(|u| u != user); users },
    ///     )
    ///     .map_values(|users| users.join(","))
    ///     .to_stream()
    ///     .to("residents");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let users = driver.input::<String, Option<String>>("user-city");
    /// users.pipe("ann".into(), Some("oslo".into()), 0)?;
    /// users.pipe("bob".into(), Some("oslo".into()), 1)?;
    /// let out = driver.output::<String, String>("residents").read_values()?;
    /// assert_eq!(out, vec!["ann", "ann,bob"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<'b, K, VA> {
        self.aggregate_with(initializer, adder, subtractor, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) with a store name, serdes, caching and logging.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .table::<String, i64>("balances")
    ///     .group_by(|_account, balance| ("total".to_string(), *balance))
    ///     .aggregate_with(|| 0_i64, |_, v, agg| agg + v, |_, v, agg| agg - v, Materialized::named("sums"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<i64>>("balances").pipe("a".into(), Some(10), 3)?;
    /// let store = driver.key_value_store::<String, i64>("sums")?;
    /// assert_eq!(store.get(&"total".to_string())?, Some((10, 3)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate_with<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<'b, K, VA> {
        let add: Adder<K, V, VA> = Arc::new(move |k: &K, v: &V, agg: Option<VA>| {
            adder(k, v, agg.unwrap_or_else(&initializer))
        });
        self.do_aggregate("KTABLE-AGGREGATE-", materialized, add, Arc::new(subtractor))
    }

    /// Kafka's `KGroupedTableImpl.doAggregate`: store, sink and source names, the
    /// aggregating node; the repartition topic is reused only when the grouping is named.
    fn do_aggregate<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        adder: Adder<K, V, VA>,
        subtractor: Subtractor<K, V, VA>,
    ) -> KTable<'b, K, VA> {
        let builder = self.builder;
        let store = builder
            .graph
            .borrow_mut()
            .store_name_or(materialized.name.clone(), "KTABLE-AGGREGATE-STATE-STORE-");
        let topic = format!(
            "{}-repartition",
            self.name.clone().unwrap_or_else(|| store.clone())
        );
        let what = format!("repartition topic {topic}");
        let group_keys = builder.serde_for(self.keys.clone(), &what);
        let group_values = builder.serde_for(self.values.clone(), &what);
        let change_serde: SerdeRef<Change<V>> = Arc::new(ChangeSerde {
            inner: group_values,
        });
        let sink_name = builder.graph.borrow_mut().name_or(None, "KSTREAM-SINK-");
        let reuse = self.repartition.get().filter(|_| self.name.is_some());
        let source = match reuse {
            Some(source) => {
                builder.graph.borrow_mut().next_index();
                source
            }
            None => {
                let internal = TopicName::Internal(topic.clone());
                let sink = SinkNode {
                    target: SinkTarget::Fixed(internal.clone()),
                    keys: group_keys.clone(),
                    values: change_serde.clone(),
                    partitioner: None,
                };
                {
                    let mut g = builder.graph.borrow_mut();
                    g.add(
                        sink_name,
                        NodeKind::Sink {
                            topic: SinkTopic::Fixed(internal.clone()),
                        },
                        &[self.node],
                        Arc::new(move || Box::new(sink.clone())),
                    );
                    g.add_internal_topic(
                        InternalTopic {
                            name: internal.clone(),
                            partitions: PartitionCount::MaxOf(Vec::new()),
                            config: repartition_topic_config(),
                        },
                        self.name.is_none() && is_generated_store(&store),
                    );
                }
                let source = builder.add_source::<K, Change<V>>(
                    None,
                    vec![internal],
                    group_keys.clone(),
                    change_serde,
                    None,
                );
                self.repartition.set(Some(source));
                source
            }
        };
        let processor = builder.graph.borrow_mut().name_or(None, prefix);
        let what = format!("store {store}");
        let keys = builder.serde_for(materialized.keys.or_else(|| self.keys.clone()), &what);
        let values = builder.serde_for(materialized.values, &what);
        let flag = SendOldValues::default();
        let factory: NodeFactory = {
            let (store, keys, values, flag) =
                (store.clone(), keys.clone(), values.clone(), flag.clone());
            Arc::new(move || {
                Box::new(TableAggregateNode {
                    store: TableStore::new(store.clone(), keys.clone(), values.clone()),
                    send_old: flag.get(),
                    adder: adder.clone(),
                    subtractor: subtractor.clone(),
                })
            })
        };
        let node = {
            let mut g = builder.graph.borrow_mut();
            let node = g.add(processor, NodeKind::Processor, &[source], factory);
            g.add_store(
                kv_store(
                    &store,
                    keys.clone(),
                    values.clone(),
                    materialized.logging,
                    materialized.caching,
                ),
                Some(node),
            );
            node
        };
        KTable {
            builder,
            node,
            keys: Some(keys),
            values: Some(values),
            store: Some(store),
            send_old_values: vec![flag],
            grace_ms: None,
        }
    }
}

/// Whether a store name was generated (`KTABLE-AGGREGATE-STATE-STORE-<n>`).
fn is_generated_store(name: &str) -> bool {
    name.starts_with("KTABLE-AGGREGATE-STATE-STORE-")
        && name.len() > 10
        && name[name.len() - 10..].bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------
// Stream-table joins
// ---------------------------------------------------------------------------------------

/// Options of a stream-table join (Kafka's `Joined`): serdes of the key, the stream's
/// values and the table's values (used when the stream is repartitioned first), and a
/// name for the join node and the repartition topic (`<name>-repartition`). Kafka's grace
/// period for versioned tables is not supported.
///
/// ```
/// use freshet_streams::{Joined, Utf8};
/// let joined = Joined::<String, String, String>::with(Utf8, Utf8, Utf8).with_name("orders-with-customers");
/// # let _ = joined;
/// ```
pub struct Joined<K, V, VO> {
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    pub(crate) other_values: Option<SerdeRef<VO>>,
    pub(crate) name: Option<String>,
}

impl<K, V, VO> std::fmt::Debug for Joined<K, V, VO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined").field("name", &self.name).finish()
    }
}

impl<K, V, VO> Default for Joined<K, V, VO> {
    fn default() -> Self {
        Joined {
            keys: None,
            values: None,
            other_values: None,
            name: None,
        }
    }
}

impl<K: 'static, V: 'static, VO: 'static> Joined<K, V, VO> {
    /// Joins with these serdes (key, stream value, table value).
    pub fn with(
        keys: impl Serde<K> + 'static,
        values: impl Serde<V> + 'static,
        other_values: impl Serde<VO> + 'static,
    ) -> Self {
        Joined {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            other_values: Some(Arc::new(other_values)),
            name: None,
        }
    }

    /// Names the join (Kafka's `Joined.as`).
    pub fn named(name: impl Into<String>) -> Self {
        Joined {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Names the join.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the key serde.
    pub fn with_key_serde(mut self, keys: impl Serde<K> + 'static) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Sets the stream's value serde.
    pub fn with_value_serde(mut self, values: impl Serde<V> + 'static) -> Self {
        self.values = Some(Arc::new(values));
        self
    }

    /// Sets the table's value serde.
    pub fn with_other_value_serde(mut self, other_values: impl Serde<VO> + 'static) -> Self {
        self.other_values = Some(Arc::new(other_values));
        self
    }
}

impl<'b, K: Data, V: Data> KStream<'b, K, V> {
    /// Joins each record with `table`'s current value for its key (Kafka's
    /// `KStream.join(KTable)`): records whose key the table lacks are dropped, table
    /// updates emit nothing. The output keeps the record's key, timestamp and headers.
    /// Records with a null key or value are dropped. Repartitions this stream first when
    /// its key changed upstream; the inputs must be co-partitioned.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let customers = builder.table::<i32, String>("customers");
    /// builder
    ///     .stream::<i32, String>("orders")
    ///     .join_table(&customers, |order, customer| format!("{order} for {customer}"))
    ///     .to("enriched");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("customers").pipe(7, Some("ann".into()), 0)?;
    /// driver.input::<i32, String>("orders").pipe(7, "book".into(), 10)?;
    /// driver.input::<i32, String>("orders").pipe(8, "pen".into(), 11)?;
    /// let out = driver.output::<i32, String>("enriched").read_records()?;
    /// assert_eq!(out.len(), 1);
    /// assert_eq!((out[0].value.as_str(), out[0].timestamp), ("book for ann", 10));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<'b, K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<'b, K, VR> {
        self.join_table_with(table, joiner, Joined::default())
    }

    /// [`join_table`](Self::join_table) with serdes and a name ([`Joined`]).
    ///
    /// ```
    /// # use freshet_streams::{Joined, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let customers = builder.table::<i32, String>("customers");
    /// let enriched = builder
    ///     .stream::<i32, String>("orders")
    ///     .join_table_with(&customers, |o, c| format!("{o} for {c}"), Joined::named("enrich"));
    /// assert_eq!(enriched.node_name(), "enrich");
    /// enriched.to("enriched");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, Option<String>>("customers").pipe(7, Some("ann".into()), 0)?;
    /// driver.input::<i32, String>("orders").pipe(7, "book".into(), 10)?;
    /// assert_eq!(driver.output::<i32, String>("enriched").read_values()?, vec!["book for ann"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_table_with<VT: Data, VR: Data>(
        &self,
        table: &KTable<'b, K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> KStream<'b, K, VR> {
        let joiner = Arc::new(move |_: &K, v: &V, t: Option<&VT>| t.map(|t| joiner(v, t)));
        self.stream_table_join(table, joiner, joined, false)
    }

    /// Left join of each record with `table`'s current value for its key (Kafka's
    /// `KStream.leftJoin(KTable)`): the joiner sees `None` when the table lacks the key. A
    /// record with a null key (but a value) is joined with `None`; one with a null value
    /// is dropped.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let customers = builder.table::<i32, String>("customers");
    /// builder
    ///     .stream::<i32, String>("orders")
    ///     .left_join_table(&customers, |o, c| format!("{o} for {}", c.map_or("nobody", |c| c.as_str())))
    ///     .to("enriched");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("orders").pipe(8, "pen".into(), 11)?;
    /// assert_eq!(driver.output::<i32, String>("enriched").read_values()?, vec!["pen for nobody"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<'b, K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<'b, K, VR> {
        self.left_join_table_with(table, joiner, Joined::default())
    }

    /// [`left_join_table`](Self::left_join_table) with serdes and a name ([`Joined`]).
    ///
    /// ```
    /// # use freshet_streams::{Joined, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let customers = builder.table::<String, String>("customers");
    /// builder
    ///     .stream::<String, String>("orders")
    ///     .select_key(|_k, order| order[..1].to_string())
    ///     .left_join_table_with(&customers, |o, c| format!("{o}/{c:?}"), Joined::named("enrich"))
    ///     .to("enriched");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "enrich-repartition");
    /// let driver = TopologyTestDriver::new(topology)?;
    /// driver.input::<String, String>("orders").pipe("x".into(), "a1".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("enriched").read_values()?, vec!["a1/None"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_table_with<VT: Data, VR: Data>(
        &self,
        table: &KTable<'b, K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> KStream<'b, K, VR> {
        let joiner = Arc::new(move |_: &K, v: &V, t: Option<&VT>| Some(joiner(v, t)));
        self.stream_table_join(table, joiner, joined, true)
    }

    /// Kafka's `KStreamImpl.repartitionForJoin`: writes this stream to
    /// `<name>-repartition` and reads it back. Three indices are always taken; a later join
    /// of the same stream under the stream's own name (an unnamed join) reuses the
    /// repartition its previous join made, as Kafka does.
    pub(crate) fn repartition_for_join(
        &self,
        name: &str,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
    ) -> KStream<'b, K, V> {
        let own_name = self.node_name();
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
                    name,
                    is_generated(name),
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

    fn stream_table_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<'b, K, VT>,
        joiner: crate::ops::stream_table_join::StreamTableJoiner<K, V, VT, VR>,
        joined: Joined<K, V, VT>,
        left: bool,
    ) -> KStream<'b, K, VR> {
        let stream = if self.repartition_required {
            let name = joined.name.clone().unwrap_or_else(|| self.node_name());
            self.repartition_for_join(&name, joined.keys.clone(), joined.values.clone())
        } else {
            self.clone()
        };
        let builder = self.builder;
        copartition(builder, stream.node, table.node);
        let prefix = if left {
            "KSTREAM-LEFTJOIN-"
        } else {
            "KSTREAM-JOIN-"
        };
        let name = builder.graph.borrow_mut().name_or(joined.name, prefix);
        let view = (entry_of(table).view)(builder);
        let keys = joined.keys.or_else(|| stream.keys.clone());
        let key_is_null = null_check(builder, keys.as_ref());
        let value_is_null = null_check(builder, stream.values.as_ref());
        let factory: NodeFactory = {
            let view = view.clone();
            Arc::new(move || {
                Box::new(StreamTableJoinNode {
                    key_mapper: Arc::new(|k: &K, _: &V| k.clone()),
                    joiner: joiner.clone(),
                    left,
                    key_is_null: key_is_null.clone(),
                    mapped_key_is_null: key_is_null.clone(),
                    value_is_null: value_is_null.clone(),
                    table: view.clone(),
                    getter: None,
                })
            })
        };
        let node = {
            let mut g = builder.graph.borrow_mut();
            let node = g.add(name, NodeKind::Processor, &[stream.node], factory);
            for s in &view.stores {
                g.connect(node, s);
            }
            node
        };
        KStream::new(builder, node, keys, None, false)
    }
}
