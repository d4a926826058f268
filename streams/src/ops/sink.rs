//! Sink nodes: serialize, choose topic and partition, write.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::partitioner::{partition_for_key, StreamPartitioner};
use crate::record::Record;
use crate::serde::SerdeRef;
use crate::task::node::{input_ref, Data, InFlight, Node, NodeContext};
use crate::task::outputs::{OutputTopic, Outputs};
use crate::topology::TopicName;

/// Chooses a topic per record (Kafka's `TopicNameExtractor`).
pub type TopicNameExtractor<K, V> = Arc<dyn Fn(&Record<K, V>) -> String + Send + Sync>;

pub(crate) enum SinkTarget<K, V> {
    Fixed(TopicName),
    Dynamic(TopicNameExtractor<K, V>),
}

impl<K, V> Clone for SinkTarget<K, V> {
    fn clone(&self) -> Self {
        match self {
            SinkTarget::Fixed(t) => SinkTarget::Fixed(t.clone()),
            SinkTarget::Dynamic(f) => SinkTarget::Dynamic(f.clone()),
        }
    }
}

pub(crate) struct SinkNode<K, V> {
    pub(crate) target: SinkTarget<K, V>,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
    /// A fixed topic's id in the task's outputs and its partition count, found at the
    /// first record (the name is resolved and looked up once per task, not per record).
    pub(crate) fixed: Option<(OutputTopic, Option<u32>)>,
    /// The key's partition bytes, reused from record to record.
    pub(crate) scratch: Vec<u8>,
    /// Records with a null key are dropped, not written (a repartition topic's sink: Kafka
    /// filters them out just before it; see `KStream::repartition_through`).
    pub(crate) drop_null_keys: bool,
}

impl<K, V> SinkNode<K, V> {
    /// A sink writing to `target`.
    pub(crate) fn new(
        target: SinkTarget<K, V>,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
    ) -> Self {
        SinkNode {
            target,
            keys,
            values,
            partitioner,
            fixed: None,
            scratch: Vec::new(),
            drop_null_keys: false,
        }
    }

    /// This sink, dropping records with a null key instead of writing them.
    pub(crate) fn dropping_null_keys(mut self) -> Self {
        self.drop_null_keys = true;
        self
    }
}

impl<K, V> Clone for SinkNode<K, V> {
    fn clone(&self) -> Self {
        let mut sink = SinkNode::new(
            self.target.clone(),
            self.keys.clone(),
            self.values.clone(),
            self.partitioner.clone(),
        );
        sink.drop_null_keys = self.drop_null_keys;
        sink
    }
}

impl<K: Data, V: Data> SinkNode<K, V> {
    /// The record's topic in the task's outputs and its partition count, when known.
    fn topic(&mut self, ctx: &mut NodeContext<'_>, r: &Record<K, V>) -> (OutputTopic, Option<u32>) {
        match &self.target {
            SinkTarget::Fixed(t) => {
                if let Some(fixed) = self.fixed {
                    return fixed;
                }
                let name = t.resolve(&ctx.config().application_id);
                let found = (ctx.core.outputs.intern(&name), ctx.partitions_of(&name));
                // A count not known yet is asked again next time.
                if found.1.is_some() {
                    self.fixed = Some(found);
                }
                found
            }
            SinkTarget::Dynamic(f) => {
                let name = f(r);
                (ctx.core.outputs.intern(&name), ctx.partitions_of(&name))
            }
        }
    }
}

impl<K: Data, V: Data> Node for SinkNode<K, V> {
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        // Read where it is: only the headers are taken, into the output.
        let r = input_ref::<K, V>(ctx, record)?;
        if self.drop_null_keys && self.keys.is_null(&r.key) {
            return Ok(());
        }
        // Kafka's `SinkNode`: a record with a negative timestamp cannot be written.
        if r.timestamp < 0 {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: format!(
                    "invalid (negative) timestamp of {} for output record",
                    r.timestamp
                ),
            });
        }
        let (topic, count) = self.topic(ctx, r);
        // Key and value are serialized straight into the task's output buffer.
        let outputs = &mut ctx.core.outputs;
        let mut pending = outputs.begin();
        let written = outputs
            .write_key(&mut pending, |out| {
                self.keys
                    .serialize_nullable_into(&r.key, out)
                    .map_err(|e| SinkError::Serde("key", e))
            })
            .and_then(|()| {
                outputs.write_value(&mut pending, |out| {
                    self.values
                        .serialize_nullable_into(&r.value, out)
                        .map_err(|e| SinkError::Serde("value", e))
                })
            })
            .and_then(|()| self.partition(outputs, topic, r, count));
        let partition = match written {
            Ok(p) => p,
            Err(e) => {
                ctx.core.outputs.rollback(pending);
                return Err(e.into_error(ctx, topic));
            }
        };
        ctx.core.metrics.records_out += 1;
        ctx.core.outputs.commit(
            pending,
            topic,
            partition,
            r.timestamp,
            std::mem::take(&mut r.headers),
        );
        Ok(())
    }
}

/// Why a sink could not write a record.
enum SinkError {
    /// A serde failed on the key or the value.
    Serde(&'static str, String),
    /// The partitioner chose partition `.0` of a topic with `.1`.
    Partition(u32, u32),
}

impl SinkError {
    fn into_error(self, ctx: &NodeContext<'_>, topic: OutputTopic) -> Error {
        let topic = ctx.core.outputs.topic(topic);
        match self {
            SinkError::Partition(p, n) => Error::InvalidArgument(format!(
                "the partitioner of sink {} chose partition {p} of {topic}, which has {n}",
                ctx.name()
            )),
            SinkError::Serde(what, reason) => Error::Serde {
                context: format!("{what} of sink {} to {topic}", ctx.name()),
                reason,
            },
        }
    }
}

impl<K: Data, V: Data> SinkNode<K, V> {
    /// The partitioner's choice; without one, or when it returns `None`, the default
    /// partitioner: murmur2 of the key's partition bytes (Kafka: an empty `partitions()`
    /// result falls back to the producer's partitioner).
    fn partition(
        &mut self,
        outputs: &Outputs,
        topic: OutputTopic,
        r: &Record<K, V>,
        count: Option<u32>,
    ) -> std::result::Result<Option<u32>, SinkError> {
        // The topic's name is looked up only for a partitioner, which is given it.
        let chosen = match (&self.partitioner, count) {
            (Some(p), Some(n)) => p.partition(outputs.topic(topic), &r.key, &r.value, n),
            _ => None,
        };
        match (chosen, count) {
            // Kafka's producer refuses a partition out of range.
            (Some(p), Some(n)) if p >= n => Err(SinkError::Partition(p, n)),
            (Some(p), _) => Ok(Some(p)),
            // The key's bytes are already in the output: the runtime hashes those.
            (None, Some(_)) if self.keys.partitions_by_serialized() => Ok(None),
            (None, Some(n)) => {
                self.scratch.clear();
                let keyed = self
                    .keys
                    .partition_bytes_into(&r.key, &mut self.scratch)
                    .map_err(|e| SinkError::Serde("key", e))?;
                Ok(keyed.then(|| partition_for_key(&self.scratch, n)))
            }
            (None, None) => Ok(None),
        }
    }
}
