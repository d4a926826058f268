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
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i64>("in").filter(|_, v| *v >= 0).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe_all([("a".into(), -1, 0), ("b".into(), 2, 1)])?;
    /// assert_eq!(driver.output::<String, i64>("out").read_key_values()?, vec![("b".into(), 2)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn new(topology: Topology) -> Result<TopologyTestDriver> {
        TopologyTestDriver::with_config(topology, DriverConfig::default())
    }

    /// A driver with `config`.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::{DriverConfig, TopologyTestDriver}};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by(|_, v| v.clone()).count();
    /// let config = DriverConfig { application_id: "word-count".into(), partitions: 2, ..Default::default() };
    /// let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "hello".into(), 0)?;
    /// // Internal topics carry the application id.
    /// let topics = driver.produced_topic_names();
    /// assert!(topics.iter().all(|t| t.starts_with("word-count-")), "{topics:?}");
    /// // One task per partition.
    /// assert!(driver.metrics(1).is_some() && driver.metrics(2).is_none());
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<Option<String>, String>("in").filter(|k, _| k.is_some()).to("keyed");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// // `Option` keys: `None` pipes a record without a key.
    /// let input = driver.input::<Option<String>, String>("in");
    /// input.pipe(None, "no key".into(), 0)?;
    /// input.pipe(Some("k".into()), "keyed".into(), 1)?;
    /// assert_eq!(driver.output::<Option<String>, String>("keyed").read_values()?, vec!["keyed"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn input<K: 'static, V: 'static>(&self, topic: &str) -> TestInputTopic<'_, K, V> {
        self.input_with(topic, self.default_serde::<K>(), self.default_serde::<V>())
    }

    /// An input topic with these serdes.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use freshet_streams::{Consumed, Json, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream_with::<String, Vec<i64>>(&["batches"], Consumed::with(Utf8, Json::default()))
    ///     .map_values(|batch| batch.iter().sum::<i64>())
    ///     .to("sums");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let batches = driver.input_with::<String, Vec<i64>>("batches", Arc::new(Utf8), Arc::new(Json::default()));
    /// batches.pipe("k".into(), vec![1, 2, 3], 0)?;
    /// assert_eq!(driver.output::<String, i64>("sums").read_values()?, vec![6]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").map_values(|v| v.len() as u32).to("lengths");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "four".into(), 0)?;
    /// let lengths = driver.output::<String, u32>("lengths");
    /// assert_eq!(lengths.read_values()?, vec![4]);
    /// assert!(lengths.is_empty()); // reading consumes
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn output<K: 'static, V: 'static>(&self, topic: &str) -> TestOutputTopic<'_, K, V> {
        self.output_with(topic, self.default_serde::<K>(), self.default_serde::<V>())
    }

    /// An output topic with these serdes.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use freshet_streams::{Json, Produced, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// #[derive(Debug, PartialEq, Clone, serde::Serialize, serde::Deserialize)]
    /// struct Word { text: String, len: usize }
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .map_values(|v| Word { text: v.clone(), len: v.len() })
    ///     .to_with("words", Produced::with(Utf8, Json::default()));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "hi".into(), 0)?;
    /// let words = driver.output_with::<String, Word>("words", Arc::new(Utf8), Arc::new(Json::default()));
    /// assert_eq!(words.read_values()?, vec![Word { text: "hi".into(), len: 2 }]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use freshet_streams::{Error, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i32>("in").to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let header = vec![("origin".to_string(), Bytes::from_static(b"test"))];
    /// driver.pipe_raw("in", None, Some(Bytes::from_static(b"k")), Some(Bytes::from_static(&[0, 0, 0, 7])), 5, header)?;
    /// let out = driver.output::<String, i32>("out").read_records()?;
    /// assert_eq!((out[0].value, out[0].header("origin").map(|h| &h[..])), (7, Some(&b"test"[..])));
    /// // Bytes the source cannot decode fail (the default policy).
    /// let bad = driver.pipe_raw("in", None, Some(Bytes::from_static(b"k")), Some(Bytes::from_static(b"x")), 6, vec![]);
    /// assert!(matches!(bad, Err(Error::Deserialization { .. })));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Processor, ProcessorContext, PunctuationType, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Emits a heartbeat every second of wall-clock time.
    /// struct Heartbeat;
    /// impl Processor<String, String, String, i64> for Heartbeat {
    ///     fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>) -> Result<()> {
    ///         ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime, |ctx, now| {
    ///             ctx.forward(Record::new("beat".into(), now, now))
    ///         })?;
    ///         Ok(())
    ///     }
    ///     fn process(&mut self, _ctx: &mut ProcessorContext<'_, '_, String, i64>, _r: Record<String, String>) -> Result<()> {
    ///         Ok(())
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").process(|| Heartbeat, &[]).to("beats");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.advance_wall_clock(Duration::from_millis(999))?;
    /// assert!(driver.output::<String, i64>("beats").is_empty());
    /// driver.advance_wall_clock(Duration::from_millis(1))?;
    /// driver.advance_wall_clock(Duration::from_secs(5))?; // after a gap: once
    /// assert_eq!(driver.output::<String, i64>("beats").read_values()?, vec![1_000, 6_000]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{Grouped, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let views = builder.stream::<String, String>("views");
    /// views.filter(|_, page| page.starts_with("/admin")).to("admin-views");
    /// views.group_by_with(|_, page| page.clone(), Grouped::named("by-page")).count().to_stream().to("page-counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("views").pipe("ann".into(), "/home".into(), 0)?;
    /// let topics: Vec<String> = driver.produced_topic_names().into_iter().collect();
    /// // Nothing went to `admin-views`.
    /// assert_eq!(topics, vec!["page-counts", "test-driver-app-by-page-repartition"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn produced_topic_names(&self) -> BTreeSet<String> {
        self.state.borrow().produced.clone()
    }

    /// The counters of the task on `partition`.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<Option<String>, String>("in").group_by_key().count().to_stream().to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<Option<String>, String>("in");
    /// input.pipe(Some("a".into()), "x".into(), 0)?;
    /// input.pipe(None, "x".into(), 1)?; // an aggregation drops records without a key
    /// let m = driver.metrics(0).expect("partition 0 has a task");
    /// assert_eq!((m.records_in, m.records_out, m.dropped_records), (2, 1, 1));
    /// assert!(driver.metrics(1).is_none());
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn metrics(&self, partition: u32) -> Option<TaskMetrics> {
        self.state
            .borrow()
            .tasks
            .get(partition as usize)
            .map(Task::metrics)
    }

    /// The key-value store `name` of partition 0's task.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i64>("in").group_by_key().reduce_with(|a, b| a + b, Materialized::named("sums"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe_all([("a".into(), 1, 0), ("a".into(), 2, 1), ("b".into(), 5, 2)])?;
    /// let sums = driver.key_value_store::<String, i64>("sums")?;
    /// assert_eq!(sums.all()?, vec![("a".into(), 3, 1), ("b".into(), 5, 2)]);
    /// assert!(driver.key_value_store::<String, i64>("no-such-store").is_err());
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<KeyValueStoreHandle<K, V>> {
        KeyValueStoreHandle::new(self.store_ref(name, 0)?, None, None)
    }

    /// The window store `name` of partition 0's task.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     // Kept for a minute of stream time (by default only for size + grace).
    ///     .count_with(Materialized::named("clicks-per-10ms").with_retention(Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("ann".into(), "/a".into(), 1), ("ann".into(), "/b".into(), 4), ("ann".into(), "/c".into(), 15)])?;
    /// let store = driver.window_store::<String, i64>("clicks-per-10ms")?;
    /// // (window start, count, timestamp of the latest record)
    /// assert_eq!(store.fetch(&"ann".into(), 0, 10)?, vec![(0, 2, 4), (10, 1, 15)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<WindowStoreHandle<K, V>> {
        WindowStoreHandle::new(self.store_ref(name, 0)?, None, None)
    }

    /// The session store `name` of partition 0's task.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, SessionWindows, StreamsBuilder, Window, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     // Kept for a minute of stream time (by default only for gap + grace).
    ///     .count_with(Materialized::named("click-sessions").with_retention(Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("ann".into(), "/a".into(), 0), ("ann".into(), "/b".into(), 6), ("ann".into(), "/c".into(), 30)])?;
    /// let sessions = driver.session_store::<String, i64>("click-sessions")?;
    /// let found = sessions.find_sessions(&"ann".into(), 0, 100)?;
    /// assert_eq!(found, vec![(Window::new(0, 6), 2, 6), (Window::new(30, 30), 1, 30)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<SessionStoreHandle<K, V>> {
        SessionStoreHandle::new(self.store_ref(name, 0)?, None, None)
    }

    /// The key-value store `name` of the task on `partition`.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, partition_for_key, testing::{DriverConfig, TopologyTestDriver}};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count_with(Materialized::named("counts"));
    /// let config = DriverConfig { partitions: 4, ..Default::default() };
    /// let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    /// driver.input::<String, String>("in").pipe("ann".into(), "x".into(), 0)?;
    /// // The record went to the partition of its key, and so did its count.
    /// let p = partition_for_key(b"ann", 4);
    /// assert_eq!(driver.key_value_store_of::<String, i64>("counts", p)?.get(&"ann".into())?, Some((1, 0)));
    /// let other = (p + 1) % 4;
    /// assert_eq!(driver.key_value_store_of::<String, i64>("counts", other)?.get(&"ann".into())?, None);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
            self.outputs
                .entry(r.topic.clone())
                .or_default()
                .push_back(r);
        }
        Ok(())
    }

    fn route_outputs(&mut self, p: usize) -> Result<()> {
        let outputs = self.tasks[p].take_outputs();
        let mut to_run = BTreeSet::new();
        let n = self.tasks.len() as u32;
        for mut r in outputs {
            // A sink that leaves the partition to the producer (`None`): the default
            // partitioner on the key bytes, as the runtime's producer does (a null key: 0).
            if r.partition.is_none() {
                r.partition = r.key.as_deref().map(|k| partition_for_key(k, n));
            }
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
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count().to_stream().to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe("a".into(), "x".into(), 10)?;
    /// // Processed at once: the output is there before the next pipe.
    /// assert_eq!(driver.output::<String, i64>("counts").read_values()?, vec![1]);
    /// input.pipe("a".into(), "y".into(), 11)?;
    /// assert_eq!(driver.output::<String, i64>("counts").read_values()?, vec![2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn pipe(&self, key: K, value: V, timestamp: i64) -> Result<()> {
        self.pipe_record(Record::new(key, value, timestamp), None)
    }

    /// Pipes a record with headers, to `partition` (`None`: by key).
    ///
    /// ```
    /// # use freshet_streams::{Record, StreamsBuilder, testing::{DriverConfig, TopologyTestDriver}};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").map_values(|v| v.to_uppercase()).to("out");
    /// let driver = TopologyTestDriver::with_config(builder.build()?, DriverConfig { partitions: 2, ..Default::default() })?;
    /// let record = Record::new("k".to_string(), "v".to_string(), 7).with_header("trace", "abc");
    /// driver.input::<String, String>("in").pipe_record(record, Some(1))?;
    /// let out = driver.output::<String, String>("out").read_records()?;
    /// // Headers travel with the record.
    /// assert_eq!((out[0].value.as_str(), out[0].header("trace").map(|h| &h[..])), ("V", Some(&b"abc"[..])));
    /// assert_eq!(driver.metrics(1).map(|m| m.records_in), Some(1));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i64>("in").group_by_key().reduce(|a, b| a + b).to_stream().to("sums");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe_all([("a".into(), 1, 0), ("b".into(), 10, 1), ("a".into(), 2, 2)])?;
    /// let sums = driver.output::<String, i64>("sums").read_key_values()?;
    /// assert_eq!(sums, vec![("a".into(), 1), ("b".into(), 10), ("a".into(), 3)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{Record, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").flat_map_values(|v| v.split(',').map(str::to_string).collect::<Vec<_>>()).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe_record(Record::new("k".into(), "a,b".into(), 9).with_header("h", "1"), None)?;
    /// let out = driver.output::<String, String>("out");
    /// let records = out.read_records()?;
    /// // Each output keeps the input's timestamp and headers.
    /// assert_eq!(records, vec![
    ///     Record::new("k".to_string(), "a".to_string(), 9).with_header("h", "1"),
    ///     Record::new("k".to_string(), "b".to_string(), 9).with_header("h", "1"),
    /// ]);
    /// assert!(out.read_records()?.is_empty());
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").select_key(|_, v| v.to_uppercase()).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_key_values()?, vec![("V".into(), "v".into())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn read_key_values(&self) -> Result<Vec<(K, V)>> {
        Ok(self
            .read_records()?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }

    /// Reads every value.
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe_all([("a".into(), "1".into(), 0), ("b".into(), "2".into(), 1)])?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["1", "2"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn read_values(&self) -> Result<Vec<V>> {
        Ok(self.read_records()?.into_iter().map(|r| r.value).collect())
    }

    /// Reads every raw record (with the partition the sink chose).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, partition_for_key, testing::{DriverConfig, TopologyTestDriver}};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i32>("in").to("out");
    /// let driver = TopologyTestDriver::with_config(builder.build()?, DriverConfig { partitions: 3, ..Default::default() })?;
    /// driver.input::<String, i32>("in").pipe("ann".into(), 1, 0)?;
    /// let raw = driver.output::<String, i32>("out").read_raw();
    /// assert_eq!(raw[0].key.as_deref(), Some(&b"ann"[..]));
    /// assert_eq!(raw[0].value.as_deref(), Some(&[0, 0, 0, 1][..]));
    /// // The default partitioner: murmur2 of the key bytes.
    /// assert_eq!(raw[0].partition, Some(partition_for_key(b"ann", 3)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, i64>("in").filter(|_, v| *v > 10).to("big");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let big = driver.output::<String, i64>("big");
    /// driver.input::<String, i64>("in").pipe("a".into(), 3, 0)?;
    /// assert!(big.is_empty());
    /// driver.input::<String, i64>("in").pipe("a".into(), 30, 1)?;
    /// assert!(!big.is_empty());
    /// big.read_values()?;
    /// assert!(big.is_empty());
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.driver
            .state
            .borrow()
            .outputs
            .get(&self.topic)
            .is_none_or(VecDeque::is_empty)
    }
}
