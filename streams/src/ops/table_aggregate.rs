//! `KTable::group_by` and `KGroupedTable` count / reduce / aggregate: the selecting node
//! (Kafka's `KTableRepartitionMap`), the `Change` layout on the repartition topic (Kafka's
//! `ChangedSerializer` / `ChangedDeserializer`) and the aggregating node (Kafka's
//! `KTableAggregate` / `KTableReduce`), which subtracts old values and adds new ones.

use std::sync::Arc;

use crate::dsl::ktable::Change;
use crate::error::{Error, Result};
use crate::ops::table_source::{IsNull, TableStore};
use crate::record::Record;
use crate::serde::{Serde, SerdeRef};
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// Zigzag varint, as Kafka's `ByteUtils.writeVarint`.
fn write_varint(value: i32, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v & !0x7f != 0 {
        out.push(((v & 0x7f) | 0x80) as u8);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a zigzag varint (Kafka's `ByteUtils.readVarint`); returns it and the bytes used.
fn read_varint(bytes: &[u8]) -> std::result::Result<(i32, usize), String> {
    let mut raw: u32 = 0;
    for (i, b) in bytes.iter().enumerate().take(5) {
        raw |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = ((raw >> 1) as i32) ^ -((raw & 1) as i32);
            return Ok((value, i + 1));
        }
    }
    Err("invalid varint in a table change".into())
}

/// A table change on a repartition topic, in Kafka's `ChangedSerializer` layout:
/// `{old}{0}`, `{new}{1}`, or `{varint new length}{new}{old}{2}` (flags 3–5, which carry
/// an `isLatest` byte, are read too).
pub(crate) struct ChangeSerde<V> {
    pub(crate) inner: SerdeRef<V>,
}

impl<V> std::fmt::Debug for ChangeSerde<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeSerde")
    }
}

impl<V: 'static> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, value: &Change<V>) -> std::result::Result<Vec<u8>, String> {
        match (&value.new, &value.old) {
            (Some(new), Some(old)) => {
                let new = self.inner.serialize(new)?;
                let old = self.inner.serialize(old)?;
                let len = i32::try_from(new.len()).map_err(|_| "value too large".to_string())?;
                let mut out = Vec::with_capacity(5 + new.len() + old.len() + 1);
                write_varint(len, &mut out);
                out.extend_from_slice(&new);
                out.extend_from_slice(&old);
                out.push(2);
                Ok(out)
            }
            (Some(new), None) => {
                let mut out = self.inner.serialize(new)?;
                out.push(1);
                Ok(out)
            }
            (None, Some(old)) => {
                let mut out = self.inner.serialize(old)?;
                out.push(0);
                Ok(out)
            }
            (None, None) => Err(
                "Both old and new values are null in ChangeSerializer, which is not allowed."
                    .into(),
            ),
        }
    }

    fn deserialize(&self, bytes: &[u8]) -> std::result::Result<Change<V>, String> {
        let Some((&flag, body)) = bytes.split_last() else {
            return Err("empty table change".into());
        };
        let (body, flag) = match flag {
            0..=2 => (body, flag),
            3..=5 => match body.split_last() {
                Some((0 | 1, rest)) => (rest, flag - 3),
                _ => return Err("invalid isLatest flag in a table change".into()),
            },
            other => {
                return Err(format!(
                "Encountered unknown byte value `{other}` for encodingFlag in ChangedDeserializer."
            ))
            }
        };
        match flag {
            0 => Ok(Change {
                new: None,
                old: Some(self.inner.deserialize(body)?),
            }),
            1 => Ok(Change {
                new: Some(self.inner.deserialize(body)?),
                old: None,
            }),
            _ => {
                let (len, used) = read_varint(body)?;
                let len = usize::try_from(len).map_err(|_| "negative length".to_string())?;
                let rest = &body[used..];
                if len > rest.len() {
                    return Err("table change shorter than its new value".into());
                }
                let (new, old) = rest.split_at(len);
                Ok(Change {
                    new: Some(self.inner.deserialize(new)?),
                    old: Some(self.inner.deserialize(old)?),
                })
            }
        }
    }
}

/// `KTable::group_by`'s selector: the new key and value of a table row.
pub(crate) type Selector<K, V, K1, V1> = Arc<dyn Fn(&K, &V) -> (K1, V1) + Send + Sync>;

/// Kafka's `KTableMapProcessor`: maps old and new rows to their groups; the old pair goes
/// first, as one record with both values when both map to the same key (KIP-904).
pub(crate) struct TableSelectNode<K, V, K1, V1> {
    pub(crate) selector: Selector<K, V, K1, V1>,
    pub(crate) key_is_null: IsNull<K>,
    /// Serializes group keys: null check and equality of the old and new groups.
    pub(crate) group_keys: SerdeRef<K1>,
    pub(crate) value_is_null: IsNull<V1>,
}

impl<K: Data, V: Data, K1: Data, V1: Data> TableSelectNode<K, V, K1, V1> {
    /// The pair and its key bytes, when neither key nor value is null.
    fn pair(&self, key: &K, value: Option<&V>) -> Result<Option<(K1, V1, Vec<u8>)>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let (k1, v1) = (self.selector)(key, value);
        let bytes = self
            .group_keys
            .serialize_nullable(&k1)
            .map_err(|reason| Error::Serde {
                context: "group key of a table".into(),
                reason,
            })?;
        match bytes {
            Some(b) if !(self.value_is_null)(&v1) => Ok(Some((k1, v1, b))),
            _ => Ok(None),
        }
    }
}

