//! One partition: an ordered run of segments, its offsets, and its transaction bookkeeping.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::batch::{self, BatchEncoder, BatchHeader, Marker, ProducerStamp};
use crate::config::{Acks, TopicConfig};
use crate::error::{Error, Result};
use crate::fetched::ReadOut;
use crate::record::{AsRecordRef, StoredRecord};
use crate::segment::{self, Segment};

const LOG_START_FILE: &str = "log-start-offset";
const ABORTED_FILE: &str = "aborted.idx";

/// Which records a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Up to the last stable offset, without aborted records or markers (default).
    #[default]
    ReadCommitted,
    /// Everything written, aborted records included (markers still hidden).
    ReadUncommitted,
}

/// The offsets that bound a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The first offset still stored (the log start offset).
    pub start: i64,
    /// The next offset to be written (the log end offset, also the high watermark).
    pub end: i64,
    /// The first offset of the oldest open transaction, or `end` when none is open.
    pub last_stable: i64,
}

/// Records read from a partition and the offset to continue from.
#[derive(Debug)]
pub(crate) struct ReadResult {
    pub(crate) records: Vec<StoredRecord>,
    pub(crate) next_offset: i64,
}

/// Where a read of a partition ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadEnd {
    /// The next offset to read.
    pub(crate) next_offset: i64,
    /// Where the readable records ended when it read: the last stable offset under
    /// read_committed, the log end otherwise. Past `next_offset`, records wait that the
    /// read's budget left.
    pub(crate) readable_end: i64,
}

/// The most records of a batch a read that keeps whole batches takes past its limit.
const WHOLE_BATCH_RECORDS: usize = 1 << 16;

/// An aborted transaction's range in one partition (the marker is at `last_offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
}

/// Mutable state of a partition, behind its lock.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// Ascending by base offset; the last is the active segment.
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start: i64,
    pub(crate) config: TopicConfig,
    /// Open transactions: producer id → first offset in this partition.
    pub(crate) ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions, ascending by `last_offset`.
    pub(crate) aborted: Vec<AbortedTxn>,
    /// In read-only mode: offsets at or past this are not yet known to be stable.
    pub(crate) stable_cap: i64,
    poisoned: bool,
    aborted_file_len: u64,
}

/// A partition of a topic.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) id: u32,
    pub(crate) dir: PathBuf,
    pub(crate) writable: bool,
    index_interval: u64,
    pub(crate) state: Mutex<PartitionState>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl PartitionState {
    pub(crate) fn end(&self) -> i64 {
        self.segments
            .last()
            .map_or(self.log_start, |s| s.next_offset)
    }

    pub(crate) fn last_stable(&self) -> i64 {
        let open = self.ongoing.values().copied().min().unwrap_or(i64::MAX);
        // Never below the log start (as Kafka clamps its first unstable offset): records
        // deleted below an open transaction's first offset must not drag the stable offset
        // out of the valid range, or a read_committed seek to the end would be out of range.
        open.min(self.end())
            .min(self.stable_cap)
            .max(self.log_start)
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets {
            start: self.log_start,
            end: self.end(),
            last_stable: self.last_stable(),
        }
    }
}

