//! Record formats of the `freshet` command line: how `freshet produce` turns
//! an input line into a record, and how `freshet consume` turns a record into
//! an output line.
//!
//! Two layers:
//!
//! * a [`FieldFormat`] says how the bytes of one key or value are written as
//!   text (UTF-8 string, hex, base64, a big-endian integer, or MessagePack
//!   written as JSON);
//! * a [`LineFormat`] says how one whole record is laid out on a line
//!   (`key<TAB>value`, or one JSON object).
//!
//! Input is strict: text that does not fit its format is a [`FormatError`].
//! Output never fails: bytes that do not decode in the requested format are
//! shown escaped as `\xNN`, so a consumer sees every record whatever it holds.
//!
//! The module is self-contained (it does not depend on the log crate):
//! [`OutputRecord`] borrows from whatever record type the caller reads.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// How null is written in tsv output: `\N`, as in MySQL's and PostgreSQL's
/// text dumps. It cannot be confused with a rendered field, because a
/// backslash in a string field is itself escaped (`\\`) in tsv output and no
/// other format renders to `\N`.
const TSV_NULL: &str = "\\N";

/// How many characters of an offending text an error message quotes, so that
/// a bad multi-megabyte line does not flood the terminal.
const SNIPPET_CHARS: usize = 100;

/// Recursion limit when decoding MessagePack for output. rmpv counts about
/// two steps per level of nesting, so this allows some 150 levels: more than
/// the 128 that serde_json parses, so everything produced from JSON decodes,
/// while keeping the stack use small enough for a 2 MiB thread (a tokio
/// worker) in a debug build; rmpv's own default (1024) overflows there.
const MSGPACK_MAX_DEPTH: usize = 300;

/// Encoding of a key or a value on the command line.
///
/// Each variant converts between the bytes stored in the log and the text
/// the user types or reads; the clap name of a variant (`string`, `hex`, …)
/// is also what [`fmt::Display`] prints, so error messages use the same words
/// as the command-line options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FieldFormat {
    /// UTF-8 text; bytes that are not UTF-8 are shown as \xNN.
    String,
    /// Lowercase hexadecimal (uppercase accepted on input).
    Hex,
    /// Standard base64, with padding.
    Base64,
    /// Signed 32-bit integer, 4 bytes big-endian; text is a decimal number.
    I32,
    /// Signed 64-bit integer, 8 bytes big-endian; text is a decimal number.
    I64,
    /// Unsigned 64-bit integer, 8 bytes big-endian; text is a decimal number.
    U64,
    /// MessagePack; text is JSON.
    Msgpack,
}

impl FieldFormat {
    /// The name of the format as spelled on the command line (the clap
    /// value name), used in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Hex => "hex",
            Self::Base64 => "base64",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::U64 => "u64",
            Self::Msgpack => "msgpack",
        }
    }
}

/// Prints the command-line name of the format (`i32`, `msgpack`, …), so
/// messages and `default_value_t` agree with clap.
impl fmt::Display for FieldFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Line format for produce/consume.
///
/// One record is always exactly one line, so records can be piped through
/// line-oriented tools (`grep`, `head`, `jq -c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LineFormat {
    /// Key, a tab, then value; a line without a tab is a value with a null key.
    Tsv,
    /// One JSON object per line.
    Json,
}

impl LineFormat {
    /// The name of the format as spelled on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tsv => "tsv",
            Self::Json => "json",
        }
    }
}

/// Prints the command-line name of the line format (`tsv`, `json`).
impl fmt::Display for LineFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A record as read from a produce input line.
///
/// Owned bytes, ready to hand to the log's producer; `None` means null (no
/// key, or a tombstone value), which is distinct from an empty key or value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InputRecord {
    /// The encoded key, or `None` for a null key.
    pub(crate) key: Option<Vec<u8>>,
    /// The encoded value, or `None` for a null value (a tombstone).
    pub(crate) value: Option<Vec<u8>>,
    /// The timestamp given on the line (json only), or `None` to let the
    /// producer stamp the record.
    pub(crate) timestamp: Option<i64>,
    /// Headers given on the line (json only), in order, values as UTF-8 bytes.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// A record to print for `freshet consume`, borrowed from the caller's record
/// type so this module needs nothing from the log crate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputRecord<'a> {
    /// Partition the record was read from.
    pub(crate) partition: u32,
    /// Offset of the record in its partition.
    pub(crate) offset: i64,
    /// Timestamp of the record, in milliseconds since the Unix epoch.
    pub(crate) timestamp: i64,
    /// The key, or `None` for a null key.
    pub(crate) key: Option<&'a [u8]>,
    /// The value, or `None` for a null value (a tombstone).
    pub(crate) value: Option<&'a [u8]>,
    /// The record's headers, in order.
    pub(crate) headers: &'a [(String, bytes::Bytes)],
}

