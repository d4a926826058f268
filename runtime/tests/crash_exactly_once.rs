//! Exactly-once through crashes: a child process runs a count per key behind a repartition
//! on 3 partitions and is SIGKILLed at random moments, over and over; then a run completes.
//! Every key's updates on the output topic must be exactly 1, 2, …, its total (nothing lost,
//! nothing committed twice), and no restart may wipe a store (the first, uninterrupted run
//! applied every store, so each restart replays only the changelog's tail).
//!
//! `FRESHET_CRASH_ROUNDS` sets the number of kill rounds (default 10).

#[path = "../../log/tests/common/child.rs"]
mod child;
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use child::ChildProc;
use common::*;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, Topology};

const DIR_ENV: &str = "FRESHET_RUNTIME_CRASH_DIR";

fn rounds() -> u64 {
    std::env::var("FRESHET_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(10)
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

/// The child: runs the app until caught up, printing how it went.
#[test]
#[ignore = "run by exactly_once_counts_survive_sigkill in a child process"]
fn crash_child() -> TestResult {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return Ok(());
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        println!();
        let log = open_log(Path::new(&dir))?;
        let config = StreamsConfig::new("crashy")
            .with_num_stream_threads(2)
            .with_commit_interval(Duration::from_millis(20));
        let mut app = StreamsApp::start(config, page_counts()?, log).await?;
        let wiped = app
            .metrics()
            .tasks
            .iter()
            .filter(|t| t.restore.wiped)
            .count();
        println!("running wiped={wiped}");
        app.wait_until_caught_up().await?;
        println!("caught-up");
        app.close().await?;
        println!("done");
        Ok(())
    })
}

/// A small xorshift generator: the kill moments, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn run_to_completion(dir: &Path) -> TestResult<Vec<String>> {
    let mut child = ChildProc::spawn("crash_child", &[(DIR_ENV, dir.display().to_string())])?;
    child.wait_for_line("done", Duration::from_secs(300))?;
    Ok(child.kill_and_collect()?)
}

#[test]
fn exactly_once_counts_survive_sigkill() -> TestResult {
    const CHUNK: usize = 20_000;
    let dir = tempfile::tempdir()?;
    let rounds = rounds() as usize;
    let all = page_views(0, 2_000 + rounds * CHUNK, 31, 13, 1_000);
    {
        let log = open_log(dir.path())?;
        create(&log, "views", 3)?;
        produce(&log, "views", &all[..2_000])?;
    }
    let first = run_to_completion(dir.path())?;
    assert!(first.iter().any(|l| l == "caught-up"), "{first:?}");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    println!("kill moments seed {seed}");
    let mut rng = Rng(seed);
    let mut interrupted = 0;
    for round in 0..rounds {
        // New input for every round (the log is the child's while it runs).
        {
            let log = open_log(dir.path())?;
            let from = 2_000 + round * CHUNK;
            produce(&log, "views", &all[from..from + CHUNK])?;
        }
        let mut child = ChildProc::spawn(
            "crash_child",
            &[(DIR_ENV, dir.path().display().to_string())],
        )?;
        // Kill anywhere: mostly while processing, sometimes during start and restore.
        let after = Duration::from_millis(rng.next() % 250);
        let wait = (rng.next() >> 32) % 4 != 0;
        if wait {
            child.wait_for_line_starting("running wiped=", Duration::from_secs(120))?;
        }
        std::thread::sleep(after);
        let lines = child.kill_and_collect()?;
        if !lines.iter().any(|l| l == "caught-up") {
            interrupted += 1;
        }
        println!(
            "round {round}: killed {after:?} after {}: {lines:?}",
            if wait { "running" } else { "spawning" }
        );
        for l in &lines {
            if let Some(w) = l.strip_prefix("running wiped=") {
                assert_eq!(w, "0", "round {round}: a restart wiped a store ({lines:?})");
            }
        }
    }
    println!("{interrupted} of {rounds} rounds were killed before catching up");
    let last = run_to_completion(dir.path())?;
    assert!(last.iter().any(|l| l == "running wiped=0"), "{last:?}");

    let log = open_log(dir.path())?;
    let got = counts_by_key(&log, "page-counts")?;
    let expected = expected_page_counts(&all);
    let mut wrong = BTreeMap::new();
    for (page, n) in &expected {
        let want: Vec<i64> = (1..=*n).collect();
        if got.get(page) != Some(&want) {
            wrong.insert(page.clone(), got.get(page).map(|v| v.len()));
        }
    }
    assert!(
        wrong.is_empty(),
        "keys with lost or repeated updates (updates seen): {wrong:?}"
    );
    assert_eq!(got.len(), expected.len());
    Ok(())
}
