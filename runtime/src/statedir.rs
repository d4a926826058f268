//! The instance's state directory and the locks that keep instances and threads apart.
//!
//! Each [`StreamsApp`](crate::StreamsApp) instance owns one state directory from `new`
//! until it is closed (or dropped), locked with a lock file (`.lock`, `flock`ed). It is
//! `<data dir>/state/<application.id>` (or `<state.dir>/<application.id>`); when another
//! live instance holds it — several instances of one app in one process — the next free of
//! `<application.id>.instance-2`, `.instance-3`, … beside it is used. So every instance has
//! its own sled database, and a restarted instance takes the first free directory again,
//! finding the local state it left there.
//!
//! The directory also keeps the instance's id (`instance.id`, made once): it names the
//! instance's transactional sessions (`<application.id>-<instance id>-<thread>`), so a
//! restart fences its own predecessor's open transactions, and tells the task assignor
//! which tasks the instance has state for.
//!
//! Inside an instance, its stream threads share the one sled database; [`TaskLocks`] makes
//! sure a task moving between two threads of the instance is closed by the old owner before
//! the new one opens its stores.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use freshet_streams::TaskId;
use parking_lot::Mutex;

use crate::error::{Error, Result};

/// The lock file of a state directory.
pub const STATE_DIR_LOCK_FILE: &str = ".lock";
/// The file holding an instance's id.
const INSTANCE_ID_FILE: &str = "instance.id";
/// How many instance directories an app may have side by side.
const MAX_INSTANCES: usize = 1024;
/// Directories held by instances of this process (a `flock` refusal from another process
/// is retried briefly; one from this process is final).
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The state directory of instance `n` (1-based) of the app whose first instance uses
/// `base`: `base` itself, then `<base>.instance-<n>`.
pub fn instance_state_dir(base: &Path, n: usize) -> PathBuf {
    if n <= 1 {
        return base.to_path_buf();
    }
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".instance-{n}"));
    base.with_file_name(name)
}