/// Why an input line or field could not be parsed.
///
/// Every message is lowercase, has no trailing period, and is complete on its
/// own (it quotes the offending text); for that reason no variant exposes a
/// `source()`, which would make error-chain printers repeat the cause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormatError {
    /// A key or value text does not fit its field format, e.g.
    /// `invalid i32 'x1': invalid digit found in string`.
    #[error("invalid {format} '{text}': {reason}")]
    Field {
        /// The format the text was meant to be in.
        format: FieldFormat,
        /// The offending text (cut after [`SNIPPET_CHARS`] characters,
        /// control characters escaped).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An error in the key or the value of a line, e.g.
    /// `value: invalid hex 'zz': invalid character 'z' at position 0`.
    #[error("{part}: {inner}")]
    Part {
        /// `key` or `value`.
        part: &'static str,
        /// The error in that part.
        inner: Box<FormatError>,
    },
    /// A json line is not valid JSON.
    #[error("invalid json line: {0}")]
    Json(serde_json::Error),
    /// A json line is valid JSON but not an object.
    #[error("invalid json line: expected an object, found {found}")]
    NotObject {
        /// What was found instead, e.g. `an array`.
        found: String,
    },
    /// A json line has a field other than key, value, timestamp and headers.
    #[error("invalid json line: unknown field '{0}' (expected key, value, timestamp or headers)")]
    UnknownField(String),
    /// A field of a json line has the wrong JSON type or range, e.g.
    /// `invalid json line: timestamp must be an integer, found a string`.
    #[error("invalid json line: {field} {reason}")]
    JsonField {
        /// The field, e.g. `key` or `headers[1]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Parse one stdin line (without its trailing newline) for `freshet produce`.
///
/// * [`LineFormat::Tsv`]: `key<TAB>value`, split on the first tab (later tabs
///   belong to the value). A line without a tab is a value with a null key.
///   An empty value (`key<TAB>`) is an empty value, not null. The text is
///   taken literally: `\N` or `\t` are not unescaped, so null values cannot
///   be produced from tsv (use json).
/// * [`LineFormat::Json`]: one object
///   `{"key":..,"value":..,"timestamp":..,"headers":[[name, value],..]}`,
///   every field optional. See [`json_field`] for how key and value are read;
///   `timestamp` is an integer (milliseconds) or null; `headers` is a list of
///   `[name, value]` pairs where the value is a string (stored as UTF-8) or
///   null (stored empty). Unknown fields are an error.
///
/// A trailing `\r` (CRLF input) is part of the line: strip it before calling
/// if it is not wanted.
pub(crate) fn parse_line(
    line: &str,
    format: LineFormat,
    key: FieldFormat,
    value: FieldFormat,
) -> Result<InputRecord, FormatError> {
    match format {
        LineFormat::Tsv => parse_tsv_line(line, key, value),
        LineFormat::Json => parse_json_line(line, key, value),
    }
}

/// The tsv half of [`parse_line`].
fn parse_tsv_line(
    line: &str,
    key_format: FieldFormat,
    value_format: FieldFormat,
) -> Result<InputRecord, FormatError> {
    let (key, value) = match line.split_once('\t') {
        Some((key, value)) => (Some(key), value),
        None => (None, line),
    };
    let key = key
        .map(|text| encode_field(text, key_format).map_err(|e| in_part("key", e)))
        .transpose()?;
    let value = encode_field(value, value_format).map_err(|e| in_part("value", e))?;
    Ok(InputRecord {
        key,
        value: Some(value),
        timestamp: None,
        headers: Vec::new(),
    })
}

/// The json half of [`parse_line`].
fn parse_json_line(
    line: &str,
    key_format: FieldFormat,
    value_format: FieldFormat,
) -> Result<InputRecord, FormatError> {
    let object = match serde_json::from_str::<Value>(line).map_err(FormatError::Json)? {
        Value::Object(object) => object,
        other => {
            return Err(FormatError::NotObject {
                found: describe(&other),
            })
        }
    };
    let mut record = InputRecord::default();
    for (name, field) in object {
        match name.as_str() {
            "key" => record.key = json_field(field, key_format, "key")?,
            "value" => record.value = json_field(field, value_format, "value")?,
            "timestamp" => record.timestamp = json_timestamp(&field)?,
            "headers" => record.headers = json_headers(field)?,
            _ => return Err(FormatError::UnknownField(name)),
        }
    }
    Ok(record)
}

/// Read the `key` or `value` field of a json line.
///
/// null is `None`. Otherwise, by format: string, hex and base64 take a JSON
/// string, encoded with [`encode_field`]; i32, i64 and u64 take a JSON
/// integer or a string holding a decimal integer; msgpack takes any JSON
/// value and encodes it to MessagePack (a JSON string becomes a MessagePack
/// string, it is not parsed again as JSON).
fn json_field(
    field: Value,
    format: FieldFormat,
    part: &'static str,
) -> Result<Option<Vec<u8>>, FormatError> {
    let bytes = match (format, field) {
        (_, Value::Null) => return Ok(None),
        (FieldFormat::Msgpack, field) => encode_msgpack(&field),
        (_, Value::String(text)) => encode_field(&text, format),
        (FieldFormat::I32 | FieldFormat::I64 | FieldFormat::U64, Value::Number(number)) => {
            // Through the decimal text, so that floats and out-of-range
            // numbers get the same messages as on the command line.
            encode_field(&number.to_string(), format)
        }
        (_, other) => {
            let expected = match format {
                FieldFormat::I32 | FieldFormat::I64 | FieldFormat::U64 => "an integer or a string",
                _ => "a string",
            };
            return Err(FormatError::JsonField {
                field: part.to_owned(),
                reason: format!(
                    "must be {expected} for the {format} format, found {}",
                    describe(&other)
                ),
            });
        }
    };
    bytes.map(Some).map_err(|e| in_part(part, e))
}

/// Read the `timestamp` field of a json line: an integer that fits in i64,
/// or null.
fn json_timestamp(field: &Value) -> Result<Option<i64>, FormatError> {
    match field {
        Value::Null => Ok(None),
        Value::Number(number) => match number.as_i64() {
            Some(timestamp) => Ok(Some(timestamp)),
            None => Err(FormatError::JsonField {
                field: "timestamp".to_owned(),
                reason: format!("must be an integer that fits in i64, found {number}"),
            }),
        },
        other => Err(FormatError::JsonField {
            field: "timestamp".to_owned(),
            reason: format!("must be an integer, found {}", describe(other)),
        }),
    }
}

/// Read the `headers` field of a json line: a list of `[name, value]` pairs
/// with a string name and a string-or-null value, or null for no headers.
fn json_headers(field: Value) -> Result<Vec<(String, Vec<u8>)>, FormatError> {
    let items = match field {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(FormatError::JsonField {
                field: "headers".to_owned(),
                reason: format!(
                    "must be an array of [name, value] pairs, found {}",
                    describe(&other)
                ),
            })
        }
    };
    let mut headers = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let field = format!("headers[{index}]");
        let pair = match item {
            Value::Array(pair) => pair,
            other => {
                return Err(FormatError::JsonField {
                    field,
                    reason: format!("must be a [name, value] array, found {}", describe(&other)),
                })
            }
        };
        let (name, value) = match <[Value; 2]>::try_from(pair) {
            Ok([name, value]) => (name, value),
            Err(pair) => {
                return Err(FormatError::JsonField {
                    field,
                    reason: format!(
                        "must be a [name, value] array, found an array of {} elements",
                        pair.len()
                    ),
                })
            }
        };
        let name = match name {
            Value::String(name) => name,
            other => {
                return Err(FormatError::JsonField {
                    field,
                    reason: format!("name must be a string, found {}", describe(&other)),
                })
            }
        };
        let value = match value {
            Value::String(value) => value.into_bytes(),
            Value::Null => Vec::new(),
            other => {
                return Err(FormatError::JsonField {
                    field,
                    reason: format!("value must be a string or null, found {}", describe(&other)),
                })
            }
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Encode text to bytes in a field format (used for keys/values from tsv, and
/// for json string fields).
///
/// string: the UTF-8 bytes; hex: upper- or lowercase digits, an even number
/// of them; base64: standard alphabet with padding; i32 / i64 / u64: a
/// decimal number (an optional sign, no spaces), stored big-endian in 4 / 8 /
/// 8 bytes; msgpack: a JSON text, stored as MessagePack (integers in the
/// smallest encoding, other numbers as float 64, object key order kept).
pub(crate) fn encode_field(text: &str, format: FieldFormat) -> Result<Vec<u8>, FormatError> {
    let invalid = |reason: String| FormatError::Field {
        format,
        text: snippet(text),
        reason,
    };
    match format {
        FieldFormat::String => Ok(text.as_bytes().to_vec()),
        FieldFormat::Hex => hex::decode(text).map_err(|e| invalid(hex_reason(text, &e))),
        FieldFormat::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| invalid(base64_reason(&e))),
        FieldFormat::I32 => text
            .parse::<i32>()
            .map(|n| n.to_be_bytes().to_vec())
            .map_err(|e| invalid(e.to_string())),
        FieldFormat::I64 => text
            .parse::<i64>()
            .map(|n| n.to_be_bytes().to_vec())
            .map_err(|e| invalid(e.to_string())),
        FieldFormat::U64 => text
            .parse::<u64>()
            .map(|n| n.to_be_bytes().to_vec())
            .map_err(|e| invalid(e.to_string())),
        FieldFormat::Msgpack => {
            let value = serde_json::from_str::<Value>(text).map_err(|e| invalid(e.to_string()))?;
            encode_msgpack(&value)
        }
    }
}

/// Render bytes as text in a field format (for consume). Never fails:
/// undecodable bytes are shown escaped.
///
/// string: valid UTF-8 as is, each byte of an invalid sequence as `\xNN`
/// (lowercase hex); hex: lowercase; base64: standard with padding; i32 /
/// i64 / u64: decimal; msgpack: compact JSON. Bytes that cannot be read in
/// the format (a length other than 4 / 8 for the integers; for msgpack,
/// anything but exactly one MessagePack value that has a JSON equivalent, so
/// not binary, ext, non-string map keys, non-UTF-8 strings or NaN/infinite
/// floats) are shown with every byte as `\xNN`, e.g. `\x01\x02\x03`, which
/// no successful rendering starts with.
///
/// This is the plain rendering: tabs and newlines in a string are printed as
/// is. [`format_record`] escapes them in tsv output.
// Only the tests call it today; it stays as the documented plain rendering of a field.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn render_field(bytes: &[u8], format: FieldFormat) -> String {
    render(bytes, format, false)
}

/// [`render_field`], with the tsv escaping of string fields when `tsv` is set
/// (see [`escape_text`]).
fn render(bytes: &[u8], format: FieldFormat, tsv: bool) -> String {
    match format {
        FieldFormat::String => escape_text(bytes, tsv),
        FieldFormat::Hex => hex::encode(bytes),
        FieldFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        FieldFormat::I32 | FieldFormat::I64 | FieldFormat::U64 => {
            decode_integer(bytes, format).map_or_else(|| escape_all(bytes), |n| n.to_string())
        }
        FieldFormat::Msgpack => {
            decode_msgpack(bytes).map_or_else(|| escape_all(bytes), |value| value.to_string())
        }
    }
}

/// Render bytes as a serde_json::Value for json output (msgpack -> the JSON
/// value it decodes to; i32/i64/u64 -> JSON number; string/hex/base64 -> JSON
/// string). On undecodable input (e.g. 3 bytes for i32, invalid msgpack)
/// return a JSON string of the escaped form.
///
/// The escaped form is the one of [`render_field`]. For the string format
/// only invalid UTF-8 is escaped, not backslashes, so that JSON consumers
/// such as `jq` see the real text; a string that really contains `\x80` and
/// one holding the invalid byte 0x80 therefore look the same (use hex or
/// base64 for binary data).
pub(crate) fn field_json(bytes: &[u8], format: FieldFormat) -> Value {
    match format {
        FieldFormat::String | FieldFormat::Hex | FieldFormat::Base64 => {
            Value::String(render(bytes, format, false))
        }
        FieldFormat::I32 | FieldFormat::I64 | FieldFormat::U64 => decode_integer(bytes, format)
            .map_or_else(|| Value::String(escape_all(bytes)), Value::Number),
        FieldFormat::Msgpack => {
            decode_msgpack(bytes).unwrap_or_else(|| Value::String(escape_all(bytes)))
        }
    }
}

/// One output line for `freshet consume` (no trailing newline).
///
/// * [`LineFormat::Tsv`]: `key<TAB>value`, each rendered by [`render_field`];
///   a null key or value is written `\N`. So that one record stays one line
///   and the tab stays the only separator, string fields also escape tab,
///   newline, carriage return and backslash as `\t`, `\n`, `\r` and `\\`
///   (which also keeps `\N` and `\xNN` unambiguous). Partition, offset,
///   timestamp and headers are not shown; use json for them.
/// * [`LineFormat::Json`]: one compact object with the fields `partition`,
///   `offset`, `timestamp`, `key`, `value`, `headers`, always in this order;
///   key and value as given by [`field_json`] (null for null); headers as a
///   list of `[name, value]` with the value as a UTF-8 string, invalid bytes
///   escaped `\xNN`.
pub(crate) fn format_record(
    out: &OutputRecord<'_>,
    format: LineFormat,
    key: FieldFormat,
    value: FieldFormat,
) -> String {
    match format {
        LineFormat::Tsv => {
            let render_tsv = |field: Option<&[u8]>, format| {
                field.map_or_else(|| TSV_NULL.to_owned(), |bytes| render(bytes, format, true))
            };
            format!(
                "{}\t{}",
                render_tsv(out.key, key),
                render_tsv(out.value, value)
            )
        }
        LineFormat::Json => {
            let json = |field: Option<&[u8]>, format| {
                field.map_or(Value::Null, |bytes| field_json(bytes, format))
            };
            let headers: Vec<Value> = out
                .headers
                .iter()
                .map(|(name, value)| {
                    Value::Array(vec![
                        Value::String(name.clone()),
                        Value::String(escape_text(value, false)),
                    ])
                })
                .collect();
            // Written by hand rather than through a serde_json::Map, so the
            // field order does not depend on serde_json's preserve_order
            // feature. Each `Value` prints as compact JSON.
            format!(
                "{{\"partition\":{},\"offset\":{},\"timestamp\":{},\"key\":{},\"value\":{},\"headers\":{}}}",
                out.partition,
                out.offset,
                out.timestamp,
                json(out.key, key),
                json(out.value, value),
                Value::Array(headers),
            )
        }
    }
}

/// Wrap an error in the name of the part of the line (`key` or `value`) it
/// was found in.
fn in_part(part: &'static str, inner: FormatError) -> FormatError {
    FormatError::Part {
        part,
        inner: Box::new(inner),
    }
}

/// Encode a JSON value as one MessagePack value.
fn encode_msgpack(value: &Value) -> Result<Vec<u8>, FormatError> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &json_to_msgpack(value)).map_err(|e| {
        // Writing to a Vec does not fail; kept as an error rather than a panic.
        FormatError::Field {
            format: FieldFormat::Msgpack,
            text: snippet(&value.to_string()),
            reason: e.to_string(),
        }
    })?;
    Ok(bytes)
}

