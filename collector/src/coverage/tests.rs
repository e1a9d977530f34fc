//! Events in, figures out: one table of timelines with the exact seconds, medians and classes
//! the report must give, then the commune and province summaries.
#![allow(clippy::unwrap_used)]

use chrono::Duration;
use netmon_events::Quality;

use super::*;
use crate::store::Origin;
use crate::store::testkit::{base, stored};

/// A reading of `modem` at `secs` after the base time: technology, PLMN (`-` for none), quality,
/// RSRP and SINR (`0` for absent). On 5G the values are the NR SS-values and the LTE anchor's
/// values are set 10 dB worse, so that a test sees which were used.
fn reading(modem: &str, tech: &str, plmn: &str, quality: &str, rsrp: i32, sinr: i32) -> String {
    let operator = match plmn {
        "452-01" => "MobiFone",
        "452-02" => "VinaPhone",
        "452-04" => "Viettel",
        _ => "",
    };
    let mut json = format!(
        r#""type":"cellular_signal_sampled","modem":"{modem}","technology":"{tech}","quality":"{quality}""#
    );
    if tech == "none" {
        json += r#","registration":"searching""#;
    } else {
        json += r#","registration":"home""#;
    }
    if plmn != "-" {
        json += &format!(r#","plmn":"{plmn}","operator":"{operator}""#);
    }
    let nr = tech.starts_with("nr5g");
    if rsrp != 0 {
        if nr {
            json += &format!(r#","nr_rsrp_dbm":{rsrp},"rsrp_dbm":{}"#, rsrp - 10);
        } else {
            json += &format!(r#","rsrp_dbm":{rsrp}"#);
        }
    }
    if sinr != 0 {
        if nr {
            json += &format!(r#","nr_sinr_db":{sinr},"sinr_db":{}"#, sinr - 10);
        } else {
            json += &format!(r#","sinr_db":{sinr}"#);
        }
    }
    json
}

fn stopped(modem: &str) -> String {
    format!(r#""type":"modem_stopped_answering","modem":"{modem}","error":"no answer""#)
}

fn answers(modem: &str) -> String {
    format!(r#""type":"modem_answers_again","modem":"{modem}","silent_for_ms":1000"#)
}

fn started() -> String {
    r#""type":"agent_started","version":"0.1.0","targets":1"#.into()
}

/// `event` (a reading) every `every` seconds from `first` to `last` (inclusive).
fn every(first: i64, last: i64, every: usize, event: &str) -> Timeline {
    (first..=last)
        .step_by(every)
        .map(|t| ("agent-a", t, event.to_owned()))
        .collect()
}

fn fold(
    events: &[(&str, i64, String)],
    from: i64,
    to: i64,
    inventory: Option<&Inventory>,
) -> Report {
    let scope = Scope {
        from: base() + Duration::seconds(from),
        to: base() + Duration::seconds(to),
        province: None,
        commune: None,
    };
    let mut coverage = Coverage::new(scope, inventory);
    for (i, (agent, secs, event)) in events.iter().enumerate() {
        let mut e = stored(i as i64 + 1, Origin::Agent, agent, i as u64 + 1, event);
        e.time = base() + Duration::seconds(*secs);
        coverage.apply(&e);
    }
    coverage.finish()
}

/// What a row must say: PLMN, seconds on 5G/4G/3G-2G/none, samples, medians, class, usable 5G.
#[derive(Debug, PartialEq)]
struct Expect {
    plmn: &'static str,
    secs: [i64; 4],
    samples: u64,
    rsrp: Option<f64>,
    sinr: Option<f64>,
    quality: Option<Quality>,
    usable_5g: bool,
}

/// The medians, class and usable 5G of a row.
type Figures = (Option<f64>, Option<f64>, Option<Quality>, bool);
/// The figures of the test's 5G NSA, LTE and no-service readings.
const NSA: Figures = (Some(-90.0), Some(12.0), Some(Quality::Good), true);
const LTE: Figures = (Some(-100.0), Some(5.0), Some(Quality::Fair), false);
const NONE: Figures = (None, None, Some(Quality::NoService), false);

/// An expected row: PLMN, seconds on 5G/4G/3G-2G/none, samples and the figures.
fn x(plmn: &'static str, secs: [i64; 4], samples: u64, figures: Figures) -> Expect {
    let (rsrp, sinr, quality, usable_5g) = figures;
    Expect {
        plmn,
        secs,
        samples,
        rsrp,
        sinr,
        quality,
        usable_5g,
    }
}

fn observed(report: &Report) -> Vec<Expect> {
    report
        .rows
        .iter()
        .map(|r| Expect {
            plmn: Box::leak(r.plmn.clone().into_boxed_str()),
            secs: r.tally.by_generation.map(|ms| ms / 1000),
            samples: r.tally.samples,
            rsrp: r.tally.median_rsrp(),
            sinr: r.tally.median_sinr(),
            quality: r.tally.quality(),
            usable_5g: r.tally.has_usable_5g(),
        })
        .collect()
}

/// Events (agent, seconds, event), window start and end in seconds, the rows expected.
type Case = (&'static str, Timeline, i64, i64, Vec<Expect>);
type Timeline = Vec<(&'static str, i64, String)>;

#[test]
fn timelines_give_exact_figures() {
    let nsa = reading("viettel", "nr5g_nsa", "452-04", "good", -90, 12);
    let lte = reading("vina", "lte", "452-02", "fair", -100, 5);
    let none = reading("vina", "none", "-", "no_service", 0, 0);
    let cases: Vec<Case> = vec![
        (
            "readings every minute: each covers the minute after it, the last up to the window's end",
            every(0, 540, 60, &nsa),
            0,
            600,
            vec![x("452-04", [600, 0, 0, 0], 10, NSA)],
        ),
        (
            "a 13-minute gap: the reading before it covers 3 × the usual gap (3 min), the rest is not measured",
            [every(0, 120, 60, &nsa), every(900, 900, 60, &nsa)].concat(),
            0,
            960,
            vec![x("452-04", [60 + 60 + 180 + 60, 0, 0, 0], 4, NSA)],
        ),
        (
            "the first gap of a stream is bounded by 10 minutes",
            [every(0, 0, 60, &nsa), every(3600, 3600, 60, &nsa)].concat(),
            0,
            3660,
            vec![x("452-04", [600 + 60, 0, 0, 0], 2, NSA)],
        ),
        (
            "a modem that stops answering: not measured until its next reading, never no service",
            vec![
                ("agent-a", 0, lte.clone()),
                ("agent-a", 60, lte.clone()),
                ("agent-a", 120, lte.clone()),
                ("agent-a", 150, stopped("vina")),
                ("agent-a", 400, answers("vina")),
                ("agent-a", 420, lte.clone()),
                ("agent-a", 480, lte.clone()),
            ],
            0,
            540,
            vec![x("452-02", [0, 60 + 60 + 30 + 60 + 60, 0, 0], 5, LTE)],
        ),
        (
            "an agent restart ends its modems' last readings",
            vec![
                ("agent-a", 0, lte.clone()),
                ("agent-a", 60, lte.clone()),
                ("agent-a", 90, started()),
                ("agent-a", 300, lte.clone()),
            ],
            0,
            360,
            vec![x("452-02", [0, 60 + 30 + 60, 0, 0], 3, LTE)],
        ),
        (
            "no service belongs to the operator the modem last had; half the time fair is a fair class",
            vec![
                ("agent-a", 0, lte.clone()),
                ("agent-a", 60, none.clone()),
                ("agent-a", 120, none.clone()),
                ("agent-a", 180, lte.clone()),
            ],
            0,
            240,
            vec![x("452-02", [0, 120, 0, 120], 4, LTE)],
        ),
        (
            "no service before any PLMN is unknown",
            every(0, 60, 60, &none),
            0,
            120,
            vec![x("unknown", [0, 0, 0, 120], 2, NONE)],
        ),
        (
            "two modems at one site: one row per operator",
            [every(0, 120, 60, &nsa), every(30, 150, 60, &lte)].concat(),
            0,
            180,
            vec![
                x("452-02", [0, 150, 0, 0], 3, LTE),
                x("452-04", [180, 0, 0, 0], 3, NSA),
            ],
        ),
        (
            "the window clips: readings before it count only their time inside, readings after it not at all",
            every(-300, 300, 60, &nsa),
            0,
            180,
            vec![x("452-04", [180, 0, 0, 0], 3, NSA)],
        ),
    ];
    for (name, events, from, to, expected) in cases {
        let events: Vec<(&str, i64, String)> = events
            .into_iter()
            .map(|(_, t, e)| ("agent-a", t, e))
            .collect();
        let report = fold(&events, from, to, None);
        assert_eq!(observed(&report), expected, "{name}");
        // Store order need not be time order within a stream: the same events reversed in
        // pairs give the same figures.
        let mut shuffled = events.clone();
        for pair in shuffled.chunks_mut(2) {
            pair.reverse();
        }
        assert_eq!(
            observed(&fold(&shuffled, from, to, None)),
            expected,
            "{name}, reordered"
        );
    }
}

#[test]
fn medians_use_the_nr_values_on_5g_and_the_quality_class_is_the_median_over_time() {
    let events = vec![
        (
            "agent-a",
            0,
            reading("m", "nr5g_sa", "452-04", "excellent", -80, 20),
        ),
        (
            "agent-a",
            60,
            reading("m", "nr5g_sa", "452-04", "good", -92, 9),
        ),
        (
            "agent-a",
            120,
            reading("m", "lte", "452-04", "poor", -115, -2),
        ),
        (
            "agent-a",
            180,
            reading("m", "lte", "452-04", "poor", -117, -3),
        ),
        (
            "agent-a",
            240,
            reading("m", "nr5g_sa", "452-04", "fair", -101, 3),
        ),
    ];
    let report = fold(&events, 0, 300, None);
    let tally = &report.rows[0].tally;
    // RSRP of the five readings: -80, -92, -101 (NR) and -115, -117 (LTE); median -101.
    assert_eq!(tally.median_rsrp(), Some(-101.0));
    assert_eq!(tally.median_sinr(), Some(3.0));
    // 60 s excellent, 60 s good, 60 s fair, 120 s poor: at least half the time fair or better.
    assert_eq!(tally.quality(), Some(Quality::Fair));
    assert_eq!(tally.by_generation, [180_000, 120_000, 0, 0]);
    // 180 of 300 s on 5G fair or better: usable.
    assert!(tally.has_usable_5g());
    let poor_5g = vec![
        (
            "agent-a",
            0,
            reading("m", "nr5g_sa", "452-04", "poor", -118, -5),
        ),
        (
            "agent-a",
            60,
            reading("m", "nr5g_sa", "452-04", "poor", -118, -5),
        ),
    ];
    let report = fold(&poor_5g, 0, 120, None);
    assert!(
        !report.rows[0].tally.has_usable_5g(),
        "5G of poor quality is not usable"
    );
}

const INVENTORY: &str = r#"
[[provinces]]
id = "thanh-hoa"
name = "Thanh Hóa"
[[communes]]
id = "cam-tu"
province = "thanh-hoa"
name = "xã Cẩm Tú"
[[communes]]
id = "kien-tho"
province = "thanh-hoa"
name = "xã Kiên Thọ"
[[sites]]
id = "giang-trung"
commune = "cam-tu"
name = "thôn Giang Trung"
agents = ["agent-a"]
[[sites]]
id = "cam-tu-ubnd"
commune = "cam-tu"
name = "UBND xã Cẩm Tú"
agents = ["agent-b"]
[[sites]]
id = "tho-lien"
commune = "kien-tho"
name = "thôn Thọ Liên"
agents = ["agent-c"]
[[sites]]
id = "kien-tho-ubnd"
commune = "kien-tho"
name = "UBND xã Kiên Thọ"
agents = ["agent-d"]
"#;

#[test]
fn communes_and_provinces_count_sites_with_usable_5g_and_sites_without_measurements() {
    let inventory = crate::inventory::parse(INVENTORY, "inv.toml").unwrap();
    let sa = reading("viettel", "nr5g_sa", "452-04", "good", -85, 15);
    let lte = reading("mobi", "lte", "452-01", "good", -95, 10);
    let mut events = Vec::new();
    for t in (0..600).step_by(60) {
        events.push(("agent-a", t, sa.clone())); // Giang Trung: usable 5G
        events.push(("agent-a", t, lte.clone()));
        events.push(("agent-b", t, lte.clone())); // UBND Cẩm Tú: 4G only
        events.push(("agent-c", t, sa.clone())); // Thọ Liên: usable 5G
        events.push(("stranger", t, lte.clone())); // not in the inventory
    }
    // agent-d (UBND xã Kiên Thọ) sends nothing: unmeasured.
    let report = fold(&events, 0, 600, Some(&inventory));
    let rows: Vec<(String, Option<String>, String)> = report
        .rows
        .iter()
        .map(|r| (r.site_name.clone(), r.commune_name.clone(), r.plmn.clone()))
        .collect();
    let name = |s: &str| s.to_owned();
    assert_eq!(
        rows,
        vec![
            (name("stranger"), None, name("452-01")),
            (
                name("UBND xã Cẩm Tú"),
                Some(name("xã Cẩm Tú")),
                name("452-01")
            ),
            (
                name("thôn Giang Trung"),
                Some(name("xã Cẩm Tú")),
                name("452-01")
            ),
            (
                name("thôn Giang Trung"),
                Some(name("xã Cẩm Tú")),
                name("452-04")
            ),
            (
                name("thôn Thọ Liên"),
                Some(name("xã Kiên Thọ")),
                name("452-04")
            ),
        ]
    );
    assert_eq!(report.rows[2].tally.operator.as_deref(), Some("MobiFone"));
    let summaries: Vec<(Level, &str, &str, usize, usize, usize)> = report
        .summaries
        .iter()
        .map(|s| {
            (
                s.level,
                s.id.as_str(),
                s.name.as_str(),
                s.usable_5g,
                s.measured,
                s.unmeasured,
            )
        })
        .collect();
    assert_eq!(
        summaries,
        vec![
            (Level::Commune, "cam-tu", "xã Cẩm Tú", 1, 2, 0),
            (Level::Commune, "kien-tho", "xã Kiên Thọ", 1, 1, 1),
            (Level::Province, "thanh-hoa", "Thanh Hóa", 2, 4, 1),
        ]
    );
    assert_eq!(report.summaries[0].usable_pct(), Some(50.0));

    // One commune only: the others' sites and the unlisted agent are out of scope.
    let scope = Scope {
        from: base(),
        to: base() + Duration::seconds(600),
        province: None,
        commune: Some("kien-tho".into()),
    };
    let mut coverage = Coverage::new(scope, Some(&inventory));
    for (i, (agent, secs, event)) in events.iter().enumerate() {
        let mut e = stored(i as i64 + 1, Origin::Agent, agent, i as u64 + 1, event);
        e.time = base() + Duration::seconds(*secs);
        coverage.apply(&e);
    }
    let report = coverage.finish();
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].site_name, "thôn Thọ Liên");
    assert_eq!(report.summaries.len(), 2);
    assert_eq!(
        (report.summaries[1].measured, report.summaries[1].unmeasured),
        (1, 1)
    );
}
