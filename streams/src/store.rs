//! State stores as a topology declares them ([`StoreBuilder`], made by [`Stores`]) and as a
//! running task holds them: each layered as cache → write buffer → committed overlay →
//! backend (see `freshet_state_store`), shared by the operators connected to it.
//!
//! Processors reach a store through a typed handle ([`KeyValueStoreHandle`],
//! [`WindowStoreHandle`], [`SessionStoreHandle`]) that (de)serializes with the store's serdes.
//! A handle locks the store for one call only, so a processor never holds a store while it
//! forwards (a downstream operator may read the same store).

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{
    BufferStore, CachingKvStore, CachingSessionStore, CachingWindowStore, KeyValueStore, KvStore,
    SegmentedSessionStore, SegmentedWindowStore, SessionStore, SessionStoreOptions, StateStore,
    Timestamped, WindowStore, WindowStoreOptions,
};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::serde::{SerdeRef, Window, Windowed};

/// What kind of store, and how it keeps time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// Key → value with timestamp.
    KeyValue,
    /// Windows of a key (Kafka's `WindowStore`).
    Window(WindowStoreOptions),
    /// Sessions of a key (Kafka's `SessionStore`).
    Session(SessionStoreOptions),
    /// The time-ordered buffer behind `suppress`.
    Buffer,
}

/// A store as a topology declares it: name, kind, serdes, logging and caching (Kafka's
/// `StoreBuilder`).
#[derive(Clone)]
pub struct StoreBuilder {
    pub(crate) name: String,
    pub(crate) kind: StoreKind,
    pub(crate) logging: bool,
    pub(crate) caching: bool,
    /// `SerdeRef<K>` and `SerdeRef<V>`, erased; handles check the types.
    pub(crate) key_serde: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) value_serde: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("logging", &self.logging)
            .field("caching", &self.caching)
            .finish()
    }
}

impl StoreBuilder {
    pub(crate) fn new(name: impl Into<String>, kind: StoreKind) -> StoreBuilder {
        StoreBuilder {
            name: name.into(),
            kind,
            logging: true,
            caching: false,
            key_serde: None,
            value_serde: None,
        }
    }

    pub(crate) fn with_serdes<K: 'static, V: 'static>(
        mut self,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
    ) -> StoreBuilder {
        self.key_serde = Some(Arc::new(keys));
        self.value_serde = Some(Arc::new(values));
        self
    }

    /// Sets whether the store is changelogged and cached.
    pub(crate) fn with_settings(mut self, logging: bool, caching: bool) -> StoreBuilder {
        self.logging = logging;
        self.caching = caching;
        self
    }

    /// Whether `other` is this same declaration (same kind and settings, the very same
    /// serdes), not just a store with the same name.
    pub(crate) fn same_as(&self, other: &StoreBuilder) -> bool {
        fn same(
            a: &Option<Arc<dyn Any + Send + Sync>>,
            b: &Option<Arc<dyn Any + Send + Sync>>,
        ) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        self.kind == other.kind
            && self.logging == other.logging
            && self.caching == other.caching
            && same(&self.key_serde, &other.key_serde)
            && same(&self.value_serde, &other.value_serde)
    }

