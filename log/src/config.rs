//! Log-wide and per-topic configuration, with Kafka's setting names and defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What happens to old data of a topic (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CleanupPolicy {
    /// Delete whole segments past `retention.ms` / `retention.bytes`.
    Delete,
    /// Keep the latest record per key.
    Compact,
    /// Both: compact, and delete segments past retention.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether the cleaner compacts the topic.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
    /// Whether retention deletes segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
    fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }
}

/// A topic's partition count and settings.
///
/// ```
/// use freshet_log::TopicConfig;
/// let config = TopicConfig::partitions(4).with("cleanup.policy", "compact")?;
/// assert_eq!(config.partitions, 4);
/// # Ok::<(), freshet_log::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Number of partitions (≥ 1).
    pub partitions: u32,
    /// `retention.ms`: segments whose newest record is older are deleted; `None` = forever (-1).
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: oldest segments are deleted while a partition is larger; `None` = no limit.
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `segment.bytes`: the active segment rolls when a batch would pass this size.
    pub segment_bytes: u64,
    /// `segment.ms`: the active segment rolls when it is older than this.
    pub segment_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone survives compaction.
    pub delete_retention_ms: i64,
}

/// Every key [`TopicConfig::set`] knows, in describe order.
pub const TOPIC_CONFIG_KEYS: [&str; 7] = [
    "cleanup.policy",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

impl TopicConfig {
    /// Kafka's defaults with `n` partitions.
    pub fn partitions(n: u32) -> TopicConfig {
        TopicConfig {
            partitions: n,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Delete,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            delete_retention_ms: 24 * 3600 * 1000,
        }
    }

    /// Sets one setting by its Kafka name, builder style.
    pub fn with(mut self, key: &str, value: &str) -> Result<TopicConfig> {
        self.set(key, value)?;
        Ok(self)
    }

    /// Sets one setting by its Kafka name (`retention.ms`, `cleanup.policy`, …).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |reason: &str| Error::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let int = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("not an integer"))
        };
        match key {
            "retention.ms" => {
                let v = int()?;
                self.retention_ms = match v {
                    -1 => None,
                    v if v >= 0 => Some(v),
                    _ => return Err(bad("must be -1 or ≥ 0")),
                };
            }
            "retention.bytes" => {
                let v = int()?;
                self.retention_bytes = match v {
                    -1 => None,
                    v if v >= 0 => Some(v as u64),
                    _ => return Err(bad("must be -1 or ≥ 0")),
                };
            }
            "cleanup.policy" => {
                let mut parts: Vec<&str> = value.split(',').map(str::trim).collect();
                parts.sort_unstable();
                parts.dedup();
                self.cleanup_policy = match parts.as_slice() {
                    ["delete"] => CleanupPolicy::Delete,
                    ["compact"] => CleanupPolicy::Compact,
                    ["compact", "delete"] => CleanupPolicy::CompactDelete,
                    _ => return Err(bad("expected delete, compact or compact,delete")),
                };
            }
            "segment.bytes" => {
                let v = int()?;
                if v < 14 || v > i64::from(i32::MAX) {
                    return Err(bad("must be between 14 and 2147483647"));
                }
                self.segment_bytes = v as u64;
            }
            "segment.ms" => {
                let v = int()?;
                if v < 1 {
                    return Err(bad("must be at least 1"));
                }
                self.segment_ms = v;
            }
            "min.compaction.lag.ms" => {
                let v = int()?;
                if v < 0 {
                    return Err(bad("must be ≥ 0"));
                }
                self.min_compaction_lag_ms = v;
            }
            "delete.retention.ms" => {
                let v = int()?;
                if v < 0 {
                    return Err(bad("must be ≥ 0"));
                }
                self.delete_retention_ms = v;
            }
            _ => return Err(bad("unknown topic config")),
        }
        Ok(())
    }

    /// The settings as Kafka names and values (partitions excluded).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("cleanup.policy".into(), self.cleanup_policy.as_str().into());
        m.insert(
            "delete.retention.ms".into(),
            self.delete_retention_ms.to_string(),
        );
        m.insert(
            "min.compaction.lag.ms".into(),
            self.min_compaction_lag_ms.to_string(),
        );
        m.insert(
            "retention.bytes".into(),
            self.retention_bytes.map_or(-1, |v| v as i64).to_string(),
        );
        m.insert(
            "retention.ms".into(),
            self.retention_ms.unwrap_or(-1).to_string(),
        );
        m.insert("segment.bytes".into(), self.segment_bytes.to_string());
        m.insert("segment.ms".into(), self.segment_ms.to_string());
        m
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.partitions == 0 {
            return Err(Error::InvalidConfig {
                key: "partitions".into(),
                value: "0".into(),
                reason: "a topic needs at least one partition".into(),
            });
        }
        Ok(())
    }
}

/// How durable an append must be before it is acknowledged (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Acks {
    /// Acknowledged when handed to the log; a batch still lingering in the producer is lost if
    /// the process dies.
    None,
    /// Written to the operating system: survives a process crash, not a power loss (default).
    #[default]
    Written,
    /// Written and fsynced before the acknowledgement: survives a power loss.
    Synced,
}

impl std::str::FromStr for Acks {
    type Err = Error;
    fn from_str(s: &str) -> Result<Acks> {
        match s {
            "none" | "0" => Ok(Acks::None),
            "written" | "1" => Ok(Acks::Written),
            "synced" | "all" | "-1" => Ok(Acks::Synced),
            _ => Err(Error::InvalidConfig {
                key: "acks".into(),
                value: s.into(),
                reason: "expected none, written or synced".into(),
            }),
        }
    }
}

/// Settings of the whole log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Settings a topic gets for what its creator does not set.
    pub topic_defaults: TopicConfig,
    /// Bytes between two sparse index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// How often the background cleaner runs retention and compaction; `None` = never
    /// (call [`crate::Log::run_cleaner`] yourself).
    pub cleaner_interval: Option<Duration>,
    /// Durability of the log's own bookkeeping writes (offset commits, transaction state).
    pub durability: Acks,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            topic_defaults: TopicConfig::partitions(1),
            index_interval_bytes: 4096,
            cleaner_interval: Some(Duration::from_secs(15)),
            durability: Acks::Written,
        }
    }
}
