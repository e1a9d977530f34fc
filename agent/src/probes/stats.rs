//! What one probe round to one target amounted to: counts, round-trip statistics as `ping`
//! reports them, loss, and why nothing came back. Pure: outcomes in, numbers out.

use std::time::Duration;

use netmon_events::{DownReason, Event, Target};

/// What became of one echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoOutcome {
    /// A reply arrived within the timeout, after this long.
    Replied(Duration),
    /// Sent; nothing (or nothing in time) came back.
    NoReply,
    /// Sent; the network answered with an ICMP error (unreachable, time exceeded), or the kernel
    /// refused to send for lack of a route.
    Unreachable,
    /// The echo could not be sent (socket error).
    SendFailed,
}

/// Round-trip times of the replies of one round, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rtt {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    /// Population standard deviation, `sqrt(mean(t²) - mean(t)²)`, which is what iputils `ping`
    /// prints as `mdev`.
    pub mdev_ms: f64,
}

/// The result of one round to one target.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundStats {
    /// Echoes tried: sent, or failed to send.
    pub attempted: u32,
    /// Echoes actually sent (send failures are not counted).
    pub sent: u32,
    pub received: u32,
    /// `None` when nothing was received.
    pub rtt: Option<Rtt>,
    /// Lost echoes in percent of the echoes attempted; 100 when none could be sent.
    pub loss_pct: f64,
    /// Why nothing came back; `Some` exactly when `received == 0`.
    pub failure: Option<DownReason>,
    /// Every reply's round-trip time in whole microseconds, in echo order (`received` of them),
    /// for the report window's distribution ([`super::window`]).
    pub rtts_us: Vec<u32>,
}

impl RoundStats {
    /// Summarises the outcomes of one round's echoes to one target.
    pub fn from_outcomes(outcomes: impl IntoIterator<Item = EchoOutcome>) -> RoundStats {
        let (mut attempted, mut sent, mut unreachable) = (0u32, 0u32, 0u32);
        let mut rtts_ms = Vec::new();
        let mut rtts_us = Vec::new();
        for outcome in outcomes {
            attempted += 1;
            match outcome {
                EchoOutcome::Replied(rtt) => {
                    sent += 1;
                    rtts_ms.push(rtt.as_secs_f64() * 1000.0);
                    rtts_us.push(micros(rtt));
                }
                EchoOutcome::NoReply => sent += 1,
                EchoOutcome::Unreachable => {
                    sent += 1;
                    unreachable += 1;
                }
                EchoOutcome::SendFailed => {}
            }
        }
        let received = u32::try_from(rtts_ms.len()).unwrap_or(u32::MAX);
        let loss_pct = if attempted == 0 {
            100.0
        } else {
            round3(f64::from(attempted - received) * 100.0 / f64::from(attempted))
        };
        let failure = match (received, sent, unreachable) {
            (0, 0, _) => Some(DownReason::SendFailed),
            (0, _, u) if u > 0 => Some(DownReason::Unreachable),
            (0, _, _) => Some(DownReason::NoReply),
            _ => None,
        };
        RoundStats {
            attempted,
            sent,
            received,
            rtt: rtt_stats(&rtts_ms),
            loss_pct,
            failure,
            rtts_us,
        }
    }

    /// The `probe_round_completed` event for this round.
    pub fn to_event(&self, target: &Target) -> Event {
        Event::ProbeRoundCompleted {
            target: target.clone(),
            sent: self.sent,
            received: self.received,
            rtt_min_ms: self.rtt.map(|r| r.min_ms),
            rtt_avg_ms: self.rtt.map(|r| r.avg_ms),
            rtt_max_ms: self.rtt.map(|r| r.max_ms),
            rtt_mdev_ms: self.rtt.map(|r| r.mdev_ms),
            loss_pct: self.loss_pct,
        }
    }
}

/// A round-trip time in whole microseconds, to the nearest.
fn micros(rtt: Duration) -> u32 {
    u32::try_from(rtt.as_nanos().saturating_add(500) / 1000).unwrap_or(u32::MAX)
}

