//! A first look at freshet's embedded log: no broker, no cluster, just a directory.
//!
//! Creates a `page-views` topic, produces page views keyed by user, then runs an
//! exactly-once read-process-write step by hand: a consumer group reads the new views,
//! counts them per user, and writes the counts to `views-per-user` in one transaction
//! together with the group's offsets. Run it twice: the second run counts only the new views.
//!
//! ```sh
//! cargo run --release --example log_quickstart [-- --data-dir DIR]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use freshet::log::{Acks, Isolation, Log, OffsetAndMetadata, ProducerConfig, Record, TopicConfig};

const VIEWS: &str = "page-views";
const COUNTS: &str = "views-per-user";
const GROUP: &str = "quickstart-counter";
const PAGES: [&str; 5] = ["/", "/pricing", "/docs", "/blog", "/signup"];

/// What one run did.
#[derive(Debug)]
#[allow(dead_code)] // fields are read by the test that runs this example
pub(crate) struct Summary {
    /// Page views produced in this run.
    pub(crate) produced: usize,
    /// Page views the group read and counted in this run.
    pub(crate) counted: usize,
    /// Count per user written to `views-per-user` in this run.
    pub(crate) counts: BTreeMap<String, u64>,
}

/// Runs the demo against the data directory `dir`.
pub(crate) fn run(dir: &Path, views: usize) -> freshet::Result<Summary> {
    let log = Log::open(dir)?;
    for (topic, partitions) in [(VIEWS, 4), (COUNTS, 4)] {
        if !log.topic_exists(topic) {
            log.create_topic(topic, TopicConfig::partitions(partitions))?;
        }
    }

    // 1. Produce page views, keyed by user: Kafka's partitioner sends a user's views to one
    //    partition.
    let producer = log.producer(ProducerConfig::default());
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ views as u64;
    for i in 0..views {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let user = format!("user-{}", seed % 20);
        let page = PAGES[(seed >> 8) as usize % PAGES.len()];
        let _ack = producer.send(
            VIEWS,
            Record::new(user, page).with_header("seq", i.to_string()),
        );
    }
    producer.flush()?;

    // 2. Read what the group has not seen yet, count per user.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut next_offsets = Vec::new();
    let mut counted = 0;
    for p in 0..log.partition_count(VIEWS)? {
        let start = log
            .committed_offset(GROUP, VIEWS, p)?
            .map_or(log.offsets(VIEWS, p)?.start, |c| c.offset);
        let mut pos = start;
        let end = log.offsets(VIEWS, p)?.last_stable;
        while pos < end {
            let records = log.read(VIEWS, p, pos, 1 << 20, Isolation::ReadCommitted)?;
            let Some(last) = records.last() else { break };
            pos = last.offset + 1;
            for r in &records {
                let user = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default());
                *counts.entry(user.into_owned()).or_default() += 1;
                counted += 1;
            }
        }
        next_offsets.push((VIEWS.to_string(), p, OffsetAndMetadata::new(pos)));
    }

    // 3. Write the counts and the group's offsets in one transaction: both or neither.
    let mut tx = log.transactional_producer("quickstart-counter-0", Acks::Written)?;
    tx.begin()?;
    for (user, n) in &counts {
        tx.send(COUNTS, Record::new(user.clone(), n.to_string()))?;
    }
    tx.send_offsets(GROUP, None, &next_offsets)?;
    tx.commit()?;
    log.close()?;
    Ok(Summary {
        produced: views,
        counted,
        counts,
    })
}

#[allow(dead_code)] // unused when the test includes this file as a module
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from("./freshet-data");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data-dir" => dir = args.next().ok_or("--data-dir needs a value")?.into(),
            other => return Err(format!("unknown argument '{other}'").into()),
        }
    }
    let summary = run(&dir, 10_000)?;
    println!(
        "produced {} page views to '{VIEWS}' in {}",
        summary.produced,
        dir.display()
    );
    println!(
        "counted {} new views for {} users; counts and offsets committed in one transaction",
        summary.counted,
        summary.counts.len()
    );
    let mut top: Vec<_> = summary.counts.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (user, n) in top.iter().take(5) {
        println!("  {user:<8} {n:>6}");
    }
    let d = dir.display();
    println!("\nlook inside with the CLI:");
    println!("  cargo run --release -p freshet-cli -- --data-dir {d} topics describe {VIEWS}");
    println!("  cargo run --release -p freshet-cli -- --data-dir {d} consume {COUNTS}");
    println!("  cargo run --release -p freshet-cli -- --data-dir {d} groups describe {GROUP}");
    Ok(())
}
