//! `freshet topics`: create, list, describe, alter and delete.

mod common;

use common::{fails, ok, TestResult};

#[test]
fn topics_round_trip_through_create_list_describe_alter_and_delete() -> TestResult {
    let tmp = tempfile::tempdir()?;
    // The data dir does not exist yet: create makes it.
    let dir = tmp.path().join("data");

    let created = ok(
        &dir,
        &[
            "topics",
            "create",
            "page-views",
            "--partitions",
            "2",
            "--config",
            "retention.ms=3600000",
        ],
        "",
    )?;
    assert!(
        created.starts_with("created topic page-views (id "),
        "{created}"
    );
    assert!(created.trim_end().ends_with(", 2 partitions)"), "{created}");
    let id = created
        .split("(id ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .ok_or("no id in the create output")?
        .to_string();
    ok(
        &dir,
        &["topics", "create", "clicks", "--partitions", "1"],
        "",
    )?;

    assert_eq!(ok(&dir, &["topics", "list"], "")?, "clicks\npage-views\n");

    ok(
        &dir,
        &["produce", "page-views", "--partition", "1"],
        "a\tb\nc\td\n",
    )?;
    let described = ok(&dir, &["topics", "describe", "page-views"], "")?;
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(lines[0], "topic       page-views");
    assert_eq!(lines[1], format!("id          {id}"));
    assert_eq!(lines[2], "partitions  2");
    assert_eq!(
        lines[4],
        "partition  start  end  last-stable  size-bytes  segments"
    );
    let row = |line: &str| -> Vec<String> { line.split_whitespace().map(str::to_string).collect() };
    assert_eq!(row(lines[5])[..4], ["0", "0", "0", "0"]);
    assert_eq!(row(lines[6])[..4], ["1", "0", "2", "2"]);
    assert!(row(lines[6])[4].parse::<u64>()? > 0, "size of partition 1");
    assert!(
        described.contains("\n  retention.ms=3600000\n"),
        "{described}"
    );
    assert!(
        described.contains("\n  cleanup.policy=delete\n"),
        "{described}"
    );

    let altered = ok(
        &dir,
        &[
            "topics",
            "alter",
            "page-views",
            "--partitions",
            "4",
            "--config",
            "cleanup.policy=compact",
        ],
        "",
    )?;
    assert_eq!(
        altered,
        format!("altered topic page-views (id {id}, 4 partitions)\n")
    );
    let described = ok(&dir, &["topics", "describe", "page-views"], "")?;
    assert!(described.contains("partitions  4\n"), "{described}");
    assert!(
        described.contains("\n  cleanup.policy=compact\n"),
        "{described}"
    );
    assert!(
        described.contains("\n  retention.ms=3600000\n"),
        "{described}"
    );

    assert_eq!(
        fails(
            &dir,
            &["topics", "alter", "page-views", "--partitions", "3"],
            ""
        )?,
        "error: invalid config partitions=3: topic 'page-views' has 4 partitions; \
         partitions can only be added"
    );

    assert_eq!(
        ok(&dir, &["topics", "delete", "page-views"], "")?,
        "deleted topic page-views\n"
    );
    assert_eq!(ok(&dir, &["topics", "list"], "")?, "clicks\n");
    assert_eq!(
        fails(&dir, &["topics", "describe", "page-views"], "")?,
        "error: unknown topic 'page-views'"
    );
    Ok(())
}

#[test]
fn a_recreated_topic_gets_a_new_id() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = ok(
        dir.path(),
        &["topics", "create", "t", "--partitions", "1"],
        "",
    )?;
    ok(dir.path(), &["topics", "delete", "t"], "")?;
    let second = ok(
        dir.path(),
        &["topics", "create", "t", "--partitions", "1"],
        "",
    )?;
    assert_ne!(first, second);
    Ok(())
}

#[test]
fn an_unknown_config_key_is_a_one_line_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    assert_eq!(
        fails(
            dir.path(),
            &[
                "topics",
                "create",
                "t",
                "--partitions",
                "1",
                "--config",
                "retention.nope=1"
            ],
            ""
        )?,
        "error: invalid config retention.nope=1: unknown topic config"
    );
    // Refused before anything was written: no data dir appeared.
    assert!(!dir.path().join("topics").exists());
    assert_eq!(
        fails(
            dir.path(),
            &[
                "topics",
                "create",
                "t",
                "--partitions",
                "1",
                "--config",
                "retention.ms=soon"
            ],
            ""
        )?,
        "error: invalid config retention.ms=soon: not an integer"
    );
    Ok(())
}
