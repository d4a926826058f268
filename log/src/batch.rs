//! The on-disk record batch: encoding, header parsing, checksum and decoding.
//!
//! The layout follows Kafka's record batch v2 (see `log/docs/format.md`): a fixed header
//! with a CRC32C over everything after the checksum field, then records with zigzag-varint
//! fields. A batch is written with one `write` call, so it is either wholly in the file or
//! torn at the tail (which recovery truncates).

use bytes::Bytes;

use crate::record::{RecordRef, StoredRecord};

/// Bytes of the fixed batch header.
pub(crate) const HEADER_LEN: usize = 53;
/// Bytes before `batch_length` counts: base offset (8) and the length field itself (4).
pub(crate) const LOG_OVERHEAD: usize = 12;
const MAGIC: u8 = 2;
/// The largest base offset a batch may have (far beyond any real log).
const MAX_BASE_OFFSET: i64 = i64::MAX / 2;
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
    if header.base_offset > MAX_BASE_OFFSET {
        // Keeps `base + last offset delta + 1` and every offset sum below it from overflowing.
        return Parsed::Invalid(format!("base offset {} out of range", header.base_offset));
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
#[derive(Debug, Clone)]
pub(crate) struct BatchEncoder {
    /// The batch so far is `buf[..len]`; the rest is room for more records (zeroed when it
    /// was made; a small record's wide stores may leave bytes past its end), so a record
    /// is written with plain stores instead of growing the vector (a capacity check per
    /// byte, or a `memset` call per record). `finish` cuts the room off.
    buf: Vec<u8>,
    len: usize,
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
        BatchEncoder {
            buf: vec![0; 256],
            len: HEADER_LEN,
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
        if self.len + additional > self.buf.len() {
            self.grow(additional);
        }
    }

    /// Grows the room to at least `additional` bytes past `len`, at least doubling.
    #[cold]
    fn grow(&mut self, additional: usize) {
        let want = (self.len + additional).max(2 * self.buf.len());
        self.buf.resize(want, 0);
        // Whatever the allocator gave beyond that is room too.
        self.buf.resize(self.buf.capacity(), 0);
    }

    /// Moves the batch to start at `base_offset`, keeping every record's place relative to
    /// the first: the producer encodes records as they are sent, before it knows where the
    /// batch will land, and the partition sets the base when it appends. Offsets passed to
    /// [`BatchEncoder::push`] are relative to the base the encoder had then.
    pub(crate) fn set_base_offset(&mut self, base_offset: i64) {
        self.base_offset = base_offset;
    }

    /// Makes the batch a transactional producer's (the header is written at `finish`).
    pub(crate) fn set_producer(&mut self, producer: ProducerStamp) {
        self.attributes |= ATTR_TRANSACTIONAL;
        self.producer = producer;
    }

    /// Records pushed so far.
    pub(crate) fn len(&self) -> u32 {
        self.count
    }

    /// Appends `r` at `offset`, stamped `default_timestamp` when it has no timestamp of its
    /// own: the one encode loop of [`Log::append`](crate::Log::append),
    /// [`Log::append_refs`](crate::Log::append_refs) and the producer.
    #[inline]
    pub(crate) fn push_record(&mut self, offset: i64, r: &RecordRef<'_>, default_timestamp: i64) {
        self.push(
            offset,
            r.timestamp.unwrap_or(default_timestamp),
            r.key,
            r.value,
            r.headers,
        );
    }

    /// Appends a record at `offset` (≥ the previous record's offset + 1; gaps are allowed).
    #[inline(always)]
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
        let fields = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
        if !(headers.is_empty()
            && fields <= SMALL_FIELDS
            && self.push_small(offset_delta, ts_delta, key, value))
        {
            self.push_general(offset_delta, ts_delta, key, value, headers);
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.last_offset_delta = offset_delta;
        self.count += 1;
    }

    /// The common case of a bulk load, a record without headers whose key and value take at
    /// most [`SMALL_FIELDS`] bytes: its body is shorter than 64 bytes, so the length prefix
    /// is one byte written after the body, and the whole record is written into a fixed
    /// window of the room without computing each field's length first. False (and
    /// nothing written) when the room cannot be made.
    #[inline(always)]
    fn push_small(
        &mut self,
        offset_delta: u32,
        ts_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> bool {
        let start = self.len;
        if start + SMALL_WINDOW > self.buf.len() {
            self.grow(SMALL_WINDOW);
        }
        let Some((w, _)) = self
            .buf
            .get_mut(start..)
            .and_then(<[u8]>::split_first_chunk_mut::<SMALL_WINDOW>)
        else {
            return false;
        };
        // At most 1 + 1 + 10 + 5 + 1 + 1 + SMALL_FIELDS + 1 = 52 bytes: inside the window.
        w[1] = 0; // record attributes (unused)
        let mut pos = 2;
        pos = put_zigzag(w, pos, ts_delta);
        pos = put_zigzag(w, pos, i64::from(offset_delta as i32));
        pos = put_short(w, pos, key);
        pos = put_short(w, pos, value);
        w[pos] = 0; // no headers
        pos += 1;
        // The body is `pos - 1` < 64 bytes: its zigzag varint is one byte.
        w[0] = ((pos - 1) as u8) << 1;
        self.len = start + pos;
        true
    }

    /// Any record: every field's length is computed first to size the length prefix.
    fn push_general(
        &mut self,
        offset_delta: u32,
        ts_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(String, Bytes)],
    ) {
        let mut body_len = 1 // record attributes
            + varint_len(i64::from(offset_delta as i32))
            + varint_len(ts_delta)
            + bytes_len(key)
            + bytes_len(value)
            + varint_len(i64::from(headers.len() as i32));
        body_len += headers
            .iter()
            .map(|(name, val)| bytes_len(Some(name.as_bytes())) + bytes_len(Some(val)))
            .sum::<usize>();
        let len_prefix = body_len as i32;
        let total = varint_len(i64::from(len_prefix)) + body_len;
        let start = self.len;
        if start + total > self.buf.len() {
            self.grow(total);
        }
        let mut w = Writer {
            out: &mut self.buf[start..start + total],
            pos: 0,
        };
        w.varint(len_prefix);
        w.byte(0); // record attributes (unused)
        w.varlong(ts_delta);
        w.varint(offset_delta as i32);
        w.bytes(key);
        w.bytes(value);
        w.varint(headers.len() as i32);
        for (name, val) in headers {
            w.bytes(Some(name.as_bytes()));
            w.bytes(Some(val));
        }
        debug_assert_eq!(w.pos, total);
        self.len = start + w.pos;
    }

    /// Seals the header and CRC and returns the bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.truncate(self.len);
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
    // A record takes at least 7 bytes: a damaged count must not size a huge allocation.
    let fits = (batch.len().saturating_sub(HEADER_LEN)) / 7;
    out.reserve((header.record_count as usize).min(max).min(fits));
    walk_records(batch, header, from, max, |r| {
        let slice = |f: Option<(usize, usize)>| f.map(|(start, end)| batch.slice(start..end));
        out.push(StoredRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: slice(r.key),
            value: slice(r.value),
            headers: r.headers.map_or_else(Vec::new, |h| *h),
        });
    })
}

