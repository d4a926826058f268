//! `freshet-bench store`: throughput of the key-value state stores beside plain sled and a
//! plain `BTreeMap` in the same run, and restore beside a plain sled bulk insert.
//!
//! Stores: [`KvStore`] on [`SledBackend`] and on [`MemoryBackend`], each bare and behind the
//! record cache ([`CachingKvStore`] over a [`ThreadCache`] of 10 MiB, Kafka's default
//! `statestore.cache.max.bytes`). For each, per run:
//!
//! - **put**: N puts into the write buffer with a commit every `--commit-every` puts — the
//!   real commit cycle: flush the cache, `send_changelog` to an in-memory changelog,
//!   `committed`, `apply` — so records/s include the commit cost;
//! - **get**: N gets of committed keys in a pseudo-random order, each value checked;
//! - **range**: one scan of all keys, folded into a checksum and checked.
//!
//! Baselines: a fresh sled database with the same page cache (one `sled::Batch` per commit
//! interval, `get`, `iter`) for the sled stores, a `BTreeMap<Bytes, Bytes>` for the memory
//! stores, storing the same bytes (key, timestamp + value).
//!
//! **restore**: N distinct keys in an in-memory changelog restored into an empty sled store
//! with [`KvStore::restore`] (no local state: a full restore), beside a plain sled bulk
//! insert of the same keys and values in batches of [`RESTORE_BATCH`] records, the size
//! restore reads and writes in. Neither side flushes (restore does not end with one); both
//! flush after the clock stops, so sled's background writes never spill into the next
//! measurement. Goal: restore takes at most [`RESTORE_GOAL`] × the bulk insert's time.
//!
//! A warm-up round of every side runs first and is discarded (`--warmup`): the first run in
//! a process is slower whichever side it is (the heap grows, sled starts its threads). Then
//! sides alternate (freshet first on even runs, the baseline first on odd ones); the report
//! gives medians and the median per-run ratio.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use freshet_state_store::{
    Backend, CachingKvStore, ChangelogPartition, ChangelogRecord, KeyValueStore, KvStore,
    MemoryBackend, SledBackend, StateStore, ThreadCache, Timestamped,
};

use crate::input::{self, be_u64, Checksum};
use crate::measure::{median, timed, Sample};
use crate::mem_changelog::MemChangelog;
use crate::BoxError;

/// Records restore reads from the changelog and writes to sled per batch (`Layers::restore`
/// reads 50,000 at a time); the bulk insert baseline uses batches of the same size.
const RESTORE_BATCH: usize = 50_000;

/// Restore goal: at most this many times the plain bulk insert's time (issue 3, item 5).
const RESTORE_GOAL: f64 = 1.3;

/// `state.sled.cache.bytes`' default.
const SLED_CACHE_BYTES: u64 = 64 << 20;

/// Seed of the pseudo-random get order (the same for every side).
const GET_SEED: u64 = 0x5EED_F4E5_4E70_0001;

/// Options of `freshet-bench store`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Puts (and gets) per store, and the records restore replays. sled is the bottleneck:
    /// it manages ~0.15–0.25 M small inserts/s on a 2-core machine.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Runs per side; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Rounds of every side run first and discarded: the first run in a process pays for
    /// growing the heap and starting sled's threads, whichever side it is.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Distinct keys: put `i` writes key `i % keys` (default: as many as records, so every
    /// key is written once).
    #[arg(long)]
    keys: Option<u64>,
    /// Puts between commits (flush the cache, send the changelog, committed, apply).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    commit_every: u64,
    /// sled's page cache (`state.sled.cache.bytes`), for the stores and the baselines.
    #[arg(long, default_value_t = SLED_CACHE_BYTES)]
    sled_cache_bytes: u64,
    /// The record cache's budget (`statestore.cache.max.bytes`, one thread).
    #[arg(long, default_value_t = ThreadCache::DEFAULT_MAX_BYTES)]
    cache_bytes: usize,
    /// Which part to run: `kv` (put, get, range), `restore`, or `all`.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// Where to make the per-run temporary directories (default: the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Profiling aid: run only this side, `--runs` times, and print its times.
    #[arg(long, value_enum, hide = true)]
    only: Option<Only>,
}

/// What `--part` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    All,
    Kv,
    Restore,
}

