//! The commit protocol of a stream thread (see the crate docs): outputs partitioned and
//! appended, changelogs and offsets with stream times in the thread's transaction, commit,
//! apply; on failure, abort and restart the thread's tasks from committed state.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use freshet_log::{Broker, BrokerMember, BrokerTransaction, OffsetAndMetadata, Record};
use freshet_state_store::StateStore;
use freshet_streams::{partition_for_key, ErrorPolicy, SinkRecord, TaskId, TaskMetrics};

use super::sender::Outgoing;
use super::{StreamThread, APPLY_INTERVAL, MAX_FAILED_COMMITS, OUTPUT_LINGER};
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
        // An append in progress holds the session (see `sender`).
        self.finish_sending()?;
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

    /// Moves task `ti`'s outputs, as they are, to the thread's outgoing outputs (the sender
    /// partitions and appends them; see `sender`), after mapping their topics to the
    /// thread's ids. Errors other than a topic the log refuses are returned (a failed
    /// commit, as they would be at the append).
    pub(super) fn collect_outputs(&mut self, ti: usize) -> Result<()> {
        if self.tasks[ti].task.outputs().is_empty() {
            return Ok(());
        }
        self.map_output_topics(ti)?;
        let mut outputs = self.spare_outputs.pop().unwrap_or_default();
        let t = &mut self.tasks[ti];
        t.task.move_outputs_into(&mut outputs);
        self.outgoing_len += outputs.len();
        self.outgoing.push(Outgoing {
            task: t.id,
            topics: t.out_topics.clone(),
            outputs,
        });
        Ok(())
    }

    /// Maps every topic task `ti`'s outputs name to the thread's id of it, once its
    /// partition count is known (a topic the log does not know stays unmapped: its records
    /// are refused, and the append decides about them).
    fn map_output_topics(&mut self, ti: usize) -> Result<()> {
        let t = &self.tasks[ti];
        let outputs = t.task.outputs();
        let count = outputs.topic_count();
        if count <= t.out_topics.len() && t.out_topics.iter().all(Option::is_some) {
            return Ok(());
        }
        let mut used = vec![false; count];
        for o in outputs.iter() {
            used[o.topic as usize] = true;
        }
        for (id, used) in used.into_iter().enumerate() {
            let t = &self.tasks[ti];
            if !used || t.out_topics.get(id).copied().flatten().is_some() {
                continue;
            }
            let name = t.task.outputs().topic(id as u32).to_string();
            let n = match self.partition_count(&name) {
                Ok(n) => n,
                Err(e) if refused_record(&e) => continue,
                Err(e) => return Err(e),
            };
            let internal = self.shared.plan.internal.contains(&name);
            let topic = self.out_topics.topic_id(&name, n, internal);
            let map = &mut self.tasks[ti].out_topics;
            if map.len() <= id {
                map.resize(id + 1, None);
            }
            map[id] = Some(topic);
        }
        Ok(())
    }

    /// Starts appending the outgoing outputs (see `sender`), one batch per partition in
    /// order: inside the open transaction (exactly-once) or plainly (at-least-once), after
    /// the previous append has finished. An output the log refuses for a reason of its own
    /// ([`refused_record`]) goes to `production.exception.handler`; the rest of its batch is
    /// written all the same, so under exactly-once one bad record does not abort the
    /// transaction unless the handler is `fail`.
    pub(super) fn append_pending(&mut self) -> Result<()> {
        self.finish_sending()?;
        if self.outgoing.is_empty() {
            return Ok(());
        }
        self.pending_since = None;
        if self.exactly_once() {
            self.ensure_txn()?;
        }
        let outgoing = std::mem::take(&mut self.outgoing);
        self.outgoing_len = 0;
        self.start_sending(outgoing);
        if !self.shared.pipelined {
            // Appended inline: what it refused is seen to now, as the append's caller expects.
            self.finish_sending()?;
        }
        Ok(())
    }

    /// Records the sender could not place in a partition (a topic the log does not know, a
    /// partitioner's choice out of range): asked again now, appended if they fit after
    /// all, else handed to the production exception handler (their dead letters go to
    /// `dead`).
    pub(super) fn append_unplaced(
        &mut self,
        unplaced: Vec<(TaskId, SinkRecord)>,
        dead: &mut Vec<SinkRecord>,
    ) -> Result<()> {
        let mut batches: BTreeMap<(String, u32), (Vec<TaskId>, Vec<Record>)> = BTreeMap::new();
        for (task, r) in unplaced {
            let p = match self.partition_of(&r) {
                Ok(p) => p,
                Err(e) if refused_record(&e) => {
                    let record = log_record(r.key, r.value, r.timestamp, r.headers);
                    self.production_failed(task, &r.topic, None, vec![record], e, dead)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if self.shared.plan.internal.contains(&r.topic) {
                self.wrote_internal = true;
            }
            let batch = batches.entry((r.topic, p)).or_default();
            batch.0.push(task);
            batch
                .1
                .push(log_record(r.key, r.value, r.timestamp, r.headers));
        }
        for ((topic, p), (tasks, records)) in batches {
            match self.append_records(&topic, p, &records) {
                Ok(()) => {}
                Err(e) if refused_record(&e) => {
                    self.append_refused(&topic, p, tasks, records, e, dead)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A batch the log refused with `first`: halves it until each refused record is found
    /// alone (a batch may be too large while each of its records fits), in offset order,
    /// appending the rest; the refused ones go to the production exception handler.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append_refused(
        &mut self,
        topic: &str,
        p: u32,
        tasks: Vec<TaskId>,
        records: Vec<Record>,
        first: Error,
        dead: &mut Vec<SinkRecord>,
    ) -> Result<()> {
        let mut first = Some(first);
        let mut work = vec![(tasks, records)];
        while let Some((mut tasks, mut records)) = work.pop() {
            let e = match first.take() {
                Some(e) => e,
                None => match self.append_records(topic, p, &records) {
                    Ok(()) => continue,
                    Err(e) if refused_record(&e) => e,
                    Err(e) => return Err(e),
                },
            };
            let too_large = matches!(e, Error::Log(freshet_log::Error::RecordTooLarge { .. }));
            if too_large && records.len() > 1 {
                let mid = records.len() / 2;
                let later = (tasks.split_off(mid), records.split_off(mid));
                work.push(later);
                work.push((tasks, records));
                continue;
            }
            // A missing topic or partition refuses every record of the batch.
            let policy = self.shared.config.production_policy();
            if policy == ErrorPolicy::Fail {
                let task = tasks.first().map_or_else(String::new, |t| t.to_string());
                return Err(production_error(task, topic, e));
            }
            let mut by_task: BTreeMap<TaskId, Vec<Record>> = BTreeMap::new();
            for (t, r) in tasks.into_iter().zip(records) {
                by_task.entry(t).or_default().push(r);
            }
            for (t, rs) in by_task {
                self.skip_refused(&policy, t, topic, Some(p), rs, &e, dead);
            }
        }
        Ok(())
    }

    /// Appends one partition's records as one batch, in the transaction under exactly-once.
    fn append_records(&mut self, topic: &str, p: u32, records: &[Record]) -> Result<()> {
        let shared = self.shared.clone();
        if self.exactly_once() {
            let txn = self.session()?;
            shared.handle.block_on(txn.append(topic, p, records))?;
        } else {
            let acks = shared.config.durability();
            shared
                .handle
                .block_on(shared.broker.append(topic, p, records, acks))?;
        }
        Ok(())
    }

    /// `production.exception.handler` for outputs of `task` the log refused with `error`:
    /// `fail` returns [`Error::Production`], the others go on ([`skip_refused`](Self::skip_refused)).
    fn production_failed(
        &mut self,
        task: TaskId,
        topic: &str,
        partition: Option<u32>,
        records: Vec<Record>,
        error: Error,
        dead: &mut Vec<SinkRecord>,
    ) -> Result<()> {
        let policy = self.shared.config.production_policy();
        if policy == ErrorPolicy::Fail {
            return Err(production_error(task.to_string(), topic, error));
        }
        self.skip_refused(&policy, task, topic, partition, records, &error, dead);
        Ok(())
    }

    /// `log-and-continue` counts refused outputs as dropped; `dead-letter` counts them and
    /// adds them to `dead` with `__streams.errors.*` headers.
    #[allow(clippy::too_many_arguments)]
    fn skip_refused(
        &mut self,
        policy: &ErrorPolicy,
        task: TaskId,
        topic: &str,
        partition: Option<u32>,
        records: Vec<Record>,
        error: &Error,
        dead: &mut Vec<SinkRecord>,
    ) {
        let count = records.len() as u64;
        if let ErrorPolicy::DeadLetter(dlq) = policy {
            tracing::warn!(task = %task, topic, records = count, error = %error, "the log refused an output; sent to dead-letter topic {dlq}");
            let kind = refusal_kind(error);
            let message = error.to_string();
            let partition = partition.map_or_else(|| "-1".to_string(), |p| p.to_string());
            let h = |n: &str, v: &str| {
                (
                    format!("__streams.errors.{n}"),
                    bytes::Bytes::from(v.to_string()),
                )
            };
            for r in records {
                let mut headers = r.headers;
                headers.push(h("exception", kind));
                headers.push(h("message", &message));
                headers.push(h("stacktrace", ""));
                headers.push(h("topic", topic));
                headers.push(h("partition", &partition));
                headers.push(h("offset", "-1"));
                dead.push(SinkRecord {
                    topic: dlq.clone(),
                    partition: None,
                    key: r.key,
                    value: r.value,
                    timestamp: r.timestamp.unwrap_or(-1),
                    headers,
                });
            }
        } else {
            tracing::warn!(task = %task, topic, records = count, error = %error, "the log refused an output; skipping it (production.exception.handler=log-and-continue)");
        }
        if let Some(t) = self.tasks.iter_mut().find(|t| t.id == task) {
            t.base.dropped_records += count;
            if matches!(policy, ErrorPolicy::DeadLetter(_)) {
                t.base.dead_lettered += count;
            }
        }
    }

    /// Appends dead letters of refused outputs to the dead-letter topic; any failure here
    /// (the topic is not created automatically) fails the commit.
    pub(super) fn append_dead_letters(&mut self, dead: Vec<SinkRecord>) -> Result<()> {
        let mut batches: BTreeMap<(String, u32), Vec<Record>> = BTreeMap::new();
        for r in dead {
            let p = self.partition_of(&r)?;
            batches.entry((r.topic, p)).or_default().push(log_record(
                r.key,
                r.value,
                r.timestamp,
                r.headers,
            ));
        }
        for ((topic, p), records) in batches {
            self.append_records(&topic, p, &records)?;
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
            if let Err(e) = self.collect_outputs(ti) {
                return self.commit_failed(e);
            }
        }
        // What this commit moves into the stores' committed overlays (an upper bound).
        let committing = self.write_buffer_bytes();
        let offsets = match self.commit_log() {
            Ok(o) => o,
            Err(e) => return self.commit_failed(e),
        };
        for t in &mut self.tasks {
            // Infallible: moves the sent writes into the committed overlay.
            let _ = t.task.stores(|s: &mut dyn StateStore| {
                s.committed();
                Ok(())
            });
        }
        self.unapplied = true;
        self.unapplied_bytes = self.unapplied_bytes.saturating_add(committing);
        // Step 4: only now does committed data reach sled, each tree with its offset —
        // under exactly-once at most every APPLY_INTERVAL (see there), so that a key
        // updated by many commits is written to sled once, and in the background: the
        // thread goes on processing while sled takes the writes (reads see them meanwhile).
        let apply_now = !self.exactly_once()
            || self.stopping()
            || self.last_apply.elapsed() >= APPLY_INTERVAL
            || self.unapplied_bytes >= self.shared.config.write_buffer_max_bytes();
        let applied = if apply_now {
            self.apply_stores(!self.exactly_once() || self.stopping())
        } else {
            Ok(())
        };
        if let Err(e) = applied {
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

    /// Commit step 4 for every committed write not applied yet: one sled batch per store
    /// tree with its changelog offset. The stores write them in the background; with
    /// `wait`, this returns once every apply of the thread is done (sled is current for
    /// interactive queries and for whoever reads the state directory next).
    pub(super) fn apply_stores(&mut self, wait: bool) -> Result<()> {
        let mut failed = None;
        if self.unapplied {
            for t in &mut self.tasks {
                if let Err(source) = t.task.stores(|s| s.apply()) {
                    failed = Some(Error::Task {
                        task: t.id.to_string(),
                        source,
                    });
                }
            }
            self.unapplied = false;
            self.unapplied_bytes = 0;
            self.last_apply = Instant::now();
        }
        if wait {
            if let Err(e) = self.applies.settle() {
                failed.get_or_insert(Error::Store(e));
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// [`apply_stores`](Self::apply_stores) outside a commit; a failure restarts the
    /// thread's tasks from committed state, as a failed apply in a commit does.
    pub(super) fn apply_deferred(&mut self) -> Result<()> {
        let Err(e) = self.apply_stores(true) else {
            return Ok(());
        };
        tracing::warn!(thread = self.index, error = %e, "applying committed writes to the stores failed; restarting the thread's tasks from committed state");
        self.consecutive_failures += 1;
        if self.consecutive_failures > MAX_FAILED_COMMITS {
            return Err(e);
        }
        // What the tasks did since the last commit goes with them: outputs already in the
        // open transaction would otherwise be committed beside their reprocessed copies.
        self.abort_quietly();
        self.restart_tasks()
    }

    /// Under at-least-once, appends the pending outputs once the oldest has waited
    /// [`OUTPUT_LINGER`] (or at once with `now`), instead of holding them to the next
    /// commit — which comes every 30 s there. Exactly-once outputs only become visible at
    /// the commit, so they keep waiting for it (or for a full batch).
    pub(super) fn append_lingering(&mut self, now: bool) -> Result<()> {
        if self.exactly_once() || self.outgoing.is_empty() {
            return Ok(());
        }
        if now
            || self
                .pending_since
                .is_none_or(|t| t.elapsed() >= OUTPUT_LINGER)
        {
            if let Err(e) = self.append_pending() {
                return self.commit_failed(e);
            }
        }
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
            self.finish_sending()?;
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
            self.finish_sending()?;
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
        self.discard_sending();
        self.drop_outgoing();
        self.pending_since = None;
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
        // Dropping the tasks releases their caches' names in the thread cache; their
        // committed overlays go too (restore replays them from the changelogs).
        self.tasks.clear();
        self.unapplied = false;
        self.unapplied_bytes = 0;
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

    /// Measures the lag again (and publishes it) when the last measure may be stale: nothing
    /// is uncommitted and the lag was not measured since the last commit (`measure_lag` at
    /// a commit runs at most once a second, so the final commit of a backlog often skips
    /// it). Called when the thread is idle or caught up, and with `force` at close.
    pub(super) fn measure_lag_if_stale(&mut self, force: bool) {
        let stale = self.last_lag.is_none_or(|l| l < self.last_commit);
        if !force && (self.dirty || !stale) {
            return;
        }
        self.last_lag = None;
        self.measure_lag();
        self.publish();
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

fn log_record(
    key: Option<bytes::Bytes>,
    value: Option<bytes::Bytes>,
    timestamp: i64,
    headers: Vec<(String, bytes::Bytes)>,
) -> Record {
    Record {
        key,
        value,
        timestamp: Some(timestamp),
        headers,
    }
}

/// Whether the log refused an output for a reason of the record's own, which
/// `production.exception.handler` decides about: too large for the topic, a topic (chosen
/// per record) or a partition that does not exist, an illegal topic name. I/O errors, a
/// closed log, fencing and the like fail the commit whatever the handler.
pub(super) fn refused_record(e: &Error) -> bool {
    matches!(
        e,
        Error::MissingSinkTopic { .. }
            | Error::PartitionMismatch { .. }
            | Error::Log(
                freshet_log::Error::RecordTooLarge { .. }
                    | freshet_log::Error::UnknownTopic { .. }
                    | freshet_log::Error::UnknownPartition { .. }
                    | freshet_log::Error::InvalidTopicName { .. }
            )
    )
}

/// The `__streams.errors.exception` header of a refusal.
fn refusal_kind(e: &Error) -> &'static str {
    match e {
        Error::MissingSinkTopic { .. } | Error::Log(freshet_log::Error::UnknownTopic { .. }) => {
            "UnknownTopic"
        }
        Error::PartitionMismatch { .. }
        | Error::Log(freshet_log::Error::UnknownPartition { .. }) => "UnknownPartition",
        Error::Log(freshet_log::Error::RecordTooLarge { .. }) => "RecordTooLarge",
        Error::Log(freshet_log::Error::InvalidTopicName { .. }) => "InvalidTopicName",
        _ => "ProductionError",
    }
}

fn production_error(task: String, topic: &str, source: Error) -> Error {
    Error::Production {
        task,
        topic: topic.to_string(),
        source: Box::new(source),
    }
}
