//! The windows format of the simulated fleet: what an agent records at the defaults of ADR 14
//! (`docs/adr/0014-probe-windows-and-compact-batches.md`). Free of I/O like `fleet.rs`, whose
//! [`SimAgent`] carries the identity, seq and randomness:
//!
//! - at boot, `agent_started` and `targets_described` (the targets keyed 1, 2, 3 …);
//! - at the end of every report window, one `probe_window_completed` per target summing up
//!   `rounds` rounds of 3 echoes (RTTs of a rural uplink, now and then an echo lost), and every
//!   `heartbeat_every` windows an `agent_heartbeat` with them (the agent's heartbeat and window
//!   timers both start at boot, so they fall together);
//! - on average one outage every `flap_every` rounds: one target fails `outage_rounds` rounds in a
//!   row inside a window; `link_went_down` after `down_after` of them and `link_came_back` at the
//!   first answered round are recorded when they happen ([`WindowAgent::plan`] says when), and
//!   the window's counts carry the failed rounds.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{DescribedTarget, DownReason, Envelope, Event, RTT_PERCENTILES};

use crate::fleet::SimAgent;

/// Echoes per round (the agent's default `probe.count`).
const ECHOES: u32 = 3;

/// What the fleet's agents record in the windows format.
#[derive(Debug, Clone, Copy)]
pub struct WindowMix {
    /// Probe rounds per report window (`probe.report_every` / `probe.interval`).
    pub rounds: u32,
    /// One round, ms (`probe.interval`).
    pub round_ms: u64,
    /// An `agent_heartbeat` every this many windows (0: none).
    pub heartbeat_every: u64,
    /// On average one outage every this many rounds per agent (0: none).
    pub flap_every: u64,
    /// Failed rounds before `link_went_down` (`probe.down_after`).
    pub down_after: u32,
    /// Failed rounds an outage lasts in all.
    pub outage_rounds: u32,
}

/// A link change an agent records inside a window, `after` the window's start.
#[derive(Debug, Clone)]
pub struct LinkChange {
    pub after: Duration,
    pub event: Event,
}

/// One simulated agent of the windows format.
#[derive(Debug, Clone)]
pub struct WindowAgent {
    pub sim: SimAgent,
    /// This boot's targets with their keys.
    pub described: Vec<DescribedTarget>,
    /// Windows ended so far.
    windows: u64,
    /// The outage of the window in progress: target, first failed round.
    outage: Option<(usize, u32)>,
}

impl WindowAgent {
    pub fn new(sim: SimAgent) -> Self {
        let described = DescribedTarget::numbered(sim.targets());
        Self {
            sim,
            described,
            windows: 0,
            outage: None,
        }
    }

    /// Appends the boot's first events to `out`.
    pub fn boot(&mut self, now: DateTime<Utc>, out: &mut Vec<Envelope>) {
        let mono_ms = self.sim.mono_ms(now);
        let targets = u32::try_from(self.described.len()).unwrap_or(u32::MAX);
        let version = env!("CARGO_PKG_VERSION").to_string();
        let started = Event::AgentStarted { version, targets };
        self.sim.push(now, mono_ms, started, out);
        let described = Event::TargetsDescribed {
            targets: self.described.clone(),
        };
        self.sim.push(now, mono_ms, described, out);
    }

    /// Decides whether the window starting at `start` has an outage; returns its link changes.
    pub fn plan(&mut self, start: DateTime<Utc>, mix: &WindowMix) -> Vec<LinkChange> {
        self.outage = None;
        let room = mix.rounds.saturating_sub(mix.outage_rounds + 1);
        if mix.flap_every == 0 || room == 0 || mix.outage_rounds < mix.down_after {
            return Vec::new();
        }
        if self.sim.random() % mix.flap_every >= u64::from(mix.rounds) {
            return Vec::new();
        }
        let target = (self.sim.random() % self.described.len() as u64) as usize;
        let first = (self.sim.random() % u64::from(room)) as u32;
        self.outage = Some((target, first));
        let round = |n: u32| Duration::from_millis(u64::from(n) * mix.round_ms);
        let since = start + TimeDelta::milliseconds(i64::from(first) * mix.round_ms as i64);
        let target = self.sim.targets()[target].clone();
        vec![
            LinkChange {
                after: round(first + mix.down_after),
                event: Event::LinkWentDown {
                    target: target.clone(),
                    since,
                    reason: DownReason::NoReply,
                    failed_rounds: mix.down_after,
                },
            },
            LinkChange {
                after: round(first + mix.outage_rounds + 1),
                event: Event::LinkCameBack {
                    target,
                    down_since: since,
                    down_for_ms: u64::from(mix.outage_rounds) * mix.round_ms,
                    reason: DownReason::NoReply,
                },
            },
        ]
    }

    /// Records a link change planned by [`Self::plan`], now.
    pub fn record(&mut self, now: DateTime<Utc>, event: Event, out: &mut Vec<Envelope>) {
        let mono_ms = self.sim.mono_ms(now);
        self.sim.push(now, mono_ms, event, out);
    }

