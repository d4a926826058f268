//! Model test of the key-value store: random operations — writes, reads, scans, commits,
//! aborts and restarts — on the memory and the sled backend (with applies inline, and in
//! the background as the runtime runs them: reads meanwhile), checked after every step
//! against a `BTreeMap` of committed state and one of committed plus uncommitted state.
//!
//! Keys come from a tiny alphabet with `0x00` and `0xff`, so keys are often prefixes of each
//! other and prefix scans hit the all-`0xff` edge (no upper bound).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    Applies, Backend, ChangelogPartition, KeyValueStore, KvStore, MemoryBackend, SledBackend,
    StateStore, Timestamped, Tree,
};
use proptest::prelude::*;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

type Key = Vec<u8>;
type Value = (Vec<u8>, i64);

#[derive(Debug, Clone)]
enum Op {
    Put(Key, Option<Value>),
    Delete(Key),
    PutIfAbsent(Key, Value),
    PutAll(Vec<(Key, Option<Value>)>),
    Get(Key),
    Range(Key, Key),
    ReverseRange(Key, Key),
    PrefixScan(Key),
    All,
    ReverseAll,
    /// Sends the write buffer inside a transaction and commits it; applies to the backend
    /// unless `apply` is false (as if the process stopped between commit and apply: the
    /// writes stay in the committed overlay until the next apply or a restart).
    Commit {
        apply: bool,
    },
    /// Aborts; with `sent`, after the writes were sent into the (then aborted) transaction.
    Abort {
        sent: bool,
    },
    /// Drops the store (and the backend), reopens it and restores from the changelog.
    Restart,
}

fn key() -> impl Strategy<Value = Key> {
    prop::collection::vec(
        prop::sample::select(vec![0x00u8, 0x01, b'a', b'b', 0xfe, 0xff]),
        0..4,
    )
}

fn value() -> impl Strategy<Value = Value> {
    (prop::collection::vec(any::<u8>(), 0..6), -5i64..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (key(), prop::option::weighted(0.85, value())).prop_map(|(k, v)| Op::Put(k, v)),
        3 => key().prop_map(Op::Delete),
        2 => (key(), value()).prop_map(|(k, v)| Op::PutIfAbsent(k, v)),
        1 => prop::collection::vec((key(), prop::option::of(value())), 0..5).prop_map(Op::PutAll),
        3 => key().prop_map(Op::Get),
        2 => (key(), key()).prop_map(|(a, b)| Op::Range(a, b)),
        2 => (key(), key()).prop_map(|(a, b)| Op::ReverseRange(a, b)),
        2 => key().prop_map(Op::PrefixScan),
        1 => Just(Op::All),
        1 => Just(Op::ReverseAll),
        3 => any::<bool>().prop_map(|apply| Op::Commit { apply }),
        1 => any::<bool>().prop_map(|sent| Op::Abort { sent }),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    Sled,
    /// sled, the store's applies running on a thread of their own.
    SledBackground,
}

/// sled offering background applies, registered in `applies`.
#[derive(Debug)]
struct Background {
    inner: SledBackend,
    applies: Arc<Applies>,
}

impl Backend for Background {
    fn open_tree(&self, name: &str) -> freshet_state_store::Result<Arc<dyn Tree>> {
        self.inner.open_tree(name)
    }
    fn drop_tree(&self, name: &str) -> freshet_state_store::Result<bool> {
        self.inner.drop_tree(name)
    }
    fn tree_names(&self) -> freshet_state_store::Result<Vec<String>> {
        self.inner.tree_names()
    }
    fn is_persistent(&self) -> bool {
        true
    }
    fn applies(&self) -> Option<Arc<Applies>> {
        Some(self.applies.clone())
    }
}

fn changelog() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: "app-model-changelog".into(),
        partition: 0,
    })
}

fn open_backend(kind: Kind, dir: &Path, applies: &Arc<Applies>) -> TestResult<Arc<dyn Backend>> {
    Ok(match kind {
        Kind::Memory => Arc::new(MemoryBackend::new()),
        Kind::Sled => Arc::new(SledBackend::open(dir, 1 << 20)?),
        Kind::SledBackground => Arc::new(Background {
            inner: SledBackend::open(dir, 1 << 20)?,
            applies: applies.clone(),
        }),
    })
}

fn ts(v: &Value) -> Timestamped {
    Timestamped {
        value: Bytes::copy_from_slice(&v.0),
        timestamp: v.1,
    }
}

