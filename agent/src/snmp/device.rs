//! One polled device's state (pure): polls in, events out. Times are the agent's monotonic
//! milliseconds, passed in.
//!
//! - `device_rebooted` when `sysUpTime` went backwards (a 497-day TimeTicks wrap excepted) or is
//!   shorter than the time since the previous poll; that poll yields no rates (counters restart
//!   with the device) and becomes the new baseline.
//! - from the second poll on, every watched interface's rates ([`crate::snmp::rates`]) and
//!   utilisation of the configured capacity, else of the speed the device reports, folded into
//!   its [`CounterWindow`]; [`DeviceState::report`] turns the windows into one
//!   `interface_counters_sampled` per interface (every `snmp.report_every`).
//! - `interface_went_down` when `ifOperStatus` leaves `up` (or a configured interface is first
//!   seen not up), `interface_came_back` when it is `up` again, with how long it was not.
//! - `device_stopped_answering` at the first failed poll, `device_answers_again` at the next
//!   answer; meanwhile [`DeviceState::next_delay`] backs off so a dead device costs little.

use std::collections::BTreeMap;
use std::time::Duration;

use netmon_events::{Device, Event, Interface, OperStatus};
use netmon_mqtt::Backoff;

use crate::config::{InterfaceKey, WatchedInterface};
use crate::snmp::mib::{Row, Snapshot};
use crate::snmp::rates::{self, Reading};
use crate::snmp::window::CounterWindow;

/// TimeTicks wrap at 2³² hundredths of a second (~497 days).
const TICKS_WRAP: u64 = 1 << 32;

/// Longest back-off between polls of a device that does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Longest `device_stopped_answering` error text (the contract's bound).
const MAX_ERROR_LEN: usize = 512;

#[derive(Debug, Clone)]
struct InterfaceState {
    reading: Reading,
    up: bool,
    /// Monotonic ms since when it is not up.
    down_since: Option<u64>,
}

/// The state of one device across polls.
#[derive(Debug, Clone)]
pub struct DeviceState {
    device: Device,
    watch: Vec<WatchedInterface>,
    /// sysUpTime (ticks) and the monotonic ms of the previous answer.
    uptime: Option<(u32, u64)>,
    interfaces: BTreeMap<u32, InterfaceState>,
    /// Monotonic ms of the first failed poll of the current silence.
    silent_since: Option<u64>,
    failures: u32,
    /// The counters of the current report window, by ifIndex.
    windows: BTreeMap<u32, CounterWindow>,
}

impl DeviceState {
    /// A device at `address` (as configured); `watch` empty means every interface.
    pub fn new(address: String, watch: Vec<WatchedInterface>) -> DeviceState {
        DeviceState {
            device: Device {
                address,
                name: None,
            },
            watch,
            uptime: None,
            interfaces: BTreeMap::new(),
            silent_since: None,
            failures: 0,
            windows: BTreeMap::new(),
        }
    }

    /// The device as events name it (`sysName` once known).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the device failed its last poll.
    pub fn is_silent(&self) -> bool {
        self.silent_since.is_some()
    }

    /// The watch entry `index`/`row` matches, or `None` when it is not watched. With no watch
    /// list every interface is watched without a configured capacity.
    fn watched(&self, index: u32, row: &Row) -> Option<Option<&WatchedInterface>> {
        if self.watch.is_empty() {
            return Some(None);
        }
        self.watch
            .iter()
            .find(|w| match &w.key {
                InterfaceKey::Index(i) => *i == index,
                InterfaceKey::Name(n) => {
                    row.name.as_deref() == Some(n) || row.descr.as_deref() == Some(n)
                }
            })
            .map(Some)
    }

    /// Configured interfaces the snapshot does not have (for warnings and the CLI).
    pub fn missing(&self, snapshot: &Snapshot) -> Vec<String> {
        self.watch
            .iter()
            .filter(|w| {
                !snapshot
                    .interfaces
                    .iter()
                    .any(|(i, row)| self.watched(*i, row).flatten() == Some(*w))
            })
            .map(|w| match &w.key {
                InterfaceKey::Index(i) => format!("#{i}"),
                InterfaceKey::Name(n) => n.clone(),
            })
            .collect()
    }

