//! The Processor API through the test driver: stores by name, punctuations (stream time and
//! wall-clock time), `forward_to`, record metadata, errors and the error policies.
//!
//! Punctuation tests port Kafka's `StreamTaskTest` schedules (a processor punctuating every
//! 10 ms, as `MockProcessorNode(10L)`), driven here by piped records and the mock wall clock:
//! - `shouldPunctuateOnceStreamTimeAfterGap` → [`stream_time_punctuates_once_after_a_gap`]
//!   (same timestamps, merged into one topic in Kafka's processing order; same punctuation
//!   times 20, 142, 155, 160)
//! - `shouldRespectPunctuateCancellationStreamTime` → [`cancelled_stream_time_punctuation`]
//! - `shouldPunctuateSystemTimeWhenIntervalElapsed`, `shouldNotPunctuateSystemTimeWhenInterval
//!   NotElapsed`, `shouldPunctuateOnceSystemTimeAfterGap`,
//!   `shouldRespectPunctuateCancellationSystemTime` → the `wall_clock_*` tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use freshet_streams::testing::{DriverConfig, TopologyTestDriver};
use freshet_streams::{
    BigEndian, Cancellable, Consumed, Error, ErrorPolicy, Processor, ProcessorContext,
    PunctuationType, Record, RecordMetadata, Result, Stores, StreamsBuilder, Utf8,
};

/// Locks a test's log (a panic elsewhere does not hide what was logged).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

/// Counts records per key in the store `counts` and forwards the count.
struct Counter;

impl Processor<String, String, String, i64> for Counter {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, i64>,
        r: Record<String, String>,
    ) -> Result<()> {
        let store = ctx.key_value_store::<String, i64>("counts")?;
        let count = store.get(&r.key)?.map_or(0, |(c, _)| c) + 1;
        store.put(&r.key, &count, r.timestamp)?;
        ctx.forward(r.with_value(count))
    }
}

#[test]
fn stores_are_reached_by_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value::<String, i64>("counts", Utf8, BigEndian));
    builder
        .stream::<String, String>("in")
        .process(|| Counter, &["counts"])
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, String>("in");
    input.pipe("a".into(), "x".into(), 1)?;
    input.pipe("b".into(), "x".into(), 2)?;
    input.pipe("a".into(), "x".into(), 3)?;
    assert_eq!(
        driver.output::<String, i64>("out").read_key_values()?,
        vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]
    );
    let store = driver.key_value_store::<String, i64>("counts")?;
    assert_eq!(store.get(&"a".to_string())?, Some((2, 3)));
    assert_eq!(store.all()?.len(), 2);
    Ok(())
}

#[test]
fn a_store_not_connected_to_the_processor_is_refused() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value::<String, i64>("counts", Utf8, BigEndian));
    builder.add_state_store(Stores::key_value::<String, i64>("other", Utf8, BigEndian));
    builder
        .stream::<String, String>("in")
        .process(|| Counter, &["other"])
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    match driver
        .input::<String, String>("in")
        .pipe("a".into(), "x".into(), 0)
    {
        Err(Error::UnknownStore { node, store }) => {
            assert_eq!(
                (node.as_str(), store.as_str()),
                ("KSTREAM-PROCESSOR-0000000001", "counts")
            );
        }
        other => panic!("expected UnknownStore, got {other:?}"),
    }
    Ok(())
}

/// Schedules a punctuation every 10 ms in `init` and logs when it fires (Kafka's
/// `MockProcessorNode(10L, type)`); `cancel_at` cancels it while processing that timestamp.
struct Punctuated {
    kind: PunctuationType,
    fired: Log<i64>,
    cancel_at: Option<i64>,
    handle: Option<Cancellable>,
}

