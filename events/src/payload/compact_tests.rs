#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::envelope::SCHEMA_VERSION;
use crate::event::{DownReason, Event, LinkRole};
use crate::payload::{decode_batch, decode_batch_with, encode_batch_from};

fn target(name: &str, address: &str) -> Target {
    Target {
        name: name.into(),
        address: address.parse().unwrap(),
        role: LinkRole::Commune,
    }
}

fn targets() -> Vec<DescribedTarget> {
    DescribedTarget::numbered(&[
        target("Cổng thôn", "192.168.1.1"),
        target("UBND xã Cẩm Tú", "10.20.0.1"),
    ])
}

fn at(seq: u64, event: Event) -> Envelope {
    Envelope {
        v: SCHEMA_VERSION,
        agent: "agent-a".parse().unwrap(),
        boot: "b1".parse().unwrap(),
        seq,
        time: DateTime::<Utc>::from_timestamp_millis(1_795_000_000_000 + seq as i64 * 1000)
            .unwrap(),
        mono_ms: seq * 1000,
        event,
    }
}

fn window(target: &Target) -> Event {
    Event::ProbeWindowCompleted {
        target: target.clone(),
        window_ms: 60_000,
        rounds: 60,
        failed_rounds: 0,
        longest_failed_run: 0,
        down_ms: 0,
        sent: 180,
        received: 180,
        loss_pct: 0.0,
        rtt_min_ms: Some(1.0),
        rtt_avg_ms: Some(1.5),
        rtt_max_ms: Some(2.0),
        rtt_mdev_ms: Some(0.2),
        rtt_pct_ms: Some(vec![1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]),
    }
}

/// One boot's events: the description, then events about each target and one about none.
fn boot_events() -> Vec<Envelope> {
    let table = targets();
    let [gateway, commune] = [&table[0].target, &table[1].target];
    let since = DateTime::<Utc>::from_timestamp_millis(1_795_000_004_000).unwrap();
    vec![
        at(
            1,
            Event::AgentStarted {
                version: "0.2.0".into(),
                targets: 2,
            },
        ),
        at(
            2,
            Event::TargetsDescribed {
                targets: table.clone(),
            },
        ),
        at(3, window(gateway)),
        at(
            4,
            Event::LinkWentDown {
                target: commune.clone(),
                since,
                reason: DownReason::NoReply,
                failed_rounds: 3,
            },
        ),
        at(
            5,
            Event::LinkCameBack {
                target: commune.clone(),
                down_since: since,
                down_for_ms: 2000,
                reason: DownReason::NoReply,
            },
        ),
        at(
            6,
            Event::ProbeRoundCompleted {
                target: commune.clone(),
                sent: 3,
                received: 0,
                rtt_min_ms: None,
                rtt_avg_ms: None,
                rtt_max_ms: None,
                rtt_mdev_ms: None,
                loss_pct: 100.0,
            },
        ),
        at(
            7,
            Event::AgentHeartbeat {
                uptime_s: 7,
                backlog: 0,
            },
        ),
    ]
}

fn sender() -> Sender {
    Sender {
        boot: "b1".parse().unwrap(),
        mono_ms: 8000,
    }
}

fn valid(batch: Batch) -> Vec<Envelope> {
    batch.events.into_iter().map(Result::unwrap).collect()
}

#[test]
fn a_compact_batch_decodes_to_what_the_sender_form_does() {
    let events = boot_events();
    let old = decode_batch(&encode_batch_from(&sender(), &events)).unwrap();
    assert_eq!(old.sender, Some(sender()));
    let old = valid(old);
    assert_eq!(old, events);
    for header in [HeaderTargets::Include, HeaderTargets::Omit] {
        let payload = encode_compact(&sender(), &events, &targets(), header).unwrap();
        let batch = decode_batch(&payload).unwrap();
        assert_eq!(batch.sender, Some(sender()));
        assert_eq!(valid(batch), old, "{header:?}");
    }
}

