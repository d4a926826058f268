//! Opening the data directory the way each command needs it.
//!
//! One process owns a data directory. Commands that write take ownership for the moment they
//! run; commands that only read never take it: they read alongside whatever owner there is,
//! so `topics describe` or `consume` work while an application runs, and a reader never
//! makes an application that starts at the same moment fail with "locked".

use std::path::Path;

use freshet_log::{Log, LogConfig};

use crate::error::{CliError, Result};

/// What a command does with the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only, never taking ownership.
    Read,
    /// Writes to an existing data directory; fails when another process owns it.
    Write,
    /// Writes, creating the data directory when it is missing (`topics create`).
    Create,
}

/// Opens the data directory at `dir` for `access`.
///
/// # Errors
/// [`CliError::NoDataDir`] when `dir` holds no data directory (except for
/// [`Access::Create`]); the log's [`Error::Locked`] (naming the owner's pid) when a write
/// command meets another owner.
pub(crate) fn open(dir: &Path, access: Access) -> Result<Log> {
    if access != Access::Create && !is_data_dir(dir) {
        return Err(CliError::NoDataDir {
            dir: dir.to_path_buf(),
        });
    }
    if access == Access::Read {
        return Ok(Log::open_read_only(dir)?);
    }
    // A short-lived command has no use for the background cleaner thread.
    let config = LogConfig {
        cleaner_interval: None,
        ..LogConfig::default()
    };
    match Log::open_with(dir, config) {
        Ok(log) => Ok(log),
        Err(e) => Err(e.into()),
    }
}

/// Whether `dir` looks like a freshet data directory (what `Log::open_read_only` checks too).
fn is_data_dir(dir: &Path) -> bool {
    dir.join("topics").is_dir()
}
