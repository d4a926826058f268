//! What `StreamsBuilder::build` checks and records: build errors (missing serdes naming the
//! node, duplicate names, undeclared stores), warnings about generated names, internal
//! topics with their partition counts, and the split into sub-topologies.
//!
//! Kafka raises these as `TopologyException`s (duplicate names, unknown stores) or at start
//! (`ConfigException` for a missing default serde, naming the node since Kafka 3.x); here
//! `build()` returns them all at once in one `Error::Topology`.

use freshet_streams::{
    BigEndian, Consumed, Error, Grouped, Json, Materialized, PartitionCount, Processor,
    ProcessorContext, Produced, Record, Repartitioned, Result, Stores, StreamsBuilder, TopicName,
    Utf8,
};

/// A type with no serde registered.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Custom {
    n: i64,
}

fn build_error(builder: StreamsBuilder) -> String {
    match builder.build() {
        Err(Error::Topology(msg)) => msg,
        Ok(_) => panic!("expected a build error"),
        Err(other) => panic!("expected a topology error, got {other:?}"),
    }
}

#[test]
fn a_source_without_a_serde_is_named_in_the_error() {
    let builder = StreamsBuilder::new();
    builder.stream::<String, Custom>("in").to("out");
    let msg = build_error(builder);
    assert!(msg.contains("topology_build::Custom"), "{msg}");
    assert!(msg.contains("source KSTREAM-SOURCE-0000000000"), "{msg}");
}

#[test]
fn a_named_source_without_a_serde_is_named_in_the_error() {
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<String, Custom>(&["in"], Consumed::named("custom-source"))
        .to("out");
    let msg = build_error(builder);
    assert!(msg.contains("source custom-source"), "{msg}");
}

#[test]
fn a_sink_without_a_serde_is_named_in_the_error() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, i64>("in")
        .map_values(|v| Custom { n: *v })
        .to("out");
    let msg = build_error(builder);
    assert!(msg.contains("sink KSTREAM-SINK-0000000002"), "{msg}");
    assert!(msg.contains("topology_build::Custom"), "{msg}");
    // The source's serdes exist: it is not mentioned.
    assert!(!msg.contains("KSTREAM-SOURCE"), "{msg}");
}

#[test]
fn a_named_sink_without_a_serde_is_named_in_the_error() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, i64>("in")
        .map_values(|v| Custom { n: *v })
        .to_with("out", Produced::named("custom-sink"));
    let msg = build_error(builder);
    assert!(msg.contains("sink custom-sink"), "{msg}");
}

#[test]
fn a_store_without_a_serde_is_named_in_the_error() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, i64>("in")
        .group_by_key()
        .aggregate(|| Custom { n: 0 }, |_, v, agg| Custom { n: agg.n + v });
    let msg = build_error(builder);
    assert!(
        msg.contains("store KSTREAM-AGGREGATE-STATE-STORE-0000000001"),
        "{msg}"
    );
}

#[test]
fn serdes_given_carried_or_registered_build() -> Result<()> {
    // Given at the source, carried to the sink.
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<String, Custom>(&["in"], Consumed::with(Utf8, Json::default()))
        .to("out");
    builder.build()?;
    // Registered as the type's default.
    let builder = StreamsBuilder::new();
    builder.register_serde::<Custom>(Json::default());
    builder
        .stream::<String, i64>("in")
        .map_values(|v| Custom { n: *v })
        .to("out");
    builder.build()?;
    Ok(())
}

#[test]
fn every_problem_is_reported_at_once() {
    let builder = StreamsBuilder::new();
    builder.stream::<String, Custom>("a").to("out-a");
    builder
        .stream::<String, String>("b")
        .filter(|_, _| true)
        .named("dup");
    builder
        .stream::<String, String>("c")
        .filter(|_, _| true)
        .named("dup");
    let msg = build_error(builder);
    assert!(msg.contains("source KSTREAM-SOURCE-0000000000"), "{msg}");
    assert!(msg.contains("node name dup is used twice"), "{msg}");
}

#[test]
fn duplicate_node_names_fail() {
    let builder = StreamsBuilder::new();
    let s = builder.stream::<String, String>("in");
    s.map_values(|v| v.clone()).named("same");
    s.filter(|_, _| true).named("same");
    let msg = build_error(builder);
    assert!(msg.contains("node name same is used twice"), "{msg}");
}

