//! The record cache: deduplication, forward order, old values, eviction within the budget,
//! the disabled cache, and the write-buffer soft limit.

mod common;

use common::{commit, CountingSink};

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use freshet_state_store::{
    CachingKvStore, KeyValueStore, KvIter, KvStore, MemoryBackend, ReadOnlyKeyValueView,
    StateStore, ThreadCache, Timestamped, WriteBufferBudget,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

type Value = (Vec<u8>, i64);
/// A forwarded update: key, new value, old value.
type Fwd = (Vec<u8>, Option<Value>, Option<Value>);
type Forwards = Arc<Mutex<Vec<Fwd>>>;

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn plain(v: Option<&Timestamped>) -> Option<Value> {
    v.map(|v| (v.value.to_vec(), v.timestamp))
}

fn fwd(k: &str, new: Option<(&str, i64)>, old: Option<(&str, i64)>) -> Fwd {
    let f = |x: Option<(&str, i64)>| x.map(|(s, t)| (s.as_bytes().to_vec(), t));
    (k.as_bytes().to_vec(), f(new), f(old))
}

/// A caching store over a fresh in-memory store, forwarding into the returned list.
fn caching(
    cache: &ThreadCache,
    name: &str,
    send_old_values: bool,
) -> TestResult<(CachingKvStore<KvStore>, Forwards)> {
    let inner = KvStore::open(name, Arc::new(MemoryBackend::new()), None)?;
    let mut store = CachingKvStore::new(inner, cache, "0_0")?;
    let seen = listen(&mut store, send_old_values);
    Ok((store, seen))
}

fn listen(store: &mut CachingKvStore<KvStore>, send_old_values: bool) -> Forwards {
    let seen: Forwards = Arc::default();
    let sink = seen.clone();
    store.set_flush_listener(
        move |k: &[u8], new: Option<&Timestamped>, old: Option<&Timestamped>| {
            if let Ok(mut s) = sink.lock() {
                s.push((k.to_vec(), plain(new), plain(old)));
            }
        },
        send_old_values,
    );
    seen
}

fn take(seen: &Forwards) -> Vec<Fwd> {
    seen.lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default()
}

fn collect(iter: KvIter<'_>) -> TestResult<Vec<(Vec<u8>, Value)>> {
    let mut out = Vec::new();
    for item in iter {
        let (k, v) = item?;
        out.push((k.to_vec(), (v.value.to_vec(), v.timestamp)));
    }
    Ok(out)
}

#[test]
fn repeated_updates_of_a_key_are_forwarded_once_with_the_latest_value_and_timestamp() -> TestResult
{
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    store.put(Bytes::from("ann"), v("1", 10))?;
    store.put(Bytes::from("ann"), v("2", 30))?;
    store.put(Bytes::from("ann"), v("3", 20))?;
    assert!(take(&seen).is_empty());
    store.flush()?;
    assert_eq!(take(&seen), vec![fwd("ann", Some(("3", 20)), None)]);
    store.flush()?;
    assert!(take(&seen).is_empty(), "a second flush has nothing new");
    Ok(())
}

#[test]
fn a_flush_forwards_in_the_order_of_each_keys_latest_update_not_key_order() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    for (k, val) in [("c", "1"), ("a", "1"), ("b", "1"), ("c", "2"), ("a", "2")] {
        store.put(Bytes::from(k), v(val, 0))?;
    }
    store.flush()?;
    let keys: Vec<Vec<u8>> = take(&seen).into_iter().map(|f| f.0).collect();
    assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec(), b"a".to_vec()]);
    Ok(())
}

#[test]
fn old_values_are_the_store_values_before_the_write_down() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", true)?;
    store.put(Bytes::from("a"), v("1", 1))?;
    store.flush()?;
    store.put(Bytes::from("a"), v("2", 2))?;
    store.put(Bytes::from("a"), v("3", 3))?;
    store.put(Bytes::from("b"), v("9", 4))?;
    store.delete(b"b")?; // never reached the store: nothing to forward
    store.flush()?;
    store.delete(b"a")?;
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", Some(("1", 1)), None),
            fwd("a", Some(("3", 3)), Some(("1", 1))),
            fwd("a", None, Some(("3", 3))),
        ]
    );
    Ok(())
}

