//! The embedded log: a data directory of topics, owned by one process, readable by others.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::batch::BatchEncoder;
use crate::cleaner::BackgroundCleaner;
use crate::config::{Acks, LogConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::group::GroupCoordinator;
use crate::partition::{Isolation, Partition, PartitionOffsets};
use crate::record::{Record, RecordRef, StoredRecord};
use crate::segment;
use crate::topic::{self, Topic, TopicDescription, TopicMeta};
use crate::txn::TxnCoordinator;

const LOCK_FILE: &str = "freshet.lock";
const TOPICS_DIR: &str = "topics";
const TRASH_DIR: &str = "trash";
/// Directory of the log's internal partitions (transaction state, consumer offsets).
pub(crate) const INTERNAL_DIR: &str = "internal";

/// A handle to an embedded log. Cheap to clone; all clones share one open data directory.
///
/// ```
/// use freshet_log::{Acks, Isolation, Log, Record, TopicConfig};
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path())?;
/// log.create_topic("page-views", TopicConfig::partitions(2))?;
/// let at = log.append("page-views", 0, &[Record::new("ann", "/home")], Acks::Written)?;
/// let records = log.read("page-views", 0, at.base_offset, 1 << 20, Isolation::ReadCommitted)?;
/// assert_eq!(records[0].value.as_deref(), Some(&b"/home"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Log {
    pub(crate) inner: Arc<LogInner>,
    /// Shared by every user-facing handle; when the last one goes, the background cleaner is
    /// stopped and joined, so the directory lock is released as the handles drop, never later
    /// by a cleaner thread still holding the log.
    _handles: Arc<HandleGuard>,
}

/// Stops the background cleaner when the last [`Log`] handle is dropped.
#[derive(Debug)]
struct HandleGuard {
    cleaner: Option<BackgroundCleaner>,
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        if let Some(c) = self.cleaner.take() {
            c.stop();
        }
    }
}

impl Log {
    fn from_inner(inner: Arc<LogInner>, cleaner: Option<BackgroundCleaner>) -> Log {
        Log {
            inner,
            _handles: Arc::new(HandleGuard { cleaner }),
        }
    }
}

/// Shared state of an open log.
#[derive(Debug)]
pub(crate) struct LogInner {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) writable: bool,
    pub(crate) owner_pid: Option<u32>,
    _lock: Option<File>,
    pub(crate) topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Woken on every append, marker and offset change, so fetches await instead of polling.
    pub(crate) notify: Notify,
    pub(crate) txn: TxnCoordinator,
    pub(crate) groups: GroupCoordinator,
    /// Serializes topic create / delete / alter.
    admin: Mutex<()>,
    pub(crate) closed: AtomicBool,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The partition written.
    pub partition: u32,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record (`base_offset - 1` for an empty append).
    pub last_offset: i64,
}

