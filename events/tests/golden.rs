//! Golden fixtures: every event type has a JSON file in `fixtures/` that must decode, validate
//! and re-encode to the same JSON. A change that breaks one of these breaks deployed agents.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use netmon_events::{
    Ack, AgentId, AgentStatus, BootAck, BootId, DescribedTarget, DownReason, Envelope, Event,
    HeaderTargets, LinkRole, MAX_INT, PayloadError, Sender, Target, decode_batch,
    decode_batch_with, encode_batch, encode_batch_from, encode_compact,
};
use serde_json::Value;

fn fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture");
            (p.file_stem().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_round_trips_exactly() {
    for (name, text) in fixtures() {
        let envelope: Envelope =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        envelope
            .validate()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = serde_json::to_value(&envelope).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(again, original, "{name} does not re-encode to itself");
        assert!(name.starts_with(envelope.event.type_name()), "{name}");
    }
}

#[test]
fn every_event_type_has_a_fixture() {
    let names: Vec<String> = fixtures().into_iter().map(|(n, _)| n).collect();
    for ty in Event::TYPE_NAMES {
        assert!(names.iter().any(|n| n == ty), "no fixture for {ty}");
    }
}

#[test]
fn fixture_fields_mean_what_the_contract_says() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/link_came_back.json"),
    )
    .unwrap();
    let envelope: Envelope = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope.agent.as_str(), "thanh-hoa-cam-tu-giang-trung");
    assert_eq!(envelope.seq, 20);
    assert_eq!(envelope.mono_ms, 70_415);
    assert_eq!(
        envelope.event,
        Event::LinkCameBack {
            target: Target {
                name: "UBND xã Cẩm Tú".into(),
                address: "10.20.0.1".parse().unwrap(),
                role: LinkRole::Commune,
            },
            down_since: Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 3).unwrap()
                + chrono::Duration::milliseconds(1),
            down_for_ms: 67_002,
            reason: DownReason::NoReply,
        }
    );
}

fn sample(seq: u64) -> Envelope {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/probe_round_completed.json"),
    )
    .unwrap();
    let mut envelope: Envelope = serde_json::from_str(&text).unwrap();
    envelope.seq = seq;
    envelope
}

#[test]
fn batches_round_trip_and_single_objects_are_accepted() {
    let batch = vec![sample(1), sample(2), sample(3)];
    let decoded: Vec<Envelope> = decode_batch(&encode_batch(&batch))
        .unwrap()
        .events
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(decoded, batch);

    let single = serde_json::to_vec(&sample(9)).unwrap();
    let decoded = decode_batch(&single).unwrap();
    assert_eq!(decoded.sender, None);
    assert_eq!(decoded.events.len(), 1);
    assert_eq!(decoded.events[0].as_ref().unwrap().seq, 9);

    let sender = Sender {
        boot: "b2".parse().unwrap(),
        mono_ms: 123_456,
    };
    let payload = encode_batch_from(&sender, &batch);
    let text = String::from_utf8(payload.clone()).unwrap();
    assert!(
        text.starts_with(r#"{"sender":{"boot":"b2","mono_ms":123456},"events":[{"v":1,"#),
        "{text}"
    );
    let decoded = decode_batch(&payload).unwrap();
    assert_eq!(decoded.sender, Some(sender));
    let events: Vec<Envelope> = decoded.events.into_iter().map(Result::unwrap).collect();
    assert_eq!(events, batch);
}

#[test]
fn one_bad_event_does_not_cost_its_neighbours() {
    let mut bad = serde_json::to_value(sample(2)).unwrap();
    bad["type"] = "telepathy_sampled".into();
    let mut invalid = sample(3);
    if let Event::ProbeRoundCompleted { received, .. } = &mut invalid.event {
        *received = 99;
    }
    let payload = serde_json::to_vec(&serde_json::json!([
        serde_json::to_value(sample(1)).unwrap(),
        bad,
        serde_json::to_value(invalid).unwrap(),
    ]))
    .unwrap();
    let decoded = decode_batch(&payload).unwrap().events;
    assert!(decoded[0].is_ok());
    assert!(matches!(
        decoded[1],
        Err(PayloadError::Element { index: 1, .. })
    ));
    let err = decoded[2].as_ref().unwrap_err().to_string();
    assert!(err.contains("received") && err.contains("seq 3"), "{err}");
}

#[test]
fn hostile_payloads_are_refused_with_a_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "not a batch"),
        (b"42".to_vec(), "expected a batch object"),
        (b"[]".to_vec(), "empty"),
        (vec![b' '; 300 * 1024], "exceeds the limit"),
        (
            format!("[{}]", vec!["{}"; 1001].join(",")).into_bytes(),
            "exceeds the limit of 1000",
        ),
        (b"\xff\xfe{}".to_vec(), "not a batch"),
    ];
    for (payload, expected) in cases {
        let err = decode_batch(&payload).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
    }
    let mut wrong_agent = serde_json::to_value(sample(1)).unwrap();
    wrong_agent["agent"] = "../../etc/passwd".into();
    let payload = serde_json::to_vec(&wrong_agent).unwrap();
    assert!(decode_batch(&payload).is_err());
    let mut zero = sample(1);
    zero.seq = 0;
    let decoded = decode_batch(&encode_batch(&[zero])).unwrap().events;
    assert!(decoded[0].is_err());
}

