//! The task core: one synchronous engine that runs a task's operators. The runtime and the
//! test driver both drive it, so tests exercise the code production runs.
//!
//! A task owns one partition of each source topic of its sub-topologies. It buffers the raw
//! records handed to it per input partition and, on each [`Task::process_one`], picks the
//! partition whose head record has the lowest timestamp (Kafka's `PartitionGroup`), decodes
//! it, advances stream time (the largest timestamp processed; it never goes back), runs the
//! record through the operators depth-first, then fires due stream-time punctuations.
//!
//! The caller owns I/O and the commit: it feeds records ([`Task::add_records`]), collects what
//! sinks wrote ([`Task::take_outputs`]), and commits with [`Task::flush`] (caches forward
//! their updates), the stores' changelogs ([`Task::stores`]), the consumed offsets
//! ([`Task::consumed_offsets`]) and the stream times ([`Task::stream_times`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{
    Backend, BufferStore, CachingKvStore, CachingSessionStore, CachingWindowStore,
    ChangelogPartition, ChangelogReader, KvStore, RestoreStats, SegmentedSessionStore,
    SegmentedWindowStore, StateStore, ThreadCache,
};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::record::{InputRecord, RecordMetadata, SinkRecord};
use crate::store::{StoreInstance, StoreKind, StoreRef};
use crate::topology::{NodeKind, SourceDecoder, Topology, TopologyInner};

pub(crate) mod global;
pub(crate) mod input;
pub(crate) mod node;
pub(crate) mod outputs;
pub(crate) mod punctuation;

use input::{RawQueue, RawRecords};
use node::{run_node, BoxedRecord, Node, NodeContext, NodeSlot, TaskNode};
use outputs::Outputs;
use punctuation::{PunctuationType, Punctuations};

/// A task's id: `<sub-topology>_<partition>`, e.g. `0_3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    /// The sub-topology.
    pub subtopology: u32,
    /// The partition.
    pub partition: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// What to do with a record that cannot be decoded or processed (Kafka's exception
/// handlers, plus the dead-letter topic of KIP-1034).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// Log and stop the task with the error (Kafka's default).
    #[default]
    Fail,
    /// Log, count the record as dropped, go on.
    LogAndContinue,
    /// Write the raw source record to this topic with `__streams.errors.*` headers, go on.
    DeadLetter(String),
}

/// Settings a task needs (the runtime fills them from `StreamsConfig`).
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// `application.id`: prefixes internal topics and changelogs.
    pub application_id: String,
    /// Minimum wall-clock ms between emit-final checks of windowed aggregations (Kafka's
    /// `__emit.interval.ms.kstreams.windowed.aggregation__`, 1000; the test driver uses 0).
    pub windowed_emit_interval_ms: i64,
    /// Minimum wall-clock ms between flushes of non-joined outer-join results (Kafka's
    /// `__emit.interval.ms.kstreams.outer.join.spurious.results.fix__`, 1000; driver: 0).
    pub outer_join_emit_interval_ms: i64,
    /// Undecodable records and invalid (negative) timestamps.
    pub deserialization: ErrorPolicy,
    /// Errors raised while processing a record.
    pub processing: ErrorPolicy,
}

impl TaskConfig {
    /// Kafka's defaults for `application_id`.
    pub fn new(application_id: impl Into<String>) -> TaskConfig {
        TaskConfig {
            application_id: application_id.into(),
            windowed_emit_interval_ms: 1000,
            outer_join_emit_interval_ms: 1000,
            deserialization: ErrorPolicy::Fail,
            processing: ErrorPolicy::Fail,
        }
    }
}

/// The partition count of a topic, when known.
pub type PartitionsOf = Arc<dyn Fn(&str) -> Option<u32> + Send + Sync>;

/// What a task gets from its caller: where stores live, the thread's cache, settings and
/// partition counts.
#[derive(Clone)]
pub struct TaskEnv {
    /// Where the task's stores keep their trees.
    pub backend: Arc<dyn Backend>,
    /// The stream thread's record cache.
    pub cache: ThreadCache,
    /// Settings.
    pub config: TaskConfig,
    /// The partition count of a topic (for sinks' partitioners); `None` when unknown.
    pub partitions_of: PartitionsOf,
    /// The wall clock at start, ms.
    pub wall_clock: i64,
    /// The global stores every operator can read ([`GlobalTask::global_stores`](crate::GlobalTask::global_stores));
    /// empty (`GlobalStores::default()`) when the topology has none.
    pub global_stores: global::GlobalStores,
}

