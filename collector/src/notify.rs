//! Sending notifications: one sender per channel, chosen by the message's channel.
//!
//! - [`webhook`]: JSON POST signed with HMAC-SHA256 (`X-Netmon-Signature`);
//! - [`telegram`]: the Bot API's `sendMessage` (base URL configurable);
//! - [`email`]: SMTP with lettre (STARTTLS, TLS or plain);
//! - [`render`] (pure): templates (files a province can edit) → subject and text;
//! - [`view`]: what a template sees of one alert.
//!
//! The outbox (what to send, retries, never twice) is the alert book's; this module only sends.

pub mod email;
pub mod render;
pub mod telegram;
pub mod view;
pub mod webhook;

use netmon_events::Message;

use crate::config::NotifyConfig;

/// A failed attempt. `retryable` is false when trying again cannot help (a 4xx other than 408
/// and 429, a refused recipient, a channel that is not configured).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub retryable: bool,
    pub message: String,
}

/// The configured channels, ready to send.
#[derive(Debug, Clone)]
pub struct Senders {
    config: NotifyConfig,
}

impl Senders {
    pub fn new(config: NotifyConfig) -> anyhow::Result<Self> {
        Ok(Self { config })
    }

    /// Sends notification `id` to `to` (an e-mail address, a Telegram chat id, a webhook URL).
    pub async fn send(&self, id: u64, to: &str, message: &Message) -> Result<(), SendError> {
        let _ = (id, to, message, &self.config);
        Err(SendError {
            retryable: false,
            message: "not implemented".into(),
        })
    }
}
