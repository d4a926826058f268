//! Table sources and operators: `StreamsBuilder::table`, `KStream::to_table`, `filter`,
//! `filter_not`, `map_values`, old values, materialization and value getters.
//!
//! Ports, with Kafka's inputs and asserted outputs (Kafka's tests read a table node's raw
//! `Change`s through a `MockApiProcessor` attached with `Topology.addProcessor`; here
//! `KTable::observe_changes` attaches the equivalent node; what Kafka reads through a value
//! getter on a materialized table is read from its store, which is what the getter reads):
//! - `KTableSourceTest`: `testKTable`, `kTableShouldLogAndMeterOnSkippedRecords`,
//!   `kTableShouldLogOnOutOfOrder`, `testValueGetter`, `testNotSendingOldValue`,
//!   `testSendingOldValue`. Not ported: `testKTableSourceEmitOnChange` (disabled in Kafka).
//! - `KTableFilterTest` (record cache off, as there): `shouldPassThroughWithoutMaterialization`,
//!   `shouldPassThroughOnMaterialization`, `shouldGetValuesOnMaterialization`,
//!   `shouldNotSendOldValuesWithoutMaterialization`, `shouldNotSendOldValuesOnMaterialization`,
//!   `shouldNotEnableSendingOldValuesIfNotAlreadyMaterializedAndNotForcedToMaterialize`,
//!   `shouldEnableSendOldValuesWhenNotMaterializedAlreadyButForcedToMaterialize`,
//!   `shouldEnableSendOldValuesWhenMaterializedAlreadyAndForcedToMaterialize`,
//!   `shouldSendOldValuesWhenEnabledOnUpStreamMaterialization`,
//!   `shouldSkipNullToRepartitionWithoutMaterialization`,
//!   `shouldSkipNullToRepartitionOnMaterialization`. Not ported:
//!   `shouldNotSkipNullIfVersionedUpstream`, `shouldSkipNullIfVersionedDownstream` (versioned
//!   stores), `testTypeVariance` (Java generics).
//! - `KTableMapValuesTest`: `testKTable`, `testQueryableKTable`, `testQueryableValueGetter`,
//!   `testNotSendingOldValue`, `shouldEnableSendingOldValuesOnParentIfMapValuesNotMaterialized`,
//!   `shouldNotEnableSendingOldValuesOnParentIfMapValuesMaterialized`.
//! - `TopologyTest`: `kTable{NonMaterialized,AnonymousMaterialized,NamedMaterialized}{MapValues,Filter}ShouldPreserveTopologyStructure`
//!   (exact `describe()` text; Kafka's `mapValues((k, v) -> null)` maps to a value here,
//!   which the text does not show).
//! - `KStreamImplTest`: `shouldSupportTableTableJoinWithKStreamToKTable`,
//!   `shouldSupportStreamTableJoinWithKStreamToKTable`, `shouldSupportKeyChangeKTableFromKStream`
//!   (exact `describe()` text).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use freshet_streams::testing::{DriverConfig, TopologyTestDriver};
use freshet_streams::{
    BigEndian, Change, Consumed, KTable, Materialized, Processor, ProcessorContext, Record, Result,
    StreamsBuilder, Utf8,
};

type Seen<V> = Arc<Mutex<Vec<(String, V, i64)>>>;

/// Kafka's `MockApiProcessor`: records what reaches it.
struct Capture<V>(Seen<V>);

impl<V: Clone + Send + 'static> Processor<String, V, String, ()> for Capture<V> {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, String, ()>,
        r: Record<String, V>,
    ) -> Result<()> {
        self.0.lock().push((r.key, r.value, r.timestamp));
        Ok(())
    }
}

/// Attaches a capturing node to the table's updates (Kafka's `addProcessor(name, …, table)`).
fn observe<V: Clone + Send + 'static>(
    table: &KTable<'_, String, V>,
    name: &str,
) -> Seen<Change<V>> {
    let seen: Seen<Change<V>> = Arc::default();
    let sink = seen.clone();
    table
        .observe_changes(name)
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    seen
}

/// Captures `table.to_stream()`.
fn stream_of<V: Clone + Send + 'static>(table: &KTable<'_, String, V>) -> Seen<Option<V>> {
    let seen: Seen<Option<V>> = Arc::default();
    let sink = seen.clone();
    table
        .to_stream()
        .process::<String, (), _>(move || Capture(sink.clone()), &[]);
    seen
}

fn take<V>(seen: &Seen<V>) -> Vec<(String, V, i64)> {
    std::mem::take(&mut *seen.lock())
}

fn ch<V>(new: Option<V>, old: Option<V>) -> Change<V> {
    Change { new, old }
}

fn kv<V>(k: &str, v: V, ts: i64) -> (String, V, i64) {
    (k.to_string(), v, ts)
}

fn no_cache() -> DriverConfig {
    DriverConfig {
        cache_max_bytes: 0,
        ..DriverConfig::default()
    }
}

mod log_capture {
    use std::sync::Arc;

