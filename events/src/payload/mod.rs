//! How envelopes are carried in MQTT messages.
//!
//! An `events` message is a [`Batch`] in one of four forms:
//! - compact, what agents send since ADR 14 ([`compact`]): `{"agent":…,"boot":…,"v":1,
//!   "sender":…,"targets":[…]?,"events":[…]}`, events of one boot that do not repeat `v`, `agent`
//!   and `boot` and name their target by its key;
//! - `{"sender":{"boot":…,"mono_ms":…},"events":[…]}`, what agents sent before: `sender` is the
//!   agent's clock at the moment of publishing, which lets the collector correct implausible wall
//!   times;
//! - a plain JSON array of envelopes, or a single envelope object (so that a hand-written
//!   `mosquitto_pub -m '{…}'` works).
//!
//! Whatever the form, decoding yields full envelopes. A `status` message is an [`AgentStatus`];
//! an `ack` message is an [`Ack`].

use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, InvalidEvent};
use crate::ids::BootId;

pub mod compact;

pub use compact::{EncodeError, HeaderTargets, TargetBook, encode_compact};

/// Largest `events` payload a collector accepts, in bytes. Agents keep batches well below it.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Largest number of envelopes in one message.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// Why a payload, or one envelope inside it, was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload of {0} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")]
    TooLarge(usize),
    #[error("payload is not a batch, an array of envelopes or an envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("batch of {0} events exceeds the limit of {MAX_BATCH_EVENTS}")]
    TooManyEvents(usize),
    #[error("batch is empty")]
    Empty,
    #[error("event {index} of the batch: {source}")]
    Element {
        index: usize,
        source: Box<PayloadError>,
    },
    /// A compact batch's header `targets` are not a valid description (count, keys, names).
    #[error("compact batch header: {0}")]
    Header(InvalidEvent),
    /// The envelope decoded but failed validation, or (compact form) names a target key nobody
    /// described ([`InvalidEvent::UnknownTarget`]); its key is kept so that the receiver can
    /// record it as refused (and acknowledge it: it can never become valid).
    #[error("event {index} of the batch (seq {seq}): {source}")]
    Invalid {
        index: usize,
        agent: crate::ids::AgentId,
        boot: BootId,
        seq: u64,
        source: InvalidEvent,
    },
}

/// The publishing agent's clock when it sent a batch: its current boot and milliseconds since
/// that boot started. Events in the batch may be older (a replayed backlog) and of earlier boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub boot: BootId,
    pub mono_ms: u64,
}

/// A decoded `events` payload: the sender's clock if it said, and every element decoded and
/// validated on its own.
#[derive(Debug)]
pub struct Batch {
    pub sender: Option<Sender>,
    pub events: Vec<Result<Envelope, PayloadError>>,
}

#[derive(Serialize)]
struct BatchOut<'a> {
    sender: &'a Sender,
    events: &'a [Envelope],
}

/// The fast path's shape: a well-formed batch of the sender form, and nothing else (a compact
/// batch's `agent` sends it to the slow path, which tells the forms apart).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchIn {
    sender: Sender,
    events: Vec<Envelope>,
}

#[derive(Deserialize)]
struct BatchRaw {
    sender: Sender,
    events: Vec<serde_json::Value>,
}

/// Encodes envelopes as one `events` payload without a sender clock (a plain JSON array).
pub fn encode_batch(events: &[Envelope]) -> Vec<u8> {
    // Serialising these types cannot fail: no maps with non-string keys, no foreign types.
    serde_json::to_vec(events).unwrap_or_default()
}

/// Encodes envelopes as one `events` payload with the sender's clock, as agents send them.
pub fn encode_batch_from(sender: &Sender, events: &[Envelope]) -> Vec<u8> {
    serde_json::to_vec(&BatchOut { sender, events }).unwrap_or_default()
}

/// Decodes and validates an `events` payload, knowing nothing of earlier boots: a compact
/// batch's target keys resolve from its own header and `targets_described` only
/// ([`decode_batch_with`] with a book that is always empty).
pub fn decode_batch(payload: &[u8]) -> Result<Batch, PayloadError> {
    decode_batch_with(payload, &compact::NoBook)
}

