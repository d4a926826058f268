//! `freshet-bench log`: produce and consume throughput of the embedded log beside plain
//! files written and read with the same durability and the same batch boundaries.
//!
//! Each run, in a fresh directory per side, loads the input of BENCHMARKS.md (N records,
//! topic `input`, 4 partitions, Kafka's default partitioner) four ways and reads one back:
//!
//! - freshet through the [`freshet_log::Producer`] (batch.size and linger) with owned
//!   [`Record`]s and with borrowed records ([`freshet_log::Producer::send_ref`]), through
//!   [`Log::append_refs`] with whole batches of borrowed records, and through
//!   [`Log::append`] with whole batches of owned [`Record`]s, at `acks=written` and
//!   `acks=synced`;
//! - the baseline ([`crate::plain_log`]): a `BufWriter` per partition, `flush` at every
//!   batch boundary, plus `sync_data` when synced;
//! - consume: freshet's [`freshet_log::Consumer`] from the beginning, folding every record
//!   into a checksum, against a sequential read and parse of the baseline's files.
//!
//! Sides alternate (freshet first on even runs, the baseline first on odd ones) and the
//! report gives medians and the median per-run ratio.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use freshet_log::{
    partition_for_key, Acks, FetchOptions, Isolation, Log, ProducerConfig, Record, RecordRef,
    SeekTo, TopicConfig,
};
use tokio::runtime::Runtime;

use crate::input::{self, Checksum, PARTITIONS, TOPIC};
use crate::measure::{timed, Comparison, Goal, Sample};
use crate::{plain_log, BoxError};

/// What the producer counts toward `batch.size` for one record of this input: 16 bytes of
/// overhead plus key and value (`record_size` in the log's producer). The baseline and the
/// append API cut batches after as many records as the producer does.
const PRODUCER_RECORD_SIZE: usize = 16 + 8 + 8;

/// Produce goal: freshet throughput at least this fraction of the baseline's.
const PRODUCE_GOAL_RATIO: f64 = 0.5;
/// Consume goal in records per second.
const CONSUME_GOAL_RATE: f64 = 10e6;

/// Options of `freshet-bench log`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Records to produce and consume.
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Runs per side; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The producer's `batch.size` in bytes; the append API and the baseline cut batches
    /// after the same number of records per partition.
    #[arg(long, default_value_t = 1 << 20)]
    batch_size: usize,
    /// The producer's `linger.ms`: long enough that batches fill by size, as in a bulk
    /// load, so they end where the baseline's do.
    #[arg(long, default_value_t = 100)]
    linger_ms: u64,
    /// The consumer's `max.partition.fetch.bytes` and `fetch.max.bytes`: with the default,
    /// each poll returns about one batch of one partition (see bench/README.md for why more
    /// per poll is slower with glibc's allocator).
    #[arg(long, default_value_t = 1 << 20)]
    fetch_bytes: usize,
    /// The consumer's `max.poll.records` (default: no limit).
    #[arg(long, default_value_t = usize::MAX, hide_default_value = true)]
    max_poll_records: usize,
    /// Where to make the per-run temporary directories (default: the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Build each record's key and value as separate allocations instead of slices of a
    /// shared buffer.
    #[arg(long)]
    alloc_fields: bool,
    /// Profiling aid: run only this side, `--runs` times, and print its times.
    #[arg(long, value_enum, hide = true)]
    only: Option<Only>,
}

/// One side of the benchmark, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    ProducerWritten,
    ProducerSynced,
    ProducerRefWritten,
    ProducerRefSynced,
    AppendWritten,
    AppendSynced,
    OwnedWritten,
    OwnedSynced,
    /// The append API at acks=written, then consume.
    Consume,
    /// The baseline at written, then its consume.
    Baseline,
}

impl Args {
    fn batch_records(&self) -> usize {
        self.batch_size.div_ceil(PRODUCER_RECORD_SIZE).max(1)
    }
}

/// The comparisons one invocation reports, one line each.
#[derive(Debug, Default)]
struct Results {
    producer_written: Comparison,
    producer_ref_written: Comparison,
    append_written: Comparison,
    owned_written: Comparison,
    producer_synced: Comparison,
    producer_ref_synced: Comparison,
    append_synced: Comparison,
    owned_synced: Comparison,
    consume: Comparison,
}

