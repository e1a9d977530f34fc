//! Data-driven tests of the rules, the dependencies and the outbox: a timeline of agent events
//! in, evaluations at explicit times, the notifications that would be queued out.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use netmon_events::{AgentId, AlertKind, BootId, Channel, Envelope, Event, Notice};

use super::Alerting;
use crate::alerts::AlertsConfig;
use crate::inventory::{Commune, Contact, Inventory, Province, Site, SiteKind};
use crate::notify::view::NoticeView;
use crate::state::State;
use crate::store::testkit::base;
use crate::store::{Origin, StoredEvent};

/// A commune centre (agent `ubnd`) and three villages behind it (`v1`..`v3`), one contact (the
/// snapshot's invariant test uses it too).
pub(crate) fn inventory() -> Inventory {
    let mut inv = Inventory::default();
    let province: netmon_events::ProvinceId = "thanh-hoa".parse().unwrap();
    inv.provinces.insert(
        province.clone(),
        Province {
            id: province.clone(),
            name: "Thanh Hóa".into(),
            contacts: vec![],
        },
    );
    inv.communes.insert(
        "cam-tu".into(),
        Commune {
            id: "cam-tu".into(),
            province,
            name: "xã Cẩm Tú".into(),
            contacts: vec!["it".into()],
        },
    );
    let mut site = |id: &str, name: &str, parent: Option<&str>, agent: &str| {
        let agent = AgentId::new(agent).unwrap();
        inv.agents.insert(agent.clone(), id.into());
        inv.sites.insert(
            id.into(),
            Site {
                id: id.into(),
                commune: "cam-tu".into(),
                name: name.into(),
                kind: if parent.is_some() {
                    SiteKind::Village
                } else {
                    SiteKind::CommuneCentre
                },
                lat: None,
                lon: None,
                parent: parent.map(Into::into),
                agents: vec![agent],
                contacts: vec![],
                thresholds: Default::default(),
            },
        );
    };
    site("ubnd", "UBND xã Cẩm Tú", None, "ubnd");
    site("giang-trung", "thôn Giang Trung", Some("ubnd"), "v1");
    site("trung-son", "thôn Trung Sơn", Some("ubnd"), "v2");
    site("tu-tao", "thôn Tú Tạo", Some("ubnd"), "v3");
    inv.contacts.insert(
        "it".into(),
        Contact {
            id: "it".into(),
            name: "Lê Văn Hùng".into(),
            channel: Channel::Webhook,
            to: "http://127.0.0.1:1/hook".into(),
            lang: "vi".into(),
        },
    );
    inv
}

/// One queued notification, as the tests see it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sent {
    pub(super) at: DateTime<Utc>,
    pub(super) notices: Vec<(u64, Notice)>,
    pub(super) text: String,
}

/// The collector's state, alerting and a fake store, driven by explicit times.
pub(super) struct Sim {
    pub(super) state: State,
    pub(super) alerting: Alerting,
    stored: Vec<StoredEvent>,
    seqs: std::collections::HashMap<String, u64>,
    pub(super) sent: Vec<Sent>,
    config: AlertsConfig,
}