#[test]
fn without_send_old_values_the_listener_gets_no_old_value() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    store.put(Bytes::from("a"), v("1", 1))?;
    store.flush()?;
    store.put(Bytes::from("a"), v("2", 2))?;
    store.flush()?;
    store.delete(b"a")?;
    store.flush()?;
    assert_eq!(
        take(&seen),
        vec![
            fwd("a", Some(("1", 1)), None),
            fwd("a", Some(("2", 2)), None),
            fwd("a", None, None),
        ]
    );
    Ok(())
}

#[test]
fn flush_writes_dirty_entries_down_to_the_store() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let backend = Arc::new(MemoryBackend::new());
    let inner = KvStore::open("counts", backend.clone(), None)?;
    let mut store = CachingKvStore::new(inner, &cache, "0_0")?;
    store.put(Bytes::from("a"), v("1", 1))?;
    assert_eq!(store.write_buffer_bytes(), 0, "still only in the cache");
    store.flush()?;
    assert!(store.write_buffer_bytes() > 0, "written down to the store");
    commit(&mut store)?;
    let view = ReadOnlyKeyValueView::open(backend, "counts")?;
    assert_eq!(view.get(b"a")?, v("1", 1));
    Ok(())
}

#[test]
fn reads_see_the_cache_first_and_scans_merge_cache_and_store() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, _seen) = caching(&cache, "counts", false)?;
    for k in ["a", "b", "c", "d"] {
        store.put(Bytes::from(k), v("old", 0))?;
    }
    store.flush()?;
    store.put(Bytes::from("b"), v("new", 1))?;
    store.delete(b"c")?;
    store.put(Bytes::from("e"), v("new", 1))?;
    assert_eq!(store.get(b"b")?, v("new", 1));
    assert_eq!(
        store.get(b"c")?,
        None,
        "a cached delete hides the store's value"
    );
    let all = collect(store.all()?)?;
    let keys: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![b"a" as &[u8], b"b", b"d", b"e"]);
    assert_eq!(all[1].1, (b"new".to_vec(), 1));
    let rev: Vec<Vec<u8>> = collect(store.reverse_range(b"b", b"d")?)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(rev, vec![b"d".to_vec(), b"b".to_vec()]);
    assert!(collect(store.range(b"d", b"a")?)?.is_empty(), "from > to");
    Ok(())
}

#[test]
fn evicting_a_dirty_entry_flushes_its_store_with_the_evicted_entry_first() -> TestResult {
    // Room for exactly three entries of a one-byte key and a one-byte value.
    let entry = 2 + ThreadCache::ENTRY_OVERHEAD_BYTES;
    let cache = ThreadCache::new(3 * entry);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    for k in ["a", "b", "c"] {
        store.put(Bytes::from(k), v("1", 0))?;
    }
    store.get(b"a")?; // a hit makes `a` recently used: `b` is now the eldest
    store.put(Bytes::from("a"), v("2", 0))?;
    assert!(take(&seen).is_empty());
    store.put(Bytes::from("d"), v("1", 0))?;
    let keys: Vec<Vec<u8>> = take(&seen).into_iter().map(|f| f.0).collect();
    assert_eq!(
        keys,
        vec![b"b".to_vec(), b"c".to_vec(), b"a".to_vec(), b"d".to_vec()],
        "the evicted entry, then the rest in latest-update order"
    );
    assert_eq!(cache.size_bytes(), 3 * entry);
    assert_eq!(cache.stats().evictions, 1);
    // The others stay cached, clean: evicting them later forwards nothing.
    store.put(Bytes::from("e"), v("1", 0))?;
    assert!(take(&seen).is_empty());
    Ok(())
}

#[test]
fn an_entry_larger_than_the_budget_goes_straight_down() -> TestResult {
    let cache = ThreadCache::new(ThreadCache::ENTRY_OVERHEAD_BYTES + 4);
    let (mut store, seen) = caching(&cache, "counts", false)?;
    store.put(Bytes::from("k"), v("too large", 5))?;
    assert_eq!(take(&seen), vec![fwd("k", Some(("too large", 5)), None)]);
    assert_eq!(cache.size_bytes(), 0);
    assert_eq!(store.get(b"k")?, v("too large", 5));
    Ok(())
}

