//! The record cache over window stores: deduplication, forward order, old values, eviction
//! within the one thread budget (shared with key-value and session stores), retention seen
//! through the cache, reads that merge cache and store in the store's order, and the
//! disabled cache. Session stores: `session_cache.rs`.

mod common;

use common::{commit, CountingSink};

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use freshet_state_store::{
    Backend, CachingKvStore, CachingSessionStore, CachingWindowStore, KeyValueStore, KvStore,
    MemoryBackend, ReadOnlyWindowView, SegmentedSessionStore, SegmentedWindowStore, SessionStore,
    SessionStoreOptions, StateStore, ThreadCache, Timestamped, Window, WindowStore,
    WindowStoreOptions, Windowed, WindowedIter,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

type Value = (Vec<u8>, i64);
/// A forwarded update: key, window, new value, old value.
type Fwd = (Vec<u8>, Window, Option<Value>, Option<Value>);
type Forwards = Arc<Mutex<Vec<Fwd>>>;

const RETENTION: i64 = 120_000;
const SIZE: i64 = 10_000;

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn plain(v: Option<&Timestamped>) -> Option<Value> {
    v.map(|v| (v.value.to_vec(), v.timestamp))
}

fn win(start: i64) -> Window {
    Window {
        start,
        end: start + SIZE,
    }
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

fn window_store(name: &str, backend: Arc<dyn Backend>) -> TestResult<SegmentedWindowStore> {
    let options = WindowStoreOptions::new(RETENTION, SIZE);
    Ok(SegmentedWindowStore::open(name, backend, None, options)?)
}

/// A caching window store over a fresh in-memory store, forwarding into the returned list.
fn caching(
    cache: &ThreadCache,
    name: &str,
    send_old_values: bool,
) -> TestResult<(CachingWindowStore<SegmentedWindowStore>, Forwards)> {
    let inner = window_store(name, Arc::new(MemoryBackend::new()))?;
    let mut store = CachingWindowStore::new(inner, cache, "0_0")?;
    let seen = Forwards::default();
    store.set_flush_listener(listener(&seen), send_old_values);
    Ok((store, seen))
}

/// Key, window start, window end, value, timestamp.
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

fn starts(it: freshet_state_store::WindowValueIter<'_>) -> TestResult<Vec<(i64, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in it {
        let (t, v) = item?;
        out.push((t, v.value.to_vec()));
    }
    Ok(out)
}

#[test]
fn repeated_puts_of_a_window_are_forwarded_once_with_the_latest_value() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    for (n, ts) in [("1", 1), ("2", 5), ("3", 3)] {
        store.put(b"a", v(n, ts), 0)?;
    }
    store.put(b"a", v("x", 9), 10_000)?;
    assert!(take(&seen).is_empty());
    assert_eq!(
        store.inner().fetch_one(b"a", 0)?,
        None,
        "not written down yet"
    );
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", win(0), Some(("3", 3)), None),
            fwd("a", win(10_000), Some(("x", 9)), None),
        ]
    );
    assert_eq!(store.inner().fetch_one(b"a", 0)?, v("3", 3));
    store.flush()?;
    assert!(
        take(&seen).is_empty(),
        "clean entries are not forwarded again"
    );
    Ok(())
}

#[test]
fn a_flush_forwards_windows_in_latest_update_order_not_key_order() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    store.put(b"b", v("1", 0), 0)?;
    store.put(b"a", v("2", 0), 0)?;
    store.put(b"c", v("3", 0), 70_000)?;
    store.put(b"b", v("4", 0), 0)?;
    store.flush()?;
    let order: Vec<(Vec<u8>, i64)> = take(&seen).into_iter().map(|f| (f.0, f.1.start)).collect();
    assert_eq!(
        order,
        vec![
            (b"a".to_vec(), 0),
            (b"c".to_vec(), 70_000),
            (b"b".to_vec(), 0)
        ]
    );
    Ok(())
}

