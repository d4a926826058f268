//! Global tables: `StreamsBuilder::global_table`/`add_global_store`, the stream–global-table
//! joins, the global task and `describe()`.
//!
//! Ported from Kafka (inputs and asserted outputs kept exactly):
//! - `KStreamGlobalKTableJoinTest`: shouldNotRequireCopartitioning,
//!   shouldNotJoinWithEmptyGlobalTableOnStreamUpdates, shouldNotJoinOnGlobalTableUpdates,
//!   shouldJoinOnlyIfMatchFoundOnStreamUpdates, shouldClearGlobalTableEntryOnNullValueUpdates,
//!   shouldNotJoinOnNullKeyMapperValues, shouldJoinOnNullKeyWithNonNullKeyMapperValues.
//! - `KStreamGlobalKTableLeftJoinTest`: the same seven methods (left-join expectations,
//!   shouldJoinRegardlessIfMatchFoundOnStreamUpdates instead of
//!   shouldJoinOnlyIfMatchFoundOnStreamUpdates).
//! - `GlobalKTableJoinsTest`: shouldLeftJoinWithStream, shouldInnerJoinWithStream.
//!
//! Not ported: the versioned-store variants of those tests (`initWithVersionedStore`; freshet
//! has no versioned stores, and Kafka refuses versioned global tables anyway). Kafka's
//! `MockApiProcessor` is replaced by a sink read back through the driver; the stream topic's
//! auto-advancing timestamps (0, 1, 2, …) are given explicitly.

use freshet_streams::testing::{DriverConfig, TopologyTestDriver};
use freshet_streams::{
    Consumed, Error, ErrorPolicy, GlobalTask, InputRecord, Materialized, Processor,
    ProcessorContext, PunctuationType, Record, Result, Stores, StreamsBuilder, TaskConfig, TaskEnv,
    Utf8,
};

const STREAM: &str = "streamTopic";
const GLOBAL: &str = "globalTableTopic";
const OUT: &str = "output";
const EXPECTED_KEYS: [i32; 4] = [0, 1, 2, 3];

/// Kafka's test fixture: a stream keyed by (nullable) integers whose value `X0,FKey0`
/// optionally names the global table's key; the joiner is `MockValueJoiner.TOSTRING_JOINER`.
struct Fixture {
    driver: TopologyTestDriver,
    /// The stream topic's auto-advancing timestamp.
    next_ts: i64,
}

fn fixture(left: bool) -> Result<Fixture> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream::<Option<i32>, String>(STREAM);
    let table = builder.global_table::<String, String>(GLOBAL);
    let key_mapper = |_: &Option<i32>, value: &String| {
        let tokens: Vec<&str> = value.split(',').collect();
        (tokens.len() > 1).then(|| tokens[1].to_string())
    };
    if left {
        stream
            .left_join_global(&table, key_mapper, |v, g| {
                format!("{v}+{}", g.map_or("null", |g| g.as_str()))
            })
            .to(OUT);
    } else {
        stream
            .join_global(&table, key_mapper, |v, g| format!("{v}+{g}"))
            .to(OUT);
    }
    Ok(Fixture {
        driver: TopologyTestDriver::new(builder.build()?)?,
        next_ts: 0,
    })
}

impl Fixture {
    fn push_to_stream(
        &mut self,
        count: usize,
        prefix: &str,
        include_foreign_key: bool,
        include_null_key: bool,
    ) -> Result<()> {
        let input = self.driver.input::<Option<i32>, String>(STREAM);
        for (i, k) in EXPECTED_KEYS.iter().take(count).enumerate() {
            let mut value = format!("{prefix}{k}");
            if include_foreign_key {
                value = format!("{value},FKey{k}");
            }
            let key = if include_null_key && i == 0 {
                None
            } else {
                Some(*k)
            };
            input.pipe(key, value, self.next_ts)?;
            self.next_ts += 1;
        }
        Ok(())
    }

    fn push_to_global_table(&self, count: usize, prefix: &str) -> Result<()> {
        let input = self.driver.input::<String, String>(GLOBAL);
        for k in EXPECTED_KEYS.iter().take(count) {
            input.pipe(format!("FKey{k}"), format!("{prefix}{k}"), 0)?;
        }
        Ok(())
    }

