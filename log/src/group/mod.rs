//! Consumer groups: committed offsets (durable, in the internal `__consumer_offsets`
//! partition), membership with generations, and partition assignment.
//!
//! Offsets are stored like Kafka stores them: as records keyed by (group, topic, partition)
//! in a compacted internal partition, so a transactional offset commit is just one more
//! partition in the transaction and becomes visible with its commit marker.

mod membership;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::config::Acks;
use crate::error::{Error, Result};
use crate::log::{Log, LogInner, INTERNAL_DIR};
use crate::partition::{Isolation, Partition};
use crate::record::Record;

pub(crate) use membership::Membership;
pub use membership::{
    Assignment, Assignor, GroupMember, MemberConfig, MemberInfo, RangeAssignor, RebalanceEvent,
    RebalanceListener,
};

/// Name of the internal partition holding committed offsets.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A committed position: the next offset to read, plus an application-defined blob
/// (Kafka's `OffsetAndMetadata`; freshet's runtime keeps stream times there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetAndMetadata {
    /// The next offset the group will read.
    pub offset: i64,
    /// Free-form metadata committed with the offset.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without metadata.
    pub fn new(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata {
            offset,
            metadata: String::new(),
        }
    }
}

/// One partition's committed offset and lag, as `groups describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The committed offset, if any.
    pub committed: Option<i64>,
    /// The partition's last stable offset (what a read_committed member can reach).
    pub end: i64,
    /// `end - committed` (or `end - start` when nothing is committed).
    pub lag: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t")]
enum StoredKey {
    #[serde(rename = "o")]
    Offset { g: String, topic: String, p: u32 },
    #[serde(rename = "g")]
    Group { g: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredGroup {
    generation: i32,
}

type OffsetMap = BTreeMap<(String, u32), OffsetAndMetadata>;

#[derive(Debug, Default)]
pub(crate) struct GroupTable {
    pub(crate) offsets: HashMap<String, OffsetMap>,
    pub(crate) generations: HashMap<String, i32>,
    /// Offsets written in open transactions, by producer id.
    pending: HashMap<i64, Vec<(String, String, u32, OffsetAndMetadata)>>,
    replayed_to: i64,
}

/// Owns committed offsets and group membership.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    log: Arc<Partition>,
    pub(crate) table: Mutex<GroupTable>,
    pub(crate) members: Membership,
}

fn encode_key(k: &StoredKey) -> Bytes {
    Bytes::from(serde_json::to_vec(k).unwrap_or_default())
}

impl GroupCoordinator {
    pub(crate) fn open(
        dir: &Path,
        writable: bool,
        index_interval: u64,
    ) -> Result<GroupCoordinator> {
        let config = crate::txn::internal_topic_config()?;
        let pdir = dir.join(INTERNAL_DIR).join(OFFSETS_TOPIC).join("0");
        let log = Arc::new(Partition::open(
            OFFSETS_TOPIC,
            0,
            pdir,
            config,
            writable,
            index_interval,
        )?);
        Ok(GroupCoordinator {
            log,
            table: Mutex::new(GroupTable::default()),
            members: Membership::default(),
        })
    }

    pub(crate) fn offsets_partition(&self, partition: u32) -> Option<Arc<Partition>> {
        (partition == 0).then(|| self.log.clone())
    }