impl Processor<String, String, String, String> for Punctuated {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>) -> Result<()> {
        let fired = self.fired.clone();
        self.handle =
            Some(
                ctx.schedule(Duration::from_millis(10), self.kind, move |ctx, now| {
                    // Punctuations run outside any record.
                    assert!(ctx.record_metadata().is_none());
                    lock(&fired).push(now);
                    Ok(())
                })?,
            );
        Ok(())
    }

    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, String, String>,
        r: Record<String, String>,
    ) -> Result<()> {
        if Some(r.timestamp) == self.cancel_at {
            if let Some(h) = &self.handle {
                h.cancel();
            }
        }
        Ok(())
    }
}

fn punctuated(
    kind: PunctuationType,
    cancel_at: Option<i64>,
    config: DriverConfig,
) -> Result<(TopologyTestDriver, Log<i64>)> {
    let fired = log();
    let f = fired.clone();
    let builder = StreamsBuilder::new();
    builder.stream::<String, String>("in").process(
        move || Punctuated {
            kind,
            fired: f.clone(),
            cancel_at,
            handle: None,
        },
        &[],
    );
    Ok((
        TopologyTestDriver::with_config(builder.build()?, config)?,
        fired,
    ))
}

#[test]
fn stream_time_punctuates_once_after_a_gap() -> Result<()> {
    let (driver, fired) = punctuated(PunctuationType::StreamTime, None, DriverConfig::default())?;
    let input = driver.input::<String, String>("in");
    // Nothing before the first record: stream time is unknown.
    assert!(lock(&fired).is_empty());
    // Kafka's two partitions, in the order the task processes them.
    for (ts, fires) in [
        (20, true), // aligned to 0: fires at the first record, with the stream time
        (25, false),
        (142, true), // after a gap, once
        (145, false),
        (155, true),
        (159, false),
        (160, true),
        (161, false),
    ] {
        let before = lock(&fired).len();
        input.pipe("k".into(), "v".into(), ts)?;
        assert_eq!(lock(&fired).len(), before + usize::from(fires), "at {ts}");
    }
    assert_eq!(*lock(&fired), vec![20, 142, 155, 160]);
    Ok(())
}

#[test]
fn stream_time_never_goes_back_for_punctuations() -> Result<()> {
    let (driver, fired) = punctuated(PunctuationType::StreamTime, None, DriverConfig::default())?;
    let input = driver.input::<String, String>("in");
    for ts in [35, 5, 12, 39, 40, 3] {
        input.pipe("k".into(), "v".into(), ts)?;
    }
    assert_eq!(*lock(&fired), vec![35, 40]);
    Ok(())
}

#[test]
fn cancelled_stream_time_punctuation() -> Result<()> {
    let (driver, fired) = punctuated(
        PunctuationType::StreamTime,
        Some(30),
        DriverConfig::default(),
    )?;
    let input = driver.input::<String, String>("in");
    for ts in [20, 25, 30, 35, 40, 45] {
        input.pipe("k".into(), "v".into(), ts)?;
    }
    assert_eq!(*lock(&fired), vec![20]);
    Ok(())
}

fn wall_clock(start: i64) -> DriverConfig {
    DriverConfig {
        wall_clock_start: start,
        ..Default::default()
    }
}

#[test]
fn wall_clock_punctuates_when_the_interval_elapsed() -> Result<()> {
    let now = 1_000;
    let (driver, fired) = punctuated(PunctuationType::WallClockTime, None, wall_clock(now))?;
    for ms in [10, 10, 9, 1, 20] {
        driver.advance_wall_clock(Duration::from_millis(ms))?;
    }
    assert_eq!(*lock(&fired), vec![now + 10, now + 20, now + 30, now + 50]);
    Ok(())
}

#[test]
fn wall_clock_does_not_punctuate_before_the_interval() -> Result<()> {
    let (driver, fired) = punctuated(PunctuationType::WallClockTime, None, wall_clock(1_000))?;
    driver.advance_wall_clock(Duration::from_millis(9))?;
    // Records do not drive wall-clock punctuations.
    driver
        .input::<String, String>("in")
        .pipe("k".into(), "v".into(), 50_000)?;
    assert!(lock(&fired).is_empty());
    Ok(())
}

