//! The SNMP poller task: one loop per configured device, each on its own fixed-rate schedule
//! (starts spread over the first interval), reading a [`Snapshot`] with its [`Client`], folding
//! it into its [`DeviceState`] and sending the resulting events to the recorder — the same
//! channel as the probe scheduler, so they go through the same journal. State changes (an
//! interface down or back, a reboot, silence) go at once; the counters go once per report window
//! (`report_every` from the first poll: the first poll at or after the window's end closes it,
//! and so does shutdown). A device that stops answering is reported once and then polled with
//! back-off; the other devices' loops are not affected by it.

use std::time::Duration;

use netmon_events::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{SnmpConfig, SnmpDevice};
use crate::recorder::Clock;
use crate::snmp::device::DeviceState;
use crate::snmp::mib::Snapshot;
use crate::snmp::session::Client;

/// Reads one snapshot; returns it with the monotonic ms it stands for (the middle of the walk).
pub async fn read(client: &mut Client, clock: &Clock) -> anyhow::Result<(Snapshot, u64)> {
    let start = clock.now().mono_ms;
    let snapshot = client.snapshot().await?;
    let end = clock.now().mono_ms;
    Ok((snapshot, start + (end.saturating_sub(start)) / 2))
}

/// Polls every device until `shutdown` (or until the recorder is gone).
pub async fn run_snmp(
    config: SnmpConfig,
    clock: Clock,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    info!(devices = config.devices.len(), "polling SNMP devices");
    crate::spread::run_spread(
        config.devices.clone(),
        |d| d.interval,
        |device, offset| {
            let client = Client::new(&device, &config);
            poll_device(
                device,
                client,
                offset,
                clock,
                events.clone(),
                shutdown.clone(),
            )
        },
    )
    .await;
    info!("SNMP polling stopped");
}

async fn poll_device(
    device: SnmpDevice,
    mut client: Client,
    offset: Duration,
    clock: Clock,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut state = DeviceState::new(device.address.clone(), device.interfaces.clone());
    let mut next = tokio::time::Instant::now() + offset;
    let mut report_at = next + device.report_every;
    let mut warned_missing = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(next) => {}
        }
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            () = shutdown.cancelled() => break,
            result = read(&mut client, &clock) => result,
        };
        let mut out = match result {
            Ok((snapshot, mono_ms)) => {
                if !warned_missing {
                    let missing = state.missing(&snapshot);
                    if !missing.is_empty() {
                        warn!(device = %device.address, ?missing, "configured interfaces not found on the device");
                    }
                    warned_missing = true;
                }
                debug!(device = %device.address, interfaces = snapshot.interfaces.len(), "polled");
                state.observe(&snapshot, mono_ms)
            }
            Err(error) => {
                let error = format!("{error:#}");
                if !state.is_silent() {
                    warn!(device = %device.address, %error, "device stopped answering");
                } else {
                    debug!(device = %device.address, %error, "device still not answering");
                }
                state.failed(&error, clock.now().mono_ms)
            }
        };
        if started >= report_at {
            out.extend(state.report());
            while report_at <= started {
                report_at += device.report_every;
            }
        }
        for event in out {
            log(&event);
            if events.send(event).await.is_err() {
                return;
            }
        }
        next = started + state.next_delay(device.interval);
    }
    // The partial window at shutdown.
    for event in state.report() {
        if events.send(event).await.is_err() {
            return;
        }
    }
}

fn log(event: &Event) {
    match event {
        Event::DeviceRebooted {
            device,
            uptime_s,
            previous_uptime_s,
        } => warn!(device = %device.address, uptime_s, previous_uptime_s, "device rebooted"),
        Event::DeviceAnswersAgain {
            device,
            silent_for_ms,
        } => info!(device = %device.address, silent_for_ms, "device answers again"),
        Event::InterfaceWentDown {
            device,
            interface,
            oper_status,
        } => {
            warn!(device = %device.address, interface = %interface.name, ?oper_status, "interface went down")
        }
        Event::InterfaceCameBack {
            device,
            interface,
            down_for_ms,
        } => {
            info!(device = %device.address, interface = %interface.name, down_for_ms, "interface came back")
        }
        _ => {}
    }
}