impl Partition {
    /// Opens (or, when writable and missing, creates) a partition directory.
    pub(crate) fn open(
        topic: &str,
        id: u32,
        dir: PathBuf,
        config: TopicConfig,
        writable: bool,
        index_interval: u64,
    ) -> Result<Partition> {
        if writable {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create partition dir", &dir, e))?;
            remove_cleaner_leftovers(&dir)?;
        }
        let mut bases = list_segments(&dir)?;
        bases.sort_unstable();
        let persisted_start = read_log_start(&dir)?;
        let mut segments = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            segments.push(Segment::open(
                &dir,
                base,
                active,
                true,
                writable,
                index_interval,
                |_, _| Ok(()),
            )?);
        }
        // A sealed segment ends where the next begins (a roll starts the next segment at the
        // end offset), whatever compaction or damage left inside it.
        for i in 1..segments.len() {
            let next_base = segments[i].base_offset;
            segments[i - 1].next_offset = next_base;
        }
        let first_base = segments.first().map_or(0, |s| s.base_offset);
        let mut log_start = persisted_start.unwrap_or(first_base).max(first_base);
        if segments.is_empty() {
            log_start = persisted_start.unwrap_or(0);
            if writable {
                segments.push(Segment::create(&dir, log_start, now_ms(), index_interval)?);
                segment::sync_dir(&dir)?;
            }
        }
        let mut state = PartitionState {
            segments,
            log_start,
            config,
            ongoing: BTreeMap::new(),
            aborted: Vec::new(),
            stable_cap: i64::MAX,
            poisoned: false,
            aborted_file_len: 0,
        };
        load_aborted(&dir.join(ABORTED_FILE), &mut state)?;
        if writable {
            // Entries past the end belong to aborts that recovery will redo; a torn last
            // entry would misalign every later append.
            let end = state.end();
            let file_len = fs::metadata(dir.join(ABORTED_FILE)).map_or(0, |m| m.len());
            if state.aborted.iter().any(|a| a.last_offset >= end)
                || file_len != state.aborted_file_len
            {
                state.aborted.retain(|a| a.last_offset < end);
                rewrite_aborted(&dir.join(ABORTED_FILE), &mut state)?;
            }
        } else {
            state.stable_cap = state.end();
        }
        Ok(Partition {
            topic: topic.to_string(),
            id,
            dir,
            writable,
            index_interval,
            state: Mutex::new(state),
        })
    }

    fn label(&self) -> String {
        format!("{}-{}", self.topic, self.id)
    }

    fn check_writable(&self, st: &PartitionState, op: &'static str) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
                pid: None,
                op,
            });
        }
        if st.poisoned {
            return Err(Error::Poisoned {
                topic: self.topic.clone(),
                partition: self.id,
            });
        }
        Ok(())
    }

    /// Current offsets.
    pub(crate) fn offsets(&self) -> PartitionOffsets {
        self.state.lock().offsets()
    }

    /// Appends records as one batch (transactional when `producer` is set); returns the first
    /// and last offsets. Generic over [`Record`] and [`RecordRef`] so both share one encode
    /// loop without converting the slice.
    ///
    /// [`Record`]: crate::Record
    /// [`RecordRef`]: crate::RecordRef
    pub(crate) fn append<R: AsRecordRef>(
        &self,
        records: &[R],
        producer: Option<ProducerStamp>,
        acks: Acks,
    ) -> Result<(i64, i64)> {
        let mut st = self.state.lock();
        self.check_writable(&st, "append")?;
        self.check_open_transaction(&st, producer)?;
        let now = now_ms();
        let base = st.end();
        let mut enc = BatchEncoder::new(base, producer, false);
        enc.reserve(size_hint(records));
        for (i, r) in records.iter().enumerate() {
            enc.push_record(base + i as i64, &r.as_record_ref(), now);
        }
        if enc.is_empty() {
            return Ok((base, base - 1));
        }
        let bytes = enc.finish();
        self.write_batch(&mut st, bytes, acks, now)
    }

    /// A transactional batch must belong to a transaction open here: after a fence or an
    /// abort marker it would land outside every known range and look committed.
    fn check_open_transaction(
        &self,
        st: &PartitionState,
        producer: Option<ProducerStamp>,
    ) -> Result<()> {
        match producer {
            Some(stamp) if !st.ongoing.contains_key(&stamp.producer_id) => {
                Err(Error::InvalidTxnState {
                    transactional_id: format!("producer {}", stamp.producer_id),
                    reason: format!(
                        "no open transaction on {}-{} (ended or fenced)",
                        self.topic, self.id
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Appends a batch encoded beforehand (the producer's, filled as records were sent; a
    /// [`BatchBuilder`](crate::BatchBuilder)'s); it is moved to start at the end offset,
    /// and stamped `producer`'s when that is a transactional producer. Returns the first
    /// and last offsets.
    pub(crate) fn append_encoded(
        &self,
        mut enc: BatchEncoder,
        producer: Option<ProducerStamp>,
        acks: Acks,
    ) -> Result<(i64, i64)> {
        let mut st = self.state.lock();
        self.check_writable(&st, "append")?;
        self.check_open_transaction(&st, producer)?;
        if let Some(stamp) = producer {
            enc.set_producer(stamp);
        }
        let base = st.end();
        if enc.is_empty() {
            return Ok((base, base - 1));
        }
        enc.set_base_offset(base);
        let bytes = enc.finish();
        self.write_batch(&mut st, bytes, acks, now_ms())
    }

    /// Appends an already-encoded batch (its offsets must start at the end offset).
    fn write_batch(
        &self,
        st: &mut PartitionState,
        bytes: Vec<u8>,
        acks: Acks,
        now: i64,
    ) -> Result<(i64, i64)> {
        let batch::Parsed::Header(header) = batch::parse_header(&bytes) else {
            return Err(Error::Corrupt {
                path: self.dir.clone(),
                position: 0,
                reason: "encoder produced an invalid batch".into(),
            });
        };
        if bytes.len() as u64 > st.config.segment_bytes.max(1 << 20) {
            return Err(Error::RecordTooLarge {
                topic: self.topic.clone(),
                partition: self.id,
                size: bytes.len(),
                max: st.config.segment_bytes,
            });
        }
        self.maybe_roll(st, bytes.len() as u64, now)?;
        let sync = acks == Acks::Synced;
        let Some(active) = st.segments.last_mut() else {
            return Err(Error::Closed);
        };
        if let Err(e) = active.append(&bytes, &header, sync) {
            st.poisoned = true;
            return Err(e);
        }
        Ok((header.base_offset, header.last_offset()))
    }

    fn maybe_roll(&self, st: &mut PartitionState, incoming: u64, now: i64) -> Result<()> {
        let Some(active) = st.segments.last() else {
            return Ok(());
        };
        let full = active.size > 0 && active.size + incoming > st.config.segment_bytes;
        let old = active.size > 0 && now - active.created_ms >= st.config.segment_ms;
        let offset_overflow = active.next_offset - active.base_offset > i64::from(u32::MAX) / 2;
        if full || old || offset_overflow {
            self.roll(st, now)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the end offset.
    pub(crate) fn roll(&self, st: &mut PartitionState, now: i64) -> Result<()> {
        let base = st.end();
        if let Some(active) = st.segments.last_mut() {
            active.seal()?;
        }
        st.segments
            .push(Segment::create(&self.dir, base, now, self.index_interval)?);
        segment::sync_dir(&self.dir)
    }

    /// Registers `producer_id` as having an open transaction here; returns its first offset.
    pub(crate) fn begin_txn(&self, producer_id: i64) -> i64 {
        let mut st = self.state.lock();
        let end = st.end();
        *st.ongoing.entry(producer_id).or_insert(end)
    }

    /// Sets an open transaction's first offset (recovery, read-only replay).
    pub(crate) fn set_ongoing(&self, producer_id: i64, first_offset: Option<i64>) {
        let mut st = self.state.lock();
        match first_offset {
            Some(f) => {
                st.ongoing.insert(producer_id, f);
            }
            None => {
                st.ongoing.remove(&producer_id);
            }
        }
    }

    /// Writes the marker ending `producer`'s transaction here. An abort first records the
    /// aborted range so readers can skip it.
    pub(crate) fn end_txn(
        &self,
        producer: ProducerStamp,
        marker: Marker,
        acks: Acks,
    ) -> Result<i64> {
        let mut st = self.state.lock();
        self.check_writable(&st, "write transaction marker")?;
        let now = now_ms();
        let offset = st.end();
        if marker == Marker::Abort {
            let first = st
                .ongoing
                .get(&producer.producer_id)
                .copied()
                .unwrap_or(offset);
            let entry = AbortedTxn {
                producer_id: producer.producer_id,
                first_offset: first,
                last_offset: offset,
            };
            self.append_aborted(&mut st, entry, acks == Acks::Synced)?;
        }
        let bytes = batch::marker_batch(offset, now, producer, marker);
        self.write_batch(&mut st, bytes, acks, now)?;
        st.ongoing.remove(&producer.producer_id);
        Ok(offset)
    }

    fn aborted_path(&self) -> PathBuf {
        self.dir.join(ABORTED_FILE)
    }

    fn append_aborted(&self, st: &mut PartitionState, a: AbortedTxn, sync: bool) -> Result<()> {
        let path = self.aborted_path();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("open aborted index", &path, e))?;
        f.write_all(&encode_aborted(&a))
            .map_err(|e| Error::io("append aborted index", &path, e))?;
        if sync {
            f.sync_data()
                .map_err(|e| Error::io("fsync aborted index", &path, e))?;
        }
        st.aborted_file_len += 24;
        st.aborted.push(a);
        Ok(())
    }

    /// Read-only openers: picks up what the owner wrote since the last look. Returns the new
    /// end offset; stability is capped at it until the caller has refreshed transaction state.
    pub(crate) fn refresh(&self) -> Result<i64> {
        let mut st = self.state.lock();
        if self.writable {
            return Ok(st.end());
        }
        let mut bases = list_segments(&self.dir)?;
        bases.sort_unstable();
        // Segments deleted by retention or compaction swaps: reload them all.
        let known: Vec<i64> = st.segments.iter().map(|s| s.base_offset).collect();
        let prefix_ok = known.iter().all(|b| bases.contains(b));
        if !prefix_ok || bases.len() < known.len() {
            st.segments.clear();
        }
        // Refresh the active segment, then open newer ones.
        if let Some(last) = st.segments.last_mut() {
            last.refresh(|_, _| Ok(()))?;
        }
        for (i, &base) in bases.iter().enumerate() {
            if st.segments.iter().any(|s| s.base_offset == base) {
                continue;
            }
            let active = i + 1 == bases.len();
            let seg = match Segment::open(
                &self.dir,
                base,
                active,
                true,
                false,
                self.index_interval,
                |_, _| Ok(()),
            ) {
                Ok(seg) => seg,
                // A segment the cleaner replaced between listing and opening: next time.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    continue
                }
                Err(e) => return Err(e),
            };
            st.segments.push(seg);
        }
        st.segments.sort_by_key(|s| s.base_offset);
        let first_base = st.segments.first().map_or(0, |s| s.base_offset);
        st.log_start = read_log_start(&self.dir)?
            .unwrap_or(first_base)
            .max(first_base);
        let end = st.end();
        Ok(end)
    }

    /// Read-only openers: after transaction state is refreshed, lets stability reach `cap`
    /// and reloads the aborted index.
    pub(crate) fn finish_refresh(&self, cap: i64) -> Result<()> {
        let mut st = self.state.lock();
        st.stable_cap = cap;
        load_aborted(&self.aborted_path(), &mut st)
    }

    /// Reads records from `offset`, up to about `max_bytes`, as `isolation` allows.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<Vec<StoredRecord>> {
        Ok(self.read_from(offset, max_bytes, isolation)?.records)
    }

    /// Reads like [`Partition::read`], also returning where the next read starts (past
    /// markers and aborted batches that yield no records).
    pub(crate) fn read_from(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult> {
        self.read_records(offset, max_bytes, usize::MAX, isolation)
    }

    /// Reads like [`Partition::read_from`], returning at most `max_records` records (a
    /// consumer's `max.poll.records` left): a batch is decoded only as far as they go, and
    /// the next read starts after the last record returned. Without the limit a poll
    /// would decode whole batches and drop what it does not return.
    pub(crate) fn read_records(
        &self,
        offset: i64,
        max_bytes: usize,
        max_records: usize,
        isolation: Isolation,
    ) -> Result<ReadResult> {
        let mut records = Vec::new();
        let end = self.read_into(offset, max_bytes, max_records, isolation, &mut records)?;
        Ok(ReadResult {
            records,
            next_offset: end.next_offset,
        })
    }

    /// [`read_records`](Partition::read_records) into `out` (materialized records or an
    /// index over the batches); returns where the read ended.
    pub(crate) fn read_into<O: ReadOut>(
        &self,
        offset: i64,
        max_bytes: usize,
        max_records: usize,
        isolation: Isolation,
        out: &mut O,
    ) -> Result<ReadEnd> {
        let st = self.state.lock();
        let end = st.end();
        if offset < st.log_start || offset > end {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.id,
                offset,
                start: st.log_start,
                end,
            });
        }
        let limit = match isolation {
            Isolation::ReadCommitted => st.last_stable(),
            Isolation::ReadUncommitted => end,
        };
        let mut next_offset = offset;
        if offset >= limit || max_records == 0 {
            return Ok(ReadEnd {
                next_offset,
                readable_end: limit,
            });
        }
        let first = st
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let mut budget = max_bytes;
        let mut full = false;
        for seg in &st.segments[first..] {
            if seg.base_offset >= limit || full {
                break;
            }
            let batches = seg.read(offset, limit, budget)?;
            // A segment read that ended before the segment's end (its budget ran out)
            // must not be followed by a read of the next segment: that would skip the rest.
            let stopped_early = batches
                .last()
                .is_some_and(|(h, _)| h.last_offset() + 1 < seg.next_offset);
            // One allocation for all the records, not one growth step per batch.
            // A record takes at least 7 bytes: a damaged count must not size a huge
            // allocation.
            let records: usize = batches
                .iter()
                .map(|(h, b)| (h.record_count as usize).min(b.len() / 7))
                .sum();
            let wanted = if O::WHOLE_BATCHES {
                records
            } else {
                records.min(max_records.saturating_sub(out.count()))
            };
            out.reserve_records(wanted);
            for (h, bytes) in batches {
                budget = budget.saturating_sub(bytes.len());
                if h.base_offset >= limit {
                    break;
                }
                next_offset = next_offset.max(h.last_offset() + 1);
                if h.is_control() {
                    continue;
                }
                if isolation == Isolation::ReadCommitted
                    && h.is_transactional()
                    && is_aborted(&st.aborted, &h)
                {
                    continue;
                }
                // Decoded in place, from the first offset wanted; only a batch straddling
                // the stable offset needs filtering afterwards.
                let first = out.count();
                let lo = offset.max(st.log_start);
                // An index keeps the whole batch (it is read and checked whole anyway): cut
                // at the limit, the next read would read and check it again. Not a batch of
                // very many records, whose index would be a large allocation at once.
                let whole = O::WHOLE_BATCHES && h.record_count as usize <= WHOLE_BATCH_RECORDS;
                let max = if whole {
                    usize::MAX
                } else {
                    max_records - first
                };
                out.add_batch(&bytes, &h, lo, max)
                    .map_err(|reason| Error::Corrupt {
                        path: seg.path.clone(),
                        position: 0,
                        reason,
                    })?;
                if h.last_offset() >= limit {
                    out.keep_below(first, limit);
                }
                if out.count() >= max_records {
                    // Stopped inside (or at the end of) this batch: continue after the
                    // last record returned, not after the batch.
                    if let Some(last) = out.last_read() {
                        next_offset = last + 1;
                    }
                    full = true;
                    break;
                }
            }
            if budget == 0 || stopped_early {
                break;
            }
        }
        Ok(ReadEnd {
            next_offset: next_offset.min(limit),
            readable_end: limit,
        })
    }

    /// The first offset whose timestamp is ≥ `ts`, or `None` when every record is older.
    pub(crate) fn offset_for_time(&self, ts: i64) -> Result<Option<i64>> {
        let st = self.state.lock();
        for seg in &st.segments {
            if let Some(o) = seg.offset_for_time(ts)? {
                if o >= st.log_start {
                    return Ok(Some(o));
                }
                // The segment's hit is below the log start: look again from there.
                for r in self.read_unlocked(&st, st.log_start)? {
                    if r.timestamp >= ts {
                        return Ok(Some(r.offset));
                    }
                }
            }
        }
        Ok(None)
    }

    fn read_unlocked(&self, st: &PartitionState, from: i64) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        for seg in st.segments.iter().filter(|s| s.next_offset > from) {
            for (h, bytes) in seg.read(from, i64::MAX, usize::MAX)? {
                if h.is_control() {
                    continue;
                }
                let recs = batch::decode_records(&bytes, &h).map_err(|reason| Error::Corrupt {
                    path: seg.path.clone(),
                    position: 0,
                    reason,
                })?;
                out.extend(recs.into_iter().filter(|r| r.offset >= from));
            }
            if !out.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    /// Advances the log start offset to `below` and deletes segments wholly beneath it.
    pub(crate) fn delete_records(&self, below: i64) -> Result<i64> {
        let mut st = self.state.lock();
        self.check_writable(&st, "delete records")?;
        let end = st.end();
        if below < 0 || below > end {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.id,
                offset: below,
                start: st.log_start,
                end,
            });
        }
        if below > st.log_start {
            self.set_log_start(&mut st, below)?;
            self.drop_segments_below_start(&mut st)?;
        }
        Ok(st.log_start)
    }

    pub(crate) fn set_log_start(&self, st: &mut PartitionState, start: i64) -> Result<()> {
        st.log_start = start;
        segment::write_file_atomic(&self.dir.join(LOG_START_FILE), start.to_string().as_bytes())?;
        let cut = st.log_start;
        st.aborted.retain(|a| a.last_offset >= cut);
        Ok(())
    }

    /// Deletes sealed segments whose every offset is below the log start.
    pub(crate) fn drop_segments_below_start(&self, st: &mut PartitionState) -> Result<()> {
        while st.segments.len() > 1 && st.segments[0].next_offset <= st.log_start {
            let seg = st.segments.remove(0);
            tracing::debug!(partition = %self.label(), base = seg.base_offset, "deleting segment below log start");
            seg.delete()?;
        }
        if st.segments.len() == 1
            && st.segments[0].next_offset <= st.log_start
            && st.segments[0].size > 0
        {
            // Everything is deleted: start a fresh active segment at the log start.
            let now = now_ms();
            let base = st.log_start;
            let old = std::mem::replace(
                &mut st.segments[0],
                Segment::create(&self.dir, base, now, self.index_interval)?,
            );
            if old.base_offset != base {
                old.delete()?;
            }
        }
        segment::sync_dir(&self.dir)
    }

    /// Deletes whole sealed segments past `retention.ms` / `retention.bytes`.
    pub(crate) fn enforce_retention(&self, now: i64) -> Result<usize> {
        let mut st = self.state.lock();
        if !self.writable || !st.config.cleanup_policy.deletes() {
            return Ok(0);
        }
        // Roll an old active segment so its data can age out.
        if let Some(active) = st.segments.last() {
            if active.size > 0 && now - active.created_ms >= st.config.segment_ms {
                self.roll(&mut st, now)?;
            }
        }
        let mut total = st.size_bytes();
        let mut deleted = 0;
        let stable = st.last_stable();
        while st.segments.len() > 1 {
            let seg = &st.segments[0];
            let expired = st
                .config
                .retention_ms
                .is_some_and(|ms| seg.max_timestamp < now - ms);
            let over = st
                .config
                .retention_bytes
                .is_some_and(|max| total - seg.size >= max);
            // Never delete what an open transaction still needs.
            if !(expired || over) || seg.next_offset > stable {
                break;
            }
            let seg = st.segments.remove(0);
            total -= seg.size;
            let next_start = st.segments[0].base_offset;
            seg.delete()?;
            deleted += 1;
            if next_start > st.log_start {
                self.set_log_start(&mut st, next_start)?;
            }
        }
        if deleted > 0 {
            tracing::info!(partition = %self.label(), segments = deleted, "retention deleted segments");
            segment::sync_dir(&self.dir)?;
        }
        Ok(deleted)
    }

    /// Replaces the partition's config (alter).
    pub(crate) fn set_config(&self, config: TopicConfig) {
        self.state.lock().config = config;
    }

    /// fsyncs the active segment and seals nothing (used at close).
    pub(crate) fn flush(&self) -> Result<()> {
        let st = self.state.lock();
        if let Some(a) = st.segments.last() {
            if self.writable {
                a.sync()?;
            }
        }
        Ok(())
    }
}

/// About the encoded size of `records`, to size a batch's buffer once (a record's
/// overhead is ≤ 20 bytes unless it has headers). Every record is counted: an estimate
/// from a sample could ask for far more memory than the batch needs.
fn size_hint<R: AsRecordRef>(records: &[R]) -> usize {
    records
        .iter()
        .map(|r| {
            let r = r.as_record_ref();
            let mut n = 20 + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len);
            if !r.headers.is_empty() {
                n += r
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 10)
                    .sum::<usize>();
            }
            n
        })
        .sum()
}

fn rewrite_aborted(path: &Path, st: &mut PartitionState) -> Result<()> {
    let bytes: Vec<u8> = st.aborted.iter().flat_map(encode_aborted).collect();
    segment::write_file_atomic(path, &bytes)?;
    st.aborted_file_len = bytes.len() as u64;
    Ok(())
}

fn load_aborted(path: &Path, st: &mut PartitionState) -> Result<()> {
    let Some(bytes) = segment::read_optional(path)? else {
        return Ok(());
    };
    let whole = bytes.len() - bytes.len() % 24;
    if (whole as u64) == st.aborted_file_len {
        return Ok(());
    }
    let mut v: Vec<AbortedTxn> = bytes[..whole]
        .chunks_exact(24)
        .map(|c| {
            let rd = |at: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&c[at..at + 8]);
                i64::from_be_bytes(a)
            };
            AbortedTxn {
                producer_id: rd(0),
                first_offset: rd(8),
                last_offset: rd(16),
            }
        })
        .collect();
    v.sort_by_key(|a| a.last_offset);
    v.dedup();
    st.aborted = v;
    st.aborted_file_len = whole as u64;
    Ok(())
}

