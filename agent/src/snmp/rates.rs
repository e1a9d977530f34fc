//! Counters into rates (pure): the difference of two readings of an interface's counters over
//! the time between them, with the two ways a counter can go backwards told apart.
//!
//! - A **wrap**: a 32-bit counter passed 2³² − 1 and started again from 0. The difference is
//!   taken modulo 2³², provided it is plausible: less than 2³¹, and for octets not more than
//!   twice the interface's speed (when known) — at 100 Mbit/s a 32-bit octet counter wraps every
//!   ~6 minutes, so wraps are real on polled routers without ifHCInOctets.
//! - A **reset**: the device (or its SNMP agent) restarted, or the interface was re-created. A
//!   64-bit counter never wraps in practice, so going backwards is always a reset; a 32-bit one
//!   whose "wrap" is implausible is one too. A reset yields no rates for that interval (the next
//!   poll measures from the new baseline) — never a huge spike.

use crate::snmp::mib::{Counter, Row};

/// The counters of one interface at one poll, with the agent's monotonic time of the poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub mono_ms: u64,
    pub in_octets: Option<Counter>,
    pub out_octets: Option<Counter>,
    pub in_errors: Option<Counter>,
    pub out_errors: Option<Counter>,
    pub in_discards: Option<Counter>,
    pub out_discards: Option<Counter>,
}

impl Reading {
    /// The counters of `row` (64-bit octets when the device has them) read at `mono_ms`.
    pub fn of(row: &Row, mono_ms: u64) -> Reading {
        let (in_octets, out_octets) = row.octets();
        Reading {
            mono_ms,
            in_octets,
            out_octets,
            in_errors: row.in_errors,
            out_errors: row.out_errors,
            in_discards: row.in_discards,
            out_discards: row.out_discards,
        }
    }
}

/// Rates over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub interval_ms: u64,
    pub in_bps: f64,
    pub out_bps: f64,
    pub in_errors_ps: f64,
    pub out_errors_ps: f64,
    pub in_discards_ps: f64,
    pub out_discards_ps: f64,
}

/// Why two readings give no rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRates {
    /// No time passed between them.
    NoInterval,
    /// The device does not report octet counters for the interface.
    NoOctets,
    /// A counter went backwards and it was not a wrap (see the module documentation).
    Reset,
}

/// How far `cur` is ahead of `prev`, or `None` for a reset. `max` bounds a plausible 32-bit
/// wrap (besides the 2³¹ bound).
pub fn delta(prev: Counter, cur: Counter, max: Option<u64>) -> Option<u64> {
    match (prev, cur) {
        (Counter::C64(p), Counter::C64(c)) => c.checked_sub(p),
        (Counter::C32(p), Counter::C32(c)) if c >= p => Some(u64::from(c - p)),
        (Counter::C32(p), Counter::C32(c)) => {
            let wrapped = (1u64 << 32) - u64::from(p) + u64::from(c);
            (wrapped < 1 << 31 && max.is_none_or(|m| wrapped <= m)).then_some(wrapped)
        }
        // The device switched counter widths (HC counters appeared or vanished): rebaseline.
        _ => None,
    }
}

/// The rates between `prev` and `cur`; `speed_bps` bounds a plausible octet-counter wrap.
pub fn rates(prev: &Reading, cur: &Reading, speed_bps: Option<u64>) -> Result<Rates, NoRates> {
    let interval_ms = cur.mono_ms.saturating_sub(prev.mono_ms);
    if interval_ms == 0 {
        return Err(NoRates::NoInterval);
    }
    let seconds = interval_ms as f64 / 1000.0;
    // Octets at twice the line rate over the interval: anything more is not a wrap.
    let max_octets = speed_bps.map(|s| s.saturating_mul(interval_ms) / 4000);
    let octets = |p: Option<Counter>, c: Option<Counter>| match (p, c) {
        (Some(p), Some(c)) => delta(p, c, max_octets)
            .map(|d| d as f64 * 8.0 / seconds)
            .ok_or(NoRates::Reset),
        _ => Err(NoRates::NoOctets),
    };
    let in_bps = octets(prev.in_octets, cur.in_octets)?;
    let out_bps = octets(prev.out_octets, cur.out_octets)?;
    // Errors and discards a device does not report count as none.
    let per_second = |p: Option<Counter>, c: Option<Counter>| match (p, c) {
        (Some(p), Some(c)) => delta(p, c, None)
            .map(|d| d as f64 / seconds)
            .ok_or(NoRates::Reset),
        _ => Ok(0.0),
    };
    Ok(Rates {
        interval_ms,
        in_bps,
        out_bps,
        in_errors_ps: per_second(prev.in_errors, cur.in_errors)?,
        out_errors_ps: per_second(prev.out_errors, cur.out_errors)?,
        in_discards_ps: per_second(prev.in_discards, cur.in_discards)?,
        out_discards_ps: per_second(prev.out_discards, cur.out_discards)?,
    })
}

