//! The agent's configuration: a TOML file plus `NETMON_*` environment overrides, read into a raw
//! struct and validated into [`Config`]. Code outside this module only ever sees valid values.
//!
//! Environment overrides use the prefix `NETMON_` and `__` between levels:
//! `NETMON_AGENT_ID`, `NETMON_MQTT__URL`, `NETMON_PROBE__INTERVAL`, `NETMON_JOURNAL__DIR`. Loading
//! reads files and the environment only; it opens no socket and touches no journal.
//!
//! The file is parsed by `toml` into a tree, the overrides are laid over it (`overrides.rs`),
//! and the raw structs are read from the tree by a deserializer that names the key of any error
//! (`tree.rs`); both keep what the `config` crate did when the agent used it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netmon_events::envelope::MAX_ECHOES_PER_ROUND;
use netmon_events::{AgentId, LinkRole, ProvinceId, Target};
use netmon_mqtt::BrokerUrl;
use serde::Deserialize;

pub use crate::cellular::settings::{CellularModem, Dialect, Source as CellularSource};
pub use crate::snmp::settings::{
    InterfaceKey, SnmpAuth, SnmpConfig, SnmpCredentials, SnmpDevice, SnmpPrivacy, SnmpVersion,
    WatchedInterface,
};

pub mod check;
mod overrides;
mod tree;
pub(crate) use check::Check;
pub use check::ConfigError;

/// Largest number of targets one agent probes.
pub const MAX_TARGETS: usize = 20_000;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub source: PathBuf,
    pub agent_id: AgentId,
    pub province: ProvinceId,
    pub mqtt: MqttConfig,
    pub probe: ProbeConfig,
    pub heartbeat: HeartbeatConfig,
    pub journal: JournalConfig,
    /// 1..=[`MAX_TARGETS`] targets with distinct addresses.
    pub targets: Vec<Target>,
    /// Devices polled over SNMP (`[snmp]`, `[[snmp.devices]]`); none by default.
    pub snmp: SnmpConfig,
    /// Cellular modems read (`[[cellular]]`, unique names); none by default.
    pub cellular: Vec<CellularModem>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub broker: BrokerUrl,
    /// `Some` exactly when a username was configured; the password may be empty.
    pub credentials: Option<(String, String)>,
    /// Trust anchors for `mqtts`; without it, the operating system's trust store is used.
    pub ca_file: Option<PathBuf>,
    /// The certificate the agent presents to a broker that requires one (`mqtt.client_cert` and
    /// `mqtt.client_key`, `mqtts` only); read and checked when the config is loaded.
    pub client_cert: Option<ClientCertFiles>,
    pub keep_alive: Duration,
    /// `mqtt.alive_every`: a liveness message at this interval while connected (ADR 16), so
    /// that the collector misses a dead uplink in seconds. Off by default.
    pub alive_every: Option<Duration>,
}

impl std::fmt::Debug for MqttConfig {
    /// Like the derived one, with the password left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("broker", &self.broker)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("keep_alive", &self.keep_alive)
            .field("alive_every", &self.alive_every)
            .finish_non_exhaustive()
    }
}

/// A client certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ClientCertFiles {
    pub fn as_client_cert(&self) -> netmon_mqtt::ClientCert<'_> {
        netmon_mqtt::ClientCert {
            cert_file: &self.cert,
            key_file: &self.key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeConfig {
    /// One round per interval.
    pub interval: Duration,
    /// Echoes per target per round.
    pub count: u32,
    /// How long to wait for a reply; at most `interval`.
    pub timeout: Duration,
    /// Consecutive failed rounds before a link is declared down.
    pub down_after: u32,
    /// One `probe_window_completed` per target per this long: a whole number of intervals.
    pub report_every: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    pub interval: Duration,
}

/// Where and how the agent keeps its journal (`docs/adr/0007-agent-journal.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// The journal's directory; one agent per directory (it is locked).
    pub dir: PathBuf,
    /// Bound on the segment files' total size; at least [`crate::journal::MIN_MAX_BYTES`].
    pub max_bytes: u64,
    /// Appended events are fsync'ed at most this often (and at shutdown).
    pub fsync_interval: Duration,
    /// Events per second at most while sending a backlog (on top of live events).
    pub drain_rate: u32,
}

