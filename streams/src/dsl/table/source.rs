//! Table sources: `StreamsBuilder::table`, `KStream::to_table` and the table source
//! node other tables of a stream (foreign-key joins) are made of.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::kstream::KStream;
use crate::dsl::ktable::{KTable, SendOldValues};
use crate::dsl::options::{Consumed, Materialized};
use crate::ops::table_source::{TableSourceNode, TableStore, ToTableValue};
use crate::record::Record;
use crate::serde::{Nullable, SerdeRef};
use crate::task::node::Data;
use crate::topology::{NodeFactory, NodeKind, PartitionCount, TopicName};

use super::{kv_store, null_check, register_table, store_getter, TableEntry};

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
