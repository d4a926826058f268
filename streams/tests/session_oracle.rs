//! Session-windowed aggregation against a naive model of Kafka's
//! `KStreamSessionWindowAggregate` and its session store: random keys, out-of-order
//! timestamps with occasional large jumps, random gap and grace.
//!
//! Checked, per case: every update forwarded (emit-on-update, caching on or off — the test
//! driver commits after each record, so the cache forwards the same updates: tombstones of
//! merged-away sessions, then the merged session, timestamped with session ends); every
//! final result (emit-final: closed sessions in end, start, key order, when the close time
//! moves on); the sessions left in the store; the count of late records.
//!
//! The model keeps every session in a list. A session is visible to merges while
//! `end > store time - retention` (the store time is the largest session end put);
//! emit-final reads a closed session until Kafka would have dropped its segment
//! (`end / interval >= (store time - retention) / interval`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    EmitStrategy, Materialized, Nullable, Result, SerdeRef, SessionWindowedSerde, SessionWindows,
    StreamsBuilder, Utf8, Window, Windowed,
};
use proptest::prelude::*;

const KEYS: [&str; 4] = ["a", "b", "c", "d"];
const STORE: &str = "sessions";

#[derive(Debug, Clone)]
struct Case {
    caching: bool,
    gap: i64,
    grace: i64,
    /// `(key index, timestamp, value)`.
    records: Vec<(usize, i64, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        1i64..20,
        0i64..10,
        prop::collection::vec((0usize..4, 0i64..30, 0i64..40, 0u8..20), 1..60),
    )
        .prop_map(|(caching, gap, grace, steps)| {
            let mut base = 0i64;
            let mut records = Vec::new();
            for (i, (key, advance, back, jump)) in steps.into_iter().enumerate() {
                // Mostly small steps forward; now and then a jump past a segment (60 000).
                base += if jump == 0 { 45_000 } else { advance };
                let ts = (base - back).max(0);
                records.push((key, ts, format!("{i},")));
            }
            Case {
                caching,
                gap,
                grace,
                records,
            }
        })
}

type Update = (String, Window, Option<String>, i64);

/// Sessions by key and window, with their aggregates.
type Stored = BTreeMap<(String, Window), String>;

/// The model's session: key, window, aggregate.
#[derive(Debug, Clone, PartialEq)]
struct Session {
    key: String,
    window: Window,
    agg: String,
}

#[derive(Default)]
struct Model {
    sessions: Vec<Session>,
    observed: i64,
    store_time: i64,
    last_emit: i64,
    updates: Vec<Update>,
    finals: Vec<Update>,
    late: u64,
}

impl Model {
    fn new() -> Model {
        Model {
            observed: -1,
            store_time: -1,
            last_emit: -1,
            ..Model::default()
        }
    }

