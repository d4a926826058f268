//! Transactions in one process: fencing, isolation levels, the last stable offset, hidden
//! markers, offsets sent in a transaction, and recovery of a transaction left open.

mod common;

use common::TestResult;
use freshet_log::{
    Acks, Error, FetchOptions, Isolation, Log, LogConfig, OffsetAndMetadata, Record, StoredRecord,
    TopicConfig,
};

fn values(records: &[StoredRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

fn offsets_of(records: &[StoredRecord]) -> Vec<i64> {
    records.iter().map(|r| r.offset).collect()
}

fn read(log: &Log, topic: &str, p: u32, isolation: Isolation) -> TestResult<Vec<StoredRecord>> {
    Ok(log.read(topic, p, 0, 1 << 20, isolation)?)
}

/// A log without the background cleaner, so dropping it releases the directory at once.
fn open(dir: &std::path::Path) -> TestResult<Log> {
    Ok(Log::open_with(
        dir,
        LogConfig {
            cleaner_interval: None,
            ..LogConfig::default()
        },
    )?)
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("out", TopicConfig::partitions(2))?;
    let mut first = log.transactional_producer("app", Acks::Written)?;
    first.begin()?;
    first.append("out", 0, &[Record::new("k", "first-0")])?;
    first.append("out", 1, &[Record::new("k", "first-1")])?;
    let (pid, epoch) = first.producer_id_and_epoch();

    let mut second = log.transactional_producer("app", Acks::Written)?;
    let (pid2, epoch2) = second.producer_id_and_epoch();
    assert_eq!(pid2, pid, "same transactional id, same producer id");
    assert!(epoch2 > epoch, "the new producer has a newer epoch");

    // The first producer can neither write nor commit any more.
    let err = first
        .append("out", 0, &[Record::new("k", "late")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::ProducerFenced { transactional_id, epoch: e, current }
            if transactional_id == "app" && *e == epoch && *current == epoch2),
        "append: {err}"
    );
    let err = first.commit().unwrap_err();
    assert!(matches!(err, Error::ProducerFenced { .. }), "commit: {err}");
    let err = first.abort().unwrap_err();
    assert!(matches!(err, Error::ProducerFenced { .. }), "abort: {err}");

    // Its open transaction was aborted: read_uncommitted sees the records, read_committed
    // does not, and nothing is left open.
    for p in 0..2 {
        let o = log.offsets("out", p)?;
        assert_eq!(
            o.last_stable, o.end,
            "out-{p}: the fenced transaction is closed"
        );
        assert_eq!(o.end, 2, "out-{p}: one record and one abort marker");
        assert!(read(&log, "out", p, Isolation::ReadCommitted)?.is_empty());
        let uncommitted = read(&log, "out", p, Isolation::ReadUncommitted)?;
        assert_eq!(values(&uncommitted), [format!("first-{p}")]);
    }
    // The late append never reached the log.
    assert_eq!(log.offsets("out", 0)?.end, 2);

    // The new producer works.
    second.begin()?;
    second.append("out", 0, &[Record::new("k", "second")])?;
    second.commit()?;
    let committed = read(&log, "out", 0, Isolation::ReadCommitted)?;
    assert_eq!(values(&committed), ["second"]);
    assert_eq!(offsets_of(&committed), [2]);
    Ok(())
}

#[test]
fn read_committed_hides_aborted_records_that_read_uncommitted_shows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    for (i, commit) in [true, false, true, false, false, true]
        .into_iter()
        .enumerate()
    {
        tx.begin()?;
        tx.append("t", 0, &[Record::new("k", format!("txn-{i}-a"))])?;
        log.append(
            "t",
            0,
            &[Record::new("k", format!("plain-{i}"))],
            Acks::Written,
        )?;
        tx.append("t", 0, &[Record::new("k", format!("txn-{i}-b"))])?;
        if commit {
            tx.commit()?;
        } else {
            tx.abort()?;
        }
    }
    let committed = values(&read(&log, "t", 0, Isolation::ReadCommitted)?);
    let uncommitted = values(&read(&log, "t", 0, Isolation::ReadUncommitted)?);
    let mut want_committed = Vec::new();
    let mut want_uncommitted = Vec::new();
    for (i, commit) in [true, false, true, false, false, true]
        .into_iter()
        .enumerate()
    {
        let recs = [
            format!("txn-{i}-a"),
            format!("plain-{i}"),
            format!("txn-{i}-b"),
        ];
        want_uncommitted.extend(recs.iter().cloned());
        if commit {
            want_committed.extend(recs);
        } else {
            // A plain append inside an aborted transaction's range is not part of it.
            want_committed.push(format!("plain-{i}"));
        }
    }
    assert_eq!(committed, want_committed);
    assert_eq!(uncommitted, want_uncommitted);

    // Both survive a reopen (the aborted ranges are durable).
    drop(tx);
    drop(log);
    let log = open(dir.path())?;
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadCommitted)?),
        want_committed
    );
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadUncommitted)?),
        want_uncommitted
    );
    Ok(())
}

