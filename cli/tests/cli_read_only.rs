//! Reading while another process owns the data dir; writing is refused, naming the owner.

mod common;

use common::{create_topic, fails, ok, Background, TestResult};

#[test]
fn reads_work_and_writes_name_the_owner_while_another_process_owns_the_dir() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    create_topic(d, "t", 2)?;
    ok(d, &["produce", "t"], "a\t1\nb\t2\nc\t3\n")?;

    // `consume --group --follow` owns the data dir (its commits need the writable log).
    let owner = Background::start(d, &["consume", "t", "--group", "g", "--follow"])?;
    for _ in 0..3 {
        owner.next_line()?;
    }

    assert_eq!(ok(d, &["topics", "list"], "")?, "t\n");
    let described = ok(d, &["topics", "describe", "t"], "")?;
    assert!(described.starts_with("topic       t\n"), "{described}");
    let mut consumed: Vec<String> = ok(d, &["consume", "t", "--from-beginning"], "")?
        .lines()
        .map(str::to_string)
        .collect();
    consumed.sort_unstable();
    assert_eq!(consumed, ["a\t1", "b\t2", "c\t3"]);
    assert_eq!(ok(d, &["groups", "list"], "")?, "");

    let locked = format!(
        "error: data dir {} is locked by pid {}",
        d.display(),
        owner.pid()
    );
    assert_eq!(fails(d, &["produce", "t"], "d\t4\n")?, locked);
    assert_eq!(
        fails(d, &["topics", "create", "u", "--partitions", "1"], "")?,
        locked
    );
    assert_eq!(fails(d, &["consume", "t", "--group", "other"], "")?, locked);
    drop(owner);

    // The owner is gone: writes work again.
    ok(d, &["produce", "t"], "d\t4\n")?;
    Ok(())
}
