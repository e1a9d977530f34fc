//! Tests of the `[[cellular]]` sections: defaults, every source, thresholds, and errors that
//! name the file and the key.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::config::Config;

fn load(cellular: &str) -> Result<Config, ConfigError> {
    crate::config::load_with_section(cellular)
}

/// The `key: problem` part of the error of `cellular`.
fn error(cellular: &str) -> String {
    let e = load(cellular).unwrap_err();
    assert!(e.file.ends_with(".toml"), "{e}");
    format!("{}: {}", e.key, e.problem)
}

#[test]
fn every_source_with_defaults_and_overrides() {
    let c = load(
        "[[cellular]]\nname = \"viettel\"\nsource = \"at\"\n\
         [[cellular]]\nname = \"vinaphone\"\nsource = \"at\"\nport = \"/dev/ttyUSB3\"\nbaud = 9600\n\
         dialect = \"quectel\"\ninterval = \"30s\"\ntimeout = \"2s\"\nfail_after = 4\nchanges_after = 1\n\
         [cellular.thresholds]\nlte_rsrp = [-75, -85.5, -95]\n\
         [[cellular]]\nname = \"mm\"\nsource = \"mmcli\"\nmodem = 3\nmmcli_path = \"/opt/mmcli\"\n\
         [[cellular]]\nname = \"qmi\"\nsource = \"uqmi\"\n\
         [[cellular]]\nname = \"cpe\"\nsource = \"command\"\ncommand = [\"/usr/bin/cpe\", \"-j\"]\n",
    )
    .unwrap();
    let m = &c.cellular;
    assert_eq!(m.len(), 5);
    assert_eq!(
        (
            m[0].interval,
            m[0].timeout,
            m[0].fail_after,
            m[0].changes_after
        ),
        (Duration::from_secs(60), Duration::from_secs(10), 2, 2)
    );
    assert_eq!(
        m[0].source,
        Source::At {
            port: "/dev/ttyUSB2".into(),
            baud: 115_200,
            dialect: Dialect::Gpp
        }
    );
    assert_eq!(m[0].thresholds, Thresholds::default());
    assert_eq!(
        m[1].source,
        Source::At {
            port: "/dev/ttyUSB3".into(),
            baud: 9600,
            dialect: Dialect::Quectel
        }
    );
    assert_eq!(
        (
            m[1].interval,
            m[1].timeout,
            m[1].fail_after,
            m[1].changes_after
        ),
        (Duration::from_secs(30), Duration::from_secs(2), 4, 1)
    );
    assert_eq!(m[1].thresholds.lte_rsrp, Levels::new(-75.0, -85.5, -95.0));
    assert_eq!(m[1].thresholds.lte_sinr, Thresholds::default().lte_sinr);
    assert_eq!(
        m[2].source,
        Source::Mmcli {
            path: "/opt/mmcli".into(),
            index: 3
        }
    );
    assert_eq!(
        m[3].source,
        Source::Uqmi {
            path: "uqmi".into(),
            device: "/dev/cdc-wdm0".into()
        }
    );
    assert_eq!(
        m[4].source,
        Source::Command {
            argv: vec!["/usr/bin/cpe".into(), "-j".into()]
        }
    );
}

#[test]
fn no_cellular_section_means_no_modem() {
    assert!(load("").unwrap().cellular.is_empty());
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[[cellular]]\nsource = \"at\"\n",
            "cellular[0].name: is required",
        ),
        (
            "[[cellular]]\nname = \"x\"\n",
            "cellular[0].source: is required",
        ),
        (
            "[[cellular]]\nname = \"viettel\u{202e}\"\nsource = \"at\"\n",
            "cellular[0].name: expected 1 to 64 bytes of visible text: contains the character U+202E (control, bidirectional or invisible)",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\n[[cellular]]\nname = \"x\"\nsource = \"uqmi\"\n",
            "cellular[1].name: \"x\" names another modem already",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"qmicli\"\n",
            "cellular[0].source: expected \"mmcli\", \"uqmi\", \"at\" or \"command\", got \"qmicli\"",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\nmodem = 0\n",
            "cellular[0].modem: is only used with source = \"mmcli\"",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"mmcli\"\nport = \"/dev/ttyUSB2\"\n",
            "cellular[0].port: is only used with source = \"at\"",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\nbaud = 1234\n",
            "cellular[0].baud: expected one of",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\ndialect = \"huawei\"\n",
            "cellular[0].dialect: expected \"3gpp\" or \"quectel\", got \"huawei\"",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"command\"\n",
            "cellular[0].command: is required with source = \"command\"",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"command\"\ncommand = []\n",
            "cellular[0].command: is required",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\ninterval = \"5s\"\ntimeout = \"6s\"\n",
            "cellular[0].timeout: expected a duration from 100ms to 5s",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\n[cellular.thresholds]\nlte_rsrp = [-90, -80, -100]\n",
            "cellular[0].thresholds.lte_rsrp: expected [excellent, good, fair]",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\n[cellular.thresholds]\nnr_sinr = [20, 10]\n",
            "cellular[0].thresholds.nr_sinr: expected [excellent, good, fair]",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\nspeed = 1\n",
            "cellular[0].speed: unknown field `speed`",
        ),
        (
            "[[cellular]]\nname = \"x\"\nsource = \"at\"\n[cellular.thresholds]\nlte_sinr = \"high\"\n",
            "cellular[0].thresholds.lte_sinr: invalid type",
        ),
    ];
    for (toml, expected) in cases {
        let got = error(toml);
        assert!(
            got.starts_with(expected),
            "{toml}\n got: {got}\nwant: {expected}"
        );
    }
}

/// The commented `[[cellular]]` examples of `deploy/examples/agent.toml`, uncommented (lines
/// `#key = …` and `#[…]`; prose comments start with `# `), are a valid configuration.
#[test]
fn the_deployed_example_is_valid_once_uncommented() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/agent.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("# Cellular:").unwrap();
    let section: String = text[start..]
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if !rest.starts_with([' ', '#']) && !rest.is_empty() => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let c = load(&section).unwrap();
    let names: Vec<&str> = c.cellular.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["viettel", "vinaphone", "mobifone", "cpe"]);
    assert_eq!(c.cellular[0].thresholds, Thresholds::default());
    assert_eq!(c.cellular[0].interval, Duration::from_secs(60));
}
