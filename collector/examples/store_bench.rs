//! Disk bytes and append throughput of the event store (`docs/benchmarks.md`, "Event store row
//! layout"). Appends `--events` realistic measurement events — `probe_window_completed` (the
//! default, ADR 14) or `probe_round_completed` (`--kind round`, what older agents send) from
//! agents with four targets each, in store transactions of `--batch` events, interleaved across
//! agents as the writer receives them — into a fresh store in `--dir`, then checkpoints the WAL
//! and divides the file size by the count. Single thread; only the `Store::append` calls are
//! timed (the events are built beforehand). Then retention deletes the older half step by step
//! (`store/retention.rs`): the longest step is the writer's pause.
//!
//! ```text
//! cargo run --profile bench-release -p netmon-collector --example store_bench -- \
//!     --events 1000000 --kind window --dir /tmp/store-bench
//! ```
//!
//! `--agents N` (default 250 windows or 25 rounds a tick), `--from DATE` (the first tick, default
//! 2026-12-01) and `--retention off` leave a store of old measurements for a collector to delete
//! while it takes load (`tests/bench/ingest.py --seed-store`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_collector::intake::clock::ClockSource;
use netmon_collector::store::retention::Class;
use netmon_collector::store::{NewEvent, Origin, Store};
use netmon_events::{AgentId, BootId, Envelope, Event, LinkRole, ProvinceId, Target};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Window,
    Round,
}

struct Args {
    events: u64,
    kind: Kind,
    batch: usize,
    dir: PathBuf,
    agents: Option<usize>,
    from: DateTime<Utc>,
    retention: bool,
}

