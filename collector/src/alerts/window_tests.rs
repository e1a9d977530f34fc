//! Data-driven tests of the degradation rules at the cadence agents now report (ADR 14): one
//! `probe_window_completed` per link per minute. The rules keep their documented meaning —
//! smoothing, `sustain` and `clear_after` are durations — so the same conditions open the same
//! single alert as with a round a second (`tests.rs`).
#![allow(clippy::unwrap_used)]

use netmon_events::{AlertKind, Event, LinkRole, Target};

use super::AlertsConfig;
use super::tests::{Sim, all_online, at};

fn target() -> Target {
    Target {
        name: "Sở TT&TT".into(),
        address: "10.0.0.1".parse().unwrap(),
        role: LinkRole::Province,
    }
}

/// A minute of 60 rounds of 3 echoes, `lost` of 180 lost (whole echoes spread over rounds),
/// replies around `rtt` ms; `down_ms` of it the agent held the link down.
fn window(lost: u32, rtt: f64, down_ms: u64) -> Event {
    let received = 180 - lost;
    let rtt = (received > 0).then_some(rtt);
    Event::ProbeWindowCompleted {
        target: target(),
        window_ms: 60_000,
        rounds: 60,
        failed_rounds: 0,
        longest_failed_run: 0,
        down_ms,
        sent: 180,
        received,
        loss_pct: (f64::from(lost) * 10_000.0 / 180.0).round() / 100.0,
        rtt_min_ms: rtt.map(|r| r * 0.8),
        rtt_avg_ms: rtt,
        rtt_max_ms: rtt.map(|r| r * 1.5),
        rtt_mdev_ms: rtt.map(|r| r * 0.1),
        rtt_pct_ms: rtt.map(|r| (1..=9).map(|i| r * (0.9 + f64::from(i) * 0.02)).collect()),
    }
}

/// One window a minute from `agent` for minutes `minutes` (window `m` ends at `60 (m + 1)` s),
/// made by `window_at(m)`; the rules run at every window and every 15 s between.
fn windows(
    sim: &mut Sim,
    agent: &str,
    minutes: std::ops::Range<u32>,
    window_at: impl Fn(u32) -> Event,
) {
    for m in minutes {
        let end = 60.0 * f64::from(m + 1);
        sim.agent(agent, window_at(m), at(end));
        for quarter in 0..4 {
            sim.evaluate(at(end + 15.0 * f64::from(quarter)));
        }
    }
}

#[test]
fn sustained_loss_by_the_minute_is_one_loss_alert_and_clears() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    // 20 % loss for 10 minutes: 36 of 180 echoes a minute, give or take.
    windows(&mut sim, "v1", 0..10, |m| window(30 + (m % 3) * 6, 20.0, 0));
    let loss = sim.alerts(AlertKind::HighLoss);
    assert_eq!(loss.len(), 1, "{loss:#?}");
    assert!(loss[0].is_open());
    // Opened after `sustain` (2 min) of windows above 10 %, not at the first bad minute.
    assert!(loss[0].since >= at(60.0) && sim.alerts(AlertKind::LinkDown).is_empty());
    // Clean windows for longer than clear_after (5 min) close it; nothing else opens.
    windows(&mut sim, "v1", 10..18, |_| window(0, 20.0, 0));
    let loss = sim.alerts(AlertKind::HighLoss);
    assert_eq!(loss.len(), 1);
    assert!(!loss[0].is_open());
}

#[test]
fn a_single_bad_minute_opens_nothing() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    windows(&mut sim, "v1", 0..10, |m| {
        if m == 4 {
            window(90, 20.0, 0)
        } else {
            window(0, 20.0, 0)
        }
    });
    assert!(sim.alerts(AlertKind::HighLoss).is_empty());
}

#[test]
fn a_window_with_an_outage_in_it_is_not_a_loss_measurement() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    // Three minutes each half down (the link_down alert's business), then clean.
    windows(&mut sim, "v1", 0..3, |_| window(90, 20.0, 30_000));
    windows(&mut sim, "v1", 3..6, |_| window(0, 20.0, 0));
    assert!(sim.alerts(AlertKind::HighLoss).is_empty());
}

#[test]
fn latency_inflated_above_the_baseline_by_the_minute_is_congestion() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    // 10 minutes at 25 ms to learn the baseline, 7 at 180 ms, then back.
    windows(&mut sim, "v1", 0..20, |m| {
        let rtt = if (10..17).contains(&m) { 180.0 } else { 25.0 };
        window(0, rtt, 0)
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
fn an_agent_upgraded_from_rounds_to_windows_keeps_one_alert() {
    let mut sim = Sim::new(AlertsConfig::default());
    all_online(&mut sim);
    // Rounds at 20 % loss for 4 minutes (the old agent), then windows at 20 % (the new one).
    for i in 0..240u32 {
        // Three rounds in five lose one echo of three: 20 %.
        let received = if i % 5 < 3 { 2 } else { 3 };
        let round = Event::ProbeRoundCompleted {
            target: target(),
            sent: 3,
            received,
            rtt_min_ms: Some(20.0),
            rtt_avg_ms: Some(20.0),
            rtt_max_ms: Some(20.0),
            rtt_mdev_ms: Some(0.0),
            loss_pct: f64::from(3 - received) * 100.0 / 3.0,
        };
        sim.agent("v1", round, at(1.0 + f64::from(i)));
        if i % 4 == 0 {
            sim.evaluate(at(1.0 + f64::from(i)));
        }
    }
    assert_eq!(sim.alerts(AlertKind::HighLoss).len(), 1);
    windows(&mut sim, "v1", 4..10, |_| window(36, 20.0, 0));
    let loss = sim.alerts(AlertKind::HighLoss);
    assert_eq!(loss.len(), 1, "{loss:#?}");
    assert!(loss[0].is_open());
}