#[test]
fn wall_clock_punctuates_once_after_a_gap() -> Result<()> {
    let now = 1_000;
    let (driver, fired) = punctuated(PunctuationType::WallClockTime, None, wall_clock(now))?;
    for ms in [100, 10, 12, 7, 1, 105, 5] {
        driver.advance_wall_clock(Duration::from_millis(ms))?;
    }
    assert_eq!(
        *lock(&fired),
        vec![
            now + 100,
            now + 110,
            now + 122,
            now + 130,
            now + 235,
            now + 240
        ]
    );
    Ok(())
}

#[test]
fn cancelled_wall_clock_punctuation() -> Result<()> {
    let now = 1_000;
    let fired = log();
    let handle: Arc<Mutex<Option<Cancellable>>> = Arc::new(Mutex::new(None));
    struct Keep(Log<i64>, Arc<Mutex<Option<Cancellable>>>);
    impl Processor<String, String, String, String> for Keep {
        fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>) -> Result<()> {
            let fired = self.0.clone();
            let c = ctx.schedule(
                Duration::from_millis(10),
                PunctuationType::WallClockTime,
                move |_, now| {
                    lock(&fired).push(now);
                    Ok(())
                },
            )?;
            *lock(&self.1) = Some(c);
            Ok(())
        }
        fn process(
            &mut self,
            _ctx: &mut ProcessorContext<'_, '_, String, String>,
            _r: Record<String, String>,
        ) -> Result<()> {
            Ok(())
        }
    }
    let builder = StreamsBuilder::new();
    let (f, h) = (fired.clone(), handle.clone());
    builder
        .stream::<String, String>("in")
        .process(move || Keep(f.clone(), h.clone()), &[]);
    let driver = TopologyTestDriver::with_config(builder.build()?, wall_clock(now))?;
    driver.advance_wall_clock(Duration::from_millis(10))?;
    let c = lock(&handle).clone().unwrap();
    c.cancel();
    assert!(c.is_cancelled());
    driver.advance_wall_clock(Duration::from_millis(10))?;
    assert_eq!(*lock(&fired), vec![now + 10]);
    Ok(())
}

#[test]
fn a_punctuation_interval_under_one_millisecond_is_refused() -> Result<()> {
    struct Zero;
    impl Processor<String, String, String, String> for Zero {
        fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>) -> Result<()> {
            ctx.schedule(Duration::ZERO, PunctuationType::StreamTime, |_, _| Ok(()))?;
            Ok(())
        }
        fn process(
            &mut self,
            _ctx: &mut ProcessorContext<'_, '_, String, String>,
            _r: Record<String, String>,
        ) -> Result<()> {
            Ok(())
        }
    }
    let builder = StreamsBuilder::new();
    builder.stream::<String, String>("in").process(|| Zero, &[]);
    match TopologyTestDriver::new(builder.build()?) {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("interval"), "{msg}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    Ok(())
}

/// Punctuations may forward: what they forward goes downstream like records do.
#[test]
fn punctuators_forward_with_the_current_stream_time() -> Result<()> {
    struct Emit;
    impl Processor<String, String, String, String> for Emit {
        fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>) -> Result<()> {
            ctx.schedule(
                Duration::from_millis(100),
                PunctuationType::StreamTime,
                |ctx, now| {
                    let st = ctx.current_stream_time_ms();
                    ctx.forward(Record::new("tick".into(), format!("{now}/{st}"), now))
                },
            )?;
            Ok(())
        }
        fn process(
            &mut self,
            _ctx: &mut ProcessorContext<'_, '_, String, String>,
            _r: Record<String, String>,
        ) -> Result<()> {
            Ok(())
        }
    }
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .process(|| Emit, &[])
        .to("ticks");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, String>("in");
    for ts in [7, 99, 250] {
        input.pipe("k".into(), "v".into(), ts)?;
    }
    assert_eq!(
        driver.output::<String, String>("ticks").read_values()?,
        vec!["7/7", "250/250"]
    );
    Ok(())
}

