//! `KTable::suppress` (Kafka's `KTableSuppressProcessorSupplier`): table updates wait in a
//! changelogged, time-ordered buffer ([`BufferStore`](freshet_state_store::BufferStore)), one
//! entry per key, and leave it when their buffer time is old enough or the buffer is over
//! capacity.
//!
//! After each update: every entry with `buffer time <= stream time - suppress duration` is
//! emitted (oldest first, equal times by key bytes); then, while the buffer holds more than
//! its record or byte limit, the oldest entries are emitted early or the node fails
//! (shut-down-when-full). The node's stream time is the largest timestamp of the updates
//! reaching it. An emitted record is the key's latest update (its new and old value), with
//! that update's timestamp and headers; final-results suppression drops tombstones instead
//! of emitting them.
//!
//! # Buffer entry
//! The entry's value bytes keep what Kafka's `BufferValue` keeps — the record context and
//! the prior, old and new values (the prior value is the key's value before its first
//! buffered update, the view a value getter needs):
//!
//! | field | bytes |
//! |---|---|
//! | offset | i64 BE (`-1` unknown) |
//! | partition | i32 BE (`-1` unknown) |
//! | topic | u32 BE length, UTF-8 |
//! | prior value | i32 BE length (`-1`: null), bytes |
//! | old value | i32 BE length (`-1`: null, `-2`: the prior value, not repeated), bytes |
//! | new value | i32 BE length (`-1`: null), bytes |
//! | headers | u32 BE count, then per header u32 BE key length, key, u32 BE value length, value |
//!
//! The entry's timestamp is the update's. The size counted against `max_bytes` is Kafka's
//! estimate (`8 + key + prior + old (unless the prior) + new + 8 + 8 + topic + 4 +` header
//! keys and values): the buffer's own count minus the 20 bytes of lengths and counts above
//! per entry. Header framing (8 bytes per header) is counted too, a small excess over Kafka.

use bytes::{BufMut, Bytes};
use freshet_state_store::{BufferState, BufferedRecord, Timestamped};

use crate::dsl::ktable::Change;
use crate::dsl::table::ValueGetter;
use crate::error::{Error, Result};
use crate::ops::aggregate::decode;
use crate::record::{Headers, Record};
use crate::serde::{compact_bytes, SerdeRef};
use crate::store::StoreRef;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

const NO_TIMESTAMP: i64 = -1;
/// Bytes of lengths and counts per entry that Kafka's estimate does not count.
const FRAMING_BYTES: u64 = 20;
const NULL: i32 = -1;
const SAME_AS_PRIOR: i32 = -2;

/// How an update's buffer time is chosen.
pub(crate) type BufferTimeFn<K> = std::sync::Arc<dyn Fn(&K, i64) -> i64 + Send + Sync>;

/// A buffer entry, decoded to bytes: the layout's model, which the tests check the
/// in-place reading and writing against.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) offset: i64,
    pub(crate) partition: i32,
    pub(crate) topic: String,
    pub(crate) prior: Option<Bytes>,
    /// `None` with `old_is_prior`: the old value is the prior value.
    pub(crate) old: Option<Bytes>,
    pub(crate) old_is_prior: bool,
    pub(crate) new: Option<Bytes>,
    pub(crate) headers: Headers,
}

#[cfg(test)]
impl Entry {
    fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(64);
        b.put_i64(self.offset);
        b.put_i32(self.partition);
        b.put_u32(self.topic.len() as u32);
        b.put_slice(self.topic.as_bytes());
        put_value(&mut b, self.prior.as_deref(), false);
        put_value(&mut b, self.old.as_deref(), self.old_is_prior);
        put_value(&mut b, self.new.as_deref(), false);
        put_headers(&mut b, &self.headers);
        Bytes::from(b)
    }

    pub(crate) fn decode(bytes: &Bytes) -> std::result::Result<Entry, String> {
        let e = EntryRef::parse(bytes)?;
        let owned = |v: Option<&[u8]>| v.map(|v| sub(bytes, v));
        Ok(Entry {
            offset: e.offset,
            partition: e.partition,
            topic: e.topic.to_string(),
            prior: owned(e.prior),
            old: owned(e.old),
            old_is_prior: e.old_is_prior,
            new: owned(e.new),
            headers: e.headers(bytes),
        })
    }

    /// The old value of the latest update.
    pub(crate) fn old_value(&self) -> Option<&Bytes> {
        if self.old_is_prior {
            self.prior.as_ref()
        } else {
            self.old.as_ref()
        }
    }
}