pub(crate) fn render(_lang: &str, views: &[NoticeView]) -> (String, String) {
    let text = views
        .iter()
        .map(|v| {
            format!(
                "{:?} {:?} {} link={} affected={}",
                v.notice,
                v.kind,
                v.site.clone().unwrap_or_default(),
                v.link.clone().unwrap_or_default(),
                v.affected.join("|")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    (format!("{} notices", views.len()), text)
}

impl Sim {
    pub(super) fn new(config: AlertsConfig) -> Self {
        Self {
            state: State::default(),
            alerting: Alerting::new(config.clone(), Some(Arc::new(inventory()))),
            stored: Vec::new(),
            seqs: Default::default(),
            sent: Vec::new(),
            config,
        }
    }

    fn store(
        &mut self,
        agent: &str,
        origin: Origin,
        event: Event,
        time: DateTime<Utc>,
        late: bool,
    ) {
        let boot = match origin {
            Origin::Agent => format!("{agent}-boot"),
            Origin::Collector => "collector".into(),
        };
        let seq = self.seqs.entry(boot.clone()).or_default();
        *seq += 1;
        let stored = StoredEvent {
            id: self.stored.len() as i64 + 1,
            province: "thanh-hoa".parse().unwrap(),
            received: time,
            origin,
            time,
            clock: crate::intake::clock::ClockSource::Agent,
            late,
            envelope: Envelope {
                v: 1,
                agent: AgentId::new(agent).unwrap(),
                boot: BootId::new(boot).unwrap(),
                seq: *seq,
                time,
                mono_ms: 0,
                event,
            },
        };
        self.state.apply(&stored);
        self.alerting.apply(&stored);
        self.stored.push(stored);
    }

    pub(super) fn agent(&mut self, agent: &str, event: Event, time: DateTime<Utc>) {
        self.store(agent, Origin::Agent, event, time, false);
    }

    pub(super) fn late(&mut self, agent: &str, event: Event, time: DateTime<Utc>) {
        self.store(agent, Origin::Agent, event, time, true);
    }

    pub(super) fn silent(&mut self, agent: &str, time: DateTime<Utc>) {
        let event = Event::AgentWentSilent {
            reason: netmon_events::SilenceReason::LastWill,
            last_seen: None,
        };
        self.store(agent, Origin::Collector, event, time, false);
    }

    /// Evaluates every 250 ms from the last evaluation up to `until`.
    pub(super) fn run_until(&mut self, until: DateTime<Utc>) {
        let mut now = self.stored.last().map_or(base(), |s| s.time);
        while now <= until {
            self.evaluate(now);
            now += Duration::milliseconds(250);
        }
    }

    pub(super) fn evaluate(&mut self, now: DateTime<Utc>) {
        for made in self.alerting.evaluate(&self.state, now) {
            self.store(
                made.agent.as_str(),
                Origin::Collector,
                made.event,
                now,
                false,
            );
        }
        for made in self.alerting.notifications(&render, now) {
            if let Event::NotificationQueued { message, .. } = &made.event {
                self.sent.push(Sent {
                    at: now,
                    notices: message
                        .notices
                        .iter()
                        .map(|n| (n.alert, n.notice))
                        .collect(),
                    text: message.text.clone(),
                });
            }
            self.store(
                made.agent.as_str(),
                Origin::Collector,
                made.event,
                now,
                false,
            );
        }
    }

    /// One round a second from `agent` for seconds `seconds` (round `i` at `1 + i` s), made by
    /// `round_at(i)`; the rules run every fourth second.
    fn rounds(
        &mut self,
        agent: &str,
        seconds: std::ops::Range<u32>,
        round_at: impl Fn(u32) -> Event,
    ) {
        for i in seconds {
            let time = at(1.0 + f64::from(i));
            self.agent(agent, round_at(i), time);
            if i % 4 == 0 {
                self.evaluate(time);
            }
        }
    }

    pub(super) fn alerts(&self, kind: AlertKind) -> Vec<&super::book::Alert> {
        self.alerting
            .book
            .alerts
            .values()
            .filter(|a| a.key.kind == kind)
            .collect()
    }

    /// A fresh collector replaying everything stored so far.
    pub(super) fn replayed(&self) -> Sim {
        let mut sim = Sim::new(self.config.clone());
        for stored in &self.stored {
            sim.state.apply(stored);
            sim.alerting.apply(stored);
        }
        sim.stored = self.stored.clone();
        sim.seqs = self.seqs.clone();
        sim
    }
}

pub(super) fn at(seconds: f64) -> DateTime<Utc> {
    base() + Duration::milliseconds((seconds * 1000.0) as i64)
}

pub(super) fn heartbeat() -> Event {
    Event::AgentHeartbeat {
        uptime_s: 60,
        backlog: 0,
    }
}

fn target(role: netmon_events::LinkRole) -> netmon_events::Target {
    netmon_events::Target {
        name: "Sở TT&TT".into(),
        address: "10.0.0.1".parse().unwrap(),
        role,
    }
}

fn round(loss_pct: f64, rtt: f64) -> Event {
    let received = if loss_pct >= 100.0 { 0 } else { 3 };
    let rtt = (received > 0).then_some(rtt);
    Event::ProbeRoundCompleted {
        target: target(netmon_events::LinkRole::Province),
        sent: 3,
        received,
        rtt_min_ms: rtt,
        rtt_avg_ms: rtt,
        rtt_max_ms: rtt,
        rtt_mdev_ms: rtt.map(|_| 0.0),
        loss_pct,
    }
}

fn went_down(since: DateTime<Utc>) -> Event {
    Event::LinkWentDown {
        target: target(netmon_events::LinkRole::Province),
        since,
        reason: netmon_events::DownReason::NoReply,
        failed_rounds: 3,
    }
}

fn came_back(since: DateTime<Utc>, ms: u64) -> Event {
    Event::LinkCameBack {
        target: target(netmon_events::LinkRole::Province),
        down_since: since,
        down_for_ms: ms,
        reason: netmon_events::DownReason::NoReply,
    }
}

pub(super) fn all_online(sim: &mut Sim) {
    for agent in ["ubnd", "v1", "v2", "v3"] {
        sim.agent(agent, heartbeat(), at(0.0));
    }
}

#[test]
fn a_commune_uplink_cut_is_one_message_naming_the_villages_behind_it() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    // The wills arrive within a second of each other, a village's first.
    sim.silent("v1", at(7.0));
    sim.silent("ubnd", at(7.3));
    sim.silent("v2", at(7.5));
    sim.silent("v3", at(7.6));
    sim.run_until(at(30.0));
    assert_eq!(sim.sent.len(), 1, "{:#?}", sim.sent);
    let ubnd: Vec<_> = sim
        .alerts(AlertKind::AgentUnreachable)
        .into_iter()
        .cloned()
        .collect();
    let root = ubnd
        .iter()
        .find(|a| a.key.agent.as_str() == "ubnd")
        .unwrap()
        .clone();
    assert_eq!(sim.sent[0].notices, vec![(root.id, Notice::Opened)]);
    assert!(sim.sent[0].at <= at(11.0), "sent at {}", sim.sent[0].at);
    assert!(
        sim.sent[0]
            .text
            .contains("affected=thôn Giang Trung|thôn Trung Sơn|thôn Tú Tạo"),
        "{}",
        sim.sent[0].text
    );
    for village in ubnd.iter().filter(|a| a.key.agent.as_str() != "ubnd") {
        assert_eq!(village.suppressed_by, Some(root.id), "{village:?}");
    }
    drop(ubnd);

    // Restore: the commune's agent first, the villages over the next 20 s (back-off), and the
    // commune agent's journal replays its own uplink outage, late.
    sim.agent("ubnd", heartbeat(), at(40.0));
    sim.late("ubnd", went_down(at(0.5)), at(3.5));
    sim.late("ubnd", came_back(at(0.5), 39_000), at(39.5));
    sim.run_until(at(45.0));
    for (i, agent) in ["v1", "v2", "v3"].iter().enumerate() {
        sim.agent(agent, heartbeat(), at(50.0 + 5.0 * i as f64));
        sim.run_until(at(52.0 + 5.0 * i as f64));
    }
    sim.run_until(at(200.0));
    assert_eq!(sim.sent.len(), 2, "{:#?}", sim.sent);
    assert_eq!(sim.sent[1].notices, vec![(root.id, Notice::Resolved)]);
    let link = sim.alerts(AlertKind::LinkDown);
    assert_eq!(link.len(), 1, "the late outage is in the history");
    assert_eq!(link[0].suppressed_by, Some(root.id));
    assert!(sim.alerting.book.open.is_empty());
}

#[test]
fn a_village_cut_alone_notifies_that_village_only() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    sim.silent("v2", at(7.0));
    sim.run_until(at(30.0));
    assert_eq!(sim.sent.len(), 1);
    assert!(
        sim.sent[0].text.contains("thôn Trung Sơn"),
        "{}",
        sim.sent[0].text
    );
    assert!(
        sim.sent[0].text.ends_with("affected="),
        "{}",
        sim.sent[0].text
    );
}

#[test]
fn a_child_still_down_after_its_parent_recovers_alerts_on_its_own() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    sim.silent("ubnd", at(7.0));
    sim.silent("v1", at(7.2));
    sim.run_until(at(20.0));
    sim.agent("ubnd", heartbeat(), at(30.0));
    sim.run_until(at(120.0));
    let notices: Vec<_> = sim.sent.iter().flat_map(|s| s.notices.clone()).collect();
    let v1 = sim
        .alerts(AlertKind::AgentUnreachable)
        .into_iter()
        .find(|a| a.key.agent.as_str() == "v1")
        .unwrap()
        .id;
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert_eq!(notices[2], (v1, Notice::Opened), "after the grace period");
    assert!(sim.sent[2].at >= at(90.0));
}

