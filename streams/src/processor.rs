//! The Processor API: write an operator by hand (Kafka's `api.Processor`), plug it in with
//! [`KStream::process`](crate::KStream::process) or
//! [`KStream::process_values`](crate::KStream::process_values).
//!
//! A processor gets a [`ProcessorContext`] in every call: forward records to all children or
//! to one by name, read stream time and wall-clock time, the current record's origin
//! ([`RecordMetadata`]), reach connected stores by name, and schedule punctuations
//! ([`ProcessorContext::schedule`]) with Kafka's rules.
//!
//! # Examples
//!
//! ```
//! use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
//! use freshet_streams::testing::TopologyTestDriver;
//!
//! /// Emits each value's length, keyed by the value.
//! struct Lengths;
//! impl Processor<String, String, String, i64> for Lengths {
//!     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, String>) -> Result<()> {
//!         let len = r.value.len() as i64;
//!         let key = r.value.clone();
//!         ctx.forward(r.with_key(key).with_value(len))
//!     }
//! }
//!
//! let builder = StreamsBuilder::new();
//! builder.stream::<String, String>("words").process(|| Lengths, &[]).to("lengths");
//! let mut driver = TopologyTestDriver::new(builder.build()?)?;
//! driver.input::<String, String>("words").pipe("k".into(), "hello".into(), 5)?;
//! let out = driver.output::<String, i64>("lengths").read_key_values()?;
//! assert_eq!(out, vec![("hello".to_string(), 5)]);
//! # Ok::<(), freshet_streams::Error>(())
//! ```

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::{Record, RecordMetadata};
use crate::serde::SerdeRef;
use crate::store::{KeyValueStoreHandle, SessionStoreHandle, WindowStoreHandle};
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};
pub use crate::task::punctuation::{Cancellable, PunctuationType};

/// A hand-written operator (Kafka's `Processor<KIn, VIn, KOut, VOut>`).
pub trait Processor<KIn, VIn, KOut, VOut>: Send {
    /// Called once before the first record: get stores, schedule punctuations.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, '_, KOut, VOut>) -> Result<()> {
        Ok(())
    }
    /// Processes one record.
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> Result<()>;
    /// Called once when the task closes.
    fn close(&mut self, _ctx: &mut ProcessorContext<'_, '_, KOut, VOut>) -> Result<()> {
        Ok(())
    }
}

/// What a processor can do while it runs (Kafka's `api.ProcessorContext`).
pub struct ProcessorContext<'a, 'b, K, V> {
    inner: &'a mut NodeContext<'b>,
    /// The input key while a `process_values` processor runs: what it forwards keeps it.
    fixed_key: Option<K>,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> std::fmt::Debug for ProcessorContext<'_, '_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'a, 'b, K: Data, V: Data> ProcessorContext<'a, 'b, K, V> {
    pub(crate) fn new(inner: &'a mut NodeContext<'b>) -> Self {
        ProcessorContext {
            inner,
            fixed_key: None,
            _types: PhantomData,
        }
    }

    /// A context whose forwarded records all get `key` (`process_values`).
    pub(crate) fn with_fixed_key(inner: &'a mut NodeContext<'b>, key: K) -> Self {
        ProcessorContext {
            inner,
            fixed_key: Some(key),
            _types: PhantomData,
        }
    }

    /// Forwards to every child, synchronously and depth-first.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Forwards each record twice: as it is, and with its value upper-cased.
    /// struct Twice;
    /// impl Processor<String, String, String, String> for Twice {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         let upper = r.value.to_uppercase();
    ///         ctx.forward(r.clone())?;
    ///         ctx.forward(r.with_value(upper))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// let out = builder.stream::<String, String>("in").process(|| Twice, &[]);
    /// out.to("a"); // every child gets every forwarded record
    /// out.to("b");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("a").read_values()?, vec!["v", "V"]);
    /// assert_eq!(driver.output::<String, String>("b").read_values()?, vec!["v", "V"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn forward(&mut self, record: Record<K, V>) -> Result<()> {
        let record = self.fix_key(record);
        self.inner.forward(record)
    }

