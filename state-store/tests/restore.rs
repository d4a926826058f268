//! Restore of a sled key-value store from its changelog on the real log: in full when the
//! local state is lost, only the tail after the applied offset otherwise, and with a wipe
//! when the changelog is not the one the store was built from.

mod common;
#[path = "common/log_changelog.rs"]
mod log_changelog;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use freshet_log::Log;
use freshet_state_store::{
    Backend, ChangelogBatch, ChangelogError, ChangelogPartition, ChangelogReader, KeyValueStore,
    KvStore, ReadOnlyKeyValueView, SledBackend, StateStore, Timestamped,
};
use log_changelog::{create_changelog_topic, read_committed, LogChangelog};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const STORE: &str = "counts";
const TOPIC: &str = "app-counts-changelog";

fn changelog() -> ChangelogPartition {
    ChangelogPartition {
        topic: TOPIC.into(),
        partition: 0,
    }
}

fn open_store(dir: &Path) -> TestResult<KvStore> {
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir, 16 << 20)?);
    Ok(KvStore::open(STORE, backend, Some(changelog()))?)
}

/// Key `i`, and its value in generation `g`.
fn key(i: u64) -> Bytes {
    Bytes::from(format!("key-{i:07}"))
}

fn value(i: u64, g: u64) -> Timestamped {
    Timestamped {
        value: Bytes::from(format!("value-{i}-gen-{g}")),
        timestamp: 1_700_000_000_000 + (g * 1_000_000 + i) as i64,
    }
}

type Contents = BTreeMap<Bytes, Timestamped>;

fn contents(store: &mut KvStore) -> TestResult<Contents> {
    let mut out = Contents::new();
    for item in store.all()? {
        let (k, v) = item?;
        out.insert(k, v);
    }
    Ok(out)
}

/// The state the committed changelog describes: every record folded in offset order.
fn changelog_state(log: &Log) -> TestResult<Contents> {
    let mut out = Contents::new();
    for (_, r) in read_committed(log, &changelog())? {
        match r.value {
            Some(value) => out.insert(
                r.key,
                Timestamped {
                    value,
                    timestamp: r.timestamp,
                },
            ),
            None => out.remove(&r.key),
        };
    }
    Ok(out)
}

/// One exactly-once commit: the transaction holds the store's changelog records; the
/// backend gets them after the transaction commits (unless `apply` is false: a crash
/// between commit and apply).
fn commit(store: &mut KvStore, sink: &mut LogChangelog, apply: bool) -> TestResult<usize> {
    sink.begin()?;
    let n = store.send_changelog(sink)?;
    sink.commit()?;
    store.committed();
    if apply {
        store.apply()?;
    }
    Ok(n)
}

fn applied_offset(backend: Arc<dyn Backend>) -> TestResult<Option<i64>> {
    Ok(ReadOnlyKeyValueView::open(backend, STORE)?.applied_offset()?)
}

