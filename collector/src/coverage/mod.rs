//! Pure: the coverage report. Stored cellular events (effective times) → per site and operator
//! the share of measured time on 5G / 4G / 3G-2G / no service, median RSRP and SINR, the typical
//! quality class and the number of readings; per commune and province how many sites have usable
//! 5G and how many inventory sites have no measurements. Definitions in `docs/coverage.md`.
//!
//! - A reading covers the time until the next item of its `(agent, modem)` stream, at most the
//!   stream's gap bound (`stream.rs`: 3 × the usual gap). Time while the modem did not answer
//!   (`modem_stopped_answering` … next reading), after an agent restart until its first reading,
//!   or while the agent sent nothing beyond the bound is *not measured* — never "no service".
//! - A reading without service belongs to the PLMN the modem last had in service, else
//!   `unknown`.
//! - Sites come from the inventory; an agent it does not list is its own site, named by its id.
//!
//! [`Coverage::apply`] takes every stored event in store order (memory: one small stream per
//! modem and one tally per site and operator); [`Coverage::finish`] gives the [`Report`].
//! Days whose readings retention deleted come from the daily rollups instead (ADR 17):
//! `rollup.rs` writes them (one `coverage_day_rolled_up` per modem and Vietnam day, `day.rs`),
//! `plan.rs` reads whole rolled-up days as rollups ([`Coverage::add_rollup`]) and the rest as
//! raw readings, going on from the last rollups' carry ([`Coverage::resume`]), each part
//! counting only its own time ([`Coverage::absorb`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use netmon_events::{AgentId, Event, ProvinceId};

use crate::inventory::Inventory;
use crate::store::StoredEvent;

pub mod cli;
pub mod day;
mod plan;
pub mod rollup;
#[cfg(test)]
mod rollup_tests;
mod stream;
#[cfg(test)]
pub(crate) mod synthetic;
mod tally;
#[cfg(test)]
mod tests;

pub use plan::{Plan, Read, report};

pub use stream::{DEFAULT_BOUND, GAP_FACTOR, MAX_BOUND};
use stream::{Item, Reading, Span, Stream};
pub use tally::Tally;

/// The event types [`Coverage::apply`] uses; a caller may read only these from the store.
pub const TYPES: &[&str] = &[
    "cellular_signal_sampled",
    "modem_stopped_answering",
    "agent_started",
];

/// The type of the daily rollups the report reads for the days that have them (`rollup.rs`).
pub const ROLLUP_TYPE: &str = "coverage_day_rolled_up";

/// The operator key of readings with no PLMN ever seen.
pub const UNKNOWN_PLMN: &str = "unknown";

/// What the report covers: `[from, to)` and optionally one province or commune (inventory ids).
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub province: Option<ProvinceId>,
    pub commune: Option<String>,
}

/// Where readings are counted: an inventory site, or an agent the inventory does not list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    Site(String),
    Agent(AgentId),
}

/// One row: a site on one operator's network.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub province: ProvinceId,
    pub province_name: String,
    pub commune: Option<String>,
    pub commune_name: Option<String>,
    pub place: Place,
    /// The site's display name, or the unlisted agent's id.
    pub site_name: String,
    /// `"452-04"`, or [`UNKNOWN_PLMN`].
    pub plmn: String,
    pub tally: Tally,
}

/// Whether a summary is for a commune or a whole province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Commune,
    Province,
}

/// "x/y sites with usable 5G" for a commune or a province.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub level: Level,
    pub province: ProvinceId,
    /// The commune's or the province's id.
    pub id: String,
    pub name: String,
    /// Sites with measured time (inventory sites and, in a province, unlisted agents).
    pub measured: usize,
    /// Measured sites with usable 5G on at least one operator.
    pub usable_5g: usize,
    /// Inventory sites without any measured time in the window.
    pub unmeasured: usize,
}

