//! Window stores: a value per key and time window, segmented by time so that retention drops
//! whole segments — Kafka's `WindowStore` over its segmented bytes store
//! (`RocksDBWindowStore`, `AbstractRocksDBSegmentedBytesStore`, `WindowKeySchema`).
//!
//! # Layout
//! The stored key is Kafka's window key, `[key][window_start: i64 BE][seq: u32 BE]`; it is
//! also the changelog record key, so restore can route each record to its segment. `seq` is
//! 0 unless the store retains duplicates (join buffers): then every put gets the next `seq`
//! and never overwrites, and a `None` put is ignored, as in Kafka.
//!
//! A segment is one backend tree, `<store>.<segment id, 20 digits>`, holding the windows
//! whose start falls in `[id * segment_interval, (id + 1) * segment_interval)`. The segment
//! interval defaults to Kafka's `max(retention / 2, 60 000 ms)`.
//!
//! # Retention
//! The store observes its own stream time: the largest window start put (Kafka's
//! `observedStreamTime`). A window is expired once `start <= stream_time - retention`: a put
//! of an expired window is dropped (counted in [`SegmentedWindowStore::dropped_expired`] and
//! logged at debug level, as Kafka drops it with a metric), and reads never return one. Whole
//! segments whose end is `<= stream_time - retention` are deleted, never single records.
//!
//! Stream time follows the commit protocol: an abort rolls it back to the committed stream
//! time, segments are deleted only in `apply` (commit step 4, using the committed stream
//! time), and the committed stream time is persisted in the store's meta entry, so a restart
//! resumes with it. A restore drops changelog records of segments that are already expired.
//!
//! # Iteration order
//! As Kafka's RocksDB window store: segment by segment (ascending window start), and inside a
//! segment by the stored key bytes `[key][start][seq]` — by key, then window start, then put
//! order of duplicates (for keys of equal length; a key that is a prefix of another sorts by
//! raw bytes, exactly as in Kafka). So a range fetch over several segments returns the keys of
//! the first segment before those of the next. Backward variants return exactly the reverse.
//! Kafka's `InMemoryWindowStore` orders by time first; freshet uses the segmented order for
//! every backend, so memory and sled stores agree.
//!
//! # Examples
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use freshet_state_store::{
//!     MemoryBackend, SegmentedWindowStore, Timestamped, WindowStore, WindowStoreOptions,
//! };
//! let options = WindowStoreOptions::new(3_600_000, 60_000);
//! let mut store = SegmentedWindowStore::open("counts", Arc::new(MemoryBackend::new()), None, options)?;
//! let v = |s: &str| Some(Timestamped { value: Bytes::copy_from_slice(s.as_bytes()), timestamp: 0 });
//! store.put(b"ann", v("1"), 0)?;
//! store.put(b"ann", v("2"), 60_000)?;
//! let starts: Vec<i64> = store.fetch(b"ann", 0, 60_000)?.map(|r| r.map(|(t, _)| t)).collect::<Result<_, _>>()?;
//! assert_eq!(starts, vec![0, 60_000]);
//! # Ok::<(), freshet_state_store::Error>(())
//! ```

use std::cell::Cell;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::changelog::{ChangelogPartition, ChangelogReader, ChangelogSink};
use crate::error::{show_key, Error, Result};
use crate::layers::{KvIter, Layers, RestoreStats, Router, Timestamped};
use crate::serde::Serde;
use crate::store::StateStore;

/// A time window: `[start, end)` for time windows, `[start, end]` for sessions (as Kafka's
/// `TimeWindow` and `SessionWindow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Start, ms since the epoch.
    pub start: i64,
    /// End, ms since the epoch.
    pub end: i64,
}

/// A key with its window, as windowed operators emit them (Kafka's `Windowed<K>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window.
    pub window: Window,
}

/// An iterator of windowed keys and their values (range fetches, sessions).
pub type WindowedIter<'a> =
    Box<dyn Iterator<Item = Result<(Windowed<Bytes>, Timestamped)>> + Send + 'a>;

/// An iterator of `(window start, value)` for one key.
pub type WindowValueIter<'a> = Box<dyn Iterator<Item = Result<(i64, Timestamped)>> + Send + 'a>;

/// Kafka's default segment interval for a retention: `max(retention / 2, 60 000 ms)`
/// (`Stores.persistentWindowStore`, `RocksDbSessionBytesStoreSupplier`), so a store keeps
/// about three segments.
pub fn default_segment_interval(retention_ms: i64) -> i64 {
    (retention_ms / 2).max(60_000)
}

