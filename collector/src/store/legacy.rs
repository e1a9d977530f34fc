//! Rows of schemas 1 to 4: text columns and the envelope's JSON as the body. Read by a read-only
//! opener of a file the daemon has not migrated yet (or is migrating: the old rows are then in
//! `events_v4`), and by the migration to schema 5.

use netmon_events::ProvinceId;

use super::{Origin, StoreError, StoredEvent, parse_time};
use crate::intake::clock::ClockSource;

/// The columns a reader selects from a text-layout table, in the order [`from_row`] decodes
/// them, for a file of `version` (version 1 had no `clock` and `late`).
pub fn columns(version: i64) -> &'static str {
    if version >= 2 {
        "id, province, received, origin, body, time, clock, late"
    } else {
        "id, province, received, origin, body, time, 'agent', 0"
    }
}

/// One row's columns, in the order of [`columns`].
struct Row<'a> {
    id: i64,
    province: &'a str,
    received: &'a str,
    origin: &'a str,
    body: &'a str,
    time: &'a str,
    clock: &'a str,
    late: bool,
}

pub fn from_row(row: &rusqlite::Row<'_>) -> Result<StoredEvent, StoreError> {
    let id: i64 = row.get(0)?;
    // A value of another type than the column's (a file altered by hand) is the row's problem.
    let text = |i: usize| -> Result<String, StoreError> {
        row.get::<_, String>(i).map_err(|e| StoreError::BadRow {
            id,
            problem: format!("column {i}: {e}"),
        })
    };
    let (province, received, origin) = (text(1)?, text(2)?, text(3)?);
    let (body, time, clock) = (text(4)?, text(5)?, text(6)?);
    decode(Row {
        id,
        province: &province,
        received: &received,
        origin: &origin,
        body: &body,
        time: &time,
        clock: &clock,
        late: row.get::<_, i64>(7).map(|l| l != 0).unwrap_or(false),
    })
}

fn decode(row: Row<'_>) -> Result<StoredEvent, StoreError> {
    let id = row.id;
    let bad = |problem: String| StoreError::BadRow { id, problem };
    let province = ProvinceId::new(row.province).map_err(|e| bad(e.to_string()))?;
    let received = parse_time(row.received).map_err(|e| bad(format!("received: {e}")))?;
    let time = parse_time(row.time).map_err(|e| bad(format!("time: {e}")))?;
    let origin = match row.origin {
        "agent" => Origin::Agent,
        "collector" => Origin::Collector,
        other => return Err(bad(format!("unknown origin {other:?}"))),
    };
    let clock = ClockSource::parse(row.clock)
        .ok_or_else(|| bad(format!("unknown clock {:?}", row.clock)))?;
    let envelope = serde_json::from_str(row.body).map_err(|e| bad(format!("body: {e}")))?;
    Ok(StoredEvent {
        id,
        province,
        received,
        origin,
        time,
        clock,
        late: row.late,
        envelope,
    })
}