/// min/avg/max/mdev of round-trip times in ms, rounded to microseconds; `None` for no samples.
pub fn rtt_stats(samples_ms: &[f64]) -> Option<Rtt> {
    if samples_ms.is_empty() {
        return None;
    }
    let n = samples_ms.len() as f64;
    let sum: f64 = samples_ms.iter().sum();
    let sum2: f64 = samples_ms.iter().map(|t| t * t).sum();
    let avg = sum / n;
    // Clamp: rounding can make the variance a hair below zero for identical samples.
    let mdev = (sum2 / n - avg * avg).max(0.0).sqrt();
    let min = samples_ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Rtt {
        min_ms: round3(min),
        avg_ms: round3(avg),
        max_ms: round3(max),
        mdev_ms: round3(mdev),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use EchoOutcome::*;

    fn ms(x: f64) -> EchoOutcome {
        Replied(Duration::from_secs_f64(x / 1000.0))
    }

    #[test]
    fn mdev_matches_ping() {
        // The golden fixture: replies of 1.204 and 1.796 ms, one lost.
        let s = RoundStats::from_outcomes([ms(1.204), NoReply, ms(1.796)]);
        assert_eq!((s.sent, s.received, s.loss_pct), (3, 2, 33.333));
        let r = s.rtt.unwrap();
        assert_eq!(
            (r.min_ms, r.avg_ms, r.max_ms, r.mdev_ms),
            (1.204, 1.5, 1.796, 0.296)
        );
        assert_eq!(s.failure, None);
        assert_eq!(
            (s.attempted, s.rtts_us.as_slice()),
            (3, [1204, 1796].as_slice())
        );

        // `ping -c 4` printing "rtt min/avg/max/mdev = 1.000/2.500/4.000/1.118 ms".
        let r = rtt_stats(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((r.avg_ms, r.mdev_ms), (2.5, 1.118));
        // One sample, or identical samples: no deviation.
        assert_eq!(rtt_stats(&[0.05]).unwrap().mdev_ms, 0.0);
        assert_eq!(rtt_stats(&[0.1, 0.1, 0.1]).unwrap().mdev_ms, 0.0);
        assert_eq!(rtt_stats(&[]), None);
    }

    #[test]
    fn failure_reasons() {
        let table = [
            (
                vec![NoReply, NoReply, NoReply],
                3,
                Some(DownReason::NoReply),
            ),
            (
                vec![NoReply, Unreachable, NoReply],
                3,
                Some(DownReason::Unreachable),
            ),
            (
                vec![SendFailed, SendFailed],
                0,
                Some(DownReason::SendFailed),
            ),
            (vec![SendFailed, NoReply], 1, Some(DownReason::NoReply)),
            (vec![Unreachable, ms(2.0)], 2, None),
        ];
        for (outcomes, sent, failure) in table {
            let s = RoundStats::from_outcomes(outcomes.clone());
            assert_eq!((s.sent, s.failure), (sent, failure), "{outcomes:?}");
            assert_eq!(s.rtt.is_some(), s.received > 0);
        }
        let s = RoundStats::from_outcomes([SendFailed, SendFailed]);
        assert_eq!(s.loss_pct, 100.0);
    }

    #[test]
    fn events_pass_contract_validation() {
        let target = Target {
            name: "UBND xã Cẩm Tú".into(),
            address: "127.0.0.1".parse().unwrap(),
            role: netmon_events::LinkRole::Commune,
        };
        for outcomes in [vec![ms(0.1), ms(0.3)], vec![NoReply], vec![SendFailed]] {
            let event = RoundStats::from_outcomes(outcomes).to_event(&target);
            let envelope = netmon_events::Envelope {
                v: netmon_events::SCHEMA_VERSION,
                agent: "a".parse().unwrap(),
                boot: "b".parse().unwrap(),
                seq: 1,
                time: chrono::Utc::now(),
                mono_ms: 0,
                event,
            };
            envelope.validate().unwrap();
        }
    }
}
