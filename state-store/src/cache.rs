//! The record cache and the caching stores; [`ThreadCache`] documents the cache's rules
//! (flush order, eviction, accounting, cost).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use slab::Slab;

use crate::error::{Error, Result};
use crate::layers::Timestamped;
use crate::window::Windowed;

mod budget;
mod kv;
mod named;
mod segmented;
mod session;
mod window;

pub use self::budget::WriteBufferBudget;
pub use self::kv::CachingKvStore;
pub use self::session::CachingSessionStore;
pub use self::window::CachingWindowStore;

use self::named::{CacheKey, Flushed, Modified, NamedCache, Stored};

/// The bytes counted for an entry whose key and value (`None`: a tombstone) have these
/// lengths.
fn entry_bytes(key_len: usize, value_len: Option<usize>) -> usize {
    key_len + value_len.unwrap_or(0) + ThreadCache::ENTRY_OVERHEAD_BYTES
}

/// What the cache did, for the `stream-record-cache-metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Puts into the cache (updates and entries cached by reads).
    pub puts: u64,
    /// Lookups.
    pub gets: u64,
    /// Lookups the cache answered.
    pub hits: u64,
    /// Lookups that went to the store.
    pub misses: u64,
    /// Entries evicted to stay within the budget.
    pub evictions: u64,
    /// Flushes (explicit ones and those caused by evicting a dirty entry).
    pub flushes: u64,
}

#[derive(Debug)]
struct State {
    max_bytes: usize,
    size_bytes: usize,
    /// The named caches, by the handle their [`Registration`] holds.
    caches: Slab<NamedCache>,
    /// Handles by name: registration refuses a name twice, and round-robin eviction walks
    /// the named caches in name order.
    names: BTreeMap<String, usize>,
    stats: CacheStats,
}

impl State {
    fn named(&mut self, id: usize) -> Result<&mut NamedCache> {
        self.caches
            .get_mut(id)
            .ok_or_else(|| Error::InvalidArgument {
                store: format!("named cache #{id}"),
                reason: "no such cache in the thread cache (closed?)".into(),
            })
    }

    /// Runs `f` on a named cache and keeps the thread-wide size in step with it.
    fn with_named<T>(&mut self, id: usize, f: impl FnOnce(&mut NamedCache) -> T) -> Result<T> {
        let cache = self.named(id)?;
        let before = cache.size_bytes;
        let out = f(cache);
        let after = cache.size_bytes;
        self.size_bytes = self.size_bytes - before + after;
        Ok(out)
    }

    fn put(
        &mut self,
        id: usize,
        key: impl CacheKey,
        value: Option<Timestamped>,
        dirty: bool,
    ) -> Result<Vec<Flushed>> {
        self.stats.puts += 1;
        let through = self.with_named(id, |c| c.put(key, value, dirty))?;
        let mut out = self.maybe_evict(id)?;
        out.extend(through);
        Ok(out)
    }

    /// Kafka's `maybeEvict`: evicts from the written named cache while over budget.
    fn maybe_evict(&mut self, id: usize) -> Result<Vec<Flushed>> {
        let mut out = Vec::new();
        while self.size_bytes > self.max_bytes {
            let before = out.len();
            if !self.with_named(id, |c| c.evict_one(&mut out))? {
                break;
            }
            self.stats.evictions += 1;
            if out.len() > before {
                self.stats.flushes += 1;
            }
        }
        // Only a budget shrunk under other caches can leave us over it here; keep the
        // promise that the budget holds anyway.
        self.evict_round_robin();
        Ok(out)
    }

    /// Kafka's shrinking `resize`: evicts one entry per named cache in turn until within the
    /// budget; flushed entries are parked for their store.
    fn evict_round_robin(&mut self) {
        while self.size_bytes > self.max_bytes {
            let mut any = false;
            for &id in self.names.values() {
                if self.size_bytes <= self.max_bytes {
                    break;
                }
                let Some(cache) = self.caches.get_mut(id) else {
                    continue;
                };
                let before = cache.size_bytes;
                let mut flushed = Vec::new();
                if cache.evict_one(&mut flushed) {
                    any = true;
                    self.stats.evictions += 1;
                    if !flushed.is_empty() {
                        self.stats.flushes += 1;
                    }
                    cache.parked.extend(flushed);
                }
                self.size_bytes = self.size_bytes - before + cache.size_bytes;
            }
            if !any {
                break;
            }
        }
    }

