//! The e-mail channel: SMTP with lettre (tokio, rustls on the `ring` provider), STARTTLS, TLS
//! from the first byte, or a plain connection to a local relay; optional credentials.
//!
//! Each notification is one `text/plain; charset=utf-8` message: the subject (RFC 2047 encoded
//! when it has diacritics) and the text (quoted-printable or base64, chosen by lettre), `From`,
//! `To`, `Date` and `Message-ID: <netmon.<id>@<sender's domain>>` — the same on every attempt, so
//! a mail sent twice (a crash between "sent" and "recorded") is recognisable and mail clients
//! thread or drop the copy. A 4xx reply, a timeout or a lost connection may be retried; a 5xx
//! reply (recipient refused, message rejected) is final.

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use netmon_events::Message;
use tracing::debug;

use super::SendError;
use super::config::{EmailConfig, SmtpSecurity};

/// The e-mail sender: one SMTP connection per message.
#[derive(Clone)]
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    config: EmailConfig,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("config", &self.config)
            .finish()
    }
}

impl Email {
    /// Prepares the transport (reads `ca_file`); connects only when sending.
    pub fn new(config: EmailConfig) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .from
            .parse()
            .with_context(|| format!("notify.email.from {:?}", config.from))?;
        let tls = match config.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(&config)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.server)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            config,
        })
    }

    /// Sends notification `id` to the address `to`.
    pub async fn send(&self, id: u64, to: &str, message: &Message) -> Result<(), SendError> {
        let mail = build(id, &self.from, to, message)?;
        let response = self.transport.send(mail).await.map_err(classify)?;
        debug!(
            notification = id,
            code = %response.code(),
            server = %self.config.server,
            "mail accepted"
        );
        Ok(())
    }
}

fn tls_parameters(config: &EmailConfig) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(config.server.clone());
    if let Some(file) = &config.ca_file {
        let pem = std::fs::read(file)
            .with_context(|| format!("reading notify.email.ca_file {}", file.display()))?;
        let certificate = Certificate::from_pem(&pem)
            .with_context(|| format!("notify.email.ca_file {} is not PEM", file.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .context("building the SMTP TLS configuration")
}

/// The mail of notification `id`: headers and a UTF-8 plain-text body.
pub fn build(
    id: u64,
    from: &Mailbox,
    to: &str,
    message: &Message,
) -> Result<lettre::Message, SendError> {
    let to: Mailbox = to
        .parse()
        .map_err(|e| SendError::permanent(format!("not an e-mail address: {to:?} ({e})")))?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(message.subject.as_str())
        .date_now()
        .message_id(Some(message_id(id, from)))
        .header(ContentType::TEXT_PLAIN)
        .body(message.text.clone())
        .map_err(|e| SendError::permanent(format!("building the mail: {e}")))
}

/// `<netmon.42@example.vn>`: stable across attempts of the same notification.
pub fn message_id(id: u64, from: &Mailbox) -> String {
    format!("<netmon.{id}@{}>", from.email.domain())
}

/// 5xx replies and our own mistakes are final; 4xx, timeouts, TLS and connection trouble may pass.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let mut message = format!("smtp: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if e.is_permanent() || e.is_client() {
        SendError::permanent(message)
    } else {
        SendError::retryable(message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use netmon_events::Channel;

    use super::*;

    #[test]
    fn mail_headers_and_utf8_body() {
        let from: Mailbox = "netmon <netmon@thanhhoa.gov.vn>".parse().unwrap();
        let message = Message {
            contact: "camtu".into(),
            channel: Channel::Email,
            notices: vec![],
            lang: "vi".into(),
            subject: "🔴 Cảnh báo: Mất kết nối — UBND xã Cẩm Tú".into(),
            text: "Từ 09:04 23/11/2026".into(),
        };
        let mail = build(42, &from, "it@camtu.vn", &message).unwrap();
        let raw = String::from_utf8(mail.formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <netmon.42@thanhhoa.gov.vn>"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
        assert!(raw.contains("To: it@camtu.vn"), "{raw}");
        assert!(raw.contains("Date: "), "{raw}");
        let e = build(42, &from, "not an address", &message).unwrap_err();
        assert!(!e.retryable, "{e}");
    }
}
