//! The time-ordered buffer store for suppress: eviction order, first-buffer-time semantics,
//! its changelog format, and a model test with commits, aborts, compaction and restarts on
//! the memory and the sled backend.

mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    Backend, BufferStore, BufferedRecord, ChangelogPartition, ChangelogRecord, MemoryBackend,
    SledBackend, StateStore, Timestamped,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

fn changelog() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: "app-suppress-changelog".into(),
        partition: 0,
    })
}

fn v(s: &str, ts: i64) -> Timestamped {
    Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    }
}

fn commit(store: &mut BufferStore, log: &mut MemChangelog, apply: bool) -> TestResult<usize> {
    log.begin();
    let n = store.send_changelog(log)?;
    log.commit();
    store.committed();
    if apply {
        store.apply()?;
    }
    Ok(n)
}

/// Evicts while the smallest buffer time is at most `until`; returns what went.
fn evict_until(store: &mut BufferStore, until: i64) -> TestResult<Vec<BufferedRecord>> {
    let mut out = Vec::new();
    store.evict_while(
        |s| s.min_timestamp <= until,
        |r| {
            out.push(r);
            Ok::<(), freshet_state_store::Error>(())
        },
    )?;
    Ok(out)
}

fn keys(records: &[BufferedRecord]) -> Vec<&[u8]> {
    records.iter().map(|r| r.key.as_ref()).collect()
}

fn open_sled(dir: &Path) -> TestResult<Arc<dyn Backend>> {
    // sled may still hold the directory's lock for a moment after the last handle drops.
    let start = std::time::Instant::now();
    loop {
        match SledBackend::open(dir, 1 << 20) {
            Ok(b) => return Ok(Arc::new(b)),
            Err(_) if start.elapsed() < std::time::Duration::from_secs(30) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[test]
fn eviction_goes_in_buffer_time_order_and_equal_times_in_key_order() -> TestResult {
    let mut store = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), None)?;
    store.put(20, Bytes::from("a"), v("a", 1))?;
    store.put(10, Bytes::from("c"), v("c", 2))?;
    store.put(10, Bytes::from("b"), v("b", 3))?;
    store.put(-5, Bytes::from("z"), v("z", 4))?;
    store.put(10, Bytes::from("\u{0}"), v("0", 5))?;
    assert_eq!(store.min_timestamp()?, -5);
    let out = evict_until(&mut store, 10)?;
    assert_eq!(keys(&out), vec![b"z" as &[u8], b"\0", b"b", b"c"]);
    assert_eq!(out[0].buffer_time, -5);
    assert_eq!(store.min_timestamp()?, 20);
    assert_eq!(store.num_records(), 1);
    assert!(evict_until(&mut store, 19)?.is_empty());
    assert_eq!(keys(&evict_until(&mut store, 20)?), vec![b"a" as &[u8]]);
    assert_eq!(
        store.min_timestamp()?,
        i64::MAX,
        "empty, as Kafka's minTimestamp"
    );
    assert_eq!(store.buffer_size_bytes(), 0);
    Ok(())
}

#[test]
fn a_key_keeps_the_buffer_time_of_its_first_update_and_the_latest_value() -> TestResult {
    let mut store = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), None)?;
    store.put(5, Bytes::from("k"), v("1", 5))?;
    store.put(9, Bytes::from("j"), v("1", 9))?;
    store.put(30, Bytes::from("k"), v("second", 30))?;
    let k = store.get(b"k")?.expect("buffered");
    assert_eq!((k.buffer_time, k.value), (5, v("second", 30)));
    assert_eq!(store.num_records(), 2);
    assert_eq!(store.buffer_size_bytes(), (16 + 1 + 6) + (16 + 1 + 1));
    let out = evict_until(&mut store, 5)?;
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].value.value.as_ref(), out[0].value.timestamp),
        (b"second" as &[u8], 30)
    );
    // Once evicted, the key starts over with the buffer time of its next update.
    store.put(40, Bytes::from("k"), v("third", 40))?;
    assert_eq!(store.get(b"k")?.map(|r| r.buffer_time), Some(40));
    assert!(store.delete(b"k")?);
    assert!(!store.delete(b"k")?);
    assert_eq!(store.get(b"k")?, None);
    assert_eq!(store.min_timestamp()?, 9);
    Ok(())
}

