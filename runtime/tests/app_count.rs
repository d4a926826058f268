//! End to end on the embedded log: a count per key behind a repartition (`group_by`) on
//! several partitions, exact under exactly-once — across clean restarts, and with the local
//! state deleted (restored from the changelogs).

mod common;

use std::collections::BTreeMap;

use common::*;
use freshet_log::Log;
use freshet_runtime::{AppState, StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, Topology};

/// Views per page: re-keys `views` (user → page) by page, counts with the cache off so
/// every update goes downstream, writes `page-counts`.
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

fn config() -> StreamsConfig {
    StreamsConfig::new("pages").with_num_stream_threads(2)
}

/// Every key's updates are exactly 1, 2, …, its total: nothing lost, nothing twice.
fn assert_exact(log: &Log, expected: &BTreeMap<String, i64>) -> TestResult {
    let got = counts_by_key(log, "page-counts")?;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (page, n) in expected {
        let want: Vec<i64> = (1..=*n).collect();
        assert_eq!(got[page], want, "updates of {page}");
    }
    Ok(())
}

async fn run_once(
    log: &std::sync::Arc<Log>,
    expected: &BTreeMap<String, i64>,
) -> TestResult<freshet_runtime::AppMetrics> {
    let mut app = StreamsApp::start(config(), page_counts()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    let counts = app.store::<String, i64>("counts")?;
    for (page, n) in expected {
        assert_eq!(counts.get(page)?, Some(*n), "interactive query of {page}");
    }
    assert_eq!(counts.all()?.len(), expected.len());
    assert_eq!(counts.get(&"/nowhere".to_string())?, None);
    let metrics = app.metrics();
    app.close().await?;
    assert_eq!(app.state(), AppState::NotRunning);
    assert!(
        counts.get(&"/p0".to_string()).is_err(),
        "no queries after close"
    );
    Ok(metrics)
}

#[tokio::test]
async fn counts_behind_a_repartition_are_exact_under_exactly_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 3)?;
    let views = page_views(0, 900, 23, 11, 1_000);
    produce(&log, "views", &views)?;
    let expected = expected_page_counts(&views);
    let metrics = run_once(&log, &expected).await?;
    assert_exact(&log, &expected)?;

    let repartition = log.describe_topic("pages-counts-repartition")?;
    assert_eq!(repartition.config.partitions, 3, "the max of its sources");
    let changelog = log.describe_topic("pages-counts-changelog")?;
    assert_eq!(changelog.config.partitions, 3, "one partition per task");
    assert_eq!(changelog.config.to_map()["cleanup.policy"], "compact");
    assert_eq!(
        metrics.tasks.len(),
        6,
        "two sub-topologies over three partitions"
    );
    assert_eq!(
        metrics.records_in(),
        1800,
        "each view read from views and the repartition topic"
    );
    assert!(metrics.commits() > 0);
    Ok(())
}

#[tokio::test]
async fn a_restart_after_a_clean_close_resumes_without_duplicates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 3)?;
    let first = page_views(0, 400, 23, 11, 1_000);
    produce(&log, "views", &first)?;
    run_once(&log, &expected_page_counts(&first)).await?;

    let all = page_views(0, 1_000, 23, 11, 1_000);
    produce(&log, "views", &all[400..])?;
    let expected = expected_page_counts(&all);
    let metrics = run_once(&log, &expected).await?;
    assert_exact(&log, &expected)?;
    for t in &metrics.tasks {
        assert!(
            t.restore.done && !t.restore.wiped,
            "task {}: {:?}",
            t.task,
            t.restore
        );
        assert_eq!(
            t.restore.records_read, 0,
            "sled held the committed state: nothing to replay"
        );
        assert!(
            t.restore.records_to_read <= 1,
            "at most the last commit's marker: {:?}",
            t.restore
        );
    }
    // The repartition topic was purged below the committed offsets at close.
    for p in 0..3 {
        let o = log.offsets("pages-counts-repartition", p)?;
        assert!(o.start > 0, "partition {p} purged: {o:?}");
    }
    Ok(())
}

#[tokio::test]
async fn state_is_restored_from_changelogs_after_the_state_dir_is_deleted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 3)?;
    let first = page_views(0, 500, 23, 11, 1_000);
    produce(&log, "views", &first)?;
    run_once(&log, &expected_page_counts(&first)).await?;

    let app = StreamsApp::new(config(), page_counts()?, log.clone())?;
    assert!(app.state_dir().join("sled").exists());
    app.cleanup()?;
    // Only the instance's lock and id are left.
    assert!(!app.state_dir().join("sled").exists());
    let mut left: Vec<String> = std::fs::read_dir(app.state_dir())?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    left.sort();
    assert_eq!(left, [".lock", "instance.id"]);
    drop(app);

    let all = page_views(0, 800, 23, 11, 1_000);
    produce(&log, "views", &all[500..])?;
    let expected = expected_page_counts(&all);
    let metrics = run_once(&log, &expected).await?;
    assert_exact(&log, &expected)?;
    let restored: u64 = metrics.tasks.iter().map(|t| t.restore.records_read).sum();
    assert!(
        restored >= 11,
        "every page's count came back from the changelog ({restored} read)"
    );
    assert!(metrics.tasks.iter().any(|t| t.restore.wiped));
    Ok(())
}

#[tokio::test]
async fn cleanup_is_refused_while_running() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 2)?;
    let mut app = StreamsApp::start(config(), page_counts()?, log.clone()).await?;
    assert!(matches!(
        app.cleanup(),
        Err(freshet_runtime::Error::InvalidState {
            state: AppState::Running,
            ..
        })
    ));
    app.close().await?;
    app.cleanup()?;
    Ok(())
}

#[tokio::test]
async fn a_full_write_buffer_commits_before_the_interval() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 1)?;
    let views = page_views(0, 3_000, 23, 2_000, 1_000);
    produce(&log, "views", &views)?;
    let config = StreamsConfig::new("tiny")
        .with_commit_interval(std::time::Duration::from_secs(3_600))
        .with_write_buffer_max_bytes(2_000);
    let mut app = StreamsApp::start(config, page_counts()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    let commits = app.metrics().commits();
    app.close().await?;
    assert!(
        commits >= 10,
        "{commits} commits: the write buffer's soft limit forces them"
    );
    assert_exact(&log, &expected_page_counts(&views))?;
    Ok(())
}
