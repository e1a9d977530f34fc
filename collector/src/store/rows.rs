//! The schema-5 row: one event as integers and a compressed body (`schema.rs` has the tables),
//! written by [`Rows::insert`] and read by [`Rows::decode`]. `Rows` keeps what a connection has
//! learned of `streams` and `targets` (they never change once written) and the body's codec.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use netmon_events::{AgentId, BootId, Envelope, ProvinceId, Target};
use rusqlite::{Connection, OptionalExtension, params};

use super::body::{Decoder, Encoder};
use super::codes::{self, Flags, MONO_RAW, WHOLE_BODY};
use super::{Appended, NewEvent, StoreError, StoredEvent};

/// The columns [`Rows::decode`] reads, in its order.
pub const COLUMNS: &str =
    "id, stream, seq, type, target, time, agent_dt, received_dt, mono, flags, dict, body";

/// The insert of one event (`id` NULL but for a migration, which keeps the old ids).
const INSERT: &str = "INSERT INTO events
    (id, stream, seq, type, target, time, agent_dt, received_dt, mono, flags, dict, body)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (stream, seq) DO NOTHING";

/// `type` of a schema-4 row that did not decode: its columns are kept as JSON in `body`.
pub const UNREADABLE: i64 = 0;

/// An agent boot as `streams` names it.
#[derive(Debug, Clone)]
struct Stream {
    agent: AgentId,
    boot: BootId,
    province: ProvinceId,
    mono_base: i64,
}

/// The streams of one agent boot, one per province (nearly always one).
#[derive(Debug, Clone)]
struct Provinces(Vec<(ProvinceId, i64, i64)>);

/// What one connection knows of `streams` and `targets`, and its codec.
#[derive(Debug)]
pub struct Rows {
    streams: HashMap<i64, Stream>,
    targets: HashMap<i64, Box<str>>,
    stream_ids: HashMap<AgentId, HashMap<BootId, Provinces>>,
    target_ids: HashMap<Target, (i64, Box<[u8]>)>,
    decoder: Decoder,
    /// Made at the first append (a read-only connection never needs one).
    encoder: Option<Encoder>,
}

fn bad(id: i64) -> impl Fn(String) -> StoreError {
    move |problem| StoreError::BadRow { id, problem }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Codec(e.to_string())
}

/// Milliseconds since 1970 as a time (every time a row holds came from one).
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// A time as milliseconds since 1970, truncated as the store keeps it.
fn to_ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// A time truncated to the millisecond: what a row gives back.
fn floor_ms(time: DateTime<Utc>) -> DateTime<Utc> {
    from_ms(to_ms(time)).unwrap_or(time)
}

impl Rows {
    pub fn new() -> Result<Self, StoreError> {
        Ok(Self {
            streams: HashMap::new(),
            targets: HashMap::new(),
            stream_ids: HashMap::new(),
            target_ids: HashMap::new(),
            decoder: Decoder::new().map_err(io)?,
            encoder: None,
        })
    }

    /// Forgets every stream and target learned: after a rolled-back transaction, the ids it
    /// made do not exist.
    pub fn forget(&mut self) {
        self.streams.clear();
        self.targets.clear();
        self.stream_ids.clear();
        self.target_ids.clear();
    }

