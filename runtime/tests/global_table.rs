//! Global tables on the embedded log: bootstrapped from every partition of their topic
//! before any task processes a record, kept up to date while the app runs, queryable, and
//! restarted from the instance's checkpoint.

mod common;

use std::time::{Duration, Instant};

use common::*;
use freshet_log::Log;
use freshet_runtime::{StreamsApp, StreamsConfig};
use freshet_streams::{Consumed, Materialized, StreamsBuilder, Topology};

fn topology() -> freshet_streams::Result<Topology> {
    let builder = StreamsBuilder::new();
    let users = builder.global_table_with::<String, String>(
        "users",
        Consumed::default(),
        Materialized::named("user-names"),
    );
    builder
        .stream::<String, String>("clicks")
        .join_global(
            &users,
            |user, _page| user.clone(),
            |page, name| format!("{name} on {page}"),
        )
        .to("named-clicks");
    builder.build()
}

fn named(log: &Log) -> TestResult<Vec<String>> {
    let mut out = Vec::new();
    for r in read_all(log, "named-clicks")?.into_values().flatten() {
        out.push(String::from_utf8(
            r.value.as_deref().unwrap_or_default().to_vec(),
        )?);
    }
    out.sort();
    Ok(out)
}

fn clicks(users: &[&str], page: &str, ts: i64) -> Vec<(String, String, i64)> {
    users
        .iter()
        .map(|u| (u.to_string(), page.to_string(), ts))
        .collect()
}

#[tokio::test]
async fn global_tables_are_bootstrapped_kept_up_and_restarted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open_log(dir.path())?;
    create(&log, "users", 3)?;
    create(&log, "clicks", 2)?;
    let users: Vec<(String, String, i64)> = (0..30)
        .map(|i| (format!("u{i}"), format!("User {i}"), 0))
        .collect();
    produce(&log, "users", &users)?;
    // Clicks that come before the app starts join every user: the table is complete first.
    produce(
        &log,
        "clicks",
        &clicks(&["u1", "u17", "u29", "nobody"], "/a", 10),
    )?;

    let config = || StreamsConfig::new("enrich").with_commit_interval(Duration::from_millis(20));
    let mut app = StreamsApp::start(config(), topology()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    assert_eq!(
        named(&log)?,
        ["User 1 on /a", "User 17 on /a", "User 29 on /a"]
    );
    let names = app.store::<String, String>("user-names")?;
    assert_eq!(names.get(&"u17".to_string())?.as_deref(), Some("User 17"));
    assert_eq!(names.all()?.len(), 30);

    // The table follows its topic while the app runs.
    produce(&log, "users", &[("u1".to_string(), "Ann".to_string(), 20)])?;
    let start = Instant::now();
    while names.get(&"u1".to_string())?.as_deref() != Some("Ann") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the update never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    produce(&log, "clicks", &clicks(&["u1"], "/b", 30))?;
    let start = Instant::now();
    while !named(&log)?.contains(&"Ann on /b".to_string()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the click never joined"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.close().await?;
    // (A view keeps the instance's database, and so its state directory: a restart while
    // it lives would take another directory.)
    drop(names);

    // A restart resumes the table from the instance's checkpoint, with what changed since.
    produce(&log, "users", &[("u2".to_string(), "Bob".to_string(), 40)])?;
    produce(&log, "clicks", &clicks(&["u1", "u2"], "/c", 50))?;
    let mut app = StreamsApp::start(config(), topology()?, log.clone()).await?;
    app.wait_until_caught_up().await?;
    let names = app.store::<String, String>("user-names")?;
    assert_eq!(names.all()?.len(), 30);
    assert_eq!(app.state_dir(), dir.path().join("state").join("enrich"));
    app.close().await?;
    drop(names);
    let all = named(&log)?;
    assert!(all.contains(&"Ann on /c".to_string()), "{all:?}");
    assert!(all.contains(&"Bob on /c".to_string()), "{all:?}");
    assert_eq!(all.len(), 6);

    // A recreated topic is another table: the instance's copy is wiped and read again.
    log.delete_topic("users")?;
    create(&log, "users", 1)?;
    produce(&log, "users", &[("u9".to_string(), "Cy".to_string(), 60)])?;
    let mut app = StreamsApp::start(config(), topology()?, log.clone()).await?;
    let names = app.store::<String, String>("user-names")?;
    assert_eq!(names.all()?, [("u9".to_string(), "Cy".to_string())]);
    app.close().await?;
    Ok(())
}
