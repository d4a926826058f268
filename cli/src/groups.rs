//! `freshet groups …`: consumer groups, their lag, and resetting their offsets.

use std::path::Path;

use clap::{Args, Subcommand};
use freshet_log::{Log, OffsetAndMetadata};

use crate::error::Result;
use crate::open::{open, Access};
use crate::output::Output;
use crate::table::{Align, Table};

/// The `groups` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// List groups that have committed offsets or members, one per line.
    List,
    /// Show a group's committed offset, end (last stable offset) and lag per partition.
    Describe {
        /// The group.
        group: String,
    },
    /// Set a group's committed offsets for every partition of a topic (the group must have
    /// no running members).
    ResetOffsets(ResetArgs),
}

/// Arguments of `groups reset-offsets`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("to").required(true).multiple(false))]
pub(crate) struct ResetArgs {
    /// The group.
    group: String,
    /// The topic whose partitions are reset.
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// To each partition's first stored offset.
    #[arg(long, group = "to")]
    to_earliest: bool,
    /// To each partition's last stable offset (nothing left to read).
    #[arg(long, group = "to")]
    to_latest: bool,
    /// To this offset, clamped to each partition's stored range.
    #[arg(long, value_name = "N", group = "to")]
    to_offset: Option<i64>,
    /// To the first record with a timestamp at or after T (ms since the epoch), else the end.
    #[arg(long, value_name = "T", group = "to")]
    to_time: Option<i64>,
}

/// Runs a `groups` subcommand against the data directory `dir`.
pub(crate) fn run(dir: &Path, command: GroupsCommand) -> Result<()> {
    let mut out = Output::stdout();
    match command {
        GroupsCommand::List => {
            let log = open(dir, Access::Read)?;
            for group in log.list_groups()? {
                out.line(&group)?;
            }
        }
        GroupsCommand::Describe { group } => {
            let log = open(dir, Access::Read)?;
            let mut table = Table::new(&[
                ("topic", Align::Left),
                ("partition", Align::Right),
                ("committed", Align::Right),
                ("end", Align::Right),
                ("lag", Align::Right),
            ]);
            for lag in log.group_lag(&group)? {
                table.row(vec![
                    lag.topic,
                    lag.partition.to_string(),
                    lag.committed
                        .map_or_else(|| "-".to_string(), |c| c.to_string()),
                    lag.end.to_string(),
                    lag.lag.to_string(),
                ]);
            }
            table.print(&mut out)?;
        }
        GroupsCommand::ResetOffsets(args) => {
            let log = open(dir, Access::Write)?;
            let offsets = reset_targets(&log, &args)?;
            log.commit_offsets(&args.group, None, &offsets)?;
            let mut table = Table::new(&[
                ("topic", Align::Left),
                ("partition", Align::Right),
                ("new-offset", Align::Right),
            ]);
            for (topic, partition, om) in offsets {
                table.row(vec![topic, partition.to_string(), om.offset.to_string()]);
            }
            table.print(&mut out)?;
        }
    }
    out.flush()
}

/// The new committed offset of every partition of the topic.
fn reset_targets(log: &Log, args: &ResetArgs) -> Result<Vec<(String, u32, OffsetAndMetadata)>> {
    let mut targets = Vec::new();
    for partition in 0..log.partition_count(&args.topic)? {
        let offsets = log.offsets(&args.topic, partition)?;
        let offset = if args.to_earliest {
            offsets.start
        } else if let Some(n) = args.to_offset {
            n.clamp(offsets.start, offsets.end)
        } else if let Some(t) = args.to_time {
            log.offset_for_time(&args.topic, partition, t)?
                .unwrap_or(offsets.last_stable)
        } else {
            // --to-latest (clap requires exactly one of the four).
            offsets.last_stable
        };
        targets.push((
            args.topic.clone(),
            partition,
            OffsetAndMetadata::new(offset),
        ));
    }
    Ok(targets)
}
