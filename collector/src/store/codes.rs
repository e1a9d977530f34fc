//! The small integers of a schema-5 row: each event type's code and the bits of `flags`. Both
//! are part of the file format: a code or a bit, once written, keeps its meaning for ever (a new
//! event type takes the next free code).

use crate::intake::clock::ClockSource;
use crate::store::Origin;

/// Every event type's code in `events.type`. The high-volume measurements come first, so that
/// the partial type index can leave them out with one comparison ([`INDEXED`]); the window is
/// code 1, which SQLite stores in the row header at no cost.
const CODES: &[(&str, i64)] = &[
    ("probe_window_completed", 1),
    ("probe_round_completed", 2),
    ("interface_counters_sampled", 3),
    ("cellular_signal_sampled", 10),
    ("agent_started", 11),
    ("targets_described", 12),
    ("agent_heartbeat", 13),
    ("link_went_down", 14),
    ("link_came_back", 15),
    ("journal_overflowed", 16),
    ("agent_went_silent", 17),
    ("interface_went_down", 18),
    ("interface_came_back", 19),
    ("device_rebooted", 20),
    ("device_stopped_answering", 21),
    ("device_answers_again", 22),
    ("cellular_technology_changed", 23),
    ("cellular_operator_changed", 24),
    ("cellular_service_lost", 25),
    ("cellular_service_restored", 26),
    ("modem_stopped_answering", 27),
    ("modem_answers_again", 28),
    ("alert_opened", 29),
    ("alert_acknowledged", 30),
    ("alert_resolved", 31),
    ("alert_suppressed", 32),
    ("silence_added", 33),
    ("notification_queued", 34),
    ("notification_sent", 35),
    ("notification_failed", 36),
    ("coverage_day_rolled_up", 37),
];

/// The condition of the partial index `events_type`, written the same in every query that
/// uses it (SQLite uses a partial index only for a query that repeats its condition): every
/// type but the raw measurements of probes and interfaces, which are nearly every row and are
/// only ever read in id order. The coverage report reads `cellular_signal_sampled` by type, so
/// it is indexed.
pub const INDEXED: &str = "type >= 10";

/// The code of an event type (`Event::type_name`), or `None` for a name that is no type.
pub fn code(type_name: &str) -> Option<i64> {
    CODES
        .iter()
        .find(|(name, _)| *name == type_name)
        .map(|(_, code)| *code)
}

/// The type name of a stored code.
pub fn name(code: i64) -> Option<&'static str> {
    CODES
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(name, _)| *name)
}

/// Whether rows of this code are in the partial index ([`INDEXED`]).
pub fn indexed(code: i64) -> bool {
    code >= 10
}

/// `flags` bit 0: made by the collector.
const COLLECTOR: i64 = 1;
/// `flags` bits 1–2: the clock (0 agent, 1 corrected, 2 received).
const CLOCK_SHIFT: u32 = 1;
/// `flags` bit 3: late.
const LATE: i64 = 1 << 3;
/// `flags` bit 4: `mono` holds `mono_ms` itself, not its difference from the stream's.
pub const MONO_RAW: i64 = 1 << 4;
/// `flags` bit 5: `body` holds the whole event, its type and target included (a serialisation
/// the row layout did not expect; never seen, kept readable).
pub const WHOLE_BODY: i64 = 1 << 5;
/// `flags` from bit 6 up: the envelope's `v` minus 1 (0 for every event of today's contract).
const V_SHIFT: u32 = 6;

/// The condition "made by an agent" on `flags`, for SQL.
pub const AGENT_MADE: &str = "flags & 1 = 0";

/// What `flags` says about a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub origin: Origin,
    pub clock: ClockSource,
    pub late: bool,
    pub v: u16,
    /// [`MONO_RAW`] and [`WHOLE_BODY`].
    pub layout: i64,
}

impl Flags {
    pub fn encode(self) -> i64 {
        let origin = match self.origin {
            Origin::Agent => 0,
            Origin::Collector => COLLECTOR,
        };
        let clock = match self.clock {
            ClockSource::Agent => 0,
            ClockSource::Corrected => 1,
            ClockSource::Received => 2,
        };
        let late = if self.late { LATE } else { 0 };
        (i64::from(self.v) - 1) << V_SHIFT
            | origin
            | clock << CLOCK_SHIFT
            | late
            | (self.layout & (MONO_RAW | WHOLE_BODY))
    }

    pub fn decode(flags: i64) -> Result<Self, String> {
        let clock = match (flags >> CLOCK_SHIFT) & 3 {
            0 => ClockSource::Agent,
            1 => ClockSource::Corrected,
            2 => ClockSource::Received,
            other => return Err(format!("flags {flags}: unknown clock {other}")),
        };
        let v = u16::try_from((flags >> V_SHIFT) + 1)
            .map_err(|_| format!("flags {flags}: no envelope version"))?;
        Ok(Self {
            origin: if flags & COLLECTOR == 0 {
                Origin::Agent
            } else {
                Origin::Collector
            },
            clock,
            late: flags & LATE != 0,
            v,
            layout: flags & (MONO_RAW | WHOLE_BODY),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_events::Event;

    #[test]
    fn every_type_has_one_code_and_the_measurements_are_left_out_of_the_index() {
        for name in Event::TYPE_NAMES {
            let code = code(name).unwrap_or_else(|| panic!("{name} has no code"));
            assert_eq!(super::name(code), Some(*name));
        }
        assert_eq!(CODES.len(), Event::TYPE_NAMES.len());
        let mut codes: Vec<i64> = CODES.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CODES.len(), "codes are unique");
        let unindexed: Vec<&str> = CODES
            .iter()
            .filter(|(_, c)| !indexed(*c))
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            unindexed,
            [
                "probe_window_completed",
                "probe_round_completed",
                "interface_counters_sampled"
            ]
        );
        assert_eq!(code("no_such_event"), None);
    }

    #[test]
    fn flags_round_trip_and_are_zero_for_a_plain_agent_event() {
        let plain = Flags {
            origin: Origin::Agent,
            clock: ClockSource::Agent,
            late: false,
            v: 1,
            layout: 0,
        };
        assert_eq!(plain.encode(), 0);
        for origin in [Origin::Agent, Origin::Collector] {
            for clock in [
                ClockSource::Agent,
                ClockSource::Corrected,
                ClockSource::Received,
            ] {
                for late in [false, true] {
                    for v in [0, 1, 2, u16::MAX] {
                        for layout in [0, MONO_RAW, WHOLE_BODY, MONO_RAW | WHOLE_BODY] {
                            let flags = Flags {
                                origin,
                                clock,
                                late,
                                v,
                                layout,
                            };
                            assert_eq!(Flags::decode(flags.encode()), Ok(flags));
                        }
                    }
                }
            }
        }
        assert!(Flags::decode(3 << CLOCK_SHIFT).is_err());
    }
}
