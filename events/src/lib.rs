//! The event contract shared by `netmon-agent` and `netmon-collector`.
//!
//! Everything that crosses a process boundary lives here and nowhere else:
//! - [`envelope`]: the [`Envelope`] every event travels in (agent id, boot id, per-boot gap-free
//!   sequence number, wall time, monotonic time since boot, schema version) and its validation;
//! - [`event`]: the closed [`Event`] enum, serialised as JSON with a snake_case `type` field;
//! - [`alert`]: the types of the collector's alert and notification events;
//! - [`cellular`]: the types of the cellular events (technology, registration, signal, quality);
//! - [`interface`]: the types of the SNMP events (device, interface, oper status);
//! - [`rollup`]: the body of the collector's daily coverage rollup (`coverage_day_rolled_up`);
//! - [`target`]: the probed targets and the keyed description of a boot's targets;
//! - [`topic`]: the MQTT topic scheme, formatted and parsed in one place;
//! - [`payload`]: how a batch of envelopes is encoded in one MQTT message (the compact form of
//!   [`payload::compact`] among them), and the size bound;
//! - [`text`]: the one rule for every string of the contract (no control, bidirectional or
//!   invisible characters), with the cleaning a modem reader applies and the escaping for tables.
//!
//! - [`testing`] (feature `test-util`, dev-dependencies only): envelope and event builders shared
//!   by unit, integration and end-to-end tests.
//!
//! The crate does no I/O and depends on no runtime. `fixtures/` holds golden JSON for every event
//! type; `tests` in each module prove that the format does not drift. The human-readable contract
//! is `docs/contract.md` at the repository root.

pub mod alert;
pub mod cellular;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod interface;
pub mod payload;
pub mod rollup;
pub mod target;
pub mod text;
pub mod time_ms;
pub mod topic;

#[cfg(feature = "test-util")]
pub mod testing;

pub use alert::{AlertKind, Channel, Detection, Message, Notice, NoticeOf};
pub use cellular::{Generation, Quality, Registration, Signal, Technology};
pub use envelope::{Envelope, InvalidEvent, MAX_INT, SCHEMA_VERSION};
pub use event::{
    DescribedTarget, DownReason, Event, LinkRole, MAX_DESCRIBED_TARGETS, RTT_PERCENTILES,
    SilenceReason, Target,
};
pub use ids::{AgentId, BootId, InvalidId, ProvinceId};
pub use interface::{Device, Interface, OperStatus};
pub use payload::{
    Ack, AgentStatus, Batch, BootAck, EncodeError, HeaderTargets, MAX_ACK_BOOTS, MAX_BATCH_EVENTS,
    MAX_PAYLOAD_BYTES, PayloadError, Sender, TargetBook, decode_batch, decode_batch_with,
    encode_batch, encode_batch_from, encode_compact,
};
pub use rollup::{Bins, Carry, OpenReading, OperatorDay};
pub use topic::{Topic, TopicKind};
