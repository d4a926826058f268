//! Branches: [`KStream::split`] into a [`BranchedKStream`] (Kafka's `BranchedKStream`), whose
//! branches each get the records of their predicate.
//!
//! A record goes to the first branch whose predicate it matches, else to the default branch
//! if there is one, else it is dropped. Each branch is a pass-through node named
//! `<split name><index>` (index 1, 2, … in `branch` order; the default branch is
//! `<split name>0`) or `<split name><branch name>` with [`Branched::named`]; the split node is
//! `KSTREAM-BRANCH-<n>` unless named with [`KStream::split_named`]. As in Kafka, every branch
//! takes one index from the name counter, named or not, and a branch's chain function runs
//! when the branch is added (so the nodes it adds come before the next branch's).
//!
//! ```
//! use freshet_streams::{Branched, StreamsBuilder, testing::TopologyTestDriver};
//! let builder = StreamsBuilder::new();
//! let branches = builder
//!     .stream::<String, i64>("amounts")
//!     .split_named("amount-")
//!     .branch(|_, v| *v < 0, Branched::named("negative"))
//!     .branch(|_, v| *v > 1000, Branched::named("large"))
//!     .default_branch(Branched::named("normal"));
//! branches["amount-negative"].to("refunds");
//! branches["amount-large"].to("review");
//! branches["amount-normal"].to("ok");
//! let driver = TopologyTestDriver::new(builder.build()?)?;
//! let input = driver.input::<String, i64>("amounts");
//! input.pipe("a".into(), -5, 0)?;
//! input.pipe("b".into(), 5000, 1)?;
//! input.pipe("c".into(), 10, 2)?;
//! assert_eq!(driver.output::<String, i64>("refunds").read_values()?, vec![-5]);
//! assert_eq!(driver.output::<String, i64>("review").read_values()?, vec![5000]);
//! assert_eq!(driver.output::<String, i64>("ok").read_values()?, vec![10]);
//! # Ok::<(), freshet_streams::Error>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::dsl::kstream::KStream;
use crate::ops::branch::{BranchNode, BranchPredicate};
use crate::ops::stateless::stateless;
use crate::record::Record;
use crate::task::node::Data;
use crate::topology::NodeKind;

/// A chain function: what the branch becomes.
type ChainFunction<'b, K, V> = Box<dyn FnOnce(KStream<'b, K, V>) -> KStream<'b, K, V> + 'b>;

/// What to do with a branch once it is made.
enum Chain<'b, K, V> {
    /// Keep the branch as it is.
    None,
    /// Replace it with what the function makes of it.
    Function(ChainFunction<'b, K, V>),
    /// Hand it to the consumer; it is left out of the result.
    Consumer(Box<dyn FnOnce(KStream<'b, K, V>) + 'b>),
}

/// How a branch is named and what is done with it (Kafka's `Branched`): a name suffix, and a
/// chain function (its result goes in the branch map) or a chain consumer (the branch is
/// then left out of the map).
///
/// A chain closure needs its parameter's type written out (`|s: KStream<K, V>| …`), or a
/// function: Rust infers a closure's parameter types where the closure is written, before
/// the `Branched` reaches [`BranchedKStream::branch`]. Kafka's chain function returning
/// `null` (no map entry) is [`Branched::with_consumer`].
///
/// ```
/// use freshet_streams::{Branched, KStream, StreamsBuilder, testing::TopologyTestDriver};
/// let builder = StreamsBuilder::new();
/// let branches = builder
///     .stream::<String, String>("in")
///     .split()
///     .branch(
///         |_, v| v.starts_with('!'),
///         Branched::with_consumer(|alerts: KStream<String, String>| alerts.to("alerts"))
///             .with_name("alerts"),
///     )
///     .default_branch(Branched::with_function(|rest: KStream<String, String>| {
///         rest.map_values(|v| v.to_uppercase())
///     }));
/// // The consumed branch is not in the map; the default branch is the mapped stream.
/// assert_eq!(branches.keys().collect::<Vec<_>>(), vec!["KSTREAM-BRANCH-00000000010"]);
/// branches["KSTREAM-BRANCH-00000000010"].to("rest");
/// let driver = TopologyTestDriver::new(builder.build()?)?;
/// let input = driver.input::<String, String>("in");
/// input.pipe("k".into(), "!fire".into(), 0)?;
/// input.pipe("k".into(), "calm".into(), 1)?;
/// assert_eq!(driver.output::<String, String>("alerts").read_values()?, vec!["!fire"]);
/// assert_eq!(driver.output::<String, String>("rest").read_values()?, vec!["CALM"]);
/// # Ok::<(), freshet_streams::Error>(())
/// ```
pub struct Branched<'b, K, V> {
    name: Option<String>,
    chain: Chain<'b, K, V>,
}

