//! The contract's storage invariant, without coverage guidance (the fuzz target `payload_store`
//! explores the same on nightly): every envelope that passes `Envelope::validate` is storable —
//! `Store::append` stores it with its boot row, as the recorder writes them — and the stored
//! event it hands back (built from the appended one, not read back) is equal to the envelope
//! (times to the millisecond, as the row keeps them) and to what the row reads back as, by a
//! replay (`for_each`) and by a query of its type (the partial type index), in the compact row
//! layout of schema 5.
//!
//! The envelopes are the golden fixtures of every event type with each integer set to the edge
//! values (0, 1, 2^63 − 1, 2^63, u64::MAX, …), each float to extreme ones, NaN and infinities,
//! each time to the ends of RFC 3339, then a bounded run of seeded random combinations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use netmon_collector::intake::clock::{self, ClockPolicy};
use netmon_collector::store::{Appended, BootRow, NewEvent, Origin, Query, Store};
use netmon_events::{Envelope, Event, ProvinceId};
use serde_json::Value;

#[path = "../examples/common/rng.rs"]
mod rng;
use rng::Rng;

const INTEGERS: [u64; 9] = [
    0,
    1,
    2,
    1000,
    u32::MAX as u64,
    (1 << 53) + 1,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
];

const FLOATS: [f64; 9] = [
    0.0,
    -0.0,
    f64::MIN_POSITIVE,
    5e-324,
    1e15 + 0.3,
    -1e300,
    f64::MAX,
    f64::MIN,
    // Found by the fuzz target payload_store: without correctly rounded parsing it read back as
    // 9.120099999990001e74.
    9.12009999999e74,
];

const NON_FINITE: [f64; 3] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

const TIMES: [&str; 7] = [
    "0000-01-01T00:00:00Z",
    "0000-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.999-23:59",
    "1970-01-01T00:00:00.0000001Z",
    "2026-12-02T02:00:00.123456789+07:00",
    "2016-12-31T23:59:60Z",
];

fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/fixtures");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("events/fixtures")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a fixture");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("fixture JSON"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() > 20, "the fixtures of every event type");
    out
}

/// JSON pointers of every number and every time string in `value`.
fn leaves(value: &Value, at: String, numbers: &mut Vec<String>, times: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                leaves(v, format!("{at}/{key}"), numbers, times);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{at}/{i}"), numbers, times);
            }
        }
        Value::Number(_) => numbers.push(at),
        Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => times.push(at),
        _ => {}
    }
}

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 2, 0, 0).unwrap()
}

/// What the recorder appends for an accepted envelope: the event with its judged time, and the
/// boot rows with the watermarks it can raise.
fn rows(envelope: &Envelope) -> (NewEvent, Vec<BootRow>) {
    let now = received();
    let judged = clock::judge(
        ClockPolicy::default(),
        envelope.time,
        envelope.mono_ms,
        None,
        now,
    );
    let row = |boot, watermark| BootRow {
        agent: envelope.agent.clone(),
        boot,
        watermark,
        epoch: None,
        first_received: now,
        last_received: now,
    };
    let mut boots = vec![row(envelope.boot.clone(), envelope.seq)];
    if let Event::JournalOverflowed {
        dropped_boot,
        last_seq,
        ..
    } = &envelope.event
    {
        boots.push(row(dropped_boot.clone(), *last_seq));
    }
    let event = NewEvent {
        province: ProvinceId::new("test").unwrap(),
        received: now,
        origin: Origin::Agent,
        time: judged.time,
        clock: judged.clock,
        late: judged.late,
        envelope: envelope.clone(),
    };
    (event, boots)
}

/// `None` when the envelope is refused by validation or stored and read back intact; else what
/// went wrong.
fn check(envelope: &Envelope) -> Option<String> {
    envelope.validate().ok()?;
    let mut store = Store::open(Path::new(":memory:")).unwrap();
    let (event, boots) = rows(envelope);
    let appended = match store.append(&[event], &boots) {
        Ok(appended) => appended,
        Err(e) => return Some(format!("append failed: {e}")),
    };
    let stored = match appended.first() {
        Some(Appended::Stored(stored)) => stored,
        other => return Some(format!("not stored: {other:?}")),
    };
    let canonical: Envelope = match serde_json::to_string(envelope)
        .map_err(|e| e.to_string())
        .and_then(|body| serde_json::from_str(&body).map_err(|e| e.to_string()))
    {
        Ok(canonical) => canonical,
        Err(e) => return Some(format!("the body does not decode: {e}")),
    };
    if stored.envelope != canonical {
        return Some(format!("handed back as {:?}", stored.envelope));
    }
    // The row itself, as a replay and a query read it.
    let mut replayed = Vec::new();
    if let Err(e) = store.for_each(|row| replayed.push(row)) {
        return Some(format!("replay failed: {e}"));
    }
    match replayed.as_slice() {
        [Ok(back)] if back == stored => {}
        other => return Some(format!("replays as {other:?}")),
    }
    let of_type = Query {
        event_type: Some(envelope.event.type_name().to_string()),
        ..Query::default()
    };
    match store.query(&of_type).as_deref() {
        Ok([back]) if back == stored => {}
        other => return Some(format!("a query of its type reads {other:?}")),
    }
    // What a replay, a projection or the API encodes again must read back the same: the stored
    // values are a fixed point of encode → decode.
    let again: Option<Envelope> = serde_json::to_string(&stored.envelope)
        .ok()
        .and_then(|body| serde_json::from_str(&body).ok());
    if again.as_ref() != Some(&stored.envelope) {
        return Some(format!(
            "not a fixed point: {:?} reads back as {again:?}",
            stored.envelope
        ));
    }
    None
}

