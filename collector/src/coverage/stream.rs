//! One modem's timeline (one `(agent, modem)` stream): readings put back in time order within a
//! small window, and each reading turned into the span of time it covers.
//!
//! A reading covers the time until the next item of its stream — the next reading, the modem's
//! `modem_stopped_answering` or the agent's next start — but at most the stream's gap bound:
//! [`GAP_FACTOR`] × the median of its recent gaps between readings (the first readings, before
//! any gap is known, use [`DEFAULT_BOUND`]), never more than [`MAX_BOUND`]. Time past the bound is
//! not measured. After more than [`FORGET_AFTER`] without a reading a stream starts afresh: its
//! usual gap and last operator are forgotten (which also lets a day's rollup go on from the day
//! before alone, `rollup.rs`).

use std::collections::VecDeque;

use netmon_events::{Carry, OpenReading, Quality, Technology};

/// The gap bound is this many times the stream's usual gap.
pub const GAP_FACTOR: i64 = 3;
/// The bound while no gap between two readings is known yet: 10 minutes.
pub const DEFAULT_BOUND: i64 = 10 * 60_000;
/// No reading covers more than an hour; longer gaps do not teach the usual gap either.
pub const MAX_BOUND: i64 = 60 * 60_000;
/// Gaps remembered for the median.
const RECENT_GAPS: usize = 15;
/// Items held back to put store order into time order (late deliveries of the same stream).
const REORDER: usize = 64;
/// A stream without a reading for longer than this (24 h) forgets its gaps and operator.
pub const FORGET_AFTER: i64 = 24 * 3_600_000;

/// A reading, reduced to what the report needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub technology: Technology,
    pub in_service: bool,
    /// The PLMN the reading is counted under (see [`Stream`]).
    pub plmn: Option<String>,
    pub operator: Option<String>,
    pub quality: Quality,
    /// RSRP in dBm: the NR SS-RSRP on 5G when the modem gave it, else the LTE RSRP.
    pub rsrp: Option<f64>,
    /// SINR in dB, chosen like `rsrp`.
    pub sinr: Option<f64>,
}

/// What happened on a stream at one time.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Reading(Reading),
    /// The modem stopped answering, or the agent restarted: the previous reading ends here.
    Break,
}

/// A reading with the span `[start, end)` it covers, in epoch milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
    pub reading: Reading,
}

#[derive(Debug, Default)]
pub struct Stream {
    /// Items not yet in order, sorted by time (stable for equal times).
    held: VecDeque<(i64, Item)>,
    /// The reading waiting for its end.
    open: Option<(i64, Reading)>,
    /// Time of the last item let out of `held`.
    frontier: Option<i64>,
    gaps: VecDeque<i64>,
    /// The last PLMN (and operator name) seen in service: a reading without service belongs to it.
    last_plmn: Option<(String, Option<String>)>,
    /// Time of the last reading let out of `held`.
    last_reading: Option<i64>,
    /// Items that came after later ones had already been let out (dropped).
    pub out_of_order: u64,
}

impl Stream {
    /// Adds an item at `time`; calls `done` with every span that is now complete.
    pub fn push(&mut self, time: i64, item: Item, done: &mut impl FnMut(Span)) {
        if self.frontier.is_some_and(|f| time < f) {
            self.out_of_order += 1;
            return;
        }
        let at = self.held.partition_point(|(t, _)| *t <= time);
        self.held.insert(at, (time, item));
        while self.held.len() > REORDER {
            if let Some((t, item)) = self.held.pop_front() {
                self.process(t, item, done);
            }
        }
    }

    /// Lets everything out; the last reading covers up to its bound.
    pub fn finish(&mut self, done: &mut impl FnMut(Span)) {
        self.flush(done);
        if let Some((start, reading)) = self.open.take() {
            let end = start.saturating_add(self.bound());
            done(Span {
                start,
                end,
                reading,
            });
        }
    }

    /// Lets every held item out, the last reading staying open (a day's end: nothing later
    /// than the day is pushed).
    pub fn flush(&mut self, done: &mut impl FnMut(Span)) {
        while let Some((t, item)) = self.held.pop_front() {
            self.process(t, item, done);
        }
    }

