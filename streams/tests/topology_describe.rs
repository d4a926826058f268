//! `Topology::describe()` against Kafka's own expectations, byte for byte.
//!
//! The expected texts at the end of this file are Kafka's, verbatim (including the
//! `-->`/`<--` orders that are not sorted, see `topology::describe`). The DSL calls are the
//! Kafka tests' own, with Rust types for Kafka's `Object`/default serdes.
//!
//! # TopologyTest (every describe-related method)
//!
//! Processor-API structure tests. Kafka builds these with `Topology.addSource/addProcessor/
//! addSink`; here the same nodes come from the DSL (`stream_with(Consumed::named)`,
//! `process(..).named(..)`, `to_with(Produced::named)`) and, as in Kafka, the descriptions
//! are compared as sets:
//! - ported: `shouldDescribeEmptyTopology`, `singleSourceShouldHaveSingleSubtopology`,
//!   `singleSourceWithListOfTopicsShouldHaveSingleSubtopology` (also its text),
//!   `multipleSourcesShouldHaveDistinctSubtopologies`,
//!   `sourceAndProcessorShouldHaveSingleSubtopology`,
//!   `sourceAndProcessorWithStateShouldHaveSingleSubtopology`,
//!   `sourceAndProcessorWithMultipleStatesShouldHaveSingleSubtopology`,
//!   `sourceWithMultipleProcessorsShouldHaveSingleSubtopology`,
//!   `multipleSourcesWithProcessorsShouldHaveDistinctSubtopologies`,
//!   `multipleSourcesWithSinksShouldHaveDistinctSubtopologies`,
//!   `processorsWithSharedStateShouldHaveSameSubtopology`,
//!   `topologyWithStaticTopicNameExtractorShouldRespectEqualHashcodeContract`.
//! - ported with other node names: `shouldDescribeGlobalStoreTopology`,
//!   `shouldDescribeMultipleGlobalStoreTopology` (`add_global_store` names the source
//!   `<name>-source` and the processor `<name>` from `Consumed`, as Kafka's DSL does; the
//!   Processor API's free names do not exist here). Also their text.
//! - ported as one test: `sinkShouldReturnNullTopicWithDynamicRouting` and
//!   `sinkShouldReturnTopicNameExtractorWithDynamicRouting` (the sink has no topic and an
//!   extractor label).
//! - not ported: `singleSourcePatternShouldHaveSingleSubtopology` and
//!   `processorWithMultipleSourcesShouldHaveSingleSubtopology` (pattern sources do not exist;
//!   the latter also needs a processor with two parents, which only `merge` makes, as a node
//!   of its own); `processorsWithSameSinkShouldHaveSameSubtopology` (a sink with three
//!   parents: the DSL gives a sink one parent); `readOnlyStateStoresShouldHaveTheirOwnSub
//!   Topology` (`addReadOnlyStateStore` does not exist).
//!
//! Describe-string tests:
//! - ported: the 9 `streamStream{Join,LeftJoin,OuterJoin}TopologyWith{DefaultStoresNames,
//!   CustomStoresNames,CustomStoresSuppliers}` (the inner-join ones use Kafka's deprecated
//!   `JoinWindows.of`, which changes nothing for an inner join; suppliers are
//!   `StreamJoined::with_this_store/with_other_store`);
//!   `kGroupedStream{ZeroArgCount,NamedMaterializedCount,AnonymousMaterializedCount,
//!   AnonymousStoreTypedMaterializedCount}…`; `timeWindow{ZeroArgCount,NamedMaterializedCount,
//!   AnonymousMaterializedCount}…`; `slidingWindow{ZeroArgCount,NamedMaterializedCount}…`
//!   (which use `TimeWindows` in Kafka too); `sessionWindow{ZeroArgCount,
//!   NamedMaterializedCount,AnonymousMaterializedCount}…`; `table{ZeroArgCount,
//!   NamedMaterializedCount,AnonymousMaterializedCount}…`; the 6 `kTable{NonMaterialized,
//!   AnonymousMaterialized,NamedMaterialized}{MapValues,Filter}…`.
//! - ported by the same test as their twin (there are no store types here, an unnamed
//!   `Materialized` is the same case): `timeWindowAnonymousStoreTypeMaterializedCount…`,
//!   `sessionWindowAnonymousStoredTypedMaterializedCount…`,
//!   `tableAnonymousStoreTypedMaterializedCount…`.
//! - ported with our extractor label: `topologyWithDynamicRoutingShouldDescribeExtractor
//!   Class` (Kafka prints the extractor's `toString()`; here its Rust type name).
//! - ported with the `Topologies:` header: `slidingWindowZeroArgCountWithTopologyConfig…`
//!   (the only one with real `SlidingWindows`).
//! - not ported: `kGroupedStreamZeroArgCountWithTopologyConfig…`,
//!   `timeWindowZeroArgCountWithTopologyConfig…`, `sessionWindowZeroArgCountWithTopology
//!   Config…`, `tableNamedMaterializedCountWithTopologyConfig…` (named topologies,
//!   `Topology: <name>:`, do not exist; their bodies are the tests above);
//!   the 9 `{timeWindowed,slidingWindowed,sessionWindowed}Cogrouped…` (no `cogroup`). The
//!   `…ShouldPreserveTopologyStructure` checks of `hasPersistentLocalStore` are not ported:
//!   there is one store implementation.
//!
//! # Other Kafka tests with describe strings
//! - `KStreamImplTest`: `shouldNotMaterializedKTableFromKStream`,
//!   `shouldProcessWithOldProcessorAndState` (with the new Processor API; also stands for
//!   `shouldBindStateWithOldProcessorSupplier`, whose supplier declares its store, which a
//!   supplier cannot here), `shouldBindStateWithOldProcessor`, `shouldProcessValues`,
//!   `shouldMaterializeKTableFromKStream`, `shouldSupportKeyChangeKTableFromKStream`,
//!   `shouldSupportTableTableJoinWithKStreamToKTable`,
//!   `shouldSupportStreamTableJoinWithKStreamToKTable`,
//!   `shouldSupportGroupByCountWithKStreamToKTable`,
//!   `shouldSupportTriggerMaterializedWithKTableFromKStream`,
//!   `shouldSupportForeignKeyTableTableJoinWithKTableFromKStream`.
//! - `KStreamKTableJoinTest`: `shouldReuseRepartitionTopicWithGeneratedName`,
//!   `shouldCreateRepartitionTopicsWithUserProvidedName`.
//! - `KStreamKStreamJoinTest`: `shouldReuseRepartitionTopicWithGeneratedName`,
//!   `shouldCreateRepartitionTopicsWithUserProvidedName`.
//! - `SuppressTopologyTest`: all 4.
//! - `RepartitionTopicNamingTest`: `EXPECTED_UNOPTIMIZED_TOPOLOGY` (the optimized one needs
//!   `topology.optimization`, which does not exist).
//!
//! The `topology::describe` unit tests replay three of these on hand-built node graphs, to
//! check the ordering algorithm independently of the DSL.

use std::time::Duration;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    BigEndian, BufferConfig, Consumed, Grouped, JoinWindows, Joined, KStream, Materialized,
    Processor, ProcessorContext, Produced, Record, Result, SessionWindows, SlidingWindows, Stores,
    StreamJoined, StreamsBuilder, Suppressed, TimeWindows, TopologyDescription,
    TopologyNodeDescription, Utf8,
};

/// A processor that does nothing (Kafka's `MockApiProcessorSupplier`).
struct Noop;

impl Processor<String, String, String, String> for Noop {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, String, String>,
        _record: Record<String, String>,
    ) -> Result<()> {
        Ok(())
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn source(name: &str, topics: &[&str], successors: &[&str]) -> TopologyNodeDescription {
    TopologyNodeDescription::Source {
        name: name.into(),
        topics: strings(topics),
        successors: strings(successors),
    }
}

fn processor(
    name: &str,
    stores: &[&str],
    successors: &[&str],
    predecessors: &[&str],
) -> TopologyNodeDescription {
    TopologyNodeDescription::Processor {
        name: name.into(),
        stores: strings(stores),
        successors: strings(successors),
        predecessors: strings(predecessors),
    }
}

fn sink(name: &str, topic: &str, predecessors: &[&str]) -> TopologyNodeDescription {
    TopologyNodeDescription::Sink {
        name: name.into(),
        topic: Some(topic.into()),
        extractor: None,
        predecessors: strings(predecessors),
    }
}

/// Kafka compares `TopologyDescription` objects as sets (of sub-topologies, of nodes, of
/// successors, predecessors, stores and topics): compare with every list sorted.
fn as_sets(mut d: TopologyDescription) -> TopologyDescription {
    fn sort_node(n: &mut TopologyNodeDescription) {
        match n {
            TopologyNodeDescription::Source {
                topics, successors, ..
            } => {
                topics.sort();
                successors.sort();
            }
            TopologyNodeDescription::Processor {
                stores,
                successors,
                predecessors,
                ..
            } => {
                stores.sort();
                successors.sort();
                predecessors.sort();
            }
            TopologyNodeDescription::Sink { predecessors, .. } => predecessors.sort(),
        }
    }
    for (_, nodes) in &mut d.subtopologies {
        nodes.iter_mut().for_each(sort_node);
        nodes.sort_by(|a, b| a.name().cmp(b.name()));
    }
    for (_, s, p) in &mut d.global_stores {
        sort_node(s);
        sort_node(p);
    }
    d
}

fn subtopologies(list: Vec<(u32, Vec<TopologyNodeDescription>)>) -> TopologyDescription {
    TopologyDescription {
        subtopologies: list,
        global_stores: Vec::new(),
    }
}

fn assert_same_sets(actual: TopologyDescription, expected: TopologyDescription) {
    assert_eq!(as_sets(actual), as_sets(expected));
}

fn named_source<'b>(
    builder: &'b StreamsBuilder,
    name: &str,
    topics: &[&str],
) -> freshet_streams::KStream<'b, String, String> {
    builder.stream_with::<String, String>(topics, Consumed::named(name))
}

