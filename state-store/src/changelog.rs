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

/// Kafka's name for a store's changelog topic: `<application.id>-<store>-changelog`.
///
/// ```
/// assert_eq!(
///     freshet_state_store::changelog_topic("page-counter", "views-per-minute"),
///     "page-counter-views-per-minute-changelog"
/// );
/// ```
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// Kafka's `windowstore.changelog.additional.retention.ms`: a windowed changelog keeps a day
/// more than its store, so a restore never misses a window the store still holds.
pub const CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 86_400_000;

/// The topic settings a store's changelog is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogTopicConfig {
    /// `cleanup.policy`: `compact` for key-value stores, `compact,delete` for windowed ones.
    pub cleanup_policy: &'static str,
    /// `retention.ms`, for windowed stores: the store's retention plus one day.
    pub retention_ms: Option<i64>,
}

impl ChangelogTopicConfig {
    /// A key-value store's changelog: compacted, kept forever.
    pub fn key_value() -> ChangelogTopicConfig {
        ChangelogTopicConfig {
            cleanup_policy: "compact",
            retention_ms: None,
        }
    }

    /// A window or session store's changelog: compacted and deleted after the store's
    /// retention plus [`CHANGELOG_ADDITIONAL_RETENTION_MS`].
    pub fn windowed(store_retention_ms: i64) -> ChangelogTopicConfig {
        ChangelogTopicConfig {
            cleanup_policy: "compact,delete",
            retention_ms: Some(
                store_retention_ms.saturating_add(CHANGELOG_ADDITIONAL_RETENTION_MS),
            ),
        }
    }

    /// The settings as Kafka `key=value` pairs, for topic creation.
    ///
    /// ```
    /// use freshet_state_store::ChangelogTopicConfig;
    /// let settings = ChangelogTopicConfig::windowed(60_000).settings();
    /// assert_eq!(settings[0], ("cleanup.policy".to_string(), "compact,delete".to_string()));
    /// assert_eq!(settings[1], ("retention.ms".to_string(), "86460000".to_string()));
    /// ```
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut out = vec![(
            "cleanup.policy".to_string(),
            self.cleanup_policy.to_string(),
        )];
        if let Some(ms) = self.retention_ms {
            out.push(("retention.ms".to_string(), ms.to_string()));
        }
        out
    }
}
