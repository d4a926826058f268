//! The time-ordered buffer behind `suppress` (Kafka's
//! `InMemoryTimeOrderedKeyValueChangeBuffer`), changelogged like every other store so that it
//! survives a crash and restores only the changelog's tail.
//!
//! The buffer holds at most one entry per record key: `(key, value with timestamp, buffer
//! time)`. The operator decides what the buffer time is — for `until_time_limit` the
//! timestamp of the key's first buffered update, for `until_window_closes` the window end —
//! and the buffer keeps it: a [`put`](BufferStore::put) of a key already buffered replaces
//! the value but keeps the entry's buffer time and place (Kafka's "non-resetting"
//! `cleanPut`). [`evict_while`](BufferStore::evict_while) emits entries in buffer-time order,
//! equal times in key-byte order (Kafka's `BufferKey` compares time, then key bytes).
//!
//! The value bytes are opaque: the suppress operator encodes in them whatever it must emit
//! later (Kafka's buffer keeps the `Change` with new, old and prior values and the record
//! context).
//!
//! # Layout
//! One tree, named as the store, with two kinds of keys, so that one atomic batch (with the
//! tree's applied offset) always keeps them in step:
//!
//! | key | value (stored with the entry's timestamp) |
//! |---|---|
//! | `0x00 ‖ key` (the index) | `buffer_time: i64 BE ‖ value_len: u64 BE` |
//! | `0x01 ‖ buffer_time ‖ key` (time order) | the value |
//!
//! In the time-ordered keys the buffer time is big-endian with its sign bit flipped, so that
//! byte order is time order for negative times too.
//!
//! # Changelog
//! One record per buffered key, as Kafka's buffer logs it: key = the record key, value =
//! `buffer_time: i64 BE ‖ value bytes`, record timestamp = the value's timestamp; an evicted
//! or deleted key is a tombstone. Restore turns each record back into the tree's two keys
//! (dropping the time-ordered key of an older buffer time the key may still have locally),
//! so both parts are rebuilt from the changelog alone.
//!
//! # Examples
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use freshet_state_store::{BufferStore, Error, MemoryBackend, Timestamped};
//!
//! let mut buffer = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), None)?;
//! let v = |s: &'static str, ts| Timestamped { value: Bytes::from(s), timestamp: ts };
//! buffer.put(10, Bytes::from("b"), v("b1", 10))?;
//! buffer.put(10, Bytes::from("a"), v("a1", 10))?;
//! buffer.put(12, Bytes::from("a"), v("a2", 12))?; // keeps buffer time 10
//! let mut out = Vec::new();
//! buffer.evict_while(|s| s.min_timestamp <= 11, |r| {
//!     out.push((r.key, r.value.value, r.buffer_time));
//!     Ok::<(), Error>(())
//! })?;
//! assert_eq!(out, vec![
//!     (Bytes::from("a"), Bytes::from("a2"), 10),
//!     (Bytes::from("b"), Bytes::from("b1"), 10),
//! ]);
//! assert_eq!(buffer.num_records(), 0);
//! # Ok::<(), Error>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::changelog::{
    ChangelogBatch, ChangelogError, ChangelogPartition, ChangelogReader, ChangelogRecord,
    ChangelogSink,
};
use crate::error::{show_key, Error, Result};
use crate::layers::{decode, Layers, RestoreStats, Router, Timestamped};
use crate::store::StateStore;

const INDEX: u8 = 0x00;
const DATA: u8 = 0x01;
const SIGN: u64 = 1 << 63;

/// An entry of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferedRecord {
    /// The record key.
    pub key: Bytes,
    /// The latest value put for the key, with its timestamp.
    pub value: Timestamped,
    /// The time the entry is ordered and evicted by (kept from the key's first put).
    pub buffer_time: i64,
}

