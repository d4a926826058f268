//! Word count, Kafka Streams' first example: lines of text in `text-lines` (any key, UTF-8
//! values), the running count of each word in `word-counts` (key: the word, value: the
//! count as a big-endian i64, as Kafka's `LongSerializer` writes it).
//!
//! ```sh
//! cargo run --release --example wordcount -- --exit-when-caught-up
//! # your own text, written before the example starts (one process owns the data directory):
//! cargo run -p freshet-cli -- topics create text-lines --partitions 4
//! printf 'to be or not to be\n' | cargo run -p freshet-cli -- produce text-lines
//! ```
//!
//! When `text-lines` is empty the example writes a few lines of demo text first.

mod common;

use std::sync::Arc;

use common::{ensure_topic, is_empty, now_ms, produce, Options};
use freshet::prelude::*;

pub(crate) const APP: &str = "wordcount";
const LINES: &str = "text-lines";
const COUNTS: &str = "word-counts";

/// Splits lines into lower-case words and counts each word.
pub(crate) fn topology() -> freshet::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<Option<String>, String>(LINES) // lines usually have no key
        .flat_map_values(|line| {
            line.split(|c: char| !c.is_alphanumeric() && c != '\'')
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        // The word becomes the key: a repartition topic brings each word to one task.
        .group_by_with(|_, word| word.clone(), Grouped::named("words"))
        .count_with(Materialized::named("counts"))
        .to_stream()
        .to(COUNTS);
    Ok(builder.build()?)
}

/// The demo text.
pub(crate) const DEMO_TEXT: [&str; 6] = [
    "all streams flow into the sea",
    "yet the sea is not full",
    "unto the place from whence the streams come",
    "thither they return again",
    "a stream is a table of changes",
    "and a table is the latest value of each key in a stream",
];

/// Runs the word count on `log`; returns how many demo lines it wrote.
pub(crate) async fn run(
    log: Arc<Log>,
    config: StreamsConfig,
    exit_when_caught_up: bool,
) -> freshet::Result<usize> {
    ensure_topic(&log, LINES, 4)?;
    let mut produced = 0;
    if is_empty(&log, LINES)? {
        let t = now_ms();
        produced = produce(
            &log,
            LINES,
            DEMO_TEXT.map(|l| Record::unkeyed(l).with_timestamp(t)),
        )?;
        println!("wrote {produced} lines of demo text to '{LINES}'");
    }
    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    common::run_app(&mut app, exit_when_caught_up).await?;

    let counts = common::latest(&common::read_topic(&log, COUNTS)?, common::value_i64);
    println!(
        "\n{} words in '{COUNTS}' (latest count of each):",
        counts.len()
    );
    common::print_lines(
        counts
            .iter()
            .map(|(w, n)| format!("{w:<12} {}", n.unwrap_or(0))),
        20,
    );
    Ok(produced)
}

#[allow(dead_code)] // unused when a test includes this file as a module
#[tokio::main]
async fn main() -> common::MainResult {
    common::init_logging();
    let options = Options::parse(std::env::args().skip(1), USAGE);
    let log = Arc::new(Log::open(&options.data_dir)?);
    run(
        log,
        options.streams_config(APP)?,
        options.exit_when_caught_up,
    )
    .await?;
    common::print_cli_hints(&options, &[format!("consume {COUNTS} --value-format i64")]);
    Ok(())
}

const USAGE: &str =
    "usage: wordcount [--data-dir DIR] [--exit-when-caught-up] [--config KEY=VALUE]...

counts the words of the lines in 'text-lines' into 'word-counts'";
