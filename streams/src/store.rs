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

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's kind.
    pub fn kind(&self) -> &StoreKind {
        &self.kind
    }

    /// The key serde the store was declared with, when it is one of `K` (interactive
    /// queries use it).
    pub fn key_serde<K: 'static>(&self) -> Option<SerdeRef<K>> {
        self.key_serde
            .as_ref()
            .and_then(|s| s.downcast_ref::<SerdeRef<K>>())
            .cloned()
    }

    /// The value serde the store was declared with, when it is one of `V`.
    pub fn value_serde<V: 'static>(&self) -> Option<SerdeRef<V>> {
        self.value_serde
            .as_ref()
            .and_then(|s| s.downcast_ref::<SerdeRef<V>>())
            .cloned()
    }

    /// Whether writes go to a changelog topic (on unless disabled).
    pub fn logging_enabled(&self) -> bool {
        self.logging
    }

    /// Whether updates are cached before going downstream.
    pub fn caching_enabled(&self) -> bool {
        self.caching
    }

    /// Turns the changelog off: the store is lost with the local state.
    pub fn with_logging_disabled(mut self) -> StoreBuilder {
        self.logging = false;
        self
    }

    /// Turns the record cache on (Kafka's `withCachingEnabled`).
    pub fn with_caching_enabled(mut self) -> StoreBuilder {
        self.caching = true;
        self
    }

    /// Turns the record cache off.
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
    pub fn get(&self, key: &K) -> Result<Option<(V, i64)>> {
        let k = self.inner.key(key)?;
        let found = self.inner.store.with_kv(|s| s.get(&k))?;
        found.map(|t| self.inner.read(&t)).transpose()
    }

    /// Sets `key` to `value` at `timestamp`.
    pub fn put(&self, key: &K, value: &V, timestamp: i64) -> Result<()> {
        let (k, v) = (self.inner.key(key)?, self.inner.value(value, timestamp)?);
        self.inner.store.with_kv(|s| s.put(k, Some(v)))
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &K) -> Result<()> {
        let k = self.inner.key(key)?;
        self.inner.store.with_kv(|s| s.put(k, None))
    }

    /// Every entry, in key-byte order.
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
    pub fn put(&self, key: &K, value: &V, timestamp: i64, window_start: i64) -> Result<()> {
        let (k, v) = (self.inner.key(key)?, self.inner.value(value, timestamp)?);
        self.inner
            .store
            .with_window(|s| s.put(&k, Some(v), window_start))
    }

    /// `(window start, value, timestamp)` of `key` for windows starting in `[from, to]`.
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
    pub fn put(&self, key: &K, session: Window, value: &V, timestamp: i64) -> Result<()> {
        let (k, v) = (self.inner.key(key)?, self.inner.value(value, timestamp)?);
        self.inner
            .store
            .with_session(|s| s.put(&k, session, Some(v)))
    }

    /// Removes `key`'s `session`.
    pub fn remove(&self, key: &K, session: Window) -> Result<()> {
        let k = self.inner.key(key)?;
        self.inner.store.with_session(|s| s.remove(&k, session))
    }

    /// Sessions of `key` with `end >= earliest_end` and `start <= latest_start`.
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
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V, i64)>> {
        let raw = self.inner.store.with_session(|s| {
            s.find_sessions_range(None, None, 0, i64::MAX)?
                .collect::<freshet_state_store::Result<Vec<_>>>()
        })?;
        self.inner.read_windowed(raw)
    }
}
