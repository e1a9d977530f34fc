//! What the report adds up per site and operator: measured time by generation and by quality
//! class, the readings' signal values (as histograms, so memory does not grow with the window)
//! and their medians.

use netmon_events::{Bins, Generation, OperatorDay, Quality};

use super::stream::Reading;

/// Measured time and readings of one site on one operator's network.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    /// Measured milliseconds on 5G, 4G, 3G/2G and without service ([`generation_index`]).
    pub by_generation: [i64; 4],
    /// Measured milliseconds by quality class (excellent … no service, the enum's order).
    pub by_quality: [i64; 5],
    /// Measured milliseconds on 5G with quality fair or better.
    pub usable_5g: i64,
    /// Readings taken inside the window.
    pub samples: u64,
    /// The operator's name as last reported.
    pub operator: Option<String>,
    rsrp: Histogram,
    sinr: Histogram,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            by_generation: [0; 4],
            by_quality: [0; 5],
            usable_5g: 0,
            samples: 0,
            operator: None,
            rsrp: Histogram::new(-160.0, -20.0, 1.0),
            sinr: Histogram::new(-40.0, 60.0, 0.5),
        }
    }
}

/// 0 for 5G, 1 for 4G, 2 for 3G/2G, 3 for no service.
pub fn generation_index(generation: Generation) -> usize {
    match generation {
        Generation::G5 => 0,
        Generation::G4 => 1,
        Generation::G3G2 => 2,
        Generation::None => 3,
    }
}

const QUALITIES: [Quality; 5] = [
    Quality::Excellent,
    Quality::Good,
    Quality::Fair,
    Quality::Poor,
    Quality::NoService,
];

impl Tally {
    /// `ms` of measured time in the state of `reading`.
    pub fn add_time(&mut self, reading: &Reading, ms: i64) {
        let generation = if reading.in_service {
            reading.technology.generation()
        } else {
            Generation::None
        };
        let quality = if reading.in_service {
            reading.quality
        } else {
            Quality::NoService
        };
        self.by_generation[generation_index(generation)] += ms;
        if let Some(q) = QUALITIES.iter().position(|q| *q == quality) {
            self.by_quality[q] += ms;
        }
        if generation == Generation::G5 && quality.is_usable() {
            self.usable_5g += ms;
        }
    }

    /// A reading taken inside the window: counted, its values go into the medians.
    pub fn add_sample(&mut self, reading: &Reading) {
        self.samples += 1;
        if reading.operator.is_some() {
            self.operator.clone_from(&reading.operator);
        }
        if reading.in_service {
            if let Some(v) = reading.rsrp {
                self.rsrp.add(v);
            }
            if let Some(v) = reading.sinr {
                self.sinr.add(v);
            }
        }
    }

    /// Adds another tally of the same site and operator (a later part of the window: its
    /// operator name, when it has one, is the newer).
    pub fn merge(&mut self, other: &Tally) {
        for (a, b) in self.by_generation.iter_mut().zip(other.by_generation) {
            *a += b;
        }
        for (a, b) in self.by_quality.iter_mut().zip(other.by_quality) {
            *a += b;
        }
        self.usable_5g += other.usable_5g;
        self.samples += other.samples;
        if other.operator.is_some() {
            self.operator.clone_from(&other.operator);
        }
        self.rsrp.merge(&other.rsrp);
        self.sinr.merge(&other.sinr);
    }

    /// This tally as one operator's part of a day's rollup.
    pub fn to_day(&self, plmn: &str) -> OperatorDay {
        let ms = |v: i64| u64::try_from(v).unwrap_or(0);
        OperatorDay {
            plmn: plmn.to_owned(),
            operator: self.operator.clone(),
            ms: self.by_generation.map(ms),
            quality_ms: self.by_quality.map(ms),
            usable_5g_ms: ms(self.usable_5g),
            samples: self.samples,
            rsrp: self.rsrp.bins(),
            sinr: self.sinr.bins(),
        }
    }

