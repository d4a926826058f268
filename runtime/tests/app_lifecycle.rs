//! The app's lifecycle and setup: states and the listener, topic checks at start (missing
//! topics, partition counts, co-partitioning), the error handlers and the dead-letter topic,
//! interactive-query errors, metrics.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use freshet_log::{Acks, Record, TopicConfig};
use freshet_runtime::{
    AppState, Error, HandlerPolicy, ProcessingGuarantee, StreamsApp, StreamsConfig,
};
use freshet_streams::{JoinWindows, Materialized, StreamsBuilder, Topology};

fn doubler() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, i64>("nums")
        .map_values(|v| v * 2)
        .to("doubled");
    builder.build()
}

#[tokio::test]
async fn the_listener_sees_every_state_change() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 2)?;
    let mut app = StreamsApp::new(StreamsConfig::new("states"), doubler()?, log)?;
    assert_eq!(app.state(), AppState::Created);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.set_state_listener(move |old, new| s.lock().unwrap().push((old, new)));
    app.launch().await?;
    assert_eq!(app.state(), AppState::Running);
    app.close().await?;
    app.close().await?; // twice is fine
    use AppState::*;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (Created, Rebalancing),
            (Rebalancing, Running),
            (Running, PendingShutdown),
            (PendingShutdown, NotRunning),
        ]
    );
    assert!(matches!(
        app.launch().await,
        Err(freshet_runtime::Error::InvalidState { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn a_missing_source_topic_fails_the_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    let mut app = StreamsApp::new(StreamsConfig::new("nosource"), doubler()?, log)?;
    let e = app.launch().await.unwrap_err();
    assert!(
        matches!(e, Error::MissingSourceTopic { ref topic } if topic == "nums"),
        "{e}"
    );
    assert_eq!(app.state(), AppState::Error);
    Ok(())
}

#[tokio::test]
async fn sink_topics_are_not_created_when_auto_create_is_off() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 2)?;
    let config = StreamsConfig::new("strict").with_auto_create_sink_topics(false);
    let e = StreamsApp::start(config, doubler()?, log.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::MissingSinkTopic { ref topic, .. } if topic == "doubled"),
        "{e}"
    );
    assert!(!log.topic_exists("doubled"));
    Ok(())
}

fn counts() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("views")
        .group_by(|_user, page| page.clone())
        .count_with(Materialized::named("counts"))
        .to_stream()
        .to("page-counts");
    builder.build()
}

#[tokio::test]
async fn an_internal_topic_with_another_partition_count_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 3)?;
    create(&log, "app-counts-repartition", 5)?;
    let e = StreamsApp::start(StreamsConfig::new("app"), counts()?, log)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::PartitionMismatch { ref topic, actual: 5, expected: 3, .. } if topic == "app-counts-repartition"),
        "{e}"
    );
    Ok(())
}

#[tokio::test]
async fn repartition_topics_take_the_largest_source_count() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views-a", 2)?;
    create(&log, "views-b", 4)?;
    let a = page_views(0, 300, 7, 5, 0);
    let b = page_views(300, 700, 7, 5, 0);
    produce(&log, "views-a", &a)?;
    produce(&log, "views-b", &b)?;
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<String, String>(&["views-a", "views-b"], Default::default())
        .group_by(|_user, page| page.clone())
        .count_with(Materialized::named("counts").with_caching_disabled())
        .to_stream()
        .to("page-counts");
    let mut app =
        StreamsApp::start(StreamsConfig::new("max"), builder.build()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    assert_eq!(
        log.describe_topic("max-counts-repartition")?
            .config
            .partitions,
        4
    );
    assert_eq!(
        log.describe_topic("max-counts-changelog")?
            .config
            .partitions,
        4
    );
    assert_eq!(app.metrics().tasks.len(), 8);
    app.close().await?;
    let mut all = a.clone();
    all.extend(b);
    let expected = expected_page_counts(&all);
    let got = counts_by_key(&log, "page-counts")?;
    for (page, n) in expected {
        assert_eq!(got[&page], (1..=n).collect::<Vec<_>>(), "{page}");
    }
    Ok(())
}

