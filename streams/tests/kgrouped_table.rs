//! `KTable::group_by` and `KGroupedTable` count / reduce / aggregate.
//!
//! Ports, with Kafka's inputs and asserted outputs:
//! - `KTableAggregateTest`: `testAggBasic`, `testAggRepartition`, `testCount`,
//!   `testCountWithInternalStore`, `testRemoveOldBeforeAddNew`,
//!   `testShouldNotSendTransientStateIfNotUpgrading`. Not ported: `testAggOfVersionedStore`
//!   and `testCountOfVersionedStore` (versioned stores), `testShouldSendTransientStateWhenUpgrading`
//!   (the `upgrade.from` config, which freshet does not have), `testNoEqualsAndNotSameObject` /
//!   `testNoEqualsAndSameObject` (Java object identity; freshet compares group keys by their
//!   serialized bytes, which `group_keys_are_compared_by_their_bytes` checks).
//! - `KGroupedTableImplTest`: `shouldReduce`, `shouldReduceWithInternalStoreName`,
//!   `shouldReduceAndMaterializeResults`, `shouldCountAndMaterializeResults`,
//!   `shouldAggregateAndMaterializeResults`. Not ported: the null-argument and invalid-store-name
//!   checks (the types rule out nulls; store names are not validated by freshet).
//! - `KTableReduceTest.shouldAddAndSubtract`, through a topology instead of a mocked context.
//! - `TopologyTest.tableZeroArgCountShouldPreserveTopologyStructure`,
//!   `tableNamedMaterializedCountShouldPreserveTopologyStructure` and
//!   `tableAnonymousMaterializedCountShouldPreserveTopologyStructure` (exact `describe()` text).
//!
//! `MockInitializer.STRING_INIT` is `"0"`, `MockAggregator.TOSTRING_ADDER` appends `+value`,
//! `TOSTRING_REMOVER` appends `-value`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    BigEndian, Consumed, Grouped, Materialized, Nullable, Processor, ProcessorContext, Record,
    Result, StreamsBuilder, Utf8,
};

type Seen<K, V> = Arc<Mutex<Vec<(K, V, i64)>>>;

/// Kafka's `MockApiProcessor`: records what reaches it.
struct Capture<K, V>(Seen<K, V>);

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Processor<K, V, K, ()>
    for Capture<K, V>
{
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, K, ()>,
        r: Record<K, V>,
    ) -> Result<()> {
        self.0.lock().push((r.key, r.value, r.timestamp));
        Ok(())
    }
}

fn init() -> String {
    "0".to_string()
}

fn adder<K>(_k: &K, v: &String, agg: String) -> String {
    format!("{agg}+{v}")
}

fn remover<K>(_k: &K, v: &String, agg: String) -> String {
    format!("{agg}-{v}")
}

fn strings(v: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    v.iter()
        .map(|(k, v, ts)| (k.to_string(), v.to_string(), *ts))
        .collect()
}

#[test]
fn test_agg_basic() -> Result<()> {
    let builder = StreamsBuilder::new();
    let seen: Seen<String, Option<String>> = Arc::default();
    let sink = seen.clone();
    builder
        .table_with::<String, String>(
            "topic1",
            Consumed::with(Utf8, Utf8),
            Materialized::default(),
        )
        .group_by_with(|k, v| (k.clone(), v.clone()), Grouped::with(Utf8, Utf8))
        .aggregate_with(
            init,
            adder,
            remover,
            Materialized::named("topic1-Canonized").with_value_serde(Utf8),
        )
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    for (k, v, ts) in [
        ("A", "1", 10),
        ("B", "2", 15),
        ("A", "3", 20),
        ("B", "4", 18),
        ("C", "5", 5),
        ("D", "6", 25),
        ("B", "7", 15),
        ("C", "8", 10),
    ] {
        input.pipe(k.into(), Some(v.into()), ts)?;
    }
    let got: Vec<(String, String, i64)> = seen
        .lock()
        .iter()
        .map(|(k, v, ts)| (k.clone(), v.clone().unwrap_or_default(), *ts))
        .collect();
    assert_eq!(
        got,
        strings(&[
            ("A", "0+1", 10),
            ("B", "0+2", 15),
            ("A", "0+1-1+3", 20),
            ("B", "0+2-2+4", 18),
            ("C", "0+5", 5),
            ("D", "0+6", 25),
            ("B", "0+2-2+4-4+7", 18),
            ("C", "0+5-5+8", 10),
        ])
    );
    Ok(())
}

