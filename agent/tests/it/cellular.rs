//! The modem-answer parsers against the fixtures in `tests/fixtures/cellular/<format>/`: exact
//! readings, robustness (CRLF, spacing, truncation, garbage) and the `cellular parse` CLI (the
//! `cellular_signal_sampled` body: the signal and its quality class).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use netmon_agent::cellular::{self, Format, ParseError, Registration, Signal, Technology};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cellular")
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(dir().join(path)).unwrap()
}

fn parse(format: Format, path: &str) -> Signal {
    cellular::parse(format, &fixture(path)).unwrap()
}

fn viettel() -> Signal {
    Signal {
        plmn: Some("452-04".into()),
        operator: Some("Viettel".into()),
        ..Signal::default()
    }
}

#[test]
fn at_lte_home() {
    let expected = Signal {
        technology: Technology::Lte,
        registration: Registration::Home,
        rsrq_db: Some(-9.5),
        rsrp_dbm: Some(-98.0),
        cell_id: Some("01A2B3C4".into()),
        ..viettel()
    };
    assert_eq!(parse(Format::At, "at/lte_home.txt"), expected);
}

#[test]
fn at_endc_roaming_crlf_alpha_operator() {
    let expected = Signal {
        technology: Technology::Nr5gNsa,
        operator: Some("Viettel".into()),
        registration: Registration::Roaming,
        rsrq_db: Some(-10.5),
        rsrp_dbm: Some(-95.0),
        nr_rsrq_db: Some(-8.0),
        nr_rsrp_dbm: Some(-96.0),
        nr_sinr_db: Some(20.0),
        cell_id: Some("0ABCDEF1".into()),
        ..Signal::default()
    };
    assert_eq!(parse(Format::At, "at/endc_roaming.txt"), expected);
}

#[test]
fn at_searching_has_no_values() {
    let expected = Signal {
        registration: Registration::Searching,
        ..Signal::default()
    };
    assert_eq!(parse(Format::At, "at/searching.txt"), expected);
}

#[test]
fn at_index_edges_and_errors() {
    let r = cellular::parse(Format::At, "+CESQ: 0,0,255,255,0,97,0,126,127\n").unwrap();
    assert_eq!(r.rssi_dbm, Some(-111.0));
    assert_eq!(r.rsrq_db, Some(-19.5));
    assert_eq!(r.rsrp_dbm, Some(-43.0));
    assert_eq!(r.nr_rsrq_db, Some(-43.0));
    assert_eq!(r.nr_rsrp_dbm, Some(-30.0));
    assert_eq!(r.nr_sinr_db, Some(40.5));
    let e = cellular::parse(Format::At, "OK\n+CESQ: 99,99,255,255,20,98\n").unwrap_err();
    assert!(
        matches!(&e, ParseError::Field { location, field: "rsrp", found, .. } if location == "line 2" && found == "98"),
        "{e:?}"
    );
    let e = cellular::parse(Format::At, "+CESQ: 99,99,255\n").unwrap_err();
    assert!(
        matches!(e, ParseError::Field { field: "+CESQ", .. }),
        "{e:?}"
    );
    let e = cellular::parse(Format::At, "+COPS: 0,2,\"45x04\",7\n").unwrap_err();
    assert!(
        matches!(e, ParseError::Field { field: "oper", .. }),
        "{e:?}"
    );
    // Unsolicited +CEREG (no <n>) and an unknown AcT.
    let r = cellular::parse(Format::At, "+CEREG: 5,\"00C1\",\"0ABC\",99\n").unwrap();
    assert_eq!(r.registration, Registration::Roaming);
    assert_eq!(r.cell_id.as_deref(), Some("0ABC"));
    assert_eq!(r.technology, Technology::None);
}

