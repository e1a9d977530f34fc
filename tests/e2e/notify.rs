//! Notification channels against real receivers, through the collector's library
//! (`Senders::send`): a webhook receiver verifying the HMAC signature, a Telegram Bot API
//! stand-in, and a real SMTP server (aiosmtpd, plain and STARTTLS with a private CA) that must
//! receive the exact Vietnamese subject and text. Failures are classified retryable or not.
//! `check` refuses bad `[notify]` sections naming the key.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use netmon_collector::notify::render::{Templates, render};
use netmon_collector::notify::view::NoticeView;
use netmon_collector::notify::{
    EmailConfig, NotifyConfig, SendError, Senders, SmtpSecurity, TelegramConfig, WebhookConfig,
};
use netmon_events::{AlertKind, Channel, Detection, Message, Notice, NoticeOf};
use netmon_tests::daemons::daemon_command;
use netmon_tests::{Scratch, SmtpServer, TelegramStub, WebhookReceiver};

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "bí-mật-của-tỉnh-Thanh-Hóa";

/// The commune uplink of xã Cẩm Tú dropped at 09:04 (local), three villages behind it.
fn down_message(channel: Channel, lang: &str) -> Message {
    let view = NoticeView {
        notice: Notice::Opened,
        alert: 7,
        kind: AlertKind::AgentUnreachable,
        agent: "th-camtu-ubnd".into(),
        site: Some("UBND xã Cẩm Tú".into()),
        commune: Some("xã Cẩm Tú".into()),
        province: Some("Thanh Hóa".into()),
        link: None,
        detected_by: Detection::LastWill,
        since: Utc.with_ymd_and_hms(2026, 11, 23, 2, 4, 0).unwrap(),
        until: None,
        duration_ms: None,
        value: None,
        threshold: None,
        affected: vec![
            "thôn Giang Trung".into(),
            "thôn Trung Sơn".into(),
            "thôn Tú Tạo".into(),
        ],
        acknowledged_by: None,
    };
    let (subject, text) = render(&Templates::builtin(), lang, &[view]);
    Message {
        contact: "camtu-it".into(),
        channel,
        notices: vec![NoticeOf {
            alert: 7,
            notice: Notice::Opened,
        }],
        lang: lang.into(),
        subject,
        text,
    }
}

const SUBJECT: &str =
    "🔴 Cảnh báo: Không liên lạc được với thiết bị giám sát (agent) — UBND xã Cẩm Tú";
const TEXT: &str = "🔴 KHÔNG LIÊN LẠC ĐƯỢC VỚI THIẾT BỊ GIÁM SÁT (AGENT) — UBND xã Cẩm Tú (xã Cẩm Tú, Thanh Hóa)\n\
                    Từ 09:04 23/11/2026 · phát hiện: mất kết nối MQTT (last will)\n\
                    Ảnh hưởng 3 điểm: thôn Giang Trung, thôn Trung Sơn, thôn Tú Tạo";

fn senders(config: NotifyConfig) -> Senders {
    Senders::new(config).unwrap()
}

/// One `Senders::send` on a fresh runtime.
fn send(senders: &Senders, id: u64, to: &str, message: &Message) -> Result<(), SendError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(senders.send(id, to, message))
}

fn webhook(secret: &str) -> NotifyConfig {
    NotifyConfig {
        webhook: Some(WebhookConfig {
            secret: secret.into(),
            timeout: Duration::from_secs(5),
        }),
        ..NotifyConfig::default()
    }
}

