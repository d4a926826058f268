//! Time-windowed count / reduce / aggregate (Kafka's `KStreamWindowAggregate` and
//! `AbstractKStreamTimeWindowAggregateProcessor`), and the parts the sliding-window
//! aggregation shares with it ([`WindowedCore`]).
//!
//! Each record is added to every window `windows_for(timestamp)` gives whose end is still
//! after the close time `observed stream time - grace`; the observed stream time is this
//! processor's own (the largest timestamp that reached it), advanced *before* the check, so
//! a late record may enter some hopping windows and miss others. A window's timestamp is the
//! largest timestamp aggregated into it. Records with a null key are dropped.
//!
//! # Emitting
//! [`EmitStrategy::OnWindowUpdate`] forwards every update, through the store's cache when
//! it has one (the old value then comes from the cache's flush) and at once otherwise (the
//! old value is the one the aggregator started from, as Kafka's `TimestampedTupleForwarder`).
//! [`EmitStrategy::OnWindowClose`] forwards nothing on update: after each record, at most once
//! per `windowed_emit_interval_ms` of wall-clock time, it fetches the windows that closed
//! since the last emit (window starts in `(last close - size, close - size]`) from the store,
//! in window-start order then key-byte order (Kafka's time-ordered emit-final store), and
//! forwards each with its stored timestamp. With a throttle (a non-zero interval: the
//! runtime) it also emits, whatever the throttle says, before a record's puts that would move
//! the store's retention past a closed window not emitted yet, so that a backlog processed
//! within one interval loses no final result. The close time it emitted up to is committed
//! with the offsets as processor metadata (Kafka's
//! `addProcessorMetadataKeyValue(storeName, closeTime)`; here the entry
//! `processor-metadata:<store>` of the task's stream times) and restored at restart, so a
//! restarted task neither re-emits nor skips windows. The observed stream time is committed
//! and restored too (Kafka restarts it from nothing), so a restart never reopens a window.
//!
//! Emit-final reads a store that shows windows starting exactly `retention` before its
//! stream time, as Kafka's time-ordered emit-final store does (one millisecond more than
//! the plain window store, which hides them): the DSL gives that store one more
//! millisecond of retention.
//!
//! # Late records
//! A record dropped from a window counts once per window in `dropped_records` and
//! `late_records`. With a late-records topic, each record dropped from at least one window
//! is also written there once, with its key, value, timestamp and headers plus the header
//! [`LATE_REASON_HEADER`] naming the closed windows.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{Timestamped, WindowStore};

use crate::dsl::ktable::{Change, SendOldValues};
use crate::dsl::table::ValueGetter;
use crate::dsl::windowed::EmitStrategy;
use crate::error::{Error, Result};
use crate::ops::aggregate::{decode, encoded_len, Aggregator, Pending};
use crate::ops::front::Front;
use crate::partitioner::partition_for_key;
use crate::record::{Headers, Record, SinkRecord};
use crate::serde::{compact_bytes, SerdeRef, Window, Windowed};
use crate::store::StoreRef;
use crate::task::node::{input_ref, Data, InFlight, Node, NodeContext};
use crate::topology::TopicName;
use crate::window::TimeWindows;

/// The header a record written to a late-records topic carries: why it was dropped.
pub const LATE_REASON_HEADER: &str = "__freshet.late.reason";

/// Makes the starting aggregate of a new window (`None`: Kafka's null, which `reduce` uses
/// so that the first value becomes the aggregate).
pub(crate) type Initializer<VA> = Arc<dyn Fn() -> Option<VA> + Send + Sync>;

/// `(windowed key bytes, new, old)` as a caching window store hands its updates downstream.
type WindowFlushed = (Windowed<Bytes>, Option<Timestamped>, Option<Timestamped>);

/// Updates a caching window store released, waiting to be forwarded (its listener runs
/// while the store is locked and cannot forward itself).
type WindowFlushQueue = Pending<WindowFlushed>;

/// Past this many entries, the buffer forwarded updates pass through is not kept for the
/// next flush.
const SPARE_MAX: usize = 1 << 16;

/// Where records dropped as late also go.
pub(crate) struct LateRecords<V> {
    pub(crate) topic: TopicName,
    pub(crate) values: SerdeRef<V>,
}

impl<V> Clone for LateRecords<V> {
    fn clone(&self) -> Self {
        LateRecords {
            topic: self.topic.clone(),
            values: self.values.clone(),
        }
    }
}

