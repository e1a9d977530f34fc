//! The command line: `run`, `check`, `events`, `status` and the subcommands in `cli/`. The commands other than `run` only
//! read (the config, the store opened read-only, the daemon's HTTP API) and write to `out`;
//! `backup` writes its copy and `restore`, with the daemon stopped, the store
//! (`store/backup.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use netmon_events::Event;

use crate::config::Config;
use crate::store::{Query, Store};
use crate::{api, intake, state};
use table::Lang;

pub mod daemon_client;
pub mod failure;
pub(crate) mod store_replay;
pub mod table;
pub mod time;
pub use crate::alerts::cli::AlertsAction;
pub use crate::coverage::cli::ReportKind;
pub use crate::inventory::cli::InventoryAction;
pub use failure::Failure;
pub(crate) use store_replay::{open_read_only, replay_store};

#[derive(Debug, Parser)]
#[command(
    name = "netmon-collector",
    version,
    about = "The netmon collector: MQTT → SQLite event store → live state"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector daemon.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the configuration and summarise it.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// List stored events (read-only; works while the daemon runs).
    Events {
        #[arg(long)]
        config: PathBuf,
        /// Only this agent's events.
        #[arg(long)]
        agent: Option<String>,
        /// Only events of this type (for example link_went_down).
        #[arg(long = "type")]
        event_type: Option<String>,
        /// The newest N events (0 for all).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = Lang::Vi)]
        lang: Lang,
    },
    /// Show the live state: from the running daemon, or rebuilt from the store.
    Status {
        #[arg(long)]
        config: PathBuf,
        /// The same JSON as GET /api/v1/state.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = Lang::Vi)]
        lang: Lang,
    },
    /// Re-project the store into a projection's server (the daemon's cursor is not touched).
    Replay {
        #[command(subcommand)]
        target: ReplayTarget,
    },
    /// The running collector's alerts (`--open` for open ones only); `alerts ack ID` acknowledges.
    Alerts {
        #[command(subcommand)]
        action: Option<AlertsAction>,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// Only open alerts.
        #[arg(long)]
        open: bool,
        /// The same JSON as GET /api/v1/alerts.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = Lang::Vi)]
        lang: Lang,
    },
    /// Silence a site's notifications for maintenance (alerts are still recorded).
    Silence {
        /// The site id from the inventory.
        site: String,
        /// End: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" in Vietnam time (UTC+7), a date YYYY-MM-DD
        /// (its midnight in Vietnam time, 00:00 +07:00) or a duration from now ("4h").
        #[arg(long)]
        until: String,
        /// Start (default now), in the same forms.
        #[arg(long)]
        from: Option<String>,
        /// Who silences (recorded).
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        config: PathBuf,
    },
    /// The site inventory: import it from a spreadsheet's CSV, or show it.
    Inventory {
        #[command(subcommand)]
        action: InventoryAction,
    },
    /// Reports over the store (read-only; works while the daemon runs): `report coverage`.
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
    /// Copy the store to a new file while the daemon runs (SQLite's online backup).
    Backup {
        #[arg(long)]
        config: PathBuf,
        /// The copy; it must not exist yet unless --force.
        #[arg(long)]
        to: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = Lang::Vi)]
        lang: Lang,
    },
    /// Put a backup in the store's place; the daemon must be stopped.
    Restore {
        #[arg(long)]
        config: PathBuf,
        /// A file made by `backup`.
        #[arg(long)]
        from: PathBuf,
        /// Replace an existing store (the events stored after the backup are lost).
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = Lang::Vi)]
        lang: Lang,
    },
}

/// What `replay` re-projects into.
#[derive(Debug, Subcommand)]
pub enum ReplayTarget {
    /// The `[influx]` server.
    Influx {
        #[arg(long)]
        config: PathBuf,
        /// Only events at or after this time: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" in Vietnam time
        /// (UTC+7), or a date YYYY-MM-DD, which is its midnight in Vietnam time (00:00 +07:00).
        #[arg(long)]
        from: Option<String>,
    },
}

impl Command {
    /// The `--config` file; `None` for the commands that read none (`inventory import`).
    pub fn config(&self) -> Option<&Path> {
        match self {
            Command::Run { config }
            | Command::Check { config }
            | Command::Events { config, .. }
            | Command::Status { config, .. }
            | Command::Replay {
                target: ReplayTarget::Influx { config, .. },
            }
            | Command::Silence { config, .. }
            | Command::Backup { config, .. }
            | Command::Restore { config, .. }
            | Command::Report {
                kind: ReportKind::Coverage { config, .. },
            }
            | Command::Inventory {
                action: InventoryAction::Show { config, .. },
            } => Some(config),
            Command::Alerts { config, .. } => config.as_deref(),
            Command::Inventory {
                action: InventoryAction::Import { .. },
            } => None,
        }
    }
}

