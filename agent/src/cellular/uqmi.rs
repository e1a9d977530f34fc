//! OpenWrt's `uqmi` JSON. [`parse`] takes the output of `uqmi --get-signal-info`, of
//! `uqmi --get-serving-system`, or both printed one after the other:
//! - signal info: an object `{"type":"lte","rssi":-70,"rsrq":-9,"rsrp":-98,"snr":12.4}`, or in
//!   EN-DC an array of two, one `"type":"lte"` and one `"type":"5gnr"` (`rsrp`, `rsrq`, `snr`).
//!   `lte` + `5gnr` → nr5g_nsa, `5gnr` alone → nr5g_sa, `wcdma`/`umts`/`tdscdma` → wcdma (its
//!   `rssi` kept), `gsm` → gsm (`signal` as RSSI);
//! - serving system: `{"registration":"registered","plmn_mcc":452,"plmn_mnc":4,
//!   "plmn_description":"Viettel","roaming":false}`; `registered` is home or roaming by
//!   `roaming`, then `searching`, `registering_denied` → denied, `not_registered`, else unknown.
//!   The MNC is an integer: below 100 it is printed with 2 digits (`4` → `"04"`), else 3.
//!
//! Documents of other shapes are ignored; uqmi gives no band, channel or cell id here.

use serde_json::{Map, Value};

use super::{
    ParseError, Registration, Signal, Technology, field_error, json_documents, operator, plmn,
};

const EXPECTED: &str = "uqmi --get-signal-info or --get-serving-system JSON";

/// Parses uqmi's signal info and/or serving system.
pub fn parse(text: &str) -> Result<Signal, ParseError> {
    let documents = json_documents(text, EXPECTED)?;
    let mut r = Signal::default();
    let mut found = false;
    let mut types = Vec::new();
    for document in &documents {
        match document {
            Value::Object(o) if o.contains_key("type") => {
                types.push(signal(o, &mut r)?);
                found = true;
            }
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(o) = item {
                        types.push(signal(o, &mut r)?);
                        found = true;
                    }
                }
            }
            Value::Object(o) if o.contains_key("registration") => {
                serving(o, &mut r)?;
                found = true;
            }
            _ => {}
        }
    }
    if !found {
        return Err(super::nothing(EXPECTED, text));
    }
    let has = |t: &str| types.iter().any(|x| x == t);
    r.technology = if has("5gnr") && has("lte") {
        Technology::Nr5gNsa
    } else if has("5gnr") {
        Technology::Nr5gSa
    } else if has("lte") {
        Technology::Lte
    } else if has("wcdma") || has("umts") || has("tdscdma") {
        Technology::Wcdma
    } else if has("gsm") {
        Technology::Gsm
    } else {
        Technology::None
    };
    Ok(r)
}

fn number(o: &Map<String, Value>, key: &'static str) -> Result<Option<f64>, ParseError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(field_error(
            key.to_owned(),
            key,
            "a number",
            &other.to_string(),
        )),
    }
}

/// One signal object; returns its lower-case `type`.
fn signal(o: &Map<String, Value>, r: &mut Signal) -> Result<String, ParseError> {
    let kind = match o.get("type") {
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        other => {
            let found = other.map_or_else(|| "nothing".to_owned(), Value::to_string);
            return Err(field_error("type".to_owned(), "type", "a string", &found));
        }
    };
    match kind.as_str() {
        "lte" => {
            r.rssi_dbm = number(o, "rssi")?;
            r.rsrq_db = number(o, "rsrq")?;
            r.rsrp_dbm = number(o, "rsrp")?;
            r.sinr_db = number(o, "snr")?;
        }
        "5gnr" => {
            r.nr_rsrp_dbm = number(o, "rsrp")?;
            r.nr_rsrq_db = number(o, "rsrq")?;
            r.nr_sinr_db = number(o, "snr")?;
        }
        "wcdma" | "umts" | "tdscdma" => r.rssi_dbm = number(o, "rssi")?,
        "gsm" => r.rssi_dbm = number(o, "signal")?,
        _ => {}
    }
    Ok(kind)
}

fn integer(o: &Map<String, Value>, key: &'static str) -> Result<Option<u64>, ParseError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(other) => Err(field_error(
            key.to_owned(),
            key,
            "a non-negative integer",
            &other.to_string(),
        )),
    }
}

fn serving(o: &Map<String, Value>, r: &mut Signal) -> Result<(), ParseError> {
    let roaming = matches!(o.get("roaming"), Some(Value::Bool(true)));
    r.registration = match o.get("registration").and_then(Value::as_str) {
        Some("registered") if roaming => Registration::Roaming,
        Some("registered") => Registration::Home,
        Some("searching") => Registration::Searching,
        Some("registering_denied") => Registration::Denied,
        Some("not_registered") => Registration::NotRegistered,
        _ => Registration::Unknown,
    };
    if let (Some(mcc), Some(mnc)) = (integer(o, "plmn_mcc")?, integer(o, "plmn_mnc")?) {
        let mnc = if mnc < 100 {
            format!("{mnc:02}")
        } else {
            mnc.to_string()
        };
        r.plmn = plmn(&mcc.to_string(), &mnc);
    }
    let description = o.get("plmn_description").and_then(Value::as_str);
    r.operator = operator(r.plmn.as_deref(), description);
    Ok(())
}
