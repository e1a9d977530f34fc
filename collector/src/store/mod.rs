//! The event store: one SQLite file, the system of record.
//!
//! Every event is one row of `events`, keyed by its position `id` and unique on
//! `(agent, boot, seq)` so that a second delivery of the same event is a no-op. The body is the
//! envelope's JSON exactly as the agent sent it (its own wall time stays visible); `time` is the
//! effective time after clock checks (`clock`, `late`, see `clock.rs`); the other columns exist for
//! queries and indexes. `boots` keeps, per agent boot, the acknowledgement watermark and the epoch
//! estimate, written in the same transaction as the events (see `boots.rs`). The schema and its
//! migrations are in `schema.rs`. The daemon holds the only writable connection; the CLI opens the
//! file read-only, which WAL allows while the daemon runs.

pub mod backup;
pub mod config;
pub mod schema;
#[cfg(test)]
pub(crate) mod testkit;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use netmon_events::{AgentId, BootId, Envelope, Event, ProvinceId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::intake::clock::ClockSource;
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
}

/// A connection to the event store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// The columns `from_row` reads, for this file's schema version.
    columns: &'static str,
}

impl Store {
    /// Opens (creating if needed) the store for writing: WAL, `synchronous=NORMAL`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        schema::upgrade(&conn)?;
        Ok(Self {
            conn,
            columns: schema::columns(SCHEMA_VERSION),
        })
    }

    /// Opens an existing store read-only; works while the daemon writes to it.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        if version < 1 {
            return Err(StoreError::OlderSchema(version));
        }
        Ok(Self {
            conn,
            columns: schema::columns(version),
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
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(events.len());
        {
            let mut insert = tx.prepare(
                "INSERT INTO events
                   (province, agent, boot, seq, type, time, received, origin, body, clock, late)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (agent, boot, seq) DO NOTHING",
            )?;
            let mut refuse = tx.prepare(
                "INSERT INTO refusals (agent, boot, seq, reason, detail, received)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (agent, boot, seq) DO NOTHING",
            )?;
            let mut record = |refusal: &Refusal| -> Result<(), StoreError> {
                let Ok(seq) = i64::try_from(refusal.seq) else {
                    return Ok(()); // Not a key the store can hold; nothing can depend on it.
                };
                let detail: String = refusal.detail.chars().take(500).collect();
                refuse.execute(params![
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
            for event in events {
                let appended = append_one(&tx, &mut insert, event)?;
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
            let mut upsert = tx.prepare(
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
        }
        tx.commit()?;
        Ok(out)
    }

    /// Calls `f` with every event in store order (for replay), or with the error of a row that
    /// cannot be decoded. Returns the number of rows; fails only if SQLite fails.
    pub fn for_each(
        &self,
        mut f: impl FnMut(Result<StoredEvent, StoreError>),
    ) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {} FROM events ORDER BY id", self.columns))?;
        let mut rows = stmt.query([])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            f(from_row(row));
            count += 1;
        }
        Ok(count)
    }

    /// [`Store::for_each`] over the events of `types` whose effective time is in `[from, to)`
    /// only, still in store order (for reports: the other rows are not even decoded).
    pub fn for_each_of(
        &self,
        types: &[&str],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut f: impl FnMut(Result<StoredEvent, StoreError>),
    ) -> Result<u64, StoreError> {
        let placeholders = vec!["?"; types.len()].join(", ");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM events WHERE type IN ({placeholders}) AND time >= ? AND time < ?
             ORDER BY id",
            self.columns
        ))?;
        let (from, to) = (millis(from), millis(to));
        let values = types.iter().copied().chain([from.as_str(), to.as_str()]);
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            f(from_row(row));
            count += 1;
        }
        Ok(count)
    }

    /// Events matching the filters, oldest first.
    pub fn query(&self, query: &Query) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = query
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM events
             WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR type = ?2)
             ORDER BY id DESC LIMIT ?3",
            self.columns
        ))?;
        let mut rows = stmt.query(params![query.agent, query.event_type, limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(from_row(row)?);
        }
        out.reverse();
        Ok(out)
    }

    /// The number of stored events.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
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

    /// The highest collector `seq` stored under `boot`, for tests and diagnostics.
    pub fn max_seq(&self, boot: &str) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(seq) FROM events WHERE boot = ?1",
                [boot],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        Ok(seq.and_then(|s| u64::try_from(s).ok()))
    }

    /// Every boot row with the highest agent-made seq stored or refused for it (0 if none).
    pub fn boots(&self) -> Result<Vec<LoadedBoot>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT b.agent, b.boot, b.watermark, b.epoch, b.first_received, b.last_received,
                    max(coalesce((SELECT max(seq) FROM events e
                      WHERE e.agent = b.agent AND e.boot = b.boot AND e.origin = 'agent'), 0),
                        coalesce((SELECT max(seq) FROM refusals r
                      WHERE r.agent = b.agent AND r.boot = b.boot), 0))
             FROM boots b ORDER BY b.agent, b.boot",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let bad = |problem: String| StoreError::BadRow { id: 0, problem };
            let agent: String = row.get(0)?;
            let boot: String = row.get(1)?;
            let epoch: Option<String> = row.get(3)?;
            let first: String = row.get(4)?;
            let last: String = row.get(5)?;
            let max_seq: Option<i64> = row.get(6)?;
            out.push(LoadedBoot {
                row: BootRow {
                    agent: AgentId::new(agent).map_err(|e| bad(format!("boots: {e}")))?,
                    boot: BootId::new(boot).map_err(|e| bad(format!("boots: {e}")))?,
                    watermark: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                    epoch: epoch.as_deref().map(parse_time).transpose().map_err(bad)?,
                    first_received: parse_time(&first).map_err(bad)?,
                    last_received: parse_time(&last).map_err(bad)?,
                },
                max_seq: max_seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// The agent-made seqs of `agent`/`boot` stored or refused above `watermark`, ascending.
    pub fn seqs_above(
        &self,
        agent: &AgentId,
        boot: &BootId,
        watermark: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq FROM events
             WHERE agent = ?1 AND boot = ?2 AND seq > ?3 AND origin = 'agent'
             UNION SELECT seq FROM refusals WHERE agent = ?1 AND boot = ?2 AND seq > ?3
             ORDER BY seq",
        )?;
        let seqs = stmt
            .query_map(
                params![agent.as_str(), boot.as_str(), sql_u64(watermark)?],
                |row| row.get::<_, i64>(0),
            )?
            .filter_map(|seq| seq.map(|s| u64::try_from(s).ok()).transpose())
            .collect::<Result<_, _>>()?;
        Ok(seqs)
    }

    /// Every stored `journal_overflowed`, in store order. Unreadable rows are skipped (they are
    /// reported by the replay).
    pub fn overflows(&self) -> Result<Vec<Overflow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM events WHERE type = 'journal_overflowed' AND origin = 'agent'
             ORDER BY id",
            self.columns
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let Ok(stored) = from_row(row) else { continue };
            if let Event::JournalOverflowed {
                dropped_boot,
                first_seq,
                last_seq,
                ..
            } = stored.envelope.event
            {
                out.push(Overflow {
                    agent: stored.envelope.agent,
                    dropped_boot,
                    first_seq,
                    last_seq,
                    received: stored.received,
                });
            }
        }
        Ok(out)
    }

    /// Upserts boot rows in one transaction (watermarks advanced while loading).
    pub fn save_boots(&mut self, boots: &[BootRow]) -> Result<(), StoreError> {
        self.append(&[], boots).map(|_| ())
    }

    /// At most `limit` events with an id above `after` (and an effective time at or after
    /// `since`), in id order, for projections. Rows that cannot be decoded are counted and
    /// skipped; `last_id` covers them too.
    pub fn events_after(
        &self,
        after: i64,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM events WHERE id > ?1 AND (?2 IS NULL OR time >= ?2)
             ORDER BY id LIMIT ?3",
            self.columns
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![after, since.map(millis), limit])?;
        let mut page = Page {
            last_id: after,
            ..Page::default()
        };
        while let Some(row) = rows.next()? {
            page.last_id = row.get(0)?;
            match from_row(row) {
                Ok(event) => page.events.push(event),
                Err(e) => {
                    tracing::warn!(id = page.last_id, error = %e, "skipping an undecodable row");
                    page.undecodable += 1;
                }
            }
        }
        Ok(page)
    }

    /// The highest store id (0 when empty).
    pub fn max_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| {
                row.get(0)
            })?)
    }

    /// The number of events with an id above `after` (and a time at or after `since`).
    pub fn count_after(&self, after: i64, since: Option<DateTime<Utc>>) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM events WHERE id > ?1 AND (?2 IS NULL OR time >= ?2)",
            params![after, since.map(millis)],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// A projection's cursor (0 when it has never delivered anything).
    pub fn projection_position(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT position FROM projections WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Moves a projection's cursor (one small write).
    pub fn set_projection_position(&mut self, name: &str, position: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO projections (name, position) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            params![name, position],
        )?;
        Ok(())
    }
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