fn untimestamped(v: Option<Timestamped>) -> Option<Value> {
    v.map(|v| (v.value.to_vec(), v.timestamp))
}

fn check<T: PartialEq + std::fmt::Debug>(step: usize, op: &Op, got: T, want: T) -> TestResult {
    if got != want {
        return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}").into());
    }
    Ok(())
}

fn collect(iter: freshet_state_store::KvIter<'_>) -> TestResult<Vec<(Key, Value)>> {
    let mut out = Vec::new();
    for item in iter {
        let (k, v) = item?;
        out.push((k.to_vec(), (v.value.to_vec(), v.timestamp)));
    }
    Ok(out)
}

/// The model: committed state, and what reads see (committed plus the write buffer).
#[derive(Debug, Default)]
struct Model {
    committed: BTreeMap<Key, Value>,
    current: BTreeMap<Key, Value>,
    /// Keys written since the last commit or abort (one changelog record each at commit).
    buffered: BTreeSet<Key>,
    /// Committed changelog records (aborted ones excluded).
    committed_records: u64,
    /// Committed records not applied to the backend yet.
    unapplied_records: u64,
    /// Whether the changelog has any offset (committed or aborted) yet: then a restore
    /// records an applied offset, and later restores of a persistent backend do not wipe.
    store_has_applied_offset: bool,
    changelog_len: u64,
}

impl Model {
    fn put(&mut self, k: &Key, v: Option<&Value>) {
        match v {
            Some(v) => self.current.insert(k.clone(), v.clone()),
            None => self.current.remove(k),
        };
        self.buffered.insert(k.clone());
    }

