//! Read-only views of window and session stores: they show committed, applied state only,
//! in the store's order, hide what the committed stream time has expired, and follow the
//! store through restarts and restores.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    Backend, ChangelogPartition, Error, MemoryBackend, ReadOnlySessionView, ReadOnlyWindowView,
    SegmentedSessionStore, SegmentedWindowStore, SessionStore, SessionStoreOptions, SledBackend,
    StateStore, Timestamped, Window, WindowStore, WindowStoreOptions, WindowedIter,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const NAME: &str = "windows";
const RETENTION: i64 = 120_000;
const WINDOW_SIZE: i64 = 10_000;

fn cl() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: "app-windows-changelog".into(),
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
    WindowStoreOptions::new(RETENTION, WINDOW_SIZE)
}

fn backends(dir: &std::path::Path) -> TestResult<Vec<Arc<dyn Backend>>> {
    Ok(vec![
        Arc::new(MemoryBackend::new()),
        Arc::new(SledBackend::open(dir, 1 << 20)?),
    ])
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

/// Key, window start, window end, value, timestamp.
type Row = (Vec<u8>, i64, i64, Vec<u8>, i64);

fn rows(it: WindowedIter<'_>) -> Result<Vec<Row>, Error> {
    it.map(|r| {
        r.map(|(w, v)| {
            (
                w.key.to_vec(),
                w.window.start,
                w.window.end,
                v.value.to_vec(),
                v.timestamp,
            )
        })
    })
    .collect()
}

fn starts(it: freshet_state_store::WindowValueIter<'_>) -> Result<Vec<i64>, Error> {
    it.map(|r| r.map(|(t, _)| t)).collect()
}

#[test]
fn a_window_view_shows_only_what_was_committed_and_applied() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let mut log = MemChangelog::new();
        let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
        store.restore(&mut log)?;
        let view = ReadOnlyWindowView::open(backend.clone(), NAME, options())?;
        assert_eq!(view.name(), NAME);
        assert_eq!(view.observed_stream_time()?, -1);
        assert_eq!(view.applied_offset()?, None);

        store.put(b"a", v("1", 1), 0)?;
        assert_eq!(view.fetch_one(b"a", 0)?, None, "{backend:?}: uncommitted");
        log.begin();
        store.send_changelog(&mut log)?;
        assert_eq!(view.fetch_one(b"a", 0)?, None, "{backend:?}: sent");
        log.commit();
        store.committed();
        assert_eq!(view.fetch_one(b"a", 0)?, None, "{backend:?}: not applied");
        store.apply()?;
        assert_eq!(view.fetch_one(b"a", 0)?, v("1", 1), "{backend:?}: applied");
        assert_eq!(view.applied_offset()?, Some(0));
        assert_eq!(view.observed_stream_time()?, 0);

        // An aborted put is never seen, nor an uncommitted delete or stream time.
        store.put(b"b", v("2", 2), 70_000)?;
        log.begin();
        store.send_changelog(&mut log)?;
        log.abort();
        store.abort();
        store.put(b"a", None, 0)?;
        store.put(b"c", v("3", 3), 500_000)?;
        assert_eq!(
            rows(view.all()?)?,
            vec![(b"a".to_vec(), 0, WINDOW_SIZE, b"1".to_vec(), 1)]
        );
        assert_eq!(starts(view.fetch(b"b", 0, i64::MAX)?)?, Vec::<i64>::new());
        assert_eq!(view.observed_stream_time()?, 0, "{backend:?}");
        // The store's own view agrees.
        assert_eq!(rows(store.read_only_view().all()?)?, rows(view.all()?)?);
    }
    Ok(())
}

