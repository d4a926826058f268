//! Topic administration: create, list, describe, alter, delete — validated, and persisted
//! across reopen.

use freshet_log::{
    Acks, CleanupPolicy, Error, Isolation, Log, Record, TopicConfig, TOPIC_CONFIG_KEYS,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn setting(key: &str, value: &str) -> (String, String) {
    (key.to_string(), value.to_string())
}

#[test]
fn topics_and_their_settings_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (id_b, id_c) = {
        let log = Log::open(dir.path())?;
        assert!(log.list_topics()?.is_empty());
        log.create_topic("a", TopicConfig::partitions(1))?;
        let b = log.create_topic(
            "b",
            TopicConfig::partitions(3)
                .with("cleanup.policy", "compact")?
                .with("segment.bytes", "4096")?,
        )?;
        assert_eq!(b.partitions.len(), 3);
        assert_eq!(b.config.cleanup_policy, CleanupPolicy::Compact);
        let c = log.create_topic("c.with-dots_and_underscores", TopicConfig::partitions(2))?;
        log.append("b", 2, &[Record::new("k", "v")], Acks::Written)?;
        log.alter_topic(
            "b",
            Some(5),
            &[
                setting("retention.ms", "60000"),
                setting("retention.bytes", "1048576"),
            ],
        )?;
        log.delete_topic("a")?;
        assert!(!log.topic_exists("a"));
        (b.id, c.id)
    };

    let log = Log::open(dir.path())?;
    assert_eq!(log.list_topics()?, ["b", "c.with-dots_and_underscores"]);
    assert!(!log.topic_exists("a"));
    assert!(matches!(
        log.describe_topic("a"),
        Err(Error::UnknownTopic { ref topic }) if topic == "a"
    ));
    let b = log.describe_topic("b")?;
    assert_eq!(b.id, id_b, "the id is kept");
    assert_eq!(b.partitions.len(), 5);
    assert_eq!(log.partition_count("b")?, 5);
    let want = TopicConfig::partitions(5)
        .with("cleanup.policy", "compact")?
        .with("segment.bytes", "4096")?
        .with("retention.ms", "60000")?
        .with("retention.bytes", "1048576")?;
    assert_eq!(b.config, want);
    let map = b.config.to_map();
    assert_eq!(
        map.keys().map(String::as_str).collect::<Vec<_>>(),
        TOPIC_CONFIG_KEYS
    );
    assert_eq!(map["retention.ms"], "60000");
    assert_eq!(map["cleanup.policy"], "compact");
    assert_eq!(b.partitions[2].offsets.end, 1, "data kept");
    assert_eq!(log.describe_topic("c.with-dots_and_underscores")?.id, id_c);
    // Added partitions are usable.
    log.append("b", 4, &[Record::new("k", "v")], Acks::Written)?;

    // Read-only openers see the same topics.
    let ro = Log::open_read_only(dir.path())?;
    assert_eq!(ro.list_topics()?, log.list_topics()?);
    assert_eq!(ro.describe_topic("b")?.config, want);
    Ok(())
}

#[test]
fn a_recreated_topic_gets_a_new_id_and_no_old_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    let first = log.create_topic("t", TopicConfig::partitions(2))?;
    log.append("t", 1, &[Record::new("k", "old")], Acks::Written)?;
    log.delete_topic("t")?;
    let second = log.create_topic("t", TopicConfig::partitions(1))?;
    assert_ne!(first.id, second.id);
    assert_eq!(second.partitions.len(), 1);
    assert_eq!(second.partitions[0].offsets.end, 0);
    assert!(log
        .read("t", 0, 0, 1 << 20, Isolation::ReadUncommitted)?
        .is_empty());
    drop(log);
    let log = Log::open(dir.path())?;
    let again = log.describe_topic("t")?;
    assert_eq!(again.id, second.id);
    assert_eq!(again.partitions.len(), 1);
    assert_eq!(again.partitions[0].offsets.end, 0);
    Ok(())
}

#[test]
fn invalid_topic_names_are_rejected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    let long = "x".repeat(250);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../escape",
        "has space",
        "tab\t",
        "ümlaut",
        "colon:",
        "__internal",
        long.as_str(),
    ] {
        match log.create_topic(name, TopicConfig::partitions(1)) {
            Err(Error::InvalidTopicName { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(!reason.is_empty());
            }
            other => panic!("{name:?} gave {other:?}"),
        }
    }
    let err = log
        .create_topic("a b", TopicConfig::partitions(1))
        .expect_err("space");
    assert!(
        err.to_string().starts_with("invalid topic name 'a b': "),
        "{err}"
    );
    assert!(log.list_topics()?.is_empty());
    // The longest legal name, and the legal punctuation.
    log.create_topic(&"y".repeat(249), TopicConfig::partitions(1))?;
    log.create_topic("A-z_0.9", TopicConfig::partitions(1))?;
    assert!(matches!(
        log.create_topic("zero", TopicConfig::partitions(0)),
        Err(Error::InvalidConfig { ref key, .. }) if key == "partitions"
    ));
    Ok(())
}

