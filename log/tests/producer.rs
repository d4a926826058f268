//! The producer: partitioning (Kafka's murmur2 and sticky null keys), explicit partitions,
//! errors, timestamps, lingering batches, flush, acks and the blocking send.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use freshet_log::{
    partition_for_key, Acks, AppendResult, Error, Isolation, Log, ProducerConfig, Record,
    SendFuture, TopicConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn all(futures: Vec<SendFuture>) -> freshet_log::Result<Vec<AppendResult>> {
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await?);
    }
    Ok(out)
}

#[tokio::test]
async fn keyed_sends_land_on_the_murmur2_partition() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(8))?;
    let producer = log.producer(ProducerConfig::default());
    let mut keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key-{i}").into_bytes()).collect();
    keys.push(1i32.to_be_bytes().to_vec()); // an integer key, serialized as Kafka does
    keys.push(Vec::new()); // the empty key is a key, not a null key
    let futures = keys
        .iter()
        .map(|k| producer.send("t", Record::new(k.clone(), "v")))
        .collect();
    let acks = all(futures).await?;
    let mut used = std::collections::BTreeSet::new();
    for (key, ack) in keys.iter().zip(&acks) {
        assert_eq!(ack.partition, partition_for_key(key, 8), "key {key:?}");
        used.insert(ack.partition);
        let stored = log.read(
            "t",
            ack.partition,
            ack.base_offset,
            1,
            Isolation::ReadCommitted,
        )?;
        let r = stored
            .iter()
            .find(|r| r.offset == ack.base_offset)
            .expect("acknowledged record is stored");
        assert_eq!(r.key.as_deref(), Some(&key[..]));
    }
    assert_eq!(used.len(), 8, "200 keys should reach every partition");
    assert_eq!(
        acks[200].partition, 0,
        "Kafka puts int key 1 on partition 0"
    );
    Ok(())
}

#[tokio::test]
async fn null_keys_stick_to_one_partition_until_a_batch_is_full() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(4))?;
    let producer = log.producer(ProducerConfig {
        batch_size: 1000,
        linger: Duration::from_millis(20),
        ..ProducerConfig::default()
    });
    let value = vec![b'x'; 84];
    let futures = (0..60)
        .map(|_| producer.send("t", Record::unkeyed(value.clone())))
        .collect();
    let acks = all(futures).await?;

    // Runs of consecutive sends on one partition.
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for a in &acks {
        match runs.last_mut() {
            Some((p, n)) if *p == a.partition => *n += 1,
            _ => runs.push((a.partition, 1)),
        }
    }
    assert!(
        runs.len() >= 4,
        "null keys never switched partition: {runs:?}"
    );
    // About batch_size bytes per partition (84-byte values plus per-record overhead),
    // then a switch to another partition.
    for &(_, n) in &runs[..runs.len() - 1] {
        assert!((8..=12).contains(&n), "run of {n} records: {runs:?}");
    }
    for w in runs.windows(2) {
        assert_ne!(w[0].0, w[1].0, "a switch must change partition: {runs:?}");
    }
    // Each run's records are contiguous in its partition (one batch each).
    let mut total = 0;
    for p in 0..4 {
        total += log.offsets("t", p)?.end;
    }
    assert_eq!(total, 60);
    Ok(())
}

#[tokio::test]
async fn explicit_partitions_win_over_keys_and_bad_ones_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(4))?;
    let producer = log.producer(ProducerConfig::default());
    for p in 0..4 {
        let ack = producer.send_to("t", p, Record::new("foobar", "v")).await?;
        assert_eq!((ack.partition, ack.base_offset), (p, 0));
        let ack = producer.send_to("t", p, Record::unkeyed("w")).await?;
        assert_eq!((ack.partition, ack.base_offset), (p, 1));
    }

    let err = producer
        .send_to("t", 4, Record::new("k", "v"))
        .await
        .expect_err("partition 4 of 4");
    assert!(
        matches!(err, Error::UnknownPartition { ref topic, partition: 4, partitions: 4 } if topic == "t"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unknown partition 4 of topic 't' (it has 4)"
    );
    let err = producer
        .send("missing", Record::new("k", "v"))
        .await
        .expect_err("no such topic");
    assert!(
        matches!(err, Error::UnknownTopic { ref topic } if topic == "missing"),
        "{err}"
    );
    assert!(matches!(
        producer.send_to("missing", 0, Record::unkeyed("v")).await,
        Err(Error::UnknownTopic { .. })
    ));
    // Nothing was written by the failed sends.
    for p in 0..4 {
        assert_eq!(log.offsets("t", p)?.end, 2);
    }
    Ok(())
}