/// Every existing state directory of the app whose first instance uses `base` (`base` and
/// its `.instance-<n>` siblings), sorted.
///
/// # Errors
/// The parent directory cannot be read.
pub fn app_state_dirs(base: &Path) -> std::io::Result<Vec<PathBuf>> {
    let Some(parent) = base.parent() else {
        return Ok(Vec::new());
    };
    let Some(app) = base.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{app}.instance-");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name == app
            || name
                .strip_prefix(&prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if ours && entry.path().is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a live instance (of any process) holds the state directory `dir`.
///
/// # Errors
/// The lock file exists but cannot be opened.
pub fn state_dir_in_use(dir: &Path) -> std::io::Result<bool> {
    if HELD.lock().contains(dir) {
        return Ok(true);
    }
    let path = dir.join(STATE_DIR_LOCK_FILE);
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    // Retried briefly: a process forking a child shares the lock for an instant.
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        if try_flock(&file) {
            // Dropping the file releases the lock at once.
            return Ok(false);
        }
        if Instant::now() >= deadline {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe {
        libc::flock(
            std::os::unix::io::AsRawFd::as_raw_fd(file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    rc == 0
}

/// A state directory held by this instance until dropped.
#[derive(Debug)]
pub(crate) struct StateDirLock {
    dir: PathBuf,
    instance_id: String,
    /// Holds the `flock`.
    _file: File,
}

impl StateDirLock {
    /// Takes the first free state directory of the app whose first instance uses `base`.
    pub(crate) fn acquire(base: &Path) -> Result<StateDirLock> {
        for n in 1..=MAX_INSTANCES {
            let dir = instance_state_dir(base, n);
            if let Some(lock) = Self::try_take(&dir)? {
                if n > 1 {
                    tracing::info!(state_dir = %dir.display(), "another instance of the app holds the first state directory; using this one");
                }
                return Ok(lock);
            }
        }
        Err(Error::StateDir {
            path: base.to_path_buf(),
            reason: format!("all {MAX_INSTANCES} instance directories are in use"),
        })
    }

    /// Takes `dir` itself; `None` while another live instance holds it.
    pub(crate) fn take(dir: &Path) -> Result<Option<StateDirLock>> {
        Self::try_take(dir)
    }

    fn try_take(dir: &Path) -> Result<Option<StateDirLock>> {
        let io = |reason: std::io::Error| Error::StateDir {
            path: dir.to_path_buf(),
            reason: reason.to_string(),
        };
        {
            let mut held = HELD.lock();
            if held.contains(dir) {
                return Ok(None);
            }
            // Reserved while the lock file is taken.
            held.insert(dir.to_path_buf());
        }
        let taken = (|| {
            std::fs::create_dir_all(dir).map_err(io)?;
            let path = dir.join(STATE_DIR_LOCK_FILE);
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            let deadline = Instant::now() + Duration::from_millis(300);
            while !try_flock(&file) {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            file.set_len(0).map_err(io)?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(io)?;
            let instance_id = instance_id(dir).map_err(io)?;
            Ok(Some(StateDirLock {
                dir: dir.to_path_buf(),
                instance_id,
                _file: file,
            }))
        })();
        if !matches!(taken, Ok(Some(_))) {
            HELD.lock().remove(dir);
        }
        taken
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance's id.
    pub(crate) fn instance_id(&self) -> &str {
        &self.instance_id
    }
}

impl Drop for StateDirLock {
    fn drop(&mut self) {
        HELD.lock().remove(&self.dir);
    }
}

/// The id kept in `dir`, made (a random UUID) when there is none.
fn instance_id(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(INSTANCE_ID_FILE);
    let mut s = String::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_string(&mut s)?;
            let id = s.trim();
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Ok(id.to_string());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tmp = dir.join(format!("{INSTANCE_ID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// Removes everything in the state directory `dir` but its lock file and instance id (the
/// instance keeps its identity; its stores restore from their changelogs).
pub(crate) fn wipe_state(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name == STATE_DIR_LOCK_FILE || name == INSTANCE_ID_FILE {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Which thread of the instance has each task open (or is opening it), and whether it is
/// open for interactive queries.
#[derive(Debug, Default)]
pub(crate) struct TaskLocks {
    owners: Mutex<BTreeMap<TaskId, (usize, bool)>>,
}

impl TaskLocks {
    /// Takes `task` for `thread`; false while another thread holds it.
    pub(crate) fn try_lock(&self, task: TaskId, thread: usize) -> bool {
        let mut o = self.owners.lock();
        match o.get(&task) {
            Some((t, _)) => *t == thread,
            None => {
                o.insert(task, (thread, false));
                true
            }
        }
    }

    /// Marks `task` open (restored): interactive queries may read it.
    pub(crate) fn activate(&self, task: TaskId, thread: usize) {
        if let Some(e) = self.owners.lock().get_mut(&task) {
            if e.0 == thread {
                e.1 = true;
            }
        }
    }

    /// Releases `task` if `thread` holds it.
    pub(crate) fn unlock(&self, task: TaskId, thread: usize) {
        let mut o = self.owners.lock();
        if o.get(&task).is_some_and(|(t, _)| *t == thread) {
            o.remove(&task);
        }
    }

    /// Releases every task `thread` holds.
    pub(crate) fn unlock_all(&self, thread: usize) {
        self.owners.lock().retain(|_, (t, _)| *t != thread);
    }

    /// Whether `task` is open in this instance.
    pub(crate) fn is_active(&self, task: TaskId) -> bool {
        self.owners.lock().get(&task).is_some_and(|(_, a)| *a)
    }

    /// The tasks open in this instance.
    pub(crate) fn active(&self) -> BTreeSet<TaskId> {
        self.owners
            .lock()
            .iter()
            .filter(|(_, (_, a))| *a)
            .map(|(t, _)| *t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_take_the_first_free_directory() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("state").join("app");
        let a = StateDirLock::acquire(&base).unwrap();
        let b = StateDirLock::acquire(&base).unwrap();
        assert_eq!(a.dir(), base);
        assert_eq!(b.dir(), root.path().join("state").join("app.instance-2"));
        assert_ne!(a.instance_id(), b.instance_id());
        assert!(state_dir_in_use(a.dir()).unwrap());
        let a_id = a.instance_id().to_string();
        drop(a);
        assert!(!state_dir_in_use(&base).unwrap());
        let c = StateDirLock::acquire(&base).unwrap();
        assert_eq!(c.dir(), base, "the freed first directory is taken again");
        assert_eq!(c.instance_id(), a_id, "with its instance id");
        std::fs::create_dir_all(root.path().join("state").join("app.instance-x")).unwrap();
        std::fs::create_dir_all(root.path().join("state").join("apps")).unwrap();
        assert_eq!(
            app_state_dirs(&base).unwrap(),
            vec![
                base.clone(),
                root.path().join("state").join("app.instance-2")
            ]
        );
    }

    #[test]
    fn a_task_is_held_by_one_thread_at_a_time() {
        let locks = TaskLocks::default();
        let t = TaskId {
            subtopology: 0,
            partition: 1,
        };
        assert!(locks.try_lock(t, 0));
        assert!(!locks.try_lock(t, 1));
        assert!(!locks.is_active(t));
        locks.activate(t, 0);
        assert!(locks.is_active(t));
        locks.unlock(t, 1);
        assert!(locks.is_active(t), "only the holder releases");
        locks.unlock_all(0);
        assert!(locks.try_lock(t, 1));
    }
}
