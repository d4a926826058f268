//! Port of Kafka's `KStreamSessionWindowAggregateProcessorTest`, plus freshet's own tests of
//! session-windowed aggregations (naming, late-records topic, emit-final throttling and
//! restart).
//!
//! Kafka's test drives the processor directly on a mock context, with a session store named
//! `session-store` (retention 3 × gap, logging off), the aggregation `init 0`, `agg + 1`,
//! `merger a + b`, and each test run once per emit strategy. Here the same aggregation runs
//! as `group_by_key().windowed_by(..).emit_strategy(..).aggregate_with(.., Materialized)`:
//! forwarded records are read from the output topic of `to_stream()` (the new value; Kafka's
//! old values are null in every case), the store through the driver.
//!
//! Ported (each for both strategies unless said):
//! - `shouldCreateSingleSessionWhenWithinGap`, `shouldMergeSessions`,
//!   `shouldUpdateSessionIfTheSameTime`, `shouldRemoveMergedSessionsFromStateStore`: as is,
//!   through the `TopologyTestDriver` and the session store.
//! - `shouldHaveMultipleSessionsForSameIdWhenTimestampApartBySessionGap`,
//!   `shouldHandleMultipleSessionsAndMerging`: Kafka flushes the cache once, after all
//!   records; the test driver commits after every record. These run on the task core
//!   directly ([`Task`]: process every record, then one flush), which reproduces Kafka's
//!   outputs exactly.
//! - `shouldGetAggregatedValuesFromValueGetter`: the value getter is internal; the same
//!   values are read with the session store's `find_sessions`.
//! - `shouldImmediatelyForwardNewSessionWhenNonCachedStore`,
//!   `shouldImmediatelyForwardRemovedSessionsWhenMerging`: on-update only (Kafka returns
//!   early for emit-final), with caching disabled.
//! - `shouldLogAndMeterWhenSkippingNullKeyWithBuiltInMetrics`,
//!   `shouldLogAndMeterWhenSkippingLateRecordWithZeroGrace`,
//!   `shouldLogAndMeterWhenSkippingLateRecordWithNonzeroGrace`: the WARN text is checked with a
//!   capturing `tracing` subscriber and the `dropped-records` metric with the driver's task
//!   metrics. Kafka's record context (`topic=[topic] partition=[-3] offset=[-2]`) is a mock;
//!   here it is the real input position. The late-record tests use emit-on-update in Kafka
//!   for both parameterizations (only the store type varies), so they run once. Kafka's
//!   `dropped-records-rate` has no counterpart (freshet counts totals).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use freshet_state_store::{MemoryBackend, ThreadCache};
use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    BigEndian, EmitStrategy, InputRecord, Materialized, Nullable, Record, Result, Serde, SerdeRef,
    SessionWindowedSerde, SessionWindows, StreamsBuilder, Task, TaskConfig, TaskEnv, Topology,
    Utf8, Window, Windowed,
};

const GAP_MS: i64 = 5 * 60 * 1000;
const STORE_NAME: &str = "session-store";
const STRATEGIES: [EmitStrategy; 2] = [EmitStrategy::OnWindowUpdate, EmitStrategy::OnWindowClose];

fn ms(v: i64) -> Duration {
    Duration::from_millis(v as u64)
}

/// Kafka's setup: the count-like aggregation into `session-store` (retention 3 × gap, no
/// logging), results to `output`.
fn topology(strategy: EmitStrategy, caching: bool, windows: SessionWindows) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let mut materialized = Materialized::<String, i64>::named(STORE_NAME)
        .with_retention(ms(GAP_MS * 3))
        .with_logging_disabled()
        .with_value_serde(BigEndian);
    if !caching {
        materialized = materialized.with_caching_disabled();
    }
    builder
        .stream::<String, String>("input")
        .group_by_key()
        .windowed_by(windows)
        .emit_strategy(strategy)
        .aggregate_with(
            || 0i64,
            |_k, _v, agg| agg + 1,
            |_k, a, b| a + b,
            materialized,
        )
        .to_stream()
        .to("output");
    builder.build()
}

fn gap_windows() -> Result<SessionWindows> {
    SessionWindows::of_inactivity_gap_with_no_grace(ms(GAP_MS))
}

