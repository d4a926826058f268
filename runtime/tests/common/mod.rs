//! Helpers shared by the runtime's end-to-end tests: a temp-dir embedded log, producing
//! keyed input, reading committed output.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use freshet_log::{Acks, Isolation, Log, Record, StoredRecord, TopicConfig};
use freshet_streams::partition_for_key;

pub(crate) type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Opens (or reopens) the embedded log in `dir`.
pub(crate) fn open_log(dir: &std::path::Path) -> TestResult<Arc<Log>> {
    Ok(Arc::new(Log::open(dir)?))
}

/// Creates `topic` with `partitions` partitions.
pub(crate) fn create(log: &Log, topic: &str, partitions: u32) -> TestResult {
    log.create_topic(topic, TopicConfig::partitions(partitions))?;
    Ok(())
}

/// Appends `(key, value, timestamp)` records with UTF-8 keys and values, each to the
/// partition Kafka's default partitioner picks for its key.
pub(crate) fn produce(log: &Log, topic: &str, records: &[(String, String, i64)]) -> TestResult {
    let n = log.describe_topic(topic)?.config.partitions;
    let mut by_partition: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
    for (k, v, ts) in records {
        let p = partition_for_key(k.as_bytes(), n);
        by_partition
            .entry(p)
            .or_default()
            .push(Record::new(k.clone(), v.clone()).with_timestamp(*ts));
    }
    for (p, recs) in by_partition {
        log.append(topic, p, &recs, Acks::Written)?;
    }
    Ok(())
}

/// Every committed record of `topic`, per partition, in offset order.
pub(crate) fn read_all(log: &Log, topic: &str) -> TestResult<BTreeMap<u32, Vec<StoredRecord>>> {
    let n = log.describe_topic(topic)?.config.partitions;
    let mut out = BTreeMap::new();
    for p in 0..n {
        let mut records = Vec::new();
        let mut offset = log.offsets(topic, p)?.start;
        let end = log.offsets(topic, p)?.last_stable;
        while offset < end {
            let batch = log.read(topic, p, offset, 1 << 20, Isolation::ReadCommitted)?;
            let Some(last) = batch.last() else { break };
            offset = last.offset + 1;
            records.extend(batch);
        }
        out.insert(p, records);
    }
    Ok(out)
}

/// UTF-8 key and big-endian i64 value of a record (a count).
pub(crate) fn key_count(r: &StoredRecord) -> TestResult<(String, i64)> {
    let k = String::from_utf8(r.key.as_deref().ok_or("null key")?.to_vec())?;
    let v = r.value.as_deref().ok_or("null value")?;
    let a: [u8; 8] = v.try_into().map_err(|_| "value is not 8 bytes")?;
    Ok((k, i64::from_be_bytes(a)))
}

/// The values each key received on `topic`, in order (keys are in one partition).
pub(crate) fn counts_by_key(log: &Log, topic: &str) -> TestResult<BTreeMap<String, Vec<i64>>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for records in read_all(log, topic)?.into_values() {
        for r in &records {
            let (k, v) = key_count(r)?;
            out.entry(k).or_default().push(v);
        }
    }
    Ok(out)
}

/// Page views: user `u<i % users>` visits page `/p<(i * 7) % pages>` at `base + i`.
pub(crate) fn page_views(
    from: usize,
    to: usize,
    users: usize,
    pages: usize,
    base: i64,
) -> Vec<(String, String, i64)> {
    (from..to)
        .map(|i| {
            (
                format!("u{}", i % users),
                format!("/p{}", (i * 7) % pages),
                base + i as i64,
            )
        })
        .collect()
}

/// How many times each page occurs in `views`.
pub(crate) fn expected_page_counts(views: &[(String, String, i64)]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for (_, page, _) in views {
        *m.entry(page.clone()).or_insert(0) += 1;
    }
    m
}
