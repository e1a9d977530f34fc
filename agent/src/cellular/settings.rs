//! The `[[cellular]]` sections of the agent's configuration: the raw TOML shape and its
//! validation into [`CellularModem`]s (called from [`crate::config`], whose [`ConfigError`]
//! names file and key). Documented with every key in `docs/cellular.md`.
//!
//! ```toml
//! [[cellular]]
//! name = "viettel"            # unique; events name the modem by it
//! source = "at"               # "mmcli", "uqmi", "at" or "command"
//! interval = "60s"            # one reading per interval
//! timeout = "10s"             # per command (or per AT command)
//! fail_after = 2              # failed readings before modem_stopped_answering
//! changes_after = 2           # readings that confirm a change of service
//! port = "/dev/ttyUSB2"       # at: the serial port
//! baud = 115200               # at
//! dialect = "3gpp"            # at: "3gpp" (+CESQ, +COPS, +CEREG, +C5GREG) or "quectel"
//! # mmcli: modem = 0, mmcli_path = "mmcli"; uqmi: device = "/dev/cdc-wdm0", uqmi_path = "uqmi";
//! # command: command = ["/usr/local/bin/signal", "--json"] (prints one Signal as JSON)
//! [cellular.thresholds]       # this modem's quality thresholds: [excellent, good, fair]
//! lte_rsrp = [-80, -90, -100]
//! ```

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::cellular::quality::{Levels, Thresholds};
use crate::config::check::{Check, ConfigError};

/// Largest number of modems one agent reads.
pub const MAX_MODEMS: usize = 16;

/// Baud rates a serial port may be set to.
pub const BAUD_RATES: &[u32] = &[
    9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600,
];

/// One configured modem.
#[derive(Debug, Clone, PartialEq)]
pub struct CellularModem {
    pub name: String,
    pub source: Source,
    pub interval: Duration,
    /// How long one command (or one AT command) may take.
    pub timeout: Duration,
    pub fail_after: u32,
    pub changes_after: u32,
    pub thresholds: Thresholds,
}

/// Where a modem's readings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// ModemManager: `PATH -m INDEX -J` and `PATH -m INDEX --signal-get -J`.
    Mmcli { path: PathBuf, index: u32 },
    /// QMI: `PATH -d DEVICE --get-signal-info` and `--get-serving-system`.
    Uqmi { path: PathBuf, device: PathBuf },
    /// AT commands on a serial port.
    At {
        port: PathBuf,
        baud: u32,
        dialect: Dialect,
    },
    /// Any program printing one [`netmon_events::Signal`] as JSON.
    Command { argv: Vec<String> },
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Mmcli { .. } => "mmcli",
            Source::Uqmi { .. } => "uqmi",
            Source::At { .. } => "at",
            Source::Command { .. } => "command",
        }
    }

    /// What is run or asked, for `check`.
    pub fn describe(&self) -> String {
        match self {
            Source::Mmcli { path, index } => {
                format!("{} -m {index} (ModemManager)", path.display())
            }
            Source::Uqmi { path, device } => {
                format!("{} -d {} (QMI)", path.display(), device.display())
            }
            Source::At {
                port,
                baud,
                dialect,
            } => format!(
                "AT on {} at {baud} baud, {} commands",
                port.display(),
                match dialect {
                    Dialect::Gpp => "3GPP 27.007",
                    Dialect::Quectel => "Quectel",
                }
            ),
            Source::Command { argv } => format!("command {}", argv.join(" ")),
        }
    }
}

/// Which AT commands are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// 3GPP TS 27.007: `+CESQ`, `+COPS?`, `+CEREG?`, `+C5GREG?`.
    Gpp,
    /// Quectel: `+QENG="servingcell"`, `+QNWINFO`, `+QCSQ`, `+COPS?`.
    Quectel,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModem {
    name: Option<String>,
    source: Option<String>,
    interval: Option<String>,
    timeout: Option<String>,
    fail_after: Option<i64>,
    changes_after: Option<i64>,
    modem: Option<i64>,
    mmcli_path: Option<String>,
    device: Option<String>,
    uqmi_path: Option<String>,
    port: Option<String>,
    baud: Option<i64>,
    dialect: Option<String>,
    command: Option<Vec<String>>,
    #[serde(default)]
    thresholds: RawThresholds,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    lte_rsrp: Option<Vec<f64>>,
    lte_sinr: Option<Vec<f64>>,
    nr_rsrp: Option<Vec<f64>>,
    nr_sinr: Option<Vec<f64>>,
    wcdma_rssi: Option<Vec<f64>>,
    gsm_rssi: Option<Vec<f64>>,
}

