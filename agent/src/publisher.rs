//! The publisher: sends the journal to the broker and trims it by the collector's
//! acknowledgements.
//!
//! After every ConnAck it publishes the retained `online` status, subscribes (QoS 1) to the
//! agent's `ack` topic and rewinds to the start of the journal: everything above the watermark is
//! sent again, earlier boots first — whatever the previous connection had in flight may or may not
//! have arrived, and the collector's unique key absorbs duplicates. Until the collector's retained
//! ack arrives, only the persisted watermark counts.
//!
//! Events go out in journal order as QoS 1 compact batches (ADR 14, `encode_compact`): one boot's
//! events per message (≤ [`BATCH_EVENTS`] events, ≤ [`BATCH_BYTES`] of journal records, plus the
//! header's target table when [`Headers`] says the collector may not have it), carrying the
//! sender's clock, paced by the [`Pacer`]: events recorded while connected go out at once — after
//! [`GATHER`], so that what is recorded together (a window's summaries for every target, a
//! round's link changes) goes in one message — and a backlog drains at `journal.drain_rate`
//! events per second on top. Each ack raises the watermark and deletes the segments it fully
//! covers.
//!
//! At shutdown (after the recorder has ended) it sends what the pacer allows at once, then
//! publishes `offline` and disconnects; whatever is left stays in the journal for the next start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use netmon_events::{
    Ack, AgentStatus, BootId, Envelope, Sender, encode_batch_from, encode_compact,
};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::headers::Headers;
use crate::journal::Journal;
use crate::mqtt::Topics;
use crate::pacer::{MAX_HOLD, Pacer};
use crate::recorder::Clock;

/// Most events in one MQTT message.
pub const BATCH_EVENTS: usize = 100;

/// Largest size of one MQTT message, in bytes (the collector accepts up to 256 KiB).
pub const BATCH_BYTES: usize = 64 * 1024;

/// Room kept in a batch for the header (agent, boot, `v`, `sender`) around the events. The
/// target table, when the header carries it, comes on top: at most 256 targets of a few hundred
/// bytes, which keeps a message far below the collector's 256 KiB.
const BATCH_OVERHEAD: usize = 256;

/// How long live events wait for the events recorded with them before they are sent.
pub const GATHER: Duration = Duration::from_millis(50);

/// What the publisher task owns.
#[derive(Debug)]
pub struct Publisher {
    pub client: AsyncClient,
    pub topics: Topics,
    pub online: Vec<u8>,
    pub journal: Arc<Journal>,
    /// Which target table each batch carries.
    pub headers: Headers,
    /// This process's boot and clock, for the `sender` of each batch.
    pub boot: BootId,
    pub clock: Clock,
    pub drain_rate: u32,
}

/// The channels the publisher listens to.
#[derive(Debug)]
pub struct Signals {
    /// `Some(n)` while connected (the n-th connection), from the event loop.
    pub connected: watch::Receiver<Option<u64>>,
    /// The latest message on the `ack` topic, from the event loop.
    pub acks: watch::Receiver<Option<Vec<u8>>>,
    /// Cancelled when the recorder has ended: nothing more will be appended.
    pub drained: CancellationToken,
    /// Cancelled when the grace period is over: give up at once.
    pub stop: CancellationToken,
}

