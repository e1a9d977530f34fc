//! One MQTT connection's share of the fleet: its agents' schedule, and what it published.
//!
//! The agents are sorted by phase; agent i's tick k is due at `start + k × period + phase_i`, the
//! period being the probe interval (rounds format: [`SimAgent::round`]) or the report window
//! (windows format: [`WindowAgent::end_window`]). In the windows format each agent first
//! publishes its boot batch (`agent_started`, `targets_described`, the header carrying the
//! targets) at `boot_start + phase_i × spread / period`, before `start`; the link changes planned
//! for a window go out at their moment from a heap beside the ticks, each as its own message, and
//! later batches omit the header's targets (as once the collector has acknowledged the boot).
//!
//! With `dry_run` the same schedule runs on a simulated clock: nothing is published and nothing
//! sleeps; every payload is still encoded and counted.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use netmon_events::{
    BootId, Envelope, Event, HeaderTargets, Sender, encode_batch_from, encode_compact,
};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio::time::Instant;

use crate::fleet::{Mix, SimAgent};
use crate::windows::{WindowAgent, WindowMix};
use crate::{Counts, Format, PerMessage};

/// What one connection does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub format: Format,
    /// Between two ticks of one agent.
    pub period: Duration,
    pub boot_start: Instant,
    pub boot_spread: Duration,
    pub start: Instant,
    pub deadline: Instant,
    pub max_events: u64,
    pub mix: Mix,
    pub windows: WindowMix,
    pub per_message: PerMessage,
    pub dry_run: bool,
}

/// Messages, events and topic + payload bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Part {
    pub messages: u64,
    pub events: u64,
    pub bytes: u64,
}

/// What one connection published: boot batches apart from the steady stream.
#[derive(Debug, Default)]
pub struct Tally {
    pub seq_total: u64,
    pub boot: Part,
    pub steady: Part,
    /// Steady events by type.
    pub types: BTreeMap<&'static str, u64>,
}

/// A link change waiting for its moment.
struct Due {
    at: Instant,
    order: u64,
    agent: usize,
    event: Event,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// The link changes waiting for their moment, earliest first (in order of planning at a tie).
#[derive(Default)]
struct Pending {
    heap: BinaryHeap<Reverse<Due>>,
    planned: u64,
}

impl Pending {
    fn push(&mut self, at: Instant, agent: usize, event: Event) {
        self.planned += 1;
        let order = self.planned;
        self.heap.push(Reverse(Due {
            at,
            order,
            agent,
            event,
        }));
    }

    fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    fn pop(&mut self) -> Option<Due> {
        self.heap.pop().map(|Reverse(d)| d)
    }
}

/// The broker (or, dry, nothing), the clock and the counts.
struct Out {
    client: Option<AsyncClient>,
    poller: Option<tokio::task::JoinHandle<()>>,
    sent: u64,
    acked: Arc<AtomicU64>,
    counts: Arc<Counts>,
    sender_boot: BootId,
    origin: Instant,
    wall_origin: DateTime<Utc>,
    dry_run: bool,
    tally: Tally,
}

impl Out {
    fn open(plan: &Plan, counts: Arc<Counts>) -> anyhow::Result<Self> {
        let acked = Arc::new(AtomicU64::new(0));
        let (client, poller) = if plan.dry_run {
            (None, None)
        } else {
            let mut options = MqttOptions::new(&plan.client_id, &plan.host, plan.port);
            options
                .set_keep_alive(Duration::from_secs(30))
                .set_inflight(1000)
                .set_max_packet_size(1024 * 1024, 1024 * 1024);
            let (client, mut eventloop) = AsyncClient::new(options, 10_000);
            let (counts, acked) = (counts.clone(), acked.clone());
            let poller = tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                            counts.acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(e) => {
                            counts.errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("loadgen: MQTT connection error: {e}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            });
            (Some(client), Some(poller))
        };
        Ok(Self {
            client,
            poller,
            sent: 0,
            acked,
            counts,
            sender_boot: BootId::new(uuid::Uuid::new_v4().to_string())?,
            origin: Instant::now(),
            wall_origin: Utc::now(),
            dry_run: plan.dry_run,
            tally: Tally::default(),
        })
    }

    /// Waits until `due` (dry: at once) and returns the wall time to stamp events with.
    async fn at(&self, due: Instant) -> DateTime<Utc> {
        if self.dry_run {
            let since = due.saturating_duration_since(self.origin);
            let since = TimeDelta::from_std(since).unwrap_or(TimeDelta::MAX);
            return (self.wall_origin + since).trunc_subsecs(3);
        }
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due).await;
        } else {
            let late = u64::try_from((now - due).as_millis()).unwrap_or(u64::MAX);
            self.counts.max_late_ms.fetch_max(late, Ordering::Relaxed);
        }
        Utc::now().trunc_subsecs(3)
    }

