//! Reading the inventory file: TOML into the raw structs of [`super::raw`] that mirror the file
//! (`deny_unknown_fields`), then [`validate`] into an [`Inventory`]. Every error names the file, the key path
//! (`sites[3].parent`, `contacts[1].to`; indexes count from 0 in file order) and what was
//! expected. Validation is pure; only [`load`] reads the file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::raw::{RawInventory, RawThresholds};
use super::{Commune, Contact, Inventory, Province, Site, SiteKind, SiteThresholds};
use crate::config::check::ConfigError;
use netmon_events::{AgentId, Channel, ProvinceId};

/// Reads and validates the inventory file at `path`.
pub fn load(path: &Path) -> Result<Inventory, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        key: String::new(),
        problem: format!("cannot read the inventory: {e}"),
    })?;
    parse(&text, &file)
}

/// Parses and validates inventory TOML; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Inventory, ConfigError> {
    let raw: RawInventory =
        toml::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| ConfigError {
            file: file.to_owned(),
            key: String::new(),
            problem: e.to_string().trim_end().to_owned(),
        })?;
    validate(raw).map_err(|(key, problem)| ConfigError {
        file: file.to_owned(),
        key,
        problem,
    })
}

/// A validation failure: (key path, what was expected).
type Fault = (String, String);

fn fault(key: impl Into<String>, problem: impl Into<String>) -> Fault {
    (key.into(), problem.into())
}

