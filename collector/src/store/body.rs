//! The `body` of a schema-5 row: the event's own fields — its JSON without the `type` and the
//! `target`, which have columns of their own — compressed with zstd against a dictionary built
//! into the binary (`dict/`), whose id is in the row's `dict` column so that a later build can
//! add another without rewriting old rows.
//!
//! The frames are bare (no magic number, checksum, dictionary id or content size: SQLite pages
//! carry their own integrity, and the row says which dictionary), a few bytes a row. A body that
//! is long (a notification's text) or does not get shorter is kept as plain JSON (`dict` 0).

use netmon_events::Event;

/// `dict`: the fields as plain JSON text.
pub const PLAIN: i64 = 0;
/// `dict`: zstd with dictionary 1 (`dict/v1.dict`, trained by `examples/store_dict.rs` on the
/// golden fixtures and realistic measurements). Never retrained: rows name it.
pub const DICT_1: i64 = 1;
const DICTIONARY_1: &[u8] = include_bytes!("dict/v1.dict");

/// Longest body that is compressed; decompression never makes more than this.
const MAX_PACKED: usize = 64 * 1024;
/// zstd's level: the rows are small, higher levels gain little and cost time (measured in
/// `docs/benchmarks.md`).
const LEVEL: i32 = 3;

/// One event's body as it goes into a row.
#[derive(Debug)]
pub struct Encoded<'a> {
    pub body: &'a [u8],
    pub dict: i64,
    /// The body holds the whole event, type and target included (the serialisation did not
    /// start as expected); see `codes::WHOLE_BODY`.
    pub whole: bool,
    /// The JSON holds a `null`: a non-finite float written as `null`, or an absent value that
    /// reads back differently — the stored event must then be read back, not assumed.
    pub has_null: bool,
}

/// Writes bodies (the daemon's connection only).
pub struct Encoder {
    zstd: zstd::bulk::Compressor<'static>,
    json: Vec<u8>,
    packed: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoder")
    }
}

impl Encoder {
    pub fn new() -> std::io::Result<Self> {
        let mut zstd = zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY_1)?;
        bare(&mut zstd)?;
        Ok(Self {
            zstd,
            json: Vec::with_capacity(1024),
            packed: Vec::with_capacity(1024),
        })
    }

    /// The body of `event`; `target` is the JSON of its target when the row names the target by
    /// key (then the body leaves it out).
    pub fn encode(&mut self, event: &Event, target: Option<&[u8]>) -> Result<Encoded<'_>, String> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, event)
            .map_err(|e| format!("cannot encode the event: {e}"))?;
        let has_null = memchr(&self.json, b"null");
        let (fields, whole) = match fields(&self.json, event.type_name(), target) {
            Some(fields) => (fields, false),
            None => (&self.json[..], true),
        };
        if fields.len() > MAX_PACKED {
            return Ok(Encoded {
                body: fields,
                dict: PLAIN,
                whole,
                has_null,
            });
        }
        self.packed.clear();
        self.packed
            .reserve(zstd::zstd_safe::compress_bound(fields.len()));
        self.zstd
            .compress_to_buffer(fields, &mut self.packed)
            .map_err(|e| format!("cannot compress the event: {e}"))?;
        let (body, dict) = if self.packed.len() < fields.len() {
            (&self.packed[..], DICT_1)
        } else {
            (fields, PLAIN)
        };
        Ok(Encoded {
            body,
            dict,
            whole,
            has_null,
        })
    }
}