    /// The store's name.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Materialized, Stores, StreamsBuilder, Utf8};
    /// let builder = StreamsBuilder::new();
    /// let seen = Stores::key_value::<String, i64>("seen", Utf8, BigEndian);
    /// assert_eq!(seen.name(), "seen");
    /// builder.add_state_store(seen);
    /// let input = builder.stream::<String, String>("in");
    /// input.group_by_key().count_with(Materialized::named("counts"));
    /// input.group_by_key().count();
    /// let topology = builder.build()?;
    /// let mut names: Vec<&str> = topology.stores().map(|s| s.name()).collect();
    /// names.sort();
    /// assert_eq!(names, vec!["KSTREAM-AGGREGATE-STATE-STORE-0000000002", "counts", "seen"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's kind.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{BigEndian, Materialized, StoreKind, Stores, StreamsBuilder, TimeWindows, Utf8};
    /// assert_eq!(Stores::key_value::<String, i64>("kv", Utf8, BigEndian).kind(), &StoreKind::KeyValue);
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60))?)
    ///     .count_with(Materialized::named("per-minute"));
    /// let topology = builder.build()?;
    /// let store = topology.stores().find(|s| s.name() == "per-minute").expect("declared");
    /// match store.kind() {
    ///     StoreKind::Window(options) => assert_eq!((options.window_size_ms, options.retention_ms), (60_000, 60_000)),
    ///     other => panic!("expected a window store, got {other:?}"),
    /// }
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn kind(&self) -> &StoreKind {
        &self.kind
    }

    /// The key serde the store was declared with, when it is one of `K` (interactive
    /// queries use it).
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Stores, Utf8};
    /// let store = Stores::key_value::<String, i64>("counts", Utf8, BigEndian);
    /// let keys = store.key_serde::<String>().expect("declared with a String serde");
    /// assert_eq!(keys.serialize(&"ann".to_string()).ok(), Some(b"ann".to_vec()));
    /// // Asked for another type: none.
    /// assert!(store.key_serde::<i64>().is_none());
    /// ```
    pub fn key_serde<K: 'static>(&self) -> Option<SerdeRef<K>> {
        self.key_serde
            .as_ref()
            .and_then(|s| s.downcast_ref::<SerdeRef<K>>())
            .cloned()
    }

    /// The value serde the store was declared with, when it is one of `V`.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Stores, Utf8};
    /// let store = Stores::key_value::<String, i64>("counts", Utf8, BigEndian);
    /// let values = store.value_serde::<i64>().expect("declared with an i64 serde");
    /// assert_eq!(values.serialize(&258).ok(), Some(vec![0, 0, 0, 0, 0, 0, 1, 2]));
    /// assert!(store.value_serde::<String>().is_none());
    /// ```
    pub fn value_serde<V: 'static>(&self) -> Option<SerdeRef<V>> {
        self.value_serde
            .as_ref()
            .and_then(|s| s.downcast_ref::<SerdeRef<V>>())
            .cloned()
    }

    /// Whether writes go to a changelog topic (on unless disabled).
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Materialized, Stores, StreamsBuilder, Utf8};
    /// assert!(Stores::key_value::<String, i64>("kv", Utf8, BigEndian).logging_enabled());
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count_with(Materialized::named("counts").with_logging_disabled());
    /// let topology = builder.build()?;
    /// assert!(topology.stores().all(|s| !s.logging_enabled()));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn logging_enabled(&self) -> bool {
        self.logging
    }

    /// Whether updates are cached before going downstream.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Stores, StreamsBuilder, Utf8};
    /// // Processor API stores are not cached unless asked (as Kafka's); DSL stores are.
    /// assert!(!Stores::key_value::<String, i64>("kv", Utf8, BigEndian).caching_enabled());
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count();
    /// let topology = builder.build()?;
    /// assert!(topology.stores().all(|s| s.caching_enabled()));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn caching_enabled(&self) -> bool {
        self.caching
    }

    /// Turns the changelog off: the store is lost with the local state.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Stores, StreamsBuilder, Utf8};
    /// # struct Pass;
    /// # impl freshet_streams::Processor<String, String, String, String> for Pass {
    /// #     fn process(&mut self, ctx: &mut freshet_streams::ProcessorContext<'_, '_, String, String>, r: freshet_streams::Record<String, String>) -> freshet_streams::Result<()> { ctx.forward(r) }
    /// # }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, i64>("scratch", Utf8, BigEndian).with_logging_disabled());
    /// builder.stream::<String, String>("in").process(|| Pass, &["scratch"]).to("out");
    /// let topology = builder.build()?;
    /// let scratch = topology.stores().find(|s| s.name() == "scratch").expect("declared");
    /// assert!(!scratch.logging_enabled());
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_logging_disabled(mut self) -> StoreBuilder {
        self.logging = false;
        self
    }

    /// Turns the record cache on (Kafka's `withCachingEnabled`).
    ///
    /// A processor reads its own cached writes:
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// # struct Counter;
    /// # impl Processor<String, String, String, i64> for Counter {
    /// #     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, String>) -> Result<()> {
    /// #         let counts = ctx.key_value_store::<String, i64>("counts")?;
    /// #         let n = counts.get(&r.key)?.map_or(0, |(n, _)| n) + 1;
    /// #         counts.put(&r.key, &n, r.timestamp)?;
    /// #         ctx.forward(r.with_value(n))
    /// #     }
    /// # }
    /// let counts = Stores::key_value::<String, i64>("counts", Utf8, BigEndian).with_caching_enabled();
    /// assert!(counts.caching_enabled());
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(counts);
    /// builder.stream::<String, String>("in").process(|| Counter, &["counts"]).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe_all([("a".into(), "x".into(), 0), ("a".into(), "y".into(), 1)])?;
    /// assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![1, 2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_caching_enabled(mut self) -> StoreBuilder {
        self.caching = true;
        self
    }

    /// Turns the record cache off.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Stores, StreamsBuilder, Utf8};
    /// # struct Pass;
    /// # impl freshet_streams::Processor<String, String, String, String> for Pass {
    /// #     fn process(&mut self, ctx: &mut freshet_streams::ProcessorContext<'_, '_, String, String>, r: freshet_streams::Record<String, String>) -> freshet_streams::Result<()> { ctx.forward(r) }
    /// # }
    /// let store = Stores::key_value::<String, i64>("kv", Utf8, BigEndian).with_caching_enabled().with_caching_disabled();
    /// assert!(!store.caching_enabled());
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(store);
    /// builder.stream::<String, String>("in").process(|| Pass, &["kv"]).to("out");
    /// let topology = builder.build()?;
    /// assert!(topology.stores().all(|s| !s.caching_enabled()));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_caching_disabled(mut self) -> StoreBuilder {
        self.caching = false;
        self
    }
}

