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

    let windows = wait_for(
        "2 answered probe windows in the store",
        Duration::from_secs(40),
        || {
            let windows = village.events(Some("probe_window_completed"));
            let answered = windows
                .iter()
                .filter(|w| answered(&w.envelope.event))
                .count();
            (answered >= 2).then_some(windows)
        },
    );
    assert!(
        village.events(Some("probe_round_completed")).is_empty(),
        "rounds are not sent: windows are"
    );
    for window in &windows {
        assert_eq!(window.envelope.agent.as_str(), village.agent_id);
        assert_eq!(window.province.as_deref(), Some(village.province.as_str()));
        let target = window.envelope.event.target().unwrap();
        assert_eq!(
            target.name, TARGET_NAME,
            "diacritics must survive every hop"
        );
        assert_eq!(target.address.to_string(), village.target_addr);
        assert_eq!(serde_json_role(&window.json), "commune");
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

/// A probe window in which some echo was answered.
fn answered(event: &Event) -> bool {
    matches!(event, Event::ProbeWindowCompleted { received, .. } if *received > 0)
}

/// Waits for the first answered probe window of `village`.
fn first_answered_window(village: &mut Village) {
    wait_for("an answered probe window", Duration::from_secs(40), || {
        village
            .events(Some("probe_window_completed"))
            .into_iter()
            .find(|w| answered(&w.envelope.event))
    });
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
    first_answered_window(&mut village);

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
        // Detection as a user sees it: from the cut to the event in the collector's store.
        let delay = down.received().unwrap() - cut_at;
        eprintln!(
            "cut {cut}: link_went_down stored after {} ms (agent time {} ms after): {}",
            delay.num_milliseconds(),
            (down.envelope.time - cut_at).num_milliseconds(),
            down.json
        );
        assert!(
            delay <= chrono::Duration::seconds(5),
            "cut {cut}: detected after {} ms (limit 5000)",
            delay.num_milliseconds()
        );
        assert!(
            delay >= chrono::Duration::zero(),
            "cut {cut}: link_went_down stored before the cut: {}",
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
        "link-down detection (cut → stored) over {cuts} cuts (interval 1s, count 3, timeout 1s, \
         down_after 3): median {median} ms, max {max} ms, all {delays_ms:?}"
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
    first_answered_window(&mut village);

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

    // Windows that began after the loss did and ended before it was cleared (1 s margin): the
    // loss over all their echoes.
    let window_from = loss_from + chrono::Duration::seconds(1);
    let windows: Vec<(u32, u32)> = village
        .events(Some("probe_window_completed"))
        .iter()
        .filter_map(|w| match w.envelope.event {
            Event::ProbeWindowCompleted {
                window_ms,
                sent,
                received,
                ..
            } => {
                let start = w.envelope.time - chrono::Duration::milliseconds(window_ms as i64);
                (start >= window_from && w.envelope.time <= loss_to).then_some((sent, received))
            }
            _ => None,
        })
        .collect();
    let (sent, received) = windows
        .iter()
        .fold((0, 0), |(s, r), (ws, wr)| (s + ws, r + wr));
    let loss = f64::from(sent - received) * 100.0 / f64::from(sent.max(1));
    eprintln!(
        "20 % loss for {LOSS_FOR:?}: {} windows, {sent} echoes, loss {loss:.1} %",
        windows.len()
    );
    assert!(
        windows.len() >= 4,
        "too few windows within the loss: {}",
        windows.len()
    );
    assert!(
        (10.0..=30.0).contains(&loss),
        "loss {loss:.1} % over {sent} echoes: the loss was not what was configured"
    );

    // Everything the agent recorded until the loss was cleared has reached the store once a later
    // window has (one connection, QoS 1: in order).
    wait_for(
        "a probe window after the loss",
        Duration::from_secs(25),
        || {
            village
                .events(Some("probe_window_completed"))
                .into_iter()
                .find(|w| w.envelope.time > loss_to)
        },
    );
    let downs = village.events(Some("link_went_down"));
    assert!(
        downs.is_empty(),
        "20 % loss is not an outage, but the agent reported: {:?}",
        downs.iter().map(|d| &d.json).collect::<Vec<_>>()
    );
}
