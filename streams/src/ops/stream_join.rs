//! Stream–stream windowed joins (Kafka's `KStreamJoinWindow`, `KStreamKStreamJoin` and its
//! `LeftSide`/`RightSide`, Kafka ≥ 3.1 with the spurious-result fix).
//!
//! A join is five nodes: each input goes through a *windowed* node ([`JoinWindowNode`]),
//! which forwards the record to its *join* node and then keeps it in its side's window store
//! (retaining duplicates); each join node ([`StreamJoinNode`]) probes the other side's store
//! and forwards one result per match; a pass-through merges both join nodes' output.
//!
//! # Windows
//! A left record at `t` joins right records in `[max(0, t - before), max(0, t + after)]`; a
//! right record at `t` joins left records in `[max(0, t - after), max(0, t + before)]`. A
//! result's timestamp is the larger of the two. Each window store keeps its own observed
//! stream time (the largest timestamp put into it): a record whose window start has expired
//! there (`ts <= observed - retention`) is not stored, but still probes the other store.
//!
//! # Left and outer joins
//! A record of an outer side (the left side of a left join, both sides of an outer join) that
//! finds no match is not emitted at once: it waits in a key-value store shared by both join
//! nodes, keyed `[ts: i64 BE][side: 1 = left, 0 = right][key]` (Kafka's
//! `TimestampedKeyAndJoinSide`), each key holding the list of its values as
//! `[side][value]` entries (Kafka's `LeftOrRightValue` in a `ListValueStore`). A later match
//! from the other side removes it. It is emitted, joined with nothing, once its window has
//! closed — `ts + after + grace < shared stream time` for left records, `ts + before + grace`
//! for right ones — checked only while processing a record whose timestamp equals the
//! shared stream time (the largest timestamp either join node has seen), before that record
//! is joined, and at most once per `outer_join_emit_interval_ms` of wall-clock time.
//! Entries go out in store-key order (timestamp, then right before left, then key bytes),
//! with the triggering record's headers. A non-joined record whose window has already closed
//! when it arrives (`ts + after < shared stream time`, grace not counted) is emitted at
//! once.
//!
//! Records with a null key or a null value are dropped (and counted), except that an outer
//! side forwards a null-key record with a value at once, joined with nothing.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{KeyValueStore, Timestamped, WindowStore};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::ops::aggregate::decode;
use crate::record::{Headers, Record};
use crate::serde::SerdeRef;
use crate::store::StoreRef;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// The joiner every join node calls: `(key, left value, right value)`; `None` for the missing
/// side. Returns `None` when the join kind emits nothing for that combination (an inner join
/// given a missing side), which the nodes never ask for.
pub(crate) type FullJoiner<K, V1, V2, VR> =
    Arc<dyn Fn(&K, Option<&V1>, Option<&V2>) -> Option<VR> + Send + Sync>;

/// The stream time shared by the two join nodes of one join in one task (Kafka's
/// `KStreamImplJoin.TimeTracker`).
#[derive(Debug)]
pub(crate) struct TimeTracker {
    /// The largest timestamp either join node has seen (-1 before any).
    stream_time: i64,
    /// A lower bound of the timestamps waiting in the shared store (`i64::MAX`: none known).
    min_time: i64,
    /// Wall-clock ms before which non-joined records are not emitted again.
    next_time_to_emit: i64,
    /// Minimum wall-clock ms between two emissions.
    emit_interval_ms: i64,
}

impl TimeTracker {
    fn new() -> TimeTracker {
        TimeTracker {
            stream_time: -1,
            min_time: i64::MAX,
            next_time_to_emit: 0,
            emit_interval_ms: 1000,
        }
    }
}

/// The trackers of a join, one per task id (Kafka's `TimeTrackerSupplier`): both join nodes
/// of a task find theirs by the task's id.
pub(crate) type Trackers = Arc<Mutex<HashMap<String, Arc<Mutex<TimeTracker>>>>>;

/// Which input a join node serves: its record type, the other side's, and how the pair maps
/// onto the joiner's `(left, right)`.
pub(crate) trait Side<V1, V2>: Send + 'static {
    /// The value type of this side's records.
    type This: Data;
    /// The value type of the other side's records.
    type Other: Data;
    /// Whether this is the left (`this`) input; its shared-store entries carry side byte 1.
    const LEFT: bool;
    /// `(left, right)` for the joiner.
    fn arrange<'a>(
        this: Option<&'a Self::This>,
        other: Option<&'a Self::Other>,
    ) -> (Option<&'a V1>, Option<&'a V2>);
}

