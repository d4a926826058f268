//! Where committed state finally lives: named, ordered byte trees in sled or in memory.
//!
//! A store owns one tree (key-value) or several (window and session stores: one per time
//! segment). Each tree records the changelog offset it has applied, written in the same
//! atomic batch as the data — the basis of restoring without wipes.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::applies::Applies;
use crate::error::{Error, Result};
use crate::serde::compact_bytes;

/// A key and its new stored bytes (`None` deletes it).
pub type Write = (Bytes, Option<Bytes>);

/// An iterator over `(key, stored bytes)` in key order (or reverse).
pub type TreeIter<'a> = Box<dyn Iterator<Item = Result<(Bytes, Bytes)>> + Send + 'a>;

/// A set of named trees: sled, or memory.
pub trait Backend: Send + Sync + Debug {
    /// Opens (creating when missing) a tree.
    fn open_tree(&self, name: &str) -> Result<Arc<dyn Tree>>;
    /// Deletes a tree and its data; true if it existed.
    fn drop_tree(&self, name: &str) -> Result<bool>;
    /// Names of the existing trees.
    fn tree_names(&self) -> Result<Vec<String>>;
    /// Whether the backend keeps state across restarts (sled does, memory does not).
    fn is_persistent(&self) -> bool;
    /// Where stores register the applies they run in the background (see
    /// [`Applies`]); `None`, the default, makes stores apply inline, so that `apply`
    /// returns with the writes in the backend. The runtime opts in for its tasks' stores.
    fn applies(&self) -> Option<Arc<Applies>> {
        None
    }
}

/// One ordered tree of byte keys and values.
pub trait Tree: Send + Sync + Debug {
    /// The tree's name.
    fn name(&self) -> &str;
    /// The stored bytes of a key.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Keys in `[from, to]` bounds, ascending or (`reverse`) descending.
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> TreeIter<'_>;
    /// Applies writes and, when given, records `applied_offset` with the last of them.
    ///
    /// The offset is atomic with the writes, not the writes with each other: a crash during
    /// the call may leave some of the writes applied and the offset where it was (sled
    /// applies them in chunks of a few hundred, because its memory grows far past its
    /// page cache with large batches). Restore replays the changelog after a tree's applied
    /// offset in order, last write winning, so it rewrites such a prefix with the same or
    /// newer values; stores must only tolerate seeing it before their restore runs.
    fn apply(&self, writes: &[Write], applied_offset: Option<i64>) -> Result<()>;
    /// The changelog offset recorded by the last `apply` that gave one.
    fn applied_offset(&self) -> Result<Option<i64>>;
    /// About how many keys the tree holds.
    fn approximate_len(&self) -> u64;
    /// Whether the tree holds no key (its applied offset aside).
    fn is_empty(&self) -> Result<bool> {
        match self.range(Bound::Unbounded, Bound::Unbounded, false).next() {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(e)) => Err(e),
        }
    }
    /// Deletes every key and the applied offset.
    fn clear(&self) -> Result<()>;
}

/// In-memory trees (a `BTreeMap` each): nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    trees: RwLock<BTreeMap<String, Arc<MemoryTree>>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }
}

impl Backend for MemoryBackend {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        let mut trees = self.trees.write();
        let t = trees.entry(name.to_string()).or_insert_with(|| {
            Arc::new(MemoryTree {
                name: name.to_string(),
                data: RwLock::new((BTreeMap::new(), None)),
            })
        });
        Ok(t.clone())
    }
    fn drop_tree(&self, name: &str) -> Result<bool> {
        Ok(self.trees.write().remove(name).is_some())
    }
    fn tree_names(&self) -> Result<Vec<String>> {
        Ok(self.trees.read().keys().cloned().collect())
    }
    fn is_persistent(&self) -> bool {
        false
    }
}

/// One in-memory tree.
#[derive(Debug)]
pub(crate) struct MemoryTree {
    name: String,
    data: RwLock<(BTreeMap<Bytes, Bytes>, Option<i64>)>,
}

