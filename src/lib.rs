//! freshet: Kafka Streams for Rust, with the broker built in.
//!
//! This facade re-exports the public API of freshet's crates, so an application depends on
//! one package: the embedded log ([`log`]), the state stores ([`state`]), the streams DSL
//! with its test driver ([`streams`]) and the runtime that runs a topology over the log
//! ([`runtime`]). `use freshet::prelude::*;` brings the common types.
//!
//! A windowed count, run to the end of its input on an embedded log:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use freshet::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> freshet::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let log = Arc::new(Log::open(dir.path())?);
//! log.create_topic("page-views", TopicConfig::partitions(4))?;
//! let producer = log.producer(ProducerConfig::default());
//! for (user, page, ts) in [("ann", "/", 1_000), ("bob", "/", 2_000), ("ann", "/docs", 30_000)] {
//!     let _ = producer.send("page-views", Record::new(user, page).with_timestamp(ts));
//! }
//! producer.flush()?;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("page-views")
//!     .group_by_key()
//!     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(10))?)
//!     .count_with(Materialized::named("views-per-minute"))
//!     .to_stream()
//!     .map(|w, n| (format!("{}@{}", w.key, w.window.start), n.unwrap_or(0)))
//!     .to("views-per-minute");
//! let mut app = StreamsApp::start(StreamsConfig::new("page-counter"), builder.build()?, log).await?;
//! app.wait_until_caught_up().await?;
//! let counts = app.window_store::<String, i64>("views-per-minute")?;
//! assert_eq!(counts.fetch(&"ann".to_string(), 0, 60_000)?, vec![(0, 2)]);
//! app.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The examples (`cargo run --release --example quickstart`, and `wordcount`, `pageviews`,
//! `repartition`, `sessions`, `enrich`) are complete applications to start from.

pub use freshet_log as log;
pub use freshet_runtime as runtime;
pub use freshet_state_store as state;
pub use freshet_streams as streams;

/// The common imports: `use freshet::prelude::*;`.
pub mod prelude {
    pub use freshet_log::{
        Acks, Consumer, FetchOptions, Isolation, Log, LogConfig, Producer, ProducerConfig, Record,
        RecordRef, SeekTo, TopicConfig,
    };
    pub use freshet_runtime::{AppState, ProcessingGuarantee, StreamsApp, StreamsConfig};
    pub use freshet_streams::{
        BigEndian, BufferConfig, Change, Consumed, EmitStrategy, Grouped, JoinWindows, Joined,
        Json, KGroupedStream, KStream, KTable, Materialized, MsgPack, Processor, ProcessorContext,
        Produced, PunctuationType, RawBytes, Repartitioned, Serde, SessionWindows, SlidingWindows,
        StreamJoined, StreamsBuilder, Suppressed, TimeWindows, Topology, Utf8, Window, Windowed,
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
    /// From the runtime (starting, running, querying or closing a [`StreamsApp`](runtime::StreamsApp)).
    #[error(transparent)]
    Runtime(#[from] freshet_runtime::Error),
    /// An I/O error outside the log (so `?` works on std and tokio calls in an app's `main`).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The README's Rust code, compiled (and, unless `no_run`, run) as doc tests so that it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
