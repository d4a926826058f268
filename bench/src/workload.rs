//! The streams workloads W1–W4 of `shared/BENCHMARKS.md`: their input, their pipelines
//! written with the public DSL, the check of their results, and the plain-loop baseline.
//!
//! Each run of either side gets a fresh embedded [`Log`] in its own directory, loaded with
//! the input *before* the clock starts ([`preload`]):
//!
//! - record `i` of `0..N`: key `i % K`, value `i` (big-endian `u64`s), timestamp
//!   `T0 + i / 100` ms, to topic `input` (4 partitions, Kafka's default partitioner);
//! - for W2 and W3, one closer record per partition at `T0 + N/100 + 60 s` with a key ≥ K
//!   that lands in that partition, so every partition's stream time passes every data
//!   window's end; the checks ignore keys ≥ K.
//!
//! freshet's side ([`run_freshet`]) runs the workload's [`Topology`] through
//! [`StreamsApp`] with sled state in the bounded mode and times the app's start until
//! every input record is processed and committed (`wait_until_caught_up`); closing the app
//! (which flushes sled) is timed separately and not counted. The baseline
//! ([`run_baseline`]) is one plain loop: the log's [`Consumer`](freshet_log::Consumer)
//! over the four input partitions, the workload's logic on `HashMap`s, results appended to
//! `out` with `acks=written` in batches of up to 10,000 records (as the stream threads
//! append their outputs). Both sides' outputs are checked by the same rule
//! ([`Workload::check`]); a wrong result is an error, not a number.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use freshet_log::{
    partition_for_key, Acks, FetchOptions, Isolation, Log, RecordRef, SeekTo, StoredRecord,
    TopicConfig,
};
use freshet_runtime::{ProcessingGuarantee, StreamsApp, StreamsConfig};
use freshet_streams::{BufferConfig, StreamsBuilder, Suppressed, TimeWindows, Topology};

use crate::measure::{peak_rss_bytes, reset_peak_rss, timed, Sample};
use crate::BoxError;

/// The input topic.
pub const INPUT: &str = "input";
/// The output topic of every workload.
pub const OUTPUT: &str = "out";
/// Partitions of the input topic (and of the baseline's output topic).
pub const PARTITIONS: u32 = 4;
/// Event time of record 0 (`T0`), a multiple of 10 s.
pub const T0: i64 = 1_700_000_000_000;
/// How far after the last data record the closer records are stamped.
pub const CLOSER_DELAY_MS: i64 = 60_000;
/// W2's tumbling window size.
pub const W2_WINDOW_MS: i64 = 10_000;
/// W3's hopping window size.
pub const W3_WINDOW_MS: i64 = 60_000;
/// W3's hopping window advance.
pub const W3_ADVANCE_MS: i64 = 10_000;
/// W4's keys: `value % 1000`.
pub const W4_KEYS: u64 = 1_000;

/// Records per partition in one append while loading the input.
const LOAD_BATCH: usize = 32_768;
/// Outputs the baseline buffers before appending them (the stream threads' limit).
const OUT_BATCH: usize = 10_000;

/// The shared input of W1–W4: `records` records over `keys` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// `N`.
    pub records: u64,
    /// `K`.
    pub keys: u64,
    /// Records per millisecond of event time: 100 in BENCHMARKS.md. The CI-sized tests use
    /// fewer so that a small input still spans several windows.
    pub records_per_ms: u64,
}

impl Input {
    /// BENCHMARKS.md's input: `records` records, `keys` keys, 100 records per ms.
    pub fn new(records: u64, keys: u64) -> Input {
        Input {
            records,
            keys: keys.max(1),
            records_per_ms: 100,
        }
    }

    /// Record `i`'s key: `i % K`.
    pub fn key(&self, i: u64) -> u64 {
        i % self.keys
    }

    /// Record `i`'s timestamp: `T0 + i / records_per_ms`.
    pub fn timestamp(&self, i: u64) -> i64 {
        T0 + (i / self.records_per_ms.max(1)) as i64
    }

