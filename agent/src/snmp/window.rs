//! One interface's report window (pure): the rates of every poll of `snmp.report_every` folded
//! into one `interface_counters_sampled` (`docs/adr/0014-probe-windows-and-compact-batches.md`).
//!
//! Polls stay at the device's `interval` (interface down/up, reboots and silence are events of
//! their own, recorded at once); only the counters are reported by the window:
//!
//! - `interval_ms`: the time the rates cover, the sum of the intervals between the window's polls
//!   that could be measured (a reset or reboot leaves its interval out, never a spike);
//! - `in_bps`, `out_bps`, errors and discards per second: the counters' differences over those
//!   intervals divided by their length — the rates over the window, to the precision they carry
//!   (whole bit/s; thousandths of an error a second);
//! - `in_util_pct`, `out_util_pct`: the **peak** utilisation among the window's polls (a minute's
//!   average hides a saturated 10 s; congestion is what people look for);
//! - `speed_bps`, `oper_status` and the interface's names: as at the latest poll.

use netmon_events::{Device, Event, Interface, OperStatus};

use crate::snmp::rates::{self, Rates};

/// The polls of one interface in the current window.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterWindow {
    interface: Interface,
    covered_ms: u64,
    /// Sums of rate × seconds over the polls: octets × 8, errors and discards.
    in_bits: f64,
    out_bits: f64,
    in_errors: f64,
    out_errors: f64,
    in_discards: f64,
    out_discards: f64,
    peak_in_util: Option<f64>,
    peak_out_util: Option<f64>,
    speed_bps: Option<u64>,
    oper_status: OperStatus,
}

impl CounterWindow {
    /// A window holding one poll's rates.
    pub fn new(
        interface: Interface,
        rates: &Rates,
        speed_bps: Option<u64>,
        oper_status: OperStatus,
    ) -> CounterWindow {
        let mut window = CounterWindow {
            interface: interface.clone(),
            covered_ms: 0,
            in_bits: 0.0,
            out_bits: 0.0,
            in_errors: 0.0,
            out_errors: 0.0,
            in_discards: 0.0,
            out_discards: 0.0,
            peak_in_util: None,
            peak_out_util: None,
            speed_bps,
            oper_status,
        };
        window.add(interface, rates, speed_bps, oper_status);
        window
    }

    /// Adds one poll's rates (over `rates.interval_ms`).
    pub fn add(
        &mut self,
        interface: Interface,
        rates: &Rates,
        speed_bps: Option<u64>,
        oper_status: OperStatus,
    ) {
        let seconds = rates.interval_ms as f64 / 1000.0;
        self.covered_ms = self.covered_ms.saturating_add(rates.interval_ms);
        self.in_bits += rates.in_bps * seconds;
        self.out_bits += rates.out_bps * seconds;
        self.in_errors += rates.in_errors_ps * seconds;
        self.out_errors += rates.out_errors_ps * seconds;
        self.in_discards += rates.in_discards_ps * seconds;
        self.out_discards += rates.out_discards_ps * seconds;
        self.peak_in_util = peak(
            self.peak_in_util,
            rates::utilisation(rates.in_bps, speed_bps),
        );
        self.peak_out_util = peak(
            self.peak_out_util,
            rates::utilisation(rates.out_bps, speed_bps),
        );
        self.interface = interface;
        self.speed_bps = speed_bps;
        self.oper_status = oper_status;
    }

    /// The window's `interface_counters_sampled` for `device`.
    pub fn to_event(&self, device: &Device) -> Event {
        // Every poll added covers at least 1 ms (rates need time to pass).
        let seconds = self.covered_ms.max(1) as f64 / 1000.0;
        Event::InterfaceCountersSampled {
            device: device.clone(),
            interface: self.interface.clone(),
            interval_ms: self.covered_ms,
            in_bps: (self.in_bits / seconds).round(),
            out_bps: (self.out_bits / seconds).round(),
            speed_bps: self.speed_bps,
            in_util_pct: self.peak_in_util,
            out_util_pct: self.peak_out_util,
            in_errors_ps: per_second(self.in_errors, seconds),
            out_errors_ps: per_second(self.out_errors, seconds),
            in_discards_ps: per_second(self.in_discards, seconds),
            out_discards_ps: per_second(self.out_discards, seconds),
            oper_status: self.oper_status,
        }
    }
}

