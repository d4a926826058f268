//! Fetching and the consumer: many partitions per fetch, waiting without busy polling,
//! limits, seeks, out-of-range errors, and positions that move past transaction markers.

use std::time::{Duration, Instant};

use freshet_log::{
    Acks, Error, FetchOptions, FetchPosition, Isolation, Log, Record, SeekTo, TopicConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn values(n: usize, prefix: &str) -> Vec<Record> {
    (0..n)
        .map(|i| Record::new("k", format!("{prefix}{i}")))
        .collect()
}

fn pos(topic: &str, partition: u32, offset: i64) -> FetchPosition {
    (topic.to_string(), partition, offset)
}

/// CPU time this thread has used (the fetch runs on it: tests use a current-thread runtime).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; CLOCK_THREAD_CPUTIME_ID is valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[tokio::test]
async fn fetch_returns_data_from_every_partition_that_has_some() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(4))?;
    log.create_topic("u", TopicConfig::partitions(1))?;
    log.append("t", 1, &values(2, "one-"), Acks::Written)?;
    log.append("t", 3, &values(3, "three-"), Acks::Written)?;
    log.append("u", 0, &values(1, "u-"), Acks::Written)?;
    let positions: Vec<FetchPosition> = (0..4)
        .map(|p| pos("t", p, 0))
        .chain([pos("u", 0, 0)])
        .collect();
    let started = Instant::now();
    let fetched = log
        .fetch(
            &positions,
            &FetchOptions {
                timeout: Duration::from_secs(5),
                ..FetchOptions::default()
            },
        )
        .await?;
    assert!(started.elapsed() < Duration::from_secs(1), "data was there");
    let got: Vec<(&str, u32, usize, i64)> = fetched
        .iter()
        .map(|f| {
            (
                f.topic.as_str(),
                f.partition,
                f.records.len(),
                f.next_offset,
            )
        })
        .collect();
    assert_eq!(got, [("t", 1, 2, 2), ("t", 3, 3, 3), ("u", 0, 1, 1)]);
    assert_eq!(
        fetched[1].records[2].value.as_deref(),
        Some(&b"three-2"[..])
    );

    // Unknown topics and partitions are errors, not empty results.
    let opts = FetchOptions::default();
    assert!(matches!(
        log.fetch(&[pos("nope", 0, 0)], &opts).await,
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.fetch(&[pos("t", 4, 0)], &opts).await,
        Err(Error::UnknownPartition { partition: 4, .. })
    ));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn fetch_waits_without_busy_polling_and_wakes_on_append() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(3))?;
    let writer = log.clone();
    let appender = std::thread::spawn(move || -> freshet_log::Result<Instant> {
        std::thread::sleep(Duration::from_millis(300));
        writer.append("t", 2, &values(1, "late-"), Acks::Written)?;
        Ok(Instant::now())
    });
    let cpu_before = thread_cpu_time();
    let positions: Vec<FetchPosition> = (0..3).map(|p| pos("t", p, 0)).collect();
    let fetched = log
        .fetch(
            &positions,
            &FetchOptions {
                timeout: Duration::from_secs(10),
                ..FetchOptions::default()
            },
        )
        .await?;
    let returned = Instant::now();
    let cpu = thread_cpu_time() - cpu_before;
    let appended = appender.join().expect("appender thread")?;
    assert_eq!(fetched.len(), 1);
    assert_eq!((fetched[0].partition, fetched[0].records.len()), (2, 1));
    let delay = returned.saturating_duration_since(appended);
    assert!(
        // Far below the 10 s timeout: woken by the append, not by the clock (generous for
        // a loaded CI machine).
        delay < Duration::from_millis(1000),
        "woke {delay:?} after the append"
    );
    // ~300 ms of waiting; polling in a loop would burn most of it.
    assert!(
        cpu < Duration::from_millis(100),
        "the wait used {cpu:?} of CPU"
    );
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn fetch_with_no_data_returns_empty_after_the_timeout() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(2))?;
    log.append("t", 0, &values(3, "v"), Acks::Written)?;
    let timeout = Duration::from_millis(200);
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    // Positioned at the end of both partitions: nothing to return.
    let fetched = log
        .fetch(
            &[pos("t", 0, 3), pos("t", 1, 0)],
            &FetchOptions {
                timeout,
                ..FetchOptions::default()
            },
        )
        .await?;
    let waited = started.elapsed();
    assert!(fetched.is_empty(), "{fetched:?}");
    assert!(waited >= timeout, "returned after {waited:?}");
    assert!(waited < Duration::from_secs(2), "returned after {waited:?}");
    assert!(thread_cpu_time() - cpu_before < Duration::from_millis(100));
    // An unrelated append (another topic) wakes the fetch, which goes back to waiting.
    log.create_topic("other", TopicConfig::partitions(1))?;
    let writer = log.clone();
    let noise = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer.append("other", 0, &values(1, "n"), Acks::Written)
    });
    let started = Instant::now();
    let fetched = log
        .fetch(
            &[pos("t", 0, 3)],
            &FetchOptions {
                timeout,
                ..FetchOptions::default()
            },
        )
        .await?;
    noise.join().expect("noise thread")?;
    assert!(fetched.is_empty());
    assert!(started.elapsed() >= timeout);
    Ok(())
}

