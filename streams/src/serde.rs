//! Serdes in the DSL: the ones given explicitly (`Consumed`, `Produced`, `Grouped`,
//! `Materialized`), the ones carried along a stream whose types did not change, and the
//! defaults of the builder's [`SerdeRegistry`], looked up by type.
//!
//! Serdes run only at sources, sinks, repartition topics and stores; between operators
//! records stay typed.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
pub(crate) use freshet_state_store::compact_bytes;
pub(crate) use freshet_state_store::Window;
pub use freshet_state_store::{
    BigEndian, Json, MsgPack, Nullable, RawBytes, Serde, Unit, Utf8, Windowed,
};

/// A shared serde of `T`.
pub type SerdeRef<T> = Arc<dyn Serde<T>>;

/// Default serdes by type, consulted when an operator needs a serde it was not given and
/// cannot carry from upstream (Kafka's `default.key.serde` / `default.value.serde`, but per
/// type). Holds `String` (UTF-8), `Bytes` and `Vec<u8>` (raw), the integers and floats
/// (big-endian, as Kafka), `()` (always null) and `Option<_>` of each; register your own
/// types with [`StreamsBuilder::register_serde`](crate::StreamsBuilder::register_serde).
#[derive(Clone)]
pub struct SerdeRegistry {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for SerdeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerdeRegistry")
            .field("types", &self.by_type.len())
            .finish()
    }
}

impl Default for SerdeRegistry {
    fn default() -> Self {
        let mut r = SerdeRegistry {
            by_type: HashMap::new(),
        };
        r.register_with_option::<String, _>(Utf8);
        r.register_with_option::<Bytes, _>(RawBytes);
        r.register_with_option::<Vec<u8>, _>(RawBytes);
        r.register_with_option::<i16, _>(BigEndian);
        r.register_with_option::<i32, _>(BigEndian);
        r.register_with_option::<i64, _>(BigEndian);
        r.register_with_option::<u16, _>(BigEndian);
        r.register_with_option::<u32, _>(BigEndian);
        r.register_with_option::<u64, _>(BigEndian);
        r.register_with_option::<f32, _>(BigEndian);
        r.register_with_option::<f64, _>(BigEndian);
        r.register::<(), _>(Unit);
        r
    }
}

impl SerdeRegistry {
    /// Makes `serde` the default for `T`.
    pub fn register<T: 'static, S: Serde<T> + 'static>(&mut self, serde: S) {
        let serde: SerdeRef<T> = Arc::new(serde);
        self.by_type.insert(TypeId::of::<T>(), Arc::new(serde));
    }

    /// Makes `serde` the default for `T` and `Nullable(serde)` the one for `Option<T>`.
    pub fn register_with_option<T: 'static, S: Serde<T> + Clone + 'static>(&mut self, serde: S) {
        self.register::<Option<T>, _>(Nullable(serde.clone()));
        self.register::<T, _>(serde);
    }

    /// The default serde of `T`, if one is registered.
    pub fn get<T: 'static>(&self) -> Option<SerdeRef<T>> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|s| s.downcast_ref::<SerdeRef<T>>())
            .cloned()
    }
}

/// A time-windowed key on a topic or in a store: `[key][window start: i64 BE]` (Kafka's
/// `TimeWindowedSerializer`). Reading needs the window size, as Kafka's
/// `TimeWindowedDeserializer` does; the end is `start + size`.
pub struct TimeWindowedSerde<K> {
    inner: SerdeRef<K>,
    window_size: i64,
}

impl<K> std::fmt::Debug for TimeWindowedSerde<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TimeWindowedSerde")
    }
}

impl<K> Clone for TimeWindowedSerde<K> {
    fn clone(&self) -> Self {
        TimeWindowedSerde {
            inner: self.inner.clone(),
            ..*self
        }
    }
}

impl<K> TimeWindowedSerde<K> {
    /// Windowed keys over `inner`, for windows of `window_size` ms.
    pub fn new(inner: SerdeRef<K>, window_size: i64) -> Self {
        TimeWindowedSerde { inner, window_size }
    }
}

impl<K: 'static> Serde<Windowed<K>> for TimeWindowedSerde<K> {
    fn serialize(&self, value: &Windowed<K>) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.serialize_into(value, &mut out)?;
        Ok(out)
    }
    fn partition_bytes(&self, value: &Windowed<K>) -> Result<Option<Vec<u8>>, String> {
        self.inner.serialize_nullable(&value.key)
    }
    fn serialize_into(&self, value: &Windowed<K>, out: &mut Vec<u8>) -> Result<(), String> {
        self.inner.serialize_into(&value.key, out)?;
        out.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(())
    }
    fn serialize_nullable_into(
        &self,
        value: &Windowed<K>,
        out: &mut Vec<u8>,
    ) -> Result<bool, String> {
        self.serialize_into(value, out).map(|()| true)
    }
    fn partition_bytes_into(&self, value: &Windowed<K>, out: &mut Vec<u8>) -> Result<bool, String> {
        self.inner.serialize_nullable_into(&value.key, out)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Windowed<K>, String> {
        let (key, start) = split_tail::<8>(bytes)?;
        let start = i64::from_be_bytes(start);
        Ok(Windowed::new(
            self.inner.deserialize(key)?,
            Window::new(start, start.saturating_add(self.window_size)),
        ))
    }
}

