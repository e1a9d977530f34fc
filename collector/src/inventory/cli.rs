//! `inventory import` (a spreadsheet's CSV → the inventory TOML, validated) and `inventory show`
//! (the sites table, the registered agents never seen in the store and the agents seen that the
//! inventory does not list). `show` opens the store read-only, so it works while the daemon runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use netmon_events::AgentId;
use serde_json::json;

use crate::cli::failure::Failure;
use crate::cli::table::{Lang, Table};
use crate::config::Config;
use crate::inventory::Inventory;
use crate::inventory::import::{self, CsvFile};
use crate::store::Store;

/// What `inventory` does.
#[derive(Debug, Subcommand)]
pub enum InventoryAction {
    /// Convert a spreadsheet's CSV export into the inventory TOML (validated before writing).
    ///
    /// SITES.csv columns: province_id, province_name, commune_id, commune_name, site_id,
    /// site_name, kind, parent, lat, lon, agents, contacts [, province_contacts,
    /// commune_contacts]; CONTACTS.csv columns: id, name, channel, to, lang. UTF-8 with or
    /// without BOM, comma or semicolon separated.
    Import {
        /// The sites, one row each.
        #[arg(long)]
        sites: PathBuf,
        /// The contacts, one row each.
        #[arg(long)]
        contacts: Option<PathBuf>,
        /// Write the TOML here instead of to standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Show the configured inventory and how it matches the agents in the store.
    Show {
        #[arg(long)]
        config: PathBuf,
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = Lang::Vi)]
        lang: Lang,
    },
}

/// Runs `action`; `config` is `None` for `import`, which reads none.
pub fn run(
    action: InventoryAction,
    config: Option<&Config>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Failure> {
    match action {
        InventoryAction::Import {
            sites,
            contacts,
            output,
        } => import(&sites, contacts.as_deref(), output.as_deref(), out, err),
        InventoryAction::Show { json, lang, .. } => {
            let config =
                config.ok_or_else(|| Failure::Usage("inventory show: needs --config".into()))?;
            show(config, json, lang, out, err)
        }
    }
}

/// `inventory import`: the TOML on `out` (or in `output`), a summary on `err`.
pub fn import(
    sites: &Path,
    contacts: Option<&Path>,
    output: Option<&Path>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Failure> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| Failure::Usage(format!("{}: cannot read: {e}", path.display())))
    };
    let sites_bytes = read(sites)?;
    let contacts_bytes = contacts.map(read).transpose()?;
    let sites_name = sites.display().to_string();
    let contacts_name = contacts.map(|p| p.display().to_string());
    let contacts_file = contacts_name
        .as_deref()
        .zip(contacts_bytes.as_deref())
        .map(|(name, bytes)| CsvFile { name, bytes });
    let (text, inventory) = import::convert(
        CsvFile {
            name: &sites_name,
            bytes: &sites_bytes,
        },
        contacts_file,
    )
    .map_err(|e| Failure::Usage(e.to_string()))?;
    match output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            writeln!(err, "wrote {}: {}", path.display(), inventory.summary())
        }
        None => {
            out.write_all(text.as_bytes()).context("writing output")?;
            writeln!(err, "{}", inventory.summary())
        }
    }
    .context("writing output")?;
    Ok(())
}