fn owned(b: Bound<&[u8]>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn empty_range(from: &Bound<Bytes>, to: &Bound<Bytes>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

impl Tree for MemoryTree {
    fn name(&self) -> &str {
        &self.name
    }
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.data.read().0.get(key).cloned())
    }
    fn is_empty(&self) -> Result<bool> {
        Ok(self.data.read().0.is_empty())
    }
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> TreeIter<'_> {
        let (from, to) = (owned(from), owned(to));
        if empty_range(&from, &to) {
            return Box::new(std::iter::empty());
        }
        // A snapshot of the range: the map's lock is not held while the caller iterates.
        let data = self.data.read();
        let mut items: Vec<(Bytes, Bytes)> = data
            .0
            .range((from, to))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if reverse {
            items.reverse();
        }
        Box::new(items.into_iter().map(Ok))
    }
    fn apply(&self, writes: &[Write], applied_offset: Option<i64>) -> Result<()> {
        let mut data = self.data.write();
        for (k, v) in writes {
            match v {
                Some(v) => {
                    // Copies, not clones: a write's bytes may be a slice of a buffer shared
                    // with many others (a flush piece, an apply batch), which a clone kept
                    // here would pin for as long as the key lives.
                    data.0.insert(compact_bytes(k), compact_bytes(v));
                }
                None => {
                    data.0.remove(k);
                }
            }
        }
        if applied_offset.is_some() {
            data.1 = applied_offset;
        }
        Ok(())
    }
    fn applied_offset(&self) -> Result<Option<i64>> {
        Ok(self.data.read().1)
    }
    fn approximate_len(&self) -> u64 {
        self.data.read().0.len() as u64
    }
    fn clear(&self) -> Result<()> {
        let mut data = self.data.write();
        data.0.clear();
        data.1 = None;
        Ok(())
    }
}

/// Trees in one sled database (one per app instance; its page cache is
/// `state.sled.cache.bytes`).
///
/// Inside a tree, data keys carry the prefix byte `0x01` and the applied offset lives under
/// the key `[0x00]`, so both go in one sled batch.
#[derive(Debug, Clone)]
pub struct SledBackend {
    db: sled::Db,
}

/// Writes per sled batch in [`Tree::apply`]: sled 0.34's resident memory grows to many
/// times its page cache when one batch holds tens of thousands of writes (a million 25-byte
/// inserts in batches of 50,000: 3.4 GiB; in batches of 256: about 160 MiB), and small
/// batches are no slower.
pub(crate) const APPLY_CHUNK: usize = 256;

const META_PREFIX: u8 = 0x00;
const DATA_PREFIX: u8 = 0x01;

/// Removes the snapshots sled left half-written in `dir` (`snap.*.generating`); returns
/// whether there were any.
fn remove_partial_snapshots(dir: &Path) -> Result<bool> {
    let io = |e: std::io::Error| Error::Sled {
        store: dir.display().to_string(),
        source: sled::Error::Io(e),
    };
    let mut removed = false;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(file = %entry.path().display(), "removing a snapshot sled left half-written");
            std::fs::remove_file(entry.path()).map_err(io)?;
            removed = true;
        }
    }
    Ok(removed)
}

impl SledBackend {
    /// Opens (creating) a sled database at `path` with a page cache of `cache_bytes`.
    ///
    /// sled 0.34 releases its directory lock only when its flusher thread exits, a moment
    /// after the last handle drops (spacejam/sled#1234), so reopening right after closing
    /// in the same process can find the lock still held (for longer on a loaded machine): the
    /// open retries for up to five seconds while the lock is busy.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledBackend> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            match config.open() {
                Ok(db) => return Ok(SledBackend { db }),
                // sled reports a busy lock as a plain I/O error with this text (0.34.7,
                // `Config::try_lock`).
                Err(sled::Error::Io(e))
                    if e.to_string().starts_with("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                // sled 0.34 writes a snapshot to `snap.<lsn>.generating` and renames it when
                // done; a process killed meanwhile leaves the partial file, which the next
                // open reads and reports as corrupt (spacejam/sled#1527). The snapshot only
                // summarizes the log, so the partial one is removed and the open retried.
                Err(sled::Error::Corruption { .. }) if remove_partial_snapshots(path)? => {}
                Err(source) => {
                    return Err(Error::Sled {
                        store: path.display().to_string(),
                        source,
                    })
                }
            }
        }
    }

    /// Flushes sled's buffers to disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(|source| Error::Sled {
            store: "(database)".into(),
            source,
        })
    }
}

