//! The record cache over session stores: merged-away sessions never go downstream, the
//! disabled cache forwards every put, and reads and forwards match the store without a
//! cache under random puts, removes, flushes, commits and budgets.

mod common;

use common::commit;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use freshet_state_store::{
    CachingSessionStore, MemoryBackend, SegmentedSessionStore, SessionStore, SessionStoreOptions,
    ThreadCache, Timestamped, Window, Windowed, WindowedIter,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

type Value = (Vec<u8>, i64);
/// A forwarded update: key, session, new value, old value.
type Fwd = (Vec<u8>, Window, Option<Value>, Option<Value>);
type Forwards = Arc<Mutex<Vec<Fwd>>>;

const RETENTION: i64 = 120_000;

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn plain(v: Option<&Timestamped>) -> Option<Value> {
    v.map(|v| (v.value.to_vec(), v.timestamp))
}

fn fwd(k: &str, w: Window, new: Option<(&str, i64)>, old: Option<(&str, i64)>) -> Fwd {
    let f = |x: Option<(&str, i64)>| x.map(|(s, t)| (s.as_bytes().to_vec(), t));
    (k.as_bytes().to_vec(), w, f(new), f(old))
}

fn listener(
    seen: &Forwards,
) -> impl FnMut(&Windowed<Bytes>, Option<&Timestamped>, Option<&Timestamped>) + Send + 'static {
    let sink = seen.clone();
    move |w: &Windowed<Bytes>, new: Option<&Timestamped>, old: Option<&Timestamped>| {
        if let Ok(mut s) = sink.lock() {
            s.push((w.key.to_vec(), w.window, plain(new), plain(old)));
        }
    }
}

fn take(seen: &Forwards) -> Vec<Fwd> {
    seen.lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default()
}

/// Key, session start, session end, value, timestamp.
type Row = (Vec<u8>, i64, i64, Vec<u8>, i64);

fn rows(it: WindowedIter<'_>) -> TestResult<Vec<Row>> {
    let mut out = Vec::new();
    for item in it {
        let (w, v) = item?;
        out.push((
            w.key.to_vec(),
            w.window.start,
            w.window.end,
            v.value.to_vec(),
            v.timestamp,
        ));
    }
    Ok(out)
}

fn session_store(name: &str) -> TestResult<SegmentedSessionStore> {
    Ok(SegmentedSessionStore::open(
        name,
        Arc::new(MemoryBackend::new()),
        None,
        SessionStoreOptions::new(RETENTION),
    )?)
}

#[test]
fn a_disabled_cache_forwards_every_session_put_at_once() -> TestResult {
    let mut store = CachingSessionStore::disabled(session_store("sessions")?);
    assert!(!store.is_caching());
    let seen = Forwards::default();
    store.set_flush_listener(listener(&seen), true);
    let session = Window { start: 0, end: 5 };
    store.put(b"a", session, v("1", 5))?;
    store.put(b"a", session, v("2", 5))?;
    store.remove(b"a", session)?;
    store.remove(b"never", session)?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", session, Some(("1", 5)), None),
            fwd("a", session, Some(("2", 5)), Some(("1", 5))),
            fwd("a", session, None, Some(("2", 5))),
        ]
    );
    Ok(())
}