#[test]
fn status_messages() {
    assert_eq!(AgentStatus::Offline.to_json(), br#"{"status":"offline"}"#);
    let online = AgentStatus::Online {
        boot: "b1".parse().unwrap(),
        version: "0.1.0".into(),
    };
    let text = String::from_utf8(online.to_json()).unwrap();
    assert_eq!(text, r#"{"status":"online","boot":"b1","version":"0.1.0"}"#);
    assert_eq!(AgentStatus::from_json(text.as_bytes()).unwrap(), online);
}

#[test]
fn one_bad_event_in_a_sender_batch_does_not_cost_its_neighbours() {
    let mut bad = serde_json::to_value(sample(2)).unwrap();
    bad["loss_pct"] = 250.0.into();
    let payload = serde_json::to_vec(&serde_json::json!({
        "sender": {"boot": "b1", "mono_ms": 5},
        "events": [serde_json::to_value(sample(1)).unwrap(), bad],
    }))
    .unwrap();
    let decoded = decode_batch(&payload).unwrap();
    assert_eq!(decoded.sender.unwrap().mono_ms, 5);
    assert!(decoded.events[0].is_ok());
    assert!(decoded.events[1].is_err());
}

#[test]
fn acks_round_trip_and_are_bounded() {
    let ack = Ack {
        acks: vec![
            BootAck {
                boot: "b1".parse().unwrap(),
                seq: 120,
            },
            BootAck {
                boot: "b2".parse().unwrap(),
                seq: 7,
            },
        ],
    };
    let text = String::from_utf8(ack.to_json()).unwrap();
    assert_eq!(
        text,
        r#"{"acks":[{"boot":"b1","seq":120},{"boot":"b2","seq":7}]}"#
    );
    let back = Ack::from_json(text.as_bytes()).unwrap();
    assert_eq!(back.seq_for(&"b2".parse().unwrap()), Some(7));
    assert_eq!(back.seq_for(&"b3".parse().unwrap()), None);
    let many = format!(
        r#"{{"acks":[{}]}}"#,
        vec![r#"{"boot":"b","seq":1}"#; 17].join(",")
    );
    assert!(Ack::from_json(many.as_bytes()).is_err());
}

#[test]
fn journal_overflow_ranges_are_checked() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/journal_overflowed.json"),
    )
    .unwrap();
    let good: Envelope = serde_json::from_str(&text).unwrap();
    for (first, last, count) in [(0, 5, 5), (6, 5, 1), (1, 5, 6), (1, 5, 0)] {
        let mut bad = good.clone();
        if let Event::JournalOverflowed {
            first_seq,
            last_seq,
            count: c,
            ..
        } = &mut bad.event
        {
            (*first_seq, *last_seq, *c) = (first, last, count);
        }
        assert!(bad.validate().is_err(), "{first}..={last} count {count}");
    }
}

/// Every fixture with `field` (a top-level key or one of the event's) set to `value`, of the
/// fixtures that have it.
fn with_number(field: &str, value: u64) -> Vec<(String, Value)> {
    fixtures()
        .into_iter()
        .filter_map(|(name, text)| {
            let mut json: Value = serde_json::from_str(&text).unwrap();
            let slot = json.get_mut(field)?;
            if !slot.is_u64() {
                return None;
            }
            *slot = value.into();
            Some((name, json))
        })
        .collect()
}

/// The poison message of the audit (F1): a seq that SQLite cannot hold passed validation and
/// stalled the collector. Every integer of the contract is bounded by `MAX_INT` (`i64::MAX`).
#[test]
fn integers_beyond_what_the_store_holds_are_refused() {
    let fields = [
        "seq",
        "mono_ms",
        "uptime_s",
        "backlog",
        "down_for_ms",
        "first_seq",
        "last_seq",
        "count",
        "interval_ms",
        "speed_bps",
        "previous_uptime_s",
        "silent_for_ms",
        "lost_for_ms",
        "window_ms",
        "down_ms",
    ];
    let mut checked = 0;
    for field in fields {
        for value in [MAX_INT + 1, u64::MAX] {
            for (name, json) in with_number(field, value) {
                let collector_made = json["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("alert") || t.starts_with("notification"));
                if collector_made {
                    continue;
                }
                let envelope: Envelope = serde_json::from_value(json).unwrap();
                let refused = envelope.validate();
                assert!(refused.is_err(), "{name}: {field} = {value} passed");
                checked += 1;
            }
        }
        // At the bound itself the fields that are free (not seq ranges, not part of a window)
        // still pass.
        if !["first_seq", "last_seq", "count", "down_ms"].contains(&field) {
            for (name, json) in with_number(field, MAX_INT) {
                let envelope: Envelope = serde_json::from_value(json).unwrap();
                if envelope.event.is_collector_made() {
                    continue;
                }
                assert_eq!(envelope.validate(), Ok(()), "{name}: {field} = MAX_INT");
            }
        }
    }
    assert!(checked >= 2 * fields.len(), "only {checked} cases checked");
    // The audit's second vector: an overflow range reaching 2^63.
    let text = r#"{"v":1,"agent":"agent-p","boot":"b1","seq":1,"time":"2026-12-02T02:00:00Z",
        "mono_ms":1,"type":"journal_overflowed","dropped_boot":"b1","first_seq":2,
        "last_seq":9223372036854775808,"count":1}"#;
    let envelope: Envelope = serde_json::from_str(text).unwrap();
    assert!(envelope.validate().is_err());
}

#[test]
fn leap_seconds_are_refused() {
    let mut json: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/link_went_down.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let envelope: Envelope = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(envelope.validate(), Ok(()));
    json["time"] = "2026-12-31T23:59:60Z".into();
    let leap: Envelope = serde_json::from_value(json.clone()).unwrap();
    assert!(leap.validate().is_err());
    json["time"] = "2026-12-31T23:59:59Z".into();
    json["since"] = "2026-12-31T23:59:60.500Z".into();
    let leap: Envelope = serde_json::from_value(json.clone()).unwrap();
    assert!(leap.validate().is_err());
    // Found by fuzzing: offsets that move a time out of 0000-9999 in UTC.
    json["since"] = "2026-12-31T23:59:00Z".into();
    for time in ["0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999-23:59"] {
        json["time"] = time.into();
        let out: Envelope = serde_json::from_value(json.clone()).unwrap();
        assert!(out.validate().is_err(), "{time}");
    }
    json["time"] = "0000-01-01T00:00:00Z".into();
    let edge: Envelope = serde_json::from_value(json).unwrap();
    assert_eq!(edge.validate(), Ok(()));
}

/// Names reach terminals, line-protocol tags and notifications: no control, bidirectional or
/// zero-width characters anywhere (F4, F10), cellular strings included.
#[test]
fn names_with_hidden_characters_are_refused() {
    let cases = [
        ("probe_round_completed.json", "/target/name"),
        ("probe_window_completed.json", "/target/name"),
        ("targets_described.json", "/targets/1/name"),
        ("cellular_signal_sampled.json", "/operator"),
        ("cellular_signal_sampled.json", "/band"),
        ("cellular_signal_sampled.json", "/cell_id"),
        ("cellular_signal_sampled.json", "/plmn"),
        ("cellular_operator_changed.json", "/operator"),
        ("interface_counters_sampled.json", "/interface/name"),
    ];
    for (fixture, pointer) in cases {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(fixture),
        )
        .unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert!(
            json.pointer(pointer).is_some(),
            "{fixture} has no {pointer}"
        );
        for bad in [
            "Viettel\nprobe x=1",
            "\u{1b}]0;owned\u{7}",
            "a\u{202e}b",
            "a\u{200b}b",
            "a\u{2028}b",
        ] {
            let mut json = json.clone();
            *json.pointer_mut(pointer).unwrap() = bad.into();
            let envelope: Envelope = serde_json::from_value(json).unwrap();
            assert!(
                envelope.validate().is_err(),
                "{fixture} {pointer} = {bad:?} passed"
            );
        }
    }
}