#[tokio::test]
async fn max_records_and_byte_limits_are_respected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(3))?;
    // Partition 0: one batch of 10. Partition 1: ten batches of one 100-byte record.
    log.append("t", 0, &values(10, "a"), Acks::Written)?;
    for i in 0..10 {
        let r = Record::new("k", format!("{i:0>100}"));
        log.append("t", 1, &[r], Acks::Written)?;
    }
    log.append("t", 2, &values(10, "c"), Acks::Written)?;
    let all: Vec<FetchPosition> = (0..3).map(|p| pos("t", p, 0)).collect();

    let limited = |max_records: usize| FetchOptions {
        max_records,
        ..FetchOptions::default()
    };
    let fetched = log.try_fetch(&all, &limited(5))?;
    assert_eq!(fetched.len(), 1);
    let offsets: Vec<i64> = fetched[0].records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
    assert_eq!(
        fetched[0].next_offset, 5,
        "continues right after the last returned"
    );
    let fetched = log.try_fetch(&all, &limited(15))?;
    let counts: Vec<usize> = fetched.iter().map(|f| f.records.len()).collect();
    assert_eq!(counts, [10, 5]);

    // Per partition, a fetch returns whole batches: at least one, and stops once the
    // budget is used.
    let tight = FetchOptions {
        max_partition_bytes: 1,
        ..FetchOptions::default()
    };
    let fetched = log.try_fetch(&all, &tight)?;
    let counts: Vec<usize> = fetched.iter().map(|f| f.records.len()).collect();
    assert_eq!(counts, [10, 1, 10], "one whole batch per partition");
    let some = FetchOptions {
        max_partition_bytes: 250,
        ..FetchOptions::default()
    };
    let fetched = log.try_fetch(&[pos("t", 1, 0)], &some)?;
    let n = fetched[0].records.len();
    assert!(
        (1..=3).contains(&n),
        "{n} batches of ~140 bytes for 250 bytes"
    );
    assert_eq!(fetched[0].next_offset, n as i64);
    // The total budget: once spent, later partitions wait for the next fetch.
    let total = FetchOptions {
        max_bytes: 1,
        ..FetchOptions::default()
    };
    assert_eq!(log.try_fetch(&all, &total)?.len(), 1);

    // A consumer with small limits still sees everything once, in order.
    let mut consumer = log.consumer(FetchOptions {
        max_records: 4,
        max_partition_bytes: 200,
        timeout: Duration::from_millis(10),
        ..FetchOptions::default()
    });
    for p in 0..3 {
        consumer.assign("t", p, SeekTo::Beginning)?;
    }
    let mut seen: Vec<(u32, i64)> = Vec::new();
    for _ in 0..100 {
        if consumer.caught_up()? {
            break;
        }
        for f in consumer.poll().await? {
            assert!(f.records.len() <= 4);
            seen.extend(f.records.iter().map(|r| (f.partition, r.offset)));
        }
    }
    let want: Vec<(u32, i64)> = (0..3).flat_map(|p| (0..10).map(move |o| (p, o))).collect();
    seen.sort();
    assert_eq!(seen, want);
    Ok(())
}

