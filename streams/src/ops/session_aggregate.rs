//! Session-windowed count / reduce / aggregate (Kafka's `KStreamSessionWindowAggregate`).
//!
//! A record at `t` merges every session of its key with `end >= t - gap` and
//! `start <= t + gap` (the gap is inclusive). When that yields a session other than `[t, t]`,
//! the merged sessions are removed and a tombstone is forwarded for each (timestamp: the old
//! session's end); then the new aggregate is put under the merged session and forwarded
//! (timestamp: the session end). The operator's stream time is the largest timestamp it
//! received; a record whose merged session ends before `stream time - grace - gap` is
//! dropped as late (counted, logged, and written to the late-records topic when one is set).
//!
//! Emit-on-update forwards through the store's cache (every update when caching is off).
//! Emit-final forwards nothing per update: after each record (throttled by the wall clock)
//! it emits every session that ended in `[last close time, close time - 1]`, ordered by end,
//! start and key bytes as Kafka's time-ordered session store, each with the session end as
//! its timestamp and the headers of the record that closed it. With a throttle (a non-zero
//! interval: the runtime) it also emits, whatever the throttle says, before a put that would
//! move the store's stream time past a closed session not emitted yet.

use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{SessionStore, Timestamped, Window, Windowed};
use parking_lot::Mutex;

use crate::dsl::ktable::{Change, SendOldValues};
use crate::dsl::table::ValueGetter;
use crate::error::{Error, Result};
use crate::ops::aggregate::{decode, encode};
use crate::partitioner::partition_for_key;
use crate::record::{Headers, Record, SinkRecord};
use crate::serde::SerdeRef;
use crate::store::StoreRef;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// Kafka's `ConsumerRecord.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// The header a late record written to the late-records topic carries: why it was dropped.
pub(crate) const LATE_REASON_HEADER: &str = "__freshet.late.reason";

/// A fresh aggregate: `None` for `reduce`, whose first value is its aggregate.
pub(crate) type SessionInit<VA> = Arc<dyn Fn() -> Option<VA> + Send + Sync>;
/// Folds a value into an aggregate.
pub(crate) type SessionAdd<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>;
/// Merges a found session's aggregate into the running one (Kafka's `Merger`).
pub(crate) type SessionMerge<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> Option<VA> + Send + Sync>;

/// The three functions of a session aggregation.
pub(crate) struct SessionFns<K, V, VA> {
    pub(crate) init: SessionInit<VA>,
    pub(crate) add: SessionAdd<K, V, VA>,
    pub(crate) merge: SessionMerge<K, VA>,
}

impl<K, V, VA> Clone for SessionFns<K, V, VA> {
    fn clone(&self) -> Self {
        SessionFns {
            init: self.init.clone(),
            add: self.add.clone(),
            merge: self.merge.clone(),
        }
    }
}

/// Where late records go besides being dropped, with the grouped stream's serdes.
pub(crate) struct LateRecords<K, V> {
    pub(crate) topic: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
}