#[test]
fn a_disabled_cache_forwards_every_update_at_once() -> TestResult {
    let zero = ThreadCache::new(0);
    let (mut by_budget, seen_budget) = caching(&zero, "counts", true)?;
    let inner = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
    let mut by_choice = CachingKvStore::disabled(inner);
    let seen_choice = listen(&mut by_choice, true);
    assert!(!by_budget.is_caching() && !by_choice.is_caching());
    for (store, seen) in [
        (&mut by_budget, &seen_budget),
        (&mut by_choice, &seen_choice),
    ] {
        store.put(Bytes::from("a"), v("1", 1))?;
        assert_eq!(take(seen), vec![fwd("a", Some(("1", 1)), None)]);
        store.put(Bytes::from("a"), v("2", 2))?;
        assert_eq!(take(seen), vec![fwd("a", Some(("2", 2)), Some(("1", 1)))]);
        store.delete(b"a")?;
        assert_eq!(take(seen), vec![fwd("a", None, Some(("2", 2)))]);
        assert!(store.write_buffer_bytes() > 0);
        store.flush()?;
        assert!(take(seen).is_empty());
    }
    assert_eq!(zero.size_bytes(), 0);
    Ok(())
}

#[test]
fn sending_the_changelog_before_flushing_the_cache_is_refused() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, _seen) = caching(&cache, "counts", false)?;
    store.put(Bytes::from("a"), v("1", 1))?;
    let err = store
        .send_changelog(&mut CountingSink::default())
        .expect_err("unflushed updates would miss the commit");
    assert!(err.to_string().contains("flush"), "{err}");
    store.flush()?;
    commit(&mut store)?;
    Ok(())
}

#[test]
fn an_abort_drops_the_cached_values_of_the_aborted_writes() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut store, _seen) = caching(&cache, "counts", false)?;
    store.put(Bytes::from("a"), v("1", 1))?;
    store.flush()?;
    commit(&mut store)?;
    store.put(Bytes::from("a"), v("2", 2))?;
    store.flush()?;
    store.send_changelog(&mut CountingSink::default())?;
    store.abort();
    assert_eq!(cache.size_bytes(), 0);
    assert_eq!(store.get(b"a")?, v("1", 1));
    Ok(())
}

#[test]
fn shrinking_the_budget_evicts_across_stores_and_each_store_forwards_at_its_next_call() -> TestResult
{
    let cache = ThreadCache::new(1 << 20);
    let (mut a, seen_a) = caching(&cache, "a", false)?;
    let (mut b, seen_b) = caching(&cache, "b", false)?;
    for k in ["1", "2", "3"] {
        a.put(Bytes::from(k), v("x", 0))?;
        b.put(Bytes::from(k), v("y", 0))?;
    }
    let entry = 2 + ThreadCache::ENTRY_OVERHEAD_BYTES;
    cache.resize(2 * entry);
    assert!(cache.size_bytes() <= 2 * entry);
    assert!(take(&seen_a).is_empty() && take(&seen_b).is_empty());
    assert_eq!(
        a.get(b"1")?,
        v("x", 0),
        "the store reads its parked updates"
    );
    assert_eq!(take(&seen_a).len(), 3);
    b.flush()?;
    assert_eq!(take(&seen_b).len(), 3);
    assert!(cache.size_bytes() <= 2 * entry);
    Ok(())
}

#[test]
fn closing_or_dropping_a_store_returns_its_bytes_to_the_budget() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (mut a, seen) = caching(&cache, "a", false)?;
    let (mut b, _) = caching(&cache, "b", false)?;
    a.put(Bytes::from("k"), v("1", 0))?;
    b.put(Bytes::from("k"), v("1", 0))?;
    let inner = a.close()?;
    assert_eq!(take(&seen).len(), 1, "close flushes");
    assert!(inner.write_buffer_bytes() > 0);
    assert_eq!(
        cache.size_bytes(),
        1 + 1 + ThreadCache::ENTRY_OVERHEAD_BYTES
    );
    drop(b);
    assert_eq!(cache.size_bytes(), 0);
    let inner = KvStore::open("a", Arc::new(MemoryBackend::new()), None)?;
    CachingKvStore::new(inner, &cache, "0_0")?;
    Ok(())
}

