//! The window store behind the record cache (Kafka's `CachingWindowStore`).

use std::fmt;

use bytes::Bytes;

use super::named::KeyBuf;
use super::segmented::{Core, Layout, Target};
use super::{Rmw, ThreadCache};
use crate::changelog::{ChangelogReader, ChangelogSink};
use crate::error::{show_key, Error, Result};
use crate::layers::{RestoreStats, Timestamped};
use crate::segment::Schema;
use crate::store::StateStore;
use crate::window::{
    key_query, range_query, Window, WindowStore, WindowStoreOptions, WindowValueIter, Windowed,
    WindowedIter,
};

/// A window store behind the thread's record cache (Kafka's `CachingWindowStore`; see the
/// [`ThreadCache`](super::ThreadCache) for flush order, eviction and accounting).
///
/// Puts go into the cache under the store's binary window key; repeated puts of a window
/// between flushes collapse into one entry. On [`flush`](Self::flush) (commit step 1) or on
/// eviction, entries go down to the store and to the flush listener as
/// `(windowed key, new value, old value)`, in the order of each entry's latest update.
/// Reads merge the cache over the store in the store's own order. A disabled cache (made
/// with [`disabled`](Self::disabled), or a thread cache of 0 bytes) writes every put down
/// and forwards it at once.
///
/// Stream time and retention see the cache: the stream time is the largest window start
/// put, cached or not, and a put of a window already expired is dropped (counted in
/// [`dropped_expired`](Self::dropped_expired)) and never forwarded, as the store drops it;
/// reads hide expired windows. A store that retains duplicates (join buffers) is never
/// cached, as in Kafka: every put is written down and forwarded with no old value.
///
/// As with [`CachingKvStore`](super::CachingKvStore), the runtime flushes every caching
/// store before sending changelogs ([`StateStore::send_changelog`] refuses otherwise), and
/// dropping the store without [`close`](Self::close) discards unflushed updates.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use freshet_state_store::{
///     CachingWindowStore, MemoryBackend, SegmentedWindowStore, ThreadCache, Timestamped,
///     Window, WindowStore, WindowStoreOptions, Windowed,
/// };
/// let cache = ThreadCache::new(1 << 20);
/// let inner = SegmentedWindowStore::open(
///     "counts", Arc::new(MemoryBackend::new()), None, WindowStoreOptions::new(600_000, 60_000))?;
/// let mut store = CachingWindowStore::new(inner, &cache, "0_0")?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// store.set_flush_listener(
///     move |w: &Windowed<Bytes>, new: Option<&Timestamped>, _old: Option<&Timestamped>| {
///         sink.lock().unwrap().push((w.window, new.map(|v| v.value.clone())));
///     },
///     false,
/// );
/// for n in ["1", "2", "3"] {
///     store.put(b"ann", Some(Timestamped { value: Bytes::from(n), timestamp: 7 }), 0)?;
/// }
/// assert_eq!(store.fetch_one(b"ann", 0)?.map(|v| v.value), Some(Bytes::from("3")));
/// assert!(seen.lock().unwrap().is_empty(), "nothing goes downstream before a flush");
/// store.flush()?;
/// let window = Window { start: 0, end: 60_000 };
/// assert_eq!(*seen.lock().unwrap(), vec![(window, Some(Bytes::from("3")))]);
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
pub struct CachingWindowStore<S> {
    inner: S,
    core: Core,
    retain_duplicates: bool,
}

impl<S: fmt::Debug> fmt::Debug for CachingWindowStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingWindowStore")
            .field("inner", &self.inner)
            .field("core", &self.core)
            .finish()
    }
}

/// The store under the cache, for write-downs.
struct Down<'a, S>(&'a mut S);

impl<S: WindowStore> Target for Down<'_, S> {
    fn old_value(&self, w: &Windowed<Bytes>) -> Result<Option<Timestamped>> {
        self.0.fetch_one(&w.key, w.window.start)
    }

    fn write(
        &mut self,
        w: &Windowed<Bytes>,
        stored: Bytes,
        value: Option<Timestamped>,
    ) -> Result<()> {
        self.0.put_stored(stored, value, w.window.start)
    }

    fn stream_time(&self) -> i64 {
        self.0.observed_stream_time()
    }
}

