//! `netmon-collector`: parses the command line, sets up logging and signals, maps failures to
//! exit codes (0 ok, 64 bad configuration or usage, 1 runtime error). The work is in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use netmon_collector::cli::{self, Cli, Command, Failure};
use netmon_collector::config::Config;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut out = std::io::stdout().lock();
    let config = match cli.command.config().map(Config::load) {
        Some(Ok(config)) => config,
        Some(Err(e)) => {
            eprintln!("netmon-collector: bad configuration: {e}");
            return ExitCode::from(EX_USAGE);
        }
        None => {
            let result = cli::without_config(cli.command, &mut out, &mut std::io::stderr());
            return exit_code(result);
        }
    };
    let result = match cli.command {
        Command::Run { .. } => run(config),
        Command::Check { .. } => cli::check(&config, &mut out),
        Command::Events {
            agent,
            event_type,
            limit,
            json,
            lang,
            ..
        } => cli::events(&config, agent, event_type, limit, json, lang, &mut out),
        Command::Status { json, lang, .. } => {
            cli::status(&config, json, lang, &mut out, &mut std::io::stderr())
        }
        Command::Replay {
            target: cli::ReplayTarget::Influx { from, .. },
        } => {
            let stderr = std::io::stderr();
            let terminal = stderr.is_terminal();
            cli::replay_influx(
                &config,
                from.as_deref(),
                terminal,
                &mut out,
                &mut stderr.lock(),
            )
        }
        Command::Inventory { action } => netmon_collector::inventory::cli::run(
            action,
            Some(&config),
            &mut out,
            &mut std::io::stderr(),
        ),
        Command::Alerts {
            action: None,
            open,
            json,
            lang,
            ..
        } => netmon_collector::alerts::cli::list(&config, open, json, lang, &mut out),
        Command::Alerts {
            action: Some(cli::AlertsAction::Ack { id, by, note }),
            ..
        } => netmon_collector::alerts::cli::acknowledge(&config, id, by, note, &mut out),
        Command::Silence {
            site,
            until,
            from,
            by,
            note,
            ..
        } => netmon_collector::alerts::cli::silence(
            &config,
            site,
            from.as_deref(),
            &until,
            by,
            note,
            &mut out,
        ),
        Command::Backup {
            to, force, lang, ..
        } => netmon_collector::store::backup::backup(&config, &to, force, lang, &mut out),
        Command::Restore {
            from, force, lang, ..
        } => netmon_collector::store::backup::restore(&config, &from, force, lang, &mut out),
        Command::Report {
            kind:
                cli::ReportKind::Coverage {
                    province,
                    commune,
                    from,
                    to,
                    format,
                    lang,
                    ..
                },
        } => {
            let args = netmon_collector::coverage::cli::CoverageArgs {
                province: province.as_deref(),
                commune: commune.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
                format,
                lang,
            };
            let now = chrono::Utc::now();
            netmon_collector::coverage::cli::coverage(
                &config,
                &args,
                now,
                &mut out,
                &mut std::io::stderr(),
            )
        }
    };
    exit_code(result)
}

/// 0 ok, 64 bad configuration or usage, 1 runtime error.
fn exit_code(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("netmon-collector: {message}");
            ExitCode::from(EX_USAGE)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("netmon-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("starting the runtime")))?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(signals(shutdown.clone()));
        netmon_collector::run(config, shutdown).await
    })?;
    Ok(())
}

/// Cancels `shutdown` at the first SIGTERM or SIGINT.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the collector with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "stopping"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "stopping"),
    }
    shutdown.cancel();
}
