//! Tests of acknowledged delivery through the recorder on a real SQLite file: watermarks (in
//! order, gaps filled late, overflow ranges, rebuilt after a restart, never ahead of a commit),
//! clock trust on stored events, late backlogs and what the state makes of them.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{AgentId, BootAck, BootId};
use rumqttc::{Publish, QoS};

use crate::api::state_json;
use crate::intake::clock::{ClockPolicy, ClockSource};
use crate::intake::recorder::{Now, Recorder};
use crate::state::{LinkStatus, Outage};
use crate::store::testkit::{TempDir, base, temp_dir};
use crate::store::{Query, Store};

const HEARTBEAT: &str = r#""type":"agent_heartbeat","uptime_s":1,"backlog":0"#;
const STARTED: &str = r#""type":"agent_started","version":"0.1.0","targets":1"#;
const TARGET: &str =
    r#""target":{"name":"UBND xã Định Long","address":"10.40.0.1","role":"commune"}"#;

fn recorder(dir: &TempDir) -> Recorder {
    let store = Store::open(&dir.path().join("events.db")).unwrap();
    Recorder::rebuild(store, None, Duration::from_secs(35), ClockPolicy::default()).unwrap()
}

fn at(seconds: i64) -> Now {
    Now {
        wall: base() + TimeDelta::seconds(seconds),
        mono_ms: u64::try_from(seconds * 1000).unwrap(),
    }
}

/// An envelope with an explicit wall time and monotonic time.
fn env(boot: &str, seq: u64, time: &str, mono_ms: u64, event: &str) -> String {
    format!(
        r#"{{"v":1,"agent":"a","boot":"{boot}","seq":{seq},"time":"{time}","mono_ms":{mono_ms},{event}}}"#
    )
}

/// An envelope of boot `boot` with a plausible clock: `seq` seconds after the timeline's start.
fn plain(boot: &str, seq: u64, event: &str) -> String {
    let time = crate::store::millis(base() + TimeDelta::seconds(seq as i64));
    env(boot, seq, &time, seq * 1000, event)
}

/// A message on agent `a`'s events topic; with `sender` as agents send it.
fn message(sender: Option<(&str, u64)>, envelopes: &[String]) -> Publish {
    let events = format!("[{}]", envelopes.join(","));
    let body = match sender {
        Some((boot, mono)) => {
            format!(r#"{{"sender":{{"boot":"{boot}","mono_ms":{mono}}},"events":{events}}}"#)
        }
        None => events,
    };
    Publish::new("netmon/v1/thanh-hoa/a/events", QoS::AtLeastOnce, body)
}

fn agent() -> AgentId {
    "a".parse().unwrap()
}

fn boot(id: &str) -> BootId {
    id.parse().unwrap()
}

fn acks(rec: &Recorder) -> Vec<(String, u64)> {
    let (topic, ack) = rec.ack(&agent()).unwrap();
    assert_eq!(topic.to_string(), "netmon/v1/thanh-hoa/a/ack");
    ack.acks
        .into_iter()
        .map(|BootAck { boot, seq }| (boot.to_string(), seq))
        .collect()
}

fn watermark(rec: &Recorder, id: &str) -> (u64, usize) {
    let b = rec.boots().get(&agent(), &boot(id)).unwrap();
    (b.watermark.get(), b.watermark.gaps())
}

fn overflowed(dropped: &str, first: u64, last: u64) -> String {
    format!(
        r#""type":"journal_overflowed","dropped_boot":"{dropped}","first_seq":{first},"last_seq":{last},"count":{}"#,
        last - first + 1
    )
}

#[test]
fn watermark_in_order_gaps_overflow_restart_and_failed_commits() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    let send = |rec: &mut Recorder, second: i64, envelopes: Vec<String>| {
        rec.record(&[message(None, &envelopes)], at(second))
            .unwrap()
    };
    assert_eq!(
        send(
            &mut rec,
            1,
            vec![plain("b1", 1, STARTED), plain("b1", 2, HEARTBEAT)]
        ),
        vec![agent()]
    );
    assert_eq!(acks(&rec), [("b1".into(), 2)]);
    // 4 and 5 arrive before 3 (a resend overtaken by live events).
    send(
        &mut rec,
        2,
        vec![plain("b1", 4, HEARTBEAT), plain("b1", 5, HEARTBEAT)],
    );
    assert_eq!(acks(&rec), [("b1".into(), 2)]);
    send(&mut rec, 3, vec![plain("b1", 3, HEARTBEAT)]);
    assert_eq!(acks(&rec), [("b1".into(), 5)]);
    send(&mut rec, 4, vec![plain("b1", 7, HEARTBEAT)]);
    assert_eq!(watermark(&rec, "b1"), (5, 1));
    // The next boot reports that seq 6 of b1 was dropped from the journal: the gap is covered.
    send(
        &mut rec,
        5,
        vec![
            plain("b2", 1, STARTED),
            plain("b2", 2, &overflowed("b1", 6, 6)),
        ],
    );
    assert_eq!(acks(&rec), [("b2".into(), 2), ("b1".into(), 7)]);
    // A duplicate delivery changes nothing; 9 waits for 8.
    send(
        &mut rec,
        6,
        vec![plain("b1", 7, HEARTBEAT), plain("b1", 9, HEARTBEAT)],
    );
    assert_eq!(watermark(&rec, "b1"), (7, 1));
    assert_eq!(rec.state().agents[&agent()].lost_events, 1);

    // A commit that fails acknowledges nothing.
    rec.store().fail_writes(true);
    assert!(
        rec.record(&[message(None, &[plain("b1", 8, HEARTBEAT)])], at(7))
            .is_err()
    );
    assert_eq!(watermark(&rec, "b1"), (7, 1));
    rec.store().fail_writes(false);
    drop(rec);

    // After a restart the watermark and the seqs above it are rebuilt from the store.
    let mut rec = recorder(&dir);
    assert_eq!(watermark(&rec, "b1"), (7, 1));
    assert_eq!(watermark(&rec, "b2"), (2, 0));
    assert!(
        rec.ack(&agent()).is_none(),
        "province unknown until heard from"
    );
    send(&mut rec, 8, vec![plain("b1", 8, HEARTBEAT)]);
    assert_eq!(acks(&rec), [("b1".into(), 9), ("b2".into(), 2)]);
}

