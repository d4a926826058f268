//! Crash test of producing: a child process appends batches and reports each acknowledged
//! one on stdout; the parent SIGKILLs it at a random moment, reopens the log and checks that
//! every acknowledged record is there, byte for byte, in order, with contiguous offsets.
//!
//! `FRESHET_CRASH_ROUNDS` sets the number of kill rounds (default 20).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{ChildProc, TestResult, CHILD_DIR_ENV};
use freshet_log::{Acks, Isolation, Log, Record, StoredRecord, TopicConfig};
use rand::Rng;

const TOPIC: &str = "crash";
const PARTITIONS: u32 = 3;
const CHILD_TEST: &str = "crash_produce_child";
const ROUND_ENV: &str = "FRESHET_CRASH_ROUND";
const ACKS_ENV: &str = "FRESHET_CRASH_ACKS";
/// Record timestamps encode (round, seq, i), so any record found on disk says what it is.
const T0: i64 = 1_700_000_000_000;
const MAX_SEQ: u64 = 1_000_000;
const MAX_BATCH: u64 = 100;

/// The partition batch `seq` of `round` goes to.
fn batch_partition(round: u64, seq: u64) -> u32 {
    (common::mix(round << 32 | seq) % u64::from(PARTITIONS)) as u32
}

/// How many records batch `seq` of `round` holds.
fn batch_len(round: u64, seq: u64) -> u64 {
    1 + (common::mix(round << 32 | seq) >> 8) % 6
}

fn timestamp_of(round: u64, seq: u64, i: u64) -> i64 {
    T0 + ((round * MAX_SEQ + seq) * MAX_BATCH + i) as i64
}

/// (round, seq, i) of a record, from its timestamp.
fn identity(r: &StoredRecord) -> Option<(u64, u64, u64)> {
    let id = u64::try_from(r.timestamp.checked_sub(T0)?).ok()?;
    let i = id % MAX_BATCH;
    let rs = id / MAX_BATCH;
    Some((rs / MAX_SEQ, rs % MAX_SEQ, i))
}

/// Record `i` of batch `seq` of `round`: varied sizes, some null keys and values, headers
/// on some (repeated names and empty values included).
fn record_for(round: u64, seq: u64, i: u64) -> Record {
    let h = common::mix((round << 40) ^ (seq << 8) ^ i ^ 0x5eed);
    let key = (h % 4 != 0).then(|| Bytes::from(format!("key-{round}-{seq}-{i}")));
    let value = (h % 11 != 0).then(|| {
        let len = ((h >> 16) % 2048) as usize;
        Bytes::from(common::filler(h, len))
    });
    let headers = match (h >> 8) % 3 {
        0 => vec![
            ("trace".to_string(), Bytes::from(h.to_be_bytes().to_vec())),
            ("empty".to_string(), Bytes::new()),
        ],
        1 => vec![
            ("dup".to_string(), Bytes::from_static(b"a")),
            ("dup".to_string(), Bytes::from_static(b"b")),
        ],
        _ => Vec::new(),
    };
    Record {
        key,
        value,
        timestamp: Some(timestamp_of(round, seq, i)),
        headers,
    }
}

/// The workload a child runs until it is killed: append batch after batch, printing
/// `ack <round> <seq> <partition> <base offset>` once each append returns.
#[test]
#[ignore = "the workload of acknowledged_records_survive_sigkill_of_the_producing_process, run in a child process"]
fn crash_produce_child() -> TestResult {
    let Some(dir) = common::child_dir() else {
        return Ok(());
    };
    let round = common::child_env_u64(ROUND_ENV)?;
    let acks = match std::env::var(ACKS_ENV).as_deref() {
        Ok("written") => Acks::Written,
        _ => Acks::Synced,
    };
    let log = Log::open(&dir)?;
    if !log.topic_exists(TOPIC) {
        // Small segments, so kills also land in segment rolls.
        let config = TopicConfig::partitions(PARTITIONS).with("segment.bytes", "32768")?;
        log.create_topic(TOPIC, config)?;
    }
    let mut out = std::io::stdout().lock();
    // The test harness has printed "test <name> ... " without a newline: end that line.
    writeln!(out, "\nready")?;
    out.flush()?;
    // A safety net: a child whose parent is gone stops on its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    for seq in 0..MAX_SEQ {
        if Instant::now() > deadline {
            break;
        }
        let p = batch_partition(round, seq);
        let records: Vec<Record> = (0..batch_len(round, seq))
            .map(|i| record_for(round, seq, i))
            .collect();
        let at = log.append(TOPIC, p, &records, acks)?;
        writeln!(out, "ack {round} {seq} {p} {}", at.base_offset)?;
        out.flush()?;
    }
    Ok(())
}

/// Acknowledged batches: (round, seq) → (partition, base offset).
type Acked = BTreeMap<(u64, u64), (u32, i64)>;

fn parse_acks(lines: &[String], round: u64, acked: &mut Acked) -> TestResult<usize> {
    let mut n = 0;
    for line in lines {
        let Some(rest) = line.strip_prefix("ack ") else {
            continue;
        };
        let f: Vec<i64> = rest
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad ack line '{line}': {e}"))?;
        let [r, seq, p, base] = f[..] else {
            return Err(format!("bad ack line '{line}'").into());
        };
        if r as u64 != round {
            return Err(format!("ack line '{line}' is not from round {round}").into());
        }
        acked.insert((r as u64, seq as u64), (p as u32, base));
        n += 1;
    }
    Ok(n)
}