impl Log {
    /// Opens (creating if needed) a data directory for writing, with default settings.
    ///
    /// Recovery runs first: torn tails of active segments are truncated, transactions left
    /// open by a dead owner are aborted, decided commits are completed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        Log::open_with(dir, LogConfig::default())
    }

    /// Opens a data directory for writing with `config`.
    ///
    /// # Errors
    /// [`Error::Locked`] when another process (or another `Log` in this one) owns it.
    pub fn open_with(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join(TOPICS_DIR))
            .map_err(|e| Error::io("create data dir", &dir, e))?;
        let lock = take_lock(&dir)?;
        let _ = fs::remove_dir_all(dir.join(TRASH_DIR));
        let topics = load_topics(&dir, true, config.index_interval_bytes)?;
        let txn = TxnCoordinator::open(&dir, true, config.index_interval_bytes)?;
        let groups = GroupCoordinator::open(&dir, true, config.index_interval_bytes)?;
        let inner = Arc::new(LogInner {
            dir,
            config,
            writable: true,
            owner_pid: Some(std::process::id()),
            _lock: Some(lock),
            topics: RwLock::new(topics),
            notify: Notify::new(),
            txn,
            groups,
            admin: Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        inner.txn.recover(&inner)?;
        inner.groups.load(&inner)?;
        let cleaner = inner
            .config
            .cleaner_interval
            .and_then(|every| BackgroundCleaner::start(Arc::downgrade(&inner), every));
        Ok(Log::from_inner(inner, cleaner))
    }

    /// Opens a data directory read-only, alongside the process that owns it.
    ///
    /// A read-only log sees what the owner has written up to its last complete batch; each
    /// call looks again. Writes fail with [`Error::ReadOnly`] naming the owner. Fetches poll
    /// (every 50 ms) since the owner cannot wake another process.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Log> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.join(TOPICS_DIR).is_dir() {
            return Err(Error::io(
                "open read-only",
                &dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no freshet data directory here",
                ),
            ));
        }
        let config = LogConfig {
            cleaner_interval: None,
            ..LogConfig::default()
        };
        let topics = load_topics(&dir, false, config.index_interval_bytes)?;
        let txn = TxnCoordinator::open(&dir, false, config.index_interval_bytes)?;
        let groups = GroupCoordinator::open(&dir, false, config.index_interval_bytes)?;
        let inner = Arc::new(LogInner {
            owner_pid: read_owner_pid(&dir),
            dir,
            config,
            writable: false,
            _lock: None,
            topics: RwLock::new(topics),
            notify: Notify::new(),
            txn,
            groups,
            admin: Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        let log = Log::from_inner(inner, None);
        log.refresh()?;
        Ok(log)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether this handle was opened read-only.
    pub fn is_read_only(&self) -> bool {
        !self.inner.writable
    }

    /// The settings the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    pub(crate) fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if !self.inner.writable {
            return Err(Error::ReadOnly {
                dir: self.inner.dir.clone(),
                pid: self.inner.owner_pid,
                op,
            });
        }
        Ok(())
    }

    /// Read-only handles: picks up topics, data, transactions and offsets written since.
    pub(crate) fn refresh(&self) -> Result<()> {
        if self.inner.writable {
            return Ok(());
        }
        self.refresh_topics()?;
        // Data first, then transaction state, so nothing is taken as stable before its
        // transaction is known (see `Partition::refresh`).
        let mut caps = Vec::new();
        for t in self.inner.topics.read().values() {
            for p in t.partitions.read().iter() {
                caps.push((p.clone(), p.refresh()?));
            }
        }
        self.inner.txn.refresh(&self.inner)?;
        for (p, cap) in caps {
            p.finish_refresh(cap)?;
        }
        self.inner.groups.refresh(&self.inner)?;
        Ok(())
    }

    /// Read-only handles: picks up created, deleted and altered topics, opening only what is
    /// new (a topic whose id changed was deleted and recreated).
    fn refresh_topics(&self) -> Result<()> {
        let tdir = self.inner.dir.join(TOPICS_DIR);
        let interval = self.inner.config.index_interval_bytes;
        let entries = fs::read_dir(&tdir).map_err(|e| Error::io("list topics", &tdir, e))?;
        let mut fresh = BTreeMap::new();
        let old = self.inner.topics.read().clone();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list topics", &tdir, e))?;
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let meta = match topic::read_meta(&dir) {
                Ok(Some(meta)) => meta,
                // Mid-creation or mid-deletion by the owner: look again next time.
                Ok(None) | Err(Error::Io { .. }) => continue,
                Err(e) => return Err(e),
            };
            let name = meta.name.clone();
            match old.get(&name).filter(|t| t.meta.read().id == meta.id) {
                Some(t) => {
                    *t.meta.write() = meta;
                    t.open_partitions(false, interval)?;
                    fresh.insert(name, t.clone());
                }
                None => {
                    if let Some(t) = Topic::open(dir, false, interval)? {
                        fresh.insert(name, Arc::new(t));
                    }
                }
            }
        }
        *self.inner.topics.write() = fresh;
        Ok(())
    }

    /// Creates a topic; returns its description (with its new id).
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<TopicDescription> {
        self.check_writable("create topic")?;
        topic::validate_name(name)?;
        config.validate()?;
        let _admin = self.inner.admin.lock();
        if self.inner.topics.read().contains_key(name) {
            return Err(Error::TopicExists {
                topic: name.to_string(),
            });
        }
        let dir = self.inner.dir.join(TOPICS_DIR).join(name);
        if dir.exists() {
            // Left over from an interrupted creation (no metadata): start clean.
            fs::remove_dir_all(&dir).map_err(|e| Error::io("remove stale topic dir", &dir, e))?;
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            config,
        };
        let topic = Arc::new(Topic::create(
            dir,
            meta,
            self.inner.config.index_interval_bytes,
        )?);
        segment::sync_dir(&self.inner.dir.join(TOPICS_DIR))?;
        let desc = topic.describe();
        self.inner.topics.write().insert(name.to_string(), topic);
        tracing::info!(topic = name, id = %desc.id, partitions = desc.partitions.len(), "created topic");
        Ok(desc)
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_writable("delete topic")?;
        let _admin = self.inner.admin.lock();
        let topic = self
            .inner
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })?;
        let id = topic.meta.read().id;
        let trash = self.inner.dir.join(TRASH_DIR);
        fs::create_dir_all(&trash).map_err(|e| Error::io("create trash dir", &trash, e))?;
        let to = trash.join(format!("{name}-{id}"));
        fs::rename(&topic.dir, &to).map_err(|e| Error::io("delete topic", &topic.dir, e))?;
        segment::sync_dir(&self.inner.dir.join(TOPICS_DIR))?;
        drop(topic);
        fs::remove_dir_all(&to).map_err(|e| Error::io("remove deleted topic", &to, e))?;
        self.inner
            .groups
            .forget_topic(name, self.inner.config.durability)?;
        tracing::info!(topic = name, %id, "deleted topic");
        Ok(())
    }

    /// Names of all topics, sorted.
    pub fn list_topics(&self) -> Result<Vec<String>> {
        self.refresh()?;
        Ok(self.inner.topics.read().keys().cloned().collect())
    }

    /// A topic's id, settings and per-partition offsets.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.refresh()?;
        Ok(self.topic(name)?.describe())
    }

    /// Whether a topic exists.
    pub fn topic_exists(&self, name: &str) -> bool {
        let _ = self.refresh();
        self.inner.topics.read().contains_key(name)
    }

    /// Changes a topic: grows its partition count and/or sets settings (`k=v` by Kafka name).
    ///
    /// # Errors
    /// Shrinking partitions is refused ([`Error::InvalidConfig`]), as in Kafka.
    pub fn alter_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        settings: &[(String, String)],
    ) -> Result<TopicDescription> {
        self.check_writable("alter topic")?;
        let _admin = self.inner.admin.lock();
        let topic = self.topic(name)?;
        let mut config = topic.meta.read().config.clone();
        for (k, v) in settings {
            config.set(k, v)?;
        }
        if let Some(n) = partitions {
            if n < config.partitions {
                return Err(Error::InvalidConfig {
                    key: "partitions".into(),
                    value: n.to_string(),
                    reason: format!(
                        "topic '{name}' has {} partitions; partitions can only be added",
                        config.partitions
                    ),
                });
            }
            config.partitions = n;
        }
        topic.meta.write().config = config.clone();
        topic.open_partitions(true, self.inner.config.index_interval_bytes)?;
        for p in topic.partitions.read().iter() {
            p.set_config(config.clone());
        }
        topic.save()?;
        tracing::info!(topic = name, "altered topic");
        Ok(topic.describe())
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })
    }

    pub(crate) fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        self.topic(topic)?.partition(partition)
    }

    /// Number of partitions of a topic.
    pub fn partition_count(&self, topic: &str) -> Result<u32> {
        Ok(self.topic(topic)?.meta.read().config.partitions)
    }

    /// Appends records to one partition as one batch (non-transactional).
    ///
    /// With [`Acks::Written`] the batch is in the operating system when this returns, with
    /// [`Acks::Synced`] on disk.
    pub fn append(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record],
        acks: Acks,
    ) -> Result<AppendResult> {
        self.check_writable("append")?;
        let p = self.partition(topic, partition)?;
        let (base_offset, last_offset) = p.append(records, None, acks)?;
        self.inner.notify.notify_waiters();
        Ok(AppendResult {
            partition,
            base_offset,
            last_offset,
        })
    }

    /// Appends borrowed records to one partition as one batch (non-transactional), with the
    /// same durability and the same bytes on disk as [`Log::append`].
    ///
    /// This is the bulk path: a writer whose keys and values already sit in its own buffers
    /// appends them without building a [`Record`] for each, so nothing is allocated or
    /// reference-counted per record; they are encoded straight from the slices.
    ///
    /// ```
    /// use freshet_log::{Acks, Isolation, Log, RecordRef, TopicConfig};
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("t", TopicConfig::partitions(1))?;
    /// let fields = b"k1v1k2v2";
    /// let batch: Vec<RecordRef<'_>> = fields
    ///     .chunks_exact(4)
    ///     .map(|kv| RecordRef::new(&kv[..2], &kv[2..]))
    ///     .collect();
    /// let at = log.append_refs("t", 0, &batch, Acks::Written)?;
    /// assert_eq!((at.base_offset, at.last_offset), (0, 1));
    /// let records = log.read("t", 0, 0, 1 << 20, Isolation::ReadCommitted)?;
    /// assert_eq!(records[1].value.as_deref(), Some(&b"v2"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_refs(
        &self,
        topic: &str,
        partition: u32,
        records: &[RecordRef<'_>],
        acks: Acks,
    ) -> Result<AppendResult> {
        self.check_writable("append")?;
        let p = self.partition(topic, partition)?;
        let (base_offset, last_offset) = p.append(records, None, acks)?;
        self.inner.notify.notify_waiters();
        Ok(AppendResult {
            partition,
            base_offset,
            last_offset,
        })
    }

    /// Appends the records of `batch`, encoded by the writer, to one partition outside any
    /// transaction (see [`BatchBuilder`](crate::BatchBuilder)).
    pub fn append_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: crate::BatchBuilder,
        acks: Acks,
    ) -> Result<AppendResult> {
        self.append_encoded(topic, partition, batch.enc, acks)
    }

    /// Appends a batch the producer encoded as records were sent.
    pub(crate) fn append_encoded(
        &self,
        topic: &str,
        partition: u32,
        batch: BatchEncoder,
        acks: Acks,
    ) -> Result<AppendResult> {
        self.check_writable("append")?;
        let p = self.partition(topic, partition)?;
        let (base_offset, last_offset) = p.append_encoded(batch, None, acks)?;
        self.inner.notify.notify_waiters();
        Ok(AppendResult {
            partition,
            base_offset,
            last_offset,
        })
    }

    /// Reads records of one partition from `offset`, up to about `max_bytes` (at least one
    /// batch when there is data).
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<Vec<StoredRecord>> {
        self.refresh_partition(topic, partition)?;
        self.partition(topic, partition)?
            .read(offset, max_bytes, isolation)
    }

    /// Start, end and last stable offsets of a partition.
    pub fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets> {
        self.refresh_partition(topic, partition)?;
        Ok(self.partition(topic, partition)?.offsets())
    }

    /// The first offset whose timestamp is ≥ `timestamp` (Kafka's `offsetsForTimes`), or
    /// `None` when all records are older.
    pub fn offset_for_time(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<i64>> {
        self.refresh_partition(topic, partition)?;
        self.partition(topic, partition)?.offset_for_time(timestamp)
    }

    /// Advances the log start offset of a partition to `below` (records below it are gone);
    /// returns the new start. Repartition topics are purged this way.
    pub fn delete_records(&self, topic: &str, partition: u32, below: i64) -> Result<i64> {
        self.check_writable("delete records")?;
        self.partition(topic, partition)?.delete_records(below)
    }

    /// fsyncs every partition's active segment.
    pub fn flush(&self) -> Result<()> {
        for t in self.inner.topics.read().values() {
            for p in t.partitions.read().iter() {
                p.flush()?;
            }
        }
        Ok(())
    }

    /// Flushes to disk and refuses further writes through every handle of this log.
    /// The directory lock is released when the last handle is dropped.
    pub fn close(&self) -> Result<()> {
        if self.inner.writable && !self.inner.closed.swap(true, Ordering::AcqRel) {
            self.flush()?;
        }
        self.inner.notify.notify_waiters();
        Ok(())
    }

    fn refresh_partition(&self, topic: &str, partition: u32) -> Result<()> {
        self.refresh_partitions(&[(topic, partition)])
    }

    /// Read-only handles: looks again at just these partitions (and transaction state);
    /// falls back to a full refresh when a topic is new, gone or was recreated.
    pub(crate) fn refresh_partitions(&self, which: &[(&str, u32)]) -> Result<()> {
        if self.inner.writable {
            return Ok(());
        }
        let mut parts = Vec::with_capacity(which.len());
        for &(topic, partition) in which {
            let known = self.topic(topic).ok().and_then(|t| {
                let id = t.meta.read().id;
                let on_disk = topic::read_meta(&t.dir).ok().flatten().map(|m| m.id);
                (on_disk == Some(id))
                    .then(|| t.partition(partition).ok())
                    .flatten()
            });
            match known {
                Some(p) => parts.push(p),
                None => return self.refresh(),
            }
        }
        let mut caps = Vec::with_capacity(parts.len());
        for p in parts {
            let cap = p.refresh()?;
            caps.push((p, cap));
        }
        self.inner.txn.refresh(&self.inner)?;
        for (p, cap) in caps {
            p.finish_refresh(cap)?;
        }
        Ok(())
    }
}

fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    // A process that forks (to spawn a child) shares the lock's open file description until
    // the child execs and closes it (close-on-exec): a lock freed a moment ago can look taken
    // for that instant. So a refusal is retried briefly before it is reported.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe {
            libc::flock(
                std::os::unix::io::AsRawFd::as_raw_fd(&file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        if rc == 0 {
            break;
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Locked {
                dir: dir.to_path_buf(),
                pid: read_owner_pid(dir),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    file.set_len(0)
        .map_err(|e| Error::io("write lock file", &path, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("write lock file", &path, e))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| Error::io("write lock file", &path, e))?;
    Ok(file)
}

fn read_owner_pid(dir: &Path) -> Option<u32> {
    let mut s = String::new();
    File::open(dir.join(LOCK_FILE))
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    s.trim().parse().ok()
}

fn load_topics(
    dir: &Path,
    writable: bool,
    index_interval: u64,
) -> Result<BTreeMap<String, Arc<Topic>>> {
    let tdir = dir.join(TOPICS_DIR);
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(&tdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list topics", &tdir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list topics", &tdir, e))?;
        if !entry.path().is_dir() {
            continue;
        }
        if let Some(t) = Topic::open(entry.path(), writable, index_interval)? {
            let name = t.meta.read().name.clone();
            out.insert(name, Arc::new(t));
        }
    }
    Ok(out)
}
