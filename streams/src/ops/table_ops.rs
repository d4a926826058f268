//! Stateless table operators: `filter` / `filter_not` (Kafka's `KTableFilter`) and
//! `map_values` (Kafka's `KTableMapValues`), each optionally materialized in a store, and
//! their value getters for joins when they are not.

use std::sync::Arc;

use crate::dsl::ktable::Change;
use crate::dsl::table::ValueGetter;
use crate::error::Result;
use crate::ops::table_source::{drop_null_key, TableStore};
use crate::record::Record;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// A table filter's predicate.
pub(crate) type TablePredicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A table's value mapper (Kafka's `ValueMapperWithKey`).
pub(crate) type TableMapper<K, V, V2> = Arc<dyn Fn(&K, &V) -> V2 + Send + Sync>;

/// `value` if it passes (`filter_not` inverts), else `None`.
fn keep<K, V>(
    predicate: &TablePredicate<K, V>,
    filter_not: bool,
    key: &K,
    value: Option<V>,
) -> Option<V> {
    value.filter(|v| filter_not ^ predicate(key, v))
}

/// Kafka's `KTableFilterProcessor`: a value that does not pass becomes a delete; with old
/// values on, an update whose old and new values are both filtered out is not forwarded.
pub(crate) struct TableFilterNode<K, V> {
    pub(crate) predicate: TablePredicate<K, V>,
    pub(crate) filter_not: bool,
    pub(crate) send_old: bool,
    /// The store, when materialized (`Materialized::named`).
    pub(crate) store: Option<TableStore<K, V>>,
}

impl<K: Data, V: Data> Node for TableFilterNode<K, V> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if let Some(store) = &mut self.store {
            store.init(ctx, self.send_old)?;
        }
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, Change<V>> = take_record(ctx.name(), record)?;
        let new = keep(&self.predicate, self.filter_not, &r.key, r.value.new);
        let key_bytes = match &self.store {
            Some(store) => match store.key_bytes(&r.key)? {
                Some(k) => Some(k),
                None => {
                    drop_null_key(ctx, "null key");
                    return Ok(());
                }
            },
            None => None,
        };
        let old = match (&self.store, &key_bytes) {
            _ if !self.send_old => None,
            (Some(store), Some(k)) => store.get(k)?.map(|(v, _)| v),
            _ => keep(&self.predicate, self.filter_not, &r.key, r.value.old),
        };
        if self.send_old && old.is_none() && new.is_none() {
            return Ok(());
        }
        let record = Record {
            key: r.key,
            value: Change { new, old },
            timestamp: r.timestamp,
            headers: r.headers,
        };
        match (&mut self.store, key_bytes) {
            (Some(store), Some(k)) => store.put_and_forward(ctx, record, k),
            _ => ctx.forward(record),
        }
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        match &mut self.store {
            Some(store) => store.flush(ctx),
            None => Ok(()),
        }
    }
}

/// Kafka's `KTableMapValuesProcessor`: maps new (and, with old values on, old) values.
pub(crate) struct TableMapValuesNode<K, V, V2> {
    pub(crate) mapper: TableMapper<K, V, V2>,
    pub(crate) send_old: bool,
    /// The store, when materialized (`Materialized::named`).
    pub(crate) store: Option<TableStore<K, V2>>,
}

impl<K: Data, V: Data, V2: Data> Node for TableMapValuesNode<K, V, V2> {
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        if let Some(store) = &mut self.store {
            store.init(ctx, self.send_old)?;
        }
        Ok(())
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, Change<V>> = take_record(ctx.name(), record)?;
        let new = r.value.new.map(|v| (self.mapper)(&r.key, &v));
        let Some(store) = &mut self.store else {
            let old = match r.value.old {
                Some(v) if self.send_old => Some((self.mapper)(&r.key, &v)),
                _ => None,
            };
            return ctx.forward(Record {
                key: r.key,
                value: Change { new, old },
                timestamp: r.timestamp,
                headers: r.headers,
            });
        };
        let Some(key) = store.key_bytes(&r.key)? else {
            drop_null_key(ctx, "null key");
            return Ok(());
        };
        let old = if self.send_old {
            store.get(&key)?.map(|(v, _)| v)
        } else {
            None
        };
        let record = Record {
            key: r.key,
            value: Change { new, old },
            timestamp: r.timestamp,
            headers: r.headers,
        };
        store.put_and_forward(ctx, record, key)
    }

    fn flush(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        match &mut self.store {
            Some(store) => store.flush(ctx),
            None => Ok(()),
        }
    }
}

/// The value getter of a filter that is not materialized: the parent's value, filtered.
pub(crate) struct FilterGetter<K, V> {
    pub(crate) parent: Box<dyn ValueGetter<K, V>>,
    pub(crate) predicate: TablePredicate<K, V>,
    pub(crate) filter_not: bool,
}

impl<K: Data, V: Data> ValueGetter<K, V> for FilterGetter<K, V> {
    fn get(&self, key: &K) -> Result<Option<(V, i64)>> {
        Ok(self
            .parent
            .get(key)?
            .filter(|(v, _)| self.filter_not ^ (self.predicate)(key, v)))
    }
}

/// The value getter of a `map_values` that is not materialized: the parent's value,
/// mapped, with its timestamp.
pub(crate) struct MapValuesGetter<K, V, V2> {
    pub(crate) parent: Box<dyn ValueGetter<K, V>>,
    pub(crate) mapper: TableMapper<K, V, V2>,
}

impl<K: Data, V: Data, V2: Data> ValueGetter<K, V2> for MapValuesGetter<K, V, V2> {
    fn get(&self, key: &K) -> Result<Option<(V2, i64)>> {
        Ok(self
            .parent
            .get(key)?
            .map(|(v, ts)| ((self.mapper)(key, &v), ts)))
    }
}