#[test]
fn a_lost_sled_directory_is_restored_in_full_and_later_restores_replay_only_the_tail() -> TestResult
{
    const KEYS: u64 = 100_000;
    const PER_TXN: u64 = 10_000;
    let root = tempfile::tempdir()?;
    let state = root.path().join("state");
    let log = Log::open(root.path().join("log"))?;
    create_changelog_topic(&log, TOPIC)?;
    let mut sink = LogChangelog::exactly_once(&log, "app-0_0")?;

    let mut store = open_store(&state)?;
    let first = store.restore(&mut sink)?;
    assert!(first.wiped, "nothing local yet");
    assert_eq!(first.records_applied, 0);
    let started = Instant::now();
    for t in 0..KEYS / PER_TXN {
        for i in t * PER_TXN..(t + 1) * PER_TXN {
            store.put(key(i), Some(value(i, 0)))?;
        }
        assert_eq!(commit(&mut store, &mut sink, true)?, PER_TXN as usize);
    }
    let load = started.elapsed();
    let before = contents(&mut store)?;
    assert_eq!(before.len() as u64, KEYS);
    assert_eq!(before, changelog_state(&log)?, "the store is its changelog");
    drop(store);

    // The local state is lost.
    std::fs::remove_dir_all(&state)?;
    let mut store = open_store(&state)?;
    let started = Instant::now();
    let stats = store.restore(&mut sink)?;
    let took = started.elapsed();
    println!(
        "restored {} records in {took:?}: {:.0} records/s (the load through the store took {load:?})",
        stats.records_applied,
        stats.records_applied as f64 / took.as_secs_f64()
    );
    assert!(
        stats.wiped,
        "missing local state wipes (there is nothing to wipe)"
    );
    assert_eq!(stats.from_offset, 0);
    assert_eq!(stats.records_applied, KEYS, "every record replayed");
    assert_eq!(stats.records_skipped, 0);
    assert_eq!(contents(&mut store)?, before, "contents identical");
    assert_eq!(store.approximate_num_entries(), KEYS);

    // Restored state survives a reopen; a second restore replays nothing.
    drop(store);
    let mut store = open_store(&state)?;
    let again = store.restore(&mut sink)?;
    assert!(!again.wiped);
    assert_eq!(again.records_applied, 0, "{again:?}");
    assert_eq!(contents(&mut store)?, before);

    // More commits: overwrites and deletes; the last one never reaches sled.
    let mut expected = before;
    for g in 1..=3u64 {
        for i in (g..KEYS).step_by(997) {
            if i % 3 == 0 {
                store.delete(&key(i))?;
                expected.remove(&key(i));
            } else {
                store.put(key(i), Some(value(i, g)))?;
                expected.insert(key(i), value(i, g));
            }
        }
        commit(&mut store, &mut sink, g < 3)?;
    }
    let tail = (3..KEYS).step_by(997).count() as u64;
    drop(store);
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&state, 16 << 20)?);
    let applied = applied_offset(backend.clone())?.ok_or("no applied offset")?;
    drop(backend);
    let mut store = open_store(&state)?;
    let stats = store.restore(&mut sink)?;
    assert!(!stats.wiped);
    assert_eq!(
        stats.from_offset,
        applied + 1,
        "restore starts after the applied offset"
    );
    assert_eq!(
        stats.records_applied, tail,
        "only the unapplied commit is replayed"
    );
    assert_eq!(contents(&mut store)?, expected);
    assert_eq!(expected, changelog_state(&log)?);
    Ok(())
}

#[test]
fn a_recreated_changelog_topic_wipes_and_restores_the_new_one() -> TestResult {
    let root = tempfile::tempdir()?;
    let state = root.path().join("state");
    let log = Log::open(root.path().join("log"))?;
    create_changelog_topic(&log, TOPIC)?;
    {
        let mut sink = LogChangelog::exactly_once(&log, "app-0_0")?;
        let mut store = open_store(&state)?;
        store.restore(&mut sink)?;
        for i in 0..1_000 {
            store.put(key(i), Some(value(i, 0)))?;
        }
        commit(&mut store, &mut sink, true)?;
    }
    // The changelog is deleted and recreated with fewer records: its applied offset lies
    // beyond the new end, and the topic has a new id.
    let old_id = log.describe_topic(TOPIC)?.id;
    log.delete_topic(TOPIC)?;
    create_changelog_topic(&log, TOPIC)?;
    assert_ne!(log.describe_topic(TOPIC)?.id, old_id);
    let mut sink = LogChangelog::exactly_once(&log, "app-0_0")?;
    {
        let mut writer = KvStore::open(
            "writer",
            Arc::new(freshet_state_store::MemoryBackend::new()),
            Some(changelog()),
        )?;
        for i in 500..510 {
            writer.put(key(i), Some(value(i, 1)))?;
        }
        commit(&mut writer, &mut sink, true)?;
    }
    let mut store = open_store(&state)?;
    let stats = store.restore(&mut sink)?;
    assert!(stats.wiped, "{stats:?}");
    assert_eq!(stats.records_applied, 10);
    assert_eq!(contents(&mut store)?, changelog_state(&log)?);
    assert_eq!(store.approximate_num_entries(), 10);
    Ok(())
}

/// A reader that claims another topic id: isolates the "applied offset beyond the end"
/// rule from the id check.
#[derive(Debug)]
struct SameId {
    id: String,
    inner: LogChangelog,
}

