//! The recorder: turns MQTT messages and clock ticks into stored events and applies them to the
//! state. It owns the store, the state and the intake counters, and is driven by one task
//! (`writer.rs`); it never touches the network and takes the time as an argument.
//!
//! One call handles a whole batch in one transaction: if the commit fails nothing is applied,
//! the counters and the collector's sequence are rolled back, and the caller keeps the messages
//! unacknowledged to try again. Each accepted agent event's time is judged (`clock.rs`) against
//! its boot's epoch estimate, and the boot's watermark advanced (`boots.rs`), in a draft that is
//! written with the events and kept only when they commit.
//!
//! At start it folds the newest usable snapshot (`intake/snapshot/`) and only the events stored
//! after it, or the whole store; it takes the snapshots too, copying the fold between batches.

mod alerting;
#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod delivery_tests;
#[cfg(test)]
mod rollup_tests;
mod rollups;
#[cfg(test)]
pub(crate) mod tests;
pub use alerting::CommandError;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_events::{
    Ack, AgentId, AgentStatus, BootId, Envelope, Event, InvalidEvent, PayloadError, ProvinceId,
    SCHEMA_VERSION, SilenceReason, Topic, TopicKind, decode_batch_with,
};
use rumqttc::Publish;
use tracing::{debug, info, warn};

use crate::alerts::Alerting;
use crate::api::IntakeCounters;
use crate::intake::boots::{Boots, Draft};
use crate::intake::clock::{ClockPolicy, ClockSource};
use crate::intake::snapshot::{self, Folded, Header, SnapshotFile};
use crate::intake::targets::KnownTargets;
use crate::state::{Overdue, State};
use crate::store::retention::{Schedule, Swept};
use crate::store::{Appended, BootRow, NewEvent, Origin, Refusal, Store, StoreError};

/// At most one refusal warning per topic in this interval; the rest are counted and summarised.
const WARN_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// At most this many refusal warnings in all per [`WARN_EVERY`], whatever the topics (one
/// agent's credentials may vary the topic: 20,000 junk messages made 20,000 lines, F12).
const WARN_BUDGET: u32 = 20;
/// Stored events read per query when replaying the events after a snapshot.
const TAIL_PAGE: usize = 10_000;

/// The collector's clocks at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Wall time, truncated to milliseconds (the store's precision).
    pub wall: DateTime<Utc>,
    /// Milliseconds since the collector started.
    pub mono_ms: u64,
}

/// Why a message or an event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    ForeignTopic,
    Oversized,
    Malformed,
    AgentMismatch,
    InvalidEvent,
    /// A compact batch named a target by a key no description of its boot gives.
    UnknownTarget,
    ForbiddenType,
    /// Valid, but the store cannot hold it (see `Appended::Refused`).
    Unstorable,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::ForeignTopic => "foreign_topic",
            Rejection::Oversized => "oversized",
            Rejection::Malformed => "malformed",
            Rejection::AgentMismatch => "agent_mismatch",
            Rejection::InvalidEvent => "invalid_event",
            Rejection::UnknownTarget => "unknown_target",
            Rejection::ForbiddenType => "forbidden_type",
            Rejection::Unstorable => "unstorable",
        }
    }
}

/// The store, the state folded from it, and what the intake has done.
#[derive(Debug)]
pub struct Recorder {
    store: Store,
    state: State,
    counters: IntakeCounters,
    province: Option<ProvinceId>,
    silence_after: Duration,
    policy: ClockPolicy,
    /// Watermarks and epoch estimates of every agent boot.
    boots: Boots,
    boot: BootId,
    next_seq: u64,
    /// Per topic: when a refusal was last logged, and how many were not logged since.
    warned: HashMap<String, (DateTime<Utc>, u64)>,
    /// All topics: the start of the current [`WARN_EVERY`] window, warnings logged in it, and
    /// refusals left unlogged because the budget was spent.
    budget: (DateTime<Utc>, u32, u64),
    /// Rules, alert book and outbox.
    alerting: Alerting,
    /// An agent quiet for this many of its usual gaps (and at least this long) is silent.
    cadence: (f64, Duration),
    /// When the store's retention sweeps next (`store/retention.rs`); nothing by default.
    retention: Schedule,
    /// Agents heard since the collector started.
    live: std::collections::HashSet<AgentId>,
    /// The targets each agent described for its recent boots (compact batches name them by key).
    targets: KnownTargets,
    /// Where the fold's snapshots go (none when `store.snapshot_every` is off), and the
    /// configuration they are folded with (`snapshot::fold_key`).
    snapshots: Option<SnapshotFile>,
    fold: u32,
    /// The daily coverage rollups (`rollups.rs`).
    rollups: rollups::Rollups,
}

