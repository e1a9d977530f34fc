//! The echo table of one ICMP round: which echo went to whom with which sequence number, and
//! what became of it. Pure: the engine in [`super::icmp`] does the I/O and passes times in.

use std::time::Duration;

use tokio::time::Instant;

use super::stats::{EchoOutcome, RoundStats};

/// The state of one echo.
#[derive(Debug, Clone, Copy)]
pub(super) enum Echo {
    Unsent,
    InFlight(Instant),
    Done(EchoOutcome),
}

/// The echoes of one round, echo-major: slot `e * n + t` is echo `e` to target `t`.
pub(super) struct Table {
    /// First sequence number of each target in this round.
    base: Vec<u16>,
    count: usize,
    timeout: Duration,
    pub(super) echoes: Vec<Echo>,
    /// Echoes not yet resolved.
    pub(super) outstanding: usize,
}

impl Table {
    pub(super) fn new(base: Vec<u16>, count: usize, timeout: Duration) -> Table {
        let total = base.len() * count;
        Table {
            base,
            count,
            timeout,
            echoes: vec![Echo::Unsent; total],
            outstanding: total,
        }
    }

    /// Target and sequence number of a slot.
    pub(super) fn echo(&self, slot: usize) -> (usize, u16) {
        let n = self.base.len();
        let (t, e) = (slot % n, slot / n);
        (t, self.base[t].wrapping_add(e as u16))
    }

    pub(super) fn resolve(&mut self, slot: usize, outcome: EchoOutcome) {
        if !matches!(self.echoes[slot], Echo::Done(_)) {
            self.echoes[slot] = Echo::Done(outcome);
            self.outstanding -= 1;
        }
    }

    /// A reply (or ICMP error) from target `t` for sequence `seq`, received at `now`. Ignored
    /// unless it answers an echo of this round still in flight.
    pub(super) fn answer(&mut self, t: usize, seq: u16, error: bool, now: Instant) {
        let e = seq.wrapping_sub(self.base[t]) as usize;
        if e >= self.count {
            return;
        }
        let slot = e * self.base.len() + t;
        if let Echo::InFlight(sent) = self.echoes[slot] {
            let rtt = now.saturating_duration_since(sent);
            let outcome = match (error, rtt <= self.timeout) {
                (true, _) => EchoOutcome::Unreachable,
                (false, true) => EchoOutcome::Replied(rtt),
                (false, false) => EchoOutcome::NoReply,
            };
            self.resolve(slot, outcome);
        }
    }

    pub(super) fn results(&self) -> Vec<RoundStats> {
        let n = self.base.len();
        (0..n)
            .map(|t| {
                RoundStats::from_outcomes((0..self.count).map(|e| match self.echoes[e * n + t] {
                    Echo::Done(outcome) => outcome,
                    Echo::InFlight(_) => EchoOutcome::NoReply,
                    Echo::Unsent => EchoOutcome::SendFailed,
                }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_by_target_and_sequence_window() {
        // Two targets, two echoes each; target 1's counter has wrapped around.
        let mut table = Table::new(vec![10, u16::MAX], 2, Duration::from_secs(1));
        assert_eq!(table.echo(0), (0, 10));
        assert_eq!(table.echo(1), (1, u16::MAX));
        assert_eq!(table.echo(3), (1, 0));
        let t0 = Instant::now();
        for slot in 0..4 {
            table.echoes[slot] = Echo::InFlight(t0);
        }
        let later = |ms| t0 + Duration::from_millis(ms);
        table.answer(0, 10, false, later(5)); // target 0, echo 0
        table.answer(0, 10, false, later(6)); // duplicate: ignored
        table.answer(0, 9, false, later(5)); // previous round: ignored
        table.answer(0, 12, false, later(5)); // beyond this round: ignored
        table.answer(1, 0, true, later(5)); // target 1, echo 1: ICMP error
        table.answer(1, u16::MAX, false, later(1500)); // target 1, echo 0: too late
        assert_eq!(table.outstanding, 1);
        let results = table.results();
        assert_eq!((results[0].sent, results[0].received), (2, 1));
        assert_eq!(results[0].rtt.map(|r| r.avg_ms), Some(5.0));
        assert_eq!(
            (results[1].received, results[1].failure),
            (0, Some(netmon_events::DownReason::Unreachable))
        );
    }
}