/// `inventory show`.
pub fn show(
    config: &Config,
    json: bool,
    lang: Lang,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Failure> {
    let inventory = config.inventory.as_deref().ok_or_else(|| {
        Failure::Usage(format!(
            "{}: no `inventory = \"FILE\"` key",
            config.file.display()
        ))
    })?;
    let path = &config.store.path;
    let seen = if path.exists() {
        let store = Store::open_read_only(path)
            .with_context(|| format!("opening the store {} read-only", path.display()))?;
        seen_agents(&store).context("reading the store")?
    } else {
        writeln!(
            err,
            "the store {} does not exist yet: no agent has been seen",
            path.display()
        )
        .context("writing output")?;
        BTreeMap::new()
    };
    let Comparison {
        never_seen,
        unknown,
    } = compare(inventory, &seen);
    let text = if json {
        let sites: Vec<_> = inventory
            .sites
            .values()
            .map(|s| {
                json!({
                    "province": inventory.commune_of(s).map(|c| c.province.as_str()),
                    "commune": s.commune,
                    "commune_name": inventory.commune_of(s).map(|c| c.name.as_str()),
                    "site": s.id,
                    "name": s.name,
                    "kind": s.kind.as_str(),
                    "parent": s.parent,
                    "lat": s.lat,
                    "lon": s.lon,
                    "agents": s.agents.iter().map(AgentId::as_str).collect::<Vec<_>>(),
                    "contacts": inventory.contacts_for(s).iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let value = json!({
            "sites": sites,
            "never_seen": never_seen.iter().map(|(a, site)| json!({"agent": a.as_str(), "site": site})).collect::<Vec<_>>(),
            "unknown": unknown.iter().map(|(a, t)| json!({"agent": a.as_str(), "last_received": crate::store::millis(*t)})).collect::<Vec<_>>(),
        });
        format!("{value}\n")
    } else {
        tables(inventory, &never_seen, &unknown, lang)
    };
    out.write_all(text.as_bytes()).context("writing output")?;
    Ok(())
}

/// Every agent with a boot in the store, with the last time a batch of it was received.
fn seen_agents(store: &Store) -> anyhow::Result<BTreeMap<AgentId, DateTime<Utc>>> {
    let mut seen: BTreeMap<AgentId, DateTime<Utc>> = BTreeMap::new();
    for boot in store.boots()? {
        let last = seen.entry(boot.row.agent).or_insert(boot.row.last_received);
        *last = (*last).max(boot.row.last_received);
    }
    Ok(seen)
}

/// How the inventory matches the agents in the store.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison<'a> {
    /// Registered agents never seen, with their site, by agent id.
    pub never_seen: Vec<(&'a AgentId, &'a str)>,
    /// Agents seen but not registered, with the last time one of their batches was received.
    pub unknown: Vec<(&'a AgentId, DateTime<Utc>)>,
}

/// Compares the registered agents with those `seen` in the store.
pub fn compare<'a>(
    inventory: &'a Inventory,
    seen: &'a BTreeMap<AgentId, DateTime<Utc>>,
) -> Comparison<'a> {
    let mut never_seen: Vec<_> = inventory
        .agents
        .iter()
        .filter(|(agent, _)| !seen.contains_key(*agent))
        .map(|(agent, site)| (agent, site.as_str()))
        .collect();
    never_seen.sort();
    let unknown = seen
        .iter()
        .filter(|(agent, _)| !inventory.agents.contains_key(*agent))
        .map(|(agent, time)| (agent, *time))
        .collect();
    Comparison {
        never_seen,
        unknown,
    }
}

fn tables(
    inventory: &Inventory,
    never_seen: &[(&AgentId, &str)],
    unknown: &[(&AgentId, DateTime<Utc>)],
    lang: Lang,
) -> String {
    let mut sites = Table::new(&[
        lang.pick("xã", "commune"),
        lang.pick("trạm", "site"),
        lang.pick("tên", "name"),
        lang.pick("loại", "kind"),
        lang.pick("trạm cha", "parent"),
        "agents",
        lang.pick("người nhận thông báo", "notified"),
    ]);
    let mut ordered: Vec<_> = inventory.sites.values().collect();
    ordered.sort_by(|a, b| (&a.commune, &a.id).cmp(&(&b.commune, &b.id)));
    for s in ordered {
        sites.row(vec![
            inventory
                .commune_of(s)
                .map_or_else(|| s.commune.clone(), |c| c.name.clone()),
            s.id.clone(),
            s.name.clone(),
            s.kind.as_str().to_owned(),
            s.parent.clone().unwrap_or_else(|| "-".into()),
            s.agents
                .iter()
                .map(AgentId::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            inventory
                .contacts_for(s)
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    let mut text = format!("{}\n{}", inventory.summary(), sites.render());
    text.push_str(&format!(
        "\n{} ({}):\n",
        lang.pick(
            "Agent đã đăng ký nhưng chưa từng gửi dữ liệu",
            "Registered agents never seen"
        ),
        never_seen.len()
    ));
    if !never_seen.is_empty() {
        let mut t = Table::new(&["agent", lang.pick("trạm", "site")]);
        for (agent, site) in never_seen {
            t.row(vec![agent.to_string(), (*site).to_owned()]);
        }
        text.push_str(&t.render());
    }
    text.push_str(&format!(
        "\n{} ({}):\n",
        lang.pick(
            "Agent gửi dữ liệu nhưng không có trong danh mục",
            "Agents seen but not in the inventory"
        ),
        unknown.len()
    ));
    if !unknown.is_empty() {
        let mut t = Table::new(&["agent", lang.pick("lần cuối", "last received")]);
        for (agent, time) in unknown {
            t.row(vec![agent.to_string(), crate::cli::time::local(*time)]);
        }
        text.push_str(&t.render());
    }
    text
}