fn args() -> Args {
    let mut out = Args {
        events: 1_000_000,
        kind: Kind::Window,
        batch: 1000,
        dir: std::env::temp_dir().join("netmon-store-bench"),
        agents: None,
        from: "2026-12-01T00:00:00Z".parse().unwrap(),
        retention: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => out.events = value.parse().expect("--events N"),
            "--batch" => out.batch = value.parse().expect("--batch N"),
            "--dir" => out.dir = value.into(),
            "--agents" => out.agents = Some(value.parse().expect("--agents N")),
            "--from" => {
                let date: chrono::NaiveDate = value.parse().expect("--from YYYY-MM-DD");
                out.from = date.and_hms_opt(0, 0, 0).unwrap().and_utc();
            }
            "--retention" => out.retention = value == "on",
            "--kind" => {
                out.kind = match value.as_str() {
                    "window" => Kind::Window,
                    "round" => Kind::Round,
                    other => panic!("--kind window|round, not {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    out
}

/// One simulated agent: its id, boot, four targets with a base RTT each, seq and clocks.
struct Agent {
    id: AgentId,
    boot: BootId,
    targets: Vec<(Target, f64)>,
    seq: u64,
    /// Wall time of the agent's start, and its clock's offset from the collector's (ms).
    started: DateTime<Utc>,
    skew_ms: i64,
}

/// `count` agents whose boots started within the day before `t0`.
fn agents(count: usize, t0: DateTime<Utc>, rng: &mut Rng) -> Vec<Agent> {
    (0..count)
        .map(|i| {
            let commune = i / 8;
            let ip = |s: String| s.parse::<IpAddr>().unwrap();
            let targets = vec![
                (
                    Target {
                        name: format!("Cổng thôn {i}"),
                        address: ip("192.168.1.1".into()),
                        role: LinkRole::Gateway,
                    },
                    0.5 + 2.0 * rng.unit(),
                ),
                (
                    Target {
                        name: format!("UBND xã {commune}"),
                        address: ip(format!("10.{}.{}.1", 20 + commune / 250, commune % 250)),
                        role: LinkRole::Commune,
                    },
                    3.0 + 12.0 * rng.unit(),
                ),
                (
                    Target {
                        name: "Sở TT&TT Thanh Hóa".into(),
                        address: ip("10.0.0.10".into()),
                        role: LinkRole::Province,
                    },
                    10.0 + 30.0 * rng.unit(),
                ),
                (
                    Target {
                        name: "Cloudflare".into(),
                        address: ip("1.1.1.1".into()),
                        role: LinkRole::Internet,
                    },
                    25.0 + 55.0 * rng.unit(),
                ),
            ];
            Agent {
                id: AgentId::new(format!("thanh-hoa-xa-{commune:04}-thon-{i:05}")).unwrap(),
                boot: BootId::new(format!("{:016x}-{:016x}", rng.next(), rng.next())).unwrap(),
                targets,
                seq: 2,
                started: t0 - TimeDelta::milliseconds((rng.next() % 86_400_000) as i64),
                skew_ms: (rng.next() % 2000) as i64 - 1000,
            }
        })
        .collect()
}

/// A window of 60 rounds of 3 echoes: now and then a few echoes lost, rarely an outage.
fn window(target: &Target, base: f64, rng: &mut Rng) -> Event {
    let outage = rng.next().is_multiple_of(200);
    let failed = if outage {
        3 + (rng.next() % 10) as u32
    } else {
        0
    };
    let lost_echoes = if rng.next().is_multiple_of(3) {
        (rng.next() % 5) as u32
    } else {
        0
    };
    let sent = 180;
    let received = (sent - failed * 3).saturating_sub(lost_echoes);
    let jitter = base * (0.9 + 0.3 * rng.unit());
    let mut pct: Vec<f64> = (0..9)
        .map(|k| round_to(jitter * (0.9 + 0.03 * f64::from(k) + 0.02 * rng.unit()), 2))
        .collect();
    pct.sort_by(f64::total_cmp);
    let min = round_to(jitter * 0.8, 2).min(pct[0]);
    let max = round_to(jitter * (1.5 + rng.unit()), 2).max(pct[8]);
    Event::ProbeWindowCompleted {
        target: target.clone(),
        window_ms: 60_000,
        rounds: 60,
        failed_rounds: failed,
        longest_failed_run: failed,
        down_ms: if failed >= 3 {
            u64::from(failed - 2) * 1000
        } else {
            0
        },
        sent,
        received,
        loss_pct: round_to(f64::from(sent - received) * 100.0 / f64::from(sent), 2),
        rtt_min_ms: Some(min),
        rtt_avg_ms: Some(round_to(jitter, 2)),
        rtt_max_ms: Some(max),
        rtt_mdev_ms: Some(round_to(jitter * 0.1 * (1.0 + rng.unit()), 2)),
        rtt_pct_ms: Some(pct),
    }
}

/// A round of 3 echoes, RTTs to the microsecond as `RoundStats` reports them.
fn round(target: &Target, base: f64, rng: &mut Rng) -> Event {
    let received = if rng.next().is_multiple_of(50) { 2 } else { 3 };
    let avg = base * (0.9 + 0.3 * rng.unit());
    Event::ProbeRoundCompleted {
        target: target.clone(),
        sent: 3,
        received,
        rtt_min_ms: Some(round_to(avg * 0.9, 3)),
        rtt_avg_ms: Some(round_to(avg, 3)),
        rtt_max_ms: Some(round_to(avg * 1.15, 3)),
        rtt_mdev_ms: Some(round_to(avg * 0.08, 3)),
        loss_pct: round_to(f64::from(3 - received) * 100.0 / 3.0, 3),
    }
}

fn main() {
    let args = args();
    std::fs::create_dir_all(&args.dir).unwrap();
    let path = args.dir.join("events.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    // 4 targets each: 250 agents reporting a window a minute, or 25 agents probing every second.
    let per_tick = args.agents.unwrap_or(match args.kind {
        Kind::Window => 250,
        Kind::Round => 25,
    });
    let tick_ms = match args.kind {
        Kind::Window => 60_000,
        Kind::Round => 1_000,
    };
    let t0 = args.from;
    let mut fleet = agents(per_tick, t0, &mut rng);
    let province = ProvinceId::new("thanh-hoa").unwrap();
    let mut events = Vec::with_capacity(args.events as usize);
    let mut tick = 0i64;
    'fill: loop {
        tick += 1;
        for agent in &mut fleet {
            let at = t0 + TimeDelta::milliseconds(tick * tick_ms);
            let agent_time = at + TimeDelta::milliseconds(agent.skew_ms);
            let mono_ms = (agent_time - agent.started).num_milliseconds() as u64 + (rng.next() % 3);
            let received = at + TimeDelta::milliseconds(150 + (rng.next() % 700) as i64);
            for (target, base) in &agent.targets {
                let event = match args.kind {
                    Kind::Window => window(target, *base, &mut rng),
                    Kind::Round => round(target, *base, &mut rng),
                };
                agent.seq += 1;
                let envelope = Envelope {
                    v: 1,
                    agent: agent.id.clone(),
                    boot: agent.boot.clone(),
                    seq: agent.seq,
                    time: agent_time,
                    mono_ms,
                    event,
                };
                debug_assert_eq!(envelope.validate(), Ok(()));
                events.push(NewEvent {
                    province: province.clone(),
                    received,
                    origin: Origin::Agent,
                    time: agent_time,
                    clock: ClockSource::Agent,
                    late: false,
                    envelope,
                });
                if events.len() as u64 == args.events {
                    break 'fill;
                }
            }
        }
    }
    let mut store = Store::open(&path).unwrap();
    let started = Instant::now();
    for chunk in events.chunks(args.batch) {
        let out = store.append(chunk, &[]).unwrap();
        assert!(out.iter().all(|a| a.stored().is_some()));
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    drop(conn);
    let bytes = std::fs::metadata(&path).unwrap().len();
    let n = events.len() as f64;
    let kind = match args.kind {
        Kind::Window => "probe_window_completed",
        Kind::Round => "probe_round_completed",
    };
    println!(
        "schema {version}, {kind}: {} events in transactions of {}: {bytes} bytes, {:.1} B/event; \
         append {elapsed:.2} s, {:.0} events/s",
        events.len(),
        args.batch,
        bytes as f64 / n,
        n / elapsed
    );
    if !args.retention {
        let (first, last) = (events[0].time, events.last().unwrap().time);
        println!("kept for a collector: {first} to {last}");
        return;
    }
    // Retention: the older half goes, step by step as the writer's tick runs them.
    let span = events.last().unwrap().time - events[0].time;
    let cutoff = (events[0].time + span / 2).timestamp_millis();
    drop(events);
    let mut store = Store::open(&path).unwrap();
    let (mut steps, mut deleted, mut longest) = (0u32, 0usize, 0f64);
    let started = Instant::now();
    loop {
        let step = Instant::now();
        let swept = store.sweep(Class::Measurements, cutoff).unwrap();
        longest = longest.max(step.elapsed().as_secs_f64() * 1000.0);
        steps += 1;
        deleted += swept.deleted;
        if swept.caught_up {
            break;
        }
    }
    let total = started.elapsed().as_secs_f64();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let after = std::fs::metadata(&path).unwrap().len();
    println!(
        "retention of the older half: {deleted} events deleted in {steps} steps, longest step \
         {longest:.1} ms, {total:.2} s in all; file {bytes} → {after} bytes"
    );
}
