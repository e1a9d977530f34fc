//! netmon-collector: takes the agents' events from MQTT, stores them in SQLite (the system of
//! record), folds them into live state and serves it over HTTP.
//!
//! One folder per feature, each with its settings, pure logic, I/O and tests side by side
//! (`foo/mod.rs` style): [`intake`], [`store`], [`alerts`], [`notify`], [`influx`], [`coverage`],
//! [`inventory`], [`http`], [`cli`], and [`config`] for the file loading. At the root stays what
//! spans them: [`writer`] (the single writer task), [`state`] (the pure fold), [`health`] and
//! [`api`] (the JSON contract). The code map, file by file, is in `ARCHITECTURE.md`.
//!
//! [`run`] wires them: bind HTTP, rebuild the state from the snapshot and the store, then start
//! the intake.
//! Shutdown stops the intake first; the writer drains, commits, acknowledges and disconnects.

pub mod alerts;
pub mod api;
pub mod cli;
pub mod config;
pub mod coverage;
pub mod health;
pub mod http;
pub mod influx;
pub mod intake;
pub mod inventory;
pub mod notify;
pub mod state;
pub mod store;
pub mod writer;

use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::Config;

/// Capacity of the channel from the intake to the writer, in messages.
const INTAKE_CHANNEL: usize = 1024;