#[test]
fn quectel_sa() {
    let expected = Signal {
        technology: Technology::Nr5gSa,
        registration: Registration::Home,
        nr_rsrp_dbm: Some(-95.0),
        nr_rsrq_db: Some(-11.0),
        nr_sinr_db: Some(15.0),
        band: Some("n78".into()),
        arfcn: Some(627264),
        cell_id: Some("1A2B3C4".into()),
        ..viettel()
    };
    assert_eq!(parse(Format::Quectel, "quectel/sa.txt"), expected);
}

fn quectel_lte() -> Signal {
    Signal {
        technology: Technology::Lte,
        registration: Registration::Home,
        rsrp_dbm: Some(-98.0),
        rsrq_db: Some(-9.0),
        rssi_dbm: Some(-70.0),
        // raw 155 / 5 - 20
        sinr_db: Some(11.0),
        band: Some("B3".into()),
        arfcn: Some(1650),
        cell_id: Some("1A2B3C4".into()),
        ..viettel()
    }
}

#[test]
fn quectel_lte_qeng_wins_over_qcsq() {
    assert_eq!(parse(Format::Quectel, "quectel/lte.txt"), quectel_lte());
}

#[test]
fn quectel_nsa() {
    let expected = Signal {
        technology: Technology::Nr5gNsa,
        nr_rsrp_dbm: Some(-95.0),
        nr_sinr_db: Some(15.0),
        nr_rsrq_db: Some(-11.0),
        band: Some("B3+n78".into()),
        ..quectel_lte()
    };
    assert_eq!(parse(Format::Quectel, "quectel/nsa.txt"), expected);
}

#[test]
fn quectel_wcdma() {
    let expected = Signal {
        technology: Technology::Wcdma,
        registration: Registration::Home,
        plmn: Some("452-02".into()),
        operator: Some("VinaPhone".into()),
        rssi_dbm: Some(-70.0),
        arfcn: Some(10713),
        cell_id: Some("8C5A6B".into()),
        ..Signal::default()
    };
    assert_eq!(parse(Format::Quectel, "quectel/wcdma.txt"), expected);
}

#[test]
fn quectel_qnwinfo_and_qcsq_alone() {
    let expected = Signal {
        technology: Technology::Lte,
        rssi_dbm: Some(-66.0),
        rsrp_dbm: Some(-93.0),
        sinr_db: Some(11.0),
        rsrq_db: Some(-10.0),
        band: Some("B3".into()),
        arfcn: Some(1650),
        ..viettel()
    };
    assert_eq!(parse(Format::Quectel, "quectel/qnwinfo_qcsq.txt"), expected);
}

#[test]
fn quectel_search_and_tolerance() {
    let expected = Signal {
        registration: Registration::Searching,
        ..Signal::default()
    };
    assert_eq!(parse(Format::Quectel, "quectel/search.txt"), expected);
    // Missing trailing fields: what is there is kept.
    let r = cellular::parse(
        Format::Quectel,
        "+QENG:\"servingcell\",\"NOCONN\",\"LTE\",\"FDD\",452,4,1A2B3C4,123,1650,3",
    )
    .unwrap();
    assert_eq!(r.plmn.as_deref(), Some("452-04"));
    assert_eq!(r.band.as_deref(), Some("B3"));
    assert_eq!(r.rsrp_dbm, None);
    // SINR outside 0..=250 is refused, naming the field and line.
    let e = cellular::parse(Format::Quectel, "OK\n+QCSQ: \"LTE\",-66,-93,300,-10\n").unwrap_err();
    assert!(
        matches!(&e, ParseError::Field { location, field: "SINR", .. } if location == "line 2"),
        "{e:?}"
    );
    let e = cellular::parse(Format::Quectel, "+QCSQ: \"LTE\",x,-93,155,-10").unwrap_err();
    assert!(
        matches!(e, ParseError::Field { field: "rssi", .. }),
        "{e:?}"
    );
}

fn mmcli_lte() -> Signal {
    Signal {
        technology: Technology::Lte,
        registration: Registration::Home,
        rsrp_dbm: Some(-98.0),
        rsrq_db: Some(-9.0),
        sinr_db: Some(12.4),
        rssi_dbm: Some(-70.0),
        ..viettel()
    }
}

