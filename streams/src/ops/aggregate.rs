//! `KGroupedStream` count / reduce / aggregate (Kafka's `KStreamAggregate` and
//! `KStreamReduce`): one aggregate per key in a key-value store, updates forwarded as
//! [`Change`]s through the store's cache (every update when caching is off, the latest per
//! key at commit when on).
//!
//! Records whose key is null are dropped and counted. The aggregate's timestamp is the
//! largest timestamp of the records aggregated into it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{KeyValueStore, Timestamped};
use parking_lot::Mutex;

use crate::dsl::ktable::{Change, SendOldValues};
use crate::error::{Error, Result};
use crate::ops::front::Front;
use crate::record::Record;
use crate::serde::{compact_bytes, SerdeRef};
use crate::store::StoreRef;
use crate::task::node::{input_ref, Data, InFlight, Node, NodeContext};

/// Folds a value into the key's aggregate (`None`: the key's first value).
pub(crate) type Aggregator<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>;

/// `(key bytes, new, old)` as a caching store hands its updates downstream.
pub(crate) type Flushed = (Bytes, Option<Timestamped>, Option<Timestamped>);

/// What a caching store's listener hands over, waiting to be decoded and sent downstream
/// (the listener cannot forward itself: it runs while the store is locked). A flag says
/// whether anything waits, so the check after every record takes no lock.
pub(crate) struct Pending<T>(Arc<PendingInner<T>>);

struct PendingInner<T> {
    any: AtomicBool,
    items: Mutex<Vec<T>>,
}

impl<T> Clone for Pending<T> {
    fn clone(&self) -> Self {
        Pending(self.0.clone())
    }
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending(Arc::new(PendingInner {
            any: AtomicBool::new(false),
            items: Mutex::new(Vec::new()),
        }))
    }
}

impl<T> Pending<T> {
    pub(crate) fn push(&self, item: T) {
        let mut items = self.0.items.lock();
        items.push(item);
        self.0.any.store(true, Ordering::Release);
    }

    /// Whether anything waits (no lock taken).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.0.any.load(Ordering::Acquire)
    }

    /// Moves what waits into `out` (empty: its buffer is kept for the next time); false
    /// when nothing waited.
    pub(crate) fn take_into(&self, out: &mut Vec<T>) -> bool {
        if !self.0.any.load(Ordering::Acquire) {
            return false;
        }
        let mut items = self.0.items.lock();
        self.0.any.store(false, Ordering::Relaxed);
        if out.is_empty() {
            std::mem::swap(&mut *items, out);
        } else {
            out.append(&mut items);
        }
        true
    }
}

/// Updates a caching key-value store forwarded, waiting to be decoded and sent downstream.
#[derive(Clone, Default)]
pub(crate) struct FlushQueue(Pending<Flushed>);

impl FlushQueue {
    /// Installs the queue as `store`'s flush listener.
    pub(crate) fn listen_kv(&self, store: &StoreRef, send_old: bool) -> Result<()> {
        let queue = self.0.clone();
        store.with_kv(|s| {
            s.set_flush_listener(
                move |k: &[u8], new: Option<&Timestamped>, old: Option<&Timestamped>| {
                    queue.push((Bytes::copy_from_slice(k), new.cloned(), old.cloned()));
                },
                send_old,
            );
            Ok(())
        })
    }

    /// Takes what is waiting.
    pub(crate) fn drain(&self) -> Vec<Flushed> {
        let mut out = Vec::new();
        self.0.take_into(&mut out);
        out
    }
}

pub(crate) fn decode<T>(serde: &SerdeRef<T>, bytes: &[u8], what: &str) -> Result<T> {
    serde.deserialize(bytes).map_err(|reason| Error::Serde {
        context: what.to_string(),
        reason,
    })
}

pub(crate) fn encode<T>(serde: &SerdeRef<T>, value: &T, what: &str) -> Result<Bytes> {
    serde
        .serialize(value)
        .map(Bytes::from)
        .map_err(|reason| Error::Serde {
            context: what.to_string(),
            reason,
        })
}

/// Forwards what a KV store's cache released, as table changes.
///
/// Called after every record, nearly always with nothing waiting: that check (a flag) is
/// inlined, the forwarding is not.
#[inline]
pub(crate) fn forward_kv_changes<K: Data, VA: Data>(
    ctx: &mut NodeContext<'_>,
    queue: &FlushQueue,
    keys: &SerdeRef<K>,
    values: &SerdeRef<VA>,
    store: &str,
) -> Result<()> {
    if !queue.0.any() {
        return Ok(());
    }
    forward_waiting_kv(ctx, queue, keys, values, store)
}