#[test]
fn an_overflow_of_a_boot_never_seen_and_a_migrated_store_rebuild_the_same_watermarks() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    // Boot b0 was entirely dropped from the journal before anything of it was sent.
    rec.record(
        &[message(
            None,
            &[
                plain("b1", 1, STARTED),
                plain("b1", 2, &overflowed("b0", 1, 40)),
            ],
        )],
        at(1),
    )
    .unwrap();
    assert_eq!(watermark(&rec, "b0"), (40, 0));
    rec.record(&[message(None, &[plain("b1", 4, HEARTBEAT)])], at(2))
        .unwrap();
    let before = (watermark(&rec, "b0"), watermark(&rec, "b1"));
    drop(rec);
    // Forget the persisted watermarks, as a store migrated from version 1 has them: the rebuild
    // recomputes them from the events.
    Store::open(&dir.path().join("events.db"))
        .unwrap()
        .conn()
        .execute("UPDATE boots SET watermark = 0", [])
        .unwrap();
    let rec = recorder(&dir);
    assert_eq!((watermark(&rec, "b0"), watermark(&rec, "b1")), before);
    assert_eq!(before, ((40, 0), (2, 1)));
}

fn t(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[test]
fn a_1970_clock_is_corrected_and_a_late_backlog_keeps_its_true_outage_times() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    // Boot b1 starts at 02:00:00 with its clock at 1970; its batches say so from the start.
    let old = |s: u64| format!("1970-01-01T00:00:{s:02}.000Z");
    rec.record(
        &[message(
            Some(("b1", 10_000)),
            &[
                env("b1", 1, &old(1), 1_000, STARTED),
                env("b1", 2, &old(9), 9_000, HEARTBEAT),
            ],
        )],
        at(10),
    )
    .unwrap();
    let stored = rec.store().query(&Query::default()).unwrap();
    assert_eq!(stored[1].clock, ClockSource::Corrected);
    assert_eq!(stored[1].time, t("2026-11-23T02:00:09Z"));
    assert_eq!(
        stored[1].envelope.time,
        t("1970-01-01T00:00:09Z"),
        "body kept"
    );
    assert!(!stored[1].late);
    let epoch = rec.boots().get(&agent(), &boot("b1")).unwrap().epoch;
    assert_eq!(epoch, Some(base()));
    // The estimate is persisted: a collector restarted later still corrects b1's backlog.
    drop(rec);
    let mut rec = recorder(&dir);
    let epoch = rec.boots().get(&agent(), &boot("b1")).unwrap().epoch;
    assert_eq!(epoch, Some(base()));

    // The uplink goes down at 02:01:00 for ten minutes; the commune link is lost at the same
    // time and comes back at 02:05:00. The router then reboots (b2, clock still 1970) and sends
    // b1's journal after its own first events: an earlier boot's backlog, corrected with the
    // epoch b1's batches gave, and late.
    let down = format!(
        r#""type":"link_went_down",{TARGET},"since":"{}","reason":"no_reply","failed_rounds":3"#,
        "1970-01-01T00:01:00.000Z"
    );
    let back = format!(
        r#""type":"link_came_back",{TARGET},"down_since":"{}","down_for_ms":240000,"reason":"no_reply""#,
        "1970-01-01T00:01:00.000Z"
    );
    rec.record(
        &[message(
            Some(("b2", 5_000)),
            &[env("b2", 1, &old(2), 2_000, STARTED)],
        )],
        at(15 * 60),
    )
    .unwrap();
    rec.record(
        &[message(
            Some(("b2", 6_000)),
            &[
                env("b1", 3, "1970-01-01T00:01:30.000Z", 90_000, &down),
                env("b1", 4, "1970-01-01T00:05:00.000Z", 300_000, &back),
            ],
        )],
        at(15 * 60 + 1),
    )
    .unwrap();
    let stored = rec.store().query(&Query::default()).unwrap();
    let came_back = &stored[4];
    assert_eq!(
        (came_back.time, came_back.clock, came_back.late),
        (t("2026-11-23T02:05:00Z"), ClockSource::Corrected, true)
    );
    // b2's own event: corrected with b2's epoch (02:14:55), not late.
    assert_eq!(
        (stored[2].time, stored[2].clock, stored[2].late),
        (t("2026-11-23T02:14:57Z"), ClockSource::Corrected, false)
    );
    // The backlog of the older boot does not take the agent or its links back to b1.
    let a = &rec.state().agents[&agent()];
    assert_eq!(
        (a.boot.as_ref().map(|b| b.as_str()), a.last_seq),
        (Some("b2"), 1)
    );
    assert_eq!(
        a.lag_ms,
        Some(3_000),
        "received 02:15:00, happened 02:14:57"
    );

    // Replayed in b1's lifetime (no reboot), the same backlog shows the true outage.
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    rec.record(
        &[message(
            Some(("b1", 10_000)),
            &[env("b1", 1, &old(1), 1_000, STARTED)],
        )],
        at(10),
    )
    .unwrap();
    rec.record(
        &[message(
            Some(("b1", 660_000)),
            &[
                env("b1", 2, "1970-01-01T00:01:30.000Z", 90_000, &down),
                env("b1", 3, "1970-01-01T00:05:00.000Z", 300_000, &back),
                env("b1", 4, "1970-01-01T00:11:00.000Z", 660_000, HEARTBEAT),
            ],
        )],
        at(660),
    )
    .unwrap();
    let link = rec.state().links.values().next().unwrap();
    assert_eq!(link.status, LinkStatus::Up);
    assert_eq!(
        link.last_outage,
        Some(Outage {
            since: t("2026-11-23T02:01:00Z"),
            until: t("2026-11-23T02:05:00Z"),
            late: true,
        })
    );
    assert_eq!(link.since, Some(t("2026-11-23T02:05:00Z")));
}

