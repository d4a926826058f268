//! The window store against a model (a `BTreeMap` with Kafka's retention and iteration
//! order), on memory and on sled, through commits, aborts and restarts; plus the orders and
//! edge cases Kafka's window stores are known for.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    Backend, BigEndian, ChangelogPartition, Error, MemoryBackend, SegmentedWindowStore,
    SledBackend, StateStore, Timestamped, TypedWindowStore, Utf8, Window, WindowStore,
    WindowStoreOptions,
};
use proptest::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NAME: &str = "windows";
const RETENTION: i64 = 120_000;
const WINDOW_SIZE: i64 = 10_000;
/// Stream time advances by about this much per operation.
const STEP: i64 = 4_000;

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

/// Where the store lives: memory (kept across a restart, as a process keeps nothing but the
/// changelog: restore wipes and replays), or a sled directory reopened from its path.
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

type Entry = (Vec<u8>, i64, u32);
type Val = (Vec<u8>, i64);

/// Kafka's window store semantics over a `BTreeMap` keyed `(key, start, seq)`.
#[derive(Debug)]
struct Model {
    dups: bool,
    interval: i64,
    committed: BTreeMap<Entry, Val>,
    pending: BTreeMap<Entry, Option<Val>>,
    observed: i64,
    observed_committed: i64,
    seq: u32,
}

/// One result row: key, window start, window end, value, timestamp.
type Row = (Vec<u8>, i64, i64, Vec<u8>, i64);

impl Model {
    fn new(dups: bool, interval: i64) -> Model {
        Model {
            dups,
            interval,
            committed: BTreeMap::new(),
            pending: BTreeMap::new(),
            observed: -1,
            observed_committed: -1,
            seq: 0,
        }
    }

    fn min_live(&self) -> i64 {
        (self.observed - RETENTION + 1).max(0)
    }

