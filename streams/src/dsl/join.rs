//! Stream–stream windowed joins: [`KStream::join`], [`KStream::left_join`],
//! [`KStream::outer_join`] and their options, [`StreamJoined`] (Kafka's `KStreamImplJoin`).
//!
//! Two streams join records with equal keys whose timestamps are close enough
//! ([`JoinWindows`]); a result's timestamp is the larger of the pair's. Left and outer joins
//! also emit records that found no partner — joined with `None` — once their window has
//! closed (Kafka ≥ 3.1: no spurious early results). Both inputs must be co-partitioned: a
//! side whose key changed upstream is repartitioned first, and the two sides' topics form a
//! co-partition group the runtime checks.
//!
//! # Names
//! As Kafka: `KSTREAM-WINDOWED-<n>` (this side), `KSTREAM-WINDOWED-<n+1>` (other side),
//! `KSTREAM-JOINTHIS-<n+2>` (`KSTREAM-OUTERTHIS-` for outer joins), `KSTREAM-JOINOTHER-<n+3>`
//! (`KSTREAM-OUTEROTHER-` for left and outer joins) and `KSTREAM-MERGE-<n+4>`; with
//! [`StreamJoined::with_name`] `x`: `x-this-windowed`, `x-other-windowed`, `x-this-join` (or
//! `x-outer-this-join`), `x-other-join` (or `x-outer-other-join`), `x-merge`. The window
//! stores are `<JOINTHIS name>-store` and `<JOINOTHER name>-store` (generated names even when
//! the processors are named), or `s-this-join-store` / `s-other-join-store` (with `outer`
//! infixes as above) for [`StreamJoined::with_store_name`] `s`; left and outer joins add the
//! shared store of waiting non-joined records, `KSTREAM-OUTERSHARED-<n+2>-store` or
//! `s-left-shared-join-store` / `s-outer-shared-join-store`. Repartition topics are
//! `<x>-left-repartition` / `<x>-right-repartition`, or `<node>-repartition` after the
//! side's own node name.
//!
//! # Examples
//!
//! ```
//! use freshet_streams::{JoinWindows, StreamsBuilder, testing::TopologyTestDriver};
//! use std::time::Duration;
//!
//! let builder = StreamsBuilder::new();
//! let clicks = builder.stream::<String, String>("clicks");
//! let views = builder.stream::<String, String>("views");
//! let windows = JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(10))?;
//! clicks
//!     .join(&views, |click, view| format!("{click} after {view}"), windows)
//!     .to("clicked-views");
//! let driver = TopologyTestDriver::new(builder.build()?)?;
//! driver.input::<String, String>("views").pipe("ann".into(), "/home".into(), 1_000)?;
//! driver.input::<String, String>("clicks").pipe("ann".into(), "buy".into(), 4_000)?;
//! let out = driver.output::<String, String>("clicked-views").read_records()?;
//! assert_eq!((out[0].value.as_str(), out[0].timestamp), ("buy after /home", 4_000));
//! # Ok::<(), freshet_streams::Error>(())
//! ```

use std::marker::PhantomData;
use std::sync::Arc;

use freshet_state_store::WindowStoreOptions;

use crate::dsl::graph::Graph;
use crate::dsl::kstream::KStream;
use crate::dsl::table::copartition;
use crate::ops::stateless::stateless;
use crate::ops::stream_join::{
    FullJoiner, JoinWindowNode, LeftSide, RightSide, StreamJoinNode, Trackers,
};
use crate::record::Record;
use crate::serde::{Serde, SerdeRef};
use crate::store::{StoreBuilder, StoreKind};
use crate::task::node::Data;
use crate::topology::{NodeFactory, NodeKind};
use crate::window::JoinWindows;

