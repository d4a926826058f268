//! `Topology::describe()`: Kafka's `TopologyDescription`, printed in Kafka's exact text
//! format (`InternalTopologyBuilder.describe()` and the `toString`s of its description
//! classes), byte for byte.
//!
//! # How Kafka orders what it prints, and how this module reproduces it
//!
//! Kafka builds the description with Java collections, and the printed order falls out of
//! them; none of it is a plain sort by name. This module ports those collections' semantics:
//!
//! - **Sub-topology numbers** come from `makeNodeGroups`: the nodes are walked in the order
//!   they were added to the topology, and each connected component (over parent edges and
//!   shared stores) gets the next number when its first node is met. Global-store groups take
//!   their numbers from the same sequence. `topology::split` numbers components the
//!   same way.
//! - **The node lines of a sub-topology** are a `TreeSet` ordered by Kafka's
//!   `NODE_COMPARATOR` with the final sizes: larger `size` first, then by name (Java's UTF-16
//!   `String.compareTo`). A node's size is 1 plus the sizes its successors had when their
//!   edges were added — in the end the number of paths that start at the node.
//! - **The `-->` and `<--` lists** are `TreeSet`s too, but their elements were compared *when
//!   they were inserted*, while the sizes were still growing, and a `TreeSet` never re-sorts.
//!   Kafka's `describeSubtopology` connects the nodes in the iteration order of a
//!   `HashMap<String, _>` of the group's names, each node to its predecessors in the order
//!   they were given, updating the sizes up the graph after each edge. This module replays
//!   exactly that: Java's `String.hashCode`, `HashMap`'s hash spreading, bucket order and
//!   table doubling (with insertion order inside a bucket), and a port of
//!   `java.util.TreeMap.put` with its red-black rebalancing, the comparator evaluated against
//!   the sizes of that moment. The printed list is the in-order walk of that tree.
//! - **`stores: [...]` and multi-topic `topics: [...]`** print Java `HashSet`s (copies made
//!   with `new HashSet<>(collection)`, whose table is sized for the collection): bucket order
//!   of the spread hash, then the order the names were connected or listed.
//!
//! Known limits of the port: a `HashMap` bucket of a table of 64 or more buckets that holds
//! more than 8 names is turned into a tree by Java, which changes its iteration order; this
//! module keeps the list order there (it needs 9 node, store or topic names of one
//! sub-topology in one bucket). `new HashSet<>(collection)` is sized as Java 17 does
//! (`max(n / 0.75 + 1, 16)`; Java 19+ differs for exactly 12 elements). Kafka's named
//! topologies (`Topology: <name>:` header) do not exist here, nor pattern sources.
//!
//! # Sinks with a topic extractor
//!
//! Kafka prints `(extractor class: <extractor.toString()>)`: the Java class name and hash
//! unless the extractor overrides `toString`. freshet's convention: the label is the Rust
//! type name of the extractor given to [`KStream::to_dynamic`](crate::KStream::to_dynamic)
//! (`std::any::type_name`): the path of a function (`my_app::route_by_region`) or of a
//! closure (`my_app::build::{{closure}}`) — the Java class name without the unstable hash. A
//! named function therefore gives a readable, stable description.
//!
//! ```
//! use freshet_streams::{Record, StreamsBuilder};
//! fn by_key(r: &Record<String, String>) -> String {
//!     format!("out-{}", r.key)
//! }
//! let builder = StreamsBuilder::new();
//! builder.stream::<String, String>("in").to_dynamic(by_key, Default::default());
//! let text = builder.build()?.describe().to_string();
//! // The function's path, e.g. `my_app::by_key` (here inside the doc test's crate).
//! assert!(text.contains("Sink: KSTREAM-SINK-0000000001 (extractor class: "));
//! assert!(text.contains("::by_key)\n      <-- KSTREAM-SOURCE-0000000000\n"));
//! # Ok::<(), freshet_streams::Error>(())
//! ```

use std::cmp::Ordering;
use std::fmt;

use crate::topology::{NodeKind, NodeSpec, SinkTopic, Topology};

/// One node as `describe()` shows it. The name lists are in the order Kafka prints them.
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
        /// The extractor's label (its Rust type name), when the topic is chosen per record.
        extractor: Option<String>,
        /// Predecessor names.
        predecessors: Vec<String>,
    },
}

impl TopologyNodeDescription {
    /// The node's name.
    pub fn name(&self) -> &str {
        match self {
            TopologyNodeDescription::Source { name, .. }
            | TopologyNodeDescription::Processor { name, .. }
            | TopologyNodeDescription::Sink { name, .. } => name,
        }
    }
}

