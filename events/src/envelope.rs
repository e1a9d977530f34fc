//! The envelope every event travels in, and the checks an event must pass before the collector
//! stores it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{DescribedTarget, Event, MAX_DESCRIBED_TARGETS, RTT_PERCENTILES, Target};
use crate::ids::{AgentId, BootId};
use crate::interface::{Device, Interface};
use crate::rollup::{Carry, MAX_BINS, MAX_CARRIED_GAPS, MAX_ROLLUP_OPERATORS, OperatorDay};

/// The schema version this build writes. Older versions are upcast on read (none exist yet).
pub const SCHEMA_VERSION: u16 = 1;

/// Longest target name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Largest number of echoes one probe round may report.
pub const MAX_ECHOES_PER_ROUND: u32 = 1000;

/// Longest round-trip time accepted, in milliseconds (one hour).
pub const MAX_RTT_MS: f64 = 3_600_000.0;

/// Largest value of any integer of the contract (`seq`, `mono_ms`, counts, durations): what a
/// signed 64-bit integer holds, so that every valid event can be stored (SQLite), written as a
/// line-protocol integer (InfluxDB) and added to a time without overflow checks failing.
pub const MAX_INT: u64 = i64::MAX as u64;

/// One event with its provenance. `(agent, boot, seq)` identifies it uniquely: `boot` changes at
/// every start of the agent and `seq` counts from 1 without gaps within one boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Schema version of this envelope and its event.
    pub v: u16,
    pub agent: AgentId,
    pub boot: BootId,
    pub seq: u64,
    /// Wall-clock time on the agent when the event was recorded (may be wrong: no RTC).
    #[serde(with = "time_ms")]
    pub time: DateTime<Utc>,
    /// Milliseconds since the agent started, from a monotonic clock.
    pub mono_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// Why an envelope was refused. Every variant is a sender's bug or a hostile payload: log it,
/// count it, drop the event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("unsupported schema version {0} (this build reads 1..={SCHEMA_VERSION})")]
    UnsupportedVersion(u16),
    #[error("seq must start at 1, got 0")]
    ZeroSeq,
    #[error("field {field}: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
    /// A compact batch named a target by a key that neither its header, nor a
    /// `targets_described` of the batch, nor the receiver's stored descriptions define.
    #[error("unknown target key {key} for boot {boot}")]
    UnknownTarget { key: u64, boot: BootId },
}

impl Envelope {
    /// The unique key of this event in the store.
    pub fn key(&self) -> (&AgentId, &BootId, u64) {
        (&self.agent, &self.boot, self.seq)
    }