impl Summary {
    /// `usable_5g / measured` in percent; `None` without measured sites.
    pub fn usable_pct(&self) -> Option<f64> {
        (self.measured > 0).then(|| 100.0 * self.usable_5g as f64 / self.measured as f64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Ordered by province, commune, site, PLMN.
    pub rows: Vec<Row>,
    /// Communes first (by province and id), then provinces.
    pub summaries: Vec<Summary>,
    /// Readings that came in after much later ones of the same modem and were left out.
    pub out_of_order: u64,
}

/// The fold.
#[derive(Debug)]
pub struct Coverage<'a> {
    scope: Scope,
    from: i64,
    to: i64,
    inventory: Option<&'a Inventory>,
    streams: HashMap<(AgentId, String), Stream>,
    modems: HashMap<AgentId, Vec<String>>,
    /// Which place and province each stream counts under.
    homes: HashMap<AgentId, (Place, ProvinceId)>,
    tallies: BTreeMap<(Place, String), Tally>,
    /// Left out by the rollups and the folds absorbed.
    out_of_order: u64,
}

impl<'a> Coverage<'a> {
    pub fn new(scope: Scope, inventory: Option<&'a Inventory>) -> Self {
        Self {
            from: scope.from.timestamp_millis(),
            to: scope.to.timestamp_millis(),
            scope,
            inventory,
            streams: HashMap::new(),
            modems: HashMap::new(),
            homes: HashMap::new(),
            tallies: BTreeMap::new(),
            out_of_order: 0,
        }
    }

    /// The earliest effective time [`Coverage::apply`] uses: a reading up to [`MAX_BOUND`]
    /// before the window may reach into it.
    pub fn reads_from(&self) -> DateTime<Utc> {
        self.scope.from - chrono::TimeDelta::milliseconds(MAX_BOUND)
    }

    /// Folds one stored event (any type; only the [`TYPES`] matter).
    pub fn apply(&mut self, stored: &StoredEvent) {
        let time = stored.time.timestamp_millis();
        if time >= self.to || time < self.from.saturating_sub(MAX_BOUND) {
            return;
        }
        let agent = &stored.envelope.agent;
        let (modem, item) = match item_of(&stored.envelope.event) {
            Some(found) => found,
            None if matches!(stored.envelope.event, Event::AgentStarted { .. }) => {
                let modems = self.modems.get(agent).cloned().unwrap_or_default();
                for modem in modems {
                    self.push(stored, &modem, time, Item::Break);
                }
                return;
            }
            None => return,
        };
        if !self.knows(stored) {
            return;
        }
        self.push(stored, modem, time, item);
    }

    /// Whether `stored`'s agent is in scope (its home noted on first sight).
    fn knows(&mut self, stored: &StoredEvent) -> bool {
        let agent = &stored.envelope.agent;
        if !self.homes.contains_key(agent) {
            let Some(home) = self.home(stored) else {
                return false;
            };
            self.homes.insert(agent.clone(), home);
        }
        true
    }

    /// Adds a stored `coverage_day_rolled_up` whose whole day is inside the window.
    pub fn add_rollup(&mut self, stored: &StoredEvent) {
        let Event::CoverageDayRolledUp {
            day,
            operators,
            out_of_order,
            ..
        } = &stored.envelope.event
        else {
            return;
        };
        let day = day::Day::from_date(*day);
        if day.start() < self.from || day.end() > self.to || !self.knows(stored) {
            return;
        }
        let Some((place, _)) = self.homes.get(&stored.envelope.agent) else {
            return;
        };
        for part in operators {
            self.tallies
                .entry((place.clone(), part.plmn.clone()))
                .or_default()
                .merge(&Tally::from_day(part));
        }
        self.out_of_order += out_of_order;
    }

    /// Goes on from a stored `coverage_day_rolled_up` of the day that ends where the window
    /// starts: its modem's stream resumes from the rollup's carry.
    pub fn resume(&mut self, stored: &StoredEvent) {
        let Event::CoverageDayRolledUp {
            modem, day, carry, ..
        } = &stored.envelope.event
        else {
            return;
        };
        let day = day::Day::from_date(*day);
        if day.end() != self.from || !self.knows(stored) {
            return;
        }
        let agent = &stored.envelope.agent;
        let key = (agent.clone(), modem.clone());
        if !self.streams.contains_key(&key) {
            self.modems
                .entry(agent.clone())
                .or_default()
                .push(modem.clone());
        }
        self.streams.insert(key, Stream::resume(carry, day.start()));
    }

    /// Adds the figures of `other`, a fold over another part of the same window.
    pub fn absorb(&mut self, mut other: Coverage<'_>) {
        other.close();
        for (key, tally) in &other.tallies {
            self.tallies.entry(key.clone()).or_default().merge(tally);
        }
        for (agent, home) in other.homes {
            self.homes.entry(agent).or_insert(home);
        }
        self.out_of_order += other.out_of_order;
    }

