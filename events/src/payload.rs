//! How envelopes are carried in MQTT messages.
//!
//! An `events` message is a JSON array of one or more envelopes (a single envelope object is also
//! accepted, so that a hand-written `mosquitto_pub -m '{…}'` works). A `status` message is an
//! [`AgentStatus`].

use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, InvalidEvent};
use crate::ids::BootId;

/// Largest `events` payload a collector accepts, in bytes. Agents keep batches well below it.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Largest number of envelopes in one message.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// Why a payload, or one envelope inside it, was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload of {0} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")]
    TooLarge(usize),
    #[error("payload is not a JSON envelope or array of envelopes: {0}")]
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
    #[error("event {index} of the batch (seq {seq}): {source}")]
    Invalid {
        index: usize,
        seq: u64,
        source: InvalidEvent,
    },
}

/// Encodes envelopes as one `events` payload.
pub fn encode_batch(events: &[Envelope]) -> Vec<u8> {
    // Serialising these types cannot fail: no maps with non-string keys, no foreign types.
    serde_json::to_vec(events).unwrap_or_default()
}

/// Decodes and validates an `events` payload.
///
/// The outer `Result` fails when the payload as a whole is unusable (too large, not JSON, not an
/// array or object). Otherwise every element is decoded and validated on its own, so one bad event
/// does not cost the good ones beside it.
pub fn decode_batch(payload: &[u8]) -> Result<Vec<Result<Envelope, PayloadError>>, PayloadError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge(payload.len()));
    }
    let checked = |index: usize, envelope: Envelope| match envelope.validate() {
        Ok(()) => Ok(envelope),
        Err(source) => Err(PayloadError::Invalid {
            index,
            seq: envelope.seq,
            source,
        }),
    };
    // Fast path: a well-formed array, decoded in one pass.
    if let Ok(envelopes) = serde_json::from_slice::<Vec<Envelope>>(payload) {
        check_count(envelopes.len())?;
        return Ok(envelopes
            .into_iter()
            .enumerate()
            .map(|(i, e)| checked(i, e))
            .collect());
    }
    match serde_json::from_slice::<serde_json::Value>(payload)? {
        serde_json::Value::Array(items) => {
            check_count(items.len())?;
            Ok(items
                .into_iter()
                .enumerate()
                .map(
                    |(index, item)| match serde_json::from_value::<Envelope>(item) {
                        Ok(envelope) => checked(index, envelope),
                        Err(e) => Err(PayloadError::Element {
                            index,
                            source: Box::new(PayloadError::Json(e)),
                        }),
                    },
                )
                .collect())
        }
        item @ serde_json::Value::Object(_) => {
            let envelope = serde_json::from_value::<Envelope>(item)?;
            Ok(vec![checked(0, envelope)])
        }
        _ => Err(PayloadError::Json(serde::de::Error::custom(
            "expected an array of envelopes or one envelope object",
        ))),
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