/// One record's fields where its batch holds them: key and value as `start..end` of the
/// batch's bytes (`None`: null); headers decoded (no allocation when there are none).
pub(crate) struct RawFields {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<(usize, usize)>,
    pub(crate) value: Option<(usize, usize)>,
    /// The headers, boxed (`None`: none, as most records): one word, so a record's
    /// fields move in words. An empty vector built here and moved out was stored in words
    /// and loaded back in a wider copy, which waited for the stores.
    #[allow(clippy::box_collection)] // one word on purpose (above), for a rare allocation
    pub(crate) headers: Option<Box<Vec<(String, Bytes)>>>,
}

/// Why a record cannot be decoded. A small copyable value, not a `String`, so the parser's
/// results stay in registers (a `Result<_, String>` per field was moved through the stack,
/// and its stores and reloads cost more than the parsing); the message is made at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Malformed {
    Truncated,
    VarintTooLong,
    VarintRange,
    NegativeLength,
    PastEnd(i32),
    NegativeHeaderCount,
    HeaderName,
    LengthMismatch,
}

impl Malformed {
    fn message(self, record: u32) -> String {
        let what = match self {
            Malformed::Truncated => "truncated record".to_string(),
            Malformed::VarintTooLong => "varint too long".to_string(),
            Malformed::VarintRange => "varint out of range".to_string(),
            Malformed::NegativeLength => "negative length".to_string(),
            Malformed::PastEnd(len) => format!("length {len} past the batch end"),
            Malformed::NegativeHeaderCount => "negative header count".to_string(),
            Malformed::HeaderName => "header name is not UTF-8".to_string(),
            Malformed::LengthMismatch => "length mismatch".to_string(),
        };
        format!("record {record}: {what}")
    }
}