    /// Inserts one event inside the batch's transaction, with `id` when given (a migration).
    /// `Ok(Refused)` when the event itself is the problem (SQLite undid the failed statement);
    /// `Err` when the store is. The stored event is built from `event`, not read back: what a
    /// replay will read, times to the millisecond. Only an event that JSON cannot hold exactly
    /// (a non-finite float, a time inside it finer than a millisecond) is decoded again first.
    pub fn insert(
        &mut self,
        conn: &Connection,
        event: &NewEvent,
        id: Option<i64>,
    ) -> Result<Appended, StoreError> {
        let envelope = &event.envelope;
        let refused = |why: String| Ok(Appended::Refused(why));
        let Ok(seq) = i64::try_from(envelope.seq) else {
            return refused(format!("seq {} does not fit SQLite", envelope.seq));
        };
        let type_name = envelope.event.type_name();
        let Some(code) = codes::code(type_name) else {
            return refused(format!("{type_name} has no type code"));
        };
        let (time, agent_time, received) = (
            to_ms(event.time),
            to_ms(envelope.time),
            to_ms(event.received),
        );
        let base =
            i64::try_from(i128::from(agent_time) - i128::from(envelope.mono_ms)).unwrap_or(0);
        let (stream, mono_base, siblings) = self.stream(conn, event, base)?;
        let (mono, raw) = match i64::try_from(
            i128::from(agent_time) - i128::from(envelope.mono_ms) - i128::from(mono_base),
        ) {
            Ok(delta) => (delta, 0),
            Err(_) => match i64::try_from(envelope.mono_ms) {
                Ok(mono) => (mono, MONO_RAW),
                Err(_) => {
                    return refused(format!("mono_ms {} does not fit SQLite", envelope.mono_ms));
                }
            },
        };
        let target = match envelope.event.target() {
            Some(target) => Some(target_id(&mut self.target_ids, conn, target)?),
            None => None,
        };
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            none => none.insert(Encoder::new().map_err(io)?),
        };
        let target_json = target.map(|(_, json)| &json[..]);
        let encoded = match encoder.encode(&envelope.event, target_json) {
            Ok(encoded) => encoded,
            Err(why) => return refused(why),
        };
        let exact = !encoded.has_null
            && envelope
                .event
                .times()
                .iter()
                .all(|(_, t)| t.timestamp_subsec_nanos() % 1_000_000 == 0);
        let stored_event = if exact {
            let stored = envelope.event.clone();
            #[cfg(debug_assertions)]
            {
                let back = self.decoder.decode(
                    type_name,
                    target_json.map(|t| std::str::from_utf8(t).unwrap_or_default()),
                    encoded.body,
                    encoded.dict,
                    encoded.whole,
                );
                debug_assert_eq!(back.as_ref(), Ok(&stored), "the stored event reads back");
            }
            stored
        } else {
            let target = target_json.map(|t| std::str::from_utf8(t).unwrap_or_default());
            match self
                .decoder
                .decode(type_name, target, encoded.body, encoded.dict, encoded.whole)
            {
                Ok(back) => back,
                Err(e) => return refused(format!("does not read back: {e}")),
            }
        };
        let flags = Flags {
            origin: event.origin,
            clock: event.clock,
            late: event.late,
            v: envelope.v,
            layout: raw | if encoded.whole { WHOLE_BODY } else { 0 },
        };
        for sibling in siblings {
            let mut seen =
                conn.prepare_cached("SELECT 1 FROM events WHERE stream = ?1 AND seq = ?2")?;
            if seen.exists(params![sibling, seq])? {
                return Ok(Appended::Duplicate);
            }
        }
        let mut insert = conn.prepare_cached(INSERT)?;
        let changed = insert.execute(params![
            id,
            stream,
            seq,
            code,
            target.map(|(id, _)| *id),
            time,
            agent_time - time,
            received - time,
            mono,
            flags.encode(),
            encoded.dict,
            encoded.body,
        ]);
        match changed {
            Ok(0) => return Ok(Appended::Duplicate),
            Ok(_) => {}
            Err(e) if super::about_the_row(&e) => {
                return refused(format!("SQLite refused the row: {e}"));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Appended::Stored(StoredEvent {
            id: conn.last_insert_rowid(),
            province: event.province.clone(),
            received: floor_ms(event.received),
            origin: event.origin,
            time: floor_ms(event.time),
            clock: event.clock,
            late: event.late,
            envelope: Envelope {
                v: envelope.v,
                agent: envelope.agent.clone(),
                boot: envelope.boot.clone(),
                seq: envelope.seq,
                time: floor_ms(envelope.time),
                mono_ms: envelope.mono_ms,
                event: stored_event,
            },
        }))
    }

    /// Keeps, as it was, a schema-4 row that did not decode (its columns as JSON in `body`),
    /// under its own key when the key is readable.
    pub fn insert_unreadable(
        &mut self,
        conn: &Connection,
        id: i64,
        key: (String, String, String, i64),
        columns: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (agent, boot, province, seq) = key;
        let stream = match conn
            .query_row(
                "SELECT id FROM streams WHERE agent = ?1 AND boot = ?2 AND province = ?3",
                params![agent, boot, province],
                |row| row.get::<_, i64>(0),
            )
            .optional()?
        {
            Some(stream) => stream,
            None => conn.query_row(
                "INSERT INTO streams (agent, boot, province, mono_base) VALUES (?1, ?2, ?3, 0)
                 RETURNING id",
                params![agent, boot, province],
                |row| row.get(0),
            )?,
        };
        let body = columns.to_string();
        let mut insert = conn.prepare_cached(INSERT)?;
        let mut keep = |seq: i64| {
            let none = None::<i64>;
            let values = params![
                id,
                stream,
                seq,
                UNREADABLE,
                none,
                0,
                0,
                0,
                0,
                0,
                0,
                body.as_bytes()
            ];
            insert.execute(values)
        };
        // A key taken by another row (which the old unique key forbade): a seq no agent sends.
        if keep(seq)? == 0 {
            keep(-id)?;
        }
        self.forget();
        Ok(())
    }

