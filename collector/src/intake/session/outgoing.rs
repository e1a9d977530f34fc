//! What the collector has to send on its MQTT connection (pure: no I/O, no clock).
//!
//! The writer hands acknowledgements and watermarks in one at a time; the connection's write
//! side takes everything pending at once ([`Outgoing::encode`]) and sends it in one write, so a
//! committed batch of 500 messages costs one write of 2,000 bytes of PUBACKs, not 500 writes
//! with a flush each.
//!
//! - **PUBACKs go out in the order the messages came, and only on the connection they came
//!   on.** Every QoS 1 message the intake forwards is noted ([`Outgoing::received`]) with the
//!   connection it came on; the writer acknowledges in that same order (MQTT 3.1.1 §4.6 requires
//!   it, and the writer's pacing keeps it), so each [`Outgoing::ack`] matches the oldest noted
//!   message. An ack for a message of an earlier connection is dropped: its packet id means
//!   nothing to the broker now (it may even name a newer message not yet stored), and the broker
//!   delivers the message again, which the store's unique key recognises.
//! - **The collector's own publishes** (retained watermarks, QoS 1) get a packet id free in the
//!   in-flight window and stay there until the broker's PUBACK; after a reconnect those still in
//!   flight are sent again, marked duplicate. A full window refuses a publish
//!   ([`Full`]): the writer tries that watermark again later.
//! - A PINGREQ and, at shutdown, a DISCONNECT go after everything else that is pending.

use std::collections::{BTreeMap, HashSet, VecDeque};

use bytes::{Bytes, BytesMut};
use rumqttc::{Disconnect, PingReq, PubAck, Publish, QoS, Subscribe, SubscribeFilter};

/// A connection, as numbered by the session: the first is 1.
pub type Connection = u64;

/// The in-flight window of the collector's own publishes is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the collector's in-flight window of publishes is full")]
pub struct Full;

/// Everything waiting to be written, and the publishes awaiting the broker's PUBACK.
#[derive(Debug)]
pub struct Outgoing {
    /// The connection now open (or being opened).
    connection: Connection,
    /// QoS 1 messages forwarded to the writer and not acknowledged yet: connection, packet id.
    received: VecDeque<(Connection, u16)>,
    /// Acknowledgements to write, oldest first.
    acks: Vec<u16>,
    /// Publishes to write (new, or again after a reconnect).
    queued: VecDeque<Publish>,
    /// Publishes written and not acknowledged by the broker, by packet id.
    in_flight: BTreeMap<u16, Publish>,
    max_in_flight: usize,
    /// Packet ids of queued and in-flight publishes and of the subscription awaiting its SUBACK.
    in_use: HashSet<u16>,
    next_pkid: u16,
    subscribe: Option<Subscribe>,
    subscribing: Option<u16>,
    ping: bool,
    disconnect: bool,
    /// Acks dropped because their message came on an earlier connection, and forwarded messages
    /// an ack skipped over or acks that matched none (the writer broke the order).
    pub stale_acks: u64,
    pub unmatched_acks: u64,
}

/// What [`Outgoing::encode`] put into the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoded {
    pub acks: usize,
    pub publishes: usize,
    /// A DISCONNECT was the last packet: close the connection after writing.
    pub disconnect: bool,
}

impl Outgoing {
    /// Nothing pending, at most `max_in_flight` (at least 1) of the collector's own publishes
    /// unacknowledged.
    pub fn new(max_in_flight: u16) -> Self {
        Self {
            connection: 0,
            received: VecDeque::new(),
            acks: Vec::new(),
            queued: VecDeque::new(),
            in_flight: BTreeMap::new(),
            max_in_flight: usize::from(max_in_flight.max(1)),
            in_use: HashSet::new(),
            next_pkid: 1,
            subscribe: None,
            subscribing: None,
            ping: false,
            disconnect: false,
            stale_acks: 0,
            unmatched_acks: 0,
        }
    }

    /// A new connection is accepted by the broker (`session_present` as its CONNACK says):
    /// pending acks of the last one are dropped, the publishes still in flight go first, marked
    /// duplicate (as new publishes when the broker kept no session), and a SUBSCRIBE to
    /// `filters` (when given) before them all. Returns the connection's number.
    pub fn connected(
        &mut self,
        session_present: bool,
        filters: Option<Vec<SubscribeFilter>>,
    ) -> Connection {
        self.connection += 1;
        self.stale_acks += self.acks.len() as u64;
        self.acks.clear();
        self.ping = false;
        let resent = std::mem::take(&mut self.in_flight);
        for (_, mut publish) in resent.into_iter().rev() {
            publish.dup = session_present;
            self.queued.push_front(publish);
        }
        if let Some(pkid) = self.subscribing.take() {
            self.in_use.remove(&pkid);
        }
        self.subscribe = filters.map(|filters| {
            let mut subscribe = Subscribe::new_many(filters);
            subscribe.pkid = self.free_pkid();
            self.subscribing = Some(subscribe.pkid);
            subscribe
        });
        self.connection
    }

