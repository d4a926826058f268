//! Runs the examples' code on a temporary embedded log, in their bounded mode
//! (`--exit-when-caught-up`), and checks what they wrote exactly — so the README's commands
//! keep working. Each example runs once on its demo input (written because its input topic
//! is empty), checked against an oracle computed from what the input topic holds, and the
//! simpler ones also on input the test produces itself, as a user would with
//! `freshet produce`. Tests that check every update of a count turn the record cache off
//! (`statestore.cache.max.bytes=0`): with it on, how many updates are merged depends on
//! when commits happen.

// Each example includes `examples/common` as its own module, as its binary does.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/common/mod.rs"]
mod common;
#[path = "../examples/enrich.rs"]
mod enrich;
#[path = "../examples/log_quickstart.rs"]
mod log_quickstart;
#[path = "../examples/pageviews.rs"]
mod pageviews;
#[path = "../examples/quickstart.rs"]
mod quickstart;
#[path = "../examples/repartition.rs"]
mod repartition;
#[path = "../examples/sessions.rs"]
mod sessions;
#[path = "../examples/wordcount.rs"]
mod wordcount;

use std::collections::BTreeMap;
use std::sync::Arc;

use freshet::log::StoredRecord;
use freshet::prelude::*;
use freshet::streams::partition_for_key;
use freshet::streams::testing::TopologyTestDriver;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// A fresh embedded log in a temporary directory.
fn temp_log() -> TestResult<(tempfile::TempDir, Arc<Log>)> {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(Log::open(dir.path())?);
    Ok((dir, log))
}

/// `(key, value)` of each record, both as UTF-8 text.
fn texts(records: &[StoredRecord]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (common::key_text(r), common::value_text(r)))
        .collect()
}

/// Every value written per key, in order (a key's records are in one partition).
fn updates_per_key<V>(
    records: &[StoredRecord],
    value: impl Fn(&StoredRecord) -> V,
) -> BTreeMap<String, Vec<V>> {
    let mut out: BTreeMap<String, Vec<V>> = BTreeMap::new();
    for r in records {
        out.entry(common::key_text(r)).or_default().push(value(r));
    }
    out
}

/// The partition Kafka's partitioner gives `key` among `n`.
fn partition(key: &str, n: u32) -> u32 {
    partition_for_key(key.as_bytes(), n)
}

fn no_cache(app: &str) -> StreamsConfig {
    StreamsConfig::new(app).with_cache_max_bytes(0)
}

