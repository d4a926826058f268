//! freshet: Kafka Streams for Rust, with the broker built in.
//!
//! This facade re-exports the public API of freshet's crates, so an application depends on
//! one package: the embedded log ([`log`]), the state stores ([`state`]) and the streams DSL
//! with its test driver ([`streams`]). The runtime that runs a topology over the log is
//! being built.
//!
//! ```
//! use freshet::prelude::*;
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path())?;
//! log.create_topic("page-views", TopicConfig::partitions(4))?;
//! # Ok::<(), freshet::Error>(())
//! ```

pub use freshet_log as log;
pub use freshet_state_store as state;
pub use freshet_streams as streams;

/// The common imports: `use freshet::prelude::*;`.
pub mod prelude {
    pub use freshet_log::{
        Acks, Consumer, FetchOptions, Isolation, Log, LogConfig, Producer, ProducerConfig, Record,
        RecordRef, SeekTo, TopicConfig,
    };
    pub use freshet_streams::{
        BigEndian, Change, Consumed, EmitStrategy, Grouped, JoinWindows, Json, KGroupedStream,
        KStream, KTable, Materialized, MsgPack, Processor, ProcessorContext, Produced,
        PunctuationType, RawBytes, Repartitioned, Serde, SessionWindows, SlidingWindows,
        StreamsBuilder, TimeWindows, Topology, Utf8, Window, Windowed,
    };
}

/// Any error freshet returns.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the embedded log.
    #[error(transparent)]
    Log(#[from] freshet_log::Error),
    /// From a state store.
    #[error(transparent)]
    State(#[from] freshet_state_store::Error),
    /// From the streams DSL (building a topology, running it in the test driver).
    #[error(transparent)]
    Streams(#[from] freshet_streams::Error),
    /// An I/O error outside the log (so `?` works on std and tokio calls in an app's `main`).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
