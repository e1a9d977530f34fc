//! Waits between retries, doubling from a minimum up to a cap (pure: no clock, no sleep).

use std::time::Duration;

/// Waits between retries: `min`, `2·min`, `4·min`, … up to `max`. [`Backoff::nth`] is the pure rule
/// (the wait before retry number `attempt`, counted from 0); [`Backoff::next_wait`] and
/// [`Backoff::reset`] keep the count for a loop. The MQTT event loops use
/// [`Backoff::reconnect`] (0.5 s doubling to 30 s): they sleep [`Backoff::next_wait`] after each
/// failed poll and call [`Backoff::reset`] on every ConnAck.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Waits from `min` doubling up to `max` (`max` wins if it is the smaller).
    pub const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            attempt: 0,
        }
    }

    /// The MQTT reconnect waits: 0.5 s doubling to 30 s.
    pub const fn reconnect() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }

    /// The wait before retry number `attempt` (0 for the first): `min · 2^attempt`, at most
    /// `max`. Never overflows: large attempts give `max`.
    pub fn nth(&self, attempt: u32) -> Duration {
        let mut wait = self.min.min(self.max);
        // At most ~94 doublings take 1 ns past any cap, so the loop is short for any attempt.
        for _ in 0..attempt {
            if wait >= self.max || wait.is_zero() {
                break;
            }
            wait = wait.saturating_mul(2).min(self.max);
        }
        wait
    }

    /// The wait before the next attempt; each call doubles the following one, up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.nth(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        wait
    }

    /// An attempt succeeded: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_doubles_from_half_a_second_to_thirty_and_resets() {
        let mut backoff = Backoff::reconnect();
        let waits: Vec<u128> = (0..10).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(
            waits,
            [
                500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000
            ]
        );
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(500));
        assert_eq!(backoff.next_wait(), Duration::from_secs(1));
    }

    #[test]
    fn nth_at_the_edges() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(600));
        assert_eq!(b.nth(0), Duration::from_secs(5));
        assert_eq!(b.nth(1), Duration::from_secs(10));
        assert_eq!(b.nth(6), Duration::from_secs(320));
        assert_eq!(b.nth(7), Duration::from_secs(600));
        assert_eq!(b.nth(31), Duration::from_secs(600));
        assert_eq!(b.nth(32), Duration::from_secs(600));
        assert_eq!(b.nth(1000), Duration::from_secs(600));
        assert_eq!(b.nth(u32::MAX), Duration::from_secs(600));
    }

    #[test]
    fn nth_never_overflows_even_with_the_largest_durations() {
        let b = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(b.nth(0), Duration::MAX);
        assert_eq!(b.nth(u32::MAX), Duration::MAX);
        let tiny = Backoff::new(Duration::from_nanos(1), Duration::MAX);
        assert_eq!(tiny.nth(31), Duration::from_nanos(1 << 31));
        assert_eq!(tiny.nth(40), Duration::from_nanos(1 << 40));
        assert_eq!(tiny.nth(u32::MAX), Duration::MAX);
        let zero = Backoff::new(Duration::ZERO, Duration::from_secs(1));
        assert_eq!(zero.nth(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn max_wins_when_it_is_below_min() {
        let b = Backoff::new(Duration::from_secs(10), Duration::from_secs(3));
        assert_eq!(b.nth(0), Duration::from_secs(3));
    }

    #[test]
    fn next_wait_saturates_its_count() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        b.attempt = u32::MAX;
        assert_eq!(b.next_wait(), Duration::from_secs(60));
        assert_eq!(b.next_wait(), Duration::from_secs(60));
    }
}
