//! What the caching window and session stores share: cache keys that sort as the store
//! iterates, the stream time and retention seen through the cache, writing flushed entries
//! down and forwarding them, and merging a cache snapshot into the store's iteration.

use std::ops::Bound;

use super::named::{CacheKey, Flushed, KeyBuf};
use super::{old_value, Registration, Rmw, ThreadCache, WindowedFlushListener};
use crate::error::{Error, Result};
use crate::layers::Timestamped;
use crate::segment::{min_live, segment_id, Query, Schema};
use crate::session::{session_key, session_windowed};
use crate::window::{window_key, windowed_key, Windowed, WindowedIter};
use bytes::Bytes;

/// Bytes of the segment id in front of a binary key in a cache key.
const PREFIX: usize = 8;

/// Past this many segments, a cache scan reads one range over all of them instead of one
/// per segment (the query's filter is exact either way).
const MAX_SEGMENT_RANGES: i64 = 16;

/// How one store lays out its keys and times.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub(super) schema: Schema,
    /// Window stores: the window size (entries carry their start only).
    pub(super) window_size: i64,
    pub(super) retention: i64,
    pub(super) interval: i64,
}

impl Layout {
    /// The cache key of a binary key: `[segment id: i64 BE][binary key]` (Kafka's
    /// `SegmentedCacheFunction.cacheKey`). Segment ids are never negative, so the cache
    /// sorts segment by segment, then by binary key: the store's iteration order.
    fn cache_key(&self, binary: &[u8]) -> Bytes {
        let time = self.schema.segment_time(binary).unwrap_or(0);
        let mut k = Vec::with_capacity(PREFIX + binary.len());
        k.extend_from_slice(&segment_id(time, self.interval).to_be_bytes());
        k.extend_from_slice(binary);
        Bytes::from(k)
    }

    /// The cache key of a window (sequence number 0) without building its binary key
    /// first: `[segment id][key][start][seq]` (the layout of `Schema::Window`).
    pub(super) fn window_cache_key(&self, key: &[u8], start: i64) -> KeyBuf {
        let mut k = KeyBuf::default();
        self.set_window_cache_key(&mut k, key, start);
        k
    }

    /// [`window_cache_key`](Self::window_cache_key) written into `k` where it lies: a key
    /// built aside and returned was copied whole right after its parts were stored, a
    /// stall on every update.
    pub(super) fn set_window_cache_key(&self, k: &mut KeyBuf, key: &[u8], start: i64) {
        k.set([
            &segment_id(start, self.interval).to_be_bytes(),
            key,
            &start.to_be_bytes(),
            &0u32.to_be_bytes(),
        ]);
        debug_assert_eq!(k.as_ref(), &self.cache_key(&window_key(key, start, 0))[..]);
    }

    /// The cache key of a session: `[segment id][key][end][start]` (the layout of
    /// `Schema::Session`, segmented by the session's end).
    pub(super) fn session_cache_key(&self, key: &[u8], start: i64, end: i64) -> KeyBuf {
        let k = KeyBuf::concat([
            &segment_id(end, self.interval).to_be_bytes(),
            key,
            &end.to_be_bytes(),
            &start.to_be_bytes(),
        ]);
        debug_assert_eq!(
            k.as_ref(),
            &self.cache_key(&session_key(key, start, end))[..]
        );
        k
    }

    /// The windowed key of a cache key.
    fn windowed(&self, cache_key: &Bytes) -> Windowed<Bytes> {
        let binary = cache_key.slice(PREFIX.min(cache_key.len())..);
        match self.schema {
            Schema::Window => windowed_key(self.window_size, &binary),
            Schema::Session => session_windowed(&binary),
        }
    }

    /// The time that places a window or session in a segment (and expires it).
    fn time(&self, w: &Windowed<Bytes>) -> i64 {
        match self.schema {
            Schema::Window => w.window.start,
            Schema::Session => w.window.end,
        }
    }

    /// The cache key a store entry would have (caching stores never retain duplicates, so
    /// a window's sequence number is 0).
    fn cache_key_of(&self, w: &Windowed<Bytes>) -> Bytes {
        let binary = match self.schema {
            Schema::Window => window_key(&w.key, w.window.start, 0),
            Schema::Session => session_key(&w.key, w.window.start, w.window.end),
        };
        self.cache_key(&binary)
    }
}

