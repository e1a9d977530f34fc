//! The journal's in-memory index (pure: no I/O). One [`Entry`] per record on disk, in journal
//! order, with the acknowledgement watermark per boot. It answers what the journal's I/O needs to
//! decide: which records to send next, which segments hold only acknowledged records (to delete),
//! which unacknowledged events a dropped segment loses ([`Lost`], exact contiguous ranges), and how
//! large the backlog is.
//!
//! Journal order is append order: the events of earlier boots come before those of later boots,
//! and within a boot `seq` rises without gaps (segments deleted because they were acknowledged can
//! leave gaps below the watermark, never above it).
//!
//! Everything it is given may come from a damaged or hostile journal directory, so no input
//! makes it panic: sums saturate, a declared range that runs backwards is not a range (it is
//! ignored), and lookups by boot slot do not index out of bounds.

use std::collections::VecDeque;

use netmon_events::{Ack, BootAck, BootId, MAX_ACK_BOOTS};

/// One record: which event it holds and where it lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Position in append order since the journal was opened; never reused.
    pub ordinal: u64,
    /// Slot in the index's table of boots.
    pub boot: u32,
    pub seq: u64,
    /// Segment number (the file name).
    pub segment: u64,
    /// Offset of the record in its segment.
    pub offset: u64,
    /// Size of the whole record, header included.
    pub len: u32,
    /// For a `journal_overflowed` record: the range it declares lost (boot slot, first, last).
    /// If the record itself is dropped before it is acknowledged, that range is declared again.
    pub declares: Option<(u32, u64, u64)>,
}

/// Unacknowledged events that were dropped: every seq of `boot` in `first_seq..=last_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub boot: BootId,
    pub first_seq: u64,
    pub last_seq: u64,
}

impl Lost {
    /// Events in the range (0 for a range that runs backwards, which nothing builds).
    pub fn count(&self) -> u64 {
        self.last_seq
            .checked_sub(self.first_seq)
            .map_or(0, |d| d.saturating_add(1))
    }
}

/// Events in the journal above the watermark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub events: u64,
    /// Record bytes of those events (headers included).
    pub bytes: u64,
    /// The first and last of them, as (boot, seq).
    pub oldest: Option<(BootId, u64)>,
    pub newest: Option<(BootId, u64)>,
}

/// The index; see the module documentation.
#[derive(Debug, Default)]
pub struct Index {
    boots: Vec<BootId>,
    /// Watermark per boot slot: every seq up to it is acknowledged.
    acked: Vec<Option<u64>>,
    entries: VecDeque<Entry>,
    next_ordinal: u64,
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    fn slot(&mut self, boot: &BootId) -> u32 {
        if let Some(i) = self.boots.iter().rposition(|b| b == boot) {
            return u32::try_from(i).unwrap_or(u32::MAX);
        }
        self.boots.push(boot.clone());
        self.acked.push(None);
        u32::try_from(self.boots.len() - 1).unwrap_or(u32::MAX)
    }

    /// Slots are only made by [`Index::slot`]; `None` for an entry not made by this index.
    fn boot(&self, slot: u32) -> Option<&BootId> {
        self.boots.get(slot as usize)
    }

    /// Adds a record at the end; `declares` is the range a `journal_overflowed` record declares
    /// lost (ignored when it runs backwards). Returns the record's ordinal.
    pub fn push(
        &mut self,
        boot: &BootId,
        seq: u64,
        segment: u64,
        offset: u64,
        len: u32,
        declares: Option<&Lost>,
    ) -> u64 {
        let declares = declares
            .filter(|d| d.first_seq <= d.last_seq)
            .map(|d| (self.slot(&d.boot), d.first_seq, d.last_seq));
        let boot = self.slot(boot);
        let ordinal = self.next_ordinal;
        self.next_ordinal = self.next_ordinal.saturating_add(1);
        self.entries.push_back(Entry {
            ordinal,
            boot,
            seq,
            segment,
            offset,
            len,
            declares,
        });
        ordinal
    }

