//! `--format json`: timestamps and headers in, every field out in a fixed order.

mod common;

use common::{create_topic, ok, TestResult};

#[test]
fn json_records_keep_timestamp_and_headers_with_fields_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "events", 1)?;
    let input = concat!(
        r#"{"key":"k1","value":"v1","timestamp":1700000000000,"headers":[["trace","abc"],["empty",null]]}"#,
        "\n",
        r#"{"value":"no key","timestamp":1700000000001}"#,
        "\n",
        r#"{"key":"tombstone","value":null,"timestamp":1700000000002}"#,
        "\n",
    );
    ok(
        dir.path(),
        &["produce", "events", "--format", "json"],
        input,
    )?;

    let consumed = ok(dir.path(), &["consume", "events", "--format", "json"], "")?;
    assert_eq!(
        consumed,
        concat!(
            r#"{"partition":0,"offset":0,"timestamp":1700000000000,"key":"k1","value":"v1","headers":[["trace","abc"],["empty",""]]}"#,
            "\n",
            r#"{"partition":0,"offset":1,"timestamp":1700000000001,"key":null,"value":"no key","headers":[]}"#,
            "\n",
            r#"{"partition":0,"offset":2,"timestamp":1700000000002,"key":"tombstone","value":null,"headers":[]}"#,
            "\n",
        )
    );
    Ok(())
}

#[test]
fn json_records_without_a_timestamp_get_the_append_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    create_topic(dir.path(), "events", 1)?;
    let before = now_ms()?;
    ok(
        dir.path(),
        &["produce", "events", "--format", "json"],
        "{\"value\":\"v\"}\n",
    )?;
    let after = now_ms()?;
    let consumed = ok(dir.path(), &["consume", "events", "--format", "json"], "")?;
    let value: serde_json::Value = serde_json::from_str(consumed.trim_end())?;
    let ts = value["timestamp"].as_i64().ok_or("no timestamp")?;
    assert!(
        (before..=after).contains(&ts),
        "{ts} not in {before}..={after}"
    );
    Ok(())
}

fn now_ms() -> TestResult<i64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64)
}
