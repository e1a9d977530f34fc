//! The `[snmp]` section of the agent's configuration: the raw TOML shape and its validation into
//! [`SnmpConfig`] (called from [`crate::config`], whose [`ConfigError`] names file and key).
//!
//! ```toml
//! [snmp]
//! interval = "10s"          # default poll interval of every device
//! timeout = "2s"            # per request
//! retries = 2               # per request, after the first attempt, with back-off
//! max_repetitions = 10      # GetBulk max-repetitions
//! report_every = "5m"       # one interface_counters_sampled per interface per window
//!
//! [[snmp.devices]]
//! address = "192.168.1.1"   # IP literal, optional :port (161)
//! version = "2c"            # "1", "2c" or "3"
//! community = "public"      # v1/v2c
//! # v3: user, auth_protocol (md5, sha1, sha224, sha256, sha384, sha512), auth_password,
//! #     priv_protocol (des, aes128, aes192, aes256), priv_password
//! interval = "30s"          # this device's poll interval
//! [[snmp.devices.interfaces]]   # none = every interface
//! name = "wan"              # ifName or ifDescr; or index = 2
//! capacity_bps = 50000000   # the link's real capacity, overriding ifHighSpeed/ifSpeed
//! ```

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use crate::config::check::{Check, ConfigError};

/// Default `snmp.report_every`: the 5-minute step of interface graphs (MRTG, Cacti, LibreNMS),
/// with the peak utilisation of the window's polls kept (ADR 14). Polls stay at `snmp.interval`.
pub const DEFAULT_REPORT_EVERY: Duration = Duration::from_secs(300);

/// Largest number of devices one agent polls.
pub const MAX_DEVICES: usize = 256;

/// The validated `[snmp]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnmpConfig {
    pub devices: Vec<SnmpDevice>,
    /// How long one request waits for its answer.
    pub timeout: Duration,
    /// Further attempts of a request that timed out (each on a new session).
    pub retries: u32,
    /// GetBulk max-repetitions.
    pub max_repetitions: u32,
    /// One `interface_counters_sampled` per interface per this long, with the rates over the
    /// polls of the window; at least `snmp.interval` (each device's own is in [`SnmpDevice`]).
    pub report_every: Duration,
}

/// One device to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnmpDevice {
    /// As configured; events name the device by it.
    pub address: String,
    pub socket: SocketAddr,
    pub version: SnmpVersion,
    pub credentials: SnmpCredentials,
    /// Empty: every interface.
    pub interfaces: Vec<WatchedInterface>,
    pub interval: Duration,
    /// `snmp.report_every`, or `interval` when the device is polled less often than that (it
    /// then reports at every poll).
    pub report_every: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpVersion {
    V1,
    V2c,
    V3,
}

#[derive(Clone, PartialEq, Eq)]
pub enum SnmpCredentials {
    Community(String),
    /// USM user; authentication and privacy are optional (noAuthNoPriv … authPriv).
    User {
        name: String,
        auth: Option<(SnmpAuth, String)>,
        privacy: Option<(SnmpPrivacy, String)>,
    },
}

impl std::fmt::Debug for SnmpCredentials {
    /// The user and protocols, never the community or the passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnmpCredentials::Community(_) => f.write_str("Community(<redacted>)"),
            SnmpCredentials::User {
                name,
                auth,
                privacy,
            } => f
                .debug_struct("User")
                .field("name", name)
                .field("auth", &auth.as_ref().map(|(protocol, _)| protocol))
                .field("privacy", &privacy.as_ref().map(|(protocol, _)| protocol))
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpAuth {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpPrivacy {
    Des,
    Aes128,
    Aes192,
    Aes256,
}

/// An interface the operator asked for, by `ifIndex` or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceKey {
    Index(u32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedInterface {
    pub key: InterfaceKey,
    /// The link's real capacity in bit/s, when it is less than the port's speed.
    pub capacity_bps: Option<u64>,
}

// No `Debug` on the raw sections that hold secrets (or hold sections that do): nothing can
// print a community or a password by accident.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnmp {
    interval: Option<String>,
    timeout: Option<String>,
    retries: Option<i64>,
    max_repetitions: Option<i64>,
    report_every: Option<String>,
    #[serde(default)]
    devices: Vec<RawDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    address: Option<String>,
    version: Option<String>,
    community: Option<String>,
    user: Option<String>,
    auth_protocol: Option<String>,
    auth_password: Option<String>,
    priv_protocol: Option<String>,
    priv_password: Option<String>,
    interval: Option<String>,
    #[serde(default)]
    interfaces: Vec<RawInterface>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: Option<String>,
    index: Option<i64>,
    capacity_bps: Option<i64>,
}

impl Check<'_> {
    pub(crate) fn text(&self, key: &str, value: Option<String>) -> Result<String, ConfigError> {
        match value {
            None => self.err(key, "is required"),
            Some(v) if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) => self
                .err(
                    key,
                    "expected 1 to 256 bytes of text without control characters",
                ),
            Some(v) => Ok(v),
        }
    }
}