    /// The closer records' timestamp: `T0 + N / records_per_ms + 60 s`.
    pub fn closer_timestamp(&self) -> i64 {
        T0 + (self.records / self.records_per_ms.max(1)) as i64 + CLOSER_DELAY_MS
    }

    /// One key ≥ K per partition, the smallest landing in that partition.
    pub fn closer_keys(&self) -> Vec<u64> {
        let mut keys = vec![None; PARTITIONS as usize];
        let mut k = self.keys;
        while keys.iter().any(Option::is_none) {
            let p = partition_for_key(&k.to_be_bytes(), PARTITIONS) as usize;
            if keys[p].is_none() {
                keys[p] = Some(k);
            }
            k += 1;
        }
        keys.into_iter().flatten().collect()
    }
}

/// Creates topic `input` in `log` and appends the input (and, with `closers`, one closer
/// record per partition after the data); returns how many records it wrote.
///
/// # Errors
/// The log's.
pub fn preload(log: &Log, input: &Input, closers: bool) -> Result<u64, BoxError> {
    log.create_topic(INPUT, TopicConfig::partitions(PARTITIONS))?;
    // Per partition: keys and values (16 bytes a record) and timestamps.
    let mut parts: Vec<(Vec<u8>, Vec<i64>)> = (0..PARTITIONS)
        .map(|_| {
            (
                Vec::with_capacity(16 * LOAD_BATCH),
                Vec::with_capacity(LOAD_BATCH),
            )
        })
        .collect();
    let append = |p: u32, (fields, timestamps): &mut (Vec<u8>, Vec<i64>)| {
        let refs: Vec<RecordRef<'_>> = fields
            .chunks_exact(16)
            .zip(timestamps.iter())
            .map(|(kv, &ts)| RecordRef::new(&kv[..8], &kv[8..]).with_timestamp(ts))
            .collect();
        let res = log.append_refs(INPUT, p, &refs, Acks::Written);
        fields.clear();
        timestamps.clear();
        res.map(|_| ())
    };
    for i in 0..input.records {
        let key = input.key(i).to_be_bytes();
        let p = partition_for_key(&key, PARTITIONS);
        let part = &mut parts[p as usize];
        part.0.extend_from_slice(&key);
        part.0.extend_from_slice(&i.to_be_bytes());
        part.1.push(input.timestamp(i));
        if part.1.len() == LOAD_BATCH {
            append(p, part)?;
        }
    }
    for (p, part) in parts.iter_mut().enumerate() {
        if !part.1.is_empty() {
            append(p as u32, part)?;
        }
    }
    let mut written = input.records;
    if closers {
        for (p, k) in input.closer_keys().into_iter().enumerate() {
            let key = k.to_be_bytes();
            let value = 0u64.to_be_bytes();
            let r = RecordRef::new(&key, &value).with_timestamp(input.closer_timestamp());
            log.append_refs(INPUT, p as u32, &[r], Acks::Written)?;
            written += 1;
        }
    }
    Ok(written)
}

/// One of BENCHMARKS.md's workloads W1–W4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// `map_values(v*2)` → `filter(key even)` → `to("out")`.
    W1,
    /// `group_by_key` → 10 s tumbling windows, grace 0 → `count` →
    /// `suppress(until_window_closes)` → `to_stream` → `to("out")`.
    W2,
    /// `group_by_key` → 60 s windows advancing 10 s, grace 0 → `aggregate(sum)` →
    /// `to_stream` → `to("out")`.
    W3,
    /// `select_key(value % 1000)` → `group_by_key` (repartition) → `count` → `to_stream` →
    /// `to("out")`.
    W4,
}

impl Workload {
    /// Every workload, in order.
    pub const ALL: [Workload; 4] = [Workload::W1, Workload::W2, Workload::W3, Workload::W4];