/// Inserts one event inside the batch's transaction. `Ok(Refused)` when the event itself is the
/// problem (the failed statement was undone by SQLite, or its row deleted again); `Err` when the
/// store is.
fn append_one(
    tx: &rusqlite::Transaction<'_>,
    insert: &mut rusqlite::Statement<'_>,
    event: &NewEvent,
) -> Result<Appended, StoreError> {
    let envelope = &event.envelope;
    let body = match serde_json::to_string(envelope) {
        Ok(body) => body,
        Err(e) => {
            return Ok(Appended::Refused(format!(
                "cannot encode the envelope: {e}"
            )));
        }
    };
    let Ok(seq) = i64::try_from(envelope.seq) else {
        return Ok(Appended::Refused(format!(
            "seq {} does not fit SQLite",
            envelope.seq
        )));
    };
    let received = millis(event.received);
    let time = millis(event.time);
    let changed = insert.execute(params![
        event.province.as_str(),
        envelope.agent.as_str(),
        envelope.boot.as_str(),
        seq,
        envelope.event.type_name(),
        time,
        received,
        event.origin.as_str(),
        body,
        event.clock.as_str(),
        event.late,
    ]);
    let changed = match changed {
        Ok(changed) => changed,
        Err(e) if about_the_row(&e) => {
            return Ok(Appended::Refused(format!("SQLite refused the row: {e}")));
        }
        Err(e) => return Err(e.into()),
    };
    if changed == 0 {
        return Ok(Appended::Duplicate);
    }
    let id = tx.last_insert_rowid();
    // Decode the row just written, exactly as a replay will, so that live state and rebuilt
    // state see the same values (float and time precision included). A row that does not read
    // back would be skipped by every replay: take it out again and refuse the event.
    let decoded = decode_row(Row {
        id,
        province: event.province.as_str(),
        received: &received,
        origin: event.origin.as_str(),
        body: &body,
        time: &time,
        clock: event.clock.as_str(),
        late: event.late,
    });
    match decoded {
        Ok(stored) => Ok(Appended::Stored(stored)),
        Err(e) => {
            tx.execute("DELETE FROM events WHERE id = ?1", [id])?;
            Ok(Appended::Refused(format!("does not read back: {e}")))
        }
    }
}

