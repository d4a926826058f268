//! `freshet produce --print-offsets` and `--partition`.

mod common;

use common::{create_topic, ok, TestResult};

#[test]
fn print_offsets_prints_partition_and_offset_in_input_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 3)?;
    let keys = ["a", "b", "c", "d", "e", "f", "a", "b"];
    let input: String = keys.iter().map(|k| format!("{k}\tv\n")).collect();
    let printed = ok(dir.path(), &["produce", "t", "--print-offsets"], &input)?;

    // Expected: Kafka's partitioner on each key, offsets counting up per partition.
    let mut next = [0i64; 3];
    let expected: String = keys
        .iter()
        .map(|k| {
            let p = freshet_log::partition_for_key(k.as_bytes(), 3);
            let offset = next[p as usize];
            next[p as usize] += 1;
            format!("{p}\t{offset}\n")
        })
        .collect();
    assert_eq!(printed, expected);
    Ok(())
}

#[test]
fn partition_sends_every_record_to_one_partition() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 3)?;
    let printed = ok(
        dir.path(),
        &["produce", "t", "--partition", "2", "--print-offsets"],
        "a\t1\nb\t2\nc\t3\n",
    )?;
    assert_eq!(printed, "2\t0\n2\t1\n2\t2\n");
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--partition", "2"], "")?,
        "a\t1\nb\t2\nc\t3\n"
    );
    assert_eq!(
        ok(dir.path(), &["consume", "t", "--partition", "0"], "")?,
        ""
    );
    Ok(())
}

#[test]
fn acks_none_prints_offset_minus_one_and_still_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    let printed = ok(
        dir.path(),
        &["produce", "t", "--acks", "none", "--print-offsets"],
        "a\t1\nb\t2\n",
    )?;
    assert_eq!(printed, "0\t-1\n0\t-1\n");
    assert_eq!(ok(dir.path(), &["consume", "t"], "")?, "a\t1\nb\t2\n");
    Ok(())
}

#[test]
fn acks_synced_acknowledges_every_record() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    let input: String = (0..500).map(|i| format!("k\t{i}\n")).collect();
    let printed = ok(
        dir.path(),
        &["produce", "t", "--acks", "synced", "--print-offsets"],
        &input,
    )?;
    let expected: String = (0..500).map(|i| format!("0\t{i}\n")).collect();
    assert_eq!(printed, expected);
    Ok(())
}
