//! Tests of compact batches (ADR 14) through the recorder on a real SQLite file: target keys
//! resolve from the header, then from descriptions stored earlier (also after a restart), an
//! unknown key is refused on its own and acknowledged, and old-format agents are stored beside
//! new ones into the same link state.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::TimeDelta;
use netmon_events::testing::{described, envelope, round_rtt, started, target, window_rtt};
use netmon_events::{
    DescribedTarget, Envelope, Event, HeaderTargets, Sender, Target, encode_batch, encode_compact,
};
use rumqttc::{Publish, QoS};

use crate::intake::clock::ClockPolicy;
use crate::intake::recorder::{Now, Recorder};
use crate::state::LinkStatus;
use crate::store::testkit::{TempDir, temp_dir};
use crate::store::{Query, Store};

fn recorder(dir: &TempDir) -> Recorder {
    let store = Store::open(&dir.path().join("events.db")).unwrap();
    let policy = ClockPolicy::default();
    Recorder::rebuild(store, None, Duration::from_secs(150), policy).unwrap()
}

fn publish(agent: &str, payload: Vec<u8>) -> Publish {
    let topic = format!("netmon/v1/thanh-hoa/{agent}/events");
    Publish::new(topic, QoS::AtLeastOnce, payload)
}

/// Right after the envelopes' times ([`netmon_events::testing::T0_MS`] + seq seconds).
fn now(seconds: i64) -> Now {
    let t0 = chrono::DateTime::from_timestamp_millis(netmon_events::testing::T0_MS).unwrap();
    Now {
        wall: t0 + TimeDelta::seconds(seconds),
        mono_ms: u64::try_from(seconds * 1000).unwrap(),
    }
}

fn targets() -> Vec<Target> {
    vec![
        target("Cổng thôn", "192.168.1.1"),
        target("UBND xã Cẩm Tú", "10.20.0.1"),
    ]
}

fn compact(events: &[Envelope], header: HeaderTargets) -> Vec<u8> {
    let last = events.last().unwrap();
    let sender = Sender {
        boot: last.boot.clone(),
        mono_ms: last.mono_ms,
    };
    let table = DescribedTarget::numbered(&targets());
    encode_compact(&sender, events, &table, header).unwrap()
}

fn stored(rec: &Recorder) -> Vec<Envelope> {
    let all = Query {
        agent: None,
        event_type: None,
        limit: None,
    };
    let rows = rec.store().query(&all).unwrap();
    rows.into_iter().map(|e| e.envelope).collect()
}

#[test]
fn keys_resolve_from_the_header_then_from_the_stored_description_across_a_restart() {
    let dir = temp_dir();
    let [gate, commune] = <[Target; 2]>::try_from(targets()).unwrap();
    let first = [
        envelope("a", "b1", 1, started()),
        envelope("a", "b1", 2, described(&targets())),
        envelope("a", "b1", 3, window_rtt(&commune, 180, 12.0)),
    ];
    let later = [envelope("a", "b1", 4, window_rtt(&gate, 171, 1.5))];
    {
        let mut rec = recorder(&dir);
        rec.record(
            &[publish("a", compact(&first, HeaderTargets::Include))],
            now(3),
        )
        .unwrap();
        // The description is stored: the agent now sends keys alone.
        rec.record(
            &[publish("a", compact(&later, HeaderTargets::Omit))],
            now(4),
        )
        .unwrap();
        assert_eq!(rec.counters().rejected, 0, "{:?}", rec.counters());
    }
    // After a restart the replayed store still resolves the boot's keys.
    let mut rec = recorder(&dir);
    let after = [envelope("a", "b1", 5, window_rtt(&commune, 180, 13.0))];
    rec.record(
        &[publish("a", compact(&after, HeaderTargets::Omit))],
        now(5),
    )
    .unwrap();
    assert_eq!(rec.counters().rejected, 0, "{:?}", rec.counters());
    let mut expected = first.to_vec();
    expected.extend(later);
    expected.extend(after);
    // Stored expanded, exactly what the old forms carry.
    assert_eq!(stored(&rec), expected);
    let link = rec
        .state()
        .links
        .iter()
        .find(|(key, _)| key.address == commune.address)
        .map(|(_, link)| link)
        .unwrap();
    assert_eq!(link.last_rtt_ms, Some(13.0));
    assert_eq!(link.status, LinkStatus::Up);
}

#[test]
fn an_unknown_key_is_refused_on_its_own_and_acknowledged() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    let [gate, _] = <[Target; 2]>::try_from(targets()).unwrap();
    let events = [
        envelope("a", "b1", 1, started()),
        envelope("a", "b1", 2, window_rtt(&gate, 180, 1.0)),
    ];
    // Keys without any description of boot b1, in the header or stored.
    rec.record(
        &[publish("a", compact(&events, HeaderTargets::Omit))],
        now(2),
    )
    .unwrap();
    let counters = rec.counters();
    assert_eq!(
        counters.rejected_by_reason.unknown_target, 1,
        "{counters:?}"
    );
    assert_eq!(counters.events_stored, 1);
    // The refused event is acknowledged with the stored one: the agent is not held up.
    let (_, ack) = rec.ack(&"a".parse().unwrap()).unwrap();
    assert_eq!(ack.seq_for(&"b1".parse().unwrap()), Some(2));
}

#[test]
fn an_old_agent_and_a_new_one_fold_into_the_same_link_state() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    let commune = targets()[1].clone();
    // The old agent: an envelope array, a probe_round_completed every round.
    let old: Vec<Envelope> = (1..=3)
        .map(|seq| match seq {
            1 => envelope("old", "o1", 1, started()),
            seq => envelope("old", "o1", seq, round_rtt(&commune, 3, 20.0)),
        })
        .collect();
    let new = [
        envelope("new", "n1", 1, started()),
        envelope("new", "n1", 2, described(&targets())),
        envelope("new", "n1", 3, window_rtt(&commune, 180, 20.0)),
    ];
    let messages = [
        publish("old", encode_batch(&old)),
        publish("new", compact(&new, HeaderTargets::Include)),
    ];
    rec.record(&messages, now(3)).unwrap();
    assert_eq!(rec.counters().events_stored, 6, "{:?}", rec.counters());
    let links: Vec<_> = rec
        .state()
        .links
        .iter()
        .map(|(key, link)| (key.agent.to_string(), link.status, link.last_rtt_ms))
        .collect();
    assert_eq!(
        links,
        vec![
            ("new".to_string(), LinkStatus::Up, Some(20.0)),
            ("old".to_string(), LinkStatus::Up, Some(20.0)),
        ]
    );
    let types: Vec<_> = stored(&rec)
        .iter()
        .map(|e| e.event.type_name())
        .filter(|t| t.starts_with("probe"))
        .collect();
    assert_eq!(
        types,
        [
            "probe_round_completed",
            "probe_round_completed",
            "probe_window_completed"
        ]
    );
    assert!(matches!(
        stored(&rec)[4].event,
        Event::TargetsDescribed { .. }
    ));
}
