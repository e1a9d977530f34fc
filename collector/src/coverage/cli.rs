//! `report coverage`: the coverage report over the store opened read-only (works while the daemon
//! runs), as a terminal table, a CSV for Excel (UTF-8 with BOM) or JSON. The figures come from the
//! pure fold in `coverage/` — daily rollups for the days that have them, raw readings for the
//! rest (`plan.rs`); this file parses the window and the scope, reads the store and formats.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use clap::Subcommand;
use netmon_events::{ProvinceId, Quality};
use serde_json::{Value, json};

use crate::cli::failure::Failure;
use crate::cli::table::{Lang, Table};
use crate::cli::time::{self, local};
use crate::config::Config;
use crate::coverage::{self, Level, Plan, Report, Row, Scope, Summary};
use crate::inventory::Inventory;
use crate::store::rollups::ROLLED_THROUGH;
use crate::store::{Store, StoreError};

/// The reports.
#[derive(Debug, Subcommand)]
pub enum ReportKind {
    /// Cellular coverage per site and operator: share of time on 5G/4G/3G-2G/no service, median
    /// RSRP and SINR, quality class; per commune and province the sites with usable 5G.
    Coverage {
        #[arg(long)]
        config: PathBuf,
        /// Only this province (inventory id or name).
        #[arg(long)]
        province: Option<String>,
        /// Only this commune (inventory id or name).
        #[arg(long)]
        commune: Option<String>,
        /// Start: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" in Vietnam time (UTC+7), or a date
        /// YYYY-MM-DD, which is its midnight in Vietnam time (00:00 +07:00). Default: 30 days
        /// before --to.
        #[arg(long)]
        from: Option<String>,
        /// End (exclusive), in the same forms; a date includes that whole day (up to the next
        /// midnight in Vietnam time). Default: now.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[arg(long, value_enum, default_value_t = Lang::Vi)]
        lang: Lang,
    },
}

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// What `report coverage` was asked for.
#[derive(Debug)]
pub struct CoverageArgs<'a> {
    pub province: Option<&'a str>,
    pub commune: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub format: Format,
    pub lang: Lang,
}

/// `report coverage`; `now` is the default end of the window.
pub fn coverage(
    config: &Config,
    args: &CoverageArgs,
    now: DateTime<Utc>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), Failure> {
    let inventory = config.inventory.as_deref();
    let to = args
        .to
        .map(|t| time::parse_end(t).map_err(|e| format!("--to: {e}")))
        .transpose()
        .map_err(Failure::Usage)?
        .unwrap_or(now);
    let from = args
        .from
        .map(|t| time::parse(t).map_err(|e| format!("--from: {e}")))
        .transpose()
        .map_err(Failure::Usage)?
        .unwrap_or(to - TimeDelta::days(30));
    if from >= to {
        return Err(Failure::Usage(format!(
            "--from {} is not before --to {}",
            from.to_rfc3339(),
            to.to_rfc3339()
        )));
    }
    let scope = Scope {
        from,
        to,
        province: args
            .province
            .map(|p| province(inventory, p))
            .transpose()
            .map_err(Failure::Usage)?,
        commune: args
            .commune
            .map(|c| commune(inventory, c))
            .transpose()
            .map_err(Failure::Usage)?,
    };
    let store = crate::cli::store_replay::open_read_only(config)?;
    let (report, unreadable) = from_store(&store, &scope, inventory)
        .context("reading the store")
        .map_err(Failure::Runtime)?;
    if unreadable > 0 {
        writeln!(
            err,
            "{unreadable} stored events could not be read and were skipped"
        )
        .context("writing output")?;
    }
    if report.out_of_order > 0 {
        writeln!(
            err,
            "{} readings arrived after much later ones of the same modem and were left out",
            report.out_of_order
        )
        .context("writing output")?;
    }
    let lang = args.lang;
    let bytes = match args.format {
        Format::Table => table(&report, lang).into_bytes(),
        Format::Csv => csv(&report, lang)?,
        Format::Json => format!("{:#}\n", json(&report)).into_bytes(),
    };
    out.write_all(&bytes).context("writing output")?;
    Ok(())
}

