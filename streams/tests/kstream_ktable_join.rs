//! Port of Kafka's `KStreamKTableJoinTest`
//! (`streams/src/test/java/org/apache/kafka/streams/kstream/internals/`).
//!
//! Ported, with Kafka's inputs and asserted outputs: `shouldNotJoinWithEmptyTableOnStreamUpdates`,
//! `shouldNotJoinOnTableUpdates`, `shouldJoinOnlyIfMatchFoundOnStreamUpdates`,
//! `shouldClearTableEntryOnNullValueUpdates`, `shouldRequireCopartitionedStreams`,
//! `shouldLogAndMeterWhenSkippingNullLeftKey`, `shouldLogAndMeterWhenSkippingNullLeftValue`
//! (the log line and the `dropped-records` count), `shouldReuseRepartitionTopicWithGeneratedName`
//! and `shouldCreateRepartitionTopicsWithUserProvidedName` (the exact `describe()` text).
//! Kafka's fixture pipes the table with random timestamps (`pushToTable`), which affect no
//! assertion of a non-versioned join; the port uses fixed ones. Keys are `Option<i32>` and
//! stream values `Option<String>` so that the null keys and values of Kafka's scripts reach
//! the join, as with Kafka's `IntegerDeserializer` / `StringDeserializer`.
//!
//! Not ported: `shouldDelayJoinByGracePeriod`, `shouldHandleLateJoinsWithGracePeriod`,
//! `shouldFailIfTableIsNotVersioned`, `shouldFailIfTableIsNotVersionedButMaterializationIsInherited`,
//! `shouldNotFailIfTableIsVersionedButMaterializationIsInherited`,
//! `shouldFailIfGracePeriodIsLongerThanHistoryRetention` and
//! `shouldFailIfGracePeriodIsLongerThanHistoryRetentionAndInheritedStore`: they need versioned
//! stores and `Joined.withGracePeriod`, which freshet does not support.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    Joined, Processor, ProcessorContext, Record, Result, StreamsBuilder, TopicName,
};

type Key = Option<i32>;
type Seen = Arc<Mutex<Vec<(Key, String, i64)>>>;

const EXPECTED_KEYS: [i32; 4] = [0, 1, 2, 3];

/// Kafka's `MockApiProcessor`: records what reaches it.
struct Capture(Seen);

impl Processor<Key, String, Key, ()> for Capture {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, Key, ()>,
        r: Record<Key, String>,
    ) -> Result<()> {
        self.0.lock().push((r.key, r.value, r.timestamp));
        Ok(())
    }
}

struct Fixture {
    driver: TopologyTestDriver,
    seen: Seen,
}

/// Kafka's `setUp`: `stream.join(table, TOSTRING_JOINER).process(supplier)`.
fn fixture() -> Result<Fixture> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream::<Key, Option<String>>("streamTopic");
    let table = builder.table::<Key, String>("tableTopic");
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    stream
        .join_table(&table, |v, t| {
            format!("{}+{t}", v.as_deref().unwrap_or("null"))
        })
        .process::<Key, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    Ok(Fixture { driver, seen })
}

impl Fixture {
    fn push_to_stream(&self, n: usize, prefix: &str) -> Result<()> {
        let input = self.driver.input::<Key, Option<String>>("streamTopic");
        for (i, k) in EXPECTED_KEYS.iter().take(n).enumerate() {
            input.pipe(Some(*k), Some(format!("{prefix}{k}")), i as i64)?;
        }
        Ok(())
    }

    /// Kafka's `pushToTable` uses random timestamps; they affect no assertion here.
    fn push_to_table(&self, n: usize, prefix: &str) -> Result<()> {
        let input = self.driver.input::<Key, Option<String>>("tableTopic");
        for (i, k) in EXPECTED_KEYS.iter().take(n).enumerate() {
            input.pipe(
                Some(*k),
                Some(format!("{prefix}{k}")),
                1_000_003 * (i as i64 + 1),
            )?;
        }
        Ok(())
    }

    fn push_null_value_to_table(&self) -> Result<()> {
        let input = self.driver.input::<Key, Option<String>>("tableTopic");
        for k in &EXPECTED_KEYS[..2] {
            input.pipe(Some(*k), None, 0)?;
        }
        Ok(())
    }

