//! A stream thread: a `std::thread` that is one member of the app's consumer group, owns the
//! tasks the group assigns it, fetches their input, runs the task cores and commits (see the
//! crate docs for the threading model, the commit protocol and rebalancing).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use freshet_log::Broker;
use freshet_state_store::{changelog_topic, Applies, Backend, ThreadCache};
use freshet_streams::{
    GlobalStores, OffsetReset, Outputs, RawRecord, RawRecords, StreamTimes, Task, TaskConfig,
    TaskEnv, TaskId, TaskMetrics, Topology,
};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::assignor::TaskAssignor;
use crate::backend::TaskBackend;
use crate::changelog::{BrokerChangelogReader, RestoreCounters};
use crate::config::{ProcessingGuarantee, StreamsConfig};
use crate::error::{Error, Result};
use crate::metrics::{Registry, RestoreProgress, TaskMetricsSnapshot, ThreadMetrics};
use crate::state::{AppState, StateMachine};
use crate::statedir::TaskLocks;
use crate::task::{committed_input, merge_stream_times, RuntimeTask};
use crate::topics::Plan;

mod commit;
mod fetch;
mod group;
mod outputs;
mod sender;

use fetch::Prefetch;
use outputs::OutputBatches;
use sender::{Outgoing, Sending};

pub(crate) use group::{local_tasks, member_config};

/// Records a thread processes from one task before it looks at its other tasks.
const RECORDS_PER_TASK_TURN: usize = 1000;
/// Outputs buffered in a thread before they are appended (inside the open transaction).
const MAX_PENDING_OUTPUTS: usize = 10_000;
/// Under at-least-once, how long an output may wait in the thread before it is appended
/// (the producer's `linger.ms`; exactly-once outputs wait for the commit anyway).
const OUTPUT_LINGER: Duration = Duration::from_millis(5);
/// Under exactly-once, how long committed writes may stay in the stores' committed
/// overlays (where reads already see them) before they are applied to sled: every commit
/// would otherwise rewrite every key it touched in sled, 10 times a second. Applied sooner
/// when the thread has nothing to process, when the overlays may pass
/// `statestore.write.buffer.max.bytes`, and before tasks are closed or the app reports
/// being caught up.
const APPLY_INTERVAL: Duration = Duration::from_secs(1);
/// Records between two looks at whether to send the next fetch ahead.
const PREFETCH_CHECK_EVERY: usize = 100;
/// Records between two looks at the write buffers' soft limit.
const WRITE_BUFFER_CHECK_EVERY: usize = 100;
/// Consecutive failed commits after which a thread gives up.
const MAX_FAILED_COMMITS: u32 = 3;
/// How long a new owner waits for a transaction still open on a task's changelogs (a former
/// owner's, about to be committed or aborted) before restoring it anyway.
const STABLE_CHANGELOG_WAIT: Duration = Duration::from_secs(30);

/// What a stream thread tells the app.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadStatus {
    /// It has an assignment and every assigned task is open and restored.
    pub(crate) running: bool,
    /// It has been running at least once (launch waits for this).
    pub(crate) started: bool,
    /// In bounded mode: caught up, with nothing uncommitted, as of this epoch.
    pub(crate) idle_at: Option<u64>,
    /// It has exited.
    pub(crate) finished: bool,
    /// Why it failed.
    pub(crate) error: Option<String>,
}

