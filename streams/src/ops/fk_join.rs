//! The foreign-key table-table join (Kafka's KIP-213, `KTableImpl.doJoinOnForeignKey` and
//! the `foreignkeyjoin` package): [`KTable::join_fk`], [`KTable::left_join_fk`] and their
//! `_with` variants, and the operators behind them.
//!
//! # How it works
//! The left table `K → V` refers to the right table `KO → VO` through a foreign key that
//! `extractor(V)` computes. The two tables need not be co-partitioned:
//!
//! 1. **Subscription** (left side, node `KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>`):
//!    each update of a left row sends a *subscription* keyed by its foreign key to the
//!    internal topic `<app>-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic`
//!    (co-partitioned with the right table): the row's primary key, its partition, a
//!    murmur3 hash of its new value, and an instruction (unsubscribe from an old foreign key,
//!    subscribe and answer, …).
//! 2. **Right side**: the subscription is kept in the store
//!    `KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-<n>` under `(foreign key, primary key)` and
//!    answered with the right table's current value; an update of a right row answers every
//!    subscription of its key (a prefix scan). Answers go to
//!    `<app>-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic`, to the left row's partition.
//! 3. **Resolution** (left side): an answer whose hash is not the hash of the left row's
//!    current value is stale (the row changed since) and is dropped; otherwise the joiner
//!    runs and the result table `KTABLE-FK-JOIN-OUTPUT-<n>` is updated (a delete when the
//!    join has no result any more).
//!
//! The records on both internal topics use Kafka's layouts (`SubscriptionWrapper` version 1,
//! `SubscriptionResponseWrapper` version 0), and the hash is Kafka's `Murmur3.hash128`.

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{KeyValueStore, Timestamped};

use crate::dsl::graph::Graph;
use crate::dsl::kstream::repartition_topic_config;
use crate::dsl::ktable::{Change, KTable};
use crate::dsl::options::Materialized;
use crate::dsl::table::{
    add_table_source, entry_of, null_check, TableSourceOptions, ValueGetter, ValueGetterSupplier,
};
use crate::error::{Error, Result};
use crate::ops::sink::{SinkNode, SinkTarget};
use crate::ops::table_source::{drop_null_key, IsNull};
use crate::partitioner::StreamPartitioner;
use crate::record::Record;
use crate::serde::{Nullable, RawBytes, Serde, SerdeRef};
use crate::store::{StoreBuilder, StoreKind, StoreRef};
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};
use crate::topology::{InternalTopic, NodeKind, PartitionCount, SinkTopic, TopicName};

// ---------------------------------------------------------------------------------------
// The DSL
// ---------------------------------------------------------------------------------------

impl<'b, K: Data, V: Data> KTable<'b, K, V> {
    /// Joins each row with the row of `other` whose key `foreign_key_extractor` computes
    /// from the row's value (Kafka's foreign-key `KTable.join`, KIP-213). The result is a
    /// table keyed like this one: `joiner(value, other value)` while both rows exist; an
    /// update of either side updates it, and it is deleted when a side disappears or the
    /// foreign key moves to a missing row. A `None` (or null) foreign key means no match.
    /// The tables need not be co-partitioned; both are materialized. The result is not
    /// materialized (see [`join_fk_with`](Self::join_fk_with)).
    ///
    /// ```
    /// use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let orders = builder.table::<String, String>("orders"); // order → "customer|item"
    /// let customers = builder.table::<String, String>("customers"); // customer → name
    /// orders
    ///     .join_fk(&customers, |o| o.split('|').next().map(str::to_string), |o, name| format!("{o} for {name}"))
    ///     .to_stream()
    ///     .to("orders-with-names");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("customers").pipe("c1".into(), Some("Ann".into()), 0)?;
    /// driver.input::<String, Option<String>>("orders").pipe("o1".into(), Some("c1|book".into()), 1)?;
    /// driver.input::<String, Option<String>>("customers").pipe("c1".into(), Some("Anne".into()), 2)?;
    /// let out = driver.output::<String, Option<String>>("orders-with-names").read_key_values()?;
    /// assert_eq!(out, vec![
    ///     ("o1".to_string(), Some("c1|book for Ann".to_string())),
    ///     ("o1".to_string(), Some("c1|book for Anne".to_string())),
    /// ]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_fk<KO: Data, VO: Data, VR: Data, R: Into<Option<KO>>>(
        &self,
        other: &KTable<'b, KO, VO>,
        foreign_key_extractor: impl Fn(&V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<'b, K, VR> {
        self.join_fk_with(
            other,
            foreign_key_extractor,
            joiner,
            Materialized::default(),
        )
    }

    /// [`join_fk`](Self::join_fk) with the result kept as `materialized` says (a name makes
    /// it queryable; otherwise the store `KTABLE-FK-JOIN-OUTPUT-STATE-STORE-<n>` is made
    /// only if a later operator needs it).
    ///
    /// ```
    /// use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let orders = builder.table::<String, String>("orders");
    /// let customers = builder.table::<String, String>("customers");
    /// orders.join_fk_with(
    ///     &customers,
    ///     |o| o.split('|').next().map(str::to_string),
    ///     |o, name| format!("{o} for {name}"),
    ///     Materialized::named("orders-with-names"),
    /// );
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("orders").pipe("o1".into(), Some("c1|book".into()), 3)?;
    /// driver.input::<String, Option<String>>("customers").pipe("c1".into(), Some("Ann".into()), 5)?;
    /// let store = driver.key_value_store::<String, String>("orders-with-names")?;
    /// assert_eq!(store.get(&"o1".to_string())?, Some(("c1|book for Ann".to_string(), 5)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_fk_with<KO: Data, VO: Data, VR: Data, R: Into<Option<KO>>>(
        &self,
        other: &KTable<'b, KO, VO>,
        foreign_key_extractor: impl Fn(&V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<'b, K, VR> {
        let joiner: FkJoiner<V, VO, VR> = Arc::new(move |v, o| o.map(|o| joiner(v, o)));
        self.join_on_foreign_key(other, foreign_key_extractor, joiner, materialized, false)
    }

