//! `StreamsConfig`: the settings of a streams app, with Kafka's names and defaults where
//! Kafka has them (../shared/ARCHITECTURE.md, "Defaults and names of settings").

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use freshet_log::Acks;
use freshet_streams::ErrorPolicy;

use crate::error::{Error, Result};

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingGuarantee {
    /// `exactly_once_v2` (freshet's default): one transaction per stream thread covers
    /// outputs, changelogs and input offsets.
    #[default]
    ExactlyOnceV2,
    /// `at_least_once` (Kafka's default): after a crash the work since the last commit is
    /// done again, so outputs and changelog records may repeat.
    AtLeastOnce,
}

impl ProcessingGuarantee {
    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingGuarantee::ExactlyOnceV2 => "exactly_once_v2",
            ProcessingGuarantee::AtLeastOnce => "at_least_once",
        }
    }
}

impl fmt::Display for ProcessingGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a deserialization, processing or production handler does with a record that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerPolicy {
    /// `fail`: log and stop the app with the error (Kafka's `LogAndFail…Handler`).
    Fail,
    /// `log-and-continue`: log, count the record as dropped, go on.
    LogAndContinue,
    /// `dead-letter`: write the raw source record to `errors.dead.letter.queue.topic.name`
    /// with `__streams.errors.*` headers (inside the transaction), go on.
    DeadLetter,
}

impl HandlerPolicy {
    fn parse(key: &str, value: &str) -> Result<HandlerPolicy> {
        // Kafka's class names are accepted too, with or without their package.
        let simple = value.trim().rsplit('.').next().unwrap_or(value).trim();
        match simple {
            "fail"
            | "log-and-fail"
            | "LogAndFailExceptionHandler"
            | "LogAndFailProcessingExceptionHandler"
            | "DefaultProductionExceptionHandler" => Ok(HandlerPolicy::Fail),
            "log-and-continue"
            | "LogAndContinueExceptionHandler"
            | "LogAndContinueProcessingExceptionHandler" => Ok(HandlerPolicy::LogAndContinue),
            "dead-letter" => Ok(HandlerPolicy::DeadLetter),
            _ => Err(invalid(
                key,
                value,
                "expected fail, log-and-continue or dead-letter",
            )),
        }
    }
}

/// Every key [`StreamsConfig::set`] knows.
pub const STREAMS_CONFIG_KEYS: [&str; 21] = [
    "application.id",
    "auto.create.sink.topics",
    "buffered.records.per.partition",
    "commit.interval.ms",
    "data.dir",
    "deserialization.exception.handler",
    "errors.dead.letter.queue.topic.name",
    "log.durability",
    "num.stream.threads",
    "poll.ms",
    "processing.exception.handler",
    "processing.guarantee",
    "production.exception.handler",
    "repartition.purge.interval.ms",
    "session.timeout.ms",
    "state.dir",
    "state.sled.cache.bytes",
    "statestore.cache.max.bytes",
    "statestore.write.buffer.max.bytes",
    // Kafka's older name of the deserialization handler.
    "default.deserialization.exception.handler",
    // Kafka's name of the production handler.
    "default.production.exception.handler",
];

