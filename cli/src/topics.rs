//! `freshet topics …`: create, list, describe, alter and delete topics.

use std::path::Path;

use clap::{Args, Subcommand};
use freshet_log::{TopicConfig, TopicDescription};

use crate::error::Result;
use crate::open::{open, Access};
use crate::output::Output;
use crate::table::{Align, Table};

/// The `topics` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TopicsCommand {
    /// Create a topic (and the data directory when it is missing).
    Create(CreateArgs),
    /// List topic names, one per line.
    List,
    /// Show a topic's id, per-partition offsets and sizes, and settings.
    Describe {
        /// The topic.
        name: String,
    },
    /// Add partitions to a topic and/or change its settings.
    Alter(AlterArgs),
    /// Delete a topic and all its data.
    Delete {
        /// The topic.
        name: String,
    },
}

/// Arguments of `topics create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The topic name: 1–249 of ASCII letters, digits, '.', '_' and '-'.
    name: String,
    /// Number of partitions.
    #[arg(long, value_name = "N")]
    partitions: u32,
    /// A topic setting by its Kafka name, e.g. retention.ms=86400000 (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_setting)]
    configs: Vec<(String, String)>,
}

/// Arguments of `topics alter`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
pub(crate) struct AlterArgs {
    /// The topic.
    name: String,
    /// The new partition count (partitions can only be added).
    #[arg(long, value_name = "N", group = "change")]
    partitions: Option<u32>,
    /// A topic setting by its Kafka name, e.g. cleanup.policy=compact (repeatable).
    #[arg(
        long = "config",
        value_name = "KEY=VALUE",
        value_parser = parse_setting,
        group = "change"
    )]
    configs: Vec<(String, String)>,
}

/// Parses `key=value` (the value may itself hold `=`).
pub(crate) fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

/// Runs a `topics` subcommand against the data directory `dir`.
pub(crate) fn run(dir: &Path, command: TopicsCommand) -> Result<()> {
    let mut out = Output::stdout();
    match command {
        TopicsCommand::Create(args) => {
            let mut config = TopicConfig::partitions(args.partitions);
            for (key, value) in &args.configs {
                config.set(key, value)?;
            }
            let log = open(dir, Access::Create)?;
            let desc = log.create_topic(&args.name, config)?;
            out.line(&format!(
                "created topic {} (id {}, {})",
                desc.name,
                desc.id,
                partitions_text(desc.partitions.len())
            ))?;
        }
        TopicsCommand::List => {
            let log = open(dir, Access::Read)?;
            for name in log.list_topics()? {
                out.line(&name)?;
            }
        }
        TopicsCommand::Describe { name } => {
            let log = open(dir, Access::Read)?;
            print_description(&log.describe_topic(&name)?, &mut out)?;
        }
        TopicsCommand::Alter(args) => {
            let log = open(dir, Access::Write)?;
            let desc = log.alter_topic(&args.name, args.partitions, &args.configs)?;
            out.line(&format!(
                "altered topic {} (id {}, {})",
                desc.name,
                desc.id,
                partitions_text(desc.partitions.len())
            ))?;
        }
        TopicsCommand::Delete { name } => {
            let log = open(dir, Access::Write)?;
            log.delete_topic(&name)?;
            out.line(&format!("deleted topic {name}"))?;
        }
    }
    out.flush()
}

fn partitions_text(n: usize) -> String {
    if n == 1 {
        "1 partition".to_string()
    } else {
        format!("{n} partitions")
    }
}

/// Prints what `topics describe` shows: identity, a table of partitions, then the settings
/// as `key=value` lines (easy to grep, and the form `--config` takes).
fn print_description(desc: &TopicDescription, out: &mut Output) -> Result<()> {
    let mut head = Table::new(&[("", Align::Left), ("", Align::Left)]);
    head.row(vec!["topic".into(), desc.name.clone()]);
    head.row(vec!["id".into(), desc.id.to_string()]);
    head.row(vec!["partitions".into(), desc.partitions.len().to_string()]);
    // Skip the (empty) header line of the two-column layout.
    for line in head.lines().iter().skip(1) {
        out.line(line)?;
    }
    out.line("")?;
    let mut parts = Table::new(&[
        ("partition", Align::Right),
        ("start", Align::Right),
        ("end", Align::Right),
        ("last-stable", Align::Right),
        ("size-bytes", Align::Right),
        ("segments", Align::Right),
    ]);
    for p in &desc.partitions {
        parts.row(vec![
            p.partition.to_string(),
            p.offsets.start.to_string(),
            p.offsets.end.to_string(),
            p.offsets.last_stable.to_string(),
            p.size_bytes.to_string(),
            p.segments.to_string(),
        ]);
    }
    parts.print(out)?;
    out.line("")?;
    out.line("config")?;
    for (key, value) in desc.config.to_map() {
        out.line(&format!("  {key}={value}"))?;
    }
    Ok(())
}
