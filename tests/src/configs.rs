//! Config files for the daemons under test, written as TOML from plain structs. Only the keys the
//! tests vary are fields; the rest are fixed here. The files are written by the `toml` crate
//! from private `Serialize` structs that mirror each file's sections (test code: the rule "only
//! the contract is serialisable" does not apply), so Vietnamese names with diacritics and any
//! metacharacters go through unchanged.

use serde::Serialize;

/// One `[[targets]]` entry of the agent.
#[derive(Debug, Clone, Serialize)]
pub struct TargetConfig {
    pub name: String,
    pub address: String,
    /// `gateway`, `commune`, `province`, `internet` or `other`.
    pub role: String,
}

/// The agent's config file.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub agent_id: String,
    pub province: String,
    pub mqtt_url: String,
    /// CA certificate for `mqtts://` URLs.
    pub ca_file: Option<String>,
    pub keep_alive: String,
    /// `mqtt.alive_every`: liveness messages (ADR 16); `None`, the shipped default, is off.
    pub alive_every: Option<String>,
    pub interval: String,
    pub count: u32,
    pub timeout: String,
    pub down_after: u32,
    /// `probe.report_every`: one `probe_window_completed` per target per window. `None` is the
    /// shipped default (1 min); the tests' default is 10 s, so that windows arrive quickly.
    pub report_every: Option<String>,
    pub heartbeat: String,
    pub targets: Vec<TargetConfig>,
    /// `[journal] dir`. Every agent needs its own (the agent locks it): when `None`,
    /// [`crate::Agent::start`] fills in `{scratch}/{name}-journal`.
    pub journal_dir: Option<String>,
    /// `[journal] max_bytes` (the agent's default when `None`).
    pub journal_max_bytes: Option<u64>,
    /// `[journal] fsync_interval` (the agent's default when `None`).
    pub journal_fsync_interval: Option<String>,
    /// `[journal] drain_rate`, events per second while sending a backlog (default when `None`).
    pub drain_rate: Option<u32>,
    /// Further TOML appended as is (the `[snmp]` section of the SNMP tests).
    pub extra_toml: String,
}

impl AgentConfig {
    /// A config probing nothing yet, with the lab tests' timings (1 s rounds of 3 echoes).
    pub fn new(agent_id: &str, province: &str, mqtt_url: &str) -> Self {
        Self {
            agent_id: agent_id.to_owned(),
            province: province.to_owned(),
            mqtt_url: mqtt_url.to_owned(),
            ca_file: None,
            keep_alive: "5s".into(),
            alive_every: None,
            interval: "1s".into(),
            count: 3,
            timeout: "1s".into(),
            down_after: 3,
            report_every: Some("10s".into()),
            heartbeat: "10s".into(),
            targets: Vec::new(),
            journal_dir: None,
            journal_max_bytes: None,
            journal_fsync_interval: None,
            drain_rate: None,
            extra_toml: String::new(),
        }
    }

    pub fn to_toml(&self) -> String {
        let journal_set = self.journal_dir.is_some()
            || self.journal_max_bytes.is_some()
            || self.journal_fsync_interval.is_some()
            || self.drain_rate.is_some();
        let file = AgentFile {
            agent_id: &self.agent_id,
            province: &self.province,
            mqtt: AgentMqtt {
                url: &self.mqtt_url,
                ca_file: self.ca_file.as_deref(),
                keep_alive: &self.keep_alive,
                alive_every: self.alive_every.as_deref(),
            },
            probe: Probe {
                interval: &self.interval,
                count: self.count,
                timeout: &self.timeout,
                down_after: self.down_after,
                report_every: self.report_every.as_deref(),
            },
            heartbeat: Heartbeat {
                interval: &self.heartbeat,
            },
            journal: journal_set.then_some(Journal {
                dir: self.journal_dir.as_deref(),
                max_bytes: self.journal_max_bytes,
                fsync_interval: self.journal_fsync_interval.as_deref(),
                drain_rate: self.drain_rate,
            }),
            targets: &self.targets,
        };
        let mut out = write(&file);
        out.push_str(&self.extra_toml);
        out
    }
}

