//! Every stateless `KStream` operator through the test driver.
//!
//! Ported from Kafka (same inputs, same expected records; Kafka's `MockApiProcessorSupplier`
//! is the `capture` processor here):
//! - `KStreamFilterTest`: `testFilter`, `testFilterNot` (`testTypeVariance` not ported: Java
//!   generics).
//! - `KStreamMapTest.testMap` (`testKeyValueMapperResultNotNull` not ported: a Rust mapper
//!   cannot return null; `testTypeVariance`: Java generics).
//! - `KStreamMapValuesTest`: `testFlatMapValues` (sic, it tests `mapValues`),
//!   `testMapValuesWithKeys`.
//! - `KStreamFlatMapTest.testFlatMap` (`testKeyValueMapperResultNotNull` not ported: no null).
//! - `KStreamFlatMapValuesTest`: `testFlatMapValues`; `testFlatMapValuesWithKeys` is ported
//!   with `flat_map` keeping the key, as there is no `flat_map_values` with the key here.
//! - `KStreamSelectKeyTest.testSelectKey` (`testTypeVariance`: Java generics).
//! - `KStreamPeekTest.shouldObserveStreamElements` (`shouldNotAllowNullAction`: no null).
//! - `KStreamForeachTest.testForeach` (`testTypeVariance`: Java generics).
//!
//! The rest checks what Kafka's operators guarantee: timestamps and headers travel, `merge`
//! interleaves in processing order, sinks pick partitions with murmur2 of the key bytes or
//! the `Produced` partitioner, dynamic sinks, `repartition` (partition count and
//! partitioner), `process` / `process_values`, and `group_by` looping through its
//! repartition topic.

use std::sync::{Arc, Mutex};

use freshet_streams::testing::{DriverConfig, TopologyTestDriver};
use freshet_streams::{
    partition_for_key, BigEndian, Consumed, Grouped, Processor, ProcessorContext, Produced, Record,
    Repartitioned, Result, Serde, StreamsBuilder, Utf8,
};

/// Locks a test's log (a panic elsewhere does not hide what was logged).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Seen<K, V> = Arc<Mutex<Vec<(K, V, i64)>>>;

/// Records what reaches it (Kafka's `MockApiProcessorSupplier`); forwards nothing.
struct Capture<K, V>(Seen<K, V>);

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Processor<K, V, K, V> for Capture<K, V> {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, '_, K, V>,
        r: Record<K, V>,
    ) -> Result<()> {
        lock(&self.0).push((r.key.clone(), r.value.clone(), r.timestamp));
        Ok(())
    }
}

fn seen<K, V>() -> Seen<K, V> {
    Arc::new(Mutex::new(Vec::new()))
}

fn capture<K: Clone + Send + 'static, V: Clone + Send + 'static>(
    seen: &Seen<K, V>,
) -> impl Fn() -> Capture<K, V> + Send + Sync + 'static {
    let seen = seen.clone();
    move || Capture(seen.clone())
}

fn int_string<'b>(
    builder: &'b StreamsBuilder,
    topic: &str,
) -> freshet_streams::KStream<'b, i32, String> {
    builder.stream_with(&[topic], Consumed::with(BigEndian, Utf8))
}

#[test]
fn filter() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<i32, String>();
    int_string(&builder, "topic")
        .filter(|k, _| k % 3 == 0)
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    for k in 1..=7 {
        input.pipe(k, format!("V{k}"), 0)?;
    }
    assert_eq!(lock(&out).len(), 2);
    Ok(())
}

#[test]
fn filter_not() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<i32, String>();
    int_string(&builder, "topic")
        .filter_not(|k, _| k % 3 == 0)
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    for k in 1..=7 {
        input.pipe(k, format!("V{k}"), 0)?;
    }
    assert_eq!(lock(&out).len(), 5);
    Ok(())
}

#[test]
fn map() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<String, i32>();
    int_string(&builder, "topic")
        .map(|k, v| (v.clone(), *k))
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    for k in 0..4 {
        input.pipe(k, format!("V{k}"), 10 - i64::from(k))?;
    }
    assert_eq!(
        *lock(&out),
        vec![
            ("V0".to_string(), 0, 10),
            ("V1".to_string(), 1, 9),
            ("V2".to_string(), 2, 8),
            ("V3".to_string(), 3, 7),
        ]
    );
    Ok(())
}

