//! The seam to changelog topics: the runtime implements these over the log, so this crate
//! never depends on the log.

use bytes::Bytes;

/// A changelog record: the store's key bytes, its value (`None` = deleted, a tombstone) and
/// the value's timestamp (the record timestamp, as in Kafka).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRecord {
    /// The store's key bytes (for window and session stores, with the window in it).
    pub key: Bytes,
    /// The value; `None` deletes the key.
    pub value: Option<Bytes>,
    /// The value's timestamp.
    pub timestamp: i64,
}

/// An error from the changelog side, carried into [`crate::Error::Changelog`].
pub type ChangelogError = Box<dyn std::error::Error + Send + Sync>;

/// Where a store's changelog lives: `<application.id>-<store>-changelog`, the task's
/// partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogPartition {
    /// The topic.
    pub topic: String,
    /// The partition (the task's).
    pub partition: u32,
}

/// Receives a store's writes at commit (inside the commit's transaction under
/// exactly-once).
pub trait ChangelogSink {
    /// Appends records to a changelog partition; returns the offset of the last one.
    fn append(
        &mut self,
        changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> Result<i64, ChangelogError>;
}

/// Records read back for restore.
#[derive(Debug, Clone, Default)]
pub struct ChangelogBatch {
    /// `(offset, record)` in offset order: committed records only.
    pub records: Vec<(i64, ChangelogRecord)>,
    /// Where the next read starts (past markers and aborted records too).
    pub next_offset: i64,
}

/// Reads a changelog for restore (read_committed).
pub trait ChangelogReader {
    /// The topic's id (a deleted and recreated changelog has a new one); `None` when the
    /// topic does not exist.
    fn topic_id(&mut self, topic: &str) -> Result<Option<String>, ChangelogError>;
    /// The partition's start and last stable offsets.
    fn bounds(&mut self, changelog: &ChangelogPartition) -> Result<(i64, i64), ChangelogError>;
    /// Reads up to about `max_records` committed records from `from`.
    fn read(
        &mut self,
        changelog: &ChangelogPartition,
        from: i64,
        max_records: usize,
    ) -> Result<ChangelogBatch, ChangelogError>;
}
