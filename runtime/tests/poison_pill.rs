//! Poison pills: 1% of the input cannot be decoded. With a dead-letter topic configured,
//! each of them goes there — the raw record, with `__streams.errors.*` headers naming where
//! it came from — inside the transaction; every other record is processed exactly once; and
//! the app keeps running, taking the input that arrives later too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use freshet_log::{Acks, Isolation, Log, Record};
use freshet_runtime::{AppState, StreamsApp, StreamsConfig};
use freshet_streams::{partition_for_key, Materialized, StreamsBuilder, Topology};

fn topology() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    let nums = builder.stream::<String, i64>("nums");
    nums.map_values(|v| v * 2).to("doubled");
    nums.group_by(|_k, v| format!("mod{}", v % 7))
        .count_with(Materialized::named("mod-counts").with_caching_disabled())
        .to_stream()
        .to("mod-counts");
    builder.build()
}

/// Appends records `from..to`: key `k<i>`, value `i` as 8 big-endian bytes — except every
/// 100th, whose value is text. Returns the keys of the bad ones.
fn put(log: &Log, from: i64, to: i64) -> TestResult<BTreeSet<String>> {
    let mut bad = BTreeSet::new();
    let mut by_partition: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
    for i in from..to {
        let key = format!("k{i}");
        let record = if i % 100 == 37 {
            bad.insert(key.clone());
            Record::new(key.clone(), "not a number")
        } else {
            Record::new(key.clone(), i.to_be_bytes().to_vec())
        };
        by_partition
            .entry(partition_for_key(key.as_bytes(), 3))
            .or_default()
            .push(record.with_timestamp(i));
    }
    for (p, records) in by_partition {
        log.append("nums", p, &records, Acks::Written)?;
    }
    Ok(bad)
}

fn header(r: &freshet_log::StoredRecord, name: &str) -> Option<String> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

#[tokio::test]
async fn poison_pills_go_to_the_dead_letter_topic_and_the_app_keeps_running() -> TestResult {
    const N: i64 = 20_000;
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 3)?;
    create(&log, "dlq", 1)?;
    let mut bad = put(&log, 0, N / 2)?;
    let config = StreamsConfig::new("pills")
        .with_dead_letter_topic("dlq")
        .with_commit_interval(Duration::from_millis(20));
    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    assert_eq!(app.state(), AppState::Running);
    assert_eq!(
        app.metrics()
            .tasks
            .iter()
            .map(|t| t.dead_lettered)
            .sum::<u64>(),
        100
    );

    // More input, poison included, while the app runs.
    bad.extend(put(&log, N / 2, N)?);
    let start = Instant::now();
    // Every good record is taken once by each sub-topology (a dead letter counts as
    // dropped, not as taken).
    while app.metrics().records_in() < 2 * (N as u64 - 200) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {:?}",
            app.metrics()
        );
        assert_eq!(app.state(), AppState::Running, "the app keeps running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = app.metrics();
    app.close().await?;
    assert_eq!(m.tasks.iter().map(|t| t.dead_lettered).sum::<u64>(), 200);

    // The dead letters: exactly the bad records, raw, each pointing at its source.
    let dlq = read_all(&log, "dlq")?.remove(&0).unwrap_or_default();
    let keys: BTreeSet<String> = dlq
        .iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(dlq.len(), 200);
    assert_eq!(keys, bad);
    for r in &dlq {
        assert_eq!(r.value.as_deref(), Some(&b"not a number"[..]));
        assert_eq!(header(r, "__streams.errors.topic").as_deref(), Some("nums"));
        let p: u32 = header(r, "__streams.errors.partition")
            .ok_or("no partition")?
            .parse()?;
        let offset: i64 = header(r, "__streams.errors.offset")
            .ok_or("no offset")?
            .parse()?;
        let source = log.read("nums", p, offset, 1, Isolation::ReadCommitted)?;
        assert_eq!(
            source.first().map(|s| (s.offset, &s.key)),
            Some((offset, &r.key))
        );
        assert!(header(r, "__streams.errors.exception").is_some());
    }

    // Everything else, exactly once.
    let doubled: Vec<i64> = read_all(&log, "doubled")?
        .into_values()
        .flatten()
        .map(|r| key_count(&r).map(|(_, v)| v))
        .collect::<TestResult<_>>()?;
    let mut sorted = doubled.clone();
    sorted.sort();
    let want: Vec<i64> = (0..N).filter(|i| i % 100 != 37).map(|i| i * 2).collect();
    assert_eq!(sorted, want);
    let counts = counts_by_key(&log, "mod-counts")?;
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in (0..N).filter(|i| i % 100 != 37) {
        *expected.entry(format!("mod{}", i % 7)).or_default() += 1;
    }
    for (k, n) in expected {
        assert_eq!(counts[&k], (1..=n).collect::<Vec<_>>(), "{k}");
    }
    Ok(())
}
