//! The collector's JSON output: a public contract, like the event contract.
//!
//! Everything the collector prints or serves as JSON is defined here and nowhere else:
//! - `GET /api/v1/state` and `netmon-collector status --json`: [`StateView`];
//! - `GET /api/v1/intake`: [`IntakeCounters`];
//! - `GET /api/v1/projections`: [`Projections`] (`{"influx": null}` without an `[influx]`
//!   section);
//! - `netmon-collector events --json`: [`event_line`], one line per stored event;
//! - `GET /api/v1/alerts` and `netmon-collector alerts --json`: [`AlertsView`] (in `api/alerts.rs`).
//!
//! Fields are only ever added. Times are RFC 3339 UTC with milliseconds; absent values are `null`.

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use netmon_events::envelope::time_ms;
use netmon_events::{DownReason, LinkRole};
use serde::{Deserialize, Serialize};

pub use crate::alerts::api::{AlertView, AlertsView, OutgoingView, SilenceView, alerts_json};

use crate::state::{LinkStatus, State};
use crate::store::{StoredEvent, millis};

/// The folded state: agents and links, each sorted by key. It holds no runtime counters, so a
/// collector that replays the same store serves byte-identical JSON. Borrowed from a [`State`]
/// when served; read back with owned strings (`StateView<'static>`) by `status`, whose table is
/// built from these fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct StateView<'a> {
    pub agents: Vec<AgentView<'a>>,
    pub links: Vec<LinkView<'a>>,
}

/// One agent, sorted by `agent`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AgentView<'a> {
    pub agent: Cow<'a, str>,
    pub province: Cow<'a, str>,
    /// Boot id of the agent's newest event, and its highest seq within that boot.
    pub boot: Option<Cow<'a, str>>,
    pub last_seq: u64,
    /// From the agent's last `agent_started`.
    pub version: Option<Cow<'a, str>>,
    /// True after any agent-made event, false after `agent_went_silent`.
    pub online: bool,
    /// When the collector received the agent's last event.
    #[serde(with = "time_ms::option")]
    pub last_seen: Option<DateTime<Utc>>,
    /// When the collector declared it silent, while it stays silent.
    #[serde(with = "time_ms::option")]
    pub silent_since: Option<DateTime<Utc>>,
    /// Events stored about the agent (its own and the collector's).
    pub events: u64,
    /// Received minus effective time of the agent's newest event, in milliseconds: how far behind
    /// the collector's view of the agent is (large while a backlog drains). `null` before any.
    pub lag_ms: Option<i64>,
    /// Events in the agent's journal not yet acknowledged, from its newest heartbeat.
    pub backlog: Option<u64>,
    /// Events the agent's journal dropped unsent, summed over its `journal_overflowed` events.
    pub lost_events: u64,
}

/// One agent's link to one target, sorted by `agent` then `address`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkView<'a> {
    pub agent: Cow<'a, str>,
    pub address: IpAddr,
    pub name: Cow<'a, str>,
    pub role: LinkRole,
    /// `up`, `down` or `unknown` (no successful round yet).
    pub status: Cow<'a, str>,
    /// When `status` last changed (for `down`: the first failed round).
    #[serde(with = "time_ms::option")]
    pub since: Option<DateTime<Utc>>,
    /// Average round-trip time of the last probe round; `null` when nothing came back.
    pub last_rtt_ms: Option<f64>,
    pub last_loss_pct: Option<f64>,
    #[serde(with = "time_ms::option")]
    pub last_round: Option<DateTime<Utc>>,
    /// Why the link is down; `null` unless `status` is `down`.
    pub down_reason: Option<DownReason>,
    /// The last outage that ended, `null` if none since the agent's boot.
    pub last_outage: Option<OutageView>,
}

/// An ended outage, in effective (possibly corrected) time.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutageView {
    #[serde(with = "time_ms")]
    pub since: DateTime<Utc>,
    #[serde(with = "time_ms")]
    pub until: DateTime<Utc>,
    /// Its end reached the collector late (replayed from the agent's journal).
    pub late: bool,
}