/// Runs the collector until `shutdown` fires, then stops in order and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let clock = writer::ProcessClock::new(tokio::time::Instant::now());
    let (snapshots_tx, snapshots) = watch::channel(Arc::new(writer::Snapshot::default()));

    // HTTP first, so that /healthz answers "rebuilding" during a long replay.
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", config.http.listen))?;
    let address = listener.local_addr().context("reading the HTTP address")?;
    info!(%address, "HTTP API listening");
    let http_stop = CancellationToken::new();
    let (influx_counters, influx_counters_rx) = watch::channel(None);
    let notify = snapshots.clone();
    let (commands_tx, commands) = mpsc::channel(64);
    let (intake_health, intake_health_rx) =
        watch::channel(health::IntakeHealth::starting(chrono::Utc::now()));
    let mut http_task = tokio::spawn(http::serve(
        listener,
        http::Api {
            snapshots,
            influx: influx_counters_rx,
            commands: commands_tx,
            token: config.http.token.clone().map(Arc::from),
            read_token: config.http.read_token.clone().map(Arc::from),
            inventory: config.inventory.clone(),
            limits: http::Limits::from(&config.http),
            intake_health: intake_health_rx,
        },
        http_stop.clone(),
    ));
    let senders = Arc::new(notify::Senders::new(config.notify.clone())?);
    let templates = config.notify.templates.clone();
    let alert_parts = writer::AlertParts {
        render: Box::new(move |lang, notices| notify::render::render(&templates, lang, notices)),
        senders,
        commands,
        spawner: tokio::runtime::Handle::current(),
    };
    let alerting = alerts::Alerting::new(config.alerts.clone(), config.inventory.clone());

    let session = intake::session::Session::new(intake::OUTGOING_INFLIGHT);
    let (tx, rx) = mpsc::channel(INTAKE_CHANNEL);
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, mut done_rx) = oneshot::channel::<anyhow::Result<()>>();
    // Liveness messages: heard by the intake task, judged on the writer's tick.
    let alive = Arc::new(std::sync::Mutex::new(intake::alive::AliveBook::default()));
    let writer_alive = alive.clone();
    // Cancelled once the intake is told to stop: a writer holding a batch it cannot store then
    // gives up (the broker keeps the messages) instead of retrying forever.
    let writer_stop = CancellationToken::new();
    let writer_session = session.clone();
    let writer_stop_handle = writer_stop.clone();
    let store_path = config.store.path.clone();
    let snapshot_every = config.store.snapshot_every;
    let (keep_measurements, keep_facts) = (config.store.keep_measurements, config.store.keep_facts);
    let province = config.mqtt.province.clone();
    let silence_after = config.silence.after;
    let (silence_missed, silence_min_quiet) = (config.silence.missed, config.silence.min_quiet);
    let policy = config.delivery.policy();
    let (ack_interval, max_acks_per_s) =
        (config.delivery.ack_interval, config.delivery.max_acks_per_s);
    std::thread::Builder::new()
        .name("netmon-writer".into())
        .spawn(move || {
            let result = (|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .context("starting the writer's runtime")?;
                let store = store::Store::open(&store_path)
                    .with_context(|| format!("opening the store {}", store_path.display()))?;
                let snapshots = snapshot_every
                    .map(|every| intake::snapshot::SnapshotFile::beside(&store_path, every));
                let recorder = intake::recorder::Recorder::rebuild_from(
                    store,
                    snapshots,
                    province,
                    silence_after,
                    policy,
                    alerting,
                )
                .context("replaying the store")?;
                let mut recorder = recorder;
                recorder.set_cadence(silence_missed, silence_min_quiet);
                recorder.set_retention(store::retention::Schedule::new(
                    keep_measurements,
                    keep_facts,
                ));
                let _ = ready_tx.send(());
                runtime.block_on(writer::run(
                    recorder,
                    rx,
                    writer_session,
                    snapshots_tx,
                    clock,
                    (ack_interval, max_acks_per_s),
                    alert_parts,
                    writer_alive,
                    writer_stop,
                ));
                Ok(())
            })();
            let _ = done_tx.send(result);
        })
        .context("starting the writer thread")?;

    // The intake starts only once the state is rebuilt.
    tokio::select! {
        ready = ready_rx => if ready.is_err() {
            http_stop.cancel();
            return Err(writer_result(done_rx.await));
        },
        () = shutdown.cancelled() => {}
    }
    // The projection opens the store once the writer has migrated it.
    let projection_stop = CancellationToken::new();
    let mut projection_task = match config.influx.clone() {
        Some(influx) => tokio::spawn(influx::run(
            influx,
            config.inventory.clone(),
            config.store.path.clone(),
            notify,
            influx_counters,
            projection_stop.clone(),
        )),
        None => tokio::spawn(std::future::pending()),
    };
    let intake_stop = CancellationToken::new();
    let mut intake_task = tokio::spawn(intake::run(
        session,
        config.mqtt.clone(),
        tx,
        intake_health,
        alive,
        intake_stop.clone(),
    ));

    let mut failure = None;
    let mut writer_done = false;
    tokio::select! {
        () = shutdown.cancelled() => info!("shutting down: stopping the intake, draining the writer"),
        result = &mut done_rx => {
            writer_done = true;
            failure = Some(writer_result(result));
        }
        result = &mut intake_task => {
            failure = Some(match result {
                Ok(()) => anyhow!("the MQTT intake stopped"),
                Err(e) => anyhow::Error::new(e).context("the MQTT intake task failed"),
            });
        }
        result = &mut projection_task => {
            failure = Some(match result {
                Ok(Ok(())) => anyhow!("the influx projection stopped"),
                Ok(Err(e)) => e.context("the influx projection failed"),
                Err(e) => anyhow::Error::new(e).context("the influx projection task failed"),
            });
        }
        result = &mut http_task => {
            failure = Some(match result {
                Ok(Ok(())) => anyhow!("the HTTP server stopped"),
                Ok(Err(e)) => anyhow::Error::new(e).context("the HTTP server failed"),
                Err(e) => anyhow::Error::new(e).context("the HTTP task failed"),
            });
        }
    }
    intake_stop.cancel();
    projection_stop.cancel();
    writer_stop_handle.cancel();
    if !writer_done
        && let Err(e) = (&mut done_rx)
            .await
            .map_err(anyhow::Error::new)
            .and_then(|r| r)
    {
        failure.get_or_insert(e.context("the writer failed"));
    }
    if !intake_task.is_finished()
        && let Err(e) = (&mut intake_task).await
    {
        failure.get_or_insert(anyhow::Error::new(e).context("the intake task failed"));
    }
    if !projection_task.is_finished() {
        projection_task.abort();
    }
    http_stop.cancel();
    if !http_task.is_finished() {
        let _ = http_task.await;
    }
    match failure {
        Some(e) => Err(e),
        None => {
            info!("collector stopped");
            Ok(())
        }
    }
}

/// The writer thread's outcome as an error (it only ends early when something failed).
fn writer_result(result: Result<anyhow::Result<()>, oneshot::error::RecvError>) -> anyhow::Error {
    match result {
        Ok(Ok(())) => anyhow!("the writer stopped unexpectedly"),
        Ok(Err(e)) => e,
        Err(_) => anyhow!("the writer thread ended without a result (it panicked)"),
    }
}