#[test]
fn old_values_are_the_store_values_before_the_write_down() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", true)?;
    store.put(b"a", v("1", 1), 0)?;
    store.flush()?;
    store.put(b"a", v("2", 2), 0)?;
    store.put(b"a", v("3", 3), 0)?;
    store.flush()?;
    store.put(b"a", None, 0)?;
    store.put(b"gone", v("x", 0), 0)?;
    store.put(b"gone", None, 0)?;
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", win(0), Some(("1", 1)), None),
            fwd("a", win(0), Some(("3", 3)), Some(("1", 1))),
            // A window put and deleted between flushes never existed downstream.
            fwd("a", win(0), None, Some(("3", 3))),
        ]
    );
    // Without old values the listener gets none, but a deletion still needs a stored value.
    let (mut store, seen) = caching(&cache, "other", false)?;
    store.put(b"a", v("1", 1), 0)?;
    store.flush()?;
    store.put(b"a", v("2", 2), 0)?;
    store.flush()?;
    store.put(b"a", None, 0)?;
    store.put(b"never", None, 0)?;
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", win(0), Some(("1", 1)), None),
            fwd("a", win(0), Some(("2", 2)), None),
            fwd("a", win(0), None, None),
        ]
    );
    Ok(())
}

#[test]
fn reads_merge_the_cache_over_the_store_in_the_store_order() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, _seen) = caching(&cache, "counts", false)?;
    // The same puts, straight into a store without a cache: what every read must match.
    let mut plain = window_store("plain", Arc::new(MemoryBackend::new()))?;
    let keys: [&[u8]; 5] = [b"", b"a", b"a\0", b"ab", b"b"];
    let mut puts = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        for t in (0..130_000).step_by(20_000) {
            puts.push((k.to_vec(), v(&format!("{i}@{t}"), t), t));
        }
    }
    for (k, value, t) in puts {
        store.put(&k, value.clone(), t)?;
        plain.put(&k, value, t)?;
    }
    store.flush()?;
    // Now updates, deletions and new windows that only the cache holds.
    for (k, value, t) in [
        (&b"a"[..], v("new", 1), 0),
        (b"ab", None, 60_000),
        (b"a\0", v("new", 2), 70_000),
        (b"b", None, 120_000),
        (b"aa", v("new", 3), 130_000),
    ] {
        store.put(k, value.clone(), t)?;
        plain.put(k, value, t)?;
    }
    let compare = |got: WindowedIter<'_>, want: WindowedIter<'_>, what: &str| -> TestResult {
        assert_eq!(rows(got)?, rows(want)?, "{what}");
        Ok(())
    };
    compare(store.all()?, plain.all()?, "all")?;
    compare(store.backward_all()?, plain.backward_all()?, "backward_all")?;
    compare(
        store.fetch_all(20_000, 70_000)?,
        plain.fetch_all(20_000, 70_000)?,
        "fetch_all",
    )?;
    compare(
        store.backward_fetch_all(0, 125_000)?,
        plain.backward_fetch_all(0, 125_000)?,
        "backward_fetch_all",
    )?;
    for (kf, kt) in [
        (Some(&b"a"[..]), Some(&b"ab"[..])),
        (None, Some(&b"a\0"[..])),
        (Some(&b"aa"[..]), None),
        (Some(&b"b"[..]), Some(&b"a"[..])),
    ] {
        compare(
            store.fetch_range(kf, kt, 0, 130_000)?,
            plain.fetch_range(kf, kt, 0, 130_000)?,
            "fetch_range",
        )?;
        compare(
            store.backward_fetch_range(kf, kt, 40_000, 80_000)?,
            plain.backward_fetch_range(kf, kt, 40_000, 80_000)?,
            "backward_fetch_range",
        )?;
    }
    let mut all_keys = keys.to_vec();
    all_keys.push(b"aa");
    for k in all_keys {
        assert_eq!(
            starts(store.fetch(k, 0, i64::MAX)?)?,
            starts(plain.fetch(k, 0, i64::MAX)?)?
        );
        assert_eq!(
            starts(store.backward_fetch(k, 10_000, 90_000)?)?,
            starts(plain.backward_fetch(k, 10_000, 90_000)?)?
        );
        for t in [0, 60_000, 70_000, 120_000, 130_000] {
            assert_eq!(store.fetch_one(k, t)?, plain.fetch_one(k, t)?, "{k:?}@{t}");
        }
    }
    // At stream time 130 000, the windows of 0 and 10 000 have expired, cached or not.
    assert_eq!(store.fetch_one(b"a", 0)?, None);
    assert_eq!(store.observed_stream_time(), 130_000);
    Ok(())
}

