//! Pure: the measurements the degradation rules judge, folded from stored events in effective
//! time — smoothed loss and round-trip time per link, the link's own RTT baseline, state changes
//! for flap detection, interface utilisation — each with its hysteresis.
//!
//! A condition becomes *active* once it has been bad for `sustain` and stops being active once it
//! has been clear for `clear_after`; in between (the hysteresis band) nothing changes. Rounds of a
//! link that is down do not count: a dead link is a `link_down` alert, not a loss alert.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{AgentId, Event, SilenceReason};
use serde::{Deserialize, Serialize};

use crate::alerts::AlertsConfig;
use crate::inventory::SiteThresholds;
use crate::store::StoredEvent;

/// One condition's hysteresis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hysteresis {
    /// Since when the value has been bad (while not active) / clear (while active).
    bad_since: Option<DateTime<Utc>>,
    clear_since: Option<DateTime<Utc>>,
    /// Active since (the start of the bad period that made it active), with the value then.
    pub active: Option<(DateTime<Utc>, f64)>,
    /// The event that activated it arrived late.
    pub late: bool,
}

impl Hysteresis {
    /// Feeds one judgement at `time`: `bad` (above the open level), `clear` (below the clear
    /// level); neither is the band between.
    fn feed(
        &mut self,
        time: DateTime<Utc>,
        value: f64,
        (bad, clear): (bool, bool),
        (sustain, clear_after): (TimeDelta, TimeDelta),
        late: bool,
    ) {
        match self.active {
            None => {
                if bad {
                    let since = *self.bad_since.get_or_insert(time);
                    if time - since >= sustain {
                        self.active = Some((since, value));
                        self.late = late;
                        self.clear_since = None;
                    }
                } else {
                    self.bad_since = None;
                }
            }
            Some(_) => {
                if clear {
                    let since = *self.clear_since.get_or_insert(time);
                    if time - since >= clear_after {
                        self.active = None;
                        self.bad_since = None;
                    }
                } else {
                    self.clear_since = None;
                }
            }
        }
    }

    /// Forgets everything (the link went down or a new boot started).
    fn reset(&mut self) {
        *self = Hysteresis::default();
    }
}

/// An exponentially weighted moving average over irregular samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Ewma {
    value: Option<f64>,
    at: Option<DateTime<Utc>>,
}

impl Ewma {
    fn feed(&mut self, time: DateTime<Utc>, sample: f64, tau: TimeDelta) -> f64 {
        let next = match (self.value, self.at) {
            (Some(value), Some(at)) => {
                let dt = (time - at).num_milliseconds().max(0) as f64;
                let tau = tau.num_milliseconds().max(1) as f64;
                let alpha = 1.0 - (-dt / tau).exp();
                value + alpha * (sample - value)
            }
            _ => sample,
        };
        self.value = Some(next);
        self.at = Some(time);
        next
    }
}

/// What is measured about one link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkSignal {
    loss: Ewma,
    rtt: Ewma,
    /// The link's floor RTT: follows drops at once and rises slowly (an hour's time constant),
    /// so sustained inflation stands out against it.
    baseline: Option<f64>,
    baseline_at: Option<DateTime<Utc>>,
    first_round: Option<DateTime<Utc>>,
    down: bool,
    /// Whether the `link_went_down` of the current outage arrived late.
    pub down_late: bool,
    pub high_loss: Hysteresis,
    pub high_latency: Hysteresis,
    pub congestion: Hysteresis,
    /// Times of the last state changes (down and back), newest last, within the flap window.
    changes: VecDeque<DateTime<Utc>>,
    /// Flapping since, and whether the change that made it so arrived late.
    pub flapping: Option<(DateTime<Utc>, bool)>,
    /// The baseline the congestion alert compares against, for messages.
    pub baseline_ms: Option<f64>,
}

/// One measurement of a working link: its loss, and its mean and floor RTT when replies came.
#[derive(Debug, Clone, Copy)]
struct Measured {
    loss_pct: f64,
    /// (mean, floor) in milliseconds.
    rtt: Option<(f64, f64)>,
}

/// What is measured about one interface (SNMP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceSignal {
    pub congestion: Hysteresis,
}

/// An outage that ended, for the rules to check that the book has it (an outage replayed from
/// a journal may start and end between two evaluations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    pub agent: AgentId,
    pub target: netmon_events::Target,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub late: bool,
}

/// A device restart (SNMP `sysUpTime` went backwards), waiting for the rules to record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reboot {
    pub agent: AgentId,
    /// The device's address (and name).
    pub subject: String,
    pub at: DateTime<Utc>,
    pub previous_uptime_s: u64,
    pub late: bool,
}

