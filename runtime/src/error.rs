//! The crate's one error type.

use std::path::PathBuf;

use crate::state::AppState;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while configuring, starting or running a streams app. Each
/// variant names the setting, topic, task or store at fault.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is unknown.
    #[error("unknown setting '{key}' (known: {known})")]
    UnknownSetting {
        /// The key given.
        key: String,
        /// The keys [`StreamsConfig::set`](crate::StreamsConfig::set) knows.
        known: String,
    },
    /// A setting's value is not valid.
    #[error("invalid value '{value}' for {key}: {reason}")]
    InvalidSetting {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A topic the topology reads does not exist.
    #[error("source topic '{topic}' does not exist (create it before starting the app)")]
    MissingSourceTopic {
        /// The topic.
        topic: String,
    },
    /// A sink topic does not exist and `auto.create.sink.topics` is off (or the topic is
    /// chosen per record and was never created).
    #[error("sink topic '{topic}' does not exist{hint}")]
    MissingSinkTopic {
        /// The topic.
        topic: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// An existing topic has another partition count than the topology needs.
    #[error("topic '{topic}' has {actual} partitions but {expected} are required ({why})")]
    PartitionMismatch {
        /// The topic.
        topic: String,
        /// Its partition count on the log.
        actual: u32,
        /// The count required.
        expected: u32,
        /// Why that count.
        why: String,
    },
    /// Joined inputs do not have the same partition count.
    #[error("topics are not co-partitioned: {topics} (joined inputs need equal partition counts)")]
    NotCopartitioned {
        /// Each topic with its partition count, e.g. `left (3), right (4)`.
        topics: String,
    },
    /// The partition count of an internal topic cannot be resolved (a cycle, or no source).
    #[error("cannot resolve the partition count of internal topic '{topic}': {reason}")]
    UnresolvedPartitions {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The app is in a state where the call is not allowed.
    #[error("{what} is not allowed while the app is {state}")]
    InvalidState {
        /// The call.
        what: &'static str,
        /// The app's state.
        state: AppState,
    },
    /// No state directory could be chosen.
    #[error("no state directory: set data.dir or state.dir (only the embedded log has a data directory of its own)")]
    NoStateDir,
    /// Local state on disk could not be opened or removed.
    #[error("state directory {}: {reason}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An interactive query named a store the topology does not have, or of another kind.
    #[error("no {kind} store '{store}' in the topology{hint}")]
    UnknownStore {
        /// The store.
        store: String,
        /// The kind asked for.
        kind: &'static str,
        /// The stores there are.
        hint: String,
    },
    /// A key or value could not be (de)serialized for an interactive query.
    #[error("serde error in store {store}: {reason}")]
    Serde {
        /// The store.
        store: String,
        /// What the serde said.
        reason: String,
    },
    /// A stream thread failed; the app shut down.
    #[error("stream thread {thread} failed: {reason}")]
    ThreadFailed {
        /// The thread's index.
        thread: usize,
        /// The error that stopped it.
        reason: String,
    },
    /// Code running on a stream thread panicked — a user function of the topology, or a
    /// bug of ours. The thread stops as it would on an error (its open transaction is
    /// aborted, so under exactly-once nothing of it is committed) and the app goes to
    /// `ERROR`, as Kafka Streams does with its default uncaught-exception handler.
    #[error("{thread} panicked: {message}")]
    Panicked {
        /// The thread's name, e.g. `app-StreamThread-1`.
        thread: String,
        /// The panic's message.
        message: String,
    },
    /// A task failed.
    #[error("task {task}: {source}")]
    Task {
        /// The task id, e.g. `0_3`.
        task: String,
        /// What went wrong.
        #[source]
        source: freshet_streams::Error,
    },
    /// The log refused an output of a task for a reason of the record's own (too large for
    /// the topic, a topic or partition that does not exist) and `production.exception.handler`
    /// is `fail`: the app stops, its transaction aborted.
    #[error("task {task}: cannot write a record to {topic} (production.exception.handler=fail): {source}")]
    Production {
        /// The task id, e.g. `0_3`.
        task: String,
        /// The topic the record was for.
        topic: String,
        /// Why the log refused it.
        #[source]
        source: Box<Error>,
    },
    /// The topology itself.
    #[error(transparent)]
    Streams(#[from] freshet_streams::Error),
    /// A state store.
    #[error(transparent)]
    Store(#[from] freshet_state_store::Error),
    /// The log.
    #[error(transparent)]
    Log(#[from] freshet_log::Error),
    /// The app's I/O runtime could not be started.
    #[error("cannot start the app's i/o runtime: {0}")]
    Runtime(std::io::Error),
}

impl Error {
    /// Whether the error is a transactional producer fenced by a newer one with the same
    /// transactional id: another instance owns the thread's tasks now.
    pub(crate) fn is_fenced(&self) -> bool {
        matches!(self, Error::Log(freshet_log::Error::ProducerFenced { .. }))
    }
}

/// Runs `f`, turning a panic into [`Error::Panicked`] named for the current thread. A thread
/// that panicked must still report to the app, or the app would wait on it forever.
pub(crate) fn catching_panics<T>(f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic without a message".to_string()
        };
        Error::Panicked {
            thread: std::thread::current()
                .name()
                .unwrap_or("a stream thread")
                .to_string(),
            message,
        }
    })
}
