//! freshet-streams: the Streams DSL of freshet, with Kafka Streams semantics.
//!
//! The DSL (`StreamsBuilder`, `KStream`, `KTable`, windowed aggregations, joins, the
//! Processor API, `Topology` and the test driver) is being built. Today this crate holds the
//! first piece the rest stands on: the window definitions — [`TimeWindows`],
//! [`SlidingWindows`], [`SessionWindows`] and [`JoinWindows`] — with Kafka Streams 3+
//! constructors, no hidden default grace, and Kafka's validation returned as [`Error`]s
//! instead of thrown.
//!
//! # Examples
//!
//! ```
//! use freshet_streams::{TimeWindows, Window};
//! use std::time::Duration;
//!
//! # fn main() -> freshet_streams::Result<()> {
//! let per_minute = TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(5))?;
//! let windows = per_minute.windows_for(90_000);
//! assert_eq!(windows.values().copied().collect::<Vec<_>>(), vec![Window::new(60_000, 120_000)]);
//! # Ok(())
//! # }
//! ```

mod error;
mod window;

pub use crate::{
    error::{Error, Result},
    window::{JoinWindows, SessionWindows, SlidingWindows, TimeWindows, Window},
};
