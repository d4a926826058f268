//! The record cache against a plain model of the rules in its module docs.
//!
//! The model keeps each named cache as a `Vec` in least-recently-used order, with a second
//! `Vec` of its dirty keys in latest-update order, and reimplements the caching key-value
//! store over a plain map (committed and current, for aborts). Random sequences of puts,
//! deletes, gets, scans, flushes, commits, aborts and budget changes over several stores in
//! one thread cache must give exactly the model's results: every read, every forward (with
//! its old value, in order), the counted bytes, the number of entries and the counters.

mod common;

use common::CountingSink;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use freshet_state_store::{
    CacheStats, CachingKvStore, KeyValueStore, KvIter, KvStore, MemoryBackend, StateStore,
    ThreadCache, Timestamped,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

type Value = (Vec<u8>, i64);
/// A forwarded update: key, new value, old value.
type Fwd = (Vec<u8>, Option<Value>, Option<Value>);
type Forwards = Arc<Mutex<Vec<Fwd>>>;
/// A key and the value to write down.
type Flushed = Vec<(Vec<u8>, Option<Value>)>;

const STORES: usize = 3;

fn plain(v: Option<&Timestamped>) -> Option<Value> {
    v.map(|v| (v.value.to_vec(), v.timestamp))
}

fn entry_size(key: &[u8], value: &Option<Value>) -> usize {
    key.len() + value.as_ref().map_or(0, |v| v.0.len()) + ThreadCache::ENTRY_OVERHEAD_BYTES
}

// ---- the model ----

#[derive(Debug, Clone)]
struct Entry {
    key: Vec<u8>,
    value: Option<Value>,
    dirty: bool,
}

/// One named cache.
#[derive(Debug, Default)]
struct Named {
    /// Least recently used first.
    lru: Vec<Entry>,
    /// Dirty keys, least recently updated first.
    dirty: Vec<Vec<u8>>,
    /// Flushed by another store's eviction, not written down yet.
    parked: Flushed,
}

impl Named {
    fn bytes(&self) -> usize {
        self.lru.iter().map(|e| entry_size(&e.key, &e.value)).sum()
    }

    fn pos(&self, key: &[u8]) -> Option<usize> {
        self.lru.iter().position(|e| e.key == key)
    }

    fn flush_dirty(&mut self) -> Flushed {
        let mut out = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            let Some(i) = self.pos(&key) else { continue };
            self.lru[i].dirty = false;
            out.push((key, self.lru[i].value.clone()));
            if self.lru[i].value.is_none() {
                self.lru.remove(i);
            }
        }
        out
    }

    fn evict_one(&mut self, out: &mut Flushed) -> bool {
        if self.lru.is_empty() {
            return false;
        }
        let e = self.lru.remove(0);
        if e.dirty {
            self.dirty.retain(|k| *k != e.key);
            out.push((e.key, e.value));
            out.extend(self.flush_dirty());
        }
        true
    }
}

/// The thread cache.
#[derive(Debug)]
struct Cache {
    max: usize,
    named: Vec<Named>,
    stats: CacheStats,
}

impl Cache {
    fn size(&self) -> usize {
        self.named.iter().map(Named::bytes).sum()
    }

    fn entries(&self) -> usize {
        self.named.iter().map(|n| n.lru.len()).sum()
    }

    fn put(&mut self, s: usize, key: Vec<u8>, value: Option<Value>, dirty: bool) -> Flushed {
        self.stats.puts += 1;
        let c = &mut self.named[s];
        if let Some(i) = c.pos(&key) {
            c.lru.remove(i);
        }
        c.dirty.retain(|k| *k != key);
        if dirty {
            c.dirty.push(key.clone());
        }
        c.lru.push(Entry { key, value, dirty });
        let mut out = Vec::new();
        while self.size() > self.max {
            let mut flushed = Vec::new();
            if !self.named[s].evict_one(&mut flushed) {
                break;
            }
            self.count_eviction(&flushed);
            out.extend(flushed);
        }
        self.evict_round_robin();
        out
    }

    fn count_eviction(&mut self, flushed: &Flushed) {
        self.stats.evictions += 1;
        if !flushed.is_empty() {
            self.stats.flushes += 1;
        }
    }

    fn evict_round_robin(&mut self) {
        while self.size() > self.max {
            let mut any = false;
            for s in 0..self.named.len() {
                if self.size() <= self.max {
                    break;
                }
                let mut flushed = Vec::new();
                if self.named[s].evict_one(&mut flushed) {
                    any = true;
                    self.count_eviction(&flushed);
                    self.named[s].parked.extend(flushed);
                }
            }
            if !any {
                break;
            }
        }
    }