#[test]
fn compact_events_leave_the_header_fields_out_and_name_targets_by_key() {
    let events = boot_events();
    let payload = encode_compact(&sender(), &events, &targets(), HeaderTargets::Include).unwrap();
    let json: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(json["agent"], "agent-a");
    assert_eq!(json["boot"], "b1");
    assert_eq!(json["v"], 1);
    assert_eq!(json["sender"], json!({"boot": "b1", "mono_ms": 8000}));
    assert_eq!(json["targets"], serde_json::to_value(targets()).unwrap());
    let compact = json["events"].as_array().unwrap();
    for event in compact {
        for name in ["v", "agent", "boot"] {
            assert!(event.get(name).is_none(), "{name} in {event}");
        }
    }
    let keys: Vec<&Value> = compact.iter().map(|e| &e["target"]).collect();
    let none = &Value::Null;
    assert_eq!(
        keys,
        [none, none, &json!(1), &json!(2), &json!(2), &json!(2), none]
    );
    assert!(payload.len() * 10 < encode_batch_from(&sender(), &events).len() * 9);

    let omitted = encode_compact(&sender(), &events, &targets(), HeaderTargets::Omit).unwrap();
    let json: Value = serde_json::from_slice(&omitted).unwrap();
    assert!(json.get("targets").is_none(), "{json}");
}

/// A window about each target of [`targets`].
fn windows() -> Vec<Envelope> {
    let table = targets();
    vec![
        at(3, window(&table[0].target)),
        at(4, window(&table[1].target)),
    ]
}

/// A receiver that knows `targets` for agent-a's `boot`.
fn book(
    boot: &str,
    targets: Vec<DescribedTarget>,
) -> HashMap<(AgentId, BootId), Vec<DescribedTarget>> {
    HashMap::from([(("agent-a".parse().unwrap(), boot.parse().unwrap()), targets)])
}

#[test]
fn keys_resolve_from_the_header_then_the_batch_then_the_book() {
    let windows = windows();
    let omitted = encode_compact(&sender(), &windows, &targets(), HeaderTargets::Omit).unwrap();
    assert_eq!(
        valid(decode_batch_with(&omitted, &book("b1", targets())).unwrap()),
        windows
    );

    // The header wins over the book (a boot's targets never change; this only shows the order).
    let mut swapped = targets();
    (swapped[0].key, swapped[1].key) = (2, 1);
    let included = encode_compact(&sender(), &windows, &targets(), HeaderTargets::Include).unwrap();
    assert_eq!(
        valid(decode_batch_with(&included, &book("b1", swapped)).unwrap()),
        windows
    );

    // A description in the batch resolves its other events, before or after it.
    let mut described = windows.clone();
    described.push(at(5, Event::TargetsDescribed { targets: targets() }));
    let payload = encode_compact(&sender(), &described, &targets(), HeaderTargets::Omit).unwrap();
    assert_eq!(valid(decode_batch(&payload).unwrap()), described);

    // A book for another boot does not help.
    let batch = decode_batch_with(&omitted, &book("b0", targets())).unwrap();
    assert!(batch.events.iter().all(Result::is_err));
}