    fn push_null_value_to_global_table(&self, count: usize) -> Result<()> {
        let input = self.driver.input::<String, Option<String>>(GLOBAL);
        for k in EXPECTED_KEYS.iter().take(count) {
            input.pipe(format!("FKey{k}"), None, 0)?;
        }
        Ok(())
    }

    /// Kafka's `checkAndClearProcessResult`: `(key, value, timestamp)` seen since last time.
    fn check_and_clear(&self, expected: &[(Option<i32>, &str, i64)]) -> Result<()> {
        let out: Vec<(Option<i32>, String, i64)> = self
            .driver
            .output::<Option<i32>, String>(OUT)
            .read_records()?
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        let expected: Vec<(Option<i32>, String, i64)> = expected
            .iter()
            .map(|(k, v, t)| (*k, v.to_string(), *t))
            .collect();
        assert_eq!(out, expected);
        Ok(())
    }
}

const EMPTY: &[(Option<i32>, &str, i64)] = &[];

// ---- KStreamGlobalKTableJoinTest ----

#[test]
fn inner_should_not_require_copartitioning() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.global_table::<String, String>(GLOBAL);
    builder
        .stream::<String, String>(STREAM)
        .join_global(&table, |_, v| v.clone(), |v, g| format!("{v}+{g}"))
        .to(OUT);
    let topology = builder.build()?;
    assert!(
        topology.copartition_groups().is_empty(),
        "KStream-GlobalKTable joins do not need to be co-partitioned"
    );
    Ok(())
}

#[test]
fn inner_should_not_join_with_empty_global_table_on_stream_updates() -> Result<()> {
    let mut f = fixture(false)?;
    f.push_to_stream(2, "X", true, false)?;
    f.check_and_clear(EMPTY)
}

#[test]
fn inner_should_not_join_on_global_table_updates() -> Result<()> {
    let mut f = fixture(false)?;
    f.push_to_stream(2, "X", true, false)?;
    f.check_and_clear(EMPTY)?;
    f.push_to_global_table(2, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[(Some(0), "X0,FKey0+Y0", 2), (Some(1), "X1,FKey1+Y1", 3)])?;
    f.push_to_global_table(4, "YY")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[
        (Some(0), "X0,FKey0+YY0", 6),
        (Some(1), "X1,FKey1+YY1", 7),
        (Some(2), "X2,FKey2+YY2", 8),
        (Some(3), "X3,FKey3+YY3", 9),
    ])?;
    f.push_to_global_table(4, "YYY")?;
    f.check_and_clear(EMPTY)
}

#[test]
fn inner_should_join_only_if_match_found_on_stream_updates() -> Result<()> {
    let mut f = fixture(false)?;
    f.push_to_global_table(2, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[(Some(0), "X0,FKey0+Y0", 0), (Some(1), "X1,FKey1+Y1", 1)])
}

#[test]
fn inner_should_clear_global_table_entry_on_null_value_updates() -> Result<()> {
    let mut f = fixture(false)?;
    f.push_to_global_table(4, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[
        (Some(0), "X0,FKey0+Y0", 0),
        (Some(1), "X1,FKey1+Y1", 1),
        (Some(2), "X2,FKey2+Y2", 2),
        (Some(3), "X3,FKey3+Y3", 3),
    ])?;
    f.push_null_value_to_global_table(2)?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "XX", true, false)?;
    f.check_and_clear(&[(Some(2), "XX2,FKey2+Y2", 6), (Some(3), "XX3,FKey3+Y3", 7)])
}

#[test]
fn inner_should_not_join_on_null_key_mapper_values() -> Result<()> {
    let mut f = fixture(false)?;
    f.push_to_global_table(4, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "XXX", false, false)?;
    f.check_and_clear(EMPTY)?;
    assert_eq!(f.driver.metrics(0).map(|m| m.dropped_records), Some(4));
    Ok(())
}

#[test]
fn inner_should_join_on_null_key_with_non_null_key_mapper_values() -> Result<()> {
    let mut f = fixture(false)?;
    f.push_to_global_table(2, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, true)?;
    f.check_and_clear(&[(None, "X0,FKey0+Y0", 0), (Some(1), "X1,FKey1+Y1", 1)])
}

// ---- KStreamGlobalKTableLeftJoinTest ----