/// One side of the benchmark, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    /// `KvStore::restore` into an empty sled store.
    Restore,
    /// The plain sled bulk insert restore is compared with.
    PlainRestore,
    /// put, get, range on one key-value side.
    SledStore,
    SledCached,
    PlainSled,
    MemoryStore,
    MemoryCached,
    PlainMemory,
}

/// The key-value sides: three per backend, the plain baseline first.
const KV_SIDES: [Only; 6] = [
    Only::PlainSled,
    Only::SledStore,
    Only::SledCached,
    Only::PlainMemory,
    Only::MemoryStore,
    Only::MemoryCached,
];

impl Only {
    fn is_plain(self) -> bool {
        matches!(
            self,
            Only::PlainSled | Only::PlainMemory | Only::PlainRestore
        )
    }
}

/// The workload both sides of a key-value comparison run.
#[derive(Debug, Clone, Copy)]
struct Workload {
    /// Puts and gets.
    n: u64,
    /// Distinct keys actually written: `min(--keys, n)`.
    keys: u64,
    commit_every: u64,
}

impl Workload {
    /// Put `i`'s key: `i % keys`, big-endian.
    fn key(&self, i: u64) -> [u8; 8] {
        (i % self.keys).to_be_bytes()
    }

    /// The last put that wrote key `k` (whose value and timestamp a read must return).
    fn last_put(&self, k: u64) -> u64 {
        k + self.keys * ((self.n - 1 - k) / self.keys)
    }

    /// The checksum of a scan of every key.
    fn expected_scan(&self) -> Checksum {
        let mut c = Checksum::default();
        for k in 0..self.keys {
            let i = self.last_put(k);
            c.add(&k.to_be_bytes(), &input::value(i), input::timestamp(i));
        }
        c
    }

    /// The pseudo-random key of get number `g` (splitmix64 of the seed's sequence).
    fn get_key(&self, g: u64) -> u64 {
        let mut z = GET_SEED.wrapping_add(g.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % self.keys
    }

    /// Checks what a get of `k` returned (`value` and `timestamp` of the stored value).
    fn check_get(&self, k: u64, got: Option<(&[u8], i64)>) -> Result<(), BoxError> {
        let i = self.last_put(k);
        match got {
            Some((v, ts)) if be_u64(v) == i && v.len() == 8 && ts == input::timestamp(i) => Ok(()),
            Some((v, ts)) => Err(format!(
                "get of key {k}: value {v:?} at {ts}, expected {i} at {}",
                input::timestamp(i)
            )
            .into()),
            None => Err(format!("get of key {k}: missing").into()),
        }
    }
}

/// One key-value run: put (with commits), get, range.
#[derive(Debug, Clone, Copy)]
struct KvSample {
    put: Sample,
    get: Sample,
    range: Sample,
}

/// The stored value: the timestamp then the value (as the stores and the changelog keep it).
fn stored(i: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&input::timestamp(i).to_be_bytes());
    v[8..].copy_from_slice(&input::value(i));
    v
}

/// `(value, timestamp)` of a stored value.
fn unstored(b: &[u8]) -> (&[u8], i64) {
    if b.len() < 8 {
        return (b, i64::MIN);
    }
    (&b[8..], be_u64(&b[..8]) as i64)
}

fn changelog_partition(store: &str) -> ChangelogPartition {
    ChangelogPartition {
        topic: format!("bench-{store}-changelog"),
        partition: 0,
    }
}

fn temp_dir(args: &Args) -> Result<tempfile::TempDir, BoxError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("freshet-bench-store-");
    Ok(match &args.dir {
        Some(d) => builder.tempdir_in(d)?,
        None => builder.tempdir()?,
    })
}

/// A fresh sled database with the stores' page cache, for the baselines.
fn plain_sled(args: &Args, dir: &tempfile::TempDir) -> Result<sled::Db, BoxError> {
    Ok(sled::Config::new()
        .path(dir.path())
        .cache_capacity(args.sled_cache_bytes)
        .open()?)
}

