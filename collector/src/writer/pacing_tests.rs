//! The pacing driven by explicit time. [`Run`] stands in for the writer: it executes the actions
//! the way `writer/mod.rs` does, against a request channel with a given room, and its clock moves
//! only when the test says so (or by what a snapshot or a rule run costs).
#![allow(clippy::unwrap_used)]

use super::*;

/// A pacing under test, its clock and what it did.
struct Run {
    pacing: Pacing,
    t0: Instant,
    now: Instant,
    /// Free places in the client's request channel.
    room: usize,
    /// Every action handed out, with its time in ms from the start.
    log: Vec<(u64, Action)>,
    /// The acknowledgements that went into the channel, in order.
    acked: Vec<u16>,
    /// The watermarks that went into the channel, in order.
    watermarks: Vec<AgentId>,
    /// What one snapshot and one rule run cost (the clock moves by it).
    snapshot_cost: Duration,
    alert_cost: Duration,
}

impl Run {
    fn new(ack_interval: Duration) -> Self {
        Self::with_rate(ack_interval, 1_000_000)
    }

    /// At most `acks_per_s` watermarks a second.
    fn with_rate(ack_interval: Duration, acks_per_s: u32) -> Self {
        let t0 = Instant::now();
        let mut run = Self {
            pacing: Pacing::new(t0, ack_interval, acks_per_s),
            t0,
            now: t0,
            room: usize::MAX,
            log: Vec::new(),
            acked: Vec::new(),
            watermarks: Vec::new(),
            snapshot_cost: Duration::ZERO,
            alert_cost: Duration::ZERO,
        };
        run.drain();
        run
    }

    fn ms(&self, t: Instant) -> u64 {
        u64::try_from((t - self.t0).as_millis()).unwrap()
    }

    /// Executes what is due now, as the writer's `act` does.
    fn drain(&mut self) {
        while let Some(action) = self.pacing.poll(self.now) {
            self.log.push((self.ms(self.now), action.clone()));
            match action {
                Action::Tick => {}
                Action::PublishSnapshot => {
                    let started = self.now;
                    self.now += self.snapshot_cost;
                    self.pacing.published(started, self.now);
                }
                Action::EvaluateAlerts => {
                    let started = self.now;
                    self.now += self.alert_cost;
                    self.pacing.evaluated(started, self.now);
                }
                Action::Ack(pkid) if self.room > 0 => {
                    self.room -= 1;
                    self.acked.push(pkid);
                }
                Action::Ack(pkid) => self.pacing.ack_blocked(pkid, self.now),
                Action::Watermark(agent) if self.room > 0 => {
                    self.room -= 1;
                    self.watermarks.push(agent);
                }
                Action::Watermark(agent) => self.pacing.watermark_blocked(agent, self.now),
            }
        }
    }

    /// Sleeps to each deadline until `ms` from the start, executing what comes due.
    fn until(&mut self, ms: u64) -> &mut Self {
        let end = self.t0 + Duration::from_millis(ms);
        loop {
            self.drain();
            let due = self.pacing.next_deadline();
            if due > end {
                break;
            }
            assert!(due > self.now, "a deadline in the past after a drain");
            self.now = due;
        }
        self.now = self.now.max(end);
        self.drain();
        self
    }

    /// A batch with these packet ids committed now, touching `agents`.
    fn commit(&mut self, acks: &[u16], agents: &[&str]) -> &mut Self {
        self.pacing
            .on_batch(self.now, acks.iter().copied(), ids(agents));
        self.drain();
        self
    }

    fn changed(&mut self) -> &mut Self {
        self.pacing.changed();
        self.drain();
        self
    }

    /// The times (ms) at which `action` was handed out.
    fn times(&self, action: &Action) -> Vec<u64> {
        self.log
            .iter()
            .filter(|(_, a)| a == action)
            .map(|(t, _)| *t)
            .collect()
    }

