//! Transactions: the coordinator's state log and the transactional producer.
//!
//! Like Kafka, the decision to commit or abort is recorded in an internal partition
//! (`internal/__transaction_state/0`) *before* any marker is written, so recovery can finish
//! what a crash interrupted: a transaction left `Ongoing` or `PrepareAbort` is aborted, one
//! left `PrepareCommit` is committed. A partition joins a transaction (with its first offset)
//! in the state log before the transaction's first batch is written there, which is what
//! lets readers and recovery know every open transaction's range.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::batch::{Marker, ProducerStamp};
use crate::config::{Acks, TopicConfig};
use crate::error::{Error, Result};
use crate::group::{OffsetAndMetadata, OFFSETS_TOPIC};
use crate::log::{AppendResult, Log, LogInner, INTERNAL_DIR};
use crate::partition::{Isolation, Partition};
use crate::partitioner::partition_for_key;
use crate::record::{AsRecordRef, Record, RecordRef};

/// Name of the transaction state log (an internal partition).
pub(crate) const TXN_TOPIC: &str = "__transaction_state";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TxnPartition {
    topic: String,
    partition: u32,
    first_offset: i64,
    /// The topic's id, so a deleted and recreated topic never gets the old transaction's
    /// marker (internal partitions have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TxnEntry {
    producer_id: i64,
    epoch: i16,
    status: Status,
    partitions: Vec<TxnPartition>,
}

impl TxnEntry {
    fn is_open(&self) -> bool {
        matches!(
            self.status,
            Status::Ongoing | Status::PrepareCommit | Status::PrepareAbort
        )
    }
    fn stamp(&self) -> ProducerStamp {
        ProducerStamp {
            producer_id: self.producer_id,
            epoch: self.epoch,
        }
    }
}

#[derive(Debug, Default)]
struct TxnTable {
    entries: HashMap<String, TxnEntry>,
    next_producer_id: i64,
    /// Next state-log offset to replay (read-only handles).
    replayed_to: i64,
    /// Transactions replay saw end, by (topic, partition, producer id), not yet published.
    closed: Vec<(String, u32, i64)>,
}

/// Owns the transaction state log.
#[derive(Debug)]
pub(crate) struct TxnCoordinator {
    log: Partition,
    table: Mutex<TxnTable>,
}

impl TxnCoordinator {
    pub(crate) fn open(dir: &Path, writable: bool, index_interval: u64) -> Result<TxnCoordinator> {
        let config = internal_topic_config()?;
        let pdir = dir.join(INTERNAL_DIR).join(TXN_TOPIC).join("0");
        let log = Partition::open(TXN_TOPIC, 0, pdir, config, writable, index_interval)?;
        let c = TxnCoordinator {
            log,
            table: Mutex::new(TxnTable::default()),
        };
        c.replay()?;
        Ok(c)
    }

    /// The state log partition (for the cleaner).
    pub(crate) fn state_partition(&self) -> &Partition {
        &self.log
    }

    /// Reads state-log records not yet seen into the table.
    fn replay(&self) -> Result<()> {
        let mut t = self.table.lock();
        let mut pos = t.replayed_to.max(self.log.offsets().start);
        loop {
            let end = self.log.offsets().end;
            if pos >= end {
                break;
            }
            let read = self
                .log
                .read_from(pos, 4 << 20, Isolation::ReadUncommitted)?;
            if read.next_offset <= pos {
                break;
            }
            pos = read.next_offset;
            for r in read.records {
                let (Some(key), Some(value)) = (r.key, r.value) else {
                    continue;
                };
                let id = String::from_utf8_lossy(&key).into_owned();
                let entry: TxnEntry =
                    serde_json::from_slice(&value).map_err(|e| Error::Corrupt {
                        path: self.log.dir.clone(),
                        position: r.offset as u64,
                        reason: format!("transaction state record for '{id}': {e}"),
                    })?;
                t.next_producer_id = t.next_producer_id.max(entry.producer_id + 1);
                if let Some(old) = t.entries.insert(id, entry.clone()) {
                    // Partitions the transaction no longer holds open must forget it.
                    for tp in old.partitions {
                        if !(entry.is_open() && entry.partitions.contains(&tp)) {
                            t.closed.push((tp.topic, tp.partition, old.producer_id));
                        }
                    }
                }
            }
        }
        t.replayed_to = pos;
        Ok(())
    }