    /// The stream of `event` (made when new, its `mono_base` from `base`), and the other streams
    /// of the same agent boot (in other provinces), whose seqs count for exactly-once too.
    fn stream(
        &mut self,
        conn: &Connection,
        event: &NewEvent,
        base: i64,
    ) -> Result<(i64, i64, Vec<i64>), StoreError> {
        let envelope = &event.envelope;
        let known = self
            .stream_ids
            .get(&envelope.agent)
            .and_then(|boots| boots.get(&envelope.boot));
        if let Some(provinces) = known
            && let Some((_, id, mono_base)) = provinces.find(&event.province)
        {
            return Ok((id, mono_base, provinces.others(id)));
        }
        let mut provinces = match known {
            Some(provinces) => provinces.clone(),
            None => {
                let mut select = conn.prepare_cached(
                    "SELECT province, id, mono_base FROM streams WHERE agent = ?1 AND boot = ?2",
                )?;
                let rows = select.query_map(
                    params![envelope.agent.as_str(), envelope.boot.as_str()],
                    |row| Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?)),
                )?;
                let mut found = Vec::new();
                for row in rows {
                    let (province, id, mono_base) = row?;
                    if let Ok(province) = ProvinceId::new(province) {
                        found.push((province, id, mono_base));
                    }
                }
                Provinces(found)
            }
        };
        let (id, mono_base) = match provinces.find(&event.province) {
            Some((_, id, mono_base)) => (id, mono_base),
            None => {
                let id = conn.query_row(
                    "INSERT INTO streams (agent, boot, province, mono_base) VALUES (?1, ?2, ?3, ?4)
                     RETURNING id",
                    params![
                        envelope.agent.as_str(),
                        envelope.boot.as_str(),
                        event.province.as_str(),
                        base
                    ],
                    |row| row.get(0),
                )?;
                provinces.0.push((event.province.clone(), id, base));
                (id, base)
            }
        };
        let siblings = provinces.others(id);
        self.stream_ids
            .entry(envelope.agent.clone())
            .or_default()
            .insert(envelope.boot.clone(), provinces);
        Ok((id, mono_base, siblings))
    }

    /// Reads one row of [`COLUMNS`].
    pub fn decode(
        &mut self,
        conn: &Connection,
        row: &rusqlite::Row<'_>,
    ) -> Result<StoredEvent, StoreError> {
        let id: i64 = row.get(0)?;
        let bad = bad(id);
        let stream_id: i64 = row.get(1)?;
        let seq: i64 = row.get(2)?;
        let code: i64 = row.get(3)?;
        let target_id: Option<i64> = row.get(4)?;
        let time: i64 = row.get(5)?;
        let (agent_dt, received_dt): (i64, i64) = (row.get(6)?, row.get(7)?);
        let mono: i64 = row.get(8)?;
        let flags = Flags::decode(row.get(9)?).map_err(&bad)?;
        let dict: i64 = row.get(10)?;
        let body = row
            .get_ref(11)?
            .as_bytes()
            .map_err(|e| bad(e.to_string()))?;
        if code == UNREADABLE {
            let columns: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let problem = columns["problem"].as_str().unwrap_or("unknown");
            return Err(bad(format!("kept from schema 4, unreadable: {problem}")));
        }
        let type_name = codes::name(code).ok_or_else(|| bad(format!("unknown type {code}")))?;
        let stream = stream_of(&mut self.streams, conn, stream_id).map_err(&bad)?;
        let target = match target_id {
            Some(target) => Some(target_of(&mut self.targets, conn, target).map_err(&bad)?),
            None => None,
        };
        let whole = flags.layout & WHOLE_BODY != 0;
        let event = self.decoder.decode(type_name, target, body, dict, whole);
        let event = event.map_err(&bad)?;
        let at = |ms: Option<i64>, what: &str| {
            ms.and_then(from_ms)
                .ok_or_else(|| bad(format!("{what} is out of range")))
        };
        let agent_time = time.checked_add(agent_dt);
        let mono_ms = if flags.layout & MONO_RAW != 0 {
            u64::try_from(mono).ok()
        } else {
            agent_time.and_then(|t| {
                u64::try_from(i128::from(t) - i128::from(stream.mono_base) - i128::from(mono)).ok()
            })
        };
        Ok(StoredEvent {
            id,
            province: stream.province.clone(),
            received: at(time.checked_add(received_dt), "received")?,
            origin: flags.origin,
            time: at(Some(time), "time")?,
            clock: flags.clock,
            late: flags.late,
            envelope: Envelope {
                v: flags.v,
                agent: stream.agent.clone(),
                boot: stream.boot.clone(),
                seq: u64::try_from(seq).map_err(|_| bad(format!("seq {seq}")))?,
                time: at(agent_time, "the agent's time")?,
                mono_ms: mono_ms.ok_or_else(|| bad("mono_ms is out of range".into()))?,
                event,
            },
        })
    }
}