fn driver(strategy: EmitStrategy, caching: bool) -> Result<TopologyTestDriver> {
    TopologyTestDriver::new(topology(strategy, caching, gap_windows()?)?)
}

type Out = (String, Window, Option<i64>, i64);

fn out(key: &str, start: i64, end: i64, value: Option<i64>, ts: i64) -> Out {
    (key.to_string(), Window::new(start, end), value, ts)
}

fn windowed_keys() -> SerdeRef<Windowed<String>> {
    Arc::new(SessionWindowedSerde::new(Arc::new(Utf8) as SerdeRef<String>))
}

fn values() -> SerdeRef<Option<i64>> {
    Arc::new(Nullable(BigEndian))
}

fn read_output(driver: &TopologyTestDriver) -> Result<Vec<Out>> {
    Ok(driver
        .output_with("output", windowed_keys(), values())
        .read_records()?
        .into_iter()
        .map(|r| (r.key.key, r.key.window, r.value, r.timestamp))
        .collect())
}

fn pipe(driver: &TopologyTestDriver, key: &str, value: &str, ts: i64) -> Result<()> {
    driver
        .input::<String, String>("input")
        .pipe(key.to_string(), value.to_string(), ts)
}

fn sessions(
    driver: &TopologyTestDriver,
    key: &str,
    earliest_end: i64,
    latest_start: i64,
) -> Result<Vec<(Window, i64)>> {
    Ok(driver
        .session_store::<String, i64>(STORE_NAME)?
        .find_sessions(&key.to_string(), earliest_end, latest_start)?
        .into_iter()
        .map(|(w, v, _)| (w, v))
        .collect())
}

#[test]
fn should_create_single_session_when_within_gap() -> Result<()> {
    for strategy in STRATEGIES {
        let d = driver(strategy, true)?;
        pipe(&d, "john", "first", 0)?;
        pipe(&d, "john", "second", 500)?;
        let found = sessions(&d, "john", 0, 2000)?;
        assert_eq!(found.first().map(|s| s.1), Some(2), "{strategy:?}");
    }
    Ok(())
}

#[test]
fn should_merge_sessions() -> Result<()> {
    for strategy in STRATEGIES {
        let d = driver(strategy, true)?;
        pipe(&d, "mel", "first", 0)?;
        assert!(!sessions(&d, "mel", 0, 0)?.is_empty());
        pipe(&d, "mel", "second", GAP_MS + 1)?;
        assert!(!sessions(&d, "mel", GAP_MS + 1, GAP_MS + 1)?.is_empty());
        // Should still exist as not within the gap.
        assert!(!sessions(&d, "mel", 0, 0)?.is_empty());
        // Move time back: merges both sessions.
        pipe(&d, "mel", "third", GAP_MS / 2)?;
        let found = sessions(&d, "mel", 0, GAP_MS + 1)?;
        assert_eq!(found.len(), 1, "{strategy:?}");
        assert_eq!(found[0].1, 3);
    }
    Ok(())
}

#[test]
fn should_update_session_if_the_same_time() -> Result<()> {
    for strategy in STRATEGIES {
        let d = driver(strategy, true)?;
        pipe(&d, "mel", "first", 0)?;
        pipe(&d, "mel", "second", 0)?;
        assert_eq!(
            sessions(&d, "mel", 0, 0)?,
            vec![(Window::new(0, 0), 2)],
            "{strategy:?}"
        );
    }
    Ok(())
}

/// Runs a topology on the task core as Kafka's processor test does: every record, then one
/// flush of the cache (Kafka's `sessionStore.flush()`); returns what reached `output`.
struct TaskHarness {
    task: Task,
    offset: i64,
}

impl TaskHarness {
    fn new(topology: &Topology, config: TaskConfig, wall_clock: i64) -> Result<TaskHarness> {
        let subs: Vec<u32> = topology.subtopologies().iter().map(|s| s.id).collect();
        let env = TaskEnv {
            backend: Arc::new(MemoryBackend::new()),
            cache: ThreadCache::new(100_000),
            config,
            partitions_of: Arc::new(|_| Some(1)),
            wall_clock,
            global_stores: Default::default(),
        };
        let mut task = Task::new(topology, "0_0", &subs, 0, env)?;
        task.init()?;
        Ok(TaskHarness { task, offset: 0 })
    }