#[test]
fn a_session_merged_away_before_a_flush_reaches_neither_store_nor_downstream() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let mut store = CachingSessionStore::new(session_store("sessions")?, &cache, "0_0")?;
    let seen = Forwards::default();
    store.set_flush_listener(listener(&seen), true);
    let w = |start, end| Window { start, end };
    store.put(b"a", w(0, 0), v("1", 0))?;
    store.flush()?;
    // A record at 10 merges [0, 0] into [0, 10]; one at 12 grows it to [0, 12].
    for (end, n) in [(10, "2"), (12, "3")] {
        let found = rows(store.find_sessions(b"a", end - 10, end + 10)?)?;
        assert_eq!(found.len(), 1);
        store.remove(b"a", w(found[0].1, found[0].2))?;
        store.put(b"a", w(0, end), v(n, end))?;
    }
    assert_eq!(
        rows(store.fetch(b"a")?)?,
        vec![(b"a".to_vec(), 0, 12, b"3".to_vec(), 12)]
    );
    assert_eq!(store.fetch_session(b"a", 0, 0)?, None);
    assert_eq!(store.inner().fetch_session(b"a", 0, 0)?, v("1", 0));
    take(&seen);
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", w(0, 0), None, Some(("1", 0))),
            fwd("a", w(0, 12), Some(("3", 12)), None),
        ]
    );
    assert_eq!(rows(store.inner().fetch(b"a")?)?.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A session store against the same store without a cache.

const KEYS: &[&[u8]] = &[b"", b"a", b"a\0", b"ab", b"b"];
const M_RETENTION: i64 = 40_000;
const M_INTERVAL: i64 = 10_000;
const STEP: i64 = 1_000;

fn value(v: u8, ts: i64) -> Value {
    // Values of different sizes, so entries differ in size.
    (vec![v; usize::from(v % 5)], ts)
}

#[derive(Debug, Clone)]
enum SessionOp {
    Put {
        key: usize,
        jitter: i64,
        len: i64,
        value: Option<u8>,
    },
    Find {
        key: usize,
        earliest_end: i64,
        latest_start: i64,
        backward: bool,
    },
    FindRange {
        kf: Option<usize>,
        kt: Option<usize>,
        earliest_end: i64,
        latest_start: i64,
        backward: bool,
    },
    Ending {
        from: i64,
        span: i64,
    },
    Flush,
    Commit,
    Resize(usize),
}

fn session_op() -> impl Strategy<Value = SessionOp> {
    let k = 0..KEYS.len();
    let jitter = (-50i64..5).prop_map(|x| x * 1_000);
    prop_oneof![
        10 => (k.clone(), jitter.clone(), 0i64..8, prop::option::weighted(0.8, any::<u8>()))
            .prop_map(|(key, jitter, len, value)| SessionOp::Put { key, jitter, len: len * 500, value }),
        3 => (k.clone(), jitter.clone(), jitter.clone(), any::<bool>())
            .prop_map(|(key, earliest_end, latest_start, backward)| SessionOp::Find { key, earliest_end, latest_start, backward }),
        2 => (prop::option::of(k.clone()), prop::option::of(k), jitter.clone(), jitter.clone(), any::<bool>())
            .prop_map(|(kf, kt, earliest_end, latest_start, backward)| SessionOp::FindRange { kf, kt, earliest_end, latest_start, backward }),
        1 => (jitter, (0i64..60).prop_map(|x| x * 1_000)).prop_map(|(from, span)| SessionOp::Ending { from, span }),
        2 => Just(SessionOp::Flush),
        2 => Just(SessionOp::Commit),
        1 => (0usize..800).prop_map(SessionOp::Resize),
    ]
}

fn run_sessions(budget: usize, ops: &[SessionOp]) -> TestResult {
    let cache = ThreadCache::new(budget);
    let options = SessionStoreOptions::new(M_RETENTION).with_segment_interval(M_INTERVAL);
    let open = |name: &str| {
        SegmentedSessionStore::open(name, Arc::new(MemoryBackend::new()), None, options.clone())
    };
    let mut store = CachingSessionStore::new(open("cached")?, &cache, "0_0")?;
    let mut plain = open("plain")?;
    let seen = Forwards::default();
    store.set_flush_listener(listener(&seen), true);
    let mut downstream: BTreeMap<(Vec<u8>, Window), Value> = BTreeMap::new();
    let time = |i: usize, d: i64| (i as i64 * STEP + d).max(0);
    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        match op {
            SessionOp::Put {
                key,
                jitter,
                len,
                value: val,
            } => {
                let start = time(step, *jitter);
                let session = Window {
                    start,
                    end: start + len,
                };
                let put = val.map(|x| {
                    let (b, ts) = value(x, step as i64);
                    Timestamped {
                        value: Bytes::from(b),
                        timestamp: ts,
                    }
                });
                store.put(KEYS[*key], session, put.clone())?;
                plain.put(KEYS[*key], session, put)?;
            }
            SessionOp::Find {
                key,
                earliest_end,
                latest_start,
                backward,
            } => {
                let (ee, ls) = (time(step, *earliest_end), time(step, *latest_start));
                let k = KEYS[*key];
                let (got, want) = if *backward {
                    (
                        store.backward_find_sessions(k, ee, ls)?,
                        plain.backward_find_sessions(k, ee, ls)?,
                    )
                } else {
                    (
                        store.find_sessions(k, ee, ls)?,
                        plain.find_sessions(k, ee, ls)?,
                    )
                };
                assert_eq!(rows(got)?, rows(want)?, "{ctx}");
                for (k, s, e, v, ts) in rows(plain.find_sessions(k, ee, ls)?)? {
                    let got = plain_value(store.fetch_session(&k, s, e)?);
                    assert_eq!(got, Some((v, ts)), "{ctx}: fetch_session");
                }
            }
            SessionOp::FindRange {
                kf,
                kt,
                earliest_end,
                latest_start,
                backward,
            } => {
                let (ee, ls) = (time(step, *earliest_end), time(step, *latest_start));
                let (kf, kt) = (kf.map(|k| KEYS[k]), kt.map(|k| KEYS[k]));
                let (got, want) = if *backward {
                    (
                        store.backward_find_sessions_range(kf, kt, ee, ls)?,
                        plain.backward_find_sessions_range(kf, kt, ee, ls)?,
                    )
                } else {
                    (
                        store.find_sessions_range(kf, kt, ee, ls)?,
                        plain.find_sessions_range(kf, kt, ee, ls)?,
                    )
                };
                assert_eq!(rows(got)?, rows(want)?, "{ctx}");
            }
            SessionOp::Ending { from, span } => {
                let (from, to) = (time(step, *from), time(step, *from) + span);
                assert_eq!(
                    rows(store.find_sessions_ending(from, to)?)?,
                    rows(plain.find_sessions_ending(from, to)?)?,
                    "{ctx}"
                );
            }
            SessionOp::Flush => store.flush()?,
            SessionOp::Commit => {
                store.flush()?;
                commit(&mut store)?;
                commit(&mut plain)?;
            }
            SessionOp::Resize(bytes) => cache.resize(*bytes),
        }
        assert!(cache.size_bytes() <= cache.max_bytes(), "{ctx}");
        assert_eq!(
            store.observed_stream_time(),
            plain.observed_stream_time(),
            "{ctx}"
        );
        for (k, w, new, old) in take(&seen) {
            let at = (k, w);
            assert_eq!(old, downstream.get(&at).cloned(), "{ctx}: {at:?}");
            assert!(new.is_some() || old.is_some(), "{ctx}: a no-op removal");
            match new {
                Some(n) => downstream.insert(at, n),
                None => downstream.remove(&at),
            };
        }
        if matches!(op, SessionOp::Flush | SessionOp::Commit) {
            let all = rows(plain.fetch_range(None, None)?)?;
            let want: BTreeMap<(Vec<u8>, Window), Value> = all
                .into_iter()
                .map(|(k, s, e, v, ts)| ((k, Window { start: s, end: e }), (v, ts)))
                .collect();
            let live_from = (plain.observed_stream_time() - M_RETENTION + 1).max(0);
            let live: BTreeMap<(Vec<u8>, Window), Value> = downstream
                .iter()
                .filter(|((_, w), _)| w.end >= live_from)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(live, want, "{ctx}: downstream after a flush");
        }
    }
    Ok(())
}

fn plain_value(v: Option<Timestamped>) -> Option<Value> {
    plain(v.as_ref())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_cached_session_store_reads_like_the_store_and_forwards_a_consistent_change_stream(
        budget in 0usize..900,
        ops in prop::collection::vec(session_op(), 1..100),
    ) {
        run_sessions(budget, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
