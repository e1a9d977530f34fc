//! `netmon-agent`: the daemon on a commune router or village access point. It probes links with
//! ICMP echo, turns the results into events and publishes them over MQTT.
//!
//! Layout — the daemon is a pipeline of tasks joined by bounded channels, pure logic kept apart
//! from I/O:
//! - [`config`]: TOML + `NETMON_*` environment → validated [`Config`];
//! - [`probes`]: the ICMP echo engine ([`probes::icmp`], I/O) and round statistics
//!   ([`probes::stats`], pure);
//! - [`link`]: link state with hysteresis (pure): rounds in, `link_went_down`/`link_came_back` out;
//! - [`scheduler`]: the probe task — a round per interval, results through [`link`], events out;
//! - [`recorder`]: envelopes (boot id, gap-free `seq`, wall and monotonic time), `agent_started`,
//!   heartbeats;
//! - [`outbox`]: the bounded queue between recorder and publisher (where a journal will slot in);
//! - [`publisher`] and [`mqtt`]: batches to the broker, retained status, last will, reconnects;
//! - [`output`]: what the CLI prints (`check`, `probe`, `probe --json`).
//!
//! ```text
//! scheduler ──mpsc──▶ recorder ──▶ outbox ──▶ publisher ──▶ rumqttc client ─┐
//!                                    ▲                                      ▼
//!                                    └──── requeue on lost connection ── event loop task
//! ```
//!
//! Shutdown stops the scheduler first; the recorder drains its channel and ends; the publisher
//! flushes the outbox, publishes `offline` and disconnects; all within [`SHUTDOWN_GRACE`].

pub mod config;
pub mod link;
pub mod mqtt;
pub mod outbox;
pub mod output;
pub mod probes;
pub mod publisher;
pub mod recorder;
pub mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use netmon_events::BootId;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

pub use config::{Config, ConfigError};

use crate::outbox::{OUTBOX_CAPACITY, Outbox};
use crate::probes::{IcmpProber, RoundStats};
use crate::publisher::Publisher;
use crate::recorder::{Clock, Recorder, RecorderTask};
use crate::scheduler::Scheduler;

/// How long a graceful shutdown may take to flush events to the broker.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Capacity of the channel from the scheduler to the recorder.
const EVENT_CHANNEL: usize = 4096;

/// Runs the agent until `shutdown` is cancelled, then flushes and disconnects within
/// [`SHUTDOWN_GRACE`]. Fails only if it cannot start (no ICMP socket, bad TLS material) or a task
/// fails.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let clock = Clock::start();
    let boot = BootId::new(uuid::Uuid::new_v4().to_string()).context("making a boot id")?;
    info!(
        agent = %config.agent_id,
        province = %config.province,
        boot = %boot,
        targets = config.targets.len(),
        broker = %format_args!("{}:{}", config.mqtt.broker.host, config.mqtt.broker.port),
        "agent starting"
    );
    let addresses = config.targets.iter().map(|t| t.address).collect();
    let prober = IcmpProber::open(addresses).context("opening ICMP sockets")?;
    let topics = mqtt::Topics::new(&config);
    let (client, eventloop) = mqtt::client(&config, &topics).context("setting up MQTT")?;
    let outbox = Arc::new(Outbox::new(OUTBOX_CAPACITY));
    let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL);
    let (connected_tx, connected_rx) = watch::channel(None);
    let drained = CancellationToken::new();
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();

    let scheduler = Scheduler {
        probe: config.probe,
        targets: config.targets.clone(),
        prober,
        clock,
    };
    tracker.spawn(scheduler::run_scheduler(
        scheduler,
        events_tx,
        shutdown.clone(),
    ));
    let recorder = RecorderTask {
        recorder: Recorder::new(config.agent_id.clone(), boot.clone()),
        clock,
        heartbeat: config.heartbeat.interval,
        targets: u32::try_from(config.targets.len()).unwrap_or(u32::MAX),
        outbox: outbox.clone(),
    };
    let recorder_done = drained.clone().drop_guard();
    tracker.spawn(async move {
        let _done = recorder_done;
        recorder::run_recorder(recorder, events_rx).await;
    });
    let stop_p = stop.clone();
    let publisher = Publisher {
        client,
        topics: topics.clone(),
        online: mqtt::online(&boot),
        outbox: outbox.clone(),
    };
    let failed = shutdown.clone();
    let publishing = tracker.spawn(async move {
        let result = publisher::run_publisher(publisher, connected_rx, drained, stop_p).await;
        if let Err(error) = &result {
            error!("{error:#}");
            failed.cancel();
        }
        result
    });
    tracker.spawn(mqtt::run_event_loop(
        eventloop,
        topics,
        outbox.clone(),
        connected_tx,
        stop.clone(),
    ));
    tracker.close();

    tokio::select! {
        () = shutdown.cancelled() => info!("shutting down"),
        () = tracker.wait() => warn!("all tasks ended on their own"),
    }
    shutdown.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            unpublished = outbox.len(),
            grace = ?SHUTDOWN_GRACE,
            "grace period over; events still queued are lost"
        );
        stop.cancel();
        tracker.wait().await;
    }
    let published = publishing.await.context("publisher task")?;
    info!(
        unpublished = outbox.len(),
        dropped = outbox.dropped(),
        "agent stopped"
    );
    published
}

/// Runs one probe round against every configured target (`netmon-agent probe`); needs no broker.
pub async fn probe_once(config: &Config) -> anyhow::Result<Vec<RoundStats>> {
    let addresses = config.targets.iter().map(|t| t.address).collect();
    let mut prober = IcmpProber::open(addresses).context("opening ICMP sockets")?;
    Ok(prober.round(&scheduler::one_shot_plan(&config.probe)).await)
}
