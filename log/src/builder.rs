//! Batches encoded by their writer, ahead of the append.
//!
//! Kafka's producer serializes each record into its partition's open batch as it is sent,
//! so the sender only ships finished batches. A [`BatchBuilder`] is such a batch for the
//! embedded log: a writer that chooses each record's partition itself (a stream thread's
//! sender) encodes the record while its fields are at hand, instead of listing it and
//! reading it again to encode at the append.

use bytes::Bytes;

use crate::batch::{self, BatchEncoder, Parsed};
use crate::error::{Error, Result};
use crate::partition::now_ms;
use crate::record::{Record, RecordRef};

/// Records encoded into one batch, waiting for [`Log::append_batch`](crate::Log::append_batch)
/// (or a transaction's [`append_batch`](crate::TransactionalProducer::append_batch)), which
/// gives them their offsets.
///
/// ```
/// use freshet_log::{Acks, BatchBuilder, Isolation, Log, RecordRef, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path())?;
/// log.create_topic("t", TopicConfig::partitions(1))?;
/// let mut batch = BatchBuilder::new();
/// batch.push(&RecordRef::new(b"k1", b"v1"));
/// batch.push(&RecordRef::new(b"k2", b"v2"));
/// let at = log.append_batch("t", 0, batch, Acks::Written)?;
/// assert_eq!((at.base_offset, at.last_offset), (0, 1));
/// let records = log.read("t", 0, 0, 1 << 20, Isolation::ReadCommitted)?;
/// assert_eq!(records[1].value.as_deref(), Some(&b"v2"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    pub(crate) enc: BatchEncoder,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    /// An empty batch.
    pub fn new() -> Self {
        BatchBuilder {
            enc: BatchEncoder::new(0, None, false),
        }
    }

    /// An empty batch with room for about `bytes` of encoded records.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut b = BatchBuilder::new();
        b.enc.reserve(bytes);
        b
    }

    /// Encodes `r` as the batch's next record; one without a timestamp gets the time now
    /// (as Kafka's producer stamps a record at send).
    #[inline]
    pub fn push(&mut self, r: &RecordRef<'_>) {
        let offset = i64::from(self.enc.len());
        let timestamp = r.timestamp.unwrap_or_else(now_ms);
        self.enc.push(offset, timestamp, r.key, r.value, r.headers);
    }

    /// Records encoded.
    pub fn len(&self) -> usize {
        self.enc.len() as usize
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.enc.is_empty()
    }

    /// The records, decoded again (for a log that takes records, not batches).
    pub fn to_records(&self) -> Result<Vec<Record>> {
        let bytes = Bytes::from(self.enc.clone().finish());
        let corrupt = |reason: String| Error::Corrupt {
            path: "<batch builder>".into(),
            position: 0,
            reason,
        };
        let header = match batch::parse_header(&bytes) {
            Parsed::Header(h) => h,
            Parsed::Incomplete => return Err(corrupt("incomplete header".into())),
            Parsed::Invalid(why) => return Err(corrupt(why)),
        };
        let mut out = Vec::with_capacity(self.len());
        batch::decode_records_into(&bytes, &header, 0, usize::MAX, &mut out).map_err(corrupt)?;
        Ok(out
            .into_iter()
            .map(|r| Record {
                key: r.key,
                value: r.value,
                timestamp: Some(r.timestamp),
                headers: r.headers,
            })
            .collect())
    }
}
