//! The session store against a model (a `BTreeMap` with Kafka's retention and iteration
//! order), on memory and on sled, through commits, aborts and restarts; plus Kafka's
//! `findSessions` semantics spelled out.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    Backend, ChangelogPartition, Error, MemoryBackend, MsgPack, SegmentedSessionStore,
    SessionStore, SessionStoreOptions, SledBackend, StateStore, Timestamped, TypedSessionStore,
    Utf8, Window, WindowedIter,
};
use proptest::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NAME: &str = "sessions";
const RETENTION: i64 = 120_000;
/// Stream time advances by about this much per operation.
const STEP: i64 = 4_000;

fn cl() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: "app-sessions-changelog".into(),
        partition: 0,
    })
}

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn w(start: i64, end: i64) -> Window {
    Window { start, end }
}

/// Where the store lives: memory (kept across a restart: restore wipes and replays), or a
/// sled directory reopened from its path.
enum Backing {
    Memory(Arc<MemoryBackend>),
    Sled(tempfile::TempDir),
}

impl Backing {
    fn new(sled: bool) -> Result<Backing, Box<dyn std::error::Error>> {
        Ok(if sled {
            Backing::Sled(tempfile::tempdir()?)
        } else {
            Backing::Memory(Arc::new(MemoryBackend::new()))
        })
    }