    fn get(&mut self, id: usize, key: &[u8]) -> Result<Option<Option<Timestamped>>> {
        self.stats.gets += 1;
        let hit = self.named(id)?.get(key);
        if hit.is_some() {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
        }
        Ok(hit)
    }

    /// [`NamedCache::modify`] with the counters of a get and, when it puts, a put, then
    /// Kafka's `maybeEvict`; entries parked in the named cache send the caller the slow
    /// way first (`Rmw::Parked`).
    fn modify<F, E>(
        &mut self,
        id: usize,
        key: &[u8],
        buf: &mut Vec<u8>,
        f: &mut Option<F>,
        evicted: &mut Vec<Flushed>,
    ) -> Result<Rmw<E>>
    where
        F: FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> std::result::Result<i64, E>,
    {
        if !self.named(id)?.parked.is_empty() {
            return Ok(Rmw::Parked);
        }
        self.stats.gets += 1;
        match self.with_named(id, |c| c.modify(key, buf, f))? {
            Modified::Done => {
                self.stats.hits += 1;
                self.stats.puts += 1;
                // Within budget (nearly always): nothing to evict, nothing to hand back.
                if self.size_bytes <= self.max_bytes {
                    return Ok(Rmw::Done);
                }
                *evicted = self.maybe_evict(id)?;
                Ok(Rmw::Evicted)
            }
            Modified::Failed(e) => {
                self.stats.hits += 1;
                Ok(Rmw::Failed(e))
            }
            Modified::Miss => {
                self.stats.misses += 1;
                Ok(Rmw::Miss)
            }
        }
    }
}

/// What a read-modify-write through the cache did ([`Registration::modify`]). The
/// function stays with the caller (in an option it is taken from when called): a result
/// that carried it back was a large value to move on every update.
enum Rmw<E> {
    /// The key was cached and holds its new value, dirty; nothing was evicted.
    Done,
    /// As `Done`, and the cache went over budget: what the eviction flushed (in the
    /// caller's `evicted` vector, so that no result carries a vector) must go down now.
    Evicted,
    /// The function failed: nothing was put.
    Failed(E),
    /// The key is not cached (counted as a miss): the caller reads the store, calls the
    /// function and puts.
    Miss,
    /// Entries flushed by another store wait to be written down: the caller takes the
    /// ordinary read-then-put way, which writes them down first (nothing counted).
    Parked,
}

