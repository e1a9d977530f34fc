//! The MQTT connection: client options (client id = agent id, keep-alive, credentials, TLS from
//! `netmon_mqtt::tls_config`, a retained `offline` last will) and the event-loop task.
//!
//! The event-loop task does nothing but poll: it never publishes or subscribes. It reports the
//! connection state on a `watch` channel (`Some(n)` = connected, the n-th connection), hands every
//! message arriving on the agent's `ack` topic to the publisher on another `watch` channel (acks
//! are cumulative: only the latest matters), and reconnects with a `netmon_mqtt::Backoff` (0.5 s
//! doubling to 30 s, reset by a ConnAck). When a connection dies it discards the event batches
//! rumqttc still holds for a resend: the publisher resends everything above the watermark from the
//! journal after the reconnect, so rumqttc's copies would only be a third delivery.

use netmon_events::{AgentStatus, BootId, MAX_PAYLOAD_BYTES, Topic, TopicKind};
use netmon_mqtt::Backoff;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    Request, TlsConfiguration, Transport,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;

/// Requests the client may queue for the event loop before `publish` waits.
const REQUEST_CAPACITY: usize = 16;

/// The topics of one agent.
#[derive(Debug, Clone)]
pub struct Topics {
    pub events: String,
    pub status: String,
    pub ack: String,
    pub alive: String,
}

impl Topics {
    pub fn new(config: &Config) -> Topics {
        let topic = |kind| Topic::new(config.province.clone(), config.agent_id.clone(), kind);
        Topics {
            events: topic(TopicKind::Events).to_string(),
            status: topic(TopicKind::Status).to_string(),
            ack: topic(TopicKind::Ack).to_string(),
            alive: topic(TopicKind::Alive).to_string(),
        }
    }
}

/// Builds the client and its event loop. Reads `mqtt.ca_file` and the client certificate when
/// set; opens no connection.
pub fn client(config: &Config, topics: &Topics) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let broker = &config.mqtt.broker;
    let mut options = MqttOptions::new(config.agent_id.as_str(), broker.host.clone(), broker.port);
    options
        .set_keep_alive(config.mqtt.keep_alive)
        .set_clean_session(true)
        .set_max_packet_size(MAX_PAYLOAD_BYTES + 4096, MAX_PAYLOAD_BYTES + 4096)
        .set_last_will(LastWill::new(
            topics.status.clone(),
            AgentStatus::Offline.to_json(),
            QoS::AtLeastOnce,
            true,
        ));
    if let Some((user, password)) = &config.mqtt.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    if broker.tls {
        // Trust anchors from `mqtt.ca_file`, else the system store; a client certificate when
        // `mqtt.client_cert` is set. Errors name the setting.
        let client = config.mqtt.client_cert.as_ref();
        let tls = netmon_mqtt::tls_config(
            config.mqtt.ca_file.as_deref(),
            client.map(crate::config::ClientCertFiles::as_client_cert),
        )?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    Ok(AsyncClient::new(options, REQUEST_CAPACITY))
}

/// Polls the event loop until the client's DISCONNECT has been sent or `stop` fires.
pub async fn run_event_loop(
    mut eventloop: EventLoop,
    topics: Topics,
    connected: watch::Sender<Option<u64>>,
    acks: watch::Sender<Option<Vec<u8>>>,
    stop: CancellationToken,
) {
    let mut connections = 0u64;
    let mut backoff = Backoff::reconnect();
    let mut failures = 0u64;
    loop {
        let polled = tokio::select! {
            () = stop.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connections += 1;
                backoff.reset();
                failures = 0;
                info!(connection = connections, "connected to the MQTT broker");
                connected.send_replace(Some(connections));
            }
            Ok(Event::Incoming(Packet::Publish(publish))) if publish.topic == topics.ack => {
                debug!(bytes = publish.payload.len(), "acknowledgement received");
                acks.send_replace(Some(publish.payload.to_vec()));
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                info!("disconnected from the MQTT broker");
                break;
            }
            Ok(event) => debug!(?event, "mqtt"),
            Err(ConnectionError::RequestsDone) => break,
            Err(error) => {
                let was_connected = connected.send_replace(None).is_some();
                failures += 1;
                if was_connected {
                    warn!(%error, "lost the connection to the MQTT broker; events stay in the journal");
                } else if failures == 1 {
                    warn!(%error, "cannot connect to the MQTT broker; will keep trying");
                } else {
                    debug!(%error, failures, "still cannot connect to the MQTT broker");
                }
                discard_unconfirmed(&mut eventloop, &topics);
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff.next_wait()) => {}
                }
            }
        }
    }
    connected.send_replace(None);
}

/// Drops the event batches rumqttc holds for a resend (the journal resends them) and the stale
/// liveness messages; keeps the other requests (status, subscriptions, disconnect).
fn discard_unconfirmed(eventloop: &mut EventLoop, topics: &Topics) {
    let before = eventloop.pending.len();
    eventloop
        .pending
        .retain(|request| !matches!(request, Request::Publish(p) if p.topic == topics.events || p.topic == topics.alive));
    let dropped = before - eventloop.pending.len();
    if dropped > 0 {
        debug!(
            batches = dropped,
            "unconfirmed batches discarded; the journal resends them"
        );
    }
}

/// Publishes a liveness message every `every` while connected (`mqtt.alive_every`, ADR 16): QoS 0,
/// not retained, the interval in milliseconds as its payload, so that the collector misses a
/// dead uplink in seconds instead of waiting for the broker's last will. Never queued: a message
/// that cannot be handed to the client at once, or a tick while disconnected, is skipped.
pub async fn run_alive(
    client: AsyncClient,
    topic: String,
    every: std::time::Duration,
    connected: watch::Receiver<Option<u64>>,
    stop: CancellationToken,
) {
    let payload = every.as_millis().to_string().into_bytes();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        if connected.borrow().is_none() {
            continue;
        }
        if let Err(error) = client.try_publish(&topic, QoS::AtMostOnce, false, payload.clone()) {
            debug!(%error, "liveness message skipped");
        }
    }
}

/// The retained status payload published after every ConnAck.
pub fn online(boot: &BootId) -> Vec<u8> {
    AgentStatus::Online {
        boot: boot.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
    .to_json()
}