/// The store under a caching layer, as the write-down sees it.
pub(super) trait Target {
    /// The store's value of a window or session (the old value forwarded).
    fn old_value(&self, w: &Windowed<Bytes>) -> Result<Option<Timestamped>>;
    /// Writes a flushed entry down; `stored` is its binary key (the cache key without the
    /// segment prefix), which a window store keeps as is instead of building it again.
    fn write(
        &mut self,
        w: &Windowed<Bytes>,
        stored: Bytes,
        value: Option<Timestamped>,
    ) -> Result<()>;
    /// The store's own stream time.
    fn stream_time(&self) -> i64;
}

/// The caching half of a caching window or session store.
pub(super) struct Core {
    pub(super) store: String,
    pub(super) reg: Option<Registration>,
    pub(super) listener: Option<WindowedFlushListener>,
    pub(super) send_old_values: bool,
    pub(super) layout: Layout,
    /// The largest segment time put through this layer since the last abort or restore:
    /// the store's stream time once the cache is written down.
    observed: i64,
    dropped_expired: u64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("namespace", &self.reg.as_ref().map(|r| &r.ns))
            .field("listener", &self.listener.is_some())
            .field("send_old_values", &self.send_old_values)
            .field("layout", &self.layout)
            .field("observed", &self.observed)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Registers the named cache `<task>-<store>` in `cache`.
    pub(super) fn new(
        store: &str,
        cache: &ThreadCache,
        task: &str,
        layout: Layout,
    ) -> Result<Core> {
        let reg = cache.register(format!("{task}-{store}"))?;
        let mut core = Core::disabled(store, layout);
        core.reg = Some(reg);
        Ok(core)
    }

    /// No cache: every put goes down at once.
    pub(super) fn disabled(store: &str, layout: Layout) -> Core {
        Core {
            store: store.to_string(),
            reg: None,
            listener: None,
            send_old_values: false,
            layout,
            observed: crate::segment::NO_TIMESTAMP,
            dropped_expired: 0,
        }
    }

    /// The cache to put into (`None`: write through — disabled, or a budget of 0).
    pub(super) fn caching(&self) -> Option<&Registration> {
        self.reg.as_ref().filter(|r| r.caching())
    }

    /// The stream time reads see: the store's, or later when cached puts are.
    pub(super) fn stream_time(&self, store_stream_time: i64) -> i64 {
        store_stream_time.max(self.observed)
    }

    /// The oldest live segment time at [`Core::stream_time`].
    pub(super) fn min_live(&self, store_stream_time: i64) -> i64 {
        min_live(self.stream_time(store_stream_time), self.layout.retention)
    }

    pub(super) fn dropped_expired(&self) -> u64 {
        self.dropped_expired
    }

    /// Forgets what the cache held (an abort, a restore): its stream time goes with it.
    pub(super) fn clear(&mut self) -> Result<()> {
        self.observed = crate::segment::NO_TIMESTAMP;
        match &self.reg {
            Some(reg) => reg.clear(),
            None => Ok(()),
        }
    }

    /// Observes stream time as the store would; `false` when the put is expired and
    /// dropped, as the store would drop it (a put the store never applies is never
    /// forwarded either).
    pub(super) fn admit(&mut self, store_stream_time: i64, time: i64) -> bool {
        self.observed = self.observed.max(time);
        if time < self.min_live(store_stream_time) {
            self.dropped_expired += 1;
            tracing::debug!(store = %self.store, time, stream_time = self.stream_time(store_stream_time), retention = self.layout.retention, "skipping a cached write to an expired window");
            return false;
        }
        true
    }

    /// Whether a put at `time` would be admitted ([`Core::admit`] without its effects).
    pub(super) fn would_admit(&self, store_stream_time: i64, time: i64) -> bool {
        let stream_time = self.stream_time(store_stream_time).max(time);
        time >= min_live(stream_time, self.layout.retention)
    }

