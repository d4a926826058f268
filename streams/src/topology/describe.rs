//! `Topology::describe()`: Kafka's `TopologyDescription`, printed in Kafka's exact text
//! format (`InternalTopologyBuilder`'s `toString`s).
//!
//! Within a sub-topology nodes are listed by the size of their subtree (largest first), then
//! by name; successors and predecessors by name.

use std::fmt;

use crate::topology::{NodeKind, SinkTopic, Topology};

/// One node as `describe()` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologyNodeDescription {
    /// A source: the topics it reads.
    Source {
        /// Node name.
        name: String,
        /// Topics, as named in the topology (internal ones without the application id).
        topics: Vec<String>,
        /// Successor names.
        successors: Vec<String>,
    },
    /// A processor and its stores.
    Processor {
        /// Node name.
        name: String,
        /// Store names.
        stores: Vec<String>,
        /// Successor names.
        successors: Vec<String>,
        /// Predecessor names.
        predecessors: Vec<String>,
    },
    /// A sink: its topic, or the label of its topic extractor.
    Sink {
        /// Node name.
        name: String,
        /// The topic, when fixed.
        topic: Option<String>,
        /// The extractor's label, when the topic is chosen per record.
        extractor: Option<String>,
        /// Predecessor names.
        predecessors: Vec<String>,
    },
}

/// Kafka's `TopologyDescription`: sub-topologies and their nodes. `Display` prints Kafka's
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyDescription {
    /// `(sub-topology id, nodes in display order)`.
    pub subtopologies: Vec<(u32, Vec<TopologyNodeDescription>)>,
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

impl fmt::Display for TopologyNodeDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologyNodeDescription::Source {
                name,
                topics,
                successors,
            } => write!(
                f,
                "Source: {name} (topics: [{}])\n      --> {}",
                topics.join(", "),
                names(successors)
            ),
            TopologyNodeDescription::Processor {
                name,
                stores,
                successors,
                predecessors,
            } => write!(
                f,
                "Processor: {name} (stores: [{}])\n      --> {}\n      <-- {}",
                stores.join(", "),
                names(successors),
                names(predecessors)
            ),
            TopologyNodeDescription::Sink {
                name,
                topic,
                extractor,
                predecessors,
            } => {
                match (topic, extractor) {
                    (Some(t), _) => write!(f, "Sink: {name} (topic: {t})")?,
                    (None, Some(e)) => write!(f, "Sink: {name} (extractor class: {e})")?,
                    (None, None) => write!(f, "Sink: {name} (topic: null)")?,
                }
                write!(f, "\n      <-- {}", names(predecessors))
            }
        }
    }
}

impl fmt::Display for TopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Topologies:\n ")?;
        for (id, nodes) in &self.subtopologies {
            writeln!(f, "  Sub-topology: {id}")?;
            for node in nodes {
                writeln!(f, "    {node}")?;
            }
            f.write_str("\n")?;
        }
        Ok(())
    }
}

pub(crate) fn describe(topology: &Topology) -> TopologyDescription {
    let nodes = &topology.inner.nodes;
    // Subtree sizes, counting a node once per path (as Kafka adds sizes up the graph).
    let mut size = vec![0usize; nodes.len()];
    for i in (0..nodes.len()).rev() {
        size[i] = 1 + nodes[i].children.iter().map(|&c| size[c]).sum::<usize>();
    }
    let sorted_names = |idx: &[usize]| {
        let mut v: Vec<String> = idx.iter().map(|&i| nodes[i].name.clone()).collect();
        v.sort();
        v
    };
    let mut subtopologies = Vec::new();
    for sub in &topology.inner.subtopologies {
        let mut order = sub.nodes.clone();
        order.sort_by(|&a, &b| {
            size[b]
                .cmp(&size[a])
                .then_with(|| nodes[a].name.cmp(&nodes[b].name))
        });
        let described = order
            .iter()
            .map(|&i| {
                let n = &nodes[i];
                match &n.kind {
                    NodeKind::Source { topics, .. } => TopologyNodeDescription::Source {
                        name: n.name.clone(),
                        topics: topics.iter().map(|t| t.shown().to_string()).collect(),
                        successors: sorted_names(&n.children),
                    },
                    NodeKind::Processor => TopologyNodeDescription::Processor {
                        name: n.name.clone(),
                        stores: n.stores.clone(),
                        successors: sorted_names(&n.children),
                        predecessors: sorted_names(&n.parents),
                    },
                    NodeKind::Sink { topic } => {
                        let (topic, extractor) = match topic {
                            SinkTopic::Fixed(t) => (Some(t.shown().to_string()), None),
                            SinkTopic::Dynamic(label) => (None, Some(label.clone())),
                        };
                        TopologyNodeDescription::Sink {
                            name: n.name.clone(),
                            topic,
                            extractor,
                            predecessors: sorted_names(&n.parents),
                        }
                    }
                }
            })
            .collect();
        subtopologies.push((sub.id, described));
    }
    TopologyDescription { subtopologies }
}
