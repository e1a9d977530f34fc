//! The acknowledgement watermark of one agent boot (pure: no I/O).
//!
//! The watermark `W` is the highest seq such that every seq `1..=W` of the boot is stored, or
//! covered by a stored `journal_overflowed` range of that boot (the agent dropped those events
//! and said so). Seqs known above `W` are kept as disjoint, non-adjacent ranges; when a range
//! reaches `W + 1` the watermark moves to its end. The watermark itself is persisted (table
//! `boots`); the ranges above it are rebuilt from the store at start.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// One boot's progress: the watermark and what is known above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watermark {
    watermark: u64,
    /// Known seqs above the watermark: start → end (inclusive), disjoint and non-adjacent.
    above: BTreeMap<u64, u64>,
}

impl Watermark {
    /// Starts from a persisted watermark with nothing known above it.
    pub fn new(watermark: u64) -> Self {
        Self {
            watermark,
            above: BTreeMap::new(),
        }
    }

    /// The highest seq up to which everything is stored or recorded as lost.
    pub fn get(&self) -> u64 {
        self.watermark
    }

    /// How many disjoint ranges wait above the watermark (gaps still open).
    pub fn gaps(&self) -> usize {
        self.above.len()
    }

    /// Records one stored seq.
    pub fn mark(&mut self, seq: u64) {
        self.mark_range(seq..=seq);
    }

    /// Records a range of seqs as stored or lost. Seqs at or below the watermark and seq 0 are
    /// ignored; an empty range changes nothing.
    pub fn mark_range(&mut self, range: RangeInclusive<u64>) {
        let (mut start, mut end) = (*range.start(), *range.end());
        start = start.max(self.watermark.saturating_add(1)).max(1);
        if start > end {
            return;
        }
        // Merge with a range that starts before and touches or overlaps [start, end].
        if let Some((&s, &e)) = self.above.range(..start).next_back()
            && e.saturating_add(1) >= start
        {
            self.above.remove(&s);
            start = s;
            end = end.max(e);
        }
        // Merge with every range that starts inside or right after [start, end].
        while let Some((&s, &e)) = self.above.range(start..).next() {
            if s > end.saturating_add(1) {
                break;
            }
            self.above.remove(&s);
            end = end.max(e);
        }
        if start == self.watermark.saturating_add(1) {
            self.watermark = end;
        } else {
            self.above.insert(start, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks `steps` in order; returns the watermark after each step.
    fn run(start: u64, steps: &[RangeInclusive<u64>]) -> Vec<u64> {
        let mut w = Watermark::new(start);
        steps
            .iter()
            .map(|r| {
                w.mark_range(r.clone());
                w.get()
            })
            .collect()
    }

    /// `(name, starting watermark, ranges marked in order, watermark after each)`.
    type Case<'a> = (&'a str, u64, &'a [RangeInclusive<u64>], &'a [u64]);

    #[test]
    fn watermark_tables() {
        let cases: &[Case] = &[
            ("in order", 0, &[1..=1, 2..=2, 3..=3], &[1, 2, 3]),
            (
                "out of order: the gap is filled last",
                0,
                &[1..=1, 3..=3, 4..=4, 2..=2],
                &[1, 1, 1, 4],
            ),
            (
                "an overflow range covers the gap",
                0,
                &[1..=1, 2..=2, 9..=9, 3..=8],
                &[1, 2, 2, 9],
            ),
            (
                "an overflow range before anything arrived",
                0,
                &[5..=5, 1..=4],
                &[0, 5],
            ),
            (
                "duplicates and seqs below the watermark change nothing",
                3,
                &[2..=2, 3..=3, 5..=5, 5..=5, 4..=4],
                &[3, 3, 3, 3, 5],
            ),
            (
                "overlapping and adjacent ranges merge",
                0,
                &[4..=6, 8..=9, 5..=8, 2..=3, 1..=1],
                &[0, 0, 0, 0, 9],
            ),
            ("seq 0 is never a seq", 0, &[0..=0, 0..=2], &[0, 2]),
        ];
        for (name, start, steps, expect) in cases {
            assert_eq!(run(*start, steps), *expect, "{name}");
        }
    }

    #[test]
    fn gaps_are_counted_until_filled() {
        let mut w = Watermark::new(0);
        for seq in [2, 4, 6] {
            w.mark(seq);
        }
        assert_eq!((w.get(), w.gaps()), (0, 3));
        w.mark_range(1..=5);
        assert_eq!((w.get(), w.gaps()), (6, 0));
        w.mark(u64::MAX);
        assert_eq!((w.get(), w.gaps()), (6, 1));
    }
}