    /// A read-modify-write of a cache key in the cache (see [`Rmw`]; not caching: `Parked`,
    /// the ordinary way).
    pub(super) fn modify<F, E>(
        &self,
        key: &KeyBuf,
        buf: &mut Vec<u8>,
        f: &mut Option<F>,
        evicted: &mut Vec<Flushed>,
    ) -> Result<Rmw<E>>
    where
        F: FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> std::result::Result<i64, E>,
    {
        match &self.reg {
            Some(reg) => reg.modify(key.as_ref(), buf, f, evicted),
            None => Ok(Rmw::Parked),
        }
    }

    /// Puts a cache key's new value into the cache; returns what must go down now (all of
    /// it when not caching, else what an eviction flushed).
    pub(super) fn put(&mut self, key: KeyBuf, value: Option<Timestamped>) -> Result<Vec<Flushed>> {
        match &self.reg {
            Some(reg) => reg.put(key, value),
            None => Ok(vec![Flushed::through(key.into_bytes(), value)]),
        }
    }

    /// The cached value of a cache key: `Some(None)` for a cached deletion, `None` when
    /// the cache does not know it.
    pub(super) fn get(&self, key: &KeyBuf) -> Result<Option<Option<Timestamped>>> {
        match &self.reg {
            Some(reg) => reg.get(key.as_ref()),
            None => Ok(None),
        }
    }

    /// Commit step 1: every dirty entry (and any parked one) goes down, in latest-update
    /// order.
    pub(super) fn flush(&mut self, target: &mut dyn Target) -> Result<()> {
        super::flush_in_pieces(
            self,
            |s| s.reg.as_ref(),
            |s, piece| s.write_down(piece, target),
        )
    }

    /// Writes down entries another store's eviction flushed; every writing call starts here.
    pub(super) fn drain(&mut self, target: &mut dyn Target) -> Result<()> {
        let Some(reg) = &self.reg else {
            return Ok(());
        };
        let parked = reg.take_parked()?;
        self.write_down(parked, target)
    }

    /// Kafka's `putAndMaybeForward`, per entry in order: read the old value when it is
    /// wanted (from the cache when it knows what the store holds), skip a deletion of an
    /// absent window, write, forward.
    ///
    /// An entry the store would drop as expired is handed to it (it counts the drop) but
    /// not forwarded: downstream never hears of a write the store did not make. (Entries
    /// are written down in latest-update order, or the least recently used first, so an
    /// entry live when put should still be live at the store then; this is a guard.)
    pub(super) fn write_down(
        &mut self,
        entries: impl IntoIterator<Item = Flushed>,
        target: &mut dyn Target,
    ) -> Result<()> {
        for Flushed {
            key,
            value: new,
            stored,
        } in entries
        {
            let w = self.layout.windowed(&key);
            let binary = key.slice(PREFIX.min(key.len())..);
            let expired =
                self.layout.time(&w) < min_live(target.stream_time(), self.layout.retention);
            let Some(listener) = self.listener.as_mut().filter(|_| !expired) else {
                target.write(&w, binary, new)?;
                continue;
            };
            let old = if new.is_none() || self.send_old_values {
                // A live window's store value is what this layer last wrote down (or what
                // it held before), so what the cache knows is what the store answers.
                old_value(stored, || target.old_value(&w))?
            } else {
                None
            };
            if new.is_none() && old.is_none() {
                // Absent from the store and deleted in the cache: nothing changed, nothing
                // goes downstream. The store still writes the deletion when it would
                // advance its stream time, which must end up where the puts took it.
                if self.layout.time(&w) > target.stream_time() {
                    target.write(&w, binary, None)?;
                }
                continue;
            }
            target.write(&w, binary, new.clone())?;
            let old = if self.send_old_values {
                old.as_ref()
            } else {
                None
            };
            listener(&w, new.as_ref(), old);
        }
        Ok(())
    }

