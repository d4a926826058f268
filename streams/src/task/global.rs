//! The global task (Kafka's `GlobalStateUpdateTask`): keeps the global stores of a
//! topology — one per [`GlobalKTable`](crate::GlobalKTable) or
//! [`add_global_store`](crate::StreamsBuilder::add_global_store) — from every partition of
//! their topics, and hands them to the tasks ([`GlobalStores`], through
//! [`TaskEnv::global_stores`](crate::TaskEnv::global_stores)), whose operators read them
//! without being connected to them.
//!
//! One global task runs per application instance. The runtime bootstraps it before any task
//! starts: it reads each global topic, all partitions, from the committed offsets (the
//! beginning on a fresh start, whatever the offset-reset setting, as Kafka) up to the end
//! offsets it saw at start, processes and commits; then it keeps up with the topics while the
//! tasks run. The test driver instead processes a record piped into a global topic at once,
//! as Kafka's `TopologyTestDriver` does.
//!
//! The global stores are not logged: the source topic is their changelog, and the offsets
//! to commit ([`GlobalTask::consumed_offsets`]) are their checkpoint. Records are processed
//! in arrival order; there is no stream time and no punctuation in a global task, and the
//! source's timestamp extractor is not used (the records keep their own timestamps), as in
//! Kafka. Records that cannot be decoded follow the deserialization policy; errors raised by
//! the store processor fail the global task (Kafka's global thread has no processing
//! handler).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{
    ChangelogError, ChangelogPartition, ChangelogRecord, ChangelogSink, StateStore,
};

use crate::error::{Error, Result};
use crate::record::{InputRecord, RecordMetadata, SinkRecord};
use crate::store::StoreRef;
use crate::task::node::{run_node, NodeSlot, TaskNode};
use crate::task::punctuation::Punctuations;
use crate::task::{for_each_node, open_store, ErrorPolicy, TaskCore, TaskEnv, TaskMetrics};
use crate::topology::{GlobalStoreTopology, NodeKind, NodeSpec, Topology, TopologyInner};

/// The global stores of a running application, shared with every task (they read, the
/// [`GlobalTask`] writes). `GlobalStores::default()` holds none.
#[derive(Clone, Default)]
pub struct GlobalStores(pub(crate) Arc<BTreeMap<String, StoreRef>>);

impl fmt::Debug for GlobalStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl GlobalStores {
    /// The store `name`, when it is a global store.
    pub(crate) fn get(&self, name: &str) -> Option<StoreRef> {
        self.0.get(name).cloned()
    }

