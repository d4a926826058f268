//! Stream-table joins (Kafka's `KStreamKTableJoinProcessor`, without the grace-period
//! buffer): each stream record looks its key up in the table (through the table's value
//! getter) and is joined with the table's current value; table updates emit nothing.
//!
//! The output keeps the stream record's key, timestamp and headers. A record whose key
//! (or mapped key) or value is null is dropped, except that a left join passes a record
//! with a null key and a non-null value to the joiner with no table value. The key mapper
//! is the identity for `KTable`s; global-table joins map the stream record to the table's
//! key.

use std::sync::Arc;

use crate::dsl::table::{ValueGetter, ValueGetterSupplier};
use crate::error::{Error, Result};
use crate::ops::table_source::{drop_null_key, IsNull};
use crate::record::Record;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// Maps a stream record to the table key it joins with.
pub(crate) type JoinKeyMapper<K, V, KT> = Arc<dyn Fn(&K, &V) -> KT + Send + Sync>;

/// Joins a stream record with the table value (`None`: absent, left joins only); a `None`
/// result emits nothing.
pub(crate) type StreamTableJoiner<K, V, VT, VR> =
    Arc<dyn Fn(&K, &V, Option<&VT>) -> Option<VR> + Send + Sync>;

/// The stream-table join node.
pub(crate) struct StreamTableJoinNode<K, V, KT, VT, VR> {
    pub(crate) key_mapper: JoinKeyMapper<K, V, KT>,
    pub(crate) joiner: StreamTableJoiner<K, V, VT, VR>,
    pub(crate) left: bool,
    pub(crate) key_is_null: IsNull<K>,
    pub(crate) mapped_key_is_null: IsNull<KT>,
    pub(crate) value_is_null: IsNull<V>,
    pub(crate) table: ValueGetterSupplier<KT, VT>,
    pub(crate) getter: Option<Box<dyn ValueGetter<KT, VT>>>,
}

impl<K: Data, V: Data, KT: Data, VT: Data, VR: Data> Node
    for StreamTableJoinNode<K, V, KT, VT, VR>
{
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.getter = Some((self.table.make)(ctx)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, V> = take_record(ctx.name(), record)?;
        let mapped = (self.key_mapper)(&r.key, &r.value);
        let mapped_null = (self.mapped_key_is_null)(&mapped);
        let value_null = (self.value_is_null)(&r.value);
        let keep_null_key = self.left && (self.key_is_null)(&r.key) && !value_null;
        if !keep_null_key && (mapped_null || value_null) {
            drop_null_key(ctx, "null join key or value");
            return Ok(());
        }
        let table_value = if mapped_null {
            None
        } else {
            let getter = self.getter.as_ref().ok_or_else(|| {
                Error::InvalidArgument(format!("{} used before init", ctx.name()))
            })?;
            getter.get(&mapped)?.map(|(v, _)| v)
        };
        if !self.left && table_value.is_none() {
            return Ok(());
        }
        match (self.joiner)(&r.key, &r.value, table_value.as_ref()) {
            Some(joined) => ctx.forward(r.with_value(joined)),
            None => Ok(()),
        }
    }
}
