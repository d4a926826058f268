//! Windowed groupings: `KGroupedStream::windowed_by` with time, sliding or session windows,
//! and the time- and sliding-windowed aggregations of [`WindowedKStream`] (Kafka's
//! `TimeWindowedKStream` over `TimeWindows` and over `SlidingWindows`).
//!
//! An aggregation gives a `KTable<Windowed<K>, VA>` kept in a window store; its keys go to
//! topics with [`TimeWindowedSerde`] (window size: the time windows' size, the sliding
//! windows' time difference). Names follow Kafka: the store `KSTREAM-AGGREGATE-STATE-STORE-<n>`
//! (`KSTREAM-REDUCE-…` for reduce) unless [`Materialized::named`], then the processor, then
//! the repartition topic when the key changed upstream; a time-windowed `count_with` without
//! a store name takes one more index first (Kafka's compatibility burn; sliding windows do
//! not). The store keeps windows for [`Materialized::with_retention`], by default size +
//! grace (time windows) or 2 × time difference + grace (sliding windows); a shorter
//! retention is a build error, as in Kafka.
//!
//! Beyond Kafka, [`late_records_to`](WindowedKStream::late_records_to) writes every
//! record dropped as late to a topic of your choice.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::grouped::KGroupedStream;
use crate::dsl::ktable::{KTable, SendOldValues};
use crate::dsl::options::Materialized;
use crate::dsl::table::{getter_over, register_table, StoreGetterFn, TableEntry};
use crate::ops::aggregate::Aggregator;
use crate::ops::sliding_aggregate::SlidingAggregateNode;
use crate::ops::window_aggregate::{
    Initializer, LateRecords, WindowAggregateNode, WindowValueGetter, WindowedCore,
};
use crate::serde::{BigEndian, SerdeRef, TimeWindowedSerde, Windowed};
use crate::store::{StoreBuilder, StoreKind};
use crate::task::node::{Data, Node};
use crate::topology::{NodeFactory, TopicName};
use crate::window::{duration_ms, SlidingWindows, TimeWindows};
use freshet_state_store::{default_segment_interval, WindowStoreOptions};

pub use crate::ops::window_aggregate::LATE_REASON_HEADER;

/// A window definition a grouped stream can be windowed by (time, sliding or session
/// windows); each gives its own windowed stream type (Kafka's overloads of `windowedBy`).
pub trait WindowedBy<'b, K, V> {
    /// The windowed stream this definition gives.
    type Output;
    /// Windows `grouped` (called by [`KGroupedStream::windowed_by`]).
    fn windowed(self, grouped: &KGroupedStream<'b, K, V>) -> Self::Output;
}

/// When a windowed aggregation emits (Kafka's `EmitStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// Every update (through the cache): Kafka's default.
    #[default]
    OnWindowUpdate,
    /// Only the final result, once the window closes: its end is past `stream time -
    /// grace` (time windows: `end <= stream time - grace`; sliding windows: `end <`).
    OnWindowClose,
}

impl<'b, K: Data, V: Data> KGroupedStream<'b, K, V> {
    /// Windows the grouping (Kafka's `windowedBy`): [`TimeWindows`], [`SlidingWindows`] or
    /// [`SessionWindows`](crate::SessionWindows).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let windows = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?;
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(windows)
    ///     .count()
    ///     .to_stream()
    ///     .map(|w, n| (format!("{}@{}", w.key, w.window.start), n.unwrap_or(0)))
    ///     .to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 3)?;
    /// clicks.pipe("ann".into(), "/b".into(), 12)?;
    /// let out = driver.output::<String, i64>("counts").read_key_values()?;
    /// assert_eq!(out, vec![("ann@0".to_string(), 1), ("ann@10".to_string(), 1)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn windowed_by<W: WindowedBy<'b, K, V>>(&self, windows: W) -> W::Output {
        windows.windowed(self)
    }
}

/// The window kinds this file aggregates over.
#[derive(Debug, Clone, Copy)]
enum Windows {
    Time(TimeWindows),
    Sliding(SlidingWindows),
}

