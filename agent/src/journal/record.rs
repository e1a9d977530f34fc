//! The record format of journal segments (pure: bytes in, bytes out; the reader takes any
//! [`Read`], a segment file or a byte slice).
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
//! [`Reader`] walks a segment record by record and stops at the first record that is not whole
//! and intact: a partial header or payload (a write cut by a crash or a power cut), a length out
//! of range (garbage, or zeros where the file system extended the file but the data never reached
//! flash), a checksum that does not match, or a record that would end past
//! [`MAX_SEGMENT_BYTES`]. Everything before that point is good; everything from it on is
//! [`Damage`]. [`scan`] does the same over bytes in memory.
//!
//! **Memory is bounded by the record format, not by the file.** The reader holds one payload at a
//! time, in a buffer it grows only after the length field has been checked against
//! [`MAX_PAYLOAD`], so a segment of any size (a sparse 300 MB file, a hostile length) costs at
//! most [`MAX_RECORD`] bytes of buffer; and it never reads past [`MAX_SEGMENT_BYTES`], the largest
//! segment an agent writes, so what one segment adds to the index is bounded too. That bound also
//! keeps every offset within `usize` on a 32-bit router, and every sum on offsets is checked
//! against it.

use std::io::{self, Read};

/// Bytes before the payload: length and checksum.
pub const HEADER_BYTES: usize = 8;

/// Smallest payload a record may carry (`{}`); a zero length means the bytes are not a record.
pub const MIN_PAYLOAD: usize = 2;

/// Largest payload a record may carry: one envelope is far smaller, and this bounds what a
/// corrupt length can make a reader allocate.
pub const MAX_PAYLOAD: usize = netmon_events::MAX_PAYLOAD_BYTES;

/// Largest record, header included.
pub const MAX_RECORD: usize = HEADER_BYTES + MAX_PAYLOAD;

/// Largest segment an agent writes, whatever its `journal.max_bytes`: the upper bound of
/// [`crate::journal::segment_bytes`] (a segment is rotated before a record would take it past
/// its size, and one record is smaller than this). Bytes past it are not records.
pub const MAX_SEGMENT_BYTES: u64 = 1024 * 1024;

const _: () = assert!(MAX_RECORD as u64 <= MAX_SEGMENT_BYTES);

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
    /// The record would end past [`MAX_SEGMENT_BYTES`]: no agent writes such a segment.
    TooLarge,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Partial => f.write_str("partial record (torn write)"),
            Damage::BadLength(len) => write!(f, "impossible record length {len}"),
            Damage::BadChecksum => f.write_str("checksum mismatch"),
            Damage::NotAnEnvelope => f.write_str("record is not an envelope"),
            Damage::TooLarge => write!(
                f,
                "segment larger than the {MAX_SEGMENT_BYTES} bytes an agent writes"
            ),
        }
    }
}

/// Where one intact record lies in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the record (its header) in the segment (below [`MAX_SEGMENT_BYTES`]).
    pub offset: usize,
    /// Size of the whole record, header included (at most [`MAX_RECORD`]).
    pub len: usize,
}