/// The event's own fields: `json` (the event's serialisation) without the leading
/// `{"type":"…"`, the `"target":…` that follows it when `target` is given, and the braces.
/// `None` when `json` does not have that shape.
pub fn fields<'a>(json: &'a [u8], type_name: &str, target: Option<&[u8]>) -> Option<&'a [u8]> {
    let rest = json
        .strip_prefix(br#"{"type":""#)?
        .strip_prefix(type_name.as_bytes())?
        .strip_prefix(b"\"")?;
    let rest = match target {
        Some(target) => rest.strip_prefix(br#","target":"#)?.strip_prefix(target)?,
        None => rest,
    };
    let inner = rest.strip_suffix(b"}")?;
    if inner.is_empty() {
        Some(inner)
    } else {
        inner.strip_prefix(b",")
    }
}

/// Reads bodies back.
pub struct Decoder {
    zstd: zstd::bulk::Decompressor<'static>,
    fields: Vec<u8>,
    json: Vec<u8>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

impl Decoder {
    pub fn new() -> std::io::Result<Self> {
        let mut zstd = zstd::bulk::Decompressor::with_dictionary(DICTIONARY_1)?;
        zstd.set_parameter(zstd::zstd_safe::DParameter::Format(
            zstd::zstd_safe::FrameFormat::Magicless,
        ))?;
        Ok(Self {
            zstd,
            fields: Vec::with_capacity(MAX_PACKED),
            json: Vec::with_capacity(1024),
        })
    }

    /// The event of a row: its type name, its target's JSON (when the row names one), and its
    /// body as [`Encoder::encode`] wrote it.
    pub fn decode(
        &mut self,
        type_name: &str,
        target: Option<&str>,
        body: &[u8],
        dict: i64,
        whole: bool,
    ) -> Result<Event, String> {
        let fields = match dict {
            PLAIN => body,
            DICT_1 => {
                self.fields.clear();
                self.zstd
                    .decompress_to_buffer(body, &mut self.fields)
                    .map_err(|e| format!("body does not decompress: {e}"))?;
                &self.fields[..]
            }
            other => return Err(format!("unknown dictionary {other}")),
        };
        if whole {
            return serde_json::from_slice(fields).map_err(|e| format!("body: {e}"));
        }
        self.json.clear();
        self.json.extend_from_slice(br#"{"type":""#);
        self.json.extend_from_slice(type_name.as_bytes());
        self.json.push(b'"');
        if let Some(target) = target {
            self.json.extend_from_slice(br#","target":"#);
            self.json.extend_from_slice(target.as_bytes());
        }
        if !fields.is_empty() {
            self.json.push(b',');
            self.json.extend_from_slice(fields);
        }
        self.json.push(b'}');
        serde_json::from_slice(&self.json).map_err(|e| format!("body: {e}"))
    }

    /// [`Decoder::decode`] of a body not yet compressed (the fields of [`Encoder::encode`]),
    /// for the write path's read-back of an event that is not exactly representable.
    pub fn decode_plain(
        &mut self,
        type_name: &str,
        target: Option<&str>,
        body: &[u8],
        whole: bool,
    ) -> Result<Event, String> {
        self.decode(type_name, target, body, PLAIN, whole)
    }
}

/// A compressor writing bare frames.
fn bare(zstd: &mut zstd::bulk::Compressor<'static>) -> std::io::Result<()> {
    use zstd::stream::raw::CParameter;
    zstd.set_parameter(CParameter::Format(zstd::zstd_safe::FrameFormat::Magicless))?;
    zstd.set_parameter(CParameter::ChecksumFlag(false))?;
    zstd.set_parameter(CParameter::DictIdFlag(false))?;
    zstd.set_parameter(CParameter::ContentSizeFlag(false))?;
    Ok(())
}

fn memchr(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_fields_leave_out_type_and_target_and_read_back() {
        let target = netmon_events::testing::target("UBND xã Cẩm Tú", "10.20.0.1");
        let event = netmon_events::testing::window(&target, 170);
        let target_json = serde_json::to_vec(&target).unwrap();
        let mut encoder = Encoder::new().unwrap();
        let encoded = encoder.encode(&event, Some(&target_json)).unwrap();
        assert_eq!(encoded.dict, DICT_1);
        assert!(!encoded.whole && !encoded.has_null);
        let body = encoded.body.to_vec();
        assert!(body.len() < 80, "{} bytes", body.len());
        let mut decoder = Decoder::new().unwrap();
        let target_text = String::from_utf8(target_json).unwrap();
        let back = decoder
            .decode(
                "probe_window_completed",
                Some(&target_text),
                &body,
                DICT_1,
                false,
            )
            .unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn an_event_of_no_fields_and_an_unexpected_shape_still_read_back() {
        assert_eq!(fields(br#"{"type":"x"}"#, "x", None), Some(&b""[..]));
        assert_eq!(
            fields(br#"{"type":"x","a":1}"#, "x", None),
            Some(&br#""a":1"#[..])
        );
        assert_eq!(fields(br#"{"type":"y","a":1}"#, "x", None), None);
        assert_eq!(fields(br#"{"type":"x","a":1}"#, "x", Some(b"{}")), None);
        let heartbeat = Event::AgentHeartbeat {
            uptime_s: 1,
            backlog: 0,
        };
        // A target that is not the serialisation's: the whole event is kept.
        let mut encoder = Encoder::new().unwrap();
        let encoded = encoder.encode(&heartbeat, Some(b"{}")).unwrap();
        assert!(encoded.whole);
        let (body, dict) = (encoded.body.to_vec(), encoded.dict);
        let mut decoder = Decoder::new().unwrap();
        let back = decoder.decode("agent_heartbeat", None, &body, dict, true);
        assert_eq!(back, Ok(heartbeat));
    }

    #[test]
    fn a_damaged_body_is_an_error_not_a_panic() {
        let mut decoder = Decoder::new().unwrap();
        for body in [&b""[..], b"\x00\x01\x02", b"\xff\xff\xff\xff\xff\xff"] {
            assert!(
                decoder
                    .decode("agent_heartbeat", None, body, DICT_1, false)
                    .is_err()
            );
        }
        assert!(
            decoder
                .decode("agent_heartbeat", None, b"", 7, false)
                .is_err()
        );
    }
}