// ---------------------------------------------------------------------------------------
// TopologyTest: Processor-API structure tests (Kafka compares description objects).
// ---------------------------------------------------------------------------------------

#[test]
fn should_describe_empty_topology() -> Result<()> {
    let d = StreamsBuilder::new().build()?.describe();
    assert_eq!(d, subtopologies(vec![]));
    assert_eq!(d.to_string(), "Topologies:\n ");
    Ok(())
}

#[test]
fn single_source_should_have_single_subtopology() -> Result<()> {
    let builder = StreamsBuilder::new();
    named_source(&builder, "source", &["topic"]);
    assert_same_sets(
        builder.build()?.describe(),
        subtopologies(vec![(0, vec![source("source", &["topic"], &[])])]),
    );
    Ok(())
}

#[test]
fn single_source_with_list_of_topics_should_have_single_subtopology() -> Result<()> {
    let builder = StreamsBuilder::new();
    named_source(&builder, "source", &["topic1", "topic2", "topic3"]);
    let d = builder.build()?.describe();
    assert_same_sets(
        d.clone(),
        subtopologies(vec![(
            0,
            vec![source("source", &["topic1", "topic2", "topic3"], &[])],
        )]),
    );
    // Java's `HashSet` order of the three names.
    assert_eq!(
        d.to_string(),
        "Topologies:\n   Sub-topology: 0\n    Source: source (topics: [topic1, topic2, topic3])\n      --> none\n\n"
    );
    Ok(())
}

#[test]
fn multiple_sources_should_have_distinct_subtopologies() -> Result<()> {
    let builder = StreamsBuilder::new();
    named_source(&builder, "source1", &["topic1"]);
    named_source(&builder, "source2", &["topic2"]);
    named_source(&builder, "source3", &["topic3"]);
    assert_same_sets(
        builder.build()?.describe(),
        subtopologies(vec![
            (0, vec![source("source1", &["topic1"], &[])]),
            (1, vec![source("source2", &["topic2"], &[])]),
            (2, vec![source("source3", &["topic3"], &[])]),
        ]),
    );
    Ok(())
}

#[test]
fn source_and_processor_should_have_single_subtopology() -> Result<()> {
    let builder = StreamsBuilder::new();
    named_source(&builder, "source", &["topic"])
        .process(|| Noop, &[])
        .named("processor");
    assert_same_sets(
        builder.build()?.describe(),
        subtopologies(vec![(
            0,
            vec![
                source("source", &["topic"], &["processor"]),
                processor("processor", &[], &[], &["source"]),
            ],
        )]),
    );
    Ok(())
}

#[test]
fn source_and_processor_with_state_should_have_single_subtopology() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value::<String, String>("store", Utf8, Utf8));
    named_source(&builder, "source", &["topic"])
        .process(|| Noop, &["store"])
        .named("processor");
    assert_same_sets(
        builder.build()?.describe(),
        subtopologies(vec![(
            0,
            vec![
                source("source", &["topic"], &["processor"]),
                processor("processor", &["store"], &[], &["source"]),
            ],
        )]),
    );
    Ok(())
}

#[test]
fn source_and_processor_with_multiple_states_should_have_single_subtopology() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value::<String, String>("store1", Utf8, Utf8));
    builder.add_state_store(Stores::key_value::<String, String>("store2", Utf8, Utf8));
    named_source(&builder, "source", &["topic"])
        .process(|| Noop, &["store1", "store2"])
        .named("processor");
    assert_same_sets(
        builder.build()?.describe(),
        subtopologies(vec![(
            0,
            vec![
                source("source", &["topic"], &["processor"]),
                processor("processor", &["store1", "store2"], &[], &["source"]),
            ],
        )]),
    );
    Ok(())
}

#[test]
fn source_with_multiple_processors_should_have_single_subtopology() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = named_source(&builder, "source", &["topic"]);
    s.process(|| Noop, &[]).named("processor1");
    s.process(|| Noop, &[]).named("processor2");
    assert_same_sets(
        builder.build()?.describe(),
        subtopologies(vec![(
            0,
            vec![
                source("source", &["topic"], &["processor1", "processor2"]),
                processor("processor1", &[], &[], &["source"]),
                processor("processor2", &[], &[], &["source"]),
            ],
        )]),
    );
    Ok(())
}

#[test]
fn multiple_sources_with_processors_should_have_distinct_subtopologies() -> Result<()> {
    let builder = StreamsBuilder::new();
    for i in 1..=3 {
        named_source(&builder, &format!("source{i}"), &[&format!("topic{i}")])
            .process(|| Noop, &[])
            .named(format!("processor{i}"));
    }
    let expected = (1..=3)
        .map(|i| {
            let (s, p, t) = (
                format!("source{i}"),
                format!("processor{i}"),
                format!("topic{i}"),
            );
            (
                i - 1,
                vec![source(&s, &[&t], &[&p]), processor(&p, &[], &[], &[&s])],
            )
        })
        .collect();
    assert_same_sets(builder.build()?.describe(), subtopologies(expected));
    Ok(())
}

#[test]
fn multiple_sources_with_sinks_should_have_distinct_subtopologies() -> Result<()> {
    let builder = StreamsBuilder::new();
    for i in 1..=3 {
        named_source(&builder, &format!("source{i}"), &[&format!("topic{i}")]).to_with(
            &format!("sinkTopic{i}"),
            Produced::named(format!("sink{i}")),
        );
    }
    let expected = (1..=3)
        .map(|i| {
            let (s, k) = (format!("source{i}"), format!("sink{i}"));
            (
                i - 1,
                vec![
                    source(&s, &[&format!("topic{i}")], &[&k]),
                    sink(&k, &format!("sinkTopic{i}"), &[&s]),
                ],
            )
        })
        .collect();
    assert_same_sets(builder.build()?.describe(), subtopologies(expected));
    Ok(())
}

#[test]
fn processors_with_shared_state_should_have_same_subtopology() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value::<String, String>("store1", Utf8, Utf8));
    builder.add_state_store(Stores::key_value::<String, String>("store2", Utf8, Utf8));
    named_source(&builder, "source", &["topic"])
        .process(|| Noop, &["store1"])
        .named("processor1");
    named_source(&builder, "source2", &["topic2"])
        .process(|| Noop, &["store2"])
        .named("processor2");
    named_source(&builder, "source3", &["topic3"])
        .process(|| Noop, &["store1", "store2"])
        .named("processor3");
    assert_same_sets(
        builder.build()?.describe(),
        subtopologies(vec![(
            0,
            vec![
                source("source", &["topic"], &["processor1"]),
                processor("processor1", &["store1"], &[], &["source"]),
                source("source2", &["topic2"], &["processor2"]),
                processor("processor2", &["store2"], &[], &["source2"]),
                source("source3", &["topic3"], &["processor3"]),
                processor("processor3", &["store1", "store2"], &[], &["source3"]),
            ],
        )]),
    );
    Ok(())
}

#[test]
fn topology_with_static_topic_name_extractor_should_respect_equal_hashcode_contract() -> Result<()>
{
    let build = || -> Result<TopologyDescription> {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("from-topic-name")
            .to("to-topic-name");
        Ok(builder.build()?.describe())
    };
    assert_eq!(build()?, build()?);
    Ok(())
}

/// TopologyTest.sinkShouldReturnNullTopicWithDynamicRouting and
/// sinkShouldReturnTopicNameExtractorWithDynamicRouting: a dynamic sink has no topic, and an
/// extractor (here its label).
#[test]
fn sink_with_dynamic_routing_has_no_topic_but_an_extractor() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input-topic")
        .to_dynamic(|r| format!("topic-{}", r.key), Produced::named("sink"));
    let d = builder.build()?.describe();
    let sink = d.subtopologies[0]
        .1
        .iter()
        .find(|n| n.name() == "sink")
        .cloned();
    match sink {
        Some(TopologyNodeDescription::Sink {
            topic, extractor, ..
        }) => {
            assert_eq!(topic, None);
            assert!(extractor.is_some_and(|e| e.contains("{{closure}}")));
        }
        other => panic!("expected a sink, got {other:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TopologyTest: DSL tests checking the describe() string.
// ---------------------------------------------------------------------------------------

/// Kafka's extractor overrides `toString`; ours is described by its Rust type name (see
/// `topology::describe`): a named function here.
#[test]
fn topology_with_dynamic_routing_should_describe_extractor_class() -> Result<()> {
    fn anonymous_topic_name_extractor(r: &Record<String, String>) -> String {
        format!("input-topic-{}", r.key)
    }
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input-topic")
        .to_dynamic(anonymous_topic_name_extractor, Default::default());
    assert_eq!(
        builder.build()?.describe().to_string(),
        "Topologies:\n\
         \x20  Sub-topology: 0\n\
         \x20   Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n\
         \x20     --> KSTREAM-SINK-0000000001\n\
         \x20   Sink: KSTREAM-SINK-0000000001 (extractor class: topology_describe::topology_with_dynamic_routing_should_describe_extractor_class::anonymous_topic_name_extractor)\n\
         \x20     <-- KSTREAM-SOURCE-0000000000\n\n"
    );
    Ok(())
}

const COUNT_TOPOLOGY_2: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const COUNT_TOPOLOGY_NAMED: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000001
    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const COUNT_TOPOLOGY_ANONYMOUS: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000002])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

