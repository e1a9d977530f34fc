//! The webhook channel: one JSON POST per notification to the contact's URL, signed with
//! HMAC-SHA256 so the receiver (a Zalo OA or SMS gateway bridge, Node-RED, a script) can trust it.
//!
//! The body (documented in `docs/notifications.md`):
//!
//! ```json
//! {"notification": 42, "contact": "camtu-it", "channel": "webhook", "lang": "vi",
//!  "subject": "🔴 Cảnh báo: Mất kết nối — UBND xã Cẩm Tú", "text": "🔴 MẤT KẾT NỐI — …",
//!  "alerts": [{"alert": 7, "notice": "opened"}]}
//! ```
//!
//! Headers: `Content-Type: application/json`, `X-Netmon-Notification: <id>` (the same on every
//! attempt: receivers de-duplicate on it), `X-Netmon-Timestamp: <unix seconds>` and
//! `X-Netmon-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
//! A 2xx answer is success; 408, 429, 5xx, a timeout or a network error may be retried; any
//! other answer is final.

use hmac::{Hmac, Mac};
use netmon_events::{Channel, Message, NoticeOf};
use serde::Serialize;
use sha2::Sha256;
use tracing::debug;

use super::config::WebhookConfig;
use super::{SendError, excerpt, retryable_status};

/// The JSON body of a webhook request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookBody<'a> {
    /// The notification id; equal to the `X-Netmon-Notification` header.
    pub notification: u64,
    pub contact: &'a str,
    pub channel: Channel,
    pub lang: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// The alerts in the message and why each is there.
    pub alerts: &'a [NoticeOf],
}

impl<'a> WebhookBody<'a> {
    /// The body for notification `id` carrying `message`.
    pub fn new(id: u64, message: &'a Message) -> Self {
        Self {
            notification: id,
            contact: &message.contact,
            channel: message.channel,
            lang: &message.lang,
            subject: &message.subject,
            text: &message.text,
            alerts: &message.notices,
        }
    }
}

/// `sha256=<hex>`: HMAC-SHA256 with `secret` over `timestamp`, a dot, and the body bytes.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhook sender.
#[derive(Debug, Clone)]
pub struct Webhook {
    config: WebhookConfig,
    http: reqwest::Client,
}

impl Webhook {
    pub fn new(config: WebhookConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// POSTs notification `id` to `url`.
    pub async fn send(&self, id: u64, url: &str, message: &Message) -> Result<(), SendError> {
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                SendError::permanent(format!("webhook address is not an http(s) URL: {url:?}"))
            })?;
        let body = serde_json::to_vec(&WebhookBody::new(id, message))
            .map_err(|e| SendError::permanent(format!("encoding the webhook body: {e}")))?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = signature(self.config.secret.as_bytes(), timestamp, &body);
        let response = self
            .http
            .post(parsed)
            .timeout(self.config.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Netmon-Notification", id.to_string())
            .header("X-Netmon-Timestamp", timestamp.to_string())
            .header("X-Netmon-Signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error("webhook", e))?;
        let status = response.status();
        debug!(notification = id, %status, "webhook answered");
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        let message = format!("webhook answered {status}: {}", excerpt(&body, 200));
        if retryable_status(status) {
            Err(SendError::retryable(message))
        } else {
            Err(SendError::permanent(message))
        }
    }
}

/// A request that got no answer: retryable, unless the request could not even be built. The
/// URL is left out of the message (it may hold a token).
pub(crate) fn transport_error(channel: &str, e: reqwest::Error) -> SendError {
    let permanent = e.is_builder();
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let e = e.without_url();
    let mut message = format!("{channel} request {kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if permanent {
        message.insert_str(0, "cannot send: ");
        SendError::permanent(message)
    } else {
        SendError::retryable(message)
    }
}
