//! `netmon-loadgen`: simulates a fleet of agents publishing to an MQTT broker, for the collector
//! ingest benchmark (`tests/bench/ingest.py`).
//!
//! N agents (`fleet.rs`), each with its own id, boot and gap-free seq, are spread over C MQTT
//! connections (agent i on connection i mod C). Agent i's rounds are due at
//! `start + round × interval + i × interval / N`, so the load is even over the interval. Events
//! go out as the real agent sends them: a batch `{"sender":…,"events":[…]}` (`encode_batch_from`)
//! on `netmon/v1/{province}/{agent}/events`, QoS 1, one message per event (`--per-message event`:
//! a connected agent publishes each round as it completes) or one per agent and interval
//! (`--per-message round`). Each event's wall `time` is stamped just before it is published, so
//! the store's `received − time` is the lag publish → stored.
//!
//! Bounded: generation stops at `--seconds` or `--max-events`, whichever comes first; waiting for
//! the broker's acknowledgements is bounded too. `--interval-ms 0` publishes as fast as the broker
//! takes it. `--store PATH` appends the same fleet's history straight to a store (`bulk.rs`).
//! Prints one JSON summary on stdout; progress on stderr.

mod bulk;
mod fleet;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{SubsecRound, Utc};
use clap::{Parser, ValueEnum};
use fleet::{Mix, SimAgent};
use netmon_events::{BootId, ProvinceId, Sender, encode_batch_from};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PerMessage {
    /// One message per event, as a connected agent publishes.
    Event,
    /// One message per agent and interval (all of its events of that round).
    Round,
}

#[derive(Debug, Parser)]
#[command(
    name = "netmon-loadgen",
    about = "Simulates N netmon agents publishing over MQTT"
)]
struct Args {
    /// Append straight to this collector store (no MQTT) instead of publishing: see `bulk.rs`.
    #[arg(long, conflicts_with = "port")]
    store: Option<std::path::PathBuf>,
    /// Broker host (loopback only).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, required_unless_present = "store")]
    port: Option<u16>,
    #[arg(long, default_value = "bench")]
    province: String,
    /// Agent ids are `{prefix}-{index:06}`.
    #[arg(long, default_value = "lg")]
    prefix: String,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    agents: u64,
    /// MQTT connections the agents share.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    connections: u64,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    targets: u64,
    /// Probe interval of every agent, ms (0: as fast as the broker takes it).
    #[arg(long, default_value_t = 10_000)]
    interval_ms: u64,
    /// A heartbeat every this many rounds (0: none).
    #[arg(long, default_value_t = 1)]
    heartbeat_every: u64,
    /// One outage per agent every this many rounds on average (0: none).
    #[arg(long, default_value_t = 360)]
    flap_every: u64,
    #[arg(long, value_enum, default_value_t = PerMessage::Event)]
    per_message: PerMessage,
    /// Stop generating after this many seconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=7200))]
    seconds: u64,
    /// Stop generating after this many events (in all).
    #[arg(long, default_value_t = 100_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    max_events: u64,
}

