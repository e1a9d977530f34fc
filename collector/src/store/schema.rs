//! The store's SQLite schema and its migrations, versioned in `PRAGMA user_version`.
//!
//! | version | change |
//! |---------|--------|
//! | 1 | `events` (body = the envelope's JSON, unique `(agent, boot, seq)`) |
//! | 2 | `events.clock` and `events.late` (clock trust; `time` becomes the effective time — for v1 rows it stays the agent's time, `clock` = `agent`, `late` = 0); table `boots` (watermark and epoch per agent boot), filled from the v1 events with watermark 0 and recomputed at the next start |
//! | 3 | table `projections(name, position)`: each projection's cursor (the last store `id` it has delivered) |
//! | 4 | table `refusals(agent, boot, seq, reason, detail, received)`: agent events refused for good (invalid, or not storable), so that the watermark passes them after a restart too |
//!
//! A migration runs in one transaction with the version bump: a file is either wholly at one
//! version or wholly at the next.

use rusqlite::Connection;

use super::StoreError;

/// The schema this build writes.
pub const SCHEMA_VERSION: i64 = 4;

/// The whole current schema, for a new file.
const CREATE: &str = "
CREATE TABLE events (
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
    clock    TEXT NOT NULL DEFAULT 'agent',
    late     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (agent, boot, seq)
);
CREATE INDEX events_agent ON events (agent, id);
CREATE INDEX events_type ON events (type, id);
";

/// The `boots` table (version 2).
const BOOTS: &str = "
CREATE TABLE boots (
    agent          TEXT NOT NULL,
    boot           TEXT NOT NULL,
    watermark      INTEGER NOT NULL,
    epoch          TEXT,
    first_received TEXT NOT NULL,
    last_received  TEXT NOT NULL,
    PRIMARY KEY (agent, boot)
) WITHOUT ROWID;
";

/// The `projections` table (version 3).
const PROJECTIONS: &str = "
CREATE TABLE projections (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The `refusals` table (version 4): the key of every agent event refused for good, why, and
/// when. Refused events are acknowledged like stored ones (they can never become valid, and an
/// agent resending them forever would fill its journal); this is what the watermark rebuilds from.
const REFUSALS: &str = "
CREATE TABLE refusals (
    agent    TEXT NOT NULL,
    boot     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    reason   TEXT NOT NULL,
    detail   TEXT NOT NULL,
    received TEXT NOT NULL,
    PRIMARY KEY (agent, boot, seq)
) WITHOUT ROWID;
";

/// Version 1 → 2.
const V1_TO_V2: &str = "
ALTER TABLE events ADD COLUMN clock TEXT NOT NULL DEFAULT 'agent';
ALTER TABLE events ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
INSERT INTO boots (agent, boot, watermark, epoch, first_received, last_received)
    SELECT agent, boot, 0, NULL, min(received), max(received)
    FROM events WHERE origin = 'agent' GROUP BY agent, boot;
";

/// Brings the file to [`SCHEMA_VERSION`]: creates it when new, migrates it when older, refuses
/// it when newer.
pub fn upgrade(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let script = match version {
        SCHEMA_VERSION => return Ok(()),
        v if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema(v)),
        0 => format!("{CREATE}{BOOTS}{PROJECTIONS}{REFUSALS}"),
        1 => {
            tracing::info!(from = 1, to = SCHEMA_VERSION, "migrating the event store");
            format!("{BOOTS}{V1_TO_V2}{PROJECTIONS}{REFUSALS}")
        }
        2 => {
            tracing::info!(from = 2, to = SCHEMA_VERSION, "migrating the event store");
            format!("{PROJECTIONS}{REFUSALS}")
        }
        3 => {
            tracing::info!(from = 3, to = SCHEMA_VERSION, "migrating the event store");
            REFUSALS.to_string()
        }
        v => return Err(StoreError::OlderSchema(v)),
    };
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
    ))
    .inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })?;
    Ok(())
}

