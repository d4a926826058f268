//! The log cleaner: retention (whole segments past `retention.ms` / `retention.bytes`)
//! and compaction of `compact` topics (see `compaction.rs` for the rules).

use crate::compaction;
use crate::error::Result;
use crate::log::Log;
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
        let mut stats = CleanerStats::default();
        let now = now_ms();
        let partitions: Vec<_> = self
            .inner
            .topics
            .read()
            .values()
            .flat_map(|t| t.partitions.read().clone())
            .collect();
        for p in partitions {
            // Retention first: what it deletes need not be compacted.
            stats.segments_deleted += p.enforce_retention(now)?;
            self.compact_one(&p, now, &mut stats);
        }
        self.compact_one(self.inner.txn.state_partition(), now, &mut stats);
        if let Some(offsets) = self.inner.groups.offsets_partition(0) {
            self.compact_one(&offsets, now, &mut stats);
        }
        Ok(stats)
    }

    fn compact_one(&self, p: &Partition, now: i64, stats: &mut CleanerStats) {
        match compaction::compact(p, now, self.inner.config.index_interval_bytes) {
            Ok(Some(done)) => stats.add(done),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(topic = %p.topic, partition = p.id, error = %e, "compaction failed; the partition is left as it was");
                stats.partitions_failed += 1;
            }
        }
    }
}
