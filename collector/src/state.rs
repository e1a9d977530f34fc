//! The live state: a pure fold of the stored events.
//!
//! [`State::apply`] does no I/O, reads no clock and cannot fail; replaying the store through it
//! rebuilds exactly the state the running collector had. Maps are ordered so that the same events
//! always give the same iteration order (and byte-identical JSON, see `api.rs`).
//!
//! Times are the stored **effective** times (`StoredEvent::time`, see `clock.rs`); an outage's own
//! start (`since`, `down_since`) is shifted by the same correction, so an outage recorded while
//! the agent's clock was wrong, or replayed late from its journal, shows its true start and end.
//! Events arrive out of order when a backlog is replayed: an event of an older boot than the
//! agent's current one, or older (by seq) than the last applied event of its link, is counted but
//! does not change the agent's boot or the link's status.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use netmon_events::{AgentId, BootId, DownReason, Event, LinkRole, ProvinceId};
use serde::{Deserialize, Serialize};

use crate::store::{Origin, StoredEvent};

/// Weight of a new gap in the smoothed gap between an agent's messages.
const GAP_WEIGHT: f64 = 0.1;
/// Gaps shorter than this are a burst — a journal drained after an outage, an agent's first
/// messages at start — not its cadence, and teach nothing: learned, they made an agent that
/// reports once a minute "silent" seconds after its backlog came in.
pub const BURST_GAP_MS: f64 = 1000.0;

/// Everything the collector knows now about agents and their links.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub agents: BTreeMap<AgentId, AgentState>,
    pub links: BTreeMap<LinkKey, LinkState>,
    /// Store id of the last applied event (the state's cursor).
    pub last_id: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub province: ProvinceId,
    /// Boot and last seq of the newest agent-made event: the highest seq of the current boot; a
    /// different boot becomes current when its event is not older than the newest one.
    pub boot: Option<BootId>,
    pub last_seq: u64,
    /// Effective time of the newest agent-made event.
    pub newest_time: Option<DateTime<Utc>>,
    /// Received minus effective time of the newest agent-made event, in milliseconds.
    pub lag_ms: Option<i64>,
    /// Unacknowledged events in the agent's journal, from its newest heartbeat.
    pub backlog: Option<u64>,
    /// Events the agent's journal dropped unsent (sum of `journal_overflowed` counts).
    pub lost_events: u64,
    /// From `agent_started`.
    pub version: Option<String>,
    pub online: bool,
    /// Received time of the last agent-made event.
    pub last_seen: Option<DateTime<Utc>>,
    /// Time of the `agent_went_silent` that took it offline, while it stays silent.
    pub silent_since: Option<DateTime<Utc>>,
    /// Events stored about this agent, by anyone.
    pub events: u64,
    /// The agent's usual gap between messages (received times), smoothed, in milliseconds: an
    /// agent that publishes every second and stops is missed long before `silence.after`.
    pub gap_ms: Option<f64>,
}

/// A link is one agent's view of one target address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkKey {
    pub agent: AgentId,
    pub address: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkStatus {
    /// No round has succeeded yet and no outage was declared.
    Unknown,
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkState {
    pub name: String,
    pub role: LinkRole,
    pub status: LinkStatus,
    /// When the status last changed: the outage's `since` for down, the recovery (or first
    /// successful round) for up.
    pub since: Option<DateTime<Utc>>,
    pub last_rtt_ms: Option<f64>,
    pub last_loss_pct: Option<f64>,
    pub last_round: Option<DateTime<Utc>>,
    pub down_reason: Option<DownReason>,
    /// The last outage that ended.
    pub last_outage: Option<Outage>,
    /// Boot and seq of the last probe round applied, and of the last status change
    /// (`link_went_down`, `link_came_back`): an older one arriving later is ignored.
    pub round_seq: Option<(BootId, u64)>,
    pub status_seq: Option<(BootId, u64)>,
}

/// An outage that ended: its start and end in effective time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Its end was reported late (replayed from the agent's journal).
    pub late: bool,
}