/// Routes even lengths to the child `even`, others to `odd` (Kafka's `forward(record,
/// childName)`).
struct Router;

impl Processor<String, String, String, String> for Router {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, String>,
        r: Record<String, String>,
    ) -> Result<()> {
        let child = if r.value.len() % 2 == 0 {
            "even"
        } else {
            "odd"
        };
        ctx.forward_to(child, r)
    }
}

#[test]
fn forward_to_reaches_one_named_child() -> Result<()> {
    let builder = StreamsBuilder::new();
    let routed = builder
        .stream::<String, String>("in")
        .process(|| Router, &[]);
    routed.map_values(|v| v.clone()).named("even").to("evens");
    routed.map_values(|v| v.clone()).named("odd").to("odds");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, String>("in");
    for v in ["ab", "abc", "abcd"] {
        input.pipe("k".into(), v.into(), 0)?;
    }
    assert_eq!(
        driver.output::<String, String>("evens").read_values()?,
        vec!["ab", "abcd"]
    );
    assert_eq!(
        driver.output::<String, String>("odds").read_values()?,
        vec!["abc"]
    );
    Ok(())
}

#[test]
fn forward_to_an_unknown_child_fails() -> Result<()> {
    let builder = StreamsBuilder::new();
    let routed = builder
        .stream::<String, String>("in")
        .process(|| Router, &[]);
    routed.map_values(|v| v.clone()).named("even").to("evens");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    match driver
        .input::<String, String>("in")
        .pipe("k".into(), "abc".into(), 0)
    {
        Err(Error::UnknownChild { node, child }) => {
            assert_eq!(
                (node.as_str(), child.as_str()),
                ("KSTREAM-PROCESSOR-0000000001", "odd")
            );
        }
        other => panic!("expected UnknownChild, got {other:?}"),
    }
    Ok(())
}

/// Logs the record metadata, the times and the task it runs in.
struct Meta(Log<(Option<RecordMetadata>, i64, i64, String, String)>);

impl Processor<String, String, String, String> for Meta {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, String>,
        _r: Record<String, String>,
    ) -> Result<()> {
        lock(&self.0).push((
            ctx.record_metadata().cloned(),
            ctx.current_stream_time_ms(),
            ctx.current_system_time_ms(),
            ctx.task_id().to_string(),
            ctx.node_name().to_string(),
        ));
        Ok(())
    }
}

#[test]
fn record_metadata_times_and_names() -> Result<()> {
    let seen = log();
    let s = seen.clone();
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .process(move || Meta(s.clone()), &[])
        .named("meta");
    let driver = TopologyTestDriver::with_config(builder.build()?, wall_clock(500))?;
    let input = driver.input::<String, String>("in");
    input.pipe("k".into(), "v".into(), 10)?;
    driver.advance_wall_clock(Duration::from_millis(5))?;
    input.pipe("k".into(), "v".into(), 4)?;
    let meta = |offset| {
        Some(RecordMetadata {
            topic: "in".into(),
            partition: 0,
            offset,
        })
    };
    assert_eq!(
        *lock(&seen),
        vec![
            (meta(0), 10, 500, "0_0".to_string(), "meta".to_string()),
            (meta(1), 10, 505, "0_0".to_string(), "meta".to_string()),
        ]
    );
    Ok(())
}

/// Fails on the value `boom`, in processing or (for `tick`) in a punctuation.
struct Failing;

impl Processor<String, String, String, String> for Failing {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, '_, String, String>) -> Result<()> {
        ctx.schedule(
            Duration::from_millis(1000),
            PunctuationType::WallClockTime,
            |_, _| Err(Error::processing("punctuation failed")),
        )?;
        Ok(())
    }
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, String>,
        r: Record<String, String>,
    ) -> Result<()> {
        if r.value == "boom" {
            return Err(Error::processing("bad value"));
        }
        ctx.forward(r)
    }
}