#[test]
fn map_values() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<i32, i32>();
    int_string(&builder, "topic")
        .map_values(|v| v.len() as i32)
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    for k in [1, 10, 100, 1000] {
        input.pipe(k, k.to_string(), i64::from(k) / 2)?;
    }
    assert_eq!(
        *lock(&out),
        vec![(1, 1, 0), (10, 2, 5), (100, 3, 50), (1000, 4, 500)]
    );
    Ok(())
}

#[test]
fn map_values_with_key() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<i32, i32>();
    int_string(&builder, "topic")
        .map_values_with_key(|k, v| v.len() as i32 + k)
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    for k in [1, 10, 100, 1000] {
        input.pipe(k, k.to_string(), i64::from(k) / 2)?;
    }
    assert_eq!(
        *lock(&out),
        vec![(1, 2, 0), (10, 12, 5), (100, 103, 50), (1000, 1004, 500)]
    );
    Ok(())
}

#[test]
fn flat_map() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<String, String>();
    int_string(&builder, "topic")
        .flat_map(|k, v| {
            (0..*k)
                .map(|i| ((k * 10 + i).to_string(), v.clone()))
                .collect::<Vec<_>>()
        })
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    for k in 0..4 {
        input.pipe(k, format!("V{k}"), 0)?;
    }
    let expected: Vec<(String, String, i64)> = [
        ("10", "V1"),
        ("20", "V2"),
        ("21", "V2"),
        ("30", "V3"),
        ("31", "V3"),
        ("32", "V3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string(), 0))
    .collect();
    assert_eq!(*lock(&out), expected);
    Ok(())
}

#[test]
fn flat_map_values() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<i32, String>();
    builder
        .stream_with::<i32, i32>(&["topic"], Consumed::with(BigEndian, BigEndian))
        .flat_map_values(|v| vec![format!("v{v}"), format!("V{v}")])
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, i32>("topic");
    for k in 0..4 {
        input.pipe(k, k, 0)?;
    }
    let expected: Vec<(i32, String, i64)> = (0..4)
        .flat_map(|k| [(k, format!("v{k}"), 0), (k, format!("V{k}"), 0)])
        .collect();
    assert_eq!(*lock(&out), expected);
    Ok(())
}

/// Kafka's `testFlatMapValuesWithKeys`, with `flat_map` keeping the key.
#[test]
fn flat_map_values_with_keys() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<i32, String>();
    builder
        .stream_with::<i32, i32>(&["topic"], Consumed::with(BigEndian, BigEndian))
        .flat_map(|k, v| vec![(*k, format!("v{v}")), (*k, format!("k{k}"))])
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, i32>("topic");
    for k in 0..4 {
        input.pipe(k, k, 0)?;
    }
    let expected: Vec<(i32, String, i64)> = (0..4)
        .flat_map(|k| [(k, format!("v{k}"), 0), (k, format!("k{k}"), 0)])
        .collect();
    assert_eq!(*lock(&out), expected);
    Ok(())
}

#[test]
fn select_key() -> Result<()> {
    let builder = StreamsBuilder::new();
    let out = seen::<String, i32>();
    builder
        .stream_with::<Option<String>, i32>(
            &["topic_key_select"],
            Consumed::with(freshet_streams::Nullable(Utf8), BigEndian),
        )
        .select_key(|_, v| match v {
            1 => "ONE".to_string(),
            2 => "TWO".to_string(),
            _ => "THREE".to_string(),
        })
        .process(capture(&out), &[]);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<Option<String>, i32>("topic_key_select");
    for v in [1, 2, 3] {
        input.pipe(None, v, 0)?;
    }
    assert_eq!(
        *lock(&out),
        vec![
            ("ONE".to_string(), 1, 0),
            ("TWO".to_string(), 2, 0),
            ("THREE".to_string(), 3, 0)
        ]
    );
    Ok(())
}