/// Options of a stream–stream join (Kafka's `StreamJoined`): the serdes of the key and of
/// both sides' values (for the window stores and repartition topics), the name the join's
/// processors and repartition topics are derived from, the base name of its stores, whether
/// the stores are changelogged, and optionally the window stores themselves.
///
/// Serdes not given are carried from the joined streams, else the registered defaults.
///
/// # Examples
///
/// ```
/// use freshet_streams::{BigEndian, JoinWindows, StreamJoined, StreamsBuilder, Utf8};
/// use std::time::Duration;
///
/// let builder = StreamsBuilder::new();
/// let left = builder.stream::<String, i64>("left");
/// let right = builder.stream::<String, i64>("right");
/// let joined = StreamJoined::with(Utf8, BigEndian, BigEndian)
///     .with_name("sum")
///     .with_store_name("sums");
/// let windows = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
/// left.join_with(&right, |a, b| a + b, windows, joined).to("out");
/// let topology = builder.build()?;
/// let stores: Vec<&str> = topology.stores().map(|s| s.name()).collect();
/// assert!(stores.contains(&"sums-this-join-store") && stores.contains(&"sums-other-join-store"));
/// # Ok::<(), freshet_streams::Error>(())
/// ```
pub struct StreamJoined<K, V1, V2> {
    pub(crate) keys: Option<SerdeRef<K>>,
    pub(crate) values: Option<SerdeRef<V1>>,
    pub(crate) other_values: Option<SerdeRef<V2>>,
    pub(crate) name: Option<String>,
    pub(crate) store_name: Option<String>,
    pub(crate) logging: bool,
    pub(crate) this_store: Option<StoreBuilder>,
    pub(crate) other_store: Option<StoreBuilder>,
}

impl<K, V1, V2> std::fmt::Debug for StreamJoined<K, V1, V2> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamJoined")
            .field("name", &self.name)
            .field("store_name", &self.store_name)
            .field("logging", &self.logging)
            .field("this_store", &self.this_store)
            .field("other_store", &self.other_store)
            .finish()
    }
}

impl<K, V1, V2> Default for StreamJoined<K, V1, V2> {
    fn default() -> Self {
        StreamJoined {
            keys: None,
            values: None,
            other_values: None,
            name: None,
            store_name: None,
            logging: true,
            this_store: None,
            other_store: None,
        }
    }
}

