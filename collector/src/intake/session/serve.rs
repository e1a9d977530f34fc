//! Serving an open connection: the read side forwards publishes to the writer, the write side
//! sends what the session has pending, each in its own future, until one ends.

use std::sync::Mutex;
use std::time::Instant as StdInstant;

use bytes::BytesMut;
use rumqttc::{Packet, Publish, QoS, SubscribeReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::Session;
use super::keepalive::{KeepAlive, Step};
use super::link::{LinkError, Opened, Stream, read_packet};
use super::outgoing::Connection;
use crate::intake::alive::{self, AliveBook};

/// How much the read side asks of the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Where the read side delivers, and what tells it to stop taking messages.
#[derive(Debug)]
pub struct Deliver<'a> {
    /// The writer's channel; `None` once shutdown began (the broker keeps what is not taken).
    pub tx: &'a mut Option<mpsc::Sender<Publish>>,
    pub alive: &'a Mutex<AliveBook>,
    pub stop: &'a CancellationToken,
}

/// How serving a connection ended.
#[derive(Debug)]
pub enum Ended {
    /// The writer's DISCONNECT went out: the session is over.
    Disconnected,
    /// The writer's channel closed (it stopped).
    WriterGone,
    /// The connection failed; connect again.
    Failed(LinkError),
}

/// Serves `opened` as connection `connection` until it fails or the writer disconnects.
pub async fn serve(
    opened: Opened,
    connection: Connection,
    session: &Session,
    keep_alive: std::time::Duration,
    max_packet: usize,
    deliver: Deliver<'_>,
) -> Ended {
    let Opened { stream, rest, .. } = opened;
    let keepalive = Mutex::new(KeepAlive::new(keep_alive, Instant::now()));
    let (reader, writer) = tokio::io::split(stream);
    // Anything pending (the subscription, publishes sent again) goes out at once.
    session.wake();
    tokio::select! {
        ended = read_side(reader, rest, connection, session, &keepalive, max_packet, deliver) => ended,
        ended = write_side(writer, session, &keepalive) => ended,
    }
}

fn keep(keepalive: &Mutex<KeepAlive>) -> std::sync::MutexGuard<'_, KeepAlive> {
    keepalive
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read_side(
    mut reader: ReadHalf<Box<dyn Stream>>,
    mut buffer: BytesMut,
    connection: Connection,
    session: &Session,
    keepalive: &Mutex<KeepAlive>,
    max_packet: usize,
    deliver: Deliver<'_>,
) -> Ended {
    let Deliver { tx, alive, stop } = deliver;
    loop {
        loop {
            let packet = match read_packet(&mut buffer, max_packet) {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) => return Ended::Failed(e),
            };
            match packet {
                Packet::Publish(message) => {
                    if let Some(ended) =
                        forward(message, connection, session, keepalive, tx, alive, stop).await
                    {
                        return ended;
                    }
                }
                Packet::PubAck(ack) => {
                    if !session.lock().puback(ack.pkid) {
                        debug!(pkid = ack.pkid, "PUBACK for no publish in flight");
                    }
                }
                Packet::SubAck(ack) => {
                    session.lock().suback(ack.pkid);
                    if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                        error!(codes = ?ack.return_codes, "the broker refused a subscription: check its ACL");
                    } else {
                        info!("subscribed");
                    }
                }
                Packet::PingResp => {}
                other => debug!(packet = ?other, "unexpected packet from the broker ignored"),
            }
        }
        if buffer.capacity() - buffer.len() < READ_CHUNK / 4 {
            buffer.reserve(READ_CHUNK);
        }
        tokio::select! {
            read = reader.read_buf(&mut buffer) => match read {
                Ok(0) => return Ended::Failed(LinkError::Closed),
                Ok(_) => keep(keepalive).heard(Instant::now()),
                Err(e) => return Ended::Failed(LinkError::Io(e)),
            },
            () = stop.cancelled(), if tx.is_some() => {
                debug!("intake stops forwarding; waiting for the writer to finish");
                *tx = None;
            }
        }
    }
}

/// Hands one publish on: a liveness message to the book, the rest to the writer (noting a QoS 1
/// message in the session first, so that the writer's ack finds it). Waits while the writer's
/// channel is full; `Some` when serving must end.
async fn forward(
    message: Publish,
    connection: Connection,
    session: &Session,
    keepalive: &Mutex<KeepAlive>,
    tx: &mut Option<mpsc::Sender<Publish>>,
    alive: &Mutex<AliveBook>,
    stop: &CancellationToken,
) -> Option<Ended> {
    if !alive::note(alive, &message, StdInstant::now()) {
        return None;
    }
    let Some(sender) = tx.as_ref() else {
        debug!(
            topic = message.topic,
            "not taken during shutdown; the broker keeps it"
        );
        return None;
    };
    let qos1 = message.qos == QoS::AtLeastOnce;
    if qos1 {
        session.lock().received(connection, message.pkid);
    }
    let message = match sender.try_send(message) {
        Ok(()) => return None,
        Err(mpsc::error::TrySendError::Closed(_)) => {
            error!("the writer has stopped; the intake stops too");
            return Some(Ended::WriterGone);
        }
        Err(mpsc::error::TrySendError::Full(message)) => message,
    };
    // The writer is behind: while the intake waits it reads nothing — neither the broker's
    // answers nor anyone's liveness messages — so neither is judged on the wait.
    keep(keepalive).pause(true, Instant::now());
    let sent = tokio::select! {
        sent = sender.send(message) => sent.is_ok(),
        () = stop.cancelled() => false,
    };
    keep(keepalive).pause(false, Instant::now());
    alive::lock(alive).restart(StdInstant::now());
    if !sent {
        if qos1 {
            session.lock().not_received();
        }
        if stop.is_cancelled() {
            *tx = None;
            return None;
        }
        error!("the writer has stopped; the intake stops too");
        return Some(Ended::WriterGone);
    }
    None
}

async fn write_side(
    mut writer: WriteHalf<Box<dyn Stream>>,
    session: &Session,
    keepalive: &Mutex<KeepAlive>,
) -> Ended {
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let encoded = {
            let mut outgoing = session.lock();
            outgoing.pending().then(|| outgoing.encode(&mut buffer))
        };
        if let Some(encoded) = encoded {
            let written = async {
                writer.write_all(&buffer).await?;
                writer.flush().await
            };
            if let Err(e) = written.await {
                return Ended::Failed(LinkError::Io(e));
            }
            buffer.clear();
            if buffer.capacity() > 16 * READ_CHUNK {
                buffer = BytesMut::with_capacity(READ_CHUNK);
            }
            keep(keepalive).wrote(Instant::now());
            if encoded.disconnect {
                let _ = writer.shutdown().await;
                info!("disconnected from the MQTT broker");
                return Ended::Disconnected;
            }
            continue;
        }
        let check = keep(keepalive).next_check();
        tokio::select! {
            () = session.woken() => {}
            () = tokio::time::sleep_until(check) => {
                let step = keep(keepalive).poll(Instant::now());
                match step {
                    Step::Wait => {}
                    Step::Ping => session.lock().ping(),
                    Step::Dead => {
                        warn!("no answer from the broker within keep_alive of a ping");
                        return Ended::Failed(LinkError::NoAnswer);
                    }
                }
            }
        }
    }
}