#[test]
fn notify_webhook_is_signed_and_carries_the_message() {
    let receiver = WebhookReceiver::start(SECRET).unwrap();
    let message = down_message(Channel::Webhook, "vi");
    assert_eq!(
        (message.subject.as_str(), message.text.as_str()),
        (SUBJECT, TEXT)
    );
    let now = Utc::now().timestamp();
    send(&senders(webhook(SECRET)), 42, &receiver.url(), &message).unwrap();
    let got = receiver.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert!(
        d.signature_ok,
        "signature must verify with the secret: {d:?}"
    );
    assert_eq!(d.notification.as_deref(), Some("42"));
    assert_eq!(d.content_type.as_deref(), Some("application/json"));
    let ts: i64 = d.timestamp.as_deref().unwrap().parse().unwrap();
    assert!((ts - now).abs() <= 60, "timestamp {ts} vs now {now}");
    let body = d.json.clone().unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "notification": 42, "contact": "camtu-it", "channel": "webhook", "lang": "vi",
            "subject": SUBJECT, "text": TEXT,
            "alerts": [{"alert": 7, "notice": "opened"}],
        })
    );

    // The verification example of docs/notifications.md accepts it, and refuses another secret.
    assert_eq!(documented_verify(SECRET, d), "True");
    assert_eq!(documented_verify("another secret", d), "False");

    // A receiver holding another secret refuses the same sender's signature.
    let stranger = WebhookReceiver::start("another secret").unwrap();
    send(&senders(webhook(SECRET)), 43, &stranger.url(), &message).unwrap();
    let got = stranger.wait_for(1, WAIT);
    assert!(!got[0].signature_ok, "a wrong secret must not verify");
    assert!(got[0].signature.as_deref().unwrap().starts_with("sha256="));
}

