//! freshet's state stores: local sled (or in-memory) stores that are a cache of changelog
//! topics.
//!
//! Every store is layered: a **write buffer** of uncommitted writes, the writes **sent** to
//! the changelog in the current commit, a **committed overlay** not yet applied to the
//! backend, and the **backend** (sled or memory). Reads merge the layers, newest first. The
//! runtime drives the commit protocol through [`StateStore`]: send the changelog (inside the
//! transaction), mark committed, apply to the backend with each tree's changelog offset. So
//! the backend only holds committed data, and restore after a crash replays only the
//! changelog's tail after the applied offsets — no wipe. The suppression buffer
//! ([`BufferStore`]) is the exception, as in Kafka: it lives in memory and its changelog,
//! and a restart replays that changelog whole.
//!
//! This crate does not depend on the log: the runtime implements [`ChangelogSink`] and
//! [`ChangelogReader`] over it.

mod applies;
mod backend;
mod buffer;
mod cache;
mod changelog;
mod error;
mod filter;
mod kv;
mod layers;
mod segment;
mod serde;
mod session;
mod store;
mod typed;
mod view;
mod window;

pub use crate::applies::Applies;
pub use crate::backend::{Backend, MemoryBackend, SledBackend, Tree, TreeIter, Write};
pub use crate::buffer::{BufferState, BufferStore, BufferedRecord};
pub use crate::cache::{
    CacheStats, CachingKvStore, CachingSessionStore, CachingWindowStore, FlushListener,
    ThreadCache, WindowedFlushListener, WriteBufferBudget,
};
pub use crate::changelog::{
    changelog_topic, ChangelogBatch, ChangelogError, ChangelogPartition, ChangelogReader,
    ChangelogRecord, ChangelogSink, ChangelogTopicConfig, CHANGELOG_ADDITIONAL_RETENTION_MS,
};
pub use crate::error::{Error, Result};
pub use crate::kv::{KeyValueStore, KvStore};
pub use crate::layers::{KvIter, RestoreStats, Timestamped};
pub use crate::serde::{
    compact_bytes, BigEndian, Json, MsgPack, Nullable, RawBytes, Serde, Unit, Utf8,
};
pub use crate::session::{
    SegmentedSessionStore, SessionStore, SessionStoreOptions, TypedSessionStore,
};
pub use crate::store::StateStore;
pub use crate::typed::TypedKvStore;
pub use crate::view::{ReadOnlyKeyValueView, ReadOnlySessionView, ReadOnlyWindowView};
pub use crate::window::{
    default_segment_interval, SegmentedWindowStore, TypedWindowStore, Window, WindowStore,
    WindowStoreOptions, WindowValueIter, Windowed, WindowedIter,
};
