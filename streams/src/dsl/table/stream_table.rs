//! Stream-table joins (`KStream::join_table`, `left_join_table`) and their options,
//! [`Joined`].

use std::sync::Arc;

use crate::dsl::kstream::KStream;
use crate::dsl::ktable::KTable;
use crate::ops::stream_table_join::StreamTableJoinNode;
use crate::serde::{Serde, SerdeRef};
use crate::task::node::Data;
use crate::topology::{NodeFactory, NodeKind};

use super::{copartition, entry_of, null_check};

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
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Joined, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<String, String>("names");
    /// builder
    ///     .stream::<String, i32>("scores")
    ///     .select_key(|player, _| player.to_lowercase())
    ///     // The key changed: the stream is repartitioned with these serdes first.
    ///     .join_table_with(&names, |score, name| format!("{name}: {score}"), Joined::with(Utf8, BigEndian, Utf8))
    ///     .to("named-scores");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("names").pipe("ann".into(), Some("Ann A.".into()), 0)?;
    /// driver.input::<String, i32>("scores").pipe("ANN".into(), 7, 1)?;
    /// assert_eq!(driver.output::<String, String>("named-scores").read_key_values()?, vec![("ann".into(), "Ann A.: 7".into())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{Joined, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<String, String>("names");
    /// let joined = builder
    ///     .stream::<String, String>("visits")
    ///     .select_key(|_, user| user.clone())
    ///     .join_table_with(&names, |_visit, name| name.clone(), Joined::named("visit-names"));
    /// // The join node and its repartition topic take the name.
    /// assert_eq!(joined.node_name(), "visit-names");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.internal_topics()[0].name.shown(), "visit-names-repartition");
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Joined {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Names the join.
    ///
    /// ```
    /// # use freshet_streams::{Joined, StreamsBuilder, Utf8};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<String, String>("names");
    /// let joined = builder
    ///     .stream::<String, String>("visits")
    ///     .join_table_with(&names, |_visit, name| name.clone(), Joined::with(Utf8, Utf8, Utf8).with_name("visit-names"));
    /// assert_eq!(joined.node_name(), "visit-names");
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the key serde.
    ///
    /// The key serde writes the repartition topic (when the stream's key changed) and the
    /// join's result:
    ///
    /// ```
    /// # use freshet_streams::{Joined, Json, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<String, String>("names");
    /// builder
    ///     .stream::<String, String>("visits")
    ///     .join_table_with(&names, |page, name| format!("{name} on {page}"), Joined::default().with_key_serde(Json::<String>::default()))
    ///     .to("named-visits");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("names").pipe("ann".into(), Some("Ann".into()), 0)?;
    /// driver.input::<String, String>("visits").pipe("ann".into(), "/a".into(), 1)?;
    /// let out = driver.output::<String, String>("named-visits").read_raw();
    /// assert_eq!(out[0].key.as_deref(), Some(&br#""ann""#[..]));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_key_serde(mut self, keys: impl Serde<K> + 'static) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Sets the stream's value serde.
    ///
    /// The repartition topic needs it when the stream's key changed; after `map` no serde
    /// is carried, so a value type without a registered default needs one here:
    ///
    /// ```
    /// # use freshet_streams::{Joined, Json, StreamsBuilder, testing::TopologyTestDriver};
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Visit { page: String }
    /// let builder = StreamsBuilder::new();
    /// let names = builder.table::<String, String>("names");
    /// builder
    ///     .stream::<String, String>("visits")
    ///     .map(|user, page| (user.clone(), Visit { page: page.clone() }))
    ///     .join_table_with(&names, |v, name| format!("{name} on {}", v.page), Joined::default().with_value_serde(Json::<Visit>::default()))
    ///     .to("named-visits");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("names").pipe("ann".into(), Some("Ann".into()), 0)?;
    /// driver.input::<String, String>("visits").pipe("ann".into(), "/a".into(), 1)?;
    /// assert_eq!(driver.output::<String, String>("named-visits").read_values()?, vec!["Ann on /a"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_value_serde(mut self, values: impl Serde<V> + 'static) -> Self {
        self.values = Some(Arc::new(values));
        self
    }

    /// Sets the table's value serde. Kept for Kafka's API: the join reads the table's values
    /// through the table's own store, with the table's serdes, so it does not change the
    /// result.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Joined, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let prices = builder.table::<String, i64>("prices");
    /// builder
    ///     .stream::<String, i64>("orders")
    ///     .join_table_with(&prices, |qty, price| qty * price, Joined::default().with_other_value_serde(BigEndian))
    ///     .to("order-totals");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<i64>>("prices").pipe("pen".into(), Some(3), 0)?;
    /// driver.input::<String, i64>("orders").pipe("pen".into(), 4, 1)?;
    /// assert_eq!(driver.output::<String, i64>("order-totals").read_values()?, vec![12]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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

    fn stream_table_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<'b, K, VT>,
        joiner: crate::ops::stream_table_join::StreamTableJoiner<K, V, VT, VR>,
        joined: Joined<K, V, VT>,
        left: bool,
    ) -> KStream<'b, K, VR> {
        let (keys, values) = (joined.keys.clone(), joined.values.clone());
        let stream = self.repartition_for_join(joined.name.clone(), keys, values);
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
