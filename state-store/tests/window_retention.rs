//! Retention of window and session stores: expired segments are deleted whole as stream time
//! advances, expired puts are dropped, and neither a restart nor a restore brings an expired
//! window back.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    default_segment_interval, Backend, ChangelogPartition, MemoryBackend, SegmentedSessionStore,
    SegmentedWindowStore, SessionStore, SessionStoreOptions, SledBackend, StateStore, Timestamped,
    Window, WindowStore, WindowStoreOptions,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NAME: &str = "windows";
/// Two minutes: segments of one minute (Kafka's default interval is half the retention,
/// at least a minute).
const RETENTION: i64 = 120_000;

fn cl() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: format!("app-{NAME}-changelog"),
        partition: 0,
    })
}

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn options() -> WindowStoreOptions {
    WindowStoreOptions::new(RETENTION, 10_000)
}

fn segment(store: &str, id: i64) -> String {
    format!("{store}.{id:020}")
}

fn segments_of(
    backend: &dyn Backend,
    store: &str,
) -> Result<Vec<String>, freshet_state_store::Error> {
    let mut names: Vec<String> = backend
        .tree_names()?
        .into_iter()
        .filter(|n| n.starts_with(&format!("{store}.")))
        .collect();
    names.sort();
    Ok(names)
}

fn commit(store: &mut dyn StateStore, log: &mut MemChangelog, apply: bool) -> TestResult {
    log.begin();
    store.send_changelog(log)?;
    log.commit();
    store.committed();
    if apply {
        store.apply()?;
    }
    Ok(())
}

fn starts(
    store: &SegmentedWindowStore,
    key: &[u8],
) -> Result<Vec<i64>, freshet_state_store::Error> {
    store
        .fetch(key, 0, i64::MAX)?
        .map(|r| r.map(|(t, _)| t))
        .collect()
}

fn open_sled(path: &std::path::Path) -> Result<Arc<SledBackend>, freshet_state_store::Error> {
    Ok(Arc::new(SledBackend::open(path, 1 << 20)?))
}

#[test]
fn expired_segments_are_dropped_whole_as_stream_time_advances() -> TestResult {
    let dir = tempfile::tempdir()?;
    let backend = open_sled(dir.path())?;
    let mut log = MemChangelog::new();
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
    store.restore(&mut log)?;
    assert_eq!(store.segment_interval(), 60_000);
    for t in [0, 60_000, 120_000] {
        store.put(b"k", v("x", t), t)?;
    }
    commit(&mut store, &mut log, true)?;
    assert_eq!(
        segments_of(backend.as_ref(), NAME)?,
        vec![segment(NAME, 0), segment(NAME, 1), segment(NAME, 2)]
    );
    // At stream time 120 000 the window at 0 has expired (0 <= 120 000 - 120 000), so reads
    // hide it; its segment ends at 60 000 > 0 and stays until stream time expires it whole.
    assert_eq!(starts(&store, b"k")?, vec![60_000, 120_000]);

    store.put(b"k", v("y", 250_000), 250_000)?;
    // Reads hide expired windows at once; segments go only at apply (after the commit).
    assert_eq!(starts(&store, b"k")?, vec![250_000]);
    assert_eq!(segments_of(backend.as_ref(), NAME)?.len(), 4);
    commit(&mut store, &mut log, true)?;
    // 250 000 - 120 000 = 130 000: segments 0 and 1 end at or before it; segment 2 does not.
    assert_eq!(
        segments_of(backend.as_ref(), NAME)?,
        vec![segment(NAME, 2), segment(NAME, 4)]
    );
    assert_eq!(store.segment_ids(), vec![2, 4]);
    Ok(())
}

#[test]
fn puts_of_expired_windows_are_dropped_and_never_reach_the_changelog() -> TestResult {
    let mut log = MemChangelog::new();
    let mut store =
        SegmentedWindowStore::open(NAME, Arc::new(MemoryBackend::new()), cl(), options())?;
    store.restore(&mut log)?;
    store.put(b"k", v("now", 250_000), 250_000)?;
    commit(&mut store, &mut log, true)?;
    let logged = log.partitions.values().map(Vec::len).sum::<usize>();
    // Kafka's boundary: a window is expired once start <= stream time - retention.
    store.put(b"k", v("expired", 130_000), 130_000)?;
    store.put(b"k", v("live", 130_001), 130_001)?;
    assert_eq!(store.dropped_expired(), 1);
    assert_eq!(store.fetch_one(b"k", 130_000)?, None);
    commit(&mut store, &mut log, true)?;
    assert_eq!(
        log.partitions.values().map(Vec::len).sum::<usize>(),
        logged + 1
    );
    assert_eq!(starts(&store, b"k")?, vec![130_001, 250_000]);
    Ok(())
}

