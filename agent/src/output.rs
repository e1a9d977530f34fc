//! What the CLI prints. Two JSON formats are public contracts (scripts read them):
//! - `probe --json`: one JSON object per target per line, with exactly the body fields of the
//!   `probe_round_completed` event ([`ProbeLine`]);
//! - `journal --json`: one JSON object ([`JournalReport`]) describing the journal.
//!
//! - `cellular parse`: one pretty-printed [`SignalBody`]: the `cellular_signal_sampled` body.
//!
//! The tables and the `check` summary are for people and may change.

use std::fmt::Write as _;

use netmon_events::{BootAck, BootId, DownReason, Target};
use serde::Serialize;

use crate::config::Config;
use crate::journal::Inspection;
use crate::probes::RoundStats;

/// One line of `netmon-agent probe --json`: the fields of a `probe_round_completed` event
/// without the envelope and without `type`. `rtt_*_ms` are absent when `received` is 0.
#[derive(Debug, Serialize)]
pub struct ProbeLine<'a> {
    pub target: &'a Target,
    pub sent: u32,
    pub received: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_mdev_ms: Option<f64>,
    pub loss_pct: f64,
}

impl<'a> ProbeLine<'a> {
    pub fn new(target: &'a Target, stats: &RoundStats) -> ProbeLine<'a> {
        ProbeLine {
            target,
            sent: stats.sent,
            received: stats.received,
            rtt_min_ms: stats.rtt.map(|r| r.min_ms),
            rtt_avg_ms: stats.rtt.map(|r| r.avg_ms),
            rtt_max_ms: stats.rtt.map(|r| r.max_ms),
            rtt_mdev_ms: stats.rtt.map(|r| r.mdev_ms),
            loss_pct: stats.loss_pct,
        }
    }
}

/// `netmon-agent journal --json`: the state of the journal, read without locking it (the agent
/// may be running; the watermark shown is the last one it persisted, at most
/// `journal.fsync_interval` old).
#[derive(Debug, Serialize)]
pub struct JournalReport<'a> {
    /// The journal directory.
    pub dir: String,
    /// Events not acknowledged by the collector yet, and their size on disk.
    pub backlog_events: u64,
    pub backlog_bytes: u64,
    /// The oldest and newest event of the backlog (`null` when it is empty).
    pub oldest: Option<Position<'a>>,
    pub newest: Option<Position<'a>>,
    /// The last acknowledgement watermark received, per boot (the `ack` payload's `acks`).
    pub acked: &'a [BootAck],
    /// Why `acked.json` could not be read (absent when it could): the backlog then counts every
    /// event, as the agent does at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_unreadable: Option<&'a str>,
    /// Events dropped unsent because the journal was full, since it was created.
    pub overflowed_events: u64,
    /// Segment files, their total size, and the records in them (acknowledged or not).
    pub segments: usize,
    pub disk_bytes: u64,
    pub records: usize,
    /// Bytes that are not intact records (cut off at the next start).
    pub damaged_bytes: u64,
}

/// One event's identity within the agent: (boot, seq).
#[derive(Debug, Serialize)]
pub struct Position<'a> {
    pub boot: &'a BootId,
    pub seq: u64,
}

impl<'a> JournalReport<'a> {
    pub fn new(inspection: &'a Inspection) -> JournalReport<'a> {
        let position = |p: &'a Option<(BootId, u64)>| {
            p.as_ref().map(|(boot, seq)| Position { boot, seq: *seq })
        };
        JournalReport {
            dir: inspection.dir.display().to_string(),
            backlog_events: inspection.backlog.events,
            backlog_bytes: inspection.backlog.bytes,
            oldest: position(&inspection.backlog.oldest),
            newest: position(&inspection.backlog.newest),
            acked: &inspection.acked.acks,
            acked_unreadable: inspection.acked_problem.as_deref(),
            overflowed_events: inspection.overflowed,
            segments: inspection.segments,
            disk_bytes: inspection.disk_bytes,
            records: inspection.records,
            damaged_bytes: inspection.damaged_bytes,
        }
    }
}

