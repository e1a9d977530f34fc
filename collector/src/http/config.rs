//! The HTTP API's section of the configuration, `[http]`: where it listens, its tokens, its
//! timeouts and connection limit.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::config::check::Check;
use crate::config::check::ConfigError;

#[derive(Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Bearer token required by the API's POST routes (acknowledge, silence); without one they
    /// are refused.
    pub token: Option<String>,
    /// `http.read_token`: when set, the `GET /api/v1/…` routes need it (or `token`); `/healthz`
    /// stays open. `None` leaves the reads open, as before.
    pub read_token: Option<String>,
    /// A connection must finish sending a request's headers within this (and an idle
    /// keep-alive connection is closed after it).
    pub header_timeout: Duration,
    /// A request (its body read and its answer made) must be done within this, else 408.
    pub request_timeout: Duration,
    /// Connections served at once; further ones are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl std::fmt::Debug for HttpConfig {
    /// Like the derived one, saying only whether each token is set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("read_token", &self.read_token.as_ref().map(|_| "<set>"))
            .field("header_timeout", &self.header_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    #[serde(default = "default_listen")]
    listen: String,
    token: Option<String>,
    read_token: Option<String>,
    header_timeout: Option<String>,
    request_timeout: Option<String>,
    max_connections: Option<u32>,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            token: None,
            read_token: None,
            header_timeout: None,
            request_timeout: None,
            max_connections: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// Validates `[http]`.
pub(crate) fn validate(raw: RawHttp, c: &Check) -> Result<HttpConfig, ConfigError> {
    let listen = raw.listen.parse::<SocketAddr>().map_err(|_| {
        c.err(
            "http.listen",
            format!(
                "expected an address and port such as 127.0.0.1:8080, got {:?}",
                raw.listen
            ),
        )
    })?;
    let secret = |key: &str, token: Option<String>| match token {
        Some(token)
            if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(c.err(
                key,
                "expected at least 16 characters without spaces (e.g. `openssl rand -hex 24`)"
                    .into(),
            ))
        }
        token => Ok(token),
    };
    let token = secret("http.token", raw.token)?;
    let read_token = secret("http.read_token", raw.read_token)?;
    let header_timeout = c.bounded(
        "http.header_timeout",
        raw.header_timeout.as_deref().unwrap_or("5s"),
        (Duration::from_secs(1), Duration::from_secs(60)),
    )?;
    let request_timeout = c.bounded(
        "http.request_timeout",
        raw.request_timeout.as_deref().unwrap_or("10s"),
        (Duration::from_secs(1), Duration::from_secs(300)),
    )?;
    let max_connections = raw.max_connections.unwrap_or(256);
    if !(1..=16_384).contains(&max_connections) {
        return Err(c.err(
            "http.max_connections",
            format!("expected 1 to 16384 connections, got {max_connections}"),
        ));
    }
    Ok(HttpConfig {
        listen,
        token,
        read_token,
        header_timeout,
        request_timeout,
        max_connections: max_connections as usize,
    })
}
