//! A full disk is a typed error naming the file, and the partition refuses further writes
//! until reopened (nothing half-written is ever acknowledged).

use freshet_log::{Acks, Error, Log, LogConfig, Record, TopicConfig};

#[test]
fn a_write_that_meets_a_full_disk_is_a_disk_full_error_naming_the_segment(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = || LogConfig {
        cleaner_interval: None,
        ..LogConfig::default()
    };
    {
        let log = Log::open_with(dir.path(), config())?;
        log.create_topic("t", TopicConfig::partitions(1))?;
    }
    // /dev/full answers every write with ENOSPC: make it the active segment.
    let segment = dir.path().join("topics/t/0/00000000000000000000.log");
    std::fs::remove_file(&segment)?;
    std::os::unix::fs::symlink("/dev/full", &segment)?;

    let log = Log::open_with(dir.path(), config())?;
    let err = log
        .append("t", 0, &[Record::new("k", "v")], Acks::Written)
        .expect_err("a write to a full disk must fail");
    match &err {
        Error::DiskFull { path } => assert_eq!(path, &segment),
        other => panic!("expected DiskFull, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with("disk full while writing "),
        "{err}"
    );
    // The partition refuses writes now rather than risk a torn batch in the middle.
    let again = log.append("t", 0, &[Record::new("k", "v")], Acks::Written);
    assert!(matches!(again, Err(Error::Poisoned { .. })), "{again:?}");
    assert_eq!(log.offsets("t", 0)?.end, 0, "nothing was acknowledged");
    Ok(())
}
