//! The agent in a village namespace, probing the commune across a real veth link, reporting to a
//! real Mosquitto and collector in the province namespace.

use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_events::Event;
use netmon_tests::wait_for;

use crate::village::{TARGET_NAME, Village};

#[test]
fn lab_probe_events_reach_the_store() {
    let mut village = Village::start("lab-probe", |_| {});

    let rounds = wait_for(
        "3 answered probe rounds in the store",
        Duration::from_secs(30),
        || {
            let rounds = village.events(Some("probe_round_completed"));
            let answered = rounds
            .iter()
            .filter(|r| matches!(r.envelope.event, Event::ProbeRoundCompleted { received, .. } if received > 0))
            .count();
            (answered >= 3).then_some(rounds)
        },
    );
    for round in &rounds {
        assert_eq!(round.envelope.agent.as_str(), village.agent_id);
        assert_eq!(round.province.as_deref(), Some(village.province.as_str()));
        let target = round.envelope.event.target().unwrap();
        assert_eq!(
            target.name, TARGET_NAME,
            "diacritics must survive every hop"
        );
        assert_eq!(target.address.to_string(), village.target_addr);
        assert_eq!(serde_json_role(&round.json), "commune");
    }

    let all = village.events(None);
    let first = all.iter().min_by_key(|e| e.store_id).unwrap();
    assert_eq!(first.envelope.seq, 1, "first stored event: {}", first.json);
    assert!(
        matches!(first.envelope.event, Event::AgentStarted { targets: 1, .. }),
        "first stored event must be agent_started: {}",
        first.json
    );
    let boot = &first.envelope.boot;
    let mut seqs: Vec<u64> = all
        .iter()
        .filter(|e| &e.envelope.boot == boot)
        .map(|e| e.envelope.seq)
        .collect();
    seqs.sort_unstable();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "seqs of one boot are gap-free from 1, without duplicates"
    );
    let status = village
        .agent
        .proc
        .terminate(Duration::from_secs(10))
        .unwrap();
    assert!(
        status.success(),
        "the agent must exit 0 on SIGTERM, got {status}"
    );
}

fn serde_json_role(line: &serde_json::Value) -> &str {
    line["target"]["role"].as_str().unwrap_or_default()
}

/// Finds the first event in `events` beyond the first `seen`, if any.
fn next_after(
    events: Vec<netmon_tests::StoredEvent>,
    seen: usize,
) -> Option<netmon_tests::StoredEvent> {
    events.into_iter().nth(seen)
}

