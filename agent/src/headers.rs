//! Which target table a compact batch is written with, and whether its header carries it (pure:
//! the publisher passes the batch and the watermark in). ADR 14: a compact batch names targets by
//! the keys of its boot's `targets_described`; its header carries the table whenever the agent
//! cannot be sure the collector has stored that description.
//!
//! **This boot** (the running process): the table is the one the recorder described (the config's
//! targets keyed 1, 2, 3 …, in the event of seq [`DESCRIPTION_SEQ`]). The header carries it until
//! the collector's watermark for this boot reaches that seq, and for good once a
//! `journal_overflowed` says the journal dropped the description unsent: the watermark then
//! passes it as *declared lost*, not stored. (The collector stores that `journal_overflowed`
//! before its watermark can pass the description, so the publisher has sent it, and seen it, by
//! then.)
//!
//! **An earlier boot** (a backlog left by a previous process): the publisher does not know what
//! the collector holds of it (the collector keeps the descriptions of an agent's newest 8 boots),
//! so every batch of it carries a table in its header, and is decoded with it alone: the boot's
//! own `targets_described` when the batch holds it, else the targets the batch's events name,
//! keyed 1, 2, 3 … in the order they first appear. The journal keeps full envelopes (ADR 7), so
//! that table can always be rebuilt, whatever was acknowledged, trimmed or dropped before.
//!
//! A target beyond the table (a boot with more than [`MAX_DESCRIBED_TARGETS`] targets) is
//! written in full: the decoder accepts both.

use netmon_events::{
    BootId, DescribedTarget, Envelope, Event, HeaderTargets, MAX_DESCRIBED_TARGETS, Target,
};

use crate::recorder::DESCRIPTION_SEQ;

/// What the publisher knows about this boot's description.
#[derive(Debug, Clone)]
pub struct Headers {
    boot: BootId,
    table: Vec<DescribedTarget>,
    /// A `journal_overflowed` declared this boot's description lost.
    dropped: bool,
}

/// How to write one batch: the table its keys come from and whether its header carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTargets {
    pub table: Vec<DescribedTarget>,
    pub header: HeaderTargets,
}

impl Headers {
    /// For the running boot `boot`, whose targets the recorder describes as `table`.
    pub fn new(boot: BootId, table: Vec<DescribedTarget>) -> Headers {
        Headers {
            boot,
            table,
            dropped: false,
        }
    }

    /// The table and header for `events` (one boot's, in journal order, about to be sent);
    /// `acked` is the collector's watermark for that boot.
    pub fn for_batch(&mut self, events: &[Envelope], acked: Option<u64>) -> BatchTargets {
        self.note(events);
        match events.first() {
            Some(first) if first.boot != self.boot => BatchTargets {
                table: earlier_table(events),
                header: HeaderTargets::Include,
            },
            _ => BatchTargets {
                table: self.table.clone(),
                header: if self.describing(acked) {
                    HeaderTargets::Include
                } else {
                    HeaderTargets::Omit
                },
            },
        }
    }

    /// Whether this boot's batches carry the table in their header, with watermark `acked`.
    pub fn describing(&self, acked: Option<u64>) -> bool {
        self.dropped || acked.is_none_or(|w| w < DESCRIPTION_SEQ)
    }

    /// Learns from a batch whether this boot's description was declared lost.
    fn note(&mut self, events: &[Envelope]) {
        for e in events {
            if let Event::JournalOverflowed {
                dropped_boot,
                first_seq,
                last_seq,
                ..
            } = &e.event
                && *dropped_boot == self.boot
                && (*first_seq..=*last_seq).contains(&DESCRIPTION_SEQ)
            {
                self.dropped = true;
            }
        }
    }
}

/// The table of a batch of an earlier boot: its own description when the batch holds it, else
/// the targets its events name, keyed in the order they first appear.
fn earlier_table(events: &[Envelope]) -> Vec<DescribedTarget> {
    if let Some(targets) = events.iter().find_map(|e| match &e.event {
        Event::TargetsDescribed { targets } => Some(targets),
        _ => None,
    }) {
        return targets.clone();
    }
    let mut seen: Vec<&Target> = Vec::new();
    for target in events.iter().filter_map(|e| e.event.target()) {
        if seen.len() < MAX_DESCRIBED_TARGETS && !seen.contains(&target) {
            seen.push(target);
        }
    }
    let seen: Vec<Target> = seen.into_iter().cloned().collect();
    DescribedTarget::numbered(&seen)
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
