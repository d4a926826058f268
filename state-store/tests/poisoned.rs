//! After a failed backend write a store refuses further writes (`Poisoned`) until it is
//! reopened, keeps serving what it has, and every error names the store. Failures come
//! from a backend test double whose trees fail one chosen `apply` with an I/O error.

mod common;

use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    Applies, Backend, ChangelogPartition, Error, KeyValueStore, KvStore, MemoryBackend,
    SledBackend, StateStore, Timestamped, Tree, TreeIter, Write,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A backend whose trees fail the `fail_at`-th `apply` (counted over all trees, from 1;
/// 0 never fails) with a sled I/O error, as a full disk would.
#[derive(Debug)]
struct FailingBackend {
    inner: Arc<dyn Backend>,
    applies: Arc<AtomicUsize>,
    fail_at: Arc<AtomicUsize>,
    /// Offered to stores for background applies (as the runtime's task backends do).
    background: Option<Arc<Applies>>,
}

impl FailingBackend {
    fn new(inner: Arc<dyn Backend>) -> Arc<FailingBackend> {
        Arc::new(FailingBackend {
            inner,
            applies: Arc::new(AtomicUsize::new(0)),
            fail_at: Arc::new(AtomicUsize::new(0)),
            background: None,
        })
    }

    /// A failing backend whose stores apply in the background, registered in `applies`.
    fn background(inner: Arc<dyn Backend>, applies: Arc<Applies>) -> Arc<FailingBackend> {
        Arc::new(FailingBackend {
            inner,
            applies: Arc::new(AtomicUsize::new(0)),
            fail_at: Arc::new(AtomicUsize::new(0)),
            background: Some(applies),
        })
    }

    /// Makes the `n`-th apply from now fail (1 = the next one).
    fn fail_in(&self, n: usize) {
        let done = self.applies.load(Ordering::SeqCst);
        self.fail_at.store(done + n, Ordering::SeqCst);
    }
}

impl Backend for FailingBackend {
    fn open_tree(&self, name: &str) -> freshet_state_store::Result<Arc<dyn Tree>> {
        Ok(Arc::new(FailingTree {
            inner: self.inner.open_tree(name)?,
            applies: self.applies.clone(),
            fail_at: self.fail_at.clone(),
        }))
    }
    fn drop_tree(&self, name: &str) -> freshet_state_store::Result<bool> {
        self.inner.drop_tree(name)
    }
    fn tree_names(&self) -> freshet_state_store::Result<Vec<String>> {
        self.inner.tree_names()
    }
    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }
    fn applies(&self) -> Option<Arc<Applies>> {
        self.background.clone()
    }
}

#[derive(Debug)]
struct FailingTree {
    inner: Arc<dyn Tree>,
    applies: Arc<AtomicUsize>,
    fail_at: Arc<AtomicUsize>,
}

impl Tree for FailingTree {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn get(&self, key: &[u8]) -> freshet_state_store::Result<Option<Bytes>> {
        self.inner.get(key)
    }
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> TreeIter<'_> {
        self.inner.range(from, to, reverse)
    }
    fn apply(
        &self,
        writes: &[Write],
        applied_offset: Option<i64>,
    ) -> freshet_state_store::Result<()> {
        let n = self.applies.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(Error::Sled {
                store: self.inner.name().to_string(),
                source: sled::Error::Io(std::io::Error::other("no space left on device")),
            });
        }
        self.inner.apply(writes, applied_offset)
    }
    fn applied_offset(&self) -> freshet_state_store::Result<Option<i64>> {
        self.inner.applied_offset()
    }
    fn approximate_len(&self) -> u64 {
        self.inner.approximate_len()
    }
    fn clear(&self) -> freshet_state_store::Result<()> {
        self.inner.clear()
    }
}

fn cl() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: "app-counts-changelog".into(),
        partition: 0,
    })
}

