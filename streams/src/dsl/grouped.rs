//! `KGroupedStream`: a stream grouped by key, ready for an aggregation.
//!
//! Names follow Kafka exactly (they decide store, changelog and repartition topic names):
//! the store `KSTREAM-AGGREGATE-STATE-STORE-<n>` (unless `Materialized::named`), then the
//! processor, then — when the key changed upstream — the repartition topic
//! `<Grouped name, else the store name>-repartition`.

use std::sync::Arc;

use crate::dsl::kstream::{is_generated, KStream};
use crate::dsl::ktable::{KTable, SendOldValues};
use crate::dsl::options::Materialized;
use crate::ops::aggregate::{AggregateNode, Aggregator, FlushQueue};
use crate::ops::front::Front;
use crate::serde::{BigEndian, SerdeRef};
use crate::store::{StoreBuilder, StoreKind};
use crate::task::node::Data;
use crate::topology::{NodeFactory, NodeKind, PartitionCount};

/// A grouped stream (Kafka's `KGroupedStream<K, V>`).
pub struct KGroupedStream<'b, K, V> {
    pub(crate) stream: KStream<'b, K, V>,
    pub(crate) name: Option<String>,
}

impl<K, V> std::fmt::Debug for KGroupedStream<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KGroupedStream")
            .field("stream", &self.stream)
            .field("name", &self.name)
            .finish()
    }
}

/// Names of a stateful operator being added: its store and its processor.
pub(crate) struct OperatorNames {
    pub(crate) store: String,
    pub(crate) processor: (String, Option<usize>),
}

impl<'b, K: Data, V: Data> KGroupedStream<'b, K, V> {
    pub(crate) fn new(stream: KStream<'b, K, V>, name: Option<String>) -> Self {
        KGroupedStream { stream, name }
    }

    /// An aggregation's store and processor names, taken in Kafka's order (`extra_burn`:
    /// Kafka's compatibility burn of `count(Materialized)` without a store name), and its
    /// store's serdes: `materialized`'s, else the stream's key serde and the registered
    /// defaults.
    pub(crate) fn aggregation_store<VA: Data>(
        &self,
        prefix: &str,
        materialized: &Materialized<K, VA>,
        extra_burn: bool,
    ) -> (OperatorNames, SerdeRef<K>, SerdeRef<VA>) {
        let builder = self.stream.builder;
        let names = {
            let mut g = builder.graph.borrow_mut();
            if extra_burn && materialized.name.is_none() {
                g.next_index();
            }
            let store =
                g.store_name_or(materialized.name.clone(), &format!("{prefix}STATE-STORE-"));
            let processor = g.name_or(None, prefix);
            OperatorNames { store, processor }
        };
        let what = format!("store {}", names.store);
        let keys = materialized
            .keys
            .clone()
            .or_else(|| self.stream.keys.clone());
        let keys = builder.serde_for(keys, &what);
        let values = builder.serde_for(materialized.values.clone(), &what);
        (names, keys, values)
    }

    /// The node records reach the aggregation from: the stream, or the source of a
    /// repartition topic named after the grouping or the store.
    pub(crate) fn repartitioned_parent(&self, store: &str) -> usize {
        if !self.stream.repartition_required {
            return self.stream.node;
        }
        let prefix = self.name.clone().unwrap_or_else(|| store.to_string());
        let generated = self.name.is_none() && is_generated(store);
        self.stream.repartition_through(
            &prefix,
            generated,
            None,
            None,
            PartitionCount::MaxOf(Vec::new()),
            None,
        )
    }

    /// Adds the stateful node under `parent` with `store` attached.
    pub(crate) fn add_stateful(
        &self,
        processor: (String, Option<usize>),
        parent: usize,
        store: StoreBuilder,
        factory: NodeFactory,
    ) -> usize {
        let mut g = self.stream.builder.graph.borrow_mut();
        let node = g.add(processor, NodeKind::Processor, &[parent], factory);
        g.add_store(store, Some(node));
        node
    }

