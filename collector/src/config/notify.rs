//! The `[notify.webhook]`, `[notify.telegram]` and `[notify.email]` sections: how each channel
//! sends. Who receives what is the inventory's (`[[contacts]]`).

/// The validated `[notify]` sections; a channel whose section is absent cannot be used by a
/// contact (the configuration check says so).
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub webhook: Option<WebhookConfig>,
    pub telegram: Option<TelegramConfig>,
    pub email: Option<EmailConfig>,
}

#[derive(Clone)]
pub struct WebhookConfig {
    /// HMAC-SHA256 key for `X-Netmon-Signature`.
    pub secret: String,
    pub timeout: std::time::Duration,
}

#[derive(Clone)]
pub struct TelegramConfig {
    /// `https://api.telegram.org` unless a test or a proxy says otherwise.
    pub base_url: String,
    pub bot_token: String,
    pub timeout: std::time::Duration,
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
    pub ca_file: Option<std::path::PathBuf>,
    pub timeout: std::time::Duration,
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
    EmailConfig: server, port, security, from, timeout;
}
