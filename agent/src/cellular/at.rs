//! 3GPP TS 27.007 answers. [`parse`] takes a whole transcript (echoed commands, `OK`, blank
//! lines, CRLF or LF) and merges what it finds in:
//! - `+CESQ: rxlev,ber,rscp,ecno,rsrq,rsrp[,ss_rsrq,ss_rsrp,ss_sinr]` (§8.69): indices converted
//!   to dB(m); 99 (rxlev, ber) and 255 mean "not known";
//! - `+COPS: mode[,format,"oper"[,AcT]]` (§7.3): numeric (format 2) or alphanumeric operator;
//!   AcT 0/1/3/8 → gsm, 2/4/5/6 → wcdma, 7/9/10 → lte, 11/12 → nr5g_sa, 13 → nr5g_nsa;
//! - `+CEREG`/`+C5GREG`/`+CGREG`/`+CREG` (§10.1.22, §10.1.65, §10.1.20, §7.2), both the read
//!   answer `n,stat[,tac,ci[,AcT]]` and the unsolicited `stat[,tac,ci[,AcT]]`: stat 1 home,
//!   5 roaming, 2 searching, 3 denied, 0 not registered, 4 unknown (6/9 home, 7/10 roaming for
//!   the SMS-only and CSFB variants); the cell id is kept as printed (hex).
//!
//! Other lines are ignored. The technology comes from `+COPS`, else from a registration AcT.

use super::{
    ParseError, Registration, Signal, Technology, answer, field_error, fields, is_quoted, merge,
    nothing, operator, plmn_from_code, unquote,
};

/// Parses an AT transcript. Fails if it holds none of the answers above, or one of them has a
/// field that is not what 27.007 allows.
pub fn parse(text: &str) -> Result<Signal, ParseError> {
    let mut reading = Signal::default();
    let mut found = false;
    let mut cops_technology = None;
    let mut reg_technology = None;
    for (index, line) in text.lines().enumerate() {
        let Some((name, rest)) = answer(line) else {
            continue;
        };
        let at = || format!("line {}", index + 1);
        match name.as_str() {
            "+CESQ" => {
                cesq(&fields(rest), &mut reading, &at)?;
                found = true;
            }
            // The test answer `+COPS: (2,"Viettel",...),...` lists networks: not ours.
            "+COPS" if !rest.starts_with('(') => {
                if let Some(t) = cops(&fields(rest), &mut reading, &at)? {
                    cops_technology = Some(t);
                }
                found = true;
            }
            "+CEREG" | "+C5GREG" | "+CGREG" | "+CREG" => {
                let (registration, technology, cell) = creg(&fields(rest), &at)?;
                reading.registration = merge(reading.registration, registration);
                if matches!(registration, Registration::Home | Registration::Roaming) {
                    if technology.is_some() {
                        reg_technology = technology;
                    }
                    if cell.is_some() {
                        reading.cell_id = cell;
                    }
                }
                found = true;
            }
            _ => {}
        }
    }
    if !found {
        return Err(nothing("+CESQ, +COPS or +CEREG/+C5GREG answers", text));
    }
    reading.technology = cops_technology
        .or(reg_technology)
        .unwrap_or(Technology::None);
    Ok(reading)
}

fn number(
    field: Option<&&str>,
    name: &'static str,
    at: &dyn Fn() -> String,
) -> Result<Option<u32>, ParseError> {
    match field.map(|f| unquote(f)) {
        None | Some("") => Ok(None),
        Some(f) => f
            .parse()
            .map(Some)
            .map_err(|_| field_error(at(), name, "a decimal number", f)),
    }
}

