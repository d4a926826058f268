//! Interactive queries: typed, read-only views over the **committed** state of a store in
//! the app's local tasks (Kafka's `KafkaStreams#store`).
//!
//! A key is looked up in the task of its partition — murmur2 of the key's serialized bytes
//! over the store's task count, as the records were routed — and only there. A view reads
//! what was applied to sled (never a write buffer or an uncommitted write): under
//! at-least-once that is the last commit, under exactly-once committed writes reach sled at
//! most a second after their commit while the thread is busy (at once when it is idle). Calls fail with
//! [`Error::InvalidState`] while the app is not `RUNNING` or `REBALANCING`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use freshet_state_store::{
    Backend, ReadOnlyKeyValueView, ReadOnlySessionView, ReadOnlyWindowView, Timestamped,
};
use freshet_streams::{partition_for_key, SerdeRef, Window, Windowed};

use crate::error::{Error, Result};
use crate::state::{AppState, StateMachine};

/// Whether the task of a partition is open in this instance now.
pub(crate) type LocalTasks = Arc<dyn Fn(u32) -> bool + Send + Sync>;

/// What every typed view needs: the store, its serdes, its task count, which of its tasks
/// are local now, and the app's state.
struct Common<K, V> {
    store: String,
    partitions: u32,
    local: LocalTasks,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
    state: Arc<StateMachine>,
}

impl<K, V> Clone for Common<K, V> {
    fn clone(&self) -> Self {
        Common {
            store: self.store.clone(),
            partitions: self.partitions,
            local: self.local.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            state: self.state.clone(),
        }
    }
}

impl<K, V> Common<K, V> {
    fn check(&self) -> Result<()> {
        let state = self.state.get();
        if state.is_running_or_rebalancing() {
            Ok(())
        } else {
            Err(Error::InvalidState {
                what: "an interactive query",
                state,
            })
        }
    }

    /// The view of partition `p`, while its task is local (it may have moved to another
    /// instance since the view was made).
    fn view<'a, T>(&self, views: &'a BTreeMap<u32, T>, p: u32) -> Option<&'a T> {
        views.get(&p).filter(|_| (self.local)(p))
    }

    /// The views of the partitions whose tasks are local now.
    fn local_views<'a, T>(&self, views: &'a BTreeMap<u32, T>) -> impl Iterator<Item = &'a T> {
        let local = self.local.clone();
        views
            .iter()
            .filter(move |(p, _)| local(**p))
            .map(|(_, v)| v)
    }

    fn serde_err(&self, reason: String) -> Error {
        Error::Serde {
            store: self.store.clone(),
            reason,
        }
    }

    fn key_bytes(&self, key: &K) -> Result<Vec<u8>> {
        self.keys.serialize(key).map_err(|e| self.serde_err(e))
    }

    /// The partition (task) holding `key`.
    fn partition_of(&self, key: &K) -> Result<u32> {
        let bytes = self
            .keys
            .partition_bytes(key)
            .map_err(|e| self.serde_err(e))?
            .ok_or_else(|| self.serde_err("a null key has no partition".into()))?;
        Ok(partition_for_key(&bytes, self.partitions))
    }

    fn key(&self, bytes: &[u8]) -> Result<K> {
        self.keys.deserialize(bytes).map_err(|e| self.serde_err(e))
    }

    fn value(&self, v: &Timestamped) -> Result<V> {
        self.values
            .deserialize(&v.value)
            .map_err(|e| self.serde_err(e))
    }
}

/// A read-only, typed key-value store over the committed state of the local tasks (see
/// the [crate docs](crate#interactive-queries)).
pub struct KeyValueStoreView<K, V> {
    common: Common<K, V>,
    views: BTreeMap<u32, ReadOnlyKeyValueView>,
}

