//! Times on the command line and in the CLI's output, all in Vietnam's local time
//! (Asia/Ho_Chi_Minh: UTC+7 all year, no daylight saving, so a fixed offset is exact).
//!
//! One parser for an absolute time, with one meaning wherever a command takes a time:
//! RFC 3339 with its offset (`2026-11-01T08:00:00+07:00`), `YYYY-MM-DD HH:MM[:SS]` (or with a
//! `T`) in Vietnam time, or a bare date `YYYY-MM-DD`, which is that day's **Vietnam midnight**
//! (00:00 +07:00). `alerts`/`silence` also take a duration from now (`4h`), [`parse_or_from_now`].

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};

/// Asia/Ho_Chi_Minh: UTC+7 all year.
pub const VIETNAM: FixedOffset = match FixedOffset::east_opt(7 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+7 is a valid offset"),
};

/// `time` in Vietnam's local time, `YYYY-MM-DD HH:MM:SS`.
pub fn local(time: DateTime<Utc>) -> String {
    time.with_timezone(&VIETNAM)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// What was written: an instant, or a whole day (a bare date).
enum Written {
    At(DateTime<Utc>),
    Day(NaiveDate),
}

fn read(text: &str) -> Option<Written> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(Written::At(t.with_timezone(&Utc)));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return vietnam(naive).map(Written::At);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(Written::Day)
}

fn vietnam(naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    VIETNAM
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn midnight(day: NaiveDate) -> Option<DateTime<Utc>> {
    vietnam(day.and_hms_opt(0, 0, 0)?)
}

fn expected(text: &str) -> String {
    format!(
        "time {text:?}: expected RFC 3339 (2026-11-01T08:00:00+07:00), \"YYYY-MM-DD HH:MM[:SS]\" \
         or a date YYYY-MM-DD (its midnight), in Vietnam time (UTC+7)"
    )
}

/// An absolute time; a bare date is its midnight in Vietnam time.
pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
    match read(text) {
        Some(Written::At(t)) => Ok(t),
        Some(Written::Day(day)) => midnight(day).ok_or_else(|| expected(text)),
        None => Err(expected(text)),
    }
}

/// The end of a window: as [`parse`], but a bare date includes that whole day (the next
/// day's Vietnam midnight).
pub fn parse_end(text: &str) -> Result<DateTime<Utc>, String> {
    match read(text) {
        Some(Written::At(t)) => Ok(t),
        Some(Written::Day(day)) => day
            .succ_opt()
            .and_then(midnight)
            .ok_or_else(|| expected(text)),
        None => Err(expected(text)),
    }
}

/// As [`parse`], or a duration from `now` (`2h`, `30m`).
pub fn parse_or_from_now(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = parse(text) {
        return Ok(t);
    }
    if let Ok(d) = humantime::parse_duration(text)
        && let Ok(d) = TimeDelta::from_std(d)
    {
        return Ok(now + d);
    }
    Err(format!(
        "{} or a duration from now such as 2h",
        expected(text)
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(text: &str) -> String {
        parse(text).unwrap().to_rfc3339()
    }

    #[test]
    fn a_bare_date_is_vietnam_midnight() {
        assert_eq!(at("2026-11-01"), "2026-10-31T17:00:00+00:00");
        assert_eq!(
            parse_end("2026-11-30").unwrap().to_rfc3339(),
            "2026-11-30T17:00:00+00:00"
        );
    }

    #[test]
    fn times_are_rfc3339_or_vietnam_local() {
        assert_eq!(at("2026-11-23T07:00:00+07:00"), "2026-11-23T00:00:00+00:00");
        assert_eq!(at("2026-11-23T07:00:00Z"), "2026-11-23T07:00:00+00:00");
        assert_eq!(at("2026-11-24 08:30"), "2026-11-24T01:30:00+00:00");
        assert_eq!(at("2026-11-24 08:30:15"), "2026-11-24T01:30:15+00:00");
        assert_eq!(at("2026-11-24T08:30"), "2026-11-24T01:30:00+00:00");
        assert_eq!(
            parse_end("2026-11-24 08:30").unwrap(),
            parse("2026-11-24 08:30").unwrap()
        );
        for bad in ["1/11/2026", "yesterday", "2026-02-30", "4h"] {
            assert!(parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn durations_count_from_now() {
        let now: DateTime<Utc> = "2026-11-23T02:00:00Z".parse().unwrap();
        let at = |s| parse_or_from_now(s, now).unwrap().to_rfc3339();
        assert_eq!(at("2h"), "2026-11-23T04:00:00+00:00");
        assert_eq!(at("2026-11-24 08:30"), "2026-11-24T01:30:00+00:00");
        assert_eq!(at("2026-11-24"), "2026-11-23T17:00:00+00:00");
        assert!(
            parse_or_from_now("tomorrow", now)
                .unwrap_err()
                .contains("tomorrow")
        );
    }

    #[test]
    fn local_time_is_utc_plus_seven() {
        assert_eq!(
            local("2026-11-23T20:30:00Z".parse().unwrap()),
            "2026-11-24 03:30:00"
        );
    }
}