fn v(s: &str) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: 7,
    })
}

fn value_of(store: &mut KvStore, key: &[u8]) -> Result<Option<Bytes>, Error> {
    Ok(store.get(key)?.map(|t| t.value))
}

/// Commits the write buffer; returns what `apply` said.
fn commit(store: &mut KvStore, log: &mut MemChangelog) -> Result<(), Error> {
    log.begin();
    store.send_changelog(log)?;
    log.commit();
    store.committed();
    store.apply()
}

fn assert_poisoned(result: Result<impl std::fmt::Debug, Error>, what: &str) {
    match result {
        Err(e @ Error::Poisoned { .. }) => {
            assert_eq!(
                e.to_string(),
                "store 'counts' refuses writes after an earlier failed write",
                "{what}"
            );
        }
        other => panic!("{what}: expected Poisoned, got {other:?}"),
    }
}

#[test]
fn a_failed_background_apply_is_reported_by_settle_and_by_the_next_apply() -> TestResult {
    let applies = Applies::new();
    let backend = FailingBackend::background(Arc::new(MemoryBackend::new()), applies.clone());
    let mut log = MemChangelog::new();
    let mut store = KvStore::open("counts", backend.clone(), cl())?;
    store.restore(&mut log)?;
    store.put(Bytes::from("a"), v("1"))?;
    commit(&mut store, &mut log)?;
    applies.settle()?;

    store.put(Bytes::from("b"), v("2"))?;
    backend.fail_in(1);
    // The apply runs on another thread: the commit returns before it fails.
    commit(&mut store, &mut log)?;
    let err = applies.settle().expect_err("the background apply failed");
    assert!(
        matches!(&err, Error::Background { store, reason }
            if store == "counts" && reason.contains("no space left on device")),
        "{err:?}"
    );
    assert!(applies.settle().is_ok(), "a failure is reported once");
    // The store learns it at its next apply (the commit in between finds the apply done
    // and keeps its failure for then), and is poisoned from then on.
    store.put(Bytes::from("c"), v("3"))?;
    let err = commit(&mut store, &mut log).expect_err("the failure reaches the store");
    assert!(matches!(err, Error::Sled { .. }), "{err:?}");
    assert_poisoned(store.put(Bytes::from("d"), v("4")), "put");
    // Committed state is still served, the commits that failed to apply included.
    assert_eq!(value_of(&mut store, b"a")?, Some(Bytes::from("1")));
    assert_eq!(value_of(&mut store, b"b")?, Some(Bytes::from("2")));
    assert_eq!(value_of(&mut store, b"c")?, Some(Bytes::from("3")));
    Ok(())
}

#[test]
fn a_failed_apply_poisons_the_store_for_every_kind_of_write() -> TestResult {
    // The 1st apply of a commit writes the store's tree, the 2nd its applied offset: a
    // failure in either poisons.
    for failing_apply in [1, 2] {
        let backend = FailingBackend::new(Arc::new(MemoryBackend::new()));
        let mut log = MemChangelog::new();
        let mut store = KvStore::open("counts", backend.clone(), cl())?;
        store.restore(&mut log)?;
        store.put(Bytes::from("a"), v("1"))?;
        commit(&mut store, &mut log)?;

        store.put(Bytes::from("b"), v("2"))?;
        backend.fail_in(failing_apply);
        let err = commit(&mut store, &mut log).expect_err("the apply fails");
        assert!(
            matches!(err, Error::Sled { .. }),
            "apply {failing_apply}: {err:?}"
        );
        assert!(
            err.to_string().contains("no space left on device"),
            "the cause is kept: {err}"
        );
        assert!(
            err.to_string().starts_with("store 'counts': "),
            "apply {failing_apply}: the error names the store: {err}"
        );

        assert_poisoned(store.put(Bytes::from("c"), v("3")), "put");
        assert_poisoned(store.delete(b"a"), "delete");
        assert_poisoned(
            store.put_if_absent(
                Bytes::from("d"),
                Timestamped {
                    value: Bytes::from("4"),
                    timestamp: 1,
                },
            ),
            "put_if_absent",
        );
        assert_poisoned(store.put_all(vec![(Bytes::from("e"), v("5"))]), "put_all");
        // Reads still serve committed state, the commit whose apply failed included: it is
        // in the changelog and in the committed overlay.
        assert_eq!(value_of(&mut store, b"a")?, Some(Bytes::from("1")));
        assert_eq!(value_of(&mut store, b"b")?, Some(Bytes::from("2")));
        assert_eq!(
            value_of(&mut store, b"c")?,
            None,
            "the refused write is not there"
        );
        assert_eq!(store.write_buffer_bytes(), 0);
    }
    Ok(())
}