fn layout(options: &WindowStoreOptions) -> Layout {
    Layout {
        schema: Schema::Window,
        window_size: options.window_size_ms,
        retention: options.retention_ms,
        interval: options.segment_interval_ms,
    }
}

impl<S: WindowStore> CachingWindowStore<S> {
    /// Puts `inner` behind `cache`, in the named cache `<task>-<store>` (a store that
    /// retains duplicates is not cached, as Kafka's `WindowStoreBuilder` logs and does).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when that named cache is already registered.
    pub fn new(inner: S, cache: &ThreadCache, task: &str) -> Result<CachingWindowStore<S>> {
        let options = inner.options();
        if options.retain_duplicates {
            tracing::warn!(store = %inner.name(), "not caching a window store that retains duplicates");
            return Ok(CachingWindowStore::disabled(inner));
        }
        let core = Core::new(inner.name(), cache, task, layout(&options))?;
        Ok(CachingWindowStore {
            inner,
            core,
            retain_duplicates: false,
        })
    }

    /// `inner` with caching disabled (`Materialized::with_caching_disabled`): every put is
    /// written down and forwarded at once.
    pub fn disabled(inner: S) -> CachingWindowStore<S> {
        let options = inner.options();
        let core = Core::disabled(inner.name(), layout(&options));
        CachingWindowStore {
            inner,
            core,
            retain_duplicates: options.retain_duplicates,
        }
    }

    /// Sets where updates go downstream; with `send_old_values` the listener also gets each
    /// window's value before the update (Kafka's `setFlushListener`).
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

    /// Whether puts are cached (false when disabled, for a store that retains duplicates,
    /// or when the thread's budget is 0).
    pub fn is_caching(&self) -> bool {
        self.core.caching().is_some()
    }

    /// The budget of the thread cache this store caches in (its share of
    /// `statestore.cache.max.bytes`; 0 when puts are not cached).
    pub fn cache_budget(&self) -> usize {
        self.core.caching().map_or(0, |r| r.max_bytes())
    }

    /// The store underneath (reads only: writing to it directly would bypass the cache).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Puts this layer dropped because their window had already expired (the store counts
    /// its own drops).
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

    /// Kafka's read-then-put of a window aggregation in one step: `f` gets the window's
    /// value (`None`: absent) and writes the new value into `buf`, returning its timestamp;
    /// the store then holds it as [`put`](WindowStore::put) would.
    ///
    /// The same as [`fetch_one`](WindowStore::fetch_one), `f`, then `put` (the same cache,
    /// store and forwarding effects), but a window the cache holds costs one cache key, one
    /// lookup and one lock of the thread cache, and its value is read and replaced in place.
    /// When `f` fails nothing is put and its error is returned.
    ///
    /// # Errors
    /// As `fetch_one` and `put`.
    pub fn update<E>(
        &mut self,
        key: &[u8],
        window_start: i64,
        buf: &mut Vec<u8>,
        f: impl FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> std::result::Result<i64, E>,
    ) -> Result<std::result::Result<(), E>> {
        let store_time = self.inner.observed_stream_time();
        let mut f = Some(f);
        let mut evicted = Vec::new();
        if !self.retain_duplicates
            && window_start >= 0
            && self.core.would_admit(store_time, window_start)
        {
            let mut cache_key = KeyBuf::default();
            self.core
                .layout
                .set_window_cache_key(&mut cache_key, key, window_start);
            match self.core.modify(&cache_key, buf, &mut f, &mut evicted)? {
                Rmw::Done => {
                    self.core.admit(store_time, window_start);
                    return Ok(Ok(()));
                }
                Rmw::Evicted => {
                    self.core.admit(store_time, window_start);
                    self.core.write_down(evicted, &mut Down(&mut self.inner))?;
                    return Ok(Ok(()));
                }
                Rmw::Failed(e) => return Ok(Err(e)),
                Rmw::Miss => {
                    // `fetch_one`'s miss: the store's value (the miss is counted).
                    let found = self.inner.fetch_one(key, window_start)?;
                    return self.put_computed(key, window_start, found, buf, f);
                }
                Rmw::Parked => {}
            }
        }
        let found = self.fetch_one(key, window_start)?;
        self.put_computed(key, window_start, found, buf, f)
    }

