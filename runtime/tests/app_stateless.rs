//! End to end on the embedded log: stateless topologies, both guarantees, several threads.

mod common;

use common::*;
use freshet_runtime::{AppState, ProcessingGuarantee, StreamsApp, StreamsConfig};
use freshet_streams::StreamsBuilder;

fn shout() -> freshet_streams::Result<freshet_streams::Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .map_values(|v| v.to_uppercase())
        .to("out");
    builder.build()
}

/// Runs `shout` over 3 partitions and checks that `out` holds every input record once,
/// upper-cased, in its partition and in offset order.
async fn run_shout(config: StreamsConfig) -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "in", 3)?;
    let input = page_views(0, 500, 17, 9, 1_000);
    produce(&log, "in", &input)?;
    let mut app = StreamsApp::start(config, shout()?, log.clone()).await?;
    assert_eq!(app.state(), AppState::Running);
    app.run_until_caught_up().await?;
    assert_eq!(app.state(), AppState::NotRunning);

    let expected = read_all(&log, "in")?;
    let got = read_all(&log, "out")?;
    assert_eq!(
        got.len(),
        3,
        "the sink topic was created with the input's partition count"
    );
    for (p, records) in expected {
        let want: Vec<(Option<bytes::Bytes>, String, i64)> = records
            .iter()
            .map(|r| {
                let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
                (r.key.clone(), v.to_uppercase(), r.timestamp)
            })
            .collect();
        let have: Vec<(Option<bytes::Bytes>, String, i64)> = got[&p]
            .iter()
            .map(|r| {
                let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
                (r.key.clone(), v.into_owned(), r.timestamp)
            })
            .collect();
        assert_eq!(have, want, "partition {p}");
    }
    let m = app.metrics();
    assert_eq!(m.records_in(), 500);
    assert_eq!(m.records_out(), 500);
    Ok(())
}

#[tokio::test]
async fn stateless_map_writes_every_record_once_under_exactly_once() -> TestResult {
    run_shout(StreamsConfig::new("shout")).await
}

#[tokio::test]
async fn stateless_map_writes_every_record_once_under_at_least_once() -> TestResult {
    run_shout(
        StreamsConfig::new("shout").with_processing_guarantee(ProcessingGuarantee::AtLeastOnce),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_map_runs_on_several_threads() -> TestResult {
    run_shout(StreamsConfig::new("shout").with_num_stream_threads(2)).await
}

#[tokio::test]
async fn more_threads_than_tasks_is_fine() -> TestResult {
    run_shout(StreamsConfig::new("shout").with_num_stream_threads(5)).await
}