/// An index converted by `base + step * index` when `index <= max`; `None` for `unknown`.
fn scale(
    index: Option<u32>,
    (name, max, unknown): (&'static str, u32, u32),
    (base, step): (f64, f64),
    at: &dyn Fn() -> String,
) -> Result<Option<f64>, ParseError> {
    match index {
        None => Ok(None),
        Some(i) if i == unknown => Ok(None),
        Some(i) if i <= max => Ok(Some(base + step * f64::from(i))),
        Some(i) => Err(field_error(
            at(),
            name,
            "an index in the 27.007 range or the not-known value",
            &i.to_string(),
        )),
    }
}

fn cesq(f: &[&str], reading: &mut Signal, at: &dyn Fn() -> String) -> Result<(), ParseError> {
    if f.len() < 6 {
        return Err(field_error(
            at(),
            "+CESQ",
            "6 or 9 fields rxlev,ber,rscp,ecno,rsrq,rsrp[,ss_rsrq,ss_rsrp,ss_sinr]",
            &f.join(","),
        ));
    }
    let n = |i: usize, name| number(f.get(i), name, at);
    // rxlev 0..63: 0 is < -110 dBm, 63 is >= -48 dBm.
    reading.rssi_dbm = scale(n(0, "rxlev")?, ("rxlev", 63, 99), (-111.0, 1.0), at)?;
    reading.rsrq_db = scale(n(4, "rsrq")?, ("rsrq", 34, 255), (-19.5, 0.5), at)?;
    reading.rsrp_dbm = scale(n(5, "rsrp")?, ("rsrp", 97, 255), (-140.0, 1.0), at)?;
    reading.nr_rsrq_db = scale(n(6, "ss_rsrq")?, ("ss_rsrq", 127, 255), (-43.0, 0.5), at)?;
    reading.nr_rsrp_dbm = scale(n(7, "ss_rsrp")?, ("ss_rsrp", 126, 255), (-156.0, 1.0), at)?;
    reading.nr_sinr_db = scale(n(8, "ss_sinr")?, ("ss_sinr", 127, 255), (-23.0, 0.5), at)?;
    Ok(())
}

fn act(value: u32) -> Option<Technology> {
    match value {
        0 | 1 | 3 | 8 => Some(Technology::Gsm),
        2 | 4..=6 => Some(Technology::Wcdma),
        7 | 9 | 10 => Some(Technology::Lte),
        11 | 12 => Some(Technology::Nr5gSa),
        13 => Some(Technology::Nr5gNsa),
        _ => None,
    }
}

/// `+COPS`: operator and technology; `Some(none)` when only the mode is given (no network).
fn cops(
    f: &[&str],
    reading: &mut Signal,
    at: &dyn Fn() -> String,
) -> Result<Option<Technology>, ParseError> {
    number(f.first(), "mode", at)?;
    let Some(oper) = f.get(2).map(|o| unquote(o)) else {
        return Ok(Some(Technology::None));
    };
    let format = number(f.get(1), "format", at)?;
    let code = (format == Some(2)).then(|| plmn_from_code(oper));
    match code {
        Some(None) => {
            return Err(field_error(
                at(),
                "oper",
                "a numeric PLMN like \"45204\"",
                oper,
            ));
        }
        Some(Some(plmn)) => {
            reading.operator = operator(Some(&plmn), None);
            reading.plmn = Some(plmn);
        }
        None => {
            // Alphanumeric: the name as the network gives it, or a PLMN if it is all digits.
            let plmn = plmn_from_code(oper);
            reading.operator = operator(plmn.as_deref(), Some(oper));
            if plmn.is_some() {
                reading.plmn = plmn;
            }
        }
    }
    Ok(number(f.get(3), "AcT", at)?.and_then(act))
}

type Registered = (Registration, Option<Technology>, Option<String>);

fn creg(f: &[&str], at: &dyn Fn() -> String) -> Result<Registered, ParseError> {
    // Read answer: n,stat[,...]; unsolicited: stat[,"tac",...] (second field quoted) or stat.
    let unsolicited = f.len() == 1 || f.get(1).is_some_and(|s| is_quoted(s));
    let first = usize::from(!unsolicited);
    let stat = number(f.get(first), "stat", at)?
        .ok_or_else(|| field_error(at(), "stat", "a registration status 0..10", &f.join(",")))?;
    let registration = match stat {
        1 | 6 | 9 => Registration::Home,
        5 | 7 | 10 => Registration::Roaming,
        2 => Registration::Searching,
        3 => Registration::Denied,
        0 | 8 => Registration::NotRegistered,
        _ => Registration::Unknown,
    };
    let cell = f
        .get(first + 2)
        .map(|c| unquote(c))
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let technology = number(f.get(first + 3), "AcT", at)?.and_then(act);
    Ok((registration, technology, cell))
}
