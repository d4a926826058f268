//! `freshet consume`: print the records of a topic, one per line.
//!
//! Without `--follow` the command stops once it has caught up: every partition read up to
//! its last stable offset (read_committed) or log end offset (read_uncommitted), as they
//! were when it looked. With `--group` the positions reached are committed for the group
//! when the command ends (and every few seconds while it follows), counting only records
//! handed to standard output.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use freshet_log::{Consumer, FetchOptions, Isolation, Log, OffsetAndMetadata, SeekTo};

use crate::error::{CliError, Result};
use crate::format::{format_record, FieldFormat, LineFormat, OutputRecord};
use crate::open::{open, Access};
use crate::output::Output;

/// How often a following consumer with `--group` commits its positions.
const COMMIT_EVERY: Duration = Duration::from_secs(5);

/// Arguments of `consume`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("start").multiple(false))]
pub(crate) struct ConsumeArgs {
    /// The topic to read.
    topic: String,
    /// Start at the first stored record, even when the group has committed offsets
    /// (default: from the beginning, or the group's committed offset).
    #[arg(long, group = "start")]
    from_beginning: bool,
    /// Start at this offset (needs --partition unless the topic has one partition).
    #[arg(long, value_name = "N", group = "start")]
    offset: Option<i64>,
    /// Start at the first record with a timestamp at or after T (ms since the epoch).
    #[arg(long, value_name = "T", group = "start")]
    from_time: Option<i64>,
    /// Read only this partition (default: all).
    #[arg(long, value_name = "P")]
    partition: Option<u32>,
    /// Start from this consumer group's committed offsets and commit the positions reached.
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Output line layout: `key<TAB>value` (null as \N), or one JSON object per line with
    /// partition, offset, timestamp, key, value and headers.
    #[arg(long, value_enum, default_value_t = LineFormat::Tsv)]
    format: LineFormat,
    /// How keys are shown.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FieldFormat::String)]
    key_format: FieldFormat,
    /// How values are shown.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FieldFormat::String)]
    value_format: FieldFormat,
    /// Keep waiting for new records instead of stopping once caught up (Ctrl-C ends it).
    #[arg(long)]
    follow: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    /// Which records are visible: committed transactions only, or everything written.
    #[arg(long, value_enum, default_value_t = IsolationArg::ReadCommitted)]
    isolation: IsolationArg,
}

/// `--isolation` values, spelled as Kafka's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum IsolationArg {
    /// Only records of committed transactions, up to the last stable offset.
    #[value(name = "read_committed", alias = "read-committed")]
    ReadCommitted,
    /// Every record written, aborted transactions included.
    #[value(name = "read_uncommitted", alias = "read-uncommitted")]
    ReadUncommitted,
}

impl From<IsolationArg> for Isolation {
    fn from(i: IsolationArg) -> Isolation {
        match i {
            IsolationArg::ReadCommitted => Isolation::ReadCommitted,
            IsolationArg::ReadUncommitted => Isolation::ReadUncommitted,
        }
    }
}

/// Runs `consume` against the data directory `dir`.
pub(crate) async fn run(dir: &Path, args: ConsumeArgs) -> Result<()> {
    // Committing needs the writable log; plain reading never takes ownership, so
    // `freshet produce` in another shell can write meanwhile.
    let access = if args.group.is_some() {
        Access::Write
    } else {
        Access::Read
    };
    let log = open(dir, access)?;
    let max_records = args.max.map_or(10_000, |m| m.clamp(1, 10_000) as usize);
    let mut consumer = log.consumer(FetchOptions {
        isolation: args.isolation.into(),
        max_records,
        ..FetchOptions::default()
    });
    for partition in partitions(&log, &args)? {
        let start = start_position(&log, &args, partition)?;
        consumer.assign(&args.topic, partition, start)?;
    }
    let positions = consumer
        .positions()
        .iter()
        .map(|((_, p), &o)| (*p, o))
        .collect();
    let mut run = Run {
        log,
        args,
        consumer,
        out: Output::stdout(),
        printed: 0,
        positions,
        delivered: BTreeMap::new(),
        committed: BTreeMap::new(),
    };
    run.delivered = run.positions.clone();
    let result = run.consume().await;
    // Commit what reached the reader even when output or reading failed part-way.
    let committed = run.commit();
    match result {
        Ok(()) => committed,
        Err(e) => {
            if let Err(c) = committed {
                tracing::warn!(error = %c, "could not commit the group's offsets");
            }
            Err(e)
        }
    }
}