/// Checks every rule and builds the inventory (pure).
pub fn validate(raw: RawInventory) -> Result<Inventory, Fault> {
    let mut inventory = Inventory::default();
    // Contacts first: everything else refers to them.
    for (i, c) in raw.contacts.into_iter().enumerate() {
        let key = format!("contacts[{i}]");
        slug(&format!("{key}.id"), &c.id)?;
        if inventory.contacts.contains_key(&c.id) {
            return Err(fault(format!("{key}.id"), duplicate("contact", &c.id)));
        }
        display_name(&format!("{key}.name"), &c.name)?;
        let channel = match c.channel.as_str() {
            "webhook" => Channel::Webhook,
            "telegram" => Channel::Telegram,
            "email" => Channel::Email,
            other => {
                return Err(fault(
                    format!("{key}.channel"),
                    format!("expected webhook, telegram or email, got {other:?}"),
                ));
            }
        };
        address(&format!("{key}.to"), channel, &c.to)?;
        let lang = c.lang.unwrap_or_else(|| "vi".into());
        if lang != "vi" && lang != "en" {
            return Err(fault(
                format!("{key}.lang"),
                format!("expected \"vi\" or \"en\", got {lang:?}"),
            ));
        }
        let contact = Contact {
            id: c.id.clone(),
            name: c.name,
            channel,
            to: c.to,
            lang,
        };
        inventory.contacts.insert(c.id, contact);
    }
    let known = |key: &str, ids: &[String], contacts: &BTreeMap<String, Contact>| {
        for (j, id) in ids.iter().enumerate() {
            if !contacts.contains_key(id) {
                return Err(fault(
                    format!("{key}.contacts[{j}]"),
                    format!("{id:?} is not the id of any [[contacts]] entry"),
                ));
            }
        }
        Ok(())
    };
    for (i, p) in raw.provinces.into_iter().enumerate() {
        let key = format!("provinces[{i}]");
        let id =
            ProvinceId::new(p.id.clone()).map_err(|e| fault(format!("{key}.id"), e.to_string()))?;
        if inventory.provinces.contains_key(&id) {
            return Err(fault(format!("{key}.id"), duplicate("province", &p.id)));
        }
        display_name(&format!("{key}.name"), &p.name)?;
        known(&key, &p.contacts, &inventory.contacts)?;
        let province = Province {
            id: id.clone(),
            name: p.name,
            contacts: p.contacts,
        };
        inventory.provinces.insert(id, province);
    }
    for (i, c) in raw.communes.into_iter().enumerate() {
        let key = format!("communes[{i}]");
        slug(&format!("{key}.id"), &c.id)?;
        if inventory.communes.contains_key(&c.id) {
            return Err(fault(format!("{key}.id"), duplicate("commune", &c.id)));
        }
        let province = ProvinceId::new(c.province.clone())
            .ok()
            .filter(|p| inventory.provinces.contains_key(p))
            .ok_or_else(|| {
                fault(
                    format!("{key}.province"),
                    format!("{:?} is not the id of any [[provinces]] entry", c.province),
                )
            })?;
        display_name(&format!("{key}.name"), &c.name)?;
        known(&key, &c.contacts, &inventory.contacts)?;
        let commune = Commune {
            id: c.id.clone(),
            province,
            name: c.name,
            contacts: c.contacts,
        };
        inventory.communes.insert(c.id, commune);
    }
    let site_ids: HashMap<String, usize> = raw
        .sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let mut agents: HashMap<AgentId, (String, usize)> = HashMap::new();
    for (i, s) in raw.sites.into_iter().enumerate() {
        let key = format!("sites[{i}]");
        slug(&format!("{key}.id"), &s.id)?;
        if inventory.sites.contains_key(&s.id) {
            return Err(fault(format!("{key}.id"), duplicate("site", &s.id)));
        }
        if !inventory.communes.contains_key(&s.commune) {
            return Err(fault(
                format!("{key}.commune"),
                format!("{:?} is not the id of any [[communes]] entry", s.commune),
            ));
        }
        display_name(&format!("{key}.name"), &s.name)?;
        let kind = site_kind(&s.kind).ok_or_else(|| {
            fault(
                format!("{key}.kind"),
                format!(
                    "expected village, residential_group, commune_centre, public_service_centre \
                     or other, got {:?}",
                    s.kind
                ),
            )
        })?;
        if let Some(parent) = &s.parent {
            if parent == &s.id {
                return Err(fault(
                    format!("{key}.parent"),
                    "a site cannot be its own parent",
                ));
            }
            if !site_ids.contains_key(parent) {
                return Err(fault(
                    format!("{key}.parent"),
                    format!("{parent:?} is not the id of any [[sites]] entry"),
                ));
            }
        }
        coordinates(&key, s.lat, s.lon)?;
        let mut site_agents = Vec::new();
        for (j, a) in s.agents.iter().enumerate() {
            let akey = format!("{key}.agents[{j}]");
            let agent = AgentId::new(a.clone()).map_err(|e| fault(&akey, e.to_string()))?;
            if let Some((other, k)) = agents.get(&agent) {
                return Err(fault(
                    akey,
                    format!(
                        "agent {a:?} is already at site {other:?} (sites[{k}]); an agent belongs to one site"
                    ),
                ));
            }
            agents.insert(agent.clone(), (s.id.clone(), i));
            site_agents.push(agent);
        }
        known(&key, &s.contacts, &inventory.contacts)?;
        let thresholds = thresholds(&format!("{key}.thresholds"), s.thresholds)?;
        let site = Site {
            id: s.id.clone(),
            commune: s.commune,
            name: s.name,
            kind,
            lat: s.lat,
            lon: s.lon,
            parent: s.parent,
            agents: site_agents,
            contacts: s.contacts,
            thresholds,
        };
        inventory.sites.insert(s.id, site);
    }
    // Parent cycles: follow each chain at most `sites` steps.
    for site in inventory.sites.values() {
        let mut chain = vec![site.id.as_str()];
        let mut next = site.parent.as_deref();
        while let Some(id) = next {
            if id == site.id {
                chain.push(id);
                let index = site_ids.get(&site.id).copied().unwrap_or_default();
                return Err(fault(
                    format!("sites[{index}].parent"),
                    format!("the parent chain loops: {}", chain.join(" → ")),
                ));
            }
            if chain.len() > inventory.sites.len() {
                break;
            }
            chain.push(id);
            next = inventory.sites.get(id).and_then(|s| s.parent.as_deref());
        }
    }
    inventory.agents = agents.into_iter().map(|(a, (site, _))| (a, site)).collect();
    Ok(inventory)
}

