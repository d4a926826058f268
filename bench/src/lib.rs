//! freshet's benchmark harness: the workloads of `shared/BENCHMARKS.md`, each beside a
//! baseline measured in the same run, reported as medians and ratios, and the Nexmark
//! queries.
//!
//! ```text
//! cargo run --release -p freshet-bench -- all | w1 | w2 | w3 | w4 | restore | latency \
//!     [--records N] [--keys K] [--guarantee exactly_once_v2|at_least_once] [--threads T] [--json FILE]
//! cargo run --release -p freshet-bench -- nexmark q0|q1|q2|q3|q4|q5|q7|q8|q11|all [--events N]
//! cargo run --release -p freshet-bench -- log [--records N] [--runs R]
//! cargo run --release -p freshet-bench -- store [--records N] [--runs R]
//! ```
//!
//! Each subcommand has its own module; they share the input of BENCHMARKS.md ([`workload`]
//! for the streams workloads, `input` for the log and store ones) and the measuring and
//! reporting helpers ([`measure`]). The library half (this crate's `lib`) is what the
//! correctness tests in `bench/tests/` run with tiny inputs; the binary only parses the
//! command line.

mod input;
pub mod latency;
mod log_bench;
pub mod measure;
mod mem_changelog;
pub mod nexmark;
mod nexmark_bench;
mod plain_log;
pub mod restore;
mod store_bench;
mod streams_bench;
pub mod workload;

use clap::{Parser, Subcommand};

/// The error every workload returns: a failed step or a wrong result.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "freshet-bench", about = "freshet's benchmark workloads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every streams workload of BENCHMARKS.md: w1, w2, w3, w4, restore, latency.
    All(streams_bench::Args),
    /// W1 stateless: map_values → filter → to.
    W1(streams_bench::Args),
    /// W2 tumbling count: 10 s windows, count, suppress until the window closes.
    W2(streams_bench::Args),
    /// W3 hopping sum: 60 s windows advancing 10 s, aggregate a sum.
    W3(streams_bench::Args),
    /// W4 repartition: select_key → group_by_key (repartition topic) → count.
    W4(streams_bench::Args),
    /// R restore: a count over N distinct keys, local state deleted, time until RUNNING.
    Restore(streams_bench::Args),
    /// L latency: W1 at a fixed input rate, p50/p99/p99.9 end-to-end latency.
    Latency(streams_bench::Args),
    /// Nexmark queries over the auction model (persons, auctions, bids).
    Nexmark(nexmark_bench::Args),
    /// Produce and consume throughput of the embedded log against plain files.
    Log(log_bench::Args),
    /// Key-value state store put/get/range throughput, and restore beside a sled bulk insert.
    Store(store_bench::Args),
    /// One freshet run of W1–W4, printed as a JSON line (what the workloads run as child
    /// processes).
    #[command(hide = true)]
    RunOne(streams_bench::RunOneArgs),
}

/// Parses the command line, runs the chosen benchmark and returns the process exit code
/// (an error, including a wrong result, is printed and gives 1).
pub fn main_cli() -> i32 {
    let cli = Cli::parse();
    if cfg!(debug_assertions) && !matches!(cli.command, Command::RunOne(_)) {
        eprintln!(
            "note: debug build; throughput numbers and goals are meaningless (use --release)"
        );
    }
    use streams_bench::Which;
    let result = match cli.command {
        Command::All(args) => streams_bench::run(Which::All, &args),
        Command::W1(args) => streams_bench::run(Which::W1, &args),
        Command::W2(args) => streams_bench::run(Which::W2, &args),
        Command::W3(args) => streams_bench::run(Which::W3, &args),
        Command::W4(args) => streams_bench::run(Which::W4, &args),
        Command::Restore(args) => streams_bench::run(Which::Restore, &args),
        Command::Latency(args) => streams_bench::run(Which::Latency, &args),
        Command::Nexmark(args) => nexmark_bench::run(&args),
        Command::Log(args) => log_bench::run(&args),
        Command::Store(args) => store_bench::run(&args),
        Command::RunOne(args) => streams_bench::run_one(&args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
