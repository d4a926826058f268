//! freshet's embedded log: durable topics and partitions on local disk, with Kafka's
//! semantics — offsets, the default partitioner, consumer groups, retention, compaction and
//! transactions — and no broker process.
//!
//! # Layout on disk
//! A data directory holds `topics/<name>/topic.json` and one directory per partition of
//! segment files (`{base_offset:020}.log`, `.index`, `.timeindex`); the format is written
//! down in `log/docs/format.md`. One process owns a data directory (the lock file
//! `freshet.lock` holds its pid); others may open it read-only.
//!
//! # Guarantees
//! - [`Acks::Written`] (default): an acknowledged record survives a crash of the process.
//! - [`Acks::Synced`]: it also survives a power loss (fsynced before the acknowledgement).
//! - Recovery on open truncates a torn tail of the active segment; a corrupt batch in a
//!   sealed segment is reported as [`Error::Corrupt`], never returned as records.
//! - `read_committed` readers see records up to the last stable offset, without aborted
//!   transactions or markers.
//! - The owning process reads segment files through a read-only memory mapping (fetched
//!   batches are views of the page cache, not copies); a disk read failure there raises
//!   `SIGBUS` rather than an error. Read-only openers use `pread`.
//!
//! # Examples
//! ```
//! use freshet_log::{Acks, Isolation, Log, Record, TopicConfig};
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path())?;
//! log.create_topic("events", TopicConfig::partitions(3))?;
//! let producer = log.producer(Default::default());
//! let at = producer.send_blocking("events", Record::new("user-1", "clicked"))?;
//! let records = log.read("events", at.partition, at.base_offset, 1 << 20, Isolation::ReadCommitted)?;
//! assert_eq!(records[0].key.as_deref(), Some(&b"user-1"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod builder;
mod cleaner;
mod compaction;
mod config;
mod consumer;
mod error;
mod fetched;
mod group;
mod log;
mod mapping;
mod partition;
mod partitioner;
mod producer;
mod record;
mod seam;
mod segment;
mod topic;
mod txn;

pub use crate::builder::BatchBuilder;
pub use crate::cleaner::CleanerStats;
pub use crate::config::{Acks, CleanupPolicy, LogConfig, TopicConfig, TOPIC_CONFIG_KEYS};
pub use crate::consumer::{
    Consumer, FetchOptions, FetchPosition, FetchedBatches, FetchedRecords, SeekTo,
};
pub use crate::error::{Error, Result};
pub use crate::fetched::{RecordBatches, RecordView};
pub use crate::group::{
    Assignment, Assignor, GroupMember, MemberConfig, MemberInfo, OffsetAndMetadata, PartitionLag,
    RangeAssignor, RebalanceEvent, RebalanceListener,
};
pub use crate::log::{AppendResult, Log};
pub use crate::partition::{Isolation, PartitionOffsets};
pub use crate::partitioner::{murmur2, partition_for_key};
pub use crate::producer::{Producer, ProducerConfig, SendFuture};
pub use crate::record::{Record, RecordRef, StoredRecord};
pub use crate::seam::{Broker, BrokerMember, BrokerTransaction};
pub use crate::topic::{PartitionDescription, TopicDescription};
pub use crate::txn::TransactionalProducer;