    fn check_and_clear(&self, expected: &[(i32, &str, i64)]) {
        let got = std::mem::take(&mut *self.seen.lock());
        let want: Vec<(Key, String, i64)> = expected
            .iter()
            .map(|(k, v, ts)| (Some(*k), v.to_string(), *ts))
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn should_not_join_with_empty_table_on_stream_updates() -> Result<()> {
    let f = fixture()?;
    f.push_to_stream(2, "X")?;
    f.check_and_clear(&[]);
    Ok(())
}

#[test]
fn should_not_join_on_table_updates() -> Result<()> {
    let f = fixture()?;
    f.push_to_stream(2, "X")?;
    f.check_and_clear(&[]);
    f.push_to_table(2, "Y")?;
    f.check_and_clear(&[]);
    f.push_to_stream(4, "X")?;
    f.check_and_clear(&[(0, "X0+Y0", 0), (1, "X1+Y1", 1)]);
    f.push_to_table(4, "YY")?;
    f.check_and_clear(&[]);
    f.push_to_stream(4, "X")?;
    f.check_and_clear(&[
        (0, "X0+YY0", 0),
        (1, "X1+YY1", 1),
        (2, "X2+YY2", 2),
        (3, "X3+YY3", 3),
    ]);
    f.push_to_table(4, "YYY")?;
    f.check_and_clear(&[]);
    Ok(())
}

#[test]
fn should_join_only_if_match_found_on_stream_updates() -> Result<()> {
    let f = fixture()?;
    f.push_to_table(2, "Y")?;
    f.check_and_clear(&[]);
    f.push_to_stream(4, "X")?;
    f.check_and_clear(&[(0, "X0+Y0", 0), (1, "X1+Y1", 1)]);
    Ok(())
}

#[test]
fn should_clear_table_entry_on_null_value_updates() -> Result<()> {
    let f = fixture()?;
    f.push_to_table(4, "Y")?;
    f.check_and_clear(&[]);
    f.push_to_stream(4, "X")?;
    f.check_and_clear(&[
        (0, "X0+Y0", 0),
        (1, "X1+Y1", 1),
        (2, "X2+Y2", 2),
        (3, "X3+Y3", 3),
    ]);
    f.push_null_value_to_table()?;
    f.check_and_clear(&[]);
    f.push_to_stream(4, "XX")?;
    f.check_and_clear(&[(2, "XX2+Y2", 2), (3, "XX3+Y3", 3)]);
    Ok(())
}

#[test]
fn should_require_copartitioned_streams() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream::<Key, Option<String>>("streamTopic");
    let table = builder.table::<Key, String>("tableTopic");
    stream
        .join_table(&table, |v, t| format!("{v:?}+{t}"))
        .process::<Key, (), _>(|| Capture(Arc::default()), &[]);
    let topology = builder.build()?;
    let expected: BTreeSet<TopicName> = [
        TopicName::External("streamTopic".into()),
        TopicName::External("tableTopic".into()),
    ]
    .into();
    assert_eq!(topology.copartition_groups(), &[expected]);
    Ok(())
}

/// Collects the messages of WARN events (Kafka's `LogCaptureAppender`).
mod log_capture {
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Clone, Default)]
    pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<String>>>);

    struct Message(String);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut m = Message(String::new());
            event.record(&mut m);
            self.0.lock().push(m.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

fn logs_while(f: impl FnOnce() -> Result<()>) -> Result<Vec<String>> {
    let capture = log_capture::Capture::default();
    let logs = capture.0.clone();
    tracing::subscriber::with_default(capture, f)?;
    let out = logs.lock().clone();
    Ok(out)
}

#[test]
fn should_log_and_meter_when_skipping_null_left_key() -> Result<()> {
    let f = fixture()?;
    let logs = logs_while(|| {
        f.driver
            .input::<Key, Option<String>>("streamTopic")
            .pipe(None, Some("A".into()), 0)
    })?;
    assert!(
        logs.iter().any(|l| l.contains(
            "Skipping record due to null join key or value. topic=[streamTopic] partition=[0] offset=[0]"
        )),
        "{logs:?}"
    );
    assert_eq!(f.driver.metrics(0).map(|m| m.dropped_records), Some(1));
    f.check_and_clear(&[]);
    Ok(())
}

#[test]
fn should_log_and_meter_when_skipping_null_left_value() -> Result<()> {
    let f = fixture()?;
    let logs = logs_while(|| {
        f.driver
            .input::<Key, Option<String>>("streamTopic")
            .pipe(Some(1), None, 0)
    })?;
    assert!(
        logs.iter().any(|l| l.contains(
            "Skipping record due to null join key or value. topic=[streamTopic] partition=[0] offset=[0]"
        )),
        "{logs:?}"
    );
    assert_eq!(f.driver.metrics(0).map(|m| m.dropped_records), Some(1));
    Ok(())
}

#[test]
fn should_reuse_repartition_topic_with_generated_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream_a = builder.stream::<String, String>("topic");
    let table_b = builder.table::<String, String>("topic2");
    let table_c = builder.table::<String, String>("topic3");
    let rekeyed = stream_a.map(|k, v| (v.clone(), k.clone()));
    rekeyed
        .join_table(&table_b, |v1, v2| format!("{v1}{v2}"))
        .to("out-one");
    rekeyed
        .join_table(&table_c, |v1, v2| format!("{v1}{v2}"))
        .to("out-two");
    let expected = "Topologies:
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

";
    assert_eq!(builder.build()?.describe().to_string(), expected);
    Ok(())
}

