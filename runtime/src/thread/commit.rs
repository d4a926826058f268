//! The commit protocol of a stream thread (see the crate docs): outputs partitioned and
//! appended, changelogs and offsets with stream times in the thread's transaction, commit,
//! apply; on failure, abort and restart the thread's tasks from committed state.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use freshet_log::{Broker, BrokerMember, BrokerTransaction, OffsetAndMetadata, Record};
use freshet_state_store::StateStore;
use freshet_streams::{partition_for_key, SinkRecord, TaskId, TaskMetrics};

use super::{StreamThread, MAX_FAILED_COMMITS};
use crate::changelog::{BrokerChangelogSink, SinkTarget};
use crate::error::{Error, Result};

impl<B: Broker> StreamThread<B> {
    pub(super) fn partition_count(&mut self, topic: &str) -> Result<u32> {
        if let Some(&n) = self.shared.partitions.get(topic) {
            return Ok(n);
        }
        if let Some(&n) = self.sink_partitions.get(topic) {
            return Ok(n);
        }
        match self.block_on(self.shared.broker.describe_topic(topic)) {
            Ok(d) => {
                self.sink_partitions
                    .insert(topic.to_string(), d.config.partitions);
                Ok(d.config.partitions)
            }
            Err(freshet_log::Error::UnknownTopic { .. }) => Err(Error::MissingSinkTopic {
                topic: topic.to_string(),
                hint: " (a topic chosen per record must exist before the app writes to it)",
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The partition of an output: the sink's choice, else murmur2 of the key bytes, else
    /// round robin for a null key.
    pub(super) fn partition_of(&mut self, r: &SinkRecord) -> Result<u32> {
        let n = self.partition_count(&r.topic)?;
        match (r.partition, &r.key) {
            (Some(p), _) if p < n => Ok(p),
            (Some(p), _) => Err(Error::PartitionMismatch {
                topic: r.topic.clone(),
                actual: n,
                expected: p + 1,
                why: format!("a partitioner chose partition {p}"),
            }),
            (None, Some(k)) => Ok(partition_for_key(k, n)),
            (None, None) => {
                let next = self.round_robin.entry(r.topic.clone()).or_insert(0);
                let p = *next % n;
                *next = next.wrapping_add(1);
                Ok(p)
            }
        }
    }

    pub(super) fn ensure_txn(&mut self) -> Result<()> {
        if self.txn_open {
            return Ok(());
        }
        let shared = self.shared.clone();
        let txn = self.session()?;
        shared.handle.block_on(txn.begin())?;
        self.txn_open = true;
        Ok(())
    }

    pub(super) fn session(&mut self) -> Result<&mut B::Transaction> {
        if self.txn.is_none() {
            let id = self.transactional_id();
            let acks = self.shared.config.durability();
            let s = self.block_on(self.shared.broker.transaction(&id, acks))?;
            self.txn = Some(s);
        }
        self.txn.as_mut().ok_or_else(|| Error::ThreadFailed {
            thread: self.index,
            reason: "no transactional session".into(),
        })
    }

    /// Appends the pending outputs, one batch per partition in order: inside the open
    /// transaction (exactly-once) or plainly (at-least-once).
    pub(super) fn append_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let mut batches: BTreeMap<(String, u32), Vec<Record>> = BTreeMap::new();
        for r in pending {
            let p = self.partition_of(&r)?;
            if self.shared.plan.internal.contains(&r.topic) {
                self.wrote_internal = true;
            }
            batches.entry((r.topic, p)).or_default().push(Record {
                key: r.key,
                value: r.value,
                timestamp: Some(r.timestamp),
                headers: r.headers,
            });
        }
        let shared = self.shared.clone();
        if self.exactly_once() {
            self.ensure_txn()?;
            let txn = self.session()?;
            for ((topic, p), records) in &batches {
                shared.handle.block_on(txn.append(topic, *p, records))?;
            }
        } else {
            let acks = shared.config.durability();
            for ((topic, p), records) in &batches {
                shared
                    .handle
                    .block_on(shared.broker.append(topic, *p, records, acks))?;
            }
        }
        Ok(())
    }

    /// The commit protocol (crate docs): flush, append outputs and changelogs and offsets
    /// with stream times, commit, then apply to the stores.
    pub(super) fn commit(&mut self) -> Result<()> {
        let started = Instant::now();
        for ti in 0..self.tasks.len() {
            let t = &mut self.tasks[ti];
            t.task.flush().map_err(|source| Error::Task {
                task: t.id.to_string(),
                source,
            })?;
            let out = t.task.take_outputs();
            self.pending.extend(out);
        }
        let offsets = match self.commit_log() {
            Ok(o) => o,
            Err(e) => return self.commit_failed(e),
        };
        // Step 4: only now does committed data reach sled, each tree with its offset.
        let mut apply_failed = None;
        for t in &mut self.tasks {
            let r = t
                .task
                .stores(|s: &mut dyn StateStore| {
                    s.committed();
                    Ok(())
                })
                .and_then(|()| t.task.stores(|s| s.apply()));
            if let Err(source) = r {
                apply_failed = Some(Error::Task {
                    task: t.id.to_string(),
                    source,
                });
            }
        }
        if let Some(e) = apply_failed {
            // The transaction is committed: restarting from committed state replays the
            // changelog after what sled holds.
            tracing::warn!(thread = self.index, error = %e, "applying a commit to the stores failed; restarting the thread's tasks from committed state");
            self.consecutive_failures += 1;
            if self.consecutive_failures > MAX_FAILED_COMMITS {
                return Err(e);
            }
            self.restart_tasks()?;
        } else {
            self.consecutive_failures = 0;
            for (topic, p, o) in offsets {
                if let Some(&(ti, ii)) = self.route.get(&(topic, p)) {
                    self.tasks[ti].inputs[ii].committed = Some(o.offset);
                }
            }
        }
        self.dirty = false;
        if std::mem::take(&mut self.wrote_internal) {
            self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        self.commits += 1;
        self.commit_ms_total += ms;
        self.commit_ms_max = self.commit_ms_max.max(ms);
        self.last_commit = Instant::now();
        let purge_every = Duration::from_millis(self.shared.config.repartition_purge_interval_ms());
        if self.last_purge.elapsed() >= purge_every {
            self.purge();
        }
        self.measure_lag();
        self.publish();
        Ok(())
    }

    /// Steps 2–3 on the log: outputs, changelogs and offsets in one transaction
    /// (exactly-once), or appended plainly with the offsets committed last (at-least-once).
    pub(super) fn commit_log(&mut self) -> Result<Vec<(String, u32, OffsetAndMetadata)>> {
        let shared = self.shared.clone();
        let group = shared.config.application_id().to_string();
        // Offsets go with the member's generation: a member the group has moved past (a
        // zombie) is refused, and its transaction aborts.
        let generation = self.member.as_ref().map(|m| m.generation());
        let mut offsets: Vec<(String, u32, OffsetAndMetadata)> = Vec::new();
        for t in &self.tasks {
            offsets.extend(t.offsets_to_commit()?);
        }
        if self.exactly_once() {
            self.ensure_txn()?;
            self.append_pending()?;
            let Some(txn) = self.txn.as_mut() else {
                return Err(Error::ThreadFailed {
                    thread: self.index,
                    reason: "no transactional session".into(),
                });
            };
            let mut sink =
                BrokerChangelogSink::new(&shared.handle, SinkTarget::<B>::Transaction(txn));
            for t in &mut self.tasks {
                t.task
                    .stores(|s: &mut dyn StateStore| s.send_changelog(&mut sink).map(|_| ()))
                    .map_err(|source| Error::Task {
                        task: t.id.to_string(),
                        source,
                    })?;
            }
            if !offsets.is_empty() {
                shared
                    .handle
                    .block_on(txn.send_offsets(&group, generation, &offsets))?;
            }
            shared.handle.block_on(txn.commit())?;
            self.txn_open = false;
        } else {
            self.append_pending()?;
            let acks = shared.config.durability();
            let mut sink =
                BrokerChangelogSink::new(&shared.handle, SinkTarget::Plain(&*shared.broker, acks));
            for t in &mut self.tasks {
                t.task
                    .stores(|s: &mut dyn StateStore| s.send_changelog(&mut sink).map(|_| ()))
                    .map_err(|source| Error::Task {
                        task: t.id.to_string(),
                        source,
                    })?;
            }
            if !offsets.is_empty() {
                // The seam commits group offsets in a transaction (a small one here: the
                // offsets alone).
                self.ensure_txn()?;
                let txn = self.session()?;
                shared
                    .handle
                    .block_on(txn.send_offsets(&group, generation, &offsets))?;
                shared.handle.block_on(txn.commit())?;
                self.txn_open = false;
            }
        }
        Ok(offsets)
    }

    /// A commit failed before it was committed: abort, and restart the thread's tasks from
    /// committed state (stores keep what sled holds; no wipe). Fencing is fatal.
    pub(super) fn commit_failed(&mut self, e: Error) -> Result<()> {
        if matches!(
            e,
            Error::Log(
                freshet_log::Error::IllegalGeneration { .. }
                    | freshet_log::Error::UnknownMember { .. }
            )
        ) {
            // The group moved on without this member: its tasks belong to others now.
            self.failed_commits += 1;
            self.on_lost(&e);
            return Ok(());
        }
        // Only the log's errors (directly, or through a store's changelog) may pass; a
        // missing sink topic or a fenced producer would fail again.
        if e.is_fenced() || !matches!(e, Error::Log(_) | Error::Task { .. }) {
            return Err(e);
        }
        self.failed_commits += 1;
        self.consecutive_failures += 1;
        tracing::warn!(thread = self.index, error = %e, "commit failed; aborting and restarting the thread's tasks from committed state");
        if self.consecutive_failures > MAX_FAILED_COMMITS {
            return Err(e);
        }
        self.abort_quietly();
        self.restart_tasks()
    }

    /// Aborts the open transaction, dropping the session when even that fails (the next
    /// session fences it, which aborts its transaction).
    pub(super) fn abort_quietly(&mut self) {
        self.pending.clear();
        self.wrote_internal = false;
        if self.txn_open {
            let shared = self.shared.clone();
            if let Some(txn) = self.txn.as_mut() {
                if let Err(e) = shared.handle.block_on(txn.abort()) {
                    tracing::warn!(error = %e, "abort failed; dropping the transactional session");
                    self.txn = None;
                }
            }
            self.txn_open = false;
        }
        for t in &mut self.tasks {
            let _ = t.task.stores(|s| {
                s.abort();
                Ok(())
            });
        }
    }

    pub(super) fn restart_tasks(&mut self) -> Result<()> {
        // A session dropped after a failed abort still has its transaction open: a new one
        // fences it (aborting it) before the restore waits for stable changelogs.
        self.session()?;
        let old: Vec<(TaskId, TaskMetrics)> =
            self.tasks.iter().map(|t| (t.id, t.metrics())).collect();
        // Dropping the tasks releases their caches' names in the thread cache.
        self.tasks.clear();
        for (id, base) in old {
            let t = self.open_task(id, base)?;
            self.tasks.push(t);
        }
        self.reroute();
        self.dirty = false;
        self.publish();
        Ok(())
    }

    /// Deletes records of repartition topics below the committed offsets.
    pub(super) fn purge(&mut self) {
        self.last_purge = Instant::now();
        let mut purges = Vec::new();
        for t in &self.tasks {
            for i in t.inputs.iter().filter(|i| i.internal) {
                if let Some(c) = i.committed {
                    purges.push((i.topic.clone(), t.id.partition, c));
                }
            }
        }
        for (topic, p, below) in purges {
            if let Err(e) = self.block_on(self.shared.broker.delete_records(&topic, p, below)) {
                tracing::warn!(topic, partition = p, error = %e, "cannot purge repartition topic");
            }
        }
    }

    /// Lag of each task from its committed offsets (at most once a second).
    pub(super) fn measure_lag(&mut self) {
        if self
            .last_lag
            .is_some_and(|l| l.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_lag = Some(Instant::now());
        let shared = self.shared.clone();
        for t in &mut self.tasks {
            let mut lag = 0;
            for i in &mut t.inputs {
                if let Ok(o) = shared
                    .handle
                    .block_on(shared.broker.offsets(&i.topic, t.id.partition))
                {
                    i.last_stable = i.last_stable.max(o.last_stable);
                    lag += (o.last_stable - i.committed.unwrap_or(o.start)).max(0);
                }
            }
            t.lag = Some(lag);
        }
    }
}
