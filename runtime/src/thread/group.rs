//! A stream thread's membership of the app's consumer group: polling it, and moving tasks
//! when the group rebalances (see the crate docs, "Instances and rebalancing").
//!
//! The log's groups are eager: when a member joins or leaves, every member gives up
//! (revokes) its partitions on its next poll, and the assignment completes once all have.
//! A thread under exactly-once polls only when nothing is uncommitted — right after a
//! commit, or when idle — so it never rejoins with work in flight, and the new owners of its
//! tasks start from everything it did. Under at-least-once a thread polls without
//! committing first and commits when its tasks are revoked; if the rebalance completes
//! meanwhile the commit is refused (old generation) and the new owners redo that work, as
//! at-least-once allows. Revoked tasks are suspended (kept open, committed);
//! the new assignment resumes the ones the thread keeps and closes the others, and the
//! thread opens (restores) the ones it gains once their former owner in this instance, if
//! any, has closed them. A member that lost its membership (its session timed out) or whose
//! commit was refused for an old generation drops its tasks without committing and joins
//! again: what it did since its last commit is aborted, and the new owners redo it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use freshet_log::{Broker, BrokerMember, MemberConfig, RebalanceEvent};
use freshet_state_store::Backend;
use freshet_streams::{TaskId, TaskMetrics};

use super::StreamThread;
use crate::assignor::{parse_task_id, MemberData};
use crate::error::{Error, Result};

/// How often a thread polls the group when it has nothing uncommitted.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(50);
/// Under exactly-once a thread with uncommitted work waits for its regular commit before
/// polling; past this long without a poll it commits early to poll.
const MAX_POLL_GAP: Duration = Duration::from_secs(5);

/// Tasks with trees in the instance's backend (their trees are named `<task id>/<tree>`).
pub(crate) fn local_tasks(backend: &dyn Backend) -> Vec<String> {
    let mut tasks: BTreeSet<TaskId> = BTreeSet::new();
    if let Ok(names) = backend.tree_names() {
        for n in names {
            if let Some(t) = n.split_once('/').and_then(|(t, _)| parse_task_id(t)) {
                tasks.insert(t);
            }
        }
    }
    tasks.iter().map(ToString::to_string).collect()
}

/// Whether the group refused the thread: its membership or generation is gone.
fn migrated(e: &Error) -> bool {
    matches!(
        e,
        Error::Log(
            freshet_log::Error::IllegalGeneration { .. } | freshet_log::Error::UnknownMember { .. }
        )
    )
}

impl<B: Broker> StreamThread<B> {
    /// Whether the thread processes: it holds an assignment and has opened all of it.
    pub(super) fn active(&self) -> bool {
        self.member.is_some() && self.assigned && self.pending_open.is_empty()
    }

    /// The member config a thread of this instance joins with.
    pub(super) fn member_config(&self) -> MemberConfig {
        member_config(
            &self.shared.config,
            self.shared.assignor.clone(),
            &self.shared.instance_id,
            self.index,
            local_tasks(&*self.shared.backend),
        )
    }

    /// Polls the group when due (or now, with `force`) and handles what happened; opens
    /// assigned tasks whose locks are free. Returns whether the assignment changed.
    pub(super) fn group_step(&mut self, force: bool) -> Result<bool> {
        if self.member.is_none() {
            self.rejoin()?;
        }
        let since = self.last_poll.map(|t| t.elapsed());
        let due = force
            || !self.assigned
            || !self.pending_open.is_empty()
            || since.is_none_or(|s| s >= HEARTBEAT);
        if !due {
            return Ok(false);
        }
        let uncommitted = self.dirty || self.txn_open || self.has_outputs();
        if uncommitted && self.exactly_once() {
            if since.is_some_and(|s| s < MAX_POLL_GAP) && !force {
                return Ok(false);
            }
            self.dirty = true;
            self.commit()?;
            if self.member.is_none() {
                return Ok(true);
            }
        }
        self.last_poll = Some(Instant::now());
        let shared = self.shared.clone();
        let Some(member) = self.member.as_mut() else {
            return Ok(true);
        };
        let event = shared.handle.block_on(member.poll());
        let changed = match event {
            Ok(RebalanceEvent::Unchanged) => false,
            Ok(RebalanceEvent::Revoked(_)) => {
                self.on_revoked()?;
                true
            }
            Ok(RebalanceEvent::Assigned {
                generation,
                partitions,
            }) => {
                self.on_assigned(generation, &partitions)?;
                true
            }
            Err(e) => {
                let e = Error::Log(e);
                if !migrated(&e) {
                    return Err(e);
                }
                self.on_lost(&e);
                true
            }
        };
        if !self.pending_open.is_empty() && self.assigned {
            self.open_pending()?;
        }
        self.shared.set_running(self.index, self.active());
        Ok(changed)
    }