fn put_value(b: &mut Vec<u8>, value: Option<&[u8]>, same_as_prior: bool) {
    match value {
        _ if same_as_prior => b.put_i32(SAME_AS_PRIOR),
        None => b.put_i32(NULL),
        Some(v) => {
            b.put_i32(v.len() as i32);
            b.put_slice(v);
        }
    }
}

/// A value serialized in place behind its length (as [`put_value`] writes bytes).
fn put_typed<V>(
    b: &mut Vec<u8>,
    serde: &SerdeRef<V>,
    value: Option<&V>,
) -> std::result::Result<(), String> {
    let Some(value) = value else {
        b.put_i32(NULL);
        return Ok(());
    };
    let at = b.len();
    b.put_i32(0);
    serde.serialize_into(value, b)?;
    let len = b.len() - at - 4;
    let len = i32::try_from(len).map_err(|_| format!("value of {len} bytes is too large"))?;
    if let Some(slot) = b.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn put_headers(b: &mut Vec<u8>, headers: &Headers) {
    b.put_u32(headers.len() as u32);
    for (k, v) in headers {
        b.put_u32(k.len() as u32);
        b.put_slice(k.as_bytes());
        b.put_u32(v.len() as u32);
        b.put_slice(v);
    }
}

/// A buffer entry read in place: every field a slice of the entry's bytes, checked as
/// [`Entry::decode`] checks them, so that suppress reads a buffered key's prior value and
/// emits an entry without copying anything but the headers it forwards. (The record
/// context is read by the tests only: Kafka keeps it for its own purposes.)
#[cfg_attr(not(test), allow(dead_code))]
struct EntryRef<'a> {
    offset: i64,
    partition: i32,
    topic: &'a str,
    prior: Option<&'a [u8]>,
    /// `None` with `old_is_prior`: the old value is the prior value.
    old: Option<&'a [u8]>,
    old_is_prior: bool,
    new: Option<&'a [u8]>,
    /// Header count, and the headers' bytes as the entry frames them (checked).
    header_count: usize,
    header_bytes: &'a [u8],
}

impl<'a> EntryRef<'a> {
    fn parse(bytes: &'a [u8]) -> std::result::Result<EntryRef<'a>, String> {
        let mut r = Reader { bytes, at: 0 };
        let offset = i64::from_be_bytes(r.array()?);
        let partition = i32::from_be_bytes(r.array()?);
        let topic_len = u32::from_be_bytes(r.array()?) as usize;
        let topic = std::str::from_utf8(r.take(topic_len)?)
            .map_err(|_| "topic is not UTF-8".to_string())?;
        let (prior, _) = r.value()?;
        let (old, old_is_prior) = r.value()?;
        let (new, _) = r.value()?;
        let header_count = u32::from_be_bytes(r.array()?) as usize;
        let headers_at = r.at;
        for _ in 0..header_count {
            let (key, _) = r.header()?;
            std::str::from_utf8(key).map_err(|_| "header key is not UTF-8".to_string())?;
        }
        if r.at != bytes.len() {
            return Err(format!("{} bytes left over", bytes.len() - r.at));
        }
        Ok(EntryRef {
            offset,
            partition,
            topic,
            prior,
            old,
            old_is_prior,
            new,
            header_count,
            header_bytes: bytes.get(headers_at..).unwrap_or_default(),
        })
    }

    /// The old value of the latest update.
    fn old_value(&self) -> Option<&'a [u8]> {
        if self.old_is_prior {
            self.prior
        } else {
            self.old
        }
    }

    /// The headers, owned: keys copied, values slices of `whole` (the entry's bytes, which
    /// these were parsed from).
    fn headers(&self, whole: &Bytes) -> Headers {
        let mut headers = Headers::with_capacity(self.header_count.min(64));
        let mut r = Reader {
            bytes: self.header_bytes,
            at: 0,
        };
        for _ in 0..self.header_count {
            // `parse` checked the framing: nothing here fails.
            let Ok((key, value)) = r.header() else {
                break;
            };
            headers.push((String::from_utf8_lossy(key).into_owned(), sub(whole, value)));
        }
        headers
    }
}