/// The buffer as `evict_while`'s predicate sees it before each eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferState {
    /// The smallest buffer time (the next entry to go).
    pub min_timestamp: i64,
    /// Entries in the buffer.
    pub num_records: usize,
    /// Bytes counted for the entries ([`BufferStore::buffer_size_bytes`]).
    pub buffer_size_bytes: u64,
}

/// The buffer's current view (committed, sent and unsent writes together) kept in memory,
/// so that the suppress operator's per-update reads never go to the tree: per key its
/// buffer time and latest value, and the keys in eviction order. Kafka keeps its whole
/// buffer in memory too; here the tree below still holds it, so a restart restores only the
/// changelog's tail. An aborted commit drops the mirror, and the next call rebuilds it from
/// the layers (which then hold the committed view).
#[derive(Debug, Default)]
struct Mirror {
    entries: HashMap<Bytes, (i64, Timestamped)>,
    /// `(buffer time, key)`: eviction order (the time-ordered keys' byte order).
    order: BTreeSet<(i64, Bytes)>,
    /// Bytes counted for the entries (see [`record_size`]).
    bytes: u64,
}

impl Mirror {
    fn insert(&mut self, key: Bytes, time: i64, value: Timestamped) {
        self.bytes += record_size(key.len(), value.value.len());
        match self.entries.insert(key.clone(), (time, value)) {
            Some((old_time, old)) => {
                self.bytes -= record_size(key.len(), old.value.len());
                if old_time != time {
                    self.order.remove(&(old_time, key.clone()));
                    self.order.insert((time, key));
                }
            }
            None => {
                self.order.insert((time, key));
            }
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<(i64, Timestamped)> {
        let (key, (time, value)) = self.entries.remove_entry(key)?;
        self.bytes -= record_size(key.len(), value.value.len());
        self.order.remove(&(time, key));
        Some((time, value))
    }
}

/// The time-ordered, changelogged buffer for suppress (see the [module docs](self)).
#[derive(Debug)]
pub struct BufferStore {
    layers: Layers,
    backend: Arc<dyn Backend>,
    tree: String,
    /// `None` after an abort, until the next call rebuilds it.
    mirror: Option<Mirror>,
}

/// Bytes counted for an entry: buffer time and timestamp (8 each), key and value (Kafka
/// counts the buffer time, the key and its estimate of the buffered value).
fn record_size(key_len: usize, value_len: usize) -> u64 {
    (16 + key_len + value_len) as u64
}

fn index_key(key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(INDEX);
    k.extend_from_slice(key);
    Bytes::from(k)
}

fn data_key(time: i64, key: &[u8]) -> Bytes {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(DATA);
    k.extend_from_slice(&((time as u64) ^ SIGN).to_be_bytes());
    k.extend_from_slice(key);
    Bytes::from(k)
}

fn be_i64(b: &[u8]) -> Option<i64> {
    let a: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(i64::from_be_bytes(a))
}

/// `(buffer time, key)` of a time-ordered tree key.
fn parse_data_key(k: &Bytes) -> Option<(i64, Bytes)> {
    if k.first() != Some(&DATA) || k.len() < 9 {
        return None;
    }
    let t = be_i64(&k[1..9])?;
    Some((((t as u64) ^ SIGN) as i64, k.slice(9..)))
}

fn index_value(time: i64, value_len: usize) -> Bytes {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&time.to_be_bytes());
    v.extend_from_slice(&(value_len as u64).to_be_bytes());
    Bytes::from(v)
}

/// `(buffer time, value length)` of an index value.
fn parse_index_value(v: &[u8]) -> Option<(i64, usize)> {
    if v.len() != 16 {
        return None;
    }
    let len = u64::from_be_bytes(v[8..16].try_into().ok()?);
    Some((be_i64(v)?, usize::try_from(len).ok()?))
}

struct BufferRouter(String);

impl Router for BufferRouter {
    fn tree_for(&self, _key: &[u8]) -> Option<String> {
        Some(self.0.clone())
    }
    fn owns(&self, tree: &str) -> bool {
        tree == self.0
    }
}

impl BufferStore {
    /// Opens the buffer `name` in `backend`, with its changelog partition (`None`: not
    /// logged). Call [`StateStore::restore`] before the first write when it is logged.
    pub fn open(
        name: &str,
        backend: Arc<dyn Backend>,
        changelog: Option<ChangelogPartition>,
    ) -> Result<BufferStore> {
        let mut layers = Layers::open(name, backend.clone(), changelog)?;
        layers.ensure_tree(name)?;
        let mut store = BufferStore {
            layers,
            backend,
            tree: name.to_string(),
            mirror: None,
        };
        store.mirror()?;
        Ok(store)
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            store: self.layers.store.clone(),
            reason,
        }
    }

