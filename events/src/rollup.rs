//! The body of `coverage_day_rolled_up`: one `(agent, modem)` stream's coverage over one Vietnam
//! day (00:00–24:00 UTC+7), what the collector's coverage report needs once the day's raw
//! readings are gone, and the stream's state at the day's end so that the next day continues
//! exactly where the raw readings would have (ADR 17).

use serde::{Deserialize, Serialize};

use crate::cellular::{Quality, Technology};

/// At most this many operators in one day's rollup of one modem.
pub const MAX_ROLLUP_OPERATORS: usize = 16;
/// At most this many bins in a histogram (RSRP −160…−20 dBm by 1 dB: 141; SINR −40…60 dB by
/// 0.5 dB: 201).
pub const MAX_BINS: usize = 256;
/// At most this many gaps carried (the coverage report's median of the last 15).
pub const MAX_CARRIED_GAPS: usize = 15;

/// One operator's (PLMN's) share of the day on one modem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorDay {
    /// `"452-04"`, or `"unknown"` for readings without service before any PLMN was seen.
    pub plmn: String,
    /// The operator's name at the day's last reading that gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Measured milliseconds on 5G, 4G, 3G/2G and without service.
    pub ms: [u64; 4],
    /// Measured milliseconds by quality class: excellent, good, fair, poor, no service.
    pub quality_ms: [u64; 5],
    /// Measured milliseconds on 5G with quality fair or better.
    pub usable_5g_ms: u64,
    /// Readings taken on the day.
    pub samples: u64,
    /// The in-service readings' RSRP (dBm, bins of 1 dB).
    #[serde(default, skip_serializing_if = "Bins::is_empty")]
    pub rsrp: Bins,
    /// The in-service readings' SINR (dB, bins of 0.5 dB).
    #[serde(default, skip_serializing_if = "Bins::is_empty")]
    pub sinr: Bins,
}

/// A histogram as consecutive bins: `counts[i]` readings had the value `first + i × step` (the
/// step is the field's: 1 dB for RSRP, 0.5 dB for SINR), values already rounded to their bin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bins {
    pub first: f64,
    pub counts: Vec<u32>,
}

impl Bins {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// Where the stream stands at the day's end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Carry {
    /// The last reading's time, in ms from the day's start (negative: before the day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reading_ms: Option<i64>,
    /// The recent gaps between readings (ms), oldest first: the gap bound's median.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps_ms: Vec<u64>,
    /// The PLMN the modem last had in service (a reading without service belongs to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plmn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The last reading, when the next day may still count some of its time or learn a gap
    /// from it (it began within the hour before midnight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenReading>,
}

/// A reading whose span has not ended, reduced to what the report counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenReading {
    /// Its time, in ms from the day's start.
    pub at_ms: i64,
    pub technology: Technology,
    pub in_service: bool,
    /// The PLMN it is counted under (a reading without service: the modem's last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plmn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    pub quality: Quality,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsrp_dbm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinr_db: Option<f64>,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}