    use parking_lot::Mutex;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Collects event messages (Kafka's `LogCaptureAppender`).
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

// ---------------------------------------------------------------------------------------
// KTableSourceTest
// ---------------------------------------------------------------------------------------

#[test]
fn source_test_ktable() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table_with::<String, i32>(
        "topic1",
        Consumed::with(Utf8, BigEndian),
        Materialized::default(),
    );
    let seen = stream_of(&table1);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<i32>>("topic1");
    input.pipe("A".into(), Some(1), 10)?;
    input.pipe("B".into(), Some(2), 11)?;
    input.pipe("C".into(), Some(3), 12)?;
    input.pipe("D".into(), Some(4), 13)?;
    input.pipe("A".into(), None, 14)?;
    input.pipe("B".into(), None, 15)?;
    assert_eq!(
        take(&seen),
        vec![
            kv("A", Some(1), 10),
            kv("B", Some(2), 11),
            kv("C", Some(3), 12),
            kv("D", Some(4), 13),
            kv("A", None, 14),
            kv("B", None, 15),
        ]
    );
    Ok(())
}

#[test]
fn source_test_ktable_should_log_and_meter_on_skipped_records() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.table::<Option<String>, String>("topic");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let logs = logs_while(|| {
        driver
            .input::<Option<String>, Option<String>>("topic")
            .pipe(None, Some("value".into()), 0)
    })?;
    assert!(
        logs.iter().any(|l| l
            .contains("Skipping record due to null key. topic=[topic] partition=[0] offset=[0]")),
        "{logs:?}"
    );
    assert_eq!(driver.metrics(0).map(|m| m.dropped_records), Some(1));
    Ok(())
}

#[test]
fn source_test_ktable_should_log_on_out_of_order() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.table_with::<String, String>(
        "topic",
        Consumed::with(Utf8, Utf8),
        Materialized::named("store"),
    );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let logs = logs_while(|| {
        let input = driver.input::<String, Option<String>>("topic");
        input.pipe("key".into(), Some("value".into()), 10)?;
        input.pipe("key".into(), Some("value".into()), 5)
    })?;
    assert!(
        logs.iter().any(|l| l.contains(
            "Detected out-of-order KTable update for store, old timestamp=[10] new timestamp=[5]. topic=[topic] partition=[0] offset=[1]."
        )),
        "{logs:?}"
    );
    Ok(())
}

#[test]
fn source_test_value_getter() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.table_with::<String, String>(
        "topic1",
        Consumed::with(Utf8, Utf8),
        Materialized::named("store"),
    );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    let store = driver.key_value_store::<String, String>("store")?;
    let get = |k: &str| store.get(&k.to_string());
    let vt = |v: &str, ts: i64| Some((v.to_string(), ts));
    input.pipe("A".into(), Some("01".into()), 10)?;
    input.pipe("B".into(), Some("01".into()), 20)?;
    input.pipe("C".into(), Some("01".into()), 15)?;
    assert_eq!(
        (get("A")?, get("B")?, get("C")?),
        (vt("01", 10), vt("01", 20), vt("01", 15))
    );
    input.pipe("A".into(), Some("02".into()), 30)?;
    input.pipe("B".into(), Some("02".into()), 5)?;
    assert_eq!(
        (get("A")?, get("B")?, get("C")?),
        (vt("02", 30), vt("02", 5), vt("01", 15))
    );
    input.pipe("A".into(), Some("03".into()), 29)?;
    assert_eq!(
        (get("A")?, get("B")?, get("C")?),
        (vt("03", 29), vt("02", 5), vt("01", 15))
    );
    input.pipe("A".into(), None, 50)?;
    input.pipe("B".into(), None, 3)?;
    assert_eq!(
        (get("A")?, get("B")?, get("C")?),
        (None, None, vt("01", 15))
    );
    Ok(())
}

/// Kafka's `KTableSourceTest` old-value script.
fn source_old_value_script(table_sends_old: bool) -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table_with::<String, String>(
        "topic1",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    if table_sends_old {
        table1.enable_sending_old_values(true);
        assert!(table1.sending_old_value_enabled());
    }
    let proc1 = observe(&table1, "proc1");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    let s = |v: &str| Some(v.to_string());
    let old = |v: &str| if table_sends_old { s(v) } else { None };
    input.pipe("A".into(), s("01"), 10)?;
    input.pipe("B".into(), s("01"), 20)?;
    input.pipe("C".into(), s("01"), 15)?;
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(s("01"), None), 10),
            kv("B", ch(s("01"), None), 20),
            kv("C", ch(s("01"), None), 15)
        ]
    );
    input.pipe("A".into(), s("02"), 8)?;
    input.pipe("B".into(), s("02"), 22)?;
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(s("02"), old("01")), 8),
            kv("B", ch(s("02"), old("01")), 22)
        ]
    );
    input.pipe("A".into(), s("03"), 12)?;
    assert_eq!(take(&proc1), vec![kv("A", ch(s("03"), old("02")), 12)]);
    input.pipe("A".into(), None, 15)?;
    input.pipe("B".into(), None, 20)?;
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(None, old("03")), 15),
            kv("B", ch(None, old("02")), 20)
        ]
    );
    Ok(())
}

#[test]
fn source_test_not_sending_old_value() -> Result<()> {
    source_old_value_script(false)
}

#[test]
fn source_test_sending_old_value() -> Result<()> {
    source_old_value_script(true)
}

// ---------------------------------------------------------------------------------------
// KTableFilterTest (record cache off)
// ---------------------------------------------------------------------------------------

fn is_even(_k: &String, v: &i32) -> bool {
    v % 2 == 0
}

fn int_table(builder: &StreamsBuilder) -> KTable<'_, String, i32> {
    builder.table_with::<String, i32>(
        "topic1",
        Consumed::with(Utf8, BigEndian),
        Materialized::default(),
    )
}

