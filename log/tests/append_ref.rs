//! Borrowed records (`RecordRef`): through `Log::append_refs` they round-trip with null
//! keys and values, headers and timestamps, and the bytes on disk are those `Log::append`
//! writes; through `Producer::send_ref` they are stored as `Producer::send` stores them.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use freshet_log::{
    Acks, BatchBuilder, Error, Isolation, Log, ProducerConfig, Record, RecordRef, StoredRecord,
    TopicConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn read_all(log: &Log, topic: &str, partition: u32) -> freshet_log::Result<Vec<StoredRecord>> {
    log.read(topic, partition, 0, 1 << 30, Isolation::ReadCommitted)
}

/// Owned records of every shape the encoder distinguishes: null and empty fields, fields of
/// each length around its copy sizes (0–3, 4–7, 8–15, 16–32 bytes together, and longer),
/// headers, and timestamps whose deltas take one to ten varint bytes, backwards too.
fn varied_records() -> Vec<Record> {
    let mut out = vec![
        Record::new("k", "v").with_timestamp(1_700_000_000_000),
        Record::unkeyed("no key").with_timestamp(1_700_000_000_001),
        Record {
            key: Some(Bytes::from_static(b"tombstone")),
            value: None,
            timestamp: Some(1_699_999_999_000),
            headers: Vec::new(),
        },
        Record::default().with_timestamp(0),
        Record::new("", "").with_timestamp(i64::MAX),
        Record::new("h", "with headers")
            .with_timestamp(i64::MIN)
            .with_header("trace", "abc")
            .with_header("trace", "")
            .with_header("", Bytes::new()),
    ];
    for len in 0..=40usize {
        let key = vec![b'k'; len];
        let value: Vec<u8> = (0..(40 - len) as u8).collect();
        out.push(Record::new(key, value).with_timestamp(1_700_000_000_000 + (len as i64) * 977));
    }
    out.push(Record::new(vec![b'x'; 300], vec![b'y'; 70_000]).with_timestamp(5));
    out
}

fn assert_same(stored: &[StoredRecord], sent: &[Record], base: i64) {
    assert_eq!(stored.len(), sent.len());
    for (i, (s, r)) in stored.iter().zip(sent).enumerate() {
        assert_eq!(s.offset, base + i as i64, "record {i}");
        assert_eq!(s.key, r.key, "record {i}");
        assert_eq!(s.value, r.value, "record {i}");
        assert_eq!(Some(s.timestamp), r.timestamp, "record {i}");
        assert_eq!(s.headers, r.headers, "record {i}");
    }
}

#[test]
fn borrowed_records_round_trip_with_nulls_headers_and_timestamps() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(2))?;
    let records = varied_records();
    let refs: Vec<RecordRef<'_>> = records.iter().map(RecordRef::from).collect();
    let at = log.append_refs("t", 1, &refs, Acks::Synced)?;
    assert_eq!((at.partition, at.base_offset), (1, 0));
    assert_eq!(at.last_offset, records.len() as i64 - 1);
    assert_same(&read_all(&log, "t", 1)?, &records, 0);

    // A second batch continues the offsets.
    let again = log.append_refs("t", 1, &refs[..3], Acks::Written)?;
    assert_eq!(again.base_offset, records.len() as i64);
    assert_eq!(log.offsets("t", 1)?.end, records.len() as i64 + 3);
    assert_eq!(log.offsets("t", 0)?.end, 0);
    Ok(())
}

#[test]
fn records_without_a_timestamp_get_the_append_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let before = now_ms();
    log.append_refs(
        "t",
        0,
        &[
            RecordRef::new(b"a", b"1"),
            RecordRef::unkeyed(b"2").with_timestamp(42),
        ],
        Acks::Written,
    )?;
    let after = now_ms();
    let stored = read_all(&log, "t", 0)?;
    assert!((before..=after).contains(&stored[0].timestamp));
    assert_eq!(stored[1].timestamp, 42);
    assert_eq!(stored[1].key, None);
    Ok(())
}

/// The one segment file of a partition.
fn segment_bytes(data: &Path, topic: &str, partition: u32) -> std::io::Result<Vec<u8>> {
    let path = data
        .join("topics")
        .join(topic)
        .join(partition.to_string())
        .join(format!("{:020}.log", 0));
    fs::read(path)
}