impl Windows {
    /// The stored window size: the size, or the sliding time difference.
    fn size(self) -> i64 {
        match self {
            Windows::Time(w) => w.size(),
            Windows::Sliding(w) => w.time_difference(),
        }
    }

    fn grace(self) -> i64 {
        match self {
            Windows::Time(w) => w.grace(),
            Windows::Sliding(w) => w.grace(),
        }
    }

    /// The smallest retention Kafka accepts, which is also the default.
    fn min_retention(self) -> i64 {
        match self {
            Windows::Time(w) => w.size().saturating_add(w.grace()),
            Windows::Sliding(w) => w
                .time_difference()
                .saturating_mul(2)
                .saturating_add(w.grace()),
        }
    }

    fn retention_error(self, store: &str, retention: i64) -> String {
        match self {
            Windows::Time(w) => format!(
                "The retention period of the window store {store} must be no smaller than its window size plus the grace period. Got size=[{}], grace=[{}], retention=[{retention}]",
                w.size(),
                w.grace()
            ),
            Windows::Sliding(w) => format!(
                "The retention period of the window store {store} must be no smaller than 2 * time difference plus the grace period. Got time difference=[{}], grace=[{}], retention=[{retention}]",
                w.time_difference(),
                w.grace()
            ),
        }
    }
}

/// A grouped stream windowed by time or sliding windows, ready for a windowed aggregation
/// (Kafka's `TimeWindowedKStream`, which serves both): `W` is [`TimeWindows`] for a
/// [`TimeWindowedKStream`], [`SlidingWindows`] for a [`SlidingWindowedKStream`]. Made by
/// [`KGroupedStream::windowed_by`]. Records with a null key or value are dropped.
///
/// Time windows: a record is added to each of its windows whose end is after `observed
/// stream time - grace` (this operator's own stream time, advanced before the check) and
/// dropped from the others. The aggregate's timestamp is the largest timestamp in the
/// window.
///
/// Sliding windows are `[start, start + time difference]`, inclusive at both ends, and exist
/// only where they hold records; results carry `Window { start, end: start + time
/// difference }`. A record is dropped entirely when `timestamp + time difference < stream
/// time - grace`, and a window it would update is skipped when its end is `< stream time -
/// grace`.
pub struct WindowedKStream<'b, K, V, W> {
    grouped: KGroupedStream<'b, K, V>,
    windows: Windows,
    emit: EmitStrategy,
    late_topic: Option<String>,
    _windows: PhantomData<W>,
}

/// A grouped stream windowed by [`TimeWindows`] (Kafka's `TimeWindowedKStream`); its
/// aggregations are the methods of [`WindowedKStream`].
pub type TimeWindowedKStream<'b, K, V> = WindowedKStream<'b, K, V, TimeWindows>;