/// The columns a reader selects from `events`, in the order `store.rs` decodes them, for a file
/// of `version` (a read-only reader may meet a v1 file that the daemon has not migrated yet).
pub fn columns(version: i64) -> &'static str {
    if version >= 2 {
        "id, province, received, origin, body, time, clock, late"
    } else {
        "id, province, received, origin, body, time, 'agent', 0"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::testkit::{TempDir, envelope_json, temp_dir};
    use crate::store::{Query, Store};

    /// The version-1 schema exactly as the first collector created it.
    const V1: &str = "
    CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY, province TEXT NOT NULL, agent TEXT NOT NULL, boot TEXT NOT NULL,
        seq INTEGER NOT NULL, type TEXT NOT NULL, time TEXT NOT NULL, received TEXT NOT NULL,
        origin TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (agent, boot, seq));
    CREATE INDEX IF NOT EXISTS events_agent ON events (agent, id);
    CREATE INDEX IF NOT EXISTS events_type ON events (type, id);
    PRAGMA user_version = 1;
    ";

    const HEARTBEAT: &str = r#""type":"agent_heartbeat","uptime_s":1,"backlog":0"#;

    /// A v1 file with agent `a` boot `b1` seqs 1, 2 and 4.
    fn v1_file(dir: &TempDir) -> std::path::PathBuf {
        let path = dir.path().join("v1.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        for seq in [1u64, 2, 4] {
            let body = envelope_json("a", "b1", seq, HEARTBEAT);
            let envelope: netmon_events::Envelope = serde_json::from_str(&body).unwrap();
            conn.execute(
                "INSERT INTO events (province, agent, boot, seq, type, time, received, origin, body)
                 VALUES ('thanh-hoa', 'a', 'b1', ?1, 'agent_heartbeat', ?2, ?3, 'agent', ?4)",
                rusqlite::params![
                    seq as i64,
                    crate::store::millis(envelope.time),
                    format!("2026-11-23T02:00:0{seq}.500Z"),
                    body
                ],
            )
            .unwrap();
        }
        path
    }

    #[test]
    fn a_v1_file_is_readable_read_only_then_migrated_in_place() {
        let dir = temp_dir();
        let path = v1_file(&dir);
        // The CLI reads a file the daemon has not migrated yet.
        let old = Store::open_read_only(&path).unwrap();
        let before = old.query(&Query::default()).unwrap();
        assert_eq!(before.len(), 3);
        assert_eq!(before[0].time, before[0].envelope.time);
        drop(old);

        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let after = store.query(&Query::default()).unwrap();
        assert_eq!(after, before, "v1 rows read the same after the migration");
        assert!(
            after
                .iter()
                .all(|e| e.clock == crate::intake::clock::ClockSource::Agent && !e.late)
        );
        let boots = store.boots().unwrap();
        assert_eq!(boots.len(), 1);
        assert_eq!(
            (boots[0].row.agent.as_str(), boots[0].row.boot.as_str()),
            ("a", "b1")
        );
        assert_eq!((boots[0].row.watermark, boots[0].max_seq), (0, 4));
        assert_eq!(
            boots[0].row.last_received,
            "2026-11-23T02:00:04.500Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
        );
        drop(store);
        // Opening again is a no-op.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.boots().unwrap().len(), 1);
        assert_eq!(store.count().unwrap(), 3);
    }

    #[test]
    fn a_v2_file_gains_the_projections_table_and_keeps_its_events() {
        let dir = temp_dir();
        let path = v1_file(&dir);
        // Bring it to v2 exactly as the previous build did (v1 → v2 script only).
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("{BOOTS}{V1_TO_V2}PRAGMA user_version = 2;"))
            .unwrap();
        assert!(conn.prepare("SELECT * FROM projections").is_err());
        drop(conn);
        // A read-only reader of the older build's file works before the migration.
        assert_eq!(Store::open_read_only(&path).unwrap().count().unwrap(), 3);

        let mut store = Store::open(&path).unwrap();
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(store.count().unwrap(), 3);
        assert_eq!(store.projection_position("influx").unwrap(), 0);
        store.set_projection_position("influx", 2).unwrap();
        assert_eq!(store.projection_position("influx").unwrap(), 2);
        let after = store.events_after(2, None, 100).unwrap();
        assert_eq!(after.events.len(), 1);
        assert_eq!(after.events[0].envelope.seq, 4);
        assert_eq!((after.last_id, after.undecodable), (3, 0));
        assert_eq!(store.max_id().unwrap(), 3);
        assert_eq!(store.count_after(1, None).unwrap(), 2);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.projection_position("influx").unwrap(), 2);
    }

    #[test]
    fn a_newer_file_is_refused() {
        let dir = temp_dir();
        let path = dir.path().join("new.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::NewerSchema(99))
        ));
        assert!(matches!(
            Store::open_read_only(&path),
            Err(StoreError::NewerSchema(99))
        ));
    }
}
