//! Pure: the bytes of a snapshot file, and what a file must say to be used.
//!
//! ```text
//! MAGIC (8) | format (u32 LE) | Header (postcard) | Folded (postcard) | CRC-32 of all before (u32 LE)
//! ```
//!
//! The magic and the format version come first and fixed, so a file of another format is named
//! as such rather than as damaged; the checksum covers everything else. The header is decoded
//! before the body, so a file of another build or schema is refused without reading the rest.

use chrono::{DateTime, Utc};
use netmon_events::{AgentId, BootId};
use serde::{Deserialize, Serialize};

use crate::alerts::book::Book;
use crate::alerts::signals::Signals;
use crate::intake::targets::KnownTargets;
use crate::state::State;

/// The first bytes of every snapshot file (`\r\n` and `\0` catch a copy that changed them).
pub const MAGIC: [u8; 8] = *b"netmon\r\0";
/// The layout below; a change of it is a new number.
pub const FORMAT: u32 = 1;
/// Magic, format, and the checksum at the end.
const FRAME: usize = MAGIC.len() + 4 + 4;

/// Everything the writer folds from the store that a restart cannot get elsewhere, at one store
/// position. The agents' boots (watermarks, epochs) are not here: they are rows of the store,
/// written in each batch's own transaction (`boots.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Folded {
    /// The live state; `state.last_id` is the snapshot's position.
    pub state: State,
    /// The alert rules' measurements: smoothing, hysteresis, baselines, flaps, modems.
    pub signals: Signals,
    /// Alerts, silences, the outbox and the finished notifications.
    pub book: Book,
    /// The targets each agent described for its recent boots.
    pub targets: KnownTargets,
}

/// What a snapshot file says about where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The store's schema version (`store/schema.rs`).
    pub schema: i64,
    /// The build that wrote it: see [`build`].
    pub build: String,
    /// The configuration the signals were folded with: see `fold_key` in `mod.rs`.
    pub fold: u32,
    /// The id of the last stored event folded in (`state.last_id`).
    pub position: i64,
    /// That event's `(agent, boot, seq)`: a store with another event there is another store.
    pub at_position: (AgentId, BootId, u64),
    /// When it was taken (for the logs).
    pub taken: DateTime<Utc>,
}

/// What a file must match to be used: this build's versions and configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub schema: i64,
    pub build: String,
    pub fold: u32,
}

/// Why a snapshot file is not used (the store is then replayed from its first event).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Ignored {
    #[error("it cannot be read: {0}")]
    Unreadable(String),
    #[error("it is not a snapshot file (no magic)")]
    NotASnapshot,
    #[error("it is of format version {found}; this build reads version {FORMAT}")]
    Format { found: u32 },
    #[error("its checksum does not match: the file is damaged")]
    Checksum,
    #[error("its header cannot be decoded: {0}")]
    Header(String),
    #[error("it was written for store schema {found}; this build's is {expected}")]
    Schema { found: i64, expected: i64 },
    #[error("it was written by build {found:?}; this is {expected:?}")]
    Build { found: String, expected: String },
    #[error("[alerts] or the inventory's site thresholds changed since it was written")]
    Fold,
    #[error("its content cannot be decoded: {0}")]
    Content(String),
    #[error(
        "its position {position} is beyond the store's last event {last} \
         (a store restored from an older backup, or writes lost with the power)"
    )]
    BeyondEnd { position: i64, last: i64 },
    #[error("the store's event {position} is not the one it was taken after: another store")]
    OtherStore { position: i64 },
}

/// The files whose text decides the snapshot's types and how they are folded: any change to one
/// makes snapshots of older builds ignored. The contract's types are folded too.
const FOLD_SOURCES: [&str; 15] = [
    include_str!("format.rs"),
    include_str!("../../state.rs"),
    include_str!("../../alerts/mod.rs"),
    include_str!("../../alerts/signals.rs"),
    include_str!("../../alerts/book.rs"),
    include_str!("../../alerts/modem_conditions.rs"),
    include_str!("../targets.rs"),
    include_str!("../../store/mod.rs"),
    include_str!("../../../../events/src/event.rs"),
    include_str!("../../../../events/src/envelope.rs"),
    include_str!("../../../../events/src/target.rs"),
    include_str!("../../../../events/src/ids.rs"),
    include_str!("../../../../events/src/alert.rs"),
    include_str!("../../../../events/src/cellular.rs"),
    include_str!("../../../../events/src/interface.rs"),
];

/// This build: the crate's version and a CRC-32 of [`FOLD_SOURCES`], e.g. `0.1.0+9a3c01f2`.
pub fn build() -> String {
    let mut hasher = crc32fast::Hasher::new();
    for source in FOLD_SOURCES {
        hasher.update(source.as_bytes());
        hasher.update(&[0]);
    }
    format!("{}+{:08x}", env!("CARGO_PKG_VERSION"), hasher.finalize())
}

/// The whole file.
pub fn encode(header: &Header, folded: &Folded) -> Result<Vec<u8>, postcard::Error> {
    let mut bytes = Vec::with_capacity(1 << 20);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    let mut bytes = postcard::to_extend(header, bytes)?;
    bytes = postcard::to_extend(folded, bytes)?;
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    Ok(bytes)
}

/// The header alone, once the frame is checked (magic, format, checksum), and the body's bytes.
pub fn header(bytes: &[u8]) -> Result<(Header, &[u8]), Ignored> {
    if bytes.len() < FRAME || bytes[..MAGIC.len()] != MAGIC {
        return Err(Ignored::NotASnapshot);
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let found = word(MAGIC.len());
    if found != FORMAT {
        return Err(Ignored::Format { found });
    }
    let end = bytes.len() - 4;
    if crc32fast::hash(&bytes[..end]) != word(end) {
        return Err(Ignored::Checksum);
    }
    postcard::take_from_bytes::<Header>(&bytes[MAGIC.len() + 4..end])
        .map_err(|e| Ignored::Header(e.to_string()))
}

/// The file's header and content, if it was written by this build for this store schema and
/// configuration. Where it stands in a store is checked by the caller.
pub fn decode(bytes: &[u8], expected: &Expected) -> Result<(Header, Folded), Ignored> {
    let (header, body) = header(bytes)?;
    if header.schema != expected.schema {
        return Err(Ignored::Schema {
            found: header.schema,
            expected: expected.schema,
        });
    }
    if header.build != expected.build {
        return Err(Ignored::Build {
            found: header.build,
            expected: expected.build.clone(),
        });
    }
    if header.fold != expected.fold {
        return Err(Ignored::Fold);
    }
    let (folded, rest) =
        postcard::take_from_bytes::<Folded>(body).map_err(|e| Ignored::Content(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Ignored::Content(format!(
            "{} bytes after the end",
            rest.len()
        )));
    }
    if folded.state.last_id != header.position {
        return Err(Ignored::Content(format!(
            "the state's last event {} is not the header's position {}",
            folded.state.last_id, header.position
        )));
    }
    Ok((header, folded))
}