#[test]
fn a_late_outage_sends_one_reported_late_message() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    sim.late("v3", went_down(at(1.0)), at(4.0));
    sim.run_until(at(10.0));
    assert!(sim.sent.is_empty(), "no stale down message: {:?}", sim.sent);
    sim.late("v3", came_back(at(1.0), 600_000), at(601.0));
    sim.run_until(at(620.0));
    assert_eq!(sim.sent.len(), 1);
    assert_eq!(sim.sent[0].notices[0].1, Notice::ResolvedLate);
}

#[test]
fn a_live_link_down_opens_and_resolves_with_two_messages() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    sim.agent("v1", went_down(at(1.0)), at(4.0));
    sim.run_until(at(10.0));
    sim.agent("v1", came_back(at(1.0), 20_000), at(21.0));
    sim.run_until(at(30.0));
    let notices: Vec<_> = sim.sent.iter().map(|s| s.notices[0].1).collect();
    assert_eq!(notices, vec![Notice::Opened, Notice::Resolved]);
    let alert = &sim.alerts(AlertKind::LinkDown)[0];
    assert_eq!(alert.resolved.unwrap().duration_ms, 20_000);
}

#[test]
fn sustained_loss_is_one_loss_alert_and_no_down_alert() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    // 20 % loss for 10 minutes, one round a second: 1 round in 5 loses one echo of 3, with an
    // occasional round losing two.
    sim.rounds("v1", 0..600, |i| {
        let loss = match i % 15 {
            0 | 5 => 33.3,
            10 => 66.7,
            _ => 0.0,
        };
        round(loss, 20.0)
    });
    let loss = sim.alerts(AlertKind::HighLoss);
    assert_eq!(loss.len(), 1, "{loss:#?}");
    assert!(loss[0].is_open());
    assert!(sim.alerts(AlertKind::LinkDown).is_empty());
    // Clean rounds for longer than clear_after close it.
    sim.rounds("v1", 600..1000, |_| round(0.0, 20.0));
    assert!(!sim.alerts(AlertKind::HighLoss)[0].is_open());
}

