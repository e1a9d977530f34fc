//! Tests of the recorder on a real SQLite file: what is stored, refused, counted and made, and
//! that replaying the store rebuilds exactly the live state.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::TimeDelta;
use rumqttc::{Publish, QoS};

use crate::api::{IntakeCounters, RejectedByReason, state_json};
use crate::intake::clock::ClockPolicy;
use crate::intake::recorder::{Now, Recorder};
use crate::store::testkit::{TempDir, base, envelope_json, temp_dir};
use crate::store::{Origin, Query, Store};

const HEARTBEAT: &str = r#""type":"agent_heartbeat","uptime_s":1,"backlog":0"#;
const STARTED: &str = r#""type":"agent_started","version":"0.1.0","targets":1"#;
const SILENCE_AFTER: Duration = Duration::from_secs(35);

fn recorder(dir: &TempDir, province: Option<&str>) -> Recorder {
    let store = Store::open(&dir.path().join("events.db")).unwrap();
    Recorder::rebuild(
        store,
        province.map(|p| p.parse().unwrap()),
        SILENCE_AFTER,
        ClockPolicy::default(),
    )
    .unwrap()
}

fn events(agent: &str, body: String) -> Publish {
    Publish::new(
        format!("netmon/v1/thanh-hoa/{agent}/events"),
        QoS::AtLeastOnce,
        body,
    )
}

fn batch(agent: &str, boot: &str, seqs: &[(u64, &str)]) -> String {
    let items: Vec<String> = seqs
        .iter()
        .map(|(seq, event)| envelope_json(agent, boot, *seq, event))
        .collect();
    format!("[{}]", items.join(","))
}

fn status(agent: &str, body: &str) -> Publish {
    Publish::new(
        format!("netmon/v1/thanh-hoa/{agent}/status"),
        QoS::AtLeastOnce,
        body,
    )
}

/// `seconds` after the timeline's start, with the collector started at the same moment.
fn at(seconds: i64) -> Now {
    Now {
        wall: base() + TimeDelta::seconds(seconds),
        mono_ms: u64::try_from(seconds * 1000).unwrap(),
    }
}