#[test]
fn left_should_not_require_copartitioning() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.global_table::<String, String>(GLOBAL);
    builder
        .stream::<String, String>(STREAM)
        .left_join_global(&table, |_, v| v.clone(), |v, _| v.clone())
        .to(OUT);
    assert!(builder.build()?.copartition_groups().is_empty());
    Ok(())
}

#[test]
fn left_should_not_join_with_empty_global_table_on_stream_updates() -> Result<()> {
    let mut f = fixture(true)?;
    f.push_to_stream(2, "X", true, false)?;
    f.check_and_clear(&[(Some(0), "X0,FKey0+null", 0), (Some(1), "X1,FKey1+null", 1)])
}

#[test]
fn left_should_not_join_on_global_table_updates() -> Result<()> {
    let mut f = fixture(true)?;
    f.push_to_stream(2, "X", true, false)?;
    f.check_and_clear(&[(Some(0), "X0,FKey0+null", 0), (Some(1), "X1,FKey1+null", 1)])?;
    f.push_to_global_table(2, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[
        (Some(0), "X0,FKey0+Y0", 2),
        (Some(1), "X1,FKey1+Y1", 3),
        (Some(2), "X2,FKey2+null", 4),
        (Some(3), "X3,FKey3+null", 5),
    ])?;
    f.push_to_global_table(4, "YY")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[
        (Some(0), "X0,FKey0+YY0", 6),
        (Some(1), "X1,FKey1+YY1", 7),
        (Some(2), "X2,FKey2+YY2", 8),
        (Some(3), "X3,FKey3+YY3", 9),
    ])?;
    f.push_to_global_table(4, "YYY")?;
    f.check_and_clear(EMPTY)
}

#[test]
fn left_should_join_regardless_if_match_found_on_stream_updates() -> Result<()> {
    let mut f = fixture(true)?;
    f.push_to_global_table(2, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[
        (Some(0), "X0,FKey0+Y0", 0),
        (Some(1), "X1,FKey1+Y1", 1),
        (Some(2), "X2,FKey2+null", 2),
        (Some(3), "X3,FKey3+null", 3),
    ])
}

#[test]
fn left_should_clear_global_table_entry_on_null_value_updates() -> Result<()> {
    let mut f = fixture(true)?;
    f.push_to_global_table(4, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, false)?;
    f.check_and_clear(&[
        (Some(0), "X0,FKey0+Y0", 0),
        (Some(1), "X1,FKey1+Y1", 1),
        (Some(2), "X2,FKey2+Y2", 2),
        (Some(3), "X3,FKey3+Y3", 3),
    ])?;
    f.push_null_value_to_global_table(2)?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "XX", true, false)?;
    f.check_and_clear(&[
        (Some(0), "XX0,FKey0+null", 4),
        (Some(1), "XX1,FKey1+null", 5),
        (Some(2), "XX2,FKey2+Y2", 6),
        (Some(3), "XX3,FKey3+Y3", 7),
    ])
}

#[test]
fn left_should_not_join_on_null_key_mapper_values() -> Result<()> {
    let mut f = fixture(true)?;
    f.push_to_global_table(4, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "XXX", false, false)?;
    f.check_and_clear(EMPTY)
}

#[test]
fn left_should_join_on_null_key_with_non_null_key_mapper_values() -> Result<()> {
    let mut f = fixture(true)?;
    f.push_to_global_table(4, "Y")?;
    f.check_and_clear(EMPTY)?;
    f.push_to_stream(4, "X", true, true)?;
    f.check_and_clear(&[
        (None, "X0,FKey0+Y0", 0),
        (Some(1), "X1,FKey1+Y1", 1),
        (Some(2), "X2,FKey2+Y2", 2),
        (Some(3), "X3,FKey3+Y3", 3),
    ])
}

/// Kafka's left-join rule for a null stream key: kept even when the mapped key is null (the
/// record joins with null). Not in Kafka's test file; follows `maybeDropRecord`.
#[test]
fn left_join_keeps_null_key_with_null_mapped_key() -> Result<()> {
    let mut f = fixture(true)?;
    f.push_to_global_table(4, "Y")?;
    f.push_to_stream(2, "X", false, true)?;
    f.check_and_clear(&[(None, "X0+null", 0)])?;
    assert_eq!(f.driver.metrics(0).map(|m| m.dropped_records), Some(1));
    Ok(())
}

