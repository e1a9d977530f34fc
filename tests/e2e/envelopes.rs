//! Envelopes built from the contract types, for tests that play the agent's part with
//! `mosquitto_pub`.

use chrono::{DateTime, Utc};
use netmon_events::{
    AgentId, BootId, DownReason, Envelope, Event, LinkRole, Target, Topic, TopicKind,
};

/// The topic agent `agent` of `province` publishes its events on.
pub fn events_topic(province: &str, agent: &str) -> String {
    Topic::new(
        province.parse().unwrap(),
        agent.parse().unwrap(),
        TopicKind::Events,
    )
    .to_string()
}

/// One agent's boot: makes envelopes with consecutive seqs from 1, times one second apart ending
/// near now (so the collector finds them plausible).
pub struct Boot {
    pub agent: AgentId,
    pub boot: BootId,
    seq: u64,
    start: DateTime<Utc>,
}

impl Boot {
    pub fn new(agent: &str) -> Self {
        Self {
            agent: agent.parse().unwrap(),
            boot: netmon_tests::unique("boot").parse().unwrap(),
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
            v: 1,
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