    /// Replays committed offset records (after transaction recovery wrote every marker).
    pub(crate) fn load(&self, _inner: &LogInner) -> Result<()> {
        let mut t = self.table.lock();
        let mut pos = t.replayed_to.max(self.log.offsets().start);
        loop {
            let stable = self.log.offsets().last_stable;
            if pos >= stable {
                break;
            }
            let read = self.log.read_from(pos, 4 << 20, Isolation::ReadCommitted)?;
            if read.next_offset <= pos {
                break;
            }
            let next = read.next_offset;
            for r in read.records {
                let Some(key) = r.key else { continue };
                let key: StoredKey = match serde_json::from_slice(&key) {
                    Ok(k) => k,
                    Err(e) => {
                        return Err(Error::Corrupt {
                            path: self.log.dir.clone(),
                            position: r.offset as u64,
                            reason: format!("offset commit key: {e}"),
                        })
                    }
                };
                match key {
                    StoredKey::Offset { g, topic, p } => match r.value {
                        Some(v) => {
                            let om: OffsetAndMetadata =
                                serde_json::from_slice(&v).map_err(|e| Error::Corrupt {
                                    path: self.log.dir.clone(),
                                    position: r.offset as u64,
                                    reason: format!("offset commit value: {e}"),
                                })?;
                            t.offsets.entry(g).or_default().insert((topic, p), om);
                        }
                        None => {
                            if let Some(m) = t.offsets.get_mut(&g) {
                                m.remove(&(topic, p));
                            }
                        }
                    },
                    StoredKey::Group { g } => {
                        if let Some(v) = r.value {
                            if let Ok(sg) = serde_json::from_slice::<StoredGroup>(&v) {
                                t.generations.insert(g, sg.generation);
                            }
                        }
                    }
                }
            }
            pos = next;
        }
        t.replayed_to = pos;
        Ok(())
    }

    /// Read-only handles: picks up offsets committed since.
    pub(crate) fn refresh(&self, inner: &LogInner) -> Result<()> {
        let cap = self.log.refresh()?;
        self.log.finish_refresh(cap)?;
        self.load(inner)
    }

    /// A topic was deleted: its committed offsets go, durably (tombstones in the offsets
    /// partition), so neither a reopen nor a recreated topic of that name brings them back.
    pub(crate) fn forget_topic(&self, topic: &str, acks: Acks) -> Result<()> {
        let mut tombstones = Vec::new();
        {
            let mut t = self.table.lock();
            for (g, m) in t.offsets.iter_mut() {
                m.retain(|(tp, p), _| {
                    if tp != topic {
                        return true;
                    }
                    tombstones.push(Record {
                        key: Some(encode_key(&StoredKey::Offset {
                            g: g.clone(),
                            topic: tp.clone(),
                            p: *p,
                        })),
                        value: None,
                        timestamp: None,
                        headers: Vec::new(),
                    });
                    false
                });
            }
        }
        if !tombstones.is_empty() {
            self.log.append(&tombstones, None, acks)?;
        }
        Ok(())
    }

    /// Encodes offset commits as records for the offsets partition.
    pub(crate) fn offset_records(
        &self,
        group: &str,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) -> Result<(Arc<Partition>, Vec<Record>)> {
        let mut records = Vec::with_capacity(offsets.len());
        for (topic, p, om) in offsets {
            let key = encode_key(&StoredKey::Offset {
                g: group.to_string(),
                topic: topic.clone(),
                p: *p,
            });
            let value = serde_json::to_vec(om).map_err(|e| Error::InvalidConfig {
                key: "offset metadata".into(),
                value: om.metadata.clone(),
                reason: e.to_string(),
            })?;
            records.push(Record {
                key: Some(key),
                value: Some(value.into()),
                timestamp: None,
                headers: Vec::new(),
            });
        }
        Ok((self.log.clone(), records))
    }

    pub(crate) fn add_pending(
        &self,
        producer_id: i64,
        group: &str,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) {
        let mut t = self.table.lock();
        let v = t.pending.entry(producer_id).or_default();
        v.extend(
            offsets
                .iter()
                .map(|(topic, p, om)| (group.to_string(), topic.clone(), *p, om.clone())),
        );
    }

    /// A transaction ended: its offset commits apply (commit) or vanish (abort).
    pub(crate) fn complete_txn(&self, producer_id: i64, commit: bool) {
        let mut t = self.table.lock();
        let pending = t.pending.remove(&producer_id).unwrap_or_default();
        if commit {
            for (g, topic, p, om) in pending {
                t.offsets.entry(g).or_default().insert((topic, p), om);
            }
        }
    }

    /// Fails when `generation` is not the group's current one. `None` (a commit from outside
    /// any generation) is accepted only while the group has no members.
    pub(crate) fn check_generation(&self, group: &str, generation: Option<i32>) -> Result<()> {
        let current = self.members.generation(group);
        let active = self.members.has_members(group);
        match generation {
            Some(g) if active && g != current => Err(Error::IllegalGeneration {
                group: group.to_string(),
                generation: g,
                current,
            }),
            Some(_) => Ok(()),
            None if active => Err(Error::IllegalGeneration {
                group: group.to_string(),
                generation: -1,
                current,
            }),
            None => Ok(()),
        }
    }