impl Span {
    /// The payload's byte range within the segment.
    pub fn payload(&self) -> std::ops::Range<usize> {
        // Spans come from a reader: offset + len <= MAX_SEGMENT_BYTES. Saturating for any other.
        let end = self.offset.saturating_add(self.len);
        self.offset.saturating_add(HEADER_BYTES).min(end)..end
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

/// One step of a [`Reader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// An intact record and its payload.
    Record { span: Span, payload: &'a [u8] },
    /// The input ended at a record boundary.
    End,
    /// The bytes from [`Reader::offset`] on are not records.
    Damaged(Damage),
}

/// Reads records one at a time; see the module documentation. After [`Next::End`] or
/// [`Next::Damaged`] it keeps answering the same.
#[derive(Debug)]
pub struct Reader<R> {
    source: R,
    /// End of the last intact record (at most [`MAX_SEGMENT_BYTES`]).
    offset: usize,
    payload: Vec<u8>,
    stopped: Option<Option<Damage>>,
}

impl<R: Read> Reader<R> {
    pub fn new(source: R) -> Reader<R> {
        Reader {
            source,
            offset: 0,
            payload: Vec::new(),
            stopped: None,
        }
    }

    /// Where the good part ends so far: the end of the last intact record.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Capacity of the payload buffer: never more than [`MAX_PAYLOAD`].
    pub fn buffer_capacity(&self) -> usize {
        self.payload.capacity()
    }

    /// The next record. An I/O error of the source (other than its end) is returned as is.
    pub fn read_next(&mut self) -> io::Result<Next<'_>> {
        if let Some(stopped) = self.stopped {
            return Ok(stopped.map_or(Next::End, Next::Damaged));
        }
        match self.step()? {
            Ok(span) => Ok(Next::Record {
                span,
                payload: &self.payload,
            }),
            Err(stopped) => {
                self.stopped = Some(stopped);
                Ok(stopped.map_or(Next::End, Next::Damaged))
            }
        }
    }

    /// One record into `self.payload`, or why there is none (`None`: the end).
    fn step(&mut self) -> io::Result<Result<Span, Option<Damage>>> {
        let mut header = [0u8; HEADER_BYTES];
        match read_full(&mut self.source, &mut header)? {
            0 => return Ok(Err(None)),
            n if n < HEADER_BYTES => return Ok(Err(Some(Damage::Partial))),
            _ => {}
        }
        let (len, crc) = split_header(header);
        let Some(payload_len) = usize::try_from(len)
            .ok()
            .filter(|l| (MIN_PAYLOAD..=MAX_PAYLOAD).contains(l))
        else {
            return Ok(Err(Some(Damage::BadLength(len))));
        };
        let record_len = HEADER_BYTES + payload_len; // <= MAX_RECORD
        let end = self.offset.checked_add(record_len);
        let Some(end) = end.filter(|end| u64::try_from(*end).is_ok_and(|e| e <= MAX_SEGMENT_BYTES))
        else {
            return Ok(Err(Some(Damage::TooLarge)));
        };
        // Grown only now, after the length was checked: at most MAX_PAYLOAD.
        self.payload.resize(payload_len, 0);
        if read_full(&mut self.source, &mut self.payload)? < payload_len {
            return Ok(Err(Some(Damage::Partial)));
        }
        if crc32fast::hash(&self.payload) != crc {
            return Ok(Err(Some(Damage::BadChecksum)));
        }
        let span = Span {
            offset: self.offset,
            len: record_len,
        };
        self.offset = end;
        Ok(Ok(span))
    }
}

/// Fills `buf` from `source` until it is full or the source ends; returns the bytes read.
fn read_full(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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
    let header = record
        .get(..HEADER_BYTES)
        .and_then(|h| <[u8; HEADER_BYTES]>::try_from(h).ok())
        .ok_or(Damage::Partial)?;
    let (len, crc) = split_header(header);
    let Some(payload_len) = usize::try_from(len)
        .ok()
        .filter(|l| (MIN_PAYLOAD..=MAX_PAYLOAD).contains(l))
    else {
        return Err(Damage::BadLength(len));
    };
    let payload = record
        .get(HEADER_BYTES..HEADER_BYTES + payload_len)
        .ok_or(Damage::Partial)?;
    if crc32fast::hash(payload) != crc {
        return Err(Damage::BadChecksum);
    }
    Ok(payload)
}

/// Walks `bytes` record by record with a [`Reader`]; see the module documentation.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut reader = Reader::new(bytes);
    let mut records = Vec::new();
    let damage = loop {
        match reader.read_next() {
            Ok(Next::Record { span, .. }) => records.push(span),
            Ok(Next::End) => break None,
            Ok(Next::Damaged(damage)) => break Some(damage),
            // Reading a slice cannot fail.
            Err(_) => break Some(Damage::Partial),
        }
    };
    Scan {
        records,
        good_len: reader.offset(),
        damage,
    }
}

