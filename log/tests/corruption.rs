//! Damaged files on disk: a torn tail, a flipped byte in the active or a sealed segment,
//! lost or garbled index files, and garbage after the last batch. Recovery keeps every whole
//! batch before the damage and nothing after it; damage it cannot repair is reported as
//! `Error::Corrupt`, never returned as records.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::{BatchSpan, TestResult};
use freshet_log::{Acks, Error, Isolation, Log, LogConfig, Record, StoredRecord, TopicConfig};
use rand::{Rng, RngCore};

const TOPIC: &str = "t";

/// A log without the background cleaner, with a small index interval so sealed segments
/// have several index entries.
fn open(dir: &Path) -> freshet_log::Result<Log> {
    Log::open_with(
        dir,
        LogConfig {
            cleaner_interval: None,
            index_interval_bytes: 128,
            ..LogConfig::default()
        },
    )
}

/// What a record read back should hold.
type Expected = (Option<Bytes>, Option<Bytes>, i64, Vec<(String, Bytes)>);

fn expected_of(r: &Record) -> Expected {
    (
        r.key.clone(),
        r.value.clone(),
        r.timestamp.unwrap_or_default(),
        r.headers.clone(),
    )
}

fn stored(r: &StoredRecord) -> Expected {
    (
        r.key.clone(),
        r.value.clone(),
        r.timestamp,
        r.headers.clone(),
    )
}

/// A batch of 1–4 records with varied contents, numbered from `n`.
fn batch(rng: &mut impl Rng, n: usize) -> Vec<Record> {
    (0..rng.gen_range(1..=4))
        .map(|i| {
            let mut value = vec![0u8; rng.gen_range(0..200)];
            rng.fill_bytes(&mut value);
            let key = (rng.gen_range(0..4) != 0).then(|| Bytes::from(format!("key-{n}-{i}")));
            let mut r = Record {
                key,
                value: Some(Bytes::from(value)),
                timestamp: Some(1_000_000 + (n * 10 + i) as i64),
                headers: Vec::new(),
            };
            if rng.gen_bool(0.3) {
                r = r.with_header("h", format!("{n}"));
            }
            r
        })
        .collect()
}

/// Appends `batches` batches, one append each, adding what they hold to `expected`.
fn append_batches(
    log: &Log,
    rng: &mut impl Rng,
    batches: usize,
    expected: &mut Vec<Expected>,
) -> TestResult {
    for _ in 0..batches {
        let records = batch(rng, expected.len());
        let at = log.append(TOPIC, 0, &records, Acks::Written)?;
        assert_eq!(
            at.base_offset,
            expected.len() as i64,
            "appends continue at the end"
        );
        expected.extend(records.iter().map(expected_of));
    }
    Ok(())
}

/// Reads the whole partition and compares it with `expected`, offsets from 0.
fn check_contents(log: &Log, expected: &[Expected]) -> TestResult {
    for isolation in [Isolation::ReadCommitted, Isolation::ReadUncommitted] {
        let records = common::read_all(log, TOPIC, 0, isolation)?;
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        let want: Vec<i64> = (0..expected.len() as i64).collect();
        assert_eq!(offsets, want, "offsets");
        let got: Vec<Expected> = records.iter().map(stored).collect();
        assert!(got == expected, "record contents differ");
    }
    let o = log.offsets(TOPIC, 0)?;
    assert_eq!(
        (o.start, o.end, o.last_stable),
        (0, expected.len() as i64, expected.len() as i64)
    );
    Ok(())
}

fn partition_dir(dir: &Path) -> PathBuf {
    common::partition_dir(dir, TOPIC, 0)
}

/// The active (last) segment's `.log` file and its whole batches.
fn active_segment(dir: &Path) -> TestResult<(PathBuf, Vec<BatchSpan>)> {
    let path = common::segment_logs(&partition_dir(dir))?
        .pop()
        .ok_or("no segment")?;
    let spans = common::batches_of(&path)?;
    Ok((path, spans))
}

/// Number of records in the batches of `spans` from index `from` on.
fn records_in(spans: &[BatchSpan], from: usize, end: i64) -> usize {
    (end - spans[from].base_offset) as usize
}

fn file_len(path: &Path) -> TestResult<u64> {
    Ok(fs::metadata(path)?.len())
}

