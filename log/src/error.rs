//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log. Each variant names what and where.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topic does not exist.
    #[error("unknown topic '{topic}'")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
    },
    /// A topic with that name exists already.
    #[error("topic '{topic}' already exists")]
    TopicExists {
        /// The topic asked for.
        topic: String,
    },
    /// The topic name is not legal (Kafka's rule: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`).
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The partition does not exist in the topic.
    #[error("unknown partition {partition} of topic '{topic}' (it has {partitions})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// An offset outside the partition's valid range `start..=end`.
    #[error("offset {offset} out of range for {topic}-{partition} (valid {start}..{end})")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset asked for.
        offset: i64,
        /// The log start offset (first valid).
        start: i64,
        /// The log end offset (next offset to be written; valid as a fetch position).
        end: i64,
    },
    /// Stored data failed its checksum or does not parse.
    #[error("corrupt data in {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte position of the bad batch in the file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The disk is full (ENOSPC); nothing was acknowledged for the failed write.
    #[error("disk full while writing {}", path.display())]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// Another I/O error.
    #[error("i/o error during {op} on {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A configuration key or value is not valid.
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The data directory is owned by another process (or another `Log` in this one).
    #[error("data dir {} is locked by {}", dir.display(), owner_text(*pid))]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The owner's pid, when the lock file names one.
        pid: Option<u32>,
    },
    /// A write was attempted on a log opened read-only.
    #[error("data dir {} is open read-only (owned by {}): {op} needs the owning process", dir.display(), owner_text(*pid))]
    ReadOnly {
        /// The data directory.
        dir: PathBuf,
        /// The owner's pid, when known.
        pid: Option<u32>,
        /// The write that was refused.
        op: &'static str,
    },
    /// A transactional producer was fenced by a newer instance with the same transactional id.
    #[error(
        "producer '{transactional_id}' with epoch {epoch} is fenced (current epoch {current})"
    )]
    ProducerFenced {
        /// The transactional id.
        transactional_id: String,
        /// The fenced producer's epoch.
        epoch: i16,
        /// The epoch now in force.
        current: i16,
    },
    /// A transaction call came in the wrong state (e.g. commit without begin).
    #[error("invalid transaction state for '{transactional_id}': {reason}")]
    InvalidTxnState {
        /// The transactional id.
        transactional_id: String,
        /// What is wrong.
        reason: String,
    },
    /// An offset commit or heartbeat came from a member of an older group generation.
    #[error("group '{group}': generation {generation} is stale (current {current})")]
    IllegalGeneration {
        /// The group.
        group: String,
        /// The generation the caller holds.
        generation: i32,
        /// The group's current generation.
        current: i32,
    },
    /// The member is not (or no longer) in the group.
    #[error("group '{group}': unknown member '{member}'")]
    UnknownMember {
        /// The group.
        group: String,
        /// The member id.
        member: String,
    },
    /// The group does not exist.
    #[error("unknown group '{group}'")]
    UnknownGroup {
        /// The group asked for.
        group: String,
    },
    /// An operation not allowed while the group has members (e.g. resetting offsets).
    #[error("group '{group}' is not empty: {reason}")]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// What was refused.
        reason: String,
    },
    /// A record batch is larger than a segment can hold.
    #[error("record batch of {size} bytes for {topic}-{partition} exceeds segment.bytes {max}")]
    RecordTooLarge {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The batch size.
        size: usize,
        /// The limit.
        max: u64,
    },
    /// A previous write to this partition failed part-way; the partition refuses writes until
    /// the log is reopened (which recovers the tail).
    #[error("{topic}-{partition} refuses writes after an earlier failed write; reopen the log")]
    Poisoned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },
    /// A batched send failed (the same failure is returned by the call that wrote the batch).
    #[error("send failed: {reason}")]
    SendFailed {
        /// What went wrong.
        reason: String,
    },
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
}

fn owner_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another owner".to_string(),
    }
}

impl Error {
    /// Wraps an I/O error with what was being done and where; ENOSPC becomes [`Error::DiskFull`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if source.raw_os_error() == Some(libc::ENOSPC) {
            Error::DiskFull { path }
        } else {
            Error::Io { op, path, source }
        }
    }
}
