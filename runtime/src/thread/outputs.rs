//! The sender's batches: one per (topic, partition), filled from the tasks' outputs.
//!
//! A task's records are read in place from its output buffer ([`Outputs`]) and copied
//! into the batch of their partition, chosen right then (on the sender, off the stream
//! thread; see `sender`); the append encodes each batch
//! straight from its bytes. Topics are small ids (the thread's, mapped from each task's
//! once), the buffers keep their room from one commit to the next, so a record costs no
//! allocation here: no topic name, no key or value handle, no regrouping by name at the
//! append.
//!
//! Every record's bytes and slot go into one buffer each, in the order taken; a batch is
//! the list of its records' slots. The copy is then one sequential write, not one per
//! partition (keys spread records evenly over the partitions, so those were written in
//! lockstep), and a thread keeps two growing buffers rather than two per partition.

use std::collections::HashMap;

use bytes::Bytes;
use freshet_log::{Record, RecordRef};
use freshet_streams::{Headers, Output, TaskId};

/// A key or value in a batch's bytes: `start..end`, or null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    start: usize,
    end: usize,
}

impl Field {
    const NULL: Field = Field {
        start: usize::MAX,
        end: usize::MAX,
    };

    fn write(bytes: &mut Vec<u8>, field: Option<&[u8]>) -> Field {
        match field {
            None => Field::NULL,
            Some(b) => {
                let start = bytes.len();
                bytes.extend_from_slice(b);
                Field {
                    start,
                    end: bytes.len(),
                }
            }
        }
    }

    fn get(self, bytes: &[u8]) -> Option<&[u8]> {
        if self == Field::NULL {
            None
        } else {
            bytes.get(self.start..self.end)
        }
    }
}

/// One record of a batch.
#[derive(Debug)]
struct Slot {
    task: TaskId,
    key: Field,
    value: Field,
    timestamp: i64,
    headers: Headers,
}

/// The records waiting for one partition, in the order taken: indexes of their slots in
/// the [`OutputBatches`]' buffer.
#[derive(Debug, Default)]
pub(super) struct PartitionBatch {
    slots: Vec<usize>,
}

impl PartitionBatch {
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Every record waiting, of all batches, in the order taken.
#[derive(Debug, Default)]
struct Records {
    slots: Vec<Slot>,
    bytes: Vec<u8>,
}

impl Records {
    /// Adds a record; its slot's index.
    fn push(
        &mut self,
        task: TaskId,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: Headers,
    ) -> usize {
        let key = Field::write(&mut self.bytes, key);
        let value = Field::write(&mut self.bytes, value);
        self.slots.push(Slot {
            task,
            key,
            value,
            timestamp,
            headers,
        });
        self.slots.len() - 1
    }

    /// The slots of `batch`.
    fn of<'a, 'b>(&'a self, batch: &'b PartitionBatch) -> impl Iterator<Item = &'a Slot> + 'b
    where
        'a: 'b,
    {
        batch.slots.iter().filter_map(|&i| self.slots.get(i))
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.bytes.clear();
    }
}

/// One topic the thread writes.
#[derive(Debug)]
pub(super) struct TopicBatches {
    pub(super) name: String,
    /// A repartition topic of the app.
    pub(super) internal: bool,
    /// Its partition count when it was first written.
    count: u32,
    /// The next partition of a record with neither key nor partition (round robin).
    next: u32,
    /// By partition.
    pub(super) partitions: Vec<PartitionBatch>,
}

/// Every output waiting to be appended.
#[derive(Debug, Default)]
pub(super) struct OutputBatches {
    topics: Vec<TopicBatches>,
    by_name: HashMap<String, usize>,
    records: Records,
}

impl OutputBatches {
    /// The thread's id of topic `name`, with `count` partitions.
    pub(super) fn topic_id(&mut self, name: &str, count: u32, internal: bool) -> usize {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        self.topics.push(TopicBatches {
            name: name.to_string(),
            internal,
            count,
            next: 0,
            partitions: Vec::new(),
        });
        let id = self.topics.len() - 1;
        self.by_name.insert(name.to_string(), id);
        id
    }

    pub(super) fn topic(&self, id: usize) -> &TopicBatches {
        &self.topics[id]
    }

    /// Adds output `o` of `task` to topic `topic`'s batches. Its partition: the sink's
    /// choice, else murmur2 of the key bytes, else round robin for a null key. A choice out
    /// of range refuses the record (`Err`: the caller keeps it).
    pub(super) fn push(&mut self, topic: usize, task: TaskId, o: &Output<'_>) -> Result<(), ()> {
        let t = &mut self.topics[topic];
        let p = match (o.partition, o.key) {
            (Some(p), _) if p < t.count => p,
            (Some(_), _) => return Err(()),
            (None, Some(k)) => freshet_streams::partition_for_key(k, t.count),
            (None, None) => {
                let p = t.next % t.count;
                t.next = t.next.wrapping_add(1);
                p
            }
        };
        self.push_to(
            topic,
            p,
            task,
            o.key,
            o.value,
            o.timestamp,
            o.headers.to_vec(),
        );
        Ok(())
    }