/// Runs the benchmark and prints its report.
pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let n = args.records;
    if n == 0 {
        return Err("--records must be at least 1".into());
    }
    let w = Workload {
        n,
        keys: args.keys.unwrap_or(n).clamp(1, n),
        commit_every: args.commit_every,
    };
    println!(
        "store: {n} records, {} distinct keys (8-byte big-endian ids), values 8 B + timestamp; {} runs after {} warm-up; a commit every {} puts; sled page cache {} MiB; record cache {} MiB",
        w.keys,
        args.runs,
        args.warmup,
        w.commit_every,
        args.sled_cache_bytes >> 20,
        args.cache_bytes >> 20,
    );
    let (do_kv, do_restore) = match args.only {
        Some(only) => {
            let restore = matches!(only, Only::Restore | Only::PlainRestore);
            (!restore, restore)
        }
        None => (args.part != Part::Restore, args.part != Part::Kv),
    };
    let mut restore_log = restore_records(if do_restore { n } else { 0 });
    if let Some(only) = args.only {
        return run_only(args, only, w, &mut restore_log);
    }
    let expected = w.expected_scan();
    let mut kv: BTreeMap<&'static str, Vec<KvSample>> = BTreeMap::new();
    let mut restore: Vec<(Sample, Sample)> = Vec::new();
    for round in 0..args.warmup + args.runs {
        let warmup = round < args.warmup;
        let run = round.saturating_sub(args.warmup);
        let freshet_first = run % 2 == 0;
        let tag = if warmup {
            format!("warm-up {}/{}", round + 1, args.warmup)
        } else {
            format!("run {}/{}", run + 1, args.runs)
        };
        let sides = if do_kv { &KV_SIDES[..] } else { &[] };
        for backend in sides.chunks(3) {
            let mut sides = backend.to_vec();
            if freshet_first {
                sides.rotate_left(1);
            }
            for side in sides {
                let s = kv_side(args, side, w, expected)?;
                eprintln!(
                    "{tag}: {:<14} put {:.2} s, get {:.2} s, range {:.3} s",
                    side_name(side),
                    s.put.wall.as_secs_f64(),
                    s.get.wall.as_secs_f64(),
                    s.range.wall.as_secs_f64(),
                );
                if !warmup {
                    kv.entry(side_name(side)).or_default().push(s);
                }
            }
        }
        if !do_restore {
            continue;
        }
        let (r, p) = if freshet_first {
            let r = restore_side(args, &mut restore_log)?;
            (r, plain_restore_side(args, &restore_log)?)
        } else {
            let p = plain_restore_side(args, &restore_log)?;
            (restore_side(args, &mut restore_log)?, p)
        };
        eprintln!(
            "{tag}: restore {:.2} s, plain sled bulk insert {:.2} s (ratio {:.2})",
            r.wall.as_secs_f64(),
            p.wall.as_secs_f64(),
            r.wall.as_secs_f64() / p.wall.as_secs_f64().max(1e-9),
        );
        if !warmup {
            restore.push((r, p));
        }
    }
    if do_kv {
        report_kv(args, w, &kv);
    }
    if do_restore {
        report_restore(w, &restore);
    }
    Ok(())
}

fn side_name(side: Only) -> &'static str {
    match side {
        Only::SledStore => "sled",
        Only::SledCached => "sled+cache",
        Only::PlainSled => "plain sled",
        Only::MemoryStore => "memory",
        Only::MemoryCached => "memory+cache",
        Only::PlainMemory => "plain BTreeMap",
        Only::Restore => "restore",
        Only::PlainRestore => "plain restore",
    }
}

fn report_kv(args: &Args, w: Workload, kv: &BTreeMap<&'static str, Vec<KvSample>>) {
    let cache = format!("cache {} MiB", args.cache_bytes >> 20);
    type Pick = fn(&KvSample) -> Sample;
    let ops: [(&str, u64, Pick); 3] = [
        ("put", w.n, |s| s.put),
        ("get", w.n, |s| s.get),
        ("range", w.keys, |s| s.range),
    ];
    for (op, records, pick) in ops {
        for (side, plain, what) in [
            (Only::SledStore, Only::PlainSled, "sled, no cache"),
            (
                Only::SledCached,
                Only::PlainSled,
                &*format!("sled, {cache}"),
            ),
            (Only::MemoryStore, Only::PlainMemory, "memory, no cache"),
            (
                Only::MemoryCached,
                Only::PlainMemory,
                &*format!("memory, {cache}"),
            ),
        ] {
            let get = |s: Only| -> Vec<Sample> {
                kv.get(side_name(s))
                    .map(|v| v.iter().map(pick).collect())
                    .unwrap_or_default()
            };
            let (f, b) = (get(side), get(plain));
            let (f_secs, b_secs) = (median_secs(&f), median_secs(&b));
            println!(
                "{op} {what}: {records} records in {f_secs:.2} s = {:.2} M rec/s ({} {:.2} M rec/s, ratio {:.2})",
                rate(records, f_secs),
                side_name(plain),
                rate(records, b_secs),
                median_ratio(&b, &f),
            );
        }
    }
}

