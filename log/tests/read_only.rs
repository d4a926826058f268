//! A read-only handle beside the owning writer: it sees what the writer wrote before and
//! after it opened, stops read_committed at the last stable offset, refuses writes, and its
//! fetches wait for new data by polling.

mod common;

use std::time::{Duration, Instant};

use common::TestResult;
use freshet_log::{
    Acks, Error, FetchOptions, Isolation, Log, OffsetAndMetadata, Record, StoredRecord, TopicConfig,
};

fn values(records: &[StoredRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

fn read_values(log: &Log, topic: &str, p: u32, isolation: Isolation) -> TestResult<Vec<String>> {
    Ok(values(&common::read_all(log, topic, p, isolation)?))
}

#[test]
fn read_only_handle_sees_topics_and_records_written_before_and_after_it_opened() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = Log::open(dir.path())?;
    writer.create_topic("early", TopicConfig::partitions(2))?;
    writer.append("early", 1, &[Record::new("k", "e1")], Acks::Written)?;

    let reader = Log::open_read_only(dir.path())?;
    assert!(reader.is_read_only());
    assert_eq!(reader.list_topics()?, ["early"]);
    assert_eq!(
        read_values(&reader, "early", 1, Isolation::ReadCommitted)?,
        ["e1"]
    );

    // Written after the reader opened: each call looks again.
    writer.append("early", 1, &[Record::new("k", "e2")], Acks::Written)?;
    writer.create_topic("late", TopicConfig::partitions(1))?;
    writer.append(
        "late",
        0,
        &[Record::new("k", "l1"), Record::new("k", "l2")],
        Acks::Written,
    )?;
    assert_eq!(reader.list_topics()?, ["early", "late"]);
    assert!(reader.topic_exists("late"));
    assert_eq!(
        read_values(&reader, "early", 1, Isolation::ReadCommitted)?,
        ["e1", "e2"]
    );
    assert_eq!(
        read_values(&reader, "late", 0, Isolation::ReadUncommitted)?,
        ["l1", "l2"]
    );
    let desc = reader.describe_topic("late")?;
    assert_eq!(desc.id, writer.describe_topic("late")?.id);
    assert_eq!(desc.partitions[0].offsets.end, 2);

    // A deleted topic disappears, a recreated one is seen with its new id.
    let old_id = desc.id;
    writer.delete_topic("late")?;
    assert_eq!(reader.list_topics()?, ["early"]);
    writer.create_topic("late", TopicConfig::partitions(1))?;
    writer.append("late", 0, &[Record::new("k", "new")], Acks::Written)?;
    assert_ne!(reader.describe_topic("late")?.id, old_id);
    assert_eq!(
        read_values(&reader, "late", 0, Isolation::ReadCommitted)?,
        ["new"]
    );
    Ok(())
}

#[test]
fn read_only_handle_follows_segment_rolls() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = Log::open(dir.path())?;
    let config = TopicConfig::partitions(1).with("segment.bytes", "300")?;
    writer.create_topic("t", config)?;
    let reader = Log::open_read_only(dir.path())?;
    let mut want = Vec::new();
    for i in 0..40 {
        let v = format!("value-{i:03}-{}", "x".repeat(i % 50));
        writer.append("t", 0, &[Record::new("k", v.clone())], Acks::Written)?;
        want.push(v);
        if i % 7 == 0 {
            assert_eq!(
                read_values(&reader, "t", 0, Isolation::ReadCommitted)?,
                want
            );
        }
    }
    let segments = reader.describe_topic("t")?.partitions[0].segments;
    assert!(segments > 5, "only {segments} segments");
    assert_eq!(
        read_values(&reader, "t", 0, Isolation::ReadCommitted)?,
        want
    );
    Ok(())
}