    /// `f` over `found`, then a put of what it wrote into `buf`.
    fn put_computed<E>(
        &mut self,
        key: &[u8],
        window_start: i64,
        found: Option<Timestamped>,
        buf: &mut Vec<u8>,
        f: Option<
            impl FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> std::result::Result<i64, E>,
        >,
    ) -> Result<std::result::Result<(), E>> {
        let value = match super::computed(self.inner.name(), found, buf, f)? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        self.put(key, Some(value), window_start)?;
        Ok(Ok(()))
    }

    fn min_live(&self) -> i64 {
        self.core.min_live(self.inner.observed_stream_time())
    }

    fn values(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowValueIter<'_>> {
        let Some(query) = key_query(key, time_from, time_to, self.min_live()) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let store = if reverse {
            self.inner.backward_fetch(key, query.time_from, time_to)?
        } else {
            self.inner.fetch(key, query.time_from, time_to)?
        };
        let (owned, size) = (Bytes::copy_from_slice(key), self.core.layout.window_size);
        let store: WindowedIter<'_> = Box::new(store.map(move |item| {
            item.map(|(start, v)| {
                let window = Window {
                    start,
                    end: start.saturating_add(size),
                };
                let key = owned.clone();
                (Windowed { key, window }, v)
            })
        }));
        let merged = self
            .core
            .merge(&query, self.inner.observed_stream_time(), reverse, store)?;
        Ok(Box::new(
            merged.map(|item| item.map(|(w, v)| (w.window.start, v))),
        ))
    }

    fn windows(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        let Some(query) = range_query(
            self.inner.name(),
            key_from,
            key_to,
            time_from,
            time_to,
            self.min_live(),
        ) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let store = if reverse {
            self.inner
                .backward_fetch_range(key_from, key_to, query.time_from, time_to)?
        } else {
            self.inner
                .fetch_range(key_from, key_to, query.time_from, time_to)?
        };
        self.core
            .merge(&query, self.inner.observed_stream_time(), reverse, store)
    }
}

impl<S: WindowStore> WindowStore for CachingWindowStore<S> {
    fn put(&mut self, key: &[u8], value: Option<Timestamped>, window_start: i64) -> Result<()> {
        if window_start < 0 {
            return Err(Error::InvalidArgument {
                store: self.inner.name().to_string(),
                reason: format!(
                    "window start {window_start} of key {} is negative",
                    show_key(key)
                ),
            });
        }
        self.core.drain(&mut Down(&mut self.inner))?;
        if !self
            .core
            .admit(self.inner.observed_stream_time(), window_start)
        {
            return Ok(());
        }
        if self.retain_duplicates {
            // Every put is its own entry (Kafka never caches these stores): down it goes.
            self.inner.put(key, value.clone(), window_start)?;
            if let (Some(listener), Some(new)) = (self.core.listener.as_mut(), value.as_ref()) {
                let window = Window {
                    start: window_start,
                    end: window_start.saturating_add(self.core.layout.window_size),
                };
                let w = Windowed {
                    key: Bytes::copy_from_slice(key),
                    window,
                };
                listener(&w, Some(new), None);
            }
            return Ok(());
        }
        let cache_key = self.core.layout.window_cache_key(key, window_start);
        let flushed = self.core.put(cache_key, value)?;
        self.core.write_down(flushed, &mut Down(&mut self.inner))
    }

    fn fetch_one(&self, key: &[u8], window_start: i64) -> Result<Option<Timestamped>> {
        if window_start < self.min_live() {
            return Ok(None);
        }
        if !self.retain_duplicates {
            let cache_key = self.core.layout.window_cache_key(key, window_start);
            if let Some(hit) = self.core.get(&cache_key)? {
                return Ok(hit);
            }
        }
        self.inner.fetch_one(key, window_start)
    }

    fn fetch_directed(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowValueIter<'_>> {
        self.values(key, time_from, time_to, reverse)
    }

    fn fetch_range_directed(
        &self,
        key_from: Option<&[u8]>,
        key_to: Option<&[u8]>,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<WindowedIter<'_>> {
        self.windows(key_from, key_to, time_from, time_to, reverse)
    }

    fn options(&self) -> WindowStoreOptions {
        self.inner.options()
    }

    fn observed_stream_time(&self) -> i64 {
        self.core.stream_time(self.inner.observed_stream_time())
    }
}

impl<S: WindowStore> StateStore for CachingWindowStore<S> {
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