    /// The label of its result line (`W2 tumbling count`).
    pub fn label(self) -> &'static str {
        match self {
            Workload::W1 => "W1 stateless",
            Workload::W2 => "W2 tumbling count",
            Workload::W3 => "W3 hopping sum",
            Workload::W4 => "W4 repartition",
        }
    }

    /// Its short name (`w2`), used for application ids and `--json`.
    pub fn id(self) -> &'static str {
        match self {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
            Workload::W3 => "w3",
            Workload::W4 => "w4",
        }
    }

    /// Issue 6's goal for one thread, exactly-once: freshet ÷ baseline throughput.
    pub fn goal(self) -> f64 {
        match self {
            Workload::W1 => 0.5,
            Workload::W2 => 0.4,
            Workload::W3 | Workload::W4 => 0.3,
        }
    }

    /// Whether its input has closer records (the windowed workloads).
    pub fn closers(self) -> bool {
        matches!(self, Workload::W2 | Workload::W3)
    }

    /// Its pipeline, written with the public DSL.
    ///
    /// # Errors
    /// A build error (none expected).
    pub fn topology(self) -> Result<Topology, BoxError> {
        let b = StreamsBuilder::new();
        let input = b.stream::<u64, u64>(INPUT);
        match self {
            Workload::W1 => input
                .map_values(|v| v.wrapping_mul(2))
                .filter(|k, _| k % 2 == 0)
                .to(OUTPUT),
            Workload::W2 => input
                .group_by_key()
                .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(
                    W2_WINDOW_MS as u64,
                ))?)
                .count()
                .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
                .to_stream()
                .to(OUTPUT),
            Workload::W3 => input
                .group_by_key()
                .windowed_by(
                    TimeWindows::of_size_with_no_grace(Duration::from_millis(W3_WINDOW_MS as u64))?
                        .advance_by(Duration::from_millis(W3_ADVANCE_MS as u64))?,
                )
                .aggregate(|| 0u64, |_k, v, sum| sum.wrapping_add(*v))
                .to_stream()
                .to(OUTPUT),
            Workload::W4 => input
                .select_key(|_k, v| v % W4_KEYS)
                .group_by_key()
                .count()
                .to_stream()
                .to(OUTPUT),
        }
        Ok(b.build()?)
    }

    /// Checks what topic `out` of `log` holds against the workload's rule (BENCHMARKS.md).
    ///
    /// # Errors
    /// A wrong result, saying what is wrong; the log's errors.
    pub fn check(self, log: &Log, input: &Input) -> Result<(), BoxError> {
        let parts = read_partitions(log, OUTPUT)?;
        let result = keyed_records(parts, 8).and_then(|out| match self {
            Workload::W1 => check_w1(&out, input),
            Workload::W2 => check_w2(&out, input),
            Workload::W3 => check_w3(&out, input),
            Workload::W4 => check_w4(&out, input),
        });
        result.map_err(|e| format!("{}: wrong result: {e}", self.label()).into())
    }

    /// The plain-loop baseline over the input already in `log` (`total` records, closers
    /// included): consume, apply the logic with `HashMap`s, append to `out`.
    ///
    /// # Errors
    /// The log's.
    pub fn baseline(self, log: &Log, total: u64) -> Result<(), BoxError> {
        let mut out = Outbox::new(log);
        match self {
            Workload::W1 => consume_input(log, total, |_, k, v, ts| {
                if k % 2 == 0 {
                    let key = k.to_be_bytes();
                    let p = partition_for_key(&key, PARTITIONS);
                    out.push(p, &key, &v.wrapping_mul(2).to_be_bytes(), ts)?;
                }
                Ok(())
            })?,
            Workload::W2 => {
                let mut state: Vec<Windows<i64>> =
                    (0..PARTITIONS).map(|_| Windows::new()).collect();
                consume_input(log, total, |p, k, _v, ts| {
                    let w = &mut state[p as usize];
                    w.observe(ts);
                    let start = ts - ts.rem_euclid(W2_WINDOW_MS);
                    w.update(start, W2_WINDOW_MS, k, ts, |c| *c += 1);
                    w.close(W2_WINDOW_MS, &mut |k, start, (count, ts)| {
                        out.push_windowed(k, start, &count.to_be_bytes(), ts)
                    })
                })?;
            }
            Workload::W3 => {
                let mut state: Vec<Windows<u64>> =
                    (0..PARTITIONS).map(|_| Windows::new()).collect();
                consume_input(log, total, |p, k, v, ts| {
                    let w = &mut state[p as usize];
                    w.observe(ts);
                    for start in hopping_starts(ts) {
                        w.update(start, W3_WINDOW_MS, k, ts, |s| *s = s.wrapping_add(v));
                    }
                    w.close(W3_WINDOW_MS, &mut |k, start, (sum, ts)| {
                        out.push_windowed(k, start, &sum.to_be_bytes(), ts)
                    })
                })?;
                // Emit-on-update sends every window's latest value; what has not closed
                // goes out at the end.
                for w in &mut state {
                    w.close(i64::MIN / 2, &mut |k, start, (sum, ts)| {
                        out.push_windowed(k, start, &sum.to_be_bytes(), ts)
                    })?;
                }
            }
            Workload::W4 => {
                let mut counts: HashMap<u64, (i64, i64)> = HashMap::new();
                consume_input(log, total, |_, _k, v, ts| {
                    let c = counts.entry(v % W4_KEYS).or_insert((0, ts));
                    c.0 += 1;
                    c.1 = ts;
                    Ok(())
                })?;
                for (k, (count, ts)) in counts {
                    let key = k.to_be_bytes();
                    let p = partition_for_key(&key, PARTITIONS);
                    out.push(p, &key, &count.to_be_bytes(), ts)?;
                }
            }
        }
        out.flush()
    }
}

