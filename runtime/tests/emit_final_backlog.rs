//! End to end on the embedded log: emit-final over a backlog. One click a minute for an
//! hour of event time is already in the input topic when the app starts, so the runtime
//! processes it within one emit interval (1000 ms of wall-clock time) while the windowed
//! stores keep only size + grace (sessions: gap + grace) of stream time. Every closed
//! window and session must still be emitted, once.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{
    EmitStrategy, SessionWindows, StreamsBuilder, TimeWindows, Topology, Windowed,
};

const MINUTE: i64 = 60_000;

/// Emit-final click counts per minute and per session (30 s gap), no grace.
fn final_counts() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    let clicks = builder.stream::<String, String>("clicks").group_by_key();
    let name = |w: &Windowed<String>, n: &Option<i64>| {
        (format!("{}@{}-{}", w.key, w.window.start, w.window.end), *n)
    };
    clicks
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60))?)
        .emit_strategy(EmitStrategy::OnWindowClose)
        .count()
        .to_stream()
        .map(name)
        .to("per-minute");
    clicks
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(
            Duration::from_secs(30),
        )?)
        .emit_strategy(EmitStrategy::OnWindowClose)
        .count()
        .to_stream()
        .map(name)
        .to("sessions");
    builder.build()
}

/// How many times each window was emitted, with its count.
fn emitted(log: &freshet_log::Log, topic: &str) -> TestResult<BTreeMap<String, Vec<i64>>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in read_all(log, topic)?.into_values().flatten() {
        let (k, v) = key_count(&r)?;
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

#[tokio::test]
async fn a_backlog_loses_no_final_result() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "clicks", 1)?;
    let clicks: Vec<(String, String, i64)> = (0..60)
        .map(|i| ("user".to_string(), "click".to_string(), i * MINUTE))
        .collect();
    produce(&log, "clicks", &clicks)?;
    let mut app =
        StreamsApp::start(StreamsConfig::new("backlog"), final_counts()?, log.clone()).await?;
    app.run_until_caught_up().await?;

    // All but the last minute, and all but the last session, have closed.
    let minutes: BTreeMap<String, Vec<i64>> = (0..59)
        .map(|i| (format!("user@{}-{}", i * MINUTE, (i + 1) * MINUTE), vec![1]))
        .collect();
    assert_eq!(emitted(&log, "per-minute")?, minutes);
    let sessions: BTreeMap<String, Vec<i64>> = (0..59)
        .map(|i| (format!("user@{}-{}", i * MINUTE, i * MINUTE), vec![1]))
        .collect();
    assert_eq!(emitted(&log, "sessions")?, sessions);
    Ok(())
}
