//! The layers every store is made of: a write buffer of uncommitted writes, the writes sent
//! to the changelog and awaiting the commit, a committed overlay not yet applied to the
//! backend, and the backend trees. Reads merge them, newest first.
//!
//! The commit protocol (../shared/ARCHITECTURE.md) drives them:
//! [`Layers::send_changelog`] (inside the commit's transaction), then [`Layers::committed`]
//! once the transaction commits (or [`Layers::abort`] if it does not), then
//! [`Layers::apply`]: one backend batch per tree, each with the changelog offset it reaches,
//! then the store's own applied offset. So the backend only ever holds committed data, and a
//! crash at any point needs no wipe: restore replays the committed changelog after the
//! applied offsets.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::applies::{Applies, Applying};
use crate::backend::{Backend, Tree, TreeIter, Write};
use crate::changelog::{ChangelogPartition, ChangelogReader, ChangelogRecord, ChangelogSink};
use crate::error::{Error, Result};
use crate::filter::KeyFilter;

/// Name of the tree holding each store's applied offset and changelog topic id.
pub(crate) const META_TREE: &str = "__freshet_meta";

/// A value and its timestamp, as every store keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamped<V = Bytes> {
    /// The value.
    pub value: V,
    /// Its timestamp (ms since the epoch).
    pub timestamp: i64,
}

/// An iterator of `(key, value with timestamp)`.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Bytes, Timestamped)>> + Send + 'a>;

/// A layer's view of a key: `Some` value, or `None` for deleted.
pub(crate) type Layer = BTreeMap<Bytes, Option<Timestamped>>;

pub(crate) fn encode(v: &Timestamped) -> Bytes {
    let mut b = Vec::with_capacity(8 + v.value.len());
    b.extend_from_slice(&v.timestamp.to_be_bytes());
    b.extend_from_slice(&v.value);
    Bytes::from(b)
}

/// A layer's writes as the backend stores them, the values encoded into one buffer
/// (the backend copies them; one allocation per batch rather than one per value).
fn encode_all(layer: &Layer) -> Vec<Write> {
    let size = layer
        .values()
        .map(|v| v.as_ref().map_or(0, |v| 8 + v.value.len()))
        .sum();
    let mut values = BytesMut::with_capacity(size);
    layer
        .iter()
        .map(|(k, v)| {
            let value = v.as_ref().map(|v| {
                // As `encode` lays it out.
                values.extend_from_slice(&v.timestamp.to_be_bytes());
                values.extend_from_slice(&v.value);
                values.split().freeze()
            });
            (k.clone(), value)
        })
        .collect()
}

/// Puts `newer`'s entries over `layer`'s (`newer` wins on equal keys). Inserting key by key
/// costs a tree search each, with a cache miss per level; when `newer` is not small
/// against `layer` (a commit's writes over the last commit's, mostly the same keys),
/// `BTreeMap::append` walks both once in order and builds the merged tree in bulk instead.
fn merge_newer(layer: &mut Layer, mut newer: Layer) {
    if layer.is_empty() {
        *layer = newer;
        return;
    }
    // Key by key: about len(newer) * log2(len(layer)) comparisons, scattered; appending:
    // about len(layer) + len(newer), in order.
    let depth = usize::BITS - layer.len().leading_zeros();
    if newer.len().saturating_mul(depth as usize) < layer.len() {
        layer.extend(newer);
    } else {
        layer.append(&mut newer);
    }
}

pub(crate) fn decode(store: &str, b: &Bytes) -> Result<Timestamped> {
    if b.len() < 8 {
        return Err(Error::Corrupt {
            store: store.to_string(),
            reason: format!("stored value of {} bytes has no timestamp", b.len()),
        });
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&b[..8]);
    Ok(Timestamped {
        value: b.slice(8..),
        timestamp: i64::from_be_bytes(ts),
    })
}

/// Decides which tree a changelog key belongs to during restore (`None`: drop it, e.g. a
/// window past retention).
pub(crate) trait Router {
    fn tree_for(&self, key: &[u8]) -> Option<String>;
    /// Whether a backend tree belongs to this store (what a wipe deletes).
    fn owns(&self, tree: &str) -> bool;
    /// Told once, before any record is routed, whether restore wiped local state first
    /// (window and session stores then forget their persisted stream time).
    fn begin(&self, _wiped: bool) {}
    /// Extra meta entries (`what`, value) written in the same batch as each restored
    /// batch's applied offset (window and session stores keep their stream time there, so a
    /// crash during restore never leaves it behind the applied offset).
    fn meta(&self) -> Vec<(&'static str, Bytes)> {
        Vec::new()
    }
}

/// Changelog records restore reads, and writes to the backend, per batch.
pub(crate) const RESTORE_BATCH_RECORDS: usize = 50_000;