#[test]
fn k_grouped_stream_zero_arg_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input-topic")
        .group_by_key()
        .count();
    assert_eq!(builder.build()?.describe().to_string(), COUNT_TOPOLOGY_2);
    Ok(())
}

#[test]
fn k_grouped_stream_named_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input-topic")
        .group_by_key()
        .count_with(Materialized::named("count-store"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        COUNT_TOPOLOGY_NAMED
    );
    Ok(())
}

/// Also stands for `kGroupedStreamAnonymousStoreTypedMaterializedCount…`
/// (`Materialized.as(StoreType)`: there are no store types here, an unnamed `Materialized` is
/// the same case).
#[test]
fn k_grouped_stream_anonymous_materialized_count_should_preserve_topology_structure() -> Result<()>
{
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input-topic")
        .group_by_key()
        .count_with(Materialized::with(Utf8, BigEndian));
    assert_eq!(
        builder.build()?.describe().to_string(),
        COUNT_TOPOLOGY_ANONYMOUS
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TopologyTest: stream-stream joins (TOSTRING_JOINER; Integer keys, String values).
// ---------------------------------------------------------------------------------------

fn join_inputs(builder: &StreamsBuilder) -> (KStream<'_, i32, String>, KStream<'_, i32, String>) {
    (
        builder.stream::<i32, String>("input-topic1"),
        builder.stream::<i32, String>("input-topic2"),
    )
}

fn window_100() -> Result<JoinWindows> {
    JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(100))
}

fn joined() -> StreamJoined<i32, String, String> {
    StreamJoined::with(BigEndian, Utf8, Utf8)
}

/// The in-memory window stores of the `…CustomStoresSuppliers` tests.
fn suppliers(joined: StreamJoined<i32, String, String>) -> StreamJoined<i32, String, String> {
    let store = |name: &str| Stores::window::<i32, String>(name, 200, 200, true, BigEndian, Utf8);
    joined
        .with_this_store(store("in-memory-join-store"))
        .with_other_store(store("in-memory-join-store-other"))
}

fn joiner(a: &String, b: &String) -> String {
    format!("{a}+{b}")
}

/// Kafka uses the deprecated `JoinWindows.of(100ms)`; for an inner join the topology is the
/// same as with `ofTimeDifferenceWithNoGrace`.
#[test]
fn stream_stream_join_topology_with_default_stores_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.join_with(&s2, joiner, window_100()?, joined());
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_JOIN_DEFAULT_STORES
    );
    Ok(())
}

#[test]
fn stream_stream_join_topology_with_custom_stores_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.join_with(
        &s2,
        joiner,
        window_100()?,
        joined().with_store_name("custom-name"),
    );
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_JOIN_CUSTOM_STORES_NAMES
    );
    Ok(())
}

#[test]
fn stream_stream_join_topology_with_custom_stores_suppliers() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.join_with(&s2, joiner, window_100()?, suppliers(joined()));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_JOIN_CUSTOM_STORES_SUPPLIERS
    );
    Ok(())
}

fn left_joiner(a: &String, b: Option<&String>) -> String {
    format!("{a}+{b:?}")
}

fn outer_joiner(a: Option<&String>, b: Option<&String>) -> String {
    format!("{a:?}+{b:?}")
}

#[test]
fn stream_stream_left_join_topology_with_default_stores_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.left_join_with(&s2, left_joiner, window_100()?, joined());
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_LEFT_JOIN_DEFAULT_STORES
    );
    Ok(())
}

#[test]
fn stream_stream_left_join_topology_with_custom_stores_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.left_join_with(
        &s2,
        left_joiner,
        window_100()?,
        joined().with_store_name("custom-name"),
    );
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_LEFT_JOIN_CUSTOM_STORES_NAMES
    );
    Ok(())
}

#[test]
fn stream_stream_left_join_topology_with_custom_stores_suppliers() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.left_join_with(&s2, left_joiner, window_100()?, suppliers(joined()));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_LEFT_JOIN_CUSTOM_STORES_SUPPLIERS
    );
    Ok(())
}

#[test]
fn stream_stream_outer_join_topology_with_default_stores_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.outer_join_with(&s2, outer_joiner, window_100()?, joined());
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_OUTER_JOIN_DEFAULT_STORES
    );
    Ok(())
}

#[test]
fn stream_stream_outer_join_topology_with_custom_stores_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.outer_join_with(
        &s2,
        outer_joiner,
        window_100()?,
        joined().with_store_name("custom-name"),
    );
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_OUTER_JOIN_CUSTOM_STORES_NAMES
    );
    Ok(())
}

#[test]
fn stream_stream_outer_join_topology_with_custom_stores_suppliers() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (s1, s2) = join_inputs(&builder);
    s1.outer_join_with(&s2, outer_joiner, window_100()?, suppliers(joined()));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_STREAM_STREAM_OUTER_JOIN_CUSTOM_STORES_SUPPLIERS
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TopologyTest: grouped and windowed counts.
// ---------------------------------------------------------------------------------------

#[test]
fn k_grouped_stream_anonymous_store_typed_materialized_count_should_preserve_topology_structure(
) -> Result<()> {
    // Kafka: `Materialized.as(StoreType.IN_MEMORY)`: no name, so the compatibility burn.
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input-topic")
        .group_by_key()
        .count_with(Materialized::default());
    assert_eq!(
        builder.build()?.describe().to_string(),
        COUNT_TOPOLOGY_ANONYMOUS
    );
    Ok(())
}

fn grouped_input(builder: &StreamsBuilder) -> freshet_streams::KGroupedStream<'_, String, String> {
    builder
        .stream::<String, String>("input-topic")
        .group_by_key()
}

fn one_ms() -> Duration {
    Duration::from_millis(1)
}

#[test]
fn time_window_zero_arg_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(TimeWindows::of_size_with_no_grace(one_ms())?)
        .count();
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_TIME_WINDOW_ZERO_ARG_COUNT
    );
    Ok(())
}

#[test]
fn time_window_named_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(TimeWindows::of_size_with_no_grace(one_ms())?)
        .count_with(Materialized::named("count-store"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_TIME_WINDOW_NAMED_MATERIALIZED_COUNT
    );
    Ok(())
}

/// Also `timeWindowAnonymousStoreTypeMaterializedCount…` (no store types here).
#[test]
fn time_window_anonymous_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(TimeWindows::of_size_with_no_grace(one_ms())?)
        .count_with(Materialized::with(Utf8, BigEndian));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_TIME_WINDOW_ANONYMOUS_MATERIALIZED_COUNT
    );
    Ok(())
}

/// Kafka's test of this name uses `TimeWindows` (sic).
#[test]
fn sliding_window_zero_arg_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(TimeWindows::of_size_with_no_grace(one_ms())?)
        .count();
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_SLIDING_WINDOW_ZERO_ARG_COUNT
    );
    Ok(())
}

/// Kafka's test of this name uses `TimeWindows` (sic).
#[test]
fn sliding_window_named_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(TimeWindows::of_size_with_no_grace(one_ms())?)
        .count_with(Materialized::named("count-store"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_SLIDING_WINDOW_NAMED_MATERIALIZED_COUNT
    );
    Ok(())
}

/// `slidingWindowZeroArgCountWithTopologyConfig…` with real `SlidingWindows`; the header is
/// `Topologies:` (no named topologies here).
#[test]
fn sliding_window_zero_arg_count_with_sliding_windows() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(SlidingWindows::of_time_difference_with_no_grace(one_ms())?)
        .count();
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_SLIDING_WINDOW_ZERO_ARG_COUNT_WITH_TOPOLOGY_CONFIG
    );
    Ok(())
}

#[test]
fn session_window_zero_arg_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(one_ms())?)
        .count();
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_SESSION_WINDOW_ZERO_ARG_COUNT
    );
    Ok(())
}

#[test]
fn session_window_named_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(one_ms())?)
        .count_with(Materialized::named("count-store"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_SESSION_WINDOW_NAMED_MATERIALIZED_COUNT
    );
    Ok(())
}

/// Also `sessionWindowAnonymousStoreTypedMaterializedCount…` (no store types here).
#[test]
fn session_window_anonymous_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    grouped_input(&builder)
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(one_ms())?)
        .count_with(Materialized::with(Utf8, BigEndian));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_SESSION_WINDOW_ANONYMOUS_MATERIALIZED_COUNT
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TopologyTest: tables.
// ---------------------------------------------------------------------------------------

fn null_key(_k: &String, _v: &String) -> (String, String) {
    (String::new(), String::new())
}

#[test]
fn table_zero_arg_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .group_by(null_key)
        .count();
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_TABLE_ZERO_ARG_COUNT
    );
    Ok(())
}

#[test]
fn table_named_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .group_by(null_key)
        .count_with(Materialized::named("count-store"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_TABLE_NAMED_MATERIALIZED_COUNT
    );
    Ok(())
}

/// Also `tableAnonymousStoreTypedMaterializedCount…` and
/// `tableNamedMaterializedCountWithTopologyConfig…` (which is anonymous too, but has the
/// named-topology header).
#[test]
fn table_anonymous_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .group_by(null_key)
        .count_with(Materialized::with(Utf8, BigEndian));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_TABLE_ANONYMOUS_MATERIALIZED_COUNT
    );
    Ok(())
}

