//! The journal's in-memory index (pure: no I/O). One [`Entry`] per record on disk, in journal
//! order, with the acknowledgement watermark per boot. It answers what the journal's I/O needs to
//! decide: which records to send next, which segments hold only acknowledged records (to delete),
//! which unacknowledged events a dropped segment loses ([`Lost`], exact contiguous ranges), and how
//! large the backlog is.
//!
//! Journal order is append order: the events of earlier boots come before those of later boots,
//! and within a boot `seq` rises without gaps (segments deleted because they were acknowledged can
//! leave gaps below the watermark, never above it).

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
    pub fn count(&self) -> u64 {
        self.last_seq - self.first_seq + 1
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

    fn boot(&self, slot: u32) -> &BootId {
        &self.boots[slot as usize]
    }

    /// Adds a record at the end; `declares` is the range a `journal_overflowed` record declares
    /// lost. Returns the record's ordinal.
    pub fn push(
        &mut self,
        boot: &BootId,
        seq: u64,
        segment: u64,
        offset: u64,
        len: u32,
        declares: Option<&Lost>,
    ) -> u64 {
        let declares = declares.map(|d| (self.slot(&d.boot), d.first_seq, d.last_seq));
        let boot = self.slot(boot);
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
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
        self.acked[entry.boot as usize].is_some_and(|w| entry.seq <= w)
    }

    /// Raises the watermarks to those of `ack` (never lowers one). Boots the journal holds no
    /// record of are ignored. Returns whether any watermark rose.
    pub fn acknowledge(&mut self, ack: &Ack) -> bool {
        let mut raised = false;
        for BootAck { boot, seq } in &ack.acks {
            if let Some(i) = self.boots.iter().position(|b| b == boot)
                && self.acked[i].is_none_or(|w| w < *seq)
            {
                self.acked[i] = Some(*seq);
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
            let boot = self.boot(slot);
            match lost.last_mut() {
                Some(run) if &run.boot == boot && first <= run.last_seq + 1 => {
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
            backlog.events += 1;
            backlog.bytes += u64::from(e.len);
            let key = Some((self.boot(e.boot).clone(), e.seq));
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
        let mut taken: Vec<Entry> = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        for e in self.entries.range(self.position(from)..) {
            if taken.len() >= max_events {
                break;
            }
            if self.is_acked(e) {
                next = e.ordinal + 1;
                continue;
            }
            let len = e.len as usize;
            if !taken.is_empty() && bytes + len > max_bytes {
                break;
            }
            bytes += len;
            taken.push(*e);
            next = e.ordinal + 1;
        }
        (taken, next)
    }

    /// The boot id of a selected entry.
    pub fn boot_of(&self, entry: &Entry) -> &BootId {
        self.boot(entry.boot)
    }
}

/// Appends seqs `first..=last` of `boot` to `runs`, extending the last run when contiguous.
pub fn push_run(runs: &mut Vec<Lost>, boot: &BootId, first: u64, last: u64) {
    if let Some(run) = runs.last_mut()
        && &run.boot == boot
        && run.last_seq + 1 == first
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
}
