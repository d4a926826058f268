//! Segments, stream time and retention, shared by the window and session stores (Kafka's
//! `AbstractRocksDBSegmentedBytesStore`, `KeyValueSegments` and `KeySchema`).
//!
//! A segment is one backend tree, `<store>.<segment id, 20 digits>`, holding the entries whose
//! segment time (window start, or session end) falls in
//! `[id * interval, (id + 1) * interval)`. The store's stream time is the largest segment
//! time put; an entry is expired once its time is `<= stream_time - retention`, and whole
//! segments are deleted once they hold only expired entries. The committed stream time is
//! kept in the store's meta entries, where the read-only views find it too.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::changelog::{ChangelogPartition, ChangelogReader, ChangelogSink};
use crate::error::{show_key, Error, Result};
use crate::layers::{KvIter, Layers, RestoreStats, Router, Timestamped};

/// How a binary key carries its time (Kafka's `KeySchema`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema {
    /// `[key][start: i64][seq: u32]`; segmented by window start.
    Window,
    /// `[key][end: i64][start: i64]`; segmented by session end.
    Session,
}

impl Schema {
    pub(crate) fn suffix_len(self) -> usize {
        match self {
            Schema::Window => 12,
            Schema::Session => 16,
        }
    }

    /// The time that places a binary key in a segment; `None` if the key is too short.
    pub(crate) fn segment_time(self, stored: &[u8]) -> Option<i64> {
        let at = stored.len().checked_sub(self.suffix_len())?;
        Some(read_i64(&stored[at..at + 8]))
    }
}

pub(crate) fn read_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Kafka's `observedStreamTime` before any record.
pub(crate) const NO_TIMESTAMP: i64 = -1;
/// Meta entries (next to the store's applied offset).
pub(crate) const META_STREAM_TIME: &str = "stream-time";
const META_SEQ: &str = "seq";

pub(crate) fn tree_name(store: &str, id: i64) -> String {
    format!("{store}.{id:020}")
}

/// The segment holding segment time `time`.
pub(crate) fn segment_id(time: i64, interval: i64) -> i64 {
    time.div_euclid(interval)
}

/// The oldest live segment time at stream time `observed`: Kafka's
/// `observedStreamTime - retentionPeriod + 1` (never below 0).
pub(crate) fn min_live(observed: i64, retention: i64) -> i64 {
    observed.saturating_sub(retention).saturating_add(1).max(0)
}

/// Decodes the stream time a store keeps in its meta entries (`NO_TIMESTAMP` when absent).
pub(crate) fn decode_stream_time(store: &str, stored: Option<Bytes>) -> Result<i64> {
    match stored {
        Some(b) if b.len() == 8 => Ok(read_i64(&b)),
        None => Ok(NO_TIMESTAMP),
        Some(_) => Err(corrupt(store, "stream time is not 8 bytes")),
    }
}