#[test]
fn a_sink_named_like_a_processor_fails() {
    let builder = StreamsBuilder::new();
    let s = builder
        .stream::<String, String>("in")
        .filter(|_, _| true)
        .named("x");
    s.to_with("out", Produced::named("x"));
    let msg = build_error(builder);
    assert!(msg.contains("node name x is used twice"), "{msg}");
}

struct Noop;

impl Processor<String, String, String, String> for Noop {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, String, String>,
        _r: Record<String, String>,
    ) -> Result<()> {
        Ok(())
    }
}

#[test]
fn an_undeclared_store_fails() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .process(|| Noop, &["missing-store"]);
    let msg = build_error(builder);
    assert!(
        msg.contains("node KSTREAM-PROCESSOR-0000000001 uses undeclared store missing-store"),
        "{msg}"
    );
}

#[test]
fn a_store_declared_twice_with_different_kinds_fails() {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value::<String, String>("s", Utf8, Utf8));
    builder.add_state_store(Stores::session::<String, String>("s", 100, Utf8, Utf8));
    let msg = build_error(builder);
    assert!(
        msg.contains("a different state store has already been added with the name s"),
        "{msg}"
    );
}

#[test]
fn a_store_shared_by_two_processors_is_declared_once() -> Result<()> {
    let builder = StreamsBuilder::new();
    let store = Stores::key_value::<String, String>("s", Utf8, Utf8);
    // The same declaration added twice is one store; a different one under the same name is
    // refused (as Kafka's `isCompatibleWith`).
    builder.add_state_store(store.clone());
    builder.add_state_store(store);
    builder
        .stream::<String, String>("a")
        .process(|| Noop, &["s"]);
    builder
        .stream::<String, String>("b")
        .process(|| Noop, &["s"]);
    let topology = builder.build()?;
    assert_eq!(topology.stores().count(), 1);
    // The shared store joins both sources into one sub-topology.
    assert_eq!(topology.subtopologies().len(), 1);
    Ok(())
}

#[test]
fn warnings_list_generated_store_and_topic_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = builder
        .stream::<String, String>("in")
        .select_key(|_, v| v.clone());
    s.group_by_key().count();
    s.repartition();
    let topology = builder.build()?;
    assert_eq!(topology.warnings().len(), 1);
    let w = &topology.warnings()[0];
    for name in [
        "store KSTREAM-AGGREGATE-STATE-STORE-0000000002",
        "internal topic KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition",
        "internal topic KSTREAM-REPARTITION-0000000007-repartition",
    ] {
        assert!(w.contains(name), "{name} in {w}");
    }
    Ok(())
}

#[test]
fn no_warnings_when_everything_stateful_is_named() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = builder
        .stream::<String, String>("in")
        .select_key(|_, v| v.clone());
    s.group_by_key_with(Grouped::named("by-value"))
        .count_with(Materialized::named("counts"));
    // A named store alone names the repartition topic too (`counts2-repartition`).
    s.group_by_key().count_with(Materialized::named("counts2"));
    s.repartition_with(Repartitioned::named("again"));
    let topology = builder.build()?;
    assert!(topology.warnings().is_empty(), "{:?}", topology.warnings());
    let names: Vec<&str> = topology
        .internal_topics()
        .iter()
        .map(|t| t.name.shown())
        .collect();
    assert_eq!(
        names,
        vec![
            "by-value-repartition",
            "counts2-repartition",
            "again-repartition"
        ]
    );
    Ok(())
}

#[test]
fn stateless_topologies_have_no_warnings() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .map(|k, v| (v.clone(), k.clone()))
        .to("out");
    assert!(builder.build()?.warnings().is_empty());
    Ok(())
}

fn external(t: &str) -> TopicName {
    TopicName::External(t.to_string())
}

fn internal(t: &str) -> TopicName {
    TopicName::Internal(t.to_string())
}

