//! Port of Kafka's `KTableKTableOuterJoinTest`
//! (`streams/src/test/java/org/apache/kafka/streams/kstream/internals/`).
//!
//! Ported, with Kafka's inputs and asserted outputs (through the `TopologyTestDriver`, with
//! the record cache on as in Kafka's test config): `testJoin`, `testNotSendingOldValue`,
//! `testSendingOldValue`, including their `sendingOldValueEnabled` and co-partition
//! assertions. Kafka's tests read the join's raw `Change`s through a `MockApiProcessor`
//! attached to the join node with `Topology.addProcessor`; here
//! `KTable::observe_changes("proc")` attaches the equivalent node. Keys are `Option<i32>` so
//! that the script's null keys reach the table sources, as with Kafka's
//! `IntegerDeserializer`.
//!
//! Not ported: `shouldLogAndMeterSkippedRecordsDueToNullLeftKey` calls the join processor
//! directly with a null key through a mocked processor context; in a topology a null key
//! never reaches the join (the table sources drop it and count it).

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    Change, KTable, Processor, ProcessorContext, Record, Result, StreamsBuilder, TopicName,
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

/// Kafka's `TOSTRING_JOINER` (`v1 + "+" + v2`, a null printed as `null`).
fn joiner(a: Option<&String>, b: Option<&String>) -> String {
    format!(
        "{}+{}",
        a.map_or("null", |a| a.as_str()),
        b.map_or("null", |b| b.as_str())
    )
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

#[test]
fn test_join() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    table1.outer_join(&table2, joiner).to_stream().to("output");
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
        vec![(0, Some("X0+null"), 5), (1, Some("X1+null"), 6)],
        vec![(0, Some("X0+Y0"), 5), (1, Some("X1+Y1"), 10)],
        vec![
            (0, Some("XX0+Y0"), 7),
            (1, Some("XX1+Y1"), 10),
            (2, Some("XX2+null"), 7),
            (3, Some("XX3+null"), 7),
        ],
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
        vec![(0, Some("XXX0+null"), 6), (1, Some("XXX1+null"), 7)],
        vec![
            (0, Some("XXXX0+null"), 13),
            (1, Some("XXXX1+null"), 13),
            (2, Some("XXXX2+YY2"), 13),
            (3, Some("XXXX3+YY3"), 15),
        ],
        vec![
            (0, None, 0),
            (1, None, 42),
            (2, Some("null+YY2"), 10),
            (3, Some("null+YY3"), 20),
        ],
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

#[test]
fn test_not_sending_old_value() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    let joined = table1.outer_join(&table2, joiner);
    let seen = capture(&joined);
    assert!(table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    assert!(!joined.sending_old_value_enabled());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let expected = vec![
        vec![
            (0, c(Some("X0+null"), None), 5),
            (1, c(Some("X1+null"), None), 6),
        ],
        vec![
            (0, c(Some("X0+Y0"), None), 5),
            (1, c(Some("X1+Y1"), None), 10),
        ],
        vec![
            (0, c(Some("XX0+Y0"), None), 7),
            (1, c(Some("XX1+Y1"), None), 10),
            (2, c(Some("XX2+null"), None), 7),
            (3, c(Some("XX3+null"), None), 7),
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
        vec![
            (0, c(Some("XXX0+null"), None), 6),
            (1, c(Some("XXX1+null"), None), 7),
        ],
        vec![
            (0, c(Some("XXXX0+null"), None), 13),
            (1, c(Some("XXXX1+null"), None), 13),
            (2, c(Some("XXXX2+YY2"), None), 13),
            (3, c(Some("XXXX3+YY3"), None), 15),
        ],
        vec![
            (0, c(None, None), 0),
            (1, c(None, None), 42),
            (2, c(Some("null+YY2"), None), 10),
            (3, c(Some("null+YY3"), None), 20),
        ],
    ];
    run_change_script(&driver, &seen, expected)
}

#[test]
fn test_sending_old_value() -> Result<()> {
    let builder = StreamsBuilder::new();
    let (table1, table2) = tables(&builder);
    let joined = table1.outer_join(&table2, joiner);
    assert!(joined.enable_sending_old_values(true));
    let seen = capture(&joined);
    assert!(table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    assert!(joined.sending_old_value_enabled());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let expected = vec![
        vec![
            (0, c(Some("X0+null"), None), 5),
            (1, c(Some("X1+null"), None), 6),
        ],
        vec![
            (0, c(Some("X0+Y0"), Some("X0+null")), 5),
            (1, c(Some("X1+Y1"), Some("X1+null")), 10),
        ],
        vec![
            (0, c(Some("XX0+Y0"), Some("X0+Y0")), 7),
            (1, c(Some("XX1+Y1"), Some("X1+Y1")), 10),
            (2, c(Some("XX2+null"), None), 7),
            (3, c(Some("XX3+null"), None), 7),
        ],
        vec![
            (0, c(Some("XX0+YY0"), Some("XX0+Y0")), 7),
            (1, c(Some("XX1+YY1"), Some("XX1+Y1")), 7),
            (2, c(Some("XX2+YY2"), Some("XX2+null")), 10),
            (3, c(Some("XX3+YY3"), Some("XX3+null")), 15),
        ],
        vec![
            (0, c(Some("XXX0+YY0"), Some("XX0+YY0")), 6),
            (1, c(Some("XXX1+YY1"), Some("XX1+YY1")), 6),
            (2, c(Some("XXX2+YY2"), Some("XX2+YY2")), 10),
            (3, c(Some("XXX3+YY3"), Some("XX3+YY3")), 15),
        ],
        vec![
            (0, c(Some("XXX0+null"), Some("XXX0+YY0")), 6),
            (1, c(Some("XXX1+null"), Some("XXX1+YY1")), 7),
        ],
        vec![
            (0, c(Some("XXXX0+null"), Some("XXX0+null")), 13),
            (1, c(Some("XXXX1+null"), Some("XXX1+null")), 13),
            (2, c(Some("XXXX2+YY2"), Some("XXX2+YY2")), 13),
            (3, c(Some("XXXX3+YY3"), Some("XXX3+YY3")), 15),
        ],
        vec![
            (0, c(None, Some("XXXX0+null")), 0),
            (1, c(None, Some("XXXX1+null")), 42),
            (2, c(Some("null+YY2"), Some("XXXX2+YY2")), 10),
            (3, c(Some("null+YY3"), Some("XXXX3+YY3")), 20),
        ],
    ];
    run_change_script(&driver, &seen, expected)
}