impl fmt::Debug for TaskEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskEnv")
            .field("config", &self.config)
            .field("wall_clock", &self.wall_clock)
            .finish()
    }
}

/// A task's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    /// Records taken from input partitions.
    pub records_in: u64,
    /// Records written by sinks.
    pub records_out: u64,
    /// Records dropped (null keys, late, expired windows, skipped bad records).
    pub dropped_records: u64,
    /// Of those, records that arrived after their window closed.
    pub late_records: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
}

/// Stream times to commit with a task's offsets and restore at restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamTimes {
    /// The task's stream time (-1: none yet).
    pub task: i64,
    /// Each stateful operator's observed stream time, by node name; and operators'
    /// processor metadata (Kafka's, e.g. the close time an emit-final aggregation emitted
    /// up to) under keys `processor-metadata:<key>` (Kafka's name rules keep `:` out of
    /// node names).
    pub nodes: BTreeMap<String, i64>,
}

/// The part of a task operators reach through their context.
pub(crate) struct TaskCore {
    pub(crate) id: String,
    pub(crate) partition: u32,
    pub(crate) topology: Arc<TopologyInner>,
    pub(crate) stores: BTreeMap<String, StoreRef>,
    pub(crate) stream_time: i64,
    pub(crate) wall_clock: i64,
    /// Where the record being processed came from, kept from record to record (its topic
    /// is not copied for each); shown only while `in_record`.
    pub(crate) meta: RecordMetadata,
    /// A record is being processed (not a punctuation, flush or close).
    pub(crate) in_record: bool,
    pub(crate) punctuations: Punctuations,
    pub(crate) outputs: Outputs,
    pub(crate) metrics: TaskMetrics,
    pub(crate) config: TaskConfig,
    pub(crate) partitions_of: PartitionsOf,
    /// The global stores (kept by the global task), readable by every node.
    pub(crate) global_stores: global::GlobalStores,
}

impl TaskCore {
    /// Fires every punctuation of `kind` due at `now`; returns how many fired.
    fn punctuate(
        &mut self,
        topo: &TopologyInner,
        nodes: &mut [NodeSlot],
        kind: PunctuationType,
        now: i64,
    ) -> Result<usize> {
        if self.punctuations.schedules.is_empty() {
            return Ok(0);
        }
        let mut fired = 0;
        while let Some(i) = self.punctuations.next_due(kind, now) {
            let Some((node, mut punctuator, key)) = self.punctuations.take(i, now) else {
                break;
            };
            let saved = std::mem::replace(&mut self.in_record, false);
            let result = run_node(self, topo, nodes, 0, node, |_, ctx| punctuator(ctx, now));
            self.in_record = saved;
            self.punctuations.put_back(&key, punctuator);
            result?;
            fired += 1;
        }
        Ok(fired)
    }
}

