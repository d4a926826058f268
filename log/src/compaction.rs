//! Compaction of `compact` and `compact,delete` partitions: keep the latest record per key,
//! as Kafka's log cleaner does, without ever looking past the last stable offset.
//!
//! # What is cleaned
//! Only a prefix of the *sealed* segments: those ending at or before the last stable offset
//! (so no open transaction's records are touched), stopping at the first segment whose
//! newest record is younger than `min.compaction.lag.ms`. The active segment is never
//! rewritten.
//!
//! # What is kept
//! The cleaner first maps each key to its latest offset over every committed, non-aborted
//! record of the sealed segments below the last stable offset (the active segment is left out
//! as in Kafka: its tail may not be fsynced yet, and a record must not be dropped in favour of
//! one a power loss could still take away). Then, in each cleanable segment, a record is kept
//! when
//! - it has no key (Kafka refuses those on compacted topics; we keep them), or
//! - its offset is its key's latest, and it is not a tombstone (null value) whose timestamp is
//!   older than `delete.retention.ms`.
//!
//! Records below the log start offset (left by `delete_records` inside a segment) go.
//!
//! # Transactions
//! Batches of aborted transactions (the same ranges `read_committed` readers skip) never count
//! as a key's latest and are dropped. Control batches (commit and abort markers) are kept
//! until they are older than `delete.retention.ms`, then dropped like tombstones. That is safe
//! because nothing in this log reads markers to decide visibility: `read_committed` readers
//! take aborted ranges from `aborted.idx` and stability from the open transactions, and an
//! abort marker always follows its transaction's data, which this same pass has removed
//! (segments are cleaned oldest first, and the cleanable range is a prefix).
//!
//! # Offsets
//! Offsets and order never change; compaction leaves gaps. A rewritten batch keeps its base
//! offset, producer, attributes and last offset (even when its last record is gone), so a
//! reader's next position moves past the whole original batch. A batch that loses every
//! record is dropped — except the last batch of a segment, which becomes an empty batch with
//! the same offset range, so the segment still ends where it did, for readers and for a scan
//! of the file after a crash.
//!
//! # Crash safety
//! A segment is rewritten into `{base:020}.log.cleaned`, fsynced, its index files are
//! removed, and the cleaned file is renamed over the original; then fresh index files are
//! written. Each step leaves either the old or the new complete file, and a segment without
//! index files is rescanned on open. Leftover `.cleaned` files are deleted before the next
//! clean of that partition.
//!
//! # Cost
//! The partition lock is held for the whole clean. A pass reads the sealed segments below the
//! last stable offset once (the key map, with exact keys: no hash collisions), then reads and
//! rewrites only segments that lose something. A small checkpoint file
//! (`cleaner-checkpoint`) lets a later pass skip the partition when nothing it depends on has
//! changed and no tombstone or marker has expired since.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::{self, BatchEncoder, BatchHeader};
use crate::error::{Error, Result};
use crate::partition::{is_aborted, AbortedTxn, Partition, PartitionState};
use crate::record::StoredRecord;
use crate::segment::{self, Segment};

/// Suffix of a segment being rewritten (deleted when found at the start of a clean).
const CLEANED_SUFFIX: &str = ".log.cleaned";
/// Remembers what the last clean saw, so an unchanged partition is not read again.
const CHECKPOINT_FILE: &str = "cleaner-checkpoint";
/// Bytes of batches read from a segment at a time (bounds the cleaner's memory).
const READ_CHUNK: usize = 4 << 20;

/// What compacting one partition did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Compacted {
    /// Segments rewritten.
    pub(crate) segments_cleaned: usize,
    /// Records (markers included) dropped.
    pub(crate) records_removed: u64,
    /// Bytes of the rewritten segments before.
    pub(crate) bytes_before: u64,
    /// Bytes of the rewritten segments after.
    pub(crate) bytes_after: u64,
}

/// The latest record of a key below the map end.
#[derive(Debug, Clone, Copy)]
struct Latest {
    offset: i64,
    timestamp: i64,
    tombstone: bool,
}