/// A null stream value is dropped by both joins.
#[test]
fn null_values_are_dropped() -> Result<()> {
    for left in [false, true] {
        let builder = StreamsBuilder::new();
        let table = builder.global_table::<String, String>(GLOBAL);
        builder
            .stream::<String, Option<String>>(STREAM)
            .left_join_global(&table, |k, _| k.clone(), |v, g| format!("{v:?}+{g:?}"))
            .to(OUT);
        if left {
            builder
                .stream::<String, Option<String>>("other")
                .join_global(&table, |k, _| k.clone(), |v, g| format!("{v:?}+{g}"))
                .to(OUT);
        }
        let driver = TopologyTestDriver::new(builder.build()?)?;
        driver
            .input::<String, String>(GLOBAL)
            .pipe("a".into(), "A".into(), 0)?;
        driver
            .input::<String, Option<String>>(STREAM)
            .pipe("a".into(), None, 1)?;
        if left {
            driver
                .input::<String, Option<String>>("other")
                .pipe("a".into(), None, 1)?;
        }
        assert!(driver.output::<String, String>(OUT).is_empty());
        driver
            .input::<String, Option<String>>(STREAM)
            .pipe("a".into(), Some("v".into()), 2)?;
        assert_eq!(
            driver.output::<String, String>(OUT).read_values()?,
            vec!["Some(\"v\")+Some(\"A\")"]
        );
    }
    Ok(())
}

// ---- GlobalKTableJoinsTest ----

fn verify_join(left: bool, expected: &[(&str, &str, i64)]) -> Result<()> {
    let builder = StreamsBuilder::new();
    let global = builder.global_table_with::<String, String>(
        "global",
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    let stream = builder.stream_with::<String, String>(&["stream"], Consumed::with(Utf8, Utf8));
    let key_value_mapper = |_: &String, v: &String| v.clone();
    if left {
        stream
            .left_join_global(&global, key_value_mapper, |v, g| {
                format!("{v}+{}", g.map_or("null", |g| g.as_str()))
            })
            .to(OUT);
    } else {
        stream
            .join_global(&global, key_value_mapper, |v, g| format!("{v}+{g}"))
            .to(OUT);
    }
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let global_input = driver.input::<String, String>("global");
    global_input.pipe("a".into(), "A".into(), 1)?;
    global_input.pipe("b".into(), "B".into(), 5)?;
    let stream_input = driver.input::<String, String>("stream");
    stream_input.pipe("1".into(), "a".into(), 2)?;
    stream_input.pipe("2".into(), "b".into(), 10)?;
    stream_input.pipe("3".into(), "c".into(), 3)?;
    // Kafka compares the last value and timestamp per key.
    let mut last = std::collections::BTreeMap::new();
    for r in driver.output::<String, String>(OUT).read_records()? {
        last.insert(r.key, (r.value, r.timestamp));
    }
    let expected = expected
        .iter()
        .map(|(k, v, t)| (k.to_string(), (v.to_string(), *t)))
        .collect();
    assert_eq!(last, expected);
    Ok(())
}

#[test]
fn should_left_join_with_stream() -> Result<()> {
    verify_join(
        true,
        &[("1", "a+A", 2), ("2", "b+B", 10), ("3", "c+null", 3)],
    )
}

#[test]
fn should_inner_join_with_stream() -> Result<()> {
    verify_join(false, &[("1", "a+A", 2), ("2", "b+B", 10)])
}

// ---- freshet: the global table itself ----

/// Tombstones delete, null keys are dropped, records keep their own timestamps, and the
/// store is not logged.
#[test]
fn global_table_store_follows_its_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.global_table_with::<Option<String>, String>(
        GLOBAL,
        Consumed::default().with_timestamp_extractor(|_, _| 999),
        Materialized::named("g"),
    );
    let topology = builder.build()?;
    let store = topology
        .stores()
        .find(|s| s.name() == "g")
        .map(|s| s.logging_enabled());
    assert_eq!(store, Some(false), "global stores are never logged");
    assert!(
        topology.subtopologies().is_empty(),
        "a global store generates no tasks"
    );
    assert_eq!(topology.global_stores().len(), 1);
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.input::<Option<String>, Option<String>>(GLOBAL);
    input.pipe(Some("a".into()), Some("1".into()), 5)?;
    input.pipe(Some("b".into()), Some("2".into()), 6)?;
    input.pipe(None, Some("3".into()), 7)?;
    input.pipe(Some("a".into()), None, 8)?;
    input.pipe(Some("b".into()), Some("22".into()), 4)?; // out of order: still applied
    let store = driver.key_value_store::<Option<String>, String>("g")?;
    assert_eq!(
        store.all()?,
        vec![(Some("b".to_string()), "22".to_string(), 4)]
    );
    Ok(())
}