fn flip_byte(path: &Path, pos: u64, mask: u8) -> TestResult {
    let mut bytes = fs::read(path)?;
    bytes[pos as usize] ^= mask;
    fs::write(path, bytes)?;
    Ok(())
}

#[test]
fn a_torn_tail_is_truncated_and_appends_continue_at_the_right_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = rand::thread_rng();
    let mut expected = Vec::new();
    {
        let log = open(dir.path())?;
        log.create_topic(TOPIC, TopicConfig::partitions(1))?;
    }
    for round in 0..25 {
        let log = open(dir.path())?;
        check_contents(&log, &expected)?;
        let n = rng.gen_range(1..6);
        append_batches(&log, &mut rng, n, &mut expected)?;
        drop(log);

        // Tear the last batch: cut 1..len bytes off the end of the active segment.
        let (path, spans) = active_segment(dir.path())?;
        let last = *spans.last().ok_or("no batch")?;
        assert_eq!(last.pos + last.len, file_len(&path)?);
        let cut = rng.gen_range(1..last.len);
        OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len(last.pos + last.len - cut)?;
        let lost = records_in(&spans, spans.len() - 1, expected.len() as i64);
        expected.truncate(expected.len() - lost);

        let log = open(dir.path())?;
        assert_eq!(
            file_len(&path)?,
            last.pos,
            "round {round}: recovery cut the file back to the last whole batch"
        );
        check_contents(&log, &expected)?;
        let after = Record::new("k", "after").with_timestamp(7);
        let at = log.append(TOPIC, 0, std::slice::from_ref(&after), Acks::Written)?;
        assert_eq!(at.base_offset, last.base_offset);
        expected.push(expected_of(&after));
        check_contents(&log, &expected)?;
    }
    Ok(())
}

#[test]
fn a_flipped_byte_in_the_last_batch_of_the_active_segment_drops_only_that_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = rand::thread_rng();
    let mut expected = Vec::new();
    {
        let log = open(dir.path())?;
        log.create_topic(TOPIC, TopicConfig::partitions(1))?;
    }
    for round in 0..80 {
        let log = open(dir.path())?;
        let n = rng.gen_range(1..5);
        append_batches(&log, &mut rng, n, &mut expected)?;
        drop(log);

        let (path, spans) = active_segment(dir.path())?;
        let last = *spans.last().ok_or("no batch")?;
        // Any byte: the base offset (outside the CRC, as in Kafka: caught because the
        // active segment's offsets are contiguous), the length, magic, CRC and everything
        // the CRC covers.
        let at = last.pos + rng.gen_range(0..last.len);
        flip_byte(&path, at, rng.gen_range(1..=255))?;
        let lost = records_in(&spans, spans.len() - 1, expected.len() as i64);
        expected.truncate(expected.len() - lost);

        let log = open(dir.path())?;
        assert_eq!(
            file_len(&path)?,
            last.pos,
            "round {round}: byte {} of the last batch flipped",
            at - last.pos
        );
        check_contents(&log, &expected)?;
    }
    Ok(())
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_reported_as_corrupt_and_never_returned() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = rand::thread_rng();
    let mut expected = Vec::new();
    {
        let log = open(dir.path())?;
        let config = TopicConfig::partitions(1).with("segment.bytes", "300")?;
        log.create_topic(TOPIC, config)?;
        append_batches(&log, &mut rng, 60, &mut expected)?;
    }
    let segments = common::segment_logs(&partition_dir(dir.path()))?;
    assert!(segments.len() >= 6, "only {} segments", segments.len());

    // A batch in a sealed segment in the middle.
    let victim = segments[segments.len() / 2].clone();
    let spans = common::batches_of(&victim)?;
    let bad = spans[rng.gen_range(0..spans.len())];
    let at = bad.pos + rng.gen_range(common::CRC_FIELD.start..bad.len);
    flip_byte(&victim, at, rng.gen_range(1..=255))?;
    let bad_last = spans.iter().find(|s| s.pos > bad.pos).map_or_else(
        || common::batches_of(&segments[segments.len() / 2 + 1]).map(|s| s[0].base_offset),
        |next| Ok(next.base_offset),
    )? - 1;

    // The log still opens: sealed segments are trusted through their index until read.
    let log = open(dir.path())?;
    let o = log.offsets(TOPIC, 0)?;
    assert_eq!(o.end, expected.len() as i64);

    // Reading the damaged range fails, naming the file and the batch's position.
    for offset in bad.base_offset..=bad_last {
        for isolation in [Isolation::ReadCommitted, Isolation::ReadUncommitted] {
            let err = log
                .read(TOPIC, 0, offset, 1 << 20, isolation)
                .expect_err("read of a corrupt batch");
            match &err {
                Error::Corrupt { path, position, .. } => {
                    assert_eq!(path, &victim, "{err}");
                    assert_eq!(*position, bad.pos, "{err}");
                }
                other => panic!("offset {offset}: expected Error::Corrupt, got {other}"),
            }
            let text = err.to_string();
            assert!(text.contains(&victim.display().to_string()), "{text}");
        }
    }
    let err = log
        .try_fetch(
            &[(TOPIC.to_string(), 0, bad.base_offset)],
            &Default::default(),
        )
        .expect_err("fetch of a corrupt batch");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");

    // Healthy records before the damage in the same segment are still served, and a read
    // stops at the damage instead of skipping it.
    if bad.base_offset > spans[0].base_offset {
        let records = log.read(
            TOPIC,
            0,
            spans[0].base_offset,
            1 << 20,
            Isolation::ReadCommitted,
        )?;
        assert!(!records.is_empty());
        assert!(records.iter().all(|r| r.offset < bad.base_offset));
        assert_eq!(records.last().map(|r| r.offset), Some(bad.base_offset - 1));
    }

    // Every other segment reads as written.
    let victim_first = spans[0].base_offset;
    let victim_end = common::batches_of(&segments[segments.len() / 2 + 1])?[0].base_offset;
    for offset in (0..victim_first).chain(victim_end..expected.len() as i64) {
        let records = log.read(TOPIC, 0, offset, 1, Isolation::ReadCommitted)?;
        let first = records.iter().find(|r| r.offset == offset);
        let first = first.ok_or_else(|| format!("offset {offset} not returned"))?;
        assert!(
            stored(first) == expected[offset as usize],
            "offset {offset}"
        );
        // Nothing from the damaged range is ever returned.
        assert!(records
            .iter()
            .all(|r| r.offset < bad.base_offset || r.offset > bad_last));
    }

    // A reopen still opens, and appends go on at the end.
    drop(log);
    let log = open(dir.path())?;
    let at = log.append(TOPIC, 0, &[Record::new("k", "after")], Acks::Written)?;
    assert_eq!(at.base_offset, expected.len() as i64);
    Ok(())
}