impl<K: 'static, V1: 'static, V2: 'static> StreamJoined<K, V1, V2> {
    /// No options: generated names, carried or default serdes, logged stores.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// a.join_with(&b, |x, y| format!("{x}{y}"), w, StreamJoined::new()).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// driver.input::<String, String>("b").pipe("k".into(), "2".into(), 5)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["12"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The serdes of the key, this side's values and the other side's values.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, JoinWindows, StreamJoined, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, i64>("a");
    /// let b = builder.stream::<String, i64>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// let joined = StreamJoined::with(Utf8, BigEndian, BigEndian);
    /// a.join_with(&b, |x, y| x * y, w, joined).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("a").pipe("k".into(), 6, 0)?;
    /// driver.input::<String, i64>("b").pipe("k".into(), 7, 0)?;
    /// assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![42]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with(
        keys: impl Serde<K> + 'static,
        values: impl Serde<V1> + 'static,
        other_values: impl Serde<V2> + 'static,
    ) -> Self {
        StreamJoined {
            keys: Some(Arc::new(keys)),
            values: Some(Arc::new(values)),
            other_values: Some(Arc::new(other_values)),
            ..Default::default()
        }
    }

    /// Sets the key serde.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// a.join_with(&b, |x, y| format!("{x}{y}"), w, StreamJoined::new().with_key_serde(Utf8)).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// driver.input::<String, String>("b").pipe("k".into(), "2".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["12"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_key_serde(mut self, keys: impl Serde<K> + 'static) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Sets the serde of this side's values.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// a.join_with(&b, |x, y| format!("{x}{y}"), w, StreamJoined::new().with_value_serde(Utf8)).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("b").pipe("k".into(), "2".into(), 0)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["12"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_value_serde(mut self, values: impl Serde<V1> + 'static) -> Self {
        self.values = Some(Arc::new(values));
        self
    }

    /// Sets the serde of the other side's values.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, i64>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// let joined = StreamJoined::new().with_other_value_serde(BigEndian);
    /// a.join_with(&b, |x, y| format!("{x}{y}"), w, joined).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("b").pipe("k".into(), 2, 0)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["12"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_other_value_serde(mut self, other_values: impl Serde<V2> + 'static) -> Self {
        self.other_values = Some(Arc::new(other_values));
        self
    }

    /// Names the join: its processors become `name-this-windowed`, `name-this-join`, …,
    /// `name-merge`, and its repartition topics `name-left-repartition` /
    /// `name-right-repartition` (the stores keep generated names unless
    /// [`with_store_name`](Self::with_store_name) is set, as in Kafka).
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// let out = a.join_with(&b, |x, y| format!("{x}{y}"), w, StreamJoined::new().with_name("pairs"));
    /// assert_eq!(out.node_name(), "pairs-merge");
    /// out.to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// driver.input::<String, String>("b").pipe("k".into(), "2".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["12"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The base name of the join's stores: `store_name-this-join-store`,
    /// `store_name-other-join-store` (with `outer-` infixes for outer sides) and, for left and
    /// outer joins, `store_name-left-shared-join-store` / `-outer-shared-join-store`. Their
    /// changelogs are named after them.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// let joined = StreamJoined::new().with_store_name("views");
    /// a.left_join_with(&b, |x, y| format!("{x}{y:?}"), w, joined).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// let waiting = driver.window_store::<String, String>("views-this-join-store")?.all()?;
    /// assert_eq!(waiting.len(), 1);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_store_name(mut self, store_name: impl Into<String>) -> Self {
        self.store_name = Some(store_name.into());
        self
    }

    /// Keeps the join's stores without changelogs (they are lost with the local state).
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// let joined = StreamJoined::new().with_store_name("s").with_logging_disabled();
    /// a.join_with(&b, |x, y| format!("{x}{y}"), w, joined).to("out");
    /// let topology = builder.build()?;
    /// assert!(topology.stores().all(|s| !s.logging_enabled()));
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// Changelogs the join's stores (the default).
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// let joined = StreamJoined::new().with_logging_disabled().with_logging_enabled();
    /// a.outer_join_with(&b, |x, y| format!("{x:?}{y:?}"), w, joined).to("out");
    /// let topology = builder.build()?;
    /// assert_eq!(topology.stores().filter(|s| s.logging_enabled()).count(), 3);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_logging_enabled(mut self) -> Self {
        self.logging = true;
        self
    }

    /// Uses `store` (a window store from [`Stores::window`](crate::Stores::window)) as this
    /// side's window store (Kafka's `withThisStoreSupplier`). It must retain duplicates, keep
    /// windows of the join's size (`before + after`) and retain them for `size + grace`;
    /// otherwise `build()` fails. Its serdes are replaced by the join's; its logging setting
    /// is kept. The shared store of a left or outer join is then named after it.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, Stores, Utf8, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// let store = Stores::window::<String, String>("a-window", 200, 200, true, Utf8, Utf8);
    /// a.join_with(&b, |x, y| format!("{x}{y}"), w, StreamJoined::new().with_this_store(store)).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("a").pipe("k".into(), "1".into(), 0)?;
    /// assert_eq!(driver.window_store::<String, String>("a-window")?.all()?.len(), 1);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_this_store(mut self, store: StoreBuilder) -> Self {
        self.this_store = Some(store);
        self
    }

    /// Uses `store` as the other side's window store (Kafka's `withOtherStoreSupplier`); the
    /// same rules as [`with_this_store`](Self::with_this_store).
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, Stores, Utf8, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let a = builder.stream::<String, String>("a");
    /// let b = builder.stream::<String, String>("b");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// let store = Stores::window::<String, String>("b-window", 200, 200, true, Utf8, Utf8);
    /// a.join_with(&b, |x, y| format!("{x}{y}"), w, StreamJoined::new().with_other_store(store)).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("b").pipe("k".into(), "2".into(), 0)?;
    /// assert_eq!(driver.window_store::<String, String>("b-window")?.all()?.len(), 1);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_other_store(mut self, store: StoreBuilder) -> Self {
        self.other_store = Some(store);
        self
    }
}

/// Which sides of a join emit records that found no partner.
#[derive(Debug, Clone, Copy)]
struct Outer {
    /// The left side (left and outer joins).
    left: bool,
    /// The right side (outer joins).
    right: bool,
}

