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

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::changelog::{
    ChangelogPartition, ChangelogReader, ChangelogSink, CHANGELOG_ADDITIONAL_RETENTION_MS,
};
use crate::error::{show_key, Error, Result};
use crate::layers::{RestoreStats, Timestamped};
use crate::segment::{read_i64, upper_bound, Query, Schema, Segmented};
use crate::serde::compact_bytes;
use crate::store::StateStore;
use crate::view::ReadOnlyWindowView;

mod typed;

pub use self::typed::TypedWindowStore;
pub(crate) use self::typed::{decode_value, decode_windowed, serde_error};

/// A time window: `[start, end)` for time windows, `[start, end]` for sessions (as Kafka's
/// `TimeWindow` and `SessionWindow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Start, ms since the epoch.
    pub start: i64,
    /// End, ms since the epoch.
    pub end: i64,
}

impl Window {
    /// Makes the window `[start, end)`; it exists so windows can be written in one expression.
    ///
    /// ```
    /// let w = freshet_state_store::Window::new(5, 11);
    /// assert_eq!((w.start, w.end), (5, 11));
    /// ```
    pub const fn new(start: i64, end: i64) -> Self {
        Self { start, end }
    }

    /// Whether `timestamp` falls in `[start, end)`, the membership rule of time windows.
    ///
    /// ```
    /// let w = freshet_state_store::Window::new(10, 22);
    /// assert!(w.contains(10) && w.contains(21) && !w.contains(22));
    /// ```
    pub const fn contains(&self, timestamp: i64) -> bool {
        self.start <= timestamp && timestamp < self.end
    }
}

impl<K> Windowed<K> {
    /// A key in a window.
    pub const fn new(key: K, window: Window) -> Self {
        Windowed { key, window }
    }
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
    /// [`WindowStore::put`] of a binary window key already built, `[key][window start][0]`
    /// (as the store lays keys out), which the store may keep as is: the record cache
    /// writes its entries down with the key bytes it holds. The default splits it and puts.
    #[doc(hidden)]
    fn put_stored(
        &mut self,
        stored: Bytes,
        value: Option<Timestamped>,
        window_start: i64,
    ) -> Result<()> {
        let key = split_window_key(&stored).map_or(&stored[..], |(key, _)| key);
        self.put(key, value, window_start)
    }
    /// The value of `key` in the window starting at `window_start` (with duplicates: the
    /// first put of them).
    fn fetch_one(&self, key: &[u8], window_start: i64) -> Result<Option<Timestamped>>;
    /// [`WindowStore::fetch`] ascending or (`reverse`) descending: what the key fetches share.
    fn fetch_directed(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowValueIter<'_>>;
    /// [`WindowStore::fetch_range`] ascending or (`reverse`) in exactly the reverse order:
    /// what the range, all-keys and all-windows fetches share.
    fn fetch_range_directed(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>>;
    /// Values of `key` in windows starting in `[time_from, time_to]`, by ascending start.
    fn fetch(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowValueIter<'_>> {
        self.fetch_directed(key, time_from, time_to, false)
    }
    /// [`WindowStore::fetch`] by descending start.
    fn backward_fetch(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowValueIter<'_>> {
        self.fetch_directed(key, time_from, time_to, true)
    }
    /// Windows of keys in `[key_from, key_to]` (`None`: unbounded) starting in
    /// `[time_from, time_to]`: by segment, then key bytes, then start. An empty iterator
    /// when `key_from > key_to` (as Kafka, which logs it).
    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'_>> {
        self.fetch_range_directed(key_from, key_to, time_from, time_to, false)
    }
    /// [`WindowStore::fetch_range`] in exactly the reverse order.
    fn backward_fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
    ) -> Result<WindowedIter<'_>> {
        self.fetch_range_directed(key_from, key_to, time_from, time_to, true)
    }
    /// Every window starting in `[time_from, time_to]`, in range-fetch order.
    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedIter<'_>> {
        self.fetch_range_directed(None, None, time_from, time_to, false)
    }
    /// [`WindowStore::fetch_all`] in exactly the reverse order.
    fn backward_fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedIter<'_>> {
        self.fetch_range_directed(None, None, time_from, time_to, true)
    }
    /// Every live window, in range-fetch order (window starts are never negative).
    fn all(&self) -> Result<WindowedIter<'_>> {
        self.fetch_range_directed(None, None, 0, i64::MAX, false)
    }
    /// [`WindowStore::all`] in exactly the reverse order.
    fn backward_all(&self) -> Result<WindowedIter<'_>> {
        self.fetch_range_directed(None, None, 0, i64::MAX, true)
    }
    /// The store's options: a layer on top (the record cache) orders, expires and
    /// forwards windows exactly as the store does only when it knows the window size, the
    /// retention and the segment interval.
    fn options(&self) -> WindowStoreOptions;
    /// The store's stream time: the largest window start put (-1 before any). Windows
    /// starting at or before `stream time - retention` are expired.
    fn observed_stream_time(&self) -> i64;
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

