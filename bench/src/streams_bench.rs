//! `freshet-bench all | w1 | w2 | w3 | w4 | restore | latency`: the streams workloads of
//! `shared/BENCHMARKS.md`, each configuration (guarantee × threads) beside its baseline in
//! the same invocation, one result line each (see [`crate::workload`], [`crate::restore`]
//! and [`crate::latency`] for what each side does).
//!
//! Per workload: an optional discarded warm-up round, then `--runs` rounds; a round runs
//! the baseline once and every configuration once, the baseline first on even rounds and
//! last on odd ones. A configuration's `ratio` is the median over rounds of
//! (baseline time ÷ its time) in that round; `cpu ratio` likewise with CPU seconds.

use std::path::{Path, PathBuf};

use freshet_runtime::ProcessingGuarantee;
use serde_json::{json, Value};

use crate::latency;
use crate::measure::{median, mib, Sample};
use crate::restore::{self, Restorer};
use crate::workload::{self, Input, Measured, Setup, Workload};
use crate::BoxError;

/// `state.sled.cache.bytes`' default, for the restore baseline.
const SLED_CACHE_BYTES: u64 = 64 << 20;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    All,
    W1,
    W2,
    W3,
    W4,
    Restore,
    Latency,
}

/// `--guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Guarantee {
    #[value(name = "exactly_once_v2")]
    ExactlyOnceV2,
    #[value(name = "at_least_once")]
    AtLeastOnce,
}

impl From<Guarantee> for ProcessingGuarantee {
    fn from(g: Guarantee) -> Self {
        match g {
            Guarantee::ExactlyOnceV2 => ProcessingGuarantee::ExactlyOnceV2,
            Guarantee::AtLeastOnce => ProcessingGuarantee::AtLeastOnce,
        }
    }
}

/// Options of the streams workloads.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Input records N (default 10,000,000; restore: N = K = 1,000,000).
    #[arg(long)]
    records: Option<u64>,
    /// Distinct keys K of W1–W3 and the latency run.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Only this processing guarantee (default: both; latency: at_least_once).
    #[arg(long, value_enum)]
    guarantee: Option<Guarantee>,
    /// Only this many stream threads (default: 1 and 2).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Rounds per workload; medians are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Discarded warm-up rounds (the baseline and the first configuration) per workload.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Latency: records per second.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Latency: seconds of input.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Where to make the per-run temporary directories (default: the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Records per millisecond of event time (BENCHMARKS.md: 100).
    #[arg(long, default_value_t = 100, hide = true)]
    records_per_ms: u64,
    /// Run freshet's side of W1–W4 in this process instead of one child process per run
    /// (a child's peak RSS is its own; in one process, runs inherit each other's heap).
    #[arg(long)]
    in_process: bool,
}

/// Options of the hidden `run-one` subcommand: one freshet run of W1–W4, its measurement
/// printed as one JSON line (the parent's child process).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunOneArgs {
    #[arg(long)]
    workload: String,
    #[arg(long)]
    records: u64,
    #[arg(long)]
    keys: u64,
    #[arg(long)]
    records_per_ms: u64,
    #[arg(long, value_enum)]
    guarantee: Guarantee,
    #[arg(long)]
    threads: usize,
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn workload_named(name: &str) -> Option<Workload> {
    Workload::ALL.into_iter().find(|w| w.id() == name)
}

/// `run-one`: one freshet run, printed as a JSON line.
pub(crate) fn run_one(args: &RunOneArgs) -> Result<(), BoxError> {
    let w = workload_named(&args.workload)
        .ok_or_else(|| format!("unknown workload {}", args.workload))?;
    let input = Input {
        records: args.records,
        keys: args.keys.max(1),
        records_per_ms: args.records_per_ms.max(1),
    };
    let setup = Setup {
        guarantee: args.guarantee.into(),
        threads: args.threads.max(1),
    };
    let mut b = tempfile::Builder::new();
    b.prefix("freshet-bench-");
    let dir = match &args.dir {
        Some(d) => b.tempdir_in(d)?,
        None => b.tempdir()?,
    };
    let m = workload::run_freshet(w, &input, setup, dir.path())?;
    println!(
        "{}",
        json!({
            "wall": m.sample.wall.as_secs_f64(),
            "cpu": m.sample.cpu.as_secs_f64(),
            "peak_rss": m.peak_rss,
            "records_in": m.records_in,
            "close_secs": m.close_secs,
        })
    );
    Ok(())
}