/// What every stream thread of an app shares.
pub(crate) struct Shared<B: Broker> {
    pub(crate) broker: Arc<B>,
    pub(crate) handle: Handle,
    /// Whether fetches and appends run on the io runtime while the threads process (there
    /// are more cores than stream threads); else the threads do them inline.
    pub(crate) pipelined: bool,
    pub(crate) config: StreamsConfig,
    pub(crate) topology: Topology,
    pub(crate) plan: Plan,
    pub(crate) partitions: Arc<BTreeMap<String, u32>>,
    pub(crate) backend: Arc<dyn Backend>,
    /// The instance's id (from its state directory): names the transactional sessions.
    pub(crate) instance_id: String,
    /// Which thread of the instance holds each task.
    pub(crate) locks: TaskLocks,
    /// The group's assignor (the first member's is the group's).
    pub(crate) assignor: Arc<TaskAssignor>,
    /// The topics the members subscribe to: every source topic of a sub-topology.
    pub(crate) subscription: Vec<String>,
    /// Resolved source topic → its sub-topology.
    pub(crate) topic_subtopology: BTreeMap<String, u32>,
    /// The global stores, set once bootstrapped (before any stream thread starts).
    pub(crate) global_stores: OnceLock<GlobalStores>,
    /// Why the global thread failed.
    pub(crate) global_error: Mutex<Option<String>>,
    pub(crate) state: Arc<StateMachine>,
    pub(crate) metrics: Arc<Registry>,
    /// Stop: commit, close tasks, exit.
    pub(crate) shutdown: AtomicBool,
    /// Wakes threads waiting in a fetch.
    pub(crate) wake: Notify,
    /// Wakes the app waiting for threads (restored, caught up, exited).
    pub(crate) progress: Notify,
    /// Bounded mode: threads report whether they are caught up.
    pub(crate) bounded: AtomicUsize,
    /// Bumped after every commit that wrote to a repartition topic (bounded mode).
    pub(crate) epoch: AtomicU64,
    pub(crate) threads: Mutex<Vec<ThreadStatus>>,
}

impl<B: Broker> std::fmt::Debug for Shared<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("app", &self.config.application_id())
            .finish_non_exhaustive()
    }
}

impl<B: Broker> Shared<B> {
    /// Runs a fetch to its end, unless the app closes first (then: nothing fetched); a
    /// thread's fetch may wait up to a poll interval for records.
    pub(crate) fn fetch_until_closed<T>(
        &self,
        fetch: impl std::future::Future<Output = freshet_log::Result<Vec<T>>>,
    ) -> freshet_log::Result<Vec<T>> {
        self.handle.block_on(async {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shutdown.load(Ordering::SeqCst) {
                return Ok(Vec::new());
            }
            tokio::select! {
                r = fetch => r,
                () = notified => Ok(Vec::new()),
            }
        })
    }

    /// Bounded mode (someone waits until caught up): sources stop at their bounds, threads
    /// report whether they are caught up.
    pub(crate) fn is_bounded(&self) -> bool {
        self.bounded.load(Ordering::SeqCst) > 0
    }

    /// Asks every thread to commit and stop.
    pub(crate) fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Records whether thread `index` is running (assigned, every task restored); the app
    /// is `RUNNING` while all are, `REBALANCING` otherwise.
    fn set_running(&self, index: usize, running: bool) {
        let all = {
            let mut t = self.threads.lock();
            if t[index].running == running {
                return;
            }
            t[index].running = running;
            t[index].started |= running;
            t.iter().all(|s| s.running)
        };
        self.state.transition(if all {
            AppState::Running
        } else {
            AppState::Rebalancing
        });
        self.progress.notify_waiters();
    }

    fn thread_exited(&self, index: usize, result: Result<()>) {
        let (all_done, failed) = {
            let mut t = self.threads.lock();
            t[index].finished = true;
            if let Err(e) = &result {
                t[index].error = Some(e.to_string());
            }
            (
                t.iter().all(|s| s.finished),
                t.iter().any(|s| s.error.is_some()) || self.global_error.lock().is_some(),
            )
        };
        if let Err(e) = result {
            tracing::error!(thread = index, error = %e, "stream thread failed; shutting the app down");
            self.stop();
        }
        if all_done && failed {
            self.state.transition(AppState::Error);
        }
        self.progress.notify_waiters();
    }

    /// The global thread failed: the app stops with its error.
    pub(crate) fn global_failed(&self, error: &Error) {
        tracing::error!(error = %error, "global stream thread failed; shutting the app down");
        *self.global_error.lock() = Some(error.to_string());
        self.stop();
        if self.threads.lock().iter().all(|s| s.finished) {
            self.state.transition(AppState::Error);
        }
        self.progress.notify_waiters();
    }

    fn set_idle(&self, index: usize, idle_at: Option<u64>) {
        let changed = {
            let mut t = self.threads.lock();
            let changed = t[index].idle_at != idle_at;
            t[index].idle_at = idle_at;
            changed
        };
        if changed {
            self.progress.notify_waiters();
        }
    }

    /// Bounded mode: whether every thread is caught up as of the current epoch.
    pub(crate) fn caught_up(&self) -> bool {
        let epoch = self.epoch.load(Ordering::SeqCst);
        self.threads.lock().iter().all(|s| s.idle_at == Some(epoch))
    }
}

