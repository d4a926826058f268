//! `KTable::suppress`: hold table updates back and emit only the latest per key — after a
//! time limit, or once a window has closed (Kafka's `Suppressed` and `BufferConfig`).
//!
//! [`Suppressed::until_time_limit`] works on any table: a key's updates wait until stream
//! time has passed the first one's timestamp by the limit. [`Suppressed::until_window_closes`]
//! works only on windowed tables (keys of type [`Windowed`]), the compiler checks it: each
//! window emits once, its final value, when `window end <= stream time - grace` (for
//! sessions `grace + gap`). A final result must not be emitted early, so it takes only a
//! [`StrictBufferConfig`] (unbounded, or shutting down when full).
//!
//! Names follow Kafka: the processor `KTABLE-SUPPRESS-<n>` and its buffer store
//! `KTABLE-SUPPRESS-STATE-STORE-<n+1>`; with [`Suppressed::with_name`]`("x")` they are `x`
//! and `x-store` and no index is taken. The buffer is a changelogged store, so a restart
//! emits nothing twice and loses nothing.
//!
//! # Examples
//!
//! ```
//! use freshet_streams::{
//!     BufferConfig, SessionWindows, StreamsBuilder, Suppressed, testing::TopologyTestDriver,
//! };
//! use std::time::Duration;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("clicks")
//!     .group_by_key()
//!     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(5))?)
//!     .count()
//!     .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
//!     .to_stream()
//!     .map(|k, v| (format!("{}@{}/{}", k.key, k.window.start, k.window.end), *v))
//!     .to("final-counts");
//! let driver = TopologyTestDriver::new(builder.build()?)?;
//! let clicks = driver.input::<String, String>("clicks");
//! clicks.pipe("ann".into(), "/a".into(), 0)?;
//! clicks.pipe("ann".into(), "/b".into(), 3)?;
//! clicks.pipe("bob".into(), "/a".into(), 9)?; // 3 <= 9 - 0 - 5: ann's session is final
//! let out = driver.output::<String, Option<i64>>("final-counts").read_records()?;
//! assert_eq!(out.len(), 1);
//! assert_eq!((out[0].key.as_str(), out[0].value, out[0].timestamp), ("ann@0/3", Some(2), 3));
//! # Ok::<(), freshet_streams::Error>(())
//! ```

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::dsl::ktable::{KTable, SendOldValues};
use crate::dsl::table::{
    entry_of, register_table, TableEntry, ValueGetter, ValueGetterSupplier, ViewFn,
};
use crate::ops::suppress::{BufferTimeFn, SuppressGetter, SuppressNode, SuppressSpec};
use crate::serde::Windowed;
use crate::store::{StoreBuilder, StoreKind};
use crate::task::node::Data;
use crate::topology::{NodeFactory, NodeKind};

/// Marks a [`BufferConfig`] that emits the oldest entries early when full (Kafka's
/// `EagerBufferConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eager;

/// Marks a [`BufferConfig`] that never emits early: unbounded, or failing when full (Kafka's
/// `StrictBufferConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strict;

/// A buffer that emits early when full.
pub type EagerBufferConfig = BufferConfig<Eager>;
/// A buffer that never emits early.
pub type StrictBufferConfig = BufferConfig<Strict>;

/// How large a suppression buffer may grow and what happens when it is full (Kafka's
/// `Suppressed.BufferConfig`). The size counts entries and Kafka's estimate of their bytes
/// (key, values, timestamps, record topic, partition, offset and headers).
///
/// ```
/// use freshet_streams::BufferConfig;
/// let eager = BufferConfig::max_records(1_000).with_max_bytes(1 << 20);
/// assert_eq!((eager.record_limit(), eager.byte_limit()), (1_000, 1 << 20));
/// let strict = eager.shut_down_when_full();
/// assert!(strict.shuts_down_when_full());
/// assert_eq!(BufferConfig::unbounded().record_limit(), u64::MAX);
/// ```
pub struct BufferConfig<F = Eager> {
    max_records: u64,
    max_bytes: u64,
    shut_down: bool,
    logging: bool,
    _when_full: PhantomData<F>,
}

impl<F> std::fmt::Debug for BufferConfig<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferConfig")
            .field("max_records", &self.max_records)
            .field("max_bytes", &self.max_bytes)
            .field("shut_down_when_full", &self.shut_down)
            .field("logging", &self.logging)
            .finish()
    }
}

impl<F> Clone for BufferConfig<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for BufferConfig<F> {}

