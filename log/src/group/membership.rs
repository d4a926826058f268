//! Group membership: join, heartbeat, leave, and eager rebalancing with generations.
//!
//! The protocol is Kafka's eager one, in-process: when membership or the subscribed
//! topics' partition counts change, the group enters a rebalance; every member, on its next
//! poll, gives up (revokes) its partitions; when all members have done so (or a laggard's
//! session times out and it is removed), the assignor runs, the generation increases, and
//! each member receives its new partitions on its next poll. So no two members ever own a
//! partition at the same time, and a member of an older generation cannot commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::group::OffsetAndMetadata;
use crate::log::Log;

/// Partitions given to one member: (topic, partition), sorted.
pub type Assignment = Vec<(String, u32)>;

/// What the assignor knows of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member id (join order sorts the same as id order).
    pub member_id: String,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Opaque data the member joined with (e.g. the runtime's task ownership, for stickiness).
    pub user_data: Vec<u8>,
}

/// Decides which member gets which partition (Kafka's `ConsumerPartitionAssignor`).
pub trait Assignor: Send + Sync + Debug {
    /// A name for logs.
    fn name(&self) -> &str;
    /// Assigns partitions of `partitions` (topic → count) to `members` (sorted by id). Every
    /// member must appear in the result, possibly with nothing.
    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, u32>,
    ) -> BTreeMap<String, Assignment>;
}

/// Kafka's `RangeAssignor`: per topic, partitions split into contiguous ranges over the
/// members subscribed to it, in member order. Topics with equal partition counts are
/// therefore co-partitioned: partition `p` of each goes to the same member.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, u32>,
    ) -> BTreeMap<String, Assignment> {
        let mut out: BTreeMap<String, Assignment> = members
            .iter()
            .map(|m| (m.member_id.clone(), Vec::new()))
            .collect();
        for (topic, &n) in partitions {
            let subs: Vec<&MemberInfo> = members
                .iter()
                .filter(|m| m.topics.contains(topic))
                .collect();
            if subs.is_empty() {
                continue;
            }
            let per = n as usize / subs.len();
            let extra = n as usize % subs.len();
            let mut next = 0u32;
            for (i, m) in subs.iter().enumerate() {
                let count = per + usize::from(i < extra);
                let a = out.entry(m.member_id.clone()).or_default();
                for _ in 0..count {
                    a.push((topic.clone(), next));
                    next += 1;
                }
            }
        }
        for a in out.values_mut() {
            a.sort();
        }
        out
    }
}

/// Receives partition ownership changes during [`GroupMember::poll`] (Kafka's
/// `ConsumerRebalanceListener`).
pub trait RebalanceListener {
    /// Called before partitions are taken away: commit their progress here.
    fn on_partitions_revoked(&mut self, member: &GroupMember, partitions: &[(String, u32)]);
    /// Called when partitions are given; the member now owns them.
    fn on_partitions_assigned(&mut self, member: &GroupMember, partitions: &[(String, u32)]);
}

/// What a poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// Nothing changed.
    Unchanged,
    /// A rebalance is in progress; the member's partitions were revoked and it waits.
    Revoked(Assignment),
    /// A new generation started with this assignment.
    Assigned {
        /// The new generation.
        generation: i32,
        /// The member's partitions in it.
        partitions: Assignment,
    },
}

#[derive(Debug)]
struct MemberState {
    info: MemberInfo,
    session_timeout: Duration,
    last_seen: Instant,
    /// Whether the member has revoked for the rebalance in progress.
    rejoined: bool,
}

#[derive(Debug)]
struct GroupState {
    generation: i32,
    members: BTreeMap<String, MemberState>,
    assignment: BTreeMap<String, Assignment>,
    /// Partition counts the current assignment was made for.
    assigned_counts: BTreeMap<String, u32>,
    rebalancing: bool,
    assignor: Arc<dyn Assignor>,
    next_member: u64,
}

/// All groups' membership (in memory: members live in this process).
#[derive(Debug, Default)]
pub(crate) struct Membership {
    groups: Mutex<HashMap<String, GroupState>>,
}

impl Membership {
    pub(crate) fn generation(&self, group: &str) -> i32 {
        self.groups.lock().get(group).map_or(-1, |g| g.generation)
    }
    pub(crate) fn has_members(&self, group: &str) -> bool {
        self.groups
            .lock()
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
    }
    pub(crate) fn group_names(&self) -> Vec<String> {
        self.groups
            .lock()
            .iter()
            .filter(|(_, g)| !g.members.is_empty())
            .map(|(n, _)| n.clone())
            .collect()
    }
    pub(crate) fn subscribed_topics(&self, group: &str) -> Vec<String> {
        let groups = self.groups.lock();
        let mut topics: BTreeSet<String> = BTreeSet::new();
        if let Some(g) = groups.get(group) {
            for m in g.members.values() {
                topics.extend(m.info.topics.iter().cloned());
            }
        }
        topics.into_iter().collect()
    }
}