/// Which public API a freshet run produces through.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// [`freshet_log::Producer::send`]: owned [`Record`]s.
    Producer,
    /// [`freshet_log::Producer::send_ref`]: borrowed records.
    ProducerRef,
    /// [`Log::append_refs`]: borrowed records.
    Append,
    /// [`Log::append`]: owned [`Record`]s.
    AppendOwned,
}

/// Runs `freshet` and `baseline` in the given order; returns their results in that order.
fn in_order<F, B>(
    freshet_first: bool,
    freshet: impl FnOnce() -> Result<F, BoxError>,
    baseline: impl FnOnce() -> Result<B, BoxError>,
) -> Result<(F, B), BoxError> {
    if freshet_first {
        let f = freshet()?;
        Ok((f, baseline()?))
    } else {
        let b = baseline()?;
        Ok((freshet()?, b))
    }
}

/// Runs the benchmark and prints its report.
pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let n = args.records;
    let expected = Checksum::expected(n);
    println!(
        "log: {n} records, topic {TOPIC} with {PARTITIONS} partitions, {} runs; batches of {} records per partition (batch.size {} B, linger {} ms); consumer fetch {} B; fields {}",
        args.runs,
        args.batch_records(),
        args.batch_size,
        args.linger_ms,
        args.fetch_bytes,
        if args.alloc_fields { "allocated one by one" } else { "sliced from shared buffers" },
    );
    if let Some(only) = args.only {
        return run_only(&rt, args, only, expected);
    }
    let mut res = Results::default();
    for run in 0..args.runs {
        let freshet_first = run % 2 == 0;
        // acks=written: producer (+ consume) beside the baseline (+ consume), then the
        // append API, compared with the same baseline sample (same boundaries, same acks).
        let ((fw, fc), (bw, bc)) = in_order(
            freshet_first,
            || freshet_side(&rt, args, Via::Producer, Acks::Written, Some(expected)),
            || baseline_side(args, false, Some(expected)),
        )?;
        let (rw, _) = freshet_side(&rt, args, Via::ProducerRef, Acks::Written, None)?;
        let (aw, _) = freshet_side(&rt, args, Via::Append, Acks::Written, None)?;
        let (ow, _) = freshet_side(&rt, args, Via::AppendOwned, Acks::Written, None)?;
        res.producer_written.push(fw, bw);
        res.producer_ref_written.push(rw, bw);
        res.append_written.push(aw, bw);
        res.owned_written.push(ow, bw);
        if let (Some(fc), Some(bc)) = (fc, bc) {
            res.consume.push(fc, bc);
        }
        // acks=synced: the same without reading back.
        let ((fs, _), (bs, _)) = in_order(
            freshet_first,
            || freshet_side(&rt, args, Via::Producer, Acks::Synced, None),
            || baseline_side(args, true, None),
        )?;
        let (rs, _) = freshet_side(&rt, args, Via::ProducerRef, Acks::Synced, None)?;
        let (as_, _) = freshet_side(&rt, args, Via::Append, Acks::Synced, None)?;
        let (os, _) = freshet_side(&rt, args, Via::AppendOwned, Acks::Synced, None)?;
        res.producer_synced.push(fs, bs);
        res.producer_ref_synced.push(rs, bs);
        res.append_synced.push(as_, bs);
        res.owned_synced.push(os, bs);
        eprintln!(
            "run {}/{}: written producer {:.2} s (borrowed {:.2} s), append {:.2} s (owned {:.2} s), baseline {:.2} s; synced producer {:.2} s (borrowed {:.2} s), append {:.2} s (owned {:.2} s), baseline {:.2} s; consume {:.2} s, baseline {:.2} s",
            run + 1,
            args.runs,
            fw.wall.as_secs_f64(),
            rw.wall.as_secs_f64(),
            aw.wall.as_secs_f64(),
            ow.wall.as_secs_f64(),
            bw.wall.as_secs_f64(),
            fs.wall.as_secs_f64(),
            rs.wall.as_secs_f64(),
            as_.wall.as_secs_f64(),
            os.wall.as_secs_f64(),
            bs.wall.as_secs_f64(),
            fc.map_or(0.0, |s| s.wall.as_secs_f64()),
            bc.map_or(0.0, |s| s.wall.as_secs_f64()),
        );
    }
    let produce = Goal::Ratio(PRODUCE_GOAL_RATIO);
    let lines = [
        (
            &res.producer_written,
            "produce acks=written, producer",
            produce,
        ),
        (
            &res.producer_ref_written,
            "produce acks=written, producer (borrowed records)",
            produce,
        ),
        (
            &res.append_written,
            "produce acks=written, append API",
            produce,
        ),
        (
            &res.owned_written,
            "produce acks=written, append API (owned records)",
            produce,
        ),
        (
            &res.producer_synced,
            "produce acks=synced, producer",
            produce,
        ),
        (
            &res.producer_ref_synced,
            "produce acks=synced, producer (borrowed records)",
            produce,
        ),
        (
            &res.append_synced,
            "produce acks=synced, append API",
            produce,
        ),
        (
            &res.owned_synced,
            "produce acks=synced, append API (owned records)",
            produce,
        ),
        (&res.consume, "consume", Goal::Rate(CONSUME_GOAL_RATE)),
    ];
    for (cmp, label, goal) in lines {
        println!("{}", cmp.line(label, n, goal));
    }
    Ok(())
}