/// Makes [`StoreBuilder`]s for the Processor API (Kafka's `Stores`).
///
/// ```
/// use freshet_streams::{Stores, Utf8, BigEndian};
/// let counts = Stores::key_value::<String, i64>("counts", Utf8, BigEndian);
/// assert_eq!(counts.name(), "counts");
/// assert!(counts.logging_enabled());
/// ```
#[derive(Debug)]
pub struct Stores;

impl Stores {
    /// A key-value store.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Forwards a value only when it differs from the key's previous one.
    /// struct Changes;
    /// impl Processor<String, i64, String, i64> for Changes {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         let last = ctx.key_value_store::<String, i64>("last")?;
    ///         if last.get(&r.key)?.map(|(v, _)| v) == Some(r.value) {
    ///             return Ok(());
    ///         }
    ///         last.put(&r.key, &r.value, r.timestamp)?;
    ///         ctx.forward(r)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, i64>("last", Utf8, BigEndian));
    /// builder.stream::<String, i64>("readings").process(|| Changes, &["last"]).to("changes");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("readings").pipe_all([("t".into(), 20, 0), ("t".into(), 20, 1), ("t".into(), 21, 2)])?;
    /// assert_eq!(driver.output::<String, i64>("changes").read_values()?, vec![20, 21]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn key_value<K: 'static, V: 'static>(
        name: &str,
        keys: impl freshet_state_store::Serde<K> + 'static,
        values: impl freshet_state_store::Serde<V> + 'static,
    ) -> StoreBuilder {
        StoreBuilder::new(name, StoreKind::KeyValue)
            .with_serdes::<K, V>(Arc::new(keys), Arc::new(values))
    }

    /// A window store keeping windows of `window_size` ms for `retention` ms of stream time;
    /// `retain_duplicates` keeps every put (as join stores do).
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Keeps every reading in the 10 ms window it falls in.
    /// struct Keep;
    /// impl Processor<String, i64, String, i64> for Keep {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         let start = r.timestamp - r.timestamp % 10;
    ///         ctx.window_store::<String, i64>("readings")?.put(&r.key, &r.value, r.timestamp, start)?;
    ///         ctx.forward(r)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// // Retained for 1 s, 10 ms windows, duplicates kept.
    /// builder.add_state_store(Stores::window::<String, i64>("readings", 1_000, 10, true, Utf8, BigEndian));
    /// builder.stream::<String, i64>("in").process(|| Keep, &["readings"]);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe_all([("t".into(), 20, 1), ("t".into(), 22, 3), ("t".into(), 25, 14)])?;
    /// let readings = driver.window_store::<String, i64>("readings")?.fetch(&"t".into(), 0, 10)?;
    /// assert_eq!(readings, vec![(0, 20, 1), (0, 22, 3), (10, 25, 14)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn window<K: 'static, V: 'static>(
        name: &str,
        retention_ms: i64,
        window_size_ms: i64,
        retain_duplicates: bool,
        keys: impl freshet_state_store::Serde<K> + 'static,
        values: impl freshet_state_store::Serde<V> + 'static,
    ) -> StoreBuilder {
        let options = WindowStoreOptions::new(retention_ms, window_size_ms)
            .with_retain_duplicates(retain_duplicates);
        StoreBuilder::new(name, StoreKind::Window(options))
            .with_serdes::<K, V>(Arc::new(keys), Arc::new(values))
    }

    /// A session store keeping sessions for `retention` ms of stream time after their end.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8, Window};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Records each visit as a session from its start to its end (the value).
    /// struct Visits;
    /// impl Processor<String, i64, String, i64> for Visits {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         let session = Window::new(r.timestamp, r.value);
    ///         ctx.session_store::<String, i64>("visits")?.put(&r.key, session, &(r.value - r.timestamp), r.value)?;
    ///         ctx.forward(r)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::session::<String, i64>("visits", 60_000, Utf8, BigEndian));
    /// builder.stream::<String, i64>("in").process(|| Visits, &["visits"]);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe_all([("ann".into(), 30, 10), ("ann".into(), 90, 50)])?;
    /// let visits = driver.session_store::<String, i64>("visits")?.find_sessions(&"ann".into(), 0, 100)?;
    /// assert_eq!(visits, vec![(Window::new(10, 30), 20, 30), (Window::new(50, 90), 40, 90)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn session<K: 'static, V: 'static>(
        name: &str,
        retention_ms: i64,
        keys: impl freshet_state_store::Serde<K> + 'static,
        values: impl freshet_state_store::Serde<V> + 'static,
    ) -> StoreBuilder {
        StoreBuilder::new(
            name,
            StoreKind::Session(SessionStoreOptions::new(retention_ms)),
        )
        .with_serdes::<K, V>(Arc::new(keys), Arc::new(values))
    }
}

