//! Typed views of byte stores through serdes.

use bytes::Bytes;

use crate::error::{show_key, Error, Result};
use crate::kv::KeyValueStore;
use crate::layers::Timestamped;
use crate::serde::Serde;

/// A key-value store of `K` → `V` over a byte-level [`KeyValueStore`].
///
/// ```
/// use std::sync::Arc;
/// use freshet_state_store::{KvStore, MemoryBackend, MsgPack, TypedKvStore, Utf8};
/// let inner = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
/// let mut store = TypedKvStore::new(inner, Utf8, MsgPack::<u64>::default());
/// store.put(&"ann".to_string(), Some(&3), 1_000)?;
/// assert_eq!(store.get(&"ann".to_string())?.map(|v| v.value), Some(3));
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug)]
pub struct TypedKvStore<S, KS, VS> {
    inner: S,
    keys: KS,
    values: VS,
}

impl<S: KeyValueStore, KS, VS> TypedKvStore<S, KS, VS> {
    /// Wraps a byte store with a key and a value serde.
    pub fn new(inner: S, keys: KS, values: VS) -> Self {
        TypedKvStore {
            inner,
            keys,
            values,
        }
    }

    /// The byte store underneath.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    fn key<K>(&self, key: &K) -> Result<Vec<u8>>
    where
        KS: Serde<K>,
    {
        self.keys.serialize(key).map_err(|reason| Error::Serde {
            store: self.inner.name().to_string(),
            op: "serialize",
            what: "key",
            key: String::new(),
            reason,
        })
    }

    fn value<V>(&self, key: &[u8], v: &Timestamped) -> Result<Timestamped<V>>
    where
        VS: Serde<V>,
    {
        let value = self
            .values
            .deserialize(&v.value)
            .map_err(|reason| Error::Serde {
                store: self.inner.name().to_string(),
                op: "deserialize",
                what: "value of",
                key: show_key(key),
                reason,
            })?;
        Ok(Timestamped {
            value,
            timestamp: v.timestamp,
        })
    }

    /// The value of `key`.
    pub fn get<K, V>(&mut self, key: &K) -> Result<Option<Timestamped<V>>>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        match self.inner.get(&k)? {
            Some(v) => self.value(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value` at `timestamp` (`None` deletes).
    pub fn put<K, V>(&mut self, key: &K, value: Option<&V>, timestamp: i64) -> Result<()>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let k = self.key(key)?;
        let v = match value {
            Some(v) => Some(Timestamped {
                value: Bytes::from(self.values.serialize(v).map_err(|reason| Error::Serde {
                    store: self.inner.name().to_string(),
                    op: "serialize",
                    what: "value of",
                    key: show_key(&k),
                    reason,
                })?),
                timestamp,
            }),
            None => None,
        };
        self.inner.put(Bytes::from(k), v)
    }

    /// Every entry in key-byte order, decoded.
    pub fn all<K, V>(&mut self) -> Result<Vec<(K, Timestamped<V>)>>
    where
        KS: Serde<K>,
        VS: Serde<V>,
    {
        let raw: Vec<(Bytes, Timestamped)> = self.inner.all()?.collect::<Result<_>>()?;
        raw.into_iter()
            .map(|(k, v)| {
                let key = self.keys.deserialize(&k).map_err(|reason| Error::Serde {
                    store: self.inner.name().to_string(),
                    op: "deserialize",
                    what: "key",
                    key: show_key(&k),
                    reason,
                })?;
                Ok((key, self.value(&k, &v)?))
            })
            .collect()
    }
}
