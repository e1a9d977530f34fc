//! The delivery ledger: "nothing lost, nothing doubled", checked on what the store holds.
//!
//! A [`Ledger`] is built from one agent's stored events (`netmon-collector events --json`). For
//! every boot of the agent it expects each seq `1..=max` exactly once, where `max` is the highest
//! seq stored or declared lost. Seqs may be absent only inside a range declared by a
//! `journal_overflowed` event (the agent's record of what its full journal dropped). [`Tally`]
//! counts what it found: expected (what the agent recorded), stored, duplicates (rows with the
//! same `(boot, seq)`), missing (absent and not declared), declared lost, and declared lost yet
//! stored (an event that was published and stored but not yet acknowledged when the journal
//! dropped it).
//!
//! Collector-made events (`agent_went_silent`) carry the collector's boot and seq and are not
//! part of the agent's sequence, so they are left out.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use netmon_events::Event;

use crate::daemons::{Collector, StoredEvent};

/// A `journal_overflowed` declaration: seqs `first..=last` of `boot` were dropped unsent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub boot: String,
    pub first: u64,
    pub last: u64,
    pub count: u64,
}

/// One agent's events as the store holds them.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// boot → seq → rows with that key.
    boots: BTreeMap<String, BTreeMap<u64, u32>>,
    declared: Vec<Declared>,
}

/// What [`Ledger::tally`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub boots: usize,
    /// Events the agent recorded: Σ over boots of the highest seq stored or declared.
    pub expected: u64,
    /// Rows in the store (duplicates counted).
    pub stored: u64,
    /// Rows beyond the first with the same `(boot, seq)`.
    pub duplicates: u64,
    /// Absent and not declared lost, as `(boot, first, last)` ranges.
    pub missing: Vec<(String, u64, u64)>,
    /// Seqs declared lost by `journal_overflowed` events.
    pub declared_lost: u64,
    /// Seqs declared lost that are in the store all the same.
    pub declared_but_stored: u64,
    /// Declarations that contradict themselves (count ≠ range).
    pub bad_declarations: Vec<String>,
}

impl Ledger {
    /// The ledger of `agent`'s own events among `events`.
    pub fn new(agent: &str, events: &[StoredEvent]) -> Self {
        let mut ledger = Self::default();
        for event in events {
            let envelope = &event.envelope;
            if envelope.agent.as_str() != agent || envelope.event.is_collector_made() {
                continue;
            }
            *ledger
                .boots
                .entry(envelope.boot.as_str().to_owned())
                .or_default()
                .entry(envelope.seq)
                .or_default() += 1;
            if let Event::JournalOverflowed {
                dropped_boot,
                first_seq,
                last_seq,
                count,
            } = &envelope.event
            {
                ledger.declared.push(Declared {
                    boot: dropped_boot.as_str().to_owned(),
                    first: *first_seq,
                    last: *last_seq,
                    count: *count,
                });
            }
        }
        ledger
    }

    /// The `journal_overflowed` declarations found.
    pub fn declared(&self) -> &[Declared] {
        &self.declared
    }

    /// The boots seen (stored or declared), in no particular order.
    pub fn boots(&self) -> Vec<String> {
        let mut boots: Vec<String> = self.boots.keys().cloned().collect();
        for declared in &self.declared {
            if !boots.contains(&declared.boot) {
                boots.push(declared.boot.clone());
            }
        }
        boots
    }

    /// The highest seq of `boot` stored or declared lost.
    pub fn max_seq(&self, boot: &str) -> Option<u64> {
        let stored = self
            .boots
            .get(boot)
            .and_then(|seqs| seqs.keys().next_back().copied());
        let declared = self
            .declared
            .iter()
            .filter(|d| d.boot == boot)
            .map(|d| d.last)
            .max();
        stored.max(declared)
    }

    /// How many rows hold `(boot, seq)`.
    pub fn copies(&self, boot: &str, seq: u64) -> u32 {
        self.boots
            .get(boot)
            .and_then(|seqs| seqs.get(&seq))
            .copied()
            .unwrap_or(0)
    }

    /// True when `seq` of `boot` is declared lost.
    pub fn is_declared(&self, boot: &str, seq: u64) -> bool {
        self.declared
            .iter()
            .any(|d| d.boot == boot && (d.first..=d.last).contains(&seq))
    }

    /// True when every seq `1..=up_to` of `boot` is stored or declared lost.
    pub fn complete_up_to(&self, boot: &str, up_to: u64) -> bool {
        (1..=up_to).all(|seq| self.copies(boot, seq) > 0 || self.is_declared(boot, seq))
    }

    /// Counts everything; see [`Tally`].
    pub fn tally(&self) -> Tally {
        let mut tally = Tally {
            boots: self.boots().len(),
            ..Tally::default()
        };
        for seqs in self.boots.values() {
            for copies in seqs.values() {
                tally.stored += u64::from(*copies);
                tally.duplicates += u64::from(copies.saturating_sub(1));
            }
        }
        for boot in self.boots() {
            let max = self.max_seq(&boot).unwrap_or(0);
            tally.expected += max;
            let mut gap: Option<(u64, u64)> = None;
            for seq in 1..=max {
                let stored = self.copies(&boot, seq) > 0;
                let declared = self.is_declared(&boot, seq);
                if declared {
                    tally.declared_lost += 1;
                    if stored {
                        tally.declared_but_stored += 1;
                    }
                }
                if stored || declared {
                    if let Some((first, last)) = gap.take() {
                        tally.missing.push((boot.clone(), first, last));
                    }
                } else {
                    gap = Some(gap.map_or((seq, seq), |(first, _)| (first, seq)));
                }
            }
            if let Some((first, last)) = gap {
                tally.missing.push((boot.clone(), first, last));
            }
        }
        // Declarations may overlap: one that was stored but not yet acknowledged when the journal
        // dropped it is made again, merged with what was dropped after it.
        for d in &self.declared {
            if d.first == 0 || d.first > d.last || d.count != d.last - d.first + 1 {
                tally.bad_declarations.push(format!(
                    "boot {} {}..={} count {} does not describe its range",
                    d.boot, d.first, d.last, d.count
                ));
            }
        }
        tally
    }
}

