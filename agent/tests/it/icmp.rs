//! The ICMP engine against loopback (127.0.0.0/8 and ::1 only). Needs an ICMP socket: either
//! `net.ipv4.ping_group_range` covering the test's group, or root/CAP_NET_RAW; it fails loudly
//! otherwise.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use netmon_agent::probes::{IcmpProber, RoundPlan};

/// `n` addresses in 127.`second`.0.0/16 (each test uses its own `second`, tests run in parallel).
fn loopback(second: u8, n: usize) -> Vec<IpAddr> {
    (0..n)
        .map(|i| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                second,
                (i / 250) as u8,
                (i % 250 + 1) as u8,
            ))
        })
        .collect()
}

#[tokio::test]
async fn a_few_hundred_loopback_targets_lose_nothing() {
    let targets = loopback(77, 400);
    let mut prober = IcmpProber::open(targets.clone()).unwrap();
    let plan = RoundPlan {
        count: 3,
        spread: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        max_duration: Duration::from_secs(3),
    };
    // Several rounds: sequence numbers move on per target and late replies cannot confuse them.
    for round in 0..3 {
        let results = prober.round(&plan).await;
        assert_eq!(results.len(), targets.len());
        for (address, stats) in targets.iter().zip(&results) {
            assert_eq!(
                (stats.sent, stats.received, stats.loss_pct, stats.failure),
                (3, 3, 0.0, None),
                "round {round}, {address}"
            );
            let rtt = stats.rtt.unwrap();
            assert!(
                rtt.min_ms <= rtt.avg_ms && rtt.avg_ms <= rtt.max_ms,
                "{rtt:?}"
            );
            assert!(rtt.max_ms < 2000.0, "{rtt:?}");
        }
    }
}

#[tokio::test]
async fn both_families_in_one_round() {
    let mut targets = loopback(78, 20);
    targets.push("::1".parse().unwrap());
    let mut prober = IcmpProber::open(targets.clone()).unwrap();
    let plan = RoundPlan {
        count: 2,
        spread: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
        max_duration: Duration::from_secs(3),
    };
    let results = prober.round(&plan).await;
    for (address, stats) in targets.iter().zip(&results) {
        assert_eq!((stats.sent, stats.received), (2, 2), "{address}");
    }
}

#[tokio::test]
async fn a_round_ends_as_soon_as_everything_answered() {
    let targets = loopback(79, 50);
    let mut prober = IcmpProber::open(targets).unwrap();
    let plan = RoundPlan {
        count: 1,
        spread: Duration::ZERO,
        timeout: Duration::from_secs(30),
        max_duration: Duration::from_secs(30),
    };
    let started = std::time::Instant::now();
    let results = prober.round(&plan).await;
    assert!(results.iter().all(|s| s.received == 1));
    // Loopback answers in microseconds; the round must not sit out its 30 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
