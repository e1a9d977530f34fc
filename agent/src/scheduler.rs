//! The probe scheduler: one ICMP round per interval on a fixed-rate tick (a missed tick is
//! skipped, never burst), each target's result folded into its [`Link`], and the resulting
//! events sent on to the recorder: one `probe_round_completed` per target per round, followed by
//! `link_went_down`/`link_came_back` when the link changed state.

use std::time::Duration;

use netmon_events::{Event, Target};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::ProbeConfig;
use crate::link::Link;
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

/// Runs rounds until `shutdown`; a round in progress is abandoned. Returns when it stops or the
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
        "probing"
    );
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let at = clock.now();
        let results = tokio::select! {
            () = shutdown.cancelled() => break,
            results = prober.round(&plan) => results,
        };
        let (mut answered, mut down) = (0usize, 0usize);
        for ((target, stats), link) in targets.iter().zip(&results).zip(&mut links) {
            answered += usize::from(stats.received > 0);
            let transition = link.observe(stats.failure, at);
            down += usize::from(link.is_down());
            if events.send(stats.to_event(target)).await.is_err() {
                return;
            }
            if let Some(transition) = transition {
                match transition {
                    crate::link::Transition::WentDown { reason, .. } => {
                        warn!(target = %target.address, name = %target.name, ?reason, "link went down");
                    }
                    crate::link::Transition::CameBack { down_for_ms, .. } => {
                        info!(target = %target.address, name = %target.name, down_for_ms, "link came back");
                    }
                }
                if events.send(transition.to_event(target)).await.is_err() {
                    return;
                }
            }
        }
        debug!(answered, down, targets = targets.len(), "round completed");
    }
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
}