impl Outer {
    const INNER: Outer = Outer {
        left: false,
        right: false,
    };
    const LEFT: Outer = Outer {
        left: true,
        right: false,
    };
    const OUTER: Outer = Outer {
        left: true,
        right: true,
    };
}

/// Names of one join's processors and stores, taken from the counter in Kafka's order.
struct JoinNames {
    this_windowed: (String, Option<usize>),
    other_windowed: (String, Option<usize>),
    join_this: (String, Option<usize>),
    join_other: (String, Option<usize>),
    merge: (String, Option<usize>),
    this_store: String,
    other_store: String,
    shared_store: Option<String>,
}

fn join_names<K, V1, V2>(
    g: &mut Graph,
    joined: &StreamJoined<K, V1, V2>,
    outer: Outer,
) -> JoinNames {
    let this_suffix = if outer.right {
        "-outer-this-join"
    } else {
        "-this-join"
    };
    let other_suffix = if outer.left {
        "-outer-other-join"
    } else {
        "-other-join"
    };
    let named = |suffix: &str| joined.name.as_ref().map(|n| format!("{n}{suffix}"));
    let this_windowed = g.name_or(named("-this-windowed"), "KSTREAM-WINDOWED-");
    let other_windowed = g.name_or(named("-other-windowed"), "KSTREAM-WINDOWED-");
    let this_prefix = if outer.right {
        "KSTREAM-OUTERTHIS-"
    } else {
        "KSTREAM-JOINTHIS-"
    };
    let other_prefix = if outer.left {
        "KSTREAM-OUTEROTHER-"
    } else {
        "KSTREAM-JOINOTHER-"
    };
    let (this_generated, this_index) = g.new_name(this_prefix);
    let (other_generated, other_index) = g.new_name(other_prefix);
    let join_this = match named(this_suffix) {
        Some(n) => (n, None),
        None => (this_generated.clone(), Some(this_index)),
    };
    let join_other = match named(other_suffix) {
        Some(n) => (n, None),
        None => (other_generated.clone(), Some(other_index)),
    };
    let merge = g.name_or(named("-merge"), "KSTREAM-MERGE-");

    let generated_store = |name: String, g: &mut Graph| {
        g.generated_names.push(format!("store {name}"));
        name
    };
    let this_store = match (&joined.this_store, &joined.store_name) {
        (Some(s), _) => s.name.clone(),
        (None, Some(base)) => format!("{base}{this_suffix}-store"),
        (None, None) => generated_store(format!("{this_generated}-store"), g),
    };
    let other_store = match (&joined.other_store, &joined.store_name) {
        (Some(s), _) => s.name.clone(),
        (None, Some(base)) => format!("{base}{other_suffix}-store"),
        (None, None) => generated_store(format!("{other_generated}-store"), g),
    };
    let shared_store = outer.left.then(|| {
        let suffix = if outer.right {
            "-outer-shared-join"
        } else {
            "-left-shared-join"
        };
        match (&joined.this_store, &joined.store_name) {
            (Some(s), _) if !s.name.is_empty() => format!("{}{suffix}-store", s.name),
            (_, Some(base)) => format!("{base}{suffix}-store"),
            _ => generated_store(
                format!(
                    "KSTREAM-OUTERSHARED-{}-store",
                    &this_generated[this_prefix.len()..]
                ),
                g,
            ),
        }
    });
    JoinNames {
        this_windowed,
        other_windowed,
        join_this,
        join_other,
        merge,
        this_store,
        other_store,
        shared_store,
    }
}