impl BufferConfig<Strict> {
    /// No limit: the buffer grows as needed (Kafka's `unbounded()`).
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// let b = BufferConfig::unbounded();
    /// assert_eq!((b.record_limit(), b.byte_limit()), (u64::MAX, u64::MAX));
    /// ```
    pub fn unbounded() -> Self {
        BufferConfig::with(u64::MAX, u64::MAX, true)
    }
}

impl BufferConfig<Eager> {
    /// At most `records` entries, emitting the oldest early when more arrive (Kafka's
    /// `maxRecords`).
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert_eq!(BufferConfig::max_records(3).record_limit(), 3);
    /// ```
    pub fn max_records(records: u64) -> Self {
        BufferConfig::with(records, u64::MAX, false)
    }

    /// At most `bytes` bytes, emitting the oldest entries early when more arrive (Kafka's
    /// `maxBytes`).
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert_eq!(BufferConfig::max_bytes(200).byte_limit(), 200);
    /// ```
    pub fn max_bytes(bytes: u64) -> Self {
        BufferConfig::with(u64::MAX, bytes, false)
    }
}

impl<F> BufferConfig<F> {
    fn with(max_records: u64, max_bytes: u64, shut_down: bool) -> Self {
        BufferConfig {
            max_records,
            max_bytes,
            shut_down,
            logging: true,
            _when_full: PhantomData,
        }
    }

    fn retype<G>(self, shut_down: bool) -> BufferConfig<G> {
        BufferConfig {
            max_records: self.max_records,
            max_bytes: self.max_bytes,
            shut_down,
            logging: self.logging,
            _when_full: PhantomData,
        }
    }

    /// Sets the record limit.
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert_eq!(BufferConfig::unbounded().with_max_records(9).record_limit(), 9);
    /// ```
    pub fn with_max_records(mut self, records: u64) -> Self {
        self.max_records = records;
        self
    }

    /// Sets the byte limit.
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert_eq!(BufferConfig::max_records(1).with_max_bytes(9).byte_limit(), 9);
    /// ```
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Removes both limits (Kafka's `withNoBound`).
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert_eq!(BufferConfig::max_records(1).with_no_bound().record_limit(), u64::MAX);
    /// ```
    pub fn with_no_bound(self) -> BufferConfig<Strict> {
        BufferConfig::<Strict>::with(u64::MAX, u64::MAX, true).with_logging(self.logging)
    }

    /// When full, emit the oldest entries early (Kafka's `emitEarlyWhenFull`).
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert!(!BufferConfig::unbounded().with_max_records(2).emit_early_when_full().shuts_down_when_full());
    /// ```
    pub fn emit_early_when_full(self) -> BufferConfig<Eager> {
        self.retype(false)
    }

    /// When full, fail: the task stops with an error (Kafka's `shutDownWhenFull`).
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert!(BufferConfig::max_records(2).shut_down_when_full().shuts_down_when_full());
    /// ```
    pub fn shut_down_when_full(self) -> BufferConfig<Strict> {
        self.retype(true)
    }

    /// Turns the buffer's changelog off: a restart loses what it held (Kafka's
    /// `withLoggingDisabled`).
    ///
    /// ```
    /// use freshet_streams::BufferConfig;
    /// assert!(!BufferConfig::unbounded().with_logging_disabled().logging_enabled());
    /// ```
    pub fn with_logging_disabled(self) -> Self {
        self.with_logging(false)
    }

    fn with_logging(mut self, logging: bool) -> Self {
        self.logging = logging;
        self
    }

    /// The record limit (`u64::MAX`: none).
    ///
    /// ```
    /// assert_eq!(freshet_streams::BufferConfig::max_records(4).record_limit(), 4);
    /// ```
    pub fn record_limit(&self) -> u64 {
        self.max_records
    }

    /// The byte limit (`u64::MAX`: none).
    ///
    /// ```
    /// assert_eq!(freshet_streams::BufferConfig::max_bytes(4).byte_limit(), 4);
    /// ```
    pub fn byte_limit(&self) -> u64 {
        self.max_bytes
    }

    /// Whether a full buffer fails instead of emitting early.
    ///
    /// ```
    /// assert!(freshet_streams::BufferConfig::unbounded().shuts_down_when_full());
    /// ```
    pub fn shuts_down_when_full(&self) -> bool {
        self.shut_down
    }

    /// Whether the buffer is changelogged (the default).
    ///
    /// ```
    /// assert!(freshet_streams::BufferConfig::unbounded().logging_enabled());
    /// ```
    pub fn logging_enabled(&self) -> bool {
        self.logging
    }
}

/// Suppress until a window closes (see [`Suppressed::until_window_closes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UntilWindowCloses;

/// Suppress for a time limit (see [`Suppressed::until_time_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UntilTimeLimit {
    limit_ms: i64,
}

