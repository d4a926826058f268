//! Page views per user and minute, emitted once per window when it closes.
//!
//! Reads `page-views` (key: user id, value: page path, both UTF-8), counts views per user
//! in 1-minute tumbling windows with 10 s grace, holds each count back with
//! `suppress(until_window_closes)` until its window closes (its end plus the grace is
//! behind stream time), and writes `pageviews-per-minute`: key `<user>@<window start ms>`,
//! value the count, both UTF-8. Only closed windows are written, so a window still open
//! when the input ends stays in the suppression buffer until later records close it.
//!
//! ```sh
//! cargo run --release --example pageviews -- --exit-when-caught-up
//! # your own views (timestamps in ms), written before the example starts:
//! cargo run -p freshet-cli -- topics create page-views --partitions 4
//! echo '{"key":"ann","value":"/home","timestamp":1700000000000}' \
//!   | cargo run -p freshet-cli -- produce page-views --format json
//! ```
//!
//! When `page-views` is empty the example writes five minutes of demo views first.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ensure_topic, is_empty, now_ms, produce, Options, Rng};
use freshet::prelude::*;

pub(crate) const APP: &str = "pageviews";
const VIEWS: &str = "page-views";
const COUNTS: &str = "pageviews-per-minute";

/// Views per user and minute, final counts only.
pub(crate) fn topology() -> freshet::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(VIEWS)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        )?)
        .count_with(Materialized::named("views-per-user"))
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()).with_name("final"))
        .to_stream()
        .map(|w, n| {
            (
                format!("{}@{}", w.key, w.window.start),
                n.unwrap_or(0).to_string(),
            )
        })
        .to(COUNTS);
    Ok(builder.build()?)
}

/// `n` views by a dozen users over the five minutes before `end_ms`, up to 2 s out of
/// order.
pub(crate) fn demo_views(n: usize, end_ms: i64) -> Vec<Record> {
    let users = [
        "ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal", "ida", "jo", "kim", "lu",
    ];
    let pages = ["/", "/docs", "/pricing", "/blog", "/signup"];
    let mut rng = Rng::new(7);
    let span = 5 * 60_000;
    (0..n)
        .map(|i| {
            let late = rng.below(2_000) as i64;
            let at = end_ms - span + (i as i64 * span) / n as i64 - late;
            let user = *rng.skewed(&users);
            Record::new(user, *rng.skewed(&pages)).with_timestamp(at)
        })
        .collect()
}

/// Runs the page-view count on `log`; returns how many demo views it wrote.
pub(crate) async fn run(
    log: Arc<Log>,
    config: StreamsConfig,
    exit_when_caught_up: bool,
) -> freshet::Result<usize> {
    ensure_topic(&log, VIEWS, 4)?;
    let mut produced = 0;
    if is_empty(&log, VIEWS)? {
        produced = produce(&log, VIEWS, demo_views(2_000, now_ms()))?;
        println!("wrote {produced} page views (5 minutes of event time) to '{VIEWS}'");
    }
    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    common::run_app(&mut app, exit_when_caught_up).await?;

    let records = common::read_topic(&log, COUNTS)?;
    println!(
        "\n{} closed windows in '{COUNTS}' (user@window start → views):",
        records.len()
    );
    common::print_lines(
        records
            .iter()
            .map(|r| format!("{:<20} {}", common::key_text(r), common::value_text(r))),
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
    common::print_cli_hints(&options, &[format!("consume {COUNTS}")]);
    Ok(())
}

const USAGE: &str =
    "usage: pageviews [--data-dir DIR] [--exit-when-caught-up] [--config KEY=VALUE]...

counts views per user and minute from 'page-views' into 'pageviews-per-minute'
(final counts only, once each window closes)";