#[test]
fn test_agg_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    let seen: Seen<Option<String>, Option<String>> = Arc::default();
    let sink = seen.clone();
    builder
        .table_with::<String, String>(
            "topic1",
            Consumed::with(Utf8, Utf8),
            Materialized::default(),
        )
        .group_by_with(
            |k, v| match k.as_str() {
                // Kafka's selector returns a null key for "null" and a null pair for "NULL":
                // both are skipped.
                "null" | "NULL" => (None, v.clone()),
                _ => (Some(v.clone()), v.clone()),
            },
            Grouped::with(Nullable(Utf8), Utf8),
        )
        .aggregate_with(
            init,
            adder,
            remover,
            Materialized::named("topic1-Canonized").with_value_serde(Utf8),
        )
        .to_stream()
        .process::<Option<String>, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    for (k, v, ts) in [
        ("A", Some("1"), 10),
        ("A", None, 15),
        ("A", Some("1"), 12),
        ("B", Some("2"), 20),
        ("null", Some("3"), 25),
        ("B", Some("4"), 23),
        ("NULL", Some("5"), 24),
        ("B", Some("7"), 22),
    ] {
        input.pipe(k.into(), v.map(str::to_string), ts)?;
    }
    let got: Vec<(String, String, i64)> = seen
        .lock()
        .iter()
        .map(|(k, v, ts)| {
            (
                k.clone().unwrap_or_default(),
                v.clone().unwrap_or_default(),
                *ts,
            )
        })
        .collect();
    assert_eq!(
        got,
        strings(&[
            ("1", "0+1", 10),
            ("1", "0+1-1", 15),
            ("1", "0+1-1+1", 15),
            ("2", "0+2", 20),
            ("2", "0+2-2", 23),
            ("4", "0+4", 23),
            ("4", "0+4-4", 23),
            ("7", "0+7", 22),
        ])
    );
    Ok(())
}

/// Kafka's `testCountHelper`.
fn count_helper(builder: StreamsBuilder, seen: Seen<String, Option<i64>>) -> Result<()> {
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("count-test-input");
    for (k, v, ts) in [
        ("A", "green", 10),
        ("B", "green", 9),
        ("A", "blue", 12),
        ("C", "yellow", 15),
        ("D", "green", 11),
    ] {
        input.pipe(k.into(), Some(v.into()), ts)?;
    }
    let got = seen.lock().clone();
    let want: Vec<(String, Option<i64>, i64)> = [
        ("green", 1, 10),
        ("green", 2, 10),
        ("green", 1, 12),
        ("blue", 1, 12),
        ("yellow", 1, 15),
        ("green", 2, 12),
    ]
    .iter()
    .map(|(k, n, ts)| (k.to_string(), Some(*n), *ts))
    .collect();
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn test_count() -> Result<()> {
    let builder = StreamsBuilder::new();
    let seen: Seen<String, Option<i64>> = Arc::default();
    let sink = seen.clone();
    builder
        .table_with::<String, String>(
            "count-test-input",
            Consumed::with(Utf8, Utf8),
            Materialized::default(),
        )
        .group_by_with(|_k, v| (v.clone(), v.clone()), Grouped::with(Utf8, Utf8))
        .count_with(Materialized::named("count"))
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    count_helper(builder, seen)
}

#[test]
fn test_count_with_internal_store() -> Result<()> {
    let builder = StreamsBuilder::new();
    let seen: Seen<String, Option<i64>> = Arc::default();
    let sink = seen.clone();
    builder
        .table_with::<String, String>(
            "count-test-input",
            Consumed::with(Utf8, Utf8),
            Materialized::default(),
        )
        .group_by_with(|_k, v| (v.clone(), v.clone()), Grouped::with(Utf8, Utf8))
        .count()
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    count_helper(builder, seen)
}

#[test]
fn test_remove_old_before_add_new() -> Result<()> {
    let builder = StreamsBuilder::new();
    let seen: Seen<String, Option<String>> = Arc::default();
    let sink = seen.clone();
    builder
        .table_with::<String, String>(
            "count-test-input",
            Consumed::with(Utf8, Utf8),
            Materialized::default(),
        )
        .group_by_with(
            |k, _v| (k[..1].to_string(), k[1..2].to_string()),
            Grouped::with(Utf8, Utf8),
        )
        .aggregate_with(
            String::new,
            |_k, v, agg| agg + v,
            |_k, v, agg| agg.replace(v.as_str(), ""),
            Materialized::named("someStore").with_value_serde(Utf8),
        )
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("count-test-input");
    input.pipe("11".into(), Some("A".into()), 10)?;
    input.pipe("12".into(), Some("B".into()), 8)?;
    input.pipe("11".into(), None, 12)?;
    input.pipe("12".into(), Some("C".into()), 6)?;
    let got: Vec<(String, String, i64)> = seen
        .lock()
        .iter()
        .map(|(k, v, ts)| (k.clone(), v.clone().unwrap_or_default(), *ts))
        .collect();
    assert_eq!(
        got,
        strings(&[
            ("1", "1", 10),
            ("1", "12", 10),
            ("1", "2", 12),
            ("1", "2", 12)
        ])
    );
    Ok(())
}

#[test]
fn test_should_not_send_transient_state_if_not_upgrading() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table_with::<String, String>(
            "input-topic",
            Consumed::with(Utf8, Utf8),
            Materialized::default(),
        )
        // the key is not changed
        .group_by_with(|k, v| (k.clone(), v.clone()), Grouped::with(Utf8, Utf8))
        .count()
        .to_stream()
        .to("output-topic");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("input-topic");
    input.pipe("1".into(), Some(String::new()), 8)?;
    input.pipe("1".into(), Some(String::new()), 9)?;
    let out: Vec<(String, i64, i64)> = driver
        .output::<String, i64>("output-topic")
        .read_records()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(out, vec![("1".to_string(), 1, 8), ("1".to_string(), 1, 9)]);
    Ok(())
}