/// A grouped stream windowed by [`SlidingWindows`] (Kafka's `TimeWindowedKStream` over
/// sliding windows); its aggregations are the methods of [`WindowedKStream`], over the
/// windows around each record:
///
/// ```
/// # use std::time::Duration;
/// # use freshet_streams::{EmitStrategy, Materialized, SlidingWindows, StreamsBuilder, testing::TopologyTestDriver};
/// let builder = StreamsBuilder::new();
/// let windows = SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
/// builder
///     .stream::<String, String>("clicks")
///     .group_by_key()
///     .windowed_by(windows)
///     .emit_strategy(EmitStrategy::OnWindowClose)
///     .count_with(Materialized::named("clicks-within-10ms"))
///     .to_stream()
///     .map(|w, n| (format!("[{},{}]", w.window.start, w.window.end), n.unwrap_or(0)))
///     .to("final-counts");
/// let driver = TopologyTestDriver::new(builder.build()?)?;
/// let clicks = driver.input::<String, String>("clicks");
/// clicks.pipe("ann".into(), "/a".into(), 100)?;
/// clicks.pipe("ann".into(), "/b".into(), 105)?;
/// clicks.pipe("ann".into(), "/c".into(), 120)?; // closes the windows ending before 120
/// // 105's left window holds both records; 100's right window only 105.
/// let out = driver.output::<String, i64>("final-counts").read_key_values()?;
/// let expected = [("[90,100]", 1), ("[95,105]", 2), ("[101,111]", 1)];
/// assert_eq!(out, expected.map(|(w, n)| (w.to_string(), n)));
/// let store = driver.window_store::<String, i64>("clicks-within-10ms")?;
/// assert_eq!(store.fetch(&"ann".to_string(), 95, 95)?, vec![(95, 2, 105)]);
///
/// // A retention under 2 × time difference + grace is refused when the topology is built.
/// let builder = StreamsBuilder::new();
/// builder
///     .stream::<String, String>("clicks")
///     .group_by_key()
///     .windowed_by(windows)
///     .count_with(Materialized::named("short").with_retention(Duration::from_millis(15)));
/// assert!(builder.build().is_err());
/// # Ok::<(), freshet_streams::Error>(())
/// ```
pub type SlidingWindowedKStream<'b, K, V> = WindowedKStream<'b, K, V, SlidingWindows>;

impl<K, V, W> std::fmt::Debug for WindowedKStream<'_, K, V, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.windows {
            Windows::Time(_) => "TimeWindowedKStream",
            Windows::Sliding(_) => "SlidingWindowedKStream",
        };
        f.debug_struct(name)
            .field("grouped", &self.grouped)
            .field("windows", &self.windows)
            .field("emit", &self.emit)
            .field("late_topic", &self.late_topic)
            .finish()
    }
}

impl<'b, K: Data, V: Data> WindowedBy<'b, K, V> for TimeWindows {
    type Output = TimeWindowedKStream<'b, K, V>;
    fn windowed(self, grouped: &KGroupedStream<'b, K, V>) -> TimeWindowedKStream<'b, K, V> {
        WindowedKStream::new(grouped, Windows::Time(self))
    }
}

impl<'b, K: Data, V: Data> WindowedBy<'b, K, V> for SlidingWindows {
    type Output = SlidingWindowedKStream<'b, K, V>;
    fn windowed(self, grouped: &KGroupedStream<'b, K, V>) -> SlidingWindowedKStream<'b, K, V> {
        WindowedKStream::new(grouped, Windows::Sliding(self))
    }
}

impl<'b, K: Data, V: Data, W> WindowedKStream<'b, K, V, W> {
    fn new(grouped: &KGroupedStream<'b, K, V>, windows: Windows) -> Self {
        WindowedKStream {
            grouped: KGroupedStream::new(grouped.stream.clone(), grouped.name.clone()),
            windows,
            emit: EmitStrategy::default(),
            late_topic: None,
            _windows: PhantomData,
        }
    }

    /// Sets when results are emitted (Kafka's `emitStrategy`): every update (the default)
    /// or, with [`EmitStrategy::OnWindowClose`], only each window's final result once it
    /// closes (time windows: `window end <= stream time - grace`; sliding windows: `window
    /// end < stream time - grace`). Emit-final checks for closed windows after each record,
    /// at most once per `windowed_emit_interval_ms` of wall-clock time, and its store is
    /// never cached (as Kafka).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{EmitStrategy, StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     .emit_strategy(EmitStrategy::OnWindowClose)
    ///     .count()
    ///     .to_stream()
    ///     .map(|w, n| (format!("{}@{}", w.key, w.window.start), n.unwrap_or(0)))
    ///     .to("final-counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 3)?;
    /// clicks.pipe("ann".into(), "/b".into(), 5)?;
    /// let out = driver.output::<String, i64>("final-counts");
    /// assert!(out.is_empty(), "window [0, 10) is still open");
    /// clicks.pipe("ann".into(), "/c".into(), 12)?; // stream time 12 closes [0, 10)
    /// assert_eq!(out.read_key_values()?, vec![("ann@0".to_string(), 2)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn emit_strategy(mut self, strategy: EmitStrategy) -> Self {
        self.emit = strategy;
        self
    }