/// One tree's writes in a restore batch.
struct RestoreGroup {
    tree: String,
    /// The tree's applied offset (`None`: replay every record).
    applied: Option<i64>,
    writes: Vec<Write>,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Whether local state was wiped first (missing state, changed topic id, or an applied
    /// offset beyond the changelog's end).
    pub wiped: bool,
    /// The first changelog offset read.
    pub from_offset: i64,
    /// Records replayed (applied to a tree).
    pub records_applied: u64,
    /// Records read but already applied in their tree (skipped).
    pub records_skipped: u64,
}

#[derive(Debug)]
struct TreeLayers {
    tree: Arc<dyn Tree>,
    buffer: Layer,
    pending: Layer,
    overlay: Layer,
    /// The overlay of the last apply while a background thread writes it to the backend
    /// (reads cannot know how far it got).
    applying: Arc<Layer>,
    /// For a tree that was empty when the store opened it: every key written to it since,
    /// so a lookup of another key does not reach the backend (see `filter`).
    written: Option<KeyFilter>,
}

impl TreeLayers {
    fn new(tree: Arc<dyn Tree>, empty: bool) -> TreeLayers {
        TreeLayers {
            tree,
            buffer: Layer::new(),
            pending: Layer::new(),
            overlay: Layer::new(),
            applying: Arc::default(),
            written: empty.then(KeyFilter::default),
        }
    }

    /// Notes that `key` is written to the tree (before it can reach the backend).
    fn note_written(&mut self, key: &[u8]) {
        if let Some(f) = &mut self.written {
            f.insert(key);
        }
    }

    /// Whether the backend tree may hold `key`.
    fn may_hold(&self, key: &[u8]) -> bool {
        self.written.as_ref().is_none_or(|f| f.may_contain(key))
    }

    fn lookup(&self, key: &[u8]) -> Option<&Option<Timestamped>> {
        self.buffer
            .get(key)
            .or_else(|| self.pending.get(key))
            .or_else(|| self.overlay.get(key))
            .or_else(|| self.applying.get(key))
    }
}

/// One tree's part of an apply.
type Batch = (Arc<dyn Tree>, Arc<Layer>);

/// The layers of one store (one or several trees).
#[derive(Debug)]
pub(crate) struct Layers {
    pub(crate) store: String,
    backend: Arc<dyn Backend>,
    meta: Arc<dyn Tree>,
    pub(crate) changelog: Option<ChangelogPartition>,
    trees: BTreeMap<String, TreeLayers>,
    buffer_bytes: usize,
    pending_offset: Option<i64>,
    overlay_offset: Option<i64>,
    poisoned: bool,
    /// Where background applies register (`None`: apply inline).
    applies: Option<Arc<Applies>>,
    /// The apply running in the background, if any.
    job: Option<Applying>,
    /// A background apply that failed, found done by `committed` and kept for the next
    /// call that joins (which poisons the store and returns the error).
    failed: Option<Result<()>>,
    /// The changelog offset the `applying` layers reach.
    applying_offset: Option<i64>,
    /// Trees dropped from the store and still in the backend: the next apply deletes them
    /// there, on the apply worker (see [`Layers::drop_tree`]).
    dropping: Vec<String>,
    /// Trees the background apply in flight deletes after its batches.
    dropping_in_job: Vec<String>,
}

impl Layers {
    pub(crate) fn open(
        store: &str,
        backend: Arc<dyn Backend>,
        changelog: Option<ChangelogPartition>,
    ) -> Result<Layers> {
        let meta = backend.open_tree(META_TREE)?;
        let applies = backend.applies();
        Ok(Layers {
            store: store.to_string(),
            backend,
            meta,
            changelog,
            trees: BTreeMap::new(),
            buffer_bytes: 0,
            pending_offset: None,
            overlay_offset: None,
            poisoned: false,
            applies,
            job: None,
            failed: None,
            applying_offset: None,
            dropping: Vec::new(),
            dropping_in_job: Vec::new(),
        })
    }

    fn layers(&mut self, tree: &str) -> Result<&mut TreeLayers> {
        if !self.trees.contains_key(tree) {
            // A tree opened again after it was dropped starts empty: its deletion happens
            // first.
            if let Some(i) = self.dropping.iter().position(|t| t == tree) {
                self.dropping.swap_remove(i);
                self.join()?;
                self.backend.drop_tree(tree)?;
            } else if self.dropping_in_job.iter().any(|t| t == tree) {
                self.join()?;
            }
            let t = self.backend.open_tree(tree)?;
            let empty = t.is_empty()?;
            self.trees
                .insert(tree.to_string(), TreeLayers::new(t, empty));
        }
        self.trees.get_mut(tree).ok_or_else(|| Error::Corrupt {
            store: self.store.clone(),
            reason: format!("tree '{tree}' vanished"),
        })
    }

    /// The newest value of `key` in `tree`.
    pub(crate) fn get(&mut self, tree: &str, key: &[u8]) -> Result<Option<Timestamped>> {
        self.layers(tree)?;
        self.get_open(tree, key)
    }