#[test]
fn peek_observes_stream_elements() -> Result<()> {
    let builder = StreamsBuilder::new();
    let peeked = Arc::new(Mutex::new(Vec::new()));
    let streamed = Arc::new(Mutex::new(Vec::new()));
    let (p, s) = (peeked.clone(), streamed.clone());
    int_string(&builder, "topic")
        .peek(move |k, v| lock(&p).push((*k, v.clone())))
        .for_each(move |k, v| lock(&s).push((*k, v.clone())));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    let mut expected = Vec::new();
    for k in 0..32 {
        input.pipe(k, format!("V{k}"), 0)?;
        expected.push((k, format!("V{k}")));
    }
    assert_eq!(*lock(&peeked), expected);
    assert_eq!(*lock(&streamed), expected);
    Ok(())
}

#[test]
fn for_each() -> Result<()> {
    let builder = StreamsBuilder::new();
    let actual = Arc::new(Mutex::new(Vec::new()));
    let a = actual.clone();
    int_string(&builder, "topic").for_each(move |k, v| lock(&a).push((k * 2, v.to_uppercase())));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("topic");
    for (k, v) in [(0, "zero"), (1, "one"), (2, "two"), (3, "three")] {
        input.pipe(k, v.to_string(), 0)?;
    }
    assert_eq!(
        *lock(&actual),
        vec![
            (0, "ZERO".to_string()),
            (2, "ONE".to_string()),
            (4, "TWO".to_string()),
            (6, "THREE".to_string())
        ]
    );
    Ok(())
}

#[test]
fn merge_interleaves_in_processing_order() -> Result<()> {
    let builder = StreamsBuilder::new();
    let a = int_string(&builder, "a");
    let b = int_string(&builder, "b").map_values(|v| v.to_lowercase());
    a.merge(&b).to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver.input::<i32, String>("a").pipe(1, "A1".into(), 5)?;
    driver.input::<i32, String>("b").pipe(2, "B2".into(), 3)?;
    driver.input::<i32, String>("a").pipe(3, "A3".into(), 7)?;
    let out = driver.output::<i32, String>("out").read_records()?;
    let got: Vec<(i32, &str, i64)> = out
        .iter()
        .map(|r| (r.key, r.value.as_str(), r.timestamp))
        .collect();
    assert_eq!(got, vec![(1, "A1", 5), (2, "b2", 3), (3, "A3", 7)]);
    Ok(())
}

#[test]
fn timestamps_and_headers_travel_through_every_operator() -> Result<()> {
    let builder = StreamsBuilder::new();
    int_string(&builder, "in")
        .filter(|_, _| true)
        .filter_not(|_, _| false)
        .map(|k, v| (*k, v.clone()))
        .map_values(|v| v.clone())
        .map_values_with_key(|_, v| v.clone())
        .flat_map(|k, v| vec![(*k, v.clone())])
        .flat_map_values(|v| vec![v.clone()])
        .select_key(|k, _| *k)
        .peek(|_, _| {})
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let record = Record::new(7, "v".to_string(), 1234)
        .with_header("trace", "abc")
        .with_header("trace", "def");
    driver
        .input::<i32, String>("in")
        .pipe_record(record.clone(), None)?;
    let out = driver.output::<i32, String>("out").read_records()?;
    assert_eq!(out, vec![record]);
    Ok(())
}

#[test]
fn to_uses_the_carried_serdes_and_writes_key_value_and_timestamp() -> Result<()> {
    let builder = StreamsBuilder::new();
    int_string(&builder, "in").to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<i32, String>("in")
        .pipe(5, "five".into(), 99)?;
    let raw = driver.output::<i32, String>("out").read_raw();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].key.as_deref(), Some(&5i32.to_be_bytes()[..]));
    assert_eq!(raw[0].value.as_deref(), Some(&b"five"[..]));
    assert_eq!(raw[0].timestamp, 99);
    Ok(())
}