/// Global values piped before the stream starts are there at its first record, and every
/// lookup sees the latest value, on every partition (the table is replicated).
#[test]
fn lookups_see_the_latest_global_value_on_every_partition() -> Result<()> {
    let builder = StreamsBuilder::new();
    let rates = builder.global_table::<String, i64>("rates");
    builder
        .stream::<String, i64>("amounts")
        .join_global(
            &rates,
            |_, _| "eur".to_string(),
            |amount, rate| amount * rate,
        )
        .to(OUT);
    let config = DriverConfig {
        partitions: 4,
        ..Default::default()
    };
    let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    let rates_in = driver.input::<String, i64>("rates");
    rates_in.pipe("eur".into(), 2, 0)?;
    let amounts = driver.input::<String, i64>("amounts");
    for (k, p) in [("a", 0), ("b", 1), ("c", 2), ("d", 3)] {
        amounts.pipe_record(Record::new(k.to_string(), 10, 1), Some(p))?;
    }
    rates_in.pipe("eur".into(), 3, 2)?;
    amounts.pipe_record(Record::new("e".to_string(), 10, 3), Some(2))?;
    assert_eq!(
        driver.output::<String, i64>(OUT).read_values()?,
        vec![20, 20, 20, 20, 30]
    );
    Ok(())
}

/// A sink writing to a global topic feeds the global store too (as Kafka's driver does),
/// and the record still reaches the topic.
#[test]
fn records_written_to_a_global_topic_update_the_store() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.global_table::<String, String>(GLOBAL);
    builder.stream::<String, String>("updates").to(GLOBAL);
    builder
        .stream::<String, String>(STREAM)
        .join_global(&table, |k, _| k.clone(), |v, g| format!("{v}+{g}"))
        .to(OUT);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<String, String>("updates")
        .pipe("k".into(), "G".into(), 0)?;
    driver
        .input::<String, String>(STREAM)
        .pipe("k".into(), "v".into(), 1)?;
    assert_eq!(
        driver.output::<String, String>(OUT).read_values()?,
        vec!["v+G"]
    );
    assert_eq!(
        driver.output::<String, String>(GLOBAL).read_values()?,
        vec!["G"]
    );
    Ok(())
}

/// A processor may read a global store by name without being connected to it.
#[test]
fn processors_read_global_stores_without_connecting_them() -> Result<()> {
    struct Lookup;
    impl Processor<String, String, String, String> for Lookup {
        fn process(
            &mut self,
            ctx: &mut ProcessorContext<'_, '_, String, String>,
            r: Record<String, String>,
        ) -> Result<()> {
            let store = ctx.key_value_store::<String, String>("names")?;
            let found = store.get(&r.value)?.map(|(v, _)| v).unwrap_or_default();
            ctx.forward(r.with_value(found))
        }
    }
    let builder = StreamsBuilder::new();
    builder.global_table_with::<String, String>(
        GLOBAL,
        Consumed::default(),
        Materialized::named("names"),
    );
    builder
        .stream::<String, String>(STREAM)
        .process(|| Lookup, &[])
        .to(OUT);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<String, String>(GLOBAL)
        .pipe("u1".into(), "Ann".into(), 0)?;
    driver
        .input::<String, String>(STREAM)
        .pipe("k".into(), "u1".into(), 1)?;
    assert_eq!(
        driver.output::<String, String>(OUT).read_values()?,
        vec!["Ann"]
    );
    Ok(())
}

