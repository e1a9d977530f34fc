//! The `[alerts]` section: thresholds of the degradation rules (global; the inventory overrides
//! some per site), the timing of notifications, and the bearer token of the operator API.

use std::time::Duration;

use serde::Deserialize;

use crate::config::check::{Check, ConfigError};

/// The validated `[alerts]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// Loss in percent (smoothed) that opens a `high_loss` alert, and the level below which it
    /// counts as clear.
    pub loss_pct: f64,
    pub loss_clear_pct: f64,
    /// Round-trip time in ms (smoothed) that opens `high_latency`, and its clear level.
    pub latency_ms: f64,
    pub latency_clear_ms: f64,
    /// `congestion` opens when the smoothed RTT is this many times the link's own baseline (and
    /// at least `congestion_min_ms` above it); it clears below half way back.
    pub congestion_factor: f64,
    pub congestion_min_ms: f64,
    /// Interface utilisation in percent (SNMP) that counts as congestion.
    pub utilisation_pct: f64,
    /// Time constant of the smoothing (exponentially weighted moving average).
    pub smoothing: Duration,
    /// A degradation must last this long to open an alert, and be clear this long to close it.
    pub sustain: Duration,
    pub clear_after: Duration,
    /// A link that changes state `flap_changes` times within `flap_window` is flapping; it stops
    /// flapping after a whole `flap_window` without a change.
    pub flap_changes: u32,
    pub flap_window: Duration,
    /// Alerts that open within this window go out in one message per contact.
    pub group_window: Duration,
    /// When a parent site recovers, its children's alerts wait this long before they notify on
    /// their own (their agents reconnect with back-off).
    pub after_parent_recovery: Duration,
    /// Reminders for open, unacknowledged alerts; `None` disables them.
    pub reminder_every: Option<Duration>,
    /// Attempts per notification before the outbox gives up (with backoff from 5 s to 10 min).
    pub max_attempts: u32,
    /// `[alerts.coverage]`: the `coverage_lost` rule.
    pub coverage: CoverageConfig,
}

