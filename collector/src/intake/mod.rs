//! The MQTT intake: the collector's own MQTT session ([`session`]) reads every message and
//! forwards it to the writer over a bounded channel; the writer acknowledges through the same
//! session after committing.
//!
//! The session is persistent (fixed client id, `clean_session = false`) and acknowledgements are
//! manual: the writer acknowledges a message after committing it, so the broker keeps (and
//! redelivers) whatever the collector had not stored when it stopped or crashed. Reconnects back
//! off with `netmon_mqtt::Backoff` (0.5 s doubling to 30 s); the subscriptions are renewed after
//! a connection whose session the broker did not keep.
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
pub mod session;
pub mod snapshot;
pub mod targets;
pub mod watermark;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netmon_events::{MAX_PAYLOAD_BYTES, Topic, TopicKind};
use netmon_mqtt::Backoff;
use rumqttc::{Publish, QoS, SubscribeFilter};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::health::IntakeHealth;
use alive::AliveBook;
use config::MqttConfig;
use session::Session;
use session::serve::{Deliver, Ended, serve};

/// Most of the collector's own QoS 1 publishes (retained watermarks, one per active agent and
/// `ack_interval`) awaiting the broker's PUBACK; past it a watermark waits its next turn. The
/// window costs one slot per packet id.
pub const OUTGOING_INFLIGHT: u16 = 16_384;
/// Largest MQTT packet read. Above the payload limit so that an oversized payload reaches the
/// writer, is refused and acknowledged, instead of breaking the connection (and being redelivered
/// forever). Configure the broker's `max_packet_size` at or below this.
pub const MAX_PACKET_BYTES: usize = 4 * MAX_PAYLOAD_BYTES;
/// How long, after shutdown begins, the intake keeps the connection so that the writer's last
/// acknowledgements reach the broker.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

/// Connects, serves and reconnects until `stop` fires, then until the writer's disconnect goes
/// out (or [`SHUTDOWN_GRACE`] passes). Dropping `tx` when `stop` fires tells the writer to drain
/// and stop. Every connection and failure is reported on `health` (a reconnect loop makes
/// `/healthz` 503).
pub async fn run(
    session: Session,
    config: MqttConfig,
    tx: mpsc::Sender<Publish>,
    health: watch::Sender<IntakeHealth>,
    alive: Arc<Mutex<AliveBook>>,
    stop: CancellationToken,
) {
    let filters = filters(&config);
    let mut forward = Some(tx);
    let mut backoff = Backoff::reconnect();
    let grace = async {
        stop.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::pin!(grace);
    loop {
        let opened = tokio::select! {
            opened = session::link::open(&config, MAX_PACKET_BYTES) => opened,
            () = stop.cancelled(), if forward.is_some() => {
                forward = None;
                continue;
            }
            () = &mut grace => {
                warn!("writer did not finish within the shutdown grace period");
                return;
            }
        };
        let ended = match opened {
            Ok(opened) => {
                backoff.reset();
                alive::lock(&alive).restart(Instant::now());
                health.send_modify(IntakeHealth::connected);
                let present = opened.connack.session_present;
                info!(session_present = present, "connected to the MQTT broker");
                let subscribe =
                    (!present).then(|| filters.iter().map(|f| subscription(f)).collect());
                let connection = session.lock().connected(present, subscribe);
                let deliver = Deliver {
                    tx: &mut forward,
                    alive: &alive,
                    stop: &stop,
                };
                let served = serve(
                    opened,
                    connection,
                    &session,
                    config.keep_alive,
                    MAX_PACKET_BYTES,
                    deliver,
                );
                tokio::select! {
                    ended = served => ended,
                    () = &mut grace => {
                        warn!("writer did not finish within the shutdown grace period");
                        return;
                    }
                }
            }
            Err(e) => Ended::Failed(e),
        };
        match ended {
            Ended::Disconnected | Ended::WriterGone => return,
            Ended::Failed(e) if forward.is_none() && stop.is_cancelled() => {
                debug!(error = %e, "connection ended during shutdown");
                return;
            }
            Ended::Failed(e) => {
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