#[test]
fn should_create_repartition_topics_with_user_provided_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream_a = builder.stream::<String, String>("topic");
    let table_b = builder.table::<String, String>("topic2");
    let table_c = builder.table::<String, String>("topic3");
    let rekeyed = stream_a.map(|k, v| (v.clone(), k.clone()));
    rekeyed
        .join_table_with(
            &table_b,
            |v1, v2| format!("{v1}{v2}"),
            Joined::named("first-join"),
        )
        .to("out-one");
    rekeyed
        .join_table_with(
            &table_c,
            |v1, v2| format!("{v1}{v2}"),
            Joined::named("second-join"),
        )
        .to("out-two");
    let expected = "Topologies:
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

";
    assert_eq!(builder.build()?.describe().to_string(), expected);
    Ok(())
}

#[test]
fn left_join_keeps_records_without_a_table_value_and_null_keys() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream::<Key, Option<String>>("streamTopic");
    let table = builder.table::<Key, String>("tableTopic");
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    stream
        .left_join_table(&table, |v, t| {
            format!(
                "{}+{}",
                v.as_deref().unwrap_or("null"),
                t.map_or("null", |t| t.as_str())
            )
        })
        .process::<Key, (), _>(move || Capture(sink.clone()), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let s = driver.input::<Key, Option<String>>("streamTopic");
    driver
        .input::<Key, Option<String>>("tableTopic")
        .pipe(Some(0), Some("Y0".into()), 100)?;
    s.pipe(Some(0), Some("X0".into()), 1)?;
    s.pipe(Some(1), Some("X1".into()), 2)?;
    s.pipe(None, Some("X".into()), 3)?; // null key, value: joined with no table value
    s.pipe(Some(2), None, 4)?; // null value: dropped
    let got = std::mem::take(&mut *seen.lock());
    assert_eq!(
        got,
        vec![
            (Some(0), "X0+Y0".to_string(), 1),
            (Some(1), "X1+null".to_string(), 2),
            (None, "X+null".to_string(), 3),
        ]
    );
    assert_eq!(driver.metrics(0).map(|m| m.dropped_records), Some(1));
    Ok(())
}

#[test]
fn a_rekeyed_stream_is_repartitioned_before_the_join() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.table::<String, String>("customers");
    builder
        .stream::<String, String>("orders")
        .select_key(|_k, v| v.split(':').next().unwrap_or_default().to_string())
        .join_table(&table, |order, customer| format!("{order}@{customer}"))
        .to("out");
    let topology = builder.build()?;
    let names: Vec<&str> = topology
        .internal_topics()
        .iter()
        .map(|t| t.name.shown())
        .collect();
    assert_eq!(names, vec!["KSTREAM-KEY-SELECT-0000000004-repartition"]);
    assert_eq!(topology.copartition_groups().len(), 1);
    assert!(
        topology.copartition_groups()[0].contains(&TopicName::Internal(
            "KSTREAM-KEY-SELECT-0000000004-repartition".into()
        ))
    );
    let driver = TopologyTestDriver::new(topology)?;
    driver.input::<String, Option<String>>("customers").pipe(
        "ann".into(),
        Some("Ann A.".into()),
        0,
    )?;
    driver
        .input::<String, String>("orders")
        .pipe("o1".into(), "ann:book".into(), 9)?;
    let out = driver.output::<String, String>("out").read_records()?;
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].key.as_str(), out[0].value.as_str(), out[0].timestamp),
        ("ann", "ann:book@Ann A.", 9)
    );
    Ok(())
}