    /// Appends the events of the window ending at `now`: one summary per target, and the
    /// heartbeat when due (agent `index` beats on its own windows, so the fleet's are even).
    pub fn end_window(
        &mut self,
        now: DateTime<Utc>,
        index: u64,
        mix: &WindowMix,
        out: &mut Vec<Envelope>,
    ) {
        let mono_ms = self.sim.mono_ms(now);
        for t in 0..self.described.len() {
            let failed = match self.outage {
                Some((target, _)) if target == t => mix.outage_rounds,
                _ => 0,
            };
            let event = self.summary(t, failed, mix);
            self.sim.push(now, mono_ms, event, out);
        }
        self.windows += 1;
        if mix.heartbeat_every > 0 && (self.windows + index).is_multiple_of(mix.heartbeat_every) {
            let beat = Event::AgentHeartbeat {
                uptime_s: mono_ms / 1000,
                backlog: 0,
            };
            self.sim.push(now, mono_ms, beat, out);
        }
    }

    /// One target's window: `failed` rounds without replies, the rest answered.
    fn summary(&mut self, t: usize, failed: u32, mix: &WindowMix) -> Event {
        let r = self.sim.random();
        let answered = mix.rounds - failed;
        let lost = if r.is_multiple_of(3) {
            (r >> 8) as u32 % 4
        } else {
            0
        };
        let lost = lost.min(answered * ECHOES);
        let sent = mix.rounds * ECHOES;
        let received = answered * ECHOES - lost;
        let loss_pct = round2(f64::from(sent - received) * 100.0 / f64::from(sent));
        let held_down = failed.saturating_sub(mix.down_after - 1);
        let (min, avg, max, mdev, pct) = if received == 0 {
            (None, None, None, None, None)
        } else {
            let base = 8.0 + (r % 4000) as f64 / 100.0;
            let pct: Vec<f64> = (0..RTT_PERCENTILES)
                .map(|k| round2(base * (0.86 + 0.04 * k as f64)))
                .collect();
            (
                Some(round2(base * 0.8)),
                Some(round2(base)),
                Some(round2(base * 1.9)),
                Some(round2(base * 0.12)),
                Some(pct),
            )
        };
        Event::ProbeWindowCompleted {
            target: self.sim.targets()[t].clone(),
            window_ms: u64::from(mix.rounds) * mix.round_ms,
            rounds: mix.rounds,
            failed_rounds: failed,
            longest_failed_run: failed,
            down_ms: u64::from(held_down) * mix.round_ms,
            sent,
            received,
            loss_pct,
            rtt_min_ms: min,
            rtt_avg_ms: avg,
            rtt_max_ms: max,
            rtt_mdev_ms: mdev,
            rtt_pct_ms: pct,
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use netmon_events::{
        HeaderTargets, ProvinceId, decode_batch, decode_batch_with, encode_compact,
    };

    #[test]
    fn windows_are_valid_and_outages_are_whole() {
        let province = ProvinceId::new("bench").unwrap();
        let t0 = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
        let sim = SimAgent::new("lg", 7, &province, 4, t0).unwrap();
        let mut agent = WindowAgent::new(sim);
        let mix = WindowMix {
            rounds: 60,
            round_ms: 1000,
            heartbeat_every: 5,
            flap_every: 120,
            down_after: 3,
            outage_rounds: 5,
        };
        let mut out = Vec::new();
        agent.boot(t0, &mut out);
        let mut changes = 0;
        for w in 0..100 {
            let start = t0 + TimeDelta::seconds(60 * w);
            for change in agent.plan(start, &mix) {
                assert!(change.after < Duration::from_secs(60));
                agent.record(
                    start + TimeDelta::from_std(change.after).unwrap(),
                    change.event,
                    &mut out,
                );
                changes += 1;
            }
            agent.end_window(start + TimeDelta::seconds(60), 7, &mix, &mut out);
        }
        for (i, e) in out.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            e.validate().unwrap();
        }
        let count = |name: &str| out.iter().filter(|e| e.event.type_name() == name).count();
        assert_eq!(count("agent_started"), 1);
        assert_eq!(count("targets_described"), 1);
        assert_eq!(count("probe_window_completed"), 400);
        assert_eq!(count("agent_heartbeat"), 20);
        let downs = count("link_went_down");
        assert_eq!(downs, count("link_came_back"));
        assert_eq!(changes, 2 * downs);
        assert!(
            downs > 20 && downs < 80,
            "{downs} outages in 100 windows at 1 in 2"
        );

        // As connection.rs sends them: the boot batch with the header's targets, the rest by key.
        let sender = netmon_events::Sender {
            boot: agent.sim.boot.clone(),
            mono_ms: 1,
        };
        let (boot, rest) = out.split_at(2);
        let with = encode_compact(&sender, boot, &agent.described, HeaderTargets::Include).unwrap();
        let without = encode_compact(&sender, rest, &agent.described, HeaderTargets::Omit).unwrap();
        let unresolved = decode_batch(&without).unwrap().events;
        assert!(
            unresolved.iter().filter(|e| e.is_err()).count() >= 400,
            "the windows' keys resolve only with the description"
        );
        let book = HashMap::from([(
            (agent.sim.id.clone(), agent.sim.boot.clone()),
            agent.described.clone(),
        )]);
        let mut decoded = decode_batch(&with).unwrap().events;
        decoded.extend(decode_batch_with(&without, &book).unwrap().events);
        let decoded: Vec<Envelope> = decoded.into_iter().map(Result::unwrap).collect();
        assert_eq!(decoded, out);
    }
}
