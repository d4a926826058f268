//! Serdes: how typed keys and values become bytes. Key bytes must be deterministic: they
//! decide partitions and store order.

use std::marker::PhantomData;

use bytes::Bytes;

/// Turns a `T` into bytes and back.
pub trait Serde<T>: Send + Sync + std::fmt::Debug {
    /// Encodes a value.
    fn serialize(&self, value: &T) -> Result<Vec<u8>, String>;
    /// Decodes a value.
    fn deserialize(&self, bytes: &[u8]) -> Result<T, String>;
    /// Encodes a value that may stand for null (a record with no key or no value): `None`
    /// is null. Only serdes of types that have a null (`Option<T>`, `()`) return `None`.
    fn serialize_nullable(&self, value: &T) -> Result<Option<Vec<u8>>, String> {
        self.serialize(value).map(Some)
    }
    /// The bytes a partitioner hashes for `value` (`None`: null, the producer decides): the
    /// serialized value, except for windowed keys, whose windows must all land in the
    /// partition of the base key (Kafka's `WindowedStreamPartitioner`).
    fn partition_bytes(&self, value: &T) -> Result<Option<Vec<u8>>, String> {
        self.serialize_nullable(value)
    }
    /// Whether [`partition_bytes`](Serde::partition_bytes) is always the serialized value
    /// itself, so a writer may leave the default partitioner to hash the bytes it wrote
    /// instead of asking for them again. False unless the serde says so (the built-in
    /// ones, except the windowed keys', do).
    fn partitions_by_serialized(&self) -> bool {
        false
    }
    /// Whether `value` is null — what [`serialize_nullable`](Serde::serialize_nullable)
    /// writes as `None`. Operators ask it to drop null keys and values as Kafka does, without
    /// serializing; the default serializes, the built-in serdes answer at once.
    fn is_null(&self, value: &T) -> bool {
        matches!(self.serialize_nullable(value), Ok(None))
    }
    /// Decodes a key or value that may be null (`None`). Types without a null refuse it,
    /// so a null reaches user code only as `Option<T>` or `()`.
    fn deserialize_nullable(&self, bytes: Option<&[u8]>) -> Result<T, String> {
        match bytes {
            Some(bytes) => self.deserialize(bytes),
            None => Err("null where a value is required (declare the type as Option<T>)".into()),
        }
    }
    /// Appends what [`serialize`](Serde::serialize) returns to `out`. Writers of many
    /// records (sinks) encode them all into one buffer this way instead of a vector each;
    /// serdes override it to write in place. On error `out` may hold part of the value.
    fn serialize_into(&self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&self.serialize(value)?);
        Ok(())
    }
    /// Appends what [`serialize_nullable`](Serde::serialize_nullable) returns to `out`;
    /// false (nothing appended) for null. As [`serialize_into`](Serde::serialize_into).
    fn serialize_nullable_into(&self, value: &T, out: &mut Vec<u8>) -> Result<bool, String> {
        Ok(match self.serialize_nullable(value)? {
            Some(bytes) => {
                out.extend_from_slice(&bytes);
                true
            }
            None => false,
        })
    }
    /// Appends what [`partition_bytes`](Serde::partition_bytes) returns to `out`; false
    /// (nothing appended) for null. As [`serialize_into`](Serde::serialize_into).
    fn partition_bytes_into(&self, value: &T, out: &mut Vec<u8>) -> Result<bool, String> {
        Ok(match self.partition_bytes(value)? {
            Some(bytes) => {
                out.extend_from_slice(&bytes);
                true
            }
            None => false,
        })
    }
}

/// Values up to this many bytes get one allocation shared with their reference count.
const SMALL: usize = 15;
/// Up to this many, one allocation of the next size class.
const MEDIUM: usize = 55;

/// A small value's bytes, kept inline in the allocation `Bytes::from_owner` makes.
struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// `None` when `bytes` does not fit.
    fn new(bytes: &[u8]) -> Option<Inline<N>> {
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&l| usize::from(l) <= N)?;
        let mut inline = Inline {
            len,
            bytes: [0u8; N],
        };
        inline.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(inline)
    }
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// A copy of `bytes` as stores and the record cache keep keys and values. A small one (an
/// aggregate, a window key) lives in one allocation together with its reference count, so
/// that keeping it, cloning it (the cache, the write buffer, the changelog and the backend
/// batch each take a handle) and reading it touch one cache line and allocate nothing after
/// the first. `Bytes::from(Vec)` would allocate a separate shared header at the first clone.
///
/// ```
/// let b = freshet_state_store::compact_bytes(&42i64.to_be_bytes());
/// assert_eq!(&b[..], &42i64.to_be_bytes());
/// ```
pub fn compact_bytes(bytes: &[u8]) -> Bytes {
    if let Some(inline) = Inline::<SMALL>::new(bytes) {
        return Bytes::from_owner(inline);
    }
    if let Some(inline) = Inline::<MEDIUM>::new(bytes) {
        return Bytes::from_owner(inline);
    }
    Bytes::copy_from_slice(bytes)
}