    fn put(&mut self, key: &[u8], value: Option<Val>, start: i64) {
        if value.is_none() && self.dups {
            return;
        }
        self.observed = self.observed.max(start);
        if start < self.min_live() {
            return;
        }
        let seq = if self.dups {
            self.seq += 1;
            self.seq
        } else {
            0
        };
        self.pending.insert((key.to_vec(), start, seq), value);
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

    /// Live rows of keys in bounds and starts in `[from, to]`, in Kafka's segmented order:
    /// segment, then stored key bytes `[key][start][seq]`.
    fn range(
        &self,
        kf: Option<&[u8]>,
        kt: Option<&[u8]>,
        from: i64,
        to: i64,
        rev: bool,
    ) -> Vec<Row> {
        let from = from.max(self.min_live());
        let mut rows: Vec<((i64, Vec<u8>), Row)> = self
            .current()
            .into_iter()
            .filter(|((k, t, _), _)| {
                kf.is_none_or(|f| k.as_slice() >= f)
                    && kt.is_none_or(|z| k.as_slice() <= z)
                    && *t >= from
                    && *t <= to
            })
            .map(|((k, t, seq), (val, ts))| {
                let mut stored = k.clone();
                stored.extend_from_slice(&t.to_be_bytes());
                stored.extend_from_slice(&seq.to_be_bytes());
                (
                    (t.div_euclid(self.interval), stored),
                    (k, t, t + WINDOW_SIZE, val, ts),
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
}

// ---------------------------------------------------------------------------------------
// Operations.

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        jitter: i64,
        value: u8,
    },
    Delete {
        pick: usize,
    },
    FetchOne {
        pick: usize,
    },
    Fetch {
        key: usize,
        from: i64,
        span: i64,
        backward: bool,
    },
    FetchRange {
        kf: Option<usize>,
        kt: Option<usize>,
        from: i64,
        span: i64,
        backward: bool,
    },
    FetchAll {
        from: i64,
        span: i64,
        backward: bool,
    },
    All {
        backward: bool,
    },
    Commit,
    /// Committed to the changelog, never applied (a crash between commit and apply).
    CommitNoApply,
    Abort,
    Restart,
}

fn ops(keys: usize) -> impl Strategy<Value = Vec<Op>> {
    let key = 0..keys;
    let op = prop_oneof![
        10 => (key.clone(), (-130i64..20).prop_map(|x| x * 1_000), any::<u8>())
            .prop_map(|(key, jitter, value)| Op::Put { key, jitter, value }),
        3 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
        2 => any::<usize>().prop_map(|pick| Op::FetchOne { pick }),
        2 => (key.clone(), (-200i64..20).prop_map(|x| x * 1_000), (-10i64..200).prop_map(|x| x * 1_000), any::<bool>())
            .prop_map(|(key, from, span, backward)| Op::Fetch { key, from, span, backward }),
        2 => (prop::option::of(key.clone()), prop::option::of(key), (-200i64..20).prop_map(|x| x * 1_000), (-10i64..200).prop_map(|x| x * 1_000), any::<bool>())
            .prop_map(|(kf, kt, from, span, backward)| Op::FetchRange { kf, kt, from, span, backward }),
        1 => ((-200i64..20).prop_map(|x| x * 1_000), (-10i64..200).prop_map(|x| x * 1_000), any::<bool>())
            .prop_map(|(from, span, backward)| Op::FetchAll { from, span, backward }),
        1 => any::<bool>().prop_map(|backward| Op::All { backward }),
        3 => Just(Op::Commit),
        1 => Just(Op::CommitNoApply),
        1 => Just(Op::Abort),
        1 => Just(Op::Restart),
    ];
    prop::collection::vec(op, 1..80)
}

/// Keys that share prefixes, including with the time bytes of a shorter key.
const KEYS: &[&[u8]] = &[b"", b"a", b"a\0", b"ab", b"abc", b"b", b"a\0\0\0\0\0\0\0\0"];
/// Keys of one length, for duplicates (their order among other keys then never depends on
/// the sequence number's value, only on put order).
const DUP_KEYS: &[&[u8]] = &[b"a", b"b", b"c"];

fn rows(it: freshet_state_store::WindowedIter<'_>) -> Result<Vec<Row>, Error> {
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

fn run(sled: bool, dups: bool, ops: &[Op]) -> TestResult {
    let keys = if dups { DUP_KEYS } else { KEYS };
    let options = WindowStoreOptions::new(RETENTION, WINDOW_SIZE).with_retain_duplicates(dups);
    let interval = options.segment_interval_ms;
    let backing = Backing::new(sled)?;
    let mut log = MemChangelog::new();
    let mut store = SegmentedWindowStore::open(NAME, backing.open()?, cl(), options.clone())?;
    store.restore(&mut log)?;
    let mut model = Model::new(dups, interval);
    let time = |i: usize, d: i64| (i as i64 * STEP + d).max(0);
    for (i, op) in ops.iter().enumerate() {
        let ctx = || format!("op {i}: {op:?}");
        match op {
            Op::Put { key, jitter, value } => {
                let t = time(i, *jitter);
                let val = (vec![*value], i as i64);
                store.put(keys[*key], v_bytes(&val), t)?;
                model.put(keys[*key], Some(val), t);
            }
            Op::Delete { pick } => {
                let current: Vec<Entry> = model.current().into_keys().collect();
                let (k, t) = match current.get(pick % current.len().max(1)) {
                    Some((k, t, _)) => (k.clone(), *t),
                    None => (keys[pick % keys.len()].to_vec(), 0),
                };
                store.put(&k, None, t)?;
                model.put(&k, None, t);
            }
            Op::FetchOne { pick } => {
                let current: Vec<Entry> = model.current().into_keys().collect();
                let (k, t) = match current.get(pick % current.len().max(1)) {
                    Some((k, t, _)) => (k.clone(), *t),
                    None => (keys[pick % keys.len()].to_vec(), 0),
                };
                let got = store
                    .fetch_one(&k, t)?
                    .map(|v| (v.value.to_vec(), v.timestamp));
                let want = model
                    .range(Some(&k), Some(&k), t, t, false)
                    .into_iter()
                    .find(|r| r.0 == k)
                    .map(|r| (r.3, r.4));
                assert_eq!(got, want, "{}", ctx());
            }
            Op::Fetch {
                key,
                from,
                span,
                backward,
            } => {
                let (from, to) = (time(i, *from), time(i, *from) + span);
                let k = keys[*key];
                let it = if *backward {
                    store.backward_fetch(k, from, to)?
                } else {
                    store.fetch(k, from, to)?
                };
                let got: Vec<(i64, Vec<u8>, i64)> = it
                    .map(|r| r.map(|(t, v)| (t, v.value.to_vec(), v.timestamp)))
                    .collect::<Result<_, _>>()?;
                let want: Vec<(i64, Vec<u8>, i64)> = model
                    .range(Some(k), Some(k), from, to, *backward)
                    .into_iter()
                    .filter(|r| r.0 == k)
                    .map(|r| (r.1, r.3, r.4))
                    .collect();
                assert_eq!(got, want, "{}", ctx());
            }
            Op::FetchRange {
                kf,
                kt,
                from,
                span,
                backward,
            } => {
                let (from, to) = (time(i, *from), time(i, *from) + span);
                let (kf, kt) = (kf.map(|k| keys[k]), kt.map(|k| keys[k]));
                let it = if *backward {
                    store.backward_fetch_range(kf, kt, from, to)?
                } else {
                    store.fetch_range(kf, kt, from, to)?
                };
                assert_eq!(
                    rows(it)?,
                    model.range(kf, kt, from, to, *backward),
                    "{}",
                    ctx()
                );
            }
            Op::FetchAll {
                from,
                span,
                backward,
            } => {
                let (from, to) = (time(i, *from), time(i, *from) + span);
                let it = if *backward {
                    store.backward_fetch_all(from, to)?
                } else {
                    store.fetch_all(from, to)?
                };
                assert_eq!(
                    rows(it)?,
                    model.range(None, None, from, to, *backward),
                    "{}",
                    ctx()
                );
            }
            Op::All { backward } => {
                let it = if *backward {
                    store.backward_all()?
                } else {
                    store.all()?
                };
                assert_eq!(
                    rows(it)?,
                    model.range(None, None, 0, i64::MAX, *backward),
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
                store = SegmentedWindowStore::open(NAME, backing.open()?, cl(), options.clone())?;
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
                rows(store.all()?)?,
                model.range(None, None, 0, i64::MAX, false),
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

fn check(sled: bool, dups: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    run(sled, dups, ops).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn window_store_on_memory_matches_the_model(ops in ops(KEYS.len())) {
        check(false, false, &ops)?;
    }

    #[test]
    fn window_store_with_duplicates_on_memory_matches_the_model(ops in ops(DUP_KEYS.len())) {
        check(false, true, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn window_store_on_sled_matches_the_model(ops in ops(KEYS.len())) {
        check(true, false, &ops)?;
    }

    #[test]
    fn window_store_with_duplicates_on_sled_matches_the_model(ops in ops(DUP_KEYS.len())) {
        check(true, true, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// Orders and edge cases, spelled out.

fn memory_store(options: WindowStoreOptions) -> Result<SegmentedWindowStore, Error> {
    SegmentedWindowStore::open(NAME, Arc::new(MemoryBackend::new()), None, options)
}

#[test]
fn fetch_never_returns_windows_of_a_key_that_merely_shares_a_prefix() -> TestResult {
    let mut store = memory_store(WindowStoreOptions::new(RETENTION, WINDOW_SIZE))?;
    // "a" followed by bytes that look like a window start: the classic prefix trap.
    let tricky = [b"a".as_slice(), &5_000i64.to_be_bytes()].concat();
    store.put(b"a", v("short", 1), 0)?;
    store.put(b"ab", v("longer", 2), 0)?;
    store.put(&tricky, v("tricky", 3), 0)?;
    let got: Vec<(i64, Bytes)> = store
        .fetch(b"a", 0, 100_000)?
        .map(|r| r.map(|(t, v)| (t, v.value)))
        .collect::<Result<_, _>>()?;
    assert_eq!(got, vec![(0, Bytes::from("short"))]);
    let ranged: Vec<Bytes> = store
        .fetch_range(Some(b"a"), Some(b"a"), 0, 100_000)?
        .map(|r| r.map(|(w, _)| w.key))
        .collect::<Result<_, _>>()?;
    assert_eq!(ranged, vec![Bytes::from("a")]);
    assert_eq!(
        store.fetch_one(b"a", 0)?.map(|v| v.value),
        Some(Bytes::from("short"))
    );
    Ok(())
}

#[test]
fn range_fetch_goes_segment_by_segment_then_by_key_then_time() -> TestResult {
    // Retention 120 s: segments of 60 s.
    let mut store = memory_store(WindowStoreOptions::new(RETENTION, WINDOW_SIZE))?;
    for (k, t) in [
        ("b", 60_000),
        ("a", 60_000),
        ("b", 0),
        ("a", 30_000),
        ("a", 0),
        ("b", 30_000),
    ] {
        store.put(k.as_bytes(), v(k, t), t)?;
    }
    let got: Vec<(String, i64)> = store
        .fetch_range(Some(b"a"), Some(b"b"), 0, 60_000)?
        .map(|r| r.map(|(w, _)| (String::from_utf8_lossy(&w.key).into_owned(), w.window.start)))
        .collect::<Result<_, _>>()?;
    let want: Vec<(String, i64)> = [
        ("a", 0),
        ("a", 30_000),
        ("b", 0),
        ("b", 30_000),
        ("a", 60_000),
        ("b", 60_000),
    ]
    .iter()
    .map(|(k, t)| (k.to_string(), *t))
    .collect();
    assert_eq!(
        got, want,
        "Kafka's segmented order: segment, then key, then time"
    );
    let mut back: Vec<(String, i64)> = store
        .backward_fetch_range(Some(b"a"), Some(b"b"), 0, 60_000)?
        .map(|r| r.map(|(w, _)| (String::from_utf8_lossy(&w.key).into_owned(), w.window.start)))
        .collect::<Result<_, _>>()?;
    back.reverse();
    assert_eq!(back, want, "backward is exactly the reverse");
    let all: Vec<Window> = store
        .all()?
        .map(|r| r.map(|(w, _)| w.window))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        all[0],
        Window {
            start: 0,
            end: WINDOW_SIZE
        }
    );
    Ok(())
}

#[test]
fn retained_duplicates_are_all_kept_in_put_order_and_deletes_are_ignored() -> TestResult {
    let options = WindowStoreOptions::new(RETENTION, WINDOW_SIZE).with_retain_duplicates(true);
    let mut store = memory_store(options)?;
    store.put(b"k", v("1", 1), 1_000)?;
    store.put(b"k", v("2", 2), 1_000)?;
    store.put(b"k", None, 1_000)?;
    store.put(b"k", v("3", 3), 1_000)?;
    let got: Vec<Bytes> = store
        .fetch(b"k", 0, 1_000)?
        .map(|r| r.map(|(_, v)| v.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        got,
        vec![Bytes::from("1"), Bytes::from("2"), Bytes::from("3")]
    );
    assert_eq!(
        store.fetch_one(b"k", 1_000)?.map(|v| v.value),
        Some(Bytes::from("1"))
    );
    Ok(())
}

#[test]
fn duplicates_put_after_a_restart_never_overwrite_earlier_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    let options = WindowStoreOptions::new(RETENTION, WINDOW_SIZE).with_retain_duplicates(true);
    {
        let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
        let mut store = SegmentedWindowStore::open(NAME, backend, cl(), options.clone())?;
        store.restore(&mut log)?;
        store.put(b"k", v("1", 1), 0)?;
        commit(&mut store, &mut log, true)?;
        store.put(b"k", v("2", 2), 0)?;
        commit(&mut store, &mut log, false)?;
    }
    let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut store = SegmentedWindowStore::open(NAME, backend, cl(), options)?;
    store.restore(&mut log)?;
    store.put(b"k", v("3", 3), 0)?;
    let got: Vec<Bytes> = store
        .fetch(b"k", 0, 0)?
        .map(|r| r.map(|(_, v)| v.value))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        got,
        vec![Bytes::from("1"), Bytes::from("2"), Bytes::from("3")]
    );
    Ok(())
}

#[test]
fn uncommitted_windows_are_gone_after_a_restart_and_committed_ones_are_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    let options = WindowStoreOptions::new(RETENTION, WINDOW_SIZE);
    {
        let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
        let mut store = SegmentedWindowStore::open(NAME, backend, cl(), options.clone())?;
        store.restore(&mut log)?;
        store.put(b"applied", v("1", 1), 0)?;
        commit(&mut store, &mut log, true)?;
        store.put(b"committed", v("2", 2), 60_000)?;
        commit(&mut store, &mut log, false)?;
        store.put(b"lost", v("3", 3), 70_000)?;
    }
    let backend = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut store = SegmentedWindowStore::open(NAME, backend, cl(), options)?;
    let stats = store.restore(&mut log)?;
    assert!(!stats.wiped);
    assert_eq!(
        stats.records_applied, 1,
        "only the committed tail is replayed"
    );
    let keys: Vec<Bytes> = store
        .all()?
        .map(|r| r.map(|(w, _)| w.key))
        .collect::<Result<_, _>>()?;
    assert_eq!(keys, vec![Bytes::from("applied"), Bytes::from("committed")]);
    assert_eq!(store.observed_stream_time(), 60_000);
    Ok(())
}

#[test]
fn typed_window_store_decodes_keys_windows_and_values() -> TestResult {
    let inner = memory_store(WindowStoreOptions::new(RETENTION, WINDOW_SIZE))?;
    let mut store = TypedWindowStore::new(inner, Utf8, BigEndian);
    let (ann, bob) = ("ann".to_string(), "bob".to_string());
    store.put(&ann, Some(&1u64), 5, 0)?;
    store.put(&ann, Some(&2u64), 15, 10_000)?;
    store.put(&bob, Some(&3u64), 25, 10_000)?;
    let fetched: Vec<(i64, u64)> = store
        .backward_fetch::<String, u64>(&ann, 0, 10_000)?
        .map(|r| r.map(|(t, v)| (t, v.value)))
        .collect::<Result<_, _>>()?;
    assert_eq!(fetched, vec![(10_000, 2), (0, 1)]);
    let ranged: Vec<(String, Window, u64, i64)> = store
        .fetch_range::<String, u64>(Some(&ann), Some(&bob), 10_000, 10_000)?
        .map(|r| r.map(|(w, v)| (w.key, w.window, v.value, v.timestamp)))
        .collect::<Result<_, _>>()?;
    let w = Window {
        start: 10_000,
        end: 20_000,
    };
    assert_eq!(ranged, vec![(ann.clone(), w, 2, 15), (bob, w, 3, 25)]);
    assert_eq!(
        store.fetch_one::<String, u64>(&ann, 0)?.map(|v| v.value),
        Some(1)
    );
    assert_eq!(store.fetch_all::<String, u64>(0, 0)?.count(), 1);
    Ok(())
}

#[test]
fn a_value_that_does_not_decode_is_an_error_naming_store_and_key() -> TestResult {
    let mut inner = memory_store(WindowStoreOptions::new(RETENTION, WINDOW_SIZE))?;
    inner.put(b"ann", v("not eight bytes", 1), 0)?;
    let store = TypedWindowStore::new(inner, Utf8, BigEndian);
    let err = store
        .fetch_one::<String, u64>(&"ann".to_string(), 0)
        .err()
        .ok_or("decoding should fail")?;
    let msg = err.to_string();
    assert!(msg.contains("windows") && msg.contains("'ann'"), "{msg}");
    Ok(())
}

#[test]
fn invalid_windows_and_options_are_rejected() -> TestResult {
    let mut store = memory_store(WindowStoreOptions::new(RETENTION, WINDOW_SIZE))?;
    assert!(matches!(
        store.put(b"k", v("x", 0), -1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        memory_store(WindowStoreOptions::new(1_000, 2_000)),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        memory_store(WindowStoreOptions::new(1_000, 100).with_segment_interval(0)),
        Err(Error::InvalidArgument { .. })
    ));
    // A reversed key range or time range is empty, not an error (as Kafka).
    store.put(b"k", v("x", 0), 0)?;
    assert_eq!(store.fetch_range(Some(b"z"), Some(b"a"), 0, 10)?.count(), 0);
    assert_eq!(store.fetch(b"k", 10, 0)?.count(), 0);
    Ok(())
}
