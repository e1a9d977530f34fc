//! Tests of the report window: rounds with explicit times in, summaries out.
#![allow(clippy::unwrap_used)]
use std::time::Duration;

use netmon_events::Target;

use super::*;
use crate::probes::EchoOutcome::{self, NoReply, Replied, SendFailed, Unreachable};

fn ms(x: f64) -> EchoOutcome {
    Replied(Duration::from_nanos((x * 1e6).round() as u64))
}

/// One round per second from `start` (round `i` ends at `start + i·1000 + 900`), each given as
/// its echoes' outcomes and whether the link is held down after it; then the window closes at
/// `end`.
fn run(start: u64, rounds: &[Round], end: u64) -> Option<WindowSummary> {
    let mut window = Window::new(start);
    for (i, (outcomes, down)) in rounds.iter().enumerate() {
        let round = RoundStats::from_outcomes(outcomes.clone());
        window.observe(&round, *down, start + i as u64 * 1000 + 900);
    }
    window.close(end)
}

/// A round: its echoes' outcomes and whether the link is held down after it.
type Round = (Vec<EchoOutcome>, bool);

fn up(outcomes: &[EchoOutcome]) -> Round {
    (outcomes.to_vec(), false)
}

fn down(outcomes: &[EchoOutcome]) -> Round {
    (outcomes.to_vec(), true)
}

/// The counts of a summary as one line, for table tests.
fn counts(s: &WindowSummary) -> String {
    format!(
        "window={} rounds={} failed={} run={} down={} sent={} received={} loss={}",
        s.window_ms,
        s.rounds,
        s.failed_rounds,
        s.longest_failed_run,
        s.down_ms,
        s.sent,
        s.received,
        s.loss_pct
    )
}

#[test]
fn counts_table() {
    let good = up(&[ms(1.0), ms(2.0), ms(3.0)]);
    let lost = up(&[NoReply, NoReply, NoReply]);
    let table: &[(&str, Vec<Round>, u64, &str)] = &[
        (
            "steady",
            vec![good.clone(); 10],
            10_000,
            "window=10000 rounds=10 failed=0 run=0 down=0 sent=30 received=30 loss=0",
        ),
        (
            "one echo in three lost",
            vec![up(&[ms(1.0), NoReply, ms(1.0)])],
            1_000,
            "window=1000 rounds=1 failed=0 run=0 down=0 sent=3 received=2 loss=33.33",
        ),
        (
            "two in three lost: rounded half up",
            vec![up(&[ms(1.0), NoReply, NoReply])],
            1_000,
            "window=1000 rounds=1 failed=0 run=0 down=0 sent=3 received=1 loss=66.67",
        ),
        (
            "failed rounds and the longest run inside the window",
            vec![
                good.clone(),
                lost.clone(),
                lost.clone(),
                good.clone(),
                lost.clone(),
                lost.clone(),
                lost.clone(),
                good.clone(),
            ],
            8_000,
            "window=8000 rounds=8 failed=5 run=3 down=0 sent=24 received=9 loss=62.5",
        ),
        (
            "send failures are tried, not sent",
            vec![up(&[SendFailed, SendFailed, ms(1.0)])],
            1_000,
            "window=1000 rounds=1 failed=0 run=0 down=0 sent=1 received=1 loss=66.67",
        ),
        (
            "unreachable counts as sent and lost",
            vec![up(&[Unreachable, Unreachable, Unreachable])],
            1_000,
            "window=1000 rounds=1 failed=1 run=1 down=0 sent=3 received=0 loss=100",
        ),
        (
            // Down after round 4 (ends at 4900), up after round 7 (ends at 7900).
            "an outage inside the window",
            vec![
                good.clone(),
                good.clone(),
                lost.clone(),
                lost.clone(),
                down(&[NoReply; 3]),
                down(&[NoReply; 3]),
                down(&[NoReply; 3]),
                good.clone(),
                good.clone(),
                good.clone(),
            ],
            10_000,
            "window=10000 rounds=10 failed=5 run=5 down=3000 sent=30 received=15 loss=50",
        ),
        (
            "an outage still going at the end of the window counts up to the end",
            vec![good.clone(), lost.clone(), down(&[NoReply; 3])],
            10_000,
            "window=10000 rounds=3 failed=2 run=2 down=7100 sent=9 received=3 loss=66.67",
        ),
    ];
    for (what, rounds, end, expected) in table {
        let summary = run(0, rounds, *end).unwrap();
        assert_eq!(counts(&summary), *expected, "{what}");
        assert_eq!(summary.rtt.is_some(), summary.received > 0, "{what}");
    }
}