/// Validates the `[[cellular]]` sections of `file`.
pub(crate) fn validate(file: &str, raw: Vec<RawModem>) -> Result<Vec<CellularModem>, ConfigError> {
    let c = Check { file };
    if raw.len() > MAX_MODEMS {
        return c.err(
            "cellular",
            format!(
                "expected at most {MAX_MODEMS} [[cellular]], got {}",
                raw.len()
            ),
        );
    }
    let mut names = HashSet::new();
    let mut modems = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("cellular[{i}].{field}");
        let name = c.text(&key("name"), m.name)?.trim().to_owned();
        if let Err(e) = netmon_events::text::check(&name, 64) {
            // Every event of the modem carries its name: one the collector refuses loses them all.
            return c.err(
                key("name"),
                format!("expected 1 to 64 bytes of visible text: {e}"),
            );
        }
        if !names.insert(name.clone()) {
            return c.err(key("name"), format!("{name:?} names another modem already"));
        }
        let interval = c.duration(
            &key("interval"),
            m.interval,
            Duration::from_secs(60),
            (Duration::from_secs(1), Duration::from_secs(3600)),
        )?;
        let timeout = c.duration(
            &key("timeout"),
            m.timeout,
            Duration::from_secs(10).min(interval),
            (Duration::from_millis(100), interval),
        )?;
        let fail_after = c.integer(&key("fail_after"), m.fail_after, 2, (1, 100))?;
        let changes_after = c.integer(&key("changes_after"), m.changes_after, 2, (1, 100))?;
        let kind = c.text(&key("source"), m.source)?;
        // Keys of the other sources are mistakes, not silently ignored.
        let used: [(&str, bool, &str); 8] = [
            ("modem", m.modem.is_some(), "mmcli"),
            ("mmcli_path", m.mmcli_path.is_some(), "mmcli"),
            ("device", m.device.is_some(), "uqmi"),
            ("uqmi_path", m.uqmi_path.is_some(), "uqmi"),
            ("port", m.port.is_some(), "at"),
            ("baud", m.baud.is_some(), "at"),
            ("dialect", m.dialect.is_some(), "at"),
            ("command", m.command.is_some(), "command"),
        ];
        if let Some((field, _, owner)) = used.iter().find(|(_, set, owner)| *set && *owner != kind)
        {
            return c.err(key(field), format!("is only used with source = {owner:?}"));
        }
        let path = |field: &str, value: Option<String>, default: &str| match value {
            None => Ok(PathBuf::from(default)),
            Some(v) if v.trim().is_empty() => c.err(key(field), "expected a path, got \"\""),
            Some(v) => Ok(PathBuf::from(v)),
        };
        let source = match kind.as_str() {
            "mmcli" => Source::Mmcli {
                path: path("mmcli_path", m.mmcli_path, "mmcli")?,
                index: c.integer(&key("modem"), m.modem, 0, (0, 1_000_000))?,
            },
            "uqmi" => Source::Uqmi {
                path: path("uqmi_path", m.uqmi_path, "uqmi")?,
                device: path("device", m.device, "/dev/cdc-wdm0")?,
            },
            "at" => Source::At {
                port: path("port", m.port, "/dev/ttyUSB2")?,
                baud: match m.baud {
                    None => 115_200,
                    Some(b) if BAUD_RATES.iter().any(|&r| i64::from(r) == b) => {
                        u32::try_from(b).unwrap_or(115_200)
                    }
                    Some(b) => {
                        return c.err(
                            key("baud"),
                            format!("expected one of {BAUD_RATES:?}, got {b}"),
                        );
                    }
                },
                dialect: match m.dialect.as_deref() {
                    None | Some("3gpp") => Dialect::Gpp,
                    Some("quectel") => Dialect::Quectel,
                    Some(other) => {
                        return c.err(
                            key("dialect"),
                            format!("expected \"3gpp\" or \"quectel\", got {other:?}"),
                        );
                    }
                },
            },
            "command" => match m.command {
                Some(argv) if !argv.is_empty() && !argv[0].trim().is_empty() => {
                    Source::Command { argv }
                }
                _ => {
                    return c.err(
                        key("command"),
                        "is required with source = \"command\": a program and its arguments, \
                         e.g. [\"/usr/local/bin/signal\", \"--json\"]",
                    );
                }
            },
            other => {
                return c.err(
                    key("source"),
                    format!("expected \"mmcli\", \"uqmi\", \"at\" or \"command\", got {other:?}"),
                );
            }
        };
        let thresholds = thresholds(&c, &key("thresholds"), m.thresholds)?;
        modems.push(CellularModem {
            name,
            source,
            interval,
            timeout,
            fail_after,
            changes_after,
            thresholds,
        });
    }
    Ok(modems)
}

fn thresholds(c: &Check<'_>, table: &str, raw: RawThresholds) -> Result<Thresholds, ConfigError> {
    let d = Thresholds::default();
    let levels = |field: &str, value: Option<Vec<f64>>, default: Levels| match value.as_deref() {
        None => Ok(default),
        Some(&[excellent, good, fair])
            if [excellent, good, fair].iter().all(|v| v.is_finite())
                && excellent > good
                && good > fair =>
        {
            Ok(Levels::new(excellent, good, fair))
        }
        Some(other) => c.err(
            format!("{table}.{field}"),
            format!(
                "expected [excellent, good, fair], three decreasing numbers like \
                 [-80, -90, -100], got {other:?}"
            ),
        ),
    };
    Ok(Thresholds {
        lte_rsrp: levels("lte_rsrp", raw.lte_rsrp, d.lte_rsrp)?,
        lte_sinr: levels("lte_sinr", raw.lte_sinr, d.lte_sinr)?,
        nr_rsrp: levels("nr_rsrp", raw.nr_rsrp, d.nr_rsrp)?,
        nr_sinr: levels("nr_sinr", raw.nr_sinr, d.nr_sinr)?,
        wcdma_rssi: levels("wcdma_rssi", raw.wcdma_rssi, d.wcdma_rssi)?,
        gsm_rssi: levels("gsm_rssi", raw.gsm_rssi, d.gsm_rssi)?,
    })
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
