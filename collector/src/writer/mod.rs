//! The single writer task: the only code that changes the store and the state.
//!
//! It receives a closed [`Input`] — a drained batch of MQTT messages, a deadline of its pacing,
//! a notification's outcome, an operator's command — and for each batch does: append (one
//! transaction) → apply → publish a snapshot on a `watch` channel → acknowledge the MQTT messages
//! → publish the retained acknowledgement watermark of every agent the batch touched → run the
//! alert rules. When each of those happens is decided by [`pacing::Pacing`], a pure state machine
//! driven by explicit time: this loop only executes its [`pacing::Action`]s and reports back what
//! happened (a commit, a change, a full request channel, what a snapshot cost). Watermarks are
//! published from here, never from the intake task that polls the event loop. A message is
//! acknowledged only after its events are committed; when the commit fails (disk full, I/O error)
//! the batch is kept, unacknowledged, and retried every tick, and nothing new is taken meanwhile
//! (the bounded channel pushes back on the intake, and the broker keeps the rest).
//!
//! It runs on its own thread with its own single-threaded runtime (see `lib.rs`), so SQLite's
//! blocking calls never stall the tasks that serve HTTP or poll MQTT.
//!
//! The writer never waits on the broker: acknowledgements and watermarks go to the intake's MQTT
//! session (`intake/session/`), which queues them and sends what is pending in one write. An
//! acknowledgement is never refused; a watermark finding the session's in-flight window full goes
//! back to the pacing, which tries it again an interval later.

pub mod pacing;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use rumqttc::{Publish, QoS};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::alerts::book::Book;
use crate::api::IntakeCounters;
use crate::health::WriterHealth;
use crate::intake::alive::AliveBook;
use crate::intake::recorder::{CommandError, Now, Recorder};
use crate::intake::session::Session;
use crate::notify::view::NoticeView;
use crate::notify::{SendError, Senders};
use crate::state::State;
use pacing::{Action, Pacing};

/// Most messages recorded in one transaction.
pub const MAX_BATCH: usize = 500;

/// Renders a notification: `(lang, notices) → (subject, text)`.
pub type RenderFn = Box<dyn Fn(&str, &[NoticeView]) -> (String, String) + Send>;

/// An operator's command, with where to answer.
#[derive(Debug)]
pub enum OperatorCommand {
    Acknowledge {
        alert: u64,
        by: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Silence {
        site: String,
        from: Option<chrono::DateTime<Utc>>,
        until: chrono::DateTime<Utc>,
        by: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
}

/// What the writer needs for alerting: how to render and send, where commands come from, and
/// the runtime the sends run on (the writer's own thread only records).
pub struct AlertParts {
    pub render: RenderFn,
    pub senders: Arc<Senders>,
    pub commands: mpsc::Receiver<OperatorCommand>,
    pub spawner: tokio::runtime::Handle,
}

impl std::fmt::Debug for AlertParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertParts").finish_non_exhaustive()
    }
}

/// What readers (HTTP) see: an immutable copy of the state and counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// False until the state has been rebuilt from the store.
    pub ready: bool,
    pub state: State,
    pub counters: IntakeCounters,
    /// Alerts, silences and the outbox.
    pub book: Book,
    /// Whether the writer can commit (see `health.rs`).
    pub health: WriterHealth,
}

/// Everything the writer reacts to.
#[derive(Debug)]
pub enum Input {
    /// MQTT messages drained from the intake channel, oldest first.
    Messages(Vec<Publish>),
    /// A deadline of the pacing passed (a tick, a snapshot or an acknowledgement coming due).
    Due,
    /// A notification attempt finished.
    Sent(u64, Result<(), SendError>),
    /// An operator's command.
    Command(OperatorCommand),
}

/// The writer's clocks: process start for `mono_ms`, wall time from the system.
#[derive(Debug, Clone, Copy)]
pub struct ProcessClock {
    started: Instant,
}

impl ProcessClock {
    pub fn new(started: Instant) -> Self {
        Self { started }
    }

