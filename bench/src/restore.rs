//! Workload R of `shared/BENCHMARKS.md`: a key-value `count` over `N = K` distinct keys
//! (each key once), then stop, delete the local state directory, start again and time
//! until the app reports `RUNNING` — every store restored from its changelog — beside a
//! plain sled bulk insert of as many records of the same sizes, in the same run.
//!
//! A [`Restorer`] processes the input once (untimed) and can then restore as often as it
//! is asked: each [`Restorer::restore`] deletes the state directory (`StreamsApp::cleanup`),
//! times `StreamsApp::start` (which returns once every task is restored and the app is
//! `RUNNING`), checks through an interactive query that every key holds count 1, and
//! closes the app. [`bulk_insert`] is the baseline: a fresh `sled::Db` with the app's page
//! cache (`state.sled.cache.bytes`), N records of an 8-byte key and a 16-byte value
//! (timestamp + count, what the store keeps) in batches of 50,000, no flush inside the
//! clock (restore does not flush either).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use freshet_log::Log;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, Topology};

use crate::measure::{peak_rss_bytes, reset_peak_rss, timed};
use crate::workload::{preload, runtime, Input, Measured, Setup, INPUT};
use crate::BoxError;

/// The count's store.
pub const STORE: &str = "counts";
/// The baseline's sled batch: the records restore reads and writes at a time.
const BULK_BATCH: usize = 50_000;
/// issue 6's goal: restore within this many times the bulk insert's time.
pub const GOAL: f64 = 1.3;

/// The pipeline: `stream` → `group_by_key` → `count` (materialized as [`STORE`]).
///
/// # Errors
/// A build error (none expected).
pub fn topology() -> Result<Topology, BoxError> {
    let b = StreamsBuilder::new();
    b.stream::<u64, u64>(INPUT)
        .group_by_key()
        .count_with(Materialized::named(STORE));
    Ok(b.build()?)
}

/// A log holding R's input and the changelog of one processing run, ready to restore.
#[derive(Debug)]
pub struct Restorer {
    log: Arc<Log>,
    config: StreamsConfig,
    topology: Topology,
    records: u64,
    _dir: tempfile::TempDir,
}

impl Restorer {
    /// Loads `records` distinct keys into a fresh log under `parent` (the system temp dir
    /// when `None`) and runs the count over them once with `setup`, untimed.
    ///
    /// # Errors
    /// The log's and the app's.
    pub fn new(records: u64, setup: Setup, parent: Option<&Path>) -> Result<Restorer, BoxError> {
        let dir = temp_dir(parent)?;
        let log = Arc::new(Log::open(dir.path().join("log"))?);
        preload(&log, &Input::new(records, records), false)?;
        let topology = topology()?;
        let config = setup.config("bench-restore");
        let rt = runtime()?;
        rt.block_on(async {
            let mut app = StreamsApp::start(config.clone(), topology.clone(), log.clone()).await?;
            app.run_until_caught_up().await?;
            Ok::<_, BoxError>(())
        })?;
        Ok(Restorer {
            log,
            config,
            topology,
            records,
            _dir: dir,
        })
    }

    /// Deletes the local state, times a start until `RUNNING`, checks every key's count,
    /// closes the app.
    ///
    /// # Errors
    /// The app's; a store that does not hold every key with count 1.
    pub fn restore(&self) -> Result<Measured, BoxError> {
        let rt = runtime()?;
        let app = StreamsApp::new(self.config.clone(), self.topology.clone(), self.log.clone())?;
        app.cleanup()?;
        drop(app);
        reset_peak_rss();
        let (mut app, sample) = timed(|| {
            rt.block_on(async {
                Ok::<_, BoxError>(
                    StreamsApp::start(self.config.clone(), self.topology.clone(), self.log.clone())
                        .await?,
                )
            })
        })?;
        let peak_rss = peak_rss_bytes();
        let metrics = app.metrics();
        let read: u64 = metrics.tasks.iter().map(|t| t.restore.records_read).sum();
        let checked = self.check(&app);
        rt.block_on(app.close())?;
        checked?;
        if read < self.records {
            return Err(format!(
                "restore: the app replayed {read} changelog records, expected at least {}",
                self.records
            )
            .into());
        }
        Ok(Measured {
            sample,
            peak_rss,
            records_in: read,
            close_secs: 0.0,
        })
    }

    fn check(&self, app: &StreamsApp) -> Result<(), BoxError> {
        let all = app.store::<u64, i64>(STORE)?.all()?;
        if all.len() as u64 != self.records {
            return Err(format!(
                "restore: {} keys restored, expected {}",
                all.len(),
                self.records
            )
            .into());
        }
        let mut seen = vec![false; self.records as usize];
        for (k, count) in all {
            let slot = seen
                .get_mut(k as usize)
                .ok_or_else(|| format!("restore: unexpected key {k}"))?;
            if *slot || count != 1 {
                return Err(
                    format!("restore: key {k} holds {count} (or twice), expected 1").into(),
                );
            }
            *slot = true;
        }
        Ok(())
    }
}

fn temp_dir(parent: Option<&Path>) -> Result<tempfile::TempDir, BoxError> {
    let mut b = tempfile::Builder::new();
    b.prefix("freshet-bench-restore-");
    Ok(match parent {
        Some(p) => b.tempdir_in(p)?,
        None => b.tempdir()?,
    })
}

/// The baseline: a plain sled bulk insert of `records` records (8-byte key, 16-byte value)
/// into a fresh database with `sled_cache_bytes` of page cache, timed; flushed and checked
/// after the clock stops.
///
/// # Errors
/// sled's; a wrong number of keys.
pub fn bulk_insert(
    records: u64,
    sled_cache_bytes: u64,
    parent: Option<&Path>,
) -> Result<Measured, BoxError> {
    let dir = temp_dir(parent)?;
    let path: PathBuf = dir.path().join("sled");
    let db = sled::Config::new()
        .path(&path)
        .cache_capacity(sled_cache_bytes)
        .open()?;
    let tree = db.open_tree("counts")?;
    reset_peak_rss();
    let ((), sample) = timed(|| {
        let mut i = 0u64;
        while i < records {
            let end = (i + BULK_BATCH as u64).min(records);
            let mut batch = sled::Batch::default();
            for k in i..end {
                let mut v = [0u8; 16];
                v[..8].copy_from_slice(&(crate::workload::T0 + (k / 100) as i64).to_be_bytes());
                v[8..].copy_from_slice(&1i64.to_be_bytes());
                batch.insert(&k.to_be_bytes()[..], &v[..]);
            }
            tree.apply_batch(batch)?;
            i = end;
        }
        Ok(())
    })?;
    let peak_rss = peak_rss_bytes();
    if tree.len() as u64 != records {
        return Err(format!("bulk insert: {} keys, expected {records}", tree.len()).into());
    }
    db.flush()?;
    Ok(Measured {
        sample,
        peak_rss,
        records_in: records,
        close_secs: 0.0,
    })
}
