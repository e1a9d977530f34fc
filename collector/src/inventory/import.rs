//! `inventory import`: a spreadsheet's CSV export → the inventory TOML. Pure: bytes in, text out.
//!
//! The sites file has one row per site and a header row naming the columns (any order):
//! `province_id, province_name, commune_id, commune_name, site_id, site_name, kind, parent, lat,
//! lon, agents, contacts, province_contacts, commune_contacts` (the first six are required;
//! `agents` and the `*contacts` columns hold ids separated by `;`, `,` or spaces). The contacts
//! file has `id, name, channel, to, lang`. A few Vietnamese headers are accepted too ("mã tỉnh",
//! "tên thôn", "vĩ độ", …; see `aliases.rs`), as are Vietnamese site kinds ("thôn", "tổ dân
//! phố", "UBND", …). UTF-8 with or without a BOM; comma or semicolon separated (detected from
//! the header row; with semicolons a decimal comma in `lat`/`lon` is accepted).
//!
//! The TOML made is then parsed and validated by the same code as the collector's loader; its
//! errors are mapped back to the CSV file, line and column.

use std::collections::HashMap;

use super::Inventory;
use super::aliases::{canonical, site_kind};
use super::load;
use super::raw::{RawCommune, RawContact, RawInventory, RawProvince, RawSite, to_toml};
use crate::config::ConfigError;

/// A CSV file's name (for errors) and contents.
#[derive(Debug, Clone, Copy)]
pub struct CsvFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Where each inventory entry came from, to report validation errors against the CSV.
#[derive(Debug, Default)]
struct Lines {
    provinces: Vec<u64>,
    communes: Vec<u64>,
    sites: Vec<u64>,
    contacts: Vec<u64>,
}

/// Converts the CSV exports into inventory TOML and validates it; returns the text and the
/// inventory it loads as.
pub fn convert(
    sites: CsvFile<'_>,
    contacts: Option<CsvFile<'_>>,
) -> Result<(String, Inventory), ConfigError> {
    let mut raw = RawInventory::default();
    let mut lines = Lines::default();
    read_sites(sites, &mut raw, &mut lines)?;
    if let Some(file) = contacts {
        read_contacts(file, &mut raw, &mut lines)?;
    }
    let text = to_toml(&raw, sites.name, contacts.map(|c| c.name)).map_err(|e| ConfigError {
        file: sites.name.to_string(),
        key: String::new(),
        problem: format!("cannot write the inventory as TOML: {e}"),
    })?;
    match load::parse(&text, "(converted)") {
        Ok(inventory) => Ok((text, inventory)),
        Err(e) => Err(locate(e, &lines, sites.name, contacts.map(|c| c.name))),
    }
}

/// One CSV file opened with its detected separator and its header mapped to canonical names.
struct Table<'a> {
    name: &'a str,
    /// The file without its BOM, to count lines (the reader's own count is off with CRLF).
    bytes: &'a [u8],
    reader: csv::Reader<&'a [u8]>,
    columns: HashMap<&'static str, usize>,
}

impl<'a> Table<'a> {
    fn open(file: CsvFile<'a>, required: &[&str]) -> Result<(Self, u8), ConfigError> {
        let bytes = file
            .bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(file.bytes);
        let header_end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        let header = &bytes[..header_end];
        let count = |c: u8| header.iter().filter(|&&b| b == c).count();
        let delimiter = if count(b';') > count(b',') {
            b';'
        } else {
            b','
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| error(file.name, 1, "", format!("cannot read the header row: {e}")))?
            .clone();
        let mut columns = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            if let Some(name) = canonical(h) {
                columns.entry(name).or_insert(i);
            }
        }
        for name in required {
            if !columns.contains_key(name) {
                return Err(error(
                    file.name,
                    1,
                    name,
                    format!(
                        "the header row has no column {name:?} (it has: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok((
            Self {
                name: file.name,
                bytes,
                reader,
                columns,
            },
            delimiter,
        ))
    }

    /// Every data row: (line number, the row).
    fn rows(&mut self) -> Result<Vec<(u64, csv::StringRecord)>, ConfigError> {
        let mut rows = Vec::new();
        for record in self.reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| line_at(self.bytes, p));
                let problem = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => {
                        "not UTF-8 text; export the sheet as \"CSV UTF-8\"".to_owned()
                    }
                    _ => e.to_string(),
                };
                error(self.name, line, "", problem)
            })?;
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let line = record.position().map_or(0, |p| line_at(self.bytes, p));
            rows.push((line, record));
        }
        Ok(rows)
    }

    /// The cell of `column` with white space (line breaks in a cell too) collapsed to single
    /// spaces; empty when the column or the cell is missing.
    fn cell(&self, record: &csv::StringRecord, column: &str) -> String {
        self.columns
            .get(column)
            .and_then(|&i| record.get(i))
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }
}

