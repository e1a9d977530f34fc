//! The compact batch form (`docs/adr/0014-probe-windows-and-compact-batches.md`): events of one
//! agent's boot under one header, without their `v`, `agent` and `boot`, naming their target by
//! its key in the boot's `targets_described`:
//!
//! ```json
//! {"agent":"…","boot":"…","v":1,"sender":{"boot":"…","mono_ms":7200412},
//!  "targets":[{"key":1,"name":…,"address":…,"role":…}],
//!  "events":[{"seq":9,"time":"…","mono_ms":…,"type":"probe_window_completed","target":1,…}]}
//! ```
//!
//! `targets` is there when the agent cannot be sure the receiver has the boot's description.
//! Decoding expands every event into the envelope an old form would have carried; a key that
//! nothing describes is refused with [`InvalidEvent::UnknownTarget`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Batch, PayloadError, Sender, check_count, checked, element};
use crate::envelope::{Envelope, InvalidEvent, check_described};
use crate::event::{DescribedTarget, Target};
use crate::ids::{AgentId, BootId};

/// The envelope fields a compact event leaves to its header.
const HEADER_FIELDS: [&str; 3] = ["v", "agent", "boot"];

/// What a receiver knows of the targets agents described in earlier batches (their stored
/// `targets_described`): where the keys of a compact batch without header `targets` resolve.
pub trait TargetBook {
    /// The targets `agent` described for `boot`, if known.
    fn targets(&self, agent: &AgentId, boot: &BootId) -> Option<&[DescribedTarget]>;
}

/// The descriptions by agent and boot.
impl TargetBook for HashMap<(AgentId, BootId), Vec<DescribedTarget>> {
    fn targets(&self, agent: &AgentId, boot: &BootId) -> Option<&[DescribedTarget]> {
        self.get(&(agent.clone(), boot.clone())).map(Vec::as_slice)
    }
}

/// The book of a receiver that knows nothing: [`super::decode_batch`].
#[derive(Debug)]
pub(super) struct NoBook;

impl TargetBook for NoBook {
    fn targets(&self, _: &AgentId, _: &BootId) -> Option<&[DescribedTarget]> {
        None
    }
}

/// Whether a compact batch's header carries the boot's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderTargets {
    /// The receiver may not have the boot's `targets_described` (not yet acknowledged, or
    /// dropped by the journal): the header carries the table.
    Include,
    /// The receiver has stored the description: keys alone.
    Omit,
}

/// Why envelopes cannot be written as one compact batch. Each is a caller's bug.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("a compact batch needs at least one event")]
    Empty,
    /// A compact batch holds the events of one agent's boot and one schema version: build one
    /// batch per boot.
    #[error("event seq {seq} is of {agent}/{boot} v{v}, not of the batch's first event")]
    MixedBoots {
        seq: u64,
        agent: AgentId,
        boot: BootId,
        v: u16,
    },
    #[error("targets: {0}")]
    Targets(InvalidEvent),
    #[error("cannot serialise: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct CompactOut<'a> {
    agent: &'a AgentId,
    boot: &'a BootId,
    v: u16,
    sender: &'a Sender,
    #[serde(skip_serializing_if = "Option::is_none")]
    targets: Option<&'a [DescribedTarget]>,
    events: Vec<Value>,
}

#[derive(Deserialize)]
struct CompactIn {
    agent: AgentId,
    boot: BootId,
    v: u16,
    sender: Sender,
    #[serde(default)]
    targets: Option<Vec<DescribedTarget>>,
    events: Vec<Value>,
}

/// Encodes `events`, all of one agent's boot, as one compact `events` payload with the sender's
/// clock, as agents send them.
///
/// `targets` is that boot's description (empty for an agent without targets, or one that does
/// not know the boot's): an event's target found in it is written as its key, any other in full
/// (the decoder accepts both). `header` says whether the header carries `targets` too. Keeping
/// the payload within [`super::MAX_PAYLOAD_BYTES`] and [`super::MAX_BATCH_EVENTS`] is the
/// caller's, as with [`super::encode_batch_from`].
pub fn encode_compact(
    sender: &Sender,
    events: &[Envelope],
    targets: &[DescribedTarget],
    header: HeaderTargets,
) -> Result<Vec<u8>, EncodeError> {
    let first = events.first().ok_or(EncodeError::Empty)?;
    if let Some(other) = events
        .iter()
        .find(|e| e.agent != first.agent || e.boot != first.boot || e.v != first.v)
    {
        return Err(EncodeError::MixedBoots {
            seq: other.seq,
            agent: other.agent.clone(),
            boot: other.boot.clone(),
            v: other.v,
        });
    }
    if !targets.is_empty() {
        check_described(targets).map_err(EncodeError::Targets)?;
    }
    let keys: HashMap<&Target, u16> = targets.iter().rev().map(|d| (&d.target, d.key)).collect();
    let events = events
        .iter()
        .map(|envelope| {
            let mut value = serde_json::to_value(envelope)?;
            if let Value::Object(fields) = &mut value {
                for name in HEADER_FIELDS {
                    fields.remove(name);
                }
                if let Some(key) = envelope.event.target().and_then(|t| keys.get(t)) {
                    fields.insert("target".into(), (*key).into());
                }
            }
            Ok(value)
        })
        .collect::<Result<_, serde_json::Error>>()?;
    let batch = CompactOut {
        agent: &first.agent,
        boot: &first.boot,
        v: first.v,
        sender,
        targets: (header == HeaderTargets::Include && !targets.is_empty()).then_some(targets),
        events,
    };
    Ok(serde_json::to_vec(&batch)?)
}