#[test]
fn creating_an_existing_topic_fails() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    let first = log.create_topic("t", TopicConfig::partitions(2))?;
    let err = log
        .create_topic("t", TopicConfig::partitions(4))
        .expect_err("duplicate");
    assert!(
        matches!(err, Error::TopicExists { ref topic } if topic == "t"),
        "{err}"
    );
    assert_eq!(err.to_string(), "topic 't' already exists");
    let now = log.describe_topic("t")?;
    assert_eq!((now.id, now.partitions.len()), (first.id, 2), "unchanged");
    Ok(())
}

#[test]
fn partitions_can_be_added_but_not_removed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(2))?;
    assert_eq!(log.alter_topic("t", Some(4), &[])?.partitions.len(), 4);
    assert_eq!(log.alter_topic("t", Some(4), &[])?.partitions.len(), 4);
    let err = log
        .alter_topic("t", Some(3), &[setting("retention.ms", "1")])
        .expect_err("shrinking");
    assert!(
        matches!(err, Error::InvalidConfig { ref key, ref value, .. } if key == "partitions" && value == "3"),
        "{err}"
    );
    let now = log.describe_topic("t")?;
    assert_eq!(now.partitions.len(), 4);
    assert_eq!(
        now.config.retention_ms,
        TopicConfig::partitions(1).retention_ms,
        "a refused alter changes nothing"
    );
    assert!(matches!(
        log.alter_topic("missing", Some(5), &[]),
        Err(Error::UnknownTopic { .. })
    ));
    drop(log);
    let log = Log::open(dir.path())?;
    assert_eq!(log.partition_count("t")?, 4);
    Ok(())
}

#[test]
fn unknown_or_bad_settings_are_refused_naming_the_key() -> TestResult {
    let err = TopicConfig::partitions(1)
        .with("retention.mss", "1000")
        .expect_err("unknown key");
    assert!(
        matches!(err, Error::InvalidConfig { ref key, ref value, .. } if key == "retention.mss" && value == "1000"),
        "{err}"
    );
    assert!(err.to_string().contains("retention.mss"), "{err}");

    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(1))?;
    let err = log
        .alter_topic(
            "t",
            None,
            &[setting("segment.ms", "5000"), setting("no.such.key", "1")],
        )
        .expect_err("unknown key");
    assert!(
        matches!(err, Error::InvalidConfig { ref key, .. } if key == "no.such.key"),
        "{err}"
    );
    assert!(err.to_string().contains("no.such.key"), "{err}");
    for (key, value) in [
        ("retention.ms", "soon"),
        ("retention.bytes", "-2"),
        ("cleanup.policy", "keep"),
        ("segment.bytes", "1"),
        ("segment.ms", "0"),
    ] {
        match log.alter_topic("t", None, &[setting(key, value)]) {
            Err(Error::InvalidConfig {
                key: k, value: v, ..
            }) => {
                assert_eq!((k.as_str(), v.as_str()), (key, value));
            }
            other => panic!("{key}={value} gave {other:?}"),
        }
    }
    // Nothing of a refused alter applied, even the valid settings before the bad one.
    assert_eq!(log.describe_topic("t")?.config, TopicConfig::partitions(1));
    drop(log);
    let log = Log::open(dir.path())?;
    assert_eq!(log.describe_topic("t")?.config, TopicConfig::partitions(1));
    Ok(())
}

#[test]
fn deleting_a_topic_removes_its_data_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(3))?;
    log.create_topic("keep", TopicConfig::partitions(1))?;
    for p in 0..3 {
        log.append("t", p, &[Record::new("k", "v")], Acks::Written)?;
    }
    let topic_dir = dir.path().join("topics").join("t");
    assert!(topic_dir.join("0").is_dir());
    log.delete_topic("t")?;
    assert!(!topic_dir.exists());
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/t-") || p.ends_with("t"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    assert!(dir.path().join("topics").join("keep").is_dir());
    assert_eq!(log.list_topics()?, ["keep"]);

    assert!(matches!(
        log.delete_topic("t"),
        Err(Error::UnknownTopic { .. })
    ));
    assert!(matches!(
        log.append("t", 0, &[Record::new("k", "v")], Acks::Written),
        Err(Error::UnknownTopic { .. })
    ));
    drop(log);
    let log = Log::open(dir.path())?;
    assert_eq!(log.list_topics()?, ["keep"]);
    Ok(())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