    /// Left foreign-key join (Kafka's foreign-key `KTable.leftJoin`): every row of this
    /// table is in the result, joined with the row of `other` its foreign key names, or
    /// with `None` when there is none (or the foreign key is `None`).
    ///
    /// ```
    /// use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let orders = builder.table::<String, String>("orders");
    /// let customers = builder.table::<String, String>("customers");
    /// orders
    ///     .left_join_fk(&customers, |o| o.split('|').next().map(str::to_string), |o, name| {
    ///         format!("{o} for {}", name.map_or("?", |n| n.as_str()))
    ///     })
    ///     .to_stream()
    ///     .to("orders-with-names");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("orders").pipe("o1".into(), Some("c1|book".into()), 1)?;
    /// driver.input::<String, Option<String>>("customers").pipe("c1".into(), Some("Ann".into()), 2)?;
    /// let out = driver.output::<String, Option<String>>("orders-with-names").read_values()?;
    /// assert_eq!(out, vec![Some("c1|book for ?".to_string()), Some("c1|book for Ann".to_string())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_fk<KO: Data, VO: Data, VR: Data, R: Into<Option<KO>>>(
        &self,
        other: &KTable<'b, KO, VO>,
        foreign_key_extractor: impl Fn(&V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<'b, K, VR> {
        self.left_join_fk_with(
            other,
            foreign_key_extractor,
            joiner,
            Materialized::default(),
        )
    }

    /// [`left_join_fk`](Self::left_join_fk) with the result kept as `materialized` says.
    ///
    /// ```
    /// use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let orders = builder.table::<String, String>("orders");
    /// let customers = builder.table::<String, String>("customers");
    /// orders.left_join_fk_with(
    ///     &customers,
    ///     |o| o.split('|').next().map(str::to_string),
    ///     |o, name| format!("{o} for {name:?}"),
    ///     Materialized::named("joined"),
    /// );
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, Option<String>>("orders").pipe("o1".into(), Some("c1|book".into()), 1)?;
    /// let store = driver.key_value_store::<String, String>("joined")?;
    /// assert_eq!(store.get(&"o1".to_string())?, Some(("c1|book for None".to_string(), 1)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_fk_with<KO: Data, VO: Data, VR: Data, R: Into<Option<KO>>>(
        &self,
        other: &KTable<'b, KO, VO>,
        foreign_key_extractor: impl Fn(&V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<'b, K, VR> {
        let joiner: FkJoiner<V, VO, VR> = Arc::new(move |v, o| Some(joiner(v, o)));
        self.join_on_foreign_key(other, foreign_key_extractor, joiner, materialized, true)
    }

    /// Kafka's `KTableImpl.doJoinOnForeignKey`: names are taken in Kafka's order (they
    /// decide topic and store names).
    fn join_on_foreign_key<KO: Data, VO: Data, VR: Data, R: Into<Option<KO>>>(
        &self,
        other: &KTable<'b, KO, VO>,
        extractor: impl Fn(&V) -> R + Send + Sync + 'static,
        joiner: FkJoiner<V, VO, VR>,
        materialized: Materialized<K, VR>,
        left: bool,
    ) -> KTable<'b, K, VR> {
        let builder = self.builder;
        let (this_entry, other_entry) = (entry_of(self), entry_of(other));
        // Old values of the right side spare needless prefix scans in Kafka; both sides
        // are materialized by it. The left side's old values say which foreign key a row
        // leaves.
        other_entry.enable(builder, true);
        this_entry.enable(builder, true);

        let pk_serde = builder.serde_for(self.keys.clone(), "primary keys of a foreign-key join");
        let value_serde =
            builder.serde_for(self.values.clone(), "left values of a foreign-key join");
        let fk_serde = builder.serde_for(other.keys.clone(), "foreign keys of a foreign-key join");
        let foreign_values =
            builder.serde_for(other.values.clone(), "right values of a foreign-key join");
        let wrapper_serde: SerdeRef<SubscriptionWrapper<K>> = Arc::new(SubscriptionWrapperSerde {
            primary_keys: pk_serde.clone(),
        });
        let response_serde: SerdeRef<ResponseWrapper<VO>> = Arc::new(ResponseWrapperSerde {
            values: foreign_values,
        });
        let nullable_fk: SerdeRef<Option<KO>> = Arc::new(Nullable(fk_serde.clone()));

        // 1. The subscription topic, the subscription processor, its sink and source.
        let subscription_topic = {
            let mut g = builder.graph.borrow_mut();
            let (name, _) = g.new_name(SUBSCRIPTION_REGISTRATION);
            let topic = TopicName::Internal(format!("{name}-topic"));
            let from = source_topics(&g, other.node);
            g.add_internal_topic(
                InternalTopic {
                    name: topic.clone(),
                    partitions: PartitionCount::MaxOf(from.into_iter().collect()),
                    config: repartition_topic_config(),
                },
                true,
            );
            topic
        };
        let extractor: FkExtractor<V, KO> = Arc::new(move |v| extractor(v).into());
        let send = {
            let node = SubscriptionSendNode {
                extractor,
                left,
                foreign_keys: fk_serde.clone(),
                values: value_serde.clone(),
                _keys: PhantomData::<fn() -> K>,
            };
            let mut g = builder.graph.borrow_mut();
            let name = g.name_or(None, SUBSCRIPTION_REGISTRATION);
            g.add(
                name,
                NodeKind::Processor,
                &[self.node],
                Arc::new(move || Box::new(node.clone())),
            )
        };
        add_sink(
            builder,
            send,
            &subscription_topic,
            SinkNode::new(
                SinkTarget::Fixed(subscription_topic.clone()),
                nullable_fk.clone(),
                wrapper_serde.clone(),
                None,
            ),
        );
        let subscription_source = builder.add_source::<Option<KO>, SubscriptionWrapper<K>>(
            Some(ktable_source_name(builder)),
            vec![subscription_topic.clone()],
            nullable_fk,
            wrapper_serde.clone(),
            None,
        );
        copartition(builder, other.node, &subscription_topic);