#[test]
fn an_outage_is_shared_by_the_windows_it_spans() {
    // Windows of 10 s from 0. Down after the round ending at 4900; up after the one ending at
    // 22900: 5100 ms in the first window, all of the second, 2900 ms of the third.
    let mut window = Window::new(0);
    let lost = RoundStats::from_outcomes([NoReply; 3]);
    let good = RoundStats::from_outcomes([ms(1.0); 3]);
    let mut downs = Vec::new();
    for i in 0..30u64 {
        let at = i * 1000 + 900;
        let (round, held) = match i {
            0..2 => (&good, false),
            2..4 => (&lost, false),
            4..22 => (&lost, true),
            _ => (&good, false),
        };
        window.observe(round, held, at);
        if i % 10 == 9 {
            let s = window.close((i + 1) * 1000).unwrap();
            downs.push((s.down_ms, s.failed_rounds, s.longest_failed_run));
        }
    }
    assert_eq!(downs, [(5100, 8, 8), (10_000, 10, 10), (2900, 2, 2)]);
}

#[test]
fn rtts_over_every_echo_as_ping_reports_them() {
    // `ping -c 4`: "rtt min/avg/max/mdev = 1.000/2.500/4.000/1.118 ms", over two rounds.
    let rounds = vec![up(&[ms(1.0), ms(2.0)]), up(&[ms(3.0), ms(4.0), NoReply])];
    let rtt = run(0, &rounds, 2_000).unwrap().rtt.unwrap();
    assert_eq!(
        (rtt.min_ms, rtt.avg_ms, rtt.max_ms, rtt.mdev_ms),
        (1.0, 2.5, 4.0, 1.12)
    );
    // Identical RTTs: no deviation.
    let rtt = run(0, &[up(&[ms(0.05); 3])], 1_000).unwrap().rtt.unwrap();
    assert_eq!((rtt.avg_ms, rtt.mdev_ms), (0.05, 0.0));
    // Nothing received: no RTT at all.
    assert_eq!(run(0, &[up(&[NoReply; 3])], 1_000).unwrap().rtt, None);
}

#[test]
fn rtts_are_rounded_half_up_to_hundredths() {
    let table: &[(f64, f64)] = &[
        (1.204, 1.2),
        (1.205, 1.21),
        // RTTs are kept in whole microseconds (to the nearest) first.
        (1.2044, 1.2),
        (1.2045, 1.21),
        (0.004, 0.0),
        (0.005, 0.01),
        (999.999, 1000.0),
    ];
    for &(rtt, expected) in table {
        let s = run(0, &[up(&[ms(rtt)])], 1_000).unwrap().rtt.unwrap();
        assert_eq!(
            (s.min_ms, s.avg_ms, s.max_ms),
            (expected, expected, expected),
            "{rtt}"
        );
        assert!(
            s.pct_ms.iter().all(|&p| p == expected),
            "{rtt}: {:?}",
            s.pct_ms
        );
    }
    // The average of 1 and 2 µs is 1.5 µs: 0.0015 ms, to 0.00.
    let s = run(0, &[up(&[ms(0.001), ms(0.002)])], 1_000)
        .unwrap()
        .rtt
        .unwrap();
    assert_eq!(s.avg_ms, 0.0);
}

#[test]
fn percentiles_are_nearest_rank() {
    let table: &[(&[f64], [f64; 9])] = &[
        // 1..=10 ms: the p-th percentile of ten values is the (p/10)-th value.
        (
            &[7.0, 3.0, 10.0, 1.0, 5.0, 2.0, 9.0, 4.0, 8.0, 6.0],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        ),
        // Three values: ranks ⌈0.3⌉ … ⌈2.7⌉.
        (
            &[3.0, 1.0, 2.0],
            [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0],
        ),
        // One value is every percentile.
        (&[4.25], [4.25; 9]),
        // Four values: ranks 1, 1, 2, 2, 2, 3, 3, 4, 4.
        (
            &[10.0, 20.0, 30.0, 40.0],
            [10.0, 10.0, 20.0, 20.0, 20.0, 30.0, 30.0, 40.0, 40.0],
        ),
    ];
    for (rtts, expected) in table {
        let rounds: Vec<_> = rtts.iter().map(|&r| up(&[ms(r)])).collect();
        let s = run(0, &rounds, rounds.len() as u64 * 1000).unwrap();
        assert_eq!(s.rtt.unwrap().pct_ms, *expected, "{rtts:?}");
    }
}