/// The partitions to read: the one asked for (checked), else all.
fn partitions(log: &Log, args: &ConsumeArgs) -> Result<Vec<u32>> {
    let n = log.partition_count(&args.topic)?;
    match args.partition {
        Some(p) if p >= n => Err(freshet_log::Error::UnknownPartition {
            topic: args.topic.clone(),
            partition: p,
            partitions: n,
        }
        .into()),
        Some(p) => Ok(vec![p]),
        None if args.offset.is_some() && n != 1 => Err(CliError::Usage(format!(
            "--offset needs --partition: topic '{}' has {n} partitions",
            args.topic
        ))),
        None => Ok((0..n).collect()),
    }
}

/// Where reading of `partition` starts: an explicit flag, else the group's committed offset,
/// else the beginning.
fn start_position(log: &Log, args: &ConsumeArgs, partition: u32) -> Result<SeekTo> {
    if let Some(offset) = args.offset {
        return Ok(SeekTo::Offset(offset));
    }
    if let Some(time) = args.from_time {
        return Ok(SeekTo::Timestamp(time));
    }
    let committed = match (&args.group, args.from_beginning) {
        (Some(group), false) => log.committed_offset(group, &args.topic, partition)?,
        _ => None,
    };
    let Some(committed) = committed else {
        return Ok(SeekTo::Beginning);
    };
    // Like Kafka's auto.offset.reset, a committed offset outside the stored range (retention
    // deleted past it, or the topic was recreated) restarts at the nearest valid end.
    let offsets = log.offsets(&args.topic, partition)?;
    let at = committed.offset;
    Ok(if at < offsets.start {
        tracing::warn!(topic = %args.topic, partition, committed = at, start = offsets.start,
            "committed offset is below the log start; starting at the log start");
        SeekTo::Beginning
    } else if at > offsets.end {
        tracing::warn!(topic = %args.topic, partition, committed = at, end = offsets.end,
            "committed offset is past the log end; starting at the end");
        SeekTo::End
    } else {
        SeekTo::Offset(at)
    })
}

/// State of one `consume` run.
#[derive(Debug)]
struct Run {
    log: Log,
    args: ConsumeArgs,
    consumer: Consumer,
    out: Output,
    printed: u64,
    /// Per partition, the offset after the last record written to the output buffer.
    positions: BTreeMap<u32, i64>,
    /// Per partition, the offset after the last record flushed to standard output.
    delivered: BTreeMap<u32, i64>,
    /// What was last committed for the group.
    committed: BTreeMap<u32, i64>,
}

impl Run {
    fn done(&self) -> bool {
        self.args.max.is_some_and(|max| self.printed >= max)
    }

    async fn consume(&mut self) -> Result<()> {
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut last_commit = Instant::now();
        while !self.done() {
            if !self.args.follow && self.consumer.caught_up()? {
                break;
            }
            let fetched = tokio::select! {
                fetched = self.consumer.poll() => fetched?,
                () = &mut shutdown => break,
            };
            'batch: for f in fetched {
                for r in &f.records {
                    let line = format_record(
                        &OutputRecord {
                            partition: f.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            key: r.key.as_deref(),
                            value: r.value.as_deref(),
                            headers: &r.headers,
                        },
                        self.args.format,
                        self.args.key_format,
                        self.args.value_format,
                    );
                    self.out.line(&line)?;
                    self.printed += 1;
                    self.positions.insert(f.partition, r.offset + 1);
                    if self.done() {
                        break 'batch;
                    }
                }
                // Past the batch's markers and aborted records too.
                self.positions.insert(f.partition, f.next_offset);
            }
            self.out.flush()?;
            self.delivered.clone_from(&self.positions);
            if self.args.follow && last_commit.elapsed() >= COMMIT_EVERY {
                self.commit()?;
                last_commit = Instant::now();
            }
        }
        self.out.flush()?;
        self.delivered.clone_from(&self.positions);
        Ok(())
    }

    /// Commits the delivered positions for `--group`, when they moved since the last commit.
    fn commit(&mut self) -> Result<()> {
        let Some(group) = &self.args.group else {
            return Ok(());
        };
        if self.delivered == self.committed {
            return Ok(());
        }
        let offsets: Vec<(String, u32, OffsetAndMetadata)> = self
            .delivered
            .iter()
            .map(|(&p, &o)| (self.args.topic.clone(), p, OffsetAndMetadata::new(o)))
            .collect();
        self.log.commit_offsets(group, None, &offsets)?;
        self.committed.clone_from(&self.delivered);
        Ok(())
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so a following consumer ends cleanly and commits.
///
/// The handlers are installed here, before the first record is printed, not when the
/// future is first polled: a `select!` that finds records ready may not poll it for a
/// while, and a signal arriving before then would kill the process without a commit.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        // A handler that cannot be installed never fires (the default action stays).
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}
