//! Table sources (Kafka's `KTableSource`, behind `StreamsBuilder::table` and
//! `KStream::to_table`) and [`TableStore`], the store-and-forward step every materialized
//! table operator shares (Kafka's `KeyValueStoreWrapper` + `TimestampedTupleForwarder` +
//! `TimestampedCacheFlushListener`).
//!
//! A materialized table operator writes each new value to its key-value store. With the
//! record cache on, the update goes downstream when the cache releases it (commit or
//! eviction), as `Change(new, old)` where `old` is the store's previous value (sent only
//! when old values are wanted), at the update's timestamp and with its headers. With the
//! cache off it goes downstream at once, with the old value the operator computed.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{KeyValueStore, Timestamped};

use crate::dsl::ktable::Change;
use crate::error::{Error, Result};
use crate::ops::aggregate::{decode, encode, FlushQueue};
use crate::record::{Headers, Record};
use crate::serde::SerdeRef;
use crate::store::StoreRef;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// Whether a key or value is null (only `Option`s and `()` can be; see `dsl::table::null_check`).
pub(crate) type IsNull<T> = Arc<dyn Fn(&T) -> bool + Send + Sync>;

/// Logs and counts a record dropped for its null key, in Kafka's words.
pub(crate) fn drop_null_key(ctx: &mut NodeContext<'_>, what: &str) {
    let reason = match ctx.record_metadata() {
        Some(m) => format!(
            "Skipping record due to {what}. topic=[{}] partition=[{}] offset=[{}]",
            m.topic, m.partition, m.offset
        ),
        None => format!("Skipping record due to {what}. Topic, partition, and offset not known."),
    };
    ctx.record_dropped(&reason);
}

/// A table operator's key-value store and the forwarding of its updates.
pub(crate) struct TableStore<K, V> {
    pub(crate) name: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    store: Option<StoreRef>,
    caching: bool,
    send_old: bool,
    queue: FlushQueue,
    /// Timestamp and headers of each key's latest write not forwarded yet: what Kafka's
    /// cache keeps as the entry's record context (a delete has no value to carry them).
    pending: HashMap<Bytes, (i64, Headers)>,
}

impl<K: Data, V: Data> TableStore<K, V> {
    pub(crate) fn new(name: String, keys: SerdeRef<K>, values: SerdeRef<V>) -> Self {
        TableStore {
            name,
            keys,
            values,
            store: None,
            caching: false,
            send_old: false,
            queue: FlushQueue::default(),
            pending: HashMap::new(),
        }
    }

    /// Gets the store; with the cache on, updates go downstream through its listener.
    pub(crate) fn init(&mut self, ctx: &NodeContext<'_>, send_old: bool) -> Result<()> {
        let store = ctx.store(&self.name)?;
        self.caching = store.with_kv(|s| Ok(s.is_caching()))?;
        if self.caching {
            self.queue.listen_kv(&store, send_old)?;
        }
        self.send_old = send_old;
        self.store = Some(store);
        Ok(())
    }