/// The window store of one side: the user's (checked against the windows, Kafka's
/// `assertWindowSettings`), or one with the join's size and retention.
fn side_store<K: 'static, V: 'static>(
    g: &mut Graph,
    name: &str,
    given: Option<&StoreBuilder>,
    windows: &JoinWindows,
    logging: bool,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
) -> StoreBuilder {
    let size = windows.size();
    let retention = size.saturating_add(windows.grace());
    match given {
        Some(store) => {
            match &store.kind {
                StoreKind::Window(o) if !o.retain_duplicates => g.errors.push(
                    "The StoreSupplier must set retainDuplicates=true, found retainDuplicates=false"
                        .to_string(),
                ),
                StoreKind::Window(o) if o.retention_ms != retention || o.window_size_ms != size => {
                    g.errors.push(format!(
                        "Window settings mismatch. WindowBytesStoreSupplier settings {} (retention {} ms, window size {} ms) must match JoinWindows settings {windows:?} for the window size and retention period (retention {retention} ms, window size {size} ms)",
                        store.name, o.retention_ms, o.window_size_ms
                    ))
                }
                StoreKind::Window(_) => {}
                other => g.errors.push(format!(
                    "store {} given for a stream-stream join is not a window store ({other:?})",
                    store.name
                )),
            }
            store.clone().with_serdes(keys, values)
        }
        None => {
            let options = WindowStoreOptions::new(retention, size).with_retain_duplicates(true);
            let mut store =
                StoreBuilder::new(name, StoreKind::Window(options)).with_serdes(keys, values);
            store.logging = logging;
            store
        }
    }
}

