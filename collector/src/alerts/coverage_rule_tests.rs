//! Data-driven tests of the `coverage_lost` rule: a minute-by-minute run of modem readings in,
//! the coverage alerts and the notices that would be queued out.
#![allow(clippy::unwrap_used)]

use netmon_events::{AlertKind, Event, Notice, Quality, Registration, Signal, Technology};

use super::book::Alert;
use super::tests::{Sim, all_online, at, heartbeat};
use crate::alerts::AlertsConfig;

/// What the modem says in one minute: a technology (`None` = no service), or no answer.
#[derive(Debug, Clone, Copy)]
enum Says {
    On(Technology),
    Silent,
}
use Says::{On, Silent};

const NR: Says = On(Technology::Nr5gNsa);
const LTE: Says = On(Technology::Lte);
const NONE: Says = On(Technology::None);

/// A modem's reading on `technology` (`None`: no service); the snapshot's invariant test uses it.
pub(crate) fn reading(technology: Technology) -> Event {
    let service = technology != Technology::None;
    Event::CellularSignalSampled {
        modem: "viettel".into(),
        signal: Signal {
            technology,
            plmn: service.then(|| "452-04".into()),
            operator: service.then(|| "Viettel".into()),
            registration: if service {
                Registration::Home
            } else {
                Registration::Searching
            },
            rsrp_dbm: service.then_some(-95.0),
            ..Signal::default()
        },
        quality: if service {
            Quality::Good
        } else {
            Quality::NoService
        },
    }
}

fn minute(m: u32) -> chrono::DateTime<chrono::Utc> {
    at(60.0 * f64::from(m))
}

/// `agent`'s modem says `says(m)` at minute `m` for every minute of `minutes`; the rules run
/// after each reading (the other agents' heartbeats keep them online).
fn play(sim: &mut Sim, agent: &str, minutes: std::ops::Range<u32>, says: impl Fn(u32) -> Says) {
    for m in minutes {
        let event = match says(m) {
            On(t) => reading(t),
            Silent => Event::ModemStoppedAnswering {
                modem: "viettel".into(),
                error: "/dev/ttyUSB2: no answer to AT+CESQ within 5s".into(),
            },
        };
        sim.agent(agent, event, minute(m));
        sim.evaluate(minute(m));
    }
}

/// The same as [`play`], every reading late (a backlog replayed from the agent's journal), and
/// the rules only run at the end.
fn play_late(
    sim: &mut Sim,
    agent: &str,
    minutes: std::ops::Range<u32>,
    says: impl Fn(u32) -> Says,
) {
    for m in minutes {
        if let On(t) = says(m) {
            sim.late(agent, reading(t), minute(m));
        }
    }
}

fn coverage(sim: &Sim) -> Vec<&Alert> {
    sim.alerts(AlertKind::CoverageLost)
}

fn notices(sim: &Sim) -> Vec<Notice> {
    sim.sent
        .iter()
        .flat_map(|s| s.notices.iter().map(|n| n.1))
        .collect()
}

fn online() -> Sim {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    sim
}

#[test]
fn no_service_for_longer_than_the_threshold_is_one_alert_then_its_recovery() {
    let mut sim = online();
    play(&mut sim, "v1", 0..30, |m| match m {
        5..20 => NONE,
        _ => NR,
    });
    sim.run_until(minute(30) + chrono::Duration::seconds(10));
    let alerts = coverage(&sim);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = alerts[0];
    assert_eq!(alert.key.subject.as_deref(), Some("viettel (Viettel)"));
    assert_eq!(alert.since, minute(5));
    assert_eq!(alert.opened_at, minute(15), "10 minutes without service");
    assert_eq!((alert.value, alert.threshold), (None, None));
    assert_eq!(alert.detected_by, netmon_events::Detection::AgentProbes);
    let resolved = alert.resolved.unwrap();
    assert_eq!(resolved.until, minute(20), "service came back at minute 20");
    assert_eq!(resolved.at, minute(22), "and held for clear_after (2 min)");
    assert_eq!(notices(&sim), vec![Notice::Opened, Notice::Resolved]);
    assert!(
        sim.sent[0]
            .text
            .contains("CoverageLost thôn Giang Trung link=modem viettel (Viettel)"),
        "{}",
        sim.sent[0].text
    );
}

#[test]
fn a_short_dip_is_no_alert() {
    let mut sim = online();
    play(&mut sim, "v1", 0..30, |m| match m {
        5..14 => NONE,
        _ => NR,
    });
    assert!(coverage(&sim).is_empty(), "{:#?}", coverage(&sim));
    assert!(sim.sent.is_empty(), "{:#?}", sim.sent);
}

#[test]
fn five_g_to_lte_opens_after_its_threshold_only_where_there_was_5g() {
    let mut sim = online();
    // v1 had 5G until minute 5; v2 has only ever had 4G.
    play(&mut sim, "v1", 0..40, |m| if m < 5 { NR } else { LTE });
    play(&mut sim, "v2", 0..40, |_| LTE);
    let alerts = coverage(&sim);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = alerts[0];
    assert_eq!(alert.key.agent.as_str(), "v1");
    assert_eq!(alert.key.subject.as_deref(), Some("viettel (Viettel) · 5G"));
    assert_eq!(alert.since, minute(5));
    assert_eq!(alert.opened_at, minute(35), "30 minutes off 5G");
    assert_eq!((alert.value, alert.threshold), (Some(4.0), Some(5.0)));
    assert!(alert.is_open());
    // 5G returns: one good reading is not enough, two minutes of it are.
    play(&mut sim, "v1", 40..42, |_| NR);
    assert!(coverage(&sim)[0].is_open(), "hysteresis");
    play(&mut sim, "v1", 42..43, |_| NR);
    assert_eq!(coverage(&sim)[0].resolved.unwrap().until, minute(40));
}

