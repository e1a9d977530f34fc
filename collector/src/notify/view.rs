//! What a message template sees of one alert: names resolved from the inventory, times in UTC
//! (rendered in Asia/Ho_Chi_Minh by `render.rs`). Built by the alert book, pure.

use chrono::{DateTime, Utc};
use netmon_events::{AlertKind, Detection, Notice};

/// One alert's part in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeView {
    pub notice: Notice,
    pub alert: u64,
    pub kind: AlertKind,
    /// The agent the alert is about.
    pub agent: String,
    /// Display names; `None` for an agent at no registered site.
    pub site: Option<String>,
    pub commune: Option<String>,
    pub province: Option<String>,
    /// The link (target display name and address, `UBND xã Cẩm Tú (10.20.0.1)`), or the device
    /// or interface, when the alert is about one.
    pub link: Option<String>,
    pub detected_by: Detection,
    /// When the condition began and, for a resolution, ended.
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    /// Length of the outage so far (reminder) or in total (resolution), in milliseconds.
    pub duration_ms: Option<u64>,
    /// The measured value and the threshold it crossed (loss %, RTT ms, factor).
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// Display names of the sites behind this one (dependencies): "affects N villages".
    pub affected: Vec<String>,
    /// Who acknowledged it, if anyone.
    pub acknowledged_by: Option<String>,
}