/// Connecting a global store to a processor is a topology error (Kafka: "Global StateStore
/// … can be used by a Processor without being specified").
#[test]
fn connecting_a_global_store_is_an_error() -> Result<()> {
    struct Pass;
    impl Processor<String, String, String, String> for Pass {
        fn process(
            &mut self,
            ctx: &mut ProcessorContext<'_, '_, String, String>,
            r: Record<String, String>,
        ) -> Result<()> {
            ctx.forward(r)
        }
    }
    let builder = StreamsBuilder::new();
    builder.global_table_with::<String, String>(
        GLOBAL,
        Consumed::default(),
        Materialized::named("names"),
    );
    builder
        .stream::<String, String>(STREAM)
        .process(|| Pass, &["names"]);
    match builder.build() {
        Err(Error::Topology(msg)) => assert!(msg.contains("KSTREAM-PROCESSOR-0000000003"), "{msg}"),
        other => panic!("expected a topology error, got {other:?}"),
    }
    Ok(())
}

/// A global topic has no other source (Kafka: "Topic has already been registered by another
/// source").
#[test]
fn a_global_topic_has_no_other_source() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.global_table::<String, String>(GLOBAL);
    builder.stream::<String, String>(GLOBAL).to(OUT);
    match builder.build() {
        Err(Error::Topology(msg)) => assert!(msg.contains("KSTREAM-SOURCE-0000000003"), "{msg}"),
        other => panic!("expected a topology error, got {other:?}"),
    }
    let builder = StreamsBuilder::new();
    builder.global_table::<String, String>(GLOBAL);
    builder.global_table::<String, String>(GLOBAL);
    assert!(matches!(builder.build(), Err(Error::Topology(_))));
    Ok(())
}

/// `add_global_store`: names, the processor keeps the store; punctuations are refused.
#[test]
fn add_global_store_keeps_a_store_with_a_processor() -> Result<()> {
    struct Count;
    impl Processor<String, String, (), ()> for Count {
        fn process(
            &mut self,
            ctx: &mut ProcessorContext<'_, '_, (), ()>,
            r: Record<String, String>,
        ) -> Result<()> {
            let store = ctx.key_value_store::<String, i64>("counts")?;
            let n = store.get(&r.key)?.map_or(0, |(n, _)| n);
            store.put(&r.key, &(n + 1), r.timestamp)
        }
    }
    let builder = StreamsBuilder::new();
    builder.add_global_store(
        Stores::key_value::<String, i64>("counts", Utf8, freshet_streams::BigEndian),
        "events",
        Consumed::with(Utf8, Utf8).with_name("events"),
        || Count,
    );
    let topology = builder.build()?;
    assert_eq!(
        topology.describe().to_string(),
        "Topologies:\n   Sub-topology: 0 for global store (will not generate tasks)\n\
         \x20   Source: events-source (topics: [events])\n\
         \x20     --> events\n\
         \x20   Processor: events (stores: [counts])\n\
         \x20     --> none\n\
         \x20     <-- events-source\n"
    );
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.input::<String, String>("events");
    input.pipe("a".into(), "x".into(), 0)?;
    input.pipe("a".into(), "y".into(), 1)?;
    let counts = driver.key_value_store::<String, i64>("counts")?;
    assert_eq!(counts.get(&"a".to_string())?, Some((2, 1)));

    struct Punctuating;
    impl Processor<String, String, (), ()> for Punctuating {
        fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, (), ()>) -> Result<()> {
            ctx.schedule(
                std::time::Duration::from_millis(10),
                PunctuationType::WallClockTime,
                |_, _| Ok(()),
            )?;
            Ok(())
        }
        fn process(
            &mut self,
            _ctx: &mut ProcessorContext<'_, '_, (), ()>,
            _r: Record<String, String>,
        ) -> Result<()> {
            Ok(())
        }
    }
    let builder = StreamsBuilder::new();
    builder.add_global_store(
        Stores::key_value::<String, String>("s", Utf8, Utf8),
        "events",
        Consumed::with(Utf8, Utf8),
        || Punctuating,
    );
    assert!(TopologyTestDriver::new(builder.build()?).is_err());
    Ok(())
}

// ---- describe() ----

