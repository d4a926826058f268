//! Session-windowed aggregations: `group_by_key().windowed_by(SessionWindows::…)` gives a
//! [`SessionWindowedKStream`], whose `count`, `reduce` and `aggregate` keep one aggregate per
//! key and session in a session store (Kafka's `SessionWindowedKStream`).
//!
//! Names follow Kafka: the store `KSTREAM-AGGREGATE-STATE-STORE-<n>` (`KSTREAM-REDUCE-…` for
//! `reduce`) unless `Materialized::named`, then the processor, then the repartition topic
//! when the key changed upstream; `count_with` without a store name burns one more index
//! first, as Kafka does for compatibility.
//!
//! The result is a table keyed by [`Windowed`] keys (on topics: `[key][end][start]`,
//! [`SessionWindowedSerde`]); each update's timestamp is its session's end. A merged-away
//! session is deleted with a tombstone. With
//! [`EmitStrategy::OnWindowClose`](crate::EmitStrategy) only final sessions are emitted, once
//! closed.
//!
//! # Examples
//!
//! ```
//! use freshet_streams::{SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
//! use std::time::Duration;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("clicks")
//!     .group_by_key()
//!     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
//!     .count()
//!     .to_stream()
//!     .map(|k, v| (format!("{}@{}/{}", k.key, k.window.start, k.window.end), *v))
//!     .to("sessions");
//! let driver = TopologyTestDriver::new(builder.build()?)?;
//! let clicks = driver.input::<String, String>("clicks");
//! clicks.pipe("ann".into(), "/a".into(), 0)?;
//! clicks.pipe("ann".into(), "/b".into(), 10)?; // within the gap: the session grows
//! let out = driver.output::<String, Option<i64>>("sessions").read_key_values()?;
//! assert_eq!(out, vec![
//!     ("ann@0/0".to_string(), Some(1)),
//!     ("ann@0/0".to_string(), None), // merged away
//!     ("ann@0/10".to_string(), Some(2)),
//! ]);
//! # Ok::<(), freshet_streams::Error>(())
//! ```

use std::sync::Arc;

use crate::dsl::grouped::KGroupedStream;
use crate::dsl::ktable::{KTable, SendOldValues};
use crate::dsl::options::Materialized;
use crate::dsl::windowed::{note_late_topic, register_store_table, EmitStrategy, WindowedBy};
use crate::ops::session_aggregate::{
    LateRecords, SessionAggregateNode, SessionAggregateSpec, SessionFns, SessionValueGetter,
};
use crate::serde::{BigEndian, SerdeRef, SessionWindowedSerde, Windowed};
use crate::store::{StoreBuilder, StoreKind};
use crate::task::node::Data;
use crate::topology::NodeFactory;
use crate::window::{duration_ms, SessionWindows};
use freshet_state_store::{default_segment_interval, SessionStoreOptions};

/// A grouped stream windowed by sessions (Kafka's `SessionWindowedKStream<K, V>`), from
/// [`KGroupedStream::windowed_by`] with [`SessionWindows`].
pub struct SessionWindowedKStream<'b, K, V> {
    grouped: KGroupedStream<'b, K, V>,
    windows: SessionWindows,
    emit: EmitStrategy,
    late_topic: Option<String>,
}

impl<K, V> std::fmt::Debug for SessionWindowedKStream<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWindowedKStream")
            .field("grouped", &self.grouped)
            .field("windows", &self.windows)
            .field("emit", &self.emit)
            .field("late_topic", &self.late_topic)
            .finish()
    }
}

impl<'b, K: Data, V: Data> WindowedBy<'b, K, V> for SessionWindows {
    type Output = SessionWindowedKStream<'b, K, V>;