// ---------------------------------------------------------------------------------------
// Segments, stream time and retention, shared with the session store.

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

/// Kafka's `windowstore.changelog.additional.retention.ms` default: one day.
pub(crate) const CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 86_400_000;

/// Kafka's `observedStreamTime` before any record.
const NO_TIMESTAMP: i64 = -1;
/// Meta entries (next to the store's applied offset).
const META_STREAM_TIME: &str = "stream-time";
const META_SEQ: &str = "seq";

fn tree_name(store: &str, id: i64) -> String {
    format!("{store}.{id:020}")
}

fn parse_segment(store: &str, tree: &str) -> Option<i64> {
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
    /// The segment written last and its tree name.
    last_tree: (i64, String),
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
        let observed = match layers.meta_get(META_STREAM_TIME)? {
            Some(b) if b.len() == 8 => read_i64(&b),
            None => NO_TIMESTAMP,
            Some(_) => return Err(corrupt(name, "stream time is not 8 bytes")),
        };
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
            last_tree: (0, String::new()),
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
        time.div_euclid(self.interval)
    }

    /// The oldest live time: Kafka's `observedStreamTime - retentionPeriod + 1`.
    pub(crate) fn min_live(&self) -> i64 {
        self.observed
            .saturating_sub(self.retention)
            .saturating_add(1)
            .max(0)
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
        if self.last_tree.0 != id || self.last_tree.1.is_empty() {
            // Most writes land in the newest segment: name it once, not per record.
            self.last_tree = (id, tree_name(self.store(), id));
        }
        self.layers.put(&self.last_tree.1, key, value)?;
        self.segments.insert(id);
        Ok(())
    }

    /// Binary keys in the segments covering `[time_from, time_to]` within key bounds, that
    /// `keep` accepts: segment by segment, each in key order (reversed when `reverse`).
    pub(crate) fn scan<'a>(
        &'a self,
        time_from: i64,
        time_to: i64,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        keep: impl Fn(&[u8]) -> bool + Send + 'a,
    ) -> SegmentScan<'a> {
        let ids: Vec<i64> = if time_from > time_to {
            Vec::new()
        } else {
            let range = self
                .segments
                .range(self.segment_id(time_from)..=self.segment_id(time_to));
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
            lower,
            upper,
            reverse,
            keep: Box::new(keep),
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

/// Chains the range iterators of several segments, opening each when the previous ends.
pub(crate) struct SegmentScan<'a> {
    layers: &'a Layers,
    ids: std::vec::IntoIter<i64>,
    current: Option<KvIter<'a>>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    keep: KeyFilter<'a>,
}

/// Which binary keys of a scanned range a fetch returns.
type KeyFilter<'a> = Box<dyn Fn(&[u8]) -> bool + Send + 'a>;

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

// ---------------------------------------------------------------------------------------
// The window store.

/// Kafka's `WindowStore` over bytes, each value with its timestamp. See the module docs for
/// the layout, retention and iteration order.
pub trait WindowStore: StateStore {
    /// Puts the value of `key` in the window starting at `window_start` (`None` deletes it;
    /// ignored when the store retains duplicates). A window already expired is dropped.
    ///
    /// # Errors
    /// `InvalidArgument` for a negative window start; `Poisoned` after a failed apply.
    fn put(&mut self, key: &[u8], value: Option<Timestamped>, window_start: i64) -> Result<()>;
    /// The value of `key` in the window starting at `window_start` (with duplicates: the
    /// first put of them).
    fn fetch_one(&self, key: &[u8], window_start: i64) -> Result<Option<Timestamped>>;
    /// Values of `key` in windows starting in `[time_from, time_to]`, by ascending start.
    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowValueIter<'_>>;
    /// [`WindowStore::fetch`] by descending start.
    fn backward_fetch(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowValueIter<'_>>;
    /// Windows of keys in `[key_from, key_to]` (`None`: unbounded) starting in
    /// `[time_from, time_to]`: by segment, then key bytes, then start. An empty iterator
    /// when `key_from > key_to` (as Kafka, which logs it).
    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'_>>;
    /// [`WindowStore::fetch_range`] in exactly the reverse order.
    fn backward_fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'_>>;
    /// Every window starting in `[time_from, time_to]`, in range-fetch order.
    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedIter<'_>>;
    /// [`WindowStore::fetch_all`] in exactly the reverse order.
    fn backward_fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedIter<'_>>;
    /// Every live window, in range-fetch order.
    fn all(&self) -> Result<WindowedIter<'_>>;
    /// [`WindowStore::all`] in exactly the reverse order.
    fn backward_all(&self) -> Result<WindowedIter<'_>>;
}

/// How a window store keeps its windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowStoreOptions {
    /// How long a window is kept, in stream time from its start (ms); at least the window
    /// size. Kafka's `retentionPeriod`.
    pub retention_ms: i64,
    /// The window size (ms): results carry windows `[start, start + size)`.
    pub window_size_ms: i64,
    /// Keep every put of a key and window (stream-stream join buffers).
    pub retain_duplicates: bool,
    /// Time span of one segment (ms); defaults to [`default_segment_interval`].
    pub segment_interval_ms: i64,
}