/// Kafka's `KGroupedTableImplTest.assertReduced`, reading the last value per key.
fn assert_reduced(driver: &TopologyTestDriver, seen: &Seen<String, Option<i32>>) -> Result<()> {
    let last = |seen: &Seen<String, Option<i32>>| -> BTreeMap<String, (Option<i32>, i64)> {
        seen.lock()
            .iter()
            .map(|(k, v, ts)| (k.clone(), (*v, *ts)))
            .collect()
    };
    let input = driver.input::<String, Option<f64>>("input");
    input.pipe("A".into(), Some(1.1), 10)?;
    input.pipe("B".into(), Some(2.2), 11)?;
    let l = last(seen);
    assert_eq!(l["A"], (Some(1), 10));
    assert_eq!(l["B"], (Some(2), 11));
    input.pipe("A".into(), Some(2.6), 30)?;
    input.pipe("B".into(), Some(1.3), 30)?;
    input.pipe("A".into(), Some(5.7), 50)?;
    input.pipe("B".into(), Some(6.2), 20)?;
    let l = last(seen);
    assert_eq!(l["A"], (Some(5), 50));
    assert_eq!(l["B"], (Some(6), 30));
    Ok(())
}

fn int_projection(k: &str, v: &f64) -> (String, i32) {
    (k.to_string(), *v as i32)
}

#[test]
fn should_reduce() -> Result<()> {
    let builder = StreamsBuilder::new();
    let reduced = builder
        .table_with::<String, f64>(
            "input",
            Consumed::with(Utf8, BigEndian),
            Materialized::named("store")
                .with_key_serde(Utf8)
                .with_value_serde(BigEndian),
        )
        .group_by(|k, v| int_projection(k, v))
        .reduce_with(|a, b| a + b, |a, b| a - b, Materialized::named("reduced"));
    assert_eq!(reduced.queryable_store_name(), Some("reduced"));
    let seen: Seen<String, Option<i32>> = Arc::default();
    let sink = seen.clone();
    reduced
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    assert_reduced(&driver, &seen)
}

#[test]
fn should_reduce_with_internal_store_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let reduced = builder
        .table_with::<String, f64>(
            "input",
            Consumed::with(Utf8, BigEndian),
            Materialized::named("store")
                .with_key_serde(Utf8)
                .with_value_serde(BigEndian),
        )
        .group_by(|k, v| int_projection(k, v))
        .reduce(|a, b| a + b, |a, b| a - b);
    let seen: Seen<String, Option<i32>> = Arc::default();
    let sink = seen.clone();
    reduced
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    assert_reduced(&driver, &seen)
}

