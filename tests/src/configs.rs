//! Config files for the daemons under test, written as TOML from plain structs. Only the keys the
//! tests vary are fields; the rest are fixed here. Strings are escaped, so Vietnamese names with
//! diacritics go through unchanged.

use std::fmt::Write as _;

/// One `[[targets]]` entry of the agent.
#[derive(Debug, Clone)]
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
    pub interval: String,
    pub count: u32,
    pub timeout: String,
    pub down_after: u32,
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
            interval: "1s".into(),
            count: 3,
            timeout: "1s".into(),
            down_after: 3,
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
        let mut out = String::new();
        let _ = writeln!(out, "agent_id = {}", quote(&self.agent_id));
        let _ = writeln!(out, "province = {}", quote(&self.province));
        let _ = writeln!(out, "\n[mqtt]\nurl = {}", quote(&self.mqtt_url));
        if let Some(ca_file) = &self.ca_file {
            let _ = writeln!(out, "ca_file = {}", quote(ca_file));
        }
        let _ = writeln!(out, "keep_alive = {}", quote(&self.keep_alive));
        let _ = writeln!(out, "\n[probe]\ninterval = {}", quote(&self.interval));
        let _ = writeln!(out, "count = {}", self.count);
        let _ = writeln!(out, "timeout = {}", quote(&self.timeout));
        let _ = writeln!(out, "down_after = {}", self.down_after);
        let _ = writeln!(out, "\n[heartbeat]\ninterval = {}", quote(&self.heartbeat));
        let journal_set = self.journal_dir.is_some()
            || self.journal_max_bytes.is_some()
            || self.journal_fsync_interval.is_some()
            || self.drain_rate.is_some();
        if journal_set {
            let _ = writeln!(out, "\n[journal]");
        }
        if let Some(dir) = &self.journal_dir {
            let _ = writeln!(out, "dir = {}", quote(dir));
        }
        if let Some(max_bytes) = self.journal_max_bytes {
            let _ = writeln!(out, "max_bytes = {max_bytes}");
        }
        if let Some(fsync_interval) = &self.journal_fsync_interval {
            let _ = writeln!(out, "fsync_interval = {}", quote(fsync_interval));
        }
        if let Some(drain_rate) = self.drain_rate {
            let _ = writeln!(out, "drain_rate = {drain_rate}");
        }
        for target in &self.targets {
            let _ = writeln!(out, "\n[[targets]]\nname = {}", quote(&target.name));
            let _ = writeln!(out, "address = {}", quote(&target.address));
            let _ = writeln!(out, "role = {}", quote(&target.role));
        }
        out.push_str(&self.extra_toml);
        out
    }
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
#[derive(Debug, Clone, Default)]
pub struct InfluxConfig {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `v1` or `v2`.
    pub api: String,
    pub org: Option<String>,
    pub bucket: Option<String>,
    pub token: Option<String>,
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub batch_points: Option<u32>,
    pub flush_interval: Option<String>,
    pub gzip: Option<bool>,
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

    fn write_toml(&self, out: &mut String) {
        let _ = writeln!(out, "\n[influx]\nurl = {}", quote(&self.url));
        let _ = writeln!(out, "api = {}", quote(&self.api));
        let strings = [
            ("org", &self.org),
            ("bucket", &self.bucket),
            ("token", &self.token),
            ("database", &self.database),
            ("retention_policy", &self.retention_policy),
            ("username", &self.username),
            ("password", &self.password),
            ("flush_interval", &self.flush_interval),
            ("timeout", &self.timeout),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                let _ = writeln!(out, "{key} = {}", quote(value));
            }
        }
        if let Some(batch_points) = self.batch_points {
            let _ = writeln!(out, "batch_points = {batch_points}");
        }
        if let Some(gzip) = self.gzip {
            let _ = writeln!(out, "gzip = {gzip}");
        }
    }
}

/// The collector's `[delivery]` section; a key left `None` takes the collector's default.
#[derive(Debug, Clone, Default)]
pub struct DeliveryConfig {
    /// `late_after` (default "2m").
    pub late_after: Option<String>,
    /// `clock_tolerance` (default "30s").
    pub clock_tolerance: Option<String>,
    /// `ack_interval` (default "1s").
    pub ack_interval: Option<String>,
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
        let mut out = String::new();
        if let Some(inventory) = &self.inventory {
            let _ = writeln!(out, "inventory = {}\n", quote(inventory));
        }
        let _ = writeln!(out, "[mqtt]\nurl = {}", quote(&self.mqtt_url));
        if let Some(ca_file) = &self.ca_file {
            let _ = writeln!(out, "ca_file = {}", quote(ca_file));
        }
        let _ = writeln!(out, "client_id = {}", quote(&self.client_id));
        if let Some(province) = &self.province {
            let _ = writeln!(out, "province = {}", quote(province));
        }
        let _ = writeln!(out, "\n[store]\npath = {}", quote(&self.store_path));
        let _ = writeln!(out, "\n[http]\nlisten = {}", quote(&self.http_listen));
        if let Some(token) = &self.http_token {
            let _ = writeln!(out, "token = {}", quote(token));
        }
        let _ = writeln!(out, "\n[silence]\nafter = {}", quote(&self.silence_after));
        let delivery = [
            ("late_after", &self.delivery.late_after),
            ("clock_tolerance", &self.delivery.clock_tolerance),
            ("ack_interval", &self.delivery.ack_interval),
        ];
        if delivery.iter().any(|(_, value)| value.is_some()) {
            let _ = writeln!(out, "\n[delivery]");
            for (key, value) in delivery {
                if let Some(value) = value {
                    let _ = writeln!(out, "{key} = {}", quote(value));
                }
            }
        }
        if let Some(influx) = &self.influx {
            influx.write_toml(&mut out);
        }
        out.push('\n');
        out.push_str(&self.extra_toml);
        out
    }
}

/// A TOML basic string.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_diacritics_and_escapes_metacharacters() {
        assert_eq!(quote("UBND xã Cẩm Tú"), "\"UBND xã Cẩm Tú\"");
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