/// Serdes of `Option<T>` over a serde of `T`: `None` is null (no key, or a tombstone value).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nullable<S>(pub S);

impl<T, S: Serde<T>> Serde<Option<T>> for Nullable<S> {
    fn partitions_by_serialized(&self) -> bool {
        true
    }
    fn is_null(&self, value: &Option<T>) -> bool {
        value.is_none()
    }
    fn serialize(&self, value: &Option<T>) -> Result<Vec<u8>, String> {
        match value {
            Some(v) => self.0.serialize(v),
            None => Err("null cannot be written here".into()),
        }
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Option<T>, String> {
        self.0.deserialize(bytes).map(Some)
    }
    fn serialize_nullable(&self, value: &Option<T>) -> Result<Option<Vec<u8>>, String> {
        value.as_ref().map(|v| self.0.serialize(v)).transpose()
    }
    fn serialize_into(&self, value: &Option<T>, out: &mut Vec<u8>) -> Result<(), String> {
        match value {
            Some(v) => self.0.serialize_into(v, out),
            None => Err("null cannot be written here".into()),
        }
    }
    fn serialize_nullable_into(
        &self,
        value: &Option<T>,
        out: &mut Vec<u8>,
    ) -> Result<bool, String> {
        match value {
            Some(v) => self.0.serialize_into(v, out).map(|()| true),
            None => Ok(false),
        }
    }
    fn partition_bytes_into(&self, value: &Option<T>, out: &mut Vec<u8>) -> Result<bool, String> {
        self.serialize_nullable_into(value, out)
    }
    fn deserialize_nullable(&self, bytes: Option<&[u8]>) -> Result<Option<T>, String> {
        bytes.map(|b| self.0.deserialize(b)).transpose()
    }
}

/// The unit type: always null when written, anything when read (Kafka's `Serdes.Void`, for
/// topics whose keys do not matter).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unit;

impl Serde<()> for Unit {
    fn partitions_by_serialized(&self) -> bool {
        true
    }
    fn is_null(&self, _value: &()) -> bool {
        true
    }
    fn serialize(&self, _value: &()) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
    fn deserialize(&self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn serialize_nullable(&self, _value: &()) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    fn serialize_into(&self, _value: &(), _out: &mut Vec<u8>) -> Result<(), String> {
        Ok(())
    }
    fn serialize_nullable_into(&self, _value: &(), _out: &mut Vec<u8>) -> Result<bool, String> {
        Ok(false)
    }
    fn partition_bytes_into(&self, _value: &(), _out: &mut Vec<u8>) -> Result<bool, String> {
        Ok(false)
    }
    fn deserialize_nullable(&self, _bytes: Option<&[u8]>) -> Result<(), String> {
        Ok(())
    }
}

/// JSON via serde_json.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> std::fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Json")
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json(PhantomData)
    }
}

impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        Json(PhantomData)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Serde<T> for Json<T> {
    fn partitions_by_serialized(&self) -> bool {
        true
    }
    fn is_null(&self, _value: &T) -> bool {
        false
    }
    fn serialize(&self, value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The `*_into` methods of a serde without a null whose encoding of `$v` is the byte
/// slice `$bytes`: written in place, never null.
macro_rules! write_in_place {
    ($t:ty, $v:ident => $bytes:expr) => {
        fn serialize_into(&self, $v: &$t, out: &mut Vec<u8>) -> Result<(), String> {
            out.extend_from_slice($bytes);
            Ok(())
        }
        fn serialize_nullable_into(&self, $v: &$t, out: &mut Vec<u8>) -> Result<bool, String> {
            out.extend_from_slice($bytes);
            Ok(true)
        }
        fn partition_bytes_into(&self, $v: &$t, out: &mut Vec<u8>) -> Result<bool, String> {
            out.extend_from_slice($bytes);
            Ok(true)
        }
        fn partitions_by_serialized(&self) -> bool {
            true
        }
    };
}

/// UTF-8 strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Serde<String> for Utf8 {
    fn is_null(&self, _value: &String) -> bool {
        false
    }
    fn serialize(&self, value: &String) -> Result<Vec<u8>, String> {
        Ok(value.as_bytes().to_vec())
    }
    write_in_place!(String, value => value.as_bytes());
    fn deserialize(&self, bytes: &[u8]) -> Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }
}

