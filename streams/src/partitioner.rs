//! Which partition a sink writes a record to: Kafka's `DefaultStreamPartitioner` (murmur2
//! of the serialized key), `WindowedStreamPartitioner` (murmur2 of the base key only, so all
//! windows of a key land together) or a user's partitioner.
//!
//! murmur2 is written here as well as in the log crate because this crate does not depend
//! on the log (architecture: streams depends on state-store only); both are checked against
//! Kafka's test vectors.

/// Kafka's murmur2 (`Utils.murmur2`), byte for byte.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's partition for key bytes: `(murmur2(key) & 0x7fffffff) % partitions`.
///
/// ```
/// assert_eq!(freshet_streams::partition_for_key(b"foobar", 4), 2);
/// ```
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions.max(1)
}

/// Chooses the partition of a record written by a sink or a repartition (Kafka's
/// `StreamPartitioner`). `None` leaves the choice to the default partitioner.
pub trait StreamPartitioner<K, V>: Send + Sync {
    /// The partition of `(key, value)` among `partitions`.
    fn partition(&self, topic: &str, key: &K, value: &V, partitions: u32) -> Option<u32>;
}

impl<K, V, F> StreamPartitioner<K, V> for F
where
    F: Fn(&str, &K, &V, u32) -> Option<u32> + Send + Sync,
{
    fn partition(&self, topic: &str, key: &K, value: &V, partitions: u32) -> Option<u32> {
        self(topic, key, value, partitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_vectors() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
        assert_eq!(partition_for_key(b"a-little-bit-long-string", 3), 2);
        assert_eq!(partition_for_key(&1i32.to_be_bytes(), 8), 0);
    }
}
