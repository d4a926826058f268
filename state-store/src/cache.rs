//! The record cache: decides how often a store's updates go downstream.
//!
//! Kafka Streams' `ThreadCache`, `NamedCache` and `CachingKeyValueStore`, reproduced. Each
//! stream thread has one [`ThreadCache`] with a byte budget (its share of
//! `statestore.cache.max.bytes`); every caching store registers a named cache in it. A
//! [`CachingKvStore`] puts updates into its named cache as *dirty* entries instead of into the
//! store. Repeated updates of a key between flushes collapse into one entry, so downstream
//! sees only the latest value. Dirty entries go down to the store, and to the store's flush
//! listener as `(key, new value, old value)`, when the store is flushed (commit step 1) or when
//! the cache is over its budget and evicts.
//!
//! This is not the write buffer (see `Layers`): the write buffer holds every uncommitted
//! write and is always on; the cache only throttles forwarding and can be switched off.
//!
//! # Order of forwarded updates
//! A flush forwards the named cache's dirty entries in the order of each entry's **latest
//! update** (Kafka's `NamedCache.dirtyKeys`, a `LinkedHashSet` whose key is removed and
//! re-added on every update) — not in key order.
//!
//! # Eviction
//! After every put the thread cache evicts, while it is over budget, the least recently used
//! entry (puts and hits both count as use) **of the named cache that was written**, as
//! Kafka's `ThreadCache.maybeEvict` does. Evicting a dirty entry flushes that named cache:
//! the evicted entry is forwarded first, then every other dirty entry in latest-update
//! order; those stay cached, clean (deleted keys leave the cache). An entry larger than the
//! whole budget is therefore written down and forwarded at once.
//!
//! Only shrinking the budget ([`ThreadCache::resize`]) evicts from other named caches (round
//! robin, as Kafka does); their flushed entries wait outside the budget until that store's
//! next call, which writes them down before doing anything else.
//!
//! # Accounting
//! An entry counts `key bytes + value bytes + ThreadCache::ENTRY_OVERHEAD_BYTES` (64), the overhead
//! standing for the timestamp, the dirty flag, the two order links and the map nodes (Kafka
//! counts key + value + 25 bytes + the record context). A tombstone counts no value bytes.
//! The sum over all named caches is never above the budget after a call returns.
//!
//! # Examples
//! ```
//! use std::sync::{Arc, Mutex};
//! use bytes::Bytes;
//! use freshet_state_store::{CachingKvStore, KeyValueStore, KvStore, MemoryBackend, ThreadCache, Timestamped};
//!
//! let cache = ThreadCache::new(1 << 20);
//! let inner = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
//! let mut store = CachingKvStore::new(inner, &cache, "0_0")?;
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! store.set_flush_listener(
//!     move |key: &[u8], new: Option<&Timestamped>, _old: Option<&Timestamped>| {
//!         sink.lock().unwrap().push((key.to_vec(), new.map(|v| v.value.clone())));
//!     },
//!     false,
//! );
//! for n in ["1", "2", "3"] {
//!     store.put(Bytes::from("ann"), Some(Timestamped { value: Bytes::from(n), timestamp: 0 }))?;
//! }
//! assert!(seen.lock().unwrap().is_empty(), "nothing goes downstream before a flush");
//! store.flush()?; // commit step 1
//! assert_eq!(*seen.lock().unwrap(), vec![(b"ann".to_vec(), Some(Bytes::from("3")))]);
//! # Ok::<(), freshet_state_store::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::changelog::{ChangelogReader, ChangelogSink};
use crate::error::{Error, Result};
use crate::kv::{prefix_end, KeyValueStore};
use crate::layers::{KvIter, RestoreStats, Timestamped};
use crate::store::StateStore;

/// A key and the value to write down (`None` deletes).
type Dirty = (Bytes, Option<Timestamped>);

fn entry_size(key: &[u8], value: &Option<Timestamped>) -> usize {
    key.len() + value.as_ref().map_or(0, |v| v.value.len()) + ThreadCache::ENTRY_OVERHEAD_BYTES
}

#[derive(Debug)]
struct Node {
    value: Option<Timestamped>,
    dirty: bool,
    /// Position in the LRU order (higher: used more recently).
    used: u64,
    /// Position in the dirty order (higher: updated more recently); meaningful when dirty.
    updated: u64,
    size: usize,
}

/// One store's entries in the thread cache (Kafka's `NamedCache`).
#[derive(Debug, Default)]
struct NamedCache {
    entries: BTreeMap<Bytes, Node>,
    /// Least recently used first.
    lru: BTreeMap<u64, Bytes>,
    /// Least recently updated dirty key first.
    dirty: BTreeMap<u64, Bytes>,
    size_bytes: usize,
    /// Entries flushed by an eviction this store did not cause (a shrinking budget), waiting
    /// for the store's next call to write them down.
    parked: Vec<Dirty>,
}

impl NamedCache {
    /// Marks every dirty entry clean and returns it, in latest-update order; deleted keys
    /// leave the cache (Kafka's `NamedCache.flush`).
    fn flush_dirty(&mut self) -> Vec<Dirty> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::with_capacity(dirty.len());
        for key in dirty.into_values() {
            let Some(node) = self.entries.get_mut(&key) else {
                continue;
            };
            node.dirty = false;
            out.push((key.clone(), node.value.clone()));
            if node.value.is_none() {
                self.remove(&key);
            }
        }
        out
    }

    fn remove(&mut self, key: &[u8]) -> Option<Node> {
        let node = self.entries.remove(key)?;
        self.lru.remove(&node.used);
        if node.dirty {
            self.dirty.remove(&node.updated);
        }
        self.size_bytes -= node.size;
        Some(node)
    }

    /// Evicts the least recently used entry; when it was dirty, the whole named cache is
    /// flushed, the evicted entry first. Returns false when there was nothing to evict.
    fn evict_one(&mut self, out: &mut Vec<Dirty>) -> bool {
        let Some((_, key)) = self.lru.pop_first() else {
            return false;
        };
        let Some(node) = self.entries.remove(&key) else {
            return true;
        };
        self.size_bytes -= node.size;
        if node.dirty {
            self.dirty.remove(&node.updated);
            out.push((key, node.value));
            out.extend(self.flush_dirty());
        }
        true
    }
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
    clock: u64,
    caches: BTreeMap<String, NamedCache>,
    stats: CacheStats,
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn named(&mut self, ns: &str) -> Result<&mut NamedCache> {
        self.caches
            .get_mut(ns)
            .ok_or_else(|| Error::InvalidArgument {
                store: ns.to_string(),
                reason: "no such cache in the thread cache (closed?)".into(),
            })
    }

    /// Runs `f` on a named cache and keeps the thread-wide size in step with it.
    fn with_named<T>(&mut self, ns: &str, f: impl FnOnce(&mut NamedCache) -> T) -> Result<T> {
        let cache = self.named(ns)?;
        let before = cache.size_bytes;
        let out = f(cache);
        let after = cache.size_bytes;
        self.size_bytes = self.size_bytes - before + after;
        Ok(out)
    }

    fn put(
        &mut self,
        ns: &str,
        key: Bytes,
        value: Option<Timestamped>,
        dirty: bool,
    ) -> Result<Vec<Dirty>> {
        let (used, updated) = (self.tick(), self.tick());
        self.stats.puts += 1;
        self.with_named(ns, |c| {
            let size = entry_size(&key, &value);
            if let Some(old) = c.remove(&key) {
                // A clean put never replaces a dirty entry: stores cache clean values only
                // after a miss.
                debug_assert!(dirty || !old.dirty, "clean put over a dirty entry");
            }
            c.lru.insert(used, key.clone());
            if dirty {
                c.dirty.insert(updated, key.clone());
            }
            c.size_bytes += size;
            c.entries.insert(
                key,
                Node {
                    value,
                    dirty,
                    used,
                    updated,
                    size,
                },
            );
        })?;
        self.maybe_evict(ns)
    }

    /// Kafka's `maybeEvict`: evicts from the written named cache while over budget.
    fn maybe_evict(&mut self, ns: &str) -> Result<Vec<Dirty>> {
        let mut out = Vec::new();
        while self.size_bytes > self.max_bytes {
            let mut flushed = Vec::new();
            let evicted = self.with_named(ns, |c| c.evict_one(&mut flushed))?;
            if !evicted {
                break;
            }
            self.stats.evictions += 1;
            if !flushed.is_empty() {
                self.stats.flushes += 1;
            }
            out.extend(flushed);
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
            for cache in self.caches.values_mut() {
                if self.size_bytes <= self.max_bytes {
                    break;
                }
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

    fn get(&mut self, ns: &str, key: &[u8]) -> Result<Option<Option<Timestamped>>> {
        let used = self.tick();
        self.stats.gets += 1;
        let cache = self.named(ns)?;
        let hit = match cache.entries.get_mut(key) {
            Some(node) => {
                let k = cache
                    .lru
                    .remove(&node.used)
                    .unwrap_or_else(|| Bytes::copy_from_slice(key));
                node.used = used;
                cache.lru.insert(used, k);
                Some(node.value.clone())
            }
            None => None,
        };
        if hit.is_some() {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
        }
        Ok(hit)
    }
}

/// One stream thread's record cache: a byte budget shared by the named caches of every
/// caching store of the thread's tasks (see the [module docs](self)).
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

    /// A cache of `max_bytes` (this thread's share; 0 disables caching: every update is
    /// written down and forwarded at once).
    pub fn new(max_bytes: usize) -> ThreadCache {
        ThreadCache {
            state: Arc::new(Mutex::new(State {
                max_bytes,
                size_bytes: 0,
                clock: 0,
                caches: BTreeMap::new(),
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
        self.state
            .lock()
            .caches
            .values()
            .map(|c| c.entries.len())
            .sum()
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
        s.max_bytes = max_bytes;
        s.evict_round_robin();
    }

    /// Recomputes the counted bytes from the entries themselves: a check of the accounting
    /// for tests.
    #[doc(hidden)]
    pub fn recount_bytes(&self) -> usize {
        let s = self.state.lock();
        s.caches
            .values()
            .flat_map(|c| c.entries.iter())
            .map(|(k, n)| entry_size(k, &n.value))
            .sum()
    }

    fn register(&self, ns: &str) -> Result<()> {
        let mut s = self.state.lock();
        if s.caches.contains_key(ns) {
            return Err(Error::InvalidArgument {
                store: ns.to_string(),
                reason: "a cache of this name is already registered in the thread cache".into(),
            });
        }
        s.caches.insert(ns.to_string(), NamedCache::default());
        Ok(())
    }

    fn unregister(&self, ns: &str) {
        let mut s = self.state.lock();
        if let Some(c) = s.caches.remove(ns) {
            s.size_bytes -= c.size_bytes;
        }
    }

    /// Drops a named cache's entries, dirty ones and parked ones too (an aborted commit).
    fn clear(&self, ns: &str) -> Result<()> {
        self.state.lock().with_named(ns, |c| {
            *c = NamedCache::default();
        })
    }

    fn put(
        &self,
        ns: &str,
        key: Bytes,
        value: Option<Timestamped>,
        dirty: bool,
    ) -> Result<Vec<Dirty>> {
        self.state.lock().put(ns, key, value, dirty)
    }

    fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Option<Timestamped>>> {
        self.state.lock().get(ns, key)
    }

    /// Parked entries, then the dirty ones in latest-update order; all now clean.
    fn flush(&self, ns: &str) -> Result<Vec<Dirty>> {
        let mut s = self.state.lock();
        s.stats.flushes += 1;
        s.with_named(ns, |c| {
            let mut out = std::mem::take(&mut c.parked);
            out.extend(c.flush_dirty());
            out
        })
    }

    fn take_parked(&self, ns: &str) -> Result<Vec<Dirty>> {
        self.state
            .lock()
            .with_named(ns, |c| std::mem::take(&mut c.parked))
    }

    /// Whether a named cache holds updates not yet written down.
    fn has_unflushed(&self, ns: &str) -> Result<bool> {
        self.state
            .lock()
            .with_named(ns, |c| !c.dirty.is_empty() || !c.parked.is_empty())
    }

    /// A snapshot of a named cache's entries within bounds, ascending.
    fn range(
        &self,
        ns: &str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Result<Vec<(Bytes, Option<Timestamped>)>> {
        if empty_range(from, to) {
            return Ok(Vec::new());
        }
        self.state.lock().with_named(ns, |c| {
            c.entries
                .range::<[u8], _>((from, to))
                .map(|(k, n)| (k.clone(), n.value.clone()))
                .collect()
        })
    }
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

/// A named cache's registration; unregisters when dropped, so a dropped store's entries no
/// longer count against the budget.
#[derive(Debug)]
struct Registration {
    cache: ThreadCache,
    ns: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cache.unregister(&self.ns);
    }
}

/// A key-value store behind the thread's record cache (Kafka's `CachingKeyValueStore`; see
/// the [module docs](self)).
///
/// Writes go into the cache; reads look in the cache first, then in the store (and cache
/// what they found, as Kafka does); scans merge both, the cache winning. Updates reach the
/// store, and the listener, on [`flush`](Self::flush) or on eviction. A disabled cache
/// (made with [`disabled`](Self::disabled), or a thread cache of 0 bytes) writes every
/// update down and forwards it at once.
///
/// The runtime must [`flush`](Self::flush) every caching store (in topological order) before
/// it sends the changelogs: [`StateStore::send_changelog`] refuses with
/// [`Error::InvalidArgument`] while the cache holds updates not written down, since they
/// would otherwise miss the commit that records their input offsets.
///
/// Dropping the store without [`close`](Self::close) discards its unflushed updates, as a
/// crash would (they were never committed).
pub struct CachingKvStore<S> {
    inner: S,
    reg: Option<Registration>,
    listener: Option<FlushListener>,
    send_old_values: bool,
}

impl<S: fmt::Debug> fmt::Debug for CachingKvStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingKvStore")
            .field("inner", &self.inner)
            .field("namespace", &self.reg.as_ref().map(|r| &r.ns))
            .field("listener", &self.listener.is_some())
            .field("send_old_values", &self.send_old_values)
            .finish()
    }
}

impl<S: KeyValueStore> CachingKvStore<S> {
    /// Puts `inner` behind `cache`, in the named cache `<task>-<store>` (Kafka's
    /// `ThreadCache.nameSpaceFromTaskIdAndStore`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when that named cache is already registered.
    pub fn new(inner: S, cache: &ThreadCache, task: &str) -> Result<CachingKvStore<S>> {
        let ns = format!("{task}-{}", inner.name());
        cache.register(&ns)?;
        Ok(CachingKvStore {
            inner,
            reg: Some(Registration {
                cache: cache.clone(),
                ns,
            }),
            listener: None,
            send_old_values: false,
        })
    }

    /// `inner` with caching disabled (`Materialized::with_caching_disabled`): every update
    /// is written down and forwarded at once.
    pub fn disabled(inner: S) -> CachingKvStore<S> {
        CachingKvStore {
            inner,
            reg: None,
            listener: None,
            send_old_values: false,
        }
    }

    /// Sets where updates go downstream; with `send_old_values` the listener also gets each
    /// key's value before the update (Kafka's `setFlushListener`).
    pub fn set_flush_listener(
        &mut self,
        listener: impl FnMut(&[u8], Option<&Timestamped>, Option<&Timestamped>) + Send + 'static,
        send_old_values: bool,
    ) {
        self.listener = Some(Box::new(listener));
        self.send_old_values = send_old_values;
    }

    /// Whether updates are cached (false when disabled or the thread's budget is 0).
    pub fn is_caching(&self) -> bool {
        self.reg.as_ref().is_some_and(|r| r.cache.max_bytes() > 0)
    }

    /// The store underneath (reads only: writing to it directly would bypass the cache).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Commit step 1: writes every dirty entry down to the store and forwards it, in
    /// latest-update order.
    pub fn flush(&mut self) -> Result<()> {
        let Some(reg) = &self.reg else {
            return Ok(());
        };
        let entries = reg.cache.flush(&reg.ns)?;
        self.write_down(entries)
    }

    /// Flushes, leaves the thread cache and gives the store back.
    pub fn close(mut self) -> Result<S> {
        self.flush()?;
        drop(self.reg.take());
        Ok(self.inner)
    }

    /// The cache to use for this call (`None`: write through).
    fn caching(&self) -> Option<&Registration> {
        self.reg.as_ref().filter(|r| r.cache.max_bytes() > 0)
    }

    /// Writes down entries flushed by another store's eviction; every call starts here so
    /// that reads see them.
    fn drain(&mut self) -> Result<()> {
        let Some(reg) = &self.reg else {
            return Ok(());
        };
        let parked = reg.cache.take_parked(&reg.ns)?;
        self.write_down(parked)
    }

    /// Kafka's `putAndMaybeForward`, for each entry in order: read the old value when it is
    /// wanted, skip a delete of an absent key, write, forward.
    fn write_down(&mut self, entries: Vec<Dirty>) -> Result<()> {
        for (key, new) in entries {
            let Some(listener) = self.listener.as_mut() else {
                self.inner.put(key, new)?;
                continue;
            };
            let old = if new.is_none() || self.send_old_values {
                self.inner.get(&key)?
            } else {
                None
            };
            if new.is_none() && old.is_none() {
                // Absent from the store and deleted in the cache: nothing changed.
                continue;
            }
            self.inner.put(key.clone(), new.clone())?;
            let old = if self.send_old_values {
                old.as_ref()
            } else {
                None
            };
            listener(&key, new.as_ref(), old);
        }
        Ok(())
    }

    fn scan<'a>(
        &'a mut self,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
        store: impl FnOnce(&'a mut S) -> Result<KvIter<'a>>,
    ) -> Result<KvIter<'a>> {
        self.drain()?;
        let mut mem = match &self.reg {
            Some(r) => r.cache.range(&r.ns, from, to)?,
            None => Vec::new(),
        };
        if reverse {
            mem.reverse();
        }
        let store = store(&mut self.inner)?;
        Ok(Box::new(CacheMerge {
            reverse,
            mem: mem.into_iter().peekable(),
            store: store.peekable(),
        }))
    }
}

impl<S: KeyValueStore> KeyValueStore for CachingKvStore<S> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Timestamped>> {
        self.drain()?;
        let Some(reg) = self.caching() else {
            return self.inner.get(key);
        };
        if let Some(hit) = reg.cache.get(&reg.ns, key)? {
            return Ok(hit);
        }
        let found = self.inner.get(key)?;
        if let (Some(v), Some(reg)) = (&found, self.caching()) {
            let flushed =
                reg.cache
                    .put(&reg.ns, Bytes::copy_from_slice(key), Some(v.clone()), false)?;
            self.write_down(flushed)?;
        }
        Ok(found)
    }

    fn put(&mut self, key: Bytes, value: Option<Timestamped>) -> Result<()> {
        self.drain()?;
        let flushed = match self.caching() {
            Some(reg) => reg.cache.put(&reg.ns, key, value, true)?,
            None => vec![(key, value)],
        };
        self.write_down(flushed)
    }

    fn range(&mut self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        self.scan(Bound::Included(from), Bound::Included(to), false, |s| {
            s.range(from, to)
        })
    }

    fn reverse_range(&mut self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        self.scan(Bound::Included(from), Bound::Included(to), true, |s| {
            s.reverse_range(from, to)
        })
    }

    fn prefix_scan(&mut self, prefix: &[u8]) -> Result<KvIter<'_>> {
        let end = prefix_end(prefix);
        let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.scan(Bound::Included(prefix), to, false, |s| {
            s.prefix_scan(prefix)
        })
    }

    fn all(&mut self) -> Result<KvIter<'_>> {
        self.scan(Bound::Unbounded, Bound::Unbounded, false, |s| s.all())
    }

    fn reverse_all(&mut self) -> Result<KvIter<'_>> {
        self.scan(Bound::Unbounded, Bound::Unbounded, true, |s| {
            s.reverse_all()
        })
    }

    fn approximate_num_entries(&self) -> u64 {
        self.inner.approximate_num_entries()
    }
}

