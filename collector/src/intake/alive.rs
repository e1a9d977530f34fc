//! Liveness messages (pure): when each agent that sends them was last heard, and which have
//! missed theirs (`docs/adr/0016-liveness-messages.md`).
//!
//! An agent with `mqtt.alive_every` set publishes a tiny QoS 0 message on its `alive` topic at
//! that interval (the payload is the interval in milliseconds). They are not events: nothing is
//! stored, and they reach this book straight from the intake task, without queueing behind the
//! writer. An agent is missed once quiet for [`MISSED_INTERVALS`] of its intervals plus
//! [`SLACK`]; the writer then records `agent_went_silent` — in seconds, where the broker's last
//! will takes 7.5–13.5 s (Mosquitto 2.0 sweeps keep-alives every 5 s).
//!
//! The book judges only what it could have heard: after the collector's own (re)connection and
//! after the intake waited for the writer, every entry starts afresh ([`AliveBook::restart`]).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use netmon_events::{AgentId, Topic, TopicKind};
use rumqttc::Publish;

/// Intervals an agent may miss before it is declared silent.
pub const MISSED_INTERVALS: u32 = 2;
/// Added to the missed intervals: the jitter of a QoS 0 message through a loaded broker.
pub const SLACK: Duration = Duration::from_secs(1);
/// Most agents judged at once (a country is 100,000): a flood of made-up agent ids on `alive`
/// topics (a broker without the ACL) cannot grow the book beyond it. Ids that are not online
/// agents leave it at their deadline.
pub const MAX_AGENTS: usize = 250_000;
/// The intervals an agent may announce (`mqtt.alive_every` of the agent).
pub const EVERY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// When each agent was last heard and how often it promised to speak.
#[derive(Debug, Default)]
pub struct AliveBook {
    heard: HashMap<AgentId, Heard>,
}

#[derive(Debug, Clone, Copy)]
struct Heard {
    at: Instant,
    every: Duration,
}

impl AliveBook {
    /// `agent` spoke at `at` with `payload` (its interval in milliseconds, ASCII). A payload that
    /// is not an interval in [`EVERY`], or a new agent when the book holds [`MAX_AGENTS`],
    /// changes nothing: `false`.
    pub fn heard(&mut self, agent: AgentId, payload: &[u8], at: Instant) -> bool {
        let Some(every) = parse_every(payload) else {
            return false;
        };
        if self.heard.len() >= MAX_AGENTS && !self.heard.contains_key(&agent) {
            return false;
        }
        self.heard.insert(agent, Heard { at, every });
        true
    }

    /// Stops judging `agent` until it speaks again (it connected anew: its new connection may
    /// come without liveness messages).
    pub fn forget(&mut self, agent: &AgentId) {
        self.heard.remove(agent);
    }

    /// Everyone starts afresh at `at`: the collector could not have heard them before (it was
    /// connecting, or its intake was waiting for the writer).
    pub fn restart(&mut self, at: Instant) {
        for heard in self.heard.values_mut() {
            heard.at = heard.at.max(at);
        }
    }

    /// The agents missed by `now`. Each is judged again until [`AliveBook::forget`] (once its
    /// silence is recorded) or its next message.
    pub fn missed(&self, now: Instant) -> Vec<AgentId> {
        let mut missed: Vec<AgentId> = self
            .heard
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.at) > deadline(h.every))
            .map(|(agent, _)| agent.clone())
            .collect();
        missed.sort();
        missed
    }

    /// Agents being judged.
    pub fn len(&self) -> usize {
        self.heard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heard.is_empty()
    }
}

/// The book shared by the intake task and the writer. A panic while it was held leaves it
/// whole (every method finishes its update), so a poisoned lock is taken as it is.
pub fn lock(book: &Mutex<AliveBook>) -> MutexGuard<'_, AliveBook> {
    book.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the intake does with a message before the writer sees it: a liveness message goes to
/// the book and no further (`false`); a `status` makes the book forget the agent (a new
/// connection, which may not send liveness messages); everything goes on to the writer.
pub fn note(book: &Mutex<AliveBook>, message: &Publish, at: Instant) -> bool {
    let Ok(topic) = Topic::parse(&message.topic) else {
        return true;
    };
    let mut book = lock(book);
    match topic.kind {
        TopicKind::Alive => {
            if !book.heard(topic.agent, &message.payload, at) {
                tracing::debug!(
                    topic = message.topic,
                    bytes = message.payload.len(),
                    "liveness message ignored: its payload is not an interval of 1000 to 60000 ms"
                );
            }
            false
        }
        TopicKind::Status => {
            book.forget(&topic.agent);
            true
        }
        _ => true,
    }
}