impl WindowStoreOptions {
    /// Options with Kafka's defaults: no duplicates, the default segment interval.
    pub fn new(retention_ms: i64, window_size_ms: i64) -> WindowStoreOptions {
        WindowStoreOptions {
            retention_ms,
            window_size_ms,
            retain_duplicates: false,
            segment_interval_ms: default_segment_interval(retention_ms),
        }
    }

    /// Sets whether duplicates are retained.
    pub fn with_retain_duplicates(mut self, retain: bool) -> WindowStoreOptions {
        self.retain_duplicates = retain;
        self
    }

    /// Sets the segment interval (ms).
    pub fn with_segment_interval(mut self, interval_ms: i64) -> WindowStoreOptions {
        self.segment_interval_ms = interval_ms;
        self
    }
}

/// A window store on sled or memory, segmented by window start, changelogged.
#[derive(Debug)]
pub struct SegmentedWindowStore {
    seg: Segmented,
    window_size: i64,
    retain_duplicates: bool,
}

const WINDOW_SUFFIX: usize = 12;

fn window_key(key: &[u8], start: i64, seq: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + WINDOW_SUFFIX);
    k.extend_from_slice(key);
    k.extend_from_slice(&start.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The user key and window start of a binary window key (`None` if it is too short).
fn split_window_key(stored: &[u8]) -> Option<(&[u8], i64)> {
    let at = stored.len().checked_sub(WINDOW_SUFFIX)?;
    Some((&stored[..at], read_i64(&stored[at..at + 8])))
}

/// A stored window entry as Kafka's `Windowed<Bytes>`: window `[start, start + size)`.
fn to_windowed(
    window_size: i64,
    item: Result<(Bytes, Timestamped)>,
) -> Result<(Windowed<Bytes>, Timestamped)> {
    let (k, v) = item?;
    let at = k.len() - WINDOW_SUFFIX;
    let start = read_i64(&k[at..at + 8]);
    Ok((
        Windowed {
            key: k.slice(..at),
            window: Window {
                start,
                // Kafka's `timeWindowForSize`: an overflowing end is capped.
                end: start.saturating_add(window_size),
            },
        },
        v,
    ))
}

impl SegmentedWindowStore {
    /// Opens the window store `name` in `backend`, with its changelog partition (`None`:
    /// not logged). Call [`StateStore::restore`] before use when logged.
    ///
    /// # Errors
    /// `InvalidArgument` when the retention is negative or smaller than the window size, or
    /// the segment interval is below 1 ms.
    pub fn open(
        name: &str,
        backend: Arc<dyn Backend>,
        changelog: Option<ChangelogPartition>,
        options: WindowStoreOptions,
    ) -> Result<SegmentedWindowStore> {
        if options.window_size_ms < 0 || options.retention_ms < options.window_size_ms {
            return Err(Error::InvalidArgument {
                store: name.to_string(),
                reason: format!(
                    "the retention ({} ms) must be at least the window size ({} ms), which must not be negative",
                    options.retention_ms, options.window_size_ms
                ),
            });
        }
        let seg = Segmented::open(
            name,
            backend,
            changelog,
            Schema::Window,
            options.retention_ms,
            options.segment_interval_ms,
        )?;
        Ok(SegmentedWindowStore {
            seg,
            window_size: options.window_size_ms,
            retain_duplicates: options.retain_duplicates,
        })
    }

    /// The window size (ms).
    pub fn window_size(&self) -> i64 {
        self.window_size
    }

    /// The retention (ms).
    pub fn retention(&self) -> i64 {
        self.seg.retention()
    }

    /// The segment interval (ms).
    pub fn segment_interval(&self) -> i64 {
        self.seg.interval()
    }

    /// `retention.ms` for the changelog topic: the store's retention plus one day, as Kafka's
    /// `windowstore.changelog.additional.retention.ms` default (the topic's cleanup policy
    /// is `compact,delete`).
    pub fn changelog_retention_ms(&self) -> i64 {
        self.seg
            .retention()
            .saturating_add(CHANGELOG_ADDITIONAL_RETENTION_MS)
    }

    /// Whether every put is kept (join buffers).
    pub fn retains_duplicates(&self) -> bool {
        self.retain_duplicates
    }

    /// The store's stream time: the largest window start put (-1 before any).
    pub fn observed_stream_time(&self) -> i64 {
        self.seg.observed()
    }

    /// Puts dropped because their window had expired, since the store was opened (Kafka's
    /// dropped-records metric).
    pub fn dropped_expired(&self) -> u64 {
        self.seg.dropped_expired()
    }

    /// Ids of the segments that exist, ascending (segment `i` holds window starts in
    /// `[i * interval, (i + 1) * interval)`).
    pub fn segment_ids(&self) -> Vec<i64> {
        self.seg.segment_ids()
    }

    fn fetch_key(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowValueIter<'_>> {
        let from = time_from.max(self.seg.min_live());
        if time_to < from {
            return Ok(Box::new(std::iter::empty()));
        }
        let lower = Bound::Included(window_key(key, from, 0));
        let upper = Bound::Included(window_key(key, time_to, u32::MAX));
        let owned = key.to_vec();
        let keep = move |k: &[u8]| {
            split_window_key(k).is_some_and(|(user, t)| user == owned && t >= from && t <= time_to)
        };
        let scan = self.seg.scan(from, time_to, lower, upper, reverse, keep);
        Ok(Box::new(scan.map(|item| {
            let (k, v) = item?;
            let at = k.len() - WINDOW_SUFFIX;
            Ok((read_i64(&k[at..at + 8]), v))
        })))
    }

    fn fetch_keys(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        if let (Some(a), Some(z)) = (key_from, key_to) {
            if a > z {
                tracing::warn!(store = %self.seg.store(), "returning no windows for a fetch whose key range has from > to (arguments swapped, or a serde whose bytes do not sort like its values)");
                return Ok(Box::new(std::iter::empty()));
            }
        }
        let from = time_from.max(self.seg.min_live());
        if time_to < from {
            return Ok(Box::new(std::iter::empty()));
        }
        let lower = key_from.map_or(Bound::Unbounded, |k| Bound::Included(k.to_vec()));
        let upper = key_to.map_or(Bound::Unbounded, |k| {
            let mut suffix = time_to.to_be_bytes().to_vec();
            suffix.extend_from_slice(&u32::MAX.to_be_bytes());
            Bound::Included(upper_bound(k, &suffix))
        });
        let (kf, kt) = (key_from.map(<[u8]>::to_vec), key_to.map(<[u8]>::to_vec));
        let keep = move |k: &[u8]| {
            split_window_key(k).is_some_and(|(user, t)| {
                kf.as_deref().is_none_or(|f| user >= f)
                    && kt.as_deref().is_none_or(|z| user <= z)
                    && t >= from
                    && t <= time_to
            })
        };
        let scan = self.seg.scan(from, time_to, lower, upper, reverse, keep);
        let window_size = self.window_size;
        Ok(Box::new(
            scan.map(move |item| to_windowed(window_size, item)),
        ))
    }
}

impl WindowStore for SegmentedWindowStore {
    fn put(&mut self, key: &[u8], value: Option<Timestamped>, window_start: i64) -> Result<()> {
        if window_start < 0 {
            return Err(self.seg.invalid(format!(
                "window start {window_start} of key {} is negative",
                show_key(key)
            )));
        }
        if value.is_none() && self.retain_duplicates {
            // Deleting one of many duplicates is a no-op, as in Kafka.
            return Ok(());
        }
        if !self.seg.admit(window_start)? {
            return Ok(());
        }
        let seq = if self.retain_duplicates {
            self.seg.seq = self.seg.seq.wrapping_add(1) & 0x7fff_ffff;
            self.seg.seq
        } else {
            0
        };
        let stored = Bytes::from(window_key(key, window_start, seq));
        self.seg.write(window_start, stored, value)
    }

    fn fetch_one(&self, key: &[u8], window_start: i64) -> Result<Option<Timestamped>> {
        let mut it = self.fetch_key(key, window_start, window_start, false)?;
        it.next().transpose().map(|o| o.map(|(_, v)| v))
    }

    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowValueIter<'_>> {
        self.fetch_key(key, time_from, time_to, false)
    }

    fn backward_fetch(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowValueIter<'_>> {
        self.fetch_key(key, time_from, time_to, true)
    }

    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'_>> {
        self.fetch_keys(key_from, key_to, time_from, time_to, false)
    }

    fn backward_fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'_>> {
        self.fetch_keys(key_from, key_to, time_from, time_to, true)
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedIter<'_>> {
        self.fetch_keys(None, None, time_from, time_to, false)
    }

    fn backward_fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedIter<'_>> {
        self.fetch_keys(None, None, time_from, time_to, true)
    }

    fn all(&self) -> Result<WindowedIter<'_>> {
        self.fetch_keys(None, None, 0, i64::MAX, false)
    }

    fn backward_all(&self) -> Result<WindowedIter<'_>> {
        self.fetch_keys(None, None, 0, i64::MAX, true)
    }
}

