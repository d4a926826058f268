//! freshet in one command: a windowed count over an embedded log, no broker to start.
//!
//! Opens an embedded log in `./freshet-quickstart-data` (wiped first; or `--data-dir DIR`,
//! kept), writes five minutes of page views to `page-views` when that topic is empty,
//! counts views per page in 1-minute windows with a live progress line, prints the windows
//! and the commands to look at the topics with the CLI. It stops once it has processed its
//! input; `--follow` keeps it running on live page views until Ctrl-C.
//!
//! ```sh
//! cargo run --release --example quickstart [-- --follow] [--data-dir DIR] [--config KEY=VALUE]
//! ```

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{ensure_topic, is_empty, now_ms, produce, Options, Rng};
use freshet::prelude::*;

pub(crate) const APP: &str = "quickstart";
const VIEWS: &str = "page-views";
const COUNTS: &str = "page-views-per-minute";
const STORE: &str = "views-per-page";
const DEFAULT_DIR: &str = "./freshet-quickstart-data";
const PAGES: [&str; 7] = [
    "/",
    "/docs",
    "/pricing",
    "/blog",
    "/docs/quickstart",
    "/signup",
    "/health",
];

/// Page views (key: user, value: page) counted per page in 1-minute windows.
pub(crate) fn topology() -> freshet::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(VIEWS)
        .filter(|_user, page| page != "/health")
        // A new key: freshet inserts the repartition topic `quickstart-by-page-repartition`.
        .group_by_with(|_user, page| page.clone(), Grouped::named("by-page"))
        // 1-minute windows that accept records up to a minute late by stream time: a
        // backlog re-keyed through a repartition topic arrives somewhat out of order.
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(60),
        )?)
        // Windows stay in the store (and queryable) for an hour; by default only for
        // size + grace.
        .count_with(Materialized::named(STORE).with_retention(Duration::from_secs(3600)))
        .to_stream()
        .map(|window, count| {
            let key = format!("{}@{}", window.key, window.window.start);
            (key, count.unwrap_or(0).to_string())
        })
        .to(COUNTS);
    Ok(builder.build()?)
}

/// `n` page views spread over the five minutes before `end_ms`, a few seconds out of
/// order (as events arrive from many browsers), popular pages more often.
pub(crate) fn demo_views(n: usize, end_ms: i64) -> Vec<Record> {
    let users = users();
    let mut rng = Rng::new(42);
    let span = 5 * 60_000;
    (0..n)
        .map(|i| {
            let late = rng.below(3_000) as i64;
            let at = end_ms - span + (i as i64 * span) / n as i64 - late;
            view(&mut rng, &users, at)
        })
        .collect()
}

/// 100 users, 25 in each partition of `page-views`.
///
/// Each task works through its partition at its own pace, so when a backlog is re-keyed,
/// records from a partition that got ahead in event time meet, in the repartition topic,
/// records from one behind, and those can be later than the grace period and dropped (as
/// in Kafka Streams). Users spread evenly keep the partitions' event times together.
fn users() -> Vec<String> {
    let mut per_partition = [0; 4];
    (1..)
        .map(|i| format!("user-{i}"))
        .filter(|u| {
            let p = freshet::streams::partition_for_key(u.as_bytes(), 4) as usize;
            per_partition[p] += 1;
            per_partition[p] <= 25
        })
        .take(100)
        .collect()
}

fn view(rng: &mut Rng, users: &[String], at: i64) -> Record {
    let user = users[rng.below(users.len() as u64) as usize].clone();
    let page = *rng.skewed(&PAGES);
    Record::new(user, page).with_timestamp(at)
}

/// What one run did.
#[derive(Debug)]
#[allow(dead_code)] // fields are read by the test that runs this example
pub(crate) struct Summary {
    /// Demo page views written (0 when `page-views` had records already).
    pub(crate) produced: usize,
    /// The windows at the end: (page, window start) → views.
    pub(crate) windows: BTreeMap<(String, i64), i64>,
}