    /// Checks everything that can be checked without context: version, seq, bounds of every
    /// number and string. Plausibility of `time` against the receiver's clock is the collector's.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        if self.v == 0 || self.v > SCHEMA_VERSION {
            return Err(InvalidEvent::UnsupportedVersion(self.v));
        }
        if self.seq == 0 {
            return Err(InvalidEvent::ZeroSeq);
        }
        check_int("seq", self.seq)?;
        check_int("mono_ms", self.mono_ms)?;
        check_time("time", &self.time)?;
        for (name, value) in self.event.integers() {
            check_int(name, value)?;
        }
        for (name, value) in self.event.times() {
            check_time(name, value)?;
        }
        match &self.event {
            Event::AgentStarted { version, .. } => check_len("version", version, 64),
            Event::TargetsDescribed { targets } => check_described(targets),
            Event::AgentHeartbeat { .. } | Event::AgentWentSilent { .. } => Ok(()),
            Event::ProbeRoundCompleted {
                target,
                sent,
                received,
                rtt_min_ms,
                rtt_avg_ms,
                rtt_max_ms,
                rtt_mdev_ms,
                loss_pct,
            } => {
                check_target(target)?;
                check_echoes(*sent, *received, u64::from(MAX_ECHOES_PER_ROUND), *loss_pct)?;
                let rtts = [
                    ("rtt_min_ms", rtt_min_ms),
                    ("rtt_avg_ms", rtt_avg_ms),
                    ("rtt_max_ms", rtt_max_ms),
                    ("rtt_mdev_ms", rtt_mdev_ms),
                ];
                for (name, value) in rtts {
                    if let Some(ms) = value {
                        check_rtt(name, *ms)?;
                    }
                }
                if (*received == 0) != rtt_avg_ms.is_none() {
                    return Err(field(
                        "rtt_avg_ms",
                        "present exactly when received > 0".into(),
                    ));
                }
                Ok(())
            }
            Event::ProbeWindowCompleted {
                target,
                window_ms,
                rounds,
                failed_rounds,
                longest_failed_run,
                down_ms,
                sent,
                received,
                loss_pct,
                rtt_min_ms,
                rtt_avg_ms,
                rtt_max_ms,
                rtt_mdev_ms,
                rtt_pct_ms,
            } => {
                check_target(target)?;
                if *window_ms == 0 {
                    return Err(field("window_ms", "must be at least 1".into()));
                }
                if down_ms > window_ms {
                    return Err(field(
                        "down_ms",
                        format!("{down_ms} exceeds window_ms {window_ms}"),
                    ));
                }
                if failed_rounds > rounds {
                    return Err(field(
                        "failed_rounds",
                        format!("{failed_rounds} exceeds rounds {rounds}"),
                    ));
                }
                if longest_failed_run > failed_rounds
                    || (*failed_rounds > 0 && *longest_failed_run == 0)
                {
                    return Err(field(
                        "longest_failed_run",
                        format!("{longest_failed_run} does not fit failed_rounds {failed_rounds}"),
                    ));
                }
                let max_sent = u64::from(*rounds) * u64::from(MAX_ECHOES_PER_ROUND);
                check_echoes(*sent, *received, max_sent, *loss_pct)?;
                check_window_rtts(
                    *received,
                    [rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_mdev_ms],
                    rtt_pct_ms.as_deref(),
                )
            }
            Event::LinkWentDown { target, .. } | Event::LinkCameBack { target, .. } => {
                check_target(target)
            }
            Event::JournalOverflowed {
                first_seq,
                last_seq,
                count,
                ..
            } => {
                if *first_seq == 0 || first_seq > last_seq {
                    return Err(field(
                        "first_seq",
                        format!("range {first_seq}..={last_seq} is empty or starts at 0"),
                    ));
                }
                if *count == 0 || *count > last_seq - first_seq + 1 {
                    return Err(field(
                        "count",
                        format!("{count} does not fit the range {first_seq}..={last_seq}"),
                    ));
                }
                Ok(())
            }
            Event::InterfaceCountersSampled {
                device,
                interface,
                in_bps,
                out_bps,
                in_util_pct,
                out_util_pct,
                in_errors_ps,
                out_errors_ps,
                in_discards_ps,
                out_discards_ps,
                ..
            } => {
                check_interface(device, interface)?;
                let rates = [
                    ("in_bps", Some(in_bps)),
                    ("out_bps", Some(out_bps)),
                    ("in_util_pct", in_util_pct.as_ref()),
                    ("out_util_pct", out_util_pct.as_ref()),
                    ("in_errors_ps", Some(in_errors_ps)),
                    ("out_errors_ps", Some(out_errors_ps)),
                    ("in_discards_ps", Some(in_discards_ps)),
                    ("out_discards_ps", Some(out_discards_ps)),
                ];
                for (name, value) in rates {
                    if let Some(v) = value
                        && !(v.is_finite() && *v >= 0.0)
                    {
                        return Err(field(name, format!("{v} is not a rate")));
                    }
                }
                Ok(())
            }
            Event::InterfaceWentDown {
                device, interface, ..
            }
            | Event::InterfaceCameBack {
                device, interface, ..
            } => check_interface(device, interface),
            Event::DeviceRebooted { device, .. } | Event::DeviceAnswersAgain { device, .. } => {
                check_device(device)
            }
            Event::DeviceStoppedAnswering { device, error } => {
                check_device(device)?;
                check_len("error", error, 512)
            }
            Event::CellularSignalSampled { modem, signal, .. } => {
                check_len("modem", modem, MAX_NAME_LEN)?;
                signal
                    .check()
                    .map_err(|(name, problem)| field(name, problem))
            }
            Event::CellularTechnologyChanged {
                modem,
                plmn,
                operator,
                ..
            }
            | Event::CellularServiceLost {
                modem,
                plmn,
                operator,
                ..
            }
            | Event::CellularServiceRestored {
                modem,
                plmn,
                operator,
                ..
            } => {
                check_len("modem", modem, MAX_NAME_LEN)?;
                check_optional("plmn", plmn, 7)?;
                check_optional("operator", operator, MAX_NAME_LEN)
            }
            Event::CellularOperatorChanged {
                modem,
                from_plmn,
                to_plmn,
                operator,
            } => {
                check_len("modem", modem, MAX_NAME_LEN)?;
                check_optional("from_plmn", from_plmn, 7)?;
                check_optional("to_plmn", to_plmn, 7)?;
                check_optional("operator", operator, MAX_NAME_LEN)
            }
            Event::ModemStoppedAnswering { modem, error } => {
                check_len("modem", modem, MAX_NAME_LEN)?;
                check_len("error", error, 512)
            }
            Event::ModemAnswersAgain { modem, .. } => check_len("modem", modem, MAX_NAME_LEN),
            Event::CoverageDayRolledUp {
                modem,
                operators,
                carry,
                ..
            } => check_rollup(modem, operators, carry),
            // Collector-made: refused from agents before validation matters.
            Event::AlertOpened { .. }
            | Event::AlertAcknowledged { .. }
            | Event::AlertResolved { .. }
            | Event::AlertSuppressed { .. }
            | Event::SilenceAdded { .. }
            | Event::NotificationQueued { .. }
            | Event::NotificationSent { .. }
            | Event::NotificationFailed { .. } => Ok(()),
        }
    }
}

