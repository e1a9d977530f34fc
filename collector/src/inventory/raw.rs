//! The inventory file as written: raw structs that mirror the TOML (`deny_unknown_fields`; ids,
//! kinds and channels still plain strings) and the writer that `inventory import` uses to turn
//! them back into TOML in the layout of `deploy/examples/inventory.toml`. Validation is in
//! `load.rs`.
//!
//! These structs derive `Serialize` although they are not the event contract: the one exception
//! to "only the contract is serialisable", because `inventory import` writes a file for people
//! to read and edit, and the `toml` crate escapes it correctly. Field order is the file's order.

use serde::{Deserialize, Serialize};

/// The file as written: four arrays of tables, each optional.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    #[serde(default)]
    pub provinces: Vec<RawProvince>,
    #[serde(default)]
    pub communes: Vec<RawCommune>,
    #[serde(default)]
    pub sites: Vec<RawSite>,
    #[serde(default)]
    pub contacts: Vec<RawContact>,
}

/// One `[[provinces]]` table.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvince {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// One `[[communes]]` table.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommune {
    pub id: String,
    pub province: String,
    pub name: String,
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// One `[[sites]]` table.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub id: String,
    pub commune: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default)]
    pub agents: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
    /// Not written when empty (the CSV import has no thresholds column).
    #[serde(default, skip_serializing_if = "RawThresholds::is_empty")]
    pub thresholds: RawThresholds,
}

/// A site's `thresholds = { … }`.
#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    pub loss_pct: Option<f64>,
    pub latency_ms: Option<f64>,
    pub congestion_factor: Option<f64>,
    pub utilisation_pct: Option<f64>,
}

impl RawThresholds {
    fn is_empty(&self) -> bool {
        self.loss_pct.is_none()
            && self.latency_ms.is_none()
            && self.congestion_factor.is_none()
            && self.utilisation_pct.is_none()
    }
}

/// One `[[contacts]]` table.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    pub id: String,
    pub name: String,
    pub channel: String,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

fn default_kind() -> String {
    "other".into()
}

/// The inventory as TOML in the layout of `deploy/examples/inventory.toml`: a header saying
/// where it came from, then one table per province, commune, site and contact.
pub fn to_toml(
    raw: &RawInventory,
    sites: &str,
    contacts: Option<&str>,
) -> Result<String, toml::ser::Error> {
    let from = contacts.map(|c| format!(" and {c}")).unwrap_or_default();
    Ok(format!(
        "# netmon site inventory, made by `netmon-collector inventory import`\n# from {sites}{from}.\n\n{}",
        toml::to_string(raw)?
    ))
}
