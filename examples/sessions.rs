//! User sessions: clicks grouped into sessions that end after 5 minutes of inactivity.
//!
//! Reads `clicks` (key: user, value: what was clicked, UTF-8), counts clicks per session
//! with session windows (inactivity gap 5 min, grace 30 s) and emits each session once,
//! when it has closed (`EmitStrategy::OnWindowClose`), to `user-sessions`: key
//! `<user>@<session start ms>-<session end ms>`, value the click count, both UTF-8. A
//! session is closed once stream time passes its end by the gap plus the grace, so the
//! sessions still open when the input ends are not written yet.
//!
//! ```sh
//! cargo run --release --example sessions -- --exit-when-caught-up
//! ```
//!
//! When `clicks` is empty the example writes an hour of demo clicks first.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ensure_topic, is_empty, now_ms, produce, Options, Rng};
use freshet::prelude::*;

pub(crate) const APP: &str = "sessions";
const CLICKS: &str = "clicks";
const SESSIONS: &str = "user-sessions";

/// Clicks per user session, final sessions only.
pub(crate) fn topology() -> freshet::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(CLICKS)
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_secs(5 * 60),
            Duration::from_secs(30),
        )?)
        .emit_strategy(EmitStrategy::OnWindowClose)
        // Keep sessions a day, not only gap + grace: closed sessions are read back from the
        // store to be emitted (at most once a second, and at each commit), and a backlog
        // processed in between can close sessions older than that.
        .count_with(
            Materialized::named("clicks-per-session").with_retention(Duration::from_secs(86_400)),
        )
        .to_stream()
        .map(|s, n| {
            let key = format!("{}@{}-{}", s.key, s.window.start, s.window.end);
            (key, n.unwrap_or(0).to_string())
        })
        .to(SESSIONS);
    Ok(builder.build()?)
}

/// An hour of clicks ending at `end_ms`: each of eight users comes back a few times and
/// clicks every few seconds to a minute while there; in time order.
pub(crate) fn demo_clicks(end_ms: i64) -> Vec<Record> {
    let users = ["ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"];
    let things = ["search", "product", "cart", "checkout", "help"];
    let mut rng = Rng::new(3);
    let mut clicks = Vec::new();
    for user in users {
        let mut at = end_ms - 60 * 60_000 + rng.below(10 * 60_000) as i64;
        while at < end_ms {
            for _ in 0..3 + rng.below(15) {
                clicks.push((at, user, *rng.skewed(&things)));
                at += 2_000 + rng.below(60_000) as i64;
            }
            at += 6 * 60_000 + rng.below(20 * 60_000) as i64; // away longer than the gap
        }
    }
    clicks.sort();
    clicks
        .into_iter()
        .filter(|(at, _, _)| *at < end_ms)
        .map(|(at, user, what)| Record::new(user, what).with_timestamp(at))
        .collect()
}

/// Runs the session count on `log`; returns how many demo clicks it wrote.
pub(crate) async fn run(
    log: Arc<Log>,
    config: StreamsConfig,
    exit_when_caught_up: bool,
) -> freshet::Result<usize> {
    ensure_topic(&log, CLICKS, 4)?;
    let mut produced = 0;
    if is_empty(&log, CLICKS)? {
        produced = produce(&log, CLICKS, demo_clicks(now_ms()))?;
        println!("wrote {produced} clicks (an hour of event time) to '{CLICKS}'");
    }
    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    common::run_app(&mut app, exit_when_caught_up).await?;

    let records = common::read_topic(&log, SESSIONS)?;
    println!(
        "\n{} closed sessions in '{SESSIONS}' (user@start-end → clicks):",
        records.len()
    );
    common::print_lines(
        records
            .iter()
            .map(|r| format!("{:<32} {}", common::key_text(r), common::value_text(r))),
        20,
    );
    Ok(produced)
}

#[allow(dead_code)] // unused when a test includes this file as a module
#[tokio::main]
async fn main() -> common::MainResult {
    common::init_logging();
    let options = Options::parse(std::env::args().skip(1), USAGE);
    let log = Arc::new(Log::open(&options.data_dir)?);
    run(
        log,
        options.streams_config(APP)?,
        options.exit_when_caught_up,
    )
    .await?;
    common::print_cli_hints(&options, &[format!("consume {SESSIONS}")]);
    Ok(())
}

const USAGE: &str =
    "usage: sessions [--data-dir DIR] [--exit-when-caught-up] [--config KEY=VALUE]...

counts clicks per user session (5 min inactivity gap) from 'clicks' into 'user-sessions'
(each session once, when it has closed)";
