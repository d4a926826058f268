//! Fetched records kept in the log's batches: the batches' bytes and, per record, where its
//! fields sit in them.
//!
//! A reader that processes records one by one and drops them (a stream thread) has no use
//! for a [`StoredRecord`] each: two `Bytes` handles (a reference count taken and dropped
//! per field) and 104 bytes written, moved and read again. [`RecordBatches`] notes a
//! record's offset, timestamp and field positions instead, and lends the fields as slices
//! of the batch ([`RecordView`]).

use std::sync::Mutex;

use bytes::Bytes;

use crate::batch::{self, BatchHeader};
use crate::record::StoredRecord;

/// A key or value: `start..end` of its batch, or null. Batches are far smaller than
/// 4 GiB (a batch larger is refused by [`RecordBatches`]'s reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NULL: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };

    fn of(range: Option<(usize, usize)>) -> Span {
        range.map_or(Span::NULL, |(start, end)| Span {
            start: start as u32,
            end: end as u32,
        })
    }

    fn len(self) -> usize {
        if self == Span::NULL {
            0
        } else {
            self.end.saturating_sub(self.start) as usize
        }
    }

    #[inline]
    fn get(self, bytes: &[u8]) -> Option<&[u8]> {
        if self == Span::NULL {
            None
        } else {
            bytes.get(self.start as usize..self.end as usize)
        }
    }
}

/// Where one record is: 32 bytes, half a cache line. The index is written on the thread
/// that fetches and read on the one that processes, a line per record when it took 64
/// bytes (most of the fetching thread's time in indexing went to writing it).
#[derive(Debug, Clone)]
struct Slot {
    timestamp: i64,
    /// Its offset less its batch's base offset (a record's offset delta, an `i32` in the
    /// format).
    offset_delta: i32,
    /// Its batch (an index into `batches`), with [`HAS_HEADERS`] set when it has headers.
    batch: u32,
    key: Span,
    value: Span,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 32);

impl Slot {
    /// What a fetch's byte limits count for the record (as for a materialized one).
    fn size(&self) -> usize {
        16 + self.key.len() + self.value.len()
    }
}

/// The bit of [`Slot::batch`] that says the record has headers (kept apart, in
/// `headers`, by slot index: most records have none).
const HAS_HEADERS: u32 = 1 << 31;

/// A fetched batch: its bytes and base offset.
#[derive(Debug, Clone)]
struct Batch {
    bytes: Bytes,
    base_offset: i64,
}

#[derive(Debug, Clone)]
enum Backing {
    /// The log's batches and where each record is.
    Batches {
        batches: Vec<Batch>,
        slots: Vec<Slot>,
        /// The headers of the records that have any, by slot index (ascending).
        headers: Vec<(usize, Vec<(String, Bytes)>)>,
        /// The slots' [`Slot::size`], summed as they are added and dropped.
        size: usize,
    },
    /// Records already materialized (what a broker without batches returns).
    Records(Vec<StoredRecord>),
}

/// Records of one partition, in offset order, as the batches that hold them.
#[derive(Debug, Clone)]
pub struct RecordBatches {
    backing: Backing,
}

impl Default for RecordBatches {
    fn default() -> Self {
        RecordBatches {
            backing: Backing::Batches {
                batches: Vec::new(),
                slots: lock_pool().pop().unwrap_or_default(),
                headers: Vec::new(),
                size: 0,
            },
        }
    }
}

/// Slot vectors kept for reuse at most.
const SLOT_POOL_LEN: usize = 8;
/// The largest slot vector kept for reuse (records).
const SLOT_POOL_MAX: usize = 1 << 17;

/// Slot vectors of dropped indexes, for the next fetches: an index of a whole batch is a
/// large allocation, which the allocator maps and unmaps each time (page faults on every
/// fetch) when it is not reused, and a reused one is still in the CPU's caches. One pool
/// for the process, not one per thread: indexes are built on the thread that fetches and
/// dropped on the one that processed them.
static SLOT_POOL: Mutex<Vec<Vec<Slot>>> = Mutex::new(Vec::new());

