//! The intake's sections of the configuration: `[mqtt]` (the broker and the collector's
//! session), `[silence]` (when an agent counts as silent) and `[delivery]` (acknowledgements and
//! clock trust).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use netmon_events::ProvinceId;
use netmon_mqtt::{BrokerUrl, ClientCert, tls_config};
use serde::Deserialize;

use crate::config::check::Check;
use crate::config::check::ConfigError;

#[derive(Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// `Some` for `mqtts://`: the rustls configuration to connect with.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub client_id: String,
    /// Take only this province's topics; `None` takes all provinces.
    pub province: Option<ProvinceId>,
    pub credentials: Option<(String, String)>,
    pub keep_alive: Duration,
}

impl std::fmt::Debug for MqttConfig {
    /// Like the derived one, with the password left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("client_id", &self.client_id)
            .field("province", &self.province)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct SilenceConfig {
    /// An online agent with no event for this long is declared silent.
    pub after: Duration,
    /// … or once quiet for this many of its usual gaps between messages (0 = off),
    pub missed: f64,
    /// … but not before this long.
    pub min_quiet: Duration,
}

/// Acknowledged delivery and clock trust (`[delivery]`).
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// An event received more than this after its (corrected) time is marked late.
    pub late_after: Duration,
    /// An agent wall time further than this from the monotonic estimate is corrected.
    pub clock_tolerance: Duration,
    /// At most one retained acknowledgement per agent in this interval.
    pub ack_interval: Duration,
    /// At most this many retained acknowledgements a second for the whole fleet.
    pub max_acks_per_s: u32,
}