/// One freshet run of `w` in a child process (`freshet-bench run-one …`).
fn run_in_child(
    w: Workload,
    input: &Input,
    setup: Setup,
    dir: Option<&Path>,
) -> Result<Measured, BoxError> {
    let guarantee = match setup.guarantee {
        ProcessingGuarantee::AtLeastOnce => "at_least_once",
        _ => "exactly_once_v2",
    };
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["run-one", "--workload", w.id()])
        .args(["--records", &input.records.to_string()])
        .args(["--keys", &input.keys.to_string()])
        .args(["--records-per-ms", &input.records_per_ms.to_string()])
        .args(["--guarantee", guarantee])
        .args(["--threads", &setup.threads.to_string()]);
    if let Some(d) = dir {
        cmd.arg("--dir").arg(d);
    }
    let out = cmd.stderr(std::process::Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(format!("{} run ({}) failed", w.label(), setup.describe()).into());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim())
        .map_err(|e| format!("{} run: unreadable result {line:?}: {e}", w.label()))?;
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    Ok(Measured {
        sample: Sample {
            wall: std::time::Duration::from_secs_f64(f("wall")),
            cpu: std::time::Duration::from_secs_f64(f("cpu")),
        },
        peak_rss: v.get("peak_rss").and_then(Value::as_u64).unwrap_or(0),
        records_in: v.get("records_in").and_then(Value::as_u64).unwrap_or(0),
        close_secs: f("close_secs"),
    })
}

impl Args {
    fn setups(&self) -> Vec<Setup> {
        let guarantees = match self.guarantee {
            Some(g) => vec![g.into()],
            None => vec![
                ProcessingGuarantee::ExactlyOnceV2,
                ProcessingGuarantee::AtLeastOnce,
            ],
        };
        let threads = match self.threads {
            Some(t) => vec![t.max(1)],
            None => vec![1, 2],
        };
        guarantees
            .iter()
            .flat_map(|&guarantee| {
                threads
                    .iter()
                    .map(move |&threads| Setup { guarantee, threads })
            })
            .collect()
    }

    fn temp_dir(&self) -> Result<tempfile::TempDir, BoxError> {
        let mut b = tempfile::Builder::new();
        b.prefix("freshet-bench-");
        Ok(match &self.dir {
            Some(d) => b.tempdir_in(d)?,
            None => b.tempdir()?,
        })
    }
}

/// Runs the chosen workloads and prints their result lines.
pub(crate) fn run(which: Which, args: &Args) -> Result<(), BoxError> {
    let mut results: Vec<Value> = Vec::new();
    let workloads: Vec<Workload> = match which {
        Which::All => Workload::ALL.to_vec(),
        Which::W1 => vec![Workload::W1],
        Which::W2 => vec![Workload::W2],
        Which::W3 => vec![Workload::W3],
        Which::W4 => vec![Workload::W4],
        Which::Restore | Which::Latency => Vec::new(),
    };
    for w in workloads {
        run_workload(w, args, &mut results)?;
    }
    if matches!(which, Which::All | Which::Restore) {
        run_restore(args, &mut results)?;
    }
    if matches!(which, Which::All | Which::Latency) {
        run_latency(args, &mut results)?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(results))?)?;
    }
    Ok(())
}

/// Median over rounds of `f(freshet sample, baseline sample)`.
fn median_of(pairs: &[(Sample, Sample)], f: impl Fn(&Sample, &Sample) -> f64) -> f64 {
    median(&pairs.iter().map(|(a, b)| f(a, b)).collect::<Vec<_>>())
}

fn median_secs(s: impl Iterator<Item = Sample>) -> f64 {
    median(&s.map(|x| x.wall.as_secs_f64()).collect::<Vec<_>>())
}

