//! freshet's benchmark harness: the workloads of `shared/BENCHMARKS.md`, each beside a
//! baseline measured in the same run, reported as medians and ratios.
//!
//! ```text
//! cargo run --release -p freshet-bench -- log [--records N] [--runs R]
//! cargo run --release -p freshet-bench -- store [--records N] [--runs R]
//! ```
//!
//! Each workload is a subcommand with its own module; they share the input of
//! BENCHMARKS.md ([`input`]) and the measuring and reporting helpers ([`measure`]).

mod input;
mod log_bench;
mod measure;
mod mem_changelog;
mod plain_log;
mod store_bench;

use clap::{Parser, Subcommand};

/// The error every workload returns: a failed step or a wrong result.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "freshet-bench", about = "freshet's benchmark workloads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Produce and consume throughput of the embedded log against plain files.
    Log(log_bench::Args),
    /// Key-value state store put/get/range throughput, and restore beside a sled bulk insert.
    Store(store_bench::Args),
}

fn main() {
    let cli = Cli::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "note: debug build; throughput numbers and goals are meaningless (use --release)"
        );
    }
    let result = match cli.command {
        Command::Log(args) => log_bench::run(&args),
        Command::Store(args) => store_bench::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
