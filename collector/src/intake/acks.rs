//! Pacing of the retained acknowledgements (pure: the time is passed in).
//!
//! After each committed batch the writer acknowledges every agent the batch touched, but at most
//! once per agent per `delivery.ack_interval`: an agent touched again within the interval waits,
//! and is acknowledged with the then-latest watermark when its interval expires — the last state
//! is never dropped. An ack that could not be queued for the broker waits one interval and is
//! tried again. At shutdown every waiting ack goes out at once.
//!
//! And at most `delivery.max_acks_per_s` a second for the whole fleet (a bucket holding one
//! second of them): every retained watermark is a publish the broker stores and the writer
//! builds, and a country's 100,000 agents each touched every few seconds would otherwise cost
//! as many publishes as the fleet sends messages. Past that rate agents wait their turn in the
//! order they came due, so each is acknowledged less often (its journal holds days) and none is
//! starved.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use netmon_events::AgentId;
use tokio::time::Instant;

/// One ack in the bucket's units (a billionth of an ack per nanosecond at one ack a second).
const ACK: u64 = 1_000_000_000;

/// When each agent was last acknowledged, and which agents wait for their interval to expire or
/// for their turn under the rate.
///
/// Every operation costs O(log n) in the waiting agents, or O(k log n) for the k it hands out: a
/// country's 100,000 agents all waiting, with the broker's request channel full so that each
/// ack is retried, must not make the writer quadratic (it did: `tests/bench/ingest.py`).
#[derive(Debug)]
pub struct AckPacer {
    interval: Duration,
    last: HashMap<AgentId, Instant>,
    /// When `last` was last cleared of agents not acknowledged for an interval.
    pruned: Option<Instant>,
    /// Agent → when its ack is due, and the same ordered by due time.
    waiting: HashMap<AgentId, Instant>,
    queue: BTreeSet<(Instant, AgentId)>,
    /// Acks a second, and what the bucket holds (in [`ACK`]s, at most one second's worth) as of
    /// `filled`.
    per_second: u64,
    bucket: u64,
    filled: Option<Instant>,
}

impl AckPacer {
    /// At most one ack per agent per `interval`, and at most `per_second` (at least 1) in all.
    pub fn new(interval: Duration, per_second: u32) -> Self {
        let per_second = u64::from(per_second.max(1));
        Self {
            interval,
            last: HashMap::new(),
            pruned: None,
            waiting: HashMap::new(),
            queue: BTreeSet::new(),
            per_second,
            bucket: per_second * ACK,
            filled: None,
        }
    }

    /// A commit touched `agents` at `now`: each is due at once, or an interval after its last
    /// ack; one already waiting keeps its place.
    pub fn touched(&mut self, agents: Vec<AgentId>, now: Instant) {
        for agent in agents {
            if self.waiting.contains_key(&agent) {
                continue;
            }
            let due = match self.last.get(&agent) {
                Some(&last) if now < last + self.interval => last + self.interval,
                _ => now,
            };
            self.wait(agent, due);
        }
    }

    /// When [`AckPacer::due`] next hands out an agent, if any waits: the earliest due time, or
    /// later when the rate is spent.
    pub fn next_due(&self) -> Option<Instant> {
        let (due, _) = self.queue.first()?;
        let Some(filled) = self.filled else {
            return Some(*due);
        };
        if self.bucket >= ACK {
            return Some(*due);
        }
        let wait_ns = (ACK - self.bucket).div_ceil(self.per_second);
        Some((*due).max(filled + Duration::from_nanos(wait_ns)))
    }

    /// The agents whose ack is due at `now`, as many as the rate allows, marked as acknowledged
    /// now. Forgets agents not acknowledged for an interval (they go out at once when touched
    /// again), at most once an interval.
    pub fn due(&mut self, now: Instant) -> Vec<AgentId> {
        self.fill(now);
        let mut ready = Vec::new();
        while self.bucket >= ACK
            && let Some((due, _)) = self.queue.first()
            && *due <= now
        {
            let Some((_, agent)) = self.queue.pop_first() else {
                break;
            };
            self.bucket -= ACK;
            self.waiting.remove(&agent);
            self.last.insert(agent.clone(), now);
            ready.push(agent);
        }
        ready.sort();
        let interval = self.interval;
        if self.pruned.is_none_or(|at| now >= at + interval) {
            self.last.retain(|_, last| now < *last + interval);
            self.pruned = Some(now);
        }
        ready
    }

    /// Every waiting agent, regardless of its interval and the rate (at shutdown).
    pub fn drain(&mut self) -> Vec<AgentId> {
        self.queue.clear();
        let mut all: Vec<AgentId> = self.waiting.drain().map(|(agent, _)| agent).collect();
        all.sort();
        all
    }

    /// The ack for `agent` could not be queued: try again one interval from `now`.
    pub fn retry(&mut self, agent: AgentId, now: Instant) {
        self.wait(agent, now + self.interval);
    }

    /// Agents waiting for their interval or their turn.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// `agent` waits until `due` (instead of any earlier wait).
    fn wait(&mut self, agent: AgentId, due: Instant) {
        if let Some(before) = self.waiting.insert(agent.clone(), due) {
            self.queue.remove(&(before, agent.clone()));
        }
        self.queue.insert((due, agent));
    }