/// Walks the records of a whole, CRC-checked batch whose offset is ≥ `from`, at most `max`
/// of them, handing each to `each`; returns how many. The one parser of both readers: the
/// one that materializes records and the one that only notes where their fields are.
pub(crate) fn walk_records(
    batch: &Bytes,
    header: &BatchHeader,
    from: i64,
    max: usize,
    mut each: impl FnMut(RawFields),
) -> Result<usize, String> {
    let mut added = 0;
    let mut cur = Cursor {
        bytes: batch,
        buf: batch,
        pos: HEADER_LEN,
    };
    for i in 0..header.record_count {
        if added == max {
            return Ok(added);
        }
        let fields = walk_one(&mut cur, header, from).map_err(|m| m.message(i))?;
        if let Some(fields) = fields {
            each(fields);
            added += 1;
        }
    }
    if cur.pos != batch.len() {
        return Err("trailing bytes after the last record".to_string());
    }
    Ok(added)
}

/// The record at the cursor, or `None` (stepped over) when its offset is below `from`.
#[inline(always)]
fn walk_one(
    cur: &mut Cursor<'_>,
    header: &BatchHeader,
    from: i64,
) -> Result<Option<RawFields>, Malformed> {
    let len = cur.varint()?;
    if len < 0 {
        return Err(Malformed::NegativeLength);
    }
    let end = cur.pos + len as usize;
    if end > cur.buf.len() {
        return Err(Malformed::PastEnd(len));
    }
    cur.skip(1)?; // attributes
    let ts_delta = cur.varlong()?;
    let offset = header.base_offset + i64::from(cur.varint()?);
    if offset < from {
        cur.pos = end;
        return Ok(None);
    }
    let key = cur.range()?;
    let value = cur.range()?;
    let n_headers = cur.varint()?;
    if n_headers < 0 {
        return Err(Malformed::NegativeHeaderCount);
    }
    let headers = if n_headers == 0 {
        None
    } else {
        Some(Box::new(cur.headers(n_headers as usize, end)?))
    };
    if cur.pos != end {
        return Err(Malformed::LengthMismatch);
    }
    Ok(Some(RawFields {
        offset,
        timestamp: header.base_timestamp.wrapping_add(ts_delta),
        key,
        value,
        headers,
    }))
}