/// The body of a `cellular_signal_sampled` event without `modem`: the [`Signal`] fields (absent
/// when unknown) and `quality`.
///
/// [`Signal`]: netmon_events::Signal
#[derive(Debug, Serialize)]
pub struct SignalBody<'a> {
    #[serde(flatten)]
    pub signal: &'a netmon_events::Signal,
    pub quality: netmon_events::Quality,
}

/// `cellular parse`: the reading and its quality class (default thresholds) as pretty JSON,
/// ending with a newline.
pub fn cellular_json(signal: &netmon_events::Signal) -> String {
    let body = SignalBody {
        signal,
        quality: crate::cellular::quality::Thresholds::default().classify(signal),
    };
    let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
    text.push('\n');
    text
}

/// `journal --json`: one line.
pub fn journal_json(inspection: &Inspection) -> String {
    let mut line = serde_json::to_string(&JournalReport::new(inspection)).unwrap_or_default();
    line.push('\n');
    line
}

/// `journal`: the same facts for people.
pub fn journal_text(inspection: &Inspection, lang: Lang) -> String {
    let r = JournalReport::new(inspection);
    let labels: [&str; 7] = lang.pick(
        [
            "nhật ký",
            "chưa xác nhận",
            "cũ nhất",
            "mới nhất",
            "đã xác nhận",
            "bị bỏ do đầy",
            "trên đĩa",
        ],
        [
            "journal",
            "backlog",
            "oldest",
            "newest",
            "acknowledged",
            "overflowed",
            "on disk",
        ],
    );
    let (events, bytes, none, records, damaged, unreadable) = lang.pick(
        (
            "sự kiện",
            "byte",
            "không có",
            "bản ghi",
            "byte hỏng",
            "không đọc được, coi như chưa xác nhận gì",
        ),
        (
            "events",
            "bytes",
            "none",
            "records",
            "damaged bytes",
            "unreadable, taken as nothing acknowledged",
        ),
    );
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        let pad = width.saturating_sub(label.chars().count() + 1);
        let _ = writeln!(out, "{label}:{}{value}", " ".repeat(pad));
    };
    let position = |p: &Option<Position<'_>>| match p {
        Some(p) => format!("boot {} seq {}", p.boot, p.seq),
        None => none.to_owned(),
    };
    row(labels[0], r.dir.clone());
    row(
        labels[1],
        format!("{} {events}, {} {bytes}", r.backlog_events, r.backlog_bytes),
    );
    row(labels[2], position(&r.oldest));
    row(labels[3], position(&r.newest));
    let acked = if let Some(problem) = r.acked_unreadable {
        let problem: String = problem.chars().filter(|c| !c.is_control()).collect();
        format!("{unreadable} ({problem})")
    } else if r.acked.is_empty() {
        none.to_owned()
    } else {
        r.acked
            .iter()
            .map(|a| format!("boot {} seq {}", a.boot, a.seq))
            .collect::<Vec<_>>()
            .join("; ")
    };
    row(labels[4], acked);
    row(labels[5], format!("{} {events}", r.overflowed_events));
    let mut disk = format!(
        "{} segment, {} {bytes}, {} {records}",
        r.segments, r.disk_bytes, r.records
    );
    if r.damaged_bytes > 0 {
        let _ = write!(disk, ", {} {damaged}", r.damaged_bytes);
    }
    row(labels[6], disk);
    out
}