#[test]
fn read_only_handle_reads_committed_only_up_to_the_last_stable_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = Log::open(dir.path())?;
    writer.create_topic("t", TopicConfig::partitions(2))?;
    writer.append("t", 0, &[Record::new("k", "plain-0")], Acks::Written)?;
    let reader = Log::open_read_only(dir.path())?;

    let mut tx = writer.transactional_producer("p", Acks::Written)?;
    tx.begin()?;
    tx.append("t", 0, &[Record::new("k", "txn-a")])?;
    tx.append("t", 1, &[Record::new("k", "txn-b")])?;
    tx.send_offsets(
        "g",
        None,
        &[("t".to_string(), 0, OffsetAndMetadata::new(7))],
    )?;
    writer.append("t", 0, &[Record::new("k", "plain-1")], Acks::Written)?;

    // The open transaction holds the last stable offset back, for the reader as for the writer.
    let o = reader.offsets("t", 0)?;
    assert_eq!((o.last_stable, o.end), (1, 3));
    assert_eq!(o, writer.offsets("t", 0)?);
    assert_eq!(
        read_values(&reader, "t", 0, Isolation::ReadCommitted)?,
        ["plain-0"]
    );
    assert!(read_values(&reader, "t", 1, Isolation::ReadCommitted)?.is_empty());
    assert_eq!(
        read_values(&reader, "t", 0, Isolation::ReadUncommitted)?,
        ["plain-0", "txn-a", "plain-1"]
    );
    assert_eq!(reader.committed_offset("g", "t", 0)?, None);

    tx.commit()?;
    for p in 0..2 {
        let o = reader.offsets("t", p)?;
        assert_eq!(
            o.last_stable, o.end,
            "t-{p}: the reader sees the transaction closed"
        );
        assert_eq!(o, writer.offsets("t", p)?);
    }
    assert_eq!(
        read_values(&reader, "t", 0, Isolation::ReadCommitted)?,
        ["plain-0", "txn-a", "plain-1"]
    );
    assert_eq!(
        read_values(&reader, "t", 1, Isolation::ReadCommitted)?,
        ["txn-b"]
    );
    assert_eq!(
        reader.committed_offset("g", "t", 0)?,
        Some(OffsetAndMetadata::new(7))
    );

    // A second transaction, aborted: never visible to the reader's read_committed.
    tx.begin()?;
    tx.append("t", 1, &[Record::new("k", "aborted")])?;
    assert_eq!(reader.offsets("t", 1)?.last_stable, 2);
    tx.abort()?;
    let o = reader.offsets("t", 1)?;
    assert_eq!((o.last_stable, o.end), (4, 4));
    assert_eq!(
        read_values(&reader, "t", 1, Isolation::ReadCommitted)?,
        ["txn-b"]
    );
    assert_eq!(
        read_values(&reader, "t", 1, Isolation::ReadUncommitted)?,
        ["txn-b", "aborted"]
    );
    Ok(())
}

#[test]
fn writes_through_a_read_only_handle_fail_naming_the_owner() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = Log::open(dir.path())?;
    writer.create_topic("t", TopicConfig::partitions(1))?;
    let reader = Log::open_read_only(dir.path())?;
    let me = std::process::id();
    let check = |what: &str, err: Error| {
        assert!(
            matches!(&err, Error::ReadOnly { pid: Some(pid), .. } if *pid == me),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("pid {me}")),
            "{what}: {err}"
        );
    };
    check(
        "append",
        reader
            .append("t", 0, &[Record::new("k", "v")], Acks::Written)
            .unwrap_err(),
    );
    check(
        "create topic",
        reader
            .create_topic("u", TopicConfig::partitions(1))
            .unwrap_err(),
    );
    check("delete topic", reader.delete_topic("t").unwrap_err());
    check(
        "alter topic",
        reader.alter_topic("t", Some(2), &[]).unwrap_err(),
    );
    check(
        "delete records",
        reader.delete_records("t", 0, 0).unwrap_err(),
    );
    check(
        "commit offsets",
        reader
            .commit_offsets(
                "g",
                None,
                &[("t".to_string(), 0, OffsetAndMetadata::new(0))],
            )
            .unwrap_err(),
    );
    check(
        "transactional producer",
        reader
            .transactional_producer("p", Acks::Written)
            .unwrap_err(),
    );
    // The producer hands its waiters an equivalent error, with the same text.
    let err = reader
        .producer(Default::default())
        .send_blocking("t", Record::new("k", "v"))
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("pid {me}")),
        "producer send: {err}"
    );
    // Nothing was written.
    assert_eq!(writer.offsets("t", 0)?.end, 0);
    assert_eq!(writer.list_topics()?, ["t"]);
    Ok(())
}

#[test]
fn opening_read_only_where_there_is_no_log_fails() -> TestResult {
    let dir = tempfile::tempdir()?;
    let err = Log::open_read_only(dir.path().join("nothing-here")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_fetch_with_a_timeout_returns_data_appended_meanwhile() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = Log::open(dir.path())?;
    writer.create_topic("t", TopicConfig::partitions(2))?;
    let reader = Log::open_read_only(dir.path())?;
    let positions = [("t".to_string(), 0, 0), ("t".to_string(), 1, 0)];

    // Nothing there: an empty result after the timeout.
    let started = Instant::now();
    let options = FetchOptions {
        timeout: Duration::from_millis(150),
        ..FetchOptions::default()
    };
    assert!(reader.fetch(&positions, &options).await?.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));

    // Data appended while the fetch waits is returned, well before the timeout.
    let appender = {
        let writer = writer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            writer.append("t", 1, &[Record::new("k", "late")], Acks::Written)
        })
    };
    let options = FetchOptions {
        timeout: Duration::from_secs(20),
        ..FetchOptions::default()
    };
    let started = Instant::now();
    let fetched = reader.fetch(&positions, &options).await?;
    let waited = started.elapsed();
    appender.await??;
    assert_eq!(fetched.len(), 1);
    assert_eq!((fetched[0].topic.as_str(), fetched[0].partition), ("t", 1));
    assert_eq!(values(&fetched[0].records), ["late"]);
    assert_eq!(fetched[0].next_offset, 1);
    assert!(
        waited < Duration::from_secs(10),
        "the fetch waited {waited:?}"
    );
    Ok(())
}
