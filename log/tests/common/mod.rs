//! Helpers shared by the crash, corruption, lock and read-only tests: child processes that
//! re-execute the test binary, reading every record of a partition, and finding the batches
//! of a segment file on disk.
//!
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

mod child;
#[allow(unused_imports)] // not every test file spawns children
pub(crate) use child::ChildProc;

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use freshet_log::{FetchOptions, Isolation, Log, StoredRecord};

/// What every test here returns.
pub(crate) type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// Set (to the data dir) in a child process: tells its `#[ignore]`d test to run the workload.
pub(crate) const CHILD_DIR_ENV: &str = "FRESHET_CRASH_CHILD_DIR";

/// Number of kill rounds of a crash test: `FRESHET_CRASH_ROUNDS`, default 20.
pub(crate) fn rounds() -> u64 {
    std::env::var("FRESHET_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(20)
}

/// The data dir a child workload should use, when this process is such a child.
pub(crate) fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_DIR_ENV).map(PathBuf::from)
}

/// A number read from an environment variable the parent set for its child.
pub(crate) fn child_env_u64(name: &str) -> TestResult<u64> {
    let v = std::env::var(name).map_err(|e| format!("{name}: {e}"))?;
    Ok(v.trim().parse().map_err(|e| format!("{name}={v}: {e}"))?)
}

/// Every record of a partition visible under `isolation`, from the log start to the end
/// (the last stable offset for read_committed), fetched in pieces.
pub(crate) fn read_all(
    log: &Log,
    topic: &str,
    partition: u32,
    isolation: Isolation,
) -> TestResult<Vec<StoredRecord>> {
    let options = FetchOptions {
        isolation,
        max_partition_bytes: 256 << 10,
        ..FetchOptions::default()
    };
    let mut pos = log.offsets(topic, partition)?.start;
    let mut out = Vec::new();
    loop {
        let fetched = log.try_fetch(&[(topic.to_string(), partition, pos)], &options)?;
        let Some(f) = fetched.into_iter().next() else {
            return Ok(out);
        };
        if f.next_offset <= pos && f.records.is_empty() {
            return Ok(out);
        }
        pos = f.next_offset;
        out.extend(f.records);
    }
}

/// The directory of one partition of a topic.
pub(crate) fn partition_dir(data_dir: &Path, topic: &str, partition: u32) -> PathBuf {
    data_dir
        .join("topics")
        .join(topic)
        .join(partition.to_string())
}

/// The `.log` files of a partition directory, ascending by base offset.
pub(crate) fn segment_logs(partition_dir: &Path) -> TestResult<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(partition_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    out.sort();
    Ok(out)
}

/// One whole batch found in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSpan {
    /// Byte position in the file.
    pub(crate) pos: u64,
    /// Total bytes, the 12-byte offset and length prefix included.
    pub(crate) len: u64,
    /// The batch's base offset.
    pub(crate) base_offset: i64,
}

/// Bytes of the batch prefix: base offset (8) and batch length (4).
pub(crate) const LOG_OVERHEAD: u64 = 12;
/// Where the CRC field sits in a batch, and the first byte it covers.
pub(crate) const CRC_FIELD: std::ops::Range<u64> = 13..17;

/// The whole batches of a segment file, found by walking the length fields (Kafka's v2
/// layout: base offset i64, batch length i32, then the rest). Stops at a partial batch.
pub(crate) fn batch_spans(bytes: &[u8]) -> Vec<BatchSpan> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + LOG_OVERHEAD as usize <= bytes.len() {
        let mut base = [0u8; 8];
        base.copy_from_slice(&bytes[pos..pos + 8]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[pos + 8..pos + 12]);
        let total = u64::from(u32::from_be_bytes(len)) + LOG_OVERHEAD;
        if pos as u64 + total > bytes.len() as u64 {
            break;
        }
        out.push(BatchSpan {
            pos: pos as u64,
            len: total,
            base_offset: i64::from_be_bytes(base),
        });
        pos += total as usize;
    }
    out
}

/// The batches of a segment file on disk.
pub(crate) fn batches_of(path: &Path) -> TestResult<Vec<BatchSpan>> {
    Ok(batch_spans(&fs::read(path)?))
}

/// A small deterministic mixer (splitmix64), so a child and its parent derive the same
/// contents from the same numbers.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` deterministic bytes derived from `seed`.
pub(crate) fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut s = seed;
    while out.len() < len {
        s = mix(s);
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}
