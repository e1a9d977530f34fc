//! The inventory file as written: raw structs that mirror the TOML (`deny_unknown_fields`; ids,
//! kinds and channels still plain strings) and the writer that `inventory import` uses to turn
//! them back into TOML in the layout of `deploy/examples/inventory.toml`. Validation is in
//! `load.rs`.

use std::fmt::Write as _;

use serde::Deserialize;

/// The file as written: four arrays of tables, each optional.
#[derive(Debug, Default, Deserialize)]
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvince {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// One `[[communes]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommune {
    pub id: String,
    pub province: String,
    pub name: String,
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// One `[[sites]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub id: String,
    pub commune: String,
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    pub parent: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    #[serde(default)]
    pub agents: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
    #[serde(default)]
    pub thresholds: RawThresholds,
}

/// A site's `thresholds = { … }`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    pub loss_pct: Option<f64>,
    pub latency_ms: Option<f64>,
    pub congestion_factor: Option<f64>,
    pub utilisation_pct: Option<f64>,
}

/// One `[[contacts]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    pub id: String,
    pub name: String,
    pub channel: String,
    pub to: String,
    pub lang: Option<String>,
}

fn default_kind() -> String {
    "other".into()
}

/// The inventory as TOML in the layout of `deploy/examples/inventory.toml`.
pub fn to_toml(raw: &RawInventory, sites: &str, contacts: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# netmon site inventory, made by `netmon-collector inventory import`"
    );
    let _ = writeln!(
        out,
        "# from {sites}{}.",
        contacts.map(|c| format!(" and {c}")).unwrap_or_default()
    );
    for p in &raw.provinces {
        let _ = writeln!(
            out,
            "\n[[provinces]]\nid = {}\nname = {}",
            quote(&p.id),
            quote(&p.name)
        );
        let _ = writeln!(out, "contacts = {}", list(&p.contacts));
    }
    for c in &raw.communes {
        let _ = writeln!(
            out,
            "\n[[communes]]\nid = {}\nprovince = {}",
            quote(&c.id),
            quote(&c.province)
        );
        let _ = writeln!(
            out,
            "name = {}\ncontacts = {}",
            quote(&c.name),
            list(&c.contacts)
        );
    }
    for s in &raw.sites {
        let _ = writeln!(
            out,
            "\n[[sites]]\nid = {}\ncommune = {}",
            quote(&s.id),
            quote(&s.commune)
        );
        if let Some(parent) = &s.parent {
            let _ = writeln!(out, "parent = {}", quote(parent));
        }
        let _ = writeln!(out, "name = {}\nkind = {}", quote(&s.name), quote(&s.kind));
        if let Some(lat) = s.lat {
            let _ = writeln!(out, "lat = {lat:?}");
        }
        if let Some(lon) = s.lon {
            let _ = writeln!(out, "lon = {lon:?}");
        }
        let _ = writeln!(
            out,
            "agents = {}\ncontacts = {}",
            list(&s.agents),
            list(&s.contacts)
        );
    }
    for c in &raw.contacts {
        let _ = writeln!(
            out,
            "\n[[contacts]]\nid = {}\nname = {}",
            quote(&c.id),
            quote(&c.name)
        );
        let _ = writeln!(
            out,
            "channel = {}\nto = {}",
            quote(&c.channel),
            quote(&c.to)
        );
        if let Some(lang) = &c.lang {
            let _ = writeln!(out, "lang = {}", quote(lang));
        }
    }
    out
}

fn list(ids: &[String]) -> String {
    format!(
        "[{}]",
        ids.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
    )
}

/// A TOML basic string (diacritics kept, metacharacters and control characters escaped).
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