/// What the time and sliding window aggregations share: the store and how updates go
/// downstream, the observed stream time, emit-final and late records.
pub(crate) struct WindowedCore<K, V, VA> {
    pub(crate) store_name: String,
    /// `store <name>`: the context of serde errors (made once, not per record).
    what: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<VA>,
    pub(crate) emit: EmitStrategy,
    /// Updates go downstream through the store's cache (the store has a caching layer).
    pub(crate) caching: bool,
    pub(crate) send_old: SendOldValues,
    pub(crate) grace: i64,
    pub(crate) late: Option<LateRecords<V>>,
    /// The aggregation logic.
    pub(crate) initializer: Initializer<VA>,
    pub(crate) aggregator: Aggregator<K, V, VA>,
    store: Option<StoreRef>,
    queue: WindowFlushQueue,
    /// The buffer the last forwarded updates went through, kept for the next ones.
    spare: Vec<WindowFlushed>,
    sending_old: bool,
    /// The largest timestamp that reached this processor (-1: none).
    pub(crate) observed: i64,
    /// The close time emit-final last emitted up to.
    last_emit: Option<i64>,
    /// Wall-clock time before which emit-final does not look for closed windows.
    next_emit: i64,
    /// Why the record being processed was dropped from some windows.
    late_reasons: Vec<String>,
    /// The key buffer records are serialized into, reused from record to record.
    key_buf: Vec<u8>,
    /// Where aggregates are serialized before they are copied into the store's value.
    value_buf: Vec<u8>,
    /// Time windows' updates since the last flush, typed, in front of the store's cache
    /// (see [`crate::ops::front`]); used only when `front_budget` is not 0.
    front: Front<VA>,
    /// The thread cache's budget when the front is in use, else 0 (set at `init` and at
    /// each flush).
    front_budget: usize,
}

/// What a window aggregation's update works with, reached through one reference: a
/// closure that captured each part by reference was built in pieces by its caller and
/// copied whole by its callee, a stall on every window update.
struct WindowFold<'a, 'r, K, V, VA> {
    value_buf: &'a mut Vec<u8>,
    with: WindowFoldWith<'a, 'r, K, V, VA>,
}

/// What folding a record into a window reads, and what it leaves: the forwarded parts
/// (`out`) or its error.
struct WindowFoldWith<'a, 'r, K, V, VA> {
    cur: &'a Current<'r, K, V>,
    values: &'a SerdeRef<VA>,
    what: &'a str,
    initializer: &'a Initializer<VA>,
    aggregator: &'a Aggregator<K, V, VA>,
    forward_old: bool,
    /// `(old aggregate kept for forwarding, new aggregate, its timestamp)`.
    out: Option<(Option<VA>, VA, i64)>,
    failed: Option<Error>,
}

impl<K: Data, V: Data, VA: Data> WindowFoldWith<'_, '_, K, V, VA> {
    /// Folds the record into the window's aggregate `found` (`None`: the initializer's, at
    /// the record's timestamp), writes the new aggregate into `buf` and returns its
    /// timestamp.
    fn fold(&mut self, found: Option<Timestamped<&[u8]>>, buf: &mut Vec<u8>) -> Result<i64> {
        let ts = self.cur.record.timestamp;
        let (old, new_ts) = match found {
            Some(t) => (
                Some(decode(self.values, t.value, self.what)?),
                ts.max(t.timestamp),
            ),
            None => ((self.initializer)(), ts),
        };
        let (input, kept) = if self.forward_old {
            (old.clone(), old)
        } else {
            (old, None)
        };
        let new = (self.aggregator)(&self.cur.record.key, &self.cur.record.value, input);
        encoded_len(self.values, &new, buf, self.what)?;
        self.out = Some((kept, new, new_ts));
        Ok(new_ts)
    }
}

/// The record being processed, with its key's bytes (serialized once per record, not once
/// per window).
pub(crate) struct Current<'r, K, V> {
    /// Borrowed where it lies in the input slot (moving it out was a copy per record).
    pub(crate) record: &'r Record<K, V>,
    pub(crate) key: Vec<u8>,
}