/// Convert a JSON value to the MessagePack value it stands for. Integers stay
/// integers (rmpv writes them in their smallest encoding); other numbers
/// become float 64.
fn json_to_msgpack(value: &Value) -> rmpv::Value {
    match value {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Number(number) => {
            if let Some(n) = number.as_u64() {
                rmpv::Value::from(n)
            } else if let Some(n) = number.as_i64() {
                rmpv::Value::from(n)
            } else {
                // Without serde_json's arbitrary_precision every number is
                // u64, i64 or f64, so the NaN is never reached.
                rmpv::Value::F64(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => rmpv::Value::from(s.as_str()),
        Value::Array(items) => rmpv::Value::Array(items.iter().map(json_to_msgpack).collect()),
        Value::Object(map) => rmpv::Value::Map(
            map.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), json_to_msgpack(v)))
                .collect(),
        ),
    }
}

/// Decode bytes holding exactly one MessagePack value into its JSON
/// equivalent; `None` if they do not, or if the value has no JSON equivalent.
fn decode_msgpack(bytes: &[u8]) -> Option<Value> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, MSGPACK_MAX_DEPTH).ok()?;
    if !rest.is_empty() {
        return None;
    }
    msgpack_to_json(value)
}

/// Convert a MessagePack value to JSON; `None` for what JSON cannot hold:
/// binary, ext, strings that are not UTF-8, map keys that are not strings,
/// NaN and infinite floats.
fn msgpack_to_json(value: rmpv::Value) -> Option<Value> {
    Some(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            (None, None) => return None,
        },
        // Through the f32's shortest decimal form, so 1.1f32 prints as 1.1
        // rather than 1.100000023841858.
        rmpv::Value::F32(f) => Value::Number(Number::from_f64(f.to_string().parse().ok()?)?),
        rmpv::Value::F64(f) => Value::Number(Number::from_f64(f)?),
        rmpv::Value::String(s) => Value::String(s.into_str()?),
        rmpv::Value::Binary(_) | rmpv::Value::Ext(..) => return None,
        rmpv::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(msgpack_to_json)
                .collect::<Option<Vec<_>>>()?,
        ),
        rmpv::Value::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let rmpv::Value::String(key) = key else {
                    return None;
                };
                map.insert(key.into_str()?, msgpack_to_json(value)?);
            }
            Value::Object(map)
        }
    })
}

