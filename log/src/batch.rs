//! The on-disk record batch: encoding, header parsing, checksum and decoding.
//!
//! The layout follows Kafka's record batch v2 (see `log/docs/format.md`): a fixed header
//! with a CRC32C over everything after the checksum field, then records with zigzag-varint
//! fields. A batch is written with one `write` call, so it is either wholly in the file or
//! torn at the tail (which recovery truncates).

use bytes::Bytes;

use crate::record::StoredRecord;

/// Bytes of the fixed batch header.
pub(crate) const HEADER_LEN: usize = 53;
/// Bytes before `batch_length` counts: base offset (8) and the length field itself (4).
pub(crate) const LOG_OVERHEAD: usize = 12;
const MAGIC: u8 = 2;
const CRC_START: usize = 17;
const ATTR_TRANSACTIONAL: u16 = 0x10;
const ATTR_CONTROL: u16 = 0x20;

/// The parsed fixed header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) base_offset: i64,
    /// Total bytes of the batch including the 12-byte prefix.
    pub(crate) total_len: usize,
    pub(crate) crc: u32,
    pub(crate) attributes: u16,
    pub(crate) last_offset_delta: u32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) record_count: u32,
}

impl BatchHeader {
    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub(crate) fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub(crate) fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
}

/// What a header parse found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A complete header (the body may still be incomplete: check `total_len`).
    Header(BatchHeader),
    /// Fewer than `HEADER_LEN` bytes.
    Incomplete,
    /// The bytes cannot be a batch header.
    Invalid(String),
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}
fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Parses the fixed header at the start of `buf`.
pub(crate) fn parse_header(buf: &[u8]) -> Parsed {
    if buf.len() < HEADER_LEN {
        return Parsed::Incomplete;
    }
    let batch_length = be_u32(buf, 8) as usize;
    if buf[12] != MAGIC {
        return Parsed::Invalid(format!("bad magic byte {}", buf[12]));
    }
    if batch_length + LOG_OVERHEAD < HEADER_LEN {
        return Parsed::Invalid(format!("batch length {batch_length} shorter than a header"));
    }
    let header = BatchHeader {
        base_offset: be_i64(buf, 0),
        total_len: batch_length + LOG_OVERHEAD,
        crc: be_u32(buf, 13),
        attributes: be_u16(buf, 17),
        last_offset_delta: be_u32(buf, 19),
        base_timestamp: be_i64(buf, 23),
        max_timestamp: be_i64(buf, 31),
        producer_id: be_i64(buf, 39),
        producer_epoch: i16::from_be_bytes([buf[47], buf[48]]),
        record_count: be_u32(buf, 49),
    };
    if header.base_offset < 0 {
        return Parsed::Invalid(format!("negative base offset {}", header.base_offset));
    }
    Parsed::Header(header)
}

/// Checks a whole batch's CRC32C.
pub(crate) fn crc_ok(batch: &[u8], header: &BatchHeader) -> bool {
    batch.len() == header.total_len && crc32c::crc32c(&batch[CRC_START..]) == header.crc
}

/// Producer identity stamped on a transactional batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerStamp {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
}

/// Builds one batch in memory.
#[derive(Debug)]
pub(crate) struct BatchEncoder {
    buf: Vec<u8>,
    base_offset: i64,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    last_offset_delta: u32,
    count: u32,
    attributes: u16,
    producer: ProducerStamp,
    /// A floor for `last_offset_delta` (see [`BatchEncoder::rewrite_of`]).
    min_last_offset_delta: u32,
}

impl BatchEncoder {
    /// A batch that replaces `header`'s batch with some of its records (the cleaner): same
    /// base offset, attributes and producer, and the same last offset even when the last
    /// record is gone, so a reader's next position still moves past the whole original batch.
    /// With no records pushed it is an empty batch holding the original offset range.
    pub(crate) fn rewrite_of(header: &BatchHeader) -> Self {
        let mut enc = BatchEncoder::new(header.base_offset, None, false);
        enc.attributes = header.attributes;
        enc.producer = ProducerStamp {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
        };
        enc.min_last_offset_delta = header.last_offset_delta;
        enc
    }