fn duplicate(what: &str, id: &str) -> String {
    format!("the {what} id {id:?} is used twice; ids must be unique")
}

/// Inventory ids are slugs, like agent ids: safe as tags, file names and URLs.
fn slug(key: &str, value: &str) -> Result<(), Fault> {
    if netmon_events::ids::is_slug(value) {
        Ok(())
    } else {
        Err(fault(
            key,
            format!("expected 1-64 characters from A-Z a-z 0-9 . _ -, got {value:?}"),
        ))
    }
}

fn display_name(key: &str, value: &str) -> Result<(), Fault> {
    if value.trim().is_empty() || value.chars().any(char::is_control) {
        return Err(fault(
            key,
            format!("expected a non-empty name without control characters, got {value:?}"),
        ));
    }
    Ok(())
}

/// The inventory's spelling of a site kind.
pub fn site_kind(text: &str) -> Option<SiteKind> {
    Some(match text {
        "village" => SiteKind::Village,
        "residential_group" => SiteKind::ResidentialGroup,
        "commune_centre" => SiteKind::CommuneCentre,
        "public_service_centre" => SiteKind::PublicServiceCentre,
        "other" => SiteKind::Other,
        _ => return None,
    })
}

fn coordinates(key: &str, lat: Option<f64>, lon: Option<f64>) -> Result<(), Fault> {
    match (lat, lon) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(fault(
            format!("{key}.lon"),
            "expected with lat (both or neither)",
        )),
        (None, Some(_)) => Err(fault(
            format!("{key}.lat"),
            "expected with lon (both or neither)",
        )),
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(fault(
                    format!("{key}.lat"),
                    format!("expected degrees between -90 and 90, got {lat}"),
                ));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(fault(
                    format!("{key}.lon"),
                    format!("expected degrees between -180 and 180, got {lon}"),
                ));
            }
            Ok(())
        }
    }
}

fn thresholds(key: &str, raw: RawThresholds) -> Result<SiteThresholds, Fault> {
    let check = |name: &str, value: Option<f64>, max: f64| match value {
        Some(v) if !(v > 0.0 && v <= max) => Err(fault(
            format!("{key}.{name}"),
            format!("expected a number above 0 and at most {max}, got {v}"),
        )),
        _ => Ok(value),
    };
    Ok(SiteThresholds {
        loss_pct: check("loss_pct", raw.loss_pct, 100.0)?,
        latency_ms: check("latency_ms", raw.latency_ms, 600_000.0)?,
        congestion_factor: check("congestion_factor", raw.congestion_factor, 1000.0)?,
        utilisation_pct: check("utilisation_pct", raw.utilisation_pct, 100.0)?,
    })
}

/// Channel-specific checks of a contact's `to`.
fn address(key: &str, channel: Channel, to: &str) -> Result<(), Fault> {
    let bad = |expected: &str| Err(fault(key, format!("expected {expected}, got {to:?}")));
    if to.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("an address without spaces or control characters");
    }
    match channel {
        Channel::Email => {
            let ok = to.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.split('.').filter(|label| !label.is_empty()).count() >= 2
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            });
            if ok {
                Ok(())
            } else {
                bad("an e-mail address such as it@camtu.thanhhoa.gov.vn")
            }
        }
        Channel::Webhook => match reqwest::Url::parse(to) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|h| !h.is_empty()) =>
            {
                Ok(())
            }
            _ => bad("an http:// or https:// URL"),
        },
        Channel::Telegram => {
            let numeric = to.strip_prefix('-').unwrap_or(to);
            let is_id = !numeric.is_empty()
                && numeric.len() <= 20
                && numeric.bytes().all(|b| b.is_ascii_digit());
            let is_channel = to.strip_prefix('@').is_some_and(|name| {
                !name.is_empty()
                    && name.len() <= 32
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            if is_id || is_channel {
                Ok(())
            } else {
                bad("a Telegram chat id (an integer such as -1001234567890) or @channelname")
            }
        }
    }
}