#[test]
fn log_quickstart_counts_each_view_once_across_runs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = log_quickstart::run(dir.path(), 2_000)?;
    assert_eq!(first.produced, 2_000);
    assert_eq!(first.counted, 2_000);
    assert_eq!(first.counts.values().sum::<u64>(), 2_000);
    let second = log_quickstart::run(dir.path(), 500)?;
    assert_eq!(
        second.counted, 500,
        "the group resumes from its committed offsets"
    );

    // The counts topic holds both runs' committed counts, nothing else.
    let log = Log::open(dir.path())?;
    let total: u64 = common::read_topic(&log, "views-per-user")?
        .iter()
        .map(|r| common::value_text(r).parse::<u64>())
        .sum::<Result<_, _>>()?;
    assert_eq!(total, 2_500);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_counts_demo_views_per_page_and_minute() -> TestResult {
    let (_dir, log) = temp_log()?;
    let config = StreamsConfig::new(quickstart::APP);
    let summary = quickstart::run(log.clone(), config, false, 100_000).await?;
    assert_eq!(summary.produced, 100_000);

    // Every view but health checks, counted once in its minute: nothing was late.
    let mut want: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in common::read_topic(&log, "page-views")? {
        let page = common::value_text(&r);
        if page != "/health" {
            let start = r.timestamp - r.timestamp.rem_euclid(60_000);
            *want.entry((page, start)).or_default() += 1;
        }
    }
    assert_eq!(
        summary.windows, want,
        "the window store, queried at the end"
    );
    let latest = common::latest(
        &common::read_topic(&log, "page-views-per-minute")?,
        common::value_text,
    );
    let want_topic: BTreeMap<String, String> = want
        .iter()
        .map(|((page, start), n)| (format!("{page}@{start}"), n.to_string()))
        .collect();
    assert_eq!(latest, want_topic, "the last update of each window");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_counts_views_a_user_produced() -> TestResult {
    let (_dir, log) = temp_log()?;
    log.create_topic("page-views", TopicConfig::partitions(2))?;
    let views = [
        ("ann", "/", 1_000),
        ("bob", "/docs", 30_000),
        ("ann", "/health", 40_000),
        ("cy", "/", 59_999),
        ("ann", "/", 60_000),
    ];
    common::produce(
        &log,
        "page-views",
        views.map(|(u, p, t)| Record::new(u, p).with_timestamp(t)),
    )?;
    let summary = quickstart::run(log.clone(), no_cache(quickstart::APP), false, 1_000).await?;
    assert_eq!(summary.produced, 0, "no demo input on a topic with records");
    let want: BTreeMap<(String, i64), i64> = [(("/", 0), 2), (("/", 60_000), 1), (("/docs", 0), 1)]
        .into_iter()
        .map(|((p, s), n)| ((p.to_string(), s), n))
        .collect();
    assert_eq!(summary.windows, want);
    let out = updates_per_key(
        &common::read_topic(&log, "page-views-per-minute")?,
        common::value_text,
    );
    let want_out: BTreeMap<String, Vec<String>> = [
        ("/@0", vec!["1", "2"]),
        ("/@60000", vec!["1"]),
        ("/docs@0", vec!["1"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(out, want_out, "every update, the cache being off");
    Ok(())
}

/// The words of `line` as the word count splits them.
fn words(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn wordcount_counts_every_word_of_the_demo_text() -> TestResult {
    let (_dir, log) = temp_log()?;
    let produced = wordcount::run(log.clone(), no_cache(wordcount::APP), true).await?;
    assert_eq!(produced, wordcount::DEMO_TEXT.len());
    let mut want: BTreeMap<String, Vec<Option<i64>>> = BTreeMap::new();
    for line in wordcount::DEMO_TEXT {
        for w in words(line) {
            let seen = want.entry(w).or_default();
            seen.push(Some(seen.len() as i64 + 1));
        }
    }
    assert_eq!(want["the"].len(), 5);
    let out = updates_per_key(&common::read_topic(&log, "word-counts")?, common::value_i64);
    assert_eq!(out, want, "each word counted 1, 2, … in order");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wordcount_counts_lines_a_user_produced_and_resumes() -> TestResult {
    let (_dir, log) = temp_log()?;
    log.create_topic("text-lines", TopicConfig::partitions(1))?;
    common::produce(&log, "text-lines", [Record::unkeyed("To be, or not to be")])?;
    assert_eq!(
        wordcount::run(log.clone(), StreamsConfig::new(wordcount::APP), true).await?,
        0
    );
    let first = common::latest(&common::read_topic(&log, "word-counts")?, common::value_i64);
    let want = |pairs: &[(&str, i64)]| -> BTreeMap<String, Option<i64>> {
        pairs
            .iter()
            .map(|(w, n)| (w.to_string(), Some(*n)))
            .collect()
    };
    assert_eq!(first, want(&[("be", 2), ("not", 1), ("or", 1), ("to", 2)]));

    // A second run counts only the new line, on top of the committed counts.
    common::produce(&log, "text-lines", [Record::unkeyed("let it be")])?;
    wordcount::run(log.clone(), StreamsConfig::new(wordcount::APP), true).await?;
    let second = common::latest(&common::read_topic(&log, "word-counts")?, common::value_i64);
    assert_eq!(
        second,
        want(&[
            ("be", 3),
            ("it", 1),
            ("let", 1),
            ("not", 1),
            ("or", 1),
            ("to", 2)
        ])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pageviews_emits_each_closed_window_once() -> TestResult {
    let (_dir, log) = temp_log()?;
    log.create_topic("page-views", TopicConfig::partitions(1))?;
    let views = [
        ("ann", "/", 0),
        ("ann", "/docs", 30_000),
        ("bob", "/", 50_000),
        ("ann", "/", 65_000), // stream time 65 s: [0, 60 s) is still open (grace 10 s)
        ("bob", "/", 125_000), // 125 s: [0, 60 s) closes, [60 s, 120 s) is open
        ("ann", "/", 55_000), // late: its window closed
        ("cy", "/", 200_000), // 200 s: [60 s, 120 s) and [120 s, 180 s) close
    ];
    common::produce(
        &log,
        "page-views",
        views.map(|(u, p, t)| Record::new(u, p).with_timestamp(t)),
    )?;
    assert_eq!(
        pageviews::run(log.clone(), StreamsConfig::new(pageviews::APP), true).await?,
        0
    );
    let out = common::read_topic(&log, "pageviews-per-minute")?;
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        texts(&out),
        pairs(&[
            ("ann@0", "2"),
            ("bob@0", "1"),
            ("ann@60000", "1"),
            ("bob@120000", "1")
        ]),
        "final counts only, the late view not among them"
    );
    let times: Vec<i64> = out.iter().map(|r| r.timestamp).collect();
    assert_eq!(
        times,
        vec![30_000, 50_000, 65_000, 125_000],
        "each window's latest view"
    );
    Ok(())
}

#[test]
fn pageviews_topology_in_the_test_driver_as_the_readme_shows() -> TestResult {
    let driver = TopologyTestDriver::new(pageviews::topology()?)?;
    let views = driver.input::<String, String>("page-views");
    views.pipe("ann".into(), "/".into(), 1_000)?;
    views.pipe("ann".into(), "/docs".into(), 59_000)?;
    views.pipe("bob".into(), "/".into(), 70_000)?;
    let out = driver
        .output::<String, String>("pageviews-per-minute")
        .read_key_values()?;
    assert_eq!(out, vec![("ann@0".to_string(), "2".to_string())]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pageviews_counts_the_demo_views_of_closed_windows() -> TestResult {
    let (_dir, log) = temp_log()?;
    let produced = pageviews::run(log.clone(), StreamsConfig::new(pageviews::APP), true).await?;
    assert_eq!(produced, 2_000);

    // Per partition, a window is written once stream time (the partition's latest view)
    // has passed its end plus the grace; the demo views are never that late.
    let views = common::read_topic(&log, "page-views")?;
    let mut stream_time: BTreeMap<u32, i64> = BTreeMap::new();
    let mut counts: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in &views {
        let user = common::key_text(r);
        let t = stream_time.entry(partition(&user, 4)).or_insert(i64::MIN);
        *t = (*t).max(r.timestamp);
        *counts
            .entry((user, r.timestamp - r.timestamp.rem_euclid(60_000)))
            .or_default() += 1;
    }
    let mut want: Vec<(String, String)> = counts
        .into_iter()
        .filter(|((user, start), _)| start + 60_000 + 10_000 <= stream_time[&partition(user, 4)])
        .map(|((user, start), n)| (format!("{user}@{start}"), n.to_string()))
        .collect();
    want.sort();
    let mut got = texts(&common::read_topic(&log, "pageviews-per-minute")?);
    got.sort();
    assert!(want.len() > 20, "most windows closed");
    assert_eq!(got, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn repartition_counts_orders_per_product() -> TestResult {
    let (_dir, log) = temp_log()?;
    let produced = repartition::run(log.clone(), no_cache(repartition::APP), true).await?;
    assert_eq!(produced, 500);
    assert_eq!(
        log.partition_count("repartition-orders-by-product-repartition")?,
        2,
        "the repartition topic has the partition count the topology asked for"
    );
    let mut want: BTreeMap<String, Vec<Option<i64>>> = BTreeMap::new();
    // Orders of one product reach its task from four partitions, in no fixed order, so
    // only the counts are known: 1, 2, … up to the product's number of orders.
    for r in common::read_topic(&log, "orders")? {
        let order: repartition::Order =
            serde_json::from_slice(r.value.as_deref().unwrap_or_default())?;
        let seen = want.entry(order.product).or_default();
        seen.push(Some(seen.len() as i64 + 1));
    }
    let out = updates_per_key(
        &common::read_topic(&log, "orders-per-product")?,
        common::value_i64,
    );
    assert_eq!(out, want);
    Ok(())
}

/// Sessions of one user's click times with Kafka's merge rule: a click within `gap` of a
/// session (either side) joins it.
fn sessions_of(times: &[i64], gap: i64) -> Vec<(i64, i64, usize)> {
    let mut out: Vec<(i64, i64, usize)> = Vec::new();
    for &t in times {
        match out.last_mut() {
            Some((_, end, n)) if t <= *end + gap => {
                *end = (*end).max(t);
                *n += 1;
            }
            _ => out.push((t, t, 1)),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_emits_each_closed_session_once() -> TestResult {
    let (_dir, log) = temp_log()?;
    let produced = sessions::run(log.clone(), StreamsConfig::new(sessions::APP), true).await?;
    assert!(produced > 100, "an hour of clicks");

    let clicks = common::read_topic(&log, "clicks")?;
    let (gap, grace) = (5 * 60_000, 30_000);
    let mut stream_time: BTreeMap<u32, i64> = BTreeMap::new();
    let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &clicks {
        let user = common::key_text(r);
        let t = stream_time.entry(partition(&user, 4)).or_insert(i64::MIN);
        *t = (*t).max(r.timestamp);
        times.entry(user).or_default().push(r.timestamp);
    }
    let mut want = Vec::new();
    for (user, mut ts) in times {
        ts.sort();
        let closed_before = stream_time[&partition(&user, 4)] - grace - gap;
        for (start, end, n) in sessions_of(&ts, gap) {
            if end < closed_before {
                want.push((format!("{user}@{start}-{end}"), n.to_string()));
            }
        }
    }
    want.sort();
    let mut got = texts(&common::read_topic(&log, "user-sessions")?);
    got.sort();
    assert!(want.len() >= 8, "several sessions closed: {want:?}");
    assert_eq!(got, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn enrich_joins_purchases_with_the_customer_as_of_each_purchase() -> TestResult {
    let (_dir, log) = temp_log()?;
    let produced = enrich::run(log.clone(), StreamsConfig::new(enrich::APP), true).await?;
    assert_eq!(produced, 9);
    let customer = |name: &str, tier: &str| {
        Some(enrich::Customer {
            name: name.into(),
            tier: tier.into(),
        })
    };
    let purchase = |product: &str, quantity, customer| enrich::EnrichedPurchase {
        product: product.into(),
        quantity,
        customer,
    };
    let mut want = vec![
        (
            "c-1".to_string(),
            purchase("tea", 2, customer("Ann Lee", "silver")),
        ),
        (
            "c-1".to_string(),
            purchase("chai", 3, customer("Ann Lee", "gold")),
        ),
        (
            "c-2".to_string(),
            purchase("coffee", 1, customer("Bob Roy", "bronze")),
        ),
        (
            "c-3".to_string(),
            purchase("cocoa", 4, customer("Cy Diaz", "gold")),
        ),
        ("c-9".to_string(), purchase("mate", 1, None)),
    ];
    let mut got = Vec::new();
    for r in common::read_topic(&log, "enriched-purchases")? {
        let value: enrich::EnrichedPurchase =
            serde_json::from_slice(r.value.as_deref().unwrap_or_default())?;
        got.push((common::key_text(&r), value));
    }
    // A customer's purchases are in one partition, in order; sort only across customers.
    got.sort_by(|a, b| a.0.cmp(&b.0));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
    Ok(())
}
