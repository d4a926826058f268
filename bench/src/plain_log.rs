//! The baseline log: one plain file per partition of length-prefixed records, written
//! through a `BufWriter` and read back sequentially. It writes about the bytes freshet
//! writes (key, value, timestamp, lengths; no CRC, offsets or batch headers) and issues the
//! same system calls at the same batch boundaries: one `write` per batch, plus one
//! `sync_data` per batch when synced.
//!
//! A record is `[key len: u16 LE][key][value len: u16 LE][value][timestamp: i64 LE]`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use freshet_log::partition_for_key;

use crate::input::{self, Checksum, PARTITIONS};
use crate::BoxError;

/// Read and write buffer size; larger than a batch so each batch is one `write`.
const BUF: usize = 4 << 20;

fn file_of(dir: &Path, partition: u32) -> PathBuf {
    dir.join(format!("partition-{partition}.dat"))
}

/// Writes records `0..n` into `dir`, partitioned like freshet, flushing (and with `sync`
/// fsyncing) a partition's file every `batch_records` records and at the end.
pub(crate) fn produce(
    dir: &Path,
    n: u64,
    batch_records: usize,
    sync: bool,
) -> Result<(), BoxError> {
    let mut parts = Vec::with_capacity(PARTITIONS as usize);
    for p in 0..PARTITIONS {
        let f = File::create(file_of(dir, p))?;
        parts.push((BufWriter::with_capacity(BUF, f), 0usize));
    }
    let end_batch = |w: &mut BufWriter<File>| -> Result<(), BoxError> {
        w.flush()?;
        if sync {
            w.get_ref().sync_data()?;
        }
        Ok(())
    };
    for i in 0..n {
        let key = input::key(i);
        let (w, pending) = &mut parts[partition_for_key(&key, PARTITIONS) as usize];
        w.write_all(&(key.len() as u16).to_le_bytes())?;
        w.write_all(&key)?;
        let value = input::value(i);
        w.write_all(&(value.len() as u16).to_le_bytes())?;
        w.write_all(&value)?;
        w.write_all(&input::timestamp(i).to_le_bytes())?;
        *pending += 1;
        if *pending == batch_records {
            end_batch(w)?;
            *pending = 0;
        }
    }
    for (w, pending) in &mut parts {
        if *pending > 0 {
            end_batch(w)?;
        }
    }
    Ok(())
}

/// Reads every record back, partition by partition, folding each into a checksum.
pub(crate) fn consume(dir: &Path) -> Result<Checksum, BoxError> {
    let mut sum = Checksum::default();
    let mut buf = vec![0u8; BUF];
    for p in 0..PARTITIONS {
        let mut f = File::open(file_of(dir, p))?;
        let mut filled = 0;
        loop {
            let got = f.read(&mut buf[filled..])?;
            if got == 0 {
                if filled > 0 {
                    return Err(format!("partition {p}: {filled} bytes of a torn record").into());
                }
                break;
            }
            filled += got;
            let used = parse(&buf[..filled], &mut sum);
            buf.copy_within(used..filled, 0);
            filled -= used;
        }
    }
    Ok(sum)
}

/// Folds the whole records at the start of `b` into `sum`; returns the bytes they take.
fn parse(b: &[u8], sum: &mut Checksum) -> usize {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let mut pos = 0;
    loop {
        if pos + 2 > b.len() {
            return pos;
        }
        let klen = u16_at(pos);
        let v_at = pos + 2 + klen;
        if v_at + 2 > b.len() {
            return pos;
        }
        let vlen = u16_at(v_at);
        let ts_at = v_at + 2 + vlen;
        if ts_at + 8 > b.len() {
            return pos;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[ts_at..ts_at + 8]);
        sum.add(
            &b[pos + 2..v_at],
            &b[v_at + 2..ts_at],
            i64::from_le_bytes(ts),
        );
        pos = ts_at + 8;
    }
}