/// The buffer settings a [`Suppressed`] keeps, whatever its marker.
#[derive(Debug, Clone, Copy)]
struct BufferSettings {
    max_records: u64,
    max_bytes: u64,
    shut_down: bool,
    logging: bool,
}

impl<F> From<BufferConfig<F>> for BufferSettings {
    fn from(b: BufferConfig<F>) -> Self {
        BufferSettings {
            max_records: b.max_records,
            max_bytes: b.max_bytes,
            shut_down: b.shut_down,
            logging: b.logging,
        }
    }
}

/// How [`KTable::suppress`] holds updates back (Kafka's `Suppressed`).
///
/// ```
/// use freshet_streams::{BufferConfig, Suppressed};
/// use std::time::Duration;
/// let s = Suppressed::until_time_limit(Duration::from_secs(5), BufferConfig::max_records(100))
///     .with_name("rate-limit");
/// assert_eq!(s.name(), Some("rate-limit"));
/// ```
#[derive(Debug, Clone)]
pub struct Suppressed<T> {
    time: T,
    buffer: BufferSettings,
    name: Option<String>,
}

impl Suppressed<UntilWindowCloses> {
    /// Emits each window once, its final value, when it closes:
    /// `window end <= stream time - grace` (sessions: `grace + gap`), where stream time is
    /// the largest timestamp of the updates reaching the suppression (Kafka's
    /// `untilWindowCloses`). Deletes (merged-away sessions) are never emitted. Only for
    /// windowed tables; the grace comes from the windowed aggregation upstream.
    ///
    /// ```
    /// use freshet_streams::{BufferConfig, Suppressed};
    /// let s = Suppressed::until_window_closes(BufferConfig::max_records(10_000).shut_down_when_full());
    /// assert_eq!(s.name(), None);
    /// ```
    pub fn until_window_closes(buffer: BufferConfig<Strict>) -> Self {
        Suppressed {
            time: UntilWindowCloses,
            buffer: buffer.into(),
            name: None,
        }
    }
}

impl Suppressed<UntilTimeLimit> {
    /// Emits a key's latest update once stream time has passed its **first** buffered
    /// update's timestamp by `limit` (`first ts <= stream time - limit`), keeping the latest
    /// update's timestamp (Kafka's `untilTimeLimit`). Limits beyond `i64::MAX` ms mean
    /// "never by time".
    ///
    /// ```
    /// use freshet_streams::{BufferConfig, StreamsBuilder, Suppressed, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .group_by_key()
    ///     .count()
    ///     .suppress(Suppressed::until_time_limit(Duration::from_millis(10), BufferConfig::unbounded()))
    ///     .to_stream()
    ///     .to("rate-limited");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe("a".into(), "x".into(), 0)?;
    /// input.pipe("a".into(), "y".into(), 5)?;
    /// input.pipe("b".into(), "z".into(), 10)?; // a was first buffered at 0: 0 <= 10 - 10
    /// let out = driver.output::<String, Option<i64>>("rate-limited").read_records()?;
    /// assert_eq!(out.len(), 1);
    /// assert_eq!((out[0].key.as_str(), out[0].value, out[0].timestamp), ("a", Some(2), 5));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn until_time_limit<F>(limit: Duration, buffer: BufferConfig<F>) -> Self {
        Suppressed {
            time: UntilTimeLimit {
                limit_ms: i64::try_from(limit.as_millis()).unwrap_or(i64::MAX),
            },
            buffer: buffer.into(),
            name: None,
        }
    }
}

