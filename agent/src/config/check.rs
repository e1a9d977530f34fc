//! The error of a configuration that cannot be used, and the one validation helper every section
//! uses (`Check`: required values, durations and integers in range, errors naming the file and
//! the key). A leaf: the sections (`config`, `cellular/settings.rs`, `snmp/settings.rs`) depend on
//! it, it depends on none of them.

use std::time::Duration;

/// A configuration that cannot be used. Displays as `file: key: problem`; exit code 64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct ConfigError {
    /// The configuration file, as given.
    pub file: String,
    /// The offending key (`probe.interval`, `targets[3].address`), or `-` for the file as a whole.
    pub key: String,
    /// What is wrong and what was expected.
    pub problem: String,
}

/// Validation helpers whose errors name `file` (shared by the sections' validators).
pub(crate) struct Check<'a> {
    pub(crate) file: &'a str,
}

impl Check<'_> {
    pub(crate) fn err<T>(
        &self,
        key: impl Into<String>,
        problem: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.into(),
            key: key.into(),
            problem: problem.into(),
        })
    }

    pub(crate) fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, ConfigError> {
        match value {
            Some(v) => Ok(v),
            None => self.err(key, "is required"),
        }
    }

    pub(crate) fn duration(
        &self,
        key: &str,
        value: Option<String>,
        default: Duration,
        range: (Duration, Duration),
    ) -> Result<Duration, ConfigError> {
        let Some(text) = value else {
            return Ok(default);
        };
        let Ok(d) = humantime::parse_duration(text.trim()) else {
            return self.err(
                key,
                format!("expected a duration like \"1s\" or \"500ms\", got {text:?}"),
            );
        };
        if d < range.0 || d > range.1 {
            return self.err(
                key,
                format!(
                    "expected a duration from {} to {}, got {text:?}",
                    humantime::format_duration(range.0),
                    humantime::format_duration(range.1)
                ),
            );
        }
        Ok(d)
    }

    /// `value` (of `key`) must be a whole number of `unit` (the value of the key `unit.0`).
    pub(crate) fn multiple_of(
        &self,
        key: &str,
        value: Duration,
        unit: (&str, Duration),
    ) -> Result<(), ConfigError> {
        let (unit_key, unit) = unit;
        if !unit.is_zero() && value.as_nanos().is_multiple_of(unit.as_nanos()) {
            return Ok(());
        }
        self.err(
            key,
            format!(
                "expected a whole multiple of {unit_key} ({}), got {}",
                humantime::format_duration(unit),
                humantime::format_duration(value)
            ),
        )
    }

    pub(crate) fn integer(
        &self,
        key: &str,
        value: Option<i64>,
        default: u32,
        range: (u32, u32),
    ) -> Result<u32, ConfigError> {
        let Some(n) = value else { return Ok(default) };
        match u32::try_from(n) {
            Ok(n) if (range.0..=range.1).contains(&n) => Ok(n),
            _ => self.err(
                key,
                format!(
                    "expected an integer from {} to {}, got {n}",
                    range.0, range.1
                ),
            ),
        }
    }
}
