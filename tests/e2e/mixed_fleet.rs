//! A fleet upgrades over months: an agent of the previous release (a `probe_round_completed`
//! every round, envelopes in full) and a current agent (a `probe_window_completed` per target per
//! window in compact batches, targets by key) report to one collector through the real broker.
//! Both are stored, both fold into the same live link state, nothing is refused.

use std::time::Duration;

use netmon_events::testing::{Boot, round_rtt, started, target};
use netmon_events::{Event, Sender, encode_batch_from};
use netmon_tests::{
    Agent, AgentConfig, Collector, Scratch, Sniffer, TargetConfig, publish, shared_url, unique,
    wait_for,
};
use serde_json::Value;

#[test]
fn an_old_format_agent_and_a_new_one_share_one_collector() {
    let scratch = Scratch::new("mixed-fleet").unwrap();
    let province = unique("mixed");
    let url = shared_url();
    let collector = Collector::start_local("collector", &scratch, &province).unwrap();

    let new_id = unique("thon-moi");
    let filter = format!("netmon/v1/{province}/{new_id}/events");
    let sniffer = Sniffer::start("sniffer", None, &url, &filter, &scratch).unwrap();
    let mut config = AgentConfig::new(&new_id, &province, &url);
    config.targets.push(TargetConfig {
        name: "Cổng thôn Mới".into(),
        address: "127.0.0.1".into(),
        role: "gateway".into(),
    });
    let mut agent = Agent::start("agent", config, &scratch, None).unwrap();

    // The previous release's agent: the sender form, one round per event, targets in full.
    let old_id = unique("thon-cu");
    let gateway = target("Cổng thôn Cũ", "127.0.0.2");
    let mut old = Boot::new(&old_id);
    let mut rounds = vec![old.next(started())];
    rounds.extend((0..5).map(|_| old.next(round_rtt(&gateway, 3, 4.5))));
    let sender = Sender {
        boot: old.boot.clone(),
        mono_ms: rounds.last().unwrap().mono_ms,
    };
    let topic = format!("netmon/v1/{province}/{old_id}/events");
    publish(&url, &topic, &encode_batch_from(&sender, &rounds)).unwrap();

    // Both links up in the live state, each with its last RTT.
    let links = wait_for(
        "both agents' links up with an RTT in /api/v1/state",
        Duration::from_secs(40),
        || {
            agent.proc.assert_running().unwrap();
            let state = collector.get_json("/api/v1/state").ok()?;
            let links: Vec<Value> = state["links"].as_array()?.clone();
            let up = |agent: &str| {
                links.iter().any(|l| {
                    l["agent"] == agent && l["status"] == "up" && l["last_rtt_ms"].is_number()
                })
            };
            (up(&new_id) && up(&old_id)).then_some(links)
        },
    );
    eprintln!("links: {links:#?}");

    // What each stored: rounds for the old agent, a description and windows for the new one.
    let types = |agent: &str| -> Vec<String> {
        let events = collector.events(&["--agent", agent]).unwrap();
        events
            .iter()
            .map(|e| e.envelope.event.type_name().to_string())
            .collect()
    };
    let old_types = types(&old_id);
    assert_eq!(
        old_types
            .iter()
            .filter(|t| *t == "probe_round_completed")
            .count(),
        5
    );
    let new_events = collector.events(&["--agent", &new_id]).unwrap();
    assert!(
        new_events
            .iter()
            .any(|e| matches!(&e.envelope.event, Event::TargetsDescribed { targets } if targets[0].target.name == "Cổng thôn Mới")),
        "{:?}",
        types(&new_id)
    );
    let window = new_events
        .iter()
        .find(|e| matches!(e.envelope.event, Event::ProbeWindowCompleted { .. }))
        .expect("a probe window stored");
    assert_eq!(
        window.envelope.event.target().unwrap().name,
        "Cổng thôn Mới"
    );
    assert!(!types(&new_id).iter().any(|t| t == "probe_round_completed"));

    // On the wire the new agent sent compact batches: agent and boot once, the target by key.
    let wire = std::fs::read_to_string(scratch.join("sniffer.txt")).unwrap();
    let compact = wire
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter_map(|(_, payload)| serde_json::from_str::<Value>(payload).ok())
        .find(|batch| {
            batch["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["type"] == "probe_window_completed"))
        })
        .expect("a batch with a window on the wire");
    assert_eq!(compact["agent"], new_id.as_str(), "{compact}");
    let sent = compact["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "probe_window_completed")
        .unwrap();
    assert_eq!(sent["target"], 1, "the target by its key: {sent}");
    assert!(
        sent.get("agent").is_none() && sent.get("boot").is_none(),
        "{sent}"
    );

    let intake = collector.get_json("/api/v1/intake").unwrap();
    assert_eq!(intake["rejected"], 0, "nothing refused: {intake}");
    drop(sniffer);
}