/// Builds a log of several sealed segments, lets `damage` loose on the index files of one
/// sealed segment, and checks that reads and time lookups are still right.
fn index_damage_is_repaired(damage: impl Fn(&Path, &Path) -> TestResult) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = rand::thread_rng();
    let mut expected = Vec::new();
    {
        let log = open(dir.path())?;
        let config = TopicConfig::partitions(1).with("segment.bytes", "1000")?;
        log.create_topic(TOPIC, config)?;
        append_batches(&log, &mut rng, 80, &mut expected)?;
    }
    let segments = common::segment_logs(&partition_dir(dir.path()))?;
    assert!(segments.len() >= 4, "only {} segments", segments.len());
    for victim in [&segments[0], &segments[segments.len() / 2]] {
        let index = victim.with_extension("index");
        let time_index = victim.with_extension("timeindex");
        assert!(
            index.exists() && time_index.exists(),
            "sealed segments have index files"
        );
        damage(&index, &time_index)?;
    }
    let log = open(dir.path())?;
    check_contents(&log, &expected)?;
    // Every offset can be read on its own (an index lookup each time).
    for (offset, want) in expected.iter().enumerate() {
        let records = log.read(TOPIC, 0, offset as i64, 1, Isolation::ReadCommitted)?;
        let got = records
            .iter()
            .find(|r| r.offset == offset as i64)
            .ok_or_else(|| format!("offset {offset} not returned"))?;
        assert!(&stored(got) == want, "offset {offset}");
    }
    // Time lookups: the first record at or after each record's timestamp.
    for (offset, want) in expected.iter().enumerate() {
        let first = expected
            .iter()
            .position(|e| e.2 >= want.2)
            .map(|o| o as i64);
        assert_eq!(
            log.offset_for_time(TOPIC, 0, want.2)?,
            first,
            "offset {offset}"
        );
    }
    assert_eq!(log.offset_for_time(TOPIC, 0, i64::MAX)?, None);
    // Appends go on at the end.
    let at = log.append(TOPIC, 0, &[Record::new("k", "after")], Acks::Written)?;
    assert_eq!(at.base_offset, expected.len() as i64);
    Ok(())
}