    /// Also writes every record dropped as late to `topic` (beyond Kafka, which only logs
    /// and counts them): its key and value (with the grouped stream's serdes), timestamp
    /// and headers, plus the header [`LATE_REASON_HEADER`] saying which windows had closed.
    /// A record late for several (hopping or sliding) windows is written once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{LATE_REASON_HEADER, StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_millis(10), Duration::from_millis(5))?)
    ///     .late_records_to("late-clicks")
    ///     .count();
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 25)?;
    /// clicks.pipe("ann".into(), "/old".into(), 3)?; // [0, 10) closed at 25 - 5
    /// let late = driver.output::<String, String>("late-clicks").read_records()?;
    /// assert_eq!((late[0].key.as_str(), late[0].value.as_str(), late[0].timestamp), ("ann", "/old", 3));
    /// assert_eq!(
    ///     late[0].header(LATE_REASON_HEADER).map(|b| b.as_ref()),
    ///     Some(b"window closed: window end 10 <= stream time 25 - grace 5".as_ref())
    /// );
    /// assert_eq!(driver.metrics(0).map(|m| m.late_records), Some(1));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn late_records_to(mut self, topic: &str) -> Self {
        self.late_topic = Some(topic.to_string());
        self
    }

    /// Counts records per key and window (Kafka's `count()`), in a window store with a
    /// generated name.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let hopping = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?
    ///     .advance_by(Duration::from_millis(5))?;
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(hopping)
    ///     .count()
    ///     .to_stream()
    ///     .map(|w, n| (format!("{}@{}", w.key, w.window.start), n.unwrap_or(0)))
    ///     .to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("clicks").pipe("ann".into(), "/a".into(), 7)?;
    /// let out = driver.output::<String, i64>("counts").read_key_values()?;
    /// assert_eq!(out, vec![("ann@0".to_string(), 1), ("ann@5".to_string(), 1)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count(&self) -> KTable<'b, Windowed<K>, i64> {
        self.count_inner(Materialized::default(), false)
    }

    /// [`count`](Self::count) with a store name, serdes, caching, logging and retention.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     .count_with(Materialized::named("clicks-per-10ms"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe("ann".into(), "/a".into(), 3)?;
    /// clicks.pipe("ann".into(), "/b".into(), 8)?;
    /// let store = driver.window_store::<String, i64>("clicks-per-10ms")?;
    /// // (window start, count, timestamp of the latest record)
    /// assert_eq!(store.fetch(&"ann".to_string(), 0, 10)?, vec![(0, 2, 8)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<'b, Windowed<K>, i64> {
        self.count_inner(materialized, true)
    }

    fn count_inner(
        &self,
        materialized: Materialized<K, i64>,
        given: bool,
    ) -> KTable<'b, Windowed<K>, i64> {
        let materialized = materialized.with_default_values(Some(Arc::new(BigEndian)));
        // Kafka's compatibility burn: time windows only.
        let burn = given && matches!(self.windows, Windows::Time(_));
        let init: Initializer<i64> = Arc::new(|| Some(0));
        let agg: Aggregator<K, V, i64> = Arc::new(|_, _, old| old.unwrap_or(0) + 1);
        self.build("KSTREAM-AGGREGATE-", materialized, burn, init, agg)
    }

    /// Combines the values of a key in each window with `reducer`; a window's first value
    /// is its aggregate (Kafka's `reduce`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("temperatures")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     .reduce(|a, b| a.max(b))
    ///     .to_stream()
    ///     .map(|w, max| (w.window.start, max.unwrap_or(i64::MIN)))
    ///     .to("max-per-window");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("temperatures");
    /// input.pipe("oslo".into(), 3, 1)?;
    /// input.pipe("oslo".into(), 7, 2)?;
    /// input.pipe("oslo".into(), 5, 4)?;
    /// let out = driver.output::<i64, i64>("max-per-window").read_values()?;
    /// assert_eq!(out, vec![3, 7, 7]);
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
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, SlidingWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("temperatures")
    ///     .group_by_key()
    ///     .windowed_by(SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?)
    ///     .reduce_with(|a, b| a.min(b), Materialized::named("min-within-10ms"));
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("temperatures");
    /// input.pipe("oslo".into(), 7, 100)?;
    /// input.pipe("oslo".into(), 3, 104)?;
    /// let store = driver.window_store::<String, i64>("min-within-10ms")?;
    /// assert_eq!(store.fetch(&"oslo".to_string(), 94, 94)?, vec![(94, 3, 104)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn reduce_with(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<'b, Windowed<K>, V> {
        let materialized = materialized.with_default_values(self.grouped.stream.values.clone());
        let init: Initializer<V> = Arc::new(|| None);
        let agg: Aggregator<K, V, V> = Arc::new(move |_, v, old| match old {
            None => v.clone(),
            Some(a) => reducer(a, v.clone()),
        });
        self.build("KSTREAM-REDUCE-", materialized, false, init, agg)
    }

    /// Folds the values of a key in each window into an aggregate that starts at
    /// `initializer()` (Kafka's `aggregate`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("pages")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     .aggregate(String::new, |_user, page, visited| visited + page)
    ///     .to_stream()
    ///     .map(|w, pages| (w.key.clone(), pages.clone().unwrap_or_default()))
    ///     .to("paths");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("pages");
    /// input.pipe("ann".into(), "/a".into(), 1)?;
    /// input.pipe("ann".into(), "/b".into(), 2)?;
    /// let out = driver.output::<String, String>("paths").read_values()?;
    /// assert_eq!(out, vec!["/a", "/a/b"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<'b, Windowed<K>, VA> {
        self.aggregate_with(initializer, aggregator, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) with a store name, serdes, caching, logging and
    /// retention (at least size + grace for time windows, 2 × time difference + grace for
    /// sliding windows, as Kafka requires).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Materialized, StreamsBuilder, TimeWindows, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("payments")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(10))?)
    ///     .aggregate_with(
    ///         || 0i64,
    ///         |_account, amount, total| total + amount,
    ///         Materialized::named("totals").with_retention(Duration::from_secs(3600)),
    ///     );
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("payments");
    /// input.pipe("acct".into(), 5, 1)?;
    /// input.pipe("acct".into(), 7, 12)?;
    /// let store = driver.window_store::<String, i64>("totals")?;
    /// assert_eq!(store.fetch(&"acct".to_string(), 0, 10)?, vec![(0, 5, 1), (10, 7, 12)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn aggregate_with<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<'b, Windowed<K>, VA> {
        let initializer = Arc::new(initializer);
        let first = initializer.clone();
        let init: Initializer<VA> = Arc::new(move || Some(first()));
        let agg: Aggregator<K, V, VA> =
            Arc::new(move |k, v, old| aggregator(k, v, old.unwrap_or_else(|| initializer())));
        self.build("KSTREAM-AGGREGATE-", materialized, false, init, agg)
    }

    fn build<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        extra_burn: bool,
        initializer: Initializer<VA>,
        aggregator: Aggregator<K, V, VA>,
    ) -> KTable<'b, Windowed<K>, VA> {
        let grouped = &self.grouped;
        let (names, keys, values) = grouped.aggregation_store(prefix, &materialized, extra_burn);
        let builder = grouped.stream.builder;
        let windows = self.windows;
        let (size, grace) = (windows.size(), windows.grace());
        let retention = match materialized.retention.map(|r| duration_ms("retention", r)) {
            None => Ok(windows.min_retention()),
            Some(Ok(r)) if r < windows.min_retention() => {
                Err(windows.retention_error(&names.store, r))
            }
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(format!("store {}: {e}", names.store)),
        };
        let retention = retention.unwrap_or_else(|e| {
            builder.graph.borrow_mut().errors.push(e);
            windows.min_retention()
        });
        let emit_final = self.emit == EmitStrategy::OnWindowClose;
        // Emit-final reads Kafka's time-ordered store, which still shows windows starting
        // exactly `retention` before its stream time: one more millisecond of retention
        // gives the same visibility here.
        let options = if emit_final {
            WindowStoreOptions::new(retention.saturating_add(1), size)
                .with_segment_interval(default_segment_interval(retention))
        } else {
            WindowStoreOptions::new(retention, size)
        };
        let late = self.late_topic.as_ref().map(|t| LateRecords {
            topic: TopicName::External(t.clone()),
            values: builder.serde_for(
                grouped.stream.values.clone(),
                &format!("late-records topic {t}"),
            ),
        });
        let input_values = match windows {
            Windows::Sliding(_) => grouped
                .stream
                .values
                .clone()
                .or_else(|| builder.graph.borrow().serdes.get::<V>()),
            Windows::Time(_) => None,
        };
        let parent = grouped.repartitioned_parent(&names.store);
        // Emit-final never caches (Kafka's sliding windows; for time windows Kafka's cache
        // would only change what other processors read).
        let caching = materialized.caching && !emit_final;
        let store = StoreBuilder::new(names.store.clone(), StoreKind::Window(options))
            .with_serdes(keys.clone(), values.clone())
            .with_settings(materialized.logging, caching);
        let send_old = SendOldValues::default();
        let (store_name, k, v, flag, emit) = (
            names.store.clone(),
            keys.clone(),
            values.clone(),
            send_old.clone(),
            self.emit,
        );
        let factory: NodeFactory = Arc::new(move || {
            let core = WindowedCore::new(
                store_name.clone(),
                k.clone(),
                v.clone(),
                emit,
                caching,
                flag.clone(),
                grace,
                late.clone(),
                initializer.clone(),
                aggregator.clone(),
            );
            let node: Box<dyn Node> = match windows {
                Windows::Time(windows) => Box::new(WindowAggregateNode { core, windows }),
                Windows::Sliding(windows) => Box::new(SlidingAggregateNode {
                    core,
                    windows,
                    input_values: input_values.clone(),
                }),
            };
            node
        });
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
                Box::new(WindowValueGetter {
                    store,
                    keys,
                    values,
                })
            },
        );
        let windowed: SerdeRef<Windowed<K>> = Arc::new(TimeWindowedSerde::new(keys, size));
        KTable {
            builder,
            node,
            keys: Some(windowed),
            values: Some(values),
            store: Some(names.store),
            send_old_values: vec![send_old],
            grace_ms: Some(grace),
        }
    }
}

