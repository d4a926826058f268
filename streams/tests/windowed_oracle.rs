//! Time-windowed (tumbling and hopping) and sliding-window aggregations on random,
//! out-of-order input, checked against naive oracles written from the window rules:
//!
//! - time windows: a record goes into every window `[k·advance, k·advance + size)` holding
//!   its timestamp whose end is `> observed stream time - grace`, the processor's own stream
//!   time advanced before the check; the others count as late drops;
//! - sliding windows: a record is dropped when `timestamp + d < stream time - grace`;
//!   otherwise the windows are the left window `[t - d, t]` of every record (`[0, d]` for
//!   `t < d`) and the right window `[t + 1, t + 1 + d]` of every record followed within
//!   `d + 1`, each holding every accepted record in its range. The inputs are adjusted so
//!   that no record falls between the two rules (late for some of its windows only), where
//!   Kafka's result depends on which windows existed when the record came;
//! - each processor's stream time sees only the records that reach it: a filter upstream
//!   drops some records (they still advance the task's stream time), and records with a
//!   null key are dropped before they advance it;
//! - emit-final forwards, after each record (for sliding windows: each record that is
//!   neither dropped nor early), the windows that closed since the last emit and are still
//!   in the store, by window start then key; emit-on-update's last update of every window is
//!   its final aggregate.
//!
//! The aggregate is the list of record ids in the window, so the check is on exact window
//! membership, not only counts; the window store is read at the end and compared with the
//! oracle's windows that retention keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    EmitStrategy, Materialized, Nullable, Record, SlidingWindows, StreamsBuilder,
    TimeWindowedSerde, TimeWindows, Utf8, Windowed,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Spec {
    Time { size: i64, advance: i64, grace: i64 },
    Sliding { d: i64, grace: i64 },
}

impl Spec {
    fn size(self) -> i64 {
        match self {
            Spec::Time { size, .. } => size,
            Spec::Sliding { d, .. } => d,
        }
    }
}

/// One input record: key (`None`: null), timestamp, id (negative: filtered upstream).
#[derive(Debug, Clone, Copy)]
struct Rec {
    key: Option<u8>,
    ts: i64,
    id: i64,
}

fn key_name(k: u8) -> String {
    format!("k{k}")
}

/// A window's content: record ids and the largest timestamp.
type Content = (Vec<i64>, i64);
/// `(key, window start)` → content.
type Windows = BTreeMap<(String, i64), Content>;

#[derive(Debug, Default, PartialEq)]
struct Expected {
    /// Every window with records (time), or every window that exists (sliding).
    windows: Windows,
    /// Of those, the ones the store still keeps.
    stored: Windows,
    /// Emit-final: `(key, start, ids, timestamp)` in emit order.
    emitted: Vec<(String, i64, Vec<i64>, i64)>,
    dropped: u64,
    late: u64,
}

fn add(windows: &mut Windows, key: &str, start: i64, id: i64, ts: i64) {
    let e = windows
        .entry((key.to_string(), start))
        .or_insert((Vec::new(), i64::MIN));
    e.0.push(id);
    e.1 = e.1.max(ts);
}

/// Emit-final's naive rule: windows with `last < end <= close` (time) or
/// `last <= end < close` (sliding) that the store still shows, by start then key.
fn emit_closed(
    windows: &Windows,
    size: i64,
    visible: impl Fn(i64) -> bool,
    closed: impl Fn(i64) -> bool,
    out: &mut Vec<(String, i64, Vec<i64>, i64)>,
) {
    let mut batch: Vec<_> = windows
        .iter()
        .filter(|((_, start), _)| closed(start + size) && visible(*start))
        .map(|((k, s), (ids, ts))| (k.clone(), *s, ids.clone(), *ts))
        .collect();
    batch.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out.extend(batch);
}