/// Default `probe.report_every`: one summary a minute, as people read latency and loss (ADR 14;
/// SNMP's window is `snmp::settings::DEFAULT_REPORT_EVERY`, 5 minutes).
pub const DEFAULT_REPORT_EVERY: Duration = Duration::from_secs(60);

/// Default `heartbeat.interval`: any event is a sign of life, and the MQTT keep-alive and last
/// will report a dead connection; the heartbeat only fills long quiet stretches (ADR 14).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(300);

/// Default `journal.dir`.
pub const DEFAULT_JOURNAL_DIR: &str = "/var/lib/netmon-agent/journal";

/// Default `journal.max_bytes`: 8 MiB, about 30,000 events, hours of backlog for a few targets.
pub const DEFAULT_JOURNAL_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Largest `journal.max_bytes` (4 GiB).
pub const MAX_JOURNAL_MAX_BYTES: u64 = 1 << 32;

// No `Debug` on the raw sections that hold secrets (or hold sections that do): nothing can
// print a password by accident. The validated types redact theirs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    agent_id: Option<String>,
    province: Option<String>,
    mqtt: Option<RawMqtt>,
    #[serde(default)]
    probe: RawProbe,
    #[serde(default)]
    heartbeat: RawHeartbeat,
    #[serde(default)]
    journal: RawJournal,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    snmp: crate::snmp::settings::RawSnmp,
    #[serde(default)]
    cellular: Vec<crate::cellular::settings::RawModem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    keep_alive: Option<String>,
    alive_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    interval: Option<String>,
    count: Option<i64>,
    timeout: Option<String>,
    down_after: Option<i64>,
    report_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    dir: Option<String>,
    max_bytes: Option<i64>,
    fsync_interval: Option<String>,
    drain_rate: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Option<String>,
    address: Option<String>,
    role: Option<String>,
}

impl Config {
    /// Reads `path` and the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, None)
    }

    /// Reads `path` and, instead of the process environment, `env` when given (for tests: the
    /// process environment is shared by every test thread).
    pub fn load_with_env(
        path: &Path,
        env: Option<HashMap<String, String>>,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let whole = |problem: String| ConfigError {
            file: file.clone(),
            key: "-".into(),
            problem,
        };
        // Read the file ourselves so that "missing" and "unreadable" say so plainly.
        let text = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read: {e}")))?;
        let mut tree: toml::Table =
            toml::from_str(&text).map_err(|e| whole(format!("not valid TOML: {e}")))?;
        let vars: Vec<(String, String)> =
            env.map_or_else(|| std::env::vars().collect(), |m| m.into_iter().collect());
        overrides::apply(&mut tree, vars);
        let raw: RawConfig = tree::read(tree).map_err(|e| ConfigError {
            file,
            key: e.key.unwrap_or_else(|| "-".into()),
            problem: e.problem,
        })?;
        validate(path, raw)
    }
}