fn run_only(rt: &Runtime, args: &Args, only: Only, expected: Checksum) -> Result<(), BoxError> {
    for _ in 0..args.runs {
        let check = (only == Only::Consume).then_some(expected);
        let (produced, consumed) = match only {
            Only::ProducerWritten => freshet_side(rt, args, Via::Producer, Acks::Written, None)?,
            Only::ProducerSynced => freshet_side(rt, args, Via::Producer, Acks::Synced, None)?,
            Only::ProducerRefWritten => {
                freshet_side(rt, args, Via::ProducerRef, Acks::Written, None)?
            }
            Only::ProducerRefSynced => {
                freshet_side(rt, args, Via::ProducerRef, Acks::Synced, None)?
            }
            Only::AppendWritten | Only::Consume => {
                freshet_side(rt, args, Via::Append, Acks::Written, check)?
            }
            Only::AppendSynced => freshet_side(rt, args, Via::Append, Acks::Synced, None)?,
            Only::OwnedWritten => freshet_side(rt, args, Via::AppendOwned, Acks::Written, None)?,
            Only::OwnedSynced => freshet_side(rt, args, Via::AppendOwned, Acks::Synced, None)?,
            Only::Baseline => baseline_side(args, false, Some(expected))?,
        };
        println!(
            "{only:?}: produce {:.3} s (cpu {:.3} s), consume {:.3} s",
            produced.wall.as_secs_f64(),
            produced.cpu.as_secs_f64(),
            consumed.map_or(0.0, |c| c.wall.as_secs_f64())
        );
    }
    Ok(())
}

fn temp_dir(args: &Args) -> Result<tempfile::TempDir, BoxError> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("freshet-bench-log-");
        b
    };
    Ok(match &args.dir {
        Some(d) => builder.tempdir_in(d)?,
        None => builder.tempdir()?,
    })
}

/// Produces into a fresh log; with `check`, then consumes it all back and checks the sum.
fn freshet_side(
    rt: &Runtime,
    args: &Args,
    via: Via,
    acks: Acks,
    check: Option<Checksum>,
) -> Result<(Sample, Option<Sample>), BoxError> {
    let dir = temp_dir(args)?;
    let log = Log::open(dir.path())?;
    log.create_topic(TOPIC, TopicConfig::partitions(PARTITIONS))?;
    let n = args.records;
    let ((), produced) = timed(|| match via {
        Via::Producer => rt.block_on(produce_with_producer(&log, args, acks, false)),
        Via::ProducerRef => rt.block_on(produce_with_producer(&log, args, acks, true)),
        Via::Append => produce_with_append_refs(&log, args, acks),
        Via::AppendOwned => produce_with_append(&log, args, acks),
    })?;
    let end: i64 = (0..PARTITIONS)
        .map(|p| log.offsets(TOPIC, p).map(|o| o.end))
        .sum::<Result<i64, _>>()?;
    if end != n as i64 {
        return Err(
            format!("freshet {via:?} acks={acks:?}: {end} records stored, expected {n}").into(),
        );
    }
    let consumed = match check {
        None => None,
        Some(expected) => {
            let (sum, s) = timed(|| rt.block_on(consume(&log, args)))?;
            if sum != expected {
                return Err(format!("freshet consume: read {sum:?}, expected {expected:?}").into());
            }
            Some(s)
        }
    };
    log.close()?;
    drop(log);
    Ok((produced, consumed))
}