/// Raw bytes, unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl Serde<Bytes> for RawBytes {
    fn is_null(&self, _value: &Bytes) -> bool {
        false
    }
    fn serialize(&self, value: &Bytes) -> Result<Vec<u8>, String> {
        Ok(value.to_vec())
    }
    write_in_place!(Bytes, value => value);
    fn deserialize(&self, bytes: &[u8]) -> Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

/// Big-endian integers, as Kafka's serializers write them.
#[derive(Debug, Clone, Copy, Default)]
pub struct BigEndian;

macro_rules! big_endian {
    ($($t:ty),*) => {$(
        impl Serde<$t> for BigEndian {
    fn is_null(&self, _value: &$t) -> bool {
        false
    }
            fn serialize(&self, value: &$t) -> Result<Vec<u8>, String> {
                Ok(value.to_be_bytes().to_vec())
            }
            write_in_place!($t, value => &value.to_be_bytes());
            fn deserialize(&self, bytes: &[u8]) -> Result<$t, String> {
                let arr = bytes.try_into().map_err(|_| {
                    format!("expected {} bytes, found {}", std::mem::size_of::<$t>(), bytes.len())
                })?;
                Ok(<$t>::from_be_bytes(arr))
            }
        }
    )*};
}
big_endian!(i16, i32, i64, u16, u32, u64, f32, f64);

/// MessagePack via rmp-serde: the default for user structs.
pub struct MsgPack<T>(PhantomData<fn() -> T>);

impl<T> std::fmt::Debug for MsgPack<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MsgPack")
    }
}

impl<T> Default for MsgPack<T> {
    fn default() -> Self {
        MsgPack(PhantomData)
    }
}

impl<T> Clone for MsgPack<T> {
    fn clone(&self) -> Self {
        MsgPack(PhantomData)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Serde<T> for MsgPack<T> {
    fn partitions_by_serialized(&self) -> bool {
        true
    }
    fn is_null(&self, _value: &T) -> bool {
        false
    }
    fn serialize(&self, value: &T) -> Result<Vec<u8>, String> {
        rmp_serde::to_vec(value).map_err(|e| e.to_string())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl Serde<Vec<u8>> for RawBytes {
    fn is_null(&self, _value: &Vec<u8>) -> bool {
        false
    }
    fn serialize(&self, value: &Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(value.clone())
    }
    write_in_place!(Vec<u8>, value => value);
    fn deserialize(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        Ok(bytes.to_vec())
    }
}

impl<T> Serde<T> for std::sync::Arc<dyn Serde<T>> {
    fn partitions_by_serialized(&self) -> bool {
        (**self).partitions_by_serialized()
    }
    fn is_null(&self, value: &T) -> bool {
        (**self).is_null(value)
    }
    fn serialize(&self, value: &T) -> Result<Vec<u8>, String> {
        (**self).serialize(value)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, String> {
        (**self).deserialize(bytes)
    }
    fn serialize_nullable(&self, value: &T) -> Result<Option<Vec<u8>>, String> {
        (**self).serialize_nullable(value)
    }
    fn deserialize_nullable(&self, bytes: Option<&[u8]>) -> Result<T, String> {
        (**self).deserialize_nullable(bytes)
    }
    fn partition_bytes(&self, value: &T) -> Result<Option<Vec<u8>>, String> {
        (**self).partition_bytes(value)
    }
    fn serialize_into(&self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        (**self).serialize_into(value, out)
    }
    fn serialize_nullable_into(&self, value: &T, out: &mut Vec<u8>) -> Result<bool, String> {
        (**self).serialize_nullable_into(value, out)
    }
    fn partition_bytes_into(&self, value: &T, out: &mut Vec<u8>) -> Result<bool, String> {
        (**self).partition_bytes_into(value, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_bytes_copy_any_length() {
        for len in [0, 1, 8, 15, 16, 47, 55, 56, 255, 256, 300] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let b = compact_bytes(&v);
            assert_eq!(&b[..], &v[..]);
            let c = b.clone();
            drop(b);
            assert_eq!(&c[..], &v[..]);
        }
    }
}