/// Kafka's `KTableFilterTest.doTestKTable`.
fn filter_do_test_ktable(
    builder: StreamsBuilder,
    seen2: Seen<Option<i32>>,
    seen3: Seen<Option<i32>>,
) -> Result<()> {
    let driver = TopologyTestDriver::with_config(builder.build()?, no_cache())?;
    let input = driver.input::<String, Option<i32>>("topic1");
    input.pipe("A".into(), Some(1), 10)?;
    input.pipe("B".into(), Some(2), 5)?;
    input.pipe("C".into(), Some(3), 8)?;
    input.pipe("D".into(), Some(4), 14)?;
    input.pipe("A".into(), None, 18)?;
    input.pipe("B".into(), None, 15)?;
    assert_eq!(
        take(&seen2),
        vec![
            kv("A", None, 10),
            kv("B", Some(2), 5),
            kv("C", None, 8),
            kv("D", Some(4), 14),
            kv("A", None, 18),
            kv("B", None, 15)
        ]
    );
    assert_eq!(
        take(&seen3),
        vec![
            kv("A", Some(1), 10),
            kv("B", None, 5),
            kv("C", Some(3), 8),
            kv("D", None, 14),
            kv("A", None, 18),
            kv("B", None, 15)
        ]
    );
    Ok(())
}

#[test]
fn filter_should_pass_through_without_materialization() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter(is_even);
    let table3 = table1.filter_not(is_even);
    assert_eq!(table1.queryable_store_name(), None);
    assert_eq!(table2.queryable_store_name(), None);
    assert_eq!(table3.queryable_store_name(), None);
    let (seen2, seen3) = (stream_of(&table2), stream_of(&table3));
    filter_do_test_ktable(builder, seen2, seen3)
}

#[test]
fn filter_should_pass_through_on_materialization() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter_with(is_even, Materialized::named("store2"));
    let table3 = table1.filter_not(is_even);
    assert_eq!(table1.queryable_store_name(), None);
    assert_eq!(table2.queryable_store_name(), Some("store2"));
    assert_eq!(table3.queryable_store_name(), None);
    let (seen2, seen3) = (stream_of(&table2), stream_of(&table3));
    filter_do_test_ktable(builder, seen2, seen3)
}

#[test]
fn filter_should_get_values_on_materialization() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter_with(is_even, Materialized::named("store2"));
    let table3 = table1.filter_not_with(is_even, Materialized::named("store3"));
    let table4 = table1.filter_not(is_even);
    assert_eq!(table1.queryable_store_name(), None);
    assert_eq!(table2.queryable_store_name(), Some("store2"));
    assert_eq!(table3.queryable_store_name(), Some("store3"));
    assert_eq!(table4.queryable_store_name(), None);
    let driver = TopologyTestDriver::with_config(builder.build()?, no_cache())?;
    let input = driver.input::<String, Option<i32>>("topic1");
    let (s2, s3) = (
        driver.key_value_store::<String, i32>("store2")?,
        driver.key_value_store::<String, i32>("store3")?,
    );
    let g2 = |k: &str| s2.get(&k.to_string());
    let g3 = |k: &str| s3.get(&k.to_string());
    input.pipe("A".into(), Some(1), 5)?;
    input.pipe("B".into(), Some(1), 10)?;
    input.pipe("C".into(), Some(1), 15)?;
    assert_eq!((g2("A")?, g2("B")?, g2("C")?), (None, None, None));
    assert_eq!(
        (g3("A")?, g3("B")?, g3("C")?),
        (Some((1, 5)), Some((1, 10)), Some((1, 15)))
    );
    input.pipe("A".into(), Some(2), 10)?;
    input.pipe("B".into(), Some(2), 5)?;
    assert_eq!(
        (g2("A")?, g2("B")?, g2("C")?),
        (Some((2, 10)), Some((2, 5)), None)
    );
    assert_eq!((g3("A")?, g3("B")?, g3("C")?), (None, None, Some((1, 15))));
    input.pipe("A".into(), Some(3), 15)?;
    assert_eq!((g2("A")?, g2("B")?, g2("C")?), (None, Some((2, 5)), None));
    assert_eq!(
        (g3("A")?, g3("B")?, g3("C")?),
        (Some((3, 15)), None, Some((1, 15)))
    );
    input.pipe("A".into(), None, 10)?;
    input.pipe("B".into(), None, 20)?;
    assert_eq!((g2("A")?, g2("B")?, g2("C")?), (None, None, None));
    assert_eq!((g3("A")?, g3("B")?, g3("C")?), (None, None, Some((1, 15))));
    Ok(())
}