fn joined() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, String>("left");
    let right = builder.stream::<String, String>("right");
    let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(60))?;
    left.join(&right, |l, r| format!("{l}+{r}"), w).to("joined");
    builder.build()
}

#[tokio::test]
async fn joined_inputs_must_be_copartitioned() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "left", 2)?;
    create(&log, "right", 3)?;
    let e = StreamsApp::start(StreamsConfig::new("join"), joined()?, log)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::NotCopartitioned { .. }), "{e}");
    assert!(
        text.contains("left (2)") && text.contains("right (3)"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_repartitioned_join_input_is_sized_to_the_other_side() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "left", 2)?;
    create(&log, "right", 4)?;
    let mut rows = Vec::new();
    for i in 0..40 {
        rows.push((format!("x{i}"), format!("k{}", i % 10), 1_000 + i as i64));
    }
    produce(&log, "left", &rows)?;
    let rights: Vec<(String, String, i64)> = (0..10)
        .map(|i| (format!("k{i}"), format!("r{i}"), 1_000))
        .collect();
    produce(&log, "right", &rights)?;
    let builder = StreamsBuilder::new();
    let left = builder
        .stream::<String, String>("left")
        .select_key(|_k, v| v.clone());
    let right = builder.stream::<String, String>("right");
    let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(60))?;
    left.join(&right, |l, r| format!("{l}+{r}"), w).to("joined");
    let mut app =
        StreamsApp::start(StreamsConfig::new("rj"), builder.build()?, log.clone()).await?;
    app.run_until_caught_up().await?;
    let internal: Vec<String> = log
        .list_topics()?
        .into_iter()
        .filter(|t| t.starts_with("rj-") && t.ends_with("-repartition"))
        .collect();
    assert_eq!(internal.len(), 1, "{internal:?}");
    assert_eq!(log.describe_topic(&internal[0])?.config.partitions, 4);
    let out: usize = read_all(&log, "joined")?.values().map(Vec::len).sum();
    assert_eq!(out, 40, "every left record met its right record");
    Ok(())
}

fn put_nums(log: &freshet_log::Log, good: i64, bad_every: i64) -> TestResult {
    let mut records = Vec::new();
    for i in 0..good {
        records.push(Record::new(format!("k{i}"), i.to_be_bytes().to_vec()).with_timestamp(i));
        if bad_every > 0 && i % bad_every == 0 {
            records.push(Record::new(format!("bad{i}"), "not a number").with_timestamp(i));
        }
    }
    log.append("nums", 0, &records, Acks::Written)?;
    Ok(())
}

#[tokio::test]
async fn undecodable_records_go_to_the_dead_letter_topic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 1)?;
    log.create_topic("dlq", TopicConfig::partitions(1))?;
    put_nums(&log, 100, 10)?;
    let config = StreamsConfig::new("dl").with_dead_letter_topic("dlq");
    let mut app = StreamsApp::start(config, doubler()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    let m = app.metrics();
    assert_eq!(m.tasks[0].dead_lettered, 10);
    assert_eq!(app.state(), AppState::Running, "the app keeps running");
    app.close().await?;
    let out = &read_all(&log, "doubled")?[&0];
    assert_eq!(out.len(), 100);
    let dlq = &read_all(&log, "dlq")?[&0];
    assert_eq!(dlq.len(), 10);
    let first = &dlq[0];
    assert_eq!(first.key.as_deref(), Some(&b"bad0"[..]));
    assert_eq!(first.value.as_deref(), Some(&b"not a number"[..]));
    let header = |n: &str| {
        first
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("__streams.errors.topic").as_deref(), Some("nums"));
    assert_eq!(header("__streams.errors.partition").as_deref(), Some("0"));
    assert_eq!(header("__streams.errors.offset").as_deref(), Some("1"));
    assert!(header("__streams.errors.exception").is_some());
    Ok(())
}