/// Kafka's `TopologyDescription`: sub-topologies with their nodes, and global stores.
/// `Display` prints Kafka's text.
///
/// ```
/// use freshet_streams::StreamsBuilder;
/// let builder = StreamsBuilder::new();
/// builder.stream::<String, String>("input-topic").group_by_key().count();
/// assert_eq!(
///     builder.build()?.describe().to_string(),
///     "Topologies:\n   Sub-topology: 0\n\
///     \x20   Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n\
///     \x20     --> KSTREAM-AGGREGATE-0000000002\n\
///     \x20   Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n\
///     \x20     --> none\n\
///     \x20     <-- KSTREAM-SOURCE-0000000000\n\n"
/// );
/// # Ok::<(), freshet_streams::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyDescription {
    /// `(sub-topology id, nodes in display order)`, by id.
    pub subtopologies: Vec<(u32, Vec<TopologyNodeDescription>)>,
    /// `(id, source, processor)` of each global store, by id: the source reads the global
    /// topic, the processor keeps the store (Kafka's `GlobalStore`).
    pub global_stores: Vec<(u32, TopologyNodeDescription, TopologyNodeDescription)>,
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
    /// Kafka's `TopologyDescription.toString`: sub-topologies and global stores interleaved
    /// by id (a global store is printed where the next sub-topology's id is not the expected
    /// one), then the rest of either list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn subtopology(
            f: &mut fmt::Formatter<'_>,
            (id, nodes): &(u32, Vec<TopologyNodeDescription>),
        ) -> fmt::Result {
            writeln!(f, "  Sub-topology: {id}")?;
            for node in nodes {
                writeln!(f, "    {node}")?;
            }
            f.write_str("\n")
        }
        fn global(
            f: &mut fmt::Formatter<'_>,
            (id, source, processor): &(u32, TopologyNodeDescription, TopologyNodeDescription),
        ) -> fmt::Result {
            writeln!(
                f,
                "  Sub-topology: {id} for global store (will not generate tasks)"
            )?;
            writeln!(f, "    {source}")?;
            writeln!(f, "    {processor}")
        }
        f.write_str("Topologies:\n ")?;
        let (mut subs, mut globals) = (
            self.subtopologies.iter().peekable(),
            self.global_stores.iter().peekable(),
        );
        let mut expected = 0u32;
        while let (Some(s), Some(_)) = (subs.peek(), globals.peek()) {
            if s.0 == expected {
                if let Some(s) = subs.next() {
                    subtopology(f, s)?;
                }
            } else if let Some(g) = globals.next() {
                global(f, g)?;
            }
            expected += 1;
        }
        for s in subs {
            subtopology(f, s)?;
        }
        for g in globals {
            global(f, g)?;
        }
        Ok(())
    }
}

pub(crate) fn describe(topology: &Topology) -> TopologyDescription {
    let inner = &topology.inner;
    let nodes = &inner.nodes;
    let subtopologies = inner
        .subtopologies
        .iter()
        .map(|sub| (sub.id, describe_subtopology(nodes, &sub.nodes)))
        .collect();
    // Kafka's `describeGlobalStore`: the group's source, its processor and the processor's
    // store.
    let global_stores = inner
        .global_stores
        .iter()
        .map(|g| {
            let (source, processor) = (&nodes[g.source].name, &nodes[g.processor].name);
            (
                g.id,
                TopologyNodeDescription::Source {
                    name: source.clone(),
                    topics: vec![g.topic.shown().to_string()],
                    successors: vec![processor.clone()],
                },
                TopologyNodeDescription::Processor {
                    name: processor.clone(),
                    stores: vec![g.store.clone()],
                    successors: Vec::new(),
                    predecessors: vec![source.clone()],
                },
            )
        })
        .collect();
    TopologyDescription {
        subtopologies,
        global_stores,
    }
}

/// Kafka's `describeSubtopology` (see the module docs): replays the edge insertions in Java's
/// order to get the successor and predecessor lists as Kafka prints them.
fn describe_subtopology(nodes: &[NodeSpec], group: &[usize]) -> Vec<TopologyNodeDescription> {
    // The group's `HashSet` (filled in node order), then `nodesByName` filled from it.
    let group_names: Vec<&str> = group.iter().map(|&n| nodes[n].name.as_str()).collect();
    let set_order: Vec<usize> = java_hash_order(&group_names, 16)
        .into_iter()
        .map(|i| group[i])
        .collect();
    let set_names: Vec<&str> = set_order.iter().map(|&n| nodes[n].name.as_str()).collect();
    let by_name: Vec<usize> = java_hash_order(&set_names, 16)
        .into_iter()
        .map(|i| set_order[i])
        .collect();

    let mut size: Vec<i32> = vec![1; nodes.len()];
    let mut preds: Vec<TreeSet> = vec![TreeSet::default(); nodes.len()];
    let mut succs: Vec<TreeSet> = vec![TreeSet::default(); nodes.len()];
    for &n in &by_name {
        for &p in &nodes[n].parents {
            {
                let cmp = |a: usize, b: usize| node_comparator(nodes, &size, a, b);
                preds[n].insert(p, cmp);
                succs[p].insert(n, cmp);
            }
            let delta = size[n];
            update_size(&mut size, &preds, p, delta);
        }
    }

    let mut order = group.to_vec();
    order.sort_by(|&a, &b| node_comparator(nodes, &size, a, b));
    let list = |set: &TreeSet| -> Vec<String> {
        set.in_order()
            .into_iter()
            .map(|i| nodes[i].name.clone())
            .collect()
    };
    order
        .into_iter()
        .map(|i| {
            let n = &nodes[i];
            match &n.kind {
                NodeKind::Source { topics, .. } => {
                    let shown: Vec<&str> = topics.iter().map(|t| t.shown()).collect();
                    let topics = java_hash_set_copy(&shown);
                    TopologyNodeDescription::Source {
                        name: n.name.clone(),
                        topics,
                        successors: list(&succs[i]),
                    }
                }
                NodeKind::Processor => {
                    // `ProcessorNodeFactory.stateStoreNames` (a `HashSet` filled in connection
                    // order), copied by `describe()` into a new `HashSet`.
                    let stores: Vec<&str> = n.stores.iter().map(String::as_str).collect();
                    let connected = java_hash_keys(&stores, 16);
                    TopologyNodeDescription::Processor {
                        name: n.name.clone(),
                        stores: java_hash_set_copy(&connected),
                        successors: list(&succs[i]),
                        predecessors: list(&preds[i]),
                    }
                }
                NodeKind::Sink { topic } => {
                    let (topic, extractor) = match topic {
                        SinkTopic::Fixed(t) => (Some(t.shown().to_string()), None),
                        SinkTopic::Dynamic(label) => (None, Some(label.clone())),
                    };
                    TopologyNodeDescription::Sink {
                        name: n.name.clone(),
                        topic,
                        extractor,
                        predecessors: list(&preds[i]),
                    }
                }
            }
        })
        .collect()
}

