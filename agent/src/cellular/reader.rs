//! One reading of one configured modem, whatever its source: runs the tool or asks the AT
//! commands (I/O, with the modem's timeout), parses the answer and checks the values. Any failure
//! is an error whose text goes into `modem_stopped_answering`.

use netmon_events::Signal;
use tracing::{debug, warn};

use crate::cellular::command;
use crate::cellular::serial::{self, AtCommand};
use crate::cellular::settings::{CellularModem, Dialect, Source};
use crate::cellular::{self as parsers, Format};

/// The commands of the 3GPP dialect: `+CESQ` must answer, the others may be unknown.
pub const GPP_COMMANDS: &[AtCommand] = &[
    AtCommand {
        text: "AT+CESQ",
        answer: "+CESQ",
        required: true,
    },
    // The operator in numeric form (MCC-MNC) in `+COPS?`: a modem set to the long or short name
    // would otherwise give no PLMN. A modem that refuses it still answers `+COPS?` by name.
    AtCommand {
        text: "AT+COPS=3,2",
        answer: "+COPS",
        required: false,
    },
    AtCommand {
        text: "AT+COPS?",
        answer: "+COPS",
        required: false,
    },
    AtCommand {
        text: "AT+CEREG?",
        answer: "+CEREG",
        required: false,
    },
    AtCommand {
        text: "AT+C5GREG?",
        answer: "+C5GREG",
        required: false,
    },
];

/// The commands of the Quectel dialect: `+QENG="servingcell"` must answer.
pub const QUECTEL_COMMANDS: &[AtCommand] = &[
    AtCommand {
        text: "AT+QENG=\"servingcell\"",
        answer: "+QENG",
        required: true,
    },
    AtCommand {
        text: "AT+QNWINFO",
        answer: "+QNWINFO",
        required: false,
    },
    AtCommand {
        text: "AT+QCSQ",
        answer: "+QCSQ",
        required: false,
    },
];

/// Reads one modem; keeps what must happen only once (ModemManager's `--signal-setup`).
#[derive(Debug)]
pub struct Reader {
    pub modem: CellularModem,
    signal_setup_done: bool,
}

impl Reader {
    pub fn new(modem: CellularModem) -> Reader {
        Reader {
            modem,
            signal_setup_done: false,
        }
    }

    /// One reading, or why there is none.
    pub async fn read(&mut self) -> anyhow::Result<Signal> {
        let timeout = self.modem.timeout;
        let (format, text) = match &self.modem.source {
            Source::Mmcli { path, index } => {
                let index = index.to_string();
                if !self.signal_setup_done {
                    // Without it ModemManager reports no signal values; once per start.
                    let rate = format!("--signal-setup={}", self.modem.interval.as_secs().max(1));
                    match command::run(path, &["-m", &index, &rate], timeout).await {
                        Ok(_) => self.signal_setup_done = true,
                        Err(error) => {
                            warn!(modem = %self.modem.name, %error, "mmcli --signal-setup failed; retried at the next reading");
                        }
                    }
                }
                let status = command::run(path, &["-m", &index, "-J"], timeout).await?;
                let signal =
                    command::run(path, &["-m", &index, "--signal-get", "-J"], timeout).await?;
                (Format::Mmcli, format!("{status}\n{signal}"))
            }
            Source::Uqmi { path, device } => {
                let device = device.display().to_string();
                let signal =
                    command::run(path, &["-d", &device, "--get-signal-info"], timeout).await?;
                let serving =
                    command::run(path, &["-d", &device, "--get-serving-system"], timeout).await?;
                (Format::Uqmi, format!("{signal}\n{serving}"))
            }
            Source::At {
                port,
                baud,
                dialect,
            } => {
                let (format, commands) = match dialect {
                    Dialect::Gpp => (Format::At, GPP_COMMANDS),
                    Dialect::Quectel => (Format::Quectel, QUECTEL_COMMANDS),
                };
                (format, serial::ask(port, *baud, commands, timeout).await?)
            }
            Source::Command { argv } => {
                let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
                let text = command::run(std::path::Path::new(&argv[0]), &args, timeout).await?;
                return own_json(&text);
            }
        };
        debug!(modem = %self.modem.name, bytes = text.len(), "modem answered");
        let signal = parsers::parse(format, &text)
            .map_err(|e| anyhow::anyhow!("unreadable {} answer: {e}", format.name()))?;
        checked(signal)
    }
}

/// A `command` source's output: one JSON object in the [`Signal`] shape.
fn own_json(text: &str) -> anyhow::Result<Signal> {
    let signal: Signal = serde_json::from_str(text.trim()).map_err(|e| {
        anyhow::anyhow!("unreadable command output (expected one Signal JSON object): {e}")
    })?;
    checked(signal)
}

fn checked(signal: Signal) -> anyhow::Result<Signal> {
    match signal.check() {
        Ok(()) => Ok(signal),
        Err((field, problem)) => Err(anyhow::anyhow!("implausible {field}: {problem}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use netmon_events::{Registration, Technology};

    use super::*;

    #[test]
    fn own_json_is_the_signal_shape_and_is_checked() {
        let s = own_json(
            r#"{"technology":"lte","registration":"home","plmn":"452-04","rsrp_dbm":-91.5}"#,
        )
        .unwrap();
        assert_eq!(
            (s.technology, s.registration, s.rsrp_dbm),
            (Technology::Lte, Registration::Home, Some(-91.5))
        );
        let e = own_json(r#"{"technology":"lte","registration":"home","rsrp_dbm":5}"#);
        assert!(e.unwrap_err().to_string().contains("implausible rsrp_dbm"));
        let e = own_json("garbage");
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("expected one Signal JSON object")
        );
    }
}
