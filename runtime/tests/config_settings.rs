//! `StreamsConfig`: names, defaults, parsing and the policies it derives.

use std::path::Path;
use std::time::Duration;

use freshet_log::Acks;
use freshet_runtime::{
    Error, HandlerPolicy, ProcessingGuarantee, StreamsConfig, STREAMS_CONFIG_KEYS,
};
use freshet_streams::ErrorPolicy;

#[test]
fn defaults_are_the_architectures() {
    let c = StreamsConfig::new("app");
    assert_eq!(c.application_id(), "app");
    assert_eq!(c.processing_guarantee(), ProcessingGuarantee::ExactlyOnceV2);
    assert_eq!(c.commit_interval_ms(), 100);
    assert_eq!(c.num_stream_threads(), 1);
    assert_eq!(c.cache_max_bytes(), 10_485_760);
    assert_eq!(c.write_buffer_max_bytes(), 67_108_864);
    assert_eq!(c.sled_cache_bytes(), 67_108_864);
    assert!(c.auto_create_sink_topics());
    assert_eq!(c.durability(), Acks::Written);
    assert_eq!(c.dead_letter_topic(), None);
    assert_eq!(c.deserialization_policy(), ErrorPolicy::Fail);
    assert_eq!(c.processing_policy(), ErrorPolicy::Fail);
    assert_eq!(c.production_policy(), ErrorPolicy::Fail);
    assert_eq!(c.poll_ms(), 100);
    assert_eq!(c.buffered_records_per_partition(), 1000);
    assert_eq!(c.repartition_purge_interval_ms(), 30_000);
}

#[test]
fn commit_interval_follows_the_guarantee_unless_set() {
    let alos = StreamsConfig::new("a").with_processing_guarantee(ProcessingGuarantee::AtLeastOnce);
    assert_eq!(alos.commit_interval_ms(), 30_000);
    let set = alos.with_commit_interval(Duration::from_millis(250));
    assert_eq!(set.commit_interval_ms(), 250);
}

#[test]
fn every_key_is_settable_from_strings() -> Result<(), Error> {
    let c = StreamsConfig::from_pairs(
        "a",
        [
            ("application.id", "b"),
            ("auto.create.sink.topics", "false"),
            ("buffered.records.per.partition", "10"),
            ("commit.interval.ms", "5"),
            ("data.dir", "/tmp/data"),
            ("deserialization.exception.handler", "log-and-continue"),
            ("errors.dead.letter.queue.topic.name", "dlq"),
            ("log.durability", "synced"),
            ("num.stream.threads", "3"),
            ("poll.ms", "7"),
            ("processing.exception.handler", "dead-letter"),
            ("processing.guarantee", "at_least_once"),
            ("production.exception.handler", "log-and-continue"),
            ("repartition.purge.interval.ms", "0"),
            ("state.dir", "/tmp/state"),
            ("state.sled.cache.bytes", "1_000"),
            ("statestore.cache.max.bytes", "0"),
            ("statestore.write.buffer.max.bytes", "4096"),
            (
                "default.deserialization.exception.handler",
                "org.apache.kafka.streams.errors.LogAndContinueExceptionHandler",
            ),
            (
                "default.production.exception.handler",
                "org.apache.kafka.streams.errors.DefaultProductionExceptionHandler",
            ),
        ],
    )?;
    assert_eq!(c.application_id(), "b");
    assert!(!c.auto_create_sink_topics());
    assert_eq!(c.buffered_records_per_partition(), 10);
    assert_eq!(c.commit_interval_ms(), 5);
    assert_eq!(c.deserialization_policy(), ErrorPolicy::LogAndContinue);
    assert_eq!(c.processing_policy(), ErrorPolicy::DeadLetter("dlq".into()));
    assert_eq!(c.durability(), Acks::Synced);
    assert_eq!(c.num_stream_threads(), 3);
    assert_eq!(c.poll_ms(), 7);
    assert_eq!(c.processing_guarantee(), ProcessingGuarantee::AtLeastOnce);
    assert_eq!(c.repartition_purge_interval_ms(), 0);
    assert_eq!(c.sled_cache_bytes(), 1000);
    assert_eq!(c.cache_max_bytes(), 0);
    assert_eq!(c.write_buffer_max_bytes(), 4096);
    assert_eq!(c.state_dir(None)?, Path::new("/tmp/state/b"));
    c.validate()?;
    assert_eq!(
        c.production_policy(),
        ErrorPolicy::Fail,
        "Kafka's name, set last, wins"
    );
    assert_eq!(STREAMS_CONFIG_KEYS.len(), 21);
    Ok(())
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let mut c = StreamsConfig::new("a");
    let e = c.set("num.stream.thread", "2").unwrap_err();
    assert!(matches!(e, Error::UnknownSetting { ref key, .. } if key == "num.stream.thread"));
    assert!(
        e.to_string().contains("num.stream.threads"),
        "lists the known keys: {e}"
    );
    for (k, v) in [
        ("num.stream.threads", "0"),
        ("num.stream.threads", "two"),
        ("commit.interval.ms", "-1"),
        ("processing.guarantee", "exactly_once"),
        ("processing.guarantee", "maybe"),
        ("auto.create.sink.topics", "yes"),
        ("log.durability", "none"),
        ("deserialization.exception.handler", "ignore"),
        ("production.exception.handler", "retry"),
        ("statestore.cache.max.bytes", "10MB"),
    ] {
        let e = c.set(k, v).unwrap_err();
        assert!(
            matches!(e, Error::InvalidSetting { ref key, ref value, .. } if key == k && value == v),
            "{k}={v}: {e}"
        );
        assert!(e.to_string().contains(k), "{e}");
    }
    assert_eq!(c, StreamsConfig::new("a"), "failed sets change nothing");
}

