//! The Grafana dashboards in `dashboards/` against a real InfluxDB 1.6: a private `influxd` gets
//! data written by the real collector's projection from events sent through a real broker (every
//! measurement, tag and field, Vietnamese names with spaces, commas and `=`), then every template
//! variable query and every panel query of every dashboard runs with Grafana's macros substituted
//! the way Grafana does. Each must answer without error and with at least one series holding a
//! non-null value and no empty group-by tag: a query naming a measurement, tag or field that the
//! projection does not write returns nothing and fails the test.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use std::time::Duration;

use chrono::Utc;
use netmon_events::{AgentStatus, BootId, Event, Target, encode_batch};
use netmon_tests::broker::LocalBroker;
use netmon_tests::influxd::Influxd;
use netmon_tests::{Collector, InfluxConfig, Scratch, poll_until, publish};

use crate::coverage::reading;
use netmon_events::testing::{Boot, came_back, events_topic, round, started, went_down};

const DB: &str = "netmon";
const PROVINCE: &str = "thanh-hoa";
const AGENT: &str = "xa-quang-phu";
const OTHER_AGENT: &str = "thon-ban-lau";
const OTHER_PROVINCE: &str = "nghe-an";
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
    let probes = write_through_the_collector(&influxd, &scratch).unwrap();
    assert_eq!(probes, (3 * TARGETS.len() * 300) as u64);
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
        if name == "agent" && values.iter().any(|v| v == "xa-chau-tien") {
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

/// At least one series with a non-null value outside `time`, and no empty group-by tag.
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
    let has_value = series.iter().any(|s| {
        let columns = s["columns"].as_array().cloned().unwrap_or_default();
        s["values"].as_array().into_iter().flatten().any(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .any(|(i, v)| {
                    columns.get(i).and_then(Value::as_str) != Some("time") && !v.is_null()
                })
        })
    });
    if !has_value {
        bail!("only null values: {answer}");
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

/// The data set, made by the real collector: every event goes through the broker into the
/// collector's store and from there through its InfluxDB projection, so a dashboard query naming
/// something the projection does not write finds nothing. Three agents (two in `PROVINCE`), five
/// hours of one-minute rounds, modem readings and heartbeats (backfilled, so `late`), an outage that ended, one
/// still open, a restart, a journal overflow and two last wills (`agent_went_silent`, made by the
/// collector). Returns how many probe events were published.
fn write_through_the_collector(influxd: &Influxd, scratch: &Scratch) -> anyhow::Result<u64> {
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
    let minutes = |m: i64| chrono::Duration::minutes(m);
    let targets: Vec<Target> = TARGETS
        .iter()
        .map(|&(name, address, role)| Target {
            name: name.into(),
            address: address.parse().expect("target address"),
            role: serde_json::from_value(Value::from(role)).expect("role"),
        })
        .collect();
    let mut probes = 0u64;
    for (province, agent) in [
        (PROVINCE, AGENT),
        (PROVINCE, OTHER_AGENT),
        (OTHER_PROVINCE, "xa-chau-tien"),
    ] {
        let mut boot = Boot::new(agent);
        let mut events = Vec::new();
        let mut at = |event: Event, time: chrono::DateTime<Utc>| {
            let mut envelope = boot.next(event);
            envelope.time = time;
            events.push(envelope);
        };
        at(started(), now - minutes(301));
        for i in 0..300i64 {
            let t = now - minutes(300 - i);
            for (k, target) in targets.iter().enumerate() {
                let open_outage = agent == OTHER_AGENT && k == 0 && i >= 270;
                let received = if open_outage {
                    0
                } else if i % 7 == 0 {
                    2
                } else {
                    3
                };
                let mut event = round(target, received);
                if let Event::ProbeRoundCompleted {
                    rtt_min_ms,
                    rtt_avg_ms,
                    rtt_max_ms,
                    ..
                } = &mut event
                    && received > 0
                {
                    let avg = 2.0 + (k as f64) * 10.0 + (i % 13) as f64 * 0.5;
                    (*rtt_min_ms, *rtt_avg_ms, *rtt_max_ms) =
                        (Some(avg * 0.8), Some(avg), Some(avg * 1.5));
                }
                at(event, t);
                probes += 1;
            }
            at(
                Event::AgentHeartbeat {
                    uptime_s: u64::try_from(i * 60).unwrap_or_default(),
                    backlog: u64::try_from(i % 10).unwrap_or_default(),
                },
                t + chrono::Duration::milliseconds(1),
            );
            if agent == AGENT && i == 120 {
                let down = t;
                at(
                    went_down(&targets[1], down),
                    t + chrono::Duration::seconds(3),
                );
                at(
                    came_back(&targets[1], down, 600_500),
                    t + minutes(10) + chrono::Duration::seconds(1),
                );
                at(
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
                at(uplink_sample(i), t + chrono::Duration::milliseconds(2));
                if i == 200 {
                    at(
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
                at(event, t + chrono::Duration::milliseconds(4));
            }
            if agent == OTHER_AGENT && i == 272 {
                at(went_down(&targets[0], now - minutes(30)), t);
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
        let silent = influxd.count(DB, "agent", "silent").ok()?;
        let uplink = influxd.count(DB, "interface", "in_bps").ok()?;
        let cellular = influxd.count(DB, "cellular", "generation").ok()?;
        (probe == probes && silent == 2 && uplink == 300 && cellular == 4 * 300).then_some(())
    });
    if written.is_none() {
        bail!(
            "the collectors did not project {probes} probe points and two silences into InfluxDB \
             within 60 s; logs: {}",
            collectors
                .iter()
                .map(|c| c.proc.log_path().display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(probes)
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
        "SELECT count(\"uptime_s\") FROM \"agent\" WHERE \"agent\" = 'xa-chau-tien' AND \"site\" = ''",
    )?;
    if answer["results"][0]["series"][0]["values"][0][1].as_u64() != Some(300) {
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