fn run_workload(w: Workload, args: &Args, results: &mut Vec<Value>) -> Result<(), BoxError> {
    let mut input = Input::new(args.records.unwrap_or(10_000_000), args.keys);
    input.records_per_ms = args.records_per_ms.max(1);
    let setups = args.setups();
    let freshet = |setup: Setup| -> Result<Measured, BoxError> {
        if args.in_process {
            let dir = args.temp_dir()?;
            workload::run_freshet(w, &input, setup, dir.path())
        } else {
            run_in_child(w, &input, setup, args.dir.as_deref())
        }
    };
    let baseline = || -> Result<Measured, BoxError> {
        let dir = args.temp_dir()?;
        workload::run_baseline(w, &input, dir.path())
    };
    for _ in 0..args.warmup {
        baseline()?;
        if let Some(&s) = setups.first() {
            freshet(s)?;
        }
    }
    // Per setup: (freshet, baseline) samples of each round, and freshet's peak RSS.
    let mut pairs: Vec<Vec<(Sample, Sample)>> = vec![Vec::new(); setups.len()];
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); setups.len()];
    for round in 0..args.runs {
        let baseline_first = round % 2 == 0;
        let mut b = if baseline_first {
            Some(baseline()?)
        } else {
            None
        };
        let mut f = Vec::new();
        for &s in &setups {
            f.push(freshet(s)?);
        }
        if b.is_none() {
            b = Some(baseline()?);
        }
        let Some(b) = b else { continue };
        let mut line = format!(
            "{} round {}/{}: baseline {:.2} s",
            w.id(),
            round + 1,
            args.runs,
            b.sample.wall.as_secs_f64()
        );
        for (i, (s, m)) in setups.iter().zip(&f).enumerate() {
            pairs[i].push((m.sample, b.sample));
            rss[i].push(m.peak_rss);
            line.push_str(&format!(
                "; {}: {:.2} s (cpu {:.2} s, close {:.2} s, peak RSS {:.0} MiB)",
                s.describe(),
                m.sample.wall.as_secs_f64(),
                m.sample.cpu.as_secs_f64(),
                m.close_secs,
                mib(m.peak_rss)
            ));
        }
        eprintln!("{line}");
    }
    let n = input.records;
    for (i, s) in setups.iter().enumerate() {
        let p = &pairs[i];
        let secs = median_secs(p.iter().map(|x| x.0));
        let base_secs = median_secs(p.iter().map(|x| x.1));
        let ratio = median_of(p, |f, b| {
            b.wall.as_secs_f64() / f.wall.as_secs_f64().max(1e-9)
        });
        let cpu_ratio = median_of(p, |f, b| {
            b.cpu.as_secs_f64() / f.cpu.as_secs_f64().max(1e-9)
        });
        let peak = rss[i].iter().copied().max().unwrap_or(0);
        let rate = n as f64 / secs.max(1e-9);
        let base_rate = n as f64 / base_secs.max(1e-9);
        let goal_setup = s.guarantee == ProcessingGuarantee::ExactlyOnceV2 && s.threads == 1;
        let met = ratio >= w.goal();
        println!(
            "{}: {n} records in {secs:.2} s = {:.2} M rec/s (baseline {:.2} M rec/s, ratio {ratio:.2}; cpu ratio {cpu_ratio:.2}), peak RSS {:.0} MiB, {}{}",
            w.label(),
            rate / 1e6,
            base_rate / 1e6,
            mib(peak),
            s.describe(),
            if goal_setup {
                format!(" — goal ratio ≥ {}: {}", w.goal(), if met { "met" } else { "MISSED" })
            } else {
                String::new()
            }
        );
        results.push(json!({
            "workload": w.id(),
            "label": w.label(),
            "records": n,
            "keys": input.keys,
            "guarantee": s.guarantee.as_str(),
            "threads": s.threads,
            "runs": p.len(),
            "seconds": secs,
            "records_per_second": rate,
            "baseline_seconds": base_secs,
            "baseline_records_per_second": base_rate,
            "ratio": ratio,
            "cpu_ratio": cpu_ratio,
            "peak_rss_bytes": peak,
            "goal_ratio": if goal_setup { Some(w.goal()) } else { None },
            "goal_met": if goal_setup { Some(met) } else { None },
        }));
    }
    Ok(())
}