/// The agent's file as the `toml` crate writes it.
#[derive(Serialize)]
struct AgentFile<'a> {
    agent_id: &'a str,
    province: &'a str,
    mqtt: AgentMqtt<'a>,
    probe: Probe<'a>,
    heartbeat: Heartbeat<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal: Option<Journal<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    targets: &'a [TargetConfig],
}

#[derive(Serialize)]
struct AgentMqtt<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<&'a str>,
    keep_alive: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alive_every: Option<&'a str>,
}

#[derive(Serialize)]
struct Probe<'a> {
    interval: &'a str,
    count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_every: Option<&'a str>,
    timeout: &'a str,
    down_after: u32,
}

#[derive(Serialize)]
struct Heartbeat<'a> {
    interval: &'a str,
}

#[derive(Serialize)]
struct Journal<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fsync_interval: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drain_rate: Option<u32>,
}

/// The collector's config file.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub mqtt_url: String,
    /// CA certificate for `mqtts://` URLs.
    pub ca_file: Option<String>,
    pub client_id: String,
    /// Only this province's topics are taken (each test uses its own).
    pub province: Option<String>,
    pub store_path: String,
    /// `store.snapshot_every` (the collector's default, 5 min, when `None`).
    pub snapshot_every: Option<String>,
    pub http_listen: String,
    pub silence_after: String,
    /// The optional `[delivery]` keys.
    pub delivery: DeliveryConfig,
    /// The optional `[influx]` section (no projection when `None`).
    pub influx: Option<InfluxConfig>,
    /// The top-level `inventory = "FILE"` key (no site inventory when `None`).
    pub inventory: Option<String>,
    /// `http.token` (commands refused when `None`).
    pub http_token: Option<String>,
    /// Appended to the file as is: `[alerts]`, `[notify.*]` sections.
    pub extra_toml: String,
}

/// The collector's `[influx]` section; a key left `None` is not written (the collector's default).
#[derive(Debug, Clone, Default, Serialize)]
pub struct InfluxConfig {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `v1` or `v2`.
    pub api: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_points: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl InfluxConfig {
    /// `api = "v1"` into database `database` of the InfluxDB at `url`.
    pub fn v1(url: &str, database: &str) -> Self {
        Self {
            url: url.to_owned(),
            api: "v1".into(),
            database: Some(database.to_owned()),
            ..Self::default()
        }
    }

    /// `api = "v2"` into `org`/`bucket` at `url`, with a token.
    pub fn v2(url: &str, org: &str, bucket: &str) -> Self {
        Self {
            url: url.to_owned(),
            api: "v2".into(),
            org: Some(org.to_owned()),
            bucket: Some(bucket.to_owned()),
            token: Some("netmon-test-token".into()),
            ..Self::default()
        }
    }
}

/// The collector's `[delivery]` section; a key left `None` takes the collector's default.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryConfig {
    /// `late_after` (default "2m").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_after: Option<String>,
    /// `clock_tolerance` (default "30s").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_tolerance: Option<String>,
    /// `ack_interval` (default "1s").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_interval: Option<String>,
}

impl DeliveryConfig {
    fn is_empty(&self) -> bool {
        self.late_after.is_none() && self.clock_tolerance.is_none() && self.ack_interval.is_none()
    }
}

impl CollectorConfig {
    /// A collector on this host: the broker at `mqtt_url`, all provinces, its store at
    /// `store_path`, HTTP on a free loopback port, silence after an hour, no projection, no
    /// inventory, no token. Tests change the fields they care about.
    pub fn on_loopback(mqtt_url: &str, store_path: &std::path::Path) -> anyhow::Result<Self> {
        Ok(CollectorConfig {
            mqtt_url: mqtt_url.to_owned(),
            ca_file: None,
            client_id: crate::unique("collector"),
            province: None,
            store_path: store_path.display().to_string(),
            snapshot_every: None,
            http_listen: format!("127.0.0.1:{}", crate::daemons::free_port()?),
            silence_after: "1h".into(),
            delivery: Default::default(),
            influx: None,
            inventory: None,
            http_token: None,
            extra_toml: String::new(),
        })
    }