/// Runs a command that reads no configuration.
pub fn without_config(
    command: Command,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Failure> {
    match command {
        Command::Inventory { action } => crate::inventory::cli::run(action, None, out, err),
        Command::Alerts { .. } => Err(Failure::Usage(
            "alerts: --config FILE is required (the collector's configuration)".into(),
        )),
        other => Err(Failure::Usage(format!("{other:?}: needs --config"))),
    }
}

/// `replay influx`: progress on `progress_out` (a bar when `terminal`), a summary on `out`.
pub fn replay_influx(
    config: &Config,
    from: Option<&str>,
    terminal: bool,
    out: &mut impl Write,
    progress_out: &mut impl Write,
) -> Result<(), Failure> {
    let from = from
        .map(|t| time::parse(t).map_err(|e| format!("--from: {e}")))
        .transpose()
        .map_err(Failure::Usage)?;
    if config.influx.is_none() {
        return Err(Failure::Usage(format!(
            "{}: no [influx] section to replay into",
            config.file.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut progress = crate::influx::replay::Progress::new(progress_out, terminal);
    let report = runtime.block_on(crate::influx::replay::replay_influx(
        config,
        from,
        |done, total| progress.update(done, total),
    ))?;
    let secs = report.elapsed.as_secs_f64().max(0.001);
    writeln!(
        out,
        "replayed {} events: {} points written, {} refused, in {:.1} s ({:.0} points/s)",
        report.events,
        report.points_written,
        report.rejected_points,
        secs,
        report.points_written as f64 / secs
    )
    .context("writing the summary")?;
    Ok(())
}

/// A retention period as `check` shows it.
fn kept(keep: Option<Duration>) -> String {
    keep.map_or_else(
        || "for ever".into(),
        |d| humantime::format_duration(d).to_string(),
    )
}

/// `check`: the configuration in a few lines.
pub fn check(config: &Config, out: &mut impl Write) -> Result<(), Failure> {
    let m = &config.mqtt;
    let scheme = if m.tls.is_some() { "mqtts" } else { "mqtt" };
    let store = if config.store.path.exists() {
        match Store::open_read_only(&config.store.path).and_then(|s| s.count()) {
            Ok(n) => format!("exists, {n} events"),
            Err(e) => format!("exists, not readable: {e}"),
        }
    } else {
        "will be created".into()
    };
    let text = format!(
        "{file}: valid\n\
         mqtt:       {scheme}://{host}:{port}, client id {id:?} (persistent session), login {login}\n\
         subscribes: {filters}\n\
         store:      {store_path} ({store}); keeps measurements {keep_m}, other events {keep_f}\n\
         http:       {listen}\n\
         silence:    after {after}\n\
         delivery:   late after {late}, clock tolerance {tolerance}, ack at most every {ack} and {acks_per_s}/s\n\
         inventory:  {inventory}\n",
        file = config.file.display(),
        host = m.host,
        port = m.port,
        id = m.client_id,
        login = m.credentials.as_ref().map_or("none", |(u, _)| u.as_str()),
        filters = intake::filters(m).join(", "),
        store_path = config.store.path.display(),
        keep_m = kept(config.store.keep_measurements),
        keep_f = kept(config.store.keep_facts),
        listen = config.http.listen,
        after = humantime::format_duration(config.silence.after),
        late = humantime::format_duration(config.delivery.late_after),
        tolerance = humantime::format_duration(config.delivery.clock_tolerance),
        ack = humantime::format_duration(config.delivery.ack_interval),
        acks_per_s = config.delivery.max_acks_per_s,
        inventory = config
            .inventory
            .as_ref()
            .map_or_else(|| "none (alerts name agents by id)".into(), |i| i.summary()),
    );
    out.write_all(text.as_bytes()).context("writing output")?;
    Ok(())
}

/// `events`: stored events, oldest first, as a table or JSON lines.
pub fn events(
    config: &Config,
    agent: Option<String>,
    event_type: Option<String>,
    limit: u64,
    json: bool,
    lang: Lang,
    out: &mut impl Write,
) -> Result<(), Failure> {
    if let Some(t) = &event_type
        && !Event::TYPE_NAMES.contains(&t.as_str())
    {
        return Err(Failure::Usage(format!(
            "unknown event type {t:?}; expected one of: {}",
            Event::TYPE_NAMES.join(", ")
        )));
    }
    let store = open_read_only(config)?;
    let query = Query {
        agent,
        event_type,
        limit: (limit > 0).then_some(limit),
    };
    let events = store.query(&query).context("reading the store")?;
    let text = if json {
        events
            .iter()
            .map(|e| api::event_line(e) + "\n")
            .collect::<String>()
    } else {
        table::events(&events, lang)
    };
    out.write_all(text.as_bytes()).context("writing output")?;
    Ok(())
}

/// `status`: the daemon's state, or the state rebuilt from the store when it does not answer
/// (said on `err`).
pub fn status(
    config: &Config,
    json: bool,
    lang: Lang,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Failure> {
    let address = daemon_client::reachable(config.http.listen);
    let token = config.http.read_token.as_deref();
    let asked =
        daemon_client::get_with_token(address, "/api/v1/state", token, Duration::from_secs(3));
    let text = match asked {
        Ok(body) => {
            let reasons =
                daemon_client::health(address, Duration::from_secs(3)).unwrap_or_default();
            if !reasons.is_empty() {
                let head = lang.pick(
                    "collector đang gặp sự cố (/healthz 503):",
                    "the collector is unhealthy (/healthz 503):",
                );
                writeln!(err, "{head}").context("writing output")?;
                for reason in reasons {
                    writeln!(err, "  {reason}").context("writing output")?;
                }
            }
            if json {
                format!("{}\n", body.trim_end())
            } else {
                let view: api::StateView =
                    serde_json::from_str(&body).context("reading the collector's state")?;
                table::status(&view, lang)
            }
        }
        Err(e) => {
            writeln!(
                err,
                "the collector does not answer ({e}); state rebuilt from the store {}",
                config.store.path.display()
            )
            .context("writing output")?;
            let mut state = state::State::default();
            replay_store(config, err, None, |event| state.apply(event))?;
            if json {
                format!("{}\n", api::state_json(&state))
            } else {
                table::status(&api::StateView::new(&state), lang)
            }
        }
    };
    out.write_all(text.as_bytes()).context("writing output")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rejection_names_are_the_api_field_names() {
        use crate::intake::recorder::Rejection::*;
        let json = serde_json::to_value(api::RejectedByReason::default()).unwrap();
        for reason in [
            ForeignTopic,
            Oversized,
            Malformed,
            AgentMismatch,
            InvalidEvent,
            ForbiddenType,
        ] {
            assert!(json.get(reason.as_str()).is_some(), "{}", reason.as_str());
        }
    }

    /// `replay influx --from 2026-11-01` starts at Vietnam midnight, 2026-10-31T17:00Z (it was
    /// UTC midnight, seven hours later, before the CLI's times had one parser).
    #[test]
    fn replay_from_a_date_starts_at_vietnam_midnight() {
        use crate::store::{NewEvent, Origin};
        let dir = crate::store::testkit::temp_dir();
        let store = dir.path().join("events.db");
        let times = [
            "2026-10-31T16:59:59.999Z",
            "2026-10-31T17:00:00.000Z",
            "2026-10-31T23:59:59.000Z",
        ];
        let events: Vec<NewEvent> = times
            .iter()
            .zip(1..)
            .map(|(time, seq)| {
                let envelope: netmon_events::Envelope = serde_json::from_str(&format!(
                    r#"{{"v":1,"agent":"a","boot":"b","seq":{seq},"time":"{time}","mono_ms":{seq},"type":"agent_heartbeat","uptime_s":1,"backlog":0}}"#
                ))
                .unwrap();
                NewEvent {
                    province: "hue".parse().unwrap(),
                    received: envelope.time,
                    origin: Origin::Agent,
                    time: envelope.time,
                    clock: intake::clock::ClockSource::Agent,
                    late: false,
                    envelope,
                }
            })
            .collect();
        Store::open(&store).unwrap().append(&events, &[]).unwrap();
        // An InfluxDB v2 write endpoint that takes everything.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let influx = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().route(
                    "/api/v2/write",
                    axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        let file = dir.path().join("collector.toml");
        std::fs::write(
            &file,
            format!(
                "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nclient_id = \"c\"\nprovince = \"hue\"\n\
                 [store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
                 [influx]\nurl = \"http://{influx}\"\napi = \"v2\"\norg = \"o\"\nbucket = \"b\"\n",
                store.display()
            ),
        )
        .unwrap();
        let config = Config::load_with_env(&file, []).unwrap();
        let (mut out, mut progress) = (Vec::new(), Vec::new());
        replay_influx(&config, Some("2026-11-01"), false, &mut out, &mut progress).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("replayed 2 events: 2 points written"),
            "{out}"
        );
        let err = replay_influx(
            &config,
            Some("1/11/2026"),
            false,
            &mut out.clone().into_bytes(),
            &mut progress,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--from") && err.contains("1/11/2026"), "{err}");
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "netmon-collector",
            "events",
            "--config",
            "c.toml",
            "--type",
            "link_went_down",
            "--limit",
            "5",
            "--json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Events {
                limit: 5,
                json: true,
                ..
            }
        ));
        assert_eq!(cli.command.config(), Some(Path::new("c.toml")));
        let cli = Cli::try_parse_from([
            "netmon-collector",
            "restore",
            "--config",
            "c.toml",
            "--from",
            "b.db",
            "--lang",
            "en",
        ])
        .unwrap();
        assert!(matches!(
            &cli.command,
            Command::Restore {
                force: false,
                lang: Lang::En,
                from,
                ..
            } if from == Path::new("b.db")
        ));
        assert_eq!(cli.command.config(), Some(Path::new("c.toml")));
    }
}