impl StateStore for SegmentedWindowStore {
    fn name(&self) -> &str {
        self.seg.store()
    }
    fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        self.seg.send_changelog(sink)
    }
    fn committed(&mut self) {
        self.seg.committed();
    }
    fn apply(&mut self) -> Result<()> {
        self.seg.apply()
    }
    fn abort(&mut self) {
        self.seg.abort();
    }
    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        self.seg.restore(reader)
    }
    fn write_buffer_bytes(&self) -> usize {
        self.seg.layers.buffer_bytes()
    }
}

// ---------------------------------------------------------------------------------------
// Typed view.

/// A serde failure naming the store and, when known, the key bytes.
pub(crate) fn serde_error(
    store: &str,
    op: &'static str,
    what: &'static str,
    key: Option<&[u8]>,
    reason: String,
) -> Error {
    Error::Serde {
        store: store.to_string(),
        op,
        what,
        key: key.map(show_key).unwrap_or_default(),
        reason,
    }
}

/// Decodes a stored value through a serde, naming store and key on failure.
pub(crate) fn decode_value<V, VS: Serde<V>>(
    store: &str,
    values: &VS,
    key: &[u8],
    v: Timestamped,
) -> Result<Timestamped<V>> {
    let value = values
        .deserialize(&v.value)
        .map_err(|reason| serde_error(store, "deserialize", "value of", Some(key), reason))?;
    Ok(Timestamped {
        value,
        timestamp: v.timestamp,
    })
}

