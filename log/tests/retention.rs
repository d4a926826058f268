//! Retention: whole old segments go by `retention.ms` and `retention.bytes`, the log start
//! offset follows, the active segment stays, and `compact,delete` does both.

use std::path::Path;

use freshet_log::{Acks, Error, Isolation, Log, LogConfig, Record, TopicConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const T: &str = "events";
const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn open(dir: &Path) -> freshet_log::Result<Log> {
    Log::open_with(
        dir,
        LogConfig {
            cleaner_interval: None,
            ..LogConfig::default()
        },
    )
}

/// One partition, ~3 single-record batches per segment.
fn config(extra: &[(&str, &str)]) -> freshet_log::Result<TopicConfig> {
    let mut c = TopicConfig::partitions(1).with("segment.bytes", "200")?;
    for (k, v) in extra {
        c.set(k, v)?;
    }
    Ok(c)
}

fn put(log: &Log, key: &str, ts: i64) -> freshet_log::Result<i64> {
    let r = Record::new(key.to_string(), "value").with_timestamp(ts);
    Ok(log.append(T, 0, &[r], Acks::Written)?.base_offset)
}

/// Base offsets of the partition's segment files on disk, ascending.
fn segment_bases(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir.join("topics").join(T).join("0"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(base) = name.strip_suffix(".log").and_then(|b| b.parse().ok()) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Bytes of the partition's segment files on disk.
fn partition_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir.join("topics").join(T).join("0"))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(".log") {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

#[test]
fn retention_ms_deletes_old_segments_and_advances_the_log_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, config(&[("retention.ms", "3600000")])?)?;
    for i in 0..9 {
        put(&log, &format!("old-{i}"), now() - 2 * HOUR)?;
    }
    let first_new = put(&log, "new-0", now())?;
    for i in 1..6 {
        put(&log, &format!("new-{i}"), now())?;
    }

    let stats = log.run_cleaner()?;
    assert!(stats.segments_deleted >= 2, "{stats:?}");
    let offsets = log.offsets(T, 0)?;
    assert!(
        offsets.start > 0 && offsets.start <= first_new,
        "{offsets:?}"
    );
    // Every segment of only old records is gone: the first one left holds new-0.
    let bases = segment_bases(dir.path())?;
    assert_eq!(bases[0], offsets.start);
    assert!(bases.get(1).is_none_or(|&b| b > first_new), "{bases:?}");
    let records = log.read(T, 0, offsets.start, 1 << 20, Isolation::ReadCommitted)?;
    let new = records
        .iter()
        .filter(|r| r.key.as_deref().is_some_and(|k| k.starts_with(b"new")))
        .count();
    assert_eq!(new, 6);
    assert!(matches!(
        log.read(T, 0, 0, 1 << 20, Isolation::ReadCommitted),
        Err(Error::OffsetOutOfRange { .. })
    ));

    // The new start survives a restart.
    drop(log);
    let log = open(dir.path())?;
    assert_eq!(log.offsets(T, 0)?, offsets);
    Ok(())
}

#[test]
fn retention_bytes_keeps_the_partition_under_the_limit_plus_one_segment() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, config(&[("retention.bytes", "600")])?)?;
    for i in 0..40 {
        put(&log, &format!("k{i}"), now())?;
    }
    let end = log.offsets(T, 0)?.end;
    let stats = log.run_cleaner()?;
    assert!(stats.segments_deleted > 0);
    let size = partition_bytes(dir.path())?;
    assert!(size <= 600 + 200, "partition holds {size} bytes");
    let offsets = log.offsets(T, 0)?;
    assert!(offsets.start > 0);
    assert_eq!(offsets.end, end);
    let records = log.read(T, 0, offsets.start, 1 << 20, Isolation::ReadCommitted)?;
    assert_eq!(records.last().map(|r| r.offset), Some(end - 1));
    Ok(())
}

#[test]
fn active_segment_is_never_deleted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    // Everything is old and over a zero-byte limit, but it sits in the active segment.
    log.create_topic(
        T,
        TopicConfig::partitions(1)
            .with("retention.ms", "1000")?
            .with("retention.bytes", "0")?,
    )?;
    for i in 0..5 {
        put(&log, &format!("k{i}"), now() - 2 * HOUR)?;
    }
    let stats = log.run_cleaner()?;
    assert_eq!(stats.segments_deleted, 0);
    assert_eq!(log.offsets(T, 0)?.start, 0);
    assert_eq!(
        log.read(T, 0, 0, 1 << 20, Isolation::ReadCommitted)?.len(),
        5
    );

    // With small segments everything sealed goes, the active segment stays.
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(T, config(&[("retention.bytes", "0")])?)?;
    for i in 0..10 {
        put(&log, &format!("k{i}"), now())?;
    }
    log.run_cleaner()?;
    let offsets = log.offsets(T, 0)?;
    let left = log.read(T, 0, offsets.start, 1 << 20, Isolation::ReadCommitted)?;
    assert!(
        !left.is_empty(),
        "the active segment's records are still there"
    );
    assert_eq!(left.last().map(|r| r.offset), Some(9));
    Ok(())
}

#[test]
fn compact_delete_both_compacts_and_deletes_old_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic(
        T,
        config(&[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "3600000"),
        ])?,
    )?;
    for i in 0..6 {
        put(&log, &format!("old-{i}"), now() - 2 * HOUR)?;
    }
    let first_new = put(&log, "a", now())?;
    for _ in 0..5 {
        put(&log, "a", now())?;
    }
    let last_a = put(&log, "a", now())?;
    for i in 0..6 {
        put(&log, &format!("filler-{i}"), now())?;
    }

    let stats = log.run_cleaner()?;
    assert!(stats.segments_deleted >= 2, "{stats:?}");
    assert!(stats.records_removed > 0, "{stats:?}");
    let offsets = log.offsets(T, 0)?;
    assert!(
        offsets.start > 0 && offsets.start <= first_new,
        "{offsets:?}"
    );
    let bases = segment_bases(dir.path())?;
    assert!(bases.get(1).is_none_or(|&b| b > first_new), "{bases:?}");
    let records = log.read(T, 0, offsets.start, 1 << 20, Isolation::ReadCommitted)?;
    let a: Vec<_> = records
        .iter()
        .filter(|r| r.key.as_deref() == Some(&b"a"[..]))
        .map(|r| r.offset)
        .collect();
    assert_eq!(a, [last_a], "only the latest a is left");
    Ok(())
}
