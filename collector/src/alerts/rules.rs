//! Pure: the rules. From the live state, the signals, the inventory and an explicit `now`, work
//! out which alerts should be open ([`desired`]), then compare with the book: open what is new
//! (deciding at once whether a parent's alert explains it), resolve what ended.
//!
//! The rules are level-triggered: whatever happened while the collector was down, one evaluation
//! after the replay brings the book in line with the state. A new condition is a new arm in
//! [`desired`] (and an [`AlertKind`]).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{
    AgentId, AlertKind, Detection, Event, LinkRole, ProvinceId, SilenceReason, Target,
};

use super::book::{Alert, AlertKey, Book};
use super::coverage_rule;
use super::modem_conditions::Cleared;
use super::signals::{Ended, Hysteresis, Limits, Reboot, Signals};
pub use super::wanted::Wanted;
use crate::alerts::AlertsConfig;
use crate::inventory::Inventory;
use crate::state::{LinkStatus, State};

/// A collector-made event and the agent and province it is filed under.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    pub agent: AgentId,
    pub province: ProvinceId,
    pub event: Event,
}

/// How far before a parent's outage a child's may start and still be explained by it (the
/// child's first failed round precedes the parent's last will by the keep-alive).
const SLACK: TimeDelta = TimeDelta::seconds(60);

/// Every alert the state and signals call for at `now`, by key.
pub fn desired(
    state: &State,
    signals: &Signals,
    inventory: Option<&Inventory>,
    config: &AlertsConfig,
    now: DateTime<Utc>,
) -> BTreeMap<AlertKey, Wanted> {
    let mut wanted = BTreeMap::new();
    let key = |kind, agent: &AgentId, link, subject: Option<String>| AlertKey {
        kind,
        agent: agent.clone(),
        link,
        subject,
    };
    let limits = |agent: &AgentId| Limits {
        global: config,
        site: inventory
            .and_then(|i| i.site_of(agent))
            .map(|s| s.thresholds)
            .unwrap_or_default(),
    };
    for (agent, a) in &state.agents {
        if let Some(inventory) = inventory
            && !inventory.agents.contains_key(agent)
        {
            let k = key(AlertKind::UnknownAgent, agent, None, None);
            let since = a.newest_time.or(a.last_seen).unwrap_or_default();
            wanted.insert(
                k.clone(),
                plain(k, &a.province, since, Detection::Inventory),
            );
        }
        if !a.online
            && let Some(silent) = a.silent_since
        {
            let detected_by = match signals.silence.get(agent) {
                Some(SilenceReason::LastWill) => Detection::LastWill,
                _ => Detection::MissedHeartbeats,
            };
            let k = key(AlertKind::AgentUnreachable, agent, None, None);
            let since = a.last_seen.unwrap_or(silent).min(silent);
            wanted.insert(k.clone(), plain(k, &a.province, since, detected_by));
        }
    }
    for (link_key, link) in &state.links {
        let Some(agent) = state.agents.get(&link_key.agent) else {
            continue;
        };
        let target = Target {
            name: link.name.clone(),
            address: link_key.address,
            role: link.role,
        };
        let signal = signals
            .links
            .get(&(link_key.agent.clone(), link_key.address));
        let mut add = |kind, since, detected_by, value, threshold, late| {
            let k = key(kind, &link_key.agent, Some(link_key.address), None);
            wanted.insert(
                k.clone(),
                Wanted {
                    key: k,
                    province: agent.province.clone(),
                    target: Some(target.clone()),
                    since,
                    detected_by,
                    value,
                    threshold,
                    late,
                },
            );
        };
        if link.status == LinkStatus::Down
            && let Some(since) = link.since
        {
            let late = signal.is_some_and(|s| s.down_late);
            add(
                AlertKind::LinkDown,
                since,
                Detection::AgentProbes,
                None,
                None,
                late,
            );
        }
        let Some(signal) = signal else {
            continue;
        };
        let limits = limits(&link_key.agent);
        let mut degraded = |kind, h: &Hysteresis, threshold| {
            if let Some((since, value)) = h.active {
                add(
                    kind,
                    since,
                    Detection::Statistics,
                    Some(value),
                    Some(threshold),
                    h.late,
                );
            }
        };
        degraded(AlertKind::HighLoss, &signal.high_loss, limits.loss_pct());
        degraded(
            AlertKind::HighLatency,
            &signal.high_latency,
            limits.latency_ms(),
        );
        degraded(
            AlertKind::Congestion,
            &signal.congestion,
            limits.congestion_factor(),
        );
        if let Some((since, late)) = signal.flapping_at(now, config.flap_window) {
            add(
                AlertKind::Flapping,
                since,
                Detection::StateChanges,
                None,
                None,
                late,
            );
        }
    }
    for ((agent, subject), (since, late)) in &signals.interfaces_down {
        let Some(a) = state.agents.get(agent) else {
            continue;
        };
        let k = key(AlertKind::InterfaceDown, agent, None, Some(subject.clone()));
        let mut w = plain(k.clone(), &a.province, *since, Detection::AgentProbes);
        w.late = *late;
        wanted.insert(k, w);
    }
    for ((agent, subject), signal) in &signals.interfaces {
        let (Some(a), Some((since, value))) = (state.agents.get(agent), signal.congestion.active)
        else {
            continue;
        };
        let k = key(AlertKind::Congestion, agent, None, Some(subject.clone()));
        wanted.insert(
            k.clone(),
            Wanted {
                key: k,
                province: a.province.clone(),
                target: None,
                since,
                detected_by: Detection::AgentProbes,
                value: Some(value),
                threshold: Some(limits(agent).utilisation_pct()),
                late: signal.congestion.late,
            },
        );
    }
    coverage_rule::desired(state, &signals.modems, &mut wanted);
    wanted
}