#[test]
fn window_view_fetches_return_what_the_store_returns_in_its_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let mut log = MemChangelog::new();
        let options = options().with_segment_interval(30_000);
        let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options.clone())?;
        store.restore(&mut log)?;
        // Keys that share prefixes, windows over several segments, and one segment with more
        // entries than a view reads at once.
        let keys: [&[u8]; 6] = [b"", b"a", b"a\0", b"ab", b"abc", b"b"];
        for (i, k) in keys.iter().enumerate() {
            for t in (0..100_000).step_by(7_000) {
                store.put(k, v(&format!("{i}-{t}"), t), t)?;
            }
        }
        for i in 0..5_000u32 {
            store.put(format!("k{i:05}").as_bytes(), v("x", 1), 95_000)?;
        }
        commit(&mut store, &mut log, true)?;
        let view = store.read_only_view();
        let compare = |got: WindowedIter<'_>, want: WindowedIter<'_>| -> TestResult {
            assert_eq!(rows(got)?, rows(want)?, "{backend:?}");
            Ok(())
        };
        compare(view.all()?, store.all()?)?;
        compare(view.backward_all()?, store.backward_all()?)?;
        compare(
            view.fetch_all(20_000, 70_000)?,
            store.fetch_all(20_000, 70_000)?,
        )?;
        compare(
            view.backward_fetch_all(20_000, 96_000)?,
            store.backward_fetch_all(20_000, 96_000)?,
        )?;
        for (kf, kt) in [
            (Some(&b"a"[..]), Some(&b"ab"[..])),
            (None, Some(&b"a\0"[..])),
            (Some(&b"ab"[..]), None),
            (Some(&b"b"[..]), Some(&b"a"[..])),
        ] {
            compare(
                view.fetch_range(kf, kt, 10_000, 80_000)?,
                store.fetch_range(kf, kt, 10_000, 80_000)?,
            )?;
            compare(
                view.backward_fetch_range(kf, kt, 0, i64::MAX)?,
                store.backward_fetch_range(kf, kt, 0, i64::MAX)?,
            )?;
        }
        for k in keys {
            assert_eq!(
                starts(view.fetch(k, 14_000, 63_000)?)?,
                starts(store.fetch(k, 14_000, 63_000)?)?
            );
            assert_eq!(
                starts(view.backward_fetch(k, 0, i64::MAX)?)?,
                starts(store.backward_fetch(k, 0, i64::MAX)?)?
            );
            assert_eq!(view.fetch_one(k, 21_000)?, store.fetch_one(k, 21_000)?);
        }
        assert_eq!(rows(view.all()?)?.len(), keys.len() * 15 + 5_000);
    }
    Ok(())
}

#[test]
fn a_window_view_hides_windows_expired_at_the_committed_stream_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let mut log = MemChangelog::new();
        // Segments of 60 s: at stream time 170 000 segment 0 still exists, but its windows
        // starting before 50 001 have expired.
        let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
        store.restore(&mut log)?;
        let view = store.read_only_view();
        for t in [0, 50_000, 55_000, 100_000] {
            store.put(b"a", v("x", t), t)?;
        }
        commit(&mut store, &mut log, true)?;
        assert_eq!(
            starts(view.fetch(b"a", 0, i64::MAX)?)?,
            vec![0, 50_000, 55_000, 100_000]
        );

        // A later window, not committed yet: the view keeps the committed stream time.
        store.put(b"b", v("y", 170_000), 170_000)?;
        assert_eq!(
            store.fetch_one(b"a", 0)?,
            None,
            "the store hides it already"
        );
        assert_eq!(view.fetch_one(b"a", 0)?, v("x", 0), "{backend:?}");
        commit(&mut store, &mut log, true)?;
        assert_eq!(store.segment_ids(), vec![0, 1, 2]);
        assert_eq!(view.observed_stream_time()?, 170_000);
        assert_eq!(
            starts(view.fetch(b"a", 0, i64::MAX)?)?,
            vec![55_000, 100_000],
            "{backend:?}"
        );
        assert_eq!(view.fetch_one(b"a", 50_000)?, None);
        assert_eq!(
            rows(view.fetch_range(Some(b"a"), Some(b"b"), 0, 60_000)?)?,
            vec![(b"a".to_vec(), 55_000, 65_000, b"x".to_vec(), 55_000)]
        );
        assert_eq!(rows(view.all()?)?, rows(store.all()?)?);
    }
    Ok(())
}

#[test]
fn committed_windows_not_yet_applied_appear_once_a_restart_restores_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    let view;
    {
        let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
        let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
        store.restore(&mut log)?;
        view = store.read_only_view();
        store.put(b"a", v("1", 1), 0)?;
        commit(&mut store, &mut log, true)?;
        store.put(b"a", v("2", 2), 0)?;
        store.put(b"b", v("3", 3), 60_000)?;
        // Committed, then a crash before the apply.
        commit(&mut store, &mut log, false)?;
        assert_eq!(view.fetch_one(b"a", 0)?, v("1", 1));
        assert_eq!(view.observed_stream_time()?, 0);
    }
    // The view outlives the store; a new store in the same database restores the tail.
    drop(view);
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let view = ReadOnlyWindowView::open(backend.clone(), NAME, options())?;
    assert_eq!(view.fetch_one(b"a", 0)?, v("1", 1));
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
    let stats = store.restore(&mut log)?;
    assert!(!stats.wiped);
    assert_eq!(view.fetch_one(b"a", 0)?, v("2", 2));
    assert_eq!(view.fetch_one(b"b", 60_000)?, v("3", 3));
    assert_eq!(view.observed_stream_time()?, 60_000);
    assert_eq!(view.applied_offset()?, Some(2));
    Ok(())
}