#[test]
fn evicting_a_dirty_window_flushes_its_store_with_the_evicted_entry_first() -> TestResult {
    // An entry of key "k" with a 1-byte value: segment id (8) + binary key (1 + 12) + value
    // (1) + overhead.
    let entry = 8 + 13 + 1 + ThreadCache::ENTRY_OVERHEAD_BYTES;
    let cache = ThreadCache::new(2 * entry + 10);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    store.put(b"a", v("1", 0), 0)?;
    store.put(b"b", v("2", 0), 0)?;
    assert_eq!(cache.size_bytes(), 2 * entry);
    // Reading "a" makes "b" the least recently used.
    assert_eq!(store.fetch_one(b"a", 0)?, v("1", 0));
    store.put(b"c", v("3", 0), 0)?;
    let order: Vec<Vec<u8>> = take(&seen).into_iter().map(|f| f.0).collect();
    assert_eq!(order, vec![b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
    assert!(cache.size_bytes() <= cache.max_bytes());
    // An entry larger than the whole budget goes straight down.
    store.put(b"big", v(&"x".repeat(200), 0), 0)?;
    assert_eq!(take(&seen).len(), 1);
    assert_eq!(
        store.inner().fetch_one(b"big", 0)?.map(|v| v.value.len()),
        Some(200)
    );
    Ok(())
}

#[test]
fn key_value_window_and_session_stores_share_one_budget() -> TestResult {
    let cache = ThreadCache::new(2_000);
    let (mut windows, _) = caching(&cache, "windows", false)?;
    let sessions = SegmentedSessionStore::open(
        "sessions",
        Arc::new(MemoryBackend::new()),
        None,
        SessionStoreOptions::new(RETENTION),
    )?;
    let mut sessions = CachingSessionStore::new(sessions, &cache, "0_0")?;
    let kv = KvStore::open("kv", Arc::new(MemoryBackend::new()), None)?;
    let mut kv = CachingKvStore::new(kv, &cache, "0_0")?;
    for i in 0..200i64 {
        let k = format!("k{}", i % 17);
        windows.put(
            k.as_bytes(),
            v(&"w".repeat((i % 9) as usize), i),
            (i % 5) * 1_000,
        )?;
        sessions.put(
            k.as_bytes(),
            Window {
                start: i,
                end: i + 5,
            },
            v("s", i),
        )?;
        kv.put(Bytes::from(k), v(&"k".repeat((i % 4) as usize), i))?;
        assert!(cache.size_bytes() <= cache.max_bytes(), "put {i}");
        assert_eq!(cache.size_bytes(), cache.recount_bytes(), "put {i}");
    }
    cache.resize(300);
    assert!(cache.size_bytes() <= 300);
    windows.flush()?;
    sessions.flush()?;
    kv.flush()?;
    drop(windows);
    drop(sessions);
    drop(kv);
    assert_eq!(
        cache.size_bytes(),
        0,
        "dropped stores give their bytes back"
    );
    Ok(())
}

#[test]
fn a_disabled_cache_forwards_every_put_at_once() -> TestResult {
    for cache_bytes in [None, Some(0)] {
        let inner = window_store("counts", Arc::new(MemoryBackend::new()))?;
        let cache = ThreadCache::new(cache_bytes.unwrap_or(1 << 20));
        let mut store = match cache_bytes {
            None => CachingWindowStore::disabled(inner),
            Some(_) => CachingWindowStore::new(inner, &cache, "0_0")?,
        };
        assert!(!store.is_caching());
        let seen = Forwards::default();
        store.set_flush_listener(listener(&seen), true);
        store.put(b"a", v("1", 1), 0)?;
        store.put(b"a", v("2", 2), 0)?;
        store.put(b"a", None, 0)?;
        store.put(b"nothing", None, 0)?;
        assert_eq!(
            take(&seen),
            vec![
                fwd("a", win(0), Some(("1", 1)), None),
                fwd("a", win(0), Some(("2", 2)), Some(("1", 1))),
                fwd("a", win(0), None, Some(("2", 2))),
            ],
            "{cache_bytes:?}"
        );
        assert!(store.inner().write_buffer_bytes() > 0);
        commit(&mut store)?;
    }
    Ok(())
}

#[test]
fn sending_the_changelog_before_flushing_the_cache_is_refused() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, _) = caching(&cache, "counts", false)?;
    store.put(b"a", v("1", 1), 0)?;
    let err = store.send_changelog(&mut CountingSink::default()).err();
    assert!(
        matches!(&err, Some(freshet_state_store::Error::InvalidArgument { store, .. }) if store == "counts"),
        "{err:?}"
    );
    store.flush()?;
    commit(&mut store)?;
    Ok(())
}

