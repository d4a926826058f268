//! `StreamsApp`: a topology running over a log (Kafka's `KafkaStreams`).

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use freshet_log::{Broker, Log};
use freshet_state_store::{Backend, ReadOnlySessionView, ReadOnlyWindowView, SledBackend};
use freshet_streams::{SerdeRef, SerdeRegistry, StoreBuilder, StoreKind, TaskId, Topology};
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::backend::TaskBackend;
use crate::config::StreamsConfig;
use crate::error::{Error, Result};
use crate::metrics::{AppMetrics, Registry};
use crate::query::{serves_queries, KeyValueStoreView, SessionStoreView, WindowStoreView};
use crate::state::{AppState, StateListener, StateMachine};
use crate::thread::{spawn, Shared, ThreadStatus};
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

/// A store's task count, and the backend of each local task holding it, by partition.
type LocalBackends = (u32, BTreeMap<u32, Arc<dyn Backend>>);

/// What a started app holds.
struct Running<B: Broker> {
    shared: Arc<Shared<B>>,
    threads: Vec<std::thread::JoinHandle<()>>,
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
    /// # Errors
    /// A bad config; no state directory (set `data.dir` or `state.dir` unless `log` is the
    /// embedded [`Log`], whose data directory is the default).
    pub fn new(config: StreamsConfig, topology: Topology, log: Arc<B>) -> Result<Self> {
        config.validate()?;
        let log_dir = (log.as_ref() as &dyn Any)
            .downcast_ref::<Log>()
            .map(|l| l.dir().to_path_buf());
        let state_dir = config.state_dir(log_dir.as_deref())?;
        Ok(StreamsApp {
            config,
            topology,
            broker: log,
            state: Arc::new(StateMachine::new()),
            metrics: Arc::new(Registry::default()),
            state_dir,
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
    /// co-partitioning, opens the state directory, starts the stream threads, which restore
    /// every store and the committed offsets and stream times of their tasks; returns once
    /// every task is restored and the app is `RUNNING`.
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
        if !self.topology.global_stores().is_empty() {
            return Err(Error::Streams(freshet_streams::Error::InvalidArgument(
                "global stores are not supported by the runtime yet".into(),
            )));
        }
        self.state.transition(AppState::Rebalancing);
        match self.launch_inner().await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.failure = Some(e.to_string());
                if let Some(running) = self.running.take() {
                    running.shared.stop();
                    join_all(running.threads);
                }
                self.state.transition(AppState::Error);
                Err(e)
            }
        }
    }

