//! The journal's files (I/O): segment names and listing, loading a segment into an index, the
//! small state files (`acked.json`, `overflowed`) written atomically, and [`inspect`], the
//! read-only view used by `netmon-agent journal`.
//!
//! ```text
//! {dir}/lock                       held with an exclusive flock by the running agent
//! {dir}/00000000000000000007.seg   segments: records (see `record`), oldest = lowest number
//! {dir}/acked.json                 the last acknowledgement watermark: the `ack` payload format
//! {dir}/overflowed                 events dropped unsent since the journal was created (a number)
//! ```
//!
//! Whatever else is in the directory, or in these files, is input that may be damaged or
//! hostile: only regular files named exactly as [`segment_name`] writes them are segments (others
//! are ignored), a segment is read record by record ([`record::Reader`]: one payload of buffer,
//! never past [`record::MAX_SEGMENT_BYTES`]), the state files are read only up to a small bound,
//! and a record is an event only with a seq in `1..=`[`MAX_SEQ`] and, if it declares a lost
//! range, `1 <= first_seq <= last_seq <= MAX_SEQ`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};

use netmon_events::{Ack, BootId};
use serde::Deserialize;
use tracing::warn;

use super::JournalError;
use super::index::{Backlog, Index, Lost};
use super::record::{self, Damage, Next, Scan};

pub const LOCK_FILE: &str = "lock";
pub const ACKED_FILE: &str = "acked.json";
pub const OVERFLOWED_FILE: &str = "overflowed";
const SEGMENT_SUFFIX: &str = ".seg";

/// Highest seq a record may carry, and highest seq a declared lost range may name: the
/// contract's bound on integers (the collector refuses more). The recorder counts from 1;
/// nothing it writes comes near.
pub const MAX_SEQ: u64 = netmon_events::MAX_INT;

/// Segment numbers above this are renumbered at start ([`renumber_segments`]), so that numbering
/// on from the newest can never overflow.
pub const MAX_SEGMENT_NUMBER: u64 = u64::MAX / 2;

/// Most bytes read of `acked.json` (an ack lists at most 16 boots: about 2 KB).
const MAX_ACKED_BYTES: u64 = 64 * 1024;

/// Most bytes read of `overflowed` (one decimal number).
const MAX_OVERFLOWED_BYTES: u64 = 64;

/// The file name of segment `number`.
pub fn segment_name(number: u64) -> String {
    format!("{number:020}{SEGMENT_SUFFIX}")
}

