//! Session stores: one aggregate per key and session, segmented by session end time so that
//! retention drops whole segments — Kafka's `SessionStore` over its segmented bytes store
//! (`RocksDBSessionStore`, `SessionKeySchema`).
//!
//! # Layout
//! The stored key, which is also the changelog record key, is Kafka's session key
//! `[key][end: i64 BE][start: i64 BE]`; a session is `[start, end]`, both inclusive. Segments
//! and retention work as in the window store (see `window`), keyed on the session end: the
//! store's stream time is the largest session end put, a session is expired once
//! `end <= stream_time - retention`, puts of expired sessions are dropped, and whole expired
//! segments are deleted at apply.
//!
//! # Iteration order
//! As Kafka's RocksDB session store: segment by segment (ascending end time), and inside a
//! segment by the stored key bytes `[key][end][start]` — so for one key by end, then start;
//! over a key range by key within each segment. Backward variants return exactly the
//! reverse.
//!
//! # Examples
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use freshet_state_store::{
//!     MemoryBackend, SegmentedSessionStore, SessionStore, SessionStoreOptions, Timestamped,
//!     Window,
//! };
//! let mut store = SegmentedSessionStore::open(
//!     "clicks", Arc::new(MemoryBackend::new()), None, SessionStoreOptions::new(3_600_000))?;
//! let v = Timestamped { value: Bytes::from("2"), timestamp: 5_000 };
//! store.put(b"ann", Window { start: 1_000, end: 5_000 }, Some(v))?;
//! // Sessions that end at or after 4 000 and start at or before 6 000: the session merges.
//! let found: Vec<_> = store.find_sessions(b"ann", 4_000, 6_000)?.collect::<Result<_, _>>()?;
//! assert_eq!(found[0].0.window, Window { start: 1_000, end: 5_000 });
//! # Ok::<(), freshet_state_store::Error>(())
//! ```

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::changelog::{
    ChangelogPartition, ChangelogReader, ChangelogSink, CHANGELOG_ADDITIONAL_RETENTION_MS,
};
use crate::error::{show_key, Result};
use crate::layers::{RestoreStats, Timestamped};
use crate::segment::{read_i64, upper_bound, Query, Schema, Segmented};
use crate::serde::Serde;
use crate::store::StateStore;
use crate::view::ReadOnlySessionView;
use crate::window::{
    decode_value, decode_windowed, default_segment_interval, serde_error, Window, Windowed,
    WindowedIter,
};

/// Kafka's `SessionStore` over bytes, each aggregate with its timestamp. See the module docs
/// for the layout, retention and iteration order.
pub trait SessionStore: StateStore {
    /// Puts the aggregate of `key` in `session` (`None` removes it). An expired session is
    /// dropped.
    ///
    /// # Errors
    /// `InvalidArgument` for a negative start or an end before the start; `Poisoned` after a
    /// failed apply.
    fn put(&mut self, key: &[u8], session: Window, value: Option<Timestamped>) -> Result<()>;
    /// Removes the session (Kafka's `remove(Windowed)`).
    fn remove(&mut self, key: &[u8], session: Window) -> Result<()> {
        self.put(key, session, None)
    }
    /// The aggregate of `key` in exactly the session `[start, end]`.
    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Timestamped>>;
    /// Sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start`, ascending or (`reverse`) in exactly the reverse order:
    /// what [`SessionStore::find_sessions`] and its backward variant share.
    fn find_sessions_directed(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>>;
    /// [`SessionStore::find_sessions_range`] ascending or (`reverse`) descending.
    fn find_sessions_range_directed(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>>;
    /// Sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start` (those a record would merge with), by end, then start.
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'_>> {
        self.find_sessions_directed(key, earliest_session_end, latest_session_start, false)
    }
    /// [`SessionStore::find_sessions`] in exactly the reverse order.
    fn backward_find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'_>> {
        self.find_sessions_directed(key, earliest_session_end, latest_session_start, true)
    }
    /// Sessions of keys in `[key_from, key_to]` (`None`: unbounded) with
    /// `end >= earliest_session_end` and `start <= latest_session_start`: by segment, then
    /// key bytes, end, start. Empty when `key_from > key_to`.
    fn find_sessions_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'_>> {
        self.find_sessions_range_directed(
            key_from,
            key_to,
            earliest_session_end,
            latest_session_start,
            false,
        )
    }
    /// [`SessionStore::find_sessions_range`] in exactly the reverse order.
    fn backward_find_sessions_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<WindowedIter<'_>> {
        self.find_sessions_range_directed(
            key_from,
            key_to,
            earliest_session_end,
            latest_session_start,
            true,
        )
    }
    /// Every session ending in `[earliest_session_end, latest_session_end]` (Kafka's
    /// `findSessions(long, long)`, used to emit closed sessions), in range order.
    fn find_sessions_ending(
        &self,
        earliest_session_end: i64,
        latest_session_end: i64,
    ) -> Result<WindowedIter<'_>>;
    /// Every live session of `key`.
    fn fetch(&self, key: &[u8]) -> Result<WindowedIter<'_>> {
        self.find_sessions(key, 0, i64::MAX)
    }
    /// Every live session of `key`, in reverse.
    fn backward_fetch(&self, key: &[u8]) -> Result<WindowedIter<'_>> {
        self.backward_find_sessions(key, 0, i64::MAX)
    }
    /// Every live session of keys in `[key_from, key_to]` (`None`: unbounded).
    fn fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
    ) -> Result<WindowedIter<'_>> {
        self.find_sessions_range(key_from, key_to, 0, i64::MAX)
    }
    /// [`SessionStore::fetch_range`] in reverse.
    fn backward_fetch_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
    ) -> Result<WindowedIter<'_>> {
        self.backward_find_sessions_range(key_from, key_to, 0, i64::MAX)
    }
    /// The store's options: a layer on top (the record cache) orders and expires sessions
    /// exactly as the store does only when it knows the retention and segment interval.
    fn options(&self) -> SessionStoreOptions;
    /// The store's stream time: the largest session end put (-1 before any). Sessions
    /// ending at or before `stream time - retention` are expired.
    fn observed_stream_time(&self) -> i64;
}