fn forward_waiting_kv<K: Data, VA: Data>(
    ctx: &mut NodeContext<'_>,
    queue: &FlushQueue,
    keys: &SerdeRef<K>,
    values: &SerdeRef<VA>,
    store: &str,
) -> Result<()> {
    let drained = queue.drain();
    if drained.is_empty() {
        return Ok(());
    }
    let what = format!("store {store}");
    for (k, new, old) in drained {
        let key = decode(keys, &k, &what)?;
        let ts = new
            .as_ref()
            .or(old.as_ref())
            .map_or(ctx.stream_time(), |v| v.timestamp);
        let change = Change {
            new: new.map(|v| decode(values, &v.value, &what)).transpose()?,
            old: old.map(|v| decode(values, &v.value, &what)).transpose()?,
        };
        ctx.forward(Record::new(key, change, ts))?;
    }
    Ok(())
}

pub(crate) struct AggregateNode<K, V, VA> {
    pub(crate) store_name: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<VA>,
    pub(crate) aggregator: Aggregator<K, V, VA>,
    pub(crate) send_old: SendOldValues,
    /// The store and per-record scratch, from `init` on.
    pub(crate) store: Option<AggregateStore>,
    pub(crate) queue: FlushQueue,
    /// Updates since the last flush, typed, in front of the store's cache (see
    /// [`crate::ops::front`]; every key under window start 0); used only when
    /// `front_budget` is not 0.
    pub(crate) front: Front<VA>,
    /// The thread cache's budget when the front is in use, else 0 (set at `init` and at
    /// each flush).
    pub(crate) front_budget: usize,
}

/// What an initialized aggregation works with: its store, the context of its serde errors
/// (made once, not per record) and buffers reused from record to record.
pub(crate) struct AggregateStore {
    store: StoreRef,
    /// `store <name>`.
    what: String,
    /// The key buffer records are serialized into (the cache copies a key only when it is
    /// new to it).
    key_buf: Vec<u8>,
    /// The value buffer aggregates are serialized into before they are copied into the
    /// store's value.
    value_buf: Vec<u8>,
}

/// What a key-value aggregation's update works with, reached through one reference: a
/// closure that captured each part by reference was built in pieces by its caller and
/// copied whole by its callee, a stall on every record.
struct Fold<'a, K, V, VA> {
    key: &'a [u8],
    value_buf: &'a mut Vec<u8>,
    with: FoldWith<'a, K, V, VA>,
}

/// What the aggregating function itself reads, and where it leaves its error.
struct FoldWith<'a, K, V, VA> {
    record: &'a Record<K, V>,
    values: &'a SerdeRef<VA>,
    aggregator: &'a Aggregator<K, V, VA>,
    what: &'a str,
    failed: Option<Error>,
}

/// Folds `r` into the key's old aggregate: the new aggregate, serialized into
/// `value_buf` (the store's new value); returns its timestamp, the larger of the two.
fn aggregate<K, V, VA>(
    r: &Record<K, V>,
    old: Option<Timestamped<&[u8]>>,
    values: &SerdeRef<VA>,
    aggregator: &Aggregator<K, V, VA>,
    what: &str,
    value_buf: &mut Vec<u8>,
) -> Result<i64> {
    let (old_value, old_ts) = match old {
        Some(t) => (Some(decode(values, t.value, what)?), t.timestamp),
        None => (None, i64::MIN),
    };
    let new = aggregator(&r.key, &r.value, old_value);
    value_buf.clear();
    values
        .serialize_into(&new, value_buf)
        .map_err(|reason| Error::Serde {
            context: what.to_string(),
            reason,
        })?;
    Ok(r.timestamp.max(old_ts))
}

/// The length of `value` encoded (in `buf`): the check a cached update makes, that an
/// aggregate which cannot be serialized fails its own record.
pub(crate) fn encoded_len<VA>(
    values: &SerdeRef<VA>,
    value: &VA,
    buf: &mut Vec<u8>,
    what: &str,
) -> Result<usize> {
    buf.clear();
    values
        .serialize_into(value, buf)
        .map_err(|reason| Error::Serde {
            context: what.to_string(),
            reason,
        })?;
    Ok(buf.len())
}

/// An update through the front (see [`crate::ops::front`]): the key (in `st.key_buf`)'s
/// aggregate is the front's, else the store's (read through its cache). The new aggregate
/// is encoded here as the cache's update would: one that cannot be serialized fails its
/// own record, and the key keeps its aggregate.
fn update_front<K, V, VA: Clone>(
    front: &mut Front<VA>,
    st: &mut AggregateStore,
    values: &SerdeRef<VA>,
    aggregator: &Aggregator<K, V, VA>,
    r: &Record<K, V>,
) -> Result<()> {
    let hit = front.update(&st.key_buf, 0, |agg, t| {
        let new = aggregator(&r.key, &r.value, Some(agg.clone()));
        let len = encoded_len(values, &new, &mut st.value_buf, &st.what)?;
        Ok::<_, Error>((new, r.timestamp.max(t), len))
    });
    match hit {
        Some(done) => done,
        None => {
            let found = st.store.with_kv(|s| s.get(&st.key_buf))?;
            let (old, new_ts) = match found {
                Some(t) => (
                    Some(decode(values, &t.value, &st.what)?),
                    r.timestamp.max(t.timestamp),
                ),
                None => (None, r.timestamp),
            };
            let new = aggregator(&r.key, &r.value, old);
            let len = encoded_len(values, &new, &mut st.value_buf, &st.what)?;
            front.put(&st.key_buf, 0, new, new_ts, len);
            Ok(())
        }
    }
}

