//! The log seam: the one trait the runtime uses to reach a log, so the embedded log and
//! (later) a Kafka client plug in behind it.
//!
//! It speaks in Kafka's concepts only — topics with ids, partitions, offsets, transactions,
//! groups — and never in terms of segments or files.

use async_trait::async_trait;

use crate::builder::BatchBuilder;
use crate::config::{Acks, TopicConfig};
use crate::consumer::{FetchOptions, FetchPosition, FetchedBatches, FetchedRecords};
use crate::error::Result;
use crate::group::{GroupMember, MemberConfig, OffsetAndMetadata, RebalanceEvent};
use crate::log::{AppendResult, Log};
use crate::partition::PartitionOffsets;
use crate::record::{Record, RecordRef};
use crate::topic::TopicDescription;
use crate::txn::TransactionalProducer;

/// A log the runtime can run over.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// A transaction session (one per stream thread).
    type Transaction: BrokerTransaction + 'static;
    /// A consumer-group membership.
    type Member: BrokerMember;

    /// Creates a topic.
    async fn create_topic(&self, name: &str, config: TopicConfig) -> Result<TopicDescription>;
    /// Describes a topic (id, partition count, settings, offsets).
    async fn describe_topic(&self, name: &str) -> Result<TopicDescription>;
    /// Start, end and last stable offsets of a partition.
    async fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets>;
    /// Fetches from many partitions with one await until any has data.
    async fn fetch(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedRecords>>;
    /// [`fetch`](Broker::fetch), the records kept in the log's batches (no record
    /// materialized: a stream thread reads each once, in place). The default materializes
    /// them with `fetch`.
    async fn fetch_batches(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedBatches>> {
        let fetched = self.fetch(positions, options).await?;
        Ok(fetched.into_iter().map(FetchedBatches::from).collect())
    }
    /// Appends a batch to one partition outside any transaction.
    async fn append(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record],
        acks: Acks,
    ) -> Result<AppendResult>;
    /// [`append`](Broker::append) of records whose fields are borrowed (the writer's own
    /// buffers). The default copies them into [`Record`]s; the embedded log encodes them
    /// in place.
    async fn append_refs(
        &self,
        topic: &str,
        partition: u32,
        records: &[RecordRef<'_>],
        acks: Acks,
    ) -> Result<AppendResult> {
        let owned: Vec<Record> = records.iter().map(|r| Record::from(*r)).collect();
        self.append(topic, partition, &owned, acks).await
    }
    /// [`append`](Broker::append) of records the writer encoded into a batch. The default
    /// decodes them into [`Record`]s; the embedded log appends the batch as it is.
    async fn append_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: BatchBuilder,
        acks: Acks,
    ) -> Result<AppendResult> {
        let owned = batch.to_records()?;
        self.append(topic, partition, &owned, acks).await
    }
    /// Starts a transactional session, fencing older ones with the same id.
    async fn transaction(&self, transactional_id: &str, acks: Acks) -> Result<Self::Transaction>;
    /// Advances a partition's start offset (purges repartition topics).
    async fn delete_records(&self, topic: &str, partition: u32, below: i64) -> Result<i64>;
    /// Joins a consumer group.
    async fn join_group(
        &self,
        group: &str,
        topics: &[&str],
        config: MemberConfig,
    ) -> Result<Self::Member>;
    /// A group's committed offset for a partition.
    async fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<OffsetAndMetadata>>;
}

