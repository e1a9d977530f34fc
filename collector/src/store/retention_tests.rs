//! Retention on real SQLite files: what goes, what stays, and that the file shrinks.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Duration as Delta, Utc};
use netmon_events::Envelope;

use super::*;
use crate::intake::clock::ClockSource;
use crate::store::testkit::{base, count_where, temp_dir};
use crate::store::{NewEvent, Origin};

const WINDOW: &str = include_str!("../../../events/fixtures/probe_window_completed.json");
const LINK_DOWN: &str = include_str!("../../../events/fixtures/link_went_down.json");

/// The fixture `json` as event `seq` of agent `a`, at `time`.
fn event(json: &str, seq: u64, time: DateTime<Utc>) -> NewEvent {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["agent"] = "a".into();
    value["boot"] = "boot-1".into();
    value["seq"] = seq.into();
    value["mono_ms"] = (seq * 1000).into();
    value["time"] = crate::store::millis(time).into();
    let envelope: Envelope = serde_json::from_value(value).unwrap();
    NewEvent {
        province: "thanh-hoa".parse().unwrap(),
        received: time,
        origin: Origin::Agent,
        time,
        clock: ClockSource::Agent,
        late: false,
        envelope,
    }
}

/// `days` days of a window a minute and a link change an hour, oldest first.
fn history(store: &mut Store, days: i64) -> u64 {
    let mut seq = 0;
    let mut batch = Vec::new();
    for minute in 0..days * 1440 {
        let time = base() + Delta::minutes(minute);
        seq += 1;
        let json = if minute % 60 == 0 { LINK_DOWN } else { WINDOW };
        batch.push(event(json, seq, time));
        if batch.len() == 1000 {
            store.append(&batch, &[]).unwrap();
            batch.clear();
        }
    }
    store.append(&batch, &[]).unwrap();
    seq
}

fn types(store: &Store) -> (i64, i64) {
    let count = |condition: &str| count_where(store, condition);
    (
        count(Class::Measurements.condition()),
        count(Class::Facts.condition()),
    )
}

fn sweep_all(store: &mut Store, class: Class, cutoff: DateTime<Utc>) -> usize {
    let mut deleted = 0;
    for _ in 0..10_000 {
        let swept = store.sweep(class, cutoff.timestamp_millis()).unwrap();
        deleted += swept.deleted;
        if swept.caught_up {
            return deleted;
        }
    }
    panic!("retention never caught up");
}

#[test]
fn measurements_older_than_the_cutoff_go_and_facts_stay() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    history(&mut store, 3);
    assert_eq!(types(&store), (3 * 1440 - 72, 72));
    // Keep the last day.
    let cutoff = base() + Delta::days(2);
    let deleted = sweep_all(&mut store, Class::Measurements, cutoff);
    assert_eq!(deleted, 2 * 1440 - 48);
    assert_eq!(types(&store), (1440 - 24, 72), "every link change kept");
    let oldest_window: i64 = store
        .conn()
        .query_row(
            &format!(
                "SELECT min(time) FROM events WHERE {}",
                Class::Measurements.condition()
            ),
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(oldest_window >= cutoff.timestamp_millis());
    // Caught up: a second pass deletes nothing, and the cursor rests at the kept history.
    assert_eq!(sweep_all(&mut store, Class::Measurements, cutoff), 0);
    // Facts of the first day go with their own cutoff.
    let deleted = sweep_all(&mut store, Class::Facts, base() + Delta::days(1));
    assert_eq!(deleted, 24);
    assert_eq!(types(&store), (1440 - 24, 48));
}

#[test]
fn a_step_is_bounded_and_the_cursor_survives_a_reopen() {
    let dir = temp_dir();
    let path = dir.path().join("events.db");
    let mut store = Store::open(&path).unwrap();
    history(&mut store, 7);
    let cutoff = (base() + Delta::days(6)).timestamp_millis();
    let first = store.sweep(Class::Measurements, cutoff).unwrap();
    assert!(!first.caught_up);
    assert!(first.deleted > 0 && first.deleted <= STEP_IDS as usize);
    drop(store);
    let mut store = Store::open(&path).unwrap();
    let before = types(&store).0;
    let second = store.sweep(Class::Measurements, cutoff).unwrap();
    assert_eq!(types(&store).0, before - second.deleted as i64);
    assert!(second.deleted > 0, "the second step starts after the first");
}