/// Where one `events` message's outcome goes, within the batch being recorded.
struct Taken<'a> {
    new: &'a mut Vec<NewEvent>,
    refusals: &'a mut Vec<Refusal>,
    pending: &'a mut HashMap<AgentId, Pending>,
    draft: &'a mut Draft,
}

/// What the batch being recorded has already changed about an agent, before the commit.
#[derive(Debug, Clone, Copy)]
struct Pending {
    online: bool,
    last_seen: Option<DateTime<Utc>>,
}

impl Recorder {
    /// Rebuilds the watermarks and the state from `store`. Rows that cannot be read are logged
    /// and skipped.
    pub fn rebuild(
        store: Store,
        province: Option<ProvinceId>,
        silence_after: Duration,
        policy: ClockPolicy,
    ) -> Result<Self, StoreError> {
        Self::rebuild_with(store, province, silence_after, policy, Alerting::default())
    }

    /// [`Recorder::rebuild`] with alerting configured: the replay folds the alert book and the
    /// signals too.
    pub fn rebuild_with(
        store: Store,
        province: Option<ProvinceId>,
        silence_after: Duration,
        policy: ClockPolicy,
        alerting: Alerting,
    ) -> Result<Self, StoreError> {
        Self::rebuild_from(store, None, province, silence_after, policy, alerting)
    }