fn read_sites(
    file: CsvFile<'_>,
    raw: &mut RawInventory,
    lines: &mut Lines,
) -> Result<(), ConfigError> {
    let required = [
        "province_id",
        "province_name",
        "commune_id",
        "commune_name",
        "site_id",
        "site_name",
    ];
    let (mut table, delimiter) = Table::open(file, &required)?;
    let mut provinces: HashMap<String, usize> = HashMap::new();
    let mut communes: HashMap<String, usize> = HashMap::new();
    for (line, record) in table.rows()? {
        let cell = |column: &str| table.cell(&record, column);
        let err = |column: &str, problem: String| error(file.name, line, column, problem);
        for column in required {
            if cell(column).is_empty() {
                return Err(err(column, "expected a value, got an empty cell".into()));
            }
        }
        let province_id = cell("province_id");
        let index = *provinces.entry(province_id.clone()).or_insert_with(|| {
            raw.provinces.push(RawProvince {
                id: province_id.clone(),
                name: cell("province_name"),
                contacts: Vec::new(),
            });
            lines.provinces.push(line);
            raw.provinces.len() - 1
        });
        let province = &mut raw.provinces[index];
        same(
            &province.name,
            &cell("province_name"),
            "province",
            &province_id,
            lines.provinces[index],
        )
        .map_err(|p| err("province_name", p))?;
        extend(&mut province.contacts, &cell("province_contacts"));

        let commune_id = cell("commune_id");
        let index = *communes.entry(commune_id.clone()).or_insert_with(|| {
            raw.communes.push(RawCommune {
                id: commune_id.clone(),
                province: province_id.clone(),
                name: cell("commune_name"),
                contacts: Vec::new(),
            });
            lines.communes.push(line);
            raw.communes.len() - 1
        });
        let commune = &mut raw.communes[index];
        let first = lines.communes[index];
        same(
            &commune.name,
            &cell("commune_name"),
            "commune",
            &commune_id,
            first,
        )
        .map_err(|p| err("commune_name", p))?;
        same(
            &commune.province,
            &province_id,
            "commune",
            &commune_id,
            first,
        )
        .map_err(|p| err("province_id", format!("{p} (a commune is in one province)")))?;
        extend(&mut commune.contacts, &cell("commune_contacts"));

        let kind = cell("kind");
        let kind = if kind.is_empty() {
            "other".to_owned()
        } else {
            site_kind(&kind).ok_or_else(|| {
                err(
                    "kind",
                    format!("expected village, residential_group, commune_centre, public_service_centre or other (or thôn, tổ dân phố, UBND, …), got {kind:?}"),
                )
            })?.to_owned()
        };
        let coordinate = |column: &str| -> Result<Option<f64>, ConfigError> {
            let text = cell(column);
            if text.is_empty() {
                return Ok(None);
            }
            let normal = if delimiter == b';' && !text.contains('.') {
                text.replacen(',', ".", 1)
            } else {
                text.clone()
            };
            normal
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    err(
                        column,
                        format!("expected decimal degrees such as 20.0517, got {text:?}"),
                    )
                })
        };
        let parent = cell("parent");
        raw.sites.push(RawSite {
            id: cell("site_id"),
            commune: commune_id,
            name: cell("site_name"),
            kind,
            parent: (!parent.is_empty()).then_some(parent),
            lat: coordinate("lat")?,
            lon: coordinate("lon")?,
            agents: ids(&cell("agents")),
            contacts: ids(&cell("contacts")),
            thresholds: Default::default(),
        });
        lines.sites.push(line);
    }
    Ok(())
}

