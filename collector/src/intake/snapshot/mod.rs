//! Snapshots (ADR 15): what the writer folds from the store — the live state, the alert rules'
//! signals, the alert book with its outbox, the agents' described targets ([`Folded`]) — kept
//! in one file beside the store, `{store}.snapshot`, at a store position, so that a restart
//! replays only the events after it.
//!
//! - Taking one: the writer copies the fold between batches (its cost grows with the fleet, not
//!   the batch), and a thread of its own encodes it ([`format`]), writes it to
//!   `{store}.snapshot.tmp`, fsyncs it and renames it over the last one: the file is always
//!   whole. Every `store.snapshot_every`, only when events were stored since the last one, never
//!   two at once; once more when the collector stops.
//! - Loading one: a file of another format, store schema or build, a bad checksum, a body that
//!   does not decode, a configuration the signals were not folded with, a position beyond the
//!   store's last event or an event there that is not the one it was taken after is ignored
//!   with a WARN saying why, and the store is replayed from its first event — never a wrong
//!   state. Replay from zero and snapshot + tail give the same fold (`invariant_tests.rs`).

pub mod format;
#[cfg(test)]
mod invariant_tests;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::alerts::Alerting;
use crate::store::{Store, StoreError};
pub use format::{Expected, Folded, Header, Ignored};

/// A snapshot file beside a store, when to take the next one, and the one being written.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    every: Duration,
    /// The collector's monotonic time (ms) at which the next snapshot is due.
    next_ms: u64,
    /// The position of the last snapshot written or being written (nothing new: none is taken).
    position: i64,
    writing: Option<JoinHandle<Result<i64, String>>>,
}

impl SnapshotFile {
    /// `{store}.snapshot`, taken every `every`.
    pub fn beside(store: &Path, every: Duration) -> Self {
        let mut path = store.as_os_str().to_owned();
        path.push(".snapshot");
        Self {
            path: PathBuf::from(path),
            every,
            next_ms: every_ms(every),
            position: 0,
            writing: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fold of the newest usable snapshot for `store`, or `None` (logged with the reason)
    /// when the store must be replayed from its first event. `fold` is [`fold_key`] of the
    /// alerting the replay will use.
    pub fn load(&mut self, store: &Store, fold: u32) -> Option<Folded> {
        let started = Instant::now();
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                info!(path = %self.path.display(), "no snapshot: replaying the whole store");
                return None;
            }
            Err(e) => return self.ignored(&Ignored::Unreadable(e.to_string())),
        };
        let expected = Expected {
            schema: crate::store::schema::SCHEMA_VERSION,
            build: format::build(),
            fold,
        };
        let checked = format::decode(&bytes, &expected).and_then(|(header, folded)| {
            match placed(store, &header) {
                Ok(None) => Ok((header, folded)),
                Ok(Some(ignored)) => Err(ignored),
                Err(e) => Err(Ignored::Unreadable(format!("reading the store: {e}"))),
            }
        });
        match checked {
            Ok((header, folded)) => {
                info!(
                    path = %self.path.display(),
                    position = header.position,
                    taken = %header.taken,
                    bytes = bytes.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "snapshot loaded"
                );
                self.position = header.position;
                Some(folded)
            }
            Err(why) => self.ignored(&why),
        }
    }

    fn ignored(&self, why: &Ignored) -> Option<Folded> {
        warn!(path = %self.path.display(), reason = %why, "snapshot ignored: replaying the whole store");
        None
    }

    /// Whether a snapshot should be taken now, at `now_ms` on the collector's monotonic clock,
    /// of a fold whose last event is `position`: it is due, something was stored since the last
    /// one, and none is being written.
    pub fn due(&mut self, now_ms: u64, position: i64) -> bool {
        self.reap(false);
        self.writing.is_none() && now_ms >= self.next_ms && position > self.position
    }

    /// Makes the first [`SnapshotFile::due`] come at once (after a start that replayed events
    /// no snapshot held).
    pub fn soon(&mut self) {
        self.next_ms = 0;
    }

    /// Encodes and writes `folded` on a thread of its own. `now_ms` as for `due`; `copied` is
    /// what the copy cost the writer (logged with the write).
    pub fn take(&mut self, header: Header, folded: Folded, now_ms: u64, copied: Duration) {
        self.reap(true);
        self.position = header.position;
        self.next_ms = now_ms.saturating_add(every_ms(self.every));
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name("netmon-snapshot".into())
            .spawn(move || write(&path, &header, &folded, copied).map(|()| header.position));
        match spawned {
            Ok(handle) => self.writing = Some(handle),
            Err(e) => {
                warn!(error = %e, "snapshot not taken: no thread to write it");
                self.position = 0;
            }
        }
    }

