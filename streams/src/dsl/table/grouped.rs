//! Grouping a table (`KTable::group_by`) and its aggregations ([`KGroupedTable`]).

use std::cell::Cell;
use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::kstream::repartition_topic_config;
use crate::dsl::ktable::{Change, KTable, SendOldValues};
use crate::dsl::options::{Grouped, Materialized};
use crate::ops::sink::{SinkNode, SinkTarget};
use crate::ops::table_aggregate::{
    Adder, ChangeSerde, Subtractor, TableAggregateNode, TableSelectNode,
};
use crate::ops::table_source::TableStore;
use crate::serde::{BigEndian, SerdeRef};
use crate::task::node::Data;
use crate::topology::{InternalTopic, NodeFactory, NodeKind, PartitionCount, SinkTopic, TopicName};

use super::{kv_store, null_check};

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
                let sink = SinkNode::new(
                    SinkTarget::Fixed(internal.clone()),
                    group_keys.clone(),
                    change_serde.clone(),
                    None,
                );
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