#[tokio::test]
async fn seek_to_beginning_end_offset_and_timestamp() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    for i in 0..10i64 {
        let r = Record::new("k", format!("v{i}")).with_timestamp((i + 1) * 100);
        log.append("t", 0, &[r], Acks::Written)?;
    }
    log.delete_records("t", 0, 2)?;
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    tx.begin()?;
    tx.append("t", 0, &values(2, "open-"))?;

    let mut rc = log.consumer(FetchOptions {
        timeout: Duration::from_millis(10),
        ..FetchOptions::default()
    });
    let mut ru = log.consumer(FetchOptions {
        isolation: Isolation::ReadUncommitted,
        timeout: Duration::from_millis(10),
        ..FetchOptions::default()
    });
    let at = |c: &freshet_log::Consumer| c.positions()[&("t".to_string(), 0)];
    rc.assign("t", 0, SeekTo::Beginning)?;
    assert_eq!(at(&rc), 2);
    rc.seek("t", 0, SeekTo::End)?;
    assert_eq!(at(&rc), 10, "read_committed ends at the last stable offset");
    ru.assign("t", 0, SeekTo::End)?;
    assert_eq!(at(&ru), 12, "read_uncommitted ends at the log end");
    rc.seek("t", 0, SeekTo::Offset(5))?;
    assert_eq!(at(&rc), 5);
    rc.seek("t", 0, SeekTo::Timestamp(450))?;
    assert_eq!(
        at(&rc),
        4,
        "first record at or after 450 is 500 at offset 4"
    );
    rc.seek("t", 0, SeekTo::Timestamp(500))?;
    assert_eq!(at(&rc), 4);
    rc.seek("t", 0, SeekTo::Timestamp(0))?;
    assert_eq!(at(&rc), 2, "deleted records are not found by time");
    ru.seek("t", 0, SeekTo::Timestamp(i64::MAX))?;
    assert_eq!(at(&ru), 12, "past every timestamp: the end");

    rc.seek("t", 0, SeekTo::Offset(5))?;
    let fetched = rc.poll().await?;
    let got: Vec<&[u8]> = fetched[0]
        .records
        .iter()
        .map(|r| r.value.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(got, [&b"v5"[..], b"v6", b"v7", b"v8", b"v9"]);
    assert_eq!(at(&rc), 10);
    assert!(rc.caught_up()?);
    tx.abort()?;
    Ok(())
}

#[tokio::test]
async fn out_of_range_positions_fail_with_the_valid_range() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    log.append("t", 0, &values(10, "v"), Acks::Written)?;
    let mut consumer = log.consumer(FetchOptions::default());

    let err = consumer
        .assign("t", 0, SeekTo::Offset(42))
        .expect_err("past the end");
    assert_eq!(
        err.to_string(),
        "offset 42 out of range for t-0 (valid 0..10)"
    );
    assert!(matches!(
        err,
        Error::OffsetOutOfRange {
            offset: 42,
            start: 0,
            end: 10,
            partition: 0,
            ..
        }
    ));
    let err = log
        .fetch(&[pos("t", 0, 42)], &FetchOptions::default())
        .await
        .expect_err("past the end");
    assert_eq!(
        err.to_string(),
        "offset 42 out of range for t-0 (valid 0..10)"
    );
    let err = log
        .fetch(&[pos("t", 0, -1)], &FetchOptions::default())
        .await
        .expect_err("negative");
    assert_eq!(
        err.to_string(),
        "offset -1 out of range for t-0 (valid 0..10)"
    );
    // The end itself is a valid position (nothing to read yet).
    consumer.assign("t", 0, SeekTo::Offset(10))?;

    // Records deleted under a consumer's position: its next poll says so.
    consumer.seek("t", 0, SeekTo::Offset(1))?;
    log.delete_records("t", 0, 5)?;
    let err = consumer.poll().await.expect_err("position below the start");
    assert_eq!(
        err.to_string(),
        "offset 1 out of range for t-0 (valid 5..10)"
    );
    Ok(())
}