#[test]
fn k_table_non_materialized_map_values_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .map_values(|_| String::new());
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_K_TABLE_NON_MATERIALIZED_MAP_VALUES
    );
    Ok(())
}

#[test]
fn k_table_anonymous_materialized_map_values_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .map_values_with(|_| String::new(), Materialized::default());
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_K_TABLE_ANONYMOUS_MATERIALIZED_MAP_VALUES
    );
    Ok(())
}

#[test]
fn k_table_named_materialized_map_values_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .map_values_with(|_| String::new(), Materialized::named("store-name"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_K_TABLE_NAMED_MATERIALIZED_MAP_VALUES
    );
    Ok(())
}

#[test]
fn k_table_non_materialized_filter_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .filter(|_, _| false);
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_K_TABLE_NON_MATERIALIZED_FILTER
    );
    Ok(())
}

#[test]
fn k_table_anonymous_materialized_filter_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .filter_with(|_, _| false, Materialized::default());
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_K_TABLE_ANONYMOUS_MATERIALIZED_FILTER
    );
    Ok(())
}

#[test]
fn k_table_named_materialized_filter_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .filter_with(|_, _| false, Materialized::named("store-name"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        TT_K_TABLE_NAMED_MATERIALIZED_FILTER
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TopologyTest: global stores (Kafka compares description objects; the source and processor
// names come from `Consumed::named(x)`: `x-source` and `x`).
// ---------------------------------------------------------------------------------------

struct KeepGlobal;

impl Processor<String, String, (), ()> for KeepGlobal {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, (), ()>,
        _record: Record<String, String>,
    ) -> Result<()> {
        Ok(())
    }
}

fn add_global_store(builder: &StreamsBuilder, store: &str, topic: &str, processor: &str) {
    builder.add_global_store(
        Stores::key_value::<String, String>(store, Utf8, Utf8),
        topic,
        Consumed::<String, String>::with(Utf8, Utf8).with_name(processor),
        || KeepGlobal,
    );
}

fn global(id: u32, source_: &str, processor_: &str, store: &str, topic: &str) -> GlobalStore {
    (
        id,
        source(source_, &[topic], &[processor_]),
        processor(processor_, &[store], &[], &[source_]),
    )
}

type GlobalStore = (u32, TopologyNodeDescription, TopologyNodeDescription);

#[test]
fn should_describe_global_store_topology() -> Result<()> {
    let builder = StreamsBuilder::new();
    add_global_store(&builder, "globalStore", "globalTopic", "processor");
    let d = builder.build()?.describe();
    assert_eq!(
        d.global_stores,
        vec![global(
            0,
            "processor-source",
            "processor",
            "globalStore",
            "globalTopic"
        )]
    );
    assert!(d.subtopologies.is_empty());
    assert_eq!(
        d.to_string(),
        "Topologies:\n\
         \x20  Sub-topology: 0 for global store (will not generate tasks)\n\
         \x20   Source: processor-source (topics: [globalTopic])\n\
         \x20     --> processor\n\
         \x20   Processor: processor (stores: [globalStore])\n\
         \x20     --> none\n\
         \x20     <-- processor-source\n"
    );
    Ok(())
}

#[test]
fn should_describe_multiple_global_store_topology() -> Result<()> {
    let builder = StreamsBuilder::new();
    add_global_store(&builder, "globalStore1", "globalTopic1", "processor1");
    add_global_store(&builder, "globalStore2", "globalTopic2", "processor2");
    let d = builder.build()?.describe();
    assert_eq!(
        d.global_stores,
        vec![
            global(
                0,
                "processor1-source",
                "processor1",
                "globalStore1",
                "globalTopic1"
            ),
            global(
                1,
                "processor2-source",
                "processor2",
                "globalStore2",
                "globalTopic2"
            ),
        ]
    );
    Ok(())
}

/// Global stores take their numbers from the sub-topologies' sequence, and print where
/// Kafka's `TopologyDescription.toString` interleaves them.
#[test]
fn global_stores_interleave_with_subtopologies_by_id() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.stream::<String, String>("a").to("b"); // 0
    builder.global_table::<String, String>("g"); // 1
    builder.stream::<String, String>("c").to("d"); // 2
    let text = builder.build()?.describe().to_string();
    assert_eq!(
        text,
        "Topologies:\n\
         \x20  Sub-topology: 0\n\
         \x20   Source: KSTREAM-SOURCE-0000000000 (topics: [a])\n\
         \x20     --> KSTREAM-SINK-0000000001\n\
         \x20   Sink: KSTREAM-SINK-0000000001 (topic: b)\n\
         \x20     <-- KSTREAM-SOURCE-0000000000\n\
         \n\
         \x20 Sub-topology: 1 for global store (will not generate tasks)\n\
         \x20   Source: KSTREAM-SOURCE-0000000003 (topics: [g])\n\
         \x20     --> KTABLE-SOURCE-0000000004\n\
         \x20   Processor: KTABLE-SOURCE-0000000004 (stores: [g-STATE-STORE-0000000002])\n\
         \x20     --> none\n\
         \x20     <-- KSTREAM-SOURCE-0000000003\n\
         \x20 Sub-topology: 2\n\
         \x20   Source: KSTREAM-SOURCE-0000000005 (topics: [c])\n\
         \x20     --> KSTREAM-SINK-0000000006\n\
         \x20   Sink: KSTREAM-SINK-0000000006 (topic: d)\n\
         \x20     <-- KSTREAM-SOURCE-0000000005\n\n"
    );
    Ok(())
}

/// A stream–global-table join shows no store (Kafka's `KSTREAM-LEFTJOIN-` for `join` too).
#[test]
fn a_global_table_join_shows_no_store() -> Result<()> {
    let builder = StreamsBuilder::new();
    let g = builder.global_table::<String, String>("g");
    builder
        .stream::<String, String>("s")
        .join_global(&g, |k, _| k.clone(), |v, gv| format!("{v}{gv}"))
        .to("out");
    let text = builder.build()?.describe().to_string();
    assert!(
        text.contains("    Processor: KSTREAM-LEFTJOIN-0000000004 (stores: [])\n"),
        "{text}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// KStreamImplTest
// ---------------------------------------------------------------------------------------

fn input<'b>(builder: &'b StreamsBuilder, topic: &str) -> KStream<'b, String, String> {
    builder.stream_with::<String, String>(&[topic], Consumed::with(Utf8, Utf8))
}

#[test]
fn should_not_materialized_k_table_from_k_stream() -> Result<()> {
    let builder = StreamsBuilder::new();
    input(&builder, "input").to_table().to_stream().to("output");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_NOT_MATERIALIZED_K_TABLE_FROM_K_STREAM
    );
    Ok(())
}

/// Sums value lengths per key in the store `sum`.
struct Sum;

impl Processor<String, String, String, String> for Sum {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, String>,
        r: Record<String, String>,
    ) -> Result<()> {
        let store = ctx.key_value_store::<String, i32>("sum")?;
        let sum = store.get(&r.key)?.map_or(0, |(s, _)| s) + r.value.len() as i32;
        store.put(&r.key, &sum, r.timestamp)
    }
}

/// Kafka's `shouldProcessWithOldProcessorAndState` (and `shouldBindStateWithOldProcessor
/// Supplier`, whose supplier declares the store itself — here it is declared on the builder).
#[test]
fn should_process_with_processor_and_state() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value::<String, i32>("sum", Utf8, BigEndian));
    input(&builder, "input")
        .process(|| Sum, &["sum"])
        .named("p");
    let topology = builder.build()?;
    assert_eq!(
        topology.describe().to_string(),
        KSI_PROCESS_WITH_OLD_PROCESSOR_AND_STATE
    );
    let driver = TopologyTestDriver::new(topology)?;
    let i = driver.input::<String, String>("input");
    for (k, v, ts) in [
        ("A", "0", 5),
        ("B", "00", 100),
        ("C", "000", 0),
        ("D", "0000", 0),
        ("A", "00000", 10),
        ("A", "000000", 8),
    ] {
        i.pipe(k.into(), v.into(), ts)?;
    }
    let store = driver.key_value_store::<String, i32>("sum")?;
    let sums: Vec<(String, i32)> = store.all()?.into_iter().map(|(k, v, _)| (k, v)).collect();
    assert_eq!(
        sums,
        vec![
            ("A".into(), 12),
            ("B".into(), 2),
            ("C".into(), 3),
            ("D".into(), 4)
        ]
    );
    Ok(())
}

/// Forwards the value's length.
struct Length;

impl Processor<String, String, String, i32> for Length {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, i32>,
        r: Record<String, String>,
    ) -> Result<()> {
        let len = r.value.len() as i32;
        ctx.forward(r.with_value(len))
    }
}

const LENGTH_INPUT: [(&str, &str, i64); 6] = [
    ("A", "0", 5),
    ("B", "00", 100),
    ("C", "000", 0),
    ("D", "0000", 0),
    ("A", "00000", 10),
    ("A", "000000", 8),
];

fn lengths_out(topology: freshet_streams::Topology) -> Result<Vec<(String, i32, i64)>> {
    let driver = TopologyTestDriver::new(topology)?;
    let i = driver.input::<String, String>("input");
    for (k, v, ts) in LENGTH_INPUT {
        i.pipe(k.into(), v.into(), ts)?;
    }
    Ok(driver
        .output::<String, i32>("output")
        .read_records()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect())
}