#[test]
fn a_poisoned_store_reopened_and_restored_takes_writes_again() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = MemChangelog::new();
    {
        let sled: Arc<dyn Backend> = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
        let backend = FailingBackend::new(sled);
        let mut store = KvStore::open("counts", backend.clone(), cl())?;
        store.restore(&mut log)?;
        store.put(Bytes::from("a"), v("1"))?;
        commit(&mut store, &mut log)?;
        store.put(Bytes::from("b"), v("2"))?;
        backend.fail_in(1);
        assert!(commit(&mut store, &mut log).is_err());
        assert_poisoned(store.put(Bytes::from("c"), v("3")), "put");
    }
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut store = KvStore::open("counts", backend, cl())?;
    let stats = store.restore(&mut log)?;
    assert!(!stats.wiped, "a failed apply needs no wipe");
    assert_eq!(
        stats.records_applied, 1,
        "the committed, unapplied write is replayed"
    );
    assert_eq!(value_of(&mut store, b"b")?, Some(Bytes::from("2")));
    store.put(Bytes::from("c"), v("3"))?;
    commit(&mut store, &mut log)?;
    assert_eq!(value_of(&mut store, b"c")?, Some(Bytes::from("3")));
    Ok(())
}

#[test]
fn a_failed_restore_poisons_the_store() -> TestResult {
    // A store whose restore stopped half-way must not take writes: their commit would
    // record an applied offset past the part of the changelog never replayed.
    let mut log = MemChangelog::new();
    {
        let mut store = KvStore::open("counts", Arc::new(MemoryBackend::new()), cl())?;
        store.restore(&mut log)?;
        store.put(Bytes::from("a"), v("1"))?;
        commit(&mut store, &mut log)?;
    }
    let backend = FailingBackend::new(Arc::new(MemoryBackend::new()));
    let mut store = KvStore::open("counts", backend.clone(), cl())?;
    backend.fail_in(1);
    let err = store
        .restore(&mut log)
        .expect_err("the restore's apply fails");
    assert!(err.to_string().starts_with("store 'counts': "), "{err}");
    assert_poisoned(
        store.put(Bytes::from("b"), v("2")),
        "put after a failed restore",
    );
    Ok(())
}

#[test]
fn changelog_failures_name_the_store_and_the_changelog() -> TestResult {
    #[derive(Debug)]
    struct Broken;
    impl freshet_state_store::ChangelogSink for Broken {
        fn append(
            &mut self,
            _: &ChangelogPartition,
            _: Vec<freshet_state_store::ChangelogRecord>,
        ) -> Result<i64, freshet_state_store::ChangelogError> {
            Err("producer fenced".into())
        }
    }
    let mut store = KvStore::open("counts", Arc::new(MemoryBackend::new()), cl())?;
    store.put(Bytes::from("a"), v("1"))?;
    let err = store
        .send_changelog(&mut Broken)
        .expect_err("the sink fails");
    assert_eq!(
        err.to_string(),
        "store 'counts': changelog app-counts-changelog-0: producer fenced"
    );
    Ok(())
}