/// The pool, locked (once per fetch and per dropped index). A panic while it was held
/// cannot have left it inconsistent: it is only pushed to and popped from.
fn lock_pool() -> std::sync::MutexGuard<'static, Vec<Vec<Slot>>> {
    SLOT_POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for RecordBatches {
    fn drop(&mut self) {
        if let Backing::Batches { slots, .. } = &mut self.backing {
            if slots.capacity() > 0 && slots.capacity() <= SLOT_POOL_MAX {
                let mut slots = std::mem::take(slots);
                slots.clear();
                let mut pool = lock_pool();
                if pool.len() < SLOT_POOL_LEN {
                    pool.push(slots);
                }
            }
        }
    }
}

impl From<Vec<StoredRecord>> for RecordBatches {
    fn from(records: Vec<StoredRecord>) -> Self {
        RecordBatches {
            backing: Backing::Records(records),
        }
    }
}

/// A record of [`RecordBatches`], its fields borrowed from the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp (ms since the epoch).
    pub timestamp: i64,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: &'a [(String, Bytes)],
}

impl RecordView<'_> {
    /// The record, owned (its fields copied).
    pub fn to_stored(&self) -> StoredRecord {
        StoredRecord {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            headers: self.headers.to_vec(),
        }
    }
}

impl RecordBatches {
    /// How many records.
    pub fn len(&self) -> usize {
        match &self.backing {
            Backing::Batches { slots, .. } => slots.len(),
            Backing::Records(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<RecordView<'_>> {
        match &self.backing {
            Backing::Batches {
                batches,
                slots,
                headers,
                ..
            } => {
                let s = slots.get(i)?;
                let batch = batches.get((s.batch & !HAS_HEADERS) as usize)?;
                let headers = if s.batch & HAS_HEADERS == 0 {
                    &[]
                } else {
                    headers
                        .binary_search_by_key(&i, |(at, _)| *at)
                        .map_or(&[][..], |h| headers[h].1.as_slice())
                };
                Some(RecordView {
                    offset: batch.base_offset + i64::from(s.offset_delta),
                    timestamp: s.timestamp,
                    key: s.key.get(&batch.bytes),
                    value: s.value.get(&batch.bytes),
                    headers,
                })
            }
            Backing::Records(r) => r.get(i).map(|r| RecordView {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &r.headers,
            }),
        }
    }

    /// The records in offset order.
    pub fn iter(&self) -> impl Iterator<Item = RecordView<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The first record's offset.
    pub fn first_offset(&self) -> Option<i64> {
        self.get(0).map(|r| r.offset)
    }

    /// The last record's offset.
    pub fn last_offset(&self) -> Option<i64> {
        self.len()
            .checked_sub(1)
            .and_then(|i| self.get(i))
            .map(|r| r.offset)
    }

    /// Drops the records at `offset` and after.
    pub fn truncate_at(&mut self, offset: i64) {
        self.keep_first(0, offset);
    }

    /// Keeps the first `first` records and, of the rest, those below `limit`.
    fn keep_first(&mut self, first: usize, limit: i64) {
        let kept = first
            + match &self.backing {
                Backing::Batches { batches, slots, .. } => slots[first..].partition_point(|s| {
                    let base = batches[(s.batch & !HAS_HEADERS) as usize].base_offset;
                    base + i64::from(s.offset_delta) < limit
                }),
                Backing::Records(r) => r[first..].partition_point(|r| r.offset < limit),
            };
        match &mut self.backing {
            Backing::Batches {
                slots,
                headers,
                size,
                ..
            } => {
                *size -= slots
                    .get(kept..)
                    .map_or(0, |dropped| dropped.iter().map(Slot::size).sum::<usize>());
                slots.truncate(kept);
                headers.truncate(headers.partition_point(|(at, _)| *at < kept));
            }
            Backing::Records(r) => r.truncate(kept),
        }
    }

    /// About how many bytes the records take (what a fetch's byte limits count).
    pub(crate) fn size(&self) -> usize {
        match &self.backing {
            Backing::Batches { size, .. } => *size,
            Backing::Records(r) => ReadOut::size(r),
        }
    }

    /// The records, materialized.
    pub fn into_records(mut self) -> Vec<StoredRecord> {
        match &mut self.backing {
            Backing::Records(r) => std::mem::take(r),
            Backing::Batches { .. } => self.iter().map(|r| r.to_stored()).collect(),
        }
    }
}

/// Where a partition read puts the records it decodes: materialized records, or an index
/// over the batches.
pub(crate) trait ReadOut {
    /// Whether a read takes every record of a batch it starts (past the read's record
    /// limit): an index costs nothing per record kept, while a batch cut at the limit is
    /// read from the file and checked again by the next read.
    const WHOLE_BATCHES: bool;
    fn count(&self) -> usize;
    fn reserve_records(&mut self, n: usize);
    /// Adds the records of `batch` whose offset is ≥ `from`, at most `max`.
    fn add_batch(
        &mut self,
        batch: &Bytes,
        header: &BatchHeader,
        from: i64,
        max: usize,
    ) -> Result<usize, String>;
    /// Keeps the first `first` records and, of the rest, those below `limit`.
    fn keep_below(&mut self, first: usize, limit: i64);
    /// The last record's offset.
    fn last_read(&self) -> Option<i64>;
    /// About how many bytes the records take (what a fetch's byte limits count).
    fn size(&self) -> usize;
}

impl ReadOut for Vec<StoredRecord> {
    const WHOLE_BATCHES: bool = false;
    fn count(&self) -> usize {
        self.len()
    }
    fn reserve_records(&mut self, n: usize) {
        self.reserve(n);
    }
    fn add_batch(
        &mut self,
        batch: &Bytes,
        header: &BatchHeader,
        from: i64,
        max: usize,
    ) -> Result<usize, String> {
        batch::decode_records_into(batch, header, from, max, self)
    }
    fn keep_below(&mut self, first: usize, limit: i64) {
        let kept = first + self[first..].partition_point(|r| r.offset < limit);
        self.truncate(kept);
    }
    fn last_read(&self) -> Option<i64> {
        <[StoredRecord]>::last(self).map(|r| r.offset)
    }
    fn size(&self) -> usize {
        self.iter()
            .map(|r| {
                16 + r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len())
            })
            .sum()
    }
}

impl ReadOut for RecordBatches {
    const WHOLE_BATCHES: bool = true;
    fn count(&self) -> usize {
        self.len()
    }
    fn reserve_records(&mut self, n: usize) {
        if let Backing::Batches { slots, .. } = &mut self.backing {
            slots.reserve(n);
        }
    }
    fn add_batch(
        &mut self,
        batch: &Bytes,
        header: &BatchHeader,
        from: i64,
        max: usize,
    ) -> Result<usize, String> {
        let Backing::Batches {
            batches,
            slots,
            headers,
            size,
        } = &mut self.backing
        else {
            let mut records = Vec::new();
            let n = batch::decode_records_into(batch, header, from, max, &mut records)?;
            if let Backing::Records(r) = &mut self.backing {
                r.extend(records);
            }
            return Ok(n);
        };
        if batch.len() >= u32::MAX as usize {
            return Err(format!(
                "a batch of {} bytes is too large to index",
                batch.len()
            ));
        }
        let index = batches.len() as u32;
        if index >= HAS_HEADERS {
            return Err("too many batches in one fetch to index".to_string());
        }
        let before = slots.len();
        let base_offset = header.base_offset;
        let added = batch::walk_records(batch, header, from, max, |r| {
            let mut tagged = index;
            if let Some(h) = r.headers {
                headers.push((slots.len(), *h));
                tagged |= HAS_HEADERS;
            }
            let slot = Slot {
                timestamp: r.timestamp,
                // The format's delta is an i32, so this is exact.
                offset_delta: (r.offset - base_offset) as i32,
                batch: tagged,
                key: Span::of(r.key),
                value: Span::of(r.value),
            };
            *size += slot.size();
            slots.push(slot);
        });
        if slots.len() > before {
            batches.push(Batch {
                bytes: batch.clone(),
                base_offset,
            });
        }
        added
    }
    fn keep_below(&mut self, first: usize, limit: i64) {
        self.keep_first(first, limit);
    }
    fn last_read(&self) -> Option<i64> {
        self.last_offset()
    }
    fn size(&self) -> usize {
        RecordBatches::size(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{parse_header, BatchEncoder, Parsed};

    fn batch(base: i64) -> (Bytes, BatchHeader) {
        let mut enc = BatchEncoder::new(base, None, false);
        enc.push(base, 10, Some(b"k0"), Some(b"v0"), &[]);
        enc.push(
            base + 1,
            11,
            None,
            Some(b"v1"),
            &[("h".into(), Bytes::from_static(b"x"))],
        );
        enc.push(base + 3, 12, Some(b"k3"), None, &[]);
        let bytes = Bytes::from(enc.finish());
        let Parsed::Header(h) = parse_header(&bytes) else {
            panic!("header")
        };
        (bytes, h)
    }

    #[test]
    fn batches_lend_the_same_records_the_decoder_materializes() {
        let (b1, h1) = batch(0);
        let (b2, h2) = batch(10);
        let mut index = RecordBatches::default();
        let mut records = Vec::new();
        for (b, h) in [(&b1, &h1), (&b2, &h2)] {
            index.add_batch(b, h, 1, usize::MAX).unwrap();
            records.add_batch(b, h, 1, usize::MAX).unwrap();
        }
        assert_eq!(index.len(), 5);
        let viewed: Vec<StoredRecord> = index.iter().map(|r| r.to_stored()).collect();
        assert_eq!(viewed, records);
        assert_eq!(RecordBatches::from(records.clone()).into_records(), records);
        index.keep_below(2, 12);
        assert_eq!(index.last_offset(), Some(11));
        index.truncate_at(3);
        assert_eq!((index.len(), index.first_offset()), (1, Some(1)));
    }
}

#[cfg(test)]
mod model {
    //! The index against the decoder's materialized records, on random batches (gaps in
    //! offsets, null keys and values, headers on some records) and random cuts.
    use proptest::prelude::*;

    use super::*;
    use crate::batch::{parse_header, BatchEncoder, Parsed};

    type Rec = (u8, Option<Vec<u8>>, Option<Vec<u8>>, bool);

    fn record() -> impl Strategy<Value = Rec> {
        (
            1u8..4,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
            proptest::bool::weighted(0.3),
        )
    }

    /// Encodes the batches one after the other, each record `gap` offsets after the last.
    fn encode(batches: &[Vec<Rec>]) -> Vec<(Bytes, BatchHeader)> {
        let mut next = 100;
        batches
            .iter()
            .map(|records| {
                let mut enc = BatchEncoder::new(next, None, false);
                for (gap, key, value, headers) in records {
                    let h = if *headers {
                        vec![("h".to_string(), Bytes::from(format!("at-{next}")))]
                    } else {
                        Vec::new()
                    };
                    enc.push(next, next * 3, key.as_deref(), value.as_deref(), &h);
                    next += i64::from(*gap);
                }
                let bytes = Bytes::from(enc.finish());
                let Parsed::Header(h) = parse_header(&bytes) else {
                    panic!("header")
                };
                (bytes, h)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn the_index_lends_what_the_decoder_materializes(
            batches in proptest::collection::vec(proptest::collection::vec(record(), 1..8), 1..5),
            from in 95i64..140,
            cuts in proptest::collection::vec(proptest::option::of((0usize..30, 95i64..180)), 5),
            truncate in proptest::option::of(95i64..180),
        ) {
            let mut index = RecordBatches::default();
            let mut records: Vec<StoredRecord> = Vec::new();
            // A cut may follow any batch (later batches are then indexed after it).
            for ((bytes, header), cut) in encode(&batches).into_iter().zip(cuts) {
                let a = index.add_batch(&bytes, &header, from, usize::MAX).unwrap();
                let b = records.add_batch(&bytes, &header, from, usize::MAX).unwrap();
                prop_assert_eq!(a, b);
                if let Some((first, limit)) = cut {
                    let first = first.min(records.len());
                    index.keep_below(first, limit);
                    records.keep_below(first, limit);
                }
            }
            if let Some(offset) = truncate {
                index.truncate_at(offset);
                let keep = records.partition_point(|r| r.offset < offset);
                records.truncate(keep);
            }
            let viewed: Vec<StoredRecord> = index.iter().map(|r| r.to_stored()).collect();
            prop_assert_eq!(&viewed, &records);
            prop_assert_eq!(index.last_offset(), records.last().map(|r| r.offset));
            prop_assert_eq!(ReadOut::size(&index), ReadOut::size(&records));
        }
    }
}
