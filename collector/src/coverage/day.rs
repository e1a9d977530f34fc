//! Vietnam days (Asia/Ho_Chi_Minh, UTC+7 all year): the unit of the coverage rollups. A day is
//! `[00:00, 24:00)` local time, `[17:00 the day before, 17:00)` UTC.

use chrono::{Datelike, NaiveDate};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// Vietnam time is UTC + 7 h, without daylight saving.
const OFFSET_MS: i64 = 7 * 3_600_000;
/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// A Vietnam day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day that holds the instant `ms` (epoch milliseconds).
    pub fn of(ms: i64) -> Day {
        Day(ms.saturating_add(OFFSET_MS).div_euclid(DAY_MS))
    }

    /// The first day that starts at or after `ms`.
    pub fn starting_from(ms: i64) -> Day {
        let day = Day::of(ms);
        if day.start() == ms { day } else { day.next() }
    }

    pub fn from_date(date: NaiveDate) -> Day {
        Day(i64::from(date.num_days_from_ce()) - EPOCH_DAYS_FROM_CE)
    }

    pub fn date(self) -> NaiveDate {
        i32::try_from(self.0 + EPOCH_DAYS_FROM_CE)
            .ok()
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .unwrap_or_default()
    }

    /// Its midnight, epoch ms.
    pub fn start(self) -> i64 {
        self.0.saturating_mul(DAY_MS).saturating_sub(OFFSET_MS)
    }

    /// The next midnight, epoch ms.
    pub fn end(self) -> i64 {
        self.start().saturating_add(DAY_MS)
    }

    pub fn next(self) -> Day {
        Day(self.0 + 1)
    }

    pub fn prev(self) -> Day {
        Day(self.0 - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vietnam_day_runs_from_17_00_utc_to_17_00_utc() {
        let midnight: i64 = chrono::DateTime::parse_from_rfc3339("2026-12-02T00:00:00+07:00")
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        let day = Day::of(midnight);
        assert_eq!(day.date().to_string(), "2026-12-02");
        assert_eq!((day.start(), day.end()), (midnight, midnight + DAY_MS));
        assert_eq!(Day::of(midnight - 1), day.prev());
        assert_eq!(Day::of(day.end() - 1), day);
        assert_eq!(Day::starting_from(midnight), day);
        assert_eq!(Day::starting_from(midnight + 1), day.next());
        assert_eq!(Day::from_date(day.date()), day);
    }
}
