//! Pure: what the `coverage_lost` rule judges, folded per (agent, modem) from the cellular events
//! in effective time — in service or not, on 5G or not, since when; whether the modem had 5G.
//!
//! Two conditions per modem, each with its hysteresis, judged at every reading:
//! - **no service**: not registered, or no radio technology, for `no_service_after`;
//! - **5G lost**: in service off 5G (4G, 3G/2G) while the time since it left 5G reaches
//!   `lost_5g_after`, provided it was on 5G within `had_5g_within` before it left it. The time
//!   off 5G counts from the moment it left 5G, no-service readings included, but the condition
//!   only opens on a reading in service (a modem with no service at all is the other condition).
//!
//! Either resolves once the good state (service; 5G) has held `clear_after` from the first good
//! reading. A modem that does not answer, or an agent that restarts, is *unknown*: an open
//! condition stays open, a condition that was building up starts again.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{AgentId, Event, Generation, Signal, Technology};
use serde::{Deserialize, Serialize};

use crate::alerts::AlertsConfig;
use crate::store::StoredEvent;

/// One condition of one modem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// Since when it has been bad (while not active), and whether that reading was late.
    bad_since: Option<(DateTime<Utc>, bool)>,
    /// Since when it has been good (while active).
    good_since: Option<DateTime<Utc>>,
    /// Open since (the start of the bad period that opened it).
    pub active: Option<Active>,
}

/// An open condition: what the alert says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub since: DateTime<Utc>,
    /// The reading that opened it arrived late.
    pub late: bool,
    /// The operator named in the alert (frozen while it is open, so the alert keeps its key).
    pub operator: Option<String>,
    /// The generation in use when it opened (5G lost: 4 or 3).
    pub generation: Option<u8>,
}

/// A condition that ended, for the rules to check that the book has it (a backlog replayed from a
/// journal may open and clear it between two evaluations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleared {
    pub agent: AgentId,
    pub modem: String,
    pub what: CoverageLoss,
    pub active: Active,
    pub until: DateTime<Utc>,
    pub late: bool,
}

/// Which of the two conditions of a modem's coverage: no service, or 5G lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CoverageLoss {
    NoService,
    Lost5g,
}

/// What is known about one modem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Modem {
    /// The last operator seen in service.
    pub operator: Option<String>,
    /// The last reading on 5G.
    pub last_5g: Option<DateTime<Utc>>,
    pub no_service: Condition,
    pub lost_5g: Condition,
}

/// What one reading says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// No answer, or a new boot of the agent: nothing is known.
    Unknown,
    NoService,
    InService(Technology),
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// The generation as a number for messages: 5, 4, 3 (3G/2G) or 0.
pub fn generation_number(technology: Technology) -> u8 {
    match technology.generation() {
        Generation::G5 => 5,
        Generation::G4 => 4,
        Generation::G3G2 => 3,
        Generation::None => 0,
    }
}

impl Modem {
    /// Feeds one reading at `time`; returns the conditions it cleared.
    fn feed(
        &mut self,
        reading: Reading,
        time: DateTime<Utc>,
        late: bool,
        config: &AlertsConfig,
    ) -> Vec<(CoverageLoss, Active, DateTime<Utc>)> {
        let c = &config.coverage;
        let mut cleared = Vec::new();
        let operator = self.operator.clone();
        // No service.
        let bad = reading == Reading::NoService;
        let good = matches!(reading, Reading::InService(_));
        let open_now = |since: DateTime<Utc>| time - since >= delta(c.no_service_after);
        if let Some(done) = self.no_service.judge(
            (bad, good),
            time,
            late,
            open_now,
            || (operator.clone(), None),
            delta(c.clear_after),
        ) {
            cleared.push((CoverageLoss::NoService, done.0, done.1));
        }
        // 5G lost.
        let had_5g = self
            .last_5g
            .is_some_and(|t| time - t <= delta(c.had_5g_within));
        match reading {
            Reading::InService(t) if t.is_5g() => {
                self.last_5g = Some(time);
                let clear_after = delta(c.clear_after);
                let judged = self.lost_5g.judge(
                    (false, true),
                    time,
                    late,
                    |_| false,
                    || (None, None),
                    clear_after,
                );
                if let Some(done) = judged {
                    cleared.push((CoverageLoss::Lost5g, done.0, done.1));
                }
            }
            Reading::InService(t) => {
                let building = self.lost_5g.bad_since.is_some() || self.lost_5g.active.is_some();
                let generation = Some(generation_number(t));
                let open_now = |since: DateTime<Utc>| time - since >= delta(c.lost_5g_after);
                self.lost_5g.judge(
                    (had_5g || building, false),
                    time,
                    late,
                    open_now,
                    || (operator.clone(), generation),
                    delta(c.clear_after),
                );
            }
            Reading::NoService => {
                // Off 5G too, but never opened by a reading without service.
                if self.lost_5g.active.is_none() && self.lost_5g.bad_since.is_none() && had_5g {
                    self.lost_5g.bad_since = Some((time, late));
                }
                self.lost_5g.good_since = None;
            }
            Reading::Unknown => self.lost_5g.unknown(),
        }
        cleared
    }
}

