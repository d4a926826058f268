//! The physical topology `StreamsBuilder::build` produces: named nodes (sources,
//! processors, sinks) with their stores, split into sub-topologies at repartition topics,
//! plus what the runtime must create and check (internal topics with symbolic partition
//! counts, co-partition groups).
//!
//! A topology is immutable and cheap to clone; each task instantiates its own operators from
//! the node factories.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::record::InputRecord;
use crate::store::StoreBuilder;
use crate::task::input::RawRecord;
use crate::task::node::{BoxedRecord, Node};

mod describe;

pub use describe::{TopologyDescription, TopologyNodeDescription};

/// Makes a fresh instance of a node's operator for a task.
pub(crate) type NodeFactory = Arc<dyn Fn() -> Box<dyn Node> + Send + Sync>;

/// A topic as the topology names it: a user topic, or an internal one whose real name is
/// `<application.id>-<name>` (repartition topics: `<name>` ends in `-repartition`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopicName {
    /// A user topic, used as named.
    External(String),
    /// An internal topic, prefixed with the application id.
    Internal(String),
}

impl TopicName {
    /// The name `describe()` prints (internal topics without the application id, as Kafka).
    pub fn shown(&self) -> &str {
        match self {
            TopicName::External(t) | TopicName::Internal(t) => t,
        }
    }

    /// The topic's name on the log for `application_id`.
    pub fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicName::External(t) => t.clone(),
            TopicName::Internal(t) => format!("{application_id}-{t}"),
        }
    }
}

/// Turns a topic's raw record into a typed `Option<Record<K, V>>` (boxed, as a
/// [`BoxedRecord`]) and its timestamp.
pub(crate) trait SourceDecoder: Send + Sync {
    fn decode(&self, raw: &InputRecord, partition_time: i64) -> Result<(BoxedRecord, i64), String>;

    /// [`decode`](SourceDecoder::decode) into `slot`, reusing the box it holds when it
    /// is of this decoder's type: a task decodes every record into its queue's slot, so
    /// records are not boxed one by one. Returns the timestamp.
    fn decode_into(
        &self,
        raw: &RawRecord<'_>,
        partition_time: i64,
        slot: &mut Option<BoxedRecord>,
    ) -> Result<i64, String> {
        let (record, timestamp) = self.decode(&raw.to_input(), partition_time)?;
        *slot = Some(record);
        Ok(timestamp)
    }

    /// Where the source starts without a committed offset (`Consumed::with_offset_reset`);
    /// `None`: the application's default.
    fn offset_reset(&self) -> Option<crate::dsl::options::OffsetReset> {
        None
    }
}

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SinkTopic {
    /// One topic.
    Fixed(TopicName),
    /// Chosen per record (Kafka's `TopicNameExtractor`); the label is shown by describe.
    Dynamic(String),
}

pub(crate) enum NodeKind {
    Source {
        topics: Vec<TopicName>,
        decoder: Arc<dyn SourceDecoder>,
    },
    Processor,
    Sink {
        topic: SinkTopic,
    },
}

pub(crate) struct NodeSpec {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) parents: Vec<usize>,
    pub(crate) children: Vec<usize>,
    pub(crate) stores: Vec<String>,
    pub(crate) factory: NodeFactory,
    /// Topics written besides sinks (late-records topics).
    pub(crate) writes: Vec<TopicName>,
}

/// How many partitions an internal topic gets: a number, or the largest count of other
/// topics (resolved by the runtime against the log, through chains of internal topics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionCount {
    /// Exactly this many (`Repartitioned::with_number_of_partitions`).
    Fixed(u32),
    /// The maximum partition count of these topics (the sources upstream of the writer).
    MaxOf(Vec<TopicName>),
}

/// An internal topic the runtime must create before starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    /// Its name, without the application id.
    pub name: TopicName,
    /// Its partition count.
    pub partitions: PartitionCount,
    /// Topic configs (Kafka names), e.g. `cleanup.policy=delete`, `retention.ms=-1`.
    pub config: Vec<(String, String)>,
}

/// A sub-topology: the operators a task runs, and the topics it reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTopology {
    /// Its number, the first half of task ids (`0_3`).
    pub id: u32,
    /// Node indices (topology-wide).
    pub(crate) nodes: Vec<usize>,
    /// Topics its sources read.
    pub source_topics: Vec<TopicName>,
    /// Topics its sinks write (fixed ones).
    pub sink_topics: Vec<TopicName>,
    /// Names of the stores its operators use.
    pub stores: Vec<String>,
}