#[test]
fn internal_topic_partitions_are_fixed_or_the_max_of_upstream_sources() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = builder
        .stream_with::<String, String>(&["a", "b"], Consumed::default())
        .select_key(|_, v| v.clone());
    // Unset: the max of the sources upstream (`a` and `b`).
    let first = s.repartition_with(Repartitioned::named("first"));
    // Downstream of `first`: the max of `first-repartition`.
    first.repartition_with(Repartitioned::named("second"));
    // Set explicitly.
    s.repartition_with(Repartitioned::named("fixed").with_number_of_partitions(7));
    let topology = builder.build()?;
    let topics = topology.internal_topics();
    assert_eq!(topics.len(), 3);
    assert_eq!(topics[0].name, internal("first-repartition"));
    assert_eq!(
        topics[0].partitions,
        PartitionCount::MaxOf(vec![external("a"), external("b")])
    );
    assert_eq!(topics[1].name, internal("second-repartition"));
    assert_eq!(
        topics[1].partitions,
        PartitionCount::MaxOf(vec![internal("first-repartition")])
    );
    assert_eq!(topics[2].name, internal("fixed-repartition"));
    assert_eq!(topics[2].partitions, PartitionCount::Fixed(7));
    // Kafka's `RepartitionTopicConfig`.
    for t in topics {
        assert!(t
            .config
            .contains(&("cleanup.policy".to_string(), "delete".to_string())));
        assert!(t
            .config
            .contains(&("retention.ms".to_string(), "-1".to_string())));
    }
    assert_eq!(
        internal("first-repartition").resolve("my-app"),
        "my-app-first-repartition"
    );
    Ok(())
}

#[test]
fn subtopologies_are_split_at_repartition_topics() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<String, String>(&["words"], Consumed::with(Utf8, Utf8))
        .group_by_with(|_, w| w.clone(), Grouped::named("by-word"))
        .count_with(Materialized::named("counts"))
        .to_stream()
        .to_with(
            "counts-out",
            Produced::with(Utf8, freshet_streams::Nullable(BigEndian)),
        );
    builder.stream::<String, String>("other").to("other-out");
    let topology = builder.build()?;
    let subs = topology.subtopologies();
    assert_eq!(subs.len(), 3);
    assert_eq!(subs[0].id, 0);
    assert_eq!(subs[0].source_topics, vec![external("words")]);
    assert_eq!(subs[0].sink_topics, vec![internal("by-word-repartition")]);
    assert!(subs[0].stores.is_empty());
    // Numbered by their first node: the `other` source comes after the repartition source.
    assert_eq!(subs[1].id, 1);
    assert_eq!(subs[1].source_topics, vec![internal("by-word-repartition")]);
    assert_eq!(subs[1].sink_topics, vec![external("counts-out")]);
    assert_eq!(subs[1].stores, vec!["counts".to_string()]);
    assert_eq!(subs[2].id, 2);
    assert_eq!(subs[2].source_topics, vec![external("other")]);
    assert_eq!(
        topology.subtopology_of_topic("app-by-word-repartition", "app"),
        Some(1)
    );
    assert_eq!(topology.subtopology_of_topic("other", "app"), Some(2));
    assert_eq!(topology.subtopology_of_topic("nothing", "app"), None);
    Ok(())
}

#[test]
fn an_empty_builder_builds_an_empty_topology() -> Result<()> {
    let topology = StreamsBuilder::new().build()?;
    assert!(topology.subtopologies().is_empty());
    assert!(topology.internal_topics().is_empty());
    assert!(topology.warnings().is_empty());
    Ok(())
}

#[test]
fn a_topic_read_by_two_sources_is_refused() {
    let builder = freshet_streams::StreamsBuilder::new();
    builder.stream::<String, String>("a").to("b");
    builder.stream::<String, String>("a").to("c");
    let err = builder.build().map(|_| ()).unwrap_err().to_string();
    assert!(
        err.contains("topic a has already been registered by another source (KSTREAM-SOURCE-0000000000, then KSTREAM-SOURCE-0000000002)"),
        "{err}"
    );
}

#[test]
fn two_different_stores_with_one_name_are_refused() {
    use freshet_streams::Materialized;
    let builder = freshet_streams::StreamsBuilder::new();
    let input = builder.stream::<String, String>("in");
    input
        .group_by_key()
        .count_with(Materialized::named("counts"));
    input
        .group_by_key()
        .reduce_with(|a, b| a + &b, Materialized::named("counts"));
    let err = builder.build().map(|_| ()).unwrap_err().to_string();
    assert!(
        err.contains("a different state store has already been added with the name counts"),
        "{err}"
    );
}

#[test]
fn repartition_with_serdes_carries_them_downstream() -> freshet_streams::Result<()> {
    use freshet_streams::{testing::TopologyTestDriver, Json, Repartitioned, Utf8};
    let builder = freshet_streams::StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .map(|k, v| (k.clone(), vec![v.clone()]))
        .repartition_with(Repartitioned::with(Utf8, Json::<Vec<String>>::default()))
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<String, String>("in")
        .pipe("k".into(), "v".into(), 0)?;
    let raw = driver.output::<String, String>("out").read_raw();
    assert_eq!(raw[0].value.as_deref(), Some(&b"[\"v\"]"[..]));
    Ok(())
}