#[test]
fn last_stable_offset_stays_at_an_open_transaction_while_plain_appends_go_on() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    log.append(
        "t",
        0,
        &[Record::new("k", "p0"), Record::new("k", "p1")],
        Acks::Written,
    )?;
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    tx.begin()?;
    let at = tx.append("t", 0, &[Record::new("k", "t2")])?;
    assert_eq!(at.base_offset, 2);
    for v in ["p3", "p4"] {
        log.append("t", 0, &[Record::new("k", v)], Acks::Written)?;
    }
    let o = log.offsets("t", 0)?;
    assert_eq!((o.start, o.last_stable, o.end), (0, 2, 5));
    // read_committed stops at the last stable offset, read_uncommitted goes to the end.
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadCommitted)?),
        ["p0", "p1"]
    );
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadUncommitted)?),
        ["p0", "p1", "t2", "p3", "p4"]
    );
    // A read_committed fetch does not move past the last stable offset either.
    let options = FetchOptions::default();
    let fetched = log.try_fetch(&[("t".to_string(), 0, 0)], &options)?;
    assert_eq!(fetched[0].next_offset, 2);
    assert!(log
        .try_fetch(&[("t".to_string(), 0, 2)], &options)?
        .is_empty());

    tx.commit()?;
    let o = log.offsets("t", 0)?;
    assert_eq!(
        (o.last_stable, o.end),
        (6, 6),
        "the commit marker takes offset 5"
    );
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadCommitted)?),
        ["p0", "p1", "t2", "p3", "p4"]
    );
    Ok(())
}

#[test]
fn transaction_markers_are_hidden_from_both_isolation_levels() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    tx.begin()?;
    tx.append("t", 0, &[Record::new("k", "a"), Record::new("k", "b")])?;
    tx.commit()?; // marker at 2
    tx.begin()?;
    tx.append("t", 0, &[Record::new("k", "c")])?;
    tx.abort()?; // marker at 4
    log.append("t", 0, &[Record::new("k", "d")], Acks::Written)?;
    assert_eq!(log.offsets("t", 0)?.end, 6);

    let committed = read(&log, "t", 0, Isolation::ReadCommitted)?;
    assert_eq!(offsets_of(&committed), [0, 1, 5]);
    let uncommitted = read(&log, "t", 0, Isolation::ReadUncommitted)?;
    assert_eq!(offsets_of(&uncommitted), [0, 1, 3, 5]);
    // Reading from a marker's offset starts after it.
    for (isolation, from_commit_marker) in [
        (Isolation::ReadCommitted, vec![5]),
        (Isolation::ReadUncommitted, vec![3, 5]),
    ] {
        let read_from = |at| log.read("t", 0, at, 1 << 20, isolation);
        assert_eq!(offsets_of(&read_from(2)?), from_commit_marker);
        assert_eq!(offsets_of(&read_from(4)?), [5]);
    }
    // A fetch of only markers and aborted data moves the position past them.
    let options = FetchOptions::default();
    let fetched = log.try_fetch(&[("t".to_string(), 0, 2)], &options)?;
    assert_eq!(offsets_of(&fetched[0].records), [5]);
    assert_eq!(fetched[0].next_offset, 6);
    Ok(())
}

#[test]
fn offsets_sent_in_a_transaction_become_visible_only_at_commit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("in", TopicConfig::partitions(1))?;
    log.create_topic("out", TopicConfig::partitions(1))?;
    let om = |offset: i64, meta: &str| OffsetAndMetadata {
        offset,
        metadata: meta.to_string(),
    };
    let mut tx = log.transactional_producer("p", Acks::Written)?;

    tx.begin()?;
    tx.append("out", 0, &[Record::new("k", "v1")])?;
    tx.send_offsets("g", None, &[("in".to_string(), 0, om(10, "first"))])?;
    assert_eq!(log.committed_offset("g", "in", 0)?, None, "before commit");
    tx.commit()?;
    assert_eq!(log.committed_offset("g", "in", 0)?, Some(om(10, "first")));

    tx.begin()?;
    tx.send_offsets("g", None, &[("in".to_string(), 0, om(20, "aborted"))])?;
    tx.append("out", 0, &[Record::new("k", "v2")])?;
    assert_eq!(log.committed_offset("g", "in", 0)?, Some(om(10, "first")));
    tx.abort()?;
    assert_eq!(
        log.committed_offset("g", "in", 0)?,
        Some(om(10, "first")),
        "an aborted transaction's offsets never apply"
    );

    tx.begin()?;
    tx.send_offsets("g", None, &[("in".to_string(), 0, om(30, "third"))])?;
    tx.commit()?;
    assert_eq!(log.committed_offset("g", "in", 0)?, Some(om(30, "third")));

    // The same after a reopen, where offsets are replayed from disk.
    drop(tx);
    drop(log);
    let log = open(dir.path())?;
    assert_eq!(log.committed_offset("g", "in", 0)?, Some(om(30, "third")));
    Ok(())
}

