//! Link state with hysteresis: turns a stream of round results for one target into
//! `link_went_down` / `link_came_back` events. Pure: no I/O, no clock; the time of each round is
//! passed in.
//!
//! # The rule
//! - `Unknown → Up` on the first round with at least one reply (no event: nothing changed that
//!   anyone was told about).
//! - `Unknown`/`Up → Down` after `down_after` *consecutive* rounds with zero replies. The event
//!   carries `since` = wall time of the first failed round of the run, the reason of the latest
//!   failed round, and the number of failed rounds.
//! - `Down → Up` on the first round with any reply; `down_for_ms` is measured on the monotonic
//!   clock from the first failed round to this one, so a wall-clock jump (NTP after a power cut)
//!   cannot distort it.
//!
//! # The numbers behind the defaults (`count = 3`, `down_after = 3`, `interval = 1s`)
//! A round fails only if all its echoes are lost. With 20% independent loss,
//! P(round fails) = 0.2³ = 0.008, and a false "down" needs three failed rounds in a row:
//! ≈ 0.008³ ≈ 5·10⁻⁷ per round, or ≈ 3600 · 5·10⁻⁷ ≈ 0.0018 over an hour of 1 s rounds — about
//! one false alarm per 23 days of a link that loses one packet in five. A hard cut is declared
//! after three failed rounds: 3–4 s after the cut (depending on where in a round it falls) plus
//! the reply timeout of the last round, within 5 s at the defaults.

use chrono::{DateTime, Utc};
use netmon_events::{DownReason, Event, Target};

/// When a round was run: wall time (reported) and monotonic ms since agent start (measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTime {
    pub wall: DateTime<Utc>,
    pub mono_ms: u64,
}

/// A change of a link's state worth an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentDown {
        since: DateTime<Utc>,
        reason: DownReason,
        failed_rounds: u32,
    },
    CameBack {
        down_since: DateTime<Utc>,
        down_for_ms: u64,
        reason: DownReason,
    },
}

