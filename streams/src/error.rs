//! The crate's one error type.

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the Streams DSL. Each variant names what is wrong and the
/// value that was refused, so a user sees the mistake without reading the source.
///
/// Kafka Streams throws `IllegalArgumentException` for the same cases; here they are values the
/// caller can match on. Kafka's "must not be negative" checks on durations have no variant: a
/// [`std::time::Duration`] cannot be negative, so the type enforces them.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A duration does not fit in an `i64` count of milliseconds (Kafka's
    /// `ApiUtils.validateMillisecondDuration`).
    #[error("duration '{name}' of {secs} s does not fit in i64 milliseconds")]
    DurationOverflow {
        /// The argument that was refused, e.g. `size`.
        name: &'static str,
        /// Its whole seconds, to show how large it was.
        secs: u64,
    },
    /// A time window's size is zero (Kafka: "Window size (sizeMs) must be larger than zero").
    #[error("window size must be larger than zero, got {size_ms} ms")]
    WindowSize {
        /// The size given, in milliseconds.
        size_ms: i64,
    },
    /// A hopping window's advance is zero or larger than its size (Kafka: "AdvanceMs must lie
    /// within interval (0, size]").
    #[error("window advance {advance_ms} ms must lie within (0, {size_ms}] ms")]
    WindowAdvance {
        /// The advance given, in milliseconds.
        advance_ms: i64,
        /// The window size it must not exceed, in milliseconds.
        size_ms: i64,
    },
    /// A session window's inactivity gap is zero (Kafka: "Gap time (inactivityGapMs) cannot be
    /// zero or negative").
    #[error("session inactivity gap must be larger than zero, got {gap_ms} ms")]
    InactivityGap {
        /// The gap given, in milliseconds.
        gap_ms: i64,
    },
    /// A join window would be inverted: `before + after` is negative, or does not fit in an
    /// `i64` (Kafka: "Window interval (ie, beforeMs+afterMs) must not be negative").
    #[error("join window interval before+after must not be negative, got before {before_ms} ms and after {after_ms} ms")]
    JoinWindowInterval {
        /// Milliseconds before the probing record's timestamp.
        before_ms: i64,
        /// Milliseconds after the probing record's timestamp.
        after_ms: i64,
    },
    /// The topology is invalid (a build error that names the node or store at fault).
    #[error("invalid topology: {0}")]
    Topology(String),
    /// A call got an argument it cannot use.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A record reached an operator with other types than it takes (a topology wired by
    /// hand with mismatched processors).
    #[error("node {node} expected a {expected}")]
    TypeMismatch {
        /// The node.
        node: String,
        /// The type it takes.
        expected: &'static str,
    },
    /// `forward_to` named a node that is not a child.
    #[error("node {node} has no child named {child}")]
    UnknownChild {
        /// The forwarding node.
        node: String,
        /// The name given.
        child: String,
    },
    /// A processor asked for a store not connected to it.
    #[error("store {store} is not connected to node {node}")]
    UnknownStore {
        /// The node.
        node: String,
        /// The store name.
        store: String,
    },
    /// A topic the task (or the test driver) does not know.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// A source record could not be decoded (or had an invalid timestamp).
    #[error("cannot decode record at {topic}-{partition} offset {offset}: {reason}")]
    Deserialization {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The record's offset.
        offset: i64,
        /// What the serde said.
        reason: String,
    },
    /// A key or value could not be (de)serialized at a sink, repartition or store.
    #[error("serde error in {context}: {reason}")]
    Serde {
        /// Where: the node or store.
        context: String,
        /// What the serde said.
        reason: String,
    },
    /// A state store failed.
    #[error("state store {store}: {source}")]
    Store {
        /// The store.
        store: String,
        /// The store's error.
        #[source]
        source: Box<freshet_state_store::Error>,
    },
    /// A user's processor or punctuator failed.
    #[error("processing failed in {node}: {message}")]
    Processing {
        /// The node (empty when the processor did not say).
        node: String,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// An error raised by user code in a processor.
    ///
    /// ```
    /// let e = freshet_streams::Error::processing("price is negative");
    /// assert_eq!(e.to_string(), "processing failed in : price is negative");
    /// ```
    pub fn processing(message: impl Into<String>) -> Error {
        Error::Processing {
            node: String::new(),
            message: message.into(),
        }
    }
}