/// Per cleanable segment: whether a rewrite would change it.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    /// Keyed records of live (non-aborted) batches at or above the log start.
    keyed: u64,
    /// Of those, the ones that stay (their key's latest, not an expired tombstone).
    survivors: u64,
    /// Something goes whatever the map says: an aborted batch, an expired marker, a record
    /// below the log start.
    dirty: bool,
}

/// The bounds of one clean, fixed under the partition lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    log_start: i64,
    /// The key map covers offsets below this: min(active segment base, last stable offset).
    map_end: i64,
    /// Segments `[0, cleanable)` may be rewritten.
    cleanable: usize,
    /// The next offset of the last cleanable segment.
    cleanable_end: i64,
    delete_retention_ms: i64,
}

impl Bounds {
    fn of(st: &PartitionState, now: i64) -> Bounds {
        let sealed = st.segments.len().saturating_sub(1);
        let map_end = st
            .segments
            .last()
            .map_or(st.log_start, |s| s.base_offset)
            .min(st.last_stable());
        let lag = st.config.min_compaction_lag_ms;
        let cleanable = st.segments[..sealed]
            .iter()
            .take_while(|s| s.next_offset <= map_end)
            .take_while(|s| lag <= 0 || s.max_timestamp <= now.saturating_sub(lag))
            .count();
        let cleanable_end = cleanable
            .checked_sub(1)
            .map_or(st.log_start, |i| st.segments[i].next_offset);
        Bounds {
            log_start: st.log_start,
            map_end,
            cleanable,
            cleanable_end,
            delete_retention_ms: st.config.delete_retention_ms,
        }
    }

    /// Tombstones and markers with timestamps below this have outlived `delete.retention.ms`.
    fn horizon(&self, now: i64) -> i64 {
        now.saturating_sub(self.delete_retention_ms)
    }

    /// When something kept at `timestamp` expires (the first `now` that drops it).
    fn expiry(&self, timestamp: i64) -> i64 {
        timestamp
            .saturating_add(self.delete_retention_ms)
            .saturating_add(1)
    }
}

