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
}

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
    Ok(StoreConfig {
        path: raw.path,
        snapshot_every,
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
}
