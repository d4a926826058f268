//! The time-ordered, changelogged buffer for suppress; [`BufferStore`] documents it.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;

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

/// What the buffer keeps for a key: its entry, and what the next changelog send and the
/// next commit or abort need of it. All in one place, so that an update is one lookup.
#[derive(Debug)]
struct Slot {
    /// `None`: not buffered; such a slot stays only while it is unsent or undoable.
    entry: Option<Entry>,
    /// Changed since the last `send_changelog` (and listed in `BufferStore::unsent`).
    unsent: bool,
    /// `Some(entry then)`: changed since the last commit (and listed in
    /// `BufferStore::changed`); what an abort puts back.
    undo: Option<Option<Entry>>,
}

impl Slot {
    /// Neither buffered nor needed by the next send, commit or abort.
    fn spent(&self) -> bool {
        self.entry.is_none() && !self.unsent && self.undo.is_none()
    }
}

/// Bytes an entry's changelog value takes: its buffer time and value (a removed entry's
/// tombstone, none).
fn logged_size(entry: &Option<Entry>) -> usize {
    entry.as_ref().map_or(0, |(_, v)| 8 + v.value.len())
}

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
    /// Every buffered key, and keys removed since the last send or commit.
    slots: HashMap<Bytes, Slot, foldhash::fast::RandomState>,
    /// Buffered keys.
    len: usize,
    /// `(buffer time, key)`: the eviction order.
    order: BTreeSet<(i64, Bytes)>,
    /// Bytes counted for the entries (see [`record_size`]).
    bytes: u64,
    /// Keys changed since the last `send_changelog` (sent in key order), each once.
    unsent: Vec<Bytes>,
    /// Bytes of the unsent changes (the runtime commits early past its write-buffer limit).
    unsent_bytes: usize,
    /// Bytes the next changelog send's values take: buffer time and value of each unsent
    /// key's entry as it is now (what `send_changelog` sizes its one buffer by).
    unsent_values: usize,
    /// Keys changed since the last commit, each once (their slots hold what an abort puts
    /// back).
    changed: Vec<Bytes>,
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
            slots: HashMap::default(),
            len: 0,
            order: BTreeSet::new(),
            bytes: 0,
            unsent: Vec::new(),
            unsent_bytes: 0,
            unsent_values: 0,
            changed: Vec::new(),
        })
    }

    /// The entry of `key`, if buffered.
    fn entry(&self, key: &[u8]) -> Option<&Entry> {
        self.slots.get(key).and_then(|s| s.entry.as_ref())
    }

    /// Replaces `slot`'s entry by `entry`, keeping the order and the counts in step;
    /// returns the old entry. A buffered key whose time stays keeps its place in the order
    /// (the common update: nothing but the value changes).
    fn replace(
        order: &mut BTreeSet<(i64, Bytes)>,
        counts: (&mut usize, &mut u64),
        key: &Bytes,
        slot: &mut Slot,
        entry: Option<Entry>,
    ) -> Option<Entry> {
        let (len, bytes) = counts;
        let size = |e: &Option<Entry>| {
            e.as_ref()
                .map(|(_, v)| record_size(key.len(), v.value.len()))
        };
        let (old_size, new_size) = (size(&slot.entry), size(&entry));
        *bytes = *bytes + new_size.unwrap_or(0) - old_size.unwrap_or(0);
        *len = *len + usize::from(new_size.is_some()) - usize::from(old_size.is_some());
        let old_time = slot.entry.as_ref().map(|(t, _)| *t);
        let new_time = entry.as_ref().map(|(t, _)| *t);
        if old_time != new_time {
            if let Some(t) = old_time {
                order.remove(&(t, key.clone()));
            }
            if let Some(t) = new_time {
                order.insert((t, key.clone()));
            }
        }
        std::mem::replace(&mut slot.entry, entry)
    }

    /// Sets `key`'s entry (`None`: removes it) without remembering the change (restore).
    fn set(&mut self, key: Bytes, entry: Option<Entry>) {
        let slot = self.slots.entry(key.clone()).or_insert(Slot {
            entry: None,
            unsent: false,
            undo: None,
        });
        Self::replace(
            &mut self.order,
            (&mut self.len, &mut self.bytes),
            &key,
            slot,
            entry,
        );
        if slot.spent() {
            self.slots.remove(&key);
        }
    }

    /// A change made by the operator, `f` computing the new entry from the old one:
    /// remembered for the changelog and for an abort, in one lookup of the key.
    fn change<E>(
        &mut self,
        key: &[u8],
        f: impl FnOnce(Option<&Entry>) -> Result<Option<Entry>, E>,
    ) -> Result<(), E> {
        let (key, slot) = match self.slots.get_key_value_mut(key) {
            Some((k, slot)) => (k.clone(), slot),
            None => {
                let key = crate::serde::compact_bytes(key);
                let slot = self.slots.entry(key.clone()).or_insert(Slot {
                    entry: None,
                    unsent: false,
                    undo: None,
                });
                (key, slot)
            }
        };
        let entry = match f(slot.entry.as_ref()) {
            Ok(entry) => entry,
            Err(e) => {
                if slot.spent() {
                    self.slots.remove(&key);
                }
                return Err(e);
            }
        };
        self.unsent_bytes += key.len() + entry.as_ref().map_or(0, |(_, v)| v.value.len()) + 48;
        let was_unsent = if slot.unsent {
            logged_size(&slot.entry)
        } else {
            0
        };
        self.unsent_values = self.unsent_values.saturating_sub(was_unsent) + logged_size(&entry);
        let old = Self::replace(
            &mut self.order,
            (&mut self.len, &mut self.bytes),
            &key,
            slot,
            entry,
        );
        if slot.undo.is_none() {
            slot.undo = Some(old);
            self.changed.push(key.clone());
        }
        if !slot.unsent {
            slot.unsent = true;
            self.unsent.push(key);
        }
        Ok(())
    }

    /// Buffers `value` for `key`. A key already buffered keeps its buffer time (and its place
    /// in the order); only its value changes. A new key is buffered at `buffer_time`.
    pub fn put(&mut self, buffer_time: i64, key: Bytes, value: Timestamped) -> Result<()> {
        self.update(buffer_time, &key, |_| Ok(value))
    }

    /// [`put`](Self::put) of the value `f` makes from the one buffered for `key` (`None`:
    /// not buffered), in one lookup; an error from `f` leaves the buffer as it was.
    pub fn update<E>(
        &mut self,
        buffer_time: i64,
        key: &[u8],
        f: impl FnOnce(Option<&Timestamped>) -> Result<Timestamped, E>,
    ) -> Result<(), E> {
        self.change(key, |old| {
            let time = old.map_or(buffer_time, |(t, _)| *t);
            Ok(Some((time, f(old.map(|(_, v)| v))?)))
        })
    }

    /// The value buffered for `key`, borrowed (no copy of the entry, as [`get`](Self::get)
    /// makes).
    pub fn value_of(&self, key: &[u8]) -> Option<&Timestamped> {
        self.entry(key).map(|(_, value)| value)
    }

    /// The entry of `key`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<BufferedRecord>> {
        Ok(self.slots.get_key_value(key).and_then(|(k, slot)| {
            slot.entry.as_ref().map(|(time, value)| BufferedRecord {
                key: k.clone(),
                value: value.clone(),
                buffer_time: *time,
            })
        }))
    }

    /// Removes `key`'s entry; returns whether there was one.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        if self.entry(key).is_none() {
            return Ok(false);
        }
        self.change(key, |_| Ok::<_, Error>(None))?;
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
                num_records: self.len,
                buffer_size_bytes: self.bytes,
            };
            if !predicate(&state) {
                break;
            }
            let Some((_, value)) = self.entry(&key) else {
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
            self.change(&key, |_| Ok::<_, Error>(None))?;
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
        self.len
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
                self.entry(key).map(|(_, value)| BufferedRecord {
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
        let keys = std::mem::take(&mut self.unsent);
        self.unsent_bytes = 0;
        let size = std::mem::take(&mut self.unsent_values);
        let Some(cl) = self.changelog.clone() else {
            for key in &keys {
                if let Some(slot) = self.slots.get_mut(key) {
                    slot.unsent = false;
                    if slot.spent() {
                        self.slots.remove(key);
                    }
                }
            }
            return Ok(0);
        };
        if keys.is_empty() {
            return Ok(0);
        }
        // One lookup per key: its record is made where its slot is marked sent. The values
        // (buffer time + entry) are slices of one buffer of `size` bytes, not an allocation
        // each.
        let mut values = BytesMut::with_capacity(size);
        let mut records: Vec<ChangelogRecord> = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(slot) = self.slots.get_mut(&key) else {
                // Not buffered (an unsent key keeps its slot; this is a guard).
                records.push(ChangelogRecord {
                    key,
                    value: None,
                    timestamp: 0,
                });
                continue;
            };
            slot.unsent = false;
            let record = match &slot.entry {
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
            };
            if slot.spent() {
                self.slots.remove(&record.key);
            }
            records.push(record);
        }
        records.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let n = records.len();
        sink.append(&cl, records)
            .map_err(|e| self.changelog_error(&cl, e.to_string()))?;
        Ok(n)
    }

    fn committed(&mut self) {
        for key in std::mem::take(&mut self.changed) {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.undo = None;
                if slot.spent() {
                    self.slots.remove(&key);
                }
            }
        }
    }

    fn apply(&mut self) -> Result<()> {
        Ok(())
    }

    fn abort(&mut self) {
        let (unsent, changed) = (
            std::mem::take(&mut self.unsent),
            std::mem::take(&mut self.changed),
        );
        self.unsent_bytes = 0;
        self.unsent_values = 0;
        for key in &unsent {
            if let Some(slot) = self.slots.get_mut(key) {
                slot.unsent = false;
            }
        }
        for key in &changed {
            if let Some(slot) = self.slots.get_mut(key) {
                let then = slot.undo.take().flatten();
                Self::replace(
                    &mut self.order,
                    (&mut self.len, &mut self.bytes),
                    key,
                    slot,
                    then,
                );
            }
        }
        for key in unsent.iter().chain(&changed) {
            if self.slots.get(key).is_some_and(Slot::spent) {
                self.slots.remove(key);
            }
        }
    }

    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats> {
        let Some(cl) = self.changelog.clone() else {
            return Ok(RestoreStats::default());
        };
        self.slots.clear();
        self.len = 0;
        self.order.clear();
        self.bytes = 0;
        self.unsent.clear();
        self.unsent_bytes = 0;
        self.unsent_values = 0;
        self.changed.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    /// A changelog that takes everything and keeps nothing.
    struct Discard;

    impl ChangelogSink for Discard {
        fn append(
            &mut self,
            _: &ChangelogPartition,
            records: Vec<ChangelogRecord>,
        ) -> Result<i64, crate::changelog::ChangelogError> {
            Ok(records.len() as i64)
        }
    }

    /// A changelog that keeps the total length of the values it was sent.
    struct Sizes(usize);

    impl ChangelogSink for Sizes {
        fn append(
            &mut self,
            _: &ChangelogPartition,
            records: Vec<ChangelogRecord>,
        ) -> Result<i64, crate::changelog::ChangelogError> {
            self.0 += records
                .iter()
                .map(|r| r.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>();
            Ok(records.len() as i64)
        }
    }

    /// The send sizes its one buffer of values exactly, whatever happened to the unsent
    /// keys since the last send: updates that grow and shrink a value, deletions,
    /// evictions, aborts.
    #[test]
    fn the_changelog_values_take_what_was_counted_for_them() -> Result<()> {
        let changelog = ChangelogPartition {
            topic: "app-suppress-changelog".into(),
            partition: 0,
        };
        let mut b = BufferStore::open("s", Arc::new(MemoryBackend::new()), Some(changelog))?;
        let send = |b: &mut BufferStore| -> Result<()> {
            let counted = b.unsent_values;
            let mut sink = Sizes(0);
            b.send_changelog(&mut sink)?;
            assert_eq!(sink.0, counted);
            assert_eq!(b.unsent_values, 0);
            Ok(())
        };
        b.put(1, Bytes::from("a"), value("1"))?;
        b.put(1, Bytes::from("a"), value("1234567"))?;
        b.put(2, Bytes::from("b"), value("12"))?;
        b.put(2, Bytes::from("b"), value("1"))?;
        b.put(3, Bytes::from("c"), value("123"))?;
        b.delete(b"c")?;
        send(&mut b)?;
        b.committed();
        b.put(4, Bytes::from("d"), value("12345"))?;
        b.evict_while(|s| s.min_timestamp <= 1, |_| Ok::<(), Error>(()))?;
        send(&mut b)?;
        b.put(5, Bytes::from("e"), value("1"))?;
        b.abort();
        b.put(5, Bytes::from("b"), value("123456"))?;
        send(&mut b)?;
        Ok(())
    }

    fn value(v: &'static str) -> Timestamped {
        Timestamped {
            value: Bytes::from(v),
            timestamp: 0,
        }
    }

    /// Removed keys stay only while the next send, commit or abort needs them: a buffer
    /// whose keys come and go does not grow.
    #[test]
    fn removed_keys_leave_with_the_commit_or_abort_that_no_longer_needs_them() -> Result<()> {
        let changelog = ChangelogPartition {
            topic: "app-suppress-changelog".into(),
            partition: 0,
        };
        let mut b = BufferStore::open("s", Arc::new(MemoryBackend::new()), Some(changelog))?;
        b.put(1, Bytes::from("a"), value("1"))?;
        b.put(1, Bytes::from("b"), value("1"))?;
        b.send_changelog(&mut Discard)?;
        b.committed();
        assert_eq!(b.slots.len(), 2);
        b.delete(b"a")?;
        assert_eq!((b.num_records(), b.slots.len()), (1, 2));
        b.send_changelog(&mut Discard)?;
        assert_eq!(b.slots.len(), 2, "an abort may still put `a` back");
        b.committed();
        assert_eq!(b.slots.len(), 1);

        b.put(2, Bytes::from("c"), value("1"))?;
        b.delete(b"b")?;
        b.abort();
        assert_eq!(b.get(b"b")?.map(|r| r.value), Some(value("1")));
        assert_eq!((b.num_records(), b.slots.len()), (1, 1));

        // Committed without a send: the change stays unsent, then an abort drops it.
        b.put(3, Bytes::from("d"), value("1"))?;
        b.delete(b"d")?;
        b.committed();
        assert_eq!(b.slots.len(), 2);
        b.abort();
        assert_eq!((b.num_records(), b.slots.len()), (1, 1));
        Ok(())
    }
}