#[test]
fn borrowed_and_owned_appends_write_the_same_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("owned", TopicConfig::partitions(1))?;
    log.create_topic("borrowed", TopicConfig::partitions(1))?;
    log.create_topic("built", TopicConfig::partitions(1))?;
    let records = varied_records();
    let refs: Vec<RecordRef<'_>> = records.iter().map(RecordRef::from).collect();
    for chunk in [0..1, 1..20, 20..records.len()] {
        log.append("owned", 0, &records[chunk.clone()], Acks::Written)?;
        log.append_refs("borrowed", 0, &refs[chunk.clone()], Acks::Written)?;
        let mut batch = BatchBuilder::new();
        for r in &refs[chunk.clone()] {
            batch.push(r);
        }
        assert_eq!(batch.len(), chunk.len());
        assert_eq!(batch.to_records()?, records[chunk]);
        log.append_batch("built", 0, batch, Acks::Written)?;
    }
    log.close()?;
    let owned = segment_bytes(dir.path(), "owned", 0)?;
    let borrowed = segment_bytes(dir.path(), "borrowed", 0)?;
    let built = segment_bytes(dir.path(), "built", 0)?;
    assert!(!owned.is_empty());
    assert!(owned == borrowed, "the two appends wrote different bytes");
    assert!(owned == built, "a batch built ahead wrote different bytes");
    Ok(())
}

#[test]
fn a_built_batch_joins_the_transaction_it_is_appended_in() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let built = |values: &[&'static str]| {
        let mut b = BatchBuilder::new();
        for v in values {
            b.push(&RecordRef::new(b"k", v.as_bytes()));
        }
        b
    };
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    // Outside a transaction: refused.
    assert!(tx.append_batch("t", 0, built(&["early"])).is_err());
    tx.begin()?;
    tx.append_batch("t", 0, built(&["a1", "a2"]))?;
    tx.abort()?;
    tx.begin()?;
    let at = tx.append_batch("t", 0, built(&["c1"]))?;
    // Open: nothing stable past the aborted records' marker.
    assert!(read_all(&log, "t", 0)?.is_empty());
    tx.commit()?;
    let values: Vec<_> = read_all(&log, "t", 0)?
        .into_iter()
        .map(|r| r.value.unwrap_or_default())
        .collect();
    assert_eq!(values, vec![Bytes::from_static(b"c1")]);
    assert_eq!(
        at.base_offset, 3,
        "after the two aborted records and their marker"
    );
    // A session fenced by a newer one with its id cannot append a batch.
    tx.begin()?;
    let _newer = log.transactional_producer("p", Acks::Written)?;
    assert!(tx.append_batch("t", 0, built(&["zombie"])).is_err());
    assert_eq!(read_all(&log, "t", 0)?.len(), 1);
    Ok(())
}

#[test]
fn an_empty_borrowed_append_writes_nothing_and_bad_targets_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let at = log.append_refs("t", 0, &[], Acks::Written)?;
    assert_eq!((at.base_offset, at.last_offset), (0, -1));
    assert_eq!(log.offsets("t", 0)?.end, 0);

    let one = [RecordRef::new(b"k", b"v")];
    assert!(matches!(
        log.append_refs("missing", 0, &one, Acks::Written),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.append_refs("t", 1, &one, Acks::Written),
        Err(Error::UnknownPartition { partition: 1, .. })
    ));
    log.close()?;
    assert!(matches!(
        log.append_refs("t", 0, &one, Acks::Written),
        Err(Error::Closed)
    ));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_borrowed_send_is_stored_as_an_owned_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("owned", TopicConfig::partitions(3))?;
    log.create_topic("borrowed", TopicConfig::partitions(3))?;
    let producer = log.producer(ProducerConfig::default());
    let records = varied_records();
    let mut owned = Vec::new();
    let mut borrowed = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let p = i as u32 % 3;
        let as_ref = RecordRef::from(r);
        if r.key.is_some() {
            owned.push(producer.send("owned", r.clone()));
            borrowed.push(producer.send_ref("borrowed", as_ref));
        } else {
            owned.push(producer.send_to("owned", p, r.clone()));
            borrowed.push(producer.send_ref_to("borrowed", p, as_ref));
        }
    }
    for (o, b) in owned.into_iter().zip(borrowed) {
        let (o, b) = (o.await?, b.await?);
        assert_eq!((o.partition, o.base_offset), (b.partition, b.base_offset));
    }
    for p in 0..3 {
        assert_eq!(read_all(&log, "owned", p)?, read_all(&log, "borrowed", p)?);
    }
    assert!(matches!(
        producer
            .send_ref("missing", RecordRef::new(b"k", b"v"))
            .await,
        Err(Error::UnknownTopic { .. })
    ));
    Ok(())
}