impl<K, V> std::fmt::Debug for Branched<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = match self.chain {
            Chain::None => "none",
            Chain::Function(_) => "function",
            Chain::Consumer(_) => "consumer",
        };
        f.debug_struct("Branched")
            .field("name", &self.name)
            .field("chain", &chain)
            .finish()
    }
}

impl<K, V> Default for Branched<'_, K, V> {
    fn default() -> Self {
        Branched {
            name: None,
            chain: Chain::None,
        }
    }
}

impl<'b, K, V> Branched<'b, K, V> {
    /// No name suffix (the branch's index is used) and no chain.
    ///
    /// ```
    /// use freshet_streams::{Branched, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split_named("b")
    ///     .branch(|_, v| *v > 0, Branched::new())
    ///     .no_default_branch();
    /// branches["b1"].to("positive");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe("k".into(), 3, 0)?;
    /// assert_eq!(driver.output::<String, i64>("positive").read_values()?, vec![3]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn new() -> Self {
        Branched::default()
    }

    /// A branch named `<split name><name>` (Kafka's `Branched.as`).
    ///
    /// ```
    /// use freshet_streams::{Branched, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split_named("sign-")
    ///     .branch(|_, v| *v < 0, Branched::named("negative"))
    ///     .no_default_branch();
    /// branches["sign-negative"].to("negative");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe("k".into(), -3, 0)?;
    /// assert_eq!(driver.output::<String, i64>("negative").read_values()?, vec![-3]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Branched {
            name: Some(name.into()),
            chain: Chain::None,
        }
    }

    /// A branch replaced by what `chain` makes of it; the result is what the branch map
    /// holds under the branch's name (Kafka's `Branched.withFunction`).
    ///
    /// ```
    /// use freshet_streams::{Branched, KStream, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split_named("s")
    ///     .branch(
    ///         |_, v| *v < 0,
    ///         Branched::with_function(|s: KStream<String, i64>| s.map_values(|v| -v)),
    ///     )
    ///     .no_default_branch();
    /// branches["s1"].to("absolute");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe("k".into(), -3, 0)?;
    /// assert_eq!(driver.output::<String, i64>("absolute").read_values()?, vec![3]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_function(chain: impl FnOnce(KStream<'b, K, V>) -> KStream<'b, K, V> + 'b) -> Self {
        Branched {
            name: None,
            chain: Chain::Function(Box::new(chain)),
        }
    }

    /// A branch handed to `chain` and left out of the branch map (Kafka's
    /// `Branched.withConsumer`).
    ///
    /// ```
    /// use freshet_streams::{Branched, KStream, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split()
    ///     .branch(|_, v| *v < 0, Branched::with_consumer(|s: KStream<String, i64>| s.to("neg")))
    ///     .no_default_branch();
    /// assert!(branches.is_empty());
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe("k".into(), -3, 0)?;
    /// assert_eq!(driver.output::<String, i64>("neg").read_values()?, vec![-3]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_consumer(chain: impl FnOnce(KStream<'b, K, V>) + 'b) -> Self {
        Branched {
            name: None,
            chain: Chain::Consumer(Box::new(chain)),
        }
    }

    /// Sets the name suffix (Kafka's `withName`).
    ///
    /// ```
    /// use freshet_streams::{Branched, KStream, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split_named("s-")
    ///     .branch(
    ///         |_, v| *v > 9,
    ///         Branched::with_function(|s: KStream<String, i64>| s.map_values(|v| v / 10))
    ///             .with_name("tens"),
    ///     )
    ///     .no_default_branch();
    /// branches["s-tens"].to("tens");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe("k".into(), 42, 0)?;
    /// assert_eq!(driver.output::<String, i64>("tens").read_values()?, vec![4]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A stream being split into branches (Kafka's `BranchedKStream`), made by