/// Kafka's `KTableFilterTest.doTestNotSendingOldValue`.
fn filter_do_test_not_sending_old_value(
    builder: StreamsBuilder,
    proc1: Seen<Change<i32>>,
    proc2: Seen<Change<i32>>,
) -> Result<()> {
    let driver = TopologyTestDriver::with_config(builder.build()?, no_cache())?;
    let input = driver.input::<String, Option<i32>>("topic1");
    input.pipe("A".into(), Some(1), 5)?;
    input.pipe("B".into(), Some(1), 10)?;
    input.pipe("C".into(), Some(1), 15)?;
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(Some(1), None), 5),
            kv("B", ch(Some(1), None), 10),
            kv("C", ch(Some(1), None), 15)
        ]
    );
    assert_eq!(
        take(&proc2),
        vec![
            kv("A", ch(None, None), 5),
            kv("B", ch(None, None), 10),
            kv("C", ch(None, None), 15)
        ]
    );
    input.pipe("A".into(), Some(2), 15)?;
    input.pipe("B".into(), Some(2), 8)?;
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(Some(2), None), 15),
            kv("B", ch(Some(2), None), 8)
        ]
    );
    assert_eq!(
        take(&proc2),
        vec![
            kv("A", ch(Some(2), None), 15),
            kv("B", ch(Some(2), None), 8)
        ]
    );
    input.pipe("A".into(), Some(3), 20)?;
    assert_eq!(take(&proc1), vec![kv("A", ch(Some(3), None), 20)]);
    assert_eq!(take(&proc2), vec![kv("A", ch(None, None), 20)]);
    input.pipe("A".into(), None, 10)?;
    input.pipe("B".into(), None, 20)?;
    assert_eq!(
        take(&proc1),
        vec![kv("A", ch(None, None), 10), kv("B", ch(None, None), 20)]
    );
    assert_eq!(
        take(&proc2),
        vec![kv("A", ch(None, None), 10), kv("B", ch(None, None), 20)]
    );
    Ok(())
}

#[test]
fn filter_should_not_send_old_values_without_materialization() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter(is_even);
    let (proc1, proc2) = (observe(&table1, "proc1"), observe(&table2, "proc2"));
    filter_do_test_not_sending_old_value(builder, proc1, proc2)
}

#[test]
fn filter_should_not_send_old_values_on_materialization() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter_with(is_even, Materialized::named("store2"));
    let (proc1, proc2) = (observe(&table1, "proc1"), observe(&table2, "proc2"));
    filter_do_test_not_sending_old_value(builder, proc1, proc2)
}

#[test]
fn filter_should_not_enable_sending_old_values_if_not_already_materialized_and_not_forced_to_materialize(
) -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter(is_even);
    assert!(!table2.enable_sending_old_values(false));
    let (proc1, proc2) = (observe(&table1, "proc1"), observe(&table2, "proc2"));
    filter_do_test_not_sending_old_value(builder, proc1, proc2)
}

/// Kafka's `KTableFilterTest.doTestSendingOldValue`.
fn filter_do_test_sending_old_value(
    builder: StreamsBuilder,
    proc1: Seen<Change<i32>>,
    proc2: Seen<Change<i32>>,
    parent_send_old: bool,
) -> Result<()> {
    let driver = TopologyTestDriver::with_config(builder.build()?, no_cache())?;
    let input = driver.input::<String, Option<i32>>("topic1");
    let old = |v: i32| parent_send_old.then_some(v);
    input.pipe("A".into(), Some(1), 5)?;
    input.pipe("B".into(), Some(1), 10)?;
    input.pipe("C".into(), Some(1), 15)?;
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(Some(1), None), 5),
            kv("B", ch(Some(1), None), 10),
            kv("C", ch(Some(1), None), 15)
        ]
    );
    assert_eq!(take(&proc2), vec![]);
    input.pipe("A".into(), Some(2), 15)?;
    input.pipe("B".into(), Some(2), 8)?;
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(Some(2), old(1)), 15),
            kv("B", ch(Some(2), old(1)), 8)
        ]
    );
    assert_eq!(
        take(&proc2),
        vec![
            kv("A", ch(Some(2), None), 15),
            kv("B", ch(Some(2), None), 8)
        ]
    );
    input.pipe("A".into(), Some(3), 20)?;
    assert_eq!(take(&proc1), vec![kv("A", ch(Some(3), old(2)), 20)]);
    assert_eq!(take(&proc2), vec![kv("A", ch(None, Some(2)), 20)]);
    input.pipe("A".into(), None, 10)?;
    input.pipe("B".into(), None, 20)?;
    assert_eq!(
        take(&proc1),
        vec![kv("A", ch(None, old(3)), 10), kv("B", ch(None, old(2)), 20)]
    );
    assert_eq!(take(&proc2), vec![kv("B", ch(None, Some(2)), 20)]);
    Ok(())
}

#[test]
fn filter_should_enable_send_old_values_when_not_materialized_already_but_forced_to_materialize(
) -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter(is_even);
    assert!(table2.enable_sending_old_values(true));
    assert!(table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    let (proc1, proc2) = (observe(&table1, "proc1"), observe(&table2, "proc2"));
    filter_do_test_sending_old_value(builder, proc1, proc2, true)
}

#[test]
fn filter_should_enable_send_old_values_when_materialized_already_and_forced_to_materialize(
) -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = int_table(&builder);
    let table2 = table1.filter_with(is_even, Materialized::named("store2"));
    assert!(table2.enable_sending_old_values(true));
    assert!(!table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    let (proc1, proc2) = (observe(&table1, "proc1"), observe(&table2, "proc2"));
    filter_do_test_sending_old_value(builder, proc1, proc2, false)
}

#[test]
fn filter_should_send_old_values_when_enabled_on_up_stream_materialization() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table_with::<String, i32>(
        "topic1",
        Consumed::with(Utf8, BigEndian),
        Materialized::named("store2"),
    );
    let table2 = table1.filter(is_even);
    assert!(table2.enable_sending_old_values(false));
    assert!(table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    let (proc1, proc2) = (observe(&table1, "proc1"), observe(&table2, "proc2"));
    filter_do_test_sending_old_value(builder, proc1, proc2, true)
}