/// The start of every W3 window holding `ts`.
fn hopping_starts(ts: i64) -> impl Iterator<Item = i64> {
    let last = ts - ts.rem_euclid(W3_ADVANCE_MS);
    let first = (last - W3_WINDOW_MS + W3_ADVANCE_MS).max(0);
    (0..)
        .map(move |j| first + j * W3_ADVANCE_MS)
        .take_while(move |&s| s <= last)
}

/// The baseline's open windows of one partition: by start, the aggregate and latest
/// timestamp per key.
struct Windows<A> {
    stream_time: i64,
    open: BTreeMap<i64, HashMap<u64, (A, i64)>>,
}

impl<A: Default + Copy> Windows<A> {
    fn new() -> Self {
        Windows {
            stream_time: i64::MIN,
            open: BTreeMap::new(),
        }
    }

    fn observe(&mut self, ts: i64) {
        self.stream_time = self.stream_time.max(ts);
    }

    /// Folds a record into window `start` unless the window has closed (grace 0).
    fn update(&mut self, start: i64, size: i64, key: u64, ts: i64, f: impl FnOnce(&mut A)) {
        if start + size <= self.stream_time {
            return;
        }
        let e = self
            .open
            .entry(start)
            .or_default()
            .entry(key)
            .or_insert((A::default(), ts));
        f(&mut e.0);
        e.1 = e.1.max(ts);
    }

    /// Emits and forgets every window whose end is at or before stream time (or, with a
    /// `size` far below zero, every window).
    fn close(
        &mut self,
        size: i64,
        emit: &mut impl FnMut(u64, i64, (A, i64)) -> Result<(), BoxError>,
    ) -> Result<(), BoxError> {
        while let Some((&start, _)) = self.open.first_key_value() {
            if start.saturating_add(size) > self.stream_time {
                break;
            }
            if let Some((_, keys)) = self.open.pop_first() {
                for (k, v) in keys {
                    emit(k, start, v)?;
                }
            }
        }
        Ok(())
    }
}

/// A buffered output: key length, value length, timestamp.
type OutRecord = (usize, usize, i64);

