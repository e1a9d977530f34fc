//! The writer's pacing (pure: the time is passed in, nothing is sent from here).
//!
//! What to do next and when: check silence, publish a snapshot for the readers, send which MQTT
//! acknowledgement and which retained watermark, run the alert rules. Like rumqttc's `state.rs`
//! it only changes its own state: the writer (`writer/mod.rs`) tells it what happened — a batch
//! committed, the state changed, an acknowledgement found the client's request channel full, how
//! long a snapshot took — and executes the [`Action`]s that [`Pacing::poll`] hands out, one at a
//! time so that what the writer reports back (a full channel) changes what comes next.
//!
//! - **Acknowledgements** of a committed batch queue behind any still waiting and go out in the
//!   order the messages came (MQTT requires it), never before their commit: only
//!   [`Pacing::on_batch`] queues them. One that finds the request channel full is handed back
//!   ([`Pacing::ack_blocked`]) and it and every later one wait [`ACK_RETRY`], or the next commit;
//!   none is dropped. Their number is bounded by the broker's in-flight window for the collector.
//! - **Watermarks**: at most one per agent per `delivery.ack_interval` and at most
//!   `delivery.max_acks_per_s` in all ([`AckPacer`]), the latest state once the interval expires
//!   and its turn comes; one that cannot be queued is tried again an interval later
//!   ([`Pacing::watermark_blocked`]).
//! - **Snapshots** at most every [`SNAPSHOT_EVERY`], and spaced by [`BUSY_SHARE`] times what the
//!   last one cost ([`Pacing::published`]).
//! - **Alert rules** after a committed batch and every [`ALERT_TICK`], spaced by [`BUSY_SHARE`]
//!   times what the last run cost ([`Pacing::evaluated`]).
//! - **Ticks** every [`TICK`]: silence, and the retry of a batch whose commit failed.
//!
//! At shutdown ([`Pacing::finish`]) the last snapshot, every waiting acknowledgement and every
//! waiting watermark go out at once, each tried once; no more ticks or scheduled rule runs.

use std::collections::VecDeque;
use std::time::Duration;

use netmon_events::AgentId;
use tokio::time::Instant;

use crate::intake::acks::AckPacer;

/// How often silence is checked and a failed commit retried.
pub const TICK: Duration = Duration::from_secs(1);
/// Snapshots are published at most this often; a reader's view is at most this old (or
/// [`BUSY_SHARE`]-spaced, see below).
pub const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
/// How often the alert rules and the outbox run (besides after every stored batch).
pub const ALERT_TICK: Duration = Duration::from_millis(250);
/// Copying the state for a snapshot and evaluating the alert rules both cost time in proportion
/// to the fleet (every agent and link), not to the batch. Under load each is spaced so that it
/// takes at most about 1/`BUSY_SHARE` of the writer's time: with 100,000 agents a snapshot is
/// then a few hundred ms old and rules run a few times a second, instead of after every batch.
pub const BUSY_SHARE: u32 = 10;
/// How often acknowledgements that found the client's request channel full are tried again.
pub const ACK_RETRY: Duration = Duration::from_millis(5);

/// What the writer is to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Check silence; first retry the batch whose commit failed, if one waits.
    Tick,
    /// Publish the snapshot, then say how long it took ([`Pacing::published`]).
    PublishSnapshot,
    /// Acknowledge the committed QoS 1 message with this packet id; when the request channel is
    /// full, hand it back ([`Pacing::ack_blocked`]).
    Ack(u16),
    /// Publish this agent's retained watermark; when it cannot be queued,
    /// [`Pacing::watermark_blocked`].
    Watermark(AgentId),
    /// Run the alert rules and the outbox, then say how long it took ([`Pacing::evaluated`]).
    EvaluateAlerts,
}

/// The writer's timers and queues.
#[derive(Debug)]
pub struct Pacing {
    next_tick: Instant,
    /// The state changed since the last snapshot.
    dirty: bool,
    published: Instant,
    /// Least time between two snapshots: [`SNAPSHOT_EVERY`], or more for a big state.
    snapshot_gap: Duration,
    next_alert_tick: Instant,
    /// When the alert rules last ran, and the least time between two runs.
    evaluated: Instant,
    alert_gap: Duration,
    /// A committed batch found the rules' spacing elapsed: run them once the batch is answered.
    alerts_after_batch: bool,
    /// Packet ids of committed QoS 1 messages not acknowledged yet, oldest first (ids only:
    /// payloads are not kept alive for an acknowledgement).
    acks: VecDeque<u16>,
    /// When the waiting acknowledgements may be tried (again); never once one is blocked while
    /// finishing.
    acks_due: Option<Instant>,
    watermarks: AckPacer,
    /// The earliest time a waiting watermark is due (the pacer's `next_due`, kept current).
    watermarks_due: Option<Instant>,
    /// Agents whose watermark goes out now, in order.
    watermarks_ready: VecDeque<AgentId>,
    /// Shutting down: see [`Pacing::finish`].
    finishing: bool,
}

