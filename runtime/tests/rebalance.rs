//! Several instances of one app in one process share its tasks through the log's consumer
//! group: a second instance starting takes a share of the tasks (the first goes
//! REBALANCING, commits, hands them over), and stopping gives them back; the new owners
//! restore from the changelogs; the exactly-once output stays exact throughout.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use freshet_log::Log;
use freshet_runtime::{AppState, StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, Topology};

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

fn config(threads: usize) -> StreamsConfig {
    StreamsConfig::new("shared")
        .with_num_stream_threads(threads)
        .with_commit_interval(Duration::from_millis(20))
}

/// Waits until `done` holds, failing after `limit`.
async fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> TestResult {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return Err(format!("timed out waiting until {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Whether every page's last committed count is its expected total.
fn complete(log: &Log, expected: &BTreeMap<String, i64>) -> TestResult<bool> {
    let got = counts_by_key(log, "page-counts")?;
    Ok(expected
        .iter()
        .all(|(page, n)| got.get(page).and_then(|v| v.last()) == Some(n)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_takes_tasks_and_gives_them_back_exactly_once() -> TestResult {
    const CHUNK: usize = 1_500;
    const CHUNKS: usize = 40;
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 3)?;
    let all = page_views(0, CHUNK * CHUNKS, 37, 17, 1_000);

    let mut a = StreamsApp::new(config(2), page_counts()?, log.clone())?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    a.set_state_listener(move |old, new| s.lock().unwrap().push((old, new)));
    a.launch().await?;
    assert_eq!(
        a.metrics().tasks.len(),
        6,
        "alone, the first instance runs every task"
    );

    // Input keeps arriving while instances come and go.
    let produced = Arc::new(AtomicBool::new(false));
    let producer = {
        let (log, all, produced) = (log.clone(), all.clone(), produced.clone());
        std::thread::spawn(move || -> Result<(), String> {
            for chunk in all.chunks(CHUNK) {
                produce(&log, "views", chunk).map_err(|e| e.to_string())?;
                std::thread::sleep(Duration::from_millis(15));
            }
            produced.store(true, Ordering::SeqCst);
            Ok(())
        })
    };
    eventually(
        "the first instance processed some",
        Duration::from_secs(30),
        || a.metrics().records_in() > 3_000,
    )
    .await?;

    let mut b = StreamsApp::start(config(1), page_counts()?, log.clone()).await?;
    assert_ne!(
        b.state_dir(),
        a.state_dir(),
        "each instance has its own state dir"
    );
    assert!(
        b.state_dir().ends_with("shared.instance-2"),
        "{}",
        b.state_dir().display()
    );
    assert_eq!(b.state(), AppState::Running);
    eventually("both instances run", Duration::from_secs(30), || {
        a.state() == AppState::Running
    })
    .await?;
    let (ma, mb) = (a.metrics(), b.metrics());
    assert_eq!(
        (ma.tasks.len(), mb.tasks.len()),
        (4, 2),
        "6 tasks over 3 threads: {ma:?} {mb:?}"
    );
    // Each instance answers queries for the keys of its own tasks only.
    let (qa, qb) = (
        a.store::<String, i64>("counts")?,
        b.store::<String, i64>("counts")?,
    );
    let in_a: Vec<String> = qa.all()?.into_iter().map(|(k, _)| k).collect();
    let in_b: Vec<String> = qb.all()?.into_iter().map(|(k, _)| k).collect();
    assert!(in_a.iter().all(|k| !in_b.contains(k)), "{in_a:?} {in_b:?}");
    for k in &in_a {
        assert!(qa.get(k)?.is_some() && qb.get(k)?.is_none(), "{k}");
    }
    eventually(
        "the second instance processed some",
        Duration::from_secs(30),
        || b.metrics().records_in() > 500,
    )
    .await?;
    b.close().await?;

    eventually(
        "the first instance runs every task again",
        Duration::from_secs(30),
        || a.state() == AppState::Running && a.metrics().tasks.len() == 6,
    )
    .await?;
    producer.join().map_err(|_| "producer panicked")??;
    assert!(produced.load(Ordering::SeqCst));
    let expected = expected_page_counts(&all);
    eventually("every count is complete", Duration::from_secs(60), || {
        complete(&log, &expected).unwrap_or(false)
    })
    .await?;
    let m = a.metrics();
    a.close().await?;

    // The tasks the second instance had came back to the first one's local state (it ran
    // them before): it restored only what the second instance wrote, without a wipe.
    for moved in &mb.tasks {
        let back = m
            .tasks
            .iter()
            .find(|t| t.task == moved.task)
            .ok_or("a task is missing")?;
        assert!(!back.restore.wiped, "{:?} was wiped: {back:?}", moved.task);
        if moved.task.subtopology == 1 {
            assert!(back.restore.records_read > 0, "{back:?} restored the tail");
        }
    }
    let got = counts_by_key(&log, "page-counts")?;
    for (page, n) in &expected {
        assert_eq!(
            got.get(page),
            Some(&(1..=*n).collect::<Vec<_>>()),
            "updates of {page}: nothing lost, nothing twice"
        );
    }
    let seen = seen.lock().unwrap().clone();
    let rebalances = seen
        .iter()
        .filter(|s| **s == (AppState::Running, AppState::Rebalancing))
        .count();
    assert!(
        rebalances >= 2,
        "the first instance rebalanced when the second came and went: {seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_closed_instance_frees_its_state_dir_for_the_next() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 2)?;
    produce(&log, "views", &page_views(0, 200, 7, 5, 0))?;
    let mut a = StreamsApp::start(config(1), page_counts()?, log.clone()).await?;
    let mut b = StreamsApp::start(config(1), page_counts()?, log.clone()).await?;
    let (da, db) = (a.state_dir().to_path_buf(), b.state_dir().to_path_buf());
    assert_ne!(da, db);
    b.close().await?;
    let mut c = StreamsApp::start(config(1), page_counts()?, log.clone()).await?;
    assert_eq!(c.state_dir(), db, "closing freed the directory");
    c.wait_until_caught_up().await?;
    c.close().await?;
    a.wait_until_caught_up().await?;
    a.close().await?;
    let expected = expected_page_counts(&page_views(0, 200, 7, 5, 0));
    let got = counts_by_key(&log, "page-counts")?;
    for (page, n) in &expected {
        assert_eq!(got[page], (1..=*n).collect::<Vec<_>>());
    }
    Ok(())
}