impl<'a> StateView<'a> {
    pub fn new(state: &'a State) -> Self {
        let agents = state
            .agents
            .iter()
            .map(|(id, a)| AgentView {
                agent: id.as_str().into(),
                province: a.province.as_str().into(),
                boot: a.boot.as_ref().map(|b| b.as_str().into()),
                last_seq: a.last_seq,
                version: a.version.as_deref().map(Cow::Borrowed),
                online: a.online,
                last_seen: a.last_seen,
                silent_since: a.silent_since,
                events: a.events,
                lag_ms: a.lag_ms,
                backlog: a.backlog,
                lost_events: a.lost_events,
            })
            .collect();
        let links = state
            .links
            .iter()
            .map(|(key, l)| LinkView {
                agent: key.agent.as_str().into(),
                address: key.address,
                name: l.name.as_str().into(),
                role: l.role,
                status: status_name(l.status).into(),
                since: l.since,
                last_rtt_ms: l.last_rtt_ms,
                last_loss_pct: l.last_loss_pct,
                last_round: l.last_round,
                down_reason: l.down_reason,
                last_outage: l.last_outage.map(|o| OutageView {
                    since: o.since,
                    until: o.until,
                    late: o.late,
                }),
            })
            .collect();
        Self { agents, links }
    }
}

/// The JSON of `state` as `/api/v1/state` serves it.
pub fn state_json(state: &State) -> String {
    // Serialising borrowed strings, numbers and times cannot fail.
    serde_json::to_string(&StateView::new(state)).unwrap_or_default()
}

pub fn status_name(status: LinkStatus) -> &'static str {
    match status {
        LinkStatus::Unknown => "unknown",
        LinkStatus::Up => "up",
        LinkStatus::Down => "down",
    }
}

/// What the intake did since the collector started (`GET /api/v1/intake`). Counted per MQTT
/// message (`messages`, `messages_rejected`) or per event (the rest; a whole-message refusal such
/// as `oversized` counts once).
/// `GET /api/v1/projections`: every projection's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Projections {
    /// The InfluxDB projection; `null` when `[influx]` is not configured.
    pub influx: Option<ProjectionCounters>,
}

/// One projection's progress since the collector started (the position survives restarts).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProjectionCounters {
    /// The store id up to which every event has been delivered (the stored cursor).
    pub position: i64,
    /// Store ids above the position: how far the projection is behind the store.
    pub behind: i64,
    /// Points the server accepted.
    pub points_written: u64,
    /// Points the server refused with a 4xx (malformed, field type conflict), skipped.
    pub rejected_points: u64,
    /// The last failure (server reason or network error), `null` if none yet.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntakeCounters {
    /// MQTT messages taken from the broker (events and status topics).
    pub messages: u64,
    /// Messages in which nothing was usable (still acknowledged: they never become valid).
    pub messages_rejected: u64,
    /// Agent events newly stored.
    pub events_stored: u64,
    /// Events already in the store (a second delivery), ignored.
    pub duplicates: u64,
    /// Refusals of all reasons.
    pub rejected: u64,
    pub rejected_by_reason: RejectedByReason,
    /// `agent_went_silent` events the collector made.
    pub silence_events: u64,
    /// Alert and notification events the collector recorded.
    pub alert_events: u64,
    /// Commits that failed (disk full, I/O error); their messages were not acknowledged.
    pub store_errors: u64,
}

/// Refusals by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RejectedByReason {
    /// Not a `netmon/v1/<province>/<agent>/<events|status>` topic of a province we take.
    pub foreign_topic: u64,
    /// Payload above the size or event-count limit.
    pub oversized: u64,
    /// Not JSON, not an envelope, an unknown `type`, an empty batch, a bad status message.
    pub malformed: u64,
    /// The envelope's `agent` differs from the topic's.
    pub agent_mismatch: u64,
    /// Out-of-range values (see `Envelope::validate`).
    pub invalid_event: u64,
    /// A compact batch named a target by a key that no description of its boot gives.
    pub unknown_target: u64,
    /// A collector-made type sent by an agent.
    pub forbidden_type: u64,
    /// Valid, but the store could not hold it; recorded in `refusals` and acknowledged.
    pub unstorable: u64,
}

