//! Raw input records as a task buffers them: in the caller's own container, read in place.
//!
//! The runtime hands a task the records it fetched as the log keeps them (batches and where
//! each record's fields are) and the task decodes each straight from there: no record is
//! materialized, copied into a queue and moved again. The test driver hands owned
//! [`InputRecord`]s, which are a container too.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;

use crate::record::InputRecord;

/// A raw input record, its fields borrowed from the container that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// Key bytes (`None`: no key).
    pub key: Option<&'a [u8]>,
    /// Value bytes (`None`: a tombstone).
    pub value: Option<&'a [u8]>,
    /// The record's timestamp.
    pub timestamp: i64,
    /// Headers.
    pub headers: &'a [(String, Bytes)],
    /// The record's offset in its partition.
    pub offset: i64,
}

impl RawRecord<'_> {
    /// The record, owned (its fields copied): what a dead letter carries.
    pub fn to_input(&self) -> InputRecord {
        InputRecord {
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            timestamp: self.timestamp,
            headers: self.headers.to_vec(),
            offset: self.offset,
        }
    }
}

impl InputRecord {
    /// The record, borrowed.
    pub fn as_raw(&self) -> RawRecord<'_> {
        RawRecord {
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            timestamp: self.timestamp,
            headers: &self.headers,
            offset: self.offset,
        }
    }
}

/// Raw records of one input partition, in offset order, in a container of the caller's
/// ([`Task::add_raw_records`](crate::Task::add_raw_records)).
pub trait RawRecords: Send {
    /// How many records.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Record `i`.
    fn get(&self, i: usize) -> Option<RawRecord<'_>>;
}

impl RawRecords for Vec<InputRecord> {
    fn len(&self) -> usize {
        <[InputRecord]>::len(self)
    }
    fn get(&self, i: usize) -> Option<RawRecord<'_>> {
        <[InputRecord]>::get(self, i).map(InputRecord::as_raw)
    }
}

/// One container, the next record to take from it and its length.
struct Chunk {
    records: Box<dyn RawRecords>,
    next: usize,
    len: usize,
}

/// The raw records of one input partition not processed yet: containers in the order they
/// were added.
#[derive(Default)]
pub(crate) struct RawQueue {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl fmt::Debug for RawQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawQueue").field("len", &self.len).finish()
    }
}

impl RawQueue {
    /// Records not processed yet.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a container's records after the others.
    pub(crate) fn push(&mut self, records: Box<dyn RawRecords>) {
        let n = records.len();
        if n > 0 {
            self.len += n;
            self.chunks.push_back(Chunk {
                records,
                next: 0,
                len: n,
            });
        }
    }

    /// The first record not processed yet.
    pub(crate) fn front(&self) -> Option<RawRecord<'_>> {
        let c = self.chunks.front()?;
        c.records.get(c.next)
    }

    /// Moves past the first record.
    pub(crate) fn advance(&mut self) {
        let Some(c) = self.chunks.front_mut() else {
            return;
        };
        c.next += 1;
        self.len -= 1;
        if c.next >= c.len {
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(offset: i64) -> InputRecord {
        InputRecord {
            key: Some(Bytes::from_static(b"k")),
            value: None,
            timestamp: offset * 10,
            headers: vec![("h".into(), Bytes::from_static(b"v"))],
            offset,
        }
    }

    #[test]
    fn a_queue_reads_its_containers_in_order() {
        let mut q = RawQueue::default();
        q.push(Box::new(vec![input(0), input(1)]));
        q.push(Box::new(Vec::<InputRecord>::new()));
        q.push(Box::new(vec![input(2)]));
        assert_eq!(q.len(), 3);
        let mut seen = Vec::new();
        while let Some(r) = q.front() {
            seen.push(r.to_input());
            q.advance();
        }
        assert_eq!(seen, vec![input(0), input(1), input(2)]);
        assert_eq!(q.len(), 0);
        q.advance();
        assert_eq!(q.len(), 0);
    }
}