#[tokio::test]
async fn timestamps_default_to_the_append_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let producer = log.producer(ProducerConfig::default());
    let before = now_ms();
    let a = producer.send("t", Record::new("k", "now")).await?;
    let b = producer
        .send("t", Record::new("k", "then").with_timestamp(1_234))
        .await?;
    let after = now_ms();
    let records = log.read("t", 0, 0, 1 << 20, Isolation::ReadCommitted)?;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].offset, a.base_offset);
    assert!(
        (before..=after).contains(&records[0].timestamp),
        "{} not in {before}..={after}",
        records[0].timestamp
    );
    assert_eq!(records[1].offset, b.base_offset);
    assert_eq!(records[1].timestamp, 1_234);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn lingering_sends_become_one_batch_written_after_the_linger() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(2))?;
    let linger = Duration::from_millis(50);
    let producer = log.producer(ProducerConfig {
        linger,
        batch_size: 1 << 20,
        ..ProducerConfig::default()
    });
    let started = Instant::now();
    let futures: Vec<SendFuture> = (0..100)
        .map(|i| producer.send_to("t", 1, Record::new("k", format!("v{i}"))))
        .collect();
    // Nothing is written while the batch lingers.
    assert_eq!(log.offsets("t", 1)?.end, 0);
    let acks = all(futures).await?;
    assert!(
        started.elapsed() >= linger,
        "acknowledged after {:?}, before the linger",
        started.elapsed()
    );
    let offsets: Vec<i64> = acks.iter().map(|a| a.base_offset).collect();
    assert_eq!(offsets, (0..100).collect::<Vec<i64>>());
    assert!(acks
        .iter()
        .all(|a| a.partition == 1 && a.last_offset == a.base_offset));
    // A read returns whole batches, at least one: asking for 1 byte yields the whole batch.
    assert_eq!(log.read("t", 1, 0, 1, Isolation::ReadCommitted)?.len(), 100);

    // Without linger every send is its own batch.
    let eager = log.producer(ProducerConfig {
        linger: Duration::ZERO,
        ..ProducerConfig::default()
    });
    let futures: Vec<SendFuture> = (0..10)
        .map(|i| eager.send_to("t", 0, Record::new("k", format!("v{i}"))))
        .collect();
    assert_eq!(log.offsets("t", 0)?.end, 10, "written before any await");
    all(futures).await?;
    assert_eq!(log.read("t", 0, 0, 1, Isolation::ReadCommitted)?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn flush_writes_every_lingering_batch_and_acknowledges_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(3))?;
    let producer = log.producer(ProducerConfig {
        linger: Duration::from_secs(30),
        batch_size: 1 << 20,
        ..ProducerConfig::default()
    });
    let futures: Vec<SendFuture> = (0..30)
        .map(|i| producer.send("t", Record::new(format!("k{i}"), "v")))
        .collect();
    let end = |log: &Log| -> freshet_log::Result<i64> {
        (0..3).map(|p| log.offsets("t", p).map(|o| o.end)).sum()
    };
    assert_eq!(end(&log)?, 0);
    producer.flush()?;
    assert_eq!(end(&log)?, 30);
    let acks = tokio::time::timeout(Duration::from_secs(5), all(futures)).await??;
    assert_eq!(acks.len(), 30);
    assert!(acks.iter().all(|a| a.base_offset >= 0));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn acks_none_resolves_at_once_with_offset_minus_one_and_still_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let producer = log.producer(ProducerConfig {
        acks: Acks::None,
        linger: Duration::from_secs(30),
        ..ProducerConfig::default()
    });
    for i in 0..5 {
        let ack = producer
            .send("t", Record::new("k", format!("v{i}")))
            .await?;
        assert_eq!(
            ack,
            AppendResult {
                partition: 0,
                base_offset: -1,
                last_offset: -1
            }
        );
    }
    // Still lingering: acknowledged, not written.
    assert_eq!(log.offsets("t", 0)?.end, 0);
    producer.flush()?;
    let records = log.read("t", 0, 0, 1 << 20, Isolation::ReadCommitted)?;
    let values: Vec<&[u8]> = records
        .iter()
        .map(|r| r.value.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(values, [&b"v0"[..], b"v1", b"v2", b"v3", b"v4"]);
    Ok(())
}

#[test]
fn send_blocking_works_without_a_runtime() -> TestResult {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(3))?;
    // A long linger does not matter: outside a runtime each send is written at once.
    let producer = log.producer(ProducerConfig {
        linger: Duration::from_secs(30),
        acks: Acks::Synced,
        ..ProducerConfig::default()
    });
    let p = partition_for_key(b"user-1", 3);
    for i in 0..3 {
        let ack = producer.send_blocking("t", Record::new("user-1", format!("v{i}")))?;
        assert_eq!((ack.partition, ack.base_offset), (p, i));
    }
    assert_eq!(log.offsets("t", p)?.end, 3);
    assert!(matches!(
        producer.send_blocking("nope", Record::unkeyed("v")),
        Err(Error::UnknownTopic { .. })
    ));
    let records = log.read("t", p, 0, 1 << 20, Isolation::ReadCommitted)?;
    assert_eq!(records[2].value.as_deref(), Some(&b"v2"[..]));
    Ok(())
}

/// Regression: the linger flusher took a due batch out of the accumulator and wrote it
/// after a send on another worker had filled and written the partition's next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_senders_records_keep_their_order_in_each_partition() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    let n = 8;
    log.create_topic("t", TopicConfig::partitions(n))?;
    let producer = log.producer(ProducerConfig {
        linger: Duration::from_millis(1),
        batch_size: 200,
        ..ProducerConfig::default()
    });
    let mut futures = Vec::new();
    let mut seq = 0u32;
    let mut send = |p: u32, futures: &mut Vec<SendFuture>| {
        futures.push(producer.send_to("t", p, Record::new("k", seq.to_be_bytes().to_vec())));
        seq += 1;
    };
    for _ in 0..300 {
        // One record lingers in every partition; when the flusher writes them, this task
        // is already filling (and writing) the next batches on the other worker.
        for p in 0..n {
            send(p, &mut futures);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        for p in (0..n).rev() {
            for _ in 0..10 {
                send(p, &mut futures);
            }
        }
    }
    all(futures).await?;
    for p in 0..n {
        let records = log.read("t", p, 0, 1 << 30, Isolation::ReadCommitted)?;
        let seqs: Vec<u32> = records
            .iter()
            .map(|r| {
                let v = r.value.as_deref().unwrap_or_default();
                u32::from_be_bytes(v.try_into().expect("4-byte value"))
            })
            .collect();
        assert_eq!(seqs.len(), 300 * 11);
        if let Some(i) = seqs.windows(2).position(|w| w[0] > w[1]) {
            panic!("partition {p}: {} stored after {}", seqs[i + 1], seqs[i]);
        }
    }
    Ok(())
}
