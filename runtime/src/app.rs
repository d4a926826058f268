//! `StreamsApp`: a topology running over a log (Kafka's `KafkaStreams`).

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use freshet_log::{Broker, Log};
use freshet_state_store::{Backend, ReadOnlySessionView, ReadOnlyWindowView, SledBackend};
use freshet_streams::{SerdeRef, SerdeRegistry, StoreBuilder, StoreKind, TaskId, Topology};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch, Notify};

use crate::assignor::TaskAssignor;
use crate::backend::{LockedBackend, TaskBackend};
use crate::config::StreamsConfig;
use crate::error::{Error, Result};
use crate::global::spawn_global;
use crate::metrics::{AppMetrics, Registry};
use crate::query::{
    serves_queries, KeyValueStoreView, LocalTasks, SessionStoreView, WindowStoreView,
};
use crate::state::{AppState, StateListener, StateMachine};
use crate::statedir::{wipe_state, StateDirLock};
use crate::thread::{local_tasks, member_config, spawn, Shared, ThreadStatus};
use crate::topics::{prepare, Plan};

/// The small tokio runtime the stream threads call the broker on. It is shut down in the
/// background, which is allowed from any context (dropping a runtime inside another
/// runtime's async context would panic).
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    fn new(app: &str) -> Result<IoRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("{app}-io"))
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        Ok(IoRuntime(Some(rt)))
    }

    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|r| r.handle().clone())
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A store's task count, the backend of each local task holding it by partition, and which
/// partitions' tasks are local now.
type LocalBackends = (u32, BTreeMap<u32, Arc<dyn Backend>>, LocalTasks);

/// What a started app holds.
struct Running<B: Broker> {
    shared: Arc<Shared<B>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    global: Option<std::thread::JoinHandle<()>>,
    sled: SledBackend,
    /// Declared after `shared` so it is dropped after it.
    _io: IoRuntime,
}

/// A topology running over a log: Kafka's `KafkaStreams` (see the crate docs).
///
/// ```no_run
/// # async fn run() -> freshet_runtime::Result<()> {
/// use std::sync::Arc;
/// use freshet_log::{Log, TopicConfig};
/// use freshet_runtime::{StreamsApp, StreamsConfig};
/// use freshet_streams::StreamsBuilder;
///
/// let log = Arc::new(Log::open("./freshet-data")?);
/// log.create_topic("in", TopicConfig::partitions(2))?;
/// let builder = StreamsBuilder::new();
/// builder.stream::<String, String>("in").map_values(|v| v.to_uppercase()).to("out");
/// let mut app = StreamsApp::start(StreamsConfig::new("shout"), builder.build()?, log).await?;
/// app.run_until_caught_up().await?; // or run until ctrl-c, then app.close().await
/// # Ok(()) }
/// ```
pub struct StreamsApp<B: Broker = Log> {
    config: StreamsConfig,
    topology: Topology,
    broker: Arc<B>,
    state: Arc<StateMachine>,
    metrics: Arc<Registry>,
    state_dir: PathBuf,
    /// Holds the state directory from `new` until the app is closed (or dropped).
    /// (Shared with the database handle, so views outliving the app keep it too.)
    dir_lock: Option<Arc<StateDirLock>>,
    /// The instance's id (kept in its state directory).
    instance_id: String,
    running: Option<Running<B>>,
    /// Why the app stopped, when a thread failed.
    failure: Option<String>,
}