/// Decode a big-endian integer of the width of an integer format; `None` if
/// the length is wrong (or the format is not an integer format).
fn decode_integer(bytes: &[u8], format: FieldFormat) -> Option<Number> {
    match format {
        FieldFormat::I32 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| Number::from(i32::from_be_bytes(b))),
        FieldFormat::I64 => <[u8; 8]>::try_from(bytes)
            .ok()
            .map(|b| Number::from(i64::from_be_bytes(b))),
        FieldFormat::U64 => <[u8; 8]>::try_from(bytes)
            .ok()
            .map(|b| Number::from(u64::from_be_bytes(b))),
        _ => None,
    }
}

/// Show bytes as text: valid UTF-8 as is, each byte of an invalid sequence as
/// `\xNN`. With `tsv`, also escape tab, newline, carriage return and
/// backslash as `\t`, `\n`, `\r`, `\\`, so the text holds no line or field
/// separator and every backslash in the output starts an escape.
fn escape_text(bytes: &[u8], tsv: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        if tsv {
            for c in chunk.valid().chars() {
                match c {
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(chunk.valid());
        }
        for &byte in chunk.invalid() {
            push_byte_escape(&mut out, byte);
        }
    }
    out
}

/// Show every byte as `\xNN`: the form for bytes that do not decode in their
/// format.
fn escape_all(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4);
    for &byte in bytes {
        push_byte_escape(&mut out, byte);
    }
    out
}

