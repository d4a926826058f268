//! Sources: decode a topic's records (serdes, timestamp extractor) into the slot a task
//! lends its operators. The source node itself only passes them on
//! (`ops::stateless::forward_unchanged`).

use crate::dsl::options::TimestampExtractor;
use crate::record::{InputRecord, Record};
use crate::serde::SerdeRef;
use crate::task::input::RawRecord;
use crate::task::node::{BoxedRecord, Data};
use crate::topology::SourceDecoder;

/// Decodes raw records into `Record<K, V>` with the source's serdes and extractor.
pub(crate) struct TypedDecoder<K, V> {
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) extractor: Option<TimestampExtractor<K, V>>,
}

impl<K: Data, V: Data> TypedDecoder<K, V> {
    /// Inlined into its callers: returned through memory, the decoded record's fields were
    /// stored and loaded back in other widths, which stalls more than the decoding costs.
    #[inline(always)]
    fn record(
        &self,
        raw: &RawRecord<'_>,
        partition_time: i64,
    ) -> std::result::Result<Record<K, V>, String> {
        let key = self
            .keys
            .deserialize_nullable(raw.key)
            .map_err(|e| format!("key: {e}"))?;
        let value = self
            .values
            .deserialize_nullable(raw.value)
            .map_err(|e| format!("value: {e}"))?;
        let mut record = Record {
            key,
            value,
            timestamp: raw.timestamp,
            headers: if raw.headers.is_empty() {
                Vec::new()
            } else {
                raw.headers.to_vec()
            },
        };
        if let Some(extract) = &self.extractor {
            record.timestamp = extract(&record, partition_time);
        }
        Ok(record)
    }
}

impl<K: Data, V: Data> SourceDecoder for TypedDecoder<K, V> {
    fn decode(
        &self,
        raw: &InputRecord,
        partition_time: i64,
    ) -> std::result::Result<(BoxedRecord, i64), String> {
        let record = self.record(&raw.as_raw(), partition_time)?;
        let ts = record.timestamp;
        Ok((BoxedRecord::new(Some(record)), ts))
    }

    fn decode_into(
        &self,
        raw: &RawRecord<'_>,
        partition_time: i64,
        slot: &mut Option<BoxedRecord>,
    ) -> std::result::Result<i64, String> {
        let key = self
            .keys
            .deserialize_nullable(raw.key)
            .map_err(|e| format!("key: {e}"))?;
        let value = self
            .values
            .deserialize_nullable(raw.value)
            .map_err(|e| format!("value: {e}"))?;
        let headers = if raw.headers.is_empty() {
            Vec::new()
        } else {
            raw.headers.to_vec()
        };
        // Only this decoder fills its queue's slot, so a slot it made has its type: one type
        // check per record, below.
        let Some(typed) = slot
            .get_or_insert_with(|| BoxedRecord::new(None::<Record<K, V>>))
            .downcast::<K, V>()
        else {
            return Err("the decoded record has another type".into());
        };
        // Built in place in the slot: moving the finished record in was a copy whose loads
        // waited for the stores of its fields.
        let record = typed.insert(Record {
            key,
            value,
            timestamp: raw.timestamp,
            headers,
        });
        if let Some(extract) = &self.extractor {
            record.timestamp = extract(record, partition_time);
        }
        Ok(record.timestamp)
    }
}
