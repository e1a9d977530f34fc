//! Cellular modems and 5G CPEs (`docs/cellular.md`).
//!
//! Pure parsers of what a modem answers about its radio (no I/O, no clock), each format in its
//! own file with one entry point taking the whole text the tool or modem printed:
//! - [`mmcli`]: ModemManager's `mmcli -m N -J` and `mmcli -m N --signal-get -J`;
//! - [`uqmi`]: OpenWrt's `uqmi --get-signal-info` and `uqmi --get-serving-system`;
//! - [`at`]: 3GPP TS 27.007 answers `+CESQ`, `+COPS?`, `+CEREG?`/`+C5GREG?`/`+CREG?`/`+CGREG?`;
//! - [`quectel`]: Quectel's `+QENG="servingcell"`, `+QNWINFO`, `+QCSQ`.
//!
//! All of them produce the contract's [`Signal`] (`netmon_events`); [`parse`] picks the parser
//! by [`Format`]. Helpers shared by the text formats (answer splitting, PLMN formatting, operator
//! names) live here.
//!
//! **Strings from a modem are untrusted.** The operator name comes from the network or the SIM,
//! and mmcli/uqmi JSON, AT answers or a `command` source may carry anything. Every string of a
//! [`Signal`] goes through [`clean_signal`] (in [`parse`], in the reader for `command` sources, and
//! again in [`modem::ModemState`], whose events carry the operator too), the contract's
//! [`netmon_events::text::clean`]: no control, bidi or zero-width characters, whitespace runs as
//! one space, cut to the contract's lengths. A modem quirk must never become an event the
//! collector refuses.
//!
//! Also pure: [`quality`] (thresholds → [`Quality`]), [`modem`] (one modem across readings →
//! events), [`settings`] (`[[cellular]]`). I/O: [`command`] (tools with a deadline), [`serial`]
//! (the AT session), [`reader`] (one reading per source), [`poller`] (the task), [`report`]
//! (`netmon-agent cellular --config`).

pub mod at;
pub mod command;
pub mod mmcli;
pub mod modem;
pub mod poller;
pub mod quality;
pub mod quectel;
pub mod reader;
pub mod report;
pub mod serial;
pub mod settings;
pub mod uqmi;

use netmon_events::text;
pub use netmon_events::{Quality, Registration, Signal, Technology};

/// How much a registration state says; merging keeps the most telling of several answers.
fn rank(registration: Registration) -> u8 {
    match registration {
        Registration::Home | Registration::Roaming => 3,
        Registration::Denied | Registration::Searching => 2,
        Registration::NotRegistered => 1,
        Registration::Unknown => 0,
    }
}

/// `current` merged with `other` (e.g. `+CEREG` and `+C5GREG`): the more telling one.
fn merge(current: Registration, other: Registration) -> Registration {
    if rank(other) > rank(current) {
        other
    } else {
        current
    }
}

/// The input formats `cellular parse --format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mmcli,
    Uqmi,
    At,
    Quectel,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Mmcli => "mmcli",
            Format::Uqmi => "uqmi",
            Format::At => "at",
            Format::Quectel => "quectel",
        }
    }
}

/// Why a modem answer could not be read. Callers report it (the CLI exits 65); nothing to retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The input is not the JSON the tool prints.
    #[error("line {line}, column {column}: expected {expected}: {message}")]
    Json {
        expected: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    /// A recognised answer has a field the format does not allow. `location` is `line N` for
    /// text or the JSON path.
    #[error("{location}: field {field}: expected {expected}, found {found:?}")]
    Field {
        location: String,
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    /// Nothing in the input is an answer this format knows.
    #[error("expected {expected}, found none (input starts with {found:?})")]
    NothingRecognised {
        expected: &'static str,
        found: String,
    },
}

/// Parses `text` as `format`; the strings of the result are cleaned ([`clean_signal`]).
pub fn parse(format: Format, text: &str) -> Result<Signal, ParseError> {
    let signal = match format {
        Format::Mmcli => mmcli::parse(text),
        Format::Uqmi => uqmi::parse(text),
        Format::At => at::parse(text),
        Format::Quectel => quectel::parse(text),
    }?;
    Ok(clean_signal(signal))
}

/// The contract's longest `plmn` (`Signal::check`, and the change events' `check_optional`).
pub const MAX_PLMN: usize = 7;
/// The contract's longest `operator` in a `Signal`.
pub const MAX_OPERATOR: usize = 64;
/// The contract's longest `band`.
pub const MAX_BAND: usize = 32;
/// The contract's longest `cell_id`.
pub const MAX_CELL_ID: usize = 32;

/// `signal` with its strings cleaned by the contract's own rule ([`netmon_events::text::clean`]:
/// control, bidi and zero-width characters and line separators dropped, whitespace runs made one
/// space, cut on a character boundary) to the contract's lengths, counted in bytes (so also in
/// characters); an empty result is `None`. Numbers stay as they are ([`Signal::check`] judges
/// them).
pub fn clean_signal(signal: Signal) -> Signal {
    let clean = |s: Option<String>, max: usize| s.and_then(|s| text::clean(&s, max));
    Signal {
        plmn: clean(signal.plmn, MAX_PLMN),
        operator: clean(signal.operator, MAX_OPERATOR),
        band: clean(signal.band, MAX_BAND),
        cell_id: clean(signal.cell_id, MAX_CELL_ID),
        ..signal
    }
}

/// At most 60 characters of `s`, for error messages.
fn excerpt(s: &str) -> String {
    s.chars().take(60).collect()
}

fn nothing(expected: &'static str, text: &str) -> ParseError {
    ParseError::NothingRecognised {
        expected,
        found: excerpt(text.trim_start()),
    }
}

fn field_error(
    location: String,
    field: &'static str,
    expected: &'static str,
    found: &str,
) -> ParseError {
    ParseError::Field {
        location,
        field,
        expected,
        found: excerpt(found),
    }
}

/// Every JSON value in `text`: one document, or several printed one after the other.
fn json_documents(
    text: &str,
    expected: &'static str,
) -> Result<Vec<serde_json::Value>, ParseError> {
    let mut documents = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        match value {
            Ok(value) => documents.push(value),
            Err(e) => {
                return Err(ParseError::Json {
                    expected,
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                });
            }
        }
    }
    if documents.is_empty() {
        return Err(nothing(expected, text));
    }
    Ok(documents)
}

