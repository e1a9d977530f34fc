//! ModemManager's JSON (`mmcli -J`). [`parse`] takes the status document (`mmcli -m N -J`), the
//! signal document (`mmcli -m N --signal-get -J`), or both — printed one after the other, or
//! merged into one object — and looks every value up in whichever document has it:
//! - `modem.generic.access-technologies` (a list, or a comma-separated string in old versions):
//!   `5gnr` with `lte` → nr5g_nsa, `5gnr` alone → nr5g_sa, `lte*` → lte, `umts`/`hs*` → wcdma,
//!   `gsm`/`gprs`/`edge` → gsm, otherwise none;
//! - `modem.3gpp.operator-code` (`"45204"`), `operator-name`, `registration-state` (`home`,
//!   `roaming`, `searching`, `denied`, `idle` → not_registered, `*-sms-only`/`*-csfb-*` → home or
//!   roaming, others unknown);
//! - `modem.signal.lte.{rsrp,rsrq,snr,rssi}`, `modem.signal.5g.{rsrp,rsrq,snr}`, and
//!   `modem.signal.{umts,gsm}.rssi` when LTE gives none. Values are strings; `"--"` is unknown.
//!
//! mmcli prints neither band, channel nor cell id in these documents: they stay `null`.

use serde_json::Value;

use super::{
    ParseError, Registration, Signal, Technology, field_error, json_documents, operator,
    plmn_from_code,
};

const EXPECTED: &str = "mmcli -J output (an object with \"modem\")";

/// Parses one or both mmcli documents.
pub fn parse(text: &str) -> Result<Signal, ParseError> {
    let documents = json_documents(text, EXPECTED)?;
    let docs = Docs(&documents);
    if docs.get("/modem/generic").is_none()
        && docs.get("/modem/3gpp").is_none()
        && docs.get("/modem/signal").is_none()
    {
        return Err(super::nothing(EXPECTED, text));
    }
    let mut r = Signal {
        technology: technology(&docs.strings("/modem/generic/access-technologies")),
        ..Signal::default()
    };
    let code = docs.text("/modem/3gpp/operator-code");
    r.plmn = code.and_then(plmn_from_code);
    r.operator = operator(r.plmn.as_deref(), docs.text("/modem/3gpp/operator-name"));
    r.registration = docs
        .text("/modem/3gpp/registration-state")
        .map_or(Registration::Unknown, registration);
    r.rsrp_dbm = docs.number("/modem/signal/lte/rsrp")?;
    r.rsrq_db = docs.number("/modem/signal/lte/rsrq")?;
    r.sinr_db = docs.number("/modem/signal/lte/snr")?;
    r.rssi_dbm = match docs.number("/modem/signal/lte/rssi")? {
        Some(rssi) => Some(rssi),
        None => match docs.number("/modem/signal/umts/rssi")? {
            Some(rssi) => Some(rssi),
            None => docs.number("/modem/signal/gsm/rssi")?,
        },
    };
    r.nr_rsrp_dbm = docs.number("/modem/signal/5g/rsrp")?;
    r.nr_rsrq_db = docs.number("/modem/signal/5g/rsrq")?;
    r.nr_sinr_db = docs.number("/modem/signal/5g/snr")?;
    Ok(r)
}

struct Docs<'a>(&'a [Value]);

impl<'a> Docs<'a> {
    fn get(&self, pointer: &str) -> Option<&'a Value> {
        self.0.iter().find_map(|d| d.pointer(pointer))
    }

    /// A string value, `None` when absent, empty or `"--"`.
    fn text(&self, pointer: &str) -> Option<&'a str> {
        self.get(pointer)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "--")
    }

    /// A list of strings, or one comma-separated string.
    fn strings(&self, pointer: &str) -> Vec<String> {
        match self.get(pointer) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A number printed as a string (`"-98.00"`) or as a number; `"--"` is `None`.
    fn number(&self, pointer: &str) -> Result<Option<f64>, ParseError> {
        let path = || pointer.trim_start_matches('/').replace('/', ".");
        match self.get(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) if s.trim().is_empty() || s.trim() == "--" => Ok(None),
            Some(Value::String(s)) => match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(field_error(path(), "value", "a number or \"--\"", s)),
            },
            Some(other) => Err(field_error(
                path(),
                "value",
                "a number or \"--\"",
                &other.to_string(),
            )),
        }
    }
}

fn technology(access: &[String]) -> Technology {
    let has = |f: &dyn Fn(&str) -> bool| access.iter().any(|a| f(a));
    let nr = has(&|a| a == "5gnr");
    let lte = has(&|a| a.starts_with("lte"));
    if nr && lte {
        Technology::Nr5gNsa
    } else if nr {
        Technology::Nr5gSa
    } else if lte {
        Technology::Lte
    } else if has(&|a| a == "umts" || a.starts_with("hs")) {
        Technology::Wcdma
    } else if has(&|a| a.starts_with("gsm") || a == "gprs" || a == "edge") {
        Technology::Gsm
    } else {
        Technology::None
    }
}

fn registration(state: &str) -> Registration {
    let state = state.to_ascii_lowercase();
    match state.as_str() {
        "home" => Registration::Home,
        "roaming" => Registration::Roaming,
        "searching" => Registration::Searching,
        "denied" => Registration::Denied,
        "idle" => Registration::NotRegistered,
        s if s.starts_with("home-") => Registration::Home,
        s if s.starts_with("roaming-") => Registration::Roaming,
        _ => Registration::Unknown,
    }
}