/// Kafka's `KTableFilterTest.doTestSkipNullOnMaterialization` (with `shouldSkip`).
fn filter_skip_null(materialize: bool) -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table_with::<String, String>(
        "topic1",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    let accept = |_k: &String, v: &String| v.eq_ignore_ascii_case("accept");
    let table2 = if materialize {
        table1.filter_with(accept, Materialized::named("store2"))
    } else {
        table1.filter(accept)
    };
    let reduce_store = if materialize {
        Materialized::named("mock-result")
    } else {
        Materialized::default()
    };
    table2.group_by(|k, v| (k.clone(), v.clone())).reduce_with(
        |a, b| a + &b,
        |a, b| a.replace(&b, ""),
        reduce_store,
    );
    let (proc1, proc2) = (observe(&table1, "proc1"), observe(&table2, "proc2"));
    let driver = TopologyTestDriver::with_config(builder.build()?, no_cache())?;
    let input = driver.input::<String, Option<String>>("topic1");
    input.pipe("A".into(), Some("reject".into()), 5)?;
    input.pipe("B".into(), Some("reject".into()), 10)?;
    input.pipe("C".into(), Some("reject".into()), 20)?;
    let r = || Some("reject".to_string());
    assert_eq!(
        take(&proc1),
        vec![
            kv("A", ch(r(), None), 5),
            kv("B", ch(r(), None), 10),
            kv("C", ch(r(), None), 20)
        ]
    );
    assert_eq!(take(&proc2), vec![]);
    Ok(())
}

#[test]
fn filter_should_skip_null_to_repartition_without_materialization() -> Result<()> {
    filter_skip_null(false)
}

#[test]
fn filter_should_skip_null_to_repartition_on_materialization() -> Result<()> {
    filter_skip_null(true)
}

// ---------------------------------------------------------------------------------------
// KTableMapValuesTest
// ---------------------------------------------------------------------------------------

fn map_values_do_test_ktable(builder: StreamsBuilder, seen: Seen<Option<i32>>) -> Result<()> {
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    input.pipe("A".into(), Some("1".into()), 5)?;
    input.pipe("B".into(), Some("2".into()), 25)?;
    input.pipe("C".into(), Some("3".into()), 20)?;
    input.pipe("D".into(), Some("4".into()), 10)?;
    assert_eq!(
        take(&seen),
        vec![
            kv("A", Some(1), 5),
            kv("B", Some(2), 25),
            kv("C", Some(3), 20),
            kv("D", Some(4), 10)
        ]
    );
    Ok(())
}

fn first_digit(v: &String) -> i32 {
    i32::from(v.as_bytes()[0]) - 48
}

fn str_table(builder: &StreamsBuilder) -> KTable<'_, String, String> {
    builder.table_with::<String, String>(
        "topic1",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    )
}

#[test]
fn map_values_test_ktable() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table2 = str_table(&builder).map_values(first_digit);
    let seen = stream_of(&table2);
    map_values_do_test_ktable(builder, seen)
}

#[test]
fn map_values_test_queryable_ktable() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table2 = str_table(&builder).map_values_with(
        first_digit,
        Materialized::named("anyName").with_value_serde(BigEndian),
    );
    let seen = stream_of(&table2);
    map_values_do_test_ktable(builder, seen)
}

fn parse(v: &str) -> i32 {
    v.parse().unwrap_or_default()
}

#[test]
fn map_values_test_queryable_value_getter() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = str_table(&builder);
    let table2 = table1.map_values_with(
        |v| parse(v),
        Materialized::named("store2").with_value_serde(BigEndian),
    );
    let table3 = table1.map_values_with(
        |v| -parse(v),
        Materialized::named("store3").with_value_serde(BigEndian),
    );
    let table4 = table1.map_values(|v| parse(v));
    assert_eq!(table2.queryable_store_name(), Some("store2"));
    assert_eq!(table3.queryable_store_name(), Some("store3"));
    assert_eq!(table4.queryable_store_name(), None);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    let (s2, s3) = (
        driver.key_value_store::<String, i32>("store2")?,
        driver.key_value_store::<String, i32>("store3")?,
    );
    let g2 = |k: &str| s2.get(&k.to_string());
    let g3 = |k: &str| s3.get(&k.to_string());
    input.pipe("A".into(), Some("01".into()), 50)?;
    input.pipe("B".into(), Some("01".into()), 10)?;
    input.pipe("C".into(), Some("01".into()), 30)?;
    assert_eq!(
        (g2("A")?, g2("B")?, g2("C")?),
        (Some((1, 50)), Some((1, 10)), Some((1, 30)))
    );
    assert_eq!(
        (g3("A")?, g3("B")?, g3("C")?),
        (Some((-1, 50)), Some((-1, 10)), Some((-1, 30)))
    );
    input.pipe("A".into(), Some("02".into()), 25)?;
    input.pipe("B".into(), Some("02".into()), 20)?;
    assert_eq!(
        (g2("A")?, g2("B")?, g2("C")?),
        (Some((2, 25)), Some((2, 20)), Some((1, 30)))
    );
    assert_eq!(
        (g3("A")?, g3("B")?, g3("C")?),
        (Some((-2, 25)), Some((-2, 20)), Some((-1, 30)))
    );
    input.pipe("A".into(), Some("03".into()), 35)?;
    assert_eq!(
        (g2("A")?, g2("B")?, g2("C")?),
        (Some((3, 35)), Some((2, 20)), Some((1, 30)))
    );
    assert_eq!(
        (g3("A")?, g3("B")?, g3("C")?),
        (Some((-3, 35)), Some((-2, 20)), Some((-1, 30)))
    );
    input.pipe("A".into(), None, 1)?;
    assert_eq!(
        (g2("A")?, g2("B")?, g2("C")?),
        (None, Some((2, 20)), Some((1, 30)))
    );
    assert_eq!(
        (g3("A")?, g3("B")?, g3("C")?),
        (None, Some((-2, 20)), Some((-1, 30)))
    );
    Ok(())
}

