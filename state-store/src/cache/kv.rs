//! The key-value store behind the record cache (Kafka's `CachingKeyValueStore`).

use std::fmt;
use std::ops::Bound;

use bytes::Bytes;

use super::named::Flushed;
use super::{old_value, FlushListener, Registration, Rmw, ThreadCache};
use crate::changelog::{ChangelogReader, ChangelogSink};
use crate::error::{Error, Result};
use crate::kv::{prefix_end, KeyValueStore};
use crate::layers::{KvIter, RestoreStats, Timestamped};
use crate::store::StateStore;

/// A key-value store behind the thread's record cache (Kafka's `CachingKeyValueStore`; see
/// the [`ThreadCache`](super::ThreadCache)).
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
        let reg = cache.register(format!("{task}-{}", inner.name()))?;
        Ok(CachingKvStore {
            inner,
            reg: Some(reg),
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
        self.reg.as_ref().is_some_and(Registration::caching)
    }

    /// The budget of the thread cache this store caches in (its share of
    /// `statestore.cache.max.bytes`; 0 when updates are not cached).
    pub fn cache_budget(&self) -> usize {
        self.reg
            .as_ref()
            .filter(|r| r.caching())
            .map_or(0, Registration::max_bytes)
    }

    /// The store underneath (reads only: writing to it directly would bypass the cache).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Commit step 1: writes every dirty entry down to the store and forwards it, in
    /// latest-update order.
    pub fn flush(&mut self) -> Result<()> {
        super::flush_in_pieces(self, |s| s.reg.as_ref(), |s, piece| s.write_down(piece))
    }

    /// Flushes, leaves the thread cache and gives the store back.
    pub fn close(mut self) -> Result<S> {
        self.flush()?;
        drop(self.reg.take());
        Ok(self.inner)
    }

    /// Kafka's read-then-put of an aggregation in one step: `f` gets the key's value
    /// (`None`: absent) and writes the new value into `buf`, returning its timestamp; the
    /// store then holds it as [`put_slice`](KeyValueStore::put_slice) would.
    ///
    /// The same as [`get`](KeyValueStore::get), `f`, then `put_slice` (the same cache, store
    /// and forwarding effects), but a key the cache holds costs one lookup and one lock of
    /// the thread cache, and its value is read and replaced in place. When `f` fails
    /// nothing is put and its error is returned.
    ///
    /// # Errors
    /// As `get` and `put_slice`.
    pub fn update<E>(
        &mut self,
        key: &[u8],
        buf: &mut Vec<u8>,
        f: impl FnOnce(Option<Timestamped<&[u8]>>, &mut Vec<u8>) -> std::result::Result<i64, E>,
    ) -> Result<std::result::Result<(), E>> {
        let mut f = Some(f);
        let mut evicted = Vec::new();
        if let Some(reg) = &self.reg {
            match reg.modify(key, buf, &mut f, &mut evicted)? {
                Rmw::Done => return Ok(Ok(())),
                Rmw::Evicted => {
                    self.write_down(evicted)?;
                    return Ok(Ok(()));
                }
                Rmw::Failed(e) => return Ok(Err(e)),
                Rmw::Miss => {
                    // `get`'s miss: the store's value, cached clean (the miss is counted).
                    let found = self.inner.get(key)?;
                    if let (Some(v), Some(reg)) = (&found, &self.reg) {
                        let flushed = reg.put_clean(key, v.clone())?;
                        self.write_down(flushed)?;
                    }
                    return self.put_computed(key, found, buf, f);
                }
                Rmw::Parked => {}
            }
        }
        let found = self.get(key)?;
        self.put_computed(key, found, buf, f)
    }

    /// `f` over `found`, then a put of what it wrote into `buf`.
    fn put_computed<E>(
        &mut self,
        key: &[u8],
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
        self.put_slice(key, Some(value))?;
        Ok(Ok(()))
    }

    /// Writes down entries flushed by another store's eviction; every call starts here so
    /// that reads see them.
    fn drain(&mut self) -> Result<()> {
        let Some(reg) = &self.reg else {
            return Ok(());
        };
        let parked = reg.take_parked()?;
        self.write_down(parked)
    }

    /// Kafka's `putAndMaybeForward`, for each entry in order: read the old value when it is
    /// wanted (from the cache when it knows what the store holds), skip a delete of an
    /// absent key, write, forward.
    fn write_down(&mut self, entries: impl IntoIterator<Item = Flushed>) -> Result<()> {
        for Flushed {
            key,
            value: new,
            stored,
        } in entries
        {
            let Some(listener) = self.listener.as_mut() else {
                self.inner.put(key, new)?;
                continue;
            };
            let old = if new.is_none() || self.send_old_values {
                old_value(stored, || self.inner.get(&key))?
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
            Some(r) => r.range(from, to)?,
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
        let Some(reg) = &self.reg else {
            return self.inner.get(key);
        };
        if let Some(hit) = reg.get_if_caching(key)? {
            return Ok(hit);
        }
        let found = self.inner.get(key)?;
        if let (Some(v), Some(reg)) = (&found, &self.reg) {
            // Cached clean (unless the budget is 0): the store's value.
            let flushed = reg.put_clean(key, v.clone())?;
            self.write_down(flushed)?;
        }
        Ok(found)
    }

    fn put(&mut self, key: Bytes, value: Option<Timestamped>) -> Result<()> {
        self.drain()?;
        let flushed = match &self.reg {
            Some(reg) => reg.put(key, value)?,
            None => vec![Flushed::through(key, value)],
        };
        self.write_down(flushed)
    }

    fn put_slice(&mut self, key: &[u8], value: Option<Timestamped>) -> Result<()> {
        self.drain()?;
        // The cache copies the key only when it is new to it.
        let flushed = match &self.reg {
            Some(reg) => reg.put(key, value)?,
            None => vec![Flushed::through(crate::serde::compact_bytes(key), value)],
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
            if reg.has_unflushed()? {
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
            if let Err(e) = reg.clear() {
                tracing::warn!(store = %self.inner.name(), error = %e, "cannot clear the record cache");
            }
        }
        self.inner.abort();
    }

    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        if let Some(reg) = &self.reg {
            reg.clear()?;
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
