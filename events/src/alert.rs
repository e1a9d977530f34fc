//! The collector's alert and notification events: the alert lifecycle, maintenance silences and
//! the notification outbox are facts in the event store like any other (see
//! `docs/adr/0010-alerts-as-events.md`).

use serde::{Deserialize, Serialize};

/// What an alert is about. New conditions add a variant (and a rule in the collector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The agent reports a link down (it is still talking to the collector).
    LinkDown,
    /// The agent stopped talking: last will from the broker, or missed heartbeats.
    AgentUnreachable,
    /// Sustained packet loss above the threshold on a link that is not down.
    HighLoss,
    /// Sustained round-trip time above the absolute threshold.
    HighLatency,
    /// Round-trip time inflated well above the link's own baseline, or an interface saturated.
    Congestion,
    /// A link that went down and came back repeatedly within the flap window.
    Flapping,
    /// A device's uptime went backwards (SNMP `sysUpTime`).
    DeviceRebooted,
    /// An interface a device reports as not up.
    InterfaceDown,
    /// An agent that is not in the site inventory published events.
    UnknownAgent,
    /// A site lost 5G, or all cellular service, for a sustained period.
    CoverageLost,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LinkDown => "link_down",
            AlertKind::AgentUnreachable => "agent_unreachable",
            AlertKind::HighLoss => "high_loss",
            AlertKind::HighLatency => "high_latency",
            AlertKind::Congestion => "congestion",
            AlertKind::Flapping => "flapping",
            AlertKind::DeviceRebooted => "device_rebooted",
            AlertKind::InterfaceDown => "interface_down",
            AlertKind::UnknownAgent => "unknown_agent",
            AlertKind::CoverageLost => "coverage_lost",
        }
    }

    /// Every kind, for documentation and CLI filters.
    pub const ALL: &'static [AlertKind] = &[
        AlertKind::LinkDown,
        AlertKind::AgentUnreachable,
        AlertKind::HighLoss,
        AlertKind::HighLatency,
        AlertKind::Congestion,
        AlertKind::Flapping,
        AlertKind::DeviceRebooted,
        AlertKind::InterfaceDown,
        AlertKind::UnknownAgent,
        AlertKind::CoverageLost,
    ];
}

/// How the condition behind an alert was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// The agent's own probes (failed ping rounds, an SNMP poll, a modem reading).
    AgentProbes,
    /// The broker published the agent's last will: its connection died.
    LastWill,
    /// No event arrived within `silence.after`.
    MissedHeartbeats,
    /// Statistics over the probe rounds of a sustained period (loss, latency, baseline).
    Statistics,
    /// The link changed state too often within the flap window.
    StateChanges,
    /// The agent is not in the inventory.
    Inventory,
}

/// Why a notification is sent about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The alert opened.
    Opened,
    /// The alert is resolved (its opening was notified).
    Resolved,
    /// The alert is still open after `reminder_every`.
    Reminder,
    /// The alert opened and resolved in data that arrived late: one message with the outage's
    /// start and end, instead of a stale "down" message.
    ResolvedLate,
}

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Webhook,
    Telegram,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Telegram => "telegram",
            Channel::Email => "email",
        }
    }
}

/// One alert's part in a queued notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeOf {
    pub alert: u64,
    pub notice: Notice,
}

/// A queued notification: the rendered message and where it goes. Stored before the first
/// attempt, so that a restart resumes sending it and a sent one is never sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Contact id from the inventory.
    pub contact: String,
    pub channel: Channel,
    /// The alerts and why each is in the message.
    pub notices: Vec<NoticeOf>,
    /// Language of the text (`vi`, `en`).
    pub lang: String,
    pub subject: String,
    pub text: String,
}