    /// Ends the report window: one `interface_counters_sampled` per interface whose rates could
    /// be measured in it (none for a window without two answers in a row).
    pub fn report(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.windows)
            .into_values()
            .map(|window| window.to_event(&self.device))
            .collect()
    }

    /// Folds in a successful poll read at `mono_ms`: its counters into the report windows, and
    /// the events of what changed (answers again, reboot, interfaces down and back) returned.
    pub fn observe(&mut self, snapshot: &Snapshot, mono_ms: u64) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some(since) = self.silent_since.take() {
            events.push(Event::DeviceAnswersAgain {
                device: self.with_name(snapshot),
                silent_for_ms: mono_ms.saturating_sub(since),
            });
        }
        self.failures = 0;
        self.device = self.with_name(snapshot);
        let rebooted = match (self.uptime, snapshot.uptime_ticks) {
            (Some((prev, prev_ms)), Some(now)) if restarted(prev, prev_ms, now, mono_ms) => {
                events.push(Event::DeviceRebooted {
                    device: self.device.clone(),
                    uptime_s: u64::from(now) / 100,
                    previous_uptime_s: u64::from(prev) / 100,
                });
                true
            }
            _ => false,
        };
        if let Some(now) = snapshot.uptime_ticks {
            self.uptime = Some((now, mono_ms));
        }
        let mut seen = BTreeMap::new();
        for (&index, row) in &snapshot.interfaces {
            let Some(watch) = self.watched(index, row) else {
                continue;
            };
            let explicit = watch.is_some();
            let capacity = watch.and_then(|w| w.capacity_bps);
            let interface = Interface {
                index,
                name: row.display_name(index),
                alias: row.alias.clone(),
            };
            let status = OperStatus::from_mib(row.oper_status.unwrap_or(4));
            let up = status == OperStatus::Up;
            let reading = Reading::of(row, mono_ms);
            let previous = self.interfaces.remove(&index);
            let speed_bps = capacity.or_else(|| row.reported_speed_bps());
            if let Some(prev) = &previous
                && !rebooted
                && let Ok(r) = rates::rates(&prev.reading, &reading, speed_bps)
            {
                match self.windows.get_mut(&index) {
                    Some(window) => window.add(interface.clone(), &r, speed_bps, status),
                    None => {
                        let window = CounterWindow::new(interface.clone(), &r, speed_bps, status);
                        self.windows.insert(index, window);
                    }
                }
            }
            let down_since = match (&previous, up) {
                (_, true) => {
                    if let Some(since) = previous.as_ref().and_then(|p| p.down_since) {
                        events.push(Event::InterfaceCameBack {
                            device: self.device.clone(),
                            interface: interface.clone(),
                            down_for_ms: mono_ms.saturating_sub(since),
                        });
                    }
                    None
                }
                (Some(prev), false) if !prev.up => prev.down_since,
                (Some(_), false) | (None, false) => {
                    // Went down, or first seen down on an interface the operator asked for.
                    if previous.is_some() || explicit {
                        events.push(Event::InterfaceWentDown {
                            device: self.device.clone(),
                            interface,
                            oper_status: status,
                        });
                        Some(mono_ms)
                    } else {
                        None
                    }
                }
            };
            seen.insert(
                index,
                InterfaceState {
                    reading,
                    up,
                    down_since,
                },
            );
        }
        self.interfaces = seen;
        events
    }

    /// Records a failed poll at `mono_ms`; the first failure of a silence is reported.
    pub fn failed(&mut self, error: &str, mono_ms: u64) -> Vec<Event> {
        self.failures = self.failures.saturating_add(1);
        if self.silent_since.is_some() {
            return Vec::new();
        }
        self.silent_since = Some(mono_ms);
        vec![Event::DeviceStoppedAnswering {
            device: self.device.clone(),
            error: error_text(error),
        }]
    }

    /// How long to wait before the next poll: the interval while the device answers, then
    /// doubling with every failed poll up to [`MAX_BACKOFF`] (or the interval, if longer).
    pub fn next_delay(&self, interval: Duration) -> Duration {
        if self.failures == 0 {
            return interval;
        }
        // At most 2^8 intervals even below the cap (a 1 s interval stops at 256 s).
        Backoff::new(interval, MAX_BACKOFF.max(interval)).nth((self.failures - 1).min(8))
    }

    fn with_name(&self, snapshot: &Snapshot) -> Device {
        Device {
            address: self.device.address.clone(),
            name: snapshot
                .sys_name
                .clone()
                .or_else(|| self.device.name.clone()),
        }
    }
}

/// Whether `sysUpTime` says the device restarted between two polls: it went backwards (unless
/// it wrapped where it should have), or it is shorter than the time that passed between them.
fn restarted(prev: u32, prev_ms: u64, now: u32, now_ms: u64) -> bool {
    let elapsed_ticks = now_ms.saturating_sub(prev_ms) / 10;
    // Polls take time and clocks drift: 5 s plus 10% of the interval.
    let slack = 500 + elapsed_ticks / 10;
    let expected = u64::from(prev) + elapsed_ticks;
    if u64::from(now) < u64::from(prev) {
        let wrapped =
            expected >= TICKS_WRAP && (expected - TICKS_WRAP).abs_diff(now.into()) <= slack;
        return !wrapped;
    }
    u64::from(now) + slack < elapsed_ticks
}

/// The error as the contract wants it: no control characters, 1–512 bytes.
fn error_text(error: &str) -> String {
    let text: String = error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut text = text.trim().to_owned();
    if text.is_empty() {
        text = "no answer".into();
    }
    if text.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
#[path = "device_tests.rs"]
mod tests;
