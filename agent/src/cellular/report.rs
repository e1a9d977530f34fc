//! `netmon-agent cellular --config FILE`: what each configured modem says right now, all modems
//! read at once, each within its reading's bound. Needs no broker and touches no journal. A table
//! in Vietnamese (default) or English, or one JSON object per modem per line: the
//! `cellular_signal_sampled` body (`{"modem":…,<Signal fields>,"quality":…}`) or
//! `{"modem":…,"source":…,"error":"…"}` for a modem that could not be read.

use std::fmt::Write as _;

use netmon_events::{Quality, Registration, Signal, Technology};
use serde::Serialize;

use crate::cellular::poller::read_bounded;
use crate::cellular::reader::Reader;
use crate::cellular::settings::CellularModem;
use crate::output::Lang;

/// What one modem said.
#[derive(Debug, Clone)]
pub struct ModemReport {
    pub name: String,
    pub source: &'static str,
    /// The reading and its class, or why there is none.
    pub result: Result<(Signal, Quality), String>,
}

/// Reads every modem once, concurrently; the reports in configuration order.
pub async fn read_now(modems: &[CellularModem]) -> Vec<ModemReport> {
    let mut reads = tokio::task::JoinSet::new();
    for (order, modem) in modems.iter().enumerate() {
        let mut reader = Reader::new(modem.clone());
        reads.spawn(async move {
            let result = read_bounded(&mut reader).await.map(|signal| {
                let quality = reader.modem.thresholds.classify(&signal);
                (signal, quality)
            });
            let report = ModemReport {
                name: reader.modem.name.clone(),
                source: reader.modem.source.kind(),
                result,
            };
            (order, report)
        });
    }
    let mut reports = Vec::with_capacity(modems.len());
    while let Some(done) = reads.join_next().await {
        if let Ok(report) = done {
            reports.push(report);
        }
    }
    reports.sort_by_key(|(order, _)| *order);
    reports.into_iter().map(|(_, r)| r).collect()
}

#[derive(Serialize)]
struct Line<'a> {
    modem: &'a str,
    #[serde(flatten)]
    signal: &'a Signal,
    quality: Quality,
}

#[derive(Serialize)]
struct Failure<'a> {
    modem: &'a str,
    source: &'a str,
    error: &'a str,
}

/// `--json`: one line per modem.
pub fn json(reports: &[ModemReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let line = match &r.result {
            Ok((signal, quality)) => serde_json::to_string(&Line {
                modem: &r.name,
                signal,
                quality: *quality,
            }),
            Err(error) => serde_json::to_string(&Failure {
                modem: &r.name,
                source: r.source,
                error,
            }),
        };
        out.push_str(&line.unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The table for people.
pub fn text(reports: &[ModemReport], lang: Lang) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str(lang.pick(
            "Không có modem nào trong cấu hình ([[cellular]]).\n",
            "No modems configured ([[cellular]]).\n",
        ));
        return out;
    }
    let head = lang.pick(
        [
            "modem",
            "công nghệ",
            "nhà mạng",
            "đăng ký",
            "RSRP",
            "RSRQ",
            "SINR",
            "NR RSRP",
            "NR SINR",
            "băng tần",
            "chất lượng",
        ],
        [
            "modem",
            "technology",
            "operator",
            "registration",
            "RSRP",
            "RSRQ",
            "SINR",
            "NR RSRP",
            "NR SINR",
            "band",
            "quality",
        ],
    );
    let _ = writeln!(
        out,
        "{:<12} {:<10} {:<22} {:<15} {:>6} {:>6} {:>6} {:>7} {:>7} {:<9} {}",
        head[0],
        head[1],
        head[2],
        head[3],
        head[4],
        head[5],
        head[6],
        head[7],
        head[8],
        head[9],
        head[10]
    );
    for r in reports {
        let (s, quality) = match &r.result {
            Ok(ok) => ok,
            Err(error) => {
                let _ = writeln!(out, "{:<12} {}: {error}", r.name, lang.pick("LỖI", "ERROR"));
                continue;
            }
        };
        let operator = match (&s.operator, &s.plmn) {
            (Some(o), Some(p)) => format!("{o} ({p})"),
            (Some(o), None) => o.clone(),
            (None, Some(p)) => p.clone(),
            (None, None) => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:<22} {:<15} {:>6} {:>6} {:>6} {:>7} {:>7} {:<9} {}",
            r.name,
            technology(s.technology, lang),
            operator,
            registration(s.registration, lang),
            value(s.rsrp_dbm),
            value(s.rsrq_db),
            value(s.sinr_db),
            value(s.nr_rsrp_dbm),
            value(s.nr_sinr_db),
            s.band.as_deref().unwrap_or("-"),
            quality_name(*quality, lang),
        );
    }
    out.push_str(lang.pick(
        "RSRP theo dBm; RSRQ, SINR theo dB.\n",
        "RSRP in dBm; RSRQ, SINR in dB.\n",
    ));
    out
}

fn value(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v}"))
}

fn technology(t: Technology, lang: Lang) -> &'static str {
    match t {
        Technology::Nr5gSa => "5G SA",
        Technology::Nr5gNsa => "5G NSA",
        Technology::Lte => "4G LTE",
        Technology::Wcdma => "3G WCDMA",
        Technology::Gsm => "2G GSM",
        Technology::None => lang.pick("không có", "none"),
    }
}

fn registration(r: Registration, lang: Lang) -> &'static str {
    let vi = match r {
        Registration::Home => "mạng nhà",
        Registration::Roaming => "chuyển vùng",
        Registration::Searching => "đang tìm mạng",
        Registration::Denied => "bị từ chối",
        Registration::NotRegistered => "chưa đăng ký",
        Registration::Unknown => "không rõ",
    };
    lang.pick(vi, r.as_str())
}

/// The class's name for people.
pub fn quality_name(q: Quality, lang: Lang) -> &'static str {
    let vi = match q {
        Quality::Excellent => "rất tốt",
        Quality::Good => "tốt",
        Quality::Fair => "trung bình",
        Quality::Poor => "kém",
        Quality::NoService => "không có sóng",
    };
    let en = match q {
        Quality::NoService => "no service",
        q => q.as_str(),
    };
    lang.pick(vi, en)
}