/// Decodes and validates an `events` payload; the target keys of a compact batch resolve from
/// its header `targets`, else from a `targets_described` among its events, else from `book`.
///
/// The outer `Result` fails when the payload as a whole is unusable (too large, not JSON, not an
/// array or object, a compact header with invalid `targets`). Otherwise every element is decoded
/// and validated on its own, so one bad event does not cost the good ones beside it.
pub fn decode_batch_with(payload: &[u8], book: &dyn TargetBook) -> Result<Batch, PayloadError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge(payload.len()));
    }
    let all_checked = |sender, envelopes: Vec<Envelope>| {
        check_count(envelopes.len())?;
        Ok(Batch {
            sender,
            events: envelopes
                .into_iter()
                .enumerate()
                .map(|(i, e)| checked(i, e))
                .collect(),
        })
    };
    let each_checked = |sender, items: Vec<serde_json::Value>| {
        check_count(items.len())?;
        Ok(Batch {
            sender,
            events: items
                .into_iter()
                .enumerate()
                .map(
                    |(index, item)| match serde_json::from_value::<Envelope>(item) {
                        Ok(envelope) => checked(index, envelope),
                        Err(e) => Err(element(index, e)),
                    },
                )
                .collect(),
        })
    };
    // Fast paths: well-formed batches of the old forms, decoded in one pass.
    if let Ok(batch) = serde_json::from_slice::<BatchIn>(payload) {
        return all_checked(Some(batch.sender), batch.events);
    }
    if let Ok(envelopes) = serde_json::from_slice::<Vec<Envelope>>(payload) {
        return all_checked(None, envelopes);
    }
    match serde_json::from_slice::<serde_json::Value>(payload)? {
        serde_json::Value::Array(items) => each_checked(None, items),
        item @ serde_json::Value::Object(_)
            if item.get("events").is_some() && item.get("agent").is_some() =>
        {
            compact::decode(item, book)
        }
        item @ serde_json::Value::Object(_) if item.get("events").is_some() => {
            let batch = serde_json::from_value::<BatchRaw>(item)?;
            each_checked(Some(batch.sender), batch.events)
        }
        item @ serde_json::Value::Object(_) => {
            let envelope = serde_json::from_value::<Envelope>(item)?;
            Ok(Batch {
                sender: None,
                events: vec![checked(0, envelope)],
            })
        }
        _ => Err(PayloadError::Json(serde::de::Error::custom(
            "expected a batch object, an array of envelopes or one envelope object",
        ))),
    }
}

/// `envelope`, element `index` of a batch, if it is valid; else its refusal with its key.
fn checked(index: usize, envelope: Envelope) -> Result<Envelope, PayloadError> {
    match envelope.validate() {
        Ok(()) => Ok(envelope),
        Err(source) => Err(PayloadError::Invalid {
            index,
            agent: envelope.agent,
            boot: envelope.boot,
            seq: envelope.seq,
            source,
        }),
    }
}

/// Element `index` of a batch that is not an envelope.
fn element(index: usize, e: serde_json::Error) -> PayloadError {
    PayloadError::Element {
        index,
        source: Box::new(PayloadError::Json(e)),
    }
}

fn check_count(count: usize) -> Result<(), PayloadError> {
    match count {
        0 => Err(PayloadError::Empty),
        n if n > MAX_BATCH_EVENTS => Err(PayloadError::TooManyEvents(n)),
        _ => Ok(()),
    }
}

/// The retained message on an agent's `status` topic. The agent publishes `online` when it
/// connects; its MQTT last will publishes `offline` when the broker loses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AgentStatus {
    Online { boot: BootId, version: String },
    Offline,
}

impl AgentStatus {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

/// Largest number of boots one [`Ack`] lists.
pub const MAX_ACK_BOOTS: usize = 16;

/// The retained message on an agent's `ack` topic: for each listed boot, every event of that boot
/// with a seq up to and including `seq` is durably stored by the collector (or recorded as lost by
/// a `journal_overflowed` event). The agent may forget those events; it resends everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub acks: Vec<BootAck>,
}

/// One boot's acknowledgement watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootAck {
    pub boot: BootId,
    pub seq: u64,
}

impl Ack {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes an ack; refuses one listing more than [`MAX_ACK_BOOTS`] boots.
    pub fn from_json(payload: &[u8]) -> Result<Self, serde_json::Error> {
        let ack: Ack = serde_json::from_slice(payload)?;
        if ack.acks.len() > MAX_ACK_BOOTS {
            return Err(serde::de::Error::custom(format!(
                "ack lists {} boots, more than {MAX_ACK_BOOTS}",
                ack.acks.len()
            )));
        }
        Ok(ack)
    }

    /// The watermark for `boot`, if listed.
    pub fn seq_for(&self, boot: &BootId) -> Option<u64> {
        self.acks.iter().find(|a| &a.boot == boot).map(|a| a.seq)
    }
}