    pub fn now(&self) -> Now {
        Now {
            wall: Utc::now().trunc_subsecs(3),
            mono_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[derive(Debug)]
struct Writer {
    recorder: Recorder,
    session: Session,
    snapshots: watch::Sender<Arc<Snapshot>>,
    clock: ProcessClock,
    pacing: Pacing,
    /// A batch whose commit failed, waiting for a retry.
    unacked: Vec<Publish>,
    alerts: AlertParts,
    /// Notifications being sent now (not recorded as sent or failed yet).
    in_flight: HashSet<u64>,
    results: mpsc::UnboundedSender<(u64, Result<(), SendError>)>,
    health: WriterHealth,
    /// Liveness messages, as the intake task hears them.
    alive: Arc<Mutex<AliveBook>>,
}

/// Runs the writer until the intake closes the channel (normal shutdown) or `shutdown` fires
/// while a failed batch waits. Watermarks: at most one per agent per `ack_interval`, at most
/// `max_acks_per_s` in all. Then publishes the last snapshot and the waiting watermarks, and
/// disconnects from the broker after the last acknowledgement.
// The writer's parts are handed over one by one so that `lib.rs` shows what it is wired to.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    recorder: Recorder,
    mut rx: mpsc::Receiver<Publish>,
    session: Session,
    snapshots: watch::Sender<Arc<Snapshot>>,
    clock: ProcessClock,
    (ack_interval, max_acks_per_s): (Duration, u32),
    alerts: AlertParts,
    alive: Arc<Mutex<AliveBook>>,
    shutdown: CancellationToken,
) {
    let (results, mut sent) = mpsc::unbounded_channel();
    let mut writer = Writer {
        alive,
        alerts,
        in_flight: HashSet::new(),
        results,
        recorder,
        session,
        snapshots,
        clock,
        pacing: Pacing::new(Instant::now(), ack_interval, max_acks_per_s),
        unacked: Vec::new(),
        health: WriterHealth::default(),
    };
    loop {
        writer.act();
        let due = writer.pacing.next_deadline();
        let input = tokio::select! {
            message = rx.recv(), if writer.unacked.is_empty() => match message {
                Some(first) => Input::Messages(drain(first, &mut rx)),
                None => break,
            },
            () = tokio::time::sleep_until(due) => Input::Due,
            () = shutdown.cancelled(), if !writer.unacked.is_empty() => break,
            Some((id, result)) = sent.recv() => Input::Sent(id, result),
            Some(command) = writer.alerts.commands.recv() => Input::Command(command),
        };
        writer.handle(input);
    }
    if !writer.unacked.is_empty() {
        let batch = std::mem::take(&mut writer.unacked);
        writer.record(batch);
        if !writer.unacked.is_empty() {
            error!(
                messages = writer.unacked.len(),
                "stopping with messages not stored; the broker will deliver them again"
            );
        }
    }
    writer.pacing.finish(Instant::now());
    writer.act();
    if writer.pacing.waiting_acks() > 0 {
        warn!(
            messages = writer.pacing.waiting_acks(),
            "stopping with acknowledgements not sent; the broker will deliver those messages again"
        );
    }
    // The last snapshot, so that the next start replays nothing (or little).
    writer.recorder.snapshot_now(writer.clock.now());
    info!(counters = ?writer.recorder.counters(), "writer stopped");
    writer.session.disconnect();
}

/// The first message and whatever else is already queued, up to [`MAX_BATCH`].
fn drain(first: Publish, rx: &mut mpsc::Receiver<Publish>) -> Vec<Publish> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(message) => batch.push(message),
            Err(_) => break,
        }
    }
    batch
}

impl Writer {
    fn handle(&mut self, input: Input) {
        match input {
            Input::Messages(batch) => self.record(batch),
            // What came due is handed out by the pacing at the top of the loop.
            Input::Due => {}
            Input::Sent(id, result) => {
                self.in_flight.remove(&id);
                match &result {
                    Ok(()) => info!(notification = id, "notification sent"),
                    Err(e) => {
                        warn!(notification = id, retryable = e.retryable, error = %e, "notification not sent")
                    }
                }
                let now = self.clock.now();
                if let Err(e) = self.recorder.notified(id, result, now) {
                    error!(notification = id, error = %e, "recording a notification's outcome failed; it will be sent again");
                    self.health.failed(now.wall, &e.to_string(), false);
                }
                self.pacing.changed();
            }
            Input::Command(command) => {
                let now = self.clock.now();
                match command {
                    OperatorCommand::Acknowledge {
                        alert,
                        by,
                        note,
                        reply,
                    } => {
                        let result = self.recorder.acknowledge(alert, by, note, now);
                        let _ = reply.send(result);
                    }
                    OperatorCommand::Silence {
                        site,
                        from,
                        until,
                        by,
                        note,
                        reply,
                    } => {
                        let from = from.unwrap_or(now.wall);
                        let result = self.recorder.silence(site, from, until, by, note, now);
                        let _ = reply.send(result);
                    }
                }
                self.pacing.changed();
            }
        }
    }

    /// Executes every action the pacing hands out now.
    fn act(&mut self) {
        while let Some(action) = self.pacing.poll(Instant::now()) {
            match action {
                Action::Tick => self.tick(),
                Action::PublishSnapshot => self.publish(),
                Action::Ack(pkid) => self.ack(pkid),
                Action::Watermark(agent) => self.watermark(agent),
                Action::EvaluateAlerts => self.alert(),
            }
        }
    }

