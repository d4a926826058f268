//! An aggregation's typed front cache: the windows (time-window aggregations) or keys
//! (key-value `count` / `reduce` / `aggregate`, each key under window start 0) updated
//! since the last commit, as typed aggregates, in front of the store's record cache.
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
//! Entries are grouped by key, the key last looked up remembered: a hopping window's record
//! updates its key's windows one after another, so that is one hash lookup per record
//! rather than one per window (each a cache miss on a large front), and the windows'
//! aggregates sit side by side.
//!
//! Only the aggregation's own updates may pass through the front: it is used only when no
//! other node reads the store (no join reads the table, no processor is connected
//! to it), when the store caches (a budget of 0 writes every update through), and when
//! time windows emit on update (emit-final does not use the cache). Interactive queries read
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

use std::hash::BuildHasher;

use hashbrown::HashTable;
use smallvec::SmallVec;

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

/// One key's windows in the front. A record of a hopping window updates several windows
/// of one key in a row; keeping them together makes that one hash lookup, and their
/// aggregates share cache lines.
///
/// Short keys and a key's first window live in the entry itself: a lookup reads the hash
/// table, then this entry — no pointer chased to compare the key or reach the window.
#[derive(Debug)]
struct KeyWindows<VA> {
    key: SmallVec<[u8; 16]>,
    /// By window start, in the order they came (a key has a handful).
    windows: SmallVec<[(i64, Entry<VA>); 1]>,
}

/// The windows updated since the last flush, by key bytes and window start.
#[derive(Debug)]
pub(crate) struct Front<VA> {
    /// The places in `keys`, by their key's hash.
    index: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    keys: Vec<KeyWindows<VA>>,
    /// The place of the key looked up last: the next lookup is most often the same key's.
    last: Option<usize>,
    /// Updates so far: each update's sequence number.
    seq: u64,
    /// Bytes counted for the entries.
    bytes: usize,
    /// Windows in the front.
    len: usize,
}

impl<VA> Default for Front<VA> {
    fn default() -> Self {
        Front {
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            keys: Vec::new(),
            last: None,
            seq: 0,
            bytes: 0,
            len: 0,
        }
    }
}

/// The bytes counted for an entry whose key and value have these lengths.
fn entry_bytes(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + freshet_state_store::ThreadCache::ENTRY_OVERHEAD_BYTES
}

/// Whether `a` and `b` hold the same bytes. Keys of 8 to 16 bytes (most keys) compare as
/// two 8-byte words, inline: a slice comparison of unknown length is a call to `memcmp`,
/// and every record compares its key at least once (with the last key looked up).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        return a[..8] == b[..8] && a[n - 8..] == b[n - 8..];
    }
    a == b
}

/// The front's windows in the order of their latest updates, as [`Front::drain`] hands
/// them over.
pub(crate) struct Drained<VA> {
    keys: Vec<SmallVec<[u8; 16]>>,
    /// (the key's place in `keys`, window start, entry), least recently updated first.
    windows: Vec<(usize, i64, Entry<VA>)>,
}

impl<VA> Drained<VA> {
    /// Each window's key bytes, start and entry, least recently updated first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], i64, &Entry<VA>)> {
        self.windows
            .iter()
            .map(|(k, start, e)| (&self.keys[*k][..], *start, e))
    }
}

impl<VA> Front<VA> {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes counted for the entries.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The place of `key` in `keys`, if it has windows in the front.
    fn find(&mut self, key: &[u8]) -> Option<usize> {
        if let Some(i) = self.last {
            if same_bytes(&self.keys[i].key, key) {
                return Some(i);
            }
        }
        let keys = &self.keys;
        let hash = self.hasher.hash_one(key);
        let i = *self.index.find(hash, |&i| same_bytes(&keys[i].key, key))?;
        self.last = Some(i);
        Some(i)
    }

    /// The entry of `key`'s window at `start`.
    #[cfg(test)]
    pub(crate) fn get(&mut self, key: &[u8], start: i64) -> Option<&Entry<VA>> {
        let i = self.find(key)?;
        self.keys[i]
            .windows
            .iter()
            .find(|(s, _)| *s == start)
            .map(|(_, e)| e)
    }

