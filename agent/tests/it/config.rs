//! Configuration files: a valid one, every kind of error (each naming file and key), and the
//! environment overriding the file.

use std::collections::HashMap;
use std::time::Duration;

use netmon_agent::Config;
use netmon_events::LinkRole;

use netmon_harness::Scratch;

const VALID: &str = r#"
agent_id = "thanh-hoa-cam-tu-giang-trung"
province = "thanh-hoa"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[[targets]]
name = "UBND xã Cẩm Tú"
address = "127.0.0.1"
role = "commune"

[[targets]]
name = "Cổng thôn Giang Trung"
address = "::1"
role = "gateway"
"#;

/// Loads `text` as `<tmp>/agent.toml` with `env` as the environment; errors are returned with
/// the temp directory cut out, so they read `agent.toml: key: problem`.
fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let dir = Scratch::new("config").unwrap();
    let path = dir.write("agent.toml", text).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load_with_env(&path, Some(env)).map_err(|e| {
        e.to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    })
}

/// `VALID` with `line` inserted before the first `[[targets]]`.
fn with(line: &str) -> String {
    VALID.replacen("[[targets]]", &format!("{line}\n\n[[targets]]"), 1)
}

#[test]
fn valid_config_with_defaults() {
    let c = load(VALID, &[]).unwrap();
    assert_eq!(c.agent_id.as_str(), "thanh-hoa-cam-tu-giang-trung");
    assert_eq!(c.province.as_str(), "thanh-hoa");
    assert_eq!(
        (
            c.mqtt.broker.tls,
            c.mqtt.broker.host.as_str(),
            c.mqtt.broker.port
        ),
        (false, "127.0.0.1", 1883)
    );
    assert_eq!(c.mqtt.keep_alive, Duration::from_secs(5));
    assert_eq!(c.mqtt.credentials, None);
    assert_eq!(c.probe.interval, Duration::from_secs(1));
    assert_eq!(c.probe.count, 3);
    assert_eq!(c.probe.timeout, c.probe.interval);
    assert_eq!(c.probe.down_after, 3);
    assert_eq!(c.probe.report_every, Duration::from_secs(60));
    assert_eq!(c.heartbeat.interval, Duration::from_secs(300));
    assert_eq!(c.snmp.report_every, Duration::from_secs(300));
    assert_eq!(c.mqtt.alive_every, None);
    assert_eq!(c.targets.len(), 2);
    assert_eq!(c.targets[0].name, "UBND xã Cẩm Tú");
    assert_eq!(c.targets[1].role, LinkRole::Gateway);
    assert_eq!(
        c.targets[1].address,
        "::1".parse::<std::net::IpAddr>().unwrap()
    );
}

#[test]
fn valid_config_with_every_key() {
    let text = VALID.replace(
        "url = \"mqtt://127.0.0.1:1883\"",
        r#"url = "mqtts://broker.thanhhoa.example:8883"
username = "thanh-hoa-cam-tu-giang-trung"
password = "bí mật"
ca_file = "/etc/netmon/ca.pem"
keep_alive = "10s"

[probe]
interval = "2s"
count = 5
timeout = "1500ms"
down_after = 4
report_every = "30s"

[heartbeat]
interval = "30s""#,
    );
    let c = load(&text, &[]).unwrap();
    assert!(c.mqtt.broker.tls);
    assert_eq!(c.mqtt.broker.port, 8883);
    assert_eq!(
        c.mqtt.credentials,
        Some(("thanh-hoa-cam-tu-giang-trung".into(), "bí mật".into()))
    );
    assert_eq!(
        c.mqtt.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/netmon/ca.pem"))
    );
    assert_eq!(c.mqtt.keep_alive, Duration::from_secs(10));
    assert_eq!(
        (
            c.probe.interval,
            c.probe.count,
            c.probe.timeout,
            c.probe.down_after,
            c.probe.report_every
        ),
        (
            Duration::from_secs(2),
            5,
            Duration::from_millis(1500),
            4,
            Duration::from_secs(30)
        )
    );
    assert_eq!(c.heartbeat.interval, Duration::from_secs(30));
}