/// What one connection did.
#[derive(Debug, Default)]
struct Counts {
    messages: AtomicU64,
    events: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    /// How far behind its schedule the generator fell at worst, ms.
    max_late_ms: AtomicU64,
    first_ms: AtomicU64,
    last_ms: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !matches!(args.host.as_str(), "127.0.0.1" | "localhost" | "::1") {
        bail!(
            "--host {}: the load generator only talks to loopback",
            args.host
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if let Some(path) = &args.store {
        let province = ProvinceId::new(args.province.clone())?;
        let summary = bulk::run(path, &args, &province, &mix(&args))?;
        println!("{summary}");
        return Ok(());
    }
    runtime.block_on(run(args))
}

fn mix(args: &Args) -> Mix {
    Mix {
        heartbeat_every: args.heartbeat_every,
        flap_every: args.flap_every,
        down_after: 3,
        outage_rounds: 5,
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let province = ProvinceId::new(args.province.clone())?;
    let now = Utc::now().trunc_subsecs(3);
    let mix = mix(&args);
    let interval = Duration::from_millis(args.interval_ms);
    let per_conn_max = args.max_events.div_ceil(args.connections);
    let start = Instant::now() + Duration::from_millis(500);
    let deadline = start + Duration::from_secs(args.seconds);
    let counts: Arc<Counts> = Arc::default();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let mut agents = Vec::new();
        let mut index = conn;
        while index < args.agents {
            let phase = interval.mul_f64(index as f64 / args.agents as f64);
            let agent = SimAgent::new(&args.prefix, index, &province, args.targets as usize, now)?;
            agents.push((phase, agent));
            index += args.connections;
        }
        let plan = Plan {
            client_id: format!("{}-loadgen-{conn}", args.prefix),
            host: args.host.clone(),
            port: args.port.unwrap_or(1883),
            interval,
            start,
            deadline,
            max_events: per_conn_max,
            mix,
            per_message: args.per_message,
        };
        tasks.push(tokio::spawn(connection(plan, agents, counts.clone())));
    }
    let mut last_seqs = 0u64;
    for task in tasks {
        last_seqs += task.await.context("connection task")??;
    }
    let done_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    let c = &counts;
    let (first, last) = (
        c.first_ms.load(Ordering::Relaxed),
        c.last_ms.load(Ordering::Relaxed),
    );
    let events = c.events.load(Ordering::Relaxed);
    let secs = (last.saturating_sub(first)) as f64 / 1000.0;
    let summary = serde_json::json!({
        "agents": args.agents,
        "connections": args.connections,
        "targets": args.targets,
        "interval_ms": args.interval_ms,
        "per_message": format!("{:?}", args.per_message).to_lowercase(),
        "messages": c.messages.load(Ordering::Relaxed),
        "acked": c.acked.load(Ordering::Relaxed),
        "events": events,
        "seq_total": last_seqs,
        "errors": c.errors.load(Ordering::Relaxed),
        "first_publish_ms": first,
        "last_publish_ms": last,
        "publish_seconds": secs,
        "events_per_s": if secs > 0.0 { events as f64 / secs } else { 0.0 },
        "max_late_ms": c.max_late_ms.load(Ordering::Relaxed),
        // From the first publish until the broker had acknowledged every message.
        "acked_seconds": done_ms.saturating_sub(first) as f64 / 1000.0,
    });
    println!("{summary}");
    Ok(())
}

/// What one connection does.
#[derive(Debug, Clone)]
struct Plan {
    client_id: String,
    host: String,
    port: u16,
    interval: Duration,
    start: Instant,
    deadline: Instant,
    max_events: u64,
    mix: Mix,
    per_message: PerMessage,
}

/// Publishes the rounds of `agents` (sorted by phase) on one connection until the plan's end,
/// then waits (at most 60 s) for the broker to acknowledge every message. Returns the sum of the
/// agents' last seqs (every event recorded).
async fn connection(
    plan: Plan,
    mut agents: Vec<(Duration, SimAgent)>,
    counts: Arc<Counts>,
) -> anyhow::Result<u64> {
    let mut options = MqttOptions::new(&plan.client_id, &plan.host, plan.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000)
        .set_max_packet_size(1024 * 1024, 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 10_000);
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let poller = {
        let (counts, acked) = (counts.clone(), acked.clone());
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        counts.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("loadgen: MQTT connection error: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })
    };
    let sender_boot = BootId::new(uuid::Uuid::new_v4().to_string())?;
    let clock = std::time::Instant::now();
    let (mut idx, mut round, mut events) = (0usize, 0u32, 0u64);
    let mut out = Vec::new();
    while !agents.is_empty() && events < plan.max_events {
        let due = plan.start + plan.interval * round + agents[idx].0;
        let now = Instant::now();
        if due >= plan.deadline || now >= plan.deadline {
            break;
        }
        if due > now {
            tokio::time::sleep_until(due).await;
        } else {
            let late = u64::try_from((now - due).as_millis()).unwrap_or(u64::MAX);
            counts.max_late_ms.fetch_max(late, Ordering::Relaxed);
        }
        let agent = &mut agents[idx].1;
        out.clear();
        let wall = Utc::now().trunc_subsecs(3);
        agent.round(wall, &plan.mix, &mut out);
        let sender = Sender {
            boot: sender_boot.clone(),
            mono_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let groups: Vec<&[netmon_events::Envelope]> = match plan.per_message {
            PerMessage::Event => out.chunks(1).collect(),
            PerMessage::Round => vec![&out[..]],
        };
        for group in groups {
            let payload = encode_batch_from(&sender, group);
            client
                .publish(&agent.topic, QoS::AtLeastOnce, false, payload)
                .await
                .context("queueing a publish")?;
            sent.fetch_add(1, Ordering::Relaxed);
            counts.messages.fetch_add(1, Ordering::Relaxed);
        }
        events += out.len() as u64;
        counts.events.fetch_add(out.len() as u64, Ordering::Relaxed);
        let ms = u64::try_from(wall.timestamp_millis()).unwrap_or(0);
        let _ = counts
            .first_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                (f == 0).then_some(ms)
            });
        counts.last_ms.fetch_max(ms, Ordering::Relaxed);
        idx += 1;
        if idx == agents.len() {
            idx = 0;
            round += 1;
        }
    }
    let until = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Relaxed) < sent.load(Ordering::Relaxed) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(e) = client.disconnect().await {
        eprintln!("loadgen: disconnect: {e}");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), poller).await;
    Ok(agents.iter().map(|(_, a)| a.seq()).sum())
}