/// A session-windowed key: `[key][end: i64 BE][start: i64 BE]` (Kafka's
/// `SessionKeySchema`).
pub struct SessionWindowedSerde<K> {
    inner: SerdeRef<K>,
}

impl<K> std::fmt::Debug for SessionWindowedSerde<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionWindowedSerde")
    }
}

impl<K> Clone for SessionWindowedSerde<K> {
    fn clone(&self) -> Self {
        SessionWindowedSerde {
            inner: self.inner.clone(),
        }
    }
}

impl<K> SessionWindowedSerde<K> {
    /// Session-windowed keys over `inner`.
    pub fn new(inner: SerdeRef<K>) -> Self {
        SessionWindowedSerde { inner }
    }
}

impl<K: 'static> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, value: &Windowed<K>) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.serialize_into(value, &mut out)?;
        Ok(out)
    }
    fn partition_bytes(&self, value: &Windowed<K>) -> Result<Option<Vec<u8>>, String> {
        self.inner.serialize_nullable(&value.key)
    }
    fn serialize_into(&self, value: &Windowed<K>, out: &mut Vec<u8>) -> Result<(), String> {
        self.inner.serialize_into(&value.key, out)?;
        out.extend_from_slice(&value.window.end.to_be_bytes());
        out.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(())
    }
    fn serialize_nullable_into(
        &self,
        value: &Windowed<K>,
        out: &mut Vec<u8>,
    ) -> Result<bool, String> {
        self.serialize_into(value, out).map(|()| true)
    }
    fn partition_bytes_into(&self, value: &Windowed<K>, out: &mut Vec<u8>) -> Result<bool, String> {
        self.inner.serialize_nullable_into(&value.key, out)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Windowed<K>, String> {
        let (rest, start) = split_tail::<8>(bytes)?;
        let (key, end) = split_tail::<8>(rest)?;
        Ok(Windowed::new(
            self.inner.deserialize(key)?,
            Window::new(i64::from_be_bytes(start), i64::from_be_bytes(end)),
        ))
    }
}

/// Splits `N` bytes off the end.
fn split_tail<const N: usize>(bytes: &[u8]) -> Result<(&[u8], [u8; N]), String> {
    let at = bytes
        .len()
        .checked_sub(N)
        .ok_or_else(|| format!("windowed key of {} bytes is too short", bytes.len()))?;
    let (head, tail) = bytes.split_at(at);
    let mut arr = [0u8; N];
    arr.copy_from_slice(tail);
    Ok((head, arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_keys_use_kafkas_layout() {
        let s = TimeWindowedSerde::new(Arc::new(Utf8) as SerdeRef<String>, 10);
        let w = Windowed::new("a".to_string(), Window::new(5, 15));
        let bytes = s.serialize(&w).unwrap();
        assert_eq!(bytes, [b"a".as_slice(), &5i64.to_be_bytes()].concat());
        assert_eq!(s.deserialize(&bytes).unwrap(), w);

        let s = SessionWindowedSerde::new(Arc::new(Utf8) as SerdeRef<String>);
        let w = Windowed::new("a".to_string(), Window::new(5, 9));
        let bytes = s.serialize(&w).unwrap();
        let expected = [b"a".as_slice(), &9i64.to_be_bytes(), &5i64.to_be_bytes()].concat();
        assert_eq!(bytes, expected);
        assert_eq!(s.deserialize(&bytes).unwrap(), w);
        assert!(s.deserialize(b"short").is_err());
    }

    #[test]
    fn windowed_serdes_write_in_place() {
        let s = TimeWindowedSerde::new(Arc::new(Utf8) as SerdeRef<String>, 10);
        let w = Windowed::new("a".to_string(), Window::new(5, 15));
        let mut out = b"x".to_vec();
        assert!(s.serialize_nullable_into(&w, &mut out).unwrap());
        assert_eq!(out[1..], s.serialize(&w).unwrap()[..]);
        out.clear();
        assert!(s.partition_bytes_into(&w, &mut out).unwrap());
        assert_eq!(out, b"a");
        let s = SessionWindowedSerde::new(Arc::new(Utf8) as SerdeRef<String>);
        let w = Windowed::new("a".to_string(), Window::new(5, 9));
        let mut out = Vec::new();
        s.serialize_into(&w, &mut out).unwrap();
        assert_eq!(out, s.serialize(&w).unwrap());
    }

    #[test]
    fn registry_finds_defaults_by_type() {
        let r = SerdeRegistry::default();
        let s = r.get::<Option<String>>().unwrap();
        assert_eq!(s.serialize_nullable(&None).unwrap(), None);
        assert_eq!(
            s.deserialize_nullable(Some(b"x")).unwrap(),
            Some("x".into())
        );
        assert!(r
            .get::<String>()
            .unwrap()
            .deserialize_nullable(None)
            .is_err());
        assert!(r.get::<std::time::Duration>().is_none());
        // Null is what serializes to no bytes: only `Option::None` and `()`.
        assert!(s.is_null(&None));
        assert!(!s.is_null(&Some(String::new())));
        assert!(r.get::<()>().unwrap().is_null(&()));
        assert!(!r.get::<i64>().unwrap().is_null(&0));
    }
}