/// [`KStream::split`]. Add branches with [`branch`](Self::branch), then finish with
/// [`default_branch`](Self::default_branch) or [`no_default_branch`](Self::no_default_branch),
/// which give the branches by name.
pub struct BranchedKStream<'b, K, V> {
    source: KStream<'b, K, V>,
    /// The split node.
    splitter: usize,
    name: String,
    predicates: Vec<BranchPredicate<K, V>>,
    children: Vec<String>,
    branches: BTreeMap<String, KStream<'b, K, V>>,
}

impl<K, V> std::fmt::Debug for BranchedKStream<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BranchedKStream")
            .field("name", &self.name)
            .field("children", &self.children)
            .finish()
    }
}

impl<'b, K: Data, V: Data> KStream<'b, K, V> {
    /// Splits the stream into branches (Kafka's `split()`): the split node is
    /// `KSTREAM-BRANCH-<n>` and the branches `KSTREAM-BRANCH-<n><index>`.
    ///
    /// ```
    /// use freshet_streams::{Branched, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split()
    ///     .branch(|_, v| v % 2 == 0, Branched::new())
    ///     .no_default_branch();
    /// // Split node KSTREAM-BRANCH-0000000001, its first branch ...-00000000011.
    /// branches["KSTREAM-BRANCH-00000000011"].to("even");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("in");
    /// input.pipe("a".into(), 1, 0)?;
    /// input.pipe("a".into(), 2, 1)?;
    /// assert_eq!(driver.output::<String, i64>("even").read_values()?, vec![2]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn split(&self) -> BranchedKStream<'b, K, V> {
        self.split_inner(None)
    }

    /// [`split`](Self::split) with the split node named `name` (Kafka's
    /// `split(Named.as(name))`); the branches are `<name><index>` or `<name><branch name>`.
    ///
    /// ```
    /// use freshet_streams::{Branched, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, String>("in")
    ///     .split_named("by-size-")
    ///     .branch(|_, v| v.len() > 3, Branched::named("long"))
    ///     .default_branch(Branched::new());
    /// branches["by-size-long"].to("long");
    /// branches["by-size-0"].to("short");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, String>("in");
    /// input.pipe("k".into(), "tiny".into(), 0)?;
    /// input.pipe("k".into(), "ab".into(), 1)?;
    /// assert_eq!(driver.output::<String, String>("long").read_values()?, vec!["tiny"]);
    /// assert_eq!(driver.output::<String, String>("short").read_values()?, vec!["ab"]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn split_named(&self, name: impl Into<String>) -> BranchedKStream<'b, K, V> {
        self.split_inner(Some(name.into()))
    }

    fn split_inner(&self, name: Option<String>) -> BranchedKStream<'b, K, V> {
        let splitter = {
            let mut g = self.builder.graph.borrow_mut();
            let name = g.name_or(name, "KSTREAM-BRANCH-");
            let node = BranchNode::<K, V> {
                predicates: Vec::new(),
                children: Vec::new(),
            };
            g.add(
                name,
                NodeKind::Processor,
                &[self.node],
                Arc::new(move || Box::new(node.clone())),
            )
        };
        let name = self.builder.graph.borrow().nodes[splitter].name.clone();
        BranchedKStream {
            source: self.clone(),
            splitter,
            name,
            predicates: Vec::new(),
            children: Vec::new(),
            branches: BTreeMap::new(),
        }
    }
}

