//! `KStream::split` and its branches, through the test driver.
//!
//! Ported from Kafka's `KStreamSplitTest` (same inputs: keys -1..=7 with values `V<key>`, same
//! expected outputs):
//! - `testKStreamSplit` → [`kstream_split`]
//! - `testResultingMap` → [`resulting_map`]; Kafka's `Branched.withFunction(ks -> null)` (no
//!   entry in the map) is `Branched::with_consumer` here, as a Rust chain function always
//!   returns a stream.
//! - `testBranchingWithNoTerminalOperation` → [`branching_with_no_terminal_operation`]
//! - `testTypeVariance` is not ported: it checks Java generics (`Predicate<Number, Object>` on
//!   a `KStream<Integer, String>`), which have no Rust counterpart.
//!
//! The other tests check the names (naming.md 1.3: the split node takes one index, every
//! branch one more, named or not) and what branches carry.

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    BigEndian, Branched, Consumed, Error, KStream, Result, StreamsBuilder, TopologyNodeDescription,
    Utf8,
};

const TOPIC: &str = "topic";
const KEYS: [i32; 9] = [-1, 0, 1, 2, 3, 4, 5, 6, 7];

fn is_even(k: &i32, _: &String) -> bool {
    k % 2 == 0
}
fn is_multiple_of_three(k: &i32, _: &String) -> bool {
    k % 3 == 0
}
fn is_multiple_of_five(k: &i32, _: &String) -> bool {
    k % 5 == 0
}
fn is_multiple_of_seven(k: &i32, _: &String) -> bool {
    k % 7 == 0
}
fn is_negative(k: &i32, _: &String) -> bool {
    *k < 0
}

fn source(builder: &StreamsBuilder) -> KStream<'_, i32, String> {
    builder.stream_with(&[TOPIC], Consumed::with(BigEndian, Utf8))
}

/// Kafka's `withDriver`: pipes keys -1..=7 with values `V<key>`.
fn with_driver(builder: StreamsBuilder) -> Result<TopologyTestDriver> {
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>(TOPIC);
    for k in KEYS {
        input.pipe(k, format!("V{k}"), 0)?;
    }
    Ok(driver)
}

fn values(driver: &TopologyTestDriver, topic: &str) -> Result<Vec<String>> {
    driver.output::<i32, String>(topic).read_values()
}

#[test]
fn kstream_split() -> Result<()> {
    let builder = StreamsBuilder::new();
    let branches = source(&builder)
        .split()
        .branch(
            is_even,
            Branched::with_consumer(|ks: KStream<i32, String>| ks.to("x2")),
        )
        .branch(
            is_multiple_of_three,
            Branched::with_consumer(|ks: KStream<i32, String>| ks.to("x3")),
        )
        .branch(
            is_multiple_of_five,
            Branched::with_consumer(|ks: KStream<i32, String>| ks.to("x5")),
        )
        .no_default_branch();
    assert_eq!(branches.len(), 0);
    let driver = with_driver(builder)?;
    assert_eq!(values(&driver, "x2")?, vec!["V0", "V2", "V4", "V6"]);
    assert_eq!(values(&driver, "x3")?, vec!["V3"]);
    assert_eq!(values(&driver, "x5")?, vec!["V5"]);
    Ok(())
}

