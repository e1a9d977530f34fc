//! Golden fixtures: every event type has a JSON file in `fixtures/` that must decode, validate
//! and re-encode to the same JSON. A change that breaks one of these breaks deployed agents.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::Path;

use chrono::{TimeZone, Utc};
use netmon_events::{
    AgentStatus, DownReason, Envelope, Event, LinkRole, PayloadError, Target, decode_batch,
    encode_batch,
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
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(decoded, batch);

    let single = serde_json::to_vec(&sample(9)).unwrap();
    let decoded = decode_batch(&single).unwrap();
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].as_ref().unwrap().seq, 9);
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
    let decoded = decode_batch(&payload).unwrap();
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
        (b"not json".to_vec(), "not a JSON"),
        (b"42".to_vec(), "expected an array"),
        (b"[]".to_vec(), "empty"),
        (vec![b' '; 300 * 1024], "exceeds the limit"),
        (
            format!("[{}]", vec!["{}"; 1001].join(",")).into_bytes(),
            "exceeds the limit of 1000",
        ),
        (b"\xff\xfe{}".to_vec(), "not a JSON"),
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
    let decoded = decode_batch(&encode_batch(&[zero])).unwrap();
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
