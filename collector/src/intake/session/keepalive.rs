//! When to ping the broker and when to give the connection up (pure: the time is passed in).
//!
//! MQTT's keep-alive binds the client to send something at least every `keep_alive`; the broker
//! drops a client silent for 1.5 times that. The collector pings when it has written nothing for
//! `keep_alive`, or heard nothing for as long, and gives the connection up when, a `keep_alive`
//! after a ping, it has still heard nothing at all: any packet proves the broker alive, since a
//! PINGRESP may queue behind thousands of publishes. While the intake waits for room in the
//! writer's channel it reads nothing, by choice: that wait never counts against the broker.

use std::time::Duration;

use tokio::time::Instant;

/// What to do at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing until [`KeepAlive::next_check`].
    Wait,
    /// Send a PINGREQ now.
    Ping,
    /// No answer within `keep_alive` of a ping: the connection is dead.
    Dead,
}

/// The keep-alive state of one connection.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    every: Duration,
    wrote: Instant,
    heard: Instant,
    /// A ping went out at this time and nothing was heard since.
    pinged: Option<Instant>,
    /// The intake is waiting for the writer and reads nothing.
    paused: bool,
}

impl KeepAlive {
    /// A connection opened at `now` (its CONNECT written, its CONNACK read).
    pub fn new(every: Duration, now: Instant) -> Self {
        Self {
            every,
            wrote: now,
            heard: now,
            pinged: None,
            paused: false,
        }
    }

    /// Something was written at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.wrote = self.wrote.max(now);
    }

    /// A packet was read at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.heard = self.heard.max(now);
        self.pinged = None;
    }

    /// The intake stops reading (`true`) until the writer takes a message, or reads again.
    /// Waiting for an answer starts over when reading does.
    pub fn pause(&mut self, paused: bool, now: Instant) {
        if self.paused && !paused {
            self.heard = self.heard.max(now);
            if self.pinged.is_some() {
                self.pinged = Some(now);
            }
        }
        self.paused = paused;
    }

    /// What to do at `now`; a [`Step::Ping`] counts as sent.
    pub fn poll(&mut self, now: Instant) -> Step {
        if !self.paused
            && let Some(pinged) = self.pinged
            && now >= pinged + self.every
        {
            return Step::Dead;
        }
        let quiet_out = now >= self.wrote + self.every;
        let quiet_in = !self.paused && self.pinged.is_none() && now >= self.heard + self.every;
        if quiet_out || quiet_in {
            self.wrote = now;
            if !self.paused && self.pinged.is_none() {
                self.pinged = Some(now);
            }
            return Step::Ping;
        }
        Step::Wait
    }

    /// The next time [`KeepAlive::poll`] may answer other than [`Step::Wait`].
    pub fn next_check(&self) -> Instant {
        let mut next = self.wrote + self.every;
        if !self.paused {
            next = next.min(match self.pinged {
                Some(pinged) => pinged + self.every,
                None => self.heard + self.every,
            });
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: Duration = Duration::from_secs(10);

    #[test]
    fn an_idle_connection_is_pinged_and_given_up_a_keep_alive_after_an_unanswered_ping() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(KA, t0);
        assert_eq!(ka.poll(t0 + KA / 2), Step::Wait);
        assert_eq!(ka.next_check(), t0 + KA);
        assert_eq!(ka.poll(t0 + KA), Step::Ping);
        assert_eq!(ka.next_check(), t0 + 2 * KA);
        assert_eq!(ka.poll(t0 + KA + KA / 2), Step::Wait);
        assert_eq!(ka.poll(t0 + 2 * KA), Step::Dead);
    }

    #[test]
    fn any_packet_heard_answers_a_ping() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(KA, t0);
        assert_eq!(ka.poll(t0 + KA), Step::Ping);
        // A publish (not the PINGRESP) arrives first: the broker is alive.
        ka.heard(t0 + KA + Duration::from_secs(1));
        assert_eq!(ka.poll(t0 + 2 * KA), Step::Ping);
        assert_eq!(ka.poll(t0 + 2 * KA + Duration::from_secs(1)), Step::Wait);
    }

    #[test]
    fn a_busy_connection_that_hears_and_writes_is_never_pinged() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(KA, t0);
        for second in 1..100 {
            let now = t0 + Duration::from_secs(second);
            ka.heard(now);
            ka.wrote(now);
            assert_eq!(ka.poll(now), Step::Wait);
        }
    }

    #[test]
    fn writing_nothing_for_a_keep_alive_pings_even_while_hearing() {
        // The broker drops a client that sends nothing for 1.5 keep-alives, whatever it reads.
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(KA, t0);
        ka.heard(t0 + KA - Duration::from_secs(1));
        assert_eq!(ka.poll(t0 + KA), Step::Ping);
        assert_eq!(ka.poll(t0 + KA), Step::Wait);
    }

    #[test]
    fn waiting_for_the_writer_never_counts_against_the_broker() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(KA, t0);
        assert_eq!(ka.poll(t0 + KA), Step::Ping);
        ka.pause(true, t0 + KA + Duration::from_secs(1));
        // A minute of waiting: pings keep the broker from dropping the collector, no verdict.
        let mut pings = 0;
        for second in 11..=71 {
            match ka.poll(t0 + Duration::from_secs(second)) {
                Step::Ping => pings += 1,
                Step::Wait => {}
                Step::Dead => panic!("given up at {second} s while not reading"),
            }
        }
        assert_eq!(pings, 6);
        // Reading again, the broker has a keep-alive to answer.
        let resumed = t0 + Duration::from_secs(72);
        ka.pause(false, resumed);
        ka.wrote(resumed);
        assert_eq!(ka.poll(resumed + KA - Duration::from_secs(1)), Step::Wait);
        assert_eq!(ka.poll(resumed + KA), Step::Dead);
    }
}
