//! Nothing lost, nothing doubled, on the host: an agent probing loopback addresses streams about
//! 10 events/s while the collector is killed, the broker restarts, or the agent's journal is
//! corrupted. Each test reads the store with `netmon-collector events --json` and checks with the
//! [`Ledger`] that every seq of every boot is there exactly once; the counts are printed
//! (`delivery[…]: sent … stored … duplicates … missing …`) for `docs/benchmarks.md`.
//! The lab tests (uplink cuts in namespaces) are in `delivery_lab`.

use std::io::Write as _;
use std::time::Duration;

use netmon_tests::agent::{journal_records, journal_segments};
use netmon_tests::daemons::free_port;
use netmon_tests::ledger::wait_ledger;
use netmon_tests::{
    Agent, AgentConfig, Collector, Ledger, LocalBroker, Scratch, TargetConfig, shared_url, unique,
    wait_for,
};

/// An agent on the host making about 10 events/s: two loopback targets every 200 ms, each round
/// its own report window (the densest stream an agent can be configured to send).
pub fn fast_agent(agent_id: &str, province: &str, url: &str) -> AgentConfig {
    let mut config = AgentConfig::new(agent_id, province, url);
    config.interval = "200ms".into();
    config.report_every = Some("200ms".into());
    config.count = 1;
    config.timeout = "150ms".into();
    config.heartbeat = "2s".into();
    for (name, address, role) in [
        ("Bộ định tuyến thôn Giang Trung", "127.0.0.1", "gateway"),
        ("UBND xã Định Long", "127.0.0.2", "commune"),
    ] {
        config.targets.push(TargetConfig {
            name: name.into(),
            address: address.into(),
            role: role.into(),
        });
    }
    config
}

/// Waits until at least `more` events beyond `seen` are stored; returns the new count.
fn wait_progress(collector: &Collector, agent: &str, seen: u64, more: u64, what: &str) -> u64 {
    let (ledger, _) = wait_ledger(collector, agent, what, Duration::from_secs(60), |l, _| {
        l.tally().stored >= seen + more
    });
    ledger.tally().stored
}

/// Stops the agent cleanly, then waits until the store holds every event it recorded and the
/// collector's retained watermark covers them; checks exactly-once and returns the final ledger.
pub fn finish(collector: &Collector, agent: &mut Agent, province: &str, label: &str) -> Ledger {
    agent.stop().unwrap();
    let agent_id = agent.config.agent_id.clone();
    let (ledger, _) = wait_ledger(
        collector,
        &agent_id,
        "every recorded event stored and acknowledged",
        Duration::from_secs(60),
        |ledger, _| {
            let tally = ledger.tally();
            if !tally.missing.is_empty() || tally.expected == 0 {
                return false;
            }
            // The retained ack must reach each boot's last stored seq, and never pass it.
            let Ok(Some(ack)) = collector.ack(province, &agent_id) else {
                return false;
            };
            ledger.boots().iter().all(|boot| {
                let max = ledger.max_seq(boot).unwrap_or(0);
                let acked = netmon_events::BootId::new(boot.as_str())
                    .ok()
                    .and_then(|b| ack.seq_for(&b));
                assert!(
                    acked.is_none_or(|a| a <= max && ledger.complete_up_to(boot, a)),
                    "{label}: the collector acknowledged {boot} up to {acked:?} beyond what it \
                     stored ({max})"
                );
                acked == Some(max)
            })
        },
    );
    let tally = ledger.tally();
    tally.report(label);
    tally.assert_exactly_once(label);
    ledger
}

#[test]
fn collector_killed_three_times_loses_nothing() {
    let scratch = Scratch::new("collector-kills").unwrap();
    let province = unique("kills");
    let mut collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let agent_id = unique("dinh-long");
    let mut agent = Agent::start(
        "agent",
        fast_agent(&agent_id, &province, &shared_url()),
        &scratch,
        None,
    )
    .unwrap();

    let mut seen = 0;
    for kill in 1..=3 {
        seen = wait_progress(&collector, &agent_id, seen, 20, "the stream to flow");
        collector.kill_and_restart("collector", &scratch).unwrap();
        eprintln!("collector killed ({kill}) with {seen} events stored");
    }
    wait_progress(
        &collector,
        &agent_id,
        seen,
        30,
        "the stream after the last kill",
    );
    agent.proc.assert_running().unwrap();

    let ledger = finish(&collector, &mut agent, &province, "collector killed 3×");
    assert_eq!(ledger.boots().len(), 1, "the agent never restarted");
}

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let scratch = Scratch::new("broker-restart").unwrap();
    let mut broker = LocalBroker::start("mosquitto", &scratch).unwrap();
    let province = unique("broker");
    let collector = Collector::start_on("collector", &scratch, &province, &broker.url()).unwrap();
    let agent_id = unique("kien-tho");
    let mut agent = Agent::start(
        "agent",
        fast_agent(&agent_id, &province, &broker.url()),
        &scratch,
        None,
    )
    .unwrap();

    let mut seen = wait_progress(&collector, &agent_id, 0, 20, "the stream to flow");
    // A clean restart, then a crash (the broker loses what it had not saved).
    for signal in ["TERM", "KILL"] {
        broker.restart(signal).unwrap();
        eprintln!("broker restarted after SIG{signal} with {seen} events stored");
        seen = wait_progress(
            &collector,
            &agent_id,
            seen,
            30,
            "the stream after the restart",
        );
    }
    agent.proc.assert_running().unwrap();
    finish(&collector, &mut agent, &province, "broker restarted 2×");
}