#[test]
fn one_named_cache_per_task_and_store() -> TestResult {
    let cache = ThreadCache::new(1 << 20);
    let (_a, _) = caching(&cache, "counts", false)?;
    let again = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
    assert!(CachingKvStore::new(again, &cache, "0_0").is_err());
    let other_task = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
    CachingKvStore::new(other_task, &cache, "0_1")?;
    assert_eq!(
        ThreadCache::per_thread(ThreadCache::DEFAULT_MAX_BYTES, 4),
        2_621_440
    );
    Ok(())
}

#[test]
fn the_write_buffer_budget_asks_for_a_commit_past_its_soft_limit() -> TestResult {
    let mut a = KvStore::open("a", Arc::new(MemoryBackend::new()), None)?;
    let mut b = KvStore::open("b", Arc::new(MemoryBackend::new()), None)?;
    assert_eq!(WriteBufferBudget::default().max_bytes(), 64 << 20);
    let budget = WriteBufferBudget::new(300);
    a.put(Bytes::from(vec![1u8; 60]), v("x", 0))?;
    b.put(Bytes::from(vec![2u8; 60]), v("x", 0))?;
    let stores: [&dyn StateStore; 2] = [&a, &b];
    let used = budget.used(stores);
    assert_eq!(used, a.write_buffer_bytes() + b.write_buffer_bytes());
    assert!(!budget.should_commit(stores), "{used} bytes");
    b.put(Bytes::from(vec![3u8; 60]), v("x", 0))?;
    assert!(budget.should_commit([&a as &dyn StateStore, &b]));
    commit(&mut a)?;
    commit(&mut b)?;
    assert!(!budget.should_commit([&a, &b]));
    Ok(())
}

// ---- the model test: many stores, a small budget ----

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u8, Option<(u8, i64)>),
    Delete(usize, u8),
    Get(usize, u8),
    Range(usize, u8, u8),
    ReverseAll(usize),
    Flush(usize),
    /// Flushes every store, then commits each (commit steps 1–4).
    Commit,
    Resize(usize),
}

const STORES: usize = 4;

fn op() -> impl Strategy<Value = Op> {
    let s = 0..STORES;
    let k = 0u8..8;
    prop_oneof![
        10 => (s.clone(), k.clone(), prop::option::weighted(0.85, (any::<u8>(), 0i64..100)))
            .prop_map(|(s, k, v)| Op::Put(s, k, v)),
        2 => (s.clone(), k.clone()).prop_map(|(s, k)| Op::Delete(s, k)),
        4 => (s.clone(), k.clone()).prop_map(|(s, k)| Op::Get(s, k)),
        2 => (s.clone(), k.clone(), k).prop_map(|(s, a, b)| Op::Range(s, a, b)),
        1 => s.clone().prop_map(Op::ReverseAll),
        2 => s.prop_map(Op::Flush),
        2 => Just(Op::Commit),
        1 => (0usize..700).prop_map(Op::Resize),
    ]
}

fn key(k: u8) -> Vec<u8> {
    // Keys of different lengths, so entries differ in size.
    vec![b'k'; 1 + usize::from(k)]
}

fn value(v: (u8, i64)) -> Timestamped {
    Timestamped {
        value: Bytes::from(vec![v.0; usize::from(v.0 % 7)]),
        timestamp: v.1,
    }
}

