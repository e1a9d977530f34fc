//! The report window (pure): every round of one target over `probe.report_every` folded into the
//! body of one `probe_window_completed` (`docs/adr/0014-probe-windows-and-compact-batches.md`).
//! Times are the agent's monotonic milliseconds, passed in.
//!
//! - [`Window`]: one target's window. Each round adds its counts, its replies' round-trip times
//!   and whether the agent holds the link down after it; [`Window::close`] yields the
//!   [`WindowSummary`] and starts the next window where this one ended.
//! - [`Schedule`]: where windows end. Rounds are numbered from the first tick; a window holds
//!   `report_every / interval` of them, so every target's window closes at the same tick and one
//!   publish carries them all.
//!
//! **What the numbers mean.** `rounds` ran in the window, `failed_rounds` got no reply at all,
//! `longest_failed_run` is the longest run of consecutive failed rounds inside the window (a run
//! that goes on into the next window is counted there again from its first round in it).
//! `down_ms` is the part of the window during which the agent held the link down: from the round
//! after which it declared the link down (or the window's start, if it was down already) to the
//! round after which it declared it up (or the window's end). `sent`/`received` count echoes;
//! `loss_pct` is lost echoes in percent of the echoes tried (as in a round). RTT min/avg/max and
//! `mdev` (population standard deviation, as `ping` prints it) are exact over every reply; the
//! nine percentiles 10 … 90 are nearest-rank over every reply while the window has at most
//! [`MAX_WINDOW_RTTS`] of them, else over an evenly spread sample of that many (every 2ⁿ-th
//! reply): memory stays bounded whatever `report_every`, `interval` and `count` are. RTTs are
//! rounded to 0.01 ms, loss to 0.01 %.

use std::time::Duration;

use netmon_events::{Event, RTT_PERCENTILES, Target};

use super::stats::RoundStats;

/// Most round-trip times a window keeps per target for its percentiles (4 KiB). At the defaults
/// (1 min of 1 s rounds of 3 echoes: 180 replies) every reply is kept.
pub const MAX_WINDOW_RTTS: usize = 1024;

/// The percentiles of `rtt_pct_ms`: 10th, 20th … 90th.
pub const PERCENTILES: [u64; RTT_PERCENTILES] = [10, 20, 30, 40, 50, 60, 70, 80, 90];

/// What one target's window amounted to: the body of `probe_window_completed`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSummary {
    /// Length of the window (`report_every`; less for the last, partial window at shutdown).
    pub window_ms: u64,
    pub rounds: u32,
    /// Rounds without any reply.
    pub failed_rounds: u32,
    /// Longest run of consecutive failed rounds inside the window.
    pub longest_failed_run: u32,
    /// Milliseconds of the window during which the agent held the link down.
    pub down_ms: u64,
    /// Echoes sent and replies received.
    pub sent: u32,
    pub received: u32,
    /// Lost echoes in percent of the echoes tried, to 0.01.
    pub loss_pct: f64,
    /// `None` when nothing was received.
    pub rtt: Option<WindowRtt>,
}

/// The round-trip times of a window's replies, in milliseconds to 0.01.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowRtt {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    /// Population standard deviation (`ping`'s `mdev`).
    pub mdev_ms: f64,
    /// The [`PERCENTILES`], nearest rank.
    pub pct_ms: [f64; RTT_PERCENTILES],
}

/// One target's current window; see the module documentation.
#[derive(Debug, Clone)]
pub struct Window {
    start_ms: u64,
    rounds: u32,
    failed_rounds: u32,
    run: u32,
    longest_run: u32,
    /// Since when (in this window) the agent holds the link down.
    down_since: Option<u64>,
    down_ms: u64,
    attempted: u64,
    sent: u64,
    received: u64,
    rtts: RttTally,
}

impl Window {
    /// A window starting at `start_ms`, the link not held down.
    pub fn new(start_ms: u64) -> Window {
        Window {
            start_ms,
            rounds: 0,
            failed_rounds: 0,
            run: 0,
            longest_run: 0,
            down_since: None,
            down_ms: 0,
            attempted: 0,
            sent: 0,
            received: 0,
            rtts: RttTally::default(),
        }
    }

