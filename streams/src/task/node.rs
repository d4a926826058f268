//! The type-erased operator the task runs, and the context every call gets.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::{Record, RecordMetadata, SinkRecord};
use crate::store::StoreRef;
use crate::task::punctuation::{Cancellable, PunctuationType, Punctuator};
use crate::task::TaskCore;
use crate::topology::TopologyInner;

/// Values that flow between operators: cloned when a record goes to several children.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// A record on its way between operators: a `&mut Option<Record<K, V>>` with its types
/// erased, the node taking it out (or reading it in place) by its types.
///
/// The type's id is kept beside the pointer, so a node checks what it received with one
/// comparison; a `&mut dyn Any` asks its vtable for the id, an indirect call at every hop
/// (≈ 6 % of a repartitioning pipeline's stream thread).
pub(crate) struct InFlight<'a> {
    type_id: TypeId,
    slot: NonNull<()>,
    _borrow: PhantomData<&'a mut ()>,
}

impl<'a> InFlight<'a> {
    /// The record in `slot`, lent to the operators.
    #[inline(always)]
    pub(crate) fn new<K: 'static, V: 'static>(slot: &'a mut Option<Record<K, V>>) -> Self {
        InFlight {
            type_id: TypeId::of::<Option<Record<K, V>>>(),
            slot: NonNull::from(slot).cast(),
            _borrow: PhantomData,
        }
    }

    /// The record's slot, when the record is a `Record<K, V>`.
    #[inline(always)]
    pub(crate) fn downcast<K: 'static, V: 'static>(&mut self) -> Option<&mut Option<Record<K, V>>> {
        if self.type_id != TypeId::of::<Option<Record<K, V>>>() {
            return None;
        }
        // SAFETY: `slot` was made (in `new` or `BoxedRecord::in_flight`) from a `&'a mut`
        // to a value of the type `type_id` names, which was just checked; the borrow
        // returned holds `self` mutably, so it is the only access while it lives.
        Some(unsafe { self.slot.cast::<Option<Record<K, V>>>().as_mut() })
    }
}

/// An owned `Option<Record<K, V>>` with its types erased: a decoded source record (a task
/// queue's head, refilled for every record), lent to the operators as an [`InFlight`].
pub(crate) struct BoxedRecord {
    type_id: TypeId,
    record: Box<dyn Any + Send>,
}

impl BoxedRecord {
    pub(crate) fn new<K: Send + 'static, V: Send + 'static>(record: Option<Record<K, V>>) -> Self {
        BoxedRecord {
            type_id: TypeId::of::<Option<Record<K, V>>>(),
            record: Box::new(record),
        }
    }

    /// The record's slot, when it is a `Record<K, V>`.
    #[inline(always)]
    pub(crate) fn downcast<K: 'static, V: 'static>(&mut self) -> Option<&mut Option<Record<K, V>>> {
        if self.type_id != TypeId::of::<Option<Record<K, V>>>() {
            return None;
        }
        // SAFETY: the box holds a value of the type `type_id` names (`new` boxed it, and
        // the fields are private), just checked; the borrow returned holds `self` mutably.
        Some(unsafe {
            NonNull::from(&mut *self.record)
                .cast::<Option<Record<K, V>>>()
                .as_mut()
        })
    }

    /// The record lent to the operators.
    #[inline(always)]
    pub(crate) fn in_flight(&mut self) -> InFlight<'_> {
        InFlight {
            type_id: self.type_id,
            // The data half of the box's pointer: a value of the type `type_id` names
            // (`new` boxed it, and the fields are private).
            slot: NonNull::from(&mut *self.record).cast(),
            _borrow: PhantomData,
        }
    }
}

