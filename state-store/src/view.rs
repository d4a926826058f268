//! Read-only views of stores for interactive queries; [`ReadOnlyKeyValueView`] documents
//! what a view shows.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::{Backend, Tree};
use crate::error::Result;
use crate::kv::prefix_end;
use crate::layers::{decode, KvIter, Timestamped};

mod segmented;
mod session;
mod window;

pub use self::session::ReadOnlySessionView;
pub use self::window::ReadOnlyWindowView;

/// A read-only view of a key-value store's committed, applied state.
///
/// Read-only views of stores for interactive queries: committed state only —
/// [`ReadOnlyKeyValueView`], [`ReadOnlyWindowView`] and [`ReadOnlySessionView`].
///
/// A view reads a store's backend trees directly — never its write buffer, the writes sent in
/// the current commit, or the committed overlay — so it shows the store as of its last
/// apply (commit step 4): only data that the changelog has committed, never an uncommitted
/// write, and never a write that a later abort takes back. It has no write methods. Views
/// are cheap to clone, `Send` and `Sync`, so query threads may hold them while the stream
/// thread keeps writing.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use freshet_state_store::{
///     ChangelogPartition, ChangelogRecord, ChangelogSink, KeyValueStore, KvStore,
///     MemoryBackend, ReadOnlyKeyValueView, StateStore, Timestamped,
/// };
///
/// # #[derive(Debug)] struct Sink(i64);
/// # impl ChangelogSink for Sink {
/// #     fn append(&mut self, _: &ChangelogPartition, r: Vec<ChangelogRecord>)
/// #         -> Result<i64, freshet_state_store::ChangelogError> { self.0 += r.len() as i64; Ok(self.0 - 1) }
/// # }
/// let backend = Arc::new(MemoryBackend::new());
/// let changelog = ChangelogPartition { topic: "app-counts-changelog".into(), partition: 0 };
/// let mut store = KvStore::open("counts", backend.clone(), Some(changelog))?;
/// let view = ReadOnlyKeyValueView::open(backend, "counts")?;
///
/// store.put(Bytes::from("ann"), Some(Timestamped { value: Bytes::from("3"), timestamp: 10 }))?;
/// assert_eq!(view.get(b"ann")?, None, "not committed yet");
///
/// let mut sink = Sink(0);
/// store.send_changelog(&mut sink)?; // inside the transaction
/// store.committed(); // the transaction committed
/// store.apply()?;
/// assert_eq!(view.get(b"ann")?.map(|v| v.value), Some(Bytes::from("3")));
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
///
/// # Consistency
/// Each call reads the tree as it is at that moment. An iterator reads the tree in chunks
/// of a few thousand keys, each resumed after the last key returned, so it holds no lock
/// and little memory, and may see applies that land while it runs (as Kafka's interactive
/// queries may). A store wiped by a restore shows as empty until the restore has replayed
/// its changelog.
///
/// # Retention
/// Window and session views hide what the store hides: windows (sessions) whose start
/// (end) is at or before the store's **committed** stream time minus its retention. The
/// store persists that stream time with each apply, in the meta entries next to its applied
/// offset; a view reads it once per call. Segments the store has dropped are simply gone.
#[derive(Clone)]
pub struct ReadOnlyKeyValueView {
    store: String,
    backend: Arc<dyn Backend>,
}

