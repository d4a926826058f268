//! One sled database per app instance, shared by its tasks: each task sees only its own
//! trees, whose names carry the task id as a prefix (`0_3/counts`), so two tasks' stores
//! of the same name (and their meta trees) never collide.

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use freshet_state_store::{Applies, Backend, Result, Tree, TreeIter, Write};

/// A task's view of the instance's backend: trees named `<task id>/<name>`.
#[derive(Clone)]
pub(crate) struct TaskBackend {
    inner: Arc<dyn Backend>,
    prefix: String,
    /// Where the task's stores register background applies (`None`: they apply inline).
    applies: Option<Arc<Applies>>,
}

impl fmt::Debug for TaskBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBackend")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TaskBackend {
    /// The trees of task `task` in `inner`.
    pub(crate) fn new(inner: Arc<dyn Backend>, task: &str) -> TaskBackend {
        TaskBackend {
            inner,
            prefix: format!("{task}/"),
            applies: None,
        }
    }

    /// Lets the task's stores apply their commits in the background, registered in
    /// `applies` (a stream thread's, which waits for them when sled must be current).
    pub(crate) fn with_applies(mut self, applies: Arc<Applies>) -> TaskBackend {
        self.applies = Some(applies);
        self
    }
}

impl Backend for TaskBackend {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        let inner = self.inner.open_tree(&format!("{}{name}", self.prefix))?;
        Ok(Arc::new(TaskTree {
            name: name.to_string(),
            inner,
        }))
    }
    fn drop_tree(&self, name: &str) -> Result<bool> {
        self.inner.drop_tree(&format!("{}{name}", self.prefix))
    }
    fn tree_names(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .tree_names()?
            .into_iter()
            .filter_map(|n| n.strip_prefix(&self.prefix).map(str::to_string))
            .collect())
    }
    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }
    fn applies(&self) -> Option<Arc<Applies>> {
        self.applies.clone()
    }
}

/// A tree of a task, named without the task prefix.
#[derive(Debug)]
struct TaskTree {
    name: String,
    inner: Arc<dyn Tree>,
}

impl Tree for TaskTree {
    fn name(&self) -> &str {
        &self.name
    }
    fn get(&self, key: &[u8]) -> Result<Option<bytes::Bytes>> {
        self.inner.get(key)
    }
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, reverse: bool) -> TreeIter<'_> {
        self.inner.range(from, to, reverse)
    }
    fn apply(&self, writes: &[Write], applied_offset: Option<i64>) -> Result<()> {
        self.inner.apply(writes, applied_offset)
    }
    fn applied_offset(&self) -> Result<Option<i64>> {
        self.inner.applied_offset()
    }
    fn approximate_len(&self) -> u64 {
        self.inner.approximate_len()
    }
    fn is_empty(&self) -> freshet_state_store::Result<bool> {
        self.inner.is_empty()
    }
    fn clear(&self) -> Result<()> {
        self.inner.clear()
    }
}

/// The instance's database, holding the state directory's lock for as long as anything
/// (the app, its threads, an interactive-query view) still uses the database: another
/// instance cannot take the directory while this database may still be open.
#[derive(Debug)]
pub(crate) struct LockedBackend {
    pub(crate) inner: Arc<dyn Backend>,
    pub(crate) _lock: Arc<crate::statedir::StateDirLock>,
}

impl Backend for LockedBackend {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        self.inner.open_tree(name)
    }
    fn drop_tree(&self, name: &str) -> Result<bool> {
        self.inner.drop_tree(name)
    }
    fn tree_names(&self) -> Result<Vec<String>> {
        self.inner.tree_names()
    }
    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use freshet_state_store::MemoryBackend;

    #[test]
    fn tasks_with_stores_named_alike_do_not_collide() {
        let db: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let a = TaskBackend::new(db.clone(), "0_0");
        let b = TaskBackend::new(db.clone(), "0_1");
        let ta = a.open_tree("counts").unwrap();
        let tb = b.open_tree("counts").unwrap();
        ta.apply(&[(Bytes::from("k"), Some(Bytes::from("a")))], Some(3))
            .unwrap();
        assert_eq!(tb.get(b"k").unwrap(), None);
        assert_eq!(tb.applied_offset().unwrap(), None);
        assert_eq!(a.tree_names().unwrap(), vec!["counts".to_string()]);
        assert_eq!(ta.name(), "counts");
        let mut all = db.tree_names().unwrap();
        all.sort();
        assert_eq!(
            all,
            vec!["0_0/counts".to_string(), "0_1/counts".to_string()]
        );
        assert!(b.drop_tree("counts").unwrap());
        assert_eq!(ta.get(b"k").unwrap(), Some(Bytes::from("a")));
    }
}
