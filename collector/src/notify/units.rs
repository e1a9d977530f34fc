//! How people read times, lengths and measurements in messages (pure): local time in
//! Asia/Ho_Chi_Minh (UTC+7 all year, no daylight saving) as `HH:MM dd/MM/yyyy`, outage periods,
//! durations in the language's units, values with their alert kind's unit and the language's
//! decimal separator.

use chrono::{DateTime, Utc};
use netmon_events::AlertKind;

use crate::cli::time::VIETNAM;

/// `09:04 23/11/2026`, local time.
pub fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&VIETNAM)
        .format("%H:%M %d/%m/%Y")
        .to_string()
}

/// `09:04–09:36 23/11/2026` on one day, `23:50 22/11/2026–00:10 23/11/2026` across midnight.
pub fn period(since: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let (a, b) = (since.with_timezone(&VIETNAM), until.with_timezone(&VIETNAM));
    if a.date_naive() == b.date_naive() {
        format!("{}–{}", a.format("%H:%M"), b.format("%H:%M %d/%m/%Y"))
    } else {
        format!("{}–{}", local(since), local(until))
    }
}

/// `32 giây`, `32 phút`, `1 giờ 5 phút`, `2 ngày 3 giờ`: `unit` names `day`, `hour`,
/// `minute` and `second` (from `phrases.txt`). Whole seconds, rounded down.
pub fn duration(ms: u64, unit: &dyn Fn(&str) -> String) -> String {
    let s = ms / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let pair = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a} {}", unit(ua))
        } else {
            format!("{a} {} {b} {}", unit(ua), unit(ub))
        }
    };
    if d > 0 {
        pair(d, "day", h, "hour")
    } else if h > 0 {
        pair(h, "hour", m, "minute")
    } else if m > 0 {
        format!("{m} {}", unit("minute"))
    } else {
        format!("{s} {}", unit("second"))
    }
}

/// A measured value with the unit of its alert kind: `35%`, `250 ms`, `3,2×`, `4G`.
pub fn measure(kind: AlertKind, x: f64, decimal: &str) -> String {
    let number = if !x.is_finite() {
        "?".to_string()
    } else {
        let rounded = (x * 10.0).round() / 10.0;
        let text = if rounded.fract() == 0.0 {
            format!("{rounded:.0}")
        } else {
            format!("{rounded:.1}")
        };
        text.replace('.', decimal)
    };
    match kind {
        AlertKind::HighLoss => format!("{number}%"),
        AlertKind::HighLatency => format!("{number} ms"),
        AlertKind::Congestion => format!("{number}×"),
        // The generation: 5G, 4G, 3G/2G.
        AlertKind::CoverageLost if x == 3.0 => "3G/2G".into(),
        AlertKind::CoverageLost if x > 0.0 => format!("{number}G"),
        _ => number,
    }
}
