//! Tests of the schema's versions and migrations on real files (a child module of `schema`).
#![allow(clippy::unwrap_used)]

use chrono::TimeDelta;
use netmon_events::Envelope;
use rusqlite::params_from_iter;

use super::*;
use crate::intake::clock::ClockSource;
use crate::store::read::{self, Layout};
use crate::store::testkit::{TempDir, base, envelope_json, temp_dir};
use crate::store::{Origin, Query, Store, StoredEvent, migrate, rows::Rows};

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
        let envelope: Envelope = serde_json::from_str(&body).unwrap();
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

fn version(store: &Store) -> i64 {
    user_version(store.conn()).unwrap()
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
    assert_eq!(version(&store), SCHEMA_VERSION);
    let after = store.query(&Query::default()).unwrap();
    assert_eq!(after, before, "v1 rows read the same after the migration");
    assert!(
        after
            .iter()
            .all(|e| e.clock == ClockSource::Agent && !e.late)
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
    assert_eq!(version(&store), SCHEMA_VERSION);
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

/// The plan SQLite chooses for `sql`, one detail a line.
fn plan(store: &Store, sql: &str, values: Vec<rusqlite::types::Value>) -> String {
    let mut stmt = store
        .conn()
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let rows = stmt
        .query_map(params_from_iter(values), |row| row.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_new_file_has_only_the_indexes_its_queries_use_and_gives_pages_back() {
    let dir = temp_dir();
    let store = Store::open(&dir.path().join("events.db")).unwrap();
    assert_eq!(version(&store), 5);
    let vacuum: i64 = store
        .conn()
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(vacuum, 2, "incremental");
    let mut stmt = store
        .conn()
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events'")
        .unwrap();
    let indexes: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(indexes, ["sqlite_autoindex_events_1", "events_type"]);

    let layout = Layout::Compact;
    let by = |agent: Option<&str>, event_type: Option<&str>| Query {
        agent: agent.map(str::to_string),
        event_type: event_type.map(str::to_string),
        limit: Some(10),
    };
    // A fact type: through the partial index, newest first, no sort.
    let (sql, values) = read::query_sql(layout, &by(None, Some("agent_started"))).unwrap();
    let p = plan(&store, &sql, values);
    assert!(
        p.contains("USING INDEX events_type") && !p.contains("TEMP B-TREE"),
        "{p}"
    );
    // An agent: its streams through the unique key, not a scan of the table.
    let (sql, values) = read::query_sql(layout, &by(Some("a"), None)).unwrap();
    let p = plan(&store, &sql, values);
    assert!(p.contains("sqlite_autoindex_events_1"), "{p}");
    // The coverage report's types (cellular samples are indexed).
    let types = crate::coverage::TYPES;
    let (sql, values) = read::of_types_sql(layout, types, base(), base(), None).unwrap();
    let p = plan(&store, &sql, values);
    assert!(p.contains("USING INDEX events_type"), "{p}");
    let p = plan(&store, &read::overflows_sql(layout), Vec::new());
    assert!(p.contains("USING INDEX events_type"), "{p}");
    // Windows are not in the type index: the newest are found walking back from the end.
    let (sql, values) = read::query_sql(layout, &by(None, Some("probe_window_completed"))).unwrap();
    let p = plan(&store, &sql, values);
    assert!(
        !p.contains("events_type") && !p.contains("TEMP B-TREE"),
        "{p}"
    );
    assert_eq!(
        read::query_sql(layout, &by(None, Some("no_such_type"))),
        None
    );
}

/// `n` heartbeats, windows and rounds of agents `a0`…`a2`, and a collector event every tenth,
/// written as a schema-4 file; the events as schema 4 reads them back.
fn v4_file(dir: &TempDir, n: u64) -> (std::path::PathBuf, Vec<StoredEvent>) {
    let path = dir.path().join("v4.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "{EVENTS_V4}{BOOTS}{PROJECTIONS}{REFUSALS}PRAGMA user_version = 4;"
    ))
    .unwrap();
    let target = netmon_events::testing::target("Cổng thôn", "192.168.1.1");
    let tx = conn.unchecked_transaction().unwrap();
    let mut expected = Vec::new();
    for seq in 1..=n {
        let agent = format!("a{}", seq % 3);
        let event = match seq % 4 {
            0 => netmon_events::testing::window_rtt(&target, 170, 1.0 + seq as f64 / 100.0),
            1 => netmon_events::testing::round(&target, 3),
            _ => netmon_events::Event::AgentHeartbeat {
                uptime_s: seq,
                backlog: 0,
            },
        };
        let collector = seq % 10 == 0;
        let boot = if collector { "c1" } else { "b1" };
        let mut envelope = netmon_events::testing::envelope(&agent, boot, seq, event);
        envelope.time = base() + TimeDelta::milliseconds(seq as i64 * 1001);
        envelope.mono_ms = seq * 1000 + 7;
        let (clock, time) = match seq % 7 {
            3 => (
                ClockSource::Corrected,
                envelope.time + TimeDelta::seconds(90),
            ),
            _ => (ClockSource::Agent, envelope.time),
        };
        let stored = StoredEvent {
            id: seq as i64,
            province: "thanh-hoa".parse().unwrap(),
            received: envelope.time + TimeDelta::milliseconds(400),
            origin: if collector {
                Origin::Collector
            } else {
                Origin::Agent
            },
            time,
            clock,
            late: seq % 11 == 0,
            envelope,
        };
        tx.execute(
            "INSERT INTO events (id, province, agent, boot, seq, type, time, received, origin,
               body, clock, late) VALUES (?1, 'thanh-hoa', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            rusqlite::params![
                stored.id,
                agent,
                boot,
                seq as i64,
                stored.envelope.event.type_name(),
                crate::store::millis(stored.time),
                crate::store::millis(stored.received),
                stored.origin.as_str(),
                serde_json::to_string(&stored.envelope).unwrap(),
                stored.clock.as_str(),
                stored.late,
            ],
        )
        .unwrap();
        expected.push(stored);
    }
    tx.commit().unwrap();
    (path, expected)
}

fn all(store: &Store) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    store.for_each(|e| out.push(e.unwrap())).unwrap();
    out
}

#[test]
fn a_v4_file_migrates_in_steps_is_readable_meanwhile_and_a_crash_resumes() {
    let dir = temp_dir();
    let (path, expected) = v4_file(&dir, 12_345);
    assert_eq!(all(&Store::open_read_only(&path).unwrap()), expected);

    // The first step and one copy, then a crash (the connection dropped mid-way).
    let conn = Connection::open(&path).unwrap();
    migrate::begin(&conn).unwrap();
    let mut rows = Rows::new().unwrap();
    assert_eq!(migrate::step(&conn, &mut rows).unwrap(), (5_000, 0));
    drop(conn);
    // A reader meanwhile still reads every event, from the old table.
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(all(&reader), expected);
    assert_eq!(reader.count().unwrap(), 12_345);
    drop(reader);

    let store = Store::open(&path).unwrap();
    assert_eq!(version(&store), 5);
    assert_eq!(all(&store), expected, "every event, equal, ids kept");
    let tables: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('events_v4', 'migration_v5')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    let agents = Query {
        agent: Some("a1".into()),
        ..Query::default()
    };
    let of_a1 = store.query(&agents).unwrap();
    assert_eq!(
        of_a1.len(),
        expected
            .iter()
            .filter(|e| e.envelope.agent.as_str() == "a1")
            .count()
    );
    assert_eq!(store.max_seq("c1").unwrap(), Some(12_340));
    assert_eq!(
        Store::open_read_only(&path).unwrap().count().unwrap(),
        12_345
    );
}

#[test]
fn a_v4_row_that_does_not_decode_is_kept_and_still_skipped() {
    let dir = temp_dir();
    let (path, expected) = v4_file(&dir, 3);
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE events SET body = '{\"v\":1,' WHERE id = 2", [])
        .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let mut read = Vec::new();
    store.for_each(|e| read.push(e)).unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(read[0].as_ref().unwrap(), &expected[0]);
    assert_eq!(read[2].as_ref().unwrap(), &expected[2]);
    let err = read[1].as_ref().unwrap_err().to_string();
    assert!(
        err.starts_with("row 2: kept from schema 4, unreadable: row 2: body:"),
        "{err}"
    );
    // What it was is still there, for a person.
    let kept: Vec<u8> = store
        .conn()
        .query_row("SELECT body FROM events WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    let kept: serde_json::Value = serde_json::from_slice(&kept).unwrap();
    assert_eq!(kept["columns"]["body"], "{\"v\":1,");
    assert_eq!(kept["columns"]["seq"], 2);
    // Its seq still counts as stored for the watermark, as it did.
    let (agent, boot) = ("a2".parse().unwrap(), "b1".parse().unwrap());
    assert_eq!(store.seqs_above(&agent, &boot, 0).unwrap(), [2]);
}