#[tokio::test]
async fn positions_move_past_markers_so_read_committed_catches_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    let quick = Duration::from_millis(10);
    let mut rc = log.consumer(FetchOptions {
        timeout: quick,
        ..FetchOptions::default()
    });
    let mut ru = log.consumer(FetchOptions {
        isolation: Isolation::ReadUncommitted,
        timeout: quick,
        ..FetchOptions::default()
    });
    rc.assign("t", 0, SeekTo::Beginning)?;
    ru.assign("t", 0, SeekTo::Beginning)?;
    let at = |c: &freshet_log::Consumer| c.positions()[&("t".to_string(), 0)];

    tx.begin()?;
    tx.append("t", 0, &values(3, "c"))?;
    // Open transaction: nothing stable yet, so read_committed is caught up; not so the
    // uncommitted reader.
    assert!(rc.poll().await?.is_empty());
    assert!(rc.caught_up()?);
    assert!(!ru.caught_up()?);
    tx.commit()?;
    assert!(!rc.caught_up()?);
    let fetched = rc.poll().await?;
    assert_eq!(fetched[0].records.len(), 3);
    assert_eq!(at(&rc), 4, "past the commit marker at offset 3");
    assert_eq!(log.offsets("t", 0)?.end, 4);
    assert!(rc.caught_up()?);

    // An aborted transaction yields no records, but the position still moves past it.
    tx.begin()?;
    tx.append("t", 0, &values(2, "x"))?;
    tx.abort()?;
    let fetched = rc.poll().await?;
    assert_eq!(fetched.len(), 1);
    assert!(fetched[0].records.is_empty());
    assert_eq!(fetched[0].next_offset, 7);
    assert!(rc.caught_up()?);
    // The uncommitted reader sees all five data records, never a marker.
    let mut seen = Vec::new();
    while !ru.caught_up()? {
        for f in ru.poll().await? {
            seen.extend(f.records.iter().map(|r| r.offset));
        }
    }
    assert_eq!(seen, [0, 1, 2, 4, 5]);
    assert_eq!(at(&ru), 7);

    // A waiting read_committed poll wakes when a transaction commits.
    tx.begin()?;
    tx.append("t", 0, &values(1, "w"))?;
    let committer = std::thread::spawn(move || -> freshet_log::Result<Instant> {
        std::thread::sleep(Duration::from_millis(200));
        tx.commit()?;
        Ok(Instant::now())
    });
    let fetched = log
        .fetch(
            &[pos("t", 0, at(&rc))],
            &FetchOptions {
                timeout: Duration::from_secs(10),
                ..FetchOptions::default()
            },
        )
        .await?;
    let returned = Instant::now();
    let committed = committer.join().expect("committer thread")?;
    assert_eq!(fetched[0].records.len(), 1);
    assert_eq!(fetched[0].next_offset, 9);
    let delay = returned.saturating_duration_since(committed);
    assert!(
        // Far below the 10 s timeout: woken by the append, not by the clock (generous for
        // a loaded CI machine).
        delay < Duration::from_millis(1000),
        "woke {delay:?} after the commit"
    );
    Ok(())
}

#[tokio::test]
async fn fetch_batches_lends_whole_batches_and_the_same_records_as_fetch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    log.append("t", 0, &values(100, "a-"), Acks::Written)?;
    log.append("t", 0, &values(100, "b-"), Acks::Written)?;
    let options = FetchOptions {
        max_records: 10,
        ..FetchOptions::default()
    };
    // From inside the first batch: the rest of it, whole, and not the next batch.
    let batches = log.try_fetch_batches(&[pos("t", 0, 5)], &options)?;
    assert_eq!(batches.len(), 1);
    let got = &batches[0];
    assert_eq!((got.records.len(), got.next_offset), (95, 100));
    assert_eq!(got.records.first_offset(), Some(5));
    let records = log.try_fetch(&[pos("t", 0, 5)], &options)?;
    assert_eq!(records[0].records.len(), 10);
    let viewed: Vec<_> = got.records.iter().take(10).map(|r| r.to_stored()).collect();
    assert_eq!(viewed, records[0].records);
    // The async fetch and the materialized form agree.
    let waited = log.fetch_batches(&[pos("t", 0, 100)], &options).await?;
    let all = waited[0].records.clone().into_records();
    assert_eq!(all.len(), 100);
    assert_eq!(all[0].value.as_deref(), Some(&b"b-0"[..]));
    Ok(())
}

#[tokio::test]
async fn a_fetch_reports_where_the_readable_records_end() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    for b in 0..10 {
        log.append("t", 0, &values(10, &format!("b{b}-")), Acks::Written)?;
    }
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    tx.begin()?;
    tx.append("t", 0, &values(5, "open-"))?;
    let options = |isolation| FetchOptions {
        max_records: 15,
        isolation,
        ..FetchOptions::default()
    };
    // Cut short by the record budget: read_committed ends at the open transaction, the
    // uncommitted reader at the log end; both well past where the read stopped.
    let rc = log.try_fetch_batches(&[pos("t", 0, 0)], &options(Isolation::ReadCommitted))?;
    assert_eq!((rc[0].next_offset, rc[0].readable_end), (20, 100));
    let ru = log.try_fetch(&[pos("t", 0, 0)], &options(Isolation::ReadUncommitted))?;
    assert_eq!((ru[0].next_offset, ru[0].readable_end), (15, 105));
    let rc = log.try_fetch(&[pos("t", 0, 90)], &options(Isolation::ReadCommitted))?;
    assert_eq!((rc[0].next_offset, rc[0].readable_end), (100, 100));
    // Committed: the stable offset moves past the marker.
    tx.commit()?;
    let rc = log.try_fetch_batches(&[pos("t", 0, 100)], &options(Isolation::ReadCommitted))?;
    assert_eq!(rc[0].records.len(), 5);
    assert_eq!((rc[0].next_offset, rc[0].readable_end), (106, 106));
    Ok(())
}