    fn get(&mut self, s: usize, key: &[u8]) -> Option<Option<Value>> {
        self.stats.gets += 1;
        let c = &mut self.named[s];
        let hit = match c.pos(key) {
            Some(i) => {
                let e = c.lru.remove(i);
                let v = e.value.clone();
                c.lru.push(e);
                Some(v)
            }
            None => c
                .parked
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
        };
        if hit.is_some() {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
        }
        hit
    }

    fn flush(&mut self, s: usize) -> Flushed {
        self.stats.flushes += 1;
        let c = &mut self.named[s];
        let mut out = std::mem::take(&mut c.parked);
        out.extend(c.flush_dirty());
        out
    }

    /// Cached (and parked) entries with keys in `[from, to]`, ascending.
    fn range(&self, s: usize, from: &[u8], to: &[u8]) -> Vec<(Vec<u8>, Option<Value>)> {
        let c = &self.named[s];
        let inside = |k: &[u8]| from <= k && k <= to;
        let mut merged: BTreeMap<Vec<u8>, Option<Value>> = BTreeMap::new();
        for (k, v) in c.parked.iter().filter(|(k, _)| inside(k)) {
            merged.insert(k.clone(), v.clone());
        }
        for e in c.lru.iter().filter(|e| inside(&e.key)) {
            merged.insert(e.key.clone(), e.value.clone());
        }
        merged.into_iter().collect()
    }
}

/// A caching key-value store over a plain map.
#[derive(Debug, Default)]
struct Store {
    current: BTreeMap<Vec<u8>, Value>,
    committed: BTreeMap<Vec<u8>, Value>,
    listener: bool,
    send_old_values: bool,
    forwards: Vec<Fwd>,
}

impl Store {
    fn write(&mut self, key: Vec<u8>, value: Option<Value>) {
        match value {
            Some(v) => self.current.insert(key, v),
            None => self.current.remove(&key),
        };
    }
}

#[derive(Debug)]
struct Model {
    cache: Cache,
    stores: Vec<Store>,
}

impl Model {
    fn write_down(&mut self, s: usize, entries: Flushed) {
        let st = &mut self.stores[s];
        for (key, new) in entries {
            if !st.listener {
                st.write(key, new);
                continue;
            }
            let old = if new.is_none() || st.send_old_values {
                st.current.get(&key).cloned()
            } else {
                None
            };
            if new.is_none() && old.is_none() {
                continue;
            }
            st.write(key.clone(), new.clone());
            let old = if st.send_old_values { old } else { None };
            st.forwards.push((key, new, old));
        }
    }

    fn drain(&mut self, s: usize) {
        let parked = std::mem::take(&mut self.cache.named[s].parked);
        self.write_down(s, parked);
    }

    fn get(&mut self, s: usize, key: &[u8]) -> Option<Value> {
        self.drain(s);
        if self.cache.max == 0 {
            return self.stores[s].current.get(key).cloned();
        }
        if let Some(hit) = self.cache.get(s, key) {
            return hit;
        }
        let found = self.stores[s].current.get(key).cloned();
        if found.is_some() {
            let flushed = self.cache.put(s, key.to_vec(), found.clone(), false);
            self.write_down(s, flushed);
        }
        found
    }

    fn put(&mut self, s: usize, key: Vec<u8>, value: Option<Value>) {
        self.drain(s);
        let flushed = if self.cache.max > 0 {
            self.cache.put(s, key, value, true)
        } else {
            vec![(key, value)]
        };
        self.write_down(s, flushed);
    }

    fn delete(&mut self, s: usize, key: &[u8]) -> Option<Value> {
        let old = self.get(s, key);
        self.put(s, key.to_vec(), None);
        old
    }