#[test]
fn a_window_view_follows_a_wiping_restore() -> TestResult {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut log = MemChangelog::new();
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
    store.restore(&mut log)?;
    let view = store.read_only_view();
    store.put(b"a", v("1", 1), 0)?;
    store.put(b"b", v("2", 2), 130_000)?;
    commit(&mut store, &mut log, true)?;
    assert_eq!(rows(view.all()?)?.len(), 1, "window 0 expired at 130 000");
    // A memory store always restores in full: the same state comes back.
    drop(store);
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options())?;
    assert!(store.restore(&mut log)?.wiped);
    assert_eq!(
        rows(view.all()?)?,
        vec![(b"b".to_vec(), 130_000, 140_000, b"2".to_vec(), 2)]
    );
    assert_eq!(view.observed_stream_time()?, 130_000);
    Ok(())
}

#[test]
fn a_session_view_shows_applied_sessions_in_the_store_order_and_hides_expired_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let mut log = MemChangelog::new();
        let options = SessionStoreOptions::new(100_000);
        let mut store = SegmentedSessionStore::open("sessions", backend.clone(), cl(), options)?;
        store.restore(&mut log)?;
        let view = store.read_only_view();
        let w = |start, end| Window { start, end };
        for (k, s, e) in [
            (&b"a"[..], 0, 10),
            (b"a", 20, 30),
            (b"ab", 5, 70_000),
            (b"b", 40, 50),
            (b"a", 65_000, 80_000),
        ] {
            store.put(k, w(s, e), v("x", e))?;
        }
        assert_eq!(view.fetch(b"a")?.count(), 0, "{backend:?}: not applied");
        commit(&mut store, &mut log, true)?;
        assert_eq!(rows(view.fetch(b"a")?)?, rows(store.fetch(b"a")?)?);
        assert_eq!(
            rows(view.find_sessions(b"a", 25, 70_000)?)?,
            rows(store.find_sessions(b"a", 25, 70_000)?)?
        );
        assert_eq!(
            rows(view.backward_find_sessions(b"a", 0, i64::MAX)?)?,
            rows(store.backward_find_sessions(b"a", 0, i64::MAX)?)?
        );
        for (kf, kt) in [
            (None, None),
            (Some(&b"a"[..]), Some(&b"ab"[..])),
            (Some(&b"b"[..]), None),
        ] {
            assert_eq!(
                rows(view.fetch_range(kf, kt)?)?,
                rows(store.fetch_range(kf, kt)?)?
            );
            assert_eq!(
                rows(view.backward_fetch_range(kf, kt)?)?,
                rows(store.backward_fetch_range(kf, kt)?)?
            );
            assert_eq!(
                rows(view.find_sessions_range(kf, kt, 30, 70_000)?)?,
                rows(store.find_sessions_range(kf, kt, 30, 70_000)?)?
            );
            assert_eq!(
                rows(view.backward_find_sessions_range(kf, kt, 30, 70_000)?)?,
                rows(store.backward_find_sessions_range(kf, kt, 30, 70_000)?)?
            );
        }
        assert_eq!(view.fetch_session(b"ab", 5, 70_000)?, v("x", 70_000));
        assert_eq!(view.fetch_session(b"ab", 5, 69_999)?, None);

        // A session ending at 150 000 expires every session ending at or before 50 000 —
        // once it is committed.
        store.put(b"c", w(150_000, 150_000), v("y", 150_000))?;
        assert_eq!(view.fetch(b"a")?.count(), 3, "{backend:?}");
        commit(&mut store, &mut log, true)?;
        assert_eq!(view.observed_stream_time()?, 150_000);
        assert_eq!(
            rows(view.fetch_range(None, None)?)?,
            rows(store.fetch_range(None, None)?)?
        );
        let ends: Vec<i64> = rows(view.fetch_range(None, None)?)?
            .into_iter()
            .map(|r| r.2)
            .collect();
        // Segment by segment, then by key bytes: "a" + its end sorts before "ab".
        assert_eq!(ends, vec![80_000, 70_000, 150_000], "{backend:?}");
        assert_eq!(view.fetch_session(b"a", 0, 10)?, None);
    }
    Ok(())
}

