//! What every section's validation shares: the error naming the file and the key, and the parsing
//! of durations. A leaf: the features' config modules use it, and `config` loads them all.

use std::time::Duration;

/// A configuration that cannot be used. The message names the file, the key and what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}{problem}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct ConfigError {
    pub file: String,
    /// The key at fault, `mqtt.url` style; empty when the file as a whole is unusable.
    pub key: String,
    pub problem: String,
}

/// A humantime duration (`5s`, `2m`), or a message saying what was expected.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("expected a duration such as \"5s\" or \"2m\", got {text:?} ({e})"))
}
