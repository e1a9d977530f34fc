//! The collector's configuration: a TOML file with environment overrides, read into a raw struct
//! that mirrors the file, then validated into [`Config`], which holds only valid values.
//!
//! Loading reads files (the config, and for `mqtts://` the CA file or else the system trust store)
//! but binds no ports and opens no store.
//!
//! This module loads the file and assembles [`Config`]; every section is validated beside the
//! feature that uses it (`intake/config.rs`: `mqtt`, `silence`, `delivery`; `store/config.rs`,
//! `http/config.rs`, `alerts/config.rs`, `influx/config.rs`, `notify/config.rs`, the inventory in
//! `inventory/load.rs`), with the error type and the one `Check` helper of the leaf [`check`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub mod check;
pub use crate::alerts::AlertsConfig;
pub use crate::http::config::HttpConfig;
use crate::influx::InfluxConfig;
pub use crate::intake::config::{DeliveryConfig, MqttConfig, SilenceConfig};
use crate::notify::NotifyConfig;
pub use crate::store::config::StoreConfig;
use check::Check;
pub use check::ConfigError;

/// Environment variables that override the file: `NETMON_<SECTION>__<KEY>`.
const ENV_PREFIX: &str = "NETMON_";
/// The sections an environment override may name; other `NETMON_*` variables (the agent's, the
/// test runner's) are ignored.
const SECTIONS: &[&str] = &[
    "mqtt", "store", "http", "silence", "delivery", "influx", "alerts", "notify",
];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for messages.
    pub file: PathBuf,
    pub mqtt: MqttConfig,
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub silence: SilenceConfig,
    pub delivery: DeliveryConfig,
    /// `[influx]`: the InfluxDB projection; `None` when the section is absent.
    pub influx: Option<InfluxConfig>,
    /// `inventory = "FILE"`: the site inventory (relative to the config file's directory);
    /// `None` when the key is absent (alerts then name agents by id).
    pub inventory: Option<Arc<crate::inventory::Inventory>>,
    /// `[alerts]`: thresholds and notification timing.
    pub alerts: AlertsConfig,
    /// `[notify]`: the channels and the message templates (built-in ones when absent).
    pub notify: NotifyConfig,
}

// No `Debug` on the raw sections that hold secrets (or hold sections that do): nothing can
// print a password or a token by accident. The validated types redact theirs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mqtt: crate::intake::config::RawMqtt,
    store: crate::store::config::RawStore,
    #[serde(default)]
    http: crate::http::config::RawHttp,
    #[serde(default)]
    silence: crate::intake::config::RawSilence,
    #[serde(default)]
    delivery: crate::intake::config::RawDelivery,
    influx: Option<crate::influx::config::RawInflux>,
    inventory: Option<PathBuf>,
    #[serde(default)]
    alerts: crate::alerts::config::RawAlerts,
    #[serde(default)]
    notify: crate::notify::config::RawNotify,
}

impl Config {
    /// Reads `file`, applies `NETMON_<SECTION>__<KEY>` overrides from the process environment and
    /// validates the result.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_with_env(
        file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let name = file.display().to_string();
        let overrides: config::Map<String, String> = env
            .into_iter()
            .filter(|(key, _)| {
                key.strip_prefix(ENV_PREFIX)
                    .and_then(|rest| rest.split_once("__"))
                    .is_some_and(|(section, _)| {
                        SECTIONS.contains(&section.to_ascii_lowercase().as_str())
                    })
            })
            .collect();
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from(file).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("NETMON")
                    .prefix_separator("_")
                    .separator("__")
                    .source(Some(overrides)),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError {
                file: name.clone(),
                key: String::new(),
                problem: e.to_string(),
            })?;
        validate(raw, file)
    }
}