/// A store as a running task holds it.
#[derive(Debug)]
pub(crate) enum StoreInstance {
    Kv(CachingKvStore<KvStore>),
    Window(CachingWindowStore<SegmentedWindowStore>),
    Session(CachingSessionStore<SegmentedSessionStore>),
    Buffer(BufferStore),
}

impl StoreInstance {
    /// The store's commit lifecycle.
    pub(crate) fn lifecycle(&mut self) -> &mut dyn StateStore {
        match self {
            StoreInstance::Kv(s) => s,
            StoreInstance::Window(s) => s,
            StoreInstance::Session(s) => s,
            StoreInstance::Buffer(s) => s,
        }
    }

    /// Commit step 1 for the cache: write down what it holds (and forward it).
    pub(crate) fn flush_cache(&mut self) -> freshet_state_store::Result<()> {
        match self {
            StoreInstance::Kv(s) => s.flush(),
            StoreInstance::Window(s) => s.flush(),
            StoreInstance::Session(s) => s.flush(),
            StoreInstance::Buffer(_) => Ok(()),
        }
    }
}

/// A store shared by the operators of a task.
#[derive(Debug, Clone)]
pub(crate) struct StoreRef {
    pub(crate) name: Arc<str>,
    pub(crate) inner: Arc<Mutex<StoreInstance>>,
    pub(crate) builder: Arc<StoreBuilder>,
}

impl StoreRef {
    fn store_error(&self, source: freshet_state_store::Error) -> Error {
        Error::Store {
            store: self.name.to_string(),
            source: Box::new(source),
        }
    }

    /// Runs `f` on the key-value store.
    pub(crate) fn with_kv<T>(
        &self,
        f: impl FnOnce(&mut CachingKvStore<KvStore>) -> freshet_state_store::Result<T>,
    ) -> Result<T> {
        match &mut *self.inner.lock() {
            StoreInstance::Kv(s) => f(s).map_err(|e| self.store_error(e)),
            _ => Err(self.wrong_kind("key-value")),
        }
    }

    /// Runs `f` on the window store.
    pub(crate) fn with_window<T>(
        &self,
        f: impl FnOnce(&mut CachingWindowStore<SegmentedWindowStore>) -> freshet_state_store::Result<T>,
    ) -> Result<T> {
        match &mut *self.inner.lock() {
            StoreInstance::Window(s) => f(s).map_err(|e| self.store_error(e)),
            _ => Err(self.wrong_kind("window")),
        }
    }

    /// Runs `f` on the session store.
    pub(crate) fn with_session<T>(
        &self,
        f: impl FnOnce(
            &mut CachingSessionStore<SegmentedSessionStore>,
        ) -> freshet_state_store::Result<T>,
    ) -> Result<T> {
        match &mut *self.inner.lock() {
            StoreInstance::Session(s) => f(s).map_err(|e| self.store_error(e)),
            _ => Err(self.wrong_kind("session")),
        }
    }

    /// Runs `f` on the suppression buffer.
    pub(crate) fn with_buffer<T>(
        &self,
        f: impl FnOnce(&mut BufferStore) -> freshet_state_store::Result<T>,
    ) -> Result<T> {
        match &mut *self.inner.lock() {
            StoreInstance::Buffer(s) => f(s).map_err(|e| self.store_error(e)),
            _ => Err(self.wrong_kind("buffer")),
        }
    }

