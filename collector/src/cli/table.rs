//! Human-readable output of the CLI: aligned text tables (times in Vietnam's local time, see
//! [`super::time`]) and labels in Vietnamese (default) or English.

use chrono::{DateTime, Utc};
use netmon_events::{Event, LinkRole};
use serde_json::Value;

use super::time::local;
use crate::api::StateView;
use crate::intake::clock::ClockSource;
use crate::store::StoredEvent;

/// The language of headers and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Tiếng Việt.
    Vi,
    /// English.
    En,
}

impl Lang {
    /// The Vietnamese or the English one of a text (or of any pair of like values): the one
    /// way the CLI's output is written in two languages.
    pub fn pick<T>(self, vi: T, en: T) -> T {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

/// Columns of text, each as wide as its widest cell (counted in characters, so that Vietnamese
/// diacritics do not break the alignment).
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row. A cell's control, bidirectional and invisible characters are shown as
    /// `\u{…}` escapes: a name from an agent or a modem can neither move the terminal's cursor
    /// nor hide what it is (F4, F10).
    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|cell| match netmon_events::text::printable(&cell) {
                std::borrow::Cow::Borrowed(_) => cell,
                std::borrow::Cow::Owned(escaped) => escaped,
            })
            .collect();
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The events table of `events`.
pub fn events(events: &[StoredEvent], lang: Lang) -> String {
    let mut table = Table::new(&[
        "ID",
        lang.pick("Thời gian (UTC+7)", "Time (UTC+7)"),
        lang.pick("Trạm", "Agent"),
        "Seq",
        lang.pick("Loại", "Type"),
        lang.pick("Tóm tắt", "Summary"),
    ]);
    for event in events {
        let e = &event.envelope;
        // The effective time, marked when it is not the agent's own or arrived late.
        let mut time = local(event.time);
        match event.clock {
            ClockSource::Agent => {}
            ClockSource::Corrected => time.push_str(lang.pick(" (đã chỉnh giờ)", " (corrected)")),
            ClockSource::Received => time.push_str(lang.pick(" (giờ nhận)", " (received)")),
        }
        if event.late {
            time.push_str(lang.pick(" (muộn)", " (late)"));
        }
        table.row(vec![
            event.id.to_string(),
            time,
            e.agent.to_string(),
            e.seq.to_string(),
            e.event.type_name().to_string(),
            summary(&e.event, lang),
        ]);
    }
    table.render()
}

/// A lag in milliseconds for people: `850 ms`, `12 s`, `3 min`, `2 h`.
pub fn lag(ms: i64) -> String {
    match ms.unsigned_abs() {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1_000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// One line about an event, for the events table.
pub fn summary(event: &Event, lang: Lang) -> String {
    let target = |t: &netmon_events::Target| format!("{} ({})", t.name, t.address);
    match (event, lang) {
        (Event::AgentStarted { version, targets }, _) => format!(
            "{} {version}, {targets} {}",
            lang.pick("phiên bản", "version"),
            lang.pick("mục tiêu", "targets")
        ),
        (Event::AgentHeartbeat { uptime_s, backlog }, _) => format!(
            "{} {uptime_s}s, {} {backlog}",
            lang.pick("chạy", "uptime"),
            lang.pick("tồn", "backlog")
        ),
        (
            Event::ProbeRoundCompleted {
                target: t,
                sent,
                received,
                rtt_avg_ms,
                loss_pct,
                ..
            },
            _,
        ) => {
            let rtt = rtt_avg_ms.map_or("-".into(), |ms| format!("{ms:.1} ms"));
            format!(
                "{}: {received}/{sent}, rtt {rtt}, {} {loss_pct:.1}%",
                target(t),
                lang.pick("mất", "loss")
            )
        }
        (
            Event::ProbeWindowCompleted {
                target: t,
                window_ms,
                sent,
                received,
                rtt_pct_ms,
                rtt_avg_ms,
                loss_pct,
                down_ms,
                ..
            },
            _,
        ) => {
            // The median when the agent sent percentiles, else the mean.
            let median = rtt_pct_ms.as_deref().and_then(|p| p.get(4).copied());
            let rtt = match (median, rtt_avg_ms) {
                (Some(ms), _) => format!("{} {ms:.1} ms", lang.pick("trung vị", "median")),
                (None, Some(ms)) => format!("{ms:.1} ms"),
                (None, None) => "-".into(),
            };
            let down = if *down_ms > 0 {
                format!(", {} {}s", lang.pick("mất kết nối", "down"), down_ms / 1000)
            } else {
                String::new()
            };
            format!(
                "{} {}s: {received}/{sent}, rtt {rtt}, {} {loss_pct:.1}%{down}",
                target(t),
                window_ms / 1000,
                lang.pick("mất", "loss")
            )
        }
        (Event::TargetsDescribed { targets }, _) => targets
            .iter()
            .map(|d| format!("{}={}", d.key, target(&d.target)))
            .collect::<Vec<_>>()
            .join(", "),
        (
            Event::LinkWentDown {
                target: t,
                since,
                reason,
                ..
            },
            _,
        ) => format!(
            "{}: {} {} ({})",
            target(t),
            lang.pick("mất kết nối từ", "down since"),
            local(*since),
            serde_name(reason)
        ),
        (
            Event::LinkCameBack {
                target: t,
                down_for_ms,
                ..
            },
            _,
        ) => format!(
            "{}: {} {}s",
            target(t),
            lang.pick("có lại sau", "back after"),
            down_for_ms / 1000
        ),
        (
            Event::JournalOverflowed {
                dropped_boot,
                first_seq,
                last_seq,
                count,
            },
            _,
        ) => format!(
            "{} {count}: boot {dropped_boot} seq {first_seq}..={last_seq}",
            lang.pick("nhật ký đầy, mất", "journal full, lost"),
        ),
        (Event::AgentWentSilent { reason, last_seen }, _) => format!(
            "{} ({}), {} {}",
            lang.pick("im lặng", "silent"),
            serde_name(reason),
            lang.pick("lần cuối", "last seen"),
            last_seen.map_or("-".into(), local)
        ),
        (other, _) => fields(other),
    }
}

/// The event's fields as compact `key=value` pairs (for types without a hand-made summary).
fn fields(event: &Event) -> String {
    let Ok(Value::Object(map)) = serde_json::to_value(event) else {
        return String::new();
    };
    map.iter()
        .filter(|(k, _)| k.as_str() != "type")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn serde_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => "?".into(),
    }
}

/// The agents and links tables of a `/api/v1/state` document.
pub fn status(state: &StateView, lang: Lang) -> String {
    let text = |v: Option<&str>| v.unwrap_or("-").to_string();
    let time = |t: Option<DateTime<Utc>>| t.map_or("-".into(), local);
    let number = |n: Option<u64>| n.map_or("-".into(), |n| n.to_string());
    let decimal = |n: Option<f64>| n.map_or("-".into(), |n| format!("{n:.1}"));
    let mut agents = Table::new(&[
        lang.pick("Trạm", "Agent"),
        lang.pick("Tỉnh", "Province"),
        lang.pick("Trực tuyến", "Online"),
        lang.pick("Lần cuối", "Last seen"),
        lang.pick("Phiên bản", "Version"),
        lang.pick("Sự kiện", "Events"),
        lang.pick("Seq cuối", "Last seq"),
        lang.pick("Độ trễ", "Lag"),
        lang.pick("Tồn", "Backlog"),
        lang.pick("Đã mất", "Lost"),
    ]);
    for a in &state.agents {
        agents.row(vec![
            a.agent.to_string(),
            a.province.to_string(),
            lang.pick(["không", "có"], ["no", "yes"])[usize::from(a.online)].into(),
            time(a.last_seen),
            text(a.version.as_deref()),
            a.events.to_string(),
            a.last_seq.to_string(),
            a.lag_ms.map_or("-".into(), lag),
            number(a.backlog),
            a.lost_events.to_string(),
        ]);
    }
    let mut links = Table::new(&[
        lang.pick("Trạm", "Agent"),
        lang.pick("Mục tiêu", "Target"),
        lang.pick("Vai trò", "Role"),
        lang.pick("Trạng thái", "Status"),
        lang.pick("Từ lúc", "Since"),
        "RTT (ms)",
        lang.pick("Mất gói (%)", "Loss (%)"),
    ]);
    for l in &state.links {
        let status = match &*l.status {
            "up" => lang.pick("đang hoạt động", "up"),
            "down" => lang.pick("mất kết nối", "down"),
            _ => lang.pick("chưa rõ", "unknown"),
        };
        links.row(vec![
            l.agent.to_string(),
            format!("{} ({})", l.name, l.address),
            role_name(l.role),
            status.into(),
            time(l.since),
            decimal(l.last_rtt_ms),
            decimal(l.last_loss_pct),
        ]);
    }
    format!("{}\n{}", agents.render(), links.render())
}

/// A role as the JSON names it (`gateway`, `commune`, ..).
fn role_name(role: LinkRole) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn columns_align_by_characters_not_bytes() {
        let mut table = Table::new(&["Trạm", "X"]);
        table.row(vec!["thôn Thọ Liên".into(), "1".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Trạm           X");
        assert_eq!(lines[1], "thôn Thọ Liên  1");
    }

    #[test]
    fn status_tables_in_vietnamese_and_english() {
        let state: StateView = serde_json::from_str(
            r#"{"agents":[{"agent":"a","province":"hue","boot":null,"online":false,"last_seen":null,"silent_since":null,
                           "version":null,"events":2,"last_seq":7341,"lag_ms":185000,"backlog":12,"lost_events":0}],
                "links":[{"agent":"a","address":"10.0.0.1","name":"UBND phường Phú Xuân","role":"commune","status":"down",
                          "since":"2026-11-23T02:00:00.000Z","last_rtt_ms":null,"last_loss_pct":100.0,
                          "last_round":null,"down_reason":"unreachable","last_outage":null}]}"#,
        )
        .unwrap();
        let vi = status(&state, Lang::Vi);
        assert!(vi.contains("Trực tuyến"), "{vi}");
        assert!(vi.contains("mất kết nối"), "{vi}");
        assert!(vi.contains("2026-11-23 09:00:00"), "{vi}");
        assert!(vi.contains("UBND phường Phú Xuân (10.0.0.1)"), "{vi}");
        assert!(vi.contains("Độ trễ") && vi.contains("Seq cuối"), "{vi}");
        assert!(vi.contains("7341") && vi.contains("3 min"), "{vi}");
        let en = status(&state, Lang::En);
        assert!(
            en.contains("Online") && en.contains("down") && en.contains("100.0"),
            "{en}"
        );
        assert!(en.contains("Lag") && en.contains("Last seq"), "{en}");
        assert!(en.contains("commune") && en.contains(" 12 "), "{en}");
    }