/// Settings of a group member.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// A member not polling for this long is removed and its partitions reassigned
    /// (`session.timeout.ms`, default 45 s).
    pub session_timeout: Duration,
    /// The assignor (all members of a group must use the same; the first member's wins).
    pub assignor: Arc<dyn Assignor>,
    /// Data handed to the assignor with this member.
    pub user_data: Vec<u8>,
}

impl Default for MemberConfig {
    fn default() -> Self {
        MemberConfig {
            session_timeout: Duration::from_secs(45),
            assignor: Arc::new(RangeAssignor),
            user_data: Vec::new(),
        }
    }
}

/// A member of a consumer group.
///
/// ```
/// use freshet_log::{Log, MemberConfig, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path())?;
/// log.create_topic("in", TopicConfig::partitions(4))?;
/// let mut a = log.join_group("g", &["in"], MemberConfig::default())?;
/// a.poll()?;
/// assert_eq!(a.assignment().len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct GroupMember {
    log: Log,
    group: String,
    member_id: String,
    generation: i32,
    assignment: Assignment,
    left: bool,
}

impl Log {
    /// Joins `group` subscribed to `topics`; a rebalance starts. Call [`GroupMember::poll`]
    /// to receive partitions.
    pub fn join_group(
        &self,
        group: &str,
        topics: &[&str],
        config: MemberConfig,
    ) -> Result<GroupMember> {
        self.check_writable("join group")?;
        let groups = &self.inner.groups;
        let stored_gen = groups
            .table
            .lock()
            .generations
            .get(group)
            .copied()
            .unwrap_or(0);
        let mut all = groups.members.groups.lock();
        let g = all.entry(group.to_string()).or_insert_with(|| GroupState {
            generation: stored_gen,
            members: BTreeMap::new(),
            assignment: BTreeMap::new(),
            assigned_counts: BTreeMap::new(),
            rebalancing: false,
            assignor: config.assignor.clone(),
            next_member: 0,
        });
        if g.members.is_empty() {
            g.assignor = config.assignor.clone();
        }
        let member_id = format!("{group}-member-{:06}", g.next_member);
        g.next_member += 1;
        let mut sorted: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        sorted.sort();
        sorted.dedup();
        g.members.insert(
            member_id.clone(),
            MemberState {
                info: MemberInfo {
                    member_id: member_id.clone(),
                    topics: sorted,
                    user_data: config.user_data,
                },
                session_timeout: config.session_timeout,
                last_seen: Instant::now(),
                rejoined: true,
            },
        );
        start_rebalance(g);
        tracing::info!(group, member = %member_id, "member joined; rebalancing");
        Ok(GroupMember {
            log: self.clone(),
            group: group.to_string(),
            member_id,
            generation: -1,
            assignment: Vec::new(),
            left: false,
        })
    }
}

fn start_rebalance(g: &mut GroupState) {
    g.rebalancing = true;
    for m in g.members.values_mut() {
        m.rejoined = false;
    }
}

