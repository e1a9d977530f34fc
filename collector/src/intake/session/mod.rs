//! The collector's own MQTT 3.1.1 session with the broker: one connection at a time, whose
//! reads never wait for its writes and whose writes go out in batches.
//!
//! rumqttc's event loop (which the agents keep) handles one request — an acknowledgement, a
//! watermark — per turn, with a write and a flush each (rumqtt issue #810), and reads nothing
//! while the collector's intake waits for the writer. At a country's 10,000 messages a second
//! its acknowledgements fell behind, the broker's answer to a ping went unread, and the
//! connection was dropped and every unacknowledged message delivered again (`docs/benchmarks.md`,
//! 2026-12-02). Here:
//!
//! - [`Session`] is the handle the writer acknowledges and publishes through. It never blocks:
//!   it adds to [`outgoing::Outgoing`] (pure) and wakes the connection's write side, which sends
//!   whatever is pending in one write — a committed batch's PUBACKs together.
//! - [`link`] is the I/O: open TCP (and TLS), CONNECT and CONNACK, then a read side that parses
//!   packets (rumqttc's own MQTT 3.1.1 codec, `rumqttc::mqttbytes`) and forwards publishes, and a
//!   write side, both running until one fails. Keep-alive is [`keepalive::KeepAlive`] (pure):
//!   waiting for the writer never counts as the broker's silence.
//!
//! Packets are encoded and decoded by rumqttc's codec: a tested implementation of the protocol
//! netmon does not need to own; the session — what is sent when, on which connection — is ours.

pub mod keepalive;
pub mod link;
pub mod outgoing;
pub mod serve;

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use outgoing::{Full, Outgoing};

/// The writer's handle on the session: acknowledge, publish, disconnect. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    outgoing: Mutex<Outgoing>,
    /// Wakes the write side when something is pending.
    wake: Notify,
}

impl Session {
    /// A session whose own publishes have at most `max_in_flight` awaiting the broker's PUBACK.
    pub fn new(max_in_flight: u16) -> Self {
        Self {
            shared: Arc::new(Shared {
                outgoing: Mutex::new(Outgoing::new(max_in_flight)),
                wake: Notify::new(),
            }),
        }
    }

    /// The message with `pkid` is stored: its PUBACK goes out with the next write, if it came
    /// on the connection now open (otherwise the broker delivers it again).
    pub fn ack(&self, pkid: u16) {
        if self.lock().ack(pkid) {
            self.shared.wake.notify_one();
        }
    }

    /// A QoS 1 publish of the collector's own (a retained watermark); refused when the in-flight
    /// window is full.
    pub fn publish(&self, topic: String, payload: Vec<u8>, retain: bool) -> Result<(), Full> {
        self.lock().publish(topic, Bytes::from(payload), retain)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// A DISCONNECT after everything pending; the connection then closes and the intake stops.
    pub fn disconnect(&self) {
        self.lock().disconnect();
        self.shared.wake.notify_one();
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Outgoing> {
        // Every change to `Outgoing` is complete before it returns: a panic elsewhere while the
        // lock was held leaves nothing half-done.
        self.shared
            .outgoing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn wake(&self) {
        self.shared.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.shared.wake.notified().await;
    }
}

#[cfg(test)]
mod outgoing_tests;