/// One stream thread's record cache: a byte budget shared by the named caches of every
/// caching store of the thread's tasks; it decides how often a store's updates go
/// downstream.
///
/// Kafka Streams' `ThreadCache`, `NamedCache` and `CachingKeyValueStore`, reproduced. Each
/// stream thread has one [`ThreadCache`] with a byte budget (its share of
/// `statestore.cache.max.bytes`); every caching store registers a named cache in it. A
/// [`CachingKvStore`] puts updates into its named cache as *dirty* entries instead of into the
/// store. Repeated updates of a key between flushes collapse into one entry, so downstream
/// sees only the latest value. Dirty entries go down to the store, and to the store's flush
/// listener as `(key, new value, old value)`, when the store is flushed (commit step 1) or when
/// the cache is over its budget and evicts.
///
/// This is not the write buffer (see `Layers`): the write buffer holds every uncommitted
/// write and is always on; the cache only throttles forwarding and can be switched off.
///
/// # Order of forwarded updates
/// A flush forwards the named cache's dirty entries in the order of each entry's **latest
/// update** (Kafka's `NamedCache.dirtyKeys`, a `LinkedHashSet` whose key is removed and
/// re-added on every update) — not in key order.
///
/// # Eviction
/// After every put the thread cache evicts, while it is over budget, the least recently used
/// entry (puts and hits both count as use) **of the named cache that was written**, as
/// Kafka's `ThreadCache.maybeEvict` does. Evicting a dirty entry flushes that named cache:
/// the evicted entry is forwarded first, then every other dirty entry in latest-update
/// order; those stay cached, clean (deleted keys leave the cache). An entry larger than the
/// whole budget is therefore written down and forwarded at once.
///
/// Only shrinking the budget ([`ThreadCache::resize`]) evicts from other named caches (round
/// robin, as Kafka does); their flushed entries wait outside the budget until that store's
/// next call, which writes them down before doing anything else (window and session stores
/// read through `&self`: their reads see the waiting entries where they are, and their next
/// write or flush writes them down).
///
/// # Window and session stores
/// [`CachingWindowStore`] and [`CachingSessionStore`] (Kafka's `CachingWindowStore` and
/// `CachingSessionStore`) cache the same way, in the same thread cache and budget. An entry's
/// key is the store's binary window (session) key behind its segment id (Kafka's
/// `SegmentedCacheFunction`), so a named cache sorts exactly as the store iterates — segment
/// by segment, then by binary key — and scans merge the two in one pass. Updates go
/// downstream as `(windowed key, new value, old value)` ([`WindowedFlushListener`]).
///
/// # Accounting
/// An entry counts `key bytes + value bytes + ThreadCache::ENTRY_OVERHEAD_BYTES` (64), the overhead
/// standing for the timestamp, the dirty flag, the two order links and the map nodes (Kafka
/// counts key + value + 25 bytes + the record context). A tombstone counts no value bytes.
/// The sum over all named caches is never above the budget after a call returns.
///
/// # Cost
/// Every record puts into and reads from the cache, so those are O(1): a named cache keeps
/// its entries in a slab found through a hash table, with the LRU and latest-update orders
/// as linked lists through the slots; an update of a cached key allocates nothing. Short
/// keys (up to 32 bytes: a window key around an 8-byte key is 28) and values (up to 16)
/// are kept inside their slot, so a lookup reads the hash table and the slot only; they
/// become `Bytes` when they go down to the store. Key order (scans) comes from an index
/// built at the named cache's first scan, which changes only when keys enter or leave.
/// Stores hold a handle to their named cache, not its name.
///
/// Aggregations read a key and put its new value right away; `update` on the caching
/// stores does both with one cache key, one lookup and one lock of the thread cache, with
/// exactly the effects of the read then the put. A flush hands its entries to the
/// write-down in pieces of 256, in order, through one small buffer; a piece's short keys
/// and values share one allocation.
///
/// A write-down that forwards old values (`send_old_values`, or a deletion) needs the
/// store's value before the write. A clean entry's value *is* the store's value, so an
/// update over a clean entry remembers it and the write-down forwards it without reading
/// the store; only entries new to the cache read the store, as before. (Aborts and restores
/// clear the cache, and a window or session that expired at the store is never put again.)
///
/// # Examples
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use freshet_state_store::{CachingKvStore, KeyValueStore, KvStore, MemoryBackend, ThreadCache, Timestamped};
///
/// let cache = ThreadCache::new(1 << 20);
/// let inner = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
/// let mut store = CachingKvStore::new(inner, &cache, "0_0")?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// store.set_flush_listener(
///     move |key: &[u8], new: Option<&Timestamped>, _old: Option<&Timestamped>| {
///         sink.lock().unwrap().push((key.to_vec(), new.map(|v| v.value.clone())));
///     },
///     false,
/// );
/// for n in ["1", "2", "3"] {
///     store.put(Bytes::from("ann"), Some(Timestamped { value: Bytes::from(n), timestamp: 0 }))?;
/// }
/// assert!(seen.lock().unwrap().is_empty(), "nothing goes downstream before a flush");
/// store.flush()?; // commit step 1
/// assert_eq!(*seen.lock().unwrap(), vec![(b"ann".to_vec(), Some(Bytes::from("3")))]);
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
///
/// A cheap handle: clones share the cache. A task is single-threaded, and all of a thread's
/// tasks run on that thread, so the lock inside is never contended; it is there so that
/// stores stay `Send`.
#[derive(Clone)]
pub struct ThreadCache {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for ThreadCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("ThreadCache")
            .field("max_bytes", &s.max_bytes)
            .field("size_bytes", &s.size_bytes)
            .field("caches", &s.caches.len())
            .finish()
    }
}