    /// Tells every partition in an open transaction where that transaction starts.
    fn publish_ongoing(&self, inner: &LogInner) {
        let mut t = self.table.lock();
        for (topic, partition, producer_id) in std::mem::take(&mut t.closed) {
            if let Some(p) = resolve(inner, &topic, partition, None) {
                p.set_ongoing(producer_id, None);
            }
        }
        for e in t.entries.values() {
            for tp in &e.partitions {
                if let Some(p) = resolve(inner, &tp.topic, tp.partition, tp.topic_id) {
                    p.set_ongoing(e.producer_id, e.is_open().then_some(tp.first_offset));
                }
            }
        }
    }

    /// At open of a writable log: finishes or aborts every transaction a crash left open.
    pub(crate) fn recover(&self, inner: &LogInner) -> Result<()> {
        self.publish_ongoing(inner);
        let open: Vec<(String, TxnEntry)> = self
            .table
            .lock()
            .entries
            .iter()
            .filter(|(_, e)| e.is_open())
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for (id, entry) in open {
            let commit = entry.status == Status::PrepareCommit;
            tracing::info!(transactional_id = %id, producer_id = entry.producer_id, commit, "recovery completes a transaction left open");
            let mut t = self.table.lock();
            self.finish(&mut t, inner, &id, commit, inner.config.durability)?;
        }
        Ok(())
    }

    /// Read-only handles: replays new state-log records and republishes open transactions.
    pub(crate) fn refresh(&self, inner: &LogInner) -> Result<()> {
        self.log.refresh()?;
        self.log.finish_refresh(i64::MAX)?;
        self.replay()?;
        self.publish_ongoing(inner);
        Ok(())
    }

    fn write(&self, id: &str, entry: &TxnEntry, acks: Acks) -> Result<()> {
        let value = serde_json::to_vec(entry).map_err(|e| Error::InvalidTxnState {
            transactional_id: id.to_string(),
            reason: e.to_string(),
        })?;
        let record = Record::new(Bytes::copy_from_slice(id.as_bytes()), value);
        self.log.append(&[record], None, acks)?;
        Ok(())
    }

    /// Registers (or re-registers) a transactional id: bumps its epoch, fencing older
    /// producers, after finishing whatever transaction the older producer left open.
    fn init(&self, inner: &LogInner, id: &str, acks: Acks) -> Result<ProducerStamp> {
        let mut t = self.table.lock();
        if t.entries.get(id).is_some_and(TxnEntry::is_open) {
            let commit = t
                .entries
                .get(id)
                .is_some_and(|e| e.status == Status::PrepareCommit);
            self.finish(&mut t, inner, id, commit, acks)?;
        }
        let entry = match t.entries.get(id) {
            Some(e) if e.epoch < i16::MAX - 1 => TxnEntry {
                producer_id: e.producer_id,
                epoch: e.epoch + 1,
                status: Status::Empty,
                partitions: Vec::new(),
            },
            _ => {
                let producer_id = t.next_producer_id;
                t.next_producer_id += 1;
                TxnEntry {
                    producer_id,
                    epoch: 0,
                    status: Status::Empty,
                    partitions: Vec::new(),
                }
            }
        };
        self.write(id, &entry, acks)?;
        let stamp = entry.stamp();
        t.entries.insert(id.to_string(), entry);
        Ok(stamp)
    }

    fn check<'t>(t: &'t mut TxnTable, id: &str, stamp: ProducerStamp) -> Result<&'t mut TxnEntry> {
        let entry = t
            .entries
            .get_mut(id)
            .ok_or_else(|| Error::InvalidTxnState {
                transactional_id: id.to_string(),
                reason: "unknown transactional id".into(),
            })?;
        if entry.producer_id != stamp.producer_id || entry.epoch != stamp.epoch {
            return Err(Error::ProducerFenced {
                transactional_id: id.to_string(),
                epoch: stamp.epoch,
                current: entry.epoch,
            });
        }
        Ok(entry)
    }

    /// Makes `partition` part of the open transaction (recording its first offset) before the
    /// transaction writes there.
    fn add_partition(
        &self,
        id: &str,
        stamp: ProducerStamp,
        topic: &str,
        topic_id: Option<Uuid>,
        p: &Partition,
        acks: Acks,
    ) -> Result<()> {
        let mut t = self.table.lock();
        let entry = Self::check(&mut t, id, stamp)?;
        if entry
            .partitions
            .iter()
            .any(|tp| tp.topic == topic && tp.partition == p.id)
        {
            return Ok(());
        }
        let first_offset = p.begin_txn(stamp.producer_id);
        entry.partitions.push(TxnPartition {
            topic: topic.to_string(),
            partition: p.id,
            first_offset,
            topic_id,
        });
        entry.status = Status::Ongoing;
        let entry = entry.clone();
        self.write(id, &entry, acks)
    }

    /// Commits or aborts: records the decision, writes a marker to every partition, applies
    /// offset commits, records completion.
    fn finish(
        &self,
        t: &mut TxnTable,
        inner: &LogInner,
        id: &str,
        commit: bool,
        acks: Acks,
    ) -> Result<()> {
        let Some(entry) = t.entries.get_mut(id) else {
            return Ok(());
        };
        if entry.partitions.is_empty() {
            entry.status = Status::Empty;
            return Ok(());
        }
        let prepare = if commit {
            Status::PrepareCommit
        } else {
            Status::PrepareAbort
        };
        if entry.status != prepare {
            entry.status = prepare;
            let e = entry.clone();
            self.write(id, &e, acks)?;
        }
        let entry = entry.clone();
        let marker = if commit {
            Marker::Commit
        } else {
            Marker::Abort
        };
        for tp in &entry.partitions {
            match resolve(inner, &tp.topic, tp.partition, tp.topic_id) {
                Some(p) => {
                    p.end_txn(entry.stamp(), marker, acks)?;
                }
                None => {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, "transaction partition no longer exists; no marker written")
                }
            }
        }
        inner.groups.complete_txn(entry.producer_id, commit);
        let done = TxnEntry {
            status: if commit {
                Status::CompleteCommit
            } else {
                Status::CompleteAbort
            },
            partitions: Vec::new(),
            ..entry
        };
        self.write(id, &done, acks)?;
        t.entries.insert(id.to_string(), done);
        inner.notify.notify_waiters();
        Ok(())
    }
}