    fn run(case: &Case, retention: i64) -> Model {
        let interval = (retention / 2).max(60_000);
        let mut m = Model::new();
        for (k, ts, v) in &case.records {
            let key = KEYS[*k].to_string();
            let ts = *ts;
            m.observed = m.observed.max(ts);
            let close = m.observed - case.grace - case.gap;
            let visible_from = m.store_time - retention;
            let mut found: Vec<usize> = (0..m.sessions.len())
                .filter(|&i| {
                    let s = &m.sessions[i];
                    s.key == key
                        && s.window.end > visible_from
                        && s.window.end >= ts - case.gap
                        && s.window.start <= ts + case.gap
                })
                .collect();
            found.sort_by_key(|&i| (m.sessions[i].window.end, m.sessions[i].window.start));
            let mut window = Window::new(ts, ts);
            let mut agg = String::new();
            for &i in &found {
                let s = &m.sessions[i];
                agg += &s.agg;
                window = Window::new(
                    window.start.min(s.window.start),
                    window.end.max(s.window.end),
                );
            }
            if window.end < close {
                m.late += 1;
            } else {
                if window != Window::new(ts, ts) {
                    for &i in &found {
                        let s = &m.sessions[i];
                        // The cache collapses a removal and a put of one session (a record
                        // inside a session) into the put.
                        if !(case.caching && s.window == window) {
                            m.updates
                                .push((s.key.clone(), s.window, None, s.window.end));
                        }
                    }
                }
                // Merged sessions go; a session equal to the new one (even one no longer
                // visible) is overwritten.
                let mut gone: Vec<Window> = found.iter().map(|&i| m.sessions[i].window).collect();
                gone.push(window);
                m.sessions
                    .retain(|s| !(s.key == key && gone.contains(&s.window)));
                agg += v;
                m.updates
                    .push((key.clone(), window, Some(agg.clone()), window.end));
                m.sessions.push(Session {
                    key: key.clone(),
                    window,
                    agg,
                });
                m.store_time = m.store_time.max(window.end);
            }
            // Emit-final.
            if (m.last_emit == -1 || m.last_emit < close) && close >= 1 {
                let lower = m.last_emit.max(0);
                let min_segment = (m.store_time - retention) / interval;
                let mut closed: Vec<&Session> = m
                    .sessions
                    .iter()
                    .filter(|s| {
                        s.window.end >= lower
                            && s.window.end < close
                            && s.window.end / interval >= min_segment
                    })
                    .collect();
                closed.sort_by(|a, b| {
                    (a.window.end, a.window.start, &a.key).cmp(&(
                        b.window.end,
                        b.window.start,
                        &b.key,
                    ))
                });
                for s in closed {
                    m.finals
                        .push((s.key.clone(), s.window, Some(s.agg.clone()), s.window.end));
                }
                m.last_emit = close;
            }
        }
        m
    }

    /// Sessions a store of `retention` still shows.
    fn stored(&self, retention: i64) -> Stored {
        self.sessions
            .iter()
            .filter(|s| s.window.end > self.store_time - retention)
            .map(|s| ((s.key.clone(), s.window), s.agg.clone()))
            .collect()
    }
}

fn run_driver(case: &Case, emit: EmitStrategy) -> Result<(Vec<Update>, Stored, u64)> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_millis(case.gap as u64),
            Duration::from_millis(case.grace as u64),
        )?)
        .emit_strategy(emit)
        .aggregate_with(
            String::new,
            |_k, v, agg| agg + v,
            |_k, a, b| a + &b,
            if case.caching {
                Materialized::named(STORE)
            } else {
                Materialized::named(STORE).with_caching_disabled()
            },
        )
        .to_stream()
        .to("out");
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.input::<String, String>("in");
    for (k, ts, v) in &case.records {
        input.pipe(KEYS[*k].to_string(), v.clone(), *ts)?;
    }
    let keys: SerdeRef<Windowed<String>> =
        Arc::new(SessionWindowedSerde::new(Arc::new(Utf8) as SerdeRef<String>));
    let values: SerdeRef<Option<String>> = Arc::new(Nullable(Utf8));
    let out = driver
        .output_with("out", keys, values)
        .read_records()?
        .into_iter()
        .map(|r| (r.key.key, r.key.window, r.value, r.timestamp))
        .collect();
    let stored = driver
        .session_store::<String, String>(STORE)?
        .all()?
        .into_iter()
        .map(|(w, v, _)| ((w.key, w.window), v))
        .collect();
    let late = driver.metrics(0).map_or(0, |m| m.late_records);
    Ok((out, stored, late))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn emit_on_update_matches_the_model(case in case()) {
        let retention = case.gap + case.grace;
        let model = Model::run(&case, retention);
        let (updates, stored, late) = run_driver(&case, EmitStrategy::OnWindowUpdate)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(updates, model.updates.clone());
        prop_assert_eq!(stored, model.stored(retention));
        prop_assert_eq!(late, model.late);
    }

    #[test]
    fn emit_final_matches_the_model(case in case()) {
        let retention = case.gap + case.grace;
        let model = Model::run(&case, retention);
        let (finals, stored, late) = run_driver(&case, EmitStrategy::OnWindowClose)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(finals, model.finals.clone());
        // The emit-final store keeps one segment interval more (closed sessions stay
        // readable until Kafka would drop their segment).
        let kept = retention + (retention / 2).max(60_000);
        prop_assert_eq!(stored, model.stored(kept));
        prop_assert_eq!(late, model.late);
    }
}
