//! `netmon-loadgen`: simulates a fleet of agents publishing to an MQTT broker, for the collector
//! ingest benchmark (`tests/bench/ingest.py`) and the offered-load figures of
//! `tests/bench/offered.py`.
//!
//! N agents (`fleet.rs`), each with its own id, boot and gap-free seq, are spread over C MQTT
//! connections (agent i on connection i mod C; `connection.rs` runs each one's schedule). Agent
//! i's ticks are due at `start + k × period + i × period / N`, so the load is even. Two formats:
//!
//! - `--format rounds` (what agents sent before ADR 14): per probe interval one
//!   `probe_round_completed` per target and a heartbeat every `--heartbeat-every` rounds, as a
//!   batch `{"sender":…,"events":[…]}` (`encode_batch_from`), one message per event
//!   (`--per-message event`: a connected agent publishes each round as it completes) or one per
//!   agent and interval (`--per-message round`);
//! - `--format windows` (ADR 14, `windows.rs`): boot batches first, then per report window
//!   (`--report-every-ms`) one `probe_window_completed` per target and every `--heartbeat-ms` a
//!   heartbeat with them, in compact batches (`encode_compact`); link changes as they happen.
//!
//! Both publish on `netmon/v1/{province}/{agent}/events`, QoS 1, and stamp each event's wall
//! `time` just before publishing, so the store's `received − time` is the lag publish → stored.
//! Outages come once every `--flap-every` probe rounds per agent on average.
//!
//! Bounded: generation stops at `--seconds` or `--max-events`, whichever comes first; waiting for
//! the broker's acknowledgements is bounded too. `--interval-ms 0` publishes as fast as the broker
//! takes it (rounds format). `--dry-run` runs the same schedule on a simulated clock without a
//! broker, only counting. `--store PATH` appends the same fleet's history straight to a store
//! (`bulk.rs`). Prints one JSON summary on stdout (events, messages, topic + payload bytes, boot
//! batches apart from the steady stream); progress on stderr.

