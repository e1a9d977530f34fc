//! The `[notify]` section (message templates) and `[notify.webhook]`, `[notify.telegram]` and
//! `[notify.email]`: how each channel sends. Who receives what is the inventory's
//! (`[[contacts]]`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::render::Templates;
use crate::config::check::{Check, ConfigError};

/// The validated `[notify]` sections; a channel whose section is absent cannot be used by a
/// contact (the configuration check says so).
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub webhook: Option<WebhookConfig>,
    pub telegram: Option<TelegramConfig>,
    pub email: Option<EmailConfig>,
    /// The message templates: built in, or `notify.templates` (checked at load).
    pub templates: Templates,
}

#[derive(Clone)]
pub struct WebhookConfig {
    /// HMAC-SHA256 key for `X-Netmon-Signature`.
    pub secret: String,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct TelegramConfig {
    /// `https://api.telegram.org` unless a test or a proxy says otherwise.
    pub base_url: String,
    pub bot_token: String,
    pub timeout: Duration,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on localhost).
    None,
}

#[derive(Clone)]
pub struct EmailConfig {
    pub server: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<(String, String)>,
    /// `netmon <netmon@example.vn>`
    pub from: String,
    /// PEM file of extra trust anchors (a province's own CA), else the system store.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

macro_rules! redacted_debug {
    ($($ty:ident: $($field:ident),*;)*) => {$(
        impl std::fmt::Debug for $ty {
            /// Like the derived one, without the secrets.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))$(.field(stringify!($field), &self.$field))*.finish()
            }
        }
    )*};
}