impl Backend for SledBackend {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        let tree = self.db.open_tree(name).map_err(|source| Error::Sled {
            store: name.to_string(),
            source,
        })?;
        Ok(Arc::new(SledTree {
            name: name.to_string(),
            tree,
        }))
    }
    fn drop_tree(&self, name: &str) -> Result<bool> {
        self.db.drop_tree(name).map_err(|source| Error::Sled {
            store: name.to_string(),
            source,
        })
    }
    fn tree_names(&self) -> Result<Vec<String>> {
        Ok(self
            .db
            .tree_names()
            .into_iter()
            .filter_map(|n| String::from_utf8(n.to_vec()).ok())
            .filter(|n| n != "__sled__default")
            .collect())
    }
    fn is_persistent(&self) -> bool {
        true
    }
}

/// One sled tree.
#[derive(Debug)]
pub(crate) struct SledTree {
    name: String,
    tree: sled::Tree,
}

impl SledTree {
    fn err(&self, source: sled::Error) -> Error {
        Error::Sled {
            store: self.name.clone(),
            source,
        }
    }
}

fn prefixed(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(DATA_PREFIX);
    k.extend_from_slice(key);
    k
}

/// [`prefixed`] as a sled key, built on the stack: sled keeps keys of up to 22 bytes inline,
/// so a short key costs no allocation (restore and apply write every key through here).
fn prefixed_ivec(key: &[u8]) -> sled::IVec {
    let mut buf = [0u8; 32];
    match buf.get_mut(1..=key.len()) {
        Some(rest) => {
            rest.copy_from_slice(key);
            buf[0] = DATA_PREFIX;
            sled::IVec::from(&buf[..=key.len()])
        }
        None => sled::IVec::from(prefixed(key)),
    }
}

fn prefixed_bound(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(prefixed(k)),
        Bound::Excluded(k) => Bound::Excluded(prefixed(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Tree for SledTree {
    fn name(&self) -> &str {
        &self.name
    }
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let v = self.tree.get(prefixed(key)).map_err(|e| self.err(e))?;
        Ok(v.map(|v| Bytes::copy_from_slice(&v)))
    }
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> TreeIter<'_> {
        let from = match prefixed_bound(from) {
            Bound::Unbounded => Bound::Included(vec![DATA_PREFIX]),
            b => b,
        };
        let to = match prefixed_bound(to) {
            Bound::Unbounded => Bound::Excluded(vec![DATA_PREFIX + 1]),
            b => b,
        };
        if empty_range(&map_bound(&from), &map_bound(&to)) {
            return Box::new(std::iter::empty());
        }
        let iter = self.tree.range::<Vec<u8>, _>((from, to));
        let name = self.name.clone();
        let map = move |item: sled::Result<(sled::IVec, sled::IVec)>| match item {
            Ok((k, v)) => Ok((Bytes::copy_from_slice(&k[1..]), Bytes::copy_from_slice(&v))),
            Err(source) => Err(Error::Sled {
                store: name.clone(),
                source,
            }),
        };
        if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        }
    }
    fn apply(&self, writes: &[Write], applied_offset: Option<i64>) -> Result<()> {
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for (k, v) in writes {
            if in_batch == APPLY_CHUNK {
                self.tree
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| self.err(e))?;
                in_batch = 0;
            }
            match v {
                Some(v) => batch.insert(prefixed_ivec(k), v.as_ref()),
                None => batch.remove(prefixed_ivec(k)),
            }
            in_batch += 1;
        }
        // The offset goes with the last chunk: it never claims writes not applied.
        if let Some(o) = applied_offset {
            batch.insert(vec![META_PREFIX], &o.to_be_bytes()[..]);
        }
        self.tree.apply_batch(batch).map_err(|e| self.err(e))
    }
    fn applied_offset(&self) -> Result<Option<i64>> {
        let v = self.tree.get([META_PREFIX]).map_err(|e| self.err(e))?;
        match v {
            None => Ok(None),
            Some(v) if v.len() == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&v);
                Ok(Some(i64::from_be_bytes(a)))
            }
            Some(_) => Err(Error::Corrupt {
                store: self.name.clone(),
                reason: "applied offset is not 8 bytes".into(),
            }),
        }
    }
    fn approximate_len(&self) -> u64 {
        // The applied offset shares the tree, but only once an apply has recorded one.
        let meta = matches!(self.tree.contains_key([META_PREFIX]), Ok(true));
        (self.tree.len() as u64).saturating_sub(u64::from(meta))
    }
    fn clear(&self) -> Result<()> {
        self.tree.clear().map_err(|e| self.err(e))
    }
}