/// A coverage rollup's names and the sizes of its lists and histograms.
fn check_rollup(modem: &str, operators: &[OperatorDay], carry: &Carry) -> Result<(), InvalidEvent> {
    check_len("modem", modem, MAX_NAME_LEN)?;
    if operators.len() > MAX_ROLLUP_OPERATORS {
        return Err(field(
            "operators",
            format!(
                "{} operators, at most {MAX_ROLLUP_OPERATORS}",
                operators.len()
            ),
        ));
    }
    for day in operators {
        check_len("plmn", &day.plmn, 7)?;
        check_optional("operator", &day.operator, MAX_NAME_LEN)?;
        for (name, bins) in [("rsrp", &day.rsrp), ("sinr", &day.sinr)] {
            if bins.counts.len() > MAX_BINS || !bins.first.is_finite() {
                return Err(field(
                    name,
                    format!("at most {MAX_BINS} bins from a finite value"),
                ));
            }
        }
    }
    if carry.gaps_ms.len() > MAX_CARRIED_GAPS {
        return Err(field("gaps_ms", format!("at most {MAX_CARRIED_GAPS} gaps")));
    }
    check_optional("plmn", &carry.plmn, 7)?;
    check_optional("operator", &carry.operator, MAX_NAME_LEN)?;
    if let Some(open) = &carry.open {
        check_optional("plmn", &open.plmn, 7)?;
        check_optional("operator", &open.operator, MAX_NAME_LEN)?;
    }
    Ok(())
}

fn field(field: &'static str, problem: String) -> InvalidEvent {
    InvalidEvent::Field { field, problem }
}

fn check_len(name: &'static str, value: &str, max: usize) -> Result<(), InvalidEvent> {
    crate::text::check(value, max).map_err(|e| field(name, e.to_string()))
}

fn check_int(name: &'static str, value: u64) -> Result<(), InvalidEvent> {
    if value > MAX_INT {
        return Err(field(name, format!("{value} exceeds {MAX_INT}")));
    }
    Ok(())
}

/// A leap second (`23:59:60`) is refused: the store, InfluxDB and every clock computation
/// assume 60 seconds a minute. So is a time whose UTC form is outside the years 0000–9999
/// (`0000-01-01T00:00:00+00:01` is in year −1 in UTC): RFC 3339 cannot write it, so it could
/// not be stored and read back.
fn check_time(name: &'static str, value: &DateTime<Utc>) -> Result<(), InvalidEvent> {
    use chrono::{Datelike, Timelike};
    if value.nanosecond() >= 1_000_000_000 {
        return Err(field(name, "is a leap second".into()));
    }
    if !(0..=9999).contains(&value.year()) {
        return Err(field(name, "is outside the years 0000-9999 in UTC".into()));
    }
    Ok(())
}

fn check_optional(
    name: &'static str,
    value: &Option<String>,
    max: usize,
) -> Result<(), InvalidEvent> {
    match value {
        Some(value) => check_len(name, value, max),
        None => Ok(()),
    }
}

fn check_target(target: &Target) -> Result<(), InvalidEvent> {
    check_len("target.name", &target.name, MAX_NAME_LEN)
}