impl ThreadCache {
    /// `statestore.cache.max.bytes`'s default (10 MiB), for all threads together.
    pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;

    /// Bytes counted per entry on top of its key and value (see the module docs).
    pub const ENTRY_OVERHEAD_BYTES: usize = 64;

    /// The largest budget (about 137 GB per thread); a larger one is capped to it. It keeps
    /// a named cache's entry count under `u32::MAX / 2`, so that its hash table can index
    /// entries with 32 bits (half the memory a lookup misses on).
    pub const MAX_BYTES: usize = (u32::MAX as usize / 2).saturating_mul(Self::ENTRY_OVERHEAD_BYTES);

    /// A cache of `max_bytes` (this thread's share, at most [`MAX_BYTES`](Self::MAX_BYTES);
    /// 0 disables caching: every update is written down and forwarded at once).
    pub fn new(max_bytes: usize) -> ThreadCache {
        ThreadCache {
            state: Arc::new(Mutex::new(State {
                max_bytes: max_bytes.min(Self::MAX_BYTES),
                size_bytes: 0,
                caches: Slab::new(),
                names: BTreeMap::new(),
                stats: CacheStats::default(),
            })),
        }
    }

    /// One thread's share of `statestore.cache.max.bytes`: the total split evenly over the
    /// stream threads, as Kafka's `getCacheSizePerThread` does.
    pub fn per_thread(total_bytes: usize, threads: usize) -> usize {
        total_bytes / threads.max(1)
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> usize {
        self.state.lock().max_bytes
    }

    /// Bytes counted now (see the module docs for the accounting); never above
    /// [`max_bytes`](Self::max_bytes) between calls.
    pub fn size_bytes(&self) -> usize {
        self.state.lock().size_bytes
    }

    /// Entries cached now, over all named caches.
    pub fn num_entries(&self) -> usize {
        self.state.lock().caches.iter().map(|(_, c)| c.len()).sum()
    }

    /// Counters since the cache was made.
    pub fn stats(&self) -> CacheStats {
        self.state.lock().stats
    }

    /// Changes the budget (threads were added or removed). Shrinking evicts round robin over
    /// the named caches until within the new budget; a store whose dirty entries this
    /// flushes writes them down and forwards them at its next call.
    pub fn resize(&self, max_bytes: usize) {
        let mut s = self.state.lock();
        s.max_bytes = max_bytes.min(Self::MAX_BYTES);
        s.evict_round_robin();
    }

    /// Recomputes the counted bytes from the entries themselves: a check of the accounting
    /// for tests.
    #[doc(hidden)]
    pub fn recount_bytes(&self) -> usize {
        let s = self.state.lock();
        s.caches.iter().map(|(_, c)| c.recount()).sum()
    }

    /// Registers the named cache `ns`; the registration is the handle its store uses.
    fn register(&self, ns: String) -> Result<Registration> {
        let mut s = self.state.lock();
        if s.names.contains_key(&ns) {
            return Err(Error::InvalidArgument {
                store: ns,
                reason: "a cache of this name is already registered in the thread cache".into(),
            });
        }
        let id = s.caches.insert(NamedCache::new(ns.clone()));
        s.names.insert(ns.clone(), id);
        Ok(Registration {
            cache: self.clone(),
            id,
            ns,
        })
    }

    fn unregister(&self, id: usize) {
        let mut s = self.state.lock();
        if let Some(c) = s.caches.try_remove(id) {
            s.size_bytes -= c.size_bytes;
            s.names.remove(&c.name);
        }
    }
}

/// A named cache's registration: the handle its store calls the thread cache with.
/// Unregisters when dropped, so a dropped store's entries no longer count against the
/// budget.
#[derive(Debug)]
struct Registration {
    cache: ThreadCache,
    /// The named cache's slot in the thread cache, valid as long as this registration.
    id: usize,
    /// The named cache's name, `<task>-<store>`.
    ns: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cache.unregister(self.id);
    }
}

