//! The log cleaner: retention (whole segments past `retention.ms` / `retention.bytes`)
//! and compaction of `compact` topics.

use crate::error::Result;
use crate::log::Log;
use crate::partition::now_ms;

/// What one cleaner pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Segments deleted by retention.
    pub segments_deleted: usize,
}

impl Log {
    /// Runs one pass of retention and compaction over every topic now (the background
    /// cleaner does this every `LogConfig::cleaner_interval`).
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
            stats.segments_deleted += p.enforce_retention(now)?;
        }
        Ok(stats)
    }
}
