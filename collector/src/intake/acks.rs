//! Pacing of the retained acknowledgements (pure: the time is passed in).
//!
//! After each committed batch the writer acknowledges every agent the batch touched, but at most
//! once per agent per `delivery.ack_interval`: an agent touched again within the interval waits,
//! and is acknowledged with the then-latest watermark when its interval expires — the last state
//! is never dropped. An ack that could not be queued for the broker waits one interval and is
//! tried again. At shutdown every waiting ack goes out at once.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use netmon_events::AgentId;
use tokio::time::Instant;

/// When each agent was last acknowledged, and which agents wait for their interval to expire.
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
}

impl AckPacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: HashMap::new(),
            pruned: None,
            waiting: HashMap::new(),
            queue: BTreeSet::new(),
        }
    }

    /// A commit touched `agents`: returns those to acknowledge now; the others wait.
    pub fn touched(&mut self, agents: Vec<AgentId>, now: Instant) -> Vec<AgentId> {
        let mut ready = Vec::new();
        for agent in agents {
            if self.waiting.contains_key(&agent) {
                continue;
            }
            match self.last.get(&agent) {
                Some(&last) if now < last + self.interval => {
                    self.wait(agent, last + self.interval);
                }
                _ => {
                    self.last.insert(agent.clone(), now);
                    ready.push(agent);
                }
            }
        }
        ready
    }

    /// The earliest time an agent's ack is due, if any waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.first().map(|(due, _)| *due)
    }

    /// The agents whose ack is due at `now`, marked as acknowledged now. Forgets agents not
    /// acknowledged for an interval (they go out at once when touched again), at most once an
    /// interval.
    pub fn due(&mut self, now: Instant) -> Vec<AgentId> {
        let mut ready = Vec::new();
        while let Some((due, _)) = self.queue.first()
            && *due <= now
        {
            let Some((_, agent)) = self.queue.pop_first() else {
                break;
            };
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

    /// Every waiting agent, regardless of its interval (at shutdown).
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

    /// `agent` waits until `due` (instead of any earlier wait).
    fn wait(&mut self, agent: AgentId, due: Instant) {
        if let Some(before) = self.waiting.insert(agent.clone(), due) {
            self.queue.remove(&(before, agent.clone()));
        }
        self.queue.insert((due, agent));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ids(names: &[&str]) -> Vec<AgentId> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn at_most_one_ack_per_interval_and_the_last_state_is_not_dropped() {
        let second = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut pacer = AckPacer::new(second);
        assert_eq!(pacer.touched(ids(&["a", "b"]), t0), ids(&["a", "b"]));
        assert_eq!(pacer.next_due(), None);
        // Touched again within the interval: waits until a second after its last ack.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(pacer.touched(ids(&["a"]), t1), ids(&[]));
        assert_eq!(pacer.touched(ids(&["a"]), t1), ids(&[]));
        assert_eq!(pacer.next_due(), Some(t0 + second));
        assert_eq!(pacer.due(t1), ids(&[]));
        assert_eq!(pacer.due(t0 + second), ids(&["a"]));
        assert_eq!(pacer.next_due(), None);
        // b was not touched again; after its interval it goes out at once.
        assert_eq!(pacer.touched(ids(&["b"]), t0 + second), ids(&["b"]));
        // a was acknowledged at t0 + 1 s: touched at t0 + 1.5 s it waits for t0 + 2 s.
        let t2 = t0 + Duration::from_millis(1500);
        assert_eq!(pacer.touched(ids(&["a"]), t2), ids(&[]));
        assert_eq!(pacer.next_due(), Some(t0 + 2 * second));
        assert_eq!(pacer.drain(), ids(&["a"]));
        assert_eq!(pacer.next_due(), None);
    }

    #[test]
    fn a_failed_ack_is_retried_after_an_interval() {
        let t0 = Instant::now();
        let mut pacer = AckPacer::new(Duration::from_secs(2));
        assert_eq!(pacer.touched(ids(&["a"]), t0), ids(&["a"]));
        pacer.retry("a".parse().unwrap(), t0);
        assert_eq!(pacer.next_due(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(pacer.due(t0 + Duration::from_secs(2)), ids(&["a"]));
    }

    #[test]
    fn a_country_of_waiting_agents_retried_one_by_one_each_goes_out_once() {
        // 100,000 agents waiting, each ack blocked and retried (the broker's request channel
        // full): every agent is handed out once per round, and the next due time follows.
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut pacer = AckPacer::new(second);
        let agents: Vec<AgentId> = (0..100_000)
            .map(|i| format!("lg-{i:06}").parse().unwrap())
            .collect();
        assert_eq!(pacer.touched(agents.clone(), t0).len(), 100_000);
        let t1 = t0 + Duration::from_millis(10);
        assert!(pacer.touched(agents.clone(), t1).is_empty());
        let due = pacer.due(t0 + second);
        assert_eq!(due.len(), 100_000);
        for agent in due {
            pacer.retry(agent, t0 + second);
            assert_eq!(pacer.next_due(), Some(t0 + 2 * second));
        }
        assert_eq!(pacer.due(t0 + 2 * second).len(), 100_000);
        assert_eq!(pacer.next_due(), None);
    }
}