/// The left input of a join (Kafka's `KStreamKStreamJoinLeftSide`).
#[derive(Debug)]
pub(crate) struct LeftSide;

/// The right input of a join (Kafka's `KStreamKStreamJoinRightSide`).
#[derive(Debug)]
pub(crate) struct RightSide;

impl<V1: Data, V2: Data> Side<V1, V2> for LeftSide {
    type This = V1;
    type Other = V2;
    const LEFT: bool = true;
    fn arrange<'a>(
        this: Option<&'a V1>,
        other: Option<&'a V2>,
    ) -> (Option<&'a V1>, Option<&'a V2>) {
        (this, other)
    }
}

impl<V1: Data, V2: Data> Side<V1, V2> for RightSide {
    type This = V2;
    type Other = V1;
    const LEFT: bool = false;
    fn arrange<'a>(
        this: Option<&'a V2>,
        other: Option<&'a V1>,
    ) -> (Option<&'a V1>, Option<&'a V2>) {
        (other, this)
    }
}

fn serde_error(context: String, reason: String) -> Error {
    Error::Serde { context, reason }
}

/// Kafka's `KStreamJoinWindow`: forwards each record, then puts it (key and value not null)
/// into its side's window store, in the window starting at its timestamp.
pub(crate) struct JoinWindowNode<K, V> {
    pub(crate) store_name: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) store: Option<StoreRef>,
}

impl<K: Data, V: Data> Node for JoinWindowNode<K, V> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store = Some(ctx.store(&self.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, V> = take_record(ctx.name(), record)?;
        let what = || format!("store {}", self.store_name);
        let key = self
            .keys
            .serialize_nullable(&r.key)
            .map_err(|e| serde_error(what(), e))?;
        // A null value is not stored: a delete among duplicates is a no-op, as in Kafka.
        let value = match key {
            Some(_) => self
                .values
                .serialize_nullable(&r.value)
                .map_err(|e| serde_error(what(), e))?,
            None => None,
        };
        let timestamp = r.timestamp;
        ctx.forward(r)?;
        if let (Some(key), Some(value)) = (key, value) {
            // Negative timestamps never reach an operator under the default extractor policy;
            // a window store cannot hold them.
            if timestamp >= 0 {
                let store = self
                    .store
                    .as_ref()
                    .ok_or_else(|| Error::InvalidArgument("join window used before init".into()))?;
                let value = Timestamped {
                    value: Bytes::from(value),
                    timestamp,
                };
                store.with_window(|s| s.put(&key, Some(value), timestamp))?;
            }
        }
        Ok(())
    }
}

/// One join node: probes the other side's window store; with a shared store (left and outer
/// joins), holds and later emits non-joined records (see the module docs).
pub(crate) struct StreamJoinNode<S: Side<V1, V2>, K, V1, V2, VR> {
    /// Whether this side emits records that found no match.
    pub(crate) outer: bool,
    pub(crate) other_store_name: String,
    pub(crate) shared_store_name: Option<String>,
    /// How far back / ahead of this side's record the other side's window reaches.
    pub(crate) join_before_ms: i64,
    pub(crate) join_after_ms: i64,
    /// The join windows' own `before` and `after` (left entries close after `after`, right
    /// entries after `before`).
    pub(crate) windows_before_ms: i64,
    pub(crate) windows_after_ms: i64,
    pub(crate) grace_ms: i64,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) left_values: SerdeRef<V1>,
    pub(crate) right_values: SerdeRef<V2>,
    /// The same two serdes, as this side's and the other side's.
    pub(crate) this_values: SerdeRef<S::This>,
    pub(crate) other_values: SerdeRef<S::Other>,
    pub(crate) joiner: FullJoiner<K, V1, V2, VR>,
    pub(crate) trackers: Trackers,
    /// The left join node starts a fresh tracker for its task (it is initialized first); the
    /// right one joins it.
    pub(crate) fresh_tracker: bool,
    pub(crate) tracker: Option<Arc<Mutex<TimeTracker>>>,
    pub(crate) restored_time: Option<i64>,
    pub(crate) other: Option<StoreRef>,
    pub(crate) shared: Option<StoreRef>,
    pub(crate) _side: PhantomData<fn() -> S>,
}

