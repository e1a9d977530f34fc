//! The collector's intake against the shared broker: bad payloads are refused and counted by
//! reason without stopping the collector; a second delivery of an event is stored once.

use std::time::Duration;

use netmon_events::{Event, SilenceReason, encode_batch};
use netmon_tests::broker::mosquitto_pub;
use netmon_tests::{Collector, Scratch, publish, shared_url, unique, wait_for};
use serde_json::Value;

use netmon_events::testing::{Boot, events_topic, round, started, target};

/// Reads `/api/v1/intake`.
fn intake(collector: &Collector) -> Value {
    collector.get_json("/api/v1/intake").unwrap()
}

fn counter(intake: &Value, path: &[&str]) -> u64 {
    let mut value = intake;
    for key in path {
        value = &value[*key];
    }
    value
        .as_u64()
        .unwrap_or_else(|| panic!("intake has no counter {path:?}: {intake}"))
}

#[test]
fn intake_rejects_bad_payloads_and_keeps_working() {
    let scratch = Scratch::new("intake").unwrap();
    let province = unique("intake");
    let mut collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let url = shared_url();
    let topic = events_topic(&province, "thon-giang-trung");
    let before = intake(&collector);

    // 1. Not JSON.
    publish(&url, &topic, b"{\"v\":1,\"agent\":").unwrap();
    // 2. Larger than 256 KiB, from a file.
    let big = scratch
        .write("oversized.json", vec![b' '; 300 * 1024])
        .unwrap();
    netmon_tests::lab::run(mosquitto_pub(&url, &topic).unwrap().arg("-f").arg(&big)).unwrap();
    // 3. An envelope from another agent than the topic's.
    let mut other = Boot::new("thon-tho-lien");
    publish(&url, &topic, &encode_batch(&[other.next(started())])).unwrap();
    // 4. A collector-made event sent by an agent.
    let mut agent = Boot::new("thon-giang-trung");
    let forged = agent.next(Event::AgentWentSilent {
        reason: SilenceReason::LastWill,
        last_seen: None,
    });
    publish(&url, &topic, &encode_batch(&[forged])).unwrap();
    // 5. A topic whose agent level is not a valid id.
    let mut bad_id = Boot::new("thon-phuoc-chanh");
    let bad_topic = format!("netmon/v1/{province}/thôn Phước Chánh/events");
    publish(&url, &bad_topic, &encode_batch(&[bad_id.next(started())])).unwrap();

    let reasons = [
        "malformed",
        "oversized",
        "agent_mismatch",
        "forbidden_type",
        "foreign_topic",
    ];
    let after = wait_for(
        "the 5 refusals in /api/v1/intake",
        Duration::from_secs(15),
        || {
            let now = intake(&collector);
            let seen = counter(&now, &["rejected"]) - counter(&before, &["rejected"]);
            (seen >= 5).then_some(now)
        },
    );
    for reason in reasons {
        let path = ["rejected_by_reason", reason];
        assert_eq!(
            counter(&after, &path) - counter(&before, &path),
            1,
            "{reason}: before {before}, after {after}"
        );
    }
    assert_eq!(
        counter(&after, &["rejected"]) - counter(&before, &["rejected"]),
        5,
        "{after}"
    );
    assert_eq!(
        counter(&after, &["events_stored"]),
        counter(&before, &["events_stored"]),
        "nothing refused is stored: {after}"
    );

    // Still working: a valid event is stored, /healthz answers.
    let commune = target("UBND xã Cẩm Tú", "10.20.0.1");
    let mut good = Boot::new("thon-giang-trung");
    let valid = good.next(round(&commune, 3));
    publish(&url, &topic, &encode_batch(std::slice::from_ref(&valid))).unwrap();
    let stored = wait_for(
        "the valid event in the store",
        Duration::from_secs(15),
        || {
            let events = collector.events(&["--agent", "thon-giang-trung"]).unwrap();
            (!events.is_empty()).then_some(events)
        },
    );
    assert_eq!(stored.len(), 1, "only the valid event is stored");
    assert_eq!(stored[0].envelope, valid);
    for agent in ["thon-tho-lien", "thon-phuoc-chanh"] {
        assert!(
            collector.events(&["--agent", agent]).unwrap().is_empty(),
            "{agent} stored"
        );
    }
    assert_eq!(collector.get("/healthz").unwrap().0, 200);
    collector.proc.assert_running().unwrap();
}

#[test]
fn duplicate_delivery_is_stored_once() {
    let scratch = Scratch::new("duplicate").unwrap();
    let province = unique("dup");
    let collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let url = shared_url();
    let topic = events_topic(&province, "thon-tho-lien");
    let before = intake(&collector);

    let mut boot = Boot::new("thon-tho-lien");
    let payload = encode_batch(&[boot.next(started())]);
    publish(&url, &topic, &payload).unwrap();
    publish(&url, &topic, &payload).unwrap();

    let after = wait_for("two deliveries counted", Duration::from_secs(15), || {
        let now = intake(&collector);
        let handled = counter(&now, &["events_stored"]) + counter(&now, &["duplicates"])
            - counter(&before, &["events_stored"])
            - counter(&before, &["duplicates"]);
        (handled >= 2).then_some(now)
    });
    assert_eq!(
        counter(&after, &["duplicates"]) - counter(&before, &["duplicates"]),
        1,
        "{after}"
    );
    assert_eq!(
        counter(&after, &["events_stored"]) - counter(&before, &["events_stored"]),
        1,
        "{after}"
    );
    let rows = collector.events(&["--agent", "thon-tho-lien"]).unwrap();
    assert_eq!(rows.len(), 1, "one row for one event delivered twice");
}

/// The contract of `events --json`: each line is the envelope (deserialisable as an `Envelope`)
/// plus the store's keys under `stored`: `id`, `province`, `received`.
#[test]
fn events_json_lines_deserialise_as_envelopes() {
    let scratch = Scratch::new("events-json").unwrap();
    let province = unique("json");
    let collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let commune = target("UBND xã Cẩm Tú", "10.20.0.1");
    let mut boot = Boot::new("thon-giang-trung");
    let sent = vec![boot.next(started()), boot.next(round(&commune, 2))];
    publish(
        &shared_url(),
        &events_topic(&province, "thon-giang-trung"),
        &encode_batch(&sent),
    )
    .unwrap();
    let stored = wait_for("both events in the store", Duration::from_secs(15), || {
        let events = collector.events(&["--agent", "thon-giang-trung"]).unwrap();
        (events.len() == 2).then_some(events)
    });
    for (event, expected) in stored.iter().zip(&sent) {
        assert_eq!(&event.envelope, expected);
        for key in ["id", "province", "received"] {
            assert!(event.meta.get(key).is_some(), "no {key}: {}", event.line);
        }
        let whole = serde_json::from_str::<netmon_events::Envelope>(&event.line);
        assert!(
            whole.as_ref().is_ok_and(|e| e == expected),
            "an `events --json` line must deserialise as the envelope it stores: {whole:?}\n{}",
            event.line
        );
    }
}
