//! The envelope every event travels in, and the checks an event must pass before the collector
//! stores it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Event, Target};
use crate::ids::{AgentId, BootId};
use crate::interface::{Device, Interface};

/// The schema version this build writes. Older versions are upcast on read (none exist yet).
pub const SCHEMA_VERSION: u16 = 1;

/// Longest target name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Largest number of echoes one probe round may report.
pub const MAX_ECHOES_PER_ROUND: u32 = 1000;

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
                if *sent > MAX_ECHOES_PER_ROUND {
                    return Err(field(
                        "sent",
                        format!("{sent} exceeds {MAX_ECHOES_PER_ROUND}"),
                    ));
                }
                if received > sent {
                    return Err(field("received", format!("{received} exceeds sent {sent}")));
                }
                if !(0.0..=100.0).contains(loss_pct) {
                    return Err(field("loss_pct", format!("{loss_pct} is outside 0-100")));
                }
                let rtts = [
                    ("rtt_min_ms", rtt_min_ms),
                    ("rtt_avg_ms", rtt_avg_ms),
                    ("rtt_max_ms", rtt_max_ms),
                    ("rtt_mdev_ms", rtt_mdev_ms),
                ];
                for (name, value) in rtts {
                    if let Some(ms) = value
                        && !(ms.is_finite() && *ms >= 0.0 && *ms <= 3_600_000.0)
                    {
                        return Err(field(name, format!("{ms} is not a duration in ms")));
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