#[test]
fn stores_good_events_and_refuses_the_rest_by_reason() {
    let dir = temp_dir();
    let mut rec = recorder(&dir, Some("thanh-hoa"));
    let good = batch("a", "b1", &[(1, STARTED), (2, HEARTBEAT)]);
    let mixed = format!(
        "[{},{},{},{},{}]",
        envelope_json("a", "b1", 3, HEARTBEAT),
        envelope_json("other", "b1", 4, HEARTBEAT),
        envelope_json(
            "a",
            "b1",
            5,
            r#""type":"agent_went_silent","reason":"last_will""#
        ),
        envelope_json("a", "b1", 0, HEARTBEAT),
        envelope_json("a", "b1", 6, r#""type":"teleported""#),
    );
    let messages = vec![
        events("a", good.clone()),
        events("a", good),                   // duplicate delivery
        events("a", mixed),                  // 1 good, 4 refused
        events("a", "not json".into()),      // malformed
        events("a", " ".repeat(300 * 1024)), // oversized
        Publish::new("netmon/v1/hue/a/events", QoS::AtLeastOnce, "[]"), // other province
        Publish::new("somewhere/else", QoS::AtLeastOnce, "x"), // foreign
        status("a", r#"{"status":"online","boot":"b1","version":"0.1.0"}"#),
    ];
    rec.record(&messages, at(1)).unwrap();
    assert_eq!(
        rec.counters(),
        &IntakeCounters {
            messages: 8,
            messages_rejected: 4,
            events_stored: 3,
            duplicates: 2,
            rejected: 8,
            rejected_by_reason: RejectedByReason {
                foreign_topic: 2,
                oversized: 1,
                malformed: 2,
                agent_mismatch: 1,
                invalid_event: 1,
                unknown_target: 0,
                forbidden_type: 1,
                unstorable: 0,
            },
            silence_events: 0,
            alert_events: 0,
            store_errors: 0,
        }
    );
    let stored = rec.store().query(&Query::default()).unwrap();
    let keys: Vec<_> = stored.iter().map(|e| (e.envelope.seq, e.origin)).collect();
    assert_eq!(
        keys,
        [(1, Origin::Agent), (2, Origin::Agent), (3, Origin::Agent)]
    );
    assert_eq!(stored[0].received, at(1).wall);
    assert_eq!(stored[0].province.as_str(), "thanh-hoa");
    assert_eq!(rec.state().agents.len(), 1);
}

#[test]
fn last_will_makes_one_silence_event_and_only_for_an_online_agent() {
    let dir = temp_dir();
    let mut rec = recorder(&dir, None);
    let offline = r#"{"status":"offline"}"#;
    // Unknown agent: nothing to declare.
    rec.record(&[status("a", offline)], at(1)).unwrap();
    assert_eq!(rec.counters().silence_events, 0);
    // Events then its last will in the same batch: the will sees the batch's events.
    rec.record(
        &[
            events("a", batch("a", "b1", &[(1, STARTED)])),
            status("a", offline),
        ],
        at(2),
    )
    .unwrap();
    assert_eq!(rec.counters().silence_events, 1);
    // A second will (the retained one, redelivered) changes nothing.
    rec.record(&[status("a", offline)], at(3)).unwrap();
    assert_eq!(rec.counters().silence_events, 1);
    let silent = rec
        .store()
        .query(&Query {
            event_type: Some("agent_went_silent".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(silent.len(), 1);
    let e = &silent[0];
    assert_eq!(e.origin, Origin::Collector);
    assert_eq!(e.envelope.agent.as_str(), "a");
    assert_eq!(&e.envelope.boot, rec.boot());
    assert_eq!((e.envelope.seq, e.envelope.mono_ms), (1, 2000));
    let json = serde_json::to_value(&e.envelope).unwrap();
    assert_eq!(json["reason"], "last_will");
    assert_eq!(json["last_seen"], "2026-11-23T02:00:02.000Z");
    let agent = &rec.state().agents[&"a".parse().unwrap()];
    assert!(!agent.online);
}

#[test]
fn missed_heartbeats_after_the_grace_period() {
    let dir = temp_dir();
    let mut rec = recorder(&dir, None);
    rec.record(&[events("a", batch("a", "b1", &[(1, STARTED)]))], at(0))
        .unwrap();
    rec.record(&[events("b", batch("b", "b9", &[(1, STARTED)]))], at(30))
        .unwrap();
    assert_eq!(rec.tick(at(34)).unwrap(), 0, "within the start-up grace");
    assert_eq!(rec.tick(at(35)).unwrap(), 0, "a was seen exactly 35 s ago");
    assert_eq!(rec.tick(at(36)).unwrap(), 1, "a is overdue");
    assert_eq!(rec.tick(at(37)).unwrap(), 0, "a is already silent");
    assert_eq!(rec.tick(at(66)).unwrap(), 1, "b is overdue");
    let silent = rec
        .store()
        .query(&Query {
            event_type: Some("agent_went_silent".into()),
            ..Query::default()
        })
        .unwrap();
    let seqs: Vec<_> = silent
        .iter()
        .map(|e| (e.envelope.agent.to_string(), e.envelope.seq))
        .collect();
    assert_eq!(seqs, [("a".to_string(), 1), ("b".to_string(), 2)]);
    let json = serde_json::to_value(&silent[0].envelope).unwrap();
    assert_eq!(json["reason"], "missed_heartbeats");
    assert_eq!(rec.counters().silence_events, 2);
}

#[test]
fn failed_commit_changes_nothing_and_the_retry_stores_everything_once() {
    let dir = temp_dir();
    let mut rec = recorder(&dir, None);
    rec.record(&[events("a", batch("a", "b1", &[(1, STARTED)]))], at(0))
        .unwrap();
    let before = (rec.counters().clone(), state_json(rec.state()));
    let messages = [
        events("a", batch("a", "b1", &[(2, HEARTBEAT)])),
        events("a", "garbage".into()),
        status("a", r#"{"status":"offline"}"#),
    ];
    rec.store().fail_writes(true);
    assert!(rec.record(&messages, at(1)).is_err());
    assert!(rec.tick(at(100)).is_err());
    assert_eq!(state_json(rec.state()), before.1);
    let mut expected = before.0.clone();
    expected.store_errors = 2;
    assert_eq!(rec.counters(), &expected);

    rec.store().fail_writes(false);
    rec.record(&messages, at(2)).unwrap();
    let c = rec.counters();
    assert_eq!((c.events_stored, c.silence_events, c.rejected), (2, 1, 1));
    // The collector's sequence did not skip the numbers of the failed attempts.
    assert_eq!(rec.store().max_seq(rec.boot().as_str()).unwrap(), Some(1));
}

#[test]
fn replaying_the_store_rebuilds_identical_state() {
    let dir = temp_dir();
    let mut rec = recorder(&dir, None);
    let target =
        r#""target":{"name":"Nhà văn hóa thôn Phước Chánh","address":"fd00::7","role":"gateway"}"#;
    let round = |received: u32, rtt: &str| {
        format!(
            r#""type":"probe_round_completed",{target},"sent":3,"received":{received}{rtt},"loss_pct":{}"#,
            if received == 0 { "100.0" } else { "33.333" }
        )
    };
    let up = round(
        2,
        r#","rtt_min_ms":0.1,"rtt_avg_ms":0.30000000000000004,"rtt_max_ms":7.123456789"#,
    );
    let lost = round(0, "");
    let down = format!(
        r#""type":"link_went_down",{target},"since":"2026-11-23T02:00:03.123456Z","reason":"send_failed","failed_rounds":3"#
    );
    let back = format!(
        r#""type":"link_came_back",{target},"down_since":"2026-11-23T02:00:03.123Z","down_for_ms":5000,"reason":"send_failed""#
    );
    let mut second = 0;
    for agent in ["a", "b", "c"] {
        let seqs = [
            (1, STARTED),
            (2, up.as_str()),
            (3, lost.as_str()),
            (4, down.as_str()),
            (5, HEARTBEAT),
            (6, back.as_str()),
        ];
        for chunk in seqs.chunks(2) {
            second += 1;
            let message = events(agent, batch(agent, "boot-1", chunk));
            rec.record(&[message.clone(), message], at(second)).unwrap();
        }
    }
    rec.record(&[status("b", r#"{"status":"offline"}"#)], at(40))
        .unwrap();
    assert_eq!(rec.tick(at(60)).unwrap(), 2);
    rec.record(
        &[events("c", batch("c", "boot-2", &[(1, STARTED)]))],
        at(61),
    )
    .unwrap();
    let live = state_json(rec.state());
    drop(rec);

    let rebuilt = recorder(&dir, None);
    assert_eq!(state_json(rebuilt.state()), live);
    assert!(live.contains(r#""status":"up""#), "{live}");
    assert!(live.contains(r#""online":false"#), "{live}");
}

/// Log lines written while `f` runs, at WARN and above (the snapshot's tests use it too).
pub(crate) fn warnings_during(f: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// F12 of the audit: refusal warnings were limited per topic only, so junk on 20,000 topics made
/// 20,000 lines. Now the whole intake logs at most `WARN_BUDGET` refusals per 10 s, plus one
/// summary of the rest; every refusal is still counted, and a log line carries no escapes.
#[test]
fn refusal_logs_are_capped_across_topics() {
    let dir = temp_dir();
    let mut rec = recorder(&dir, None);
    let lines = warnings_during(|| {
        for second in 0..3 {
            let junk: Vec<Publish> = (0..1000)
                .map(|i| events(&format!("junk-{second}-{i}"), "\u{1b}[2Jnot json".into()))
                .collect();
            rec.record(&junk, at(second * 10)).unwrap();
        }
    });
    let refused = lines
        .iter()
        .filter(|l| l.contains("message refused"))
        .count();
    let summaries = lines
        .iter()
        .filter(|l| l.contains("refusals not logged"))
        .count();
    assert_eq!(refused, 60, "20 per window: {}", lines.len());
    assert_eq!(summaries, 2, "one summary per window after the first");
    assert!(lines.iter().any(|l| l.contains("refusals=980")));
    assert_eq!(rec.counters().rejected_by_reason.malformed, 3000);
    assert!(lines.iter().all(|l| !l.contains('\u{1b}')));
}
