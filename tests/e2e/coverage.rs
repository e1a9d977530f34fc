//! The coverage report end to end: five sites of an inventory in three provinces (xã Cẩm Tú /
//! thôn Giang Trung, xã Kiên Thọ / thôn Thọ Liên, xã Quế Sơn Trung / thôn Phước Chánh, phường
//! Phú Xuân) and an agent the inventory does not list play two hours of modem readings — 5G SA,
//! NSA, LTE, WCDMA and no service on Viettel, VinaPhone and MobiFone, a modem that stops
//! answering for 20 minutes, readings before and after the window — through a private Mosquitto
//! into a real collector; then `netmon-collector report coverage` in JSON, CSV and table must give
//! the exact shares, medians, classes and "x/y sites" figures, the BOM and the Vietnamese names.
//! The table and CSV are written to `$TMPDIR/netmon-coverage-sample/` (the sample in
//! `docs/coverage.md`).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use netmon_events::{Envelope, Event, Quality, Registration, Signal, Technology, encode_batch};
use netmon_tests::daemons::daemon_command;
use netmon_tests::{Collector, CollectorConfig, LocalBroker, Scratch, poll_until, publish};
use serde_json::Value;

use netmon_events::testing::{Boot, events_topic};

const INVENTORY: &str = r#"
[[provinces]]
id = "thanh-hoa"
name = "Thanh Hóa"
[[provinces]]
id = "hue"
name = "Huế"
[[provinces]]
id = "da-nang"
name = "Đà Nẵng"
[[communes]]
id = "cam-tu"
province = "thanh-hoa"
name = "xã Cẩm Tú"
[[communes]]
id = "kien-tho"
province = "thanh-hoa"
name = "xã Kiên Thọ"
[[communes]]
id = "que-son-trung"
province = "da-nang"
name = "xã Quế Sơn Trung"
[[communes]]
id = "phu-xuan"
province = "hue"
name = "phường Phú Xuân"
[[sites]]
id = "cam-tu-ubnd"
commune = "cam-tu"
name = "UBND xã Cẩm Tú"
kind = "commune_centre"
agents = ["cov-cam-tu-ubnd"]
[[sites]]
id = "giang-trung"
commune = "cam-tu"
parent = "cam-tu-ubnd"
name = "thôn Giang Trung"
kind = "village"
lat = 20.0612
lon = 105.4655
agents = ["cov-giang-trung"]
[[sites]]
id = "tho-lien"
commune = "kien-tho"
name = "thôn Thọ Liên"
kind = "village"
agents = ["cov-tho-lien"]
[[sites]]
id = "phuoc-chanh"
commune = "que-son-trung"
name = "thôn Phước Chánh"
kind = "village"
agents = ["cov-phuoc-chanh"]
[[sites]]
id = "phu-xuan-ubnd"
commune = "phu-xuan"
name = "UBND phường Phú Xuân"
kind = "commune_centre"
agents = ["cov-phu-xuan"]
"#;

/// A modem reading: technology, PLMN (`None`: no service, no network), quality, and the RSRP and
/// SINR (on 5G the NR SS-values; the LTE anchor is then set 10 dB worse, which the report must not
/// use).
pub fn reading(
    modem: &str,
    technology: Technology,
    plmn: Option<&str>,
    quality: Quality,
    rsrp: Option<f64>,
    sinr: Option<f64>,
) -> Event {
    let operator = plmn.map(|p| {
        match p {
            "452-01" => "MobiFone",
            "452-02" => "VinaPhone",
            _ => "Viettel",
        }
        .to_owned()
    });
    let nr = technology.is_5g();
    let mut signal = Signal {
        technology,
        plmn: plmn.map(str::to_owned),
        operator,
        registration: if plmn.is_some() {
            Registration::Home
        } else {
            Registration::Searching
        },
        ..Signal::default()
    };
    if technology == Technology::Wcdma {
        signal.rssi_dbm = Some(-85.0);
    } else if nr {
        signal.nr_rsrp_dbm = rsrp;
        signal.nr_sinr_db = sinr;
        signal.rsrp_dbm = rsrp.map(|v| v - 10.0);
        signal.sinr_db = sinr.map(|v| v - 10.0);
    } else {
        signal.rsrp_dbm = rsrp;
        signal.sinr_db = sinr;
    }
    Event::CellularSignalSampled {
        modem: modem.into(),
        signal,
        quality,
    }
}