/// `part`, a slice of `whole`'s bytes, as a `Bytes` sharing them (a copy if it is not one).
fn sub(whole: &Bytes, part: &[u8]) -> Bytes {
    let at = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    match at.checked_add(part.len()) {
        Some(end) if end <= whole.len() => whole.slice(at..end),
        _ => Bytes::copy_from_slice(part),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let out = end.and_then(|end| self.bytes.get(self.at..end));
        let (Some(end), Some(out)) = (end, out) else {
            return Err(format!("entry of {} bytes is truncated", self.bytes.len()));
        };
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let b = self.take(N)?;
        <[u8; N]>::try_from(b).map_err(|_| "entry is truncated".to_string())
    }

    /// A header: `(key, value)`, each behind its u32 length.
    fn header(&mut self) -> std::result::Result<(&'a [u8], &'a [u8]), String> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        let key = self.take(len)?;
        let len = u32::from_be_bytes(self.array()?) as usize;
        Ok((key, self.take(len)?))
    }

    /// A length-prefixed value: `(value, same as prior)`.
    fn value(&mut self) -> std::result::Result<(Option<&'a [u8]>, bool), String> {
        match i32::from_be_bytes(self.array()?) {
            NULL => Ok((None, false)),
            SAME_AS_PRIOR => Ok((None, true)),
            n if n >= 0 => Ok((Some(self.take(n as usize)?), false)),
            n => Err(format!("invalid value length {n}")),
        }
    }
}

/// The prior value of a buffered key — the key's value before its first buffered update,
/// what Kafka's suppressed-table value getter returns while the key is buffered — or `None`
/// when the key is not buffered (then the parent table's value is the view).
pub(crate) fn prior_value_for_buffered(
    store: &StoreRef,
    key: &[u8],
) -> Result<Option<Option<Bytes>>> {
    let Some(found) = store.with_buffer(|b| b.get(key))? else {
        return Ok(None);
    };
    let bytes = &found.value.value;
    let entry = EntryRef::parse(bytes).map_err(|reason| Error::Serde {
        context: format!("suppression buffer {}", store.name),
        reason,
    })?;
    Ok(Some(entry.prior.map(|p| sub(bytes, p))))
}

/// Reads a suppressed table (Kafka's `KTableSuppressProcessorSupplier.view()`): a buffered
/// key's prior value (with an unknown timestamp, -1), else the parent table's value.
pub(crate) struct SuppressGetter<K, V> {
    pub(crate) buffer: StoreRef,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) parent: Box<dyn ValueGetter<K, V>>,
}

impl<K: Data, V: Data> ValueGetter<K, V> for SuppressGetter<K, V> {
    fn get(&self, key: &K) -> Result<Option<(V, i64)>> {
        let what = format!("suppression buffer {}", self.buffer.name);
        let bytes = match self.keys.serialize_nullable(key) {
            Ok(Some(k)) => k,
            Ok(None) => return Ok(None),
            Err(reason) => {
                return Err(Error::Serde {
                    context: what,
                    reason,
                })
            }
        };
        match prior_value_for_buffered(&self.buffer, &bytes)? {
            Some(prior) => prior
                .map(|b| Ok((decode(&self.values, &b, &what)?, NO_TIMESTAMP)))
                .transpose(),
            None => self.parent.get(key),
        }
    }
}

/// Settings of a suppress node.
pub(crate) struct SuppressSpec<K, V> {
    pub(crate) store_name: String,
    pub(crate) keys: SerdeRef<K>,
    pub(crate) values: SerdeRef<V>,
    pub(crate) buffer_time: BufferTimeFn<K>,
    /// How long a buffered update waits: the time limit, or the grace of the windows.
    pub(crate) duration_ms: i64,
    pub(crate) max_records: u64,
    pub(crate) max_bytes: u64,
    pub(crate) shut_down_when_full: bool,
    pub(crate) safe_to_drop_tombstones: bool,
}

impl<K, V> Clone for SuppressSpec<K, V> {
    fn clone(&self) -> Self {
        SuppressSpec {
            store_name: self.store_name.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            buffer_time: self.buffer_time.clone(),
            duration_ms: self.duration_ms,
            max_records: self.max_records,
            max_bytes: self.max_bytes,
            shut_down_when_full: self.shut_down_when_full,
            safe_to_drop_tombstones: self.safe_to_drop_tombstones,
        }
    }
}