    fn windowed(self, grouped: &KGroupedStream<'b, K, V>) -> SessionWindowedKStream<'b, K, V> {
        SessionWindowedKStream {
            grouped: KGroupedStream::new(grouped.stream.clone(), grouped.name.clone()),
            windows: self,
            emit: EmitStrategy::default(),
            late_topic: None,
        }
    }
}

impl<'b, K: Data, V: Data> SessionWindowedKStream<'b, K, V> {
    /// When the aggregation emits (Kafka's `emitStrategy`): every update (the default), or
    /// with [`EmitStrategy::OnWindowClose`] only each final session, once
    /// `session end < stream time - grace - gap`, timestamped with the session end. Final
    /// emission is tried after each record, at most once per `windowed_emit_interval_ms` of
    /// wall-clock time (0 in the test driver), and at each commit. It bypasses the cache.
    ///
    /// ```
    /// use freshet_streams::{EmitStrategy, SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     .emit_strategy(EmitStrategy::OnWindowClose)
    ///     .count()
    ///     .to_stream()
    ///     .map(|k, v| (format!("{}@{}/{}", k.key, k.window.start, k.window.end), *v))
    ///     .to("final-sessions");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 0)?;
    /// clicks.pipe("ann".into(), "/b".into(), 5)?;
    /// clicks.pipe("bob".into(), "/a".into(), 16)?; // closes [0, 5]: 5 < 16 - 0 - 10
    /// let out = driver.output::<String, Option<i64>>("final-sessions").read_records()?;
    /// assert_eq!(out.len(), 1);
    /// assert_eq!((out[0].key.as_str(), out[0].value, out[0].timestamp), ("ann@0/5", Some(2), 5));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn emit_strategy(mut self, strategy: EmitStrategy) -> Self {
        self.emit = strategy;
        self
    }