/// Finds a partition by topic name, internal ones included; with `topic_id`, only if the
/// topic still has that id.
pub(crate) fn resolve(
    inner: &LogInner,
    topic: &str,
    partition: u32,
    topic_id: Option<Uuid>,
) -> Option<Arc<Partition>> {
    if topic == OFFSETS_TOPIC {
        return inner.groups.offsets_partition(partition);
    }
    let t = inner.topics.read().get(topic)?.clone();
    if topic_id.is_some_and(|id| id != t.meta.read().id) {
        return None;
    }
    t.partition(partition).ok()
}

/// A producer whose writes to many partitions, and consumer-group offset commits, become
/// visible to `read_committed` readers all at once or not at all.
///
/// Creating one with a transactional id fences every older producer with the same id
/// (their next call fails with [`Error::ProducerFenced`]) and finishes their open
/// transaction first.
///
/// ```
/// use freshet_log::{Acks, Isolation, Log, Record, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path())?;
/// log.create_topic("out", TopicConfig::partitions(1))?;
/// let mut tx = log.transactional_producer("app-0", Acks::Written)?;
/// tx.begin()?;
/// tx.append("out", 0, &[Record::new("k", "v")])?;
/// assert!(log.read("out", 0, 0, 1 << 20, Isolation::ReadCommitted)?.is_empty());
/// tx.commit()?;
/// assert_eq!(log.read("out", 0, 0, 1 << 20, Isolation::ReadCommitted)?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TransactionalProducer {
    log: Log,
    id: String,
    stamp: ProducerStamp,
    acks: Acks,
    in_txn: bool,
}

impl Log {
    /// A transactional producer for `transactional_id` (Kafka's `initTransactions`).
    pub fn transactional_producer(
        &self,
        transactional_id: &str,
        acks: Acks,
    ) -> Result<TransactionalProducer> {
        self.check_writable("init transactions")?;
        let stamp = self.inner.txn.init(&self.inner, transactional_id, acks)?;
        Ok(TransactionalProducer {
            log: self.clone(),
            id: transactional_id.to_string(),
            stamp,
            acks,
            in_txn: false,
        })
    }
}

impl TransactionalProducer {
    /// The transactional id.
    pub fn transactional_id(&self) -> &str {
        &self.id
    }

