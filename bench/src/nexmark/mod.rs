//! Nexmark: the auction model (persons, auctions, bids) generated into the embedded log
//! ([`generator`]), and queries q0, q1, q2, q3, q4, q5, q7, q8 and q11 written with the
//! public DSL, each with a plain-Rust oracle ([`query`]).
//!
//! ```text
//! cargo run --release -p freshet-bench -- nexmark q5 --events 1000000
//! ```
//! prints the events processed per second (wall clock) and per CPU-second; events are
//! all generated events (persons, auctions and bids), as Nexmark counts them, whichever of
//! them a query reads.

pub mod generator;
pub mod model;
pub mod query;

pub use generator::{event, preload};
pub use query::{Query, OUTPUT};

use std::path::Path;
use std::sync::Arc;

use freshet_log::Log;
use freshet_runtime::StreamsApp;

use crate::measure::{peak_rss_bytes, reset_peak_rss, timed};
use crate::workload::{keyed_records, read_partitions, runtime, Measured, Setup};
use crate::BoxError;

/// One run of `query` over `events` generated events in a fresh log under `dir`: load
/// the events (untimed), time the app from its start until it is caught up, close it,
/// check the output against the oracle.
///
/// # Errors
/// The log's and the app's; a wrong result.
pub fn run(query: Query, events: u64, setup: Setup, dir: &Path) -> Result<Measured, BoxError> {
    let rt = runtime()?;
    let log = Arc::new(Log::open(dir.join("log"))?);
    preload(&log, events)?;
    let topology = query.topology()?;
    let config = setup.config(&format!("nexmark-{}", query.name()));
    reset_peak_rss();
    let (mut app, sample) = timed(|| {
        rt.block_on(async {
            let app = StreamsApp::start(config, topology, log.clone()).await?;
            app.wait_until_caught_up().await?;
            Ok::<_, BoxError>(app)
        })
    })?;
    let peak_rss = peak_rss_bytes();
    let records_in = app.metrics().records_in();
    let closing = std::time::Instant::now();
    rt.block_on(app.close())?;
    let close_secs = closing.elapsed().as_secs_f64();
    drop(app);
    // Every output sits in its key's partition (the base key of a windowed key), so the
    // last value of a key is well defined.
    let out = keyed_records(read_partitions(&log, OUTPUT)?, 8)
        .map_err(|e| format!("nexmark {}: wrong result: {e}", query.name()))?;
    query.check(events, &out)?;
    log.close()?;
    Ok(Measured {
        sample,
        peak_rss,
        records_in,
        close_secs,
    })
}