impl Registration {
    /// Whether puts are cached: false with a budget of 0.
    fn caching(&self) -> bool {
        self.cache.max_bytes() > 0
    }

    /// The thread cache's budget.
    fn max_bytes(&self) -> usize {
        self.cache.max_bytes()
    }

    /// Puts a dirty entry; returns what must go down now: the entry itself with a budget of
    /// 0, else what an eviction flushed.
    fn put(&self, key: impl CacheKey, value: Option<Timestamped>) -> Result<Vec<Flushed>> {
        let mut s = self.cache.state.lock();
        if s.max_bytes == 0 {
            return Ok(vec![Flushed::through(key.into_bytes(), value)]);
        }
        s.put(self.id, key, value, true)
    }

    /// Caches a value just read from the store (a clean entry), unless the budget is 0;
    /// returns what an eviction flushed.
    fn put_clean(&self, key: &[u8], value: Timestamped) -> Result<Vec<Flushed>> {
        let mut s = self.cache.state.lock();
        if s.max_bytes == 0 {
            return Ok(Vec::new());
        }
        s.put(self.id, key, Some(value), false)
    }

    /// The cached value of `key`: `Some(None)` for a cached deletion, `None` when the cache
    /// does not know it. Entries flushed by another store's eviction and not written down
    /// yet (parked) count: stores whose reads cannot write down first (window and session
    /// stores read through `&self`) still see the update.
    fn get(&self, key: &[u8]) -> Result<Option<Option<Timestamped>>> {
        self.cache.state.lock().get(self.id, key)
    }

    /// [`get`](Self::get), unless the budget is 0 (then `None`, nothing counted).
    fn get_if_caching(&self, key: &[u8]) -> Result<Option<Option<Timestamped>>> {
        let mut s = self.cache.state.lock();
        if s.max_bytes == 0 {
            return Ok(None);
        }
        s.get(self.id, key)
    }

    /// A read-modify-write of `key` under one lock and one lookup (see [`Rmw`]); with a
    /// budget of 0, `Rmw::Parked`: the caller takes the ordinary way.
    fn modify<F, E>(
        &self,
        key: &[u8],
        buf: &mut Vec<u8>,
        f: &mut Option<F>,
        evicted: &mut Vec<Flushed>,
    ) -> Result<Rmw<E>>
    where
        F: FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> std::result::Result<i64, E>,
    {
        let mut s = self.cache.state.lock();
        if s.max_bytes == 0 {
            return Ok(Rmw::Parked);
        }
        s.modify(self.id, key, buf, f, evicted)
    }

    /// One piece of a flush into `out` (empty: the flush is done): parked entries, then
    /// up to `max` dirty ones in latest-update order, now clean. `first` counts the flush.
    /// A flush in pieces forwards what a whole flush would, in the same order: nothing
    /// but the flushing store's write-down runs between the pieces.
    fn flush_piece(&self, out: &mut Vec<Flushed>, first: bool, max: usize) -> Result<()> {
        let mut s = self.cache.state.lock();
        if first {
            s.stats.flushes += 1;
        }
        s.with_named(self.id, |c| {
            out.append(&mut c.parked);
            c.flush_dirty_upto(out, max);
        })
    }

    fn take_parked(&self) -> Result<Vec<Flushed>> {
        self.cache
            .state
            .lock()
            .with_named(self.id, |c| std::mem::take(&mut c.parked))
    }

    /// Whether the named cache holds updates not yet written down.
    fn has_unflushed(&self) -> Result<bool> {
        self.cache
            .state
            .lock()
            .with_named(self.id, |c| c.has_unflushed())
    }

