//! Records as operators see them (typed) and as the task exchanges them with topics (bytes).

use bytes::Bytes;

/// Record headers: `(name, value)` pairs in order, names may repeat (as Kafka's `Headers`).
pub type Headers = Vec<(String, Bytes)>;

/// A typed record flowing through a topology (Kafka's `api.Record`): key, value, timestamp
/// and headers. Operators build new records with the `with_*` methods; headers travel with
/// the record.
///
/// ```
/// use freshet_streams::Record;
/// let r = Record::new("ann".to_string(), 1_i64, 10).with_value(2_i64).with_timestamp(20);
/// assert_eq!((r.key.as_str(), r.value, r.timestamp), ("ann", 2, 20));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Event time, ms since the epoch.
    pub timestamp: i64,
    /// Headers.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record with no headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record {
            key,
            value,
            timestamp,
            headers: Headers::new(),
        }
    }

    /// The same record with another key.
    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record {
            key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another value.
    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The same record with other headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// The record with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The last value of header `name`, if any.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// Where the record being processed came from (Kafka's `RecordMetadata`); absent in a
/// punctuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The source topic.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// The record's offset.
    pub offset: i64,
}

/// A record read from a topic, as bytes: what the runtime (or the test driver) hands a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// Key bytes (`None`: no key).
    pub key: Option<Bytes>,
    /// Value bytes (`None`: a tombstone).
    pub value: Option<Bytes>,
    /// The record's timestamp.
    pub timestamp: i64,
    /// Headers.
    pub headers: Headers,
    /// The record's offset in its partition.
    pub offset: i64,
}

/// A record a task writes to a topic (sinks, repartition topics, the late-records and
/// dead-letter topics), as bytes. The caller (runtime or driver) appends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord {
    /// The topic.
    pub topic: String,
    /// The partition chosen by the sink's partitioner; `None`: the default partitioner on
    /// the key bytes (sticky for a null key) decides.
    pub partition: Option<u32>,
    /// Key bytes.
    pub key: Option<Bytes>,
    /// Value bytes.
    pub value: Option<Bytes>,
    /// The timestamp to write.
    pub timestamp: i64,
    /// Headers.
    pub headers: Headers,
}
