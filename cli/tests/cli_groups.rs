//! `consume --group` commits; `groups list / describe / reset-offsets`.

mod common;

use common::{create_topic, fails, ok, TestResult};

/// The lag column of every row of `groups describe` (after the header).
fn lags(describe: &str) -> Vec<i64> {
    describe
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().last()?.parse().ok())
        .collect()
}

#[test]
fn a_group_commits_what_it_consumed_and_resets_to_earliest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    create_topic(d, "t", 2)?;
    let input: String = (0..10).map(|i| format!("key-{i}\t{i}\n")).collect();
    ok(d, &["produce", "t"], &input)?;

    assert_eq!(
        ok(d, &["consume", "t", "--group", "g"], "")?
            .lines()
            .count(),
        10
    );
    assert_eq!(ok(d, &["groups", "list"], "")?, "g\n");
    let described = ok(d, &["groups", "describe", "g"], "")?;
    assert_eq!(
        described.lines().next(),
        Some("topic  partition  committed  end  lag")
    );
    assert_eq!(lags(&described), [0, 0]);
    // Committed: the group reads nothing more.
    assert_eq!(ok(d, &["consume", "t", "--group", "g"], "")?, "");

    let reset = ok(
        d,
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ],
        "",
    )?;
    assert_eq!(
        reset,
        "topic  partition  new-offset\n\
         t              0           0\n\
         t              1           0\n"
    );
    let described = ok(d, &["groups", "describe", "g"], "")?;
    assert_eq!(lags(&described).iter().sum::<i64>(), 10);
    // The group reads everything again.
    assert_eq!(
        ok(d, &["consume", "t", "--group", "g"], "")?
            .lines()
            .count(),
        10
    );
    Ok(())
}

#[test]
fn a_group_resumes_after_max() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    create_topic(d, "t", 1)?;
    ok(d, &["produce", "t"], "a\n b\nc\nd\n")?;
    assert_eq!(
        ok(d, &["consume", "t", "--group", "g", "--max", "2"], "")?,
        "\\N\ta\n\\N\t b\n"
    );
    assert_eq!(lags(&ok(d, &["groups", "describe", "g"], "")?), [2]);
    assert_eq!(
        ok(d, &["consume", "t", "--group", "g"], "")?,
        "\\N\tc\n\\N\td\n"
    );
    // --from-beginning overrides the committed offsets.
    assert_eq!(
        ok(
            d,
            &[
                "consume",
                "t",
                "--group",
                "g",
                "--from-beginning",
                "--max",
                "1"
            ],
            ""
        )?,
        "\\N\ta\n"
    );
    Ok(())
}

#[test]
fn reset_offsets_to_latest_offset_and_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    create_topic(d, "t", 1)?;
    let input: String = (0..4)
        .map(|i| format!("{{\"value\":\"v{i}\",\"timestamp\":{}}}\n", (i + 1) * 100))
        .collect();
    ok(d, &["produce", "t", "--format", "json"], &input)?;
    let reset = |to: &[&str]| -> TestResult<String> {
        let mut args = vec!["groups", "reset-offsets", "g", "--topic", "t"];
        args.extend_from_slice(to);
        let out = ok(d, &args, "")?;
        Ok(out
            .lines()
            .nth(1)
            .ok_or("no row")?
            .split_whitespace()
            .last()
            .ok_or("no offset")?
            .to_string())
    };
    assert_eq!(reset(&["--to-latest"])?, "4");
    assert_eq!(reset(&["--to-offset", "2"])?, "2");
    assert_eq!(
        ok(d, &["consume", "t", "--group", "g"], "")?,
        "\\N\tv2\n\\N\tv3\n"
    );
    assert_eq!(reset(&["--to-offset", "99"])?, "4", "clamped to the end");
    assert_eq!(reset(&["--to-time", "250"])?, "2");
    assert_eq!(reset(&["--to-time", "9999"])?, "4");
    Ok(())
}

#[test]
fn describing_an_unknown_group_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    assert_eq!(
        fails(dir.path(), &["groups", "describe", "nobody"], "")?,
        "error: unknown group 'nobody'"
    );
    assert_eq!(ok(dir.path(), &["groups", "list"], "")?, "");
    Ok(())
}