fn report_restore(w: Workload, restore: &[(Sample, Sample)]) {
    let (r, p): (Vec<Sample>, Vec<Sample>) = restore.iter().copied().unzip();
    let (r_secs, p_secs) = (median_secs(&r), median_secs(&p));
    // The goal is about time: this ratio is restore time ÷ bulk insert time.
    let ratio = median_ratio(&r, &p);
    println!(
        "restore: {} records in {r_secs:.2} s = {:.2} M rec/s (plain sled bulk insert {:.2} M rec/s, ratio {ratio:.2}; goal ≤ {RESTORE_GOAL}× the time): {}",
        w.n,
        rate(w.n, r_secs),
        rate(w.n, p_secs),
        if ratio <= RESTORE_GOAL { "met" } else { "MISSED" },
    );
}

fn median_secs(s: &[Sample]) -> f64 {
    median(&s.iter().map(|x| x.wall.as_secs_f64()).collect::<Vec<_>>())
}

/// Median over runs of `num`'s time ÷ `den`'s time (for throughput: `den` ÷ `num`).
fn median_ratio(num: &[Sample], den: &[Sample]) -> f64 {
    let r: Vec<f64> = num
        .iter()
        .zip(den)
        .map(|(a, b)| a.wall.as_secs_f64() / b.wall.as_secs_f64().max(1e-9))
        .collect();
    median(&r)
}

fn rate(records: u64, secs: f64) -> f64 {
    records as f64 / secs.max(1e-9) / 1e6
}

fn run_only(
    args: &Args,
    only: Only,
    w: Workload,
    restore_log: &mut MemChangelog,
) -> Result<(), BoxError> {
    let expected = (!matches!(only, Only::Restore | Only::PlainRestore)).then(|| w.expected_scan());
    for round in 0..args.warmup + args.runs {
        let tag = if round < args.warmup {
            " (warm-up)"
        } else {
            ""
        };
        match (only, expected) {
            (Only::Restore | Only::PlainRestore, _) => {
                let s = if only == Only::Restore {
                    restore_side(args, restore_log)?
                } else {
                    plain_restore_side(args, restore_log)?
                };
                println!(
                    "{only:?}{tag}: {:.3} s (cpu {:.3} s)",
                    s.wall.as_secs_f64(),
                    s.cpu.as_secs_f64()
                );
            }
            (side, Some(expected)) => {
                let s = kv_side(args, side, w, expected)?;
                println!(
                    "{only:?}{tag}: put {:.3} s, get {:.3} s, range {:.3} s",
                    s.put.wall.as_secs_f64(),
                    s.get.wall.as_secs_f64(),
                    s.range.wall.as_secs_f64()
                );
            }
            (_, None) => unreachable!("expected is computed for every key-value side"),
        }
    }
    Ok(())
}

// ---- key-value: freshet ----

/// A store the benchmark drives: [`KvStore`] bare or behind the record cache.
trait BenchStore: KeyValueStore {
    /// Commit step 1: writes the cache's dirty entries down (nothing without a cache).
    fn flush_cache(&mut self) -> freshet_state_store::Result<()>;
}

impl BenchStore for KvStore {
    fn flush_cache(&mut self) -> freshet_state_store::Result<()> {
        Ok(())
    }
}

impl BenchStore for CachingKvStore<KvStore> {
    fn flush_cache(&mut self) -> freshet_state_store::Result<()> {
        self.flush()
    }
}

