//! The crate's one error type.

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a state store; each variant names the store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key or value could not be serialized or deserialized.
    #[error("store '{store}': cannot {op} {what} {key}: {reason}")]
    Serde {
        /// The store.
        store: String,
        /// `serialize` or `deserialize`.
        op: &'static str,
        /// `key` or `value`.
        what: &'static str,
        /// The key, as far as it is known (hex of its bytes).
        key: String,
        /// The serde error.
        reason: String,
    },
    /// The backing sled database failed.
    #[error("store '{store}': sled error: {source}")]
    Sled {
        /// The store.
        store: String,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// An earlier write failed; the store refuses writes until it is reopened.
    #[error("store '{store}' refuses writes after an earlier failed write")]
    Poisoned {
        /// The store.
        store: String,
    },
    /// Writing to or reading from the changelog failed.
    #[error("store '{store}': changelog {topic}-{partition}: {reason}")]
    Changelog {
        /// The store.
        store: String,
        /// The changelog topic.
        topic: String,
        /// The changelog partition.
        partition: u32,
        /// What went wrong.
        reason: String,
    },
    /// A store's committed writes failed to reach the backend in the background (the
    /// store is poisoned; restarting from committed state replays them).
    #[error("store '{store}': background apply failed: {reason}")]
    Background {
        /// The store.
        store: String,
        /// The failure.
        reason: String,
    },
    /// Stored bytes are not what this crate writes.
    #[error("store '{store}': corrupt entry: {reason}")]
    Corrupt {
        /// The store.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// The call does not fit the store (e.g. a window store fetch with `from > to`).
    #[error("store '{store}': {reason}")]
    InvalidArgument {
        /// The store.
        store: String,
        /// What is wrong.
        reason: String,
    },
}

/// Renders key bytes for error messages: UTF-8 when printable, else hex.
pub(crate) fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("'{s}'"),
        _ => {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}