    /// A handle on the backend; for sled, the previous store must be dropped first.
    fn open(&self) -> Result<Arc<dyn Backend>, Box<dyn std::error::Error>> {
        Ok(match self {
            Backing::Memory(b) => b.clone(),
            Backing::Sled(dir) => Arc::new(SledBackend::open(dir.path(), 1 << 20)?),
        })
    }
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

fn abort(store: &mut dyn StateStore, log: &mut MemChangelog) -> TestResult {
    log.begin();
    store.send_changelog(log)?;
    log.abort();
    store.abort();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The model.

/// `(key, end, start)`: the order of the stored key.
type Entry = (Vec<u8>, i64, i64);
type Val = (Vec<u8>, i64);
/// One result row: key, start, end, value, timestamp.
type Row = (Vec<u8>, i64, i64, Vec<u8>, i64);

#[derive(Debug)]
struct Model {
    interval: i64,
    committed: BTreeMap<Entry, Val>,
    pending: BTreeMap<Entry, Option<Val>>,
    observed: i64,
    observed_committed: i64,
}

impl Model {
    fn new(interval: i64) -> Model {
        Model {
            interval,
            committed: BTreeMap::new(),
            pending: BTreeMap::new(),
            observed: -1,
            observed_committed: -1,
        }
    }

    fn min_live(&self) -> i64 {
        (self.observed - RETENTION + 1).max(0)
    }

    fn put(&mut self, key: &[u8], start: i64, end: i64, value: Option<Val>) {
        self.observed = self.observed.max(end);
        if end < self.min_live() {
            return;
        }
        self.pending.insert((key.to_vec(), end, start), value);
    }

    fn current(&self) -> BTreeMap<Entry, Val> {
        let mut all = self.committed.clone();
        for (k, v) in &self.pending {
            match v {
                Some(v) => {
                    all.insert(k.clone(), v.clone());
                }
                None => {
                    all.remove(k);
                }
            }
        }
        all
    }

    fn commit(&mut self) {
        self.committed = self.current();
        self.pending.clear();
        self.observed_committed = self.observed;
    }

    fn rollback(&mut self) {
        self.pending.clear();
        self.observed = self.observed_committed;
    }

    /// Live sessions passing `keep`, in Kafka's segmented order: segment of the end, then
    /// stored key bytes `[key][end][start]`.
    fn rows(&self, rev: bool, keep: impl Fn(&[u8], i64, i64) -> bool) -> Vec<Row> {
        let min_live = self.min_live();
        let mut rows: Vec<((i64, Vec<u8>), Row)> = self
            .current()
            .into_iter()
            .filter(|((k, end, start), _)| *end >= min_live && keep(k, *start, *end))
            .map(|((k, end, start), (val, ts))| {
                let mut stored = k.clone();
                stored.extend_from_slice(&end.to_be_bytes());
                stored.extend_from_slice(&start.to_be_bytes());
                (
                    (end.div_euclid(self.interval), stored),
                    (k, start, end, val, ts),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
        if rev {
            rows.reverse();
        }
        rows
    }

    fn find(
        &self,
        kf: Option<&[u8]>,
        kt: Option<&[u8]>,
        earliest_end: i64,
        latest_start: i64,
        rev: bool,
    ) -> Vec<Row> {
        self.rows(rev, |k, start, end| {
            kf.is_none_or(|f| k >= f)
                && kt.is_none_or(|z| k <= z)
                && end >= earliest_end
                && start <= latest_start
        })
    }
}

// ---------------------------------------------------------------------------------------
// Operations.

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        jitter: i64,
        len: i64,
        value: u8,
    },
    Remove {
        pick: usize,
    },
    FetchSession {
        pick: usize,
    },
    Find {
        key: usize,
        earliest_end: i64,
        span: i64,
        backward: bool,
    },
    FindRange {
        kf: Option<usize>,
        kt: Option<usize>,
        earliest_end: i64,
        span: i64,
        backward: bool,
    },
    FindEnding {
        earliest_end: i64,
        span: i64,
    },
    Fetch {
        key: usize,
        backward: bool,
    },
    FetchRange {
        kf: Option<usize>,
        kt: Option<usize>,
        backward: bool,
    },
    Commit,
    /// Committed to the changelog, never applied (a crash between commit and apply).
    CommitNoApply,
    Abort,
    Restart,
}

fn secs(lo: i64, hi: i64) -> impl Strategy<Value = i64> {
    (lo..hi).prop_map(|x| x * 1_000)
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let key = 0..KEYS.len();
    let op = prop_oneof![
        10 => (key.clone(), secs(-130, 20), secs(0, 30), any::<u8>())
            .prop_map(|(key, jitter, len, value)| Op::Put { key, jitter, len, value }),
        3 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
        2 => any::<usize>().prop_map(|pick| Op::FetchSession { pick }),
        2 => (key.clone(), secs(-200, 20), secs(-100, 200), any::<bool>())
            .prop_map(|(key, earliest_end, span, backward)| Op::Find { key, earliest_end, span, backward }),
        2 => (prop::option::of(key.clone()), prop::option::of(key.clone()), secs(-200, 20), secs(-100, 200), any::<bool>())
            .prop_map(|(kf, kt, earliest_end, span, backward)| Op::FindRange { kf, kt, earliest_end, span, backward }),
        1 => (secs(-200, 20), secs(-10, 200))
            .prop_map(|(earliest_end, span)| Op::FindEnding { earliest_end, span }),
        1 => (key.clone(), any::<bool>()).prop_map(|(key, backward)| Op::Fetch { key, backward }),
        1 => (prop::option::of(key.clone()), prop::option::of(key), any::<bool>())
            .prop_map(|(kf, kt, backward)| Op::FetchRange { kf, kt, backward }),
        3 => Just(Op::Commit),
        1 => Just(Op::CommitNoApply),
        1 => Just(Op::Abort),
        1 => Just(Op::Restart),
    ];
    prop::collection::vec(op, 1..80)
}

/// Keys that share prefixes, including with the time bytes of a shorter key.
const KEYS: &[&[u8]] = &[b"", b"a", b"a\0", b"ab", b"abc", b"b", b"a\0\0\0\0\0\0\0\0"];

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

fn pick(model: &Model, pick: usize) -> Entry {
    let current: Vec<Entry> = model.current().into_keys().collect();
    current
        .get(pick % current.len().max(1))
        .cloned()
        .unwrap_or_else(|| (KEYS[pick % KEYS.len()].to_vec(), 0, 0))
}

fn run(sled: bool, ops: &[Op]) -> TestResult {
    let options = SessionStoreOptions::new(RETENTION);
    let backing = Backing::new(sled)?;
    let mut log = MemChangelog::new();
    let mut store = SegmentedSessionStore::open(NAME, backing.open()?, cl(), options.clone())?;
    store.restore(&mut log)?;
    let mut model = Model::new(options.segment_interval_ms);
    let time = |i: usize, d: i64| (i as i64 * STEP + d).max(0);
    for (i, op) in ops.iter().enumerate() {
        let ctx = || format!("op {i}: {op:?}");
        match op {
            Op::Put {
                key,
                jitter,
                len,
                value,
            } => {
                let end = time(i, *jitter);
                let start = (end - len).max(0);
                let val = (vec![*value], i as i64);
                let k = KEYS[*key];
                store.put(k, w(start, end), v_bytes(&val))?;
                model.put(k, start, end, Some(val));
            }
            Op::Remove { pick: p } => {
                let (k, end, start) = pick(&model, *p);
                store.remove(&k, w(start, end))?;
                model.put(&k, start, end, None);
            }
            Op::FetchSession { pick: p } => {
                let (k, end, start) = pick(&model, *p);
                let got = store
                    .fetch_session(&k, start, end)?
                    .map(|v| (v.value.to_vec(), v.timestamp));
                let want = model
                    .rows(false, |key, s, e| key == k && s == start && e == end)
                    .into_iter()
                    .next()
                    .map(|r| (r.3, r.4));
                assert_eq!(got, want, "{}", ctx());
            }
            Op::Find {
                key,
                earliest_end,
                span,
                backward,
            } => {
                let ee = time(i, *earliest_end);
                let ls = ee + span;
                let k = KEYS[*key];
                let it = if *backward {
                    store.backward_find_sessions(k, ee, ls)?
                } else {
                    store.find_sessions(k, ee, ls)?
                };
                let want = model.rows(*backward, |key, s, e| key == k && e >= ee && s <= ls);
                assert_eq!(rows(it)?, want, "{}", ctx());
            }
            Op::FindRange {
                kf,
                kt,
                earliest_end,
                span,
                backward,
            } => {
                let ee = time(i, *earliest_end);
                let ls = ee + span;
                let (kf, kt) = (kf.map(|k| KEYS[k]), kt.map(|k| KEYS[k]));
                let it = if *backward {
                    store.backward_find_sessions_range(kf, kt, ee, ls)?
                } else {
                    store.find_sessions_range(kf, kt, ee, ls)?
                };
                assert_eq!(
                    rows(it)?,
                    model.find(kf, kt, ee, ls, *backward),
                    "{}",
                    ctx()
                );
            }
            Op::FindEnding { earliest_end, span } => {
                let ee = time(i, *earliest_end);
                let le = ee + span;
                let want = model.rows(false, |_, _, e| e >= ee && e <= le);
                assert_eq!(
                    rows(store.find_sessions_ending(ee, le)?)?,
                    want,
                    "{}",
                    ctx()
                );
            }
            Op::Fetch { key, backward } => {
                let k = KEYS[*key];
                let it = if *backward {
                    store.backward_fetch(k)?
                } else {
                    store.fetch(k)?
                };
                assert_eq!(
                    rows(it)?,
                    model
                        .find(Some(k), Some(k), 0, i64::MAX, *backward)
                        .into_iter()
                        .filter(|r| r.0 == k)
                        .collect::<Vec<_>>(),
                    "{}",
                    ctx()
                );
            }
            Op::FetchRange { kf, kt, backward } => {
                let (kf, kt) = (kf.map(|k| KEYS[k]), kt.map(|k| KEYS[k]));
                let it = if *backward {
                    store.backward_fetch_range(kf, kt)?
                } else {
                    store.fetch_range(kf, kt)?
                };
                assert_eq!(
                    rows(it)?,
                    model.find(kf, kt, 0, i64::MAX, *backward),
                    "{}",
                    ctx()
                );
            }
            Op::Commit | Op::CommitNoApply => {
                commit(&mut store, &mut log, matches!(op, Op::Commit))?;
                model.commit();
            }
            Op::Abort => {
                abort(&mut store, &mut log)?;
                model.rollback();
            }
            Op::Restart => {
                drop(store);
                store = SegmentedSessionStore::open(NAME, backing.open()?, cl(), options.clone())?;
                store.restore(&mut log)?;
                model.rollback();
            }
        }
        assert_eq!(store.observed_stream_time(), model.observed, "{}", ctx());
        if matches!(op, Op::Commit | Op::Restart) {
            // Expired segments are gone, whole, once applied (or restored).
            let min_live_segment =
                (model.observed_committed - RETENTION).div_euclid(model.interval);
            let ids = store.segment_ids();
            assert!(
                ids.iter().all(|id| *id >= min_live_segment),
                "{}: {ids:?}",
                ctx()
            );
        }
        if matches!(op, Op::Commit | Op::CommitNoApply | Op::Abort | Op::Restart) {
            assert_eq!(
                rows(store.fetch_range(None, None)?)?,
                model.find(None, None, 0, i64::MAX, false),
                "{}",
                ctx()
            );
        }
    }
    Ok(())
}

fn v_bytes(val: &Val) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(&val.0),
        timestamp: val.1,
    })
}