impl ChangelogReader for SameId {
    fn topic_id(&mut self, _topic: &str) -> Result<Option<String>, ChangelogError> {
        Ok(Some(self.id.clone()))
    }
    fn bounds(&mut self, changelog: &ChangelogPartition) -> Result<(i64, i64), ChangelogError> {
        self.inner.bounds(changelog)
    }
    fn read(
        &mut self,
        changelog: &ChangelogPartition,
        from: i64,
        max_records: usize,
    ) -> Result<ChangelogBatch, ChangelogError> {
        self.inner.read(changelog, from, max_records)
    }
}

#[test]
fn an_applied_offset_beyond_the_changelog_end_wipes() -> TestResult {
    let root = tempfile::tempdir()?;
    let state = root.path().join("state");
    let log = Log::open(root.path().join("log"))?;
    let id = create_changelog_topic(&log, TOPIC)?;
    {
        let mut sink = LogChangelog::exactly_once(&log, "app-0_0")?;
        let mut store = open_store(&state)?;
        store.restore(&mut sink)?;
        for i in 0..100 {
            store.put(key(i), Some(value(i, 0)))?;
        }
        commit(&mut store, &mut sink, true)?;
    }
    // Another log whose changelog, under the same id, ends before the applied offset.
    let other = Log::open(root.path().join("other"))?;
    create_changelog_topic(&other, TOPIC)?;
    let mut short = LogChangelog::exactly_once(&other, "app-0_0")?;
    {
        let mut writer = KvStore::open(
            "writer",
            Arc::new(freshet_state_store::MemoryBackend::new()),
            Some(changelog()),
        )?;
        writer.put(key(7), Some(value(7, 9)))?;
        commit(&mut writer, &mut short, true)?;
    }
    let mut reader = SameId { id, inner: short };
    let mut store = open_store(&state)?;
    let stats = store.restore(&mut reader)?;
    assert!(stats.wiped, "{stats:?}");
    assert_eq!(stats.from_offset, 0);
    assert_eq!(stats.records_applied, 1);
    assert_eq!(contents(&mut store)?, changelog_state(&other)?);
    Ok(())
}

#[test]
fn aborted_transactions_are_never_restored() -> TestResult {
    let root = tempfile::tempdir()?;
    let state = root.path().join("state");
    let log = Log::open(root.path().join("log"))?;
    create_changelog_topic(&log, TOPIC)?;
    let mut sink = LogChangelog::exactly_once(&log, "app-0_0")?;
    {
        let mut store = open_store(&state)?;
        store.restore(&mut sink)?;
        store.put(key(1), Some(value(1, 0)))?;
        commit(&mut store, &mut sink, true)?;
        store.put(key(2), Some(value(2, 0)))?;
        sink.begin()?;
        store.send_changelog(&mut sink)?;
        sink.abort()?;
        store.abort();
        store.put(key(3), Some(value(3, 0)))?;
        commit(&mut store, &mut sink, false)?;
    }
    let mut store = open_store(&state)?;
    let stats = store.restore(&mut sink)?;
    assert!(!stats.wiped);
    assert_eq!(
        stats.records_applied, 1,
        "only the committed tail: {stats:?}"
    );
    let keys: Vec<Bytes> = contents(&mut store)?.into_keys().collect();
    assert_eq!(keys, vec![key(1), key(3)]);
    Ok(())
}

#[test]
fn an_at_least_once_changelog_restores_the_tail_too() -> TestResult {
    let root = tempfile::tempdir()?;
    let state = root.path().join("state");
    let log = Log::open(root.path().join("log"))?;
    create_changelog_topic(&log, TOPIC)?;
    let mut sink = LogChangelog::at_least_once(&log);
    {
        let mut store = open_store(&state)?;
        store.restore(&mut sink)?;
        for round in 0..3u64 {
            for i in 0..50 {
                store.put(key(i), Some(value(i, round)))?;
            }
            store.send_changelog(&mut sink)?;
            store.committed();
            if round < 2 {
                store.apply()?;
            }
        }
    }
    let mut store = open_store(&state)?;
    let stats = store.restore(&mut sink)?;
    assert!(!stats.wiped);
    assert_eq!((stats.from_offset, stats.records_applied), (100, 50));
    assert_eq!(contents(&mut store)?, changelog_state(&log)?);
    assert_eq!(store.get(&key(0))?, Some(value(0, 2)));
    Ok(())
}