/// Runs the Python example of `docs/notifications.md` on a received request.
fn documented_verify(secret: &str, d: &netmon_tests::receivers::WebhookDelivery) -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/notifications.md"),
    )
    .unwrap();
    let start = doc
        .find("```python\n")
        .expect("a python example in the doc")
        + 10;
    let snippet = &doc[start..start + doc[start..].find("```").unwrap()];
    let scratch = Scratch::new("notify-verify").unwrap();
    let body = scratch.write("body", &d.body).unwrap();
    let script = format!(
        "{snippet}\nimport sys\nheaders = {{'X-Netmon-Timestamp': sys.argv[3], 'X-Netmon-Signature': sys.argv[4]}}\n\
         print(verify(sys.argv[1].encode(), headers, open(sys.argv[2], 'rb').read()))\n"
    );
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(secret)
        .arg(body)
        .arg(d.timestamp.as_deref().unwrap())
        .arg(d.signature.as_deref().unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn notify_webhook_failures_are_classified() {
    let receiver = WebhookReceiver::start(SECRET).unwrap();
    let senders = senders(webhook(SECRET));
    let message = down_message(Channel::Webhook, "vi");
    let url = receiver.url();

    receiver.fail_next(1, 503);
    let e = send(&senders, 5, &url, &message).unwrap_err();
    assert!(e.retryable, "503 is retryable: {e}");
    assert!(e.message.contains("503"), "{e}");
    receiver.fail_next(1, 429);
    assert!(send(&senders, 5, &url, &message).unwrap_err().retryable);
    send(&senders, 5, &url, &message).unwrap();

    receiver.fail_next(1, 400);
    let e = send(&senders, 6, &url, &message).unwrap_err();
    assert!(!e.retryable, "400 is final: {e}");

    receiver.set_down(true);
    let e = send(&senders, 7, &url, &message).unwrap_err();
    assert!(e.retryable, "a receiver that is down is retryable: {e}");
    assert!(!e.message.contains(&url), "no URL in errors: {e}");
    receiver.set_down(false);
    send(&senders, 7, &url, &message).unwrap();

    // Every attempt of one notification carries its id: the receiver can de-duplicate.
    let got = receiver.wait_for(5, WAIT);
    let ids: Vec<&str> = got
        .iter()
        .filter_map(|d| d.notification.as_deref())
        .collect();
    assert_eq!(ids, ["5", "5", "5", "6", "7"]);
    let statuses: Vec<u16> = got.iter().map(|d| d.answered).collect();
    assert_eq!(statuses, [503, 429, 200, 400, 200]);
    assert!(got.iter().all(|d| d.signature_ok));

    // A receiver slower than the timeout: retryable.
    let impatient = self::senders(NotifyConfig {
        webhook: Some(WebhookConfig {
            secret: SECRET.into(),
            timeout: Duration::from_millis(500),
        }),
        ..NotifyConfig::default()
    });
    receiver.stall_next(1, Duration::from_secs(2));
    let e = send(&impatient, 8, &url, &message).unwrap_err();
    assert!(e.retryable && e.message.contains("timed out"), "{e}");

    let e = send(&senders, 8, "ftp://127.0.0.1/x", &message).unwrap_err();
    assert!(!e.retryable, "{e}");
    let e = send(
        &senders,
        8,
        "camtu@example.vn",
        &down_message(Channel::Email, "vi"),
    )
    .unwrap_err();
    assert!(!e.retryable && e.message.contains("not configured"), "{e}");
}

fn telegram(base_url: &str, token: &str) -> NotifyConfig {
    NotifyConfig {
        telegram: Some(TelegramConfig {
            base_url: base_url.into(),
            bot_token: token.into(),
            timeout: Duration::from_secs(5),
        }),
        ..NotifyConfig::default()
    }
}

#[test]
fn notify_telegram_receives_vietnamese_intact() {
    let token = "123456:ABC-netmon-test";
    let stub = TelegramStub::start(token).unwrap();
    let senders = senders(telegram(&stub.base_url(), token));
    let message = down_message(Channel::Telegram, "vi");
    send(&senders, 9, "-1001234567890", &message).unwrap();
    let calls = stub.wait_for(1, WAIT);
    let call = &calls[0];
    assert!(call.token_ok);
    assert_eq!(call.chat_id, Some(serde_json::json!(-1001234567890_i64)));
    assert_eq!(
        call.text.as_deref(),
        Some(format!("{SUBJECT}\n\n{TEXT}").as_str())
    );
    assert_eq!(call.disable_web_page_preview, Some(true));

    stub.rate_limit_next(1, 3);
    let e = send(&senders, 10, "@camtu_it", &message).unwrap_err();
    assert!(e.retryable, "429 is retryable: {e}");
    assert!(e.message.contains("retry after 3"), "{e}");
    send(&senders, 10, "@camtu_it", &message).unwrap();
    let calls = stub.wait_for(3, WAIT);
    assert_eq!(calls[2].chat_id, Some(serde_json::json!("@camtu_it")));

    let wrong = self::senders(telegram(&stub.base_url(), "999:WRONG-TOKEN"));
    let e = send(&wrong, 11, "-1001234567890", &message).unwrap_err();
    assert!(!e.retryable, "401 is final: {e}");
    assert!(!e.message.contains("WRONG-TOKEN"), "the token leaked: {e}");

    // Nothing listening: retryable, and still no token in the message.
    drop(stub);
    let e = send(&wrong, 12, "-1", &message).unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(!e.message.contains("WRONG-TOKEN"), "the token leaked: {e}");
}

fn email(smtp: &SmtpServer, server: &str, security: SmtpSecurity, ca: bool) -> NotifyConfig {
    NotifyConfig {
        email: Some(EmailConfig {
            server: server.into(),
            port: smtp.port,
            security,
            credentials: None,
            from: "netmon Thanh Hóa <netmon@thanhhoa.gov.vn>".into(),
            ca_file: if ca { smtp.ca_file.clone() } else { None },
            timeout: Duration::from_secs(10),
        }),
        ..NotifyConfig::default()
    }
}

fn assert_mail(smtp: &SmtpServer, id: u64) {
    let mails = smtp.wait_for(1, WAIT);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.subject, SUBJECT, "log: {}", smtp.log());
    // Text in mail is in canonical form: lines end with CRLF (RFC 2046 §4.1.1).
    assert_eq!(mail.body.replace("\r\n", "\n").trim_end_matches('\n'), TEXT);
    assert_eq!(mail.to, "it.camtu@thanhhoa.gov.vn");
    assert_eq!(mail.from, "netmon Thanh Hóa <netmon@thanhhoa.gov.vn>");
    assert_eq!(mail.message_id, format!("<netmon.{id}@thanhhoa.gov.vn>"));
    assert_eq!(mail.content_type, "text/plain; charset=utf-8");
    assert!(!mail.date.is_empty());
}

