//! `alerts` (list), `alerts ack ID` and `silence SITE`: the operator's commands. They talk to the
//! running collector over its HTTP API (the writer is the only one who records), the commands
//! with the bearer token of `http.token`, the list with `http.read_token` when one is set.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::cli::daemon_client;
use crate::cli::failure::Failure;
use crate::cli::table::{self, Lang, Table};
use crate::cli::time;
use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(5);

/// What `alerts` does besides listing.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Acknowledge an alert: no more reminders; the acknowledgement is recorded as an event.
    Ack {
        /// The alert's id (first column of `alerts`).
        id: u64,
        /// Who acknowledges (recorded, shown in messages).
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
    },
}

/// `alerts`: the running collector's alerts, newest first.
pub fn list(
    config: &Config,
    open: bool,
    json: bool,
    lang: Lang,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let address = daemon_client::reachable(config.http.listen);
    let path = if open {
        "/api/v1/alerts?open=true"
    } else {
        "/api/v1/alerts"
    };
    let body =
        daemon_client::get_with_token(address, path, config.http.read_token.as_deref(), TIMEOUT)
            .with_context(|| format!("asking the collector at {address} (is it running?)"))?;
    if json {
        writeln!(out, "{}", body.trim_end()).context("writing output")?;
        return Ok(());
    }
    let value: Value = serde_json::from_str(&body).context("reading the collector's answer")?;
    out.write_all(render(&value, lang).as_bytes())
        .context("writing output")?;
    Ok(())
}

/// The alerts table of an `/api/v1/alerts` document.
pub fn render(value: &Value, lang: Lang) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut rows = Table::new(lang.pick(
        &[
            "ID",
            "TRẠNG THÁI",
            "LOẠI",
            "ĐIỂM",
            "XÃ",
            "LIÊN KẾT",
            "TỪ",
            "THỜI LƯỢNG",
            "GHI CHÚ",
        ],
        &[
            "ID", "STATE", "KIND", "SITE", "COMMUNE", "LINK", "SINCE", "DURATION", "NOTE",
        ],
    ));
    let empty = Vec::new();
    for alert in value["alerts"].as_array().unwrap_or(&empty) {
        let open = alert["open"].as_bool().unwrap_or(false);
        let since = alert["since"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        let until = alert["until"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        let duration = match (since, until) {
            (Some(s), Some(u)) => table::lag((u - s).num_milliseconds()),
            (Some(s), None) => table::lag((Utc::now() - s).num_milliseconds()),
            _ => "-".into(),
        };
        let mut notes = Vec::new();
        if let Some(by) = alert["suppressed_by"].as_u64() {
            notes.push(format!("{} #{by}", lang.pick("do sự cố", "explained by")));
        }
        if let Some(by) = alert["acknowledged_by"].as_str() {
            notes.push(format!("{} {by}", lang.pick("đã nhận bởi", "acked by")));
        }
        if alert["late"].as_bool() == Some(true) {
            notes.push((lang.pick("báo muộn", "reported late")).into());
        }
        let link = match (&alert["target"], alert["subject"].as_str()) {
            (Value::Object(t), _) => format!("{} ({})", text(&t["name"]), text(&t["address"])),
            (_, Some(subject)) => subject.to_string(),
            _ => "-".into(),
        };
        let site = match alert["site_name"].as_str() {
            Some(name) => name.to_string(),
            None => text(&alert["agent"]),
        };
        rows.row(vec![
            alert["id"].to_string(),
            match open {
                true => lang.pick("đang mở", "open"),
                false => lang.pick("đã đóng", "resolved"),
            }
            .into(),
            kind_name(alert["kind"].as_str().unwrap_or("-"), lang).into(),
            site,
            text(&alert["commune_name"]),
            link,
            since.map_or("-".into(), time::local),
            duration,
            notes.join("; "),
        ]);
    }
    rows.render()
}

/// A kind's name for people.
fn kind_name(kind: &str, lang: Lang) -> &str {
    let vi = match kind {
        "link_down" => "mất kết nối",
        "agent_unreachable" => "agent mất liên lạc",
        "high_loss" => "mất gói cao",
        "high_latency" => "độ trễ cao",
        "congestion" => "nghẽn mạng",
        "flapping" => "chập chờn",
        "device_rebooted" => "khởi động lại",
        "interface_down" => "cổng mạng ngừng",
        "unknown_agent" => "agent lạ",
        "coverage_lost" => "mất sóng",
        other => other,
    };
    lang.pick(vi, kind)
}

/// `alerts ack ID --by NAME [--note TEXT]`.
pub fn acknowledge(
    config: &Config,
    id: u64,
    by: String,
    note: Option<String>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let body = json!({ "by": by, "note": note }).to_string();
    command(config, &format!("/api/v1/alerts/{id}/ack"), &body)?;
    writeln!(out, "alert {id} acknowledged by {by}").context("writing output")?;
    Ok(())
}

/// `silence SITE --until TIME [--from TIME] --by NAME [--note TEXT]`.
pub fn silence(
    config: &Config,
    site: String,
    from: Option<&str>,
    until: &str,
    by: String,
    note: Option<String>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let now = Utc::now();
    let until =
        time::parse_or_from_now(until, now).map_err(|e| Failure::Usage(format!("--until: {e}")))?;
    let from = from
        .map(|f| time::parse_or_from_now(f, now))
        .transpose()
        .map_err(|e| Failure::Usage(format!("--from: {e}")))?;
    let body = json!({
        "site": site,
        "from": from.map(crate::store::millis),
        "until": crate::store::millis(until),
        "by": by,
        "note": note,
    })
    .to_string();
    command(config, "/api/v1/silences", &body)?;
    writeln!(
        out,
        "site {site} silenced until {} (Asia/Ho_Chi_Minh)",
        time::local(until)
    )
    .context("writing output")?;
    Ok(())
}

/// POSTs a command with the configured token; a refusal is an error with the daemon's reason.
fn command(config: &Config, path: &str, body: &str) -> Result<(), Failure> {
    let address = daemon_client::reachable(config.http.listen);
    let token = config.http.token.as_deref();
    if token.is_none() {
        return Err(Failure::Usage(format!(
            "{}: http.token is not set; the collector refuses commands without it",
            config.file.display()
        )));
    }
    let (status, answer) = daemon_client::post_json(address, path, token, body, TIMEOUT)
        .with_context(|| format!("asking the collector at {address} (is it running?)"))?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let reason = serde_json::from_str::<Value>(&answer)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or(answer);
    Err(Failure::Runtime(anyhow!(
        "the collector refused ({status}): {reason}"
    )))
}
