//! The Grafana dashboards in `dashboards/` against a real InfluxDB 1.6: a private `influxd` gets
//! data written by the real collector's projection from events sent through a real broker (every
//! measurement, tag and field, Vietnamese names with spaces, commas and `=`), then every template
//! variable query and every panel query of every dashboard runs with Grafana's macros substituted
//! the way Grafana does. Each must answer without error and with at least one series holding a
//! non-null value in every column and no empty group-by tag: a query naming a measurement, tag or
//! field that the projection does not write returns nothing and fails the test. The fleet mixes
//! agent versions (ADR 14): one agent sends `probe_window_completed`, one only the old
//! `probe_round_completed`, and the commune wall's agent upgrades half-way, so the latency
//! band is checked on both shapes of `probe` point.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_events::{AgentStatus, BootId, Event, Target, encode_batch};
use netmon_tests::broker::LocalBroker;
use netmon_tests::influxd::Influxd;
use netmon_tests::{Collector, InfluxConfig, Scratch, poll_until, publish};

use crate::coverage::reading;
use netmon_events::testing::{
    Boot, WINDOW_ECHOES, came_back, described, events_topic, round, started, went_down, window,
};

const DB: &str = "netmon";
const PROVINCE: &str = "thanh-hoa";
const AGENT: &str = "xa-quang-phu";
const OTHER_AGENT: &str = "thon-ban-lau";
const OTHER_PROVINCE: &str = "nghe-an";
/// The agent of `OTHER_PROVINCE`, not in the inventory: an old agent, rounds only.
const OLD_AGENT: &str = "xa-chau-tien";
/// Minutes of data, one probe event per target a minute.
const MINUTES: i64 = 300;
/// The minute `AGENT` restarts as a new version: rounds before, windows from then on.
const UPGRADE_AT: i64 = 150;
/// The inventory commune of `AGENT` and `OTHER_AGENT`.
const COMMUNE: &str = "quang-phu";

/// The site inventory of the collectors: `AGENT` and `OTHER_AGENT` at sites with coordinates (so
/// the points have `commune`/`site` tags and `lat`/`lon` fields for the geomap); the third
/// agent, `xa-chau-tien`, is not registered (its points have neither).
const INVENTORY: &str = r#"
[[provinces]]
id = "thanh-hoa"
name = "Thanh Hóa"
[[communes]]
id = "quang-phu"
province = "thanh-hoa"
name = "xã Quảng Phú"
[[sites]]
id = "quang-phu-ubnd"
commune = "quang-phu"
name = "UBND xã Quảng Phú"
kind = "commune_centre"
lat = 19.7712
lon = 105.8421
agents = ["xa-quang-phu"]
[[sites]]
id = "quang-phu-ban-lau"
commune = "quang-phu"
parent = "quang-phu-ubnd"
name = "thôn Bản Lầu"
kind = "village"
lat = 19.7805
lon = 105.8533
agents = ["thon-ban-lau"]
"#;

/// (name, address, role) of every agent's targets.
const TARGETS: &[(&str, &str, &str)] = &[
    ("Cổng làng", "192.168.1.1", "gateway"),
    ("UBND xã Quảng Phú, Thanh Hoá", "10.10.0.1", "commune"),
    ("Internet = 1.1.1.1", "1.1.1.1", "internet"),
];

#[test]
fn dashboards_queries_answer_with_data_on_influxdb() {
    let scratch = Scratch::new("dashboards").unwrap();
    let influxd = Influxd::start(&scratch).unwrap();
    influxd.create_database(DB).unwrap();
    let written = write_through_the_collector(&influxd, &scratch).unwrap();
    assert_eq!(written.probes, 3 * TARGETS.len() as u64 * MINUTES as u64);
    check_site_tags(&influxd).unwrap();

    let dir = dashboards_dir();
    let mut checked = 0;
    for file in ["province.json", "commune.json", "coverage.json"] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))
            .unwrap();
        let dashboard: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", path.display()))
            .unwrap();
        checked += check_dashboard(&influxd, file, &dashboard).unwrap();
        if file == "commune.json" {
            check_latency_band(&influxd, &dashboard, written.upgrade).unwrap();
        }
    }
    eprintln!("dashboards: {checked} queries answered with data");
    assert!(
        checked >= 20,
        "only {checked} queries found in the dashboards"
    );
}

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("dashboards")
}