impl<T> Suppressed<T> {
    /// Names the suppression: the processor `name`, its buffer store `name-store`.
    ///
    /// ```
    /// use freshet_streams::{BufferConfig, Suppressed};
    /// let s = Suppressed::until_window_closes(BufferConfig::unbounded()).with_name("final");
    /// assert_eq!(s.name(), Some("final"));
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The name given, if any.
    ///
    /// ```
    /// use freshet_streams::{BufferConfig, Suppressed};
    /// use std::time::Duration;
    /// assert_eq!(Suppressed::until_time_limit(Duration::ZERO, BufferConfig::unbounded()).name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

mod sealed {
    #[allow(unreachable_pub)]
    pub trait Sealed {}
}

impl<T> sealed::Sealed for Suppressed<T> {}

/// A [`Suppressed`] that applies to tables keyed by `K`: a time limit to any table, "until
/// the window closes" only to windowed tables. Sealed: implemented by [`Suppressed`] only.
pub trait Suppression<K>: sealed::Sealed {
    /// The suppress duration, from the table's grace (`None`: not windowed); an error
    /// message when it cannot apply.
    #[doc(hidden)]
    fn duration_ms(&self, table_grace_ms: Option<i64>) -> Result<i64, String>;
    /// How an update's buffer time is chosen.
    #[doc(hidden)]
    #[allow(clippy::type_complexity)]
    fn buffer_time_fn(&self) -> Arc<dyn Fn(&K, i64) -> i64 + Send + Sync>;
    /// Whether deletes may be dropped (final results).
    #[doc(hidden)]
    fn safe_to_drop_tombstones(&self) -> bool;
    /// The name given, if any.
    #[doc(hidden)]
    fn given_name(&self) -> Option<String>;
    /// `(max records, max bytes, shut down when full, logging)`.
    #[doc(hidden)]
    fn buffer_limits(&self) -> (u64, u64, bool, bool);
}

impl<K: 'static> Suppression<Windowed<K>> for Suppressed<UntilWindowCloses> {
    fn duration_ms(&self, table_grace_ms: Option<i64>) -> Result<i64, String> {
        table_grace_ms.ok_or_else(|| {
            "suppress(until_window_closes) needs a windowed aggregation upstream to know the grace period (window close time is only defined for windowed computations)".to_string()
        })
    }
    fn buffer_time_fn(&self) -> Arc<dyn Fn(&Windowed<K>, i64) -> i64 + Send + Sync> {
        Arc::new(|key: &Windowed<K>, _ts| key.window.end)
    }
    fn safe_to_drop_tombstones(&self) -> bool {
        true
    }
    fn given_name(&self) -> Option<String> {
        self.name.clone()
    }
    fn buffer_limits(&self) -> (u64, u64, bool, bool) {
        let b = self.buffer;
        (b.max_records, b.max_bytes, b.shut_down, b.logging)
    }
}

impl<K: 'static> Suppression<K> for Suppressed<UntilTimeLimit> {
    fn duration_ms(&self, _table_grace_ms: Option<i64>) -> Result<i64, String> {
        Ok(self.time.limit_ms)
    }
    fn buffer_time_fn(&self) -> Arc<dyn Fn(&K, i64) -> i64 + Send + Sync> {
        Arc::new(|_key: &K, ts| ts)
    }
    fn safe_to_drop_tombstones(&self) -> bool {
        false
    }
    fn given_name(&self) -> Option<String> {
        self.name.clone()
    }
    fn buffer_limits(&self) -> (u64, u64, bool, bool) {
        let b = self.buffer;
        (b.max_records, b.max_bytes, b.shut_down, b.logging)
    }
}

