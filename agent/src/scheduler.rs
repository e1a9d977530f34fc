//! The probe scheduler: one ICMP round per interval on a fixed-rate tick (a missed tick is
//! skipped, never burst), each target's result folded into its [`Link`] and its report
//! [`Window`], and the resulting events sent on to the recorder: `link_went_down`/
//! `link_came_back` as soon as a round changes a link's state, and one `probe_window_completed`
//! per target at the end of every report window (`probe.report_every`; ADR 14). Rounds are
//! numbered from the first tick, so every target's window closes before the same round and
//! one publish carries them all. At shutdown the round in progress is abandoned and the partial
//! windows are closed and sent.

use std::time::Duration;

use netmon_events::{Event, Target};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::ProbeConfig;
use crate::link::{Link, Transition};
use crate::probes::window::{Schedule, Window};
use crate::probes::{IcmpProber, RoundPlan};
use crate::recorder::Clock;

/// Share of the interval over which the sends of a round are spread.
const SPREAD_FRACTION: f64 = 0.25;

/// Share of the interval a round may last at most, leaving room to record its events before the
/// next tick.
const ROUND_FRACTION: f64 = 0.9;

/// The round plan of the daemon: sends over the first quarter of the interval, the round over by
/// 90% of it, echoes waiting at most `timeout`.
pub fn daemon_plan(probe: &ProbeConfig) -> RoundPlan {
    RoundPlan {
        count: probe.count,
        spread: probe.interval.mul_f64(SPREAD_FRACTION),
        timeout: probe.timeout,
        max_duration: probe.interval.mul_f64(ROUND_FRACTION),
    }
}

/// The plan of a one-off round (`netmon-agent probe`): the same spread, and every echo gets its
/// full timeout.
pub fn one_shot_plan(probe: &ProbeConfig) -> RoundPlan {
    let spread = probe.interval.mul_f64(SPREAD_FRACTION);
    RoundPlan {
        count: probe.count,
        spread,
        timeout: probe.timeout,
        max_duration: spread + probe.timeout + Duration::from_millis(10),
    }
}

/// Everything the scheduler task owns.
#[derive(Debug)]
pub struct Scheduler {
    pub probe: ProbeConfig,
    pub targets: Vec<Target>,
    pub prober: IcmpProber,
    pub clock: Clock,
}

/// The number of the round a tick at `tick` starts, counting from the first tick at `first`.
fn round_number(first: Instant, tick: Instant, interval: Duration) -> u64 {
    let elapsed = tick.saturating_duration_since(first).as_nanos();
    let interval = interval.as_nanos().max(1);
    u64::try_from((elapsed + interval / 2) / interval).unwrap_or(u64::MAX)
}

/// Closes every target's window at `end_ms` and sends their summaries; false when the recorder
/// is gone.
async fn close_windows(
    targets: &[Target],
    windows: &mut [Window],
    end_ms: u64,
    events: &mpsc::Sender<Event>,
) -> bool {
    for (target, window) in targets.iter().zip(windows) {
        if let Some(summary) = window.close(end_ms) {
            debug!(target = %target.address, rounds = summary.rounds, loss_pct = summary.loss_pct, "window completed");
            if events.send(summary.to_event(target)).await.is_err() {
                return false;
            }
        }
    }
    true
}

/// Runs rounds until `shutdown`, then sends the partial windows. Returns when it stops or the
/// recorder is gone.
pub async fn run_scheduler(
    scheduler: Scheduler,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let Scheduler {
        probe,
        targets,
        mut prober,
        clock,
    } = scheduler;
    let plan = daemon_plan(&probe);
    let mut links: Vec<Link> = targets
        .iter()
        .map(|_| Link::new(probe.down_after))
        .collect();
    let mut ticks = tokio::time::interval(probe.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    info!(
        targets = targets.len(),
        interval = %humantime::format_duration(probe.interval),
        count = probe.count,
        report_every = %humantime::format_duration(probe.report_every),
        "probing"
    );
    let first = tokio::select! {
        () = shutdown.cancelled() => return,
        first = ticks.tick() => first,
    };
    let origin = clock.now().mono_ms;
    let mut schedule = Schedule::new(origin, probe.interval, probe.report_every);
    let mut windows = vec![Window::new(origin); targets.len()];
    let mut tick = first;
    loop {
        let round = round_number(first, tick, probe.interval);
        if let Some(end) = schedule.before_round(round)
            && !close_windows(&targets, &mut windows, end, &events).await
        {
            return;
        }
        let at = clock.now();
        let results = tokio::select! {
            () = shutdown.cancelled() => break,
            results = prober.round(&plan) => results,
        };
        let done = clock.now().mono_ms;
        let (mut answered, mut down) = (0usize, 0usize);
        for (((target, stats), link), window) in targets
            .iter()
            .zip(&results)
            .zip(&mut links)
            .zip(&mut windows)
        {
            answered += usize::from(stats.received > 0);
            let transition = link.observe(stats.failure, at);
            down += usize::from(link.is_down());
            window.observe(stats, link.is_down(), done);
            if let Some(transition) = transition {
                match transition {
                    Transition::WentDown { reason, .. } => {
                        warn!(target = %target.address, name = %target.name, ?reason, "link went down");
                    }
                    Transition::CameBack { down_for_ms, .. } => {
                        info!(target = %target.address, name = %target.name, down_for_ms, "link came back");
                    }
                }
                if events.send(transition.to_event(target)).await.is_err() {
                    return;
                }
            }
        }
        debug!(answered, down, targets = targets.len(), "round completed");
        tick = tokio::select! {
            () = shutdown.cancelled() => break,
            tick = ticks.tick() => tick,
        };
    }
    close_windows(&targets, &mut windows, clock.now().mono_ms, &events).await;
    info!("probing stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_fit_the_interval() {
        let probe = ProbeConfig {
            interval: Duration::from_secs(1),
            count: 3,
            timeout: Duration::from_secs(1),
            down_after: 3,
            report_every: Duration::from_secs(60),
        };
        let daemon = daemon_plan(&probe);
        assert_eq!(daemon.spread, Duration::from_millis(250));
        assert!(daemon.max_duration < probe.interval);
        let once = one_shot_plan(&probe);
        assert!(once.max_duration >= once.spread + once.timeout);
    }

    #[test]
    fn rounds_are_numbered_by_their_tick() {
        let first = Instant::now();
        let second = Duration::from_secs(1);
        let ms = |n| first + Duration::from_millis(n);
        // Ticks are scheduled on the interval's grid; a skipped tick skips a number.
        let table = [
            (0, 0),
            (1_000, 1),
            (2_000, 2),
            (5_000, 5),
            (59_999, 60),
            (60_000, 60),
        ];
        for (at, round) in table {
            assert_eq!(round_number(first, ms(at), second), round, "{at} ms");
        }
        assert_eq!(round_number(first, ms(250), Duration::from_millis(100)), 3);
    }
}
