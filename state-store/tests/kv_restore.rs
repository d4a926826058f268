//! The commit protocol and restore of a key-value store on sled.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    ChangelogPartition, KeyValueStore, KvStore, SledBackend, StateStore, Timestamped,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn cl() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: "app-counts-changelog".into(),
        partition: 0,
    })
}

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn commit(store: &mut KvStore, log: &mut MemChangelog) -> TestResult {
    log.begin();
    store.send_changelog(log)?;
    log.commit();
    store.committed();
    store.apply()?;
    Ok(())
}

#[test]
fn committed_writes_survive_a_reopen_and_restore_replays_only_the_tail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    {
        let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
        let mut store = KvStore::open("counts", backend, cl())?;
        store.restore(&mut log)?;
        store.put(Bytes::from("a"), v("1", 1))?;
        store.put(Bytes::from("b"), v("2", 2))?;
        commit(&mut store, &mut log)?;
        // Committed to the changelog, never applied: as if the process died between.
        store.put(Bytes::from("c"), v("3", 3))?;
        log.begin();
        store.send_changelog(&mut log)?;
        log.commit();
        // Uncommitted: lost.
        store.put(Bytes::from("d"), v("4", 4))?;
    }
    let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut store = KvStore::open("counts", backend, cl())?;
    let stats = store.restore(&mut log)?;
    assert!(!stats.wiped);
    assert_eq!(
        stats.from_offset, 2,
        "only the tail after the applied offset"
    );
    assert_eq!(stats.records_applied, 1);
    let all: Vec<_> = store.all()?.collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<_> = all.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        vec![Bytes::from("a"), Bytes::from("b"), Bytes::from("c")]
    );
    assert_eq!(store.get(b"c")?.map(|v| v.timestamp), Some(3));
    Ok(())
}

#[test]
fn aborted_writes_never_reach_the_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut store = KvStore::open("counts", backend, cl())?;
    store.put(Bytes::from("a"), v("1", 1))?;
    log.begin();
    store.send_changelog(&mut log)?;
    log.abort();
    store.abort();
    assert_eq!(store.get(b"a")?, None);
    drop(store);
    let backend = Arc::new(SledBackend::open(
        dir.path().join("other").as_path(),
        1 << 20,
    )?);
    let mut fresh = KvStore::open("counts", backend, cl())?;
    let stats = fresh.restore(&mut log)?;
    assert_eq!(stats.records_applied, 0);
    assert_eq!(fresh.get(b"a")?, None);
    Ok(())
}

#[test]
fn a_changed_changelog_topic_id_wipes_and_restores_in_full() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut store = KvStore::open("counts", backend.clone(), cl())?;
    store.restore(&mut log)?;
    store.put(Bytes::from("a"), v("1", 1))?;
    commit(&mut store, &mut log)?;
    drop(store);
    let mut other = MemChangelog::new();
    other.topic_id = "id-2".into();
    let mut store = KvStore::open("counts", backend, cl())?;
    let stats = store.restore(&mut other)?;
    assert!(stats.wiped);
    assert_eq!(store.get(b"a")?, None);
    Ok(())
}