#[test]
fn a_view_of_a_store_never_written_reads_empty_and_creates_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let before = backend.tree_names()?;
        let windows = ReadOnlyWindowView::open(backend.clone(), "nope", options())?;
        let sessions =
            ReadOnlySessionView::open(backend.clone(), "nope", SessionStoreOptions::new(1_000))?;
        assert_eq!(rows(windows.all()?)?, Vec::<Row>::new());
        assert_eq!(windows.fetch_one(b"a", 0)?, None);
        assert_eq!(windows.observed_stream_time()?, -1);
        assert_eq!(windows.applied_offset()?, None);
        assert_eq!(rows(sessions.fetch_range(None, None)?)?, Vec::<Row>::new());
        assert_eq!(sessions.fetch_session(b"a", 0, 0)?, None);
        assert_eq!(
            backend.tree_names()?,
            before,
            "{backend:?}: a view never writes"
        );
    }
    Ok(())
}

#[test]
fn a_view_refuses_options_no_store_accepts() {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let bad = options().with_segment_interval(0);
    let err = ReadOnlyWindowView::open(backend.clone(), NAME, bad).err();
    assert!(
        matches!(&err, Some(Error::InvalidArgument { store, .. }) if store == NAME),
        "{err:?}"
    );
    let err =
        ReadOnlyWindowView::open(backend.clone(), NAME, WindowStoreOptions::new(10, 20)).err();
    assert!(
        matches!(err, Some(Error::InvalidArgument { .. })),
        "{err:?}"
    );
    let err = ReadOnlySessionView::open(backend, "s", SessionStoreOptions::new(-1)).err();
    assert!(
        matches!(err, Some(Error::InvalidArgument { .. })),
        "{err:?}"
    );
}

#[test]
fn window_and_session_views_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<ReadOnlyWindowView>();
    shared::<ReadOnlySessionView>();
}

// ---------------------------------------------------------------------------------------
// The view against a model of what the store has applied.

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        jitter: i64,
        value: u8,
    },
    Delete {
        key: usize,
        jitter: i64,
    },
    Commit,
    /// Committed to the changelog, never applied (a crash between commit and apply).
    CommitNoApply,
    Abort,
    Restart,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let key = 0..KEYS.len();
    let jitter = (-130i64..10).prop_map(|x| x * 1_000);
    let op = prop_oneof![
        10 => (key.clone(), jitter.clone(), any::<u8>())
            .prop_map(|(key, jitter, value)| Op::Put { key, jitter, value }),
        2 => (key, jitter).prop_map(|(key, jitter)| Op::Delete { key, jitter }),
        3 => Just(Op::Commit),
        1 => Just(Op::CommitNoApply),
        1 => Just(Op::Abort),
        1 => Just(Op::Restart),
    ];
    prop::collection::vec(op, 1..60)
}

const KEYS: &[&[u8]] = &[b"", b"a", b"a\0", b"ab", b"b"];
const STEP: i64 = 4_000;

/// A value and its timestamp.
type Value = (Vec<u8>, i64);
/// Windows as the store holds them: `(key, start)` → value.
type Windows = BTreeMap<(Vec<u8>, i64), Value>;

/// What the store has: uncommitted, committed, applied — each with its stream time.
#[derive(Debug, Default)]
struct Model {
    pending: Vec<(Vec<u8>, i64, Option<Value>)>,
    observed: i64,
    committed: Windows,
    observed_committed: i64,
    applied: Windows,
    observed_applied: i64,
}

impl Model {
    fn put(&mut self, key: &[u8], start: i64, value: Option<Value>) {
        self.observed = self.observed.max(start);
        if start > self.observed - RETENTION {
            self.pending.push((key.to_vec(), start, value));
        }
    }

    fn commit(&mut self, apply: bool) {
        for (k, t, v) in self.pending.drain(..) {
            match v {
                Some(v) => self.committed.insert((k, t), v),
                None => self.committed.remove(&(k, t)),
            };
        }
        self.observed_committed = self.observed;
        if apply {
            self.apply();
        }
    }