impl<K: Data, V: Data, K1: Data, V1: Data> Node for TableSelectNode<K, V, K1, V1> {
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, Change<V>> = take_record(ctx.name(), record)?;
        if (self.key_is_null)(&r.key) {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: "Record key for the grouping KTable should not be null.".into(),
            });
        }
        let new = self.pair(&r.key, r.value.new.as_ref())?;
        let old = self.pair(&r.key, r.value.old.as_ref())?;
        let (timestamp, headers) = (r.timestamp, r.headers);
        let out = |key: K1, value: Change<V1>, headers| Record {
            key,
            value,
            timestamp,
            headers,
        };
        match (old, new) {
            (Some((ok, ov, ob)), Some((_, nv, nb))) if ob == nb => ctx.forward(out(
                ok,
                Change {
                    new: Some(nv),
                    old: Some(ov),
                },
                headers,
            )),
            (old, new) => {
                if let Some((ok, ov, _)) = old {
                    let change = Change {
                        new: None,
                        old: Some(ov),
                    };
                    ctx.forward(out(ok, change, headers.clone()))?;
                }
                if let Some((nk, nv, _)) = new {
                    let change = Change {
                        new: Some(nv),
                        old: None,
                    };
                    ctx.forward(out(nk, change, headers))?;
                }
                Ok(())
            }
        }
    }
}

/// Adds a value to a group's aggregate (`None`: the group has none yet).
pub(crate) type Adder<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>;

/// Removes a value from a group's aggregate.
pub(crate) type Subtractor<K, V, VA> = Arc<dyn Fn(&K, &V, VA) -> VA + Send + Sync>;

/// Kafka's `KTableAggregateProcessor` / `KTableReduceProcessor`: subtracts the old value,
/// then adds the new one; the result's timestamp is the largest of the record's and the
/// aggregate's.
pub(crate) struct TableAggregateNode<K, V, VA> {
    pub(crate) store: TableStore<K, VA>,
    pub(crate) send_old: bool,
    pub(crate) adder: Adder<K, V, VA>,
    pub(crate) subtractor: Subtractor<K, V, VA>,
}

impl<K: Data, V: Data, VA: Data> Node for TableAggregateNode<K, V, VA> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store.init(ctx, self.send_old)
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, Change<V>> = take_record(ctx.name(), record)?;
        let Some(key) = self.store.key_bytes(&r.key)? else {
            return Err(Error::Processing {
                node: ctx.name().to_string(),
                message: format!(
                    "Record key for KTable aggregate operator with state {} should not be null.",
                    self.store.name
                ),
            });
        };
        let (old_agg, old_ts) = match self.store.get(&key)? {
            Some((agg, ts)) => (Some(agg), Some(ts)),
            None => (None, None),
        };
        let mut timestamp = r.timestamp;
        let intermediate = match (&r.value.old, &old_agg, old_ts) {
            (Some(old), Some(agg), Some(ts)) => {
                timestamp = r.timestamp.max(ts);
                Some((self.subtractor)(&r.key, old, agg.clone()))
            }
            _ => old_agg.clone(),
        };
        let new_agg = match &r.value.new {
            Some(new) => {
                if let Some(ts) = old_ts {
                    timestamp = r.timestamp.max(ts);
                }
                Some((self.adder)(&r.key, new, intermediate))
            }
            None => intermediate,
        };
        let record = Record {
            key: r.key,
            value: Change {
                new: new_agg,
                old: old_agg,
            },
            timestamp,
            headers: r.headers,
        };
        self.store.put_and_forward(ctx, record, key)
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        self.store.flush(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Utf8;

    fn serde() -> ChangeSerde<String> {
        ChangeSerde {
            inner: Arc::new(Utf8),
        }
    }

    fn change(new: Option<&str>, old: Option<&str>) -> Change<String> {
        Change {
            new: new.map(str::to_string),
            old: old.map(str::to_string),
        }
    }

    #[test]
    fn changes_use_kafkas_changed_serializer_layout() {
        let s = serde();
        assert_eq!(s.serialize(&change(Some("ab"), None)).unwrap(), b"ab\x01");
        assert_eq!(s.serialize(&change(None, Some("c"))).unwrap(), b"c\x00");
        // {zigzag varint 2 = 4}{new}{old}{2}
        assert_eq!(
            s.serialize(&change(Some("ab"), Some("c"))).unwrap(),
            b"\x04abc\x02"
        );
        assert!(s.serialize(&change(None, None)).is_err());
        for c in [
            change(Some("ab"), None),
            change(None, Some("c")),
            change(Some("ab"), Some("c")),
            change(Some(""), Some("")),
        ] {
            assert_eq!(s.deserialize(&s.serialize(&c).unwrap()).unwrap(), c);
        }
    }

    #[test]
    fn changes_with_an_is_latest_flag_are_read() {
        let s = serde();
        assert_eq!(
            s.deserialize(b"c\x01\x03").unwrap(),
            change(None, Some("c"))
        );
        assert_eq!(
            s.deserialize(b"ab\x00\x04").unwrap(),
            change(Some("ab"), None)
        );
        assert_eq!(
            s.deserialize(b"\x04abc\x01\x05").unwrap(),
            change(Some("ab"), Some("c"))
        );
        assert!(s.deserialize(b"ab\x07\x04").is_err());
        assert!(s.deserialize(b"ab\x09").is_err());
        assert!(s.deserialize(b"").is_err());
        assert!(
            s.deserialize(b"\x0aab\x02").is_err(),
            "new value longer than the record"
        );
    }

    #[test]
    fn varints_are_zigzag_encoded() {
        for v in [0, 1, -1, 63, 64, 300, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_varint(v, &mut out);
            assert_eq!(read_varint(&out).unwrap(), (v, out.len()));
        }
        let mut out = Vec::new();
        write_varint(300, &mut out);
        assert_eq!(out, vec![0xd8, 0x04]);
    }
}