/// (province, agent, minute, event): the whole play, minutes from the window's start.
fn play() -> Vec<(&'static str, &'static str, i64, Event)> {
    use Quality::*;
    use Technology::{Lte, Nr5gNsa, Nr5gSa, Wcdma};
    let mut out = Vec::new();
    let mut add = |province, agent, minutes: std::ops::Range<i64>, event: Event| {
        for m in minutes {
            out.push((province, agent, m, event.clone()));
        }
    };
    // thôn Giang Trung: Viettel 5G SA and VinaPhone LTE all the time, also before and after.
    let sa = reading(
        "viettel",
        Nr5gSa,
        Some("452-04"),
        Good,
        Some(-85.0),
        Some(18.0),
    );
    let lte = reading(
        "vinaphone",
        Lte,
        Some("452-02"),
        Fair,
        Some(-102.0),
        Some(4.0),
    );
    add("thanh-hoa", "cov-giang-trung", -10..130, sa);
    add("thanh-hoa", "cov-giang-trung", -10..130, lte);
    // thôn Thọ Liên: Viettel NSA for 40 min, LTE for 20, silent modem 20 min, LTE for 40.
    let nsa = reading(
        "viettel",
        Nr5gNsa,
        Some("452-04"),
        Good,
        Some(-92.0),
        Some(10.0),
    );
    let lte = reading("viettel", Lte, Some("452-04"), Good, Some(-98.0), Some(7.0));
    add("thanh-hoa", "cov-tho-lien", 0..40, nsa);
    add("thanh-hoa", "cov-tho-lien", 40..60, lte.clone());
    add(
        "thanh-hoa",
        "cov-tho-lien",
        60..61,
        Event::ModemStoppedAnswering {
            modem: "viettel".into(),
            error: "/dev/ttyUSB2: no answer to AT+CESQ within 5s".into(),
        },
    );
    add("thanh-hoa", "cov-tho-lien", 80..120, lte);
    // thôn Phước Chánh: MobiFone WCDMA 60 min, no service 30 min, LTE (poor) 30 min.
    let wcdma = reading("mobifone", Wcdma, Some("452-01"), Fair, None, None);
    let none = reading("mobifone", Technology::None, None, NoService, None, None);
    let poor = reading(
        "mobifone",
        Lte,
        Some("452-01"),
        Poor,
        Some(-115.0),
        Some(-3.0),
    );
    add("da-nang", "cov-phuoc-chanh", 0..60, wcdma);
    add("da-nang", "cov-phuoc-chanh", 60..90, none);
    add("da-nang", "cov-phuoc-chanh", 90..120, poor);
    // phường Phú Xuân: VinaPhone 5G SA excellent, Viettel NSA poor.
    let sa = reading(
        "vinaphone",
        Nr5gSa,
        Some("452-02"),
        Excellent,
        Some(-80.0),
        Some(22.0),
    );
    let nsa = reading(
        "viettel",
        Nr5gNsa,
        Some("452-04"),
        Poor,
        Some(-110.0),
        Some(1.0),
    );
    add("hue", "cov-phu-xuan", 0..120, sa);
    add("hue", "cov-phu-xuan", 0..120, nsa);
    // An agent the inventory does not list: Viettel LTE.
    let lte = reading("viettel", Lte, Some("452-04"), Good, Some(-95.0), Some(9.0));
    add("thanh-hoa", "cov-stranger", 0..120, lte);
    // UBND xã Cẩm Tú sends nothing: a site without measurements.
    out
}

/// `netmon-collector report coverage --config CONFIG ARGS`: (exit code, stdout bytes, stderr).
fn report(config: &str, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let output = daemon_command("netmon-collector")
        .args(["report", "coverage", "--config", config])
        .args(args)
        .output()
        .expect("running netmon-collector report coverage");
    (
        output.status.code(),
        output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn row<'a>(rows: &'a [Value], site: &str, plmn: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["site"] == site && r["plmn"] == plmn)
        .unwrap_or_else(|| panic!("no row for {site} {plmn} in {rows:?}"))
}

