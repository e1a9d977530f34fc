//! Tests of the event store on real SQLite files (a child module of `store`).
#![allow(clippy::unwrap_used)]

use super::testkit::{self, envelope_json, temp_dir};
use super::*;
use netmon_events::Event;

fn new_event(agent: &str, seq: u64, event: &str) -> NewEvent {
    let envelope: Envelope =
        serde_json::from_str(&envelope_json(agent, "boot-1", seq, event)).unwrap();
    NewEvent {
        province: "thanh-hoa".parse().unwrap(),
        received: "2026-11-23T02:00:00.500Z".parse().unwrap(),
        origin: Origin::Agent,
        time: envelope.time,
        clock: ClockSource::Agent,
        late: false,
        envelope,
    }
}

const HEARTBEAT: &str = r#""type":"agent_heartbeat","uptime_s":30,"backlog":0"#;

#[test]
fn duplicate_key_is_a_no_op_and_ids_follow_insert_order() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let first = store
        .append(
            &[new_event("a", 1, HEARTBEAT), new_event("a", 2, HEARTBEAT)],
            &[],
        )
        .unwrap();
    assert_eq!(
        first
            .iter()
            .filter_map(Appended::stored)
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let again = store
        .append(
            &[new_event("a", 2, HEARTBEAT), new_event("b", 2, HEARTBEAT)],
            &[],
        )
        .unwrap();
    assert_eq!(
        again[0],
        Appended::Duplicate,
        "duplicate must not be stored"
    );
    assert_eq!(again[1].stored().unwrap().id, 3);
    assert_eq!(store.count().unwrap(), 3);
}

#[test]
fn store_is_wal_and_readable_read_only_while_writer_is_open() {
    let dir = temp_dir();
    let path = dir.path().join("events.db");
    let mut writer = Store::open(&path).unwrap();
    assert_eq!(writer.journal_mode().unwrap(), "wal");
    writer.append(&[new_event("a", 1, HEARTBEAT)], &[]).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.count().unwrap(), 1);
    // The writer keeps writing while the reader is open, and the reader sees it.
    writer.append(&[new_event("a", 2, HEARTBEAT)], &[]).unwrap();
    assert_eq!(reader.count().unwrap(), 2);
    // A read-only connection cannot write.
    let err = reader.conn.execute("DELETE FROM events", []).unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
}

#[test]
fn read_only_open_works_after_the_writer_closed() {
    let dir = temp_dir();
    let path = dir.path().join("events.db");
    {
        let mut writer = Store::open(&path).unwrap();
        writer.append(&[new_event("a", 1, HEARTBEAT)], &[]).unwrap();
    }
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.count().unwrap(), 1);
    assert!(Store::open_read_only(&dir.path().join("missing.db")).is_err());
}

#[test]
fn query_filters_and_limits_newest_first_returned_oldest_first() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let started = r#""type":"agent_started","version":"0.1.0","targets":1"#;
    store
        .append(
            &[
                new_event("a", 1, started),
                new_event("a", 2, HEARTBEAT),
                new_event("b", 1, started),
                new_event("a", 3, HEARTBEAT),
            ],
            &[],
        )
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

#[test]
fn for_each_of_reads_only_the_types_in_the_time_range_in_store_order() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let started = r#""type":"agent_started","version":"0.1.0","targets":1"#;
    // Agent times base + seq s: seqs 1..=6, alternating heartbeats and starts.
    let events: Vec<NewEvent> = (1..=6)
        .map(|seq| new_event("a", seq, if seq % 2 == 0 { started } else { HEARTBEAT }))
        .collect();
    store.append(&events, &[]).unwrap();
    let base = testkit::base();
    let mut seen = Vec::new();
    let n = store
        .for_each_of(
            &["agent_started"],
            base + chrono::TimeDelta::seconds(2),
            base + chrono::TimeDelta::seconds(6),
            |row| seen.push(row.unwrap().envelope.seq),
        )
        .unwrap();
    assert_eq!((n, seen), (2, vec![2, 4]), "seq 6 is at the end, excluded");
}

