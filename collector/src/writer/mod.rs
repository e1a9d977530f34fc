//! The single writer task: the only code that changes the store and the state.
//!
//! It receives a closed [`Input`] — a drained batch of MQTT messages, a clock tick, a snapshot
//! flush, acknowledgements coming due — and for each batch does: append (one transaction) → apply
//! → publish a snapshot on a `watch` channel → acknowledge the MQTT messages → publish the
//! retained acknowledgement watermark of every agent the batch touched (paced by `acks.rs`).
//! Watermarks are published from here, never from the intake task that polls the event loop. A message is acknowledged only after its
//! events are committed; when the commit fails (disk full, I/O error) the batch is kept,
//! unacknowledged, and retried every tick, and nothing new is taken meanwhile (the bounded channel
//! pushes back on the intake, and the broker keeps the rest).
//!
//! It runs on its own thread with its own single-threaded runtime (see `lib.rs`), so SQLite's
//! blocking calls never stall the tasks that serve HTTP or poll MQTT.
//!
//! The writer never waits for room in the MQTT client's request channel: the intake task that
//! drains that channel (by polling the event loop) may itself be waiting for room in the writer's
//! channel, and a writer blocked on an acknowledgement would then stall both for good. So
//! acknowledgements are queued (`try_ack`) and those that find the channel full wait in
//! `pending_acks`, retried every [`ACK_RETRY`] before anything else is sent; their number is
//! bounded by the broker's in-flight window for the collector.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use rumqttc::{AsyncClient, Publish, QoS};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::alerts::book::Book;
use crate::api::IntakeCounters;
use crate::health::WriterHealth;
use crate::intake::acks::AckPacer;
use crate::intake::recorder::{CommandError, Now, Recorder};
use crate::notify::view::NoticeView;
use crate::notify::{SendError, Senders};
use crate::state::State;

/// Most messages recorded in one transaction.
pub const MAX_BATCH: usize = 500;
/// How often silence is checked and a failed commit retried.
const TICK: Duration = Duration::from_secs(1);
/// Snapshots are published at most this often; a reader's view is at most this old (or
/// [`BUSY_SHARE`]-spaced, see below).
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
/// How often the alert rules and the outbox run (besides after every stored batch).
const ALERT_TICK: Duration = Duration::from_millis(250);
/// Copying the state for a snapshot and evaluating the alert rules both cost time in proportion
/// to the fleet (every agent and link), not to the batch. Under load each is spaced so that it
/// takes at most about 1/`BUSY_SHARE` of the writer's time: with 100,000 agents a snapshot is
/// then a few hundred ms old and rules run a few times a second, instead of after every batch.
const BUSY_SHARE: u32 = 10;
/// How often acknowledgements that found the client's request channel full are tried again.
const ACK_RETRY: Duration = Duration::from_millis(5);

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
    /// A second passed: check silence, retry a failed commit.
    Tick(Now),
    /// Publish the snapshot if it changed since the last one.
    Flush,
    /// Publish the acknowledgements whose interval has expired.
    Acks,
    /// Try again the MQTT acknowledgements that found the request channel full.
    PendingAcks,
    /// Run the alert rules and the outbox.
    Alerts,
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
    client: AsyncClient,
    snapshots: watch::Sender<Arc<Snapshot>>,
    clock: ProcessClock,
    acks: AckPacer,
    /// A batch whose commit failed, waiting for a retry.
    unacked: Vec<Publish>,
    /// Packet ids of committed QoS 1 messages whose acknowledgement found the request channel
    /// full, oldest first (ids only: payloads are not kept alive for an acknowledgement).
    pending_acks: VecDeque<u16>,
    dirty: bool,
    published: Instant,
    /// Least time between two snapshots: [`SNAPSHOT_EVERY`], or more for a big state.
    snapshot_gap: Duration,
    /// When the alert rules last ran, and the least time between two runs after batches.
    evaluated: Instant,
    alert_gap: Duration,
    alerts: AlertParts,
    /// Notifications being sent now (not recorded as sent or failed yet).
    in_flight: HashSet<u64>,
    results: mpsc::UnboundedSender<(u64, Result<(), SendError>)>,
    health: WriterHealth,
}

