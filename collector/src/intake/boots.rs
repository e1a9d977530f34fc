//! What the collector knows about each agent boot: the acknowledgement watermark (`watermark.rs`)
//! and the epoch estimate (`clock.rs`). Pure: the store rows go in and out as values.
//!
//! A batch is recorded against a [`Draft`]: copies of the boots it touches, changed as its events
//! are judged and marked. The draft's rows are written in the same transaction as the events;
//! only when that commits does [`Boots::commit`] take the draft, so nothing that was not committed
//! is ever acknowledged. Marking a duplicate again is harmless (it was marked when first stored),
//! so a draft marks every accepted event without knowing which ones the store already had.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use netmon_events::{
    Ack, AgentId, BootAck, BootId, Envelope, Event, MAX_ACK_BOOTS, ProvinceId, Sender, Topic,
    TopicKind,
};
use tracing::info;

use crate::intake::clock::{self, ClockPolicy, ClockSource, Judgement};
use crate::intake::watermark::Watermark;
use crate::store::{BootRow, LoadedBoot, Overflow};

/// One agent boot.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    pub watermark: Watermark,
    pub epoch: Option<DateTime<Utc>>,
    pub first_received: DateTime<Utc>,
    pub last_received: DateTime<Utc>,
    /// Whether a correction of this boot's clock has been logged (not persisted).
    pub correcting: bool,
}

impl Boot {
    fn new(received: DateTime<Utc>) -> Self {
        Self {
            watermark: Watermark::new(0),
            epoch: None,
            first_received: received,
            last_received: received,
            correcting: false,
        }
    }
}

type Key = (AgentId, BootId);

/// Every known boot of every agent, and the province each agent last published in.
#[derive(Debug, Default)]
pub struct Boots {
    boots: HashMap<Key, Boot>,
    /// Per agent, its boots (for the ack).
    by_agent: HashMap<AgentId, HashSet<BootId>>,
    /// The province of each agent's topics, once heard from since start.
    provinces: HashMap<AgentId, ProvinceId>,
}

/// The boots one batch changes, before its commit.
#[derive(Debug, Default)]
pub struct Draft {
    boots: HashMap<Key, Boot>,
    provinces: HashMap<AgentId, ProvinceId>,
}

impl Boots {
    /// Rebuilds from the store: the persisted rows, the seqs stored above each watermark (asked
    /// of `seqs_above` only for boots whose watermark is below their highest stored seq), and every
    /// stored overflow range. Returns the registry and the rows whose watermark moved.
    pub fn load<E>(
        loaded: Vec<LoadedBoot>,
        overflows: &[Overflow],
        mut seqs_above: impl FnMut(&AgentId, &BootId, u64) -> Result<Vec<u64>, E>,
    ) -> Result<(Self, Vec<BootRow>), E> {
        let mut boots = Self::default();
        let mut before = HashMap::new();
        for LoadedBoot { row, max_seq } in loaded {
            let mut watermark = Watermark::new(row.watermark);
            if row.watermark < max_seq {
                for seq in seqs_above(&row.agent, &row.boot, row.watermark)? {
                    watermark.mark(seq);
                }
            }
            before.insert((row.agent.clone(), row.boot.clone()), row.watermark);
            boots.insert(
                row.agent,
                row.boot,
                Boot {
                    watermark,
                    epoch: row.epoch,
                    first_received: row.first_received,
                    last_received: row.last_received,
                    correcting: false,
                },
            );
        }
        for o in overflows {
            let key = (o.agent.clone(), o.dropped_boot.clone());
            if !boots.boots.contains_key(&key) {
                boots.insert(key.0.clone(), key.1.clone(), Boot::new(o.received));
            }
            if let Some(boot) = boots.boots.get_mut(&key) {
                boot.watermark.mark_range(o.first_seq..=o.last_seq);
            }
        }
        let moved = boots
            .boots
            .iter()
            .filter(|(key, boot)| before.get(*key) != Some(&boot.watermark.get()))
            .map(|(key, boot)| row(key, boot))
            .collect();
        Ok((boots, moved))
    }

    fn insert(&mut self, agent: AgentId, boot: BootId, record: Boot) {
        self.by_agent
            .entry(agent.clone())
            .or_default()
            .insert(boot.clone());
        self.boots.insert((agent, boot), record);
    }

    /// One boot, if known.
    pub fn get(&self, agent: &AgentId, boot: &BootId) -> Option<&Boot> {
        self.boots.get(&(agent.clone(), boot.clone()))
    }

    /// Takes a committed draft; logs the boots whose clock correction starts with it. Returns
    /// the agents it touched, to acknowledge.
    pub fn commit(&mut self, draft: Draft) -> Vec<AgentId> {
        for ((agent, boot), record) in draft.boots {
            if record.correcting && !self.get(&agent, &boot).is_some_and(|b| b.correcting) {
                info!(%agent, %boot, "agent clock implausible: correcting its event times from the monotonic clock");
            }
            self.insert(agent, boot, record);
        }
        let touched = draft.provinces.keys().cloned().collect();
        self.provinces.extend(draft.provinces);
        touched
    }