impl<'b, K: Data, V: Data> KTable<'b, K, V> {
    /// Holds updates back and emits only the latest per key (Kafka's `suppress`): after a
    /// time limit ([`Suppressed::until_time_limit`]) or, for windowed tables, once the window
    /// closes ([`Suppressed::until_window_closes`]). Emitted updates keep the latest update's
    /// timestamp and headers. The upstream table sends old values from now on (the buffer
    /// keeps them, as Kafka's does). The suppressed table is not queryable.
    ///
    /// ```
    /// use freshet_streams::{BufferConfig, StreamsBuilder, Suppressed, testing::TopologyTestDriver};
    /// use std::time::Duration;
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("in")
    ///     .group_by_key()
    ///     .count()
    ///     .suppress(Suppressed::until_time_limit(Duration::MAX, BufferConfig::max_records(1)))
    ///     .to_stream()
    ///     .to("out");
    /// let topology = builder.build()?;
    /// assert!(topology.describe().to_string().contains(
    ///     "Processor: KTABLE-SUPPRESS-0000000003 (stores: [KTABLE-SUPPRESS-STATE-STORE-0000000004])"
    /// ));
    /// let driver = TopologyTestDriver::new(topology)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe("a".into(), "x".into(), 0)?;
    /// input.pipe("a".into(), "y".into(), 1)?; // replaces a's entry
    /// input.pipe("b".into(), "z".into(), 2)?; // two entries: the oldest goes out early
    /// assert_eq!(driver.output::<String, Option<i64>>("out").read_key_values()?, vec![("a".into(), Some(2))]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn suppress<S: Suppression<K>>(&self, suppressed: S) -> KTable<'b, K, V> {
        // The buffer keeps old values, for the prior-value view (Kafka forces it).
        let parent = entry_of(self);
        parent.enable(self.builder, true);
        let (max_records, max_bytes, shut_down_when_full, logging) = suppressed.buffer_limits();
        let (name, store_name) = {
            let mut g = self.builder.graph.borrow_mut();
            match suppressed.given_name() {
                Some(n) => {
                    let store = format!("{n}-store");
                    ((n, None), store)
                }
                None => {
                    let (n, i) = g.new_name("KTABLE-SUPPRESS-");
                    let store = g.store_name_or(None, "KTABLE-SUPPRESS-STATE-STORE-");
                    ((n, Some(i)), store)
                }
            }
        };
        let duration_ms = match suppressed.duration_ms(self.grace_ms) {
            Ok(d) => d,
            Err(e) => {
                self.builder
                    .graph
                    .borrow_mut()
                    .errors
                    .push(format!("{e}; at {}", name.0));
                0
            }
        };
        let what = format!("store {store_name}");
        let keys = self.builder.serde_for(self.keys.clone(), &what);
        let values = self.builder.serde_for(self.values.clone(), &what);
        let buffer_time: BufferTimeFn<K> = suppressed.buffer_time_fn();
        let spec = SuppressSpec {
            store_name: store_name.clone(),
            keys: keys.clone(),
            values: values.clone(),
            buffer_time,
            duration_ms,
            max_records,
            max_bytes,
            shut_down_when_full,
            safe_to_drop_tombstones: suppressed.safe_to_drop_tombstones(),
        };
        let factory: NodeFactory = Arc::new(move || Box::new(SuppressNode::new(spec.clone())));
        let mut store = StoreBuilder::new(store_name.clone(), StoreKind::Buffer)
            .with_serdes(keys.clone(), values.clone());
        store.logging = logging;
        let node = {
            let mut g = self.builder.graph.borrow_mut();
            let node = g.add(name, NodeKind::Processor, &[self.node], factory);
            g.add_store(store, Some(node));
            node
        };
        register_suppressed_table(self.builder, node, parent, store_name, keys, values);
        KTable {
            builder: self.builder,
            node,
            keys: self.keys.clone(),
            values: self.values.clone(),
            store: None,
            send_old_values: self.send_old_values.clone(),
            grace_ms: self.grace_ms,
        }
    }
}

/// Lets joins read the suppressed table (Kafka's `KTableSuppressProcessorSupplier.view()`:
/// a buffered key's prior value, else the parent's) and passes requests for old values to
/// the parent.
fn register_suppressed_table<K: Data, V: Data>(
    builder: &crate::StreamsBuilder,
    node: usize,
    parent: TableEntry<K, V>,
    buffer: String,
    keys: crate::serde::SerdeRef<K>,
    values: crate::serde::SerdeRef<V>,
) {
    let parent_view = parent.view.clone();
    let view: ViewFn<K, V> = Arc::new(move |builder| {
        let upstream = parent_view(builder);
        let mut stores = vec![buffer.clone()];
        stores.extend(upstream.stores.iter().cloned());
        let (name, keys, values) = (buffer.clone(), keys.clone(), values.clone());
        ValueGetterSupplier {
            stores,
            make: Arc::new(move |ctx| {
                Ok(Box::new(SuppressGetter {
                    buffer: ctx.store(&name)?,
                    keys: keys.clone(),
                    values: values.clone(),
                    parent: (upstream.make)(ctx)?,
                }) as Box<dyn ValueGetter<K, V>>)
            }),
        }
    });
    let entry = TableEntry {
        view,
        enable_old: Arc::new(move |builder, force| parent.enable(builder, force)),
        sending: SendOldValues::default(),
    };
    register_table(builder, node, entry);
}

/// Port of Kafka's `KTableSuppressProcessorTest`, which drives the suppress processor with
/// arbitrary changes (new and old values of its choosing) and windowed keys with a grace
/// given directly (`finalResults(grace)`). No public table yields such updates, so these
/// tests build the table by hand: a node turns each input record `("key", "new,old")`
/// (`-` for null) into the update, and a capturing node records what the suppression
/// forwards. Kafka's mock record context (topic `""`) is the input topic `t` here, one byte
/// more per entry, which the byte-limit cases leave unchanged.
///
/// Not ported: `KTableSuppressProcessorMetricsTest` (suppression metrics are not exposed).
#[cfg(test)]
mod kafka_processor_tests {
    use std::sync::Mutex;