impl DeliveryConfig {
    /// The clock settings as the pure clock module takes them.
    pub fn policy(&self) -> crate::intake::clock::ClockPolicy {
        let delta = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        crate::intake::clock::ClockPolicy {
            tolerance: delta(self.clock_tolerance),
            late_after: delta(self.late_after),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDelivery {
    #[serde(default = "default_late_after")]
    late_after: String,
    #[serde(default = "default_clock_tolerance")]
    clock_tolerance: String,
    #[serde(default = "default_ack_interval")]
    ack_interval: String,
    max_acks_per_s: Option<f64>,
}

impl Default for RawDelivery {
    fn default() -> Self {
        Self {
            late_after: default_late_after(),
            clock_tolerance: default_clock_tolerance(),
            ack_interval: default_ack_interval(),
            max_acks_per_s: None,
        }
    }
}

fn default_late_after() -> String {
    "2m".into()
}
fn default_clock_tolerance() -> String {
    "30s".into()
}
fn default_ack_interval() -> String {
    "1s".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMqtt {
    url: String,
    #[serde(default = "default_client_id")]
    client_id: String,
    province: Option<String>,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    #[serde(default = "default_keep_alive")]
    keep_alive: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSilence {
    #[serde(default = "default_silence_after")]
    after: String,
    missed: Option<f64>,
    min_quiet: Option<String>,
}

impl Default for RawSilence {
    fn default() -> Self {
        Self {
            after: default_silence_after(),
            missed: None,
            min_quiet: None,
        }
    }
}

fn default_client_id() -> String {
    "netmon-collector".into()
}
/// Long enough that pings and acknowledgements queued behind a flood of incoming events do not
/// time the connection out (rumqttc sends nothing until it has handed on what it has read; with
/// 5 s a collector behind 100,000 agents was disconnected every ~10 s, `docs/benchmarks.md`).
/// The collector's session is persistent, so the keep-alive only bounds how soon a silently dead
/// broker link is noticed; a restarted broker closes the connection at once.
fn default_keep_alive() -> String {
    "30s".into()
}
/// Above 3 × the agents' heartbeat interval (5 min): an agent with nothing else to send is not
/// declared silent between heartbeats. An agent that probes is missed much sooner by its cadence
/// (`silence.missed` × its usual gap, a report window), and a dead connection by its last will.
fn default_silence_after() -> String {
    "16m".into()
}

/// Validates `[mqtt]`; reads the CA and client certificate files of an `mqtts://` url.
pub(crate) fn mqtt(raw: RawMqtt, c: &Check) -> Result<MqttConfig, ConfigError> {
    let BrokerUrl { tls, host, port } =
        BrokerUrl::parse(&raw.url).map_err(|p| c.err("mqtt.url", p))?;
    let client_cert = match (&raw.client_cert, &raw.client_key) {
        (Some(cert_file), Some(key_file)) => Some(ClientCert {
            cert_file,
            key_file,
        }),
        (Some(_), None) => {
            return Err(c.err(
                "mqtt.client_key",
                "is required with mqtt.client_cert".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(c.err(
                "mqtt.client_cert",
                "is required with mqtt.client_key".into(),
            ));
        }
        (None, None) => None,
    };
    let tls = if tls {
        // Trust anchors from `mqtt.ca_file`, else the system store; the client certificate for
        // a broker that requires one (`require_certificate true`).
        let config = tls_config(raw.ca_file.as_deref(), client_cert)
            .map_err(|e| c.err(&format!("mqtt.{}", e.key()), e.problem().to_owned()))?;
        Some(config)
    } else {
        for (key, set) in [
            ("mqtt.ca_file", raw.ca_file.is_some()),
            ("mqtt.client_cert", client_cert.is_some()),
        ] {
            if set {
                return Err(c.err(key, "is only used with an mqtts:// url".into()));
            }
        }
        None
    };
    let client_id = raw.client_id;
    if client_id.is_empty() || client_id.len() > 128 || client_id.chars().any(char::is_control) {
        return Err(c.err(
            "mqtt.client_id",
            format!("expected 1-128 printable characters, got {client_id:?}"),
        ));
    }
    let province = raw
        .province
        .map(ProvinceId::new)
        .transpose()
        .map_err(|e| c.err("mqtt.province", e.to_string()))?;
    let credentials = match (raw.username, raw.password) {
        (Some(user), password) => Some((user, password.unwrap_or_default())),
        (None, Some(_)) => {
            return Err(c.err("mqtt.password", "given without mqtt.username".into()));
        }
        (None, None) => None,
    };
    let keep_alive = c.duration("mqtt.keep_alive", &raw.keep_alive)?;
    if keep_alive.subsec_nanos() != 0 || !(1..=65_535).contains(&keep_alive.as_secs()) {
        return Err(c.err(
            "mqtt.keep_alive",
            "expected whole seconds between 1s and 65535s".into(),
        ));
    }
    Ok(MqttConfig {
        host,
        port,
        tls,
        client_id,
        province,
        credentials,
        keep_alive,
    })
}

/// Validates `[delivery]`.
pub(crate) fn delivery(d: &RawDelivery, c: &Check) -> Result<DeliveryConfig, ConfigError> {
    let day = Duration::from_secs(86_400);
    Ok(DeliveryConfig {
        late_after: c.bounded(
            "delivery.late_after",
            &d.late_after,
            (Duration::from_secs(1), day),
        )?,
        clock_tolerance: c.bounded(
            "delivery.clock_tolerance",
            &d.clock_tolerance,
            (Duration::from_secs(1), day),
        )?,
        ack_interval: c.bounded(
            "delivery.ack_interval",
            &d.ack_interval,
            (Duration::from_millis(10), Duration::from_secs(600)),
        )?,
        max_acks_per_s: acks_per_s(d.max_acks_per_s, c)?,
    })
}

/// Default of `delivery.max_acks_per_s`: a province's agents at the shipped one message a
/// minute need ~100 a second; a country's, ~1,700, and are then each acknowledged every ~100 s.
pub const DEFAULT_MAX_ACKS_PER_S: u32 = 1000;

/// `delivery.max_acks_per_s`: a whole number of acknowledgements, 1 to 1,000,000.
fn acks_per_s(value: Option<f64>, c: &Check) -> Result<u32, ConfigError> {
    const KEY: &str = "delivery.max_acks_per_s";
    let value = c.positive(KEY, value, f64::from(DEFAULT_MAX_ACKS_PER_S), 1_000_000.0)?;
    if value.fract() != 0.0 {
        return Err(c.err(KEY, format!("expected a whole number, got {value}")));
    }
    // A whole number in (0, 1,000,000]: exact as u32.
    Ok(value as u32)
}

/// Validates `[silence]`.
pub(crate) fn silence(raw: &RawSilence, c: &Check) -> Result<SilenceConfig, ConfigError> {
    let after = c.duration("silence.after", &raw.after)?;
    if after < Duration::from_secs(1) {
        return Err(c.err("silence.after", "expected at least 1s".into()));
    }
    let missed = raw.missed.unwrap_or(4.0);
    if !(missed == 0.0 || (2.0..=1000.0).contains(&missed)) {
        return Err(c.err(
            "silence.missed",
            format!("expected 0 (off) or 2 to 1000 usual gaps, got {missed}"),
        ));
    }
    let min_quiet = match &raw.min_quiet {
        Some(text) => c.duration("silence.min_quiet", text)?,
        None => Duration::from_secs(4),
    };
    if min_quiet < Duration::from_secs(1) {
        return Err(c.err("silence.min_quiet", "expected at least 1s".into()));
    }
    Ok(SilenceConfig {
        after,
        missed,
        min_quiet,
    })
}
