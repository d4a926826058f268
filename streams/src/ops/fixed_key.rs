//! `process_values`: a user processor whose forwarded records keep the input's key (Kafka's
//! `FixedKeyProcessor`), so the stream needs no repartition.

use std::marker::PhantomData;

use crate::error::Result;
use crate::processor::{with_node, Processor, ProcessorContext};
use crate::record::Record;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// Runs `P` and restores the input key on everything it forwards while processing a record.
pub(crate) struct FixedKeyNode<P, K, V, V2> {
    pub(crate) processor: P,
    pub(crate) _types: PhantomData<fn(K, V, V2)>,
}

impl<P, K, V, V2> Node for FixedKeyNode<P, K, V, V2>
where
    P: Processor<K, V, K, V2>,
    K: Data,
    V: Data,
    V2: Data,
{
    fn init(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let name = ctx.name().to_string();
        self.processor
            .init(&mut ProcessorContext::new(ctx))
            .map_err(|e| with_node(e, &name))
    }

    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r: Record<K, V> = take_record(ctx.name(), record)?;
        let key = r.key.clone();
        let result = self
            .processor
            .process(&mut ProcessorContext::with_fixed_key(ctx, key), r);
        let name = ctx.name().to_string();
        result.map_err(|e| with_node(e, &name))
    }

    fn close(&mut self, ctx: &mut NodeContext<'_>) -> Result<()> {
        let name = ctx.name().to_string();
        self.processor
            .close(&mut ProcessorContext::new(ctx))
            .map_err(|e| with_node(e, &name))
    }
}
