//! The MQTT intake: one task that only polls the rumqttc event loop and forwards every received
//! message to the writer over a bounded channel.
//!
//! The session is persistent (fixed client id, `clean_session = false`) and acknowledgements are
//! manual: the writer acknowledges a message after committing it, so the broker keeps (and
//! redelivers) whatever the collector had not stored when it stopped or crashed. Reconnects back
//! off with `netmon_mqtt::Backoff` (0.5 s doubling to 30 s); the subscriptions are renewed after a connection whose
//! session the broker did not keep.
//!
//! Beside it, what the writer does with the messages it forwards: [`recorder`] (a batch → stored
//! events, one transaction; at start, the fold from a [`snapshot`] and the events after it), and
//! the pure parts it keeps in a draft: [`clock`] (clock trust), [`watermark`] and [`boots`] (what
//! each agent boot has delivered), [`acks`] (the retained acknowledgements' pacing).

pub mod acks;
pub mod alive;
pub mod boots;
pub mod clock;
pub mod config;
pub mod recorder;
pub mod snapshot;
pub mod targets;
pub mod watermark;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netmon_events::{MAX_PAYLOAD_BYTES, Topic, TopicKind};
use netmon_mqtt::Backoff;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeFilter,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::health::IntakeHealth;
use alive::AliveBook;
use config::MqttConfig;

/// Capacity of the client's request channel (acknowledgements, subscriptions). Larger than the
/// writer's batch, so acknowledging a whole batch never waits for the event loop.
const REQUEST_CAPACITY: usize = 4096;
/// Most of the collector's own QoS 1 publishes (retained watermarks, one per active agent and
/// `ack_interval`) awaiting the broker's PUBACK. rumqttc stops reading the request channel —
/// acknowledgements included — while this window is full, and under load those PUBACKs queue
/// behind the events coming in; with rumqttc's default of 100 a fleet of 100,000 agents
/// stalled the intake (tests/bench/ingest.py). The window costs one slot per packet id.
const OUTGOING_INFLIGHT: u16 = 16_384;
/// Largest MQTT packet read. Above the payload limit so that an oversized payload reaches the
/// writer, is refused and acknowledged, instead of breaking the connection (and being redelivered
/// forever). Configure the broker's `max_packet_size` at or below this.
pub const MAX_PACKET_BYTES: usize = 4 * MAX_PAYLOAD_BYTES;
/// How long, after shutdown begins, the event loop keeps running so that the writer's last
/// acknowledgements reach the broker.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The client (for acknowledgements and disconnect) and its event loop (for the intake task).
pub fn connect(config: &MqttConfig) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(OUTGOING_INFLIGHT)
        .set_keep_alive(config.keep_alive)
        .set_max_packet_size(MAX_PACKET_BYTES, 64 * 1024);
    if let Some((user, password)) = &config.credentials {
        options.set_credentials(user, password);
    }
    if let Some(tls) = &config.tls {
        options.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls.clone())));
    }
    AsyncClient::new(options, REQUEST_CAPACITY)
}

/// The subscriptions the collector needs: events, status and liveness messages of its province
/// (or all).
pub fn filters(config: &MqttConfig) -> Vec<String> {
    let province = config.province.as_ref();
    [TopicKind::Events, TopicKind::Status, TopicKind::Alive]
        .into_iter()
        .map(|kind| Topic::filter(province, kind))
        .collect()
}

/// Liveness messages are taken at QoS 0 (a late one is worth nothing); the rest at QoS 1.
fn subscription(filter: &str) -> SubscribeFilter {
    let alive = filter.ends_with(TopicKind::Alive.as_str());
    let qos = if alive {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    SubscribeFilter::new(filter.to_owned(), qos)
}

/// What the intake does with a message before the writer sees it: a liveness message goes to
/// the book and no further (`false`); a `status` makes the book forget the agent (a new
/// connection, which may not send liveness messages); everything goes on to the writer.
fn note(alive: &Mutex<AliveBook>, message: &Publish, at: Instant) -> bool {
    let Ok(topic) = Topic::parse(&message.topic) else {
        return true;
    };
    let mut book = alive::lock(alive);
    match topic.kind {
        TopicKind::Alive => {
            if !book.heard(topic.agent, &message.payload, at) {
                debug!(
                    topic = message.topic,
                    bytes = message.payload.len(),
                    "liveness message ignored: its payload is not an interval of 1000 to 60000 ms"
                );
            }
            false
        }
        TopicKind::Status => {
            book.forget(&topic.agent);
            true
        }
        _ => true,
    }
}

/// Polls the event loop until `stop` fires, then until the writer's disconnect goes out (or
/// [`SHUTDOWN_GRACE`] passes). Dropping `tx` when `stop` fires tells the writer to drain and stop.
/// Every connection and failure is reported on `health` (a reconnect loop makes `/healthz` 503).
pub async fn run(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    tx: mpsc::Sender<Publish>,
    health: watch::Sender<IntakeHealth>,
    alive: Arc<Mutex<AliveBook>>,
    stop: CancellationToken,
) {
    let restart = |at| alive::lock(&alive).restart(at);
    let mut forward = Some(tx);
    let mut backoff = Backoff::reconnect();
    let grace = tokio::time::sleep(Duration::MAX);
    tokio::pin!(grace);
    loop {
        let event = tokio::select! {
            () = stop.cancelled(), if forward.is_some() => {
                debug!("intake stops forwarding; waiting for the writer to finish");
                forward = None;
                grace.as_mut().reset(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                continue;
            }
            () = &mut grace => {
                warn!("writer did not finish within the shutdown grace period");
                break;
            }
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                restart(Instant::now());
                health.send_modify(IntakeHealth::connected);
                info!(
                    session_present = ack.session_present,
                    "connected to the MQTT broker"
                );
                if !ack.session_present {
                    let subscription = filters.iter().map(|f| subscription(f));
                    if let Err(e) = client.try_subscribe_many(subscription) {
                        error!(?filters, error = %e, "subscription request failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                    error!(codes = ?ack.return_codes, "the broker refused a subscription: check its ACL");
                } else {
                    info!(filters = ?filters, "subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(message))) => {
                if !note(&alive, &message, Instant::now()) {
                    continue;
                }
                let Some(tx) = &forward else {
                    debug!(
                        topic = message.topic,
                        "not taken during shutdown; the broker keeps it"
                    );
                    continue;
                };
                let message = match tx.try_send(message) {
                    Ok(()) => continue,
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        error!("the writer has stopped; the intake stops too");
                        break;
                    }
                    Err(mpsc::error::TrySendError::Full(message)) => message,
                };
                // The writer is behind: while the intake waits, nobody's liveness messages are
                // read, so nobody is judged on the wait.
                tokio::select! {
                    sent = tx.send(message) => if sent.is_err() {
                        error!("the writer has stopped; the intake stops too");
                        break;
                    },
                    () = stop.cancelled() => {}
                }
                restart(Instant::now());
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                info!("disconnected from the MQTT broker");
                break;
            }
            Ok(_) => {}
            Err(e) if forward.is_none() => {
                debug!(error = %e, "connection ended during shutdown");
                break;
            }
            Err(e) => {
                let wait = backoff.next_wait();
                warn!(error = %e, retry_in = ?wait, "MQTT connection failed");
                let error = e.to_string();
                health.send_modify(|h| h.failed(chrono::Utc::now(), &error));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => {}
                }
            }
        }
    }
}
