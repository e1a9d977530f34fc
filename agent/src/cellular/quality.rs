//! The quality class of a reading (pure): thresholds per technology and measure, the class of
//! each known measure, the worse of them.
//!
//! Defaults, from common field practice for LTE/NR drive tests and operators' coverage maps:
//!
//! | measure | excellent | good | fair | else |
//! | --- | --- | --- | --- | --- |
//! | LTE RSRP, NR SS-RSRP (dBm) | ≥ −80 | ≥ −90 | ≥ −100 | poor |
//! | LTE SINR, NR SS-SINR (dB) | ≥ 20 | ≥ 13 | ≥ 0 | poor |
//! | WCDMA / GSM RSSI (dBm) | ≥ −70 | ≥ −85 | ≥ −100 | poor |
//!
//! - LTE uses `rsrp_dbm` and `sinr_db`; 5G SA uses `nr_rsrp_dbm` and `nr_sinr_db` (the primary
//!   `rsrp_dbm`/`sinr_db` when the source gave no `nr_*` value); 5G NSA is the *better* of the LTE
//!   anchor's class and the NR leg's class: the NR leg carries the data when it is there, and the
//!   anchor alone still serves when it is not.
//! - WCDMA and GSM use `rssi_dbm`.
//! - Not registered, or technology `none` → `no_service`.
//! - In service but no measure known (a modem that tells its registration, not its signal) →
//!   `fair`: it serves, and nothing says how well.

use netmon_events::{Quality, Signal, Technology};

/// Lower bounds of excellent, good and fair for one measure; below `fair` is poor. Strictly
/// decreasing (checked by the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    pub excellent: f64,
    pub good: f64,
    pub fair: f64,
}

impl Levels {
    pub const fn new(excellent: f64, good: f64, fair: f64) -> Levels {
        Levels {
            excellent,
            good,
            fair,
        }
    }

    /// The class of `value`.
    pub fn class(&self, value: f64) -> Quality {
        if value >= self.excellent {
            Quality::Excellent
        } else if value >= self.good {
            Quality::Good
        } else if value >= self.fair {
            Quality::Fair
        } else {
            Quality::Poor
        }
    }
}

/// The thresholds of every technology (`[cellular.thresholds]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub lte_rsrp: Levels,
    pub lte_sinr: Levels,
    pub nr_rsrp: Levels,
    pub nr_sinr: Levels,
    pub wcdma_rssi: Levels,
    pub gsm_rssi: Levels,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        let rsrp = Levels::new(-80.0, -90.0, -100.0);
        let sinr = Levels::new(20.0, 13.0, 0.0);
        let rssi = Levels::new(-70.0, -85.0, -100.0);
        Thresholds {
            lte_rsrp: rsrp,
            lte_sinr: sinr,
            nr_rsrp: rsrp,
            nr_sinr: sinr,
            wcdma_rssi: rssi,
            gsm_rssi: rssi,
        }
    }
}

impl Thresholds {
    /// The class of `signal`.
    pub fn classify(&self, signal: &Signal) -> Quality {
        if !signal.in_service() {
            return Quality::NoService;
        }
        let lte = || {
            worst(&[
                (self.lte_rsrp, signal.rsrp_dbm),
                (self.lte_sinr, signal.sinr_db),
            ])
        };
        let nr = || {
            worst(&[
                (self.nr_rsrp, signal.nr_rsrp_dbm),
                (self.nr_sinr, signal.nr_sinr_db),
            ])
        };
        let class = match signal.technology {
            Technology::Lte => lte(),
            Technology::Nr5gSa => nr().or_else(|| {
                worst(&[
                    (self.nr_rsrp, signal.rsrp_dbm),
                    (self.nr_sinr, signal.sinr_db),
                ])
            }),
            Technology::Nr5gNsa => match (lte(), nr()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            Technology::Wcdma => worst(&[(self.wcdma_rssi, signal.rssi_dbm)]),
            Technology::Gsm => worst(&[(self.gsm_rssi, signal.rssi_dbm)]),
            Technology::None => Some(Quality::NoService),
        };
        class.unwrap_or(Quality::Fair)
    }
}

/// The worse class of the measures that are known; `None` when none is.
fn worst(measures: &[(Levels, Option<f64>)]) -> Option<Quality> {
    measures
        .iter()
        .filter_map(|(levels, value)| value.map(|v| levels.class(v)))
        .max()
}

#[cfg(test)]
mod tests {
    use netmon_events::Registration;

    use super::*;

    /// (technology, [rsrp, sinr, rssi, nr_rsrp, nr_sinr], expected) with the defaults.
    type Case = (Technology, [Option<f64>; 5], Quality);

