//! A collector killed with SIGKILL in the middle of a stream restarts from its snapshot
//! (ADR 15): `/healthz` answers 200 within 5 s, the log says it loaded the snapshot and replayed
//! only the events after it, and once the broker has delivered the rest its state is the state a
//! full replay of the same store gives (`netmon-collector status --json` with the daemon
//! stopped).

use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use netmon_events::testing::{came_back, described, round, started, target, went_down, window};
use netmon_events::{BootId, Envelope, Event, SCHEMA_VERSION, encode_batch};
use netmon_tests::configs::CollectorConfig;
use netmon_tests::{Collector, Scratch, publish, shared_url, unique, wait_for};
use serde_json::Value;

/// The simulated agents.
const AGENTS: [&str; 3] = ["giang-trung", "tho-lien", "kien-tho"];
/// Batches each agent publishes; one batch of all agents every [`PACE`].
const BATCHES: usize = 120;
/// The stream's pace: an experiment's duration (≈ 12 s in all), long enough to kill it midway.
const PACE: Duration = Duration::from_millis(100);
/// The goal of issue 16.
const RESTART_WITHIN: Duration = Duration::from_secs(5);

/// One agent's boot, its envelopes stamped with the time they are made.
struct Agent {
    name: &'static str,
    boot: BootId,
    seq: u64,
    started: Instant,
}

impl Agent {
    fn next(&mut self, event: Event) -> Envelope {
        self.seq += 1;
        Envelope {
            v: SCHEMA_VERSION,
            agent: self.name.parse().unwrap(),
            boot: self.boot.clone(),
            seq: self.seq,
            time: Utc::now().trunc_subsecs(3),
            mono_ms: self.started.elapsed().as_millis() as u64,
            event,
        }
    }
}

/// Publishes the stream: each agent starts, describes two links, then reports rounds and
/// windows, heartbeats, and takes its second link down and back every 20 batches. Returns each
/// agent's last seq.
fn stream(url: &str, province: &str) -> Vec<(&'static str, u64)> {
    let gateway = target("Cổng thôn", "192.168.1.1");
    let commune = target("UBND xã Cẩm Tú", "10.20.0.1");
    let mut agents: Vec<Agent> = AGENTS
        .iter()
        .map(|name| Agent {
            name,
            boot: unique(&format!("{name}-boot")).parse().unwrap(),
            seq: 0,
            started: Instant::now(),
        })
        .collect();
    for batch in 0..BATCHES {
        for agent in &mut agents {
            let mut events = Vec::new();
            if batch == 0 {
                events.push(agent.next(started()));
                events.push(agent.next(described(&[gateway.clone(), commune.clone()])));
            }
            events.push(agent.next(round(&gateway, 3)));
            let cycle = batch % 20;
            let down = (10..15).contains(&cycle);
            events.push(agent.next(window(&commune, if down { 0 } else { 180 })));
            match cycle {
                10 => events.push(agent.next(went_down(&commune, Utc::now().trunc_subsecs(3)))),
                15 => {
                    let since = Utc::now().trunc_subsecs(3) - chrono::Duration::seconds(2);
                    events.push(agent.next(came_back(&commune, since, 2000)));
                }
                5 => events.push(agent.next(Event::AgentHeartbeat {
                    uptime_s: batch as u64,
                    backlog: 0,
                })),
                _ => {}
            }
            let topic = netmon_events::testing::events_topic(province, agent.name);
            publish(url, &topic, &encode_batch(&events)).unwrap();
        }
        // The stream's pace (an experiment's duration, not a synchronisation).
        std::thread::sleep(PACE);
    }
    agents.iter().map(|a| (a.name, a.seq)).collect()
}

/// `/api/v1/state` once it shows every agent at (at least) its seq in `last`.
fn folded(collector: &Collector, last: &[(&str, u64)]) -> Option<String> {
    let (code, body) = collector.get("/api/v1/state").ok()?;
    let state: Value = serde_json::from_str(&body).ok()?;
    let agents = state["agents"].as_array()?;
    let all = last.iter().all(|(name, seq)| {
        agents
            .iter()
            .any(|a| a["agent"] == *name && a["last_seq"].as_u64() >= Some(*seq))
    });
    (code == 200 && all).then_some(body)
}

#[test]
fn a_collector_killed_mid_stream_restarts_from_its_snapshot_in_seconds() {
    let scratch = Scratch::new("restart").unwrap();
    let province = unique("restart");
    let url = shared_url();
    let config = CollectorConfig {
        province: Some(province.clone()),
        snapshot_every: Some("1s".into()),
        ..CollectorConfig::on_loopback(&url, &scratch.join("collector.db")).unwrap()
    };
    let mut collector = Collector::start("collector", config, &scratch, None).unwrap();
    collector
        .wait_subscribed(&province, Duration::from_secs(20))
        .unwrap();

    let streaming = {
        let (url, province) = (url.clone(), province.clone());
        std::thread::spawn(move || stream(&url, &province))
    };
    // A snapshot taken while the stream runs: the log's next "snapshot written" after the
    // stream's first events are folded.
    wait_for("the stream's first events", Duration::from_secs(20), || {
        folded(&collector, &[(AGENTS[0], 3)])
    });
    let before = collector.proc.log().matches("snapshot written").count();
    wait_for("a snapshot of the stream", Duration::from_secs(20), || {
        (collector.proc.log().matches("snapshot written").count() > before).then_some(())
    });
    assert!(!streaming.is_finished(), "the stream ended before the kill");
    let log_before = collector.proc.log().len();
    let killed = Instant::now();
    collector.kill_and_restart("collector", &scratch).unwrap();
    let restart = killed.elapsed();
    println!("restart after SIGKILL until /healthz 200: {restart:?}");
    assert!(restart <= RESTART_WITHIN, "restart took {restart:?}");
    let log = collector.proc.log()[log_before..].to_owned();
    assert!(log.contains("snapshot loaded"), "{log}");
    assert!(!log.contains("snapshot ignored"), "{log}");
    assert!(!log.contains("snapshot_position=0 "), "{log}");

    let last = streaming.join().unwrap();
    let live = wait_for(
        "every event folded after the restart",
        Duration::from_secs(60),
        || folded(&collector, &last),
    );
    let status = collector.proc.terminate(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "{}", collector.proc.log());
    let output = netmon_tests::lab::run(
        netmon_tests::daemons::daemon_command("netmon-collector")
            .args(["status", "--json", "--config"])
            .arg(&collector.config_path),
    )
    .unwrap();
    let replayed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        live.trim_end(),
        replayed.trim_end(),
        "snapshot + tail + live must be the state a full replay gives"
    );
}
