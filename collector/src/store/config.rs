//! The store's section of the configuration, `[store]`: where the SQLite file is, and how often
//! the fold is snapshotted beside it (`snapshot_every`, `intake/snapshot/`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::check::Check;
use crate::config::check::ConfigError;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// How often the fold is written to `{path}.snapshot`; `None` when `"off"` (every start
    /// then replays the whole store).
    pub snapshot_every: Option<Duration>,
    /// Raw measurements (probe windows and rounds, interface counters) and heartbeats are
    /// deleted once older than this (`store/retention.rs`); `None` when `"off"`.
    pub keep_measurements: Option<Duration>,
    /// Every other event is deleted once older than this; `None` when `"off"`.
    pub keep_facts: Option<Duration>,
}

/// `store.keep_measurements` when not given: a month and a bit, so that last month is whole;
/// InfluxDB keeps the series for longer.
pub const KEEP_MEASUREMENTS: Duration = Duration::from_secs(35 * 86_400);
/// `store.keep_facts` when not given: ten years of outages, alerts and notifications.
pub const KEEP_FACTS: Duration = Duration::from_secs(3_650 * 86_400);
/// Bounds of both: at least a day (a shorter one would delete what the alert rules still
/// fold), at most a century.
const KEEP_BOUNDS: (Duration, Duration) = (
    Duration::from_secs(86_400),
    // humantime's years of 365.25 days.
    Duration::from_secs(100 * 31_557_600),
);

/// `store.snapshot_every` when not given.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(5 * 60);
/// Its bounds: a snapshot more often than a second is a waste, one less often than a day
/// leaves a day of events to replay.
const SNAPSHOT_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    path: PathBuf,
    snapshot_every: Option<String>,
    keep_measurements: Option<String>,
    keep_facts: Option<String>,
}

/// Validates `[store]`.
pub(crate) fn validate(raw: RawStore, c: &Check) -> Result<StoreConfig, ConfigError> {
    if raw.path.as_os_str().is_empty() {
        return Err(c.err("store.path", "expected a file path, got nothing".into()));
    }
    let key = "store.snapshot_every";
    let snapshot_every = match raw.snapshot_every.as_deref() {
        None => Some(SNAPSHOT_EVERY),
        Some("off") => None,
        Some(text) => Some(c.bounded_like(key, text, "\"5m\" or \"off\"", SNAPSHOT_BOUNDS)?),
    };
    let keep = |key: &str, text: Option<&str>, default| match text {
        None => Ok(Some(default)),
        Some("off") => Ok(None),
        Some(text) => c
            .bounded_like(key, text, "\"35days\" or \"off\"", KEEP_BOUNDS)
            .map(Some),
    };
    let keep_measurements = keep(
        "store.keep_measurements",
        raw.keep_measurements.as_deref(),
        KEEP_MEASUREMENTS,
    )?;
    let keep_facts = keep("store.keep_facts", raw.keep_facts.as_deref(), KEEP_FACTS)?;
    if let (Some(m), Some(f)) = (keep_measurements, keep_facts)
        && m > f
    {
        return Err(c.err(
            "store.keep_measurements",
            format!(
                "expected at most store.keep_facts ({}), got {}",
                humantime::format_duration(f),
                humantime::format_duration(m)
            ),
        ));
    }
    Ok(StoreConfig {
        path: raw.path,
        snapshot_every,
        keep_measurements,
        keep_facts,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn store(toml_text: &str) -> Result<StoreConfig, ConfigError> {
        validate(
            toml::from_str(toml_text).unwrap(),
            &Check { file: "c.toml" },
        )
    }

    #[test]
    fn snapshot_every_defaults_to_five_minutes_and_may_be_off() {
        let every = |t: &str| store(t).unwrap().snapshot_every;
        assert_eq!(every("path = \"a\""), Some(SNAPSHOT_EVERY));
        assert_eq!(every("path = \"a\"\nsnapshot_every = \"off\""), None);
        let ten = every("path = \"a\"\nsnapshot_every = \"10s\"");
        assert_eq!(ten, Some(Duration::from_secs(10)));
        let e = store("path = \"a\"\nsnapshot_every = \"0s\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml: store.snapshot_every: expected between 1s and 1day, got \"0s\""
        );
    }

    #[test]
    fn retention_defaults_to_35_days_and_ten_years_and_may_be_off() {
        let keep = |t: &str| {
            let c = store(t).unwrap();
            (c.keep_measurements, c.keep_facts)
        };
        assert_eq!(
            keep("path = \"a\""),
            (Some(KEEP_MEASUREMENTS), Some(KEEP_FACTS))
        );
        let day = Duration::from_secs(86_400);
        assert_eq!(
            keep("path = \"a\"\nkeep_measurements = \"90days\"\nkeep_facts = \"off\""),
            (Some(90 * day), None)
        );
        let e = store("path = \"a\"\nkeep_measurements = \"1h\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml: store.keep_measurements: expected between 1day and 100years, got \"1h\""
        );
        let e = store("path = \"a\"\nkeep_measurements = \"2years\"\nkeep_facts = \"1year\"")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml: store.keep_measurements: expected at most store.keep_facts (1year), got 2years"
        );
    }
}
