//! Clock trust (pure: no I/O, no clock reads): which time an agent's event really happened at.
//!
//! Agents run on routers that often have no real-time clock: after a power cut their wall clock
//! says 1970 until NTP answers, and it may jump when NTP does. Every event also carries `mono_ms`,
//! milliseconds since the agent's boot from a monotonic clock, and every batch carries the
//! sender's `mono_ms` at the moment it published. So per (agent, boot) the collector keeps an
//! **epoch estimate**: the minimum over that boot's batches of `received − sender.mono_ms`.
//! Reception never precedes sending, so each sample is at or after the true epoch and the
//! minimum is the best estimate (a batch that waited in a broker only gives a worse sample).
//!
//! An event's wall time is **implausible** when it is before [`WALL_FLOOR`] (earlier than any
//! netmon build), more than [`FUTURE_LIMIT`] after it was received, or — when the epoch is known —
//! further than `clock_tolerance` from `epoch + mono_ms` (a clock that jumped mid-boot shows as
//! that deviation). Then:
//!
//! | wall time   | epoch known | effective time     | [`ClockSource`] |
//! |-------------|-------------|--------------------|-----------------|
//! | plausible   | either      | the agent's        | `agent`         |
//! | implausible | yes         | `epoch + mono_ms`  | `corrected`     |
//! | implausible | no          | received           | `received`      |
//!
//! A correction is itself checked: one before [`WALL_FLOOR`] or more than [`FUTURE_LIMIT`] after
//! reception (an event's `mono_ms` larger than its sender's, a huge sender `mono_ms`) is not
//! trusted, and the receive time is used instead. So no effective time is ever more than
//! [`FUTURE_LIMIT`] after its reception.
//!
//! An event is **late** when it was received more than `late_after` after its effective time (a
//! backlog replayed after an outage): it fills history, but must not raise stale notifications.

use chrono::{DateTime, TimeDelta, Utc};

/// Wall times before this are implausible: 2025-01-01T00:00:00Z, earlier than any netmon build.
pub const WALL_FLOOR: DateTime<Utc> = match DateTime::from_timestamp(1_735_689_600, 0) {
    Some(t) => t,
    None => DateTime::UNIX_EPOCH,
};

/// Wall times more than this after reception are implausible (the agent's clock runs ahead).
pub const FUTURE_LIMIT: TimeDelta = TimeDelta::minutes(5);

/// Which clock an event's effective time comes from (the store's `clock` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockSource {
    /// The agent's wall time was plausible and is kept. Also the collector's own events.
    Agent,
    /// The agent's wall time was replaced by the boot's epoch estimate + `mono_ms`.
    Corrected,
    /// The agent's wall time was implausible and no estimate existed: the receive time is used.
    Received,
}

impl ClockSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockSource::Agent => "agent",
            ClockSource::Corrected => "corrected",
            ClockSource::Received => "received",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "agent" => Some(ClockSource::Agent),
            "corrected" => Some(ClockSource::Corrected),
            "received" => Some(ClockSource::Received),
            _ => None,
        }
    }
}

/// The `[delivery]` settings the judgement depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPolicy {
    /// Wall time further than this from the monotonic estimate is corrected.
    pub tolerance: TimeDelta,
    /// Received more than this after its effective time: late.
    pub late_after: TimeDelta,
}

impl Default for ClockPolicy {
    fn default() -> Self {
        Self {
            tolerance: TimeDelta::seconds(30),
            late_after: TimeDelta::minutes(2),
        }
    }
}

/// The verdict on one event's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The effective time: what the store's `time` column and the state use.
    pub time: DateTime<Utc>,
    pub clock: ClockSource,
    pub late: bool,
}

impl Judgement {
    /// The shift applied to the agent's wall time (zero when it was kept); the agent's other
    /// wall times in the same event (an outage's `since`) are shifted by the same amount.
    pub fn delta(&self, agent_time: DateTime<Utc>) -> TimeDelta {
        self.time - agent_time
    }
}