/// Decodes a compact batch (an object with `agent` and `events`) into full envelopes.
pub(super) fn decode(item: Value, book: &dyn TargetBook) -> Result<Batch, PayloadError> {
    let batch = serde_json::from_value::<CompactIn>(item)?;
    check_count(batch.events.len())?;
    if let Some(targets) = &batch.targets {
        check_described(targets).map_err(PayloadError::Header)?;
    }
    let in_batch = described_in(&batch.events);
    let table = batch
        .targets
        .as_deref()
        .or(in_batch.as_deref())
        .or_else(|| book.targets(&batch.agent, &batch.boot));
    let header = Header {
        agent: &batch.agent,
        boot: &batch.boot,
        v: batch.v,
        table,
    };
    let events = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(index, item)| header.expand(index, item))
        .collect();
    Ok(Batch {
        sender: Some(batch.sender),
        events,
    })
}

/// The targets of the first valid `targets_described` among compact `events`.
fn described_in(events: &[Value]) -> Option<Vec<DescribedTarget>> {
    events
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("targets_described"))
        .filter_map(|e| Vec::<DescribedTarget>::deserialize(e.get("targets")?).ok())
        .find(|targets| check_described(targets).is_ok())
}

/// What every event of a compact batch shares, and the table its keys resolve in.
struct Header<'a> {
    agent: &'a AgentId,
    boot: &'a BootId,
    v: u16,
    table: Option<&'a [DescribedTarget]>,
}

impl Header<'_> {
    /// Compact event `index` as the full envelope it stands for, validated.
    fn expand(&self, index: usize, item: Value) -> Result<Envelope, PayloadError> {
        let malformed = |problem: String| element(index, serde::de::Error::custom(problem));
        let Value::Object(mut fields) = item else {
            return Err(malformed("a compact event is a JSON object".into()));
        };
        if let Some(name) = HEADER_FIELDS.iter().find(|&&n| fields.contains_key(n)) {
            return Err(malformed(format!(
                "a compact event does not repeat the header's `{name}`"
            )));
        }
        if let Some(Value::Number(key)) = fields.get("target") {
            let key = key.as_u64().ok_or_else(|| {
                malformed(format!("target key {key} is not a whole number from 1"))
            })?;
            let target = u16::try_from(key)
                .ok()
                .and_then(|k| DescribedTarget::find(self.table?, k));
            let Some(target) = target else {
                return Err(self.unknown_target(index, &fields, key, malformed));
            };
            let target = serde_json::to_value(target).map_err(|e| element(index, e))?;
            fields.insert("target".into(), target);
        }
        fields.insert("v".into(), self.v.into());
        fields.insert("agent".into(), self.agent.as_str().into());
        fields.insert("boot".into(), self.boot.as_str().into());
        let envelope = serde_json::from_value::<Envelope>(Value::Object(fields))
            .map_err(|e| element(index, e))?;
        checked(index, envelope)
    }

    /// The refusal of an event whose target `key` nothing describes: with its key, so that the
    /// receiver records it as refused, when its `seq` is readable.
    fn unknown_target(
        &self,
        index: usize,
        fields: &Map<String, Value>,
        key: u64,
        malformed: impl Fn(String) -> PayloadError,
    ) -> PayloadError {
        let source = InvalidEvent::UnknownTarget {
            key,
            boot: self.boot.clone(),
        };
        match fields.get("seq").and_then(Value::as_u64) {
            Some(seq) => PayloadError::Invalid {
                index,
                agent: self.agent.clone(),
                boot: self.boot.clone(),
                seq,
                source,
            },
            None => malformed(source.to_string()),
        }
    }
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod tests;