/// Compacts one partition now, if its policy compacts; `None` when there was nothing to
/// look at (not compacted, read-only, no cleanable segment, or unchanged since the last clean).
pub(crate) fn compact(p: &Partition, now: i64, index_interval: u64) -> Result<Option<Compacted>> {
    let mut st = p.state.lock();
    if !p.writable || !st.config.cleanup_policy.compacts() {
        return Ok(None);
    }
    remove_leftovers(&p.dir)?;
    let bounds = Bounds::of(&st, now);
    if bounds.cleanable == 0 {
        return Ok(None);
    }
    let checkpoint = p.dir.join(CHECKPOINT_FILE);
    if read_checkpoint(&checkpoint).is_some_and(|(b, wake_at)| b == bounds && now < wake_at) {
        return Ok(None);
    }
    let label = format!("{}-{}", p.topic, p.id);
    let horizon = bounds.horizon(now);
    let (map, mut tallies, mut wake_at) = build_map(&st, &bounds, horizon)?;
    for latest in map.values() {
        if latest.offset >= bounds.cleanable_end {
            continue;
        }
        let i = st.segments[..bounds.cleanable]
            .partition_point(|s| s.base_offset <= latest.offset)
            .saturating_sub(1);
        if latest.tombstone {
            if latest.timestamp < horizon {
                continue;
            }
            wake_at = wake_at.min(bounds.expiry(latest.timestamp));
        }
        tallies[i].survivors += 1;
    }
    let mut done = Compacted::default();
    for (i, tally) in tallies.iter().enumerate() {
        if !tally.dirty && tally.survivors >= tally.keyed {
            continue;
        }
        let seg = &st.segments[i];
        let tmp = p
            .dir
            .join(format!("{:020}{CLEANED_SUFFIX}", seg.base_offset));
        let rules = Rules {
            aborted: &st.aborted,
            map: &map,
            log_start: bounds.log_start,
            horizon,
        };
        let removed = match write_cleaned(seg, &tmp, &rules) {
            Ok(removed) => removed,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let cleaned = swap_in(&p.dir, seg, &tmp, index_interval)?;
        tracing::debug!(
            partition = %label,
            base = seg.base_offset,
            before = seg.size,
            after = cleaned.size,
            removed,
            "compacted segment"
        );
        done.segments_cleaned += 1;
        done.records_removed += removed;
        done.bytes_before += seg.size;
        done.bytes_after += cleaned.size;
        st.segments[i] = cleaned;
    }
    if done.segments_cleaned > 0 {
        tracing::info!(
            partition = %label,
            segments = done.segments_cleaned,
            records_removed = done.records_removed,
            bytes_before = done.bytes_before,
            bytes_after = done.bytes_after,
            "compacted partition"
        );
    }
    write_checkpoint(&checkpoint, &bounds, wake_at)?;
    Ok(Some(done))
}

/// Reads the sealed segments below the map end once: the key map, each cleanable segment's
/// tally, and the earliest time a kept marker expires.
fn build_map(
    st: &PartitionState,
    bounds: &Bounds,
    horizon: i64,
) -> Result<(HashMap<Bytes, Latest>, Vec<Tally>, i64)> {
    let mut map: HashMap<Bytes, Latest> = HashMap::new();
    let mut tallies = vec![Tally::default(); bounds.cleanable];
    let mut wake_at = i64::MAX;
    let sealed = st.segments.len().saturating_sub(1);
    for (i, seg) in st.segments[..sealed].iter().enumerate() {
        if seg.base_offset >= bounds.map_end {
            break;
        }
        let mut tally = tallies.get_mut(i);
        for_each_batch(seg, bounds.map_end, |h, bytes| {
            if h.record_count == 0 {
                // An empty batch left by an earlier clean: nothing in it, nothing to drop.
                return Ok(());
            }
            if h.is_control() {
                if let Some(t) = tally.as_deref_mut() {
                    if h.max_timestamp < horizon {
                        t.dirty = true;
                    } else {
                        wake_at = wake_at.min(bounds.expiry(h.max_timestamp));
                    }
                }
                return Ok(());
            }
            if h.is_transactional() && is_aborted(&st.aborted, h) {
                if let Some(t) = tally.as_deref_mut() {
                    t.dirty = true;
                }
                return Ok(());
            }
            for r in decode(seg, bytes, h)? {
                if r.offset >= bounds.map_end {
                    break;
                }
                if r.offset < bounds.log_start {
                    if let Some(t) = tally.as_deref_mut() {
                        t.dirty = true;
                    }
                    continue;
                }
                let Some(key) = r.key else { continue };
                if let Some(t) = tally.as_deref_mut() {
                    t.keyed += 1;
                }
                let latest = Latest {
                    offset: r.offset,
                    timestamp: r.timestamp,
                    tombstone: r.value.is_none(),
                };
                match map.get_mut(&key[..]) {
                    Some(slot) => *slot = latest,
                    // A copy, so the map does not pin the whole batch buffer in memory.
                    None => {
                        map.insert(Bytes::copy_from_slice(&key), latest);
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok((map, tallies, wake_at))
}

/// Writes the cleaned copy of `seg` to `tmp` and fsyncs it; returns the records dropped.
fn write_cleaned(seg: &Segment, tmp: &Path, rules: &Rules<'_>) -> Result<u64> {
    let file = File::create(tmp).map_err(|e| Error::io("create cleaned segment", tmp, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut removed = 0u64;
    // The last batch seen, when it was dropped whole (it must leave an empty batch behind).
    let mut dropped_last: Option<BatchHeader> = None;
    let mut put = |kept: &[u8]| {
        out.write_all(kept)
            .map_err(|e| Error::io("write cleaned segment", tmp, e))
    };
    for_each_batch(seg, i64::MAX, |h, bytes| {
        let (kept, dropped) = rules.filter(seg, h, bytes)?;
        removed += dropped;
        match kept {
            Kept::Whole => put(bytes)?,
            Kept::Part(rewritten) => put(&rewritten)?,
            Kept::Nothing => {
                dropped_last = Some(*h);
                return Ok(());
            }
        }
        dropped_last = None;
        Ok(())
    })?;
    if let Some(h) = dropped_last {
        put(&BatchEncoder::rewrite_of(&h).finish())?;
    }
    let file = out
        .into_inner()
        .map_err(|e| Error::io("write cleaned segment", tmp, e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::io("fsync cleaned segment", tmp, e))?;
    Ok(removed)
}

/// What of a batch survives cleaning.
#[derive(Debug)]
enum Kept {
    /// All of it: copied as it is.
    Whole,
    /// Some records: the batch re-encoded with them.
    Part(Vec<u8>),
    /// Nothing.
    Nothing,
}

/// The keep-or-drop rules of one clean (see the module docs).
#[derive(Debug)]
struct Rules<'a> {
    aborted: &'a [AbortedTxn],
    map: &'a HashMap<Bytes, Latest>,
    log_start: i64,
    horizon: i64,
}

impl Rules<'_> {
    /// What of batch `h` stays, and how many records go.
    fn filter(&self, seg: &Segment, h: &BatchHeader, bytes: &Bytes) -> Result<(Kept, u64)> {
        let all = u64::from(h.record_count);
        if h.record_count == 0 {
            // An empty batch left by an earlier clean: it holds the segment's offset range.
            return Ok((Kept::Whole, 0));
        }
        if h.is_control() {
            return Ok(if h.max_timestamp >= self.horizon {
                (Kept::Whole, 0)
            } else {
                (Kept::Nothing, all)
            });
        }
        if h.is_transactional() && is_aborted(self.aborted, h) {
            return Ok((Kept::Nothing, all));
        }
        let records = decode(seg, bytes, h)?;
        let total = records.len();
        let kept: Vec<_> = records
            .into_iter()
            .filter(|r| {
                if r.offset < self.log_start {
                    return false;
                }
                let Some(key) = &r.key else { return true };
                self.map.get(&key[..]).is_some_and(|l| {
                    l.offset == r.offset && !(l.tombstone && l.timestamp < self.horizon)
                })
            })
            .collect();
        let dropped = (total - kept.len()) as u64;
        if dropped == 0 {
            return Ok((Kept::Whole, 0));
        }
        if kept.is_empty() {
            return Ok((Kept::Nothing, dropped));
        }
        let mut enc = BatchEncoder::rewrite_of(h);
        for r in &kept {
            enc.push(
                r.offset,
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
        }
        Ok((Kept::Part(enc.finish()), dropped))
    }
}

/// Replaces `seg`'s file with the cleaned one at `tmp` and opens it with fresh index files.
fn swap_in(dir: &Path, seg: &Segment, tmp: &Path, index_interval: u64) -> Result<Segment> {
    // Stale index files must not survive the swap: they are matched to a log file by size
    // only. Without them a segment is rescanned on open.
    for ext in ["index", "timeindex"] {
        let path = seg.path.with_extension(ext);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove stale index", &path, e)),
        }
    }
    segment::sync_dir(dir)?;
    fs::rename(tmp, &seg.path).map_err(|e| Error::io("swap in cleaned segment", &seg.path, e))?;
    segment::sync_dir(dir)?;
    // Opened as if active, so `seal` writes its index files; the scan checks every CRC of
    // what was just written.
    let mut cleaned = Segment::open(
        dir,
        seg.base_offset,
        true,
        false,
        true,
        index_interval,
        |_, _| Ok(()),
    )?;
    cleaned.next_offset = cleaned.next_offset.max(seg.next_offset);
    cleaned.created_ms = seg.created_ms;
    cleaned.seal()?;
    Ok(cleaned)
}

/// Calls `each` for every batch of `seg` that starts below `limit`, reading a chunk at a time.
fn for_each_batch(
    seg: &Segment,
    limit: i64,
    mut each: impl FnMut(&BatchHeader, &Bytes) -> Result<()>,
) -> Result<()> {
    let mut from = seg.base_offset;
    loop {
        let batches = seg.read(from, limit, READ_CHUNK)?;
        let Some(next) = batches.last().map(|(h, _)| h.last_offset() + 1) else {
            return Ok(());
        };
        for (h, bytes) in &batches {
            each(h, bytes)?;
        }
        if next <= from {
            return Ok(());
        }
        from = next;
    }
}

fn decode(seg: &Segment, bytes: &Bytes, h: &BatchHeader) -> Result<Vec<StoredRecord>> {
    batch::decode_records(bytes, h).map_err(|reason| Error::Corrupt {
        path: seg.path.clone(),
        position: 0,
        reason: format!("batch at offset {}: {reason}", h.base_offset),
    })
}

/// Deletes `.cleaned` files a crash left behind (the original segment is still in place).
fn remove_leftovers(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list partition dir", dir, e))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list partition dir", dir, e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(CLEANED_SUFFIX)) {
            let path: PathBuf = entry.path();
            tracing::warn!(path = %path.display(), "removing a cleaned segment left by an interrupted clean");
            fs::remove_file(&path).map_err(|e| Error::io("remove leftover", &path, e))?;
            removed = true;
        }
    }
    if removed {
        segment::sync_dir(dir)?;
    }
    Ok(())
}

/// The bounds of the last completed clean and when it must look again regardless.
fn read_checkpoint(path: &Path) -> Option<(Bounds, i64)> {
    let text = fs::read_to_string(path).ok()?;
    let v: Vec<i64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    let &[1, log_start, map_end, cleanable, cleanable_end, delete_retention_ms, wake_at] =
        v.as_slice()
    else {
        return None;
    };
    let bounds = Bounds {
        log_start,
        map_end,
        cleanable: usize::try_from(cleanable).ok()?,
        cleanable_end,
        delete_retention_ms,
    };
    Some((bounds, wake_at))
}

fn write_checkpoint(path: &Path, b: &Bounds, wake_at: i64) -> Result<()> {
    let text = format!(
        "1 {} {} {} {} {} {}\n",
        b.log_start, b.map_end, b.cleanable, b.cleanable_end, b.delete_retention_ms, wake_at
    );
    segment::write_file_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::group::OffsetAndMetadata;
    use crate::log::Log;
    use crate::partition::now_ms;
    use crate::record::Record;
    use crate::Acks;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn open(dir: &Path) -> Result<Log> {
        Log::open_with(
            dir,
            LogConfig {
                cleaner_interval: None,
                ..LogConfig::default()
            },
        )
    }

    /// Internal partitions roll only after a gigabyte; tests seal their segments by hand.
    fn roll(p: &Partition) -> Result<()> {
        let mut st = p.state.lock();
        p.roll(&mut st, now_ms())
    }

    #[test]
    fn consumer_offsets_partition_is_compacted_and_reloads_the_same() -> TestResult {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path())?;
        log.create_topic("t", crate::TopicConfig::partitions(1))?;
        let offsets = log
            .inner
            .groups
            .offsets_partition(0)
            .ok_or("no offsets partition")?;
        for i in 0..30 {
            let at = [("t".to_string(), 0, OffsetAndMetadata::new(i))];
            log.commit_offsets("g", None, &at)?;
            if i % 10 == 9 {
                roll(&offsets)?;
            }
        }
        let stats = log.run_cleaner()?;
        assert_eq!(stats.records_removed, 29);
        assert_eq!(
            log.committed_offset("g", "t", 0)?.map(|o| o.offset),
            Some(29)
        );
        drop(offsets);
        drop(log);
        let log = open(dir.path())?;
        assert_eq!(
            log.committed_offset("g", "t", 0)?.map(|o| o.offset),
            Some(29)
        );
        Ok(())
    }

    #[test]
    fn transaction_state_partition_is_compacted_and_recovers_the_same() -> TestResult {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path())?;
        log.create_topic("t", crate::TopicConfig::partitions(1))?;
        for round in 0..3 {
            for id in ["a", "b"] {
                let mut tx = log.transactional_producer(id, Acks::Written)?;
                tx.begin()?;
                tx.append("t", 0, &[Record::new(id, format!("{round}"))])?;
                tx.commit()?;
            }
            roll(log.inner.txn.state_partition())?;
        }
        let stats = log.run_cleaner()?;
        assert!(stats.records_removed > 0, "{stats:?}");
        drop(log);
        let log = open(dir.path())?;
        // The latest state of each id survived: a new producer gets the next epoch.
        let tx = log.transactional_producer("a", Acks::Written)?;
        assert_eq!(tx.producer_id_and_epoch().1, 3);
        let other = log.transactional_producer("c", Acks::Written)?;
        assert!(other.producer_id_and_epoch().0 > tx.producer_id_and_epoch().0);
        Ok(())
    }
}