fn validate(path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let c = Check { file: &file };
    let agent_id = c.required("agent_id", raw.agent_id)?;
    let agent_id = AgentId::new(agent_id).or_else(|e| c.err("agent_id", e.to_string()))?;
    let province = c.required("province", raw.province)?;
    let province = ProvinceId::new(province).or_else(|e| c.err("province", e.to_string()))?;

    let mqtt = c.required("mqtt", raw.mqtt)?;
    let url = c.required("mqtt.url", mqtt.url)?;
    let broker = BrokerUrl::parse(&url).or_else(|problem| c.err("mqtt.url", problem))?;
    let credentials = match (mqtt.username, mqtt.password) {
        (Some(user), password) => Some((user, password.unwrap_or_default())),
        (None, Some(_)) => return c.err("mqtt.password", "is set but mqtt.username is not"),
        (None, None) => None,
    };
    let ca_file = mqtt.ca_file.map(PathBuf::from);
    if ca_file.is_some() && !broker.tls {
        return c.err("mqtt.ca_file", "is only used with an mqtts:// url");
    }
    let client_cert = validate_client_cert(&c, broker.tls, mqtt.client_cert, mqtt.client_key)?;
    let keep_alive = c.duration(
        "mqtt.keep_alive",
        mqtt.keep_alive,
        Duration::from_secs(5),
        (Duration::from_secs(1), Duration::from_secs(u16::MAX.into())),
    )?;
    let alive_every = match mqtt.alive_every {
        None => None,
        Some(text) => Some(c.duration(
            "mqtt.alive_every",
            Some(text),
            Duration::ZERO,
            (Duration::from_secs(1), Duration::from_secs(60)),
        )?),
    };

    let interval = c.duration(
        "probe.interval",
        raw.probe.interval,
        Duration::from_secs(1),
        (Duration::from_millis(100), Duration::from_secs(3600)),
    )?;
    let count = c.integer(
        "probe.count",
        raw.probe.count,
        3,
        (1, MAX_ECHOES_PER_ROUND.min(100)),
    )?;
    let timeout = c.duration(
        "probe.timeout",
        raw.probe.timeout,
        interval,
        (Duration::from_millis(10), interval),
    )?;
    let down_after = c.integer("probe.down_after", raw.probe.down_after, 3, (1, 1000))?;
    let report_every = c.duration(
        "probe.report_every",
        raw.probe.report_every,
        DEFAULT_REPORT_EVERY,
        (interval, Duration::from_secs(3600)),
    )?;
    c.multiple_of(
        "probe.report_every",
        report_every,
        ("probe.interval", interval),
    )?;
    let heartbeat = c.duration(
        "heartbeat.interval",
        raw.heartbeat.interval,
        DEFAULT_HEARTBEAT,
        (Duration::from_secs(1), Duration::from_secs(3600)),
    )?;

    let journal = validate_journal(&c, raw.journal)?;
    let snmp = crate::snmp::settings::validate(&file, raw.snmp)?;
    let cellular = crate::cellular::settings::validate(&file, raw.cellular)?;

    if raw.targets.is_empty() || raw.targets.len() > MAX_TARGETS {
        return c.err(
            "targets",
            format!(
                "expected 1 to {MAX_TARGETS} [[targets]], got {}",
                raw.targets.len()
            ),
        );
    }
    let mut targets = Vec::with_capacity(raw.targets.len());
    let mut seen: HashMap<IpAddr, usize> = HashMap::with_capacity(raw.targets.len());
    for (i, t) in raw.targets.into_iter().enumerate() {
        let key = |field: &str| format!("targets[{i}].{field}");
        let name = c.required(&key("name"), t.name)?;
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > netmon_events::envelope::MAX_NAME_LEN {
            return c.err(key("name"), "expected 1 to 256 bytes of text");
        }
        if let Some(bad) = name
            .chars()
            .find(|&ch| netmon_events::text::is_forbidden(ch))
        {
            // Every event of the target carries its name: the collector would refuse them all.
            return c.err(
                key("name"),
                format!(
                    "must not contain control, bidirectional or invisible characters (U+{:04X})",
                    u32::from(bad)
                ),
            );
        }
        let address = c.required(&key("address"), t.address)?;
        let Ok(address) = address.trim().parse::<IpAddr>() else {
            return c.err(
                key("address"),
                format!("expected an IPv4 or IPv6 address literal, got {address:?}"),
            );
        };
        if let Some(first) = seen.insert(address, i) {
            return c.err(
                key("address"),
                format!("{address} is already used by targets[{first}]"),
            );
        }
        let role = c.required(&key("role"), t.role)?;
        let role = parse_role(&role).or_else(|p| c.err(key("role"), p))?;
        targets.push(Target {
            name,
            address,
            role,
        });
    }
    Ok(Config {
        source: path.to_owned(),
        agent_id,
        province,
        mqtt: MqttConfig {
            broker,
            credentials,
            ca_file,
            client_cert,
            keep_alive,
            alive_every,
        },
        probe: ProbeConfig {
            interval,
            count,
            timeout,
            down_after,
            report_every,
        },
        heartbeat: HeartbeatConfig {
            interval: heartbeat,
        },
        journal,
        targets,
        snmp,
        cellular,
    })
}

