//! User errors: one line `error: …` on stderr, exit code 1, no panic.

mod common;

use common::{create_topic, fails, ok, TestResult};

#[test]
fn an_unknown_topic_is_one_line_and_exit_code_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    for args in [
        &["consume", "nope"][..],
        &["produce", "nope"],
        &["topics", "describe", "nope"],
        &["topics", "delete", "nope"],
        &["topics", "alter", "nope", "--partitions", "2"],
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "nope",
            "--to-latest",
        ],
    ] {
        assert_eq!(
            fails(dir.path(), args, "x\n")?,
            "error: unknown topic 'nope'",
            "{args:?}"
        );
    }
    Ok(())
}

#[test]
fn a_bad_line_names_its_number_and_keeps_the_records_before_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    assert_eq!(
        fails(
            dir.path(),
            &["produce", "t", "--value-format", "i32"],
            "a\t1\nb\t2\nc\tx\nd\t4\n"
        )?,
        "error: line 3: value: invalid i32 'x': invalid digit found in string \
         (2 records before it were produced)"
    );
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--value-format", "i32"], "")?,
        "a\t1\nb\t2\n"
    );
    assert_eq!(
        fails(
            dir.path(),
            &["produce", "t", "--format", "json"],
            "{\"key\":1}\n"
        )?,
        "error: line 1: invalid json line: key must be a string for the string format, \
         found 1 (no record before it was produced)"
    );
    Ok(())
}

#[test]
fn a_line_that_is_not_utf8_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    let mut child = common::command(dir.path(), &["produce", "t"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, b"ok\n\xff\xfe\n")?;
    }
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        stderr.starts_with("error: line 2: not valid UTF-8 at byte 0"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn an_unknown_partition_is_refused_before_reading_input() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 2)?;
    let expected = "error: unknown partition 5 of topic 't' (it has 2)";
    assert_eq!(
        fails(dir.path(), &["produce", "t", "--partition", "5"], "a\n")?,
        expected
    );
    assert_eq!(
        fails(dir.path(), &["consume", "t", "--partition", "5"], "")?,
        expected
    );
    Ok(())
}

#[test]
fn a_missing_data_dir_is_not_created_by_reads_or_produce() -> TestResult {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("typo");
    let expected = format!(
        "error: no freshet data dir at {} (create a topic first, or pass --data-dir)",
        missing.display()
    );
    for args in [
        &["topics", "list"][..],
        &["consume", "t"],
        &["produce", "t"],
        &["groups", "list"],
    ] {
        assert_eq!(fails(&missing, args, "")?, expected, "{args:?}");
    }
    assert!(!missing.exists());
    Ok(())
}

#[test]
fn invalid_topic_names_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    assert_eq!(
        fails(
            dir.path(),
            &["topics", "create", "a/b", "--partitions", "1"],
            ""
        )?,
        "error: invalid topic name 'a/b': only ASCII letters, digits, '.', '_' and '-' are allowed"
    );
    assert_eq!(
        fails(
            dir.path(),
            &["topics", "create", "t", "--partitions", "0"],
            ""
        )?,
        "error: invalid config partitions=0: a topic needs at least one partition"
    );
    Ok(())
}
