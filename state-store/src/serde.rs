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
}

/// UTF-8 strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Serde<String> for Utf8 {
    fn serialize(&self, value: &String) -> Result<Vec<u8>, String> {
        Ok(value.as_bytes().to_vec())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }
}

/// Raw bytes, unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl Serde<Bytes> for RawBytes {
    fn serialize(&self, value: &Bytes) -> Result<Vec<u8>, String> {
        Ok(value.to_vec())
    }
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
            fn serialize(&self, value: &$t) -> Result<Vec<u8>, String> {
                Ok(value.to_be_bytes().to_vec())
            }
            fn deserialize(&self, bytes: &[u8]) -> Result<$t, String> {
                let arr = bytes.try_into().map_err(|_| {
                    format!("expected {} bytes, found {}", std::mem::size_of::<$t>(), bytes.len())
                })?;
                Ok(<$t>::from_be_bytes(arr))
            }
        }
    )*};
}
big_endian!(i32, i64, u32, u64);

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
    fn serialize(&self, value: &T) -> Result<Vec<u8>, String> {
        rmp_serde::to_vec(value).map_err(|e| e.to_string())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}