/// Runs until the journal's live events are sent after `drained`, or until `stop`.
pub async fn run_publisher(publisher: Publisher, signals: Signals) -> anyhow::Result<()> {
    let Publisher {
        client,
        topics,
        online,
        journal,
        mut headers,
        boot,
        clock,
        drain_rate,
    } = publisher;
    let Signals {
        mut connected,
        mut acks,
        drained,
        stop,
    } = signals;
    let mut announced = 0u64;
    let mut cursor = 0u64;
    let mut seen = journal.next_ordinal();
    let mut pacer = Pacer::new(drain_rate, Instant::now().into_std());
    let mut held_since: Option<Instant> = None;
    let mut gathering_since: Option<Instant> = None;
    let mut published = 0u64;
    let (mut acks_open, mut connection_open) = (true, true);
    let mut ack_arrived = false;
    loop {
        if std::mem::take(&mut ack_arrived) || acks.has_changed().unwrap_or(false) {
            let payload = acks.borrow_and_update().clone();
            acknowledge(&journal, payload.as_deref())?;
        }
        let connection = *connected.borrow_and_update();
        let appended = journal.next_ordinal();
        match connection {
            Some(n) if n != announced => {
                let online = client.publish(&topics.status, QoS::AtLeastOnce, true, online.clone());
                let subscribe = client.subscribe(&topics.ack, QoS::AtLeastOnce);
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    r = async { online.await?; subscribe.await } => {
                        r.context("publishing the online status and subscribing to acks")?;
                    }
                }
                announced = n;
                cursor = 0;
                pacer.forget_credit();
                held_since = None;
                let backlog = journal.backlog();
                info!(
                    backlog = backlog.events,
                    oldest_boot = backlog.oldest.as_ref().map(|(b, _)| b.as_str()),
                    oldest_seq = backlog.oldest.as_ref().map(|(_, s)| *s),
                    "sending every event not acknowledged yet"
                );
            }
            Some(_) => pacer.credit(appended - seen),
            None => {}
        }
        seen = appended;

        let mut wake: Option<Instant> = None;
        // Only while the connection this pass started on lasts: after a reconnect the outer loop
        // must rewind to the watermark first, or the backlog goes out twice and unpaced.
        while connection.is_some() && *connected.borrow() == connection {
            let pending = journal.pending(cursor, BATCH_EVENTS) as u64;
            if pending == 0 {
                held_since = None;
                gathering_since = None;
                break;
            }
            let now = Instant::now();
            let gathering = *gathering_since.get_or_insert(now);
            if pending < BATCH_EVENTS as u64 && now < gathering + GATHER && !drained.is_cancelled()
            {
                wake = Some(gathering + GATHER);
                break;
            }
            let available = pacer.available(now.into_std());
            let held = *held_since.get_or_insert(now);
            let take = if available >= pending {
                pending
            } else if available > 0 && (now >= held + MAX_HOLD || drained.is_cancelled()) {
                available
            } else {
                // Wait for a full batch's tokens, but not longer than MAX_HOLD in all.
                let full = pacer.wait_for(pending, now.into_std());
                let hold = (held + MAX_HOLD).saturating_duration_since(now);
                wake = Some(now + full.min(hold).max(Duration::from_millis(1)));
                break;
            };
            held_since = None;
            let selected = journal
                .select_boot(cursor, take as usize, BATCH_BYTES - BATCH_OVERHEAD)
                .context("reading the journal")?;
            cursor = selected.next;
            if selected.events.is_empty() {
                continue;
            }
            let sender = Sender {
                boot: boot.clone(),
                mono_ms: clock.now().mono_ms,
            };
            let payload = encode(&journal, &mut headers, &sender, &selected.events);
            let publish = client.publish(&topics.events, QoS::AtLeastOnce, false, payload);
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                r = publish => r.context("publishing events")?,
            }
            let n = selected.events.len() as u64;
            pacer.spend(n, Instant::now().into_std());
            published += n;
            debug!(events = n, "batch handed to MQTT");
        }

        if drained.is_cancelled() {
            break;
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            changed = connected.changed(), if connection_open => {
                connection_open = changed.is_ok();
                if !connection_open {
                    // The event loop is gone: nothing more can be sent.
                    return Ok(());
                }
            }
            changed = acks.changed(), if acks_open => {
                // `changed` marks the value seen: remember to apply it.
                acks_open = changed.is_ok();
                ack_arrived = acks_open;
            }
            () = journal.appended() => {}
            () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            () = drained.cancelled() => {}
        }
    }
    journal.sync().context("syncing the journal")?;
    let left = journal.backlog().events;
    if connected.borrow().is_none() {
        info!(
            published,
            left, "not connected at shutdown; unsent events stay in the journal"
        );
        stop.cancel();
        return Ok(());
    }
    info!(
        published,
        left, "stopping; events not acknowledged yet stay in the journal; disconnecting"
    );
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

/// One boot's events as a compact batch, with the target table [`Headers`] decides on. Should the
/// encoder refuse them (it cannot for events the journal holds), the full form carries them.
fn encode(
    journal: &Journal,
    headers: &mut Headers,
    sender: &Sender,
    events: &[Envelope],
) -> Vec<u8> {
    let acked = events
        .first()
        .and_then(|e| journal.watermark().seq_for(&e.boot));
    let targets = headers.for_batch(events, acked);
    match encode_compact(sender, events, &targets.table, targets.header) {
        Ok(payload) => payload,
        Err(error) => {
            warn!(%error, "sending a batch in the full form");
            encode_batch_from(sender, events)
        }
    }
}

/// Applies one message from the `ack` topic; a malformed one is logged and ignored.
fn acknowledge(journal: &Journal, payload: Option<&[u8]>) -> anyhow::Result<()> {
    let Some(payload) = payload else {
        return Ok(());
    };
    match Ack::from_json(payload) {
        Ok(ack) => {
            let deleted = journal.acknowledge(&ack).context("trimming the journal")?;
            debug!(boots = ack.acks.len(), deleted, "acknowledgement applied");
        }
        Err(error) => warn!(%error, "ignoring a message on the ack topic that is not an ack"),
    }
    Ok(())
}