/// One key-value side in fresh state: a store (or a baseline) filled, read and scanned.
fn kv_side(args: &Args, side: Only, w: Workload, expected: Checksum) -> Result<KvSample, BoxError> {
    const STORE: &str = "kv-bench";
    let dir = temp_dir(args)?;
    if side.is_plain() {
        return match side {
            Only::PlainSled => plain_sled_kv(args, &dir, w, expected),
            _ => plain_memory_kv(w, expected),
        };
    }
    let sled = match side {
        Only::SledStore | Only::SledCached => {
            Some(SledBackend::open(dir.path(), args.sled_cache_bytes)?)
        }
        _ => None,
    };
    let backend: Arc<dyn Backend> = match &sled {
        Some(s) => Arc::new(s.clone()),
        None => Arc::new(MemoryBackend::new()),
    };
    let partition = changelog_partition(STORE);
    let store = KvStore::open(STORE, backend, Some(partition.clone()))?;
    let mut sink = MemChangelog::new(partition);
    let sample = if matches!(side, Only::SledCached | Only::MemoryCached) {
        let cache = ThreadCache::new(args.cache_bytes);
        let mut store = CachingKvStore::new(store, &cache, "0_0")?;
        exercise(&mut store, &mut sink, w, expected)?
    } else {
        let mut store = store;
        exercise(&mut store, &mut sink, w, expected)?
    };
    if sink.len() as u64 > w.n || sink.len() == 0 {
        return Err(format!(
            "{}: {} changelog records for {} puts",
            side_name(side),
            sink.len(),
            w.n
        )
        .into());
    }
    if let Some(s) = sled {
        // sled writes in the background: finish that before the next side's clock starts.
        s.flush()?;
    }
    Ok(sample)
}

fn exercise<S: BenchStore>(
    store: &mut S,
    sink: &mut MemChangelog,
    w: Workload,
    expected: Checksum,
) -> Result<KvSample, BoxError> {
    let ((), put) = timed(|| {
        for i in 0..w.n {
            let value = Timestamped {
                value: Bytes::copy_from_slice(&input::value(i)),
                timestamp: input::timestamp(i),
            };
            store.put(Bytes::copy_from_slice(&w.key(i)), Some(value))?;
            if (i + 1) % w.commit_every == 0 || i + 1 == w.n {
                commit(store, sink)?;
            }
        }
        Ok(())
    })?;
    let ((), get) = timed(|| {
        for g in 0..w.n {
            let k = w.get_key(g);
            let v = store.get(&k.to_be_bytes())?;
            w.check_get(k, v.as_ref().map(|v| (&v.value[..], v.timestamp)))?;
        }
        Ok(())
    })?;
    let (sum, range) = timed(|| {
        let mut c = Checksum::default();
        for item in store.all()? {
            let (k, v) = item?;
            c.add(&k, &v.value, v.timestamp);
        }
        Ok(c)
    })?;
    if sum != expected {
        return Err(format!("scan of the store: {sum:?}, expected {expected:?}").into());
    }
    Ok(KvSample { put, get, range })
}

/// The commit cycle: flush the cache, send the changelog, committed, apply.
fn commit<S: BenchStore>(store: &mut S, sink: &mut MemChangelog) -> Result<(), BoxError> {
    store.flush_cache()?;
    store.send_changelog(sink)?;
    store.committed();
    store.apply()?;
    Ok(())
}

// ---- key-value: baselines ----

