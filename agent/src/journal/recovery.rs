//! Recovery at start (I/O): every segment is scanned; at the first record that is not whole and
//! intact the segment is truncated there and the loss logged at WARN; empty segments are deleted;
//! the good records are indexed, and the persisted watermark applied (an unreadable one is
//! ignored with a WARN). Segment numbers too high to count on from are renumbered first.
//!
//! A segment larger than [`super::record::MAX_SEGMENT_BYTES`] (no agent writes one) is read
//! only up to that bound and truncated there like any damage ([`Damage::TooLarge`]): recovery
//! reads one record at a time, so its memory never depends on the files' sizes.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::path::Path;

use tracing::warn;

use super::index::Index;
use super::record::Damage;
use super::{JournalError, disk};

/// Segment numbers and sizes, oldest first.
pub type Segments = VecDeque<(u64, u64)>;

/// A segment whose end was damaged and cut off at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub segment: u64,
    /// Where the good part ends (the new file size).
    pub offset: u64,
    /// Bytes cut off.
    pub bytes: u64,
    pub damage: Damage,
}

/// What [`Journal::open`] found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    /// Intact records kept.
    pub records: usize,
    pub truncations: Vec<Truncation>,
}

/// Scans and repairs the segments in `dir`; returns the index, the segments (number, size) oldest
/// first, and what was found.
pub fn recover(dir: &Path) -> Result<(Index, Segments, Recovery), JournalError> {
    let mut index = Index::new();
    let mut recovery = Recovery::default();
    let mut segments = VecDeque::new();
    let mut numbers = disk::list_segments(dir)?;
    if let Some(newest) = numbers.last().filter(|n| **n > disk::MAX_SEGMENT_NUMBER) {
        warn!(
            dir = %dir.display(),
            newest = *newest,
            segments = numbers.len(),
            "journal: segment numbers too high to count on from; renumbering the segments in order"
        );
        numbers = disk::renumber_segments(dir, &numbers)?;
    }
    for number in numbers {
        let loaded = disk::load_segment(dir, number)?;
        let path = dir.join(disk::segment_name(number));
        let good = loaded.scan.good_len as u64;
        let cut = loaded.size.saturating_sub(good);
        if let Some(damage) = loaded.scan.damage {
            let last_good = loaded.keys.last();
            warn!(
                segment = %path.display(),
                offset = good,
                bytes = cut,
                %damage,
                last_good_boot = last_good.map(|(b, _)| b.as_str()),
                last_good_seq = last_good.map(|(_, s)| *s),
                "journal: damaged records cut off (a torn write after a crash or a power cut, \
                 or corruption); the events after the last good one in this segment are lost"
            );
            truncate(&path, good)?;
            recovery.truncations.push(Truncation {
                segment: number,
                offset: good,
                bytes: cut,
                damage,
            });
        }
        if good == 0 {
            std::fs::remove_file(&path)
                .map_err(|e| JournalError::io(format!("removing {}", path.display()), e))?;
            continue;
        }
        disk::index_segment(&mut index, &loaded);
        segments.push_back((number, good));
        recovery.records += loaded.keys.len();
    }
    recovery.segments = segments.len();
    match disk::read_acked(dir) {
        Ok(Some(ack)) => {
            index.acknowledge(&ack);
        }
        Ok(None) => {}
        Err(problem) => warn!(%problem, "journal: ignoring an unreadable watermark file; \
                                             unacknowledged-looking events will be resent"),
    }
    Ok((index, segments, recovery))
}

fn truncate(path: &Path, len: u64) -> Result<(), JournalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| JournalError::io(format!("opening {}", path.display()), e))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| JournalError::io(format!("truncating {}", path.display()), e))
}
