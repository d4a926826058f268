//! Table-table joins (Kafka's `KTableKTableInnerJoin`, `KTableKTableLeftJoin`,
//! `KTableKTableRightJoin`, `KTableKTableOuterJoin` and `KTableKTableJoinMerger`).
//!
//! Each side has a join node: an update of one side looks the key up in the other side
//! (through its value getter) and emits the joined `Change`; both join nodes feed the
//! merge node, which may materialize the result. The joiner takes both sides as options
//! and returns `None` for "no value"; the other side's node runs it reversed.

use std::sync::Arc;

use crate::dsl::ktable::Change;
use crate::dsl::table::{ValueGetter, ValueGetterSupplier};
use crate::error::{Error, Result};
use crate::ops::table_source::{drop_null_key, IsNull, TableStore};
use crate::record::Record;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// A table join's joiner over both sides' values (`None`: absent); `None` out: no value.
pub(crate) type TableJoiner<V1, V2, VR> =
    Arc<dyn Fn(Option<&V1>, Option<&V2>) -> Option<VR> + Send + Sync>;

/// Which rule a join node applies to an update of its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    /// Inner join (either side): no output while the other side is absent.
    Inner,
    /// The left side of a left join.
    Left,
    /// The right side of a left join: no output while the left side is absent.
    Right,
    /// Either side of an outer join.
    Outer,
}

/// The join node of one side: Kafka's `KTableKTable*JoinProcessor`s.
pub(crate) struct TableJoinNode<K, V1, V2, VR> {
    pub(crate) kind: JoinKind,
    pub(crate) joiner: TableJoiner<V1, V2, VR>,
    pub(crate) other: ValueGetterSupplier<K, V2>,
    pub(crate) getter: Option<Box<dyn ValueGetter<K, V2>>>,
    pub(crate) send_old: bool,
    pub(crate) key_is_null: IsNull<K>,
}

impl<K: Data, V1: Data, V2: Data, VR: Data> Node for TableJoinNode<K, V1, V2, VR> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.getter = Some((self.other.make)(ctx)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, Change<V1>> = take_record(ctx.name(), record)?;
        if (self.key_is_null)(&r.key) {
            drop_null_key(ctx, "null key");
            return Ok(());
        }
        let getter = self
            .getter
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument(format!("{} used before init", ctx.name())))?;
        let other = getter.get(&r.key)?;
        let change = &r.value;
        let joiner = &self.joiner;
        let (new, old, timestamp) = match self.kind {
            JoinKind::Inner => {
                let Some((v2, ts2)) = &other else {
                    return Ok(());
                };
                let new = change.new.as_ref().and_then(|n| joiner(Some(n), Some(v2)));
                let old = match &change.old {
                    Some(o) if self.send_old => joiner(Some(o), Some(v2)),
                    _ => None,
                };
                (new, old, r.timestamp.max(*ts2))
            }
            JoinKind::Left => {
                if other.is_none() && change.new.is_none() && change.old.is_none() {
                    return Ok(());
                }
                let v2 = other.as_ref().map(|(v, _)| v);
                let new = change.new.as_ref().and_then(|n| joiner(Some(n), v2));
                let old = match &change.old {
                    Some(o) if self.send_old => joiner(Some(o), v2),
                    _ => None,
                };
                let ts = other
                    .as_ref()
                    .map_or(r.timestamp, |(_, t)| r.timestamp.max(*t));
                (new, old, ts)
            }
            JoinKind::Right => {
                let Some((left, ts_left)) = &other else {
                    return Ok(());
                };
                let new = joiner(change.new.as_ref(), Some(left));
                let old = if self.send_old {
                    joiner(change.old.as_ref(), Some(left))
                } else {
                    None
                };
                (new, old, r.timestamp.max(*ts_left))
            }
            JoinKind::Outer => {
                if other.is_none() && change.new.is_none() && change.old.is_none() {
                    return Ok(());
                }
                let v2 = other.as_ref().map(|(v, _)| v);
                let new = if v2.is_some() || change.new.is_some() {
                    joiner(change.new.as_ref(), v2)
                } else {
                    None
                };
                let old = if self.send_old && (v2.is_some() || change.old.is_some()) {
                    joiner(change.old.as_ref(), v2)
                } else {
                    None
                };
                let ts = other
                    .as_ref()
                    .map_or(r.timestamp, |(_, t)| r.timestamp.max(*t));
                (new, old, ts)
            }
        };
        ctx.forward(Record {
            key: r.key,
            value: Change { new, old },
            timestamp,
            headers: r.headers,
        })
    }
}