    /// Retries a batch whose commit failed, then checks silence; takes the fold's snapshot when
    /// one is due (`intake/snapshot/`: a copy here between batches, written on its own thread)
    /// and a retention step when one is due (`store/retention.rs`).
    fn tick(&mut self) {
        if !self.unacked.is_empty() {
            let batch = std::mem::take(&mut self.unacked);
            self.record(batch);
        }
        let now = self.clock.now();
        let missed = self.alive().missed(std::time::Instant::now());
        let declared = self.recorder.missed_alive(&missed, now).and_then(|n| {
            let mut book = self.alive();
            for agent in &missed {
                book.forget(agent);
            }
            drop(book);
            Ok(n + self.recorder.tick(now)?)
        });
        match declared {
            Ok(0) => {}
            Ok(_) => self.pacing.changed(),
            Err(e) => {
                error!(error = %e, "storing silence events failed; retrying next second");
                self.health.failed(now.wall, &e.to_string(), false);
                self.pacing.changed();
            }
        }
        self.recorder.snapshot_if_due(now);
        self.recorder.retain(now);
        self.recorder.roll_up(now);
    }

    fn alive(&self) -> std::sync::MutexGuard<'_, AliveBook> {
        crate::intake::alive::lock(&self.alive)
    }

    /// Runs the rules and the outbox, records what they decide, and starts the sends that are
    /// due.
    fn alert(&mut self) {
        let started = Instant::now();
        let now = self.clock.now();
        match self.recorder.evaluate(now, &*self.alerts.render) {
            Ok(0) => {}
            Ok(_) => self.pacing.changed(),
            Err(e) => {
                error!(error = %e, "storing alert events failed; retrying at the next evaluation");
                self.health.failed(now.wall, &e.to_string(), false);
            }
        }
        self.pacing.evaluated(started, Instant::now());
        let inventory = self.recorder.alerting().inventory.clone();
        for outgoing in self.recorder.ready(now.wall) {
            if !self.in_flight.insert(outgoing.id) {
                continue;
            }
            let to = inventory
                .as_deref()
                .and_then(|i| i.contacts.get(&outgoing.message.contact))
                .map(|c| c.to.clone());
            let senders = self.alerts.senders.clone();
            let results = self.results.clone();
            self.alerts.spawner.spawn(async move {
                let result = match to {
                    Some(to) => senders.send(outgoing.id, &to, &outgoing.message).await,
                    None => Err(SendError {
                        retryable: false,
                        message: format!(
                            "contact {:?} is no longer in the inventory",
                            outgoing.message.contact
                        ),
                    }),
                };
                let _ = results.send((outgoing.id, result));
            });
        }
    }

    /// Queues the MQTT acknowledgement of a committed message (the session never refuses one:
    /// it sends the PUBACKs pending together).
    fn ack(&mut self, pkid: u16) {
        self.session.ack(pkid);
    }

    /// Queues `agent`'s retained watermark for the broker (QoS 1). One that cannot be queued (the
    /// client's request channel is full) is tried again an interval later.
    fn watermark(&mut self, agent: netmon_events::AgentId) {
        let Some((topic, ack)) = self.recorder.ack(&agent) else {
            return;
        };
        if ack.acks.is_empty() {
            return;
        }
        let topic = topic.to_string();
        match self.session.publish(topic.clone(), ack.to_json(), true) {
            Ok(()) => debug!(topic, acks = ?ack.acks, "watermark published"),
            Err(_) => {
                debug!(
                    topic,
                    "in-flight window full; watermark retried after ack_interval"
                );
                self.pacing.watermark_blocked(agent, Instant::now());
            }
        }
    }

    /// Records a batch, and hands its acknowledgements to the pacing once committed; keeps it for
    /// a retry otherwise.
    fn record(&mut self, batch: Vec<Publish>) {
        let now = self.clock.now();
        match self.recorder.record(&batch, now) {
            Ok(touched) => {
                self.health.committed(now.wall);
                // QoS 0 needs no acknowledgement; the collector subscribes with QoS 1, so
                // nothing arrives with 2.
                let acks = batch
                    .iter()
                    .filter(|message| message.qos == QoS::AtLeastOnce)
                    .map(|message| message.pkid);
                self.pacing.on_batch(Instant::now(), acks, touched);
                debug!(
                    messages = batch.len(),
                    waiting = self.pacing.waiting_acks(),
                    "batch stored; acknowledgements queued"
                );
            }
            Err(e) => {
                error!(
                    error = %e,
                    messages = batch.len(),
                    "storing events failed; messages stay unacknowledged and are retried every second"
                );
                self.unacked = batch;
                self.health.failed(now.wall, &e.to_string(), true);
                self.pacing.changed();
            }
        }
    }

    fn publish(&mut self) {
        let started = Instant::now();
        let snapshot = Snapshot {
            ready: true,
            state: self.recorder.state().clone(),
            counters: self.recorder.counters().clone(),
            book: self.recorder.alerting().book.clone(),
            health: self.health.clone(),
        };
        self.snapshots.send_replace(Arc::new(snapshot));
        self.pacing.published(started, Instant::now());
    }
}