/// F1 of the audit: one event the store cannot hold was a batch error, retried for ever. Now it
/// is refused on its own, recorded in `refusals`, and its neighbours are stored.
#[test]
fn an_event_the_store_cannot_hold_is_refused_alone() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let mut poison = new_event("a", 2, HEARTBEAT);
    poison.envelope.seq = 1 << 63;
    let batch = [
        new_event("a", 1, HEARTBEAT),
        poison,
        new_event("b", 1, HEARTBEAT),
    ];
    let out = store.append(&batch, &[]).unwrap();
    assert!(out[0].stored().is_some());
    assert!(
        matches!(&out[1], Appended::Refused(why) if why.contains("does not fit")),
        "{:?}",
        out[1]
    );
    assert!(out[2].stored().is_some());
    assert_eq!(store.count().unwrap(), 2);
    // A seq beyond what SQLite holds cannot be recorded as a key either; nothing else is lost.
    let refused: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM refusals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(refused, 0);
}

/// Refused seqs count as known after a restart: the watermark passes them.
#[test]
fn refusals_are_seqs_above_the_watermark() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let a: AgentId = "a".parse().unwrap();
    let boot: BootId = "boot-1".parse().unwrap();
    let refusal = Refusal {
        agent: a.clone(),
        boot: boot.clone(),
        seq: 2,
        reason: "invalid_event",
        detail: "loss_pct 200 is outside 0-100".into(),
        received: "2026-11-23T02:00:00.500Z".parse().unwrap(),
    };
    let row = BootRow {
        agent: a.clone(),
        boot: boot.clone(),
        watermark: 0,
        epoch: None,
        first_received: refusal.received,
        last_received: refusal.received,
    };
    store
        .append_with(&[new_event("a", 3, HEARTBEAT)], &[refusal], &[row])
        .unwrap();
    assert_eq!(store.seqs_above(&a, &boot, 0).unwrap(), vec![2, 3]);
    assert_eq!(store.boots().unwrap()[0].max_seq, 3);
}

/// A full disk (here: a read-only connection) is the store's failure, not the event's: the whole
/// batch fails and nothing is written, so it can be retried.
#[test]
fn a_store_that_cannot_write_fails_the_batch() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    store.fail_writes(true);
    assert!(store.append(&[new_event("a", 1, HEARTBEAT)], &[]).is_err());
    store.fail_writes(false);
    assert_eq!(store.count().unwrap(), 0);
}

fn replayed(store: &Store) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    store.for_each(|row| out.push(row.unwrap())).unwrap();
    out
}

/// The stored event handed back is built from the appended one; where JSON cannot hold a value
/// exactly (a NaN the collector computed, a time finer than a millisecond) it is what the row
/// reads back as, so that live state and replayed state agree.
#[test]
fn the_stored_event_is_what_a_replay_reads_even_for_values_json_cannot_hold() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let fine = "2026-11-23T02:00:00.123456789Z".parse().unwrap();
    let mut alert = new_event("a", 1, HEARTBEAT);
    alert.origin = Origin::Collector;
    alert.envelope.time = fine;
    alert.time = fine;
    alert.received = fine;
    alert.envelope.event = Event::AlertOpened {
        alert: 1,
        kind: netmon_events::AlertKind::HighLoss,
        site: None,
        target: None,
        subject: None,
        since: fine,
        detected_by: netmon_events::Detection::Statistics,
        value: Some(f64::NAN),
        threshold: Some(5.0),
        late: false,
    };
    let out = store.append(&[alert], &[]).unwrap();
    let stored = out[0].stored().unwrap();
    assert_eq!(replayed(&store), std::slice::from_ref(stored));
    let truncated: DateTime<Utc> = "2026-11-23T02:00:00.123Z".parse().unwrap();
    assert_eq!((stored.time, stored.envelope.time), (truncated, truncated));
    let Event::AlertOpened { since, value, .. } = &stored.envelope.event else {
        panic!("{stored:?}")
    };
    assert_eq!((*since, *value), (truncated, None));
}