#[test]
fn every_error_names_file_and_key() {
    let cases: Vec<(String, &str)> = vec![
        (
            with("[probe]\ninterval = \"fast\""),
            "agent.toml: probe.interval: expected a duration like \"1s\" or \"500ms\", got \"fast\"",
        ),
        (
            with("[probe]\ncount = \"three\""),
            "agent.toml: probe.count: expected an integer, got string \"three\"",
        ),
        (
            with("[probe]\nreport_every = \"500ms\""),
            "agent.toml: probe.report_every: expected a duration from 1s to 1h, got \"500ms\"",
        ),
        (
            with("[probe]\ninterval = \"7s\""),
            "agent.toml: probe.report_every: expected a whole multiple of probe.interval (7s), got 1m",
        ),
        (
            with("[probe]\ninterval = \"400ms\"\nreport_every = \"10s 100ms\""),
            "agent.toml: probe.report_every: expected a whole multiple of probe.interval (400ms), got 10s 100ms",
        ),
        (
            with("[snmp]\ninterval = \"30s\"\nreport_every = \"20s\""),
            "agent.toml: snmp.report_every: expected at least snmp.interval (30s), got 20s",
        ),
        (
            with("[probe]\ncount = 0"),
            "agent.toml: probe.count: expected an integer from 1 to 100, got 0",
        ),
        (
            with("[probe]\ninterval = \"1s\"\ntimeout = \"2s\""),
            "agent.toml: probe.timeout: expected a duration from 10ms to 1s, got \"2s\"",
        ),
        (
            with("[probe]\ndown_after = -1"),
            "agent.toml: probe.down_after: expected an integer from 1 to 1000, got -1",
        ),
        (
            with("[probe]\ncolour = 3"),
            "agent.toml: probe.colour: unknown field `colour`",
        ),
        (
            format!("colour = 3\n{VALID}"),
            "agent.toml: colour: unknown field `colour`",
        ),
        (
            VALID.replace("agent_id = \"thanh-hoa-cam-tu-giang-trung\"", ""),
            "agent.toml: agent_id: is required",
        ),
        (
            VALID.replace("thanh-hoa-cam-tu-giang-trung", "xã Cẩm Tú"),
            "agent.toml: agent_id: invalid agent id",
        ),
        (
            VALID.replace("province = \"thanh-hoa\"", "province = \"thanh/hoa\""),
            "agent.toml: province: invalid province id",
        ),
        (
            VALID.replace("mqtt://127.0.0.1:1883", "http://127.0.0.1"),
            "agent.toml: mqtt.url: expected mqtt://host[:port] or mqtts://host[:port]",
        ),
        (
            with("[heartbeat]\ninterval = \"0s\""),
            "agent.toml: heartbeat.interval: expected a duration from 1s to 1h",
        ),
        (
            VALID.replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                "url = \"mqtt://127.0.0.1\"\npassword = \"x\"",
            ),
            "agent.toml: mqtt.password: is set but mqtt.username is not",
        ),
        (
            VALID.replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                "url = \"mqtt://127.0.0.1\"\nkeep_alive = \"soon\"",
            ),
            "agent.toml: mqtt.keep_alive: expected a duration",
        ),
        (
            VALID.replace("\"::1\"", "\"127.0.0.1\""),
            "agent.toml: targets[1].address: 127.0.0.1 is already used by targets[0]",
        ),
        (
            VALID.replace("\"::1\"", "\"localhost\""),
            "agent.toml: targets[1].address: expected an IPv4 or IPv6 address literal, got \"localhost\"",
        ),
        (
            VALID.replace("\"gateway\"", "\"village\""),
            "agent.toml: targets[1].role: expected one of gateway, commune, province, internet, other",
        ),
        (
            VALID.replace("name = \"Cổng thôn Giang Trung\"\n", ""),
            "agent.toml: targets[1].name: is required",
        ),
        (
            VALID.replace("Cổng thôn Giang Trung", "Cổng \u{202e}gnurT gnaiG"),
            "agent.toml: targets[1].name: must not contain control, bidirectional or invisible characters (U+202E)",
        ),
        (
            format!("{VALID}port = 3\n"),
            "agent.toml: targets[1].port: unknown field `port`",
        ),
        (
            VALID.split("[[targets]]").next().unwrap().to_owned(),
            "agent.toml: targets: expected 1 to 20000 [[targets]], got 0",
        ),
        ("agent_id = \n".into(), "agent.toml: -: not valid TOML"),
    ];
    for (text, expected) in cases {
        let error = load(&text, &[]).unwrap_err();
        assert!(
            error.starts_with(expected),
            "expected {expected:?}\n     got {error:?}"
        );
    }
}

