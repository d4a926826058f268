//! The time-ordered, changelogged buffer for suppress; [`BufferStore`] documents it.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::backend::Backend;
use crate::changelog::{ChangelogPartition, ChangelogReader, ChangelogRecord, ChangelogSink};
use crate::error::{show_key, Error, Result};
use crate::layers::{RestoreStats, Timestamped, RESTORE_BATCH_RECORDS};
use crate::store::StateStore;

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

/// A key's entry: its buffer time and value.
type Entry = (i64, Timestamped);

/// Bytes counted for an entry: buffer time and timestamp (8 each), key and value (Kafka
/// counts the buffer time, the key and its estimate of the buffered value).
fn record_size(key_len: usize, value_len: usize) -> u64 {
    (16 + key_len + value_len) as u64
}

/// The time-ordered, changelogged buffer for suppress.
///
/// The time-ordered buffer behind `suppress` (Kafka's
/// `InMemoryTimeOrderedKeyValueChangeBuffer`): in memory, changelogged, and restored from
/// the whole changelog, as Kafka's.
///
/// The buffer holds at most one entry per record key: `(key, value with timestamp, buffer
/// time)`. The operator decides what the buffer time is — for `until_time_limit` the
/// timestamp of the key's first buffered update, for `until_window_closes` the window end —
/// and the buffer keeps it: a [`put`](BufferStore::put) of a key already buffered replaces
/// the value but keeps the entry's buffer time and place (Kafka's "non-resetting"
/// `cleanPut`). [`evict_while`](BufferStore::evict_while) emits entries in buffer-time order,
/// equal times in key-byte order (Kafka's `BufferKey` compares time, then key bytes).
///
/// The value bytes are opaque: the suppress operator encodes in them whatever it must emit
/// later (Kafka's buffer keeps the `Change` with new, old and prior values and the record
/// context).
///
/// # Why in memory
/// Every update of a suppressed table passes through the buffer, and every entry leaves it
/// again: a copy in the local tree would cost two tree writes per update and per eviction,
/// which on sled is most of a windowed count's state cost. Like Kafka's, the buffer lives in
/// memory (its size is what suppress's `BufferConfig` bounds) and in its changelog, which
/// is compacted; a restart replays that changelog from its start. Without a changelog the
/// buffer does not survive a restart. An aborted commit puts back the values the keys
/// changed since the last commit had then.
///
/// # Changelog
/// One record per buffered key, as Kafka's buffer logs it: key = the record key, value =
/// `buffer_time: i64 BE ‖ value bytes`, record timestamp = the value's timestamp; an evicted
/// or deleted key is a tombstone (timestamp 0). A commit sends each key changed since the
/// last one once, in key-byte order.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use freshet_state_store::{BufferStore, Error, MemoryBackend, Timestamped};
///
/// let mut buffer = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), None)?;
/// let v = |s: &'static str, ts| Timestamped { value: Bytes::from(s), timestamp: ts };
/// buffer.put(10, Bytes::from("b"), v("b1", 10))?;
/// buffer.put(10, Bytes::from("a"), v("a1", 10))?;
/// buffer.put(12, Bytes::from("a"), v("a2", 12))?; // keeps buffer time 10
/// let mut out = Vec::new();
/// buffer.evict_while(|s| s.min_timestamp <= 11, |r| {
///     out.push((r.key, r.value.value, r.buffer_time));
///     Ok::<(), Error>(())
/// })?;
/// assert_eq!(out, vec![
///     (Bytes::from("a"), Bytes::from("a2"), 10),
///     (Bytes::from("b"), Bytes::from("b1"), 10),
/// ]);
/// assert_eq!(buffer.num_records(), 0);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct BufferStore {
    name: String,
    changelog: Option<ChangelogPartition>,
    entries: HashMap<Bytes, Entry>,
    /// `(buffer time, key)`: the eviction order.
    order: BTreeSet<(i64, Bytes)>,
    /// Bytes counted for the entries (see [`record_size`]).
    bytes: u64,
    /// Keys changed since the last `send_changelog` (sent in key order).
    unsent: HashSet<Bytes>,
    /// Bytes of the unsent changes (the runtime commits early past its write-buffer limit).
    unsent_bytes: usize,
    /// Each key changed since the last commit, with its entry then (`None`: not buffered):
    /// what an abort puts back.
    undo: HashMap<Bytes, Option<Entry>>,
}