#[test]
fn processor_errors_carry_the_node_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .process(|| Failing, &[])
        .named("checker")
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    match driver
        .input::<String, String>("in")
        .pipe("k".into(), "boom".into(), 0)
    {
        Err(Error::Processing { node, message }) => {
            assert_eq!((node.as_str(), message.as_str()), ("checker", "bad value"));
        }
        other => panic!("expected a processing error, got {other:?}"),
    }
    match driver.advance_wall_clock(Duration::from_secs(1)) {
        Err(Error::Processing { node, message }) => {
            assert_eq!(
                (node.as_str(), message.as_str()),
                ("checker", "punctuation failed")
            );
        }
        other => panic!("expected a punctuation error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn process_values_errors_carry_the_node_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .process_values(|| Failing, &[])
        .named("values-checker")
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    match driver
        .input::<String, String>("in")
        .pipe("k".into(), "boom".into(), 0)
    {
        Err(Error::Processing { node, .. }) => assert_eq!(node, "values-checker"),
        other => panic!("expected a processing error, got {other:?}"),
    }
    Ok(())
}

fn int_values(policy: ErrorPolicy, processing: ErrorPolicy) -> Result<TopologyTestDriver> {
    let builder = StreamsBuilder::new();
    builder
        .stream_with::<String, i32>(&["in"], Consumed::with(Utf8, BigEndian))
        .process(|| Doubler, &[])
        .to("out");
    TopologyTestDriver::with_config(
        builder.build()?,
        DriverConfig {
            deserialization: policy,
            processing,
            ..Default::default()
        },
    )
}

/// Doubles the value; fails on 13.
struct Doubler;

impl Processor<String, i32, String, i32> for Doubler {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, i32>,
        r: Record<String, i32>,
    ) -> Result<()> {
        if r.value == 13 {
            return Err(Error::processing("unlucky"));
        }
        let v = r.value * 2;
        ctx.forward(r.with_value(v))
    }
}

fn pipe_bad(driver: &TopologyTestDriver, timestamp: i64) -> Result<()> {
    driver.pipe_raw(
        "in",
        None,
        Some(Bytes::from_static(b"key")),
        Some(Bytes::from_static(b"not-4-bytes")),
        timestamp,
        vec![("origin".to_string(), Bytes::from_static(b"test"))],
    )
}