/// A transactional session: appends and offset commits that commit or abort together.
#[async_trait]
pub trait BrokerTransaction: Send {
    /// Begins a transaction.
    async fn begin(&mut self) -> Result<()>;
    /// Appends a batch to a partition inside the transaction.
    async fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<AppendResult>;
    /// [`append`](BrokerTransaction::append) of records whose fields are borrowed. The
    /// default copies them into [`Record`]s; the embedded log encodes them in place.
    async fn append_refs(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[RecordRef<'_>],
    ) -> Result<AppendResult> {
        let owned: Vec<Record> = records.iter().map(|r| Record::from(*r)).collect();
        self.append(topic, partition, &owned).await
    }
    /// [`append`](BrokerTransaction::append) of records the writer encoded into a batch.
    /// The default decodes them into [`Record`]s; the embedded log appends the batch as it
    /// is.
    async fn append_batch(
        &mut self,
        topic: &str,
        partition: u32,
        batch: BatchBuilder,
    ) -> Result<AppendResult> {
        let owned = batch.to_records()?;
        self.append(topic, partition, &owned).await
    }
    /// Adds offset commits (with the member's generation) to the transaction.
    async fn send_offsets(
        &mut self,
        group: &str,
        generation: Option<i32>,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) -> Result<()>;
    /// Commits.
    async fn commit(&mut self) -> Result<()>;
    /// Aborts.
    async fn abort(&mut self) -> Result<()>;
}

/// A consumer-group membership.
#[async_trait]
pub trait BrokerMember: Send {
    /// Heartbeats and takes part in rebalances.
    async fn poll(&mut self) -> Result<RebalanceEvent>;
    /// The current generation.
    fn generation(&self) -> i32;
    /// The owned partitions.
    fn assignment(&self) -> Vec<(String, u32)>;
    /// Commits offsets under the member's generation.
    async fn commit(&mut self, offsets: &[(String, u32, OffsetAndMetadata)]) -> Result<()>;
}

#[async_trait]
impl Broker for Log {
    type Transaction = TransactionalProducer;
    type Member = GroupMember;

    async fn create_topic(&self, name: &str, config: TopicConfig) -> Result<TopicDescription> {
        Log::create_topic(self, name, config)
    }
    async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        Log::describe_topic(self, name)
    }
    async fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets> {
        Log::offsets(self, topic, partition)
    }
    async fn fetch(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedRecords>> {
        Log::fetch(self, positions, options).await
    }
    async fn fetch_batches(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedBatches>> {
        Log::fetch_batches(self, positions, options).await
    }
    async fn append(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record],
        acks: Acks,
    ) -> Result<AppendResult> {
        Log::append(self, topic, partition, records, acks)
    }
    async fn append_refs(
        &self,
        topic: &str,
        partition: u32,
        records: &[RecordRef<'_>],
        acks: Acks,
    ) -> Result<AppendResult> {
        Log::append_refs(self, topic, partition, records, acks)
    }
    async fn append_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: BatchBuilder,
        acks: Acks,
    ) -> Result<AppendResult> {
        Log::append_batch(self, topic, partition, batch, acks)
    }
    async fn transaction(
        &self,
        transactional_id: &str,
        acks: Acks,
    ) -> Result<TransactionalProducer> {
        self.transactional_producer(transactional_id, acks)
    }
    async fn delete_records(&self, topic: &str, partition: u32, below: i64) -> Result<i64> {
        Log::delete_records(self, topic, partition, below)
    }
    async fn join_group(
        &self,
        group: &str,
        topics: &[&str],
        config: MemberConfig,
    ) -> Result<GroupMember> {
        Log::join_group(self, group, topics, config)
    }
    async fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<OffsetAndMetadata>> {
        Log::committed_offset(self, group, topic, partition)
    }
}

#[async_trait]
impl BrokerTransaction for TransactionalProducer {
    async fn begin(&mut self) -> Result<()> {
        TransactionalProducer::begin(self)
    }
    async fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<AppendResult> {
        TransactionalProducer::append(self, topic, partition, records)
    }
    async fn append_refs(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[RecordRef<'_>],
    ) -> Result<AppendResult> {
        TransactionalProducer::append_refs(self, topic, partition, records)
    }
    async fn append_batch(
        &mut self,
        topic: &str,
        partition: u32,
        batch: BatchBuilder,
    ) -> Result<AppendResult> {
        TransactionalProducer::append_batch(self, topic, partition, batch)
    }
    async fn send_offsets(
        &mut self,
        group: &str,
        generation: Option<i32>,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) -> Result<()> {
        TransactionalProducer::send_offsets(self, group, generation, offsets)
    }
    async fn commit(&mut self) -> Result<()> {
        TransactionalProducer::commit(self)
    }
    async fn abort(&mut self) -> Result<()> {
        TransactionalProducer::abort(self)
    }
}

#[async_trait]
impl BrokerMember for GroupMember {
    async fn poll(&mut self) -> Result<RebalanceEvent> {
        GroupMember::poll(self)
    }
    fn generation(&self) -> i32 {
        GroupMember::generation(self)
    }
    fn assignment(&self) -> Vec<(String, u32)> {
        GroupMember::assignment(self).to_vec()
    }
    async fn commit(&mut self, offsets: &[(String, u32, OffsetAndMetadata)]) -> Result<()> {
        GroupMember::commit(self, offsets)
    }
}