/// Append `\xNN` (lowercase hex) for one byte.
fn push_byte_escape(out: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push('x');
    out.push(char::from(DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
}

/// The offending text as quoted in an error: at most [`SNIPPET_CHARS`]
/// characters (then `...`), control characters escaped so the message stays
/// on one line.
fn snippet(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == SNIPPET_CHARS {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A lowercase message for a hex decoding error (the hex crate's own are
/// capitalised), naming the real character even when it is not ASCII.
fn hex_reason(text: &str, error: &hex::FromHexError) -> String {
    match *error {
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            let c = text
                .get(index..)
                .and_then(|s| s.chars().next())
                .unwrap_or(c);
            format!("invalid character {} at position {index}", quote_char(c))
        }
        hex::FromHexError::OddLength => "odd number of digits".to_owned(),
        hex::FromHexError::InvalidStringLength => "invalid length".to_owned(),
    }
}

/// A lowercase message for a base64 decoding error (the base64 crate's own
/// are capitalised and end with a period).
fn base64_reason(error: &base64::DecodeError) -> String {
    match *error {
        base64::DecodeError::InvalidByte(offset, byte) => {
            format!("invalid character {} at offset {offset}", quote_byte(byte))
        }
        base64::DecodeError::InvalidLength(symbols) => {
            format!("invalid length ({symbols} symbols)")
        }
        base64::DecodeError::InvalidLastSymbol(offset, byte) => format!(
            "invalid last symbol {} at offset {offset} (leftover bits are not zero)",
            quote_byte(byte)
        ),
        base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
    }
}

/// A character in quotes, escaped if it is a control character.
fn quote_char(c: char) -> String {
    if c.is_control() {
        format!("'{}'", c.escape_default())
    } else {
        format!("'{c}'")
    }
}

/// An input byte in quotes if it is printable ASCII, else as `byte 0xNN`
/// (it may be one byte of a multi-byte character).
fn quote_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() || byte == b' ' {
        format!("'{}'", char::from(byte))
    } else {
        format!("byte 0x{byte:02x}")
    }
}

/// A JSON value's type for error messages; numbers are shown themselves,
/// since their range or fraction is usually what is wrong.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum as _;
    use serde_json::json;

    const ALL_FIELD_FORMATS: [FieldFormat; 7] = [
        FieldFormat::String,
        FieldFormat::Hex,
        FieldFormat::Base64,
        FieldFormat::I32,
        FieldFormat::I64,
        FieldFormat::U64,
        FieldFormat::Msgpack,
    ];

    /// encode_field then render_field gives back the text.
    fn assert_round_trip(text: &str, format: FieldFormat) {
        let bytes = encode_field(text, format).unwrap();
        assert_eq!(render_field(&bytes, format), text, "{format} {text:?}");
    }

    fn error(text: &str, format: FieldFormat) -> String {
        encode_field(text, format).unwrap_err().to_string()
    }

    fn tsv(line: &str, key: FieldFormat, value: FieldFormat) -> InputRecord {
        parse_line(line, LineFormat::Tsv, key, value).unwrap()
    }

    fn json_in(line: &str, key: FieldFormat, value: FieldFormat) -> InputRecord {
        parse_line(line, LineFormat::Json, key, value).unwrap()
    }

    fn json_in_err(line: &str, key: FieldFormat, value: FieldFormat) -> String {
        parse_line(line, LineFormat::Json, key, value)
            .unwrap_err()
            .to_string()
    }

    fn record<'a>(
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        headers: &'a [(String, bytes::Bytes)],
    ) -> OutputRecord<'a> {
        OutputRecord {
            partition: 3,
            offset: 42,
            timestamp: 1_700_000_000_000,
            key,
            value,
            headers,
        }
    }

    fn msgpack(value: &Value) -> Vec<u8> {
        encode_msgpack(value).unwrap()
    }

    // ---- names ----

    #[test]
    fn display_matches_clap_names() {
        for format in FieldFormat::value_variants() {
            let possible = format.to_possible_value().unwrap();
            assert_eq!(possible.get_name(), format.to_string());
            assert_eq!(
                FieldFormat::from_str(&format.to_string(), false),
                Ok(*format)
            );
        }
        assert_eq!(FieldFormat::value_variants(), ALL_FIELD_FORMATS);
        for format in LineFormat::value_variants() {
            let possible = format.to_possible_value().unwrap();
            assert_eq!(possible.get_name(), format.to_string());
        }
    }

    // ---- string ----

    #[test]
    fn string_round_trip() {
        for text in ["", "hello", "héllo wörld ✓", "with space", "\\N", "a\\x80"] {
            assert_round_trip(text, FieldFormat::String);
        }
        assert_eq!(
            encode_field("hé", FieldFormat::String).unwrap(),
            "hé".as_bytes()
        );
    }

    #[test]
    fn string_render_escapes_invalid_utf8() {
        assert_eq!(render_field(b"a\xffb", FieldFormat::String), "a\\xffb");
        // A truncated multi-byte sequence: each byte escaped.
        assert_eq!(
            render_field(b"x\xe2\x9c", FieldFormat::String),
            "x\\xe2\\x9c"
        );
        assert_eq!(render_field(b"\x00\x7f", FieldFormat::String), "\x00\x7f");
        assert_eq!(field_json(b"a\xffb", FieldFormat::String), json!("a\\xffb"));
    }

    #[test]
    fn string_render_keeps_separators_outside_tsv() {
        let text = "a\tb\nc\rd\\e";
        assert_eq!(render_field(text.as_bytes(), FieldFormat::String), text);
        assert_eq!(
            field_json(text.as_bytes(), FieldFormat::String),
            json!(text)
        );
    }

    #[test]
    fn escape_helpers() {
        assert_eq!(escape_all(&[0x01, 0x02, 0xab]), "\\x01\\x02\\xab");
        assert_eq!(escape_all(&[]), "");
        assert_eq!(
            escape_text(b"a\tb\nc\rd\\e\xff", true),
            "a\\tb\\nc\\rd\\\\e\\xff"
        );
    }

    // ---- hex ----

    #[test]
    fn hex_round_trip() {
        for text in ["", "00", "00ff10", "deadbeef"] {
            assert_round_trip(text, FieldFormat::Hex);
        }
        assert_eq!(
            encode_field("00ff10", FieldFormat::Hex).unwrap(),
            [0x00, 0xff, 0x10]
        );
    }

    #[test]
    fn hex_accepts_uppercase_and_renders_lowercase() {
        let bytes = encode_field("DEADbeef", FieldFormat::Hex).unwrap();
        assert_eq!(bytes, [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(render_field(&bytes, FieldFormat::Hex), "deadbeef");
        assert_eq!(field_json(&bytes, FieldFormat::Hex), json!("deadbeef"));
    }

    #[test]
    fn hex_errors() {
        assert_eq!(
            error("zz", FieldFormat::Hex),
            "invalid hex 'zz': invalid character 'z' at position 0"
        );
        assert_eq!(
            error("abc", FieldFormat::Hex),
            "invalid hex 'abc': odd number of digits"
        );
        assert_eq!(
            error("0é0", FieldFormat::Hex),
            "invalid hex '0é0': invalid character 'é' at position 1"
        );
        assert_eq!(
            error("0x12", FieldFormat::Hex),
            "invalid hex '0x12': invalid character 'x' at position 1"
        );
    }

    // ---- base64 ----

    #[test]
    fn base64_round_trip() {
        for text in ["", "aGVsbG8=", "aGk=", "AAEC", "/+/+"] {
            assert_round_trip(text, FieldFormat::Base64);
        }
        assert_eq!(
            encode_field("aGVsbG8=", FieldFormat::Base64).unwrap(),
            b"hello"
        );
        assert_eq!(render_field(&[0xfb, 0xff], FieldFormat::Base64), "+/8=");
        assert_eq!(field_json(b"hi", FieldFormat::Base64), json!("aGk="));
    }

    #[test]
    fn base64_errors() {
        assert_eq!(
            error("a$==", FieldFormat::Base64),
            "invalid base64 'a$==': invalid character '$' at offset 1"
        );
        assert_eq!(
            error("a", FieldFormat::Base64),
            "invalid base64 'a': invalid length (1 symbols)"
        );
        // Padding is required.
        assert_eq!(
            error("aGVsbG8", FieldFormat::Base64),
            "invalid base64 'aGVsbG8': invalid padding"
        );
        assert!(error("aGl=", FieldFormat::Base64).contains("invalid last symbol 'l' at offset 2"));
        // URL-safe alphabet is not standard.
        assert!(error("-_-_", FieldFormat::Base64)
            .starts_with("invalid base64 '-_-_': invalid character '-'"));
    }

    // ---- integers ----

    #[test]
    fn i32_round_trip_and_bytes() {
        for text in ["0", "1", "-1", "2147483647", "-2147483648"] {
            assert_round_trip(text, FieldFormat::I32);
        }
        assert_eq!(
            encode_field("-1", FieldFormat::I32).unwrap(),
            [0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(encode_field("258", FieldFormat::I32).unwrap(), [0, 0, 1, 2]);
        assert_eq!(
            field_json(&[0xff, 0xff, 0xff, 0xfe], FieldFormat::I32),
            json!(-2)
        );
    }

    #[test]
    fn i64_round_trip_and_bytes() {
        for text in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
            assert_round_trip(text, FieldFormat::I64);
        }
        assert_eq!(encode_field("-1", FieldFormat::I64).unwrap(), [0xff; 8]);
        assert_eq!(
            encode_field("1", FieldFormat::I64).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            field_json(&i64::MIN.to_be_bytes(), FieldFormat::I64),
            json!(i64::MIN)
        );
    }

    #[test]
    fn u64_round_trip_and_bytes() {
        for text in ["0", "1", "18446744073709551615"] {
            assert_round_trip(text, FieldFormat::U64);
        }
        assert_eq!(
            encode_field("18446744073709551615", FieldFormat::U64).unwrap(),
            [0xff; 8]
        );
        assert_eq!(field_json(&[0xff; 8], FieldFormat::U64), json!(u64::MAX));
        assert_eq!(
            render_field(&[0xff; 8], FieldFormat::U64),
            "18446744073709551615"
        );
    }

    #[test]
    fn integer_errors() {
        assert_eq!(
            error("x1", FieldFormat::I32),
            "invalid i32 'x1': invalid digit found in string"
        );
        assert_eq!(
            error("", FieldFormat::I64),
            "invalid i64 '': cannot parse integer from empty string"
        );
        assert_eq!(
            error("2147483648", FieldFormat::I32),
            "invalid i32 '2147483648': number too large to fit in target type"
        );
        assert_eq!(
            error("18446744073709551616", FieldFormat::U64),
            "invalid u64 '18446744073709551616': number too large to fit in target type"
        );
        assert_eq!(
            error("-1", FieldFormat::U64),
            "invalid u64 '-1': invalid digit found in string"
        );
        assert_eq!(
            error(" 1", FieldFormat::I32),
            "invalid i32 ' 1': invalid digit found in string"
        );
        assert_eq!(
            error("1.5", FieldFormat::I64),
            "invalid i64 '1.5': invalid digit found in string"
        );
    }

    #[test]
    fn integers_of_wrong_length_render_escaped() {
        assert_eq!(
            render_field(&[1, 2, 3], FieldFormat::I32),
            "\\x01\\x02\\x03"
        );
        assert_eq!(
            field_json(&[1, 2, 3], FieldFormat::I32),
            json!("\\x01\\x02\\x03")
        );
        assert_eq!(
            render_field(&[0; 4], FieldFormat::I64),
            "\\x00\\x00\\x00\\x00"
        );
        assert_eq!(
            field_json(&[0xff; 9], FieldFormat::U64),
            json!("\\xff".repeat(9))
        );
        assert_eq!(render_field(&[], FieldFormat::U64), "");
        assert_eq!(field_json(&[], FieldFormat::I32), json!(""));
    }

    // ---- msgpack ----

    #[test]
    fn msgpack_round_trip() {
        for text in [
            r#"{"a":[1,2]}"#,
            "null",
            "true",
            "0",
            "-3",
            "18446744073709551615",
            "-9223372036854775808",
            "1.5",
            r#""s""#,
            r#"[]"#,
            r#"{}"#,
            r#"{"b":1,"a":{"z":null,"y":[true,"x\ty"]}}"#,
        ] {
            assert_round_trip(text, FieldFormat::Msgpack);
        }
    }

    #[test]
    fn msgpack_bytes() {
        // {"a":[1,2]}: fixmap 1, fixstr "a", fixarray 2, 1, 2.
        let bytes = encode_field(r#"{"a":[1,2]}"#, FieldFormat::Msgpack).unwrap();
        assert_eq!(bytes, [0x81, 0xa1, b'a', 0x92, 0x01, 0x02]);
        assert_eq!(
            field_json(&bytes, FieldFormat::Msgpack),
            json!({"a": [1, 2]})
        );
        // Whitespace in the input does not matter; output is compact.
        let spaced = encode_field(" { \"a\" : [ 1 , 2 ] } ", FieldFormat::Msgpack).unwrap();
        assert_eq!(spaced, bytes);
        assert_eq!(encode_field("-1", FieldFormat::Msgpack).unwrap(), [0xff]);
        assert_eq!(encode_field("null", FieldFormat::Msgpack).unwrap(), [0xc0]);
        assert_eq!(
            encode_field("1.5", FieldFormat::Msgpack).unwrap(),
            [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn msgpack_keeps_key_order() {
        let bytes = encode_field(r#"{"b":1,"a":2}"#, FieldFormat::Msgpack).unwrap();
        assert_eq!(bytes, [0x82, 0xa1, b'b', 0x01, 0xa1, b'a', 0x02]);
        assert_eq!(
            render_field(&bytes, FieldFormat::Msgpack),
            r#"{"b":1,"a":2}"#
        );
    }

    #[test]
    fn msgpack_float32_prints_shortest() {
        // float 32 1.1
        let bytes = [0xca, 0x3f, 0x8c, 0xcc, 0xcd];
        assert_eq!(render_field(&bytes, FieldFormat::Msgpack), "1.1");
    }

    #[test]
    fn msgpack_errors() {
        assert_eq!(
            error("{x", FieldFormat::Msgpack),
            "invalid msgpack '{x': key must be a string at line 1 column 2"
        );
        assert!(error("hello", FieldFormat::Msgpack)
            .starts_with("invalid msgpack 'hello': expected value"));
        assert!(error("", FieldFormat::Msgpack).starts_with("invalid msgpack '': "));
        assert!(error("1 2", FieldFormat::Msgpack).contains("trailing characters"));
    }

    #[test]
    fn undecodable_msgpack_renders_escaped() {
        // Text that is not MessagePack: 'h' is a fixint, then trailing bytes.
        assert_eq!(render_field(b"hi", FieldFormat::Msgpack), "\\x68\\x69");
        assert_eq!(field_json(b"hi", FieldFormat::Msgpack), json!("\\x68\\x69"));
        // Truncated: a fixarray of 2 with one element.
        assert_eq!(
            render_field(&[0x92, 0x01], FieldFormat::Msgpack),
            "\\x92\\x01"
        );
        // str 8 without its length byte.
        assert_eq!(field_json(&[0xd9], FieldFormat::Msgpack), json!("\\xd9"));
        assert_eq!(render_field(&[], FieldFormat::Msgpack), "");
        // Binary (bin 8, 2 bytes): no JSON equivalent.
        assert_eq!(
            render_field(&[0xc4, 0x02, 0x00, 0x01], FieldFormat::Msgpack),
            "\\xc4\\x02\\x00\\x01"
        );
        // Map with an integer key.
        assert_eq!(
            render_field(&[0x81, 0x01, 0x02], FieldFormat::Msgpack),
            "\\x81\\x01\\x02"
        );
        // String that is not UTF-8.
        assert_eq!(
            render_field(&[0xa1, 0xff], FieldFormat::Msgpack),
            "\\xa1\\xff"
        );
        // NaN (float 64).
        let nan = [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            field_json(&nan, FieldFormat::Msgpack),
            json!(escape_all(&nan))
        );
    }

    #[test]
    fn deep_msgpack_does_not_overflow() {
        // 100 000 nested fixarrays of one element: over the depth limit.
        let mut bytes = vec![0x91; 100_000];
        bytes.push(0xc0);
        assert!(render_field(&bytes, FieldFormat::Msgpack).starts_with("\\x91\\x91"));
    }

    #[test]
    fn deepest_json_round_trips_through_msgpack() {
        // Find the deepest nesting serde_json parses, then check it decodes.
        let mut depth = 1;
        while serde_json::from_str::<Value>(&nested(depth + 1)).is_ok() {
            depth += 1;
        }
        assert!(depth >= 100, "{depth}");
        assert_round_trip(&nested(depth), FieldFormat::Msgpack);
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn every_format_renders_what_it_encodes() {
        let samples = [
            (FieldFormat::String, "x"),
            (FieldFormat::Hex, "0a"),
            (FieldFormat::Base64, "AA=="),
            (FieldFormat::I32, "7"),
            (FieldFormat::I64, "7"),
            (FieldFormat::U64, "7"),
            (FieldFormat::Msgpack, "7"),
        ];
        for (format, text) in samples {
            assert_round_trip(text, format);
        }
        assert_eq!(samples.map(|(f, _)| f), ALL_FIELD_FORMATS);
    }

    // ---- errors ----

    #[test]
    fn error_quotes_are_cut_and_escaped() {
        let long = "x".repeat(500);
        let message = error(&long, FieldFormat::I32);
        assert_eq!(
            message,
            format!(
                "invalid i32 '{}...': invalid digit found in string",
                "x".repeat(SNIPPET_CHARS)
            )
        );
        assert_eq!(
            error("1\n2", FieldFormat::I64),
            "invalid i64 '1\\n2': invalid digit found in string"
        );
    }

    #[test]
    fn error_messages_are_lowercase_without_period() {
        let messages = [
            error("zz", FieldFormat::Hex),
            error("abc", FieldFormat::Hex),
            error("a$==", FieldFormat::Base64),
            error("a", FieldFormat::Base64),
            error("aGVsbG8", FieldFormat::Base64),
            error("aGl=", FieldFormat::Base64),
            error("x", FieldFormat::U64),
            error("{", FieldFormat::Msgpack),
            json_in_err("{", FieldFormat::String, FieldFormat::String),
            json_in_err("[]", FieldFormat::String, FieldFormat::String),
            json_in_err(r#"{"k":1}"#, FieldFormat::String, FieldFormat::String),
            json_in_err(r#"{"key":1}"#, FieldFormat::String, FieldFormat::String),
            json_in_err(
                r#"{"timestamp":"1"}"#,
                FieldFormat::String,
                FieldFormat::String,
            ),
            json_in_err(
                r#"{"headers":[1]}"#,
                FieldFormat::String,
                FieldFormat::String,
            ),
        ];
        for message in messages {
            let first = message.chars().next().unwrap();
            assert!(first.is_lowercase(), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
    }

    // ---- tsv input ----

    #[test]
    fn tsv_splits_on_first_tab() {
        let record = tsv("k\tv\tw", FieldFormat::String, FieldFormat::String);
        assert_eq!(
            record,
            InputRecord {
                key: Some(b"k".to_vec()),
                value: Some(b"v\tw".to_vec()),
                timestamp: None,
                headers: Vec::new(),
            }
        );
    }

    #[test]
    fn tsv_without_tab_has_null_key() {
        let record = tsv("just a value", FieldFormat::String, FieldFormat::String);
        assert_eq!(record.key, None);
        assert_eq!(record.value.as_deref(), Some(&b"just a value"[..]));
        let record = tsv("", FieldFormat::String, FieldFormat::String);
        assert_eq!(record.key, None);
        assert_eq!(record.value, Some(Vec::new()));
    }

    #[test]
    fn tsv_empty_parts_are_empty_not_null() {
        let record = tsv("k\t", FieldFormat::String, FieldFormat::String);
        assert_eq!(record.key, Some(b"k".to_vec()));
        assert_eq!(record.value, Some(Vec::new()));
        let record = tsv("\tv", FieldFormat::String, FieldFormat::String);
        assert_eq!(record.key, Some(Vec::new()));
        assert_eq!(record.value, Some(b"v".to_vec()));
    }

    #[test]
    fn tsv_input_is_literal() {
        let record = tsv("\\N\t\\N\\t", FieldFormat::String, FieldFormat::String);
        assert_eq!(record.key, Some(b"\\N".to_vec()));
        assert_eq!(record.value, Some(b"\\N\\t".to_vec()));
    }

    #[test]
    fn tsv_uses_field_formats() {
        let record = tsv("-1\t{\"a\":[1,2]}", FieldFormat::I32, FieldFormat::Msgpack);
        assert_eq!(record.key, Some(vec![0xff; 4]));
        assert_eq!(record.value, Some(vec![0x81, 0xa1, b'a', 0x92, 0x01, 0x02]));
        // JSON text for msgpack may itself contain tabs only after the first.
        let record = tsv("00ff\t[1,\t2]", FieldFormat::Hex, FieldFormat::Msgpack);
        assert_eq!(record.key, Some(vec![0x00, 0xff]));
        assert_eq!(record.value, Some(vec![0x92, 0x01, 0x02]));
    }

    #[test]
    fn tsv_errors_name_the_part() {
        let err = parse_line(
            "x1\tv",
            LineFormat::Tsv,
            FieldFormat::I32,
            FieldFormat::String,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "key: invalid i32 'x1': invalid digit found in string"
        );
        let err = parse_line(
            "k\tzz",
            LineFormat::Tsv,
            FieldFormat::String,
            FieldFormat::Hex,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "value: invalid hex 'zz': invalid character 'z' at position 0"
        );
        // Without a tab, the whole line is the value, whatever the key format.
        let err =
            parse_line("abc", LineFormat::Tsv, FieldFormat::Hex, FieldFormat::I64).unwrap_err();
        assert_eq!(
            err.to_string(),
            "value: invalid i64 'abc': invalid digit found in string"
        );
    }

    // ---- json input ----

    #[test]
    fn json_full_line() {
        let record = json_in(
            r#"{"key":"k","value":"v","timestamp":1700000000000,"headers":[["h1","a"],["h2",null]]}"#,
            FieldFormat::String,
            FieldFormat::String,
        );
        assert_eq!(
            record,
            InputRecord {
                key: Some(b"k".to_vec()),
                value: Some(b"v".to_vec()),
                timestamp: Some(1_700_000_000_000),
                headers: vec![
                    ("h1".to_owned(), b"a".to_vec()),
                    ("h2".to_owned(), Vec::new())
                ],
            }
        );
    }

    #[test]
    fn json_absent_or_null_fields() {
        let empty = json_in("{}", FieldFormat::String, FieldFormat::String);
        assert_eq!(empty, InputRecord::default());
        let nulls = json_in(
            r#"{"key":null,"value":null,"timestamp":null,"headers":null}"#,
            FieldFormat::Msgpack,
            FieldFormat::I32,
        );
        assert_eq!(nulls, InputRecord::default());
        let record = json_in(
            r#" { "value" : "" } "#,
            FieldFormat::String,
            FieldFormat::String,
        );
        assert_eq!(record.key, None);
        assert_eq!(record.value, Some(Vec::new()));
    }

    #[test]
    fn json_string_formats_take_strings() {
        let record = json_in(
            r#"{"key":"00FF","value":"aGVsbG8="}"#,
            FieldFormat::Hex,
            FieldFormat::Base64,
        );
        assert_eq!(record.key, Some(vec![0x00, 0xff]));
        assert_eq!(record.value, Some(b"hello".to_vec()));
        assert_eq!(
            json_in_err(r#"{"key":12}"#, FieldFormat::Hex, FieldFormat::String),
            "invalid json line: key must be a string for the hex format, found 12"
        );
        assert_eq!(
            json_in_err(
                r#"{"value":{"a":1}}"#,
                FieldFormat::String,
                FieldFormat::String
            ),
            "invalid json line: value must be a string for the string format, found an object"
        );
        assert_eq!(
            json_in_err(r#"{"value":"zz"}"#, FieldFormat::String, FieldFormat::Hex),
            "value: invalid hex 'zz': invalid character 'z' at position 0"
        );
    }

    #[test]
    fn json_integer_formats_take_numbers_or_strings() {
        let record = json_in(
            r#"{"key":-1,"value":"-1"}"#,
            FieldFormat::I32,
            FieldFormat::I64,
        );
        assert_eq!(record.key, Some(vec![0xff; 4]));
        assert_eq!(record.value, Some(vec![0xff; 8]));
        let record = json_in(
            r#"{"key":18446744073709551615,"value":"18446744073709551615"}"#,
            FieldFormat::U64,
            FieldFormat::U64,
        );
        assert_eq!(record.key, Some(vec![0xff; 8]));
        assert_eq!(record.value, Some(vec![0xff; 8]));
        assert_eq!(
            json_in_err(
                r#"{"key":2147483648}"#,
                FieldFormat::I32,
                FieldFormat::String
            ),
            "key: invalid i32 '2147483648': number too large to fit in target type"
        );
        assert_eq!(
            json_in_err(r#"{"value":1.5}"#, FieldFormat::String, FieldFormat::I64),
            "value: invalid i64 '1.5': invalid digit found in string"
        );
        assert_eq!(
            json_in_err(r#"{"value":-1}"#, FieldFormat::String, FieldFormat::U64),
            "value: invalid u64 '-1': invalid digit found in string"
        );
        assert_eq!(
            json_in_err(r#"{"value":true}"#, FieldFormat::String, FieldFormat::U64),
            "invalid json line: value must be an integer or a string for the u64 format, found a boolean"
        );
    }

    #[test]
    fn json_msgpack_takes_any_value() {
        let record = json_in(
            r#"{"key":"text","value":{"a":[1,2]}}"#,
            FieldFormat::Msgpack,
            FieldFormat::Msgpack,
        );
        // A JSON string is a MessagePack string, not JSON text to parse.
        assert_eq!(record.key, Some(vec![0xa4, b't', b'e', b'x', b't']));
        assert_eq!(record.value, Some(vec![0x81, 0xa1, b'a', 0x92, 0x01, 0x02]));
        let record = json_in(
            r#"{"value":[false,1.5]}"#,
            FieldFormat::String,
            FieldFormat::Msgpack,
        );
        let value = record.value.unwrap();
        assert_eq!(render_field(&value, FieldFormat::Msgpack), "[false,1.5]");
    }

    #[test]
    fn json_timestamp() {
        let err = |line: &str| json_in_err(line, FieldFormat::String, FieldFormat::String);
        let record = json_in(r#"{"timestamp":-5}"#, FieldFormat::I32, FieldFormat::I32);
        assert_eq!(record.timestamp, Some(-5));
        assert_eq!(
            err(r#"{"timestamp":"1"}"#),
            "invalid json line: timestamp must be an integer, found a string"
        );
        assert_eq!(
            err(r#"{"timestamp":1.5}"#),
            "invalid json line: timestamp must be an integer that fits in i64, found 1.5"
        );
        assert_eq!(
            err(r#"{"timestamp":9223372036854775808}"#),
            "invalid json line: timestamp must be an integer that fits in i64, \
             found 9223372036854775808"
        );
    }

    #[test]
    fn json_header_errors() {
        let err = |line: &str| json_in_err(line, FieldFormat::String, FieldFormat::String);
        assert_eq!(
            err(r#"{"headers":{"a":"b"}}"#),
            "invalid json line: headers must be an array of [name, value] pairs, found an object"
        );
        assert_eq!(
            err(r#"{"headers":[["a","b"],"c"]}"#),
            "invalid json line: headers[1] must be a [name, value] array, found a string"
        );
        assert_eq!(
            err(r#"{"headers":[["a","b","c"]]}"#),
            "invalid json line: headers[0] must be a [name, value] array, found an array of 3 elements"
        );
        assert_eq!(
            err(r#"{"headers":[[1,"b"]]}"#),
            "invalid json line: headers[0] name must be a string, found 1"
        );
        assert_eq!(
            err(r#"{"headers":[["a",2]]}"#),
            "invalid json line: headers[0] value must be a string or null, found 2"
        );
        let record = json_in(
            r#"{"headers":[]}"#,
            FieldFormat::String,
            FieldFormat::String,
        );
        assert!(record.headers.is_empty());
        let record = json_in(
            r#"{"headers":[["a","é"],["a","2"]]}"#,
            FieldFormat::String,
            FieldFormat::String,
        );
        assert_eq!(
            record.headers,
            [
                ("a".to_owned(), "é".as_bytes().to_vec()),
                ("a".to_owned(), b"2".to_vec())
            ]
        );
    }

    #[test]
    fn json_line_errors() {
        let err = |line: &str| json_in_err(line, FieldFormat::String, FieldFormat::String);
        assert_eq!(
            err(r#"{"key":"k","partition":1}"#),
            "invalid json line: unknown field 'partition' (expected key, value, timestamp or headers)"
        );
        assert_eq!(
            err("[1]"),
            "invalid json line: expected an object, found an array"
        );
        // A raw tab inside a JSON string is not allowed.
        assert!(err("\"k\tv\"").starts_with("invalid json line: control character"));
        assert!(err("k\tv").starts_with("invalid json line: expected value"));
        assert!(err("").starts_with("invalid json line: "));
        assert!(err(r#"{"key":"a"} {}"#).starts_with("invalid json line: trailing characters"));
    }

    // ---- tsv output ----

    #[test]
    fn tsv_output() {
        let out = record(Some(b"k"), Some(b"v"), &[]);
        assert_eq!(
            format_record(
                &out,
                LineFormat::Tsv,
                FieldFormat::String,
                FieldFormat::String
            ),
            "k\tv"
        );
        let out = record(Some(&[0, 0, 0, 7]), Some(&[0xab]), &[]);
        assert_eq!(
            format_record(&out, LineFormat::Tsv, FieldFormat::I32, FieldFormat::Hex),
            "7\tab"
        );
    }

    #[test]
    fn tsv_output_null_is_backslash_n() {
        let out = record(None, None, &[]);
        assert_eq!(
            format_record(
                &out,
                LineFormat::Tsv,
                FieldFormat::String,
                FieldFormat::String
            ),
            "\\N\t\\N"
        );
        // A string that really is `\N` is told apart by its escaped backslash.
        let out = record(Some(b"\\N"), Some(b""), &[]);
        assert_eq!(
            format_record(
                &out,
                LineFormat::Tsv,
                FieldFormat::String,
                FieldFormat::String
            ),
            "\\\\N\t"
        );
    }

    #[test]
    fn tsv_output_stays_on_one_line() {
        let out = record(Some(b"a\tb"), Some(b"line1\r\nline2\\\xff"), &[]);
        let line = format_record(
            &out,
            LineFormat::Tsv,
            FieldFormat::String,
            FieldFormat::String,
        );
        assert_eq!(line, "a\\tb\tline1\\r\\nline2\\\\\\xff");
        assert_eq!(line.matches('\t').count(), 1);
        assert!(!line.contains('\n') && !line.contains('\r'));
        // msgpack strings with separators come out as JSON escapes.
        let value = msgpack(&json!({"t": "a\tb\nc"}));
        let out = record(None, Some(&value), &[]);
        let line = format_record(
            &out,
            LineFormat::Tsv,
            FieldFormat::String,
            FieldFormat::Msgpack,
        );
        assert_eq!(line, r#"\N	{"t":"a\tb\nc"}"#);
        assert_eq!(line.matches('\t').count(), 1);
    }

    #[test]
    fn tsv_output_undecodable_fields() {
        let out = record(Some(&[1, 2, 3]), Some(b"hi"), &[]);
        assert_eq!(
            format_record(
                &out,
                LineFormat::Tsv,
                FieldFormat::I32,
                FieldFormat::Msgpack
            ),
            "\\x01\\x02\\x03\t\\x68\\x69"
        );
    }

    // ---- json output ----

    #[test]
    fn json_output_field_order() {
        let headers = [
            ("h1".to_owned(), bytes::Bytes::from_static(b"v1")),
            ("h2".to_owned(), bytes::Bytes::from_static(b"")),
        ];
        let out = record(Some(b"k"), Some(b"v"), &headers);
        assert_eq!(
            format_record(
                &out,
                LineFormat::Json,
                FieldFormat::String,
                FieldFormat::String
            ),
            r#"{"partition":3,"offset":42,"timestamp":1700000000000,"key":"k","value":"v","headers":[["h1","v1"],["h2",""]]}"#
        );
    }

    #[test]
    fn json_output_nulls_and_numbers() {
        let out = record(None, None, &[]);
        assert_eq!(
            format_record(
                &out,
                LineFormat::Json,
                FieldFormat::I64,
                FieldFormat::Msgpack
            ),
            r#"{"partition":3,"offset":42,"timestamp":1700000000000,"key":null,"value":null,"headers":[]}"#
        );
        let value = msgpack(&json!({"b": [1, 2], "a": null}));
        let key = (-1i32).to_be_bytes();
        let out = record(Some(&key), Some(&value), &[]);
        assert_eq!(
            format_record(
                &out,
                LineFormat::Json,
                FieldFormat::I32,
                FieldFormat::Msgpack
            ),
            r#"{"partition":3,"offset":42,"timestamp":1700000000000,"key":-1,"value":{"b":[1,2],"a":null},"headers":[]}"#
        );
    }

    #[test]
    fn json_output_escapes() {
        let headers = [("h".to_owned(), bytes::Bytes::from_static(b"a\xffb\t\"q\""))];
        let out = record(Some(b"\xfe\n"), Some(&[1, 2, 3]), &headers);
        let line = format_record(
            &out,
            LineFormat::Json,
            FieldFormat::String,
            FieldFormat::U64,
        );
        assert_eq!(
            line,
            r#"{"partition":3,"offset":42,"timestamp":1700000000000,"key":"\\xfe\n","value":"\\x01\\x02\\x03","headers":[["h","a\\xffb\t\"q\""]]}"#
        );
        assert!(!line.contains('\n'));
        // The output is valid JSON.
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["key"], json!("\\xfe\n"));
        assert_eq!(parsed["headers"][0][1], json!("a\\xffb\t\"q\""));
    }

    #[test]
    fn json_output_can_be_produced_again() {
        let headers = [("h".to_owned(), bytes::Bytes::from_static(b"x"))];
        let value = msgpack(&json!({"a": [1, 2]}));
        let key = 7u64.to_be_bytes();
        let out = record(Some(&key), Some(&value), &headers);
        let line = format_record(
            &out,
            LineFormat::Json,
            FieldFormat::U64,
            FieldFormat::Msgpack,
        );
        // Drop the consume-only fields and feed the line back to produce.
        let mut object: Map<String, Value> = serde_json::from_str(&line).unwrap();
        object.remove("partition");
        object.remove("offset");
        let back = json_in(
            &Value::Object(object).to_string(),
            FieldFormat::U64,
            FieldFormat::Msgpack,
        );
        assert_eq!(back.key.as_deref(), Some(&key[..]));
        assert_eq!(back.value, Some(value));
        assert_eq!(back.timestamp, Some(1_700_000_000_000));
        assert_eq!(back.headers, [("h".to_owned(), b"x".to_vec())]);
    }
}
