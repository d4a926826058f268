//! The session store behind the record cache (Kafka's `CachingSessionStore`).

use std::fmt;

use bytes::Bytes;

use super::segmented::{Core, Layout, Target};
use super::ThreadCache;
use crate::changelog::{ChangelogReader, ChangelogSink};
use crate::error::{show_key, Error, Result};
use crate::layers::{RestoreStats, Timestamped};
use crate::segment::Schema;
use crate::session::{
    ending_query, exact_query, find_query, find_range_query, SessionStore, SessionStoreOptions,
};
use crate::store::StateStore;
use crate::window::{Window, Windowed, WindowedIter};

/// A session store behind the thread's record cache (Kafka's `CachingSessionStore`; see the
/// [`ThreadCache`](super::ThreadCache) for flush order, eviction and accounting).
///
/// Puts and removes go into the cache under the store's binary session key; on
/// [`flush`](Self::flush) (commit step 1) or on eviction they go down to the store and to
/// the flush listener as `(windowed key, new value, old value)`, in the order of each
/// entry's latest update — so a session merged away and removed before a flush is
/// forwarded once, as a removal, and only if the store had it. Reads (`find_sessions` and
/// the rest) merge the cache over the store in the store's own order. A disabled cache
/// (made with [`disabled`](Self::disabled), or a thread cache of 0 bytes) writes every put
/// down and forwards it at once.
///
/// Stream time and retention see the cache: the stream time is the largest session end
/// put, cached or not; a put of a session already expired is dropped (counted in
/// [`dropped_expired`](Self::dropped_expired)) and never forwarded, as the store drops it;
/// reads hide expired sessions.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use freshet_state_store::{
///     CachingSessionStore, MemoryBackend, SegmentedSessionStore, SessionStore,
///     SessionStoreOptions, ThreadCache, Timestamped, Window, Windowed,
/// };
/// let cache = ThreadCache::new(1 << 20);
/// let inner = SegmentedSessionStore::open(
///     "clicks", Arc::new(MemoryBackend::new()), None, SessionStoreOptions::new(600_000))?;
/// let mut store = CachingSessionStore::new(inner, &cache, "0_0")?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// store.set_flush_listener(
///     move |w: &Windowed<Bytes>, new: Option<&Timestamped>, _old: Option<&Timestamped>| {
///         sink.lock().unwrap().push((w.window, new.map(|v| v.value.clone())));
///     },
///     false,
/// );
/// let v = |n: &str, ts| Some(Timestamped { value: Bytes::copy_from_slice(n.as_bytes()), timestamp: ts });
/// // A record at 0 opens a session; one at 10 merges it into [0, 10].
/// store.put(b"ann", Window { start: 0, end: 0 }, v("1", 0))?;
/// store.remove(b"ann", Window { start: 0, end: 0 })?;
/// store.put(b"ann", Window { start: 0, end: 10 }, v("2", 10))?;
/// store.flush()?;
/// // The short-lived session never reached the store: only the merged one goes downstream.
/// assert_eq!(*seen.lock().unwrap(), vec![(Window { start: 0, end: 10 }, Some(Bytes::from("2")))]);
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
pub struct CachingSessionStore<S> {
    inner: S,
    core: Core,
}

impl<S: fmt::Debug> fmt::Debug for CachingSessionStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingSessionStore")
            .field("inner", &self.inner)
            .field("core", &self.core)
            .finish()
    }
}

/// The store under the cache, for write-downs.
struct Down<'a, S>(&'a mut S);

impl<S: SessionStore> Target for Down<'_, S> {
    fn old_value(&self, w: &Windowed<Bytes>) -> Result<Option<Timestamped>> {
        self.0.fetch_session(&w.key, w.window.start, w.window.end)
    }

    fn write(
        &mut self,
        w: &Windowed<Bytes>,
        _stored: Bytes,
        value: Option<Timestamped>,
    ) -> Result<()> {
        self.0.put(&w.key, w.window, value)
    }

    fn stream_time(&self) -> i64 {
        self.0.observed_stream_time()
    }
}

fn layout(options: &SessionStoreOptions) -> Layout {
    Layout {
        schema: Schema::Session,
        window_size: 0,
        retention: options.retention_ms,
        interval: options.segment_interval_ms,
    }
}

impl<S: SessionStore> CachingSessionStore<S> {
    /// Puts `inner` behind `cache`, in the named cache `<task>-<store>`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when that named cache is already registered.
    pub fn new(inner: S, cache: &ThreadCache, task: &str) -> Result<CachingSessionStore<S>> {
        let core = Core::new(inner.name(), cache, task, layout(&inner.options()))?;
        Ok(CachingSessionStore { inner, core })
    }

    /// `inner` with caching disabled (`Materialized::with_caching_disabled`): every put is
    /// written down and forwarded at once.
    pub fn disabled(inner: S) -> CachingSessionStore<S> {
        let core = Core::disabled(inner.name(), layout(&inner.options()));
        CachingSessionStore { inner, core }
    }

