//! Global tables: the processor that keeps a global table's store (Kafka's `KTableSource`
//! as the global task runs it) and the stream–global-table join (Kafka's
//! `KStreamGlobalKTableJoin`, a `KStreamKTableJoinProcessor` over the global store).

use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{KeyValueStore, Timestamped};

use crate::error::{Error, Result};
use crate::ops::aggregate::{decode, encode};
use crate::ops::table_source::IsNull;
use crate::record::Record;
use crate::serde::SerdeRef;
use crate::store::StoreRef;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// Keeps a global table's store: puts each record (a null value deletes), drops records
/// with a null key. The records come decoded as `Option`s so that a tombstone or a null key
/// reaches it whatever the table's types.
pub(crate) struct GlobalTableSourceNode<K, V> {
    pub(crate) store_name: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) store: Option<StoreRef>,
}

impl<K: Data, V: Data> Node for GlobalTableSourceNode<K, V> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store = Some(ctx.store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<Option<K>, Option<V>> = take_record(ctx.name(), record)?;
        let what = format!("store {}", self.store_name);
        let key = match &r.key {
            Some(k) => self
                .keys
                .serialize_nullable(k)
                .map_err(|reason| Error::Serde {
                    context: what.clone(),
                    reason,
                })?,
            None => None,
        };
        let Some(key) = key else {
            ctx.record_dropped("skipping record due to null key");
            return Ok(());
        };
        let store = self
            .store
            .clone()
            .ok_or_else(|| Error::InvalidArgument("global table used before init".into()))?;
        let key = Bytes::from(key);
        if let Some(old) = store.with_kv(|s| s.get(&key))? {
            if r.timestamp < old.timestamp {
                tracing::warn!(
                    store = %self.store_name,
                    "detected out-of-order KTable update: old timestamp {} new timestamp {}",
                    old.timestamp,
                    r.timestamp
                );
            }
        }
        let value = match &r.value {
            Some(v) => Some(Timestamped {
                value: encode(&self.values, v, &what)?,
                timestamp: r.timestamp,
            }),
            None => None,
        };
        store.with_kv(|s| s.put(key, value))
    }
}

/// Maps a stream record to the global table's key; `None` is a null key.
pub(crate) type KeySelector<K, V, GK> = Arc<dyn Fn(&K, &V) -> Option<GK> + Send + Sync>;

/// Joins a stream value with the global value found (`None`: no match); `None` out: emit
/// nothing (an inner join without a match).
pub(crate) type GlobalJoiner<V, GV, VR> = Arc<dyn Fn(&V, Option<&GV>) -> Option<VR> + Send + Sync>;

/// The stream–global-table join (Kafka's `KStreamKTableJoinProcessor` with a global value
/// getter): looks the mapped key up in the global store as it is now.
pub(crate) struct GlobalJoinNode<K, V, GK, GV, VR> {
    pub(crate) store_name: String,
    pub(crate) global_keys: SerdeRef<GK>,
    pub(crate) global_values: SerdeRef<GV>,
    pub(crate) key_selector: KeySelector<K, V, GK>,
    pub(crate) joiner: GlobalJoiner<V, GV, VR>,
    pub(crate) left: bool,
    pub(crate) null_keys: IsNull<K>,
    pub(crate) null_values: IsNull<V>,
    pub(crate) null_global_keys: IsNull<GK>,
    pub(crate) store: Option<StoreRef>,
}

impl<K, V, GK, GV, VR> GlobalJoinNode<K, V, GK, GV, VR>
where
    K: Data,
    V: Data,
    GK: Data,
    GV: Data,
    VR: Data,
{
    fn lookup(&self, key: &GK) -> Result<Option<GV>> {
        let what = format!("global store {}", self.store_name);
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("global join used before init".into()))?;
        let k = encode(&self.global_keys, key, &what)?;
        store
            .with_kv(|s| s.get(&k))?
            .map(|t| decode(&self.global_values, &t.value, &what))
            .transpose()
    }
}

impl<K, V, GK, GV, VR> Node for GlobalJoinNode<K, V, GK, GV, VR>
where
    K: Data,
    V: Data,
    GK: Data,
    GV: Data,
    VR: Data,
{
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store = Some(ctx.store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, V> = take_record(ctx.name(), record)?;
        let mapped = (self.key_selector)(&r.key, &r.value).filter(|k| !(self.null_global_keys)(k));
        let value_null = (self.null_values)(&r.value);
        // Kafka's `maybeDropRecord`: a left join keeps a record with a null key (and a
        // value), even when its mapped key is null; otherwise a null mapped key or a null
        // value drops the record.
        let keep = self.left && !value_null && (self.null_keys)(&r.key);
        if !keep && (mapped.is_none() || value_null) {
            ctx.record_dropped("skipping record due to null join key or value");
            return Ok(());
        }
        let found = match &mapped {
            Some(k) => self.lookup(k)?,
            None => None,
        };
        match (self.joiner)(&r.value, found.as_ref()) {
            Some(out) => ctx.forward(r.with_value(out)),
            None => Ok(()),
        }
    }
}
