//! `freshet app …`: streams applications. `app reset` is Kafka's
//! `kafka-streams-application-reset`: it makes an application start over on its input.
//!
//! What a reset does, for application id `APP` (its consumer group is `APP` too):
//! - **input topics**: the group's committed offsets of every topic it committed, other than
//!   its internal topics, go back to each partition's first offset, without metadata (so
//!   the stream times committed with them go too);
//! - **internal topics**: `APP-…-repartition` and `APP-…-changelog` are deleted (with
//!   their committed offsets; those of another app whose id starts with `APP-` stay); the
//!   next start creates them again;
//! - **local state**: the application's state directories — `<data dir>/state/APP` and the
//!   `APP.instance-<n>` beside it, or under `--state-dir DIR` (the app's `state.dir`) — are
//!   deleted.
//!
//! Output topics are left as they are. The reset refuses while the application runs: its
//! process owns the data directory (the log's lock), and each running instance holds its
//! state directory's lock. Nothing is changed unless every check passes.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use freshet_log::{Log, OffsetAndMetadata};

use crate::error::{CliError, Result};
use crate::open::{open, Access};
use crate::output::Output;

/// The `app` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// Make a streams application start over: input offsets to earliest, internal topics
    /// deleted, local state wiped (refused while the application runs).
    Reset(ResetArgs),
}

/// Arguments of `app reset`.
#[derive(Debug, Args)]
pub(crate) struct ResetArgs {
    /// The application's `application.id`.
    app_id: String,
    /// The application's `state.dir`, when it set one (its state is in `DIR/APP_ID`);
    /// by default `<data dir>/state/APP_ID`.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// Runs an `app` subcommand against the data directory `dir`.
pub(crate) fn run(dir: &Path, command: AppCommand) -> Result<()> {
    match command {
        AppCommand::Reset(args) => reset(dir, &args),
    }
}

fn refused(app: &str, why: String) -> CliError {
    CliError::Usage(format!("cannot reset application '{app}': {why}"))
}

/// Whether `topic` is one of `app`'s internal topics, and not one of an app whose id
/// extends `app`'s (`app-x`, among `others`: the groups on the log).
fn is_internal(app: &str, topic: &str, others: &[String]) -> bool {
    let named = |id: &str| {
        topic
            .strip_prefix(id)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| rest.ends_with("-repartition") || rest.ends_with("-changelog"))
    };
    named(app)
        && !others
            .iter()
            .any(|o| o.len() > app.len() && o.starts_with(app) && named(o))
}

fn reset(dir: &Path, args: &ResetArgs) -> Result<()> {
    let app = args.app_id.as_str();
    if app.is_empty() {
        return Err(CliError::Usage("the application id is empty".into()));
    }
    let log = match open(dir, Access::Write) {
        Ok(log) => log,
        Err(CliError::Log(freshet_log::Error::Locked { pid, .. })) => {
            let owner =
                pid.map_or_else(|| "another process".to_string(), |p| format!("process {p}"));
            return Err(refused(
                app,
                format!("the data dir is in use by {owner}, which may be running it (stop the application first)"),
            ));
        }
        Err(e) => return Err(e),
    };
    let base = match &args.state_dir {
        Some(d) => d.join(app),
        None => dir.join("state").join(app),
    };
    let state_dirs = freshet_runtime::app_state_dirs(&base).map_err(|source| CliError::Io {
        op: "list the application's state directories",
        source,
    })?;
    for d in &state_dirs {
        let in_use = freshet_runtime::state_dir_in_use(d).map_err(|source| CliError::Io {
            op: "check a state directory's lock",
            source,
        })?;
        if in_use {
            return Err(refused(
                app,
                format!("an instance is running with state dir {}", d.display()),
            ));
        }
    }
    let others = log.list_groups()?;
    let internal: Vec<String> = log
        .list_topics()?
        .into_iter()
        .filter(|t| is_internal(app, t, &others))
        .collect();
    let mut inputs: Vec<String> = log
        .committed_offsets(app)?
        .into_keys()
        .map(|(topic, _)| topic)
        .filter(|t| !is_internal(app, t, &others) && log.topic_exists(t))
        .collect();
    inputs.dedup();
    if internal.is_empty() && inputs.is_empty() && state_dirs.is_empty() {
        return Err(CliError::Usage(format!(
            "no application '{app}' here: no committed offsets, internal topics or state (wrong id, --data-dir or --state-dir?)"
        )));
    }

    let mut out = Output::stdout();
    for topic in &inputs {
        let offsets = earliest(&log, topic)?;
        log.commit_offsets(app, None, &offsets)?;
        out.line(&format!(
            "input topic {topic}: {} partitions reset to earliest",
            offsets.len()
        ))?;
    }
    for topic in &internal {
        log.delete_topic(topic)?;
        out.line(&format!("internal topic {topic}: deleted"))?;
    }
    for d in &state_dirs {
        std::fs::remove_dir_all(d).map_err(|source| CliError::Io {
            op: "delete a state directory",
            source,
        })?;
        out.line(&format!("local state {}: deleted", d.display()))?;
    }
    out.flush()
}

/// Every partition of `topic` at its first offset, without metadata.
fn earliest(log: &Log, topic: &str) -> Result<Vec<(String, u32, OffsetAndMetadata)>> {
    let mut offsets = Vec::new();
    for p in 0..log.partition_count(topic)? {
        let start = log.offsets(topic, p)?.start;
        offsets.push((topic.to_string(), p, OffsetAndMetadata::new(start)));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::is_internal;

    #[test]
    fn internal_topics_are_the_apps_repartition_and_changelog_topics() {
        let none = &[];
        assert!(is_internal("app", "app-counts-changelog", none));
        assert!(is_internal(
            "app",
            "app-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition",
            none
        ));
        assert!(!is_internal("app", "app-counts", none));
        assert!(!is_internal("app", "apps-counts-changelog", none));
        assert!(!is_internal("app", "views", none));
        assert!(!is_internal("app", "other-x-changelog", none));
        // App `app-b`'s topics are not app `app`'s.
        let others = ["app".to_string(), "app-b".to_string()];
        assert!(!is_internal("app", "app-b-counts-changelog", &others));
        assert!(is_internal("app", "app-c-counts-changelog", &others));
    }
}