    /// The mirror, rebuilt from the layers when there is none (at open, after an abort and
    /// after restore): every index entry with its time-ordered entry.
    fn mirror(&mut self) -> Result<&mut Mirror> {
        if self.mirror.is_none() {
            let mirror = self.read_mirror()?;
            self.mirror = Some(mirror);
        }
        self.mirror.as_mut().ok_or_else(|| Error::Corrupt {
            store: self.layers.store.clone(),
            reason: "buffer mirror vanished".into(),
        })
    }

    fn read_mirror(&mut self) -> Result<Mirror> {
        let mut mirror = Mirror::default();
        let (from, to) = ([DATA], [DATA + 1]);
        let mut data = Vec::new();
        for item in self.layers.range(
            &self.tree,
            Bound::Included(&from),
            Bound::Excluded(&to),
            false,
        )? {
            data.push(item?);
        }
        let (from, to) = ([INDEX], [INDEX + 1]);
        let mut index = HashMap::new();
        let mut bad = None;
        for item in self.layers.range(
            &self.tree,
            Bound::Included(&from),
            Bound::Excluded(&to),
            false,
        )? {
            let (k, v) = item?;
            match parse_index_value(&v.value) {
                Some((time, _)) => {
                    index.insert(k.slice(1..), time);
                }
                None => bad = Some(k),
            }
        }
        if let Some(k) = bad {
            return Err(self.corrupt(format!("index entry {} is not 16 bytes", show_key(&k))));
        }
        for (k, value) in data {
            let Some((time, key)) = parse_data_key(&k) else {
                return Err(self.corrupt(format!("time-ordered key {} is too short", show_key(&k))));
            };
            // A time-ordered entry the index does not point at is a leftover of an older
            // buffer time (restore deletes those); the index decides.
            if index.get(&key) == Some(&time) {
                index.remove(&key);
                mirror.insert(key, time, value);
            }
        }
        // An index entry without its time-ordered entry is what a crash in the middle of
        // an apply leaves (the backend applies in chunks; see `Tree::apply`): the restore
        // that follows rewrites both. Until then the key counts as not buffered.
        if !index.is_empty() {
            tracing::debug!(store = %self.layers.store, keys = index.len(), "suppress buffer: index entries without their entry (an interrupted apply; restore rewrites them)");
        }
        Ok(mirror)
    }

    /// Buffers `value` for `key`. A key already buffered keeps its buffer time (and its place
    /// in the order); only its value changes. A new key is buffered at `buffer_time`.
    pub fn put(&mut self, buffer_time: i64, key: Bytes, value: Timestamped) -> Result<()> {
        let len = value.value.len();
        let old = self
            .mirror()?
            .entries
            .get(&key)
            .map(|(time, v)| (*time, v.value.len()));
        let time = match old {
            Some((time, old_len)) => {
                if old_len != len {
                    self.layers.put(
                        &self.tree,
                        index_key(&key),
                        Some(Timestamped {
                            value: index_value(time, len),
                            timestamp: value.timestamp,
                        }),
                    )?;
                }
                time
            }
            None => {
                self.layers.put(
                    &self.tree,
                    index_key(&key),
                    Some(Timestamped {
                        value: index_value(buffer_time, len),
                        timestamp: value.timestamp,
                    }),
                )?;
                buffer_time
            }
        };
        self.layers
            .put(&self.tree, data_key(time, &key), Some(value.clone()))?;
        self.mirror()?.insert(key, time, value);
        Ok(())
    }