#[test]
fn memory_is_bounded_and_the_sample_stays_spread() {
    // An hour of 100 ms rounds of 3 echoes: 108,000 RTTs rising 1 µs each, from 1 ms.
    let mut window = Window::new(0);
    let n = 108_000u32;
    for i in 0..n / 3 {
        let outcomes = (0..3).map(|e| Replied(Duration::from_micros(u64::from(1000 + i * 3 + e))));
        window.observe(
            &RoundStats::from_outcomes(outcomes),
            false,
            u64::from(i) * 100,
        );
        assert!(window.rtts.kept.len() <= MAX_WINDOW_RTTS);
    }
    let s = window.close(3_600_000).unwrap();
    assert_eq!((s.rounds, s.sent, s.received), (36_000, n, n));
    let rtt = s.rtt.unwrap();
    // Exact over every echo: 1.000 … 108.999 ms.
    assert_eq!((rtt.min_ms, rtt.max_ms, rtt.avg_ms), (1.0, 109.0, 55.0));
    // The population deviation of a uniform run of n: n / √12 µs = 31.177 ms.
    assert_eq!(rtt.mdev_ms, 31.18);
    // From an evenly spread sample: within a quarter of a millisecond of the true percentile.
    for (p, got) in PERCENTILES.iter().zip(rtt.pct_ms) {
        let exact = 1.0 + (*p as f64 / 100.0) * 108.0;
        assert!((got - exact).abs() < 0.25, "p{p}: {got} vs {exact}");
    }
    // The next window starts empty, its allocation kept.
    assert!(window.rtts.kept.is_empty() && window.rtts.kept.capacity() >= MAX_WINDOW_RTTS / 2);
    assert_eq!(window.start_ms(), 3_600_000);
}

#[test]
fn a_window_without_rounds_is_not_reported_and_a_partial_one_is() {
    let mut window = Window::new(5_000);
    assert_eq!(window.close(7_000), None);
    assert_eq!(window.start_ms(), 7_000);
    // The last window at shutdown: 2.5 s of a 60 s window.
    window.observe(&RoundStats::from_outcomes([ms(1.0)]), false, 7_900);
    window.observe(&RoundStats::from_outcomes([ms(3.0)]), false, 8_900);
    let s = window.close(9_500).unwrap();
    assert_eq!((s.window_ms, s.rounds, s.received), (2_500, 2, 2));
    assert_eq!(s.rtt.unwrap().avg_ms, 2.0);
    // A clock that reads an end before the start makes an empty window, not an underflow.
    window.observe(&RoundStats::from_outcomes([NoReply]), true, 9_600);
    let s = window.close(1_000).unwrap();
    assert_eq!((s.window_ms, s.down_ms), (1, 0));
}

#[test]
fn events_pass_contract_validation() {
    let target = Target {
        name: "UBND xã Cẩm Tú".into(),
        address: "10.20.0.1".parse().unwrap(),
        role: netmon_events::LinkRole::Commune,
    };
    let table: Vec<Vec<Round>> = vec![
        vec![up(&[ms(1.204), NoReply, ms(1.796)]); 60],
        vec![down(&[NoReply; 3]); 60],
        vec![up(&[SendFailed; 3]), up(&[ms(0.001)])],
        (0..60)
            .map(|i| up(&[ms(f64::from(i) * 0.37 + 0.2), ms(900.0 - f64::from(i))]))
            .collect(),
    ];
    for rounds in table {
        let summary = run(0, &rounds, 60_000).unwrap();
        let envelope = netmon_events::Envelope {
            v: netmon_events::SCHEMA_VERSION,
            agent: "a".parse().unwrap(),
            boot: "b".parse().unwrap(),
            seq: 1,
            time: chrono::Utc::now(),
            mono_ms: 60_000,
            event: summary.to_event(&target),
        };
        envelope
            .validate()
            .unwrap_or_else(|e| panic!("{summary:?}: {e}"));
    }
}

#[test]
fn the_schedule_closes_every_target_at_the_same_round() {
    let second = Duration::from_secs(1);
    let mut schedule = Schedule::new(400, second, Duration::from_secs(60));
    assert_eq!(schedule.per_window(), 60);
    let closes: Vec<(u64, u64)> = [0u64, 1, 59, 60, 61, 119, 120, 121, 305, 306, 360]
        .into_iter()
        .filter_map(|round| schedule.before_round(round).map(|end| (round, end)))
        .collect();
    // Round 305 after missed ticks: window 2 closes once, at the start of window 5.
    assert_eq!(
        closes,
        [(60, 60_400), (120, 120_400), (305, 300_400), (360, 360_400)]
    );
    // Sub-second rounds: ten 100 ms rounds a second, 10 s windows.
    let mut schedule = Schedule::new(0, Duration::from_millis(100), Duration::from_secs(10));
    assert_eq!(schedule.per_window(), 100);
    assert_eq!(schedule.before_round(99), None);
    assert_eq!(schedule.before_round(100), Some(10_000));
    // A window of one round.
    let mut schedule = Schedule::new(0, second, second);
    assert_eq!(schedule.before_round(0), None);
    assert_eq!(schedule.before_round(1), Some(1_000));
    assert_eq!(schedule.before_round(2), Some(2_000));
}
