//! Quectel answers (field orders as in Quectel's AT command manuals for EC2x/EG25 and RM50xQ;
//! extra trailing fields are ignored, missing trailing fields are `None`, `"-"` is `None`):
//!
//! ```text
//! +QENG: "servingcell",<state>,"NR5G-SA",<duplex>,<MCC>,<MNC>,<cellID>,<PCID>,<TAC>,<ARFCN>,<band>,<NR_DL_bw>,<RSRP>,<RSRQ>,<SINR>,...
//! +QENG: "servingcell",<state>,"LTE",<is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,<band>,<UL_bw>,<DL_bw>,<TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>,...
//! +QENG: "servingcell",<state>,"WCDMA",<MCC>,<MNC>,<LAC>,<cellID>,<uarfcn>,<PSC>,<RAC>,<RSCP>,<ecio>,...
//! +QENG: "servingcell",<state>,"GSM",<MCC>,<MNC>,<LAC>,<cellID>,<BSIC>,<arfcn>,<band>,<rxlev>,...
//! EN-DC (three lines):
//! +QENG: "servingcell",<state>
//! +QENG: "LTE",<is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,<band>,<UL_bw>,<DL_bw>,<TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>,...
//! +QENG: "NR5G-NSA",<MCC>,<MNC>,<PCID>,<RSRP>,<SINR>,<RSRQ>,<ARFCN>,<band>,...
//! +QNWINFO: "<act>","<oper>","<band>",<channel>
//! +QCSQ: "LTE",<rssi>,<rsrp>,<sinr>,<rsrq>   +QCSQ: "NR5G",<rsrp>,<sinr>,<rsrq>
//! +QCSQ: "WCDMA",<rssi>,<rscp>,<ecio>        +QCSQ: "GSM",<rssi>
//! ```
//!
//! LTE SINR (in `+QENG` and `+QCSQ`) is reported in fifths of a dB offset by 20: raw 0..=250
//! means `raw / 5 − 20` dB (−20..+30 dB); a raw value outside that range is an error. NR SINR is
//! reported in dB. `<state>` `SEARCH` → searching, `LIMSRV` → denied, `NOCONN`/`CONNECT` → home
//! (`+QENG` does not tell roaming apart; use the AT format's `+CEREG` for that).
//!
//! `+QENG` is read first; `+QNWINFO` and `+QCSQ` only fill what it left empty.

use super::{
    ParseError, Registration, Signal, Technology, answer, field_error, fields, lte_band, nothing,
    nr_band, operator, plmn, plmn_from_code, unquote,
};

/// Parses a Quectel transcript. Fails if it holds none of the answers above or one has a field
/// of the wrong kind.
pub fn parse(text: &str) -> Result<Signal, ParseError> {
    let mut r = Signal::default();
    let mut technology = None;
    let mut found = false;
    let lines: Vec<(usize, String, Vec<&str>)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| answer(line).map(|(name, rest)| (i + 1, name, fields(rest))))
        .collect();
    for (n, _, f) in lines.iter().filter(|(_, name, _)| name == "+QENG") {
        let at = || format!("line {n}");
        let (kind, rest) = match f.first().map(|k| unquote(k).to_ascii_uppercase()) {
            Some(k) if k == "SERVINGCELL" => {
                r.registration = state(f.get(1).map(|s| unquote(s)).unwrap_or(""));
                found = true;
                match f.get(2) {
                    Some(k) => (unquote(k).to_ascii_uppercase(), &f[3..]),
                    None => continue,
                }
            }
            Some(k) => (k, &f[1..]),
            None => continue,
        };
        let t = match kind.as_str() {
            "NR5G-SA" => nr_sa(rest, &mut r, &at)?,
            "LTE" => lte(rest, &mut r, &at)?,
            "NR5G-NSA" => nr_nsa(rest, &mut r, &at)?,
            "WCDMA" => wcdma(rest, &mut r, &at)?,
            "GSM" => gsm(rest, &mut r, &at)?,
            _ => continue,
        };
        found = true;
        technology = match (technology, t) {
            (Some(Technology::Lte), Technology::Nr5gNsa) | (Some(Technology::Nr5gNsa), _) => {
                Some(Technology::Nr5gNsa)
            }
            _ => Some(t),
        };
    }
    for (n, name, f) in &lines {
        let at = || format!("line {n}");
        match name.as_str() {
            "+QNWINFO" => {
                let t = qnwinfo(f, &mut r, &at)?;
                technology = technology.or(t);
                found = true;
            }
            "+QCSQ" => {
                let t = qcsq(f, &mut r, &at)?;
                technology = technology.or(t);
                found = true;
            }
            _ => {}
        }
    }
    if !found {
        return Err(nothing(
            "+QENG: \"servingcell\", +QNWINFO or +QCSQ answers",
            text,
        ));
    }
    r.technology = technology.unwrap_or(Technology::None);
    Ok(r)
}

