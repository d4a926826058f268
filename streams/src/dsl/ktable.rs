//! `KTable`: a changelog stream, the latest value per key.
//!
//! Table operators pass [`Change`]s: the new value and, when a downstream operator asked
//! for it (Kafka's `enableSendingOldValues`), the old one. A `None` new value is a delete.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::kstream::KStream;
use crate::ops::stateless::stateless;
use crate::record::Record;
use crate::serde::{Nullable, SerdeRef};
use crate::task::node::Data;
use crate::topology::NodeKind;

/// A table update (Kafka's `Change<V>`): the new value (`None`: deleted) and the old one
/// (sent only when a downstream operator needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<V> {
    /// The value after the update; `None` deletes the key.
    pub new: Option<V>,
    /// The value before the update, when old values are sent.
    pub old: Option<V>,
}

/// Whether a table node sends old values; set by downstream operators before the topology
/// runs, read by the node when a task creates it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SendOldValues(pub(crate) Arc<AtomicBool>);

impl SendOldValues {
    pub(crate) fn enable(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A table (Kafka's `KTable<K, V>`), borrowing its builder.
pub struct KTable<'b, K, V> {
    pub(crate) builder: &'b StreamsBuilder,
    pub(crate) node: usize,
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V>>,
    /// The store holding this table's values, when it is materialized (joins and
    /// interactive queries read it).
    pub(crate) store: Option<String>,
    /// Flags to raise so that this table's updates carry old values: this node's and, for
    /// operators that are not materialized, their upstream's.
    pub(crate) send_old_values: Vec<SendOldValues>,
    /// For a windowed table: how long after a window's end it still changes (the grace;
    /// for sessions gap + grace), which `suppress(until_window_closes)` waits for.
    pub(crate) grace_ms: Option<i64>,
}

impl<K, V> Clone for KTable<'_, K, V> {
    fn clone(&self) -> Self {
        KTable {
            builder: self.builder,
            node: self.node,
            keys: self.keys.clone(),
            values: self.values.clone(),
            store: self.store.clone(),
            send_old_values: self.send_old_values.clone(),
            grace_ms: self.grace_ms,
        }
    }
}

impl<K, V> std::fmt::Debug for KTable<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.builder.graph.borrow();
        f.debug_struct("KTable")
            .field("node", &g.nodes[self.node].name)
            .field("store", &self.store)
            .finish()
    }
}

impl<'b, K: Data, V: Data> KTable<'b, K, V> {
    /// The name of the store that materializes this table, if any (for interactive
    /// queries). Unlike Kafka, which answers only for stores named with `Materialized`, an
    /// aggregation's generated store name is returned too (it is queryable, but the name
    /// changes when the topology changes: name the store to query it).
    ///
    /// ```
    /// # use freshet_streams::{Materialized, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let counts = builder.stream::<String, String>("in").group_by_key().count_with(Materialized::named("counts"));
    /// let store = counts.queryable_store_name().map(str::to_string);
    /// assert_eq!(store.as_deref(), Some("counts"));
    /// // A source table without `Materialized` has no store to query.
    /// assert_eq!(builder.table::<String, String>("profiles").queryable_store_name(), None);
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("a".into(), "x".into(), 0)?;
    /// let counts = driver.key_value_store::<String, i64>(store.as_deref().unwrap_or_default())?;
    /// assert_eq!(counts.get(&"a".into())?, Some((1, 0)));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// Makes this table's updates carry old values (Kafka's `enableSendingOldValues(true)`):
    /// through the table's entry (see `dsl/table.rs`), which passes the request upstream
    /// past operators that are not materialized and materializes a source table; a table
    /// without an entry raises its `send_old_values` flags.
    pub(crate) fn enable_send_old_values(&self) {
        crate::dsl::table::entry_of(self).enable(self.builder, true);
    }

    /// The stream of this table's updates: each new value, `None` for a delete (Kafka's
    /// `toStream`, where deletes arrive as null values).
    ///
    /// ```
    /// # use freshet_streams::{StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").group_by_key().count().to_stream().to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("a".into(), "x".into(), 0)?;
    /// driver.input::<String, String>("in").pipe("a".into(), "y".into(), 1)?;
    /// assert_eq!(driver.output::<String, i64>("counts").read_values()?, vec![1, 2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn to_stream(&self) -> KStream<'b, K, Option<V>> {
        let f = stateless(|ctx, r: Record<K, Change<V>>| {
            let new = r.value.new;
            ctx.forward(Record {
                key: r.key,
                value: new,
                timestamp: r.timestamp,
                headers: r.headers,
            })
        });
        let node = {
            let mut g = self.builder.graph.borrow_mut();
            let name = g.name_or(None, "KTABLE-TOSTREAM-");
            g.add(name, NodeKind::Processor, &[self.node], f)
        };
        let values = self
            .values
            .clone()
            .map(|v| Arc::new(Nullable(v)) as SerdeRef<Option<V>>);
        KStream::new(self.builder, node, self.keys.clone(), values, false)
    }
}