#[test]
fn missing_file_is_named() {
    let error = Config::load(std::path::Path::new("/nonexistent/agent.toml")).unwrap_err();
    assert_eq!(
        (error.file.as_str(), error.key.as_str()),
        ("/nonexistent/agent.toml", "-")
    );
    assert!(error.problem.starts_with("cannot read"), "{error}");
}

#[test]
fn environment_overrides_the_file() {
    let text = with("[probe]\ninterval = \"5s\"");
    let c = load(
        &text,
        &[
            ("NETMON_PROBE__INTERVAL", "2s"),
            ("NETMON_MQTT__URL", "mqtt://127.0.0.2:1884"),
            ("NETMON_AGENT_ID", "cam-tu-02"),
            ("OTHER_PROBE__INTERVAL", "9s"),
            // Not the agent's: a test runner's and the collector's variables are left alone.
            ("NETMON_BIN_DIR", "/opt/netmon/bin"),
            ("NETMON_TEST_MQTT", "mqtt://127.0.0.1:1"),
            ("NETMON_STORE__PATH", "/var/lib/netmon/events.db"),
        ],
    )
    .unwrap();
    assert_eq!(c.probe.interval, Duration::from_secs(2));
    assert_eq!(c.mqtt.broker.port, 1884);
    assert_eq!(c.agent_id.as_str(), "cam-tu-02");
    // An override is validated like the file.
    let error = load(&text, &[("NETMON_PROBE__COUNT", "many")]).unwrap_err();
    assert!(
        error.starts_with("agent.toml: probe.count: expected an integer"),
        "{error}"
    );
}

#[test]
fn journal_keys_defaults_values_errors_and_overrides() {
    let c = load(VALID, &[]).unwrap();
    assert_eq!(
        (
            c.journal.dir.to_str().unwrap(),
            c.journal.max_bytes,
            c.journal.fsync_interval,
            c.journal.drain_rate
        ),
        (
            "/var/lib/netmon-agent/journal",
            8 * 1024 * 1024,
            Duration::from_secs(1),
            200
        )
    );
    let text = with(
        "[journal]\ndir = \"/tmp/netmon-journal\"\nmax_bytes = 65536\nfsync_interval = \"10s\"\ndrain_rate = 50",
    );
    let c = load(&text, &[]).unwrap();
    assert_eq!(
        (
            c.journal.dir.to_str().unwrap(),
            c.journal.max_bytes,
            c.journal.fsync_interval,
            c.journal.drain_rate
        ),
        ("/tmp/netmon-journal", 65536, Duration::from_secs(10), 50)
    );
    let c = load(
        &text,
        &[
            ("NETMON_JOURNAL__DIR", "/overlay/netmon-journal"),
            ("NETMON_JOURNAL__DRAIN_RATE", "1000"),
        ],
    )
    .unwrap();
    assert_eq!(c.journal.dir.to_str(), Some("/overlay/netmon-journal"));
    assert_eq!(c.journal.drain_rate, 1000);
    for (line, expected) in [
        (
            "[journal]\nmax_bytes = 4096",
            "agent.toml: journal.max_bytes: expected a number of bytes from 65536 to",
        ),
        (
            "[journal]\nfsync_interval = \"often\"",
            "agent.toml: journal.fsync_interval: expected a duration",
        ),
        (
            "[journal]\ndrain_rate = 0",
            "agent.toml: journal.drain_rate: expected an integer from 1 to 1000000, got 0",
        ),
        (
            "[journal]\ndir = \"\"",
            "agent.toml: journal.dir: expected a directory path",
        ),
        (
            "[journal]\nsize = 1",
            "agent.toml: journal.size: unknown field `size`",
        ),
    ] {
        let error = load(&with(line), &[]).unwrap_err();
        assert!(
            error.starts_with(expected),
            "expected {expected:?}\n     got {error:?}"
        );
    }
}

/// A self-signed P-256 client certificate (`CN=thanh-hoa/agent-a`, valid until 2126), its key,
/// and a key that is not its key.
const CLIENT_PEM: &str = include_str!("../../../mqtt/tests/fixtures/client.pem");
const CLIENT_KEY: &str = include_str!("../../../mqtt/tests/fixtures/client.key");
const OTHER_KEY: &str = include_str!("../../../mqtt/tests/fixtures/other.key");