/// How a session store keeps its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStoreOptions {
    /// How long a session is kept, in stream time from its end (ms): Kafka's retention,
    /// at least the inactivity gap plus grace.
    pub retention_ms: i64,
    /// Time span of one segment (ms); defaults to `max(retention / 2, 60 000)` as Kafka.
    pub segment_interval_ms: i64,
}

impl SessionStoreOptions {
    /// Options with Kafka's default segment interval.
    pub fn new(retention_ms: i64) -> SessionStoreOptions {
        SessionStoreOptions {
            retention_ms,
            segment_interval_ms: default_segment_interval(retention_ms),
        }
    }

    /// Sets the segment interval (ms).
    pub fn with_segment_interval(mut self, interval_ms: i64) -> SessionStoreOptions {
        self.segment_interval_ms = interval_ms;
        self
    }
}

/// A session store on sled or memory, segmented by session end, changelogged.
#[derive(Debug)]
pub struct SegmentedSessionStore {
    seg: Segmented,
}

const SESSION_SUFFIX: usize = 16;

/// Kafka's binary session key, `[key][end][start]` (`SessionKeySchema.toBinary`).
pub(crate) fn session_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + SESSION_SUFFIX);
    k.extend_from_slice(key);
    k.extend_from_slice(&end.to_be_bytes());
    k.extend_from_slice(&start.to_be_bytes());
    k
}

/// The user key and session of a binary session key (`None` if it is too short).
pub(crate) fn split_session_key(stored: &[u8]) -> Option<(&[u8], Window)> {
    let at = stored.len().checked_sub(SESSION_SUFFIX)?;
    Some((
        &stored[..at],
        Window {
            start: read_i64(&stored[at + 8..at + 16]),
            end: read_i64(&stored[at..at + 8]),
        },
    ))
}

/// A binary session key as Kafka's `Windowed<Bytes>`. Scans return only keys their query's
/// filter accepted, which are long enough.
pub(crate) fn session_windowed(stored: &Bytes) -> Windowed<Bytes> {
    let at = stored.len().saturating_sub(SESSION_SUFFIX);
    let window = split_session_key(stored).map_or(Window { start: 0, end: 0 }, |(_, w)| w);
    Windowed {
        key: stored.slice(..at),
        window,
    }
}