#[test]
fn corrupted_journal_tail_is_truncated_and_reported() {
    let scratch = Scratch::new("torn-journal").unwrap();
    let province = unique("torn");
    let agent_id = unique("tho-lien");

    // No broker listens on this port: every event stays in the journal.
    let nowhere = format!("mqtt://127.0.0.1:{}", free_port().unwrap());
    let mut offline = Agent::start(
        "agent-offline",
        fast_agent(&agent_id, &province, &nowhere),
        &scratch,
        None,
    )
    .unwrap();
    let dir = offline.journal_dir();
    let journalled = |min: usize| {
        let records: usize = journal_segments(&dir)
            .ok()?
            .iter()
            .filter_map(|s| std::fs::read(s).ok())
            .map(|bytes| journal_records(&bytes).len())
            .sum();
        (records >= min).then_some(())
    };
    wait_for("30 events in the journal", Duration::from_secs(30), || {
        offline.proc.assert_running().unwrap();
        journalled(30)
    });
    // `netmon-agent journal` reads the journal of a running agent.
    let report = offline.journal().unwrap();
    assert!(report["backlog_events"].as_u64().unwrap() >= 30, "{report}");
    assert_eq!(
        report["acked"],
        serde_json::json!([]),
        "nothing acknowledged: {report}"
    );
    offline.stop().unwrap();

    // Tear the newest record in half and append garbage after it, as a power cut might.
    let (segment, bytes, records) = journal_segments(&dir)
        .unwrap()
        .into_iter()
        .rev()
        .find_map(|segment| {
            let bytes = std::fs::read(&segment).ok()?;
            let records = journal_records(&bytes);
            (!records.is_empty()).then_some((segment, bytes, records))
        })
        .expect("a journal segment holding records");
    let torn = records.last().unwrap().clone();
    let boot = torn.envelope.boot.as_str().to_owned();
    assert!(
        records.iter().all(|r| r.envelope.boot.as_str() == boot),
        "one boot in the newest segment"
    );
    assert_eq!(
        torn.offset + torn.len,
        bytes.len(),
        "the newest record ends the segment"
    );
    let file = std::fs::File::options().write(true).open(&segment).unwrap();
    file.set_len((torn.offset + torn.len / 2) as u64).unwrap();
    drop(file);
    let mut file = std::fs::File::options()
        .append(true)
        .open(&segment)
        .unwrap();
    file.write_all(&[0xAB; 37]).unwrap();
    drop(file);
    let torn_seq = torn.envelope.seq;
    eprintln!(
        "tore {} at offset {} (boot {boot} seq {torn_seq})",
        segment.display(),
        torn.offset
    );

    // The CLI sees the damage without repairing it (read-only); the newest intact event is the
    // one before the torn record.
    let report = offline.journal().unwrap();
    assert!(report["damaged_bytes"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        report["newest"]["seq"].as_u64(),
        Some(torn_seq - 1),
        "{report}"
    );
    assert_eq!(
        report["backlog_events"].as_u64(),
        Some(torn_seq - 1),
        "{report}"
    );

    let collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let mut config = offline.config.clone();
    config.mqtt_url = shared_url();
    let mut online = Agent::start("agent-online", config, &scratch, None).unwrap();

    // Every event before the torn one arrives; the torn one is gone, not half-delivered.
    wait_ledger(
        &collector,
        &agent_id,
        "the journalled events before the torn record",
        Duration::from_secs(60),
        |ledger, _| ledger.complete_up_to(&boot, torn_seq - 1),
    );
    // A warning naming the damaged segment and the damage (what was cut off, and where).
    let segment_name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let reported = online.proc.log().lines().any(|line| {
        let line = line.to_lowercase();
        line.contains("warn") && line.contains(&segment_name) && line.contains("damage")
    });
    assert!(
        reported,
        "no warning naming the damaged {segment_name} in the agent's log"
    );
    let ledger = finish(&collector, &mut online, &province, "torn journal tail");
    assert_eq!(
        ledger.max_seq(&boot),
        Some(torn_seq - 1),
        "the torn record (seq {torn_seq}) must not be delivered, everything before must"
    );
    assert_eq!(
        ledger.boots().len(),
        2,
        "the offline boot and the online one"
    );
}
