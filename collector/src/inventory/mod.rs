//! The site inventory: provinces → communes → sites, with Vietnamese display names, coordinates,
//! the parent site (the topology alerts are suppressed along), the agents at each site and the
//! contacts who are notified. Read from the TOML file named by the collector's `inventory` key
//! (format in `deploy/examples/inventory.toml`); `netmon-collector inventory import` makes that
//! file from a spreadsheet's CSV.
//!
//! The types here are validated: every reference (commune → province, site → commune, parent,
//! contacts) resolves, parents form no cycle, an agent belongs to one site only. Queries are pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use netmon_events::{AgentId, Channel, ProvinceId};

mod aliases;
pub mod cli;
pub mod import;
mod load;
mod raw;
#[cfg(test)]
mod tests;
pub use load::{load, parse};

/// The validated inventory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub provinces: BTreeMap<ProvinceId, Province>,
    pub communes: BTreeMap<String, Commune>,
    pub sites: BTreeMap<String, Site>,
    pub contacts: BTreeMap<String, Contact>,
    /// Which site each registered agent is at.
    pub agents: HashMap<AgentId, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Province {
    pub id: ProvinceId,
    /// Display name, e.g. "Thanh Hóa".
    pub name: String,
    /// Contact ids notified of every alert in the province.
    pub contacts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Commune {
    pub id: String,
    pub province: ProvinceId,
    /// Display name, e.g. "xã Cẩm Tú".
    pub name: String,
    /// Contact ids notified of every alert in the commune.
    pub contacts: Vec<String>,
}

/// What kind of place a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    /// thôn, bản, ấp
    Village,
    /// tổ dân phố
    ResidentialGroup,
    /// trụ sở UBND xã / phường
    CommuneCentre,
    /// trung tâm phục vụ hành chính công
    PublicServiceCentre,
    Other,
}

impl SiteKind {
    /// The inventory's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Village => "village",
            SiteKind::ResidentialGroup => "residential_group",
            SiteKind::CommuneCentre => "commune_centre",
            SiteKind::PublicServiceCentre => "public_service_centre",
            SiteKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: String,
    pub commune: String,
    /// Display name, e.g. "thôn Giang Trung".
    pub name: String,
    pub kind: SiteKind,
    /// WGS 84 degrees.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The site this one reaches the network through (its uplink).
    pub parent: Option<String>,
    pub agents: Vec<AgentId>,
    /// Contact ids notified of this site's alerts (besides the commune's and province's).
    pub contacts: Vec<String>,
    /// Thresholds that override `[alerts]` for this site.
    pub thresholds: SiteThresholds,
}

/// Per-site overrides of the global alert thresholds; `None` keeps the global value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SiteThresholds {
    pub loss_pct: Option<f64>,
    pub latency_ms: Option<f64>,
    pub congestion_factor: Option<f64>,
    pub utilisation_pct: Option<f64>,
}

/// Someone who is notified, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: String,
    /// The person or group, e.g. "Lê Văn Hùng (CNTT xã Cẩm Tú)".
    pub name: String,
    pub channel: Channel,
    /// E-mail address, Telegram chat id, or webhook URL.
    pub to: String,
    /// Language of the messages: "vi" (default) or "en".
    pub lang: String,
}

impl Inventory {
    /// The site `agent` is registered at.
    pub fn site_of(&self, agent: &AgentId) -> Option<&Site> {
        self.agents.get(agent).and_then(|id| self.sites.get(id))
    }

    /// The commune of `site`.
    pub fn commune_of(&self, site: &Site) -> Option<&Commune> {
        self.communes.get(&site.commune)
    }

    /// The parent chain of `site`, nearest first (validated acyclic; bounded anyway).
    pub fn ancestors(&self, site: &Site) -> Vec<&Site> {
        let mut chain = Vec::new();
        let mut next = site.parent.as_deref();
        while let Some(id) = next {
            let Some(parent) = self.sites.get(id) else {
                break;
            };
            if chain.len() > self.sites.len() {
                break;
            }
            chain.push(parent);
            next = parent.parent.as_deref();
        }
        chain
    }

    /// Every site that reaches the network through `site`, directly or not, ordered by id.
    pub fn descendants(&self, site: &str) -> Vec<&Site> {
        self.sites
            .values()
            .filter(|s| self.ancestors(s).iter().any(|a| a.id == site))
            .collect()
    }

    /// Who is notified of an alert at `site`: its own contacts, its ancestors', its commune's and
    /// its province's, each once, in that order.
    pub fn contacts_for(&self, site: &Site) -> Vec<&Contact> {
        let mut ids: Vec<&String> = site.contacts.iter().collect();
        for ancestor in self.ancestors(site) {
            ids.extend(&ancestor.contacts);
        }
        if let Some(commune) = self.commune_of(site) {
            ids.extend(&commune.contacts);
            if let Some(province) = self.provinces.get(&commune.province) {
                ids.extend(&province.contacts);
            }
        }
        let mut seen = BTreeSet::new();
        ids.into_iter()
            .filter(|id| seen.insert(*id))
            .filter_map(|id| self.contacts.get(id))
            .collect()
    }

    /// One line for `check`: "2 provinces, 4 communes, 8 sites (8 with coordinates), 8 agents,
    /// 6 contacts".
    pub fn summary(&self) -> String {
        format!(
            "{} provinces, {} communes, {} sites ({} with coordinates), {} agents, {} contacts",
            self.provinces.len(),
            self.communes.len(),
            self.sites.len(),
            self.sites.values().filter(|s| s.lat.is_some()).count(),
            self.agents.len(),
            self.contacts.len()
        )
    }

    /// Contacts of `province` (for alerts about agents at no registered site).
    pub fn province_contacts(&self, province: &ProvinceId) -> Vec<&Contact> {
        self.provinces
            .get(province)
            .map(|p| {
                p.contacts
                    .iter()
                    .filter_map(|id| self.contacts.get(id))
                    .collect()
            })
            .unwrap_or_default()
    }
}
