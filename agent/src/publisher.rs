//! The publisher task: while connected, hands the outbox to MQTT as QoS 1 batches on the `events`
//! topic, and after every new connection publishes the retained `online` status first.
//!
//! Shutdown: once the recorder has finished (`drained`), the publisher sends what is left (waiting
//! for a connection if need be), publishes the retained `offline` status — a clean DISCONNECT does
//! not fire the last will — and asks the client to disconnect. rumqttc writes requests in order,
//! so the broker has every batch before it sees the DISCONNECT. `stop` (end of the grace period)
//! ends it early.

use std::sync::Arc;

use anyhow::Context;
use netmon_events::AgentStatus;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::mqtt::Topics;
use crate::outbox::Outbox;

/// What the publisher task needs.
#[derive(Debug)]
pub struct Publisher {
    pub client: AsyncClient,
    pub topics: Topics,
    /// The retained `online` status payload.
    pub online: Vec<u8>,
    pub outbox: Arc<Outbox>,
}

/// Runs until the outbox is flushed after `drained`, or until `stop`.
pub async fn run_publisher(
    publisher: Publisher,
    mut connected: watch::Receiver<Option<u64>>,
    drained: CancellationToken,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let Publisher {
        client,
        topics,
        online,
        outbox,
    } = publisher;
    let mut announced = 0u64;
    let mut published = 0u64;
    loop {
        let connection = *connected.borrow_and_update();
        if let Some(connection) = connection {
            if connection != announced {
                let publish =
                    client.publish(&topics.status, QoS::AtLeastOnce, true, online.clone());
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    r = publish => r.context("publishing the online status")?,
                }
                announced = connection;
            }
            // Stop handing over as soon as the connection is known to be gone: the outbox keeps
            // the events, rumqttc's queue would only hold them longer.
            while connected.borrow().is_some()
                && let Some((payload, events)) = outbox.take_batch()
            {
                let publish = client.publish(&topics.events, QoS::AtLeastOnce, false, payload);
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    r = publish => r.context("publishing events")?,
                }
                published += events as u64;
            }
        }
        if drained.is_cancelled() && outbox.is_empty() && connection.is_some() {
            break;
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            changed = connected.changed() => if changed.is_err() {
                // The event loop is gone: nothing more can be sent.
                return Ok(());
            },
            () = outbox.ready() => {}
            () = drained.cancelled(), if !drained.is_cancelled() => {}
        }
    }
    info!(published, "outbox flushed; disconnecting");
    let offline = client.publish(
        &topics.status,
        QoS::AtLeastOnce,
        true,
        AgentStatus::Offline.to_json(),
    );
    let finish = async {
        offline.await?;
        client.disconnect().await
    };
    tokio::select! {
        () = stop.cancelled() => warn!("grace period over before the disconnect was sent"),
        r = finish => r.context("disconnecting")?,
    }
    Ok(())
}
