//! What a snapshot of the fold costs at a fleet's size (ADR 15, `intake/snapshot/`): folds a
//! synthetic fleet of `--agents` agents (three targets each: a start, a description, two report
//! windows per target, a heartbeat, a cellular reading; a link down at one agent in ten, with its
//! alert opened by the rules), then times what the writer pays — the copy of the fold, taken
//! between batches — and what its own thread pays (encoding, writing with fsync), and what a
//! start pays (reading and decoding). Prints one line per measure.
//!
//! ```text
//! cargo run --release -p netmon-collector --example snapshot_bench -- --agents 100000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_collector::alerts::Alerting;
use netmon_collector::intake::clock::ClockSource;
use netmon_collector::intake::snapshot::format::{self, Expected, Folded, Header};
use netmon_collector::intake::targets::KnownTargets;
use netmon_collector::state::State;
use netmon_collector::store::{Origin, StoredEvent};
use netmon_events::testing::{described, started, target, went_down, window_rtt};
use netmon_events::{Envelope, Event, Quality, Registration, Signal, Technology};

/// The fold, as the recorder keeps it.
struct Fold {
    state: State,
    alerting: Alerting,
    targets: KnownTargets,
    next_id: i64,
}

impl Fold {
    fn apply(&mut self, agent: &str, boot: &str, seq: u64, origin: Origin, event: Event) {
        self.next_id += 1;
        let time = DateTime::<Utc>::from_timestamp_millis(1_795_000_000_000).unwrap()
            + TimeDelta::seconds(seq as i64 * 60);
        let stored = StoredEvent {
            id: self.next_id,
            province: "thanh-hoa".parse().unwrap(),
            received: time,
            origin,
            time,
            clock: ClockSource::Agent,
            late: false,
            envelope: Envelope {
                v: netmon_events::SCHEMA_VERSION,
                agent: agent.parse().unwrap(),
                boot: boot.parse().unwrap(),
                seq,
                time,
                mono_ms: seq * 60_000,
                event,
            },
        };
        self.state.apply(&stored);
        self.alerting.apply(&stored);
        self.targets.apply(&stored);
    }
}

fn reading() -> Event {
    Event::CellularSignalSampled {
        modem: "viettel".into(),
        signal: Signal {
            technology: Technology::Lte,
            plmn: Some("452-04".into()),
            operator: Some("Viettel".into()),
            registration: Registration::Home,
            rsrp_dbm: Some(-95.0),
            ..Signal::default()
        },
        quality: Quality::Good,
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut agents = 100_000usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--agents" => agents = args.next().expect("--agents N").parse().expect("a count"),
            other => panic!("unknown argument {other}"),
        }
    }
    let started_at = Instant::now();
    let mut fold = Fold {
        state: State::default(),
        alerting: Alerting::default(),
        targets: KnownTargets::default(),
        next_id: 0,
    };
    for i in 0..agents {
        let agent = format!("thanh-hoa-{i:06}");
        let boot = format!("{agent}-boot-7f3a9c2e");
        let targets: Vec<_> = ["192.168.1.1", "10.20.0.1", "8.8.8.8"]
            .iter()
            .map(|a| target(&format!("đích {a}"), a))
            .collect();
        let mut seq = 0;
        let mut next = |fold: &mut Fold, event| {
            seq += 1;
            fold.apply(&agent, &boot, seq, Origin::Agent, event);
        };
        next(&mut fold, started());
        next(&mut fold, described(&targets));
        for _ in 0..2 {
            for t in &targets {
                next(&mut fold, window_rtt(t, 180, 3.0 + (i % 7) as f64));
            }
        }
        next(
            &mut fold,
            Event::AgentHeartbeat {
                uptime_s: 600,
                backlog: 0,
            },
        );
        if i % 3 == 0 {
            next(&mut fold, reading());
        }
        if i % 10 == 0 {
            let since = DateTime::<Utc>::from_timestamp_millis(1_795_000_000_000).unwrap();
            next(&mut fold, went_down(&targets[1], since));
        }
    }
    let now = DateTime::<Utc>::from_timestamp_millis(1_795_100_000_000).unwrap();
    for (n, made) in fold
        .alerting
        .evaluate(&fold.state, now)
        .into_iter()
        .enumerate()
    {
        let agent = made.agent.to_string();
        fold.apply(
            &agent,
            "collector-boot",
            n as u64 + 1,
            Origin::Collector,
            made.event,
        );
    }
    println!(
        "fleet: {} agents, {} links, {} link signals, {} alerts, {} events folded in {:.1} s",
        fold.state.agents.len(),
        fold.state.links.len(),
        fold.alerting.signals.links.len(),
        fold.alerting.book.alerts.len(),
        fold.next_id,
        started_at.elapsed().as_secs_f64()
    );

    // Each measure is the least of three runs (the machine may be shared).
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                ms(t)
            })
            .fold(f64::MAX, f64::min)
    };
    let copy = || Folded {
        state: fold.state.clone(),
        signals: fold.alerting.signals.clone(),
        book: fold.alerting.book.clone(),
        targets: fold.targets.clone(),
    };
    let folded = copy();
    println!(
        "copy of the fold (the writer's pause): {:.0} ms",
        best(&mut || drop(copy()))
    );
    println!(
        "  of which State alone: {:.0} ms",
        best(&mut || drop(fold.state.clone()))
    );
    let header = Header {
        schema: netmon_collector::store::schema::SCHEMA_VERSION,
        build: format::build(),
        fold: 0,
        position: folded.state.last_id,
        at_position: ("a".parse().unwrap(), "b".parse().unwrap(), 1),
        taken: now,
    };
    let bytes = format::encode(&header, &folded).unwrap();
    println!(
        "encoding (postcard): {:.0} ms, {:.1} MiB",
        best(&mut || drop(format::encode(&header, &folded).unwrap())),
        bytes.len() as f64 / 1048576.0
    );
    let dir = std::env::temp_dir().join(format!("snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.db.snapshot");
    let write = best(&mut || {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&bytes).unwrap();
        file.sync_all().unwrap();
    });
    println!("write + fsync: {write:.0} ms");
    let expected = Expected {
        schema: header.schema,
        build: header.build.clone(),
        fold: 0,
    };
    let read = best(&mut || drop(std::fs::read(&path).unwrap()));
    let decode = best(&mut || drop(format::decode(&bytes, &expected).unwrap()));
    println!("start: read {read:.0} ms, checksum + decode {decode:.0} ms");
    let (_, back) = format::decode(&bytes, &expected).unwrap();
    assert!(back == folded, "the snapshot reads back as written");
    std::fs::remove_dir_all(&dir).unwrap();
}
