//! The old values a caching window or session store forwards, now that the cache answers
//! them itself when it knows what the store holds (a clean entry's value, or the value a
//! dirty entry replaced): they must still be exactly the store's values before each
//! write-down, across flushes, evictions, budget changes, commits and aborts.

mod common;

use common::commit;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use freshet_state_store::{
    CachingSessionStore, CachingWindowStore, MemoryBackend, SegmentedSessionStore,
    SegmentedWindowStore, SessionStore, SessionStoreOptions, StateStore, ThreadCache, Timestamped,
    Window, WindowStore, WindowStoreOptions, Windowed,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

type Value = (Vec<u8>, i64);
/// A forwarded update: key, window, new value, old value.
type Fwd = (Vec<u8>, Window, Option<Value>, Option<Value>);
type Forwards = Arc<Mutex<Vec<Fwd>>>;

const RETENTION: i64 = 40_000;
const SIZE: i64 = 5_000;
const INTERVAL: i64 = 10_000;
const STEP: i64 = 1_000;
const KEYS: &[&[u8]] = &[b"a", b"ab", b"b", b"c"];

fn plain(v: Option<&Timestamped>) -> Option<Value> {
    v.map(|v| (v.value.to_vec(), v.timestamp))
}

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn val(s: &str, ts: i64) -> Option<Value> {
    Some((s.as_bytes().to_vec(), ts))
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

type Windows = CachingWindowStore<SegmentedWindowStore>;
type Sessions = CachingSessionStore<SegmentedSessionStore>;

fn windows(cache: &ThreadCache, name: &str) -> TestResult<(Windows, Forwards)> {
    let options = WindowStoreOptions::new(RETENTION, SIZE).with_segment_interval(INTERVAL);
    let inner = SegmentedWindowStore::open(name, Arc::new(MemoryBackend::new()), None, options)?;
    let mut store = CachingWindowStore::new(inner, cache, "0_0")?;
    let seen = Forwards::default();
    store.set_flush_listener(listener(&seen), true);
    Ok((store, seen))
}

fn sessions(cache: &ThreadCache, name: &str) -> TestResult<(Sessions, Forwards)> {
    let options = SessionStoreOptions::new(RETENTION).with_segment_interval(INTERVAL);
    let inner = SegmentedSessionStore::open(name, Arc::new(MemoryBackend::new()), None, options)?;
    let mut store = CachingSessionStore::new(inner, cache, "0_0")?;
    let seen = Forwards::default();
    store.set_flush_listener(listener(&seen), true);
    Ok((store, seen))
}

#[test]
fn an_update_over_a_flushed_window_forwards_the_flushed_value_as_old() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = windows(&cache, "w")?;
    let w = Window {
        start: 0,
        end: SIZE,
    };
    store.put(b"a", v("1", 1), 0)?;
    store.flush()?;
    store.put(b"a", v("2", 2), 0)?;
    store.put(b"a", v("3", 3), 0)?;
    store.flush()?;
    store.put(b"a", None, 0)?;
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            (b"a".to_vec(), w, val("1", 1), None),
            (b"a".to_vec(), w, val("3", 3), val("1", 1)),
            (b"a".to_vec(), w, None, val("3", 3)),
        ]
    );
    // The deletion left the cache and the store: deleting again forwards nothing.
    store.put(b"a", None, 0)?;
    store.flush()?;
    assert_eq!(take(&seen), Vec::new());
    Ok(())
}

#[test]
fn after_an_abort_the_old_value_is_the_committed_one() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = windows(&cache, "w")?;
    let w = Window {
        start: 0,
        end: SIZE,
    };
    store.put(b"a", v("1", 1), 0)?;
    store.flush()?;
    commit(&mut store)?;
    store.put(b"a", v("2", 2), 0)?;
    store.flush()?; // written down, not committed
    store.abort();
    store.put(b"a", v("3", 3), 0)?;
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            (b"a".to_vec(), w, val("1", 1), None),
            (b"a".to_vec(), w, val("2", 2), val("1", 1)),
            (b"a".to_vec(), w, val("3", 3), val("1", 1)),
        ]
    );
    Ok(())
}

#[test]
fn a_session_merged_and_removed_forwards_its_flushed_value_as_old() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = sessions(&cache, "s")?;
    let short = Window { start: 0, end: 0 };
    let merged = Window { start: 0, end: 10 };
    store.put(b"a", short, v("1", 0))?;
    store.flush()?;
    store.put(b"a", short, None)?;
    store.put(b"a", merged, v("2", 10))?;
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            (b"a".to_vec(), short, val("1", 0), None),
            (b"a".to_vec(), short, None, val("1", 0)),
            (b"a".to_vec(), merged, val("2", 10), None),
        ]
    );
    Ok(())
}