#[test]
fn mmcli_status_then_signal_or_merged() {
    let status = fixture("mmcli/status_lte.json");
    let signal = fixture("mmcli/signal_lte.json");
    let both = format!("{status}{signal}");
    assert_eq!(cellular::parse(Format::Mmcli, &both).unwrap(), mmcli_lte());
    let mut merged: serde_json::Value = serde_json::from_str(&status).unwrap();
    let signal_value: serde_json::Value = serde_json::from_str(&signal).unwrap();
    merged["modem"]["signal"] = signal_value["modem"]["signal"].clone();
    assert_eq!(
        cellular::parse(Format::Mmcli, &merged.to_string()).unwrap(),
        mmcli_lte()
    );
}

#[test]
fn mmcli_one_document_alone() {
    let status_only = Signal {
        technology: Technology::Lte,
        registration: Registration::Home,
        ..viettel()
    };
    assert_eq!(parse(Format::Mmcli, "mmcli/status_lte.json"), status_only);
    let signal_only = Signal {
        plmn: None,
        operator: None,
        technology: Technology::None,
        registration: Registration::Unknown,
        ..mmcli_lte()
    };
    assert_eq!(parse(Format::Mmcli, "mmcli/signal_lte.json"), signal_only);
}

#[test]
fn mmcli_nsa_roaming() {
    let text = fixture("mmcli/status_nsa_roaming.json") + &fixture("mmcli/signal_nsa.json");
    let expected = Signal {
        technology: Technology::Nr5gNsa,
        plmn: Some("520-003".into()),
        operator: Some("AIS".into()),
        registration: Registration::Roaming,
        rsrp_dbm: Some(-101.0),
        rsrq_db: Some(-12.0),
        sinr_db: Some(8.2),
        nr_rsrp_dbm: Some(-95.0),
        nr_rsrq_db: Some(-11.0),
        nr_sinr_db: Some(15.0),
        ..Signal::default()
    };
    assert_eq!(cellular::parse(Format::Mmcli, &text).unwrap(), expected);
    let e = cellular::parse(
        Format::Mmcli,
        r#"{"modem":{"signal":{"lte":{"rsrp":"weak"}}}}"#,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ParseError::Field { location, .. } if location == "modem.signal.lte.rsrp"),
        "{e:?}"
    );
}

#[test]
fn uqmi_lte_home() {
    let text = fixture("uqmi/signal_lte.json") + &fixture("uqmi/serving.json");
    let expected = Signal {
        technology: Technology::Lte,
        registration: Registration::Home,
        rssi_dbm: Some(-70.0),
        rsrq_db: Some(-9.0),
        rsrp_dbm: Some(-98.0),
        sinr_db: Some(12.4),
        ..viettel()
    };
    assert_eq!(cellular::parse(Format::Uqmi, &text).unwrap(), expected);
}

#[test]
fn uqmi_endc_roaming() {
    let text = fixture("uqmi/signal_endc.json") + &fixture("uqmi/serving_roaming.json");
    let expected = Signal {
        technology: Technology::Nr5gNsa,
        plmn: Some("520-03".into()),
        operator: Some("AIS".into()),
        registration: Registration::Roaming,
        rssi_dbm: Some(-71.0),
        rsrq_db: Some(-12.0),
        rsrp_dbm: Some(-101.0),
        sinr_db: Some(8.2),
        nr_rsrp_dbm: Some(-95.0),
        nr_rsrq_db: Some(-11.0),
        nr_sinr_db: Some(15.5),
        ..Signal::default()
    };
    assert_eq!(cellular::parse(Format::Uqmi, &text).unwrap(), expected);
    let searching = Signal {
        registration: Registration::Searching,
        ..Signal::default()
    };
    assert_eq!(
        parse(Format::Uqmi, "uqmi/serving_searching.json"),
        searching
    );
}

const ALL: [Format; 4] = [Format::Mmcli, Format::Uqmi, Format::At, Format::Quectel];