    use super::*;
    use crate::dsl::builder::StreamsBuilder;
    use crate::dsl::ktable::Change;
    use crate::error::Result;
    use crate::ops::stateless::stateless;
    use crate::record::Record;
    use crate::serde::{
        BigEndian, SerdeRef, SessionWindowedSerde, TimeWindowedSerde, Utf8, Window,
    };
    use crate::testing::TopologyTestDriver;

    const ARBITRARY_LONG: i64 = 5;
    const ARBITRARY_CHANGE: &str = "7,14";

    type Forwarded<K> = Arc<Mutex<Vec<Record<K, Change<i64>>>>>;

    fn change(s: &str) -> Change<i64> {
        let mut parts = s.split(',').map(|p| p.parse::<i64>().ok());
        Change {
            new: parts.next().flatten(),
            old: parts.next().flatten(),
        }
    }

    fn string_key(s: &str) -> String {
        s.to_string()
    }

    /// `"key@start/end"`.
    fn windowed_key(s: &str) -> Windowed<String> {
        let (key, w) = s.split_once('@').unwrap_or((s, "0/0"));
        let (start, end) = w.split_once('/').unwrap_or(("0", "0"));
        Windowed::new(
            key.to_string(),
            Window::new(start.parse().unwrap_or(0), end.parse().unwrap_or(0)),
        )
    }

    fn time_windowed(size: i64) -> SerdeRef<Windowed<String>> {
        Arc::new(TimeWindowedSerde::new(
            Arc::new(Utf8) as SerdeRef<String>,
            size,
        ))
    }

    fn session_windowed() -> SerdeRef<Windowed<String>> {
        Arc::new(SessionWindowedSerde::new(Arc::new(Utf8) as SerdeRef<String>))
    }

    struct Harness<K> {
        driver: TopologyTestDriver,
        forwarded: Forwarded<K>,
        parse_key: fn(&str) -> K,
    }

    impl<K: Data> Harness<K> {
        fn new<S: Suppression<K>>(
            suppressed: S,
            parse_key: fn(&str) -> K,
            keys: SerdeRef<K>,
            grace_ms: Option<i64>,
        ) -> Result<Harness<K>> {
            let builder = StreamsBuilder::new();
            let forwarded: Forwarded<K> = Arc::default();
            {
                let source = builder.stream::<String, String>("t");
                let f = stateless(move |ctx, r: Record<String, String>| {
                    ctx.forward(Record {
                        key: parse_key(&r.key),
                        value: change(&r.value),
                        timestamp: r.timestamp,
                        headers: r.headers,
                    })
                });
                let node = {
                    let mut g = builder.graph.borrow_mut();
                    let name = g.name_or(None, "TEST-TABLE-");
                    g.add(name, NodeKind::Processor, &[source.node], f)
                };
                let table = KTable {
                    builder: &builder,
                    node,
                    keys: Some(keys),
                    values: Some(Arc::new(BigEndian) as SerdeRef<i64>),
                    store: None,
                    send_old_values: Vec::new(),
                    grace_ms,
                };
                let suppressed = table.suppress(suppressed);
                let sink = forwarded.clone();
                let capture = stateless(move |_ctx, r: Record<K, Change<i64>>| {
                    if let Ok(mut all) = sink.lock() {
                        all.push(r);
                    }
                    Ok(())
                });
                let mut g = builder.graph.borrow_mut();
                let name = g.name_or(None, "TEST-CAPTURE-");
                g.add(name, NodeKind::Processor, &[suppressed.node], capture);
            }
            Ok(Harness {
                driver: TopologyTestDriver::new(builder.build()?)?,
                forwarded,
                parse_key,
            })
        }

        fn process(&self, key: &str, change: &str, ts: i64) -> Result<()> {
            self.driver
                .input::<String, String>("t")
                .pipe(key.to_string(), change.to_string(), ts)
        }

        fn forwarded(&self) -> Vec<Record<K, Change<i64>>> {
            self.forwarded.lock().map(|f| f.clone()).unwrap_or_default()
        }

