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

use std::any::Any;

use bytes::{BufMut, Bytes};
use freshet_state_store::{BufferState, BufferedRecord, Timestamped};

use crate::dsl::ktable::Change;
use crate::dsl::table::ValueGetter;
use crate::error::{Error, Result};
use crate::ops::aggregate::{decode, encode};
use crate::record::{Headers, Record};
use crate::serde::SerdeRef;
use crate::store::StoreRef;
use crate::task::node::{take_record, Data, Node, NodeContext};

const NO_TIMESTAMP: i64 = -1;
/// Bytes of lengths and counts per entry that Kafka's estimate does not count.
const FRAMING_BYTES: u64 = 20;
const NULL: i32 = -1;
const SAME_AS_PRIOR: i32 = -2;

/// How an update's buffer time is chosen.
pub(crate) type BufferTimeFn<K> = std::sync::Arc<dyn Fn(&K, i64) -> i64 + Send + Sync>;

/// A buffer entry, decoded to bytes.
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

impl Entry {
    fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(64);
        b.put_i64(self.offset);
        b.put_i32(self.partition);
        b.put_u32(self.topic.len() as u32);
        b.put_slice(self.topic.as_bytes());
        put_value(&mut b, self.prior.as_ref(), false);
        put_value(&mut b, self.old.as_ref(), self.old_is_prior);
        put_value(&mut b, self.new.as_ref(), false);
        b.put_u32(self.headers.len() as u32);
        for (k, v) in &self.headers {
            b.put_u32(k.len() as u32);
            b.put_slice(k.as_bytes());
            b.put_u32(v.len() as u32);
            b.put_slice(v);
        }
        Bytes::from(b)
    }

    pub(crate) fn decode(bytes: &Bytes) -> std::result::Result<Entry, String> {
        let mut r = Reader { bytes, at: 0 };
        let offset = i64::from_be_bytes(r.array()?);
        let partition = i32::from_be_bytes(r.array()?);
        let topic_len = u32::from_be_bytes(r.array()?) as usize;
        let topic = String::from_utf8(r.take(topic_len)?.to_vec())
            .map_err(|_| "topic is not UTF-8".to_string())?;
        let (prior, _) = r.value()?;
        let (old, old_is_prior) = r.value()?;
        let (new, _) = r.value()?;
        let count = u32::from_be_bytes(r.array()?) as usize;
        let mut headers = Headers::with_capacity(count.min(64));
        for _ in 0..count {
            let len = u32::from_be_bytes(r.array()?) as usize;
            let key = String::from_utf8(r.take(len)?.to_vec())
                .map_err(|_| "header key is not UTF-8".to_string())?;
            let len = u32::from_be_bytes(r.array()?) as usize;
            headers.push((key, r.take(len)?));
        }
        if r.at != bytes.len() {
            return Err(format!("{} bytes left over", bytes.len() - r.at));
        }
        Ok(Entry {
            offset,
            partition,
            topic,
            prior,
            old,
            old_is_prior,
            new,
            headers,
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

fn put_value(b: &mut Vec<u8>, value: Option<&Bytes>, same_as_prior: bool) {
    match value {
        _ if same_as_prior => b.put_i32(SAME_AS_PRIOR),
        None => b.put_i32(NULL),
        Some(v) => {
            b.put_i32(v.len() as i32);
            b.put_slice(v);
        }
    }
}

struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<Bytes, String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("entry of {} bytes is truncated", self.bytes.len()))?;
        let out = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let b = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }

    /// A length-prefixed value: `(value, same as prior)`.
    fn value(&mut self) -> std::result::Result<(Option<Bytes>, bool), String> {
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
    let entry = Entry::decode(&found.value.value).map_err(|reason| Error::Serde {
        context: format!("suppression buffer {}", store.name),
        reason,
    })?;
    Ok(Some(entry.prior))
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
}

impl<K, V> SuppressNode<K, V> {
    pub(crate) fn new(spec: SuppressSpec<K, V>) -> Self {
        SuppressNode {
            what: format!("suppression buffer {}", spec.store_name),
            spec,
            store: None,
            observed: NO_TIMESTAMP,
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
    fn store(&self) -> Result<StoreRef> {
        self.store
            .clone()
            .ok_or_else(|| Error::InvalidArgument("suppress used before init".into()))
    }

    fn what(&self) -> &str {
        &self.what
    }

    fn over_capacity(&self, state: &BufferState) -> bool {
        state.num_records as u64 > self.spec.max_records
            || estimated_bytes(state) > self.spec.max_bytes
    }

    fn buffer(&self, ctx: &NodeContext<'_>, record: Record<K, Change<V>>) -> Result<()> {
        let what = self.what();
        let key = match self.spec.keys.serialize_nullable(&record.key) {
            Ok(Some(k)) => Bytes::from(k),
            Ok(None) => {
                return Err(Error::InvalidArgument(format!(
                    "{what}: a table update with a null key"
                )))
            }
            Err(reason) => {
                return Err(Error::Serde {
                    context: what.to_string(),
                    reason,
                })
            }
        };
        let bytes = |v: &Option<V>| -> Result<Option<Bytes>> {
            v.as_ref()
                .map(|v| encode(&self.spec.values, v, what))
                .transpose()
        };
        let (new, old) = (bytes(&record.value.new)?, bytes(&record.value.old)?);
        let store = self.store()?;
        let buffered = store.with_buffer(|b| b.get(&key))?;
        let (prior, old, old_is_prior) = match buffered {
            None => (old, None, true),
            Some(found) => {
                let entry = Entry::decode(&found.value.value).map_err(|reason| Error::Serde {
                    context: what.to_string(),
                    reason,
                })?;
                (entry.prior, old, false)
            }
        };
        let (offset, partition, topic) = match ctx.record_metadata() {
            Some(m) => (
                m.offset,
                i32::try_from(m.partition).unwrap_or(i32::MAX),
                m.topic.clone(),
            ),
            None => (-1, -1, String::new()),
        };
        let entry = Entry {
            offset,
            partition,
            topic,
            prior,
            old,
            old_is_prior,
            new,
            headers: record.headers,
        };
        let time = (self.spec.buffer_time)(&record.key, record.timestamp);
        let value = Timestamped {
            value: entry.encode(),
            timestamp: record.timestamp,
        };
        store.with_buffer(|b| b.put(time, key, value))
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
            let entry = Entry::decode(&r.value.value).map_err(|reason| Error::Serde {
                context: what.to_string(),
                reason,
            })?;
            if entry.new.is_none() && self.spec.safe_to_drop_tombstones {
                continue;
            }
            let key = decode(&self.spec.keys, &r.key, what)?;
            let value = |b: Option<&Bytes>| -> Result<Option<V>> {
                b.map(|b| decode(&self.spec.values, b, what)).transpose()
            };
            let change = Change {
                new: value(entry.new.as_ref())?,
                old: value(entry.old_value())?,
            };
            ctx.forward(Record {
                key,
                value: change,
                timestamp: r.value.timestamp,
                headers: entry.headers,
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

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut dyn Any) -> Result<()> {
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