        // 2. The subscription store, the receiving and joining processors, and the right
        //    table's processor answering its updates.
        let store = {
            let mut g = builder.graph.borrow_mut();
            let (name, _) = g.new_name(FK_JOIN_STATE_STORE_NAME);
            g.generated_names.push(format!("store {name}"));
            name
        };
        // Logged, never cached (Kafka's `SubscriptionStoreFactory`).
        let store_builder = StoreBuilder::new(store.clone(), StoreKind::KeyValue)
            .with_serdes::<Bytes, Bytes>(Arc::new(RawBytes), Arc::new(RawBytes))
            .with_caching_disabled();
        let receive = {
            let node = SubscriptionReceiveNode {
                store_name: store.clone(),
                foreign_keys: fk_serde.clone(),
                primary_keys: pk_serde.clone(),
                wrappers: wrapper_serde.clone(),
                store: None,
            };
            let mut g = builder.graph.borrow_mut();
            let name = g.name_or(None, SUBSCRIPTION_PROCESSOR);
            let n = g.add(
                name,
                NodeKind::Processor,
                &[subscription_source],
                Arc::new(move || Box::new(node.clone_fresh())),
            );
            g.add_store(store_builder, Some(n));
            n
        };
        let other_view = (other_entry.view)(builder);
        let join = {
            let view = other_view.clone();
            let mut g = builder.graph.borrow_mut();
            let name = g.name_or(None, SUBSCRIPTION_PROCESSOR);
            let n = g.add(
                name,
                NodeKind::Processor,
                &[receive],
                Arc::new(move || {
                    Box::new(SubscriptionJoinNode::<K, KO, VO> {
                        foreign: view.clone(),
                        getter: None,
                        _keys: PhantomData,
                    })
                }),
            );
            for s in &other_view.stores {
                g.connect(n, s);
            }
            n
        };
        let foreign_join = {
            let node = ForeignTableJoinNode {
                store_name: store.clone(),
                foreign_keys: fk_serde,
                primary_keys: pk_serde.clone(),
                wrappers: wrapper_serde,
                key_is_null: null_check(builder, other.keys.as_ref()),
                store: None,
                _values: PhantomData::<fn() -> VO>,
            };
            let mut g = builder.graph.borrow_mut();
            let name = g.name_or(None, SUBSCRIPTION_PROCESSOR);
            let n = g.add(
                name,
                NodeKind::Processor,
                &[other.node],
                Arc::new(move || Box::new(node.clone_fresh())),
            );
            g.connect(n, &store);
            n
        };

        // 3. The response topic, its sink and source, the resolver and the result table.
        let response_topic = {
            let mut g = builder.graph.borrow_mut();
            let (name, _) = g.new_name(SUBSCRIPTION_RESPONSE);
            let topic = TopicName::Internal(format!("{name}-topic"));
            let from = source_topics(&g, self.node);
            g.add_internal_topic(
                InternalTopic {
                    name: topic.clone(),
                    partitions: PartitionCount::MaxOf(from.into_iter().collect()),
                    config: repartition_topic_config(),
                },
                true,
            );
            topic
        };
        let to_primary_partition: Arc<dyn StreamPartitioner<K, ResponseWrapper<VO>>> =
            Arc::new(|_: &str, _: &K, r: &ResponseWrapper<VO>, _: u32| r.primary_partition);
        {
            let sink = SinkNode::new(
                SinkTarget::Fixed(response_topic.clone()),
                pk_serde.clone(),
                response_serde.clone(),
                Some(to_primary_partition),
            );
            let mut g = builder.graph.borrow_mut();
            let name = g.name_or(None, "KTABLE-SINK-");
            g.add(
                name,
                NodeKind::Sink {
                    topic: SinkTopic::Fixed(response_topic.clone()),
                },
                &[join, foreign_join],
                Arc::new(move || Box::new(sink.clone())),
            );
        }
        let response_source = builder.add_source::<K, ResponseWrapper<VO>>(
            Some(ktable_source_name(builder)),
            vec![response_topic.clone()],
            pk_serde.clone(),
            response_serde,
            None,
        );
        copartition(builder, self.node, &response_topic);
        let this_view = (this_entry.view)(builder);
        let resolver = {
            let view = this_view.clone();
            let (values, joiner) = (value_serde, joiner);
            let mut g = builder.graph.borrow_mut();
            let name = g.name_or(None, SUBSCRIPTION_RESPONSE_RESOLVER_PROCESSOR);
            let n = g.add(
                name,
                NodeKind::Processor,
                &[response_source],
                Arc::new(move || {
                    Box::new(ResponseJoinNode {
                        primary: view.clone(),
                        getter: None,
                        values: values.clone(),
                        joiner: joiner.clone(),
                        left,
                    })
                }),
            );
            for s in &this_view.stores {
                g.connect(n, s);
            }
            n
        };
        let result_name = builder
            .graph
            .borrow_mut()
            .name_or(None, FK_JOIN_OUTPUT_NAME);
        let (store, generated) = match materialized.name.clone() {
            Some(n) => (n, false),
            None => (
                builder
                    .graph
                    .borrow_mut()
                    .new_name(&format!("{FK_JOIN_OUTPUT_NAME}STATE-STORE-"))
                    .0,
                true,
            ),
        };
        add_table_source(
            builder,
            resolver,
            result_name,
            TableSourceOptions {
                store,
                generated,
                queryable: !generated,
                logging: materialized.logging,
                caching: materialized.caching,
                keys: materialized.keys.or_else(|| Some(pk_serde)),
                values: materialized.values,
            },
            Arc::new(|v: Option<VR>| v),
        )
    }
}

const FK_JOIN_STATE_STORE_NAME: &str = "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-";
const SUBSCRIPTION_REGISTRATION: &str = "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-";
const SUBSCRIPTION_RESPONSE: &str = "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-";
const SUBSCRIPTION_PROCESSOR: &str = "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-";
const SUBSCRIPTION_RESPONSE_RESOLVER_PROCESSOR: &str =
    "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-";
