//! Topic metadata: name, id, partition count and settings, persisted as `topic.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::TopicConfig;
use crate::error::{Error, Result};
use crate::partition::{Partition, PartitionOffsets};
use crate::segment;

const META_FILE: &str = "topic.json";

/// What a topic is, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TopicMeta {
    pub(crate) name: String,
    pub(crate) id: Uuid,
    pub(crate) config: TopicConfig,
}

/// A topic: its metadata and open partitions.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) dir: PathBuf,
    pub(crate) meta: RwLock<TopicMeta>,
    pub(crate) partitions: RwLock<Vec<Arc<Partition>>>,
}

/// A topic as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The name.
    pub name: String,
    /// The id given at creation: a recreated topic has a new one.
    pub id: Uuid,
    /// Partition count and settings.
    pub config: TopicConfig,
    /// Each partition's offsets and size.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition number.
    pub partition: u32,
    /// Start, end and last stable offsets.
    pub offsets: PartitionOffsets,
    /// Bytes on disk in segment files.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
}

/// Checks a topic name against Kafka's rule.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidTopicName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name == "." || name == ".." {
        return Err(bad("'.' and '..' are not allowed"));
    }
    if name.len() > 249 {
        return Err(bad("longer than 249 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(bad(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    if name.starts_with("__") {
        return Err(bad(
            "names starting with '__' are reserved for internal topics",
        ));
    }
    Ok(())
}

impl Topic {
    /// Writes a new topic's metadata and opens its partitions.
    pub(crate) fn create(dir: PathBuf, meta: TopicMeta, index_interval: u64) -> Result<Topic> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create topic dir", &dir, e))?;
        let topic = Topic {
            dir,
            meta: RwLock::new(meta),
            partitions: RwLock::new(Vec::new()),
        };
        topic.open_partitions(true, index_interval)?;
        topic.save()?;
        Ok(topic)
    }

    /// Opens a topic from its directory; `None` when the directory holds no metadata
    /// (a creation interrupted before it was recorded).
    pub(crate) fn open(dir: PathBuf, writable: bool, index_interval: u64) -> Result<Option<Topic>> {
        let Some(meta) = read_meta(&dir)? else {
            return Ok(None);
        };
        let topic = Topic {
            dir,
            meta: RwLock::new(meta),
            partitions: RwLock::new(Vec::new()),
        };
        topic.open_partitions(writable, index_interval)?;
        Ok(Some(topic))
    }

    /// Opens partitions up to the configured count (all of them, or the added ones).
    pub(crate) fn open_partitions(&self, writable: bool, index_interval: u64) -> Result<()> {
        let meta = self.meta.read().clone();
        let mut parts = self.partitions.write();
        for p in parts.len() as u32..meta.config.partitions {
            let dir = partition_dir(&self.dir, p);
            parts.push(Arc::new(Partition::open(
                &meta.name,
                p,
                dir,
                meta.config.clone(),
                writable,
                index_interval,
            )?));
        }
        Ok(())
    }

    /// Persists the metadata atomically.
    pub(crate) fn save(&self) -> Result<()> {
        let meta = self.meta.read().clone();
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| Error::InvalidConfig {
            key: "topic".into(),
            value: meta.name.clone(),
            reason: e.to_string(),
        })?;
        segment::write_file_atomic(&self.dir.join(META_FILE), &bytes)
    }

    pub(crate) fn partition(&self, p: u32) -> Result<Arc<Partition>> {
        let parts = self.partitions.read();
        parts
            .get(p as usize)
            .cloned()
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.meta.read().name.clone(),
                partition: p,
                partitions: parts.len() as u32,
            })
    }

    pub(crate) fn describe(&self) -> TopicDescription {
        let meta = self.meta.read().clone();
        let partitions = self
            .partitions
            .read()
            .iter()
            .map(|p| {
                let st = p.state.lock();
                PartitionDescription {
                    partition: p.id,
                    offsets: PartitionOffsets {
                        start: st.log_start,
                        end: st.end(),
                        last_stable: st.last_stable(),
                    },
                    size_bytes: st.size_bytes(),
                    segments: st.segments.len(),
                }
            })
            .collect();
        TopicDescription {
            name: meta.name,
            id: meta.id,
            config: meta.config,
            partitions,
        }
    }
}

/// Reads a topic directory's metadata; `None` when it has none (yet).
pub(crate) fn read_meta(dir: &Path) -> Result<Option<TopicMeta>> {
    let path = dir.join(META_FILE);
    let Some(bytes) = segment::read_optional(&path)? else {
        return Ok(None);
    };
    let meta = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        path: path.clone(),
        position: e.column() as u64,
        reason: e.to_string(),
    })?;
    Ok(Some(meta))
}

pub(crate) fn partition_dir(topic_dir: &Path, p: u32) -> PathBuf {
    topic_dir.join(p.to_string())
}
