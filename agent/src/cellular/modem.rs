//! One configured modem across readings (pure): readings or failures in, events out. The
//! monotonic time of each reading is passed in; nothing here reads a clock.
//!
//! - every reading yields `cellular_signal_sampled` with its quality class;
//! - a change of service — another in-service technology, another network, service lost, service
//!   back — counts only once it has been seen on `changes_after` consecutive readings (default 2),
//!   so one odd reading (a modem briefly `searching` during a handover, an NSA leg dropping for
//!   one sample) does not flap. The events then say what changed; `lost_for_ms` runs from the
//!   first reading without service to the first reading in service again;
//! - `fail_after` consecutive failures (hang, command error, garbage) yield one
//!   `modem_stopped_answering` with the last error; the next reading yields
//!   `modem_answers_again` with `silent_for_ms` since the first failure, then is handled as usual;
//! - a modem without service from the start reports `cellular_service_lost` with
//!   `last_technology = none` once confirmed: "never had service" is a coverage fact too.
//!
//! Every string that goes into an event is cleaned here, whoever made the reading: the signal's
//! ([`clean_signal`]: the change events carry its PLMN and operator) and the error text of
//! `modem_stopped_answering` (a tool's stderr may hold anything), so the collector never refuses
//! what a modem said.

use netmon_events::{Event, Registration, Signal, Technology};

use crate::cellular::clean_signal;
use crate::cellular::quality::Thresholds;

/// The contract's longest `modem_stopped_answering` error.
pub const MAX_ERROR: usize = 512;

/// What a reading says about service, compared across readings.
#[derive(Debug, Clone, PartialEq)]
enum Service {
    On {
        technology: Technology,
        plmn: Option<String>,
        operator: Option<String>,
    },
    Off(Registration),
}

impl Service {
    fn of(signal: &Signal) -> Service {
        if signal.in_service() {
            Service::On {
                technology: signal.technology,
                plmn: signal.plmn.clone(),
                operator: signal.operator.clone(),
            }
        } else {
            Service::Off(signal.registration)
        }
    }

    /// Same service for the purpose of change events: same technology and network, or both off.
    fn same(&self, other: &Service) -> bool {
        match (self, other) {
            (
                Service::On {
                    technology: a,
                    plmn: pa,
                    ..
                },
                Service::On {
                    technology: b,
                    plmn: pb,
                    ..
                },
            ) => a == b && pa == pb,
            (Service::Off(_), Service::Off(_)) => true,
            _ => false,
        }
    }
}

/// A change seen but not yet confirmed.
#[derive(Debug)]
struct Pending {
    service: Service,
    seen: u32,
    first_ms: u64,
}

/// The state of one modem.
#[derive(Debug)]
pub struct ModemState {
    name: String,
    thresholds: Thresholds,
    fail_after: u32,
    changes_after: u32,
    /// The confirmed service; `None` before the first confirmed reading.
    service: Option<Service>,
    /// Since when (monotonic ms) it is without service, when it is.
    lost_since: Option<u64>,
    pending: Option<Pending>,
    /// Consecutive failures and the time of the first of them.
    failures: u32,
    failing_since: u64,
    /// `modem_stopped_answering` was sent.
    silent: bool,
}

impl ModemState {
    /// `fail_after` and `changes_after` are at least 1 (lower values are taken as 1).
    pub fn new(
        name: impl Into<String>,
        thresholds: Thresholds,
        fail_after: u32,
        changes_after: u32,
    ) -> ModemState {
        ModemState {
            name: name.into(),
            thresholds,
            fail_after: fail_after.max(1),
            changes_after: changes_after.max(1),
            service: None,
            lost_since: None,
            pending: None,
            failures: 0,
            failing_since: 0,
            silent: false,
        }
    }

    /// Whether `modem_stopped_answering` was sent and the modem has not answered since.
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// A reading taken at `mono_ms`.
    pub fn observe(&mut self, signal: Signal, mono_ms: u64) -> Vec<Event> {
        let signal = clean_signal(signal);
        let now = Service::of(&signal);
        let mut out = vec![Event::CellularSignalSampled {
            modem: self.name.clone(),
            quality: self.thresholds.classify(&signal),
            signal,
        }];
        if self.silent {
            out.push(Event::ModemAnswersAgain {
                modem: self.name.clone(),
                silent_for_ms: mono_ms.saturating_sub(self.failing_since),
            });
        }
        self.silent = false;
        self.failures = 0;
        out.extend(self.follow(now, mono_ms));
        out
    }

