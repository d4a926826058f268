//! Key-value stores: byte-level over the layers, one tree per store.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::changelog::{ChangelogPartition, ChangelogReader, ChangelogSink};
use crate::error::Result;
use crate::layers::{KvIter, Layers, RestoreStats, Router, Timestamped};
use crate::serde::compact_bytes;
use crate::store::StateStore;

/// Kafka's `KeyValueStore` over bytes, each value with its timestamp.
///
/// Iteration is in key order (lexicographic on the bytes), as Kafka's stores iterate.
pub trait KeyValueStore: StateStore {
    /// The value of `key`.
    fn get(&mut self, key: &[u8]) -> Result<Option<Timestamped>>;
    /// Sets `key` (a `None` value deletes it, as in Kafka).
    fn put(&mut self, key: Bytes, value: Option<Timestamped>) -> Result<()>;
    /// [`put`](KeyValueStore::put) with a borrowed key, copied only where the store keeps a
    /// new one: an aggregation updating a key the record cache holds allocates no key.
    fn put_slice(&mut self, key: &[u8], value: Option<Timestamped>) -> Result<()> {
        self.put(compact_bytes(key), value)
    }
    /// Sets `key` only when it has no value; returns the existing value, if any.
    fn put_if_absent(&mut self, key: Bytes, value: Timestamped) -> Result<Option<Timestamped>> {
        match self.get(&key)? {
            Some(old) => Ok(Some(old)),
            None => {
                self.put(key, Some(value))?;
                Ok(None)
            }
        }
    }
    /// Sets many keys.
    fn put_all(&mut self, entries: Vec<(Bytes, Option<Timestamped>)>) -> Result<()> {
        for (k, v) in entries {
            self.put(k, v)?;
        }
        Ok(())
    }
    /// Deletes `key`; returns its old value.
    fn delete(&mut self, key: &[u8]) -> Result<Option<Timestamped>> {
        let old = self.get(key)?;
        self.put(Bytes::copy_from_slice(key), None)?;
        Ok(old)
    }
    /// Keys in `[from, to]` (both inclusive, as Kafka's `range`), ascending.
    fn range(&mut self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>>;
    /// Keys in `[from, to]`, descending.
    fn reverse_range(&mut self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>>;
    /// Keys starting with `prefix`, ascending.
    fn prefix_scan(&mut self, prefix: &[u8]) -> Result<KvIter<'_>>;
    /// Every key, ascending.
    fn all(&mut self) -> Result<KvIter<'_>>;
    /// Every key, descending.
    fn reverse_all(&mut self) -> Result<KvIter<'_>>;
    /// About how many keys the store holds (committed ones).
    fn approximate_num_entries(&self) -> u64;
}

/// A key-value store on sled or memory, changelogged.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use freshet_state_store::{KeyValueStore, KvStore, MemoryBackend, Timestamped};
/// let mut store = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
/// store.put(Bytes::from("ann"), Some(Timestamped { value: Bytes::from("3"), timestamp: 10 }))?;
/// assert_eq!(store.get(b"ann")?.map(|v| v.value), Some(Bytes::from("3")));
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug)]
pub struct KvStore {
    layers: Layers,
    tree: String,
}

struct KvRouter(String);

impl Router for KvRouter {
    fn tree_for(&self, _key: &[u8]) -> Option<String> {
        Some(self.0.clone())
    }
    fn owns(&self, tree: &str) -> bool {
        tree == self.0
    }
}

impl KvStore {
    /// Opens the store `name` in `backend`, with its changelog partition (`None`: not
    /// logged).
    pub fn open(
        name: &str,
        backend: Arc<dyn Backend>,
        changelog: Option<ChangelogPartition>,
    ) -> Result<KvStore> {
        let mut layers = Layers::open(name, backend, changelog)?;
        layers.ensure_tree(name)?;
        Ok(KvStore {
            layers,
            tree: name.to_string(),
        })
    }

    fn scan(&mut self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> Result<KvIter<'_>> {
        self.layers.range(&self.tree, from, to, reverse)
    }
}

/// The smallest key greater than every key starting with `prefix` (`None`: unbounded).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl KeyValueStore for KvStore {
    fn get(&mut self, key: &[u8]) -> Result<Option<Timestamped>> {
        self.layers.get(&self.tree, key)
    }
    fn put(&mut self, key: Bytes, value: Option<Timestamped>) -> Result<()> {
        self.layers.put(&self.tree, key, value)
    }
    fn range(&mut self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        self.scan(Bound::Included(from), Bound::Included(to), false)
    }
    fn reverse_range(&mut self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        self.scan(Bound::Included(from), Bound::Included(to), true)
    }
    fn prefix_scan(&mut self, prefix: &[u8]) -> Result<KvIter<'_>> {
        let end = prefix_end(prefix);
        let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let prefix = prefix.to_vec();
        let tree = self.tree.clone();
        self.layers
            .range(&tree, Bound::Included(&prefix), to, false)
    }
    fn all(&mut self) -> Result<KvIter<'_>> {
        self.scan(Bound::Unbounded, Bound::Unbounded, false)
    }
    fn reverse_all(&mut self) -> Result<KvIter<'_>> {
        self.scan(Bound::Unbounded, Bound::Unbounded, true)
    }
    fn approximate_num_entries(&self) -> u64 {
        self.layers.approximate_len(&self.tree)
    }
}

impl StateStore for KvStore {
    fn name(&self) -> &str {
        &self.layers.store
    }
    fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        self.layers.send_changelog(sink)
    }
    fn committed(&mut self) {
        self.layers.committed();
    }
    fn apply(&mut self) -> Result<()> {
        self.layers.apply()
    }
    fn abort(&mut self) {
        self.layers.abort();
    }
    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        let router = KvRouter(self.tree.clone());
        self.layers.restore(reader, &router)
    }
    fn write_buffer_bytes(&self) -> usize {
        self.layers.buffer_bytes()
    }
}
