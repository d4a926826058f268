//! Port of Kafka's `KTableKTableInnerJoinTest`
//! (`streams/src/test/java/org/apache/kafka/streams/kstream/internals/`).
//!
//! Ported, with Kafka's inputs and asserted outputs (through the `TopologyTestDriver`, with
//! the record cache on as in Kafka's test config): `testJoin`, `testQueryableJoin`,
//! `testNotSendingOldValues`, `testQueryableNotSendingOldValues`, `testSendingOldValues`,
//! including their `sendingOldValueEnabled` and co-partition assertions. Kafka's tests read
//! the join's raw `Change`s through a `MockApiProcessor` attached to the join node with
//! `Topology.addProcessor`; here `KTable::observe_changes("proc")` attaches the equivalent
//! node. Keys are `Option<i32>` so that the script's null keys reach the table sources, as
//! with Kafka's `IntegerDeserializer`.
//!
//! Not ported: `shouldLogAndMeterSkippedRecordsDueToNullLeftKey` calls the join processor
//! directly with a null key through a mocked processor context; in a topology a null key
//! never reaches the join (the table sources drop it), which
//! `null_keys_are_dropped_and_counted_by_the_table_sources` checks instead.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    Change, KTable, Materialized, Processor, ProcessorContext, Record, Result, StreamsBuilder,
    TopicName,
};

type Key = Option<i32>;
type Seen = Arc<Mutex<Vec<(Key, Change<String>, i64)>>>;

/// Kafka's `MockApiProcessor`: records what reaches it.
struct Capture(Seen);

impl Processor<Key, Change<String>, Key, ()> for Capture {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, Key, ()>,
        r: Record<Key, Change<String>>,
    ) -> Result<()> {
        self.0.lock().push((r.key, r.value, r.timestamp));
        Ok(())
    }
}

fn capture(table: &KTable<'_, Key, String>) -> Seen {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    table
        .observe_changes("proc")
        .process::<Key, (), _>(move || Capture(sink.clone()), &[]);
    seen
}

fn take(seen: &Seen) -> Vec<(Key, Change<String>, i64)> {
    std::mem::take(&mut *seen.lock())
}

fn joiner(a: &String, b: &String) -> String {
    format!("{a}+{b}")
}

fn c(new: Option<&str>, old: Option<&str>) -> Change<String> {
    Change {
        new: new.map(str::to_string),
        old: old.map(str::to_string),
    }
}

/// One step of the shared script: `(topic, key, value, timestamp)`.
type Step = Vec<(&'static str, Key, Option<&'static str>, i64)>;

/// The shared input script, steps A to H.
fn script() -> Vec<Step> {
    let t1 = "topic1";
    let t2 = "topic2";
    vec![
        vec![
            (t1, Some(0), Some("X0"), 5),
            (t1, Some(1), Some("X1"), 6),
            (t1, None, Some("SomeVal"), 42),
        ],
        vec![
            (t2, Some(0), Some("Y0"), 0),
            (t2, Some(1), Some("Y1"), 10),
            (t2, None, Some("AnotherVal"), 73),
        ],
        vec![
            (t1, Some(0), Some("XX0"), 7),
            (t1, Some(1), Some("XX1"), 7),
            (t1, Some(2), Some("XX2"), 7),
            (t1, Some(3), Some("XX3"), 7),
        ],
        vec![
            (t2, Some(0), Some("YY0"), 0),
            (t2, Some(1), Some("YY1"), 5),
            (t2, Some(2), Some("YY2"), 10),
            (t2, Some(3), Some("YY3"), 15),
        ],
        vec![
            (t1, Some(0), Some("XXX0"), 6),
            (t1, Some(1), Some("XXX1"), 6),
            (t1, Some(2), Some("XXX2"), 6),
            (t1, Some(3), Some("XXX3"), 6),
        ],
        vec![(t2, Some(0), None, 5), (t2, Some(1), None, 7)],
        vec![
            (t1, Some(0), Some("XXXX0"), 13),
            (t1, Some(1), Some("XXXX1"), 13),
            (t1, Some(2), Some("XXXX2"), 13),
            (t1, Some(3), Some("XXXX3"), 13),
        ],
        vec![
            (t1, Some(0), None, 0),
            (t1, Some(1), None, 42),
            (t1, Some(2), None, 5),
            (t1, Some(3), None, 20),
        ],
    ]
}

