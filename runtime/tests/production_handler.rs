//! `production.exception.handler`: an output the log refuses for a reason of its own — here
//! a value larger than the sink topic takes (`segment.bytes` ≤ 1 MiB caps a batch at 1 MiB) —
//! fails the app (`fail`, the default: nothing of the transaction is visible), is skipped and
//! counted as dropped (`log-and-continue`), or goes to the dead-letter topic with
//! `__streams.errors.*` headers (`dead-letter`), the rest of the transaction committing.

mod common;

use std::time::Duration;

use common::*;
use freshet_log::{Log, StoredRecord, TopicConfig};
use freshet_runtime::{
    AppState, Error, HandlerPolicy, ProcessingGuarantee, StreamsApp, StreamsConfig,
};
use freshet_streams::{StreamsBuilder, Topology};

const BIG: usize = 2 << 20;

/// `in` → values `big` become 2 MiB → `out`.
fn topology() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .map_values(|v| {
            if v == "big" {
                "x".repeat(BIG)
            } else {
                v.clone()
            }
        })
        .to("out");
    builder.build()
}

/// `in` with `k0..k9` (`k5` is `big`), `out` taking at most 1 MiB per batch, `dlq`.
fn setup(log: &Log) -> TestResult {
    create(log, "in", 1)?;
    log.create_topic(
        "out",
        TopicConfig::partitions(1).with("segment.bytes", "65536")?,
    )?;
    create(log, "dlq", 1)?;
    let input: Vec<(String, String, i64)> = (0..10)
        .map(|i| {
            let v = if i == 5 {
                "big".into()
            } else {
                format!("v{i}")
            };
            (format!("k{i}"), v, i)
        })
        .collect();
    produce(log, "in", &input)
}

fn keys(records: &[StoredRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

fn header(r: &StoredRecord, name: &str) -> Option<String> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

fn config(id: &str) -> StreamsConfig {
    // One commit for the whole input: every output is in one transaction.
    StreamsConfig::new(id).with_commit_interval(Duration::from_secs(60))
}

#[tokio::test]
async fn fail_stops_the_app_and_aborts_the_transaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    setup(&log)?;
    let mut app = StreamsApp::start(config("fails"), topology()?, log.clone()).await?;
    let e = app.wait_until_caught_up().await.unwrap_err();
    assert!(
        e.to_string().contains("production.exception.handler=fail"),
        "{e}"
    );
    assert!(app.close().await.is_err());
    assert_eq!(app.state(), AppState::Error);
    assert_eq!(
        keys(&read_all(&log, "out")?[&0]),
        Vec::<String>::new(),
        "k0..k4 were appended before k5 was refused; the abort hides them"
    );
    assert!(read_all(&log, "dlq")?[&0].is_empty());
    Ok(())
}

#[tokio::test]
async fn log_and_continue_skips_the_record_and_commits_the_rest() -> TestResult {
    for (id, guarantee) in [
        ("cont-eos", ProcessingGuarantee::ExactlyOnceV2),
        ("cont-alos", ProcessingGuarantee::AtLeastOnce),
    ] {
        let dir = tempfile::tempdir()?;
        let log = open_log(dir.path())?;
        setup(&log)?;
        let config =
            StreamsConfig::from_pairs(id, [("production.exception.handler", "log-and-continue")])?
                .with_processing_guarantee(guarantee)
                .with_commit_interval(Duration::from_secs(60));
        let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
        app.wait_until_caught_up().await?;
        assert_eq!(app.state(), AppState::Running, "{guarantee}");
        let tasks = app.metrics().tasks;
        assert_eq!(tasks.iter().map(|t| t.dropped_records).sum::<u64>(), 1);
        assert_eq!(tasks.iter().map(|t| t.dead_lettered).sum::<u64>(), 0);
        app.close().await?;
        assert_eq!(
            keys(&read_all(&log, "out")?[&0]),
            ["k0", "k1", "k2", "k3", "k4", "k6", "k7", "k8", "k9"],
            "{guarantee}"
        );
        assert!(read_all(&log, "dlq")?[&0].is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn dead_letter_sends_the_record_to_the_dlq_in_the_transaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    setup(&log)?;
    let config = config("dead")
        .with_dead_letter_topic("dlq")
        .with_production_handler(HandlerPolicy::DeadLetter);
    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    let tasks = app.metrics().tasks;
    assert_eq!(tasks.iter().map(|t| t.dropped_records).sum::<u64>(), 1);
    assert_eq!(tasks.iter().map(|t| t.dead_lettered).sum::<u64>(), 1);
    app.close().await?;
    assert_eq!(
        keys(&read_all(&log, "out")?[&0]),
        ["k0", "k1", "k2", "k3", "k4", "k6", "k7", "k8", "k9"]
    );
    let dlq = &read_all(&log, "dlq")?[&0];
    assert_eq!(keys(dlq), ["k5"]);
    let r = &dlq[0];
    assert_eq!(r.value.as_deref().map(<[u8]>::len), Some(BIG));
    assert_eq!(r.timestamp, 5);
    assert_eq!(
        header(r, "__streams.errors.exception").as_deref(),
        Some("RecordTooLarge")
    );
    assert_eq!(header(r, "__streams.errors.topic").as_deref(), Some("out"));
    assert_eq!(
        header(r, "__streams.errors.partition").as_deref(),
        Some("0")
    );
    assert_eq!(header(r, "__streams.errors.offset").as_deref(), Some("-1"));
    let message = header(r, "__streams.errors.message").unwrap_or_default();
    assert!(message.contains("exceeds segment.bytes"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_dead_letter_production_handler_needs_the_topic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    setup(&log)?;
    let config = config("no-dlq").with_production_handler(HandlerPolicy::DeadLetter);
    let e = match StreamsApp::start(config, topology()?, log).await {
        Ok(_) => return Err("started without a dead-letter topic".into()),
        Err(e) => e,
    };
    assert!(
        matches!(e, Error::InvalidSetting { ref key, .. } if key == "production.exception.handler"),
        "{e}"
    );
    Ok(())
}
