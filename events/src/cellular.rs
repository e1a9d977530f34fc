//! Types of the cellular events: what a modem or 5G CPE says about its serving network, and the
//! quality class the agent gives it.

use serde::{Deserialize, Serialize};

/// The radio access technology in use; `none` when there is no service or it is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Technology {
    /// 5G standalone (NR on a 5G core).
    Nr5gSa,
    /// 5G non-standalone: LTE anchor with an NR leg (EN-DC).
    Nr5gNsa,
    Lte,
    Wcdma,
    Gsm,
    None,
}

impl Technology {
    pub fn as_str(self) -> &'static str {
        match self {
            Technology::Nr5gSa => "nr5g_sa",
            Technology::Nr5gNsa => "nr5g_nsa",
            Technology::Lte => "lte",
            Technology::Wcdma => "wcdma",
            Technology::Gsm => "gsm",
            Technology::None => "none",
        }
    }

    /// 5G of either kind.
    pub fn is_5g(self) -> bool {
        matches!(self, Technology::Nr5gSa | Technology::Nr5gNsa)
    }

    /// The generation as the coverage report counts it: `5g`, `4g`, `3g_2g`, `none`.
    pub fn generation(self) -> Generation {
        match self {
            Technology::Nr5gSa | Technology::Nr5gNsa => Generation::G5,
            Technology::Lte => Generation::G4,
            Technology::Wcdma | Technology::Gsm => Generation::G3G2,
            Technology::None => Generation::None,
        }
    }
}

/// The coverage report's columns: 5G, 4G, 3G/2G, no service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Generation {
    G5,
    G4,
    G3G2,
    None,
}

/// Registration with the network (`+CEREG`/`+C5GREG` stat, ModemManager's state, QMI's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    Home,
    Roaming,
    Searching,
    Denied,
    NotRegistered,
    Unknown,
}

impl Registration {
    pub fn is_registered(self) -> bool {
        matches!(self, Registration::Home | Registration::Roaming)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Home => "home",
            Registration::Roaming => "roaming",
            Registration::Searching => "searching",
            Registration::Denied => "denied",
            Registration::NotRegistered => "not_registered",
            Registration::Unknown => "unknown",
        }
    }
}

/// The quality class of a reading, from the agent's thresholds per technology
/// (`[cellular.thresholds]`, documented in `docs/cellular.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Excellent,
    Good,
    Fair,
    Poor,
    /// Not registered, or no radio technology.
    NoService,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Excellent => "excellent",
            Quality::Good => "good",
            Quality::Fair => "fair",
            Quality::Poor => "poor",
            Quality::NoService => "no_service",
        }
    }

    /// Good enough for a village's online public services (excellent, good or fair).
    pub fn is_usable(self) -> bool {
        matches!(self, Quality::Excellent | Quality::Good | Quality::Fair)
    }
}

/// What a modem says about its serving network at one moment. Signal values are in dBm (`*_dbm`)
/// or dB (`*_db`); `rsrp_dbm`/`rsrq_db`/`sinr_db`/`rssi_dbm` describe the primary cell (LTE, or
/// WCDMA/GSM RSSI), `nr_*` the 5G NR cell (SA, or the NR leg of EN-DC: the SS-RSRP, SS-RSRQ and
/// SS-SINR of TS 27.007). Absent fields are unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub technology: Technology,
    /// `"MCC-MNC"`, e.g. `"452-04"`; the MNC has 2 or 3 digits as the source gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plmn: Option<String>,
    /// A known Vietnamese PLMN's name (452-01 MobiFone, 452-02 VinaPhone, 452-04 Viettel,
    /// 452-05 Vietnamobile), else the name the modem reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    pub registration: Registration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsrp_dbm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsrq_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinr_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi_dbm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr_rsrp_dbm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr_rsrq_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr_sinr_db: Option<f64>,
    /// `"B3"` for an LTE band, `"n78"` for NR, `"B3+n78"` for EN-DC; other text as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    /// The (E/U/NR-)ARFCN of the primary cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arfcn: Option<u32>,
    /// The cell identity as the source printed it (hexadecimal for AT and Quectel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_id: Option<String>,
}

impl Default for Signal {
    fn default() -> Signal {
        Signal {
            technology: Technology::None,
            plmn: None,
            operator: None,
            registration: Registration::Unknown,
            rsrp_dbm: None,
            rsrq_db: None,
            sinr_db: None,
            rssi_dbm: None,
            nr_rsrp_dbm: None,
            nr_rsrq_db: None,
            nr_sinr_db: None,
            band: None,
            arfcn: None,
            cell_id: None,
        }
    }
}

impl Signal {
    /// In service: registered (home or roaming) on a known technology.
    pub fn in_service(&self) -> bool {
        self.registration.is_registered() && self.technology != Technology::None
    }

    /// Checks the values a hostile or broken sender could get wrong: finite numbers in physical
    /// ranges and bounded strings. `Err((field, problem))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let ranges = [
            ("rsrp_dbm", self.rsrp_dbm, -160.0, -20.0),
            ("rsrq_db", self.rsrq_db, -45.0, 25.0),
            ("sinr_db", self.sinr_db, -40.0, 60.0),
            ("rssi_dbm", self.rssi_dbm, -140.0, 0.0),
            ("nr_rsrp_dbm", self.nr_rsrp_dbm, -160.0, -20.0),
            ("nr_rsrq_db", self.nr_rsrq_db, -45.0, 25.0),
            ("nr_sinr_db", self.nr_sinr_db, -40.0, 60.0),
        ];
        for (name, value, low, high) in ranges {
            if let Some(v) = value
                && !(v.is_finite() && (low..=high).contains(&v))
            {
                return Err((name, format!("{v} is outside {low}..={high}")));
            }
        }
        let texts = [
            ("plmn", &self.plmn, 7),
            ("operator", &self.operator, 64),
            ("band", &self.band, 32),
            ("cell_id", &self.cell_id, 32),
        ];
        for (name, value, max) in texts {
            let Some(text) = value else { continue };
            if text.is_empty() || text.chars().count() > max {
                return Err((name, format!("must be 1 to {max} characters")));
            }
            if let Some(c) = text.chars().find(|&c| crate::text::is_forbidden(c)) {
                let problem = crate::text::BadText::Forbidden(u32::from(c));
                return Err((name, problem.to_string()));
            }
        }
        Ok(())
    }
}
