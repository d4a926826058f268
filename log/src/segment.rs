//! One segment of a partition: `{base_offset:020}.log` plus its sparse `.index` and
//! `.timeindex`.
//!
//! The active segment keeps its indexes in memory and writes them out when it is sealed;
//! on open the active segment is rescanned (checking every batch's CRC), which also rebuilds
//! its indexes. Sealed segments load their index files, or rebuild them by a scan when they
//! are missing or do not match the log file.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader, Parsed};
use crate::error::{Error, Result};
use crate::mapping::FileMap;

const INDEX_MAGIC: &[u8; 8] = b"FRIDX\0\0\x01";
const READ_CHUNK: usize = 1 << 20;
/// Appended bytes after which their write-out to disk is started (without waiting for it).
///
/// Sealing a segment fsyncs it; without this, the whole segment (up to `segment.bytes`) is
/// still dirty then, and the append that rolls waits for all of it to reach the disk (a
/// W4 run's repartition partitions roll at the same moment: ≈ 35 ms each, while the
/// stream thread waits for its sends). Started in steps as the data comes, the write-out
/// runs alongside, and the seal waits only for what is still in flight (RocksDB's
/// `bytes_per_sync`).
const WRITE_OUT_STEP: u64 = 4 << 20;

/// The file name of a segment's log file.
pub(crate) fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// What base offsets a scan accepts (see [`scan`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OffsetRule {
    /// The lowest base offset the first batch may have.
    pub(crate) first: i64,
    /// Whether each batch must start exactly where the previous one ended.
    pub(crate) contiguous: bool,
}

/// What a scan of a log file found.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Bytes of complete, valid batches from the start of the scan.
    pub(crate) valid_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub(crate) problem: Option<String>,
}

/// Sequentially reads the batches of `file` from `from` to `to`, checking each CRC, calling
/// `each(header, position, bytes)`; stops at the first incomplete or invalid batch.
///
/// Offsets must increase: a batch whose base offset is below `offsets.first` (for the first)
/// or below the previous batch's last offset + 1 is invalid; with `offsets.contiguous` (a
/// segment never compacted, such as the active one) it must be exactly that. The CRC does not cover
/// the base offset (as in Kafka), so this is what catches a damaged one.
///
/// `peek(header)` sees each batch's header before its body is read: `Break` ends the scan
/// there (cleanly, `problem` is `None`) without reading or checking that batch.
///
/// From a [`Source::File`], the file is read in chunks of about [`READ_CHUNK`] into one
/// shared buffer; each batch handed to `each` is a view of that buffer (or of the mapping),
/// not a copy.
pub(crate) fn scan(
    source: Source<'_>,
    from: u64,
    to: u64,
    offsets: OffsetRule,
    mut peek: impl FnMut(&BatchHeader) -> ControlFlow<()>,
    mut each: impl FnMut(&BatchHeader, u64, &Bytes) -> Result<ControlFlow<()>>,
) -> Result<ScanEnd> {
    let mut pos = from;
    let mut floor = offsets.first;
    let contiguous = offsets.contiguous;
    let mut reader = Reader {
        source,
        buf: BytesMut::new(),
        to,
    };
    let end = |pos: u64, problem: Option<String>| ScanEnd {
        valid_len: pos - from,
        problem,
    };
    let incomplete = |pos: u64, need: usize| {
        (pos < to).then(|| format!("incomplete batch: {} of {need} bytes", to - pos))
    };
    loop {
        let Some(head) = reader.have(pos, batch::HEADER_LEN)? else {
            return Ok(end(pos, incomplete(pos, batch::HEADER_LEN)));
        };
        let h = match batch::parse_header(head) {
            Parsed::Header(h) => h,
            Parsed::Incomplete => return Ok(end(pos, incomplete(pos, batch::HEADER_LEN))),
            Parsed::Invalid(why) => return Ok(end(pos, Some(why))),
        };
        if h.base_offset < floor || (contiguous && h.base_offset != floor) {
            let why = format!("batch offset {} where {floor} was expected", h.base_offset);
            return Ok(end(pos, Some(why)));
        }
        if i64::from(h.record_count) > i64::from(h.last_offset_delta) + 1 {
            let why = format!(
                "batch at offset {} claims {} records in {} offsets",
                h.base_offset,
                h.record_count,
                i64::from(h.last_offset_delta) + 1
            );
            return Ok(end(pos, Some(why)));
        }
        if peek(&h).is_break() {
            return Ok(end(pos, None));
        }
        if reader.have(pos, h.total_len)?.is_none() {
            return Ok(end(pos, incomplete(pos, h.total_len)));
        }
        let bytes = reader.take(pos, h.total_len);
        if !batch::crc_ok(&bytes, &h) {
            return Ok(end(
                pos,
                Some(format!("crc mismatch in batch at offset {}", h.base_offset)),
            ));
        }
        if each(&h, pos, &bytes)?.is_break() {
            return Ok(end(pos, None));
        }
        floor = h.last_offset() + 1;
        pos += h.total_len as u64;
    }
}