impl<K, V> Clone for LateRecords<K, V> {
    fn clone(&self) -> Self {
        LateRecords {
            topic: self.topic.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

impl<K, V> LateRecords<K, V> {
    /// Writes `record` to the late-records topic with `reason` in a header: original key and
    /// value bytes, original timestamp and headers; the partition by murmur2 of the key
    /// bytes when the topic's partition count is known.
    pub(crate) fn send(
        &self,
        ctx: &mut NodeContext<'_>,
        record: Record<K, V>,
        reason: String,
    ) -> Result<()> {
        let serde_err = |what: &str, reason: String| Error::Serde {
            context: format!("{what} of late record to {}", self.topic),
            reason,
        };
        let key = self
            .keys
            .serialize_nullable(&record.key)
            .map_err(|e| serde_err("key", e))?;
        let value = self
            .values
            .serialize_nullable(&record.value)
            .map_err(|e| serde_err("value", e))?;
        let partition = match ctx.partitions_of(&self.topic) {
            Some(n) => key.as_deref().map(|k| partition_for_key(k, n)),
            None => None,
        };
        let mut headers = record.headers;
        headers.push((LATE_REASON_HEADER.to_string(), Bytes::from(reason)));
        ctx.send(SinkRecord {
            topic: self.topic.clone(),
            partition,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            timestamp: record.timestamp,
            headers,
        });
        Ok(())
    }
}

/// `topic=[..] partition=[..] offset=[..]` of the record being processed, as Kafka logs it.
pub(crate) fn record_position(ctx: &NodeContext<'_>) -> String {
    match ctx.record_metadata() {
        Some(m) => format!(
            "topic=[{}] partition=[{}] offset=[{}]",
            m.topic, m.partition, m.offset
        ),
        None => "Topic, partition, and offset not known.".to_string(),
    }
}

/// `(windowed key bytes, new, old)` as a caching session store hands its updates downstream.
type SessionFlushed = (Windowed<Bytes>, Option<Timestamped>, Option<Timestamped>);

/// Updates the session store's cache released, waiting to be forwarded (the listener runs
/// while the store is locked and cannot forward itself).
#[derive(Clone, Default)]
pub(crate) struct SessionFlushQueue(Arc<Mutex<Vec<SessionFlushed>>>);

impl SessionFlushQueue {
    fn listen(&self, store: &StoreRef, send_old: bool) -> Result<()> {
        let queue = self.0.clone();
        store.with_session(|s| {
            s.set_flush_listener(
                move |w: &Windowed<Bytes>, new: Option<&Timestamped>, old: Option<&Timestamped>| {
                    queue.lock().push((w.clone(), new.cloned(), old.cloned()));
                },
                send_old,
            );
            Ok(())
        })
    }

    fn drain(&self) -> Vec<SessionFlushed> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// Reads a session table by windowed key (Kafka's `KTableSessionWindowValueGetter`): the
/// aggregate of exactly that session, with the session end as its timestamp.
pub(crate) struct SessionValueGetter<K, VA> {
    pub(crate) store: StoreRef,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<VA>,
}

impl<K: Data, VA: Data> ValueGetter<Windowed<K>, VA> for SessionValueGetter<K, VA> {
    fn get(&self, key: &Windowed<K>) -> Result<Option<(VA, i64)>> {
        let what = format!("store {}", self.store.name);
        let bytes = match self.keys.serialize_nullable(&key.key) {
            Ok(Some(k)) => k,
            Ok(None) => return Ok(None),
            Err(reason) => {
                return Err(Error::Serde {
                    context: what,
                    reason,
                })
            }
        };
        let (start, end) = (key.window.start, key.window.end);
        let found = self
            .store
            .with_session(|s| s.fetch_session(&bytes, start, end))?;
        found
            .map(|v| Ok((decode(&self.values, &v.value, &what)?, end)))
            .transpose()
    }
}

/// Settings of a session aggregation node (one per topology node; each task makes its own
/// [`SessionAggregateNode`] from them).
pub(crate) struct SessionAggregateSpec<K, V, VA> {
    pub(crate) store_name: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<VA>,
    pub(crate) fns: SessionFns<K, V, VA>,
    pub(crate) gap_ms: i64,
    pub(crate) grace_ms: i64,
    /// Kafka's store retention (the store itself keeps more with emit-final, see
    /// `dsl::session`).
    pub(crate) retention_ms: i64,
    /// The segment interval Kafka's store would use: emit-final sees a closed session until
    /// Kafka would have dropped its segment.
    pub(crate) segment_interval_ms: i64,
    pub(crate) emit_final: bool,
    pub(crate) late: Option<LateRecords<K, V>>,
    pub(crate) send_old: SendOldValues,
}

impl<K, V, VA> Clone for SessionAggregateSpec<K, V, VA> {
    fn clone(&self) -> Self {
        SessionAggregateSpec {
            store_name: self.store_name.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            fns: self.fns.clone(),
            gap_ms: self.gap_ms,
            grace_ms: self.grace_ms,
            retention_ms: self.retention_ms,
            segment_interval_ms: self.segment_interval_ms,
            emit_final: self.emit_final,
            late: self.late.clone(),
            send_old: self.send_old.clone(),
        }
    }
}

/// The running operator of one task.
pub(crate) struct SessionAggregateNode<K, V, VA> {
    spec: SessionAggregateSpec<K, V, VA>,
    store: Option<StoreRef>,
    queue: SessionFlushQueue,
    /// Whether the store caches (then updates go downstream through its listener).
    caching: bool,
    send_old: bool,
    observed: i64,
    /// Emit-final: the close time of the last emission.
    last_emit_close: i64,
    /// Emit-final: the wall-clock time before which no emission is tried.
    next_emit_at: i64,
}

impl<K, V, VA> SessionAggregateNode<K, V, VA> {
    pub(crate) fn new(spec: SessionAggregateSpec<K, V, VA>) -> Self {
        SessionAggregateNode {
            spec,
            store: None,
            queue: SessionFlushQueue::default(),
            caching: false,
            send_old: false,
            observed: NO_TIMESTAMP,
            last_emit_close: NO_TIMESTAMP,
            next_emit_at: 0,
        }
    }
}

impl<K: Data, V: Data, VA: Data> SessionAggregateNode<K, V, VA> {
    fn store(&self) -> Result<StoreRef> {
        self.store
            .clone()
            .ok_or_else(|| Error::InvalidArgument("session aggregate used before init".into()))
    }

    fn what(&self) -> String {
        format!("store {}", self.spec.store_name)
    }

    /// Stream time minus grace and gap: sessions ending before it are closed.
    fn close_time(&self) -> i64 {
        self.observed
            .saturating_sub(self.spec.grace_ms)
            .saturating_sub(self.spec.gap_ms)
    }

    /// Forwards an update directly (emit-on-update without a cache), as Kafka's
    /// `TimestampedTupleForwarder`: the old value only when old values are sent.
    fn forward_update(
        &self,
        ctx: &mut NodeContext<'_>,
        key: &K,
        window: Window,
        new: Option<VA>,
        old: Option<VA>,
    ) -> Result<()> {
        if self.spec.emit_final || self.caching {
            return Ok(());
        }
        let change = Change {
            new,
            old: if self.send_old { old } else { None },
        };
        ctx.forward(Record::new(
            Windowed::new(key.clone(), window),
            change,
            window.end,
        ))
    }

    /// Forwards what the cache released (Kafka's `SessionCacheFlushListener`: timestamp =
    /// the session end).
    fn forward_flushed(&self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if !self.caching {
            return Ok(());
        }
        let what = self.what();
        for (w, new, old) in self.queue.drain() {
            let key = decode(&self.spec.keys, &w.key, &what)?;
            let change = Change {
                new: new
                    .map(|v| decode(&self.spec.values, &v.value, &what))
                    .transpose()?,
                old: if self.send_old {
                    old.map(|v| decode(&self.spec.values, &v.value, &what))
                        .transpose()?
                } else {
                    None
                },
            };
            ctx.forward(Record::new(
                Windowed::new(key, w.window),
                change,
                w.window.end,
            ))?;
        }
        Ok(())
    }

    fn drop_late(
        &self,
        ctx: &mut NodeContext<'_>,
        record: Record<K, V>,
        window: Window,
        close: i64,
    ) -> Result<()> {
        let message = format!(
            "Skipping record for expired window. {} timestamp=[{}] window=[{},{}] expiration=[{}] streamTime=[{}]",
            record_position(ctx),
            record.timestamp,
            window.start,
            window.end,
            close,
            self.observed
        );
        ctx.record_dropped(&message);
        ctx.record_late();
        if let Some(late) = &self.spec.late {
            let reason = format!(
                "session closed: session end {} < stream time {} - grace {} - gap {}",
                window.end, self.observed, self.spec.grace_ms, self.spec.gap_ms
            );
            late.send(ctx, record, reason)?;
        }
        Ok(())
    }

    /// Kafka's `maybeForwardFinalResult`: throttled by the wall clock, and only when the
    /// close time moved on.
    fn maybe_emit_final(
        &mut self,
        ctx: &mut NodeContext<'_>,
        close: i64,
        headers: &Headers,
    ) -> Result<()> {
        if !self.spec.emit_final {
            return Ok(());
        }
        let now = ctx.wall_clock();
        if now < self.next_emit_at {
            return Ok(());
        }
        self.next_emit_at = now.saturating_add(ctx.config().windowed_emit_interval_ms);
        if self.last_emit_close != NO_TIMESTAMP && self.last_emit_close >= close {
            return Ok(());
        }
        self.emit_closed(ctx, close, headers)
    }

    /// Emit-final with a wall-clock throttle (a non-zero emit interval), before putting a
    /// session ending at `end` into a store whose stream time is `store_time`: when the put
    /// would move the store's stream time so far that a closed session not emitted yet
    /// (ending at or after the last close time) would no longer be read, emits the closed
    /// sessions now, whatever the throttle says. The throttle is only an optimization
    /// (emitting earlier never changes what is emitted), but a backlog processed within one
    /// interval would otherwise lose the final results of sessions whose segment later puts
    /// expired. With no throttle (the test driver) the emission stays after the put, as
    /// Kafka's.
    fn emit_before_expiry(
        &mut self,
        ctx: &mut NodeContext<'_>,
        close: i64,
        store_time: i64,
        end: i64,
        headers: &Headers,
    ) -> Result<()> {
        let throttled = ctx.config().windowed_emit_interval_ms > 0;
        if !self.spec.emit_final || !throttled || end <= store_time {
            return Ok(());
        }
        if self.last_emit_close != NO_TIMESTAMP && self.last_emit_close >= close {
            return Ok(());
        }
        // What `emit_closed` reads after the put: sessions whose (Kafka) segment is live.
        let interval = self.spec.segment_interval_ms.max(1);
        let min_segment = end.saturating_sub(self.spec.retention_ms) / interval;
        if self.last_emit_close.max(0) / interval >= min_segment {
            return Ok(());
        }
        self.emit_closed(ctx, close, headers)
    }

    /// Emits every session ending in `[max(0, last close), close - 1]` and remembers
    /// `close`; nothing (and nothing remembered) while no session can have closed.
    fn emit_closed(
        &mut self,
        ctx: &mut NodeContext<'_>,
        close: i64,
        headers: &Headers,
    ) -> Result<()> {
        let upper = close.saturating_sub(1);
        if upper < 0 {
            return Ok(());
        }
        let lower = self.last_emit_close.max(0);
        if upper < lower {
            return Ok(());
        }
        let store = self.store()?;
        let (mut found, store_time) = store.with_session(|s| {
            let st = SessionStore::observed_stream_time(s);
            let found = s
                .find_sessions_ending(lower, upper)?
                .collect::<freshet_state_store::Result<Vec<_>>>()?;
            Ok((found, st))
        })?;
        // Kafka's time-ordered store reads closed sessions until their segment is dropped
        // (segment ids truncate toward zero, as Java's division).
        let interval = self.spec.segment_interval_ms.max(1);
        let min_segment = store_time.saturating_sub(self.spec.retention_ms) / interval;
        found.retain(|(w, _)| w.window.end / interval >= min_segment);
        found.sort_by(|(a, _), (b, _)| {
            (a.window.end, a.window.start, &a.key).cmp(&(b.window.end, b.window.start, &b.key))
        });
        let what = self.what();
        for (w, v) in found {
            let key = decode(&self.spec.keys, &w.key, &what)?;
            let value = decode(&self.spec.values, &v.value, &what)?;
            let change = Change {
                new: Some(value),
                old: None,
            };
            ctx.forward(
                Record::new(Windowed::new(key, w.window), change, w.window.end)
                    .with_headers(headers.clone()),
            )?;
        }
        self.last_emit_close = close;
        Ok(())
    }
}

impl<K: Data, V: Data, VA: Data> Node for SessionAggregateNode<K, V, VA> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let store = ctx.store(&self.spec.store_name)?;
        self.send_old = self.spec.send_old.get();
        self.caching = !self.spec.emit_final && store.with_session(|s| Ok(s.is_caching()))?;
        if self.caching {
            self.queue.listen(&store, self.send_old)?;
        }
        self.store = Some(store);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, V> = take_record(ctx.name(), record)?;
        let what = self.what();
        let key = match self.spec.keys.serialize_nullable(&r.key) {
            Ok(Some(k)) => Bytes::from(k),
            Ok(None) => {
                let message = format!("Skipping record due to null key. {}", record_position(ctx));
                ctx.record_dropped(&message);
                return Ok(());
            }
            Err(reason) => {
                return Err(Error::Serde {
                    context: what,
                    reason,
                })
            }
        };
        let ts = r.timestamp;
        self.observed = self.observed.max(ts);
        let close = self.close_time();
        let (gap, retention) = (self.spec.gap_ms, self.spec.retention_ms);
        let emit_final = self.spec.emit_final;
        let store = self.store()?;
        let (found, store_time) = store.with_session(|s| {
            let st = SessionStore::observed_stream_time(s);
            let found = s
                .find_sessions(&key, ts.saturating_sub(gap), ts.saturating_add(gap))?
                .collect::<freshet_state_store::Result<Vec<_>>>()?;
            // The emit-final store keeps sessions longer than Kafka's (see `dsl::session`):
            // hide what Kafka's would.
            let found = found
                .into_iter()
                .filter(|(w, _)| !emit_final || w.window.end > st.saturating_sub(retention))
                .collect::<Vec<_>>();
            Ok((found, st))
        })?;
        let new_window = Window::new(ts, ts);
        let mut merged_window = new_window;
        let mut agg = (self.spec.fns.init)();
        let mut merged = Vec::with_capacity(found.len());
        for (w, v) in found {
            let value = decode(&self.spec.values, &v.value, &what)?;
            agg = (self.spec.fns.merge)(&r.key, agg, value.clone());
            merged_window = Window::new(
                merged_window.start.min(w.window.start),
                merged_window.end.max(w.window.end),
            );
            merged.push((w.window, value));
        }
        let headers = if emit_final {
            r.headers.clone()
        } else {
            Headers::new()
        };
        if merged_window.end < close {
            self.drop_late(ctx, r, merged_window, close)?;
        } else {
            self.emit_before_expiry(ctx, close, store_time, merged_window.end, &headers)?;
            if merged_window != new_window {
                for (window, value) in merged {
                    store.with_session(|s| s.remove(&key, window))?;
                    self.forward_flushed(ctx)?;
                    self.forward_update(ctx, &r.key, window, None, Some(value))?;
                }
            }
            let agg = (self.spec.fns.add)(&r.key, &r.value, agg);
            let bytes = encode(&self.spec.values, &agg, &what)?;
            let value = Timestamped {
                value: bytes,
                timestamp: merged_window.end,
            };
            store.with_session(|s| s.put(&key, merged_window, Some(value)))?;
            self.forward_flushed(ctx)?;
            if self.caching && merged_window.end <= store_time.saturating_sub(retention) {
                // A session ending exactly at the close time, when the store's time is
                // already the stream time: the store takes it as expired and its cache
                // drops it, where Kafka's cache keeps and forwards it. Forward it here
                // (it merged nothing: anything it merged would have ended later).
                let change = Change {
                    new: Some(agg),
                    old: None,
                };
                let windowed = Windowed::new(r.key.clone(), merged_window);
                ctx.forward(Record::new(windowed, change, merged_window.end))?;
            } else {
                self.forward_update(ctx, &r.key, merged_window, Some(agg), None)?;
            }
        }
        self.maybe_emit_final(ctx, close, &headers)
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if self.caching {
            self.store()?.with_session(|s| s.flush())?;
            self.forward_flushed(ctx)?;
        }
        // Emit-final: what the wall-clock throttle held back goes out with the commit, so
        // that the committed stream time alone tells a restarted task what was emitted.
        let close = self.close_time();
        if self.spec.emit_final
            && self.observed != NO_TIMESTAMP
            && (self.last_emit_close == NO_TIMESTAMP || self.last_emit_close < close)
        {
            self.emit_closed(ctx, close, &Headers::new())?;
        }
        Ok(())
    }

    fn observed_stream_time(&self) -> Option<i64> {
        (self.observed != NO_TIMESTAMP).then_some(self.observed)
    }

    fn restore_stream_time(&mut self, time: i64) {
        self.observed = self.observed.max(time);
        if self.spec.emit_final {
            // Commits flush, and a flush emits everything closed: what was closed at the
            // committed stream time has been emitted.
            let close = self.close_time();
            if close >= 1 && close > self.last_emit_close {
                self.last_emit_close = close;
            }
        }
    }
}
