//! The Telegram channel: the Bot API's `sendMessage`, `POST {base_url}/bot{token}/sendMessage`
//! with `{"chat_id", "text", "disable_web_page_preview": true}`. The text is the subject, a blank
//! line and the message text, as plain text (no parse mode: names need no escaping).
//!
//! Telegram answers `{"ok":true,"result":{…}}` or `{"ok":false,"error_code":429,
//! "description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`; 408, 429
//! and 5xx (and timeouts, network errors) may be retried. The bot token is part of the URL's
//! path: no error message carries the URL, and the token is scrubbed from anything quoted.

use netmon_events::Message;
use serde::Deserialize;
use serde_json::json;
use tracing::debug;

use super::config::TelegramConfig;
use super::webhook::transport_error;
use super::{SendError, excerpt, retryable_status};

/// Telegram refuses longer texts.
const MAX_CHARS: usize = 4096;

/// The parts of a Bot API answer that matter here.
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

/// The Telegram sender.
#[derive(Debug, Clone)]
pub struct Telegram {
    config: TelegramConfig,
    http: reqwest::Client,
}

impl Telegram {
    pub fn new(config: TelegramConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// Sends `message` to chat `chat_id` (a number such as `-1001234567890`, or `@channel`).
    pub async fn send(&self, chat_id: &str, message: &Message) -> Result<(), SendError> {
        let chat_id = chat_id.trim();
        if chat_id.is_empty() {
            return Err(SendError::permanent("telegram chat id is empty"));
        }
        let chat = match chat_id.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(chat_id),
        };
        let body = json!({
            "chat_id": chat,
            "text": text(message),
            "disable_web_page_preview": true,
        });
        let url = format!(
            "{}/bot{}/sendMessage",
            self.config.base_url, self.config.bot_token
        );
        let response = self
            .http
            .post(url)
            .timeout(self.config.timeout)
            .json_body(&body)
            .send()
            .await
            .map_err(|e| self.scrub(transport_error("telegram", e)))?;
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        let answer: Option<Answer> = serde_json::from_slice(&bytes).ok();
        debug!(%status, ok = answer.as_ref().map(|a| a.ok), "telegram answered");
        if status.is_success() && answer.as_ref().is_some_and(|a| a.ok) {
            return Ok(());
        }
        let error = match &answer {
            Some(a) => {
                let mut text = format!(
                    "telegram refused ({}): {}",
                    a.error_code.unwrap_or(status.as_u16()),
                    a.description.as_deref().unwrap_or("no description")
                );
                if let Some(after) = a.parameters.as_ref().and_then(|p| p.retry_after) {
                    text.push_str(&format!(" (retry after {after} s)"));
                }
                text
            }
            None => format!("telegram answered {status}: {}", excerpt(&bytes, 200)),
        };
        let code = answer
            .and_then(|a| a.error_code)
            .and_then(|c| reqwest::StatusCode::from_u16(c).ok())
            .unwrap_or(status);
        let error = if retryable_status(status) || retryable_status(code) {
            SendError::retryable(error)
        } else {
            SendError::permanent(error)
        };
        Err(self.scrub(error))
    }

    /// The same error with the bot token replaced by `<token>`.
    fn scrub(&self, mut error: SendError) -> SendError {
        if !self.config.bot_token.is_empty() {
            error.message = error.message.replace(&self.config.bot_token, "<token>");
        }
        error
    }
}

/// Subject, a blank line, the text; cut to Telegram's 4096 characters.
fn text(message: &Message) -> String {
    let full = if message.subject.is_empty() {
        message.text.clone()
    } else {
        format!("{}\n\n{}", message.subject, message.text)
    };
    match full.char_indices().nth(MAX_CHARS - 1) {
        Some((i, _)) => format!("{}…", &full[..i]),
        None => full,
    }
}

/// `.json()` without reqwest's `json` feature: the body and its content type.
trait JsonBody {
    fn json_body(self, body: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &serde_json::Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use netmon_events::Channel;

    use super::*;

    fn message(text: &str) -> Message {
        Message {
            contact: "c".into(),
            channel: Channel::Telegram,
            notices: vec![],
            lang: "vi".into(),
            subject: "Tiêu đề".into(),
            text: text.into(),
        }
    }

    #[test]
    fn text_is_subject_blank_line_text_and_fits_telegram() {
        assert_eq!(text(&message("Nội dung")), "Tiêu đề\n\nNội dung");
        let long = text(&message(&"ệ".repeat(5000)));
        assert_eq!(long.chars().count(), MAX_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn errors_never_carry_the_token() {
        let t = Telegram::new(
            TelegramConfig {
                base_url: "http://127.0.0.1:1".into(),
                bot_token: "123:SECRET".into(),
                timeout: std::time::Duration::from_secs(1),
            },
            reqwest::Client::new(),
        );
        let e = t.scrub(SendError::retryable(
            "GET /bot123:SECRET/sendMessage failed",
        ));
        assert_eq!(e.message, "GET /bot<token>/sendMessage failed");
    }
}