    fn kafka(topology: &Topology) -> Result<TaskHarness> {
        let mut config = TaskConfig::new("session-test");
        config.windowed_emit_interval_ms = 0;
        TaskHarness::new(topology, config, 0)
    }

    fn process(&mut self, key: &str, value: &str, ts: i64) -> Result<()> {
        let record = InputRecord {
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            timestamp: ts,
            headers: Vec::new(),
            offset: self.offset,
        };
        self.offset += 1;
        self.task.add_records("input", [record])?;
        assert!(self.task.process_one()?);
        Ok(())
    }

    fn outputs(&mut self) -> Result<Vec<Out>> {
        let (keys, values) = (windowed_keys(), values());
        self.task
            .take_outputs()
            .into_iter()
            .filter(|r| r.topic == "output")
            .map(|r| {
                let k = keys
                    .deserialize(r.key.as_deref().unwrap_or_default())
                    .map_err(freshet_streams::Error::processing)?;
                let v = values
                    .deserialize_nullable(r.value.as_deref())
                    .map_err(freshet_streams::Error::processing)?;
                Ok((k.key, k.window, v, r.timestamp))
            })
            .collect()
    }
}

#[test]
fn should_have_multiple_sessions_for_same_id_when_timestamp_apart_by_session_gap() -> Result<()> {
    for strategy in STRATEGIES {
        let mut h = TaskHarness::kafka(&topology(strategy, true, gap_windows()?)?)?;
        h.process("mel", "first", 0)?;
        h.process("mel", "second", GAP_MS + 1)?;
        h.process("mel", "second", GAP_MS + 1)?;
        h.process("mel", "third", 2 * (GAP_MS + 1))?;
        h.process("mel", "third", 2 * (GAP_MS + 1))?;
        h.process("mel", "third", 2 * (GAP_MS + 1))?;
        h.task.flush()?;
        let expected = match strategy {
            EmitStrategy::OnWindowClose => vec![
                out("mel", 0, 0, Some(1), 0),
                out("mel", GAP_MS + 1, GAP_MS + 1, Some(2), GAP_MS + 1),
            ],
            EmitStrategy::OnWindowUpdate => vec![
                out("mel", 0, 0, Some(1), 0),
                out("mel", GAP_MS + 1, GAP_MS + 1, Some(2), GAP_MS + 1),
                out("mel", 600_002, 600_002, Some(3), 600_002),
            ],
        };
        assert_eq!(h.outputs()?, expected, "{strategy:?}");
    }
    Ok(())
}

#[test]
fn should_remove_merged_sessions_from_state_store() -> Result<()> {
    for strategy in STRATEGIES {
        let d = driver(strategy, true)?;
        pipe(&d, "a", "1", 0)?;
        assert_eq!(
            sessions(&d, "a", 0, 0)?.first(),
            Some(&(Window::new(0, 0), 1))
        );
        pipe(&d, "a", "2", 100)?;
        assert_eq!(
            sessions(&d, "a", 0, 100)?,
            vec![(Window::new(0, 100), 2)],
            "{strategy:?}"
        );
    }
    Ok(())
}

#[test]
fn should_handle_multiple_sessions_and_merging() -> Result<()> {
    for strategy in STRATEGIES {
        let mut h = TaskHarness::kafka(&topology(strategy, true, gap_windows()?)?)?;
        h.process("a", "1", 0)?;
        h.process("b", "1", 0)?;
        h.process("c", "1", 0)?;
        h.process("d", "1", 0)?;
        h.process("d", "2", GAP_MS / 2)?;
        h.process("a", "2", GAP_MS + 1)?;
        h.process("b", "2", GAP_MS + 1)?;
        h.process("a", "3", GAP_MS + 1 + GAP_MS / 2)?;
        h.process("c", "3", GAP_MS + 1 + GAP_MS / 2)?;
        h.task.flush()?;
        let mut expected = vec![
            out("a", 0, 0, Some(1), 0),
            out("b", 0, 0, Some(1), 0),
            out("c", 0, 0, Some(1), 0),
            out("d", 0, GAP_MS / 2, Some(2), GAP_MS / 2),
        ];
        if strategy == EmitStrategy::OnWindowUpdate {
            expected.extend([
                out("b", GAP_MS + 1, GAP_MS + 1, Some(1), GAP_MS + 1),
                out("a", GAP_MS + 1, 450_001, Some(2), 450_001),
                out("c", 450_001, 450_001, Some(1), 450_001),
            ]);
        }
        assert_eq!(h.outputs()?, expected, "{strategy:?}");
    }
    Ok(())
}