#[test]
fn without_a_sender_clock_an_implausible_time_becomes_the_receive_time() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    rec.record(
        &[message(
            None,
            &[env("b1", 1, "1970-01-01T00:00:01.000Z", 1_000, STARTED)],
        )],
        at(30),
    )
    .unwrap();
    let stored = rec.store().query(&Query::default()).unwrap();
    assert_eq!(
        (stored[0].time, stored[0].clock),
        (at(30).wall, ClockSource::Received)
    );
    // The clock jumps forward mid-boot: detected against the epoch the next batch gives.
    rec.record(
        &[message(
            Some(("b1", 40_000)),
            &[env("b1", 2, "2026-11-23T02:01:40.000Z", 40_000, HEARTBEAT)],
        )],
        at(40),
    )
    .unwrap();
    let stored = rec.store().query(&Query::default()).unwrap();
    assert_eq!(
        (stored[1].time, stored[1].clock),
        (t("2026-11-23T02:00:40Z"), ClockSource::Corrected)
    );
}

/// The replay test of `recorder_tests.rs` with corrected, late, out-of-order and lost events.
#[test]
fn replay_rebuilds_identical_state_with_corrected_late_and_lost_events() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    let old = |s: u64| format!("1970-01-01T00:{:02}:{:02}.000Z", s / 60, s % 60);
    let down = format!(
        r#""type":"link_went_down",{TARGET},"since":"1970-01-01T00:01:00.000Z","reason":"no_reply","failed_rounds":3"#
    );
    let back = format!(
        r#""type":"link_came_back",{TARGET},"down_since":"1970-01-01T00:01:00.000Z","down_for_ms":240000,"reason":"no_reply""#
    );
    let round = format!(
        r#""type":"probe_round_completed",{TARGET},"sent":3,"received":3,"rtt_avg_ms":2.25,"loss_pct":0.0"#
    );
    let backlog = r#""type":"agent_heartbeat","uptime_s":700,"backlog":42"#;
    /// `(received second, sender clock, envelopes)`.
    type Batch<'a> = (i64, Option<(&'a str, u64)>, Vec<String>);
    let batches: Vec<Batch> = vec![
        (
            10,
            Some(("b1", 10_000)),
            vec![env("b1", 1, &old(1), 1_000, STARTED)],
        ),
        (
            700,
            Some(("b1", 700_000)),
            vec![
                env("b1", 2, &old(90), 90_000, &down),
                env("b1", 4, &old(660), 660_000, &round),
                env("b1", 3, &old(300), 300_000, &back),
                env("b1", 5, &old(700), 700_000, backlog),
                env("b1", 6, &old(700), 700_000, &overflowed("b0", 3, 9)),
            ],
        ),
        (701, None, vec![plain("b1", 3, HEARTBEAT)]),
        (
            800,
            None,
            vec![env("b1", 7, "1970-01-01T00:13:20.000Z", 800_000, &round)],
        ),
    ];
    for (second, sender, envelopes) in batches {
        rec.record(&[message(sender, &envelopes)], at(second))
            .unwrap();
    }
    let live = state_json(rec.state());
    let a = &rec.state().agents[&agent()];
    assert_eq!((a.backlog, a.lost_events, a.last_seq), (Some(42), 7, 7));
    // The came_back of seq 3 arrived after the round of seq 4 and still ended the outage.
    let link = rec.state().links.values().next().unwrap();
    assert_eq!(link.status, LinkStatus::Up);
    assert_eq!(
        link.last_outage,
        Some(Outage {
            since: t("2026-11-23T02:01:00Z"),
            until: t("2026-11-23T02:05:00Z"),
            late: true,
        })
    );
    assert_eq!(link.last_round, Some(t("2026-11-23T02:13:20Z")));
    drop(rec);
    let rebuilt = recorder(&dir);
    assert_eq!(state_json(rebuilt.state()), live);
    assert!(live.contains(r#""lost_events":7"#), "{live}");
}

/// F13 of the audit: an event refused for good froze its boot's watermark, so the agent resent
/// it and everything after it until its journal overflowed. Refused events are acknowledged
/// (recorded in `refusals`, counted) and the watermark passes them, after a restart too.
#[test]
fn a_refused_event_is_acknowledged_and_never_blocks_the_watermark() {
    let dir = temp_dir();
    let mut rec = recorder(&dir);
    let bad_loss = format!(
        r#""type":"probe_round_completed",{TARGET},"sent":3,"received":3,"rtt_min_ms":1.0,"rtt_avg_ms":1.0,"rtt_max_ms":1.0,"rtt_mdev_ms":0.0,"loss_pct":200.0"#
    );
    rec.record(
        &[message(
            None,
            &[
                plain("b1", 1, STARTED),
                plain("b1", 2, &bad_loss),
                plain("b1", 3, HEARTBEAT),
            ],
        )],
        at(1),
    )
    .unwrap();
    assert_eq!(acks(&rec), [("b1".into(), 3)]);
    assert_eq!(rec.counters().rejected_by_reason.invalid_event, 1);
    assert_eq!(rec.counters().events_stored, 2);

    // Refused while a gap is still open below it: after a restart the refusal still counts.
    rec.record(
        &[message(
            None,
            &[plain("b1", 5, &bad_loss), plain("b1", 6, HEARTBEAT)],
        )],
        at(2),
    )
    .unwrap();
    assert_eq!(watermark(&rec, "b1"), (3, 1));
    drop(rec);
    let mut rec = recorder(&dir);
    assert_eq!(watermark(&rec, "b1"), (3, 1));
    rec.record(&[message(None, &[plain("b1", 4, HEARTBEAT)])], at(3))
        .unwrap();
    assert_eq!(acks(&rec), [("b1".into(), 6)]);

    // An envelope of another agent, or a seq no store can hold, is refused but never marked.
    let foreign = plain("b1", 7, &bad_loss).replace(r#""agent":"a""#, r#""agent":"z""#);
    let huge = plain("b1", 8, HEARTBEAT).replace(r#""seq":8"#, r#""seq":9223372036854775808"#);
    rec.record(&[message(None, &[foreign, huge])], at(4))
        .unwrap();
    assert_eq!(watermark(&rec, "b1"), (6, 0));
    assert_eq!(rec.counters().rejected_by_reason.invalid_event, 2);
}