    /// The span the open reading covers if nothing else comes: up to its bound.
    pub fn open_span(&self) -> Option<Span> {
        let (start, reading) = self.open.as_ref()?;
        Some(Span {
            start: *start,
            end: start.saturating_add(self.bound()),
            reading: reading.clone(),
        })
    }

    /// Where the stream stands, after [`Stream::flush`], for a day starting at `base` (ms) and
    /// ending at `end`: times relative to `base`; the open reading only when it began less than
    /// [`MAX_BOUND`] before `end` (an older one can neither cover nor teach anything later).
    pub fn carry(&self, base: i64, end: i64) -> Carry {
        let (plmn, operator) = self
            .last_plmn
            .clone()
            .map_or((None, None), |(p, n)| (Some(p), n));
        Carry {
            last_reading_ms: self.last_reading.map(|t| t - base),
            gaps_ms: self.gaps.iter().map(|g| *g as u64).collect(),
            plmn,
            operator,
            open: self
                .open
                .as_ref()
                .filter(|(start, _)| start.saturating_add(MAX_BOUND) > end)
                .map(|(start, r)| OpenReading {
                    at_ms: start - base,
                    technology: r.technology,
                    in_service: r.in_service,
                    plmn: r.plmn.clone(),
                    operator: r.operator.clone(),
                    quality: r.quality,
                    rsrp_dbm: r.rsrp,
                    sinr_db: r.sinr,
                }),
        }
    }

    /// A stream going on from `carry` (times relative to `base`, ms).
    pub fn resume(carry: &Carry, base: i64) -> Self {
        Self {
            open: carry.open.as_ref().map(|o| {
                let reading = Reading {
                    technology: o.technology,
                    in_service: o.in_service,
                    plmn: o.plmn.clone(),
                    operator: o.operator.clone(),
                    quality: o.quality,
                    rsrp: o.rsrp_dbm,
                    sinr: o.sinr_db,
                };
                (base + o.at_ms, reading)
            }),
            gaps: carry
                .gaps_ms
                .iter()
                .map(|g| i64::try_from(*g).unwrap_or(MAX_BOUND))
                .collect(),
            last_plmn: carry
                .plmn
                .clone()
                .map(|plmn| (plmn, carry.operator.clone())),
            last_reading: carry.last_reading_ms.map(|t| base + t),
            ..Self::default()
        }
    }

    /// The current gap bound in ms.
    pub fn bound(&self) -> i64 {
        if self.gaps.is_empty() {
            return DEFAULT_BOUND;
        }
        let mut sorted: Vec<i64> = self.gaps.iter().copied().collect();
        sorted.sort_unstable();
        let median = sorted[(sorted.len() - 1) / 2];
        median.saturating_mul(GAP_FACTOR).min(MAX_BOUND)
    }

    fn process(&mut self, time: i64, item: Item, done: &mut impl FnMut(Span)) {
        self.frontier = Some(time);
        let bound = self.bound();
        if let Some((start, reading)) = self.open.take() {
            let end = time.min(start.saturating_add(bound));
            done(Span {
                start,
                end,
                reading,
            });
            if matches!(item, Item::Reading(_)) {
                let gap = time - start;
                if gap > 0 && gap <= MAX_BOUND {
                    self.gaps.push_back(gap);
                    if self.gaps.len() > RECENT_GAPS {
                        self.gaps.pop_front();
                    }
                }
            }
        }
        if let Item::Reading(mut reading) = item {
            if self
                .last_reading
                .is_some_and(|last| time.saturating_sub(last) > FORGET_AFTER)
            {
                self.gaps.clear();
                self.last_plmn = None;
            }
            self.last_reading = Some(time);
            if reading.in_service
                && let Some(plmn) = &reading.plmn
            {
                let name = reading
                    .operator
                    .clone()
                    .or_else(|| self.last_plmn.as_ref().and_then(|(_, n)| n.clone()));
                self.last_plmn = Some((plmn.clone(), name));
            } else if let Some((plmn, name)) = &self.last_plmn {
                // No service (or no PLMN given): the operator the modem last had.
                reading.plmn = Some(plmn.clone());
                if reading.operator.is_none() {
                    reading.operator = name.clone();
                }
            }
            self.open = Some((time, reading));
        }
    }
}
