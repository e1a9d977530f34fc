//! The journal: every event the agent records is appended here before it is published, and stays
//! until the collector acknowledges it (or the journal, full, drops it and says so).
//!
//! On disk (`journal.dir`) the journal is a series of segment files of records — length, CRC-32,
//! envelope JSON ([`record`]) — plus the last acknowledgement watermark and an overflow counter
//! ([`disk`]). In memory it is an [`Index`] of every record (boot, seq, segment, offset), rebuilt
//! by scanning the segments at start. Segments make both kinds of forgetting whole-file deletes:
//! a segment whose every record is acknowledged is deleted when the watermark passes it, and when
//! an append would take the journal past `journal.max_bytes` the oldest segments are deleted; the
//! unacknowledged events they held are returned as exact contiguous ranges ([`Lost`]) for the
//! recorder to record as `journal_overflowed` events.
//!
//! **Crash safety.** At start each segment is scanned; at the first record that is not whole and
//! intact (a torn write, zeros, a bad checksum) the segment is truncated and the loss logged at
//! WARN. That is the torn tail of the newest segment after a crash or a power cut; in an older
//! segment (flash corruption) the records from the damage to the end of that segment are lost.
//! The agent takes an exclusive `flock` on `{dir}/lock`: a second agent on the same directory
//! fails at start.
//!
//! **Damaged or hostile files.** Nothing in `journal.dir` can make opening the journal panic or
//! take memory in proportion to a file's size: every number read from disk goes through checked
//! or saturating arithmetic, segments are read one record at a time and no further than the
//! largest segment an agent writes ([`record::MAX_SEGMENT_BYTES`]; the excess is cut like other
//! damage), a record with an impossible seq or lost range counts as damage, a segment number
//! too high to count on from gets the segments renumbered, and an unreadable `acked.json` is
//! ignored with a WARN (by `run` and `netmon-agent journal` alike). [`record::scan`],
//! [`disk::load_segment`] and [`Index`] are public for fuzzing.
//!
//! **fsync policy — flash wear against what a power cut can lose.** Appends are written to the
//! operating system at once (one `write` per record, so another process — `netmon-agent journal`
//! — sees them, and an agent crash or `kill -9` loses nothing). They reach the disk only when
//! [`Journal::sync`] runs: every `journal.fsync_interval` (default 1 s) when something was
//! appended, at segment rotation and at shutdown. A power cut therefore loses at most the last
//! `fsync_interval` of events, and those are mostly already delivered: a live agent publishes
//! within ~100 ms. Each fsync is a flash write (a page per segment plus file-system metadata): at
//! 1 s that is ~86,000 small writes a day, which cheap router flash (NOR/SPI NAND behind UBIFS or
//! JFFS2) tolerates for years but not forever; raise the interval to 10 s to cut wear tenfold at
//! the price of a longer window. The watermark file is rewritten at most once per interval too.
//! On OpenWrt `/tmp` is RAM: a journal there causes no wear at all and survives agent restarts,
//! but not a power cut or a reboot — the right choice for flash-starved devices, stated in the
//! example config. See `docs/adr/0007-agent-journal.md`.

pub mod disk;
mod index;
pub mod record;
mod recovery;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use netmon_events::{Ack, BootId, Envelope, Event};
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

pub use disk::{Inspection, inspect};
pub use index::{Backlog, Index, Lost};
pub use record::Damage;
pub use recovery::{Recovery, Truncation};

/// Smallest `journal.max_bytes`.
pub const MIN_MAX_BYTES: u64 = 64 * 1024;

/// The segment size for a journal of `max_bytes`: a sixteenth of it, from 16 KiB to 1 MiB, so
/// that dropping the oldest segment loses a small share of the journal.
pub fn segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 16).clamp(16 * 1024, record::MAX_SEGMENT_BYTES)
}

/// Why the journal cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process (a second agent with the same `journal.dir`) holds the lock: stop it or
    /// give this agent its own directory.
    #[error(
        "journal {} is in use by another netmon-agent (it holds the lock on {}/lock); \
         give each agent its own journal.dir",
        dir.display(), dir.display()
    )]
    Locked { dir: PathBuf },
    /// A file operation failed; the journal is not usable (disk full, read-only, I/O error).
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