#[test]
fn a_dead_letter_topic_becomes_the_default_handler() {
    let c = StreamsConfig::new("a").with_dead_letter_topic("dlq");
    assert_eq!(
        c.deserialization_policy(),
        ErrorPolicy::DeadLetter("dlq".into())
    );
    assert_eq!(c.processing_policy(), ErrorPolicy::DeadLetter("dlq".into()));
    assert_eq!(c.production_policy(), ErrorPolicy::DeadLetter("dlq".into()));
    let c = c.with_processing_handler(HandlerPolicy::Fail);
    assert_eq!(
        c.processing_policy(),
        ErrorPolicy::Fail,
        "an explicit handler wins"
    );
}

#[test]
fn validation_refuses_what_cannot_work() {
    assert!(
        StreamsConfig::new("page counter").validate().is_err(),
        "space in the id"
    );
    assert!(StreamsConfig::new("").validate().is_err());
    let no_topic = StreamsConfig::new("a").with_deserialization_handler(HandlerPolicy::DeadLetter);
    let e = no_topic.validate().unwrap_err();
    assert!(
        e.to_string()
            .contains("errors.dead.letter.queue.topic.name"),
        "{e}"
    );
}

#[test]
fn the_state_dir_is_under_the_data_dir_by_default() -> Result<(), Error> {
    let c = StreamsConfig::new("counter");
    assert!(matches!(c.state_dir(None), Err(Error::NoStateDir)));
    assert_eq!(
        c.state_dir(Some(Path::new("/data")))?,
        Path::new("/data/state/counter")
    );
    let c = c.with_data_dir("/other");
    assert_eq!(
        c.state_dir(Some(Path::new("/data")))?,
        Path::new("/other/state/counter")
    );
    let c = c.with_state_dir("/s");
    assert_eq!(c.state_dir(None)?, Path::new("/s/counter"));
    Ok(())
}

#[test]
fn default_serde_settings_point_to_the_type_registry() {
    let mut config = freshet_runtime::StreamsConfig::new("app");
    let err = config
        .set(
            "default.value.serde",
            "org.apache.kafka.common.serialization.Serdes$StringSerde",
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("StreamsBuilder::register_serde"), "{err}");
}
