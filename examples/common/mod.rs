//! The plumbing every example shares, so that each example's own file is its topology and
//! the few lines that start it: the command line, demo input for an empty topic, the run
//! loop with a live progress line, and reading a topic back.
//!
//! Every example takes:
//!
//! ```text
//! --data-dir DIR            the embedded log's directory (default ./freshet-data, or
//!                           $FRESHET_DATA_DIR — the CLI's default, so `freshet produce`
//!                           and the examples share data)
//! --exit-when-caught-up     process what the input topics hold, commit, stop
//!                           (StreamsApp::run_until_caught_up); default: run until Ctrl-C
//! --config KEY=VALUE        a StreamsConfig setting, e.g. statestore.cache.max.bytes=0
//! ```
#![allow(dead_code)] // each example uses a part of it

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use freshet::log::StoredRecord;
use freshet::prelude::*;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The embedded log's directory.
    pub(crate) data_dir: PathBuf,
    /// Stop once every input is processed (the bounded mode) instead of at Ctrl-C.
    pub(crate) exit_when_caught_up: bool,
    /// `StreamsConfig` settings, in order.
    pub(crate) config: Vec<(String, String)>,
}

impl Options {
    /// Parses `args` (without the program name). `--help` prints `usage` and exits; a bad
    /// argument prints the error and `usage` and exits with code 2.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>, usage: &str) -> Options {
        match Options::try_parse(args) {
            Ok(Some(options)) => options,
            Ok(None) => {
                println!("{usage}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("error: {e}\n\n{usage}");
                std::process::exit(2);
            }
        }
    }

    /// `None` for `--help`.
    fn try_parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut options = Options {
            data_dir: std::env::var_os("FRESHET_DATA_DIR")
                .map_or_else(|| PathBuf::from("./freshet-data"), PathBuf::from),
            exit_when_caught_up: false,
            config: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--data-dir" => {
                    options.data_dir = args.next().ok_or("--data-dir needs DIR")?.into()
                }
                "--exit-when-caught-up" => options.exit_when_caught_up = true,
                "--config" => {
                    let kv = args.next().ok_or("--config needs KEY=VALUE")?;
                    let (k, v) = kv.split_once('=').ok_or("--config needs KEY=VALUE")?;
                    options.config.push((k.to_string(), v.to_string()));
                }
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        Ok(Some(options))
    }

    /// The app's settings: `application.id` plus `--config` pairs.
    pub(crate) fn streams_config(&self, application_id: &str) -> freshet::Result<StreamsConfig> {
        Ok(StreamsConfig::from_pairs(
            application_id,
            self.config.iter().map(|(k, v)| (k, v)),
        )?)
    }
}

/// Shows the runtime's warnings and errors on stderr (`RUST_LOG=info` shows more, e.g.
/// state changes and restores).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// What an example's `main` returns: an error is printed as its message and its causes
/// (not as `Debug`), and the program exits with code 1.
pub(crate) type MainResult = Result<(), Report>;

/// Any error, shown by its `Display` chain.
pub(crate) struct Report(Box<dyn std::error::Error>);