    /// Ends every stream: its last reading covers up to its bound.
    fn close(&mut self) {
        for ((agent, _), stream) in &mut self.streams {
            if let Some((place, _)) = self.homes.get(agent) {
                let tallies = &mut self.tallies;
                stream.finish(&mut |span| account(tallies, place, self.from, self.to, span));
            }
            self.out_of_order += stream.out_of_order;
            stream.out_of_order = 0;
        }
    }

    fn push(&mut self, stored: &StoredEvent, modem: &str, time: i64, item: Item) {
        let agent = &stored.envelope.agent;
        let Some((place, _)) = self.homes.get(agent) else {
            return;
        };
        let key = (agent.clone(), modem.to_owned());
        if !self.streams.contains_key(&key) {
            self.modems
                .entry(agent.clone())
                .or_default()
                .push(modem.to_owned());
        }
        let stream = self.streams.entry(key).or_default();
        let (from, to, tallies) = (self.from, self.to, &mut self.tallies);
        stream.push(time, item, &mut |span| {
            account(tallies, place, from, to, span);
        });
    }

    /// The place and province of `stored`'s agent, if in scope.
    fn home(&self, stored: &StoredEvent) -> Option<(Place, ProvinceId)> {
        let agent = &stored.envelope.agent;
        let site = self.inventory.and_then(|i| i.site_of(agent));
        let (place, province, commune) = match site {
            Some(site) => {
                let province = self
                    .inventory
                    .and_then(|i| i.commune_of(site))
                    .map_or_else(|| stored.province.clone(), |c| c.province.clone());
                (
                    Place::Site(site.id.clone()),
                    province,
                    Some(site.commune.as_str()),
                )
            }
            None => (Place::Agent(agent.clone()), stored.province.clone(), None),
        };
        let in_province = self.scope.province.as_ref().is_none_or(|p| *p == province);
        let in_commune = self
            .scope
            .commune
            .as_deref()
            .is_none_or(|c| Some(c) == commune);
        (in_province && in_commune).then_some((place, province))
    }

    /// Ends every stream and builds the report.
    pub fn finish(mut self) -> Report {
        self.close();
        let out_of_order = self.out_of_order;
        let provinces: HashMap<&Place, &ProvinceId> =
            self.homes.values().map(|(place, p)| (place, p)).collect();
        let mut rows: Vec<Row> = self
            .tallies
            .iter()
            .filter(|(_, tally)| tally.measured() > 0 || tally.samples > 0)
            .filter_map(|((place, plmn), tally)| {
                let province = (*provinces.get(place)?).clone();
                Some(self.row(place, province, plmn, tally))
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.province, &a.commune, &a.place, &a.plmn).cmp(&(
                &b.province,
                &b.commune,
                &b.place,
                &b.plmn,
            ))
        });
        let summaries = self.summaries(&rows);
        Report {
            from: self.scope.from,
            to: self.scope.to,
            rows,
            summaries,
            out_of_order,
        }
    }

    fn row(&self, place: &Place, province: ProvinceId, plmn: &str, tally: &Tally) -> Row {
        let site = match place {
            Place::Site(id) => self.inventory.and_then(|i| i.sites.get(id)),
            Place::Agent(_) => None,
        };
        let commune = site.and_then(|s| self.inventory.and_then(|i| i.commune_of(s)));
        Row {
            province_name: self.province_name(&province),
            province,
            commune: site.map(|s| s.commune.clone()),
            commune_name: commune.map(|c| c.name.clone()),
            site_name: match (site, place) {
                (Some(site), _) => site.name.clone(),
                (None, Place::Site(id)) => id.clone(),
                (None, Place::Agent(agent)) => agent.to_string(),
            },
            place: place.clone(),
            plmn: plmn.to_owned(),
            tally: tally.clone(),
        }
    }

    fn province_name(&self, province: &ProvinceId) -> String {
        self.inventory
            .and_then(|i| i.provinces.get(province))
            .map_or_else(|| province.to_string(), |p| p.name.clone())
    }

