//! `TopologyTestDriver`: run a topology deterministically, single-threaded, with no log and
//! no disk (Kafka's `TopologyTestDriver`), on the same task core the runtime runs.
//!
//! Like Kafka's driver it processes each piped record at once, then fires due stream-time
//! punctuations, then commits (caches flush, so caching only merges updates made within one
//! input record), and loops records written to repartition topics straight back in. Emit
//! throttles that depend on the wall clock are off. Wall-clock time is a mock that moves only
//! with [`TopologyTestDriver::advance_wall_clock`].
//!
//! Beyond Kafka's driver, topics may have several partitions ([`DriverConfig::partitions`]):
//! the driver then runs one task per partition, routes piped records by the default
//! partitioner (or to the partition given), and routes repartition records as the sink
//! partitioned them.
//!
//! ```
//! use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
//! let builder = StreamsBuilder::new();
//! builder.stream::<String, String>("in").map_values(|v| v.to_uppercase()).to("out");
//! let driver = TopologyTestDriver::new(builder.build()?)?;
//! driver.input::<String, String>("in").pipe("k".into(), "v".into(), 10)?;
//! let out = driver.output::<String, String>("out").read_records()?;
//! assert_eq!((out[0].key.as_str(), out[0].value.as_str(), out[0].timestamp), ("k", "V", 10));
//! # Ok::<(), freshet_streams::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use freshet_state_store::{
    ChangelogError, ChangelogPartition, ChangelogRecord, ChangelogSink, MemoryBackend, StateStore,
    ThreadCache,
};

use crate::error::{Error, Result};
use crate::partitioner::partition_for_key;
use crate::record::{Headers, InputRecord, Record, SinkRecord};
use crate::serde::{SerdeRef, SerdeRegistry};
use crate::store::{KeyValueStoreHandle, SessionStoreHandle, WindowStoreHandle};
use crate::task::global::GlobalTask;
use crate::task::{ErrorPolicy, Task, TaskConfig, TaskEnv, TaskMetrics};
use crate::topology::Topology;

/// How the driver runs a topology.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// `application.id` (prefixes internal topics and changelogs).
    pub application_id: String,
    /// `statestore.cache.max.bytes` (Kafka's default: 10 MiB).
    pub cache_max_bytes: usize,
    /// The mock wall clock's start, ms.
    pub wall_clock_start: i64,
    /// Partitions of every topic (Kafka's driver: 1).
    pub partitions: u32,
    /// Undecodable input records.
    pub deserialization: ErrorPolicy,
    /// Errors while processing.
    pub processing: ErrorPolicy,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            application_id: "test-driver-app".into(),
            cache_max_bytes: 10 * 1024 * 1024,
            wall_clock_start: 0,
            partitions: 1,
            deserialization: ErrorPolicy::Fail,
            processing: ErrorPolicy::Fail,
        }
    }
}

/// Counts changelog offsets; the driver keeps no log.
#[derive(Debug, Default)]
struct CountingChangelog {
    next: BTreeMap<(String, u32), i64>,
}

impl ChangelogSink for CountingChangelog {
    fn append(
        &mut self,
        changelog: &ChangelogPartition,
        records: Vec<ChangelogRecord>,
    ) -> std::result::Result<i64, ChangelogError> {
        let next = self
            .next
            .entry((changelog.topic.clone(), changelog.partition))
            .or_insert(0);
        *next += records.len() as i64;
        Ok(*next - 1)
    }
}

struct State {
    tasks: Vec<Task>,
    /// The global task (Kafka's driver: `GlobalStateUpdateTask`), when there are global
    /// stores, and the topics it reads.
    global: Option<GlobalTask>,
    global_topics: BTreeSet<String>,
    outputs: BTreeMap<String, VecDeque<SinkRecord>>,
    produced: BTreeSet<String>,
    internal: BTreeSet<String>,
    offsets: BTreeMap<(String, u32), i64>,
    changelog: CountingChangelog,
    wall_clock: i64,
}

/// Runs a topology for tests (see the module docs).
pub struct TopologyTestDriver {
    state: RefCell<State>,
    config: DriverConfig,
    serdes: SerdeRegistry,
}

impl std::fmt::Debug for TopologyTestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyTestDriver")
            .field("config", &self.config)
            .finish()
    }
}

impl TopologyTestDriver {
    /// A driver with [`DriverConfig::default`].
    pub fn new(topology: Topology) -> Result<TopologyTestDriver> {
        TopologyTestDriver::with_config(topology, DriverConfig::default())
    }