#[test]
fn a_put_of_an_expired_window_is_dropped_and_never_forwarded() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", true)?;
    store.put(b"a", v("1", 1), 0)?;
    store.flush()?;
    commit(&mut store)?;
    assert_eq!(take(&seen).len(), 1);
    // A cached window far ahead advances stream time before anything is written down.
    store.put(b"b", v("2", 2), 200_000)?;
    assert_eq!(store.inner().observed_stream_time(), 0);
    assert_eq!(store.observed_stream_time(), 200_000);
    assert_eq!(
        store.fetch_one(b"a", 0)?,
        None,
        "expired, though the store has it"
    );
    assert_eq!(rows(store.all()?)?.len(), 1);
    store.put(b"a", v("3", 3), 0)?;
    assert_eq!(store.dropped_expired(), 1);
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![fwd("b", win(200_000), Some(("2", 2)), None)]
    );
    assert_eq!(store.inner().observed_stream_time(), 200_000);
    assert!(matches!(
        store.put(b"a", v("4", 4), -1),
        Err(freshet_state_store::Error::InvalidArgument { .. })
    ));
    Ok(())
}

#[test]
fn an_abort_drops_the_cached_windows_and_their_stream_time() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, _) = caching(&cache, "counts", false)?;
    store.put(b"a", v("1", 1), 0)?;
    store.flush()?;
    commit(&mut store)?;
    store.put(b"a", v("2", 2), 0)?;
    store.put(b"b", v("3", 3), 500_000)?;
    store.abort();
    assert_eq!(cache.size_bytes(), 0);
    assert_eq!(store.observed_stream_time(), 0);
    assert_eq!(store.fetch_one(b"a", 0)?, v("1", 1));
    Ok(())
}

#[test]
fn a_store_that_retains_duplicates_is_never_cached() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let options = WindowStoreOptions::new(RETENTION, SIZE).with_retain_duplicates(true);
    let inner = SegmentedWindowStore::open("joins", Arc::new(MemoryBackend::new()), None, options)?;
    let mut store = CachingWindowStore::new(inner, &cache, "0_0")?;
    assert!(!store.is_caching());
    let seen = Forwards::default();
    store.set_flush_listener(listener(&seen), true);
    store.put(b"a", v("1", 1), 0)?;
    store.put(b"a", v("2", 2), 0)?;
    store.put(b"a", None, 0)?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", win(0), Some(("1", 1)), None),
            fwd("a", win(0), Some(("2", 2)), None),
        ]
    );
    assert_eq!(
        starts(store.fetch(b"a", 0, 0)?)?,
        vec![(0, b"1".to_vec()), (0, b"2".to_vec())]
    );
    assert_eq!(cache.num_entries(), 0);
    Ok(())
}

#[test]
fn updates_parked_by_a_shrinking_budget_are_read_before_they_are_written_down() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    store.put(b"a", v("1", 1), 0)?;
    store.flush()?;
    store.put(b"a", v("2", 2), 0)?;
    store.put(b"a", None, 10_000)?;
    store.put(b"b", v("3", 3), 20_000)?;
    take(&seen);
    cache.resize(0);
    assert_eq!(cache.size_bytes(), 0);
    assert!(
        take(&seen).is_empty(),
        "parked until the store's next write"
    );
    assert_eq!(store.fetch_one(b"a", 0)?, v("2", 2));
    assert_eq!(
        rows(store.all()?)?,
        vec![
            (b"a".to_vec(), 0, SIZE, b"2".to_vec(), 2),
            (b"b".to_vec(), 20_000, 20_000 + SIZE, b"3".to_vec(), 3),
        ]
    );
    store.flush()?;
    assert_eq!(
        take(&seen).len(),
        2,
        "the deletion of an absent window is not forwarded"
    );
    assert_eq!(store.inner().fetch_one(b"b", 20_000)?, v("3", 3));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Window stores against a model: two stores in one small cache.