    /// Forwards to the child named `child` only.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Sends negative amounts to the child `refunds`, others to `payments`.
    /// struct Router;
    /// impl Processor<String, i64, String, i64> for Router {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         let child = if r.value < 0 { "refunds" } else { "payments" };
    ///         ctx.forward_to(child, r)
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// let routed = builder.stream::<String, i64>("amounts").process(|| Router, &[]);
    /// routed.filter(|_, _| true).named("refunds").to("refunds");
    /// routed.filter(|_, _| true).named("payments").to("payments");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("amounts").pipe_all([("a".into(), 5, 0), ("b".into(), -2, 1)])?;
    /// assert_eq!(driver.output::<String, i64>("payments").read_values()?, vec![5]);
    /// assert_eq!(driver.output::<String, i64>("refunds").read_values()?, vec![-2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn forward_to(&mut self, child: &str, record: Record<K, V>) -> Result<()> {
        let record = self.fix_key(record);
        self.inner.forward_to(child, record)
    }

    /// Under `process_values`, the input's key replaces whatever key was set.
    fn fix_key(&self, mut record: Record<K, V>) -> Record<K, V> {
        if let Some(k) = &self.fixed_key {
            record.key = k.clone();
        }
        record
    }

    /// The task's stream time (-1 before any record).
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// struct StreamTime;
    /// impl Processor<String, String, String, i64> for StreamTime {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, String>) -> Result<()> {
    ///         let now = ctx.current_stream_time_ms();
    ///         ctx.forward(r.with_value(now))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").process(|| StreamTime, &[]).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe_all([("k".into(), "a".into(), 10), ("k".into(), "b".into(), 4)])?;
    /// // Stream time is the largest timestamp seen: an out-of-order record does not move it back.
    /// assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![10, 10]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn current_stream_time_ms(&self) -> i64 {
        self.inner.stream_time()
    }

    /// The wall-clock time the task was last given, ms.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::{DriverConfig, TopologyTestDriver};
    /// struct WallClock;
    /// impl Processor<String, String, String, i64> for WallClock {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, String>) -> Result<()> {
    ///         let now = ctx.current_system_time_ms();
    ///         ctx.forward(r.with_value(now))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").process(|| WallClock, &[]).to("out");
    /// let config = DriverConfig { wall_clock_start: 1_000, ..Default::default() };
    /// let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe("k".into(), "a".into(), 0)?;
    /// driver.advance_wall_clock(Duration::from_millis(5))?;
    /// input.pipe("k".into(), "b".into(), 0)?;
    /// assert_eq!(driver.output::<String, i64>("out").read_values()?, vec![1_000, 1_005]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn current_system_time_ms(&self) -> i64 {
        self.inner.wall_clock()
    }

    /// Topic, partition and offset of the record being processed; `None` in a punctuation.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// struct Origin;
    /// impl Processor<String, String, String, String> for Origin {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         let origin = ctx.record_metadata().map(|m| format!("{}-{}@{}", m.topic, m.partition, m.offset));
    ///         ctx.forward(r.with_value(origin.unwrap_or_default()))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.stream_with::<String, String>(&["a", "b"], Default::default()).process(|| Origin, &[]).to("out");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("a").pipe_all([("k".into(), "1".into(), 0), ("k".into(), "2".into(), 1)])?;
    /// driver.input::<String, String>("b").pipe("k".into(), "3".into(), 2)?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["a-0@0", "a-0@1", "b-0@0"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.inner.record_metadata()
    }

    /// The task's id, e.g. `0_3`.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::{DriverConfig, TopologyTestDriver};
    /// struct Task;
    /// impl Processor<String, String, String, String> for Task {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         let task = ctx.task_id().to_string();
    ///         ctx.forward(r.with_value(task))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").process(|| Task, &[]).to("out");
    /// let config = DriverConfig { partitions: 4, ..Default::default() };
    /// let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    /// // Sub-topology 0, partition 3.
    /// driver.input::<String, String>("in").pipe_record(freshet_streams::Record::new("k".into(), "v".into(), 0), Some(3))?;
    /// assert_eq!(driver.output::<String, String>("out").read_values()?, vec!["0_3"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn task_id(&self) -> &str {
        self.inner.task_id()
    }

    /// This processor's node name.
    ///
    /// ```
    /// # use freshet_streams::{Processor, ProcessorContext, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Tags each record with the node that saw it.
    /// struct Tag;
    /// impl Processor<String, String, String, String> for Tag {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>, r: Record<String, String>) -> Result<()> {
    ///         let tagged = format!("{} via {}", r.value, ctx.node_name());
    ///         ctx.forward(r.with_value(tagged))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// let input = builder.stream::<String, String>("in");
    /// input.process(|| Tag, &[]).to("generated");
    /// input.process(|| Tag, &[]).named("tagger").to("named");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, String>("in").pipe("k".into(), "v".into(), 0)?;
    /// assert_eq!(driver.output::<String, String>("generated").read_values()?, vec!["v via KSTREAM-PROCESSOR-0000000001"]);
    /// assert_eq!(driver.output::<String, String>("named").read_values()?, vec!["v via tagger"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn node_name(&self) -> &str {
        self.inner.name()
    }

    /// The key-value store `name` (connected to this processor), typed with its serdes.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Emits each key's running total.
    /// struct Total;
    /// impl Processor<String, i64, String, i64> for Total {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, i64>) -> Result<()> {
    ///         let totals = ctx.key_value_store::<String, i64>("totals")?;
    ///         let total = totals.get(&r.key)?.map_or(0, |(t, _)| t) + r.value;
    ///         totals.put(&r.key, &total, r.timestamp)?;
    ///         ctx.forward(r.with_value(total))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, i64>("totals", Utf8, BigEndian));
    /// builder.stream::<String, i64>("amounts").process(|| Total, &["totals"]).to("running-totals");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("amounts").pipe_all([("a".into(), 5, 0), ("a".into(), 7, 1), ("b".into(), 1, 2)])?;
    /// assert_eq!(driver.output::<String, i64>("running-totals").read_values()?, vec![5, 12, 1]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn key_value_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<KeyValueStoreHandle<SK, SV>> {
        KeyValueStoreHandle::new(self.inner.store(name)?, None, None)
    }

    /// The key-value store `name` read with other serdes than it was declared with.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use bytes::Bytes;
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, RawBytes, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Stores each value as an `i64`, and forwards the bytes the store holds for it.
    /// struct Raw;
    /// impl Processor<String, i64, String, Vec<u8>> for Raw {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, Vec<u8>>, r: Record<String, i64>) -> Result<()> {
    ///         ctx.key_value_store::<String, i64>("last")?.put(&r.key, &r.value, r.timestamp)?;
    ///         let raw = ctx.key_value_store_with::<String, Bytes>("last", Arc::new(Utf8), Arc::new(RawBytes))?;
    ///         let bytes = raw.get(&r.key)?.map(|(b, _)| b.to_vec()).unwrap_or_default();
    ///         ctx.forward(r.with_value(bytes))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::key_value::<String, i64>("last", Utf8, BigEndian));
    /// builder.stream::<String, i64>("in").process(|| Raw, &["last"]).to("bytes");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe("k".into(), 258, 0)?;
    /// assert_eq!(driver.output::<String, Vec<u8>>("bytes").read_values()?, vec![vec![0, 0, 0, 0, 0, 0, 1, 2]]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn key_value_store_with<SK: 'static, SV: 'static>(
        &self,
        name: &str,
        keys: SerdeRef<SK>,
        values: SerdeRef<SV>,
    ) -> Result<KeyValueStoreHandle<SK, SV>> {
        KeyValueStoreHandle::new(self.inner.store(name)?, Some(keys), Some(values))
    }

    /// The window store `name`.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Counts records per key in 10 ms windows and forwards each new count.
    /// struct WindowCount;
    /// impl Processor<String, String, String, i64> for WindowCount {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, String>) -> Result<()> {
    ///         let windows = ctx.window_store::<String, i64>("per-10ms")?;
    ///         let start = r.timestamp - r.timestamp % 10;
    ///         let count = windows.fetch(&r.key, start, start)?.first().map_or(0, |(_, c, _)| *c) + 1;
    ///         windows.put(&r.key, &count, r.timestamp, start)?;
    ///         ctx.forward(r.with_value(count))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::window::<String, i64>("per-10ms", 1_000, 10, false, Utf8, BigEndian));
    /// builder.stream::<String, String>("clicks").process(|| WindowCount, &["per-10ms"]).to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("ann".into(), "/a".into(), 1), ("ann".into(), "/b".into(), 7), ("ann".into(), "/c".into(), 12)])?;
    /// assert_eq!(driver.output::<String, i64>("counts").read_values()?, vec![1, 2, 1]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn window_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<WindowStoreHandle<SK, SV>> {
        WindowStoreHandle::new(self.inner.store(name)?, None, None)
    }

    /// The session store `name`.
    ///
    /// ```
    /// # use freshet_streams::{BigEndian, Processor, ProcessorContext, Record, Result, Stores, StreamsBuilder, Utf8, Window};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Counts records per session (sessions end after 10 ms without a record) and
    /// /// forwards the count of the session the record joined.
    /// struct Sessions;
    /// impl Processor<String, String, String, i64> for Sessions {
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, '_, String, i64>, r: Record<String, String>) -> Result<()> {
    ///         let sessions = ctx.session_store::<String, i64>("sessions")?;
    ///         let (mut window, mut count) = (Window::new(r.timestamp, r.timestamp), 1);
    ///         // Merge every session the record is within 10 ms of.
    ///         for (old, n, _) in sessions.find_sessions(&r.key, r.timestamp - 10, r.timestamp + 10)? {
    ///             sessions.remove(&r.key, old)?;
    ///             window = Window::new(window.start.min(old.start), window.end.max(old.end));
    ///             count += n;
    ///         }
    ///         sessions.put(&r.key, window, &count, r.timestamp)?;
    ///         ctx.forward(r.with_value(count))
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.add_state_store(Stores::session::<String, i64>("sessions", 1_000, Utf8, BigEndian));
    /// builder.stream::<String, String>("clicks").process(|| Sessions, &["sessions"]).to("counts");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let clicks = driver.input::<String, String>("clicks");
    /// clicks.pipe_all([("ann".into(), "/a".into(), 0), ("ann".into(), "/b".into(), 8), ("ann".into(), "/c".into(), 40)])?;
    /// assert_eq!(driver.output::<String, i64>("counts").read_values()?, vec![1, 2, 1]);
    /// let stored = driver.session_store::<String, i64>("sessions")?.find_sessions(&"ann".into(), 0, 100)?;
    /// assert_eq!(stored, vec![(Window::new(0, 8), 2, 8), (Window::new(40, 40), 1, 40)]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn session_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<SessionStoreHandle<SK, SV>> {
        SessionStoreHandle::new(self.inner.store(name)?, None, None)
    }

    /// Calls `punctuator` every `interval` of stream time or wall-clock time, with the
    /// current time (Kafka's rules: stream-time schedules are aligned to 0 and fire after
    /// the first record; after a gap only one punctuation fires). Returns a handle that
    /// cancels it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use freshet_streams::{Processor, ProcessorContext, PunctuationType, Record, Result, StreamsBuilder};
    /// # use freshet_streams::testing::TopologyTestDriver;
    /// /// Emits a tick every 10 ms of stream time.
    /// struct Ticker;
    /// impl Processor<String, String, String, String> for Ticker {
    ///     fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>) -> Result<()> {
    ///         ctx.schedule(Duration::from_millis(10), PunctuationType::StreamTime, |ctx, now| {
    ///             ctx.forward(Record::new("tick".into(), format!("tick@{now}"), now))
    ///         })?;
    ///         Ok(())
    ///     }
    ///     fn process(&mut self, _ctx: &mut ProcessorContext<'_, '_, String, String>, _r: Record<String, String>) -> Result<()> {
    ///         Ok(())
    ///     }
    /// }
    /// let builder = StreamsBuilder::new();
    /// builder.stream::<String, String>("in").process(|| Ticker, &[]).to("ticks");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// // The first record makes stream time known (fires at once); then at 10, 20, ...
    /// // with the stream time reached, once after a gap.
    /// input.pipe_all([("k".into(), "v".into(), 3), ("k".into(), "v".into(), 5), ("k".into(), "v".into(), 12), ("k".into(), "v".into(), 35)])?;
    /// assert_eq!(driver.output::<String, String>("ticks").read_values()?, vec!["tick@3", "tick@12", "tick@35"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn schedule(
        &mut self,
        interval: Duration,
        kind: PunctuationType,
        mut punctuator: impl FnMut(&mut ProcessorContext<'_, '_, K, V>, i64) -> Result<()>
            + Send
            + 'static,
    ) -> Result<Cancellable> {
        self.inner.schedule(
            interval,
            kind,
            Box::new(move |ctx: &mut NodeContext<'_>, now| {
                let node = ctx.name().to_string();
                punctuator(&mut ProcessorContext::new(ctx), now).map_err(|e| with_node(e, &node))
            }),
        )
    }
}

