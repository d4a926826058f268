//! End to end on the embedded log: a windowed count that writes late records to a topic
//! (`late_records_to`, beyond Kafka). The late-records topic is a sink like any other: the
//! runtime creates it (it does not exist before the start) and writes it in the same
//! transaction as the counts, with the reason in a header.

mod common;

use std::time::Duration;

use common::*;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{StreamsBuilder, TimeWindows, Topology, Windowed};

fn counts_with_late_topic() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(1),
        )?)
        .late_records_to("late-clicks")
        .count()
        .to_stream()
        .map(|w: &Windowed<String>, n: &Option<i64>| (format!("{}@{}", w.key, w.window.start), *n))
        .to("counts");
    builder.build()
}

#[tokio::test]
async fn late_records_land_in_their_topic_created_like_a_sink() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "clicks", 1)?;
    let click = |k: &str, ts: i64| (k.to_string(), "click".to_string(), ts);
    produce(
        &log,
        "clicks",
        &[
            click("a", 1_000),
            click("a", 25_000), // stream time 25 s: [0, 10 s) closed at 11 s
            click("a", 2_000),  // late
        ],
    )?;
    let mut app = StreamsApp::start(
        StreamsConfig::new("late"),
        counts_with_late_topic()?,
        log.clone(),
    )
    .await?;
    app.run_until_caught_up().await?;

    let late: Vec<_> = read_all(&log, "late-clicks")?
        .into_values()
        .flatten()
        .collect();
    assert_eq!(late.len(), 1, "exactly the late record: {late:?}");
    let r = &late[0];
    assert_eq!(r.key.as_deref(), Some(&b"a"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"click"[..]));
    assert_eq!(r.timestamp, 2_000);
    let reason = r
        .headers
        .iter()
        .find(|(k, _)| k == "__freshet.late.reason")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("window closed")),
        "reason header: {reason:?}"
    );

    let counts = counts_by_key(&log, "counts")?;
    assert_eq!(
        counts.get("a@0"),
        Some(&vec![1]),
        "the late record was not counted"
    );
    assert_eq!(counts.get("a@20000"), Some(&vec![1]));
    Ok(())
}