impl<S: KeyValueStore> StateStore for CachingKvStore<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        if let Some(reg) = &self.reg {
            if reg.cache.has_unflushed(&reg.ns)? {
                return Err(Error::InvalidArgument {
                    store: self.inner.name().to_string(),
                    reason: "the record cache holds updates not yet written down: flush the \
                             caches before sending changelogs (commit step 1)"
                        .into(),
                });
            }
        }
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
        if let Some(reg) = &self.reg {
            if let Err(e) = reg.cache.clear(&reg.ns) {
                tracing::warn!(store = %self.inner.name(), error = %e, "cannot clear the record cache");
            }
        }
        self.inner.abort();
    }

    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        if let Some(reg) = &self.reg {
            reg.cache.clear(&reg.ns)?;
        }
        self.inner.restore(reader)
    }

    fn write_buffer_bytes(&self) -> usize {
        self.inner.write_buffer_bytes()
    }
}

/// Merges a cache snapshot (deleted keys as `None`) with the store's iterator; the cache
/// wins on equal keys and its deletions hide the store's entries.
struct CacheMerge<'a> {
    reverse: bool,
    mem: std::iter::Peekable<std::vec::IntoIter<(Bytes, Option<Timestamped>)>>,
    store: std::iter::Peekable<KvIter<'a>>,
}

