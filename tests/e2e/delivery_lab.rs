//! Nothing lost, nothing doubled, in the network lab ([`Village`]): the village's uplink to the
//! province (broker and collector) is cut while the agent keeps recording; then the agent is
//! killed during the cut, or its journal fills up, or a link outage starts and ends while nobody
//! can hear about it. After the uplink returns, the store must hold every seq of every boot
//! exactly once, except exactly the ranges the agent declared lost (`journal_overflowed`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_tests::agent::{journal_records, journal_segments};
use netmon_tests::ledger::wait_ledger;
use netmon_tests::{Agent, AgentConfig, Ledger, StoredEvent, TargetConfig, Wire, unique, wait_for};

use crate::delivery::finish;
use crate::village::{TARGET_NAME, Village};

/// Probes every `interval` with one echo, the commune plus the given loopback addresses of the
/// village namespace, each round its own report window: (1 + extra) events per round.
fn fast(config: &mut AgentConfig, interval_ms: u64, loopbacks: &[&str]) {
    config.interval = format!("{interval_ms}ms");
    config.report_every = Some(format!("{interval_ms}ms"));
    config.count = 1;
    config.timeout = format!("{}ms", interval_ms * 4 / 5);
    config.heartbeat = "5s".into();
    for (i, address) in loopbacks.iter().enumerate() {
        config.targets.push(TargetConfig {
            name: format!("Bộ định tuyến thôn {}", i + 1),
            address: (*address).into(),
            role: "gateway".into(),
        });
    }
}

/// Waits until the store holds every event of `agent` up to one recorded after `after` (the
/// backlog has drained and the live stream follows), nothing missing.
/// Waits (up to 30 s) until `n` of `agent`'s events are in the village's store.
fn wait_stored(village: &Village, agent: &str, n: u64) {
    wait_ledger(
        &village.collector,
        agent,
        &format!("{n} events"),
        Duration::from_secs(30),
        |l, _| l.tally().stored >= n,
    );
}

fn wait_drained(village: &Village, agent: &str, after: DateTime<Utc>, timeout: Duration) {
    wait_ledger(
        &village.collector,
        agent,
        "the backlog to drain",
        timeout,
        |ledger, events| {
            ledger.tally().missing.is_empty()
                && events.iter().any(|e| {
                    // The agent's own events: the collector's alert events about it do not count.
                    !e.envelope.event.is_collector_made()
                        && e.envelope.time > after + chrono::Duration::seconds(3)
                })
        },
    );
}

/// The backlog of one agent: the events recorded while the uplink was cut that reached the store
/// after it was restored (events recorded in the instant before the cut took effect went through),
/// how long after the restore the first arrived (reconnect), and how fast they came.
struct Drain {
    events: usize,
    reconnect_s: f64,
    seconds: f64,
}