/// Splits an answer line `+NAME: a,b,...` (space after the colon optional) into the upper-case
/// name (`"+CESQ"`) and the text after the colon. `None` for lines that are not answers
/// (echo, `OK`, blank).
fn answer(line: &str) -> Option<(String, &str)> {
    let line = line.trim();
    if !line.starts_with('+') {
        return None;
    }
    let (name, rest) = line.split_once(':')?;
    Some((name.trim().to_ascii_uppercase(), rest.trim()))
}

/// Splits the comma-separated fields of an answer, keeping quoted commas, trimming each field.
/// Quotes are kept; see [`unquote`].
fn fields(rest: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(rest[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(rest[start..].trim());
    out
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    let s = s.strip_prefix('"').unwrap_or(s);
    s.strip_suffix('"').unwrap_or(s).trim()
}

fn is_quoted(s: &str) -> bool {
    s.trim_start().starts_with('"')
}

/// `"452"` + `"04"` → `"452-04"`. The MCC must have 3 digits, the MNC 2 or 3 (a 1-digit MNC is
/// padded to 2). `None` otherwise.
fn plmn(mcc: &str, mnc: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if mcc.len() != 3 || !digits(mcc) || !digits(mnc) || mnc.len() > 3 {
        return None;
    }
    let mnc = if mnc.len() == 1 {
        format!("0{mnc}")
    } else {
        mnc.to_owned()
    };
    Some(format!("{mcc}-{mnc}"))
}

/// A numeric operator code `"45204"` or `"452004"` → `"452-04"` / `"452-004"`.
fn plmn_from_code(code: &str) -> Option<String> {
    if !(5..=6).contains(&code.len()) || !code.is_char_boundary(3) {
        return None;
    }
    plmn(&code[..3], &code[3..])
}

/// Known Vietnamese operators by PLMN.
fn known_operator(plmn: &str) -> Option<&'static str> {
    match plmn {
        "452-01" => Some("MobiFone"),
        "452-02" => Some("VinaPhone"),
        "452-04" => Some("Viettel"),
        "452-05" => Some("Vietnamobile"),
        _ => None,
    }
}

/// The operator's name: the table's for a known PLMN, else `reported` when it says something.
fn operator(plmn: Option<&str>, reported: Option<&str>) -> Option<String> {
    if let Some(name) = plmn.and_then(known_operator) {
        return Some(name.to_owned());
    }
    reported
        .map(str::trim)
        .filter(|r| !r.is_empty() && *r != "--")
        .map(str::to_owned)
}

/// `"B3"` from an LTE band number, `"n78"` from an NR one.
fn lte_band(n: u32) -> String {
    format!("B{n}")
}

fn nr_band(n: u32) -> String {
    format!("n{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_answers_and_fields() {
        assert_eq!(answer("+cops:0,2"), Some(("+COPS".to_owned(), "0,2")));
        assert_eq!(answer("OK"), None);
        assert_eq!(fields(r#"0, 0,"a,b" ,7"#), vec!["0", "0", r#""a,b""#, "7"]);
        assert_eq!(unquote(r#" "45204" "#), "45204");
    }

    #[test]
    fn cleans_signal_strings_to_the_contract() {
        let dirty = |text: &str| Some(text.to_owned());
        let signal = clean_signal(Signal {
            plmn: dirty("452-0\u{202E}4 extra"),
            operator: dirty("  \u{1b}[2J\u{1b}]0;owned\u{7}Viettel\n\tTelecom\u{200B}  "),
            band: dirty("B3\u{2028}+\u{85}n78\u{feff}"),
            cell_id: dirty("\u{200b}\u{200d} \n"),
            ..Signal::default()
        });
        assert_eq!(signal.plmn.as_deref(), Some("452-04"));
        assert_eq!(
            signal.operator.as_deref(),
            Some("[2J]0;ownedViettel Telecom")
        );
        assert_eq!(signal.band.as_deref(), Some("B3 + n78"));
        assert_eq!(signal.cell_id, None, "nothing left");
        assert_eq!(signal.check(), Ok(()));
        // Cut on a character boundary, within the limit counted in bytes and in characters.
        let long = clean_signal(Signal {
            operator: Some("Ư".repeat(100)),
            ..Signal::default()
        });
        let operator = long.operator.unwrap();
        assert!(operator.len() <= MAX_OPERATOR);
        assert_eq!(operator.chars().count(), MAX_OPERATOR / 2);
    }

    #[test]
    fn formats_plmns() {
        assert_eq!(plmn("452", "4").as_deref(), Some("452-04"));
        assert_eq!(plmn("310", "410").as_deref(), Some("310-410"));
        assert_eq!(plmn_from_code("45204").as_deref(), Some("452-04"));
        assert_eq!(plmn_from_code("4520"), None);
        assert_eq!(plmn("45", "04"), None);
        assert_eq!(
            operator(Some("452-05"), Some("VNMOBILE")).as_deref(),
            Some("Vietnamobile")
        );
        assert_eq!(
            operator(Some("520-01"), Some("AIS")).as_deref(),
            Some("AIS")
        );
    }
}
