//! Records as users see them.

use bytes::Bytes;

/// A record to append: the fixed contract shared by every crate of freshet.
///
/// A `None` value on a compacted topic is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The key; `None` is a null key (partitioned sticky, never hashed).
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Milliseconds since the epoch. `None` when producing means "the append time".
    pub timestamp: Option<i64>,
    /// Headers in order; names need not be unique.
    pub headers: Vec<(String, Bytes)>,
}

impl Record {
    /// A record with a key and a value, stamped at append time.
    ///
    /// ```
    /// let r = freshet_log::Record::new("user-1", "/home");
    /// assert_eq!(r.key.as_deref(), Some(&b"user-1"[..]));
    /// ```
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Record {
        Record {
            key: Some(key.into()),
            value: Some(value.into()),
            timestamp: None,
            headers: Vec::new(),
        }
    }

    /// A record with a null key.
    pub fn unkeyed(value: impl Into<Bytes>) -> Record {
        Record {
            value: Some(value.into()),
            ..Record::default()
        }
    }

    /// Sets the timestamp (ms since the epoch).
    pub fn with_timestamp(mut self, timestamp: i64) -> Record {
        self.timestamp = Some(timestamp);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Record {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp (ms since the epoch).
    pub timestamp: i64,
    /// The key.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Vec<(String, Bytes)>,
}