/// The shared store's key: `[ts: i64 BE][side: 1 = left, 0 = right][key]`.
fn shared_key(timestamp: i64, left: bool, key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&timestamp.to_be_bytes());
    k.push(u8::from(left));
    k.extend_from_slice(key);
    Bytes::from(k)
}

/// Splits a shared-store key into `(ts, is left, key bytes)`.
fn split_shared_key(stored: &[u8]) -> Option<(i64, bool, &[u8])> {
    if stored.len() < 9 {
        return None;
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&stored[..8]);
    Some((i64::from_be_bytes(ts), stored[8] == 1, &stored[9..]))
}

/// Appends `entry` to a list value: `[len: u32 BE][bytes]` per entry.
fn append_entry(list: Option<&[u8]>, entry: &[u8]) -> Result<Bytes> {
    let len = u32::try_from(entry.len()).map_err(|_| {
        Error::InvalidArgument(format!(
            "a join value of {} bytes is too large for the shared store",
            entry.len()
        ))
    })?;
    let mut out = Vec::with_capacity(list.map_or(0, <[u8]>::len) + 4 + entry.len());
    if let Some(list) = list {
        out.extend_from_slice(list);
    }
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(entry);
    Ok(Bytes::from(out))
}

/// The entries of a list value, in insertion order.
fn list_entries(store: &str, list: &Bytes) -> Result<Vec<Bytes>> {
    let corrupt = || {
        Error::InvalidArgument(format!(
            "store {store}: a shared join entry is corrupt ({} bytes)",
            list.len()
        ))
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < list.len() {
        let head = list.get(at..at + 4).ok_or_else(corrupt)?;
        let mut len = [0u8; 4];
        len.copy_from_slice(head);
        let len = u32::from_be_bytes(len) as usize;
        let end = at + 4 + len;
        if end > list.len() {
            return Err(corrupt());
        }
        out.push(list.slice(at + 4..end));
        at = end;
    }
    Ok(out)
}

/// Non-joined entries the shared store released: the store key and its values.
type Released = Vec<(Bytes, Vec<Bytes>)>;

impl<S, K, V1, V2, VR> StreamJoinNode<S, K, V1, V2, VR>
where
    S: Side<V1, V2>,
    K: Data,
    V1: Data,
    V2: Data,
    VR: Data,
{
    fn tracker(&self) -> Result<Arc<Mutex<TimeTracker>>> {
        self.tracker
            .clone()
            .ok_or_else(|| Error::InvalidArgument("join used before init".into()))
    }

    fn other_store(&self) -> Result<&StoreRef> {
        self.other
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("join used before init".into()))
    }

    /// Whether the entry at `timestamp` of side `left` may still be joined.
    fn window_open(&self, tracker: &TimeTracker, timestamp: i64, left: bool) -> bool {
        let look_back = if left {
            self.windows_after_ms
        } else {
            self.windows_before_ms
        };
        // Java's long arithmetic, as Kafka computes it.
        timestamp
            .wrapping_add(look_back)
            .wrapping_add(self.grace_ms)
            >= tracker.stream_time
    }

    /// Kafka's `emitNonJoinedOuterRecords`: forwards every waiting record whose window has
    /// closed and removes it.
    fn emit_non_joined(
        &self,
        ctx: &mut NodeContext<'_>,
        shared: &StoreRef,
        headers: &Headers,
    ) -> Result<()> {
        let tracker = self.tracker()?;
        let released: Released = {
            let mut t = tracker.lock();
            // Only look if there might be something to emit (`min_time` may be `i64::MAX`:
            // the sum wraps as in Java, and the store is scanned).
            if t.min_time
                .wrapping_add(self.join_after_ms)
                .wrapping_add(self.grace_ms)
                >= t.stream_time
            {
                return Ok(());
            }
            // Throttle by wall-clock time, re-synced to the current time on every emission.
            let now = ctx.wall_clock();
            if now < t.next_time_to_emit {
                return Ok(());
            }
            t.next_time_to_emit = now.saturating_add(t.emit_interval_ms);
            let mut min_time = i64::MAX;
            let mut released = Vec::new();
            let name = shared.name.to_string();
            shared.with_kv(|s| {
                let mut left_open = false;
                let mut right_open = false;
                for item in s.all()? {
                    let (k, v) = item?;
                    let Some((timestamp, left, _)) = split_shared_key(&k) else {
                        continue;
                    };
                    min_time = timestamp;
                    if left_open && right_open {
                        // Windows of both sides are open: nothing later can be closed.
                        break;
                    }
                    if self.window_open(&t, timestamp, left) {
                        if left {
                            left_open = true;
                        } else {
                            right_open = true;
                        }
                        continue;
                    }
                    released.push((k, v.value));
                }
                Ok(())
            })?;
            t.min_time = min_time;
            released
                .into_iter()
                .map(|(k, list)| Ok((k, list_entries(&name, &list)?)))
                .collect::<Result<Released>>()?
        };
        let what = || format!("store {}", shared.name);
        for (stored, values) in released {
            let Some((timestamp, _, key_bytes)) = split_shared_key(&stored) else {
                continue;
            };
            let key = decode(&self.keys, key_bytes, &what())?;
            for entry in values {
                let Some((&side, value)) = entry.split_first() else {
                    continue;
                };
                let joined = if side == 1 {
                    let v: V1 = decode(&self.left_values, value, &what())?;
                    (self.joiner)(&key, Some(&v), None)
                } else {
                    let v: V2 = decode(&self.right_values, value, &what())?;
                    (self.joiner)(&key, None, Some(&v))
                };
                if let Some(joined) = joined {
                    ctx.forward(Record {
                        key: key.clone(),
                        value: joined,
                        timestamp,
                        headers: headers.clone(),
                    })?;
                }
            }
            shared.with_kv(|s| s.put(stored, None))?;
        }
        Ok(())
    }
}

