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

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::{Record, RecordMetadata};
use crate::serde::SerdeRef;
use crate::store::{KeyValueStoreHandle, SessionStoreHandle, WindowStoreHandle};
use crate::task::node::{take_record, Data, Node, NodeContext};
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
            _types: PhantomData,
        }
    }

    /// Forwards to every child, synchronously and depth-first.
    pub fn forward(&mut self, record: Record<K, V>) -> Result<()> {
        let record = self.fix_key(record);
        self.inner.forward(record)
    }

    /// Forwards to the child named `child` only.
    pub fn forward_to(&mut self, child: &str, record: Record<K, V>) -> Result<()> {
        let record = self.fix_key(record);
        self.inner.forward_to(child, record)
    }

    /// Under `process_values`, the input's key replaces whatever key was set.
    fn fix_key(&self, mut record: Record<K, V>) -> Record<K, V> {
        if let Some(k) = self
            .inner
            .fixed_key
            .as_ref()
            .and_then(|k| k.downcast_ref::<K>())
        {
            record.key = k.clone();
        }
        record
    }

    /// The task's stream time (-1 before any record).
    pub fn current_stream_time_ms(&self) -> i64 {
        self.inner.stream_time()
    }

    /// The wall-clock time the task was last given, ms.
    pub fn current_system_time_ms(&self) -> i64 {
        self.inner.wall_clock()
    }

    /// Topic, partition and offset of the record being processed; `None` in a punctuation.
    pub fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.inner.record_metadata()
    }

    /// The task's id, e.g. `0_3`.
    pub fn task_id(&self) -> &str {
        self.inner.task_id()
    }

    /// This processor's node name.
    pub fn node_name(&self) -> &str {
        self.inner.name()
    }

    /// The key-value store `name` (connected to this processor), typed with its serdes.
    pub fn key_value_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<KeyValueStoreHandle<SK, SV>> {
        KeyValueStoreHandle::new(self.inner.store(name)?, None, None)
    }

    /// The key-value store `name` read with other serdes than it was declared with.
    pub fn key_value_store_with<SK: 'static, SV: 'static>(
        &self,
        name: &str,
        keys: SerdeRef<SK>,
        values: SerdeRef<SV>,
    ) -> Result<KeyValueStoreHandle<SK, SV>> {
        KeyValueStoreHandle::new(self.inner.store(name)?, Some(keys), Some(values))
    }

    /// The window store `name`.
    pub fn window_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<WindowStoreHandle<SK, SV>> {
        WindowStoreHandle::new(self.inner.store(name)?, None, None)
    }

    /// The session store `name`.
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

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut dyn Any) -> Result<()> {
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