    /// Whether the schedule is over at `due`.
    fn over(&self, due: Instant, deadline: Instant) -> bool {
        due >= deadline || (!self.dry_run && Instant::now() >= deadline)
    }

    fn sender(&self, due: Instant) -> Sender {
        let elapsed = if self.dry_run {
            due.saturating_duration_since(self.origin)
        } else {
            self.origin.elapsed()
        };
        Sender {
            boot: self.sender_boot.clone(),
            mono_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Counts (and unless dry, publishes) one message holding `events`.
    async fn send(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        events: &[Envelope],
    ) -> anyhow::Result<()> {
        let boot = events.iter().all(is_boot);
        let part = if boot {
            &mut self.tally.boot
        } else {
            for e in events {
                *self.tally.types.entry(e.event.type_name()).or_default() += 1;
            }
            &mut self.tally.steady
        };
        part.messages += 1;
        part.events += events.len() as u64;
        part.bytes += (topic.len() + payload.len()) as u64;
        let c = &self.counts;
        c.messages.fetch_add(1, Ordering::Relaxed);
        c.events.fetch_add(events.len() as u64, Ordering::Relaxed);
        c.bytes
            .fetch_add((topic.len() + payload.len()) as u64, Ordering::Relaxed);
        if let Some(last) = events.last() {
            let ms = u64::try_from(last.time.timestamp_millis()).unwrap_or(0);
            let _ = c
                .first_ms
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                    (f == 0).then_some(ms)
                });
            c.last_ms.fetch_max(ms, Ordering::Relaxed);
        }
        if let Some(client) = &self.client {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .context("queueing a publish")?;
            self.sent += 1;
        }
        Ok(())
    }

    /// Counts (and unless dry, publishes) `events` of `agent` as one compact batch.
    async fn send_compact(
        &mut self,
        agent: &WindowAgent,
        events: &[Envelope],
        header: HeaderTargets,
        due: Instant,
    ) -> anyhow::Result<()> {
        let payload = encode_compact(&self.sender(due), events, &agent.described, header)?;
        self.send(&agent.sim.topic, payload, events).await
    }