/// The settings of a streams app, with Kafka's names and defaults where Kafka has them.
///
/// Build it in Rust with the `with_*` setters, or from `(key, value)` strings with
/// [`StreamsConfig::set`] / [`StreamsConfig::from_pairs`] (a properties file, the command
/// line); unknown keys and bad values are errors that name the key.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `application.id` | (required) | prefixes internal topics and changelogs; the consumer group |
/// | `processing.guarantee` | `exactly_once_v2` | or `at_least_once` |
/// | `commit.interval.ms` | 100 (EOS), 30000 (ALOS) | how often each thread commits |
/// | `num.stream.threads` | 1 | tasks are spread over them |
/// | `statestore.cache.max.bytes` | 10485760 | record caches, split across threads; 0 = off |
/// | `statestore.write.buffer.max.bytes` | 67108864 | per thread, soft: past it, commit at the next record boundary |
/// | `state.sled.cache.bytes` | 67108864 | sled's page cache (one database per instance) |
/// | `data.dir` | the embedded log's directory | state dir is `<data.dir>/state/<application.id>` |
/// | `state.dir` | unset | when set, state dir is `<state.dir>/<application.id>` |
/// | `session.timeout.ms` | 45000 | a stream thread not heard from for this long leaves the group and its tasks move |
/// | `log.durability` | `written` | `synced` fsyncs every commit |
/// | `auto.create.sink.topics` | `true` | missing sink topics get the sub-topology's partition count |
/// | `deserialization.exception.handler` | `fail` | `log-and-continue`, `dead-letter` (Kafka class names work too) |
/// | `processing.exception.handler` | `fail` | as above |
/// | `production.exception.handler` | `fail` | as above, for an output the log refuses (too large for the topic, a topic or partition that does not exist); I/O errors still fail the commit |
/// | `errors.dead.letter.queue.topic.name` | unset | when set, handlers not set explicitly send failed records there, inside the transaction |
/// | `poll.ms` | 100 | how long an idle thread waits for records |
/// | `buffered.records.per.partition` | 1000 | fetching a partition pauses past this (a fetch sent ahead: past this plus 4000) |
/// | `repartition.purge.interval.ms` | 30000 | how often repartition topics are purged below committed offsets |
///
/// ```
/// use freshet_runtime::{ProcessingGuarantee, StreamsConfig};
/// let config = StreamsConfig::from_pairs(
///     "page-counter",
///     [("num.stream.threads", "2"), ("processing.guarantee", "at_least_once")],
/// )?;
/// assert_eq!(config.num_stream_threads(), 2);
/// assert_eq!(config.processing_guarantee(), ProcessingGuarantee::AtLeastOnce);
/// assert_eq!(config.commit_interval_ms(), 30_000, "at-least-once commits every 30 s");
/// assert!(StreamsConfig::new("x").set("num.stream.thread", "2").is_err(), "typo");
/// # Ok::<(), freshet_runtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsConfig {
    application_id: String,
    data_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    num_stream_threads: usize,
    commit_interval_ms: Option<u64>,
    processing_guarantee: ProcessingGuarantee,
    cache_max_bytes: usize,
    write_buffer_max_bytes: usize,
    sled_cache_bytes: u64,
    auto_create_sink_topics: bool,
    durability: Acks,
    deserialization_handler: Option<HandlerPolicy>,
    processing_handler: Option<HandlerPolicy>,
    production_handler: Option<HandlerPolicy>,
    dead_letter_topic: Option<String>,
    poll_ms: u64,
    buffered_records_per_partition: usize,
    repartition_purge_interval_ms: u64,
    session_timeout_ms: u64,
}