/// Validates `[snmp]` of `file`.
pub(crate) fn validate(file: &str, raw: RawSnmp) -> Result<SnmpConfig, ConfigError> {
    let c = Check { file };
    let interval = c.duration(
        "snmp.interval",
        raw.interval,
        Duration::from_secs(10),
        (Duration::from_secs(1), Duration::from_secs(3600)),
    )?;
    let timeout = c.duration(
        "snmp.timeout",
        raw.timeout,
        Duration::from_secs(2),
        (Duration::from_millis(50), Duration::from_secs(60)),
    )?;
    let retries = c.integer("snmp.retries", raw.retries, 2, (0, 10))?;
    let max_repetitions = c.integer("snmp.max_repetitions", raw.max_repetitions, 10, (1, 100))?;
    // Unset, it is five minutes, or snmp.interval when that is longer.
    let report_every = c.duration(
        "snmp.report_every",
        raw.report_every,
        DEFAULT_REPORT_EVERY.max(interval),
        (Duration::from_secs(1), Duration::from_secs(3600)),
    )?;
    if report_every < interval {
        return c.err(
            "snmp.report_every",
            format!(
                "expected at least snmp.interval ({}), got {}",
                humantime::format_duration(interval),
                humantime::format_duration(report_every)
            ),
        );
    }
    if raw.devices.len() > MAX_DEVICES {
        return c.err(
            "snmp.devices",
            format!(
                "expected at most {MAX_DEVICES} devices, got {}",
                raw.devices.len()
            ),
        );
    }
    let mut devices = Vec::with_capacity(raw.devices.len());
    let mut seen = HashSet::new();
    for (i, d) in raw.devices.into_iter().enumerate() {
        let key = |field: &str| format!("snmp.devices[{i}].{field}");
        let address = c.text(&key("address"), d.address)?.trim().to_owned();
        let Some(socket) = socket_addr(&address) else {
            return c.err(
                key("address"),
                format!("expected an IP address with an optional port (192.0.2.1, 192.0.2.1:161, [2001:db8::1]:161), got {address:?}"),
            );
        };
        // Events name a device by its address as written, so that must be unique (the same
        // socket under two spellings is allowed: v2c and v3 side by side, say).
        if !seen.insert(address.clone()) {
            return c.err(
                key("address"),
                format!("{address:?} is already used by another device"),
            );
        }
        let version = match d.version.as_deref().map(str::trim) {
            None | Some("2c" | "v2c") => SnmpVersion::V2c,
            Some("1" | "v1") => SnmpVersion::V1,
            Some("3" | "v3") => SnmpVersion::V3,
            Some(other) => {
                return c.err(
                    key("version"),
                    format!("expected \"1\", \"2c\" or \"3\", got {other:?}"),
                );
            }
        };
        let credentials = if version == SnmpVersion::V3 {
            if d.community.is_some() {
                return c.err(
                    key("community"),
                    "is for versions 1 and 2c; version 3 uses user",
                );
            }
            if !cfg!(feature = "snmp-v3") {
                return c.err(
                    key("version"),
                    "this build has no SNMPv3 (cargo feature snmp-v3)",
                );
            }
            let name = c.text(&key("user"), d.user)?;
            let auth = match (d.auth_protocol, d.auth_password) {
                (None, None) => None,
                (Some(p), Some(pw)) => {
                    let protocol = parse_auth(&p).or_else(|e| c.err(key("auth_protocol"), e))?;
                    if pw.len() < 8 {
                        return c.err(
                            key("auth_password"),
                            "expected at least 8 characters (RFC 3414)",
                        );
                    }
                    Some((protocol, pw))
                }
                (Some(_), None) => {
                    return c.err(key("auth_password"), "is required with auth_protocol");
                }
                (None, Some(_)) => {
                    return c.err(key("auth_protocol"), "is required with auth_password");
                }
            };
            let privacy = match (d.priv_protocol, d.priv_password) {
                (None, None) => None,
                (Some(_), _) | (_, Some(_)) if auth.is_none() => {
                    return c.err(
                        key("priv_protocol"),
                        "privacy needs authentication (auth_protocol, auth_password)",
                    );
                }
                (Some(p), Some(pw)) => {
                    let protocol = parse_priv(&p).or_else(|e| c.err(key("priv_protocol"), e))?;
                    if pw.len() < 8 {
                        return c.err(
                            key("priv_password"),
                            "expected at least 8 characters (RFC 3414)",
                        );
                    }
                    Some((protocol, pw))
                }
                (Some(_), None) => {
                    return c.err(key("priv_password"), "is required with priv_protocol");
                }
                (None, Some(_)) => {
                    return c.err(key("priv_protocol"), "is required with priv_password");
                }
            };
            SnmpCredentials::User {
                name,
                auth,
                privacy,
            }
        } else {
            if d.user.is_some() || d.auth_protocol.is_some() || d.priv_protocol.is_some() {
                return c.err(
                    key("user"),
                    "is for version 3; versions 1 and 2c use community",
                );
            }
            SnmpCredentials::Community(c.text(&key("community"), d.community)?)
        };
        let device_interval = c.duration(
            &key("interval"),
            d.interval,
            interval,
            (Duration::from_secs(1), Duration::from_secs(3600)),
        )?;
        let mut interfaces = Vec::with_capacity(d.interfaces.len());
        for (j, w) in d.interfaces.into_iter().enumerate() {
            let key = |field: &str| format!("snmp.devices[{i}].interfaces[{j}].{field}");
            let ikey = match (w.name, w.index) {
                (Some(name), None) => InterfaceKey::Name(c.text(&key("name"), Some(name))?),
                (None, Some(index)) => match u32::try_from(index) {
                    Ok(index) if index > 0 => InterfaceKey::Index(index),
                    _ => {
                        return c.err(
                            key("index"),
                            format!("expected an ifIndex from 1 to {}, got {index}", u32::MAX),
                        );
                    }
                },
                _ => {
                    return c.err(
                        key("name"),
                        "expected exactly one of name (ifName) or index (ifIndex)",
                    );
                }
            };
            let capacity_bps = match w.capacity_bps {
                None => None,
                Some(n) if n > 0 => Some(n.unsigned_abs()),
                Some(n) => {
                    return c.err(
                        key("capacity_bps"),
                        format!("expected a positive number of bit/s, got {n}"),
                    );
                }
            };
            interfaces.push(WatchedInterface {
                key: ikey,
                capacity_bps,
            });
        }
        devices.push(SnmpDevice {
            address,
            socket,
            version,
            credentials,
            interfaces,
            interval: device_interval,
            report_every: report_every.max(device_interval),
        });
    }
    Ok(SnmpConfig {
        devices,
        timeout,
        retries,
        max_repetitions,
        report_every,
    })
}

/// `192.0.2.1`, `192.0.2.1:1161`, `2001:db8::1`, `[2001:db8::1]:1161`.
fn socket_addr(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 161));
    }
    text.parse::<SocketAddr>().ok().filter(|s| s.port() != 0)
}

fn parse_auth(text: &str) -> Result<SnmpAuth, String> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "md5" => SnmpAuth::Md5,
        "sha" | "sha1" => SnmpAuth::Sha1,
        "sha224" => SnmpAuth::Sha224,
        "sha256" => SnmpAuth::Sha256,
        "sha384" => SnmpAuth::Sha384,
        "sha512" => SnmpAuth::Sha512,
        _ => {
            return Err(format!(
                "expected one of md5, sha1, sha224, sha256, sha384, sha512; got {text:?}"
            ));
        }
    })
}

fn parse_priv(text: &str) -> Result<SnmpPrivacy, String> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "des" => SnmpPrivacy::Des,
        "aes" | "aes128" => SnmpPrivacy::Aes128,
        "aes192" => SnmpPrivacy::Aes192,
        "aes256" => SnmpPrivacy::Aes256,
        _ => {
            return Err(format!(
                "expected one of des, aes128, aes192, aes256; got {text:?}"
            ));
        }
    })
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