fn run_restore(args: &Args, results: &mut Vec<Value>) -> Result<(), BoxError> {
    let n = args.records.unwrap_or(1_000_000);
    let dir: Option<&Path> = args.dir.as_deref();
    for setup in args.setups() {
        let restorer = Restorer::new(n, setup, dir)?;
        for _ in 0..args.warmup {
            restorer.restore()?;
            restore::bulk_insert(n, SLED_CACHE_BYTES, dir)?;
        }
        let mut pairs = Vec::new();
        let mut rss = Vec::new();
        for round in 0..args.runs {
            let (f, b) = if round % 2 == 0 {
                let f = restorer.restore()?;
                (f, restore::bulk_insert(n, SLED_CACHE_BYTES, dir)?)
            } else {
                let b = restore::bulk_insert(n, SLED_CACHE_BYTES, dir)?;
                (restorer.restore()?, b)
            };
            eprintln!(
                "restore round {}/{}, {}: restore {:.2} s (cpu {:.2} s, peak RSS {:.0} MiB), bulk insert {:.2} s",
                round + 1,
                args.runs,
                setup.describe(),
                f.sample.wall.as_secs_f64(),
                f.sample.cpu.as_secs_f64(),
                mib(f.peak_rss),
                b.sample.wall.as_secs_f64()
            );
            pairs.push((f.sample, b.sample));
            rss.push(f.peak_rss);
        }
        let secs = median_secs(pairs.iter().map(|x| x.0));
        let base_secs = median_secs(pairs.iter().map(|x| x.1));
        let time_ratio = median_of(&pairs, |f, b| {
            f.wall.as_secs_f64() / b.wall.as_secs_f64().max(1e-9)
        });
        let cpu_ratio = median_of(&pairs, |f, b| {
            b.cpu.as_secs_f64() / f.cpu.as_secs_f64().max(1e-9)
        });
        let peak = rss.iter().copied().max().unwrap_or(0);
        let met = time_ratio <= restore::GOAL;
        println!(
            "R restore: {n} records in {secs:.2} s = {:.2} M rec/s (plain sled bulk insert {:.2} M rec/s, time ratio {time_ratio:.2}; cpu ratio {cpu_ratio:.2}), peak RSS {:.0} MiB, {} — goal time ratio ≤ {}: {}",
            n as f64 / secs.max(1e-9) / 1e6,
            n as f64 / base_secs.max(1e-9) / 1e6,
            mib(peak),
            setup.describe(),
            restore::GOAL,
            if met { "met" } else { "MISSED" }
        );
        results.push(json!({
            "workload": "restore",
            "records": n,
            "guarantee": setup.guarantee.as_str(),
            "threads": setup.threads,
            "runs": pairs.len(),
            "seconds": secs,
            "baseline_seconds": base_secs,
            "time_ratio": time_ratio,
            "cpu_ratio": cpu_ratio,
            "peak_rss_bytes": peak,
            "goal_time_ratio": restore::GOAL,
            "goal_met": met,
        }));
    }
    Ok(())
}

fn run_latency(args: &Args, results: &mut Vec<Value>) -> Result<(), BoxError> {
    let guarantee = args
        .guarantee
        .map_or(ProcessingGuarantee::AtLeastOnce, Into::into);
    let threads = match args.threads {
        Some(t) => vec![t.max(1)],
        None => vec![1, 2],
    };
    for t in threads {
        let setup = Setup {
            guarantee,
            threads: t,
        };
        let dir = args.temp_dir()?;
        let l = latency::run(args.rate, args.seconds, args.keys, setup, dir.path())?;
        let met = l.p99_ms <= latency::GOAL_P99_MS;
        println!(
            "L latency: {} records at {} rec/s for {} s, {} outputs: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms (max {:.2} ms; feeder behind by ≤ {:.1} ms), peak RSS {:.0} MiB, {}{}",
            l.sent,
            args.rate,
            args.seconds,
            l.received,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            l.feeder_lag_ms,
            mib(l.peak_rss),
            setup.describe(),
            if guarantee == ProcessingGuarantee::AtLeastOnce && t == 1 {
                format!(
                    " — goal p99 ≤ {} ms: {}",
                    latency::GOAL_P99_MS,
                    if met { "met" } else { "MISSED" }
                )
            } else {
                String::new()
            }
        );
        results.push(json!({
            "workload": "latency",
            "records": l.sent,
            "rate": args.rate,
            "seconds": args.seconds,
            "guarantee": guarantee.as_str(),
            "threads": t,
            "p50_ms": l.p50_ms,
            "p99_ms": l.p99_ms,
            "p999_ms": l.p999_ms,
            "max_ms": l.max_ms,
            "peak_rss_bytes": l.peak_rss,
            "goal_p99_ms": latency::GOAL_P99_MS,
            "goal_met": met,
        }));
    }
    Ok(())
}