/// Utilisation of `speed_bps` in percent (two decimals), when the speed is known.
pub fn utilisation(bps: f64, speed_bps: Option<u64>) -> Option<f64> {
    let speed = speed_bps.filter(|s| *s > 0)? as f64;
    Some((bps / speed * 10_000.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(mono_ms: u64, octets: Counter, errors: u32) -> Reading {
        Reading {
            mono_ms,
            in_octets: Some(octets),
            out_octets: Some(octets),
            in_errors: Some(Counter::C32(errors)),
            out_errors: None,
            in_discards: None,
            out_discards: None,
        }
    }

    #[test]
    fn steady_counters_give_bits_per_second() {
        let a = reading(1_000, Counter::C64(1_000_000), 5);
        let b = reading(11_000, Counter::C64(13_500_000), 25);
        let r = rates(&a, &b, Some(100_000_000)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.interval_ms, 10_000);
        assert!((r.in_bps - 10_000_000.0).abs() < 1e-6, "{}", r.in_bps);
        assert!((r.in_errors_ps - 2.0).abs() < 1e-9);
        assert_eq!(r.out_errors_ps, 0.0);
        assert_eq!(utilisation(r.in_bps, Some(100_000_000)), Some(10.0));
        assert_eq!(utilisation(r.in_bps, None), None);
        assert_eq!(utilisation(r.in_bps, Some(0)), None);
    }

    #[test]
    fn a_32_bit_wrap_is_counted_across_zero() {
        let a = reading(0, Counter::C32(u32::MAX - 999), 0);
        let b = reading(1_000, Counter::C32(1_000), 0);
        let r = rates(&a, &b, Some(1_000_000)).unwrap_or_else(|e| panic!("{e:?}"));
        assert!((r.in_bps - 16_000.0).abs() < 1e-6, "{}", r.in_bps);
    }

    #[test]
    fn a_reset_is_never_a_spike() {
        // 64-bit counter backwards: a reset.
        let a = reading(0, Counter::C64(9_000_000_000), 0);
        let b = reading(10_000, Counter::C64(1_000), 0);
        assert_eq!(rates(&a, &b, None), Err(NoRates::Reset));
        // 32-bit backwards by a little: a "wrap" of almost 2^32 is implausible → reset.
        let a = reading(0, Counter::C32(3_000_000), 0);
        let b = reading(10_000, Counter::C32(1_000), 0);
        assert_eq!(rates(&a, &b, None), Err(NoRates::Reset));
        // A wrap under 2^31 but faster than twice the line rate: a reset too.
        let a = reading(0, Counter::C32(u32::MAX - 1_000_000_000), 0);
        let b = reading(10_000, Counter::C32(5), 0);
        assert_eq!(rates(&a, &b, Some(10_000_000)), Err(NoRates::Reset));
        assert!(rates(&a, &b, Some(10_000_000_000)).is_ok());
        // An error counter that went backwards: a reset.
        let a = reading(0, Counter::C64(0), 50);
        let b = reading(10_000, Counter::C64(10), 3);
        assert_eq!(rates(&a, &b, None), Err(NoRates::Reset));
        // Counter width changed.
        assert_eq!(delta(Counter::C32(1), Counter::C64(2), None), None);
    }

    #[test]
    fn no_time_or_no_octets_gives_nothing() {
        let a = reading(5, Counter::C64(0), 0);
        assert_eq!(rates(&a, &a, None), Err(NoRates::NoInterval));
        let none = Reading {
            in_octets: None,
            ..reading(10, Counter::C64(0), 0)
        };
        assert_eq!(rates(&a, &none, None), Err(NoRates::NoOctets));
    }
}
