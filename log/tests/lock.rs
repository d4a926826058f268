//! One owner per data directory: a second writer — in this process or another — is refused
//! with an error naming the owner's pid, and the lock goes away with its owner.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{ChildProc, TestResult, CHILD_DIR_ENV};
use freshet_log::{Acks, Error, Isolation, Log, LogConfig, Record, TopicConfig};

const CHILD_TEST: &str = "lock_holder_child";

/// A log without the background cleaner, so dropping it releases the directory at once.
fn open(dir: &std::path::Path) -> freshet_log::Result<Log> {
    Log::open_with(
        dir,
        LogConfig {
            cleaner_interval: None,
            ..LogConfig::default()
        },
    )
}

#[test]
fn a_second_open_in_the_same_process_fails_naming_this_pid() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = open(dir.path())?;
    let me = std::process::id();
    let err = open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Locked { dir: d, pid: Some(pid) } if *pid == me && d == dir.path()),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&format!("pid {me}")), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    // The refused open changed nothing: the first handle still writes.
    first.create_topic("t", TopicConfig::partitions(1))?;
    first.append("t", 0, &[Record::new("k", "v")], Acks::Written)?;
    Ok(())
}

#[test]
fn opening_works_again_once_the_owner_is_dropped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = open(dir.path())?;
    first.create_topic("t", TopicConfig::partitions(1))?;
    first.append("t", 0, &[Record::new("k", "v")], Acks::Written)?;
    // Clones share the lock: it is held until the last one goes.
    let clone = first.clone();
    drop(first);
    assert!(matches!(open(dir.path()), Err(Error::Locked { .. })));
    drop(clone);
    let second = open(dir.path())?;
    assert_eq!(
        second
            .read("t", 0, 0, 1 << 20, Isolation::ReadCommitted)?
            .len(),
        1
    );
    drop(second);
    // And again with the default settings (background cleaner on).
    drop(Log::open(dir.path())?);
    drop(Log::open(dir.path())?);
    Ok(())
}

#[test]
fn a_closed_log_still_holds_the_lock_until_dropped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    log.close()?;
    let err = log
        .append("t", 0, &[Record::new("k", "v")], Acks::Written)
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err}");
    assert!(matches!(open(dir.path()), Err(Error::Locked { .. })));
    drop(log);
    drop(open(dir.path())?);
    Ok(())
}

/// Holds the lock of the parent's data dir until it is killed.
#[test]
#[ignore = "the lock holder of a_lock_held_by_another_process_names_its_pid, run in a child process"]
fn lock_holder_child() -> TestResult {
    let Some(dir) = common::child_dir() else {
        return Ok(());
    };
    let log = Log::open(&dir)?;
    if !log.topic_exists("t") {
        log.create_topic("t", TopicConfig::partitions(1))?;
        log.append("t", 0, &[Record::new("k", "from-child")], Acks::Written)?;
    }
    let mut out = std::io::stdout().lock();
    // The test harness has printed "test <name> ... " without a newline: end that line.
    writeln!(out, "\nready")?;
    out.flush()?;
    // Until killed (or, should the parent be gone, a minute later).
    std::thread::sleep(Duration::from_secs(60));
    drop(log);
    Ok(())
}

#[test]
fn a_lock_held_by_another_process_names_its_pid() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut child = ChildProc::spawn(
        CHILD_TEST,
        &[(CHILD_DIR_ENV, dir.path().display().to_string())],
    )?;
    child.wait_for_line("ready", Duration::from_secs(30))?;
    let child_pid = child.pid();

    let err = open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Locked { pid: Some(pid), .. } if *pid == child_pid),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("pid {child_pid}")),
        "{err}"
    );

    // Other processes may read, and their writes name the owner.
    let reader = Log::open_read_only(dir.path())?;
    assert_eq!(
        reader.read("t", 0, 0, 1 << 20, Isolation::ReadCommitted)?[0]
            .value
            .as_deref(),
        Some(&b"from-child"[..])
    );
    let err = reader
        .append("t", 0, &[Record::new("k", "v")], Acks::Written)
        .unwrap_err();
    assert!(
        matches!(&err, Error::ReadOnly { pid: Some(pid), .. } if *pid == child_pid),
        "{err}"
    );

    // The lock dies with its owner, however it dies.
    child.kill_and_collect()?;
    let log = open(dir.path())?;
    log.append("t", 0, &[Record::new("k", "from-parent")], Acks::Written)?;
    assert_eq!(log.offsets("t", 0)?.end, 2);
    drop(log);

    // And a new owner's pid is the one named.
    let mut child = ChildProc::spawn(
        CHILD_TEST,
        &[(CHILD_DIR_ENV, dir.path().display().to_string())],
    )?;
    child.wait_for_line("ready", Duration::from_secs(30))?;
    let err = open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Locked { pid: Some(pid), .. } if *pid == child.pid()),
        "{err}"
    );
    Ok(())
}

#[test]
fn dropping_the_last_handle_releases_the_lock_even_while_the_cleaner_runs(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = || freshet_log::LogConfig {
        cleaner_interval: Some(std::time::Duration::from_millis(1)),
        ..freshet_log::LogConfig::default()
    };
    {
        let log = Log::open_with(dir.path(), config())?;
        log.create_topic("t", freshet_log::TopicConfig::partitions(8))?;
    }
    for _ in 0..50 {
        let log = Log::open_with(dir.path(), config())?;
        std::thread::sleep(std::time::Duration::from_millis(2));
        drop(log);
    }
    Ok(())
}
