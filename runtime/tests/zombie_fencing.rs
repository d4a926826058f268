//! A zombie: a stream thread stalls past its session timeout (here, a fetch that hangs), the
//! group drops it and another instance takes its tasks. When the stalled thread wakes, it
//! processes what it fetched and commits — with its old generation, so the offsets are
//! refused and its transaction aborts; it drops its tasks and joins again. The exactly-once
//! output stays exact.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use freshet_log::{
    Acks, AppendResult, Broker, FetchOptions, FetchPosition, FetchedRecords, GroupMember, Log,
    MemberConfig, OffsetAndMetadata, PartitionOffsets, Record, Result, TopicConfig,
    TopicDescription, TransactionalProducer,
};
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, Topology};

/// The embedded log, with the next fetch stalled for `stall_ms` when set.
#[derive(Debug)]
struct StallingLog {
    log: Arc<Log>,
    stall_ms: Arc<AtomicU64>,
}

#[async_trait]
impl Broker for StallingLog {
    type Transaction = TransactionalProducer;
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
        let stall = self.stall_ms.swap(0, Ordering::SeqCst);
        if stall > 0 {
            // Blocks the thread, as a stuck thread would (no heartbeat meanwhile).
            std::thread::sleep(Duration::from_millis(stall));
        }
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
    async fn transaction(&self, id: &str, acks: Acks) -> Result<TransactionalProducer> {
        self.log.transactional_producer(id, acks)
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

fn page_counts() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("views")
        .group_by(|_user, page| page.clone())
        .count_with(Materialized::named("counts").with_caching_disabled())
        .to_stream()
        .to("page-counts");
    builder.build()
}

fn config(dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new("zombies")
        .with_data_dir(dir)
        .with_session_timeout(Duration::from_millis(500))
        .with_commit_interval(Duration::from_millis(20))
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) -> TestResult {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("timed out waiting until {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_thread_is_fenced_and_its_work_redone_once() -> TestResult {
    const CHUNK: usize = 1_000;
    const CHUNKS: usize = 40;
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 2)?;
    let all = page_views(0, CHUNK * CHUNKS, 29, 11, 1_000);
    let stall_ms = Arc::new(AtomicU64::new(0));
    let stalling = Arc::new(StallingLog {
        log: log.clone(),
        stall_ms: stall_ms.clone(),
    });

    let mut a = StreamsApp::start(config(dir.path()), page_counts()?, stalling).await?;
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (log, all, done) = (log.clone(), all.clone(), done.clone());
        std::thread::spawn(move || -> std::result::Result<(), String> {
            for chunk in all.chunks(CHUNK) {
                produce(&log, "views", chunk).map_err(|e| e.to_string())?;
                std::thread::sleep(Duration::from_millis(25));
            }
            done.store(true, Ordering::SeqCst);
            Ok(())
        })
    };
    eventually("the first instance processed some", || {
        a.metrics().records_in() > 2_000
    })
    .await?;
    let mut b = StreamsApp::start(config(dir.path()), page_counts()?, log.clone()).await?;
    eventually("the instances share the tasks", || {
        b.metrics().records_in() > 500 && a.metrics().tasks.len() < 4
    })
    .await?;

    // The first instance's thread hangs in a fetch for four session timeouts.
    stall_ms.store(2_000, Ordering::SeqCst);
    eventually("the stalled thread was fenced", || {
        a.metrics().threads.iter().any(|t| t.failed_commits > 0)
    })
    .await?;
    producer.join().map_err(|_| "producer panicked")??;
    assert!(done.load(Ordering::SeqCst));

    let expected = expected_page_counts(&all);
    eventually("every count is complete", || {
        let Ok(got) = counts_by_key(&log, "page-counts") else {
            return false;
        };
        expected
            .iter()
            .all(|(page, n)| got.get(page).and_then(|v| v.last()) == Some(n))
    })
    .await?;
    a.close().await?;
    b.close().await?;
    let got: BTreeMap<String, Vec<i64>> = counts_by_key(&log, "page-counts")?;
    for (page, n) in &expected {
        assert_eq!(
            got.get(page),
            Some(&(1..=*n).collect::<Vec<_>>()),
            "updates of {page}: the zombie's work was not committed twice"
        );
    }
    Ok(())
}