impl<K: Data, V: Data, VA: Data> AggregateNode<K, V, VA> {
    fn store(&self) -> Result<&StoreRef> {
        self.store
            .as_ref()
            .map(|s| &s.store)
            .ok_or_else(|| Error::InvalidArgument("aggregate used before init".into()))
    }

    /// The front's budget: the thread cache's, when the front may be used — the store
    /// caches (with a budget of 0 every update goes through at once) and no other node
    /// reads it (a join reading the table through its value getter, a processor connected
    /// to the store would not see the front's updates); else 0.
    fn budget_for_front(&self, ctx: &NodeContext<'_>, store: &StoreRef) -> Result<usize> {
        if ctx.store_shared(&self.store_name) {
            return Ok(0);
        }
        store.with_kv(|s| Ok(s.cache_budget()))
    }

    /// Hands the front's aggregates to the store's cache, least recently updated first,
    /// and forwards what the cache releases on the way.
    fn write_back(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let drained = self.front.drain();
        let Some(st) = self.store.as_mut() else {
            return Err(Error::InvalidArgument("aggregate used before init".into()));
        };
        for (key, _, e) in drained.iter() {
            encoded_len(&self.values, &e.value, &mut st.value_buf, &st.what)?;
            let value = compact_bytes(&st.value_buf);
            let timestamp = e.timestamp;
            st.store
                .with_kv(|s| s.put_slice(key, Some(Timestamped { value, timestamp })))?;
            forward_kv_changes(ctx, &self.queue, &self.keys, &self.values, &self.store_name)?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data, VA: Data> Node for AggregateNode<K, V, VA> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let store = ctx.store(&self.store_name)?;
        self.queue.listen_kv(&store, self.send_old.get())?;
        self.front_budget = self.budget_for_front(ctx, &store)?;
        self.store = Some(AggregateStore {
            store,
            what: format!("store {}", self.store_name),
            key_buf: Vec::new(),
            value_buf: Vec::new(),
        });
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        // Borrowed where it lies: moving it out of its slot was a copy per record.
        let r: &Record<K, V> = input_ref(ctx, record)?;
        let Some(st) = self.store.as_mut() else {
            return Err(Error::InvalidArgument("aggregate used before init".into()));
        };
        let AggregateStore {
            store,
            what,
            key_buf,
            value_buf,
        } = st;
        key_buf.clear();
        match self.keys.serialize_nullable_into(&r.key, key_buf) {
            Ok(true) => {}
            Ok(false) => {
                ctx.record_dropped("skipping record due to null key");
                return Ok(());
            }
            Err(reason) => {
                return Err(Error::Serde {
                    context: what.clone(),
                    reason,
                })
            }
        }
        if self.front_budget > 0 {
            update_front(&mut self.front, st, &self.values, &self.aggregator, r)?;
            // A read of the store may have evicted from the cache.
            forward_kv_changes(ctx, &self.queue, &self.keys, &self.values, &self.store_name)?;
            if self.front.bytes() > self.front_budget {
                self.write_back(ctx)?;
            }
            return Ok(());
        }
        // Read, aggregate and write under one lock: the aggregator is a pure function of
        // the record and the old aggregate, and nothing is forwarded before the put. Its
        // error waits in `fold.failed`, so that the update's result stays a flag (a large
        // value moved back through the store's layers on every update was a stall), and
        // each closure holds one reference (see [`Fold`]).
        let mut fold = Fold {
            key: key_buf,
            value_buf,
            with: FoldWith {
                record: r,
                values: &self.values,
                aggregator: &self.aggregator,
                what,
                failed: None,
            },
        };
        let folding = &mut fold;
        let updated = store.with_kv(move |s| {
            let Fold {
                key,
                value_buf,
                with,
            } = folding;
            s.update(key, value_buf, move |old, buf| {
                aggregate(
                    with.record,
                    old,
                    with.values,
                    with.aggregator,
                    with.what,
                    buf,
                )
                .map_err(|e| with.failed = Some(e))
            })
            .map(|r| r.is_ok())
        })?;
        if !updated {
            let what = fold.with.what;
            return Err(fold.with.failed.take().unwrap_or_else(|| {
                Error::InvalidArgument(format!("aggregate over {what} failed without an error"))
            }));
        }
        forward_kv_changes(ctx, &self.queue, &self.keys, &self.values, &self.store_name)
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if !self.front.is_empty() {
            self.write_back(ctx)?;
        }
        if self.front_budget > 0 {
            // The budget may have changed (threads added or removed).
            self.front_budget = self.store()?.with_kv(|s| Ok(s.cache_budget()))?;
        }
        self.store()?.with_kv(|s| s.flush())?;
        forward_kv_changes(ctx, &self.queue, &self.keys, &self.values, &self.store_name)
    }
}