/// Runs the quickstart on `log`: demo input when `page-views` is empty, then the app until
/// it caught up (and, with `follow`, on live views until Ctrl-C).
pub(crate) async fn run(
    log: Arc<Log>,
    config: StreamsConfig,
    follow: bool,
    demo_size: usize,
) -> freshet::Result<Summary> {
    ensure_topic(&log, VIEWS, 4)?;
    let mut produced = 0;
    if is_empty(&log, VIEWS)? {
        produced = produce(&log, VIEWS, demo_views(demo_size, now_ms()))?;
        println!("wrote {produced} page views (5 minutes of event time) to '{VIEWS}'");
    }

    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    println!(
        "counting views per page and minute ({} tasks)",
        app.metrics().tasks.len()
    );
    if follow {
        let live = tokio::spawn(live_views(log.clone()));
        common::wait_showing_progress(&app, false).await?;
        live.abort();
    } else {
        common::wait_showing_progress(&app, true).await?;
    }
    let windows = app
        .window_store::<String, i64>(STORE)?
        .all()?
        .into_iter()
        .map(|(w, n)| ((w.key, w.window.start), n))
        .collect();
    app.close().await?;
    print_windows(&windows);
    Ok(Summary { produced, windows })
}

/// Writes about 200 page views a second, timestamped now.
async fn live_views(log: Arc<Log>) {
    let producer = log.producer(ProducerConfig::default());
    let users = users();
    let mut rng = Rng::new(now_ms() as u64);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        for _ in 0..10 {
            let _ack = producer.send(VIEWS, view(&mut rng, &users, now_ms()));
        }
    }
}

/// Prints the windows as a table: a row per minute, a column per page (the six most viewed).
fn print_windows(windows: &BTreeMap<(String, i64), i64>) {
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    let mut rows: BTreeMap<i64, BTreeMap<&str, i64>> = BTreeMap::new();
    for ((page, start), n) in windows {
        *totals.entry(page).or_default() += n;
        rows.entry(*start).or_default().insert(page, *n);
    }
    let mut pages: Vec<&str> = totals.keys().copied().collect();
    pages.sort_by_key(|p| std::cmp::Reverse(totals[p]));
    pages.truncate(6);
    println!("\nviews per page and minute (window store '{STORE}', topic '{COUNTS}'):");
    print!("  {:<19}", "window (UTC)");
    for p in &pages {
        print!(" {p:>16}");
    }
    println!();
    for (start, counts) in rows {
        print!("  {} – {}", clock(start), clock(start + 60_000));
        for p in &pages {
            print!(" {:>16}", counts.get(p).copied().unwrap_or(0));
        }
        println!();
    }
}

/// `HH:MM:SS` (UTC) of a timestamp.
fn clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[allow(dead_code)] // unused when a test includes this file as a module
#[tokio::main]
async fn main() -> common::MainResult {
    common::init_logging();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let follow = args.iter().any(|a| a == "--follow");
    args.retain(|a| a != "--follow");
    let own_dir = args.iter().any(|a| a == "--data-dir");
    let mut options = Options::parse(args, USAGE);
    if !own_dir {
        // A fresh directory on every run, kept afterwards for the CLI to look at.
        options.data_dir = DEFAULT_DIR.into();
        match std::fs::remove_dir_all(DEFAULT_DIR) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    println!("embedded log in {}", options.data_dir.display());
    let log = Arc::new(Log::open(&options.data_dir)?);
    run(log, options.streams_config(APP)?, follow, 300_000).await?;
    common::print_cli_hints(
        &options,
        &[
            "topics list".into(),
            format!("topics describe {VIEWS}"),
            format!("consume {VIEWS} --max 5"),
            format!("consume {COUNTS} --max 10"),
            format!("groups describe {APP}"),
        ],
    );
    Ok(())
}

const USAGE: &str = "usage: quickstart [--follow] [--data-dir DIR] [--config KEY=VALUE]...

  --follow              after the demo input, keep counting live page views until Ctrl-C
  --data-dir DIR        use (and keep) this directory instead of a fresh
                        ./freshet-quickstart-data; demo input is written only when the
                        'page-views' topic is empty
  --exit-when-caught-up stop once the input is processed (the default without --follow)
  --config KEY=VALUE    a StreamsConfig setting, e.g. num.stream.threads=2";