    /// [`Layers::get`] in a tree that is already open (a shared borrow: window and session
    /// stores read through `&self`); a tree that is not open has nothing.
    pub(crate) fn get_open(&self, tree: &str, key: &[u8]) -> Result<Option<Timestamped>> {
        let Some(t) = self.trees.get(tree) else {
            return Ok(None);
        };
        if let Some(v) = t.lookup(key) {
            return Ok(v.clone());
        }
        if !t.may_hold(key) {
            return Ok(None);
        }
        match t.tree.get(key)? {
            Some(b) => decode(&self.store, &b).map(Some),
            None => Ok(None),
        }
    }

    /// Buffers a write (`None` deletes).
    pub(crate) fn put(&mut self, tree: &str, key: Bytes, value: Option<Timestamped>) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned {
                store: self.store.clone(),
            });
        }
        let size = key.len() + value.as_ref().map_or(0, |v| v.value.len()) + 48;
        let t = self.layers(tree)?;
        t.note_written(&key);
        t.buffer.insert(key, value);
        self.buffer_bytes += size;
        Ok(())
    }

    /// Keys of `tree` within bounds, merged over all layers, ascending or descending.
    pub(crate) fn range<'a>(
        &'a mut self,
        tree: &str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<KvIter<'a>> {
        self.layers(tree)?;
        self.range_open(tree, from, to, reverse)
    }

    /// [`Layers::range`] over a tree that is already open: it needs only a shared borrow,
    /// so iterators over several trees can be chained (the segments of window and session
    /// stores).
    pub(crate) fn range_open<'a>(
        &'a self,
        tree: &str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<KvIter<'a>> {
        let store = self.store.clone();
        let t = self.trees.get(tree).ok_or_else(|| Error::Corrupt {
            store: store.clone(),
            reason: format!("tree '{tree}' vanished"),
        })?;
        let bounds = (own(from), own(to));
        let mut mem = Layer::new();
        if !empty(&bounds) {
            for layer in [&*t.applying, &t.overlay, &t.pending, &t.buffer] {
                for (k, v) in layer.range::<Bytes, _>((bounds.0.clone(), bounds.1.clone())) {
                    mem.insert(k.clone(), v.clone());
                }
            }
        }
        let mut mem: Vec<(Bytes, Option<Timestamped>)> = mem.into_iter().collect();
        if reverse {
            mem.reverse();
        }
        Ok(Box::new(Merge {
            store,
            reverse,
            mem: mem.into_iter().peekable(),
            disk: t.tree.range(from, to, reverse).peekable(),
        }))
    }

    /// Names of the opened and stored trees whose names start with `prefix`.
    pub(crate) fn tree_names(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .backend
            .tree_names()?
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.extend(self.trees.keys().filter(|n| n.starts_with(prefix)).cloned());
        names.retain(|n| !self.dropping.contains(n) && !self.dropping_in_job.contains(n));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Deletes a tree with everything in it, in every layer (window retention).
    ///
    /// It is gone for the store at once; with background applies, the backend deletes it
    /// with the next apply, on the apply worker after that apply's batches. sled's
    /// `drop_tree` frees every page of the tree through its log, waiting for its writers
    /// (≈ 45 ms of W2's stream thread, each time a segment expired). A restart before that
    /// finds the tree again, which is why the window and session stores drop their expired
    /// segments when they open (as Kafka's `openExisting`).
    pub(crate) fn drop_tree(&mut self, tree: &str) -> Result<()> {
        self.trees.remove(tree);
        if self.applies.is_none() {
            self.backend.drop_tree(tree)?;
        } else if !self.dropping.iter().any(|t| t == tree) {
            self.dropping.push(tree.to_string());
        }
        Ok(())
    }

    /// Opens `tree` if it is not open yet.
    pub(crate) fn ensure_tree(&mut self, tree: &str) -> Result<()> {
        self.layers(tree).map(|_| ())
    }

    /// About how many keys `tree` holds in the backend.
    pub(crate) fn approximate_len(&self, tree: &str) -> u64 {
        self.trees.get(tree).map_or(0, |t| t.tree.approximate_len())
    }

    /// Bytes of uncommitted writes (the runtime commits early past its soft limit).
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.buffer_bytes
    }

    /// Commit step 2: hands every buffered write to the changelog; they wait for the
    /// transaction's outcome.
    pub(crate) fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        let mut records = Vec::new();
        for t in self.trees.values_mut() {
            let buffer = std::mem::take(&mut t.buffer);
            if self.changelog.is_some() {
                records.extend(buffer.iter().map(|(k, v)| ChangelogRecord {
                    key: k.clone(),
                    timestamp: v.as_ref().map_or(0, |v| v.timestamp),
                    value: v.as_ref().map(|v| v.value.clone()),
                }));
            }
            // Nothing is pending between commits: the buffer becomes the pending layer
            // whole, without a per-key re-insert.
            merge_newer(&mut t.pending, buffer);
        }
        self.buffer_bytes = 0;
        let n = records.len();
        if let (Some(cl), false) = (&self.changelog, records.is_empty()) {
            let last = sink.append(cl, records).map_err(|e| Error::Changelog {
                store: self.store.clone(),
                topic: cl.topic.clone(),
                partition: cl.partition,
                reason: e.to_string(),
            })?;
            self.pending_offset = Some(last);
        }
        Ok(n)
    }

    /// Commit step 3 happened: what was sent is committed.
    pub(crate) fn committed(&mut self) {
        for t in self.trees.values_mut() {
            let pending = std::mem::take(&mut t.pending);
            merge_newer(&mut t.overlay, pending);
        }
        if let Some(o) = self.pending_offset.take() {
            self.overlay_offset = Some(o);
        }
        // Frees the last apply's layer as soon as it is done. A failure waits for the next
        // call that joins: that is where the caller learns it (and restarts the store).
        if let Some(job) = self.job.take_if(|j| j.is_finished()) {
            match self.wait(job) {
                Ok(()) => {
                    let _ = self.finish(Ok(()));
                }
                failed => self.failed = Some(failed),
            }
        }
    }

    /// The transaction failed: uncommitted and sent-but-uncommitted writes are dropped.
    pub(crate) fn abort(&mut self) {
        for t in self.trees.values_mut() {
            t.buffer.clear();
            t.pending.clear();
        }
        self.buffer_bytes = 0;
        self.pending_offset = None;
    }

    /// Commit step 4: one backend batch per tree with that tree's changelog offset, then the
    /// store's applied offset.
    ///
    /// With a backend that takes background applies (sled), the batches are written by the
    /// backend's apply worker while the caller goes on; the overlay stays readable as the
    /// `applying` layer until then. The next apply, a tree drop, a restore and dropping the
    /// store wait for it; [`Applies::settle`] waits for all of a backend's.
    pub(crate) fn apply(&mut self) -> Result<()> {
        self.join()?;
        // The overlays become the `applying` layers, readable until the backend has them.
        let mut batches: Vec<Batch> = Vec::new();
        for t in self.trees.values_mut() {
            if !t.overlay.is_empty() {
                t.applying = Arc::new(std::mem::take(&mut t.overlay));
                batches.push((t.tree.clone(), t.applying.clone()));
            }
        }
        self.applying_offset = self.overlay_offset.take();
        let applied = self.applying_offset.map(|o| (self.meta_key("applied"), o));
        let drops = std::mem::take(&mut self.dropping);
        if batches.is_empty() && applied.is_none() && drops.is_empty() {
            return Ok(());
        }
        if let Some(applies) = &self.applies {
            let (store, meta, backend) =
                (self.store.clone(), self.meta.clone(), self.backend.clone());
            let (batches, applied, to_drop) = (batches.clone(), applied.clone(), drops.clone());
            let job = applies.submit(&self.store, move || {
                apply_batches(&store, &batches, &*meta, applied)?;
                drop_trees(&*backend, &to_drop)
            });
            if let Some(job) = job {
                self.job = Some(job);
                self.dropping_in_job = drops;
                return Ok(());
            }
            // Nothing ran: the batches are applied here instead.
            tracing::warn!(store = %self.store, "no background apply; applying inline");
        }
        let result = apply_batches(&self.store, &batches, &*self.meta, applied)
            .and_then(|()| drop_trees(&*self.backend, &drops));
        drop(batches);
        self.finish(result)
    }

    /// Waits for the background apply, if any, and finishes it.
    fn join(&mut self) -> Result<()> {
        let result = match (self.failed.take(), self.job.take()) {
            (Some(failed), _) => failed,
            (None, Some(job)) => self.wait(job),
            (None, None) => return Ok(()),
        };
        self.finish(result)
    }

    /// What a background apply returned.
    fn wait(&self, job: Applying) -> Result<()> {
        job.wait()
    }

    /// After an apply: the backend has the `applying` layers, which go. If it failed they
    /// go back under the overlay (reads still serve committed state: it is in the
    /// changelog) and the store is poisoned.
    fn finish(&mut self, result: Result<()>) -> Result<()> {
        let offset = self.applying_offset.take();
        // Dropped or not, those trees are not the store's: a failed drop leaves one in the
        // backend until the store opens again (see `drop_tree`).
        self.dropping_in_job.clear();
        for t in self.trees.values_mut() {
            let applying = std::mem::take(&mut t.applying);
            if result.is_err() && !applying.is_empty() {
                let mut older =
                    Arc::try_unwrap(applying).unwrap_or_else(|shared| (*shared).clone());
                merge_newer(&mut older, std::mem::take(&mut t.overlay));
                t.overlay = older;
            }
        }
        if result.is_err() {
            self.overlay_offset = self.overlay_offset.or(offset);
            self.poisoned = true;
        }
        result
    }

    /// Errors of the meta tree, which every store shares, name this store instead.
    fn named(&self, e: Error) -> Error {
        named(&self.store, e)
    }

    /// A value this store keeps in the meta tree under `what` (window and session stores
    /// keep their stream time there).
    pub(crate) fn meta_get(&self, what: &str) -> Result<Option<Bytes>> {
        self.meta
            .get(&self.meta_key(what))
            .map_err(|e| self.named(e))
    }

    /// Sets (or with `None` deletes) a value this store keeps in the meta tree.
    pub(crate) fn meta_put(&self, what: &str, value: Option<Bytes>) -> Result<()> {
        self.meta
            .apply(&[(self.meta_key(what), value)], None)
            .map_err(|e| self.named(e))
    }

    fn meta_key(&self, what: &str) -> Bytes {
        meta_key(&self.store, what)
    }

    /// The backend the store lives in (read-only views read its trees).
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    fn meta_applied(&self) -> Result<Option<i64>> {
        match self.meta.get(&self.meta_key("applied"))? {
            Some(b) if b.len() == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b);
                Ok(Some(i64::from_be_bytes(a)))
            }
            Some(_) => Err(Error::Corrupt {
                store: self.store.clone(),
                reason: "applied offset is not 8 bytes".into(),
            }),
            None => Ok(None),
        }
    }

    /// Brings the backend up to the changelog's last stable offset: replays only what comes
    /// after the applied offsets; wipes first only when local state is missing, the
    /// changelog topic's id changed, or the applied offset is beyond the changelog's end.
    ///
    /// A failed restore poisons the store: writes on top of a half-done restore would, at
    /// their commit, record an applied offset past the part of the changelog never replayed.
    pub(crate) fn restore(
        &mut self,
        reader: &mut dyn ChangelogReader,
        router: &dyn Router,
    ) -> Result<RestoreStats> {
        self.join()?;
        let result = self
            .restore_inner(reader, router)
            .map_err(|e| self.named(e));
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn restore_inner(
        &mut self,
        reader: &mut dyn ChangelogReader,
        router: &dyn Router,
    ) -> Result<RestoreStats> {
        let Some(cl) = self.changelog.clone() else {
            return Ok(RestoreStats::default());
        };
        let (store, cl2) = (self.store.clone(), cl.clone());
        let err = move |e: crate::changelog::ChangelogError| Error::Changelog {
            store: store.clone(),
            topic: cl2.topic.clone(),
            partition: cl2.partition,
            reason: e.to_string(),
        };
        let topic_id = reader
            .topic_id(&cl.topic)
            .map_err(&err)?
            .unwrap_or_default();
        let (start, stable) = reader.bounds(&cl).map_err(&err)?;
        let stored_id = self.meta.get(&self.meta_key("topic-id"))?;
        let applied = self.meta_applied()?;
        let missing = applied.is_none() || !self.backend.is_persistent();
        let id_changed = stored_id
            .as_deref()
            .is_some_and(|id| id != topic_id.as_bytes());
        let beyond = applied.is_some_and(|a| a >= stable);
        let wiped = missing || id_changed || beyond;
        if wiped {
            if !missing {
                tracing::warn!(store = %self.store, id_changed, beyond, "wiping local state before a full restore");
            }
            for name in self.tree_names("")? {
                if router.owns(&name) {
                    self.drop_tree(&name)?;
                }
            }
            self.meta.apply(&[(self.meta_key("applied"), None)], None)?;
        }
        router.begin(wiped);
        self.meta.apply(
            &[(
                self.meta_key("topic-id"),
                Some(Bytes::from(topic_id.clone())),
            )],
            None,
        )?;
        let from = if wiped {
            start
        } else {
            applied.map_or(start, |a| a + 1).max(start)
        };
        let mut stats = RestoreStats {
            wiped,
            from_offset: from,
            ..RestoreStats::default()
        };
        let mut pos = from;
        // Each tree's applied offset, looked up once per tree.
        let mut tree_applied: BTreeMap<String, Option<i64>> = BTreeMap::new();
        while pos < stable {
            let batch = reader.read(&cl, pos, RESTORE_BATCH_RECORDS).map_err(&err)?;
            if batch.next_offset <= pos {
                break;
            }
            // Restore runs at about sled's bulk insert speed only if nothing but sled costs
            // much per record: the stored values (timestamp + value) are slices of one buffer
            // per batch rather than an allocation each, and writes are grouped by tree with
            // the last group checked first (a key-value store has one tree; window segments
            // come in runs), so a record costs no map lookup. Only a persistent backend gets
            // slices: sled copies them, while the memory backend would keep them, and one
            // surviving value would hold its whole batch's buffer.
            let slices = self.backend.is_persistent();
            let mut values = BytesMut::with_capacity(if slices {
                batch
                    .records
                    .iter()
                    .map(|(_, r)| r.value.as_ref().map_or(0, |v| 8 + v.len()))
                    .sum()
            } else {
                0
            });
            let mut groups: Vec<RestoreGroup> = Vec::new();
            let mut group_of: BTreeMap<String, usize> = BTreeMap::new();
            let mut last = pos;
            for (offset, r) in batch.records {
                if offset >= stable {
                    break;
                }
                last = offset;
                let Some(tree) = router.tree_for(&r.key) else {
                    stats.records_skipped += 1;
                    continue;
                };
                let g = match groups.last() {
                    Some(g) if g.tree == tree => groups.len() - 1,
                    _ => match group_of.get(&tree) {
                        Some(&g) => g,
                        None => {
                            let applied = match tree_applied.get(&tree) {
                                Some(&a) => a,
                                None => {
                                    let applied = self.layers(&tree)?.tree.applied_offset()?;
                                    let a = if wiped { None } else { applied };
                                    tree_applied.insert(tree.clone(), a);
                                    a
                                }
                            };
                            group_of.insert(tree.clone(), groups.len());
                            groups.push(RestoreGroup {
                                tree,
                                applied,
                                writes: Vec::new(),
                            });
                            groups.len() - 1
                        }
                    },
                };
                let group = &mut groups[g];
                if group.applied.is_some_and(|a| offset <= a) {
                    stats.records_skipped += 1;
                    continue;
                }
                let value = r.value.map(|value| {
                    if slices {
                        // As `encode` lays it out.
                        values.extend_from_slice(&r.timestamp.to_be_bytes());
                        values.extend_from_slice(&value);
                        values.split().freeze()
                    } else {
                        encode(&Timestamped {
                            value,
                            timestamp: r.timestamp,
                        })
                    }
                });
                group.writes.push((r.key, value));
                stats.records_applied += 1;
            }
            let upto = batch.next_offset.min(stable) - 1;
            for g in groups {
                let t = self.layers(&g.tree)?;
                for (key, _) in &g.writes {
                    t.note_written(key);
                }
                t.tree.apply(&g.writes, Some(upto.max(last)))?;
            }
            let mut meta = vec![(
                self.meta_key("applied"),
                Some(Bytes::copy_from_slice(&upto.to_be_bytes())),
            )];
            for (what, value) in router.meta() {
                meta.push((self.meta_key(what), Some(value)));
            }
            self.meta.apply(&meta, None)?;
            pos = batch.next_offset;
        }
        tracing::info!(store = %self.store, from, to = stable, applied = stats.records_applied, skipped = stats.records_skipped, wiped, "restored");
        Ok(stats)
    }
}