/// The baseline's output: records buffered per partition and appended in batches.
struct Outbox<'a> {
    log: &'a Log,
    /// Per partition: keys and values back to back, and (key length, value length, ts).
    parts: Vec<(Vec<u8>, Vec<OutRecord>)>,
    pending: usize,
}

impl<'a> Outbox<'a> {
    fn new(log: &'a Log) -> Outbox<'a> {
        Outbox {
            log,
            parts: (0..PARTITIONS).map(|_| (Vec::new(), Vec::new())).collect(),
            pending: 0,
        }
    }

    fn push(&mut self, p: u32, key: &[u8], value: &[u8], ts: i64) -> Result<(), BoxError> {
        let part = &mut self.parts[p as usize];
        part.0.extend_from_slice(key);
        part.0.extend_from_slice(value);
        part.1.push((key.len(), value.len(), ts));
        self.pending += 1;
        if self.pending >= OUT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// A windowed result: key `[key][start]` (Kafka's time-windowed layout), partitioned
    /// by the base key.
    fn push_windowed(&mut self, k: u64, start: i64, value: &[u8], ts: i64) -> Result<(), BoxError> {
        let base = k.to_be_bytes();
        let p = partition_for_key(&base, PARTITIONS);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&base);
        key[8..].copy_from_slice(&start.to_be_bytes());
        self.push(p, &key, value, ts)
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        for (p, (bytes, recs)) in self.parts.iter_mut().enumerate() {
            if recs.is_empty() {
                continue;
            }
            let mut at = 0;
            let refs: Vec<RecordRef<'_>> = recs
                .iter()
                .map(|&(kl, vl, ts)| {
                    let r = RecordRef::new(&bytes[at..at + kl], &bytes[at + kl..at + kl + vl])
                        .with_timestamp(ts);
                    at += kl + vl;
                    r
                })
                .collect();
            self.log
                .append_refs(OUTPUT, p as u32, &refs, Acks::Written)?;
            bytes.clear();
            recs.clear();
        }
        self.pending = 0;
        Ok(())
    }
}

/// A current-thread tokio runtime for the log's async consumer and the app.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The baseline's read loop: every record of `input`'s partitions, through the log's
/// consumer, as `(partition, key, value, timestamp)`, until `total` are read.
fn consume_input(
    log: &Log,
    total: u64,
    mut f: impl FnMut(u32, u64, u64, i64) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    let rt = runtime()?;
    let mut consumer = log.consumer(FetchOptions {
        max_bytes: 1 << 20,
        max_partition_bytes: 1 << 20,
        max_records: usize::MAX,
        isolation: Isolation::ReadCommitted,
        timeout: Duration::from_millis(100),
    });
    for p in 0..PARTITIONS {
        consumer.assign(INPUT, p, SeekTo::Beginning)?;
    }
    let mut read = 0u64;
    while read < total {
        let fetched = rt.block_on(consumer.poll())?;
        if fetched.is_empty() && consumer.caught_up()? {
            return Err(format!("baseline: input ended after {read} of {total} records").into());
        }
        for batch in &fetched {
            for r in &batch.records {
                let k = be(r.key.as_deref());
                let v = be(r.value.as_deref());
                f(batch.partition, k, v, r.timestamp)?;
                read += 1;
            }
        }
    }
    Ok(())
}

/// An 8-byte big-endian `u64` (0 for anything else).
fn be(b: Option<&[u8]>) -> u64 {
    b.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Every committed record of every partition of `topic`, partition by partition.
///
/// # Errors
/// The log's.
pub fn read_topic(log: &Log, topic: &str) -> Result<Vec<StoredRecord>, BoxError> {
    Ok(read_partitions(log, topic)?.into_iter().flatten().collect())
}

/// Every committed record of `topic`, one vector per partition.
///
/// # Errors
/// The log's.
pub fn read_partitions(log: &Log, topic: &str) -> Result<Vec<Vec<StoredRecord>>, BoxError> {
    let rt = runtime()?;
    let mut consumer = log.consumer(FetchOptions {
        max_records: usize::MAX,
        timeout: Duration::from_millis(10),
        ..FetchOptions::default()
    });
    let partitions = log.partition_count(topic)?;
    for p in 0..partitions {
        consumer.assign(topic, p, SeekTo::Beginning)?;
    }
    let mut out: Vec<Vec<StoredRecord>> = (0..partitions).map(|_| Vec::new()).collect();
    loop {
        let fetched = rt.block_on(consumer.poll())?;
        if fetched.is_empty() && consumer.caught_up()? {
            return Ok(out);
        }
        for f in fetched {
            if let Some(part) = out.get_mut(f.partition as usize) {
                part.extend(f.records);
            }
        }
    }
}

/// Checks that every record of `parts` (one vector per partition) sits in the partition
/// of its key — Kafka's default partitioner over the first `base_key_len` bytes of the
/// key (the base key of a windowed key) — so that "the last value of a key" is well
/// defined; returns the records, partition by partition.
///
/// # Errors
/// A record in another partition, or without a key.
pub fn keyed_records(
    parts: Vec<Vec<StoredRecord>>,
    base_key_len: usize,
) -> Result<Vec<StoredRecord>, String> {
    let n = parts.len() as u32;
    let mut all = Vec::new();
    for (p, records) in parts.into_iter().enumerate() {
        for r in records {
            let key = r
                .key
                .as_deref()
                .ok_or_else(|| format!("partition {p} offset {}: no key", r.offset))?;
            let base = &key[..base_key_len.min(key.len())];
            let want = partition_for_key(base, n);
            if want != p as u32 {
                return Err(format!(
                    "partition {p} offset {}: the key belongs in partition {want}",
                    r.offset
                ));
            }
            all.push(r);
        }
    }
    Ok(all)
}

fn key_u64(r: &StoredRecord) -> Result<u64, String> {
    r.key
        .as_deref()
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| format!("offset {}: key is not 8 bytes", r.offset))
}

fn value_u64(r: &StoredRecord) -> Result<u64, String> {
    r.value
        .as_deref()
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| format!("offset {}: value is not 8 bytes", r.offset))
}