impl GroupMember {
    /// The member id.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }
    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }
    /// The generation of the member's current assignment (-1 before the first).
    pub fn generation(&self) -> i32 {
        self.generation
    }
    /// The partitions this member owns now.
    pub fn assignment(&self) -> &[(String, u32)] {
        &self.assignment
    }

    /// Heartbeats and takes part in any rebalance: revokes partitions when one starts,
    /// receives new ones when it completes. Call it often (at least once per session timeout).
    pub fn poll(&mut self) -> Result<RebalanceEvent> {
        self.poll_inner()
    }

    /// [`GroupMember::poll`], reporting changes to a listener.
    pub fn poll_with(&mut self, listener: &mut dyn RebalanceListener) -> Result<RebalanceEvent> {
        let ev = self.poll_inner()?;
        match &ev {
            RebalanceEvent::Revoked(parts) => listener.on_partitions_revoked(self, parts),
            RebalanceEvent::Assigned { partitions, .. } => {
                listener.on_partitions_assigned(self, partitions)
            }
            RebalanceEvent::Unchanged => {}
        }
        Ok(ev)
    }

    fn poll_inner(&mut self) -> Result<RebalanceEvent> {
        if self.left {
            return Err(self.unknown());
        }
        let counts = self.partition_counts();
        let inner = &self.log.inner;
        let mut all = inner.groups.members.groups.lock();
        let g = all.get_mut(&self.group).ok_or_else(|| self.unknown())?;
        let now = Instant::now();
        match g.members.get_mut(&self.member_id) {
            Some(m) => m.last_seen = now,
            None => {
                // Expired: rejoin as the same member would in Kafka after a fence.
                self.assignment.clear();
                self.generation = -1;
                return Err(self.unknown());
            }
        }
        expire(g, now, &self.group);
        if !g.rebalancing && topic_counts(g, &counts) != g.assigned_counts {
            tracing::info!(group = %self.group, "subscribed partition counts changed; rebalancing");
            start_rebalance(g);
        }
        if g.rebalancing {
            let Some(me) = g.members.get_mut(&self.member_id) else {
                return Err(self.unknown());
            };
            if !me.rejoined {
                me.rejoined = true;
                let revoked = std::mem::take(&mut self.assignment);
                if !revoked.is_empty() {
                    // The generation is still the old one, so the listener can commit.
                    return Ok(RebalanceEvent::Revoked(revoked));
                }
            }
            if !g.members.values().all(|m| m.rejoined) {
                return Ok(RebalanceEvent::Unchanged);
            }
            complete_rebalance(g, &counts);
            if let Err(e) = inner
                .groups
                .store_generation(inner, &self.group, g.generation)
            {
                tracing::warn!(group = %self.group, error = %e, "could not persist group generation");
            }
        }
        if self.generation != g.generation {
            self.generation = g.generation;
            self.assignment = g
                .assignment
                .get(&self.member_id)
                .cloned()
                .unwrap_or_default();
            return Ok(RebalanceEvent::Assigned {
                generation: self.generation,
                partitions: self.assignment.clone(),
            });
        }
        Ok(RebalanceEvent::Unchanged)
    }

    fn partition_counts(&self) -> BTreeMap<String, u32> {
        let topics = self.log.inner.groups.members.subscribed_topics(&self.group);
        topics
            .into_iter()
            .filter_map(|t| self.log.partition_count(&t).ok().map(|n| (t, n)))
            .collect()
    }

    fn unknown(&self) -> Error {
        Error::UnknownMember {
            group: self.group.clone(),
            member: self.member_id.clone(),
        }
    }

    /// Commits offsets under this member's generation (fails with
    /// [`Error::IllegalGeneration`] after the group moved on).
    pub fn commit(&self, offsets: &[(String, u32, OffsetAndMetadata)]) -> Result<()> {
        self.log
            .commit_offsets(&self.group, Some(self.generation), offsets)
    }

    /// Leaves the group; its partitions are reassigned to the others.
    pub fn leave(mut self) -> Result<()> {
        self.leave_inner();
        Ok(())
    }

    fn leave_inner(&mut self) {
        if self.left {
            return;
        }
        self.left = true;
        let mut all = self.log.inner.groups.members.groups.lock();
        if let Some(g) = all.get_mut(&self.group) {
            if g.members.remove(&self.member_id).is_some() {
                g.assignment.remove(&self.member_id);
                tracing::info!(group = %self.group, member = %self.member_id, "member left; rebalancing");
                if !g.members.is_empty() {
                    start_rebalance(g);
                }
            }
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        self.leave_inner();
    }
}

fn topic_counts(g: &GroupState, counts: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let subscribed: BTreeSet<&String> = g
        .members
        .values()
        .flat_map(|m| m.info.topics.iter())
        .collect();
    counts
        .iter()
        .filter(|(t, _)| subscribed.contains(t))
        .map(|(t, n)| (t.clone(), *n))
        .collect()
}

fn expire(g: &mut GroupState, now: Instant, group: &str) {
    let dead: Vec<String> = g
        .members
        .iter()
        .filter(|(_, m)| now.duration_since(m.last_seen) > m.session_timeout)
        .map(|(id, _)| id.clone())
        .collect();
    for id in dead {
        tracing::warn!(group, member = %id, "member session timed out; removing it");
        g.members.remove(&id);
        g.assignment.remove(&id);
        start_rebalance(g);
    }
}

fn complete_rebalance(g: &mut GroupState, counts: &BTreeMap<String, u32>) {
    let members: Vec<MemberInfo> = g.members.values().map(|m| m.info.clone()).collect();
    let for_assign = topic_counts(g, counts);
    let mut assignment = g.assignor.assign(&members, &for_assign);
    for m in &members {
        assignment.entry(m.member_id.clone()).or_default();
    }
    g.assignment = assignment;
    g.assigned_counts = for_assign;
    g.generation += 1;
    g.rebalancing = false;
    tracing::info!(
        generation = g.generation,
        members = members.len(),
        assignor = g.assignor.name(),
        "rebalance complete"
    );
}