    /// Drops the named cache's entries, dirty ones and parked ones too (an aborted commit).
    fn clear(&self) -> Result<()> {
        self.cache
            .state
            .lock()
            .with_named(self.id, NamedCache::clear)
    }

    /// A snapshot of the named cache's entries within bounds, ascending; entries parked by
    /// another store's eviction and not written down yet count too (see `get`).
    fn range(
        &self,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Result<Vec<(Bytes, Option<Timestamped>)>> {
        if empty_range(from, to) {
            return Ok(Vec::new());
        }
        self.cache
            .state
            .lock()
            .with_named(self.id, |c| c.range(from, to))
    }
}

/// Entries a flush takes from the cache at a time (see [`Registration::flush_piece`]).
const FLUSH_PIECE: usize = 256;

/// A whole flush of a caching store, in pieces of [`FLUSH_PIECE`] through one buffer:
/// `reg` finds the store's registration (`None`: nothing to flush), `write_down` writes
/// each piece down, in order.
fn flush_in_pieces<S>(
    store: &mut S,
    reg: impl Fn(&S) -> Option<&Registration>,
    mut write_down: impl FnMut(&mut S, std::vec::Drain<'_, Flushed>) -> Result<()>,
) -> Result<()> {
    let mut piece = Vec::with_capacity(FLUSH_PIECE);
    let mut first = true;
    loop {
        let Some(r) = reg(store) else {
            return Ok(());
        };
        r.flush_piece(&mut piece, first, FLUSH_PIECE)?;
        first = false;
        if piece.is_empty() {
            return Ok(());
        }
        write_down(store, piece.drain(..))?;
    }
}

/// The old value a write-down forwards: what the cache knows the store holds, else the
/// store's answer to `read`.
fn old_value(
    stored: Stored,
    read: impl FnOnce() -> Result<Option<Timestamped>>,
) -> Result<Option<Timestamped>> {
    match stored {
        Stored::Known(v) => Ok(v),
        Stored::Unknown => read(),
    }
}

/// An aggregation's update where the cache could not do it in place: `f` over the value
/// found (borrowed) writes the new value into `buf` and returns its timestamp; the result is
/// the value to put (`Err`: `f`'s error, nothing to put). `f` comes in the option a
/// [`Rmw::Miss`] or [`Rmw::Parked`] left it in (`store` names the store if it is gone).
fn computed<E>(
    store: &str,
    found: Option<Timestamped>,
    buf: &mut Vec<u8>,
    f: Option<impl FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> std::result::Result<i64, E>>,
) -> Result<std::result::Result<Timestamped, E>> {
    let Some(f) = f else {
        return Err(Error::InvalidArgument {
            store: store.to_string(),
            reason: "a read-modify-write lost its function before calling it".into(),
        });
    };
    let borrowed = found.as_ref().map(|t| Timestamped {
        value: &t.value[..],
        timestamp: t.timestamp,
    });
    let timestamp = match f(borrowed, buf) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(Timestamped {
        value: crate::serde::compact_bytes(buf),
        timestamp,
    }))
}

fn empty_range(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(z)) => a > z,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(z))
        | (Bound::Excluded(a), Bound::Included(z)) => a >= z,
        _ => false,
    }
}

/// Receives a caching store's updates as they go downstream: `(key, new value, old value)`,
/// `None` for a deleted or absent value. The timestamp is the latest update's. The old value
/// is the store's value before the write-down, given only with `send_old_values` (Kafka's
/// `sendOldValues`), else `None`.
pub type FlushListener = Box<dyn FnMut(&[u8], Option<&Timestamped>, Option<&Timestamped>) + Send>;

/// Receives a caching window or session store's updates as they go downstream:
/// `(windowed key, new value, old value)`, as [`FlushListener`] (Kafka's
/// `CacheFlushListener<Windowed<K>, V>`): windows are `[start, start + size)`, sessions
/// `[start, end]`.
pub type WindowedFlushListener =
    Box<dyn FnMut(&Windowed<Bytes>, Option<&Timestamped>, Option<&Timestamped>) + Send>;