/// The report over `scope` from `store`: rollups for the days rolled up, raw readings for the
/// rest. Also returns how many rows could not be read (skipped).
pub fn from_store(
    store: &Store,
    scope: &Scope,
    inventory: Option<&Inventory>,
) -> Result<(Report, u64), StoreError> {
    // A file older than the rollups (or than `projections`) has none.
    let through = store.projection_position(ROLLED_THROUGH).unwrap_or(0);
    let plan = Plan::new(scope.from, scope.to, through);
    let (mut unreadable, mut failed) = (0u64, None);
    let report = coverage::report(scope, inventory, &plan, &mut |read, f| {
        let each = |row: Result<_, _>| match row {
            Ok(event) => f(&event),
            Err(_) => unreadable += 1,
        };
        if let Err(e) = store.for_each_of(read.types, read.from, read.to, each) {
            failed.get_or_insert(e);
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok((report, unreadable)),
    }
}

/// `--province`: an inventory province by id or name, or any province id.
fn province(inventory: Option<&Inventory>, text: &str) -> Result<ProvinceId, String> {
    if let Some(p) = inventory.and_then(|i| {
        i.provinces
            .values()
            .find(|p| p.id.as_str() == text || p.name.to_lowercase() == text.to_lowercase())
    }) {
        return Ok(p.id.clone());
    }
    text.parse()
        .map_err(|e| format!("--province {text:?}: no such province in the inventory ({e})"))
}

/// `--commune`: an inventory commune by id or name.
fn commune(inventory: Option<&Inventory>, text: &str) -> Result<String, String> {
    let inventory =
        inventory.ok_or("--commune needs a site inventory (the `inventory` key of the config)")?;
    inventory
        .communes
        .values()
        .find(|c| c.id == text || c.name.to_lowercase() == text.to_lowercase())
        .map(|c| c.id.clone())
        .ok_or_else(|| format!("--commune {text:?}: no such commune id or name in the inventory"))
}

/// A quality class for people.
pub fn quality_name(quality: Option<Quality>, lang: Lang) -> &'static str {
    match quality {
        Some(Quality::Excellent) => lang.pick("rất tốt", "excellent"),
        Some(Quality::Good) => lang.pick("tốt", "good"),
        Some(Quality::Fair) => lang.pick("trung bình", "fair"),
        Some(Quality::Poor) => lang.pick("kém", "poor"),
        Some(Quality::NoService) => lang.pick("mất sóng", "no service"),
        None => "-",
    }
}

fn pct(share: f64) -> String {
    format!("{:.1}", share * 100.0)
}

fn value(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn operator(row: &Row) -> String {
    row.tally
        .operator
        .clone()
        .unwrap_or_else(|| row.plmn.clone())
}

fn hours(ms: i64) -> String {
    format!("{:.1}", ms as f64 / 3_600_000.0)
}

fn yes_no(yes: bool, lang: Lang) -> &'static str {
    match yes {
        true => lang.pick("có", "yes"),
        false => lang.pick("không", "no"),
    }
}

/// The cells of a row from the `5G %` column on, shared by the table and the CSV.
fn figures(row: &Row, lang: Lang) -> Vec<String> {
    let t = &row.tally;
    let mut cells: Vec<String> = t.shares().iter().map(|s| pct(*s)).collect();
    cells.extend([
        hours(t.measured()),
        value(t.median_rsrp()),
        value(t.median_sinr()),
        quality_name(t.quality(), lang).to_owned(),
        t.samples.to_string(),
        yes_no(t.has_usable_5g(), lang).to_owned(),
    ]);
    cells
}

const FIGURES_VI: [&str; 10] = [
    "5G %",
    "4G %",
    "3G/2G %",
    "Mất sóng %",
    "Giờ đo",
    "RSRP (dBm)",
    "SINR (dB)",
    "Chất lượng",
    "Số mẫu",
    "5G dùng được",
];
const FIGURES_EN: [&str; 10] = [
    "5G %",
    "4G %",
    "3G/2G %",
    "No service %",
    "Hours measured",
    "RSRP (dBm)",
    "SINR (dB)",
    "Quality",
    "Samples",
    "Usable 5G",
];

fn figure_headers(lang: Lang) -> [&'static str; 10] {
    lang.pick(FIGURES_VI, FIGURES_EN)
}

fn window_line(report: &Report, lang: Lang) -> String {
    format!(
        "{} {} – {} (UTC+7)\n",
        lang.pick("Vùng phủ sóng di động,", "Cellular coverage,"),
        local(report.from),
        local(report.to)
    )
}

fn level_name(level: Level, lang: Lang) -> &'static str {
    match level {
        Level::Commune => lang.pick("xã/phường", "commune"),
        Level::Province => lang.pick("tỉnh", "province"),
    }
}