#[test]
fn map_values_test_not_sending_old_value() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = str_table(&builder);
    let table2 = table1.map_values(|v| parse(v));
    let proc = observe(&table2, "proc");
    assert!(!table1.sending_old_value_enabled());
    assert!(!table2.sending_old_value_enabled());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    input.pipe("A".into(), Some("01".into()), 5)?;
    input.pipe("B".into(), Some("01".into()), 10)?;
    input.pipe("C".into(), Some("01".into()), 15)?;
    assert_eq!(
        take(&proc),
        vec![
            kv("A", ch(Some(1), None), 5),
            kv("B", ch(Some(1), None), 10),
            kv("C", ch(Some(1), None), 15)
        ]
    );
    input.pipe("A".into(), Some("02".into()), 10)?;
    input.pipe("B".into(), Some("02".into()), 8)?;
    assert_eq!(
        take(&proc),
        vec![
            kv("A", ch(Some(2), None), 10),
            kv("B", ch(Some(2), None), 8)
        ]
    );
    input.pipe("A".into(), Some("03".into()), 20)?;
    assert_eq!(take(&proc), vec![kv("A", ch(Some(3), None), 20)]);
    input.pipe("A".into(), None, 30)?;
    assert_eq!(take(&proc), vec![kv("A", ch(None, None), 30)]);
    Ok(())
}

/// Kafka's `KTableMapValuesTest.testSendingOldValues`.
fn map_values_sending_old_values(builder: StreamsBuilder, proc: Seen<Change<i32>>) -> Result<()> {
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("topic1");
    input.pipe("A".into(), Some("01".into()), 5)?;
    input.pipe("B".into(), Some("01".into()), 10)?;
    input.pipe("C".into(), Some("01".into()), 15)?;
    assert_eq!(
        take(&proc),
        vec![
            kv("A", ch(Some(1), None), 5),
            kv("B", ch(Some(1), None), 10),
            kv("C", ch(Some(1), None), 15)
        ]
    );
    input.pipe("A".into(), Some("02".into()), 10)?;
    input.pipe("B".into(), Some("02".into()), 8)?;
    assert_eq!(
        take(&proc),
        vec![
            kv("A", ch(Some(2), Some(1)), 10),
            kv("B", ch(Some(2), Some(1)), 8)
        ]
    );
    input.pipe("A".into(), Some("03".into()), 20)?;
    assert_eq!(take(&proc), vec![kv("A", ch(Some(3), Some(2)), 20)]);
    input.pipe("A".into(), None, 30)?;
    assert_eq!(take(&proc), vec![kv("A", ch(None, Some(3)), 30)]);
    Ok(())
}

#[test]
fn map_values_should_enable_sending_old_values_on_parent_if_map_values_not_materialized(
) -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = str_table(&builder);
    let table2 = table1.map_values(|v| parse(v));
    assert!(table2.enable_sending_old_values(true));
    assert!(table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    let proc = observe(&table2, "proc");
    map_values_sending_old_values(builder, proc)
}

#[test]
fn map_values_should_not_enable_sending_old_values_on_parent_if_map_values_materialized(
) -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = str_table(&builder);
    let table2 = table1.map_values_with(
        |v| parse(v),
        Materialized::named("bob").with_value_serde(BigEndian),
    );
    assert!(table2.enable_sending_old_values(true));
    assert!(!table1.sending_old_value_enabled());
    assert!(table2.sending_old_value_enabled());
    let proc = observe(&table2, "proc");
    map_values_sending_old_values(builder, proc)
}

// ---------------------------------------------------------------------------------------
// describe(): TopologyTest and KStreamImplTest
// ---------------------------------------------------------------------------------------

fn table_op_topology(processor: &str, stores: &str) -> String {
    format!(
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])
      --> KTABLE-SOURCE-0000000002
    Processor: KTABLE-SOURCE-0000000002 (stores: [])
      --> {processor}
      <-- KSTREAM-SOURCE-0000000001
    Processor: {processor} (stores: [{stores}])
      --> none
      <-- KTABLE-SOURCE-0000000002

"
    )
}

#[test]
fn ktable_non_materialized_map_values_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .map_values(|v| v.len() as i64);
    assert_eq!(
        builder.build()?.describe().to_string(),
        table_op_topology("KTABLE-MAPVALUES-0000000003", "")
    );
    Ok(())
}

#[test]
fn ktable_non_materialized_filter_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .filter(|_, _| false);
    assert_eq!(
        builder.build()?.describe().to_string(),
        table_op_topology("KTABLE-FILTER-0000000003", "")
    );
    Ok(())
}

#[test]
fn ktable_anonymous_materialized_map_values_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .map_values_with(|v| v.len() as i64, Materialized::with(Utf8, BigEndian));
    assert_eq!(
        builder.build()?.describe().to_string(),
        table_op_topology("KTABLE-MAPVALUES-0000000004", "")
    );
    Ok(())
}