/// Every signal, keyed like the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Device restarts since the last evaluation took them.
    pub reboots: Vec<Reboot>,
    /// Interfaces a device reports not up: `(agent, "device/interface")` → since, late.
    pub interfaces_down: BTreeMap<(AgentId, String), (DateTime<Utc>, bool)>,
    /// Outages that ended since the last evaluation took them.
    pub ended: Vec<Ended>,
    pub links: BTreeMap<(AgentId, IpAddr), LinkSignal>,
    /// `(agent, "device/interface")`.
    pub interfaces: BTreeMap<(AgentId, String), InterfaceSignal>,
    /// Why each silent agent is silent (from its newest `agent_went_silent`).
    pub silence: BTreeMap<AgentId, SilenceReason>,
    /// Cellular coverage per modem.
    pub modems: super::modem_conditions::Modems,
}

/// The thresholds in force for one agent's site.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub global: &'a AlertsConfig,
    pub site: SiteThresholds,
}

impl Limits<'_> {
    pub fn loss_pct(&self) -> f64 {
        self.site.loss_pct.unwrap_or(self.global.loss_pct)
    }
    pub fn latency_ms(&self) -> f64 {
        self.site.latency_ms.unwrap_or(self.global.latency_ms)
    }
    pub fn congestion_factor(&self) -> f64 {
        self.site
            .congestion_factor
            .unwrap_or(self.global.congestion_factor)
    }
    pub fn utilisation_pct(&self) -> f64 {
        self.site
            .utilisation_pct
            .unwrap_or(self.global.utilisation_pct)
    }
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// How long the baseline must have been learnt before congestion is judged.
const BASELINE_WARMUP: TimeDelta = TimeDelta::minutes(5);
/// Time constant of the baseline's rise.
const BASELINE_RISE: TimeDelta = TimeDelta::hours(1);

impl Signals {
    /// Folds one stored event with the limits of its agent's site.
    pub fn apply(&mut self, stored: &StoredEvent, limits: Limits<'_>) {
        let agent = &stored.envelope.agent;
        let time = stored.time;
        let config = limits.global;
        let (sustain, clear_after) = (delta(config.sustain), delta(config.clear_after));
        self.modems.apply(stored, config);
        match &stored.envelope.event {
            Event::AgentWentSilent { reason, .. } => {
                self.silence.insert(agent.clone(), *reason);
            }
            Event::AgentStarted { .. } => {
                self.silence.remove(agent);
                for (_, link) in self
                    .links
                    .range_mut((agent.clone(), IpAddr::from([0u8; 4]))..)
                    .take_while(|((a, _), _)| a == agent)
                {
                    link.down = false;
                    link.high_loss.reset();
                    link.high_latency.reset();
                    link.congestion.reset();
                }
            }
            Event::ProbeRoundCompleted {
                target,
                received,
                rtt_min_ms,
                rtt_avg_ms,
                loss_pct,
                ..
            } => {
                self.silence.remove(agent);
                let rtt = (*received > 0)
                    .then_some(())
                    .and(rtt_avg_ms.zip(*rtt_min_ms));
                let sample = Measured {
                    loss_pct: *loss_pct,
                    rtt,
                };
                self.measured((agent, target), sample, stored, limits);
            }
            Event::ProbeWindowCompleted {
                target,
                received,
                down_ms,
                rtt_avg_ms,
                rtt_min_ms,
                rtt_pct_ms,
                loss_pct,
                ..
            } => {
                self.silence.remove(agent);
                // A window in which the link was down is the outage's (a `link_down` alert), not
                // a measurement of a working link.
                if *down_ms > 0 {
                    return;
                }
                // The floor of a window is its 10th percentile: the minimum of a minute's
                // echoes would be one lucky reply, lower than any round's minimum of three.
                let floor = rtt_pct_ms
                    .as_deref()
                    .and_then(|p| p.first().copied())
                    .or(*rtt_min_ms);
                let rtt = rtt_avg_ms.zip(floor).filter(|_| *received > 0);
                let sample = Measured {
                    loss_pct: *loss_pct,
                    rtt,
                };
                self.measured((agent, target), sample, stored, limits);
            }
            Event::LinkWentDown { target, .. } | Event::LinkCameBack { target, .. } => {
                let down = matches!(stored.envelope.event, Event::LinkWentDown { .. });
                let link = self
                    .links
                    .entry((agent.clone(), target.address))
                    .or_default();
                if let Event::LinkCameBack { down_since, .. } = &stored.envelope.event {
                    self.ended.push(Ended {
                        agent: agent.clone(),
                        target: target.clone(),
                        since: *down_since + stored.correction(),
                        until: time,
                        late: stored.late || link.down_late,
                    });
                }
                link.down = down;
                if down {
                    link.down_late = stored.late;
                    link.high_loss.reset();
                    link.high_latency.reset();
                    link.congestion.reset();
                    link.loss = Ewma::default();
                    link.rtt = Ewma::default();
                }
                let window = delta(config.flap_window);
                // A whole window without a change ended the flapping before this change: judged
                // here, in the fold, so that replaying the store gives what the live collector
                // had (the rules ask `flapping_at` for the window up to now).
                if link.flapping.is_some()
                    && link.changes.back().is_some_and(|t| time - *t > window)
                {
                    link.flapping = None;
                    link.changes.clear();
                }
                link.changes.push_back(time);
                while link.changes.front().is_some_and(|t| time - *t > window)
                    || link.changes.len() > 1000
                {
                    link.changes.pop_front();
                }
                if link.flapping.is_none()
                    && link.changes.len() >= config.flap_changes as usize
                    && let Some(first) = link.changes.front()
                {
                    link.flapping = Some((*first, stored.late));
                }
            }
            Event::DeviceRebooted {
                device,
                previous_uptime_s,
                ..
            } => self.reboots.push(Reboot {
                agent: agent.clone(),
                subject: device_name(device),
                at: time,
                previous_uptime_s: *previous_uptime_s,
                late: stored.late,
            }),
            Event::InterfaceWentDown {
                device, interface, ..
            } => {
                let key = (
                    agent.clone(),
                    format!("{}/{}", device.address, interface.name),
                );
                self.interfaces_down
                    .entry(key)
                    .or_insert((time, stored.late));
            }
            Event::InterfaceCameBack {
                device, interface, ..
            } => {
                let key = (
                    agent.clone(),
                    format!("{}/{}", device.address, interface.name),
                );
                self.interfaces_down.remove(&key);
            }
            Event::InterfaceCountersSampled {
                device,
                interface,
                in_util_pct,
                out_util_pct,
                ..
            } => {
                let util = in_util_pct.unwrap_or(0.0).max(out_util_pct.unwrap_or(0.0));
                if in_util_pct.is_none() && out_util_pct.is_none() {
                    return;
                }
                let key = (
                    agent.clone(),
                    format!("{}/{}", device.address, interface.name),
                );
                let limit = limits.utilisation_pct();
                self.interfaces.entry(key).or_default().congestion.feed(
                    time,
                    util,
                    (util >= limit, util < limit * 0.8),
                    (sustain, clear_after),
                    stored.late,
                );
            }
            _ => {}
        }
    }