impl Transition {
    /// The event announcing this transition for `target`.
    pub fn to_event(self, target: &Target) -> Event {
        let target = target.clone();
        match self {
            Transition::WentDown {
                since,
                reason,
                failed_rounds,
            } => Event::LinkWentDown {
                target,
                since,
                reason,
                failed_rounds,
            },
            Transition::CameBack {
                down_since,
                down_for_ms,
                reason,
            } => Event::LinkCameBack {
                target,
                down_since,
                down_for_ms,
                reason,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unknown,
    Up,
    Down,
}

/// The state of one link.
#[derive(Debug, Clone)]
pub struct Link {
    down_after: u32,
    state: State,
    /// Consecutive failed rounds so far.
    failed: u32,
    /// The first failed round of the current run of failures.
    first_failure: Option<RoundTime>,
    reason: DownReason,
}

impl Link {
    /// A link about which nothing is known yet. `down_after` is at least 1.
    pub fn new(down_after: u32) -> Link {
        Link {
            down_after: down_after.max(1),
            state: State::Unknown,
            failed: 0,
            first_failure: None,
            reason: DownReason::NoReply,
        }
    }

    /// True when the link is currently declared down.
    pub fn is_down(&self) -> bool {
        self.state == State::Down
    }

    /// Feeds one round: `failure` is `None` when at least one reply came back, else why not.
    pub fn observe(&mut self, failure: Option<DownReason>, at: RoundTime) -> Option<Transition> {
        match failure {
            None => {
                let was = self.state;
                let first = self.first_failure.take();
                self.failed = 0;
                self.state = State::Up;
                match (was, first) {
                    (State::Down, Some(first)) => Some(Transition::CameBack {
                        down_since: first.wall,
                        down_for_ms: at.mono_ms.saturating_sub(first.mono_ms),
                        reason: self.reason,
                    }),
                    _ => None,
                }
            }
            Some(reason) => {
                if self.state == State::Down {
                    return None;
                }
                self.failed = self.failed.saturating_add(1);
                self.reason = reason;
                let first = *self.first_failure.get_or_insert(at);
                if self.failed < self.down_after {
                    return None;
                }
                self.state = State::Down;
                Some(Transition::WentDown {
                    since: first.wall,
                    reason,
                    failed_rounds: self.failed,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Runs rounds at 1 s intervals from 02:00:00 UTC (mono 0): `+` = replied, `n` = no reply,
    /// `u` = unreachable, `s` = send failed. Returns one line per transition:
    /// `round: down since=<s> reason failed=<n>` / `round: back since=<s> for=<ms> reason`.
    fn run(down_after: u32, rounds: &str) -> Vec<String> {
        let mut link = Link::new(down_after);
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let secs = |wall: DateTime<Utc>| (wall - t0).num_seconds();
        let mut out = Vec::new();
        for (i, c) in rounds.chars().enumerate() {
            let failure = match c {
                '+' => None,
                'n' => Some(DownReason::NoReply),
                'u' => Some(DownReason::Unreachable),
                's' => Some(DownReason::SendFailed),
                _ => panic!("bad round {c}"),
            };
            let at = RoundTime {
                wall: t0 + chrono::Duration::seconds(i as i64),
                mono_ms: i as u64 * 1000,
            };
            match link.observe(failure, at) {
                Some(Transition::WentDown {
                    since,
                    reason,
                    failed_rounds,
                }) => out.push(format!(
                    "{i}: down since={} {reason:?} failed={failed_rounds}",
                    secs(since)
                )),
                Some(Transition::CameBack {
                    down_since,
                    down_for_ms,
                    reason,
                }) => out.push(format!(
                    "{i}: back since={} for={down_for_ms} {reason:?}",
                    secs(down_since)
                )),
                None => {}
            }
        }
        out
    }

    #[test]
    fn hysteresis_table() {
        let table: &[(u32, &str, &[&str])] = &[
            // Steady up: silence.
            (3, "+++++", &[]),
            // Never answered: down after 3 rounds, from Unknown.
            (3, "nnnnn", &["2: down since=0 NoReply failed=3"]),
            // Two failures are absorbed; the counter resets on a reply.
            (3, "+nn+nn+", &[]),
            // A cut: down at the third failed round, back on the first reply.
            (
                3,
                "++nnnn+",
                &[
                    "4: down since=2 NoReply failed=3",
                    "6: back since=2 for=4000 NoReply",
                ],
            ),
            // The reason is that of the latest failed round before the decision.
            (
                3,
                "+nnu+",
                &[
                    "3: down since=1 Unreachable failed=3",
                    "4: back since=1 for=3000 Unreachable",
                ],
            ),
            // Flapping produces one pair per outage, never a second "down" while down.
            (
                2,
                "+nnnn+nn+",
                &[
                    "2: down since=1 NoReply failed=2",
                    "5: back since=1 for=4000 NoReply",
                    "7: down since=6 NoReply failed=2",
                    "8: back since=6 for=2000 NoReply",
                ],
            ),
            // down_after = 1: every failed round after a reply is an outage.
            (
                1,
                "+s+",
                &[
                    "1: down since=1 SendFailed failed=1",
                    "2: back since=1 for=1000 SendFailed",
                ],
            ),
            // Coming up from Unknown is not an event.
            (3, "nn+", &[]),
        ];
        for (down_after, rounds, expected) in table {
            assert_eq!(
                run(*down_after, rounds),
                *expected,
                "down_after={down_after} {rounds}"
            );
        }
    }

    #[test]
    fn events_carry_the_target() {
        let target = Target {
            name: "Cổng thôn Giang Trung".into(),
            address: "127.0.0.1".parse().unwrap(),
            role: netmon_events::LinkRole::Gateway,
        };
        let t = Transition::WentDown {
            since: Utc::now(),
            reason: DownReason::NoReply,
            failed_rounds: 3,
        };
        assert_eq!(t.to_event(&target).target(), Some(&target));
    }
}
