//! The event store: one SQLite file, the system of record.
//!
//! Every event is one row of `events` (schema 5, ADR 15), keyed by its position `id` and unique
//! on `(stream, seq)` — a stream being one `(agent, boot, province)` of `streams` — so that a
//! second delivery of the same event is a no-op. A row holds integers for what every event has
//! (type code, target id from `targets`, effective time, the agent's time and the reception as
//! differences from it, `mono_ms` as its drift from the stream's, origin/clock/late as flags,
//! `codes.rs`) and the event's own fields compressed (`body.rs`); `rows.rs` writes and reads it.
//! The envelope read back is equal to the one appended (times to the millisecond). `boots`
//! keeps, per agent boot, the acknowledgement watermark and the epoch estimate, written in the
//! same transaction as the events (see `boots.rs`). The schema and its migrations are in
//! `schema.rs` (4 → 5 in `migrate.rs`; older files are read by `legacy.rs`). The daemon holds
//! the only writable connection; the CLI opens the file read-only, which WAL allows while the
//! daemon runs.

pub mod backup;
pub mod body;
mod codes;
pub mod config;
mod legacy;
mod migrate;
mod read;
pub mod retention;
pub mod rollups;
mod rows;
pub mod schema;
#[cfg(test)]
pub(crate) mod testkit;

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use netmon_events::{AgentId, BootId, Envelope, ProvinceId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::intake::clock::ClockSource;
use read::Layout;
use rows::Rows;
use schema::SCHEMA_VERSION;

/// Who recorded an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An agent sent it over MQTT.
    Agent,
    /// The collector made it (for example `agent_went_silent`).
    Collector,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Agent => "agent",
            Origin::Collector => "collector",
        }
    }
}

/// An event as it sits in the store: its position, where it came from, and the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub province: ProvinceId,
    /// When the collector received (or made) it, to the millisecond.
    pub received: DateTime<Utc>,
    pub origin: Origin,
    /// The effective time: the envelope's `time`, or its correction (see `clock`).
    pub time: DateTime<Utc>,
    /// Where `time` comes from.
    pub clock: ClockSource,
    /// Received more than `delivery.late_after` after `time` (a replayed backlog).
    pub late: bool,
    pub envelope: Envelope,
}

impl StoredEvent {
    /// How far the effective time is from the agent's wall time (zero when it was kept). The
    /// event's other wall times (an outage's start) are shifted by the same amount.
    pub fn correction(&self) -> chrono::TimeDelta {
        match self.clock {
            ClockSource::Agent => chrono::TimeDelta::zero(),
            ClockSource::Corrected | ClockSource::Received => self.time - self.envelope.time,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub province: ProvinceId,
    pub received: DateTime<Utc>,
    pub origin: Origin,
    /// The effective time, its source and lateness (see [`StoredEvent`]).
    pub time: DateTime<Utc>,
    pub clock: ClockSource,
    pub late: bool,
    pub envelope: Envelope,
}

/// One row of `boots`: what the collector knows about one agent boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootRow {
    pub agent: AgentId,
    pub boot: BootId,
    /// Every seq `1..=watermark` of the boot is stored or recorded as lost.
    pub watermark: u64,
    /// The boot's epoch estimate (see `clock.rs`), if a batch of this boot has been seen.
    pub epoch: Option<DateTime<Utc>>,
    pub first_received: DateTime<Utc>,
    pub last_received: DateTime<Utc>,
}

/// A boot as loaded at start, with the highest seq stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedBoot {
    pub row: BootRow,
    pub max_seq: u64,
}

/// A stored `journal_overflowed`: `agent` lost `first_seq..=last_seq` of `dropped_boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    pub agent: AgentId,
    pub dropped_boot: BootId,
    pub first_seq: u64,
    pub last_seq: u64,
    pub received: DateTime<Utc>,
}

/// Filters for [`Store::query`].
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub agent: Option<String>,
    pub event_type: Option<String>,
    /// The newest `limit` events (still returned oldest first); `None` for all.
    pub limit: Option<u64>,
}

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (disk full, I/O error, locked, corrupt file): retry later or act.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer collector: upgrade this one.
    #[error("store schema version {0} is newer than this collector's {SCHEMA_VERSION}")]
    NewerSchema(i64),
    /// A read-only opening of a file older than this build can read: run the daemon once.
    #[error("store schema version {0} is too old to read; start the collector once to upgrade it")]
    OlderSchema(i64),
    /// A row could not be read back: the file was altered by hand or is corrupt.
    #[error("row {id}: {problem}")]
    BadRow { id: i64, problem: String },
    /// The body codec could not be set up (out of memory).
    #[error("store codec: {0}")]
    Codec(String),
}