#[test]
fn to_picks_the_partition_by_murmur2_of_the_key_bytes() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.stream::<String, String>("in").to("out");
    let driver = TopologyTestDriver::with_config(
        builder.build()?,
        DriverConfig {
            partitions: 4,
            ..Default::default()
        },
    )?;
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for k in keys {
        driver
            .input::<String, String>("in")
            .pipe(k.into(), "v".into(), 0)?;
    }
    let raw = driver.output::<String, String>("out").read_raw();
    assert_eq!(raw.len(), keys.len());
    for r in &raw {
        let key = r.key.clone().unwrap();
        assert_eq!(r.partition, Some(partition_for_key(&key, 4)), "{key:?}");
    }
    // The keys do not all land on one partition.
    let mut partitions: Vec<_> = raw.iter().map(|r| r.partition).collect();
    partitions.dedup();
    assert!(partitions.len() > 1);
    Ok(())
}

#[test]
fn to_with_serdes_name_and_partitioner() -> Result<()> {
    let builder = StreamsBuilder::new();
    int_string(&builder, "in").to_with(
        "out",
        Produced::with(BigEndian, Utf8)
            .with_name("my-sink")
            .with_partitioner(|_topic: &str, k: &i32, _v: &String, n: u32| {
                Some(k.unsigned_abs() % n)
            }),
    );
    let topology = builder.build()?;
    assert!(topology
        .describe()
        .to_string()
        .contains("Sink: my-sink (topic: out)"));
    let driver = TopologyTestDriver::with_config(
        topology,
        DriverConfig {
            partitions: 4,
            ..Default::default()
        },
    )?;
    for k in 0..6 {
        driver.input::<i32, String>("in").pipe(k, "v".into(), 0)?;
    }
    let parts: Vec<Option<u32>> = driver
        .output::<i32, String>("out")
        .read_raw()
        .iter()
        .map(|r| r.partition)
        .collect();
    // Each input partition's task writes in its own order; compare as a multiset.
    let mut parts = parts;
    parts.sort();
    assert_eq!(
        parts,
        vec![Some(0), Some(0), Some(1), Some(1), Some(2), Some(3)]
    );
    Ok(())
}

#[test]
fn a_partitioner_returning_none_falls_back_to_murmur2() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.stream::<String, String>("in").to_with(
        "out",
        Produced::default().with_partitioner(|_: &str, _: &String, _: &String, _: u32| None),
    );
    let driver = TopologyTestDriver::with_config(
        builder.build()?,
        DriverConfig {
            partitions: 3,
            ..Default::default()
        },
    )?;
    driver
        .input::<String, String>("in")
        .pipe("key".into(), "v".into(), 0)?;
    let raw = driver.output::<String, String>("out").read_raw();
    assert_eq!(raw[0].partition, Some(partition_for_key(b"key", 3)));
    Ok(())
}

#[test]
fn to_dynamic_chooses_the_topic_per_record() -> Result<()> {
    let builder = StreamsBuilder::new();
    int_string(&builder, "in").to_dynamic(
        |r| {
            if r.key % 2 == 0 {
                "even".to_string()
            } else {
                "odd".to_string()
            }
        },
        Produced::default(),
    );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<i32, String>("in");
    for k in 0..5 {
        input.pipe(k, format!("V{k}"), i64::from(k))?;
    }
    assert_eq!(
        driver.output::<i32, String>("even").read_values()?,
        vec!["V0", "V2", "V4"]
    );
    assert_eq!(
        driver.output::<i32, String>("odd").read_values()?,
        vec!["V1", "V3"]
    );
    Ok(())
}

/// Records the partition and topic each record was read from.
struct Origin(Arc<Mutex<Vec<(String, u32, String)>>>);

impl Processor<String, String, String, String> for Origin {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, String>,
        r: Record<String, String>,
    ) -> Result<()> {
        let meta = ctx.record_metadata().cloned();
        if let Some(m) = meta {
            lock(&self.0).push((r.key.clone(), m.partition, m.topic));
        }
        ctx.forward(r)
    }
}