#[test]
fn a_full_restore_does_not_resurrect_expired_windows() -> TestResult {
    let mut log = MemChangelog::new();
    {
        let dir = tempfile::tempdir()?;
        let mut store = SegmentedWindowStore::open(NAME, open_sled(dir.path())?, cl(), options())?;
        store.restore(&mut log)?;
        for t in [0, 60_000, 300_000] {
            store.put(b"k", v("x", t), t)?;
            commit(&mut store, &mut log, true)?;
        }
    }
    // The local state is lost: restore replays the whole changelog, old windows included.
    let dir = tempfile::tempdir()?;
    let backend = open_sled(dir.path())?;
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
    let stats = store.restore(&mut log)?;
    assert!(stats.wiped);
    assert_eq!(store.observed_stream_time(), 300_000);
    assert_eq!(starts(&store, b"k")?, vec![300_000]);
    assert_eq!(segments_of(backend.as_ref(), NAME)?, vec![segment(NAME, 5)]);
    Ok(())
}

#[test]
fn a_tail_restore_drops_windows_that_the_tail_itself_expires() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    {
        let mut store = SegmentedWindowStore::open(NAME, open_sled(dir.path())?, cl(), options())?;
        store.restore(&mut log)?;
        store.put(b"applied", v("a", 0), 0)?;
        commit(&mut store, &mut log, true)?;
        // One commit, never applied: an old window, then one that expires it.
        store.put(b"old", v("o", 10), 10)?;
        store.put(b"new", v("n", 300_000), 300_000)?;
        commit(&mut store, &mut log, false)?;
    }
    let backend = open_sled(dir.path())?;
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
    let stats = store.restore(&mut log)?;
    assert!(!stats.wiped);
    assert_eq!(stats.from_offset, 1, "only the tail");
    let keys: Vec<Bytes> = store
        .all()?
        .map(|r| r.map(|(w, _)| w.key))
        .collect::<Result<_, _>>()?;
    assert_eq!(keys, vec![Bytes::from("new")]);
    assert_eq!(segments_of(backend.as_ref(), NAME)?, vec![segment(NAME, 5)]);
    Ok(())
}

#[test]
fn stream_time_survives_a_restart_so_expired_puts_stay_dropped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    {
        let mut store = SegmentedWindowStore::open(NAME, open_sled(dir.path())?, cl(), options())?;
        store.restore(&mut log)?;
        store.put(b"k", v("x", 300_000), 300_000)?;
        commit(&mut store, &mut log, true)?;
    }
    let mut store = SegmentedWindowStore::open(NAME, open_sled(dir.path())?, cl(), options())?;
    assert_eq!(
        store.observed_stream_time(),
        300_000,
        "read back before restore"
    );
    let stats = store.restore(&mut log)?;
    assert_eq!(stats.records_applied, 0);
    assert_eq!(store.observed_stream_time(), 300_000);
    store.put(b"k", v("late", 100_000), 100_000)?;
    assert_eq!(store.dropped_expired(), 1);
    assert_eq!(starts(&store, b"k")?, vec![300_000]);
    Ok(())
}

#[test]
fn an_abort_rolls_stream_time_back_and_drops_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let backend = open_sled(dir.path())?;
    let mut log = MemChangelog::new();
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
    store.restore(&mut log)?;
    store.put(b"k", v("x", 0), 0)?;
    commit(&mut store, &mut log, true)?;
    store.put(b"k", v("far", 500_000), 500_000)?;
    assert_eq!(starts(&store, b"k")?, vec![500_000]);
    log.begin();
    store.send_changelog(&mut log)?;
    log.abort();
    store.abort();
    assert_eq!(store.observed_stream_time(), 0);
    assert_eq!(starts(&store, b"k")?, vec![0]);
    store.apply()?;
    assert!(segments_of(backend.as_ref(), NAME)?.contains(&segment(NAME, 0)));
    Ok(())
}