/// `(key, window start)` of a time-windowed key (`[key][start]`).
fn windowed_key(r: &StoredRecord) -> Result<(u64, i64), String> {
    let b = r
        .key
        .as_deref()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| format!("offset {}: windowed key is not 16 bytes", r.offset))?;
    let mut k = [0u8; 8];
    let mut s = [0u8; 8];
    k.copy_from_slice(&b[..8]);
    s.copy_from_slice(&b[8..]);
    Ok((u64::from_be_bytes(k), i64::from_be_bytes(s)))
}

fn check_w1(out: &[StoredRecord], input: &Input) -> Result<(), String> {
    let n = input.records;
    let mut seen = vec![0u64; n.div_ceil(64) as usize];
    let mut count = 0u64;
    for r in out {
        let (k, v) = (key_u64(r)?, value_u64(r)?);
        let i = v / 2;
        if v % 2 != 0 || i >= n || input.key(i) != k || k % 2 != 0 {
            return Err(format!("unexpected record key {k} value {v}"));
        }
        if r.timestamp != input.timestamp(i) {
            return Err(format!(
                "record {i}: timestamp {} instead of {}",
                r.timestamp,
                input.timestamp(i)
            ));
        }
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        if seen[word] & bit != 0 {
            return Err(format!("record {i} written twice"));
        }
        seen[word] |= bit;
        count += 1;
    }
    let expected = (0..n).filter(|&i| input.key(i) % 2 == 0).count() as u64;
    if count != expected {
        return Err(format!("{count} records, expected {expected}"));
    }
    Ok(())
}