#[derive(Debug, Clone)]
enum Op {
    Put {
        store: usize,
        key: usize,
        jitter: i64,
        value: Option<u8>,
    },
    FetchOne {
        store: usize,
        key: usize,
        jitter: i64,
    },
    /// `CachingWindowStore::update`: the window's value one byte longer (a zero byte: the
    /// function fails and nothing is put).
    Update {
        store: usize,
        key: usize,
        jitter: i64,
        byte: u8,
    },
    Fetch {
        store: usize,
        key: usize,
        from: i64,
        span: i64,
        backward: bool,
    },
    FetchRange {
        store: usize,
        kf: Option<usize>,
        kt: Option<usize>,
        from: i64,
        span: i64,
        backward: bool,
    },
    All {
        store: usize,
        backward: bool,
    },
    Flush {
        store: usize,
    },
    /// Flushes both stores, then commits and applies them.
    Commit,
    Resize(usize),
}

const STORES: usize = 2;
const KEYS: &[&[u8]] = &[b"", b"a", b"a\0", b"ab", b"b"];
const M_RETENTION: i64 = 40_000;
const M_SIZE: i64 = 5_000;
const M_INTERVAL: i64 = 10_000;
const STEP: i64 = 1_000;

fn op() -> impl Strategy<Value = Op> {
    let s = 0..STORES;
    let k = 0..KEYS.len();
    let jitter = (-50i64..5).prop_map(|x| x * 1_000);
    let span = (0i64..60).prop_map(|x| x * 1_000);
    prop_oneof![
        12 => (s.clone(), k.clone(), jitter.clone(), prop::option::weighted(0.8, any::<u8>()))
            .prop_map(|(store, key, jitter, value)| Op::Put { store, key, jitter, value }),
        3 => (s.clone(), k.clone(), jitter.clone())
            .prop_map(|(store, key, jitter)| Op::FetchOne { store, key, jitter }),
        8 => (s.clone(), k.clone(), jitter.clone(), any::<u8>().prop_map(|b| if b < 16 { 0 } else { b }))
            .prop_map(|(store, key, jitter, byte)| Op::Update { store, key, jitter, byte }),
        2 => (s.clone(), k.clone(), jitter.clone(), span.clone(), any::<bool>())
            .prop_map(|(store, key, from, span, backward)| Op::Fetch { store, key, from, span, backward }),
        2 => (s.clone(), prop::option::of(k.clone()), prop::option::of(k), jitter, span, any::<bool>())
            .prop_map(|(store, kf, kt, from, span, backward)| Op::FetchRange { store, kf, kt, from, span, backward }),
        1 => (s.clone(), any::<bool>()).prop_map(|(store, backward)| Op::All { store, backward }),
        2 => s.prop_map(|store| Op::Flush { store }),
        2 => Just(Op::Commit),
        1 => (0usize..800).prop_map(Op::Resize),
    ]
}

/// What a window store without a cache would hold: `(key, start)` → value.
#[derive(Debug, Default)]
struct Model {
    windows: BTreeMap<(Vec<u8>, i64), Value>,
    observed: i64,
}

impl Model {
    fn min_live(&self) -> i64 {
        (self.observed - M_RETENTION + 1).max(0)
    }

    fn put(&mut self, key: &[u8], start: i64, value: Option<Value>) {
        self.observed = self.observed.max(start);
        if start < self.min_live() {
            return;
        }
        match value {
            Some(v) => self.windows.insert((key.to_vec(), start), v),
            None => self.windows.remove(&(key.to_vec(), start)),
        };
    }