#[test]
fn the_predicate_sees_the_buffer_shrink_as_entries_go() -> TestResult {
    let mut store = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), None)?;
    for (i, k) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        store.put(i as i64, Bytes::from(*k), v("xx", 0))?;
    }
    // emitEarlyWhenFull with maxRecords = 2: evict while over.
    let mut states = Vec::new();
    let mut out = Vec::new();
    store.evict_while(
        |s| {
            states.push((s.min_timestamp, s.num_records, s.buffer_size_bytes));
            s.num_records > 2
        },
        |r| {
            out.push(r.key);
            Ok::<(), freshet_state_store::Error>(())
        },
    )?;
    assert_eq!(
        out,
        vec![Bytes::from("a"), Bytes::from("b"), Bytes::from("c")]
    );
    assert_eq!(
        states,
        vec![(0, 5, 95), (1, 4, 76), (2, 3, 57), (3, 2, 38)],
        "entries of 16 + 1 + 2 bytes"
    );
    // A failing callback stops the eviction and keeps the entry.
    let err = store
        .evict_while(
            |_| true,
            |_| Err(freshet_state_store::Error::Poisoned { store: "x".into() }),
        )
        .expect_err("callback failed");
    assert!(err.to_string().contains("refuses"));
    assert_eq!(store.num_records(), 2);
    Ok(())
}

#[test]
fn the_changelog_has_one_record_per_key_with_buffer_time_value_and_timestamp() -> TestResult {
    let mut log = MemChangelog::new();
    let mut store = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), changelog())?;
    store.restore(&mut log)?;
    store.put(7, Bytes::from("k"), v("1", 7))?;
    store.put(9, Bytes::from("k"), v("2", 9))?;
    store.put(8, Bytes::from("gone"), v("x", 8))?;
    assert!(store.delete(b"gone")?);
    assert_eq!(commit(&mut store, &mut log, true)?, 2);
    let mut value = 7i64.to_be_bytes().to_vec();
    value.extend_from_slice(b"2");
    let records: Vec<ChangelogRecord> = log
        .partitions
        .values()
        .flatten()
        .flatten()
        .cloned()
        .collect();
    assert_eq!(
        records,
        vec![
            ChangelogRecord {
                key: Bytes::from("gone"),
                value: None,
                timestamp: 0
            },
            ChangelogRecord {
                key: Bytes::from("k"),
                value: Some(Bytes::from(value)),
                timestamp: 9
            },
        ]
    );
    evict_until(&mut store, 100)?;
    assert_eq!(
        commit(&mut store, &mut log, true)?,
        1,
        "the eviction is a tombstone"
    );
    Ok(())
}

#[test]
fn a_buffer_in_a_new_state_directory_is_rebuilt_from_the_changelog() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    {
        let mut store =
            BufferStore::open("suppress", open_sled(&dir.path().join("a"))?, changelog())?;
        store.restore(&mut log)?;
        for i in 0..1000i64 {
            store.put(i % 37, Bytes::from(format!("k{i:04}")), v("v", i))?;
        }
        commit(&mut store, &mut log, true)?;
        evict_until(&mut store, 10)?;
        commit(&mut store, &mut log, true)?;
    }
    let mut fresh = BufferStore::open("suppress", open_sled(&dir.path().join("b"))?, changelog())?;
    let stats = fresh.restore(&mut log)?;
    assert_eq!((stats.wiped, stats.from_offset), (false, 0));
    let evicted = (0..1000i64).filter(|i| i % 37 <= 10).count() as u64;
    assert_eq!(stats.records_applied, 1000 + evicted);
    let mut want: Vec<(i64, String)> = (0..1000i64)
        .filter(|i| i % 37 > 10)
        .map(|i| (i % 37, format!("k{i:04}")))
        .collect();
    want.sort();
    let got: Vec<(i64, String)> = fresh
        .records()?
        .into_iter()
        .map(|r| (r.buffer_time, String::from_utf8_lossy(&r.key).into_owned()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(fresh.num_records(), want.len());
    assert_eq!(fresh.min_timestamp()?, 11);
    Ok(())
}

#[test]
fn a_restart_replays_the_whole_committed_changelog_and_loses_uncommitted_updates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    {
        let mut store = BufferStore::open("suppress", open_sled(dir.path())?, changelog())?;
        store.restore(&mut log)?;
        store.put(1, Bytes::from("a"), v("a1", 1))?;
        store.put(2, Bytes::from("b"), v("b1", 2))?;
        commit(&mut store, &mut log, true)?;
        // Committed: `a` moves from buffer time 1 to 5, `b` goes.
        assert!(store.delete(b"a")?);
        store.put(5, Bytes::from("a"), v("a2", 5))?;
        evict_until(&mut store, 2)?;
        commit(&mut store, &mut log, false)?;
        // Uncommitted: lost.
        store.put(0, Bytes::from("c"), v("c1", 0))?;
    }
    let mut store = BufferStore::open("suppress", open_sled(dir.path())?, changelog())?;
    let stats = store.restore(&mut log)?;
    assert!(!stats.wiped);
    // The buffer keeps nothing locally: every committed record is replayed.
    assert_eq!((stats.from_offset, stats.records_applied), (0, 4));
    let records = store.records()?;
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].buffer_time, &records[0].key[..]),
        (5, b"a" as &[u8])
    );
    assert_eq!(store.min_timestamp()?, 5);
    assert_eq!(store.buffer_size_bytes(), 16 + 1 + 2);
    Ok(())
}