fn expected_lengths() -> Vec<(String, i32, i64)> {
    LENGTH_INPUT
        .iter()
        .map(|(k, v, ts)| (k.to_string(), v.len() as i32, *ts))
        .collect()
}

#[test]
fn should_bind_state_with_old_processor() -> Result<()> {
    let builder = StreamsBuilder::new();
    input(&builder, "input")
        .process(|| Length, &[])
        .named("p")
        .to_with("output", Produced::with(Utf8, BigEndian));
    let topology = builder.build()?;
    assert_eq!(
        topology.describe().to_string(),
        KSI_BIND_STATE_WITH_OLD_PROCESSOR
    );
    assert_eq!(lengths_out(topology)?, expected_lengths());
    Ok(())
}

#[test]
fn should_process_values() -> Result<()> {
    let builder = StreamsBuilder::new();
    input(&builder, "input")
        .process_values(|| Length, &[])
        .named("fkp")
        .to_with("output", Produced::with(Utf8, BigEndian));
    let topology = builder.build()?;
    assert_eq!(topology.describe().to_string(), KSI_PROCESS_VALUES);
    assert_eq!(lengths_out(topology)?, expected_lengths());
    Ok(())
}

#[test]
fn should_materialize_k_table_from_k_stream() -> Result<()> {
    let builder = StreamsBuilder::new();
    input(&builder, "input").to_table_with(Materialized::named("store"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_MATERIALIZE_K_TABLE_FROM_K_STREAM
    );
    Ok(())
}

#[test]
fn should_support_key_change_k_table_from_k_stream() -> Result<()> {
    let builder = StreamsBuilder::new();
    input(&builder, "input")
        .map(|k, v| (i32::from(k.as_bytes()[0]) - i32::from(b'A'), v.clone()))
        .to_table_with(Materialized::<i32, String>::default().with_key_serde(BigEndian))
        .to_stream()
        .to("output");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_KEY_CHANGE_K_TABLE_FROM_K_STREAM
    );
    Ok(())
}

#[test]
fn should_support_table_table_join_with_k_stream_to_k_table() -> Result<()> {
    let builder = StreamsBuilder::new();
    let t1 = input(&builder, "left").to_table();
    let t2 = input(&builder, "right").to_table();
    t1.join(&t2, joiner).to_stream().to("output");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_TABLE_TABLE_JOIN_WITH_K_STREAM_TO_K_TABLE
    );
    Ok(())
}

#[test]
fn should_support_stream_table_join_with_k_stream_to_k_table() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream = input(&builder, "streamTopic");
    let table = input(&builder, "tableTopic").to_table();
    stream.join_table(&table, joiner).to("output");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_STREAM_TABLE_JOIN_WITH_K_STREAM_TO_K_TABLE
    );
    Ok(())
}

#[test]
fn should_support_group_by_count_with_k_stream_to_k_table() -> Result<()> {
    let builder = StreamsBuilder::new();
    input(&builder, "input")
        .to_table()
        .group_by_with(|_, v| (v.clone(), v.clone()), Grouped::with(Utf8, Utf8))
        .count()
        .to_stream()
        .to("output");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_GROUP_BY_COUNT_WITH_K_STREAM_TO_K_TABLE
    );
    Ok(())
}

#[test]
fn should_support_trigger_materialized_with_k_table_from_k_stream() -> Result<()> {
    let builder = StreamsBuilder::new();
    input(&builder, "input")
        .to_table()
        .map_values_with(
            |v| i32::from(v.as_bytes().first().copied().unwrap_or(b'a')) - i32::from(b'a'),
            Materialized::named("store")
                .with_key_serde(Utf8)
                .with_value_serde(BigEndian),
        )
        .to_stream()
        .to("output");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_TRIGGER_MATERIALIZED_WITH_K_TABLE_FROM_K_STREAM
    );
    Ok(())
}

#[test]
fn should_support_foreign_key_table_table_join_with_k_table_from_k_stream() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = input(&builder, "input1").to_table();
    let right = input(&builder, "input2").to_table();
    left.join_fk(
        &right,
        |v: &String| v.split('|').nth(1).map(str::to_string),
        |v1, v2| format!("({v1},{v2})"),
    )
    .to_stream()
    .to("output");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KSI_FOREIGN_KEY_TABLE_TABLE_JOIN_WITH_K_TABLE_FROM_K_STREAM
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// KStreamKTableJoinTest and KStreamKStreamJoinTest: joining one re-keyed stream twice.
// ---------------------------------------------------------------------------------------

#[test]
fn stream_table_join_should_reuse_repartition_topic_with_generated_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let a = input(&builder, "topic");
    let b = builder.table_with::<String, String>(
        "topic2",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    let c = builder.table_with::<String, String>(
        "topic3",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    let rekeyed = a.map(|k, v| (v.clone(), k.clone()));
    rekeyed
        .join_table(&b, |x, y| format!("{x}{y}"))
        .to("out-one");
    rekeyed
        .join_table(&c, |x, y| format!("{x}{y}"))
        .to("out-two");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KKTJ_GENERATED_REPARTITION_TOPIC_NAMES
    );
    Ok(())
}

#[test]
fn stream_table_join_should_create_repartition_topics_with_user_provided_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let a = input(&builder, "topic");
    let b = builder.table_with::<String, String>(
        "topic2",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    let c = builder.table_with::<String, String>(
        "topic3",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    let rekeyed = a.map(|k, v| (v.clone(), k.clone()));
    rekeyed
        .join_table_with(
            &b,
            |x, y| format!("{x}{y}"),
            Joined::with(Utf8, Utf8, Utf8).with_name("first-join"),
        )
        .to("out-one");
    rekeyed
        .join_table_with(
            &c,
            |x, y| format!("{x}{y}"),
            Joined::with(Utf8, Utf8, Utf8).with_name("second-join"),
        )
        .to("out-two");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KKTJ_USER_PROVIDED_REPARTITION_TOPIC_NAMES
    );
    Ok(())
}

#[test]
fn stream_stream_join_should_reuse_repartition_topic_with_generated_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s1 = input(&builder, "topic");
    let s2 = input(&builder, "topic2");
    let s3 = input(&builder, "topic3");
    let rekeyed = s1.map(|k, v| (v.clone(), k.clone()));
    rekeyed
        .join(&s2, |x, y| format!("{x}{y}"), window_100()?)
        .to("out-one");
    rekeyed
        .join(&s3, |x, y| format!("{x}{y}"), window_100()?)
        .to("out-to");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KKJ_GENERATED_REPARTITION_TOPIC
    );
    Ok(())
}

#[test]
fn stream_stream_join_should_create_repartition_topics_with_user_provided_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s1 = input(&builder, "topic");
    let s2 = input(&builder, "topic2");
    let s3 = input(&builder, "topic3");
    let rekeyed = s1.map(|k, v| (v.clone(), k.clone()));
    let joined = || StreamJoined::<String, String, String>::with(Utf8, Utf8, Utf8);
    rekeyed
        .join_with(
            &s2,
            |x, y| format!("{x}{y}"),
            window_100()?,
            joined().with_name("first-join"),
        )
        .to("out-one");
    rekeyed
        .join_with(
            &s3,
            |x, y| format!("{x}{y}"),
            window_100()?,
            joined().with_name("second-join"),
        )
        .to("out-two");
    assert_eq!(
        builder.build()?.describe().to_string(),
        KKJ_USER_NAMED_REPARTITION_TOPICS
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// SuppressTopologyTest
// ---------------------------------------------------------------------------------------

fn final_suppression(name: Option<&str>) -> Result<String> {
    let builder = StreamsBuilder::new();
    let mut suppressed = Suppressed::until_window_closes(BufferConfig::unbounded());
    if let Some(n) = name {
        suppressed = suppressed.with_name(n);
    }
    input(&builder, "input")
        .group_by_with(|k, _| k.clone(), Grouped::with(Utf8, Utf8))
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_millis(5),
            Duration::from_millis(5),
        )?)
        .count_with(Materialized::named("counts").with_caching_disabled())
        .suppress(suppressed)
        .to_stream()
        .map(|k, v| (format!("{k:?}"), *v))
        .to_with(
            "output-suppressed",
            Produced::with(Utf8, freshet_streams::Nullable(BigEndian)),
        );
    Ok(builder.build()?.describe().to_string())
}

#[test]
fn should_use_numbering_for_anonymous_final_suppression_node() -> Result<()> {
    assert_eq!(final_suppression(None)?, SUPPRESS_ANONYMOUS_FINAL_TOPOLOGY);
    Ok(())
}

#[test]
fn should_apply_name_to_final_suppression_node() -> Result<()> {
    assert_eq!(
        final_suppression(Some("myname"))?,
        SUPPRESS_NAMED_FINAL_TOPOLOGY
    );
    Ok(())
}

fn intermediate_suppression(name: Option<&str>) -> Result<String> {
    let builder = StreamsBuilder::new();
    let mut suppressed =
        Suppressed::until_time_limit(Duration::from_secs(1), BufferConfig::unbounded());
    if let Some(n) = name {
        suppressed = suppressed.with_name(n);
    }
    input(&builder, "input")
        .group_by_key()
        .count()
        .suppress(suppressed)
        .to_stream()
        .to_with(
            "output",
            Produced::with(Utf8, freshet_streams::Nullable(BigEndian)),
        );
    Ok(builder.build()?.describe().to_string())
}

