//! The event store: one SQLite file, the system of record.
//!
//! Every event is one row of `events`, keyed by its position `id` and unique on
//! `(agent, boot, seq)` so that a second delivery of the same event is a no-op. The body is the
//! envelope's JSON; the other columns exist for queries and indexes. The daemon holds the only
//! writable connection; the CLI opens the file read-only, which WAL allows while the daemon runs.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use netmon_events::{Envelope, ProvinceId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// The schema this build writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY,
    province TEXT NOT NULL,
    agent    TEXT NOT NULL,
    boot     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    type     TEXT NOT NULL,
    time     TEXT NOT NULL,
    received TEXT NOT NULL,
    origin   TEXT NOT NULL,
    body     TEXT NOT NULL,
    UNIQUE (agent, boot, seq)
);
CREATE INDEX IF NOT EXISTS events_agent ON events (agent, id);
CREATE INDEX IF NOT EXISTS events_type ON events (type, id);
";

const COLUMNS: &str = "id, province, received, origin, body";

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
    pub envelope: Envelope,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub province: ProvinceId,
    pub received: DateTime<Utc>,
    pub origin: Origin,
    pub envelope: Envelope,
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
    /// A row could not be read back: the file was altered by hand or is corrupt.
    #[error("row {id}: {problem}")]
    BadRow { id: i64, problem: String },
}

/// A connection to the event store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the store for writing: WAL, `synchronous=NORMAL`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self { conn })
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
        Ok(Self { conn })
    }

    /// The SQLite journal mode (`wal` for a store opened by [`Store::open`]).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?)
    }

    /// Appends events in one transaction. Returns, for each event in order, the new row's id, or
    /// `None` when an event with the same `(agent, boot, seq)` was already stored. Nothing is
    /// written when it fails.
    pub fn append(&mut self, events: &[NewEvent]) -> Result<Vec<Option<StoredEvent>>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(events.len());
        {
            let mut insert = tx.prepare(
                "INSERT INTO events (province, agent, boot, seq, type, time, received, origin, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (agent, boot, seq) DO NOTHING",
            )?;
            for event in events {
                let envelope = &event.envelope;
                let body = serde_json::to_string(envelope).map_err(|e| StoreError::BadRow {
                    id: 0,
                    problem: format!("cannot encode envelope: {e}"),
                })?;
                let seq = i64::try_from(envelope.seq).map_err(|_| StoreError::BadRow {
                    id: 0,
                    problem: format!("seq {} does not fit SQLite", envelope.seq),
                })?;
                let received = millis(event.received);
                let changed = insert.execute(params![
                    event.province.as_str(),
                    envelope.agent.as_str(),
                    envelope.boot.as_str(),
                    seq,
                    envelope.event.type_name(),
                    millis(envelope.time),
                    received,
                    event.origin.as_str(),
                    body,
                ])?;
                if changed == 0 {
                    out.push(None);
                    continue;
                }
                let id = tx.last_insert_rowid();
                // Decode the body just written, exactly as a replay will, so that live state
                // and rebuilt state see the same values (float and time precision included).
                out.push(Some(decode_row(
                    id,
                    event.province.as_str(),
                    &received,
                    event.origin.as_str(),
                    &body,
                )?));
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
            .prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY id"))?;
        let mut rows = stmt.query([])?;
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
            "SELECT {COLUMNS} FROM events
             WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR type = ?2)
             ORDER BY id DESC LIMIT ?3"
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
}

