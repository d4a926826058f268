//! `freshet produce` then `freshet consume` in the default tsv format.

mod common;

use common::{create_topic, ok, TestResult};

#[test]
fn tsv_lines_come_back_with_keys_null_keys_and_empty_values() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    // A line without a tab is a value with a null key; an empty line is an empty value with
    // a null key; `\r\n` endings are stripped; the last line needs no newline.
    let input = "user-1\t/home\nno key here\n\nuser-2\t\r\n\tempty key\nk\tv\twith tab";
    let produced = ok(dir.path(), &["produce", "t"], input)?;
    assert_eq!(produced, "", "nothing on stdout without --print-offsets");

    let consumed = ok(dir.path(), &["consume", "t"], "")?;
    assert_eq!(
        consumed,
        "user-1\t/home\n\
         \\N\tno key here\n\
         \\N\t\n\
         user-2\t\n\
         \tempty key\n\
         k\tv\\twith tab\n"
    );
    Ok(())
}

#[test]
fn consume_reads_every_partition_and_stops_when_caught_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 3)?;
    let input: String = (0..30).map(|i| format!("key-{i}\tvalue-{i}\n")).collect();
    ok(dir.path(), &["produce", "t"], &input)?;

    let consumed = ok(dir.path(), &["consume", "t"], "")?;
    let mut lines: Vec<&str> = consumed.lines().collect();
    lines.sort_unstable();
    let mut expected: Vec<String> = (0..30).map(|i| format!("key-{i}\tvalue-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(lines, expected);
    Ok(())
}

#[test]
fn an_empty_input_produces_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    assert_eq!(
        ok(dir.path(), &["produce", "t", "--print-offsets"], "")?,
        ""
    );
    assert_eq!(ok(dir.path(), &["consume", "t"], "")?, "");
    Ok(())
}