    fn range(&self, from: &Key, to: &Key) -> Vec<(Key, Value)> {
        if from > to {
            return Vec::new();
        }
        self.current
            .range(from.clone()..=to.clone())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn run(kind: Kind, ops: &[Op]) -> TestResult {
    let dir = tempfile::tempdir()?;
    let applies = Applies::new();
    let mut log = MemChangelog::new();
    let mut store = KvStore::open(
        "model",
        open_backend(kind, dir.path(), &applies)?,
        changelog(),
    )?;
    store.restore(&mut log)?;
    let mut m = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put(k, v) => {
                store.put(Bytes::from(k.clone()), v.as_ref().map(ts))?;
                m.put(k, v.as_ref());
            }
            Op::Delete(k) => {
                let old = untimestamped(store.delete(k)?);
                check(step, op, old, m.current.get(k).cloned())?;
                m.put(k, None);
            }
            Op::PutIfAbsent(k, v) => {
                let old = untimestamped(store.put_if_absent(Bytes::from(k.clone()), ts(v))?);
                let want = m.current.get(k).cloned();
                check(step, op, old, want.clone())?;
                if want.is_none() {
                    m.put(k, Some(v));
                }
            }
            Op::PutAll(entries) => {
                store.put_all(
                    entries
                        .iter()
                        .map(|(k, v)| (Bytes::from(k.clone()), v.as_ref().map(ts)))
                        .collect(),
                )?;
                for (k, v) in entries {
                    m.put(k, v.as_ref());
                }
            }
            Op::Get(k) => {
                let got = untimestamped(store.get(k)?);
                check(step, op, got, m.current.get(k).cloned())?;
            }
            Op::Range(from, to) => {
                let got = collect(store.range(from, to)?)?;
                check(step, op, got, m.range(from, to))?;
            }
            Op::ReverseRange(from, to) => {
                let got = collect(store.reverse_range(from, to)?)?;
                let mut want = m.range(from, to);
                want.reverse();
                check(step, op, got, want)?;
            }
            Op::PrefixScan(prefix) => {
                let got = collect(store.prefix_scan(prefix)?)?;
                let want: Vec<(Key, Value)> = m
                    .current
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                check(step, op, got, want)?;
            }
            Op::All => {
                let got = collect(store.all()?)?;
                let want: Vec<(Key, Value)> = m
                    .current
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                check(step, op, got, want)?;
            }
            Op::ReverseAll => {
                let got = collect(store.reverse_all()?)?;
                let want: Vec<(Key, Value)> = m
                    .current
                    .iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                check(step, op, got, want)?;
            }
            Op::Commit { apply } => {
                log.begin();
                let sent = store.send_changelog(&mut log)?;
                check(step, op, sent, m.buffered.len())?;
                log.commit();
                store.committed();
                let records = std::mem::take(&mut m.buffered).len() as u64;
                m.committed_records += records;
                m.unapplied_records += records;
                m.changelog_len += records;
                m.committed = m.current.clone();
                if *apply {
                    store.apply()?;
                    if m.unapplied_records > 0 {
                        m.store_has_applied_offset = true;
                    }
                    m.unapplied_records = 0;
                    // The backend's count once the apply is done; every other time a
                    // background apply is left running and the next steps read meanwhile.
                    if !matches!(kind, Kind::SledBackground) || step % 2 == 0 {
                        applies.settle()?;
                        check(
                            step,
                            op,
                            store.approximate_num_entries(),
                            m.committed.len() as u64,
                        )?;
                    }
                }
                check(step, op, store.write_buffer_bytes(), 0)?;
            }
            Op::Abort { sent } => {
                if *sent {
                    log.begin();
                    let n = store.send_changelog(&mut log)?;
                    check(step, op, n, m.buffered.len())?;
                    m.changelog_len += n as u64;
                    log.abort();
                }
                store.abort();
                m.buffered.clear();
                m.current = m.committed.clone();
            }
            Op::Restart => {
                drop(store);
                let backend = open_backend(kind, dir.path(), &applies)?;
                store = KvStore::open("model", backend, changelog())?;
                let stats = store.restore(&mut log)?;
                let wiped = match kind {
                    Kind::Memory => true,
                    Kind::Sled | Kind::SledBackground => !m.store_has_applied_offset,
                };
                check(step, op, stats.wiped, wiped)?;
                let replayed = if wiped {
                    m.committed_records
                } else {
                    m.unapplied_records
                };
                check(step, op, stats.records_applied, replayed)?;
                check(step, op, stats.records_skipped, 0)?;
                if m.changelog_len > 0 {
                    m.store_has_applied_offset = true;
                }
                m.unapplied_records = 0;
                m.buffered.clear();
                m.current = m.committed.clone();
                check(
                    step,
                    op,
                    store.approximate_num_entries(),
                    m.committed.len() as u64,
                )?;
            }
        }
    }
    // Finally: commit what is left, restart, and the store is the committed model.
    log.begin();
    store.send_changelog(&mut log)?;
    log.commit();
    store.committed();
    store.apply()?;
    drop(store);
    let mut store = KvStore::open(
        "model",
        open_backend(kind, dir.path(), &applies)?,
        changelog(),
    )?;
    store.restore(&mut log)?;
    let got = collect(store.all()?)?;
    let want: Vec<(Key, Value)> = m.current.into_iter().collect();
    if got != want {
        return Err(format!("after the final restart: got {got:?}, model says {want:?}").into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn kv_store_on_memory_matches_a_btreemap_model(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run(Kind::Memory, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    })]

    #[test]
    fn kv_store_on_sled_matches_a_btreemap_model(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run(Kind::Sled, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    #[test]
    fn kv_store_on_sled_with_background_applies_matches_a_btreemap_model(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run(Kind::SledBackground, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// The edge the generator may miss: a prefix of only `0xff` bytes has no upper bound.
#[test]
fn prefix_scan_of_all_ff_bytes_reaches_the_last_key() -> TestResult {
    for kind in [Kind::Memory, Kind::Sled, Kind::SledBackground] {
        let dir = tempfile::tempdir()?;
        let applies = Applies::new();
        let mut log = MemChangelog::new();
        let mut store = KvStore::open(
            "edge",
            open_backend(kind, dir.path(), &applies)?,
            changelog(),
        )?;
        let keys: [&[u8]; 6] = [
            b"\xfe",
            b"\xfe\xff",
            b"\xff",
            b"\xff\x00",
            b"\xff\xff",
            b"\xff\xff\xff",
        ];
        for (i, k) in keys.iter().enumerate() {
            store.put(Bytes::copy_from_slice(k), Some(ts(&(vec![i as u8], 0))))?;
            if i % 2 == 0 {
                log.begin();
                store.send_changelog(&mut log)?;
                log.commit();
                store.committed();
                store.apply()?;
            }
        }
        let got: Vec<Key> = collect(store.prefix_scan(b"\xff\xff")?)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            got,
            vec![b"\xff\xff".to_vec(), b"\xff\xff\xff".to_vec()],
            "{kind:?}"
        );
        let got: Vec<Key> = collect(store.prefix_scan(b"\xfe")?)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            got,
            vec![b"\xfe".to_vec(), b"\xfe\xff".to_vec()],
            "{kind:?}"
        );
        assert_eq!(
            collect(store.prefix_scan(b"")?)?.len(),
            keys.len(),
            "{kind:?}"
        );
    }
    Ok(())
}