impl<E: std::error::Error + 'static> From<E> for Report {
    fn from(e: E) -> Report {
        Report(Box::new(e))
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The time now, in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub(crate) fn ensure_topic(log: &Log, topic: &str, partitions: u32) -> freshet::Result<()> {
    if !log.topic_exists(topic) {
        log.create_topic(topic, TopicConfig::partitions(partitions))?;
    }
    Ok(())
}

/// Whether `topic` holds no records at all (so the example may write its demo input).
pub(crate) fn is_empty(log: &Log, topic: &str) -> freshet::Result<bool> {
    for p in 0..log.partition_count(topic)? {
        if log.offsets(topic, p)?.end > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sends `records` to `topic` (partitioned by key, as Kafka's producer does) and waits
/// until all are written; returns how many.
pub(crate) fn produce(
    log: &Log,
    topic: &str,
    records: impl IntoIterator<Item = Record>,
) -> freshet::Result<usize> {
    let producer = log.producer(ProducerConfig::default());
    let mut n = 0;
    for r in records {
        // The acknowledgement is awaited all at once by `flush`.
        let _ack = producer.send(topic, r);
        n += 1;
    }
    producer.flush()?;
    Ok(n)
}

/// Every committed record of `topic`, partition by partition, each in offset order.
pub(crate) fn read_topic(log: &Log, topic: &str) -> freshet::Result<Vec<StoredRecord>> {
    let mut out = Vec::new();
    for p in 0..log.partition_count(topic)? {
        let offsets = log.offsets(topic, p)?;
        let mut next = offsets.start;
        while next < offsets.last_stable {
            let batch = log.read(topic, p, next, 1 << 20, Isolation::ReadCommitted)?;
            let Some(last) = batch.last() else { break };
            next = last.offset + 1;
            out.extend(batch.into_iter().filter(|r| r.offset < offsets.last_stable));
        }
    }
    Ok(out)
}

/// A record's key as UTF-8 text (`\N` for null).
pub(crate) fn key_text(r: &StoredRecord) -> String {
    r.key.as_deref().map_or_else(
        || "\\N".to_string(),
        |k| String::from_utf8_lossy(k).into_owned(),
    )
}

/// A record's value as UTF-8 text (`\N` for null).
pub(crate) fn value_text(r: &StoredRecord) -> String {
    r.value.as_deref().map_or_else(
        || "\\N".to_string(),
        |v| String::from_utf8_lossy(v).into_owned(),
    )
}

/// A record's value as a big-endian i64 (how counts are written), if it is one.
pub(crate) fn value_i64(r: &StoredRecord) -> Option<i64> {
    let bytes: [u8; 8] = r.value.as_deref()?.try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

/// The last value written for each key of `records` (a table's current state).
pub(crate) fn latest<V>(
    records: &[StoredRecord],
    value: impl Fn(&StoredRecord) -> V,
) -> BTreeMap<String, V> {
    records.iter().map(|r| (key_text(r), value(r))).collect()
}

/// Runs `app` until it has caught up with its input (`exit_when_caught_up`, the bounded
/// mode) or until Ctrl-C, showing the runtime's metrics line, then closes it (flush,
/// commit).
pub(crate) async fn run_app(
    app: &mut StreamsApp,
    exit_when_caught_up: bool,
) -> freshet::Result<()> {
    wait_showing_progress(app, exit_when_caught_up).await?;
    app.close().await?;
    Ok(())
}

/// Waits until `app` caught up (`bounded`) or Ctrl-C, redrawing its metrics line; the app
/// keeps running. Fails when the app fails.
pub(crate) async fn wait_showing_progress(app: &StreamsApp, bounded: bool) -> freshet::Result<()> {
    let mut progress = Progress::new();
    let done = async {
        if bounded {
            app.wait_until_caught_up().await?;
        } else {
            println!("running; Ctrl-C stops (flushes, commits, closes)");
            tokio::signal::ctrl_c().await?;
        }
        freshet::Result::Ok(())
    };
    tokio::pin!(done);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            r = &mut done => { progress.finish(&app.metrics().line()); return r; }
            _ = tick.tick() => {
                if app.state() == AppState::Error {
                    progress.finish(&app.metrics().line());
                    return Ok(()); // close() reports the failure
                }
                progress.show(&app.metrics().line());
            }
        }
    }
}

/// A progress line: redrawn in place on a terminal, printed every few seconds otherwise.
struct Progress {
    terminal: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stdout().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, line: &str) {
        if self.terminal {
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        } else if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            println!("{line}");
            self.last = Some(Instant::now());
        }
    }

    fn finish(&mut self, line: &str) {
        if self.terminal {
            println!("\r\x1b[2K{line}");
        } else {
            println!("{line}");
        }
    }
}

/// Prints up to `max` lines, then how many more there are.
pub(crate) fn print_lines(lines: impl IntoIterator<Item = String>, max: usize) {
    let mut n = 0;
    for line in lines {
        if n < max {
            println!("  {line}");
        }
        n += 1;
    }
    if n > max {
        println!("  … and {} more", n - max);
    }
}

/// Prints how to look at `topics` with the CLI.
pub(crate) fn print_cli_hints(options: &Options, commands: &[String]) {
    let dir = options.data_dir.display();
    println!("\nlook inside with the CLI (`cargo install --path cli` installs it as `freshet`):");
    for c in commands {
        println!("  cargo run --release -p freshet-cli -- --data-dir {dir} {c}");
    }
}

/// A small deterministic random number generator (xorshift64*), so demo input is the same
/// on every run.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % n
    }

    /// One of `items`, the first ones more often (a rough Zipf: item i with weight 1/(i+1)).
    pub(crate) fn skewed<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let total: f64 = (1..=items.len()).map(|i| 1.0 / i as f64).sum();
        let mut x = self.below(1 << 20) as f64 / (1u64 << 20) as f64 * total;
        for (i, item) in items.iter().enumerate() {
            x -= 1.0 / (i + 1) as f64;
            if x < 0.0 {
                return item;
            }
        }
        &items[items.len() - 1]
    }
}