/// Runs the variable and panel queries of one dashboard; the number of queries run.
fn check_dashboard(influxd: &Influxd, file: &str, dashboard: &Value) -> anyhow::Result<usize> {
    let mut checked = 0;
    let variables = dashboard["templating"]["list"]
        .as_array()
        .with_context(|| format!("{file}: no templating.list"))?;
    for variable in variables {
        let name = variable["name"].as_str().unwrap_or_default();
        let query = query_text(&variable["query"])
            .with_context(|| format!("{file}: variable {name} has no query"))?;
        check_datasource(&variable["datasource"])
            .with_context(|| format!("{file}: variable {name}"))?;
        let answer =
            run_query(influxd, &query).with_context(|| format!("{file}: variable {name}"))?;
        let values = tag_values(&answer);
        let expected = match name {
            "province" => PROVINCE,
            "agent" => AGENT,
            "target" => TARGETS[1].0,
            "commune" => COMMUNE,
            other => bail!("{file}: unexpected variable {other}"),
        };
        if !values.iter().any(|v| v == expected) {
            bail!("{file}: variable {name}: {query:?} gave {values:?}, without {expected:?}");
        }
        if name == "agent" && values.iter().any(|v| v == OLD_AGENT) {
            bail!("{file}: variable agent is not filtered by province: {values:?}");
        }
        checked += 1;
    }

    let mut panels = Vec::new();
    collect_panels(&dashboard["panels"], &mut panels);
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        let kind = panel["type"].as_str().unwrap_or_default();
        if kind == "row" || kind == "text" {
            continue;
        }
        check_datasource(&panel["datasource"]).with_context(|| format!("{file}: panel {title}"))?;
        let targets = panel["targets"]
            .as_array()
            .filter(|t| !t.is_empty())
            .with_context(|| format!("{file}: panel {title} has no targets"))?;
        for target in targets {
            let refid = target["refId"].as_str().unwrap_or_default();
            if target["rawQuery"] != Value::Bool(true) {
                bail!("{file}: panel {title} target {refid} is not a raw InfluxQL query");
            }
            let query = query_text(&target["query"])
                .with_context(|| format!("{file}: panel {title} target {refid} has no query"))?;
            let answer = run_query(influxd, &query)
                .with_context(|| format!("{file}: panel {title:?} target {refid}"))?;
            check_has_data(&answer)
                .with_context(|| format!("{file}: panel {title:?} target {refid}: {query}"))?;
            checked += 1;
        }
    }
    Ok(checked)
}