/// Whether a transactional batch belongs to an aborted transaction.
pub(crate) fn is_aborted(aborted: &[AbortedTxn], h: &BatchHeader) -> bool {
    // Aborted ranges ending at or after this batch; the list is short in practice.
    let i = aborted.partition_point(|a| a.last_offset < h.base_offset);
    aborted[i..]
        .iter()
        .any(|a| a.producer_id == h.producer_id && a.first_offset <= h.base_offset)
}

fn encode_aborted(a: &AbortedTxn) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&a.producer_id.to_be_bytes());
    v.extend_from_slice(&a.first_offset.to_be_bytes());
    v.extend_from_slice(&a.last_offset.to_be_bytes());
    v
}

/// Deletes `*.log.cleaned` files an interrupted compaction left (the original segment is
/// still in place, so they hold nothing that is not also there).
fn remove_cleaner_leftovers(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list partition dir", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list partition dir", dir, e))?;
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(".log.cleaned")
        {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing a leftover of an interrupted compaction");
            fs::remove_file(&path)
                .map_err(|e| Error::io("remove compaction leftover", &path, e))?;
        }
    }
    Ok(())
}

fn list_segments(dir: &Path) -> Result<Vec<i64>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list partition dir", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list partition dir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<i64>() {
                out.push(base);
            }
        }
    }
    Ok(out)
}

fn read_log_start(dir: &Path) -> Result<Option<i64>> {
    let path = dir.join(LOG_START_FILE);
    Ok(segment::read_optional(&path)?.and_then(|b| String::from_utf8(b).ok()?.trim().parse().ok()))
}