/// One operator of a task, with its types erased. The record passed to
/// [`process`](Node::process) is an `Option<Record<K, V>>` of the node's input types, which
/// the node takes out.
pub(crate) trait Node: Send {
    /// Called once before the first record: get stores, schedule punctuations.
    fn init(&mut self, _ctx: &mut NodeContext<'_>) -> Result<()> {
        Ok(())
    }
    /// Processes one record (an `Option<Record<K, V>>` of the node's input types).
    fn process(&mut self, ctx: &mut NodeContext<'_>, record: &mut InFlight<'_>) -> Result<()>;
    /// Whether [`process`](Node::process) only forwards the record, unchanged and in its
    /// slot, to every child (a source, a repartition's null-key filter): a task sends a
    /// record meant for such a node with one child straight to that child.
    fn forwards_unchanged(&self) -> bool {
        false
    }
    /// Commit step 1: flush caches, forwarding what they held.
    fn flush(&mut self, _ctx: &mut NodeContext<'_>) -> Result<()> {
        Ok(())
    }
    /// Called once when the task closes.
    fn close(&mut self, _ctx: &mut NodeContext<'_>) -> Result<()> {
        Ok(())
    }
    /// The stream time this operator observed (stateful operators), to commit with the
    /// offsets.
    fn observed_stream_time(&self) -> Option<i64> {
        None
    }
    /// Restores the observed stream time committed last.
    fn restore_stream_time(&mut self, _time: i64) {}
    /// Values besides the stream time to commit with the offsets (Kafka's processor
    /// metadata, e.g. the close time an emit-final aggregation emitted up to), keyed
    /// `processor-metadata:<key>` with a key unique in the topology (Kafka keys them by
    /// store name); they travel in [`StreamTimes::nodes`](crate::StreamTimes).
    fn processor_metadata(&self) -> Vec<(String, i64)> {
        Vec::new()
    }
    /// Restores this operator's entries of the processor metadata committed last (given
    /// all committed entries).
    fn restore_processor_metadata(&mut self, _metadata: &std::collections::BTreeMap<String, i64>) {}
}

/// A task's slot for node `i` (empty for nodes of other sub-topologies).
pub(crate) type NodeSlot = Option<TaskNode>;

/// A task's instance of a node, with the node's children next to it: a forward reads them
/// from the running node's context, not through the topology's node specs.
pub(crate) struct TaskNode {
    pub(crate) op: Box<dyn Node>,
    pub(crate) children: Box<[usize]>,
}

impl TaskNode {
    /// Instantiates node `node` of `topo`.
    pub(crate) fn new(topo: &TopologyInner, node: usize) -> TaskNode {
        let spec = &topo.nodes[node];
        TaskNode {
            op: (spec.factory)(),
            children: spec.children.clone().into_boxed_slice(),
        }
    }
}

/// The error for a record that is not of the node's input type.
#[cold]
fn mismatch<K, V>(node: &str) -> Error {
    Error::TypeMismatch {
        node: node.to_string(),
        expected: std::any::type_name::<Record<K, V>>(),
    }
}

/// Takes the typed record out of what [`Node::process`] received.
pub(crate) fn take_record<K: 'static, V: 'static>(
    node: &str,
    record: &mut InFlight<'_>,
) -> Result<Record<K, V>> {
    record
        .downcast::<K, V>()
        .and_then(Option::take)
        .ok_or_else(|| mismatch::<K, V>(node))
}

/// [`take_record`] naming the node only when the record is not of its type (the name is
/// not looked up for every record).
#[inline]
pub(crate) fn take_input<K: 'static, V: 'static>(
    ctx: &NodeContext<'_>,
    record: &mut InFlight<'_>,
) -> Result<Record<K, V>> {
    match record.downcast::<K, V>().and_then(Option::take) {
        Some(r) => Ok(r),
        None => Err(mismatch::<K, V>(ctx.name())),
    }
}

/// The slot holding the record [`Node::process`] received, left in place: a node that
/// passes the record on unchanged (source, filter, peek) hands its children the same slot
/// ([`NodeContext::forward_slot`]) instead of moving the record out and into a new one at
/// every hop. The slot holds a record.
#[inline]
pub(crate) fn input_slot<'r, K: 'static, V: 'static>(
    ctx: &NodeContext<'_>,
    record: &'r mut InFlight<'_>,
) -> Result<&'r mut Option<Record<K, V>>> {
    match record.downcast::<K, V>() {
        Some(slot) if slot.is_some() => Ok(slot),
        _ => Err(mismatch::<K, V>(ctx.name())),
    }
}

/// The record [`Node::process`] received, borrowed where it is (a sink reads it and
/// takes its headers only).
#[inline]
pub(crate) fn input_ref<'r, K: 'static, V: 'static>(
    ctx: &NodeContext<'_>,
    record: &'r mut InFlight<'_>,
) -> Result<&'r mut Record<K, V>> {
    match record.downcast::<K, V>().and_then(Option::as_mut) {
        Some(r) => Ok(r),
        None => Err(mismatch::<K, V>(ctx.name())),
    }
}