fn plain(key: AlertKey, province: &ProvinceId, since: DateTime<Utc>, by: Detection) -> Wanted {
    Wanted {
        key,
        province: province.clone(),
        target: None,
        since,
        detected_by: by,
        value: None,
        threshold: None,
        late: false,
    }
}

/// Whether an alert of this kind cuts off the sites behind its site (so it explains theirs).
fn cuts_off(kind: AlertKind, target: Option<&Target>) -> bool {
    match kind {
        AlertKind::AgentUnreachable => true,
        AlertKind::LinkDown => target.is_some_and(|t| t.role != LinkRole::Other),
        _ => false,
    }
}

/// The alert that explains a new one, if any: the agent's own unreachability, the link's
/// flapping, or the outage of an ancestor site (its agent unreachable or its uplink down).
fn suppressor<'a>(
    new: &Wanted,
    candidates: impl Iterator<Item = &'a Alert>,
    inventory: Option<&Inventory>,
) -> Option<u64> {
    let site = inventory.and_then(|i| i.site_of(&new.key.agent));
    let ancestors: Vec<&str> = match (inventory, site) {
        (Some(i), Some(s)) => i.ancestors(s).into_iter().map(|a| a.id.as_str()).collect(),
        _ => Vec::new(),
    };
    let mut best: Option<(usize, u64)> = None;
    for p in candidates {
        let covers_time =
            new.since >= p.since - SLACK && p.resolved.is_none_or(|r| new.since <= r.until);
        if !covers_time {
            continue;
        }
        let rank = if p.key.agent == new.key.agent {
            match (p.key.kind, new.key.kind) {
                (AlertKind::AgentUnreachable, k) if k != AlertKind::AgentUnreachable => Some(0),
                (AlertKind::Flapping, AlertKind::LinkDown) if p.key.link == new.key.link => Some(0),
                _ => None,
            }
        } else if new.key.kind != AlertKind::CoverageLost && cuts_off(p.key.kind, p.target.as_ref())
        {
            // Coverage is about the radio at the site, which a parent's outage does not explain.
            p.site
                .as_deref()
                .and_then(|s| ancestors.iter().position(|a| *a == s))
                .map(|depth| depth + 1)
        } else {
            None
        };
        if let Some(rank) = rank
            && best.is_none_or(|(r, _)| rank > r || (rank == r && p.id < best.map_or(0, |b| b.1)))
        {
            // Prefer the farthest ancestor (the root cause), then the oldest alert.
            best = Some((rank, p.id));
        }
    }
    best.map(|(_, id)| id)
}