struct Cursor<'a> {
    /// The batch (header values are slices of it).
    bytes: &'a Bytes,
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn skip(&mut self, n: usize) -> Result<(), Malformed> {
        if self.pos + n > self.buf.len() {
            return Err(Malformed::Truncated);
        }
        self.pos += n;
        Ok(())
    }
    #[inline(always)]
    fn varlong(&mut self) -> Result<i64, Malformed> {
        // Most varints of a record (small deltas and lengths) are one byte; offset deltas
        // past 63 (most of a full batch's) are two.
        match self.buf.get(self.pos..self.pos + 2) {
            Some(&[b, _]) if b < 0x80 => {
                self.pos += 1;
                return Ok(i64::from(b >> 1) ^ -i64::from(b & 1));
            }
            Some(&[b0, b1]) if b1 < 0x80 => {
                self.pos += 2;
                let raw = u64::from(b0 & 0x7f) | u64::from(b1) << 7;
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
            _ => {}
        }
        self.varlong_long()
    }
    #[inline(never)]
    fn varlong_long(&mut self) -> Result<i64, Malformed> {
        let mut raw: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos).ok_or(Malformed::Truncated)?;
            self.pos += 1;
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(Malformed::VarintTooLong);
            }
        }
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }
    #[inline(always)]
    fn varint(&mut self) -> Result<i32, Malformed> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| Malformed::VarintRange)
    }
    fn bytes(&mut self) -> Result<Option<Bytes>, Malformed> {
        Ok(self
            .range()?
            .map(|(start, end)| self.bytes.slice(start..end)))
    }
    /// A length-prefixed field as `start..end` of the buffer (`None`: null).
    #[inline(always)]
    fn range(&mut self) -> Result<Option<(usize, usize)>, Malformed> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let start = self.pos;
        self.skip(len as usize)?;
        Ok(Some((start, self.pos)))
    }
    /// `n` headers of a record ending at `end`.
    #[inline(never)]
    fn headers(&mut self, n: usize, end: usize) -> Result<Vec<(String, Bytes)>, Malformed> {
        // A header takes at least 2 bytes (two lengths).
        let mut headers = Vec::with_capacity(n.min(end.saturating_sub(self.pos) / 2));
        for _ in 0..n {
            let name = self.bytes()?.unwrap_or_default();
            let name = String::from_utf8(name.to_vec()).map_err(|_| Malformed::HeaderName)?;
            let val = self.bytes()?.unwrap_or_default();
            headers.push((name, val));
        }
        Ok(headers)
    }
}

/// Bytes a zigzag varint of `v` takes.
#[inline]
fn varint_len(v: i64) -> usize {
    zigzag_len(((v << 1) ^ (v >> 63)) as u64)
}

/// Bytes the varint of an already zigzag-encoded `z` takes.
#[inline(always)]
fn zigzag_len(z: u64) -> usize {
    // ceil(significant bits / 7) without a division (as prost computes it).
    ((((z | 1).leading_zeros() ^ 63) * 9 + 73) / 64) as usize
}

/// Bytes a length-prefixed (or null) byte string takes.
#[inline]
fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

/// Key and value bytes (together) of a record [`BatchEncoder::push_small`] takes.
const SMALL_FIELDS: usize = 32;
/// The window [`BatchEncoder::push_small`] writes a record into.
const SMALL_WINDOW: usize = 64;

/// Writes the zigzag varint of `v` at `pos` of a small record's window; returns the end.
#[inline(always)]
fn put_zigzag(w: &mut [u8; SMALL_WINDOW], mut pos: usize, v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    if z < 1 << 28 {
        // Up to four bytes at once, without a loop: the 7-bit groups spread into bytes,
        // continuation bits on all but the last, one 4-byte store (bytes past the varint
        // are inside the window and overwritten next).
        let len = zigzag_len(z);
        let z = z as u32;
        let spread =
            (z & 0x7f) | ((z << 1) & 0x7f00) | ((z << 2) & 0x7f_0000) | ((z << 3) & 0x7f00_0000);
        let continuation = 0x0080_8080u32 >> (32 - 8 * len);
        if let Some(d) = w.get_mut(pos..).and_then(<[u8]>::first_chunk_mut::<4>) {
            *d = (spread | continuation).to_le_bytes();
            return pos + len;
        }
    }
    while z >= 0x80 {
        w[pos] = (z as u8) | 0x80;
        pos += 1;
        z >>= 7;
    }
    w[pos] = z as u8;
    pos + 1
}

/// Writes a length-prefixed field of at most [`SMALL_FIELDS`] bytes (or a null one) at
/// `pos` of a small record's window; returns the end.
#[inline(always)]
fn put_short(w: &mut [u8; SMALL_WINDOW], pos: usize, b: Option<&[u8]>) -> usize {
    let Some(b) = b else {
        w[pos] = 1; // zigzag(-1)
        return pos + 1;
    };
    let n = b.len();
    w[pos] = (n as u8) << 1;
    let out = &mut w[pos + 1..pos + 1 + n];
    // Two overlapping fixed-size copies, inline: a `memcpy` call costs more than the copy.
    // (Whole words, not `copy_from_slice`: LLVM merges the arms' fixed-size copies back
    // into one `memcpy` call of variable size.)
    match n {
        16..=32 => copy_overlapping::<16>(out, b),
        8..=15 => copy_overlapping::<8>(out, b),
        4..=7 => copy_overlapping::<4>(out, b),
        _ => out.copy_from_slice(b),
    }
    pos + 1 + n
}