#[test]
fn a_restore_across_read_batches_drops_a_time_entry_from_an_earlier_batch() -> TestResult {
    // Restore reads 50,000 records at a time: `a` is buffered at time 0 in the first batch
    // and moves to time 100 in the second.
    let mut log = MemChangelog::new();
    let mut store = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), changelog())?;
    store.restore(&mut log)?;
    store.put(0, Bytes::from("a"), v("a1", 0))?;
    for i in 0..50_000 {
        store.put(1 + i % 50, Bytes::from(format!("k{i:05}")), v("", i))?;
    }
    commit(&mut store, &mut log, true)?;
    assert_eq!(keys(&evict_until(&mut store, 0)?), vec![b"a" as &[u8]]);
    store.put(100, Bytes::from("a"), v("a2", 100))?;
    commit(&mut store, &mut log, true)?;
    drop(store);
    let mut fresh = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), changelog())?;
    let stats = fresh.restore(&mut log)?;
    assert_eq!(stats.records_applied, 50_002);
    assert_eq!(fresh.num_records(), 50_001);
    assert_eq!(fresh.min_timestamp()?, 1);
    let records = fresh.records()?;
    assert_eq!(records.len(), 50_001);
    assert_eq!(
        (records[50_000].buffer_time, &records[50_000].key[..]),
        (100, b"a" as &[u8])
    );
    Ok(())
}

// ---- the model test ----

#[derive(Debug, Clone)]
enum Op {
    Put {
        time: i64,
        key: u8,
        value: u8,
        ts: i64,
    },
    /// Evicts while the smallest buffer time is at most `until` (until-window-closes).
    EvictUntil(i64),
    /// Evicts while more than `keep` entries are buffered (emit early when full).
    EvictOver(usize),
    Delete(u8),
    Get(u8),
    MinTimestamp,
    Commit {
        apply: bool,
    },
    Abort {
        sent: bool,
    },
    /// Compacts the changelog: keeps only each key's latest committed record.
    Compact,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (-3i64..20, 0u8..8, any::<u8>(), 0i64..50)
            .prop_map(|(time, key, value, ts)| Op::Put { time, key, value, ts }),
        3 => (-3i64..22).prop_map(Op::EvictUntil),
        1 => (0usize..6).prop_map(Op::EvictOver),
        2 => (0u8..8).prop_map(Op::Delete),
        2 => (0u8..8).prop_map(Op::Get),
        1 => Just(Op::MinTimestamp),
        3 => any::<bool>().prop_map(|apply| Op::Commit { apply }),
        1 => any::<bool>().prop_map(|sent| Op::Abort { sent }),
        1 => Just(Op::Compact),
        2 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    Sled,
}

/// Key `k` as bytes: lengths differ, and `0x00`/`0xff` sort at the ends.
fn key(k: u8) -> Bytes {
    match k {
        0 => Bytes::from_static(b"\x00"),
        7 => Bytes::from_static(b"\xff\xff"),
        k => Bytes::from(vec![b'a' + k; usize::from(k % 3) + 1]),
    }
}

type Entry = (i64, Vec<u8>, i64);

/// A key's entry: buffer time, value, timestamp.
#[derive(Debug, Default, Clone)]
struct Model(BTreeMap<Bytes, Entry>);

impl Model {
    fn put(&mut self, time: i64, k: Bytes, value: Vec<u8>, ts: i64) {
        let time = self.0.get(&k).map_or(time, |e| e.0);
        self.0.insert(k, (time, value, ts));
    }
    fn ordered(&self) -> Vec<(i64, Bytes, Vec<u8>, i64)> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .map(|(k, (t, val, ts))| (*t, k.clone(), val.clone(), *ts))
            .collect();
        v.sort();
        v
    }
    fn bytes(&self) -> u64 {
        self.0
            .iter()
            .map(|(k, (_, v, _))| (16 + k.len() + v.len()) as u64)
            .sum()
    }
}

fn as_tuples(records: Vec<BufferedRecord>) -> Vec<(i64, Bytes, Vec<u8>, i64)> {
    records
        .into_iter()
        .map(|r| {
            (
                r.buffer_time,
                r.key,
                r.value.value.to_vec(),
                r.value.timestamp,
            )
        })
        .collect()
}

fn check<T: PartialEq + std::fmt::Debug>(step: usize, op: &Op, got: T, want: T) -> TestResult {
    if got != want {
        return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}").into());
    }
    Ok(())
}