#[test]
fn five_g_lost_into_no_service_is_two_alerts_each_told() {
    let mut sim = online();
    play(&mut sim, "v1", 0..90, |m| match m {
        0..5 => NR,
        5..40 => LTE,
        40..60 => NONE,
        60..80 => LTE,
        _ => NR,
    });
    let alerts = coverage(&sim);
    let subjects: Vec<_> = alerts
        .iter()
        .map(|a| a.key.subject.clone().unwrap())
        .collect();
    assert_eq!(subjects, ["viettel (Viettel) · 5G", "viettel (Viettel)"]);
    let (lost_5g, none) = (alerts[0], alerts[1]);
    assert_eq!((lost_5g.since, lost_5g.opened_at), (minute(5), minute(35)));
    assert_eq!(lost_5g.resolved.unwrap().until, minute(80), "5G back");
    assert_eq!((none.since, none.opened_at), (minute(40), minute(50)));
    assert_eq!(none.resolved.unwrap().until, minute(60), "service back");
    assert_eq!(
        notices(&sim),
        [
            Notice::Opened,
            Notice::Opened,
            Notice::Resolved,
            Notice::Resolved
        ]
    );
}

#[test]
fn a_modem_that_stops_answering_is_unknown_not_lost() {
    let mut sim = online();
    // Silent for 40 minutes after 5G; then no service 8 minutes, silent, no service 9 more.
    play(&mut sim, "v1", 0..80, |m| match m {
        0..5 => NR,
        5..45 => Silent,
        45..53 => NONE,
        53..57 => Silent,
        57..66 => NONE,
        _ => NR,
    });
    assert!(
        coverage(&sim).is_empty(),
        "no alert from a modem that does not answer: {:#?}",
        coverage(&sim)
    );
    // An open alert stays open while the modem does not answer, and the agent's restart does
    // not end it either.
    play(
        &mut sim,
        "v1",
        80..100,
        |m| if m < 95 { NONE } else { Silent },
    );
    let started = Event::AgentStarted {
        version: "test".into(),
        targets: 1,
    };
    sim.agent("v1", started, minute(100));
    sim.evaluate(minute(100));
    let alerts = coverage(&sim);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].since, minute(80));
    assert!(alerts[0].is_open());
}

#[test]
fn a_late_loss_is_one_reported_late_message() {
    let mut sim = online();
    sim.agent("v1", heartbeat(), minute(0));
    play_late(&mut sim, "v1", 0..30, |m| match m {
        5..20 => NONE,
        _ => NR,
    });
    sim.run_until(minute(30) + chrono::Duration::seconds(10));
    let alerts = coverage(&sim);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].since, minute(5));
    assert_eq!(alerts[0].resolved.unwrap().until, minute(20));
    assert_eq!(
        notices(&sim),
        vec![Notice::ResolvedLate],
        "no stale opening"
    );
}

#[test]
fn a_parent_outage_does_not_swallow_a_village_coverage_loss() {
    let mut sim = online();
    sim.silent("ubnd", minute(1));
    play(&mut sim, "v1", 0..20, |m| if m < 5 { NR } else { NONE });
    let alerts = coverage(&sim);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].suppressed_by, None, "radio, not the uplink");
    assert!(notices(&sim).contains(&Notice::Opened));
}

#[test]
fn the_agent_own_unreachability_explains_its_coverage_loss() {
    let mut sim = online();
    play(&mut sim, "v1", 0..5, |_| NR);
    // The modem was the uplink: the agent is cut off, then replays its journal.
    sim.silent("v1", minute(5) + chrono::Duration::seconds(30));
    sim.evaluate(minute(6));
    play_late(&mut sim, "v1", 5..20, |_| NONE);
    sim.run_until(minute(20) + chrono::Duration::seconds(5));
    let alerts = coverage(&sim);
    assert_eq!(alerts.len(), 1);
    let unreachable = sim.alerts(AlertKind::AgentUnreachable)[0].id;
    assert_eq!(alerts[0].suppressed_by, Some(unreachable));
    assert!(
        !sim.sent
            .iter()
            .any(|s| s.notices.iter().any(|n| n.0 == alerts[0].id)),
        "{:#?}",
        sim.sent
    );
}

#[test]
fn replay_rebuilds_the_same_coverage_alerts() {
    let mut sim = online();
    play(&mut sim, "v1", 0..50, |m| match m {
        0..5 => NR,
        5..20 => NONE,
        _ => LTE,
    });
    assert_eq!(coverage(&sim).len(), 2);
    let mut again = sim.replayed();
    assert_eq!(again.alerting.book, sim.alerting.book);
    assert_eq!(
        again.alerting.signals.modems.modems,
        sim.alerting.signals.modems.modems
    );
    again.evaluate(minute(50));
    assert!(again.sent.is_empty(), "{:?}", again.sent);
}
