//! The rollups give the report the raw fold gives: a year of synthetic readings (`synthetic.rs`)
//! folded raw, and folded as daily rollups plus the raw days after the last rolled-up one.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use netmon_events::{BootId, Envelope, SCHEMA_VERSION};

use super::day::Day;
use super::rollup::DayRollup;
use super::synthetic::{self, history};
use super::*;
use crate::intake::clock::ClockSource;
use crate::store::Origin;

/// 2026-01-01 00:00 in Vietnam.
fn start() -> i64 {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00+07:00")
        .unwrap()
        .timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn scope(from: i64, to: i64) -> Scope {
    Scope {
        from: time(from),
        to: time(to),
        province: None,
        commune: None,
    }
}

fn raw_events(days: i64, step_s: i64, seed: u64) -> Vec<StoredEvent> {
    synthetic::new_events(&history(start(), days, step_s, seed))
        .into_iter()
        .enumerate()
        .map(|(i, e)| synthetic::stored(i as i64 + 1, e))
        .collect()
}

/// What the writer would have recorded: every day before `through` rolled up, in order, each
/// going on from the day before's rollups.
fn rollups(events: &[StoredEvent], through: Day) -> Vec<StoredEvent> {
    let mut by_day: BTreeMap<Day, Vec<&StoredEvent>> = BTreeMap::new();
    for e in events {
        by_day
            .entry(Day::of(e.time.timestamp_millis()))
            .or_default()
            .push(e);
    }
    let first = Day::of(start());
    let mut out: Vec<StoredEvent> = Vec::new();
    let mut before: Vec<StoredEvent> = Vec::new();
    let mut day = first;
    while day < through {
        let mut fold = DayRollup::new(day);
        for r in &before {
            fold.carry_from(r);
        }
        for e in by_day.get(&day).into_iter().flatten() {
            fold.apply(e);
        }
        before = fold
            .finish()
            .into_iter()
            .map(|rolled| {
                let t = time(day.start());
                StoredEvent {
                    id: 1_000_000_000 + out.len() as i64,
                    province: rolled.province,
                    received: t,
                    origin: Origin::Collector,
                    time: t,
                    clock: ClockSource::Agent,
                    late: false,
                    envelope: Envelope {
                        v: SCHEMA_VERSION,
                        agent: rolled.agent,
                        boot: "collector-boot".parse::<BootId>().unwrap(),
                        seq: out.len() as u64 + 1,
                        time: t,
                        mono_ms: 0,
                        event: rolled.event,
                    },
                }
            })
            .collect();
        out.extend(before.iter().cloned());
        day = day.next();
    }
    out
}

fn raw_report(events: &[StoredEvent], scope: &Scope) -> Report {
    let mut fold = Coverage::new(scope.clone(), None);
    for e in events {
        fold.apply(e);
    }
    fold.finish()
}

/// The report as `report coverage` builds it, from these raw events and rollups.
fn planned(events: &[StoredEvent], rolled: &[StoredEvent], scope: &Scope, through: i64) -> Report {
    let plan = Plan::new(scope.from, scope.to, through);
    report(scope, None, &plan, &mut |read, f| {
        let source = if read.types.contains(&ROLLUP_TYPE) {
            rolled
        } else {
            events
        };
        for e in source {
            if read.types.contains(&e.envelope.event.type_name())
                && e.time >= read.from
                && e.time < read.to
            {
                f(e);
            }
        }
    })
}

#[test]
fn a_year_from_rollups_and_the_raw_tail_is_the_year_from_raw_readings() {
    let days = 365;
    let events = raw_events(days, 300, 7);
    let end = start() + days * day::DAY_MS;
    let year = scope(start(), end);
    let expected = raw_report(&events, &year);
    assert!(expected.rows.len() >= 4, "{:?}", expected.rows.len());
    assert!(
        expected
            .rows
            .iter()
            .any(|r| r.plmn == UNKNOWN_PLMN || r.tally.by_generation[3] > 0)
    );
    // Today and yesterday not rolled up yet: read raw, going on from the day before's carry.
    let through = Day::of(end).prev().prev();
    let rolled = rollups(&events, through);
    let bytes: usize = rolled
        .iter()
        .map(|r| serde_json::to_vec(&r.envelope.event).unwrap().len())
        .sum();
    eprintln!(
        "{} rollups, {:.0} B of JSON each",
        rolled.len(),
        bytes as f64 / rolled.len() as f64
    );
    assert_eq!(planned(&events, &rolled, &year, through.start()), expected);
    // Every day rolled up: no raw reading read at all.
    let all = rollups(&events, Day::of(end));
    let no_raw: Vec<StoredEvent> = Vec::new();
    assert_eq!(planned(&no_raw, &all, &year, end), expected);
    // A window that starts and ends inside days: raw before the first midnight and after the
    // last rolled-up one.
    let inside = scope(
        start() + 40 * day::DAY_MS + 6 * 3_600_000,
        end - 30 * 3_600_000,
    );
    assert_eq!(
        planned(&events, &rolled, &inside, through.start()),
        raw_report(&events, &inside)
    );
}

#[test]
fn a_window_without_a_whole_rolled_up_day_is_the_raw_fold() {
    let plan = Plan::new(
        time(start() + 1),
        time(start() + day::DAY_MS + 5),
        start() + 9 * day::DAY_MS,
    );
    assert_eq!((plan.head, plan.rolled), (None, None));
    assert_eq!(
        plan.tail,
        Some((time(start() + 1), time(start() + day::DAY_MS + 5)))
    );
    let plan = Plan::new(
        time(start() - 5),
        time(start() + 3 * day::DAY_MS),
        start() + 2 * day::DAY_MS,
    );
    assert_eq!(plan.head, Some((time(start() - 5), time(start()))));
    assert_eq!(
        plan.rolled,
        Some((time(start()), time(start() + 2 * day::DAY_MS)))
    );
    assert_eq!(
        plan.tail,
        Some((
            time(start() + 2 * day::DAY_MS),
            time(start() + 3 * day::DAY_MS)
        ))
    );
}

#[test]
fn a_modem_day_of_minute_readings_is_a_few_hundred_bytes() {
    // Two days of a reading a minute; the second day's rollups are a day in the middle of a
    // stream (a carry in and out).
    let events = raw_events(2, 60, 3);
    let rolled = rollups(&events, Day::of(start()).next().next());
    let second: Vec<&StoredEvent> = rolled
        .iter()
        .filter(|r| r.time.timestamp_millis() > start())
        .collect();
    let mut encoder = crate::store::body::Encoder::new().unwrap();
    let (mut json, mut stored) = (0, 0);
    for r in &second {
        json += serde_json::to_vec(&r.envelope.event).unwrap().len();
        stored += encoder.encode(&r.envelope.event, None).unwrap().body.len();
    }
    let n = second.len();
    eprintln!(
        "{n} modem-days: {} B of JSON, {} B stored (zstd) each",
        json / n,
        stored / n
    );
    assert!(stored / n < 600, "{} B a modem-day", stored / n);
}