const FK_JOIN_OUTPUT_NAME: &str = "KTABLE-FK-JOIN-OUTPUT-";

/// The name `add_source` will give the next source of this join: Kafka names the FK
/// join's sinks and sources with `KTableImpl`'s `KTABLE-SINK-` / `KTABLE-SOURCE-` prefixes
/// (`add_source` takes the index itself).
fn ktable_source_name(builder: &crate::StreamsBuilder) -> String {
    format!("KTABLE-SOURCE-{:010}", builder.graph.borrow().index)
}

/// Adds a sink named from the counter under `parent`.
fn add_sink<K: Data, V: Data>(
    builder: &crate::StreamsBuilder,
    parent: usize,
    topic: &TopicName,
    sink: SinkNode<K, V>,
) -> usize {
    let mut g = builder.graph.borrow_mut();
    let name = g.name_or(None, "KTABLE-SINK-");
    g.add(
        name,
        NodeKind::Sink {
            topic: SinkTopic::Fixed(topic.clone()),
        },
        &[parent],
        Arc::new(move || Box::new(sink.clone())),
    )
}

/// The topics of the sources feeding `node` in its sub-topology (Kafka's
/// `subTopologySourceNodes`).
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

/// `topic` must be co-partitioned with the sources of `table_node` (Kafka's
/// `copartitionSources`).
fn copartition(builder: &crate::StreamsBuilder, table_node: usize, topic: &TopicName) {
    let mut g = builder.graph.borrow_mut();
    let mut topics = source_topics(&g, table_node);
    topics.insert(topic.clone());
    g.copartition.push(topics);
}

// ---------------------------------------------------------------------------------------
// Kafka's Murmur3.hash128 (x64, 128-bit) with its default seed
// ---------------------------------------------------------------------------------------

/// Kafka's `Murmur3.DEFAULT_SEED`.
const MURMUR3_SEED: i32 = 104_729;

/// Kafka's `Murmur3.hash128(data)`: the two longs of MurmurHash3 x64-128.
pub(crate) fn murmur3_hash128(data: &[u8]) -> [i64; 2] {
    murmur3_hash128_seeded(data, MURMUR3_SEED)
}

fn murmur3_hash128_seeded(data: &[u8], seed: i32) -> [i64; 2] {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    const N1: u64 = 0x52dc_e729;
    const N2: u64 = 0x3849_5ab5;
    fn fmix64(mut h: u64) -> u64 {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    let mix_k1 = |k1: u64| k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mix_k2 = |k2: u64| k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    // Java widens the int seed to a long with its sign.
    let mut h1 = i64::from(seed) as u64;
    let mut h2 = h1;
    let mut blocks = data.chunks_exact(16);
    for b in &mut blocks {
        let mut k1 = [0u8; 8];
        let mut k2 = [0u8; 8];
        k1.copy_from_slice(&b[..8]);
        k2.copy_from_slice(&b[8..]);
        h1 ^= mix_k1(u64::from_le_bytes(k1));
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(N1);
        h2 ^= mix_k2(u64::from_le_bytes(k2));
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(N2);
    }
    let tail = blocks.remainder();
    let mut k1 = 0u64;
    let mut k2 = 0u64;
    for (i, &byte) in tail.iter().enumerate() {
        if i < 8 {
            k1 ^= u64::from(byte) << (8 * i);
        } else {
            k2 ^= u64::from(byte) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= mix_k2(k2);
    }
    if !tail.is_empty() {
        h1 ^= mix_k1(k1);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    [h1 as i64, h2 as i64]
}

// ---------------------------------------------------------------------------------------
// Wire formats of the internal topics
// ---------------------------------------------------------------------------------------

/// What the right side does with a subscription (Kafka's `SubscriptionWrapper.Instruction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// Unsubscribe; answer nothing.
    DeleteKeyNoPropagate = 0,
    /// Unsubscribe; answer "no value" (the left row was deleted).
    DeleteKeyAndPropagate = 1,
    /// Subscribe (the foreign key changed); answer the value, or "no value".
    PropagateNullIfNoFkValAvailable = 2,
    /// Subscribe (a new row); answer only if there is a value.
    PropagateOnlyIfFkValAvailable = 3,
}

impl Instruction {
    fn from_byte(b: u8) -> std::result::Result<Instruction, String> {
        Ok(match b {
            0 => Instruction::DeleteKeyNoPropagate,
            1 => Instruction::DeleteKeyAndPropagate,
            2 => Instruction::PropagateNullIfNoFkValAvailable,
            3 => Instruction::PropagateOnlyIfFkValAvailable,
            _ => return Err(format!("Unknown instruction byte value = {b}")),
        })
    }
}

/// The subscription version written (Kafka's `SubscriptionWrapper.CURRENT_VERSION`).
const SUBSCRIPTION_VERSION: u8 = 1;
/// The response version written (Kafka's `SubscriptionResponseWrapper.CURRENT_VERSION`).
const RESPONSE_VERSION: u8 = 0;

/// A left row's subscription to a foreign key (Kafka's `SubscriptionWrapper`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubscriptionWrapper<K> {
    /// Murmur3 hash of the left row's value (`None`: the row was deleted).
    pub(crate) hash: Option<[i64; 2]>,
    pub(crate) instruction: Instruction,
    pub(crate) primary_key: K,
    pub(crate) version: u8,
    /// The partition of the left row, where the answer goes (version 1).
    pub(crate) primary_partition: Option<u32>,
}

/// Kafka's `SubscriptionWrapperSerde`:
/// `{1 bit hash-is-null}{7 bits version}{instruction}{16-byte hash?}{primary key}{partition: i32}`.
pub(crate) struct SubscriptionWrapperSerde<K> {
    pub(crate) primary_keys: SerdeRef<K>,
}

impl<K> std::fmt::Debug for SubscriptionWrapperSerde<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscriptionWrapperSerde")
    }
}

