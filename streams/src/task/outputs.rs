//! What a task's sinks wrote since its caller last took it.
//!
//! Every record a sink writes is serialized straight into one byte buffer per task, with
//! its topic as a small id into the task's table of topic names. A record written costs no
//! allocation of its own (no topic name, key or value vector each): the buffers keep their
//! capacity from one take to the next. The caller reads the records in place
//! ([`Outputs::iter`]) and clears them, or takes them as [`SinkRecord`]s.

use bytes::Bytes;

use crate::record::{Headers, SinkRecord};

/// The id of a topic in one task's [`Outputs`] (an index into its table of names; it never
/// changes for the task's life).
pub type OutputTopic = u32;

/// A key or value in the byte buffer: `start..end`, or null.
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

    fn get(self, bytes: &[u8]) -> Option<&[u8]> {
        if self == Field::NULL {
            None
        } else {
            bytes.get(self.start..self.end)
        }
    }
}

/// One record written.
#[derive(Debug)]
struct Entry {
    topic: OutputTopic,
    partition: Option<u32>,
    key: Field,
    value: Field,
    timestamp: i64,
    headers: Headers,
}

/// The records a task wrote (sinks, repartition topics, the late-records and dead-letter
/// topics) and not yet taken, in the order written.
#[derive(Debug, Default)]
pub struct Outputs {
    topics: Vec<String>,
    entries: Vec<Entry>,
    bytes: Vec<u8>,
}

/// A record of [`Outputs`], borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// The topic's id ([`Outputs::topic`] names it).
    pub topic: OutputTopic,
    /// The partition chosen by the sink's partitioner; `None`: the default partitioner on
    /// the key bytes (sticky for a null key) decides.
    pub partition: Option<u32>,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes.
    pub value: Option<&'a [u8]>,
    /// The timestamp to write.
    pub timestamp: i64,
    /// Headers.
    pub headers: &'a [(String, Bytes)],
}

/// Where a record being written stands: [`Outputs::begin`] marks it, the sink writes key and
/// value, [`Outputs::commit`] adds it (or [`Outputs::rollback`] forgets what was written).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    start: usize,
    key: Field,
    value: Field,
}

impl Outputs {
    /// Records written and not taken.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of topic `id`.
    pub fn topic(&self, id: OutputTopic) -> &str {
        self.topics.get(id as usize).map_or("", String::as_str)
    }

    /// The id of topic `name`, added to the table when new (tasks write to few topics: a
    /// look through the table is cheaper than hashing).
    pub(crate) fn intern(&mut self, name: &str) -> OutputTopic {
        if let Some(i) = self.topics.iter().position(|t| t == name) {
            return i as OutputTopic;
        }
        self.topics.push(name.to_string());
        (self.topics.len() - 1) as OutputTopic
    }

    /// Starts a record: its key and value are written next.
    #[inline]
    pub(crate) fn begin(&self) -> Pending {
        Pending {
            start: self.bytes.len(),
            key: Field::NULL,
            value: Field::NULL,
        }
    }

    /// Writes the key with `write` (which returns false for null, having written nothing).
    pub(crate) fn write_key<E>(
        &mut self,
        p: &mut Pending,
        write: impl FnOnce(&mut Vec<u8>) -> Result<bool, E>,
    ) -> Result<(), E> {
        p.key = self.write_field(write)?;
        Ok(())
    }

    /// Writes the value, as [`write_key`](Outputs::write_key).
    pub(crate) fn write_value<E>(
        &mut self,
        p: &mut Pending,
        write: impl FnOnce(&mut Vec<u8>) -> Result<bool, E>,
    ) -> Result<(), E> {
        p.value = self.write_field(write)?;
        Ok(())
    }