fn pipe(driver: &TopologyTestDriver, step: &Step) -> Result<()> {
    for (topic, k, v, ts) in step {
        driver
            .input::<Key, Option<String>>(topic)
            .pipe(*k, v.map(str::to_string), *ts)?;
    }
    Ok(())
}

fn tables(builder: &StreamsBuilder) -> (KTable<'_, Key, String>, KTable<'_, Key, String>) {
    (builder.table("topic1"), builder.table("topic2"))
}

/// Kafka's `doTestJoin`: the output topic after each step.
fn do_test_join(builder: StreamsBuilder) -> Result<()> {
    let topology = builder.build()?;
    let expected_group: BTreeSet<TopicName> = [
        TopicName::External("topic1".into()),
        TopicName::External("topic2".into()),
    ]
    .into();
    assert_eq!(topology.copartition_groups(), &[expected_group]);
    let driver = TopologyTestDriver::new(topology)?;
    let out = driver.output::<Key, Option<String>>("output");
    let expected: Vec<Vec<(i32, Option<&str>, i64)>> = vec![
        vec![],
        vec![(0, Some("X0+Y0"), 5), (1, Some("X1+Y1"), 10)],
        vec![(0, Some("XX0+Y0"), 7), (1, Some("XX1+Y1"), 10)],
        vec![
            (0, Some("XX0+YY0"), 7),
            (1, Some("XX1+YY1"), 7),
            (2, Some("XX2+YY2"), 10),
            (3, Some("XX3+YY3"), 15),
        ],
        vec![
            (0, Some("XXX0+YY0"), 6),
            (1, Some("XXX1+YY1"), 6),
            (2, Some("XXX2+YY2"), 10),
            (3, Some("XXX3+YY3"), 15),
        ],
        vec![(0, None, 6), (1, None, 7)],
        vec![(2, Some("XXXX2+YY2"), 13), (3, Some("XXXX3+YY3"), 15)],
        vec![(2, None, 10), (3, None, 20)],
    ];
    for (step, want) in script().iter().zip(expected) {
        pipe(&driver, step)?;
        let got: Vec<(Key, Option<String>, i64)> = out
            .read_records()?
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        let want: Vec<(Key, Option<String>, i64)> = want
            .into_iter()
            .map(|(k, v, ts)| (Some(k), v.map(str::to_string), ts))
            .collect();
        assert_eq!(got, want);
        assert!(out.is_empty());
    }
    Ok(())
}

#[test]
fn test_join() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    table1.join(&table2, joiner).to_stream().to("output");
    do_test_join(builder)
}

#[test]
fn test_queryable_join() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    let table3 = table1.join_with(&table2, joiner, Materialized::default());
    table3.to_stream().to("output");
    do_test_join(builder)
}

/// Kafka's `doTestNotSendingOldValues`.
fn do_test_not_sending_old_values(
    builder: &StreamsBuilder,
    joined: &KTable<'_, Key, String>,
    table1: &KTable<'_, Key, String>,
    table2: &KTable<'_, Key, String>,
) -> Result<Seen> {
    let seen = capture(joined);
    assert!(!table1.sending_old_value_enabled());
    assert!(!table2.sending_old_value_enabled());
    assert!(!joined.sending_old_value_enabled());
    let _ = builder;
    Ok(seen)
}

fn run_change_script(
    driver: &TopologyTestDriver,
    seen: &Seen,
    expected: Vec<Vec<(i32, Change<String>, i64)>>,
) -> Result<()> {
    for (step, want) in script().iter().zip(expected) {
        pipe(driver, step)?;
        let want: Vec<(Key, Change<String>, i64)> = want
            .into_iter()
            .map(|(k, c, ts)| (Some(k), c, ts))
            .collect();
        assert_eq!(take(seen), want);
    }
    Ok(())
}

fn not_sending_expected() -> Vec<Vec<(i32, Change<String>, i64)>> {
    vec![
        vec![],
        vec![
            (0, c(Some("X0+Y0"), None), 5),
            (1, c(Some("X1+Y1"), None), 10),
        ],
        vec![
            (0, c(Some("XX0+Y0"), None), 7),
            (1, c(Some("XX1+Y1"), None), 10),
        ],
        vec![
            (0, c(Some("XX0+YY0"), None), 7),
            (1, c(Some("XX1+YY1"), None), 7),
            (2, c(Some("XX2+YY2"), None), 10),
            (3, c(Some("XX3+YY3"), None), 15),
        ],
        vec![
            (0, c(Some("XXX0+YY0"), None), 6),
            (1, c(Some("XXX1+YY1"), None), 6),
            (2, c(Some("XXX2+YY2"), None), 10),
            (3, c(Some("XXX3+YY3"), None), 15),
        ],
        vec![(0, c(None, None), 6), (1, c(None, None), 7)],
        vec![
            (2, c(Some("XXXX2+YY2"), None), 13),
            (3, c(Some("XXXX3+YY3"), None), 15),
        ],
        vec![(2, c(None, None), 10), (3, c(None, None), 20)],
    ]
}