    /// The ordinal the next record will get (= records appended since the index was built).
    pub fn next_ordinal(&self) -> u64 {
        self.next_ordinal
    }

    /// Records in the journal, acknowledged or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn is_acked(&self, entry: &Entry) -> bool {
        self.acked
            .get(entry.boot as usize)
            .copied()
            .flatten()
            .is_some_and(|w| entry.seq <= w)
    }

    /// Raises the watermarks to those of `ack` (never lowers one). Boots the journal holds no
    /// record of are ignored. Returns whether any watermark rose.
    pub fn acknowledge(&mut self, ack: &Ack) -> bool {
        let mut raised = false;
        for BootAck { boot, seq } in &ack.acks {
            let watermark = self
                .boots
                .iter()
                .zip(&mut self.acked)
                .find_map(|(b, w)| (b == boot).then_some(w));
            if let Some(watermark) = watermark
                && watermark.is_none_or(|w| w < *seq)
            {
                *watermark = Some(*seq);
                raised = true;
            }
        }
        raised
    }

    /// The watermarks as an [`Ack`] (to persist): the latest [`MAX_ACK_BOOTS`] boots that have one.
    pub fn watermark(&self) -> Ack {
        let mut acks: Vec<BootAck> = self
            .boots
            .iter()
            .zip(&self.acked)
            .filter_map(|(boot, seq)| {
                seq.map(|seq| BootAck {
                    boot: boot.clone(),
                    seq,
                })
            })
            .collect();
        let extra = acks.len().saturating_sub(MAX_ACK_BOOTS);
        acks.drain(..extra);
        Ack { acks }
    }

    /// Segments (other than `active`) whose every record is acknowledged, oldest first.
    pub fn acknowledged_segments(&self, active: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        let mut current: Option<(u64, bool)> = None;
        for e in &self.entries {
            match &mut current {
                Some((segment, all)) if *segment == e.segment => *all &= self.is_acked(e),
                _ => {
                    if let Some((segment, true)) = current {
                        out.push(segment);
                    }
                    current = Some((e.segment, self.is_acked(e)));
                }
            }
        }
        if let Some((segment, true)) = current {
            out.push(segment);
        }
        out.retain(|s| *s != active);
        out
    }

    /// Forgets every record of `segment`; returns what is lost with them as contiguous ranges
    /// per boot: the unacknowledged events, and the ranges that unacknowledged
    /// `journal_overflowed` records among them declared (their declaration is lost too, so it
    /// must be made again). Adjacent and overlapping ranges are merged.
    pub fn remove_segment(&mut self, segment: u64) -> Vec<Lost> {
        let mut runs: Vec<(u32, u64, u64)> = Vec::new();
        for e in self.entries.iter().filter(|e| e.segment == segment) {
            if self.is_acked(e) {
                continue;
            }
            runs.push((e.boot, e.seq, e.seq));
            runs.extend(e.declares);
        }
        self.entries.retain(|e| e.segment != segment);
        // Boot slots are numbered in order of first appearance, which is journal order.
        runs.sort_unstable();
        let mut lost: Vec<Lost> = Vec::new();
        for (slot, first, last) in runs {
            let Some(boot) = self.boot(slot) else {
                continue;
            };
            match lost.last_mut() {
                Some(run) if &run.boot == boot && first <= run.last_seq.saturating_add(1) => {
                    run.last_seq = run.last_seq.max(last);
                }
                _ => lost.push(Lost {
                    boot: boot.clone(),
                    first_seq: first,
                    last_seq: last,
                }),
            }
        }
        lost
    }

    /// The backlog: records above the watermark.
    pub fn backlog(&self) -> Backlog {
        let mut backlog = Backlog::default();
        for e in self.entries.iter().filter(|e| !self.is_acked(e)) {
            backlog.events = backlog.events.saturating_add(1);
            backlog.bytes = backlog.bytes.saturating_add(u64::from(e.len));
            let key = self.boot(e.boot).map(|b| (b.clone(), e.seq));
            if backlog.oldest.is_none() {
                backlog.oldest = key.clone();
            }
            backlog.newest = key;
        }
        backlog
    }

    fn position(&self, from: u64) -> usize {
        self.entries.partition_point(|e| e.ordinal < from)
    }

    /// Unacknowledged records at or after ordinal `from`, counted up to `cap`.
    pub fn pending(&self, from: u64, cap: usize) -> usize {
        self.entries
            .range(self.position(from)..)
            .filter(|e| !self.is_acked(e))
            .take(cap)
            .count()
    }

    /// The next unacknowledged records at or after ordinal `from`: at most `max_events`, and no
    /// more than `max_bytes` of record bytes unless a single record is larger. Also returns where
    /// to continue.
    pub fn select(&self, from: u64, max_events: usize, max_bytes: usize) -> (Vec<Entry>, u64) {
        self.select_where(from, max_events, max_bytes, false)
    }

    /// Like [`Index::select`], but only records of one boot: the selection ends before the
    /// first record of another boot than the first selected (a compact batch is one boot's).
    pub fn select_boot(&self, from: u64, max_events: usize, max_bytes: usize) -> (Vec<Entry>, u64) {
        self.select_where(from, max_events, max_bytes, true)
    }

    fn select_where(
        &self,
        from: u64,
        max_events: usize,
        max_bytes: usize,
        one_boot: bool,
    ) -> (Vec<Entry>, u64) {
        let mut taken: Vec<Entry> = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        for e in self.entries.range(self.position(from)..) {
            if taken.len() >= max_events {
                break;
            }
            if one_boot
                && taken.first().is_some_and(|first| first.boot != e.boot)
                && !self.is_acked(e)
            {
                break;
            }
            if self.is_acked(e) {
                next = e.ordinal.saturating_add(1);
                continue;
            }
            let len = e.len as usize;
            if !taken.is_empty() && bytes.saturating_add(len) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(len);
            taken.push(*e);
            next = e.ordinal.saturating_add(1);
        }
        (taken, next)
    }

    /// The boot id of a selected entry (`None` for an entry this index did not make).
    pub fn boot_of(&self, entry: &Entry) -> Option<&BootId> {
        self.boot(entry.boot)
    }
}

