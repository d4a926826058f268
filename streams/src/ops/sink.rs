//! Sink nodes: serialize, choose topic and partition, write.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::partitioner::{partition_for_key, StreamPartitioner};
use crate::record::{Record, SinkRecord};
use crate::serde::SerdeRef;
use crate::task::node::{take_record, Data, Node, NodeContext};
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
}

impl<K, V> Clone for SinkNode<K, V> {
    fn clone(&self) -> Self {
        SinkNode {
            target: self.target.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            partitioner: self.partitioner.clone(),
        }
    }
}

impl<K: Data, V: Data> Node for SinkNode<K, V> {
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut dyn Any) -> Result<()> {
        let r = take_record::<K, V>(ctx.name(), record)?;
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
        let topic = match &self.target {
            SinkTarget::Fixed(t) => t.resolve(&ctx.config().application_id),
            SinkTarget::Dynamic(f) => f(&r),
        };
        let serde_err = |what: &str, reason: String| Error::Serde {
            context: format!("{what} of sink {} to {topic}", ctx.name()),
            reason,
        };
        let key = self
            .keys
            .serialize_nullable(&r.key)
            .map_err(|e| serde_err("key", e))?;
        let value = self
            .values
            .serialize_nullable(&r.value)
            .map_err(|e| serde_err("value", e))?;
        let count = ctx.partitions_of(&topic);
        // The partitioner's choice; without one, or when it returns `None`, the default
        // partitioner: murmur2 of the key bytes (Kafka: an empty `partitions()` result falls
        // back to the producer's partitioner).
        let chosen = match (&self.partitioner, count) {
            (Some(p), Some(n)) => p.partition(&topic, &r.key, &r.value, n),
            _ => None,
        };
        let partition = match (chosen, count) {
            // Kafka's producer refuses a partition out of range.
            (Some(p), Some(n)) if p >= n => {
                return Err(Error::InvalidArgument(format!(
                    "the partitioner of sink {} chose partition {p} of {topic}, which has {n}",
                    ctx.name()
                )))
            }
            (Some(p), _) => Some(p),
            (None, Some(n)) => self
                .keys
                .partition_bytes(&r.key)
                .map_err(|e| serde_err("key", e))?
                .map(|b| partition_for_key(&b, n)),
            (None, None) => None,
        };
        ctx.send(SinkRecord {
            topic,
            partition,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            timestamp: r.timestamp,
            headers: r.headers,
        });
        Ok(())
    }
}
