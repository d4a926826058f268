//! Read-only views for interactive queries: they show committed, applied state only, on
//! both backends, through every read a key-value store has.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::MemChangelog;
use freshet_state_store::{
    Backend, ChangelogPartition, KeyValueStore, KvIter, KvStore, MemoryBackend,
    ReadOnlyKeyValueView, SledBackend, StateStore, Timestamped,
};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn cl() -> Option<ChangelogPartition> {
    Some(ChangelogPartition {
        topic: "app-counts-changelog".into(),
        partition: 0,
    })
}

fn v(s: &str, ts: i64) -> Option<Timestamped> {
    Some(Timestamped {
        value: Bytes::copy_from_slice(s.as_bytes()),
        timestamp: ts,
    })
}

fn keys(iter: KvIter<'_>) -> TestResult<Vec<String>> {
    let mut out = Vec::new();
    for item in iter {
        let (k, _) = item?;
        out.push(String::from_utf8(k.to_vec())?);
    }
    Ok(out)
}

fn backends(dir: &std::path::Path) -> TestResult<Vec<Arc<dyn Backend>>> {
    Ok(vec![
        Arc::new(MemoryBackend::new()),
        Arc::new(SledBackend::open(dir, 1 << 20)?),
    ])
}

#[test]
fn a_view_shows_only_what_was_committed_and_applied() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let mut log = MemChangelog::new();
        let mut store = KvStore::open("counts", backend.clone(), cl())?;
        store.restore(&mut log)?;
        let view = ReadOnlyKeyValueView::open(backend.clone(), "counts")?;
        assert_eq!(view.name(), "counts");
        assert_eq!(view.applied_offset()?, None);

        store.put(Bytes::from("a"), v("1", 1))?;
        assert_eq!(view.get(b"a")?, None, "{backend:?}: uncommitted");
        log.begin();
        store.send_changelog(&mut log)?;
        assert_eq!(view.get(b"a")?, None, "{backend:?}: sent, not committed");
        log.commit();
        store.committed();
        assert_eq!(
            view.get(b"a")?,
            None,
            "{backend:?}: committed, not applied yet"
        );
        store.apply()?;
        assert_eq!(view.get(b"a")?, v("1", 1), "{backend:?}: applied");
        assert_eq!(view.applied_offset()?, Some(0));

        // An aborted write is never seen, nor an uncommitted delete.
        store.put(Bytes::from("b"), v("2", 2))?;
        log.begin();
        store.send_changelog(&mut log)?;
        log.abort();
        store.abort();
        store.delete(b"a")?;
        assert_eq!(view.get(b"b")?, None, "{backend:?}");
        assert_eq!(view.get(b"a")?, v("1", 1), "{backend:?}");
        assert_eq!(keys(view.all()?)?, vec!["a"], "{backend:?}");
        assert_eq!(view.approximate_num_entries()?, 1, "{backend:?}");
    }
    Ok(())
}

#[test]
fn view_scans_iterate_in_key_order_both_ways() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let mut log = MemChangelog::new();
        let mut store = KvStore::open("counts", backend.clone(), cl())?;
        store.restore(&mut log)?;
        // Enough keys that iterators cross several chunks of the view's reads.
        let n = 10_000u32;
        for i in 0..n {
            store.put(Bytes::from(format!("k{i:05}")), v("x", i64::from(i)))?;
        }
        for k in ["a", "ab", "abc", "b"] {
            store.put(Bytes::from(k), v(k, 0))?;
        }
        log.begin();
        store.send_changelog(&mut log)?;
        log.commit();
        store.committed();
        store.apply()?;
        let view = ReadOnlyKeyValueView::open(backend.clone(), "counts")?;
        let all = keys(view.all()?)?;
        assert_eq!(all.len(), n as usize + 4);
        assert!(
            all.windows(2).all(|w| w[0] < w[1]),
            "{backend:?}: ascending"
        );
        let mut rev = keys(view.reverse_all()?)?;
        rev.reverse();
        assert_eq!(rev, all, "{backend:?}: reverse_all is all, reversed");
        assert_eq!(keys(view.prefix_scan(b"ab")?)?, vec!["ab", "abc"]);
        assert_eq!(keys(view.range(b"a", b"ab")?)?, vec!["a", "ab"]);
        assert_eq!(
            keys(view.reverse_range(b"a", b"b")?)?,
            vec!["b", "abc", "ab", "a"]
        );
        assert_eq!(
            keys(view.range(b"b", b"a")?)?,
            Vec::<String>::new(),
            "from > to"
        );
        let mid = keys(view.range(b"k04000", b"k08999")?)?;
        assert_eq!(mid.len(), 5_000, "{backend:?}");
        assert_eq!(mid.first().map(String::as_str), Some("k04000"));
        let back = keys(view.reverse_range(b"k04000", b"k08999")?)?;
        assert_eq!(back.first().map(String::as_str), Some("k08999"));
        assert_eq!(back.len(), 5_000);
        assert_eq!(view.approximate_num_entries()?, u64::from(n) + 4);
        assert_eq!(
            view.get(b"k00042")?.map(|t| t.timestamp),
            Some(42),
            "values keep their timestamps"
        );
    }
    Ok(())
}

