//! A deleted and recreated topic is a new topic: nothing of the old one reaches it.

use freshet_log::{Acks, Log, LogConfig, Record, TopicConfig};

fn open(dir: &std::path::Path) -> freshet_log::Result<Log> {
    Log::open_with(
        dir,
        LogConfig {
            cleaner_interval: None,
            ..LogConfig::default()
        },
    )
}

#[test]
fn an_open_transaction_never_writes_its_marker_into_a_recreated_topic(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic("t", TopicConfig::partitions(1))?;
        let mut tx = log.transactional_producer("tx", Acks::Written)?;
        tx.begin()?;
        tx.append("t", 0, &[Record::new("k", "v")])?;
        log.delete_topic("t")?;
        log.create_topic("t", TopicConfig::partitions(1))?;
        tx.commit()?;
        assert_eq!(log.offsets("t", 0)?.end, 0);
    }
    Ok(())
}

#[test]
fn recovery_never_writes_an_abort_marker_into_a_recreated_topic(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic("t", TopicConfig::partitions(1))?;
        let mut tx = log.transactional_producer("tx", Acks::Written)?;
        tx.begin()?;
        tx.append("t", 0, &[Record::new("k", "v")])?;
        log.delete_topic("t")?;
        log.create_topic("t", TopicConfig::partitions(1))?;
        // Dropped without commit or abort: as if the process died.
    }
    let log = open(dir.path())?;
    let o = log.offsets("t", 0)?;
    assert_eq!((o.start, o.end, o.last_stable), (0, 0, 0));
    Ok(())
}