#[test]
fn should_get_aggregated_values_from_value_getter() -> Result<()> {
    for strategy in STRATEGIES {
        let d = driver(strategy, true)?;
        pipe(&d, "a", "1", 0)?;
        pipe(&d, "a", "1", GAP_MS + 1)?;
        pipe(&d, "a", "2", GAP_MS + 1)?;
        assert_eq!(sessions(&d, "a", 0, 0)?, vec![(Window::new(0, 0), 1)]);
        assert_eq!(
            sessions(&d, "a", GAP_MS + 1, GAP_MS + 1)?,
            vec![(Window::new(GAP_MS + 1, GAP_MS + 1), 2)],
            "{strategy:?}"
        );
    }
    Ok(())
}

#[test]
fn should_immediately_forward_new_session_when_non_cached_store() -> Result<()> {
    let d = driver(EmitStrategy::OnWindowUpdate, false)?;
    pipe(&d, "a", "1", 0)?;
    pipe(&d, "b", "1", 0)?;
    pipe(&d, "c", "1", 0)?;
    assert_eq!(
        read_output(&d)?,
        vec![
            out("a", 0, 0, Some(1), 0),
            out("b", 0, 0, Some(1), 0),
            out("c", 0, 0, Some(1), 0),
        ]
    );
    Ok(())
}

#[test]
fn should_immediately_forward_removed_sessions_when_merging() -> Result<()> {
    let d = driver(EmitStrategy::OnWindowUpdate, false)?;
    pipe(&d, "a", "1", 0)?;
    pipe(&d, "a", "1", 5)?;
    assert_eq!(
        read_output(&d)?,
        vec![
            out("a", 0, 0, Some(1), 0),
            out("a", 0, 0, None, 0),
            out("a", 0, 5, Some(2), 5),
        ]
    );
    Ok(())
}

/// Captures the messages of WARN events (a minimal `tracing` subscriber).
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct MessageVisitor<'a>(&'a mut String);

impl tracing::field::Visit for MessageVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = String::new();
            event.record(&mut MessageVisitor(&mut message));
            if let Ok(mut all) = self.0.lock() {
                all.push(message);
            }
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Warnings {
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::subscriber::with_default(self.clone(), f)
    }
    fn contains(&self, text: &str) -> bool {
        self.0
            .lock()
            .map(|all| all.iter().any(|m| m.contains(text)))
            .unwrap_or(false)
    }
}

#[test]
fn should_log_and_meter_when_skipping_null_key_with_built_in_metrics() -> Result<()> {
    for strategy in STRATEGIES {
        let builder = StreamsBuilder::new();
        builder
            .stream::<Option<String>, String>("input")
            .group_by_key()
            .windowed_by(gap_windows()?)
            .emit_strategy(strategy)
            .aggregate_with(
                || 0i64,
                |_k, _v, agg| agg + 1,
                |_k, a, b| a + b,
                Materialized::named(STORE_NAME)
                    .with_caching_disabled()
                    .with_logging_disabled()
                    .with_value_serde(BigEndian),
            );
        let d = TopologyTestDriver::new(builder.build()?)?;
        let warnings = Warnings::default();
        warnings.during(|| {
            d.input::<Option<String>, String>("input")
                .pipe(None, "1".into(), 0)
        })?;
        assert!(warnings
            .contains("Skipping record due to null key. topic=[input] partition=[0] offset=[0]"));
        assert_eq!(
            d.metrics(0).map(|m| m.dropped_records),
            Some(1),
            "{strategy:?}"
        );
    }
    Ok(())
}

fn late_driver(grace: i64) -> Result<TopologyTestDriver> {
    let windows = SessionWindows::of_inactivity_gap_and_grace(ms(10), ms(grace))?;
    TopologyTestDriver::new(topology(EmitStrategy::OnWindowUpdate, false, windows)?)
}