impl<K: 'static> Serde<SubscriptionWrapper<K>> for SubscriptionWrapperSerde<K> {
    fn serialize(&self, w: &SubscriptionWrapper<K>) -> std::result::Result<Vec<u8>, String> {
        if w.version > 0x7f {
            return Err("SubscriptionWrapper version is larger than maximum supported 0x7F".into());
        }
        let pk = self.primary_keys.serialize(&w.primary_key)?;
        let mut out = Vec::with_capacity(2 + 16 + pk.len() + 4);
        out.push(if w.hash.is_some() {
            w.version
        } else {
            w.version | 0x80
        });
        out.push(w.instruction as u8);
        if let Some([a, b]) = w.hash {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&b.to_be_bytes());
        }
        out.extend_from_slice(&pk);
        if w.version > 0 {
            let p = w
                .primary_partition
                .ok_or("a version 1 subscription needs its primary partition")?;
            out.extend_from_slice(&(p as i32).to_be_bytes());
        }
        Ok(out)
    }

    fn deserialize(&self, bytes: &[u8]) -> std::result::Result<SubscriptionWrapper<K>, String> {
        let too_short = || format!("subscription of {} bytes is too short", bytes.len());
        let (&first, rest) = bytes.split_first().ok_or_else(too_short)?;
        let version = first & 0x7f;
        let hash_is_null = first & 0x80 != 0;
        let (&instruction, mut rest) = rest.split_first().ok_or_else(too_short)?;
        let instruction = Instruction::from_byte(instruction)?;
        let hash = if hash_is_null {
            None
        } else {
            let (h, r) = split_at_checked(rest, 16).ok_or_else(too_short)?;
            rest = r;
            Some([be_i64(&h[..8]), be_i64(&h[8..])])
        };
        let (pk, primary_partition) = if version > 0 {
            let at = rest.len().checked_sub(4).ok_or_else(too_short)?;
            let (pk, p) = rest.split_at(at);
            let mut b = [0u8; 4];
            b.copy_from_slice(p);
            (pk, Some(i32::from_be_bytes(b) as u32))
        } else {
            (rest, None)
        };
        Ok(SubscriptionWrapper {
            hash,
            instruction,
            primary_key: self.primary_keys.deserialize(pk)?,
            version,
            primary_partition,
        })
    }
}

/// The right side's answer to a subscription (Kafka's `SubscriptionResponseWrapper`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResponseWrapper<VO> {
    /// The hash of the subscription answered.
    pub(crate) hash: Option<[i64; 2]>,
    /// The right row's value (`None`: no row).
    pub(crate) foreign_value: Option<VO>,
    pub(crate) version: u8,
    /// Where the answer goes; not written to the topic.
    pub(crate) primary_partition: Option<u32>,
}

/// Kafka's `SubscriptionResponseWrapperSerde`:
/// `{1 bit hash-is-null}{7 bits version}{16-byte hash?}{foreign value?}`. As in Kafka, a
/// foreign value that serializes to no bytes reads back as no value.
pub(crate) struct ResponseWrapperSerde<VO> {
    pub(crate) values: SerdeRef<VO>,
}

impl<VO> std::fmt::Debug for ResponseWrapperSerde<VO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseWrapperSerde")
    }
}

impl<VO: 'static> Serde<ResponseWrapper<VO>> for ResponseWrapperSerde<VO> {
    fn serialize(&self, w: &ResponseWrapper<VO>) -> std::result::Result<Vec<u8>, String> {
        let value = match &w.foreign_value {
            Some(v) => self.values.serialize_nullable(v)?,
            None => None,
        };
        let mut out = Vec::with_capacity(17 + value.as_ref().map_or(0, Vec::len));
        match w.hash {
            Some([a, b]) => {
                out.push(w.version);
                out.extend_from_slice(&a.to_be_bytes());
                out.extend_from_slice(&b.to_be_bytes());
            }
            None => out.push(w.version | 0x80),
        }
        if let Some(v) = value {
            out.extend_from_slice(&v);
        }
        Ok(out)
    }

    fn deserialize(&self, bytes: &[u8]) -> std::result::Result<ResponseWrapper<VO>, String> {
        let too_short = || {
            format!(
                "subscription response of {} bytes is too short",
                bytes.len()
            )
        };
        let (&first, mut rest) = bytes.split_first().ok_or_else(too_short)?;
        let hash = if first & 0x80 != 0 {
            None
        } else {
            let (h, r) = split_at_checked(rest, 16).ok_or_else(too_short)?;
            rest = r;
            Some([be_i64(&h[..8]), be_i64(&h[8..])])
        };
        let foreign_value = if rest.is_empty() {
            None
        } else {
            Some(self.values.deserialize(rest)?)
        };
        Ok(ResponseWrapper {
            hash,
            foreign_value,
            version: first & 0x7f,
            primary_partition: None,
        })
    }
}

fn split_at_checked(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= at).then(|| bytes.split_at(at))
}

fn be_i64(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(b)
}

/// Kafka's `CombinedKeySchema`: `{foreign key length: i32}{foreign key}{primary key}`; the
/// prefix without the primary key finds every subscription of a foreign key.
fn combined_key(foreign_key: &[u8], primary_key: &[u8]) -> Bytes {
    let mut out = prefix(foreign_key);
    out.extend_from_slice(primary_key);
    Bytes::from(out)
}

fn prefix(foreign_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + foreign_key.len());
    out.extend_from_slice(&(foreign_key.len() as i32).to_be_bytes());
    out.extend_from_slice(foreign_key);
    out
}

fn serde_err(context: &str) -> impl FnOnce(String) -> Error + '_ {
    move |reason| Error::Serde {
        context: context.to_string(),
        reason,
    }
}

// ---------------------------------------------------------------------------------------
// The operators
// ---------------------------------------------------------------------------------------

/// Computes a left value's foreign key (`None`: null).
pub(crate) type FkExtractor<V, KO> = Arc<dyn Fn(&V) -> Option<KO> + Send + Sync>;

/// Joins a left value with the right value (`None`: no right row); `None` out: no result
/// (an inner join without a right row).
pub(crate) type FkJoiner<V, VO, VR> = Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