        /// Asserts what the suppression forwarded: `(key, "new,old", timestamp)`s.
        fn assert_forwarded(&self, expected: &[(&str, &str, i64)])
        where
            K: PartialEq + std::fmt::Debug,
        {
            let expected: Vec<_> = expected
                .iter()
                .map(|(k, c, ts)| Record::new((self.parse_key)(k), change(c), *ts))
                .collect();
            assert_eq!(self.forwarded(), expected);
        }
    }

    impl Harness<String> {
        fn plain<S: Suppression<String>>(suppressed: S) -> Result<Self> {
            Harness::new(suppressed, string_key, Arc::new(Utf8), None)
        }
    }

    impl Harness<Windowed<String>> {
        fn windowed<S: Suppression<Windowed<String>>>(
            suppressed: S,
            keys: SerdeRef<Windowed<String>>,
            grace_ms: Option<i64>,
        ) -> Result<Self> {
            Harness::new(suppressed, windowed_key, keys, grace_ms)
        }
    }

    fn final_results(grace: i64) -> (Suppressed<UntilWindowCloses>, Option<i64>) {
        (
            Suppressed::until_window_closes(BufferConfig::unbounded()),
            Some(grace),
        )
    }

    #[test]
    fn zero_time_limit_should_immediately_emit() -> Result<()> {
        let h = Harness::plain(Suppressed::until_time_limit(
            Duration::ZERO,
            BufferConfig::unbounded(),
        ))?;
        h.process("hey", ARBITRARY_CHANGE, ARBITRARY_LONG)?;
        h.assert_forwarded(&[("hey", ARBITRARY_CHANGE, ARBITRARY_LONG)]);
        Ok(())
    }

    #[test]
    fn windowed_zero_time_limit_should_immediately_emit() -> Result<()> {
        let h = Harness::windowed(
            Suppressed::until_time_limit(Duration::ZERO, BufferConfig::unbounded()),
            time_windowed(100),
            None,
        )?;
        h.process("hey@0/100", ARBITRARY_CHANGE, ARBITRARY_LONG)?;
        h.assert_forwarded(&[("hey@0/100", ARBITRARY_CHANGE, ARBITRARY_LONG)]);
        Ok(())
    }

    #[test]
    fn intermediate_suppression_should_buffer_and_emit_later() -> Result<()> {
        let h = Harness::plain(Suppressed::until_time_limit(
            Duration::from_millis(1),
            BufferConfig::unbounded(),
        ))?;
        h.process("hey", "-,1", 0)?;
        h.assert_forwarded(&[]);
        h.process("tick", "-,-", 1)?;
        h.assert_forwarded(&[("hey", "-,1", 0)]);
        Ok(())
    }

    #[test]
    fn final_results_suppression_should_buffer_and_emit_at_grace_expiration() -> Result<()> {
        let (s, grace) = final_results(1);
        let h = Harness::windowed(s, time_windowed(1), grace)?;
        h.process("hey@99/100", ARBITRARY_CHANGE, 99)?;
        h.assert_forwarded(&[]);
        // Stream time 100 would close the window were it not for the grace of 1.
        h.process("dummyKey1@100/101", ARBITRARY_CHANGE, 100)?;
        h.assert_forwarded(&[]);
        // Stream time 101: past the grace.
        h.process("dummyKey2@101/102", ARBITRARY_CHANGE, 101)?;
        h.assert_forwarded(&[("hey@99/100", ARBITRARY_CHANGE, 99)]);
        Ok(())
    }

    #[test]
    fn final_results_with_zero_grace_should_still_buffer_until_the_window_end() -> Result<()> {
        let (s, grace) = final_results(0);
        let h = Harness::windowed(s, time_windowed(100), grace)?;
        h.process("hey@0/100", ARBITRARY_CHANGE, 5)?;
        h.assert_forwarded(&[]);
        h.process("dummyKey@100/200", ARBITRARY_CHANGE, 100)?;
        h.assert_forwarded(&[("hey@0/100", ARBITRARY_CHANGE, 5)]);
        Ok(())
    }

    #[test]
    fn final_results_with_zero_grace_at_window_end_should_immediately_emit() -> Result<()> {
        let (s, grace) = final_results(0);
        let h = Harness::windowed(s, time_windowed(100), grace)?;
        h.process("hey@0/100", ARBITRARY_CHANGE, 100)?;
        h.assert_forwarded(&[("hey@0/100", ARBITRARY_CHANGE, 100)]);
        Ok(())
    }