impl<'b, K: Data, V: Data> BranchedKStream<'b, K, V> {
    /// Adds a branch for the records that match `predicate` and no earlier branch's (Kafka's
    /// `branch(predicate, branched)`); pass [`Branched::new`] for no name and no chain.
    ///
    /// ```
    /// use freshet_streams::{Branched, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split_named("s")
    ///     .branch(|_, v| *v > 10, Branched::new())
    ///     .branch(|_, v| *v > 5, Branched::new())
    ///     .no_default_branch();
    /// branches["s1"].to("over-10");
    /// branches["s2"].to("over-5");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let input = driver.input::<String, i64>("in");
    /// input.pipe("k".into(), 20, 0)?; // first matching branch only
    /// input.pipe("k".into(), 7, 1)?;
    /// input.pipe("k".into(), 1, 2)?; // no branch: dropped
    /// assert_eq!(driver.output::<String, i64>("over-10").read_values()?, vec![20]);
    /// assert_eq!(driver.output::<String, i64>("over-5").read_values()?, vec![7]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn branch(
        mut self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        branched: Branched<'b, K, V>,
    ) -> Self {
        self.predicates.push(Arc::new(predicate));
        let index = self.predicates.len();
        self.add_branch(branched, index);
        self
    }

    /// Adds the default branch, for the records no predicate matched (named
    /// `<split name>0` unless named), and returns the branches by name (Kafka's
    /// `defaultBranch`).
    ///
    /// ```
    /// use freshet_streams::{Branched, StreamsBuilder, testing::TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split_named("s")
    ///     .branch(|_, v| *v > 0, Branched::named("-positive"))
    ///     .default_branch(Branched::new());
    /// assert_eq!(branches.keys().collect::<Vec<_>>(), vec!["s-positive", "s0"]);
    /// branches["s0"].to("other");
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// driver.input::<String, i64>("in").pipe("k".into(), -1, 0)?;
    /// assert_eq!(driver.output::<String, i64>("other").read_values()?, vec![-1]);
    /// # Ok::<(), freshet_streams::Error>(())
    /// ```
    pub fn default_branch(
        mut self,
        branched: Branched<'b, K, V>,
    ) -> BTreeMap<String, KStream<'b, K, V>> {
        self.add_branch(branched, 0);
        self.branches
    }

    /// Returns the branches by name, with no default branch: records no predicate matched
    /// are dropped (Kafka's `noDefaultBranch`).
    ///
    /// ```
    /// use freshet_streams::{Branched, StreamsBuilder};
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("in")
    ///     .split()
    ///     .branch(|_, v| *v > 0, Branched::new())
    ///     .no_default_branch();
    /// assert_eq!(branches.len(), 1);
    /// ```
    pub fn no_default_branch(self) -> BTreeMap<String, KStream<'b, K, V>> {
        self.branches
    }

    /// Kafka's `createBranch`: names the branch, burns an index, adds the pass-through node
    /// under the splitter, then applies the chain.
    fn add_branch(&mut self, branched: Branched<'b, K, V>, index: usize) {
        let child = match &branched.name {
            Some(n) => format!("{}{n}", self.name),
            None => format!("{}{index}", self.name),
        };
        self.children.push(child.clone());
        let builder = self.source.builder;
        let node = {
            let mut g = builder.graph.borrow_mut();
            g.next_index();
            let node = g.add(
                (child.clone(), None),
                NodeKind::Processor,
                &[self.splitter],
                stateless(|ctx, r: Record<K, V>| ctx.forward(r)),
            );
            // The splitter's operator routes by the children known so far.
            let splitter = BranchNode::<K, V> {
                predicates: self.predicates.clone(),
                children: self.children.clone(),
            };
            g.nodes[self.splitter].factory = Arc::new(move || Box::new(splitter.clone()));
            node
        };
        let branch = KStream::new(
            builder,
            node,
            self.source.keys.clone(),
            self.source.values.clone(),
            self.source.repartition_required,
        );
        match branched.chain {
            Chain::None => {
                self.branches.insert(child, branch);
            }
            Chain::Function(f) => {
                self.branches.insert(child, f(branch));
            }
            Chain::Consumer(f) => f(branch),
        }
    }
}