#[test]
fn should_reduce_and_materialize_results() -> Result<()> {
    let builder = StreamsBuilder::new();
    let reduced = builder
        .table_with::<String, f64>(
            "input",
            Consumed::with(Utf8, BigEndian),
            Materialized::default(),
        )
        .group_by(|k, v| int_projection(k, v))
        .reduce_with(
            |a, b| a + b,
            |a, b| a - b,
            Materialized::named("reduce")
                .with_key_serde(Utf8)
                .with_value_serde(BigEndian),
        );
    let seen: Seen<String, Option<i32>> = Arc::default();
    let sink = seen.clone();
    reduced
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    assert_reduced(&driver, &seen)?;
    let store = driver.key_value_store::<String, i32>("reduce")?;
    assert_eq!(store.get(&"A".to_string())?, Some((5, 50)));
    assert_eq!(store.get(&"B".to_string())?, Some((6, 30)));
    Ok(())
}

/// Kafka's `KGroupedTableImplTest.processData`.
fn process_data(driver: &TopologyTestDriver) -> Result<()> {
    let input = driver.input::<String, Option<String>>("input");
    for (k, v, ts) in [
        ("A", "1", 10),
        ("B", "1", 50),
        ("C", "1", 30),
        ("D", "2", 40),
        ("E", "2", 60),
    ] {
        input.pipe(k.into(), Some(v.into()), ts)?;
    }
    Ok(())
}

#[test]
fn should_count_and_materialize_results() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table_with::<String, String>("input", Consumed::with(Utf8, Utf8), Materialized::default())
        .group_by_with(|_k, v| (v.clone(), v.clone()), Grouped::with(Utf8, Utf8))
        .count_with(
            Materialized::named("count")
                .with_key_serde(Utf8)
                .with_value_serde(BigEndian),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    process_data(&driver)?;
    let counts = driver.key_value_store::<String, i64>("count")?;
    assert_eq!(counts.get(&"1".to_string())?, Some((3, 50)));
    assert_eq!(counts.get(&"2".to_string())?, Some((2, 60)));
    Ok(())
}

#[test]
fn should_aggregate_and_materialize_results() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table_with::<String, String>("input", Consumed::with(Utf8, Utf8), Materialized::default())
        .group_by_with(|_k, v| (v.clone(), v.clone()), Grouped::with(Utf8, Utf8))
        .aggregate_with(
            init,
            adder,
            remover,
            Materialized::named("aggregate")
                .with_value_serde(Utf8)
                .with_key_serde(Utf8),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    process_data(&driver)?;
    let aggregate = driver.key_value_store::<String, String>("aggregate")?;
    assert_eq!(
        aggregate.get(&"1".to_string())?,
        Some(("0+1+1+1".to_string(), 50))
    );
    assert_eq!(
        aggregate.get(&"2".to_string())?,
        Some(("0+2+2".to_string(), 60))
    );
    Ok(())
}

/// `KTableReduceTest.shouldAddAndSubtract`: the row moves out of its group (a change with
/// only an old value) and the aggregate keeps the larger timestamp.
#[test]
fn should_add_and_subtract() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.register_serde::<Vec<String>>(freshet_streams::Json::default());
    builder
        .table::<String, String>("in")
        .group_by(|_k, v| ("A".to_string(), vec![v.clone()]))
        .reduce_with(
            |a: Vec<String>, b: Vec<String>| {
                let set: BTreeSet<String> = a.into_iter().chain(b).collect();
                set.into_iter().collect()
            },
            |a: Vec<String>, b: Vec<String>| a.into_iter().filter(|x| !b.contains(x)).collect(),
            Materialized::named("myStore"),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("in");
    let store = driver.key_value_store::<String, Vec<String>>("myStore")?;
    input.pipe("x".into(), Some("a".into()), 10)?;
    assert_eq!(
        store.get(&"A".to_string())?,
        Some((vec!["a".to_string()], 10))
    );
    input.pipe("x".into(), Some("b".into()), 15)?;
    assert_eq!(
        store.get(&"A".to_string())?,
        Some((vec!["b".to_string()], 15))
    );
    input.pipe("x".into(), None, 12)?;
    assert_eq!(store.get(&"A".to_string())?, Some((vec![], 15)));
    Ok(())
}