/// Decodes a windowed key and its value.
pub(crate) fn decode_windowed<K, V, KS: Serde<K>, VS: Serde<V>>(
    store: &str,
    keys: &KS,
    values: &VS,
    item: Result<(Windowed<Bytes>, Timestamped)>,
) -> Result<(Windowed<K>, Timestamped<V>)> {
    let (w, v) = item?;
    let key = keys
        .deserialize(&w.key)
        .map_err(|reason| serde_error(store, "deserialize", "key", Some(&w.key), reason))?;
    let value = decode_value(store, values, &w.key, v)?;
    Ok((
        Windowed {
            key,
            window: w.window,
        },
        value,
    ))
}

/// A window store of `K` → `V` over a byte-level [`WindowStore`].
///
/// ```
/// use std::sync::Arc;
/// use freshet_state_store::{
///     BigEndian, MemoryBackend, SegmentedWindowStore, TypedWindowStore, Utf8, Window,
///     WindowStoreOptions,
/// };
/// let inner = SegmentedWindowStore::open(
///     "counts", Arc::new(MemoryBackend::new()), None, WindowStoreOptions::new(600_000, 60_000))?;
/// let mut store = TypedWindowStore::new(inner, Utf8, BigEndian);
/// store.put(&"ann".to_string(), Some(&3u64), 1_000, 0)?;
/// let all: Vec<_> = store.all::<String, u64>()?.collect::<Result<_, _>>()?;
/// assert_eq!(all[0].0.window, Window { start: 0, end: 60_000 });
/// assert_eq!(all[0].1.value, 3);
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug)]
pub struct TypedWindowStore<S, KS, VS> {
    inner: S,
    keys: KS,
    values: VS,
}