    fn store(&self) -> Result<&StoreRef> {
        self.store
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument(format!("store {} used before init", self.name)))
    }

    /// The key's bytes; `None` for a null key.
    pub(crate) fn key_bytes(&self, key: &K) -> Result<Option<Bytes>> {
        self.keys
            .serialize_nullable(key)
            .map(|k| k.map(Bytes::from))
            .map_err(|reason| Error::Serde {
                context: format!("key of store {}", self.name),
                reason,
            })
    }

    /// The key's value and timestamp (through the cache).
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<(V, i64)>> {
        let found = self.store()?.with_kv(|s| s.get(key))?;
        found
            .map(|t| {
                Ok((
                    decode(&self.values, &t.value, &format!("store {}", self.name))?,
                    t.timestamp,
                ))
            })
            .transpose()
    }

    /// Writes `change.new` for `key` at `timestamp` and forwards the update: through the
    /// cache when it is on, else at once (old value only when old values are sent).
    pub(crate) fn put_and_forward(
        &mut self,
        ctx: &mut NodeContext<'_>,
        record: Record<K, Change<V>>,
        key: Bytes,
    ) -> Result<()> {
        let what = format!("store {}", self.name);
        let value = match &record.value.new {
            Some(v) => Some(Timestamped {
                value: encode(&self.values, v, &what)?,
                timestamp: record.timestamp,
            }),
            None => None,
        };
        if self.caching {
            self.pending
                .insert(key.clone(), (record.timestamp, record.headers.clone()));
        }
        self.store()?.with_kv(|s| s.put(key, value))?;
        if self.caching {
            return self.forward_flushed(ctx);
        }
        let mut record = record;
        if !self.send_old {
            record.value.old = None;
        }
        ctx.forward(record)
    }

    /// Commit step 1: writes the cache down and forwards what it held.
    pub(crate) fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if self.store.is_none() {
            return Ok(());
        }
        self.store()?.with_kv(|s| s.flush())?;
        self.forward_flushed(ctx)?;
        // What is left was never forwarded (a delete of an absent key) and is stale now.
        self.pending.clear();
        Ok(())
    }

    fn forward_flushed(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let what = format!("store {}", self.name);
        for (k, new, old) in self.queue.drain() {
            let key = decode(&self.keys, &k, &what)?;
            let (context_ts, headers) = self
                .pending
                .remove(&k)
                .unwrap_or((ctx.stream_time(), Headers::new()));
            let timestamp = new.as_ref().map_or(context_ts, |v| v.timestamp);
            let change = Change {
                new: new
                    .map(|v| decode(&self.values, &v.value, &what))
                    .transpose()?,
                old: old
                    .map(|v| decode(&self.values, &v.value, &what))
                    .transpose()?,
            };
            ctx.forward(Record {
                key,
                value: change,
                timestamp,
                headers,
            })?;
        }
        Ok(())
    }
}

/// Turns a source record's value into the table's new value (`None`: a delete).
pub(crate) type ToTableValue<VIn, V> = Arc<dyn Fn(VIn) -> Option<V> + Send + Sync>;

/// Kafka's `KTableSourceProcessor`: drops null keys; when materialized, reads the old
/// value, writes the new one and forwards through the store; else forwards
/// `Change(new, None)`.
pub(crate) struct TableSourceNode<K, VIn, V> {
    pub(crate) key_is_null: IsNull<K>,
    pub(crate) to_value: ToTableValue<VIn, V>,
    /// The store, when the table is materialized.
    pub(crate) store: Option<TableStore<K, V>>,
    pub(crate) send_old: bool,
}

impl<K: Data, VIn: Data, V: Data> Node for TableSourceNode<K, VIn, V> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if let Some(store) = &mut self.store {
            store.init(ctx, self.send_old)?;
        }
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, VIn> = take_record(ctx.name(), record)?;
        if (self.key_is_null)(&r.key) {
            drop_null_key(ctx, "null key");
            return Ok(());
        }
        let new = (self.to_value)(r.value);
        let Some(store) = &mut self.store else {
            let change = Change { new, old: None };
            return ctx.forward(Record {
                key: r.key,
                value: change,
                timestamp: r.timestamp,
                headers: r.headers,
            });
        };
        let Some(key) = store.key_bytes(&r.key)? else {
            drop_null_key(ctx, "null key");
            return Ok(());
        };
        let old = match store.get(&key)? {
            Some((old, old_ts)) => {
                if r.timestamp < old_ts {
                    let origin = match ctx.record_metadata() {
                        Some(m) => format!(
                            "topic=[{}] partition=[{}] offset=[{}].",
                            m.topic, m.partition, m.offset
                        ),
                        None => "Topic, partition and offset not known.".to_string(),
                    };
                    tracing::warn!(
                        node = %ctx.name(),
                        "Detected out-of-order KTable update for {}, old timestamp=[{old_ts}] new timestamp=[{}]. {origin}",
                        store.name,
                        r.timestamp
                    );
                }
                Some(old)
            }
            None => None,
        };
        let record = Record {
            key: r.key,
            value: Change { new, old },
            timestamp: r.timestamp,
            headers: r.headers,
        };
        store.put_and_forward(ctx, record, key)
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        match &mut self.store {
            Some(store) => store.flush(ctx),
            None => Ok(()),
        }
    }
}