fn split_header(header: [u8; HEADER_BYTES]) -> (u32, u32) {
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    (
        u32::from_le_bytes([l0, l1, l2, l3]),
        u32::from_le_bytes([c0, c1, c2, c3]),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn segment(payloads: &[&str]) -> Vec<u8> {
        payloads.iter().flat_map(|p| encode(p.as_bytes())).collect()
    }

    fn payload<'a>(bytes: &'a [u8], span: &Span) -> &'a [u8] {
        &bytes[span.payload()]
    }

    #[test]
    fn round_trip() {
        let bytes = segment(&[r#"{"a":1}"#, r#"{"b":"Cẩm Tú"}"#]);
        let scan = scan(&bytes);
        assert_eq!(scan.damage, None);
        assert_eq!(scan.good_len, bytes.len());
        let payloads: Vec<&[u8]> = scan.records.iter().map(|s| payload(&bytes, s)).collect();
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

    /// An endless source of the largest valid record: the reader stops at the segment bound, and
    /// its buffer never holds more than one payload.
    #[test]
    fn a_source_of_any_size_costs_one_payload_of_buffer() {
        let record = encode(&vec![b' '; MAX_PAYLOAD]);
        let mut reader = Reader::new(Cycle(record.clone(), 0));
        let mut records = 0;
        let damage = loop {
            match reader.read_next().unwrap() {
                Next::Record { payload, .. } => {
                    assert_eq!(payload.len(), MAX_PAYLOAD);
                    records += 1;
                }
                Next::End => break None,
                Next::Damaged(damage) => break Some(damage),
            }
            assert!(reader.buffer_capacity() <= MAX_PAYLOAD);
        };
        assert_eq!(damage, Some(Damage::TooLarge));
        assert_eq!(records, MAX_SEGMENT_BYTES as usize / record.len());
        assert_eq!(reader.offset(), records * record.len());
        assert!(reader.buffer_capacity() <= MAX_PAYLOAD);
        // Stopped for good: it answers the same again.
        assert_eq!(reader.read_next().unwrap(), Next::Damaged(Damage::TooLarge));

        // A length field that claims too much allocates nothing.
        let mut lying = u32::MAX.to_le_bytes().to_vec();
        lying.extend_from_slice(&[0; 4]);
        let mut reader = Reader::new(&lying[..]);
        assert_eq!(
            reader.read_next().unwrap(),
            Next::Damaged(Damage::BadLength(u32::MAX))
        );
        assert_eq!(reader.buffer_capacity(), 0);
    }

    /// `bytes`, repeated for ever.
    struct Cycle(Vec<u8>, usize);

    impl Read for Cycle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut n = 0;
            while n < buf.len() {
                buf[n] = self.0[self.1];
                self.1 = (self.1 + 1) % self.0.len();
                n += 1;
            }
            Ok(n)
        }
    }

    /// Seeded random mutations of a valid segment: never a panic, the good part is a prefix of
    /// whole records, and `decode` agrees with the scan on every record it found.
    #[test]
    fn random_mutations_never_panic() {
        let good = segment(&[r#"{"a":1}"#, r#"{"boot":"b","seq":2}"#, r#"{"c":[3]}"#]);
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let mut bytes = good.clone();
            for _ in 0..=next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 3 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes
                        .splice(at..at, (next() as u32).to_le_bytes())
                        .for_each(drop),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let s = scan(&bytes);
            assert!(s.good_len <= bytes.len());
            assert_eq!(s.damage.is_none(), s.good_len == bytes.len());
            let mut end = 0;
            for span in &s.records {
                assert_eq!(span.offset, end);
                end += span.len;
                let record = &bytes[span.offset..end];
                assert_eq!(decode(record).unwrap(), payload(&bytes, span));
            }
            assert_eq!(end, s.good_len);
        }
    }
}
