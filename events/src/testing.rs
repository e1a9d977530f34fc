//! Event builders for tests (feature `test-util`, for dev-dependencies only): the same
//! envelopes and events in unit tests, the agent's integration tests and the end-to-end tests.
//!
//! - [`Boot`]: one agent's boot, consecutive seqs from 1, wall times one second apart ending
//!   near now (plausible to the collector);
//! - [`envelope`]: one envelope at a fixed time ([`T0_MS`] + `seq` seconds), for tests that must
//!   not depend on the clock (journals, golden sizes);
//! - [`target`], [`started`], [`described`], [`round`], [`round_rtt`], [`window`],
//!   [`window_rtt`], [`went_down`], [`came_back`]: events;
//! - [`events_topic`]: the topic an agent publishes its events on.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};

use crate::{
    AgentId, BootId, DescribedTarget, DownReason, Envelope, Event, LinkRole, SCHEMA_VERSION,
    Target, Topic, TopicKind,
};

/// Wall time of seq 0 of [`envelope`], in Unix milliseconds (2026-11-18T09:46:40Z).
pub const T0_MS: i64 = 1_795_000_000_000;

/// The topic agent `agent` of `province` publishes its events on.
pub fn events_topic(province: &str, agent: &str) -> String {
    Topic::new(
        province.parse().unwrap(),
        agent.parse().unwrap(),
        TopicKind::Events,
    )
    .to_string()
}

/// Envelope `seq` of `agent`'s boot `boot`: wall time [`T0_MS`] + `seq` seconds, monotonic time
/// `seq` seconds. Change other fields with struct update syntax.
pub fn envelope(agent: &str, boot: &str, seq: u64, event: Event) -> Envelope {
    Envelope {
        v: SCHEMA_VERSION,
        agent: agent.parse().unwrap(),
        boot: boot.parse().unwrap(),
        seq,
        time: DateTime::<Utc>::from_timestamp_millis(T0_MS + seq as i64 * 1000).unwrap(),
        mono_ms: seq * 1000,
        event,
    }
}

/// One agent's boot: makes envelopes with consecutive seqs from 1, times one second apart ending
/// near now (so the collector finds them plausible). Boot ids are unique in the process.
#[derive(Debug)]
pub struct Boot {
    pub agent: AgentId,
    pub boot: BootId,
    seq: u64,
    start: DateTime<Utc>,
}

impl Boot {
    pub fn new(agent: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            agent: agent.parse().unwrap(),
            boot: format!("boot-{}-{n}", std::process::id()).parse().unwrap(),
            seq: 0,
            // Whole milliseconds: the wire format carries no more, so a stored event compares
            // equal to the one sent.
            start: DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
                - chrono::Duration::seconds(60),
        }
    }

    /// The next envelope of this boot.
    pub fn next(&mut self, event: Event) -> Envelope {
        self.seq += 1;
        Envelope {
            v: SCHEMA_VERSION,
            agent: self.agent.clone(),
            boot: self.boot.clone(),
            seq: self.seq,
            time: self.time(),
            mono_ms: self.seq * 1000,
            event,
        }
    }

    /// The wall time of the current seq.
    pub fn time(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::seconds(self.seq as i64)
    }
}

/// A commune link `name` at `address`.
pub fn target(name: &str, address: &str) -> Target {
    Target {
        name: name.into(),
        address: address.parse().unwrap(),
        role: LinkRole::Commune,
    }
}

pub fn started() -> Event {
    Event::AgentStarted {
        version: "0.1.0".into(),
        targets: 1,
    }
}

/// The description of `targets`, keyed 1, 2, 3 … in their order.
pub fn described(targets: &[Target]) -> Event {
    Event::TargetsDescribed {
        targets: DescribedTarget::numbered(targets),
    }
}

/// A round of 3 echoes with `received` answers, averaging 1.5 ms.
pub fn round(target: &Target, received: u32) -> Event {
    round_rtt(target, received, 1.5)
}

/// A round of 3 echoes with `received` answers averaging `rtt` ms (no times when none came).
pub fn round_rtt(target: &Target, received: u32, rtt: f64) -> Event {
    let rtt = (received > 0).then_some(rtt);
    Event::ProbeRoundCompleted {
        target: target.clone(),
        sent: 3,
        received,
        rtt_min_ms: rtt.map(|r| r - 0.25),
        rtt_avg_ms: rtt,
        rtt_max_ms: rtt.map(|r| r + 0.25),
        rtt_mdev_ms: rtt.map(|_| 0.2),
        loss_pct: f64::from(3 - received) * 100.0 / 3.0,
    }
}

/// Echoes of one [`window`]: 60 rounds of 3.
pub const WINDOW_ECHOES: u32 = 180;

/// A one-minute window of 60 rounds of 3 echoes with `received` replies (of
/// [`WINDOW_ECHOES`]), averaging 1.5 ms.
pub fn window(target: &Target, received: u32) -> Event {
    window_rtt(target, received, 1.5)
}

/// A one-minute window of 60 rounds of 3 echoes with `received` replies averaging `rtt` ms
/// (between `rtt` ± 0.25 ms, percentiles 0.05 ms apart; no times when none came). The lost
/// echoes are whole rounds, in one run; the link was never held down.
pub fn window_rtt(target: &Target, received: u32, rtt: f64) -> Event {
    let lost = WINDOW_ECHOES - received;
    let rtt = (received > 0).then_some(rtt);
    Event::ProbeWindowCompleted {
        target: target.clone(),
        window_ms: 60_000,
        rounds: 60,
        failed_rounds: lost / 3,
        longest_failed_run: lost / 3,
        down_ms: 0,
        sent: WINDOW_ECHOES,
        received,
        loss_pct: (f64::from(lost) * 10_000.0 / f64::from(WINDOW_ECHOES)).round() / 100.0,
        rtt_min_ms: rtt.map(|r| r - 0.25),
        rtt_avg_ms: rtt,
        rtt_max_ms: rtt.map(|r| r + 0.25),
        rtt_mdev_ms: rtt.map(|_| 0.2),
        rtt_pct_ms: rtt.map(|r| (-4..=4).map(|i| r + f64::from(i) * 0.05).collect()),
    }
}

pub fn went_down(target: &Target, since: DateTime<Utc>) -> Event {
    Event::LinkWentDown {
        target: target.clone(),
        since,
        reason: DownReason::NoReply,
        failed_rounds: 3,
    }
}

pub fn came_back(target: &Target, down_since: DateTime<Utc>, down_for_ms: u64) -> Event {
    Event::LinkCameBack {
        target: target.clone(),
        down_since,
        down_for_ms,
        reason: DownReason::NoReply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builders_make_valid_events() {
        let t = target("UBND xã Cẩm Tú", "10.20.0.1");
        let events = [
            started(),
            described(&[t.clone(), target("Cổng", "192.168.1.1")]),
            round(&t, 0),
            round(&t, 3),
            window(&t, 0),
            window(&t, 100),
            window(&t, WINDOW_ECHOES),
            window_rtt(&t, 1, 0.25),
        ];
        for (seq, event) in (1..).zip(events) {
            let envelope = envelope("agent-a", "b1", seq, event);
            assert_eq!(envelope.validate(), Ok(()), "{envelope:?}");
        }
    }
}