/// RFC 3339 in UTC with milliseconds, the format of every time in the store.
pub fn millis(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn from_row(row: &rusqlite::Row<'_>) -> Result<StoredEvent, StoreError> {
    let id: i64 = row.get(0)?;
    let province: String = row.get(1)?;
    let received: String = row.get(2)?;
    let origin: String = row.get(3)?;
    let body: String = row.get(4)?;
    decode_row(id, &province, &received, &origin, &body)
}

fn decode_row(
    id: i64,
    province: &str,
    received: &str,
    origin: &str,
    body: &str,
) -> Result<StoredEvent, StoreError> {
    let bad = |problem: String| StoreError::BadRow { id, problem };
    let province = ProvinceId::new(province).map_err(|e| bad(e.to_string()))?;
    let received = DateTime::parse_from_rfc3339(received)
        .map_err(|e| bad(format!("received {received:?}: {e}")))?
        .with_timezone(&Utc);
    let origin = match origin {
        "agent" => Origin::Agent,
        "collector" => Origin::Collector,
        other => return Err(bad(format!("unknown origin {other:?}"))),
    };
    let envelope = serde_json::from_str(body).map_err(|e| bad(format!("body: {e}")))?;
    Ok(StoredEvent {
        id,
        province,
        received,
        origin,
        envelope,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::testkit::{TempDir, envelope_json};

    fn new_event(agent: &str, seq: u64, event: &str) -> NewEvent {
        NewEvent {
            province: "thanh-hoa".parse().unwrap(),
            received: "2026-11-23T02:00:00.500Z".parse().unwrap(),
            origin: Origin::Agent,
            envelope: serde_json::from_str(&envelope_json(agent, "boot-1", seq, event)).unwrap(),
        }
    }

    const HEARTBEAT: &str = r#""type":"agent_heartbeat","uptime_s":30,"backlog":0"#;

    #[test]
    fn duplicate_key_is_a_no_op_and_ids_follow_insert_order() {
        let dir = TempDir::new();
        let mut store = Store::open(&dir.path().join("events.db")).unwrap();
        let first = store
            .append(&[new_event("a", 1, HEARTBEAT), new_event("a", 2, HEARTBEAT)])
            .unwrap();
        assert_eq!(
            first.iter().flatten().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2]
        );
        let again = store
            .append(&[new_event("a", 2, HEARTBEAT), new_event("b", 2, HEARTBEAT)])
            .unwrap();
        assert!(again[0].is_none(), "duplicate must not be stored");
        assert_eq!(again[1].as_ref().unwrap().id, 3);
        assert_eq!(store.count().unwrap(), 3);
    }

    #[test]
    fn store_is_wal_and_readable_read_only_while_writer_is_open() {
        let dir = TempDir::new();
        let path = dir.path().join("events.db");
        let mut writer = Store::open(&path).unwrap();
        assert_eq!(writer.journal_mode().unwrap(), "wal");
        writer.append(&[new_event("a", 1, HEARTBEAT)]).unwrap();
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.count().unwrap(), 1);
        // The writer keeps writing while the reader is open, and the reader sees it.
        writer.append(&[new_event("a", 2, HEARTBEAT)]).unwrap();
        assert_eq!(reader.count().unwrap(), 2);
        // A read-only connection cannot write.
        let err = reader.conn.execute("DELETE FROM events", []).unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    #[test]
    fn read_only_open_works_after_the_writer_closed() {
        let dir = TempDir::new();
        let path = dir.path().join("events.db");
        {
            let mut writer = Store::open(&path).unwrap();
            writer.append(&[new_event("a", 1, HEARTBEAT)]).unwrap();
        }
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.count().unwrap(), 1);
        assert!(Store::open_read_only(&dir.path().join("missing.db")).is_err());
    }

    #[test]
    fn query_filters_and_limits_newest_first_returned_oldest_first() {
        let dir = TempDir::new();
        let mut store = Store::open(&dir.path().join("events.db")).unwrap();
        let started = r#""type":"agent_started","version":"0.1.0","targets":1"#;
        store
            .append(&[
                new_event("a", 1, started),
                new_event("a", 2, HEARTBEAT),
                new_event("b", 1, started),
                new_event("a", 3, HEARTBEAT),
            ])
            .unwrap();
        let seqs = |q: Query| {
            store
                .query(&q)
                .unwrap()
                .iter()
                .map(|e| (e.envelope.agent.to_string(), e.envelope.seq))
                .collect::<Vec<_>>()
        };
        let a = |s: u64| ("a".to_string(), s);
        assert_eq!(
            seqs(Query {
                agent: Some("a".into()),
                ..Query::default()
            }),
            [a(1), a(2), a(3)]
        );
        assert_eq!(
            seqs(Query {
                event_type: Some("agent_heartbeat".into()),
                limit: Some(1),
                ..Query::default()
            }),
            [a(3)]
        );
        let mut replayed = Vec::new();
        assert_eq!(store.for_each(|e| replayed.push(e.unwrap().id)).unwrap(), 4);
        assert_eq!(replayed, [1, 2, 3, 4]);
    }
}