    #[test]
    fn events_table_marks_corrected_and_late_times() {
        let mut event = crate::store::testkit::stored(
            1,
            crate::store::Origin::Agent,
            "a",
            1,
            r#""type":"agent_heartbeat","uptime_s":1,"backlog":0"#,
        );
        event.clock = ClockSource::Corrected;
        event.late = true;
        event.time = "2026-11-23T01:00:00Z".parse().unwrap();
        let vi = events(std::slice::from_ref(&event), Lang::Vi);
        assert!(
            vi.contains("2026-11-23 08:00:00 (đã chỉnh giờ) (muộn)"),
            "{vi}"
        );
        let en = events(&[event], Lang::En);
        assert!(en.contains("(corrected) (late)"), "{en}");
        assert_eq!(lag(850), "850 ms");
        assert_eq!(lag(-12_000), "-12 s");
        assert_eq!(lag(7_200_000), "2 h");
    }

    #[test]
    fn cells_cannot_carry_terminal_escapes() {
        let mut table = Table::new(&["nhà mạng"]);
        table.row(vec!["\u{1b}[2J\u{1b}]0;owned\u{7}Viettel\u{202e}".into()]);
        let text = table.render();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        assert_eq!(
            text.lines().nth(1),
            Some("\\u{001b}[2J\\u{001b}]0;owned\\u{0007}Viettel\\u{202e}")
        );
    }
}