/// Where a [`scan`] finds a segment file's bytes.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// The file, read with `pread`.
    File { file: &'a File, path: &'a Path },
    /// The file mapped (its bytes from position 0, at least as far as the scan goes).
    Mapped(&'a Bytes),
}

/// A scan's position in its source.
struct Reader<'a> {
    source: Source<'a>,
    /// Read from a file: its bytes from the scan's position on, as far as they were read.
    buf: BytesMut,
    /// Where the scan ends.
    to: u64,
}

impl Reader<'_> {
    /// The bytes from `pos` (the scan's position) on, at least `need` of them; `None` when
    /// the scan's range ends before that.
    fn have(&mut self, pos: u64, need: usize) -> Result<Option<&[u8]>> {
        if pos + need as u64 > self.to {
            return Ok(None);
        }
        match self.source {
            Source::Mapped(bytes) => Ok(bytes.get(pos as usize..self.to as usize)),
            Source::File { file, path } => {
                if self.buf.len() < need {
                    let want = need.max(READ_CHUNK).min((self.to - pos) as usize);
                    let old = self.buf.len();
                    read_appending(file, path, &mut self.buf, want - old, pos + old as u64)?;
                }
                Ok(Some(&self.buf))
            }
        }
    }

    /// The `len` bytes at `pos` (which [`Reader::have`] found there); the scan moves past them.
    fn take(&mut self, pos: u64, len: usize) -> Bytes {
        match self.source {
            Source::Mapped(bytes) => bytes.slice(pos as usize..pos as usize + len),
            Source::File { .. } => self.buf.split_to(len).freeze(),
        }
    }
}

/// Appends the `n` bytes of `file` at `pos` to `buf`, read straight into its spare room:
/// zeroing the room first (what a read into a slice needs) cost as much as a tenth of a
/// fetch. A file that ends before is an `UnexpectedEof` error.
fn read_appending(file: &File, path: &Path, buf: &mut BytesMut, n: usize, pos: u64) -> Result<()> {
    use std::os::unix::io::AsRawFd;
    buf.reserve(n);
    let mut done = 0;
    while done < n {
        let room = &mut buf.spare_capacity_mut()[..n - done];
        let at = libc::off_t::try_from(pos + done as u64).map_err(|_| {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "position past off_t");
            Error::io("read", path, e)
        })?;
        // SAFETY: `room` is `room.len()` writable bytes owned by `buf`; pread writes at most
        // that many and returns how many it wrote, and only those are marked initialized.
        let rc = unsafe { libc::pread(file.as_raw_fd(), room.as_mut_ptr().cast(), room.len(), at) };
        let read = match rc {
            0 => {
                let e = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                return Err(Error::io("read", path, e));
            }
            rc if rc < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::io("read", path, e));
            }
            rc => rc as usize,
        };
        // SAFETY: the `read` bytes after the initialized ones were just written by pread.
        unsafe { buf.set_len(buf.len() + read) };
        done += read;
    }
    Ok(())
}