    pub fn to_toml(&self) -> String {
        let file = CollectorFile {
            inventory: self.inventory.as_deref(),
            mqtt: CollectorMqtt {
                url: &self.mqtt_url,
                ca_file: self.ca_file.as_deref(),
                client_id: &self.client_id,
                province: self.province.as_deref(),
            },
            store: Store {
                path: &self.store_path,
                snapshot_every: self.snapshot_every.as_deref(),
            },
            http: Http {
                listen: &self.http_listen,
                token: self.http_token.as_deref(),
            },
            silence: Silence {
                after: &self.silence_after,
            },
            delivery: &self.delivery,
            influx: self.influx.as_ref(),
        };
        let mut out = write(&file);
        out.push('\n');
        out.push_str(&self.extra_toml);
        out
    }
}

/// The collector's file as the `toml` crate writes it.
#[derive(Serialize)]
struct CollectorFile<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory: Option<&'a str>,
    mqtt: CollectorMqtt<'a>,
    store: Store<'a>,
    http: Http<'a>,
    silence: Silence<'a>,
    #[serde(skip_serializing_if = "DeliveryConfig::is_empty")]
    delivery: &'a DeliveryConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    influx: Option<&'a InfluxConfig>,
}

#[derive(Serialize)]
struct CollectorMqtt<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<&'a str>,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    province: Option<&'a str>,
}

#[derive(Serialize)]
struct Store<'a> {
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_every: Option<&'a str>,
}

#[derive(Serialize)]
struct Http<'a> {
    listen: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

#[derive(Serialize)]
struct Silence<'a> {
    after: &'a str,
}

/// A config file as TOML. The structs above hold only strings, small numbers and booleans, which
/// always serialise.
fn write(file: &impl Serialize) -> String {
    toml::to_string(file).expect("a test config serialises as TOML")
}

/// A TOML string holding `value` exactly, for keys the tests add to a file by hand.
pub fn quote(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_diacritics_and_escapes_metacharacters() {
        assert_eq!(quote("UBND xã Cẩm Tú"), "\"UBND xã Cẩm Tú\"");
        for value in ["a\"b\\c\n", "it's", "x\ty\u{1}'\"", "UBND xã Cẩm Tú"] {
            let line = format!("key = {}", quote(value));
            let back: toml::Table = toml::from_str(&line).unwrap();
            assert_eq!(back["key"].as_str(), Some(value), "{line}");
        }
    }

    #[test]
    fn the_files_are_the_sections_the_daemons_read() {
        let mut agent = AgentConfig::new("a-1", "thanh-hoa", "mqtt://127.0.0.1:1883");
        agent.targets.push(TargetConfig {
            name: "cổng \"xã\"".into(),
            address: "10.0.0.1".into(),
            role: "gateway".into(),
        });
        agent.drain_rate = Some(50);
        let text = agent.to_toml();
        let back: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(back["agent_id"].as_str(), Some("a-1"));
        assert_eq!(back["mqtt"]["keep_alive"].as_str(), Some("5s"));
        assert_eq!(back["probe"]["count"].as_integer(), Some(3));
        assert_eq!(back["journal"]["drain_rate"].as_integer(), Some(50));
        assert!(back["journal"].get("dir").is_none());
        assert_eq!(back["targets"][0]["name"].as_str(), Some("cổng \"xã\""));

        let store = std::path::Path::new("/tmp/events.db");
        let mut collector = CollectorConfig::on_loopback("mqtt://127.0.0.1:1883", store).unwrap();
        collector.influx = Some(InfluxConfig::v1("http://127.0.0.1:8086", "netmon"));
        collector.extra_toml = "[alerts]\n".into();
        let text = collector.to_toml();
        // Tests splice keys in after these headers.
        assert!(
            text.starts_with("[mqtt]\n") && text.contains("\n[http]\n"),
            "{text}"
        );
        assert!(text.ends_with("\n\n[alerts]\n"), "{text}");
        let back: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(back["store"]["path"].as_str(), Some("/tmp/events.db"));
        assert_eq!(back["influx"]["database"].as_str(), Some("netmon"));
        assert!(back.get("delivery").is_none() && back.get("inventory").is_none());
        assert!(back["http"].get("token").is_none());
    }
}