    fn wrong_kind(&self, wanted: &'static str) -> Error {
        Error::InvalidArgument(format!("store {} is not a {wanted} store", self.name))
    }
}

fn encode<T>(serde: &SerdeRef<T>, value: &T, store: &str) -> Result<Bytes> {
    serde
        .serialize(value)
        .map(Bytes::from)
        .map_err(|reason| Error::Serde {
            context: format!("store {store}"),
            reason,
        })
}

fn decode<T>(serde: &SerdeRef<T>, bytes: &[u8], store: &str) -> Result<T> {
    serde.deserialize(bytes).map_err(|reason| Error::Serde {
        context: format!("store {store}"),
        reason,
    })
}

/// What the typed handles share: the store and its serdes, and the (de)serialization of
/// keys and timestamped values.
struct TypedStore<K, V> {
    store: StoreRef,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
}

impl<K, V> Clone for TypedStore<K, V> {
    fn clone(&self) -> Self {
        TypedStore {
            store: self.store.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

impl<K: 'static, V: 'static> TypedStore<K, V> {
    /// A handle on `store` with the given serdes, else the ones it was declared with.
    fn new(
        store: StoreRef,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
    ) -> Result<Self> {
        let mismatch = |expected| Error::TypeMismatch {
            node: format!("store {}", store.name),
            expected,
        };
        let keys = keys
            .or_else(|| store.builder.key_serde())
            .ok_or_else(|| mismatch(std::any::type_name::<K>()))?;
        let values = values
            .or_else(|| store.builder.value_serde())
            .ok_or_else(|| mismatch(std::any::type_name::<V>()))?;
        Ok(TypedStore {
            store,
            keys,
            values,
        })
    }

    fn key(&self, key: &K) -> Result<Bytes> {
        encode(&self.keys, key, &self.store.name)
    }

    fn value(&self, value: &V, timestamp: i64) -> Result<Timestamped> {
        let value = encode(&self.values, value, &self.store.name)?;
        Ok(Timestamped { value, timestamp })
    }

    /// `(value, timestamp)` of a stored value.
    fn read(&self, stored: &Timestamped) -> Result<(V, i64)> {
        let value = decode(&self.values, &stored.value, &self.store.name)?;
        Ok((value, stored.timestamp))
    }

    /// `(windowed key, value, timestamp)` of each stored window or session.
    fn read_windowed(
        &self,
        raw: Vec<(Windowed<Bytes>, Timestamped)>,
    ) -> Result<Vec<(Windowed<K>, V, i64)>> {
        raw.into_iter()
            .map(|(w, stored)| {
                let key = decode(&self.keys, &w.key, &self.store.name)?;
                let (value, timestamp) = self.read(&stored)?;
                Ok((Windowed::new(key, w.window), value, timestamp))
            })
            .collect()
    }
}

/// A key-value store, typed (Kafka's `TimestampedKeyValueStore`): each value with its
/// timestamp.
pub struct KeyValueStoreHandle<K, V> {
    inner: TypedStore<K, V>,
}

impl<K, V> std::fmt::Debug for KeyValueStoreHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyValueStoreHandle({})", self.inner.store.name)
    }
}

impl<K, V> Clone for KeyValueStoreHandle<K, V> {
    fn clone(&self) -> Self {
        KeyValueStoreHandle {
            inner: self.inner.clone(),
        }
    }
}

impl<K: 'static, V: 'static> KeyValueStoreHandle<K, V> {
    pub(crate) fn new(
        store: StoreRef,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
    ) -> Result<Self> {
        TypedStore::new(store, keys, values).map(|inner| KeyValueStoreHandle { inner })
    }