    /// When this window started.
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// Folds in one round, finished at `at_ms`; `held_down` is whether the agent holds the link
    /// down after it (`Link::is_down`).
    pub fn observe(&mut self, round: &RoundStats, held_down: bool, at_ms: u64) {
        self.rounds = self.rounds.saturating_add(1);
        if round.received == 0 {
            self.failed_rounds = self.failed_rounds.saturating_add(1);
            self.run = self.run.saturating_add(1);
            self.longest_run = self.longest_run.max(self.run);
        } else {
            self.run = 0;
        }
        self.attempted = self.attempted.saturating_add(round.attempted.into());
        self.sent = self.sent.saturating_add(round.sent.into());
        self.received = self.received.saturating_add(round.received.into());
        for &rtt in &round.rtts_us {
            self.rtts.push(rtt);
        }
        let at = at_ms.max(self.start_ms);
        match (self.down_since, held_down) {
            (None, true) => self.down_since = Some(at),
            (Some(since), false) => {
                self.down_ms = self.down_ms.saturating_add(at.saturating_sub(since));
                self.down_since = None;
            }
            _ => {}
        }
    }

    /// Ends the window at `end_ms` and starts the next one there (a link held down stays held
    /// down). `None` for a window in which no round ran: there is nothing to report.
    pub fn close(&mut self, end_ms: u64) -> Option<WindowSummary> {
        let end = end_ms.max(self.start_ms);
        // At least 1 ms (the contract's bound): a round ran, so some time passed.
        let window_ms = (end - self.start_ms).max(1);
        let mut down_ms = self.down_ms;
        if let Some(since) = self.down_since {
            down_ms = down_ms.saturating_add(end.saturating_sub(since));
        }
        let summary = (self.rounds > 0).then(|| WindowSummary {
            window_ms,
            rounds: self.rounds,
            failed_rounds: self.failed_rounds,
            longest_failed_run: self.longest_run,
            down_ms: down_ms.min(window_ms),
            sent: saturate(self.sent),
            received: saturate(self.received),
            loss_pct: loss_pct(self.attempted, self.received),
            rtt: self.rtts.summary(),
        });
        let mut rtts = std::mem::take(&mut self.rtts);
        rtts.clear();
        let held = self.down_since.is_some();
        *self = Window {
            down_since: held.then_some(end),
            rtts,
            ..Window::new(end)
        };
        summary
    }
}

