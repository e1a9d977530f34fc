//! The store's SQLite schema and its migrations, versioned in `PRAGMA user_version`.
//!
//! | version | change |
//! |---------|--------|
//! | 1 | `events` (body = the envelope's JSON, unique `(agent, boot, seq)`) |
//! | 2 | `events.clock` and `events.late` (clock trust; `time` becomes the effective time — for v1 rows it stays the agent's time, `clock` = `agent`, `late` = 0); table `boots` (watermark and epoch per agent boot), filled from the v1 events with watermark 0 and recomputed at the next start |
//! | 3 | table `projections(name, position)`: each projection's cursor (the last store `id` it has delivered) |
//! | 4 | table `refusals(agent, boot, seq, reason, detail, received)`: agent events refused for good (invalid, or not storable), so that the watermark passes them after a restart too |
//! | 5 | compact rows (ADR 15): `streams` and `targets` name each agent boot and probe target once; `events` holds integers (stream, seq, type code, target, times in ms and deltas, flags) and the event's own fields compressed (`body.rs`); unique `(stream, seq)`; a partial type index without the raw measurements. Migrated in place in steps (`migrate.rs`), every id kept |
//!
//! Migrations to version 4 run in one transaction with the version bump; 4 → 5 copies the events
//! in bounded transactions and bumps the version in the last one. A file is either wholly at one
//! version or at the next, with a migration under way that the next start resumes.

use rusqlite::Connection;

use super::StoreError;

/// The schema this build writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Schema 5: the tables of the events. Integer columns that are usually 0 or 1 (`agent_dt`,
/// `flags`, `dict`, a window's `type`) cost no byte beyond the row header.
pub(crate) const EVENTS_V5: &str = "
CREATE TABLE streams (
    id        INTEGER PRIMARY KEY,
    agent     TEXT NOT NULL,
    boot      TEXT NOT NULL,
    province  TEXT NOT NULL,
    -- The first event's agent time (ms) minus its mono_ms: the events' `mono` is their
    -- difference from it.
    mono_base INTEGER NOT NULL,
    UNIQUE (agent, boot, province)
);
CREATE TABLE targets (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    address TEXT NOT NULL,
    role    TEXT NOT NULL,
    UNIQUE (name, address, role)
);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    stream      INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    -- codes.rs; 0 is a schema-4 row that did not decode, kept as it was.
    type        INTEGER NOT NULL,
    target      INTEGER,
    -- The effective time, ms since 1970.
    time        INTEGER NOT NULL,
    -- The envelope's time and the reception, minus `time` (ms).
    agent_dt    INTEGER NOT NULL,
    received_dt INTEGER NOT NULL,
    -- (agent time − mono_ms) − streams.mono_base, or mono_ms itself (flags bit 4).
    mono        INTEGER NOT NULL,
    -- codes::Flags: origin, clock, late, layout bits, envelope version.
    flags       INTEGER NOT NULL,
    -- body.rs: 0 plain JSON, 1 zstd with dictionary 1.
    dict        INTEGER NOT NULL,
    body        BLOB NOT NULL,
    UNIQUE (stream, seq)
);
";

/// The partial type index of schema 5 (its condition is `codes::INDEXED`, repeated by every
/// query that uses it). Created after a migration has copied the rows.
pub(crate) const TYPE_INDEX_V5: &str =
    "CREATE INDEX events_type ON events (type, id) WHERE type >= 10;";

/// The whole schema-4 `events` table, for a new file of an older build (tests).
#[cfg(test)]
pub(crate) const EVENTS_V4: &str = "
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
pub(crate) const BOOTS: &str = "
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
pub(crate) const PROJECTIONS: &str = "
CREATE TABLE projections (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The `refusals` table (version 4): the key of every agent event refused for good, why, and
/// when. Refused events are acknowledged like stored ones (they can never become valid, and an
/// agent resending them forever would fill its journal); this is what the watermark rebuilds from.
pub(crate) const REFUSALS: &str = "
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
pub(crate) const V1_TO_V2: &str = "
ALTER TABLE events ADD COLUMN clock TEXT NOT NULL DEFAULT 'agent';
ALTER TABLE events ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
INSERT INTO boots (agent, boot, watermark, epoch, first_received, last_received)
    SELECT agent, boot, 0, NULL, min(received), max(received)
    FROM events WHERE origin = 'agent' GROUP BY agent, boot;
";

/// Brings the file to [`SCHEMA_VERSION`]: creates it when new, migrates it when older, refuses
/// it when newer. A file older than 4 is first brought to 4 in one transaction, then to 5 in
/// steps (`migrate.rs`).
pub fn upgrade(conn: &Connection) -> Result<(), StoreError> {
    let version = user_version(conn)?;
    let script = match version {
        SCHEMA_VERSION => return Ok(()),
        v if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema(v)),
        0 => {
            let script = format!("{EVENTS_V5}{TYPE_INDEX_V5}{BOOTS}{PROJECTIONS}{REFUSALS}");
            return in_transaction(conn, &script, SCHEMA_VERSION);
        }
        1 => format!("{BOOTS}{V1_TO_V2}{PROJECTIONS}{REFUSALS}"),
        2 => format!("{PROJECTIONS}{REFUSALS}"),
        3 => REFUSALS.to_string(),
        4 => String::new(),
        v => return Err(StoreError::OlderSchema(v)),
    };
    if version < 4 {
        tracing::info!(from = version, to = 4, "migrating the event store");
        in_transaction(conn, &script, 4)?;
    }
    super::migrate::to_v5(conn)
}

/// The file's `user_version`.
pub fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Runs `script` and sets the version to `version`, in one transaction.
pub(crate) fn in_transaction(
    conn: &Connection,
    script: &str,
    version: i64,
) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;"
    ))
    .inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })?;
    Ok(())
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