/// What ended or happened since the last evaluation, taken from the signals.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// Outages that ended.
    pub ended: &'a [Ended],
    /// Device restarts.
    pub reboots: &'a [Reboot],
    /// Coverage conditions that cleared.
    pub coverage: &'a [Cleared],
}

/// Compares the wanted alerts with the book and returns the events that bring it in line.
pub fn reconcile(
    wanted: &BTreeMap<AlertKey, Wanted>,
    finished: Finished<'_>,
    book: &Book,
    state: &State,
    inventory: Option<&Inventory>,
    now: DateTime<Utc>,
) -> Vec<Made> {
    let mut made = Vec::new();
    let mut next = book.next_alert.max(1);
    // Outages that began and ended between two evaluations (replayed from a journal) are opened
    // and resolved at once, so that the history has them and the outbox can report them late.
    // Device restarts are instants, told once.
    let mut instants = coverage_rule::instants(finished.coverage, book, state, wanted);
    for outage in finished.ended {
        let key = AlertKey {
            kind: AlertKind::LinkDown,
            agent: outage.agent.clone(),
            link: Some(outage.target.address),
            subject: None,
        };
        let known = book.open.contains_key(&key)
            || book
                .alerts
                .values()
                .any(|a| a.key == key && a.since == outage.since);
        let Some(province) = state.agents.get(&outage.agent).map(|a| a.province.clone()) else {
            continue;
        };
        if known || wanted.contains_key(&key) {
            continue;
        }
        let w = Wanted {
            key,
            province,
            target: Some(outage.target.clone()),
            since: outage.since,
            detected_by: Detection::AgentProbes,
            value: None,
            threshold: None,
            late: outage.late,
        };
        instants.push((w, outage.until.max(outage.since)));
    }
    for reboot in finished.reboots {
        let Some(province) = state.agents.get(&reboot.agent).map(|a| a.province.clone()) else {
            continue;
        };
        let w = Wanted {
            key: AlertKey {
                kind: AlertKind::DeviceRebooted,
                agent: reboot.agent.clone(),
                link: None,
                subject: Some(reboot.subject.clone()),
            },
            province,
            target: None,
            since: reboot.at,
            detected_by: Detection::AgentProbes,
            value: Some(reboot.previous_uptime_s as f64),
            threshold: None,
            late: reboot.late,
        };
        instants.push((w, reboot.at));
    }
    let mut recorded: Vec<Alert> = Vec::new();
    for (w, until) in instants {
        let alert = open(&w, next, inventory, now, &mut made);
        if let Some(by) = suppressor(&w, book.alerts.values().chain(recorded.iter()), inventory) {
            made.push(suppressed(&alert, by));
        }
        made.push(Made {
            agent: w.key.agent.clone(),
            province: w.province.clone(),
            event: Event::AlertResolved {
                alert: next,
                until,
                duration_ms: u64::try_from((until - w.since).num_milliseconds()).unwrap_or(0),
                late: w.late,
            },
        });
        next += 1;
        recorded.push(alert);
    }
    // Resolve what ended.
    for (key, id) in &book.open {
        if wanted.contains_key(key) {
            continue;
        }
        let Some(alert) = book.alerts.get(id) else {
            continue;
        };
        let (until, late) = match (key.kind, key.link) {
            (AlertKind::LinkDown, Some(address)) => state
                .links
                .get(&crate::state::LinkKey {
                    agent: key.agent.clone(),
                    address,
                })
                .and_then(|l| l.last_outage)
                .filter(|o| o.since == alert.since)
                .map_or((now, false), |o| (o.until, o.late)),
            (AlertKind::CoverageLost, _) => {
                coverage_rule::resolution(finished.coverage, key, alert.since)
                    .unwrap_or((now, false))
            }
            _ => (now, false),
        };
        let until = until.max(alert.since);
        made.push(Made {
            agent: key.agent.clone(),
            province: alert.province.clone(),
            event: Event::AlertResolved {
                alert: *id,
                until,
                duration_ms: u64::try_from((until - alert.since).num_milliseconds()).unwrap_or(0),
                late,
            },
        });
    }
    // Open what is new: parents first, so that their children see them.
    let mut new: Vec<&Wanted> = wanted
        .iter()
        .filter(|(k, _)| !book.open.contains_key(*k))
        .map(|(_, w)| w)
        .collect();
    let depth = |w: &Wanted| {
        inventory
            .and_then(|i| i.site_of(&w.key.agent).map(|s| i.ancestors(s).len()))
            .unwrap_or(0)
    };
    new.sort_by_key(|w| (depth(w), w.key.kind != AlertKind::AgentUnreachable, w.since));
    let mut opened: Vec<Alert> = Vec::new();
    for w in new {
        let id = next;
        next += 1;
        let alert = open(w, id, inventory, now, &mut made);
        let candidates = book.alerts.values().chain(opened.iter());
        if let Some(by) = suppressor(w, candidates, inventory) {
            made.push(suppressed(&alert, by));
        }
        // Children already open that this new alert explains.
        if cuts_off(alert.key.kind, alert.target.as_ref()) {
            for child in book.open.values().filter_map(|id| book.alerts.get(id)) {
                if child.suppressed_by.is_some() || child.key.agent == alert.key.agent {
                    if child.key.agent == alert.key.agent
                        && alert.key.kind == AlertKind::AgentUnreachable
                        && child.suppressed_by.is_none()
                        && child.key.kind != AlertKind::AgentUnreachable
                        && child.since >= alert.since - SLACK
                    {
                        made.push(suppressed(child, id));
                    }
                    continue;
                }
                let as_wanted = Wanted {
                    key: child.key.clone(),
                    province: child.province.clone(),
                    target: child.target.clone(),
                    since: child.since,
                    detected_by: child.detected_by,
                    value: None,
                    threshold: None,
                    late: child.late,
                };
                if suppressor(&as_wanted, std::iter::once(&alert), inventory) == Some(id) {
                    made.push(suppressed(child, id));
                }
            }
        }
        opened.push(alert);
    }
    made
}