#[test]
fn segment_interval_defaults_to_half_the_retention_but_at_least_a_minute() -> TestResult {
    assert_eq!(default_segment_interval(600_000), 300_000);
    assert_eq!(default_segment_interval(60_000), 60_000);
    assert_eq!(default_segment_interval(0), 60_000);
    let backend = Arc::new(MemoryBackend::new());
    let mut store = SegmentedWindowStore::open(
        NAME,
        backend.clone(),
        None,
        WindowStoreOptions::new(600_000, 60_000),
    )?;
    store.put(b"k", v("a", 0), 299_999)?;
    store.put(b"k", v("b", 0), 300_000)?;
    assert_eq!(store.segment_ids(), vec![0, 1]);
    assert_eq!(store.changelog_retention_ms(), 600_000 + 86_400_000);
    assert_eq!(
        segments_of(backend.as_ref(), NAME)?,
        vec![segment(NAME, 0), segment(NAME, 1)]
    );
    Ok(())
}

#[test]
fn a_wipe_never_touches_a_store_whose_name_extends_this_one() -> TestResult {
    let backend = Arc::new(MemoryBackend::new());
    let mut log = MemChangelog::new();
    let mut other = SegmentedWindowStore::open("w.x", backend.clone(), None, options())?;
    other.put(b"k", v("other", 0), 0)?;
    commit(&mut other, &mut log, true)?;
    let changelog = Some(ChangelogPartition {
        topic: "app-w-changelog".into(),
        partition: 0,
    });
    let mut store = SegmentedWindowStore::open("w", backend.clone(), changelog, options())?;
    assert!(store.segment_ids().is_empty());
    assert!(store.restore(&mut log)?.wiped);
    assert_eq!(starts(&other, b"k")?, vec![0]);
    assert_eq!(
        segments_of(backend.as_ref(), "w.x")?,
        vec![segment("w.x", 0)]
    );
    Ok(())
}

#[test]
fn session_segments_expire_by_session_end() -> TestResult {
    let dir = tempfile::tempdir()?;
    let backend = open_sled(dir.path())?;
    let mut log = MemChangelog::new();
    let name = "sessions";
    let changelog = Some(ChangelogPartition {
        topic: "app-sessions-changelog".into(),
        partition: 0,
    });
    let mut store = SegmentedSessionStore::open(
        name,
        backend.clone(),
        changelog.clone(),
        SessionStoreOptions::new(RETENTION),
    )?;
    store.restore(&mut log)?;
    // Starts long ago, ends late: kept by its end.
    store.put(
        b"k",
        Window {
            start: 0,
            end: 10_000,
        },
        v("early", 10_000),
    )?;
    store.put(
        b"k",
        Window {
            start: 0,
            end: 200_000,
        },
        v("long", 200_000),
    )?;
    commit(&mut store, &mut log, true)?;
    store.put(
        b"k",
        Window {
            start: 250_000,
            end: 260_000,
        },
        v("late", 260_000),
    )?;
    // Expired: end <= 260 000 - 120 000.
    store.put(
        b"k",
        Window {
            start: 100_000,
            end: 140_000,
        },
        v("dropped", 140_000),
    )?;
    assert_eq!(store.dropped_expired(), 1);
    commit(&mut store, &mut log, true)?;
    assert_eq!(
        segments_of(backend.as_ref(), name)?,
        vec![segment(name, 3), segment(name, 4)]
    );
    let ends: Vec<i64> = store
        .fetch(b"k")?
        .map(|r| r.map(|(w, _)| w.window.end))
        .collect::<Result<_, _>>()?;
    assert_eq!(ends, vec![200_000, 260_000]);
    drop(store);
    // A full restore elsewhere brings back the same, and nothing expired.
    let dir2 = tempfile::tempdir()?;
    let backend2 = open_sled(dir2.path())?;
    let mut restored = SegmentedSessionStore::open(
        name,
        backend2.clone(),
        changelog,
        SessionStoreOptions::new(RETENTION),
    )?;
    restored.restore(&mut log)?;
    let ends: Vec<i64> = restored
        .fetch(b"k")?
        .map(|r| r.map(|(w, _)| w.window.end))
        .collect::<Result<_, _>>()?;
    assert_eq!(ends, vec![200_000, 260_000]);
    assert_eq!(
        segments_of(backend2.as_ref(), name)?,
        vec![segment(name, 3), segment(name, 4)]
    );
    Ok(())
}