#[test]
fn reopening_after_a_transaction_left_open_aborts_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (pid, epoch) = {
        let log = open(dir.path())?;
        log.create_topic("t", TopicConfig::partitions(2))?;
        log.append("t", 0, &[Record::new("k", "before")], Acks::Written)?;
        let mut tx = log.transactional_producer("p", Acks::Written)?;
        tx.begin()?;
        tx.append("t", 0, &[Record::new("k", "open-0")])?;
        tx.append("t", 1, &[Record::new("k", "open-1")])?;
        tx.send_offsets(
            "g",
            None,
            &[("t".to_string(), 0, OffsetAndMetadata::new(1))],
        )?;
        log.append("t", 1, &[Record::new("k", "plain-after")], Acks::Written)?;
        assert_eq!(log.offsets("t", 1)?.last_stable, 0);
        // A crash: the log goes away with the transaction open, no commit, no abort.
        tx.producer_id_and_epoch()
    };
    let log = open(dir.path())?;
    for p in 0..2 {
        let o = log.offsets("t", p)?;
        assert_eq!(
            o.last_stable, o.end,
            "t-{p}: recovery closed the transaction"
        );
    }
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadCommitted)?),
        ["before"]
    );
    assert_eq!(
        values(&read(&log, "t", 1, Isolation::ReadCommitted)?),
        ["plain-after"]
    );
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadUncommitted)?),
        ["before", "open-0"]
    );
    assert_eq!(
        values(&read(&log, "t", 1, Isolation::ReadUncommitted)?),
        ["open-1", "plain-after"]
    );
    assert_eq!(log.committed_offset("g", "t", 0)?, None);

    // The same id starts afresh, with a newer epoch, and commits.
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    let (pid2, epoch2) = tx.producer_id_and_epoch();
    assert_eq!(pid2, pid);
    assert!(epoch2 > epoch);
    tx.begin()?;
    tx.append("t", 0, &[Record::new("k", "after")])?;
    tx.commit()?;
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadCommitted)?),
        ["before", "after"]
    );

    // Recovery does not undo itself on the next open.
    drop(tx);
    drop(log);
    let log = open(dir.path())?;
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadCommitted)?),
        ["before", "after"]
    );
    assert_eq!(
        values(&read(&log, "t", 0, Isolation::ReadUncommitted)?),
        ["before", "open-0", "after"]
    );
    Ok(())
}

#[test]
fn a_committed_transaction_stays_visible_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic("t", TopicConfig::partitions(3))?;
        let mut tx = log.transactional_producer("p", Acks::Synced)?;
        tx.begin()?;
        for p in 0..3 {
            tx.append("t", p, &[Record::new("k", format!("v{p}"))])?;
        }
        tx.commit()?;
    }
    let log = open(dir.path())?;
    for p in 0..3 {
        let o = log.offsets("t", p)?;
        assert_eq!((o.last_stable, o.end), (2, 2));
        assert_eq!(
            values(&read(&log, "t", p, Isolation::ReadCommitted)?),
            [format!("v{p}")]
        );
    }
    Ok(())
}

#[test]
fn transaction_calls_in_the_wrong_state_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    let err = tx.append("t", 0, &[Record::new("k", "v")]).unwrap_err();
    assert!(matches!(err, Error::InvalidTxnState { .. }), "{err}");
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, Error::InvalidTxnState { .. }), "{err}");
    tx.begin()?;
    let err = tx.begin().unwrap_err();
    assert!(matches!(err, Error::InvalidTxnState { .. }), "{err}");
    // An empty transaction commits without writing anything.
    tx.commit()?;
    assert_eq!(log.offsets("t", 0)?.end, 0);
    Ok(())
}

#[test]
fn a_torn_aborted_index_entry_is_cut_off_so_later_aborts_stay_hidden(
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let config = || freshet_log::LogConfig {
        cleaner_interval: None,
        ..freshet_log::LogConfig::default()
    };
    let abort_one = |log: &freshet_log::Log, value: &str| -> freshet_log::Result<()> {
        let mut tx = log.transactional_producer("tx", freshet_log::Acks::Written)?;
        tx.begin()?;
        tx.append("t", 0, &[freshet_log::Record::new("k", value.to_string())])?;
        tx.abort()
    };
    {
        let log = freshet_log::Log::open_with(dir.path(), config())?;
        log.create_topic("t", freshet_log::TopicConfig::partitions(1))?;
        abort_one(&log, "a1")?;
    }
    // A crash in the middle of the next entry's write leaves a partial entry.
    let idx = dir.path().join("topics/t/0/aborted.idx");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&idx)?
        .write_all(&[0xAB; 7])?;
    {
        let log = freshet_log::Log::open_with(dir.path(), config())?;
        abort_one(&log, "a2")?;
        log.append(
            "t",
            0,
            &[freshet_log::Record::new("k", "ok")],
            freshet_log::Acks::Written,
        )?;
    }
    let log = freshet_log::Log::open_with(dir.path(), config())?;
    let values: Vec<_> = log
        .read("t", 0, 0, 1 << 20, freshet_log::Isolation::ReadCommitted)?
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values, vec![Some(bytes::Bytes::from_static(b"ok"))]);
    assert_eq!(std::fs::metadata(&idx)?.len() % 24, 0);
    Ok(())
}