    /// Sets where updates go downstream; with `send_old_values` the listener also gets each
    /// session's value before the update (Kafka's `setFlushListener`).
    pub fn set_flush_listener(
        &mut self,
        listener: impl FnMut(&Windowed<Bytes>, Option<&Timestamped>, Option<&Timestamped>)
            + Send
            + 'static,
        send_old_values: bool,
    ) {
        self.core.listener = Some(Box::new(listener));
        self.core.send_old_values = send_old_values;
    }

    /// Whether puts are cached (false when disabled or the thread's budget is 0).
    pub fn is_caching(&self) -> bool {
        self.core.caching().is_some()
    }

    /// The store underneath (reads only: writing to it directly would bypass the cache).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Puts this layer dropped because their session had already expired (the store
    /// counts its own drops).
    pub fn dropped_expired(&self) -> u64 {
        self.core.dropped_expired()
    }

    /// Commit step 1: writes every dirty entry down to the store and forwards it, in
    /// latest-update order.
    pub fn flush(&mut self) -> Result<()> {
        self.core.flush(&mut Down(&mut self.inner))
    }

    /// Flushes, leaves the thread cache and gives the store back.
    pub fn close(mut self) -> Result<S> {
        self.flush()?;
        drop(self.core.reg.take());
        Ok(self.inner)
    }

    fn min_live(&self) -> i64 {
        self.core.min_live(self.inner.observed_stream_time())
    }

    fn find(
        &self,
        key: &[u8],
        earliest_end: i64,
        latest_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        let Some(query) = find_query(key, earliest_end, latest_start, self.min_live()) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let store = if reverse {
            self.inner
                .backward_find_sessions(key, query.time_from, latest_start)?
        } else {
            self.inner
                .find_sessions(key, query.time_from, latest_start)?
        };
        self.core
            .merge(&query, self.inner.observed_stream_time(), reverse, store)
    }

    fn find_range(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_end: i64,
        latest_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        let Some(query) = find_range_query(
            self.inner.name(),
            key_from,
            key_to,
            earliest_end,
            latest_start,
            self.min_live(),
        ) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let store = if reverse {
            self.inner.backward_find_sessions_range(
                key_from,
                key_to,
                query.time_from,
                latest_start,
            )?
        } else {
            self.inner
                .find_sessions_range(key_from, key_to, query.time_from, latest_start)?
        };
        self.core
            .merge(&query, self.inner.observed_stream_time(), reverse, store)
    }
}

impl<S: SessionStore> SessionStore for CachingSessionStore<S> {
    fn put(&mut self, key: &[u8], session: Window, value: Option<Timestamped>) -> Result<()> {
        if session.start < 0 || session.end < session.start {
            return Err(Error::InvalidArgument {
                store: self.inner.name().to_string(),
                reason: format!(
                    "session [{}, {}] of key {} must have 0 <= start <= end",
                    session.start,
                    session.end,
                    show_key(key)
                ),
            });
        }
        self.core.drain(&mut Down(&mut self.inner))?;
        if !self
            .core
            .admit(self.inner.observed_stream_time(), session.end)
        {
            return Ok(());
        }
        let cache_key = self
            .core
            .layout
            .session_cache_key(key, session.start, session.end);
        let flushed = self.core.put(cache_key, value)?;
        self.core.write_down(flushed, &mut Down(&mut self.inner))
    }

    fn fetch_session(&self, key: &[u8], start: i64, end: i64) -> Result<Option<Timestamped>> {
        if exact_query(key, start, end, self.min_live()).is_none() {
            return Ok(None);
        }
        if let Some(hit) = self
            .core
            .get(&self.core.layout.session_cache_key(key, start, end))?
        {
            return Ok(hit);
        }
        self.inner.fetch_session(key, start, end)
    }

    fn find_sessions_directed(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        self.find(key, earliest_session_end, latest_session_start, reverse)
    }

    fn find_sessions_range_directed(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        earliest_session_end: i64,
        latest_session_start: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        self.find_range(
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
        let query = ending_query(earliest_session_end, latest_session_end, self.min_live());
        let store = self
            .inner
            .find_sessions_ending(query.time_from, latest_session_end)?;
        self.core
            .merge(&query, self.inner.observed_stream_time(), false, store)
    }

    fn options(&self) -> SessionStoreOptions {
        self.inner.options()
    }

    fn observed_stream_time(&self) -> i64 {
        self.core.stream_time(self.inner.observed_stream_time())
    }
}

impl<S: SessionStore> StateStore for CachingSessionStore<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        self.core.check_flushed()?;
        self.inner.send_changelog(sink)
    }

    fn committed(&mut self) {
        self.inner.committed();
    }

    fn apply(&mut self) -> Result<()> {
        self.inner.apply()
    }

    fn abort(&mut self) {
        // Cached values may come from writes the abort takes back.
        if let Err(e) = self.core.clear() {
            tracing::warn!(store = %self.inner.name(), error = %e, "cannot clear the record cache");
        }
        self.inner.abort();
    }

    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        self.core.clear()?;
        self.inner.restore(reader)
    }

    fn write_buffer_bytes(&self) -> usize {
        self.inner.write_buffer_bytes()
    }
}
