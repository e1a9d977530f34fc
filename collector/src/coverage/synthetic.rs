//! Tests only: seeded synthetic cellular histories — several agents and modems, four operators,
//! every technology, no service, jittered intervals, gaps short and long (over a day), modems
//! that stop answering, agent restarts, and a store order that is not quite time order.
#![allow(clippy::unwrap_used)]

use chrono::DateTime;
use netmon_events::{
    AgentId, BootId, Envelope, Event, ProvinceId, Quality, Registration, SCHEMA_VERSION, Signal,
    Technology,
};

use crate::intake::clock::ClockSource;
use crate::store::{NewEvent, Origin, StoredEvent};

/// The streams: agent, modem, home PLMN.
const STREAMS: &[(&str, &str, usize)] = &[
    ("agent-a", "viettel", 0),
    ("agent-a", "vina", 1),
    ("agent-b", "mobi", 2),
    ("stranger", "viettel", 0),
];
const PLMNS: &[(&str, &str)] = &[
    ("452-04", "Viettel"),
    ("452-02", "VinaPhone"),
    ("452-01", "MobiFone"),
    ("452-05", "Vietnamobile"),
];

/// A small deterministic generator (64-bit LCG, high bits).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// One synthetic event: its agent, effective time (ms) and the event.
#[derive(Debug, Clone)]
pub struct Item {
    pub agent: &'static str,
    pub time: i64,
    pub event: Event,
}

/// `days` days from `start` (ms) of readings about every `step_s` seconds, in store order.
pub fn history(start: i64, days: i64, step_s: i64, seed: u64) -> Vec<Item> {
    let mut rng = Rng(seed);
    let end = start + days * 86_400_000;
    let mut items = Vec::new();
    for (agent, modem, home) in STREAMS {
        let mut t = start + rng.below(600_000) as i64;
        while t < end {
            match rng.below(2000) {
                0..=5 => t += (20 + rng.below(160) as i64) * 60_000,
                6 => t += (25 + rng.below(20) as i64) * 3_600_000,
                7..=12 => {
                    items.push(Item {
                        agent,
                        time: t,
                        event: Event::ModemStoppedAnswering {
                            modem: (*modem).into(),
                            error: "no answer".into(),
                        },
                    });
                    t += (2 + rng.below(50) as i64) * 60_000;
                }
                _ => {}
            }
            if t >= end {
                break;
            }
            items.push(Item {
                agent,
                time: t,
                event: reading(&mut rng, modem, *home),
            });
            t += step_s * 1000 - 1500 + rng.below(3000) as i64;
        }
    }
    // Agent restarts, every few days.
    for agent in ["agent-a", "agent-b"] {
        let mut t = start + rng.below(86_400_000) as i64;
        while t < end {
            items.push(Item {
                agent,
                time: t,
                event: Event::AgentStarted {
                    version: "0.1.0".into(),
                    targets: 1,
                },
            });
            t += (2 + rng.below(8) as i64) * 86_400_000 + rng.below(86_400_000) as i64;
        }
    }
    items.sort_by_key(|i| i.time);
    // Store order: now and then a neighbour swapped (late by an item).
    for i in 0..items.len().saturating_sub(1) {
        if rng.below(100) == 0 {
            items.swap(i, i + 1);
        }
    }
    items
}

fn reading(rng: &mut Rng, modem: &str, home: usize) -> Event {
    let technology = match rng.below(100) {
        0..=2 => Technology::None,
        3..=30 => Technology::Nr5gSa,
        31..=45 => Technology::Nr5gNsa,
        46..=85 => Technology::Lte,
        86..=95 => Technology::Wcdma,
        _ => Technology::Gsm,
    };
    let mut signal = Signal {
        technology,
        registration: Registration::Home,
        ..Signal::default()
    };
    if technology == Technology::None {
        signal.registration = Registration::Searching;
        return Event::CellularSignalSampled {
            modem: modem.into(),
            signal,
            quality: Quality::NoService,
        };
    }
    let plmn = if rng.below(100) == 0 {
        (home + 1 + rng.below(3) as usize) % PLMNS.len()
    } else {
        home
    };
    signal.plmn = Some(PLMNS[plmn].0.into());
    signal.operator = Some(PLMNS[plmn].1.into());
    // Around the site's usual level, as a modem that does not move reads it.
    let rsrp = [-92.0, -98.0, -104.0, -88.0][plmn] + (rng.below(7) + rng.below(7)) as f64 - 6.0
        + rng.below(10) as f64 / 10.0;
    let sinr = [12.0, 8.0, 3.0, 15.0][plmn] + (rng.below(9) + rng.below(9)) as f64 - 8.0
        + rng.below(4) as f64 / 4.0;
    if technology.is_5g() {
        signal.nr_rsrp_dbm = Some(rsrp);
        signal.nr_sinr_db = Some(sinr);
        signal.rsrp_dbm = Some(rsrp - 7.0);
    } else if technology == Technology::Lte {
        signal.rsrp_dbm = Some(rsrp);
        signal.sinr_db = Some(sinr);
    } else {
        signal.rssi_dbm = Some(rsrp + 30.0);
    }
    let quality = match rsrp {
        r if r > -85.0 => Quality::Excellent,
        r if r > -98.0 => Quality::Good,
        r if r > -108.0 => Quality::Fair,
        _ => Quality::Poor,
    };
    Event::CellularSignalSampled {
        modem: modem.into(),
        signal,
        quality,
    }
}

fn province() -> ProvinceId {
    "thanh-hoa".parse().unwrap()
}

/// The items as agent-made events to append (one boot per agent; seq in store order).
pub fn new_events(items: &[Item]) -> Vec<NewEvent> {
    let mut seqs = std::collections::HashMap::new();
    items
        .iter()
        .map(|item| {
            let seq = seqs.entry(item.agent).or_insert(0u64);
            *seq += 1;
            let time = DateTime::from_timestamp_millis(item.time).unwrap();
            let agent: AgentId = item.agent.parse().unwrap();
            let boot: BootId = "agent-boot".parse().unwrap();
            NewEvent {
                province: province(),
                received: time,
                origin: Origin::Agent,
                time,
                clock: ClockSource::Agent,
                late: false,
                envelope: Envelope {
                    v: SCHEMA_VERSION,
                    agent,
                    boot,
                    seq: *seq,
                    time,
                    mono_ms: *seq * 1000,
                    event: item.event.clone(),
                },
            }
        })
        .collect()
}

/// A new event as the store hands it back, with id `id`.
pub fn stored(id: i64, new: NewEvent) -> StoredEvent {
    StoredEvent {
        id,
        province: new.province,
        received: new.received,
        origin: new.origin,
        time: new.time,
        clock: new.clock,
        late: new.late,
        envelope: new.envelope,
    }
}