    /// Updates the entry of `key`'s window at `start` in place: `f` gets its aggregate and
    /// timestamp and gives the new ones and the new value's encoded length (the latest
    /// update); `None` when the window is not in the front (`f` not called). An error from
    /// `f` leaves the entry as it was.
    pub(crate) fn update<E>(
        &mut self,
        key: &[u8],
        start: i64,
        f: impl FnOnce(&VA, i64) -> Result<(VA, i64, usize), E>,
    ) -> Option<Result<(), E>> {
        let i = self.find(key)?;
        let (_, e) = self.keys[i].windows.iter_mut().find(|(s, _)| *s == start)?;
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
        let size = entry_bytes(key.len() + 8, value_len);
        let entry = Entry {
            value,
            timestamp,
            seq: self.seq,
            size,
        };
        let i = match self.find(key) {
            Some(i) => i,
            None => {
                let i = self.keys.len();
                self.keys.push(KeyWindows {
                    key: SmallVec::from_slice(key),
                    windows: SmallVec::new(),
                });
                let (keys, hasher) = (&self.keys, &self.hasher);
                self.index
                    .insert_unique(hasher.hash_one(key), i, |&j| hasher.hash_one(&*keys[j].key));
                self.last = Some(i);
                i
            }
        };
        let windows = &mut self.keys[i].windows;
        if let Some((_, e)) = windows.iter_mut().find(|(s, _)| *s == start) {
            self.bytes = self.bytes - e.size + size;
            *e = entry;
        } else {
            self.bytes += size;
            self.len += 1;
            windows.push((start, entry));
        }
    }

    /// Takes every entry out, least recently updated first.
    pub(crate) fn drain(&mut self) -> Drained<VA> {
        let mut windows = Vec::with_capacity(self.len);
        let mut keys = Vec::with_capacity(self.keys.len());
        for (place, kw) in self.keys.drain(..).enumerate() {
            keys.push(kw.key);
            windows.extend(kw.windows.into_iter().map(|(s, e)| (place, s, e)));
        }
        windows.sort_unstable_by_key(|(_, _, e)| e.seq);
        self.index.clear();
        self.last = None;
        self.bytes = 0;
        self.len = 0;
        Drained { keys, windows }
    }
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
            .iter()
            .map(|(key, start, e)| (key.to_vec(), start, e.value))
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

    proptest::proptest! {
        /// Random puts and updates over keys short and long (inline and not) and a few
        /// windows, against a plain map of (key, start) → (value, last update): every
        /// lookup, the byte count and the drain order agree.
        #[test]
        fn behaves_like_a_map_ordered_by_latest_update(
            ops in proptest::collection::vec((0u8..24, 0i64..3, 0i64..100, proptest::bool::ANY), 1..300)
        ) {
            let mut f = Front::<i64>::default();
            let mut model: std::collections::HashMap<(Vec<u8>, i64), (i64, u64)> =
                std::collections::HashMap::new();
            let mut seq = 0u64;
            for (k, start, v, is_put) in ops {
                let key = vec![b'k'; usize::from(k) + 1];
                let in_model = model.contains_key(&(key.clone(), start));
                if is_put {
                    f.put(&key, start, v, v, 8);
                } else {
                    let done = f.update(&key, start, |old, t| Ok::<_, ()>((old + v, t.max(v), 8)));
                    proptest::prop_assert_eq!(done.is_some(), in_model);
                    if !in_model {
                        continue;
                    }
                }
                seq += 1;
                let e = model.entry((key.clone(), start)).or_insert((0, 0));
                *e = (if is_put { v } else { e.0 + v }, seq);
                proptest::prop_assert_eq!(f.get(&key, start).map(|e| e.value), Some(model[&(key, start)].0));
            }
            let bytes: usize = model.keys().map(|(k, _)| entry_bytes(k.len() + 8, 8)).sum();
            proptest::prop_assert_eq!(f.bytes(), bytes);
            let mut want: Vec<_> = model.into_iter().collect();
            want.sort_by_key(|(_, (_, seq))| *seq);
            let want: Vec<(Vec<u8>, i64, i64)> =
                want.into_iter().map(|((k, s), (v, _))| (k, s, v)).collect();
            let got: Vec<(Vec<u8>, i64, i64)> =
                f.drain().iter().map(|(k, s, e)| (k.to_vec(), s, e.value)).collect();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert!(f.is_empty());
        }
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let all: Vec<Vec<u8>> = (0..=20usize)
            .flat_map(|n| {
                let base: Vec<u8> = (0..n).map(|i| i as u8).collect();
                let mut variants = vec![base.clone()];
                for i in 0..n {
                    let mut v = base.clone();
                    v[i] ^= 0x80;
                    variants.push(v);
                }
                variants
            })
            .collect();
        for a in &all {
            for b in &all {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn negative_and_large_window_starts_come_back_as_put() {
        let mut f = Front::<i64>::default();
        for start in [i64::MIN, -1, 0, i64::MAX] {
            f.put(b"k", start, start, 0, 8);
        }
        let mut starts: Vec<i64> = f.drain().iter().map(|(_, start, _)| start).collect();
        starts.sort_unstable();
        assert_eq!(starts, vec![i64::MIN, -1, 0, i64::MAX]);
    }
}