#[test]
fn undecodable_records_fail_by_default() -> Result<()> {
    let driver = int_values(ErrorPolicy::Fail, ErrorPolicy::Fail)?;
    match pipe_bad(&driver, 0) {
        Err(Error::Deserialization {
            topic,
            partition,
            offset,
            ..
        }) => assert_eq!((topic.as_str(), partition, offset), ("in", 0, 0)),
        other => panic!("expected a deserialization error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn log_and_continue_skips_undecodable_records_and_negative_timestamps() -> Result<()> {
    let driver = int_values(ErrorPolicy::LogAndContinue, ErrorPolicy::Fail)?;
    let input = driver.input::<String, i32>("in");
    input.pipe("a".into(), 1, 0)?;
    pipe_bad(&driver, 1)?;
    input.pipe("b".into(), 2, -5)?;
    input.pipe("c".into(), 3, 2)?;
    assert_eq!(
        driver.output::<String, i32>("out").read_key_values()?,
        vec![("a".into(), 2), ("c".into(), 6)]
    );
    let m = driver.metrics(0).unwrap();
    assert_eq!((m.records_in, m.dropped_records), (2, 2));
    Ok(())
}

#[test]
fn negative_timestamps_fail_by_default() -> Result<()> {
    let driver = int_values(ErrorPolicy::Fail, ErrorPolicy::Fail)?;
    match driver.input::<String, i32>("in").pipe("a".into(), 1, -1) {
        Err(Error::Deserialization { reason, .. }) => {
            assert!(reason.contains("negative"), "{reason}")
        }
        other => panic!("expected an invalid timestamp error, got {other:?}"),
    }
    Ok(())
}

fn header<'a>(headers: &'a [(String, Bytes)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

#[test]
fn dead_letter_gets_undecodable_records_with_error_headers() -> Result<()> {
    let driver = int_values(ErrorPolicy::DeadLetter("dlq".into()), ErrorPolicy::Fail)?;
    let input = driver.input::<String, i32>("in");
    input.pipe("a".into(), 1, 0)?;
    pipe_bad(&driver, 7)?;
    input.pipe("b".into(), 2, -3)?;
    input.pipe("c".into(), 3, 9)?;
    assert_eq!(
        driver.output::<String, i32>("out").read_values()?,
        vec![2, 6]
    );
    let dlq = driver.output::<String, i32>("dlq").read_raw();
    assert_eq!(dlq.len(), 2);
    // The raw source record, its headers kept, plus the error's.
    let bad = &dlq[0];
    assert_eq!(bad.key.as_deref(), Some(&b"key"[..]));
    assert_eq!(bad.value.as_deref(), Some(&b"not-4-bytes"[..]));
    assert_eq!(bad.timestamp, 7);
    assert_eq!(header(&bad.headers, "origin"), Some("test"));
    assert_eq!(
        header(&bad.headers, "__streams.errors.exception"),
        Some("DeserializationError")
    );
    assert!(header(&bad.headers, "__streams.errors.message").is_some_and(|m| m.contains("in-0")));
    assert!(header(&bad.headers, "__streams.errors.stacktrace").is_some());
    assert_eq!(header(&bad.headers, "__streams.errors.topic"), Some("in"));
    assert_eq!(
        header(&bad.headers, "__streams.errors.partition"),
        Some("0")
    );
    assert_eq!(header(&bad.headers, "__streams.errors.offset"), Some("1"));
    // The record with a negative timestamp.
    assert_eq!(dlq[1].timestamp, -3);
    assert_eq!(
        header(&dlq[1].headers, "__streams.errors.offset"),
        Some("2")
    );
    let m = driver.metrics(0).unwrap();
    assert_eq!((m.dead_lettered, m.dropped_records), (2, 2));
    Ok(())
}

#[test]
fn processing_errors_follow_the_processing_policy() -> Result<()> {
    let driver = int_values(ErrorPolicy::Fail, ErrorPolicy::LogAndContinue)?;
    let input = driver.input::<String, i32>("in");
    for v in [1, 13, 2] {
        input.pipe("k".into(), v, 0)?;
    }
    assert_eq!(
        driver.output::<String, i32>("out").read_values()?,
        vec![2, 4]
    );
    assert_eq!(driver.metrics(0).unwrap().dropped_records, 1);
    Ok(())
}

#[test]
fn processing_errors_to_the_dead_letter_topic_carry_the_source_record() -> Result<()> {
    let driver = int_values(ErrorPolicy::Fail, ErrorPolicy::DeadLetter("dlq".into()))?;
    let input = driver.input::<String, i32>("in");
    input.pipe("a".into(), 1, 4)?;
    input.pipe_record(
        Record::new("b".to_string(), 13, 5).with_header("h", "x"),
        None,
    )?;
    input.pipe("c".into(), 2, 6)?;
    assert_eq!(
        driver.output::<String, i32>("out").read_values()?,
        vec![2, 4]
    );
    let dlq = driver.output::<String, i32>("dlq").read_records()?;
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        (dlq[0].key.as_str(), dlq[0].value, dlq[0].timestamp),
        ("b", 13, 5)
    );
    let headers = &dlq[0].headers;
    assert_eq!(header(headers, "h"), Some("x"));
    assert_eq!(
        header(headers, "__streams.errors.exception"),
        Some("ProcessingError")
    );
    assert_eq!(
        header(headers, "__streams.errors.message"),
        Some("processing failed in KSTREAM-PROCESSOR-0000000001: unlucky")
    );
    assert_eq!(header(headers, "__streams.errors.topic"), Some("in"));
    assert_eq!(header(headers, "__streams.errors.offset"), Some("1"));
    Ok(())
}
