//! The lag in `app.metrics()` is current once the app has caught up: measured again when a
//! thread has committed everything and is idle, and at close — not left at a value from
//! the middle of the backlog (the lag is otherwise measured at most once a second, at a
//! commit).

mod common;

use std::time::{Duration, Instant};

use common::*;
use freshet_runtime::{AppMetrics, StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, Topology};

/// A count per page (no repartition: the views are keyed by page).
fn page_counts() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("views")
        .group_by_key()
        .count_with(Materialized::named("counts"))
        .to_stream()
        .to("page-counts");
    builder.build()
}

/// Commits every millisecond, so that the lag is first measured early in the backlog.
fn config() -> StreamsConfig {
    StreamsConfig::new("lag").with_commit_interval(Duration::from_millis(1))
}

/// `n` views keyed by page.
fn views(n: usize) -> Vec<(String, String, i64)> {
    page_views(0, n, 17, 13, 1_000)
        .into_iter()
        .map(|(user, page, ts)| (page, user, ts))
        .collect()
}

fn assert_caught_up(metrics: &AppMetrics, records: u64) {
    assert_eq!(metrics.records_in(), records);
    assert_eq!(metrics.lag(), 0, "{}", metrics.line());
    for t in &metrics.tasks {
        assert_eq!(t.lag, Some(0), "task {}: {}", t.task, metrics.line());
    }
    assert!(metrics.line().contains("lag 0 "), "{}", metrics.line());
}

#[tokio::test]
async fn lag_is_zero_after_run_until_caught_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 2)?;
    produce(&log, "views", &views(20_000))?;
    let mut app = StreamsApp::start(config(), page_counts()?, log.clone()).await?;
    app.run_until_caught_up().await?;
    assert_caught_up(&app.metrics(), 20_000);
    Ok(())
}

#[tokio::test]
async fn lag_is_zero_once_caught_up_while_running() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 2)?;
    produce(&log, "views", &views(20_000))?;
    let mut app = StreamsApp::start(config(), page_counts()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    assert_caught_up(&app.metrics(), 20_000);
    // More input while running (past the end offsets `wait_until_caught_up` covers): the
    // lag comes back to 0 once it is processed and the threads are idle.
    produce(&log, "views", &views(5_000))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = app.metrics();
        if m.records_in() == 25_000 && m.lag() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still {}", m.line());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_caught_up(&app.metrics(), 25_000);
    app.close().await?;
    assert_caught_up(&app.metrics(), 25_000);
    Ok(())
}
