//! The graph a [`StreamsBuilder`](crate::StreamsBuilder) grows: nodes named from one counter
//! (`KSTREAM-FILTER-0000000003`), stores, internal topics and co-partition groups; and
//! `build`, which turns it into a [`Topology`] in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::serde::SerdeRegistry;
use crate::store::StoreBuilder;
use crate::topology::{
    split, InternalTopic, NodeFactory, NodeKind, NodeSpec, PartitionCount, SinkTopic, SubTopology,
    TopicName, Topology, TopologyInner,
};

pub(crate) struct GraphNode {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) parents: Vec<usize>,
    pub(crate) stores: Vec<String>,
    pub(crate) factory: NodeFactory,
    /// Topics the node writes besides sinks (e.g. a late-records topic): created like sink
    /// topics.
    pub(crate) writes: Vec<TopicName>,
    /// The counter value its name was generated from (`None`: named by the user).
    pub(crate) generated: Option<usize>,
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<GraphNode>,
    pub(crate) stores: BTreeMap<String, Arc<StoreBuilder>>,
    pub(crate) index: usize,
    pub(crate) serdes: SerdeRegistry,
    pub(crate) errors: Vec<String>,
    pub(crate) internal_topics: Vec<InternalTopic>,
    pub(crate) copartition: Vec<BTreeSet<TopicName>>,
    /// Per table node: how its values are read and how it sends old values (a
    /// `dsl::table::TableEntry<K, V>`, erased; see `dsl/table.rs`).
    pub(crate) table_entries: BTreeMap<usize, Arc<dyn std::any::Any + Send + Sync>>,
    /// Per stream node: the repartition source its last join made (Kafka's
    /// `KStreamImpl.repartitionNode`, reused by later unnamed joins; see `dsl/table.rs`).
    pub(crate) join_repartitions: BTreeMap<usize, usize>,
    /// Stores and internal topics named from the counter (build warns about them).
    pub(crate) generated_names: Vec<String>,
    /// Sources of global stores: each with its processor forms a global store's
    /// sub-topology, run by the global task instead of a task.
    pub(crate) global_sources: Vec<usize>,
}

impl Graph {
    /// Takes the next counter value.
    pub(crate) fn next_index(&mut self) -> usize {
        let i = self.index;
        self.index += 1;
        i
    }

    /// `<prefix><10-digit index>`, Kafka's generated names.
    pub(crate) fn new_name(&mut self, prefix: &str) -> (String, usize) {
        let i = self.next_index();
        (format!("{prefix}{i:010}"), i)
    }

    /// A node name: the user's, or a generated one with `prefix`. An index is taken either
    /// way, as Kafka's `NamedInternal.orElseGenerateWithPrefix` does, so later generated
    /// names match Kafka's.
    pub(crate) fn name_or(
        &mut self,
        given: Option<String>,
        prefix: &str,
    ) -> (String, Option<usize>) {
        let (generated, i) = self.new_name(prefix);
        match given {
            Some(n) => (n, None),
            None => (generated, Some(i)),
        }
    }

    /// A store name: the user's, or a generated one with `prefix` (remembered for the
    /// build warning).
    pub(crate) fn store_name_or(&mut self, given: Option<String>, prefix: &str) -> String {
        match given {
            Some(n) => n,
            None => {
                let (n, _) = self.new_name(prefix);
                self.generated_names.push(format!("store {n}"));
                n
            }
        }
    }

    pub(crate) fn add(
        &mut self,
        name: (String, Option<usize>),
        kind: NodeKind,
        parents: &[usize],
        factory: NodeFactory,
    ) -> usize {
        self.nodes.push(GraphNode {
            name: name.0,
            kind,
            parents: parents.to_vec(),
            stores: Vec::new(),
            factory,
            writes: Vec::new(),
            generated: name.1,
        });
        self.nodes.len() - 1
    }

    /// Declares `store` (once) and connects it to `node`.
    pub(crate) fn add_store(&mut self, store: StoreBuilder, node: Option<usize>) {
        let name = store.name.clone();
        if let Some(existing) = self.stores.get(&name) {
            // The same store connected to a second node is fine (a join's shared store); a
            // different store under the same name is refused, as Kafka does.
            if !existing.same_as(&store) {
                self.errors.push(format!(
                    "a different state store has already been added with the name {name}"
                ));
            }
        } else {
            self.stores.insert(name.clone(), Arc::new(store));
        }
        if let Some(node) = node {
            self.connect(node, &name);
        }
    }

    /// Connects an existing store to `node`.
    pub(crate) fn connect(&mut self, node: usize, store: &str) {
        let stores = &mut self.nodes[node].stores;
        if !stores.iter().any(|s| s == store) {
            stores.push(store.to_string());
        }
    }