#[test]
fn lab_link_cut_is_reported_within_5s() {
    // NETMON_LINK_CUTS (default 10) cuts; `tests/bench/run outage` asks for 20.
    let cuts: usize = std::env::var("NETMON_LINK_CUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .max(2);
    const CUT_FOR: Duration = Duration::from_secs(8);
    let mut village = Village::start("lab-cut", |config| {
        config.interval = "1s".into();
        config.count = 3;
        config.down_after = 3;
        config.timeout = "1s".into();
    });
    wait_for("an answered probe round", Duration::from_secs(30), || {
        village
            .events(Some("probe_round_completed"))
            .into_iter()
            .find(|r| matches!(r.envelope.event, Event::ProbeRoundCompleted { received, .. } if received > 0))
    });

    let mut delays_ms = Vec::new();
    for cut in 0..cuts {
        let downs_seen = village.events(Some("link_went_down")).len();
        let backs_seen = village.events(Some("link_came_back")).len();

        let cut_at: DateTime<Utc> = Utc::now();
        village.lab.cut("link").unwrap();
        let down = wait_for(
            &format!("link_went_down after cut {cut}"),
            Duration::from_secs(15),
            || next_after(village.events(Some("link_went_down")), downs_seen),
        );
        let delay = down.envelope.time - cut_at;
        eprintln!(
            "cut {cut}: link_went_down after {} ms: {}",
            delay.num_milliseconds(),
            down.json
        );
        assert!(
            delay <= chrono::Duration::seconds(5),
            "cut {cut}: detected after {} ms (limit 5000)",
            delay.num_milliseconds()
        );
        assert!(
            delay >= chrono::Duration::zero(),
            "cut {cut}: link_went_down stamped before the cut: {}",
            down.json
        );
        assert_eq!(down.envelope.event.target().unwrap().name, TARGET_NAME);
        delays_ms.push(delay.num_milliseconds());

        // The cut lasts CUT_FOR in total: this sleep is the experiment's duration, not a wait.
        let elapsed = (Utc::now() - cut_at).to_std().unwrap_or_default();
        std::thread::sleep(CUT_FOR.saturating_sub(elapsed));
        let restored_at = Utc::now();
        village.lab.restore("link").unwrap();
        let cut_ms = (restored_at - cut_at).num_milliseconds();

        let back = wait_for(
            &format!("link_came_back after cut {cut}"),
            Duration::from_secs(15),
            || next_after(village.events(Some("link_came_back")), backs_seen),
        );
        let Event::LinkCameBack { down_for_ms, .. } = back.envelope.event else {
            panic!("not a link_came_back: {}", back.json);
        };
        eprintln!("cut {cut}: cut for {cut_ms} ms, link_came_back says down_for_ms {down_for_ms}");
        let down_for_ms = i64::try_from(down_for_ms).unwrap();
        assert!(
            (down_for_ms - cut_ms).abs() <= 3000,
            "cut {cut}: down_for_ms {down_for_ms} vs real cut {cut_ms} ms: {}",
            back.json
        );
    }

    delays_ms.sort_unstable();
    let median = (delays_ms[cuts / 2 - 1] + delays_ms[cuts / 2]) / 2;
    let max = delays_ms[cuts - 1];
    eprintln!(
        "link-down detection over {cuts} cuts (interval 1s, count 3, timeout 1s, down_after 3): \
         median {median} ms, max {max} ms, all {delays_ms:?}"
    );
}

#[test]
fn lab_twenty_percent_loss_is_not_an_outage() {
    const LOSS_FOR: Duration = Duration::from_secs(60);
    let mut village = Village::start("lab-loss", |config| {
        config.interval = "250ms".into();
        config.count = 3;
        config.down_after = 3;
        config.timeout = "200ms".into();
    });
    wait_for("an answered probe round", Duration::from_secs(30), || {
        village
            .events(Some("probe_round_completed"))
            .into_iter()
            .find(|r| matches!(r.envelope.event, Event::ProbeRoundCompleted { received, .. } if received > 0))
    });

    let loss_from = Utc::now();
    village.lab.add_loss("commune", 20).unwrap();
    // The loss lasts LOSS_FOR: this sleep is the experiment's duration, not a wait. The agent and
    // collector are checked alive every second meanwhile.
    let end = std::time::Instant::now() + LOSS_FOR;
    while std::time::Instant::now() < end {
        village.agent.proc.assert_running().unwrap();
        std::thread::sleep(Duration::from_secs(1).min(end - std::time::Instant::now()));
    }
    let loss_to = Utc::now();
    village.lab.clear_loss("commune").unwrap();

    // Rounds that started after the loss did and ended before it was cleared (1 s margin).
    let window_from = loss_from + chrono::Duration::seconds(1);
    let losses: Vec<f64> = village
        .events(Some("probe_round_completed"))
        .iter()
        .filter(|r| r.envelope.time >= window_from && r.envelope.time <= loss_to)
        .filter_map(|r| match r.envelope.event {
            Event::ProbeRoundCompleted { loss_pct, .. } => Some(loss_pct),
            _ => None,
        })
        .collect();
    let mean = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
    eprintln!(
        "20 % loss for {LOSS_FOR:?}: {} rounds, mean loss {mean:.1} %",
        losses.len()
    );
    assert!(
        losses.len() >= 100,
        "too few rounds in the window: {}",
        losses.len()
    );
    assert!(
        (10.0..=30.0).contains(&mean),
        "mean loss {mean:.1} % over {} rounds: the loss was not what was configured",
        losses.len()
    );

    // Everything the agent recorded until the loss was cleared has reached the store once a later
    // round has (one connection, QoS 1: in order).
    wait_for(
        "a probe round after the loss window",
        Duration::from_secs(15),
        || {
            village
                .events(Some("probe_round_completed"))
                .into_iter()
                .find(|r| r.envelope.time > loss_to)
        },
    );
    let downs = village.events(Some("link_went_down"));
    assert!(
        downs.is_empty(),
        "20 % loss is not an outage, but the agent reported: {:?}",
        downs.iter().map(|d| &d.json).collect::<Vec<_>>()
    );
}