/// Whether SQLite refused one statement because of its values (undone by SQLite on its own, the
/// transaction goes on), rather than because the store cannot write at all.
fn about_the_row(e: &rusqlite::Error) -> bool {
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

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
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

/// One row's columns, in the order of `schema::columns`.
struct Row<'a> {
    id: i64,
    province: &'a str,
    received: &'a str,
    origin: &'a str,
    body: &'a str,
    time: &'a str,
    clock: &'a str,
    late: bool,
}

fn from_row(row: &rusqlite::Row<'_>) -> Result<StoredEvent, StoreError> {
    let province: String = row.get(1)?;
    let received: String = row.get(2)?;
    let origin: String = row.get(3)?;
    let body: String = row.get(4)?;
    let time: String = row.get(5)?;
    let clock: String = row.get(6)?;
    decode_row(Row {
        id: row.get(0)?,
        province: &province,
        received: &received,
        origin: &origin,
        body: &body,
        time: &time,
        clock: &clock,
        late: row.get(7)?,
    })
}

fn decode_row(row: Row<'_>) -> Result<StoredEvent, StoreError> {
    let id = row.id;
    let bad = |problem: String| StoreError::BadRow { id, problem };
    let province = ProvinceId::new(row.province).map_err(|e| bad(e.to_string()))?;
    let received = parse_time(row.received).map_err(|e| bad(format!("received: {e}")))?;
    let time = parse_time(row.time).map_err(|e| bad(format!("time: {e}")))?;
    let origin = match row.origin {
        "agent" => Origin::Agent,
        "collector" => Origin::Collector,
        other => return Err(bad(format!("unknown origin {other:?}"))),
    };
    let clock = ClockSource::parse(row.clock)
        .ok_or_else(|| bad(format!("unknown clock {:?}", row.clock)))?;
    let envelope = serde_json::from_str(row.body).map_err(|e| bad(format!("body: {e}")))?;
    Ok(StoredEvent {
        id,
        province,
        received,
        origin,
        time,
        clock,
        late: row.late,
        envelope,
    })
}

#[cfg(test)]
mod tests;
