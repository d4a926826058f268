//! A time-window aggregation's typed front cache: the windows updated since the last
//! commit, as typed aggregates, in front of the store's record cache.
//!
//! Kafka's record cache keeps bytes. An update through it deserializes the aggregate,
//! calls the aggregator, serializes the result and copies it back, under the store's lock
//! and the thread cache's, with a hash lookup over the cache's byte keys (a W2 update:
//! ≈ 90 ns of ≈ 200 per record). The front keeps the typed aggregate instead: an update is
//! one lookup and the aggregator. At the node's flush (each commit) its entries go into
//! the record cache **in the order of their latest updates**, just before the cache's own
//! flush, so the cache holds, forwards and writes down exactly what it would have after
//! the same updates one by one: each entry's latest value, forwarded in latest-update
//! order with the old value the store held.
//!
//! Only the aggregation's own updates may pass through the front: it is used only when no
//! other node reads the store (no join reads the windowed table, no processor is connected
//! to it), when the store caches (a budget of 0 writes every update through), and when
//! windows emit on update (emit-final does not use the cache). Interactive queries read
//! committed state, which the front reaches at the commit like the cache.
//!
//! # Memory
//! The front counts its entries as the record cache would (key, value and
//! [`ThreadCache::ENTRY_OVERHEAD_BYTES`](freshet_state_store::ThreadCache::ENTRY_OVERHEAD_BYTES)
//! each) against the thread's cache budget; past it, it hands all its entries to the record
//! cache at once, which evicts and forwards as Kafka's would. So it holds at most the
//! cache's budget besides the cache itself.
//!
//! # What differs from the record cache alone
//! The record cache's metrics count one put per window per flush, not per update. Under a
//! budget too small for the windows of a commit interval, the record cache sees the updates
//! in batches, so it evicts (and forwards early) at other moments than per update: fewer
//! intermediate results reach downstream, as a larger cache would give.

use std::collections::HashMap;

/// A window's typed aggregate in the front.
#[derive(Debug)]
pub(crate) struct Entry<VA> {
    pub(crate) value: VA,
    /// The largest timestamp aggregated into the window.
    pub(crate) timestamp: i64,
    /// When it was last updated (the front's update counter).
    seq: u64,
    /// Bytes counted for it (see the module docs).
    size: usize,
}

/// The windows updated since the last flush, by key bytes and window start.
#[derive(Debug)]
pub(crate) struct Front<VA> {
    entries: HashMap<Box<[u8]>, Entry<VA>, foldhash::fast::RandomState>,
    /// Updates so far: each update's sequence number.
    seq: u64,
    /// Bytes counted for the entries.
    bytes: usize,
    /// The key being looked up: key bytes, then the window start (big-endian).
    scratch: Vec<u8>,
}

impl<VA> Default for Front<VA> {
    fn default() -> Self {
        Front {
            entries: HashMap::default(),
            seq: 0,
            bytes: 0,
            scratch: Vec::new(),
        }
    }
}

/// The bytes counted for an entry whose key and value have these lengths.
fn entry_bytes(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + freshet_state_store::ThreadCache::ENTRY_OVERHEAD_BYTES
}

impl<VA> Front<VA> {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes counted for the entries.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn set_scratch(&mut self, key: &[u8], start: i64) {
        self.scratch.clear();
        self.scratch.extend_from_slice(key);
        self.scratch.extend_from_slice(&start.to_be_bytes());
    }

    /// The entry of `key`'s window at `start`.
    #[cfg(test)]
    pub(crate) fn get(&mut self, key: &[u8], start: i64) -> Option<&Entry<VA>> {
        self.set_scratch(key, start);
        self.entries.get(&self.scratch[..])
    }

    /// Updates the entry of `key`'s window at `start` in place, in one lookup: `f` gets its
    /// aggregate and timestamp and gives the new ones and the new value's encoded length
    /// (the latest update); `None` when the window is not in the front (`f` not called). An
    /// error from `f` leaves the entry as it was.
    pub(crate) fn update<E>(
        &mut self,
        key: &[u8],
        start: i64,
        f: impl FnOnce(&VA, i64) -> Result<(VA, i64, usize), E>,
    ) -> Option<Result<(), E>> {
        self.set_scratch(key, start);
        let e = self.entries.get_mut(&self.scratch[..])?;
        let (value, timestamp, value_len) = match f(&e.value, e.timestamp) {
            Ok(new) => new,
            Err(err) => return Some(Err(err)),
        };
        self.seq += 1;
        let size = entry_bytes(key.len() + 8, value_len);
        self.bytes = self.bytes - e.size + size;
        *e = Entry {
            value,
            timestamp,
            seq: self.seq,
            size,
        };
        Some(Ok(()))
    }