    /// The tally of one operator's part of a day's rollup.
    pub fn from_day(day: &OperatorDay) -> Tally {
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut tally = Tally {
            by_generation: day.ms.map(ms),
            by_quality: day.quality_ms.map(ms),
            usable_5g: ms(day.usable_5g_ms),
            samples: day.samples,
            operator: day.operator.clone(),
            ..Tally::default()
        };
        tally.rsrp.add_bins(&day.rsrp);
        tally.sinr.add_bins(&day.sinr);
        tally
    }

    /// All measured time in ms.
    pub fn measured(&self) -> i64 {
        self.by_generation.iter().sum()
    }

    /// The share (0–1) of measured time on each generation, in [`generation_index`] order.
    pub fn shares(&self) -> [f64; 4] {
        let total = self.measured();
        self.by_generation.map(|ms| {
            if total > 0 {
                ms as f64 / total as f64
            } else {
                0.0
            }
        })
    }

    /// The median RSRP of the readings in service (dBm, to 1 dB).
    pub fn median_rsrp(&self) -> Option<f64> {
        self.rsrp.median()
    }

    /// The median SINR of the readings in service (dB, to 0.5 dB).
    pub fn median_sinr(&self) -> Option<f64> {
        self.sinr.median()
    }

    /// The typical quality: the best class that the site had, or bettered, for at least half of
    /// the measured time (a median over time, counting no service as the worst class).
    pub fn quality(&self) -> Option<Quality> {
        let total = self.measured();
        if total == 0 {
            return None;
        }
        let mut sum = 0;
        for (q, ms) in QUALITIES.iter().zip(self.by_quality) {
            sum += ms;
            if sum * 2 >= total {
                return Some(*q);
            }
        }
        Some(Quality::NoService)
    }

    /// Usable 5G: at least half of the measured time on 5G (SA or NSA) with quality fair or better.
    pub fn has_usable_5g(&self) -> bool {
        let total = self.measured();
        total > 0 && self.usable_5g * 2 >= total
    }
}

/// Counts of values in fixed-width bins; values outside the range go to the end bins.
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    low: f64,
    step: f64,
    counts: Vec<u32>,
    total: u64,
}

impl Histogram {
    fn new(low: f64, high: f64, step: f64) -> Self {
        let bins = ((high - low) / step).round() as usize + 1;
        Self {
            low,
            step,
            counts: vec![0; bins],
            total: 0,
        }
    }

    fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let last = self.counts.len() - 1;
        let bin = ((value - self.low) / self.step)
            .round()
            .clamp(0.0, last as f64) as usize;
        self.counts[bin] = self.counts[bin].saturating_add(1);
        self.total += 1;
    }

    /// The bins from the first to the last that holds a value.
    fn bins(&self) -> Bins {
        let first = self.counts.iter().position(|c| *c > 0);
        let last = self.counts.iter().rposition(|c| *c > 0);
        match (first, last) {
            (Some(first), Some(last)) => Bins {
                first: self.low + first as f64 * self.step,
                counts: self.counts[first..=last].to_vec(),
            },
            _ => Bins::default(),
        }
    }

    /// Adds the counts of `bins` (values on this histogram's grid).
    fn add_bins(&mut self, bins: &Bins) {
        if !bins.first.is_finite() {
            return;
        }
        let last = self.counts.len() - 1;
        let start = ((bins.first - self.low) / self.step).round();
        for (i, count) in bins.counts.iter().enumerate() {
            let bin = (start + i as f64).clamp(0.0, last as f64) as usize;
            self.counts[bin] = self.counts[bin].saturating_add(*count);
            self.total += u64::from(*count);
        }
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
    }

    /// The lower median (the value at rank ⌈n/2⌉), as its bin's value.
    fn median(&self) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = self.total.div_ceil(2);
        let mut seen = 0u64;
        for (bin, count) in self.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                return Some(self.low + bin as f64 * self.step);
            }
        }
        None
    }
}