impl<S, K, V1, V2, VR> Node for StreamJoinNode<S, K, V1, V2, VR>
where
    S: Side<V1, V2>,
    K: Data,
    V1: Data,
    V2: Data,
    VR: Data,
{
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.other = Some(ctx.store(&self.other_store_name)?);
        if let Some(shared) = &self.shared_store_name {
            self.shared = Some(ctx.store(shared)?);
        }
        let tracker = {
            let mut all = self.trackers.lock();
            let task = ctx.task_id().to_string();
            if self.fresh_tracker {
                let t = Arc::new(Mutex::new(TimeTracker::new()));
                all.insert(task, t.clone());
                t
            } else {
                all.entry(task)
                    .or_insert_with(|| Arc::new(Mutex::new(TimeTracker::new())))
                    .clone()
            }
        };
        {
            let mut t = tracker.lock();
            t.emit_interval_ms = ctx.config().outer_join_emit_interval_ms;
            if let Some(time) = self.restored_time.take() {
                restore(&mut t, time);
            }
        }
        self.tracker = Some(tracker);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, S::This> = take_record(ctx.name(), record)?;
        let timestamp = r.timestamp;
        let tracker = self.tracker()?;
        let stream_time = {
            let mut t = tracker.lock();
            t.stream_time = t.stream_time.max(timestamp);
            t.stream_time
        };
        let what = || format!("join {}", ctx.name());
        let key = self
            .keys
            .serialize_nullable(&r.key)
            .map_err(|e| serde_error(what(), e))?;
        let value = self
            .this_values
            .serialize_nullable(&r.value)
            .map_err(|e| serde_error(what(), e))?;
        let (key_bytes, value_bytes) = match (key, value) {
            (Some(k), Some(v)) => (k, v),
            (None, Some(_)) if self.outer => {
                // An outer side forwards a null-key record at once, joined with nothing.
                let (left, right) = S::arrange(Some(&r.value), None);
                if let Some(joined) = (self.joiner)(&r.key, left, right) {
                    ctx.forward(r.with_value(joined))?;
                }
                return Ok(());
            }
            _ => {
                ctx.record_dropped("skipping record due to null key or value");
                return Ok(());
            }
        };

        // Emit the non-joined records whose window has closed, before joining this one.
        if timestamp == stream_time {
            if let Some(shared) = self.shared.clone() {
                self.emit_non_joined(ctx, &shared, &r.headers)?;
            }
        }

        let time_from = timestamp.saturating_sub(self.join_before_ms).max(0);
        let time_to = timestamp.saturating_add(self.join_after_ms).max(0);
        let matches = self.other_store()?.with_window(|s| {
            s.fetch(&key_bytes, time_from, time_to)?
                .collect::<freshet_state_store::Result<Vec<_>>>()
        })?;
        let need_outer = self.outer && matches.is_empty();
        for (other_timestamp, other) in matches {
            if let Some(shared) = &self.shared {
                // The matched record no longer waits as non-joined (Kafka's
                // `putIfAbsent(otherKey, null)` on the list store: delete if present).
                let other_key = shared_key(other_timestamp, !S::LEFT, &key_bytes);
                shared.with_kv(|s| {
                    if s.get(&other_key)?.is_some() {
                        s.put(other_key, None)?;
                    }
                    Ok(())
                })?;
            }
            let other_value: S::Other = decode(
                &self.other_values,
                &other.value,
                &format!("store {}", self.other_store_name),
            )?;
            let (left, right) = S::arrange(Some(&r.value), Some(&other_value));
            if let Some(joined) = (self.joiner)(&r.key, left, right) {
                ctx.forward(Record {
                    key: r.key.clone(),
                    value: joined,
                    timestamp: timestamp.max(other_timestamp),
                    headers: r.headers.clone(),
                })?;
            }
        }

        if need_outer {
            match &self.shared {
                Some(shared) if time_to >= stream_time => {
                    {
                        let mut t = tracker.lock();
                        t.min_time = t.min_time.min(timestamp);
                    }
                    let stored = shared_key(timestamp, S::LEFT, &key_bytes);
                    let mut entry = Vec::with_capacity(1 + value_bytes.len());
                    entry.push(u8::from(S::LEFT));
                    entry.extend_from_slice(&value_bytes);
                    shared.with_kv(|s| {
                        let old = s.get(&stored)?;
                        let list = append_entry(old.as_ref().map(|o| o.value.as_ref()), &entry)
                            .map_err(|e| freshet_state_store::Error::InvalidArgument {
                                store: shared.name.to_string(),
                                reason: e.to_string(),
                            })?;
                        s.put(
                            stored,
                            Some(Timestamped {
                                value: list,
                                timestamp,
                            }),
                        )
                    })?;
                }
                _ => {
                    // No shared store, or the record's window has already closed: emit now.
                    let (left, right) = S::arrange(Some(&r.value), None);
                    if let Some(joined) = (self.joiner)(&r.key, left, right) {
                        ctx.forward(r.with_value(joined))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn close(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.trackers.lock().remove(ctx.task_id());
        Ok(())
    }

    fn observed_stream_time(&self) -> Option<i64> {
        self.tracker.as_ref().map(|t| t.lock().stream_time)
    }

    fn restore_stream_time(&mut self, time: i64) {
        match &self.tracker {
            Some(t) => restore(&mut t.lock(), time),
            None => self.restored_time = Some(time),
        }
    }
}

/// Restores the shared stream time at a restart. The shared store may hold records from
/// before the restart whose minimum timestamp is unknown: the next check scans it (Kafka
/// starts from an empty tracker and may not look until a new record waits).
fn restore(t: &mut TimeTracker, time: i64) {
    t.stream_time = t.stream_time.max(time);
    t.min_time = i64::MIN;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_keys_sort_by_time_then_right_before_left() {
        let a = shared_key(5, true, b"a");
        let b = shared_key(5, false, b"z");
        let c = shared_key(4, true, b"z");
        let mut all = [a.clone(), b.clone(), c.clone()];
        all.sort();
        assert_eq!(all, [c, b, a.clone()]);
        assert_eq!(split_shared_key(&a), Some((5, true, b"a".as_slice())));
    }

    #[test]
    fn list_values_keep_insertion_order() {
        let one = append_entry(None, b"\x01x").unwrap();
        let two = append_entry(Some(&one), b"\x00yz").unwrap();
        let entries = list_entries("s", &two).unwrap();
        assert_eq!(
            entries,
            vec![Bytes::from_static(b"\x01x"), Bytes::from_static(b"\x00yz")]
        );
        assert!(list_entries("s", &Bytes::from_static(b"\x00\x00\x00\x09ab")).is_err());
    }
}