/// A scanned entry with its session.
pub(crate) fn to_windowed(
    item: Result<(Bytes, Timestamped)>,
) -> Result<(Windowed<Bytes>, Timestamped)> {
    let (k, v) = item?;
    Ok((session_windowed(&k), v))
}

/// Sessions of `key` with `end >= earliest_end` and `start <= latest_start` that are live
/// at `min_live`; `None` when none can be.
pub(crate) fn find_query(
    key: &[u8],
    earliest_end: i64,
    latest_start: i64,
    min_live: i64,
) -> Option<Query> {
    let from = earliest_end.max(min_live);
    if latest_start < 0 {
        return None;
    }
    let owned = key.to_vec();
    Some(Query {
        time_from: from,
        time_to: i64::MAX,
        lower: Bound::Included(session_key(key, 0, from)),
        upper: Bound::Included(session_key(key, latest_start, i64::MAX)),
        keep: Box::new(move |k: &[u8]| {
            split_session_key(k)
                .is_some_and(|(user, w)| user == owned && w.end >= from && w.start <= latest_start)
        }),
    })
}

/// Sessions of keys in `[key_from, key_to]` (`None`: unbounded) with `end >= earliest_end`
/// and `start <= latest_start` that are live at `min_live`; `None` when none can be (a key
/// range with `from > to` is logged, as Kafka logs it).
pub(crate) fn find_range_query(
    store: &str,
    key_from: Option<&[u8]>,
    key_to: Option<&[u8]>,
    earliest_end: i64,
    latest_start: i64,
    min_live: i64,
) -> Option<Query> {
    if let (Some(a), Some(z)) = (key_from, key_to) {
        if a > z {
            tracing::warn!(store = %store, "returning no sessions for a fetch whose key range has from > to (arguments swapped, or a serde whose bytes do not sort like its values)");
            return None;
        }
    }
    let from = earliest_end.max(min_live);
    if latest_start < 0 {
        return None;
    }
    let lower = key_from.map_or(Bound::Unbounded, |k| Bound::Included(k.to_vec()));
    let upper = key_to.map_or(Bound::Unbounded, |k| {
        let mut suffix = i64::MAX.to_be_bytes().to_vec();
        suffix.extend_from_slice(&latest_start.to_be_bytes());
        Bound::Included(upper_bound(k, &suffix))
    });
    let (kf, kt) = (key_from.map(<[u8]>::to_vec), key_to.map(<[u8]>::to_vec));
    Some(Query {
        time_from: from,
        time_to: i64::MAX,
        lower,
        upper,
        keep: Box::new(move |k: &[u8]| {
            split_session_key(k).is_some_and(|(user, w)| {
                kf.as_deref().is_none_or(|f| user >= f)
                    && kt.as_deref().is_none_or(|z| user <= z)
                    && w.end >= from
                    && w.start <= latest_start
            })
        }),
    })
}

/// Every session ending in `[earliest_end, latest_end]` that is live at `min_live`.
pub(crate) fn ending_query(earliest_end: i64, latest_end: i64, min_live: i64) -> Query {
    let from = earliest_end.max(min_live);
    let to = latest_end;
    Query {
        time_from: from,
        time_to: to,
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        keep: Box::new(move |k: &[u8]| {
            split_session_key(k).is_some_and(|(_, w)| w.end >= from && w.end <= to)
        }),
    }
}

/// Exactly the session `[start, end]` of `key`, if it is live at `min_live`.
pub(crate) fn exact_query(key: &[u8], start: i64, end: i64, min_live: i64) -> Option<Query> {
    if start < 0 || end < start || end < min_live {
        return None;
    }
    let stored = session_key(key, start, end);
    let bound = Bound::Included(stored.clone());
    Some(Query {
        time_from: end,
        time_to: end,
        lower: bound.clone(),
        upper: bound,
        keep: Box::new(move |k: &[u8]| k == stored),
    })
}