    /// Waits for the snapshot being written, if any; then, if events were stored since the
    /// last one, writes `snapshot()` here and now (the collector is stopping).
    pub fn finish(&mut self, position: i64, snapshot: impl FnOnce() -> Option<(Header, Folded)>) {
        self.reap(true);
        if position <= self.position {
            return;
        }
        if let Some((header, folded)) = snapshot() {
            match write(&self.path, &header, &folded, Duration::ZERO) {
                Ok(()) => self.position = header.position,
                Err(e) => warn!(error = %e, "snapshot not written at stop"),
            }
        }
    }

    /// Takes the outcome of the snapshot being written, waiting for it if `wait`.
    fn reap(&mut self, wait: bool) {
        let finished = self.writing.as_ref().is_some_and(JoinHandle::is_finished);
        if !(finished || wait) {
            return;
        }
        let Some(handle) = self.writing.take() else {
            return;
        };
        match handle.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "snapshot not written; the next start replays more of the store");
                self.position = 0;
            }
            Err(_) => {
                warn!("the snapshot thread panicked");
                self.position = 0;
            }
        }
    }
}

fn every_ms(every: Duration) -> u64 {
    u64::try_from(every.as_millis()).unwrap_or(u64::MAX)
}

/// Whether `header`'s position stands in `store`: `Some` reason when it does not.
fn placed(store: &Store, header: &Header) -> Result<Option<Ignored>, StoreError> {
    let last = store.max_id()?;
    if header.position > last {
        return Ok(Some(Ignored::BeyondEnd {
            position: header.position,
            last,
        }));
    }
    let same = at(store, header.position)?.is_some_and(|key| key == header.at_position);
    Ok((!same).then_some(Ignored::OtherStore {
        position: header.position,
    }))
}

/// The `(agent, boot, seq)` of the stored event `id`, if it is there and readable.
pub fn at(
    store: &Store,
    id: i64,
) -> Result<Option<(netmon_events::AgentId, netmon_events::BootId, u64)>, StoreError> {
    let page = store.events_after(id - 1, None, 1)?;
    Ok(page
        .events
        .into_iter()
        .find(|e| e.id == id)
        .map(|e| (e.envelope.agent, e.envelope.boot, e.envelope.seq)))
}

/// The header of a snapshot of a fold whose last event is `position`, taken at `now`; `None`
/// when that event cannot be read back (then no snapshot is taken).
pub fn header(
    store: &Store,
    position: i64,
    fold: u32,
    now: DateTime<Utc>,
) -> Result<Option<Header>, StoreError> {
    Ok(at(store, position)?.map(|at_position| Header {
        schema: crate::store::schema::SCHEMA_VERSION,
        build: format::build(),
        fold,
        position,
        at_position,
        taken: now,
    }))
}

/// What the signals are folded with besides the events: `[alerts]` and the site thresholds of
/// the inventory's agents. A snapshot folded with other values is not used.
pub fn fold_key(alerting: &Alerting) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(format!("{:?}", alerting.config).as_bytes());
    if let Some(inventory) = alerting.inventory.as_deref() {
        let mut agents: Vec<_> = inventory
            .agents
            .keys()
            .filter_map(|agent| {
                let site = inventory.site_of(agent)?;
                (site.thresholds != Default::default()).then_some((agent, site.thresholds))
            })
            .collect();
        agents.sort_by(|a, b| a.0.cmp(b.0));
        for (agent, thresholds) in agents {
            hasher.update(format!("{agent}={thresholds:?};").as_bytes());
        }
    }
    hasher.finalize()
}

/// Writes the file whole: to a temporary name, fsync, rename over the last one, fsync the folder.
/// `copied` is what copying the fold cost the writer, for the log.
fn write(path: &Path, header: &Header, folded: &Folded, copied: Duration) -> Result<(), String> {
    let started = Instant::now();
    let bytes = format::encode(header, folded).map_err(|e| format!("encoding: {e}"))?;
    let encoded = started.elapsed();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", temporary.display());
    let mut file = std::fs::File::create(&temporary).map_err(|e| io("creating", e))?;
    file.write_all(&bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|e| io("renaming", e))?;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("syncing {}: {e}", folder.display()))?;
    }
    info!(
        path = %path.display(),
        position = header.position,
        bytes = bytes.len(),
        copy_ms = copied.as_millis() as u64,
        encode_ms = encoded.as_millis() as u64,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    Ok(())
}