impl Drop for Layers {
    fn drop(&mut self) {
        // The store's trees must not be written after it is gone (a reopened store reads
        // them); a failure only means a longer replay at the next restore.
        if let Err(e) = self.join() {
            tracing::warn!(store = %self.store, error = %e, "a background apply failed; the next restore replays its writes");
        }
    }
}

/// Errors of the meta tree, which every store shares, name `store` instead.
fn named(store: &str, e: Error) -> Error {
    match e {
        Error::Sled { store: s, source } if s == META_TREE => Error::Sled {
            store: store.to_string(),
            source,
        },
        Error::Corrupt { store: s, reason } if s == META_TREE => Error::Corrupt {
            store: store.to_string(),
            reason,
        },
        e => e,
    }
}

/// Deletes `trees` from the backend (trees the store dropped, see [`Layers::drop_tree`]).
fn drop_trees(backend: &dyn Backend, trees: &[String]) -> Result<()> {
    for tree in trees {
        backend.drop_tree(tree)?;
    }
    Ok(())
}

/// Writes an apply's batches, one per tree with the changelog offset, then the store's
/// applied offset (`applied`: its meta key and the offset).
fn apply_batches(
    store: &str,
    batches: &[Batch],
    meta: &dyn Tree,
    applied: Option<(Bytes, i64)>,
) -> Result<()> {
    let offset = applied.as_ref().map(|(_, o)| *o);
    for (tree, layer) in batches {
        tree.apply(&encode_all(layer), offset)
            .map_err(|e| named(store, e))?;
    }
    if let Some((key, o)) = applied {
        meta.apply(
            &[(key, Some(Bytes::copy_from_slice(&o.to_be_bytes())))],
            None,
        )
        .map_err(|e| named(store, e))?;
    }
    Ok(())
}