impl SegmentedSessionStore {
    /// Opens the session store `name` in `backend`, with its changelog partition (`None`:
    /// not logged). Call [`StateStore::restore`] before use when logged.
    ///
    /// # Errors
    /// `InvalidArgument` for a negative retention or a segment interval below 1 ms.
    pub fn open(
        name: &str,
        backend: Arc<dyn Backend>,
        changelog: Option<ChangelogPartition>,
        options: SessionStoreOptions,
    ) -> Result<SegmentedSessionStore> {
        let seg = Segmented::open(
            name,
            backend,
            changelog,
            Schema::Session,
            options.retention_ms,
            options.segment_interval_ms,
        )?;
        Ok(SegmentedSessionStore { seg })
    }

    /// The retention (ms).
    pub fn retention(&self) -> i64 {
        self.seg.retention()
    }

    /// The segment interval (ms).
    pub fn segment_interval(&self) -> i64 {
        self.seg.interval()
    }

    /// `retention.ms` for the changelog topic: the store's retention plus one day, as Kafka
    /// (the topic's cleanup policy is `compact,delete`).
    pub fn changelog_retention_ms(&self) -> i64 {
        self.seg
            .retention()
            .saturating_add(CHANGELOG_ADDITIONAL_RETENTION_MS)
    }

    /// The store's stream time: the largest session end put (-1 before any).
    pub fn observed_stream_time(&self) -> i64 {
        self.seg.observed()
    }

    /// Puts dropped because their session had expired, since the store was opened.
    pub fn dropped_expired(&self) -> u64 {
        self.seg.dropped_expired()
    }

    /// Ids of the segments that exist, ascending (segment `i` holds session ends in
    /// `[i * interval, (i + 1) * interval)`).
    pub fn segment_ids(&self) -> Vec<i64> {
        self.seg.segment_ids()
    }

    /// A read-only view of this store's committed state, for interactive queries (see
    /// [`ReadOnlySessionView`]).
    pub fn read_only_view(&self) -> ReadOnlySessionView {
        ReadOnlySessionView::of(
            self.seg.layers.backend().clone(),
            self.seg.store(),
            SessionStore::options(self),
        )
    }

    fn find_key(
        &self,
        key: &[u8],
        earliest_end: i64,
        latest_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        let Some(query) = find_query(key, earliest_end, latest_start, self.seg.min_live()) else {
            return Ok(Box::new(std::iter::empty()));
        };
        Ok(Box::new(self.seg.scan(query, reverse).map(to_windowed)))
    }

    fn find_keys(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_end: i64,
        latest_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        let Some(query) = find_range_query(
            self.seg.store(),
            key_from,
            key_to,
            earliest_end,
            latest_start,
            self.seg.min_live(),
        ) else {
            return Ok(Box::new(std::iter::empty()));
        };
        Ok(Box::new(self.seg.scan(query, reverse).map(to_windowed)))
    }
}

impl SessionStore for SegmentedSessionStore {
    fn put(&mut self, key: &[u8], session: Window, value: Option<Timestamped>) -> Result<()> {
        if session.start < 0 || session.end < session.start {
            return Err(self.seg.invalid(format!(
                "session [{}, {}] of key {} must have 0 <= start <= end",
                session.start,
                session.end,
                show_key(key)
            )));
        }
        if !self.seg.admit(session.end)? {
            return Ok(());
        }
        let stored = Bytes::from(session_key(key, session.start, session.end));
        self.seg.write(session.end, stored, value)
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Timestamped>> {
        let Some(query) = exact_query(key, start, end, self.seg.min_live()) else {
            return Ok(None);
        };
        let mut scan = self.seg.scan(query, false);
        scan.next().transpose().map(|o| o.map(|(_, v)| v))
    }

    fn find_sessions_directed(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        self.find_key(key, earliest_session_end, latest_session_start, reverse)
    }

    fn find_sessions_range_directed(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        self.find_keys(
            key_from,
            key_to,
            earliest_session_end,
            latest_session_start,
            reverse,
        )
    }

    fn find_sessions_ending(
        &self,
        earliest_session_end: i64,
        latest_session_end: i64,
    ) -> Result<WindowedIter<'_>> {
        let query = ending_query(
            earliest_session_end,
            latest_session_end,
            self.seg.min_live(),
        );
        Ok(Box::new(self.seg.scan(query, false).map(to_windowed)))
    }

    fn options(&self) -> SessionStoreOptions {
        SessionStoreOptions {
            retention_ms: self.seg.retention(),
            segment_interval_ms: self.seg.interval(),
        }
    }