/// Plain sled: one batch per commit interval, `get`, `iter`.
fn plain_sled_kv(
    args: &Args,
    dir: &tempfile::TempDir,
    w: Workload,
    expected: Checksum,
) -> Result<KvSample, BoxError> {
    let db = plain_sled(args, dir)?;
    let tree = db.open_tree("kv-bench")?;
    let ((), put) = timed(|| {
        let mut batch = sled::Batch::default();
        for i in 0..w.n {
            batch.insert(&w.key(i)[..], &stored(i)[..]);
            if (i + 1) % w.commit_every == 0 || i + 1 == w.n {
                tree.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        Ok(())
    })?;
    let ((), get) = timed(|| {
        for g in 0..w.n {
            let k = w.get_key(g);
            let v = tree.get(k.to_be_bytes())?;
            w.check_get(k, v.as_deref().map(unstored))?;
        }
        Ok(())
    })?;
    let (sum, range) = timed(|| {
        let mut c = Checksum::default();
        for item in tree.iter() {
            let (k, v) = item?;
            let (value, ts) = unstored(&v);
            c.add(&k, value, ts);
        }
        Ok(c)
    })?;
    if sum != expected {
        return Err(format!("scan of plain sled: {sum:?}, expected {expected:?}").into());
    }
    db.flush()?;
    Ok(KvSample { put, get, range })
}

/// A `BTreeMap<Bytes, Bytes>` holding what the memory backend holds.
fn plain_memory_kv(w: Workload, expected: Checksum) -> Result<KvSample, BoxError> {
    let mut map: BTreeMap<Bytes, Bytes> = BTreeMap::new();
    let ((), put) = timed(|| {
        for i in 0..w.n {
            map.insert(
                Bytes::copy_from_slice(&w.key(i)),
                Bytes::copy_from_slice(&stored(i)),
            );
        }
        Ok(())
    })?;
    let ((), get) = timed(|| {
        for g in 0..w.n {
            let k = w.get_key(g);
            let v = map.get(&k.to_be_bytes()[..]);
            w.check_get(k, v.map(|v| unstored(v)))?;
        }
        Ok(())
    })?;
    let (sum, range) = timed(|| {
        let mut c = Checksum::default();
        for (k, v) in &map {
            let (value, ts) = unstored(v);
            c.add(k, value, ts);
        }
        Ok(c)
    })?;
    if sum != expected {
        return Err(format!("scan of the BTreeMap: {sum:?}, expected {expected:?}").into());
    }
    Ok(KvSample { put, get, range })
}

// ---- restore ----

const RESTORE_STORE: &str = "restore-bench";

/// The changelog restore replays: `n` distinct keys (`i` big-endian), value `i`, timestamp
/// of record `i`; keys and values are slices of two shared buffers.
fn restore_records(n: u64) -> MemChangelog {
    let mut keys = Vec::with_capacity(n as usize * 8);
    let mut values = Vec::with_capacity(n as usize * 8);
    for i in 0..n {
        keys.extend_from_slice(&i.to_be_bytes());
        values.extend_from_slice(&input::value(i));
    }
    let (keys, values) = (Bytes::from(keys), Bytes::from(values));
    let records = (0..n as usize)
        .map(|i| ChangelogRecord {
            key: keys.slice(i * 8..i * 8 + 8),
            value: Some(values.slice(i * 8..i * 8 + 8)),
            timestamp: input::timestamp(i as u64),
        })
        .collect();
    MemChangelog::with_records(changelog_partition(RESTORE_STORE), records)
}

/// `KvStore::restore` of the whole changelog into an empty sled store.
fn restore_side(args: &Args, log: &mut MemChangelog) -> Result<Sample, BoxError> {
    let dir = temp_dir(args)?;
    let sled = SledBackend::open(dir.path(), args.sled_cache_bytes)?;
    let mut store = KvStore::open(
        RESTORE_STORE,
        Arc::new(sled.clone()),
        Some(changelog_partition(RESTORE_STORE)),
    )?;
    let (stats, sample) = timed(|| Ok(store.restore(log)?))?;
    let n = log.len() as u64;
    if !stats.wiped || stats.records_applied != n || store.approximate_num_entries() != n {
        return Err(format!(
            "restore: {stats:?}, {} entries; expected a full restore of {n} records",
            store.approximate_num_entries()
        )
        .into());
    }
    for g in 0..1000.min(n) {
        let k = (g * 7919) % n;
        let v = store.get(&k.to_be_bytes())?;
        let ok = v
            .as_ref()
            .is_some_and(|v| be_u64(&v.value) == k && v.timestamp == input::timestamp(k));
        if !ok {
            return Err(format!("restore: key {k} reads {v:?}").into());
        }
    }
    sled.flush()?;
    Ok(sample)
}

/// A plain sled bulk insert of the same records: a fresh database with the same page cache,
/// `sled::Batch`es of [`RESTORE_BATCH`] records of key → timestamp + value.
fn plain_restore_side(args: &Args, log: &MemChangelog) -> Result<Sample, BoxError> {
    let dir = temp_dir(args)?;
    let db = plain_sled(args, &dir)?;
    let tree = db.open_tree(RESTORE_STORE)?;
    let ((), sample) = timed(|| {
        for chunk in log.records().chunks(RESTORE_BATCH) {
            let mut batch = sled::Batch::default();
            for r in chunk {
                let mut v = [0u8; 16];
                v[..8].copy_from_slice(&r.timestamp.to_be_bytes());
                v[8..].copy_from_slice(r.value.as_deref().unwrap_or_default());
                batch.insert(&r.key[..], &v[..]);
            }
            tree.apply_batch(batch)?;
        }
        Ok(())
    })?;
    if tree.len() != log.len() {
        return Err(format!("plain restore: {} keys, expected {}", tree.len(), log.len()).into());
    }
    db.flush()?;
    Ok(sample)
}