impl Provinces {
    fn find(&self, province: &ProvinceId) -> Option<(&ProvinceId, i64, i64)> {
        self.0
            .iter()
            .find(|(p, ..)| p == province)
            .map(|(p, id, base)| (p, *id, *base))
    }

    /// The streams other than `id` (none, nearly always: no allocation then).
    fn others(&self, id: i64) -> Vec<i64> {
        if self.0.len() < 2 {
            return Vec::new();
        }
        let ids = self.0.iter().map(|(_, other, _)| *other);
        ids.filter(|other| *other != id).collect()
    }
}

/// The stream `id`, read once.
fn stream_of<'a>(
    streams: &'a mut HashMap<i64, Stream>,
    conn: &Connection,
    id: i64,
) -> Result<&'a Stream, String> {
    let vacant = match streams.entry(id) {
        Entry::Occupied(known) => return Ok(known.into_mut()),
        Entry::Vacant(vacant) => vacant,
    };
    let (agent, boot, province, mono_base): (String, String, String, i64) = conn
        .prepare_cached("SELECT agent, boot, province, mono_base FROM streams WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))))
        .map_err(|e| format!("stream {id}: {e}"))?;
    Ok(vacant.insert(Stream {
        agent: AgentId::new(agent).map_err(|e| format!("stream {id}: {e}"))?,
        boot: BootId::new(boot).map_err(|e| format!("stream {id}: {e}"))?,
        province: ProvinceId::new(province).map_err(|e| format!("stream {id}: {e}"))?,
        mono_base,
    }))
}

/// The JSON of target `id`, read once.
fn target_of<'a>(
    targets: &'a mut HashMap<i64, Box<str>>,
    conn: &Connection,
    id: i64,
) -> Result<&'a str, String> {
    let vacant = match targets.entry(id) {
        Entry::Occupied(known) => return Ok(known.into_mut()),
        Entry::Vacant(vacant) => vacant,
    };
    let (name, address, role): (String, String, String) = conn
        .prepare_cached("SELECT name, address, role FROM targets WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(|e| format!("target {id}: {e}"))?;
    let target = Target {
        name,
        address: address
            .parse()
            .map_err(|e| format!("target {id}: address {address:?}: {e}"))?,
        role: serde_json::from_value(serde_json::Value::String(role))
            .map_err(|e| format!("target {id}: role: {e}"))?,
    };
    let json = serde_json::to_string(&target).map_err(|e| format!("target {id}: {e}"))?;
    Ok(vacant.insert(json.into()))
}

/// The id of `target` in `targets` (made when new) and its JSON.
fn target_id<'a>(
    target_ids: &'a mut HashMap<Target, (i64, Box<[u8]>)>,
    conn: &Connection,
    target: &Target,
) -> Result<&'a (i64, Box<[u8]>), StoreError> {
    if !target_ids.contains_key(target) {
        let json = serde_json::to_vec(target).map_err(|e| StoreError::Codec(e.to_string()))?;
        let role = serde_json::to_value(target.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let address = target.address.to_string();
        let found = conn
            .prepare_cached(
                "SELECT id FROM targets WHERE name = ?1 AND address = ?2 AND role = ?3",
            )?
            .query_row(params![target.name, address, role], |row| row.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => conn.query_row(
                "INSERT INTO targets (name, address, role) VALUES (?1, ?2, ?3) RETURNING id",
                params![target.name, address, role],
                |row| row.get(0),
            )?,
        };
        target_ids.insert(target.clone(), (id, json.into()));
    }
    target_ids
        .get(target)
        .ok_or_else(|| StoreError::Codec("a target just stored is not known".into()))
}
