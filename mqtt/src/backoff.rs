//! How long an MQTT event loop waits before it reconnects (pure: no clock, no sleep).

use std::time::Duration;

/// The waits between reconnect attempts: 0.5 s, 1 s, 2 s, … doubling up to 30 s, back to 0.5 s
/// after a successful connection. The event loop sleeps [`Backoff::next_wait`] after each failed poll
/// and calls [`Backoff::reset`] on every ConnAck.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// The first wait, and the wait after a reset.
    pub const MIN: Duration = Duration::from_millis(500);
    /// The longest wait.
    pub const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Backoff {
        Backoff { next: Self::MIN }
    }

    /// The wait before the next attempt; each call doubles the following one, up to [`Self::MAX`].
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(Self::MAX);
        wait
    }

    /// A connection succeeded: the next failure waits [`Self::MIN`] again.
    pub fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_half_a_second_to_thirty_and_resets() {
        let mut backoff = Backoff::new();
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
        assert_eq!(Backoff::default().next_wait(), Backoff::MIN);
    }
}
