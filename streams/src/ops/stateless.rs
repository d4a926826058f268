//! Stateless operators (filter, map, flat_map, peek, branch, …): one closure per operator
//! that gets the record and the context and forwards what it produces.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::Result;
use crate::record::Record;
use crate::task::node::{input_slot, take_input, Data, InFlight, Node, NodeContext};
use crate::topology::NodeFactory;

/// A stateless operator running `f`. Generic over the closure (shared by the task
/// instances through an `Arc` of the closure's own type), so a record's call into it is a
/// direct call the compiler inlines, not a second virtual call after the node's.
struct FnNode<K, V, F> {
    f: Arc<F>,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, F> Node for FnNode<K, V, F>
where
    K: Data,
    V: Data,
    F: Fn(&mut NodeContext<'_>, Record<K, V>) -> Result<()> + Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r = take_input::<K, V>(ctx, record)?;
        (self.f)(ctx, r)
    }
}

/// A factory for a stateless operator running `f`.
pub(crate) fn stateless<K: Data, V: Data>(
    f: impl Fn(&mut NodeContext<'_>, Record<K, V>) -> Result<()> + Send + Sync + 'static,
) -> NodeFactory {
    let f = Arc::new(f);
    Arc::new(move || {
        Box::new(FnNode {
            f: f.clone(),
            types: PhantomData,
        })
    })
}

/// An operator that passes every record on unchanged: a source (its records come decoded
/// into their slot), a repartition's null-key filter whose sink drops null keys itself.
/// A task skips it when it has one child, handing it its records straight
/// ([`Node::forwards_unchanged`]).
struct ForwardNode<K, V>(PhantomData<fn() -> (K, V)>);

impl<K: Data, V: Data> Node for ForwardNode<K, V> {
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let slot = input_slot::<K, V>(ctx, record)?;
        ctx.forward_slot(slot)
    }

    fn forwards_unchanged(&self) -> bool {
        true
    }
}

/// A factory for an operator that forwards every record unchanged.
pub(crate) fn forward_unchanged<K: Data, V: Data>() -> NodeFactory {
    Arc::new(|| Box::new(ForwardNode::<K, V>(PhantomData)))
}

/// An operator that passes records on unchanged or drops them (filter, peek, merge): it
/// reads the record where its parent left it and hands its children the same slot, so
/// the record is not moved on the way.
struct PassNode<K, V, F> {
    keep: Arc<F>,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, F> Node for PassNode<K, V, F>
where
    K: Data,
    V: Data,
    F: Fn(&K, &V) -> bool + Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let slot = input_slot::<K, V>(ctx, record)?;
        let keep = slot.as_ref().is_some_and(|r| (self.keep)(&r.key, &r.value));
        if keep {
            ctx.forward_slot(slot)
        } else {
            // Dropped here, as when the record was moved in.
            *slot = None;
            Ok(())
        }
    }
}

/// A factory for an operator that forwards each record `keep` returns true for, unchanged.
pub(crate) fn pass<K: Data, V: Data>(
    keep: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
) -> NodeFactory {
    let keep = Arc::new(keep);
    Arc::new(move || {
        Box::new(PassNode {
            keep: keep.clone(),
            types: PhantomData,
        })
    })
}

/// The input and output types of a [`MapNode`].
type MapTypes<K, V, K2, V2> = fn(K, V) -> (K2, V2);

/// An operator that makes one record of each (map, map_values, select_key): `f` turns the
/// input's key and value into the output's, which take the input's timestamp and headers.
/// The input is taken apart where its parent left it, so the fields are read one by one
/// (a whole-record copy of fields just stored stalled), and the output goes to the
/// children in one slot.
struct MapNode<K, V, K2, V2, F> {
    f: Arc<F>,
    types: PhantomData<MapTypes<K, V, K2, V2>>,
}

impl<K, V, K2, V2, F> Node for MapNode<K, V, K2, V2, F>
where
    K: Data,
    V: Data,
    K2: Data,
    V2: Data,
    F: Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
{
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let slot = input_slot::<K, V>(ctx, record)?;
        let Some(Record {
            key,
            value,
            timestamp,
            headers,
        }) = slot.take()
        else {
            return Ok(());
        };
        let (key, value) = (self.f)(key, value);
        ctx.forward_slot(&mut Some(Record {
            key,
            value,
            timestamp,
            headers,
        }))
    }
}

/// A factory for an operator that maps each record's key and value with `f` (given by
/// value, so an operator that keeps one does not clone it).
pub(crate) fn map<K: Data, V: Data, K2: Data, V2: Data>(
    f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
) -> NodeFactory {
    let f = Arc::new(f);
    Arc::new(move || {
        Box::new(MapNode {
            f: f.clone(),
            types: PhantomData,
        })
    })
}