    /// Per commune of the inventory in scope, then per province.
    fn summaries(&self, rows: &[Row]) -> Vec<Summary> {
        // Per place: measured at all, usable 5G on some operator.
        let mut places: BTreeMap<&Place, (ProvinceId, Option<&str>, bool)> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.tally.measured() > 0) {
            let entry = places.entry(&row.place).or_insert((
                row.province.clone(),
                row.commune.as_deref(),
                false,
            ));
            entry.2 |= row.tally.has_usable_5g();
        }
        let mut communes: BTreeMap<(ProvinceId, String), Summary> = BTreeMap::new();
        let mut provinces: BTreeMap<ProvinceId, Summary> = BTreeMap::new();
        let empty = |level, province: &ProvinceId, id: &str, name: &str| Summary {
            level,
            province: province.clone(),
            id: id.to_owned(),
            name: name.to_owned(),
            measured: 0,
            usable_5g: 0,
            unmeasured: 0,
        };
        if let Some(inventory) = self.inventory {
            for site in inventory.sites.values() {
                let Some(commune) = inventory.commune_of(site) else {
                    continue;
                };
                let in_scope = self
                    .scope
                    .province
                    .as_ref()
                    .is_none_or(|p| *p == commune.province)
                    && self.scope.commune.as_ref().is_none_or(|c| *c == commune.id);
                if !in_scope {
                    continue;
                }
                let measured = places.get(&Place::Site(site.id.clone())).map(|e| e.2);
                let province_name = self.province_name(&commune.province);
                let summaries = [
                    communes
                        .entry((commune.province.clone(), commune.id.clone()))
                        .or_insert_with(|| {
                            empty(
                                Level::Commune,
                                &commune.province,
                                &commune.id,
                                &commune.name,
                            )
                        }),
                    provinces
                        .entry(commune.province.clone())
                        .or_insert_with(|| {
                            empty(
                                Level::Province,
                                &commune.province,
                                commune.province.as_str(),
                                &province_name,
                            )
                        }),
                ];
                for summary in summaries {
                    match measured {
                        Some(usable) => {
                            summary.measured += 1;
                            summary.usable_5g += usize::from(usable);
                        }
                        None => summary.unmeasured += 1,
                    }
                }
            }
        }
        // Unlisted agents count in their province.
        for (place, (province, _, usable)) in &places {
            if matches!(place, Place::Agent(_)) {
                let name = self.province_name(province);
                let summary = provinces
                    .entry(province.clone())
                    .or_insert_with(|| empty(Level::Province, province, province.as_str(), &name));
                summary.measured += 1;
                summary.usable_5g += usize::from(*usable);
            }
        }
        communes
            .into_values()
            .chain(provinces.into_values())
            .collect()
    }
}

/// The stream item a stored event is (`agent_started` is one per modem of the agent: the
/// caller's).
fn item_of(event: &Event) -> Option<(&str, Item)> {
    match event {
        Event::CellularSignalSampled {
            modem,
            signal,
            quality,
        } => {
            let nr = signal.technology.is_5g();
            let reading = Reading {
                technology: signal.technology,
                in_service: signal.in_service(),
                plmn: signal.plmn.clone(),
                operator: signal.operator.clone(),
                quality: *quality,
                rsrp: if nr { signal.nr_rsrp_dbm } else { None }.or(signal.rsrp_dbm),
                sinr: if nr { signal.nr_sinr_db } else { None }.or(signal.sinr_db),
            };
            Some((modem.as_str(), Item::Reading(reading)))
        }
        Event::ModemStoppedAnswering { modem, .. } => Some((modem.as_str(), Item::Break)),
        _ => None,
    }
}

/// Adds the part of `span` inside `[from, to)` to its tally; a reading inside the window counts.
fn account(
    tallies: &mut BTreeMap<(Place, String), Tally>,
    place: &Place,
    from: i64,
    to: i64,
    span: Span,
) {
    let plmn = span
        .reading
        .plmn
        .clone()
        .unwrap_or_else(|| UNKNOWN_PLMN.to_owned());
    let Some((ms, inside)) = portion(from, to, &span) else {
        return;
    };
    add(
        tallies.entry((place.clone(), plmn)).or_default(),
        &span,
        ms,
        inside,
    );
}

/// How much of `span` is inside `[from, to)` and whether its reading was taken inside; `None`
/// when it does not touch the window.
fn portion(from: i64, to: i64, span: &Span) -> Option<(i64, bool)> {
    let start = span.start.max(from);
    let end = span.end.min(to);
    let inside = (from..to).contains(&span.start);
    (end > start || inside).then_some(((end - start).max(0), inside))
}

fn add(tally: &mut Tally, span: &Span, ms: i64, inside: bool) {
    if ms > 0 {
        tally.add_time(&span.reading, ms);
    }
    if inside {
        tally.add_sample(&span.reading);
    }
}