    /// A batch whose first record gets `base_offset`.
    pub(crate) fn new(base_offset: i64, producer: Option<ProducerStamp>, control: bool) -> Self {
        let mut attributes = 0;
        if producer.is_some() {
            attributes |= ATTR_TRANSACTIONAL;
        }
        if control {
            attributes |= ATTR_CONTROL;
        }
        let mut buf = Vec::with_capacity(256);
        buf.resize(HEADER_LEN, 0);
        BatchEncoder {
            buf,
            base_offset,
            base_timestamp: None,
            max_timestamp: i64::MIN,
            last_offset_delta: 0,
            count: 0,
            attributes,
            producer: producer.unwrap_or(ProducerStamp {
                producer_id: -1,
                epoch: -1,
            }),
            min_last_offset_delta: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Makes room for about `additional` more bytes of records at once, so a large batch
    /// does not grow (and copy) its buffer step by step.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Appends a record at `offset` (≥ the previous record's offset + 1; gaps are allowed).
    pub(crate) fn push(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(String, Bytes)],
    ) {
        let base_ts = *self.base_timestamp.get_or_insert(timestamp);
        let offset_delta = (offset - self.base_offset) as u32;
        let ts_delta = timestamp.wrapping_sub(base_ts);
        // Encoded straight into the batch: the length prefix is computed first, so no
        // per-record buffer is allocated (this is the bulk produce path's inner loop).
        let body_len = 1 // record attributes
            + varint_len(i64::from(offset_delta as i32))
            + varint_len(ts_delta)
            + bytes_len(key)
            + bytes_len(value)
            + varint_len(i64::from(headers.len() as i32))
            + headers
                .iter()
                .map(|(name, val)| bytes_len(Some(name.as_bytes())) + bytes_len(Some(val)))
                .sum::<usize>();
        self.buf.reserve(5 + body_len);
        put_varint(&mut self.buf, body_len as i32);
        let body_start = self.buf.len();
        self.buf.push(0u8); // record attributes (unused)
        put_varlong(&mut self.buf, ts_delta);
        put_varint(&mut self.buf, offset_delta as i32);
        put_bytes(&mut self.buf, key);
        put_bytes(&mut self.buf, value);
        put_varint(&mut self.buf, headers.len() as i32);
        for (name, val) in headers {
            put_bytes(&mut self.buf, Some(name.as_bytes()));
            put_bytes(&mut self.buf, Some(val));
        }
        debug_assert_eq!(self.buf.len() - body_start, body_len);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.last_offset_delta = offset_delta;
        self.count += 1;
    }

    /// Seals the header and CRC and returns the bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let b = &mut self.buf;
        let batch_length = (b.len() - LOG_OVERHEAD) as u32;
        let base_ts = self.base_timestamp.unwrap_or(0);
        let max_ts = if self.count == 0 {
            base_ts
        } else {
            self.max_timestamp
        };
        b[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[12] = MAGIC;
        b[17..19].copy_from_slice(&self.attributes.to_be_bytes());
        let last_offset_delta = self.last_offset_delta.max(self.min_last_offset_delta);
        b[19..23].copy_from_slice(&last_offset_delta.to_be_bytes());
        b[23..31].copy_from_slice(&base_ts.to_be_bytes());
        b[31..39].copy_from_slice(&max_ts.to_be_bytes());
        b[39..47].copy_from_slice(&self.producer.producer_id.to_be_bytes());
        b[47..49].copy_from_slice(&self.producer.epoch.to_be_bytes());
        b[49..53].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[13..17].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }
}

/// The kind of a transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Abort,
    Commit,
}

/// A one-record control batch marking the end of a transaction.
pub(crate) fn marker_batch(
    offset: i64,
    timestamp: i64,
    producer: ProducerStamp,
    marker: Marker,
) -> Vec<u8> {
    let kind: i16 = match marker {
        Marker::Abort => 0,
        Marker::Commit => 1,
    };
    let mut key = [0u8; 4];
    key[2..4].copy_from_slice(&kind.to_be_bytes());
    let mut enc = BatchEncoder::new(offset, Some(producer), true);
    enc.push(offset, timestamp, Some(&key), Some(&[0u8; 6]), &[]);
    enc.finish()
}

/// Decodes every record of a whole, CRC-checked batch.
pub(crate) fn decode_records(
    batch: &Bytes,
    header: &BatchHeader,
) -> Result<Vec<StoredRecord>, String> {
    let mut out = Vec::new();
    decode_records_into(batch, header, i64::MIN, usize::MAX, &mut out)?;
    Ok(out)
}