/// The key of `store`'s meta entry `what` in [`META_TREE`] (read-only views read the stream
/// time of window and session stores there).
pub(crate) fn meta_key(store: &str, what: &str) -> Bytes {
    Bytes::from(format!("{store}\u{0}{what}"))
}

fn own(b: Bound<&[u8]>) -> Bound<Bytes> {
    match b {
        Bound::Included(k) => Bound::Included(Bytes::copy_from_slice(k)),
        Bound::Excluded(k) => Bound::Excluded(Bytes::copy_from_slice(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn empty(b: &(Bound<Bytes>, Bound<Bytes>)) -> bool {
    match b {
        (Bound::Included(a), Bound::Included(z)) => a > z,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(z))
        | (Bound::Excluded(a), Bound::Included(z)) => a >= z,
        _ => false,
    }
}

/// Merges the in-memory layers (already combined, newest wins) with the backend's range.
struct Merge<'a> {
    store: String,
    reverse: bool,
    mem: std::iter::Peekable<std::vec::IntoIter<(Bytes, Option<Timestamped>)>>,
    disk: std::iter::Peekable<TreeIter<'a>>,
}

impl Iterator for Merge<'_> {
    type Item = Result<(Bytes, Timestamped)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_mem = match (self.mem.peek(), self.disk.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(Err(_))) => false,
                (Some((mk, _)), Some(Ok((dk, _)))) => {
                    if mk == dk {
                        // The memory layer shadows the stored value.
                        self.disk.next();
                        true
                    } else {
                        (mk < dk) != self.reverse
                    }
                }
            };
            if take_mem {
                if let Some((k, Some(v))) = self.mem.next() {
                    return Some(Ok((k, v)));
                }
                // A deletion: skip it.
                continue;
            }
            return match self.disk.next()? {
                Ok((k, b)) => Some(decode(&self.store, &b).map(|v| (k, v))),
                Err(e) => Some(Err(e)),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(keys: impl IntoIterator<Item = (u32, i64)>) -> Layer {
        keys.into_iter()
            .map(|(k, ts)| {
                let value = (ts >= 0).then(|| Timestamped {
                    value: Bytes::from(ts.to_string()),
                    timestamp: ts,
                });
                (Bytes::copy_from_slice(&k.to_be_bytes()), value)
            })
            .collect()
    }

    #[test]
    fn merging_layers_is_extending_them() {
        let cases: Vec<(Layer, Layer)> = vec![
            (layer([]), layer([(1, 1)])),
            (layer([(1, 1)]), layer([])),
            (
                layer((0..100).map(|k| (k, 1))),
                layer((50..150).map(|k| (k, 2))),
            ),
            (
                layer((0..100).map(|k| (k * 2, 1))),
                layer((0..100).map(|k| (k * 3, -1))),
            ),
            (
                layer((0..1000).map(|k| (k, 1))),
                layer([(5, 2), (2000, -1)]),
            ),
            (layer([(7, 1)]), layer((0..1000).map(|k| (k, 3)))),
        ];
        for (older, newer) in cases {
            let mut expected = older.clone();
            expected.extend(newer.clone());
            let mut merged = older;
            merge_newer(&mut merged, newer);
            assert_eq!(merged, expected);
        }
    }

    #[test]
    fn encoded_writes_are_what_the_backend_reads_back() {
        let l = layer([(1, 5), (2, -1), (3, 700)]);
        let writes = encode_all(&l);
        assert_eq!(writes.len(), 3);
        for ((k, v), (wk, wv)) in l.iter().zip(&writes) {
            assert_eq!(k, wk);
            assert_eq!(
                v.as_ref().map(encode),
                wv.clone(),
                "the batch encodes as `encode` does"
            );
            if let Some(wv) = wv {
                assert_eq!(decode("s", wv).ok().as_ref(), v.as_ref());
            }
        }
    }
}

#[cfg(test)]
mod background_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::backend::{MemoryBackend, TreeIter};

    /// In-memory trees, with background applies when `applies` is set, counting the lookups
    /// that reach them.
    #[derive(Debug, Default)]
    struct TestBackend {
        inner: MemoryBackend,
        applies: Option<Arc<Applies>>,
        gets: Arc<AtomicUsize>,
    }

    impl TestBackend {
        fn background() -> Arc<TestBackend> {
            Arc::new(TestBackend {
                applies: Some(Applies::new()),
                ..TestBackend::default()
            })
        }

        fn settle(&self) -> Result<()> {
            self.applies.as_ref().map_or(Ok(()), |a| a.settle())
        }
    }

    #[derive(Debug)]
    struct CountingTree {
        inner: Arc<dyn Tree>,
        gets: Arc<AtomicUsize>,
    }

    impl Tree for CountingTree {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key)
        }
        fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> TreeIter<'_> {
            self.inner.range(from, to, reverse)
        }
        fn apply(&self, writes: &[Write], applied_offset: Option<i64>) -> Result<()> {
            self.inner.apply(writes, applied_offset)
        }
        fn applied_offset(&self) -> Result<Option<i64>> {
            self.inner.applied_offset()
        }
        fn approximate_len(&self) -> u64 {
            self.inner.approximate_len()
        }
        fn clear(&self) -> Result<()> {
            self.inner.clear()
        }
    }

    impl Backend for TestBackend {
        fn open_tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
            Ok(Arc::new(CountingTree {
                inner: self.inner.open_tree(name)?,
                gets: self.gets.clone(),
            }))
        }
        fn drop_tree(&self, name: &str) -> Result<bool> {
            self.inner.drop_tree(name)
        }
        fn tree_names(&self) -> Result<Vec<String>> {
            self.inner.tree_names()
        }
        fn is_persistent(&self) -> bool {
            false
        }
        fn applies(&self) -> Option<Arc<Applies>> {
            self.applies.clone()
        }
    }

    /// `tree` as if an earlier apply had written `key` into it.
    fn stored(backend: &TestBackend, tree: &str, key: &[u8]) -> Result<()> {
        let value = Timestamped {
            value: Bytes::from_static(b"v"),
            timestamp: 1,
        };
        backend
            .open_tree(tree)?
            .apply(&[(Bytes::copy_from_slice(key), Some(encode(&value)))], None)
    }

    #[test]
    fn a_dropped_tree_is_gone_at_once_and_from_the_backend_with_the_next_apply() -> Result<()> {
        let backend = TestBackend::background();
        stored(&backend, "old", b"k")?;
        stored(&backend, "kept", b"k")?;
        let mut layers = Layers::open("s", backend.clone(), None)?;
        assert!(layers.get("old", b"k")?.is_some());
        layers.drop_tree("old")?;
        assert_eq!(layers.get_open("old", b"k")?, None);
        assert_eq!(layers.tree_names("")?, vec![META_TREE, "kept"]);
        assert!(
            backend.tree_names()?.contains(&"old".to_string()),
            "the backend still has it until the next apply"
        );
        layers.apply()?;
        backend.settle()?;
        assert_eq!(backend.tree_names()?, vec![META_TREE, "kept"]);
        assert!(layers.get("kept", b"k")?.is_some());
        Ok(())
    }

    #[test]
    fn a_tree_opened_again_before_its_drop_ran_starts_empty() -> Result<()> {
        let backend = TestBackend::background();
        stored(&backend, "t", b"k")?;
        let mut layers = Layers::open("s", backend.clone(), None)?;
        assert!(layers.get("t", b"k")?.is_some());
        layers.drop_tree("t")?;
        // Opened again while the deletion waits for the next apply: the old tree goes first.
        assert_eq!(layers.get("t", b"k")?, None);
        layers.put("t", Bytes::from_static(b"new"), None)?;
        layers.apply()?;
        backend.settle()?;
        assert_eq!(backend.open_tree("t")?.get(b"k")?, None);
        Ok(())
    }

    fn value(ts: i64) -> Option<Timestamped> {
        Some(Timestamped {
            value: Bytes::from_static(b"v"),
            timestamp: ts,
        })
    }

    /// Commits and applies what was put (no changelog).
    fn commit(layers: &mut Layers) -> Result<()> {
        struct NoSink;
        impl ChangelogSink for NoSink {
            fn append(
                &mut self,
                _: &ChangelogPartition,
                _: Vec<ChangelogRecord>,
            ) -> std::result::Result<i64, crate::changelog::ChangelogError> {
                Ok(0)
            }
        }
        layers.send_changelog(&mut NoSink)?;
        layers.committed();
        layers.apply()
    }

    #[test]
    fn lookups_in_a_tree_found_empty_reach_the_backend_only_for_keys_written() -> Result<()> {
        let backend = Arc::new(TestBackend::default());
        let mut layers = Layers::open("s", backend.clone(), None)?;
        for k in 0u32..100 {
            layers.put("t", Bytes::copy_from_slice(&k.to_be_bytes()), value(1))?;
        }
        commit(&mut layers)?;
        backend.gets.store(0, Ordering::SeqCst);
        for k in 0u32..100 {
            assert_eq!(layers.get("t", &k.to_be_bytes())?, value(1), "key {k}");
        }
        assert_eq!(
            backend.gets.load(Ordering::SeqCst),
            100,
            "written keys are looked up"
        );
        backend.gets.store(0, Ordering::SeqCst);
        for k in 100u32..1100 {
            assert_eq!(layers.get("t", &k.to_be_bytes())?, None);
        }
        let reached = backend.gets.load(Ordering::SeqCst);
        assert!(
            reached < 50,
            "{reached} of 1000 lookups of unwritten keys reached the backend"
        );

        // A tree that held keys when the store opened it is always asked.
        backend.open_tree("old")?.apply(
            &[(
                Bytes::from_static(b"a"),
                Some(encode(&Timestamped {
                    value: Bytes::new(),
                    timestamp: 0,
                })),
            )],
            None,
        )?;
        let mut layers = Layers::open("s", backend.clone(), None)?;
        backend.gets.store(0, Ordering::SeqCst);
        assert_eq!(layers.get("old", b"b")?, None);
        assert!(layers.get("old", b"a")?.is_some());
        assert_eq!(backend.gets.load(Ordering::SeqCst), 2);
        Ok(())
    }
}
