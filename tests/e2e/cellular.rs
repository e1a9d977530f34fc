//! The agent's cellular sources against a modem emulator on a real pseudo-terminal
//! (`netmon_tests::modem`, answering from the agent's AT fixtures) and a real executable mmcli
//! stand-in printing the agent's mmcli fixtures.
//!
//! - `netmon-agent cellular --config` over the pty prints the fixture's values (Vietnamese table,
//!   English table, JSON); a hanging modem makes it exit 1 within its timeout, naming the command;
//!   a Quectel modem on the pty, mmcli and uqmi stand-ins and a `command` source each print what
//!   `cellular parse` makes of the same fixtures;
//! - the daemon with an `at` modem and an `mmcli` modem publishes `cellular_signal_sampled`
//!   through the real broker into the collector's store, each equal to what
//!   `cellular parse` makes of the same fixtures;
//! - the emulator hangs → `modem_stopped_answering` within the timeout budget while the agent
//!   keeps probing; answers again → `modem_answers_again`; garbage → stopped answering with a
//!   clear error; no service → `cellular_service_lost`; back → `cellular_service_restored`; EN-DC
//!   → `cellular_technology_changed`.

use std::process::Command;
use std::time::{Duration, Instant};

use netmon_events::{Envelope, Event, Registration, Technology};
use netmon_tests::agent::{journal_records, journal_segments};
use netmon_tests::modem::{Mode, ModemEmulator, fixtures, mmcli_script, tool_script, uqmi_script};
use netmon_tests::{Agent, AgentConfig, Collector, Scratch, TargetConfig, binary, shared_url};
use netmon_tests::{unique, wait_for};
use serde_json::Value;

/// A `[[cellular]]` section for the emulator's port.
fn at_modem(name: &str, port: &std::path::Path, extra: &str) -> String {
    format!(
        "\n[[cellular]]\nname = \"{name}\"\nsource = \"at\"\nport = \"{}\"\ninterval = \"1s\"\n\
         timeout = \"500ms\"\n{extra}",
        port.display()
    )
}

/// An agent config probing loopback, with `cellular` appended.
fn agent_config(agent_id: &str, province: &str, url: &str, cellular: String) -> AgentConfig {
    let mut config = AgentConfig::new(agent_id, province, url);
    config.interval = "500ms".into();
    config.count = 1;
    config.timeout = "400ms".into();
    config.targets.push(TargetConfig {
        name: "Bộ định tuyến thôn Giang Trung".into(),
        address: "127.0.0.1".into(),
        role: "gateway".into(),
    });
    config.extra_toml = cellular;
    config
}