    /// The value of `key` and its timestamp.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Prices each order with the rate of its currency (the key); unknown currencies are dropped.
    /// struct Convert;
    /// impl Processor<String, i64, String, i64> for Convert {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         match ctx.key_value_store::<String, i64>("rates")?.get(&r.key)? {
    ///             Some((rate, _timestamp)) => {
    ///                 let price = r.value * rate;
    ///                 ctx.forward(r.with_value(price))
    ///             }
    ///             None => Ok(()),
    ///         }
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, i64>("rates", Utf8, BigEndian));
    /// builder.stream::<String, i64>("orders").process(|| Convert, &["rates"]).to("prices");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// // Fill the store before any record, through the driver.
    /// driver.key_value_store::<String, i64>("rates")?.put(&"EUR".into(), &11, 0)?;
    /// driver.input::<String, i64>("orders").pipe_all([("EUR".into(), 3, 1), ("XYZ".into(), 5, 2)])?;
    /// assert_eq!(driver.output::<String, i64>("prices").read_values()?, vec![33]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<(V, i64)>> {
        let k = self.inner.key(key)?;
        let found = self.inner.store.with_kv(|s| s.get(&k))?;
        found.map(|t| self.inner.read(&t)).transpose()
    }

    /// Sets `key` to `value` at `timestamp`.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Remembers each user's latest page.
    /// struct Latest;
    /// impl Processor<String, String, String, String> for Latest {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         ctx.key_value_store::<String, String>("latest-page")?.put(&r.key, &r.value, r.timestamp)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, String>("latest-page", Utf8, Utf8));
    /// builder.stream::<String, String>("views").process(|| Latest, &["latest-page"]);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("views").pipe_all([("ann".into(), "/a".into(), 1), ("ann".into(), "/b".into(), 2)])?;
    /// let latest = driver.key_value_store::<String, String>("latest-page")?;
    /// assert_eq!(latest.get(&"ann".into())?, Some(("/b".to_string(), 2)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn put(&self, key: &K, value: &V, timestamp: i64) -> Result<()> {
        let (k, v) = (self.inner.key(key)?, self.inner.value(value, timestamp)?);
        self.inner.store.with_kv(|s| s.put(k, Some(v)))
    }

    /// Deletes `key`.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Tracks logged-in users: `login` stores the user, `logout` deletes them.
    /// struct Sessions;
    /// impl Processor<String, String, String, String> for Sessions {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         let online = ctx.key_value_store::<String, String>("online")?;
    ///         match r.value.as_str() {
    ///             "logout" => online.delete(&r.key),
    ///             _ => online.put(&r.key, &r.value, r.timestamp),
    ///         }
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, String>("online", Utf8, Utf8));
    /// builder.stream::<String, String>("events").process(|| Sessions, &["online"]);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let events = driver.input::<String, String>("events");
    /// events.pipe_all([("ann".into(), "login".into(), 1), ("bob".into(), "login".into(), 2), ("ann".into(), "logout".into(), 3)])?;
    /// let online = driver.key_value_store::<String, String>("online")?;
    /// assert_eq!(online.get(&"ann".into())?, None);
    /// assert_eq!(online.all()?, vec![("bob".into(), "login".into(), 2)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn delete(&self, key: &K) -> Result<()> {
        let k = self.inner.key(key)?;
        self.inner.store.with_kv(|s| s.put(k, None))
    }

    /// Every entry, in key-byte order.
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count_with(Materialized::named("counts"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe_all([("b".into(), "x".into(), 1), ("a".into(), "x".into(), 2), ("b".into(), "x".into(), 3)])?;
    /// // (key, value, timestamp), ordered by the key's bytes.
    /// let all = driver.key_value_store::<String, i64>("counts")?.all()?;
    /// assert_eq!(all, vec![("a".into(), 1, 2), ("b".into(), 2, 3)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn all(&self) -> Result<Vec<(K, V, i64)>> {
        let raw = self
            .inner
            .store
            .with_kv(|s| s.all()?.collect::<freshet_state_store::Result<Vec<_>>>())?;
        raw.into_iter()
            .map(|(k, stored)| {
                let key = decode(&self.inner.keys, &k, &self.inner.store.name)?;
                let (value, timestamp) = self.inner.read(&stored)?;
                Ok((key, value, timestamp))
            })
            .collect()
    }
}

/// A window store, typed.
pub struct WindowStoreHandle<K, V> {
    inner: TypedStore<K, V>,
}

impl<K, V> std::fmt::Debug for WindowStoreHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WindowStoreHandle({})", self.inner.store.name)
    }
}

impl<K, V> Clone for WindowStoreHandle<K, V> {
    fn clone(&self) -> Self {
        WindowStoreHandle {
            inner: self.inner.clone(),
        }
    }
}

impl<K: 'static, V: 'static> WindowStoreHandle<K, V> {
    pub(crate) fn new(
        store: StoreRef,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
    ) -> Result<Self> {
        TypedStore::new(store, keys, values).map(|inner| WindowStoreHandle { inner })
    }