#[test]
fn client_certificate_keys_are_read_when_loading() {
    let files = Scratch::new("client-cert").unwrap();
    let cert = files.write("agent.pem", CLIENT_PEM).unwrap();
    let key = files.write("agent.key", CLIENT_KEY).unwrap();
    let other = files.write("other.key", OTHER_KEY).unwrap();
    let tls = |extra: &str| {
        VALID.replace(
            "url = \"mqtt://127.0.0.1:1883\"",
            &format!("url = \"mqtts://broker.example:8883\"\n{extra}"),
        )
    };
    let pair = |cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"",
            cert.display(),
            key.display()
        )
    };
    let c = load(&tls(&pair(&cert, &key)), &[]).unwrap();
    let files_read = c.mqtt.client_cert.unwrap();
    assert_eq!(
        (files_read.cert, files_read.key),
        (cert.clone(), key.clone())
    );
    assert_eq!(load(VALID, &[]).unwrap().mqtt.client_cert, None);
    // From the environment, as a systemd credential directory would give them.
    let c = load(
        &tls(""),
        &[
            ("NETMON_MQTT__CLIENT_CERT", &cert.display().to_string()),
            ("NETMON_MQTT__CLIENT_KEY", &key.display().to_string()),
        ],
    )
    .unwrap();
    assert!(c.mqtt.client_cert.is_some());

    let missing = files.path().join("missing.pem");
    let cases = [
        (
            tls(&format!("client_cert = \"{}\"", cert.display())),
            "agent.toml: mqtt.client_key: is required with mqtt.client_cert".to_owned(),
        ),
        (
            tls(&format!("client_key = \"{}\"", key.display())),
            "agent.toml: mqtt.client_cert: is required with mqtt.client_key".to_owned(),
        ),
        (
            with("").replace(
                "url = \"mqtt://127.0.0.1:1883\"",
                &format!("url = \"mqtt://127.0.0.1:1883\"\n{}", pair(&cert, &key)),
            ),
            "agent.toml: mqtt.client_cert: is only used with an mqtts:// url".to_owned(),
        ),
        (
            tls(&pair(&missing, &key)),
            format!(
                "agent.toml: mqtt.client_cert: cannot read {}",
                missing.display()
            ),
        ),
        (
            tls(&pair(&cert, &missing)),
            format!(
                "agent.toml: mqtt.client_key: cannot read {}",
                missing.display()
            ),
        ),
        (
            tls(&pair(&cert, &cert)),
            format!(
                "agent.toml: mqtt.client_key: no private key in {}",
                cert.display()
            ),
        ),
        (
            tls(&pair(&cert, &other)),
            format!(
                "agent.toml: mqtt.client_key: {} is not the key of the certificate in {}",
                other.display(),
                cert.display()
            ),
        ),
    ];
    for (text, expected) in cases {
        let error = load(&text, &[]).unwrap_err();
        assert!(
            error.starts_with(&expected),
            "expected {expected:?}\n     got {error:?}"
        );
    }
}

/// F11 of the audit: no `Debug` of the configuration shows a secret (one `?config` in a log line
/// would publish the broker password and the routers' SNMP credentials).
#[test]
fn no_debug_output_shows_a_secret() {
    let secrets = [
        "mqtt-S3cr3t-pw",
        "snmp-S3cr3t-community",
        "snmp-S3cr3t-auth",
        "snmp-S3cr3t-priv",
    ];
    let text = VALID.replace(
        "url = \"mqtt://127.0.0.1:1883\"",
        &format!(
            "url = \"mqtt://127.0.0.1:1883\"\nusername = \"thanh-hoa/giang-trung\"\npassword = \"{}\"",
            secrets[0]
        ),
    ) + &format!(
        "\n[[snmp.devices]]\naddress = \"192.0.2.1\"\ncommunity = \"{}\"\n\
         [[snmp.devices]]\naddress = \"192.0.2.2\"\nversion = \"3\"\nuser = \"monitor\"\n\
         auth_protocol = \"sha256\"\nauth_password = \"{}\"\npriv_protocol = \"aes128\"\n\
         priv_password = \"{}\"\n",
        secrets[1], secrets[2], secrets[3]
    );
    let config = load(&text, &[]).unwrap();
    let shown = format!("{config:?} {config:#?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    // What is not secret is still there to debug with.
    for visible in ["thanh-hoa/giang-trung", "monitor", "192.0.2.2", "Sha256"] {
        assert!(shown.contains(visible), "{visible} missing from {shown}");
    }
    assert_eq!(
        config.mqtt.credentials.as_ref().map(|(_, p)| p.as_str()),
        Some(secrets[0])
    );
}