fn invalid(key: &str, value: &str, reason: &str) -> Error {
    Error::InvalidSetting {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T> {
    value
        .trim()
        .replace('_', "")
        .parse::<T>()
        .map_err(|_| invalid(key, value, what))
}

impl StreamsConfig {
    /// Kafka's defaults (freshet's for the guarantee: exactly-once) for `application_id`.
    pub fn new(application_id: impl Into<String>) -> StreamsConfig {
        StreamsConfig {
            application_id: application_id.into(),
            data_dir: None,
            state_dir: None,
            num_stream_threads: 1,
            commit_interval_ms: None,
            processing_guarantee: ProcessingGuarantee::ExactlyOnceV2,
            cache_max_bytes: 10 * 1024 * 1024,
            write_buffer_max_bytes: 64 * 1024 * 1024,
            sled_cache_bytes: 64 * 1024 * 1024,
            auto_create_sink_topics: true,
            durability: Acks::Written,
            deserialization_handler: None,
            processing_handler: None,
            production_handler: None,
            dead_letter_topic: None,
            poll_ms: 100,
            buffered_records_per_partition: 1000,
            repartition_purge_interval_ms: 30_000,
            session_timeout_ms: 45_000,
        }
    }

    /// A config for `application_id` with the `(key, value)` settings applied in order.
    ///
    /// # Errors
    /// [`Error::UnknownSetting`] or [`Error::InvalidSetting`] for the first bad pair.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        application_id: impl Into<String>,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<StreamsConfig> {
        let mut config = StreamsConfig::new(application_id);
        for (k, v) in pairs {
            config.set(k.as_ref(), v.as_ref())?;
        }
        Ok(config)
    }

    /// Sets one setting by its name (see [`STREAMS_CONFIG_KEYS`]).
    ///
    /// # Errors
    /// [`Error::UnknownSetting`] for a key it does not know, [`Error::InvalidSetting`] for a
    /// value it cannot use.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let v = value.trim();
        match key {
            "application.id" => self.application_id = v.to_string(),
            "data.dir" => self.data_dir = Some(PathBuf::from(v)),
            "state.dir" => self.state_dir = Some(PathBuf::from(v)),
            "num.stream.threads" => {
                let n: usize = parse_num(key, value, "expected a whole number ≥ 1")?;
                if n == 0 {
                    return Err(invalid(key, value, "at least one stream thread is needed"));
                }
                self.num_stream_threads = n;
            }
            "commit.interval.ms" => {
                self.commit_interval_ms = Some(parse_num(key, value, "expected milliseconds ≥ 0")?);
            }
            "processing.guarantee" => {
                self.processing_guarantee = match v {
                    "exactly_once_v2" => ProcessingGuarantee::ExactlyOnceV2,
                    "at_least_once" => ProcessingGuarantee::AtLeastOnce,
                    "exactly_once" | "exactly_once_beta" => {
                        return Err(invalid(
                            key,
                            value,
                            "removed in Kafka 4.0; use exactly_once_v2",
                        ))
                    }
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "expected exactly_once_v2 or at_least_once",
                        ))
                    }
                }
            }
            "statestore.cache.max.bytes" => {
                self.cache_max_bytes = parse_num(key, value, "expected a byte count ≥ 0")?;
            }
            "statestore.write.buffer.max.bytes" => {
                self.write_buffer_max_bytes = parse_num(key, value, "expected a byte count")?;
            }
            "state.sled.cache.bytes" => {
                self.sled_cache_bytes = parse_num(key, value, "expected a byte count")?;
            }
            "auto.create.sink.topics" => {
                self.auto_create_sink_topics = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid(key, value, "expected true or false")),
                }
            }
            "log.durability" => {
                self.durability = match v {
                    "written" => Acks::Written,
                    "synced" => Acks::Synced,
                    _ => return Err(invalid(key, value, "expected written or synced")),
                }
            }
            "deserialization.exception.handler" | "default.deserialization.exception.handler" => {
                self.deserialization_handler = Some(HandlerPolicy::parse(key, value)?);
            }
            "processing.exception.handler" => {
                self.processing_handler = Some(HandlerPolicy::parse(key, value)?);
            }
            "production.exception.handler" | "default.production.exception.handler" => {
                self.production_handler = Some(HandlerPolicy::parse(key, value)?);
            }
            "errors.dead.letter.queue.topic.name" => {
                self.dead_letter_topic = (!v.is_empty()).then(|| v.to_string());
            }
            "poll.ms" => self.poll_ms = parse_num(key, value, "expected milliseconds ≥ 0")?,
            "buffered.records.per.partition" => {
                let n: usize = parse_num(key, value, "expected a whole number ≥ 1")?;
                if n == 0 {
                    return Err(invalid(key, value, "must be at least 1"));
                }
                self.buffered_records_per_partition = n;
            }
            "repartition.purge.interval.ms" => {
                self.repartition_purge_interval_ms =
                    parse_num(key, value, "expected milliseconds ≥ 0")?;
            }
            "session.timeout.ms" => {
                let ms: u64 = parse_num(key, value, "expected milliseconds ≥ 1")?;
                if ms == 0 {
                    return Err(invalid(key, value, "must be at least 1 ms"));
                }
                self.session_timeout_ms = ms;
            }
            // Kafka picks default serdes by class name at run time; freshet's topologies are
            // typed, so serdes are fixed when the topology is built: per type with
            // `StreamsBuilder::register_serde`, or per operator (Consumed, Produced, ...).
            "default.key.serde" | "default.value.serde" => {
                return Err(invalid(
                    key,
                    value,
                    "serdes are chosen by type when the topology is built: use StreamsBuilder::register_serde, or pass serdes to the operator (Consumed/Produced/Grouped/Materialized::with)",
                ))
            }
            _ => {
                return Err(Error::UnknownSetting {
                    key: key.to_string(),
                    known: STREAMS_CONFIG_KEYS.join(", "),
                })
            }
        }
        Ok(())
    }

    /// Checks the settings together (start does this).
    ///
    /// # Errors
    /// An application id that is not a legal topic-name prefix; a `dead-letter` handler
    /// without a dead-letter topic.
    pub fn validate(&self) -> Result<()> {
        let id = &self.application_id;
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "application.id",
                id,
                "needs 1 or more of ASCII letters, digits, '.', '_' and '-' (it prefixes topic names)",
            ));
        }
        for (key, h) in [
            (
                "deserialization.exception.handler",
                self.deserialization_handler,
            ),
            ("processing.exception.handler", self.processing_handler),
            ("production.exception.handler", self.production_handler),
        ] {
            if h == Some(HandlerPolicy::DeadLetter) && self.dead_letter_topic.is_none() {
                return Err(invalid(
                    key,
                    "dead-letter",
                    "errors.dead.letter.queue.topic.name is not set",
                ));
            }
        }
        Ok(())
    }

    /// Sets the freshet data directory (the state dir defaults to
    /// `<data dir>/state/<application.id>`).
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
    /// Sets `state.dir`: the app keeps its state in `<state.dir>/<application.id>`.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
    /// Sets `num.stream.threads` (at least 1).
    pub fn with_num_stream_threads(mut self, n: usize) -> Self {
        self.num_stream_threads = n.max(1);
        self
    }
    /// Sets `commit.interval.ms`.
    pub fn with_commit_interval(mut self, every: Duration) -> Self {
        self.commit_interval_ms = Some(u64::try_from(every.as_millis()).unwrap_or(u64::MAX));
        self
    }
    /// Sets `processing.guarantee`.
    pub fn with_processing_guarantee(mut self, guarantee: ProcessingGuarantee) -> Self {
        self.processing_guarantee = guarantee;
        self
    }
    /// Sets `statestore.cache.max.bytes` (0 turns the record caches off).
    pub fn with_cache_max_bytes(mut self, bytes: usize) -> Self {
        self.cache_max_bytes = bytes;
        self
    }
    /// Sets `statestore.write.buffer.max.bytes` (per thread; soft).
    pub fn with_write_buffer_max_bytes(mut self, bytes: usize) -> Self {
        self.write_buffer_max_bytes = bytes;
        self
    }
    /// Sets `state.sled.cache.bytes`.
    pub fn with_sled_cache_bytes(mut self, bytes: u64) -> Self {
        self.sled_cache_bytes = bytes;
        self
    }
    /// Sets `auto.create.sink.topics`.
    pub fn with_auto_create_sink_topics(mut self, on: bool) -> Self {
        self.auto_create_sink_topics = on;
        self
    }
    /// Sets `log.durability`: [`Acks::Written`] or [`Acks::Synced`] (fsync each commit).
    pub fn with_durability(mut self, durability: Acks) -> Self {
        self.durability = match durability {
            Acks::None => Acks::Written,
            d => d,
        };
        self
    }
    /// Sets `deserialization.exception.handler`.
    pub fn with_deserialization_handler(mut self, policy: HandlerPolicy) -> Self {
        self.deserialization_handler = Some(policy);
        self
    }
    /// Sets `processing.exception.handler`.
    pub fn with_processing_handler(mut self, policy: HandlerPolicy) -> Self {
        self.processing_handler = Some(policy);
        self
    }
    /// Sets `production.exception.handler`: what to do with an output the log refuses
    /// (too large for its topic, a topic or partition that does not exist).
    pub fn with_production_handler(mut self, policy: HandlerPolicy) -> Self {
        self.production_handler = Some(policy);
        self
    }
    /// Sets `errors.dead.letter.queue.topic.name`: handlers not set explicitly send failed
    /// records there.
    pub fn with_dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }
    /// Sets `session.timeout.ms` (at least 1 ms).
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout_ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self
    }
    /// Sets `poll.ms`: how long a thread with nothing to do waits for records.
    pub fn with_poll(mut self, wait: Duration) -> Self {
        self.poll_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// `application.id`.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }
    /// `num.stream.threads`.
    pub fn num_stream_threads(&self) -> usize {
        self.num_stream_threads
    }
    /// `commit.interval.ms` in effect: as set, else 100 under exactly-once and 30000 under
    /// at-least-once.
    pub fn commit_interval_ms(&self) -> u64 {
        self.commit_interval_ms
            .unwrap_or(match self.processing_guarantee {
                ProcessingGuarantee::ExactlyOnceV2 => 100,
                ProcessingGuarantee::AtLeastOnce => 30_000,
            })
    }
    /// `processing.guarantee`.
    pub fn processing_guarantee(&self) -> ProcessingGuarantee {
        self.processing_guarantee
    }
    /// `statestore.cache.max.bytes` (all threads together).
    pub fn cache_max_bytes(&self) -> usize {
        self.cache_max_bytes
    }
    /// `statestore.write.buffer.max.bytes` (per thread).
    pub fn write_buffer_max_bytes(&self) -> usize {
        self.write_buffer_max_bytes
    }
    /// `state.sled.cache.bytes`.
    pub fn sled_cache_bytes(&self) -> u64 {
        self.sled_cache_bytes
    }
    /// `auto.create.sink.topics`.
    pub fn auto_create_sink_topics(&self) -> bool {
        self.auto_create_sink_topics
    }
    /// `log.durability` as the acks of the app's appends and transactions.
    pub fn durability(&self) -> Acks {
        self.durability
    }
    /// `errors.dead.letter.queue.topic.name`.
    pub fn dead_letter_topic(&self) -> Option<&str> {
        self.dead_letter_topic.as_deref()
    }
    /// `poll.ms`.
    pub fn poll_ms(&self) -> u64 {
        self.poll_ms
    }
    /// `buffered.records.per.partition`: fetching a partition pauses past this many
    /// buffered records. Where fetches are sent ahead while records are processed (more
    /// cores than stream threads), a partition is fetched ahead while it holds fewer than
    /// this plus one task turn (1000), so a task holds at most that plus one share of a poll.
    pub fn buffered_records_per_partition(&self) -> usize {
        self.buffered_records_per_partition
    }
    /// `repartition.purge.interval.ms`.
    pub fn repartition_purge_interval_ms(&self) -> u64 {
        self.repartition_purge_interval_ms
    }
    /// `session.timeout.ms`: a stream thread (a member of the app's consumer group) not
    /// heard from for this long is removed from the group, and its tasks move to others.
    pub fn session_timeout_ms(&self) -> u64 {
        self.session_timeout_ms
    }

    /// The deserialization handler in effect: as set, else the dead-letter topic when one is
    /// set, else fail.
    pub fn deserialization_policy(&self) -> ErrorPolicy {
        self.policy(self.deserialization_handler)
    }
    /// The processing handler in effect (as [`deserialization_policy`](Self::deserialization_policy)).
    pub fn processing_policy(&self) -> ErrorPolicy {
        self.policy(self.processing_handler)
    }

    /// The production handler in effect (as [`deserialization_policy`](Self::deserialization_policy)):
    /// applied at commit to an output the log refuses for a reason of its own — too large
    /// for the topic, a topic (chosen per record) or partition that does not exist.
    pub fn production_policy(&self) -> ErrorPolicy {
        self.policy(self.production_handler)
    }

    fn policy(&self, set: Option<HandlerPolicy>) -> ErrorPolicy {
        let dlq = || self.dead_letter_topic.clone().map(ErrorPolicy::DeadLetter);
        match set {
            Some(HandlerPolicy::Fail) => ErrorPolicy::Fail,
            Some(HandlerPolicy::LogAndContinue) => ErrorPolicy::LogAndContinue,
            Some(HandlerPolicy::DeadLetter) | None => dlq().unwrap_or(ErrorPolicy::Fail),
        }
    }

    /// The app's state directory: `<state.dir>/<application.id>` when `state.dir` is set,
    /// else `<data dir>/state/<application.id>` with the data dir set here or, failing that,
    /// `log_dir` (the embedded log's own directory). That is the first instance's: while it
    /// is held, another instance takes `<that>.instance-2`, and so on
    /// ([`StreamsApp::state_dir`](crate::StreamsApp::state_dir)).
    ///
    /// # Errors
    /// [`Error::NoStateDir`] when neither is known.
    pub fn state_dir(&self, log_dir: Option<&Path>) -> Result<PathBuf> {
        if let Some(s) = &self.state_dir {
            return Ok(s.join(&self.application_id));
        }
        let data = self
            .data_dir
            .as_deref()
            .or(log_dir)
            .ok_or(Error::NoStateDir)?;
        Ok(data.join("state").join(&self.application_id))
    }
}