/// Decodes the records of a whole, CRC-checked batch whose offset is ≥ `from`, at most
/// `max` of them, onto the end of `out`; returns how many it added.
///
/// Readers of many batches decode in place instead of moving each batch's records again.
/// Records below `from` are stepped over by their length, without being materialized, so a
/// reader resuming inside a batch pays little for its start. On error, `out` may hold some
/// of the batch's records.
pub(crate) fn decode_records_into(
    batch: &Bytes,
    header: &BatchHeader,
    from: i64,
    max: usize,
    out: &mut Vec<StoredRecord>,
) -> Result<usize, String> {
    out.reserve((header.record_count as usize).min(max));
    let mut added = 0;
    let mut cur = Cursor {
        buf: batch,
        pos: HEADER_LEN,
    };
    for i in 0..header.record_count {
        if added == max {
            return Ok(added);
        }
        let len = cur.varint()?;
        if len < 0 {
            return Err(format!("record {i}: negative length"));
        }
        let end = cur.pos + len as usize;
        if end > batch.len() {
            return Err(format!("record {i}: length {len} past the batch end"));
        }
        cur.skip(1)?; // attributes
        let ts_delta = cur.varlong()?;
        let offset = header.base_offset + i64::from(cur.varint()?);
        if offset < from {
            cur.pos = end;
            continue;
        }
        let key = cur.bytes()?;
        let value = cur.bytes()?;
        let n_headers = cur.varint()?;
        if n_headers < 0 {
            return Err(format!("record {i}: negative header count"));
        }
        let mut headers = Vec::with_capacity(n_headers as usize);
        for _ in 0..n_headers {
            let name = cur.bytes()?.unwrap_or_default();
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| format!("record {i}: header name is not UTF-8"))?;
            let val = cur.bytes()?.unwrap_or_default();
            headers.push((name, val));
        }
        if cur.pos != end {
            return Err(format!("record {i}: length mismatch"));
        }
        out.push(StoredRecord {
            offset,
            timestamp: header.base_timestamp.wrapping_add(ts_delta),
            key,
            value,
            headers,
        });
        added += 1;
    }
    if cur.pos != batch.len() {
        return Err("trailing bytes after the last record".to_string());
    }
    Ok(added)
}

struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Cursor<'_> {
    fn skip(&mut self, n: usize) -> Result<(), String> {
        if self.pos + n > self.buf.len() {
            return Err("truncated record".to_string());
        }
        self.pos += n;
        Ok(())
    }
    #[inline]
    fn varlong(&mut self) -> Result<i64, String> {
        // Most varints of a record (small deltas and lengths) are one byte.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(i64::from(b >> 1) ^ -i64::from(b & 1));
            }
        }
        let mut raw: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err("varint too long".to_string());
            }
        }
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }
    #[inline]
    fn varint(&mut self) -> Result<i32, String> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| "varint out of range".to_string())
    }
    fn bytes(&mut self) -> Result<Option<Bytes>, String> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let start = self.pos;
        self.skip(len as usize)?;
        Ok(Some(self.buf.slice(start..self.pos)))
    }
}

/// Bytes `put_varlong(v)` writes.
#[inline]
fn varint_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    // ceil(significant bits / 7) without a division (as prost computes it).
    ((((z | 1).leading_zeros() ^ 63) * 9 + 73) / 64) as usize
}

/// Bytes `put_bytes(b)` writes.
#[inline]
fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

#[inline]
fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_varlong(buf, i64::from(v));
}

#[inline]
fn put_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_with_gaps_nulls_and_headers() {
        let mut enc = BatchEncoder::new(100, None, false);
        enc.push(100, 5_000, Some(b"k"), Some(b"v"), &[]);
        enc.push(
            103,
            4_000,
            None,
            None,
            &[("h".into(), Bytes::from_static(b"x"))],
        );
        let bytes = Bytes::from(enc.finish());
        let Parsed::Header(h) = parse_header(&bytes) else {
            panic!()
        };
        assert!(crc_ok(&bytes, &h));
        assert_eq!(h.last_offset(), 103);
        assert_eq!(h.max_timestamp, 5_000);
        let recs = decode_records(&bytes, &h).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].offset, 103);
        assert_eq!(recs[1].timestamp, 4_000);
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].headers[0].0, "h");
    }

    #[test]
    fn flipped_byte_fails_crc() {
        let mut enc = BatchEncoder::new(0, None, false);
        enc.push(0, 1, Some(b"k"), Some(b"value"), &[]);
        let mut bytes = enc.finish();
        let n = bytes.len();
        bytes[n - 2] ^= 0x40;
        let Parsed::Header(h) = parse_header(&bytes) else {
            panic!()
        };
        assert!(!crc_ok(&bytes, &h));
    }

    #[test]
    fn varints_round_trip_extremes() {
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let bytes = Bytes::from(b);
            let mut c = Cursor {
                buf: &bytes,
                pos: 0,
            };
            assert_eq!(c.varlong().unwrap(), v);
        }
    }
}