#[test]
fn should_log_and_meter_when_skipping_late_record_with_zero_grace() -> Result<()> {
    let d = late_driver(0)?;
    // Establish stream time 0; an on-time record; stream time 11 (gap 10 + 1).
    pipe(&d, "dummy", "dummy", 0)?;
    pipe(&d, "OnTime1", "1", 0)?;
    pipe(&d, "dummy", "dummy", 11)?;
    let warnings = Warnings::default();
    warnings.during(|| pipe(&d, "Late1", "1", 0))?;
    assert!(warnings.contains(
        "Skipping record for expired window. topic=[input] partition=[0] offset=[3] timestamp=[0] window=[0,0] expiration=[1] streamTime=[11]"
    ));
    let metrics = d.metrics(0).unwrap_or_default();
    assert_eq!((metrics.dropped_records, metrics.late_records), (1, 1));
    Ok(())
}

#[test]
fn should_log_and_meter_when_skipping_late_record_with_nonzero_grace() -> Result<()> {
    let d = late_driver(1)?;
    let warnings = Warnings::default();
    warnings.during(|| -> Result<()> {
        pipe(&d, "dummy", "dummy", 0)?;
        pipe(&d, "OnTime1", "1", 0)?;
        // At the edge: close time 11 - 1 - 10 = 0, and 0 < 0 is false.
        pipe(&d, "dummy", "dummy", 11)?;
        pipe(&d, "OnTime2", "1", 0)?;
        pipe(&d, "dummy", "dummy", 12)?;
        pipe(&d, "Late1", "1", 0)
    })?;
    assert!(warnings.contains(
        "Skipping record for expired window. topic=[input] partition=[0] offset=[5] timestamp=[0] window=[0,0] expiration=[1] streamTime=[12]"
    ));
    let metrics = d.metrics(0).unwrap_or_default();
    assert_eq!((metrics.dropped_records, metrics.late_records), (1, 1));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Beyond Kafka's processor test.

/// `TopologyTest.sessionWindow{ZeroArgCount,NamedMaterializedCount,AnonymousMaterializedCount}…`.
#[test]
fn session_window_counts_are_named_as_kafka() -> Result<()> {
    let expected = |processor: &str, store: &str| {
        format!(
            "Topologies:\n   Sub-topology: 0\n    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n      --> {processor}\n    Processor: {processor} (stores: [{store}])\n      --> none\n      <-- KSTREAM-SOURCE-0000000000\n\n"
        )
    };
    let windows = SessionWindows::of_inactivity_gap_with_no_grace(ms(1))?;

    let b = StreamsBuilder::new();
    b.stream::<String, String>("input-topic")
        .group_by_key()
        .windowed_by(windows)
        .count();
    assert_eq!(
        b.build()?.describe().to_string(),
        expected(
            "KSTREAM-AGGREGATE-0000000002",
            "KSTREAM-AGGREGATE-STATE-STORE-0000000001"
        )
    );

    let b = StreamsBuilder::new();
    b.stream::<String, String>("input-topic")
        .group_by_key()
        .windowed_by(windows)
        .count_with(Materialized::named("count-store"));
    assert_eq!(
        b.build()?.describe().to_string(),
        expected("KSTREAM-AGGREGATE-0000000001", "count-store")
    );

    // Anonymous Materialized: Kafka burns one index for compatibility.
    let b = StreamsBuilder::new();
    b.stream::<String, String>("input-topic")
        .group_by_key()
        .windowed_by(windows)
        .count_with(Materialized::with(Utf8, BigEndian));
    assert_eq!(
        b.build()?.describe().to_string(),
        expected(
            "KSTREAM-AGGREGATE-0000000003",
            "KSTREAM-AGGREGATE-STATE-STORE-0000000002"
        )
    );

    // reduce uses the REDUCE prefixes and never burns the extra index.
    let b = StreamsBuilder::new();
    b.stream::<String, String>("input-topic")
        .group_by_key()
        .windowed_by(windows)
        .reduce_with(|a, b| a + &b, Materialized::with(Utf8, Utf8));
    assert_eq!(
        b.build()?.describe().to_string(),
        expected(
            "KSTREAM-REDUCE-0000000002",
            "KSTREAM-REDUCE-STATE-STORE-0000000001"
        )
    );
    Ok(())
}

#[test]
fn retention_smaller_than_gap_plus_grace_is_a_build_error() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(ms(10), ms(5))?)
        .count_with(Materialized::named("s").with_retention(ms(14)));
    let err = b.build().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("retention period of the session store s must be no smaller than the session inactivity gap plus the grace period: got gap=[10], grace=[5], retention=[14]"),
        "{err}"
    );
    Ok(())
}

