//! Table operators: `filter`, `filter_not`, `map_values` and the old-value switches.

use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::kstream::KStream;
use crate::dsl::ktable::{Change, KTable, SendOldValues};
use crate::dsl::options::Materialized;
use crate::ops::stateless::stateless;
use crate::ops::table_ops::{
    FilterGetter, MapValuesGetter, TableFilterNode, TableMapValuesNode, TableMapper, TablePredicate,
};
use crate::ops::table_source::TableStore;
use crate::record::Record;
use crate::serde::SerdeRef;
use crate::task::node::{Data, Node};
use crate::topology::{NodeFactory, NodeKind};

use super::{
    entry_of, kv_store, register_table, store_getter, EnableOldFn, TableEntry, ValueGetter,
    ValueGetterSupplier, ViewFn,
};

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
        let getter_predicate = predicate.clone();
        self.add_table_op(TableOp {
            prefix: "KTABLE-FILTER-",
            materialized,
            values: self.values.clone(),
            // With a materialized parent, old values avoid needless deletes downstream.
            old_from_materialized_parent: true,
            store_values: false,
            node: Arc::new(move |send_old, store| {
                Box::new(TableFilterNode {
                    predicate: predicate.clone(),
                    filter_not,
                    send_old,
                    store,
                })
            }),
            getter: Arc::new(move |parent| {
                Box::new(FilterGetter {
                    parent,
                    predicate: getter_predicate.clone(),
                    filter_not,
                })
            }),
        })
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
        let getter_mapper = mapper.clone();
        self.add_table_op(TableOp {
            prefix: "KTABLE-MAPVALUES-",
            materialized,
            values: None,
            old_from_materialized_parent: false,
            store_values: true,
            node: Arc::new(move |send_old, store| {
                Box::new(TableMapValuesNode {
                    mapper: mapper.clone(),
                    send_old,
                    store,
                })
            }),
            getter: Arc::new(move |parent| {
                Box::new(MapValuesGetter {
                    parent,
                    mapper: getter_mapper.clone(),
                })
            }),
        })
    }

    /// Adds a stateless table operator (Kafka's `KTableImpl.doFilter` / `doMapValues`):
    /// a node named `<prefix><n>`, materialized in a store when `materialized` names one
    /// (without a name Kafka burns a store index and keeps nothing); its view reads that
    /// store, else applies the operator to the parent's view.
    fn add_table_op<V2: Data>(&self, op: TableOp<K, V, V2>) -> KTable<'b, K, V2> {
        let builder = self.builder;
        let parent = entry_of(self);
        let (mut keys, mut values) = (self.keys.clone(), op.values);
        let (mut queryable, mut logging, mut caching) = (None, true, true);
        if let Some(m) = op.materialized {
            if m.name.is_none() {
                let store_prefix = format!("{}STATE-STORE-", op.prefix);
                builder.graph.borrow_mut().new_name(&store_prefix);
            }
            keys = m.keys.or(keys);
            values = m.values.or(values);
            (queryable, logging, caching) = (m.name, m.logging, m.caching);
        }
        let name = builder.graph.borrow_mut().name_or(None, op.prefix);
        let flag = SendOldValues::default();
        if op.old_from_materialized_parent && parent.enable(builder, false) {
            flag.enable();
        }
        let store = queryable.as_ref().map(|s| {
            let what = format!("store {s}");
            let k = builder.serde_for(keys.clone(), &what);
            (s.clone(), k, builder.serde_for(values.clone(), &what))
        });
        let (make_node, f_flag, f_store) = (op.node, flag.clone(), store.clone());
        let factory: NodeFactory = Arc::new(move || {
            let store = f_store.clone().map(|(n, k, v)| TableStore::new(n, k, v));
            make_node(f_flag.get(), store)
        });
        let node = {
            let mut g = builder.graph.borrow_mut();
            let node = g.add(name, NodeKind::Processor, &[self.node], factory);
            if let Some((s, k, v)) = &store {
                g.add_store(
                    kv_store(s, k.clone(), v.clone(), logging, caching),
                    Some(node),
                );
            }
            node
        };
        if op.store_values && values.is_none() {
            values = store.as_ref().map(|(_, _, v)| v.clone());
        }
        let (v_parent, getter) = (parent.clone(), op.getter);
        let view: ViewFn<K, V2> = Arc::new(move |b: &StreamsBuilder| match &store {
            Some((s, k, v)) => store_getter(s.clone(), k.clone(), v.clone()),
            None => {
                let up = (v_parent.view)(b);
                let getter = getter.clone();
                ValueGetterSupplier {
                    stores: up.stores.clone(),
                    make: Arc::new(move |ctx| Ok(getter((up.make)(ctx)?))),
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
        let sending = SendOldValues::default();
        let entry = TableEntry {
            view,
            enable_old,
            sending,
        };
        register_table(builder, node, entry);
        KTable {
            builder,
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

/// A stateless table operator for [`KTable::add_table_op`].
struct TableOp<K, V, V2> {
    /// The node name prefix, e.g. `KTABLE-FILTER-`.
    prefix: &'static str,
    materialized: Option<Materialized<K, V2>>,
    /// The value serde the result carries unless `materialized` gives one.
    values: Option<SerdeRef<V2>>,
    /// Sends old values from the start when the parent already does without forcing.
    old_from_materialized_parent: bool,
    /// Carries the store's value serde when a store is kept and no serde was given.
    store_values: bool,
    /// Makes the node: whether it sends old values, and its store.
    node: MakeOpNode<K, V2>,
    /// Computes the result's value from the parent's getter when there is no store.
    getter: WrapGetter<K, V, V2>,
}

/// Makes a table operator's node from whether it sends old values and its store.
type MakeOpNode<K, V2> =
    Arc<dyn Fn(bool, Option<TableStore<K, V2>>) -> Box<dyn Node> + Send + Sync>;

/// Makes a table operator's getter over its parent's.
type WrapGetter<K, V, V2> =
    Arc<dyn Fn(Box<dyn ValueGetter<K, V>>) -> Box<dyn ValueGetter<K, V2>> + Send + Sync>;
