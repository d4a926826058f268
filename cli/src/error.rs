//! The one error type of the `freshet` binary: every failure the user can cause or meet
//! while a command runs, each printed as one line `error: <message>`.

use std::path::PathBuf;

/// Why a command failed. Messages are lowercase and name what and where, like the log's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The log refused or failed (unknown topic, locked data dir, bad config, i/o, …).
    #[error(transparent)]
    Log(#[from] freshet_log::Error),
    /// `--data-dir` does not point at a freshet data directory (and the command does not
    /// create one): refusing beats silently creating an empty log at a mistyped path.
    #[error(
        "no freshet data dir at {} (create a topic first, or pass --data-dir)",
        dir.display()
    )]
    NoDataDir {
        /// The directory given.
        dir: PathBuf,
    },
    /// An input line of `freshet produce` did not parse, or its record was refused.
    /// The records of the lines before it were produced: the message says how many.
    #[error("line {line}: {reason} ({})", produced_text(*produced))]
    Line {
        /// 1-based line number in the input.
        line: u64,
        /// What is wrong with it.
        reason: String,
        /// How many records of earlier lines were produced.
        produced: u64,
    },
    /// Options that parse one by one but do not fit together or with the topic.
    #[error("{0}")]
    Usage(String),
    /// Reading the input or writing the output failed.
    #[error("i/o error during {op}: {source}")]
    Io {
        /// What was being done (`read stdin`, `write stdout`).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Standard output was closed while `produce --print-offsets` wrote to it: the rest of
    /// the input was not produced.
    #[error(
        "standard output closed while printing offsets: stopped after {sent} records \
         were sent, the rest of the input was not produced"
    )]
    OutputClosed {
        /// Records sent before the producer stopped.
        sent: u64,
    },
    /// Standard output was closed by its reader (`freshet consume t | head`): not a failure
    /// of ours, so the binary stops quietly with success.
    #[error("standard output closed")]
    BrokenPipe,
}

impl CliError {
    /// Wraps an output error: a closed pipe becomes [`CliError::BrokenPipe`].
    pub(crate) fn output(source: std::io::Error) -> CliError {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Io {
                op: "write stdout",
                source,
            }
        }
    }
}

fn produced_text(produced: u64) -> String {
    match produced {
        0 => "no record before it was produced".to_string(),
        1 => "1 record before it was produced".to_string(),
        n => format!("{n} records before it were produced"),
    }
}

/// `Result` with [`CliError`].
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;
