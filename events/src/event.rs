//! The event types. Events are facts, named in the past tense; the JSON `type` field is the
//! snake_case variant name and is part of the public contract (see `docs/contract.md`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertKind, Detection, Message};
use crate::cellular::{Quality, Registration, Signal, Technology};
use crate::ids::BootId;
use crate::interface::{Device, Interface, OperStatus};
use crate::rollup::{Carry, OperatorDay, is_zero};
pub use crate::target::{DescribedTarget, LinkRole, MAX_DESCRIBED_TARGETS, Target};
use crate::time_ms;

/// Everything an agent or the collector records. Agent-made events come first; collector-made
/// events (about an agent, or the alerts and notifications of the collector) follow.
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
    /// The targets of this boot and the keys that name them in compact batches, recorded right
    /// after `agent_started`. A boot's targets never change (a new config is a new boot).
    TargetsDescribed {
        /// 1 to [`MAX_DESCRIBED_TARGETS`], keys unique (1, 2, 3 … in config order).
        targets: Vec<DescribedTarget>,
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
    /// The rounds to one target over one report window (`probe.report_every`), recorded at its
    /// end: what agents send instead of `probe_round_completed` (see
    /// `docs/adr/0014-probe-windows-and-compact-batches.md`). RTTs are over every echo of the
    /// window, rounded to 0.01 ms; all of them are absent when nothing was received.
    ProbeWindowCompleted {
        target: Target,
        /// Length of the window in milliseconds (agent's monotonic clock).
        window_ms: u64,
        /// Probe rounds in the window, those that failed, and the longest run of consecutive
        /// failed rounds.
        rounds: u32,
        failed_rounds: u32,
        longest_failed_run: u32,
        /// Time of the window during which the agent held the link down, in milliseconds.
        down_ms: u64,
        /// Echoes sent and replies received over the window.
        sent: u32,
        received: u32,
        /// Lost echoes in percent, 0-100, rounded to 0.01.
        loss_pct: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_min_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_avg_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_max_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_mdev_ms: Option<f64>,
        /// The 10th, 20th … 90th percentiles of every echo's RTT (nearest rank): exactly
        /// [`RTT_PERCENTILES`] values, non-decreasing, within `rtt_min_ms..=rtt_max_ms`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_pct_ms: Option<Vec<f64>>,
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
    /// One SNMP poll of one interface, as rates over the interval since the previous poll. A
    /// counter that went backwards (a reset or reboot) yields no sample for that interval.
    InterfaceCountersSampled {
        device: Device,
        interface: Interface,
        /// Milliseconds between the two polls the rates come from.
        interval_ms: u64,
        /// Octet rates in bit/s (from ifHCInOctets/ifHCOutOctets, or the 32-bit counters).
        in_bps: f64,
        out_bps: f64,
        /// Capacity in bit/s: the configured one, else `ifHighSpeed`/`ifSpeed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speed_bps: Option<u64>,
        /// Utilisation of `speed_bps` in percent, when the speed is known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_util_pct: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        out_util_pct: Option<f64>,
        /// Errors and discards per second.
        in_errors_ps: f64,
        out_errors_ps: f64,
        in_discards_ps: f64,
        out_discards_ps: f64,
        oper_status: OperStatus,
    },
    /// An interface's `ifOperStatus` left `up`.
    InterfaceWentDown {
        device: Device,
        interface: Interface,
        oper_status: OperStatus,
    },
    /// An interface's `ifOperStatus` is `up` again.
    InterfaceCameBack {
        device: Device,
        interface: Interface,
        /// How long it was not up, in milliseconds (agent's monotonic clock).
        down_for_ms: u64,
    },
    /// A device's `sysUpTime` went backwards: it restarted (or its SNMP agent did).
    DeviceRebooted {
        device: Device,
        /// Uptime now and at the previous poll, in seconds.
        uptime_s: u64,
        previous_uptime_s: u64,
    },
    /// A polled device stopped answering (timeouts, refused, or answers that cannot be decoded).
    DeviceStoppedAnswering { device: Device, error: String },
    /// A device that had stopped answering answers again.
    DeviceAnswersAgain {
        device: Device,
        /// How long it did not answer, in milliseconds.
        silent_for_ms: u64,
    },
    /// One reading of a cellular modem or CPE (`[[cellular]]` on the agent), every `interval`.
    CellularSignalSampled {
        /// The modem's name from the agent's config (e.g. `"viettel"`).
        modem: String,
        #[serde(flatten)]
        signal: Signal,
        /// From the agent's thresholds for this technology.
        quality: Quality,
    },
    /// The modem moved between two in-service technologies (e.g. `nr5g_nsa` → `lte`).
    CellularTechnologyChanged {
        modem: String,
        from: Technology,
        to: Technology,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plmn: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
    },
    /// The modem is in service on another network than at the previous reading in service.
    CellularOperatorChanged {
        modem: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_plmn: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_plmn: Option<String>,
        /// The new network's operator name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
    },
    /// The modem lost service: not registered, or no radio technology.
    CellularServiceLost {
        modem: String,
        /// The technology and network it had before.
        last_technology: Technology,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plmn: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
        /// The registration state it reports now.
        registration: Registration,
    },
    /// The modem is in service again after `cellular_service_lost`.
    CellularServiceRestored {
        modem: String,
        technology: Technology,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plmn: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
        /// How long it was without service, in milliseconds (agent's monotonic clock).
        lost_for_ms: u64,
    },
    /// A modem stopped answering: its command failed or hung, its serial port stayed silent, or
    /// it answered something no parser understands.
    ModemStoppedAnswering { modem: String, error: String },
    /// A modem that had stopped answering answers again.
    ModemAnswersAgain {
        modem: String,
        /// How long it did not answer, in milliseconds.
        silent_for_ms: u64,
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
    /// Collector-made: one modem's coverage over one Vietnam day (UTC+7), written once the day
    /// is closed and before retention may delete its readings (ADR 17). Filed under the modem's
    /// agent and province; the envelope's time is the day's start.
    CoverageDayRolledUp {
        modem: String,
        day: chrono::NaiveDate,
        /// Per operator (PLMN) the day's measured time, readings and their histograms.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        operators: Vec<OperatorDay>,
        /// Readings of the day left out: they came after much later ones of the same modem.
        #[serde(default, skip_serializing_if = "is_zero")]
        out_of_order: u64,
        /// The stream at the day's end, where the next day goes on from.
        carry: Carry,
    },
    /// Collector-made: an alert opened. `alert` is its id (1, 2, … per store).
    AlertOpened {
        alert: u64,
        kind: AlertKind,
        /// The site from the inventory, when the agent is registered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site: Option<String>,
        /// The link, for link alerts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Target>,
        /// A device or interface the alert is about (SNMP), as `address` or `address/ifName`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// When the condition began (effective time).
        #[serde(with = "time_ms")]
        since: DateTime<Utc>,
        detected_by: Detection,
        /// The value that crossed the threshold (loss %, RTT ms, inflation factor), and the
        /// threshold.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// Opened from data that arrived late: recorded, not notified as new.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// Collector-made: a person acknowledged an alert (no more reminders).
    AlertAcknowledged {
        alert: u64,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Collector-made: the condition behind an alert ended.
    AlertResolved {
        alert: u64,
        /// When the condition ended (effective time), and how long it lasted.
        #[serde(with = "time_ms")]
        until: DateTime<Utc>,
        duration_ms: u64,
        /// Resolved from data that arrived late.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// Collector-made: an alert is explained by another one (a parent site's outage, the
    /// agent's own unreachability, a flapping link) and is not notified on its own.
    AlertSuppressed { alert: u64, by: u64 },
    /// Collector-made: notifications for a site are silenced from `from` until `until`
    /// (maintenance); alerts are still recorded.
    SilenceAdded {
        site: String,
        #[serde(with = "time_ms")]
        from: DateTime<Utc>,
        #[serde(with = "time_ms")]
        until: DateTime<Utc>,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Collector-made: a notification was put in the outbox (rendered, not yet sent).
    NotificationQueued {
        notification: u64,
        #[serde(flatten)]
        message: Message,
    },
    /// Collector-made: the channel accepted the notification.
    NotificationSent { notification: u64, attempt: u32 },
    /// Collector-made: an attempt failed; `retry_at` is absent when the outbox gave up.
    NotificationFailed {
        notification: u64,
        attempt: u32,
        error: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "time_ms::option"
        )]
        retry_at: Option<DateTime<Utc>>,
    },
}

impl Event {
    /// Every unsigned 64-bit integer of an agent-made event, by field name (bounded by
    /// `Envelope::validate`). Collector-made events yield none: the collector makes them.
    pub fn integers(&self) -> Vec<(&'static str, u64)> {
        match self {
            Event::AgentHeartbeat { uptime_s, backlog } => {
                vec![("uptime_s", *uptime_s), ("backlog", *backlog)]
            }
            Event::ProbeWindowCompleted {
                window_ms, down_ms, ..
            } => vec![("window_ms", *window_ms), ("down_ms", *down_ms)],
            Event::LinkCameBack { down_for_ms, .. }
            | Event::InterfaceCameBack { down_for_ms, .. } => vec![("down_for_ms", *down_for_ms)],
            Event::JournalOverflowed {
                first_seq,
                last_seq,
                count,
                ..
            } => vec![
                ("first_seq", *first_seq),
                ("last_seq", *last_seq),
                ("count", *count),
            ],
            Event::InterfaceCountersSampled {
                interval_ms,
                speed_bps,
                ..
            } => {
                let mut out = vec![("interval_ms", *interval_ms)];
                out.extend(speed_bps.map(|v| ("speed_bps", v)));
                out
            }
            Event::DeviceRebooted {
                uptime_s,
                previous_uptime_s,
                ..
            } => vec![
                ("uptime_s", *uptime_s),
                ("previous_uptime_s", *previous_uptime_s),
            ],
            Event::DeviceAnswersAgain { silent_for_ms, .. }
            | Event::ModemAnswersAgain { silent_for_ms, .. } => {
                vec![("silent_for_ms", *silent_for_ms)]
            }
            Event::CellularServiceRestored { lost_for_ms, .. } => {
                vec![("lost_for_ms", *lost_for_ms)]
            }
            Event::CoverageDayRolledUp {
                operators,
                out_of_order,
                carry,
                ..
            } => {
                let mut all = vec![("out_of_order", *out_of_order)];
                for day in operators {
                    all.extend(day.ms.iter().map(|ms| ("ms", *ms)));
                    all.extend(day.quality_ms.iter().map(|ms| ("quality_ms", *ms)));
                    all.extend([("usable_5g_ms", day.usable_5g_ms), ("samples", day.samples)]);
                }
                all.extend(carry.gaps_ms.iter().map(|ms| ("gaps_ms", *ms)));
                all
            }
            _ => Vec::new(),
        }
    }

    /// Every wall time of an event besides the envelope's, by field name.
    pub fn times(&self) -> Vec<(&'static str, &DateTime<Utc>)> {
        match self {
            Event::LinkWentDown { since, .. } | Event::AlertOpened { since, .. } => {
                vec![("since", since)]
            }
            Event::LinkCameBack { down_since, .. } => vec![("down_since", down_since)],
            Event::AgentWentSilent { last_seen, .. } => {
                last_seen.iter().map(|t| ("last_seen", t)).collect()
            }
            Event::AlertResolved { until, .. } => vec![("until", until)],
            Event::SilenceAdded { from, until, .. } => vec![("from", from), ("until", until)],
            Event::NotificationFailed { retry_at, .. } => {
                retry_at.iter().map(|t| ("retry_at", t)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The JSON `type` value of this event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::AgentStarted { .. } => "agent_started",
            Event::TargetsDescribed { .. } => "targets_described",
            Event::AgentHeartbeat { .. } => "agent_heartbeat",
            Event::ProbeRoundCompleted { .. } => "probe_round_completed",
            Event::ProbeWindowCompleted { .. } => "probe_window_completed",
            Event::LinkWentDown { .. } => "link_went_down",
            Event::LinkCameBack { .. } => "link_came_back",
            Event::JournalOverflowed { .. } => "journal_overflowed",
            Event::AgentWentSilent { .. } => "agent_went_silent",
            Event::CoverageDayRolledUp { .. } => "coverage_day_rolled_up",
            Event::InterfaceCountersSampled { .. } => "interface_counters_sampled",
            Event::InterfaceWentDown { .. } => "interface_went_down",
            Event::InterfaceCameBack { .. } => "interface_came_back",
            Event::DeviceRebooted { .. } => "device_rebooted",
            Event::DeviceStoppedAnswering { .. } => "device_stopped_answering",
            Event::DeviceAnswersAgain { .. } => "device_answers_again",
            Event::CellularSignalSampled { .. } => "cellular_signal_sampled",
            Event::CellularTechnologyChanged { .. } => "cellular_technology_changed",
            Event::CellularOperatorChanged { .. } => "cellular_operator_changed",
            Event::CellularServiceLost { .. } => "cellular_service_lost",
            Event::CellularServiceRestored { .. } => "cellular_service_restored",
            Event::ModemStoppedAnswering { .. } => "modem_stopped_answering",
            Event::ModemAnswersAgain { .. } => "modem_answers_again",
            Event::AlertOpened { .. } => "alert_opened",
            Event::AlertAcknowledged { .. } => "alert_acknowledged",
            Event::AlertResolved { .. } => "alert_resolved",
            Event::AlertSuppressed { .. } => "alert_suppressed",
            Event::SilenceAdded { .. } => "silence_added",
            Event::NotificationQueued { .. } => "notification_queued",
            Event::NotificationSent { .. } => "notification_sent",
            Event::NotificationFailed { .. } => "notification_failed",
        }
    }

    /// Every `type` value, for validation of CLI filters and for documentation.
    pub const TYPE_NAMES: &'static [&'static str] = &[
        "agent_started",
        "targets_described",
        "agent_heartbeat",
        "probe_round_completed",
        "probe_window_completed",
        "link_went_down",
        "link_came_back",
        "journal_overflowed",
        "agent_went_silent",
        "interface_counters_sampled",
        "interface_went_down",
        "interface_came_back",
        "device_rebooted",
        "device_stopped_answering",
        "device_answers_again",
        "cellular_signal_sampled",
        "cellular_technology_changed",
        "cellular_operator_changed",
        "cellular_service_lost",
        "cellular_service_restored",
        "modem_stopped_answering",
        "modem_answers_again",
        "alert_opened",
        "alert_acknowledged",
        "alert_resolved",
        "alert_suppressed",
        "silence_added",
        "notification_queued",
        "notification_sent",
        "notification_failed",
        "coverage_day_rolled_up",
    ];

    /// True for events the collector makes itself; an agent must never send them.
    pub fn is_collector_made(&self) -> bool {
        matches!(
            self,
            Event::AgentWentSilent { .. }
                | Event::CoverageDayRolledUp { .. }
                | Event::AlertOpened { .. }
                | Event::AlertAcknowledged { .. }
                | Event::AlertResolved { .. }
                | Event::AlertSuppressed { .. }
                | Event::SilenceAdded { .. }
                | Event::NotificationQueued { .. }
                | Event::NotificationSent { .. }
                | Event::NotificationFailed { .. }
        )
    }

    /// True for the alert and notification events (the alert book's own facts).
    pub fn is_alerting(&self) -> bool {
        self.is_collector_made()
            && !matches!(
                self,
                Event::AgentWentSilent { .. } | Event::CoverageDayRolledUp { .. }
            )
    }

    /// The modem this event is about, if any.
    pub fn modem(&self) -> Option<&str> {
        match self {
            Event::CellularSignalSampled { modem, .. }
            | Event::CellularTechnologyChanged { modem, .. }
            | Event::CellularOperatorChanged { modem, .. }
            | Event::CellularServiceLost { modem, .. }
            | Event::CellularServiceRestored { modem, .. }
            | Event::ModemStoppedAnswering { modem, .. }
            | Event::ModemAnswersAgain { modem, .. }
            | Event::CoverageDayRolledUp { modem, .. } => Some(modem),
            _ => None,
        }
    }

    /// The probed target this event is about, if any.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Event::ProbeRoundCompleted { target, .. }
            | Event::ProbeWindowCompleted { target, .. }
            | Event::LinkWentDown { target, .. }
            | Event::LinkCameBack { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// How many percentiles `probe_window_completed` carries: the 10th, 20th … 90th.
pub const RTT_PERCENTILES: usize = 9;

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