/// Runs `f` as node `node`, found in `nodes` (which start at node index `first`), with a
/// context that reaches the nodes after it.
///
/// A node's children always come after it (the builder adds a node after its parents),
/// so the running node and the nodes it may forward to are disjoint parts of the slice:
/// the node is borrowed where it is, not taken out of the task and put back at every hop.
/// A node not in `nodes` (another sub-topology, or an edge that would go backwards) is an
/// error.
#[inline(always)]
pub(crate) fn run_node<T>(
    core: &mut TaskCore,
    topo: &TopologyInner,
    nodes: &mut [NodeSlot],
    first: usize,
    node: usize,
    f: impl FnOnce(&mut dyn Node, &mut NodeContext<'_>) -> Result<T>,
) -> Result<T> {
    let found = node
        .checked_sub(first)
        .and_then(|i| nodes.get_mut(i..))
        .and_then(<[NodeSlot]>::split_first_mut);
    match found {
        Some((Some(TaskNode { op, children }), later)) => f(
            &mut **op,
            &mut NodeContext {
                core,
                topo,
                later,
                children,
                node,
            },
        ),
        _ => Err(not_runnable(core, topo, node)),
    }
}

#[cold]
fn not_runnable(core: &TaskCore, topo: &TopologyInner, node: usize) -> Error {
    Error::InvalidArgument(format!(
        "node {} is not part of task {} or is already running (a cycle)",
        topo.nodes.get(node).map_or("?", |n| n.name.as_str()),
        core.id
    ))
}

/// What an operator can do while it runs: forward records to its children, read the task's
/// time and the current record's origin, reach its stores, schedule punctuations, write to
/// topics. Lives for one call.
pub(crate) struct NodeContext<'a> {
    pub(crate) core: &'a mut TaskCore,
    /// The topology (borrowed apart from `core`, so a forward reads the children in place).
    pub(crate) topo: &'a TopologyInner,
    /// The task's nodes after this one (index `node + 1` on): all the nodes it can reach.
    pub(crate) later: &'a mut [NodeSlot],
    /// Where this node's records go, in the order its children were added: its children,
    /// or past those that only pass records on (see `Task::new`).
    pub(crate) children: &'a [usize],
    pub(crate) node: usize,
}

impl std::fmt::Debug for NodeContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext")
            .field("node", &self.name())
            .finish()
    }
}

impl<'a> NodeContext<'a> {
    /// This node's name.
    pub(crate) fn name(&self) -> &str {
        &self.topo.nodes[self.node].name
    }

    /// Runs child `child` on a record.
    #[inline(always)]
    fn dispatch(&mut self, child: usize, record: &mut InFlight<'_>) -> Result<()> {
        let first = self.node + 1;
        // `Ok` rebuilt rather than the callee's (large) result passed through.
        match run_node(self.core, self.topo, self.later, first, child, |op, ctx| {
            op.process(ctx, record)
        }) {
            Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Forwards to every child, depth-first, in the order they were added.
    #[inline]
    pub(crate) fn forward<K: Data, V: Data>(&mut self, record: Record<K, V>) -> Result<()> {
        self.forward_slot(&mut Some(record))
    }

    /// Forwards the record in `slot` to every child, depth-first, in the order they were
    /// added: each child but the last gets a copy, the last the slot itself (the record is
    /// not moved on its way down).
    pub(crate) fn forward_slot<K: Data, V: Data>(
        &mut self,
        slot: &mut Option<Record<K, V>>,
    ) -> Result<()> {
        let children = self.children;
        let Some((&last, others)) = children.split_last() else {
            return Ok(());
        };
        for &child in others {
            let mut copy = slot.clone();
            self.dispatch(child, &mut InFlight::new(&mut copy))?;
        }
        self.dispatch(last, &mut InFlight::new(slot))
    }

    /// Forwards to the child named `child` only.
    pub(crate) fn forward_to<K: Data, V: Data>(
        &mut self,
        child: &str,
        record: Record<K, V>,
    ) -> Result<()> {
        // By the children the topology gives it: `children` may skip some (see `Task::new`).
        let nodes = &self.topo.nodes;
        let found = nodes[self.node]
            .children
            .iter()
            .copied()
            .find(|&c| nodes[c].name == child);
        match found {
            Some(c) => self.dispatch(c, &mut InFlight::new(&mut Some(record))),
            None => Err(Error::UnknownChild {
                node: self.name().to_string(),
                child: child.to_string(),
            }),
        }
    }

    /// The task's stream time: the largest timestamp processed (-1 before any).
    pub(crate) fn stream_time(&self) -> i64 {
        self.core.stream_time
    }

    /// The (mock or real) wall-clock time, ms.
    pub(crate) fn wall_clock(&self) -> i64 {
        self.core.wall_clock
    }

    /// Where the record being processed came from (`None` in a punctuation).
    pub(crate) fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.core.in_record.then_some(&self.core.meta)
    }

    /// The task's id, e.g. `0_3`.
    pub(crate) fn task_id(&self) -> &str {
        &self.core.id
    }

    /// The task's partition.
    pub(crate) fn partition(&self) -> u32 {
        self.core.partition
    }

    /// Whether a node other than this one is connected to store `name` (may read it).
    pub(crate) fn store_shared(&self, name: &str) -> bool {
        self.topo
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| i != self.node && n.stores.iter().any(|s| s == name))
    }

