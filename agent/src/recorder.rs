//! The recorder: gives every event its envelope (schema version, agent, boot, gap-free `seq`,
//! wall time, monotonic time) and appends it to the journal, before anything is published. It
//! records `agent_started` first and `targets_described` second (seq [`DESCRIPTION_SEQ`]: the
//! boot's targets and the keys compact batches name them by), `agent_heartbeat` every heartbeat
//! interval (with the journal's backlog), and a `journal_overflowed` for every range of
//! unacknowledged events an append had to drop. It also fsyncs the journal every `journal.fsync_interval` and when it ends.
//!
//! [`Recorder`] is the pure part (times are passed in); [`Clock`] reads the clocks;
//! [`run_recorder`] is the task. A journal that cannot be written ends the task with an error
//! (and the agent with it): the events recorded so far are durable, and the next start begins a
//! new boot, so the collector sees no gap it cannot explain.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use netmon_events::{AgentId, BootId, DescribedTarget, Envelope, Event, SCHEMA_VERSION};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::debug;

use crate::journal::Journal;
use crate::link::RoundTime;

/// The seq of a boot's `targets_described`: recorded right after `agent_started`, before any
/// `journal_overflowed` their appends cause.
pub const DESCRIPTION_SEQ: u64 = 2;

/// Assigns envelopes: `seq` counts from 1 without gaps for one boot.
#[derive(Debug)]
pub struct Recorder {
    agent: AgentId,
    boot: BootId,
    next_seq: u64,
}

impl Recorder {
    pub fn new(agent: AgentId, boot: BootId) -> Recorder {
        Recorder {
            agent,
            boot,
            next_seq: 1,
        }
    }

    /// Wraps `event`; `time` is cut to whole milliseconds (the precision of the wire format).
    pub fn record(&mut self, event: Event, time: DateTime<Utc>, mono_ms: u64) -> Envelope {
        let seq = self.next_seq;
        self.next_seq += 1;
        let time = DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time);
        Envelope {
            v: SCHEMA_VERSION,
            agent: self.agent.clone(),
            boot: self.boot.clone(),
            seq,
            time,
            mono_ms,
            event,
        }
    }

    /// The `seq` the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

/// The agent's two clocks: the wall clock (may be wrong) and time since start (monotonic).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Starts counting now.
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> RoundTime {
        RoundTime {
            wall: Utc::now(),
            mono_ms: u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.start.elapsed()
    }
}

/// What the recorder task needs.
#[derive(Debug)]
pub struct RecorderTask {
    pub recorder: Recorder,
    pub clock: Clock,
    pub heartbeat: Duration,
    pub fsync_interval: Duration,
    /// How many targets the agent probes.
    pub targets: u32,
    /// The body of `targets_described`: the targets keyed 1, 2, 3 … in config order.
    pub described: Vec<DescribedTarget>,
    pub journal: Arc<Journal>,
}

/// Records `events` in order, then a `journal_overflowed` for every range their appends dropped.
fn record(
    recorder: &mut Recorder,
    clock: &Clock,
    journal: &Journal,
    events: Vec<Event>,
) -> anyhow::Result<()> {
    let mut queue = VecDeque::from(events);
    while let Some(event) = queue.pop_front() {
        let now = clock.now();
        let envelope = recorder.record(event, now.wall, now.mono_ms);
        debug!(
            seq = envelope.seq,
            kind = envelope.event.type_name(),
            "event recorded"
        );
        let lost = journal
            .append(&envelope)
            .with_context(|| format!("appending to the journal in {}", journal.dir().display()))?;
        queue.extend(lost.into_iter().map(|run| Event::JournalOverflowed {
            count: run.count(),
            dropped_boot: run.boot,
            first_seq: run.first_seq,
            last_seq: run.last_seq,
        }));
    }
    Ok(())
}

