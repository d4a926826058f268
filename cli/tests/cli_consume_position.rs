//! Where `freshet consume` starts and stops: --offset, --from-time, --max.

mod common;

use common::{create_topic, fails, ok, TestResult};

/// One partition with values v0..v4 at timestamps 1000, 2000, … 5000.
fn five_records(dir: &std::path::Path) -> TestResult {
    create_topic(dir, "t", 1)?;
    let input: String = (0..5)
        .map(|i| {
            format!(
                "{{\"key\":\"k\",\"value\":\"v{i}\",\"timestamp\":{}}}\n",
                (i + 1) * 1000
            )
        })
        .collect();
    ok(dir, &["produce", "t", "--format", "json"], &input)?;
    Ok(())
}

#[test]
fn offset_starts_at_that_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    five_records(dir.path())?;
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--offset", "3"], "")?,
        "k\tv3\nk\tv4\n"
    );
    assert_eq!(
        ok(
            dir.path(),
            &["consume", "t", "--offset", "5", "--partition", "0"],
            ""
        )?,
        ""
    );
    assert_eq!(
        fails(dir.path(), &["consume", "t", "--offset", "9"], "")?,
        "error: offset 9 out of range for t-0 (valid 0..5)"
    );
    Ok(())
}

#[test]
fn offset_needs_a_partition_when_the_topic_has_several() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "wide", 2)?;
    assert_eq!(
        fails(dir.path(), &["consume", "wide", "--offset", "0"], "")?,
        "error: --offset needs --partition: topic 'wide' has 2 partitions"
    );
    ok(
        dir.path(),
        &["consume", "wide", "--offset", "0", "--partition", "1"],
        "",
    )?;
    Ok(())
}

#[test]
fn from_time_starts_at_the_first_record_at_or_after_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    five_records(dir.path())?;
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--from-time", "2500"], "")?,
        "k\tv2\nk\tv3\nk\tv4\n"
    );
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--from-time", "4000"], "")?,
        "k\tv3\nk\tv4\n"
    );
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--from-time", "9000"], "")?,
        ""
    );
    Ok(())
}

#[test]
fn max_stops_after_that_many_records() -> TestResult {
    let dir = tempfile::tempdir()?;
    five_records(dir.path())?;
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--max", "2"], "")?,
        "k\tv0\nk\tv1\n"
    );
    assert_eq!(
        ok(
            dir.path(),
            &["consume", "t", "--offset", "1", "--max", "1"],
            ""
        )?,
        "k\tv1\n"
    );
    // --max with --follow ends once the records are there, without waiting for more.
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--follow", "--max", "5"], "")?
            .lines()
            .count(),
        5
    );
    Ok(())
}