/// Kafka's `updateSize`: adds `delta` to `node` and, recursively, to every predecessor it
/// has so far (once per path, as Kafka does).
fn update_size(size: &mut [i32], preds: &[TreeSet], node: usize, delta: i32) {
    size[node] = size[node].wrapping_add(delta);
    for p in preds[node].in_order() {
        update_size(size, preds, p, delta);
    }
}

/// Kafka's `NODE_COMPARATOR` with the sizes of the moment: larger size first, then by name.
fn node_comparator(nodes: &[NodeSpec], size: &[i32], a: usize, b: usize) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    // Java: `size2 - size1` (int arithmetic), then `name1.compareTo(name2)`.
    match size[b].wrapping_sub(size[a]).cmp(&0) {
        Ordering::Equal => java_compare(&nodes[a].name, &nodes[b].name),
        o => o,
    }
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units.
fn java_compare(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `String.hashCode`.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// `HashMap.hash`: the hash code with its high half folded into the low half.
fn spread(s: &str) -> u32 {
    let h = java_string_hash(s) as u32;
    h ^ (h >> 16)
}

/// The iteration order of a `java.util.HashSet` (or `HashMap` keys) into which `keys` were
/// added in order, starting with `capacity` buckets, as indices into `keys`: bucket by bucket,
/// insertion order inside a bucket. The table doubles when the size passes 3/4 of it, and
/// also (as `treeifyBin` does for small tables) when one bucket passes 8 entries while the
/// table is under 64 buckets. Equal keys are kept once.
fn java_hash_order(keys: &[&str], capacity: usize) -> Vec<usize> {
    let hashes: Vec<u32> = keys.iter().map(|k| spread(k)).collect();
    let mut cap = capacity.max(1);
    let mut table: Vec<Vec<usize>> = vec![Vec::new(); cap];
    let resize = |table: &mut Vec<Vec<usize>>, cap: &mut usize| {
        *cap *= 2;
        let mut grown = vec![Vec::new(); *cap];
        for i in table.drain(..).flatten() {
            grown[hashes[i] as usize & (*cap - 1)].push(i);
        }
        *table = grown;
    };
    let mut size = 0usize;
    for i in 0..keys.len() {
        let b = hashes[i] as usize & (cap - 1);
        if table[b].iter().any(|&j| keys[j] == keys[i]) {
            continue;
        }
        table[b].push(i);
        if table[b].len() > 8 && cap < 64 {
            resize(&mut table, &mut cap);
        }
        size += 1;
        if size > cap / 4 * 3 {
            resize(&mut table, &mut cap);
        }
    }
    table.into_iter().flatten().collect()
}

/// `keys` reordered by [`java_hash_order`].
fn java_hash_keys<'a>(keys: &[&'a str], capacity: usize) -> Vec<&'a str> {
    java_hash_order(keys, capacity)
        .into_iter()
        .map(|i| keys[i])
        .collect()
}