/// Appends seqs `first..=last` of `boot` to `runs`, extending the last run when contiguous.
pub fn push_run(runs: &mut Vec<Lost>, boot: &BootId, first: u64, last: u64) {
    if let Some(run) = runs.last_mut()
        && &run.boot == boot
        && run.last_seq.checked_add(1) == Some(first)
    {
        run.last_seq = last;
        return;
    }
    runs.push(Lost {
        boot: boot.clone(),
        first_seq: first,
        last_seq: last,
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn boot(s: &str) -> BootId {
        s.parse().unwrap()
    }

    /// Boot a: seqs 1..=6 in segments 1 (1-3) and 2 (4-6); boot b: 1..=4 in segments 2 (1-2)
    /// and 3 (3-4).
    fn index() -> Index {
        let mut index = Index::new();
        for (b, seq, segment) in [
            ("a", 1, 1),
            ("a", 2, 1),
            ("a", 3, 1),
            ("a", 4, 2),
            ("a", 5, 2),
            ("a", 6, 2),
            ("b", 1, 2),
            ("b", 2, 2),
            ("b", 3, 3),
            ("b", 4, 3),
        ] {
            index.push(&boot(b), seq, segment, 0, 100, None);
        }
        index
    }

    fn ack(pairs: &[(&str, u64)]) -> Ack {
        Ack {
            acks: pairs
                .iter()
                .map(|(b, seq)| BootAck {
                    boot: boot(b),
                    seq: *seq,
                })
                .collect(),
        }
    }

    #[test]
    fn watermarks_only_rise_and_unknown_boots_are_ignored() {
        let mut index = index();
        assert!(index.acknowledge(&ack(&[("a", 4), ("zzz", 9)])));
        assert!(!index.acknowledge(&ack(&[("a", 2)])));
        assert_eq!(index.watermark(), ack(&[("a", 4)]));
        let backlog = index.backlog();
        assert_eq!((backlog.events, backlog.bytes), (6, 600));
        assert_eq!(backlog.oldest, Some((boot("a"), 5)));
        assert_eq!(backlog.newest, Some((boot("b"), 4)));
    }

    #[test]
    fn acknowledged_segments_across_boots() {
        let mut index = index();
        index.acknowledge(&ack(&[("a", 6), ("b", 1)]));
        assert_eq!(index.acknowledged_segments(3), vec![1]);
        index.acknowledge(&ack(&[("b", 4)]));
        assert_eq!(index.acknowledged_segments(3), vec![1, 2]);
        assert_eq!(index.acknowledged_segments(9), vec![1, 2, 3]);
    }

    #[test]
    fn dropped_declarations_are_declared_again_merged() {
        let mut index = Index::new();
        let lost_earlier = Lost {
            boot: boot("a"),
            first_seq: 1,
            last_seq: 3,
        };
        // Segment 1 held a:1..=3 (already dropped); segment 2 holds a:4 = the declaration of
        // 1..=3, then a:5 and a:6; segment 3 holds a:7.
        index.push(&boot("a"), 4, 2, 0, 100, Some(&lost_earlier));
        index.push(&boot("a"), 5, 2, 100, 100, None);
        index.push(&boot("a"), 6, 2, 200, 100, None);
        index.push(&boot("a"), 7, 3, 0, 100, None);
        assert_eq!(
            index.remove_segment(2),
            vec![Lost {
                boot: boot("a"),
                first_seq: 1,
                last_seq: 6
            }]
        );
        // An acknowledged declaration reached the collector: its range is not declared again.
        let mut index = Index::new();
        index.push(&boot("a"), 4, 2, 0, 100, Some(&lost_earlier));
        index.push(&boot("a"), 5, 2, 100, 100, None);
        index.acknowledge(&ack(&[("a", 4)]));
        assert_eq!(
            index.remove_segment(2),
            vec![Lost {
                boot: boot("a"),
                first_seq: 5,
                last_seq: 5
            }]
        );
    }

    #[test]
    fn removed_segments_report_unacknowledged_runs() {
        let mut index = index();
        index.acknowledge(&ack(&[("a", 4)]));
        assert_eq!(index.remove_segment(1), vec![]);
        assert_eq!(
            index.remove_segment(2),
            vec![
                Lost {
                    boot: boot("a"),
                    first_seq: 5,
                    last_seq: 6
                },
                Lost {
                    boot: boot("b"),
                    first_seq: 1,
                    last_seq: 2
                }
            ]
        );
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn select_skips_acknowledged_and_respects_limits() {
        let mut index = index();
        index.acknowledge(&ack(&[("a", 2)]));
        let (taken, next) = index.select(0, 3, 10_000);
        assert_eq!(taken.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(next, 5);
        let (taken, next) = index.select(next, 100, 250);
        assert_eq!(taken.len(), 2, "250 bytes hold two records of 100");
        assert_eq!(next, 7);
        assert_eq!(index.pending(next, 100), 3);
        assert_eq!(index.pending(0, 2), 2);
        let (taken, next) = index.select(10, 100, 10);
        assert!(taken.is_empty());
        assert_eq!(next, 10);
    }

    #[test]
    fn select_boot_stops_before_the_next_boot() {
        let mut index = index();
        index.acknowledge(&ack(&[("a", 2)]));
        // a:3..=6 then b:1..: one boot at a time, continuing where it stopped.
        let (taken, next) = index.select_boot(0, 100, 10_000);
        assert_eq!(
            taken.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        let (taken, next) = index.select_boot(next, 100, 10_000);
        assert_eq!(
            taken.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(taken.iter().all(|e| index.boot_of(e) == Some(&boot("b"))));
        assert_eq!(index.select_boot(next, 100, 10_000).0, []);
        // Acknowledged records of the first boot are skipped, not a boundary.
        index.acknowledge(&ack(&[("a", 6)]));
        let (taken, _) = index.select_boot(0, 2, 10_000);
        assert_eq!(taken.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    }

    /// The audit's input: a `journal_overflowed` record of boot b declaring `1000..=900` of boot
    /// a, in the segment the full journal drops. Also ranges at the ends of `u64`.
    #[test]
    fn backward_and_extreme_ranges_do_not_panic() {
        let mut index = Index::new();
        let backwards = Lost {
            boot: boot("a"),
            first_seq: 1000,
            last_seq: 900,
        };
        assert_eq!(backwards.count(), 0);
        index.push(&boot("b"), 1, 1, 0, 100, Some(&backwards));
        index.push(&boot("b"), 2, 1, 100, 100, None);
        index.push(&boot("b"), 3, 2, 0, 100, None);
        assert_eq!(
            index.remove_segment(1),
            vec![Lost {
                boot: boot("b"),
                first_seq: 1,
                last_seq: 2
            }],
            "the backward range is no range"
        );
        let everything = Lost {
            boot: boot("a"),
            first_seq: 0,
            last_seq: u64::MAX,
        };
        assert_eq!(everything.count(), u64::MAX);
        index.push(&boot("a"), u64::MAX, 3, 0, u32::MAX, Some(&everything));
        index.push(&boot("a"), u64::MAX, 3, u64::MAX, u32::MAX, None);
        let mut runs = Vec::new();
        push_run(&mut runs, &boot("a"), u64::MAX, u64::MAX);
        push_run(&mut runs, &boot("a"), 0, 0);
        assert_eq!(runs.len(), 2);
        assert_eq!(index.backlog().bytes, 100 + 2 * u64::from(u32::MAX));
        let (taken, next) = index.select(0, 10, usize::MAX);
        assert_eq!((taken.len(), next), (3, 5));
        assert_eq!(
            index.remove_segment(3),
            vec![Lost {
                boot: boot("a"),
                first_seq: 0,
                last_seq: u64::MAX
            }]
        );
        // An entry this index did not make names no boot.
        let forged = Entry {
            boot: 77,
            ..taken[0]
        };
        assert_eq!(index.boot_of(&forged), None);
        index.acknowledge(&ack(&[("b", u64::MAX)]));
        assert!(index.is_empty() || index.backlog().events == 0);
    }

    /// Seeded random operations with random values: no panic, and what the index reports stays
    /// consistent with what it holds.
    #[test]
    fn random_operations_never_panic() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let boots = [boot("a"), boot("b"), boot("c")];
        for _ in 0..200 {
            let mut index = Index::new();
            for _ in 0..100 {
                let value = |v: u64| match v % 4 {
                    0 => 0,
                    1 => u64::MAX,
                    _ => v % 50,
                };
                let b = &boots[(next() % 3) as usize];
                match next() % 6 {
                    0 | 1 => {
                        let declares = (next() % 3 == 0).then(|| Lost {
                            boot: boots[(next() % 3) as usize].clone(),
                            first_seq: value(next()),
                            last_seq: value(next()),
                        });
                        let len = next() as u32;
                        index.push(b, value(next()), next() % 4, next(), len, declares.as_ref());
                    }
                    2 => {
                        let lost = index.remove_segment(next() % 4);
                        assert!(lost.iter().all(|l| l.first_seq <= l.last_seq));
                    }
                    3 => {
                        index.acknowledge(&ack(&[(b.as_str(), value(next()))]));
                    }
                    4 => {
                        let (taken, _) =
                            index.select(next() % 120, 1 + (next() % 10) as usize, 500);
                        assert!(taken.iter().all(|e| index.boot_of(e).is_some()));
                    }
                    _ => {
                        let backlog = index.backlog();
                        assert!(backlog.events <= index.len() as u64);
                        let _ = index.acknowledged_segments(next() % 4);
                        let _ = index.watermark();
                        let _ = index.pending(next() % 120, 1000);
                    }
                }
            }
        }
    }
}
