//! The snapshot's invariant over random event streams (a seeded generator, so a failure
//! repeats): a live recorder takes a random fleet's events — boots, target descriptions, probe
//! rounds and windows, links down and back (some reported late, from a journal), heartbeats,
//! last wills and missed heartbeats, SNMP counters and interfaces, cellular readings, duplicates
//! — while the alert rules and the outbox run, notifications succeed or fail and operators
//! acknowledge and silence; at a random moment it writes a snapshot. Then the store replayed
//! from zero, the snapshot plus the events after it, and what the live recorder folded are the
//! same fold.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::testing::{came_back, described, round_rtt, started, target, went_down};
use netmon_events::{
    BootId, Device, Envelope, Event, Interface, OperStatus, Target, Technology, encode_batch,
};
use rumqttc::{Publish, QoS};

use super::{Folded, SnapshotFile, fold_key};
use crate::alerts::coverage_rule_tests::reading;
use crate::alerts::tests::{inventory, render};
use crate::alerts::{Alerting, AlertsConfig, config::CoverageConfig};
use crate::intake::clock::ClockPolicy;
use crate::intake::recorder::{Now, Recorder};
use crate::notify::SendError;
use crate::store::Store;
use crate::store::testkit::{base, temp_dir};

const CASES: u64 = 24;
const STEPS: usize = 400;
const SILENCE_AFTER: Duration = Duration::from_secs(120);
/// The inventory's agents, and one it does not list.
const AGENTS: [&str; 5] = ["ubnd", "v1", "v2", "v3", "stray"];