/// Runs the writer until the intake closes the channel (normal shutdown) or `shutdown` fires
/// while a failed batch waits. Then publishes the last snapshot and the waiting watermarks, and
/// disconnects from the broker after the last acknowledgement.
// The writer's parts are handed over one by one so that `lib.rs` shows what it is wired to.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    recorder: Recorder,
    mut rx: mpsc::Receiver<Publish>,
    client: AsyncClient,
    snapshots: watch::Sender<Arc<Snapshot>>,
    clock: ProcessClock,
    ack_interval: Duration,
    alerts: AlertParts,
    shutdown: CancellationToken,
) {
    let (results, mut sent) = mpsc::unbounded_channel();
    let mut writer = Writer {
        alerts,
        in_flight: HashSet::new(),
        results,
        recorder,
        client,
        snapshots,
        clock,
        acks: AckPacer::new(ack_interval),
        unacked: Vec::new(),
        pending_acks: VecDeque::new(),
        dirty: false,
        published: Instant::now(),
        snapshot_gap: SNAPSHOT_EVERY,
        evaluated: Instant::now(),
        alert_gap: Duration::ZERO,
        health: WriterHealth::default(),
    };
    writer.publish();
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut flush = interval(SNAPSHOT_EVERY);
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut alert_tick = interval(ALERT_TICK);
    alert_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let ack_due = writer.acks.next_due();
        let input = tokio::select! {
            message = rx.recv(), if writer.unacked.is_empty() => match message {
                Some(first) => Input::Messages(drain(first, &mut rx)),
                None => break,
            },
            _ = tick.tick() => Input::Tick(writer.clock.now()),
            _ = flush.tick(), if writer.dirty => Input::Flush,
            () = tokio::time::sleep_until(ack_due.unwrap_or_else(Instant::now)), if ack_due.is_some() => Input::Acks,
            () = shutdown.cancelled(), if !writer.unacked.is_empty() => break,
            _ = alert_tick.tick() => Input::Alerts,
            () = tokio::time::sleep(ACK_RETRY), if !writer.pending_acks.is_empty() => Input::PendingAcks,
            Some((id, result)) = sent.recv() => Input::Sent(id, result),
            Some(command) = writer.alerts.commands.recv() => Input::Command(command),
        };
        writer.handle(input).await;
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
    writer.publish();
    writer.flush_acks();
    if !writer.pending_acks.is_empty() {
        warn!(
            messages = writer.pending_acks.len(),
            "stopping with acknowledgements not sent; the broker will deliver those messages again"
        );
    }
    let waiting = writer.acks.drain();
    writer.send_acks(waiting);
    info!(counters = ?writer.recorder.counters(), "writer stopped");
    if let Err(e) = writer.client.disconnect().await {
        debug!(error = %e, "disconnect request not sent: the MQTT event loop has stopped");
    }
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
    async fn handle(&mut self, input: Input) {
        match input {
            Input::Messages(batch) => self.record(batch),
            Input::Tick(now) => {
                if !self.unacked.is_empty() {
                    let batch = std::mem::take(&mut self.unacked);
                    self.record(batch);
                }
                match self.recorder.tick(now) {
                    Ok(0) => {}
                    Ok(_) => self.changed(),
                    Err(e) => {
                        error!(error = %e, "storing silence events failed; retrying next second");
                        self.health.failed(now.wall, &e.to_string(), false);
                        self.changed();
                    }
                }
            }
            Input::Flush if self.published.elapsed() >= self.snapshot_gap => self.publish(),
            Input::Flush => {}
            Input::Acks => {
                let due = self.acks.due(Instant::now());
                self.send_acks(due);
            }
            Input::PendingAcks => self.flush_acks(),
            Input::Alerts if self.evaluated.elapsed() >= self.alert_gap => self.alert(),
            Input::Alerts => {}
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
                self.changed();
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
                self.changed();
            }
        }
    }

    /// Runs the rules and the outbox, records what they decide, and starts the sends that are
    /// due.
    fn alert(&mut self) {
        let started = Instant::now();
        let now = self.clock.now();
        match self.recorder.evaluate(now, &*self.alerts.render) {
            Ok(0) => {}
            Ok(_) => self.changed(),
            Err(e) => {
                error!(error = %e, "storing alert events failed; retrying at the next evaluation");
                self.health.failed(now.wall, &e.to_string(), false);
            }
        }
        self.evaluated = Instant::now();
        self.alert_gap = (self.evaluated - started) * BUSY_SHARE;
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

    /// Queues the MQTT acknowledgement of a committed message, behind any still waiting.
    fn ack(&mut self, message: &Publish) {
        if message.qos != QoS::AtLeastOnce {
            // QoS 0 needs none; the collector subscribes with QoS 1, so nothing arrives with 2.
            return;
        }
        if self.pending_acks.is_empty() && self.client.try_ack(message).is_ok() {
            return;
        }
        self.pending_acks.push_back(message.pkid);
    }

    /// Sends the waiting acknowledgements, oldest first, until the request channel is full.
    fn flush_acks(&mut self) {
        while let Some(&pkid) = self.pending_acks.front() {
            let mut ack = Publish::new("", QoS::AtLeastOnce, Vec::new());
            ack.pkid = pkid;
            if self.client.try_ack(&ack).is_err() {
                debug!(
                    waiting = self.pending_acks.len(),
                    "request channel full; acknowledgements wait"
                );
                return;
            }
            self.pending_acks.pop_front();
        }
    }

    /// Queues the retained watermark of each agent for the broker (QoS 1). One that cannot be
    /// queued (the client's request channel is full) is tried again an interval later.
    fn send_acks(&mut self, agents: Vec<netmon_events::AgentId>) {
        let mut deferred = 0usize;
        for agent in agents {
            let Some((topic, ack)) = self.recorder.ack(&agent) else {
                continue;
            };
            if ack.acks.is_empty() {
                continue;
            }
            let topic = topic.to_string();
            match self
                .client
                .try_publish(&topic, QoS::AtLeastOnce, true, ack.to_json())
            {
                Ok(()) => debug!(topic, acks = ?ack.acks, "watermark published"),
                Err(_) => {
                    deferred += 1;
                    self.acks.retry(agent, Instant::now());
                }
            }
        }
        if deferred > 0 {
            debug!(
                agents = deferred,
                "request channel full; watermarks retried after ack_interval"
            );
        }
    }

    /// Records a batch, and acknowledges it once committed; keeps it for a retry otherwise.
    fn record(&mut self, batch: Vec<Publish>) {
        let now = self.clock.now();
        match self.recorder.record(&batch, now) {
            Ok(touched) => {
                self.health.committed(now.wall);
                self.changed();
                let messages = batch.len();
                self.flush_acks();
                for message in &batch {
                    self.ack(message);
                }
                debug!(
                    messages,
                    waiting = self.pending_acks.len(),
                    "batch stored and acknowledged"
                );
                let ready = self.acks.touched(touched, Instant::now());
                self.send_acks(ready);
                if self.evaluated.elapsed() >= self.alert_gap {
                    self.alert();
                }
            }
            Err(e) => {
                error!(
                    error = %e,
                    messages = batch.len(),
                    "storing events failed; messages stay unacknowledged and are retried every second"
                );
                self.unacked = batch;
                self.health.failed(now.wall, &e.to_string(), true);
                self.changed();
            }
        }
    }

    /// Publishes now if the last snapshot is old enough, else at the next flush.
    fn changed(&mut self) {
        if self.published.elapsed() >= self.snapshot_gap {
            self.publish();
        } else {
            self.dirty = true;
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
        self.dirty = false;
        self.published = Instant::now();
        self.snapshot_gap = SNAPSHOT_EVERY.max((self.published - started) * BUSY_SHARE);
    }
}