/// Language of the tables: every text for people is written `lang.pick(vietnamese, english)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    /// The Vietnamese or the English one of a text (or of any pair of like values).
    pub fn pick<T>(self, vi: T, en: T) -> T {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

/// `probe --json`: one line per target.
pub fn probe_json(targets: &[Target], results: &[RoundStats]) -> String {
    let mut out = String::with_capacity(targets.len() * 160);
    for (target, stats) in targets.iter().zip(results) {
        // Serialising these plain structs cannot fail.
        out.push_str(&serde_json::to_string(&ProbeLine::new(target, stats)).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// `probe`: a table with a header, one row per target and a summary line.
pub fn probe_table(targets: &[Target], results: &[RoundStats], lang: Lang) -> String {
    let header: [&str; 7] = lang.pick(
        [
            "Mục tiêu",
            "Địa chỉ",
            "Gửi",
            "Nhận",
            "Mất (%)",
            "RTT tb (ms)",
            "Ghi chú",
        ],
        [
            "Target",
            "Address",
            "Sent",
            "Recv",
            "Loss (%)",
            "RTT avg (ms)",
            "Note",
        ],
    );
    let rows: Vec<[String; 7]> = targets
        .iter()
        .zip(results)
        .map(|(t, s)| {
            [
                t.name.clone(),
                t.address.to_string(),
                s.sent.to_string(),
                s.received.to_string(),
                format!("{:.1}", s.loss_pct),
                s.rtt.map_or("-".into(), |r| format!("{:.3}", r.avg_ms)),
                s.failure
                    .map_or(String::new(), |f| reason(f, lang).to_owned()),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            // Names and addresses left-aligned, numbers right-aligned; no trailing blanks.
            match i {
                0 | 1 => {
                    out.push_str(cell);
                    out.extend(std::iter::repeat_n(' ', pad));
                }
                6 => out.push_str(cell),
                _ => {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(cell);
                }
            }
            if i < 6 {
                out.push_str("  ");
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    let answered = results.iter().filter(|s| s.received > 0).count();
    let _ = writeln!(
        out,
        "{answered}/{} {}, {} {}",
        results.len(),
        lang.pick("mục tiêu trả lời", "targets answered"),
        results.len() - answered,
        lang.pick("không trả lời", "did not")
    );
    out
}

fn reason(reason: DownReason, lang: Lang) -> &'static str {
    match reason {
        DownReason::NoReply => lang.pick("không trả lời", "no reply"),
        DownReason::Unreachable => lang.pick("không tới được", "unreachable"),
        DownReason::SendFailed => lang.pick("lỗi gửi", "send failed"),
    }
}

/// `check`: what the configuration means, in plain English.
pub fn check_summary(config: &Config) -> String {
    let d = |d| humantime::format_duration(d).to_string();
    let p = &config.probe;
    let b = &config.mqtt.broker;
    let mut out = String::new();
    let _ = writeln!(out, "config:    {} (valid)", config.source.display());
    let _ = writeln!(out, "agent:     {}", config.agent_id);
    let _ = writeln!(out, "province:  {}", config.province);
    let _ = writeln!(
        out,
        "broker:    {b}{}, keep-alive {}{}, client id {}",
        match &config.mqtt.credentials {
            Some((user, _)) => format!(" as {user}"),
            None => String::new(),
        },
        d(config.mqtt.keep_alive),
        match config.mqtt.alive_every {
            Some(every) => format!(", liveness every {}", d(every)),
            None => String::new(),
        },
        config.agent_id
    );
    if b.tls {
        let roots = match &config.mqtt.ca_file {
            Some(path) => path.display().to_string(),
            None => "the system trust store".into(),
        };
        let _ = writeln!(out, "tls:       trusting {roots}");
    }
    let _ = writeln!(
        out,
        "probe:     every {}, {} echo(es) per target spread over the first quarter of the \
         interval, reply timeout {} (a round ends by 90% of the interval)",
        d(p.interval),
        p.count,
        d(p.timeout)
    );
    let cut = p.interval * p.down_after;
    let _ = writeln!(
        out,
        "down rule: a link is declared down after {} consecutive rounds without any reply, \
         i.e. {}–{} after a hard cut (+ up to {} reply timeout); it is back on the first reply",
        p.down_after,
        d(cut),
        d(cut + p.interval),
        d(p.timeout)
    );
    let _ = writeln!(
        out,
        "report:    one summary per target every {} ({} rounds: loss, RTT, percentiles, time \
         down); link changes are sent at once",
        d(p.report_every),
        p.report_every.as_nanos() / p.interval.as_nanos().max(1)
    );
    let _ = writeln!(out, "heartbeat: every {}", d(config.heartbeat.interval));
    let j = &config.journal;
    let _ = writeln!(
        out,
        "journal:   {}, at most {} bytes, fsync at most every {}, a backlog drains at up to {} \
         events/s on top of live events",
        j.dir.display(),
        j.max_bytes,
        d(j.fsync_interval),
        j.drain_rate
    );
    let _ = writeln!(out, "targets:   {}", config.targets.len());
    const SHOWN: usize = 20;
    for t in config.targets.iter().take(SHOWN) {
        let role = serde_json::to_value(t.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(out, "  - {} {} ({role})", t.address, t.name);
    }
    if config.targets.len() > SHOWN {
        let _ = writeln!(out, "  … and {} more", config.targets.len() - SHOWN);
    }
    if !config.cellular.is_empty() {
        let _ = writeln!(out, "cellular:  {} modem(s)", config.cellular.len());
    }
    for m in &config.cellular {
        let _ = writeln!(
            out,
            "  - {}: {}, every {}, {} per command; stopped answering after {} failed reading(s), \
             a change of service counts after {} reading(s)",
            m.name,
            m.source.describe(),
            d(m.interval),
            d(m.timeout),
            m.fail_after,
            m.changes_after
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::probes::EchoOutcome;
    use std::time::Duration;

    fn fixture() -> (Vec<Target>, Vec<RoundStats>) {
        let targets = vec![
            Target {
                name: "UBND xã Cẩm Tú".into(),
                address: "10.20.0.1".parse().unwrap(),
                role: netmon_events::LinkRole::Commune,
            },
            Target {
                name: "Cổng thôn Giang Trung".into(),
                address: "fd00:20::1".parse().unwrap(),
                role: netmon_events::LinkRole::Gateway,
            },
        ];
        let ms = |x: f64| EchoOutcome::Replied(Duration::from_secs_f64(x / 1000.0));
        let results = vec![
            RoundStats::from_outcomes([ms(1.204), EchoOutcome::NoReply, ms(1.796)]),
            RoundStats::from_outcomes([EchoOutcome::NoReply; 3]),
        ];
        (targets, results)
    }

    #[test]
    fn json_lines_are_the_event_body() {
        let (targets, results) = fixture();
        let text = probe_json(&targets, &results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"target":{"name":"UBND xã Cẩm Tú","address":"10.20.0.1","role":"commune"},"sent":3,"received":2,"rtt_min_ms":1.204,"rtt_avg_ms":1.5,"rtt_max_ms":1.796,"rtt_mdev_ms":0.296,"loss_pct":33.333}"#,
                r#"{"target":{"name":"Cổng thôn Giang Trung","address":"fd00:20::1","role":"gateway"},"sent":3,"received":0,"loss_pct":100.0}"#,
            ]
        );
        // The same fields as the golden event fixture's body.
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../events/fixtures/probe_round_completed.json"
        ))
        .unwrap();
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        for (key, value) in line.as_object().unwrap() {
            assert_eq!(fixture.get(key), Some(value), "{key}");
        }
    }

    #[test]
    fn tables_in_both_languages() {
        let (targets, results) = fixture();
        let vi = probe_table(&targets, &results, Lang::Vi);
        assert!(vi.starts_with("Mục tiêu"), "{vi}");
        assert!(
            vi.contains("RTT tb (ms)") && vi.contains("không trả lời"),
            "{vi}"
        );
        assert!(vi.contains("1/2 mục tiêu trả lời"), "{vi}");
        let en = probe_table(&targets, &results, Lang::En);
        assert!(en.starts_with("Target") && en.contains("no reply"), "{en}");
        // Columns line up although names carry diacritics.
        let starts: Vec<usize> = en
            .lines()
            .take(3)
            .map(|l| {
                l.chars()
                    .position(|c| c == '1' || c == 'f' || c == 'A')
                    .unwrap()
            })
            .collect();
        assert!(starts.iter().all(|s| *s == starts[0]), "{en}");
    }
}
