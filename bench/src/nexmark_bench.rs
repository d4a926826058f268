//! `freshet-bench nexmark qN|all --events N`: each query over N generated events, timed
//! from the app's start until it is caught up, checked against its oracle, reported as
//! events per second (wall clock) and per CPU-second (user + system of the whole process),
//! medians over `--runs`. Each run is a child process (its peak RSS is its own) unless
//! `--in-process`.

use std::path::PathBuf;

use freshet_runtime::ProcessingGuarantee;
use serde_json::{json, Value};

use std::time::Duration;

use crate::measure::{median, mib, Sample};
use crate::nexmark::{self, Query};
use crate::workload::{Measured, Setup};
use crate::BoxError;

/// Options of `freshet-bench nexmark`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// The query (`q0`, `q1`, `q2`, `q3`, `q4`, `q5`, `q7`, `q8`, `q11`) or `all`.
    query: String,
    /// Generated events (persons, auctions and bids, 1:3:46).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Processing guarantee.
    #[arg(long, value_enum, default_value_t = crate::streams_bench::Guarantee::ExactlyOnceV2)]
    guarantee: crate::streams_bench::Guarantee,
    /// Stream threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Runs per query; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where to make the per-run temporary directories (default: the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run each query in this process instead of one child process per run (a child's
    /// peak RSS is its own; in one process, runs inherit each other's heap).
    #[arg(long)]
    in_process: bool,
    /// Hidden: be that child — one run, its measurement printed as a JSON line.
    #[arg(long, hide = true)]
    child: bool,
}

/// One run of `q`: here, or in a child process (`freshet-bench nexmark qN --child …`).
fn run_once(q: Query, args: &Args, setup: Setup) -> Result<Measured, BoxError> {
    if args.in_process || args.child {
        let mut b = tempfile::Builder::new();
        b.prefix("freshet-bench-nexmark-");
        let dir = match &args.dir {
            Some(d) => b.tempdir_in(d)?,
            None => b.tempdir()?,
        };
        return nexmark::run(q, args.events, setup, dir.path());
    }
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["nexmark", q.name(), "--child"])
        .args(["--events", &args.events.to_string()])
        .args(["--guarantee", setup.guarantee.as_str()])
        .args(["--threads", &setup.threads.to_string()]);
    if let Some(d) = &args.dir {
        cmd.arg("--dir").arg(d);
    }
    let out = cmd.stderr(std::process::Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(format!("nexmark {} ({}) failed", q.name(), setup.describe()).into());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim())
        .map_err(|e| format!("nexmark {}: unreadable result {line:?}: {e}", q.name()))?;
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    Ok(Measured {
        sample: Sample {
            wall: Duration::from_secs_f64(f("wall")),
            cpu: Duration::from_secs_f64(f("cpu")),
        },
        peak_rss: v.get("peak_rss").and_then(Value::as_u64).unwrap_or(0),
        records_in: v.get("records_in").and_then(Value::as_u64).unwrap_or(0),
        close_secs: f("close_secs"),
    })
}

/// Runs the chosen queries and prints one line each.
pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let queries: Vec<Query> = if args.query.eq_ignore_ascii_case("all") {
        Query::ALL.to_vec()
    } else {
        vec![Query::parse(&args.query).ok_or_else(|| {
            format!(
                "unknown query {} (q0, q1, q2, q3, q4, q5, q7, q8, q11 or all)",
                args.query
            )
        })?]
    };
    let setup = Setup {
        guarantee: ProcessingGuarantee::from(args.guarantee),
        threads: args.threads.max(1),
    };
    if args.child {
        let q = queries.first().copied().ok_or("no query")?;
        let m = run_once(q, args, setup)?;
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
        return Ok(());
    }
    let mut results = Vec::<Value>::new();
    for q in queries {
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        let mut rss = 0u64;
        for run in 0..args.runs {
            let m = run_once(q, args, setup)?;
            eprintln!(
                "nexmark {} run {}/{}: {:.2} s (cpu {:.2} s, close {:.2} s, {} records in, peak RSS {:.0} MiB)",
                q.name(),
                run + 1,
                args.runs,
                m.sample.wall.as_secs_f64(),
                m.sample.cpu.as_secs_f64(),
                m.close_secs,
                m.records_in,
                mib(m.peak_rss)
            );
            walls.push(m.sample.wall.as_secs_f64());
            cpus.push(m.sample.cpu.as_secs_f64());
            rss = rss.max(m.peak_rss);
        }
        let (wall, cpu) = (median(&walls), median(&cpus));
        let n = args.events as f64;
        println!(
            "nexmark {} ({}): {} events in {wall:.2} s = {:.3} M events/s, {:.3} M events per CPU-second, peak RSS {:.0} MiB, {}",
            q.name(),
            q.title(),
            args.events,
            n / wall.max(1e-9) / 1e6,
            n / cpu.max(1e-9) / 1e6,
            mib(rss),
            setup.describe()
        );
        results.push(json!({
            "query": q.name(),
            "events": args.events,
            "guarantee": setup.guarantee.as_str(),
            "threads": setup.threads,
            "runs": walls.len(),
            "seconds": wall,
            "cpu_seconds": cpu,
            "events_per_second": n / wall.max(1e-9),
            "events_per_cpu_second": n / cpu.max(1e-9),
            "peak_rss_bytes": rss,
        }));
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(results))?)?;
    }
    Ok(())
}