impl Pacing {
    /// A writer starting at `now`: the first snapshot, the first tick and the first rule run
    /// are due at once. Watermarks: at most one per agent per `ack_interval`, and at most
    /// `acks_per_s` in all.
    pub fn new(now: Instant, ack_interval: Duration, acks_per_s: u32) -> Self {
        Self {
            next_tick: now,
            dirty: true,
            published: now,
            snapshot_gap: Duration::ZERO,
            next_alert_tick: now,
            evaluated: now,
            alert_gap: Duration::ZERO,
            alerts_after_batch: false,
            acks: VecDeque::new(),
            acks_due: Some(now),
            watermarks: AckPacer::new(ack_interval, acks_per_s),
            watermarks_due: None,
            watermarks_ready: VecDeque::new(),
            finishing: false,
        }
    }

    /// A batch was committed at `now`: `acks` are the packet ids of its QoS 1 messages in the
    /// order they came, `touched` the agents whose watermark moved. The waiting acknowledgements
    /// are tried again at once, ahead of these.
    pub fn on_batch(
        &mut self,
        now: Instant,
        acks: impl IntoIterator<Item = u16>,
        touched: Vec<AgentId>,
    ) {
        self.dirty = true;
        self.acks.extend(acks);
        self.acks_due = Some(now);
        self.watermarks.touched(touched, now);
        self.watermarks_due = self.watermarks.next_due();
        if now >= self.evaluated + self.alert_gap {
            self.alerts_after_batch = true;
        }
    }

    /// The state changed other than by a committed batch (silence, a failed commit, an
    /// operator's command, a notice's outcome): readers are to see it.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// The next action due at `now`, if any: call until `None`, executing each, then sleep
    /// until [`Pacing::next_deadline`] or the next input.
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        if self.dirty && (self.finishing || now >= self.published + self.snapshot_gap) {
            self.dirty = false;
            return Some(Action::PublishSnapshot);
        }
        if self.acks_due.is_some_and(|due| due <= now)
            && let Some(pkid) = self.acks.pop_front()
        {
            return Some(Action::Ack(pkid));
        }
        if !self.finishing && self.watermarks_due.is_some_and(|due| due <= now) {
            let due = self.watermarks.due(now);
            self.watermarks_ready.extend(due);
            self.watermarks_due = self.watermarks.next_due();
        }
        if let Some(agent) = self.watermarks_ready.pop_front() {
            return Some(Action::Watermark(agent));
        }
        if self.alerts_after_batch {
            self.alerts_after_batch = false;
            return Some(Action::EvaluateAlerts);
        }
        if self.finishing {
            return None;
        }
        if now >= self.next_tick {
            self.next_tick = following(self.next_tick, now, TICK);
            return Some(Action::Tick);
        }
        if now >= self.next_alert_tick {
            self.next_alert_tick = following(self.next_alert_tick, now, ALERT_TICK);
            if now >= self.evaluated + self.alert_gap {
                return Some(Action::EvaluateAlerts);
            }
        }
        None
    }

    /// When [`Pacing::poll`] next has something to hand out, once it has returned `None`.
    pub fn next_deadline(&self) -> Instant {
        let mut at = self.next_tick.min(self.next_alert_tick);
        if self.dirty {
            at = at.min(self.published + self.snapshot_gap);
        }
        if !self.acks.is_empty()
            && let Some(due) = self.acks_due
        {
            at = at.min(due);
        }
        if let Some(due) = self.watermarks_due {
            at = at.min(due);
        }
        at
    }

    /// The acknowledgement of `pkid` (just handed out) found the request channel full: it goes
    /// first again, it and the later ones after [`ACK_RETRY`] or at the next commit.
    pub fn ack_blocked(&mut self, pkid: u16, now: Instant) {
        self.acks.push_front(pkid);
        self.acks_due = (!self.finishing).then_some(now + ACK_RETRY);
    }

    /// `agent`'s watermark (just handed out) could not be queued: tried again an interval later.
    pub fn watermark_blocked(&mut self, agent: AgentId, now: Instant) {
        self.watermarks.retry(agent, now);
        self.watermarks_due = self.watermarks.next_due();
    }

    /// A snapshot built from `started` to `finished`: the next one waits [`SNAPSHOT_EVERY`], or
    /// [`BUSY_SHARE`] times as long as this one took.
    pub fn published(&mut self, started: Instant, finished: Instant) {
        self.published = finished;
        self.snapshot_gap = SNAPSHOT_EVERY.max((finished - started) * BUSY_SHARE);
    }

    /// The rules ran from `started` to `finished`: the next run waits [`BUSY_SHARE`] times as
    /// long as this one took.
    pub fn evaluated(&mut self, started: Instant, finished: Instant) {
        self.evaluated = finished;
        self.alert_gap = (finished - started) * BUSY_SHARE;
    }

    /// Acknowledgements committed and not sent yet.
    pub fn waiting_acks(&self) -> usize {
        self.acks.len()
    }

    /// Shutting down at `now`: [`Pacing::poll`] hands out the last snapshot, the waiting
    /// acknowledgements (until one finds the channel full) and every waiting watermark whatever
    /// its interval, each once, then `None`.
    pub fn finish(&mut self, now: Instant) {
        self.finishing = true;
        self.dirty = true;
        self.acks_due = Some(now);
        let waiting = self.watermarks.drain();
        self.watermarks_ready.extend(waiting);
        self.watermarks_due = None;
    }
}

/// The next time of a timer of `period` that fired at `now` and was due at `due`: one period
/// later, or one period from now when it fired late (ticks missed are not made up).
fn following(due: Instant, now: Instant, period: Duration) -> Instant {
    let next = due + period;
    if next > now { next } else { now + period }
}

#[cfg(test)]
#[path = "pacing_tests.rs"]
mod tests;