#[test]
fn resulting_map() -> Result<()> {
    let builder = StreamsBuilder::new();
    let branches = source(&builder)
        .split_named("foo-")
        // "foo-bar"
        .branch(is_even, Branched::named("bar"))
        // no entry: a consumer is given
        .branch(
            is_multiple_of_three,
            Branched::with_consumer(|_ks: KStream<i32, String>| {}),
        )
        // no entry: Kafka's chain function returning null
        .branch(
            is_multiple_of_five,
            Branched::with_consumer(|_ks: KStream<i32, String>| {}),
        )
        // "foo-4": the chain function's result
        .branch(
            is_negative,
            Branched::with_function(|ks: KStream<i32, String>| ks),
        )
        // "foo-5": named after its position
        .branch(is_multiple_of_seven, Branched::new())
        // "foo-0": the default branch
        .default_branch(Branched::new());
    assert_eq!(branches.len(), 4);
    for (name, branch) in &branches {
        branch.to(name);
    }
    let driver = with_driver(builder)?;
    assert_eq!(values(&driver, "foo-bar")?, vec!["V0", "V2", "V4", "V6"]);
    assert_eq!(values(&driver, "foo-4")?, vec!["V-1"]);
    assert_eq!(values(&driver, "foo-5")?, vec!["V7"]);
    assert_eq!(values(&driver, "foo-0")?, vec!["V1"]);
    Ok(())
}

#[test]
fn branching_with_no_terminal_operation() -> Result<()> {
    let builder = StreamsBuilder::new();
    // Neither `default_branch` nor `no_default_branch`: the branches exist all the same.
    let _ = source(&builder)
        .split()
        .branch(
            is_even,
            Branched::with_consumer(|ks: KStream<i32, String>| ks.to("output")),
        )
        .branch(
            is_multiple_of_five,
            Branched::with_consumer(|ks: KStream<i32, String>| ks.to("output")),
        );
    let driver = with_driver(builder)?;
    assert_eq!(
        values(&driver, "output")?,
        vec!["V0", "V2", "V4", "V5", "V6"]
    );
    Ok(())
}

#[test]
fn every_branch_takes_an_index_named_or_not() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = source(&builder); // KSTREAM-SOURCE-0000000000
    let branches = s
        .split() // KSTREAM-BRANCH-0000000001
        .branch(is_even, Branched::named("-even")) // burns 2
        .branch(is_negative, Branched::new()) // burns 3
        .default_branch(Branched::new()); // burns 4
    assert_eq!(
        branches.keys().collect::<Vec<_>>(),
        vec![
            "KSTREAM-BRANCH-0000000001-even",
            "KSTREAM-BRANCH-00000000010",
            "KSTREAM-BRANCH-00000000012",
        ]
    );
    let next = s.filter(|_, _| true);
    assert_eq!(next.node_name(), "KSTREAM-FILTER-0000000005");
    Ok(())
}

/// The chain function runs when its branch is added: the nodes it adds take their indices
/// before the next branch's.
#[test]
fn chain_function_nodes_come_before_the_next_branch() -> Result<()> {
    let builder = StreamsBuilder::new();
    let branches = source(&builder)
        .split_named("s-") // burns 1
        .branch(
            is_even,
            Branched::with_function(|ks: KStream<i32, String>| ks.map_values(|v| v.to_lowercase())), // 2, then MAPVALUES-3
        )
        .default_branch(Branched::new()); // burns 4
    assert_eq!(branches["s-1"].node_name(), "KSTREAM-MAPVALUES-0000000003");
    assert_eq!(branches["s-0"].node_name(), "s-0");
    branches["s-1"].to("lower");
    let text = builder.build()?.describe().to_string();
    assert_eq!(
        text,
        "Topologies:\n\
         \x20  Sub-topology: 0\n\
         \x20   Source: KSTREAM-SOURCE-0000000000 (topics: [topic])\n\
         \x20     --> s-\n\
         \x20   Processor: s- (stores: [])\n\
         \x20     --> s-1, s-0\n\
         \x20     <-- KSTREAM-SOURCE-0000000000\n\
         \x20   Processor: s-1 (stores: [])\n\
         \x20     --> KSTREAM-MAPVALUES-0000000003\n\
         \x20     <-- s-\n\
         \x20   Processor: KSTREAM-MAPVALUES-0000000003 (stores: [])\n\
         \x20     --> KSTREAM-SINK-0000000005\n\
         \x20     <-- s-1\n\
         \x20   Sink: KSTREAM-SINK-0000000005 (topic: lower)\n\
         \x20     <-- KSTREAM-MAPVALUES-0000000003\n\
         \x20   Processor: s-0 (stores: [])\n\
         \x20     --> none\n\
         \x20     <-- s-\n\n"
    );
    Ok(())
}