fn open(kind: Kind, dir: &Path) -> TestResult<BufferStore> {
    let backend: Arc<dyn Backend> = match kind {
        Kind::Memory => Arc::new(MemoryBackend::new()),
        Kind::Sled => open_sled(dir)?,
    };
    Ok(BufferStore::open("suppress", backend, changelog())?)
}

fn run(kind: Kind, ops: &[Op]) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    let mut store = open(kind, dir.path())?;
    store.restore(&mut log)?;
    let mut current = Model::default();
    let mut committed = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put {
                time,
                key: k,
                value,
                ts,
            } => {
                let val = vec![*value; usize::from(*value % 5)];
                store.put(
                    *time,
                    key(*k),
                    Timestamped {
                        value: Bytes::from(val.clone()),
                        timestamp: *ts,
                    },
                )?;
                current.put(*time, key(*k), val, *ts);
            }
            Op::EvictUntil(until) => {
                let got = as_tuples(evict_until(&mut store, *until)?);
                let want: Vec<_> = current
                    .ordered()
                    .into_iter()
                    .take_while(|e| e.0 <= *until)
                    .collect();
                for e in &want {
                    current.0.remove(&e.1);
                }
                check(step, op, got, want)?;
            }
            Op::EvictOver(keep) => {
                let mut out = Vec::new();
                store.evict_while(
                    |s| s.num_records > *keep,
                    |r| {
                        out.push(r);
                        Ok::<(), freshet_state_store::Error>(())
                    },
                )?;
                let ordered = current.ordered();
                let n = ordered.len().saturating_sub(*keep);
                let want: Vec<_> = ordered.into_iter().take(n).collect();
                for e in &want {
                    current.0.remove(&e.1);
                }
                check(step, op, as_tuples(out), want)?;
            }
            Op::Delete(k) => {
                let got = store.delete(&key(*k))?;
                check(step, op, got, current.0.remove(&key(*k)).is_some())?;
            }
            Op::Get(k) => {
                let got = store
                    .get(&key(*k))?
                    .map(|r| (r.buffer_time, r.value.value.to_vec(), r.value.timestamp));
                check(step, op, got, current.0.get(&key(*k)).cloned())?;
            }
            Op::MinTimestamp => {}
            Op::Commit { apply } => {
                commit(&mut store, &mut log, *apply)?;
                committed = current.clone();
                check(step, op, store.write_buffer_bytes(), 0)?;
            }
            Op::Abort { sent } => {
                if *sent {
                    log.begin();
                    store.send_changelog(&mut log)?;
                    log.abort();
                }
                store.abort();
                current = committed.clone();
            }
            Op::Compact => {
                for records in log.partitions.values_mut() {
                    let mut latest: BTreeMap<Bytes, usize> = BTreeMap::new();
                    for (i, r) in records.iter().enumerate() {
                        if let Some(r) = r {
                            latest.insert(r.key.clone(), i);
                        }
                    }
                    for (i, r) in records.iter_mut().enumerate() {
                        if r.as_ref().is_some_and(|r| latest.get(&r.key) != Some(&i)) {
                            *r = None;
                        }
                    }
                }
            }
            Op::Restart => {
                drop(store);
                store = open(kind, dir.path())?;
                store.restore(&mut log)?;
                current = committed.clone();
            }
        }
        // After every step the whole buffer matches the model.
        check(step, op, as_tuples(store.records()?), current.ordered())?;
        check(step, op, store.num_records(), current.0.len())?;
        check(step, op, store.buffer_size_bytes(), current.bytes())?;
        let min = current.ordered().first().map_or(i64::MAX, |e| e.0);
        check(step, op, store.min_timestamp()?, min)?;
    }
    // Finally: a fresh store restored from the whole changelog is the committed model.
    commit(&mut store, &mut log, true)?;
    drop(store);
    let mut fresh = BufferStore::open("suppress", Arc::new(MemoryBackend::new()), changelog())?;
    fresh.restore(&mut log)?;
    check(
        ops.len(),
        &Op::Restart,
        as_tuples(fresh.records()?),
        current.ordered(),
    )?;
    check(
        ops.len(),
        &Op::Restart,
        fresh.buffer_size_bytes(),
        current.bytes(),
    )?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn buffer_store_on_memory_matches_a_btreemap_model(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run(Kind::Memory, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    })]

    #[test]
    fn buffer_store_on_sled_matches_a_btreemap_model(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run(Kind::Sled, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn opening_drops_the_tree_an_earlier_version_kept_the_buffer_in() -> TestResult {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    backend
        .open_tree("suppress")?
        .apply(&[(Bytes::from("k"), Some(Bytes::from("v")))], Some(3))?;
    let store = BufferStore::open("suppress", backend.clone(), changelog())?;
    assert_eq!(store.num_records(), 0);
    assert!(!backend.tree_names()?.contains(&"suppress".to_string()));
    Ok(())
}
