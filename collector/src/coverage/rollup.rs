//! Pure: one Vietnam day of every `(agent, modem)` stream → its `coverage_day_rolled_up`
//! (ADR 17). The same stream fold as the report (`stream.rs`), going on from the day before's
//! rollup ([`DayRollup::carry_from`]) and fed the day's items in store order
//! ([`DayRollup::apply`]); at the day's end ([`DayRollup::finish`]) each stream's spans are cut
//! at midnight: the part before counts on this day, the open reading is carried into the next.
//!
//! The figures of a day are what the raw fold adds to its tallies for the spans inside the day:
//! measured time per generation and quality class, usable 5G time, the readings taken and the
//! histograms of their RSRP and SINR at the report's resolution (1 dB, 0.5 dB) — medians cannot
//! be merged, histograms can. A stream that saw nothing on a day (no item, no measured time)
//! gets no rollup: its next reading is more than `FORGET_AFTER` (24 h, `stream.rs`) after its
//! last, so it starts afresh anyway.

use std::collections::{BTreeMap, HashMap};

use netmon_events::{AgentId, Event, ProvinceId};

use super::day::Day;
use super::stream::{FORGET_AFTER, Item, Stream};
use super::tally::Tally;
use super::{UNKNOWN_PLMN, item_of, portion};
use crate::store::StoredEvent;

/// How long after a day's end its rollup is written: readings of the day that reach the store
/// later (an agent's journal drained after a longer cut) are left out of it.
pub const ROLLUP_AFTER_MS: i64 = 24 * 3_600_000;

/// One rollup to record: the event and whom it is filed under.
#[derive(Debug, Clone, PartialEq)]
pub struct Rolled {
    pub agent: AgentId,
    pub province: ProvinceId,
    pub event: Event,
}

#[derive(Debug)]
struct DayStream {
    province: ProvinceId,
    stream: Stream,
    /// Per PLMN.
    tallies: BTreeMap<String, Tally>,
    /// An item of the day reached it.
    touched: bool,
}

/// The fold of one day.
#[derive(Debug)]
pub struct DayRollup {
    day: Day,
    streams: BTreeMap<(AgentId, String), DayStream>,
    /// Each agent's modems, in the order first seen (an agent's start ends all of them).
    modems: HashMap<AgentId, Vec<String>>,
}

impl DayRollup {
    pub fn new(day: Day) -> Self {
        Self {
            day,
            streams: BTreeMap::new(),
            modems: HashMap::new(),
        }
    }

    pub fn day(&self) -> Day {
        self.day
    }

    /// Takes a stored rollup of the day before: its stream goes on from the carry.
    pub fn carry_from(&mut self, stored: &StoredEvent) {
        let Event::CoverageDayRolledUp {
            modem, day, carry, ..
        } = &stored.envelope.event
        else {
            return;
        };
        let before = Day::from_date(*day);
        if before != self.day.prev() {
            return;
        }
        let agent = stored.envelope.agent.clone();
        self.note_modem(&agent, modem);
        self.streams.insert(
            (agent, modem.clone()),
            DayStream {
                province: stored.province.clone(),
                stream: Stream::resume(carry, before.start()),
                tallies: BTreeMap::new(),
                touched: false,
            },
        );
    }

    /// Folds one stored event of the day (in store order; others are ignored).
    pub fn apply(&mut self, stored: &StoredEvent) {
        let time = stored.time.timestamp_millis();
        if !(self.day.start()..self.day.end()).contains(&time) {
            return;
        }
        let agent = &stored.envelope.agent;
        match item_of(&stored.envelope.event) {
            Some((modem, item)) => {
                let modem = modem.to_owned();
                self.push(stored, &modem, time, item);
            }
            None if matches!(stored.envelope.event, Event::AgentStarted { .. }) => {
                for modem in self.modems.get(agent).cloned().unwrap_or_default() {
                    self.push(stored, &modem, time, Item::Break);
                }
            }
            None => {}
        }
    }

    fn note_modem(&mut self, agent: &AgentId, modem: &str) {
        let modems = self.modems.entry(agent.clone()).or_default();
        if !modems.iter().any(|m| m == modem) {
            modems.push(modem.to_owned());
        }
    }

    fn push(&mut self, stored: &StoredEvent, modem: &str, time: i64, item: Item) {
        let agent = &stored.envelope.agent;
        self.note_modem(agent, modem);
        let (from, to) = (self.day.start(), self.day.end());
        let entry = self
            .streams
            .entry((agent.clone(), modem.to_owned()))
            .or_insert_with(|| DayStream {
                province: stored.province.clone(),
                stream: Stream::default(),
                tallies: BTreeMap::new(),
                touched: false,
            });
        entry.touched = true;
        let DayStream {
            stream, tallies, ..
        } = entry;
        stream.push(time, item, &mut |span| account(tallies, from, to, &span));
    }

    /// Ends the day: one rollup per stream that saw something of it, in `(agent, modem)` order.
    pub fn finish(self) -> Vec<Rolled> {
        let (from, to) = (self.day.start(), self.day.end());
        let date = self.day.date();
        let mut out = Vec::new();
        for ((agent, modem), entry) in self.streams {
            let DayStream {
                province,
                mut stream,
                mut tallies,
                touched,
            } = entry;
            stream.flush(&mut |span| account(&mut tallies, from, to, &span));
            if let Some(span) = stream.open_span() {
                account(&mut tallies, from, to, &span);
            }
            if !touched && tallies.is_empty() {
                continue;
            }
            let operators = tallies
                .iter()
                .map(|(plmn, tally)| tally.to_day(plmn))
                .collect();
            out.push(Rolled {
                agent,
                province,
                event: Event::CoverageDayRolledUp {
                    modem,
                    day: date,
                    operators,
                    out_of_order: stream.out_of_order,
                    carry: stream.carry(from, to),
                },
            });
        }
        out
    }
}

/// Adds the part of a span inside the day to its PLMN's tally.
fn account(tallies: &mut BTreeMap<String, Tally>, from: i64, to: i64, span: &super::Span) {
    let Some((ms, inside)) = portion(from, to, span) else {
        return;
    };
    let plmn = span.reading.plmn.as_deref().unwrap_or(UNKNOWN_PLMN);
    super::add(
        tallies.entry(plmn.to_owned()).or_default(),
        span,
        ms,
        inside,
    );
}

/// The day after the last one rolled up (`through`: its end, epoch ms; 0 before any), or the
/// day of the earliest reading; `None` while there is nothing to roll up.
pub fn next_day(through: i64, earliest_reading: Option<i64>) -> Option<Day> {
    if through > 0 {
        return Some(Day::of(through));
    }
    earliest_reading.map(Day::of)
}

/// When `day` may be rolled up (epoch ms).
pub fn due_at(day: Day) -> i64 {
    day.end().saturating_add(ROLLUP_AFTER_MS)
}

/// Whether `day` may be rolled up at wall time `now_ms`.
pub fn due(day: Day, now_ms: i64) -> bool {
    now_ms >= due_at(day)
}

// FORGET_AFTER is what makes the day before's rollups enough; keep the two in step.
const _: () = assert!(FORGET_AFTER <= super::day::DAY_MS);