/// The targets of a `targets_described` or of a compact batch's header: 1 to
/// [`MAX_DESCRIBED_TARGETS`], keys unique and at least 1, names valid.
pub fn check_described(targets: &[DescribedTarget]) -> Result<(), InvalidEvent> {
    if targets.is_empty() || targets.len() > MAX_DESCRIBED_TARGETS {
        return Err(field(
            "targets",
            format!(
                "{} targets is outside 1-{MAX_DESCRIBED_TARGETS}",
                targets.len()
            ),
        ));
    }
    for (i, described) in targets.iter().enumerate() {
        if described.key == 0 {
            return Err(field("targets.key", "keys start at 1, got 0".into()));
        }
        if targets[..i].iter().any(|d| d.key == described.key) {
            return Err(field(
                "targets.key",
                format!("key {} is described twice", described.key),
            ));
        }
        check_len("targets.name", &described.target.name, MAX_NAME_LEN)?;
    }
    Ok(())
}

/// `sent` at most `max_sent`, `received` at most `sent`, `loss_pct` 0-100.
fn check_echoes(
    sent: u32,
    received: u32,
    max_sent: u64,
    loss_pct: f64,
) -> Result<(), InvalidEvent> {
    if u64::from(sent) > max_sent {
        return Err(field("sent", format!("{sent} exceeds {max_sent}")));
    }
    if received > sent {
        return Err(field("received", format!("{received} exceeds sent {sent}")));
    }
    if !(0.0..=100.0).contains(&loss_pct) {
        return Err(field("loss_pct", format!("{loss_pct} is outside 0-100")));
    }
    Ok(())
}

fn check_rtt(name: &'static str, ms: f64) -> Result<(), InvalidEvent> {
    if !(ms.is_finite() && (0.0..=MAX_RTT_MS).contains(&ms)) {
        return Err(field(name, format!("{ms} is not a duration in ms")));
    }
    Ok(())
}

/// A window's RTTs: all present exactly when something was received, each a duration, min ≤ avg
/// ≤ max, and [`RTT_PERCENTILES`] non-decreasing percentiles between min and max.
fn check_window_rtts(
    received: u32,
    [min, avg, max, mdev]: [&Option<f64>; 4],
    percentiles: Option<&[f64]>,
) -> Result<(), InvalidEvent> {
    let present = [
        min.is_some(),
        avg.is_some(),
        max.is_some(),
        mdev.is_some(),
        percentiles.is_some(),
    ];
    if present.iter().any(|&p| p != (received > 0)) {
        return Err(field(
            "rtt_avg_ms",
            "the RTT fields are all present exactly when received > 0".into(),
        ));
    }
    let (Some(min), Some(avg), Some(max), Some(mdev), Some(percentiles)) =
        (*min, *avg, *max, *mdev, percentiles)
    else {
        return Ok(());
    };
    for (name, ms) in [
        ("rtt_min_ms", min),
        ("rtt_avg_ms", avg),
        ("rtt_max_ms", max),
        ("rtt_mdev_ms", mdev),
    ] {
        check_rtt(name, ms)?;
    }
    if !(min <= avg && avg <= max) {
        return Err(field(
            "rtt_avg_ms",
            format!("min {min} <= avg {avg} <= max {max} does not hold"),
        ));
    }
    if percentiles.len() != RTT_PERCENTILES {
        return Err(field(
            "rtt_pct_ms",
            format!("{} values, expected {RTT_PERCENTILES}", percentiles.len()),
        ));
    }
    let mut previous = min;
    for &ms in percentiles {
        // NaN fails both comparisons.
        if !(ms >= previous && ms <= max) {
            return Err(field(
                "rtt_pct_ms",
                format!("{ms} is not between the previous value {previous} and max {max}"),
            ));
        }
        previous = ms;
    }
    Ok(())
}

fn check_device(device: &Device) -> Result<(), InvalidEvent> {
    check_len("device.address", &device.address, MAX_NAME_LEN)?;
    match &device.name {
        Some(name) => check_len("device.name", name, MAX_NAME_LEN),
        None => Ok(()),
    }
}

fn check_interface(device: &Device, interface: &Interface) -> Result<(), InvalidEvent> {
    check_device(device)?;
    check_len("interface.name", &interface.name, MAX_NAME_LEN)?;
    match &interface.alias {
        Some(alias) if !alias.is_empty() => check_len("interface.alias", alias, MAX_NAME_LEN),
        _ => Ok(()),
    }
}

/// The serde of wall times, where it always was for the crate's users.
pub use crate::time_ms;