/// `new HashSet<>(collection)` of `items` (in the collection's iteration order), as Java 17
/// sizes it (`max((int) (n / .75f) + 1, 16)` rounded up to a power of two), printed in its
/// iteration order.
fn java_hash_set_copy(items: &[&str]) -> Vec<String> {
    let wanted = ((items.len() as f32 / 0.75f32) as usize + 1).max(16);
    java_hash_keys(items, wanted.next_power_of_two())
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// A port of `java.util.TreeSet` over node indices (`TreeMap.put` and its red-black
/// `fixAfterInsertion`), so that elements compared with a comparator whose answers change over
/// time end up where Java puts them.
#[derive(Debug, Clone, Default)]
struct TreeSet {
    entries: Vec<Entry>,
    root: Option<usize>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: usize,
    left: Option<usize>,
    right: Option<usize>,
    parent: Option<usize>,
    red: bool,
}

impl TreeSet {
    /// `TreeSet.add`: false when `cmp` finds an equal element.
    fn insert(&mut self, key: usize, cmp: impl Fn(usize, usize) -> Ordering) -> bool {
        let Some(mut t) = self.root else {
            self.entries.push(Entry {
                key,
                left: None,
                right: None,
                parent: None,
                red: false,
            });
            self.root = Some(self.entries.len() - 1);
            return true;
        };
        let (parent, less) = loop {
            match cmp(key, self.entries[t].key) {
                Ordering::Less => match self.entries[t].left {
                    Some(l) => t = l,
                    None => break (t, true),
                },
                Ordering::Greater => match self.entries[t].right {
                    Some(r) => t = r,
                    None => break (t, false),
                },
                Ordering::Equal => return false,
            }
        };
        let e = self.entries.len();
        self.entries.push(Entry {
            key,
            left: None,
            right: None,
            parent: Some(parent),
            red: true,
        });
        if less {
            self.entries[parent].left = Some(e);
        } else {
            self.entries[parent].right = Some(e);
        }
        self.fix_after_insertion(e);
        true
    }

    /// The elements in tree order (what a Java iterator gives).
    fn in_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.entries.len());
        let mut stack = Vec::new();
        let mut cur = self.root;
        while cur.is_some() || !stack.is_empty() {
            while let Some(c) = cur {
                stack.push(c);
                cur = self.entries[c].left;
            }
            if let Some(c) = stack.pop() {
                out.push(self.entries[c].key);
                cur = self.entries[c].right;
            }
        }
        out
    }

    fn parent_of(&self, x: Option<usize>) -> Option<usize> {
        x.and_then(|x| self.entries[x].parent)
    }
    fn left_of(&self, x: Option<usize>) -> Option<usize> {
        x.and_then(|x| self.entries[x].left)
    }
    fn right_of(&self, x: Option<usize>) -> Option<usize> {
        x.and_then(|x| self.entries[x].right)
    }
    /// Java's `colorOf`: null is black.
    fn is_red(&self, x: Option<usize>) -> bool {
        x.is_some_and(|x| self.entries[x].red)
    }
    fn set_red(&mut self, x: Option<usize>, red: bool) {
        if let Some(x) = x {
            self.entries[x].red = red;
        }
    }

    fn rotate_left(&mut self, p: Option<usize>) {
        let Some(p) = p else { return };
        let Some(r) = self.entries[p].right else {
            return;
        };
        self.entries[p].right = self.entries[r].left;
        if let Some(rl) = self.entries[r].left {
            self.entries[rl].parent = Some(p);
        }
        let pp = self.entries[p].parent;
        self.entries[r].parent = pp;
        match pp {
            None => self.root = Some(r),
            Some(pp) if self.entries[pp].left == Some(p) => self.entries[pp].left = Some(r),
            Some(pp) => self.entries[pp].right = Some(r),
        }
        self.entries[r].left = Some(p);
        self.entries[p].parent = Some(r);
    }

    fn rotate_right(&mut self, p: Option<usize>) {
        let Some(p) = p else { return };
        let Some(l) = self.entries[p].left else {
            return;
        };
        self.entries[p].left = self.entries[l].right;
        if let Some(lr) = self.entries[l].right {
            self.entries[lr].parent = Some(p);
        }
        let pp = self.entries[p].parent;
        self.entries[l].parent = pp;
        match pp {
            None => self.root = Some(l),
            Some(pp) if self.entries[pp].right == Some(p) => self.entries[pp].right = Some(l),
            Some(pp) => self.entries[pp].left = Some(l),
        }
        self.entries[l].right = Some(p);
        self.entries[p].parent = Some(l);
    }

    /// `TreeMap.fixAfterInsertion`, line for line.
    fn fix_after_insertion(&mut self, x: usize) {
        let mut x = Some(x);
        self.set_red(x, true);
        while x.is_some() && x != self.root && self.is_red(self.parent_of(x)) {
            let px = self.parent_of(x);
            let gpx = self.parent_of(px);
            if px == self.left_of(gpx) {
                let y = self.right_of(gpx);
                if self.is_red(y) {
                    self.set_red(px, false);
                    self.set_red(y, false);
                    self.set_red(gpx, true);
                    x = gpx;
                } else {
                    if x == self.right_of(px) {
                        x = px;
                        self.rotate_left(x);
                    }
                    let px = self.parent_of(x);
                    self.set_red(px, false);
                    let gpx = self.parent_of(px);
                    self.set_red(gpx, true);
                    self.rotate_right(gpx);
                }
            } else {
                let y = self.left_of(gpx);
                if self.is_red(y) {
                    self.set_red(px, false);
                    self.set_red(y, false);
                    self.set_red(gpx, true);
                    x = gpx;
                } else {
                    if x == self.left_of(px) {
                        x = px;
                        self.rotate_right(x);
                    }
                    let px = self.parent_of(x);
                    self.set_red(px, false);
                    let gpx = self.parent_of(px);
                    self.set_red(gpx, true);
                    self.rotate_left(gpx);
                }
            }
        }
        let root = self.root;
        self.set_red(root, false);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::error::Result;
    use crate::record::InputRecord;
    use crate::task::node::{InFlight, Node, NodeContext};
    use crate::topology::{split, SourceDecoder, TopicName};

    #[test]
    fn java_string_hash_matches_java() {
        // "hello".hashCode() == 99162322, "".hashCode() == 0; overflow wraps.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(
            java_string_hash("KSTREAM-SOURCE-0000000000"),
            "KSTREAM-SOURCE-0000000000"
                .bytes()
                .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
        );
    }

    #[test]
    fn tree_set_with_a_fixed_order_is_sorted() {
        let mut t = TreeSet::default();
        for k in [5, 3, 8, 1, 4, 7, 9, 2, 6, 0] {
            assert!(t.insert(k, |a, b| a.cmp(&b)));
        }
        assert!(!t.insert(4, |a, b| a.cmp(&b)));
        assert_eq!(t.in_order(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn hash_order_doubles_the_table_past_three_quarters() {
        let names: Vec<String> = (0..13).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let order = java_hash_keys(&refs, 16);
        let mut buckets: Vec<u32> = order.iter().map(|s| spread(s) & 31).collect();
        let sorted = {
            let mut b = buckets.clone();
            b.sort();
            b
        };
        assert_eq!(buckets, sorted);
        buckets.dedup();
        assert_eq!(order.len(), 13);
    }

    // ---- Replays of Kafka's own expectations on the node graphs its builder writes ----

    struct NoNode;
    impl Node for NoNode {
        fn process(
            &mut self,
            _ctx: &mut NodeContext<'_>,
            _record: &mut InFlight<'_>,
        ) -> Result<()> {
            Ok(())
        }
    }
    struct NoDecoder;
    impl SourceDecoder for NoDecoder {
        fn decode(
            &self,
            _raw: &InputRecord,
            _partition_time: i64,
        ) -> std::result::Result<(crate::task::node::BoxedRecord, i64), String> {
            Err("unused".into())
        }
    }

    /// Nodes in the order Kafka's builder adds them: `("S", name, topics)` a source,
    /// `("P", name, "parent,parent|store,store")` a processor, `("K", name, "parent>topic")` a
    /// sink.
    fn graph(spec: &[(&str, &str, &str)]) -> Vec<NodeSpec> {
        let mut nodes: Vec<NodeSpec> = Vec::new();
        let index =
            |nodes: &Vec<NodeSpec>, n: &str| nodes.iter().position(|s| s.name == n).unwrap();
        for &(kind, name, rest) in spec {
            let (kind, parents, stores) = match kind {
                "S" => (
                    NodeKind::Source {
                        topics: rest
                            .split(',')
                            .map(|t| TopicName::External(t.into()))
                            .collect(),
                        decoder: Arc::new(NoDecoder),
                    },
                    vec![],
                    vec![],
                ),
                "P" => {
                    let (p, s) = rest.split_once('|').unwrap_or((rest, ""));
                    (
                        NodeKind::Processor,
                        p.split(',').map(|p| index(&nodes, p)).collect(),
                        s.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                _ => {
                    let (p, t) = rest.split_once('>').unwrap();
                    (
                        NodeKind::Sink {
                            topic: SinkTopic::Fixed(TopicName::External(t.into())),
                        },
                        vec![index(&nodes, p)],
                        vec![],
                    )
                }
            };
            nodes.push(NodeSpec {
                name: name.into(),
                kind,
                parents,
                children: vec![],
                stores,
                factory: Arc::new(|| Box::new(NoNode)),
                writes: vec![],
            });
        }
        for i in 0..nodes.len() {
            for p in nodes[i].parents.clone() {
                nodes[p].children.push(i);
            }
        }
        nodes
    }

    fn text(nodes: &[NodeSpec]) -> String {
        let subtopologies = split(nodes)
            .iter()
            .enumerate()
            .map(|(id, group)| (id as u32, describe_subtopology(nodes, group)))
            .collect();
        TopologyDescription {
            subtopologies,
            global_stores: vec![],
        }
        .to_string()
    }

    /// RepartitionTopicNamingTest, EXPECTED_UNOPTIMIZED_TOPOLOGY (Kafka's `-->` lists there are
    /// not sorted: `KSTREAM-FILTER-0000000029, KSTREAM-FILTER-0000000002, …`).
    #[test]
    fn repartition_topic_naming_unoptimized_topology() {
        let nodes = graph(&[
            ("S", "KSTREAM-SOURCE-0000000000", "input"),
            ("P", "KSTREAM-MAP-0000000001", "KSTREAM-SOURCE-0000000000"),
            ("P", "KSTREAM-FILTER-0000000002", "KSTREAM-MAP-0000000001"),
            (
                "P",
                "KSTREAM-MAPVALUES-0000000003",
                "KSTREAM-FILTER-0000000002",
            ),
            (
                "P",
                "KSTREAM-PROCESSOR-0000000004",
                "KSTREAM-MAPVALUES-0000000003",
            ),
            (
                "P",
                "count-stream-repartition-filter",
                "KSTREAM-MAP-0000000001",
            ),
            (
                "K",
                "count-stream-repartition-sink",
                "count-stream-repartition-filter>count-stream-repartition",
            ),
            (
                "S",
                "count-stream-repartition-source",
                "count-stream-repartition",
            ),
            (
                "P",
                "KSTREAM-AGGREGATE-0000000007",
                "count-stream-repartition-source|KSTREAM-AGGREGATE-STATE-STORE-0000000006",
            ),
            (
                "P",
                "KTABLE-TOSTREAM-0000000011",
                "KSTREAM-AGGREGATE-0000000007",
            ),
            (
                "K",
                "KSTREAM-SINK-0000000012",
                "KTABLE-TOSTREAM-0000000011>outputTopic_0",
            ),
            (
                "P",
                "aggregate-stream-repartition-filter",
                "KSTREAM-MAP-0000000001",
            ),
            (
                "K",
                "aggregate-stream-repartition-sink",
                "aggregate-stream-repartition-filter>aggregate-stream-repartition",
            ),
            (
                "S",
                "aggregate-stream-repartition-source",
                "aggregate-stream-repartition",
            ),
            (
                "P",
                "KSTREAM-AGGREGATE-0000000014",
                "aggregate-stream-repartition-source|KSTREAM-AGGREGATE-STATE-STORE-0000000013",
            ),
            (
                "P",
                "KTABLE-TOSTREAM-0000000018",
                "KSTREAM-AGGREGATE-0000000014",
            ),
            (
                "K",
                "KSTREAM-SINK-0000000019",
                "KTABLE-TOSTREAM-0000000018>outputTopic_1",
            ),
            ("P", "KSTREAM-FILTER-0000000020", "KSTREAM-MAP-0000000001"),
            ("P", "KSTREAM-PEEK-0000000021", "KSTREAM-FILTER-0000000020"),
            (
                "P",
                "reduced-stream-repartition-filter",
                "KSTREAM-PEEK-0000000021",
            ),
            (
                "K",
                "reduced-stream-repartition-sink",
                "reduced-stream-repartition-filter>reduced-stream-repartition",
            ),
            (
                "S",
                "reduced-stream-repartition-source",
                "reduced-stream-repartition",
            ),
            (
                "P",
                "KSTREAM-REDUCE-0000000023",
                "reduced-stream-repartition-source|KSTREAM-REDUCE-STATE-STORE-0000000022",
            ),
            (
                "P",
                "KTABLE-TOSTREAM-0000000027",
                "KSTREAM-REDUCE-0000000023",
            ),
            (
                "K",
                "KSTREAM-SINK-0000000028",
                "KTABLE-TOSTREAM-0000000027>outputTopic_2",
            ),
            ("P", "KSTREAM-FILTER-0000000029", "KSTREAM-MAP-0000000001"),
            (
                "P",
                "joined-stream-left-repartition-filter",
                "KSTREAM-FILTER-0000000029",
            ),
            (
                "K",
                "joined-stream-left-repartition-sink",
                "joined-stream-left-repartition-filter>joined-stream-left-repartition",
            ),
            (
                "S",
                "joined-stream-left-repartition-source",
                "joined-stream-left-repartition",
            ),
            (
                "P",
                "joined-stream-this-windowed",
                "joined-stream-left-repartition-source|joined-stream-this-join-store",
            ),
            (
                "P",
                "joined-stream-other-windowed",
                "KTABLE-TOSTREAM-0000000011|joined-stream-other-join-store",
            ),
            (
                "P",
                "joined-stream-this-join",
                "joined-stream-this-windowed|joined-stream-other-join-store",
            ),
            (
                "P",
                "joined-stream-other-join",
                "joined-stream-other-windowed|joined-stream-this-join-store",
            ),
            (
                "P",
                "joined-stream-merge",
                "joined-stream-this-join,joined-stream-other-join",
            ),
            (
                "K",
                "KSTREAM-SINK-0000000038",
                "joined-stream-merge>outputTopicForJoin",
            ),
        ]);
        assert_eq!(text(&nodes), EXPECTED_UNOPTIMIZED);
    }

    /// KStreamKStreamJoinTest, expectedTopologyWithGeneratedRepartitionTopic: the second join
    /// of the same re-keyed stream reuses the first repartition source.
    #[test]
    fn stream_stream_join_with_generated_repartition_topic() {
        let nodes = graph(&[
            ("S", "KSTREAM-SOURCE-0000000000", "topic"),
            ("S", "KSTREAM-SOURCE-0000000001", "topic2"),
            ("S", "KSTREAM-SOURCE-0000000002", "topic3"),
            ("P", "KSTREAM-MAP-0000000003", "KSTREAM-SOURCE-0000000000"),
            ("P", "KSTREAM-FILTER-0000000005", "KSTREAM-MAP-0000000003"),
            (
                "K",
                "KSTREAM-SINK-0000000004",
                "KSTREAM-FILTER-0000000005>KSTREAM-MAP-0000000003-repartition",
            ),
            (
                "S",
                "KSTREAM-SOURCE-0000000006",
                "KSTREAM-MAP-0000000003-repartition",
            ),
            (
                "P",
                "KSTREAM-WINDOWED-0000000007",
                "KSTREAM-SOURCE-0000000006|KSTREAM-JOINTHIS-0000000009-store",
            ),
            (
                "P",
                "KSTREAM-WINDOWED-0000000008",
                "KSTREAM-SOURCE-0000000001|KSTREAM-JOINOTHER-0000000010-store",
            ),
            (
                "P",
                "KSTREAM-JOINTHIS-0000000009",
                "KSTREAM-WINDOWED-0000000007|KSTREAM-JOINOTHER-0000000010-store",
            ),
            (
                "P",
                "KSTREAM-JOINOTHER-0000000010",
                "KSTREAM-WINDOWED-0000000008|KSTREAM-JOINTHIS-0000000009-store",
            ),
            (
                "P",
                "KSTREAM-MERGE-0000000011",
                "KSTREAM-JOINTHIS-0000000009,KSTREAM-JOINOTHER-0000000010",
            ),
            (
                "K",
                "KSTREAM-SINK-0000000012",
                "KSTREAM-MERGE-0000000011>out-one",
            ),
            (
                "P",
                "KSTREAM-WINDOWED-0000000016",
                "KSTREAM-SOURCE-0000000006|KSTREAM-JOINTHIS-0000000018-store",
            ),
            (
                "P",
                "KSTREAM-WINDOWED-0000000017",
                "KSTREAM-SOURCE-0000000002|KSTREAM-JOINOTHER-0000000019-store",
            ),
            (
                "P",
                "KSTREAM-JOINTHIS-0000000018",
                "KSTREAM-WINDOWED-0000000016|KSTREAM-JOINOTHER-0000000019-store",
            ),
            (
                "P",
                "KSTREAM-JOINOTHER-0000000019",
                "KSTREAM-WINDOWED-0000000017|KSTREAM-JOINTHIS-0000000018-store",
            ),
            (
                "P",
                "KSTREAM-MERGE-0000000020",
                "KSTREAM-JOINTHIS-0000000018,KSTREAM-JOINOTHER-0000000019",
            ),
            (
                "K",
                "KSTREAM-SINK-0000000021",
                "KSTREAM-MERGE-0000000020>out-to",
            ),
        ]);
        assert_eq!(text(&nodes), EXPECTED_GENERATED_REPARTITION_JOIN);
    }

    /// TopologyTest.streamStreamOuterJoinTopologyWithCustomStoresSuppliers: store sets in
    /// `HashSet` order (`[in-memory-join-store-outer-shared-join-store, in-memory-join-store]`).
    #[test]
    fn outer_join_store_sets_print_in_hash_set_order() {
        let nodes = graph(&[
            ("S", "KSTREAM-SOURCE-0000000000", "input-topic1"),
            ("S", "KSTREAM-SOURCE-0000000001", "input-topic2"),
            ("P", "KSTREAM-WINDOWED-0000000002", "KSTREAM-SOURCE-0000000000|in-memory-join-store"),
            ("P", "KSTREAM-WINDOWED-0000000003", "KSTREAM-SOURCE-0000000001|in-memory-join-store-other"),
            ("P", "KSTREAM-OUTERTHIS-0000000004", "KSTREAM-WINDOWED-0000000002|in-memory-join-store-other,in-memory-join-store-outer-shared-join-store"),
            ("P", "KSTREAM-OUTEROTHER-0000000005", "KSTREAM-WINDOWED-0000000003|in-memory-join-store,in-memory-join-store-outer-shared-join-store"),
            ("P", "KSTREAM-MERGE-0000000006", "KSTREAM-OUTERTHIS-0000000004,KSTREAM-OUTEROTHER-0000000005"),
        ]);
        assert_eq!(text(&nodes), EXPECTED_OUTER_JOIN_SUPPLIERS);
    }

    const EXPECTED_UNOPTIMIZED: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-MAP-0000000001
    Processor: KSTREAM-MAP-0000000001 (stores: [])
      --> KSTREAM-FILTER-0000000029, KSTREAM-FILTER-0000000002, KSTREAM-FILTER-0000000020, aggregate-stream-repartition-filter, count-stream-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-FILTER-0000000020 (stores: [])
      --> KSTREAM-PEEK-0000000021
      <-- KSTREAM-MAP-0000000001
    Processor: KSTREAM-FILTER-0000000002 (stores: [])
      --> KSTREAM-MAPVALUES-0000000003
      <-- KSTREAM-MAP-0000000001
    Processor: KSTREAM-FILTER-0000000029 (stores: [])
      --> joined-stream-left-repartition-filter
      <-- KSTREAM-MAP-0000000001
    Processor: KSTREAM-PEEK-0000000021 (stores: [])
      --> reduced-stream-repartition-filter
      <-- KSTREAM-FILTER-0000000020
    Processor: KSTREAM-MAPVALUES-0000000003 (stores: [])
      --> KSTREAM-PROCESSOR-0000000004
      <-- KSTREAM-FILTER-0000000002
    Processor: aggregate-stream-repartition-filter (stores: [])
      --> aggregate-stream-repartition-sink
      <-- KSTREAM-MAP-0000000001
    Processor: count-stream-repartition-filter (stores: [])
      --> count-stream-repartition-sink
      <-- KSTREAM-MAP-0000000001
    Processor: joined-stream-left-repartition-filter (stores: [])
      --> joined-stream-left-repartition-sink
      <-- KSTREAM-FILTER-0000000029
    Processor: reduced-stream-repartition-filter (stores: [])
      --> reduced-stream-repartition-sink
      <-- KSTREAM-PEEK-0000000021
    Processor: KSTREAM-PROCESSOR-0000000004 (stores: [])
      --> none
      <-- KSTREAM-MAPVALUES-0000000003
    Sink: aggregate-stream-repartition-sink (topic: aggregate-stream-repartition)
      <-- aggregate-stream-repartition-filter
    Sink: count-stream-repartition-sink (topic: count-stream-repartition)
      <-- count-stream-repartition-filter
    Sink: joined-stream-left-repartition-sink (topic: joined-stream-left-repartition)
      <-- joined-stream-left-repartition-filter
    Sink: reduced-stream-repartition-sink (topic: reduced-stream-repartition)
      <-- reduced-stream-repartition-filter

  Sub-topology: 1
    Source: count-stream-repartition-source (topics: [count-stream-repartition])
      --> KSTREAM-AGGREGATE-0000000007
    Processor: KSTREAM-AGGREGATE-0000000007 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000006])
      --> KTABLE-TOSTREAM-0000000011
      <-- count-stream-repartition-source
    Processor: KTABLE-TOSTREAM-0000000011 (stores: [])
      --> KSTREAM-SINK-0000000012, joined-stream-other-windowed
      <-- KSTREAM-AGGREGATE-0000000007
    Source: joined-stream-left-repartition-source (topics: [joined-stream-left-repartition])
      --> joined-stream-this-windowed
    Processor: joined-stream-other-windowed (stores: [joined-stream-other-join-store])
      --> joined-stream-other-join
      <-- KTABLE-TOSTREAM-0000000011
    Processor: joined-stream-this-windowed (stores: [joined-stream-this-join-store])
      --> joined-stream-this-join
      <-- joined-stream-left-repartition-source
    Processor: joined-stream-other-join (stores: [joined-stream-this-join-store])
      --> joined-stream-merge
      <-- joined-stream-other-windowed
    Processor: joined-stream-this-join (stores: [joined-stream-other-join-store])
      --> joined-stream-merge
      <-- joined-stream-this-windowed
    Processor: joined-stream-merge (stores: [])
      --> KSTREAM-SINK-0000000038
      <-- joined-stream-this-join, joined-stream-other-join
    Sink: KSTREAM-SINK-0000000012 (topic: outputTopic_0)
      <-- KTABLE-TOSTREAM-0000000011
    Sink: KSTREAM-SINK-0000000038 (topic: outputTopicForJoin)
      <-- joined-stream-merge

  Sub-topology: 2
    Source: aggregate-stream-repartition-source (topics: [aggregate-stream-repartition])
      --> KSTREAM-AGGREGATE-0000000014
    Processor: KSTREAM-AGGREGATE-0000000014 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000013])
      --> KTABLE-TOSTREAM-0000000018
      <-- aggregate-stream-repartition-source
    Processor: KTABLE-TOSTREAM-0000000018 (stores: [])
      --> KSTREAM-SINK-0000000019
      <-- KSTREAM-AGGREGATE-0000000014
    Sink: KSTREAM-SINK-0000000019 (topic: outputTopic_1)
      <-- KTABLE-TOSTREAM-0000000018

  Sub-topology: 3
    Source: reduced-stream-repartition-source (topics: [reduced-stream-repartition])
      --> KSTREAM-REDUCE-0000000023
    Processor: KSTREAM-REDUCE-0000000023 (stores: [KSTREAM-REDUCE-STATE-STORE-0000000022])
      --> KTABLE-TOSTREAM-0000000027
      <-- reduced-stream-repartition-source
    Processor: KTABLE-TOSTREAM-0000000027 (stores: [])
      --> KSTREAM-SINK-0000000028
      <-- KSTREAM-REDUCE-0000000023
    Sink: KSTREAM-SINK-0000000028 (topic: outputTopic_2)
      <-- KTABLE-TOSTREAM-0000000027

"#;

    const EXPECTED_GENERATED_REPARTITION_JOIN: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000003
    Processor: KSTREAM-MAP-0000000003 (stores: [])
      --> KSTREAM-FILTER-0000000005
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-FILTER-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-MAP-0000000003
    Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-MAP-0000000003-repartition)
      <-- KSTREAM-FILTER-0000000005

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KSTREAM-MAP-0000000003-repartition])
      --> KSTREAM-WINDOWED-0000000007, KSTREAM-WINDOWED-0000000016
    Source: KSTREAM-SOURCE-0000000001 (topics: [topic2])
      --> KSTREAM-WINDOWED-0000000008
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic3])
      --> KSTREAM-WINDOWED-0000000017
    Processor: KSTREAM-WINDOWED-0000000007 (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> KSTREAM-JOINTHIS-0000000009
      <-- KSTREAM-SOURCE-0000000006
    Processor: KSTREAM-WINDOWED-0000000008 (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> KSTREAM-JOINOTHER-0000000010
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-WINDOWED-0000000016 (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> KSTREAM-JOINTHIS-0000000018
      <-- KSTREAM-SOURCE-0000000006
    Processor: KSTREAM-WINDOWED-0000000017 (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> KSTREAM-JOINOTHER-0000000019
      <-- KSTREAM-SOURCE-0000000002
    Processor: KSTREAM-JOINOTHER-0000000010 (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> KSTREAM-MERGE-0000000011
      <-- KSTREAM-WINDOWED-0000000008
    Processor: KSTREAM-JOINOTHER-0000000019 (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> KSTREAM-MERGE-0000000020
      <-- KSTREAM-WINDOWED-0000000017
    Processor: KSTREAM-JOINTHIS-0000000009 (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> KSTREAM-MERGE-0000000011
      <-- KSTREAM-WINDOWED-0000000007
    Processor: KSTREAM-JOINTHIS-0000000018 (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> KSTREAM-MERGE-0000000020
      <-- KSTREAM-WINDOWED-0000000016
    Processor: KSTREAM-MERGE-0000000011 (stores: [])
      --> KSTREAM-SINK-0000000012
      <-- KSTREAM-JOINTHIS-0000000009, KSTREAM-JOINOTHER-0000000010
    Processor: KSTREAM-MERGE-0000000020 (stores: [])
      --> KSTREAM-SINK-0000000021
      <-- KSTREAM-JOINTHIS-0000000018, KSTREAM-JOINOTHER-0000000019
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- KSTREAM-MERGE-0000000011
    Sink: KSTREAM-SINK-0000000021 (topic: out-to)
      <-- KSTREAM-MERGE-0000000020

"#;

    const EXPECTED_OUTER_JOIN_SUPPLIERS: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [in-memory-join-store])
      --> KSTREAM-OUTERTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [in-memory-join-store-other])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [in-memory-join-store-outer-shared-join-store, in-memory-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-OUTERTHIS-0000000004 (stores: [in-memory-join-store-other, in-memory-join-store-outer-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-OUTERTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

"#;
}