/// The number of the segment file `name`: only names exactly as [`segment_name`] writes them
/// (`+5.seg`, `5.seg` or `005.seg` would name the same number as another file).
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, oldest first. Other files are ignored, and so is anything named like a
/// segment that is not a regular file (a directory, a symbolic link, a FIFO).
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let entries =
        fs::read_dir(dir).map_err(|e| JournalError::io(format!("listing {}", dir.display()), e))?;
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(segment_number) else {
            continue;
        };
        // Not following symbolic links; an entry gone since the listing is skipped.
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            numbers.push(number);
        } else {
            let file = entry.path();
            warn!(file = %file.display(), "journal: ignoring a segment name that is not a file");
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Renames the segments `numbers` (sorted, as listed) to consecutive numbers from 1 (from 0 if
/// segment 0 exists), keeping their order; returns the new numbers. Needed only when a segment
/// number is above [`MAX_SEGMENT_NUMBER`] (a file someone else put there). Renaming oldest first
/// never lands on a file not yet renamed: every old number is at least its new one, and later
/// ones are larger. A crash half-way leaves an ordered set that the next start renumbers again.
pub fn renumber_segments(dir: &Path, numbers: &[u64]) -> Result<Vec<u64>, JournalError> {
    let base = u64::from(numbers.first() != Some(&0));
    let mut renumbered = Vec::with_capacity(numbers.len());
    for (new, old) in (base..).zip(numbers) {
        if new != *old {
            let (from, to) = (dir.join(segment_name(*old)), dir.join(segment_name(new)));
            fs::rename(&from, &to).map_err(|e| {
                JournalError::io(
                    format!("renaming {} to {}", from.display(), to.display()),
                    e,
                )
            })?;
        }
        renumbered.push(new);
    }
    Ok(renumbered)
}

/// The two envelope fields the index needs; the rest of the record is not parsed at start.
#[derive(Deserialize)]
struct Key {
    boot: BootId,
    seq: u64,
    // Present on `journal_overflowed` records only: the range they declare lost.
    #[serde(default)]
    dropped_boot: Option<BootId>,
    #[serde(default)]
    first_seq: Option<u64>,
    #[serde(default)]
    last_seq: Option<u64>,
}

impl Key {
    /// `None` for a record no agent writes: seq 0 or above [`MAX_SEQ`], or a declared range that
    /// is empty, runs backwards or passes `MAX_SEQ`.
    fn parse(payload: &[u8]) -> Option<(Key, Option<Lost>)> {
        let key = serde_json::from_slice::<Key>(payload).ok()?;
        if !(1..=MAX_SEQ).contains(&key.seq) {
            return None;
        }
        let declares = match (&key.dropped_boot, key.first_seq, key.last_seq) {
            (Some(boot), Some(first_seq), Some(last_seq)) => {
                if !(1 <= first_seq && first_seq <= last_seq && last_seq <= MAX_SEQ) {
                    return None;
                }
                Some(Lost {
                    boot: boot.clone(),
                    first_seq,
                    last_seq,
                })
            }
            _ => None,
        };
        Some((key, declares))
    }
}

/// One segment read from disk: its size and what [`record::scan`] found, with every intact
/// record's (boot, seq).
#[derive(Debug)]
pub struct Loaded {
    pub number: u64,
    pub size: u64,
    pub scan: Scan,
    pub keys: Vec<(BootId, u64)>,
    /// Per record in `keys`, the range a `journal_overflowed` record declares lost.
    pub declares: Vec<Option<Lost>>,
}

/// Reads and scans segment `number`, record by record: whatever the file's size, this holds one
/// record's payload at a time (at most [`record::MAX_PAYLOAD`] bytes) and reads no further than
/// [`record::MAX_SEGMENT_BYTES`], nor past the size the file had when opened (the running agent
/// may be appending while `netmon-agent journal` reads). A record whose checksum holds but which
/// is not an envelope ([`Key::parse`]) ends the good part like any other damage.
pub fn load_segment(dir: &Path, number: u64) -> Result<Loaded, JournalError> {
    let path = dir.join(segment_name(number));
    let io = |e| JournalError::io(format!("reading {}", path.display()), e);
    let file = File::open(&path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut reader = record::Reader::new(BufReader::new(file.take(size)));
    let (mut records, mut keys, mut declares) = (Vec::new(), Vec::new(), Vec::new());
    let (good_len, damage) = loop {
        match reader.read_next().map_err(io)? {
            Next::Record { span, payload } => match Key::parse(payload) {
                Some((key, declared)) => {
                    records.push(span);
                    keys.push((key.boot, key.seq));
                    declares.push(declared);
                }
                None => break (span.offset, Some(Damage::NotAnEnvelope)),
            },
            Next::End => break (reader.offset(), None),
            Next::Damaged(damage) => break (reader.offset(), Some(damage)),
        }
    };
    Ok(Loaded {
        number,
        size,
        scan: Scan {
            records,
            good_len,
            damage,
        },
        keys,
        declares,
    })
}

/// Adds a loaded segment's good records to `index`.
pub fn index_segment(index: &mut Index, loaded: &Loaded) {
    let records = loaded.scan.records.iter().zip(&loaded.keys);
    for ((span, (boot, seq)), declares) in records.zip(&loaded.declares) {
        index.push(
            boot,
            *seq,
            loaded.number,
            span.offset as u64,
            u32::try_from(span.len).unwrap_or(u32::MAX),
            declares.as_ref(),
        );
    }
}

/// Opens segment `number` for appending, creating it if needed.
pub fn open_segment(dir: &Path, number: u64) -> Result<File, JournalError> {
    let path = dir.join(segment_name(number));
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| JournalError::io(format!("opening {}", path.display()), e))
}

/// Deletes segment `number` (already gone is fine).
pub fn remove_segment(dir: &Path, number: u64) -> Result<(), JournalError> {
    let path = dir.join(segment_name(number));
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(JournalError::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Replaces `dir/name` with `bytes` so that a crash leaves the old or the new content, never a
/// mix: a temporary file, fsync'ed, renamed over the old one.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), JournalError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| JournalError::io(format!("writing {}", path.display()), e))
}

/// The first `max` bytes of the regular file `path`, or an error if it holds more; `None` when
/// it does not exist. Something else under that name (a FIFO would block, a device never end)
/// is not read.
fn read_small(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(io::Error::other("not a regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut bytes = Vec::new();
    File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(Some(bytes))
}

/// The persisted watermark; `None` when there is none yet. A damaged file is reported, not fatal:
/// without it the agent merely resends more. Both the agent ([`super::Journal::open`]) and
/// [`inspect`] warn and go on as if nothing were acknowledged.
pub fn read_acked(dir: &Path) -> Result<Option<Ack>, String> {
    let path = dir.join(ACKED_FILE);
    match read_small(&path, MAX_ACKED_BYTES) {
        Ok(Some(bytes)) => Ack::from_json(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The persisted overflow counter (0 when absent or unreadable).
pub fn read_overflowed(dir: &Path) -> u64 {
    read_small(&dir.join(OVERFLOWED_FILE), MAX_OVERFLOWED_BYTES)
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// What `netmon-agent journal` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub dir: PathBuf,
    pub segments: usize,
    /// Size of the segment files.
    pub disk_bytes: u64,
    /// Intact records, acknowledged or not.
    pub records: usize,
    /// Records above the watermark.
    pub backlog: Backlog,
    /// The last watermark persisted (`acks` empty when none, or when `acked.json` is unreadable).
    pub acked: Ack,
    /// Why `acked.json` could not be read, when it could not: the journal is shown as if nothing
    /// were acknowledged, as the agent treats it at start.
    pub acked_problem: Option<String>,
    /// Events dropped unsent since the journal was created.
    pub overflowed: u64,
    /// Bytes that are not intact records (a torn tail is truncated at the next start; while the
    /// agent runs, a record being written may show here).
    pub damaged_bytes: u64,
}

/// Reads the journal in `dir` without locking or changing anything: it works while the agent
/// runs.
pub fn inspect(dir: &Path) -> Result<Inspection, JournalError> {
    if !dir.is_dir() {
        return Err(JournalError::io(
            format!("opening {}", dir.display()),
            io::Error::new(io::ErrorKind::NotFound, "no journal directory"),
        ));
    }
    let mut index = Index::new();
    let (mut disk_bytes, mut damaged_bytes, mut segments) = (0u64, 0u64, 0usize);
    for number in list_segments(dir)? {
        // A segment deleted by the running agent between listing and reading is simply gone.
        let loaded = match load_segment(dir, number) {
            Ok(loaded) => loaded,
            Err(JournalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                continue;
            }
            Err(e) => return Err(e),
        };
        segments += 1;
        disk_bytes = disk_bytes.saturating_add(loaded.size);
        let damaged = loaded.size.saturating_sub(loaded.scan.good_len as u64);
        damaged_bytes = damaged_bytes.saturating_add(damaged);
        index_segment(&mut index, &loaded);
    }
    let (acked, acked_problem) = match read_acked(dir) {
        Ok(acked) => (acked.unwrap_or_default(), None),
        Err(problem) => {
            warn!(%problem, "journal: ignoring an unreadable watermark file; the backlog is \
                             shown as if nothing were acknowledged");
            (Ack::default(), Some(problem))
        }
    };
    index.acknowledge(&acked);
    Ok(Inspection {
        dir: dir.to_owned(),
        segments,
        disk_bytes,
        records: index.len(),
        backlog: index.backlog(),
        acked,
        acked_problem,
        overflowed: read_overflowed(dir),
        damaged_bytes,
    })
}