impl Iterator for CacheMerge<'_> {
    type Item = Result<(Bytes, Timestamped)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_mem = match (self.mem.peek(), self.store.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) | (Some(_), Some(Err(_))) => false,
                (Some((mk, _)), Some(Ok((sk, _)))) => {
                    if mk == sk {
                        self.store.next();
                        true
                    } else {
                        (mk < sk) != self.reverse
                    }
                }
            };
            if !take_mem {
                return self.store.next();
            }
            if let Some((k, Some(v))) = self.mem.next() {
                return Some(Ok((k, v)));
            }
        }
    }
}

/// The soft limit on a thread's write buffers (`statestore.write.buffer.max.bytes`): past
/// it, the runtime commits at the next record boundary (never inside a record), so
/// uncommitted writes cannot grow without bound between `commit.interval.ms` ticks.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use freshet_state_store::{KeyValueStore, KvStore, MemoryBackend, StateStore, Timestamped, WriteBufferBudget};
///
/// let mut store = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
/// let budget = WriteBufferBudget::new(100);
/// assert!(!budget.should_commit([&store]));
/// store.put(Bytes::from(vec![0u8; 100]), Some(Timestamped { value: Bytes::new(), timestamp: 0 }))?;
/// assert!(budget.should_commit([&store]));
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBufferBudget {
    max_bytes: usize,
}

impl Default for WriteBufferBudget {
    fn default() -> Self {
        WriteBufferBudget::new(WriteBufferBudget::DEFAULT_MAX_BYTES)
    }
}

impl WriteBufferBudget {
    /// `statestore.write.buffer.max.bytes`'s default: 64 MiB per stream thread.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

    /// A soft limit of `max_bytes` for one thread's stores.
    pub fn new(max_bytes: usize) -> WriteBufferBudget {
        WriteBufferBudget { max_bytes }
    }

    /// The limit.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Uncommitted bytes over `stores` (the sum of [`StateStore::write_buffer_bytes`]).
    pub fn used<'a, S, I>(&self, stores: I) -> usize
    where
        S: StateStore + ?Sized + 'a,
        I: IntoIterator<Item = &'a S>,
    {
        stores.into_iter().map(|s| s.write_buffer_bytes()).sum()
    }

    /// Whether the thread should commit at the next record boundary: its stores' write
    /// buffers together exceed the limit.
    pub fn should_commit<'a, S, I>(&self, stores: I) -> bool
    where
        S: StateStore + ?Sized + 'a,
        I: IntoIterator<Item = &'a S>,
    {
        self.used(stores) > self.max_bytes
    }
}