/// A global store's sub-topology (Kafka's "Sub-topology: N for global store (will not
/// generate tasks)"): a source reading every partition of `topic` and the processor that
/// keeps `store`. No task runs it; one [`GlobalTask`](crate::GlobalTask) per application
/// instance does, and every task can read the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalStoreTopology {
    /// Its number, in the same sequence as the sub-topologies (whose ids it skips).
    pub id: u32,
    /// The topic it reads (all partitions; the topic is the store's changelog).
    pub topic: TopicName,
    /// The store it keeps.
    pub store: String,
    /// The source node.
    pub(crate) source: usize,
    /// The processor that writes the store.
    pub(crate) processor: usize,
}

pub(crate) struct TopologyInner {
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) stores: BTreeMap<String, Arc<StoreBuilder>>,
    pub(crate) subtopologies: Vec<SubTopology>,
    /// Global stores' sub-topologies (not in `subtopologies`: they generate no tasks).
    pub(crate) global_stores: Vec<GlobalStoreTopology>,
    pub(crate) internal_topics: Vec<InternalTopic>,
    pub(crate) copartition_groups: Vec<BTreeSet<TopicName>>,
    pub(crate) warnings: Vec<String>,
}

/// A built topology (Kafka's `Topology`): what a task runs and what the runtime must set up.
///
/// ```
/// use freshet_streams::StreamsBuilder;
/// let builder = StreamsBuilder::new();
/// builder.stream::<String, String>("in").filter(|_k, v| !v.is_empty()).to("out");
/// let topology = builder.build()?;
/// assert_eq!(topology.subtopologies().len(), 1);
/// print!("{}", topology.describe());
/// # Ok::<(), freshet_streams::Error>(())
/// ```
#[derive(Clone)]
pub struct Topology {
    pub(crate) inner: Arc<TopologyInner>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("nodes", &self.inner.nodes.len())
            .field("subtopologies", &self.inner.subtopologies.len())
            .finish()
    }
}

impl Topology {
    /// The sub-topologies, by id.
    pub fn subtopologies(&self) -> &[SubTopology] {
        &self.inner.subtopologies
    }

    /// The global stores' sub-topologies, read by a [`GlobalTask`](crate::GlobalTask).
    pub fn global_stores(&self) -> &[GlobalStoreTopology] {
        &self.inner.global_stores
    }

    /// Internal topics to create (repartition topics), with their partition counts.
    pub fn internal_topics(&self) -> &[InternalTopic] {
        &self.inner.internal_topics
    }

    /// Groups of topics that must have the same partition count (joined inputs).
    pub fn copartition_groups(&self) -> &[BTreeSet<TopicName>] {
        &self.inner.copartition_groups
    }

    /// The stores, by name.
    pub fn stores(&self) -> impl Iterator<Item = &StoreBuilder> {
        self.inner.stores.values().map(|s| &**s)
    }

    /// Warnings from `build()`: stores and internal topics whose names were generated, and
    /// so change when the topology changes.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Kafka's `Topology::describe()`; its `Display` is Kafka's text format.
    pub fn describe(&self) -> TopologyDescription {
        describe::describe(self)
    }

    /// The offset reset a source reading `topic` (resolved for `application_id`) was given
    /// with `Consumed::with_offset_reset`; `None` when none was (the runtime then starts
    /// from the earliest offset, Kafka Streams' default).
    pub fn offset_reset(
        &self,
        topic: &str,
        application_id: &str,
    ) -> Option<crate::dsl::options::OffsetReset> {
        self.inner.nodes.iter().find_map(|n| match &n.kind {
            NodeKind::Source { topics, decoder }
                if topics.iter().any(|t| t.resolve(application_id) == topic) =>
            {
                decoder.offset_reset()
            }
            _ => None,
        })
    }

    /// The sub-topology whose sources read `topic` (resolved for `application_id`).
    pub fn subtopology_of_topic(&self, topic: &str, application_id: &str) -> Option<u32> {
        self.inner
            .subtopologies
            .iter()
            .find(|s| {
                s.source_topics
                    .iter()
                    .any(|t| t.resolve(application_id) == topic)
            })
            .map(|s| s.id)
    }
}

/// Splits nodes into sub-topologies: connected components over parent/child edges and over
/// shared stores (Kafka's `makeNodeGroups`), numbered in the order of their first node.
pub(crate) fn split(nodes: &[NodeSpec]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    fn union(p: &mut [usize], a: usize, b: usize) {
        let (ra, rb) = (find(p, a), find(p, b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            p[hi] = lo;
        }
    }
    let mut store_owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for &q in &n.parents {
            union(&mut parent, i, q);
        }
        for s in &n.stores {
            match store_owner.get(s.as_str()) {
                Some(&o) => union(&mut parent, i, o),
                None => {
                    store_owner.insert(s, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..nodes.len() {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups.into_values().collect()
}
