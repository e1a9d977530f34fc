//! MQTT client plumbing shared by the agent and the collector, so that both daemons read a broker
//! URL, trust a broker and wait between reconnects in the same way. It holds no client and no
//! event loop: the agent keeps its own rumqttc options and event-loop task, the collector its
//! own MQTT session (`collector/src/intake/session/`, ADR 18).
//!
//! - `url.rs`: [`BrokerUrl`], the parsed `mqtt://host[:port]` / `mqtts://host[:port]` setting.
//! - `tls.rs`: [`tls_config`], the rustls client configuration (ring provider) that trusts a CA
//!   file or, without one, the system trust store, and presents a [`ClientCert`] to a broker that
//!   requires one; [`TlsError`] names the setting at fault.
//! - `backoff.rs` (pure): [`Backoff`], waits doubling from a minimum to a cap, with the pure
//!   [`Backoff::nth`] for retry loops that count their own attempts; [`Backoff::reconnect`] is the
//!   wait before an MQTT reconnect (0.5 s doubling to 30 s, reset by a ConnAck).

mod backoff;
mod tls;
mod url;

pub use backoff::Backoff;
pub use tls::{ClientCert, TlsError, tls_config};
pub use url::BrokerUrl;