#[test]
fn coverage_report_from_a_real_collector_in_three_formats() {
    let scratch = Scratch::new("coverage").unwrap();
    let broker = LocalBroker::start("broker", &scratch).unwrap();
    let url = broker.url();
    let inventory = scratch.write("inventory.toml", INVENTORY).unwrap();
    let config = CollectorConfig {
        inventory: Some(inventory.display().to_string()),
        ..CollectorConfig::on_loopback(&url, &scratch.join("collector.db")).unwrap()
    };
    let mut collector = Collector::start("collector", config, &scratch, None).unwrap();
    collector
        .wait_subscribed("thanh-hoa", Duration::from_secs(20))
        .unwrap();

    // The window: two whole hours ending an hour ago (whole minutes, so the figures are exact).
    let now = Utc::now().timestamp() / 60 * 60;
    let start = DateTime::from_timestamp(now - 3 * 3600, 0).unwrap();
    let end = start + chrono::Duration::hours(2);
    let mut boots: std::collections::BTreeMap<&str, (&str, Boot, Vec<Envelope>)> =
        Default::default();
    let play = play();
    for (province, agent, minute, event) in &play {
        let (_, boot, events) = boots
            .entry(agent)
            .or_insert_with(|| (province, Boot::new(agent), Vec::new()));
        let mut envelope = boot.next(event.clone());
        envelope.time = start + chrono::Duration::minutes(*minute);
        events.push(envelope);
    }
    for (agent, (province, _, events)) in &boots {
        let mut events = events.clone();
        events.sort_by_key(|e| e.time);
        for chunk in events.chunks(100) {
            publish(&url, &events_topic(province, agent), &encode_batch(chunk)).unwrap();
        }
    }
    let config_path = collector.config_path.display().to_string();
    let from = start.to_rfc3339_opts(SecondsFormat::Secs, true);
    let to = end.to_rfc3339_opts(SecondsFormat::Secs, true);
    let window = ["--from", from.as_str(), "--to", to.as_str()];
    let readings_in_window = play
        .iter()
        .filter(|(_, _, m, e)| {
            (0..120).contains(m) && matches!(e, Event::CellularSignalSampled { .. })
        })
        .count() as u64;
    let json: Value = poll_until(Duration::from_secs(60), || {
        let (code, out, _) = report(&config_path, &[&window[..], &["--format", "json"]].concat());
        let value: Value = serde_json::from_slice(&out).ok()?;
        let samples: u64 = value["rows"]
            .as_array()?
            .iter()
            .filter_map(|r| r["samples"].as_u64())
            .sum();
        (code == Some(0) && samples == readings_in_window).then_some(value)
    })
    .unwrap_or_else(|| {
        panic!(
            "the report did not count {readings_in_window} readings within 60 s; log {}",
            collector.proc.log_path().display()
        )
    });

    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7, "{json:#}");
    let share = |r: &Value| {
        ["5g", "4g", "3g_2g", "none"]
            .map(|g| (r["share"][g].as_f64().unwrap() * 1000.0).round() / 10.0)
    };
    // thôn Giang Trung: 120 of its 140 readings are in the window; the NR values, not the anchor's.
    let viettel = row(rows, "giang-trung", "452-04");
    assert_eq!(share(viettel), [100.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        (
            &viettel["samples"],
            &viettel["measured_s"],
            &viettel["median_rsrp_dbm"],
            &viettel["median_sinr_db"]
        ),
        (
            &Value::from(120),
            &Value::from(7200.0),
            &Value::from(-85.0),
            &Value::from(18.0)
        )
    );
    assert_eq!(
        (&viettel["quality"], &viettel["usable_5g"]),
        (&Value::from("good"), &Value::from(true))
    );
    assert_eq!(viettel["site_name"], "thôn Giang Trung");
    assert_eq!(viettel["commune_name"], "xã Cẩm Tú");
    let vina = row(rows, "giang-trung", "452-02");
    assert_eq!(share(vina), [0.0, 100.0, 0.0, 0.0]);
    assert_eq!(
        (&vina["quality"], &vina["median_rsrp_dbm"]),
        (&Value::from("fair"), &Value::from(-102.0))
    );
    // thôn Thọ Liên: the 20 silent minutes are not measured: 40 of 100 minutes on 5G.
    let tho_lien = row(rows, "tho-lien", "452-04");
    assert_eq!(share(tho_lien), [40.0, 60.0, 0.0, 0.0]);
    assert_eq!(
        (&tho_lien["measured_s"], &tho_lien["samples"]),
        (&Value::from(6000.0), &Value::from(100))
    );
    assert_eq!(tho_lien["usable_5g"], false);
    // thôn Phước Chánh: no service is counted under MobiFone, the operator it last had.
    let phuoc_chanh = row(rows, "phuoc-chanh", "452-01");
    assert_eq!(share(phuoc_chanh), [0.0, 25.0, 50.0, 25.0]);
    assert_eq!(
        (
            &phuoc_chanh["quality"],
            &phuoc_chanh["median_rsrp_dbm"],
            &phuoc_chanh["operator"]
        ),
        (
            &Value::from("fair"),
            &Value::from(-115.0),
            &Value::from("MobiFone")
        )
    );
    assert_eq!(phuoc_chanh["site_name"], "thôn Phước Chánh");
    // phường Phú Xuân: usable 5G on VinaPhone, Viettel's 5G is poor.
    assert_eq!(row(rows, "phu-xuan-ubnd", "452-02")["usable_5g"], true);
    let poor = row(rows, "phu-xuan-ubnd", "452-04");
    assert_eq!(
        (&poor["usable_5g"], &poor["quality"]),
        (&Value::from(false), &Value::from("poor"))
    );
    let stranger = row(rows, "cov-stranger", "452-04");
    assert_eq!(
        (&stranger["in_inventory"], &stranger["province"]),
        (&Value::from(false), &Value::from("thanh-hoa"))
    );

    let summaries: Vec<(String, String, u64, u64, u64)> = json["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["level"].as_str().unwrap().to_owned(),
                s["name"].as_str().unwrap().to_owned(),
                s["sites_usable_5g"].as_u64().unwrap(),
                s["sites_measured"].as_u64().unwrap(),
                s["sites_not_measured"].as_u64().unwrap(),
            )
        })
        .collect();
    let s = |level: &str, name: &str, x, y, none| (level.to_owned(), name.to_owned(), x, y, none);
    assert_eq!(
        summaries,
        vec![
            s("commune", "xã Quế Sơn Trung", 0, 1, 0),
            s("commune", "phường Phú Xuân", 1, 1, 0),
            s("commune", "xã Cẩm Tú", 1, 1, 1),
            s("commune", "xã Kiên Thọ", 0, 1, 0),
            s("province", "Đà Nẵng", 0, 1, 0),
            s("province", "Huế", 1, 1, 0),
            s("province", "Thanh Hóa", 1, 3, 1),
        ]
    );

    // CSV for Excel: BOM, Vietnamese headers and names, one row per site and operator, then the
    // summaries.
    let (code, csv, err) = report(&config_path, &[&window[..], &["--format", "csv"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "no BOM");
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 1 + 7 + 7, "{csv}");
    assert!(
        lines[0].starts_with("cấp,tỉnh,xã/phường,điểm,mã điểm,nhà mạng,PLMN,5G %"),
        "{}",
        lines[0]
    );
    assert!(
        lines.contains(&"điểm,Đà Nẵng,xã Quế Sơn Trung,thôn Phước Chánh,phuoc-chanh,MobiFone,452-01,0.0,25.0,50.0,25.0,2.0,-115.0,-3.0,trung bình,120,không,,,,"),
        "{csv}"
    );
    assert!(
        lines.contains(&"tỉnh,Thanh Hóa,,,,,,,,,,,,,,,,1,3,33,1"),
        "{csv}"
    );

    // The terminal table, Vietnamese by default.
    let (code, table, err) = report(&config_path, &window);
    assert_eq!(code, Some(0), "{err}");
    let table = String::from_utf8(table).unwrap();
    for text in [
        "Điểm có 5G dùng được",
        "thôn Thọ Liên",
        "UBND phường Phú Xuân",
        "1/3",
        "Mất sóng %",
    ] {
        assert!(table.contains(text), "{text:?} missing from\n{table}");
    }
    // Columns line up by characters, diacritics or not.
    let header = table.lines().nth(2).unwrap();
    let column = header.chars().position(|c| c == 'Đ').unwrap();
    let site_line = table
        .lines()
        .find(|l| l.contains("thôn Phước Chánh"))
        .unwrap();
    assert_eq!(
        site_line.chars().position(|c| c == 't'),
        Some(column),
        "{table}"
    );

    // One commune, in English.
    let (code, table_en, err) = report(
        &config_path,
        &[&window[..], &["--commune", "xã Kiên Thọ", "--lang", "en"]].concat(),
    );
    assert_eq!(code, Some(0), "{err}");
    let table_en = String::from_utf8(table_en).unwrap();
    assert!(table_en.contains("Sites with usable 5G"), "{table_en}");
    assert!(
        table_en.contains("thôn Thọ Liên") && !table_en.contains("thôn Giang Trung"),
        "{table_en}"
    );
    // One province, by its Vietnamese name.
    let (code, hue, err) = report(
        &config_path,
        &[&window[..], &["--province", "Huế", "--format", "json"]].concat(),
    );
    assert_eq!(code, Some(0), "{err}");
    let hue: Value = serde_json::from_slice(&hue).unwrap();
    let sites: Vec<&str> = hue["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["site_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        sites,
        ["UBND phường Phú Xuân", "UBND phường Phú Xuân"],
        "{hue:#}"
    );
    assert_eq!(hue["summaries"].as_array().unwrap().len(), 2, "{hue:#}");
    // A bad time is a usage error.
    let (code, _, err) = report(&config_path, &["--from", "1/11/2026"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("1/11/2026"), "{err}");

    let sample = std::env::temp_dir().join("netmon-coverage-sample");
    std::fs::create_dir_all(&sample).unwrap();
    std::fs::write(sample.join("report.txt"), &table).unwrap();
    std::fs::write(sample.join("report.csv"), &csv).unwrap();
    drop(collector);
}
