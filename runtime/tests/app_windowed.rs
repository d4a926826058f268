//! End to end on the embedded log: a windowed count, read through an interactive window
//! query, and a restart that keeps the stream time committed with the offsets — so a record
//! for a window that closed before the restart is still late after it (Kafka would reopen
//! the window; freshet commits stream times in the offset metadata).

mod common;

use std::time::Duration;

use common::*;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, TimeWindows, Topology, Windowed};

fn windowed_counts() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(10))?)
        .count_with(
            Materialized::named("wc")
                .with_caching_disabled()
                .with_retention(Duration::from_secs(3600)),
        )
        .to_stream()
        .map(|w: &Windowed<String>, n: &Option<i64>| (format!("{}@{}", w.key, w.window.start), *n))
        .to("wc-out");
    builder.build()
}

fn clicks(at: &[(&str, i64)]) -> Vec<(String, String, i64)> {
    at.iter()
        .map(|(k, ts)| (k.to_string(), "click".to_string(), *ts))
        .collect()
}

async fn run(
    log: &std::sync::Arc<freshet_log::Log>,
    want: &[(i64, i64)],
) -> TestResult<freshet_runtime::AppMetrics> {
    let mut app =
        StreamsApp::start(StreamsConfig::new("win"), windowed_counts()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    let wc = app.window_store::<String, i64>("wc")?;
    assert_eq!(wc.fetch(&"a".to_string(), 0, 100_000)?, want.to_vec());
    assert!(wc.all()?.iter().any(|(w, _)| w.key == "b"));
    let m = app.metrics();
    app.close().await?;
    Ok(m)
}

#[tokio::test]
async fn windowed_counts_keep_their_stream_time_across_restarts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "clicks", 2)?;
    produce(
        &log,
        "clicks",
        &clicks(&[
            ("a", 1_000),
            ("b", 1_500),
            ("a", 2_000),
            ("a", 15_000),
            ("a", 25_000),
        ]),
    )?;
    let m = run(&log, &[(0, 2), (10_000, 1), (20_000, 1)]).await?;
    assert_eq!(m.tasks.iter().map(|t| t.dropped_records).sum::<u64>(), 0);

    // After the restart, [0, 10 s) of "a" is still closed: stream time came back as 25 s.
    produce(&log, "clicks", &clicks(&[("a", 3_000), ("a", 26_000)]))?;
    let m = run(&log, &[(0, 2), (10_000, 1), (20_000, 2)]).await?;
    let dropped: u64 = m.tasks.iter().map(|t| t.dropped_records).sum();
    assert_eq!(dropped, 1, "the record for the closed window was dropped");

    let out = read_all(&log, "wc-out")?;
    let mut updates: Vec<(String, i64)> = out
        .values()
        .flatten()
        .map(|r| {
            let k = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
            let v = r.value.as_deref().map_or(-1, |v| {
                i64::from_be_bytes(v.try_into().unwrap_or([0xff; 8]))
            });
            (k, v)
        })
        .filter(|(k, _)| k.starts_with("a@"))
        .collect();
    updates.sort();
    assert_eq!(
        updates,
        vec![
            ("a@0".to_string(), 1),
            ("a@0".to_string(), 2),
            ("a@10000".to_string(), 1),
            ("a@20000".to_string(), 1),
            ("a@20000".to_string(), 2),
        ]
    );
    Ok(())
}
