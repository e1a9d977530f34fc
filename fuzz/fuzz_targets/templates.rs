//! Notification templates (`collector/src/notify/template.rs`, `render.rs`).
//!
//! Arbitrary template text is parsed against arbitrary allowed placeholders and rendered with
//! arbitrary values; arbitrary phrase files are parsed; and the built-in templates render
//! arbitrary notices (any kind, any times, values NaN or infinite, any durations, any names).
//! Asserts: nothing panics; a text without `{ } [ ]` always parses and renders as itself (its
//! trailing spaces trimmed); rendering never yields more lines than the template has (values
//! without newlines), and a subject is one line.
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use netmon_collector::notify::render::{Templates, render};
use netmon_collector::notify::template::{Template, parse_phrases};
use netmon_collector::notify::view::NoticeView;

#[derive(Arbitrary, Debug)]
struct Notice {
    notice: u8,
    alert: u64,
    kind: u8,
    agent: String,
    site: Option<String>,
    commune: Option<String>,
    province: Option<String>,
    link: Option<String>,
    detected_by: u8,
    since: i64,
    until: Option<i64>,
    duration_ms: Option<u64>,
    value: Option<f64>,
    threshold: Option<f64>,
    affected: Vec<String>,
    acknowledged_by: Option<String>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    template: String,
    allowed: Vec<String>,
    values: Vec<String>,
    phrases: String,
    required: Vec<String>,
    lang: String,
    notices: Vec<Notice>,
}

const NOTICES: [&str; 4] = ["opened", "resolved", "reminder", "resolved_late"];
const KINDS: [&str; 10] = [
    "link_down",
    "agent_unreachable",
    "high_loss",
    "high_latency",
    "congestion",
    "flapping",
    "device_rebooted",
    "interface_down",
    "unknown_agent",
    "coverage_lost",
];
const DETECTIONS: [&str; 6] = [
    "agent_probes",
    "last_will",
    "missed_heartbeats",
    "statistics",
    "state_changes",
    "inventory",
];

fn pick<T: serde::de::DeserializeOwned>(names: &[&str], i: u8) -> T {
    let name = names[usize::from(i) % names.len()];
    serde_json::from_value(serde_json::Value::from(name)).expect("a known variant")
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

fn view(n: Notice) -> NoticeView {
    NoticeView {
        notice: pick(&NOTICES, n.notice),
        alert: n.alert,
        kind: pick(&KINDS, n.kind),
        agent: n.agent,
        site: n.site,
        commune: n.commune,
        province: n.province,
        link: n.link,
        detected_by: pick(&DETECTIONS, n.detected_by),
        since: time(n.since),
        until: n.until.map(time),
        duration_ms: n.duration_ms,
        value: n.value,
        threshold: n.threshold,
        affected: n.affected,
        acknowledged_by: n.acknowledged_by,
    }
}

fuzz_target!(|input: Input| {
    let allowed: Vec<&str> = input.allowed.iter().map(String::as_str).collect();
    let value = |name: &str| {
        let i = allowed
            .iter()
            .position(|a| *a == name)
            .unwrap_or(usize::MAX);
        input.values.get(i).cloned().unwrap_or_default()
    };
    match Template::parse(&input.template, &allowed) {
        Ok(template) => {
            let out = template.render(&value);
            let lines = input
                .template
                .trim_end_matches(['\n', '\r'])
                .lines()
                .count();
            if !input.values.iter().any(|v| v.contains('\n')) {
                assert!(
                    out.lines().count() <= lines.max(1),
                    "more lines than the template"
                );
            }
            let _ = template.render(&|_| String::new());
        }
        Err(_) => assert!(
            input.template.contains(['{', '}', '[', ']']),
            "a plain text was refused"
        ),
    }
    if !input.template.contains(['{', '}', '[', ']']) {
        let template = Template::parse(&input.template, &[]).expect("plain text parses");
        let expected: Vec<&str> = input
            .template
            .trim_end_matches(['\n', '\r'])
            .lines()
            .map(|l| l.trim_end_matches('\r').trim_end())
            .collect();
        assert_eq!(template.render(&|_| String::new()), expected.join("\n"));
    }
    let _ = parse_phrases(&input.phrases, &input.required, &input.values);
    let notices: Vec<NoticeView> = input.notices.into_iter().take(8).map(view).collect();
    let templates = Templates::builtin();
    for lang in [input.lang.as_str(), "vi", "en"] {
        let (subject, _text) = render(&templates, lang, &notices);
        assert!(!subject.contains('\n'), "a subject of several lines");
    }
});
