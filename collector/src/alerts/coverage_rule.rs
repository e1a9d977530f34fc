//! Pure: the `coverage_lost` rule. One alert per open condition of a modem ([`super::modem_conditions`]):
//! subject `viettel (Viettel)` for no service at all, `viettel (Viettel) · 5G` for 5G lost (two
//! keys, so that a 5G loss that worsens into no service at all is told, and its end too). A
//! 5G-lost alert carries the generation in use as `value` (4, or 3 for 3G/2G) and 5 as
//! `threshold`; a no-service alert carries neither.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use netmon_events::{AlertKind, Detection};

use super::book::{AlertKey, Book};
use super::modem_conditions::{Active, Cleared, CoverageLoss, Modems, subject};
use super::wanted::Wanted;
use crate::state::State;

fn key(
    agent: &netmon_events::AgentId,
    modem: &str,
    what: CoverageLoss,
    active: &Active,
) -> AlertKey {
    AlertKey {
        kind: AlertKind::CoverageLost,
        agent: agent.clone(),
        link: None,
        subject: Some(subject(modem, what, active.operator.as_deref())),
    }
}

fn one(key: AlertKey, state: &State, what: CoverageLoss, active: &Active) -> Option<Wanted> {
    let province = state.agents.get(&key.agent)?.province.clone();
    let (value, threshold) = match what {
        CoverageLoss::NoService => (None, None),
        CoverageLoss::Lost5g => (active.generation.map(f64::from), Some(5.0)),
    };
    Some(Wanted {
        key,
        province,
        target: None,
        since: active.since,
        detected_by: Detection::AgentProbes,
        value,
        threshold,
        late: active.late,
    })
}

/// Adds the coverage alerts that should be open now.
pub fn desired(state: &State, modems: &Modems, out: &mut BTreeMap<AlertKey, Wanted>) {
    for ((agent, modem), m) in &modems.modems {
        let conditions = [
            (CoverageLoss::NoService, &m.no_service.active),
            (CoverageLoss::Lost5g, &m.lost_5g.active),
        ];
        for (what, active) in conditions {
            let Some(active) = active else {
                continue;
            };
            let k = key(agent, modem, what, active);
            if let Some(w) = one(k.clone(), state, what, active) {
                out.insert(k, w);
            }
        }
    }
}

/// Conditions that opened and cleared between two evaluations (a backlog replayed from a
/// journal) and that the book does not have: opened and resolved at once, so that the history
/// has them and the outbox can report them late.
pub fn instants(
    cleared: &[Cleared],
    book: &Book,
    state: &State,
    wanted: &BTreeMap<AlertKey, Wanted>,
) -> Vec<(Wanted, DateTime<Utc>)> {
    cleared
        .iter()
        .filter_map(|c| {
            let k = key(&c.agent, &c.modem, c.what, &c.active);
            let known = book.open.contains_key(&k)
                || wanted.contains_key(&k)
                || book
                    .alerts
                    .values()
                    .any(|a| a.key == k && a.since == c.active.since);
            if known {
                return None;
            }
            let mut w = one(k, state, c.what, &c.active)?;
            w.late |= c.late;
            Some((w, c.until.max(c.active.since)))
        })
        .collect()
}

/// When the condition behind an open alert ended and whether that was reported late, if it
/// cleared since the last evaluation.
pub fn resolution(
    cleared: &[Cleared],
    key: &AlertKey,
    since: DateTime<Utc>,
) -> Option<(DateTime<Utc>, bool)> {
    cleared
        .iter()
        .find(|c| {
            c.active.since == since
                && key.agent == c.agent
                && key.subject.as_deref()
                    == Some(&subject(&c.modem, c.what, c.active.operator.as_deref()))
        })
        .map(|c| (c.until, c.late))
}
