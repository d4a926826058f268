//! Workload L of `shared/BENCHMARKS.md`: W1's pipeline under at-least-once, fed at a
//! fixed rate (100,000 records/s for 30 s by default), each record stamped with its send
//! time in a header; a consumer of `out` measures (time it reads the output − send time).
//!
//! The feeder appends to topic `input` through the log's append API once per millisecond
//! (`rate / 1000` records, one batch per partition, `acks=written`), stamping the records
//! of a tick with the time just before they are appended, as nanoseconds since the run
//! started (header [`SENT_HEADER`], big-endian `u64`). Record `i` is W1's record `i`
//! (key `i % K`, value `i`) with the wall clock as its timestamp. A consumer thread polls
//! `out` (read_committed, 1 ms poll timeout) and records each output's latency. The run
//! ends when every expected output (the records with an even key) has been read, or fails
//! when they are not all there [`DRAIN_SECS`] seconds after the last send.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_log::{
    partition_for_key, Acks, FetchOptions, Isolation, Log, RecordRef, SeekTo, TopicConfig,
};
use freshet_runtime::StreamsApp;

use crate::measure::{peak_rss_bytes, reset_peak_rss};
use crate::workload::{runtime, Setup, Workload, INPUT, OUTPUT, PARTITIONS};
use crate::BoxError;

/// The header carrying a record's send time (ns since the run started, big-endian).
pub const SENT_HEADER: &str = "bench.sent-ns";
/// How long after the last send the outputs may take to arrive (more than at-least-once's
/// 30 s commit interval).
pub const DRAIN_SECS: u64 = 40;
/// issue 6's goal: p99 at most this many milliseconds.
pub const GOAL_P99_MS: f64 = 10.0;

/// What a latency run measured.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Records sent.
    pub sent: u64,
    /// Outputs read (each with its latency).
    pub received: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// The largest, ms.
    pub max_ms: f64,
    /// How far the feeder fell behind its schedule at worst, ms.
    pub feeder_lag_ms: f64,
    /// Peak resident memory of the process during the run, bytes.
    pub peak_rss: u64,
}

/// The `q`-quantile (0..=1) of sorted `v`, nearest rank.
fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Runs L: `rate` records/s for `seconds` s over `keys` keys, with `setup` (BENCHMARKS.md:
/// at-least-once), in a fresh log under `dir`.
///
/// # Errors
/// The log's and the app's; outputs missing or wrong.
pub fn run(
    rate: u64,
    seconds: f64,
    keys: u64,
    setup: Setup,
    dir: &std::path::Path,
) -> Result<Latencies, BoxError> {
    let rt = runtime()?;
    let log = Arc::new(Log::open(dir.join("log"))?);
    log.create_topic(INPUT, TopicConfig::partitions(PARTITIONS))?;
    log.create_topic(OUTPUT, TopicConfig::partitions(PARTITIONS))?;
    let keys = keys.max(1);
    let sent_total = (rate as f64 * seconds).round() as u64;
    let expected = (0..sent_total).filter(|i| (i % keys) % 2 == 0).count() as u64;
    let mut app = rt.block_on(StreamsApp::start(
        setup.config("bench-latency"),
        Workload::W1.topology()?,
        log.clone(),
    ))?;
    reset_peak_rss();
    let base = Instant::now();
    let done_sending = Arc::new(AtomicBool::new(false));
    let consumer = {
        let log = log.clone();
        let done_sending = done_sending.clone();
        std::thread::Builder::new()
            .name("bench-latency-consumer".into())
            .spawn(move || consume(&log, expected, keys, base, &done_sending))?
    };
    let fed = feed(&log, rate, sent_total, keys, base);
    done_sending.store(true, Ordering::SeqCst);
    let consumed = consumer
        .join()
        .map_err(|_| "the latency consumer panicked".to_string())?;
    let peak_rss = peak_rss_bytes();
    let closed = rt.block_on(app.close());
    let feeder_lag_ms = fed?;
    let mut lat = consumed?;
    closed?;
    lat.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(Latencies {
        sent: sent_total,
        received: lat.len() as u64,
        p50_ms: ms(quantile(&lat, 0.5)),
        p99_ms: ms(quantile(&lat, 0.99)),
        p999_ms: ms(quantile(&lat, 0.999)),
        max_ms: ms(lat.last().copied().unwrap_or(0)),
        feeder_lag_ms,
        peak_rss,
    })
}

/// Appends `total` records at `rate`/s in 1 ms ticks; returns the worst lag behind the
/// schedule in ms.
fn feed(log: &Log, rate: u64, total: u64, keys: u64, base: Instant) -> Result<f64, BoxError> {
    let per_tick = (rate / 1000).max(1);
    let mut worst = Duration::ZERO;
    let mut i = 0u64;
    let mut tick = 0u64;
    let mut fields: Vec<Vec<[u8; 16]>> = vec![Vec::new(); PARTITIONS as usize];
    while i < total {
        let due = base + Duration::from_micros(tick * 1000 * per_tick * 1000 / rate.max(1));
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        } else {
            worst = worst.max(now - due);
        }
        let end = (i + per_tick).min(total);
        for f in &mut fields {
            f.clear();
        }
        for j in i..end {
            let key = (j % keys).to_be_bytes();
            let mut kv = [0u8; 16];
            kv[..8].copy_from_slice(&key);
            kv[8..].copy_from_slice(&j.to_be_bytes());
            fields[partition_for_key(&key, PARTITIONS) as usize].push(kv);
        }
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let sent = base.elapsed().as_nanos() as u64;
        let headers = [(
            SENT_HEADER.to_string(),
            Bytes::copy_from_slice(&sent.to_be_bytes()),
        )];
        for (p, f) in fields.iter().enumerate() {
            if f.is_empty() {
                continue;
            }
            let refs: Vec<RecordRef<'_>> = f
                .iter()
                .map(|kv| {
                    RecordRef::new(&kv[..8], &kv[8..])
                        .with_timestamp(wall_ms)
                        .with_headers(&headers)
                })
                .collect();
            log.append_refs(INPUT, p as u32, &refs, Acks::Written)?;
        }
        i = end;
        tick += 1;
    }
    Ok(worst.as_secs_f64() * 1e3)
}

