//! `freshet app reset`: a streams application's input offsets go back to the earliest, its
//! internal topics and local state go, and it starts over; refused while it runs.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{fails, ok, TestResult};
use freshet_log::{Acks, Isolation, Log, Record, TopicConfig};
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Materialized, StreamsBuilder, Topology};

fn counter() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("views")
        .group_by(|_user, page| page.clone())
        .count_with(Materialized::named("counts").with_caching_disabled())
        .to_stream()
        .to("page-counts");
    builder.build()
}

/// Appends `n` views of pages `/a`, `/b`, `/c` in turn.
fn put_views(log: &Log, n: usize) -> TestResult {
    for i in 0..n {
        let record =
            Record::new(format!("u{i}"), ["/a", "/b", "/c"][i % 3]).with_timestamp(i as i64);
        log.append("views", (i % 2) as u32, &[record], Acks::Written)?;
    }
    Ok(())
}

/// Runs the app on `dir` until it is caught up (the log is closed again after).
fn run_app(dir: &Path, config: StreamsConfig) -> TestResult {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let log = Arc::new(Log::open(dir)?);
        let mut app = StreamsApp::start(config, counter()?, log).await?;
        app.run_until_caught_up().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

/// Each page's counts on `page-counts`, in order.
fn counts(dir: &Path) -> TestResult<BTreeMap<String, Vec<i64>>> {
    let log = Log::open_read_only(dir)?;
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for p in 0..log.partition_count("page-counts")? {
        for r in log.read("page-counts", p, 0, 1 << 20, Isolation::ReadCommitted)? {
            let key = String::from_utf8(r.key.as_deref().unwrap_or_default().to_vec())?;
            let v: [u8; 8] = r.value.as_deref().unwrap_or_default().try_into()?;
            out.entry(key).or_default().push(i64::from_be_bytes(v));
        }
    }
    Ok(out)
}

fn topics(dir: &Path) -> TestResult<Vec<String>> {
    Ok(ok(dir, &["topics", "list"], "")?
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect())
}

#[test]
fn a_reset_app_starts_over_on_its_input() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    {
        let log = Log::open(d)?;
        log.create_topic("views", TopicConfig::partitions(2))?;
        put_views(&log, 30)?;
    }
    run_app(d, StreamsConfig::new("counter"))?;
    assert_eq!(counts(d)?["/a"], (1..=10).collect::<Vec<_>>());
    assert!(d.join("state").join("counter").is_dir());
    let before = topics(d)?;
    assert!(
        before.contains(&"counter-counts-changelog".to_string()),
        "{before:?}"
    );

    let printed = ok(d, &["app", "reset", "counter"], "")?;
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines[0],
        "input topic views: 2 partitions reset to earliest"
    );
    assert!(
        lines.contains(&"internal topic counter-counts-changelog: deleted"),
        "{printed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("internal topic counter-")
                && l.ends_with("-repartition: deleted")),
        "{printed}"
    );
    assert_eq!(
        lines.last().copied(),
        Some(
            format!(
                "local state {}: deleted",
                d.join("state").join("counter").display()
            )
            .as_str()
        )
    );
    assert!(!d.join("state").join("counter").exists());
    let after = topics(d)?;
    assert!(
        after.iter().all(|t| !t.starts_with("counter-")),
        "{after:?}"
    );
    let described = ok(d, &["groups", "describe", "counter"], "")?;
    for line in described.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[0], "views", "{described}");
        assert_eq!(cols[2], "0", "offsets back at the start: {described}");
    }

    // The app counts everything again, from one.
    run_app(d, StreamsConfig::new("counter"))?;
    let again = counts(d)?;
    let twice: Vec<i64> = (1..=10).chain(1..=10).collect();
    assert_eq!(again["/a"], twice);
    assert_eq!(again["/c"], twice);
    Ok(())
}

#[test]
fn a_reset_wipes_the_state_dir_the_app_was_given() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = tempfile::tempdir()?;
    let d = dir.path();
    {
        let log = Log::open(d)?;
        log.create_topic("views", TopicConfig::partitions(2))?;
        put_views(&log, 9)?;
    }
    run_app(
        d,
        StreamsConfig::new("counter").with_state_dir(state.path()),
    )?;
    assert!(state.path().join("counter").is_dir());
    let state_arg = state.path().display().to_string();
    ok(
        d,
        &["app", "reset", "counter", "--state-dir", &state_arg],
        "",
    )?;
    assert!(!state.path().join("counter").exists());
    Ok(())
}

#[test]
fn a_reset_is_refused_while_the_app_runs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let rt = tokio::runtime::Runtime::new()?;
    let log = Arc::new(Log::open(d)?);
    log.create_topic("views", TopicConfig::partitions(2))?;
    put_views(&log, 9)?;
    let mut app = rt.block_on(StreamsApp::start(
        StreamsConfig::new("counter"),
        counter()?,
        log.clone(),
    ))?;
    rt.block_on(app.wait_until_caught_up())?;
    let line = fails(d, &["app", "reset", "counter"], "")?;
    assert_eq!(
        line,
        format!(
            "error: cannot reset application 'counter': the data dir is in use by process {}, which may be running it (stop the application first)",
            std::process::id()
        )
    );
    rt.block_on(app.close())?;
    drop(app);
    drop(log);
    // Nothing was changed.
    assert_eq!(counts(d)?["/a"], vec![1, 2, 3]);
    assert!(d.join("state").join("counter").is_dir());
    Ok(())
}

#[test]
fn resetting_an_unknown_app_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    common::create_topic(d, "views", 1)?;
    let line = fails(d, &["app", "reset", "nope"], "")?;
    assert_eq!(
        line,
        "error: no application 'nope' here: no committed offsets, internal topics or state (wrong id, --data-dir or --state-dir?)"
    );
    Ok(())
}