    /// The acknowledgements handed out, in order (sent or not).
    fn ack_attempts(&self) -> Vec<(u64, u16)> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Ack(pkid) => Some((*t, *pkid)),
                _ => None,
            })
            .collect()
    }
}

fn ids(names: &[&str]) -> Vec<AgentId> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn at_start_a_snapshot_a_tick_and_a_rule_run_are_due_at_once() {
    let run = Run::new(SECOND);
    assert_eq!(
        run.log,
        [
            (0, Action::PublishSnapshot),
            (0, Action::Tick),
            (0, Action::EvaluateAlerts)
        ]
    );
}

#[test]
fn acks_that_find_the_channel_full_wait_in_order_and_none_is_lost() {
    let mut run = Run::new(SECOND);
    run.room = 2;
    run.commit(&[1, 2, 3], &[]);
    assert_eq!(run.acked, [1, 2]);
    assert_eq!(run.pacing.waiting_acks(), 1);
    // A later commit while the channel is still full: the waiting one is tried first, again
    // blocked, and the new ones queue behind it.
    run.until(1).commit(&[4, 5], &[]);
    assert_eq!(run.pacing.waiting_acks(), 3);
    // Room again at 3 ms; the retry is ACK_RETRY after the last attempt (1 ms), at 6 ms.
    run.until(3).room = 10;
    run.until(5);
    assert_eq!(run.acked, [1, 2], "nothing before the retry");
    run.until(6);
    assert_eq!(run.acked, [1, 2, 3, 4, 5]);
    assert_eq!(run.pacing.waiting_acks(), 0);
    assert_eq!(
        run.ack_attempts(),
        [(0, 1), (0, 2), (0, 3), (1, 3), (6, 3), (6, 4), (6, 5)]
    );
}

#[test]
fn blocked_acks_are_retried_every_ack_retry_until_there_is_room() {
    let mut run = Run::new(SECOND);
    run.room = 0;
    run.commit(&[7, 8], &[]).until(22);
    // Only the first is tried, every 5 ms; the second never overtakes it.
    assert_eq!(
        run.ack_attempts(),
        [(0, 7), (5, 7), (10, 7), (15, 7), (20, 7)]
    );
    run.room = 1;
    run.until(25);
    assert_eq!(run.acked, [7]);
    run.room = 1;
    run.until(30);
    assert_eq!(run.acked, [7, 8]);
    // Next: the snapshot the commit made due (100 ms after the first).
    assert_eq!(
        run.pacing.next_deadline(),
        run.t0 + Duration::from_millis(100)
    );
}

#[test]
fn nothing_is_acknowledged_before_its_commit() {
    let mut run = Run::new(SECOND);
    // Changes that are not commits (a failed commit, silence, a command) and ten seconds of
    // ticks: snapshots and rule runs, never an acknowledgement.
    for ms in (0..10_000).step_by(70) {
        run.until(ms).changed();
    }
    assert!(run.ack_attempts().is_empty(), "{:?}", run.log);
    assert_eq!(run.times(&Action::Tick).len(), 10);
    // The commit: its acknowledgements at once, after the snapshot it makes due.
    run.until(10_149);
    let before = run.log.len();
    run.until(10_150).commit(&[40, 41], &[]);
    assert_eq!(
        run.log[before..],
        [
            (10_150, Action::PublishSnapshot),
            (10_150, Action::Ack(40)),
            (10_150, Action::Ack(41)),
            (10_150, Action::EvaluateAlerts),
        ]
    );
}

