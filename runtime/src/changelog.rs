//! The state stores' changelog seam ([`ChangelogSink`], [`ChangelogReader`]) implemented
//! over a [`Broker`].
//!
//! Both are called synchronously by the task core (inside `Task::stores` and
//! `Task::restore`) on a stream thread, a plain `std::thread`; they reach the async broker
//! through a tokio [`Handle`] with `block_on` (see the crate docs, "Threading model").

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use freshet_log::{Acks, Broker, BrokerTransaction, FetchOptions, Isolation, Record};
use freshet_state_store::{
    ChangelogBatch, ChangelogError, ChangelogPartition, ChangelogReader, ChangelogRecord,
    ChangelogSink,
};
use tokio::runtime::Handle;

/// Where changelog records go: the stream thread's open transaction (exactly-once), or
/// plain appends (at-least-once).
pub enum SinkTarget<'a, B: Broker> {
    /// Inside this transaction (begun by the caller).
    Transaction(&'a mut B::Transaction),
    /// Outside any transaction, with these acks.
    Plain(&'a B, Acks),
}

impl<B: Broker> fmt::Debug for SinkTarget<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkTarget::Transaction(_) => f.write_str("SinkTarget::Transaction"),
            SinkTarget::Plain(_, acks) => write!(f, "SinkTarget::Plain({acks:?})"),
        }
    }
}

/// A [`ChangelogSink`] over a broker: appends each store's changelog batch to its
/// partition, inside the thread's transaction or plainly.
pub struct BrokerChangelogSink<'a, B: Broker> {
    handle: &'a Handle,
    target: SinkTarget<'a, B>,
    records: u64,
}

impl<B: Broker> fmt::Debug for BrokerChangelogSink<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerChangelogSink")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl<'a, B: Broker> BrokerChangelogSink<'a, B> {
    /// A sink appending through `target`, calling the broker on `handle`.
    pub fn new(handle: &'a Handle, target: SinkTarget<'a, B>) -> Self {
        BrokerChangelogSink {
            handle,
            target,
            records: 0,
        }
    }

    /// Changelog records appended so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

impl<B: Broker> ChangelogSink for BrokerChangelogSink<'_, B> {
    fn append(
        &mut self,
        changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> Result<i64, ChangelogError> {
        let n = records.len() as u64;
        let records: Vec<Record> = records
            .into_iter()
            .map(|r| Record {
                key: Some(r.key),
                value: r.value,
                timestamp: Some(r.timestamp),
                headers: Vec::new(),
            })
            .collect();
        let (topic, p) = (changelog.topic.as_str(), changelog.partition);
        let at = match &mut self.target {
            SinkTarget::Transaction(txn) => self.handle.block_on(txn.append(topic, p, &records)),
            SinkTarget::Plain(broker, acks) => self
                .handle
                .block_on(broker.append(topic, p, &records, *acks)),
        }?;
        self.records += n;
        Ok(at.last_offset)
    }
}

/// Restore progress of one task, shared with the metrics while the restore runs.
#[derive(Debug, Default)]
pub(crate) struct RestoreCounters {
    /// Changelog records read so far.
    pub(crate) read: AtomicU64,
    /// Records between where each changelog's restore started and its last stable offset.
    pub(crate) target: AtomicU64,
}

/// A [`ChangelogReader`] over a broker: topic ids, bounds (start, last stable offset) and
/// read_committed reads.
pub struct BrokerChangelogReader<'a, B: Broker> {
    broker: &'a B,
    handle: &'a Handle,
    /// Per changelog partition, the first offset asked for and the last stable offset.
    started: BTreeMap<(String, u32), i64>,
    counters: Option<Arc<RestoreCounters>>,
}

impl<B: Broker> fmt::Debug for BrokerChangelogReader<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerChangelogReader")
            .field("partitions", &self.started.len())
            .finish_non_exhaustive()
    }
}

impl<'a, B: Broker> BrokerChangelogReader<'a, B> {
    /// A reader calling `broker` on `handle`.
    pub fn new(broker: &'a B, handle: &'a Handle) -> Self {
        BrokerChangelogReader {
            broker,
            handle,
            started: BTreeMap::new(),
            counters: None,
        }
    }

    pub(crate) fn with_counters(mut self, counters: Arc<RestoreCounters>) -> Self {
        self.counters = Some(counters);
        self
    }
}

impl<B: Broker> ChangelogReader for BrokerChangelogReader<'_, B> {
    fn topic_id(&mut self, topic: &str) -> Result<Option<String>, ChangelogError> {
        match self.handle.block_on(self.broker.describe_topic(topic)) {
            Ok(d) => Ok(Some(d.id.to_string())),
            Err(freshet_log::Error::UnknownTopic { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn bounds(&mut self, changelog: &ChangelogPartition) -> Result<(i64, i64), ChangelogError> {
        let o = self
            .handle
            .block_on(self.broker.offsets(&changelog.topic, changelog.partition))?;
        Ok((o.start, o.last_stable))
    }

    fn read(
        &mut self,
        changelog: &ChangelogPartition,
        from: i64,
        max_records: usize,
    ) -> Result<ChangelogBatch, ChangelogError> {
        let key = (changelog.topic.clone(), changelog.partition);
        if !self.started.contains_key(&key) {
            let o = self
                .handle
                .block_on(self.broker.offsets(&changelog.topic, changelog.partition))?;
            if let Some(c) = &self.counters {
                c.target.fetch_add(
                    u64::try_from(o.last_stable - from).unwrap_or(0),
                    Ordering::Relaxed,
                );
            }
            self.started.insert(key, from);
        }
        let options = FetchOptions {
            max_bytes: 64 << 20,
            max_partition_bytes: 64 << 20,
            max_records: max_records.max(1),
            isolation: Isolation::ReadCommitted,
            timeout: Duration::ZERO,
        };
        let positions = [(changelog.topic.clone(), changelog.partition, from)];
        let fetched = self
            .handle
            .block_on(self.broker.fetch(&positions, &options))?;
        let mut batch = ChangelogBatch {
            records: Vec::new(),
            next_offset: from,
        };
        for f in fetched {
            batch.next_offset = batch.next_offset.max(f.next_offset);
            batch.records.extend(f.records.into_iter().map(|r| {
                (
                    r.offset,
                    ChangelogRecord {
                        key: r.key.unwrap_or_default(),
                        value: r.value,
                        timestamp: r.timestamp,
                    },
                )
            }));
        }
        if let Some(c) = &self.counters {
            c.read
                .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
        }
        Ok(batch)
    }
}