redacted_debug! {
    WebhookConfig: timeout;
    TelegramConfig: base_url, timeout;
    EmailConfig: server, port, security, from, ca_file, timeout;
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    templates: Option<PathBuf>,
    webhook: Option<RawWebhook>,
    telegram: Option<RawTelegram>,
    email: Option<RawEmail>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    secret: Option<String>,
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelegram {
    base_url: Option<String>,
    bot_token: Option<String>,
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    server: Option<String>,
    port: Option<i64>,
    security: Option<String>,
    username: Option<String>,
    password: Option<String>,
    from: Option<String>,
    ca_file: Option<PathBuf>,
    timeout: Option<String>,
}

/// Validates the sections; relative paths are taken from `base` (the config file's directory).
/// Errors name the file of `c` and the key.
pub(crate) fn validate(
    raw: RawNotify,
    base: &Path,
    c: &Check<'_>,
) -> Result<NotifyConfig, ConfigError> {
    let templates = match raw.templates {
        None => Templates::builtin(),
        Some(dir) => Templates::load(&base.join(dir))
            .map_err(|e| c.err("notify.templates", e.to_string()))?,
    };
    let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let webhook = raw
        .webhook
        .map(|w| {
            Ok::<_, ConfigError>(WebhookConfig {
                secret: given(w.secret).ok_or_else(|| {
                    c.err(
                        "notify.webhook.secret",
                        "required: the HMAC key receivers verify X-Netmon-Signature with".into(),
                    )
                })?,
                timeout: timeout(c, "notify.webhook.timeout", w.timeout)?,
            })
        })
        .transpose()?;
    let telegram = raw
        .telegram
        .map(|t| {
            let base_url = t
                .base_url
                .unwrap_or_else(|| "https://api.telegram.org".into())
                .trim_end_matches('/')
                .to_string();
            let rest = base_url
                .strip_prefix("https://")
                .or_else(|| base_url.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
                return Err(c.err(
                    "notify.telegram.base_url",
                    format!("expected http(s)://host[:port][/path], got {base_url:?}"),
                ));
            }
            let bot_token = given(t.bot_token).ok_or_else(|| {
                c.err(
                    "notify.telegram.bot_token",
                    "required: the token @BotFather gave (123456:ABC…)".into(),
                )
            })?;
            if bot_token.contains(['/', '?', '#', ' ']) {
                return Err(c.err(
                    "notify.telegram.bot_token",
                    "expected a token such as 123456:ABC-DEF (no '/', '?', '#' or spaces)".into(),
                ));
            }
            Ok(TelegramConfig {
                base_url,
                bot_token,
                timeout: timeout(c, "notify.telegram.timeout", t.timeout)?,
            })
        })
        .transpose()?;
    let email = raw.email.map(|e| email(e, base, c)).transpose()?;
    Ok(NotifyConfig {
        webhook,
        telegram,
        email,
        templates,
    })
}

fn email(e: RawEmail, base: &Path, c: &Check<'_>) -> Result<EmailConfig, ConfigError> {
    let server = e.server.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        c.err(
            "notify.email.server",
            "required: the SMTP server's host name".into(),
        )
    })?;
    let security = match e.security.as_deref().unwrap_or("starttls") {
        "starttls" => SmtpSecurity::StartTls,
        "tls" => SmtpSecurity::Tls,
        "none" => SmtpSecurity::None,
        other => {
            return Err(c.err(
                "notify.email.security",
                format!("expected \"starttls\", \"tls\" or \"none\", got {other:?}"),
            ));
        }
    };
    let port = match e.port {
        None => match security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        },
        Some(p) => u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
            c.err(
                "notify.email.port",
                format!("expected a port number 1-65535, got {p}"),
            )
        })?,
    };
    let credentials = match (e.username, e.password) {
        (Some(user), password) => Some((user, password.unwrap_or_default())),
        (None, Some(_)) => {
            return Err(c.err(
                "notify.email.password",
                "given without notify.email.username".into(),
            ));
        }
        (None, None) => None,
    };
    let from = e.from.ok_or_else(|| {
        c.err(
            "notify.email.from",
            "required: the sender, such as \"netmon <netmon@example.vn>\"".into(),
        )
    })?;
    if let Err(problem) = from.parse::<lettre::message::Mailbox>() {
        return Err(c.err(
            "notify.email.from",
            format!(
                "expected an address such as \"netmon <netmon@example.vn>\", got {from:?} ({problem})"
            ),
        ));
    }
    let ca_file = match e.ca_file {
        None => None,
        Some(_) if security == SmtpSecurity::None => {
            return Err(c.err(
                "notify.email.ca_file",
                "is only used with security = \"starttls\" or \"tls\"".into(),
            ));
        }
        Some(file) => {
            let file = base.join(file);
            let pem = std::fs::read(&file).map_err(|err| {
                c.err(
                    "notify.email.ca_file",
                    format!("cannot read {}: {err}", file.display()),
                )
            })?;
            lettre::transport::smtp::client::Certificate::from_pem(&pem).map_err(|err| {
                c.err(
                    "notify.email.ca_file",
                    format!("expected PEM certificates in {}: {err}", file.display()),
                )
            })?;
            Some(file)
        }
    };
    Ok(EmailConfig {
        server,
        port,
        security,
        credentials,
        from,
        ca_file,
        timeout: timeout(c, "notify.email.timeout", e.timeout)?,
    })
}

impl NotifyConfig {
    /// The inventory's contacts whose channel has no `[notify.*]` section, as messages for
    /// `check` and the start-up log (not an error: the example configs ship an inventory with
    /// contacts and every channel commented out). Sending to them fails, final.
    pub fn unconfigured_contacts(&self, inventory: &crate::inventory::Inventory) -> Vec<String> {
        use netmon_events::Channel;
        inventory
            .contacts
            .values()
            .filter_map(|contact| {
                let (configured, key) = match contact.channel {
                    Channel::Webhook => (self.webhook.is_some(), "notify.webhook"),
                    Channel::Telegram => (self.telegram.is_some(), "notify.telegram"),
                    Channel::Email => (self.email.is_some(), "notify.email"),
                };
                (!configured).then(|| {
                    format!(
                        "contact {:?} uses channel {}, but there is no [{key}] section",
                        contact.id,
                        contact.channel.as_str()
                    )
                })
            })
            .collect()
    }
}

/// A channel's timeout: default 10 s, between 1 s and 5 min.
fn timeout(c: &Check<'_>, key: &str, text: Option<String>) -> Result<Duration, ConfigError> {
    let Some(text) = text else {
        return Ok(Duration::from_secs(10));
    };
    c.bounded_like(
        key,
        &text,
        "\"10s\"",
        (Duration::from_secs(1), Duration::from_secs(300)),
    )
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