#[test]
fn should_use_numbering_for_anonymous_suppression_node() -> Result<()> {
    assert_eq!(
        intermediate_suppression(None)?,
        SUPPRESS_ANONYMOUS_INTERMEDIATE_TOPOLOGY
    );
    Ok(())
}

#[test]
fn should_apply_name_to_suppression_node() -> Result<()> {
    assert_eq!(
        intermediate_suppression(Some("asdf"))?,
        SUPPRESS_NAMED_INTERMEDIATE_TOPOLOGY
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// RepartitionTopicNamingTest (NO_OPTIMIZATION): `-->` lists in Kafka's insertion order.
// ---------------------------------------------------------------------------------------

struct Collect;

impl Processor<String, String, (), ()> for Collect {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, (), ()>,
        _record: Record<String, String>,
    ) -> Result<()> {
        Ok(())
    }
}

#[test]
fn repartition_topic_naming_unoptimized_topology() -> Result<()> {
    let builder = StreamsBuilder::new();
    let mapped = input(&builder, "input").map(|k, v| (k.to_uppercase(), v.clone()));
    mapped
        .filter(|k, _| k == "B")
        .map_values(|v| v.to_uppercase())
        .process(|| Collect, &[]);
    let count_stream = mapped
        .group_by_key_with(Grouped::named("count-stream"))
        .count_with(Materialized::with(Utf8, BigEndian))
        .to_stream();
    count_stream.to_with(
        "outputTopic_0",
        Produced::with(Utf8, freshet_streams::Nullable(BigEndian)),
    );
    mapped
        .group_by_key_with(Grouped::named("aggregate-stream"))
        .aggregate_with(
            || 0_i32,
            |_, v, agg| agg + v.len() as i32,
            Materialized::with(Utf8, BigEndian),
        )
        .to_stream()
        .to_with(
            "outputTopic_1",
            Produced::with(Utf8, freshet_streams::Nullable(BigEndian)),
        );
    mapped
        .filter(|_, _| true)
        .peek(|_, _| {})
        .group_by_key_with(Grouped::named("reduced-stream"))
        .reduce_with(|a, b| format!("{a}:{b}"), Materialized::with(Utf8, Utf8))
        .to_stream()
        .to_with(
            "outputTopic_2",
            Produced::with(Utf8, freshet_streams::Nullable(Utf8)),
        );
    mapped
        .filter(|k, _| k == "A")
        .join_with(
            &count_stream,
            |v1, v2| format!("{v1}:{v2:?}"),
            JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(5000))?,
            StreamJoined::with(Utf8, Utf8, freshet_streams::Nullable(BigEndian))
                .with_store_name("joined-stream")
                .with_name("joined-stream"),
        )
        .to("outputTopicForJoin");
    assert_eq!(
        builder.build()?.describe().to_string(),
        RTN_EXPECTED_UNOPTIMIZED_TOPOLOGY
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Kafka's expected texts, verbatim (TopologyTest, KStreamImplTest, KStreamKTableJoinTest,
// KStreamKStreamJoinTest, SuppressTopologyTest, RepartitionTopicNamingTest).
// ---------------------------------------------------------------------------------------

const TT_STREAM_STREAM_JOIN_DEFAULT_STORES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-JOINTHIS-0000000004-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [KSTREAM-JOINOTHER-0000000005-store])
      --> KSTREAM-JOINOTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINOTHER-0000000005 (stores: [KSTREAM-JOINTHIS-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [KSTREAM-JOINOTHER-0000000005-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-JOINOTHER-0000000005

"#;

const TT_STREAM_STREAM_JOIN_CUSTOM_STORES_NAMES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [custom-name-this-join-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [custom-name-other-join-store])
      --> KSTREAM-JOINOTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINOTHER-0000000005 (stores: [custom-name-this-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [custom-name-other-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-JOINOTHER-0000000005

"#;

const TT_STREAM_STREAM_JOIN_CUSTOM_STORES_SUPPLIERS: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [in-memory-join-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [in-memory-join-store-other])
      --> KSTREAM-JOINOTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINOTHER-0000000005 (stores: [in-memory-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [in-memory-join-store-other])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-JOINOTHER-0000000005

"#;

const TT_STREAM_STREAM_LEFT_JOIN_DEFAULT_STORES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-JOINTHIS-0000000004-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [KSTREAM-OUTEROTHER-0000000005-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [KSTREAM-OUTEROTHER-0000000005-store, KSTREAM-OUTERSHARED-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [KSTREAM-JOINTHIS-0000000004-store, KSTREAM-OUTERSHARED-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

"#;

const TT_STREAM_STREAM_LEFT_JOIN_CUSTOM_STORES_NAMES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [custom-name-this-join-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [custom-name-outer-other-join-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [custom-name-outer-other-join-store, custom-name-left-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [custom-name-this-join-store, custom-name-left-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

"#;

const TT_STREAM_STREAM_LEFT_JOIN_CUSTOM_STORES_SUPPLIERS: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [in-memory-join-store])
      --> KSTREAM-JOINTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [in-memory-join-store-other])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-JOINTHIS-0000000004 (stores: [in-memory-join-store-other, in-memory-join-store-left-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [in-memory-join-store, in-memory-join-store-left-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-JOINTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

"#;

const TT_STREAM_STREAM_OUTER_JOIN_DEFAULT_STORES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [KSTREAM-OUTERTHIS-0000000004-store])
      --> KSTREAM-OUTERTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [KSTREAM-OUTEROTHER-0000000005-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [KSTREAM-OUTERTHIS-0000000004-store, KSTREAM-OUTERSHARED-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-OUTERTHIS-0000000004 (stores: [KSTREAM-OUTEROTHER-0000000005-store, KSTREAM-OUTERSHARED-0000000004-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-OUTERTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

"#;

const TT_STREAM_STREAM_OUTER_JOIN_CUSTOM_STORES_NAMES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])
      --> KSTREAM-WINDOWED-0000000002
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])
      --> KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-WINDOWED-0000000002 (stores: [custom-name-outer-this-join-store])
      --> KSTREAM-OUTERTHIS-0000000004
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-WINDOWED-0000000003 (stores: [custom-name-outer-other-join-store])
      --> KSTREAM-OUTEROTHER-0000000005
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-OUTEROTHER-0000000005 (stores: [custom-name-outer-this-join-store, custom-name-outer-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000003
    Processor: KSTREAM-OUTERTHIS-0000000004 (stores: [custom-name-outer-other-join-store, custom-name-outer-shared-join-store])
      --> KSTREAM-MERGE-0000000006
      <-- KSTREAM-WINDOWED-0000000002
    Processor: KSTREAM-MERGE-0000000006 (stores: [])
      --> none
      <-- KSTREAM-OUTERTHIS-0000000004, KSTREAM-OUTEROTHER-0000000005

"#;

const TT_STREAM_STREAM_OUTER_JOIN_CUSTOM_STORES_SUPPLIERS: &str = r#"Topologies:
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

const TT_TIME_WINDOW_ZERO_ARG_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_TIME_WINDOW_NAMED_MATERIALIZED_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000001
    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_TIME_WINDOW_ANONYMOUS_MATERIALIZED_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000002])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_SLIDING_WINDOW_ZERO_ARG_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_SLIDING_WINDOW_NAMED_MATERIALIZED_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000001
    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_SLIDING_WINDOW_ZERO_ARG_COUNT_WITH_TOPOLOGY_CONFIG: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_SESSION_WINDOW_ZERO_ARG_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_SESSION_WINDOW_NAMED_MATERIALIZED_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000001
    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_SESSION_WINDOW_ANONYMOUS_MATERIALIZED_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000002])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const TT_TABLE_ZERO_ARG_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [input-topic-STATE-STORE-0000000000])
      --> KTABLE-SELECT-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-SELECT-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KTABLE-SOURCE-0000000002
    Sink: KSTREAM-SINK-0000000005 (topic: KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition)
      <-- KTABLE-SELECT-0000000003

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition])
      --> KTABLE-AGGREGATE-0000000007
    Processor: KTABLE-AGGREGATE-0000000007 (stores: [KTABLE-AGGREGATE-STATE-STORE-0000000004])
      --> none
      <-- KSTREAM-SOURCE-0000000006

"#;

const TT_TABLE_NAMED_MATERIALIZED_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [input-topic-STATE-STORE-0000000000])
      --> KTABLE-SELECT-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-SELECT-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KTABLE-SOURCE-0000000002
    Sink: KSTREAM-SINK-0000000004 (topic: count-store-repartition)
      <-- KTABLE-SELECT-0000000003

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000005 (topics: [count-store-repartition])
      --> KTABLE-AGGREGATE-0000000006
    Processor: KTABLE-AGGREGATE-0000000006 (stores: [count-store])
      --> none
      <-- KSTREAM-SOURCE-0000000005

"#;

const TT_TABLE_ANONYMOUS_MATERIALIZED_COUNT: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [input-topic-STATE-STORE-0000000000])
      --> KTABLE-SELECT-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-SELECT-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KTABLE-SOURCE-0000000002
    Sink: KSTREAM-SINK-0000000005 (topic: KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition)
      <-- KTABLE-SELECT-0000000003

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition])
      --> KTABLE-AGGREGATE-0000000007
    Processor: KTABLE-AGGREGATE-0000000007 (stores: [KTABLE-AGGREGATE-STATE-STORE-0000000004])
      --> none
      <-- KSTREAM-SOURCE-0000000006

"#;

const TT_K_TABLE_NON_MATERIALIZED_MAP_VALUES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [])
      --> KTABLE-MAPVALUES-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-MAPVALUES-0000000003 (stores: [])
      --> none
      <-- KTABLE-SOURCE-0000000002

"#;

const TT_K_TABLE_ANONYMOUS_MATERIALIZED_MAP_VALUES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [])
      --> KTABLE-MAPVALUES-0000000004
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-MAPVALUES-0000000004 (stores: [])
      --> none
      <-- KTABLE-SOURCE-0000000002

"#;

const TT_K_TABLE_NAMED_MATERIALIZED_MAP_VALUES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [])
      --> KTABLE-MAPVALUES-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-MAPVALUES-0000000003 (stores: [store-name])
      --> none
      <-- KTABLE-SOURCE-0000000002

"#;

const TT_K_TABLE_NON_MATERIALIZED_FILTER: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [])
      --> KTABLE-FILTER-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-FILTER-0000000003 (stores: [])
      --> none
      <-- KTABLE-SOURCE-0000000002

"#;

const TT_K_TABLE_ANONYMOUS_MATERIALIZED_FILTER: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [])
      --> KTABLE-FILTER-0000000004
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-FILTER-0000000004 (stores: [])
      --> none
      <-- KTABLE-SOURCE-0000000002

"#;

const TT_K_TABLE_NAMED_MATERIALIZED_FILTER: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [])
      --> KTABLE-FILTER-0000000003
      <-- KSTREAM-SOURCE-0000000001
    Processor: KTABLE-FILTER-0000000003 (stores: [store-name])
      --> none
      <-- KTABLE-SOURCE-0000000002