/// Starts stream thread `index`, a member of the app's group (joined by the caller, so all
/// of an instance's threads are in the group before the first assignment).
pub(crate) fn spawn<B: Broker>(
    index: usize,
    shared: Arc<Shared<B>>,
    member: B::Member,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = format!(
        "{}-StreamThread-{}",
        shared.config.application_id(),
        index + 1
    );
    std::thread::Builder::new().name(name).spawn(move || {
        let cache_bytes = ThreadCache::per_thread(
            shared.config.cache_max_bytes(),
            shared.config.num_stream_threads(),
        );
        let mut thread = StreamThread {
            index,
            shared: shared.clone(),
            txn: None,
            txn_open: false,
            member: Some(member),
            assigned: false,
            pending_open: Vec::new(),
            last_poll: None,
            tasks: Vec::new(),
            route: HashMap::new(),
            cache: ThreadCache::new(cache_bytes),
            prefetch: None,
            outgoing: Vec::new(),
            outgoing_len: 0,
            spare_outputs: Vec::new(),
            out_topics: OutputBatches::default(),
            batches: None,
            sending: None,
            wrote_internal: false,
            dirty: false,
            pending_since: None,
            unapplied: false,
            unapplied_bytes: 0,
            applies: Applies::new(),
            last_apply: Instant::now(),
            last_commit: Instant::now(),
            last_purge: Instant::now(),
            last_lag: None,
            sink_partitions: HashMap::new(),
            round_robin: HashMap::new(),
            commits: 0,
            commit_ms_total: 0.0,
            commit_ms_max: 0.0,
            failed_commits: 0,
            consecutive_failures: 0,
        };
        // `run` turns a panic of the loop into an error; this catches one of its cleanup,
        // so the app always learns that the thread is gone.
        let result = crate::error::catching_panics(|| thread.run()).and_then(|r| r);
        shared.thread_exited(index, result);
    })
}

/// Fetched records as a task reads them: in the log's batches.
struct LogRecords(freshet_log::RecordBatches);

impl RawRecords for LogRecords {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> Option<RawRecord<'_>> {
        self.0.get(i).map(|r| RawRecord {
            key: r.key,
            value: r.value,
            timestamp: r.timestamp,
            headers: r.headers,
            offset: r.offset,
        })
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

struct StreamThread<B: Broker> {
    index: usize,
    shared: Arc<Shared<B>>,
    /// The thread's transactional session (`<application.id>-<instance id>-<index>`).
    txn: Option<B::Transaction>,
    /// Whether a transaction is begun and not yet committed or aborted.
    txn_open: bool,
    /// The thread's membership of the app's group (`None` after it was lost, until it
    /// rejoins).
    member: Option<B::Member>,
    /// Whether the member holds an assignment (false from a revocation to the next
    /// assignment).
    assigned: bool,
    /// Assigned tasks not open yet: another thread of the instance still holds them.
    pending_open: Vec<TaskId>,
    /// When the group was last polled.
    last_poll: Option<Instant>,
    tasks: Vec<RuntimeTask>,
    /// (topic, partition) → (task, input) indices.
    route: HashMap<(String, u32), (usize, usize)>,
    cache: ThreadCache,
    /// The fetch sent ahead while records are processed (see `fetch`).
    prefetch: Option<Prefetch>,
    /// Outputs taken from tasks (with the task each came from) and not yet appended.
    /// Outputs taken from tasks, as the tasks wrote them, not yet handed to the sender.
    outgoing: Vec<Outgoing>,
    /// Records in `outgoing`.
    outgoing_len: usize,
    /// Emptied output buffers, to take the next outputs into.
    spare_outputs: Vec<Outputs>,
    /// The thread's ids of the topics it writes (no records: the sender's batches share
    /// these ids).
    out_topics: OutputBatches,
    /// The sender's batches while no append runs.
    batches: Option<OutputBatches>,
    /// The append in progress.
    sending: Option<Sending<B>>,
    /// Records went to a repartition topic since the last commit.
    wrote_internal: bool,
    /// Something was processed or punctuated since the last commit.
    dirty: bool,
    /// When the oldest output in `pending` was taken (at-least-once's linger).
    pending_since: Option<Instant>,
    /// Committed writes wait in the stores' overlays, not yet applied to sled.
    unapplied: bool,
    /// Upper bound of the bytes in the overlays (the write buffers' bytes at each commit
    /// since the last apply).
    unapplied_bytes: usize,
    /// The stores' applies running in the background (see `apply_stores`).
    applies: Arc<Applies>,
    last_apply: Instant,
    last_commit: Instant,
    last_purge: Instant,
    last_lag: Option<Instant>,
    sink_partitions: HashMap<String, u32>,
    round_robin: HashMap<String, u32>,
    commits: u64,
    commit_ms_total: f64,
    commit_ms_max: f64,
    failed_commits: u64,
    consecutive_failures: u32,
}

impl<B: Broker> StreamThread<B> {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.shared.handle.block_on(f)
    }