/// The validated `[alerts.coverage]` section (the `coverage_lost` rule, judged at each modem
/// reading; see `docs/alerts.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageConfig {
    /// A modem without service (not registered, or no radio technology) for this long opens a
    /// "no cellular service" alert.
    pub no_service_after: Duration,
    /// A modem in service off 5G (4G, 3G/2G) for this long, after having had 5G, opens a
    /// "5G lost" alert.
    pub lost_5g_after: Duration,
    /// Service (or 5G) must be back this long before the alert resolves (measured between
    /// readings: zero resolves at the first good reading).
    pub clear_after: Duration,
    /// A modem counts as having had 5G when it was on 5G within this long before it left it; a
    /// modem never seen on 5G (or not for this long) never opens "5G lost".
    pub had_5g_within: Duration,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        Self {
            no_service_after: Duration::from_secs(600),
            lost_5g_after: Duration::from_secs(1800),
            clear_after: Duration::from_secs(120),
            had_5g_within: Duration::from_secs(7 * 86_400),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            loss_pct: 10.0,
            loss_clear_pct: 5.0,
            latency_ms: 500.0,
            latency_clear_ms: 300.0,
            congestion_factor: 3.0,
            congestion_min_ms: 20.0,
            utilisation_pct: 90.0,
            smoothing: Duration::from_secs(60),
            sustain: Duration::from_secs(120),
            clear_after: Duration::from_secs(300),
            flap_changes: 4,
            flap_window: Duration::from_secs(900),
            group_window: Duration::from_secs(3),
            after_parent_recovery: Duration::from_secs(60),
            reminder_every: Some(Duration::from_secs(4 * 3600)),
            max_attempts: 20,
            coverage: CoverageConfig::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerts {
    loss_pct: Option<f64>,
    loss_clear_pct: Option<f64>,
    latency_ms: Option<f64>,
    latency_clear_ms: Option<f64>,
    congestion_factor: Option<f64>,
    congestion_min_ms: Option<f64>,
    utilisation_pct: Option<f64>,
    smoothing: Option<String>,
    sustain: Option<String>,
    clear_after: Option<String>,
    flap_changes: Option<u32>,
    flap_window: Option<String>,
    group_window: Option<String>,
    after_parent_recovery: Option<String>,
    reminder_every: Option<String>,
    max_attempts: Option<u32>,
    coverage: Option<RawCoverage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoverage {
    no_service_after: Option<String>,
    lost_5g_after: Option<String>,
    clear_after: Option<String>,
    had_5g_within: Option<String>,
}

/// Validates `[alerts]`; errors name the file of `c` and the key.
pub(crate) fn validate(raw: RawAlerts, c: &Check<'_>) -> Result<AlertsConfig, ConfigError> {
    let d = AlertsConfig::default();
    let number = |key: &str, value: Option<f64>, default: f64, max: f64| {
        c.positive(&format!("alerts.{key}"), value, default, max)
    };
    let month = Duration::from_secs(30 * 86_400);
    let span = |key: &str, value: Option<String>, default: Duration, min: Duration| match value {
        None => Ok(default),
        Some(text) => c.bounded(&format!("alerts.{key}"), &text, (min, month)),
    };
    let zero = Duration::ZERO;
    let second = Duration::from_secs(1);
    let config = AlertsConfig {
        loss_pct: number("loss_pct", raw.loss_pct, d.loss_pct, 100.0)?,
        loss_clear_pct: number(
            "loss_clear_pct",
            raw.loss_clear_pct,
            d.loss_clear_pct,
            100.0,
        )?,
        latency_ms: number("latency_ms", raw.latency_ms, d.latency_ms, 60_000.0)?,
        latency_clear_ms: number(
            "latency_clear_ms",
            raw.latency_clear_ms,
            d.latency_clear_ms,
            60_000.0,
        )?,
        congestion_factor: number(
            "congestion_factor",
            raw.congestion_factor,
            d.congestion_factor,
            1000.0,
        )?,
        congestion_min_ms: number(
            "congestion_min_ms",
            raw.congestion_min_ms,
            d.congestion_min_ms,
            60_000.0,
        )?,
        utilisation_pct: number(
            "utilisation_pct",
            raw.utilisation_pct,
            d.utilisation_pct,
            100.0,
        )?,
        smoothing: span("smoothing", raw.smoothing, d.smoothing, second)?,
        sustain: span("sustain", raw.sustain, d.sustain, zero)?,
        clear_after: span("clear_after", raw.clear_after, d.clear_after, zero)?,
        flap_changes: raw.flap_changes.unwrap_or(d.flap_changes),
        flap_window: span("flap_window", raw.flap_window, d.flap_window, second)?,
        group_window: span("group_window", raw.group_window, d.group_window, zero)?,
        after_parent_recovery: span(
            "after_parent_recovery",
            raw.after_parent_recovery,
            d.after_parent_recovery,
            zero,
        )?,
        reminder_every: match raw.reminder_every {
            None => d.reminder_every,
            Some(text) => {
                let value = c.duration("alerts.reminder_every", &text)?;
                (!value.is_zero()).then_some(value)
            }
        },
        max_attempts: raw.max_attempts.unwrap_or(d.max_attempts),
        coverage: {
            let c = raw.coverage.unwrap_or_default();
            let d = &d.coverage;
            let minute = Duration::from_secs(60);
            CoverageConfig {
                no_service_after: span(
                    "coverage.no_service_after",
                    c.no_service_after,
                    d.no_service_after,
                    zero,
                )?,
                lost_5g_after: span(
                    "coverage.lost_5g_after",
                    c.lost_5g_after,
                    d.lost_5g_after,
                    zero,
                )?,
                clear_after: span("coverage.clear_after", c.clear_after, d.clear_after, zero)?,
                had_5g_within: span(
                    "coverage.had_5g_within",
                    c.had_5g_within,
                    d.had_5g_within,
                    minute,
                )?,
            }
        },
    };
    if config.loss_clear_pct > config.loss_pct {
        return Err(c.err(
            "alerts.loss_clear_pct",
            format!("expected at most alerts.loss_pct ({})", config.loss_pct),
        ));
    }
    if config.latency_clear_ms > config.latency_ms {
        return Err(c.err(
            "alerts.latency_clear_ms",
            format!("expected at most alerts.latency_ms ({})", config.latency_ms),
        ));
    }
    if config.congestion_factor <= 1.0 {
        return Err(c.err(
            "alerts.congestion_factor",
            "expected a factor above 1".into(),
        ));
    }
    if !(2..=100).contains(&config.flap_changes) {
        return Err(c.err("alerts.flap_changes", "expected 2 to 100".into()));
    }
    if !(1..=1000).contains(&config.max_attempts) {
        return Err(c.err("alerts.max_attempts", "expected 1 to 1000".into()));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn load(text: &str) -> Result<AlertsConfig, String> {
        let raw: RawAlerts = toml::from_str(text).map_err(|e| e.to_string())?;
        validate(raw, &Check { file: "c.toml" }).map_err(|e| format!("{}: {}", e.key, e.problem))
    }

    #[test]
    fn coverage_defaults_and_overrides() {
        let c = load("").unwrap().coverage;
        assert_eq!(c, CoverageConfig::default());
        assert_eq!(c.no_service_after, Duration::from_secs(600));
        assert_eq!(c.lost_5g_after, Duration::from_secs(1800));
        let c = load("[coverage]\nno_service_after = \"3s\"\nlost_5g_after = \"0s\"\n")
            .unwrap()
            .coverage;
        assert_eq!(c.no_service_after, Duration::from_secs(3));
        assert_eq!(c.lost_5g_after, Duration::ZERO);
    }

    #[test]
    fn coverage_errors_name_the_key() {
        let e = load("[coverage]\nlost_5g_after = \"soon\"\n").unwrap_err();
        assert!(e.starts_with("alerts.coverage.lost_5g_after: "), "{e}");
        let e = load("[coverage]\nhad_5g_within = \"10s\"\n").unwrap_err();
        assert!(
            e.starts_with("alerts.coverage.had_5g_within: expected between 1m and 30days"),
            "{e}"
        );
        let e = load("[coverage]\nno_service = \"10m\"\n").unwrap_err();
        assert!(e.contains("no_service"), "{e}");
    }
}
