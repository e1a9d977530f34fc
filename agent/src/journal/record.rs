//! The record format of journal segments (pure: bytes in, bytes out).
//!
//! A segment file is a sequence of records, each
//!
//! ```text
//! ┌──────────────┬──────────────────┬────────────────────────────┐
//! │ len: u32 LE  │ crc32: u32 LE    │ payload: `len` bytes       │
//! │ payload size │ CRC-32 (IEEE) of │ one envelope, JSON (UTF-8) │
//! │              │ the payload      │                            │
//! └──────────────┴──────────────────┴────────────────────────────┘
//! ```
//!
//! [`scan`] walks a segment's bytes and stops at the first record that is not whole and intact:
//! a partial header or payload (a write cut by a crash or a power cut), a length out of range
//! (garbage, or zeros where the file system extended the file but the data never reached flash),
//! or a checksum that does not match. Everything before that point is good; everything from it on
//! is [`Damage`].

/// Bytes before the payload: length and checksum.
pub const HEADER_BYTES: usize = 8;

/// Smallest payload a record may carry (`{}`); a zero length means the bytes are not a record.
pub const MIN_PAYLOAD: usize = 2;

/// Largest payload a record may carry: one envelope is far smaller, and this bounds what a
/// corrupt length can make a reader allocate.
pub const MAX_PAYLOAD: usize = netmon_events::MAX_PAYLOAD_BYTES;

/// Why a segment's bytes stop being records at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside a record (header or payload): a torn write.
    Partial,
    /// The length field is outside [`MIN_PAYLOAD`]..=[`MAX_PAYLOAD`].
    BadLength(u32),
    /// The payload does not match its checksum.
    BadChecksum,
    /// The checksum matches but the payload is not an envelope (written by another program?).
    NotAnEnvelope,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Partial => f.write_str("partial record (torn write)"),
            Damage::BadLength(len) => write!(f, "impossible record length {len}"),
            Damage::BadChecksum => f.write_str("checksum mismatch"),
            Damage::NotAnEnvelope => f.write_str("record is not an envelope"),
        }
    }
}

/// Where one intact record lies in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the record (its header) in the segment.
    pub offset: usize,
    /// Size of the whole record, header included.
    pub len: usize,
}

impl Span {
    /// The payload's byte range within the segment.
    pub fn payload(&self) -> std::ops::Range<usize> {
        self.offset + HEADER_BYTES..self.offset + self.len
    }
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Every intact record, in order.
    pub records: Vec<Span>,
    /// Length of the good prefix: the segment should be truncated to this.
    pub good_len: usize,
    /// Why the bytes after `good_len` are not records (`None` when `good_len` is the file size).
    pub damage: Option<Damage>,
}

/// Encodes `payload` as one record.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    // Payloads are envelopes of a few hundred bytes; callers never pass more than MAX_PAYLOAD.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks one record read back whole (header and payload); returns its payload.
pub fn decode(record: &[u8]) -> Result<&[u8], Damage> {
    let (len, crc) = header(record).ok_or(Damage::Partial)?;
    let len = usize::try_from(len).map_err(|_| Damage::BadLength(len))?;
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return Err(Damage::BadLength(u32::try_from(len).unwrap_or(u32::MAX)));
    }
    let payload = record
        .get(HEADER_BYTES..HEADER_BYTES + len)
        .ok_or(Damage::Partial)?;
    if crc32fast::hash(payload) != crc {
        return Err(Damage::BadChecksum);
    }
    Ok(payload)
}

/// Walks `bytes` record by record; see the module documentation.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match decode(rest) {
            Ok(payload) => {
                let len = HEADER_BYTES + payload.len();
                records.push(Span { offset, len });
                offset += len;
            }
            Err(damage) => {
                return Scan {
                    records,
                    good_len: offset,
                    damage: Some(damage),
                };
            }
        }
    }
    Scan {
        records,
        good_len: offset,
        damage: None,
    }
}

/// Cuts a scan before its `i`-th record (whose payload turned out not to be an envelope): the
/// segment is good only up to where that record starts.
pub fn cut_at(scan: &mut Scan, i: usize, damage: Damage) {
    if let Some(span) = scan.records.get(i) {
        scan.good_len = span.offset;
        scan.records.truncate(i);
        scan.damage = Some(damage);
    }
}

fn header(bytes: &[u8]) -> Option<(u32, u32)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    Some((len, crc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn segment(payloads: &[&str]) -> Vec<u8> {
        payloads.iter().flat_map(|p| encode(p.as_bytes())).collect()
    }

    #[test]
    fn round_trip() {
        let bytes = segment(&[r#"{"a":1}"#, r#"{"b":"Cẩm Tú"}"#]);
        let scan = scan(&bytes);
        assert_eq!(scan.damage, None);
        assert_eq!(scan.good_len, bytes.len());
        let payloads: Vec<&[u8]> = scan.records.iter().map(|s| &bytes[s.payload()]).collect();
        assert_eq!(
            payloads,
            [&br#"{"a":1}"#[..], r#"{"b":"Cẩm Tú"}"#.as_bytes()]
        );
        assert_eq!(
            decode(&bytes[scan.records[1].offset..]).unwrap(),
            payloads[1]
        );
    }

    #[test]
    fn every_cut_inside_the_last_record_is_a_partial_tail() {
        let bytes = segment(&[r#"{"a":1}"#, r#"{"b":2}"#]);
        let first = HEADER_BYTES + 7;
        for cut in first + 1..bytes.len() {
            let scan = scan(&bytes[..cut]);
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.good_len, first);
            assert_eq!(scan.damage, Some(Damage::Partial), "cut at {cut}");
        }
    }

    #[test]
    fn flipped_bytes_and_zeros_are_detected() {
        let good = segment(&[r#"{"a":1}"#, r#"{"b":2}"#]);
        let first = HEADER_BYTES + 7;
        let mut flipped = good.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x20;
        let s = scan(&flipped);
        assert_eq!((s.records.len(), s.good_len), (1, first));
        assert_eq!(s.damage, Some(Damage::BadChecksum));

        let mut zeros = good.clone();
        zeros.extend_from_slice(&[0; 64]);
        let s = scan(&zeros);
        assert_eq!((s.records.len(), s.good_len), (2, good.len()));
        assert_eq!(s.damage, Some(Damage::BadLength(0)));

        let mut huge = good[..first].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        assert_eq!(scan(&huge).damage, Some(Damage::BadLength(u32::MAX)));
    }
}