impl<K: Data, V: Data, VA: Data> WindowedCore<K, V, VA> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store_name: String,
        keys: SerdeRef<K>,
        values: SerdeRef<VA>,
        emit: EmitStrategy,
        caching: bool,
        send_old: SendOldValues,
        grace: i64,
        late: Option<LateRecords<V>>,
        initializer: Initializer<VA>,
        aggregator: Aggregator<K, V, VA>,
    ) -> Self {
        WindowedCore {
            what: format!("store {store_name}"),
            store_name,
            keys,
            values,
            emit,
            caching: caching && emit == EmitStrategy::OnWindowUpdate,
            send_old,
            grace,
            late,
            initializer,
            aggregator,
            store: None,
            queue: WindowFlushQueue::default(),
            spare: Vec::new(),
            sending_old: false,
            observed: -1,
            last_emit: None,
            next_emit: 0,
            late_reasons: Vec::new(),
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            front: Front::default(),
            front_budget: 0,
        }
    }

    fn what(&self) -> &str {
        &self.what
    }

    pub(crate) fn store(&self) -> Result<&StoreRef> {
        self.store.as_ref().ok_or_else(|| self.not_initialized())
    }

    /// An aggregation reported failed without its error (cannot happen: the closure sets
    /// it before failing).
    fn lost_failure(&self) -> Error {
        Error::InvalidArgument(format!(
            "window aggregation over {} failed without an error",
            self.store_name
        ))
    }

    fn not_initialized(&self) -> Error {
        Error::InvalidArgument(format!(
            "window aggregation over {} used before init",
            self.store_name
        ))
    }

    /// Gets the store and, when updates go through its cache, listens to it.
    pub(crate) fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let store = ctx.store(&self.store_name)?;
        self.sending_old = self.send_old.get();
        if self.caching {
            let queue = self.queue.clone();
            store.with_window(|s| {
                s.set_flush_listener(
                    move |w: &Windowed<Bytes>,
                          new: Option<&Timestamped>,
                          old: Option<&Timestamped>| {
                        queue.push((w.clone(), new.cloned(), old.cloned()));
                    },
                    self.sending_old,
                );
                Ok(())
            })?;
        }
        self.front_budget = self.budget_for_front(ctx, &store)?;
        self.store = Some(store);
        Ok(())
    }

    /// The front's budget: the thread cache's, when the front may be used — the store
    /// caches (with a budget of 0 every update goes through at once) and no other node
    /// reads it (a join reading the windowed table, a processor connected to the store
    /// would not see the front's updates); else 0.
    fn budget_for_front(&self, ctx: &NodeContext<'_>, store: &StoreRef) -> Result<usize> {
        if !self.caching || ctx.store_shared(&self.store_name) {
            return Ok(0);
        }
        store.with_window(|s| Ok(s.cache_budget()))
    }

    /// The record (borrowed in its slot) and its key bytes; `None` (counted as dropped) for a null key, or,
    /// with `null_values` (sliding windows), for a null value (detected with `values`
    /// when the value serde is known).
    ///
    /// The key is serialized into the buffer where the returned `Current` already holds
    /// it: a buffer moved after the serializer wrote its length was reloaded whole while
    /// that write was still in flight, a stall per record.
    #[inline(always)]
    pub(crate) fn take<'r>(
        &mut self,
        ctx: &mut NodeContext<'_>,
        record: &'r mut InFlight<'_>,
        null_values: bool,
        values: Option<&SerdeRef<V>>,
        cur: &mut Option<Current<'r, K, V>>,
    ) -> Result<()> {
        let r: &Record<K, V> = input_ref(ctx, record)?;
        let c = cur.insert(Current {
            record: r,
            key: std::mem::take(&mut self.key_buf),
        });
        c.key.clear();
        let not_null = match self.keys.serialize_nullable_into(&r.key, &mut c.key) {
            Ok(not_null) => not_null,
            Err(reason) => {
                return Err(Error::Serde {
                    context: self.what.clone(),
                    reason,
                })
            }
        };
        let null_value = match values {
            Some(v) if null_values => v.is_null(&r.value),
            _ => false,
        };
        if not_null && !null_value {
            return Ok(());
        }
        if let Some(c) = cur.take() {
            self.done(c);
        }
        let what = if null_values {
            "null key or value"
        } else {
            "null key"
        };
        let origin = origin(ctx);
        ctx.record_dropped(&format!("Skipping record due to {what}. {origin}"));
        Ok(())
    }

    /// Hands the current record's key buffer back for the next record.
    pub(crate) fn done(&mut self, cur: Current<K, V>) {
        self.key_buf = cur.key;
    }

    /// Advances the observed stream time to `timestamp`; gives the close time.
    pub(crate) fn observe(&mut self, timestamp: i64) -> i64 {
        self.observed = self.observed.max(timestamp);
        self.observed.saturating_sub(self.grace)
    }

    /// `(window start, value)` of `key` for starts in `[from, to]`, ascending or
    /// (`reverse`) descending.
    pub(crate) fn fetch(
        &self,
        key: &[u8],
        from: i64,
        to: i64,
        reverse: bool,
    ) -> Result<Vec<(i64, Timestamped)>> {
        self.store()?.with_window(|s| {
            let it = if reverse {
                s.backward_fetch(key, from, to)?
            } else {
                s.fetch(key, from, to)?
            };
            it.collect::<freshet_state_store::Result<Vec<_>>>()
        })
    }

    pub(crate) fn decode_value(&self, bytes: &[u8]) -> Result<VA> {
        decode(&self.values, bytes, self.what())
    }

    /// Folds the current record into `old` (the window's aggregate and timestamp, `None`:
    /// Kafka's null), stores the result in `window` and forwards it.
    pub(crate) fn aggregate_into(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        window: Window,
        old: Option<(VA, i64)>,
    ) -> Result<()> {
        let ts = cur.record.timestamp;
        let (old, new_ts) = match old {
            None => (None, ts),
            Some((agg, t)) => (Some(agg), ts.max(t)),
        };
        let forward_old =
            self.sending_old && !self.caching && self.emit == EmitStrategy::OnWindowUpdate;
        let (input, kept) = if forward_old {
            (old.clone(), old)
        } else {
            (old, None)
        };
        let new = (self.aggregator)(&cur.record.key, &cur.record.value, input);
        let bytes = self.encode_value(&new)?;
        self.put(ctx, &cur.key, window.start, bytes, new_ts)?;
        self.forward_update(ctx, cur, window, kept, new, new_ts)
    }

    /// An aggregate's bytes as the store keeps them: serialized in a reused buffer, then
    /// copied into one small allocation ([`compact_bytes`]).
    fn encode_value(&mut self, value: &VA) -> Result<Bytes> {
        encoded_len(&self.values, value, &mut self.value_buf, &self.what)?;
        Ok(compact_bytes(&self.value_buf))
    }

    /// Folds the current record into its window's aggregate (the initializer's for a window
    /// new to the store, at the record's timestamp, as Kafka's `newTimestamp =
    /// record.timestamp()`), stores and forwards the result: the read and
    /// [`WindowedCore::aggregate_into`] under one lock of the store (the initializer and
    /// aggregator are pure, and nothing is forwarded before the put).
    pub(crate) fn update(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        window: Window,
    ) -> Result<()> {
        if self.front_budget > 0 {
            return self.update_front(ctx, cur, window);
        }
        let forward_old =
            self.sending_old && !self.caching && self.emit == EmitStrategy::OnWindowUpdate;
        let Some(store) = self.store.as_ref() else {
            return Err(self.not_initialized());
        };
        // The aggregation's error waits in `fold.failed`: the update's result stays a flag,
        // not a large value moved back through every layer of the store on every update.
        // Each closure holds one reference (see `WindowFold`).
        let mut fold = WindowFold {
            value_buf: &mut self.value_buf,
            with: WindowFoldWith {
                cur,
                values: &self.values,
                what: self.what.as_str(),
                initializer: &self.initializer,
                aggregator: &self.aggregator,
                forward_old,
                out: None,
                failed: None,
            },
        };
        let folding = &mut fold;
        let start = window.start;
        let updated = store.with_window(move |s| {
            let WindowFold { value_buf, with } = folding;
            s.update(
                &with.cur.key,
                start,
                value_buf,
                move |found, buf| -> std::result::Result<i64, ()> {
                    with.fold(found, buf).map_err(|e| with.failed = Some(e))
                },
            )
            .map(|r| r.is_ok())
        })?;
        let WindowFoldWith { out, failed, .. } = fold.with;
        if !updated {
            return Err(failed.unwrap_or_else(|| self.lost_failure()));
        }
        let Some((kept, new, new_ts)) = out else {
            return Err(Error::InvalidArgument(format!(
                "store {} put a window without aggregating it",
                self.store_name
            )));
        };
        self.forward_flushed(ctx)?;
        self.forward_update(ctx, cur, window, kept, new, new_ts)
    }

    /// [`update`](Self::update) through the front: the window's aggregate is the front's,
    /// else the store's (read through its cache), else the initializer's. The new
    /// aggregate is encoded here as the cache's update would: one that cannot be serialized
    /// fails its own record, and the window keeps its aggregate.
    fn update_front(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        window: Window,
    ) -> Result<()> {
        let (start, ts) = (window.start, cur.record.timestamp);
        // Most updates: the window is in the front, updated in place in one lookup.
        let (values, what, buf) = (&self.values, self.what.as_str(), &mut self.value_buf);
        let aggregator = &self.aggregator;
        let hit = self.front.update(&cur.key, start, |agg, t| {
            let new = aggregator(&cur.record.key, &cur.record.value, Some(agg.clone()));
            let len = encoded_len(values, &new, buf, what)?;
            Ok::<_, Error>((new, ts.max(t), len))
        });
        match hit {
            Some(done) => done?,
            None => {
                let found = self
                    .store()?
                    .with_window(|s| s.fetch_one(&cur.key, start))?;
                let (old, new_ts) = match found {
                    Some(t) => (Some(self.decode_value(&t.value)?), ts.max(t.timestamp)),
                    None => ((self.initializer)(), ts),
                };
                let new = (self.aggregator)(&cur.record.key, &cur.record.value, old);
                let len = encoded_len(&self.values, &new, &mut self.value_buf, &self.what)?;
                self.front.put(&cur.key, start, new, new_ts, len);
            }
        }
        if self.front.bytes() > self.front_budget {
            self.write_back(ctx)?;
        }
        Ok(())
    }

    /// Hands the front's windows to the store's cache, least recently updated first, and
    /// forwards what the cache releases on the way.
    fn write_back(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let drained = self.front.drain();
        for (key, start, e) in drained.iter() {
            let bytes = self.encode_value(&e.value)?;
            self.put(ctx, key, start, bytes, e.timestamp)?;
        }
        Ok(())
    }

    /// Puts an aggregate (already encoded) and forwards what the cache released.
    pub(crate) fn put(
        &mut self,
        ctx: &mut NodeContext<'_>,
        key: &[u8],
        start: i64,
        value: Bytes,
        timestamp: i64,
    ) -> Result<()> {
        self.store()?
            .with_window(|s| s.put(key, Some(Timestamped { value, timestamp }), start))?;
        self.forward_flushed(ctx)
    }

    /// Forwards an update at once when the store has no cache (emit on update only).
    #[inline]
    pub(crate) fn forward_update(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        window: Window,
        old: Option<VA>,
        new: VA,
        timestamp: i64,
    ) -> Result<()> {
        if self.emit == EmitStrategy::OnWindowClose || self.caching {
            return Ok(());
        }
        let old = if self.sending_old { old } else { None };
        ctx.forward(Record {
            key: Windowed::new(cur.record.key.clone(), window),
            value: Change {
                new: Some(new),
                old,
            },
            timestamp,
            headers: cur.record.headers.clone(),
        })
    }

    /// Forwards what the store's cache released (flush or eviction), as table changes.
    /// Checked after every update, nearly always with nothing waiting: that check is
    /// inlined, the forwarding is not.
    #[inline]
    fn forward_flushed(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if !self.caching || !self.queue.any() {
            return Ok(());
        }
        self.forward_waiting(ctx)
    }

    fn forward_waiting(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let mut flushed = std::mem::take(&mut self.spare);
        if !self.queue.take_into(&mut flushed) {
            self.spare = flushed;
            return Ok(());
        }
        for (w, new, old) in flushed.drain(..) {
            let what = self.what.as_str();
            let key = decode(&self.keys, &w.key, what)?;
            let ts = new
                .as_ref()
                .or(old.as_ref())
                .map_or(ctx.stream_time(), |v| v.timestamp);
            let change = Change {
                new: new
                    .map(|v| decode(&self.values, &v.value, what))
                    .transpose()?,
                old: old
                    .map(|v| decode(&self.values, &v.value, what))
                    .transpose()?,
            };
            ctx.forward(Record::new(Windowed::new(key, w.window), change, ts))?;
        }
        if flushed.capacity() <= SPARE_MAX {
            self.spare = flushed;
        }
        Ok(())
    }

    /// Counts the current record as dropped from one closed window and remembers why.
    pub(crate) fn drop_late(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        window: &str,
        close: i64,
        reason: String,
    ) {
        let origin = origin(ctx);
        ctx.record_dropped(&format!(
            "Skipping record for expired window. {origin} timestamp=[{}] window={window} expiration=[{close}] streamTime=[{}]",
            cur.record.timestamp, self.observed
        ));
        ctx.record_late();
        self.late_reasons.push(reason);
    }

    /// Writes the current record to the late-records topic if it was dropped from any
    /// window.
    pub(crate) fn send_late(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
    ) -> Result<()> {
        if self.late_reasons.is_empty() {
            return Ok(());
        }
        let reason = std::mem::take(&mut self.late_reasons).join("; ");
        let Some(late) = &self.late else {
            return Ok(());
        };
        let topic = late.topic.resolve(&ctx.config().application_id);
        let value = late
            .values
            .serialize_nullable(&cur.record.value)
            .map_err(|reason| Error::Serde {
                context: format!("value for late-records topic {topic}"),
                reason,
            })?;
        let partition = ctx
            .partitions_of(&topic)
            .map(|n| partition_for_key(&cur.key, n));
        let key = Bytes::copy_from_slice(&cur.key);
        let mut headers: Headers = cur.record.headers.clone();
        headers.push((LATE_REASON_HEADER.to_string(), Bytes::from(reason)));
        ctx.send(SinkRecord {
            topic,
            partition,
            key: Some(key),
            value: value.map(Bytes::from),
            timestamp: cur.record.timestamp,
            headers,
        });
        Ok(())
    }

    /// Emit-final: after a record, forwards the windows that closed since the last emit.
    /// `bounds(last emit, close)` gives the window starts to fetch, `None` when there is
    /// nothing new to emit.
    pub(crate) fn maybe_emit_final(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        close: i64,
        bounds: impl FnOnce(Option<i64>, i64) -> Option<(i64, i64)>,
    ) -> Result<()> {
        if self.emit != EmitStrategy::OnWindowClose {
            return Ok(());
        }
        let now = ctx.wall_clock();
        if now < self.next_emit {
            return Ok(());
        }
        self.next_emit = now.saturating_add(ctx.config().windowed_emit_interval_ms);
        self.emit_closed(ctx, cur, close, bounds)
    }

    /// Emit-final with a wall-clock throttle (a non-zero emit interval), before the current
    /// record's puts: when a put of a window starting at `max_start` (at least the largest
    /// start the record puts) would move the store's retention past a closed window not
    /// emitted yet, emits the closed windows now, whatever the throttle says. The throttle
    /// is only an optimization (emitting earlier never changes what is emitted), but a
    /// backlog processed within one interval would otherwise let later puts expire windows
    /// before their emission, losing their final results. With no throttle (the test
    /// driver) the emission stays after the record's puts, as Kafka's.
    pub(crate) fn emit_before_expiry(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        close: i64,
        max_start: i64,
        bounds: impl Fn(Option<i64>, i64) -> Option<(i64, i64)>,
    ) -> Result<()> {
        if self.emit != EmitStrategy::OnWindowClose || ctx.config().windowed_emit_interval_ms <= 0 {
            return Ok(());
        }
        if self.last_emit.is_some_and(|last| last >= close) {
            return Ok(());
        }
        let Some((lower, _)) = bounds(self.last_emit, close) else {
            return Ok(());
        };
        let (store_time, retention) = self
            .store()?
            .with_window(|s| Ok((s.observed_stream_time(), s.options().retention_ms)))?;
        if max_start <= store_time {
            return Ok(());
        }
        // The store hides windows starting before `stream time - retention + 1`.
        let min_live = max_start.saturating_sub(retention).saturating_add(1);
        if lower >= min_live {
            return Ok(());
        }
        self.emit_closed(ctx, cur, close, &bounds)
    }

    /// Forwards the windows that closed since the last emit (see
    /// [`WindowedCore::maybe_emit_final`]), without the throttle.
    fn emit_closed(
        &mut self,
        ctx: &mut NodeContext<'_>,
        cur: &Current<K, V>,
        close: i64,
        bounds: impl FnOnce(Option<i64>, i64) -> Option<(i64, i64)>,
    ) -> Result<()> {
        if self.last_emit.is_some_and(|last| last >= close) {
            return Ok(());
        }
        let Some((lower, upper)) = bounds(self.last_emit, close) else {
            return Ok(());
        };
        let mut closed = self.store()?.with_window(|s| {
            s.fetch_all(lower, upper)?
                .collect::<freshet_state_store::Result<Vec<_>>>()
        })?;
        // Kafka's emit-final store orders by time first, then key bytes.
        closed.sort_by(|(a, _), (b, _)| (a.window.start, &a.key).cmp(&(b.window.start, &b.key)));
        for (w, v) in closed {
            let what = self.what.as_str();
            let key = decode(&self.keys, &w.key, what)?;
            let value = decode(&self.values, &v.value, what)?;
            ctx.forward(Record {
                key: Windowed::new(key, w.window),
                value: Change {
                    new: Some(value),
                    old: None,
                },
                timestamp: v.timestamp,
                headers: cur.record.headers.clone(),
            })?;
        }
        self.last_emit = Some(close);
        Ok(())
    }

    /// Commit step 1: flushes the cache and forwards what it held.
    pub(crate) fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if !self.front.is_empty() {
            self.write_back(ctx)?;
        }
        if self.front_budget > 0 {
            // The budget may have changed (threads added or removed).
            let budget = self.store()?.with_window(|s| Ok(s.cache_budget()))?;
            self.front_budget = budget;
        }
        if self.caching {
            self.store()?.with_window(|s| s.flush())?;
            self.forward_flushed(ctx)?;
        }
        Ok(())
    }

    /// Kafka's `processorMetadataForKey(storeName)` entry.
    fn metadata_key(&self) -> String {
        format!("processor-metadata:{}", self.store_name)
    }

    pub(crate) fn processor_metadata(&self) -> Vec<(String, i64)> {
        match self.last_emit {
            Some(t) if self.emit == EmitStrategy::OnWindowClose => {
                vec![(self.metadata_key(), t)]
            }
            _ => Vec::new(),
        }
    }

    pub(crate) fn restore_processor_metadata(&mut self, metadata: &BTreeMap<String, i64>) {
        if self.emit == EmitStrategy::OnWindowClose {
            if let Some(&t) = metadata.get(&self.metadata_key()) {
                self.last_emit = Some(self.last_emit.map_or(t, |l| l.max(t)));
            }
        }
    }
}

