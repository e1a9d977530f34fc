//! A store written by the collector before schema 5 (`fixtures/store_v4/`: every event type,
//! corrected and late clocks, refusals, boots, a projection cursor, a schema-1 row and a damaged
//! one; made by `fixtures/store_v4/generate.rs` at commit d5869f0) opens read-only as it is,
//! migrates in place, and reads back every event equal to what that build read (`events.jsonl`,
//! its dump), with the same boots; then takes new events beside the old ones, duplicates of the
//! old ones included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use netmon_collector::intake::clock::ClockSource;
use netmon_collector::store::{Appended, NewEvent, Origin, Store, StoreError, StoredEvent};
use netmon_events::{Envelope, ProvinceId};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/store_v4")
        .join(name)
}

/// A copy of the fixture store in a fresh directory (the migration is in place).
fn copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    std::fs::copy(fixture("events.db"), &path).unwrap();
    (dir, path)
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// Each row of the dump: the event the old build read, or `None` for a row it could not.
fn dump() -> Vec<(i64, Option<StoredEvent>)> {
    let text = std::fs::read_to_string(fixture("events.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            let id = row["id"].as_i64().unwrap();
            if row.get("unreadable").is_some() {
                return (id, None);
            }
            let event = StoredEvent {
                id,
                province: ProvinceId::new(row["province"].as_str().unwrap()).unwrap(),
                received: time(&row["received"]),
                origin: match row["origin"].as_str().unwrap() {
                    "agent" => Origin::Agent,
                    _ => Origin::Collector,
                },
                time: time(&row["time"]),
                clock: ClockSource::parse(row["clock"].as_str().unwrap()).unwrap(),
                late: row["late"].as_bool().unwrap(),
                envelope: serde_json::from_value::<Envelope>(row["envelope"].clone()).unwrap(),
            };
            (id, Some(event))
        })
        .collect()
}

fn read(store: &Store) -> Vec<(i64, Option<StoredEvent>)> {
    let mut out = Vec::new();
    let mut id = 0;
    store
        .for_each(|row| {
            id += 1;
            match row {
                Ok(event) => out.push((event.id, Some(event))),
                Err(StoreError::BadRow { id, .. }) => out.push((id, None)),
                Err(e) => panic!("row after {id}: {e}"),
            }
        })
        .unwrap();
    out
}

fn boots(store: &Store) -> Value {
    let boots: Vec<Value> = store
        .boots()
        .unwrap()
        .into_iter()
        .map(|b| {
            let ms = netmon_collector::store::millis;
            serde_json::json!({
                "agent": b.row.agent.as_str(), "boot": b.row.boot.as_str(),
                "watermark": b.row.watermark, "max_seq": b.max_seq,
                "epoch": b.row.epoch.map(ms),
                "first_received": ms(b.row.first_received),
                "last_received": ms(b.row.last_received),
            })
        })
        .collect();
    Value::from(boots)
}

#[test]
fn a_schema_4_store_migrates_in_place_and_reads_back_every_event_as_before() {
    let expected = dump();
    assert!(expected.len() > 500, "a few hundred events");
    let types: std::collections::BTreeSet<&str> = expected
        .iter()
        .filter_map(|(_, e)| e.as_ref())
        .map(|e| e.envelope.event.type_name())
        .collect();
    // Every type of the release that wrote it (the coverage rollups came after, ADR 17).
    let newer = ["coverage_day_rolled_up"];
    assert_eq!(
        types.len(),
        netmon_events::Event::TYPE_NAMES.len() - newer.len(),
        "every type"
    );
    let old_boots: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("boots.json")).unwrap()).unwrap();

    let (_dir, path) = copy();
    let before = Store::open_read_only(&path).unwrap();
    assert_eq!(read(&before), expected, "read-only, as it is");
    assert_eq!(boots(&before), old_boots);
    drop(before);

    let store = Store::open(&path).unwrap();
    let migrated = read(&store);
    for ((id, want), (got_id, got)) in expected.iter().zip(&migrated) {
        assert_eq!((id, want), (got_id, got), "row {id}");
    }
    assert_eq!(migrated.len(), expected.len());
    assert_eq!(boots(&store), old_boots, "watermarks and highest seqs");
    assert_eq!(store.projection_position("influx").unwrap(), 200);
    assert_eq!(store.count().unwrap(), expected.len() as u64);
    let overflows = store.overflows().unwrap();
    assert_eq!(
        overflows.len(),
        expected
            .iter()
            .filter_map(|(_, e)| e.as_ref())
            .filter(|e| e.envelope.event.type_name() == "journal_overflowed")
            .count()
    );
    drop(store);
    assert_eq!(read(&Store::open_read_only(&path).unwrap()), expected);

    // The migrated store goes on: an old event again is a duplicate, a new one is stored after.
    let mut store = Store::open(&path).unwrap();
    let (_, Some(old)) = &expected[10] else {
        panic!("row 11 reads")
    };
    let again = |e: &StoredEvent, seq: u64| {
        let mut envelope = e.envelope.clone();
        envelope.seq = seq;
        NewEvent {
            province: e.province.clone(),
            received: e.received,
            origin: e.origin,
            time: e.time,
            clock: e.clock,
            late: e.late,
            envelope,
        }
    };
    let out = store
        .append(&[again(old, old.envelope.seq), again(old, 1 << 40)], &[])
        .unwrap();
    assert_eq!(out[0], Appended::Duplicate);
    let new = out[1].stored().unwrap();
    assert_eq!(new.id, store.max_id().unwrap());
    assert!(new.id > expected.last().unwrap().0);
    let page = store.events_after(new.id - 1, None, 10).unwrap();
    assert_eq!(page.events, std::slice::from_ref(new));
}