    /// Renames `node` to the user's `name`. Kafka takes an index for a named operator too,
    /// except for `process` / `process_values`: for those the index is given back when it
    /// was the last one taken, so later generated names match Kafka's.
    pub(crate) fn rename(&mut self, node: usize, name: String) {
        let n = &mut self.nodes[node];
        if let Some(i) = n.generated.take() {
            let unburned = n.name.starts_with("KSTREAM-PROCESSOR-")
                || n.name.starts_with("KSTREAM-PROCESSVALUES-");
            if unburned && i + 1 == self.index {
                self.index = i;
            }
        }
        n.name = name;
    }

    /// Records an internal topic.
    pub(crate) fn add_internal_topic(&mut self, topic: InternalTopic, generated: bool) {
        if generated {
            self.generated_names
                .push(format!("internal topic {}", topic.name.shown()));
        }
        self.internal_topics.push(topic);
    }

    /// Validates and builds the topology.
    pub(crate) fn build(self) -> Result<Topology> {
        let mut errors = self.errors;
        let mut seen = BTreeSet::new();
        let mut read_by: BTreeMap<&TopicName, &str> = BTreeMap::new();
        for n in &self.nodes {
            if !seen.insert(n.name.as_str()) {
                errors.push(format!("node name {} is used twice", n.name));
            }
            // As Kafka: one source per topic (a second one would starve: a task feeds a
            // topic's records to one source).
            if let NodeKind::Source { topics, .. } = &n.kind {
                for t in topics {
                    if let Some(first) = read_by.insert(t, n.name.as_str()) {
                        errors.push(format!(
                            "topic {} has already been registered by another source ({first}, then {}); read it once and reuse the stream",
                            t.shown(),
                            n.name
                        ));
                    }
                }
            }
            for s in &n.stores {
                if !self.stores.contains_key(s) {
                    errors.push(format!("node {} uses undeclared store {s}", n.name));
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::Topology(errors.join("; ")));
        }
        let mut nodes: Vec<NodeSpec> = self
            .nodes
            .into_iter()
            .map(|n| NodeSpec {
                name: n.name,
                kind: n.kind,
                parents: n.parents,
                children: Vec::new(),
                stores: n.stores,
                factory: n.factory,
                writes: n.writes,
            })
            .collect();
        // Parents are indices `add` returned before, so every child comes after its parents:
        // tasks run a node borrowed apart from the nodes after it (`task::node::run_node`).
        for i in 0..nodes.len() {
            for p in nodes[i].parents.clone() {
                debug_assert!(p < i, "node {i} has a parent added after it");
                nodes[p].children.push(i);
            }
        }
        let groups = split(&nodes);
        let global_stores =
            crate::task::global::global_store_groups(&groups, &self.global_sources, &nodes)?;
        let subtopologies: Vec<SubTopology> = groups
            .into_iter()
            .enumerate()
            .filter(|(id, _)| !global_stores.iter().any(|g| g.id as usize == *id))
            .map(|(id, members)| {
                let mut source_topics = Vec::new();
                let mut sink_topics = Vec::new();
                let mut stores = BTreeSet::new();
                for &m in &members {
                    match &nodes[m].kind {
                        NodeKind::Source { topics, .. } => source_topics.extend(topics.clone()),
                        NodeKind::Sink {
                            topic: SinkTopic::Fixed(t),
                        } => sink_topics.push(t.clone()),
                        _ => {}
                    }
                    sink_topics.extend(nodes[m].writes.iter().cloned());
                    stores.extend(nodes[m].stores.iter().cloned());
                }
                SubTopology {
                    id: id as u32,
                    nodes: members,
                    source_topics,
                    sink_topics,
                    stores: stores.into_iter().collect(),
                }
            })
            .collect();
        // Unset partition counts: the max of the sources of the sub-topology writing the topic.
        let mut internal_topics = self.internal_topics;
        for t in &mut internal_topics {
            if let PartitionCount::MaxOf(list) = &mut t.partitions {
                if list.is_empty() {
                    let writers = subtopologies
                        .iter()
                        .filter(|s| s.sink_topics.contains(&t.name));
                    let mut from: BTreeSet<TopicName> = BTreeSet::new();
                    for w in writers {
                        from.extend(w.source_topics.iter().cloned());
                    }
                    *list = from.into_iter().collect();
                }
            }
        }
        let warnings = if self.generated_names.is_empty() {
            Vec::new()
        } else {
            let w = format!(
                "these names were generated and change when the topology changes (name them to keep state and topics across versions): {}",
                self.generated_names.join(", ")
            );
            tracing::warn!("{w}");
            vec![w]
        };
        Ok(Topology {
            inner: Arc::new(TopologyInner {
                nodes,
                stores: self.stores,
                subtopologies,
                global_stores,
                internal_topics,
                copartition_groups: self.copartition,
                warnings,
            }),
        })
    }
}
