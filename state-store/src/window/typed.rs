//! The typed window store: keys and values through serdes, over a byte-level store.

use bytes::Bytes;

use super::{WindowStore, Windowed, WindowedIter};
use crate::error::{show_key, Error, Result};
use crate::layers::Timestamped;
use crate::serde::Serde;

/// A serde failure naming the store and, when known, the key bytes.
pub(crate) fn serde_error(
    store: &str,
    op: &'static str,
    what: &'static str,
    key: Option<&[u8]>,
    reason: String,
) -> Error {
    Error::Serde {
        store: store.to_string(),
        op,
        what,
        key: key.map(show_key).unwrap_or_default(),
        reason,
    }
}

/// Decodes a stored value through a serde, naming store and key on failure.
pub(crate) fn decode_value<V, VS: Serde<V>>(
    store: &str,
    values: &VS,
    key: &[u8],
    v: Timestamped,
) -> Result<Timestamped<V>> {
    let value = values
        .deserialize(&v.value)
        .map_err(|reason| serde_error(store, "deserialize", "value of", Some(key), reason))?;
    Ok(Timestamped {
        value,
        timestamp: v.timestamp,
    })
}

/// Decodes a windowed key and its value.
pub(crate) fn decode_windowed<K, V, KS: Serde<K>, VS: Serde<V>>(
    store: &str,
    keys: &KS,
    values: &VS,
    item: Result<(Windowed<Bytes>, Timestamped)>,
) -> Result<(Windowed<K>, Timestamped<V>)> {
    let (w, v) = item?;
    let key = keys
        .deserialize(&w.key)
        .map_err(|reason| serde_error(store, "deserialize", "key", Some(&w.key), reason))?;
    let value = decode_value(store, values, &w.key, v)?;
    Ok((
        Windowed {
            key,
            window: w.window,
        },
        value,
    ))
}

/// A window store of `K` → `V` over a byte-level [`WindowStore`].
///
/// ```
/// use std::sync::Arc;
/// use freshet_state_store::{
///     BigEndian, MemoryBackend, SegmentedWindowStore, TypedWindowStore, Utf8, Window,
///     WindowStoreOptions,
/// };
/// let inner = SegmentedWindowStore::open(
///     "counts", Arc::new(MemoryBackend::new()), None, WindowStoreOptions::new(600_000, 60_000))?;
/// let mut store = TypedWindowStore::new(inner, Utf8, BigEndian);
/// store.put(&"ann".to_string(), Some(&3u64), 1_000, 0)?;
/// let all: Vec<_> = store.all::<String, u64>()?.collect::<Result<_, _>>()?;
/// assert_eq!(all[0].0.window, Window { start: 0, end: 60_000 });
/// assert_eq!(all[0].1.value, 3);
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug)]
pub struct TypedWindowStore<S, KS, VS> {
    inner: S,
    keys: KS,
    values: VS,
}

impl<S: WindowStore, KS, VS> TypedWindowStore<S, KS, VS> {
    /// Wraps a byte store with a key and a value serde.
    pub fn new(inner: S, keys: KS, values: VS) -> Self {
        TypedWindowStore {
            inner,
            keys,
            values,
        }
    }

    /// The byte store underneath.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The byte store underneath, for reads.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn key<K>(&self, key: &K) -> Result<Vec<u8>>
    where
        KS: Serde<K>,
    {
        self.keys
            .serialize(key)
            .map_err(|reason| serde_error(self.inner.name(), "serialize", "key", None, reason))
    }

    /// Puts `value` (at `timestamp`) for `key` in the window starting at `window_start`;
    /// `None` deletes.
    pub fn put<K, V>(
        &mut self,
        key: &K,
        value: Option<&V>,
        timestamp: i64,
        window_start: i64,
    ) -> Result<()>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        let v = match value {
            Some(v) => Some(Timestamped {
                value: Bytes::from(self.values.serialize(v).map_err(|reason| {
                    serde_error(self.inner.name(), "serialize", "value of", Some(&k), reason)
                })?),
                timestamp,
            }),
            None => None,
        };
        self.inner.put(&k, v, window_start)
    }

    /// The value of `key` in the window starting at `window_start`.
    pub fn fetch_one<K, V>(&self, key: &K, window_start: i64) -> Result<Option<Timestamped<V>>>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        match self.inner.fetch_one(&k, window_start)? {
            Some(v) => decode_value(self.inner.name(), &self.values, &k, v).map(Some),
            None => Ok(None),
        }
    }

    fn values_of<'a, K, V>(
        &'a self,
        key: &K,
        time_from: i64,
        time_to: i64,
        reverse: bool,
    ) -> Result<impl Iterator<Item = Result<(i64, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        let raw = if reverse {
            self.inner.backward_fetch(&k, time_from, time_to)?
        } else {
            self.inner.fetch(&k, time_from, time_to)?
        };
        Ok(raw.map(move |item| {
            let (t, v) = item?;
            Ok((t, decode_value(self.inner.name(), &self.values, &k, v)?))
        }))
    }

    /// Values of `key` in windows starting in `[time_from, time_to]`, ascending.
    pub fn fetch<'a, K, V>(
        &'a self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(i64, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        self.values_of(key, time_from, time_to, false)
    }

    /// Values of `key` in windows starting in `[time_from, time_to]`, descending.
    pub fn backward_fetch<'a, K, V>(
        &'a self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(i64, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        self.values_of(key, time_from, time_to, true)
    }

    fn windowed<'a, K, V>(
        &'a self,
        raw: WindowedIter<'a>,
    ) -> impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        raw.map(move |item| decode_windowed(self.inner.name(), &self.keys, &self.values, item))
    }

    /// Windows of keys in `[key_from, key_to]` (`None`: unbounded) starting in
    /// `[time_from, time_to]`, in the byte store's order.
    pub fn fetch_range<'a, K, V>(
        &'a self,
        key_from: Option<&K>,
        key_to: Option<&K>,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let kf = key_from.map(|k| self.key(k)).transpose()?;
        let kt = key_to.map(|k| self.key(k)).transpose()?;
        let raw = self
            .inner
            .fetch_range(kf.as_deref(), kt.as_deref(), time_from, time_to)?;
        Ok(self.windowed(raw))
    }

    /// [`TypedWindowStore::fetch_range`] in reverse.
    pub fn backward_fetch_range<'a, K, V>(
        &'a self,
        key_from: Option<&K>,
        key_to: Option<&K>,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let kf = key_from.map(|k| self.key(k)).transpose()?;
        let kt = key_to.map(|k| self.key(k)).transpose()?;
        let raw =
            self.inner
                .backward_fetch_range(kf.as_deref(), kt.as_deref(), time_from, time_to)?;
        Ok(self.windowed(raw))
    }

    /// Every window starting in `[time_from, time_to]`.
    pub fn fetch_all<'a, K, V>(
        &'a self,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.fetch_all(time_from, time_to)?))
    }

    /// [`TypedWindowStore::fetch_all`] in reverse.
    pub fn backward_fetch_all<'a, K, V>(
        &'a self,
        time_from: i64,
        time_to: i64,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.backward_fetch_all(time_from, time_to)?))
    }

    /// Every live window.
    pub fn all<'a, K, V>(
        &'a self,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.all()?))
    }

    /// Every live window, in reverse.
    pub fn backward_all<'a, K, V>(
        &'a self,
    ) -> Result<impl Iterator<Item = Result<(Windowed<K>, Timestamped<V>)>> + 'a>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        Ok(self.windowed(self.inner.backward_all()?))
    }
}
