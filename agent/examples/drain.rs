//! Measures how fast the agent drains a journalled backlog to a broker, and the bytes on the wire
//! per event. Not a test: run it against a local Mosquitto.
//!
//! ```sh
//! mosquitto -p 18832 &
//! cargo run -p netmon-agent --example drain -- 18832 10000 200       # drain_rate = 200/s
//! cargo run -p netmon-agent --example drain -- 18832 10000 1000000   # effectively unlimited
//! ```
//!
//! It writes `events` probe rounds of an earlier boot into a fresh journal, starts the agent on it
//! (one target on loopback, probed once an hour so that live events do not interfere) and counts
//! the earlier boot's events arriving on the broker.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use netmon_agent::Config;
use netmon_agent::journal::Journal;
use netmon_events::{Envelope, Event, decode_batch, testing};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

const AGENT: &str = "thanh-hoa-cam-tu-giang-trung";
const OLD_BOOT: &str = "6f1c2a9e-4d1b-4c55-9a51-0b7d2f3e8a10";

fn round(seq: u64) -> Envelope {
    let event = Event::ProbeRoundCompleted {
        target: testing::target("UBND xã Cẩm Tú", "10.20.0.1"),
        sent: 3,
        received: 3,
        rtt_min_ms: Some(11.204),
        rtt_avg_ms: Some(12.5),
        rtt_max_ms: Some(13.796),
        rtt_mdev_ms: Some(1.096),
        loss_pct: 0.0,
    };
    // Four events a second.
    Envelope {
        time: DateTime::<Utc>::from_timestamp_millis(testing::T0_MS + seq as i64 * 250).unwrap(),
        mono_ms: seq * 250,
        ..testing::envelope(AGENT, OLD_BOOT, seq, event)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, events, rate] = &args[..] else {
        eprintln!("usage: drain PORT EVENTS DRAIN_RATE");
        std::process::exit(64);
    };
    let (port, events, rate): (u16, u64, u32) = (
        port.parse().unwrap(),
        events.parse().unwrap(),
        rate.parse().unwrap(),
    );
    let dir = netmon_harness::Scratch::new("drain").unwrap();
    let journal_dir = dir.join("journal");
    {
        let (journal, _) = Journal::open(&journal_dir, 64 << 20).unwrap();
        for seq in 1..=events {
            journal.append(&round(seq)).unwrap();
        }
        journal.sync().unwrap();
    }
    let config_path = dir.join("agent.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
agent_id = "{AGENT}"
province = "thanh-hoa"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[probe]
interval = "1h"
report_every = "1h"
[heartbeat]
interval = "1h"
[journal]
dir = "{}"
max_bytes = {}
drain_rate = {rate}
[[targets]]
name = "loopback"
address = "127.0.0.1"
role = "gateway"
"#,
            journal_dir.display(),
            64 << 20
        ),
    )
    .unwrap();
    let config = Config::load_with_env(&config_path, Some(Default::default())).unwrap();

    let mut options = MqttOptions::new("drain-observer", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (observer, mut observed) = AsyncClient::new(options, 16);
    observer
        .subscribe(
            format!("netmon/v1/thanh-hoa/{AGENT}/events"),
            QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    while !matches!(
        observed.poll().await.unwrap(),
        MqttEvent::Incoming(Packet::SubAck(_))
    ) {}

    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(netmon_agent::run(config, shutdown.clone()));
    let (mut seen, mut bytes, mut messages) = (0u64, 0usize, 0usize);
    let mut first: Option<Instant> = None;
    let limit = Duration::from_secs(events / u64::from(rate.min(1000)).max(1) * 3 + 60);
    let started = Instant::now();
    while seen < events && started.elapsed() < limit {
        let Ok(Ok(MqttEvent::Incoming(Packet::Publish(p)))) =
            tokio::time::timeout(Duration::from_secs(5), observed.poll()).await
        else {
            continue;
        };
        let batch = decode_batch(&p.payload).unwrap();
        let old = batch
            .events
            .iter()
            .filter(|e| e.as_ref().is_ok_and(|e| e.boot.as_str() == OLD_BOOT))
            .count() as u64;
        if old > 0 {
            first.get_or_insert_with(Instant::now);
            seen += old;
            if old == batch.events.len() as u64 {
                bytes += p.payload.len();
                messages += 1;
            }
        }
    }
    let elapsed = first.map_or(Duration::ZERO, |f| f.elapsed());
    shutdown.cancel();
    agent.await.unwrap().unwrap();
    drop(dir);
    let per_message = seen as f64 / messages.max(1) as f64;
    println!(
        "drain_rate={rate}: {seen}/{events} backlog events in {:.2} s from the first batch = {:.0} events/s \
         (+ the first second's burst); {messages} full batches, {:.1} events/message, {:.1} bytes/event on the wire",
        elapsed.as_secs_f64(),
        seen as f64 / elapsed.as_secs_f64().max(1e-9),
        per_message,
        bytes as f64 / (per_message * messages as f64).max(1.0),
    );
}
