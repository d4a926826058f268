//! Segment files read through a shared read-only memory mapping.
//!
//! A `pread` copies every fetched byte out of the page cache: in the stateless and
//! repartitioning workloads that copy was a sixth of the fetching thread's time. A
//! mapping lends the page cache's own pages instead, and a fetched batch is a view of
//! them ([`Bytes::from_owner`]) that keeps the mapping alive for as long as it is held.
//!
//! Only the process that owns the log (holds its lock) maps its files. A mapped page
//! past the end of its file faults (`SIGBUS`); this process never shrinks a segment file
//! below what it has read (recovery truncates a torn tail before any read; a failed
//! append cuts back to the last whole batch, past what readers were shown; compaction
//! renames a new file over the old, whose pages stay mapped). A reader of a log another
//! process owns could see that owner truncate a file under it, so it reads with `pread`.
//! A disk that fails to read a mapped page also faults rather than returning an error.
//!
//! Mapped pages the process touched count in its resident memory although they are the
//! page cache's: each mapping gives back its pages more than [`KEEP_BEHIND`] behind the
//! reads every [`RELEASE_EVERY`] bytes (`MADV_DONTNEED`, which for a shared file mapping only drops
//! the process's page table entries; a view still held faults them in again), and a sealed
//! segment read to its end drops its mapping. A mapping that fails (the process's limit on
//! mappings, say) is logged and the read goes through `pread`.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Result};

/// A mapping grows in steps of this many bytes (address space, not memory), so an active
/// segment is mapped again only every so often as it grows.
const MAP_STEP: usize = 64 << 20;

/// Pages behind the reads are given back once this many bytes of them are resident.
const RELEASE_EVERY: usize = 1 << 20;

/// How far behind a read's start pages stay: what was fetched before it is most likely
/// still buffered, unprocessed (a stream thread keeps thousands of records per partition
/// ahead of its processing), and a page given back under it is faulted in again by the
/// thread that processes — the busier one.
const KEEP_BEHIND: usize = 2 << 20;

/// One mapping of a file's first `len` bytes.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and its pages are only read, from any thread, until
// it is unmapped on drop (when no view of it is left).
unsafe impl Send for Mapping {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for Mapping {}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until drop. Only bytes below the file's
        // length are ever read (see the module's doc).
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `Mapping::new` mapped, once; no view of it is left.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

impl Mapping {
    fn new(file: &File, path: &Path, len: usize) -> Result<Mapping> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: a new read-only shared mapping of an open file; the kernel picks where.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::io("map", path, std::io::Error::last_os_error()));
        }
        Ok(Mapping { ptr, len })
    }
}

/// A segment file's mapping, made on the first read and made again, larger, when the
/// file has grown past it.
#[derive(Default)]
pub(crate) struct FileMap {
    state: Mutex<MapState>,
}

impl std::fmt::Debug for FileMap {
    // The mapping's length, not its bytes (a segment's Debug would print the whole file).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("FileMap")
            .field("mapped", &st.bytes.as_ref().map_or(0, Bytes::len))
            .field("released", &st.released)
            .finish()
    }
}

#[derive(Default)]
struct MapState {
    /// The whole mapping (`None` before the first read).
    bytes: Option<Bytes>,
    /// Below this position the pages were given back.
    released: usize,
}

impl FileMap {
    /// The file's first `len` bytes, mapped; a read starting at `from` has no use for the
    /// pages well behind it, which are given back.
    pub(crate) fn view(&self, file: &File, path: &Path, len: usize, from: usize) -> Result<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let mut st = self.state.lock();
        let mapped = st.bytes.as_ref().map_or(0, Bytes::len);
        if mapped < len {
            let size = len.div_ceil(MAP_STEP).max(1) * MAP_STEP;
            st.bytes = Some(Bytes::from_owner(Mapping::new(file, path, size)?));
            st.released = 0;
        }
        let Some(bytes) = st.bytes.clone() else {
            unreachable!("mapped above");
        };
        let behind = from.saturating_sub(KEEP_BEHIND) & !(page_size() - 1);
        if behind >= st.released + RELEASE_EVERY {
            // SAFETY: advice on whole pages inside the mapping; for a shared file mapping
            // MADV_DONTNEED drops page table entries only (the data stays in the file and
            // the page cache, and a later read of these pages faults them in again).
            unsafe {
                libc::madvise(
                    bytes.as_ptr().add(st.released) as *mut libc::c_void,
                    behind - st.released,
                    libc::MADV_DONTNEED,
                );
            }
            st.released = behind;
        }
        Ok(bytes.slice(..len))
    }
}

impl FileMap {
    /// Drops the mapping (it is unmapped once the views lent from it are dropped).
    pub(crate) fn forget(&self) {
        *self.state.lock() = MapState::default();
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096).max(1)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_view_shows_the_file_and_grows_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"hello").unwrap();
        let map = FileMap::default();
        let first = map.view(&file, &path, 5, 0).unwrap();
        assert_eq!(&first[..], b"hello");
        // Past the first mapping: mapped again; the old view stays valid.
        let more = vec![7u8; MAP_STEP];
        file.write_all(&more).unwrap();
        let len = 5 + MAP_STEP;
        let second = map.view(&file, &path, len, 0).unwrap();
        assert_eq!(second.len(), len);
        assert_eq!(&second[..5], b"hello");
        assert!(second[5..].iter().all(|&b| b == 7));
        assert_eq!(&first[..], b"hello");
        // Reads far ahead give pages back; what is read behind them is still there.
        let ahead = map.view(&file, &path, len, len - 1).unwrap();
        let kept = (len - 1 - KEEP_BEHIND) & !(page_size() - 1);
        assert_eq!(map.state.lock().released, kept);
        assert_eq!(&ahead[..5], b"hello");
        assert_eq!(ahead[len - 1], 7);
        // Forgotten: mapped again on the next read; views lent before stay valid.
        map.forget();
        assert!(map.state.lock().bytes.is_none());
        assert_eq!(&map.view(&file, &path, 5, 0).unwrap()[..], b"hello");
        assert_eq!(&first[..], b"hello");
        assert_eq!(ahead[len - 1], 7);
    }
}