/// A segment's in-memory state.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) path: PathBuf,
    file: File,
    /// Bytes of valid data.
    pub(crate) size: u64,
    /// One past the last offset in the segment (`base_offset` when empty).
    pub(crate) next_offset: i64,
    /// Largest timestamp in the segment (`i64::MIN` when empty).
    pub(crate) max_timestamp: i64,
    /// Wall-clock ms when the segment was created (for `segment.ms`).
    pub(crate) created_ms: i64,
    /// `(offset - base_offset, position)` of a batch start, every `index_interval` bytes.
    index: Vec<(u32, u32)>,
    /// `(max timestamp through a batch, offset - base_offset of that batch's start)`.
    time_index: Vec<(i64, u32)>,
    bytes_since_index: u64,
    index_interval: u64,
    /// Bytes appended (and not synced) since their write-out to disk was last started.
    unwritten: u64,
    writable: bool,
    /// Reads go through a mapping of the file (in the process that owns the log; see
    /// `mapping`), else through `pread`.
    map: Option<FileMap>,
}

impl Segment {
    /// Creates an empty segment file.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        index_interval: u64,
    ) -> Result<Segment> {
        let path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io("create segment", &path, e))?;
        Ok(Segment {
            base_offset,
            path,
            file,
            size: 0,
            next_offset: base_offset,
            max_timestamp: i64::MIN,
            created_ms: now_ms,
            index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
            unwritten: 0,
            index_interval,
            writable: true,
            map: Some(FileMap::default()),
        })
    }

    /// Opens an existing segment.
    ///
    /// `active` segments (the last one) are rescanned and, when `writable`, truncated after the
    /// last valid batch — with `contiguous`, at the first batch whose base offset is not the
    /// previous batch's last offset + 1 (true of a segment never compacted); sealed segments
    /// load their index files when they match.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        active: bool,
        contiguous: bool,
        writable: bool,
        index_interval: u64,
        mut on_batch: impl FnMut(&BatchHeader, &Bytes) -> Result<()>,
    ) -> Result<Segment> {
        let path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&path)
            .map_err(|e| Error::io("open segment", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let created_ms = file
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let mut seg = Segment {
            base_offset,
            path,
            file,
            size: 0,
            next_offset: base_offset,
            max_timestamp: i64::MIN,
            created_ms,
            index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
            unwritten: 0,
            index_interval,
            writable: writable && active,
            map: writable.then(FileMap::default),
        };
        if !active && seg.load_index(len) {
            return Ok(seg);
        }
        // Only the active segment is known to be gap-free (compaction rewrites sealed ones).
        let end = seg.scan_from(0, len, active && contiguous, &mut on_batch)?;
        if let Some(problem) = end.problem {
            if !active {
                // Keep the whole file: reads that reach the bad batch report `Corrupt`; the
                // partition sets `next_offset` from the following segment's base.
                tracing::error!(
                    path = %seg.path.display(),
                    position = end.valid_len,
                    %problem,
                    "sealed segment is corrupt; reads of the damaged range will fail"
                );
                seg.size = len;
                return Ok(seg);
            }
            if writable {
                tracing::warn!(
                    path = %seg.path.display(),
                    kept = end.valid_len,
                    dropped = len - end.valid_len,
                    %problem,
                    "recovery truncated the tail of the active segment"
                );
                seg.file
                    .set_len(end.valid_len)
                    .map_err(|e| Error::io("truncate torn tail", &seg.path, e))?;
                seg.file
                    .sync_all()
                    .map_err(|e| Error::io("fsync", &seg.path, e))?;
            }
        }
        Ok(seg)
    }

    /// Scans from `from` (a batch boundary) to `to`, adding what it finds to the in-memory state.
    fn scan_from(
        &mut self,
        from: u64,
        to: u64,
        contiguous: bool,
        on_batch: &mut impl FnMut(&BatchHeader, &Bytes) -> Result<()>,
    ) -> Result<ScanEnd> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::io("dup", &self.path, e))?;
        let path = self.path.clone();
        // From the start, the first batch must not go below the base; from the middle (a
        // refresh), below what is known.
        let floor = if from == 0 {
            self.base_offset
        } else {
            self.next_offset
        };
        let end = scan(
            Source::File {
                file: &file,
                path: &path,
            },
            from,
            to,
            OffsetRule {
                first: floor,
                contiguous,
            },
            |_| ControlFlow::Continue(()),
            |h, pos, bytes| {
                self.note_batch(h, pos);
                on_batch(h, bytes).map(|()| ControlFlow::Continue(()))
            },
        )?;
        self.size = from + end.valid_len;
        Ok(end)
    }

    /// For read-only openers: picks up batches the owner appended since the last look.
    pub(crate) fn refresh(
        &mut self,
        mut on_batch: impl FnMut(&BatchHeader, &Bytes) -> Result<()>,
    ) -> Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .len();
        if len > self.size {
            // Only the active segment is refreshed, and it is never compacted.
            self.scan_from(self.size, len, true, &mut on_batch)?;
        }
        Ok(())
    }

    fn note_batch(&mut self, h: &BatchHeader, pos: u64) {
        let rel = (h.base_offset - self.base_offset) as u32;
        if self.index.is_empty() || self.bytes_since_index >= self.index_interval {
            self.index.push((rel, pos as u32));
            self.time_index
                .push((self.max_timestamp.max(h.max_timestamp), rel));
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_len as u64;
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
        self.next_offset = h.last_offset() + 1;
        // Keep the time index entry of the current interval up to date.
        if let Some(last) = self.time_index.last_mut() {
            last.0 = last.0.max(self.max_timestamp);
        }
    }

    /// Appends one encoded batch; `sync` fsyncs before returning.
    pub(crate) fn append(&mut self, bytes: &[u8], header: &BatchHeader, sync: bool) -> Result<()> {
        if let Err(e) = self.file.write_all_at(bytes, self.size) {
            // Best effort: cut off a partial write so the file stays a run of whole batches.
            let _ = self.file.set_len(self.size);
            return Err(Error::io("append", &self.path, e));
        }
        if sync {
            self.file
                .sync_data()
                .map_err(|e| Error::io("fsync", &self.path, e))?;
        }
        let pos = self.size;
        self.note_batch(header, pos);
        self.size += bytes.len() as u64;
        if !sync {
            self.unwritten += bytes.len() as u64;
            if self.unwritten >= WRITE_OUT_STEP {
                self.start_write_out();
            }
        }
        Ok(())
    }

    /// Starts writing the bytes appended since the last call to disk, without waiting
    /// (see [`WRITE_OUT_STEP`]). Durability does not depend on it: a failure is left for
    /// the fsync that seals the segment (or a flush) to report.
    fn start_write_out(&mut self) {
        let from = self.size.saturating_sub(self.unwritten);
        self.unwritten = 0;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: sync_file_range only reads its arguments; the descriptor is open.
            let r = unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    from as libc::off64_t,
                    (self.size - from) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            if r != 0 {
                tracing::debug!(
                    path = %self.path.display(),
                    error = %std::io::Error::last_os_error(),
                    "could not start writing appended bytes out; the seal's fsync will"
                );
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = from;
    }

    /// fsyncs the log file.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync", &self.path, e))
    }

    /// The position of the batch holding `offset`, or of an earlier batch.
    fn position_for(&self, offset: i64) -> u64 {
        let rel = (offset - self.base_offset).max(0) as u32;
        let i = self.index.partition_point(|&(o, _)| o <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.index[i - 1].1)
        }
    }

    /// Whole, CRC-checked batches whose last offset is ≥ `from`, starting before `limit`,
    /// at most `max_bytes` of them, except that the first is returned whatever its size (as
    /// Kafka's fetch sizes work).
    pub(crate) fn read(
        &self,
        from: i64,
        limit: i64,
        max_bytes: usize,
    ) -> Result<Vec<(BatchHeader, Bytes)>> {
        let mut out = Vec::new();
        // Bytes of the batches taken; a batch is never empty, so 0 means none yet.
        let taken = Cell::new(0usize);
        let start = self.position_for(from);
        let view = self.map.as_ref().and_then(|map| {
            map.view(&self.file, &self.path, self.size as usize, start as usize)
                .map_err(|e| tracing::debug!(error = %e, "mapping failed; reading with pread"))
                .ok()
        });
        let source = match &view {
            Some(view) => Source::Mapped(view),
            None => Source::File {
                file: &self.file,
                path: &self.path,
            },
        };
        let end = scan(
            source,
            start,
            self.size,
            OffsetRule {
                first: self.base_offset,
                contiguous: false,
            },
            // Stop on the header, before reading a batch that would not be returned.
            |h| {
                let over = taken.get() > 0 && taken.get() + h.total_len > max_bytes;
                if h.base_offset >= limit || over {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
            |h, _pos, bytes| {
                if h.last_offset() >= from {
                    taken.set(taken.get() + bytes.len());
                    out.push((*h, bytes.clone()));
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if let Some(problem) = end.problem {
            // Healthy batches before the damage are still served (the caller sees the read
            // end early and stops there); the next read starts at the damage and fails.
            if out.is_empty() {
                return Err(Error::Corrupt {
                    path: self.path.clone(),
                    position: start + end.valid_len,
                    reason: problem,
                });
            }
        }
        if let Some(map) = &self.map {
            if !self.writable && start + end.valid_len >= self.size {
                // Read to the end of a sealed segment: its reader moves on to the next, and
                // the pages it touched here leave with the mapping (when the batches lent
                // from it are dropped). A later read maps the file again.
                map.forget();
            }
        }
        Ok(out)
    }

    /// The first offset in this segment with timestamp ≥ `ts`, if any.
    pub(crate) fn offset_for_time(&self, ts: i64) -> Result<Option<i64>> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let i = self.time_index.partition_point(|&(t, _)| t < ts);
        let from = if i == 0 {
            self.base_offset
        } else {
            // Everything through batch i-1's interval is < ts; start at the next entry.
            self.time_index
                .get(i)
                .map_or(self.base_offset, |&(_, rel)| {
                    self.base_offset + i64::from(rel)
                })
        };
        for (h, bytes) in self.read(from, i64::MAX, usize::MAX)? {
            if h.max_timestamp < ts || h.is_control() {
                continue;
            }
            let records = batch::decode_records(&bytes, &h).map_err(|reason| Error::Corrupt {
                path: self.path.clone(),
                position: 0,
                reason,
            })?;
            if let Some(r) = records.iter().find(|r| r.timestamp >= ts) {
                return Ok(Some(r.offset));
            }
        }
        Ok(None)
    }

    /// Makes the segment immutable: fsyncs it and writes its index files.
    pub(crate) fn seal(&mut self) -> Result<()> {
        if self.writable {
            self.sync()?;
            self.write_index()?;
        }
        self.writable = false;
        Ok(())
    }

    fn index_path(&self) -> PathBuf {
        self.path.with_extension("index")
    }
    fn time_index_path(&self) -> PathBuf {
        self.path.with_extension("timeindex")
    }

    fn write_index(&self) -> Result<()> {
        let mut idx = Vec::with_capacity(32 + self.index.len() * 8);
        idx.extend_from_slice(INDEX_MAGIC);
        idx.extend_from_slice(&self.size.to_be_bytes());
        idx.extend_from_slice(&self.next_offset.to_be_bytes());
        idx.extend_from_slice(&self.max_timestamp.to_be_bytes());
        for &(rel, pos) in &self.index {
            idx.extend_from_slice(&rel.to_be_bytes());
            idx.extend_from_slice(&pos.to_be_bytes());
        }
        let mut tidx = Vec::with_capacity(8 + self.time_index.len() * 12);
        tidx.extend_from_slice(INDEX_MAGIC);
        for &(ts, rel) in &self.time_index {
            tidx.extend_from_slice(&ts.to_be_bytes());
            tidx.extend_from_slice(&rel.to_be_bytes());
        }
        write_file_atomic(&self.index_path(), &idx)?;
        write_file_atomic(&self.time_index_path(), &tidx)
    }

    /// Loads index files written by `seal`; false when they are missing or stale.
    fn load_index(&mut self, log_len: u64) -> bool {
        let (Ok(idx), Ok(tidx)) = (
            fs::read(self.index_path()),
            fs::read(self.time_index_path()),
        ) else {
            return false;
        };
        if idx.len() < 32 || &idx[..8] != INDEX_MAGIC || (idx.len() - 32) % 8 != 0 {
            return false;
        }
        if tidx.len() < 8 || &tidx[..8] != INDEX_MAGIC || (tidx.len() - 8) % 12 != 0 {
            return false;
        }
        let rd8 = |b: &[u8], at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            a
        };
        let rd4 = |b: &[u8], at: usize| [b[at], b[at + 1], b[at + 2], b[at + 3]];
        let size = u64::from_be_bytes(rd8(&idx, 8));
        if size != log_len {
            return false;
        }
        self.size = size;
        self.next_offset = i64::from_be_bytes(rd8(&idx, 16));
        self.max_timestamp = i64::from_be_bytes(rd8(&idx, 24));
        self.index = idx[32..]
            .chunks_exact(8)
            .map(|c| (u32::from_be_bytes(rd4(c, 0)), u32::from_be_bytes(rd4(c, 4))))
            .collect();
        self.time_index = tidx[8..]
            .chunks_exact(12)
            .map(|c| (i64::from_be_bytes(rd8(c, 0)), u32::from_be_bytes(rd4(c, 8))))
            .collect();
        true
    }

    /// Deletes the segment's files.
    pub(crate) fn delete(self) -> Result<()> {
        for p in [self.index_path(), self.time_index_path()] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("delete index", p, e)),
            }
        }
        fs::remove_file(&self.path).map_err(|e| Error::io("delete segment", &self.path, e))
    }
}