impl WindowSummary {
    /// The `probe_window_completed` event of `target`.
    pub fn to_event(&self, target: &Target) -> Event {
        Event::ProbeWindowCompleted {
            target: target.clone(),
            window_ms: self.window_ms,
            rounds: self.rounds,
            failed_rounds: self.failed_rounds,
            longest_failed_run: self.longest_failed_run,
            down_ms: self.down_ms,
            sent: self.sent,
            received: self.received,
            loss_pct: self.loss_pct,
            rtt_min_ms: self.rtt.map(|r| r.min_ms),
            rtt_avg_ms: self.rtt.map(|r| r.avg_ms),
            rtt_max_ms: self.rtt.map(|r| r.max_ms),
            rtt_mdev_ms: self.rtt.map(|r| r.mdev_ms),
            rtt_pct_ms: self.rtt.map(|r| r.pct_ms.to_vec()),
        }
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Lost echoes in percent of `attempted`, rounded half up to 0.01 (100 when none was tried).
fn loss_pct(attempted: u64, received: u64) -> f64 {
    if attempted == 0 {
        return 100.0;
    }
    let (attempted, lost) = (
        u128::from(attempted),
        u128::from(attempted.saturating_sub(received)),
    );
    let hundredths = (lost * 20_000 + attempted) / (2 * attempted);
    hundredths as f64 / 100.0
}

/// Whole microseconds as milliseconds rounded half up to 0.01.
fn us_to_ms(us: u32) -> f64 {
    (u64::from(us).saturating_add(5) / 10) as f64 / 100.0
}

/// The running sums of a window's RTTs (exact, in µs) and the sample kept for percentiles.
#[derive(Debug, Clone)]
struct RttTally {
    count: u64,
    sum: u128,
    sum_sq: u128,
    min: u32,
    max: u32,
    /// Every `stride`-th RTT (by arrival), at most [`MAX_WINDOW_RTTS`].
    kept: Vec<u32>,
    stride: u64,
}

impl Default for RttTally {
    fn default() -> RttTally {
        RttTally {
            count: 0,
            sum: 0,
            sum_sq: 0,
            min: u32::MAX,
            max: 0,
            kept: Vec::new(),
            stride: 1,
        }
    }
}

impl RttTally {
    fn push(&mut self, us: u32) {
        let i = self.count;
        self.count += 1;
        self.sum += u128::from(us);
        self.sum_sq += u128::from(us) * u128::from(us);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
        if !i.is_multiple_of(self.stride) {
            return;
        }
        if self.kept.len() >= MAX_WINDOW_RTTS {
            // Keep every other one: the sample is then every (2 × stride)-th RTT.
            let mut position = 0usize;
            self.kept.retain(|_| {
                position += 1;
                position % 2 == 1
            });
            self.stride = self.stride.saturating_mul(2);
        }
        if i.is_multiple_of(self.stride) {
            self.kept.push(us);
        }
    }

    /// Forgets everything but the sample's allocation.
    fn clear(&mut self) {
        let mut kept = std::mem::take(&mut self.kept);
        kept.clear();
        *self = RttTally {
            kept,
            ..RttTally::default()
        };
    }

    fn summary(&mut self) -> Option<WindowRtt> {
        if self.count == 0 {
            return None;
        }
        let n = u128::from(self.count);
        // avg to 0.01 ms = sum / (10 n) hundredths, rounded half up.
        let avg = ((2 * self.sum + 10 * n) / (20 * n)) as f64 / 100.0;
        // n² · variance = n Σt² − (Σt)², exact in µs².
        let spread = (n * self.sum_sq).saturating_sub(self.sum * self.sum);
        let mdev_us = (spread as f64).sqrt() / n as f64;
        let mdev = (mdev_us / 10.0).round() / 100.0;
        self.kept.sort_unstable();
        let sample = &self.kept;
        let pct_ms = PERCENTILES.map(|p| {
            // Nearest rank: the smallest value with at least p % of the sample at or below it.
            let rank = (p * sample.len() as u64).div_ceil(100).max(1);
            let index = usize::try_from(rank - 1).unwrap_or(usize::MAX);
            sample.get(index).map_or(0.0, |&us| us_to_ms(us))
        });
        Some(WindowRtt {
            min_ms: us_to_ms(self.min),
            avg_ms: avg,
            max_ms: us_to_ms(self.max),
            mdev_ms: mdev,
            pct_ms,
        })
    }
}

/// Where the report windows end: rounds are numbered from 0 at the first tick (at `origin_ms`),
/// and window `w` holds rounds `w · per_window` to `(w + 1) · per_window − 1`.
#[derive(Debug, Clone)]
pub struct Schedule {
    origin_ms: u64,
    interval: Duration,
    per_window: u64,
    window: u64,
}

impl Schedule {
    /// Windows of `report_every` (a whole number of `interval`s, as the config guarantees; at
    /// least one round) from `origin_ms`.
    pub fn new(origin_ms: u64, interval: Duration, report_every: Duration) -> Schedule {
        let per_window = report_every.as_nanos() / interval.as_nanos().max(1);
        Schedule {
            origin_ms,
            interval,
            per_window: u64::try_from(per_window).unwrap_or(u64::MAX).max(1),
            window: 0,
        }
    }

    /// Rounds in a window.
    pub fn per_window(&self) -> u64 {
        self.per_window
    }

    /// Called before round `round` runs: when it starts a new window, the monotonic time at
    /// which the current window ended. Rounds skipped (a missed tick) are no reason to close
    /// early or twice: a round several windows on closes the current window once, at the start
    /// of the window the round falls in.
    pub fn before_round(&mut self, round: u64) -> Option<u64> {
        let window = round / self.per_window;
        if window <= self.window {
            return None;
        }
        self.window = window;
        let first = window.saturating_mul(self.per_window);
        let offset_ms = self.interval.as_nanos().saturating_mul(u128::from(first)) / 1_000_000;
        Some(
            self.origin_ms
                .saturating_add(u64::try_from(offset_ms).unwrap_or(u64::MAX)),
        )
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