/// An online agent that has been quiet for too long.
#[derive(Debug, Clone, PartialEq)]
pub struct Overdue {
    pub agent: AgentId,
    pub province: ProvinceId,
    pub last_seen: Option<DateTime<Utc>>,
}

impl State {
    /// Folds one stored event into the state.
    pub fn apply(&mut self, stored: &StoredEvent) {
        self.last_id = self.last_id.max(stored.id);
        // The alert book's own events are folded by `alerts`, not here; the coverage rollups
        // by the coverage report.
        if stored.envelope.event.is_alerting()
            || matches!(stored.envelope.event, Event::CoverageDayRolledUp { .. })
        {
            return;
        }
        let envelope = &stored.envelope;
        let agent = self
            .agents
            .entry(envelope.agent.clone())
            .or_insert_with(|| AgentState {
                province: stored.province.clone(),
                boot: None,
                last_seq: 0,
                newest_time: None,
                lag_ms: None,
                backlog: None,
                lost_events: 0,
                version: None,
                online: false,
                last_seen: None,
                silent_since: None,
                events: 0,
                gap_ms: None,
            });
        agent.events += 1;
        let time = stored.time;
        // Whether the event is the agent's newest, and whether it is of its current boot.
        let (mut newest, mut current) = (false, true);
        if stored.origin == Origin::Agent {
            agent.province = stored.province.clone();
            if agent.online
                && let Some(previous) = agent.last_seen
                && stored.received > previous
            {
                let gap = (stored.received - previous).num_milliseconds() as f64;
                if gap >= BURST_GAP_MS {
                    agent.gap_ms = Some(agent.gap_ms.map_or(gap, |g| g + GAP_WEIGHT * (gap - g)));
                }
            }
            agent.online = true;
            agent.silent_since = None;
            agent.last_seen = Some(stored.received);
            newest = match (&agent.boot, agent.newest_time) {
                (Some(boot), _) if *boot == envelope.boot => envelope.seq > agent.last_seq,
                (Some(_), Some(newest)) => time >= newest,
                _ => true,
            };
            if newest {
                agent.boot = Some(envelope.boot.clone());
                agent.last_seq = envelope.seq;
                agent.newest_time = Some(time);
                agent.lag_ms = Some((stored.received - time).num_milliseconds());
            }
            current = agent.boot.as_ref() == Some(&envelope.boot);
        }
        let shift = stored.correction();
        let position = (&envelope.boot, envelope.seq);
        match &envelope.event {
            Event::AgentStarted { .. }
            | Event::ProbeRoundCompleted { .. }
            | Event::ProbeWindowCompleted { .. }
                if !current => {}
            Event::LinkWentDown { .. } | Event::LinkCameBack { .. } if !current => {}
            Event::AgentStarted { version, .. } => {
                agent.version = Some(version.clone());
                // A new boot judges every link afresh and never reports the end of an outage
                // the previous boot declared: its links are unknown until its own rounds say.
                let first = LinkKey {
                    agent: envelope.agent.clone(),
                    address: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                };
                for (key, link) in self.links.range_mut(first..) {
                    if key.agent != envelope.agent {
                        break;
                    }
                    link.status = LinkStatus::Unknown;
                    link.since = None;
                    link.down_reason = None;
                    link.round_seq = None;
                    link.status_seq = None;
                }
            }
            Event::AgentHeartbeat { backlog, .. } if newest => {
                agent.backlog = Some(*backlog);
            }
            Event::AgentWentSilent { .. } => {
                if agent.online {
                    agent.silent_since = Some(time);
                }
                agent.online = false;
            }
            Event::ProbeRoundCompleted {
                target,
                received,
                rtt_avg_ms,
                loss_pct,
                ..
            }
            | Event::ProbeWindowCompleted {
                target,
                received,
                rtt_avg_ms,
                loss_pct,
                ..
            } => {
                let Some(link) = self.link(&envelope.agent, target, position, false) else {
                    return;
                };
                link.last_rtt_ms = *rtt_avg_ms;
                link.last_loss_pct = Some(*loss_pct);
                link.last_round = Some(time);
                if link.status == LinkStatus::Unknown && *received > 0 {
                    link.status = LinkStatus::Up;
                    link.since = Some(time);
                }
            }
            Event::LinkWentDown {
                target,
                since,
                reason,
                ..
            } => {
                let Some(link) = self.link(&envelope.agent, target, position, true) else {
                    return;
                };
                link.status = LinkStatus::Down;
                link.since = Some(*since + shift);
                link.down_reason = Some(*reason);
            }
            Event::LinkCameBack {
                target, down_since, ..
            } => {
                let late = stored.late;
                let Some(link) = self.link(&envelope.agent, target, position, true) else {
                    return;
                };
                link.status = LinkStatus::Up;
                link.since = Some(time);
                link.down_reason = None;
                link.last_outage = Some(Outage {
                    since: *down_since + shift,
                    until: time,
                    late,
                });
            }
            Event::JournalOverflowed { count, .. } => {
                agent.lost_events = agent.lost_events.saturating_add(*count);
            }
            _ => {}
        }
    }