    /// A driver with `config`.
    pub fn with_config(topology: Topology, config: DriverConfig) -> Result<TopologyTestDriver> {
        let cache = ThreadCache::new(config.cache_max_bytes);
        let partitions = config.partitions.max(1);
        let subs: Vec<u32> = topology.subtopologies().iter().map(|s| s.id).collect();
        let internal = topology
            .internal_topics()
            .iter()
            .map(|t| t.name.resolve(&config.application_id))
            .collect();
        let env = |global_stores| TaskEnv {
            backend: Arc::new(MemoryBackend::new()),
            cache: cache.clone(),
            config: TaskConfig {
                application_id: config.application_id.clone(),
                windowed_emit_interval_ms: 0,
                outer_join_emit_interval_ms: 0,
                deserialization: config.deserialization.clone(),
                processing: config.processing.clone(),
            },
            partitions_of: Arc::new(move |_| Some(partitions)),
            wall_clock: config.wall_clock_start,
            global_stores,
        };
        // The global stores first: every task reads them.
        let global = if topology.global_stores().is_empty() {
            None
        } else {
            let mut g = GlobalTask::new(&topology, env(Default::default()))?;
            g.init()?;
            Some(g)
        };
        let global_stores = global
            .as_ref()
            .map(GlobalTask::global_stores)
            .unwrap_or_default();
        let global_topics = global
            .as_ref()
            .map(|g| g.topics().into_iter().collect())
            .unwrap_or_default();
        let mut tasks = Vec::new();
        for p in 0..partitions {
            let env = env(global_stores.clone());
            let mut task = Task::new(&topology, format!("0_{p}"), &subs, p, env)?;
            task.init()?;
            tasks.push(task);
        }
        Ok(TopologyTestDriver {
            state: RefCell::new(State {
                tasks,
                global,
                global_topics,
                outputs: BTreeMap::new(),
                produced: BTreeSet::new(),
                internal,
                offsets: BTreeMap::new(),
                changelog: CountingChangelog::default(),
                wall_clock: config.wall_clock_start,
            }),
            config,
            serdes: SerdeRegistry::default(),
        })
    }

    /// An input topic with the default serdes of `K` and `V`.
    pub fn input<K: 'static, V: 'static>(&self, topic: &str) -> TestInputTopic<'_, K, V> {
        self.input_with(topic, self.default_serde::<K>(), self.default_serde::<V>())
    }

    /// An input topic with these serdes.
    pub fn input_with<K: 'static, V: 'static>(
        &self,
        topic: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> TestInputTopic<'_, K, V> {
        TestInputTopic {
            driver: self,
            topic: topic.to_string(),
            keys,
            values,
        }
    }

    /// An output topic with the default serdes of `K` and `V`.
    pub fn output<K: 'static, V: 'static>(&self, topic: &str) -> TestOutputTopic<'_, K, V> {
        self.output_with(topic, self.default_serde::<K>(), self.default_serde::<V>())
    }

    /// An output topic with these serdes.
    pub fn output_with<K: 'static, V: 'static>(
        &self,
        topic: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> TestOutputTopic<'_, K, V> {
        TestOutputTopic {
            driver: self,
            topic: topic.to_string(),
            keys,
            values,
            _t: PhantomData,
        }
    }

    fn default_serde<T: 'static>(&self) -> SerdeRef<T> {
        self.serdes
            .get::<T>()
            .unwrap_or_else(|| Arc::new(crate::dsl::builder::MissingSerde) as SerdeRef<T>)
    }

    /// Pipes one raw record into `topic` (`partition`: `None` routes by the key).
    pub fn pipe_raw(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
        headers: Headers,
    ) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let n = state.tasks.len() as u32;
        let p = partition
            .or_else(|| key.as_deref().map(|k| partition_for_key(k, n)))
            .unwrap_or(0);
        if p >= n {
            return Err(Error::InvalidArgument(format!(
                "partition {p} of {topic}: the driver has {n} partitions"
            )));
        }
        if state.global_topics.contains(topic) {
            return state.update_global(topic, p, key, value, timestamp, headers);
        }
        state.enqueue(topic, p, key, value, timestamp, headers)?;
        state.run(p as usize)
    }

    /// Moves the mock wall clock on and fires due wall-clock punctuations (then commits).
    pub fn advance_wall_clock(&self, by: Duration) -> Result<()> {
        let mut state = self.state.borrow_mut();
        state.wall_clock = state
            .wall_clock
            .saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
        let now = state.wall_clock;
        for p in 0..state.tasks.len() {
            state.tasks[p].punctuate_wall_clock(now)?;
            state.commit(p)?;
            state.route_outputs(p)?;
        }
        Ok(())
    }

    /// Names of the topics records were written to (internal ones included).
    pub fn produced_topic_names(&self) -> BTreeSet<String> {
        self.state.borrow().produced.clone()
    }

    /// The counters of the task on `partition`.
    pub fn metrics(&self, partition: u32) -> Option<TaskMetrics> {
        self.state
            .borrow()
            .tasks
            .get(partition as usize)
            .map(Task::metrics)
    }

    /// The key-value store `name` of partition 0's task.
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<KeyValueStoreHandle<K, V>> {
        KeyValueStoreHandle::new(self.store_ref(name, 0)?, None, None)
    }

    /// The window store `name` of partition 0's task.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<WindowStoreHandle<K, V>> {
        WindowStoreHandle::new(self.store_ref(name, 0)?, None, None)
    }

    /// The session store `name` of partition 0's task.
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<SessionStoreHandle<K, V>> {
        SessionStoreHandle::new(self.store_ref(name, 0)?, None, None)
    }

    /// The key-value store `name` of the task on `partition`.
    pub fn key_value_store_of<K: 'static, V: 'static>(
        &self,
        name: &str,
        partition: u32,
    ) -> Result<KeyValueStoreHandle<K, V>> {
        KeyValueStoreHandle::new(self.store_ref(name, partition)?, None, None)
    }

    fn store_ref(&self, name: &str, partition: u32) -> Result<crate::store::StoreRef> {
        let state = self.state.borrow();
        state
            .tasks
            .get(partition as usize)
            .and_then(|t| t.store_ref(name))
            .or_else(|| state.global.as_ref().and_then(|g| g.store_ref(name)))
            .ok_or_else(|| {
                Error::InvalidArgument(format!("no store {name} on partition {partition}"))
            })
    }
}