    /// The store `name`, which must be connected to this node, or a global store (which
    /// every node may read without being connected to it, as in Kafka).
    pub(crate) fn store(&self, name: &str) -> Result<StoreRef> {
        if let Some(global) = self.core.global_stores.get(name) {
            return Ok(global);
        }
        let spec = &self.topo.nodes[self.node];
        if !spec.stores.iter().any(|s| s == name) {
            return Err(Error::UnknownStore {
                node: spec.name.clone(),
                store: name.to_string(),
            });
        }
        self.core
            .stores
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStore {
                node: spec.name.clone(),
                store: name.to_string(),
            })
    }

    /// Schedules `punctuator` every `interval` (Kafka's punctuation rules).
    pub(crate) fn schedule(
        &mut self,
        interval: Duration,
        kind: PunctuationType,
        punctuator: Punctuator,
    ) -> Result<Cancellable> {
        let node = self.node;
        self.core
            .punctuations
            .schedule(node, interval, kind, punctuator)
    }

    /// Writes a record to a topic (sinks, late-records and dead-letter topics).
    pub(crate) fn send(&mut self, record: SinkRecord) {
        self.core.metrics.records_out += 1;
        self.core.outputs.push(record);
    }

    /// The partition count of `topic`, when the caller told the task.
    pub(crate) fn partitions_of(&self, topic: &str) -> Option<u32> {
        (self.core.partitions_of)(topic)
    }

    /// Counts a record dropped by this node (null key, late, expired window) and says why.
    pub(crate) fn record_dropped(&mut self, reason: &str) {
        self.core.metrics.dropped_records += 1;
        tracing::warn!(task = %self.core.id, node = %self.name(), "{reason}; record dropped");
    }

    /// Counts a record dropped because it arrived after its window closed.
    pub(crate) fn record_late(&mut self) {
        self.core.metrics.late_records += 1;
    }

    /// A setting of the task's configuration.
    pub(crate) fn config(&self) -> &crate::task::TaskConfig {
        &self.core.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: u64, value: &str) -> Record<u64, String> {
        Record {
            key,
            value: value.to_string(),
            timestamp: 7,
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_record_in_flight_is_lent_as_its_own_type_only() {
        let mut slot = Some(record(1, "a"));
        let mut in_flight = InFlight::new(&mut slot);
        assert!(in_flight.downcast::<String, u64>().is_none());
        assert!(in_flight.downcast::<u64, Vec<u8>>().is_none());
        let lent = in_flight.downcast::<u64, String>().expect("its own type");
        lent.as_mut().expect("a record").value.push('b');
        assert_eq!(lent.take().map(|r| r.value), Some("ab".to_string()));
        assert!(slot.is_none(), "taking it out empties the caller's slot");
    }

    #[test]
    fn a_boxed_record_is_refilled_and_lent_in_place() {
        let mut boxed = BoxedRecord::new(None::<Record<u64, String>>);
        assert!(boxed.downcast::<u64, u64>().is_none());
        *boxed.downcast::<u64, String>().expect("its type") = Some(record(2, "x"));
        let mut in_flight = boxed.in_flight();
        assert!(in_flight.downcast::<String, String>().is_none());
        let taken = take_record::<u64, String>("node", &mut in_flight).expect("a record");
        assert_eq!((taken.key, taken.value.as_str()), (2, "x"));
        assert!(
            take_record::<u64, String>("node", &mut in_flight).is_err(),
            "the slot was emptied"
        );
        assert!(matches!(
            take_record::<u64, u64>("node", &mut boxed.in_flight()),
            Err(Error::TypeMismatch { .. })
        ));
    }
}