/// Kafka's `SubscriptionSendProcessorSupplier`: turns each left update into subscriptions.
pub(crate) struct SubscriptionSendNode<K, V, KO> {
    extractor: FkExtractor<V, KO>,
    left: bool,
    foreign_keys: SerdeRef<KO>,
    values: SerdeRef<V>,
    _keys: PhantomData<fn() -> K>,
}

impl<K, V, KO> Clone for SubscriptionSendNode<K, V, KO> {
    fn clone(&self) -> Self {
        SubscriptionSendNode {
            extractor: self.extractor.clone(),
            left: self.left,
            foreign_keys: self.foreign_keys.clone(),
            values: self.values.clone(),
            _keys: PhantomData,
        }
    }
}

/// A foreign key and its bytes; both `None` for a null foreign key.
type Fk<KO> = (Option<KO>, Option<Vec<u8>>);

impl<K: Data, V: Data, KO: Data> SubscriptionSendNode<K, V, KO> {
    fn foreign_key(&self, value: &V) -> Result<Fk<KO>> {
        let Some(fk) = (self.extractor)(value) else {
            return Ok((None, None));
        };
        match self
            .foreign_keys
            .serialize_nullable(&fk)
            .map_err(serde_err("foreign key of a foreign-key join"))?
        {
            Some(bytes) => Ok((Some(fk), Some(bytes))),
            None => Ok((None, None)),
        }
    }

    fn send(
        &self,
        ctx: &mut NodeContext<'_>,
        record: &Record<K, Change<V>>,
        hash: Option<[i64; 2]>,
        foreign_key: Option<KO>,
        instruction: Instruction,
    ) -> Result<()> {
        let partition = ctx
            .record_metadata()
            .map_or_else(|| ctx.partition(), |m| m.partition);
        let wrapper = SubscriptionWrapper {
            hash,
            instruction,
            primary_key: record.key.clone(),
            version: SUBSCRIPTION_VERSION,
            primary_partition: Some(partition),
        };
        ctx.forward(Record {
            key: foreign_key,
            value: wrapper,
            timestamp: record.timestamp,
            headers: record.headers.clone(),
        })
    }
}

impl<K: Data, V: Data, KO: Data> Node for SubscriptionSendNode<K, V, KO> {
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        use Instruction::*;
        let r: Record<K, Change<V>> = take_record(ctx.name(), record)?;
        let hash = match &r.value.new {
            Some(v) => Some(murmur3_hash128(
                &self
                    .values
                    .serialize(v)
                    .map_err(serde_err("value hashed by a foreign-key join"))?,
            )),
            None => None,
        };
        let (old, new) = (&r.value.old, &r.value.new);
        if self.left {
            if let Some(old) = old {
                let (old_fk, old_bytes) = self.foreign_key(old)?;
                let (new_fk, new_bytes) = match new {
                    Some(n) => self.foreign_key(n)?,
                    None => (None, None),
                };
                if let Some(old_fk) = old_fk {
                    if new_bytes != old_bytes {
                        self.send(ctx, &r, hash, Some(old_fk), DeleteKeyAndPropagate)?;
                    }
                }
                self.send(ctx, &r, hash, new_fk, PropagateNullIfNoFkValAvailable)
            } else if let Some(new) = new {
                let (new_fk, _) = self.foreign_key(new)?;
                self.send(ctx, &r, hash, new_fk, PropagateNullIfNoFkValAvailable)
            } else {
                Ok(())
            }
        } else if let Some(old) = old {
            let (Some(old_fk), old_bytes) = self.foreign_key(old)? else {
                drop_null_key(ctx, "null foreign key");
                return Ok(());
            };
            match new {
                Some(new) => {
                    let (Some(new_fk), new_bytes) = self.foreign_key(new)? else {
                        drop_null_key(ctx, "null foreign key");
                        return Ok(());
                    };
                    if new_bytes != old_bytes {
                        // The row leaves its old foreign key: unsubscribe there.
                        self.send(ctx, &r, hash, Some(old_fk), DeleteKeyNoPropagate)?;
                    }
                    // Subscribe; a missing right row must still "unset" an earlier result.
                    self.send(ctx, &r, hash, Some(new_fk), PropagateNullIfNoFkValAvailable)
                }
                None => self.send(ctx, &r, hash, Some(old_fk), DeleteKeyAndPropagate),
            }
        } else if let Some(new) = new {
            match self.foreign_key(new)? {
                (Some(new_fk), _) => {
                    self.send(ctx, &r, hash, Some(new_fk), PropagateOnlyIfFkValAvailable)
                }
                (None, _) => {
                    drop_null_key(ctx, "null foreign key");
                    Ok(())
                }
            }
        } else {
            Ok(())
        }
    }
}

/// Kafka's `SubscriptionReceiveProcessorSupplier`: keeps the subscriptions in the
/// subscription store and passes them on keyed by `(foreign key, primary key)`.
pub(crate) struct SubscriptionReceiveNode<K, KO> {
    store_name: String,
    foreign_keys: SerdeRef<KO>,
    primary_keys: SerdeRef<K>,
    wrappers: SerdeRef<SubscriptionWrapper<K>>,
    store: Option<StoreRef>,
}

impl<K, KO> SubscriptionReceiveNode<K, KO> {
    fn clone_fresh(&self) -> Self {
        SubscriptionReceiveNode {
            store_name: self.store_name.clone(),
            foreign_keys: self.foreign_keys.clone(),
            primary_keys: self.primary_keys.clone(),
            wrappers: self.wrappers.clone(),
            store: None,
        }
    }
}

fn initialized<'a>(store: &'a Option<StoreRef>, node: &str) -> Result<&'a StoreRef> {
    store
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument(format!("{node} used before init")))
}