    /// Puts `value` for `key` in the window starting at `window_start`.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Keeps each key's maximum per 10 ms window.
    /// struct WindowMax;
    /// impl Processor<String, i64, String, i64> for WindowMax {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         let maxima = ctx.window_store::<String, i64>("maxima")?;
    ///         let start = r.timestamp - r.timestamp % 10;
    ///         let old = maxima.fetch(&r.key, start, start)?.first().map(|(_, v, _)| *v);
    ///         if old.is_none_or(|old| r.value > old) {
    ///             maxima.put(&r.key, &r.value, r.timestamp, start)?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::window::<String, i64>("maxima", 1_000, 10, false, Utf8, BigEndian));
    /// builder.stream::<String, i64>("in").process(|| WindowMax, &["maxima"]);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe_all([("t".into(), 5, 1), ("t".into(), 9, 2), ("t".into(), 7, 3), ("t".into(), 1, 11)])?;
    /// let maxima = driver.window_store::<String, i64>("maxima")?.fetch(&"t".into(), 0, 10)?;
    /// assert_eq!(maxima, vec![(0, 9, 2), (10, 1, 11)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn put(&self, key: &K, value: &V, timestamp: i64, window_start: i64) -> Result<()> {
        let (k, v) = (self.inner.key(key)?, self.inner.value(value, timestamp)?);
        self.inner
            .store
            .with_window(|s| s.put(&k, Some(v), window_start))
    }

    /// `(window start, value, timestamp)` of `key` for windows starting in `[from, to]`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     .count_with(Materialized::named("clicks").with_retention(Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("ann".into(), "/a".into(), 3), ("ann".into(), "/b".into(), 14), ("ann".into(), "/c".into(), 27)])?;
    /// let store = driver.window_store::<String, i64>("clicks")?;
    /// // Windows starting in [10, 20] only; bounds are inclusive.
    /// assert_eq!(store.fetch(&"ann".into(), 10, 20)?, vec![(10, 1, 14), (20, 1, 27)]);
    /// assert!(store.fetch(&"bob".into(), 0, 100)?.is_empty());
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V, i64)>> {
        let k = self.inner.key(key)?;
        let raw = self.inner.store.with_window(|s| {
            s.fetch(&k, from, to)?
                .collect::<freshet_state_store::Result<Vec<_>>>()
        })?;
        raw.into_iter()
            .map(|(start, stored)| {
                let (value, timestamp) = self.inner.read(&stored)?;
                Ok((start, value, timestamp))
            })
            .collect()
    }

    /// Every live window: `(windowed key, value, timestamp)`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, StreamsBuilder, TimeWindows, Window, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     .count_with(Materialized::named("clicks").with_retention(Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("bob".into(), "/a".into(), 3), ("ann".into(), "/b".into(), 5), ("ann".into(), "/c".into(), 12)])?;
    /// let all: Vec<(String, Window, i64)> = driver
    ///     .window_store::<String, i64>("clicks")?
    ///     .all()?
    ///     .into_iter()
    ///     .map(|(w, count, _timestamp)| (w.key, w.window, count))
    ///     .collect();
    /// assert_eq!(all.len(), 3);
    /// assert!(all.contains(&("ann".into(), Window::new(0, 10), 1)));
    /// assert!(all.contains(&("ann".into(), Window::new(10, 20), 1)));
    /// assert!(all.contains(&("bob".into(), Window::new(0, 10), 1)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V, i64)>> {
        let raw = self
            .inner
            .store
            .with_window(|s| s.all()?.collect::<freshet_state_store::Result<Vec<_>>>())?;
        self.inner.read_windowed(raw)
    }
}

/// A session store, typed.
pub struct SessionStoreHandle<K, V> {
    inner: TypedStore<K, V>,
}

impl<K, V> std::fmt::Debug for SessionStoreHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionStoreHandle({})", self.inner.store.name)
    }
}

impl<K, V> Clone for SessionStoreHandle<K, V> {
    fn clone(&self) -> Self {
        SessionStoreHandle {
            inner: self.inner.clone(),
        }
    }
}

impl<K: 'static, V: 'static> SessionStoreHandle<K, V> {
    pub(crate) fn new(
        store: StoreRef,
        keys: Option<SerdeRef<K>>,
        values: Option<SerdeRef<V>>,
    ) -> Result<Self> {
        TypedStore::new(store, keys, values).map(|inner| SessionStoreHandle { inner })
    }