#[test]
fn snapshots_at_most_every_snapshot_every_and_the_last_change_is_published() {
    let mut run = Run::new(SECOND);
    // A change every millisecond for a second.
    for ms in 1..=1000 {
        run.until(ms).changed();
    }
    let times = run.times(&Action::PublishSnapshot);
    assert_eq!(
        times,
        [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
    );
    // Then quiet: nothing is left unpublished, and nothing more is published.
    run.changed();
    run.until(1100);
    assert_eq!(run.times(&Action::PublishSnapshot).last(), Some(&1100));
    run.until(5000);
    assert_eq!(run.times(&Action::PublishSnapshot).len(), 12);
}

#[test]
fn a_costly_snapshot_is_spaced_by_busy_share() {
    let mut run = Run::new(SECOND);
    run.snapshot_cost = Duration::from_millis(30);
    for ms in (40..3000).step_by(7) {
        run.until(ms).commit(&[], &[]);
    }
    let times = run.times(&Action::PublishSnapshot);
    assert!(times.len() > 5, "{times:?}");
    // The first (at the start) cost nothing; from the second on, each starts 30 ms of work and
    // 300 ms (BUSY_SHARE × 30 ms) after the one before.
    for pair in times[1..].windows(2) {
        assert!(pair[1] - pair[0] >= 330, "{times:?}");
        assert!(pair[1] - pair[0] < 340, "{times:?}");
    }
}

#[test]
fn alert_rules_run_after_batches_and_every_alert_tick_spaced_by_busy_share() {
    // Cheap rules: after every batch, and every ALERT_TICK when nothing comes.
    let mut run = Run::new(SECOND);
    run.until(1000);
    assert_eq!(run.times(&Action::EvaluateAlerts), [0, 250, 500, 750, 1000]);
    run.until(1010)
        .commit(&[1], &[])
        .until(1020)
        .commit(&[2], &[]);
    assert_eq!(
        run.times(&Action::EvaluateAlerts)[5..],
        [1010, 1020],
        "after each batch"
    );

    // Rules that take 40 ms: at most one run per 400 ms after each, however often batches come.
    let mut run = Run::new(SECOND);
    run.alert_cost = Duration::from_millis(40);
    for ms in (0..4000).step_by(10) {
        run.until(ms).commit(&[], &[]);
    }
    let times = run.times(&Action::EvaluateAlerts);
    assert!(times.len() >= 8, "{times:?}");
    // The first (at the start) cost nothing.
    for pair in times[1..].windows(2) {
        assert!(pair[1] - pair[0] >= 440, "{times:?}");
    }
}

#[test]
fn ticks_every_second_under_load_and_missed_ticks_are_not_made_up() {
    let mut run = Run::new(SECOND);
    for ms in (0..3500).step_by(3) {
        run.until(ms).commit(&[], &[]);
    }
    assert_eq!(run.times(&Action::Tick), [0, 1000, 2000, 3000]);
    // The writer was busy for 2.5 s (a long commit): one tick at once, the next a second later.
    run.now += Duration::from_millis(2500);
    run.until(6000);
    assert_eq!(run.times(&Action::Tick)[4..], [5998]);
    run.until(7000);
    assert_eq!(run.times(&Action::Tick)[4..], [5998, 6998]);
}

#[test]
fn watermarks_at_most_once_per_interval_with_the_latest_state_and_retried_when_blocked() {
    let mut run = Run::new(SECOND);
    run.commit(&[], &["a", "b"]);
    assert_eq!(run.watermarks, ids(&["a", "b"]));
    // a touched again twice within its interval: once, when the interval expires.
    run.until(300)
        .commit(&[], &["a"])
        .until(600)
        .commit(&[], &["a"]);
    run.until(999);
    assert_eq!(run.watermarks.len(), 2);
    run.until(1000);
    assert_eq!(run.watermarks, ids(&["a", "b", "a"]));
    // A watermark that finds the channel full waits an interval.
    run.room = 0;
    run.until(2500).commit(&[], &["b"]);
    run.room = usize::MAX;
    run.until(3499);
    assert_eq!(run.watermarks.len(), 3);
    run.until(3500);
    assert_eq!(run.watermarks, ids(&["a", "b", "a", "b"]));
}

#[test]
fn watermarks_past_the_rate_wait_their_turn_and_each_goes_out_once() {
    // 3,000 agents touched at once, then again every 100 ms, at 1,000 watermarks a second.
    let mut run = Run::with_rate(SECOND, 1000);
    let names: Vec<String> = (0..3000).map(|i| format!("lg-{i:04}")).collect();
    let agents: Vec<&str> = names.iter().map(String::as_str).collect();
    run.commit(&[], &agents);
    assert_eq!(run.watermarks.len(), 1000, "a second's worth at once");
    for ms in (100..=1000).step_by(100) {
        run.until(ms).commit(&[], &agents);
    }
    // One more a millisecond: 2,000 by 1 s, everyone by 2 s, none twice.
    assert_eq!(run.watermarks.len(), 2000);
    run.until(2000);
    assert_eq!(run.watermarks.len(), 3000);
    let mut once = run.watermarks.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), 3000);
    // Acknowledgements of messages are not held back by the rate.
    run.commit(&[7, 8], &agents);
    assert_eq!(run.acked, [7, 8]);
}