/// The commune wall's latency panel (Smokeping-style) on both shapes of `probe` point: for
/// `AGENT`'s minutes before `upgrade` (rounds) only the mean, min, max and loss have values;
/// from then on (windows) the median and the four band edges too, in the order
/// min ≤ p10 ≤ p20 ≤ median ≤ p80 ≤ p90 ≤ max. Every minute of the data is one or the other.
fn check_latency_band(
    influxd: &Influxd,
    dashboard: &Value,
    upgrade: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut panels = Vec::new();
    collect_panels(&dashboard["panels"], &mut panels);
    let panel = panels
        .into_iter()
        .find(|p| {
            p["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Độ trễ —"))
        })
        .context("commune.json has no panel \"Độ trễ — $target\"")?;
    // Per time bucket (epoch ms), every column of every query of the panel.
    let mut buckets: std::collections::BTreeMap<i64, serde_json::Map<String, Value>> =
        Default::default();
    for target in panel["targets"].as_array().into_iter().flatten() {
        let query = query_text(&target["query"]).context("a target without a query")?;
        let answer = run_query(influxd, &query)?;
        for s in answer["results"][0]["series"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let columns = s["columns"].as_array().cloned().unwrap_or_default();
            for row in s["values"].as_array().into_iter().flatten() {
                let row = row.as_array().cloned().unwrap_or_default();
                let time = row
                    .first()
                    .and_then(Value::as_i64)
                    .context("a row without time")?;
                let bucket = buckets.entry(time).or_default();
                for (column, value) in columns.iter().zip(row).skip(1) {
                    bucket.insert(column.as_str().unwrap_or_default().to_owned(), value);
                }
            }
        }
    }
    let ordered = ["min", "p10", "p20", "trung vị", "p80", "p90", "max"];
    let round_only = ["trung bình", "min", "max", "mất gói"];
    let mut counts = (0, 0);
    // A bucket of the last round starts at most a minute before the first window.
    let last_round_bucket = upgrade.timestamp_millis() - 60_000;
    for (time, columns) in &buckets {
        let value = |name: &str| columns.get(name).and_then(Value::as_f64);
        if value("mất gói").is_none() {
            continue; // no probe point in this bucket
        }
        if *time <= last_round_bucket {
            counts.0 += 1;
            let missing: Vec<_> = round_only.iter().filter(|c| value(c).is_none()).collect();
            let present: Vec<_> = ordered
                .iter()
                .filter(|c| !round_only.contains(c) && value(c).is_some())
                .collect();
            if !missing.is_empty() || !present.is_empty() {
                bail!("rounds at {time}: without {missing:?}, with {present:?}: {columns:?}");
            }
        } else {
            counts.1 += 1;
            let values: Vec<f64> = ordered
                .iter()
                .map(|c| {
                    value(c).with_context(|| format!("windows at {time}: no {c}: {columns:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
            if values.windows(2).any(|w| w[0] > w[1]) || value("trung bình").is_none() {
                bail!("windows at {time}: the band is not {ordered:?} in order: {columns:?}");
            }
        }
    }
    let expected = (UPGRADE_AT as usize, (MINUTES - UPGRADE_AT) as usize);
    if counts != expected {
        bail!("latency band: {counts:?} minutes of rounds and windows, expected {expected:?}");
    }
    Ok(())
}

/// Panels at top level and inside (collapsed) rows.
fn collect_panels<'a>(panels: &'a Value, into: &mut Vec<&'a Value>) {
    for panel in panels.as_array().into_iter().flatten() {
        into.push(panel);
        collect_panels(&panel["panels"], into);
    }
}

fn check_datasource(datasource: &Value) -> anyhow::Result<()> {
    if datasource["uid"] != "netmon-influx" || datasource["type"] != "influxdb" {
        bail!("datasource is {datasource}, not the influxdb netmon-influx");
    }
    Ok(())
}

fn query_text(query: &Value) -> Option<String> {
    match query {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o.get("query").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Substitutes the macros and variables as Grafana does, then runs the query.
fn run_query(influxd: &Influxd, query: &str) -> anyhow::Result<Value> {
    let all_targets = format!(
        "({})",
        TARGETS
            .iter()
            .map(|(name, _, _)| regex_escape(name))
            .collect::<Vec<_>>()
            .join("|")
    );
    let substituted = query
        .replace("$__timeFilter", "time >= now() - 6h")
        .replace("$timeFilter", "time >= now() - 6h")
        .replace("$__interval", "1m")
        .replace("$interval", "1m")
        .replace("$province", &regex_escape(PROVINCE))
        .replace("$agent", &regex_escape(AGENT))
        .replace("$commune", &regex_escape(COMMUNE))
        .replace("$target", &all_targets);
    let bytes = substituted.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'$'
            && bytes
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            bail!("unknown variable left in {substituted:?}");
        }
    }
    influxd.query(DB, &substituted)
}

/// Grafana's regex escaping of a variable value used in `=~ /…/`.
fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\^$*+?.()|[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every column but `time` has a non-null value in some series, and no group-by tag is empty.
fn check_has_data(answer: &Value) -> anyhow::Result<()> {
    let series = answer["results"][0]["series"]
        .as_array()
        .filter(|s| !s.is_empty())
        .context("no series")?;
    for s in series {
        if let Some(tags) = s["tags"].as_object() {
            for (key, value) in tags {
                if value.as_str().is_none_or(str::is_empty) {
                    bail!("series grouped by tag {key:?} that the points do not have");
                }
            }
        }
    }
    let mut columns: Vec<(&str, bool)> = Vec::new();
    for s in series {
        for (i, column) in s["columns"].as_array().into_iter().flatten().enumerate() {
            let column = column.as_str().unwrap_or_default();
            if column == "time" {
                continue;
            }
            let has_value = s["values"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|row| row.get(i).is_some_and(|v| !v.is_null()));
            match columns.iter_mut().find(|(name, _)| *name == column) {
                Some((_, seen)) => *seen |= has_value,
                None => columns.push((column, has_value)),
            }
        }
    }
    let empty: Vec<&str> = columns
        .iter()
        .filter(|(_, seen)| !seen)
        .map(|(name, _)| *name)
        .collect();
    if columns.is_empty() || !empty.is_empty() {
        let answer: String = answer.to_string().chars().take(2000).collect();
        bail!("only null values in {empty:?}: {answer}…");
    }
    Ok(())
}

/// The `value` column of every series of a `SHOW TAG VALUES` answer.
fn tag_values(answer: &Value) -> Vec<String> {
    let mut values = Vec::new();
    for s in answer["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for row in s["values"].as_array().into_iter().flatten() {
            if let Some(v) = row.get(1).and_then(Value::as_str) {
                values.push(v.to_owned());
            }
        }
    }
    values
}

/// What [`write_through_the_collector`] published.
struct Written {
    /// Probe events, rounds and windows.
    probes: u64,
    /// When `AGENT` started as a new version: its last round is a minute before, its first
    /// window then.
    upgrade: DateTime<Utc>,
}

/// The data set, made by the real collector: every event goes through the broker into the
/// collector's store and from there through its InfluxDB projection, so a dashboard query naming
/// something the projection does not write finds nothing. Three agents (two in `PROVINCE`), five
/// hours of one probe event per target a minute, modem readings and heartbeats (backfilled, so
/// `late`), an outage that ended, one still open, a restart, a journal overflow and two last
/// wills (`agent_went_silent`, made by the collector). Agent versions are mixed as in a fleet
/// being upgraded (ADR 14): `OTHER_AGENT` sends one-minute `probe_window_completed` throughout,
/// `OLD_AGENT` only `probe_round_completed`, and `AGENT` restarts as the new version at
/// `UPGRADE_AT` (rounds before, `targets_described` and windows after).
fn write_through_the_collector(influxd: &Influxd, scratch: &Scratch) -> anyhow::Result<Written> {
    let broker = LocalBroker::start("broker", scratch)?;
    let url = broker.url();
    let influx = InfluxConfig::v1(&influxd.url, DB);
    let inventory = scratch.write("inventory.toml", INVENTORY)?;
    let mut collectors = Vec::new();
    for province in [PROVINCE, OTHER_PROVINCE] {
        collectors.push(Collector::start_with_inventory(
            &format!("collector-{province}"),
            scratch,
            province,
            &url,
            Some(influx.clone()),
            Some(inventory.display().to_string()),
        )?);
    }
    let now = Utc::now();
    let minutes = chrono::Duration::minutes;
    let upgrade = now - minutes(MINUTES - UPGRADE_AT);
    let targets: Vec<Target> = TARGETS
        .iter()
        .map(|&(name, address, role)| Target {
            name: name.into(),
            address: address.parse().expect("target address"),
            role: serde_json::from_value(Value::from(role)).expect("role"),
        })
        .collect();
    let mut probes = 0u64;
    let mut windows = 0u64;
    for (province, agent) in [
        (PROVINCE, AGENT),
        (PROVINCE, OTHER_AGENT),
        (OTHER_PROVINCE, OLD_AGENT),
    ] {
        // The old version's boot sends rounds, the new version's windows.
        let mut old = Boot::new(agent);
        let mut new = Boot::new(agent);
        let mut events = Vec::new();
        let mut at = |boot: &mut Boot, event: Event, time: DateTime<Utc>| {
            let mut envelope = boot.next(event);
            envelope.time = time;
            events.push(envelope);
        };
        let first_window = match agent {
            AGENT => Some(UPGRADE_AT),
            OTHER_AGENT => Some(0),
            _ => None,
        };
        for i in 0..MINUTES {
            let t = now - minutes(MINUTES - i);
            let windowed = first_window.is_some_and(|first| i >= first);
            let boot = if windowed { &mut new } else { &mut old };
            if i == 0 || Some(i) == first_window {
                // Just after the old version's last events of the minute before.
                let start = t - minutes(1) + chrono::Duration::milliseconds(10);
                if windowed {
                    at(boot, new_version(), start);
                    at(
                        boot,
                        described(&targets),
                        start + chrono::Duration::milliseconds(1),
                    );
                } else {
                    at(boot, started(), start);
                }
            }
            for (k, target) in targets.iter().enumerate() {
                let open_outage = agent == OTHER_AGENT && k == 0 && i >= 270;
                let avg = 2.0 + (k as f64) * 10.0 + (i % 13) as f64 * 0.5;
                let event = if windowed {
                    windows += 1;
                    let (received, down_ms) = match (open_outage, i % 7) {
                        (true, _) => (0, if i > 272 { 60_000 } else { 0 }),
                        (false, 0) => (WINDOW_ECHOES - 6, 0),
                        (false, _) => (WINDOW_ECHOES, 0),
                    };
                    window_at(target, received, down_ms, avg)
                } else {
                    let received = match (open_outage, i % 7) {
                        (true, _) => 0,
                        (false, 0) => 2,
                        (false, _) => 3,
                    };
                    round_at(target, received, avg)
                };
                at(boot, event, t);
                probes += 1;
            }
            let since_start = i - first_window.filter(|_| windowed).unwrap_or(0);
            at(
                boot,
                Event::AgentHeartbeat {
                    uptime_s: u64::try_from(since_start * 60).unwrap_or_default(),
                    backlog: u64::try_from(i % 10).unwrap_or_default(),
                },
                t + chrono::Duration::milliseconds(1),
            );
            if agent == AGENT && i == 120 {
                let down = t;
                at(
                    boot,
                    went_down(&targets[1], down),
                    t + chrono::Duration::seconds(3),
                );
                at(
                    boot,
                    came_back(&targets[1], down, 600_500),
                    t + minutes(10) + chrono::Duration::seconds(1),
                );
                at(
                    boot,
                    Event::JournalOverflowed {
                        dropped_boot: boot_id(agent),
                        first_seq: 1,
                        last_seq: 42,
                        count: 42,
                    },
                    t + chrono::Duration::seconds(5),
                );
            }
            if agent == AGENT {
                // The commune router's uplink, polled over SNMP: the "Đường truyền lên" row.
                at(
                    boot,
                    uplink_sample(i),
                    t + chrono::Duration::milliseconds(2),
                );
                if i == 200 {
                    at(
                        boot,
                        Event::DeviceRebooted {
                            device: router(),
                            uptime_s: 12,
                            previous_uptime_s: 864_000,
                        },
                        t + chrono::Duration::milliseconds(3),
                    );
                }
            }
            // Modem readings: the commune centre has usable 5G (Viettel SA) and VinaPhone LTE, the
            // village only poor MobiFone LTE — the "sites without usable 5G" table.
            for event in modem_readings(agent) {
                at(boot, event, t + chrono::Duration::milliseconds(4));
            }
            if agent == OTHER_AGENT && i == 272 {
                at(boot, went_down(&targets[0], now - minutes(30)), t);
            }
        }
        for chunk in events.chunks(200) {
            publish(&url, &events_topic(province, agent), &encode_batch(chunk))?;
        }
    }
    // The broker's last will for two agents: the collector records `agent_went_silent`.
    for agent in [AGENT, OTHER_AGENT] {
        let status = format!("netmon/v1/{PROVINCE}/{agent}/status");
        publish(&url, &status, &AgentStatus::Offline.to_json())?;
    }

    let written = poll_until(Duration::from_secs(60), || {
        let probe = influxd.count(DB, "probe", "sent").ok()?;
        let window = influxd.count(DB, "probe", "window_ms").ok()?;
        let silent = influxd.count(DB, "agent", "silent").ok()?;
        let uplink = influxd.count(DB, "interface", "in_bps").ok()?;
        let cellular = influxd.count(DB, "cellular", "generation").ok()?;
        (probe == probes
            && window == windows
            && silent == 2
            && uplink == MINUTES as u64
            && cellular == 4 * MINUTES as u64)
            .then_some(())
    });
    if written.is_none() {
        bail!(
            "the collectors did not project {probes} probe points ({windows} of them windows) and \
             two silences into InfluxDB within 60 s; logs: {}",
            collectors
                .iter()
                .map(|c| c.proc.log_path().display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Written { probes, upgrade })
}

/// `agent_started` of the version that sends windows.
fn new_version() -> Event {
    Event::AgentStarted {
        version: "0.2.0".into(),
        targets: TARGETS.len() as u32,
    }
}

/// An old agent's round of 3 echoes averaging `avg` ms, between 0.8 and 1.5 × `avg`.
fn round_at(target: &Target, received: u32, avg: f64) -> Event {
    let mut event = round(target, received);
    if let Event::ProbeRoundCompleted {
        rtt_min_ms,
        rtt_avg_ms,
        rtt_max_ms,
        ..
    } = &mut event
        && received > 0
    {
        (*rtt_min_ms, *rtt_avg_ms, *rtt_max_ms) = (Some(avg * 0.8), Some(avg), Some(avg * 1.5));
    }
    event
}

/// The deciles of [`window_at`] as multiples of its average: a spread skewed to the slow side,
/// as a real link's is.
const DECILES: [f64; 9] = [0.85, 0.9, 0.93, 0.96, 1.0, 1.04, 1.08, 1.15, 1.3];

/// A one-minute window (60 rounds of 3 echoes) with `received` replies averaging `avg` ms,
/// between 0.8 and 1.5 × `avg`, deciles [`DECILES`] × `avg`, the link held down `down_ms`.
fn window_at(target: &Target, received: u32, down_ms: u64, avg: f64) -> Event {
    let ms = |factor: f64| (avg * factor * 100.0).round() / 100.0;
    let mut event = window(target, received);
    if let Event::ProbeWindowCompleted {
        down_ms: down,
        rtt_min_ms,
        rtt_avg_ms,
        rtt_max_ms,
        rtt_pct_ms,
        ..
    } = &mut event
    {
        *down = down_ms;
        if received > 0 {
            (*rtt_min_ms, *rtt_avg_ms, *rtt_max_ms) = (Some(ms(0.8)), Some(ms(1.0)), Some(ms(1.5)));
            *rtt_pct_ms = Some(DECILES.iter().map(|&f| ms(f)).collect());
        }
    }
    event
}

/// One minute's modem readings of `agent` (none for the third agent's province but one).
fn modem_readings(agent: &str) -> Vec<Event> {
    use netmon_events::{Quality, Technology};
    match agent {
        AGENT => vec![
            reading(
                "viettel",
                Technology::Nr5gSa,
                Some("452-04"),
                Quality::Good,
                Some(-86.0),
                Some(17.5),
            ),
            reading(
                "vinaphone",
                Technology::Lte,
                Some("452-02"),
                Quality::Fair,
                Some(-103.0),
                Some(3.0),
            ),
        ],
        OTHER_AGENT => vec![reading(
            "mobifone",
            Technology::Lte,
            Some("452-01"),
            Quality::Poor,
            Some(-116.0),
            Some(-4.0),
        )],
        _ => vec![reading(
            "viettel",
            Technology::Wcdma,
            Some("452-04"),
            Quality::Fair,
            None,
            None,
        )],
    }
}

/// The commune router polled over SNMP (sysName with diacritics).
fn router() -> netmon_events::Device {
    netmon_events::Device {
        address: "192.168.1.1".into(),
        name: Some("Bộ định tuyến xã".into()),
    }
}

/// Minute `i` of the uplink: 50 Mbit/s capacity, load rising and falling, a few errors.
fn uplink_sample(i: i64) -> Event {
    let load = 0.2 + 0.75 * ((i % 60) as f64 / 60.0);
    let in_bps = 50_000_000.0 * load;
    Event::InterfaceCountersSampled {
        device: router(),
        interface: netmon_events::Interface {
            index: 2,
            name: "wan0".into(),
            alias: Some("Cáp quang VNPT về xã".into()),
        },
        interval_ms: 60_000,
        in_bps,
        out_bps: in_bps / 4.0,
        speed_bps: Some(50_000_000),
        in_util_pct: Some(load * 100.0),
        out_util_pct: Some(load * 25.0),
        in_errors_ps: (i % 5) as f64 * 0.1,
        out_errors_ps: 0.0,
        in_discards_ps: (i % 3) as f64 * 0.5,
        out_discards_ps: 0.0,
        oper_status: netmon_events::OperStatus::Up,
    }
}

/// The registered agents' points carry their site and coordinates; the unregistered agent's
/// points have no site.
fn check_site_tags(influxd: &Influxd) -> anyhow::Result<()> {
    for measurement in ["probe", "link", "agent", "journal", "cellular"] {
        let answer = influxd.query(
            DB,
            &format!("SHOW TAG VALUES FROM \"{measurement}\" WITH KEY = \"site\""),
        )?;
        let mut sites = tag_values(&answer);
        sites.sort();
        let expected: &[&str] = match measurement {
            "journal" => &["quang-phu-ubnd"],
            _ => &["quang-phu-ban-lau", "quang-phu-ubnd"],
        };
        if sites != expected {
            bail!("{measurement}: site tags {sites:?}, expected {expected:?}");
        }
    }
    let answer = influxd.query(
        DB,
        &format!(
            "SELECT count(\"uptime_s\") FROM \"agent\" WHERE \"agent\" = '{OLD_AGENT}' AND \"site\" = ''"
        ),
    )?;
    if answer["results"][0]["series"][0]["values"][0][1].as_u64() != Some(MINUTES as u64) {
        bail!("the unregistered agent's heartbeats should have no site tag: {answer}");
    }
    let answer = influxd.query(
        DB,
        "SELECT last(\"lat\"), last(\"lon\") FROM \"agent\" WHERE \"site\" = 'quang-phu-ubnd'",
    )?;
    let row = &answer["results"][0]["series"][0]["values"][0];
    if row[1].as_f64() != Some(19.7712) || row[2].as_f64() != Some(105.8421) {
        bail!("coordinates of quang-phu-ubnd: {answer}");
    }
    Ok(())
}

/// A boot id for a journal overflow declaration (any boot of the agent will do for the wall).
fn boot_id(agent: &str) -> BootId {
    format!("{agent}-earlier-boot").parse().expect("boot id")
}