    /// The link for `target` seen by `agent`, created as unknown; name and role follow the
    /// agent's latest config. `None` when an event of the same kind (a round; a status change)
    /// with a higher `seq` of the same boot was already applied to it: an out-of-order delivery
    /// must not undo a newer view.
    fn link(
        &mut self,
        agent: &AgentId,
        target: &netmon_events::Target,
        (boot, seq): (&BootId, u64),
        status: bool,
    ) -> Option<&mut LinkState> {
        let key = LinkKey {
            agent: agent.clone(),
            address: target.address,
        };
        let link = self.links.entry(key).or_insert_with(|| LinkState {
            name: target.name.clone(),
            role: target.role,
            status: LinkStatus::Unknown,
            since: None,
            last_rtt_ms: None,
            last_loss_pct: None,
            last_round: None,
            down_reason: None,
            last_outage: None,
            round_seq: None,
            status_seq: None,
        });
        let slot = if status {
            &mut link.status_seq
        } else {
            &mut link.round_seq
        };
        if let Some((b, s)) = slot
            && b == boot
            && seq <= *s
        {
            return None;
        }
        *slot = Some((boot.clone(), seq));
        if link.name != target.name {
            link.name.clone_from(&target.name);
        }
        link.role = target.role;
        Some(link)
    }

    /// Online agents whose last agent-made event was received before `cutoff` (or never).
    ///
    /// An agent is also overdue once it has been quiet for `cadence` times its usual gap between
    /// messages, but not before `floor`.
    pub fn overdue(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        cadence: f64,
        floor: chrono::TimeDelta,
    ) -> Vec<Overdue> {
        let missed = |a: &AgentState| match (a.gap_ms, a.last_seen) {
            (Some(gap), Some(seen)) => {
                let quiet = (now - seen).num_milliseconds() as f64;
                quiet >= (cadence * gap).max(floor.num_milliseconds() as f64)
            }
            _ => false,
        };
        self.agents
            .iter()
            .filter(|(_, a)| {
                a.online && (a.last_seen.is_none_or(|seen| seen < cutoff) || missed(a))
            })
            .map(|(id, a)| Overdue {
                agent: id.clone(),
                province: a.province.clone(),
                last_seen: a.last_seen,
            })
            .collect()
    }