    /// Puts `value` for `key` in `session`.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8, Window};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Stores each call, from its start (the timestamp) to its end (the value), with its caller.
    /// struct Calls;
    /// impl Processor<String, i64, String, i64> for Calls {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         let calls = ctx.session_store::<String, String>("calls")?;
    ///         calls.put(&r.key, Window::new(r.timestamp, r.value), &format!("call of {}", r.key), r.value)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::session::<String, String>("calls", 60_000, Utf8, Utf8));
    /// builder.stream::<String, i64>("calls").process(|| Calls, &["calls"]);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("calls").pipe("ann".into(), 25, 10)?;
    /// let stored = driver.session_store::<String, String>("calls")?.find_sessions(&"ann".into(), 0, 100)?;
    /// assert_eq!(stored, vec![(Window::new(10, 25), "call of ann".to_string(), 25)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn put(&self, key: &K, session: Window, value: &V, timestamp: i64) -> Result<()> {
        let (k, v) = (self.inner.key(key)?, self.inner.value(value, timestamp)?);
        self.inner
            .store
            .with_session(|s| s.put(&k, session, Some(v)))
    }

    /// Removes `key`'s `session`.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8, Window};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Extends a key's session by each record within 10 ms of it: the old session is
    /// /// removed and the longer one put.
    /// struct Extend;
    /// impl Processor<String, String, String, String> for Extend {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         let sessions = ctx.session_store::<String, i64>("sessions")?;
    ///         let mut session = Window::new(r.timestamp, r.timestamp);
    ///         let mut count = 1;
    ///         for (old, n, _) in sessions.find_sessions(&r.key, r.timestamp - 10, r.timestamp)? {
    ///             sessions.remove(&r.key, old)?;
    ///             session = Window::new(old.start, r.timestamp);
    ///             count += n;
    ///         }
    ///         sessions.put(&r.key, session, &count, r.timestamp)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::session::<String, i64>("sessions", 60_000, Utf8, BigEndian));
    /// builder.stream::<String, String>("in").process(|| Extend, &["sessions"]);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe_all([("ann".into(), "a".into(), 0), ("ann".into(), "b".into(), 5), ("ann".into(), "c".into(), 9)])?;
    /// let sessions = driver.session_store::<String, i64>("sessions")?.find_sessions(&"ann".into(), 0, 100)?;
    /// // Only the merged session is left.
    /// assert_eq!(sessions, vec![(Window::new(0, 9), 3, 9)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn remove(&self, key: &K, session: Window) -> Result<()> {
        let k = self.inner.key(key)?;
        self.inner.store.with_session(|s| s.remove(&k, session))
    }

    /// Sessions of `key` with `end >= earliest_end` and `start <= latest_start`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, SessionWindows, StreamsBuilder, Window, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     .count_with(Materialized::named("sessions").with_retention(Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("ann".into(), "/a".into(), 0), ("ann".into(), "/b".into(), 6), ("ann".into(), "/c".into(), 30)])?;
    /// let sessions = driver.session_store::<String, i64>("sessions")?;
    /// let ann = "ann".to_string();
    /// // Sessions overlapping [7, 100]: ending at 7 or later, starting at 100 or earlier.
    /// assert_eq!(sessions.find_sessions(&ann, 7, 100)?, vec![(Window::new(30, 30), 1, 30)]);
    /// // Sessions overlapping [0, 29].
    /// assert_eq!(sessions.find_sessions(&ann, 0, 29)?, vec![(Window::new(0, 6), 2, 6)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<Vec<(Window, V, i64)>> {
        let k = self.inner.key(key)?;
        let raw = self.inner.store.with_session(|s| {
            s.find_sessions(&k, earliest_end, latest_start)?
                .collect::<freshet_state_store::Result<Vec<_>>>()
        })?;
        raw.into_iter()
            .map(|(w, stored)| {
                let (value, timestamp) = self.inner.read(&stored)?;
                Ok((w.window, value, timestamp))
            })
            .collect()
    }

    /// Every live session: `(windowed key, value, timestamp)`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, SessionWindows, StreamsBuilder, Window, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     .count_with(Materialized::named("sessions").with_retention(Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("ann".into(), "/a".into(), 0), ("bob".into(), "/b".into(), 4), ("ann".into(), "/c".into(), 5)])?;
    /// let mut all: Vec<(String, Window, i64)> = driver
    ///     .session_store::<String, i64>("sessions")?
    ///     .all()?
    ///     .into_iter()
    ///     .map(|(w, count, _timestamp)| (w.key, w.window, count))
    ///     .collect();
    /// all.sort_by(|a, b| a.0.cmp(&b.0));
    /// assert_eq!(all, vec![("ann".into(), Window::new(0, 5), 2), ("bob".into(), Window::new(4, 4), 1)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V, i64)>> {
        let raw = self.inner.store.with_session(|s| {
            s.find_sessions_range(None, None, 0, i64::MAX)?
                .collect::<freshet_state_store::Result<Vec<_>>>()
        })?;
        self.inner.read_windowed(raw)
    }
}