    /// Sets the aggregate of `key`'s window at `start` (its new value, encoded in
    /// `value_len` bytes), as the latest update.
    pub(crate) fn put(
        &mut self,
        key: &[u8],
        start: i64,
        value: VA,
        timestamp: i64,
        value_len: usize,
    ) {
        self.seq += 1;
        let seq = self.seq;
        let size = entry_bytes(key.len() + 8, value_len);
        self.set_scratch(key, start);
        if let Some(e) = self.entries.get_mut(&self.scratch[..]) {
            self.bytes = self.bytes - e.size + size;
            *e = Entry {
                value,
                timestamp,
                seq,
                size,
            };
            return;
        }
        self.bytes += size;
        let k = self.scratch.clone().into_boxed_slice();
        self.entries.insert(
            k,
            Entry {
                value,
                timestamp,
                seq,
                size,
            },
        );
    }

    /// Takes every entry out, least recently updated first, each under its front key
    /// (split it with [`key_and_start`]).
    pub(crate) fn drain(&mut self) -> Vec<(Box<[u8]>, Entry<VA>)> {
        let mut out: Vec<(Box<[u8]>, Entry<VA>)> = self.entries.drain().collect();
        out.sort_unstable_by_key(|(_, e)| e.seq);
        self.bytes = 0;
        out
    }
}

/// A front key's record-key bytes and window start.
pub(crate) fn key_and_start(k: &[u8]) -> (&[u8], i64) {
    let (key, start) = k.split_at(k.len().saturating_sub(8));
    let start = <[u8; 8]>::try_from(start).map_or(i64::MIN, i64::from_be_bytes);
    (key, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_latest_update_order_and_counts_like_the_cache() {
        let mut f = Front::<i64>::default();
        f.put(b"a", 0, 1, 5, 8);
        f.put(b"b", 0, 1, 6, 8);
        f.put(b"a", 10, 1, 7, 8);
        // `a`@0 again, in place: now the latest.
        let done = f.update(b"a", 0, |v, t| Ok::<_, ()>((v + 1, t.max(9), 8)));
        assert_eq!(done, Some(Ok(())));
        assert_eq!(f.update(b"c", 0, |v, t| Ok::<_, ()>((*v, t, 8))), None);
        // A failed update leaves the entry as it was.
        assert_eq!(f.update(b"b", 0, |_, _| Err("no")), Some(Err("no")));
        assert_eq!(f.get(b"a", 0).map(|e| (e.value, e.timestamp)), Some((2, 9)));
        assert!(f.get(b"c", 0).is_none());
        let one = entry_bytes(1 + 8, 8);
        assert_eq!(f.bytes(), 3 * one);
        let drained: Vec<(Vec<u8>, i64, i64)> = f
            .drain()
            .into_iter()
            .map(|(k, e)| {
                let (key, start) = key_and_start(&k);
                (key.to_vec(), start, e.value)
            })
            .collect();
        assert_eq!(
            drained,
            vec![
                (b"b".to_vec(), 0, 1),
                (b"a".to_vec(), 10, 1),
                (b"a".to_vec(), 0, 2)
            ]
        );
        assert!(f.is_empty());
        assert_eq!(f.bytes(), 0);
    }

    #[test]
    fn negative_and_large_window_starts_come_back_as_put() {
        let mut f = Front::<i64>::default();
        for start in [i64::MIN, -1, 0, i64::MAX] {
            f.put(b"k", start, start, 0, 8);
        }
        let mut starts: Vec<i64> = f
            .drain()
            .into_iter()
            .map(|(k, _)| key_and_start(&k).1)
            .collect();
        starts.sort_unstable();
        assert_eq!(starts, vec![i64::MIN, -1, 0, i64::MAX]);
    }
}