    /// The names of the global stores.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Finds the global stores' sub-topologies among the node groups (`groups[id]`): the
/// groups holding a global source. Each must be exactly the source (one topic) and the one
/// processor keeping one store; anything else connected to them is a topology error, as in
/// Kafka (a global store is read without being connected; a global table has no
/// downstream operators).
pub(crate) fn global_store_groups(
    groups: &[Vec<usize>],
    global_sources: &[usize],
    nodes: &[NodeSpec],
) -> Result<Vec<GlobalStoreTopology>> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (id, members) in groups.iter().enumerate() {
        let Some(&source) = members.iter().find(|m| global_sources.contains(m)) else {
            continue;
        };
        let processor = members.iter().copied().find(|&m| m != source);
        let topics = match &nodes[source].kind {
            NodeKind::Source { topics, .. } => topics.as_slice(),
            _ => &[],
        };
        match (processor, topics) {
            (Some(p), [topic]) if members.len() == 2 && nodes[p].stores.len() == 1 => {
                found.push(GlobalStoreTopology {
                    id: id as u32,
                    topic: topic.clone(),
                    store: nodes[p].stores[0].clone(),
                    source,
                    processor: p,
                });
            }
            _ => {
                let others: Vec<&str> = members
                    .iter()
                    .filter(|&&m| m != source && Some(m) != processor)
                    .map(|&m| nodes[m].name.as_str())
                    .collect();
                errors.push(format!(
                    "the global store read by source {} must be kept by one processor and used by no other node (any processor reads a global store without being connected to it), but it is connected to: {}",
                    nodes[source].name,
                    if others.is_empty() { "nothing".to_string() } else { others.join(", ") }
                ));
            }
        }
    }
    // A global topic has no other source (Kafka: "Topic has already been registered by
    // another source").
    for g in &found {
        for (i, n) in nodes.iter().enumerate() {
            if let NodeKind::Source { topics, .. } = &n.kind {
                if i != g.source && topics.contains(&g.topic) {
                    errors.push(format!(
                        "topic {} is read by the global store {} and by source {}",
                        g.topic.shown(),
                        g.store,
                        n.name
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(Error::Topology(errors.join("; ")))
    }
}

/// A changelog that refuses nothing: global stores are not logged, so it gets no records.
struct NoChangelog;

impl ChangelogSink for NoChangelog {
    fn append(
        &mut self,
        changelog: &ChangelogPartition,
        _records: Vec<ChangelogRecord>,
    ) -> std::result::Result<i64, ChangelogError> {
        Err(format!(
            "global stores are not logged, yet a write reached changelog {}",
            changelog.topic
        )
        .into())
    }
}

/// One buffered record of a global topic.
struct Buffered {
    /// Index into `GlobalTask::sources`.
    source: usize,
    partition: u32,
    record: InputRecord,
}

/// Keeps the global stores (Kafka's `GlobalStateUpdateTask`; see the module docs): feed it
/// the records of [`topics`](GlobalTask::topics) (every partition), process, commit, and
/// give its [`global_stores`](GlobalTask::global_stores) to every task's
/// [`TaskEnv`](crate::TaskEnv).
///
/// ```
/// use std::sync::Arc;
/// use freshet_streams::{GlobalTask, StreamsBuilder, TaskConfig, TaskEnv, InputRecord};
/// use freshet_state_store::{MemoryBackend, ThreadCache};
///
/// let builder = StreamsBuilder::new();
/// builder.global_table::<String, String>("countries");
/// let topology = builder.build()?;
/// let env = TaskEnv {
///     backend: Arc::new(MemoryBackend::new()),
///     cache: ThreadCache::new(1 << 20),
///     config: TaskConfig::new("app"),
///     partitions_of: Arc::new(|_| Some(1)),
///     wall_clock: 0,
///     global_stores: Default::default(),
/// };
/// let mut global = GlobalTask::new(&topology, env)?;
/// assert_eq!(global.topics(), vec!["countries".to_string()]);
/// let record = InputRecord {
///     key: Some("fr".into()),
///     value: Some("France".into()),
///     timestamp: 5,
///     headers: Vec::new(),
///     offset: 0,
/// };
/// global.add_records("countries", 0, [record])?;
/// assert_eq!(global.process()?, 1);
/// global.commit()?;
/// assert_eq!(global.consumed_offsets(), vec![("countries".to_string(), 0, 1)]);
/// assert_eq!(global.global_stores().names().collect::<Vec<_>>(), vec!["countries-STATE-STORE-0000000000"]);
/// # Ok::<(), freshet_streams::Error>(())
/// ```
pub struct GlobalTask {
    core: TaskCore,
    /// The topology, borrowed by running nodes apart from `core`.
    topology: Arc<TopologyInner>,
    /// The store processors and their sources by node index (`None`: other nodes).
    nodes: Vec<NodeSlot>,
    /// `(resolved topic, source node)` of each global store.
    sources: Vec<(String, usize)>,
    queue: VecDeque<Buffered>,
    /// The offset after the last record taken, per `(topic, partition)`.
    offsets: BTreeMap<(String, u32), i64>,
    initialized: bool,
}

impl fmt::Debug for GlobalTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalTask")
            .field("topics", &self.topics())
            .field("buffered", &self.queue.len())
            .finish()
    }
}

impl GlobalTask {
    /// Makes the global task of `topology`, opening its stores (not logged) in
    /// `env.backend`. A topology without global stores gives a task that reads nothing.
    ///
    /// # Errors
    /// A store that cannot be opened.
    pub fn new(topology: &Topology, env: TaskEnv) -> Result<GlobalTask> {
        let inner = topology.inner.clone();
        let id = "global".to_string();
        let mut nodes: Vec<NodeSlot> = inner.nodes.iter().map(|_| None).collect();
        let mut stores = BTreeMap::new();
        let mut sources = Vec::new();
        for g in &inner.global_stores {
            for n in [g.source, g.processor] {
                nodes[n] = Some(TaskNode::new(&inner, n));
            }
            sources.push((g.topic.resolve(&env.config.application_id), g.source));
            let builder = inner.stores.get(&g.store).ok_or_else(|| {
                Error::InvalidArgument(format!("store {} is used but not declared", g.store))
            })?;
            stores.insert(g.store.clone(), open_store(builder, &env, &id, 0)?);
        }
        let punctuations = Punctuations {
            schedules: Vec::new(),
            now: env.wall_clock,
        };
        Ok(GlobalTask {
            topology: inner.clone(),
            nodes,
            core: TaskCore {
                id,
                partition: 0,
                topology: inner,
                stores,
                stream_time: -1,
                wall_clock: env.wall_clock,
                meta: RecordMetadata {
                    topic: String::new(),
                    partition: 0,
                    offset: -1,
                },
                in_record: false,
                punctuations,
                outputs: crate::task::outputs::Outputs::default(),
                metrics: TaskMetrics::default(),
                config: env.config,
                partitions_of: env.partitions_of,
                global_stores: GlobalStores::default(),
            },
            sources,
            queue: VecDeque::new(),
            offsets: BTreeMap::new(),
            initialized: false,
        })
    }

    /// The topics it reads (every partition of each), resolved to real names.
    pub fn topics(&self) -> Vec<String> {
        self.sources.iter().map(|(t, _)| t.clone()).collect()
    }

    /// The global stores, for every task's [`TaskEnv::global_stores`](crate::TaskEnv).
    pub fn global_stores(&self) -> GlobalStores {
        GlobalStores(Arc::new(self.core.stores.clone()))
    }

    /// Initializes the store processors (once; processing does it when needed).
    ///
    /// # Errors
    /// A processor that fails to initialize, or one that schedules a punctuation (a global
    /// task has none, as in Kafka).
    pub fn init(&mut self) -> Result<()> {
        if self.initialized {
            return Ok(());
        }
        self.initialized = true;
        for_each_node(&mut self.core, &self.topology, &mut self.nodes, |n, ctx| {
            n.init(ctx)
        })?;
        self.refuse_punctuations()
    }

    fn refuse_punctuations(&self) -> Result<()> {
        if self.core.punctuations.schedules.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "a global store's processor cannot schedule punctuations".into(),
            ))
        }
    }