/// Kafka's `KTableKTableJoinMergeProcessor`: passes both join nodes' output on,
/// materializing it when asked.
pub(crate) struct TableMergeNode<K, VR> {
    pub(crate) send_old: bool,
    pub(crate) store: Option<TableStore<K, VR>>,
}

impl<K: Data, VR: Data> Node for TableMergeNode<K, VR> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if let Some(store) = &mut self.store {
            store.init(ctx, self.send_old)?;
        }
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let mut r: Record<K, Change<VR>> = take_record(ctx.name(), record)?;
        let Some(store) = &mut self.store else {
            if !self.send_old {
                r.value.old = None;
            }
            return ctx.forward(r);
        };
        let Some(key) = store.key_bytes(&r.key)? else {
            drop_null_key(ctx, "null key");
            return Ok(());
        };
        store.put_and_forward(ctx, r, key)
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        match &mut self.store {
            Some(store) => store.flush(ctx),
            None => Ok(()),
        }
    }
}

/// The value getter of a join result that is not materialized: both sides looked up and
/// joined on the fly (Kafka's `KTableKTable*JoinValueGetter`).
pub(crate) struct JoinGetter<K, V1, V2, VR> {
    pub(crate) kind: JoinKind,
    pub(crate) joiner: TableJoiner<V1, V2, VR>,
    pub(crate) left: Box<dyn ValueGetter<K, V1>>,
    pub(crate) right: Box<dyn ValueGetter<K, V2>>,
}

impl<K: Data, V1: Data, V2: Data, VR: Data> ValueGetter<K, VR> for JoinGetter<K, V1, V2, VR> {
    fn get(&self, key: &K) -> Result<Option<(VR, i64)>> {
        let joiner = &self.joiner;
        match self.kind {
            JoinKind::Inner => {
                let Some((v1, t1)) = self.left.get(key)? else {
                    return Ok(None);
                };
                let Some((v2, t2)) = self.right.get(key)? else {
                    return Ok(None);
                };
                Ok(joiner(Some(&v1), Some(&v2)).map(|v| (v, t1.max(t2))))
            }
            JoinKind::Left => {
                let Some((v1, t1)) = self.left.get(key)? else {
                    return Ok(None);
                };
                let right = self.right.get(key)?;
                let ts = right.as_ref().map_or(t1, |(_, t2)| t1.max(*t2));
                Ok(joiner(Some(&v1), right.as_ref().map(|(v, _)| v)).map(|v| (v, ts)))
            }
            JoinKind::Right => {
                let Some((v2, t2)) = self.right.get(key)? else {
                    return Ok(None);
                };
                let left = self.left.get(key)?;
                let ts = left.as_ref().map_or(t2, |(_, t1)| (*t1).max(t2));
                Ok(joiner(left.as_ref().map(|(v, _)| v), Some(&v2)).map(|v| (v, ts)))
            }
            JoinKind::Outer => {
                let left = self.left.get(key)?;
                let right = self.right.get(key)?;
                if left.is_none() && right.is_none() {
                    return Ok(None);
                }
                let ts = left
                    .as_ref()
                    .map_or(-1, |(_, t)| *t)
                    .max(right.as_ref().map_or(-1, |(_, t)| *t));
                Ok(joiner(
                    left.as_ref().map(|(v, _)| v),
                    right.as_ref().map(|(v, _)| v),
                )
                .map(|v| (v, ts)))
            }
        }
    }
}