    fn transactional_id(&self) -> String {
        format!(
            "{}-{}-{}",
            self.shared.config.application_id(),
            self.shared.instance_id,
            self.index
        )
    }

    fn exactly_once(&self) -> bool {
        self.shared.config.processing_guarantee() == ProcessingGuarantee::ExactlyOnceV2
    }

    fn stopping(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    fn run(&mut self) -> Result<()> {
        let id = self.transactional_id();
        let acks = self.shared.config.durability();
        // The session fences an older one with the same id (its open transaction is
        // aborted) before anything is restored, so restores are not held back by it.
        let session = self.block_on(self.shared.broker.transaction(&id, acks))?;
        self.txn = Some(session);
        self.publish();
        let result = crate::error::catching_panics(|| self.run_loop())
            .and_then(|r| r)
            .and_then(|()| self.close_clean());
        if result.is_err() {
            self.abort_quietly();
            for t in &self.tasks {
                self.shared.metrics.publish_task(self.snapshot(t));
            }
            self.tasks.clear();
        }
        self.shared.locks.unlock_all(self.index);
        // Leaves the group only now, after the last commit.
        self.member = None;
        result
    }

    /// Creates a task from committed state: opens its stores, restores them from their
    /// changelogs (applied offsets → last stable offset), positions its inputs at the
    /// committed offsets and restores the committed stream times.
    fn open_task(&self, id: TaskId, base: TaskMetrics) -> Result<RuntimeTask> {
        let shared = &self.shared;
        let config = &shared.config;
        let name = id.to_string();
        let partitions = shared.partitions.clone();
        self.wait_for_stable_changelogs(id)?;
        // Under exactly-once the stores apply in the background (see `apply_stores`); under
        // at-least-once every apply is waited for at its commit, so they apply inline.
        let mut backend = TaskBackend::new(shared.backend.clone(), &name);
        if self.exactly_once() {
            backend = backend.with_applies(self.applies.clone());
        }
        let env = TaskEnv {
            backend: Arc::new(backend),
            cache: self.cache.clone(),
            config: TaskConfig {
                application_id: config.application_id().to_string(),
                windowed_emit_interval_ms: 1000,
                outer_join_emit_interval_ms: 1000,
                deserialization: config.deserialization_policy(),
                processing: config.processing_policy(),
            },
            partitions_of: Arc::new(move |t: &str| partitions.get(t).copied()),
            wall_clock: now_ms(),
            global_stores: shared.global_stores.get().cloned().unwrap_or_default(),
        };
        let task_err = |source| Error::Task {
            task: name.clone(),
            source,
        };
        let mut task = Task::new(
            &shared.topology,
            name.clone(),
            &[id.subtopology],
            id.partition,
            env,
        )
        .map_err(task_err)?;
        let counters = Arc::new(RestoreCounters::default());
        shared.metrics.restoring(id, counters.clone());
        let started = Instant::now();
        let mut reader = BrokerChangelogReader::new(&*shared.broker, &shared.handle)
            .with_counters(counters.clone());
        let stats = task.restore(&mut reader).map_err(task_err)?;
        let restore = RestoreProgress {
            records_read: counters.read.load(Ordering::Relaxed),
            records_to_read: counters.target.load(Ordering::Relaxed),
            done: true,
            wiped: stats.iter().any(|(_, s)| s.wiped),
        };
        let applied: u64 = stats.iter().map(|(_, s)| s.records_applied).sum();
        tracing::info!(
            task = %name,
            stores = stats.len(),
            records = applied,
            wiped = restore.wiped,
            ms = started.elapsed().as_millis() as u64,
            "task restored"
        );
        let mut inputs = Vec::new();
        let mut times: Option<StreamTimes> = None;
        for topic in task.input_topics() {
            // A source topic with fewer partitions than the sub-topology has tasks feeds only
            // the tasks of its partitions (Kafka's partition grouper).
            if shared
                .partitions
                .get(&topic)
                .is_some_and(|&n| id.partition >= n)
            {
                continue;
            }
            let internal = shared.plan.internal.contains(&topic);
            // Repartition topics always start at the beginning; a source without a committed
            // offset where `Consumed::with_offset_reset` says (earliest by default).
            let reset = if internal {
                OffsetReset::Earliest
            } else {
                shared
                    .topology
                    .offset_reset(&topic, config.application_id())
                    .unwrap_or(OffsetReset::Earliest)
            };
            let (mut input, t) = self.block_on(committed_input(
                &*shared.broker,
                config.application_id(),
                &topic,
                id.partition,
                reset,
            ))?;
            input.internal = internal;
            input.bound = shared
                .plan
                .end_offsets
                .get(&(topic.clone(), id.partition))
                .copied();
            if let Some(t) = t {
                match &mut times {
                    Some(all) => merge_stream_times(all, t),
                    None => times = Some(t),
                }
            }
            inputs.push(input);
        }
        match &times {
            Some(t) => task.restore_stream_times(t).map_err(task_err)?,
            None => task.init().map_err(task_err)?,
        }
        let rt = RuntimeTask {
            id,
            task,
            inputs,
            base,
            restore,
            lag: None,
            out_topics: Vec::new(),
        };
        shared.metrics.publish_task(self.snapshot(&rt));
        Ok(rt)
    }

    /// Waits (up to [`STABLE_CHANGELOG_WAIT`]) until no transaction is open on the task's
    /// changelog partitions: a former owner fenced by a rebalance may still be ending one,
    /// and its commit must not land between this restore and the committed offsets read
    /// after it (Kafka's consumers wait for pending offset commits the same way).
    fn wait_for_stable_changelogs(&self, id: TaskId) -> Result<()> {
        let shared = &self.shared;
        let app = shared.config.application_id();
        let topics: Vec<String> = shared
            .topology
            .stores()
            .filter(|s| {
                s.logging_enabled()
                    && shared
                        .plan
                        .stores
                        .get(s.name())
                        .is_some_and(|(sub, _)| *sub == id.subtopology)
            })
            .map(|s| changelog_topic(app, s.name()))
            .collect();
        let deadline = Instant::now() + STABLE_CHANGELOG_WAIT;
        for topic in topics {
            loop {
                let o = self.block_on(shared.broker.offsets(&topic, id.partition))?;
                if o.last_stable >= o.end || self.stopping() {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(task = %id, topic, "a transaction is still open on the changelog; restoring up to its last stable offset");
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }

    fn reroute(&mut self) {
        self.route.clear();
        for (ti, t) in self.tasks.iter().enumerate() {
            for (ii, input) in t.inputs.iter().enumerate() {
                self.route
                    .insert((input.topic.clone(), t.id.partition), (ti, ii));
            }
        }
    }

    fn run_loop(&mut self) -> Result<()> {
        let commit_every = Duration::from_millis(self.shared.config.commit_interval_ms());
        while !self.stopping() {
            self.group_step(false)?;
            if !self.active() {
                // Rebalancing: nothing to process until the assignment is complete.
                if self.shared.is_bounded() {
                    self.shared.set_idle(self.index, None);
                }
                self.wait(Duration::from_millis(10));
                continue;
            }
            let any_ready = self.refresh_readiness()?;
            if !any_ready {
                // Nothing to process: apply what is committed, and send what waits.
                self.apply_deferred()?;
                self.append_lingering(true)?;
                self.measure_lag_if_stale(false);
                if self.shared.is_bounded() {
                    // Caught up now that the last commit is applied: said before the fetch
                    // below waits a poll interval for records that will not come.
                    self.report_idle()?;
                }
            }
            let wait = if any_ready {
                Duration::ZERO
            } else {
                let poll = Duration::from_millis(self.shared.config.poll_ms());
                if self.dirty {
                    poll.min(commit_every.saturating_sub(self.last_commit.elapsed()))
                } else {
                    poll
                }
            };
            self.fetch(wait)?;
            self.process()?;
            self.punctuate()?;
            self.append_lingering(false)?;
            let bounded = self.shared.is_bounded();
            let buffered_over =
                self.write_buffer_bytes() > self.shared.config.write_buffer_max_bytes();
            let drained = bounded && self.tasks.iter().all(|t| t.task.buffered() == 0);
            if self.dirty
                && (self.last_commit.elapsed() >= commit_every || buffered_over || drained)
            {
                self.commit()?;
            }
            if bounded {
                self.report_idle()?;
            }
        }
        Ok(())
    }

    /// Waits up to `wait`, waking early when the app closes.
    fn wait(&self, wait: Duration) {
        let shared = self.shared.clone();
        self.block_on(async {
            let notified = shared.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !shared.shutdown.load(Ordering::SeqCst) {
                let _ = tokio::time::timeout(wait, notified).await;
            }
        });
    }

    fn write_buffer_bytes(&self) -> usize {
        self.tasks.iter().map(|t| t.task.write_buffer_bytes()).sum()
    }

    /// Refreshes the last stable offset of empty, seemingly caught-up inputs of tasks with
    /// buffered records; returns whether any task can process.
    fn refresh_readiness(&mut self) -> Result<bool> {
        let bounded = self.shared.is_bounded();
        let mut any = false;
        for ti in 0..self.tasks.len() {
            if self.tasks[ti].task.buffered() == 0 {
                continue;
            }
            let mut ready = true;
            for ii in 0..self.tasks[ti].inputs.len() {
                let t = &self.tasks[ti];
                let input = &t.inputs[ii];
                if t.task.buffered_in(&input.topic) > 0 {
                    continue;
                }
                if bounded && input.bound.is_some_and(|b| input.position >= b) {
                    continue;
                }
                if input.position < input.last_stable {
                    ready = false;
                    break;
                }
                let (topic, p) = (input.topic.clone(), t.id.partition);
                let o = self.block_on(self.shared.broker.offsets(&topic, p))?;
                let input = &mut self.tasks[ti].inputs[ii];
                input.last_stable = input.last_stable.max(o.last_stable);
                if input.position < input.last_stable {
                    ready = false;
                    break;
                }
            }
            any |= ready;
        }
        Ok(any)
    }

    /// Whether task `ti`, of several inputs, may process its next record: every input has a
    /// buffered record or is caught up (SEMANTICS.md §3's rule for a single-process log), by
    /// the last stable offsets last seen.
    fn ready(&self, ti: usize) -> bool {
        let bounded = self.shared.is_bounded();
        let t = &self.tasks[ti];
        t.task.buffered() > 0
            && t.inputs.iter().all(|i| {
                i.position >= i.last_stable
                    || (bounded && i.bound.is_some_and(|b| i.position >= b))
                    || t.task.buffered_in(&i.topic) > 0
            })
    }

    /// Lets each ready task process a turn of records; stops early (at a record boundary)
    /// when the write buffers pass their soft limit, so the loop commits.
    fn process(&mut self) -> Result<()> {
        let max_buffer = self.shared.config.write_buffer_max_bytes();
        for ti in 0..self.tasks.len() {
            // With one input, readiness is having a record, which `process_one` finds out
            // itself: no sum over the queues per record.
            let single = self.tasks[ti].inputs.len() == 1;
            let mut n = 0;
            while n < RECORDS_PER_TASK_TURN && (single || self.ready(ti)) {
                if n % WRITE_BUFFER_CHECK_EVERY == WRITE_BUFFER_CHECK_EVERY - 1
                    && self.write_buffer_bytes() > max_buffer
                {
                    self.take_outputs(ti)?;
                    return Ok(());
                }
                if n % PREFETCH_CHECK_EVERY == 0 && self.wants_prefetch(ti) {
                    self.prefetch();
                }
                let t = &mut self.tasks[ti];
                let processed = t.task.process_one().map_err(|source| Error::Task {
                    task: t.id.to_string(),
                    source,
                })?;
                if !processed {
                    break;
                }
                n += 1;
                self.dirty = true;
            }
            self.take_outputs(ti)?;
        }
        Ok(())
    }

    fn punctuate(&mut self) -> Result<()> {
        let now = now_ms();
        for ti in 0..self.tasks.len() {
            let t = &mut self.tasks[ti];
            let fired = t
                .task
                .punctuate_wall_clock(now)
                .map_err(|source| Error::Task {
                    task: t.id.to_string(),
                    source,
                })?;
            if fired > 0 {
                self.dirty = true;
                self.take_outputs(ti)?;
            }
        }
        Ok(())
    }

    fn take_outputs(&mut self, ti: usize) -> Result<()> {
        if !self.tasks[ti].task.outputs().is_empty() {
            self.dirty = true;
            if self.outgoing.is_empty() {
                self.pending_since = Some(Instant::now());
            }
            if let Err(e) = self.collect_outputs(ti) {
                return self.commit_failed(e);
            }
        }
        if self.outgoing_len >= MAX_PENDING_OUTPUTS {
            // Under exactly-once they join the open transaction; a failure here is a failed
            // commit.
            if let Err(e) = self.append_pending() {
                return self.commit_failed(e);
            }
        }
        Ok(())
    }

    /// Bounded mode: says whether this thread is caught up with nothing uncommitted.
    fn report_idle(&mut self) -> Result<()> {
        let epoch = self.shared.epoch.load(Ordering::SeqCst);
        let mut idle = !self.dirty && !self.has_outputs() && !self.txn_open && !self.unapplied;
        for ti in 0..self.tasks.len() {
            if !idle {
                break;
            }
            if self.tasks[ti].task.buffered() > 0 {
                idle = false;
                break;
            }
            for ii in 0..self.tasks[ti].inputs.len() {
                let (topic, bound, position) = {
                    let i = &self.tasks[ti].inputs[ii];
                    (i.topic.clone(), i.bound, i.position)
                };
                let p = self.tasks[ti].id.partition;
                let target = match bound {
                    Some(b) => b,
                    None => {
                        let o = self.block_on(self.shared.broker.offsets(&topic, p))?;
                        let i = &mut self.tasks[ti].inputs[ii];
                        i.last_stable = i.last_stable.max(o.last_stable);
                        o.last_stable
                    }
                };
                if position < target {
                    idle = false;
                    break;
                }
            }
        }
        // Caught up only if the group has not moved on meanwhile (an instance that stopped
        // leaves tasks to take over): the poll is free here, nothing being uncommitted.
        if idle && (self.group_step(true)? || !self.active()) {
            idle = false;
        }
        if idle {
            // Caught up: the metrics show the lag after the final commit.
            self.measure_lag_if_stale(false);
        }
        self.shared.set_idle(self.index, idle.then_some(epoch));
        Ok(())
    }

    /// Graceful close: commit what is left, purge, close the tasks.
    fn close_clean(&mut self) -> Result<()> {
        self.prefetch = None;
        if self.dirty || self.has_outputs() || self.txn_open {
            self.dirty = true;
            self.commit()?;
        }
        self.apply_stores(true)?;
        self.purge();
        // Publishes the metrics with the lag after the final commit.
        self.measure_lag_if_stale(true);
        for t in std::mem::take(&mut self.tasks) {
            let id = t.id;
            self.shared.metrics.publish_task(self.snapshot(&t));
            t.task.close().map_err(|source| Error::Task {
                task: id.to_string(),
                source,
            })?;
        }
        self.route.clear();
        Ok(())
    }

    fn snapshot(&self, t: &RuntimeTask) -> TaskMetricsSnapshot {
        let m = t.metrics();
        TaskMetricsSnapshot {
            task: t.id,
            thread: self.index,
            records_in: m.records_in,
            records_out: m.records_out,
            dropped_records: m.dropped_records,
            late_records: m.late_records,
            dead_lettered: m.dead_lettered,
            stream_time: t.task.stream_time(),
            buffered: t.task.buffered(),
            lag: t.lag,
            restore: t.restore.clone(),
        }
    }

    fn publish(&self) {
        let registry = &self.shared.metrics;
        for t in &self.tasks {
            registry.publish_task(self.snapshot(t));
        }
        let commits = self.commits;
        registry.publish_thread(ThreadMetrics {
            thread: self.index,
            commits,
            failed_commits: self.failed_commits,
            commit_latency_avg_ms: if commits == 0 {
                0.0
            } else {
                self.commit_ms_total / commits as f64
            },
            commit_latency_max_ms: self.commit_ms_max,
            cache_bytes: self.cache.size_bytes(),
            cache_max_bytes: self.cache.max_bytes(),
            write_buffer_bytes: self.write_buffer_bytes(),
        });
    }
}