#[test]
fn ktable_anonymous_materialized_filter_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .filter_with(|_, _| false, Materialized::with(Utf8, Utf8));
    assert_eq!(
        builder.build()?.describe().to_string(),
        table_op_topology("KTABLE-FILTER-0000000004", "")
    );
    Ok(())
}

#[test]
fn ktable_named_materialized_map_values_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .map_values_with(|v| v.len() as i64, Materialized::named("store-name"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        table_op_topology("KTABLE-MAPVALUES-0000000003", "store-name")
    );
    Ok(())
}

#[test]
fn ktable_named_materialized_filter_should_preserve_topology_structure() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table::<String, String>("input-topic")
        .filter_with(|_, _| false, Materialized::named("store-name"));
    assert_eq!(
        builder.build()?.describe().to_string(),
        table_op_topology("KTABLE-FILTER-0000000003", "store-name")
    );
    Ok(())
}

#[test]
fn should_support_table_table_join_with_kstream_to_ktable() -> Result<()> {
    let builder = StreamsBuilder::new();
    let t1 = builder.stream::<String, String>("left").to_table();
    let t2 = builder.stream::<String, String>("right").to_table();
    t1.join(&t2, |a, b| format!("{a}{b}"))
        .to_stream()
        .to("output");
    let expected = "Topologies:
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

";
    assert_eq!(builder.build()?.describe().to_string(), expected);
    Ok(())
}

#[test]
fn should_support_stream_table_join_with_kstream_to_ktable() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = builder.stream::<String, String>("streamTopic");
    let t = builder.stream::<String, String>("tableTopic").to_table();
    s.join_table(&t, |a, b| format!("{a}{b}")).to("output");
    let expected = "Topologies:
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

";
    assert_eq!(builder.build()?.describe().to_string(), expected);
    Ok(())
}

#[test]
fn should_support_key_change_ktable_from_kstream() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input")
        .map(|k, v| (i32::from(k.as_bytes()[0]) - i32::from(b'A'), v.clone()))
        .to_table_with(Materialized::with(BigEndian, Utf8))
        .to_stream()
        .to("output");
    let topology = builder.build()?;
    let expected = "Topologies:
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

";
    assert_eq!(topology.describe().to_string(), expected);
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.input::<String, String>("input");
    input.pipe("A".into(), "01".into(), 5)?;
    input.pipe("AA".into(), "02".into(), 6)?;
    input.pipe("B".into(), "03".into(), 7)?;
    let out = driver
        .output::<i32, Option<String>>("output")
        .read_records()?;
    let got: Vec<(i32, Option<String>, i64)> = out
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, Some("01".into()), 5),
            (0, Some("02".into()), 6),
            (1, Some("03".into()), 7)
        ]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Beyond Kafka's tests
// ---------------------------------------------------------------------------------------

#[test]
fn a_named_source_consumed_gives_source_and_table_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.table_with::<String, String>(
        "t",
        Consumed::with(Utf8, Utf8).with_name("source-node"),
        Materialized::default(),
    );
    builder.table::<String, String>("u");
    let text = builder.build()?.describe().to_string();
    assert!(
        text.contains("Source: source-node-source (topics: [t])"),
        "{text}"
    );
    assert!(
        text.contains("Processor: source-node (stores: [])"),
        "{text}"
    );
    assert!(
        text.contains("Source: KSTREAM-SOURCE-0000000004 (topics: [u])"),
        "{text}"
    );
    assert!(
        text.contains("Processor: KTABLE-SOURCE-0000000005 (stores: [])"),
        "{text}"
    );
    Ok(())
}

#[test]
fn to_table_treats_null_values_as_deletes() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder
        .stream::<String, Option<String>>("in")
        .to_table_with(Materialized::named("latest"));
    let seen = stream_of(&table);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("in");
    input.pipe("a".into(), Some("1".into()), 1)?;
    input.pipe("a".into(), None, 2)?;
    input.pipe("b".into(), None, 3)?; // delete of an absent key: nothing with the cache on
    assert_eq!(
        take(&seen),
        vec![kv("a", Some(Some("1".to_string())), 1), kv("a", None, 2)]
    );
    let store = driver.key_value_store::<String, Option<String>>("latest")?;
    assert_eq!(store.all()?, vec![]);
    Ok(())
}

#[test]
fn without_the_cache_a_delete_of_an_absent_key_is_forwarded() -> Result<()> {
    // Kafka's KTableSource forwards every update when its store has no cache.
    let builder = StreamsBuilder::new();
    let table = builder.table_with::<String, String>(
        "in",
        Consumed::with(Utf8, Utf8),
        Materialized::named("s").with_caching_disabled(),
    );
    let seen = stream_of(&table);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<String, Option<String>>("in")
        .pipe("a".into(), None, 4)?;
    assert_eq!(take(&seen), vec![kv("a", None, 4)]);
    Ok(())
}

