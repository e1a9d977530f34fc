//! No input may stall the intake (F1 and F13 of the security audit), and `/healthz` says when
//! the collector cannot do its job: a full disk stalls the writer, an oversized packet on a broker
//! without a packet limit makes the MQTT connection loop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use netmon_events::{Event, encode_batch};
use netmon_tests::broker::mosquitto_pub;
use netmon_tests::{
    Collector, CollectorConfig, Proc, Scratch, publish, shared_url, unique, wait_for,
};
use serde_json::Value;

use netmon_events::testing::{Boot, events_topic, round, started, target};

/// The audit's two poison messages (a seq of 2^63, an overflow range reaching it) and an event
/// out of range, as JSON an agent's credentials could publish.
fn poison(agent: &str) -> [String; 2] {
    let head =
        format!(r#""v":1,"agent":"{agent}","boot":"b1","time":"2026-12-02T02:00:00Z","mono_ms":1"#);
    [
        format!(
            r#"{{{head},"seq":9223372036854775808,"type":"agent_heartbeat","uptime_s":1,"backlog":0}}"#
        ),
        format!(
            r#"{{{head},"seq":1,"type":"journal_overflowed","dropped_boot":"b1","first_seq":2,"last_seq":9223372036854775808,"count":1}}"#
        ),
    ]
}

fn counter(intake: &Value, reason: &str) -> u64 {
    intake["rejected_by_reason"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {reason}: {intake}"))
}

/// Whether the collector's live view holds `agent`.
fn seen(collector: &Collector, agent: &str) -> bool {
    let state = collector.get_json("/api/v1/state").unwrap();
    state["agents"]
        .as_array()
        .is_some_and(|agents| agents.iter().any(|a| a["agent"] == agent))
}

#[test]
fn poison_messages_are_refused_alone_and_the_intake_goes_on() {
    let scratch = Scratch::new("poison").unwrap();
    let province = unique("poison");
    let collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let url = shared_url();
    let before = collector.get_json("/api/v1/intake").unwrap();

    // The poison, twice over, then a refusal between two good events of one agent.
    for message in poison("agent-p") {
        publish(
            &url,
            &events_topic(&province, "agent-p"),
            message.as_bytes(),
        )
        .unwrap();
    }
    let commune = target("UBND xã Cẩm Tú", "10.20.0.1");
    let mut village = Boot::new("thon-giang-trung");
    let first = village.next(started());
    let mut out_of_range = village.next(round(&commune, 3));
    if let Event::ProbeRoundCompleted { loss_pct, .. } = &mut out_of_range.event {
        *loss_pct = 200.0;
    }
    let third = village.next(round(&commune, 3));
    let batch = encode_batch(&[first, out_of_range, third]);
    publish(&url, &events_topic(&province, "thon-giang-trung"), &batch).unwrap();

    // Another agent's valid event, right behind the poison, is stored within a second.
    let mut other = Boot::new("thon-tho-lien");
    let valid = encode_batch(&[other.next(started())]);
    let sent = Instant::now();
    publish(&url, &events_topic(&province, "thon-tho-lien"), &valid).unwrap();
    wait_for("the other agent's event", Duration::from_secs(1), || {
        seen(&collector, "thon-tho-lien").then_some(())
    });
    eprintln!("stored {} ms after publishing", sent.elapsed().as_millis());

    let after = wait_for("the refusals counted", Duration::from_secs(5), || {
        let now = collector.get_json("/api/v1/intake").unwrap();
        (counter(&now, "invalid_event") - counter(&before, "invalid_event") >= 3).then_some(now)
    });
    assert_eq!(
        counter(&after, "invalid_event") - counter(&before, "invalid_event"),
        3,
        "{after}"
    );
    assert_eq!(after["store_errors"], 0, "{after}");
    // The refused seq 2 does not hold the watermark at 1: the agent may trim seq 3.
    let ack = wait_for(
        "the watermark past the refused event",
        Duration::from_secs(10),
        || {
            let ack = collector.ack(&province, "thon-giang-trung").unwrap()?;
            ack.acks.iter().any(|a| a.seq == 3).then_some(ack)
        },
    );
    assert_eq!(ack.acks.len(), 1, "{ack:?}");
    assert_eq!(collector.get("/healthz").unwrap().0, 200);
    let stored = collector.events(&["--agent", "thon-giang-trung"]).unwrap();
    let seqs: Vec<u64> = stored.iter().map(|e| e.envelope.seq).collect();
    assert_eq!(seqs, [1, 3]);
    assert!(
        collector
            .events(&["--agent", "agent-p"])
            .unwrap()
            .is_empty()
    );
}

/// A tmpfs of its own (the test is root), unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("running mount (the end-to-end tests run as root)");
        assert!(status.success(), "mount -t tmpfs {} failed", path.display());
        Self { path }
    }

    /// Writes zeros into `name` until the disk is full.
    fn fill(&self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        let output = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k", "count=100000"])
            .arg(format!("of={}", path.display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stderr);
        assert!(
            text.contains("No space left"),
            "dd did not fill the disk: {text}"
        );
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn health(collector: &Collector) -> (u16, String) {
    collector.get("/healthz").unwrap()
}

#[test]
fn a_full_disk_stalls_the_writer_visibly_and_loses_nothing() {
    let scratch = Scratch::new("fulldisk").unwrap();
    let disk = SmallDisk::mount(scratch.join("disk"), "6m");
    let province = unique("fulldisk");
    let config = CollectorConfig {
        province: Some(province.clone()),
        ..CollectorConfig::on_loopback(&shared_url(), &disk.path.join("events.db")).unwrap()
    };
    let mut collector = Collector::start("collector", config, &scratch, None).unwrap();
    collector
        .wait_subscribed(&province, Duration::from_secs(20))
        .unwrap();
    let url = shared_url();
    let topic = events_topic(&province, "thon-giang-trung");
    let filler = disk.fill("filler");

    // Events of ~200 KiB each until a commit fails (the WAL reuses its pages for a while).
    let name = "thôn Giang Trung ".repeat(14);
    let commune = target(&name, "10.20.0.1");
    let mut boot = Boot::new("thon-giang-trung");
    let mut sent = 0u64;
    let mut stalled = None;
    for _ in 0..60 {
        let events: Vec<_> = (0..400).map(|_| boot.next(round(&commune, 3))).collect();
        publish(&url, &topic, &encode_batch(&events)).unwrap();
        sent += events.len() as u64;
        stalled = netmon_tests::poll_until(Duration::from_millis(500), || {
            let (code, body) = health(&collector);
            (code == 503).then_some(body)
        });
        if stalled.is_some() {
            break;
        }
    }
    let body = stalled.expect("the full disk never stalled the writer");
    assert!(body.contains("cannot be committed"), "{body}");
    assert!(body.contains("full"), "{body}");
    let intake = collector.get_json("/api/v1/intake").unwrap();
    assert!(intake["store_errors"].as_u64().unwrap() >= 1, "{intake}");

    // Room again: the waiting batch commits, the broker delivers the rest, nothing is lost.
    std::fs::remove_file(&filler).unwrap();
    wait_for("/healthz 200 again", Duration::from_secs(20), || {
        (health(&collector).0 == 200).then_some(())
    });
    let stored = wait_for("every event stored", Duration::from_secs(60), || {
        let events = collector.events(&["--agent", "thon-giang-trung"]).unwrap();
        (events.len() as u64 >= sent).then_some(events)
    });
    assert_eq!(stored.len() as u64, sent);
    collector.proc.assert_running().unwrap();
}

/// A Mosquitto on loopback with no `max_packet_size` (as a hand-made broker might be), so that
/// a packet above the collector's limit reaches it.
fn unlimited_broker(dir: &Path) -> (Proc, String) {
    std::fs::create_dir_all(dir).unwrap();
    let port = netmon_tests::daemons::free_port().unwrap();
    let config = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\nlog_dest stderr\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut command = Command::new("mosquitto");
    command.arg("-c").arg(&config);
    let mut proc = Proc::spawn("mosquitto (no packet limit)", command, &dir.join("log")).unwrap();
    let url = format!("mqtt://127.0.0.1:{port}");
    wait_for(
        "mosquitto to accept connections",
        Duration::from_secs(10),
        || {
            proc.assert_running().unwrap();
            let mut probe = mosquitto_pub(&url, "netmon-test/probe").unwrap();
            probe
                .args(["-m", "x"])
                .output()
                .ok()
                .filter(|o| o.status.success())
        },
    );
    (proc, url)
}

#[test]
fn a_reconnect_loop_makes_healthz_503_with_the_reason() {
    let scratch = Scratch::new("reconnect-loop").unwrap();
    let (mut broker, url) = unlimited_broker(&scratch.join("mosquitto"));
    let province = unique("loop");
    let collector = Collector::start_on("collector", &scratch, &province, &url).unwrap();
    assert_eq!(health(&collector).0, 200);

    let big = scratch
        .write("big.json", vec![b' '; 5 * 1024 * 1024])
        .unwrap();
    let topic = events_topic(&province, "thon-giang-trung");
    netmon_tests::lab::run(mosquitto_pub(&url, &topic).unwrap().arg("-f").arg(&big)).unwrap();
    let body = wait_for(
        "/healthz 503 for the reconnect loop",
        Duration::from_secs(30),
        || {
            let (code, body) = health(&collector);
            (code == 503).then_some(body)
        },
    );
    assert!(body.contains("reconnect loop"), "{body}");
    assert!(body.contains("mqtt"), "{body}");
    let status = Command::new(netmon_tests::binary("netmon-collector"))
        .args(["status", "--config"])
        .arg(&collector.config_path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&status.stderr);
    assert!(
        err.contains("/healthz 503") && err.contains("reconnect loop"),
        "{err}"
    );
    broker.kill();
}