#[test]
fn a_view_of_a_store_without_changelog_counts_its_entries() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let mut store = KvStore::open("cache", backend.clone(), None)?;
        for k in ["a", "b", "c"] {
            store.put(Bytes::from(k), v(k, 0))?;
        }
        store.send_changelog(&mut MemChangelog::new())?;
        store.committed();
        store.apply()?;
        let view = ReadOnlyKeyValueView::open(backend.clone(), "cache")?;
        assert_eq!(view.applied_offset()?, None);
        assert_eq!(keys(view.all()?)?, vec!["a", "b", "c"]);
        assert_eq!(view.approximate_num_entries()?, 3, "{backend:?}");
        assert_eq!(store.approximate_num_entries(), 3, "{backend:?}");
    }
    Ok(())
}

#[test]
fn a_view_follows_a_store_through_a_wiping_restore() -> TestResult {
    let dir = tempfile::tempdir()?;
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir.path(), 1 << 20)?);
    let mut log = MemChangelog::new();
    let mut store = KvStore::open("counts", backend.clone(), cl())?;
    store.restore(&mut log)?;
    store.put(Bytes::from("old"), v("1", 1))?;
    log.begin();
    store.send_changelog(&mut log)?;
    log.commit();
    store.committed();
    store.apply()?;
    let view = ReadOnlyKeyValueView::open(backend.clone(), "counts")?;
    assert_eq!(keys(view.all()?)?, vec!["old"]);

    // The changelog was replaced (a new topic id): the store wipes and restores the new one.
    let mut other = MemChangelog::new();
    other.topic_id = "id-2".into();
    {
        let mut writer = KvStore::open("writer", Arc::new(MemoryBackend::new()), cl())?;
        writer.put(Bytes::from("new"), v("2", 2))?;
        other.begin();
        writer.send_changelog(&mut other)?;
        other.commit();
    }
    drop(store);
    let mut store = KvStore::open("counts", backend.clone(), cl())?;
    assert!(store.restore(&mut other)?.wiped);
    assert_eq!(
        keys(view.all()?)?,
        vec!["new"],
        "the view sees the restored tree"
    );
    assert_eq!(view.get(b"old")?, None);
    Ok(())
}

#[test]
fn a_view_of_a_store_without_a_tree_reads_empty_and_creates_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    for backend in backends(dir.path())? {
        let view = ReadOnlyKeyValueView::open(backend.clone(), "nope")?;
        assert_eq!(view.get(b"a")?, None);
        assert_eq!(keys(view.all()?)?, Vec::<String>::new());
        assert_eq!(keys(view.reverse_range(b"a", b"z")?)?, Vec::<String>::new());
        assert_eq!(view.approximate_num_entries()?, 0);
        assert_eq!(view.applied_offset()?, None);
        assert!(
            !backend.tree_names()?.iter().any(|n| n == "nope"),
            "{backend:?}: a view never writes"
        );
    }
    Ok(())
}

#[test]
fn views_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<ReadOnlyKeyValueView>();
}