    /// Waits (at most 60 s) for the broker to acknowledge everything, then disconnects.
    async fn close(self, seq_total: u64) -> Tally {
        if let Some(client) = &self.client {
            let until = Instant::now() + Duration::from_secs(60);
            while self.acked.load(Ordering::Relaxed) < self.sent && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if let Err(e) = client.disconnect().await {
                eprintln!("loadgen: disconnect: {e}");
            }
        }
        if let Some(poller) = self.poller {
            let _ = tokio::time::timeout(Duration::from_secs(5), poller).await;
        }
        Tally {
            seq_total,
            ..self.tally
        }
    }
}

/// Whether `e` is one of a boot's first events, counted apart from the steady stream.
fn is_boot(e: &Envelope) -> bool {
    matches!(
        e.event,
        Event::AgentStarted { .. } | Event::TargetsDescribed { .. }
    )
}

/// Publishes the schedule of `agents` (sorted by phase) on one connection until the plan's end.
pub async fn connection(
    plan: Plan,
    agents: Vec<(Duration, SimAgent)>,
    counts: Arc<Counts>,
) -> anyhow::Result<Tally> {
    let mut out = Out::open(&plan, counts)?;
    let seq_total = match plan.format {
        Format::Rounds => rounds(&plan, agents, &mut out).await?,
        Format::Windows => windows(&plan, agents, &mut out).await?,
    };
    Ok(out.close(seq_total).await)
}

async fn rounds(
    plan: &Plan,
    mut agents: Vec<(Duration, SimAgent)>,
    out: &mut Out,
) -> anyhow::Result<u64> {
    let (mut idx, mut round, mut events) = (0usize, 0u32, 0u64);
    let mut buf = Vec::new();
    while !agents.is_empty() && events < plan.max_events {
        let due = plan.start + plan.period * round + agents[idx].0;
        if out.over(due, plan.deadline) {
            break;
        }
        let wall = out.at(due).await;
        let agent = &mut agents[idx].1;
        buf.clear();
        agent.round(wall, &plan.mix, &mut buf);
        let sender = out.sender(due);
        let groups: Vec<&[Envelope]> = match plan.per_message {
            PerMessage::Event => buf.chunks(1).collect(),
            // The first round's `agent_started` goes alone, so the steady stream is the rounds.
            PerMessage::Round => {
                let (boot, rest) = buf.split_at(usize::from(is_boot(&buf[0])));
                [boot, rest].into_iter().filter(|g| !g.is_empty()).collect()
            }
        };
        for group in groups {
            out.send(&agent.topic, encode_batch_from(&sender, group), group)
                .await?;
        }
        events += buf.len() as u64;
        idx += 1;
        if idx == agents.len() {
            idx = 0;
            round += 1;
        }
    }
    Ok(agents.iter().map(|(_, a)| a.seq()).sum())
}

async fn windows(
    plan: &Plan,
    agents: Vec<(Duration, SimAgent)>,
    out: &mut Out,
) -> anyhow::Result<u64> {
    let mut agents: Vec<(Duration, WindowAgent)> = agents
        .into_iter()
        .map(|(phase, a)| (phase, WindowAgent::new(a)))
        .collect();
    let (mut buf, mut pending, mut events) = (Vec::new(), Pending::default(), 0u64);
    let mix = plan.windows;
    // Boot batches, then each agent's first window (begun a period before its first tick; link
    // changes of it that fall before `start` are history and not sent).
    for (i, (phase, agent)) in agents.iter_mut().enumerate() {
        let phase = *phase;
        let due = plan.boot_start
            + plan
                .boot_spread
                .mul_f64(phase.as_secs_f64() / plan.period.as_secs_f64());
        if out.over(due, plan.deadline) {
            break;
        }
        let wall = out.at(due).await;
        buf.clear();
        agent.boot(wall, &mut buf);
        out.send_compact(agent, &buf, HeaderTargets::Include, due)
            .await?;
        events += buf.len() as u64;
        let first_tick = plan.start + phase;
        let window_start = first_tick.checked_sub(plan.period).unwrap_or(first_tick);
        let window_wall = if window_start >= due {
            wall + TimeDelta::from_std(window_start - due)?
        } else {
            wall - TimeDelta::from_std(due - window_start)?
        };
        for change in agent.plan(window_wall, &mix) {
            let at = window_start + change.after;
            if at >= plan.start {
                pending.push(at, i, change.event);
            }
        }
    }
    let (mut idx, mut tick) = (0usize, 0u32);
    while !agents.is_empty() && events < plan.max_events {
        let tick_due = plan.start + plan.period * tick + agents[idx].0;
        let change_due = pending.next_at();
        let due = change_due.filter(|&at| at < tick_due).unwrap_or(tick_due);
        if out.over(due, plan.deadline) {
            break;
        }
        let wall = out.at(due).await;
        buf.clear();
        if change_due == Some(due) && due < tick_due {
            let Some(change) = pending.pop() else {
                break;
            };
            let agent = &mut agents[change.agent].1;
            agent.record(wall, change.event, &mut buf);
            out.send_compact(agent, &buf, HeaderTargets::Omit, due)
                .await?;
        } else {
            let index = agents[idx].1.sim.index;
            let agent = &mut agents[idx].1;
            agent.end_window(wall, index, &mix, &mut buf);
            out.send_compact(agent, &buf, HeaderTargets::Omit, due)
                .await?;
            for change in agent.plan(wall, &mix) {
                pending.push(due + change.after, idx, change.event);
            }
            idx += 1;
            if idx == agents.len() {
                idx = 0;
                tick += 1;
            }
        }
        events += buf.len() as u64;
    }
    Ok(agents.iter().map(|(_, a)| a.sim.seq()).sum())
}