/// "x/y" and the percentage.
fn ratio(s: &Summary) -> (String, String) {
    (
        format!("{}/{}", s.usable_5g, s.measured),
        s.usable_pct()
            .map_or_else(|| "-".into(), |p| format!("{p:.0}")),
    )
}

/// Two sections: sites × operators, then the communes' and provinces' summaries.
fn table(report: &Report, lang: Lang) -> String {
    let mut headers = vec![
        lang.pick("Xã/phường", "Commune"),
        lang.pick("Điểm", "Site"),
        lang.pick("Nhà mạng", "Operator"),
    ];
    headers.extend(figure_headers(lang));
    let mut sites = Table::new(&headers);
    for row in &report.rows {
        let mut cells = vec![
            row.commune_name.clone().unwrap_or_else(|| "-".into()),
            row.site_name.clone(),
            format!("{} ({})", operator(row), row.plmn),
        ];
        cells.extend(figures(row, lang));
        sites.row(cells);
    }
    let mut areas = Table::new(&[
        lang.pick("Cấp", "Level"),
        lang.pick("Tên", "Name"),
        lang.pick("Điểm có 5G dùng được", "Sites with usable 5G"),
        "%",
        lang.pick("Điểm chưa có số đo", "Sites not measured"),
    ]);
    for s in &report.summaries {
        let (x_of_y, pct) = ratio(s);
        areas.row(vec![
            level_name(s.level, lang).into(),
            s.name.clone(),
            x_of_y,
            pct,
            s.unmeasured.to_string(),
        ]);
    }
    let empty = lang.pick("(không có số đo)\n", "(no measurements)\n");
    format!(
        "{}\n{}\n{}",
        window_line(report, lang),
        if report.rows.is_empty() {
            empty.to_owned()
        } else {
            sites.render()
        },
        areas.render()
    )
}