/// A connection to the event store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// How this file's rows are laid out (a read-only opener may meet a file older than 5).
    layout: Layout,
    /// What this connection knows of `streams` and `targets`, and the body codec.
    rows: RefCell<Rows>,
}

impl Store {
    /// Opens (creating if needed) the store for writing: WAL, `synchronous=NORMAL`. An older
    /// file is migrated first (schema 4 → 5 in steps, `migrate.rs`).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Deleted measurements give their pages back (retention). Only a new file takes this,
        // before anything (even the switch to WAL) writes its first page; on an existing file
        // it changes nothing.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        schema::upgrade(&conn)?;
        Ok(Self {
            conn,
            layout: Layout::Compact,
            rows: RefCell::new(Rows::new()?),
        })
    }

    /// Opens an existing store read-only; works while the daemon writes to it, and on a file of
    /// schema 1 to 4 that the daemon has not migrated yet (or is migrating).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let version = schema::user_version(&conn)?;
        let layout = match version {
            SCHEMA_VERSION => Layout::Compact,
            v if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema(v)),
            v if v < 1 => return Err(StoreError::OlderSchema(v)),
            v => Layout::Text {
                version: v,
                table: if migrate::has_table(&conn, migrate::UNDER_WAY)? {
                    "events_v4"
                } else {
                    "events"
                },
            },
        };
        Ok(Self {
            conn,
            layout,
            rows: RefCell::new(Rows::new()?),
        })
    }

    /// The SQLite journal mode (`wal` for a store opened by [`Store::open`]).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?)
    }

    /// Appends events and upserts boot rows in one transaction; see [`Store::append_with`].
    pub fn append(
        &mut self,
        events: &[NewEvent],
        boots: &[BootRow],
    ) -> Result<Vec<Appended>, StoreError> {
        self.append_with(events, &[], boots)
    }

    /// Appends events, records refusals and upserts boot rows in one transaction. Returns what
    /// became of each event, in order. An event the store cannot hold (a value SQLite refuses, a
    /// body that does not read back) is [`Appended::Refused`] on its own and recorded in
    /// `refusals`: it never costs the rest of the batch. `Err` only when the store itself fails
    /// (disk full, I/O error, locked, read-only): then nothing is written, and the same batch
    /// can be tried again.
    pub fn append_with(
        &mut self,
        events: &[NewEvent],
        refusals: &[Refusal],
        boots: &[BootRow],
    ) -> Result<Vec<Appended>, StoreError> {
        if let Layout::Text { version, .. } = self.layout {
            return Err(StoreError::OlderSchema(version));
        }
        let rows = self.rows.get_mut();
        let tx = self.conn.transaction()?;
        let written = write(&tx, rows, events, refusals, boots);
        match written.and_then(|out| Ok(tx.commit().map(|()| out)?)) {
            Ok(out) => Ok(out),
            Err(e) => {
                // The streams and targets this transaction made are gone with it.
                rows.forget();
                Err(e)
            }
        }
    }

    /// The connection, for tests of the schema.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Makes every write fail (as on a full disk) until called with `false`; for tests.
    #[cfg(test)]
    pub(crate) fn fail_writes(&self, fail: bool) {
        let _ = self.conn.pragma_update(None, "query_only", fail);
    }

    /// Upserts boot rows in one transaction (watermarks advanced while loading).
    pub fn save_boots(&mut self, boots: &[BootRow]) -> Result<(), StoreError> {
        self.append(&[], boots).map(|_| ())
    }

    /// A projection's cursor (0 when it has never delivered anything).
    pub fn projection_position(&self, name: &str) -> Result<i64, StoreError> {
        position(&self.conn, name)
    }

    /// Moves a projection's cursor (one small write).
    pub fn set_projection_position(&mut self, name: &str, position: i64) -> Result<(), StoreError> {
        set_position(&self.conn, name, position)
    }
}

/// The cursor `name` in `projections` (0 when never set): a projection's, or retention's.
pub(crate) fn position(conn: &Connection, name: &str) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT position FROM projections WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Moves the cursor `name` (one small write).
pub(crate) fn set_position(conn: &Connection, name: &str, position: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO projections (name, position) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        params![name, position],
    )?;
    Ok(())
}

