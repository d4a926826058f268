//! Table-table joins (Kafka's `KTableImpl.doJoin`): `join`, `left_join`, `outer_join`.

use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::ktable::{KTable, SendOldValues};
use crate::dsl::options::Materialized;
use crate::ops::table_join::{JoinGetter, JoinKind, TableJoinNode, TableJoiner, TableMergeNode};
use crate::ops::table_source::{IsNull, TableStore};
use crate::serde::SerdeRef;
use crate::task::node::Data;
use crate::topology::{NodeFactory, NodeKind};

use super::{
    copartition, entry_of, kv_store, min_grace, null_check, register_table, store_getter,
    EnableOldFn, TableEntry, ValueGetter, ValueGetterSupplier, ViewFn,
};

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
        let this_factory = join_factory(
            this_kind,
            joiner.clone(),
            other_view.clone(),
            this_flag.clone(),
            key_is_null.clone(),
        );
        let other_factory = join_factory(
            other_kind,
            reversed,
            this_view.clone(),
            other_flag.clone(),
            key_is_null,
        );
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

/// The factory of one side's join node (Kafka's `KTableKTableJoin` and friends): each
/// update of its side is joined with the other side's value read through `other`.
fn join_factory<K: Data, V1: Data, V2: Data, VR: Data>(
    kind: JoinKind,
    joiner: TableJoiner<V1, V2, VR>,
    other: ValueGetterSupplier<K, V2>,
    send_old: SendOldValues,
    key_is_null: IsNull<K>,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(TableJoinNode {
            kind,
            joiner: joiner.clone(),
            other: other.clone(),
            getter: None,
            send_old: send_old.get(),
            key_is_null: key_is_null.clone(),
        })
    })
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