    /// The entry of `key`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<BufferedRecord>> {
        Ok(self
            .mirror()?
            .entries
            .get_key_value(key)
            .map(|(k, (time, value))| BufferedRecord {
                key: k.clone(),
                value: value.clone(),
                buffer_time: *time,
            }))
    }

    /// Removes `key`'s entry; returns whether there was one.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let Some((time, _)) = self.mirror()?.remove(key) else {
            return Ok(false);
        };
        self.layers.put(&self.tree, index_key(key), None)?;
        self.layers.put(&self.tree, data_key(time, key), None)?;
        Ok(true)
    }

    /// Kafka's `evictWhile`: while there is an entry and `predicate` holds for the buffer
    /// as it is now (its `min_timestamp` is the next entry's buffer time), hands the entry
    /// with the smallest buffer time (equal times: smallest key bytes) to `callback` and
    /// removes it. Returns how many were evicted. An error from `callback` stops the
    /// eviction and leaves that entry buffered.
    pub fn evict_while<P, F, E>(&mut self, mut predicate: P, mut callback: F) -> Result<usize, E>
    where
        P: FnMut(&BufferState) -> bool,
        F: FnMut(BufferedRecord) -> Result<(), E>,
        E: From<Error>,
    {
        let mut evicted = 0;
        loop {
            let mirror = self.mirror()?;
            let Some((time, key)) = mirror.order.first().cloned() else {
                return Ok(evicted);
            };
            let state = BufferState {
                min_timestamp: time,
                num_records: mirror.entries.len(),
                buffer_size_bytes: mirror.bytes,
            };
            if !predicate(&state) {
                return Ok(evicted);
            }
            let Some((_, value)) = mirror.entries.get(&key) else {
                return Err(self
                    .corrupt(format!("{} is ordered but not buffered", show_key(&key)))
                    .into());
            };
            callback(BufferedRecord {
                key: key.clone(),
                value: value.clone(),
                buffer_time: time,
            })?;
            self.delete(&key)?;
            evicted += 1;
        }
    }

    /// The smallest buffer time, `i64::MAX` when the buffer is empty (as Kafka's
    /// `minTimestamp`).
    pub fn min_timestamp(&mut self) -> Result<i64> {
        Ok(self
            .mirror()?
            .order
            .first()
            .map_or(i64::MAX, |(time, _)| *time))
    }

    /// Entries in the buffer.
    pub fn num_records(&self) -> usize {
        self.mirror.as_ref().map_or(0, |m| m.entries.len())
    }

    /// Bytes counted for the entries: per entry 16 (buffer time and timestamp) + key +
    /// value bytes. Suppress's `BufferConfig::max_bytes` compares against this.
    pub fn buffer_size_bytes(&self) -> u64 {
        self.mirror.as_ref().map_or(0, |m| m.bytes)
    }

    /// Every entry in eviction order (buffer time, then key).
    pub fn records(&mut self) -> Result<Vec<BufferedRecord>> {
        let mirror = self.mirror()?;
        Ok(mirror
            .order
            .iter()
            .filter_map(|(time, key)| {
                mirror.entries.get(key).map(|(_, value)| BufferedRecord {
                    key: key.clone(),
                    value: value.clone(),
                    buffer_time: *time,
                })
            })
            .collect())
    }
}

impl StateStore for BufferStore {
    fn name(&self) -> &str {
        &self.layers.store
    }

    fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        let mut sink = BufferSink {
            inner: sink,
            sent: 0,
        };
        self.layers.send_changelog(&mut sink)?;
        Ok(sink.sent)
    }

    fn committed(&mut self) {
        self.layers.committed();
    }

    fn apply(&mut self) -> Result<()> {
        self.layers.apply()
    }

    fn abort(&mut self) {
        self.layers.abort();
        // Rebuilt now, so that the counts are right at once; should the read fail, the next
        // call that can answer with an error tries again.
        self.mirror = match self.read_mirror() {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(store = %self.layers.store, error = %e, "rebuilding the suppress buffer after an abort failed");
                None
            }
        };
    }

    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        let mut reader = RestoreReader {
            inner: reader,
            backend: self.backend.clone(),
            tree: self.tree.clone(),
            stable: i64::MAX,
            expansions: Vec::new(),
            from_empty: None,
            times: HashMap::new(),
        };
        let router = BufferRouter(self.tree.clone());
        let mut stats = self.layers.restore(&mut reader, &router)?;
        // Layers counts tree writes; report changelog records. Skipped ones are a prefix
        // (offsets up to the tree's applied offset), and a record's writes share its fate.
        let mut skipped_writes = stats.records_skipped;
        let mut skipped = 0;
        let mut total = 0;
        for &(offset, n) in &reader.expansions {
            if offset >= reader.stable {
                break;
            }
            total += 1;
            if skipped_writes >= n {
                skipped_writes -= n;
                skipped += 1;
            }
        }
        stats.records_skipped = skipped;
        stats.records_applied = total - skipped;
        self.mirror = None;
        self.mirror()?;
        Ok(stats)
    }

    fn write_buffer_bytes(&self) -> usize {
        self.layers.buffer_bytes()
    }
}

/// Turns the tree's writes into the buffer's changelog records (see the module docs).
struct BufferSink<'a> {
    inner: &'a mut dyn ChangelogSink,
    sent: usize,
}

impl ChangelogSink for BufferSink<'_> {
    fn append(
        &mut self,
        changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> std::result::Result<i64, ChangelogError> {
        // Per key: the live time-ordered entry (a key has at most one), or a deleted index.
        let mut per_key: std::collections::BTreeMap<Bytes, Option<ChangelogRecord>> =
            std::collections::BTreeMap::new();
        for r in records {
            match r.key.first() {
                Some(&DATA) => {
                    let (time, key) = parse_data_key(&r.key).ok_or_else(|| {
                        format!("time-ordered key {} is too short", show_key(&r.key))
                    })?;
                    if let Some(value) = r.value {
                        let mut v = Vec::with_capacity(8 + value.len());
                        v.extend_from_slice(&time.to_be_bytes());
                        v.extend_from_slice(&value);
                        per_key.insert(
                            key.clone(),
                            Some(ChangelogRecord {
                                key,
                                value: Some(Bytes::from(v)),
                                timestamp: r.timestamp,
                            }),
                        );
                    }
                }
                Some(&INDEX) if r.value.is_none() => {
                    per_key.entry(r.key.slice(1..)).or_insert(None);
                }
                _ => {}
            }
        }
        let out: Vec<ChangelogRecord> = per_key
            .into_iter()
            .map(|(key, r)| {
                r.unwrap_or(ChangelogRecord {
                    key,
                    value: None,
                    timestamp: 0,
                })
            })
            .collect();
        if out.is_empty() {
            return Err("buffer store: writes without a changelog record".into());
        }
        self.sent = out.len();
        self.inner.append(changelog, out)
    }
}