    fn apply(&mut self) {
        self.applied = self.committed.clone();
        self.observed_applied = self.observed_committed;
    }

    fn rollback(&mut self) {
        self.pending.clear();
        self.observed = self.observed_committed;
    }

    /// What a view shows: applied windows live at the applied stream time, in the store's
    /// order (segment, then binary key).
    fn view(&self, interval: i64, backward: bool) -> Vec<Row> {
        let min_live = (self.observed_applied - RETENTION + 1).max(0);
        let mut rows: Vec<((i64, Vec<u8>), Row)> = self
            .applied
            .iter()
            .filter(|((_, t), _)| *t >= min_live)
            .map(|((k, t), (val, ts))| {
                let mut binary = k.clone();
                binary.extend_from_slice(&t.to_be_bytes());
                binary.extend_from_slice(&0u32.to_be_bytes());
                (
                    (t.div_euclid(interval), binary),
                    (k.clone(), *t, t + WINDOW_SIZE, val.clone(), *ts),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
        if backward {
            rows.reverse();
        }
        rows
    }
}

fn run(sled: bool, ops: &[Op]) -> TestResult {
    let dir = tempfile::tempdir()?;
    let memory: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let open = || -> TestResult<Arc<dyn Backend>> {
        Ok(if sled {
            Arc::new(SledBackend::open(dir.path(), 1 << 20)?)
        } else {
            memory.clone()
        })
    };
    let options = options().with_segment_interval(30_000);
    let mut log = MemChangelog::new();
    let mut backend = open()?;
    let mut store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options.clone())?;
    store.restore(&mut log)?;
    let mut view = store.read_only_view();
    let mut model = Model {
        observed: -1,
        observed_committed: -1,
        observed_applied: -1,
        ..Model::default()
    };
    let time = |i: usize, d: i64| (i as i64 * STEP + d).max(0);
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Put { key, jitter, value } => {
                let t = time(i, *jitter);
                store.put(KEYS[*key], v(&value.to_string(), i as i64), t)?;
                model.put(
                    KEYS[*key],
                    t,
                    Some((value.to_string().into_bytes(), i as i64)),
                );
            }
            Op::Delete { key, jitter } => {
                let t = time(i, *jitter);
                store.put(KEYS[*key], None, t)?;
                model.put(KEYS[*key], t, None);
            }
            Op::Commit | Op::CommitNoApply => {
                let apply = matches!(op, Op::Commit);
                commit(&mut store, &mut log, apply)?;
                model.commit(apply);
            }
            Op::Abort => {
                log.begin();
                store.send_changelog(&mut log)?;
                log.abort();
                store.abort();
                model.rollback();
            }
            Op::Restart => {
                drop(store);
                drop(view);
                drop(backend);
                backend = open()?;
                // A view opened before the restore follows it.
                view = ReadOnlyWindowView::open(backend.clone(), NAME, options.clone())?;
                store = SegmentedWindowStore::open(NAME, backend.clone(), cl(), options.clone())?;
                store.restore(&mut log)?;
                model.rollback();
                model.apply();
            }
        }
        let ctx = format!("op {i}: {op:?}");
        assert_eq!(
            view.observed_stream_time()?,
            model.observed_applied,
            "{ctx}"
        );
        assert_eq!(
            rows(view.all()?)?,
            model.view(options.segment_interval_ms, false),
            "{ctx}"
        );
        assert_eq!(
            rows(view.backward_all()?)?,
            model.view(options.segment_interval_ms, true),
            "{ctx}"
        );
        let want: Vec<Row> = model
            .view(options.segment_interval_ms, false)
            .into_iter()
            .filter(|r| r.0 == b"a" && r.1 >= 20_000 && r.1 <= 90_000)
            .collect();
        let got: Vec<(i64, Vec<u8>)> = view
            .fetch(b"a", 20_000, 90_000)?
            .map(|r| r.map(|(t, v)| (t, v.value.to_vec())))
            .collect::<Result<_, _>>()?;
        let want: Vec<(i64, Vec<u8>)> = want.into_iter().map(|r| (r.1, r.3)).collect();
        assert_eq!(got, want, "{ctx}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_window_view_on_memory_shows_exactly_the_applied_model(ops in ops()) {
        run(false, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn a_window_view_on_sled_shows_exactly_the_applied_model(ops in ops()) {
        run(true, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
