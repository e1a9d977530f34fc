//! The simulated fleet, free of I/O: each [`SimAgent`] has its own agent id, boot id and gap-free
//! seq, and turns one probe interval into the events a real agent records in it — one
//! `probe_round_completed` per target, an `agent_heartbeat` every `heartbeat_every` rounds, and
//! now and then an outage of one target (`down_after` failed rounds → `link_went_down`, then
//! `link_came_back` with the outage's length). The first round starts with `agent_started`.
//!
//! Randomness is a small xorshift generator seeded from the agent's index, so a run is
//! reproducible and costs no syscalls.

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{
    AgentId, BootId, DownReason, Envelope, Event, LinkRole, ProvinceId, SCHEMA_VERSION, Target,
    Topic, TopicKind,
};

/// What the fleet's agents record, besides one probe round per target per interval.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// An `agent_heartbeat` every this many rounds (0: none).
    pub heartbeat_every: u64,
    /// On average one outage every this many rounds per agent (0: none).
    pub flap_every: u64,
    /// Failed rounds before `link_went_down` (the agent's `probe.down_after`).
    pub down_after: u32,
    /// Failed rounds an outage lasts in all.
    pub outage_rounds: u32,
}

/// An outage in progress on one target.
#[derive(Debug, Clone)]
struct Outage {
    target: usize,
    since: DateTime<Utc>,
    since_mono: u64,
    failed: u32,
}

/// One simulated agent.
#[derive(Debug, Clone)]
pub struct SimAgent {
    /// Its number in the fleet.
    pub index: u64,
    pub id: AgentId,
    pub boot: BootId,
    /// Its `events` topic.
    pub topic: String,
    /// Wall time at which its monotonic clock reads 0.
    booted: DateTime<Utc>,
    seq: u64,
    rounds: u64,
    targets: Vec<Target>,
    outage: Option<Outage>,
    rng: u64,
}

/// Target kinds of a village agent, with Vietnamese names: `{}` is the agent's number.
const KINDS: [(&str, LinkRole); 5] = [
    ("Router thôn số {}", LinkRole::Gateway),
    ("UBND xã số {}", LinkRole::Commune),
    ("Trung tâm dữ liệu tỉnh Thanh Hóa", LinkRole::Province),
    ("Máy chủ DNS công cộng", LinkRole::Internet),
    ("Nhà văn hóa thôn số {}", LinkRole::Other),
];