/// One table for Excel: a row per site and operator (`cấp` = `điểm`), then the summary rows.
fn csv(report: &Report, lang: Lang) -> Result<Vec<u8>, Failure> {
    let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let mut headers = vec![
        lang.pick("cấp", "level"),
        lang.pick("tỉnh", "province"),
        lang.pick("xã/phường", "commune"),
        lang.pick("điểm", "site"),
        lang.pick("mã điểm", "site id"),
        lang.pick("nhà mạng", "operator"),
        "PLMN",
    ];
    headers.extend(figure_headers(lang));
    headers.extend([
        lang.pick("điểm có 5G dùng được", "sites with usable 5G"),
        lang.pick("điểm có số đo", "sites measured"),
        lang.pick("tỷ lệ 5G dùng được %", "usable 5G %"),
        lang.pick("điểm chưa có số đo", "sites not measured"),
    ]);
    let mut records = vec![headers.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for row in &report.rows {
        let id = match &row.place {
            coverage::Place::Site(id) => id.clone(),
            coverage::Place::Agent(agent) => agent.to_string(),
        };
        let mut cells = vec![
            lang.pick("điểm", "site").to_owned(),
            row.province_name.clone(),
            row.commune_name.clone().unwrap_or_default(),
            row.site_name.clone(),
            id,
            operator(row),
            row.plmn.clone(),
        ];
        cells.extend(figures(row, lang));
        cells.extend(std::iter::repeat_n(String::new(), 4));
        records.push(cells);
    }
    for s in &report.summaries {
        let (_, pct) = ratio(s);
        let (province, commune) = match s.level {
            Level::Commune => (String::new(), s.name.clone()),
            Level::Province => (s.name.clone(), String::new()),
        };
        let mut cells = vec![level_name(s.level, lang).to_owned(), province, commune];
        cells.extend(std::iter::repeat_n(String::new(), 4 + 10));
        cells.extend([
            s.usable_5g.to_string(),
            s.measured.to_string(),
            pct,
            s.unmeasured.to_string(),
        ]);
        records.push(cells);
    }
    for record in records {
        writer.write_record(&record).context("writing the CSV")?;
    }
    writer
        .into_inner()
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("writing the CSV: {e}")))
}

fn json(report: &Report) -> Value {
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|row| {
            let t = &row.tally;
            let [g5, g4, g3_g2, none] = t.shares();
            let (site, listed) = match &row.place {
                coverage::Place::Site(id) => (id.clone(), true),
                coverage::Place::Agent(agent) => (agent.to_string(), false),
            };
            json!({
                "province": row.province.as_str(),
                "province_name": row.province_name,
                "commune": row.commune,
                "commune_name": row.commune_name,
                "site": site,
                "site_name": row.site_name,
                "in_inventory": listed,
                "plmn": row.plmn,
                "operator": t.operator,
                "measured_s": t.measured() as f64 / 1000.0,
                "share": {"5g": g5, "4g": g4, "3g_2g": g3_g2, "none": none},
                "median_rsrp_dbm": t.median_rsrp(),
                "median_sinr_db": t.median_sinr(),
                "quality": t.quality().map(Quality::as_str),
                "samples": t.samples,
                "usable_5g": t.has_usable_5g(),
            })
        })
        .collect();
    let summaries: Vec<Value> = report
        .summaries
        .iter()
        .map(|s| {
            json!({
                "level": match s.level { Level::Commune => "commune", Level::Province => "province" },
                "province": s.province.as_str(),
                "id": s.id,
                "name": s.name,
                "sites_usable_5g": s.usable_5g,
                "sites_measured": s.measured,
                "usable_5g_pct": s.usable_pct(),
                "sites_not_measured": s.unmeasured,
            })
        })
        .collect();
    json!({
        "from": report.from.to_rfc3339(),
        "to": report.to.to_rfc3339(),
        "gap_bound": {
            "factor": coverage::GAP_FACTOR,
            "default_s": coverage::DEFAULT_BOUND / 1000,
            "max_s": coverage::MAX_BOUND / 1000,
        },
        "rows": rows,
        "summaries": summaries,
        "out_of_order": report.out_of_order,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn report_coverage_parses_and_names_its_config() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "netmon-collector",
            "report",
            "coverage",
            "--config",
            "c.toml",
            "--commune",
            "xã Kiên Thọ",
            "--from",
            "2026-11-01",
            "--format",
            "csv",
            "--lang",
            "en",
        ])
        .unwrap();
        assert_eq!(cli.command.config(), Some(std::path::Path::new("c.toml")));
        let crate::cli::Command::Report {
            kind:
                ReportKind::Coverage {
                    commune,
                    from,
                    to,
                    format,
                    lang,
                    ..
                },
        } = cli.command
        else {
            panic!("not report coverage");
        };
        assert_eq!(commune.as_deref(), Some("xã Kiên Thọ"));
        assert_eq!((from.as_deref(), to), (Some("2026-11-01"), None));
        assert_eq!((format, lang), (Format::Csv, Lang::En));
    }
}
