//! One reading of one configured modem, whatever its source: runs the tool or asks the AT
//! commands (I/O, with the modem's timeout), parses the answer, cleans its strings
//! ([`parsers::clean_signal`]) and checks the values. Any failure is an error whose text goes
//! into `modem_stopped_answering`.

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

/// A `command` source's output: one JSON object in the [`Signal`] shape, its strings cleaned.
fn own_json(text: &str) -> anyhow::Result<Signal> {
    let signal: Signal = serde_json::from_str(text.trim()).map_err(|e| {
        anyhow::anyhow!("unreadable command output (expected one Signal JSON object): {e}")
    })?;
    checked(parsers::clean_signal(signal))
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

    /// Answers whose operator, PLMN, band and cell id carry ESC, an OSC title sequence, line
    /// breaks, U+202E, U+200B and U+2028 (mmcli and uqmi JSON, an AT `+COPS` name, a `command`
    /// source): the readings and every event made of them are clean and pass
    /// `Envelope::validate`.
    #[test]
    fn hostile_modem_strings_become_clean_valid_events() {
        use chrono::DateTime;
        use netmon_events::{Envelope, Event, Registration, SCHEMA_VERSION, text};

        use crate::cellular::modem::ModemState;
        use crate::cellular::quality::Thresholds;

        const JUNK: &str = r"\u001b[2J\u001b]0;owned\u0007AIS\n\r probe\u202etxt.exe\u200b\u2028";
        let mmcli = format!(
            r#"{{"modem":{{"3gpp":{{"operator-code":"52001","operator-name":"{JUNK}","registration-state":"home"}},"generic":{{"access-technologies":["lte"]}}}}}}
               {{"modem":{{"signal":{{"lte":{{"rsrp":"-95.00","rsrq":"-10.00","snr":"12.00"}}}}}}}}"#
        );
        let uqmi = format!(
            r#"{{"type":"lte","rssi":-70,"rsrq":-9,"rsrp":-98,"snr":12.4}}
               {{"registration":"registered","plmn_mcc":520,"plmn_mnc":3,"plmn_description":"{JUNK}","roaming":false}}"#
        );
        let at = "+CESQ: 99,99,255,255,20,42\r\nOK\r\n\
                  +COPS: 0,0,\"\u{1b}]0;x\u{7}Mobi\u{202E}Fone\u{200B}\",7\r\nOK\r\n\
                  +CEREG: 2,1,\"1A2B\",\"01A2B3C4\",7\r\nOK\r\n";
        let command = format!(
            r#"{{"technology":"nr5g_sa","registration":"home","plmn":"452-0\u202e9","operator":"{JUNK}","band":"n78\n\u001b[31m","cell_id":"\u200b1A2B\u2028C3","rsrp_dbm":-90}}"#
        );
        let readings = [
            parsers::parse(Format::Mmcli, &mmcli).unwrap(),
            parsers::parse(Format::Uqmi, &uqmi).unwrap(),
            parsers::parse(Format::At, at).unwrap(),
            own_json(&command).unwrap(),
        ];
        let clean = |s: &Option<String>| {
            s.as_deref()
                .is_none_or(|s| !s.is_empty() && !s.chars().any(text::is_forbidden))
        };
        for signal in &readings {
            for field in [
                &signal.plmn,
                &signal.operator,
                &signal.band,
                &signal.cell_id,
            ] {
                assert!(clean(field), "{signal:?}");
            }
            assert_eq!(signal.check(), Ok(()));
        }
        assert_eq!(
            readings[0].operator.as_deref(),
            Some("[2J]0;ownedAIS probetxt.exe")
        );
        assert_eq!(readings[2].operator.as_deref(), Some("]0;xMobiFone"));
        let own = &readings[3];
        assert_eq!(
            (
                own.plmn.as_deref(),
                own.band.as_deref(),
                own.cell_id.as_deref()
            ),
            (Some("452-09"), Some("n78 [31m"), Some("1A2B C3"))
        );

        // Every reading twice (changes confirmed: operator and technology changes carry the
        // operator), then no service, then failures with a tool's stderr as the error.
        let mut modem = ModemState::new("modem-1", Thresholds::default(), 1, 2);
        let mut steps: Vec<Option<Signal>> = Vec::new();
        for signal in &readings {
            steps.extend([Some(signal.clone()), Some(signal.clone())]);
        }
        steps.push(None);
        for signal in &readings {
            let off = Signal {
                registration: Registration::Searching,
                ..signal.clone()
            };
            steps.extend([Some(off.clone()), Some(off)]);
        }
        let stderr = format!(
            "mmcli failed (exit 1): \u{1b}]0;owned\u{7}\nerror:\u{202E}\u{200B}\r\n{}",
            "x".repeat(900)
        );
        let mut events = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            let at_ms = i as u64 * 60_000;
            events.extend(match step {
                Some(signal) => modem.observe(signal, at_ms),
                None => modem.failed(&stderr, at_ms),
            });
        }
        let kinds: Vec<&str> = events.iter().map(Event::type_name).collect();
        for kind in [
            "cellular_signal_sampled",
            "cellular_operator_changed",
            "cellular_technology_changed",
            "cellular_service_lost",
            "modem_stopped_answering",
            "modem_answers_again",
        ] {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }
        for (seq, event) in events.into_iter().enumerate() {
            let envelope = Envelope {
                v: SCHEMA_VERSION,
                agent: "hue-phu-vinh-01".parse().unwrap(),
                boot: "b1".parse().unwrap(),
                seq: seq as u64 + 1,
                time: DateTime::from_timestamp_millis(1_795_000_000_000).unwrap(),
                mono_ms: 1000,
                event,
            };
            let json = serde_json::to_string(&envelope).unwrap();
            assert!(
                !json.contains(r"\u001b") && !json.contains(r"\n") && !json.contains('\u{202E}'),
                "{json}"
            );
            assert_eq!(envelope.validate(), Ok(()), "{json}");
        }
    }
}
