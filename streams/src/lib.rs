//! freshet-streams: the Streams DSL of freshet, with Kafka Streams semantics.
//!
//! If you know Kafka Streams you know this crate: the same types (`StreamsBuilder`,
//! [`KStream`], [`KTable`], [`GlobalKTable`], [`KGroupedStream`], [`TimeWindowedKStream`],
//! [`Windowed`], [`Materialized`], [`Grouped`], [`Produced`], [`Consumed`], [`Suppressed`]),
//! snake_case methods, Kafka 3+ window constructors with no hidden grace, the same node,
//! store and internal-topic names, and the same results for the same input — windows,
//! grace and late records, caching, output timestamps, join results. The runtime
//! (`freshet-runtime`) runs a [`Topology`] over the embedded log; the
//! [`testing::TopologyTestDriver`] runs it in a test on the same task core ([`Task`]).
//!
//! # A windowed count
//!
//! Views per user per minute, with 10 s grace, emitted once per window when it closes:
//!
//! ```
//! use std::time::Duration;
//! use freshet_streams::{
//!     BufferConfig, Materialized, StreamsBuilder, Suppressed, TimeWindows, Windowed,
//!     testing::TopologyTestDriver,
//! };
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("page-views")                  // key: user, value: page
//!     .group_by_key()
//!     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(10))?)
//!     .count_with(Materialized::named("views-per-minute"))     // a named, queryable store
//!     .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
//!     .to_stream()
//!     .map(|w: &Windowed<String>, n| (format!("{}@{}", w.key, w.window.start), n.unwrap_or(0)))
//!     .to("views-per-minute");
//! let topology = builder.build()?;
//! println!("{}", topology.describe());                         // Kafka's text format
//!
//! let driver = TopologyTestDriver::new(topology)?;
//! let views = driver.input::<String, String>("page-views");
//! views.pipe("ann".into(), "/a".into(), 1_000)?;
//! views.pipe("ann".into(), "/b".into(), 59_000)?;
//! views.pipe("bob".into(), "/a".into(), 65_000)?;   // stream time 65 s: [0, 60 s) is in its grace
//! views.pipe("bob".into(), "/b".into(), 62_000)?;   // out of order: still counted
//! assert!(driver.output::<String, i64>("views-per-minute").is_empty());
//! views.pipe("cat".into(), "/c".into(), 70_000)?;   // 60 s <= 70 s - 10 s: [0, 60 s) closes
//! views.pipe("dan".into(), "/d".into(), 130_000)?;  // closes [60 s, 120 s)
//! let counts = driver.output::<String, i64>("views-per-minute").read_key_values()?;
//! assert_eq!(counts, vec![
//!     ("ann@0".to_string(), 2),
//!     ("bob@60000".to_string(), 2),
//!     ("cat@60000".to_string(), 1),
//! ]);
//! # Ok::<(), freshet_streams::Error>(())
//! ```
//!
//! Without `suppress`, every update goes downstream (deduplicated per key by the record
//! cache at each commit, as Kafka's caching does); `emit_strategy(EmitStrategy::OnWindowClose)`
//! on the windowed stream is the other way to emit final results only. A record later than
//! its window's grace is dropped and counted; `late_records_to("late-views")` also writes it
//! to a topic, with the reason in the `__freshet.late.reason` header (beyond Kafka).
//!
//! # What maps to what
//!
//! | Kafka Streams | freshet |
//! |---|---|
//! | `builder.stream("t", Consumed.with(...))` | [`StreamsBuilder::stream`], [`StreamsBuilder::stream_with`] |
//! | `builder.table`, `globalTable` | [`StreamsBuilder::table`], [`StreamsBuilder::global_table`] |
//! | `filter`, `map`, `mapValues`, `flatMap`, `selectKey`, `peek`, `foreach`, `merge`, `split` | same names in snake_case on [`KStream`] |
//! | `to("t", Produced...)`, `to(TopicNameExtractor)` | [`KStream::to`], [`KStream::to_with`], [`KStream::to_dynamic`] |
//! | `groupByKey`, `groupBy`, `count`, `reduce`, `aggregate` | [`KStream::group_by_key`], [`KStream::group_by`], [`KGroupedStream`] |
//! | `windowedBy(TimeWindows / SlidingWindows / SessionWindows)` | [`KGroupedStream::windowed_by`] |
//! | `join(KStream, joiner, JoinWindows)` and left / outer | [`KStream::join`], [`KStream::left_join`], [`KStream::outer_join`] |
//! | `join(KTable, ...)`, `join(GlobalKTable, ...)` | [`KStream::join_table`], [`KStream::join_global`] (and `left_` variants) |
//! | `KTable.join(KTable)`, foreign-key join | [`KTable::join`] (left, outer), [`KTable::join_fk`] |
//! | `suppress(Suppressed.untilWindowCloses(...))` | [`KTable::suppress`] |
//! | `process(ProcessorSupplier, stores...)` | [`KStream::process`], [`Processor`], [`ProcessorContext`] |
//! | `Named.as("x")` | `.named("x")` after the operator; stateful ones take `Materialized::named`, `Grouped::named`, ... |
//! | `TopologyTestDriver` | [`testing::TopologyTestDriver`] |
//!
//! # Types and serdes
//!
//! Records stay typed between operators; serdes ([`Serde`]) run only at sources, sinks,
//! repartition topics and stores. A serde is the one given (`Consumed`, `Produced`,
//! `Grouped`, `Materialized`), else the one carried from upstream, else the default
//! registered for the type: `String` (UTF-8), integers (big-endian, as Kafka's), `Bytes`,
//! and `Option`s of them are built in; register others, e.g. `MsgPack<T>` or `Json<T>`, with
//! [`StreamsBuilder::register_serde`]. A missing serde is a build error naming the operator.
//! A null key or value exists only for types that have one (`Option<T>`, `()`): a topic
//! without keys is read as `stream::<(), V>` or `stream::<Option<K>, V>`.
//!
//! # Names and repartitioning
//!
//! Generated names follow Kafka's counter (`KSTREAM-FILTER-0000000003`,
//! `KSTREAM-AGGREGATE-STATE-STORE-0000000004`); stores are `<application.id>-<store>-changelog`
//! on the log and repartition topics `<application.id>-<name>-repartition`. A key-changing
//! operator followed by a grouping, join or `to_table` inserts a repartition topic and splits
//! the topology into sub-topologies; [`Topology::warnings`] lists the stores and topics whose
//! names were generated (they change when the topology changes: name them).

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
pub use crate::dsl::grouped::KGroupedStream;
pub use crate::dsl::join::*;
pub use crate::dsl::kstream::KStream;
pub use crate::dsl::ktable::{Change, KTable};
pub use crate::dsl::options::{
    Consumed, Grouped, Materialized, OffsetReset, Produced, Repartitioned, TimestampExtractor,
};
pub use crate::dsl::session::*;
pub use crate::dsl::suppress::*;
pub use crate::dsl::table::*;
pub use crate::dsl::windowed::*;
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
pub use crate::task::input::{RawRecord, RawRecords};
pub use crate::task::node::Data;
pub use crate::task::outputs::{Output, OutputTopic, Outputs};
pub use crate::task::{
    ErrorPolicy, PartitionsOf, StreamTimes, Task, TaskConfig, TaskEnv, TaskId, TaskMetrics,
};
pub use crate::topology::{
    InternalTopic, PartitionCount, SubTopology, TopicName, Topology, TopologyDescription,
    TopologyNodeDescription,
};
pub use crate::window::{JoinWindows, SessionWindows, SlidingWindows, TimeWindows, Window};
