//! The splitter of [`KStream::split`](crate::KStream::split) (Kafka's `KStreamBranch`): each
//! record goes to the child of the first predicate it matches, else to the default branch if
//! there is one, else nowhere.

use std::sync::Arc;

use crate::error::Result;
use crate::task::node::{take_record, Data, InFlight, Node, NodeContext};

/// A branch's predicate.
pub(crate) type BranchPredicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// Routes records to the branch children by name (Kafka forwards to a named child too).
pub(crate) struct BranchNode<K, V> {
    /// One predicate per branch, in `branch` order.
    pub(crate) predicates: Vec<BranchPredicate<K, V>>,
    /// The child of each predicate, in the same order, then the default branch's child
    /// when there is one.
    pub(crate) children: Vec<String>,
}

impl<K, V> Clone for BranchNode<K, V> {
    fn clone(&self) -> Self {
        BranchNode {
            predicates: self.predicates.clone(),
            children: self.children.clone(),
        }
    }
}

impl<K: Data, V: Data> Node for BranchNode<K, V> {
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()> {
        let r = take_record::<K, V>(ctx.name(), record)?;
        let matched = self
            .predicates
            .iter()
            .position(|p| p(&r.key, &r.value))
            .unwrap_or(self.predicates.len());
        // Past the predicates: the default branch's child, if any; otherwise dropped.
        match self.children.get(matched) {
            Some(child) => ctx.forward_to(child, r),
            None => Ok(()),
        }
    }
}
