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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use netmon_events::{Ack, BootId};
use serde::Deserialize;

use super::JournalError;
use super::index::{Backlog, Index, Lost};
use super::record::{self, Damage, Scan};

pub const LOCK_FILE: &str = "lock";
pub const ACKED_FILE: &str = "acked.json";
pub const OVERFLOWED_FILE: &str = "overflowed";
const SEGMENT_SUFFIX: &str = ".seg";

/// The file name of segment `number`.
pub fn segment_name(number: u64) -> String {
    format!("{number:020}{SEGMENT_SUFFIX}")
}

/// The segments in `dir`, oldest first. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let entries =
        fs::read_dir(dir).map_err(|e| JournalError::io(format!("listing {}", dir.display()), e))?;
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name
            .strip_suffix(SEGMENT_SUFFIX)
            .and_then(|n| n.parse::<u64>().ok())
        {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
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
    fn declares(&self) -> Option<Lost> {
        Some(Lost {
            boot: self.dropped_boot.clone()?,
            first_seq: self.first_seq?,
            last_seq: self.last_seq?,
        })
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

/// Reads and scans segment `number`. A record whose checksum holds but which is not an envelope
/// ends the good part like any other damage.
pub fn load_segment(dir: &Path, number: u64) -> Result<Loaded, JournalError> {
    let path = dir.join(segment_name(number));
    let bytes =
        fs::read(&path).map_err(|e| JournalError::io(format!("reading {}", path.display()), e))?;
    let mut scan = record::scan(&bytes);
    let mut keys = Vec::with_capacity(scan.records.len());
    let mut declares = Vec::with_capacity(scan.records.len());
    let mut bad = None;
    for (i, span) in scan.records.iter().enumerate() {
        match serde_json::from_slice::<Key>(&bytes[span.payload()]) {
            Ok(key) if key.seq > 0 => {
                declares.push(key.declares());
                keys.push((key.boot, key.seq));
            }
            _ => {
                bad = Some(i);
                break;
            }
        }
    }
    if let Some(i) = bad {
        record::cut_at(&mut scan, i, Damage::NotAnEnvelope);
    }
    Ok(Loaded {
        number,
        size: bytes.len() as u64,
        scan,
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

/// The persisted watermark; `None` when there is none yet. A damaged file is reported, not fatal:
/// without it the agent merely resends more.
pub fn read_acked(dir: &Path) -> Result<Option<Ack>, String> {
    let path = dir.join(ACKED_FILE);
    match fs::read(&path) {
        Ok(bytes) => Ack::from_json(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The persisted overflow counter (0 when absent or unreadable).
pub fn read_overflowed(dir: &Path) -> u64 {
    fs::read_to_string(dir.join(OVERFLOWED_FILE))
        .ok()
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
    /// The last watermark persisted (`acks` empty when none).
    pub acked: Ack,
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
    let (mut disk_bytes, mut damaged_bytes, mut segments) = (0, 0, 0);
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
        disk_bytes += loaded.size;
        damaged_bytes += loaded.size - loaded.scan.good_len as u64;
        index_segment(&mut index, &loaded);
    }
    let acked = read_acked(dir)
        .map_err(|problem| JournalError::io(problem, io::Error::from(io::ErrorKind::InvalidData)))?
        .unwrap_or_default();
    index.acknowledge(&acked);
    Ok(Inspection {
        dir: dir.to_owned(),
        segments,
        disk_bytes,
        records: index.len(),
        backlog: index.backlog(),
        acked,
        overflowed: read_overflowed(dir),
        damaged_bytes,
    })
}