fn run_model(budget: usize, ops: &[Op]) -> TestResult {
    let cache = ThreadCache::new(budget);
    let mut stores = Vec::new();
    let mut seen = Vec::new();
    let mut backends = Vec::new();
    for i in 0..STORES {
        let backend = Arc::new(MemoryBackend::new());
        let inner = KvStore::open(&format!("s{i}"), backend.clone(), None)?;
        let mut store = CachingKvStore::new(inner, &cache, "0_0")?;
        seen.push(listen(&mut store, true));
        stores.push(store);
        backends.push(backend);
    }
    // What reads must see, and what downstream has seen, per store.
    let mut view: Vec<BTreeMap<Vec<u8>, Value>> = vec![BTreeMap::new(); STORES];
    let mut downstream: Vec<BTreeMap<Vec<u8>, Value>> = vec![BTreeMap::new(); STORES];
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put(s, k, val) => {
                let val = val.map(value);
                stores[*s].put(Bytes::from(key(*k)), val.clone())?;
                match val {
                    Some(v) => view[*s].insert(key(*k), (v.value.to_vec(), v.timestamp)),
                    None => view[*s].remove(&key(*k)),
                };
            }
            Op::Delete(s, k) => {
                let old = stores[*s].delete(&key(*k))?;
                let want = view[*s].remove(&key(*k));
                if plain(old.as_ref()) != want {
                    return Err(format!("step {step} {op:?}: delete returned {old:?}").into());
                }
            }
            Op::Get(s, k) => {
                let got = plain(stores[*s].get(&key(*k))?.as_ref());
                if got != view[*s].get(&key(*k)).cloned() {
                    return Err(format!("step {step} {op:?}: got {got:?}").into());
                }
            }
            Op::Range(s, a, b) => {
                let got = collect(stores[*s].range(&key(*a), &key(*b))?)?;
                let want: Vec<(Vec<u8>, Value)> = if a <= b {
                    view[*s]
                        .range(key(*a)..=key(*b))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                } else {
                    Vec::new()
                };
                if got != want {
                    return Err(format!("step {step} {op:?}: got {got:?}, want {want:?}").into());
                }
            }
            Op::ReverseAll(s) => {
                let got = collect(stores[*s].reverse_all()?)?;
                let want: Vec<(Vec<u8>, Value)> = view[*s]
                    .iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if got != want {
                    return Err(format!("step {step} {op:?}: got {got:?}, want {want:?}").into());
                }
            }
            Op::Flush(s) => stores[*s].flush()?,
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
        if cache.size_bytes() > cache.max_bytes() {
            return Err(format!(
                "step {step} {op:?}: {} bytes cached over a budget of {}",
                cache.size_bytes(),
                cache.max_bytes()
            )
            .into());
        }
        if cache.size_bytes() != cache.recount_bytes() {
            return Err(format!(
                "step {step} {op:?}: counted {} bytes, entries hold {}",
                cache.size_bytes(),
                cache.recount_bytes()
            )
            .into());
        }
        // Every forward's old value is what downstream saw last for the key.
        for s in 0..STORES {
            for (k, new, old) in take(&seen[s]) {
                if old != downstream[s].get(&k).cloned() {
                    return Err(format!(
                        "step {step} {op:?}: store {s} forwarded {k:?} with old {old:?}, \
                         downstream had {:?}",
                        downstream[s].get(&k)
                    )
                    .into());
                }
                if new.is_none() && old.is_none() {
                    return Err(format!("step {step}: forwarded a no-op delete of {k:?}").into());
                }
                match new {
                    Some(n) => downstream[s].insert(k, n),
                    None => downstream[s].remove(&k),
                };
            }
            if matches!(op, Op::Commit) && downstream[s] != view[s] {
                return Err(format!(
                    "step {step}: after a commit store {s}'s downstream {:?} differs from {:?}",
                    downstream[s], view[s]
                )
                .into());
            }
        }
        if matches!(op, Op::Commit) {
            for (s, backend) in backends.iter().enumerate() {
                let stored =
                    collect(ReadOnlyKeyValueView::open(backend.clone(), &format!("s{s}"))?.all()?)?;
                let want: Vec<(Vec<u8>, Value)> = view[s]
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if stored != want {
                    return Err(format!("step {step}: store {s} holds {stored:?}").into());
                }
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
    fn the_cache_never_exceeds_its_budget_and_forwards_a_consistent_change_stream(
        budget in 0usize..900,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run_model(budget, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn a_budget_past_the_largest_is_capped_to_it() -> TestResult {
    // The cap keeps every named cache's slot indexes within 32 bits.
    let cache = ThreadCache::new(usize::MAX);
    assert_eq!(cache.max_bytes(), ThreadCache::MAX_BYTES);
    cache.resize(ThreadCache::MAX_BYTES + 1);
    assert_eq!(cache.max_bytes(), ThreadCache::MAX_BYTES);
    cache.resize(1 << 20);
    assert_eq!(cache.max_bytes(), 1 << 20);
    assert!(ThreadCache::MAX_BYTES / ThreadCache::ENTRY_OVERHEAD_BYTES < u32::MAX as usize);
    // A cache that large still caches and forwards as any other.
    let (mut store, seen) = caching(&cache, "capped", false)?;
    store.put(Bytes::from("k"), v("1", 1))?;
    store.put(Bytes::from("k"), v("2", 2))?;
    store.flush()?;
    assert_eq!(take(&seen), vec![fwd("k", Some(("2", 2)), None)]);
    Ok(())
}