    /// The retained ack for `agent`: its topic and up to [`MAX_ACK_BOOTS`] boots, most recently
    /// heard first, each with a watermark above 0. `None` for an agent not heard from since
    /// start (its province is unknown).
    pub fn ack(&self, agent: &AgentId) -> Option<(Topic, Ack)> {
        let province = self.provinces.get(agent)?;
        let mut boots: Vec<(&BootId, &Boot)> = self
            .by_agent
            .get(agent)?
            .iter()
            .filter_map(|b| self.get(agent, b).map(|r| (b, r)))
            .filter(|(_, r)| r.watermark.get() > 0)
            .collect();
        boots.sort_by(|a, b| {
            (b.1.last_received, b.1.first_received, b.0).cmp(&(
                a.1.last_received,
                a.1.first_received,
                a.0,
            ))
        });
        let acks = boots
            .into_iter()
            .take(MAX_ACK_BOOTS)
            .map(|(boot, r)| BootAck {
                boot: boot.clone(),
                seq: r.watermark.get(),
            })
            .collect();
        let topic = Topic {
            province: province.clone(),
            agent: agent.clone(),
            kind: TopicKind::Ack,
        };
        Some((topic, Ack { acks }))
    }
}

impl Draft {
    /// The draft's copy of a boot: taken from `boots`, or new.
    fn boot(&mut self, boots: &Boots, key: Key, received: DateTime<Utc>) -> &mut Boot {
        self.boots.entry(key).or_insert_with_key(|key| {
            boots
                .boots
                .get(key)
                .cloned()
                .unwrap_or_else(|| Boot::new(received))
        })
    }

    /// A batch from `agent` in `province` said its clock: improve the sender boot's epoch.
    pub fn sender(
        &mut self,
        boots: &Boots,
        agent: &AgentId,
        province: &ProvinceId,
        sender: &Sender,
        received: DateTime<Utc>,
    ) {
        self.provinces.insert(agent.clone(), province.clone());
        let boot = self.boot(boots, (agent.clone(), sender.boot.clone()), received);
        boot.epoch = clock::better_epoch(boot.epoch, clock::epoch_sample(received, sender.mono_ms));
    }

    /// Judges an accepted agent event's time (see `clock.rs`) and marks it, and the range a
    /// `journal_overflowed` covers, as known.
    pub fn accept(
        &mut self,
        boots: &Boots,
        policy: ClockPolicy,
        province: &ProvinceId,
        envelope: &Envelope,
        received: DateTime<Utc>,
    ) -> Judgement {
        self.provinces
            .insert(envelope.agent.clone(), province.clone());
        let key = (envelope.agent.clone(), envelope.boot.clone());
        let boot = self.boot(boots, key, received);
        let judgement = clock::judge(
            policy,
            envelope.time,
            envelope.mono_ms,
            boot.epoch,
            received,
        );
        boot.correcting |= judgement.clock == ClockSource::Corrected;
        boot.last_received = received;
        boot.watermark.mark(envelope.seq);
        if let Event::JournalOverflowed {
            dropped_boot,
            first_seq,
            last_seq,
            ..
        } = &envelope.event
        {
            let key = (envelope.agent.clone(), dropped_boot.clone());
            let dropped = self.boot(boots, key, received);
            dropped.watermark.mark_range(*first_seq..=*last_seq);
            // Recently active again: the agent needs this boot's watermark to trim its journal.
            dropped.last_received = received;
        }
        judgement
    }

    /// An event of `agent` refused for good (it can never become valid): marked as known, so
    /// that the watermark moves past it and the agent trims it instead of resending it forever.
    pub fn refused(
        &mut self,
        boots: &Boots,
        province: &ProvinceId,
        agent: &AgentId,
        boot: &BootId,
        seq: u64,
        received: DateTime<Utc>,
    ) {
        self.provinces.insert(agent.clone(), province.clone());
        let record = self.boot(boots, (agent.clone(), boot.clone()), received);
        record.last_received = received;
        record.watermark.mark(seq);
    }

    /// The rows to write with the batch.
    pub fn rows(&self) -> Vec<BootRow> {
        self.boots
            .iter()
            .map(|(key, boot)| row(key, boot))
            .collect()
    }
}

fn row((agent, boot): &Key, record: &Boot) -> BootRow {
    BootRow {
        agent: agent.clone(),
        boot: boot.clone(),
        watermark: record.watermark.get(),
        epoch: record.epoch,
        first_received: record.first_received,
        last_received: record.last_received,
    }
}