/// Reads `out` until `expected` outputs arrived; returns their latencies in ns.
fn consume(
    log: &Log,
    expected: u64,
    keys: u64,
    base: Instant,
    done_sending: &AtomicBool,
) -> Result<Vec<u64>, BoxError> {
    let rt = runtime()?;
    let mut consumer = log.consumer(FetchOptions {
        max_records: usize::MAX,
        isolation: Isolation::ReadCommitted,
        timeout: Duration::from_millis(1),
        ..FetchOptions::default()
    });
    for p in 0..PARTITIONS {
        consumer.assign(OUTPUT, p, SeekTo::Beginning)?;
    }
    let mut lat = Vec::with_capacity(expected as usize);
    let mut sending_ended: Option<Instant> = None;
    while (lat.len() as u64) < expected {
        if sending_ended.is_none() && done_sending.load(Ordering::SeqCst) {
            sending_ended = Some(Instant::now());
        }
        if sending_ended.is_some_and(|t| t.elapsed() > Duration::from_secs(DRAIN_SECS)) {
            return Err(format!(
                "latency: {} of {expected} outputs arrived within {DRAIN_SECS} s of the last send",
                lat.len()
            )
            .into());
        }
        let fetched = rt.block_on(consumer.poll())?;
        let now = base.elapsed().as_nanos() as u64;
        for f in fetched {
            for r in f.records {
                let sent = r
                    .headers
                    .iter()
                    .find(|(k, _)| k == SENT_HEADER)
                    .and_then(|(_, v)| <[u8; 8]>::try_from(&v[..]).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| format!("output at offset {} has no send time", r.offset))?;
                let key = r.key.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok());
                let value = r.value.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok());
                let (Some(k), Some(v)) =
                    (key.map(u64::from_be_bytes), value.map(u64::from_be_bytes))
                else {
                    return Err(format!("output at offset {} is not two u64s", r.offset).into());
                };
                if k % 2 != 0 || v % 2 != 0 || (v / 2) % keys != k {
                    return Err(format!("wrong output: key {k} value {v}").into());
                }
                lat.push(now.saturating_sub(sent));
            }
        }
    }
    Ok(lat)
}