/// Reopens the log and checks it against everything acknowledged so far.
fn verify(dir: &Path, acked: &Acked, rounds_done: u64) -> TestResult<Log> {
    let log = Log::open(dir)?;
    if !log.topic_exists(TOPIC) {
        // Killed before the topic was created in the first round: nothing can be acked.
        assert!(acked.is_empty(), "acknowledged records but no topic");
        return Ok(log);
    }
    // Batches present on disk: (round, seq) → (partition, base offset, record count).
    let mut present: BTreeMap<(u64, u64), (u32, i64, u64)> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let offsets = log.offsets(TOPIC, p)?;
        assert_eq!(offsets.start, 0, "partition {p}: log start moved");
        assert_eq!(
            offsets.last_stable, offsets.end,
            "partition {p}: no transactions here"
        );
        let records = common::read_all(&log, TOPIC, p, Isolation::ReadUncommitted)?;
        assert_eq!(
            records.len() as i64,
            offsets.end,
            "partition {p}: offsets are not contiguous from 0"
        );
        let mut last: Option<(u64, u64, u64)> = None;
        for (n, r) in records.iter().enumerate() {
            assert_eq!(r.offset, n as i64, "partition {p}: offset gap or reorder");
            let id = identity(r).ok_or_else(|| format!("partition {p}: unknown record {r:?}"))?;
            let (round, seq, i) = id;
            assert!(
                round < rounds_done,
                "partition {p} offset {}: record from a future round",
                r.offset
            );
            assert_eq!(
                batch_partition(round, seq),
                p,
                "record {id:?} in the wrong partition"
            );
            let want = record_for(round, seq, i);
            assert_eq!(
                (&r.key, &r.value, &r.headers, Some(r.timestamp)),
                (&want.key, &want.value, &want.headers, want.timestamp),
                "partition {p} offset {}: record {id:?} differs from what was written",
                r.offset
            );
            assert!(
                last.is_none_or(|l| l < id),
                "partition {p} offset {}: {id:?} after {last:?}, out of order",
                r.offset
            );
            last = Some(id);
            let e = present
                .entry((round, seq))
                .or_insert((p, r.offset - i as i64, 0));
            assert_eq!(
                e.1 + i as i64,
                r.offset,
                "batch {round}/{seq} is not contiguous"
            );
            e.2 += 1;
        }
    }
    // Every acknowledged batch is there, whole, where its acknowledgement said.
    for (&(round, seq), &(p, base)) in acked {
        let Some(&(pp, pbase, count)) = present.get(&(round, seq)) else {
            panic!("acknowledged batch {round}/{seq} at {TOPIC}-{p}@{base} is missing");
        };
        assert_eq!(
            (pp, pbase, count),
            (p, base, batch_len(round, seq)),
            "acknowledged batch {round}/{seq}"
        );
    }
    // What is there without an acknowledgement is whole, and can only be the batch that was
    // being written when the kill came: the one right after the round's last acknowledged.
    let mut unacked_per_round: BTreeSet<u64> = BTreeSet::new();
    for (&(round, seq), &(_, _, count)) in &present {
        assert_eq!(count, batch_len(round, seq), "batch {round}/{seq} is torn");
        if acked.contains_key(&(round, seq)) {
            continue;
        }
        let next = acked
            .range((round, 0)..(round + 1, 0))
            .next_back()
            .map_or(0, |(&(_, s), _)| s + 1);
        assert_eq!(
            seq, next,
            "unacknowledged batch {round}/{seq} present, but only {round}/{next} was in flight"
        );
        assert!(unacked_per_round.insert(round));
    }
    Ok(log)
}

#[test]
fn acknowledged_records_survive_sigkill_of_the_producing_process() -> TestResult {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let rounds = common::rounds();
    let mut rng = rand::thread_rng();
    let mut acked = Acked::new();
    for round in 0..rounds {
        // Mostly synced; every third round written (which must survive a kill as well).
        let acks = if round % 3 == 2 { "written" } else { "synced" };
        let mut child = ChildProc::spawn(
            CHILD_TEST,
            &[
                (CHILD_DIR_ENV, dir.path().display().to_string()),
                (ROUND_ENV, round.to_string()),
                (ACKS_ENV, acks.to_string()),
            ],
        )?;
        if round % 5 == 4 {
            // Sometimes kill early: during startup, recovery or the first appends.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..80)));
        } else {
            child.wait_for_line("ready", Duration::from_secs(30))?;
            let ms = if acks == "written" { 1..150 } else { 1..600 };
            std::thread::sleep(Duration::from_millis(rng.gen_range(ms)));
        }
        let lines = child.kill_and_collect()?;
        parse_acks(&lines, round, &mut acked)?;
        drop(verify(dir.path(), &acked, round + 1)?);
    }
    // The log goes on where the last round left it.
    let log = verify(dir.path(), &acked, rounds)?;
    if log.topic_exists(TOPIC) {
        for p in 0..PARTITIONS {
            let end = log.offsets(TOPIC, p)?.end;
            let at = log.append(TOPIC, p, &[Record::new("after", "crash")], Acks::Synced)?;
            assert_eq!(at.base_offset, end, "partition {p}: append after recovery");
        }
    }
    assert!(
        !acked.is_empty(),
        "no round acknowledged anything; the test proves nothing"
    );
    eprintln!(
        "{rounds} rounds, {} acknowledged batches, {:?}",
        acked.len(),
        started.elapsed()
    );
    Ok(())
}