/// Bulk load through the producer, keeping a window of unacknowledged sends: owned
/// [`Record`]s (`Producer::send`), or with `borrowed` each record's fields serialized on
/// the stack and sent from there (`Producer::send_ref`).
async fn produce_with_producer(
    log: &Log,
    args: &Args,
    acks: Acks,
    borrowed: bool,
) -> Result<(), BoxError> {
    let producer = log.producer(ProducerConfig {
        acks,
        linger: Duration::from_millis(args.linger_ms),
        batch_size: args.batch_size,
    });
    // Enough that the oldest send's batch is normally written by the time it is awaited.
    let window = 2 * PARTITIONS as usize * args.batch_records();
    let mut pending = VecDeque::with_capacity(window);
    let mut records = Records::new(args.records, args.alloc_fields);
    for i in 0..args.records {
        if pending.len() == window {
            if let Some(oldest) = pending.pop_front() {
                oldest.await?;
            }
        }
        let sent = if borrowed {
            let (key, value) = (input::key(i), input::value(i));
            producer.send_ref(
                TOPIC,
                RecordRef::new(&key, &value).with_timestamp(input::timestamp(i)),
            )
        } else {
            producer.send(TOPIC, records.get(i))
        };
        pending.push_back(sent);
    }
    producer.flush()?;
    for f in pending {
        f.await?;
    }
    Ok(())
}

/// Bulk load through [`Log::append_refs`], one call per full batch of a partition, as a
/// bulk loader that serializes into a buffer per partition would: each record's key and
/// value are written into the partition's buffer, and the batch borrows them from it.
fn produce_with_append_refs(log: &Log, args: &Args, acks: Acks) -> Result<(), BoxError> {
    let batch = args.batch_records();
    // Per partition: keys and values (16 bytes a record) and timestamps.
    let mut parts: Vec<(Vec<u8>, Vec<i64>)> = (0..PARTITIONS)
        .map(|_| (Vec::with_capacity(16 * batch), Vec::with_capacity(batch)))
        .collect();
    let append = |p: u32, (fields, timestamps): &mut (Vec<u8>, Vec<i64>)| {
        let refs: Vec<RecordRef<'_>> = fields
            .chunks_exact(16)
            .zip(timestamps.iter())
            .map(|(kv, &ts)| RecordRef::new(&kv[..8], &kv[8..]).with_timestamp(ts))
            .collect();
        let res = log.append_refs(TOPIC, p, &refs, acks);
        fields.clear();
        timestamps.clear();
        res
    };
    for i in 0..args.records {
        let key = input::key(i);
        let p = partition_for_key(&key, PARTITIONS);
        let part = &mut parts[p as usize];
        part.0.extend_from_slice(&key);
        part.0.extend_from_slice(&input::value(i));
        part.1.push(input::timestamp(i));
        if part.1.len() == batch {
            append(p, part)?;
        }
    }
    for (p, part) in parts.iter_mut().enumerate() {
        if !part.1.is_empty() {
            append(p as u32, part)?;
        }
    }
    Ok(())
}