impl JournalError {
    fn io(what: impl Into<String>, source: io::Error) -> JournalError {
        JournalError::Io {
            what: what.into(),
            source,
        }
    }
}

/// The number of the segment after `number`.
fn next_segment(dir: &Path, number: u64) -> Result<u64, JournalError> {
    number.checked_add(1).ok_or_else(|| {
        JournalError::io(
            format!("starting a segment in {}", dir.display()),
            io::Error::other("segment numbers exhausted"),
        )
    })
}

/// Events selected for sending, and the ordinal to continue from.
#[derive(Debug)]
pub struct Selected {
    pub events: Vec<Envelope>,
    pub next: u64,
}

/// The journal; shared by the recorder (appends, syncs) and the publisher (reads, acknowledges).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    inner: Mutex<Inner>,
    appended: Notify,
    /// Holds the exclusive lock for as long as the journal is open.
    _lock: File,
}

#[derive(Debug)]
struct Inner {
    index: Index,
    /// Segment numbers and sizes, oldest first; the last one is being appended to.
    segments: recovery::Segments,
    active: File,
    total_bytes: u64,
    max_bytes: u64,
    segment_bytes: u64,
    /// Appends not yet fsync'ed.
    unsynced: bool,
    /// The watermark rose since it was last persisted.
    ack_unsaved: bool,
    overflowed: u64,
    /// The segment last read from, kept open.
    reader: Option<(u64, File)>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`: takes the lock, scans and repairs the
    /// segments, loads the watermark.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Journal, Recovery), JournalError> {
        let max_bytes = max_bytes.max(MIN_MAX_BYTES);
        std::fs::create_dir_all(dir)
            .map_err(|e| JournalError::io(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join(disk::LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| JournalError::io(format!("opening {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(JournalError::Locked { dir: dir.into() }),
            Err(TryLockError::Error(e)) => {
                return Err(JournalError::io(
                    format!("locking {}", lock_path.display()),
                    e,
                ));
            }
        }
        let (index, mut segments, recovery) = recovery::recover(dir)?;
        let segment_bytes = segment_bytes(max_bytes);
        // Append to the newest segment while it has room, else start a new one.
        let active_number = match segments.back() {
            Some((number, size)) if *size < segment_bytes => *number,
            // Recovery renumbers segments above MAX_SEGMENT_NUMBER: this cannot overflow.
            Some((number, _)) => next_segment(dir, *number)?,
            None => 1,
        };
        if segments.back().is_none_or(|(n, _)| *n != active_number) {
            segments.push_back((active_number, 0));
        }
        let active = disk::open_segment(dir, active_number)?;
        let total_bytes = segments
            .iter()
            .fold(0u64, |total, (_, size)| total.saturating_add(*size));
        let journal = Journal {
            dir: dir.to_owned(),
            inner: Mutex::new(Inner {
                index,
                segments,
                active,
                total_bytes,
                max_bytes,
                segment_bytes,
                unsynced: false,
                ack_unsaved: false,
                overflowed: disk::read_overflowed(dir),
                reader: None,
            }),
            appended: Notify::new(),
            _lock: lock,
        };
        journal.delete_acknowledged()?;
        let backlog = journal.backlog();
        info!(
            dir = %dir.display(),
            records = recovery.records,
            backlog = backlog.events,
            oldest_boot = backlog.oldest.as_ref().map(|(b, _)| b.as_str()),
            oldest_seq = backlog.oldest.as_ref().map(|(_, s)| *s),
            "journal opened"
        );
        Ok((journal, recovery))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation below leaves `Inner` consistent between statements that can panic.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one event. When the journal would pass `max_bytes`, the oldest segments are deleted
    /// first; the unacknowledged events they held are returned (the caller records them as
    /// `journal_overflowed`).
    pub fn append(&self, envelope: &Envelope) -> Result<Vec<Lost>, JournalError> {
        let payload = serde_json::to_vec(envelope)
            .map_err(|e| JournalError::io("encoding an event", io::Error::other(e)))?;
        let bytes = record::encode(&payload);
        let len = bytes.len() as u64;
        let mut lost: Vec<Lost> = Vec::new();
        {
            let mut inner = self.lock();
            let active_size = inner.segments.back().map_or(0, |(_, size)| *size);
            if active_size > 0 && active_size + len > inner.segment_bytes {
                self.rotate(&mut inner)?;
            }
            while inner.total_bytes + len > inner.max_bytes && inner.segments.len() > 1 {
                for run in self.drop_oldest(&mut inner)? {
                    index::push_run(&mut lost, &run.boot, run.first_seq, run.last_seq);
                }
            }
            inner
                .active
                .write_all(&bytes)
                .map_err(|e| JournalError::io(format!("appending to {}", self.dir.display()), e))?;
            let Some((number, size)) = inner.segments.back_mut() else {
                return Err(JournalError::io(
                    "journal has no segment",
                    io::Error::other("bug"),
                ));
            };
            let (number, offset) = (*number, *size);
            *size += len;
            inner.total_bytes += len;
            inner.unsynced = true;
            let record_len = u32::try_from(len).unwrap_or(u32::MAX);
            let declares = match &envelope.event {
                Event::JournalOverflowed {
                    dropped_boot,
                    first_seq,
                    last_seq,
                    ..
                } => Some(Lost {
                    boot: dropped_boot.clone(),
                    first_seq: *first_seq,
                    last_seq: *last_seq,
                }),
                _ => None,
            };
            inner.index.push(
                &envelope.boot,
                envelope.seq,
                number,
                offset,
                record_len,
                declares.as_ref(),
            );
            if !lost.is_empty() {
                inner.overflowed = lost
                    .iter()
                    .fold(inner.overflowed, |n, run| n.saturating_add(run.count()));
                let text = format!("{}\n", inner.overflowed);
                disk::write_atomic(&self.dir, disk::OVERFLOWED_FILE, text.as_bytes())?;
            }
        }
        self.appended.notify_one();
        Ok(lost)
    }

    fn rotate(&self, inner: &mut Inner) -> Result<(), JournalError> {
        if inner.unsynced {
            inner
                .active
                .sync_data()
                .map_err(|e| JournalError::io(format!("fsync in {}", self.dir.display()), e))?;
            inner.unsynced = false;
        }
        let next = match inner.segments.back() {
            Some((n, _)) => next_segment(&self.dir, *n)?,
            None => 1,
        };
        inner.active = disk::open_segment(&self.dir, next)?;
        inner.segments.push_back((next, 0));
        debug!(segment = next, "journal: new segment");
        Ok(())
    }

    fn drop_oldest(&self, inner: &mut Inner) -> Result<Vec<Lost>, JournalError> {
        let Some((number, size)) = inner.segments.pop_front() else {
            return Ok(Vec::new());
        };
        disk::remove_segment(&self.dir, number)?;
        inner.total_bytes = inner.total_bytes.saturating_sub(size);
        if inner.reader.as_ref().is_some_and(|(n, _)| *n == number) {
            inner.reader = None;
        }
        let lost = inner.index.remove_segment(number);
        for run in &lost {
            warn!(
                dropped_boot = %run.boot,
                first_seq = run.first_seq,
                last_seq = run.last_seq,
                count = run.count(),
                max_bytes = inner.max_bytes,
                "journal full: dropped the oldest unacknowledged events"
            );
        }
        Ok(lost)
    }

    /// Raises the watermark and deletes the segments that hold only acknowledged events. Returns
    /// how many segments were deleted.
    pub fn acknowledge(&self, ack: &Ack) -> Result<usize, JournalError> {
        {
            let mut inner = self.lock();
            if inner.index.acknowledge(ack) {
                inner.ack_unsaved = true;
            }
        }
        self.delete_acknowledged()
    }

    fn delete_acknowledged(&self) -> Result<usize, JournalError> {
        let mut inner = self.lock();
        let active = inner.segments.back().map_or(0, |(n, _)| *n);
        let done = inner.index.acknowledged_segments(active);
        for number in &done {
            disk::remove_segment(&self.dir, *number)?;
            inner.index.remove_segment(*number);
            if let Some(i) = inner.segments.iter().position(|(n, _)| n == number)
                && let Some((_, size)) = inner.segments.remove(i)
            {
                inner.total_bytes = inner.total_bytes.saturating_sub(size);
            }
            if inner.reader.as_ref().is_some_and(|(n, _)| n == number) {
                inner.reader = None;
            }
        }
        if !done.is_empty() {
            debug!(
                segments = done.len(),
                "journal: acknowledged segments deleted"
            );
        }
        Ok(done.len())
    }

    /// Makes appended events and the watermark durable (fsync); cheap when nothing changed.
    pub fn sync(&self) -> Result<(), JournalError> {
        let (file, ack) = {
            let mut inner = self.lock();
            let file = if inner.unsynced {
                inner.unsynced = false;
                Some(
                    inner
                        .active
                        .try_clone()
                        .map_err(|e| JournalError::io("fsync", e))?,
                )
            } else {
                None
            };
            let ack = std::mem::take(&mut inner.ack_unsaved).then(|| inner.index.watermark());
            (file, ack)
        };
        // fsync outside the lock: the recorder and publisher keep going meanwhile.
        if let Some(file) = file {
            file.sync_data()
                .map_err(|e| JournalError::io(format!("fsync in {}", self.dir.display()), e))?;
        }
        if let Some(ack) = ack {
            disk::write_atomic(&self.dir, disk::ACKED_FILE, &ack.to_json())?;
        }
        Ok(())
    }

    /// Reads the next unacknowledged events at or after ordinal `from` (at most `max_events` and
    /// about `max_bytes`). A record that no longer reads back intact is skipped and logged.
    pub fn select(
        &self,
        from: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Selected, JournalError> {
        self.read_selected(from, max_events, max_bytes, false)
    }

    /// Like [`Journal::select`], but the events of one boot only: the selection ends before
    /// the next boot's first event (a compact batch holds one boot's events).
    pub fn select_boot(
        &self,
        from: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Selected, JournalError> {
        self.read_selected(from, max_events, max_bytes, true)
    }

    fn read_selected(
        &self,
        from: u64,
        max_events: usize,
        max_bytes: usize,
        one_boot: bool,
    ) -> Result<Selected, JournalError> {
        let mut inner = self.lock();
        let (entries, next) = if one_boot {
            inner.index.select_boot(from, max_events, max_bytes)
        } else {
            inner.index.select(from, max_events, max_bytes)
        };
        let mut events = Vec::with_capacity(entries.len());
        let mut buf = Vec::new();
        for entry in entries {
            if inner
                .reader
                .as_ref()
                .is_none_or(|(n, _)| *n != entry.segment)
            {
                let path = self.dir.join(disk::segment_name(entry.segment));
                let file = File::open(&path)
                    .map_err(|e| JournalError::io(format!("opening {}", path.display()), e))?;
                inner.reader = Some((entry.segment, file));
            }
            let Some((_, file)) = &inner.reader else {
                continue;
            };
            // Index entries come from scans: never longer than a record may be.
            buf.resize((entry.len as usize).min(record::MAX_RECORD), 0);
            let read = file.read_exact_at(&mut buf, entry.offset);
            let decoded = read
                .map_err(|e| e.to_string())
                .and_then(|()| record::decode(&buf).map_err(|d| d.to_string()))
                .and_then(|payload| {
                    serde_json::from_slice::<Envelope>(payload).map_err(|e| e.to_string())
                });
            match decoded {
                Ok(envelope) => events.push(envelope),
                Err(problem) => error!(
                    boot = inner.index.boot_of(&entry).map(BootId::as_str),
                    seq = entry.seq,
                    segment = entry.segment,
                    %problem,
                    "journal: a record no longer reads back; this event is lost"
                ),
            }
        }
        Ok(Selected { events, next })
    }

    /// Unacknowledged events at or after ordinal `from`, counted up to `cap`.
    pub fn pending(&self, from: u64, cap: usize) -> usize {
        self.lock().index.pending(from, cap)
    }

    /// The ordinal the next appended event will get.
    pub fn next_ordinal(&self) -> u64 {
        self.lock().index.next_ordinal()
    }

    /// Events above the watermark.
    pub fn backlog(&self) -> Backlog {
        self.lock().index.backlog()
    }

    /// The current watermark.
    pub fn watermark(&self) -> Ack {
        self.lock().index.watermark()
    }

    /// Size of the segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    /// Events dropped unsent since the journal was created.
    pub fn overflowed(&self) -> u64 {
        self.lock().overflowed
    }

    /// Waits until an event is appended (returns at once if one was appended since the last wait).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }
}