impl<K, V> fmt::Debug for KeyValueStoreView<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValueStoreView")
            .field("store", &self.common.store)
            .field("partitions", &self.views.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K, V> Clone for KeyValueStoreView<K, V> {
    fn clone(&self) -> Self {
        KeyValueStoreView {
            common: self.common.clone(),
            views: self.views.clone(),
        }
    }
}

impl<K: 'static, V: 'static> KeyValueStoreView<K, V> {
    pub(crate) fn new(
        store: &str,
        partitions: u32,
        backends: BTreeMap<u32, Arc<dyn Backend>>,
        local: LocalTasks,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        state: Arc<StateMachine>,
    ) -> Result<Self> {
        let mut views = BTreeMap::new();
        for (p, b) in backends {
            views.insert(p, ReadOnlyKeyValueView::open(b, store)?);
        }
        Ok(KeyValueStoreView {
            common: Common {
                store: store.to_string(),
                partitions,
                local,
                keys,
                values,
                state,
            },
            views,
        })
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.common.store
    }

    /// The committed value of `key` (`None` when absent, or when its task is not local).
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        Ok(self.get_with_timestamp(key)?.map(|(v, _)| v))
    }

    /// The committed value of `key` with its timestamp.
    pub fn get_with_timestamp(&self, key: &K) -> Result<Option<(V, i64)>> {
        self.common.check()?;
        let p = self.common.partition_of(key)?;
        let Some(view) = self.common.view(&self.views, p) else {
            return Ok(None);
        };
        let k = self.common.key_bytes(key)?;
        match view.get(&k)? {
            Some(v) => Ok(Some((self.common.value(&v)?, v.timestamp))),
            None => Ok(None),
        }
    }

    /// Every committed entry of the local tasks, task by task, each in key-byte order.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.common.check()?;
        let mut out = Vec::new();
        for view in self.common.local_views(&self.views) {
            for item in view.all()? {
                let (k, v) = item?;
                out.push((self.common.key(&k)?, self.common.value(&v)?));
            }
        }
        Ok(out)
    }

    /// Committed entries with key bytes in `[from, to]` (both serialized with the store's
    /// key serde), task by task.
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        self.common.check()?;
        let (f, t) = (self.common.key_bytes(from)?, self.common.key_bytes(to)?);
        let mut out = Vec::new();
        for view in self.common.local_views(&self.views) {
            for item in view.range(&f, &t)? {
                let (k, v) = item?;
                out.push((self.common.key(&k)?, self.common.value(&v)?));
            }
        }
        Ok(out)
    }

    /// About how many committed entries the local tasks hold.
    pub fn approximate_num_entries(&self) -> Result<u64> {
        self.common.check()?;
        let mut n = 0;
        for view in self.common.local_views(&self.views) {
            n += view.approximate_num_entries()?;
        }
        Ok(n)
    }
}

/// A read-only, typed window store over the committed state of the local tasks.
pub struct WindowStoreView<K, V> {
    common: Common<K, V>,
    views: BTreeMap<u32, ReadOnlyWindowView>,
}

impl<K, V> fmt::Debug for WindowStoreView<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowStoreView")
            .field("store", &self.common.store)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> WindowStoreView<K, V> {
    pub(crate) fn new(
        store: &str,
        partitions: u32,
        views: BTreeMap<u32, ReadOnlyWindowView>,
        local: LocalTasks,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        state: Arc<StateMachine>,
    ) -> Self {
        WindowStoreView {
            common: Common {
                store: store.to_string(),
                partitions,
                local,
                keys,
                values,
                state,
            },
            views,
        }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.common.store
    }

    /// `(window start, value)` of `key` for windows starting in `[from, to]` (ms), by
    /// ascending start (Kafka's `fetch(key, timeFrom, timeTo)`).
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>> {
        self.common.check()?;
        let p = self.common.partition_of(key)?;
        let Some(view) = self.common.view(&self.views, p) else {
            return Ok(Vec::new());
        };
        let k = self.common.key_bytes(key)?;
        view.fetch(&k, from, to)?
            .map(|item| {
                let (start, v) = item?;
                Ok((start, self.common.value(&v)?))
            })
            .collect()
    }

    /// Every committed window of the local tasks: `(windowed key, value)`.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        self.common.check()?;
        let mut out = Vec::new();
        for view in self.common.local_views(&self.views) {
            for item in view.all()? {
                let (w, v) = item?;
                out.push((
                    Windowed::new(self.common.key(&w.key)?, w.window),
                    self.common.value(&v)?,
                ));
            }
        }
        Ok(out)
    }
}

/// A read-only, typed session store over the committed state of the local tasks.
pub struct SessionStoreView<K, V> {
    common: Common<K, V>,
    views: BTreeMap<u32, ReadOnlySessionView>,
}

impl<K, V> fmt::Debug for SessionStoreView<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStoreView")
            .field("store", &self.common.store)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> SessionStoreView<K, V> {
    pub(crate) fn new(
        store: &str,
        partitions: u32,
        views: BTreeMap<u32, ReadOnlySessionView>,
        local: LocalTasks,
        keys: SerdeRef<K>,
        values: SerdeRef<V>,
        state: Arc<StateMachine>,
    ) -> Self {
        SessionStoreView {
            common: Common {
                store: store.to_string(),
                partitions,
                local,
                keys,
                values,
                state,
            },
            views,
        }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.common.store
    }

    /// Every committed session of `key`: `(session window, value)` (Kafka's `fetch(key)`).
    pub fn fetch(&self, key: &K) -> Result<Vec<(Window, V)>> {
        self.common.check()?;
        let p = self.common.partition_of(key)?;
        let Some(view) = self.common.view(&self.views, p) else {
            return Ok(Vec::new());
        };
        let k = self.common.key_bytes(key)?;
        view.fetch(&k)?
            .map(|item| {
                let (w, v) = item?;
                Ok((w.window, self.common.value(&v)?))
            })
            .collect()
    }
}

/// Whether `state` serves queries (for callers building views).
pub(crate) fn serves_queries(state: AppState) -> bool {
    state.is_running_or_rebalancing()
}