impl<'b, K: Data, V: Data> KStream<'b, K, V> {
    /// Joins records of this stream and `other` with equal keys whose timestamps are at most
    /// the window apart (Kafka's `join(KStream, ValueJoiner, JoinWindows)`): one result per
    /// pair, at the larger timestamp. Records with a null key or value are dropped.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// left.join(&right, |l, r| format!("{l}+{r}"), w).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("left").pipe(1, "A".into(), 0)?;
    /// driver.input::<i32, String>("right").pipe(1, "a".into(), 100)?; // in the window
    /// driver.input::<i32, String>("right").pipe(1, "b".into(), 101)?; // too late for A
    /// let out = driver.output::<i32, String>("out").read_records()?;
    /// assert_eq!(out.iter().map(|r| (r.value.as_str(), r.timestamp)).collect::<Vec<_>>(), vec![("A+a", 100)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<'b, K, VR> {
        self.join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`join`](Self::join) with serdes, names and stores from `joined`.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// left.join_with(&right, |l, r| format!("{l}+{r}"), w, StreamJoined::new().with_name("j")).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("right").pipe(1, "a".into(), 50)?;
    /// driver.input::<i32, String>("left").pipe(1, "A".into(), 0)?;
    /// assert_eq!(driver.output::<i32, String>("out").read_values()?, vec!["A+a"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_with<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<'b, K, VR> {
        self.join_with_key(other, move |_, l, r| joiner(l, r), windows, joined)
    }

    /// [`join_with`](Self::join_with) with a joiner that also reads the key (Kafka's
    /// `ValueJoinerWithKey`).
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// left.join_with_key(&right, |k, l, r| format!("{k}:{l}+{r}"), w, StreamJoined::new()).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("left").pipe(7, "A".into(), 0)?;
    /// driver.input::<i32, String>("right").pipe(7, "a".into(), 0)?;
    /// assert_eq!(driver.output::<i32, String>("out").read_values()?, vec!["7:A+a"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn join_with_key<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(&K, &V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<'b, K, VR> {
        let full: FullJoiner<K, V, V2, VR> = Arc::new(move |k, l, r| match (l, r) {
            (Some(l), Some(r)) => Some(joiner(k, l, r)),
            _ => None,
        });
        self.stream_join(other, full, windows, joined, Outer::INNER)
    }

    /// Like [`join`](Self::join), and every record of this stream that finds no partner is
    /// emitted joined with `None` once its window has closed (`ts + after + grace` behind the
    /// join's stream time), at its own timestamp (Kafka's `leftJoin`). A record with a null
    /// key and a value is emitted at once, joined with `None`.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// left.left_join(&right, |l, r| format!("{l}+{}", r.map_or("null", String::as_str)), w).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("left").pipe(1, "A".into(), 0)?;
    /// driver.input::<i32, String>("left").pipe(2, "B".into(), 50)?;
    /// driver.input::<i32, String>("right").pipe(2, "b".into(), 60)?;
    /// driver.input::<i32, String>("right").pipe(3, "c".into(), 101)?; // closes A's window
    /// let out = driver.output::<i32, String>("out").read_records()?;
    /// let out: Vec<_> = out.iter().map(|r| (r.value.as_str(), r.timestamp)).collect();
    /// assert_eq!(out, vec![("B+b", 60), ("A+null", 0)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<'b, K, VR> {
        self.left_join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`left_join`](Self::left_join) with serdes, names and stores from `joined`.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_and_grace(Duration::from_millis(100), Duration::from_millis(50))?;
    /// let joined = StreamJoined::new().with_store_name("orders");
    /// left.left_join_with(&right, |l, r| format!("{l}+{r:?}"), w, joined).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("left").pipe(1, "A".into(), 0)?;
    /// driver.input::<i32, String>("right").pipe(9, "x".into(), 150)?; // A still open: 0+100+50
    /// assert!(driver.output::<i32, String>("out").is_empty());
    /// driver.input::<i32, String>("right").pipe(9, "y".into(), 151)?;
    /// assert_eq!(driver.output::<i32, String>("out").read_values()?, vec!["A+None"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_with<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<'b, K, VR> {
        self.left_join_with_key(other, move |_, l, r| joiner(l, r), windows, joined)
    }

    /// [`left_join_with`](Self::left_join_with) with a joiner that also reads the key.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// left.left_join_with_key(&right, |k, l, r| format!("{k}:{l}+{r:?}"), w, StreamJoined::new()).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("left").pipe(4, "A".into(), 0)?;
    /// driver.input::<i32, String>("left").pipe(5, "B".into(), 11)?;
    /// assert_eq!(driver.output::<i32, String>("out").read_values()?, vec!["4:A+None"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn left_join_with_key<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(&K, &V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<'b, K, VR> {
        let full: FullJoiner<K, V, V2, VR> = Arc::new(move |k, l, r| l.map(|l| joiner(k, l, r)));
        self.stream_join(other, full, windows, joined, Outer::LEFT)
    }

    /// Like [`left_join`](Self::left_join) for both sides: records of either stream that
    /// find no partner are emitted joined with `None` once their window has closed — a
    /// right record at `t` when `t + before + grace` is behind the join's stream time
    /// (Kafka's `outerJoin`).
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "null".into());
    /// left.outer_join(&right, move |l, r| format!("{}+{}", show(l), show(r)), w).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("left").pipe(1, "A".into(), 0)?;
    /// driver.input::<i32, String>("right").pipe(2, "b".into(), 0)?;
    /// driver.input::<i32, String>("right").pipe(3, "c".into(), 101)?;
    /// let out = driver.output::<i32, String>("out").read_key_values()?;
    /// assert_eq!(out, vec![(2, "null+b".to_string()), (1, "A+null".to_string())]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn outer_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<'b, K, VR> {
        self.outer_join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`outer_join`](Self::outer_join) with serdes, names and stores from `joined`.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, JoinWindows, StreamJoined, StreamsBuilder, Utf8, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, i64>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))?;
    /// let joined = StreamJoined::with(BigEndian, Utf8, BigEndian).with_name("both");
    /// left.outer_join_with(&right, |l, r| format!("{l:?}+{r:?}"), w, joined).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, i64>("right").pipe(1, 10, 0)?;
    /// driver.input::<i32, String>("left").pipe(1, "A".into(), 5)?;
    /// assert_eq!(driver.output::<i32, String>("out").read_values()?, vec!["Some(\"A\")+Some(10)"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn outer_join_with<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<'b, K, VR> {
        self.outer_join_with_key(other, move |_, l, r| joiner(l, r), windows, joined)
    }

    /// [`outer_join_with`](Self::outer_join_with) with a joiner that also reads the key.
    ///
    /// ```
    /// # use freshet_streams::{JoinWindows, StreamJoined, StreamsBuilder, testing::TopologyTestDriver};
    /// # use std::time::Duration;
    /// let builder = StreamsBuilder::new();
    /// let left = builder.stream::<i32, String>("left");
    /// let right = builder.stream::<i32, String>("right");
    /// let w = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10))?;
    /// left.outer_join_with_key(&right, |k, l, r| format!("{k}:{l:?}+{r:?}"), w, StreamJoined::new()).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<i32, String>("right").pipe(4, "b".into(), 0)?;
    /// driver.input::<i32, String>("left").pipe(5, "A".into(), 11)?;
    /// assert_eq!(driver.output::<i32, String>("out").read_values()?, vec!["4:None+Some(\"b\")"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn outer_join_with_key<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: impl Fn(&K, Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<'b, K, VR> {
        let full: FullJoiner<K, V, V2, VR> = Arc::new(move |k, l, r| Some(joiner(k, l, r)));
        self.stream_join(other, full, windows, joined, Outer::OUTER)
    }

    /// Kafka's `KStreamImpl.doJoin` + `KStreamImplJoin.join`: repartitions the sides that
    /// need it, records the co-partition group, then adds the five nodes and their stores.
    fn stream_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<'b, K, V2>,
        joiner: FullJoiner<K, V, V2, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
        outer: Outer,
    ) -> KStream<'b, K, VR> {
        let builder = self.builder;
        let side = |suffix: &str| joined.name.as_ref().map(|n| format!("{n}-{suffix}"));
        let (keys, values) = (joined.keys.clone(), joined.values.clone());
        let this = self.repartition_for_join(side("left"), keys, values);
        let (keys, values) = (joined.keys.clone(), joined.other_values.clone());
        let that = other.repartition_for_join(side("right"), keys, values);
        copartition(builder, this.node, that.node);

        let names = join_names(&mut builder.graph.borrow_mut(), &joined, outer);
        let what = format!("stream-stream join {}", names.merge.0);
        let keys = builder.serde_for(joined.keys.clone().or_else(|| this.keys.clone()), &what);
        let left_values =
            builder.serde_for(joined.values.clone().or_else(|| this.values.clone()), &what);
        let right_values = builder.serde_for(
            joined.other_values.clone().or_else(|| that.values.clone()),
            &what,
        );

        let mut g = builder.graph.borrow_mut();
        if let (Some(a), Some(b)) = (&joined.this_store, &joined.other_store) {
            if a.name == b.name {
                g.errors.push(
                    "Both StoreSuppliers have the same name.  StoreSuppliers must provide unique names"
                        .to_string(),
                );
            }
        }
        let this_store = side_store(
            &mut g,
            &names.this_store,
            joined.this_store.as_ref(),
            &windows,
            joined.logging,
            keys.clone(),
            left_values.clone(),
        );
        let other_store = side_store(
            &mut g,
            &names.other_store,
            joined.other_store.as_ref(),
            &windows,
            joined.logging,
            keys.clone(),
            right_values.clone(),
        );
        let shared_store = names.shared_store.as_ref().map(|name| {
            let mut store = StoreBuilder::new(name.clone(), StoreKind::KeyValue);
            store.logging = joined.logging;
            store
        });

        let this_windowed = g.add(
            names.this_windowed,
            NodeKind::Processor,
            &[this.node],
            window_factory(names.this_store.clone(), keys.clone(), left_values.clone()),
        );
        g.add_store(this_store, Some(this_windowed));
        let other_windowed = g.add(
            names.other_windowed,
            NodeKind::Processor,
            &[that.node],
            window_factory(
                names.other_store.clone(),
                keys.clone(),
                right_values.clone(),
            ),
        );
        g.add_store(other_store, Some(other_windowed));

        let trackers = Trackers::default();
        let spec = JoinSpec {
            windows,
            keys: keys.clone(),
            left_values: left_values.clone(),
            right_values: right_values.clone(),
            joiner,
            trackers,
            shared_store: names.shared_store.clone(),
        };
        let join_this = g.add(
            names.join_this,
            NodeKind::Processor,
            &[this_windowed],
            spec.factory::<LeftSide>(names.other_store.clone(), outer.left),
        );
        g.connect(join_this, &names.other_store);
        let join_other = g.add(
            names.join_other,
            NodeKind::Processor,
            &[other_windowed],
            spec.factory::<RightSide>(names.this_store.clone(), outer.right),
        );
        g.connect(join_other, &names.this_store);
        if let Some(store) = shared_store {
            g.add_store(store.clone(), Some(join_this));
            g.add_store(store, Some(join_other));
        }
        let merge = g.add(
            names.merge,
            NodeKind::Processor,
            &[join_this, join_other],
            stateless(|ctx, r: Record<K, VR>| ctx.forward(r)),
        );
        drop(g);
        KStream::new(builder, merge, Some(keys), None, false)
    }
}