#[test]
fn finishing_sends_the_last_snapshot_and_everything_waiting_once() {
    let mut run = Run::new(SECOND);
    run.room = 1;
    run.commit(&[1, 2, 3], &["a"]);
    run.room = usize::MAX;
    run.until(100).commit(&[4], &["a", "b"]);
    assert_eq!(run.acked, [1, 2, 3, 4]);
    run.room = 0;
    run.until(200).commit(&[5, 6], &["a"]);
    run.room = 1;
    let before = run.log.len();
    run.pacing.finish(run.now);
    run.drain();
    assert_eq!(
        run.log[before..],
        [
            (200, Action::PublishSnapshot),
            (200, Action::Ack(5)),
            (200, Action::Ack(6)),
            (200, Action::Watermark("a".parse().unwrap())),
        ]
    );
    assert_eq!(run.acked, [1, 2, 3, 4, 5]);
    assert_eq!(run.pacing.waiting_acks(), 1, "6 is not sent and says so");
    // Nothing more is handed out: no ticks, no rule runs, no retries.
    run.now += Duration::from_secs(10);
    run.drain();
    assert_eq!(run.log.len(), before + 4);
}

/// A seeded random schedule of commits, changes, a channel that fills and empties, and time
/// passing: every acknowledgement goes out once, in commit order, only after its commit, and all
/// of them eventually; snapshots are never closer than `SNAPSHOT_EVERY`.
#[test]
fn random_schedules_keep_order_lose_nothing_and_space_snapshots() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    for round in 0..50 {
        let mut run = Run::new(Duration::from_millis(1 + next(2000)));
        run.snapshot_cost = Duration::from_millis(next(20));
        let mut committed: Vec<u16> = Vec::new();
        let mut pkid = 0u16;
        let mut ms = 0;
        for _ in 0..400 {
            ms += next(40);
            run.until(ms.max(run.ms(run.now)));
            match next(4) {
                0 => run.room = usize::try_from(next(5)).unwrap(),
                1 => {
                    run.changed();
                }
                _ => {
                    let acks: Vec<u16> = (0..next(8))
                        .map(|_| {
                            pkid = pkid.wrapping_add(1);
                            pkid
                        })
                        .collect();
                    committed.extend(&acks);
                    let agents = ["a", "b", "c", "d"];
                    let touched = &agents[..usize::try_from(next(5)).unwrap()];
                    run.commit(&acks, touched);
                }
            }
            // What went out is a prefix of what was committed, in order, each once.
            assert!(committed.starts_with(&run.acked), "round {round}");
            assert_eq!(
                run.acked.len() + run.pacing.waiting_acks(),
                committed.len(),
                "round {round}: an acknowledgement was lost"
            );
        }
        run.room = usize::MAX;
        let end = run.ms(run.now) + 10;
        run.until(end);
        assert_eq!(run.acked, committed, "round {round}");
        let snapshots = run.times(&Action::PublishSnapshot);
        for pair in snapshots.windows(2) {
            assert!(
                pair[1] - pair[0] >= 100,
                "round {round}: snapshots {snapshots:?}"
            );
        }
    }
}