#[test]
fn repartition_routes_by_murmur2_of_the_new_key() -> Result<()> {
    let builder = StreamsBuilder::new();
    let origins = Arc::new(Mutex::new(Vec::new()));
    let o = origins.clone();
    builder
        .stream::<String, String>("in")
        .select_key(|_, v| v.clone())
        .repartition()
        .process(move || Origin(o.clone()), &[])
        .to("out");
    let topology = builder.build()?;
    assert_eq!(
        topology.internal_topics()[0].name.shown(),
        "KSTREAM-REPARTITION-0000000002-repartition"
    );
    assert_eq!(topology.subtopologies().len(), 2);
    let driver = TopologyTestDriver::with_config(
        topology,
        DriverConfig {
            partitions: 4,
            ..Default::default()
        },
    )?;
    let values = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
    for (i, v) in values.iter().enumerate() {
        // All piped to partition 0: the repartition moves them.
        driver.input::<String, String>("in").pipe_record(
            Record::new(format!("k{i}"), v.to_string(), i as i64),
            Some(0),
        )?;
    }
    let seen = lock(&origins).clone();
    assert_eq!(seen.len(), values.len());
    for (key, partition, topic) in &seen {
        assert_eq!(
            *partition,
            partition_for_key(key.as_bytes(), 4),
            "{key} read from {topic}"
        );
        assert_eq!(
            topic,
            "test-driver-app-KSTREAM-REPARTITION-0000000002-repartition"
        );
    }
    assert_eq!(
        driver.output::<String, String>("out").read_values()?.len(),
        6
    );
    Ok(())
}

#[test]
fn repartition_with_name_partitions_and_partitioner() -> Result<()> {
    let builder = StreamsBuilder::new();
    let origins = Arc::new(Mutex::new(Vec::new()));
    let o = origins.clone();
    builder
        .stream::<String, String>("in")
        .repartition_with(
            Repartitioned::named("by-len")
                .with_number_of_partitions(2)
                .with_partitioner(|_: &str, _: &String, v: &String, n: u32| {
                    Some(v.len() as u32 % n)
                }),
        )
        .process(move || Origin(o.clone()), &[])
        .to("out");
    let topology = builder.build()?;
    let t = &topology.internal_topics()[0];
    assert_eq!(t.name.shown(), "by-len-repartition");
    assert_eq!(t.partitions, freshet_streams::PartitionCount::Fixed(2));
    let text = topology.describe().to_string();
    for node in [
        "by-len-repartition-filter",
        "by-len-repartition-sink",
        "by-len-repartition-source",
    ] {
        assert!(text.contains(node), "{node} in {text}");
    }
    let driver = TopologyTestDriver::with_config(
        topology,
        DriverConfig {
            partitions: 2,
            ..Default::default()
        },
    )?;
    for v in ["a", "bb", "ccc"] {
        driver
            .input::<String, String>("in")
            .pipe("k".into(), v.to_string(), 0)?;
    }
    let parts: Vec<(String, u32)> = lock(&origins)
        .iter()
        .map(|(k, p, _)| (k.clone(), *p))
        .collect();
    assert_eq!(parts.len(), 3);
    let by_value: Vec<u32> = driver
        .output::<String, String>("out")
        .read_values()?
        .iter()
        .map(|v| v.len() as u32 % 2)
        .collect();
    let mut from_meta: Vec<u32> = parts.iter().map(|(_, p)| *p).collect();
    let mut expected = by_value.clone();
    from_meta.sort();
    expected.sort();
    assert_eq!(from_meta, expected);
    Ok(())
}

/// A repartition drops records whose key is null (Kafka's repartition filter).
#[test]
fn repartition_drops_null_keys() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<Option<String>, String>("in")
        .repartition()
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<Option<String>, String>("in");
    input.pipe(None, "dropped".into(), 0)?;
    input.pipe(Some("k".into()), "kept".into(), 1)?;
    assert_eq!(
        driver
            .output::<Option<String>, String>("out")
            .read_values()?,
        vec!["kept"]
    );
    Ok(())
}

/// A processor that re-keys by the value and counts its calls.
struct Rekey;

impl Processor<String, String, String, String> for Rekey {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, '_, String, String>,
        r: Record<String, String>,
    ) -> Result<()> {
        let key = format!("new-{}", r.value);
        ctx.forward(r.with_key(key))
    }
}