/// The segment id of a segment tree of `store` (`None` for any other tree).
pub(crate) fn parse_segment(store: &str, tree: &str) -> Option<i64> {
    let rest = tree.strip_prefix(store)?.strip_prefix('.')?;
    if rest.len() != 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// An inclusive upper bound for every binary key whose user key is `<= key_to` and whose
/// suffix is `<= max_suffix` (what Kafka's `OrderedBytes.upperRange` approximates): a user key
/// that is a proper prefix of `key_to`, followed by a large suffix, can sort after `key_to`
/// itself, so the bound is the largest of `key_to[..i] ++ max_suffix` over every prefix.
pub(crate) fn upper_bound(key_to: &[u8], max_suffix: &[u8]) -> Vec<u8> {
    let mut best = Vec::new();
    for i in 0..=key_to.len() {
        let mut candidate = Vec::with_capacity(i + max_suffix.len());
        candidate.extend_from_slice(&key_to[..i]);
        candidate.extend_from_slice(max_suffix);
        if candidate > best {
            best = candidate;
        }
    }
    best
}

/// The layers of a segmented store plus its segments, stream time and retention.
#[derive(Debug)]
pub(crate) struct Segmented {
    pub(crate) layers: Layers,
    schema: Schema,
    retention: i64,
    interval: i64,
    /// Ids of the segment trees that exist; each is open in `layers`.
    segments: BTreeSet<i64>,
    /// Stream time including uncommitted writes.
    observed: i64,
    /// Stream time when the changelog was last sent.
    observed_sent: i64,
    /// Stream time of the committed writes.
    observed_committed: i64,
    /// Last duplicate sequence number handed out (window stores that retain duplicates).
    pub(crate) seq: u32,
    /// Stream time and sequence number as last written to the meta tree.
    persisted: (i64, u32),
    dropped_expired: u64,
    /// Tree names of the segments written or read since they were loaded: most writes and
    /// reads land in one of a few segments, named once rather than per record.
    names: BTreeMap<i64, String>,
    poisoned: bool,
}

impl Segmented {
    pub(crate) fn open(
        name: &str,
        backend: Arc<dyn Backend>,
        changelog: Option<ChangelogPartition>,
        schema: Schema,
        retention: i64,
        interval: i64,
    ) -> Result<Segmented> {
        let invalid = |reason: String| Error::InvalidArgument {
            store: name.to_string(),
            reason,
        };
        if retention < 0 {
            return Err(invalid(format!("retention {retention} ms is negative")));
        }
        if interval < 1 {
            return Err(invalid(format!(
                "segment interval {interval} ms must be at least 1"
            )));
        }
        let layers = Layers::open(name, backend, changelog)?;
        let observed = decode_stream_time(name, layers.meta_get(META_STREAM_TIME)?)?;
        let seq = match layers.meta_get(META_SEQ)? {
            Some(b) if b.len() == 4 => read_u32(&b),
            None => 0,
            Some(_) => return Err(corrupt(name, "sequence number is not 4 bytes")),
        };
        let mut s = Segmented {
            layers,
            schema,
            retention,
            interval,
            segments: BTreeSet::new(),
            observed,
            observed_sent: observed,
            observed_committed: observed,
            seq,
            persisted: (observed, seq),
            dropped_expired: 0,
            names: BTreeMap::new(),
            poisoned: false,
        };
        s.load_segments()?;
        // As Kafka's `openExisting`: segments that expired before the restart go now.
        s.drop_expired(observed)?;
        Ok(s)
    }

    pub(crate) fn store(&self) -> &str {
        &self.layers.store
    }

    pub(crate) fn retention(&self) -> i64 {
        self.retention
    }

    pub(crate) fn interval(&self) -> i64 {
        self.interval
    }

    pub(crate) fn observed(&self) -> i64 {
        self.observed
    }

    pub(crate) fn dropped_expired(&self) -> u64 {
        self.dropped_expired
    }

    /// Ids of the segments that exist, ascending.
    pub(crate) fn segment_ids(&self) -> Vec<i64> {
        self.segments.iter().copied().collect()
    }

    fn load_segments(&mut self) -> Result<()> {
        let store = self.store().to_string();
        self.segments.clear();
        for name in self.layers.tree_names(&format!("{store}."))? {
            if let Some(id) = parse_segment(&store, &name) {
                self.layers.ensure_tree(&name)?;
                self.segments.insert(id);
            }
        }
        Ok(())
    }

    pub(crate) fn segment_id(&self, time: i64) -> i64 {
        segment_id(time, self.interval)
    }

    /// The oldest live time: Kafka's `observedStreamTime - retentionPeriod + 1`.
    pub(crate) fn min_live(&self) -> i64 {
        min_live(self.observed, self.retention)
    }

    pub(crate) fn invalid(&self, reason: String) -> Error {
        Error::InvalidArgument {
            store: self.store().to_string(),
            reason,
        }
    }

    /// A write at `time` observes stream time; `false` when it is expired and dropped.
    pub(crate) fn admit(&mut self, time: i64) -> Result<bool> {
        if self.poisoned {
            return Err(Error::Poisoned {
                store: self.store().to_string(),
            });
        }
        self.observed = self.observed.max(time);
        if time < self.min_live() {
            self.dropped_expired += 1;
            tracing::debug!(store = %self.store(), time, stream_time = self.observed, retention = self.retention, "skipping a write to an expired window");
            return Ok(false);
        }
        Ok(true)
    }

    /// Buffers a write of a binary key whose segment time is `time`.
    pub(crate) fn write(
        &mut self,
        time: i64,
        key: Bytes,
        value: Option<Timestamped>,
    ) -> Result<()> {
        let id = self.segment_id(time);
        if !self.names.contains_key(&id) {
            self.names.insert(id, tree_name(self.store(), id));
        }
        let Some(tree) = self.names.get(&id) else {
            return Err(corrupt(self.store(), "a segment's tree name vanished"));
        };
        self.layers.put(tree, key, value)?;
        self.segments.insert(id);
        Ok(())
    }

    /// The value of one binary key whose segment time is `time` (a point lookup, not a
    /// scan); nothing when that time is expired or its segment does not exist.
    pub(crate) fn get(&self, time: i64, key: &[u8]) -> Result<Option<Timestamped>> {
        let id = self.segment_id(time);
        if time < self.min_live() || !self.segments.contains(&id) {
            return Ok(None);
        }
        if let Some(tree) = self.names.get(&id) {
            return self.layers.get_open(tree, key);
        }
        self.layers.get_open(&tree_name(self.store(), id), key)
    }

    /// The entries `query` matches: segment by segment, each in key order (all reversed
    /// when `reverse`).
    pub(crate) fn scan(&self, query: Query, reverse: bool) -> SegmentScan<'_> {
        let ids: Vec<i64> = if query.time_from > query.time_to {
            Vec::new()
        } else {
            let range = self
                .segments
                .range(self.segment_id(query.time_from)..=self.segment_id(query.time_to));
            if reverse {
                range.rev().copied().collect()
            } else {
                range.copied().collect()
            }
        };
        SegmentScan {
            layers: &self.layers,
            ids: ids.into_iter(),
            current: None,
            lower: query.lower,
            upper: query.upper,
            reverse,
            keep: query.keep,
        }
    }

    /// Deletes the segments expired at stream time `observed` (Kafka's
    /// `cleanupExpiredSegments`): those whose id is below the segment of
    /// `observed - retention`, i.e. whose end is `<= observed - retention`.
    fn drop_expired(&mut self, observed: i64) -> Result<()> {
        let min_live_segment = self.segment_id(observed.saturating_sub(self.retention));
        let expired: Vec<i64> = self.segments.range(..min_live_segment).copied().collect();
        for id in expired {
            let tree = tree_name(self.store(), id);
            self.layers.drop_tree(&tree)?;
            self.segments.remove(&id);
            self.names.remove(&id);
            tracing::debug!(store = %self.store(), segment = %tree, stream_time = observed, "dropped an expired segment");
        }
        Ok(())
    }

    fn persist(&mut self, observed: i64) -> Result<()> {
        if self.persisted == (observed, self.seq) {
            return Ok(());
        }
        self.layers.meta_put(
            META_STREAM_TIME,
            Some(Bytes::copy_from_slice(&observed.to_be_bytes())),
        )?;
        self.layers.meta_put(
            META_SEQ,
            Some(Bytes::copy_from_slice(&self.seq.to_be_bytes())),
        )?;
        self.persisted = (observed, self.seq);
        Ok(())
    }

    pub(crate) fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        self.observed_sent = self.observed;
        self.layers.send_changelog(sink)
    }

    pub(crate) fn committed(&mut self) {
        self.layers.committed();
        self.observed_committed = self.observed_sent;
    }

    pub(crate) fn abort(&mut self) {
        self.layers.abort();
        self.observed = self.observed_committed;
        self.observed_sent = self.observed_committed;
    }

    /// Commit step 4: persists the committed stream time first (a crash after it replays
    /// records no newer than it), drops the segments it expires, then applies the data.
    pub(crate) fn apply(&mut self) -> Result<()> {
        let result = self.apply_inner();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn apply_inner(&mut self) -> Result<()> {
        let committed = self.observed_committed;
        self.persist(committed)?;
        self.drop_expired(committed)?;
        self.layers.apply()
    }

    pub(crate) fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        let router = SegmentRouter {
            store: self.store().to_string(),
            schema: self.schema,
            interval: self.interval,
            retention: self.retention,
            observed: Cell::new(self.observed_committed),
            seq: Cell::new(self.seq),
        };
        let stats = self.layers.restore(reader, &router)?;
        self.load_segments()?;
        let observed = router.observed.get();
        self.observed = observed;
        self.observed_sent = observed;
        self.observed_committed = observed;
        self.seq = self.seq.max(router.seq.get());
        self.persist(observed)?;
        self.drop_expired(observed)?;
        Ok(stats)
    }
}