    fn write_field<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<bool, E>,
    ) -> Result<Field, E> {
        let start = self.bytes.len();
        Ok(if write(&mut self.bytes)? {
            Field {
                start,
                end: self.bytes.len(),
            }
        } else {
            self.bytes.truncate(start);
            Field::NULL
        })
    }

    /// Forgets what was written for `p` (a record that failed half-way).
    pub(crate) fn rollback(&mut self, p: Pending) {
        self.bytes.truncate(p.start);
    }

    /// Adds the record `p` was written for. Inlined: the entry is then built where the
    /// sink's values are, not from a `Pending` stored in pieces and reloaded whole (a
    /// stall per output record).
    #[inline]
    pub(crate) fn commit(
        &mut self,
        p: Pending,
        topic: OutputTopic,
        partition: Option<u32>,
        timestamp: i64,
        headers: Headers,
    ) {
        self.entries.push(Entry {
            topic,
            partition,
            key: p.key,
            value: p.value,
            timestamp,
            headers,
        });
    }

    /// Adds a record given as a [`SinkRecord`] (late records, dead letters; a caller's own
    /// records, in tests).
    pub fn push(&mut self, r: SinkRecord) {
        let topic = self.intern(&r.topic);
        let mut p = self.begin();
        let copy = |b: Option<Bytes>| {
            move |out: &mut Vec<u8>| -> Result<bool, ()> {
                Ok(b.is_some_and(|b| {
                    out.extend_from_slice(&b);
                    true
                }))
            }
        };
        // Infallible: the writers never fail.
        let _ = self.write_key(&mut p, copy(r.key));
        let _ = self.write_value(&mut p, copy(r.value));
        self.commit(p, topic, r.partition, r.timestamp, r.headers);
    }

    /// The records in the order written.
    pub fn iter(&self) -> impl Iterator<Item = Output<'_>> + '_ {
        self.entries.iter().map(|e| self.output(e))
    }

    /// Record `i` in the order written (`None` past the last).
    pub fn get(&self, i: usize) -> Option<Output<'_>> {
        self.entries.get(i).map(|e| self.output(e))
    }

    fn output<'a>(&'a self, e: &'a Entry) -> Output<'a> {
        Output {
            topic: e.topic,
            partition: e.partition,
            key: e.key.get(&self.bytes),
            value: e.value.get(&self.bytes),
            timestamp: e.timestamp,
            headers: &e.headers,
        }
    }

    /// How many topics the table names (ids are `0..topic_count()`).
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// Moves the records into `to` without copying them: `to` (emptied first, its room
    /// reused) gets them and a copy of the topic table; this one keeps its table, so the
    /// ids sinks hold stay valid, and takes `to`'s empty buffers.
    pub fn move_records_into(&mut self, to: &mut Outputs) {
        to.clear();
        std::mem::swap(&mut self.entries, &mut to.entries);
        std::mem::swap(&mut self.bytes, &mut to.bytes);
        to.topics.clone_from(&self.topics);
    }

    /// Forgets the records (keeping the buffers' room and the topic table).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
    }

    /// Takes the records as [`SinkRecord`]s.
    pub(crate) fn take(&mut self) -> Vec<SinkRecord> {
        let out = self.iter().map(|o| self.sink_record(&o)).collect();
        self.clear();
        out
    }

    /// `o` as a [`SinkRecord`] (copies its bytes).
    pub fn sink_record(&self, o: &Output<'_>) -> SinkRecord {
        SinkRecord {
            topic: self.topic(o.topic).to_string(),
            partition: o.partition,
            key: o.key.map(Bytes::copy_from_slice),
            value: o.value.map(Bytes::copy_from_slice),
            timestamp: o.timestamp,
            headers: o.headers.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> SinkRecord {
        SinkRecord {
            topic: topic.to_string(),
            partition: Some(1),
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            timestamp: 7,
            headers: vec![("h".to_string(), Bytes::from_static(b"x"))],
        }
    }

    #[test]
    fn records_round_trip_in_order_with_nulls_and_interned_topics() {
        let mut o = Outputs::default();
        let written = vec![
            record("a", Some(b"k1"), Some(b"v1")),
            record("b", None, Some(b"v2")),
            record("a", Some(b""), None),
        ];
        for r in written.clone() {
            o.push(r);
        }
        assert_eq!(o.len(), 3);
        assert_eq!(o.iter().map(|r| r.topic).collect::<Vec<_>>(), [0, 1, 0]);
        assert_eq!(o.take(), written);
        assert!(o.is_empty());
        assert_eq!(o.intern("b"), 1);
    }

    #[test]
    fn moved_records_keep_their_topics_and_the_ids_stay_valid() {
        let mut o = Outputs::default();
        o.push(record("a", Some(b"k1"), Some(b"v1")));
        o.push(record("b", None, Some(b"v2")));
        let mut to = Outputs::default();
        to.push(record("z", Some(b"old"), None));
        o.move_records_into(&mut to);
        assert!(o.is_empty());
        assert_eq!(
            to.take(),
            vec![
                record("a", Some(b"k1"), Some(b"v1")),
                record("b", None, Some(b"v2"))
            ]
        );
        assert_eq!((o.intern("a"), o.intern("b"), o.topic_count()), (0, 1, 2));
    }

    #[test]
    fn a_rolled_back_record_leaves_nothing() {
        let mut o = Outputs::default();
        let t = o.intern("t");
        let mut p = o.begin();
        let _ = o.write_key(&mut p, |out| -> Result<bool, ()> {
            out.extend_from_slice(b"key");
            Ok(true)
        });
        let failed = o.write_value(&mut p, |out| {
            out.push(1);
            Err("bad value")
        });
        assert!(failed.is_err());
        o.rollback(p);
        assert!(o.is_empty());
        let p = o.begin();
        o.commit(p, t, None, 1, Vec::new());
        let r = o.take();
        assert_eq!((r[0].key.clone(), r[0].value.clone()), (None, None));
    }
}