/// Kafka's binary window key, `[key][start][seq]` (`WindowKeySchema.toStoreKeyBinary`).
pub(crate) fn window_key(key: &[u8], start: i64, seq: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + WINDOW_SUFFIX);
    k.extend_from_slice(key);
    k.extend_from_slice(&start.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// [`window_key`] as the store keeps it: built on the stack when it is short, then copied
/// once into [`compact_bytes`] (the write buffer, the changelog and the backend batch each
/// take a handle on it; a compact one is shared without allocating).
fn stored_window_key(key: &[u8], start: i64, seq: u32) -> Bytes {
    const ROOM: usize = 64;
    let len = key.len() + WINDOW_SUFFIX;
    if len > ROOM {
        return Bytes::from(window_key(key, start, seq));
    }
    let mut buf = [0u8; ROOM];
    let (k, rest) = buf.split_at_mut(key.len());
    k.copy_from_slice(key);
    let (s, rest) = rest.split_at_mut(8);
    s.copy_from_slice(&start.to_be_bytes());
    if let Some(q) = rest.get_mut(..4) {
        q.copy_from_slice(&seq.to_be_bytes());
    }
    compact_bytes(buf.get(..len).unwrap_or_default())
}

/// The user key and window start of a binary window key (`None` if it is too short).
pub(crate) fn split_window_key(stored: &[u8]) -> Option<(&[u8], i64)> {
    let at = stored.len().checked_sub(WINDOW_SUFFIX)?;
    Some((&stored[..at], read_i64(&stored[at..at + 8])))
}

/// A binary window key as Kafka's `Windowed<Bytes>`: window `[start, start + size)`.
/// Scans return only keys their query's filter accepted, which are long enough.
pub(crate) fn windowed_key(window_size: i64, stored: &Bytes) -> Windowed<Bytes> {
    let at = stored.len().saturating_sub(WINDOW_SUFFIX);
    let start = split_window_key(stored).map_or(0, |(_, start)| start);
    Windowed {
        key: stored.slice(..at),
        window: Window {
            start,
            // Kafka's `timeWindowForSize`: an overflowing end is capped.
            end: start.saturating_add(window_size),
        },
    }
}

/// A scanned entry with its window.
pub(crate) fn to_windowed(
    window_size: i64,
    item: Result<(Bytes, Timestamped)>,
) -> Result<(Windowed<Bytes>, Timestamped)> {
    let (k, v) = item?;
    Ok((windowed_key(window_size, &k), v))
}

/// A scanned entry of one key as `(window start, value)`.
pub(crate) fn to_start(item: Result<(Bytes, Timestamped)>) -> Result<(i64, Timestamped)> {
    let (k, v) = item?;
    Ok((split_window_key(&k).map_or(0, |(_, start)| start), v))
}

/// The windows of `key` starting in `[time_from, time_to]` that are live at `min_live`;
/// `None` when none can be.
pub(crate) fn key_query(key: &[u8], time_from: i64, time_to: i64, min_live: i64) -> Option<Query> {
    let from = time_from.max(min_live);
    if time_to < from {
        return None;
    }
    let owned = key.to_vec();
    Some(Query {
        time_from: from,
        time_to,
        lower: Bound::Included(window_key(key, from, 0)),
        upper: Bound::Included(window_key(key, time_to, u32::MAX)),
        keep: Box::new(move |k: &[u8]| {
            split_window_key(k).is_some_and(|(user, t)| user == owned && t >= from && t <= time_to)
        }),
    })
}

/// The windows of keys in `[key_from, key_to]` (`None`: unbounded) starting in
/// `[time_from, time_to]` that are live at `min_live`; `None` when none can be (a key range
/// with `from > to` is logged, as Kafka logs it).
pub(crate) fn range_query(
    store: &str,
    key_from: Option<&[u8]>,
    key_to: Option<&[u8]>,
    time_from: i64,
    time_to: i64,
    min_live: i64,
) -> Option<Query> {
    if let (Some(a), Some(z)) = (key_from, key_to) {
        if a > z {
            tracing::warn!(store = %store, "returning no windows for a fetch whose key range has from > to (arguments swapped, or a serde whose bytes do not sort like its values)");
            return None;
        }
    }
    let from = time_from.max(min_live);
    if time_to < from {
        return None;
    }
    let lower = key_from.map_or(Bound::Unbounded, |k| Bound::Included(k.to_vec()));
    let upper = key_to.map_or(Bound::Unbounded, |k| {
        let mut suffix = time_to.to_be_bytes().to_vec();
        suffix.extend_from_slice(&u32::MAX.to_be_bytes());
        Bound::Included(upper_bound(k, &suffix))
    });
    let (kf, kt) = (key_from.map(<[u8]>::to_vec), key_to.map(<[u8]>::to_vec));
    Some(Query {
        time_from: from,
        time_to,
        lower,
        upper,
        keep: Box::new(move |k: &[u8]| {
            split_window_key(k).is_some_and(|(user, t)| {
                kf.as_deref().is_none_or(|f| user >= f)
                    && kt.as_deref().is_none_or(|z| user <= z)
                    && t >= from
                    && t <= time_to
            })
        }),
    })
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

    /// A read-only view of this store's committed state, for interactive queries (see
    /// [`ReadOnlyWindowView`]).
    pub fn read_only_view(&self) -> ReadOnlyWindowView {
        ReadOnlyWindowView::of(
            self.seg.layers.backend().clone(),
            self.seg.store(),
            WindowStore::options(self),
        )
    }

    fn fetch_key(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowValueIter<'_>> {
        let Some(query) = key_query(key, time_from, time_to, self.seg.min_live()) else {
            return Ok(Box::new(std::iter::empty()));
        };
        Ok(Box::new(self.seg.scan(query, reverse).map(to_start)))
    }

    fn fetch_keys(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        let Some(query) = range_query(
            self.seg.store(),
            key_from,
            key_to,
            time_from,
            time_to,
            self.seg.min_live(),
        ) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let scan = self.seg.scan(query, reverse);
        let window_size = self.window_size;
        Ok(Box::new(
            scan.map(move |item| to_windowed(window_size, item)),
        ))
    }
}

impl WindowStore for SegmentedWindowStore {
    fn put_stored(
        &mut self,
        stored: Bytes,
        value: Option<Timestamped>,
        window_start: i64,
    ) -> Result<()> {
        let fits = split_window_key(&stored).is_some_and(|(_, start)| start == window_start)
            && stored.ends_with(&0u32.to_be_bytes());
        if self.retain_duplicates || window_start < 0 || !fits {
            // Duplicates get their own sequence number; errors are `put`'s.
            let key = split_window_key(&stored).map_or(&stored[..], |(key, _)| key);
            return self.put(key, value, window_start);
        }
        if !self.seg.admit(window_start)? {
            return Ok(());
        }
        self.seg.write(window_start, stored, value)
    }

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
        let stored = stored_window_key(key, window_start, seq);
        self.seg.write(window_start, stored, value)
    }

    fn fetch_one(&self, key: &[u8], window_start: i64) -> Result<Option<Timestamped>> {
        if !self.retain_duplicates {
            // One possible binary key (sequence number 0): a point lookup.
            return self
                .seg
                .get(window_start, &window_key(key, window_start, 0));
        }
        let mut it = self.fetch_key(key, window_start, window_start, false)?;
        it.next().transpose().map(|o| o.map(|(_, v)| v))
    }

    fn fetch_directed(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowValueIter<'_>> {
        self.fetch_key(key, time_from, time_to, reverse)
    }

    fn fetch_range_directed(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        self.fetch_keys(key_from, key_to, time_from, time_to, reverse)
    }

    fn options(&self) -> WindowStoreOptions {
        WindowStoreOptions {
            retention_ms: self.seg.retention(),
            window_size_ms: self.window_size,
            retain_duplicates: self.retain_duplicates,
            segment_interval_ms: self.seg.interval(),
        }
    }

    fn observed_stream_time(&self) -> i64 {
        self.seg.observed()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    fn store(duplicates: bool) -> SegmentedWindowStore {
        let options = WindowStoreOptions::new(100_000, 10).with_retain_duplicates(duplicates);
        SegmentedWindowStore::open("w", Arc::new(MemoryBackend::new()), None, options)
            .expect("a memory store opens")
    }

    fn v(n: u8) -> Option<Timestamped> {
        Some(Timestamped {
            value: Bytes::from(vec![n]),
            timestamp: i64::from(n),
        })
    }

    #[test]
    fn a_stored_key_puts_what_a_key_puts() -> Result<()> {
        for duplicates in [false, true] {
            let (mut by_key, mut by_stored) = (store(duplicates), store(duplicates));
            for (key, start, value) in [(&b"a"[..], 0, v(1)), (b"b", 10, v(2)), (b"a", 0, v(3))] {
                by_key.put(key, value.clone(), start)?;
                by_stored.put_stored(Bytes::from(window_key(key, start, 0)), value, start)?;
            }
            let all = |s: &SegmentedWindowStore| -> Result<Vec<_>> { s.all()?.collect() };
            assert_eq!(all(&by_stored)?, all(&by_key)?);
            assert_eq!(by_stored.fetch_one(b"a", 0)?, by_key.fetch_one(b"a", 0)?);
        }
        // Refused as `put` refuses it.
        let mut s = store(false);
        assert!(s
            .put_stored(Bytes::from(window_key(b"a", -10, 0)), v(1), -10)
            .is_err());
        Ok(())
    }
}