    /// Adds what the rate gave since the bucket was last filled, up to one second's worth.
    fn fill(&mut self, now: Instant) {
        let full = self.per_second * ACK;
        if let Some(filled) = self.filled {
            let elapsed = now
                .saturating_duration_since(filled)
                .min(Duration::from_secs(1));
            let gained = u64::try_from(elapsed.as_nanos()).unwrap_or(ACK) * self.per_second;
            self.bucket = self.bucket.saturating_add(gained).min(full);
        }
        self.filled = Some(now);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ids(names: &[&str]) -> Vec<AgentId> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// A rate no test here reaches.
    const UNBOUNDED: u32 = 1_000_000;

    #[test]
    fn at_most_one_ack_per_interval_and_the_last_state_is_not_dropped() {
        let second = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut pacer = AckPacer::new(second, UNBOUNDED);
        pacer.touched(ids(&["b", "a"]), t0);
        assert_eq!(pacer.next_due(), Some(t0));
        assert_eq!(pacer.due(t0), ids(&["a", "b"]));
        assert_eq!(pacer.next_due(), None);
        // Touched again within the interval: waits until a second after its last ack.
        let t1 = t0 + Duration::from_millis(300);
        pacer.touched(ids(&["a"]), t1);
        pacer.touched(ids(&["a"]), t1);
        assert_eq!(pacer.next_due(), Some(t0 + second));
        assert_eq!(pacer.due(t1), ids(&[]));
        assert_eq!(pacer.due(t0 + second), ids(&["a"]));
        assert_eq!(pacer.next_due(), None);
        // b was not touched again; after its interval it goes out at once.
        pacer.touched(ids(&["b"]), t0 + second);
        assert_eq!(pacer.due(t0 + second), ids(&["b"]));
        // a was acknowledged at t0 + 1 s: touched at t0 + 1.5 s it waits for t0 + 2 s.
        let t2 = t0 + Duration::from_millis(1500);
        pacer.touched(ids(&["a"]), t2);
        assert_eq!(pacer.next_due(), Some(t0 + 2 * second));
        assert_eq!(pacer.drain(), ids(&["a"]));
        assert_eq!(pacer.next_due(), None);
    }

    #[test]
    fn a_failed_ack_is_retried_after_an_interval() {
        let t0 = Instant::now();
        let mut pacer = AckPacer::new(Duration::from_secs(2), UNBOUNDED);
        pacer.touched(ids(&["a"]), t0);
        assert_eq!(pacer.due(t0), ids(&["a"]));
        pacer.retry("a".parse().unwrap(), t0);
        assert_eq!(pacer.next_due(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(pacer.due(t0 + Duration::from_secs(2)), ids(&["a"]));
    }

    fn fleet(count: usize) -> Vec<AgentId> {
        (0..count)
            .map(|i| format!("lg-{i:06}").parse().unwrap())
            .collect()
    }

    #[test]
    fn a_country_of_waiting_agents_retried_one_by_one_each_goes_out_once() {
        // 100,000 agents waiting, each ack blocked and retried (the broker's request channel
        // full): every agent is handed out once per round, and the next due time follows.
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut pacer = AckPacer::new(second, UNBOUNDED);
        let agents = fleet(100_000);
        pacer.touched(agents.clone(), t0);
        assert_eq!(pacer.due(t0).len(), 100_000);
        let t1 = t0 + Duration::from_millis(10);
        pacer.touched(agents.clone(), t1);
        assert_eq!(pacer.due(t1), ids(&[]));
        let due = pacer.due(t0 + second);
        assert_eq!(due.len(), 100_000);
        for agent in due {
            pacer.retry(agent, t0 + second);
            assert_eq!(pacer.next_due(), Some(t0 + 2 * second));
        }
        assert_eq!(pacer.due(t0 + 2 * second).len(), 100_000);
        assert_eq!(pacer.next_due(), None);
    }

    #[test]
    fn past_the_rate_agents_wait_their_turn_in_the_order_they_came_due_each_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut pacer = AckPacer::new(Duration::from_secs(1), 1000);
        let agents = fleet(10_000);
        // Touched in two halves 1 ms apart; the later half again while it waits.
        pacer.touched(agents[5000..].to_vec(), t0);
        pacer.touched(agents[..5000].to_vec(), t0 + ms);
        pacer.touched(agents[5000..].to_vec(), t0 + ms);
        // A second's worth at once (the bucket starts full), then one a millisecond.
        let mut out = pacer.due(t0 + ms);
        assert_eq!(out, agents[5000..6000].to_vec());
        assert_eq!(pacer.next_due(), Some(t0 + 2 * ms));
        assert_eq!(pacer.due(t0 + ms + ms / 2), ids(&[]));
        let mut at = t0 + ms;
        while pacer.waiting() > 0 {
            at = pacer.next_due().unwrap().max(at + 100 * ms);
            let got = pacer.due(at);
            assert!(got.len() <= 101, "{} at once", got.len());
            out.extend(got);
            assert!(
                at < t0 + Duration::from_secs(10),
                "still {} waiting",
                pacer.waiting()
            );
        }
        assert_eq!(out.len(), 10_000);
        let mut sorted = out.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), out.len(), "an agent went out twice");
        // The half due first went out before the other.
        let position = |agent: &AgentId| out.iter().position(|a| a == agent).unwrap();
        assert!(position(&agents[9999]) < position(&agents[0]));
        // No faster than the rate: 1,000 at start, then one a millisecond.
        assert!(at >= t0 + Duration::from_millis(9000), "{:?}", at - t0);
    }
}