    /// Tombstones are safe to drop from final results: a window's deletion reaches downstream
    /// only if its value did, and it never did.
    #[test]
    fn final_results_should_drop_tombstones_for_time_windows() -> Result<()> {
        let (s, grace) = final_results(0);
        let h = Harness::windowed(s, time_windowed(100), grace)?;
        h.process("hey@0/100", "-,5", 100)?;
        h.assert_forwarded(&[]);
        Ok(())
    }

    #[test]
    fn final_results_should_drop_tombstones_for_session_windows() -> Result<()> {
        let (s, grace) = final_results(0);
        let h = Harness::windowed(s, session_windowed(), grace)?;
        h.process("hey@0/0", "-,5", 100)?;
        h.assert_forwarded(&[]);
        Ok(())
    }

    /// Tombstones must not be dropped by an intermediate suppression: the value they delete
    /// may have been emitted.
    #[test]
    fn suppress_should_not_drop_tombstones_for_time_windows() -> Result<()> {
        let h = Harness::windowed(
            Suppressed::until_time_limit(Duration::ZERO, BufferConfig::max_records(0)),
            time_windowed(100),
            None,
        )?;
        let record =
            Record::new("hey@0/100".to_string(), "-,5".to_string(), 100).with_header("k", "v");
        h.driver
            .input::<String, String>("t")
            .pipe_record(record, None)?;
        assert_eq!(
            h.forwarded(),
            vec![Record::new(windowed_key("hey@0/100"), change("-,5"), 100).with_header("k", "v")]
        );
        Ok(())
    }

    #[test]
    fn suppress_should_not_drop_tombstones_for_session_windows() -> Result<()> {
        let h = Harness::windowed(
            Suppressed::until_time_limit(Duration::ZERO, BufferConfig::max_records(0)),
            session_windowed(),
            None,
        )?;
        h.process("hey@0/0", "-,5", 100)?;
        h.assert_forwarded(&[("hey@0/0", "-,5", 100)]);
        Ok(())
    }

    #[test]
    fn suppress_should_not_drop_tombstones_for_ktable() -> Result<()> {
        let h = Harness::plain(Suppressed::until_time_limit(
            Duration::ZERO,
            BufferConfig::max_records(0),
        ))?;
        h.process("hey", "-,5", 100)?;
        h.assert_forwarded(&[("hey", "-,5", 100)]);
        Ok(())
    }

    fn hundred_days() -> Duration {
        Duration::from_secs(100 * 24 * 3600)
    }

    #[test]
    fn suppress_should_emit_when_over_record_capacity() -> Result<()> {
        let h = Harness::plain(Suppressed::until_time_limit(
            hundred_days(),
            BufferConfig::max_records(1),
        ))?;
        h.process("hey", "-,5", 100)?;
        h.process("dummyKey", "-,5", 101)?;
        h.assert_forwarded(&[("hey", "-,5", 100)]);
        Ok(())
    }

    #[test]
    fn suppress_should_emit_when_over_byte_capacity() -> Result<()> {
        // Kafka's estimate: 8 + key + prior (the old value, counted once) + new + 8 + 8 +
        // topic + 4: 40 bytes for "hey", 45 for "dummyKey": both exceed 60.
        let h = Harness::plain(Suppressed::until_time_limit(
            hundred_days(),
            BufferConfig::max_bytes(60),
        ))?;
        h.process("hey", "-,5", 100)?;
        h.assert_forwarded(&[]);
        h.process("dummyKey", "-,5", 101)?;
        h.assert_forwarded(&[("hey", "-,5", 100)]);
        Ok(())
    }

    #[test]
    fn suppress_should_shut_down_when_over_record_capacity() -> Result<()> {
        let h = Harness::plain(Suppressed::until_time_limit(
            hundred_days(),
            BufferConfig::max_records(1).shut_down_when_full(),
        ))?;
        h.process("hey", "-,5", 100)?;
        let err = h
            .process("dummyKey", "-,5", 100)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("buffer exceeded its max capacity")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn suppress_should_shut_down_when_over_byte_capacity() -> Result<()> {
        let h = Harness::plain(Suppressed::until_time_limit(
            hundred_days(),
            BufferConfig::max_bytes(60).shut_down_when_full(),
        ))?;
        h.process("hey", "-,5", 100)?;
        let err = h
            .process("dummyKey", "-,5", 100)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "processing failed in KTABLE-SUPPRESS-0000000002: KTABLE-SUPPRESS-0000000002 buffer exceeded its max capacity. Currently [2/18446744073709551615] records and [85/60] bytes."
            )
        );
        Ok(())
    }
}