/// Writes a file via a temporary and a rename, fsyncing both file and directory.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory so a create, rename or delete in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync dir", dir, e))
}

/// Reads a whole small file, `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut v = Vec::new();
    f.read_to_end(&mut v)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{parse_header, BatchEncoder, Parsed};

    /// A batch of one record at `offset` with a `len`-byte value, and its header.
    fn batch(offset: i64, len: usize) -> (Vec<u8>, BatchHeader) {
        let mut enc = BatchEncoder::new(offset, None, false);
        enc.push(
            offset,
            offset,
            Some(b"k"),
            Some(&vec![offset as u8; len]),
            &[],
        );
        let bytes = enc.finish();
        let Parsed::Header(h) = parse_header(&bytes) else {
            panic!("header")
        };
        (bytes, h)
    }

    #[test]
    fn appends_start_their_write_out_in_steps_and_read_back_whole() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("."), e))?;
        let mut seg = Segment::create(dir.path(), 0, 0, 4096)?;
        let value = 256 << 10;
        let mut written = Vec::new();
        for offset in 0..40 {
            let (bytes, header) = batch(offset, value);
            let before = seg.unwritten;
            seg.append(&bytes, &header, false)?;
            let after = before + bytes.len() as u64;
            // Below a step the bytes wait; reaching one starts their write-out.
            let expected = if after >= WRITE_OUT_STEP { 0 } else { after };
            assert_eq!(seg.unwritten, expected, "after offset {offset}");
            written.push(bytes);
        }
        assert!(
            written.iter().map(|b| b.len() as u64).sum::<u64>() > 2 * WRITE_OUT_STEP,
            "the test crosses more than one step"
        );
        // Synced appends leave nothing to write out.
        let (bytes, header) = batch(40, 16);
        let before = seg.unwritten;
        seg.append(&bytes, &header, true)?;
        assert_eq!(seg.unwritten, before);
        written.push(bytes);
        let read = seg.read(0, i64::MAX, usize::MAX)?;
        let read: Vec<&[u8]> = read.iter().map(|(_, b)| &b[..]).collect();
        let written: Vec<&[u8]> = written.iter().map(Vec::as_slice).collect();
        assert_eq!(read, written);
        seg.seal()
    }
}