/// What [`Store::append`] did with one event.
#[derive(Debug, Clone, PartialEq)]
// `Stored` is the common case (as `Option<StoredEvent>` was); boxing it would allocate once more
// per event.
#[allow(clippy::large_enum_variant)]
pub enum Appended {
    /// Newly stored, as a replay will read it.
    Stored(StoredEvent),
    /// An event with the same `(agent, boot, seq)` was already stored.
    Duplicate,
    /// The store cannot hold this event (and never will): why.
    Refused(String),
}

impl Appended {
    /// The stored event, if it was newly stored.
    pub fn stored(&self) -> Option<&StoredEvent> {
        match self {
            Appended::Stored(event) => Some(event),
            Appended::Duplicate | Appended::Refused(_) => None,
        }
    }
}

/// An agent event refused for good, recorded so that its seq counts as known (`refusals`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub agent: AgentId,
    pub boot: BootId,
    pub seq: u64,
    /// `Rejection::as_str` of the intake (`invalid_event`, `unstorable`).
    pub reason: &'static str,
    pub detail: String,
    pub received: DateTime<Utc>,
}

/// The inserts of [`Store::append_with`], inside its transaction.
fn write(
    tx: &Connection,
    rows: &mut Rows,
    events: &[NewEvent],
    refusals: &[Refusal],
    boots: &[BootRow],
) -> Result<Vec<Appended>, StoreError> {
    let record = |refusal: &Refusal| -> Result<(), StoreError> {
        let Ok(seq) = i64::try_from(refusal.seq) else {
            return Ok(()); // Not a key the store can hold; nothing can depend on it.
        };
        let detail: String = refusal.detail.chars().take(500).collect();
        tx.prepare_cached(
            "INSERT INTO refusals (agent, boot, seq, reason, detail, received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (agent, boot, seq) DO NOTHING",
        )?
        .execute(params![
            refusal.agent.as_str(),
            refusal.boot.as_str(),
            seq,
            refusal.reason,
            detail,
            millis(refusal.received),
        ])?;
        Ok(())
    };
    for refusal in refusals {
        record(refusal)?;
    }
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let appended = rows.insert(tx, event, None)?;
        if let Appended::Refused(problem) = &appended
            && event.origin == Origin::Agent
        {
            record(&Refusal {
                agent: event.envelope.agent.clone(),
                boot: event.envelope.boot.clone(),
                seq: event.envelope.seq,
                reason: "unstorable",
                detail: problem.clone(),
                received: event.received,
            })?;
        }
        out.push(appended);
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO boots (agent, boot, watermark, epoch, first_received, last_received)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (agent, boot) DO UPDATE SET watermark = excluded.watermark,
           epoch = excluded.epoch, last_received = excluded.last_received",
    )?;
    for boot in boots {
        upsert.execute(params![
            boot.agent.as_str(),
            boot.boot.as_str(),
            // Validation bounds every seq by i64::MAX, so this never saturates.
            i64::try_from(boot.watermark).unwrap_or(i64::MAX),
            boot.epoch.map(millis),
            millis(boot.first_received),
            millis(boot.last_received),
        ])?;
    }
    Ok(out)
}

/// Whether SQLite refused one statement because of its values (undone by SQLite on its own, the
/// transaction goes on), rather than because the store cannot write at all.
pub(crate) fn about_the_row(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{ConstraintViolation, TooBig, TypeMismatch};
    match e {
        rusqlite::Error::SqliteFailure(failure, _) => {
            matches!(failure.code, ConstraintViolation | TooBig | TypeMismatch)
        }
        rusqlite::Error::ToSqlConversionFailure(_)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidParameterCount(..) => true,
        _ => false,
    }
}

/// A page of events read for a projection.
#[derive(Debug, Default)]
pub struct Page {
    /// The id of the last row read (the cursor to store once the page is delivered).
    pub last_id: i64,
    pub events: Vec<StoredEvent>,
    /// Rows skipped because they could not be decoded.
    pub undecodable: u64,
}

/// RFC 3339 in UTC with milliseconds, the format of every time in the store.
pub fn millis(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("time {text:?}: {e}"))
}

fn sql_u64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::BadRow {
        id: 0,
        problem: format!("{value} does not fit SQLite"),
    })
}

#[cfg(test)]
mod tests;