"#;

const KSI_NOT_MATERIALIZED_K_TABLE_FROM_K_STREAM: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-TOTABLE-0000000001
    Processor: KSTREAM-TOTABLE-0000000001 (stores: [])
      --> KTABLE-TOSTREAM-0000000003
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-TOSTREAM-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-TOTABLE-0000000001
    Sink: KSTREAM-SINK-0000000004 (topic: output)
      <-- KTABLE-TOSTREAM-0000000003

"#;

const KSI_PROCESS_WITH_OLD_PROCESSOR_AND_STATE: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> p
    Processor: p (stores: [sum])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const KSI_BIND_STATE_WITH_OLD_PROCESSOR: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> p
    Processor: p (stores: [])
      --> KSTREAM-SINK-0000000001
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000001 (topic: output)
      <-- p

"#;

const KSI_PROCESS_VALUES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> fkp
    Processor: fkp (stores: [])
      --> KSTREAM-SINK-0000000001
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000001 (topic: output)
      <-- fkp

"#;

const KSI_MATERIALIZE_K_TABLE_FROM_K_STREAM: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-TOTABLE-0000000001
    Processor: KSTREAM-TOTABLE-0000000001 (stores: [store])
      --> none
      <-- KSTREAM-SOURCE-0000000000

"#;

const KSI_KEY_CHANGE_K_TABLE_FROM_K_STREAM: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-MAP-0000000001
    Processor: KSTREAM-MAP-0000000001 (stores: [])
      --> KSTREAM-FILTER-0000000005
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-FILTER-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-MAP-0000000001
    Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-TOTABLE-0000000002-repartition)
      <-- KSTREAM-FILTER-0000000005

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KSTREAM-TOTABLE-0000000002-repartition])
      --> KSTREAM-TOTABLE-0000000002
    Processor: KSTREAM-TOTABLE-0000000002 (stores: [])
      --> KTABLE-TOSTREAM-0000000007
      <-- KSTREAM-SOURCE-0000000006
    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-TOTABLE-0000000002
    Sink: KSTREAM-SINK-0000000008 (topic: output)
      <-- KTABLE-TOSTREAM-0000000007

"#;

const KSI_TABLE_TABLE_JOIN_WITH_K_STREAM_TO_K_TABLE: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [left])
      --> KSTREAM-TOTABLE-0000000001
    Source: KSTREAM-SOURCE-0000000003 (topics: [right])
      --> KSTREAM-TOTABLE-0000000004
    Processor: KSTREAM-TOTABLE-0000000001 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])
      --> KTABLE-JOINTHIS-0000000007
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-TOTABLE-0000000004 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])
      --> KTABLE-JOINOTHER-0000000008
      <-- KSTREAM-SOURCE-0000000003
    Processor: KTABLE-JOINOTHER-0000000008 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])
      --> KTABLE-MERGE-0000000006
      <-- KSTREAM-TOTABLE-0000000004
    Processor: KTABLE-JOINTHIS-0000000007 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])
      --> KTABLE-MERGE-0000000006
      <-- KSTREAM-TOTABLE-0000000001
    Processor: KTABLE-MERGE-0000000006 (stores: [])
      --> KTABLE-TOSTREAM-0000000009
      <-- KTABLE-JOINTHIS-0000000007, KTABLE-JOINOTHER-0000000008
    Processor: KTABLE-TOSTREAM-0000000009 (stores: [])
      --> KSTREAM-SINK-0000000010
      <-- KTABLE-MERGE-0000000006
    Sink: KSTREAM-SINK-0000000010 (topic: output)
      <-- KTABLE-TOSTREAM-0000000009

"#;

const KSI_STREAM_TABLE_JOIN_WITH_K_STREAM_TO_K_TABLE: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [streamTopic])
      --> KSTREAM-JOIN-0000000004
    Processor: KSTREAM-JOIN-0000000004 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000003])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-SOURCE-0000000000
    Source: KSTREAM-SOURCE-0000000001 (topics: [tableTopic])
      --> KSTREAM-TOTABLE-0000000002
    Sink: KSTREAM-SINK-0000000005 (topic: output)
      <-- KSTREAM-JOIN-0000000004
    Processor: KSTREAM-TOTABLE-0000000002 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000003])
      --> none
      <-- KSTREAM-SOURCE-0000000001

"#;

const KSI_GROUP_BY_COUNT_WITH_K_STREAM_TO_K_TABLE: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-TOTABLE-0000000001
    Processor: KSTREAM-TOTABLE-0000000001 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])
      --> KTABLE-SELECT-0000000003
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-SELECT-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KSTREAM-TOTABLE-0000000001
    Sink: KSTREAM-SINK-0000000005 (topic: KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition)
      <-- KTABLE-SELECT-0000000003

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition])
      --> KTABLE-AGGREGATE-0000000007
    Processor: KTABLE-AGGREGATE-0000000007 (stores: [KTABLE-AGGREGATE-STATE-STORE-0000000004])
      --> KTABLE-TOSTREAM-0000000008
      <-- KSTREAM-SOURCE-0000000006
    Processor: KTABLE-TOSTREAM-0000000008 (stores: [])
      --> KSTREAM-SINK-0000000009
      <-- KTABLE-AGGREGATE-0000000007
    Sink: KSTREAM-SINK-0000000009 (topic: output)
      <-- KTABLE-TOSTREAM-0000000008

"#;

const KSI_TRIGGER_MATERIALIZED_WITH_K_TABLE_FROM_K_STREAM: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-TOTABLE-0000000001
    Processor: KSTREAM-TOTABLE-0000000001 (stores: [])
      --> KTABLE-MAPVALUES-0000000003
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-MAPVALUES-0000000003 (stores: [store])
      --> KTABLE-TOSTREAM-0000000004
      <-- KSTREAM-TOTABLE-0000000001
    Processor: KTABLE-TOSTREAM-0000000004 (stores: [])
      --> KSTREAM-SINK-0000000005
      <-- KTABLE-MAPVALUES-0000000003
    Sink: KSTREAM-SINK-0000000005 (topic: output)
      <-- KTABLE-TOSTREAM-0000000004

"#;

const KKTJ_GENERATED_REPARTITION_TOPIC_NAMES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000007
    Processor: KSTREAM-MAP-0000000007 (stores: [])
      --> KSTREAM-FILTER-0000000009
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-FILTER-0000000009 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-MAP-0000000007
    Sink: KSTREAM-SINK-0000000008 (topic: KSTREAM-MAP-0000000007-repartition)
      <-- KSTREAM-FILTER-0000000009

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000010 (topics: [KSTREAM-MAP-0000000007-repartition])
      --> KSTREAM-JOIN-0000000011, KSTREAM-JOIN-0000000016
    Processor: KSTREAM-JOIN-0000000011 (stores: [topic2-STATE-STORE-0000000001])
      --> KSTREAM-SINK-0000000012
      <-- KSTREAM-SOURCE-0000000010
    Processor: KSTREAM-JOIN-0000000016 (stores: [topic3-STATE-STORE-0000000004])
      --> KSTREAM-SINK-0000000017
      <-- KSTREAM-SOURCE-0000000010
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic2])
      --> KTABLE-SOURCE-0000000003
    Source: KSTREAM-SOURCE-0000000005 (topics: [topic3])
      --> KTABLE-SOURCE-0000000006
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- KSTREAM-JOIN-0000000011
    Sink: KSTREAM-SINK-0000000017 (topic: out-two)
      <-- KSTREAM-JOIN-0000000016
    Processor: KTABLE-SOURCE-0000000003 (stores: [topic2-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000006 (stores: [topic3-STATE-STORE-0000000004])
      --> none
      <-- KSTREAM-SOURCE-0000000005

"#;

const KKTJ_USER_PROVIDED_REPARTITION_TOPIC_NAMES: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000007
    Processor: KSTREAM-MAP-0000000007 (stores: [])
      --> first-join-repartition-filter, second-join-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: first-join-repartition-filter (stores: [])
      --> first-join-repartition-sink
      <-- KSTREAM-MAP-0000000007
    Processor: second-join-repartition-filter (stores: [])
      --> second-join-repartition-sink
      <-- KSTREAM-MAP-0000000007
    Sink: first-join-repartition-sink (topic: first-join-repartition)
      <-- first-join-repartition-filter
    Sink: second-join-repartition-sink (topic: second-join-repartition)
      <-- second-join-repartition-filter

  Sub-topology: 1
    Source: first-join-repartition-source (topics: [first-join-repartition])
      --> first-join
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic2])
      --> KTABLE-SOURCE-0000000003
    Processor: first-join (stores: [topic2-STATE-STORE-0000000001])
      --> KSTREAM-SINK-0000000012
      <-- first-join-repartition-source
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- first-join
    Processor: KTABLE-SOURCE-0000000003 (stores: [topic2-STATE-STORE-0000000001])
      --> none
      <-- KSTREAM-SOURCE-0000000002

  Sub-topology: 2
    Source: second-join-repartition-source (topics: [second-join-repartition])
      --> second-join
    Source: KSTREAM-SOURCE-0000000005 (topics: [topic3])
      --> KTABLE-SOURCE-0000000006
    Processor: second-join (stores: [topic3-STATE-STORE-0000000004])
      --> KSTREAM-SINK-0000000017
      <-- second-join-repartition-source
    Sink: KSTREAM-SINK-0000000017 (topic: out-two)
      <-- second-join
    Processor: KTABLE-SOURCE-0000000006 (stores: [topic3-STATE-STORE-0000000004])
      --> none
      <-- KSTREAM-SOURCE-0000000005