pub(crate) struct SuppressNode<K, V> {
    spec: SuppressSpec<K, V>,
    /// `suppression buffer <name>`: the context of serde errors (made once).
    what: String,
    store: Option<StoreRef>,
    observed: i64,
    /// The key of the update being buffered, serialized (reused from update to update).
    key_buf: Vec<u8>,
    /// The entry being built (reused).
    entry_buf: Vec<u8>,
}

impl<K, V> SuppressNode<K, V> {
    pub(crate) fn new(spec: SuppressSpec<K, V>) -> Self {
        SuppressNode {
            what: format!("suppression buffer {}", spec.store_name),
            spec,
            store: None,
            observed: NO_TIMESTAMP,
            key_buf: Vec::new(),
            entry_buf: Vec::new(),
        }
    }
}

/// Kafka's estimate of the buffer's size.
fn estimated_bytes(state: &BufferState) -> u64 {
    state
        .buffer_size_bytes
        .saturating_sub(FRAMING_BYTES.saturating_mul(state.num_records as u64))
}

impl<K: Data, V: Data> SuppressNode<K, V> {
    fn store(&self) -> Result<&StoreRef> {
        self.store
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("suppress used before init".into()))
    }

    fn what(&self) -> &str {
        &self.what
    }

    fn over_capacity(&self, state: &BufferState) -> bool {
        state.num_records as u64 > self.spec.max_records
            || estimated_bytes(state) > self.spec.max_bytes
    }

    /// Buffers an update: its entry is written straight into one reused buffer (key, old and
    /// new values serialized in place, the prior value copied from the buffered entry it
    /// replaces), then copied once into the entry's bytes.
    fn buffer(&mut self, ctx: &NodeContext<'_>, record: Record<K, Change<V>>) -> Result<()> {
        let mut key = std::mem::take(&mut self.key_buf);
        let mut entry = std::mem::take(&mut self.entry_buf);
        let result = self.buffer_with(ctx, record, &mut key, &mut entry);
        self.key_buf = key;
        self.entry_buf = entry;
        result
    }

    fn buffer_with(
        &self,
        ctx: &NodeContext<'_>,
        record: Record<K, Change<V>>,
        key: &mut Vec<u8>,
        b: &mut Vec<u8>,
    ) -> Result<()> {
        let what = self.what();
        let serde_error = |reason| Error::Serde {
            context: what.to_string(),
            reason,
        };
        key.clear();
        if !self
            .spec
            .keys
            .serialize_nullable_into(&record.key, key)
            .map_err(serde_error)?
        {
            return Err(Error::InvalidArgument(format!(
                "{what}: a table update with a null key"
            )));
        }
        let store = self.store()?;
        let (offset, partition, topic) = match ctx.record_metadata() {
            Some(m) => (
                m.offset,
                i32::try_from(m.partition).unwrap_or(i32::MAX),
                m.topic.as_str(),
            ),
            None => (-1, -1, ""),
        };
        let time = (self.spec.buffer_time)(&record.key, record.timestamp);
        // One lookup in the buffer: the prior value is read where it lies and the entry
        // replaced in its place, under one lock.
        store.with_buffer(|buf| {
            Ok(buf.update(time, key, |found| {
                let prior = match found.map(|found| EntryRef::parse(&found.value)) {
                    None => None,
                    Some(Ok(entry)) => Some(entry.prior),
                    Some(Err(reason)) => return Err(serde_error(reason)),
                };
                self.write_entry(b, (offset, partition, topic), prior, &record)
                    .map_err(serde_error)?;
                Ok(Timestamped {
                    value: compact_bytes(b),
                    timestamp: record.timestamp,
                })
            }))
        })?
    }

    /// Writes an update's entry into `b`: where the record came from (offset, partition,
    /// topic), the prior value (`None`: a new key, whose prior is the old value), the old
    /// and new values and the headers.
    fn write_entry(
        &self,
        b: &mut Vec<u8>,
        (offset, partition, topic): (i64, i32, &str),
        prior: Option<Option<&[u8]>>,
        record: &Record<K, Change<V>>,
    ) -> std::result::Result<(), String> {
        b.clear();
        b.put_i64(offset);
        b.put_i32(partition);
        b.put_u32(topic.len() as u32);
        b.put_slice(topic.as_bytes());
        let values = &self.spec.values;
        match prior {
            // A new key: the prior value is the old one, not repeated.
            None => {
                put_typed(b, values, record.value.old.as_ref())?;
                put_value(b, None, true);
            }
            Some(prior) => {
                put_value(b, prior, false);
                put_typed(b, values, record.value.old.as_ref())?;
            }
        }
        put_typed(b, values, record.value.new.as_ref())?;
        put_headers(b, &record.headers);
        Ok(())
    }

    /// Emits what is due, then what is over capacity (or fails when full).
    fn enforce_constraints(&self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let store = self.store()?;
        let expiry = self.observed.saturating_sub(self.spec.duration_ms);
        let mut due = Vec::new();
        store.with_buffer(|b| {
            b.evict_while(
                |s| s.min_timestamp <= expiry,
                |r| {
                    due.push(r);
                    Ok::<(), freshet_state_store::Error>(())
                },
            )
        })?;
        self.emit(ctx, due)?;
        let (state, over) = store.with_buffer(|b| {
            let state = BufferState {
                min_timestamp: b.min_timestamp()?,
                num_records: b.num_records(),
                buffer_size_bytes: b.buffer_size_bytes(),
            };
            Ok((state, self.over_capacity(&state)))
        })?;
        if !over {
            return Ok(());
        }
        if self.spec.shut_down_when_full {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: format!(
                    "{} buffer exceeded its max capacity. Currently [{}/{}] records and [{}/{}] bytes.",
                    ctx.name(),
                    state.num_records,
                    self.spec.max_records,
                    estimated_bytes(&state),
                    self.spec.max_bytes
                ),
            });
        }
        let mut early = Vec::new();
        store.with_buffer(|b| {
            b.evict_while(
                |s| self.over_capacity(s),
                |r| {
                    early.push(r);
                    Ok::<(), freshet_state_store::Error>(())
                },
            )
        })?;
        self.emit(ctx, early)
    }

    fn emit(&self, ctx: &mut NodeContext<'_>, evicted: Vec<BufferedRecord>) -> Result<()> {
        let what = self.what();
        for r in evicted {
            let bytes = &r.value.value;
            let entry = EntryRef::parse(bytes).map_err(|reason| Error::Serde {
                context: what.to_string(),
                reason,
            })?;
            if entry.new.is_none() && self.spec.safe_to_drop_tombstones {
                continue;
            }
            let key = decode(&self.spec.keys, &r.key, what)?;
            let value = |b: Option<&[u8]>| -> Result<Option<V>> {
                b.map(|b| decode(&self.spec.values, b, what)).transpose()
            };
            let change = Change {
                new: value(entry.new)?,
                old: value(entry.old_value())?,
            };
            ctx.forward(Record {
                key,
                value: change,
                timestamp: r.value.timestamp,
                headers: entry.headers(bytes),
            })?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data> Node for SuppressNode<K, V> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store = Some(ctx.store(&self.spec.store_name)?);
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, Change<V>> = take_record(ctx.name(), record)?;
        self.observed = self.observed.max(r.timestamp);
        self.buffer(ctx, r)?;
        self.enforce_constraints(ctx)
    }

    fn observed_stream_time(&self) -> Option<i64> {
        (self.observed != NO_TIMESTAMP).then_some(self.observed)
    }

    fn restore_stream_time(&mut self, time: i64) {
        self.observed = self.observed.max(time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            offset: 7,
            partition: 2,
            topic: "in".into(),
            prior: Some(Bytes::from_static(b"p")),
            old: None,
            old_is_prior: true,
            new: None,
            headers: vec![("h".into(), Bytes::from_static(b"v"))],
        };
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        assert_eq!(e.old_value(), Some(&Bytes::from_static(b"p")));
        // Framing: 20 bytes plus 8 per header beyond Kafka's counted fields.
        assert_eq!(
            bytes.len() as u64,
            8 + 4 + 2 + 1 + FRAMING_BYTES + 8 + 1 + 1
        );
        assert!(Entry::decode(&bytes.slice(..bytes.len() - 1)).is_err());
    }
}