#[test]
fn a_deleted_index_of_a_sealed_segment_is_rebuilt() -> TestResult {
    index_damage_is_repaired(|index, _| Ok(fs::remove_file(index)?))
}

#[test]
fn a_deleted_time_index_of_a_sealed_segment_is_rebuilt() -> TestResult {
    index_damage_is_repaired(|_, time_index| Ok(fs::remove_file(time_index)?))
}

#[test]
fn a_garbled_index_of_a_sealed_segment_is_rebuilt() -> TestResult {
    index_damage_is_repaired(|index, time_index| {
        let mut rng = rand::thread_rng();
        for path in [index, time_index] {
            let mut bytes = vec![0u8; fs::metadata(path)?.len() as usize];
            rng.fill_bytes(&mut bytes);
            fs::write(path, bytes)?;
        }
        Ok(())
    })
}

#[test]
fn a_truncated_or_empty_index_of_a_sealed_segment_is_rebuilt() -> TestResult {
    index_damage_is_repaired(|index, time_index| {
        let len = fs::metadata(index)?.len();
        OpenOptions::new()
            .write(true)
            .open(index)?
            .set_len(len / 2)?;
        OpenOptions::new()
            .write(true)
            .open(time_index)?
            .set_len(0)?;
        Ok(())
    })
}

#[test]
fn an_index_that_does_not_match_its_segment_is_rebuilt() -> TestResult {
    // The index of another segment (a stale or misplaced file): its recorded size differs.
    let dir = tempfile::tempdir()?;
    let mut rng = rand::thread_rng();
    let mut expected = Vec::new();
    {
        let log = open(dir.path())?;
        let config = TopicConfig::partitions(1).with("segment.bytes", "1000")?;
        log.create_topic(TOPIC, config)?;
        append_batches(&log, &mut rng, 80, &mut expected)?;
    }
    let segments = common::segment_logs(&partition_dir(dir.path()))?;
    assert!(segments.len() >= 4);
    let (a, b) = (&segments[0], &segments[1]);
    assert_ne!(file_len(a)?, file_len(b)?, "segments of equal size; retry");
    fs::copy(b.with_extension("index"), a.with_extension("index"))?;
    fs::copy(b.with_extension("timeindex"), a.with_extension("timeindex"))?;
    let log = open(dir.path())?;
    check_contents(&log, &expected)?;
    for offset in 0..expected.len() as i64 {
        let records = log.read(TOPIC, 0, offset, 1, Isolation::ReadCommitted)?;
        assert!(
            records.iter().any(|r| r.offset == offset),
            "offset {offset}"
        );
    }
    Ok(())
}

#[test]
fn garbage_after_the_last_batch_is_truncated() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = rand::thread_rng();
    let mut expected = Vec::new();
    {
        let log = open(dir.path())?;
        log.create_topic(TOPIC, TopicConfig::partitions(1))?;
    }
    for round in 0..30 {
        let log = open(dir.path())?;
        let n = rng.gen_range(1..4);
        append_batches(&log, &mut rng, n, &mut expected)?;
        drop(log);

        let (path, spans) = active_segment(dir.path())?;
        let good_len = file_len(&path)?;
        let last = *spans.last().ok_or("no batch")?;
        let mut garbage = vec![0u8; rng.gen_range(1..400)];
        rng.fill_bytes(&mut garbage);
        if round % 3 == 0 && garbage.len() > 60 {
            // Garbage that starts like a plausible batch: the next offset, a length that
            // fits, the right magic byte. Only the CRC can tell.
            let next = expected.len() as i64;
            garbage[..8].copy_from_slice(&next.to_be_bytes());
            let len = (garbage.len() - 12) as u32;
            garbage[8..12].copy_from_slice(&len.to_be_bytes());
            garbage[12] = 2;
        }
        OpenOptions::new()
            .append(true)
            .open(&path)?
            .write_all(&garbage)?;

        let log = open(dir.path())?;
        assert_eq!(
            file_len(&path)?,
            good_len,
            "round {round}: {} bytes of garbage after the batch at {}",
            garbage.len(),
            last.pos
        );
        check_contents(&log, &expected)?;
    }
    Ok(())
}
