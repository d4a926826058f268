//! The `freshet` command-line tool: create and inspect topics, produce lines of stdin as
//! records, consume records as lines, look after consumer-group offsets and reset streams
//! applications — all on a local freshet data directory, with no broker to run.
//!
//! Errors while a command runs print one line, `error: <message>`, and exit with code 1;
//! command-line syntax errors are clap's (with usage, exit code 2).

mod app;
mod consume;
mod error;
mod format;
mod groups;
mod open;
mod output;
mod produce;
mod table;
mod topics;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::error::{CliError, Result};

/// Operate a freshet log from the shell: topics, produce, consume, consumer groups, apps.
#[derive(Debug, Parser)]
#[command(name = "freshet", version, about, max_term_width = 100)]
struct Cli {
    /// The data directory of the log.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "FRESHET_DATA_DIR",
        default_value = "./freshet-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Send the lines of standard input to a topic, one record per line.
    Produce(produce::ProduceArgs),
    /// Print the records of a topic, one per line.
    Consume(consume::ConsumeArgs),
    /// List consumer groups, show their lag, reset their offsets.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Streams applications: reset one to start over on its input.
    #[command(subcommand)]
    App(app::AppCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) | Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error: messages never hold a newline of their own, and
            // a source chain is already part of each message.
            let message = e.to_string().replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            op: "start the async runtime",
            source,
        })?;
    let dir = cli.data_dir;
    match cli.command {
        Command::Topics(cmd) => topics::run(&dir, cmd),
        Command::Produce(args) => runtime.block_on(produce::run(&dir, args)),
        Command::Consume(args) => runtime.block_on(consume::run(&dir, args)),
        Command::Groups(cmd) => groups::run(&dir, cmd),
        Command::App(cmd) => app::run(&dir, cmd),
    }
}

/// Logs go to stderr (stdout carries records); `warn` unless `RUST_LOG` says otherwise.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