/// Reads a windowed aggregation's store by windowed key (Kafka's
/// `KStreamWindowAggregateValueGetter`): the aggregate of the key in the window starting at
/// the key's window start.
pub(crate) struct WindowValueGetter<K, VA> {
    pub(crate) store: StoreRef,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<VA>,
}

impl<K: Data, VA: Data> ValueGetter<Windowed<K>, VA> for WindowValueGetter<K, VA> {
    fn get(&self, key: &Windowed<K>) -> Result<Option<(VA, i64)>> {
        let what = format!("store {}", self.store.name);
        let k = match self.keys.serialize_nullable(&key.key) {
            Ok(Some(k)) => k,
            Ok(None) => return Ok(None),
            Err(reason) => {
                return Err(Error::Serde {
                    context: what,
                    reason,
                })
            }
        };
        let found = self
            .store
            .with_window(|s| s.fetch_one(&k, key.window.start))?;
        found
            .map(|t| Ok((decode(&self.values, &t.value, &what)?, t.timestamp)))
            .transpose()
    }
}

/// Where the record being processed came from, as Kafka logs it.
fn origin(ctx: &NodeContext<'_>) -> String {
    match ctx.record_metadata() {
        Some(m) => format!(
            "topic=[{}] partition=[{}] offset=[{}]",
            m.topic, m.partition, m.offset
        ),
        None => "Topic, partition, and offset not known.".to_string(),
    }
}