    /// A reading that failed at `mono_ms` with `error`.
    pub fn failed(&mut self, error: &str, mono_ms: u64) -> Vec<Event> {
        if self.failures == 0 {
            self.failing_since = mono_ms;
        }
        self.failures = self.failures.saturating_add(1);
        if self.silent || self.failures < self.fail_after {
            return Vec::new();
        }
        self.silent = true;
        vec![Event::ModemStoppedAnswering {
            modem: self.name.clone(),
            error: netmon_events::text::clean(error, MAX_ERROR)
                .unwrap_or_else(|| "no reading".to_owned()),
        }]
    }

    /// Tracks the service; the change events once a change is confirmed.
    fn follow(&mut self, now: Service, mono_ms: u64) -> Vec<Event> {
        // A reading in service that does not give its PLMN keeps the one known.
        let now = match (now, &self.service) {
            (
                Service::On {
                    technology,
                    plmn: None,
                    operator,
                },
                Some(Service::On {
                    plmn: Some(known),
                    operator: known_operator,
                    ..
                }),
            ) => Service::On {
                technology,
                plmn: Some(known.clone()),
                operator: operator.or_else(|| known_operator.clone()),
            },
            (now, _) => now,
        };
        // The first reading in service is the baseline: nothing to confirm, nothing to report.
        if self.service.is_none() && matches!(now, Service::On { .. }) {
            self.service = Some(now);
            self.pending = None;
            return Vec::new();
        }
        if let Some(current) = &self.service
            && current.same(&now)
        {
            self.pending = None;
            return Vec::new();
        }
        let pending = match self.pending.take() {
            Some(p) if p.service.same(&now) => Pending {
                seen: p.seen + 1,
                service: now,
                ..p
            },
            _ => Pending {
                service: now,
                seen: 1,
                first_ms: mono_ms,
            },
        };
        if pending.seen < self.changes_after {
            self.pending = Some(pending);
            return Vec::new();
        }
        let previous = self.service.replace(pending.service.clone());
        self.change(previous, pending.service, pending.first_ms)
    }

    /// The events of a confirmed change from `previous` to `now`, first seen at `since`.
    fn change(&mut self, previous: Option<Service>, now: Service, since: u64) -> Vec<Event> {
        let modem = self.name.clone();
        match (previous, now) {
            (None, Service::On { .. }) => Vec::new(), // handled by `follow`
            (previous, Service::Off(registration)) => {
                self.lost_since = Some(since);
                let (last_technology, plmn, operator) = match previous {
                    Some(Service::On {
                        technology,
                        plmn,
                        operator,
                    }) => (technology, plmn, operator),
                    _ => (Technology::None, None, None),
                };
                vec![Event::CellularServiceLost {
                    modem,
                    last_technology,
                    plmn,
                    operator,
                    registration,
                }]
            }
            (
                Some(Service::Off(_)),
                Service::On {
                    technology,
                    plmn,
                    operator,
                },
            ) => vec![Event::CellularServiceRestored {
                modem,
                technology,
                plmn,
                operator,
                lost_for_ms: since.saturating_sub(self.lost_since.take().unwrap_or(since)),
            }],
            (
                Some(Service::On {
                    technology: from,
                    plmn: from_plmn,
                    ..
                }),
                Service::On {
                    technology,
                    plmn,
                    operator,
                },
            ) => {
                let mut out = Vec::new();
                if from_plmn.is_some() && plmn.is_some() && plmn != from_plmn {
                    out.push(Event::CellularOperatorChanged {
                        modem: modem.clone(),
                        from_plmn,
                        to_plmn: plmn.clone(),
                        operator: operator.clone(),
                    });
                }
                if from != technology {
                    out.push(Event::CellularTechnologyChanged {
                        modem,
                        from,
                        to: technology,
                        plmn,
                        operator,
                    });
                }
                out
            }
        }
    }
}

#[cfg(test)]
#[path = "modem_tests.rs"]
mod tests;