/// Copies `src` (`N..=2N` bytes) into `dst` of the same length as its first and last `N`
/// bytes.
#[inline(always)]
fn copy_overlapping<const N: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = *s;
    }
}

/// Writes a record into the tail of a batch sized for it beforehand.
struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.out[self.pos] = b;
        self.pos += 1;
    }

    #[inline(always)]
    fn varlong(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        // Most varints of a record (small deltas and lengths) are one byte.
        if z < 0x80 {
            self.byte(z as u8);
            return;
        }
        while z >= 0x80 {
            self.byte((z as u8) | 0x80);
            z >>= 7;
        }
        self.byte(z as u8);
    }

    #[inline(always)]
    fn varint(&mut self, v: i32) {
        self.varlong(i64::from(v));
    }

    #[inline(always)]
    fn bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.varint(-1),
            Some(b) => {
                self.varint(b.len() as i32);
                self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
                self.pos += b.len();
            }
        }
    }
}

#[cfg(test)]
fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    let start = buf.len();
    buf.resize(start + varint_len(v), 0);
    let mut w = Writer {
        out: &mut buf[start..],
        pos: 0,
    };
    w.varlong(v);
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
        // Around the one- and two-byte boundaries (the decoder's fast paths), alone and
        // followed by more bytes (each path looks two bytes ahead when it can).
        let values = [
            0i64, 1, -1, 63, -64, 64, -65, 300, -300, 8191, -8192, 8192, -8193,
        ];
        for v in values.into_iter().chain([i64::MAX, i64::MIN]) {
            for trailing in [&[][..], &[0x00], &[0xff, 0x01]] {
                let mut b = Vec::new();
                put_varlong(&mut b, v);
                assert_eq!(b.len(), varint_len(v));
                b.extend_from_slice(trailing);
                let bytes = Bytes::from(b);
                let mut c = Cursor {
                    bytes: &bytes,
                    buf: &bytes,
                    pos: 0,
                };
                assert_eq!(c.varlong().unwrap(), v, "{v} before {trailing:?}");
                assert_eq!(c.pos, varint_len(v), "{v} before {trailing:?}");
            }
        }
    }

    /// Rewrites a batch's field at `at` and re-seals its CRC, as a crafted file would.
    fn forge(mut bytes: Vec<u8>, at: usize, field: &[u8]) -> Vec<u8> {
        bytes[at..at + field.len()].copy_from_slice(field);
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[13..17].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn crafted_counts_and_offsets_are_errors_not_panics_or_huge_allocations() {
        let mut enc = BatchEncoder::new(0, None, false);
        enc.push(0, 1, Some(b"k"), Some(b"v"), &[]);
        let good = enc.finish();

        // A record count of u32::MAX (and a matching offset delta) with one record's bytes.
        let bad = forge(good.clone(), 19, &u32::MAX.to_be_bytes());
        let bad = Bytes::from(forge(bad.to_vec(), 49, &u32::MAX.to_be_bytes()));
        let Parsed::Header(h) = parse_header(&bad) else {
            panic!("header")
        };
        assert!(decode_records(&bad, &h).is_err());

        // A base offset near i64::MAX is refused before any offset arithmetic.
        let bad = forge(good.clone(), 0, &(i64::MAX - 1).to_be_bytes());
        assert!(matches!(parse_header(&bad), Parsed::Invalid(_)));

        // A damaged header count (the record's last byte) that runs past the record.
        let mut enc = BatchEncoder::new(0, None, false);
        enc.push(0, 1, Some(b"k"), Some(b"v"), &[]);
        let mut bytes = enc.finish();
        let n = bytes.len();
        bytes[n - 1] = 0xfe; // a varint continuation byte with nothing after it
        let bytes = Bytes::from(forge(bytes, 0, &0i64.to_be_bytes()));
        let Parsed::Header(h) = parse_header(&bytes) else {
            panic!("header")
        };
        assert!(decode_records(&bytes, &h).is_err());
    }
}