impl State {
    fn enqueue(
        &mut self,
        topic: &str,
        p: u32,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
        headers: Headers,
    ) -> Result<()> {
        let offset = self.offsets.entry((topic.to_string(), p)).or_insert(0);
        let record = InputRecord {
            key,
            value,
            timestamp,
            headers,
            offset: *offset,
        };
        *offset += 1;
        let n = self.tasks.len();
        self.tasks
            .get_mut(p as usize)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "partition {p} of {topic}: the driver has {n} partitions"
                ))
            })?
            .add_records(topic, [record])
    }

    /// Processes everything buffered on partition `p`, committing after each record and
    /// looping repartition records back.
    fn run(&mut self, p: usize) -> Result<()> {
        while self.tasks[p].process_one()? {
            self.commit(p)?;
            self.route_outputs(p)?;
        }
        Ok(())
    }

    /// Kafka's commit: flush caches, send changelogs, commit, apply.
    fn commit(&mut self, p: usize) -> Result<()> {
        let task = &mut self.tasks[p];
        task.flush()?;
        let sink = &mut self.changelog;
        task.stores(|s: &mut dyn StateStore| s.send_changelog(sink).map(|_| ()))?;
        task.stores(|s| {
            s.committed();
            Ok(())
        })?;
        task.stores(|s| s.apply())
    }

    /// Processes a record of a global topic at once and commits the global stores (Kafka's
    /// driver: `processGlobalRecord`).
    fn update_global(
        &mut self,
        topic: &str,
        p: u32,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
        headers: Headers,
    ) -> Result<()> {
        let offset = self.offsets.entry((topic.to_string(), p)).or_insert(0);
        let record = InputRecord {
            key,
            value,
            timestamp,
            headers,
            offset: *offset,
        };
        *offset += 1;
        let Some(global) = self.global.as_mut() else {
            return Err(Error::UnknownTopic(topic.to_string()));
        };
        global.add_records(topic, p, [record])?;
        global.process()?;
        global.commit()?;
        for r in global.take_outputs() {
            self.produced.insert(r.topic.clone());
            self.outputs.entry(r.topic.clone()).or_default().push_back(r);
        }
        Ok(())
    }

    fn route_outputs(&mut self, p: usize) -> Result<()> {
        let outputs = self.tasks[p].take_outputs();
        let mut to_run = BTreeSet::new();
        for r in outputs {
            self.produced.insert(r.topic.clone());
            if self.global_topics.contains(&r.topic) {
                // Written to a global topic: the global store reads it back, as in Kafka.
                let target = r.partition.unwrap_or(0);
                let (key, value, headers) = (r.key.clone(), r.value.clone(), r.headers.clone());
                self.update_global(&r.topic, target, key, value, r.timestamp, headers)?;
            }
            // As Kafka's driver: every record can be read as output, and records written to
            // an internal topic or to a topic the topology reads go back in at once.
            let read_back = self.internal.contains(&r.topic)
                || self
                    .tasks
                    .first()
                    .is_some_and(|t| t.input_topics().contains(&r.topic));
            self.outputs
                .entry(r.topic.clone())
                .or_default()
                .push_back(r.clone());
            if read_back {
                let target = r.partition.unwrap_or(0);
                self.enqueue(&r.topic, target, r.key, r.value, r.timestamp, r.headers)?;
                to_run.insert(target as usize);
            }
        }
        // As Kafka's driver: every output of a record is captured before any record read
        // back is processed.
        for target in to_run {
            self.run(target)?;
        }
        Ok(())
    }
}

