//! Pure: what a rule asks of the book, an alert that should be open now. Shared by the rules
//! ([`super::rules`]) and the coverage rule ([`super::coverage_rule`]).

use chrono::{DateTime, Utc};
use netmon_events::{Detection, ProvinceId, Target};

use super::book::AlertKey;

/// An alert that should be open now.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub key: AlertKey,
    pub province: ProvinceId,
    pub target: Option<Target>,
    pub since: DateTime<Utc>,
    pub detected_by: Detection,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub late: bool,
}