impl<B: Broker> std::fmt::Debug for StreamsApp<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsApp")
            .field("application_id", &self.config.application_id())
            .field("state", &self.state.get())
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl<B: Broker> StreamsApp<B> {
    /// Makes an app in state `CREATED` (Kafka's `new KafkaStreams`): set a state listener,
    /// then [`launch`](Self::launch) it.
    ///
    /// The app takes its state directory now, until it is closed (see
    /// [`state_dir`](Self::state_dir)): `<data dir>/state/<application.id>`, or — when
    /// another live instance of the app holds that — the first free
    /// `<application.id>.instance-<n>` beside it.
    ///
    /// # Errors
    /// A bad config; no state directory (set `data.dir` or `state.dir` unless `log` is the
    /// embedded [`Log`], whose data directory is the default), or one that cannot be made.
    pub fn new(config: StreamsConfig, topology: Topology, log: Arc<B>) -> Result<Self> {
        config.validate()?;
        let log_dir = (log.as_ref() as &dyn Any)
            .downcast_ref::<Log>()
            .map(|l| l.dir().to_path_buf());
        let base = config.state_dir(log_dir.as_deref())?;
        let dir_lock = StateDirLock::acquire(&base)?;
        Ok(StreamsApp {
            config,
            topology,
            broker: log,
            state: Arc::new(StateMachine::new()),
            metrics: Arc::new(Registry::default()),
            state_dir: dir_lock.dir().to_path_buf(),
            instance_id: dir_lock.instance_id().to_string(),
            dir_lock: Some(Arc::new(dir_lock)),
            running: None,
            failure: None,
        })
    }

    /// Makes and launches an app: [`new`](Self::new) then [`launch`](Self::launch).
    ///
    /// # Errors
    /// As both.
    pub async fn start(config: StreamsConfig, topology: Topology, log: Arc<B>) -> Result<Self> {
        let mut app = StreamsApp::new(config, topology, log)?;
        app.launch().await?;
        Ok(app)
    }

    /// Sets the listener told of every state change (Kafka's `setStateListener`); set it
    /// before launching to see every change.
    pub fn set_state_listener(
        &self,
        listener: impl Fn(AppState, AppState) + Send + Sync + 'static,
    ) {
        let l: StateListener = Arc::new(listener);
        self.state.set_listener(l);
    }

    /// Starts the app: creates internal topics (and missing sink topics), checks
    /// co-partitioning, opens the state directory, bootstraps the global stores, joins the
    /// app's consumer group with one member per stream thread, and starts the threads, which
    /// restore every store and the committed offsets and stream times of the tasks the group
    /// assigns them; returns once every thread has its tasks restored and the app is
    /// `RUNNING`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless `CREATED`; missing source topics, partition counts that
    /// disagree, topics that are not co-partitioned; a state directory that cannot be
    /// opened; a task that cannot be restored (the app is then in `ERROR`).
    pub async fn launch(&mut self) -> Result<()> {
        let state = self.state.get();
        if state != AppState::Created {
            return Err(Error::InvalidState {
                what: "launch",
                state,
            });
        }
        self.state.transition(AppState::Rebalancing);
        match self.launch_inner().await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.failure = Some(e.to_string());
                if let Some(running) = self.running.take() {
                    running.shared.stop();
                    join_all(running.threads);
                    join_all(running.global);
                }
                self.dir_lock = None;
                self.state.transition(AppState::Error);
                Err(e)
            }
        }
    }

    async fn launch_inner(&mut self) -> Result<()> {
        let plan: Plan = prepare(&self.config, &self.topology, &*self.broker).await?;
        let sled = SledBackend::open(&self.state_dir.join("sled"), self.config.sled_cache_bytes())?;
        let io = IoRuntime::new(self.config.application_id())?;
        let handle = io.handle().ok_or(Error::ThreadFailed {
            thread: 0,
            reason: "the i/o runtime is gone".into(),
        })?;
        let threads = self.config.num_stream_threads();
        let app = self.config.application_id().to_string();
        let subscription: Vec<String> = plan.topic_subtopology.keys().cloned().collect();
        let assignor = Arc::new(TaskAssignor::new(
            self.topology
                .subtopologies()
                .iter()
                .map(|s| {
                    (
                        s.id,
                        s.source_topics.iter().map(|t| t.resolve(&app)).collect(),
                    )
                })
                .collect(),
        ));
        tracing::info!(
            app = %app,
            tasks = plan.tasks.len(),
            threads,
            guarantee = %self.config.processing_guarantee(),
            state_dir = %self.state_dir.display(),
            instance = %self.instance_id,
            "starting streams app"
        );
        let lock = self.dir_lock.clone().ok_or_else(|| Error::StateDir {
            path: self.state_dir.clone(),
            reason: "the app no longer holds its state directory".into(),
        })?;
        let backend = Arc::new(LockedBackend {
            inner: Arc::new(sled.clone()),
            _lock: lock,
        }) as Arc<dyn Backend>;
        let local = local_tasks(&*backend);
        // Reads and appends overlap processing only where a core is left for them: with a
        // stream thread per core they would only add hand-overs (see `thread::fetch`).
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let shared = Arc::new(Shared {
            broker: self.broker.clone(),
            handle,
            pipelined: cores > threads,
            config: self.config.clone(),
            topology: self.topology.clone(),
            partitions: Arc::new(plan.partitions.clone()),
            topic_subtopology: plan.topic_subtopology.clone(),
            plan,
            backend,
            instance_id: self.instance_id.clone(),
            locks: Default::default(),
            assignor: assignor.clone(),
            subscription,
            global_stores: OnceLock::new(),
            global_error: Mutex::new(None),
            state: self.state.clone(),
            metrics: self.metrics.clone(),
            shutdown: AtomicBool::new(false),
            wake: Notify::new(),
            progress: Notify::new(),
            bounded: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            threads: Mutex::new(vec![ThreadStatus::default(); threads]),
        });
        self.running = Some(Running {
            shared: shared.clone(),
            threads: Vec::new(),
            global: None,
            sled,
            _io: io,
        });
        // Global stores first: every task reads them from its first record.
        if !shared.plan.global_topics.is_empty() {
            let (tx, rx) = oneshot::channel();
            let h = spawn_global(shared.clone(), tx).map_err(Error::Runtime)?;
            if let Some(r) = self.running.as_mut() {
                r.global = Some(h);
            }
            rx.await.unwrap_or_else(|_| {
                Err(Error::ThreadFailed {
                    thread: 0,
                    reason: "the global stream thread stopped while bootstrapping".into(),
                })
            })?;
        }
        // Every thread joins before any polls, so the first assignment spreads the tasks
        // over all of them.
        let topics: Vec<&str> = shared.subscription.iter().map(String::as_str).collect();
        let mut members = Vec::with_capacity(threads);
        for i in 0..threads {
            let config = member_config(
                &self.config,
                assignor.clone(),
                &self.instance_id,
                i,
                local.clone(),
            );
            members.push(self.broker.join_group(&app, &topics, config).await?);
        }
        for (i, member) in members.into_iter().enumerate() {
            let h = spawn(i, shared.clone(), member).map_err(Error::Runtime)?;
            if let Some(r) = self.running.as_mut() {
                r.threads.push(h);
            }
        }
        // Done once every thread has had its tasks restored (the app was RUNNING, even if a
        // thread fails right after), or failed before that.
        wait_for(&shared, || {
            let t = shared.threads.lock();
            if t.iter().all(|s| s.started) {
                Some(Ok(()))
            } else if t.iter().any(|s| s.error.is_some())
                || t.iter().all(|s| s.finished)
                || shared.global_error.lock().is_some()
            {
                drop(t);
                Some(Err(thread_error(&shared)))
            } else {
                None
            }
        })
        .await
    }

    /// The app's state.
    pub fn state(&self) -> AppState {
        self.state.get()
    }

    /// A receiver of state changes, to await one.
    pub fn state_changes(&self) -> watch::Receiver<AppState> {
        self.state.subscribe()
    }

    /// The settings.
    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    /// The instance's state directory: `<data dir>/state/<application.id>` by default
    /// (`<state.dir>/<application.id>` when `state.dir` is set); a second live instance of
    /// the app gets `<application.id>.instance-2` beside it, and so on. The instance holds
    /// it (a lock file) from [`new`](Self::new) until it is closed or dropped.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Waits until every input partition has been processed up to the end offset it had
    /// when the app started, every repartition topic is drained, no task has anything
    /// buffered and everything is committed. The app keeps running (and goes on past those
    /// offsets once no one waits). With several instances of the app, it covers the tasks of
    /// this instance.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when not running; [`Error::ThreadFailed`] when a thread fails
    /// meanwhile.
    pub async fn wait_until_caught_up(&self) -> Result<()> {
        self.wait_caught_up(false).await
    }

    async fn wait_caught_up(&self, stay_bounded: bool) -> Result<()> {
        let Some(running) = &self.running else {
            return Err(Error::InvalidState {
                what: "wait_until_caught_up",
                state: self.state.get(),
            });
        };
        let shared = running.shared.clone();
        let bounded = Bounded(shared.clone(), stay_bounded);
        shared.bounded.fetch_add(1, Ordering::SeqCst);
        // A new epoch: every thread reports again, after a look at the group, so a rebalance
        // that began before this call (an instance that stopped) is seen.
        shared.epoch.fetch_add(1, Ordering::SeqCst);
        shared.wake.notify_waiters();
        let r = wait_for(&shared, || {
            let t = shared.threads.lock();
            if t.iter().any(|s| s.error.is_some())
                || t.iter().all(|s| s.finished)
                || shared.global_error.lock().is_some()
            {
                drop(t);
                return Some(Err(thread_error(&shared)));
            }
            drop(t);
            shared.caught_up().then_some(Ok(()))
        })
        .await;
        drop(bounded);
        r
    }

    /// The bounded mode: [`wait_until_caught_up`](Self::wait_until_caught_up), then
    /// [`close`](Self::close) (nothing past the offsets of the start is processed).
    ///
    /// # Errors
    /// As both.
    pub async fn run_until_caught_up(&mut self) -> Result<()> {
        let waited = self.wait_caught_up(true).await;
        let closed = self.close().await;
        waited.and(closed)
    }

    /// Closes gracefully: each thread flushes, commits and closes its tasks and leaves the
    /// group (the other instances take them over); then the state is `NOT_RUNNING` (or
    /// stays `ERROR`), and the state directory is free for another instance. Closing a
    /// closed app does nothing.
    ///
    /// # Errors
    /// [`Error::ThreadFailed`] when a thread failed (now or before): the app is in `ERROR`.
    pub async fn close(&mut self) -> Result<()> {
        let Some(running) = self.running.take() else {
            self.dir_lock = None;
            if self.state.get() == AppState::Created {
                self.state.transition(AppState::PendingShutdown);
                self.state.transition(AppState::NotRunning);
            }
            return match &self.failure {
                Some(reason) => Err(Error::ThreadFailed {
                    thread: 0,
                    reason: reason.clone(),
                }),
                None => Ok(()),
            };
        };
        self.state.transition(AppState::PendingShutdown);
        let shared = running.shared.clone();
        shared.stop();
        wait_for(&shared, || {
            shared
                .threads
                .lock()
                .iter()
                .all(|t| t.finished)
                .then_some(Ok(()))
        })
        .await?;
        let Running {
            shared,
            threads,
            global,
            sled,
            _io,
        } = running;
        join_all(threads);
        join_all(global);
        let failed = shared.threads.lock().iter().any(|t| t.error.is_some())
            || shared.global_error.lock().is_some();
        let result = if failed {
            let e = thread_error(&shared);
            self.failure = Some(e.to_string());
            self.state.transition(AppState::Error);
            Err(e)
        } else {
            self.state.transition(AppState::NotRunning);
            Ok(())
        };
        if let Err(e) = sled.flush() {
            tracing::warn!(error = %e, "flushing the state store database failed");
        }
        drop(shared);
        drop(sled);
        drop(_io);
        // The state directory is free for the next instance.
        self.dir_lock = None;
        result
    }

    /// Deletes the app's local state (Kafka's `cleanUp`): everything in the instance's state
    /// directory but its lock and instance id. The next start restores every store from its
    /// changelog.
    ///
    /// # Errors
    /// [`Error::InvalidState`] while the app is running; the directory cannot be removed.
    pub fn cleanup(&self) -> Result<()> {
        let state = self.state.get();
        if self.running.is_some()
            || state.is_running_or_rebalancing()
            || state == AppState::PendingShutdown
        {
            return Err(Error::InvalidState {
                what: "cleanup",
                state,
            });
        }
        // Closed, the app no longer holds its directory: take it back for the wipe.
        let _held = if self.dir_lock.is_some() {
            None
        } else {
            let taken = StateDirLock::take(&self.state_dir)?;
            Some(taken.ok_or_else(|| Error::StateDir {
                path: self.state_dir.clone(),
                reason: "another instance, or a store view of this one, still holds it".into(),
            })?)
        };
        wipe_state(&self.state_dir).map_err(|e| Error::StateDir {
            path: self.state_dir.clone(),
            reason: e.to_string(),
        })
    }

    /// A snapshot of the app's metrics.
    pub fn metrics(&self) -> AppMetrics {
        self.metrics.snapshot(self.state.get())
    }

    fn store_builder(&self, name: &str, kind: &'static str) -> Result<&StoreBuilder> {
        self.topology
            .stores()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::UnknownStore {
                store: name.to_string(),
                kind,
                hint: format!(
                    " (stores: {})",
                    self.topology
                        .stores()
                        .map(|s| s.name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Per partition, the backend of the local task holding store `name`, the task count,
    /// and which partitions are local now (tasks move when the group rebalances). A global
    /// store has one "partition", the instance's copy.
    fn local_backends(&self, name: &str) -> Result<LocalBackends> {
        let state = self.state.get();
        let running = match &self.running {
            Some(r) if serves_queries(state) => r,
            _ => {
                return Err(Error::InvalidState {
                    what: "an interactive query",
                    state,
                })
            }
        };
        let shared = &running.shared;
        if self
            .topology
            .global_stores()
            .iter()
            .any(|g| g.store == name)
        {
            let b: Arc<dyn Backend> = Arc::new(TaskBackend::new(shared.backend.clone(), "global"));
            let local: LocalTasks = Arc::new(|_| true);
            return Ok((1, BTreeMap::from([(0, b)]), local));
        }
        let (sub, partitions) = shared.plan.stores.get(name).copied().unwrap_or((0, 0));
        let mut out = BTreeMap::new();
        for t in shared.locks.active() {
            if t.subtopology != sub {
                continue;
            }
            let b: Arc<dyn Backend> =
                Arc::new(TaskBackend::new(shared.backend.clone(), &t.to_string()));
            out.insert(t.partition, b);
        }
        let owner = shared.clone();
        let local: LocalTasks = Arc::new(move |partition| {
            owner.locks.is_active(TaskId {
                subtopology: sub,
                partition,
            })
        });
        Ok((partitions.max(1), out, local))
    }

    /// A read-only view of key-value store `name` over committed state, with the serdes
    /// the store was declared with (else the default serdes of `K` and `V`).
    ///
    /// # Errors
    /// No such key-value store; no serde of `K` or `V`; the app is not running.
    pub fn store<K: 'static, V: 'static>(&self, name: &str) -> Result<KeyValueStoreView<K, V>> {
        let (keys, values) = self.serdes::<K, V>(name, "key-value")?;
        self.store_with(name, keys, values)
    }

    /// [`store`](Self::store) with these serdes.
    ///
    /// # Errors
    /// No such key-value store; the app is not running.
    pub fn store_with<K: 'static, V: 'static>(
        &self,
        name: &str,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> Result<KeyValueStoreView<K, V>> {
        let builder = self.store_builder(name, "key-value")?;
        if !matches!(builder.kind(), StoreKind::KeyValue) {
            return Err(self.wrong_kind(name, "key-value", builder));
        }
        let (partitions, backends, local) = self.local_backends(name)?;
        KeyValueStoreView::new(
            name,
            partitions,
            backends,
            local,
            keys,
            values,
            self.state.clone(),
        )
    }

    /// A read-only view of window store `name` over committed state.
    ///
    /// # Errors
    /// No such window store; no serde of `K` or `V`; the app is not running.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<WindowStoreView<K, V>> {
        let (keys, values) = self.serdes::<K, V>(name, "window")?;
        let builder = self.store_builder(name, "window")?;
        let StoreKind::Window(options) = builder.kind() else {
            return Err(self.wrong_kind(name, "window", builder));
        };
        let (partitions, backends, local) = self.local_backends(name)?;
        let mut views = BTreeMap::new();
        for (p, b) in backends {
            views.insert(p, ReadOnlyWindowView::open(b, name, options.clone())?);
        }
        Ok(WindowStoreView::new(
            name,
            partitions,
            views,
            local,
            keys,
            values,
            self.state.clone(),
        ))
    }

    /// A read-only view of session store `name` over committed state.
    ///
    /// # Errors
    /// No such session store; no serde of `K` or `V`; the app is not running.
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<SessionStoreView<K, V>> {
        let (keys, values) = self.serdes::<K, V>(name, "session")?;
        let builder = self.store_builder(name, "session")?;
        let StoreKind::Session(options) = builder.kind() else {
            return Err(self.wrong_kind(name, "session", builder));
        };
        let (partitions, backends, local) = self.local_backends(name)?;
        let mut views = BTreeMap::new();
        for (p, b) in backends {
            views.insert(p, ReadOnlySessionView::open(b, name, options.clone())?);
        }
        Ok(SessionStoreView::new(
            name,
            partitions,
            views,
            local,
            keys,
            values,
            self.state.clone(),
        ))
    }

    fn wrong_kind(&self, name: &str, kind: &'static str, builder: &StoreBuilder) -> Error {
        Error::UnknownStore {
            store: name.to_string(),
            kind,
            hint: format!(" (it is a {:?} store)", builder.kind()),
        }
    }

    fn serdes<K: 'static, V: 'static>(
        &self,
        name: &str,
        kind: &'static str,
    ) -> Result<(SerdeRef<K>, SerdeRef<V>)> {
        let builder = self.store_builder(name, kind)?;
        let defaults = SerdeRegistry::default();
        let missing = |what: &str, ty: &str| {
            Error::Serde {
            store: name.to_string(),
            reason: format!("no {what} serde for {ty}: the store was declared with another type, and {ty} has no default serde (use store_with)"),
        }
        };
        let keys = builder
            .key_serde::<K>()
            .or_else(|| defaults.get::<K>())
            .ok_or_else(|| missing("key", std::any::type_name::<K>()))?;
        let values = builder
            .value_serde::<V>()
            .or_else(|| defaults.get::<V>())
            .ok_or_else(|| missing("value", std::any::type_name::<V>()))?;
        Ok((keys, values))
    }
}

impl<B: Broker> Drop for StreamsApp<B> {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            tracing::warn!(
                app = self.config.application_id(),
                "streams app dropped without close: stopping its threads"
            );
            running.shared.stop();
            join_all(running.threads);
            join_all(running.global);
            self.state.transition(AppState::PendingShutdown);
            self.state.transition(AppState::NotRunning);
        }
    }
}

/// One waiter of the bounded mode: leaves it when dropped (also when the wait is
/// cancelled), unless the app stays bounded until it closes.
struct Bounded<B: Broker>(Arc<Shared<B>>, bool);

impl<B: Broker> Drop for Bounded<B> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.bounded.fetch_sub(1, Ordering::SeqCst);
            self.0.wake.notify_waiters();
        }
    }
}

fn join_all(threads: impl IntoIterator<Item = std::thread::JoinHandle<()>>) {
    for t in threads {
        if t.join().is_err() {
            tracing::error!("a stream thread panicked");
        }
    }
}

/// The first thread failure, as an error.
fn thread_error<B: Broker>(shared: &Shared<B>) -> Error {
    if let Some(reason) = shared.global_error.lock().clone() {
        return Error::ThreadFailed {
            thread: 0,
            reason: format!("global stream thread: {reason}"),
        };
    }
    let t = shared.threads.lock();
    match t
        .iter()
        .enumerate()
        .find_map(|(i, s)| s.error.clone().map(|e| (i, e)))
    {
        Some((thread, reason)) => Error::ThreadFailed { thread, reason },
        None => Error::ThreadFailed {
            thread: 0,
            reason: "the stream threads stopped".into(),
        },
    }
}

/// Waits until `done` gives a result, re-checking whenever a thread reports progress.
async fn wait_for<B: Broker>(
    shared: &Shared<B>,
    mut done: impl FnMut() -> Option<Result<()>>,
) -> Result<()> {
    loop {
        let notified = shared.progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(r) = done() {
            return r;
        }
        notified.await;
    }
}