#[test]
fn the_cache_forwards_only_the_last_update_of_a_key_per_commit() -> Result<()> {
    // One input record updates the same key twice: the cache merges them, as Kafka's does.
    for (caching, expected) in [
        (true, vec![kv("k", Some("b".to_string()), 3)]),
        (
            false,
            vec![
                kv("k", Some("a".to_string()), 3),
                kv("k", Some("b".to_string()), 3),
            ],
        ),
    ] {
        let builder = StreamsBuilder::new();
        let materialized = if caching {
            Materialized::named("latest")
        } else {
            Materialized::named("latest").with_caching_disabled()
        };
        let table = builder
            .stream::<String, String>("in")
            .flat_map_values(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .to_table_with(materialized);
        let seen = stream_of(&table);
        let driver = TopologyTestDriver::new(builder.build()?)?;
        driver
            .input::<String, String>("in")
            .pipe("k".into(), "a,b".into(), 3)?;
        assert_eq!(take(&seen), expected, "caching {caching}");
    }
    Ok(())
}

#[test]
fn a_cached_delete_keeps_the_timestamp_of_the_delete() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.table_with::<String, String>(
        "in",
        Consumed::with(Utf8, Utf8),
        Materialized::named("s"),
    );
    let seen = stream_of(&table);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, Option<String>>("in");
    input.pipe("a".into(), Some("x".into()), 20)?;
    input.pipe("a".into(), None, 7)?;
    assert_eq!(
        take(&seen),
        vec![kv("a", Some("x".to_string()), 20), kv("a", None, 7)]
    );
    Ok(())
}

#[test]
fn joins_read_through_non_materialized_filter_and_map_values() -> Result<()> {
    // The joined table is read through the getters of map_values and filter, which read the
    // source table's store: the source is materialized by the join, the operators are not.
    let builder = StreamsBuilder::new();
    let prices = builder
        .table::<String, i64>("prices")
        .filter(|_k, p| *p >= 0)
        .map_values(|p| p * 2);
    builder
        .stream::<String, String>("orders")
        .left_join_table(&prices, |o, p| format!("{o}@{p:?}"))
        .to("priced");
    let topology = builder.build()?;
    let text = topology.describe().to_string();
    assert!(
        text.contains(
            "Processor: KTABLE-SOURCE-0000000002 (stores: [prices-STATE-STORE-0000000000])"
        ),
        "{text}"
    );
    assert!(
        text.contains("Processor: KTABLE-FILTER-0000000003 (stores: [])"),
        "{text}"
    );
    assert!(
        text.contains("Processor: KTABLE-MAPVALUES-0000000004 (stores: [])"),
        "{text}"
    );
    assert!(
        text.contains("(stores: [prices-STATE-STORE-0000000000])\n      --> KSTREAM-SINK"),
        "{text}"
    );
    let driver = TopologyTestDriver::new(topology)?;
    let p = driver.input::<String, Option<i64>>("prices");
    let o = driver.input::<String, String>("orders");
    p.pipe("pen".into(), Some(3), 0)?;
    p.pipe("ink".into(), Some(-1), 0)?;
    o.pipe("pen".into(), "o1".into(), 1)?;
    o.pipe("ink".into(), "o2".into(), 2)?;
    p.pipe("pen".into(), None, 3)?;
    o.pipe("pen".into(), "o3".into(), 4)?;
    let out = driver.output::<String, String>("priced").read_values()?;
    assert_eq!(out, vec!["o1@Some(6)", "o2@None", "o3@None"]);
    Ok(())
}

#[test]
fn a_join_of_join_results_reads_the_join_getter() -> Result<()> {
    // The inner join result is not materialized: the outer join reads it through the join
    // getter over both sources.
    let builder = StreamsBuilder::new();
    let a = builder.table::<String, String>("a");
    let b = builder.table::<String, String>("b");
    let c = builder.table::<String, String>("c");
    let ab = a.join(&b, |x, y| format!("{x}{y}"));
    c.left_join(&ab, |z, xy| format!("{z}:{xy:?}"))
        .to_stream()
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let pipe = |t: &str, k: &str, v: &str, ts: i64| {
        driver
            .input::<String, Option<String>>(t)
            .pipe(k.into(), Some(v.into()), ts)
    };
    pipe("a", "k", "1", 1)?;
    pipe("c", "k", "z", 2)?;
    pipe("b", "k", "2", 3)?;
    let out = driver
        .output::<String, Option<String>>("out")
        .read_records()?;
    let got: Vec<(Option<String>, i64)> = out.into_iter().map(|r| (r.value, r.timestamp)).collect();
    assert_eq!(
        got,
        vec![
            (Some("z:None".to_string()), 2),
            (Some("z:Some(\"12\")".to_string()), 3),
        ]
    );
    Ok(())
}

#[test]
fn source_tables_are_materialized_only_when_needed() -> Result<()> {
    let builder = StreamsBuilder::new();
    let plain = builder.table::<String, String>("plain");
    plain.to_stream().to("out");
    let grouped = builder.table::<String, String>("grouped");
    grouped.group_by(|k, v| (v.clone(), k.clone())).count();
    let named = builder.table_with::<String, String>(
        "named",
        Consumed::default(),
        Materialized::named("n"),
    );
    named.to_stream().to("out2");
    let topology = builder.build()?;
    let stores: BTreeMap<&str, bool> = topology
        .stores()
        .map(|s| (s.name(), s.caching_enabled()))
        .collect();
    assert_eq!(
        stores.keys().copied().collect::<Vec<_>>(),
        vec![
            "KTABLE-AGGREGATE-STATE-STORE-0000000009",
            "grouped-STATE-STORE-0000000005",
            "n"
        ]
    );
    assert!(stores.values().all(|c| *c), "caching is on by default");
    Ok(())
}