mod bulk;
mod connection;
mod fleet;
mod windows;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{SubsecRound, Utc};
use clap::{Parser, ValueEnum};
use connection::{Part, Plan, Tally};
use fleet::{Mix, SimAgent};
use netmon_events::ProvinceId;
use tokio::time::Instant;
use windows::WindowMix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `probe_round_completed` every probe interval, full envelopes (before ADR 14).
    Rounds,
    /// `probe_window_completed` every report window, compact batches (ADR 14).
    Windows,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PerMessage {
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
    #[arg(long, required_unless_present_any = ["store", "dry_run"])]
    port: Option<u16>,
    /// No broker: run the schedule on a simulated clock and only count what would be sent.
    #[arg(long, conflicts_with_all = ["port", "store"])]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Rounds)]
    format: Format,
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
    /// A heartbeat every this many rounds (0: none). Rounds format.
    #[arg(long, default_value_t = 1)]
    heartbeat_every: u64,
    /// One report window, ms: a whole number of probe intervals. Windows format.
    #[arg(long, default_value_t = 60_000)]
    report_every_ms: u64,
    /// A heartbeat every this many ms (0: none): a whole number of report windows. Windows
    /// format.
    #[arg(long, default_value_t = 300_000)]
    heartbeat_ms: u64,
    /// Windows format: the boot batches are spread over this many ms before the steady
    /// schedule starts.
    #[arg(long, default_value_t = 10_000)]
    boot_spread_ms: u64,
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

/// What all connections did so far.
#[derive(Debug, Default)]
pub struct Counts {
    pub messages: AtomicU64,
    pub events: AtomicU64,
    /// Topic + payload of every message.
    pub bytes: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    /// How far behind its schedule the generator fell at worst, ms.
    pub max_late_ms: AtomicU64,
    pub first_ms: AtomicU64,
    pub last_ms: AtomicU64,
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

/// The windows format's mix, checked: windows of whole rounds, heartbeats of whole windows.
fn window_mix(args: &Args) -> anyhow::Result<WindowMix> {
    let (round, report, beat) = (args.interval_ms, args.report_every_ms, args.heartbeat_ms);
    if round == 0 || report == 0 || !report.is_multiple_of(round) {
        bail!("--report-every-ms {report} must be a whole number of --interval-ms {round}");
    }
    if !beat.is_multiple_of(report) {
        bail!("--heartbeat-ms {beat} must be a whole number of --report-every-ms {report}");
    }
    Ok(WindowMix {
        rounds: u32::try_from(report / round).context("rounds per window")?,
        round_ms: round,
        heartbeat_every: beat / report,
        flap_every: args.flap_every,
        down_after: 3,
        outage_rounds: 5,
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let province = ProvinceId::new(args.province.clone())?;
    let now = Utc::now().trunc_subsecs(3);
    let mix = mix(&args);
    let windows = window_mix(&args).or_else(|e| match args.format {
        Format::Windows => Err(e),
        Format::Rounds => Ok(WindowMix {
            rounds: 1,
            round_ms: 1,
            heartbeat_every: 0,
            flap_every: 0,
            down_after: 3,
            outage_rounds: 5,
        }),
    })?;
    let period = Duration::from_millis(match args.format {
        Format::Rounds => args.interval_ms,
        Format::Windows => args.report_every_ms,
    });
    let boot_spread = match args.format {
        Format::Rounds => Duration::ZERO,
        Format::Windows => Duration::from_millis(args.boot_spread_ms),
    };
    let per_conn_max = args.max_events.div_ceil(args.connections);
    let boot_start = Instant::now() + Duration::from_millis(500);
    let start = boot_start + boot_spread;
    let deadline = start + Duration::from_secs(args.seconds);
    let counts: Arc<Counts> = Arc::default();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let mut agents = Vec::new();
        let mut index = conn;
        while index < args.agents {
            let phase = period.mul_f64(index as f64 / args.agents as f64);
            let agent = SimAgent::new(&args.prefix, index, &province, args.targets as usize, now)?;
            agents.push((phase, agent));
            index += args.connections;
        }
        let plan = Plan {
            client_id: format!("{}-loadgen-{conn}", args.prefix),
            host: args.host.clone(),
            port: args.port.unwrap_or(1883),
            format: args.format,
            period,
            boot_start,
            boot_spread,
            start,
            deadline,
            max_events: per_conn_max,
            mix,
            windows,
            per_message: args.per_message,
            dry_run: args.dry_run,
        };
        tasks.push(tokio::spawn(connection::connection(
            plan,
            agents,
            counts.clone(),
        )));
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.context("connection task")??;
        all.seq_total += tally.seq_total;
        for (mine, theirs) in [(&mut all.boot, tally.boot), (&mut all.steady, tally.steady)] {
            mine.messages += theirs.messages;
            mine.events += theirs.events;
            mine.bytes += theirs.bytes;
        }
        for (kind, n) in tally.types {
            *all.types.entry(kind).or_default() += n;
        }
    }
    let done_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    let c = &counts;
    let (first, last) = (
        c.first_ms.load(Ordering::Relaxed),
        c.last_ms.load(Ordering::Relaxed),
    );
    let events = c.events.load(Ordering::Relaxed);
    let secs = (last.saturating_sub(first)) as f64 / 1000.0;
    let part =
        |p: Part| serde_json::json!({"messages": p.messages, "events": p.events, "bytes": p.bytes});
    let summary = serde_json::json!({
        "agents": args.agents,
        "connections": args.connections,
        "targets": args.targets,
        "format": format!("{:?}", args.format).to_lowercase(),
        "dry_run": args.dry_run,
        "interval_ms": args.interval_ms,
        "report_every_ms": args.report_every_ms,
        "heartbeat_ms": args.heartbeat_ms,
        "per_message": format!("{:?}", args.per_message).to_lowercase(),
        "messages": c.messages.load(Ordering::Relaxed),
        "acked": c.acked.load(Ordering::Relaxed),
        "events": events,
        "bytes": c.bytes.load(Ordering::Relaxed),
        "seq_total": all.seq_total,
        // Boot batches (only agent_started / targets_described), and everything else over the
        // steady schedule of `steady_seconds`.
        "boot": part(all.boot),
        "steady": part(all.steady),
        "steady_seconds": args.seconds,
        "steady_types": all.types,
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
