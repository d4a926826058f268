//! Correctness of every streams workload of BENCHMARKS.md on a CI-sized input (no timing):
//! W1–W4 through `StreamsApp` under both guarantees and with one and two threads, their
//! plain-loop baselines, R (restore after the local state is deleted) and L (latency, fed
//! at a fixed rate). Each run checks its output by the workload's rule, so a pass means
//! the harness's pipelines, baselines and checks agree.
//!
//! The inputs are BENCHMARKS.md's with fewer records and keys and one record per
//! millisecond of event time (not 100), so that a few thousand records still span several
//! 10 s windows.

use freshet_bench::latency;
use freshet_bench::restore::{self, Restorer};
use freshet_bench::workload::{self, Input, Setup, Workload, OUTPUT, PARTITIONS};
use freshet_bench::BoxError;
use freshet_log::{partition_for_key, Acks, Log, Record, TopicConfig};
use freshet_runtime::ProcessingGuarantee::{AtLeastOnce, ExactlyOnceV2};

fn input(records: u64, keys: u64) -> Input {
    Input {
        records,
        keys,
        records_per_ms: 1,
    }
}

const EOS_1: Setup = Setup {
    guarantee: ExactlyOnceV2,
    threads: 1,
};
const ALOS_2: Setup = Setup {
    guarantee: AtLeastOnce,
    threads: 2,
};

fn both_sides(w: Workload, input: &Input) -> Result<(), BoxError> {
    for setup in [EOS_1, ALOS_2] {
        let dir = tempfile::tempdir()?;
        let m = workload::run_freshet(w, input, setup, dir.path())?;
        assert!(m.records_in >= input.records, "{}: {m:?}", w.label());
    }
    let dir = tempfile::tempdir()?;
    workload::run_baseline(w, input, dir.path())?;
    Ok(())
}

#[test]
fn w1_stateless_is_correct_on_both_sides() -> Result<(), BoxError> {
    both_sides(Workload::W1, &input(8_000, 100))
}

#[test]
fn w2_tumbling_count_is_correct_on_both_sides() -> Result<(), BoxError> {
    both_sides(Workload::W2, &input(25_000, 50))
}

#[test]
fn w3_hopping_sum_is_correct_on_both_sides() -> Result<(), BoxError> {
    both_sides(Workload::W3, &input(25_000, 20))
}

#[test]
fn w4_repartition_is_correct_on_both_sides() -> Result<(), BoxError> {
    both_sides(Workload::W4, &input(8_000, 100))
}

#[test]
fn restore_brings_back_every_key() -> Result<(), BoxError> {
    let r = Restorer::new(3_000, EOS_1, None)?;
    let m = r.restore()?;
    assert!(m.records_in >= 3_000);
    restore::bulk_insert(3_000, 8 << 20, None)?;
    Ok(())
}

#[test]
fn latency_run_delivers_every_output() -> Result<(), BoxError> {
    // At-least-once, as BENCHMARKS.md runs L: outputs are appended within the 5 ms linger,
    // not at the next commit (every 30 s).
    let setup = Setup {
        guarantee: AtLeastOnce,
        threads: 1,
    };
    let dir = tempfile::tempdir()?;
    let l = latency::run(4_000, 0.5, 10, setup, dir.path())?;
    assert_eq!(l.sent, 2_000);
    assert_eq!(l.received, 1_000, "the records with an even key");
    assert!(l.p50_ms <= l.p99_ms && l.p99_ms <= l.p999_ms && l.p999_ms <= l.max_ms);
    assert!(l.max_ms < 5_000.0, "outputs wait for no commit: {l:?}");
    Ok(())
}

/// Runs the baseline of `w`, then appends `extra` to `out`: the check must fail.
fn corrupted(w: Workload, input: &Input, extra: Record) -> Result<String, BoxError> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    let total = workload::preload(&log, input, w.closers())?;
    log.create_topic(OUTPUT, TopicConfig::partitions(PARTITIONS))?;
    w.baseline(&log, total)?;
    w.check(&log, input)?;
    // In the partition of its (base) key, where a real update of that key would be.
    let key = extra.key.clone().ok_or("no key")?;
    let p = partition_for_key(&key[..8], PARTITIONS);
    log.append(OUTPUT, p, &[extra], Acks::Written)?;
    match w.check(&log, input) {
        Ok(()) => Err("the check accepted a wrong result".into()),
        Err(e) => Ok(e.to_string()),
    }
}

#[test]
fn a_wrong_result_is_an_error() -> Result<(), BoxError> {
    let i = input(5_000, 10);
    // W1: an odd key.
    let e = corrupted(
        Workload::W1,
        &i,
        Record::new(3u64.to_be_bytes().to_vec(), 6u64.to_be_bytes().to_vec()),
    )?;
    assert!(e.contains("unexpected record"), "{e}");
    // W2: a window emitted twice.
    let mut key = 0u64.to_be_bytes().to_vec();
    key.extend_from_slice(&workload::T0.to_be_bytes());
    let count = workload::w2_oracle(&i)[&(0, workload::T0)];
    let e = corrupted(
        Workload::W2,
        &i,
        Record::new(key.clone(), count.to_be_bytes().to_vec()),
    )?;
    assert!(e.contains("emitted twice"), "{e}");
    // W3: a later, wrong sum for a window.
    let e = corrupted(
        Workload::W3,
        &i,
        Record::new(key, 1u64.to_be_bytes().to_vec()),
    )?;
    assert!(e.contains("expected"), "{e}");
    // W4: a wrong last count.
    let e = corrupted(
        Workload::W4,
        &i,
        Record::new(7u64.to_be_bytes().to_vec(), 1u64.to_be_bytes().to_vec()),
    )?;
    assert!(e.contains("key 7"), "{e}");
    // Any output in the wrong partition.
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic(OUTPUT, TopicConfig::partitions(PARTITIONS))?;
    let key = 0u64.to_be_bytes();
    let wrong = (partition_for_key(&key, PARTITIONS) + 1) % PARTITIONS;
    log.append(
        OUTPUT,
        wrong,
        &[Record::new(key.to_vec(), 0u64.to_be_bytes().to_vec())],
        Acks::Written,
    )?;
    let e = Workload::W1
        .check(&log, &i)
        .err()
        .ok_or("accepted")?
        .to_string();
    assert!(e.contains("belongs in partition"), "{e}");
    Ok(())
}
