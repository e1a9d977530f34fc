//! The rollups on a real SQLite file with an explicit clock: a year of readings, the report,
//! retention that may not pass a day not rolled up, the rollups, retention to the end, and the
//! same report again.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta};

use crate::coverage::cli::from_store;
use crate::coverage::{Scope, synthetic};
use crate::intake::clock::ClockPolicy;
use crate::intake::recorder::{Now, Recorder};
use crate::store::Store;
use crate::store::retention::Schedule;
use crate::store::rollups::ROLLED_THROUGH;
use crate::store::testkit::{count_where as count, temp_dir};

const DAY: i64 = 86_400_000;

/// Retention steps with the wall clock at `wall` until every class has caught up (the
/// monotonic clock moves a rest's length between steps).
fn retain(rec: &mut Recorder, wall: DateTime<chrono::Utc>, steps: u64) {
    for step in 0..steps {
        rec.retain(Now {
            wall,
            mono_ms: (step + 1) * 61_000,
        });
    }
}

#[test]
fn a_year_reports_the_same_before_and_after_rollups_and_retention() {
    let dir = temp_dir();
    let path = dir.path().join("events.db");
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00+07:00")
        .unwrap()
        .timestamp_millis();
    let days = 365;
    let end = start + days * DAY;
    let events = synthetic::new_events(&synthetic::history(start, days, 900, 11));
    let mut store = Store::open(&path).unwrap();
    for chunk in events.chunks(5_000) {
        store.append(chunk, &[]).unwrap();
    }
    drop(store);
    let year = Scope {
        from: DateTime::from_timestamp_millis(start).unwrap(),
        to: DateTime::from_timestamp_millis(end).unwrap(),
        province: None,
        commune: None,
    };
    let report = |path| {
        let started = Instant::now();
        let (report, unreadable) =
            from_store(&Store::open_read_only(path).unwrap(), &year, None).unwrap();
        assert_eq!(unreadable, 0);
        (report, started.elapsed())
    };
    let (before, took_raw) = report(&path);
    assert!(before.rows.len() >= 4);

    // 03:00 the day after the year: every day but the last is due (a day after its end).
    let now = DateTime::from_timestamp_millis(end + 3 * 3_600_000).unwrap();
    let mut rec = Recorder::rebuild(
        Store::open(&path).unwrap(),
        None,
        Duration::from_secs(35),
        ClockPolicy::default(),
    )
    .unwrap();
    let keep = Duration::from_secs(35 * 86_400);
    rec.set_retention(Schedule::new(Some(keep), Some(keep * 104)));
    let readings = "type = 10";
    let all_readings = count(rec.store(), readings);
    // Nothing rolled up yet: retention deletes no reading, however old.
    retain(&mut rec, now, 5);
    assert_eq!(count(rec.store(), readings), all_readings);

    let started = Instant::now();
    let rolled_days = rec
        .roll_up_all(Now {
            wall: now,
            mono_ms: 1,
        })
        .unwrap();
    let took_rollups = started.elapsed();
    assert_eq!(rolled_days, days as usize - 1);
    let through = rec.store().projection_position(ROLLED_THROUGH).unwrap();
    assert_eq!(through, end - DAY);
    assert_eq!(
        rec.roll_up_all(Now {
            wall: now,
            mono_ms: 2
        })
        .unwrap(),
        0
    );

    retain(&mut rec, now, 200);
    let cutoff = (now - TimeDelta::from_std(keep).unwrap()).timestamp_millis();
    assert_eq!(
        count(rec.store(), &format!("{readings} AND time < {cutoff}")),
        0
    );
    assert!(count(rec.store(), &format!("{readings} AND time >= {through}")) > 0);
    let rollups = count(rec.store(), "type = 37");
    let bytes: i64 = rec
        .store()
        .conn()
        .query_row(
            "SELECT sum(length(body)) FROM events WHERE type = 37",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let reading_bytes: f64 = rec
        .store()
        .conn()
        .query_row(
            "SELECT avg(length(body)) FROM events WHERE type = 10",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(rec);

    let (after, took_rolled) = report(&path);
    assert_eq!(after, before);
    eprintln!(
        "{all_readings} readings; {rollups} rollups, {:.0} B of body each (a reading {reading_bytes:.0} B); \
         report over the year: {took_raw:?} raw, {took_rolled:?} from rollups; rollups written in {took_rollups:?}",
        bytes as f64 / rollups as f64
    );
}