    /// Counts records per key (Kafka's `count()`); the table is materialized in a
    /// key-value store with a generated name.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count().to_stream().to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe("a".into(), "x".into(), 0)?;
    /// input.pipe("b".into(), "x".into(), 0)?;
    /// input.pipe("a".into(), "x".into(), 0)?;
    /// let out = driver.output::<String, Option<i64>>("out").read_key_values()?;
    /// assert_eq!(out, vec![("a".into(), Some(1)), ("b".into(), Some(1)), ("a".into(), Some(2))]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count(&self) -> KTable<'b, K, i64> {
        self.count_inner(Materialized::default(), false)
    }

    /// [`count`](Self::count) with a store name, serdes, caching and logging.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let counts = builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .count_with(Materialized::named("clicks-per-user"));
    /// assert_eq!(counts.queryable_store_name(), Some("clicks-per-user"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 5)?;
    /// clicks.pipe("ann".into(), "/b".into(), 3)?;
    /// clicks.pipe("bob".into(), "/a".into(), 4)?;
    /// // The store keeps each count with the latest timestamp of its records.
    /// let store = driver.key_value_store::<String, i64>("clicks-per-user")?;
    /// assert_eq!(store.get(&"ann".into())?, Some((2, 5)));
    /// assert_eq!(store.all()?, vec![("ann".into(), 2, 5), ("bob".into(), 1, 4)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<'b, K, i64> {
        self.count_inner(materialized, true)
    }

    fn count_inner(&self, materialized: Materialized<K, i64>, given: bool) -> KTable<'b, K, i64> {
        let materialized = materialized.with_default_values(Some(Arc::new(BigEndian)));
        let agg: Aggregator<K, V, i64> = Arc::new(|_, _, old| old.unwrap_or(0) + 1);
        self.aggregate_inner("KSTREAM-AGGREGATE-", materialized, given, agg)
    }

    /// Combines values per key with `reducer`; the first value of a key is its aggregate
    /// (Kafka's `reduce`).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i64>("in").group_by_key().reduce(|a, b| a.max(b)).to_stream().to("max");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("in");
    /// input.pipe("a".into(), 3, 0)?;
    /// input.pipe("a".into(), 1, 1)?;
    /// assert_eq!(driver.output::<String, i64>("max").read_values()?, vec![3, 3]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn reduce(&self, reducer: impl Fn(V, V) -> V + Send + Sync + 'static) -> KTable<'b, K, V> {
        self.reduce_with(reducer, Materialized::default())
    }

    /// [`reduce`](Self::reduce) with a store name, serdes, caching and logging.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("temperatures")
    ///     .group_by_key()
    ///     .reduce_with(|a, b| a.max(b), Materialized::named("max-temperature"))
    ///     .to_stream()
    ///     .to("max-temperatures");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("temperatures");
    /// input.pipe_all([("oslo".into(), 12, 0), ("oslo".into(), 17, 1), ("oslo".into(), 9, 2)])?;
    /// assert_eq!(driver.output::<String, i64>("max-temperatures").read_values()?, vec![12, 17, 17]);
    /// let store = driver.key_value_store::<String, i64>("max-temperature")?;
    /// assert_eq!(store.get(&"oslo".into())?, Some((17, 2)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn reduce_with(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<'b, K, V> {
        let materialized = materialized.with_default_values(self.stream.values.clone());
        let agg: Aggregator<K, V, V> = Arc::new(move |_, v, old| match old {
            None => v.clone(),
            Some(a) => reducer(a, v.clone()),
        });
        self.aggregate_inner("KSTREAM-REDUCE-", materialized, false, agg)
    }

    /// Folds values per key into an aggregate that starts at `initializer()` (Kafka's
    /// `aggregate`).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .group_by_key()
    ///     .aggregate(String::new, |_k, v, agg| agg + v)
    ///     .to_stream()
    ///     .to("joined");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe("a".into(), "x".into(), 0)?;
    /// input.pipe("a".into(), "y".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("joined").read_values()?, vec!["x", "xy"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<'b, K, VA> {
        self.aggregate_with(initializer, aggregator, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) with a store name, serdes, caching and logging.
    ///
    /// An aggregate of a type with no registered serde needs one here:
    ///
    /// ```
    /// # use freshet_streams::{Json, Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("page-views")
    ///     .group_by_key()
    ///     .aggregate_with(
    ///         Vec::new,
    ///         |_user, page, mut pages: Vec<String>| {
    ///             pages.push(page.clone());
    ///             pages
    ///         },
    ///         Materialized::named("pages-per-user").with_value_serde(Json::<Vec<String>>::default()),
    ///     );
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let views = driver.input::<String, String>("page-views");
    /// views.pipe("ann".into(), "/a".into(), 0)?;
    /// views.pipe("ann".into(), "/b".into(), 1)?;
    /// let store = driver.key_value_store::<String, Vec<String>>("pages-per-user")?;
    /// assert_eq!(store.get(&"ann".into())?, Some((vec!["/a".to_string(), "/b".to_string()], 1)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate_with<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<'b, K, VA> {
        let agg: Aggregator<K, V, VA> =
            Arc::new(move |k, v, old| aggregator(k, v, old.unwrap_or_else(&initializer)));
        self.aggregate_inner("KSTREAM-AGGREGATE-", materialized, false, agg)
    }

    fn aggregate_inner<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        extra_burn: bool,
        aggregator: Aggregator<K, V, VA>,
    ) -> KTable<'b, K, VA> {
        let (names, keys, values) = self.aggregation_store(prefix, &materialized, extra_burn);
        let parent = self.repartitioned_parent(&names.store);
        let store = StoreBuilder::new(names.store.clone(), StoreKind::KeyValue)
            .with_serdes(keys.clone(), values.clone())
            .with_settings(materialized.logging, materialized.caching);
        let send_old = SendOldValues::default();
        let (store_name, k, v, flag) = (
            names.store.clone(),
            keys.clone(),
            values.clone(),
            send_old.clone(),
        );
        let factory: NodeFactory = Arc::new(move || {
            Box::new(AggregateNode {
                store_name: store_name.clone(),
                keys: k.clone(),
                values: v.clone(),
                aggregator: aggregator.clone(),
                send_old: flag.clone(),
                store: None,
                queue: FlushQueue::default(),
                front: Front::default(),
                front_budget: 0,
            })
        });
        let node = self.add_stateful(names.processor, parent, store, factory);
        KTable {
            builder: self.stream.builder,
            node,
            keys: Some(keys),
            values: Some(values),
            store: Some(names.store),
            send_old_values: vec![send_old],
            grace_ms: None,
        }
    }
}
