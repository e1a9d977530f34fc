//! Bytes as an `events` payload → `decode_batch` (and the single-envelope path of `serde_json`)
//! → for every envelope that validates, the collector's store append.
//!
//! Asserts the contract's invariant: every envelope that passes `validate` is storable (append
//! succeeds, with its boot row, as the recorder writes it), is stored, and its stored body reads
//! back as the envelope's canonical form (one encode/decode cycle: times to the millisecond),
//! which itself encodes and decodes to the same envelope. Nothing here may panic.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use netmon_collector::intake::clock::{self, ClockPolicy};
use netmon_collector::store::{Appended, BootRow, NewEvent, Origin, Store};
use netmon_events::{Envelope, Event, ProvinceId, decode_batch};

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

/// What the recorder appends for one accepted envelope: the event with its judged time, and the
/// boot row with the watermark the event can raise it to.
fn rows(envelope: &Envelope, epoch: Option<DateTime<Utc>>) -> (NewEvent, Vec<BootRow>) {
    let now = received();
    let judged = clock::judge(
        ClockPolicy::default(),
        envelope.time,
        envelope.mono_ms,
        epoch,
        now,
    );
    let boot = |watermark| BootRow {
        agent: envelope.agent.clone(),
        boot: envelope.boot.clone(),
        watermark,
        epoch,
        first_received: now,
        last_received: now,
    };
    let mut boots = vec![boot(envelope.seq)];
    if let Event::JournalOverflowed {
        dropped_boot,
        last_seq,
        ..
    } = &envelope.event
    {
        boots.push(BootRow {
            boot: dropped_boot.clone(),
            ..boot(*last_seq)
        });
    }
    let event = NewEvent {
        province: ProvinceId::new("fuzz").expect("a valid province id"),
        received: now,
        origin: Origin::Agent,
        time: judged.time,
        clock: judged.clock,
        late: judged.late,
        envelope: envelope.clone(),
    };
    (event, boots)
}

/// Appends `envelope` alone (so that a failure names it) to `store`, which holds `stored`
/// events already, none with its key.
fn check_storable(
    store: &mut Store,
    stored: u64,
    envelope: &Envelope,
    epoch: Option<DateTime<Utc>>,
) {
    let (event, boots) = rows(envelope, epoch);
    let appended = match store.append(&[event], &boots) {
        Ok(appended) => appended,
        Err(e) => panic!("an envelope that validates cannot be stored: {e}\n{envelope:?}"),
    };
    let appended = match appended.first() {
        Some(Appended::Stored(appended)) => appended,
        Some(Appended::Refused(why)) => {
            panic!("an envelope that validates is refused by the store: {why}\n{envelope:?}")
        }
        other => panic!("a new envelope was not stored ({other:?}): {envelope:?}"),
    };
    let body = serde_json::to_string(envelope).expect("an envelope encodes");
    let canonical: Envelope = serde_json::from_str(&body).expect("an encoded envelope decodes");
    assert_eq!(
        appended.envelope, canonical,
        "the stored body differs from the envelope"
    );
    let again: Envelope =
        serde_json::from_str(&serde_json::to_string(&canonical).expect("encodes"))
            .expect("a stored body decodes");
    assert_eq!(again, canonical, "the stored body does not round-trip");
    assert_eq!(store.count().expect("count"), stored + 1);
    // A second delivery of the same event is a no-op, never an error.
    let (event, boots) = rows(envelope, epoch);
    match store.append(&[event], &boots) {
        Ok(again) => assert!(
            matches!(again.first(), Some(Appended::Duplicate)),
            "a duplicate was not recognised: {again:?}"
        ),
        Err(e) => panic!("a duplicate delivery failed: {e}"),
    }
}

fn open() -> Store {
    Store::open(Path::new(":memory:")).expect("an in-memory store opens")
}

fuzz_target!(|data: &[u8]| {
    let mut seen = HashSet::new();
    let mut store: Option<Store> = None;
    if let Ok(batch) = decode_batch(data) {
        let epoch = batch
            .sender
            .as_ref()
            .and_then(|s| clock::epoch_sample(received(), s.mono_ms));
        for envelope in batch.events.into_iter().flatten() {
            assert!(
                envelope.validate().is_ok(),
                "decode_batch let through an invalid event"
            );
            let key = (envelope.agent.clone(), envelope.boot.clone(), envelope.seq);
            let stored = seen.len() as u64;
            if seen.insert(key) {
                check_storable(store.get_or_insert_with(open), stored, &envelope, epoch);
            }
        }
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(data)
        && envelope.validate().is_ok()
    {
        check_storable(&mut open(), 0, &envelope, None);
    }
});
