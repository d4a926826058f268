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

impl From<RecordRef<'_>> for Record {
    /// Copies the borrowed fields.
    fn from(r: RecordRef<'_>) -> Record {
        Record {
            key: r.key.map(Bytes::copy_from_slice),
            value: r.value.map(Bytes::copy_from_slice),
            timestamp: r.timestamp,
            headers: r.headers.to_vec(),
        }
    }
}

impl<'a> From<&'a Record> for RecordRef<'a> {
    fn from(r: &'a Record) -> RecordRef<'a> {
        RecordRef {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            timestamp: r.timestamp,
            headers: &r.headers,
        }
    }
}

/// A record to append whose fields are borrowed: what [`Log::append_refs`] takes.
///
/// It exists for bulk writers whose keys and values already sit in their own buffers (a
/// serializer's output, a file being loaded, a batch decoded elsewhere). Building a
/// [`Record`] for each of them costs two `Bytes` handles (a reference count taken and
/// dropped per field) and 104 bytes to move; a `RecordRef` is a few borrowed slices, and
/// appending it encodes straight from them. Both append paths share one encoder, so the
/// bytes on disk are the same.
///
/// [`Log::append_refs`]: crate::Log::append_refs
///
/// ```
/// use freshet_log::RecordRef;
/// let fields = b"user-1/home";
/// let r = RecordRef::new(&fields[..6], &fields[6..]).with_timestamp(1_700_000_000_000);
/// assert_eq!(r.key, Some(&b"user-1"[..]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordRef<'a> {
    /// The key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<&'a [u8]>,
    /// Milliseconds since the epoch. `None` means "the append time".
    pub timestamp: Option<i64>,
    /// Headers in order (the same type as [`Record::headers`], so a `Record` lends its
    /// own); usually empty on hot paths.
    pub headers: &'a [(String, Bytes)],
}

impl<'a> RecordRef<'a> {
    /// A record with a key and a value, stamped at append time.
    pub fn new(key: &'a [u8], value: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            key: Some(key),
            value: Some(value),
            timestamp: None,
            headers: &[],
        }
    }

    /// A record with a null key.
    pub fn unkeyed(value: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            value: Some(value),
            ..RecordRef::default()
        }
    }

    /// Sets the timestamp (ms since the epoch).
    pub fn with_timestamp(mut self, timestamp: i64) -> RecordRef<'a> {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: &'a [(String, Bytes)]) -> RecordRef<'a> {
        self.headers = headers;
        self
    }
}

/// Either kind of record to append, seen as borrowed fields: lets [`Record`] and
/// [`RecordRef`] share one encode loop, generic instead of converted (converting a batch
/// would allocate a second array of records).
pub(crate) trait AsRecordRef {
    fn as_record_ref(&self) -> RecordRef<'_>;
}

impl AsRecordRef for Record {
    #[inline]
    fn as_record_ref(&self) -> RecordRef<'_> {
        RecordRef::from(self)
    }
}

impl AsRecordRef for RecordRef<'_> {
    #[inline]
    fn as_record_ref(&self) -> RecordRef<'_> {
        *self
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