#[test]
fn process_may_change_the_key_and_marks_the_stream_for_repartitioning() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = builder
        .stream::<String, String>("in")
        .process(|| Rekey, &[]);
    s.to("out");
    s.group_by_key().count().to_stream().to("counts");
    let topology = builder.build()?;
    assert_eq!(topology.subtopologies().len(), 2);
    let driver = TopologyTestDriver::new(topology)?;
    driver
        .input::<String, String>("in")
        .pipe("k".into(), "v".into(), 0)?;
    assert_eq!(
        driver.output::<String, String>("out").read_key_values()?,
        vec![("new-v".to_string(), "v".to_string())]
    );
    assert_eq!(
        driver.output::<String, i64>("counts").read_key_values()?,
        vec![("new-v".to_string(), 1)]
    );
    Ok(())
}

#[test]
fn process_values_keeps_the_key_and_needs_no_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    let s = builder
        .stream::<String, String>("in")
        .process_values(|| Rekey, &[]);
    s.to("out");
    s.group_by_key().count().to_stream().to("counts");
    let topology = builder.build()?;
    assert_eq!(topology.subtopologies().len(), 1);
    assert!(topology.internal_topics().is_empty());
    let driver = TopologyTestDriver::new(topology)?;
    driver
        .input::<String, String>("in")
        .pipe("k".into(), "v".into(), 3)?;
    let out = driver.output::<String, String>("out").read_records()?;
    assert_eq!(
        (out[0].key.as_str(), out[0].value.as_str(), out[0].timestamp),
        ("k", "v", 3)
    );
    assert_eq!(
        driver.output::<String, i64>("counts").read_key_values()?,
        vec![("k".to_string(), 1)]
    );
    Ok(())
}

#[test]
fn group_by_repartitions_and_counts_through_the_loop_back() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("words")
        .group_by_with(|_, v| v.clone(), Grouped::named("by-word"))
        .count()
        .to_stream()
        .to("counts");
    let topology = builder.build()?;
    assert_eq!(
        topology.internal_topics()[0].name.shown(),
        "by-word-repartition"
    );
    for partitions in [1, 3] {
        let driver = TopologyTestDriver::with_config(
            topology.clone(),
            DriverConfig {
                partitions,
                ..Default::default()
            },
        )?;
        let input = driver.input::<String, String>("words");
        for (i, w) in ["a", "b", "a", "c", "a", "b"].iter().enumerate() {
            input.pipe(format!("line{i}"), w.to_string(), i as i64)?;
        }
        let mut counts = driver.output::<String, i64>("counts").read_records()?;
        counts.sort_by_key(|r| r.timestamp);
        let got: Vec<(String, i64, i64)> = counts
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), 1, 0),
                ("b".to_string(), 1, 1),
                ("a".to_string(), 2, 2),
                ("c".to_string(), 1, 3),
                ("a".to_string(), 3, 4),
                ("b".to_string(), 2, 5),
            ],
            "{partitions} partitions"
        );
    }
    Ok(())
}

/// The repartition topic carries the re-keyed records' serialized key and value; the key
/// bytes are the grouping serde's.
#[test]
fn group_by_writes_the_new_key_with_the_grouping_serde() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .group_by_with(
            |_, v| v.len() as i64,
            Grouped::with(BigEndian, Utf8).with_name("len"),
        )
        .count()
        .to_stream()
        .to_with(
            "counts",
            Produced::with(BigEndian, freshet_streams::Nullable(BigEndian)),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<String, String>("in")
        .pipe("k".into(), "abc".into(), 0)?;
    let raw = driver.output::<i64, i64>("counts").read_raw();
    assert_eq!(
        raw[0].key.as_deref(),
        Some(&BigEndian.serialize(&3i64).unwrap()[..])
    );
    assert!(driver
        .produced_topic_names()
        .contains("test-driver-app-len-repartition"));
    Ok(())
}

/// As Kafka's driver: a record written to a topic the topology reads goes back in.
#[test]
fn records_written_to_a_source_topic_are_read_back() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("first")
        .map_values(|v| format!("{v}!"))
        .to("second");
    builder
        .stream::<String, String>("second")
        .map_values(|v| format!("{v}?"))
        .to("third");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    driver
        .input::<String, String>("first")
        .pipe("k".into(), "v".into(), 1)?;
    assert_eq!(
        driver.output::<String, String>("second").read_values()?,
        vec!["v!"]
    );
    assert_eq!(
        driver.output::<String, String>("third").read_values()?,
        vec!["v!?"]
    );
    Ok(())
}