    fn commit(
        &self,
        inner: &LogInner,
        group: &str,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) -> Result<()> {
        let (partition, records) = self.offset_records(group, offsets)?;
        partition.append(&records, None, inner.config.durability)?;
        let mut t = self.table.lock();
        let m = t.offsets.entry(group.to_string()).or_default();
        for (topic, p, om) in offsets {
            m.insert((topic.clone(), *p), om.clone());
        }
        Ok(())
    }

    pub(crate) fn store_generation(
        &self,
        inner: &LogInner,
        group: &str,
        generation: i32,
    ) -> Result<()> {
        let key = encode_key(&StoredKey::Group {
            g: group.to_string(),
        });
        let value = serde_json::to_vec(&StoredGroup { generation }).unwrap_or_default();
        let record = Record {
            key: Some(key),
            value: Some(value.into()),
            timestamp: None,
            headers: Vec::new(),
        };
        self.log.append(&[record], None, inner.config.durability)?;
        self.table
            .lock()
            .generations
            .insert(group.to_string(), generation);
        Ok(())
    }
}

impl Log {
    /// Commits offsets for a group outside any transaction. `generation` is the committing
    /// member's generation (`None` for a standalone consumer; refused while the group has
    /// members).
    pub fn commit_offsets(
        &self,
        group: &str,
        generation: Option<i32>,
        offsets: &[(String, u32, OffsetAndMetadata)],
    ) -> Result<()> {
        self.check_writable("commit offsets")?;
        self.inner.groups.check_generation(group, generation)?;
        self.inner.groups.commit(&self.inner, group, offsets)?;
        self.inner.notify.notify_waiters();
        Ok(())
    }

    /// The group's committed offset for one partition.
    pub fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<OffsetAndMetadata>> {
        self.refresh()?;
        let t = self.inner.groups.table.lock();
        Ok(t.offsets
            .get(group)
            .and_then(|m| m.get(&(topic.to_string(), partition)))
            .cloned())
    }

    /// Every committed offset of a group, by (topic, partition).
    pub fn committed_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<(String, u32), OffsetAndMetadata>> {
        self.refresh()?;
        let t = self.inner.groups.table.lock();
        Ok(t.offsets.get(group).cloned().unwrap_or_default())
    }

    /// Groups that have committed offsets or have members, sorted.
    pub fn list_groups(&self) -> Result<Vec<String>> {
        self.refresh()?;
        let mut names: Vec<String> = self
            .inner
            .groups
            .table
            .lock()
            .offsets
            .keys()
            .cloned()
            .collect();
        names.extend(self.inner.groups.members.group_names());
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Committed offset, end and lag per partition of the group's committed and subscribed
    /// topics.
    pub fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>> {
        self.refresh()?;
        let committed = self
            .inner
            .groups
            .table
            .lock()
            .offsets
            .get(group)
            .cloned()
            .unwrap_or_default();
        let mut topics: Vec<String> = committed.keys().map(|(t, _)| t.clone()).collect();
        topics.extend(self.inner.groups.members.subscribed_topics(group));
        topics.sort();
        topics.dedup();
        if topics.is_empty() && !self.list_groups()?.iter().any(|g| g == group) {
            return Err(Error::UnknownGroup {
                group: group.to_string(),
            });
        }
        let mut out = Vec::new();
        for topic in topics {
            let Ok(n) = self.partition_count(&topic) else {
                continue;
            };
            for p in 0..n {
                let offsets = self.offsets(&topic, p)?;
                let c = committed.get(&(topic.clone(), p)).map(|om| om.offset);
                out.push(PartitionLag {
                    topic: topic.clone(),
                    partition: p,
                    committed: c,
                    end: offsets.last_stable,
                    lag: (offsets.last_stable - c.unwrap_or(offsets.start)).max(0),
                });
            }
        }
        Ok(out)
    }
}