/// Records `agent_started`, then every event from `events` and a heartbeat every interval, until
/// `events` closes (its senders stop first at shutdown, so everything sent is recorded); then
/// fsyncs the journal.
pub async fn run_recorder(
    task: RecorderTask,
    mut events: mpsc::Receiver<Event>,
) -> anyhow::Result<()> {
    let RecorderTask {
        mut recorder,
        clock,
        heartbeat,
        fsync_interval,
        targets,
        described,
        journal,
    } = task;
    let version = env!("CARGO_PKG_VERSION").to_owned();
    record(
        &mut recorder,
        &clock,
        &journal,
        vec![
            Event::AgentStarted { version, targets },
            Event::TargetsDescribed { targets: described },
        ],
    )?;
    let start = tokio::time::Instant::now();
    let mut beats = tokio::time::interval_at(start + heartbeat, heartbeat);
    beats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut syncs = tokio::time::interval_at(start + fsync_interval, fsync_interval);
    syncs.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = beats.tick() => Event::AgentHeartbeat {
                uptime_s: clock.uptime().as_secs(),
                backlog: journal.backlog().events,
            },
            _ = syncs.tick() => {
                journal.sync().context("syncing the journal")?;
                continue;
            }
        };
        record(&mut recorder, &clock, &journal, vec![event])?;
    }
    journal.sync().context("syncing the journal at shutdown")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seq_is_gap_free_from_one_and_time_is_in_milliseconds() {
        let mut recorder = Recorder::new("a".parse().unwrap(), "b".parse().unwrap());
        let t = DateTime::parse_from_rfc3339("2026-11-23T02:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let seqs: Vec<u64> = (0..5)
            .map(|i| {
                let e = recorder.record(
                    Event::AgentHeartbeat {
                        uptime_s: i,
                        backlog: 0,
                    },
                    t,
                    i,
                );
                assert_eq!(e.time.timestamp_subsec_nanos(), 123_000_000);
                assert_eq!(e.v, SCHEMA_VERSION);
                e.validate().unwrap();
                e.seq
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(recorder.next_seq(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_with_agent_started_and_beats_into_the_journal() {
        let dir = std::env::temp_dir().join(format!("netmon-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (journal, _) = Journal::open(&dir, 1 << 20).unwrap();
        let journal = Arc::new(journal);
        let (tx, rx) = mpsc::channel(8);
        let targets = [
            netmon_events::testing::target("Cổng thôn", "192.168.1.1"),
            netmon_events::testing::target("UBND xã", "10.20.0.1"),
            netmon_events::testing::target("Tỉnh", "10.36.0.10"),
        ];
        let task = RecorderTask {
            recorder: Recorder::new("a".parse().unwrap(), "b".parse().unwrap()),
            clock: Clock::start(),
            heartbeat: Duration::from_secs(10),
            fsync_interval: Duration::from_secs(1),
            targets: 3,
            described: DescribedTarget::numbered(&targets),
            journal: journal.clone(),
        };
        let handle = tokio::spawn(run_recorder(task, rx));
        // With the clock paused, time only moves when every task is idle: 25 s = two beats.
        tokio::time::sleep(Duration::from_secs(25)).await;
        tx.send(Event::AgentHeartbeat {
            uptime_s: 99,
            backlog: 0,
        })
        .await
        .unwrap();
        drop(tx);
        handle.await.unwrap().unwrap();
        let events = journal.select(0, 100, 1 << 20).unwrap().events;
        let kinds: Vec<_> = events.iter().map(|e| e.event.type_name()).collect();
        assert_eq!(
            kinds,
            [
                "agent_started",
                "targets_described",
                "agent_heartbeat",
                "agent_heartbeat",
                "agent_heartbeat"
            ]
        );
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(matches!(
            events[0].event,
            Event::AgentStarted { targets: 3, .. }
        ));
        assert_eq!(events[1].seq, DESCRIPTION_SEQ);
        assert_eq!(
            events[1].event,
            Event::TargetsDescribed {
                targets: DescribedTarget::numbered(&targets)
            }
        );
        // The first beat counts both as backlog (nothing is acknowledged).
        assert!(matches!(
            events[2].event,
            Event::AgentHeartbeat { backlog: 2, .. }
        ));
        drop(journal);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