fn fixture(name: &str) -> Envelope {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A window's numbers must agree with each other: counts within counts, RTTs ordered, nine
/// percentiles between min and max, all RTTs present exactly when something came back.
#[test]
fn probe_windows_are_checked() {
    let good = fixture("probe_window_completed.json");
    assert_eq!(good.validate(), Ok(()));
    assert_eq!(
        fixture("probe_window_completed_no_reply.json").validate(),
        Ok(())
    );
    let eight = serde_json::json!([1.24, 1.3, 1.35, 1.39, 1.43, 1.48, 1.55, 1.66]);
    let falling = serde_json::json!([1.24, 1.3, 1.35, 1.43, 1.39, 1.48, 1.55, 1.66, 1.92]);
    let cases: [(&str, &str, Value); 15] = [
        ("window_ms", "window_ms", 0.into()),
        ("down_ms", "down_ms", 60_001.into()),
        ("failed_rounds", "failed_rounds", 61.into()),
        ("longest_failed_run", "longest_failed_run", 5.into()),
        ("longest_failed_run", "longest_failed_run", 0.into()),
        ("received", "received", 181.into()),
        ("sent", "sent", 60_001.into()),
        ("loss_pct", "loss_pct", 100.5.into()),
        ("rtt_avg_ms", "rtt_min_ms", 1.6.into()),
        ("rtt_avg_ms", "rtt_max_ms", 1.5.into()),
        ("rtt_mdev_ms", "rtt_mdev_ms", (-0.1).into()),
        ("rtt_avg_ms", "rtt_mdev_ms", Value::Null),
        ("rtt_avg_ms", "received", 0.into()),
        ("rtt_pct_ms", "rtt_pct_ms", eight),
        ("rtt_pct_ms", "rtt_pct_ms", falling),
    ];
    let json = serde_json::to_value(&good).unwrap();
    for (expected, key, value) in cases {
        let mut bad = json.clone();
        bad[key] = value;
        let bad: Envelope = serde_json::from_value(bad).unwrap();
        match bad.validate() {
            Err(netmon_events::InvalidEvent::Field { field, .. }) => {
                assert_eq!(field, expected, "{key} in {:?}", bad.event)
            }
            other => panic!("{key}: {other:?} for {:?}", bad.event),
        }
    }
    let mut above = json;
    above["rtt_pct_ms"][8] = 4.88.into();
    let above: Envelope = serde_json::from_value(above).unwrap();
    assert!(above.validate().is_err(), "a percentile above max passed");
}

#[test]
fn coverage_rollups_are_checked() {
    let good = fixture("coverage_day_rolled_up.json");
    assert_eq!(good.validate(), Ok(()));
    let Event::CoverageDayRolledUp { day, operators, .. } = &good.event else {
        panic!("{:?}", good.event);
    };
    assert_eq!(day.to_string(), "2026-11-23");
    // The day is whole: 24 h of measured time on the one operator.
    assert_eq!(operators[0].ms.iter().sum::<u64>(), 86_400_000);
    assert_eq!(operators[0].quality_ms.iter().sum::<u64>(), 86_400_000);
    let json = serde_json::to_value(&good).unwrap();
    let cases: [(&str, &str, Value); 4] = [
        (
            "gaps_ms",
            "/carry/gaps_ms",
            serde_json::json!(vec![60_000; 16]),
        ),
        ("plmn", "/operators/0/plmn", "452-04-9999".into()),
        (
            "rsrp",
            "/operators/0/rsrp/counts",
            serde_json::json!(vec![1; 257]),
        ),
        ("ms", "/operators/0/ms/0", (u64::MAX / 2 + 1).into()),
    ];
    for (expected, pointer, value) in cases {
        let mut bad = json.clone();
        *bad.pointer_mut(pointer).unwrap() = value;
        let bad: Envelope = serde_json::from_value(bad).unwrap();
        match bad.validate() {
            Err(netmon_events::InvalidEvent::Field { field, .. }) => {
                assert_eq!(field, expected, "{pointer}")
            }
            other => panic!("{pointer}: {other:?}"),
        }
    }
}

#[test]
fn target_descriptions_are_checked() {
    let good = fixture("targets_described.json");
    assert_eq!(good.validate(), Ok(()));
    let Event::TargetsDescribed { targets } = &good.event else {
        panic!("{:?}", good.event);
    };
    let many: Vec<DescribedTarget> = (1..=257)
        .map(|key| DescribedTarget {
            key,
            target: targets[0].target.clone(),
        })
        .collect();
    let mut twice = targets.clone();
    twice[2].key = 1;
    let mut zero = targets.clone();
    zero[0].key = 0;
    let mut hidden = targets.clone();
    hidden[1].target.name = "UBND\u{202e}xã".into();
    let cases = [
        (Vec::new(), "outside 1-256"),
        (many.clone(), "257 targets is outside 1-256"),
        (twice, "key 1 is described twice"),
        (zero, "keys start at 1"),
        (hidden, "U+202E"),
    ];
    for (targets, expected) in cases {
        let bad = Envelope {
            event: Event::TargetsDescribed { targets },
            ..good.clone()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} should say {expected:?}");
    }
    let most = Envelope {
        event: Event::TargetsDescribed {
            targets: many[..256].to_vec(),
        },
        ..good
    };
    assert_eq!(most.validate(), Ok(()));
}

/// The compact form of `fixtures/batches/compact.json` stands for the fixtures of its events: it
/// decodes to exactly those envelopes, with or without its header's targets (the batch's
/// `targets_described` resolves them), and the encoder writes it.
#[test]
fn the_compact_batch_fixture_expands_to_the_event_fixtures() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/batches/compact.json"),
    )
    .unwrap();
    let expected: Vec<Envelope> = [
        "targets_described.json",
        "link_went_down.json",
        "link_came_back.json",
        "probe_window_completed.json",
        "probe_window_completed_no_reply.json",
    ]
    .into_iter()
    .map(fixture)
    .collect();
    let batch = decode_batch(text.as_bytes()).unwrap();
    let sender = batch.sender.clone().unwrap();
    assert_eq!(sender.mono_ms, 150_500);
    let decoded: Vec<Envelope> = batch.events.into_iter().map(Result::unwrap).collect();
    assert_eq!(decoded, expected);
    // What the sender form of the same events decodes to.
    let old = decode_batch(&encode_batch_from(&sender, &expected)).unwrap();
    let old: Vec<Envelope> = old.events.into_iter().map(Result::unwrap).collect();
    assert_eq!(decoded, old);

    let Event::TargetsDescribed { targets } = &expected[0].event else {
        panic!("{:?}", expected[0].event);
    };
    let written = encode_compact(&sender, &expected, targets, HeaderTargets::Include).unwrap();
    let written: Value = serde_json::from_slice(&written).unwrap();
    let original: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(written, original);

    let mut bare = original;
    bare.as_object_mut().unwrap().remove("targets");
    let bare = serde_json::to_vec(&bare).unwrap();
    // A receiver that knows nothing of the boot.
    let book: HashMap<(AgentId, BootId), Vec<DescribedTarget>> = HashMap::new();
    let decoded = decode_batch_with(&bare, &book).unwrap();
    let decoded: Vec<Envelope> = decoded.events.into_iter().map(Result::unwrap).collect();
    assert_eq!(decoded, expected);
    // Without the header's targets and the batch's description, nothing resolves.
    let mut undescribed: Value = serde_json::from_slice(&bare).unwrap();
    undescribed["events"].as_array_mut().unwrap().remove(0);
    let undescribed = serde_json::to_vec(&undescribed).unwrap();
    let events = decode_batch(&undescribed).unwrap().events;
    assert!(
        events.iter().all(|e| e
            .as_ref()
            .is_err_and(|e| e.to_string().contains("unknown target key"))),
        "{events:?}"
    );
}