fn window_factory<K: Data, V: Data>(
    store_name: String,
    keys: SerdeRef<K>,
    values: SerdeRef<V>,
) -> NodeFactory {
    Arc::new(move || {
        Box::new(JoinWindowNode {
            store_name: store_name.clone(),
            keys: keys.clone(),
            values: values.clone(),
            store: None,
        })
    })
}

/// What both join nodes of a join share.
struct JoinSpec<K, V1, V2, VR> {
    windows: JoinWindows,
    keys: SerdeRef<K>,
    left_values: SerdeRef<V1>,
    right_values: SerdeRef<V2>,
    joiner: FullJoiner<K, V1, V2, VR>,
    trackers: Trackers,
    shared_store: Option<String>,
}

/// Picks a side's serdes out of the pair, typed.
trait SideSerdes<V1, V2>: crate::ops::stream_join::Side<V1, V2> {
    fn this(left: &SerdeRef<V1>, right: &SerdeRef<V2>) -> SerdeRef<Self::This>;
    fn other(left: &SerdeRef<V1>, right: &SerdeRef<V2>) -> SerdeRef<Self::Other>;
    /// `(before, after)` of this side's probe window.
    fn probe(windows: &JoinWindows) -> (i64, i64);
}

impl<V1: Data, V2: Data> SideSerdes<V1, V2> for LeftSide {
    fn this(left: &SerdeRef<V1>, _: &SerdeRef<V2>) -> SerdeRef<V1> {
        left.clone()
    }
    fn other(_: &SerdeRef<V1>, right: &SerdeRef<V2>) -> SerdeRef<V2> {
        right.clone()
    }
    fn probe(windows: &JoinWindows) -> (i64, i64) {
        (windows.before_ms(), windows.after_ms())
    }
}