/// W2's oracle: the count of every (key, 10 s window) that holds records.
pub fn w2_oracle(input: &Input) -> HashMap<(u64, i64), i64> {
    let mut counts = HashMap::new();
    for i in 0..input.records {
        let ts = input.timestamp(i);
        *counts
            .entry((input.key(i), ts - ts.rem_euclid(W2_WINDOW_MS)))
            .or_insert(0) += 1;
    }
    counts
}

fn check_w2(out: &[StoredRecord], input: &Input) -> Result<(), String> {
    let oracle = w2_oracle(input);
    let mut got = HashMap::new();
    for r in out {
        let (k, start) = windowed_key(r)?;
        if k >= input.keys {
            continue;
        }
        let count = value_u64(r)? as i64;
        if got.insert((k, start), count).is_some() {
            return Err(format!("window {start} of key {k} emitted twice"));
        }
        match oracle.get(&(k, start)) {
            Some(&c) if c == count => {}
            Some(&c) => {
                return Err(format!(
                    "window {start} of key {k}: count {count}, expected {c}"
                ))
            }
            None => return Err(format!("window {start} of key {k} holds no record")),
        }
    }
    if got.len() != oracle.len() {
        return Err(format!("{} rows, expected {}", got.len(), oracle.len()));
    }
    // BENCHMARKS.md's closed form: N/1,000,000 · K rows of count 1,000,000/K.
    if input.records % 1_000_000 == 0 && input.records_per_ms == 100 && 1_000_000 % input.keys == 0
    {
        let rows = input.records / 1_000_000 * input.keys;
        let each = (1_000_000 / input.keys) as i64;
        if got.len() as u64 != rows || got.values().any(|&c| c != each) {
            return Err(format!("expected {rows} rows of count {each}"));
        }
    }
    Ok(())
}

/// W3's oracle: the sum of values of every (key, 60 s window advancing 10 s) that holds
/// records.
pub fn w3_oracle(input: &Input) -> HashMap<(u64, i64), u64> {
    // Sums per (key, 10 s bucket), then each window adds its six buckets.
    let mut buckets: HashMap<(u64, i64), u64> = HashMap::new();
    for i in 0..input.records {
        let ts = input.timestamp(i);
        let b = buckets
            .entry((input.key(i), ts - ts.rem_euclid(W3_ADVANCE_MS)))
            .or_insert(0);
        *b = b.wrapping_add(i);
    }
    let mut sums = HashMap::new();
    for &(k, bucket) in buckets.keys() {
        for start in hopping_starts(bucket) {
            sums.entry((k, start)).or_insert_with(|| {
                (0..W3_WINDOW_MS / W3_ADVANCE_MS)
                    .filter_map(|j| buckets.get(&(k, start + j * W3_ADVANCE_MS)))
                    .fold(0u64, |a, &b| a.wrapping_add(b))
            });
        }
    }
    sums
}

fn check_w3(out: &[StoredRecord], input: &Input) -> Result<(), String> {
    let oracle = w3_oracle(input);
    let mut last = HashMap::new();
    for r in out {
        let (k, start) = windowed_key(r)?;
        if k >= input.keys {
            continue;
        }
        last.insert((k, start), value_u64(r)?);
    }
    if last.len() != oracle.len() {
        return Err(format!(
            "{} (key, window) pairs emitted, expected {}",
            last.len(),
            oracle.len()
        ));
    }
    for (kw, sum) in &last {
        match oracle.get(kw) {
            Some(s) if s == sum => {}
            Some(s) => {
                return Err(format!(
                    "window {} of key {}: last sum {sum}, expected {s}",
                    kw.1, kw.0
                ))
            }
            None => return Err(format!("window {} of key {} holds no record", kw.1, kw.0)),
        }
    }
    Ok(())
}