impl BufferStore {
    /// Opens the buffer `name`, empty, with its changelog partition (`None`: not logged).
    /// Call [`StateStore::restore`] before the first write when it is logged.
    ///
    /// `backend` holds nothing of the buffer; a tree of this name left there by an earlier
    /// version (which kept a copy of the buffer in it) is dropped.
    pub fn open(
        name: &str,
        backend: Arc<dyn Backend>,
        changelog: Option<ChangelogPartition>,
    ) -> Result<BufferStore> {
        if backend.tree_names()?.iter().any(|t| t == name) {
            backend.drop_tree(name)?;
        }
        Ok(BufferStore {
            name: name.to_string(),
            changelog,
            entries: HashMap::new(),
            order: BTreeSet::new(),
            bytes: 0,
            unsent: HashSet::new(),
            unsent_bytes: 0,
            undo: HashMap::new(),
        })
    }

    /// Sets `key`'s entry (`None`: removes it), keeping the order and the counts in step.
    fn set(&mut self, key: Bytes, entry: Option<Entry>) -> Option<Entry> {
        // The common update: a buffered key keeps its time, so its place in the order.
        if let (Some(slot), Some((time, v))) = (self.entries.get_mut(&key), &entry) {
            if slot.0 == *time {
                self.bytes = self.bytes + v.value.len() as u64 - slot.1.value.len() as u64;
                return entry.map(|e| std::mem::replace(slot, e));
            }
        }
        let old = self.entries.remove(&key);
        if let Some((time, v)) = &old {
            self.bytes -= record_size(key.len(), v.value.len());
            self.order.remove(&(*time, key.clone()));
        }
        if let Some((time, v)) = entry {
            self.bytes += record_size(key.len(), v.value.len());
            self.order.insert((time, key.clone()));
            self.entries.insert(key, (time, v));
        }
        old
    }

    /// A change made by the operator: remembered for the changelog and for an abort.
    fn change(&mut self, key: Bytes, entry: Option<Entry>) {
        self.unsent_bytes += key.len() + entry.as_ref().map_or(0, |(_, v)| v.value.len()) + 48;
        self.unsent.insert(key.clone());
        let old = self.set(key.clone(), entry);
        self.undo.entry(key).or_insert(old);
    }

    /// Buffers `value` for `key`. A key already buffered keeps its buffer time (and its place
    /// in the order); only its value changes. A new key is buffered at `buffer_time`.
    pub fn put(&mut self, buffer_time: i64, key: Bytes, value: Timestamped) -> Result<()> {
        let time = self.entries.get(&key).map_or(buffer_time, |(t, _)| *t);
        self.change(key, Some((time, value)));
        Ok(())
    }

    /// The value buffered for `key`, borrowed (no copy of the entry, as [`get`](Self::get)
    /// makes).
    pub fn value_of(&self, key: &[u8]) -> Option<&Timestamped> {
        self.entries.get(key).map(|(_, value)| value)
    }

    /// The entry of `key`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<BufferedRecord>> {
        Ok(self
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
        let Some((key, _)) = self.entries.get_key_value(key) else {
            return Ok(false);
        };
        self.change(key.clone(), None);
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
        while let Some((time, key)) = self.order.first().cloned() {
            let state = BufferState {
                min_timestamp: time,
                num_records: self.entries.len(),
                buffer_size_bytes: self.bytes,
            };
            if !predicate(&state) {
                break;
            }
            let Some((_, value)) = self.entries.get(&key) else {
                return Err(Error::Corrupt {
                    store: self.name.clone(),
                    reason: format!("{} is ordered but not buffered", show_key(&key)),
                }
                .into());
            };
            callback(BufferedRecord {
                key: key.clone(),
                value: value.clone(),
                buffer_time: time,
            })?;
            self.change(key, None);
            evicted += 1;
        }
        Ok(evicted)
    }

    /// The smallest buffer time, `i64::MAX` when the buffer is empty (as Kafka's
    /// `minTimestamp`).
    pub fn min_timestamp(&mut self) -> Result<i64> {
        Ok(self.order.first().map_or(i64::MAX, |(time, _)| *time))
    }

    /// Entries in the buffer.
    pub fn num_records(&self) -> usize {
        self.entries.len()
    }

