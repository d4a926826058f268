//! `consume --follow`: prints records as they arrive; with a group, commits on Ctrl-C.

mod common;

use common::{create_topic, ok, Background, TestResult};

#[test]
fn a_follower_prints_new_records_and_lets_producers_write() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    create_topic(d, "t", 1)?;
    ok(d, &["produce", "t"], "k\tbefore\n")?;

    let follower = Background::start(d, &["consume", "t", "--follow"])?;
    assert_eq!(follower.next_line()?, "k\tbefore");
    // Without a group the follower does not own the data dir, so producing works.
    ok(d, &["produce", "t"], "k\tafter-1\nk\tafter-2\n")?;
    assert_eq!(follower.next_line()?, "k\tafter-1");
    assert_eq!(follower.next_line()?, "k\tafter-2");
    assert_eq!(follower.interrupt()?, 0);
    Ok(())
}

#[test]
fn a_group_follower_commits_its_position_when_interrupted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    create_topic(d, "t", 1)?;
    ok(d, &["produce", "t"], "a\nb\nc\n")?;

    let follower = Background::start(d, &["consume", "t", "--group", "g", "--follow"])?;
    for expected in ["\\N\ta", "\\N\tb", "\\N\tc"] {
        assert_eq!(follower.next_line()?, expected);
    }
    assert_eq!(follower.interrupt()?, 0);
    assert_eq!(
        ok(d, &["groups", "describe", "g"], "")?,
        "topic  partition  committed  end  lag\n\
         t              0          3    3    0\n"
    );
    Ok(())
}