    fn scan(&mut self, s: usize, from: &[u8], to: &[u8], reverse: bool) -> Vec<(Vec<u8>, Value)> {
        self.drain(s);
        if from > to {
            return Vec::new();
        }
        let mut merged: BTreeMap<Vec<u8>, Value> = self.stores[s]
            .current
            .range(from.to_vec()..=to.to_vec())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in self.cache.range(s, from, to) {
            match v {
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        let mut out: Vec<(Vec<u8>, Value)> = merged.into_iter().collect();
        if reverse {
            out.reverse();
        }
        out
    }

    fn flush(&mut self, s: usize) {
        let entries = self.cache.flush(s);
        self.write_down(s, entries);
    }

    fn commit(&mut self) {
        for s in 0..STORES {
            self.flush(s);
        }
        for st in &mut self.stores {
            st.committed = st.current.clone();
        }
    }

    fn abort(&mut self, s: usize) {
        self.cache.named[s] = Named::default();
        let st = &mut self.stores[s];
        st.current = st.committed.clone();
    }

    fn resize(&mut self, bytes: usize) {
        self.cache.max = bytes;
        self.cache.evict_round_robin();
    }
}

// ---- the real thing ----

fn collect(iter: KvIter<'_>) -> TestResult<Vec<(Vec<u8>, Value)>> {
    let mut out = Vec::new();
    for item in iter {
        let (k, v) = item?;
        out.push((k.to_vec(), (v.value.to_vec(), v.timestamp)));
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u8, Option<(u8, i64)>),
    Delete(usize, u8),
    Get(usize, u8),
    /// A read-modify-write (`CachingKvStore::update`), the model's get then put; a zero
    /// byte makes the function fail (the model's get alone).
    Update(usize, u8, (u8, i64)),
    Range(usize, u8, u8, bool),
    All(usize, bool),
    Flush(usize),
    /// Flushes every store, then commits each (commit steps 1–4).
    Commit,
    /// One store's transaction is aborted: its cache is dropped, its store rolls back.
    Abort(usize),
    Resize(usize),
}

fn op(keys: u8) -> impl Strategy<Value = Op> {
    let s = 0..STORES;
    let k = 0u8..keys;
    prop_oneof![
        12 => (s.clone(), k.clone(), prop::option::weighted(0.85, (any::<u8>(), 0i64..100)))
            .prop_map(|(s, k, v)| Op::Put(s, k, v)),
        2 => (s.clone(), k.clone()).prop_map(|(s, k)| Op::Delete(s, k)),
        5 => (s.clone(), k.clone()).prop_map(|(s, k)| Op::Get(s, k)),
        8 => (s.clone(), k.clone(), (any::<u8>().prop_map(|b| if b < 16 { 0 } else { b }), 0i64..100))
            .prop_map(|(s, k, v)| Op::Update(s, k, v)),
        2 => (s.clone(), k.clone(), k, any::<bool>()).prop_map(|(s, a, b, r)| Op::Range(s, a, b, r)),
        1 => (s.clone(), any::<bool>()).prop_map(|(s, r)| Op::All(s, r)),
        2 => s.clone().prop_map(Op::Flush),
        2 => Just(Op::Commit),
        1 => s.prop_map(Op::Abort),
        1 => (0usize..1200).prop_map(Op::Resize),
    ]
}

fn key(k: u8) -> Vec<u8> {
    // Keys of different lengths and contents, so entries differ in size and order; some
    // too long to be kept inside the cache's slots.
    let len = if k % 7 == 3 {
        40
    } else {
        1 + usize::from(k % 5)
    };
    let mut key = vec![b'k'; len];
    key.push(k);
    key
}

fn value(v: (u8, i64)) -> Value {
    (vec![v.0; usize::from(v.0 % 7)], v.1)
}

/// What `Op::Update` makes of a key's value: one byte longer (past the cache's inline
/// room for long ones, then back to short), the later timestamp; `None` for a zero byte.
fn updated(old: Option<(&[u8], i64)>, v: (u8, i64)) -> Option<Value> {
    if v.0 == 0 {
        return None;
    }
    let (len, ts) = old.map_or((0, v.1), |(b, t)| (b.len(), t.max(v.1)));
    Some((vec![v.0; (len + 1) % 24], ts))
}

fn stamped(v: &Option<Value>) -> Option<Timestamped> {
    v.as_ref().map(|(b, ts)| Timestamped {
        value: Bytes::copy_from_slice(b),
        timestamp: *ts,
    })
}

fn run(budget: usize, listeners: &[(bool, bool)], ops: &[Op]) -> TestResult {
    let cache = ThreadCache::new(budget);
    let mut stores = Vec::new();
    let mut seen: Vec<Forwards> = Vec::new();
    let mut model = Model {
        cache: Cache {
            max: budget,
            named: (0..STORES).map(|_| Named::default()).collect(),
            stats: CacheStats::default(),
        },
        stores: Vec::new(),
    };
    for (i, (listener, send_old_values)) in listeners.iter().copied().enumerate() {
        let inner = KvStore::open(&format!("s{i}"), Arc::new(MemoryBackend::new()), None)?;
        let mut store = CachingKvStore::new(inner, &cache, "0_0")?;
        let forwards = Forwards::default();
        if listener {
            let sink = forwards.clone();
            store.set_flush_listener(
                move |k: &[u8], new: Option<&Timestamped>, old: Option<&Timestamped>| {
                    if let Ok(mut s) = sink.lock() {
                        s.push((k.to_vec(), plain(new), plain(old)));
                    }
                },
                send_old_values,
            );
        }
        stores.push(store);
        seen.push(forwards);
        model.stores.push(Store {
            listener,
            send_old_values,
            ..Store::default()
        });
    }
    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        match op {
            Op::Put(s, k, val) => {
                let val = val.map(value);
                stores[*s].put(Bytes::from(key(*k)), stamped(&val))?;
                model.put(*s, key(*k), val);
            }
            Op::Delete(s, k) => {
                let got = plain(stores[*s].delete(&key(*k))?.as_ref());
                assert_eq!(got, model.delete(*s, &key(*k)), "{ctx}");
            }
            Op::Get(s, k) => {
                let got = plain(stores[*s].get(&key(*k))?.as_ref());
                assert_eq!(got, model.get(*s, &key(*k)), "{ctx}");
            }
            Op::Update(s, k, v) => {
                let mut buf = Vec::new();
                let done = stores[*s].update(&key(*k), &mut buf, |old, buf| {
                    let new = updated(old.map(|t| (t.value, t.timestamp)), *v).ok_or("zero")?;
                    buf.clear();
                    buf.extend_from_slice(&new.0);
                    Ok::<_, &str>(new.1)
                })?;
                let old = model.get(*s, &key(*k));
                let new = updated(old.as_ref().map(|(b, t)| (&b[..], *t)), *v);
                assert_eq!(done.is_ok(), new.is_some(), "{ctx}");
                if new.is_some() {
                    model.put(*s, key(*k), new);
                }
            }
            Op::Range(s, a, b, reverse) => {
                let (from, to) = (key(*a), key(*b));
                let got = if *reverse {
                    collect(stores[*s].reverse_range(&from, &to)?)?
                } else {
                    collect(stores[*s].range(&from, &to)?)?
                };
                assert_eq!(got, model.scan(*s, &from, &to, *reverse), "{ctx}");
            }
            Op::All(s, reverse) => {
                let got = if *reverse {
                    collect(stores[*s].reverse_all()?)?
                } else {
                    collect(stores[*s].all()?)?
                };
                let want = model.scan(*s, &[], &[0xff; 8], *reverse);
                assert_eq!(got, want, "{ctx}");
            }
            Op::Flush(s) => {
                stores[*s].flush()?;
                model.flush(*s);
            }
            Op::Commit => {
                for store in &mut stores {
                    store.flush()?;
                }
                for store in &mut stores {
                    store.send_changelog(&mut CountingSink::default())?;
                    store.committed();
                    store.apply()?;
                }
                model.commit();
            }
            Op::Abort(s) => {
                stores[*s].abort();
                model.abort(*s);
            }
            Op::Resize(bytes) => {
                cache.resize(*bytes);
                model.resize(*bytes);
            }
        }
        for (s, st) in model.stores.iter_mut().enumerate() {
            let got = seen[s]
                .lock()
                .map(|mut f| std::mem::take(&mut *f))
                .unwrap_or_default();
            assert_eq!(
                got,
                std::mem::take(&mut st.forwards),
                "{ctx}: store {s} forwards"
            );
        }
        assert_eq!(cache.max_bytes(), model.cache.max, "{ctx}");
        assert_eq!(
            cache.size_bytes(),
            model.cache.size(),
            "{ctx}: counted bytes"
        );
        assert_eq!(cache.recount_bytes(), model.cache.size(), "{ctx}: recount");
        assert_eq!(cache.num_entries(), model.cache.entries(), "{ctx}: entries");
        assert_eq!(cache.stats(), model.cache.stats, "{ctx}: stats");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    /// A small budget and few keys: evictions, flushes by eviction and parked entries.
    #[test]
    fn the_thread_cache_behaves_exactly_as_the_model_under_pressure(
        budget in 0usize..900,
        listeners in prop::collection::vec((prop::bool::weighted(0.85), any::<bool>()), STORES),
        ops in prop::collection::vec(op(10), 1..150),
    ) {
        run(budget, &listeners, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    /// A roomy budget and more keys: long dirty and LRU lists, updates in place.
    #[test]
    fn the_thread_cache_behaves_exactly_as_the_model_with_room(
        budget in 900usize..6000,
        listeners in prop::collection::vec((prop::bool::weighted(0.85), any::<bool>()), STORES),
        ops in prop::collection::vec(op(40), 1..250),
    ) {
        run(budget, &listeners, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