fn time_oracle(
    recs: &[Rec],
    size: i64,
    advance: i64,
    grace: i64,
    emit_final: bool,
    retention: i64,
) -> Expected {
    let mut x = Expected::default();
    let mut st = -1i64;
    let mut store_st = -1i64;
    let mut last: Option<i64> = None;
    for r in recs {
        if r.id < 0 {
            continue;
        }
        let Some(k) = r.key else {
            x.dropped += 1;
            continue;
        };
        let key = key_name(k);
        st = st.max(r.ts);
        let close = st - grace;
        let mut start = (r.ts - size + advance).max(0) / advance * advance;
        while start <= r.ts {
            if start + size > close {
                add(&mut x.windows, &key, start, r.id, r.ts);
                store_st = store_st.max(start);
            } else {
                x.dropped += 1;
                x.late += 1;
            }
            start += advance;
        }
        if emit_final {
            let from = last;
            emit_closed(
                &x.windows,
                size,
                // Kafka's time-ordered emit-final store still shows `start == st - retention`.
                |s| s >= store_st - retention,
                |end| from.is_none_or(|l| end > l) && end <= close,
                &mut x.emitted,
            );
            last = Some(last.map_or(close, |l| l.max(close)));
        }
    }
    x.stored = x
        .windows
        .iter()
        .filter(|((_, s), _)| {
            if emit_final {
                *s >= store_st - retention
            } else {
                *s > store_st - retention
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    x
}

/// The windows of accepted `(timestamp, id)` records of every key.
fn sliding_windows(accepted: &BTreeMap<String, Vec<(i64, i64)>>, d: i64) -> Windows {
    let mut windows = Windows::new();
    for (key, recs) in accepted {
        let mut starts = BTreeSet::new();
        for &(t, _) in recs {
            starts.insert((t - d).max(0));
            if recs.iter().any(|&(u, _)| u > t && u <= t + 1 + d) {
                starts.insert(t + 1);
            }
        }
        for s in starts {
            for &(t, id) in recs {
                if s <= t && t <= s + d {
                    add(&mut windows, key, s, id, t);
                }
            }
        }
    }
    windows
}

/// Moves records that would be late for only some of their sliding windows to on time
/// (`ts = close`) or to entirely late, as `late_bits` says.
fn without_partial(recs: &mut [Rec], d: i64, grace: i64, late_bits: &[bool]) {
    let mut st = -1i64;
    for (i, r) in recs.iter_mut().enumerate() {
        if r.id < 0 || r.key.is_none() {
            continue;
        }
        let close = st.max(r.ts) - grace;
        if r.ts < close && r.ts + d >= close {
            r.ts = if late_bits[i % late_bits.len()] && close > d {
                close - d - 1
            } else {
                close
            };
        }
        st = st.max(r.ts);
    }
}

fn sliding_oracle(recs: &[Rec], d: i64, grace: i64, emit_final: bool) -> Expected {
    let mut x = Expected::default();
    let mut st = -1i64;
    let mut last: Option<i64> = None;
    let mut accepted: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for r in recs {
        if r.id < 0 {
            continue;
        }
        let Some(k) = r.key else {
            x.dropped += 1;
            continue;
        };
        st = st.max(r.ts);
        let close = st - grace;
        if r.ts + d < close {
            x.dropped += 1;
            x.late += 1;
            continue;
        }
        assert!(r.ts >= close, "partial records are removed from the input");
        accepted.entry(key_name(k)).or_default().push((r.ts, r.id));
        if emit_final && r.ts >= d {
            let windows = sliding_windows(&accepted, d);
            let from = last;
            emit_closed(
                &windows,
                d,
                |_| true,
                |end| from.is_none_or(|l| end >= l) && end < close,
                &mut x.emitted,
            );
            if close > d {
                last = Some(close);
            }
        }
    }
    x.windows = sliding_windows(&accepted, d);
    x.stored = x.windows.clone();
    x
}

struct Case {
    spec: Spec,
    emit: EmitStrategy,
    caching: bool,
    /// `None`: the default retention.
    retention: Option<i64>,
}

/// What the topology did: `(window, ids, timestamp)` forwarded, the store, the metrics.
struct Actual {
    forwarded: Vec<(String, i64, Vec<i64>, i64)>,
    stored: Windows,
    dropped: u64,
    late: u64,
}

fn ids(agg: &str) -> Vec<i64> {
    agg.split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn run(case: &Case, recs: &[Rec]) -> freshet_streams::Result<Actual> {
    let builder = StreamsBuilder::new();
    let mut m = Materialized::named("agg").with_value_serde(Utf8);
    if !case.caching {
        m = m.with_caching_disabled();
    }
    if let Some(r) = case.retention {
        m = m.with_retention(Duration::from_millis(r as u64));
    }
    let grouped = builder
        .stream::<Option<String>, i64>("in")
        .filter(|_, id| *id >= 0)
        .group_by_key();
    let agg = |_: &Option<String>, id: &i64, a: String| {
        if a.is_empty() {
            id.to_string()
        } else {
            format!("{a},{id}")
        }
    };
    let ms = |v: i64| Duration::from_millis(v as u64);
    let table = match case.spec {
        Spec::Time {
            size,
            advance,
            grace,
        } => grouped
            .windowed_by(
                TimeWindows::of_size_and_grace(ms(size), ms(grace))?.advance_by(ms(advance))?,
            )
            .emit_strategy(case.emit)
            .aggregate_with(String::new, agg, m),
        Spec::Sliding { d, grace } => grouped
            .windowed_by(SlidingWindows::of_time_difference_and_grace(
                ms(d),
                ms(grace),
            )?)
            .emit_strategy(case.emit)
            .aggregate_with(String::new, agg, m),
    };
    table.to_stream().to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<Option<String>, i64>("in");
    for r in recs {
        input.pipe(r.key.map(key_name), r.id, r.ts)?;
    }
    let keys = Arc::new(TimeWindowedSerde::new(
        Arc::new(Nullable(Utf8)),
        case.spec.size(),
    ));
    let out: Vec<Record<Windowed<Option<String>>, Option<String>>> = driver
        .output_with("out", keys, Arc::new(Nullable(Utf8)))
        .read_records()?;
    let forwarded = out
        .into_iter()
        .map(|r| {
            let key = r.key.key.unwrap_or_default();
            (
                key,
                r.key.window.start,
                ids(&r.value.unwrap_or_default()),
                r.timestamp,
            )
        })
        .collect();
    let stored = driver
        .window_store::<Option<String>, String>("agg")?
        .all()?
        .into_iter()
        .map(|(w, agg, ts)| ((w.key.unwrap_or_default(), w.window.start), (ids(&agg), ts)))
        .collect();
    let metrics = driver.metrics(0).unwrap_or_default();
    Ok(Actual {
        forwarded,
        stored,
        dropped: metrics.dropped_records,
        late: metrics.late_records,
    })
}

fn check(case: &Case, recs: &[Rec]) -> Result<(), TestCaseError> {
    let emit_final = case.emit == EmitStrategy::OnWindowClose;
    let x = match case.spec {
        Spec::Time {
            size,
            advance,
            grace,
        } => {
            let retention = case.retention.unwrap_or(size + grace);
            time_oracle(recs, size, advance, grace, emit_final, retention)
        }
        Spec::Sliding { d, grace } => sliding_oracle(recs, d, grace, emit_final),
    };
    let a = run(case, recs).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(a.dropped, x.dropped, "dropped records");
    prop_assert_eq!(a.late, x.late, "late records");
    prop_assert_eq!(&a.stored, &x.stored, "window store");
    if emit_final {
        prop_assert_eq!(&a.forwarded, &x.emitted, "emit-final output");
    } else {
        let mut last = Windows::new();
        for (k, s, ids, ts) in &a.forwarded {
            last.insert((k.clone(), *s), (ids.clone(), *ts));
        }
        prop_assert_eq!(&last, &x.windows, "last update of each window");
    }
    Ok(())
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (1i64..=20, 0i64..=15).prop_flat_map(|(size, grace)| {
            (1..=size).prop_map(move |advance| Spec::Time {
                size,
                advance,
                grace,
            })
        }),
        (0i64..=15, 0i64..=15).prop_map(|(d, grace)| Spec::Sliding { d, grace }),
    ]
}

fn records() -> impl Strategy<Value = Vec<(Option<u8>, i64, bool)>> {
    // (key, jitter, filtered): timestamps rise by 3 per record, minus up to 40 of jitter.
    prop::collection::vec(
        (
            prop_oneof![8 => (0u8..3).prop_map(Some), 1 => Just(None)],
            -40i64..=4,
            prop::bool::weighted(0.15),
        ),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn windowed_aggregations_match_the_oracle(
        spec in spec(),
        emit_final in any::<bool>(),
        caching in any::<bool>(),
        long_retention in any::<bool>(),
        raw in records(),
        late_bits in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let mut recs: Vec<Rec> = raw
            .iter()
            .enumerate()
            .map(|(i, &(key, jitter, filtered))| Rec {
                key,
                ts: (i as i64 * 3 + jitter).max(0),
                id: if filtered { -(i as i64) - 1 } else { i as i64 },
            })
            .collect();
        let retention = match spec {
            // Sliding windows read windows up to 2d back; a long retention keeps the
            // oracle free of Kafka's retention edge there.
            Spec::Sliding { d, grace } => {
                without_partial(&mut recs, d, grace, &late_bits);
                Some(10_000)
            }
            Spec::Time { .. } if long_retention => Some(10_000),
            Spec::Time { .. } => None,
        };
        let case = Case {
            spec,
            emit: if emit_final { EmitStrategy::OnWindowClose } else { EmitStrategy::OnWindowUpdate },
            caching,
            retention,
        };
        check(&case, &recs)?;
    }
}