    /// Beyond Kafka: records dropped because their session had closed are also written to
    /// `topic` (created like a sink topic), with their original key and value (in the
    /// grouped stream's serdes), timestamp and headers, plus a header `__freshet.late.reason`
    /// saying why, e.g. `session closed: session end 10 < stream time 30 - grace 5 - gap 10`.
    ///
    /// ```
    /// use freshet_streams::{SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
    ///         Duration::from_millis(10),
    ///         Duration::from_millis(5),
    ///     )?)
    ///     .late_records_to("late-clicks")
    ///     .count();
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 30)?;
    /// clicks.pipe("bob".into(), "/late".into(), 10)?;
    /// let late = driver.output::<String, String>("late-clicks").read_records()?;
    /// assert_eq!((late[0].key.as_str(), late[0].value.as_str(), late[0].timestamp), ("bob", "/late", 10));
    /// assert_eq!(
    ///     late[0].header("__freshet.late.reason").map(|r| r.to_vec()),
    ///     Some(b"session closed: session end 10 < stream time 30 - grace 5 - gap 10".to_vec())
    /// );
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn late_records_to(mut self, topic: impl Into<String>) -> Self {
        self.late_topic = Some(topic.into());
        self
    }

    /// Counts records per key and session (Kafka's `count()`).
    ///
    /// ```
    /// use freshet_streams::{SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// let counts = builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
    ///         Duration::from_millis(10),
    ///         Duration::from_millis(50),
    ///     )?)
    ///     .count();
    /// let store = counts.queryable_store_name().unwrap_or_default().to_string();
    /// assert_eq!(store, "KSTREAM-AGGREGATE-STATE-STORE-0000000001");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 0)?;
    /// clicks.pipe("ann".into(), "/b".into(), 30)?;
    /// let sessions = driver.session_store::<String, i64>(&store)?.find_sessions(&"ann".into(), 0, 100)?;
    /// let found: Vec<_> = sessions.iter().map(|(w, n, _)| (w.start, w.end, *n)).collect();
    /// assert_eq!(found, vec![(0, 0, 1), (30, 30, 1)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count(&self) -> KTable<'b, Windowed<K>, i64> {
        self.count_inner(Materialized::default(), false)
    }

    /// [`count`](Self::count) with a store name, serdes, caching, logging and retention
    /// (at least gap + grace).
    ///
    /// ```
    /// use freshet_streams::{Materialized, SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     .count_with(Materialized::named("click-sessions").with_retention(Duration::from_secs(60)));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("clicks").pipe("ann".into(), "/a".into(), 7)?;
    /// let all = driver.session_store::<String, i64>("click-sessions")?.all()?;
    /// assert_eq!((all[0].0.key.as_str(), all[0].0.window.start, all[0].1), ("ann", 7, 1));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<'b, Windowed<K>, i64> {
        self.count_inner(materialized, true)
    }

    fn count_inner(
        &self,
        materialized: Materialized<K, i64>,
        extra_burn: bool,
    ) -> KTable<'b, Windowed<K>, i64> {
        let materialized = materialized.with_default_values(Some(Arc::new(BigEndian)));
        let fns = SessionFns {
            init: Arc::new(|| Some(0)),
            add: Arc::new(|_: &K, _: &V, agg: Option<i64>| agg.unwrap_or(0) + 1),
            merge: Arc::new(|_: &K, a: Option<i64>, b: i64| Some(a.unwrap_or(0) + b)),
        };
        self.aggregate_inner("KSTREAM-AGGREGATE-", materialized, extra_burn, fns)
    }

    /// Combines the values of a session with `reducer`; a session's first value is its
    /// aggregate, and merged sessions are combined with `reducer` too (Kafka's `reduce`).
    ///
    /// ```
    /// use freshet_streams::{SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("spend")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     .reduce(|a, b| a + b)
    ///     .to_stream()
    ///     .map(|k, v| (k.key.clone(), v.clone()))
    ///     .to("spend-per-session");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let spend = driver.input::<String, i64>("spend");
    /// spend.pipe("ann".into(), 3, 0)?;
    /// spend.pipe("ann".into(), 4, 5)?;
    /// let out = driver.output::<String, Option<i64>>("spend-per-session").read_values()?;
    /// assert_eq!(out, vec![Some(3), None, Some(7)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> KTable<'b, Windowed<K>, V> {
        self.reduce_with(reducer, Materialized::default())
    }

    /// [`reduce`](Self::reduce) with a store name, serdes, caching, logging and retention.
    ///
    /// ```
    /// use freshet_streams::{Materialized, SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("spend")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     .reduce_with(|a, b| a.max(b), Materialized::named("max-spend"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let spend = driver.input::<String, i64>("spend");
    /// spend.pipe("ann".into(), 3, 0)?;
    /// spend.pipe("ann".into(), 9, 4)?;
    /// spend.pipe("ann".into(), 5, 8)?;
    /// let all = driver.session_store::<String, i64>("max-spend")?.all()?;
    /// assert_eq!((all[0].0.window.start, all[0].0.window.end, all[0].1), (0, 8, 9));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn reduce_with(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<'b, Windowed<K>, V> {
        let materialized = materialized.with_default_values(self.grouped.stream.values.clone());
        let reducer = Arc::new(reducer);
        let r = reducer.clone();
        let fns = SessionFns {
            init: Arc::new(|| None),
            add: Arc::new(move |_: &K, v: &V, agg: Option<V>| match agg {
                None => v.clone(),
                Some(a) => reducer(a, v.clone()),
            }),
            // Kafka: `mergerForAggregator(aggregatorForReducer(reducer))`.
            merge: Arc::new(move |_: &K, a: Option<V>, b: V| match a {
                None => Some(b),
                Some(a) => Some(r(a, b)),
            }),
        };
        self.aggregate_inner("KSTREAM-REDUCE-", materialized, false, fns)
    }

    /// Folds the values of a session into an aggregate that starts at `initializer()`;
    /// when a record bridges sessions, their aggregates are combined with `merger`,
    /// starting from `initializer()` (Kafka's `aggregate(initializer, aggregator, merger)`).
    ///
    /// ```
    /// use freshet_streams::{SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("pages")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
    ///         Duration::from_millis(10),
    ///         Duration::from_millis(20),
    ///     )?)
    ///     .aggregate(String::new, |_k, page, path| path + page, |_k, a, b| a + &b)
    ///     .to_stream()
    ///     .map(|k, v| (k.key.clone(), v.clone()))
    ///     .to("paths");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let pages = driver.input::<String, String>("pages");
    /// pages.pipe("ann".into(), "a".into(), 0)?;
    /// pages.pipe("ann".into(), "c".into(), 20)?;
    /// pages.pipe("ann".into(), "b".into(), 10)?; // bridges both sessions
    /// let out = driver.output::<String, Option<String>>("paths").read_values()?;
    /// assert_eq!(out.last(), Some(&Some("acb".to_string())));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<'b, Windowed<K>, VA> {
        self.aggregate_with(initializer, aggregator, merger, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) with a store name, serdes, caching, logging and
    /// retention.
    ///
    /// ```
    /// use freshet_streams::{BigEndian, Materialized, SessionWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("pages")
    ///     .group_by_key()
    ///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10))?)
    ///     .aggregate_with(
    ///         || 0u64,
    ///         |_k, page, n| n + page.len() as u64,
    ///         |_k, a, b| a + b,
    ///         Materialized::named("bytes-per-session").with_value_serde(BigEndian),
    ///     );
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("pages").pipe("ann".into(), "/home".into(), 0)?;
    /// let all = driver.session_store::<String, u64>("bytes-per-session")?.all()?;
    /// assert_eq!(all[0].1, 5);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate_with<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<'b, Windowed<K>, VA> {
        let initializer = Arc::new(initializer);
        let (init, merge_init) = (initializer.clone(), initializer.clone());
        let fns = SessionFns {
            init: Arc::new(move || Some(init())),
            add: Arc::new(move |k: &K, v: &V, agg: Option<VA>| {
                aggregator(k, v, agg.unwrap_or_else(|| initializer()))
            }),
            merge: Arc::new(move |k: &K, a: Option<VA>, b: VA| {
                Some(merger(k, a.unwrap_or_else(|| merge_init()), b))
            }),
        };
        self.aggregate_inner("KSTREAM-AGGREGATE-", materialized, false, fns)
    }

    fn aggregate_inner<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        extra_burn: bool,
        fns: SessionFns<K, V, VA>,
    ) -> KTable<'b, Windowed<K>, VA> {
        let grouped = &self.grouped;
        let (names, keys, values) = grouped.aggregation_store(prefix, &materialized, extra_burn);
        let builder = grouped.stream.builder;
        let gap = self.windows.inactivity_gap();
        let grace = self.windows.grace();
        let min_retention = gap.saturating_add(grace);
        let retention = match materialized.retention.map(|r| duration_ms("retention", r)) {
            None => min_retention,
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                builder
                    .graph
                    .borrow_mut()
                    .errors
                    .push(format!("retention of session store {}: {e}", names.store));
                min_retention
            }
        };
        if retention < min_retention {
            builder.graph.borrow_mut().errors.push(format!(
                "the retention period of the session store {} must be no smaller than the session inactivity gap plus the grace period: got gap=[{gap}], grace=[{grace}], retention=[{retention}]",
                names.store
            ));
        }
        let late = self.late_topic.as_ref().map(|topic| {
            let what = format!("late-records topic {topic}");
            LateRecords {
                topic: topic.clone(),
                keys: builder.serde_for(grouped.stream.keys.clone(), &what),
                values: builder.serde_for(grouped.stream.values.clone(), &what),
            }
        });
        let parent = grouped.repartitioned_parent(&names.store);
        let emit_final = self.emit == EmitStrategy::OnWindowClose;
        let segment_interval = default_segment_interval(retention);
        // Kafka's emit-final store (time-ordered) still returns closed sessions until their
        // whole segment is dropped, where the plain session store hides them from the
        // retention on: keep one segment interval more and filter as Kafka's segments would
        // (the operator does).
        let options = if emit_final {
            SessionStoreOptions::new(retention.saturating_add(segment_interval))
                .with_segment_interval(segment_interval)
        } else {
            SessionStoreOptions::new(retention)
        };
        let store = StoreBuilder::new(names.store.clone(), StoreKind::Session(options))
            .with_serdes(keys.clone(), values.clone())
            .with_settings(materialized.logging, materialized.caching && !emit_final);
        let send_old = SendOldValues::default();
        let spec = SessionAggregateSpec {
            store_name: names.store.clone(),
            keys: keys.clone(),
            values: values.clone(),
            fns,
            gap_ms: gap,
            grace_ms: grace,
            retention_ms: retention,
            segment_interval_ms: segment_interval,
            emit_final,
            late,
            send_old: send_old.clone(),
        };
        let factory: NodeFactory =
            Arc::new(move || Box::new(SessionAggregateNode::new(spec.clone())));
        let node = grouped.add_stateful(names.processor, parent, store, factory);
        note_late_topic(builder, node, self.late_topic.as_ref());
        register_store_table(
            builder,
            node,
            &names.store,
            &keys,
            &values,
            &send_old,
            |store, keys, values| {
                Box::new(SessionValueGetter {
                    store,
                    keys,
                    values,
                })
            },
        );
        let windowed_keys: SerdeRef<Windowed<K>> = Arc::new(SessionWindowedSerde::new(keys));
        KTable {
            builder,
            node,
            keys: Some(windowed_keys),
            values: Some(values),
            store: Some(names.store),
            send_old_values: vec![send_old],
            grace_ms: Some(min_retention),
        }
    }
}