impl Drain {
    fn measure(events: &[StoredEvent], cut: DateTime<Utc>, restored: DateTime<Utc>) -> Self {
        let received: Vec<DateTime<Utc>> = events
            .iter()
            .filter(|e| !e.envelope.event.is_collector_made())
            .filter(|e| e.envelope.time > cut && e.envelope.time < restored)
            .filter_map(StoredEvent::received)
            .filter(|received| *received >= restored)
            .collect();
        let first = received.iter().min().copied().unwrap_or(restored);
        let last = received.iter().max().copied().unwrap_or(restored);
        Self {
            events: received.len(),
            reconnect_s: (first - restored).num_milliseconds() as f64 / 1000.0,
            seconds: (last - first).num_milliseconds().max(1) as f64 / 1000.0,
        }
    }

    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// What went over the wire for `stored` events in the store.
fn per_event(wire: &Wire, stored: u64) -> String {
    format!(
        "{} messages, {} payload bytes, {} events sent ({:.2}× the {stored} stored): \
         {:.0} bytes/event sent, {:.0} bytes/event stored, {:.1} events/message",
        wire.messages,
        wire.payload_bytes,
        wire.events,
        wire.events as f64 / stored.max(1) as f64,
        wire.payload_bytes as f64 / wire.events.max(1) as f64,
        wire.payload_bytes as f64 / stored.max(1) as f64,
        wire.events as f64 / wire.messages.max(1) as f64
    )
}

#[test]
fn lab_uplink_cut_for_two_minutes_loses_nothing() {
    // 30 events/s: two minutes of backlog is an hour of a 1 event/s agent.
    let mut village = Village::start("uplink-cut", |c| {
        fast(c, 100, &["127.0.0.1", "127.0.0.2"]);
    });
    let village_ns = village.lab.ns("village").unwrap().to_owned();
    let province_ns = village.lab.ns("province").unwrap().to_owned();
    // A second agent beside it drains its backlog with a high rate limit.
    let fast_id = unique("village-fast");
    let mut config = village.agent.config.clone();
    config.agent_id = fast_id.clone();
    config.journal_dir = None;
    config.drain_rate = Some(5000);
    let mut fast_agent =
        Agent::start("agent-fast", config, &village.scratch, Some(&village_ns)).unwrap();
    let local = format!("mqtt://127.0.0.1:{}", netmon_tests::broker::LAB_PORT);
    let sniff = |name: &str, agent: &str| {
        let topic = format!("netmon/v1/{}/{agent}/events", village.province);
        netmon_tests::Sniffer::start(name, Some(&province_ns), &local, &topic, &village.scratch)
            .unwrap()
    };
    let mut sniffers = [
        sniff("wire-default", &village.agent_id),
        sniff("wire-fast", &fast_id),
    ];
    for agent in [&village.agent_id, &fast_id] {
        wait_ledger(
            &village.collector,
            agent,
            "30 events",
            Duration::from_secs(30),
            |l, _| l.tally().stored >= 30,
        );
    }

    let cut = Utc::now();
    village.lab.cut("uplink").unwrap();
    std::thread::sleep(Duration::from_secs(120)); // the outage itself
    village.agent.proc.assert_running().unwrap();
    fast_agent.proc.assert_running().unwrap();
    let restored = Utc::now();
    village.lab.restore("uplink").unwrap();

    let agents = [
        ("default drain_rate 200", village.agent_id.clone()),
        ("drain_rate 5000", fast_id.clone()),
    ];
    let mut drains = Vec::new();
    for (_, agent) in &agents {
        wait_drained(&village, agent, restored, Duration::from_secs(120));
        let events = village.collector.events(&["--agent", agent]).unwrap();
        drains.push(Drain::measure(&events, cut, restored));
    }
    let province = village.province.clone();
    let ledgers = [
        finish(
            &village.collector,
            &mut village.agent,
            &province,
            "uplink cut 2 min, drain_rate 200",
        ),
        finish(
            &village.collector,
            &mut fast_agent,
            &province,
            "uplink cut 2 min, drain_rate 5000",
        ),
    ];
    for (i, ((label, _), drain)) in agents.iter().zip(&drains).enumerate() {
        sniffers[i].stop().unwrap();
        let wire = sniffers[i].wire().unwrap();
        eprintln!(
            "delivery[drain]: {label}: backlog {} events, first {:.1} s after the restore, \
             drained in {:.1} s = {:.0} events/s; wire: {}",
            drain.events,
            drain.reconnect_s,
            drain.seconds,
            drain.rate(),
            per_event(&wire, ledgers[i].tally().stored)
        );
        assert!(
            drain.events >= 2000,
            "{label}: backlog of only {} events",
            drain.events
        );
    }
    let default = &drains[0];
    assert!(
        default.rate() <= 200.0 * 1.3,
        "drain_rate 200 is not honoured"
    );
    assert!(
        default.seconds < 60.0,
        "an hour of backlog must clear in minutes"
    );
}

#[test]
fn lab_agent_killed_during_outage_keeps_its_journal() {
    let mut village = Village::start("agent-killed", |c| fast(c, 200, &["127.0.0.1"]));
    let agent_id = village.agent_id.clone();
    wait_stored(&village, &agent_id, 20);

    let cut = Utc::now();
    village.lab.cut("uplink").unwrap();
    let dir = village.agent.journal_dir();
    let journalled_since_cut = || -> Vec<netmon_events::Envelope> {
        let segments = journal_segments(&dir).unwrap_or_default();
        segments
            .iter()
            .filter_map(|s| std::fs::read(s).ok())
            .flat_map(|bytes| journal_records(&bytes))
            .map(|r| r.envelope)
            .filter(|e| e.time > cut)
            .collect()
    };
    wait_for(
        "50 events journalled during the cut",
        Duration::from_secs(30),
        || (journalled_since_cut().len() >= 50).then_some(()),
    );
    village.agent.kill().unwrap();
    let old = journalled_since_cut();
    let old_boot = old[0].boot.as_str().to_owned();
    let last_seq = old.iter().map(|e| e.seq).max().unwrap();
    eprintln!("agent killed during the cut: boot {old_boot} journalled up to seq {last_seq}");

    village.agent.restart().unwrap();
    wait_for(
        "the new boot to journal events",
        Duration::from_secs(30),
        || {
            village.agent.proc.assert_running().unwrap();
            journalled_since_cut()
                .iter()
                .any(|e| e.boot.as_str() != old_boot)
                .then_some(())
        },
    );
    let restored = Utc::now();
    village.lab.restore("uplink").unwrap();
    wait_drained(&village, &agent_id, restored, Duration::from_secs(90));
    let ledger = finish(
        &village.collector,
        &mut village.agent,
        &village.province,
        "agent killed in cut",
    );
    assert_eq!(
        ledger.max_seq(&old_boot),
        Some(last_seq),
        "the killed boot's journal arrived"
    );
    assert!(ledger.complete_up_to(&old_boot, last_seq));
    assert_eq!(
        ledger.boots().len(),
        2,
        "the killed boot and the restarted one"
    );
}

#[test]
fn lab_full_journal_records_its_overflow() {
    let mut village = Village::start("journal-full", |c| {
        fast(c, 100, &["127.0.0.1"]);
        c.journal_max_bytes = Some(65536);
    });
    let agent_id = village.agent_id.clone();
    wait_stored(&village, &agent_id, 20);

    // 20 events/s of ~300 bytes fill 64 KiB in about 10 s; the cut lasts 40.
    let cut = Utc::now();
    village.lab.cut("uplink").unwrap();
    std::thread::sleep(Duration::from_secs(40)); // the outage itself
    village.agent.proc.assert_running().unwrap();
    let restored = Utc::now();
    village.lab.restore("uplink").unwrap();
    wait_drained(&village, &agent_id, restored, Duration::from_secs(90));

    let events = village.collector.events(&["--agent", &agent_id]).unwrap();
    let ledger = finish(
        &village.collector,
        &mut village.agent,
        &village.province,
        "journal full",
    );
    let tally = ledger.tally();
    assert!(
        !ledger.declared().is_empty(),
        "no journal_overflowed in the store"
    );
    assert!(
        tally.declared_lost >= 100,
        "only {} events declared lost",
        tally.declared_lost
    );
    // A declared seq found in the store was handed to MQTT before the agent knew of the cut (the
    // broker notices a dead link after 1.5 × the 5 s keep-alive) and dropped from the journal
    // before its acknowledgement came: it may have been lost, so declaring it was right. Anything
    // recorded later was never published and must be absent: the journal never resends what it
    // dropped.
    // After the restore the journal may still be full: an event published then and dropped
    // before its acknowledgement came is declared too, and was stored before the declaration.
    let after_finish = village.collector.events(&["--agent", &agent_id]).unwrap();
    let declared_at = |seq: u64| {
        after_finish
            .iter()
            .filter_map(|e| match &e.envelope.event {
                netmon_events::Event::JournalOverflowed {
                    first_seq,
                    last_seq,
                    ..
                } if (*first_seq..=*last_seq).contains(&seq) => Some(e.envelope.time),
                _ => None,
            })
            .min()
    };
    let stored_though_declared = declared_but_stored(&ledger, &events);
    for event in &stored_though_declared {
        let before_the_cut_was_known = event.envelope.time < cut + chrono::Duration::seconds(10);
        let stored_before_dropped = match (event.received(), declared_at(event.envelope.seq)) {
            (Some(received), Some(declared)) => received <= declared + chrono::Duration::seconds(1),
            _ => false,
        };
        assert!(
            before_the_cut_was_known || stored_before_dropped,
            "declared lost and stored, though recorded after the agent knew of the cut and \
             stored after it was dropped: {}",
            event.line
        );
    }
    eprintln!(
        "journal full: declared {:?}; {} declared events had been stored before the cut",
        ledger.declared(),
        stored_though_declared.len()
    );
}

fn declared_but_stored(ledger: &Ledger, events: &[StoredEvent]) -> Vec<StoredEvent> {
    events
        .iter()
        .filter(|e| ledger.is_declared(e.envelope.boot.as_str(), e.envelope.seq))
        .filter(|e| !e.envelope.event.is_collector_made())
        .cloned()
        .collect()
}

#[test]
fn lab_outage_while_cut_off_is_recorded_late_with_true_times() {
    let mut village = Village::start_with(
        "late-outage",
        |_| {},
        |c| c.delivery.late_after = Some("15s".into()),
    );
    let agent_id = village.agent_id.clone();
    wait_ledger(
        &village.collector,
        &agent_id,
        "3 probe rounds",
        Duration::from_secs(30),
        |l, _| l.tally().stored >= 4,
    );

    let uplink_cut = Utc::now();
    village.lab.cut("uplink").unwrap();
    // The agent is cut off before the link goes: await an event it journals after the uplink
    // cut (it cannot deliver it), instead of sleeping.
    let dir = village.agent.journal_dir();
    wait_for(
        "an event journalled after the uplink cut",
        Duration::from_secs(30),
        || {
            let segments = journal_segments(&dir).unwrap_or_default();
            segments
                .iter()
                .filter_map(|s| std::fs::read(s).ok())
                .flat_map(|bytes| journal_records(&bytes))
                .any(|r| r.envelope.time > uplink_cut)
                .then_some(())
        },
    );
    let link_cut = Utc::now();
    village.lab.cut("link").unwrap();
    std::thread::sleep(Duration::from_secs(10)); // the outage nobody hears about
    let link_back = Utc::now();
    village.lab.restore("link").unwrap();
    // Long enough that the link_came_back is older than late_after when it arrives.
    std::thread::sleep(Duration::from_secs(20));
    village.lab.restore("uplink").unwrap();

    let find = |events: &[StoredEvent], t: &str| -> Vec<StoredEvent> {
        events
            .iter()
            .filter(|e| e.envelope.event.type_name() == t)
            .filter(|e| e.json["target"]["name"] == TARGET_NAME)
            .cloned()
            .collect()
    };
    let (_, events) = wait_ledger(
        &village.collector,
        &agent_id,
        "the late link_came_back",
        Duration::from_secs(90),
        |_, events| !find(events, "link_came_back").is_empty(),
    );
    let (down, back) = (
        find(&events, "link_went_down"),
        find(&events, "link_came_back"),
    );
    assert_eq!(
        (down.len(), back.len()),
        (1, 1),
        "one outage: {down:?} {back:?}"
    );
    let near = |what: &str, t: Option<&serde_json::Value>, expected: DateTime<Utc>| {
        let t: DateTime<Utc> = serde_json::from_value(t.cloned().unwrap()).unwrap();
        let off = (t - expected).num_milliseconds().abs();
        assert!(
            off <= 5000,
            "{what} {t} is {off} ms from the true {expected}"
        );
    };
    near("since", down[0].json.get("since"), link_cut);
    near("down_since", back[0].json.get("down_since"), link_cut);
    near(
        "came back",
        Some(&serde_json::json!(back[0].envelope.time)),
        link_back,
    );
    for event in [&down[0], &back[0]] {
        assert_eq!(event.late(), Some(true), "{}", event.line);
        assert_eq!(event.clock(), Some("agent"), "{}", event.line);
    }
    assert_eq!(
        events[0].late(),
        Some(false),
        "before the cut: {}",
        events[0].line
    );

    wait_for(
        "the link up again in the live state",
        Duration::from_secs(30),
        || {
            let state = village.collector.get_json("/api/v1/state").ok()?;
            let link = state["links"]
                .as_array()?
                .iter()
                .find(|l| l["agent"] == agent_id.as_str() && l["name"] == TARGET_NAME)?
                .clone();
            let agent = state["agents"]
                .as_array()?
                .iter()
                .find(|a| a["agent"] == agent_id.as_str())?
                .clone();
            (link["status"] == "up"
                && agent.get("lag_ms").is_some()
                && agent.get("backlog").is_some())
            .then_some(())
        },
    );
    village.agent.proc.assert_running().unwrap();
    finish(
        &village.collector,
        &mut village.agent,
        &village.province,
        "late outage",
    );
}
