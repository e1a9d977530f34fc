//! `[notify]` loading: defaults, environment overrides, errors naming file and key, templates.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::{Config, ConfigError};

const MINIMAL: &str = "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n[store]\npath = \"/tmp/x.db\"\n";

/// Loads `MINIMAL` + `text` from a fresh directory (kept for files the test adds).
fn load_in(dir: &Path, text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let file = dir.join("collector.toml");
    std::fs::write(&file, format!("{MINIMAL}{text}")).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load_with_env(&file, env)
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netmon-notify-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn absent_section_means_no_channels_and_builtin_templates() {
    let dir = scratch();
    let config = load_in(&dir, "", &[]).unwrap();
    assert!(config.notify.webhook.is_none());
    assert!(config.notify.telegram.is_none());
    assert!(config.notify.email.is_none());
    assert!(config.notify.templates.has_language("vi"));
    assert!(config.notify.templates.has_language("en"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sections_defaults_and_environment_overrides() {
    let dir = scratch();
    let text = "[notify.webhook]\nsecret = \"s3cr3t-webhook\"\n\
                [notify.telegram]\nbot_token = \"123:ABC\"\n\
                [notify.email]\nserver = \"smtp.thanhhoa.gov.vn\"\nfrom = \"netmon <netmon@thanhhoa.gov.vn>\"\nusername = \"netmon\"\npassword = \"mk-email\"\n";
    let config = load_in(&dir, text, &[]).unwrap().notify;
    let webhook = config.webhook.unwrap();
    assert_eq!(webhook.secret, "s3cr3t-webhook");
    assert_eq!(webhook.timeout, Duration::from_secs(10));
    let telegram = config.telegram.unwrap();
    assert_eq!(telegram.base_url, "https://api.telegram.org");
    let email = config.email.unwrap();
    assert_eq!((email.port, email.security), (587, SmtpSecurity::StartTls));
    assert_eq!(
        email.credentials,
        Some(("netmon".into(), "mk-email".into()))
    );
    let debug = format!("{webhook:?} {telegram:?} {email:?}");
    for secret in ["s3cr3t-webhook", "123:ABC", "mk-email"] {
        assert!(!debug.contains(secret), "{debug}");
    }

    let config = load_in(
        &dir,
        "[notify.email]\nserver = \"h\"\nfrom = \"a@b.vn\"\nsecurity = \"tls\"\n",
        &[
            ("NETMON_NOTIFY__WEBHOOK__SECRET", "from-env"),
            ("NETMON_NOTIFY__EMAIL__PORT", "2465"),
            ("NETMON_NOTIFY__TELEGRAM__BOT_TOKEN", "9:XYZ"),
            ("NETMON_NOTIFY__TELEGRAM__BASE_URL", "http://127.0.0.1:9/"),
        ],
    )
    .unwrap()
    .notify;
    assert_eq!(config.webhook.unwrap().secret, "from-env");
    assert_eq!(config.email.unwrap().port, 2465);
    let telegram = config.telegram.unwrap();
    assert_eq!(telegram.bot_token, "9:XYZ");
    assert_eq!(telegram.base_url, "http://127.0.0.1:9");
    let security = |s: &str| {
        let text =
            format!("[notify.email]\nserver = \"h\"\nfrom = \"a@b.vn\"\nsecurity = \"{s}\"\n");
        let email = load_in(&dir, &text, &[]).unwrap().notify.email.unwrap();
        (email.security, email.port)
    };
    assert_eq!(security("tls"), (SmtpSecurity::Tls, 465));
    assert_eq!(security("none"), (SmtpSecurity::None, 25));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_name_file_and_key() {
    let dir = scratch();
    let email = "[notify.email]\nserver = \"h\"\nfrom = \"a@b.vn\"\n";
    let cases = [
        (
            "[notify.webhook]\ntimeout = \"5s\"\n".to_string(),
            "notify.webhook.secret",
        ),
        (
            "[notify.webhook]\nsecret = \"s\"\ntimeout = \"1h\"\n".into(),
            "notify.webhook.timeout",
        ),
        (
            "[notify.telegram]\nbase_url = \"https://x\"\n".into(),
            "notify.telegram.bot_token",
        ),
        (
            "[notify.telegram]\nbot_token = \"1:A\"\nbase_url = \"x\"\n".into(),
            "notify.telegram.base_url",
        ),
        (
            format!("{email}security = \"ssl\"\n"),
            "notify.email.security",
        ),
        (format!("{email}port = 70000\n"), "notify.email.port"),
        (
            format!("{email}password = \"p\"\n"),
            "notify.email.password",
        ),
        (
            format!("{email}ca_file = \"nope.pem\"\n"),
            "notify.email.ca_file",
        ),
        (
            format!("{email}security = \"none\"\nca_file = \"ca.pem\"\n"),
            "notify.email.ca_file",
        ),
        (
            "[notify.email]\nfrom = \"a@b.vn\"\n".into(),
            "notify.email.server",
        ),
        (
            "[notify.email]\nserver = \"h\"\nfrom = \"xã Cẩm Tú\"\n".into(),
            "notify.email.from",
        ),
        ("[notify]\ntemplates = \"mau\"\n".into(), "notify.templates"),
    ];
    for (text, key) in cases {
        let e = load_in(&dir, &text, &[]).unwrap_err();
        assert_eq!(e.key, key, "{text}: {e}");
        assert!(e.to_string().contains("collector.toml: notify."), "{e}");
    }
    let e = load_in(
        &dir,
        "[notify.email]\nserver = \"h\"\nfrm = \"a@b.vn\"\n",
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("frm"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn contacts_on_unconfigured_channels_are_reported() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let inventory = crate::inventory::load(&example.join("inventory.toml")).unwrap();
    let none = NotifyConfig::default().unconfigured_contacts(&inventory);
    assert_eq!(none.len(), inventory.contacts.len(), "{none:?}");
    assert!(
        none.iter().any(|m| m.contains("[notify.email]")),
        "{none:?}"
    );
    let dir = scratch();
    let all = load_in(
        &dir,
        "[notify.webhook]\nsecret = \"s\"\n[notify.telegram]\nbot_token = \"1:A\"\n\
         [notify.email]\nserver = \"h\"\nfrom = \"a@b.vn\"\n",
        &[],
    )
    .unwrap()
    .notify;
    assert!(all.unconfigured_contacts(&inventory).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn templates_are_relative_to_the_config_file_and_checked() {
    let dir = scratch();
    let vi = dir.join("mau/vi");
    std::fs::create_dir_all(&vi).unwrap();
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/vi");
    for file in crate::notify::render::FILES {
        std::fs::copy(builtin.join(file), vi.join(file)).unwrap();
    }
    let config = load_in(&dir, "[notify]\ntemplates = \"mau\"\n", &[]).unwrap();
    assert!(config.notify.templates.has_language("vi"));
    std::fs::write(vi.join("opened.txt"), "{xa} mất mạng\n").unwrap();
    let e = load_in(&dir, "[notify]\ntemplates = \"mau\"\n", &[]).unwrap_err();
    assert_eq!(e.key, "notify.templates");
    assert!(e.problem.contains("opened.txt"), "{e}");
    assert!(e.problem.contains("{xa}"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// F11 of the audit: no `Debug` of the configuration, or of what is built from it, shows a
/// secret. Every secret the collector takes is set here (one from the environment, as the
/// systemd unit's `EnvironmentFile=` gives it), then the whole `Config`, the HTTP API's state
/// and the senders are formatted.
#[test]
fn no_debug_output_shows_a_secret() {
    let secrets = [
        "mqtt-S3cr3t-pw",
        "http-S3cr3t-token-0001",
        "http-S3cr3t-read-0001",
        "influx-S3cr3t-token",
        "webhook-S3cr3t",
        "123456:telegram-S3cr3t",
        "email-S3cr3t",
    ];
    let text = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nusername = \"collector-thanh-hoa\"\n\
         password = \"{}\"\n[store]\npath = \"/tmp/x.db\"\n[http]\ntoken = \"{}\"\n\
         [influx]\nurl = \"http://127.0.0.1:8086\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"{}\"\n\
         [notify.webhook]\nsecret = \"{}\"\n[notify.telegram]\nbot_token = \"{}\"\n\
         [notify.email]\nserver = \"smtp.thanhhoa.gov.vn\"\nfrom = \"netmon@thanhhoa.gov.vn\"\n\
         username = \"netmon\"\npassword = \"{}\"\n",
        secrets[0], secrets[1], secrets[3], secrets[4], secrets[5], secrets[6]
    );
    let dir = scratch();
    let file = dir.join("collector.toml");
    std::fs::write(&file, text).unwrap();
    let env = [(
        "NETMON_HTTP__READ_TOKEN".to_string(),
        secrets[2].to_string(),
    )];
    let config = Config::load_with_env(&file, env).unwrap();
    assert_eq!(config.http.read_token.as_deref(), Some(secrets[2]));
    let v1 = Config::load_with_env(
        &file,
        [
            ("NETMON_INFLUX__API".to_string(), "v1".to_string()),
            ("NETMON_INFLUX__DATABASE".to_string(), "netmon".to_string()),
            ("NETMON_INFLUX__USERNAME".to_string(), "writer".to_string()),
            (
                "NETMON_INFLUX__PASSWORD".to_string(),
                secrets[3].to_string(),
            ),
        ],
    )
    .unwrap();
    let senders = crate::notify::Senders::new(config.notify.clone()).unwrap();
    let (_, snapshots) = tokio::sync::watch::channel(std::sync::Arc::default());
    let (_, influx) = tokio::sync::watch::channel(None);
    let (commands, _) = tokio::sync::mpsc::channel(1);
    let (_, intake_health) =
        tokio::sync::watch::channel(crate::health::IntakeHealth::starting(chrono::Utc::now()));
    let api = crate::http::Api {
        snapshots,
        influx,
        commands,
        token: config.http.token.clone().map(std::sync::Arc::from),
        read_token: config.http.read_token.clone().map(std::sync::Arc::from),
        inventory: None,
        limits: crate::http::Limits::from(&config.http),
        intake_health,
    };
    let shown = format!("{config:?} {config:#?} {v1:?} {senders:?} {api:?}");
    for secret in secrets {
        let at = shown.find(secret);
        let around = at.map(|i| &shown[i.saturating_sub(200)..i]);
        assert!(at.is_none(), "{secret} shown, after {around:?}");
    }
    for visible in [
        "collector-thanh-hoa",
        "smtp.thanhhoa.gov.vn",
        "v1 database=netmon",
        "<set>",
    ] {
        assert!(
            shown.contains(visible),
            "{visible} missing from the Debug output"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
