//! The SIGKILL harness of the runtime's crash tests: a child process (this test binary,
//! running one ignored test) runs an app until it is caught up; the parent appends a chunk
//! of input, starts a child and kills it at a random moment, round after round; then a
//! child runs to completion. A crash-free run of the same input in another directory gives
//! the reference output.
//!
//! `FRESHET_CRASH_ROUNDS` sets the number of kill rounds.
#![allow(dead_code)]

#[path = "../../../log/tests/common/child.rs"]
mod child;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use child::ChildProc;
use freshet_log::Log;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::Topology;

use crate::common::{create, open_log, produce, TestResult};

/// Where the child finds the data directory.
pub(crate) const DIR_ENV: &str = "FRESHET_RUNTIME_CRASH_DIR";

/// Kill rounds: `FRESHET_CRASH_ROUNDS`, else `default`.
pub(crate) fn rounds(default: usize) -> usize {
    std::env::var("FRESHET_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Page views with event times 5 ms apart, except every 50th view, 30 s late (later than
/// any window's grace in these tests, so dropped by windowed operators, always the same
/// ones: each record's lateness depends only on the order of its input partition).
pub(crate) fn views(from: usize, to: usize) -> Vec<(String, String, i64)> {
    (from..to)
        .map(|i| {
            let mut ts = 1_000_000 + i as i64 * 5;
            if i % 50 == 49 {
                ts -= 30_000;
            }
            (format!("u{}", i % 31), format!("/p{}", (i * 7) % 13), ts)
        })
        .collect()
}

/// The child's body: runs the app until caught up in the directory of [`DIR_ENV`],
/// printing `running wiped=<stores wiped at start>`, `caught-up`, `done`. Without the
/// variable (a plain `cargo test --ignored`) it does nothing.
pub(crate) fn child_main(config: StreamsConfig, topology: Topology) -> TestResult {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return Ok(());
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        println!();
        let log = open_log(Path::new(&dir))?;
        let mut app = StreamsApp::start(config, topology, log).await?;
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

/// The same app, crash-free, in this process: runs until caught up and closes.
pub(crate) async fn run_clean(
    log: Arc<Log>,
    config: StreamsConfig,
    topology: Topology,
) -> TestResult {
    let mut app = StreamsApp::start(config, topology, log).await?;
    app.run_until_caught_up().await?;
    Ok(())
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

fn run_to_completion(child_test: &str, dir: &Path) -> TestResult<Vec<String>> {
    let mut child = ChildProc::spawn(child_test, &[(DIR_ENV, dir.display().to_string())])?;
    child.wait_for_line("done", Duration::from_secs(300))?;
    Ok(child.kill_and_collect()?)
}

/// The crash schedule on `dir`: `topic` is created with `partitions` and given `first`; a
/// child runs to completion (so every store exists locally); then per round a chunk of
/// `rest` is appended and a child is killed at a random moment; a last child runs to
/// completion. Asserts no restart wiped a store. Returns how many rounds were killed before
/// catching up.
pub(crate) fn crash_rounds(
    child_test: &str,
    dir: &Path,
    topic: &str,
    partitions: u32,
    first: &[(String, String, i64)],
    rest: &[(String, String, i64)],
    rounds: usize,
) -> TestResult<usize> {
    {
        let log = open_log(dir)?;
        create(&log, topic, partitions)?;
        produce(&log, topic, first)?;
    }
    let lines = run_to_completion(child_test, dir)?;
    assert!(lines.iter().any(|l| l == "caught-up"), "{lines:?}");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    println!("kill moments seed {seed}");
    let mut rng = Rng(seed);
    let chunk = rest.len().div_ceil(rounds.max(1));
    let mut interrupted = 0;
    for round in 0..rounds {
        // New input for every round (the log is the child's while it runs).
        {
            let log = open_log(dir)?;
            let from = (round * chunk).min(rest.len());
            let to = ((round + 1) * chunk).min(rest.len());
            produce(&log, topic, &rest[from..to])?;
        }
        let mut child = ChildProc::spawn(child_test, &[(DIR_ENV, dir.display().to_string())])?;
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
    let last = run_to_completion(child_test, dir)?;
    assert!(last.iter().any(|l| l == "running wiped=0"), "{last:?}");
    Ok(interrupted)
}