/// `mqtt.client_cert` and `mqtt.client_key`: both or neither, `mqtts` only; the files are read
/// and the key must be the certificate's.
fn validate_client_cert(
    c: &Check<'_>,
    tls: bool,
    cert: Option<String>,
    key: Option<String>,
) -> Result<Option<ClientCertFiles>, ConfigError> {
    let files = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(_), None) => return c.err("mqtt.client_key", "is required with mqtt.client_cert"),
        (None, Some(_)) => return c.err("mqtt.client_cert", "is required with mqtt.client_key"),
        (Some(cert), Some(key)) => ClientCertFiles {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        },
    };
    if !tls {
        return c.err("mqtt.client_cert", "is only used with an mqtts:// url");
    }
    match files.as_client_cert().check() {
        Ok(()) => Ok(Some(files)),
        Err(e) => c.err(format!("mqtt.{}", e.key()), e.problem()),
    }
}

fn validate_journal(c: &Check<'_>, raw: RawJournal) -> Result<JournalConfig, ConfigError> {
    let dir = match raw.dir {
        None => PathBuf::from(DEFAULT_JOURNAL_DIR),
        Some(dir) if dir.trim().is_empty() => {
            return c.err(
                "journal.dir",
                "expected a directory path, got an empty string",
            );
        }
        Some(dir) => PathBuf::from(dir),
    };
    let max_bytes = match raw.max_bytes {
        None => DEFAULT_JOURNAL_MAX_BYTES,
        Some(n) => match u64::try_from(n) {
            Ok(n) if (crate::journal::MIN_MAX_BYTES..=MAX_JOURNAL_MAX_BYTES).contains(&n) => n,
            _ => {
                return c.err(
                    "journal.max_bytes",
                    format!(
                        "expected a number of bytes from {} to {MAX_JOURNAL_MAX_BYTES}, got {n}",
                        crate::journal::MIN_MAX_BYTES
                    ),
                );
            }
        },
    };
    let fsync_interval = c.duration(
        "journal.fsync_interval",
        raw.fsync_interval,
        Duration::from_secs(1),
        (Duration::from_millis(10), Duration::from_secs(3600)),
    )?;
    let drain_rate = c.integer("journal.drain_rate", raw.drain_rate, 200, (1, 1_000_000))?;
    Ok(JournalConfig {
        dir,
        max_bytes,
        fsync_interval,
        drain_rate,
    })
}

fn parse_role(text: &str) -> Result<LinkRole, String> {
    Ok(match text {
        "gateway" => LinkRole::Gateway,
        "commune" => LinkRole::Commune,
        "province" => LinkRole::Province,
        "internet" => LinkRole::Internet,
        "other" => LinkRole::Other,
        _ => {
            return Err(format!(
                "expected one of gateway, commune, province, internet, other; got {text:?}"
            ));
        }
    })
}

/// For the sections' tests: loads a minimal valid configuration followed by `section` (TOML),
/// from a file of its own in the temporary directory, without the process environment.
#[cfg(test)]
pub(crate) fn load_with_section(section: &str) -> Result<Config, ConfigError> {
    load_with_section_and_env(section, &[])
}

/// As [`load_with_section`], with `env` as the environment.
#[cfg(test)]
pub(crate) fn load_with_section_and_env(
    section: &str,
    env: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    const BASE: &str = "agent_id = \"a\"\nprovince = \"p\"\n[mqtt]\nurl = \"mqtt://127.0.0.1\"\n\
                        [[targets]]\nname = \"gw\"\naddress = \"192.0.2.1\"\nrole = \"gateway\"\n";
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("netmon-agent-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| ConfigError {
        file: dir.display().to_string(),
        key: "-".into(),
        problem: e.to_string(),
    })?;
    let path = dir.join(format!("{}.toml", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, format!("{BASE}{section}")).map_err(|e| ConfigError {
        file: path.display().to_string(),
        key: "-".into(),
        problem: e.to_string(),
    })?;
    let env = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let result = Config::load_with_env(&path, Some(env));
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests;