"#;

const KKJ_GENERATED_REPARTITION_TOPIC: &str = r#"Topologies:
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

const KKJ_USER_NAMED_REPARTITION_TOPICS: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000003
    Processor: KSTREAM-MAP-0000000003 (stores: [])
      --> second-join-left-repartition-filter, first-join-left-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: first-join-left-repartition-filter (stores: [])
      --> first-join-left-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Processor: second-join-left-repartition-filter (stores: [])
      --> second-join-left-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Sink: first-join-left-repartition-sink (topic: first-join-left-repartition)
      <-- first-join-left-repartition-filter
    Sink: second-join-left-repartition-sink (topic: second-join-left-repartition)
      <-- second-join-left-repartition-filter

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000001 (topics: [topic2])
      --> first-join-other-windowed
    Source: first-join-left-repartition-source (topics: [first-join-left-repartition])
      --> first-join-this-windowed
    Processor: first-join-other-windowed (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> first-join-other-join
      <-- KSTREAM-SOURCE-0000000001
    Processor: first-join-this-windowed (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> first-join-this-join
      <-- first-join-left-repartition-source
    Processor: first-join-other-join (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> first-join-merge
      <-- first-join-other-windowed
    Processor: first-join-this-join (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> first-join-merge
      <-- first-join-this-windowed
    Processor: first-join-merge (stores: [])
      --> KSTREAM-SINK-0000000012
      <-- first-join-this-join, first-join-other-join
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- first-join-merge

  Sub-topology: 2
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic3])
      --> second-join-other-windowed
    Source: second-join-left-repartition-source (topics: [second-join-left-repartition])
      --> second-join-this-windowed
    Processor: second-join-other-windowed (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> second-join-other-join
      <-- KSTREAM-SOURCE-0000000002
    Processor: second-join-this-windowed (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> second-join-this-join
      <-- second-join-left-repartition-source
    Processor: second-join-other-join (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> second-join-merge
      <-- second-join-other-windowed
    Processor: second-join-this-join (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> second-join-merge
      <-- second-join-this-windowed
    Processor: second-join-merge (stores: [])
      --> KSTREAM-SINK-0000000021
      <-- second-join-this-join, second-join-other-join
    Sink: KSTREAM-SINK-0000000021 (topic: out-two)
      <-- second-join-merge

"#;

const SUPPRESS_NAMED_FINAL_TOPOLOGY: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-KEY-SELECT-0000000001
    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])
      --> counts-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: counts-repartition-filter (stores: [])
      --> counts-repartition-sink
      <-- KSTREAM-KEY-SELECT-0000000001
    Sink: counts-repartition-sink (topic: counts-repartition)
      <-- counts-repartition-filter

  Sub-topology: 1
    Source: counts-repartition-source (topics: [counts-repartition])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])
      --> myname
      <-- counts-repartition-source
    Processor: myname (stores: [myname-store])
      --> KTABLE-TOSTREAM-0000000006
      <-- KSTREAM-AGGREGATE-0000000002
    Processor: KTABLE-TOSTREAM-0000000006 (stores: [])
      --> KSTREAM-MAP-0000000007
      <-- myname
    Processor: KSTREAM-MAP-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KTABLE-TOSTREAM-0000000006
    Sink: KSTREAM-SINK-0000000008 (topic: output-suppressed)
      <-- KSTREAM-MAP-0000000007

"#;

const SUPPRESS_ANONYMOUS_FINAL_TOPOLOGY: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-KEY-SELECT-0000000001
    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])
      --> counts-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: counts-repartition-filter (stores: [])
      --> counts-repartition-sink
      <-- KSTREAM-KEY-SELECT-0000000001
    Sink: counts-repartition-sink (topic: counts-repartition)
      <-- counts-repartition-filter

  Sub-topology: 1
    Source: counts-repartition-source (topics: [counts-repartition])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])
      --> KTABLE-SUPPRESS-0000000006
      <-- counts-repartition-source
    Processor: KTABLE-SUPPRESS-0000000006 (stores: [KTABLE-SUPPRESS-STATE-STORE-0000000007])
      --> KTABLE-TOSTREAM-0000000008
      <-- KSTREAM-AGGREGATE-0000000002
    Processor: KTABLE-TOSTREAM-0000000008 (stores: [])
      --> KSTREAM-MAP-0000000009
      <-- KTABLE-SUPPRESS-0000000006
    Processor: KSTREAM-MAP-0000000009 (stores: [])
      --> KSTREAM-SINK-0000000010
      <-- KTABLE-TOSTREAM-0000000008
    Sink: KSTREAM-SINK-0000000010 (topic: output-suppressed)
      <-- KSTREAM-MAP-0000000009

"#;

const SUPPRESS_NAMED_INTERMEDIATE_TOPOLOGY: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> asdf
      <-- KSTREAM-SOURCE-0000000000
    Processor: asdf (stores: [asdf-store])
      --> KTABLE-TOSTREAM-0000000003
      <-- KSTREAM-AGGREGATE-0000000002
    Processor: KTABLE-TOSTREAM-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- asdf
    Sink: KSTREAM-SINK-0000000004 (topic: output)
      <-- KTABLE-TOSTREAM-0000000003

"#;

const SUPPRESS_ANONYMOUS_INTERMEDIATE_TOPOLOGY: &str = r#"Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> KTABLE-SUPPRESS-0000000003
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-SUPPRESS-0000000003 (stores: [KTABLE-SUPPRESS-STATE-STORE-0000000004])
      --> KTABLE-TOSTREAM-0000000005
      <-- KSTREAM-AGGREGATE-0000000002
    Processor: KTABLE-TOSTREAM-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000006
      <-- KTABLE-SUPPRESS-0000000003
    Sink: KSTREAM-SINK-0000000006 (topic: output)
      <-- KTABLE-TOSTREAM-0000000005

"#;

const RTN_EXPECTED_UNOPTIMIZED_TOPOLOGY: &str = r#"Topologies:
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

const KSI_FOREIGN_KEY_TABLE_TABLE_JOIN_WITH_K_TABLE_FROM_K_STREAM: &str = r#"Topologies:
   Sub-topology: 0
    Source: KTABLE-SOURCE-0000000016 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic])
      --> KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017
    Source: KSTREAM-SOURCE-0000000000 (topics: [input1])
      --> KSTREAM-TOTABLE-0000000001
    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])
      --> KTABLE-FK-JOIN-OUTPUT-0000000018
      <-- KTABLE-SOURCE-0000000016
    Processor: KSTREAM-TOTABLE-0000000001 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])
      --> KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-FK-JOIN-OUTPUT-0000000018 (stores: [])
      --> KTABLE-TOSTREAM-0000000020
      <-- KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017
    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007 (stores: [])
      --> KTABLE-SINK-0000000008
      <-- KSTREAM-TOTABLE-0000000001
    Processor: KTABLE-TOSTREAM-0000000020 (stores: [])
      --> KSTREAM-SINK-0000000021
      <-- KTABLE-FK-JOIN-OUTPUT-0000000018
    Sink: KSTREAM-SINK-0000000021 (topic: output)
      <-- KTABLE-TOSTREAM-0000000020
    Sink: KTABLE-SINK-0000000008 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic)
      <-- KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000003 (topics: [input2])
      --> KSTREAM-TOTABLE-0000000004
    Source: KTABLE-SOURCE-0000000009 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic])
      --> KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011
    Processor: KSTREAM-TOTABLE-0000000004 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])
      --> KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013
      <-- KSTREAM-SOURCE-0000000003
    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])
      --> KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012
      <-- KTABLE-SOURCE-0000000009
    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000005])
      --> KTABLE-SINK-0000000015
      <-- KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011
    Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])
      --> KTABLE-SINK-0000000015
      <-- KSTREAM-TOTABLE-0000000004
    Sink: KTABLE-SINK-0000000015 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic)
      <-- KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012, KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013

"#;