/// Turns the buffer's changelog records back into the tree's writes for restore: per
/// record, the index entry and the time-ordered entry (or their deletion), plus the
/// deletion of the time-ordered entry at the key's older buffer time, found in the tree as
/// it stands before the batch or in the batch's earlier records.
struct RestoreReader<'a> {
    inner: &'a mut dyn ChangelogReader,
    backend: Arc<dyn Backend>,
    tree: String,
    stable: i64,
    /// `(offset, tree writes)` per changelog record read.
    expansions: Vec<(i64, u64)>,
    /// Whether the tree was empty when the restore began (a wipe, or new state): then
    /// `times` knows every key's buffer time and the tree is never read.
    from_empty: Option<bool>,
    /// Buffer times of the keys read (`None`: not buffered), for the current batch, or for
    /// the whole restore when it began from an empty tree.
    times: HashMap<Bytes, Option<i64>>,
}

impl RestoreReader<'_> {
    fn stored_time(
        &self,
        tree: &dyn crate::backend::Tree,
        key: &[u8],
    ) -> std::result::Result<Option<i64>, ChangelogError> {
        match tree.get(&index_key(key))? {
            None => Ok(None),
            Some(b) => {
                let v = decode(&self.tree, &b)?;
                let (time, _) = parse_index_value(&v.value)
                    .ok_or_else(|| format!("index entry of {} is not 16 bytes", show_key(key)))?;
                Ok(Some(time))
            }
        }
    }
}

impl ChangelogReader for RestoreReader<'_> {
    fn topic_id(&mut self, topic: &str) -> std::result::Result<Option<String>, ChangelogError> {
        self.inner.topic_id(topic)
    }

    fn bounds(
        &mut self,
        changelog: &ChangelogPartition,
    ) -> std::result::Result<(i64, i64), ChangelogError> {
        let bounds = self.inner.bounds(changelog)?;
        self.stable = bounds.1;
        Ok(bounds)
    }

    fn read(
        &mut self,
        changelog: &ChangelogPartition,
        from: i64,
        max_records: usize,
    ) -> std::result::Result<ChangelogBatch, ChangelogError> {
        let batch = self.inner.read(changelog, from, max_records)?;
        // Opened per batch: a wipe drops and recreates the tree.
        let tree = self.backend.open_tree(&self.tree)?;
        let from_empty = match self.from_empty {
            Some(e) => e,
            None => {
                let empty = tree
                    .range(Bound::Unbounded, Bound::Unbounded, false)
                    .next()
                    .is_none();
                self.from_empty = Some(empty);
                empty
            }
        };
        if !from_empty {
            // The tree holds the batches before this one.
            self.times.clear();
        }
        let mut records = Vec::with_capacity(batch.records.len() * 2);
        for (offset, r) in batch.records {
            let old = match self.times.get(&r.key) {
                Some(t) => *t,
                None if from_empty => None,
                None => self.stored_time(tree.as_ref(), &r.key)?,
            };
            let before = records.len();
            let new = match &r.value {
                Some(v) => {
                    let time = be_i64(v).ok_or_else(|| {
                        format!("changelog value of {} has no buffer time", show_key(&r.key))
                    })?;
                    let value = v.slice(8..);
                    records.push((
                        offset,
                        ChangelogRecord {
                            key: index_key(&r.key),
                            value: Some(index_value(time, value.len())),
                            timestamp: r.timestamp,
                        },
                    ));
                    records.push((
                        offset,
                        ChangelogRecord {
                            key: data_key(time, &r.key),
                            value: Some(value),
                            timestamp: r.timestamp,
                        },
                    ));
                    Some(time)
                }
                None => {
                    records.push((
                        offset,
                        ChangelogRecord {
                            key: index_key(&r.key),
                            value: None,
                            timestamp: r.timestamp,
                        },
                    ));
                    None
                }
            };
            if let Some(old) = old.filter(|o| Some(*o) != new) {
                records.push((
                    offset,
                    ChangelogRecord {
                        key: data_key(old, &r.key),
                        value: None,
                        timestamp: r.timestamp,
                    },
                ));
            }
            self.expansions
                .push((offset, (records.len() - before) as u64));
            self.times.insert(r.key, new);
        }
        Ok(ChangelogBatch {
            records,
            next_offset: batch.next_offset,
        })
    }
}