/// An agent boot filed under two provinces (an agent moved without a restart, or a topic it may
/// not use) is still one event per seq: the unique key is per stream, and the other streams of
/// the boot are checked too.
#[test]
fn an_agent_boot_in_two_provinces_is_still_stored_once_per_seq() {
    let dir = temp_dir();
    let path = dir.path().join("events.db");
    let mut store = Store::open(&path).unwrap();
    let in_province = |seq, province: &str| {
        let mut event = new_event("a", seq, HEARTBEAT);
        event.province = province.parse().unwrap();
        event
    };
    let out = store
        .append(
            &[
                in_province(1, "thanh-hoa"),
                in_province(1, "nghe-an"),
                in_province(2, "nghe-an"),
            ],
            &[],
        )
        .unwrap();
    assert!(out[0].stored().is_some());
    assert_eq!(out[1], Appended::Duplicate);
    assert_eq!(out[2].stored().unwrap().province.as_str(), "nghe-an");
    drop(store);
    // A new connection knows nothing yet and still finds the other province's seq.
    let mut store = Store::open(&path).unwrap();
    let out = store.append(&[in_province(2, "thanh-hoa")], &[]).unwrap();
    assert_eq!(out[0], Appended::Duplicate);
    assert_eq!(store.count().unwrap(), 2);
}

/// A batch that fails after it made a stream and a target rolls them back; the next batch makes
/// them again instead of naming rows that do not exist.
#[test]
fn a_failed_batch_forgets_the_streams_and_targets_it_made() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let target = netmon_events::testing::target("Cổng thôn", "192.168.1.1");
    let mut window = new_event("a", 1, HEARTBEAT);
    window.envelope.event = netmon_events::testing::window(&target, 180);
    let boot = BootRow {
        agent: "a".parse().unwrap(),
        boot: "boot-1".parse().unwrap(),
        watermark: 1,
        epoch: None,
        first_received: window.received,
        last_received: window.received,
    };
    // The boots upsert fails after the event went in: the whole batch is undone.
    store
        .conn()
        .execute_batch("ALTER TABLE boots RENAME TO gone")
        .unwrap();
    let (batch, boots) = (std::slice::from_ref(&window), std::slice::from_ref(&boot));
    assert!(store.append(batch, boots).is_err());
    store
        .conn()
        .execute_batch("ALTER TABLE gone RENAME TO boots")
        .unwrap();
    let streams: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM streams", [], |r| r.get(0))
        .unwrap();
    assert_eq!(streams, 0);
    let out = store.append(&[window], &[boot]).unwrap();
    let stored = out[0].stored().unwrap().clone();
    assert_eq!(replayed(&store), [stored]);
}

/// What a row of the commonest event costs: the window of ADR 14, its body compressed to a
/// few dozen bytes (the whole row and its key come to ~110 bytes, `docs/benchmarks.md`).
#[test]
fn a_window_is_a_small_row() {
    let dir = temp_dir();
    let mut store = Store::open(&dir.path().join("events.db")).unwrap();
    let target = netmon_events::testing::target("UBND xã Cẩm Tú", "10.20.0.1");
    let mut window = new_event("a", 1, HEARTBEAT);
    window.envelope.event = netmon_events::testing::window_rtt(&target, 178, 23.47);
    store.append(&[window], &[]).unwrap();
    let (body, dict, kind, flags): (Vec<u8>, i64, i64, i64) = store
        .conn()
        .query_row("SELECT body, dict, type, flags FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((dict, kind, flags), (1, 1, 0));
    // These RTTs are sums like 23.47 + 0.05 (17 digits each); an agent's are rounded.
    assert!(body.len() < 90, "{} bytes", body.len());
}
