//! The optional `[influx]` section: where the InfluxDB projection writes (InfluxDB 1.x/2.x/3.x or
//! VictoriaMetrics, line protocol over HTTP).

use std::time::Duration;

use serde::Deserialize;

use crate::config::check::{Check, ConfigError};

/// Which write endpoint the server speaks.
#[derive(Clone, PartialEq, Eq)]
pub enum InfluxApi {
    /// `/api/v2/write?org=&bucket=&precision=ms`, `Authorization: Token …` when a token is set.
    V2 {
        org: String,
        bucket: String,
        token: Option<String>,
    },
    /// `/write?db=&rp=&precision=ms`, with `u`/`p` when a username is set.
    V1 {
        database: String,
        retention_policy: Option<String>,
        credentials: Option<(String, String)>,
    },
}

impl std::fmt::Debug for InfluxApi {
    /// Without the token and the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InfluxApi::V2 { org, bucket, .. } => f
                .debug_struct("V2")
                .field("org", org)
                .field("bucket", bucket)
                .finish_non_exhaustive(),
            InfluxApi::V1 {
                database,
                retention_policy,
                credentials,
            } => f
                .debug_struct("V1")
                .field("database", database)
                .field("retention_policy", retention_policy)
                .field("username", &credentials.as_ref().map(|(user, _)| user))
                .finish_non_exhaustive(),
        }
    }
}

/// The validated `[influx]` section.
#[derive(Clone, PartialEq, Eq)]
pub struct InfluxConfig {
    /// The server's base URL (`http://127.0.0.1:8086`), without a trailing slash.
    pub url: String,
    pub api: InfluxApi,
    /// At most this many points per request.
    pub batch_points: usize,
    /// A partial batch is sent after this long.
    pub flush_interval: Duration,
    /// Gzip the request body.
    pub gzip: bool,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl std::fmt::Debug for InfluxConfig {
    /// Like the derived one, without the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let api = match &self.api {
            InfluxApi::V2 { org, bucket, .. } => format!("v2 org={org} bucket={bucket}"),
            InfluxApi::V1 { database, .. } => format!("v1 database={database}"),
        };
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("api", &api)
            .field("batch_points", &self.batch_points)
            .field("flush_interval", &self.flush_interval)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInflux {
    url: String,
    #[serde(default = "default_api")]
    api: String,
    org: Option<String>,
    bucket: Option<String>,
    token: Option<String>,
    database: Option<String>,
    retention_policy: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(default = "default_batch_points")]
    batch_points: i64,
    #[serde(default = "default_flush_interval")]
    flush_interval: String,
    #[serde(default = "default_gzip")]
    gzip: bool,
    #[serde(default = "default_timeout")]
    timeout: String,
}

fn default_api() -> String {
    "v2".into()
}
fn default_batch_points() -> i64 {
    5000
}
fn default_flush_interval() -> String {
    "1s".into()
}
fn default_gzip() -> bool {
    true
}
fn default_timeout() -> String {
    "10s".into()
}

/// Validates the section; errors name the file of `c` and the key.
pub(crate) fn validate(raw: RawInflux, c: &Check<'_>) -> Result<InfluxConfig, ConfigError> {
    let url = raw.url.trim_end_matches('/').to_string();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
        return Err(c.err(
            "influx.url",
            format!(
                "expected http(s)://host[:port][/path] such as http://127.0.0.1:8086, got {:?}",
                raw.url
            ),
        ));
    }
    // Credentials in the URL would be logged with it and sent as Basic auth behind the
    // operator's back: they belong in `token` or `username`/`password`.
    if rest.is_some_and(|r| r.split('/').next().is_some_and(|host| host.contains('@'))) {
        return Err(c.err(
            "influx.url",
            "must not hold credentials (user:password@): set influx.token, or influx.username \
             and influx.password"
                .into(),
        ));
    }
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    let api = match raw.api.as_str() {
        "v2" => InfluxApi::V2 {
            org: given(raw.org)
                .ok_or_else(|| c.err("influx.org", "required with api = \"v2\"".into()))?,
            bucket: given(raw.bucket)
                .ok_or_else(|| c.err("influx.bucket", "required with api = \"v2\"".into()))?,
            token: given(raw.token),
        },
        "v1" => InfluxApi::V1 {
            database: given(raw.database)
                .ok_or_else(|| c.err("influx.database", "required with api = \"v1\"".into()))?,
            retention_policy: given(raw.retention_policy),
            credentials: match (given(raw.username), raw.password) {
                (Some(user), password) => Some((user, password.unwrap_or_default())),
                (None, Some(_)) => {
                    return Err(c.err("influx.password", "given without influx.username".into()));
                }
                (None, None) => None,
            },
        },
        other => {
            return Err(c.err(
                "influx.api",
                format!("expected \"v1\" or \"v2\", got {other:?}"),
            ));
        }
    };
    let batch_points = usize::try_from(raw.batch_points)
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .ok_or_else(|| {
            c.err(
                "influx.batch_points",
                format!("expected 1 to 1000000, got {}", raw.batch_points),
            )
        })?;
    Ok(InfluxConfig {
        url,
        api,
        batch_points,
        flush_interval: c.bounded_like(
            "influx.flush_interval",
            &raw.flush_interval,
            "\"1s\"",
            (Duration::from_millis(10), Duration::from_secs(3600)),
        )?,
        gzip: raw.gzip,
        timeout: c.bounded_like(
            "influx.timeout",
            &raw.timeout,
            "\"1s\"",
            (Duration::from_millis(100), Duration::from_secs(600)),
        )?,
    })
}