    const CASES: &[Case] = &[
        (
            Technology::Lte,
            [Some(-80.0), Some(20.0), None, None, None],
            Quality::Excellent,
        ),
        (
            Technology::Lte,
            [Some(-80.1), Some(25.0), None, None, None],
            Quality::Good,
        ),
        (
            Technology::Lte,
            [Some(-90.0), Some(13.0), None, None, None],
            Quality::Good,
        ),
        (
            Technology::Lte,
            [Some(-75.0), Some(12.9), None, None, None],
            Quality::Fair,
        ),
        (
            Technology::Lte,
            [Some(-100.0), None, None, None, None],
            Quality::Fair,
        ),
        (
            Technology::Lte,
            [Some(-100.5), Some(30.0), None, None, None],
            Quality::Poor,
        ),
        (
            Technology::Lte,
            [Some(-70.0), Some(-0.5), None, None, None],
            Quality::Poor,
        ),
        (
            Technology::Lte,
            [None, None, None, None, None],
            Quality::Fair,
        ),
        // LTE ignores the NR values and RSSI.
        (
            Technology::Lte,
            [Some(-95.0), None, Some(-50.0), Some(-70.0), None],
            Quality::Fair,
        ),
        // SA: the SS- values; the primary ones only without them.
        (
            Technology::Nr5gSa,
            [Some(-120.0), None, None, Some(-85.0), Some(21.0)],
            Quality::Good,
        ),
        (
            Technology::Nr5gSa,
            [Some(-79.0), Some(22.0), None, None, None],
            Quality::Excellent,
        ),
        // NSA: the better of the anchor and the NR leg.
        (
            Technology::Nr5gNsa,
            [Some(-95.0), Some(8.0), None, Some(-88.0), Some(14.5)],
            Quality::Good,
        ),
        (
            Technology::Nr5gNsa,
            [Some(-78.0), Some(21.0), None, Some(-105.0), None],
            Quality::Excellent,
        ),
        (
            Technology::Nr5gNsa,
            [Some(-101.0), None, None, None, None],
            Quality::Poor,
        ),
        (
            Technology::Wcdma,
            [None, None, Some(-70.0), None, None],
            Quality::Excellent,
        ),
        (
            Technology::Wcdma,
            [Some(-60.0), None, Some(-85.0), None, None],
            Quality::Good,
        ),
        (
            Technology::Gsm,
            [None, None, Some(-99.0), None, None],
            Quality::Fair,
        ),
        (
            Technology::Gsm,
            [None, None, Some(-101.0), None, None],
            Quality::Poor,
        ),
        (
            Technology::None,
            [Some(-60.0), Some(30.0), None, None, None],
            Quality::NoService,
        ),
    ];

    fn signal(technology: Technology, values: [Option<f64>; 5]) -> Signal {
        let [rsrp_dbm, sinr_db, rssi_dbm, nr_rsrp_dbm, nr_sinr_db] = values;
        Signal {
            technology,
            registration: Registration::Home,
            rsrp_dbm,
            sinr_db,
            rssi_dbm,
            nr_rsrp_dbm,
            nr_sinr_db,
            ..Signal::default()
        }
    }

    #[test]
    fn default_thresholds_table() {
        let thresholds = Thresholds::default();
        for (i, (technology, values, expected)) in CASES.iter().enumerate() {
            let got = thresholds.classify(&signal(*technology, *values));
            assert_eq!(got, *expected, "case {i}: {technology:?} {values:?}");
        }
    }

    #[test]
    fn not_registered_is_no_service_whatever_the_signal() {
        let thresholds = Thresholds::default();
        for registration in [
            Registration::Searching,
            Registration::Denied,
            Registration::NotRegistered,
            Registration::Unknown,
        ] {
            let s = Signal {
                registration,
                ..signal(Technology::Lte, [Some(-70.0), Some(25.0), None, None, None])
            };
            assert_eq!(
                thresholds.classify(&s),
                Quality::NoService,
                "{registration:?}"
            );
        }
        let roaming = Signal {
            registration: Registration::Roaming,
            ..signal(Technology::Lte, [Some(-70.0), Some(25.0), None, None, None])
        };
        assert_eq!(thresholds.classify(&roaming), Quality::Excellent);
    }

    #[test]
    fn configured_thresholds_apply_per_technology() {
        let thresholds = Thresholds {
            lte_rsrp: Levels::new(-70.0, -80.0, -90.0),
            gsm_rssi: Levels::new(-60.0, -65.0, -70.0),
            ..Thresholds::default()
        };
        let lte = signal(Technology::Lte, [Some(-85.0), None, None, None, None]);
        assert_eq!(thresholds.classify(&lte), Quality::Fair);
        let nr = signal(Technology::Nr5gSa, [None, None, None, Some(-85.0), None]);
        assert_eq!(thresholds.classify(&nr), Quality::Good);
        let gsm = signal(Technology::Gsm, [None, None, Some(-75.0), None, None]);
        assert_eq!(thresholds.classify(&gsm), Quality::Poor);
        let wcdma = signal(Technology::Wcdma, [None, None, Some(-75.0), None, None]);
        assert_eq!(thresholds.classify(&wcdma), Quality::Good);
    }
}
