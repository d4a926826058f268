//! What `StreamsApp::metrics` returns: per task records in / out, drops, lateness, lag and
//! restore progress; per thread commit counts and latency, cache and write-buffer usage.
//!
//! Stream threads publish a snapshot of their tasks after every commit (and restore
//! progress live), so a snapshot is at most one commit interval old.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use freshet_streams::TaskId;
use parking_lot::Mutex;

use crate::changelog::RestoreCounters;
use crate::state::AppState;

/// Restore progress of a task's stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreProgress {
    /// Changelog records read so far.
    pub records_read: u64,
    /// Changelog offsets to read: from each store's applied offset to the last stable
    /// offset (transaction markers included, so a store that is up to date may still have
    /// its last commit's marker to read).
    pub records_to_read: u64,
    /// Whether the restore finished.
    pub done: bool,
    /// Whether any store was wiped first (missing local state, a recreated changelog, or an
    /// applied offset past the changelog's end).
    pub wiped: bool,
}

/// One task's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMetricsSnapshot {
    /// The task.
    pub task: TaskId,
    /// The stream thread running it.
    pub thread: usize,
    /// Records taken from input partitions.
    pub records_in: u64,
    /// Records written by sinks.
    pub records_out: u64,
    /// Records dropped (null keys, late, expired windows, skipped bad records).
    pub dropped_records: u64,
    /// Of those, records that arrived after their window closed.
    pub late_records: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// The task's stream time (-1 before any record).
    pub stream_time: i64,
    /// Records fetched and not processed yet.
    pub buffered: usize,
    /// Records of its inputs not processed yet (last stable offsets minus positions, as of
    /// the last commit): measured at most once a second while committing, and again once
    /// everything is committed and the thread is idle or caught up, and at close; `None`
    /// before it was measured.
    pub lag: Option<i64>,
    /// Its stores' restore.
    pub restore: RestoreProgress,
}

/// One stream thread's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadMetrics {
    /// The thread's index (its transactional id is
    /// `<application.id>-<instance id>-<index>`).
    pub thread: usize,
    /// Commits made.
    pub commits: u64,
    /// Commits that failed and were aborted: the thread's tasks restarted from committed
    /// state, or — refused for an old group generation — were dropped for their new owners.
    pub failed_commits: u64,
    /// Mean commit latency, ms.
    pub commit_latency_avg_ms: f64,
    /// Largest commit latency, ms.
    pub commit_latency_max_ms: f64,
    /// Bytes in the thread's record cache.
    pub cache_bytes: usize,
    /// The record cache's budget (its share of `statestore.cache.max.bytes`).
    pub cache_max_bytes: usize,
    /// Bytes of uncommitted store writes, as of the last loop.
    pub write_buffer_bytes: usize,
}

/// A snapshot of the whole app's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct AppMetrics {
    /// The app's state.
    pub state: AppState,
    /// Per stream thread.
    pub threads: Vec<ThreadMetrics>,
    /// Per task, in id order.
    pub tasks: Vec<TaskMetricsSnapshot>,
}

impl AppMetrics {
    /// Records taken from input partitions by all tasks.
    pub fn records_in(&self) -> u64 {
        self.tasks.iter().map(|t| t.records_in).sum()
    }
    /// Records written by all tasks.
    pub fn records_out(&self) -> u64 {
        self.tasks.iter().map(|t| t.records_out).sum()
    }
    /// The total lag over all tasks that measured one.
    pub fn lag(&self) -> i64 {
        self.tasks.iter().filter_map(|t| t.lag).sum()
    }
    /// Commits over all threads.
    pub fn commits(&self) -> u64 {
        self.threads.iter().map(|t| t.commits).sum()
    }

    /// A compact one-line summary for a live progress display, e.g.
    /// `RUNNING  tasks 4  in 12000  out 11800  lag 0  dropped 0  commits 52 (avg 2.1 ms)`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{:<11} tasks {}  in {}  out {}  lag {}  dropped {}",
            self.state.as_str(),
            self.tasks.len(),
            self.records_in(),
            self.records_out(),
            self.lag(),
            self.tasks.iter().map(|t| t.dropped_records).sum::<u64>(),
        );
        let commits = self.commits();
        if commits > 0 {
            let avg = self
                .threads
                .iter()
                .map(|t| t.commit_latency_avg_ms * t.commits as f64)
                .sum::<f64>()
                / commits as f64;
            let _ = write!(s, "  commits {commits} (avg {avg:.1} ms)");
        }
        let (read, to_read) = self.tasks.iter().fold((0, 0), |(r, t), m| {
            (r + m.restore.records_read, t + m.restore.records_to_read)
        });
        if self.tasks.iter().any(|t| !t.restore.done) {
            let _ = write!(s, "  restoring {read}/{to_read}");
        }
        s
    }
}

/// Where threads publish their metrics.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    threads: BTreeMap<usize, ThreadMetrics>,
    tasks: BTreeMap<TaskId, TaskMetricsSnapshot>,
    restoring: BTreeMap<TaskId, Arc<RestoreCounters>>,
}

impl Registry {
    pub(crate) fn publish_thread(&self, m: ThreadMetrics) {
        self.inner.lock().threads.insert(m.thread, m);
    }

    pub(crate) fn publish_task(&self, m: TaskMetricsSnapshot) {
        let mut g = self.inner.lock();
        if m.restore.done {
            g.restoring.remove(&m.task);
        }
        g.tasks.insert(m.task, m);
    }

    /// Forgets `task` (it moved to another instance or thread).
    pub(crate) fn remove_task(&self, task: TaskId) {
        let mut g = self.inner.lock();
        g.tasks.remove(&task);
        g.restoring.remove(&task);
    }

    /// Live restore progress of `task` while it restores.
    pub(crate) fn restoring(&self, task: TaskId, counters: Arc<RestoreCounters>) {
        self.inner.lock().restoring.insert(task, counters);
    }

    pub(crate) fn snapshot(&self, state: AppState) -> AppMetrics {
        let g = self.inner.lock();
        let tasks = g
            .tasks
            .values()
            .cloned()
            .map(|mut t| {
                if let Some(c) = g.restoring.get(&t.task) {
                    t.restore.records_read = c.read.load(Ordering::Relaxed);
                    t.restore.records_to_read = c.target.load(Ordering::Relaxed);
                }
                t
            })
            .collect();
        AppMetrics {
            state,
            threads: g.threads.values().cloned().collect(),
            tasks,
        }
    }
}
