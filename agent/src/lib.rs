//! `netmon-agent`: the daemon on a commune router or village access point. It probes links with
//! ICMP echo, reads routers over SNMP and modems over their tools or AT commands, turns what it
//! sees into events, keeps them in an on-disk journal and publishes them over MQTT until the
//! collector acknowledges them.
//!
//! A pipeline of tasks joined by bounded channels, pure logic kept apart from I/O: [`scheduler`]
//! (probe rounds through [`link`] and report windows, [`probes::window`]), [`snmp`] and
//! [`cellular`] (one folder each: settings, pure parsing and state, I/O, report) send into the
//! [`recorder`], which appends every event to the [`journal`] before the [`publisher`] sends it
//! over [`mqtt`] as compact batches (the target table in the header as [`headers`] decides);
//! acknowledgements trim the journal. The code map, file by file, is in `ARCHITECTURE.md`.
//!
//! Shutdown stops the sources first; the recorder drains its channel, fsyncs the journal and
//! ends; the publisher sends what it may at once, publishes `offline` and disconnects; all within
//! [`SHUTDOWN_GRACE`]. Whatever was not acknowledged stays in the journal for the next start.

pub mod cellular;
pub mod config;
pub mod headers;
pub mod journal;
pub mod link;
pub mod mqtt;
pub mod output;
pub mod pacer;
pub mod probes;
pub mod publisher;
pub mod recorder;
pub mod scheduler;
pub mod snmp;
pub mod spread;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use netmon_events::{BootId, DescribedTarget};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

pub use config::{Config, ConfigError};

use crate::headers::Headers;
use crate::journal::Journal;
use crate::probes::{IcmpProber, RoundStats};
use crate::publisher::{Publisher, Signals};
use crate::recorder::{Clock, Recorder, RecorderTask};
use crate::scheduler::Scheduler;

/// How long a graceful shutdown may take to flush events to the broker.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Capacity of the channel from the scheduler to the recorder.
const EVENT_CHANNEL: usize = 4096;

/// Runs the agent until `shutdown` is cancelled, then flushes and disconnects within
/// [`SHUTDOWN_GRACE`]. Fails only if it cannot start (journal locked or unwritable, no ICMP socket,
/// bad TLS material) or a task fails (the journal cannot be written).
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
    let (journal, _recovery) = Journal::open(&config.journal.dir, config.journal.max_bytes)
        .with_context(|| {
            format!(
                "opening the journal (journal.dir = {})",
                config.journal.dir.display()
            )
        })?;
    let journal = Arc::new(journal);
    let addresses = config.targets.iter().map(|t| t.address).collect();
    let prober = IcmpProber::open(addresses).context("opening ICMP sockets")?;
    let topics = mqtt::Topics::new(&config);
    let (client, eventloop) = mqtt::client(&config, &topics).context("setting up MQTT")?;
    let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL);
    let (connected_tx, connected_rx) = watch::channel(None);
    let (acks_tx, acks_rx) = watch::channel(None);
    let drained = CancellationToken::new();
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();

    // This boot's targets and their keys, as `targets_described` says and compact batches use.
    let described = DescribedTarget::numbered(&config.targets);
    let scheduler = Scheduler {
        probe: config.probe,
        targets: config.targets.clone(),
        prober,
        clock,
    };
    if !config.snmp.devices.is_empty() {
        tracker.spawn(snmp::run_snmp(
            config.snmp.clone(),
            clock,
            events_tx.clone(),
            shutdown.clone(),
        ));
    }
    if !config.cellular.is_empty() {
        tracker.spawn(cellular::poller::run_cellular(
            config.cellular.clone(),
            clock,
            events_tx.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(scheduler::run_scheduler(
        scheduler,
        events_tx,
        shutdown.clone(),
    ));
    let recorder = RecorderTask {
        recorder: Recorder::new(config.agent_id.clone(), boot.clone()),
        clock,
        heartbeat: config.heartbeat.interval,
        fsync_interval: config.journal.fsync_interval,
        targets: u32::try_from(config.targets.len()).unwrap_or(u32::MAX),
        described: described.clone(),
        journal: journal.clone(),
    };
    let recorder_done = drained.clone().drop_guard();
    let failed = shutdown.clone();
    let recording = tracker.spawn(async move {
        let _done = recorder_done;
        let result = recorder::run_recorder(recorder, events_rx).await;
        if let Err(error) = &result {
            error!("{error:#}");
            failed.cancel();
        }
        result
    });
    if let Some(every) = config.mqtt.alive_every {
        tracker.spawn(mqtt::run_alive(
            client.clone(),
            topics.alive.clone(),
            every,
            connected_rx.clone(),
            shutdown.clone(),
        ));
    }
    let publisher = Publisher {
        client,
        topics: topics.clone(),
        online: mqtt::online(&boot),
        journal: journal.clone(),
        headers: Headers::new(boot.clone(), described),
        boot,
        clock,
        drain_rate: config.journal.drain_rate,
    };
    let signals = Signals {
        connected: connected_rx,
        acks: acks_rx,
        drained,
        stop: stop.clone(),
    };
    let failed = shutdown.clone();
    let publishing = tracker.spawn(async move {
        let result = publisher::run_publisher(publisher, signals).await;
        if let Err(error) = &result {
            error!("{error:#}");
            failed.cancel();
        }
        result
    });
    tracker.spawn(mqtt::run_event_loop(
        eventloop,
        topics,
        connected_tx,
        acks_tx,
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
            grace = ?SHUTDOWN_GRACE,
            "grace period over; unsent events stay in the journal"
        );
        stop.cancel();
        tracker.wait().await;
    }
    let recorded = recording.await.context("recorder task")?;
    let published = publishing.await.context("publisher task")?;
    let backlog = journal.backlog();
    info!(
        backlog = backlog.events,
        overflowed = journal.overflowed(),
        "agent stopped"
    );
    recorded.and(published)
}

/// Runs one probe round against every configured target (`netmon-agent probe`); needs no broker.
pub async fn probe_once(config: &Config) -> anyhow::Result<Vec<RoundStats>> {
    let addresses = config.targets.iter().map(|t| t.address).collect();
    let mut prober = IcmpProber::open(addresses).context("opening ICMP sockets")?;
    Ok(prober.round(&scheduler::one_shot_plan(&config.probe)).await)
}