fn suppressed(alert: &Alert, by: u64) -> Made {
    Made {
        agent: alert.key.agent.clone(),
        province: alert.province.clone(),
        event: Event::AlertSuppressed {
            alert: alert.id,
            by,
        },
    }
}

/// Whether `alert` cuts off the sites behind its site (its message names them).
pub fn cuts(alert: &Alert) -> bool {
    cuts_off(alert.key.kind, alert.target.as_ref())
}

/// Records the opening of `w` as alert `id`; returns the alert as the book will hold it.
fn open(
    w: &Wanted,
    id: u64,
    inventory: Option<&Inventory>,
    now: DateTime<Utc>,
    made: &mut Vec<Made>,
) -> Alert {
    let site = inventory
        .and_then(|i| i.site_of(&w.key.agent))
        .map(|s| s.id.clone());
    made.push(Made {
        agent: w.key.agent.clone(),
        province: w.province.clone(),
        event: Event::AlertOpened {
            alert: id,
            kind: w.key.kind,
            site: site.clone(),
            target: w.target.clone(),
            subject: w.key.subject.clone(),
            since: w.since,
            detected_by: w.detected_by,
            value: w.value,
            threshold: w.threshold,
            late: w.late,
        },
    });
    Alert {
        id,
        key: w.key.clone(),
        province: w.province.clone(),
        site,
        target: w.target.clone(),
        since: w.since,
        opened_at: now,
        detected_by: w.detected_by,
        value: w.value,
        threshold: w.threshold,
        late: w.late,
        resolved: None,
        suppressed_by: None,
        acknowledged: None,
        notified: Default::default(),
        reminders: 0,
        last_notice_at: None,
    }
}
