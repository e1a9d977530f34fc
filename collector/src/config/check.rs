//! What every section's validation shares: the error naming the file and the key, and [`Check`],
//! the helpers that read a value or say what was expected. Durations are parsed here and nowhere
//! else. A leaf: the features' config modules use it, and `config` loads them all.

use std::time::Duration;

use humantime::format_duration;

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
    parse(text, "\"5s\" or \"2m\"")
}

/// A humantime duration; the message suggests `example` (already quoted).
fn parse(text: &str, example: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("expected a duration such as {example}, got {text:?} ({e})"))
}

/// Validation of one config file: every error it makes names the file and the key.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub file: &'a str,
}

impl Check<'_> {
    /// The error for `key`.
    pub fn err(&self, key: &str, problem: String) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            key: key.to_owned(),
            problem,
        }
    }

    /// A duration (`5s`, `2m`).
    pub fn duration(&self, key: &str, text: &str) -> Result<Duration, ConfigError> {
        duration(text).map_err(|p| self.err(key, p))
    }

    /// A duration whose error suggests `example` (already quoted: `"1s"`).
    pub fn duration_like(
        &self,
        key: &str,
        text: &str,
        example: &str,
    ) -> Result<Duration, ConfigError> {
        parse(text, example).map_err(|p| self.err(key, p))
    }

    /// A duration (`5s`, `2m`) from `min` to `max`.
    pub fn bounded(
        &self,
        key: &str,
        text: &str,
        (min, max): (Duration, Duration),
    ) -> Result<Duration, ConfigError> {
        let value = self.duration(key, text)?;
        self.within(key, text, value, (min, max))
    }

    /// A duration whose error suggests `example`, from `min` to `max`.
    pub fn bounded_like(
        &self,
        key: &str,
        text: &str,
        example: &str,
        (min, max): (Duration, Duration),
    ) -> Result<Duration, ConfigError> {
        let value = self.duration_like(key, text, example)?;
        self.within(key, text, value, (min, max))
    }

    fn within(
        &self,
        key: &str,
        text: &str,
        value: Duration,
        (min, max): (Duration, Duration),
    ) -> Result<Duration, ConfigError> {
        if value < min || value > max {
            return Err(self.err(
                key,
                format!(
                    "expected between {} and {}, got {text:?}",
                    format_duration(min),
                    format_duration(max)
                ),
            ));
        }
        Ok(value)
    }

    /// A number above 0 and at most `max`, `default` when not given.
    pub fn positive(
        &self,
        key: &str,
        value: Option<f64>,
        default: f64,
        max: f64,
    ) -> Result<f64, ConfigError> {
        let value = value.unwrap_or(default);
        if value.is_finite() && value > 0.0 && value <= max {
            Ok(value)
        } else {
            Err(self.err(
                key,
                format!("expected a number above 0 and at most {max}, got {value}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key_the_range_and_the_text() {
        let c = Check { file: "c.toml" };
        let second = Duration::from_secs(1);
        assert_eq!(
            c.bounded("k", "2s", (second, second * 3)).unwrap(),
            second * 2
        );
        let e = c.bounded("a.b", "5m", (second, second * 60)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml: a.b: expected between 1s and 1m, got \"5m\""
        );
        let e = c.duration_like("a.b", "soon", "\"1s\"").unwrap_err();
        assert!(
            e.problem
                .starts_with("expected a duration such as \"1s\", got \"soon\" (")
        );
        let e = c.positive("x", Some(f64::NAN), 1.0, 2.0).unwrap_err();
        assert_eq!(
            e.problem,
            "expected a number above 0 and at most 2, got NaN"
        );
        assert_eq!(c.positive("x", None, 1.5, 2.0).unwrap(), 1.5);
    }
}