#[test]
fn describe_global_table_and_join() -> Result<()> {
    let builder = StreamsBuilder::new();
    let global = builder.global_table::<String, String>("global");
    builder
        .stream::<String, String>("in")
        .join_global(&global, |_, v| v.clone(), |v, g| format!("{v}{g}"))
        .to("out");
    assert_eq!(
        builder.build()?.describe().to_string(),
        "Topologies:\n   Sub-topology: 0 for global store (will not generate tasks)\n\
         \x20   Source: KSTREAM-SOURCE-0000000001 (topics: [global])\n\
         \x20     --> KTABLE-SOURCE-0000000002\n\
         \x20   Processor: KTABLE-SOURCE-0000000002 (stores: [global-STATE-STORE-0000000000])\n\
         \x20     --> none\n\
         \x20     <-- KSTREAM-SOURCE-0000000001\n\
         \x20 Sub-topology: 1\n\
         \x20   Source: KSTREAM-SOURCE-0000000003 (topics: [in])\n\
         \x20     --> KSTREAM-LEFTJOIN-0000000004\n\
         \x20   Processor: KSTREAM-LEFTJOIN-0000000004 (stores: [])\n\
         \x20     --> KSTREAM-SINK-0000000005\n\
         \x20     <-- KSTREAM-SOURCE-0000000003\n\
         \x20   Sink: KSTREAM-SINK-0000000005 (topic: out)\n\
         \x20     <-- KSTREAM-LEFTJOIN-0000000004\n\n"
    );
    Ok(())
}

/// Sub-topology ids and global store ids share one sequence; the stream's task is `1_0`
/// style when a global store took 0. Here: stream 0, global 1, stream 2, global 3.
#[test]
fn describe_interleaves_global_stores_by_id() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.stream::<String, String>("a").to("a-out");
    let g1 = builder.global_table_with::<String, String>(
        "g1",
        Consumed::named("first"),
        Materialized::named("g1-store"),
    );
    builder
        .stream::<String, String>("b")
        .left_join_global(&g1, |k, _| k.clone(), |v, _| v.clone())
        .to("b-out");
    builder.global_table::<String, String>("g2");
    let topology = builder.build()?;
    let ids: Vec<u32> = topology.subtopologies().iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![0, 2]);
    let globals: Vec<(u32, String)> = topology
        .global_stores()
        .iter()
        .map(|g| (g.id, g.store.clone()))
        .collect();
    assert_eq!(
        globals,
        vec![
            (1, "g1-store".to_string()),
            (3, "g2-STATE-STORE-0000000007".to_string())
        ]
    );
    assert_eq!(
        topology.describe().to_string(),
        "Topologies:\n   Sub-topology: 0\n\
         \x20   Source: KSTREAM-SOURCE-0000000000 (topics: [a])\n\
         \x20     --> KSTREAM-SINK-0000000001\n\
         \x20   Sink: KSTREAM-SINK-0000000001 (topic: a-out)\n\
         \x20     <-- KSTREAM-SOURCE-0000000000\n\n\
         \x20 Sub-topology: 1 for global store (will not generate tasks)\n\
         \x20   Source: first-source (topics: [g1])\n\
         \x20     --> first\n\
         \x20   Processor: first (stores: [g1-store])\n\
         \x20     --> none\n\
         \x20     <-- first-source\n\
         \x20 Sub-topology: 2\n\
         \x20   Source: KSTREAM-SOURCE-0000000004 (topics: [b])\n\
         \x20     --> KSTREAM-LEFTJOIN-0000000005\n\
         \x20   Processor: KSTREAM-LEFTJOIN-0000000005 (stores: [])\n\
         \x20     --> KSTREAM-SINK-0000000006\n\
         \x20     <-- KSTREAM-SOURCE-0000000004\n\
         \x20   Sink: KSTREAM-SINK-0000000006 (topic: b-out)\n\
         \x20     <-- KSTREAM-LEFTJOIN-0000000005\n\n\
         \x20 Sub-topology: 3 for global store (will not generate tasks)\n\
         \x20   Source: KSTREAM-SOURCE-0000000008 (topics: [g2])\n\
         \x20     --> KTABLE-SOURCE-0000000009\n\
         \x20   Processor: KTABLE-SOURCE-0000000009 (stores: [g2-STATE-STORE-0000000007])\n\
         \x20     --> none\n\
         \x20     <-- KSTREAM-SOURCE-0000000008\n"
    );
    Ok(())
}

// ---- the global task, as the runtime drives it ----

