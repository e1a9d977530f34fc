//! Schema 4 → 5 in place (ADR 15), in bounded transactions so that a large store neither holds
//! one huge transaction nor loses its progress: the old table is renamed `events_v4`, the
//! schema-5 tables are made beside it, and each step copies the next [`STEP`] rows in id order
//! (ids kept: projection cursors and snapshots name them) and records how far it got in
//! `migration_v5`, in the same transaction. A start that finds a migration under way resumes
//! it. The last step indexes the new rows, drops the old table and sets the version. A
//! read-only opener meanwhile reads the old rows from `events_v4`.
//!
//! Every row is kept: one that no longer decodes (a file altered by hand, skipped by every
//! replay before) is kept with its columns as JSON and type 0, and stays skipped.
//! The old table's pages go to SQLite's free list and are reused by the events that follow; the
//! file itself does not shrink (and grows by the new rows, about a quarter of the old, while the
//! migration runs).

use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Value, json};

use super::rows::Rows;
use super::schema::{EVENTS_V5, SCHEMA_VERSION, TYPE_INDEX_V5, in_transaction};
use super::{Appended, NewEvent, StoreError, legacy};

/// Rows copied per transaction.
const STEP: i64 = 5_000;
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The table that says a migration is under way, and how far it got.
pub const UNDER_WAY: &str = "migration_v5";

/// Whether `name` is a table of the file.
pub fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )? > 0)
}

/// Migrates a schema-4 file to schema 5, or finishes a migration under way.
pub fn to_v5(conn: &Connection) -> Result<(), StoreError> {
    begin(conn)?;
    let (total, done): (i64, i64) = conn.query_row(
        &format!(
            "SELECT count(*), coalesce(sum(id <= (SELECT position FROM {UNDER_WAY})), 0)
             FROM events_v4"
        ),
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    tracing::info!(
        from = 4,
        to = SCHEMA_VERSION,
        events = total,
        already = done,
        "migrating the event store in steps of {STEP} events"
    );
    let started = Instant::now();
    let mut logged = Instant::now();
    let mut rows = Rows::new()?;
    let (mut copied, mut unreadable) = (done, 0);
    loop {
        let (moved, kept) = step(conn, &mut rows)?;
        if moved == 0 {
            break;
        }
        copied += moved;
        unreadable += kept;
        if logged.elapsed() >= PROGRESS_EVERY {
            logged = Instant::now();
            tracing::info!(copied, of = total, "migrating the event store");
        }
    }
    finish(conn)?;
    tracing::info!(
        events = copied,
        unreadable,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "event store migrated to schema {SCHEMA_VERSION}"
    );
    Ok(())
}

/// The first transaction: the old table set aside, the new tables made (unless under way).
pub(super) fn begin(conn: &Connection) -> Result<(), StoreError> {
    if has_table(conn, UNDER_WAY)? {
        return Ok(());
    }
    let script = format!(
        "ALTER TABLE events RENAME TO events_v4;
         DROP INDEX IF EXISTS events_agent;
         DROP INDEX IF EXISTS events_type;
         {EVENTS_V5}
         CREATE TABLE {UNDER_WAY} (position INTEGER NOT NULL);
         INSERT INTO {UNDER_WAY} (position) VALUES (0);"
    );
    in_transaction(conn, &script, 4)
}

/// One transaction copying the next [`STEP`] rows: how many, and how many of them were kept
/// unreadable.
pub(super) fn step(conn: &Connection, rows: &mut Rows) -> Result<(i64, i64), StoreError> {
    in_step(conn, |conn| copy_step(conn, rows)).inspect_err(|_| rows.forget())
}

/// The last transaction: the new rows indexed, the old table gone, the version set.
fn finish(conn: &Connection) -> Result<(), StoreError> {
    let script = format!(
        "{TYPE_INDEX_V5}
         DROP TABLE events_v4;
         DROP TABLE {UNDER_WAY};"
    );
    in_transaction(conn, &script, SCHEMA_VERSION)
}

/// Runs `f` in one immediate transaction; rolls back when it fails.
fn in_step<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match f(conn).and_then(|out| Ok(conn.execute_batch("COMMIT").map(|()| out)?)) {
        Ok(out) => Ok(out),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Copies the next [`STEP`] rows; returns how many, and how many were kept unreadable.
fn copy_step(conn: &Connection, rows: &mut Rows) -> Result<(i64, i64), StoreError> {
    let position: i64 = conn.query_row(&format!("SELECT position FROM {UNDER_WAY}"), [], |r| {
        r.get(0)
    })?;
    let mut select = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events_v4 WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let mut read = select.query(rusqlite::params![position, STEP])?;
    let mut batch = Vec::new();
    while let Some(row) = read.next()? {
        let id: i64 = row.get(0)?;
        batch.push((id, legacy::from_row(row).map_err(|e| e.to_string())));
    }
    drop(read);
    drop(select);
    let Some(last) = batch.last().map(|(id, _)| *id) else {
        return Ok((0, 0));
    };
    let mut unreadable = 0;
    let moved = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    for (id, stored) in batch {
        let problem = match stored {
            Ok(stored) => {
                let event = NewEvent {
                    province: stored.province,
                    received: stored.received,
                    origin: stored.origin,
                    time: stored.time,
                    clock: stored.clock,
                    late: stored.late,
                    envelope: stored.envelope,
                };
                match rows.insert(conn, &event, Some(id))? {
                    Appended::Stored(_) => continue,
                    Appended::Duplicate => "its key is stored twice".to_string(),
                    Appended::Refused(why) => why,
                }
            }
            Err(problem) => problem,
        };
        tracing::warn!(id, problem = %problem, "a stored event that does not decode is kept as it was");
        unreadable += 1;
        keep_unreadable(conn, rows, id, problem)?;
    }
    conn.execute(&format!("UPDATE {UNDER_WAY} SET position = ?1"), [last])?;
    Ok((moved, unreadable))
}

/// Every column a step reads from `events_v4`: those `legacy::from_row` decodes, then the key.
const COLUMNS: &str =
    "id, province, received, origin, body, time, clock, late, agent, boot, seq, type";

/// Keeps row `id` of `events_v4` as it is, with why it does not decode.
fn keep_unreadable(
    conn: &Connection,
    rows: &mut Rows,
    id: i64,
    problem: String,
) -> Result<(), StoreError> {
    let columns = conn.query_row(
        &format!("SELECT {COLUMNS} FROM events_v4 WHERE id = ?1"),
        [id],
        |row| Ok(columns(row)),
    )??;
    let key = |name: &str| match &columns[name] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let seq = columns["seq"].as_i64().unwrap_or(-id);
    let key = (key("agent"), key("boot"), key("province"), seq);
    let kept = json!({ "problem": problem, "columns": columns });
    rows.insert_unreadable(conn, id, key, &kept)
}

/// Every column of a schema-4 row, as JSON (what is kept of a row that does not decode).
fn columns(row: &rusqlite::Row<'_>) -> Result<Value, StoreError> {
    let mut out = serde_json::Map::new();
    for (i, name) in COLUMNS.split(", ").enumerate() {
        let value = match row.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::from(n),
            ValueRef::Real(x) => Value::from(x),
            ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::from(hex::encode(b)),
        };
        out.insert((*name).to_string(), value);
    }
    Ok(Value::Object(out))
}