    /// Live windows in bounds, in the store's order: segment, then binary key.
    fn rows(
        &self,
        kf: Option<&[u8]>,
        kt: Option<&[u8]>,
        from: i64,
        to: i64,
        backward: bool,
    ) -> Vec<Row> {
        let from = from.max(self.min_live());
        let mut rows: Vec<((i64, Vec<u8>), Row)> = self
            .windows
            .iter()
            .filter(|((k, t), _)| {
                kf.is_none_or(|f| k.as_slice() >= f)
                    && kt.is_none_or(|z| k.as_slice() <= z)
                    && *t >= from
                    && *t <= to
            })
            .map(|((k, t), (val, ts))| {
                let mut binary = k.clone();
                binary.extend_from_slice(&t.to_be_bytes());
                binary.extend_from_slice(&0u32.to_be_bytes());
                (
                    (t.div_euclid(M_INTERVAL), binary),
                    (k.clone(), *t, t + M_SIZE, val.clone(), *ts),
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

fn value(v: u8, ts: i64) -> Value {
    // Values of different sizes, so entries differ in size.
    (vec![v; usize::from(v % 5)], ts)
}

fn run_model(budget: usize, ops: &[Op]) -> TestResult {
    let cache = ThreadCache::new(budget);
    let options = WindowStoreOptions::new(M_RETENTION, M_SIZE).with_segment_interval(M_INTERVAL);
    let mut stores = Vec::new();
    let mut seen = Vec::new();
    let mut backends = Vec::new();
    for i in 0..STORES {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let inner =
            SegmentedWindowStore::open(&format!("s{i}"), backend.clone(), None, options.clone())?;
        let mut store = CachingWindowStore::new(inner, &cache, "0_0")?;
        let forwards = Forwards::default();
        store.set_flush_listener(listener(&forwards), true);
        stores.push(store);
        seen.push(forwards);
        backends.push(backend);
    }
    let mut models: Vec<Model> = (0..STORES)
        .map(|_| Model {
            observed: -1,
            ..Model::default()
        })
        .collect();
    // What downstream has seen, per store.
    let mut downstream: Vec<BTreeMap<(Vec<u8>, i64), Value>> = vec![BTreeMap::new(); STORES];
    let time = |i: usize, d: i64| (i as i64 * STEP + d).max(0);
    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        match op {
            Op::Put {
                store,
                key,
                jitter,
                value: val,
            } => {
                let t = time(step, *jitter);
                let val = val.map(|x| value(x, step as i64));
                let put = val.as_ref().map(|(b, ts)| Timestamped {
                    value: Bytes::copy_from_slice(b),
                    timestamp: *ts,
                });
                stores[*store].put(KEYS[*key], put, t)?;
                models[*store].put(KEYS[*key], t, val);
            }
            Op::Update {
                store,
                key,
                jitter,
                byte,
            } => {
                let t = time(step, *jitter);
                let grown = |old: Option<(&[u8], i64)>| -> Option<Value> {
                    let len = old.map_or(0, |(b, _)| b.len());
                    let ts = old.map_or(step as i64, |(_, ts)| ts.max(step as i64));
                    (*byte != 0).then(|| (vec![*byte; (len + 1) % 24], ts))
                };
                let mut buf = Vec::new();
                let done = stores[*store].update(KEYS[*key], t, &mut buf, |old, buf| {
                    let (b, ts) = grown(old.map(|o| (o.value, o.timestamp))).ok_or("zero")?;
                    buf.clear();
                    buf.extend_from_slice(&b);
                    Ok::<_, &str>(ts)
                })?;
                let old = models[*store]
                    .rows(Some(KEYS[*key]), Some(KEYS[*key]), t, t, false)
                    .into_iter()
                    .find(|r| r.0 == KEYS[*key])
                    .map(|r| (r.3, r.4));
                let new = grown(old.as_ref().map(|(b, ts)| (&b[..], *ts)));
                assert_eq!(done.is_ok(), new.is_some(), "{ctx}");
                if new.is_some() {
                    models[*store].put(KEYS[*key], t, new);
                }
            }
            Op::FetchOne { store, key, jitter } => {
                let t = time(step, *jitter);
                let got = plain(stores[*store].fetch_one(KEYS[*key], t)?.as_ref());
                let want = models[*store]
                    .rows(Some(KEYS[*key]), Some(KEYS[*key]), t, t, false)
                    .into_iter()
                    .find(|r| r.0 == KEYS[*key])
                    .map(|r| (r.3, r.4));
                assert_eq!(got, want, "{ctx}");
            }
            Op::Fetch {
                store,
                key,
                from,
                span,
                backward,
            } => {
                let (from, to) = (time(step, *from), time(step, *from) + span);
                let k = KEYS[*key];
                let it = if *backward {
                    stores[*store].backward_fetch(k, from, to)?
                } else {
                    stores[*store].fetch(k, from, to)?
                };
                let want: Vec<(i64, Vec<u8>)> = models[*store]
                    .rows(Some(k), Some(k), from, to, *backward)
                    .into_iter()
                    .filter(|r| r.0 == k)
                    .map(|r| (r.1, r.3))
                    .collect();
                assert_eq!(starts(it)?, want, "{ctx}");
            }
            Op::FetchRange {
                store,
                kf,
                kt,
                from,
                span,
                backward,
            } => {
                let (from, to) = (time(step, *from), time(step, *from) + span);
                let (kf, kt) = (kf.map(|k| KEYS[k]), kt.map(|k| KEYS[k]));
                let it = if *backward {
                    stores[*store].backward_fetch_range(kf, kt, from, to)?
                } else {
                    stores[*store].fetch_range(kf, kt, from, to)?
                };
                let want = if kf.zip(kt).is_some_and(|(f, z)| f > z) {
                    Vec::new()
                } else {
                    models[*store].rows(kf, kt, from, to, *backward)
                };
                assert_eq!(rows(it)?, want, "{ctx}");
            }
            Op::All { store, backward } => {
                let it = if *backward {
                    stores[*store].backward_all()?
                } else {
                    stores[*store].all()?
                };
                let want = models[*store].rows(None, None, 0, i64::MAX, *backward);
                assert_eq!(rows(it)?, want, "{ctx}");
            }
            Op::Flush { store } => stores[*store].flush()?,
            Op::Commit => {
                for store in &mut stores {
                    store.flush()?;
                }
                for store in &mut stores {
                    commit(store)?;
                }
            }
            Op::Resize(bytes) => cache.resize(*bytes),
        }
        // The budget holds after every call, and the accounting matches the entries.
        assert!(
            cache.size_bytes() <= cache.max_bytes(),
            "{ctx}: {} bytes over a budget of {}",
            cache.size_bytes(),
            cache.max_bytes()
        );
        assert_eq!(cache.size_bytes(), cache.recount_bytes(), "{ctx}");
        for s in 0..STORES {
            assert_eq!(
                stores[s].observed_stream_time(),
                models[s].observed,
                "{ctx}"
            );
            // Every forward's old value is what downstream saw last for its window.
            for (k, w, new, old) in take(&seen[s]) {
                assert_eq!(w.end - w.start, M_SIZE);
                let at = (k.clone(), w.start);
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
            let flushed = match op {
                Op::Commit => true,
                Op::Flush { store } => *store == s,
                _ => false,
            };
            if flushed {
                // Once flushed, downstream holds every live window with its latest value.
                let min_live = models[s].min_live();
                let live: BTreeMap<(Vec<u8>, i64), Value> = downstream[s]
                    .iter()
                    .filter(|((_, t), _)| *t >= min_live)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let want: BTreeMap<(Vec<u8>, i64), Value> = models[s]
                    .windows
                    .iter()
                    .filter(|((_, t), _)| *t >= min_live)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(live, want, "{ctx}: store {s} downstream");
            }
            if matches!(op, Op::Commit) {
                // And the applied store holds them too.
                let view = ReadOnlyWindowView::open(
                    backends[s].clone(),
                    &format!("s{s}"),
                    options.clone(),
                )?;
                assert_eq!(
                    rows(view.all()?)?,
                    models[s].rows(None, None, 0, i64::MAX, false),
                    "{ctx}: store {s} applied"
                );
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
    fn cached_window_stores_read_like_the_model_and_forward_a_consistent_change_stream(
        budget in 0usize..900,
        ops in prop::collection::vec(op(), 1..100),
    ) {
        run_model(budget, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
