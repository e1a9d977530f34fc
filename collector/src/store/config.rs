//! The store's section of the configuration, `[store]`: where the SQLite file is.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::check::Check;
use crate::config::check::ConfigError;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    path: PathBuf,
}

/// Validates `[store]`.
pub(crate) fn validate(raw: RawStore, c: &Check) -> Result<StoreConfig, ConfigError> {
    if raw.path.as_os_str().is_empty() {
        return Err(c.err("store.path", "expected a file path, got nothing".into()));
    }
    Ok(StoreConfig { path: raw.path })
}
