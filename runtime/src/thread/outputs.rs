//! The sender's batches: one per (topic, partition), filled from the tasks' outputs.
//!
//! A task's records stay where its sinks wrote them, in the output buffers ([`Outputs`])
//! the sender took over. Placing a record (its partition chosen on the sender, off the
//! stream thread; see `sender`) encodes it into its partition's batch
//! ([`BatchBuilder`]) while its fields are at hand, and notes its place in the buffers
//! (which taken buffer, which record): no topic name, no key or value handle, no
//! regrouping by name at the append, which takes the encoded batch as it is. The places
//! serve only a batch the log refuses, whose records go back to the thread one by one.
//! The taken buffers go back to the thread once the batches are appended and the refused
//! ones handled.
//!
//! [`Outputs`]: freshet_streams::Outputs

use std::collections::HashMap;

use bytes::Bytes;
use freshet_log::{BatchBuilder, Record, RecordRef};
use freshet_streams::{Output, TaskId};

use super::sender::Outgoing;

/// The records waiting for one partition, in the order taken: where each lies, as (index
/// of the taken outputs in the job, index of the record in them), and encoded into the
/// batch to append.
#[derive(Debug, Default)]
pub(super) struct PartitionBatch {
    records: Vec<(usize, usize)>,
    /// The records encoded as they were placed, while their fields were at hand (listing
    /// them and reading them all again to encode at the append took a quarter of the
    /// sender's time).
    batch: Option<BatchBuilder>,
}

impl PartitionBatch {
    /// The encoded batch, taken to append (`None` once taken).
    pub(super) fn take_batch(&mut self) -> Option<BatchBuilder> {
        self.batch.take()
    }

    /// The records, read where they lie in `taken`.
    fn outputs<'a, 'b>(
        &'b self,
        taken: &'a [Outgoing],
    ) -> impl Iterator<Item = (TaskId, Output<'a>)> + 'b
    where
        'a: 'b,
    {
        self.records.iter().filter_map(|&(t, r)| {
            let from = taken.get(t)?;
            Some((from.task, from.outputs.get(r)?))
        })
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

    pub(super) fn topic_mut(&mut self, id: usize) -> &mut TopicBatches {
        &mut self.topics[id]
    }

    /// Adds output `o`, record `at.1` of the taken outputs `at.0`, to topic `topic`'s
    /// batches. Its partition: the sink's choice, else murmur2 of the key bytes, else round
    /// robin for a null key. A choice out of range refuses the record (`Err`: the caller
    /// keeps it).
    pub(super) fn push(
        &mut self,
        topic: usize,
        at: (usize, usize),
        o: &Output<'_>,
    ) -> Result<(), ()> {
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
        let parts = &mut t.partitions;
        let p = p as usize;
        if parts.len() <= p {
            parts.resize_with(p + 1, PartitionBatch::default);
        }
        let part = &mut parts[p];
        part.records.push(at);
        part.batch
            .get_or_insert_with(BatchBuilder::new)
            .push(&RecordRef {
                key: o.key,
                value: o.value,
                timestamp: Some(o.timestamp),
                headers: o.headers,
            });
        Ok(())
    }

    /// The records of `batch`, owned, with the task of each (for a batch the log refused).
    pub(super) fn records(
        batch: &PartitionBatch,
        taken: &[Outgoing],
    ) -> (Vec<TaskId>, Vec<Record>) {
        batch
            .outputs(taken)
            .map(|(task, o)| {
                let record = Record {
                    key: o.key.map(Bytes::copy_from_slice),
                    value: o.value.map(Bytes::copy_from_slice),
                    timestamp: Some(o.timestamp),
                    headers: o.headers.to_vec(),
                };
                (task, record)
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

    /// Forgets every record, keeping the batches' room.
    pub(super) fn clear(&mut self) {
        for t in &mut self.topics {
            for p in &mut t.partitions {
                p.records.clear();
                p.batch = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use freshet_streams::{Outputs, SinkRecord};

    use super::*;

    fn record(key: Option<&'static [u8]>, partition: Option<u32>) -> SinkRecord {
        SinkRecord {
            topic: "out".into(),
            partition,
            key: key.map(Bytes::from_static),
            value: Some(Bytes::from_static(b"v")),
            timestamp: 5,
            headers: Vec::new(),
        }
    }

    #[test]
    fn outputs_land_in_their_partitions_batches_in_order() {
        let task = TaskId {
            subtopology: 0,
            partition: 1,
        };
        let key: &'static [u8] = b"k";
        let mut outputs = Outputs::default();
        for r in [
            record(Some(key), None),
            record(None, Some(2)),
            record(None, None),
            record(None, None),
            record(None, Some(4)),
        ] {
            outputs.push(r);
        }
        let taken = vec![Outgoing {
            task,
            topics: vec![Some(0)],
            outputs,
        }];
        let mut b = OutputBatches::default();
        let t = b.topic_id("out", 4, false);
        assert_eq!(b.topic_id("out", 4, false), t);
        let keyed = freshet_streams::partition_for_key(key, 4) as usize;
        let placed: Vec<bool> = (0..5)
            .map(|i| {
                let o = taken[0].outputs.get(i).expect("written");
                b.push(t, (0, i), &o).is_ok()
            })
            .collect();
        assert_eq!(placed, vec![true, true, true, true, false]);
        let count = |b: &OutputBatches| {
            b.topic(t)
                .partitions
                .iter()
                .map(|p| OutputBatches::records(p, &taken).1.len())
                .sum::<usize>()
        };
        assert_eq!(count(&b), 4);
        let parts = &b.topic(t).partitions;
        let records = |p: usize| OutputBatches::records(&parts[p], &taken).1;
        assert_eq!(records(keyed)[0].key.as_deref(), Some(key));
        // Round robin from partition 0.
        assert_eq!(records(0).last().map(|r| r.key.clone()), Some(None));
        assert_eq!(records(1).last().map(|r| r.key.clone()), Some(None));
        let (tasks, owned) = OutputBatches::records(&parts[2], &taken);
        assert_eq!(tasks, vec![task]);
        assert_eq!(owned[0].value.as_deref(), Some(&b"v"[..]));
        assert_eq!(owned[0].timestamp, Some(5));
        // Each partition's batch holds its records, encoded as they were placed.
        let listed: Vec<Vec<Record>> = (0..parts.len()).map(records).collect();
        for (p, listed) in listed.into_iter().enumerate() {
            let encoded = b.topic_mut(t).partitions[p]
                .take_batch()
                .map(|batch| batch.to_records().expect("decodes"))
                .unwrap_or_default();
            assert_eq!(encoded, listed, "partition {p}");
        }
        b.clear();
        assert_eq!(count(&b), 0);
    }
}