#[test]
fn late_records_go_to_the_late_topic_with_their_reason() -> Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(ms(10), ms(5))?)
        .late_records_to("late")
        .count()
        .to_stream()
        .to("out");
    let topology = b.build()?;
    let config = freshet_streams::testing::DriverConfig {
        partitions: 3,
        ..Default::default()
    };
    let d = TopologyTestDriver::with_config(topology, config)?;
    let input = d.input::<String, String>("in");
    // All to partition 0 so that one task sees them.
    let on = |k: &str, v: &str, ts: i64| {
        input.pipe_record(
            Record::new(k.to_string(), v.to_string(), ts).with_header("trace", "t1"),
            Some(0),
        )
    };
    on("a", "x", 30)?;
    on("a", "on-time", 15)?; // session end 15 >= 30 - 5 - 10
    on("foobar", "late", 10)?; // 10 < 15: dropped
    let late = d.output::<String, String>("late");
    let raw = late.read_raw();
    assert_eq!(raw.len(), 1);
    let r = &raw[0];
    assert_eq!(r.key.as_deref(), Some(&b"foobar"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"late"[..]));
    assert_eq!(r.timestamp, 10);
    // murmur2("foobar") with 3 partitions is partition 0.
    assert_eq!(r.partition, Some(0));
    assert_eq!(
        r.headers,
        vec![
            ("trace".to_string(), Bytes::from("t1")),
            (
                "__freshet.late.reason".to_string(),
                Bytes::from("session closed: session end 10 < stream time 30 - grace 5 - gap 10")
            ),
        ]
    );
    let metrics = d.metrics(0).unwrap_or_default();
    assert_eq!((metrics.dropped_records, metrics.late_records), (1, 1));
    // The late topic is written by the aggregation's sub-topology, so the runtime creates it.
    assert!(d.produced_topic_names().contains("late"));
    Ok(())
}

#[test]
fn emit_final_is_throttled_by_the_wall_clock_and_flushed_at_commit() -> Result<()> {
    let windows = SessionWindows::of_inactivity_gap_with_no_grace(ms(10))?;
    let topology = topology(EmitStrategy::OnWindowClose, true, windows)?;
    let mut config = TaskConfig::new("session-test");
    config.windowed_emit_interval_ms = 1000;
    let mut h = TaskHarness::new(&topology, config, 5_000)?;
    // The first attempt (nothing closed yet) starts the interval at 5 000.
    h.process("a", "1", 0)?;
    h.process("b", "1", 20)?; // closes a's [0, 0], but within the interval: held back
    assert_eq!(h.outputs()?, vec![]);
    h.task.punctuate_wall_clock(6_000)?;
    h.process("c", "1", 40)?; // the interval passed: everything ending before 30
    assert_eq!(
        h.outputs()?,
        vec![out("a", 0, 0, Some(1), 0), out("b", 20, 20, Some(1), 20)]
    );
    h.process("d", "1", 55)?; // closes c's session, within the interval: held back
    assert_eq!(h.outputs()?, vec![]);
    // A commit flushes what the throttle held back.
    h.task.flush()?;
    assert_eq!(h.outputs()?, vec![out("c", 40, 40, Some(1), 40)]);
    h.task.punctuate_wall_clock(7_000)?;
    h.process("e", "1", 56)?; // nothing new closed: nothing twice
    assert_eq!(h.outputs()?, vec![]);
    Ok(())
}