#[test]
fn an_unknown_key_is_refused_with_the_events_key() {
    let windows = windows();
    let payload = encode_compact(&sender(), &windows, &targets(), HeaderTargets::Omit).unwrap();
    let batch = decode_batch(&payload).unwrap();
    assert_eq!(batch.events.len(), 2);
    for (item, (seq, key)) in batch.events.into_iter().zip([(3, 1), (4, 2)]) {
        let err = item.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("unknown target key {key} for boot b1")),
            "{err}"
        );
        match err {
            PayloadError::Invalid {
                agent,
                boot,
                seq: s,
                source,
                ..
            } => {
                assert_eq!((agent.as_str(), boot.as_str(), s), ("agent-a", "b1", seq));
                assert_eq!(
                    source,
                    InvalidEvent::UnknownTarget {
                        key,
                        boot: "b1".parse().unwrap()
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_target_missing_from_the_table_is_written_in_full() {
    let stranger = target("Cloudflare", "1.1.1.1");
    let events = vec![
        at(3, window(&stranger)),
        at(4, window(&targets()[1].target)),
    ];
    let payload = encode_compact(&sender(), &events, &targets(), HeaderTargets::Omit).unwrap();
    let json: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(json["events"][0]["target"]["name"], "Cloudflare");
    assert_eq!(json["events"][1]["target"], 2);
    // Without any table every target is in full, and nothing needs resolving.
    let payload = encode_compact(&sender(), &events, &[], HeaderTargets::Include).unwrap();
    let json: Value = serde_json::from_slice(&payload).unwrap();
    assert!(json.get("targets").is_none());
    assert_eq!(valid(decode_batch(&payload).unwrap()), events);
}

#[test]
fn the_encoder_refuses_what_is_not_one_boot() {
    let events = boot_events();
    assert!(matches!(
        encode_compact(&sender(), &[], &targets(), HeaderTargets::Include),
        Err(EncodeError::Empty)
    ));
    let mut mixed = events.clone();
    mixed[3].boot = "b0".parse().unwrap();
    let err = encode_compact(&sender(), &mixed, &targets(), HeaderTargets::Include).unwrap_err();
    assert!(
        matches!(err, EncodeError::MixedBoots { seq: 4, .. }),
        "{err}"
    );
    let mut mixed = events.clone();
    mixed[1].agent = "agent-b".parse().unwrap();
    assert!(encode_compact(&sender(), &mixed, &targets(), HeaderTargets::Omit).is_err());
    let mut twice = targets();
    twice[1].key = 1;
    let err = encode_compact(&sender(), &events, &twice, HeaderTargets::Include).unwrap_err();
    assert!(err.to_string().contains("described twice"), "{err}");
}

/// `payload` with `change` applied to its JSON.
fn edited(change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let events = boot_events();
    let payload = encode_compact(&sender(), &events, &targets(), HeaderTargets::Include).unwrap();
    let mut json: Value = serde_json::from_slice(&payload).unwrap();
    change(&mut json);
    serde_json::to_vec(&json).unwrap()
}

#[test]
fn hostile_headers_refuse_the_whole_batch() {
    let many: Vec<Value> = (1..=257)
        .map(|key| json!({"key": key, "name": "x", "address": "10.0.0.1", "role": "other"}))
        .collect();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edited(|j| j["targets"][1]["key"] = 1.into()),
            "key 1 is described twice",
        ),
        (edited(|j| j["targets"] = many.into()), "257 targets"),
        (edited(|j| j["targets"] = json!([])), "0 targets"),
        (
            edited(|j| j["targets"][0]["key"] = 0.into()),
            "keys start at 1",
        ),
        (
            edited(|j| j["targets"][0]["name"] = "a\u{202e}b".into()),
            "U+202E",
        ),
        (
            edited(|j| j["targets"][0]["key"] = 65_536.into()),
            "not a batch",
        ),
        (edited(|j| j["agent"] = "../etc".into()), "not a batch"),
        (edited(|j| j["boot"] = Value::Null), "not a batch"),
        (edited(|j| j["events"] = json!([])), "empty"),
        (
            edited(|j| j["events"] = vec![json!({}); 1001].into()),
            "exceeds the limit of 1000",
        ),
    ];
    for (payload, expected) in cases {
        let err = decode_batch(&payload).unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} should say {expected:?}");
    }
}

#[test]
fn hostile_events_cost_only_themselves() {
    type Change = fn(&mut Value);
    let cases: [(Change, &str); 7] = [
        (
            |e| e["agent"] = "agent-b".into(),
            "does not repeat the header's `agent`",
        ),
        (|e| e["v"] = 1.into(), "does not repeat the header's `v`"),
        (|e| e["target"] = (-1).into(), "not a whole number"),
        (|e| e["target"] = 1.5.into(), "not a whole number"),
        (|e| e["target"] = 70_000.into(), "unknown target key 70000"),
        (|e| e["target"] = "1".into(), "event 2 of the batch"),
        (|e| *e = json!(3), "is a JSON object"),
    ];
    for (change, expected) in cases {
        let payload = edited(|j| change(&mut j["events"][2]));
        let events = decode_batch(&payload).unwrap().events;
        assert_eq!(events.len(), 7);
        let err = events[2].as_ref().unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} should say {expected:?}");
        assert!(events.iter().enumerate().all(|(i, e)| i == 2 || e.is_ok()));
    }
    // Validation is the same as in any other form, with the header's key.
    let payload = edited(|j| j["events"][2]["received"] = 181.into());
    let events = decode_batch(&payload).unwrap().events;
    let err = events[2].as_ref().unwrap_err();
    assert!(
        matches!(err, PayloadError::Invalid { seq: 3, agent, .. } if agent.as_str() == "agent-a"),
        "{err}"
    );
    // An unknown key without a readable seq has no key to record.
    let payload = edited(|j| {
        j["events"][2]["target"] = 9.into();
        j["events"][2]["seq"] = "three".into();
    });
    let events = decode_batch(&payload).unwrap().events;
    assert!(matches!(
        events[2],
        Err(PayloadError::Element { index: 2, .. })
    ));
}

#[test]
fn the_expanded_envelopes_carry_the_headers_agent() {
    // The collector compares each envelope's agent with the topic's: the header's must reach it.
    let payload = edited(|j| j["agent"] = "someone-else".into());
    for envelope in valid(decode_batch(&payload).unwrap()) {
        assert_eq!(envelope.agent.as_str(), "someone-else");
    }
}