/// Bulk load through [`Log::append`] with owned [`Record`]s, one call per full batch of a
/// partition.
fn produce_with_append(log: &Log, args: &Args, acks: Acks) -> Result<(), BoxError> {
    let batch = args.batch_records();
    let mut batches: Vec<Vec<Record>> =
        (0..PARTITIONS).map(|_| Vec::with_capacity(batch)).collect();
    let mut records = Records::new(args.records, args.alloc_fields);
    for i in 0..args.records {
        let p = partition_for_key(&input::key(i), PARTITIONS);
        let b = &mut batches[p as usize];
        b.push(records.get(i));
        if b.len() == batch {
            log.append(TOPIC, p, b, acks)?;
            b.clear();
        }
    }
    for (p, b) in batches.iter().enumerate() {
        if !b.is_empty() {
            log.append(TOPIC, p as u32, b, acks)?;
        }
    }
    Ok(())
}

/// Input records in order `0..n`, built as a bulk loader would: the keys and values of
/// [`ARENA_RECORDS`] records are serialized into one buffer and each record's fields are
/// slices of it. With `alloc_fields` each field is its own allocation instead
/// (`Bytes::copy_from_slice`), which on this machine's allocator costs more than the log
/// itself once batches are large (see bench/README.md).
#[derive(Debug)]
struct Records {
    n: u64,
    alloc_fields: bool,
    arena: Bytes,
    arena_first: u64,
}

/// Records per shared key/value buffer.
const ARENA_RECORDS: u64 = 4096;

impl Records {
    fn new(n: u64, alloc_fields: bool) -> Records {
        Records {
            n,
            alloc_fields,
            arena: Bytes::new(),
            arena_first: 0,
        }
    }

    /// Record `i`; calls go in ascending order.
    fn get(&mut self, i: u64) -> Record {
        let (key, value) = if self.alloc_fields {
            (
                Bytes::copy_from_slice(&input::key(i)),
                Bytes::copy_from_slice(&input::value(i)),
            )
        } else {
            let mut at = (i.wrapping_sub(self.arena_first) * 16) as usize;
            if i < self.arena_first || at >= self.arena.len() {
                let end = (i + ARENA_RECORDS).min(self.n);
                let mut buf = vec![0u8; 16 * (end - i) as usize];
                for (j, kv) in (i..end).zip(buf.chunks_exact_mut(16)) {
                    kv[..8].copy_from_slice(&input::key(j));
                    kv[8..].copy_from_slice(&input::value(j));
                }
                self.arena = Bytes::from(buf);
                self.arena_first = i;
                at = 0;
            }
            (
                self.arena.slice(at..at + 8),
                self.arena.slice(at + 8..at + 16),
            )
        };
        Record::new(key, value).with_timestamp(input::timestamp(i))
    }
}

/// Reads all `n` records back through a consumer, folding each into a checksum.
async fn consume(log: &Log, args: &Args) -> Result<Checksum, BoxError> {
    let n = args.records;
    let mut consumer = log.consumer(FetchOptions {
        max_bytes: args.fetch_bytes,
        max_partition_bytes: args.fetch_bytes,
        max_records: args.max_poll_records,
        isolation: Isolation::ReadCommitted,
        timeout: Duration::from_millis(100),
    });
    for p in 0..PARTITIONS {
        consumer.assign(TOPIC, p, SeekTo::Beginning)?;
    }
    let mut sum = Checksum::default();
    while sum.count < n {
        let fetched = consumer.poll().await?;
        if fetched.is_empty() && consumer.caught_up()? {
            break;
        }
        for f in &fetched {
            for r in &f.records {
                sum.add(
                    r.key.as_deref().unwrap_or_default(),
                    r.value.as_deref().unwrap_or_default(),
                    r.timestamp,
                );
            }
        }
    }
    Ok(sum)
}

/// The baseline: plain files with the same batching; with `check`, read back and checked.
fn baseline_side(
    args: &Args,
    sync: bool,
    check: Option<Checksum>,
) -> Result<(Sample, Option<Sample>), BoxError> {
    let dir = temp_dir(args)?;
    let path: &Path = dir.path();
    let ((), produced) =
        timed(|| plain_log::produce(path, args.records, args.batch_records(), sync))?;
    let consumed = match check {
        None => None,
        Some(expected) => {
            let (sum, s) = timed(|| plain_log::consume(path))?;
            if sum != expected {
                return Err(
                    format!("baseline consume: read {sum:?}, expected {expected:?}").into(),
                );
            }
            Some(s)
        }
    };
    Ok((produced, consumed))
}