/// The windows of a timestamp, ascending by start, exactly as
/// [`TimeWindows::windows_for`] lists them, without building a map per record.
#[derive(Clone)]
struct WindowsFor {
    size: i64,
    advance: i64,
    timestamp: i64,
    /// The next start (`None`: done).
    next: Option<i64>,
}

impl WindowsFor {
    #[inline]
    fn new(windows: TimeWindows, timestamp: i64) -> WindowsFor {
        let (size, advance) = (windows.size(), windows.advance());
        let first = match timestamp
            .checked_sub(size)
            .and_then(|t| t.checked_add(advance))
        {
            // The usual case, in i64 (no overflow: the result lies in [0, lowest]).
            Some(lowest) if advance > 0 => Some(lowest.max(0) / advance * advance),
            // As `windows_for`: i128 near the i64 bounds.
            _ => {
                let lowest = i128::from(timestamp) - i128::from(size) + i128::from(advance);
                let step = i128::from(advance);
                if step > 0 {
                    i64::try_from(lowest.max(0) / step * step).ok()
                } else {
                    None
                }
            }
        };
        WindowsFor {
            size,
            advance,
            timestamp,
            next: first,
        }
    }
}

impl Iterator for WindowsFor {
    type Item = (i64, Window);

    #[inline]
    fn next(&mut self) -> Option<(i64, Window)> {
        let start = self.next.filter(|&s| s <= self.timestamp)?;
        self.next = start.checked_add(self.advance);
        Some((start, Window::new(start, start.saturating_add(self.size))))
    }
}