/// How long an agent speaking every `every` may stay quiet.
pub fn deadline(every: Duration) -> Duration {
    every * MISSED_INTERVALS + SLACK
}

/// The interval a liveness payload announces: whole milliseconds in ASCII, within [`EVERY`].
pub fn parse_every(payload: &[u8]) -> Option<Duration> {
    if payload.is_empty() || payload.len() > 5 || !payload.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let ms: u64 = std::str::from_utf8(payload).ok()?.parse().ok()?;
    let every = Duration::from_millis(ms);
    (EVERY.0..=EVERY.1).contains(&every).then_some(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str) -> AgentId {
        AgentId::new(name).unwrap()
    }

    #[test]
    fn an_agent_is_missed_after_two_intervals_and_the_slack_until_recorded() {
        let t0 = Instant::now();
        let mut book = AliveBook::default();
        assert!(book.heard(agent("ubnd"), b"2000", t0));
        assert!(book.heard(agent("thon-1"), b"60000", t0));
        assert!(book.missed(t0 + Duration::from_millis(5_000)).is_empty());
        let missed = book.missed(t0 + Duration::from_millis(5_001));
        assert_eq!(missed, vec![agent("ubnd")]);
        assert_eq!(
            book.missed(t0 + Duration::from_secs(6)),
            missed,
            "until recorded"
        );
        book.forget(&missed[0]);
        assert!(book.missed(t0 + Duration::from_secs(6)).is_empty());
        assert_eq!(book.len(), 1, "the slow one is still judged");
        assert_eq!(
            book.missed(t0 + Duration::from_secs(122)),
            vec![agent("thon-1")]
        );
    }

    #[test]
    fn each_message_moves_the_deadline() {
        let t0 = Instant::now();
        let mut book = AliveBook::default();
        for s in 0..10 {
            book.heard(agent("ubnd"), b"1000", t0 + Duration::from_secs(s));
            assert!(
                book.missed(t0 + Duration::from_secs(s) + Duration::from_millis(2_900))
                    .is_empty()
            );
        }
        assert_eq!(
            book.missed(t0 + Duration::from_millis(12_001)),
            vec![agent("ubnd")]
        );
    }

    #[test]
    fn a_restart_gives_everyone_a_fresh_start_and_forget_stops_judging() {
        let t0 = Instant::now();
        let mut book = AliveBook::default();
        book.heard(agent("a"), b"1000", t0);
        book.heard(agent("b"), b"1000", t0);
        book.restart(t0 + Duration::from_secs(10));
        assert!(book.missed(t0 + Duration::from_secs(12)).is_empty());
        book.forget(&agent("b"));
        assert_eq!(book.missed(t0 + Duration::from_secs(14)), vec![agent("a")]);
    }

    #[test]
    fn payloads_that_are_not_an_interval_are_ignored() {
        let t0 = Instant::now();
        let mut book = AliveBook::default();
        for bad in [
            &b""[..],
            b"999",
            b"60001",
            b"-1000",
            b"1e3",
            b" 1000",
            b"99999999999999999999",
            b"\xff\xfe",
            b"{\"every_ms\":1000}",
        ] {
            assert!(!book.heard(agent("a"), bad, t0), "{bad:?}");
        }
        assert!(book.is_empty());
        assert_eq!(parse_every(b"1000"), Some(Duration::from_secs(1)));
        assert_eq!(parse_every(b"60000"), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_flood_of_made_up_agents_is_bounded() {
        let t0 = Instant::now();
        let mut book = AliveBook::default();
        for i in 0..MAX_AGENTS + 10 {
            book.heard(agent(&format!("a{i}")), b"1000", t0);
        }
        assert_eq!(book.len(), MAX_AGENTS);
        assert!(
            book.heard(agent("a0"), b"1000", t0),
            "known agents are still heard"
        );
        assert!(!book.heard(agent("new"), b"1000", t0));
    }
}
