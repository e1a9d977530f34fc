//! Helpers shared by the collector's unit tests: temporary directories (`tempfile`) and stored
//! events written as JSON fragments. Envelope and event builders shared with the agent's and the
//! end-to-end tests are `netmon_events::testing`.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};

use crate::store::{Origin, Store, StoredEvent};

pub use tempfile::TempDir;

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("netmon-test-")
        .tempdir()
        .unwrap()
}

/// 2026-11-23T02:00:00Z, the start of every test timeline.
pub fn base() -> DateTime<Utc> {
    "2026-11-23T02:00:00Z".parse().unwrap()
}

/// The JSON of an envelope for `agent`/`boot`/`seq` with agent time `base + seq s`; `event` is
/// the event's own fields including `"type"`, without braces.
pub fn envelope_json(agent: &str, boot: &str, seq: u64, event: &str) -> String {
    let time = crate::store::millis(base() + Duration::seconds(seq as i64));
    format!(
        r#"{{"v":1,"agent":"{agent}","boot":"{boot}","seq":{seq},"time":"{time}","mono_ms":{},{event}}}"#,
        seq * 1000
    )
}

/// A stored event in province `thanh-hoa`, received half a second after its agent time.
pub fn stored(id: i64, origin: Origin, agent: &str, seq: u64, event: &str) -> StoredEvent {
    let boot = match origin {
        Origin::Agent => "agent-boot",
        Origin::Collector => "collector-boot",
    };
    let envelope: netmon_events::Envelope =
        serde_json::from_str(&envelope_json(agent, boot, seq, event)).unwrap();
    StoredEvent {
        id,
        province: "thanh-hoa".parse().unwrap(),
        received: envelope.time + Duration::milliseconds(500),
        origin,
        time: envelope.time,
        clock: crate::intake::clock::ClockSource::Agent,
        late: false,
        envelope,
    }
}

/// Stored events matching an SQL condition on the `events` table.
pub fn count_where(store: &Store, condition: &str) -> i64 {
    store
        .conn()
        .query_row(
            &format!("SELECT count(*) FROM events WHERE {condition}"),
            [],
            |row| row.get(0),
        )
        .unwrap()
}