    /// Refuses to send the changelog while updates wait in the cache.
    pub(super) fn check_flushed(&self) -> Result<()> {
        if let Some(reg) = &self.reg {
            if reg.has_unflushed()? {
                return Err(Error::InvalidArgument {
                    store: self.store.clone(),
                    reason: "the record cache holds updates not yet written down: flush the \
                             caches before sending changelogs (commit step 1)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// The cached entries `query` matches (deletions as `None`), in the store's order
    /// (reversed when `reverse`). Only segments up to the stream time can hold any.
    fn snapshot(
        &self,
        query: &Query,
        store_stream_time: i64,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Option<Timestamped>)>> {
        let Some(reg) = &self.reg else {
            return Ok(Vec::new());
        };
        let to = query.time_to.min(self.stream_time(store_stream_time));
        if to < query.time_from {
            return Ok(Vec::new());
        }
        let interval = self.layout.interval;
        let (first, last) = (
            segment_id(query.time_from, interval),
            segment_id(to, interval),
        );
        let mut out = Vec::new();
        if last - first < MAX_SEGMENT_RANGES {
            for id in first..=last {
                let (lower, upper) = segment_bounds(id, &query.lower, &query.upper);
                out.extend(reg.range(as_ref(&lower), as_ref(&upper))?);
            }
        } else {
            let lower = Bound::Included(first.to_be_bytes().to_vec());
            let upper = match last.checked_add(1) {
                Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
                None => Bound::Unbounded,
            };
            out = reg.range(as_ref(&lower), as_ref(&upper))?;
        }
        out.retain(|(k, _)| k.len() >= PREFIX && (query.keep)(&k[PREFIX..]));
        if reverse {
            out.reverse();
        }
        Ok(out)
    }

    /// The store's entries for `query` with the cache merged over them: one iteration in
    /// the store's order, the cache winning on equal keys, its deletions hiding the store's
    /// entries.
    pub(super) fn merge<'a>(
        &self,
        query: &Query,
        store_stream_time: i64,
        reverse: bool,
        store: WindowedIter<'a>,
    ) -> Result<WindowedIter<'a>> {
        let cached = self.snapshot(query, store_stream_time, reverse)?;
        if cached.is_empty() {
            return Ok(store);
        }
        let layout = self.layout;
        let store: SortedIter<'a> =
            Box::new(store.map(move |item| item.map(|(w, v)| (layout.cache_key_of(&w), w, v))));
        Ok(Box::new(Merge {
            layout,
            reverse,
            cache: cached.into_iter().peekable(),
            store: store.peekable(),
        }))
    }
}

/// The bounds of a query's binary keys inside segment `id`, as cache keys.
fn segment_bounds(
    id: i64,
    lower: &Bound<Vec<u8>>,
    upper: &Bound<Vec<u8>>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefixed = |k: &Vec<u8>| {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(k);
        p
    };
    let lower = match lower {
        Bound::Included(k) => Bound::Included(prefixed(k)),
        Bound::Excluded(k) => Bound::Excluded(prefixed(k)),
        Bound::Unbounded => Bound::Included(id.to_be_bytes().to_vec()),
    };
    let upper = match upper {
        Bound::Included(k) => Bound::Included(prefixed(k)),
        Bound::Excluded(k) => Bound::Excluded(prefixed(k)),
        Bound::Unbounded => match id.checked_add(1) {
            Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
            None => Bound::Unbounded,
        },
    };
    (lower, upper)
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// Store entries with their cache keys, to merge by.
type SortedIter<'a> =
    Box<dyn Iterator<Item = Result<(Bytes, Windowed<Bytes>, Timestamped)>> + Send + 'a>;

/// Merges a cache snapshot into the store's iteration (see [`Core::merge`]).
struct Merge<'a> {
    layout: Layout,
    reverse: bool,
    cache: std::iter::Peekable<std::vec::IntoIter<(Bytes, Option<Timestamped>)>>,
    store: std::iter::Peekable<SortedIter<'a>>,
}

impl Iterator for Merge<'_> {
    type Item = Result<(Windowed<Bytes>, Timestamped)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_cache = match (self.cache.peek(), self.store.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) | (Some(_), Some(Err(_))) => false,
                (Some((ck, _)), Some(Ok((sk, _, _)))) => {
                    if ck == sk {
                        // The cache shadows the store's value.
                        self.store.next();
                        true
                    } else {
                        (ck < sk) != self.reverse
                    }
                }
            };
            if !take_cache {
                return self.store.next().map(|item| item.map(|(_, w, v)| (w, v)));
            }
            if let Some((k, Some(v))) = self.cache.next() {
                return Some(Ok((self.layout.windowed(&k), v)));
            }
            // A cached deletion: skip it.
        }
    }
}