    fn observed_stream_time(&self) -> i64 {
        self.seg.observed()
    }
}

impl StateStore for SegmentedSessionStore {
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

/// A session store of `K` → `V` over a byte-level [`SessionStore`].
///
/// ```
/// use std::sync::Arc;
/// use freshet_state_store::{
///     BigEndian, MemoryBackend, SegmentedSessionStore, SessionStoreOptions, TypedSessionStore,
///     Utf8, Window,
/// };
/// let inner = SegmentedSessionStore::open(
///     "clicks", Arc::new(MemoryBackend::new()), None, SessionStoreOptions::new(600_000))?;
/// let mut store = TypedSessionStore::new(inner, Utf8, BigEndian);
/// let ann = "ann".to_string();
/// store.put(&ann, Window { start: 0, end: 10 }, Some(&2u64), 10)?;
/// let found: Vec<_> = store.fetch::<String, u64>(&ann)?.collect::<Result<_, _>>()?;
/// assert_eq!((found[0].0.key.as_str(), found[0].1.value), ("ann", 2));
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug)]
pub struct TypedSessionStore<S, KS, VS> {
    inner: S,
    keys: KS,
    values: VS,
}

impl<S: SessionStore, KS, VS> TypedSessionStore<S, KS, VS> {
    /// Wraps a byte store with a key and a value serde.
    pub fn new(inner: S, keys: KS, values: VS) -> Self {
        TypedSessionStore {
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

    fn decoded<'a, K, V>(
        &'a self,
        raw: WindowedIter<'a>,
    ) -> impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        raw.map(move |item| decode_windowed(self.inner.name(), &self.keys, &self.values, item))
    }

    /// Puts `value` (at `timestamp`) as the aggregate of `key` in `session`; `None` removes.
    pub fn put<K, V>(
        &mut self,
        key: &K,
        session: Window,
        value: Option<&V>,
        timestamp: i64,
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
        self.inner.put(&k, session, v)
    }

    /// Removes the session.
    pub fn remove<K>(&mut self, key: &K, session: Window) -> Result<()>
    where
        KS: Serde<K>,
    {
        let k = self.key(key)?;
        self.inner.remove(&k, session)
    }

    /// The aggregate of `key` in exactly `[start, end]`.
    pub fn fetch_session<K, V>(
        &self,
        key: &K,
        start: i64,
        end: i64,
    ) -> Result<Option<Timestamped<V>>>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        match self.inner.fetch_session(&k, start, end)? {
            Some(v) => decode_value(self.inner.name(), &self.values, &k, v).map(Some),
            None => Ok(None),
        }
    }

    /// Sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start`.
    pub fn find_sessions<'a, K, V>(
        &'a self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        let raw = self
            .inner
            .find_sessions(&k, earliest_session_end, latest_session_start)?;
        Ok(self.decoded(raw))
    }

    /// [`TypedSessionStore::find_sessions`] in reverse.
    pub fn backward_find_sessions<'a, K, V>(
        &'a self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        let raw =
            self.inner
                .backward_find_sessions(&k, earliest_session_end, latest_session_start)?;
        Ok(self.decoded(raw))
    }

    /// Every session ending in `[earliest_session_end, latest_session_end]`.
    pub fn find_sessions_ending<'a, K, V>(
        &'a self,
        earliest_session_end: i64,
        latest_session_end: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let raw = self
            .inner
            .find_sessions_ending(earliest_session_end, latest_session_end)?;
        Ok(self.decoded(raw))
    }

    /// Every live session of `key`.
    pub fn fetch<'a, K, V>(
        &'a self,
        key: &K,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        Ok(self.decoded(self.inner.fetch(&k)?))
    }

    /// Every live session of keys in `[key_from, key_to]` (`None`: unbounded).
    pub fn fetch_range<'a, K, V>(
        &'a self,
        key_from: Option<&K>,
        key_to: Option<&K>,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let kf = key_from.map(|k| self.key(k)).transpose()?;
        let kt = key_to.map(|k| self.key(k)).transpose()?;
        let raw = self.inner.fetch_range(kf.as_deref(), kt.as_deref())?;
        Ok(self.decoded(raw))
    }
}