/// Records that `node` writes the late-records topic, if any.
pub(crate) fn note_late_topic(builder: &StreamsBuilder, node: usize, late_topic: Option<&String>) {
    if let Some(t) = late_topic {
        builder.graph.borrow_mut().nodes[node]
            .writes
            .push(TopicName::External(t.clone()));
    }
}

/// Lets joins read a windowed table kept in `store` through the getter `make` builds
/// (Kafka's `KStreamWindowAggregate.view()`: a fetch of the key in the window starting at
/// the windowed key's start; `KStreamSessionWindowAggregate.view()`: the session store's
/// value for exactly the windowed key's session) and make it send old values.
pub(crate) fn register_store_table<K: Data, VA: Data>(
    builder: &StreamsBuilder,
    node: usize,
    store: &str,
    keys: &SerdeRef<K>,
    values: &SerdeRef<VA>,
    send_old: &SendOldValues,
    make: StoreGetterFn<K, Windowed<K>, VA>,
) {
    let (store, keys, values) = (store.to_string(), keys.clone(), values.clone());
    let flag = send_old.clone();
    let entry = TableEntry {
        view: Arc::new(move |_| getter_over(store.clone(), keys.clone(), values.clone(), make)),
        enable_old: Arc::new(move |_, _| {
            flag.enable();
            true
        }),
        sending: send_old.clone(),
    };
    register_table(builder, node, entry);
}