    /// The broker answered the SUBSCRIBE with `pkid`.
    pub fn suback(&mut self, pkid: u16) -> bool {
        if self.subscribing != Some(pkid) {
            return false;
        }
        self.subscribing = None;
        self.in_use.remove(&pkid)
    }

    /// A QoS 1 message with `pkid` came on `connection` and goes to the writer, which will
    /// acknowledge it after storing it.
    pub fn received(&mut self, connection: Connection, pkid: u16) {
        self.received.push_back((connection, pkid));
    }

    /// The message last noted as received did not reach the writer after all (shutdown began
    /// while the intake waited for room): no ack will come for it.
    pub fn not_received(&mut self) {
        self.received.pop_back();
    }

    /// The writer stored the message with `pkid`: queue its PUBACK if it came on the connection
    /// now open. Returns whether one was queued.
    pub fn ack(&mut self, pkid: u16) -> bool {
        // The writer acknowledges in the order it received; a mismatch is skipped over so that
        // one lost ack cannot misalign every later one.
        let Some(position) = self.received.iter().position(|&(_, id)| id == pkid) else {
            self.unmatched_acks += 1;
            return false;
        };
        if position > 0 {
            self.unmatched_acks += position as u64;
        }
        let mut matched = None;
        for _ in 0..=position {
            matched = self.received.pop_front();
        }
        match matched {
            Some((connection, _)) if connection == self.connection => {
                self.acks.push(pkid);
                true
            }
            _ => {
                self.stale_acks += 1;
                false
            }
        }
    }

    /// Queues a QoS 1 publish of the collector's own; refused when the in-flight window is full.
    pub fn publish(&mut self, topic: String, payload: Bytes, retain: bool) -> Result<(), Full> {
        if self.in_flight.len() + self.queued.len() >= self.max_in_flight {
            return Err(Full);
        }
        let mut publish = Publish::from_bytes(topic, QoS::AtLeastOnce, payload);
        publish.retain = retain;
        publish.pkid = self.free_pkid();
        self.queued.push_back(publish);
        Ok(())
    }

    /// The broker acknowledged the collector's publish `pkid`.
    pub fn puback(&mut self, pkid: u16) -> bool {
        let known = self.in_flight.remove(&pkid).is_some();
        if known {
            self.in_use.remove(&pkid);
        }
        known
    }

    /// Queue a PINGREQ.
    pub fn ping(&mut self) {
        self.ping = true;
    }

    /// Queue a DISCONNECT after everything pending.
    pub fn disconnect(&mut self) {
        self.disconnect = true;
    }

    /// Whether anything waits to be written.
    pub fn pending(&self) -> bool {
        self.subscribe.is_some()
            || !self.acks.is_empty()
            || !self.queued.is_empty()
            || self.ping
            || self.disconnect
    }

    /// QoS 1 messages forwarded and not acknowledged by the writer yet.
    pub fn unacknowledged(&self) -> usize {
        self.received.len()
    }

    /// Appends every pending packet to `buffer`, in order: the subscription, the PUBACKs, the
    /// publishes (which move in flight), a PINGREQ, a DISCONNECT.
    pub fn encode(&mut self, buffer: &mut BytesMut) -> Encoded {
        let mut encoded = Encoded::default();
        if let Some(subscribe) = self.subscribe.take() {
            // A SUBSCRIBE with topics and a packet id cannot fail to encode.
            let _ = subscribe.write(buffer);
        }
        for pkid in self.acks.drain(..) {
            let _ = PubAck::new(pkid).write(buffer);
            encoded.acks += 1;
        }
        while let Some(publish) = self.queued.pop_front() {
            // Only a packet id of 0 fails, and `publish` never makes one.
            let _ = publish.write(buffer);
            self.in_flight.insert(publish.pkid, publish);
            encoded.publishes += 1;
        }
        if std::mem::take(&mut self.ping) {
            let _ = PingReq.write(buffer);
        }
        if self.disconnect {
            let _ = Disconnect.write(buffer);
            encoded.disconnect = true;
        }
        encoded
    }

    /// A packet id not in use, marked used. The window is far below 65,535 ids, so one is found
    /// within a window's length of tries.
    fn free_pkid(&mut self) -> u16 {
        loop {
            let pkid = self.next_pkid;
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if self.in_use.insert(pkid) {
                return pkid;
            }
        }
    }
}