// ---- random sequences: every old value is what downstream last saw ----

#[derive(Debug, Clone)]
enum Op {
    Put {
        store: usize,
        key: usize,
        jitter: i64,
        value: Option<u8>,
    },
    Flush(usize),
    /// Flushes every store, then commits each.
    Commit,
    /// One store's transaction is aborted: downstream rolls back with it.
    Abort(usize),
    Resize(usize),
}

/// Two window stores and two session stores, in one thread cache.
const STORES: usize = 4;

fn op() -> impl Strategy<Value = Op> {
    let s = 0..STORES;
    let jitter = (-50i64..5).prop_map(|x| x * 1_000);
    prop_oneof![
        12 => (s.clone(), 0..KEYS.len(), jitter, prop::option::weighted(0.8, any::<u8>()))
            .prop_map(|(store, key, jitter, value)| Op::Put { store, key, jitter, value }),
        3 => s.clone().prop_map(Op::Flush),
        2 => Just(Op::Commit),
        1 => s.prop_map(Op::Abort),
        1 => (0usize..1000).prop_map(Op::Resize),
    ]
}

enum Either {
    Windows(Windows),
    Sessions(Sessions),
}

impl Either {
    fn put(&mut self, key: &[u8], time: i64, value: Option<Timestamped>) -> TestResult {
        match self {
            Either::Windows(s) => s.put(key, value, time)?,
            // A session of one record, or of two when the time is odd.
            Either::Sessions(s) => {
                let window = Window {
                    start: time - time % 2_000,
                    end: time,
                };
                s.put(key, window, value)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> TestResult {
        match self {
            Either::Windows(s) => s.flush()?,
            Either::Sessions(s) => s.flush()?,
        }
        Ok(())
    }

    fn commit(&mut self) -> TestResult {
        match self {
            Either::Windows(s) => commit(s),
            Either::Sessions(s) => commit(s),
        }
    }

    fn abort(&mut self) {
        match self {
            Either::Windows(s) => s.abort(),
            Either::Sessions(s) => s.abort(),
        }
    }
}

fn run(budget: usize, ops: &[Op]) -> TestResult {
    let cache = ThreadCache::new(budget);
    let mut stores = Vec::new();
    let mut seen = Vec::new();
    for i in 0..STORES {
        let name = format!("s{i}");
        if i % 2 == 0 {
            let (store, forwards) = windows(&cache, &name)?;
            stores.push(Either::Windows(store));
            seen.push(forwards);
        } else {
            let (store, forwards) = sessions(&cache, &name)?;
            stores.push(Either::Sessions(store));
            seen.push(forwards);
        }
    }
    type Downstream = BTreeMap<(Vec<u8>, Window), Value>;
    let mut downstream: Vec<Downstream> = vec![BTreeMap::new(); STORES];
    let mut committed: Vec<Downstream> = vec![BTreeMap::new(); STORES];
    let time = |i: usize, d: i64| (i as i64 * STEP + d).max(0);
    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        match op {
            Op::Put {
                store,
                key,
                jitter,
                value,
            } => {
                let value = value.map(|x| Timestamped {
                    value: Bytes::from(vec![x; usize::from(x % 5)]),
                    timestamp: step as i64,
                });
                stores[*store].put(KEYS[*key], time(step, *jitter), value)?;
            }
            Op::Flush(s) => stores[*s].flush()?,
            Op::Commit => {
                for store in &mut stores {
                    store.flush()?;
                }
                for store in &mut stores {
                    store.commit()?;
                }
            }
            Op::Abort(s) => stores[*s].abort(),
            Op::Resize(bytes) => cache.resize(*bytes),
        }
        for s in 0..STORES {
            for (k, w, new, old) in take(&seen[s]) {
                let at = (k, w);
                assert_eq!(
                    old,
                    downstream[s].get(&at).cloned(),
                    "{ctx}: store {s} {at:?}"
                );
                assert!(new.is_some() || old.is_some(), "{ctx}: a no-op deletion");
                match new {
                    Some(n) => downstream[s].insert(at, n),
                    None => downstream[s].remove(&at),
                };
            }
            match op {
                Op::Commit => committed[s] = downstream[s].clone(),
                Op::Abort(a) if *a == s => downstream[s] = committed[s].clone(),
                _ => {}
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_forwarded_old_value_is_what_downstream_last_saw(
        budget in 0usize..1000,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(budget, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
