//! Buffered standard output that tells a closed pipe apart from a real write error.
//!
//! Rust ignores SIGPIPE, so `println!` would panic when `freshet consume t | head` closes
//! the pipe; every line goes through [`Output`] instead, and a closed pipe ends the command
//! quietly (see [`CliError::BrokenPipe`]).

use std::io::{BufWriter, StdoutLock, Write};

use crate::error::{CliError, Result};

/// Line-oriented, buffered standard output.
#[derive(Debug)]
pub(crate) struct Output {
    out: BufWriter<StdoutLock<'static>>,
}

impl Output {
    /// Locks standard output for the life of the command.
    pub(crate) fn stdout() -> Output {
        Output {
            out: BufWriter::new(std::io::stdout().lock()),
        }
    }

    /// Writes `line` and a newline (buffered: call [`Output::flush`] to show it now).
    pub(crate) fn line(&mut self, line: &str) -> Result<()> {
        self.out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(CliError::output)
    }

    /// Hands everything written so far to the reader.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(CliError::output)
    }
}
