//! The log cleaner: retention (whole segments past `retention.ms` / `retention.bytes`)
//! and compaction of `compact` topics (see `compaction.rs` for the rules).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::compaction;
use crate::error::Result;
use crate::log::{Log, LogInner};
use crate::partition::{now_ms, Partition};

/// What one cleaner pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Segments deleted by retention.
    pub segments_deleted: usize,
    /// Partitions whose sealed segments compaction read (those unchanged since the last
    /// pass are skipped and not counted).
    pub partitions_compacted: usize,
    /// Segments compaction rewrote.
    pub segments_cleaned: usize,
    /// Records compaction dropped: superseded values, expired tombstones, aborted
    /// transactional records, expired transaction markers.
    pub records_removed: u64,
    /// Bytes of the rewritten segments before compaction.
    pub bytes_before: u64,
    /// Bytes of the same segments after compaction.
    pub bytes_after: u64,
    /// Partitions whose compaction failed (logged); the pass goes on with the others, as
    /// Kafka's cleaner marks a partition uncleanable rather than stopping.
    pub partitions_failed: usize,
}

impl CleanerStats {
    fn add(&mut self, done: compaction::Compacted) {
        self.partitions_compacted += 1;
        self.segments_cleaned += done.segments_cleaned;
        self.records_removed += done.records_removed;
        self.bytes_before += done.bytes_before;
        self.bytes_after += done.bytes_after;
    }
}

impl Log {
    /// Runs one pass of retention and compaction over every topic, and compaction of the
    /// log's internal partitions (transaction state, consumer offsets), now. The background
    /// cleaner does this every `LogConfig::cleaner_interval`.
    ///
    /// # Errors
    /// A failure of retention ends the pass with that error; a failure to compact one
    /// partition is logged and counted in [`CleanerStats::partitions_failed`].
    pub fn run_cleaner(&self) -> Result<CleanerStats> {
        self.check_writable("run the cleaner")?;
        run_pass(&self.inner, &|| false)
    }
}

/// One cleaner pass; `stop` is asked between partitions so a closing log need not wait for
/// a whole pass.
fn run_pass(inner: &LogInner, stop: &dyn Fn() -> bool) -> Result<CleanerStats> {
    let mut stats = CleanerStats::default();
    let now = now_ms();
    let partitions: Vec<_> = inner
        .topics
        .read()
        .values()
        .flat_map(|t| t.partitions.read().clone())
        .collect();
    for p in partitions {
        if stop() {
            return Ok(stats);
        }
        // Retention first: what it deletes need not be compacted.
        stats.segments_deleted += p.enforce_retention(now)?;
        compact_one(inner, &p, now, &mut stats);
    }
    compact_one(inner, inner.txn.state_partition(), now, &mut stats);
    if let Some(offsets) = inner.groups.offsets_partition(0) {
        compact_one(inner, &offsets, now, &mut stats);
    }
    Ok(stats)
}

fn compact_one(inner: &LogInner, p: &Partition, now: i64, stats: &mut CleanerStats) {
    match compaction::compact(p, now, inner.config.index_interval_bytes) {
        Ok(Some(done)) => stats.add(done),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(topic = %p.topic, partition = p.id, error = %e, "compaction failed; the partition is left as it was");
            stats.partitions_failed += 1;
        }
    }
}

/// The background cleaner thread of a writable log.
#[derive(Debug)]
pub(crate) struct BackgroundCleaner {
    signal: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundCleaner {
    /// Starts the thread; it holds the log only while a pass runs. `None` when no thread
    /// could be started (logged: the user can still call `run_cleaner`).
    pub(crate) fn start(inner: Weak<LogInner>, every: Duration) -> Option<BackgroundCleaner> {
        let signal = Arc::new((Mutex::new(false), Condvar::new()));
        let sig = signal.clone();
        let spawned = std::thread::Builder::new()
            .name("freshet-log-cleaner".into())
            .spawn(move || loop {
                {
                    let (stopped, cv) = &*sig;
                    let mut stopped = stopped.lock();
                    if !*stopped {
                        cv.wait_for(&mut stopped, every);
                    }
                    if *stopped {
                        return;
                    }
                }
                let Some(inner) = inner.upgrade() else { return };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                let stop = || *sig.0.lock();
                if let Err(e) = run_pass(&inner, &stop) {
                    tracing::warn!(error = %e, "log cleaner pass failed");
                }
            });
        match spawned {
            Ok(thread) => Some(BackgroundCleaner {
                signal,
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the log cleaner thread; call run_cleaner yourself");
                None
            }
        }
    }

    /// Stops the thread and waits for it (it finishes the partition it is on).
    pub(crate) fn stop(mut self) {
        *self.signal.0.lock() = true;
        self.signal.1.notify_all();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
