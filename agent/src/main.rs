//! `netmon-agent`: parses flags, sets up logging and signals, maps errors to exit codes
//! (0 ok, 64 bad configuration, 65 unreadable input data, 1 runtime error). Everything else lives in the library.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use netmon_agent::cellular::{self, Format};
use netmon_agent::output::{self, Lang};
use netmon_agent::{Config, probe_once, run};
use tokio_util::sync::CancellationToken;
use tracing::info;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Exit code for a configuration that cannot be used (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;

/// Exit code for input data that cannot be parsed (BSD `EX_DATAERR`).
const EXIT_DATA: u8 = 65;

#[derive(Debug, Parser)]
#[command(
    name = "netmon-agent",
    version,
    about = "netmon agent: probes links, publishes events over MQTT"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM or SIGINT.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate the configuration and explain what it means.
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run one probe round against every target and print the result (needs no broker).
    Probe {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// One JSON object per target per line (the `probe_round_completed` body).
        #[arg(long)]
        json: bool,
        /// Language of the table.
        #[arg(long, value_enum, default_value_t = LangArg::Vi)]
        lang: LangArg,
    },
    /// Show the journal: backlog, oldest and newest event, acknowledged watermark, overflows.
    /// Read-only: safe while the agent runs.
    Journal {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// One JSON object (the format is documented in `output.rs`, `JournalReport`).
        #[arg(long)]
        json: bool,
        /// Language of the text.
        #[arg(long, value_enum, default_value_t = LangArg::Vi)]
        lang: LangArg,
    },
    /// Read the SNMP devices now: interfaces, rates over a short sample, uptime (needs no broker).
    /// Exit code 1 when a device could not be read.
    Snmp {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Only the device with this address (as in `[[snmp.devices]]`).
        #[arg(long, value_name = "ADDR")]
        device: Option<String>,
        /// Time between the two polls the rates are measured over.
        #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
        sample: std::time::Duration,
        /// One JSON object per device per line (documented in `snmp/report.rs`).
        #[arg(long)]
        json: bool,
        /// Language of the table.
        #[arg(long, value_enum, default_value_t = LangArg::Vi)]
        lang: LangArg,
    },
    /// Read every configured modem now (`[[cellular]]`) and print what it says (needs no
    /// broker); exit code 1 when a modem could not be read. `cellular parse` needs no
    /// configuration.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Cellular {
        #[arg(long, value_name = "FILE", required = true)]
        config: Option<PathBuf>,
        /// One JSON object per modem per line (documented in `cellular/report.rs`).
        #[arg(long)]
        json: bool,
        /// Language of the table.
        #[arg(long, value_enum, default_value_t = LangArg::Vi)]
        lang: LangArg,
        #[command(subcommand)]
        command: Option<CellularCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum CellularCommand {
    /// Parse a modem answer (from FILE, or stdin) and print the `cellular_signal_sampled` body
    /// (the reading and its quality class with the default thresholds) as JSON.
    Parse {
        /// What produced the input.
        #[arg(long, value_enum)]
        format: FormatArg,
        /// The input; stdin when absent.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// `mmcli -m N -J` and/or `mmcli -m N --signal-get -J`.
    Mmcli,
    /// `uqmi --get-signal-info` and/or `--get-serving-system`.
    Uqmi,
    /// A 27.007 transcript: `+CESQ`, `+COPS?`, `+CEREG?`/`+C5GREG?`.
    At,
    /// Quectel `+QENG="servingcell"`, `+QNWINFO`, `+QCSQ`.
    Quectel,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Mmcli => Format::Mmcli,
            FormatArg::Uqmi => Format::Uqmi,
            FormatArg::At => Format::At,
            FormatArg::Quectel => Format::Quectel,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LangArg {
    Vi,
    En,
}

impl From<LangArg> for Lang {
    fn from(lang: LangArg) -> Lang {
        match lang {
            LangArg::Vi => Lang::Vi,
            LangArg::En => Lang::En,
        }
    }
}

/// `RUST_LOG` as `target=level,…` directives (a bare level is the default), else `info`. The
/// agent does without `EnvFilter`'s span and regex matching: it would cost a regex engine in a
/// router's small flash.
fn log_filter() -> Targets {
    let default = Targets::new().with_default(tracing::Level::INFO);
    match std::env::var("RUST_LOG") {
        Ok(directives) => directives.parse().unwrap_or_else(|e| {
            eprintln!("RUST_LOG={directives:?} ignored ({e}); logging at info");
            default
        }),
        Err(_) => default,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(log_filter())
        .init();
    let path = match &cli.command {
        Command::Run { config }
        | Command::Check { config }
        | Command::Probe { config, .. }
        | Command::Journal { config, .. }
        | Command::Snmp { config, .. }
        | Command::Cellular {
            config: Some(config),
            command: None,
            ..
        } => config,
        Command::Cellular {
            command: Some(CellularCommand::Parse { format, file }),
            ..
        } => return cellular_parse((*format).into(), file.as_deref()),
        Command::Cellular { config: None, .. } => {
            eprintln!("error: cellular needs --config FILE (or the parse subcommand)");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command {
        Command::Check { .. } => {
            print!("{}", output::check_summary(&config));
            Ok(())
        }
        Command::Probe { json, lang, .. } => probe(&config, json, lang),
        Command::Journal { json, lang, .. } => journal(&config, json, lang),
        Command::Run { .. } => daemon(config),
        Command::Snmp {
            device,
            sample,
            json,
            lang,
            ..
        } => return snmp(&config, device.as_deref(), sample, json, lang),
        Command::Cellular { json, lang, .. } => return cellular_read(&config, json, lang),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn probe(config: &Config, json: bool, lang: LangArg) -> anyhow::Result<()> {
    // One round is one loop on one thread: a current-thread runtime is the cheapest.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(probe_once(config))?;
    let text = if json {
        output::probe_json(&config.targets, &results)
    } else {
        output::probe_table(&config.targets, &results, lang.into())
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// `snmp`: 0 when every device answered, 1 when one did not, 64 when `--device` names none.
fn snmp(
    config: &Config,
    device: Option<&str>,
    sample: std::time::Duration,
    json: bool,
    lang: LangArg,
) -> ExitCode {
    use netmon_agent::snmp::report;
    if let Some(address) = device
        && !config.snmp.devices.iter().any(|d| {
            d.address == address
                || d.socket.to_string() == address
                || d.socket.ip().to_string() == address
        })
    {
        eprintln!(
            "error: {}: snmp.devices: no device with address {address:?}",
            config.source.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    print_report(async {
        let reports = report::read_now(config, device, sample).await;
        let text = if json {
            report::json(&reports)
        } else {
            report::text(&reports, sample, lang.into())
        };
        (text, reports.iter().all(|r| r.error.is_none()))
    })
}

/// Runs `read` on a current-thread runtime and prints the text it returns: exit code 0 when it
/// says all went well, else 1.
fn print_report(read: impl Future<Output = (String, bool)>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (text, ok) = runtime.block_on(read);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("error: writing stdout: {e}");
        return ExitCode::FAILURE;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn journal(config: &Config, json: bool, lang: LangArg) -> anyhow::Result<()> {
    let inspection = netmon_agent::journal::inspect(&config.journal.dir)?;
    let text = if json {
        output::journal_json(&inspection)
    } else {
        output::journal_text(&inspection, lang.into())
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// `cellular --config`: 0 when every modem answered, 1 when one did not (its reason in the
/// output and on stderr), 64 when none is configured.
fn cellular_read(config: &Config, json: bool, lang: LangArg) -> ExitCode {
    use netmon_agent::cellular::report;
    if config.cellular.is_empty() {
        eprintln!(
            "error: {}: cellular: no [[cellular]] modem is configured",
            config.source.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    print_report(async {
        let reports = report::read_now(&config.cellular).await;
        let text = if json {
            report::json(&reports)
        } else {
            report::text(&reports, lang.into())
        };
        let mut ok = true;
        for r in &reports {
            if let Err(error) = &r.result {
                eprintln!("error: modem {}: {error}", r.name);
                ok = false;
            }
        }
        (text, ok)
    })
}

/// `cellular parse`: 0 with the reading on stdout, 65 when the input is not the format, 1 when
/// it cannot be read.
fn cellular_parse(format: Format, file: Option<&std::path::Path>) -> ExitCode {
    let text = match file {
        Some(path) => std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display())),
        None => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
                .map(|_| bytes)
                .map_err(|e| format!("reading stdin: {e}"))
        }
    };
    let text = match text {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cellular::parse(format, &text) {
        Ok(reading) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(output::cellular_json(&reading).as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: writing stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: not valid {} input: {e}", format.name());
            ExitCode::from(EXIT_DATA)
        }
    }
}

fn daemon(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => info!(signal = "SIGTERM", "stopping"),
                _ = tokio::signal::ctrl_c() => info!(signal = "SIGINT", "stopping"),
            }
            signals.cancel();
        });
        run(config, shutdown).await
    })
}
