//! The cellular task: one loop per configured modem, each on its own fixed-rate schedule (starts
//! spread over the first interval), taking a reading with its [`Reader`], folding it into its
//! [`ModemState`] and sending the events to the recorder — the same channel as the probe
//! scheduler and the SNMP poller, so they go through the same journal. A modem that hangs costs
//! its own loop at most the reading's bound ([`bound`]); the other loops do not wait for it.

use std::time::Duration;

use netmon_events::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cellular::modem::ModemState;
use crate::cellular::reader::{GPP_COMMANDS, QUECTEL_COMMANDS, Reader};
use crate::cellular::settings::{CellularModem, Dialect, Source};
use crate::recorder::Clock;

/// The longest one reading of `modem` may take: its timeout for each command it runs, plus a
/// second. The reader enforces the timeouts itself; this bound is the backstop.
pub fn bound(modem: &CellularModem) -> Duration {
    let commands = match &modem.source {
        Source::Mmcli { .. } => 3,
        Source::Uqmi { .. } => 2,
        Source::At {
            dialect: Dialect::Gpp,
            ..
        } => GPP_COMMANDS.len(),
        Source::At {
            dialect: Dialect::Quectel,
            ..
        } => QUECTEL_COMMANDS.len(),
        Source::Command { .. } => 1,
    };
    modem.timeout * u32::try_from(commands).unwrap_or(1) + Duration::from_secs(1)
}

/// One reading within [`bound`], the error as one line of text.
pub async fn read_bounded(reader: &mut Reader) -> Result<netmon_events::Signal, String> {
    let limit = bound(&reader.modem);
    match tokio::time::timeout(limit, reader.read()).await {
        Ok(Ok(signal)) => Ok(signal),
        Ok(Err(error)) => Err(format!("{error:#}")),
        Err(_) => Err(format!("no reading within {limit:?}")),
    }
}

/// Reads every modem until `shutdown` (or until the recorder is gone).
pub async fn run_cellular(
    modems: Vec<CellularModem>,
    clock: Clock,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    info!(modems = modems.len(), "reading cellular modems");
    crate::spread::run_spread(
        modems,
        |m| m.interval,
        |modem, offset| poll_modem(modem, offset, clock, events.clone(), shutdown.clone()),
    )
    .await;
    info!("cellular reading stopped");
}

async fn poll_modem(
    modem: CellularModem,
    offset: Duration,
    clock: Clock,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut state = ModemState::new(
        modem.name.clone(),
        modem.thresholds,
        modem.fail_after,
        modem.changes_after,
    );
    let interval = modem.interval;
    let name = modem.name.clone();
    let mut reader = Reader::new(modem);
    let mut next = tokio::time::Instant::now() + offset;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = read_bounded(&mut reader) => result,
        };
        let mono_ms = clock.now().mono_ms;
        let out = match result {
            Ok(signal) => {
                debug!(modem = %name, technology = signal.technology.as_str(), "modem read");
                state.observe(signal, mono_ms)
            }
            Err(error) => {
                if state.is_silent() {
                    debug!(modem = %name, %error, "modem still not answering");
                } else {
                    warn!(modem = %name, %error, "modem reading failed");
                }
                state.failed(&error, mono_ms)
            }
        };
        for event in out {
            log(&event);
            if events.send(event).await.is_err() {
                return;
            }
        }
        // Fixed rate; a reading that overran its interval skips the missed ticks.
        next += interval;
        let now = tokio::time::Instant::now();
        while next <= now {
            next += interval;
        }
    }
}

fn log(event: &Event) {
    match event {
        Event::ModemStoppedAnswering { modem, error } => {
            warn!(modem = %modem, %error, "modem stopped answering")
        }
        Event::ModemAnswersAgain {
            modem,
            silent_for_ms,
        } => info!(modem = %modem, silent_for_ms, "modem answers again"),
        Event::CellularServiceLost {
            modem,
            registration,
            ..
        } => warn!(modem = %modem, registration = registration.as_str(), "cellular service lost"),
        Event::CellularServiceRestored {
            modem, lost_for_ms, ..
        } => info!(modem = %modem, lost_for_ms, "cellular service restored"),
        Event::CellularTechnologyChanged {
            modem, from, to, ..
        } => {
            info!(modem = %modem, from = from.as_str(), to = to.as_str(), "cellular technology changed")
        }
        Event::CellularOperatorChanged { modem, to_plmn, .. } => {
            info!(modem = %modem, to_plmn = ?to_plmn, "cellular operator changed")
        }
        _ => {}
    }
}