fn state(s: &str) -> Registration {
    match s.to_ascii_uppercase().as_str() {
        "SEARCH" => Registration::Searching,
        "LIMSRV" => Registration::Denied,
        "NOCONN" | "CONNECT" => Registration::Home,
        _ => Registration::Unknown,
    }
}

/// Field `i` as text, `None` when absent, empty or `-`.
fn text<'a>(f: &[&'a str], i: usize) -> Option<&'a str> {
    f.get(i)
        .map(|s| unquote(s))
        .filter(|s| !s.is_empty() && *s != "-")
}

fn num<T: std::str::FromStr>(
    f: &[&str],
    i: usize,
    name: &'static str,
    at: &dyn Fn() -> String,
) -> Result<Option<T>, ParseError> {
    match text(f, i) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| field_error(at(), name, "a number or \"-\"", s)),
    }
}

fn float(
    f: &[&str],
    i: usize,
    name: &'static str,
    at: &dyn Fn() -> String,
) -> Result<Option<f64>, ParseError> {
    num::<f64>(f, i, name, at).map(|v| v.filter(|v| v.is_finite()))
}

/// LTE SINR: raw 0..=250 in fifths of a dB above −20 dB.
fn lte_sinr(f: &[&str], i: usize, at: &dyn Fn() -> String) -> Result<Option<f64>, ParseError> {
    match num::<i64>(f, i, "SINR", at)? {
        None => Ok(None),
        Some(raw @ 0..=250) => Ok(Some(raw as f64 / 5.0 - 20.0)),
        Some(raw) => Err(field_error(
            at(),
            "SINR",
            "a raw LTE SINR 0..=250",
            &raw.to_string(),
        )),
    }
}

fn set_plmn(f: &[&str], mcc: usize, r: &mut Signal) {
    if let (Some(mcc), Some(mnc)) = (text(f, mcc), text(f, mcc + 1)) {
        r.plmn = plmn(mcc, mnc);
        r.operator = operator(r.plmn.as_deref(), None);
    }
}

fn nr_sa(f: &[&str], r: &mut Signal, at: &dyn Fn() -> String) -> Result<Technology, ParseError> {
    // <duplex>,<MCC>,<MNC>,<cellID>,<PCID>,<TAC>,<ARFCN>,<band>,<bw>,<RSRP>,<RSRQ>,<SINR>
    set_plmn(f, 1, r);
    r.cell_id = text(f, 3).map(str::to_owned);
    r.arfcn = num(f, 6, "ARFCN", at)?;
    r.band = num::<u32>(f, 7, "band", at)?.map(nr_band);
    r.nr_rsrp_dbm = float(f, 9, "RSRP", at)?;
    r.nr_rsrq_db = float(f, 10, "RSRQ", at)?;
    r.nr_sinr_db = float(f, 11, "SINR", at)?;
    Ok(Technology::Nr5gSa)
}

fn lte(f: &[&str], r: &mut Signal, at: &dyn Fn() -> String) -> Result<Technology, ParseError> {
    // <is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,<band>,<UL_bw>,<DL_bw>,<TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>
    set_plmn(f, 1, r);
    r.cell_id = text(f, 3).map(str::to_owned);
    r.arfcn = num(f, 5, "earfcn", at)?;
    r.band = num::<u32>(f, 6, "band", at)?.map(lte_band);
    r.rsrp_dbm = float(f, 10, "RSRP", at)?;
    r.rsrq_db = float(f, 11, "RSRQ", at)?;
    r.rssi_dbm = float(f, 12, "RSSI", at)?;
    r.sinr_db = lte_sinr(f, 13, at)?;
    Ok(Technology::Lte)
}

fn nr_nsa(f: &[&str], r: &mut Signal, at: &dyn Fn() -> String) -> Result<Technology, ParseError> {
    // <MCC>,<MNC>,<PCID>,<RSRP>,<SINR>,<RSRQ>,<ARFCN>,<band>
    if r.plmn.is_none() {
        set_plmn(f, 0, r);
    }
    r.nr_rsrp_dbm = float(f, 3, "RSRP", at)?;
    r.nr_sinr_db = float(f, 4, "SINR", at)?;
    r.nr_rsrq_db = float(f, 5, "RSRQ", at)?;
    if let Some(nr) = num::<u32>(f, 7, "band", at)?.map(nr_band) {
        r.band = Some(match r.band.take() {
            Some(anchor) => format!("{anchor}+{nr}"),
            None => nr,
        });
    }
    Ok(Technology::Nr5gNsa)
}

fn wcdma(f: &[&str], r: &mut Signal, at: &dyn Fn() -> String) -> Result<Technology, ParseError> {
    // <MCC>,<MNC>,<LAC>,<cellID>,<uarfcn>,<PSC>,<RAC>,<RSCP>,<ecio>
    set_plmn(f, 0, r);
    r.cell_id = text(f, 3).map(str::to_owned);
    r.arfcn = num(f, 4, "uarfcn", at)?;
    Ok(Technology::Wcdma)
}