#[test]
fn latency_inflated_above_the_baseline_is_congestion() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    sim.rounds("v1", 0..1200, |i| {
        let rtt = if (600..1000).contains(&i) {
            180.0
        } else {
            25.0
        };
        round(0.0, rtt)
    });
    let congestion = sim.alerts(AlertKind::Congestion);
    assert_eq!(congestion.len(), 1, "{congestion:#?}");
    assert!(congestion[0].value.unwrap() > 3.0);
    assert!(
        sim.alerts(AlertKind::HighLatency).is_empty(),
        "180 ms is under 500 ms"
    );
}

#[test]
fn a_flapping_link_is_one_flapping_alert_not_a_storm() {
    let config = AlertsConfig {
        flap_window: std::time::Duration::from_secs(600),
        ..AlertsConfig::default()
    };
    let mut sim = Sim::new(config);
    all_online(&mut sim);
    for cycle in 0..6 {
        let t = 10.0 + 40.0 * cycle as f64;
        sim.agent("v1", went_down(at(t)), at(t + 3.0));
        sim.run_until(at(t + 20.0));
        sim.agent("v1", came_back(at(t), 20_000), at(t + 20.0));
        sim.run_until(at(t + 39.0));
    }
    assert_eq!(sim.alerts(AlertKind::Flapping).len(), 1);
    let opened = sim
        .sent
        .iter()
        .flat_map(|s| s.notices.clone())
        .filter(|n| n.1 == Notice::Opened)
        .count();
    assert!(opened <= 3, "{:#?}", sim.sent);
    // Quiet for a whole window: the flapping alert resolves.
    sim.run_until(at(1000.0));
    assert!(!sim.alerts(AlertKind::Flapping)[0].is_open());
}

#[test]
fn a_silenced_site_keeps_history_and_speaks_after_the_silence() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    let silence = Event::SilenceAdded {
        site: "trung-son".into(),
        from: at(0.0),
        until: at(100.0),
        by: "Lan".into(),
        note: None,
    };
    sim.store("v2", Origin::Collector, silence, at(0.0), false);
    sim.silent("v2", at(7.0));
    sim.run_until(at(90.0));
    assert!(sim.sent.is_empty());
    assert_eq!(sim.alerts(AlertKind::AgentUnreachable).len(), 1);
    sim.run_until(at(110.0));
    assert_eq!(sim.sent.len(), 1, "still down after the silence");
}