    /// A rebalance started: commit what is left (under at-least-once there may be some)
    /// and suspend every task until the new assignment.
    fn on_revoked(&mut self) -> Result<()> {
        tracing::info!(
            thread = self.index,
            tasks = self.tasks.len(),
            "rebalance: tasks revoked"
        );
        if self.dirty || self.txn_open || self.has_outputs() {
            self.dirty = true;
            self.commit()?;
        }
        // Tasks may be closed next: what they committed goes to sled first.
        self.apply_deferred()?;
        self.assigned = false;
        self.pending_open.clear();
        self.shared.set_running(self.index, false);
        Ok(())
    }

    /// The new assignment: resume the tasks kept, close the others, open the new ones.
    fn on_assigned(&mut self, generation: i32, partitions: &[(String, u32)]) -> Result<()> {
        let assigned: BTreeSet<TaskId> = partitions
            .iter()
            .filter_map(|(topic, p)| {
                self.shared.topic_subtopology.get(topic).map(|&sub| TaskId {
                    subtopology: sub,
                    partition: *p,
                })
            })
            .collect();
        let (keep, close): (Vec<_>, Vec<_>) = std::mem::take(&mut self.tasks)
            .into_iter()
            .partition(|t| assigned.contains(&t.id));
        let closing: Vec<TaskId> = close.iter().map(|t| t.id).collect();
        for t in close {
            self.close_task(t)?;
        }
        self.tasks = keep;
        let kept: BTreeSet<TaskId> = self.tasks.iter().map(|t| t.id).collect();
        self.pending_open = assigned.difference(&kept).copied().collect();
        self.assigned = true;
        self.reroute();
        tracing::info!(
            thread = self.index,
            generation,
            kept = kept.len(),
            closed = ?closing,
            new = ?self.pending_open,
            "rebalance: tasks assigned"
        );
        Ok(())
    }

    /// Opens the pending tasks no other thread of the instance holds any more.
    fn open_pending(&mut self) -> Result<()> {
        let mut waiting = Vec::new();
        for id in std::mem::take(&mut self.pending_open) {
            if self.stopping() || !self.shared.locks.try_lock(id, self.index) {
                waiting.push(id);
                continue;
            }
            let t = self.open_task(id, TaskMetrics::default())?;
            self.shared.locks.activate(id, self.index);
            self.tasks.push(t);
        }
        self.pending_open = waiting;
        self.tasks.sort_by_key(|t| t.id);
        self.reroute();
        self.publish();
        Ok(())
    }

    /// Closes a task this thread no longer owns (it is committed) and releases it.
    fn close_task(&mut self, t: crate::task::RuntimeTask) -> Result<()> {
        let id = t.id;
        let closed = t.task.close().map_err(|source| Error::Task {
            task: id.to_string(),
            source,
        });
        self.shared.locks.unlock(id, self.index);
        self.shared.metrics.remove_task(id);
        closed
    }

    /// The group no longer knows this member, or refused its generation: another member
    /// may own its tasks now. Everything uncommitted is aborted, the tasks are dropped
    /// without a commit, and the thread joins again.
    pub(super) fn on_lost(&mut self, why: &Error) {
        tracing::warn!(thread = self.index, error = %why, "lost the group membership; dropping tasks and rejoining");
        self.abort_quietly();
        for t in std::mem::take(&mut self.tasks) {
            let id = t.id;
            if let Err(e) = t.task.close() {
                tracing::warn!(task = %id, error = %e, "closing a migrated task failed");
            }
            self.shared.locks.unlock(id, self.index);
            self.shared.metrics.remove_task(id);
        }
        self.route.clear();
        self.pending_open.clear();
        self.assigned = false;
        self.dirty = false;
        // The dropped tasks' committed overlays went with them (replayed at restore).
        self.unapplied = false;
        self.unapplied_bytes = 0;
        self.member = None;
        self.shared.set_running(self.index, false);
    }

    /// Joins the group again with a new membership.
    fn rejoin(&mut self) -> Result<()> {
        let topics: Vec<&str> = self
            .shared
            .subscription
            .iter()
            .map(String::as_str)
            .collect();
        let config = self.member_config();
        let app = self.shared.config.application_id().to_string();
        let member = self.block_on(self.shared.broker.join_group(&app, &topics, config))?;
        self.member = Some(member);
        self.assigned = false;
        self.last_poll = None;
        Ok(())
    }
}

/// The config a member (stream thread `thread` of instance `instance`) joins with.
pub(crate) fn member_config(
    config: &crate::config::StreamsConfig,
    assignor: std::sync::Arc<crate::assignor::TaskAssignor>,
    instance: &str,
    thread: usize,
    local: Vec<String>,
) -> MemberConfig {
    MemberConfig {
        session_timeout: Duration::from_millis(config.session_timeout_ms()),
        assignor,
        user_data: MemberData {
            instance: instance.to_string(),
            thread,
            local,
        }
        .encode(),
    }
}