    /// Whether `agent` is known and online.
    pub fn is_online(&self, agent: &AgentId) -> bool {
        self.agents.get(agent).is_some_and(|a| a.online)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::testkit::stored;

    const ADDR: &str = "10.20.0.1";

    fn round(received: u32) -> String {
        let rtt = if received > 0 {
            r#","rtt_avg_ms":1.5"#
        } else {
            ""
        };
        format!(
            r#""type":"probe_round_completed","target":{{"name":"UBND xã Cẩm Tú","address":"{ADDR}","role":"commune"}},"sent":3,"received":{received}{rtt},"loss_pct":{}"#,
            if received > 0 { 0.0 } else { 100.0 }
        )
    }

    fn down() -> String {
        format!(
            r#""type":"link_went_down","target":{{"name":"UBND xã Cẩm Tú","address":"{ADDR}","role":"commune"}},"since":"2026-11-23T02:00:03.000Z","reason":"no_reply","failed_rounds":3"#
        )
    }

    fn back() -> String {
        format!(
            r#""type":"link_came_back","target":{{"name":"UBND xã Cẩm Tú","address":"{ADDR}","role":"commune"}},"down_since":"2026-11-23T02:00:03.000Z","down_for_ms":60000,"reason":"no_reply""#
        )
    }

    const SILENT: &str = r#""type":"agent_went_silent","reason":"last_will""#;

    /// `(origin, seq, event body)`.
    type Input = (Origin, u64, String);

    /// Applies the events in order and returns the state.
    fn fold(events: &[Input]) -> State {
        let mut state = State::default();
        for (i, (origin, seq, body)) in events.iter().enumerate() {
            state.apply(&stored(i as i64 + 1, *origin, "a", *seq, body));
        }
        state
    }

    fn link(state: &State) -> &LinkState {
        state
            .links
            .get(&LinkKey {
                agent: "a".parse().unwrap(),
                address: ADDR.parse().unwrap(),
            })
            .unwrap()
    }

    #[test]
    fn link_status_transitions() {
        use LinkStatus::*;
        use Origin::Agent;
        // (events, expected status, expected down reason)
        let cases: Vec<(Vec<Input>, LinkStatus, Option<DownReason>)> = vec![
            (vec![(Agent, 1, round(0))], Unknown, None),
            (vec![(Agent, 1, round(0)), (Agent, 2, round(2))], Up, None),
            (vec![(Agent, 1, down())], Down, Some(DownReason::NoReply)),
            (
                vec![(Agent, 1, round(3)), (Agent, 2, down())],
                Down,
                Some(DownReason::NoReply),
            ),
            // A successful round does not end an outage; only link_came_back does.
            (
                vec![(Agent, 1, down()), (Agent, 2, round(3))],
                Down,
                Some(DownReason::NoReply),
            ),
            (vec![(Agent, 1, down()), (Agent, 2, back())], Up, None),
        ];
        for (events, status, reason) in cases {
            let state = fold(&events);
            assert_eq!(link(&state).status, status, "{events:?}");
            assert_eq!(link(&state).down_reason, reason, "{events:?}");
        }
    }

    #[test]
    fn a_restarted_agent_judges_its_links_afresh() {
        use Origin::Agent;
        let started = r#""type":"agent_started","version":"0.1.0","targets":1"#.to_string();
        let state = fold(&[
            (Agent, 1, down()),
            (Agent, 2, started.clone()),
            (Agent, 3, round(0)),
        ]);
        assert_eq!(link(&state).status, LinkStatus::Unknown);
        assert_eq!(link(&state).down_reason, None);
        let state = fold(&[
            (Agent, 1, down()),
            (Agent, 2, started),
            (Agent, 3, round(3)),
        ]);
        assert_eq!(link(&state).status, LinkStatus::Up);
    }

    #[test]
    fn link_since_and_measurements() {
        let state = fold(&[(Origin::Agent, 1, round(2)), (Origin::Agent, 2, down())]);
        let l = link(&state);
        assert_eq!(l.since, Some("2026-11-23T02:00:03Z".parse().unwrap()));
        assert_eq!(l.last_rtt_ms, Some(1.5));
        assert_eq!(l.last_loss_pct, Some(0.0));
        assert_eq!(l.name, "UBND xã Cẩm Tú");
        let state = fold(&[(Origin::Agent, 1, down()), (Origin::Agent, 2, back())]);
        // `stored` stamps event seq N with agent time 02:00:0N.
        assert_eq!(
            link(&state).since,
            Some("2026-11-23T02:00:02Z".parse().unwrap())
        );
    }

    #[test]
    fn agent_online_silent_and_back() {
        let heartbeat = r#""type":"agent_heartbeat","uptime_s":1,"backlog":0"#.to_string();
        let started = r#""type":"agent_started","version":"0.1.0","targets":1"#.to_string();
        let state = fold(&[(Origin::Agent, 1, started.clone())]);
        let a = &state.agents[&"a".parse::<AgentId>().unwrap()];
        assert!(a.online);
        assert_eq!(a.version.as_deref(), Some("0.1.0"));
        assert_eq!((a.last_seq, a.events), (1, 1));

        let state = fold(&[
            (Origin::Agent, 1, started.clone()),
            (Origin::Collector, 1, SILENT.into()),
        ]);
        let a = &state.agents[&"a".parse::<AgentId>().unwrap()];
        assert!(!a.online);
        assert!(a.silent_since.is_some());
        // The collector's event does not move the agent's boot/seq.
        assert_eq!((a.last_seq, a.events), (1, 2));
        assert_eq!(
            state.overdue(
                "2030-01-01T00:00:00Z".parse().unwrap(),
                "2030-01-01T00:00:00Z".parse().unwrap(),
                0.0,
                chrono::TimeDelta::MAX
            ),
            vec![]
        );

        let state = fold(&[
            (Origin::Agent, 1, started),
            (Origin::Collector, 1, SILENT.into()),
            (Origin::Agent, 2, heartbeat),
        ]);
        let a = &state.agents[&"a".parse::<AgentId>().unwrap()];
        assert!(a.online);
        assert_eq!(a.silent_since, None);
        assert_eq!(a.last_seq, 2);
        let overdue = state.overdue(
            "2030-01-01T00:00:00Z".parse().unwrap(),
            "2030-01-01T00:00:00Z".parse().unwrap(),
            0.0,
            chrono::TimeDelta::MAX,
        );
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].last_seen, a.last_seen);
        assert_eq!(
            state.overdue(
                "2000-01-01T00:00:00Z".parse().unwrap(),
                "2000-01-01T00:00:00Z".parse().unwrap(),
                0.0,
                chrono::TimeDelta::MAX
            ),
            vec![]
        );
    }

    #[test]
    fn a_burst_does_not_teach_the_cadence() {
        let heartbeat = r#""type":"agent_heartbeat","uptime_s":1,"backlog":0"#;
        let mut state = State::default();
        let minute = chrono::Duration::seconds(60);
        let mut at = |id: i64, received: DateTime<Utc>| {
            let mut event = stored(id, Origin::Agent, "a", id as u64, heartbeat);
            event.received = received;
            state.apply(&event);
        };
        let t0: DateTime<Utc> = "2026-11-23T02:00:00Z".parse().unwrap();
        // One message a minute for five minutes, then a backlog of 100 in half a second.
        for i in 0..5 {
            at(i + 1, t0 + minute * i as i32);
        }
        let drained = t0 + minute * 5;
        for i in 0..100 {
            at(i + 6, drained + chrono::Duration::milliseconds(5 * i));
        }
        let last = drained + chrono::Duration::milliseconds(495);
        let gap = state.agents[&"a".parse::<AgentId>().unwrap()].gap_ms;
        assert_eq!(gap, Some(60_000.0));
        let overdue = |quiet_s: i64| {
            state.overdue(
                t0 - minute,
                last + chrono::Duration::seconds(quiet_s),
                4.0,
                chrono::Duration::seconds(4),
            )
        };
        // Silent after four minutes of quiet, not after the 4 s floor.
        assert_eq!(overdue(10), vec![]);
        assert_eq!(overdue(239), vec![]);
        assert_eq!(overdue(240).len(), 1);
    }
}