impl<K: Data, KO: Data> Node for SubscriptionReceiveNode<K, KO> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store = Some(ctx.store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<Option<KO>, SubscriptionWrapper<K>> = take_record(ctx.name(), record)?;
        let what = format!("store {}", self.store_name);
        let fk_bytes = match &r.key {
            Some(fk) => self
                .foreign_keys
                .serialize_nullable(fk)
                .map_err(serde_err(&what))?,
            None => None,
        };
        if fk_bytes.is_none() && r.value.instruction != Instruction::PropagateNullIfNoFkValAvailable
        {
            drop_null_key(ctx, "null foreign key");
            return Ok(());
        }
        if r.value.version > SUBSCRIPTION_VERSION {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: "SubscriptionWrapper is of an incompatible version.".into(),
            });
        }
        if let Some(fk) = &fk_bytes {
            let pk = self
                .primary_keys
                .serialize(&r.value.primary_key)
                .map_err(serde_err(&what))?;
            let key = combined_key(fk, &pk);
            let value = match r.value.instruction {
                Instruction::DeleteKeyAndPropagate | Instruction::DeleteKeyNoPropagate => None,
                _ => Some(Timestamped {
                    value: Bytes::from(
                        self.wrappers
                            .serialize(&r.value)
                            .map_err(serde_err(&what))?,
                    ),
                    timestamp: r.timestamp,
                }),
            };
            initialized(&self.store, ctx.name())?.with_kv(|s| s.put(key, value))?;
        }
        let key = (
            if fk_bytes.is_some() { r.key } else { None },
            r.value.primary_key.clone(),
        );
        ctx.forward(Record {
            key,
            value: r.value,
            timestamp: r.timestamp,
            headers: r.headers,
        })
    }
}

/// Kafka's `SubscriptionJoinProcessorSupplier`: answers a subscription with the right
/// table's current value, as its instruction says.
pub(crate) struct SubscriptionJoinNode<K, KO, VO> {
    foreign: ValueGetterSupplier<KO, VO>,
    getter: Option<Box<dyn ValueGetter<KO, VO>>>,
    _keys: PhantomData<fn() -> K>,
}

impl<K: Data, KO: Data, VO: Data> Node for SubscriptionJoinNode<K, KO, VO> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.getter = Some((self.foreign.make)(ctx)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<(Option<KO>, K), SubscriptionWrapper<K>> = take_record(ctx.name(), record)?;
        let ((foreign_key, primary_key), wrapper) = (r.key, r.value);
        if wrapper.version > SUBSCRIPTION_VERSION {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: "SubscriptionWrapper is of an incompatible version.".into(),
            });
        }
        let found = match &foreign_key {
            Some(fk) => self
                .getter
                .as_ref()
                .ok_or_else(|| Error::InvalidArgument(format!("{} used before init", ctx.name())))?
                .get(fk)?,
            None => None,
        };
        let timestamp = found
            .as_ref()
            .map_or(r.timestamp, |(_, ts)| r.timestamp.max(*ts));
        let foreign_value = match wrapper.instruction {
            Instruction::DeleteKeyNoPropagate => return Ok(()),
            Instruction::DeleteKeyAndPropagate => None,
            Instruction::PropagateNullIfNoFkValAvailable => found.map(|(v, _)| v),
            Instruction::PropagateOnlyIfFkValAvailable => match found {
                Some((v, _)) => Some(v),
                None => return Ok(()),
            },
        };
        ctx.forward(Record {
            key: primary_key,
            value: ResponseWrapper {
                hash: wrapper.hash,
                foreign_value,
                version: RESPONSE_VERSION,
                primary_partition: wrapper.primary_partition,
            },
            timestamp,
            headers: r.headers,
        })
    }
}

/// Kafka's `ForeignTableJoinProcessorSupplier`: an update of a right row answers every
/// subscription to its key.
pub(crate) struct ForeignTableJoinNode<K, KO, VO> {
    store_name: String,
    foreign_keys: SerdeRef<KO>,
    primary_keys: SerdeRef<K>,
    wrappers: SerdeRef<SubscriptionWrapper<K>>,
    key_is_null: IsNull<KO>,
    store: Option<StoreRef>,
    _values: PhantomData<fn() -> VO>,
}

impl<K, KO, VO> ForeignTableJoinNode<K, KO, VO> {
    fn clone_fresh(&self) -> Self {
        ForeignTableJoinNode {
            store_name: self.store_name.clone(),
            foreign_keys: self.foreign_keys.clone(),
            primary_keys: self.primary_keys.clone(),
            wrappers: self.wrappers.clone(),
            key_is_null: self.key_is_null.clone(),
            store: None,
            _values: PhantomData,
        }
    }
}

impl<K: Data, KO: Data, VO: Data> Node for ForeignTableJoinNode<K, KO, VO> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store = Some(ctx.store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<KO, Change<VO>> = take_record(ctx.name(), record)?;
        if (self.key_is_null)(&r.key) {
            drop_null_key(ctx, "null key");
            return Ok(());
        }
        let what = format!("store {}", self.store_name);
        let fk = self
            .foreign_keys
            .serialize(&r.key)
            .map_err(serde_err(&what))?;
        let prefix = prefix(&fk);
        // Read the subscriptions first: the store is not held while forwarding.
        let subscriptions = initialized(&self.store, ctx.name())?.with_kv(|s| {
            s.prefix_scan(&prefix)?
                .collect::<freshet_state_store::Result<Vec<_>>>()
        })?;
        for (key, value) in subscriptions {
            let primary_key = self
                .primary_keys
                .deserialize(&key[prefix.len()..])
                .map_err(serde_err(&what))?;
            let wrapper = self
                .wrappers
                .deserialize(&value.value)
                .map_err(serde_err(&what))?;
            ctx.forward(Record {
                key: primary_key,
                value: ResponseWrapper {
                    hash: wrapper.hash,
                    foreign_value: r.value.new.clone(),
                    version: RESPONSE_VERSION,
                    primary_partition: wrapper.primary_partition,
                },
                timestamp: r.timestamp,
                headers: r.headers.clone(),
            })?;
        }
        Ok(())
    }
}

