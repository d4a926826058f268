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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}
