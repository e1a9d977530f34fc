//! The pacer (pure: the caller passes the time): how many journalled events the publisher may
//! send now, so that a backlog replayed after an outage does not choke a thin uplink.
//!
//! It is a token bucket filled at `journal.drain_rate` events per second, holding at most one
//! second's worth, plus a **live credit**: every event recorded while the agent is connected adds
//! one. Events go out in journal order, so live events queue behind a backlog; the credit makes
//! the live flow pay for itself, and the backlog shrinks at `drain_rate` on top of it. Without a
//! backlog, the credit alone lets each live event go out the moment it is recorded.

use std::time::{Duration, Instant};

/// Longest the publisher holds back events it could send, waiting to fill a batch.
pub const MAX_HOLD: Duration = Duration::from_millis(500);

/// Token bucket with live credit; see the module documentation.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    capacity: f64,
    tokens: f64,
    credit: u64,
    at: Instant,
}

impl Pacer {
    /// A full bucket for `rate` events per second (at least 1).
    pub fn new(rate: u32, now: Instant) -> Pacer {
        let rate = f64::from(rate.max(1));
        Pacer {
            rate,
            capacity: rate,
            tokens: rate,
            credit: 0,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = now;
    }

    /// `n` live events were recorded.
    pub fn credit(&mut self, n: u64) {
        self.credit = self.credit.saturating_add(n);
    }

    /// Forgets the live credit (at a reconnect: what was recorded meanwhile is backlog now).
    pub fn forget_credit(&mut self) {
        self.credit = 0;
    }

    /// Events that may be sent now.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        // `tokens` is within 0..=capacity, which fits u64.
        self.credit.saturating_add(self.tokens.floor() as u64)
    }

    /// `n` events were sent: live credit is spent first, then tokens.
    pub fn spend(&mut self, n: u64, now: Instant) {
        self.refill(now);
        let from_credit = n.min(self.credit);
        self.credit -= from_credit;
        self.tokens = (self.tokens - (n - from_credit) as f64).max(0.0);
    }

    /// How long until `n` events may be sent (zero when they may now); never longer than the
    /// bucket takes to fill.
    pub fn wait_for(&mut self, n: u64, now: Instant) -> Duration {
        self.refill(now);
        let need = (n.saturating_sub(self.credit) as f64).min(self.capacity);
        if self.tokens >= need {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((need - self.tokens) / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_drains_at_the_rate_after_one_burst() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(200, t0);
        assert_eq!(pacer.available(t0), 200);
        pacer.spend(200, t0);
        assert_eq!(pacer.available(t0), 0);
        let half = t0 + Duration::from_millis(500);
        assert_eq!(pacer.available(half), 100);
        // Ten seconds later the bucket holds one second's worth, no more.
        assert_eq!(pacer.available(t0 + Duration::from_secs(10)), 200);
    }

    #[test]
    fn live_events_pay_for_themselves() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(10, t0);
        pacer.spend(10, t0);
        pacer.credit(3);
        assert_eq!(pacer.available(t0), 3);
        pacer.spend(3, t0);
        assert_eq!(pacer.available(t0), 0);
        pacer.credit(5);
        pacer.forget_credit();
        assert_eq!(pacer.available(t0), 0);
    }

    #[test]
    fn waits_are_what_the_rate_needs() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(200, t0);
        assert_eq!(pacer.wait_for(100, t0), Duration::ZERO);
        pacer.spend(200, t0);
        let wait = pacer.wait_for(100, t0);
        assert!(
            (wait.as_secs_f64() - 0.5).abs() < 0.01,
            "100 events at 200/s: {wait:?}"
        );
        // Asking for more than the bucket holds waits only until it is full.
        assert!(pacer.wait_for(10_000, t0) <= Duration::from_secs(1));
    }
}
