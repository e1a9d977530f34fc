//! The outbox: recorded events waiting to be published, in memory, bounded.
//!
//! The recorder pushes, the publisher takes batches. When the broker is unreachable for long the
//! outbox fills; then the oldest events are dropped and the drops are counted and logged at WARN.
//! This is the seam where the durable on-disk journal will go: the recorder will append to the
//! journal, and the publisher will read from it, with the same `push`/`take_batch`/`requeue`
//! shape.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netmon_events::{Envelope, encode_batch};
use tokio::sync::Notify;
use tracing::warn;

/// How many events the outbox holds before it drops the oldest.
pub const OUTBOX_CAPACITY: usize = 10_000;

/// Most events in one MQTT message.
pub const BATCH_EVENTS: usize = 100;

/// Target size of one MQTT message, in bytes (the collector accepts up to 256 KiB).
pub const BATCH_BYTES: usize = 64 * 1024;

/// Drops are logged at most this often (with the running total).
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// A bounded queue of envelopes with drop-oldest overflow.
#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    inner: Mutex<Inner>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<Envelope>,
    dropped: u64,
    /// When the last drop warning was logged.
    last_warning: Option<Instant>,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the queue inconsistent: keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Appends an event; drops the oldest when full.
    pub fn push(&self, envelope: Envelope) {
        {
            let mut inner = self.lock();
            if inner.events.len() >= self.capacity {
                if let Some(lost) = inner.events.pop_front() {
                    inner.dropped += 1;
                    let now = Instant::now();
                    let due = inner
                        .last_warning
                        .is_none_or(|last| now.duration_since(last) >= DROP_WARNING_EVERY);
                    if due {
                        inner.last_warning = Some(now);
                        warn!(
                            dropped_total = inner.dropped,
                            oldest_lost_seq = lost.seq,
                            capacity = self.capacity,
                            "outbox full: dropping the oldest unpublished events"
                        );
                    }
                }
            }
            inner.events.push_back(envelope);
        }
        self.ready.notify_one();
    }

    /// Puts events that were handed to MQTT but not confirmed back at the front, in order.
    pub fn requeue(&self, envelopes: Vec<Envelope>) {
        if envelopes.is_empty() {
            return;
        }
        {
            let mut inner = self.lock();
            for envelope in envelopes.into_iter().rev() {
                inner.events.push_front(envelope);
            }
            while inner.events.len() > self.capacity {
                inner.events.pop_front();
                inner.dropped += 1;
            }
        }
        self.ready.notify_one();
    }

    /// Takes the oldest events as one encoded `events` payload: up to [`BATCH_EVENTS`] events and
    /// about [`BATCH_BYTES`] bytes (a single larger event still goes alone). `None` when empty.
    pub fn take_batch(&self) -> Option<(Vec<u8>, usize)> {
        let mut inner = self.lock();
        let take = inner.events.len().min(BATCH_EVENTS);
        if take == 0 {
            return None;
        }
        let mut batch: Vec<Envelope> = inner.events.drain(..take).collect();
        loop {
            let payload = encode_batch(&batch);
            if payload.len() <= BATCH_BYTES || batch.len() == 1 {
                return Some((payload, batch.len()));
            }
            let tail = batch.split_off(batch.len() / 2);
            for envelope in tail.into_iter().rev() {
                inner.events.push_front(envelope);
            }
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events dropped since start.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Resolves after the next `push`/`requeue` (or at once if one happened since the last wait).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use netmon_events::{Event, decode_batch};

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            v: 1,
            agent: "a".parse().unwrap(),
            boot: "b".parse().unwrap(),
            seq,
            time: chrono::Utc::now(),
            mono_ms: seq,
            event: Event::AgentHeartbeat {
                uptime_s: seq,
                backlog: 0,
            },
        }
    }

    fn seqs(payload: &[u8]) -> Vec<u64> {
        decode_batch(payload)
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.unwrap().seq)
            .collect()
    }

    #[test]
    fn drops_oldest_and_counts() {
        let outbox = Outbox::new(3);
        for seq in 1..=5 {
            outbox.push(envelope(seq));
        }
        assert_eq!((outbox.len(), outbox.dropped()), (3, 2));
        let (payload, n) = outbox.take_batch().unwrap();
        assert_eq!((seqs(&payload), n), (vec![3, 4, 5], 3));
        assert!(outbox.take_batch().is_none());
    }

    #[test]
    fn batches_are_bounded_and_requeue_keeps_order() {
        let outbox = Outbox::new(1000);
        for seq in 1..=250 {
            outbox.push(envelope(seq));
        }
        let (first, n) = outbox.take_batch().unwrap();
        assert_eq!(n, BATCH_EVENTS);
        assert_eq!(seqs(&first), (1..=100).collect::<Vec<_>>());
        let (second, _) = outbox.take_batch().unwrap();
        // Both batches were lost with a connection: they go back in front, in order.
        let back = decode_batch(&first)
            .unwrap()
            .events
            .into_iter()
            .chain(decode_batch(&second).unwrap().events)
            .map(|e| e.unwrap())
            .collect();
        outbox.requeue(back);
        let mut all = Vec::new();
        while let Some((payload, _)) = outbox.take_batch() {
            assert!(payload.len() <= BATCH_BYTES);
            all.extend(seqs(&payload));
        }
        assert_eq!(all, (1..=250).collect::<Vec<_>>());
    }
}
