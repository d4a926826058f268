//! The soft limit on a thread's write buffers.

use crate::store::StateStore;

/// The soft limit on a thread's write buffers (`statestore.write.buffer.max.bytes`): past
/// it, the runtime commits at the next record boundary (never inside a record), so
/// uncommitted writes cannot grow without bound between `commit.interval.ms` ticks.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use freshet_state_store::{KeyValueStore, KvStore, MemoryBackend, StateStore, Timestamped, WriteBufferBudget};
///
/// let mut store = KvStore::open("counts", Arc::new(MemoryBackend::new()), None)?;
/// let budget = WriteBufferBudget::new(100);
/// assert!(!budget.should_commit([&store]));
/// store.put(Bytes::from(vec![0u8; 100]), Some(Timestamped { value: Bytes::new(), timestamp: 0 }))?;
/// assert!(budget.should_commit([&store]));
/// # Ok::<(), freshet_state_store::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBufferBudget {
    max_bytes: usize,
}

impl Default for WriteBufferBudget {
    fn default() -> Self {
        WriteBufferBudget::new(WriteBufferBudget::DEFAULT_MAX_BYTES)
    }
}

impl WriteBufferBudget {
    /// `statestore.write.buffer.max.bytes`'s default: 64 MiB per stream thread.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

    /// A soft limit of `max_bytes` for one thread's stores.
    pub fn new(max_bytes: usize) -> WriteBufferBudget {
        WriteBufferBudget { max_bytes }
    }

    /// The limit.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Uncommitted bytes over `stores` (the sum of [`StateStore::write_buffer_bytes`]).
    pub fn used<'a, S, I>(&self, stores: I) -> usize
    where
        S: StateStore + ?Sized + 'a,
        I: IntoIterator<Item = &'a S>,
    {
        stores.into_iter().map(|s| s.write_buffer_bytes()).sum()
    }

    /// Whether the thread should commit at the next record boundary: its stores' write
    /// buffers together exceed the limit.
    pub fn should_commit<'a, S, I>(&self, stores: I) -> bool
    where
        S: StateStore + ?Sized + 'a,
        I: IntoIterator<Item = &'a S>,
    {
        self.used(stores) > self.max_bytes
    }
}