    /// The producer id and epoch this producer writes with.
    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        (self.stamp.producer_id, self.stamp.epoch)
    }

    /// Starts a transaction.
    pub fn begin(&mut self) -> Result<()> {
        if self.in_txn {
            return Err(self.state_error("a transaction is already open"));
        }
        let mut t = self.log.inner.txn.table.lock();
        TxnCoordinator::check(&mut t, &self.id, self.stamp)?;
        self.in_txn = true;
        Ok(())
    }

    /// A partition refusing a transactional batch usually means a newer producer fenced this
    /// one in between: say so.
    fn fenced_or(&self, e: Error) -> Error {
        let mut t = self.log.inner.txn.table.lock();
        match TxnCoordinator::check(&mut t, &self.id, self.stamp) {
            Err(fenced) => fenced,
            Ok(_) => e,
        }
    }

    fn state_error(&self, reason: &str) -> Error {
        Error::InvalidTxnState {
            transactional_id: self.id.clone(),
            reason: reason.to_string(),
        }
    }

    /// Appends records to one partition inside the open transaction, as one batch.
    pub fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<AppendResult> {
        self.append_any(topic, partition, records)
    }

    /// [`append`](TransactionalProducer::append) of records whose fields are borrowed
    /// (a writer's own buffers): encoded straight from them.
    pub fn append_refs(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[RecordRef<'_>],
    ) -> Result<AppendResult> {
        self.append_any(topic, partition, records)
    }

    /// [`append`](Self::append) of a batch the writer encoded
    /// ([`BatchBuilder`](crate::BatchBuilder)).
    pub fn append_batch(
        &mut self,
        topic: &str,
        partition: u32,
        batch: crate::BatchBuilder,
    ) -> Result<AppendResult> {
        self.append_with(topic, partition, |p, stamp, acks| {
            p.append_encoded(batch.enc, Some(stamp), acks)
        })
    }

    /// Adds the partition to the open transaction (refused outside one) and appends to it
    /// with `append`.
    fn append_with(
        &mut self,
        topic: &str,
        partition: u32,
        append: impl FnOnce(&Partition, ProducerStamp, Acks) -> Result<(i64, i64)>,
    ) -> Result<AppendResult> {
        if !self.in_txn {
            return Err(self.state_error("append outside a transaction; call begin first"));
        }
        self.log.check_writable("transactional append")?;
        let t = self.log.topic(topic)?;
        let topic_id = t.meta.read().id;
        let p = t.partition(partition)?;
        self.log.inner.txn.add_partition(
            &self.id,
            self.stamp,
            topic,
            Some(topic_id),
            &p,
            self.acks,
        )?;
        let (base_offset, last_offset) =
            append(&p, self.stamp, self.acks).map_err(|e| self.fenced_or(e))?;
        self.log.inner.notify.notify_waiters();
        Ok(AppendResult {
            partition,
            base_offset,
            last_offset,
        })
    }

    fn append_any<R: AsRecordRef>(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[R],
    ) -> Result<AppendResult> {
        self.append_with(topic, partition, |p, stamp, acks| {
            p.append(records, Some(stamp), acks)
        })
    }

    /// Appends one record inside the transaction, choosing the partition with Kafka's default
    /// partitioner (a null key goes to partition 0 of the transaction's choice: the first).
    pub fn send(&mut self, topic: &str, record: Record) -> Result<AppendResult> {
        let n = self.log.partition_count(topic)?;
        let partition = record.key.as_deref().map_or(0, |k| partition_for_key(k, n));
        self.append(topic, partition, &[record])
    }

    /// Adds consumer-group offset commits to the transaction (Kafka's
    /// `sendOffsetsToTransaction`); they take effect only if the transaction commits.
    /// `generation` is the member's group generation (`None` for a group without members),
    /// checked now so a member fenced by a rebalance cannot commit.
    pub fn send_offsets(
        &mut self,
        group: &str,
        generation: Option<i32>,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) -> Result<()> {
        if !self.in_txn {
            return Err(self.state_error("send_offsets outside a transaction; call begin first"));
        }
        let inner = &self.log.inner;
        inner.groups.check_generation(group, generation)?;
        let (partition, records) = inner.groups.offset_records(group, offsets)?;
        inner.txn.add_partition(
            &self.id,
            self.stamp,
            OFFSETS_TOPIC,
            None,
            &partition,
            self.acks,
        )?;
        partition
            .append(&records, Some(self.stamp), self.acks)
            .map_err(|e| self.fenced_or(e))?;
        inner
            .groups
            .add_pending(self.stamp.producer_id, group, offsets);
        Ok(())
    }

    /// Commits the open transaction: everything it wrote becomes visible at once.
    pub fn commit(&mut self) -> Result<()> {
        self.end(true)
    }

    /// Aborts the open transaction: nothing it wrote is ever visible to read_committed.
    pub fn abort(&mut self) -> Result<()> {
        self.end(false)
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        if !self.in_txn {
            return Err(self.state_error("no open transaction"));
        }
        self.log.check_writable("end transaction")?;
        let inner = &self.log.inner;
        let mut t = inner.txn.table.lock();
        TxnCoordinator::check(&mut t, &self.id, self.stamp)?;
        inner
            .txn
            .finish(&mut t, inner, &self.id, commit, self.acks)?;
        self.in_txn = false;
        Ok(())
    }
}

/// Settings of the log's internal partitions: compacted, with 100 MiB segments (Kafka's
/// offsets topic uses the same) so compaction gets sealed segments to work on.
pub(crate) fn internal_topic_config() -> Result<TopicConfig> {
    TopicConfig::partitions(1)
        .with("cleanup.policy", "compact")?
        .with("segment.bytes", "104857600")
}