impl Condition {
    /// One judgement: `bad` / `good` (neither: the band in between). Opens when `open_now(since
    /// the bad period began)`, with what `describe` says; closes after `clear_after` of good.
    /// Returns the condition it closed and when.
    fn judge(
        &mut self,
        (bad, good): (bool, bool),
        time: DateTime<Utc>,
        late: bool,
        open_now: impl Fn(DateTime<Utc>) -> bool,
        describe: impl Fn() -> (Option<String>, Option<u8>),
        clear_after: TimeDelta,
    ) -> Option<(Active, DateTime<Utc>)> {
        match &self.active {
            None if bad => {
                let (since, since_late) = *self.bad_since.get_or_insert((time, late));
                if open_now(since) {
                    let (operator, generation) = describe();
                    self.active = Some(Active {
                        since,
                        late: late || since_late,
                        operator,
                        generation,
                    });
                    self.good_since = None;
                }
                None
            }
            None => {
                self.bad_since = None;
                None
            }
            Some(_) if good => {
                let since = *self.good_since.get_or_insert(time);
                if time - since < clear_after {
                    return None;
                }
                self.bad_since = None;
                self.good_since = None;
                self.active.take().map(|a| (a, since))
            }
            Some(_) => {
                self.good_since = None;
                None
            }
        }
    }

    /// Nothing is known: an open condition stays open, one building up starts again.
    fn unknown(&mut self) {
        self.good_since = None;
        if self.active.is_none() {
            self.bad_since = None;
        }
    }
}

/// Every modem, by (agent, modem name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Modems {
    pub modems: BTreeMap<(AgentId, String), Modem>,
    /// Conditions that cleared since the last evaluation took them.
    pub cleared: Vec<Cleared>,
}

impl Modems {
    /// Folds one stored event (other events are ignored).
    pub fn apply(&mut self, stored: &StoredEvent, config: &AlertsConfig) {
        let agent = &stored.envelope.agent;
        let reading = match &stored.envelope.event {
            Event::AgentStarted { .. } => {
                for ((_, name), modem) in self
                    .modems
                    .range_mut((agent.clone(), String::new())..)
                    .take_while(|((a, _), _)| a == agent)
                {
                    let done = modem.feed(Reading::Unknown, stored.time, stored.late, config);
                    self.cleared.extend(cleared(stored, name, done));
                }
                return;
            }
            Event::CellularSignalSampled { modem, signal, .. } => {
                (modem, reading_of(signal), signal.operator.as_ref())
            }
            Event::CellularServiceLost { modem, .. } => (modem, Reading::NoService, None),
            Event::CellularServiceRestored {
                modem,
                technology,
                operator,
                ..
            }
            | Event::CellularTechnologyChanged {
                modem,
                to: technology,
                operator,
                ..
            } => {
                let reading = if *technology == Technology::None {
                    Reading::NoService
                } else {
                    Reading::InService(*technology)
                };
                (modem, reading, operator.as_ref())
            }
            Event::ModemStoppedAnswering { modem, .. } => (modem, Reading::Unknown, None),
            _ => return,
        };
        let (name, reading, operator) = reading;
        // A modem's first answer after a silence is a reading of its own: nothing to feed.
        let modem = self
            .modems
            .entry((agent.clone(), name.clone()))
            .or_default();
        if let (Reading::InService(_), Some(op)) = (reading, operator) {
            modem.operator = Some(op.clone());
        }
        let done = modem.feed(reading, stored.time, stored.late, config);
        self.cleared.extend(cleared(stored, name, done));
    }
}

/// The conditions a reading of `stored` cleared on modem `name`.
fn cleared(
    stored: &StoredEvent,
    name: &str,
    done: Vec<(CoverageLoss, Active, DateTime<Utc>)>,
) -> impl Iterator<Item = Cleared> {
    let (agent, late) = (stored.envelope.agent.clone(), stored.late);
    let name = name.to_string();
    done.into_iter().map(move |(what, active, until)| Cleared {
        agent: agent.clone(),
        modem: name.clone(),
        what,
        active,
        until,
        late,
    })
}

fn reading_of(signal: &Signal) -> Reading {
    if signal.in_service() {
        Reading::InService(signal.technology)
    } else {
        Reading::NoService
    }
}

/// The alert subject of a modem's condition: `viettel (Viettel)`, `viettel (Viettel) · 5G`.
pub fn subject(modem: &str, what: CoverageLoss, operator: Option<&str>) -> String {
    let mut s = modem.to_string();
    if let Some(op) = operator {
        s.push_str(&format!(" ({op})"));
    }
    if what == CoverageLoss::Lost5g {
        s.push_str(" · 5G");
    }
    s
}