    /// Folds one measurement of a working link (a round, or a window) into its smoothed loss and
    /// RTT, its baseline and their hysteresis.
    fn measured(
        &mut self,
        (agent, target): (&AgentId, &netmon_events::Target),
        sample: Measured,
        stored: &StoredEvent,
        limits: Limits<'_>,
    ) {
        let time = stored.time;
        let config = limits.global;
        let (sustain, clear_after) = (delta(config.sustain), delta(config.clear_after));
        let link = self
            .links
            .entry((agent.clone(), target.address))
            .or_default();
        if link.down {
            return;
        }
        let tau = delta(config.smoothing);
        let loss = link.loss.feed(time, sample.loss_pct, tau);
        let late = stored.late;
        link.high_loss.feed(
            time,
            loss,
            (
                loss >= limits.loss_pct(),
                loss < config.loss_clear_pct.min(limits.loss_pct()),
            ),
            (sustain, clear_after),
            late,
        );
        let Some((avg, min)) = sample.rtt else {
            return;
        };
        let rtt = link.rtt.feed(time, avg, tau);
        link.high_latency.feed(
            time,
            rtt,
            (
                rtt >= limits.latency_ms(),
                rtt < config.latency_clear_ms.min(limits.latency_ms()),
            ),
            (sustain, clear_after),
            late,
        );
        link.first_round.get_or_insert(time);
        let baseline = match (link.baseline, link.baseline_at) {
            (Some(b), Some(at)) if min > b => {
                let dt = (time - at).num_milliseconds().max(0) as f64;
                let alpha = 1.0 - (-dt / BASELINE_RISE.num_milliseconds() as f64).exp();
                b + alpha * (min - b)
            }
            _ => min,
        };
        link.baseline = Some(baseline);
        link.baseline_at = Some(time);
        let warm = link
            .first_round
            .is_some_and(|t| time - t >= BASELINE_WARMUP);
        if warm {
            let factor = limits.congestion_factor();
            let open = (baseline * factor).max(baseline + config.congestion_min_ms);
            let clear = baseline + (open - baseline) / 2.0;
            link.congestion.feed(
                time,
                rtt / baseline.max(0.001),
                (rtt >= open, rtt < clear),
                (sustain, clear_after),
                late,
            );
            link.baseline_ms = Some(baseline);
        }
    }
}

impl LinkSignal {
    /// Flapping since (and whether late), unless the link has been quiet for a whole flap
    /// `window` by `now`.
    pub fn flapping_at(
        &self,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Option<(DateTime<Utc>, bool)> {
        let window = delta(window);
        self.flapping
            .filter(|_| self.changes.back().is_some_and(|t| now - *t <= window))
    }
}

/// How a device is named in alerts: its address, and its `sysName` when known.
fn device_name(device: &netmon_events::Device) -> String {
    match &device.name {
        Some(name) => format!("{} ({name})", device.address),
        None => device.address.clone(),
    }
}