/// Decodes `value` as an envelope; runs [`check`] when it decodes, and on its float-mutated
/// variants (NaN and infinities cannot be written in JSON, so they are set on the typed event).
fn check_value(value: &Value, what: &str, failures: &mut Vec<String>) {
    let Ok(envelope) = serde_json::from_value::<Envelope>(value.clone()) else {
        return;
    };
    let mut record = |envelope: &Envelope, what: String| {
        if let Some(problem) = check(envelope) {
            failures.push(format!(
                "{what}: {problem}\n    {}",
                serde_json::to_string(envelope).unwrap()
            ));
        }
    };
    record(&envelope, what.to_string());
    for x in NON_FINITE.into_iter().chain(FLOATS) {
        for slot in 0..8 {
            let mut mutated = envelope.clone();
            if set_float(&mut mutated.event, slot, x) {
                record(&mutated, format!("{what}, float #{slot} = {x}"));
            }
        }
    }
}

/// Sets the `slot`-th float field of `event` (if it has one) to `x`.
fn set_float(event: &mut Event, slot: usize, x: f64) -> bool {
    let fields: Vec<&mut f64> = match event {
        Event::ProbeRoundCompleted {
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            rtt_mdev_ms,
            loss_pct,
            ..
        } => {
            let mut v: Vec<&mut f64> = [rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_mdev_ms]
                .into_iter()
                .filter_map(Option::as_mut)
                .collect();
            v.push(loss_pct);
            v
        }
        Event::CellularSignalSampled { signal, .. } => [
            &mut signal.rsrp_dbm,
            &mut signal.rsrq_db,
            &mut signal.sinr_db,
            &mut signal.rssi_dbm,
            &mut signal.nr_rsrp_dbm,
            &mut signal.nr_rsrq_db,
            &mut signal.nr_sinr_db,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
        .collect(),
        _ => Vec::new(),
    };
    match fields.into_iter().nth(slot) {
        Some(field) => {
            *field = x;
            true
        }
        None => false,
    }
}

fn set(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[test]
fn every_envelope_that_validates_is_storable_and_round_trips() {
    let mut failures = Vec::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (name, fixture) in fixtures() {
        check_value(&fixture, &name, &mut failures);
        let (mut numbers, mut times) = (Vec::new(), Vec::new());
        leaves(&fixture, String::new(), &mut numbers, &mut times);
        // Every integer and float leaf at every edge value, one at a time.
        for pointer in &numbers {
            for x in INTEGERS {
                let mut v = fixture.clone();
                set(&mut v, pointer, Value::from(x));
                check_value(&v, &format!("{name} {pointer} = {x}"), &mut failures);
            }
            for x in FLOATS {
                let mut v = fixture.clone();
                set(&mut v, pointer, number(x));
                check_value(&v, &format!("{name} {pointer} = {x}"), &mut failures);
            }
        }
        for pointer in &times {
            for t in TIMES {
                let mut v = fixture.clone();
                set(&mut v, pointer, Value::from(t));
                check_value(&v, &format!("{name} {pointer} = {t}"), &mut failures);
            }
        }
        // Seeded random combinations: several leaves at once.
        for round in 0..200 {
            let mut v = fixture.clone();
            for _ in 0..1 + rng.below(4) {
                if !numbers.is_empty() && rng.below(4) != 0 {
                    let pointer = &numbers[rng.below(numbers.len())];
                    let x = match rng.below(3) {
                        0 => Value::from(INTEGERS[rng.below(INTEGERS.len())]),
                        1 => Value::from(rng.next() >> rng.below(64)),
                        _ => number(FLOATS[rng.below(FLOATS.len())]),
                    };
                    set(&mut v, pointer, x);
                } else if !times.is_empty() {
                    let pointer = &times[rng.below(times.len())];
                    set(&mut v, pointer, Value::from(TIMES[rng.below(TIMES.len())]));
                }
            }
            check_value(&v, &format!("{name} random #{round}"), &mut failures);
        }
    }
    // One example per kind of failure (digits blurred), so that one cause does not hide another.
    let mut kinds: std::collections::BTreeMap<String, (usize, &String)> = Default::default();
    for failure in &failures {
        let (_, problem) = failure.split_once(": ").unwrap_or(("", failure));
        let kind: String = problem
            .chars()
            .take(70)
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        kinds.entry(kind).or_insert((0, failure)).0 += 1;
    }
    assert!(
        failures.is_empty(),
        "{} envelopes pass validate but are not storable or do not round-trip:\n{}",
        failures.len(),
        kinds
            .values()
            .map(|(n, example)| format!("{n} like: {example}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
