//! Failed commits: a broker whose transactions sometimes fail to append or to commit. Each
//! failure aborts the thread's transaction and restarts its tasks from committed state (no
//! wipe); the exactly-once output must still be exact.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use freshet_log::{
    Acks, AppendResult, Broker, BrokerTransaction, FetchOptions, FetchPosition, FetchedRecords,
    GroupMember, Log, MemberConfig, OffsetAndMetadata, PartitionOffsets, Record, Result,
    TopicConfig, TopicDescription, TransactionalProducer,
};
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder};

/// The embedded log, with the transactional appends and commits numbered in `fail_at`
/// failing.
#[derive(Debug)]
struct FlakyLog {
    log: Arc<Log>,
    calls: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    fail_at: &'static [u64],
}

#[derive(Debug)]
struct FlakyTxn {
    inner: TransactionalProducer,
    calls: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    fail_at: &'static [u64],
}

impl FlakyTxn {
    fn maybe_fail(&self) -> Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at.contains(&n) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(freshet_log::Error::InvalidTxnState {
                transactional_id: self.inner.transactional_id().to_string(),
                reason: format!("injected failure #{n}"),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl BrokerTransaction for FlakyTxn {
    async fn begin(&mut self) -> Result<()> {
        self.inner.begin()
    }
    async fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<AppendResult> {
        self.maybe_fail()?;
        self.inner.append(topic, partition, records)
    }
    async fn send_offsets(
        &mut self,
        group: &str,
        generation: Option<i32>,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) -> Result<()> {
        self.inner.send_offsets(group, generation, offsets)
    }
    async fn commit(&mut self) -> Result<()> {
        self.maybe_fail()?;
        self.inner.commit()
    }
    async fn abort(&mut self) -> Result<()> {
        self.inner.abort()
    }
}

#[async_trait]
impl Broker for FlakyLog {
    type Transaction = FlakyTxn;
    type Member = GroupMember;

    async fn create_topic(&self, name: &str, config: TopicConfig) -> Result<TopicDescription> {
        self.log.create_topic(name, config)
    }
    async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.log.describe_topic(name)
    }
    async fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets> {
        self.log.offsets(topic, partition)
    }
    async fn fetch(
        &self,
        positions: &[FetchPosition],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedRecords>> {
        self.log.fetch(positions, options).await
    }
    async fn append(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record],
        acks: Acks,
    ) -> Result<AppendResult> {
        self.log.append(topic, partition, records, acks)
    }
    async fn transaction(&self, transactional_id: &str, acks: Acks) -> Result<FlakyTxn> {
        Ok(FlakyTxn {
            inner: self.log.transactional_producer(transactional_id, acks)?,
            calls: self.calls.clone(),
            failures: self.failures.clone(),
            fail_at: self.fail_at,
        })
    }
    async fn delete_records(&self, topic: &str, partition: u32, below: i64) -> Result<i64> {
        self.log.delete_records(topic, partition, below)
    }
    async fn join_group(
        &self,
        group: &str,
        topics: &[&str],
        config: MemberConfig,
    ) -> Result<GroupMember> {
        self.log.join_group(group, topics, config)
    }
    async fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<OffsetAndMetadata>> {
        self.log.committed_offset(group, topic, partition)
    }
}

#[tokio::test]
async fn failed_commits_abort_and_resume_from_committed_state() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 3)?;
    let views = page_views(0, 3_000, 23, 11, 1_000);
    produce(&log, "views", &views)?;
    let flaky = Arc::new(FlakyLog {
        log: log.clone(),
        calls: Arc::new(AtomicU64::new(0)),
        failures: Arc::new(AtomicU64::new(0)),
        fail_at: &[2, 9, 16, 40],
    });
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("views")
        .group_by(|_user, page| page.clone())
        .count_with(Materialized::named("counts").with_caching_disabled())
        .to_stream()
        .to("page-counts");
    let config =
        StreamsConfig::new("flaky").with_commit_interval(std::time::Duration::from_millis(5));
    // The app's own directory default needs the embedded log; this broker is another type.
    let config = config.with_data_dir(dir.path());
    let mut app = StreamsApp::start(config, builder.build()?, flaky.clone()).await?;
    app.wait_until_caught_up().await?;
    let m = app.metrics();
    let failed: u64 = m.threads.iter().map(|t| t.failed_commits).sum();
    app.close().await?;
    let calls = flaky.calls.load(Ordering::SeqCst);
    assert!(calls >= 16, "only {calls} transactional calls");
    assert!(
        flaky.failures.load(Ordering::SeqCst) >= 3,
        "failures were injected"
    );
    assert!(failed > 0, "the thread saw failed commits: {m:?}");

    let expected = expected_page_counts(&views);
    let got = counts_by_key(&log, "page-counts")?;
    for (page, n) in expected {
        assert_eq!(got[&page], (1..=n).collect::<Vec<_>>(), "updates of {page}");
    }
    Ok(())
}