fn check_w4(out: &[StoredRecord], input: &Input) -> Result<(), String> {
    let mut last: HashMap<u64, u64> = HashMap::new();
    for r in out {
        last.insert(key_u64(r)?, value_u64(r)?);
    }
    let n = input.records;
    let keys = W4_KEYS.min(n);
    if last.len() as u64 != keys {
        return Err(format!("{} keys, expected {keys}", last.len()));
    }
    for k in 0..keys {
        // Values i < n with i % 1000 == k.
        let expected = (n - k).div_ceil(W4_KEYS);
        match last.get(&k) {
            Some(&c) if c == expected => {}
            other => {
                return Err(format!(
                    "key {k}: last count {other:?}, expected {expected}"
                ))
            }
        }
    }
    Ok(())
}

/// One configuration of a freshet run: `processing.guarantee` × `num.stream.threads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// `processing.guarantee`.
    pub guarantee: ProcessingGuarantee,
    /// `num.stream.threads`.
    pub threads: usize,
}

impl Setup {
    /// `exactly_once_v2, 1 thread`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {} thread{}",
            self.guarantee,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }

    /// The app's settings for `application_id`: this setup, everything else default.
    pub fn config(&self, application_id: &str) -> StreamsConfig {
        StreamsConfig::new(application_id)
            .with_processing_guarantee(self.guarantee)
            .with_num_stream_threads(self.threads)
    }
}

/// What one timed run measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Wall-clock and CPU time of the timed part.
    pub sample: Sample,
    /// Peak resident memory of the process during the timed part, in bytes.
    pub peak_rss: u64,
    /// Records the app read (its `records_in` metric; the baseline: records consumed).
    pub records_in: u64,
    /// Seconds closing the app took after the clock stopped (0 for the baseline).
    pub close_secs: f64,
}

/// One freshet run of `workload` in a fresh log under `dir`: load the input, time the app
/// from its start until it is caught up (everything processed and committed), close it,
/// check the output.
///
/// # Errors
/// The log's and the app's; a wrong result.
pub fn run_freshet(
    workload: Workload,
    input: &Input,
    setup: Setup,
    dir: &Path,
) -> Result<Measured, BoxError> {
    let rt = runtime()?;
    let log = Arc::new(Log::open(dir.join("log"))?);
    let total = preload(&log, input, workload.closers())?;
    let topology = workload.topology()?;
    let config = setup.config(&format!("bench-{}", workload.id()));
    reset_peak_rss();
    let (mut app, sample) = timed(|| {
        rt.block_on(async {
            let app = StreamsApp::start(config, topology, log.clone()).await?;
            app.wait_until_caught_up().await?;
            Ok::<_, BoxError>(app)
        })
    })?;
    let peak_rss = peak_rss_bytes();
    let records_in = app.metrics().records_in();
    let closing = Instant::now();
    rt.block_on(app.close())?;
    let close_secs = closing.elapsed().as_secs_f64();
    drop(app);
    workload.check(&log, input)?;
    let expected_in = match workload {
        Workload::W4 => total + input.records,
        _ => total,
    };
    if records_in != expected_in {
        return Err(format!(
            "{}: the app read {records_in} records, expected {expected_in}",
            workload.label()
        )
        .into());
    }
    log.close()?;
    Ok(Measured {
        sample,
        peak_rss,
        records_in,
        close_secs,
    })
}

/// One baseline run of `workload` in a fresh log under `dir`: load the input, time the
/// plain loop, check its output by the same rule as freshet's.
///
/// # Errors
/// The log's; a wrong result.
pub fn run_baseline(workload: Workload, input: &Input, dir: &Path) -> Result<Measured, BoxError> {
    let log = Log::open(dir.join("log"))?;
    let total = preload(&log, input, workload.closers())?;
    log.create_topic(OUTPUT, TopicConfig::partitions(PARTITIONS))?;
    reset_peak_rss();
    let ((), sample) = timed(|| workload.baseline(&log, total))?;
    let peak_rss = peak_rss_bytes();
    workload
        .check(&log, input)
        .map_err(|e| format!("baseline: {e}"))?;
    log.close()?;
    Ok(Measured {
        sample,
        peak_rss,
        records_in: total,
        close_secs: 0.0,
    })
}