#[test]
fn notify_email_plain_smtp_receives_exact_vietnamese() {
    let scratch = Scratch::new("notify-smtp").unwrap();
    let smtp = SmtpServer::start(scratch.path(), false).unwrap();
    let senders = senders(email(&smtp, "127.0.0.1", SmtpSecurity::None, false));
    let message = down_message(Channel::Email, "vi");
    send(&senders, 21, "it.camtu@thanhhoa.gov.vn", &message).unwrap();
    assert_mail(&smtp, 21);
}

#[test]
fn notify_email_starttls_with_the_province_ca() {
    let scratch = Scratch::new("notify-smtps").unwrap();
    let smtp = SmtpServer::start(scratch.path(), true).unwrap();
    let message = down_message(Channel::Email, "vi");

    // Without the CA the certificate is not trusted: nothing is delivered.
    let untrusted = senders(email(&smtp, "localhost", SmtpSecurity::StartTls, false));
    let e = send(&untrusted, 22, "it.camtu@thanhhoa.gov.vn", &message).unwrap_err();
    assert!(e.message.to_lowercase().contains("certificate"), "{e}");
    // STARTTLS is required: a plain session is refused by the server (530), final.
    let plain = senders(email(&smtp, "localhost", SmtpSecurity::None, false));
    let e = send(&plain, 22, "it.camtu@thanhhoa.gov.vn", &message).unwrap_err();
    assert!(!e.retryable, "{e}");
    assert!(smtp.messages().unwrap().is_empty());

    let trusted = senders(email(&smtp, "localhost", SmtpSecurity::StartTls, true));
    send(&trusted, 23, "it.camtu@thanhhoa.gov.vn", &message).unwrap();
    assert_mail(&smtp, 23);
}

#[test]
fn notify_email_smtps_with_the_province_ca() {
    let scratch = Scratch::new("notify-smtps465").unwrap();
    let smtp = SmtpServer::start_smtps(scratch.path()).unwrap();
    let senders = senders(email(&smtp, "localhost", SmtpSecurity::Tls, true));
    let message = down_message(Channel::Email, "vi");
    send(&senders, 25, "it.camtu@thanhhoa.gov.vn", &message).unwrap();
    assert_mail(&smtp, 25);
}

#[test]
fn notify_email_server_down_is_retryable() {
    let scratch = Scratch::new("notify-smtp-down").unwrap();
    let smtp = SmtpServer::start(scratch.path(), false).unwrap();
    let config = email(&smtp, "127.0.0.1", SmtpSecurity::None, false);
    drop(smtp);
    let e = send(
        &senders(config),
        24,
        "it.camtu@thanhhoa.gov.vn",
        &down_message(Channel::Email, "vi"),
    )
    .unwrap_err();
    assert!(e.retryable, "{e}");
}

const COLLECTOR: &str =
    "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n[store]\npath = \"/tmp/netmon-never-created.db\"\n";

#[test]
fn notify_bad_sections_name_the_key() {
    let scratch = Scratch::new("notify-config").unwrap();
    let cases = [
        (
            "[notify.email]\nserver = \"smtp.thanhhoa.gov.vn\"\nfrom = \"netmon@thanhhoa.gov.vn\"\nsecurity = \"ssl\"\n",
            "notify.email.security",
        ),
        (
            "[notify.telegram]\nbase_url = \"https://api.telegram.org\"\n",
            "notify.telegram.bot_token",
        ),
        (
            "[notify]\ntemplates = \"mau-tin-nhan\"\n",
            "notify.templates",
        ),
    ];
    for (section, key) in cases {
        let file = scratch
            .write("collector.toml", format!("{COLLECTOR}{section}"))
            .unwrap();
        let output = daemon_command("netmon-collector")
            .arg("check")
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(64), "{key}: {text}");
        assert!(text.contains("collector.toml"), "{text}");
        assert!(text.contains(key), "{key}: {text}");
    }
}