/// Kafka's `ResponseJoinProcessorSupplier`: drops stale answers (the left row changed since
/// it subscribed), joins the others with the left row's current value.
pub(crate) struct ResponseJoinNode<K, V, VO, VR> {
    primary: ValueGetterSupplier<K, V>,
    getter: Option<Box<dyn ValueGetter<K, V>>>,
    values: SerdeRef<V>,
    joiner: FkJoiner<V, VO, VR>,
    left: bool,
}

impl<K: Data, V: Data, VO: Data, VR: Data> Node for ResponseJoinNode<K, V, VO, VR> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.getter = Some((self.primary.make)(ctx)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, ResponseWrapper<VO>> = take_record(ctx.name(), record)?;
        if r.value.version != RESPONSE_VERSION {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: "SubscriptionResponseWrapper is of an incompatible version.".into(),
            });
        }
        let current = self
            .getter
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument(format!("{} used before init", ctx.name())))?
            .get(&r.key)?
            .map(|(v, _)| v);
        let current_hash = match &current {
            Some(v) => Some(murmur3_hash128(
                &self
                    .values
                    .serialize(v)
                    .map_err(serde_err("value hashed by a foreign-key join"))?,
            )),
            None => None,
        };
        if r.value.hash != current_hash {
            tracing::trace!(
                node = %ctx.name(),
                "Dropping FK-join response due to hash mismatch. Expected {:?}. Actual {:?}",
                r.value.hash,
                current_hash
            );
            ctx.record_dropped("stale foreign-key join response (hash mismatch)");
            return Ok(());
        }
        let foreign = r.value.foreign_value.as_ref();
        let result = if foreign.is_none() && (!self.left || current.is_none()) {
            None
        } else {
            // A missing current value only matches an answer without a foreign value
            // (handled above), so the joiner always gets the left value.
            current.as_ref().and_then(|v| (self.joiner)(v, foreign))
        };
        ctx.forward(Record {
            key: r.key,
            value: result,
            timestamp: r.timestamp,
            headers: r.headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Utf8;

    /// Kafka's `Murmur3Test.testMurmur3_128` (seed 123).
    #[test]
    fn murmur3_hash128_matches_kafka() {
        let cases: [(&[u8], [i64; 2]); 6] = [
            (b"21", [5857341059704281894, -5288187638297930763]),
            (b"foobar", [-351361463397418609, 8959716011862540668]),
            (
                b"a-little-bit-long-string",
                [8836256500583638442, -198172363548498523],
            ),
            (
                b"a-little-bit-longer-string",
                [1838346159335108511, 8794688210320490705],
            ),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                [-4024021876037397259, -1482317706335141238],
            ),
            (b"abc", [1489494923063836066, -5440978547625122829]),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur3_hash128_seeded(data, 123), expected, "{data:?}");
        }
    }

    fn wrapper_serde() -> SubscriptionWrapperSerde<String> {
        SubscriptionWrapperSerde {
            primary_keys: Arc::new(Utf8),
        }
    }

    /// Kafka's `SubscriptionWrapperSerde` layout: version 1 with and without a hash,
    /// version 0 without the partition (the round trips of `SubscriptionWrapperSerdeTest`,
    /// with the bytes spelled out).
    #[test]
    fn subscription_wrapper_layout() {
        let s = wrapper_serde();
        let w = SubscriptionWrapper {
            hash: Some([1, -1]),
            instruction: Instruction::PropagateOnlyIfFkValAvailable,
            primary_key: "pk".to_string(),
            version: 1,
            primary_partition: Some(7),
        };
        let bytes = s.serialize(&w).unwrap();
        let mut expected = vec![1u8, 3];
        expected.extend_from_slice(&1i64.to_be_bytes());
        expected.extend_from_slice(&(-1i64).to_be_bytes());
        expected.extend_from_slice(b"pk");
        expected.extend_from_slice(&7i32.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(s.deserialize(&bytes).unwrap(), w);

        let w = SubscriptionWrapper {
            hash: None,
            instruction: Instruction::DeleteKeyAndPropagate,
            ..w
        };
        let bytes = s.serialize(&w).unwrap();
        assert_eq!(bytes[..2], [0x81, 1]);
        assert_eq!(s.deserialize(&bytes).unwrap(), w);

        let v0 = [0x80u8, 0, b'p', b'k'];
        let read = s.deserialize(&v0).unwrap();
        assert_eq!((read.version, read.primary_partition), (0, None));
        assert_eq!(read.primary_key, "pk");
        assert!(s.deserialize(&[1]).is_err());
        assert!(s.deserialize(&[1, 9, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn response_wrapper_layout() {
        let s = ResponseWrapperSerde::<String> {
            values: Arc::new(Utf8),
        };
        let w = ResponseWrapper {
            hash: Some([2, 3]),
            foreign_value: Some("v".to_string()),
            version: 0,
            primary_partition: Some(4),
        };
        let bytes = s.serialize(&w).unwrap();
        assert_eq!(bytes.len(), 1 + 16 + 1);
        let read = s.deserialize(&bytes).unwrap();
        assert_eq!(read.primary_partition, None, "the partition is not written");
        assert_eq!((read.hash, read.foreign_value), (w.hash, w.foreign_value));
        let none = ResponseWrapper::<String> {
            hash: None,
            foreign_value: None,
            version: 0,
            primary_partition: None,
        };
        assert_eq!(s.serialize(&none).unwrap(), vec![0x80]);
        // Kafka's quirk: an empty serialized value reads back as no value.
        let empty = ResponseWrapper {
            foreign_value: Some(String::new()),
            ..none
        };
        assert_eq!(
            s.deserialize(&s.serialize(&empty).unwrap())
                .unwrap()
                .foreign_value,
            None
        );
    }

    /// Kafka's `CombinedKeySchema` layout, as its integration test builds store keys.
    #[test]
    fn combined_key_layout() {
        let key = combined_key(b"rhs1", b"lhs1");
        let mut expected = 4i32.to_be_bytes().to_vec();
        expected.extend_from_slice(b"rhs1lhs1");
        assert_eq!(&key[..], &expected[..]);
        assert!(key.starts_with(&prefix(b"rhs1")));
    }
}