impl fmt::Debug for ReadOnlyKeyValueView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlyKeyValueView")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl ReadOnlyKeyValueView {
    /// A view of the key-value store `store` in `backend` (the store's tree is named as the
    /// store).
    ///
    /// A store whose tree does not exist yet (never written, or just wiped by a restore)
    /// reads as empty; the view never creates it.
    pub fn open(backend: Arc<dyn Backend>, store: &str) -> Result<ReadOnlyKeyValueView> {
        Ok(ReadOnlyKeyValueView {
            store: store.to_string(),
            backend,
        })
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.store
    }

    /// The tree, looked up on every call (a restore that wipes the store replaces it);
    /// `None` while it does not exist.
    fn tree(&self) -> Result<Option<Arc<dyn Tree>>> {
        tree_of(&*self.backend, &self.store)
    }

    /// The committed value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Timestamped>> {
        let Some(tree) = self.tree()? else {
            return Ok(None);
        };
        match tree.get(key)? {
            Some(b) => decode(&self.store, &b).map(Some),
            None => Ok(None),
        }
    }

    /// Committed keys in `[from, to]` (both inclusive, as Kafka's `range`), ascending.
    pub fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'static>> {
        self.scan(Bound::Included(from), Bound::Included(to), false)
    }

    /// Committed keys in `[from, to]`, descending.
    pub fn reverse_range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'static>> {
        self.scan(Bound::Included(from), Bound::Included(to), true)
    }

    /// Committed keys starting with `prefix`, ascending.
    pub fn prefix_scan(&self, prefix: &[u8]) -> Result<KvIter<'static>> {
        let end = prefix_end(prefix);
        let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.scan(Bound::Included(prefix), to, false)
    }

    /// Every committed key, ascending.
    pub fn all(&self) -> Result<KvIter<'static>> {
        self.scan(Bound::Unbounded, Bound::Unbounded, false)
    }

    /// Every committed key, descending.
    pub fn reverse_all(&self) -> Result<KvIter<'static>> {
        self.scan(Bound::Unbounded, Bound::Unbounded, true)
    }

    /// About how many keys the store holds (applied ones).
    pub fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.tree()?.map_or(0, |t| t.approximate_len()))
    }

    /// The changelog offset the view's data reaches (the last one applied); `None` before
    /// the first apply of a changelogged store, and always for one without a changelog.
    pub fn applied_offset(&self) -> Result<Option<i64>> {
        match self.tree()? {
            Some(t) => t.applied_offset(),
            None => Ok(None),
        }
    }

    fn scan(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> Result<KvIter<'static>> {
        Ok(Box::new(Chunks::new(
            &self.store,
            self.store.clone(),
            self.backend.clone(),
            (own(from), own(to)),
            reverse,
        )))
    }
}

/// Entries read per look at the tree.
const CHUNK: usize = 4096;

/// Iterates a tree in chunks, each read through a freshly looked-up tree and resumed after
/// the last key returned: memory stays bounded and the iterator borrows nothing. A tree
/// that is gone (dropped by retention, or wiped) ends the iteration.
struct Chunks {
    /// The store, for errors.
    store: String,
    tree: String,
    backend: Arc<dyn Backend>,
    from: Bound<Bytes>,
    to: Bound<Bytes>,
    reverse: bool,
    buf: VecDeque<Result<(Bytes, Timestamped)>>,
    done: bool,
}

impl Chunks {
    fn new(
        store: &str,
        tree: String,
        backend: Arc<dyn Backend>,
        (from, to): (Bound<Bytes>, Bound<Bytes>),
        reverse: bool,
    ) -> Chunks {
        Chunks {
            store: store.to_string(),
            tree,
            backend,
            from,
            to,
            reverse,
            buf: VecDeque::new(),
            done: false,
        }
    }

    fn refill(&mut self) -> Result<()> {
        let Some(tree) = tree_of(&*self.backend, &self.tree)? else {
            self.done = true;
            return Ok(());
        };
        let mut n = 0;
        let mut last = None;
        for item in tree
            .range(borrow(&self.from), borrow(&self.to), self.reverse)
            .take(CHUNK)
        {
            n += 1;
            let (k, b) = item?;
            last = Some(k.clone());
            self.buf.push_back(decode(&self.store, &b).map(|v| (k, v)));
        }
        match last {
            Some(k) if n == CHUNK => {
                if self.reverse {
                    self.to = Bound::Excluded(k);
                } else {
                    self.from = Bound::Excluded(k);
                }
            }
            _ => self.done = true,
        }
        Ok(())
    }
}

impl Iterator for Chunks {
    type Item = Result<(Bytes, Timestamped)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() && !self.done {
            if let Err(e) = self.refill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.buf.pop_front()
    }
}

fn tree_of(backend: &dyn Backend, name: &str) -> Result<Option<Arc<dyn Tree>>> {
    if backend.tree_names()?.iter().any(|n| n == name) {
        backend.open_tree(name).map(Some)
    } else {
        Ok(None)
    }
}

fn own(b: Bound<&[u8]>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn borrow(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
