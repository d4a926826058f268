//! Stateless operators (filter, map, flat_map, peek, branch, …): one closure per operator
//! that gets the record and the context and forwards what it produces.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::Result;
use crate::record::Record;
use crate::task::node::{take_input, Data, Node, NodeContext};
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
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut dyn Any) -> Result<()> {
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
