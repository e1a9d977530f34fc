//! Sending notifications: one sender per channel, chosen by the message's channel.
//!
//! - [`webhook`]: JSON POST signed with HMAC-SHA256 (`X-Netmon-Signature`);
//! - [`telegram`]: the Bot API's `sendMessage` (base URL configurable);
//! - [`email`]: SMTP with lettre (STARTTLS, TLS or plain);
//! - [`render`] (pure): templates (files a province can edit) → subject and text, in the little
//!   language of [`template`], with times, durations and values worded by [`units`];
//! - [`view`]: what a template sees of one alert;
//! - [`config`]: the `[notify]` section (channels, contacts, templates directory).
//!
//! The outbox (what to send, retries, never twice) is the alert book's; this module only sends.
//! Every sender passes the notification id on (`X-Netmon-Notification`, the e-mail's
//! `Message-ID`) so that a receiver can recognise a resend after a crash between "sent" and
//! "recorded as sent".

pub mod config;
pub mod email;
pub mod render;
pub mod telegram;
pub mod template;
pub mod units;
pub mod view;
pub mod webhook;
pub use config::{EmailConfig, NotifyConfig, SmtpSecurity, TelegramConfig, WebhookConfig};

use anyhow::Context;
use netmon_events::{Channel, Message};

/// A failed attempt. `retryable` is false when trying again cannot help (a 4xx other than 408
/// and 429, a refused recipient, a channel that is not configured).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub retryable: bool,
    pub message: String,
}

impl SendError {
    /// Trying again later may succeed (a timeout, a 5xx, a 4xx SMTP reply).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }

    /// Trying again cannot help.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }
}

/// The configured channels, ready to send.
#[derive(Debug, Clone)]
pub struct Senders {
    config: NotifyConfig,
    webhook: Option<webhook::Webhook>,
    telegram: Option<telegram::Telegram>,
    email: Option<email::Email>,
}

impl Senders {
    /// Builds the HTTP client and the SMTP transport of every configured channel.
    pub fn new(config: NotifyConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("netmon-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the notification HTTP client")?;
        let webhook = config
            .webhook
            .clone()
            .map(|c| webhook::Webhook::new(c, http.clone()));
        let telegram = config
            .telegram
            .clone()
            .map(|c| telegram::Telegram::new(c, http.clone()));
        let email = config
            .email
            .clone()
            .map(email::Email::new)
            .transpose()
            .context("preparing the SMTP transport of [notify.email]")?;
        Ok(Self {
            config,
            webhook,
            telegram,
            email,
        })
    }

    /// The configuration the senders were built from (templates included).
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// Sends notification `id` to `to` (an e-mail address, a Telegram chat id, a webhook URL).
    pub async fn send(&self, id: u64, to: &str, message: &Message) -> Result<(), SendError> {
        let missing = |section: &str| {
            SendError::permanent(format!(
                "channel {} is not configured (no [{section}] section)",
                message.channel.as_str()
            ))
        };
        match message.channel {
            Channel::Webhook => match &self.webhook {
                Some(w) => w.send(id, to, message).await,
                None => Err(missing("notify.webhook")),
            },
            Channel::Telegram => match &self.telegram {
                Some(t) => t.send(to, message).await,
                None => Err(missing("notify.telegram")),
            },
            Channel::Email => match &self.email {
                Some(e) => e.send(id, to, message).await,
                None => Err(missing("notify.email")),
            },
        }
    }
}

/// Whether an HTTP status is worth retrying: 408, 429 and 5xx.
pub(crate) fn retryable_status(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// The first `max` characters of a response body, for error messages.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