/// Runs a user's [`Processor`] as a node.
pub(crate) struct ProcessorNode<P, KIn, VIn, KOut, VOut> {
    pub(crate) processor: P,
    pub(crate) _types: PhantomData<fn(KIn, VIn, KOut, VOut)>,
}

impl<P, KIn, VIn, KOut, VOut> Node for ProcessorNode<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
    KIn: Data,
    VIn: Data,
    KOut: Data,
    VOut: Data,
{
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let name = ctx.name().to_string();
        self.processor
            .init(&mut ProcessorContext::new(ctx))
            .map_err(|e| with_node(e, &name))
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r = take_record::<KIn, VIn>(ctx.name(), record)?;
        let name = ctx.name().to_string();
        self.processor
            .process(&mut ProcessorContext::new(ctx), r)
            .map_err(|e| with_node(e, &name))
    }

    fn close(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let name = ctx.name().to_string();
        self.processor
            .close(&mut ProcessorContext::new(ctx))
            .map_err(|e| with_node(e, &name))
    }
}

/// Names the node in a processor's own error.
pub(crate) fn with_node(e: Error, node: &str) -> Error {
    match e {
        Error::Processing { node: n, message } if n.is_empty() => Error::Processing {
            node: node.to_string(),
            message,
        },
        e => e,
    }
}

/// Makes fresh processors for each task (Kafka's `ProcessorSupplier`).
pub type ProcessorSupplier<P> = Arc<dyn Fn() -> P + Send + Sync>;