fn map_bound(b: &Bound<Vec<u8>>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_io(e: std::io::Error) -> Error {
        Error::Corrupt {
            store: "test".into(),
            reason: e.to_string(),
        }
    }

    #[test]
    fn the_memory_backend_keeps_copies_not_slices_of_a_shared_buffer() -> Result<()> {
        let shared = Bytes::from(vec![7u8; 4096]);
        let tree = MemoryBackend::new().open_tree("t")?;
        tree.apply(&[(shared.slice(0..4), Some(shared.slice(4..12)))], Some(1))?;
        assert_eq!(tree.get(&[7u8; 4])?, Some(shared.slice(4..12)));
        // Nothing the tree keeps refers to the 4 KiB buffer any more.
        assert!(shared.is_unique());
        Ok(())
    }

    #[test]
    fn a_sled_apply_of_several_chunks_writes_everything_and_the_offset() -> Result<()> {
        let dir = tempfile::tempdir().map_err(test_io)?;
        let backend = SledBackend::open(dir.path(), 1 << 20)?;
        let tree = backend.open_tree("t")?;
        let n = APPLY_CHUNK * 3 + 7;
        let key = |i: usize| Bytes::from((i as u32).to_be_bytes().to_vec());
        let puts: Vec<Write> = (0..n).map(|i| (key(i), Some(key(i)))).collect();
        tree.apply(&puts, Some(5))?;
        // Deletes of every other key, the last chunk of the batch carrying the offset.
        let deletes: Vec<Write> = (0..n).step_by(2).map(|i| (key(i), None)).collect();
        tree.apply(&deletes, Some(9))?;
        assert_eq!(tree.applied_offset()?, Some(9));
        let left: Vec<Bytes> = tree
            .range(Bound::Unbounded, Bound::Unbounded, false)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_>>()?;
        let want: Vec<Bytes> = (0..n).filter(|i| i % 2 == 1).map(key).collect();
        assert_eq!(left, want);
        // An empty apply still records its offset.
        tree.apply(&[], Some(11))?;
        assert_eq!(tree.applied_offset()?, Some(11));
        Ok(())
    }

    #[test]
    fn a_snapshot_left_half_written_is_removed_and_the_data_kept() -> Result<()> {
        let dir = tempfile::tempdir().map_err(test_io)?;
        {
            let backend = SledBackend::open(dir.path(), 1 << 20)?;
            let tree = backend.open_tree("t")?;
            tree.apply(&[(Bytes::from("k"), Some(Bytes::from("v")))], Some(3))?;
            backend.flush()?;
        }
        // What a process killed while sled wrote a snapshot leaves behind.
        let partial = dir.path().join("snap.7FFFFFFFFFFFFFFF.generating");
        std::fs::write(&partial, b"half a snapshot").map_err(test_io)?;
        let backend = SledBackend::open(dir.path(), 1 << 20)?;
        assert!(!partial.exists());
        let tree = backend.open_tree("t")?;
        assert_eq!(tree.applied_offset()?, Some(3));
        assert_eq!(tree.get(b"k")?, Some(Bytes::from("v")));
        Ok(())
    }
}