    /// Bytes counted for the entries: per entry 16 (buffer time and timestamp) + key +
    /// value bytes. Suppress's `BufferConfig::max_bytes` compares against this.
    pub fn buffer_size_bytes(&self) -> u64 {
        self.bytes
    }

    /// Every entry in eviction order (buffer time, then key).
    pub fn records(&mut self) -> Result<Vec<BufferedRecord>> {
        Ok(self
            .order
            .iter()
            .filter_map(|(time, key)| {
                self.entries.get(key).map(|(_, value)| BufferedRecord {
                    key: key.clone(),
                    value: value.clone(),
                    buffer_time: *time,
                })
            })
            .collect())
    }

    fn changelog_error(&self, cl: &ChangelogPartition, reason: String) -> Error {
        Error::Changelog {
            store: self.name.clone(),
            topic: cl.topic.clone(),
            partition: cl.partition,
            reason,
        }
    }

    /// Applies one changelog record to the buffer (restore).
    fn replay(&mut self, r: ChangelogRecord) -> Result<()> {
        let entry = match r.value {
            None => None,
            Some(v) => {
                let time = v
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(i64::from_be_bytes)
                    .ok_or_else(|| Error::Corrupt {
                        store: self.name.clone(),
                        reason: format!(
                            "changelog value of {} has no buffer time",
                            show_key(&r.key)
                        ),
                    })?;
                Some((
                    time,
                    Timestamped {
                        value: v.slice(8..),
                        timestamp: r.timestamp,
                    },
                ))
            }
        };
        self.set(r.key, entry);
        Ok(())
    }
}

impl StateStore for BufferStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize> {
        let mut keys: Vec<Bytes> = self.unsent.drain().collect();
        keys.sort_unstable();
        self.unsent_bytes = 0;
        let Some(cl) = self.changelog.clone() else {
            return Ok(0);
        };
        if keys.is_empty() {
            return Ok(0);
        }
        // The values (buffer time + entry) are slices of one buffer, not an allocation each.
        let size = keys
            .iter()
            .filter_map(|k| self.entries.get(k))
            .map(|(_, v)| 8 + v.value.len())
            .sum();
        let mut values = BytesMut::with_capacity(size);
        let records: Vec<ChangelogRecord> = keys
            .into_iter()
            .map(|key| match self.entries.get(&key) {
                Some((time, v)) => {
                    values.extend_from_slice(&time.to_be_bytes());
                    values.extend_from_slice(&v.value);
                    ChangelogRecord {
                        key,
                        value: Some(values.split().freeze()),
                        timestamp: v.timestamp,
                    }
                }
                None => ChangelogRecord {
                    key,
                    value: None,
                    timestamp: 0,
                },
            })
            .collect();
        let n = records.len();
        sink.append(&cl, records)
            .map_err(|e| self.changelog_error(&cl, e.to_string()))?;
        Ok(n)
    }

    fn committed(&mut self) {
        self.undo.clear();
    }

    fn apply(&mut self) -> Result<()> {
        Ok(())
    }

    fn abort(&mut self) {
        for (key, entry) in std::mem::take(&mut self.undo) {
            self.set(key, entry);
        }
        self.unsent.clear();
        self.unsent_bytes = 0;
    }

    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        let Some(cl) = self.changelog.clone() else {
            return Ok(RestoreStats::default());
        };
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
        self.unsent.clear();
        self.unsent_bytes = 0;
        self.undo.clear();
        let (start, stable) = reader
            .bounds(&cl)
            .map_err(|e| self.changelog_error(&cl, e.to_string()))?;
        // Nothing local was lost: the buffer always restores from the changelog's start.
        let mut stats = RestoreStats {
            wiped: false,
            from_offset: start,
            ..RestoreStats::default()
        };
        let mut pos = start;
        while pos < stable {
            let batch = reader
                .read(&cl, pos, RESTORE_BATCH_RECORDS)
                .map_err(|e| self.changelog_error(&cl, e.to_string()))?;
            if batch.next_offset <= pos {
                break;
            }
            for (offset, r) in batch.records {
                if offset >= stable {
                    break;
                }
                self.replay(r)?;
                stats.records_applied += 1;
            }
            pos = batch.next_offset;
        }
        Ok(stats)
    }

    fn write_buffer_bytes(&self) -> usize {
        self.unsent_bytes
    }
}