/// SplitMix64.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0 ≤ n < `below`.
    fn below(&mut self, below: u64) -> u64 {
        self.next() % below
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One simulated agent: its boot, the wall time its monotonic clock started at, its targets and
/// which are down since when, events held back (a journal the agent replays later).
struct Agent {
    name: &'static str,
    boot: BootId,
    boots: u32,
    seq: u64,
    started: DateTime<Utc>,
    targets: Vec<Target>,
    down: Vec<Option<DateTime<Utc>>>,
    holding: bool,
    held: Vec<Envelope>,
}

/// The fleet, the collector's clocks and the live recorder.
struct World {
    random: Random,
    now: Now,
    agents: Vec<Agent>,
    live: Recorder,
    /// Batches published so far (a few are delivered again).
    sent: Vec<Publish>,
}

/// Alert settings short enough that a few hundred steps open and close every kind.
fn config() -> AlertsConfig {
    AlertsConfig {
        sustain: Duration::from_secs(30),
        clear_after: Duration::from_secs(40),
        smoothing: Duration::from_secs(20),
        flap_changes: 3,
        flap_window: Duration::from_secs(300),
        group_window: Duration::from_secs(2),
        reminder_every: Some(Duration::from_secs(600)),
        max_attempts: 3,
        coverage: CoverageConfig {
            no_service_after: Duration::from_secs(60),
            lost_5g_after: Duration::from_secs(90),
            clear_after: Duration::from_secs(30),
            had_5g_within: Duration::from_secs(3600),
        },
        ..AlertsConfig::default()
    }
}

fn alerting() -> Alerting {
    Alerting::new(config(), Some(Arc::new(inventory())))
}

fn recorder(store: &Path, snapshots: Option<SnapshotFile>) -> Recorder {
    let opened = Store::open(store).unwrap();
    let policy = ClockPolicy::default();
    let mut rec =
        Recorder::rebuild_from(opened, snapshots, None, SILENCE_AFTER, policy, alerting()).unwrap();
    rec.set_cadence(3.0, Duration::from_secs(60));
    rec
}

impl World {
    fn new(seed: u64, store: &Path) -> Self {
        let mut random = Random(seed);
        let now = Now {
            wall: base(),
            mono_ms: 1000,
        };
        let count = 2 + random.below(AGENTS.len() as u64 - 1) as usize;
        let agents = AGENTS[..count]
            .iter()
            .map(|name| Agent {
                name,
                boot: format!("{name}-b0").parse().unwrap(),
                boots: 0,
                seq: 0,
                started: now.wall,
                targets: Vec::new(),
                down: Vec::new(),
                holding: false,
                held: Vec::new(),
            })
            .collect();
        let live = recorder(
            store,
            Some(SnapshotFile::beside(store, Duration::from_secs(1))),
        );
        Self {
            random,
            now,
            agents,
            live,
            sent: Vec::new(),
        }
    }

    /// Moves the collector's clocks on by `ms`.
    fn wait(&mut self, ms: u64) {
        self.now.wall += TimeDelta::milliseconds(ms as i64);
        self.now.mono_ms += ms;
    }

    /// Agent `i`'s next envelope, stamped a little before now (or held back in its journal).
    fn event(&mut self, i: usize, event: Event) -> Option<Envelope> {
        let lag = self.random.below(1500) as i64;
        let agent = &mut self.agents[i];
        agent.seq += 1;
        let time = self.now.wall - TimeDelta::milliseconds(lag);
        let envelope = Envelope {
            v: netmon_events::SCHEMA_VERSION,
            agent: agent.name.parse().unwrap(),
            boot: agent.boot.clone(),
            seq: agent.seq,
            time,
            mono_ms: u64::try_from((time - agent.started).num_milliseconds()).unwrap_or(0),
            event,
        };
        if agent.holding {
            agent.held.push(envelope);
            return None;
        }
        Some(envelope)
    }

    fn publish(&mut self, i: usize, events: Vec<Envelope>) {
        if events.is_empty() {
            return;
        }
        let topic = format!("netmon/v1/thanh-hoa/{}/events", self.agents[i].name);
        let message = Publish::new(topic, QoS::AtLeastOnce, encode_batch(&events));
        self.sent.push(message.clone());
        self.live.record(&[message], self.now).unwrap();
    }

    fn send(&mut self, i: usize, events: Vec<Event>) {
        let envelopes = events
            .into_iter()
            .filter_map(|e| self.event(i, e))
            .collect();
        self.publish(i, envelopes);
    }

    /// A new boot: `agent_started`, its targets described.
    fn boot(&mut self, i: usize) {
        let count = 1 + self.random.below(3) as usize;
        let agent = &mut self.agents[i];
        agent.boots += 1;
        agent.boot = format!("{}-b{}", agent.name, agent.boots).parse().unwrap();
        agent.seq = 0;
        agent.started = self.now.wall - TimeDelta::seconds(1);
        agent.targets = ["10.20.0.1", "10.20.0.2", "192.168.1.1"][..count]
            .iter()
            .map(|a| target(&format!("đích {a}"), a))
            .collect();
        agent.down = vec![None; count];
        let targets = agent.targets.clone();
        self.send(i, vec![started(), described(&targets)]);
    }

    /// One step of agent `i`: a measurement, a change or a message of the collector's.
    fn step(&mut self, i: usize) {
        if self.agents[i].targets.is_empty() {
            return self.boot(i);
        }
        let r = &mut self.random;
        let roll = r.below(100);
        let t = r.below(self.agents[i].targets.len() as u64) as usize;
        let link = self.agents[i].targets[t].clone();
        let rtt = *r.pick(&[1.5, 3.0, 40.0, 700.0]);
        let event = match roll {
            0..=29 => round_rtt(&link, *r.pick(&[0, 1, 3, 3, 3]), rtt),
            30..=44 => window(&link, *r.pick(&[0, 90, 170, 180, 180]), rtt),
            45..=54 => match self.agents[i].down[t] {
                None => {
                    let since = self.now.wall - TimeDelta::seconds(3);
                    self.agents[i].down[t] = Some(since);
                    went_down(&link, since)
                }
                Some(since) => {
                    self.agents[i].down[t] = None;
                    let ms = (self.now.wall - since).num_milliseconds().max(0) as u64;
                    came_back(&link, since, ms)
                }
            },
            55..=62 => Event::AgentHeartbeat {
                uptime_s: self.agents[i].seq,
                backlog: r.below(40),
            },
            63..=71 => cellular(r),
            72..=79 => snmp(r),
            80..=82 => return self.boot(i),
            83..=85 => {
                let name = self.agents[i].name;
                let topic = format!("netmon/v1/thanh-hoa/{name}/status");
                let will = Publish::new(topic, QoS::AtLeastOnce, r#"{"status":"offline"}"#);
                self.live.record(&[will], self.now).unwrap();
                return;
            }
            86..=89 => {
                // The journal holds what comes next until a later step replays it (late, when
                // it held it past `delivery.late_after`).
                let agent = &mut self.agents[i];
                agent.holding = !agent.holding;
                let held = std::mem::take(&mut agent.held);
                return self.publish(i, held);
            }
            // The two seqs after its own, dropped: they never come.
            90..=92 => Event::JournalOverflowed {
                dropped_boot: self.agents[i].boot.clone(),
                first_seq: self.agents[i].seq + 2,
                last_seq: self.agents[i].seq + 3,
                count: 2,
            },
            93..=95 => {
                if let Some(again) = self
                    .sent
                    .get(r.below(self.sent.len().max(1) as u64) as usize)
                {
                    let again = again.clone();
                    self.live.record(&[again], self.now).unwrap();
                }
                return;
            }
            _ => return self.operator(),
        };
        if let Event::JournalOverflowed { .. } = event {
            self.agents[i].seq += 2;
        }
        self.send(i, vec![event]);
    }

    /// An operator acknowledges an open alert, or silences a site.
    fn operator(&mut self) {
        // In id order: the open alerts are a hash map, and the stream must not depend on its
        // order (each process hashes differently).
        let mut open: Vec<u64> = self.live.alerting().book.open.values().copied().collect();
        open.sort_unstable();
        let now = self.now;
        if self.random.chance(50) && !open.is_empty() {
            let id = *self.random.pick(&open);
            let _ = self
                .live
                .acknowledge(id, "Lan".into(), Some("đang xử lý".into()), now);
        } else {
            let site = self
                .random
                .pick(&["giang-trung", "trung-son", "ubnd"])
                .to_string();
            let until = now.wall + TimeDelta::seconds(90);
            let _ = self
                .live
                .silence(site, now.wall, until, "Hùng".into(), None, now);
        }
    }

    /// The writer's timers: silence, the alert rules and the outbox, the sends' outcomes.
    fn timers(&mut self) {
        let now = self.now;
        if self.random.chance(40) {
            self.live.tick(now).unwrap();
        }
        if self.random.chance(60) {
            self.live.evaluate(now, &render).unwrap();
        }
        for outgoing in self.live.ready(now.wall) {
            let result = match self.random.below(3) {
                0 => Ok(()),
                1 => Err(SendError {
                    retryable: true,
                    message: "503".into(),
                }),
                _ => Err(SendError {
                    retryable: false,
                    message: "410".into(),
                }),
            };
            self.live.notified(outgoing.id, result, now).unwrap();
        }
    }
}

fn window(link: &Target, received: u32, rtt: f64) -> Event {
    let mut event = netmon_events::testing::window_rtt(link, received, rtt);
    if let Event::ProbeWindowCompleted { down_ms, .. } = &mut event
        && received == 0
    {
        *down_ms = 60_000;
    }
    event
}

fn cellular(r: &mut Random) -> Event {
    if r.chance(10) {
        return Event::ModemStoppedAnswering {
            modem: "viettel".into(),
            error: "no answer".into(),
        };
    }
    reading(*r.pick(&[Technology::Nr5gSa, Technology::Lte, Technology::None]))
}

fn snmp(r: &mut Random) -> Event {
    let device = Device {
        address: "192.168.1.1".into(),
        name: Some("core".into()),
    };
    let interface = Interface {
        index: 2,
        name: "wan".into(),
        alias: None,
    };
    match r.below(10) {
        0 => Event::InterfaceWentDown {
            device,
            interface,
            oper_status: OperStatus::Down,
        },
        1 => Event::InterfaceCameBack {
            device,
            interface,
            down_for_ms: 5000,
        },
        2 => Event::DeviceRebooted {
            device,
            uptime_s: 5,
            previous_uptime_s: 9000,
        },
        _ => {
            let util = *r.pick(&[10.0, 50.0, 95.0, 99.0]);
            Event::InterfaceCountersSampled {
                device,
                interface,
                interval_ms: 60_000,
                in_bps: util * 1e6,
                out_bps: 1e5,
                speed_bps: Some(100_000_000),
                in_util_pct: Some(util),
                out_util_pct: Some(0.1),
                in_errors_ps: 0.0,
                out_errors_ps: 0.0,
                in_discards_ps: 0.0,
                out_discards_ps: 0.0,
                oper_status: OperStatus::Up,
            }
        }
    }
}

/// The fold as a replay leaves it: what the rules take at their next run is not kept.
fn settled(mut folded: Folded) -> Folded {
    let signals = &mut folded.signals;
    signals.ended.clear();
    signals.reboots.clear();
    signals.modems.cleared.clear();
    folded
}

/// Says which part of two folds differs first (the whole fold is too big to print).
fn same(what: &str, seed: u64, a: &Folded, b: &Folded) {
    let first = |x: String, y: String| {
        let at = x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count();
        let from = at.saturating_sub(200);
        let cut = |s: &str| s.chars().skip(from).take(600).collect::<String>();
        format!("…{}\n  vs\n…{}", cut(&x), cut(&y))
    };
    let debug = |x: &dyn std::fmt::Debug, y: &dyn std::fmt::Debug| {
        first(format!("{x:?}"), format!("{y:?}"))
    };
    let part = |name: &str, equal: bool, diff: &dyn Fn() -> String| {
        assert!(equal, "seed {seed}: {what}: {name} differs:\n{}", diff());
    };
    part("state", a.state == b.state, &|| debug(&a.state, &b.state));
    part("signals", a.signals == b.signals, &|| {
        debug(&a.signals, &b.signals)
    });
    // The open alerts are a hash map: shown in key order.
    let open = |f: &Folded| format!("{:?}", f.book.open.iter().collect::<BTreeMap<_, _>>());
    part("open alerts", a.book.open == b.book.open, &|| {
        first(open(a), open(b))
    });
    part("book", a.book == b.book, &|| {
        let alerts = |f: &Folded| format!("{:?}", (&f.book.alerts, &f.book.outbox));
        first(alerts(a), alerts(b))
    });
    part("targets", a.targets == b.targets, &|| String::new());
    assert!(a == b, "seed {seed}: {what}");
}

#[test]
fn replay_from_zero_equals_snapshot_plus_tail_over_random_streams() {
    let (mut kinds, mut finished) = (std::collections::BTreeSet::new(), 0);
    for seed in 0..CASES {
        let dir = temp_dir();
        let store = dir.path().join("events.db");
        let mut world = World::new(seed, &store);
        // In the first three quarters: the tail after it is never empty.
        let snapshot_at = world.random.below(STEPS as u64 * 3 / 4) as usize;
        for step in 0..STEPS {
            let gap = if world.random.chance(2) {
                SILENCE_AFTER.as_millis() as u64 + 5000
            } else {
                1000 + world.random.below(9000)
            };
            world.wait(gap);
            let i = world.random.below(world.agents.len() as u64) as usize;
            world.step(i);
            world.timers();
            if step == snapshot_at {
                world.live.snapshot_now(world.now);
            }
        }
        let live = settled(world.live.folded());
        kinds.extend(live.book.alerts.values().map(|a| a.key.kind));
        finished += live.book.finished.len();
        drop(world);

        let full = recorder(&store, None).folded();
        let mut file = SnapshotFile::beside(&store, Duration::from_secs(1));
        let opened = Store::open(&store).unwrap();
        let loaded = file.load(&opened, fold_key(&alerting()));
        let loaded = loaded.unwrap_or_else(|| panic!("seed {seed}: the snapshot is not usable"));
        assert!(loaded.state.last_id < full.state.last_id, "seed {seed}");
        // What the snapshot holds reads back as it was written.
        let header = super::header(&opened, loaded.state.last_id, 0, base())
            .unwrap()
            .unwrap();
        let bytes = super::format::encode(&header, &loaded).unwrap();
        assert_eq!(super::format::header(&bytes).unwrap().0, header);
        drop(opened);
        let tail = recorder(&store, Some(file)).folded();
        same("snapshot + tail vs replay from zero", seed, &tail, &full);
        same("live vs replay from zero", seed, &live, &full);
    }
    // The streams opened alerts of most kinds (flaps, congestion, coverage, SNMP, silence…) and
    // notified them.
    assert!(kinds.len() >= 10, "only {kinds:?}");
    assert!(finished > 0, "no notification was sent or given up");
}