    /// Buffers records of `partition` of the global topic `topic`, in offset order.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] when no global store reads `topic`.
    pub fn add_records(
        &mut self,
        topic: &str,
        partition: u32,
        records: impl IntoIterator<Item = InputRecord>,
    ) -> Result<()> {
        let source = self
            .sources
            .iter()
            .position(|(t, _)| t == topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))?;
        self.queue
            .extend(records.into_iter().map(|record| Buffered {
                source,
                partition,
                record,
            }));
        Ok(())
    }

    /// Records buffered and not yet processed.
    pub fn buffered(&self) -> usize {
        self.queue.len()
    }

    /// Processes the oldest buffered record (arrival order). Returns false when nothing was
    /// buffered.
    ///
    /// # Errors
    /// A record that cannot be decoded under [`ErrorPolicy::Fail`], a failing processor or
    /// store.
    pub fn process_one(&mut self) -> Result<bool> {
        self.init()?;
        let Some(Buffered {
            source,
            partition,
            record,
        }) = self.queue.pop_front()
        else {
            return Ok(false);
        };
        let (topic, node) = self.sources[source].clone();
        self.offsets
            .insert((topic.clone(), partition), record.offset + 1);
        self.core.metrics.records_in += 1;
        let NodeKind::Source { decoder, .. } = &self.core.topology.nodes[node].kind else {
            return Err(Error::InvalidArgument(format!(
                "global node {} is not a source",
                self.core.topology.nodes[node].name
            )));
        };
        // No stream time in a global task: the extractor (none for global sources) sees -1.
        let mut decoded = match decoder.decode(&record, -1) {
            Ok((decoded, _)) => decoded,
            Err(reason) => {
                let error = Error::Deserialization {
                    topic: topic.clone(),
                    partition,
                    offset: record.offset,
                    reason,
                };
                self.apply_deserialization_policy(error, &topic, partition, record)?;
                return Ok(true);
            }
        };
        self.core.partition = partition;
        self.core.meta = RecordMetadata {
            topic,
            partition,
            offset: record.offset,
        };
        self.core.in_record = true;
        let mut record = decoded.in_flight();
        let result = run_node(
            &mut self.core,
            &self.topology,
            &mut self.nodes,
            0,
            node,
            |op, ctx| op.process(ctx, &mut record),
        );
        self.core.in_record = false;
        result?;
        self.refuse_punctuations()?;
        Ok(true)
    }

    /// Processes everything buffered; returns how many records were taken.
    ///
    /// # Errors
    /// As [`process_one`](GlobalTask::process_one).
    pub fn process(&mut self) -> Result<usize> {
        let mut n = 0;
        while self.process_one()? {
            n += 1;
        }
        Ok(n)
    }

    fn apply_deserialization_policy(
        &mut self,
        error: Error,
        topic: &str,
        partition: u32,
        raw: InputRecord,
    ) -> Result<()> {
        match self.core.config.deserialization.clone() {
            ErrorPolicy::Fail => Err(error),
            ErrorPolicy::LogAndContinue => {
                tracing::warn!(task = "global", "{error}; skipping the record");
                self.core.metrics.dropped_records += 1;
                Ok(())
            }
            ErrorPolicy::DeadLetter(dlq) => {
                tracing::warn!(task = "global", "{error}; sent to dead-letter topic {dlq}");
                let mut headers = raw.headers;
                let h = |n: &str, v: String| (format!("__streams.errors.{n}"), Bytes::from(v));
                headers.push(h("exception", "DeserializationError".to_string()));
                headers.push(h("message", error.to_string()));
                headers.push(h("stacktrace", String::new()));
                headers.push(h("topic", topic.to_string()));
                headers.push(h("partition", partition.to_string()));
                headers.push(h("offset", raw.offset.to_string()));
                self.core.outputs.push(SinkRecord {
                    topic: dlq,
                    partition: None,
                    key: raw.key,
                    value: raw.value,
                    timestamp: raw.timestamp,
                    headers,
                });
                self.core.metrics.dead_lettered += 1;
                self.core.metrics.dropped_records += 1;
                Ok(())
            }
        }
    }

    /// Flushes the processors and the stores' caches (what a global table cached goes
    /// into its store).
    ///
    /// # Errors
    /// A failing processor or store.
    pub fn flush(&mut self) -> Result<()> {
        self.init()?;
        for_each_node(&mut self.core, &self.topology, &mut self.nodes, |n, ctx| {
            n.flush(ctx)
        })?;
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

    /// Runs `f` on every global store's commit lifecycle, in name order.
    ///
    /// # Errors
    /// What `f` returns, naming the store.
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

    /// Commits the stores (Kafka's `flushState`): flushes, then moves the writes to the
    /// backend (the stores are not logged). Then commit [`consumed_offsets`](Self::consumed_offsets)
    /// as the checkpoint.
    ///
    /// # Errors
    /// A failing processor or store.
    pub fn commit(&mut self) -> Result<()> {
        self.flush()?;
        self.stores(|s| s.send_changelog(&mut NoChangelog).map(|_| ()))?;
        self.stores(|s| {
            s.committed();
            Ok(())
        })?;
        self.stores(|s| s.apply())
    }

    /// `(topic, partition, offset to commit)` for every partition a record was taken from.
    pub fn consumed_offsets(&self) -> Vec<(String, u32, i64)> {
        self.offsets
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect()
    }

    /// Takes the records written since the last call (dead-lettered records).
    pub fn take_outputs(&mut self) -> Vec<SinkRecord> {
        self.core.outputs.take()
    }

    /// The task's counters.
    pub fn metrics(&self) -> TaskMetrics {
        self.core.metrics.clone()
    }

    /// Closes the processors (the caller commits first).
    ///
    /// # Errors
    /// A processor failing to close.
    pub fn close(mut self) -> Result<()> {
        for_each_node(&mut self.core, &self.topology, &mut self.nodes, |n, ctx| {
            n.close(ctx)
        })?;
        Ok(())
    }

    /// A global store, for reads by the test driver.
    pub(crate) fn store_ref(&self, name: &str) -> Option<StoreRef> {
        self.core.stores.get(name).cloned()
    }
}