#[test]
fn first_matching_branch_wins_and_unmatched_records_are_dropped() -> Result<()> {
    let builder = StreamsBuilder::new();
    let branches = source(&builder)
        .split()
        .branch(is_multiple_of_three, Branched::named("three"))
        .branch(is_even, Branched::named("even"))
        .no_default_branch();
    branches["KSTREAM-BRANCH-0000000001three"].to("three");
    branches["KSTREAM-BRANCH-0000000001even"].to("even");
    let driver = with_driver(builder)?;
    // 0 and 6 match both predicates: the first branch gets them.
    assert_eq!(values(&driver, "three")?, vec!["V0", "V3", "V6"]);
    assert_eq!(values(&driver, "even")?, vec!["V2", "V4"]);
    // -1, 1, 5, 7 matched nothing and went nowhere.
    assert_eq!(driver.produced_topic_names().len(), 2);
    Ok(())
}

#[test]
fn branches_keep_serdes_timestamps_and_headers() -> Result<()> {
    let builder = StreamsBuilder::new();
    let branches = source(&builder)
        .split()
        .branch(is_even, Branched::named("e"))
        .no_default_branch();
    // No serde registered for the sink: the source's are carried through the branch.
    branches["KSTREAM-BRANCH-0000000001e"].to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver.input::<i32, String>(TOPIC).pipe_record(
        freshet_streams::Record::new(2, "v".to_string(), 42).with_header("h", "x"),
        None,
    )?;
    let out = driver.output::<i32, String>("out").read_records()?;
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].key, out[0].timestamp), (2, 42));
    assert_eq!(out[0].header("h").map(|b| b.as_ref()), Some(&b"x"[..]));
    Ok(())
}

/// A branch of a re-keyed stream still needs a repartition before an aggregation.
#[test]
fn branches_carry_the_repartition_flag() -> Result<()> {
    let builder = StreamsBuilder::new();
    let branches = source(&builder)
        .select_key(|_, v| v.clone())
        .split()
        .branch(|_, _| true, Branched::new())
        .no_default_branch();
    branches["KSTREAM-BRANCH-00000000021"]
        .group_by_key()
        .count()
        .to_stream()
        .to("counts");
    let topology = builder.build()?;
    assert_eq!(topology.subtopologies().len(), 2);
    assert_eq!(
        topology.internal_topics()[0].name.shown(),
        "KSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition"
    );
    Ok(())
}

#[test]
fn duplicate_branch_names_fail_the_build() {
    let builder = StreamsBuilder::new();
    let _ = source(&builder)
        .split()
        .branch(is_even, Branched::named("x"))
        .branch(is_negative, Branched::named("x"))
        .no_default_branch();
    match builder.build() {
        Err(Error::Topology(msg)) => {
            assert!(msg.contains("KSTREAM-BRANCH-0000000001x"), "{msg}")
        }
        other => panic!("expected a topology error, got {other:?}"),
    }
}

#[test]
fn describe_shows_the_splitter_and_its_branches() -> Result<()> {
    let builder = StreamsBuilder::new();
    let _ = source(&builder)
        .split_named("split")
        .branch(is_even, Branched::named("-a"))
        .default_branch(Branched::named("-b"));
    let d = builder.build()?.describe();
    let splitter = d.subtopologies[0].1.iter().find(|n| n.name() == "split");
    match splitter {
        Some(TopologyNodeDescription::Processor { successors, .. }) => {
            let mut s = successors.clone();
            s.sort();
            assert_eq!(s, vec!["split-a", "split-b"]);
        }
        other => panic!("expected the splitter, got {other:?}"),
    }
    Ok(())
}