fn gsm(f: &[&str], r: &mut Signal, at: &dyn Fn() -> String) -> Result<Technology, ParseError> {
    // <MCC>,<MNC>,<LAC>,<cellID>,<BSIC>,<arfcn>,<band>,<rxlev>
    set_plmn(f, 0, r);
    r.cell_id = text(f, 3).map(str::to_owned);
    r.arfcn = num(f, 5, "arfcn", at)?;
    r.rssi_dbm = float(f, 7, "rxlev", at)?;
    Ok(Technology::Gsm)
}

fn act(s: &str) -> Option<Technology> {
    let s = s.to_ascii_uppercase();
    if s.contains("NO SERVICE") || s == "NOSERVICE" {
        Some(Technology::None)
    } else if s.contains("NR5G-NSA") || s.contains("EN-DC") {
        Some(Technology::Nr5gNsa)
    } else if s.contains("NR") {
        Some(Technology::Nr5gSa)
    } else if s.contains("LTE") || s.contains("CAT-M") || s.contains("NBIOT") {
        Some(Technology::Lte)
    } else if ["WCDMA", "HSPA", "HSDPA", "HSUPA", "UMTS", "TD-SCDMA"]
        .iter()
        .any(|k| s.contains(k))
    {
        Some(Technology::Wcdma)
    } else if ["GSM", "GPRS", "EDGE"].iter().any(|k| s.contains(k)) {
        Some(Technology::Gsm)
    } else {
        None
    }
}

/// `+QNWINFO: "FDD LTE","45204","LTE BAND 3",1650`.
fn qnwinfo(
    f: &[&str],
    r: &mut Signal,
    at: &dyn Fn() -> String,
) -> Result<Option<Technology>, ParseError> {
    let technology = text(f, 0).and_then(act);
    if r.plmn.is_none()
        && let Some(code) = text(f, 1)
    {
        r.plmn = plmn_from_code(code);
        r.operator = operator(r.plmn.as_deref(), Some(code).filter(|_| r.plmn.is_none()));
    }
    if r.band.is_none() {
        r.band = text(f, 2).map(band_name);
    }
    if r.arfcn.is_none() {
        r.arfcn = num(f, 3, "channel", at)?;
    }
    Ok(technology)
}

/// `"LTE BAND 3"` → `"B3"`, `"NR5G BAND 78"` → `"n78"`, anything else as reported.
fn band_name(s: &str) -> String {
    let upper = s.to_ascii_uppercase();
    let number = upper
        .rsplit_once("BAND")
        .and_then(|(_, n)| n.trim().parse::<u32>().ok());
    match number {
        Some(n) if upper.starts_with("NR") => nr_band(n),
        Some(n) if upper.starts_with("LTE") => lte_band(n),
        _ => s.to_owned(),
    }
}

/// `+QCSQ: "LTE",<rssi>,<rsrp>,<sinr>,<rsrq>` and the other systems' forms.
fn qcsq(
    f: &[&str],
    r: &mut Signal,
    at: &dyn Fn() -> String,
) -> Result<Option<Technology>, ParseError> {
    let sysmode = text(f, 0).unwrap_or("").to_ascii_uppercase();
    let fill = |slot: &mut Option<f64>, value: Option<f64>| {
        if slot.is_none() {
            *slot = value;
        }
    };
    match sysmode.as_str() {
        "LTE" | "CAT-M" | "CAT-NB" => {
            fill(&mut r.rssi_dbm, float(f, 1, "rssi", at)?);
            fill(&mut r.rsrp_dbm, float(f, 2, "rsrp", at)?);
            fill(&mut r.sinr_db, lte_sinr(f, 3, at)?);
            fill(&mut r.rsrq_db, float(f, 4, "rsrq", at)?);
            Ok(Some(Technology::Lte))
        }
        "NR5G" => {
            fill(&mut r.nr_rsrp_dbm, float(f, 1, "rsrp", at)?);
            fill(&mut r.nr_sinr_db, float(f, 2, "sinr", at)?);
            fill(&mut r.nr_rsrq_db, float(f, 3, "rsrq", at)?);
            Ok(Some(Technology::Nr5gSa))
        }
        "WCDMA" | "TDSCDMA" => {
            fill(&mut r.rssi_dbm, float(f, 1, "rssi", at)?);
            Ok(Some(Technology::Wcdma))
        }
        "GSM" => {
            fill(&mut r.rssi_dbm, float(f, 1, "rssi", at)?);
            Ok(Some(Technology::Gsm))
        }
        "NOSERVICE" => Ok(Some(Technology::None)),
        _ => Err(field_error(
            at(),
            "sysmode",
            "\"LTE\", \"NR5G\", \"WCDMA\", \"GSM\" or \"NOSERVICE\"",
            &sysmode,
        )),
    }
}