    /// Adds a record to partition `p` of topic `topic`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_to(
        &mut self,
        topic: usize,
        p: u32,
        task: TaskId,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: Headers,
    ) {
        let parts = &mut self.topics[topic].partitions;
        let p = p as usize;
        if parts.len() <= p {
            parts.resize_with(p + 1, PartitionBatch::default);
        }
        let slot = self.records.push(task, key, value, timestamp, headers);
        parts[p].slots.push(slot);
    }

    /// The records of `batch`, borrowed, to append.
    pub(super) fn refs(&self, batch: &PartitionBatch) -> Vec<RecordRef<'_>> {
        let bytes = &self.records.bytes;
        self.records
            .of(batch)
            .map(|s| RecordRef {
                key: s.key.get(bytes),
                value: s.value.get(bytes),
                timestamp: Some(s.timestamp),
                headers: &s.headers,
            })
            .collect()
    }

    /// The records of `batch`, owned, with the task of each (for a batch the log refused).
    pub(super) fn records(&self, batch: &PartitionBatch) -> (Vec<TaskId>, Vec<Record>) {
        let bytes = &self.records.bytes;
        self.records
            .of(batch)
            .map(|s| {
                let record = Record {
                    key: s.key.get(bytes).map(Bytes::copy_from_slice),
                    value: s.value.get(bytes).map(Bytes::copy_from_slice),
                    timestamp: Some(s.timestamp),
                    headers: s.headers.clone(),
                };
                (s.task, record)
            })
            .unzip()
    }

    /// The topic ids in name order (the order batches are appended in).
    pub(super) fn by_name(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (0..self.topics.len()).collect();
        ids.sort_by(|&a, &b| self.topics[a].name.cmp(&self.topics[b].name));
        ids
    }

    /// Adds `from`'s topics this one lacks, under `from`'s ids (topics are only ever added,
    /// so this one's are a prefix of `from`'s).
    pub(super) fn add_topics_of(&mut self, from: &OutputBatches) {
        for t in from.topics.iter().skip(self.topics.len()) {
            self.topic_id(&t.name, t.count, t.internal);
        }
    }

    /// Forgets every record, keeping the buffers' room.
    pub(super) fn clear(&mut self) {
        for t in &mut self.topics {
            for p in &mut t.partitions {
                p.slots.clear();
            }
        }
        self.records.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output<'a>(key: Option<&'a [u8]>, partition: Option<u32>) -> Output<'a> {
        Output {
            topic: 0,
            partition,
            key,
            value: Some(b"v"),
            timestamp: 5,
            headers: &[],
        }
    }

    #[test]
    fn outputs_land_in_their_partitions_batches_in_order() {
        let task = TaskId {
            subtopology: 0,
            partition: 1,
        };
        let mut b = OutputBatches::default();
        let t = b.topic_id("out", 4, false);
        assert_eq!(b.topic_id("out", 4, false), t);
        let key: &[u8] = b"k";
        let keyed = freshet_streams::partition_for_key(key, 4) as usize;
        assert!(b.push(t, task, &output(Some(key), None)).is_ok());
        assert!(b.push(t, task, &output(None, Some(2))).is_ok());
        assert!(b.push(t, task, &output(None, None)).is_ok());
        assert!(b.push(t, task, &output(None, None)).is_ok());
        assert!(b.push(t, task, &output(None, Some(4))).is_err());
        let parts = &b.topic(t).partitions;
        let count = |b: &OutputBatches| {
            b.topic(t)
                .partitions
                .iter()
                .map(|p| b.refs(p).len())
                .sum::<usize>()
        };
        assert_eq!(count(&b), 4);
        assert_eq!(b.refs(&parts[keyed])[0].key, Some(key));
        // Round robin from partition 0.
        assert_eq!(b.refs(&parts[0]).last().map(|r| r.key), Some(None));
        assert_eq!(b.refs(&parts[1]).last().map(|r| r.key), Some(None));
        let (tasks, records) = b.records(&parts[2]);
        assert_eq!(tasks, vec![task]);
        assert_eq!(records[0].value.as_deref(), Some(&b"v"[..]));
        assert_eq!(records[0].timestamp, Some(5));
        b.clear();
        assert_eq!(count(&b), 0);
    }
}