/// An input topic of the driver (Kafka's `TestInputTopic`).
pub struct TestInputTopic<'d, K, V> {
    driver: &'d TopologyTestDriver,
    topic: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<K, V> std::fmt::Debug for TestInputTopic<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestInputTopic({})", self.topic)
    }
}

impl<K: 'static, V: 'static> TestInputTopic<'_, K, V> {
    /// Pipes `(key, value)` at `timestamp` and processes it.
    pub fn pipe(&self, key: K, value: V, timestamp: i64) -> Result<()> {
        self.pipe_record(Record::new(key, value, timestamp), None)
    }

    /// Pipes a record with headers, to `partition` (`None`: by key).
    pub fn pipe_record(&self, record: Record<K, V>, partition: Option<u32>) -> Result<()> {
        let err = |reason| Error::Serde {
            context: format!("test input {}", self.topic),
            reason,
        };
        let key = self.keys.serialize_nullable(&record.key).map_err(err)?;
        let value = self.values.serialize_nullable(&record.value).map_err(err)?;
        self.driver.pipe_raw(
            &self.topic,
            partition,
            key.map(Bytes::from),
            value.map(Bytes::from),
            record.timestamp,
            record.headers,
        )
    }

    /// Pipes several `(key, value, timestamp)` in order.
    pub fn pipe_all(&self, records: impl IntoIterator<Item = (K, V, i64)>) -> Result<()> {
        for (k, v, ts) in records {
            self.pipe(k, v, ts)?;
        }
        Ok(())
    }
}

/// An output topic of the driver (Kafka's `TestOutputTopic`): reading consumes.
pub struct TestOutputTopic<'d, K, V> {
    driver: &'d TopologyTestDriver,
    topic: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for TestOutputTopic<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestOutputTopic({})", self.topic)
    }
}

impl<K: 'static, V: 'static> TestOutputTopic<'_, K, V> {
    /// Reads (and removes) every record written so far, decoded.
    pub fn read_records(&self) -> Result<Vec<Record<K, V>>> {
        let raw: Vec<SinkRecord> = self
            .driver
            .state
            .borrow_mut()
            .outputs
            .get_mut(&self.topic)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default();
        raw.into_iter()
            .map(|r| {
                let err = |reason| Error::Serde {
                    context: format!("test output {}", self.topic),
                    reason,
                };
                Ok(Record {
                    key: self
                        .keys
                        .deserialize_nullable(r.key.as_deref())
                        .map_err(err)?,
                    value: self
                        .values
                        .deserialize_nullable(r.value.as_deref())
                        .map_err(err)?,
                    timestamp: r.timestamp,
                    headers: r.headers,
                })
            })
            .collect()
    }

    /// Reads every `(key, value)`.
    pub fn read_key_values(&self) -> Result<Vec<(K, V)>> {
        Ok(self
            .read_records()?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }

    /// Reads every value.
    pub fn read_values(&self) -> Result<Vec<V>> {
        Ok(self.read_records()?.into_iter().map(|r| r.value).collect())
    }

    /// Reads every raw record (with the partition the sink chose).
    pub fn read_raw(&self) -> Vec<SinkRecord> {
        self.driver
            .state
            .borrow_mut()
            .outputs
            .get_mut(&self.topic)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.driver
            .state
            .borrow()
            .outputs
            .get(&self.topic)
            .is_none_or(VecDeque::is_empty)
    }
}