    /// [`Recorder::rebuild_with`] from the newest usable snapshot in `snapshots` and the events
    /// stored after it (the whole store when there is none); takes the next snapshots there.
    pub fn rebuild_from(
        mut store: Store,
        mut snapshots: Option<SnapshotFile>,
        province: Option<ProvinceId>,
        silence_after: Duration,
        policy: ClockPolicy,
        mut alerting: Alerting,
    ) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let (boots, moved) = Boots::load(store.boots()?, &store.overflows()?, |a, b, w| {
            store.seqs_above(a, b, w)
        })?;
        store.save_boots(&moved)?;
        let fold = snapshot::fold_key(&alerting);
        let (mut state, mut targets) = match snapshots.as_mut().and_then(|s| s.load(&store, fold)) {
            Some(folded) => {
                alerting.signals = folded.signals;
                alerting.book = folded.book;
                (folded.state, folded.targets)
            }
            None => (State::default(), KnownTargets::default()),
        };
        let position = state.last_id;
        let mut unreadable = 0u64;
        let mut apply = |event: &crate::store::StoredEvent| {
            state.apply(event);
            alerting.apply(event);
            targets.apply(event);
        };
        let replayed = if position == 0 {
            store.for_each(|row| match row {
                Ok(event) => apply(&event),
                Err(e) => {
                    unreadable += 1;
                    tracing::error!(error = %e, "unreadable stored event skipped during replay");
                }
            })?
        } else {
            // The events after the snapshot, a page at a time (each row read once, by id).
            let (mut after, mut replayed) = (position, 0);
            loop {
                let page = store.events_after(after, None, TAIL_PAGE)?;
                if page.last_id == after {
                    break;
                }
                after = page.last_id;
                unreadable += page.undecodable;
                replayed += page.undecodable + page.events.len() as u64;
                page.events.iter().for_each(&mut apply);
            }
            replayed
        };
        alerting.replayed();
        if replayed > 0
            && let Some(snapshots) = snapshots.as_mut()
        {
            snapshots.soon();
        }
        let boot =
            BootId::new(uuid::Uuid::new_v4().to_string()).map_err(|e| StoreError::BadRow {
                id: 0,
                problem: e.to_string(),
            })?;
        info!(
            events = replayed,
            snapshot_position = position,
            open_alerts = alerting.book.open.len(),
            outbox = alerting.book.outbox.len(),
            unreadable,
            agents = state.agents.len(),
            links = state.links.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            boot = %boot,
            watermarks_moved = moved.len(),
            target_tables = targets.tables(),
            "state rebuilt from the event store"
        );
        Ok(Self {
            store,
            state,
            counters: IntakeCounters::default(),
            province,
            silence_after,
            policy,
            boots,
            boot,
            next_seq: 1,
            warned: HashMap::new(),
            budget: (DateTime::UNIX_EPOCH, 0, 0),
            alerting,
            cadence: (0.0, Duration::MAX),
            retention: Schedule::default(),
            live: Default::default(),
            targets,
            snapshots,
            fold,
            rollups: Default::default(),
        })
    }

    /// Takes a snapshot of the fold if one is due (`intake/snapshot/`): the copy here, between
    /// batches, costing time in proportion to the fleet; the encoding and the write on a thread
    /// of their own.
    pub fn snapshot_if_due(&mut self, now: Now) {
        let position = self.state.last_id;
        if !self
            .snapshots
            .as_mut()
            .is_some_and(|s| s.due(now.mono_ms, position))
        {
            return;
        }
        let started = std::time::Instant::now();
        let Some((header, folded)) = self.snapshot(now.wall) else {
            return;
        };
        let copied = started.elapsed();
        if let Some(snapshots) = self.snapshots.as_mut() {
            snapshots.take(header, folded, now.mono_ms, copied);
        }
    }

    /// Waits for the snapshot being written, then writes one here and now if events were
    /// stored since (the collector is stopping).
    pub fn snapshot_now(&mut self, now: Now) {
        let Some(mut snapshots) = self.snapshots.take() else {
            return;
        };
        snapshots.finish(self.state.last_id, || self.snapshot(now.wall));
        self.snapshots = Some(snapshots);
    }

    /// A copy of the fold with its header, `None` (logged) when the last event cannot be read.
    fn snapshot(&self, now: DateTime<Utc>) -> Option<(Header, Folded)> {
        let header = match snapshot::header(&self.store, self.state.last_id, self.fold, now) {
            Ok(Some(header)) => header,
            Ok(None) => {
                warn!(
                    position = self.state.last_id,
                    "snapshot not taken: the last stored event cannot be read back"
                );
                return None;
            }
            Err(e) => {
                warn!(error = %e, "snapshot not taken: reading the store failed");
                return None;
            }
        };
        Some((header, self.folded()))
    }

    /// A copy of everything the recorder folds from the store.
    pub(crate) fn folded(&self) -> Folded {
        Folded {
            state: self.state.clone(),
            signals: self.alerting.signals.clone(),
            book: self.alerting.book.clone(),
            targets: self.targets.clone(),
        }
    }

    /// Deletes what `store.keep_measurements` and `store.keep_facts` let go.
    pub fn set_retention(&mut self, schedule: Schedule) {
        self.retention = schedule;
    }

    /// One retention step of each class that is due (between batches, at the tick): a few
    /// milliseconds each while the store holds expired rows, then a rest. A failed step is
    /// logged and tried again after the rest.
    pub fn retain(&mut self, now: Now) {
        for (class, cutoff) in self.retention.due(now.mono_ms, now.wall.timestamp_millis()) {
            let started = std::time::Instant::now();
            let swept = match self.store.sweep(class, cutoff) {
                Ok(swept) => swept,
                Err(e) => {
                    warn!(?class, error = %e, "retention step failed; trying again in a minute");
                    Swept {
                        deleted: 0,
                        caught_up: true,
                    }
                }
            };
            debug!(?class, deleted = swept.deleted, took = ?started.elapsed(), "retention step");
            if let Some(deleted) = self.retention.swept(class, swept, now.mono_ms)
                && deleted > 0
            {
                info!(?class, deleted, "retention: expired events deleted");
            }
        }
    }

    /// Declares agents silent when they stay quiet for `factor` times their usual gap between
    /// messages (and at least `floor`); `factor` 0 turns it off.
    pub fn set_cadence(&mut self, factor: f64, floor: Duration) {
        self.cadence = if factor > 0.0 {
            (factor, floor)
        } else {
            (0.0, Duration::MAX)
        };
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn counters(&self) -> &IntakeCounters {
        &self.counters
    }

    /// The collector's boot id for the events it makes.
    pub fn boot(&self) -> &BootId {
        &self.boot
    }

    /// The store, for tests that read it back.
    #[cfg(test)]
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The retained acknowledgement for `agent` and its topic (see `Boots::ack`).
    pub fn ack(&self, agent: &AgentId) -> Option<(Topic, Ack)> {
        self.boots.ack(agent)
    }

    /// The watermarks and epochs, for tests.
    #[cfg(test)]
    pub(crate) fn boots(&self) -> &Boots {
        &self.boots
    }

    /// Records a batch of MQTT messages in one transaction. Returns the agents whose events it
    /// took (to acknowledge). On `Err` nothing changed except `store_errors`; the messages must
    /// not be acknowledged.
    pub fn record(&mut self, batch: &[Publish], now: Now) -> Result<Vec<AgentId>, StoreError> {
        let saved = (self.counters.clone(), self.next_seq);
        let mut new = Vec::new();
        let mut refusals = Vec::new();
        let mut pending = HashMap::new();
        let mut draft = Draft::default();
        for message in batch {
            self.counters.messages += 1;
            let accepted = new.len();
            let refused = self.counters.rejected;
            match self.topic(&message.topic) {
                Some(topic) if topic.kind == TopicKind::Events => {
                    let out = Taken {
                        new: &mut new,
                        refusals: &mut refusals,
                        pending: &mut pending,
                        draft: &mut draft,
                    };
                    self.events(&topic, &message.payload, now, out);
                }
                Some(topic) => self.status(&topic, &message.payload, now, &mut new, &mut pending),
                None => self.refuse(&message.topic, Rejection::ForeignTopic, "", now),
            }
            if new.len() == accepted && self.counters.rejected > refused {
                self.counters.messages_rejected += 1;
            }
        }
        let rows = draft.rows();
        self.commit(&new, &refusals, &rows, now).inspect_err(|_| {
            (self.counters, self.next_seq) = saved.clone();
            self.counters.store_errors += 1;
        })?;
        Ok(self.boots.commit(draft))
    }

    /// Declares silent every online agent that sent nothing for `silence.after`, or that has
    /// been quiet for `silence.missed` of its usual gaps. Agents get `silence.after` of grace
    /// after the collector starts, so that a backlog queued by the broker can arrive; only agents
    /// heard since the start can be missed by their cadence during it. Returns how many agents
    /// were declared silent.
    pub fn tick(&mut self, now: Now) -> Result<usize, StoreError> {
        let grace = Duration::from_millis(now.mono_ms) < self.silence_after;
        let after =
            chrono::TimeDelta::from_std(self.silence_after).unwrap_or(chrono::TimeDelta::MAX);
        let cutoff = if grace {
            DateTime::<Utc>::MIN_UTC
        } else {
            now.wall
                .checked_sub_signed(after)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let (cadence, floor) = self.cadence;
        let floor = chrono::TimeDelta::from_std(floor).unwrap_or(chrono::TimeDelta::MAX);
        let mut overdue = self.state.overdue(cutoff, now.wall, cadence, floor);
        if grace {
            overdue.retain(|o| self.live.contains(&o.agent));
        }
        self.declare_silent(
            overdue,
            "nothing within silence.after or its usual cadence",
            now,
        )
    }

    /// Declares silent those of `agents` that are online: they missed their liveness messages
    /// ([`crate::intake::alive`]). Returns how many were declared silent.
    pub fn missed_alive(&mut self, agents: &[AgentId], now: Now) -> Result<usize, StoreError> {
        let overdue = agents
            .iter()
            .filter_map(|agent| {
                let state = self.state.agents.get(agent).filter(|a| a.online)?;
                Some(Overdue {
                    agent: agent.clone(),
                    province: state.province.clone(),
                    last_seen: state.last_seen,
                })
            })
            .collect();
        self.declare_silent(overdue, "missed its liveness messages", now)
    }

    fn declare_silent(
        &mut self,
        overdue: Vec<Overdue>,
        why: &str,
        now: Now,
    ) -> Result<usize, StoreError> {
        if overdue.is_empty() {
            return Ok(0);
        }
        let saved = self.next_seq;
        let events: Vec<_> = overdue
            .into_iter()
            .map(|o| {
                warn!(agent = %o.agent, last_seen = ?o.last_seen, why, "agent went silent");
                self.silent(
                    o.agent,
                    o.province,
                    SilenceReason::MissedHeartbeats,
                    o.last_seen,
                    now,
                )
            })
            .collect();
        self.commit(&events, &[], &[], now)
            .inspect_err(|_| {
                self.next_seq = saved;
                self.counters.store_errors += 1;
            })
            .map(|()| events.len())
    }

    fn commit(
        &mut self,
        events: &[NewEvent],
        refusals: &[Refusal],
        boots: &[BootRow],
        now: Now,
    ) -> Result<(), StoreError> {
        if events.is_empty() && boots.is_empty() && refusals.is_empty() {
            return Ok(());
        }
        let appended = self.store.append_with(events, refusals, boots)?;
        for (new, stored) in events.iter().zip(appended) {
            match stored {
                Appended::Refused(problem) => {
                    let envelope = &new.envelope;
                    let topic = Topic {
                        province: new.province.clone(),
                        agent: envelope.agent.clone(),
                        kind: TopicKind::Events,
                    };
                    let detail = format!(
                        "{} seq {} of boot {}: {problem}",
                        envelope.event.type_name(),
                        envelope.seq,
                        envelope.boot
                    );
                    self.refuse(&topic.to_string(), Rejection::Unstorable, &detail, now);
                }
                Appended::Stored(event) => {
                    match event.origin {
                        Origin::Agent => self.counters.events_stored += 1,
                        Origin::Collector if !event.envelope.event.is_alerting() => {
                            self.counters.silence_events += 1;
                        }
                        Origin::Collector => self.counters.alert_events += 1,
                    }
                    self.state.apply(&event);
                    self.alerting.apply(&event);
                    self.targets.apply(&event);
                }
                Appended::Duplicate => self.counters.duplicates += 1,
            }
        }
        Ok(())
    }

    fn topic(&self, topic: &str) -> Option<Topic> {
        let topic = Topic::parse(topic).ok()?;
        let ours = self.province.as_ref().is_none_or(|p| *p == topic.province);
        (ours && topic.kind != TopicKind::Ack).then_some(topic)
    }

    fn events(&mut self, topic: &Topic, payload: &[u8], now: Now, out: Taken<'_>) {
        let Taken {
            new,
            refusals,
            pending,
            draft,
        } = out;
        let name = topic.to_string();
        let items = match decode_batch_with(payload, &self.targets) {
            Ok(batch) => {
                if let Some(sender) = &batch.sender {
                    draft.sender(&self.boots, &topic.agent, &topic.province, sender, now.wall);
                }
                batch.events
            }
            Err(e @ (PayloadError::TooLarge(_) | PayloadError::TooManyEvents(_))) => {
                return self.refuse(&name, Rejection::Oversized, &e.to_string(), now);
            }
            Err(e) => return self.refuse(&name, Rejection::Malformed, &e.to_string(), now),
        };
        for item in items {
            let envelope = match item {
                Ok(envelope) => envelope,
                Err(e @ PayloadError::Invalid { .. }) => {
                    let detail = e.to_string();
                    let PayloadError::Invalid {
                        agent,
                        boot,
                        seq,
                        source,
                        ..
                    } = e
                    else {
                        continue;
                    };
                    let reason = match source {
                        InvalidEvent::UnknownTarget { .. } => Rejection::UnknownTarget,
                        _ => Rejection::InvalidEvent,
                    };
                    if agent == topic.agent && seq <= netmon_events::MAX_INT {
                        // It can never become valid: acknowledge it, so the agent stops
                        // resending it and everything after it.
                        let province = &topic.province;
                        draft.refused(&self.boots, province, &agent, &boot, seq, now.wall);
                        refusals.push(Refusal {
                            agent,
                            boot,
                            seq,
                            reason: reason.as_str(),
                            detail: detail.clone(),
                            received: now.wall,
                        });
                    }
                    self.refuse(&name, reason, &detail, now);
                    continue;
                }
                Err(e) => {
                    self.refuse(&name, Rejection::Malformed, &e.to_string(), now);
                    continue;
                }
            };
            if envelope.agent != topic.agent {
                let detail = format!("envelope agent {:?}", envelope.agent.as_str());
                self.refuse(&name, Rejection::AgentMismatch, &detail, now);
            } else if envelope.event.is_collector_made() {
                let detail = format!("type {}", envelope.event.type_name());
                self.refuse(&name, Rejection::ForbiddenType, &detail, now);
            } else {
                if !self.live.contains(&envelope.agent) {
                    self.live.insert(envelope.agent.clone());
                }
                pending.insert(
                    envelope.agent.clone(),
                    Pending {
                        online: true,
                        last_seen: Some(now.wall),
                    },
                );
                let judged = draft.accept(
                    &self.boots,
                    self.policy,
                    &topic.province,
                    &envelope,
                    now.wall,
                );
                new.push(NewEvent {
                    province: topic.province.clone(),
                    received: now.wall,
                    origin: Origin::Agent,
                    time: judged.time,
                    clock: judged.clock,
                    late: judged.late,
                    envelope,
                });
            }
        }
    }

    fn status(
        &mut self,
        topic: &Topic,
        payload: &[u8],
        now: Now,
        new: &mut Vec<NewEvent>,
        pending: &mut HashMap<AgentId, Pending>,
    ) {
        match AgentStatus::from_json(payload) {
            Err(e) => self.refuse(
                &topic.to_string(),
                Rejection::Malformed,
                &e.to_string(),
                now,
            ),
            Ok(AgentStatus::Online { boot, .. }) => {
                debug!(agent = %topic.agent, %boot, "agent reports online");
            }
            Ok(AgentStatus::Offline) => {
                let current = pending.get(&topic.agent).copied().unwrap_or_else(|| {
                    let agent = self.state.agents.get(&topic.agent);
                    Pending {
                        online: agent.is_some_and(|a| a.online),
                        last_seen: agent.and_then(|a| a.last_seen),
                    }
                });
                if !current.online {
                    debug!(agent = %topic.agent, "offline status for an agent already silent");
                    return;
                }
                warn!(agent = %topic.agent, "agent went silent: its last will arrived");
                pending.insert(
                    topic.agent.clone(),
                    Pending {
                        online: false,
                        last_seen: current.last_seen,
                    },
                );
                let event = self.silent(
                    topic.agent.clone(),
                    topic.province.clone(),
                    SilenceReason::LastWill,
                    current.last_seen,
                    now,
                );
                new.push(event);
            }
        }
    }

    /// A collector-made `agent_went_silent` about `agent`.
    fn silent(
        &mut self,
        agent: AgentId,
        province: ProvinceId,
        reason: SilenceReason,
        last_seen: Option<DateTime<Utc>>,
        now: Now,
    ) -> NewEvent {
        self.made(
            agent,
            province,
            Event::AgentWentSilent { reason, last_seen },
            now,
        )
    }

    /// A collector-made event filed under `agent`, with the collector's next seq.
    fn made(&mut self, agent: AgentId, province: ProvinceId, event: Event, now: Now) -> NewEvent {
        let seq = self.next_seq;
        self.next_seq += 1;
        NewEvent {
            province,
            received: now.wall,
            origin: Origin::Collector,
            time: now.wall,
            clock: ClockSource::Agent,
            late: false,
            envelope: Envelope {
                v: SCHEMA_VERSION,
                agent,
                boot: self.boot.clone(),
                seq,
                time: now.wall,
                mono_ms: now.mono_ms,
                event,
            },
        }
    }

    /// Counts a refusal and logs it, at most once per topic every [`WARN_EVERY`].
    fn refuse(&mut self, topic: &str, reason: Rejection, detail: &str, now: Now) {
        self.counters.rejected += 1;
        let by = &mut self.counters.rejected_by_reason;
        *match reason {
            Rejection::ForeignTopic => &mut by.foreign_topic,
            Rejection::Oversized => &mut by.oversized,
            Rejection::Malformed => &mut by.malformed,
            Rejection::AgentMismatch => &mut by.agent_mismatch,
            Rejection::InvalidEvent => &mut by.invalid_event,
            Rejection::UnknownTarget => &mut by.unknown_target,
            Rejection::ForbiddenType => &mut by.forbidden_type,
            Rejection::Unstorable => &mut by.unstorable,
        } += 1;
        if self.warned.len() > 10_000 {
            self.warned.clear();
        }
        let topic: String = netmon_events::text::printable(topic)
            .chars()
            .take(200)
            .collect();
        let entry = self
            .warned
            .entry(topic.clone())
            .or_insert((DateTime::UNIX_EPOCH, 0));
        if now.wall - entry.0 < WARN_EVERY {
            entry.1 += 1;
            return;
        }
        let (start, logged, unlogged) = &mut self.budget;
        if now.wall - *start >= WARN_EVERY {
            if *unlogged > 0 {
                warn!(
                    refusals = *unlogged,
                    "refusals not logged in the last 10 s (too many topics); see /api/v1/intake"
                );
            }
            (*start, *logged, *unlogged) = (now.wall, 0, 0);
        }
        if *logged >= WARN_BUDGET {
            *unlogged += 1;
            entry.1 += 1;
            return;
        }
        *logged += 1;
        let suppressed = entry.1;
        *entry = (now.wall, 0);
        let detail: String = netmon_events::text::printable(detail)
            .chars()
            .take(500)
            .collect();
        warn!(
            topic,
            reason = reason.as_str(),
            detail,
            suppressed,
            "message refused"
        );
    }
}