#[test]
fn emit_final_resumes_from_the_committed_stream_time() -> Result<()> {
    let windows = SessionWindows::of_inactivity_gap_with_no_grace(ms(10))?;
    let topology = topology(EmitStrategy::OnWindowClose, true, windows)?;
    let mut h = TaskHarness::kafka(&topology)?;
    h.process("a", "1", 0)?;
    h.process("b", "1", 20)?;
    assert_eq!(h.outputs()?, vec![out("a", 0, 0, Some(1), 0)]);
    h.task.flush()?;
    let times = h.task.stream_times();
    assert_eq!(times.nodes.get("KSTREAM-AGGREGATE-0000000001"), Some(&20));

    // A new task (the store is empty: logging is off) restored to the committed time
    // emits nothing for close times already passed, and goes on from there.
    let mut restarted = TaskHarness::kafka(&topology)?;
    restarted.task.restore_stream_times(&times)?;
    restarted.process("c", "1", 5)?; // late at stream time 20: 5 < 20 - 10
    assert_eq!(restarted.outputs()?, vec![]);
    restarted.process("d", "1", 25)?;
    restarted.process("e", "1", 40)?; // closes d's session (25 < 30)
    assert_eq!(restarted.outputs()?, vec![out("d", 25, 25, Some(1), 25)]);
    assert_eq!(restarted.task.metrics().late_records, 1);
    Ok(())
}

#[test]
fn emit_final_orders_closed_sessions_by_end_then_start_then_key() -> Result<()> {
    let windows = SessionWindows::of_inactivity_gap_with_no_grace(ms(10))?;
    let d = TopologyTestDriver::new(topology(EmitStrategy::OnWindowClose, true, windows)?)?;
    pipe(&d, "b", "1", 1)?;
    pipe(&d, "a", "1", 3)?;
    pipe(&d, "z", "1", 2)?;
    pipe(&d, "a", "1", 5)?; // a: [3, 5]
    pipe(&d, "c", "1", 5)?;
    pipe(&d, "y", "1", 100)?; // closes everything
    assert_eq!(
        read_output(&d)?,
        vec![
            out("b", 1, 1, Some(1), 1),
            out("z", 2, 2, Some(1), 2),
            out("a", 3, 5, Some(2), 5),
            out("c", 5, 5, Some(1), 5),
        ]
    );
    Ok(())
}

#[test]
fn cached_updates_reach_downstream_in_flush_order() -> Result<()> {
    // With caching on (the default) every commit forwards the cache's updates in the order
    // of their latest change: a merged-away session's tombstone, then the merged session.
    // A suppression downstream also makes the aggregation send old values.
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(ms(10))?)
        .count()
        .suppress(freshet_streams::Suppressed::until_time_limit(
            Duration::ZERO,
            freshet_streams::BufferConfig::unbounded(),
        ))
        .to_stream()
        .map(|k, v| (format!("{}@{}/{}", k.key, k.window.start, k.window.end), *v))
        .to("out");
    let d = TopologyTestDriver::new(b.build()?)?;
    let input = d.input::<String, String>("in");
    input.pipe("a".into(), "x".into(), 0)?;
    input.pipe("a".into(), "x".into(), 0)?;
    input.pipe("a".into(), "x".into(), 4)?;
    let out = d.output::<String, Option<i64>>("out").read_key_values()?;
    assert_eq!(
        out,
        vec![
            ("a@0/0".into(), Some(1)),
            ("a@0/0".into(), Some(2)),
            ("a@0/0".into(), None),
            ("a@0/4".into(), Some(3)),
        ]
    );
    Ok(())
}

#[test]
fn a_session_ending_exactly_at_the_close_time_is_forwarded_through_the_cache() -> Result<()> {
    // Gap 10, no grace: at stream time 20 a record at 10 makes the session [10, 10], which
    // ends exactly at the close time (not late). The store's time is already 20, so it
    // treats the session as expired; Kafka's cache still forwards it, and so does freshet.
    let windows = SessionWindows::of_inactivity_gap_with_no_grace(ms(10))?;
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("input")
        .group_by_key()
        .windowed_by(windows)
        .count()
        .to_stream()
        .to("output");
    let d = TopologyTestDriver::new(builder.build()?)?;
    pipe(&d, "a", "1", 20)?;
    pipe(&d, "b", "1", 10)?;
    assert_eq!(
        read_output(&d)?,
        vec![out("a", 20, 20, Some(1), 20), out("b", 10, 10, Some(1), 10)]
    );
    assert_eq!(d.metrics(0).map(|m| m.late_records), Some(0));
    Ok(())
}