/// One line of `events --json`: the stored envelope's JSON (the agent's own `time` unchanged)
/// with one key appended, `stored`:
/// `{"id": store position, "province": from the topic, "received": when the collector got it,
/// "time": the effective time, "clock": "agent" | "corrected" | "received", "late": bool}`
/// (see `clock.rs` for `clock` and `late`). Nested under one key so that the store's names never
/// collide with an event's fields (a `probe_round_completed` has its own `received`); the line
/// still deserialises as an envelope.
pub fn event_line(event: &StoredEvent) -> String {
    let body = serde_json::to_string(&event.envelope).unwrap_or_default();
    let head = body.strip_suffix('}').unwrap_or(&body);
    let province = serde_json::to_string(event.province.as_str()).unwrap_or_default();
    format!(
        r#"{head},"stored":{{"id":{},"province":{province},"received":"{}","time":"{}","clock":"{}","late":{}}}}}"#,
        event.id,
        millis(event.received),
        millis(event.time),
        event.clock.as_str(),
        event.late,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::Origin;
    use crate::store::testkit::stored;

    #[test]
    fn event_line_is_the_envelope_plus_store_keys() {
        let event = stored(
            7,
            Origin::Agent,
            "a",
            3,
            r#""type":"agent_heartbeat","uptime_s":3,"backlog":0"#,
        );
        let text = event_line(&event);
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["stored"]["id"], 7);
        assert_eq!(line["stored"]["province"], "thanh-hoa");
        assert_eq!(line["stored"]["received"], "2026-11-23T02:00:03.500Z");
        assert_eq!(line["stored"]["time"], "2026-11-23T02:00:03.000Z");
        assert_eq!(line["stored"]["clock"], "agent");
        assert_eq!(line["stored"]["late"], false);
        let envelope: netmon_events::Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(envelope, event.envelope);
        assert_eq!(line["type"], "agent_heartbeat");
        assert_eq!(line["seq"], 3);
    }

    #[test]
    fn state_json_shape() {
        let mut state = State::default();
        state.apply(&stored(
            1,
            Origin::Agent,
            "a",
            1,
            r#""type":"link_went_down","target":{"name":"Thôn Thọ Liên","address":"10.0.0.1","role":"gateway"},"since":"2026-11-23T02:00:00.000Z","reason":"unreachable","failed_rounds":3"#,
        ));
        let json: serde_json::Value = serde_json::from_str(&state_json(&state)).unwrap();
        assert_eq!(json["agents"][0]["agent"], "a");
        assert_eq!(json["agents"][0]["online"], true);
        assert_eq!(json["agents"][0]["last_seen"], "2026-11-23T02:00:01.500Z");
        assert_eq!(json["links"][0]["status"], "down");
        assert_eq!(json["links"][0]["name"], "Thôn Thọ Liên");
        assert_eq!(json["links"][0]["down_reason"], "unreachable");
        assert_eq!(json["links"][0]["since"], "2026-11-23T02:00:00.000Z");
        assert_eq!(json["links"][0]["last_rtt_ms"], serde_json::Value::Null);
        assert_eq!(json["links"][0]["last_outage"], serde_json::Value::Null);
        assert_eq!(json["agents"][0]["lag_ms"], 500);
        assert_eq!(json["agents"][0]["backlog"], serde_json::Value::Null);
        assert_eq!(json["agents"][0]["lost_events"], 0);
        // `status` reads it back typed, and it serialises to the same bytes.
        let text = state_json(&state);
        let read: StateView<'static> = serde_json::from_str(&text).unwrap();
        assert_eq!(read.links[0].name, "Thôn Thọ Liên");
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
    }
}