fn env(deserialization: ErrorPolicy) -> TaskEnv {
    let mut config = TaskConfig::new("app");
    config.deserialization = deserialization;
    TaskEnv {
        backend: std::sync::Arc::new(freshet_state_store::MemoryBackend::new()),
        cache: freshet_state_store::ThreadCache::new(1 << 20),
        config,
        partitions_of: std::sync::Arc::new(|_| Some(2)),
        wall_clock: 0,
        global_stores: Default::default(),
    }
}

fn raw(key: &str, value: Option<&[u8]>, offset: i64) -> InputRecord {
    InputRecord {
        key: Some(key.as_bytes().to_vec().into()),
        value: value.map(|v| v.to_vec().into()),
        timestamp: offset,
        headers: Vec::new(),
        offset,
    }
}

/// Bootstrapping: every partition is read into the store before a task runs; the task
/// built with the global stores reads them; offsets are the checkpoint.
#[test]
fn global_task_bootstraps_all_partitions_before_tasks_run() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.global_table::<String, i64>("rates");
    builder
        .stream::<String, String>("in")
        .join_global(&table, |_, v| v.clone(), |v, rate| format!("{v}={rate}"))
        .to("out");
    let topology = builder.build()?;
    let mut global = GlobalTask::new(&topology, env(ErrorPolicy::Fail))?;
    assert_eq!(global.topics(), vec!["rates".to_string()]);
    let two = 2i64.to_be_bytes();
    let three = 3i64.to_be_bytes();
    global.add_records(
        "rates",
        0,
        [raw("x", Some(&two), 0), raw("y", Some(&two), 1)],
    )?;
    global.add_records("rates", 1, [raw("z", Some(&three), 0), raw("y", None, 1)])?;
    assert!(matches!(
        global.add_records("nope", 0, []),
        Err(Error::UnknownTopic(_))
    ));
    assert_eq!(global.process()?, 4);
    global.commit()?;
    assert_eq!(
        global.consumed_offsets(),
        vec![("rates".to_string(), 0, 2), ("rates".to_string(), 1, 2)]
    );

    let mut env = env(ErrorPolicy::Fail);
    env.global_stores = global.global_stores();
    let sub = topology.subtopologies()[0].id;
    assert_eq!(sub, 1, "the global store took sub-topology id 0");
    let mut task = freshet_streams::Task::new(&topology, "1_0", &[sub], 0, env)?;
    let value = |v: &str, offset| InputRecord {
        key: Some("k".as_bytes().to_vec().into()),
        value: Some(v.as_bytes().to_vec().into()),
        timestamp: 10,
        headers: Vec::new(),
        offset,
    };
    task.add_records("in", [value("x", 0), value("y", 1), value("z", 2)])?;
    while task.process_one()? {}
    let out: Vec<String> = task
        .take_outputs()
        .into_iter()
        .filter_map(|r| r.value.map(|v| String::from_utf8_lossy(&v).into_owned()))
        .collect();
    assert_eq!(out, vec!["x=2", "z=3"], "y was deleted by its tombstone");
    Ok(())
}

#[test]
fn global_task_applies_the_deserialization_policy() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.global_table::<String, i64>("rates");
    let topology = builder.build()?;
    let bad = raw("x", Some(b"not eight bytes"), 0);

    let mut global = GlobalTask::new(&topology, env(ErrorPolicy::Fail))?;
    global.add_records("rates", 0, [bad.clone()])?;
    assert!(matches!(
        global.process(),
        Err(Error::Deserialization { .. })
    ));

    let mut global = GlobalTask::new(&topology, env(ErrorPolicy::LogAndContinue))?;
    global.add_records(
        "rates",
        0,
        [bad.clone(), raw("y", Some(&1i64.to_be_bytes()), 1)],
    )?;
    assert_eq!(global.process()?, 2);
    assert_eq!(global.metrics().dropped_records, 1);
    assert_eq!(global.consumed_offsets(), vec![("rates".to_string(), 0, 2)]);

    let mut global = GlobalTask::new(&topology, env(ErrorPolicy::DeadLetter("dlq".into())))?;
    global.add_records("rates", 0, [bad])?;
    global.process()?;
    let out = global.take_outputs();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "dlq");
    assert_eq!(out[0].value.as_deref(), Some(&b"not eight bytes"[..]));
    Ok(())
}