fn corrupt(store: &str, reason: &str) -> Error {
    Error::Corrupt {
        store: store.to_string(),
        reason: reason.to_string(),
    }
}

/// Routes restored records to their segment, dropping those of expired segments; it advances
/// stream time as it goes (Kafka's `getWriteBatches`).
struct SegmentRouter {
    store: String,
    schema: Schema,
    interval: i64,
    retention: i64,
    observed: Cell<i64>,
    seq: Cell<u32>,
}

impl Router for SegmentRouter {
    fn tree_for(&self, key: &[u8]) -> Option<String> {
        let Some(time) = self.schema.segment_time(key).filter(|t| *t >= 0) else {
            tracing::warn!(store = %self.store, key = %show_key(key), "skipping a changelog record whose key is not a window key");
            return None;
        };
        if self.schema == Schema::Window {
            let seq = read_u32(&key[key.len() - 4..]);
            self.seq.set(self.seq.get().max(seq));
        }
        let observed = self.observed.get().max(time);
        self.observed.set(observed);
        let id = time.div_euclid(self.interval);
        if id
            < observed
                .saturating_sub(self.retention)
                .div_euclid(self.interval)
        {
            return None;
        }
        Some(tree_name(&self.store, id))
    }

    fn owns(&self, tree: &str) -> bool {
        parse_segment(&self.store, tree).is_some()
    }