impl SimAgent {
    /// Agent number `index` of `province`, with `targets` targets, started `uptime` before `now`.
    pub fn new(
        prefix: &str,
        index: u64,
        province: &ProvinceId,
        targets: usize,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let id = AgentId::new(format!("{prefix}-{index:06}"))?;
        let boot = BootId::new(uuid::Uuid::new_v4().to_string())?;
        let topic = Topic::new(province.clone(), id.clone(), TopicKind::Events).to_string();
        let mut rng = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let uptime_ms = next(&mut rng) % 86_400_000;
        let booted = now - TimeDelta::milliseconds(i64::try_from(uptime_ms)?);
        let targets = (0..targets)
            .map(|t| {
                let (name, role) = KINDS[t % KINDS.len()];
                let mut name = name.replace("{}", &index.to_string());
                if t >= KINDS.len() {
                    name.push_str(&format!(" ({})", t / KINDS.len() + 1));
                }
                let address = format!(
                    "10.{}.{}.{}",
                    index / 65_536 % 256,
                    index / 256 % 256,
                    t + 1
                )
                .parse()
                .map_err(|e| anyhow::anyhow!("target address: {e}"))?;
                Ok(Target {
                    name,
                    address,
                    role,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            index,
            id,
            boot,
            topic,
            booted,
            seq: 0,
            rounds: 0,
            targets,
            outage: None,
            rng,
        })
    }

    /// The highest seq recorded so far.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Wall time at which its monotonic clock reads 0 (its boot's epoch).
    pub fn booted(&self) -> DateTime<Utc> {
        self.booted
    }

    /// Its links that are down now (`link_went_down` recorded, not yet back).
    pub fn links_down(&self, mix: &Mix) -> u64 {
        u64::from(
            self.outage
                .as_ref()
                .is_some_and(|o| o.failed >= mix.down_after),
        )
    }

    /// Its targets, in config order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The next number of its random sequence.
    pub fn random(&mut self) -> u64 {
        next(&mut self.rng)
    }

    /// Its monotonic clock at wall time `now`, ms.
    pub fn mono_ms(&self, now: DateTime<Utc>) -> u64 {
        u64::try_from((now - self.booted).num_milliseconds()).unwrap_or(0)
    }

    /// Appends to `out` the events of one probe interval ending at `now`.
    pub fn round(&mut self, now: DateTime<Utc>, mix: &Mix, out: &mut Vec<Envelope>) {
        let mono_ms = self.mono_ms(now);
        if self.rounds == 0 {
            let targets = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
            let version = env!("CARGO_PKG_VERSION").to_string();
            self.push(now, mono_ms, Event::AgentStarted { version, targets }, out);
        }
        self.rounds += 1;
        if self.outage.is_none()
            && mix.flap_every > 0
            && next(&mut self.rng).is_multiple_of(mix.flap_every)
        {
            let target = (next(&mut self.rng) % self.targets.len() as u64) as usize;
            self.outage = Some(Outage {
                target,
                since: now,
                since_mono: mono_ms,
                failed: 0,
            });
        }
        for t in 0..self.targets.len() {
            let target = self.targets[t].clone();
            let failing = self.outage.as_ref().filter(|o| o.target == t).cloned();
            match failing {
                Some(o) if o.failed >= mix.outage_rounds => {
                    self.outage = None;
                    let round = self.answered(target.clone());
                    self.push(now, mono_ms, round, out);
                    let back = Event::LinkCameBack {
                        target,
                        down_since: o.since,
                        down_for_ms: mono_ms.saturating_sub(o.since_mono),
                        reason: DownReason::NoReply,
                    };
                    self.push(now, mono_ms, back, out);
                }
                Some(o) => {
                    let failed = o.failed + 1;
                    if let Some(outage) = &mut self.outage {
                        outage.failed = failed;
                    }
                    let round = Event::ProbeRoundCompleted {
                        target: target.clone(),
                        sent: 3,
                        received: 0,
                        rtt_min_ms: None,
                        rtt_avg_ms: None,
                        rtt_max_ms: None,
                        rtt_mdev_ms: None,
                        loss_pct: 100.0,
                    };
                    self.push(now, mono_ms, round, out);
                    if failed == mix.down_after {
                        let down = Event::LinkWentDown {
                            target,
                            since: o.since,
                            reason: DownReason::NoReply,
                            failed_rounds: failed,
                        };
                        self.push(now, mono_ms, down, out);
                    }
                }
                None => {
                    let round = self.answered(target);
                    self.push(now, mono_ms, round, out);
                }
            }
        }
        if mix.heartbeat_every > 0 && self.rounds.is_multiple_of(mix.heartbeat_every) {
            let beat = Event::AgentHeartbeat {
                uptime_s: mono_ms / 1000,
                backlog: 0,
            };
            self.push(now, mono_ms, beat, out);
        }
    }

    /// A round with replies: three echoes, sometimes one lost, RTTs of a rural uplink.
    fn answered(&mut self, target: Target) -> Event {
        let r = next(&mut self.rng);
        let received = if r.is_multiple_of(20) { 2 } else { 3 };
        let avg = 8.0 + (r % 4000) as f64 / 100.0;
        Event::ProbeRoundCompleted {
            target,
            sent: 3,
            received,
            rtt_min_ms: Some((avg * 0.8 * 1000.0).round() / 1000.0),
            rtt_avg_ms: Some(avg),
            rtt_max_ms: Some((avg * 1.3 * 1000.0).round() / 1000.0),
            rtt_mdev_ms: Some((avg * 0.1 * 1000.0).round() / 1000.0),
            loss_pct: if received == 3 { 0.0 } else { 100.0 / 3.0 },
        }
    }

    /// Records `event` at `now` (the next seq) into `out`.
    pub fn push(
        &mut self,
        now: DateTime<Utc>,
        mono_ms: u64,
        event: Event,
        out: &mut Vec<Envelope>,
    ) {
        self.seq += 1;
        out.push(Envelope {
            v: SCHEMA_VERSION,
            agent: self.id.clone(),
            boot: self.boot.clone(),
            seq: self.seq,
            time: now,
            mono_ms,
            event,
        });
    }
}

/// xorshift64: fast, deterministic, good enough for a load mix.
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_gap_free_and_outages_are_whole() {
        let province = ProvinceId::new("bench").unwrap();
        let t0 = Utc::now();
        let mut agent = SimAgent::new("lg", 7, &province, 5, t0).unwrap();
        let mix = Mix {
            heartbeat_every: 1,
            flap_every: 3,
            down_after: 3,
            outage_rounds: 5,
        };
        let mut out = Vec::new();
        for r in 0..300 {
            agent.round(t0 + TimeDelta::seconds(10 * r), &mix, &mut out);
        }
        for (i, e) in out.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            e.validate().unwrap();
        }
        let count = |name: &str| out.iter().filter(|e| e.event.type_name() == name).count();
        assert_eq!(count("agent_started"), 1);
        assert_eq!(count("agent_heartbeat"), 300);
        assert_eq!(count("probe_round_completed"), 1500);
        let (downs, backs) = (count("link_went_down"), count("link_came_back"));
        assert!(downs > 5, "{downs} outages in 300 rounds");
        assert!(
            backs == downs || backs + 1 == downs,
            "{downs} down, {backs} back"
        );
    }
}