/// Runs `f` on every node of the task in index order (init, flush, close).
pub(crate) fn for_each_node(
    core: &mut TaskCore,
    topo: &TopologyInner,
    nodes: &mut [NodeSlot],
    mut f: impl FnMut(&mut dyn Node, &mut NodeContext<'_>) -> Result<()>,
) -> Result<()> {
    for i in 0..nodes.len() {
        if nodes[i].is_some() {
            run_node(core, topo, nodes, 0, i, &mut f)?;
        }
    }
    Ok(())
}

/// Where a record sent to node `n` first meets an operator that does something with it:
/// past the nodes that forward every record unchanged to their only child (a source, a
/// repartition's null-key filter whose sink drops null keys).
fn past_unchanged(nodes: &[NodeSlot], mut n: usize) -> usize {
    while let Some(Some(TaskNode { op, children })) = nodes.get(n) {
        match **children {
            [only] if op.forwards_unchanged() && only > n => n = only,
            _ => break,
        }
    }
    n
}

/// The decoded head record of a queue: the first raw record (kept there until processed,
/// as a processing error's dead letter is the source record), decoded into the queue's slot.
struct Head {
    timestamp: i64,
    offset: i64,
}

/// One input partition of a task.
struct PartitionQueue {
    topic: String,
    /// The node a record of this queue goes to first: the source, or the source's only
    /// child when the source passes records on unchanged (one hop less per record).
    entry: usize,
    /// The source's decoder (held here: not looked up in the topology for every record).
    decoder: Arc<dyn SourceDecoder>,
    /// The records not processed yet, the head's first.
    raw: RawQueue,
    head: Option<Head>,
    /// The typed head record (`Option<Record<K, V>>`, which the source node empties): boxed
    /// once and refilled for every record, not allocated per record.
    slot: Option<BoxedRecord>,
    partition_time: i64,
    /// The offset after the last record taken (what to commit).
    next_offset: Option<i64>,
}

/// A running task: its operators, stores, input queues and time.
pub struct Task {
    core: TaskCore,
    /// The topology, borrowed by running nodes apart from `core`.
    topology: Arc<TopologyInner>,
    /// The operators by node index (`None`: another sub-topology's), kept out of `core`
    /// so a running node and the nodes after it are borrowed apart.
    nodes: Vec<NodeSlot>,
    queues: Vec<PartitionQueue>,
    /// The queue whose topic `core.meta` holds.
    meta_queue: Option<usize>,
    initialized: bool,
    closed: bool,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.core.id)
            .field("stream_time", &self.core.stream_time)
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl Task {
    /// Makes the task running sub-topologies `subtopologies` on `partition` (the runtime
    /// gives one; the test driver all), opening its stores. Call [`Task::restore`] if the
    /// stores are logged, then process.
    ///
    /// # Errors
    /// A store that cannot be opened; an unknown sub-topology.
    pub fn new(
        topology: &Topology,
        id: impl Into<String>,
        subtopologies: &[u32],
        partition: u32,
        env: TaskEnv,
    ) -> Result<Task> {
        let inner = topology.inner.clone();
        let id = id.into();
        let mut nodes: Vec<NodeSlot> = inner.nodes.iter().map(|_| None).collect();
        let mut queues = Vec::new();
        let mut stores = BTreeMap::new();
        for &sub_id in subtopologies {
            let sub = inner
                .subtopologies
                .iter()
                .find(|s| s.id == sub_id)
                .ok_or_else(|| Error::InvalidArgument(format!("no sub-topology {sub_id}")))?;
            for &n in &sub.nodes {
                nodes[n] = Some(TaskNode::new(&inner, n));
            }
            for &n in &sub.nodes {
                if let NodeKind::Source { topics, decoder } = &inner.nodes[n].kind {
                    let entry = past_unchanged(&nodes, n);
                    for t in topics {
                        queues.push(PartitionQueue {
                            topic: t.resolve(&env.config.application_id),
                            entry,
                            decoder: decoder.clone(),
                            raw: RawQueue::default(),
                            head: None,
                            slot: None,
                            partition_time: -1,
                            next_offset: None,
                        });
                    }
                }
            }
            for name in &sub.stores {
                let builder = inner.stores.get(name).ok_or_else(|| {
                    Error::InvalidArgument(format!("store {name} is used but not declared"))
                })?;
                let store = open_store(builder, &env, &id, partition)?;
                stores.insert(name.clone(), store);
            }
        }
        // Records go past the operators that only pass them on (each forward is a call).
        let resolved: Vec<Option<Box<[usize]>>> = nodes
            .iter()
            .map(|slot| {
                slot.as_ref().map(|t| {
                    t.children
                        .iter()
                        .map(|&c| past_unchanged(&nodes, c))
                        .collect()
                })
            })
            .collect();
        for (slot, children) in nodes.iter_mut().zip(resolved) {
            if let (Some(t), Some(children)) = (slot, children) {
                t.children = children;
            }
        }
        let punctuations = Punctuations {
            schedules: Vec::new(),
            now: env.wall_clock,
        };
        Ok(Task {
            topology: inner.clone(),
            nodes,
            core: TaskCore {
                id,
                partition,
                topology: inner,
                stores,
                stream_time: -1,
                wall_clock: env.wall_clock,
                meta: RecordMetadata {
                    topic: String::new(),
                    partition,
                    offset: -1,
                },
                in_record: false,
                punctuations,
                outputs: Outputs::default(),
                metrics: TaskMetrics::default(),
                config: env.config,
                partitions_of: env.partitions_of,
                global_stores: env.global_stores,
            },
            queues,
            meta_queue: None,
            initialized: false,
            closed: false,
        })
    }

    /// The task's id.
    pub fn id(&self) -> &str {
        &self.core.id
    }

    /// The task's partition.
    pub fn partition(&self) -> u32 {
        self.core.partition
    }

    /// The topics the task reads (its partition of each), resolved to real names.
    pub fn input_topics(&self) -> Vec<String> {
        self.queues.iter().map(|q| q.topic.clone()).collect()
    }

    /// Replays every logged store's changelog after its applied offsets; returns each
    /// store's statistics.
    pub fn restore(
        &mut self,
        reader: &mut dyn ChangelogReader,
    ) -> Result<Vec<(String, RestoreStats)>> {
        let mut all = Vec::new();
        for store in self.core.stores.values() {
            let stats = store
                .inner
                .lock()
                .lifecycle()
                .restore(reader)
                .map_err(|source| Error::Store {
                    store: store.name.to_string(),
                    source: Box::new(source),
                })?;
            all.push((store.name.to_string(), stats));
        }
        Ok(all)
    }

    /// Restores stream times committed with the offsets (before the first record).
    pub fn restore_stream_times(&mut self, times: &StreamTimes) -> Result<()> {
        self.init()?;
        self.core.stream_time = self.core.stream_time.max(times.task);
        for (i, spec) in self.core.topology.nodes.iter().enumerate() {
            if let (Some(Some(node)), Some(&t)) =
                (self.nodes.get_mut(i), times.nodes.get(&spec.name))
            {
                node.op.restore_stream_time(t);
            }
        }
        for node in self.nodes.iter_mut().flatten() {
            node.op.restore_processor_metadata(&times.nodes);
        }
        Ok(())
    }

    /// Initializes the operators (once; processing does it when needed).
    pub fn init(&mut self) -> Result<()> {
        if self.initialized {
            return Ok(());
        }
        self.initialized = true;
        for_each_node(&mut self.core, &self.topology, &mut self.nodes, |n, ctx| {
            n.init(ctx)
        })
    }

    /// Buffers records of `topic` (this task's partition), in offset order.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] when the task does not read `topic`.
    pub fn add_records(
        &mut self,
        topic: &str,
        records: impl IntoIterator<Item = InputRecord>,
    ) -> Result<()> {
        let q = self
            .queues
            .iter_mut()
            .find(|q| q.topic == topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))?;
        let records: Vec<InputRecord> = records.into_iter().collect();
        q.raw.push(Box::new(records));
        Ok(())
    }

    /// Buffers records of `topic` (this task's partition), in offset order, in a container
    /// of the caller's, read in place (the runtime's fetched batches): no record is copied
    /// on the way to the operators.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] when the task does not read `topic`.
    pub fn add_raw_records(&mut self, topic: &str, records: Box<dyn RawRecords>) -> Result<()> {
        let q = self
            .queues
            .iter_mut()
            .find(|q| q.topic == topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))?;
        q.raw.push(records);
        Ok(())
    }

    /// Records buffered and not yet processed.
    pub fn buffered(&self) -> usize {
        self.queues.iter().map(|q| q.raw.len()).sum()
    }

    /// Records buffered for `topic`.
    pub fn buffered_in(&self, topic: &str) -> usize {
        self.queues
            .iter()
            .filter(|q| q.topic == topic)
            .map(|q| q.raw.len())
            .sum()
    }

    /// Processes the buffered record with the lowest timestamp, then fires due stream-time
    /// punctuations. Returns false when nothing was buffered.
    ///
    /// # Errors
    /// A record that failed under [`ErrorPolicy::Fail`], or a store error.
    pub fn process_one(&mut self) -> Result<bool> {
        self.init()?;
        // The lowest head timestamp; on a tie the first queue.
        let mut next: Option<(i64, usize)> = None;
        for i in 0..self.queues.len() {
            self.fill_head(i)?;
            if let Some(h) = &self.queues[i].head {
                if next.is_none_or(|(ts, _)| h.timestamp < ts) {
                    next = Some((h.timestamp, i));
                }
            }
        }
        let Some((_, i)) = next else {
            return Ok(false);
        };
        let q = &mut self.queues[i];
        let (Some(head), Some(record)) = (q.head.take(), q.slot.as_mut()) else {
            return Ok(false);
        };
        q.partition_time = q.partition_time.max(head.timestamp);
        q.next_offset = Some(head.offset + 1);
        let entry = q.entry;
        self.core.stream_time = self.core.stream_time.max(head.timestamp);
        self.core.metrics.records_in += 1;
        if self.meta_queue != Some(i) {
            self.core.meta.topic.clone_from(&q.topic);
            self.meta_queue = Some(i);
        }
        self.core.meta.partition = self.core.partition;
        self.core.meta.offset = head.offset;
        self.core.in_record = true;
        let mut record = record.in_flight();
        let result = run_node(
            &mut self.core,
            &self.topology,
            &mut self.nodes,
            0,
            entry,
            |op, ctx| op.process(ctx, &mut record),
        );
        self.core.in_record = false;
        let q = &mut self.queues[i];
        match result {
            Ok(()) => q.raw.advance(),
            Err(e) => {
                let raw = q.raw.front().map(|r| r.to_input());
                q.raw.advance();
                self.handle_processing_error(e, raw)?;
            }
        }
        // Most tasks schedule nothing: no call per record to find that out.
        if !self.core.punctuations.schedules.is_empty() {
            let now = self.core.stream_time;
            self.core.punctuate(
                &self.topology,
                &mut self.nodes,
                PunctuationType::StreamTime,
                now,
            )?;
        }
        Ok(true)
    }

    /// Decodes the next raw record of queue `i` into its head, applying the
    /// deserialization policy to records that fail.
    fn fill_head(&mut self, i: usize) -> Result<()> {
        loop {
            let q = &mut self.queues[i];
            if q.head.is_some() {
                return Ok(());
            }
            // Borrowed where `front` returned it, not moved: a copy of the record loads it
            // in other widths than it was just stored in, and waits for the stores.
            let front = q.raw.front();
            let Some(first) = front.as_ref() else {
                return Ok(());
            };
            let reason = match q.decoder.decode_into(first, q.partition_time, &mut q.slot) {
                Ok(ts) if ts < 0 => format!("invalid (negative) timestamp {ts}"),
                Ok(timestamp) => {
                    q.head = Some(Head {
                        timestamp,
                        offset: first.offset,
                    });
                    return Ok(());
                }
                Err(reason) => reason,
            };
            let raw = first.to_input();
            q.raw.advance();
            q.next_offset = Some(raw.offset + 1);
            let topic = q.topic.clone();
            let error = Error::Deserialization {
                topic: topic.clone(),
                partition: self.core.partition,
                offset: raw.offset,
                reason,
            };
            let policy = self.core.config.deserialization.clone();
            self.apply_policy(&policy, error, &topic, Some(raw))?;
        }
    }

    /// Applies the processing policy to an error raised while `raw` (the source record)
    /// went through the operators; a dead letter is the source record (KIP-1034).
    fn handle_processing_error(&mut self, error: Error, raw: Option<InputRecord>) -> Result<()> {
        let policy = self.core.config.processing.clone();
        let topic = self.core.meta.topic.clone();
        self.apply_policy(&policy, error, &topic, raw)
    }

    fn apply_policy(
        &mut self,
        policy: &ErrorPolicy,
        error: Error,
        topic: &str,
        raw: Option<InputRecord>,
    ) -> Result<()> {
        match policy {
            ErrorPolicy::Fail => Err(error),
            ErrorPolicy::LogAndContinue => {
                tracing::warn!(task = %self.core.id, "{error}; skipping the record");
                self.core.metrics.dropped_records += 1;
                Ok(())
            }
            ErrorPolicy::DeadLetter(dlq) => {
                tracing::warn!(task = %self.core.id, "{error}; sent to dead-letter topic {dlq}");
                let (key, value, mut headers, offset, timestamp) = match raw {
                    Some(r) => (r.key, r.value, r.headers, r.offset, r.timestamp),
                    None => (None, None, Vec::new(), -1, self.core.stream_time),
                };
                let h = |n: &str, v: String| (format!("__streams.errors.{n}"), Bytes::from(v));
                headers.push(h("exception", error_kind(&error).to_string()));
                headers.push(h("message", error.to_string()));
                headers.push(h("stacktrace", String::new()));
                headers.push(h("topic", topic.to_string()));
                headers.push(h("partition", self.core.partition.to_string()));
                headers.push(h("offset", offset.to_string()));
                self.core.outputs.push(SinkRecord {
                    topic: dlq.clone(),
                    partition: None,
                    key,
                    value,
                    timestamp,
                    headers,
                });
                self.core.metrics.dead_lettered += 1;
                self.core.metrics.dropped_records += 1;
                Ok(())
            }
        }
    }

    /// Sets the wall clock and fires due wall-clock punctuations; returns how many fired.
    pub fn punctuate_wall_clock(&mut self, now: i64) -> Result<usize> {
        self.init()?;
        self.core.wall_clock = now;
        self.core.punctuations.now = now;
        self.core.punctuate(
            &self.topology,
            &mut self.nodes,
            PunctuationType::WallClockTime,
            now,
        )
    }

    /// Commit step 1: flushes every operator's cache in topological order, so what caches
    /// held goes downstream (and into the outputs) before the commit.
    pub fn flush(&mut self) -> Result<()> {
        self.init()?;
        for_each_node(&mut self.core, &self.topology, &mut self.nodes, |n, ctx| {
            n.flush(ctx)
        })?;
        // Stores no operator flushed (Processor API stores with caching).
        for store in self.core.stores.values() {
            store
                .inner
                .lock()
                .flush_cache()
                .map_err(|source| Error::Store {
                    store: store.name.to_string(),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    /// Takes the records sinks wrote since the last call.
    pub fn take_outputs(&mut self) -> Vec<SinkRecord> {
        self.core.outputs.take()
    }

    /// The records sinks wrote since they were last taken or cleared, in place: a caller
    /// that copies them elsewhere (the runtime's output batches) reads them here, then
    /// [`clear_outputs`](Task::clear_outputs), and no record is allocated on the way.
    pub fn outputs(&self) -> &Outputs {
        &self.core.outputs
    }

    /// Moves the records sinks wrote since they were last taken into `to`, without copying
    /// them (see [`Outputs::move_records_into`]): the runtime hands them to its sender.
    pub fn move_outputs_into(&mut self, to: &mut Outputs) {
        self.core.outputs.move_records_into(to);
    }

    /// Forgets the records [`outputs`](Task::outputs) shows.
    pub fn clear_outputs(&mut self) {
        self.core.outputs.clear();
    }

    /// Runs `f` on every store's commit lifecycle (send changelogs, committed, apply,
    /// abort), in name order.
    pub fn stores(
        &mut self,
        mut f: impl FnMut(&mut dyn StateStore) -> freshet_state_store::Result<()>,
    ) -> Result<()> {
        for store in self.core.stores.values() {
            f(store.inner.lock().lifecycle()).map_err(|source| Error::Store {
                store: store.name.to_string(),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    /// Bytes of uncommitted store writes (for the write-buffer budget).
    pub fn write_buffer_bytes(&self) -> usize {
        self.core
            .stores
            .values()
            .map(|s| s.inner.lock().lifecycle().write_buffer_bytes())
            .sum()
    }

    /// `(topic, offset to commit)` for every input partition a record was taken from.
    pub fn consumed_offsets(&self) -> Vec<(String, i64)> {
        self.queues
            .iter()
            .filter_map(|q| q.next_offset.map(|o| (q.topic.clone(), o)))
            .collect()
    }

    /// The task's and each stateful operator's stream time.
    pub fn stream_times(&self) -> StreamTimes {
        let mut nodes = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(t) = n.as_ref().and_then(|n| n.op.observed_stream_time()) {
                nodes.insert(self.core.topology.nodes[i].name.clone(), t);
            }
            if let Some(n) = n {
                nodes.extend(n.op.processor_metadata());
            }
        }
        StreamTimes {
            task: self.core.stream_time,
            nodes,
        }
    }

    /// The task's stream time (-1 before any record).
    pub fn stream_time(&self) -> i64 {
        self.core.stream_time
    }

    /// The task's counters.
    pub fn metrics(&self) -> TaskMetrics {
        self.core.metrics.clone()
    }

    /// Closes the operators (the caller flushes and commits first).
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        for_each_node(&mut self.core, &self.topology, &mut self.nodes, |n, ctx| {
            n.close(ctx)
        })
    }

    /// A store of the task, for reads by the test driver.
    pub(crate) fn store_ref(&self, name: &str) -> Option<StoreRef> {
        self.core.stores.get(name).cloned()
    }
}

fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Deserialization { .. } => "DeserializationError",
        Error::Serde { .. } => "SerializationError",
        Error::Store { .. } => "StateStoreError",
        _ => "ProcessingError",
    }
}

/// Opens a store for task `task`: the DSL layering (cache on top when enabled).
fn open_store(
    builder: &Arc<crate::store::StoreBuilder>,
    env: &TaskEnv,
    task: &str,
    partition: u32,
) -> Result<StoreRef> {
    let name = builder.name.as_str();
    let changelog = builder.logging.then(|| ChangelogPartition {
        topic: freshet_state_store::changelog_topic(&env.config.application_id, name),
        partition,
    });
    let err = |source| Error::Store {
        store: name.to_string(),
        source: Box::new(source),
    };
    let backend = env.backend.clone();
    let instance = match &builder.kind {
        StoreKind::KeyValue => {
            let inner = KvStore::open(name, backend, changelog).map_err(err)?;
            StoreInstance::Kv(if builder.caching {
                CachingKvStore::new(inner, &env.cache, task).map_err(err)?
            } else {
                CachingKvStore::disabled(inner)
            })
        }
        StoreKind::Window(options) => {
            let inner = SegmentedWindowStore::open(name, backend, changelog, options.clone())
                .map_err(err)?;
            StoreInstance::Window(if builder.caching {
                CachingWindowStore::new(inner, &env.cache, task).map_err(err)?
            } else {
                CachingWindowStore::disabled(inner)
            })
        }
        StoreKind::Session(options) => {
            let inner = SegmentedSessionStore::open(name, backend, changelog, options.clone())
                .map_err(err)?;
            StoreInstance::Session(if builder.caching {
                CachingSessionStore::new(inner, &env.cache, task).map_err(err)?
            } else {
                CachingSessionStore::disabled(inner)
            })
        }
        StoreKind::Buffer => {
            StoreInstance::Buffer(BufferStore::open(name, backend, changelog).map_err(err)?)
        }
    };
    Ok(StoreRef {
        name: Arc::from(name),
        inner: Arc::new(Mutex::new(instance)),
        builder: builder.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::stateless::{forward_unchanged, pass};

    fn node(factory: crate::topology::NodeFactory, children: &[usize]) -> NodeSlot {
        Some(TaskNode {
            op: factory(),
            children: children.into(),
        })
    }

    #[test]
    fn records_go_past_nodes_that_only_pass_them_to_one_child() {
        let forward = forward_unchanged::<u64, u64>;
        let filter = || pass::<u64, u64>(|_, _| true);
        let nodes = vec![
            node(forward(), &[1]),    // 0: a source
            node(forward(), &[2]),    // 1: a repartition's null-key filter
            node(filter(), &[3]),     // 2: does something
            node(forward(), &[4, 5]), // 3: two children: kept
            node(filter(), &[]),
            None,                 // 5: another sub-topology's
            node(forward(), &[]), // 6: no child: kept
        ];
        let past: Vec<usize> = (0..nodes.len())
            .map(|n| past_unchanged(&nodes, n))
            .collect();
        assert_eq!(past, vec![2, 2, 2, 3, 4, 5, 6]);
    }
}