#[test]
fn a_late_row_with_an_old_time_goes_when_the_cursor_reaches_it() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let seq = history(&mut store, 5);
    // Stored now, dated in the first day: ids beyond a step from the kept history.
    store
        .append(&[event(WINDOW, seq + 1, base() + Delta::hours(1))], &[])
        .unwrap();
    let cutoff = base() + Delta::days(1);
    sweep_all(&mut store, Class::Measurements, cutoff);
    let old: i64 = store
        .conn()
        .query_row(
            &format!(
                "SELECT count(*) FROM events WHERE {} AND time < ?1",
                Class::Measurements.condition()
            ),
            [cutoff.timestamp_millis()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(old, 1, "kept a little longer, never shorter");
}

#[test]
fn deleted_rows_give_their_pages_back() {
    let dir = temp_dir();
    let path = dir.path().join("events.db");
    let mut store = Store::open(&path).unwrap();
    history(&mut store, 10);
    let pages = |store: &Store| -> i64 {
        store
            .conn()
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap()
    };
    let before = pages(&store);
    sweep_all(&mut store, Class::Measurements, base() + Delta::days(9));
    let after = pages(&store);
    assert!(
        after * 4 < before,
        "pages {before} → {after}: nine days of ten should be given back"
    );
}

#[test]
fn the_schedule_sweeps_while_there_is_work_then_rests() {
    let day = Duration::from_secs(86_400);
    let mut schedule = Schedule::new(Some(35 * day), None);
    let now_ms = base().timestamp_millis();
    assert_eq!(
        schedule.due(0, now_ms),
        vec![(Class::Measurements, now_ms - 35 * 86_400_000)]
    );
    let step = |deleted, caught_up| Swept { deleted, caught_up };
    assert_eq!(
        schedule.swept(Class::Measurements, step(5_000, false), 0),
        None
    );
    assert_eq!(schedule.due(1_000, now_ms).len(), 1, "more work: next tick");
    assert_eq!(
        schedule.swept(Class::Measurements, step(12, true), 1_000),
        Some(5_012),
        "the rows deleted since the last rest"
    );
    assert!(schedule.due(60_999, now_ms).is_empty(), "caught up: rests");
    assert_eq!(schedule.due(61_000, now_ms).len(), 1);
    assert_eq!(
        schedule.swept(Class::Measurements, step(0, true), 61_000),
        Some(0)
    );
    let off = Schedule::new(None, None);
    assert!(off.due(0, now_ms).is_empty());
}

#[test]
fn old_heartbeats_go_with_the_measurements() {
    const HEARTBEAT: &str = r#"{"v":1,"agent":"a","boot":"b","seq":1,"time":"2026-11-23T02:00:00.000Z","mono_ms":0,"type":"agent_heartbeat","uptime_s":30,"backlog":0}"#;
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let events: Vec<NewEvent> = (1..=48)
        .map(|hour| {
            let json = if hour % 2 == 0 { HEARTBEAT } else { LINK_DOWN };
            event(json, hour, base() + Delta::hours(hour as i64))
        })
        .collect();
    store.append(&events, &[]).unwrap();
    sweep_all(
        &mut store,
        Class::Measurements,
        base() + Delta::hours(24) + Delta::minutes(30),
    );
    // Hours 2, 4 … 24 held heartbeats: 12 gone; the 24 link changes all stay.
    assert_eq!(types(&store), (12, 24));
}

#[test]
fn the_reading_guard_keeps_the_readings_from_the_rollup_cursor_on() {
    // The sweep passes the `rollup:coverage` cursor (ROLLED_THROUGH) it reads in its transaction.
    let guard = Class::Measurements.guard(1_764_608_400_000);
    assert_eq!(guard, " AND (type != 10 OR time < 1764608400000)");
    assert_eq!(Class::Facts.guard(1_764_608_400_000), "");
    assert!(Class::Measurements.condition().contains("type = 10"));
}