    fn begin(&self, wiped: bool) {
        if wiped {
            // The persisted stream time belongs to the wiped state.
            self.observed.set(NO_TIMESTAMP);
        }
    }

    fn meta(&self) -> Vec<(&'static str, Bytes)> {
        vec![
            (
                META_STREAM_TIME,
                Bytes::copy_from_slice(&self.observed.get().to_be_bytes()),
            ),
            (
                META_SEQ,
                Bytes::copy_from_slice(&self.seq.get().to_be_bytes()),
            ),
        ]
    }
}

/// What a fetch reads, worked out once per call and shared by the store, its read-only
/// view and its cache, so that all three select exactly the same entries: the segment
/// times whose segments may hold matches, the binary key bounds to scan inside each of
/// them, and the exact test of each binary key found (bounds over `[key][time…]` keys are
/// supersets: another key's entries, or times out of range, can lie between them).
pub(crate) struct Query {
    /// The earliest segment time a match can have.
    pub(crate) time_from: i64,
    /// The latest segment time a match can have.
    pub(crate) time_to: i64,
    /// Lower bound of the binary keys scanned in each segment.
    pub(crate) lower: Bound<Vec<u8>>,
    /// Upper bound of the binary keys scanned in each segment.
    pub(crate) upper: Bound<Vec<u8>>,
    /// Whether a binary key in the bounds matches.
    pub(crate) keep: KeyFilter,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("time_from", &self.time_from)
            .field("time_to", &self.time_to)
            .finish_non_exhaustive()
    }
}

/// Which binary keys of a scanned range a fetch returns.
pub(crate) type KeyFilter = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Chains the range iterators of several segments, opening each when the previous ends.
pub(crate) struct SegmentScan<'a> {
    layers: &'a Layers,
    ids: std::vec::IntoIter<i64>,
    current: Option<KvIter<'a>>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    keep: KeyFilter,
}

impl Iterator for SegmentScan<'_> {
    type Item = Result<(Bytes, Timestamped)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(it) = &mut self.current {
                match it.next() {
                    Some(Ok((k, v))) => {
                        if (self.keep)(&k) {
                            return Some(Ok((k, v)));
                        }
                        continue;
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.current = None,
                }
            }
            let id = self.ids.next()?;
            let tree = tree_name(&self.layers.store, id);
            let lower = self.lower.as_ref().map(Vec::as_slice);
            let upper = self.upper.as_ref().map(Vec::as_slice);
            match self.layers.range_open(&tree, lower, upper, self.reverse) {
                Ok(it) => self.current = Some(it),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