#[test]
fn a_restarted_collector_does_not_notify_again() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    sim.silent("v2", at(7.0));
    sim.run_until(at(30.0));
    assert_eq!(sim.sent.len(), 1);
    let mut again = sim.replayed();
    again.run_until(at(60.0));
    assert!(again.sent.is_empty(), "{:?}", again.sent);
    assert_eq!(again.alerting.book, sim.alerting.book);
}

#[test]
fn reminders_repeat_until_acknowledged() {
    let config = AlertsConfig {
        reminder_every: Some(std::time::Duration::from_secs(60)),
        ..AlertsConfig::default()
    };
    let mut sim = Sim::new(config);
    all_online(&mut sim);
    sim.silent("v2", at(7.0));
    sim.run_until(at(140.0));
    let reminders = |sim: &Sim| {
        sim.sent
            .iter()
            .filter(|s| s.notices[0].1 == Notice::Reminder)
            .count()
    };
    assert_eq!(reminders(&sim), 2);
    let id = sim.alerts(AlertKind::AgentUnreachable)[0].id;
    let ack = Event::AlertAcknowledged {
        alert: id,
        by: "Hùng".into(),
        note: None,
    };
    sim.store("v2", Origin::Collector, ack, at(141.0), false);
    sim.run_until(at(400.0));
    assert_eq!(reminders(&sim), 2);
}

#[test]
fn an_unknown_agent_is_reported() {
    let mut sim = Sim::new(AlertsConfig::default());
    sim.agent("stranger", heartbeat(), at(0.0));
    sim.run_until(at(5.0));
    let alerts = sim.alerts(AlertKind::UnknownAgent);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].key.agent.as_str(), "stranger");
}

fn device() -> netmon_events::Device {
    netmon_events::Device {
        address: "10.20.0.1".into(),
        name: Some("cam-tu-router".into()),
    }
}

fn uplink() -> netmon_events::Interface {
    netmon_events::Interface {
        index: 2,
        name: "wan0".into(),
        alias: None,
    }
}

#[test]
fn a_device_restart_is_told_once() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    let reboot = Event::DeviceRebooted {
        device: device(),
        uptime_s: 12,
        previous_uptime_s: 864_000,
    };
    sim.agent("v1", reboot, at(5.0));
    sim.run_until(at(30.0));
    let alerts = sim.alerts(AlertKind::DeviceRebooted);
    assert_eq!(alerts.len(), 1);
    assert!(!alerts[0].is_open());
    assert_eq!(sim.sent.len(), 1);
    assert_eq!(sim.sent[0].notices[0].1, Notice::Opened);
}

#[test]
fn an_interface_down_and_a_saturated_uplink_are_alerts() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    let down = Event::InterfaceWentDown {
        device: device(),
        interface: uplink(),
        oper_status: netmon_events::OperStatus::Down,
    };
    sim.agent("ubnd", down, at(1.0));
    sim.run_until(at(5.0));
    assert!(sim.alerts(AlertKind::InterfaceDown)[0].is_open());
    let back = Event::InterfaceCameBack {
        device: device(),
        interface: uplink(),
        down_for_ms: 4000,
    };
    sim.agent("ubnd", back, at(5.0));
    sim.run_until(at(6.0));
    assert!(!sim.alerts(AlertKind::InterfaceDown)[0].is_open());
    // 98 % out for 5 minutes, polled every 10 s: congestion (degraded, not down).
    for i in 0..30 {
        let sample = Event::InterfaceCountersSampled {
            device: device(),
            interface: uplink(),
            interval_ms: 10_000,
            in_bps: 1e6,
            out_bps: 49e6,
            speed_bps: Some(50_000_000),
            in_util_pct: Some(2.0),
            out_util_pct: Some(98.0),
            in_errors_ps: 0.0,
            out_errors_ps: 0.0,
            in_discards_ps: 0.0,
            out_discards_ps: 0.0,
            oper_status: netmon_events::OperStatus::Up,
        };
        sim.agent("ubnd", sample, at(10.0 + 10.0 * i as f64));
        sim.evaluate(at(10.0 + 10.0 * i as f64));
    }
    let congestion = sim.alerts(AlertKind::Congestion);
    assert_eq!(congestion.len(), 1);
    assert_eq!(congestion[0].key.subject.as_deref(), Some("10.20.0.1/wan0"));
}
