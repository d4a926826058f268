//! Binary keys and values through `--key-format` / `--value-format`.

mod common;

use common::{create_topic, ok, TestResult};

#[test]
fn u64_keys_are_eight_bytes_big_endian() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 1)?;
    ok(
        dir.path(),
        &[
            "produce",
            "t",
            "--key-format",
            "u64",
            "--value-format",
            "i32",
        ],
        "1\t-2\n18446744073709551615\t7\n",
    )?;
    let consumed = ok(
        dir.path(),
        &[
            "consume",
            "t",
            "--key-format",
            "hex",
            "--value-format",
            "hex",
        ],
        "",
    )?;
    assert_eq!(
        consumed,
        "0000000000000001\tfffffffe\nffffffffffffffff\t00000007\n"
    );
    // And back as numbers.
    let consumed = ok(
        dir.path(),
        &[
            "consume",
            "t",
            "--key-format",
            "u64",
            "--value-format",
            "i32",
        ],
        "",
    )?;
    assert_eq!(consumed, "1\t-2\n18446744073709551615\t7\n");
    Ok(())
}

#[test]
fn keys_partition_as_their_serialized_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "t", 4)?;
    let printed = ok(
        dir.path(),
        &["produce", "t", "--key-format", "u64", "--print-offsets"],
        "42\tv\n",
    )?;
    let expected = freshet_log::partition_for_key(&42u64.to_be_bytes(), 4);
    assert_eq!(printed, format!("{expected}\t0\n"));
    Ok(())
}