fn validate(raw: RawConfig, file: &Path) -> Result<Config, ConfigError> {
    let file_name = file.display().to_string();
    let c = Check { file: &file_name };
    let mqtt = crate::intake::config::mqtt(raw.mqtt, &c)?;
    let store = crate::store::config::validate(raw.store, &c)?;
    let delivery = crate::intake::config::delivery(&raw.delivery, &c)?;
    let silence = crate::intake::config::silence(&raw.silence, &c)?;
    let influx = raw
        .influx
        .map(|raw| crate::influx::config::validate(raw, &c))
        .transpose()?;
    let inventory = match raw.inventory {
        Some(path) if path.as_os_str().is_empty() => {
            return Err(c.err("inventory", "expected a file path, got nothing".into()));
        }
        Some(path) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(path);
            if !path.is_file() {
                return Err(c.err(
                    "inventory",
                    format!(
                        "expected an inventory file, {} does not exist",
                        path.display()
                    ),
                ));
            }
            Some(Arc::new(crate::inventory::load(&path)?))
        }
        None => None,
    };
    let alerts = crate::alerts::config::validate(raw.alerts, &c)?;
    let http = crate::http::config::validate(raw.http, &c)?;
    let notify =
        crate::notify::config::validate(raw.notify, file.parent().unwrap_or(Path::new(".")), &c)?;
    Ok(Config {
        file: file.to_path_buf(),
        mqtt,
        store,
        http,
        silence,
        delivery,
        influx,
        alerts,
        inventory,
        notify,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::influx::InfluxApi;
    use std::time::Duration;

    fn write(text: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("netmon-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("collector.toml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let (dir, file) = write(text);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let result = Config::load_with_env(&file, env);
        std::fs::remove_dir_all(dir).unwrap();
        result
    }

    const MINIMAL: &str =
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n[store]\npath = \"/tmp/x.db\"\n";

    #[test]
    fn influx_section_defaults_and_api_requirements() {
        assert!(load(MINIMAL, &[]).unwrap().influx.is_none());
        let config = load(
            &format!("{MINIMAL}[influx]\nurl = \"http://127.0.0.1:8086/\"\norg = \"netmon\"\nbucket = \"b\"\ntoken = \"t0k\"\n"),
            &[],
        )
        .unwrap();
        let influx = config.influx.unwrap();
        assert_eq!(influx.url, "http://127.0.0.1:8086");
        assert_eq!(
            influx.api,
            InfluxApi::V2 {
                org: "netmon".into(),
                bucket: "b".into(),
                token: Some("t0k".into())
            }
        );
        assert_eq!(influx.batch_points, 5000);
        assert_eq!(influx.flush_interval, Duration::from_secs(1));
        assert!(influx.gzip);
        assert_eq!(influx.timeout, Duration::from_secs(10));
        assert!(
            !format!("{influx:?}").contains("t0k"),
            "secrets stay out of Debug"
        );

        let v1 = load(
            &format!("{MINIMAL}[influx]\nurl = \"http://h:8086\"\napi = \"v1\"\ndatabase = \"netmon\"\nusername = \"u\"\npassword = \"p\"\nbatch_points = 10\nflush_interval = \"250ms\"\ngzip = false\n"),
            &[("NETMON_INFLUX__RETENTION_POLICY", "autogen")],
        )
        .unwrap()
        .influx
        .unwrap();
        assert_eq!(
            v1.api,
            InfluxApi::V1 {
                database: "netmon".into(),
                retention_policy: Some("autogen".into()),
                credentials: Some(("u".into(), "p".into()))
            }
        );
        assert_eq!((v1.batch_points, v1.gzip), (10, false));
        assert_eq!(v1.flush_interval, Duration::from_millis(250));
    }

    #[test]
    fn influx_errors_name_file_and_key() {
        let cases = [
            ("url = \"http://h\"\nbucket = \"b\"", "influx.org"),
            ("url = \"http://h\"\norg = \"o\"", "influx.bucket"),
            ("url = \"http://h\"\napi = \"v1\"", "influx.database"),
            ("url = \"http://h\"\napi = \"v3\"", "influx.api"),
            (
                "url = \"h:8086\"\norg = \"o\"\nbucket = \"b\"",
                "influx.url",
            ),
            (
                "url = \"http://admin:secret@h:8086\"\norg = \"o\"\nbucket = \"b\"",
                "influx.url",
            ),
            (
                "url = \"http://h\"\norg = \"o\"\nbucket = \"b\"\nbatch_points = 0",
                "influx.batch_points",
            ),
            (
                "url = \"http://h\"\norg = \"o\"\nbucket = \"b\"\nflush_interval = \"soon\"",
                "influx.flush_interval",
            ),
            (
                "url = \"http://h\"\norg = \"o\"\nbucket = \"b\"\ntimeout = \"2h\"",
                "influx.timeout",
            ),
            (
                "url = \"http://h\"\napi = \"v1\"\ndatabase = \"d\"\npassword = \"p\"",
                "influx.password",
            ),
        ];
        for (section, key) in cases {
            let e = load(&format!("{MINIMAL}[influx]\n{section}\n"), &[]).unwrap_err();
            assert_eq!(e.key, key, "{section}: {e}");
            assert!(e.to_string().contains("collector.toml: influx."), "{e}");
        }
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let config = load(MINIMAL, &[]).unwrap();
        assert_eq!(config.mqtt.host, "127.0.0.1");
        assert_eq!(config.mqtt.port, 1883);
        assert_eq!(config.mqtt.client_id, "netmon-collector");
        assert_eq!(config.mqtt.province, None);
        assert_eq!(config.mqtt.keep_alive, Duration::from_secs(30));
        assert_eq!(config.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.silence.after, Duration::from_secs(16 * 60));
        assert_eq!(config.delivery.late_after, Duration::from_secs(120));
        assert_eq!(config.delivery.clock_tolerance, Duration::from_secs(30));
        assert_eq!(config.delivery.ack_interval, Duration::from_secs(1));
        assert_eq!(config.delivery.max_acks_per_s, 1000);
        assert_eq!(
            config.delivery.policy(),
            crate::intake::clock::ClockPolicy::default()
        );
        assert!(config.mqtt.tls.is_none());
    }

    #[test]
    fn http_limits_and_read_token() {
        let http = load(MINIMAL, &[]).unwrap().http;
        assert_eq!(http.token, None);
        assert_eq!(http.read_token, None);
        assert_eq!(http.header_timeout, Duration::from_secs(5));
        assert_eq!(http.request_timeout, Duration::from_secs(10));
        assert_eq!(http.max_connections, 256);
        let http = load(
            &format!(
                "{MINIMAL}[http]\nread_token = \"read-token-0123456789\"\nheader_timeout = \"2s\"\nrequest_timeout = \"30s\"\n"
            ),
            &[("NETMON_HTTP__MAX_CONNECTIONS", "8")],
        )
        .unwrap()
        .http;
        assert_eq!(http.read_token.as_deref(), Some("read-token-0123456789"));
        assert_eq!(http.header_timeout, Duration::from_secs(2));
        assert_eq!(http.request_timeout, Duration::from_secs(30));
        assert_eq!(http.max_connections, 8);
        for (line, key) in [
            ("read_token = \"short\"", "http.read_token"),
            ("read_token = \"has a space in it here\"", "http.read_token"),
            ("header_timeout = \"0s\"", "http.header_timeout"),
            ("header_timeout = \"2m\"", "http.header_timeout"),
            ("request_timeout = \"1h\"", "http.request_timeout"),
            ("max_connections = 0", "http.max_connections"),
            ("max_connections = 100000", "http.max_connections"),
        ] {
            let e = load(&format!("{MINIMAL}[http]\n{line}\n"), &[]).unwrap_err();
            assert_eq!(e.key, key, "{line}: {e}");
        }
    }

    #[test]
    fn environment_overrides_and_foreign_variables_are_ignored() {
        let config = load(
            MINIMAL,
            &[
                ("NETMON_HTTP__LISTEN", "127.0.0.1:9999"),
                ("NETMON_DELIVERY__ACK_INTERVAL", "250ms"),
                ("NETMON_DELIVERY__MAX_ACKS_PER_S", "4000"),
                ("NETMON_MQTT__PROVINCE", "hue"),
                ("NETMON_TEST_MQTT", "mqtt://127.0.0.1:18830"),
                ("NETMON_AGENT_ONLY", "x"),
            ],
        )
        .unwrap();
        assert_eq!(config.http.listen.port(), 9999);
        assert_eq!(config.delivery.ack_interval, Duration::from_millis(250));
        assert_eq!(config.delivery.max_acks_per_s, 4000);
        assert_eq!(config.mqtt.province.unwrap().as_str(), "hue");
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        let cases = [
            (
                "[mqtt]\nurl = \"http://x\"\n[store]\npath = \"/tmp/x.db\"\n",
                "mqtt.url",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\nprovince = \"thanh hoa\"\n[store]\npath = \"a\"\n",
                "mqtt.province",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\nkeep_alive = \"500ms\"\n[store]\npath = \"a\"\n",
                "mqtt.keep_alive",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\n[store]\npath = \"a\"\n[http]\nlisten = \"localhost\"\n",
                "http.listen",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\n[store]\npath = \"a\"\n[silence]\nafter = \"soon\"\n",
                "silence.after",
            ),
            (
                "[mqtt]\nurl = \"mqtts://x:1\"\nca_file = \"/nonexistent/ca.pem\"\n[store]\npath = \"a\"\n",
                "mqtt.ca_file",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\n[store]\npath = \"a\"\n[delivery]\nlate_after = \"0s\"\n",
                "delivery.late_after",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\n[store]\npath = \"a\"\n[delivery]\nclock_tolerance = \"x\"\n",
                "delivery.clock_tolerance",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\n[store]\npath = \"a\"\n[delivery]\nack_interval = \"1h\"\n",
                "delivery.ack_interval",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\n[store]\npath = \"a\"\n[delivery]\nmax_acks_per_s = 0\n",
                "delivery.max_acks_per_s",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\n[store]\npath = \"a\"\n[delivery]\nmax_acks_per_s = 2.5\n",
                "delivery.max_acks_per_s",
            ),
        ];
        for (text, key) in cases {
            let err = load(text, &[]).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.file.ends_with("collector.toml"), "{err}");
            assert!(!err.problem.is_empty());
        }
    }

    /// Without `mqtt.ca_file`, `mqtts://` trusts the system store (the `ca-certificates` package).
    #[test]
    fn mqtts_without_ca_file_trusts_the_system_store() {
        let config = load(
            "[mqtt]\nurl = \"mqtts://broker.example.vn\"\n[store]\npath = \"a\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.mqtt.port, 8883);
        assert!(config.mqtt.tls.is_some());
    }

    /// `mqtt.client_cert` and `mqtt.client_key` go together, with `mqtts://` only, and are read
    /// when loading (the e2e test `broker_security` connects with them).
    #[test]
    fn client_certificate_errors_name_the_key() {
        let tls = "[mqtt]\nurl = \"mqtts://broker.example.vn\"\n";
        for (mqtt, key, problem) in [
            (
                format!("{tls}client_cert = \"/nonexistent/c.pem\"\n"),
                "mqtt.client_key",
                "is required with mqtt.client_cert",
            ),
            (
                format!("{tls}client_key = \"/nonexistent/c.key\"\n"),
                "mqtt.client_cert",
                "is required with mqtt.client_key",
            ),
            (
                "[mqtt]\nurl = \"mqtt://x:1\"\nclient_cert = \"c.pem\"\nclient_key = \"c.key\"\n"
                    .into(),
                "mqtt.client_cert",
                "is only used with an mqtts:// url",
            ),
            (
                format!(
                    "{tls}client_cert = \"/nonexistent/c.pem\"\nclient_key = \"/nonexistent/c.key\"\n"
                ),
                "mqtt.client_cert",
                "cannot read /nonexistent/c.pem",
            ),
        ] {
            let e = load(&format!("{mqtt}[store]\npath = \"a\"\n"), &[]).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.problem.starts_with(problem), "{e}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = load(&format!("{MINIMAL}[silence]\nafterr = \"3s\"\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("afterr"), "{err}");
        assert!(err.to_string().contains("collector.toml"), "{err}");
        let err = load("[mqtt]\n[store]\npath = \"a\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("url"), "{err}");
    }

    /// `inventory` is read relative to the config file; its errors name the inventory file.
    #[test]
    fn inventory_is_relative_to_the_config_file() {
        assert!(load(MINIMAL, &[]).unwrap().inventory.is_none());
        let (dir, file) = write(&format!("inventory = \"sites/inv.toml\"\n{MINIMAL}"));
        let err = Config::load_with_env(&file, []).unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.file.ends_with("collector.toml")),
            ("inventory", true)
        );
        std::fs::create_dir_all(dir.join("sites")).unwrap();
        let inventory = "[[provinces]]\nid = \"hue\"\nname = \"Huế\"\n";
        std::fs::write(dir.join("sites/inv.toml"), inventory).unwrap();
        let config = Config::load_with_env(&file, []).unwrap();
        assert_eq!(config.inventory.unwrap().provinces.len(), 1);
        std::fs::write(
            dir.join("sites/inv.toml"),
            "[[provinces]]\nid = \"hue\"\nname = \"\"\n",
        )
        .unwrap();
        let err = Config::load_with_env(&file, []).unwrap_err();
        assert!(err.file.ends_with("sites/inv.toml"), "{err}");
        assert_eq!(err.key, "provinces[0].name");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
