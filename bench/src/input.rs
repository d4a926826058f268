//! The shared input of BENCHMARKS.md: record `i` of `0..N`.

/// Distinct keys (`K`).
pub(crate) const KEYS: u64 = 10_000;
/// Event time of record 0 (`T0`), a multiple of 10 s.
pub(crate) const T0: i64 = 1_700_000_000_000;
/// The input topic.
pub(crate) const TOPIC: &str = "input";
/// Partitions of the input topic.
pub(crate) const PARTITIONS: u32 = 4;

/// Record `i`'s key: `i % K` as a big-endian `u64`.
pub(crate) fn key(i: u64) -> [u8; 8] {
    (i % KEYS).to_be_bytes()
}

/// Record `i`'s value: `i` as a big-endian `u64`.
pub(crate) fn value(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Record `i`'s timestamp: 100 records per millisecond from `T0`.
pub(crate) fn timestamp(i: u64) -> i64 {
    T0 + (i / 100) as i64
}

/// What reading every record back must add up to; both sides of a benchmark fold the
/// records they read into one and compare it with [`Checksum::expected`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Checksum {
    /// Records read.
    pub(crate) count: u64,
    /// Wrapping sum of the keys (as big-endian `u64`).
    pub(crate) keys: u64,
    /// Wrapping sum of the values (as big-endian `u64`).
    pub(crate) values: u64,
    /// Wrapping sum of the timestamps.
    pub(crate) timestamps: i64,
}

impl Checksum {
    /// The checksum of the whole input of `n` records.
    pub(crate) fn expected(n: u64) -> Checksum {
        let mut c = Checksum::default();
        for i in 0..n {
            c.add(&key(i), &value(i), timestamp(i));
        }
        c
    }

    /// Folds one record in; keys and values that are not 8 bytes count as 0.
    #[inline]
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8], timestamp: i64) {
        self.count += 1;
        self.keys = self.keys.wrapping_add(be_u64(key));
        self.values = self.values.wrapping_add(be_u64(value));
        self.timestamps = self.timestamps.wrapping_add(timestamp);
    }
}

/// An 8-byte slice as a big-endian `u64`, or 0 when it is not 8 bytes.
#[inline]
pub(crate) fn be_u64(b: &[u8]) -> u64 {
    <[u8; 8]>::try_from(b).map_or(0, u64::from_be_bytes)
}
