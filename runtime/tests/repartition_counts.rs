//! Partition counts of repartition topics that the writing sub-topology also reads: a
//! stream joined with a re-keyed copy of itself (Nexmark q8's shape). The count comes from
//! the other sources, as Kafka's.

mod common;

use std::time::Duration;

use common::*;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{JoinWindows, StreamsBuilder, Topology};

fn self_join() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    let events = builder.stream::<String, String>("events");
    let by_value = events.select_key(|_, v| v.clone());
    events
        .join(
            &by_value,
            |a: &String, b: &String| format!("{a}+{b}"),
            JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(60))?,
        )
        .to("joined");
    builder.build()
}

#[tokio::test]
async fn a_repartition_topic_read_by_its_writer_takes_the_other_sources_count() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "events", 3)?;
    let e = |k: &str, v: &str, ts| (k.to_string(), v.to_string(), ts);
    produce(&log, "events", &[e("a", "a", 1_000), e("b", "c", 2_000)])?;
    let mut app =
        StreamsApp::start(StreamsConfig::new("selfjoin"), self_join()?, log.clone()).await?;
    app.run_until_caught_up().await?;
    let topics = log.list_topics()?;
    let repartition = topics
        .iter()
        .find(|t| t.starts_with("selfjoin-") && t.ends_with("-repartition"))
        .ok_or("no repartition topic")?;
    assert_eq!(log.describe_topic(repartition)?.partitions.len(), 3);
    let joined: Vec<_> = read_all(&log, "joined")?.into_values().flatten().collect();
    assert_eq!(joined.len(), 1, "only a joins itself: {joined:?}");
    assert_eq!(joined[0].value.as_deref(), Some(&b"a+a"[..]));
    Ok(())
}