fn read_contacts(
    file: CsvFile<'_>,
    raw: &mut RawInventory,
    lines: &mut Lines,
) -> Result<(), ConfigError> {
    let required = ["id", "name", "channel", "to"];
    let (mut table, _) = Table::open(file, &required)?;
    for (line, record) in table.rows()? {
        let cell = |column: &str| table.cell(&record, column);
        for column in required {
            if cell(column).is_empty() {
                return Err(error(
                    file.name,
                    line,
                    column,
                    "expected a value, got an empty cell".into(),
                ));
            }
        }
        let lang = cell("lang");
        raw.contacts.push(RawContact {
            id: cell("id"),
            name: cell("name"),
            channel: cell("channel").to_lowercase().replace(['-', ' '], ""),
            to: cell("to"),
            lang: (!lang.is_empty()).then(|| lang.to_lowercase()),
        });
        lines.contacts.push(line);
    }
    Ok(())
}

/// The 1-based line of the record at `position`. The reader's own line count, and with CRLF its
/// byte position too, lag by the line end before the record: skip line ends, then count `\n`.
fn line_at(bytes: &[u8], position: &csv::Position) -> u64 {
    let mut start = usize::try_from(position.byte()).map_or(bytes.len(), |b| b.min(bytes.len()));
    while bytes.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64
}

/// Two rows disagree about a province's or commune's name (or a commune's province).
fn same(first: &str, this: &str, what: &str, id: &str, line: u64) -> Result<(), String> {
    if first == this {
        Ok(())
    } else {
        Err(format!(
            "{what} {id:?} is {first:?} on line {line} but {this:?} here"
        ))
    }
}

/// Ids separated by `;`, `,` or white space.
fn ids(text: &str) -> Vec<String> {
    text.split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn extend(into: &mut Vec<String>, text: &str) {
    for id in ids(text) {
        if !into.contains(&id) {
            into.push(id);
        }
    }
}

fn error(file: &str, line: u64, column: &str, problem: String) -> ConfigError {
    let key = if column.is_empty() {
        format!("line {line}")
    } else {
        format!("line {line}, column {column}")
    };
    ConfigError {
        file: file.to_owned(),
        key,
        problem,
    }
}

/// Maps a validation error of the converted TOML (`sites[3].parent`) to the CSV line and column.
fn locate(e: ConfigError, lines: &Lines, sites: &str, contacts: Option<&str>) -> ConfigError {
    let (section, rest) = e.key.split_once('[').unwrap_or((e.key.as_str(), ""));
    let (index, field) = rest.split_once("]").unwrap_or(("", ""));
    let field = field.trim_start_matches('.');
    let field = field.split(['[', '.']).next().unwrap_or_default();
    let index: usize = index.parse().unwrap_or(usize::MAX);
    let (file, line, column) = match section {
        "provinces" => (
            sites,
            lines.provinces.get(index),
            format!("province_{field}"),
        ),
        "communes" => (
            sites,
            lines.communes.get(index),
            if field == "province" {
                "province_id".to_owned()
            } else {
                format!("commune_{field}")
            },
        ),
        "sites" => (
            sites,
            lines.sites.get(index),
            match field {
                "id" | "name" => format!("site_{field}"),
                "commune" => "commune_id".to_owned(),
                other => other.to_owned(),
            },
        ),
        "contacts" => (
            contacts.unwrap_or(sites),
            lines.contacts.get(index),
            field.to_owned(),
        ),
        _ => (sites, None, String::new()),
    };
    match line {
        Some(&line) => error(file, line, &column, e.problem),
        None => ConfigError {
            file: file.to_owned(),
            key: e.key,
            problem: e.problem,
        },
    }
}
