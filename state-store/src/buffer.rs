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

use std::collections::{HashMap, VecDeque};
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

/// Counts kept in memory, layered like the writes so that an abort takes its part back.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    records: i64,
    bytes: i64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.records += other.records;
        self.bytes += other.bytes;
    }
}

/// The time-ordered, changelogged buffer for suppress (see the [module docs](self)).
#[derive(Debug)]
pub struct BufferStore {
    layers: Layers,
    backend: Arc<dyn Backend>,
    tree: String,
    /// Counts of what is committed (computed at open and after restore).
    committed: Counts,
    /// Changes sent to the changelog in the current commit.
    sent: Counts,
    /// Changes not sent yet.
    buffered: Counts,
    /// The smallest buffer time, when known (`i64::MAX`: empty).
    min: Option<i64>,
}

/// Bytes counted for an entry: buffer time and timestamp (8 each), key and value (Kafka
/// counts the buffer time, the key and its estimate of the buffered value).
fn record_size(key_len: usize, value_len: usize) -> i64 {
    (16 + key_len + value_len) as i64
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
            committed: Counts::default(),
            sent: Counts::default(),
            buffered: Counts::default(),
            min: None,
        };
        store.recount()?;
        Ok(store)
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            store: self.layers.store.clone(),
            reason,
        }
    }

    /// Counts the entries from the index (at open and after restore, when nothing is
    /// buffered).
    fn recount(&mut self) -> Result<()> {
        let tree = self.tree.clone();
        let (from, to) = ([INDEX], [INDEX + 1]);
        let mut counts = Counts::default();
        let mut bad = None;
        for item in self
            .layers
            .range(&tree, Bound::Included(&from), Bound::Excluded(&to), false)?
        {
            let (k, v) = item?;
            match parse_index_value(&v.value) {
                Some((_, len)) => counts.add(Counts {
                    records: 1,
                    bytes: record_size(k.len().saturating_sub(1), len),
                }),
                None => bad = Some(k),
            }
        }
        if let Some(k) = bad {
            return Err(self.corrupt(format!("index entry {} is not 16 bytes", show_key(&k))));
        }
        self.committed = counts;
        self.sent = Counts::default();
        self.buffered = Counts::default();
        self.min = None;
        Ok(())
    }

    fn counts(&self) -> Counts {
        let mut c = self.committed;
        c.add(self.sent);
        c.add(self.buffered);
        c
    }

    /// `(buffer time, value length)` of a buffered key.
    fn index_get(&mut self, key: &[u8]) -> Result<Option<(i64, usize)>> {
        let tree = self.tree.clone();
        match self.layers.get(&tree, &index_key(key))? {
            None => Ok(None),
            Some(v) => match parse_index_value(&v.value) {
                Some(e) => Ok(Some(e)),
                None => {
                    Err(self.corrupt(format!("index entry of {} is not 16 bytes", show_key(key))))
                }
            },
        }
    }

    /// Buffers `value` for `key`. A key already buffered keeps its buffer time (and its place
    /// in the order); only its value changes. A new key is buffered at `buffer_time`.
    pub fn put(&mut self, buffer_time: i64, key: Bytes, value: Timestamped) -> Result<()> {
        let tree = self.tree.clone();
        let len = value.value.len();
        let time = match self.index_get(&key)? {
            Some((time, old_len)) => {
                if old_len != len {
                    self.buffered.bytes +=
                        record_size(key.len(), len) - record_size(key.len(), old_len);
                    let index = index_value(time, len);
                    self.layers.put(
                        &tree,
                        index_key(&key),
                        Some(Timestamped {
                            value: index,
                            timestamp: value.timestamp,
                        }),
                    )?;
                }
                time
            }
            None => {
                self.layers.put(
                    &tree,
                    index_key(&key),
                    Some(Timestamped {
                        value: index_value(buffer_time, len),
                        timestamp: value.timestamp,
                    }),
                )?;
                self.buffered.add(Counts {
                    records: 1,
                    bytes: record_size(key.len(), len),
                });
                self.min = self.min.map(|m| m.min(buffer_time));
                buffer_time
            }
        };
        self.layers.put(&tree, data_key(time, &key), Some(value))
    }

    /// The entry of `key`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<BufferedRecord>> {
        let Some((time, _)) = self.index_get(key)? else {
            return Ok(None);
        };
        let tree = self.tree.clone();
        match self.layers.get(&tree, &data_key(time, key))? {
            Some(value) => Ok(Some(BufferedRecord {
                key: Bytes::copy_from_slice(key),
                value,
                buffer_time: time,
            })),
            None => Err(self.corrupt(format!(
                "index has {} at buffer time {time} but the entry is missing",
                show_key(key)
            ))),
        }
    }

    /// Removes `key`'s entry; returns whether there was one.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let Some((time, len)) = self.index_get(key)? else {
            return Ok(false);
        };
        self.remove(time, key, len)?;
        if self.min == Some(time) {
            self.min = None;
        }
        Ok(true)
    }

    fn remove(&mut self, time: i64, key: &[u8], value_len: usize) -> Result<()> {
        let tree = self.tree.clone();
        self.layers.put(&tree, index_key(key), None)?;
        self.layers.put(&tree, data_key(time, key), None)?;
        self.buffered.add(Counts {
            records: -1,
            bytes: -record_size(key.len(), value_len),
        });
        Ok(())
    }

    /// Up to `limit` entries in buffer-time order, after the time-ordered key `after`.
    fn scan(
        &mut self,
        after: Option<&Bytes>,
        limit: usize,
    ) -> Result<Vec<(Bytes, BufferedRecord)>> {
        let tree = self.tree.clone();
        let start = [DATA];
        let end = [DATA + 1];
        let from = after.map_or(Bound::Included(&start[..]), |a| Bound::Excluded(&a[..]));
        let mut out = Vec::new();
        let mut bad = None;
        for item in self
            .layers
            .range(&tree, from, Bound::Excluded(&end), false)?
            .take(limit)
        {
            let (k, value) = item?;
            match parse_data_key(&k) {
                Some((buffer_time, key)) => out.push((
                    k,
                    BufferedRecord {
                        key,
                        value,
                        buffer_time,
                    },
                )),
                None => bad = Some(k),
            }
        }
        if let Some(k) = bad {
            return Err(self.corrupt(format!("time-ordered key {} is too short", show_key(&k))));
        }
        Ok(out)
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
        // Entries read ahead, in order; read in growing chunks, since every read copies the
        // in-memory layers' part of the range. The common call (nothing to evict) reads
        // nothing: the smallest buffer time is usually known.
        let mut ahead: VecDeque<(Bytes, BufferedRecord)> = VecDeque::new();
        let mut after: Option<Bytes> = None;
        let mut chunk = 16;
        loop {
            if self.num_records() == 0 {
                self.min = Some(i64::MAX);
                return Ok(evicted);
            }
            let min = match (ahead.front(), self.min) {
                (Some((_, r)), _) => r.buffer_time,
                (None, Some(m)) => m,
                (None, None) => {
                    ahead.extend(self.scan(after.as_ref(), chunk)?);
                    chunk = (chunk * 2).min(1 << 16);
                    ahead.front().map_or(i64::MAX, |(_, r)| r.buffer_time)
                }
            };
            self.min = Some(min);
            let state = BufferState {
                min_timestamp: min,
                num_records: self.num_records(),
                buffer_size_bytes: self.buffer_size_bytes(),
            };
            if !predicate(&state) {
                return Ok(evicted);
            }
            if ahead.is_empty() {
                ahead.extend(self.scan(after.as_ref(), chunk)?);
                chunk = (chunk * 2).min(1 << 16);
            }
            let Some((tree_key, record)) = ahead.pop_front() else {
                return Err(self
                    .corrupt(format!(
                        "{} entries counted but none found",
                        self.num_records()
                    ))
                    .into());
            };
            let (time, len) = (record.buffer_time, record.value.value.len());
            let key = record.key.clone();
            callback(record)?;
            self.remove(time, &key, len)?;
            self.min = None;
            evicted += 1;
            after = Some(tree_key);
        }
    }

    /// The smallest buffer time, `i64::MAX` when the buffer is empty (as Kafka's
    /// `minTimestamp`).
    pub fn min_timestamp(&mut self) -> Result<i64> {
        if self.num_records() == 0 {
            return Ok(i64::MAX);
        }
        if let Some(m) = self.min {
            return Ok(m);
        }
        let m = self
            .scan(None, 1)?
            .first()
            .map_or(i64::MAX, |(_, r)| r.buffer_time);
        self.min = Some(m);
        Ok(m)
    }

    /// Entries in the buffer.
    pub fn num_records(&self) -> usize {
        usize::try_from(self.counts().records).unwrap_or(0)
    }

    /// Bytes counted for the entries: per entry 16 (buffer time and timestamp) + key +
    /// value bytes. Suppress's `BufferConfig::max_bytes` compares against this.
    pub fn buffer_size_bytes(&self) -> u64 {
        u64::try_from(self.counts().bytes).unwrap_or(0)
    }

    /// Every entry in eviction order (buffer time, then key).
    pub fn records(&mut self) -> Result<Vec<BufferedRecord>> {
        Ok(self
            .scan(None, usize::MAX)?
            .into_iter()
            .map(|(_, r)| r)
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
        let buffered = std::mem::take(&mut self.buffered);
        self.sent.add(buffered);
        Ok(sink.sent)
    }

    fn committed(&mut self) {
        self.layers.committed();
        let sent = std::mem::take(&mut self.sent);
        self.committed.add(sent);
    }

    fn apply(&mut self) -> Result<()> {
        self.layers.apply()
    }

    fn abort(&mut self) {
        self.layers.abort();
        self.sent = Counts::default();
        self.buffered = Counts::default();
        self.min = None;
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
        self.recount()?;
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