#[test]
fn a_row_changing_group_is_subtracted_then_added() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("user-region")
        .group_by(|_user, region| (region.clone(), 1_i64))
        .reduce(|a, b| a + b, |a, b| a - b)
        .to_stream()
        .to("users-per-region");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("user-region");
    input.pipe("ann".into(), Some("north".into()), 1)?;
    input.pipe("bob".into(), Some("north".into()), 2)?;
    input.pipe("ann".into(), Some("south".into()), 3)?;
    input.pipe("bob".into(), None, 4)?;
    let out: Vec<(String, i64, i64)> = driver
        .output::<String, i64>("users-per-region")
        .read_records()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        out,
        vec![
            ("north".to_string(), 1, 1),
            ("north".to_string(), 2, 2),
            ("north".to_string(), 1, 3),
            ("south".to_string(), 1, 3),
            ("north".to_string(), 0, 4),
        ]
    );
    Ok(())
}

#[test]
fn group_keys_are_compared_by_their_bytes() -> Result<()> {
    // The same group for old and new value: one update, no transient state (KIP-904).
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("in")
        .group_by(|_k, v| (v.to_lowercase(), v.clone()))
        .aggregate(
            String::new,
            |_k, v, agg| agg + "+" + v,
            |_k, v, agg| agg + "-" + v,
        )
        .to_stream()
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("in");
    input.pipe("k".into(), Some("X".into()), 1)?;
    input.pipe("k".into(), Some("x".into()), 2)?;
    let out = driver.output::<String, String>("out").read_key_values()?;
    assert_eq!(
        out,
        vec![
            ("x".to_string(), "+X".to_string()),
            ("x".to_string(), "+X-X+x".to_string())
        ]
    );
    Ok(())
}

#[test]
fn a_named_grouping_shares_its_repartition_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .table::<String, String>("in")
        .group_by_with(|_k, v| (v.clone(), v.clone()), Grouped::named("by-value"));
    grouped.count().to_stream().to("counts");
    grouped
        .reduce(|a, b| a + &b, |a, _b| a)
        .to_stream()
        .to("reduced");
    let topology = builder.build()?;
    let topics: Vec<&str> = topology
        .internal_topics()
        .iter()
        .map(|t| t.name.shown())
        .collect();
    assert_eq!(topics, vec!["by-value-repartition"]);
    let text = topology.describe().to_string();
    assert!(text.contains("Processor: by-value (stores: [])"), "{text}");
    assert!(
        text.contains("Sink: KSTREAM-SINK-0000000005 (topic: by-value-repartition)"),
        "{text}"
    );
    // The reduce burned sink 11 and source 12 but reads the count's repartition topic.
    assert!(!text.contains("KSTREAM-SINK-0000000011"), "{text}");
    assert!(!text.contains("KSTREAM-SOURCE-0000000012"), "{text}");
    assert!(
        text.contains("--> KTABLE-AGGREGATE-0000000007, KTABLE-REDUCE-0000000013"),
        "{text}"
    );
    let driver = TopologyTestDriver::new(topology)?;
    driver
        .input::<String, Option<String>>("in")
        .pipe("k".into(), Some("v".into()), 0)?;
    assert_eq!(
        driver.output::<String, i64>("counts").read_values()?,
        vec![1]
    );
    assert_eq!(
        driver.output::<String, String>("reduced").read_values()?,
        vec!["v"]
    );
    Ok(())
}

#[test]
fn table_zero_arg_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .group_by(|_k, _v| (String::new(), String::new()))
        .count();
    let expected = "Topologies:
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

";
    assert_eq!(builder.build()?.describe().to_string(), expected);
    Ok(())
}

#[test]
fn table_anonymous_materialized_count_should_preserve_topology_structure() -> Result<()> {
    // KGroupedTable.count never burns the extra index KGroupedStream.count(Materialized) does.
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .group_by(|_k, _v| (String::new(), String::new()))
        .count_with(Materialized::with(Utf8, BigEndian));
    let text = builder.build()?.describe().to_string();
    assert!(text.contains("Processor: KTABLE-AGGREGATE-0000000007 (stores: [KTABLE-AGGREGATE-STATE-STORE-0000000004])"), "{text}");
    Ok(())
}

#[test]
fn table_named_materialized_count_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .group_by(|_k, _v| (String::new(), String::new()))
        .count_with(Materialized::named("count-store"));
    let expected = "Topologies:
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

";
    assert_eq!(builder.build()?.describe().to_string(), expected);
    Ok(())
}