    async fn launch_inner(&mut self) -> Result<()> {
        let plan: Plan = prepare(&self.config, &self.topology, &*self.broker).await?;
        std::fs::create_dir_all(&self.state_dir).map_err(|e| Error::StateDir {
            path: self.state_dir.clone(),
            reason: e.to_string(),
        })?;
        let sled = SledBackend::open(&self.state_dir.join("sled"), self.config.sled_cache_bytes())?;
        let io = IoRuntime::new(self.config.application_id())?;
        let handle = io.handle().ok_or(Error::ThreadFailed {
            thread: 0,
            reason: "the i/o runtime is gone".into(),
        })?;
        let threads = self.config.num_stream_threads();
        let mut assignment: Vec<Vec<TaskId>> = vec![Vec::new(); threads];
        for (i, t) in plan.tasks.iter().enumerate() {
            assignment[i % threads].push(*t);
        }
        tracing::info!(
            app = self.config.application_id(),
            tasks = plan.tasks.len(),
            threads,
            guarantee = %self.config.processing_guarantee(),
            state_dir = %self.state_dir.display(),
            "starting streams app"
        );
        let shared = Arc::new(Shared {
            broker: self.broker.clone(),
            handle,
            config: self.config.clone(),
            topology: self.topology.clone(),
            partitions: Arc::new(plan.partitions.clone()),
            plan,
            backend: Arc::new(sled.clone()) as Arc<dyn Backend>,
            state: self.state.clone(),
            metrics: self.metrics.clone(),
            shutdown: AtomicBool::new(false),
            wake: Notify::new(),
            progress: Notify::new(),
            bounded: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            threads: Mutex::new(vec![ThreadStatus::default(); threads]),
        });
        let mut handles = Vec::new();
        for (i, tasks) in assignment.into_iter().enumerate() {
            match spawn(i, shared.clone(), tasks) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    shared.stop();
                    join_all(handles);
                    return Err(Error::Runtime(e));
                }
            }
        }
        self.running = Some(Running {
            shared: shared.clone(),
            threads: handles,
            sled,
            _io: io,
        });
        // Done once every thread has restored its tasks (the app was RUNNING, even if a
        // thread fails right after), or failed before that.
        wait_for(&shared, || {
            let t = shared.threads.lock();
            if t.iter().all(|s| s.restored) {
                Some(Ok(()))
            } else if t.iter().any(|s| s.error.is_some()) || t.iter().all(|s| s.finished) {
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

    /// The state directory (`<data dir>/state/<application.id>` by default).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Waits until every input partition has been processed up to the end offset it had
    /// when the app started, every repartition topic is drained, no task has anything
    /// buffered and everything is committed. The app keeps running.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when not running; [`Error::ThreadFailed`] when a thread fails
    /// meanwhile.
    pub async fn wait_until_caught_up(&self) -> Result<()> {
        let Some(running) = &self.running else {
            return Err(Error::InvalidState {
                what: "wait_until_caught_up",
                state: self.state.get(),
            });
        };
        let shared = running.shared.clone();
        shared.bounded.store(true, Ordering::SeqCst);
        shared.wake.notify_waiters();
        wait_for(&shared, || {
            let t = shared.threads.lock();
            if t.iter().any(|s| s.error.is_some()) || t.iter().all(|s| s.finished) {
                drop(t);
                return Some(Err(thread_error(&shared)));
            }
            drop(t);
            shared.caught_up().then_some(Ok(()))
        })
        .await
    }

    /// The bounded mode: [`wait_until_caught_up`](Self::wait_until_caught_up), then
    /// [`close`](Self::close).
    ///
    /// # Errors
    /// As both.
    pub async fn run_until_caught_up(&mut self) -> Result<()> {
        let waited = self.wait_until_caught_up().await;
        let closed = self.close().await;
        waited.and(closed)
    }

    /// Closes gracefully: each thread flushes, commits and closes its tasks; then the state
    /// is `NOT_RUNNING` (or stays `ERROR`). Closing a closed app does nothing.
    ///
    /// # Errors
    /// [`Error::ThreadFailed`] when a thread failed (now or before): the app is in `ERROR`.
    pub async fn close(&mut self) -> Result<()> {
        let Some(running) = self.running.take() else {
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
            sled,
            _io,
        } = running;
        join_all(threads);
        let failed = shared.threads.lock().iter().any(|t| t.error.is_some());
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
        result
    }

    /// Deletes the app's local state directory (Kafka's `cleanUp`): the next start restores
    /// every store from its changelog.
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
        match std::fs::remove_dir_all(&self.state_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::StateDir {
                path: self.state_dir.clone(),
                reason: e.to_string(),
            }),
        }
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

    /// Per partition, the backend of the local task holding store `name`, and the task count.
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
        let (sub, partitions) = running
            .shared
            .plan
            .stores
            .get(name)
            .copied()
            .unwrap_or((0, 0));
        let mut out = BTreeMap::new();
        for t in running
            .shared
            .plan
            .tasks
            .iter()
            .filter(|t| t.subtopology == sub)
        {
            let b: Arc<dyn Backend> = Arc::new(TaskBackend::new(
                running.shared.backend.clone(),
                &t.to_string(),
            ));
            out.insert(t.partition, b);
        }
        Ok((partitions.max(1), out))
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
        let (partitions, backends) = self.local_backends(name)?;
        KeyValueStoreView::new(name, partitions, backends, keys, values, self.state.clone())
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
        let (partitions, backends) = self.local_backends(name)?;
        let mut views = BTreeMap::new();
        for (p, b) in backends {
            views.insert(p, ReadOnlyWindowView::open(b, name, options.clone())?);
        }
        Ok(WindowStoreView::new(
            name,
            partitions,
            views,
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
        let (partitions, backends) = self.local_backends(name)?;
        let mut views = BTreeMap::new();
        for (p, b) in backends {
            views.insert(p, ReadOnlySessionView::open(b, name, options.clone())?);
        }
        Ok(SessionStoreView::new(
            name,
            partitions,
            views,
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
            self.state.transition(AppState::PendingShutdown);
            self.state.transition(AppState::NotRunning);
        }
    }
}

fn join_all(threads: Vec<std::thread::JoinHandle<()>>) {
    for t in threads {
        if t.join().is_err() {
            tracing::error!("a stream thread panicked");
        }
    }
}

/// The first thread failure, as an error.
fn thread_error<B: Broker>(shared: &Shared<B>) -> Error {
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