/// `count` over `seconds` to the thousandth: one error in a 5-minute window still shows (0.003).
fn per_second(count: f64, seconds: f64) -> f64 {
    (count / seconds * 1000.0).round() / 1000.0
}

fn peak(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(interval_ms: u64, in_bps: f64, errors_ps: f64) -> Rates {
        Rates {
            interval_ms,
            in_bps,
            out_bps: in_bps / 2.0,
            in_errors_ps: errors_ps,
            out_errors_ps: 0.0,
            in_discards_ps: 0.0,
            out_discards_ps: errors_ps * 2.0,
        }
    }

    fn wan(alias: &str) -> Interface {
        Interface {
            index: 2,
            name: "wan0".into(),
            alias: Some(alias.into()),
        }
    }

    #[test]
    fn rates_over_the_window_and_the_peak_utilisation_of_its_polls() {
        // Six 10 s polls on a 100 Mbit/s port: 10 Mbit/s for 50 s and one saturated poll.
        let speed = Some(100_000_000);
        let mut w = CounterWindow::new(wan("a"), &rates(10_000, 10e6, 1.0), speed, OperStatus::Up);
        for _ in 0..4 {
            w.add(wan("a"), &rates(10_000, 10e6, 1.0), speed, OperStatus::Up);
        }
        w.add(wan("b"), &rates(10_000, 100e6, 4.0), speed, OperStatus::Up);
        let device = Device {
            address: "192.168.1.1".into(),
            name: None,
        };
        let Event::InterfaceCountersSampled {
            interface,
            interval_ms,
            in_bps,
            out_bps,
            in_util_pct,
            out_util_pct,
            in_errors_ps,
            out_discards_ps,
            ..
        } = w.to_event(&device)
        else {
            panic!("not a sample");
        };
        assert_eq!(interval_ms, 60_000);
        assert_eq!(
            interface.alias.as_deref(),
            Some("b"),
            "names as at the latest poll"
        );
        assert!((in_bps - 25e6).abs() < 1e-3, "{in_bps}");
        assert!((out_bps - 12.5e6).abs() < 1e-3, "{out_bps}");
        assert!((in_errors_ps - 1.5).abs() < 1e-9, "{in_errors_ps}");
        assert!((out_discards_ps - 3.0).abs() < 1e-9, "{out_discards_ps}");
        assert_eq!((in_util_pct, out_util_pct), (Some(100.0), Some(50.0)));
    }

    #[test]
    fn intervals_of_different_lengths_weigh_by_their_length() {
        // 30 s at 1 Mbit/s and 10 s at 5 Mbit/s: 2 Mbit/s over 40 s; no speed, no utilisation.
        let mut w = CounterWindow::new(wan("a"), &rates(30_000, 1e6, 0.0), None, OperStatus::Up);
        w.add(wan("a"), &rates(10_000, 5e6, 0.0), None, OperStatus::Down);
        let Event::InterfaceCountersSampled {
            interval_ms,
            in_bps,
            in_util_pct,
            oper_status,
            ..
        } = w.to_event(&Device {
            address: "192.168.1.1".into(),
            name: None,
        })
        else {
            panic!("not a sample");
        };
        assert_eq!((interval_ms, in_util_pct), (40_000, None));
        assert!((in_bps - 2e6).abs() < 1e-6, "{in_bps}");
        assert_eq!(oper_status, OperStatus::Down);
    }

    #[test]
    fn rates_are_written_to_the_precision_they_carry() {
        // 7 errors and 1,000,001 bits over 3 × 20 s: 0.11666… errors/s, 16,666.68 bit/s.
        let mut w = CounterWindow::new(
            wan("a"),
            &rates(20_000, 1_000_001.0 / 60.0, 7.0 / 60.0),
            None,
            OperStatus::Up,
        );
        for _ in 0..2 {
            w.add(
                wan("a"),
                &rates(20_000, 1_000_001.0 / 60.0, 7.0 / 60.0),
                None,
                OperStatus::Up,
            );
        }
        let event = w.to_event(&Device {
            address: "192.168.1.1".into(),
            name: None,
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["in_bps"], serde_json::json!(16667.0));
        assert_eq!(json["in_errors_ps"], serde_json::json!(0.117));
        assert_eq!(json["out_discards_ps"], serde_json::json!(0.233));
    }
}