fn check(sled: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    run(sled, ops).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn session_store_on_memory_matches_the_model(ops in ops()) {
        check(false, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn session_store_on_sled_matches_the_model(ops in ops()) {
        check(true, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// Kafka's semantics, spelled out.

fn memory_store() -> Result<SegmentedSessionStore, Error> {
    SegmentedSessionStore::open(
        NAME,
        Arc::new(MemoryBackend::new()),
        None,
        SessionStoreOptions::new(RETENTION),
    )
}

fn windows(it: WindowedIter<'_>) -> Result<Vec<(Bytes, Window)>, Error> {
    it.map(|r| r.map(|(w, _)| (w.key, w.window))).collect()
}

#[test]
fn find_sessions_returns_the_sessions_a_record_would_merge_with_by_end_then_start() -> TestResult {
    let mut store = memory_store()?;
    store.put(b"k", w(0, 10), v("a", 10))?;
    store.put(b"k", w(20, 30), v("b", 30))?;
    store.put(b"k", w(5, 30), v("c", 30))?;
    store.put(b"k", w(40, 50), v("d", 50))?;
    // A record at 25 with a gap of 10 merges with sessions ending >= 15, starting <= 35.
    let found = windows(store.find_sessions(b"k", 15, 35)?)?;
    let k = Bytes::from("k");
    assert_eq!(found, vec![(k.clone(), w(5, 30)), (k.clone(), w(20, 30))]);
    let back = windows(store.backward_find_sessions(b"k", 15, 35)?)?;
    assert_eq!(back, vec![(k.clone(), w(20, 30)), (k.clone(), w(5, 30))]);
    assert_eq!(store.fetch(b"k")?.count(), 4);
    store.remove(b"k", w(5, 30))?;
    assert_eq!(store.fetch_session(b"k", 5, 30)?, None);
    assert_eq!(
        store.fetch_session(b"k", 20, 30)?.map(|v| v.value),
        Some(Bytes::from("b"))
    );
    Ok(())
}

#[test]
fn sessions_of_a_key_that_merely_shares_a_prefix_never_leak() -> TestResult {
    let mut store = memory_store()?;
    let tricky = [b"a".as_slice(), &7i64.to_be_bytes()].concat();
    store.put(b"a", w(0, 7), v("a", 7))?;
    store.put(b"ab", w(0, 7), v("ab", 7))?;
    store.put(&tricky, w(0, 7), v("tricky", 7))?;
    let found = windows(store.fetch(b"a")?)?;
    assert_eq!(found, vec![(Bytes::from("a"), w(0, 7))]);
    let ranged = windows(store.fetch_range(Some(b"a"), Some(b"a"))?)?;
    assert_eq!(ranged, vec![(Bytes::from("a"), w(0, 7))]);
    Ok(())
}

#[test]
fn range_find_goes_segment_by_segment_then_by_key() -> TestResult {
    let mut store = memory_store()?;
    // Retention 120 s: segments of 60 s, by session end.
    for (k, end) in [("b", 70_000), ("a", 70_000), ("b", 10_000), ("a", 10_000)] {
        store.put(k.as_bytes(), w(end - 5_000, end), v(k, end))?;
    }
    let got: Vec<(Bytes, i64)> = windows(store.fetch_range(None, None)?)?
        .into_iter()
        .map(|(k, w)| (k, w.end))
        .collect();
    let (a, b) = (Bytes::from("a"), Bytes::from("b"));
    assert_eq!(
        got,
        vec![
            (a.clone(), 10_000),
            (b.clone(), 10_000),
            (a, 70_000),
            (b, 70_000)
        ]
    );
    Ok(())
}

#[test]
fn committed_sessions_survive_a_restart_on_sled() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    let options = SessionStoreOptions::new(RETENTION);
    {
        let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
        let mut store = SegmentedSessionStore::open(NAME, backend, cl(), options.clone())?;
        store.restore(&mut log)?;
        store.put(b"k", w(0, 10), v("applied", 10))?;
        commit(&mut store, &mut log, true)?;
        store.put(b"k", w(20, 30), v("committed", 30))?;
        commit(&mut store, &mut log, false)?;
        store.put(b"k", w(40, 50), v("lost", 50))?;
    }
    let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut store = SegmentedSessionStore::open(NAME, backend, cl(), options)?;
    let stats = store.restore(&mut log)?;
    assert!(!stats.wiped);
    let found: Vec<Bytes> = store
        .fetch(b"k")?
        .map(|r| r.map(|(_, v)| v.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        found,
        vec![Bytes::from("applied"), Bytes::from("committed")]
    );
    assert_eq!(store.observed_stream_time(), 30);
    Ok(())
}

#[test]
fn typed_session_store_decodes_keys_sessions_and_aggregates() -> TestResult {
    let mut store =
        TypedSessionStore::new(memory_store()?, Utf8, MsgPack::<Vec<String>>::default());
    let ann = "ann".to_string();
    store.put(&ann, w(0, 10), Some(&vec!["x".to_string()]), 10)?;
    store.put(
        &ann,
        w(100, 120),
        Some(&vec!["y".to_string(), "z".to_string()]),
        120,
    )?;
    let found: Vec<(String, Window, Vec<String>)> = store
        .find_sessions::<String, Vec<String>>(&ann, 5, 200)?
        .map(|r| r.map(|(k, v)| (k.key, k.window, v.value)))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        found,
        vec![
            (ann.clone(), w(0, 10), vec!["x".to_string()]),
            (
                ann.clone(),
                w(100, 120),
                vec!["y".to_string(), "z".to_string()]
            ),
        ]
    );
    store.remove(&ann, w(0, 10))?;
    assert_eq!(store.fetch::<String, Vec<String>>(&ann)?.count(), 1);
    let closed: Vec<Window> = store
        .find_sessions_ending::<String, Vec<String>>(0, 120)?
        .map(|r| r.map(|(k, _)| k.window))
        .collect::<Result<_, _>>()?;
    assert_eq!(closed, vec![w(100, 120)]);
    assert_eq!(
        store
            .fetch_session::<String, Vec<String>>(&ann, 100, 120)?
            .map(|v| v.timestamp),
        Some(120)
    );
    Ok(())
}

#[test]
fn invalid_sessions_are_rejected() -> TestResult {
    let mut store = memory_store()?;
    assert!(matches!(
        store.put(b"k", w(10, 5), v("x", 0)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.put(b"k", w(-1, 5), v("x", 0)),
        Err(Error::InvalidArgument { .. })
    ));
    store.put(b"k", w(0, 5), v("x", 5))?;
    assert_eq!(store.fetch_range(Some(b"z"), Some(b"a"))?.count(), 0);
    Ok(())
}