/// One epoch sample from a batch: `received − sender.mono_ms`. `None` if out of range.
pub fn epoch_sample(received: DateTime<Utc>, sender_mono_ms: u64) -> Option<DateTime<Utc>> {
    let mono = TimeDelta::try_milliseconds(i64::try_from(sender_mono_ms).ok()?)?;
    received.checked_sub_signed(mono)
}

/// The better of a known epoch estimate and a new sample (the earlier one).
pub fn better_epoch(
    known: Option<DateTime<Utc>>,
    sample: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (known, sample) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Judges one event's wall time `agent_time` (with `mono_ms` since its boot) received at
/// `received`, given its boot's epoch estimate.
pub fn judge(
    policy: ClockPolicy,
    agent_time: DateTime<Utc>,
    mono_ms: u64,
    epoch: Option<DateTime<Utc>>,
    received: DateTime<Utc>,
) -> Judgement {
    let expected = epoch.and_then(|epoch| {
        let mono = TimeDelta::try_milliseconds(i64::try_from(mono_ms).ok()?)?;
        epoch.checked_add_signed(mono)
    });
    let implausible = agent_time < WALL_FLOOR
        || agent_time - received > FUTURE_LIMIT
        || expected.is_some_and(|e| (agent_time - e).abs() > policy.tolerance);
    // A correction must be plausible itself: an event's `mono_ms` beyond its sender's (a forged
    // or broken batch) would put it in the future, a huge sender `mono_ms` decades back.
    let expected = expected.filter(|e| *e >= WALL_FLOOR && *e - received <= FUTURE_LIMIT);
    let (time, clock) = match (implausible, expected) {
        (false, _) => (agent_time, ClockSource::Agent),
        (true, Some(expected)) => (expected, ClockSource::Corrected),
        (true, None) => (received, ClockSource::Received),
    };
    Judgement {
        time,
        clock,
        late: received - time > policy.late_after,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// One event, as the agent sent it and as the collector received it.
    struct Case {
        name: &'static str,
        /// `(received, sender.mono_ms)` of the batches of this boot seen so far, oldest first.
        batches: &'static [(&'static str, u64)],
        agent_time: &'static str,
        mono_ms: u64,
        received: &'static str,
        expect: (&'static str, ClockSource, bool),
    }

    #[test]
    fn judgements() {
        use ClockSource::*;
        let cases = [
            Case {
                name: "plausible clock kept, live",
                batches: &[("2026-11-23T02:00:10.050Z", 10_000)],
                agent_time: "2026-11-23T02:00:10.000Z",
                mono_ms: 10_000,
                received: "2026-11-23T02:00:10.050Z",
                expect: ("2026-11-23T02:00:10.000Z", Agent, false),
            },
            Case {
                name: "plausible clock kept without any epoch",
                batches: &[],
                agent_time: "2026-11-23T02:00:10.000Z",
                mono_ms: 10_000,
                received: "2026-11-23T02:00:11.000Z",
                expect: ("2026-11-23T02:00:10.000Z", Agent, false),
            },
            Case {
                name: "1970 clock corrected from the epoch",
                batches: &[("2026-11-23T02:00:10.200Z", 10_000)],
                agent_time: "1970-01-01T00:00:10.000Z",
                mono_ms: 9_000,
                received: "2026-11-23T02:00:10.200Z",
                expect: ("2026-11-23T02:00:09.200Z", Corrected, false),
            },
            Case {
                name: "an event mono_ms beyond its sender's cannot be corrected into the future",
                batches: &[("2026-12-02T02:00:00.000Z", 1_000)],
                agent_time: "1970-01-01T00:00:10.000Z",
                mono_ms: 10_000_000_000,
                received: "2026-12-02T02:00:00.000Z",
                expect: ("2026-12-02T02:00:00.000Z", Received, false),
            },
            Case {
                name: "a sender mono_ms of decades cannot correct into the past",
                batches: &[("2026-12-02T02:00:00.000Z", 1_000_000_000_000)],
                agent_time: "1970-01-01T00:00:10.000Z",
                mono_ms: 5_000,
                received: "2026-12-02T02:00:00.000Z",
                expect: ("2026-12-02T02:00:00.000Z", Received, false),
            },
            Case {
                name: "1970 clock with no epoch: receive time",
                batches: &[],
                agent_time: "1970-01-01T00:00:10.000Z",
                mono_ms: 9_000,
                received: "2026-11-23T02:00:10.200Z",
                expect: ("2026-11-23T02:00:10.200Z", Received, false),
            },
            Case {
                name: "the minimum sample wins: a batch that waited in a broker does not spoil it",
                batches: &[
                    ("2026-11-23T02:00:10.100Z", 10_000),
                    ("2026-11-23T03:00:00.000Z", 20_000),
                ],
                agent_time: "1970-01-01T00:00:15.000Z",
                mono_ms: 15_000,
                received: "2026-11-23T03:00:00.000Z",
                expect: ("2026-11-23T02:00:15.100Z", Corrected, true),
            },
            Case {
                name: "clock jumped forward mid-boot (a minute ahead of the monotonic estimate)",
                batches: &[("2026-11-23T02:00:10.000Z", 10_000)],
                agent_time: "2026-11-23T02:02:00.000Z",
                mono_ms: 60_000,
                received: "2026-11-23T02:01:00.100Z",
                expect: ("2026-11-23T02:01:00.000Z", Corrected, false),
            },
            Case {
                name: "small drift within the tolerance is kept",
                batches: &[("2026-11-23T02:00:10.000Z", 10_000)],
                agent_time: "2026-11-23T02:01:20.000Z",
                mono_ms: 70_000,
                received: "2026-11-23T02:01:00.100Z",
                expect: ("2026-11-23T02:01:20.000Z", Agent, false),
            },
            Case {
                name: "far future with no epoch: receive time",
                batches: &[],
                agent_time: "2027-01-01T00:00:00.000Z",
                mono_ms: 1_000,
                received: "2026-11-23T02:00:00.000Z",
                expect: ("2026-11-23T02:00:00.000Z", Received, false),
            },
            Case {
                name: "backlog of an earlier boot, epoch known from that boot's batches: late",
                batches: &[("2026-11-23T01:00:05.000Z", 5_000)],
                agent_time: "1970-01-01T00:00:30.000Z",
                mono_ms: 600_000,
                received: "2026-11-23T02:30:00.000Z",
                expect: ("2026-11-23T01:10:00.000Z", Corrected, true),
            },
            Case {
                name: "plausible backlog: agent time kept, marked late",
                batches: &[("2026-11-23T01:00:05.000Z", 5_000)],
                agent_time: "2026-11-23T01:10:00.000Z",
                mono_ms: 600_000,
                received: "2026-11-23T02:30:00.000Z",
                expect: ("2026-11-23T01:10:00.000Z", Agent, true),
            },
        ];
        for case in cases {
            let epoch = case.batches.iter().fold(None, |known, (received, mono)| {
                better_epoch(known, epoch_sample(t(received), *mono))
            });
            let got = judge(
                ClockPolicy::default(),
                t(case.agent_time),
                case.mono_ms,
                epoch,
                t(case.received),
            );
            let (time, clock, late) = case.expect;
            assert_eq!(
                (got.time, got.clock, got.late),
                (t(time), clock, late),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn lateness_is_measured_from_the_effective_time() {
        let policy = ClockPolicy::default();
        let at = t("2026-11-23T02:00:00Z");
        let on_time = judge(policy, at, 1, None, at + TimeDelta::minutes(2));
        assert!(!on_time.late, "exactly late_after is not late");
        let late = judge(policy, at, 1, None, at + TimeDelta::seconds(121));
        assert!(late.late);
        assert_eq!(late.delta(at), TimeDelta::zero());
    }

    #[test]
    fn floor_and_names() {
        assert_eq!(WALL_FLOOR, t("2025-01-01T00:00:00Z"));
        for clock in [
            ClockSource::Agent,
            ClockSource::Corrected,
            ClockSource::Received,
        ] {
            assert_eq!(ClockSource::parse(clock.as_str()), Some(clock));
        }
        assert_eq!(epoch_sample(t("2026-11-23T02:00:00Z"), u64::MAX), None);
    }
}