/// Reads `agent`'s events from `collector`'s store (every 500 ms: a store holds thousands) until
/// `done` is true of them, and returns them. Panics on timeout, naming `what` and the last tally.
pub fn wait_ledger(
    collector: &Collector,
    agent: &str,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&Ledger, &[StoredEvent]) -> bool,
) -> (Ledger, Vec<StoredEvent>) {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match collector.events(&["--agent", agent]) {
            Ok(events) => {
                let ledger = Ledger::new(agent, &events);
                if done(&ledger, &events) {
                    return (ledger, events);
                }
                let tally = ledger.tally();
                format!("{tally}; missing {:?}", first_few(&tally.missing))
            }
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn first_few<T: Clone>(items: &[T]) -> Vec<T> {
    items.iter().take(5).cloned().collect()
}

impl Tally {
    /// Seqs missing without a declaration.
    pub fn missing_count(&self) -> u64 {
        self.missing.iter().map(|(_, a, b)| b - a + 1).sum()
    }

    /// Panics, naming what is wrong, unless nothing is missing, doubled or wrongly declared.
    pub fn assert_exactly_once(&self, what: &str) {
        assert!(
            self.expected > 0,
            "{what}: no events of the agent in the store"
        );
        assert_eq!(
            self.duplicates, 0,
            "{what}: duplicates in the store: {self}"
        );
        assert!(
            self.missing.is_empty(),
            "{what}: events missing without a journal_overflowed: {:?} ({self})",
            self.missing
        );
        assert!(
            self.bad_declarations.is_empty(),
            "{what}: bad journal_overflowed events: {:?}",
            self.bad_declarations
        );
    }

    /// Prints the counts for the closing note: `delivery[label]: sent … stored … ` on stderr.
    pub fn report(&self, label: &str) {
        eprintln!("delivery[{label}]: {self}");
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "boots {} sent {} stored {} duplicates {} missing {} declared_lost {} \
             declared_but_stored {}",
            self.boots,
            self.expected,
            self.stored,
            self.duplicates,
            self.missing_count(),
            self.declared_lost,
            self.declared_but_stored
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ledger(rows: &[(&str, u64)], declared: &[(&str, u64, u64, u64)]) -> Ledger {
        let mut ledger = Ledger::default();
        for (boot, seq) in rows {
            *ledger
                .boots
                .entry((*boot).to_owned())
                .or_default()
                .entry(*seq)
                .or_default() += 1;
        }
        for (boot, first, last, count) in declared {
            ledger.declared.push(Declared {
                boot: (*boot).to_owned(),
                first: *first,
                last: *last,
                count: *count,
            });
        }
        ledger
    }

    #[test]
    fn a_complete_sequence_passes() {
        let tally = ledger(&[("a", 1), ("a", 2), ("a", 3), ("b", 1)], &[]).tally();
        assert_eq!(
            (tally.expected, tally.stored, tally.missing_count()),
            (4, 4, 0)
        );
        tally.assert_exactly_once("complete");
    }

    #[test]
    fn gaps_and_duplicates_are_counted() {
        let tally = ledger(&[("a", 1), ("a", 1), ("a", 4), ("a", 5), ("a", 7)], &[]).tally();
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.missing, vec![("a".into(), 2, 3), ("a".into(), 6, 6)]);
        assert_eq!(tally.expected, 7);
    }

    #[test]
    fn declared_ranges_excuse_exactly_their_seqs() {
        // Boot a lost 3..=5 (declared in boot b's events), b is complete; a's tail 6 is there.
        let l = ledger(
            &[("a", 1), ("a", 2), ("a", 6), ("b", 1), ("b", 2)],
            &[("a", 3, 5, 3)],
        );
        let tally = l.tally();
        tally.assert_exactly_once("declared");
        assert_eq!((tally.declared_lost, tally.declared_but_stored), (3, 0));
        assert!(l.complete_up_to("a", 6));
        assert!(!l.complete_up_to("b", 3));
        // A declaration that is too short leaves a gap.
        let tally = ledger(&[("a", 1), ("a", 6)], &[("a", 2, 4, 3)]).tally();
        assert_eq!(tally.missing, vec![("a".into(), 5, 5)]);
        // A whole boot dropped counts towards expected.
        let tally = ledger(&[("b", 1)], &[("a", 1, 9, 9)]).tally();
        assert_eq!((tally.expected, tally.boots), (10, 2));
        tally.assert_exactly_once("whole boot");
    }

    #[test]
    fn contradictory_declarations_are_reported() {
        let tally = ledger(&[("a", 1)], &[("a", 2, 4, 2), ("a", 4, 6, 3)]).tally();
        assert_eq!(
            tally.bad_declarations.len(),
            1,
            "{:?}",
            tally.bad_declarations
        );
        // Overlapping declarations are allowed (a dropped declaration is made again).
        let tally = ledger(&[("a", 1)], &[("a", 2, 4, 3), ("a", 2, 6, 5)]).tally();
        assert!(
            tally.bad_declarations.is_empty(),
            "{:?}",
            tally.bad_declarations
        );
    }
}