/// The time-windowed aggregation node.
pub(crate) struct WindowAggregateNode<K, V, VA> {
    pub(crate) core: WindowedCore<K, V, VA>,
    pub(crate) windows: TimeWindows,
}

impl<K: Data, V: Data, VA: Data> WindowAggregateNode<K, V, VA> {
    /// Kafka's emit range for time windows: starts in
    /// `(max(0, last - size), close - size]`, and only when the newly closed range covers
    /// a window the last emit did not.
    fn bounds(windows: TimeWindows, last: Option<i64>, close: i64) -> Option<(i64, i64)> {
        let size = windows.size();
        let upper = close.checked_sub(size)?;
        if upper < 0 {
            return None;
        }
        let Some(last) = last else {
            return Some((0, upper));
        };
        let lower = last.saturating_sub(size).max(0).saturating_add(1);
        if windows.windows_for(upper) == windows.windows_for(lower - 1) {
            return None;
        }
        Some((lower, upper))
    }
}

impl<K: Data, V: Data, VA: Data> Node for WindowAggregateNode<K, V, VA> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.core.init(ctx)
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let mut slot = None;
        self.core.take(ctx, record, false, None, &mut slot)?;
        let Some(cur) = &slot else {
            return Ok(());
        };
        let ts = cur.record.timestamp;
        let close = self.core.observe(ts);
        let windows = self.windows;
        let record_windows = WindowsFor::new(windows, ts);
        // Only emit-final looks ahead at the record's puts (on update: not one pass more
        // over the windows per record).
        let max_start = (self.core.emit == EmitStrategy::OnWindowClose)
            .then(|| {
                record_windows
                    .clone()
                    .filter(|(_, w)| w.end > close)
                    .map(|(start, _)| start)
                    .max()
            })
            .flatten();
        if let Some(max_start) = max_start {
            self.core
                .emit_before_expiry(ctx, cur, close, max_start, |last, close| {
                    Self::bounds(windows, last, close)
                })?;
        }
        for (start, window) in record_windows {
            if window.end > close {
                self.core.update(ctx, cur, window)?;
            } else {
                let reason = format!(
                    "window closed: window end {} <= stream time {} - grace {}",
                    window.end, self.core.observed, self.core.grace
                );
                let shown = format!("[{start},{})", window.end);
                self.core.drop_late(ctx, cur, &shown, close, reason);
            }
        }
        self.core.send_late(ctx, cur)?;
        self.core.maybe_emit_final(ctx, cur, close, |last, close| {
            Self::bounds(windows, last, close)
        })?;
        if let Some(cur) = slot {
            self.core.done(cur);
        }
        Ok(())
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.core.flush(ctx)
    }

    fn observed_stream_time(&self) -> Option<i64> {
        Some(self.core.observed)
    }

    fn restore_stream_time(&mut self, time: i64) {
        self.core.observed = self.core.observed.max(time);
    }

    fn processor_metadata(&self) -> Vec<(String, i64)> {
        self.core.processor_metadata()
    }

    fn restore_processor_metadata(&mut self, metadata: &BTreeMap<String, i64>) {
        self.core.restore_processor_metadata(metadata);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn windows_for_iterates_what_time_windows_lists() {
        let ms = Duration::from_millis;
        let tumbling = TimeWindows::of_size_with_no_grace(ms(10)).unwrap();
        let hopping = TimeWindows::of_size_with_no_grace(ms(60))
            .and_then(|w| w.advance_by(ms(10)))
            .unwrap();
        let odd = TimeWindows::of_size_with_no_grace(ms(7))
            .and_then(|w| w.advance_by(ms(3)))
            .unwrap();
        let times = [
            i64::MIN,
            -61,
            -1,
            0,
            1,
            5,
            9,
            10,
            59,
            60,
            61,
            1_700_000_000_123,
            i64::MAX - 5,
            i64::MAX,
        ];
        for windows in [tumbling, hopping, odd] {
            for t in times.into_iter().chain(0..200) {
                let expected: Vec<(i64, Window)> = windows.windows_for(t).into_iter().collect();
                let got: Vec<(i64, Window)> = WindowsFor::new(windows, t).collect();
                assert_eq!(got, expected, "timestamp {t}");
            }
        }
    }
}