fn agent_cli(args: &[&str]) -> std::process::Output {
    Command::new(binary("netmon-agent"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cellular_cli_reads_the_modem_on_a_pty() {
    let scratch = Scratch::new("cellular-cli").unwrap();
    let emulator = ModemEmulator::start("modem", &scratch).unwrap();
    let config = agent_config(
        "cam-tu",
        "thanh-hoa",
        "mqtt://127.0.0.1:1",
        at_modem("viettel", &emulator.port, ""),
    );
    let path = scratch.write("agent.toml", config.to_toml()).unwrap();
    let path = path.to_str().unwrap();

    let out = agent_cli(&["cellular", "--config", path]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // at/lte_home.txt: +CESQ rsrq 20 → -9.5 dB, rsrp 42 → -98 dBm; +COPS 45204; +CEREG home.
    for expected in [
        "viettel",
        "4G LTE",
        "Viettel (452-04)",
        "mạng nhà",
        "-98",
        "-9.5",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing in:\n{table}"
        );
    }
    // RSRP -98 dBm is fair (>= -100) and no SINR is known.
    assert!(table.contains("trung bình"), "{table}");

    let out = agent_cli(&["cellular", "--config", path, "--lang", "en"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("registration") && table.contains("fair"),
        "{table}"
    );

    let out = agent_cli(&["cellular", "--config", path, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = serde_json::json!({
        "modem": "viettel", "technology": "lte", "plmn": "452-04", "operator": "Viettel",
        "registration": "home", "rsrp_dbm": -98.0, "rsrq_db": -9.5, "cell_id": "01A2B3C4",
        "quality": "fair"
    });
    assert_eq!(line, expected);

    emulator.set(Mode::Hang).unwrap();
    let started = Instant::now();
    let out = agent_cli(&["cellular", "--config", path, "--json"]);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = line["error"].as_str().unwrap();
    assert!(error.contains("no final answer to AT+CESQ"), "{error}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("modem viettel"), "{stderr}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    eprintln!("a hanging modem is reported after {elapsed:?} (timeout 500ms)");
}

/// `cellular parse --format F` of `files` concatenated, as JSON.
fn parsed(format: &str, files: &[&str]) -> Value {
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(fixtures().join(f)).unwrap() + "\n")
        .collect();
    let mut child = Command::new(binary("netmon-agent"))
        .args(["cellular", "parse", "--format", format])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The JSON line `cellular --config --json` printed for `modem`, without `modem`.
fn line_of(lines: &str, modem: &str) -> Value {
    let mut line: Value = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["modem"] == modem)
        .unwrap_or_else(|| panic!("no line for {modem} in:\n{lines}"));
    line.as_object_mut().unwrap().remove("modem");
    line
}

#[test]
fn cellular_cli_reads_every_source() {
    let scratch = Scratch::new("cellular-sources").unwrap();
    let quectel = ModemEmulator::start("quectel", &scratch).unwrap();
    quectel.set(Mode::Quectel).unwrap();
    let mmcli = mmcli_script(&scratch, "status_nsa_roaming.json", "signal_nsa.json").unwrap();
    let uqmi = uqmi_script(&scratch, "signal_endc.json", "serving.json").unwrap();
    let own = scratch
        .write(
            "cpe.json",
            r#"{"technology":"nr5g_sa","registration":"home","plmn":"452-04","nr_rsrp_dbm":-78.5,"nr_sinr_db":21.0,"band":"n41"}"#,
        )
        .unwrap();
    let cpe = tool_script(&scratch, "cpe-signal", &[("--json", own.to_str().unwrap())]).unwrap();
    let cellular = at_modem("quectel", &quectel.port, "dialect = \"quectel\"\n")
        + &format!(
            "\n[[cellular]]\nname = \"mm\"\nsource = \"mmcli\"\nmmcli_path = \"{}\"\n\
             \n[[cellular]]\nname = \"qmi\"\nsource = \"uqmi\"\nuqmi_path = \"{}\"\n\
             \n[[cellular]]\nname = \"cpe\"\nsource = \"command\"\ncommand = [\"{}\", \"--json\"]\n",
            mmcli.display(),
            uqmi.display(),
            cpe.display()
        );
    let config = agent_config("phu-vinh", "hue", "mqtt://127.0.0.1:1", cellular);
    let path = scratch.write("agent.toml", config.to_toml()).unwrap();
    let out = agent_cli(&["cellular", "--config", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        line_of(&lines, "quectel"),
        parsed("quectel", &["quectel/lte.txt"])
    );
    assert_eq!(
        line_of(&lines, "mm"),
        parsed(
            "mmcli",
            &["mmcli/status_nsa_roaming.json", "mmcli/signal_nsa.json"]
        )
    );
    assert_eq!(
        line_of(&lines, "qmi"),
        parsed("uqmi", &["uqmi/signal_endc.json", "uqmi/serving.json"])
    );
    // The command's own JSON, with its class: SS-RSRP -78.5 and SS-SINR 21 are excellent.
    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&own).unwrap()).unwrap();
    expected["quality"] = "excellent".into();
    assert_eq!(line_of(&lines, "cpe"), expected);
    let log = quectel.log();
    for command in ["AT+QENG=\"servingcell\"", "AT+QNWINFO", "AT+QCSQ"] {
        assert!(log.contains(command), "{command} not asked:\n{log}");
    }
    assert!(
        !log.contains("AT+CESQ"),
        "the Quectel dialect asks no +CESQ:\n{log}"
    );
}

#[test]
fn daemon_publishes_readings_of_an_at_and_an_mmcli_modem_into_the_store() {
    let scratch = Scratch::new("cellular-daemon").unwrap();
    let province = unique("cellular");
    let collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let emulator = ModemEmulator::start("modem", &scratch).unwrap();
    let mmcli = mmcli_script(&scratch, "status_lte.json", "signal_lte.json").unwrap();
    let cellular = at_modem("viettel", &emulator.port, "")
        + &format!(
            "\n[[cellular]]\nname = \"mobifone\"\nsource = \"mmcli\"\nmodem = 0\nmmcli_path = \"{}\"\n\
             interval = \"1s\"\ntimeout = \"900ms\"\n",
            mmcli.display()
        );
    let agent_id = unique("cam-tu");
    let mut agent = Agent::start(
        "agent",
        agent_config(&agent_id, &province, &shared_url(), cellular),
        &scratch,
        None,
    )
    .unwrap();

    let stored = |modem: &str| {
        collector
            .events(&["--agent", &agent_id, "--type", "cellular_signal_sampled"])
            .unwrap()
            .into_iter()
            .find(|e| e.json["modem"] == modem)
    };
    let at = wait_for(
        "a stored reading of the AT modem",
        Duration::from_secs(30),
        || stored("viettel"),
    );
    let mm = wait_for(
        "a stored reading of the mmcli modem",
        Duration::from_secs(30),
        || stored("mobifone"),
    );
    agent.proc.assert_running().unwrap();

    // Each stored body is exactly what `cellular parse` makes of the same fixtures.
    let body = |stored: &Value, modem: &str| {
        let mut body = stored.clone();
        let object = body.as_object_mut().unwrap();
        for key in [
            "v", "agent", "boot", "seq", "time", "mono_ms", "type", "modem",
        ] {
            object.remove(key);
        }
        assert_eq!(stored["modem"], modem);
        body
    };
    assert_eq!(
        body(&at.json, "viettel"),
        parsed("at", &["at/lte_home.txt"])
    );
    assert_eq!(
        body(&mm.json, "mobifone"),
        parsed("mmcli", &["mmcli/status_lte.json", "mmcli/signal_lte.json"])
    );
    let Event::CellularSignalSampled { signal, .. } = &at.envelope.event else {
        panic!("not a reading: {:?}", at.envelope.event);
    };
    assert_eq!(
        (signal.technology, signal.registration, signal.rsrp_dbm),
        (Technology::Lte, Registration::Home, Some(-98.0))
    );
    // The emulator was asked every command of the 3GPP dialect.
    let log = emulator.log();
    for command in [
        "AT+CESQ",
        "AT+COPS=3,2",
        "AT+COPS?",
        "AT+CEREG?",
        "AT+C5GREG?",
    ] {
        assert!(log.contains(command), "{command} not asked:\n{log}");
    }
}

/// Every event in `agent`'s journal so far, in order.
fn journal(agent: &Agent) -> Vec<Envelope> {
    let mut all = Vec::new();
    for segment in journal_segments(&agent.journal_dir()).unwrap_or_default() {
        let bytes = std::fs::read(segment).unwrap_or_default();
        all.extend(journal_records(&bytes).into_iter().map(|r| r.envelope));
    }
    all
}

/// Waits for the first event after `after` (a seq) matching `pick`; returns it and its seq.
fn wait_event<T>(
    agent: &Agent,
    what: &str,
    after: u64,
    timeout: Duration,
    pick: impl Fn(&Event) -> Option<T>,
) -> (T, u64) {
    wait_for(what, timeout, || {
        journal(agent)
            .into_iter()
            .filter(|e| e.seq > after)
            .find_map(|e| pick(&e.event).map(|t| (t, e.seq)))
    })
}

#[test]
fn hang_garbage_and_no_service_become_events_and_the_agent_keeps_probing() {
    let scratch = Scratch::new("cellular-faults").unwrap();
    let mut emulator = ModemEmulator::start("modem", &scratch).unwrap();
    // No broker: every event stays in the journal, which the test reads.
    let config = agent_config(
        &unique("kien-tho"),
        "thanh-hoa",
        "mqtt://127.0.0.1:1",
        at_modem(
            "viettel",
            &emulator.port,
            "fail_after = 2\nchanges_after = 2\n",
        ),
    );
    let mut agent = Agent::start("agent", config, &scratch, None).unwrap();
    let sampled = |e: &Event| matches!(e, Event::CellularSignalSampled { .. }).then_some(());
    let ((), seq) = wait_event(
        &agent,
        "a first reading",
        0,
        Duration::from_secs(20),
        sampled,
    );

    // Hang: 2 failed readings of at most 0.5 s, one interval apart. Budget: 2 × (1 s + bound).
    emulator.set(Mode::Hang).unwrap();
    let hung_at = Instant::now();
    let (error, seq) = wait_event(
        &agent,
        "modem_stopped_answering (hang)",
        seq,
        Duration::from_secs(15),
        |e| match e {
            Event::ModemStoppedAnswering { modem, error } if modem == "viettel" => {
                Some(error.clone())
            }
            _ => None,
        },
    );
    let detected = hung_at.elapsed();
    assert!(
        error.contains("no final answer to AT+CESQ within 500ms"),
        "{error}"
    );
    eprintln!("hang detected after {detected:?}");
    agent.proc.assert_running().unwrap();
    // Still probing while the modem is silent.
    let probed = |e: &Event| matches!(e, Event::ProbeWindowCompleted { .. }).then_some(());
    wait_event(
        &agent,
        "a probe window after the hang",
        seq,
        Duration::from_secs(15),
        probed,
    );

    emulator.set(Mode::Normal).unwrap();
    let (silent_for_ms, seq) = wait_event(
        &agent,
        "modem_answers_again",
        seq,
        Duration::from_secs(15),
        |e| match e {
            Event::ModemAnswersAgain { silent_for_ms, .. } => Some(*silent_for_ms),
            _ => None,
        },
    );
    assert!(silent_for_ms >= 1000, "silent for {silent_for_ms} ms");

    emulator.set(Mode::Garbage).unwrap();
    let (error, seq) = wait_event(
        &agent,
        "modem_stopped_answering (garbage)",
        seq,
        Duration::from_secs(15),
        |e| match e {
            Event::ModemStoppedAnswering { error, .. } => Some(error.clone()),
            _ => None,
        },
    );
    assert!(
        error.contains("garbage in answer to AT+CESQ: a line longer than 1024 bytes"),
        "{error}"
    );

    emulator.set(Mode::NoService).unwrap();
    let ((), seq) = wait_event(
        &agent,
        "answers again after garbage",
        seq,
        Duration::from_secs(15),
        |e| matches!(e, Event::ModemAnswersAgain { .. }).then_some(()),
    );
    let (lost, seq) = wait_event(
        &agent,
        "cellular_service_lost",
        seq,
        Duration::from_secs(15),
        |e| match e {
            Event::CellularServiceLost {
                last_technology,
                plmn,
                registration,
                ..
            } => Some((*last_technology, plmn.clone(), *registration)),
            _ => None,
        },
    );
    assert_eq!(
        lost,
        (
            Technology::Lte,
            Some("452-04".into()),
            Registration::Searching
        )
    );

    emulator.set(Mode::Normal).unwrap();
    let (lost_for_ms, seq) = wait_event(
        &agent,
        "cellular_service_restored",
        seq,
        Duration::from_secs(15),
        |e| match e {
            Event::CellularServiceRestored {
                technology: Technology::Lte,
                lost_for_ms,
                ..
            } => Some(*lost_for_ms),
            _ => None,
        },
    );
    assert!(lost_for_ms >= 1000, "lost for {lost_for_ms} ms");

    emulator.set(Mode::Nsa).unwrap();
    let (change, _) = wait_event(
        &agent,
        "cellular_technology_changed",
        seq,
        Duration::from_secs(15),
        |e| match e {
            Event::CellularTechnologyChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        },
    );
    assert_eq!(change, (Technology::Lte, Technology::Nr5gNsa));
    emulator.assert_running().unwrap();
    agent.proc.assert_running().unwrap();
    agent.stop().unwrap();
}