impl<S: WindowStore, KS, VS> TypedWindowStore<S, KS, VS> {
    /// Wraps a byte store with a key and a value serde.
    pub fn new(inner: S, keys: KS, values: VS) -> Self {
        TypedWindowStore {
            inner,
            keys,
            values,
        }
    }

    /// The byte store underneath.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The byte store underneath, for reads.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn key<K>(&self, key: &K) -> Result<Vec<u8>>
    where
        KS: Serde<K>,
    {
        self.keys
            .serialize(key)
            .map_err(|reason| serde_error(self.inner.name(), "serialize", "key", None, reason))
    }

    /// Puts `value` (at `timestamp`) for `key` in the window starting at `window_start`;
    /// `None` deletes.
    pub fn put<K, V>(
        &mut self,
        key: &K,
        value: Option<&V>,
        timestamp: i64,
        window_start: i64,
    ) -> Result<()>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        let v = match value {
            Some(v) => Some(Timestamped {
                value: Bytes::from(self.values.serialize(v).map_err(|reason| {
                    serde_error(self.inner.name(), "serialize", "value of", Some(&k), reason)
                })?),
                timestamp,
            }),
            None => None,
        };
        self.inner.put(&k, v, window_start)
    }

    /// The value of `key` in the window starting at `window_start`.
    pub fn fetch_one<K, V>(&self, key: &K, window_start: i64) -> Result<Option<Timestamped<V>>>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        match self.inner.fetch_one(&k, window_start)? {
            Some(v) => decode_value(self.inner.name(), &self.values, &k, v).map(Some),
            None => Ok(None),
        }
    }

    fn values_of<'a, K, V>(
        &'a self,
        key: &K,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<impl Iterator<Item = Result<(i64, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        let raw = if reverse {
            self.inner.backward_fetch(&k, time_from, time_to)?
        } else {
            self.inner.fetch(&k, time_from, time_to)?
        };
        Ok(raw.map(move |item| {
            let (t, v) = item?;
            Ok((t, decode_value(self.inner.name(), &self.values, &k, v)?))
        }))
    }

    /// Values of `key` in windows starting in `[time_from, time_to]`, ascending.
    pub fn fetch<'a, K, V>(
        &'a self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(i64, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        self.values_of(key, time_from, time_to, false)
    }

    /// Values of `key` in windows starting in `[time_from, time_to]`, descending.
    pub fn backward_fetch<'a, K, V>(
        &'a self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(i64, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        self.values_of(key, time_from, time_to, true)
    }

    fn windowed<'a, K, V>(
        &'a self,
        raw: WindowedIter<'a>,
    ) -> impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        raw.map(move |item| decode_windowed(self.inner.name(), &self.keys, &self.values, item))
    }

    /// Windows of keys in `[key_from, key_to]` (`None`: unbounded) starting in
    /// `[time_from, time_to]`, in the byte store's order.
    pub fn fetch_range<'a, K, V>(
        &'a self,
        key_from: Option<&K>,
        key_to: Option<&K>,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let kf = key_from.map(|k| self.key(k)).transpose()?;
        let kt = key_to.map(|k| self.key(k)).transpose()?;
        let raw = self
            .inner
            .fetch_range(kf.as_deref(), kt.as_deref(), time_from, time_to)?;
        Ok(self.windowed(raw))
    }

    /// [`TypedWindowStore::fetch_range`] in reverse.
    pub fn backward_fetch_range<'a, K, V>(
        &'a self,
        key_from: Option<&K>,
        key_to: Option<&K>,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let kf = key_from.map(|k| self.key(k)).transpose()?;
        let kt = key_to.map(|k| self.key(k)).transpose()?;
        let raw =
            self.inner
                .backward_fetch_range(kf.as_deref(), kt.as_deref(), time_from, time_to)?;
        Ok(self.windowed(raw))
    }

    /// Every window starting in `[time_from, time_to]`.
    pub fn fetch_all<'a, K, V>(
        &'a self,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.fetch_all(time_from, time_to)?))
    }

    /// [`TypedWindowStore::fetch_all`] in reverse.
    pub fn backward_fetch_all<'a, K, V>(
        &'a self,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.backward_fetch_all(time_from, time_to)?))
    }

    /// Every live window.
    pub fn all<'a, K, V>(
        &'a self,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.all()?))
    }

    /// Every live window, in reverse.
    pub fn backward_all<'a, K, V>(
        &'a self,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.backward_all()?))
    }
}