impl<V1: Data, V2: Data> SideSerdes<V1, V2> for RightSide {
    fn this(_: &SerdeRef<V1>, right: &SerdeRef<V2>) -> SerdeRef<V2> {
        right.clone()
    }
    fn other(left: &SerdeRef<V1>, _: &SerdeRef<V2>) -> SerdeRef<V1> {
        left.clone()
    }
    fn probe(windows: &JoinWindows) -> (i64, i64) {
        (windows.after_ms(), windows.before_ms())
    }
}

impl<K: Data, V1: Data, V2: Data, VR: Data> JoinSpec<K, V1, V2, VR> {
    fn factory<S: SideSerdes<V1, V2>>(&self, other_store: String, outer: bool) -> NodeFactory {
        let (join_before_ms, join_after_ms) = S::probe(&self.windows);
        let windows = self.windows;
        let keys = self.keys.clone();
        let left_values = self.left_values.clone();
        let right_values = self.right_values.clone();
        let joiner = self.joiner.clone();
        let trackers = self.trackers.clone();
        let shared_store = self.shared_store.clone();
        Arc::new(move || {
            Box::new(StreamJoinNode::<S, K, V1, V2, VR> {
                outer,
                other_store_name: other_store.clone(),
                shared_store_name: shared_store.clone(),
                join_before_ms,
                join_after_ms,
                windows_before_ms: windows.before_ms(),
                windows_after_ms: windows.after_ms(),
                grace_ms: windows.grace(),
                keys: keys.clone(),
                this_values: S::this(&left_values, &right_values),
                other_values: S::other(&left_values, &right_values),
                left_values: left_values.clone(),
                right_values: right_values.clone(),
                joiner: joiner.clone(),
                trackers: trackers.clone(),
                fresh_tracker: S::LEFT,
                tracker: None,
                restored_time: None,
                other: None,
                shared: None,
                _side: PhantomData,
            })
        })
    }
}