#[test]
fn crlf_and_lf_read_the_same() {
    for (format, path) in [
        (Format::At, "at/lte_home.txt"),
        (Format::Quectel, "quectel/lte.txt"),
        (Format::Mmcli, "mmcli/status_lte.json"),
    ] {
        let lf = fixture(path);
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(
            cellular::parse(format, &lf).unwrap(),
            cellular::parse(format, &crlf).unwrap(),
            "{path}"
        );
    }
}

#[test]
fn garbage_is_a_clear_error() {
    for format in ALL {
        for garbage in ["", "hello modem\n", "OK\nERROR\n", "{\"modem\": ", "[1,2"] {
            let e = cellular::parse(format, garbage).unwrap_err();
            let message = e.to_string();
            assert!(
                message.contains("expected"),
                "{format:?} {garbage:?}: {message}"
            );
        }
    }
}

fn fixtures() -> Vec<String> {
    let mut out = Vec::new();
    for format in ["at", "quectel", "mmcli", "uqmi"] {
        for entry in std::fs::read_dir(dir().join(format)).unwrap() {
            out.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
    }
    assert!(out.len() >= 20, "fixtures missing: {}", out.len());
    out
}

/// Every fixture cut at every character, under every format, and random bytes: an answer or
/// an error, never a panic (a panic fails this test).
#[test]
fn truncated_and_random_input_never_panics() {
    for text in fixtures() {
        for (cut, _) in text.char_indices() {
            for format in ALL {
                let _ = cellular::parse(format, &text[..cut]);
            }
        }
    }
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let alphabet = b"+:,\"-0123456789 \r\n{}[]QENGCESQOPSservingcellLTE255";
    for _ in 0..2000 {
        let mut bytes = Vec::new();
        for _ in 0..(state % 120) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let b = (state >> 24) as u8;
            bytes.push(if b.is_multiple_of(2) {
                alphabet[usize::from(b) % alphabet.len()]
            } else {
                b
            });
        }
        state = state.wrapping_add(1);
        let text = String::from_utf8_lossy(&bytes);
        for format in ALL {
            let _ = cellular::parse(format, &text);
        }
    }
}

fn cli(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netmon-agent"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn cli_prints_json_from_file_and_stdin() {
    let file = dir().join("quectel/sa.txt");
    let out = cli(
        &[
            "cellular",
            "parse",
            "--format",
            "quectel",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["technology"], "nr5g_sa");
    assert_eq!(json["plmn"], "452-04");
    assert_eq!(json["operator"], "Viettel");
    assert_eq!(json["registration"], "home");
    assert_eq!(json["nr_rsrp_dbm"], -95.0);
    assert!(json.get("rsrp_dbm").is_none(), "unknown values are absent");
    assert_eq!(json["band"], "n78");
    // SS-RSRP -95 dBm is fair (>= -100), SS-SINR 15 dB good (>= 13): the worse, fair.
    assert_eq!(json["quality"], "fair");
    // It is the body of the event an agent sends.
    let mut event = json.clone();
    event["type"] = "cellular_signal_sampled".into();
    event["modem"] = "viettel".into();
    let event: netmon_events::Event = serde_json::from_value(event).unwrap();
    assert!(matches!(
        event,
        netmon_events::Event::CellularSignalSampled {
            quality: netmon_events::Quality::Fair,
            ..
        }
    ));

    let out = cli(
        &["cellular", "parse", "--format", "uqmi"],
        &fixture("uqmi/signal_lte.json"),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["technology"], "lte");
    assert_eq!(json["sinr_db"], 12.4);
    // The signal answer alone says nothing of registration: no service.
    assert_eq!(json["quality"], "no_service");
}

#[test]
fn cli_garbage_exits_65_naming_the_format() {
    let out = cli(&["cellular", "parse", "--format", "at"], "garbage\n");
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("at") && stderr.contains("expected"),
        "{stderr}"
    );
}
