//! freshet-streams: the Streams DSL of freshet, with Kafka Streams semantics.
//!
//! Write a topology with [`StreamsBuilder`] — [`KStream`] and [`KTable`] operators,
//! groupings and aggregations, windows ([`TimeWindows`], [`SlidingWindows`],
//! [`SessionWindows`]) — or by hand with the [`Processor`] API; [`StreamsBuilder::build`]
//! turns it into a [`Topology`] whose [`describe`](Topology::describe) prints Kafka's text.
//! The runtime runs it over the embedded log; [`testing::TopologyTestDriver`] runs it in a
//! test, on the same task core ([`Task`]).
//!
//! Types stay typed between operators; serdes ([`Serde`]) run only at sources, sinks,
//! repartition topics and stores. A serde is the one given (`Consumed`, `Produced`,
//! `Grouped`, `Materialized`), else the one carried from upstream, else the default
//! registered for the type ([`StreamsBuilder::register_serde`]). A null key or value exists
//! only for types that have one (`Option<T>`, `()`).
//!
//! # Examples
//!
//! A count per key, tested with the driver:
//!
//! ```
//! use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("page-views")
//!     .filter(|_user, page| !page.starts_with("/health"))
//!     .group_by_key()
//!     .count()
//!     .to_stream()
//!     .to("views-per-user");
//! let driver = TopologyTestDriver::new(builder.build()?)?;
//! let views = driver.input::<String, String>("page-views");
//! views.pipe("ann".into(), "/a".into(), 0)?;
//! views.pipe("ann".into(), "/health".into(), 1)?;
//! views.pipe("ann".into(), "/b".into(), 2)?;
//! let counts = driver.output::<String, i64>("views-per-user").read_key_values()?;
//! assert_eq!(counts, vec![("ann".to_string(), 1), ("ann".to_string(), 2)]);
//! # Ok::<(), freshet_streams::Error>(())
//! ```

mod dsl;
mod error;
mod ops;
mod partitioner;
mod processor;
mod record;
mod serde;
mod store;
mod task;
pub mod testing;
mod topology;
mod window;

// Each DSL module exports its public types (streams, tables, windowed and session streams,
// joins, suppression, branches, global tables).
pub use crate::dsl::branch::*;
pub use crate::dsl::builder::StreamsBuilder;
pub use crate::dsl::global::*;
pub use crate::dsl::join::*;
pub use crate::dsl::session::*;
pub use crate::dsl::suppress::*;
pub use crate::dsl::table::*;
pub use crate::dsl::windowed::*;
pub use crate::dsl::grouped::KGroupedStream;
pub use crate::dsl::kstream::KStream;
pub use crate::dsl::ktable::{Change, KTable};
pub use crate::dsl::options::{
    Consumed, Grouped, Materialized, OffsetReset, Produced, Repartitioned, TimestampExtractor,
};
pub use crate::error::{Error, Result};
pub use crate::ops::sink::TopicNameExtractor;
pub use crate::partitioner::{murmur2, partition_for_key, StreamPartitioner};
pub use crate::processor::{
    Cancellable, Processor, ProcessorContext, ProcessorSupplier, PunctuationType,
};
pub use crate::record::{Headers, InputRecord, Record, RecordMetadata, SinkRecord};
pub use crate::serde::{
    BigEndian, Json, MsgPack, Nullable, RawBytes, Serde, SerdeRef, SerdeRegistry,
    SessionWindowedSerde, TimeWindowedSerde, Unit, Utf8, Windowed,
};
pub use crate::store::{
    KeyValueStoreHandle, SessionStoreHandle, StoreBuilder, StoreKind, Stores, WindowStoreHandle,
};
pub use crate::task::node::Data;
pub use crate::task::{
    ErrorPolicy, PartitionsOf, StreamTimes, Task, TaskConfig, TaskEnv, TaskId, TaskMetrics,
};
pub use crate::topology::{
    InternalTopic, PartitionCount, SubTopology, TopicName, Topology, TopologyDescription,
    TopologyNodeDescription,
};
pub use crate::window::{JoinWindows, SessionWindows, SlidingWindows, TimeWindows, Window};
