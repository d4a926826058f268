//! Stateless operators (filter, map, flat_map, peek, branch, …): one closure per operator
//! that gets the record and the context and forwards what it produces.

use std::any::Any;
use std::sync::Arc;

use crate::error::Result;
use crate::record::Record;
use crate::task::node::{take_record, Data, Node, NodeContext};
use crate::topology::NodeFactory;

/// What a stateless operator does with one record.
pub(crate) type StatelessFn<K, V> =
    Arc<dyn Fn(&mut NodeContext<'_>, Record<K, V>) -> Result<()> + Send + Sync>;

struct FnNode<K, V> {
    f: StatelessFn<K, V>,
}

impl<K: Data, V: Data> Node for FnNode<K, V> {
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut dyn Any) -> Result<()> {
        let r = take_record::<K, V>(ctx.name(), record)?;
        (self.f)(ctx, r)
    }
}

/// A factory for a stateless operator running `f`.
pub(crate) fn stateless<K: Data, V: Data>(
    f: impl Fn(&mut NodeContext<'_>, Record<K, V>) -> Result<()> + Send + Sync + 'static,
) -> NodeFactory {
    let f: StatelessFn<K, V> = Arc::new(f);
    Arc::new(move || Box::new(FnNode { f: f.clone() }))
}
