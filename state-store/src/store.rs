//! What every store is to the runtime: a name, a changelog, and the commit lifecycle.

use crate::changelog::{ChangelogReader, ChangelogSink};
use crate::error::Result;
use crate::layers::RestoreStats;

/// The commit lifecycle every store follows (see `Layers` for the protocol).
pub trait StateStore: Send + std::fmt::Debug {
    /// The store's name.
    fn name(&self) -> &str;
    /// Commit step 2: sends buffered writes to the changelog; returns how many.
    fn send_changelog(&mut self, sink: &mut dyn ChangelogSink) -> Result<usize>;
    /// Commit step 3 happened: the sent writes are committed.
    fn committed(&mut self);
    /// Commit step 4: applies committed writes to the backend with their changelog offsets.
    fn apply(&mut self) -> Result<()>;
    /// The transaction was aborted: uncommitted writes are dropped.
    fn abort(&mut self);
    /// Replays the changelog after the applied offsets.
    fn restore(&mut self, reader: &mut dyn ChangelogReader) -> Result<RestoreStats>;
    /// Bytes of uncommitted writes.
    fn write_buffer_bytes(&self) -> usize;
}