#[tokio::test]
async fn log_and_continue_skips_undecodable_records() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 1)?;
    put_nums(&log, 50, 5)?;
    let config =
        StreamsConfig::new("lc").with_deserialization_handler(HandlerPolicy::LogAndContinue);
    let mut app = StreamsApp::start(config, doubler()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    assert_eq!(app.metrics().tasks[0].dropped_records, 10);
    app.close().await?;
    assert_eq!(read_all(&log, "doubled")?[&0].len(), 50);
    Ok(())
}

#[tokio::test]
async fn a_failing_record_stops_the_app_in_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 1)?;
    put_nums(&log, 20, 7)?;
    let mut app = StreamsApp::start(StreamsConfig::new("failing"), doubler()?, log.clone()).await?;
    let e = app.wait_until_caught_up().await.unwrap_err();
    assert!(matches!(e, Error::ThreadFailed { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("cannot decode record at nums-0 offset 1"),
        "{e}"
    );
    let closed = app.close().await;
    assert!(closed.is_err());
    assert_eq!(app.state(), AppState::Error);
    Ok(())
}

#[tokio::test]
async fn a_panic_in_user_code_stops_the_app_in_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 1)?;
    put_nums(&log, 20, 0)?;
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, i64>("nums")
        .map_values(|v| {
            assert!(*v != 13, "no thirteens here");
            v * 2
        })
        .to("doubled");
    let config = StreamsConfig::new("panicking")
        .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
    let mut app = StreamsApp::start(config, builder.build()?, log.clone()).await?;
    // Without the panic caught, the thread would be gone without a word and this would
    // wait forever.
    let waited = tokio::time::timeout(Duration::from_secs(60), app.wait_until_caught_up()).await;
    let e = waited
        .map_err(|_| "the app never noticed its thread had died")?
        .unwrap_err();
    assert!(matches!(e, Error::ThreadFailed { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("panicking-StreamThread-1 panicked: no thirteens here"),
        "{e}"
    );
    assert!(app.close().await.is_err());
    assert_eq!(app.state(), AppState::Error);
    let committed = read_all(&log, "doubled")?;
    assert!(
        committed[&0]
            .iter()
            .all(|r| r.key.as_deref() != Some(&b"k13"[..])),
        "the failing record's output is not committed"
    );
    Ok(())
}

#[tokio::test]
async fn interactive_queries_name_what_is_wrong() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "views", 2)?;
    let app = StreamsApp::new(StreamsConfig::new("iq"), counts()?, log.clone())?;
    assert!(matches!(
        app.store::<String, i64>("counts"),
        Err(Error::InvalidState {
            state: AppState::Created,
            ..
        })
    ));
    let mut app = StreamsApp::start(StreamsConfig::new("iq"), counts()?, log).await?;
    let e = app.store::<String, i64>("count").unwrap_err();
    assert!(e.to_string().contains("counts"), "lists the stores: {e}");
    assert!(matches!(
        app.window_store::<String, i64>("counts"),
        Err(Error::UnknownStore { .. })
    ));
    assert!(
        app.store::<String, String>("counts").is_ok(),
        "String has a default serde"
    );
    assert!(matches!(
        app.store::<String, Vec<Duration>>("counts"),
        Err(Error::Serde { .. })
    ));
    app.close().await?;
    Ok(())
}

#[tokio::test]
async fn metrics_count_what_happened() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "nums", 1)?;
    put_nums(&log, 100, 0)?;
    let mut app = StreamsApp::start(StreamsConfig::new("m"), doubler()?, log).await?;
    app.wait_until_caught_up().await?;
    let m = app.metrics();
    assert_eq!(m.state, AppState::Running);
    assert_eq!((m.records_in(), m.records_out()), (100, 100));
    assert_eq!(m.tasks[0].lag, Some(0));
    assert!(m.commits() >= 1);
    assert!(m.threads[0].commit_latency_max_ms > 0.0);
    assert!(m.tasks[0].restore.done);
    let line = m.line();
    assert!(
        line.starts_with("RUNNING") && line.contains("in 100") && line.contains("out 100"),
        "{line}"
    );
    app.close().await?;
    Ok(())
}
