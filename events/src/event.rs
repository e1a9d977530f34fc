//! The event types. Events are facts, named in the past tense; the JSON `type` field is the
//! snake_case variant name and is part of the public contract (see `docs/contract.md`).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::time_ms;
use crate::ids::BootId;

/// Everything an agent or the collector records. Agent-made events come first; collector-made
/// events (about an agent, recorded by the collector) follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The agent process started (a new boot id begins with seq 1).
    AgentStarted {
        /// The agent's version (`CARGO_PKG_VERSION`).
        version: String,
        /// How many targets it probes.
        targets: u32,
    },
    /// The agent is alive. Sent every `heartbeat.interval`.
    AgentHeartbeat {
        /// Seconds since the agent started.
        uptime_s: u64,
        /// Events recorded but not yet acknowledged by the collector.
        backlog: u64,
    },
    /// One probe round to one target finished: `sent` echoes, `received` replies.
    ProbeRoundCompleted {
        target: Target,
        sent: u32,
        received: u32,
        /// Round-trip times in milliseconds; absent when nothing was received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_min_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_avg_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_max_ms: Option<f64>,
        /// Mean deviation of the round-trip times, as `ping` reports it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_mdev_ms: Option<f64>,
        /// Lost echoes in percent, 0-100.
        loss_pct: f64,
    },
    /// The agent is sure the link to `target` is down (see `docs/adr/0003-link-down-rule.md`).
    LinkWentDown {
        target: Target,
        /// Wall time of the first failed round of this outage.
        #[serde(with = "time_ms")]
        since: DateTime<Utc>,
        reason: DownReason,
        /// Consecutive failed rounds that led to the decision.
        failed_rounds: u32,
    },
    /// The link to `target` answers again.
    LinkCameBack {
        target: Target,
        /// Wall time of the first failed round of the outage that ended.
        #[serde(with = "time_ms")]
        down_since: DateTime<Utc>,
        /// How long the link was down, in milliseconds (from the agent's monotonic clock).
        down_for_ms: u64,
        /// Why it was down.
        reason: DownReason,
    },
    /// The agent's journal was full and dropped its oldest unacknowledged events unsent. One event
    /// per boot whose events were dropped; the range is exact, so the loss is never silent.
    JournalOverflowed {
        /// The boot the dropped events belong to (may be an earlier boot than the envelope's).
        dropped_boot: BootId,
        first_seq: u64,
        last_seq: u64,
        /// Events dropped in `first_seq..=last_seq` (the whole range, as the journal drops the
        /// oldest first).
        count: u64,
    },
    /// Collector-made: the agent stopped talking (its last will arrived, or heartbeats stopped).
    AgentWentSilent {
        reason: SilenceReason,
        /// Wall time of the last event received from the agent, if any.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "time_ms::option"
        )]
        last_seen: Option<DateTime<Utc>>,
    },
}

impl Event {
    /// The JSON `type` value of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::AgentStarted { .. } => "agent_started",
            Event::AgentHeartbeat { .. } => "agent_heartbeat",
            Event::ProbeRoundCompleted { .. } => "probe_round_completed",
            Event::LinkWentDown { .. } => "link_went_down",
            Event::LinkCameBack { .. } => "link_came_back",
            Event::JournalOverflowed { .. } => "journal_overflowed",
            Event::AgentWentSilent { .. } => "agent_went_silent",
        }
    }

    /// Every `type` value, for validation of CLI filters and for documentation.
    pub const TYPE_NAMES: &'static [&'static str] = &[
        "agent_started",
        "agent_heartbeat",
        "probe_round_completed",
        "link_went_down",
        "link_came_back",
        "journal_overflowed",
        "agent_went_silent",
    ];

    /// True for events the collector makes itself; an agent must never send them.
    pub fn is_collector_made(&self) -> bool {
        matches!(self, Event::AgentWentSilent { .. })
    }

    /// The probed target this event is about, if any.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Event::ProbeRoundCompleted { target, .. }
            | Event::LinkWentDown { target, .. }
            | Event::LinkCameBack { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// A probed host, as configured on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// Display name from the agent's config (may carry Vietnamese diacritics).
    pub name: String,
    pub address: IpAddr,
    pub role: LinkRole,
}

/// What a target stands for on the path from a village to the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRole {
    /// The site's own gateway (router, access point).
    Gateway,
    /// The commune's network (commune centre, public service centre).
    Commune,
    /// The provincial network or data centre.
    Province,
    /// A host on the public internet.
    Internet,
    Other,
}

/// Why a link was declared down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    /// Echoes were sent and no reply came back in time.
    NoReply,
    /// The network reported the target unreachable, or the agent had no route to it.
    Unreachable,
    /// The agent could not send the echoes (socket error).
    SendFailed,
}

/// Why the collector considers an agent silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceReason {
    /// The broker published the agent's last will: its MQTT connection died.
    LastWill,
    /// No event arrived within the allowed number of heartbeat intervals.
    MissedHeartbeats,
}
