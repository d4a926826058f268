//! Tables: sources ([`StreamsBuilder::table`], [`KStream::to_table`](crate::KStream::to_table)),
//! operators ([`KTable::filter`], [`KTable::map_values`]), groupings ([`KTable::group_by`] →
//! [`KGroupedTable`]), table-table joins ([`KTable::join`], [`KTable::left_join`],
//! [`KTable::outer_join`]) and stream-table joins
//! ([`KStream::join_table`](crate::KStream::join_table),
//! [`KStream::left_join_table`](crate::KStream::left_join_table)), with Kafka Streams'
//! semantics and names.
//!
//! # Materialization and value getters
//! A table is kept in a key-value store only when something needs it, as in Kafka: a
//! source table (`table(topic)`, `to_table()`) gets its store (`<topic>-STATE-STORE-<n>`,
//! `KSTREAM-TOTABLE-STATE-STORE-<n>`) when it is named ([`Materialized::named`](crate::Materialized::named)), joined,
//! grouped, or asked for old values; `filter` / `map_values` only when named; a join
//! result only when given a [`Materialized`](crate::Materialized); aggregations always. A join reads the other
//! side's current value through a *value getter* (Kafka's `KTableValueGetterSupplier`):
//! from the table's store when it has one, else computed through its parent's getter.
//!
//! # Old values
//! Table updates flow as [`Change`](crate::Change)s. An operator that needs each update's previous value
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

mod grouped;
mod join;
mod ops;
mod source;
mod stream_table;

pub use grouped::KGroupedTable;
pub use stream_table::Joined;

pub(crate) use source::{add_table_source, TableSourceOptions};

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::graph::Graph;
use crate::dsl::ktable::{KTable, SendOldValues};
use crate::error::{Error, Result};
use crate::ops::aggregate::decode;
use crate::ops::table_source::IsNull;
use crate::serde::{Serde, SerdeRef};
use crate::store::{StoreBuilder, StoreKind, StoreRef};
use crate::task::node::{Data, NodeContext};
use crate::topology::{NodeKind, TopicName};

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

/// Makes the getter of a table kept in a store from the store and its serdes (`KS`: the
/// store's key type).
pub(crate) type StoreGetterFn<KS, K, V> =
    fn(StoreRef, SerdeRef<KS>, SerdeRef<V>) -> Box<dyn ValueGetter<K, V>>;

/// The getter `make` builds over the store `store`.
pub(crate) fn getter_over<KS: Data, K: Data, V: Data>(
    store: String,
    keys: SerdeRef<KS>,
    values: SerdeRef<V>,
    make: StoreGetterFn<KS, K, V>,
) -> ValueGetterSupplier<K, V> {
    let name = store.clone();
    ValueGetterSupplier {
        stores: vec![store],
        make: Arc::new(move |ctx| Ok(make(ctx.store(&name)?, keys.clone(), values.clone()))),
    }
}

/// The getter of a table materialized in `store` (Kafka's
/// `KTableMaterializedValueGetterSupplier` / `KTableSourceValueGetterSupplier`).
pub(crate) fn store_getter<K: Data, V: Data>(
    store: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
) -> ValueGetterSupplier<K, V> {
    getter_over(store, keys, values, |store, keys, values| {
        Box::new(StoreGetter {
            store,
            keys,
            values,
        })
    })
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

/// Whether a value of `T` is null (Kafka drops null keys and values in many places): asked
/// of `carried` or the registered serde ([`Serde::is_null`](crate::Serde::is_null)), which
/// answers without serializing for the built-in serdes; with no serde nothing is null.
pub(crate) fn null_check<T: 'static>(
    builder: &StreamsBuilder,
    carried: Option<&SerdeRef<T>>,
) -> IsNull<T> {
    let serde = carried
        .cloned()
        .or_else(|| builder.graph.borrow().serdes.get::<T>());
    match serde {
        Some(s) => Arc::new(move |v| s.is_null(v)),
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
pub(crate) fn copartition(builder: &StreamsBuilder, a: usize, b: usize) {
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
    StoreBuilder::new(name, StoreKind::KeyValue)
        .with_serdes(keys, values)
        .with_settings(logging, caching)
}