#[test]
fn test_not_sending_old_values() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    let joined = table1.join(&table2, joiner);
    let seen = do_test_not_sending_old_values(&builder, &joined, &table1, &table2)?;
    let driver = TopologyTestDriver::new(builder.build()?)?;
    run_change_script(&driver, &seen, not_sending_expected())
}

#[test]
fn test_queryable_not_sending_old_values() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    let joined = table1.join_with(&table2, joiner, Materialized::default());
    let seen = do_test_not_sending_old_values(&builder, &joined, &table1, &table2)?;
    let driver = TopologyTestDriver::new(builder.build()?)?;
    run_change_script(&driver, &seen, not_sending_expected())
}

#[test]
fn test_sending_old_values() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    let joined = table1.join(&table2, joiner);
    assert!(joined.enable_sending_old_values(true));
    let seen = capture(&joined);
    assert!(table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    assert!(joined.sending_old_value_enabled());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let expected = vec![
        vec![],
        vec![
            (0, c(Some("X0+Y0"), None), 5),
            (1, c(Some("X1+Y1"), None), 10),
        ],
        vec![
            (0, c(Some("XX0+Y0"), Some("X0+Y0")), 7),
            (1, c(Some("XX1+Y1"), Some("X1+Y1")), 10),
        ],
        vec![
            (0, c(Some("XX0+YY0"), Some("XX0+Y0")), 7),
            (1, c(Some("XX1+YY1"), Some("XX1+Y1")), 7),
            (2, c(Some("XX2+YY2"), None), 10),
            (3, c(Some("XX3+YY3"), None), 15),
        ],
        vec![
            (0, c(Some("XXX0+YY0"), Some("XX0+YY0")), 6),
            (1, c(Some("XXX1+YY1"), Some("XX1+YY1")), 6),
            (2, c(Some("XXX2+YY2"), Some("XX2+YY2")), 10),
            (3, c(Some("XXX3+YY3"), Some("XX3+YY3")), 15),
        ],
        vec![
            (0, c(None, Some("XXX0+YY0")), 6),
            (1, c(None, Some("XXX1+YY1")), 7),
        ],
        vec![
            (2, c(Some("XXXX2+YY2"), Some("XXX2+YY2")), 13),
            (3, c(Some("XXXX3+YY3"), Some("XXX3+YY3")), 15),
        ],
        vec![
            (2, c(None, Some("XXXX2+YY2")), 10),
            (3, c(None, Some("XXXX3+YY3")), 20),
        ],
    ];
    run_change_script(&driver, &seen, expected)
}

#[test]
fn null_keys_are_dropped_and_counted_by_the_table_sources() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    table1.join(&table2, joiner).to_stream().to("output");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let script = script();
    pipe(&driver, &script[0])?;
    pipe(&driver, &script[1])?;
    assert_eq!(driver.metrics(0).map(|m| m.dropped_records), Some(2));
    Ok(())
}

#[test]
fn inner_join_materializes_both_sources_and_connects_the_other_side_store() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    table1.join(&table2, joiner).to_stream().to("output");
    let text = builder.build()?.describe().to_string();
    for line in [
        "Processor: KTABLE-SOURCE-0000000002 (stores: [topic1-STATE-STORE-0000000000])",
        "Processor: KTABLE-SOURCE-0000000005 (stores: [topic2-STATE-STORE-0000000003])",
        "Processor: KTABLE-JOINTHIS-0000000007 (stores: [topic2-STATE-STORE-0000000003])",
        "Processor: KTABLE-JOINOTHER-0000000008 (stores: [topic1-STATE-STORE-0000000000])",
        "Processor: KTABLE-MERGE-0000000006 (stores: [])",
        "<-- KTABLE-JOINTHIS-0000000007, KTABLE-JOINOTHER-0000000008",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    Ok(())
}
