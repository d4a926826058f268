//! Where a source starts without a committed offset: `Consumed::with_offset_reset` per
//! source, else the earliest offset (Kafka Streams' default). Once an offset is committed
//! the source resumes there, whatever its reset.

mod common;

use common::*;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Consumed, OffsetReset, StreamsBuilder, Topology};

fn topology() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("old-and-new")
        .to("all-out");
    builder
        .stream_with::<String, String>(
            &["only-new"],
            Consumed::default().with_offset_reset(OffsetReset::Latest),
        )
        .to("new-out");
    builder.build()
}

fn values(log: &freshet_log::Log, topic: &str) -> TestResult<Vec<String>> {
    let mut out = Vec::new();
    for r in read_all(log, topic)?.into_values().flatten() {
        out.push(String::from_utf8(
            r.value.as_deref().unwrap_or_default().to_vec(),
        )?);
    }
    out.sort();
    Ok(out)
}

fn records(prefix: &str, n: usize) -> Vec<(String, String, i64)> {
    (0..n)
        .map(|i| (format!("k{i}"), format!("{prefix}{i}"), i as i64))
        .collect()
}

#[tokio::test]
async fn a_latest_source_skips_what_was_there_before_its_first_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "old-and-new", 2)?;
    create(&log, "only-new", 2)?;
    produce(&log, "old-and-new", &records("before-", 3))?;
    produce(&log, "only-new", &records("before-", 3))?;
    let t = topology()?;
    assert_eq!(
        t.offset_reset("only-new", "reset"),
        Some(OffsetReset::Latest)
    );
    assert_eq!(t.offset_reset("old-and-new", "reset"), None);

    let mut app = StreamsApp::start(StreamsConfig::new("reset"), t, log.clone()).await?;
    app.wait_until_caught_up().await?;
    produce(&log, "old-and-new", &records("during-", 2))?;
    produce(&log, "only-new", &records("during-", 2))?;
    let start = std::time::Instant::now();
    while values(&log, "new-out")?.len() < 2 || values(&log, "all-out")?.len() < 5 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "timed out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.close().await?;
    // A restart resumes from the committed offsets: the reset applies only without one.
    produce(&log, "only-new", &records("after-", 2))?;
    let mut app = StreamsApp::start(StreamsConfig::new("reset"), topology()?, log.clone()).await?;
    app.run_until_caught_up().await?;

    assert_eq!(
        values(&log, "all-out")?,
        ["before-0", "before-1", "before-2", "during-0", "during-1"]
    );
    assert_eq!(
        values(&log, "new-out")?,
        ["after-0", "after-1", "during-0", "during-1"]
    );
    Ok(())
}
