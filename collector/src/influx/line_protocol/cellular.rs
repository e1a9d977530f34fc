//! Pure: the cellular events' points (measurements `cellular`, `cellular_change`, `modem`; the
//! table in `lines.rs` and `dashboards/README.md`).

use influxdb_line_protocol::builder::{AfterField, AfterMeasurement, LineProtocolBuilder};
use netmon_events::{Event, Generation, Quality, Signal, Technology};

use super::{Point, name};

type Tags = LineProtocolBuilder<Vec<u8>, AfterMeasurement>;
type Fields = LineProtocolBuilder<Vec<u8>, AfterField>;

/// The tag value of an absent PLMN or operator.
const UNKNOWN: &str = "unknown";

/// The point of a cellular or modem event; `None` for other events. `tags(measurement)` starts
/// a line with the common tags; `place` appends `lat`/`lon` when the site has them.
pub(super) fn point(
    event: &Event,
    tags: impl Fn(&str) -> Tags,
    place: impl Fn(Fields) -> Fields,
    ts: i64,
) -> Option<Point> {
    let line = match event {
        Event::CellularSignalSampled {
            modem,
            signal,
            quality,
        } => place(sample(
            network(
                tags("cellular")
                    .tag("modem", modem)
                    .tag("technology", signal.technology.as_str()),
                signal.plmn.as_deref(),
                signal.operator.as_deref(),
            )
            .tag("quality", quality.as_str()),
            signal,
            *quality,
        )),
        Event::CellularTechnologyChanged {
            modem,
            from,
            to,
            plmn,
            operator,
        } => network(
            change(tags("cellular_change"), modem, "technology"),
            plmn.as_deref(),
            operator.as_deref(),
        )
        .field("from", from.as_str())
        .field("to", to.as_str())
        .field("generation", generation(*to)),
        Event::CellularOperatorChanged {
            modem,
            from_plmn,
            to_plmn,
            operator,
        } => network(
            change(tags("cellular_change"), modem, "operator"),
            to_plmn.as_deref(),
            operator.as_deref(),
        )
        .field("from_plmn", from_plmn.as_deref().unwrap_or(UNKNOWN))
        .field("to_plmn", to_plmn.as_deref().unwrap_or(UNKNOWN)),
        Event::CellularServiceLost {
            modem,
            last_technology,
            plmn,
            operator,
            registration,
        } => network(
            change(tags("cellular_change"), modem, "service_lost"),
            plmn.as_deref(),
            operator.as_deref(),
        )
        .field("in_service", 0i64)
        .field("last_technology", last_technology.as_str())
        .field("registration", registration.as_str()),
        Event::CellularServiceRestored {
            modem,
            technology,
            plmn,
            operator,
            lost_for_ms,
        } => network(
            change(tags("cellular_change"), modem, "service_restored"),
            plmn.as_deref(),
            operator.as_deref(),
        )
        .field("in_service", 1i64)
        .field("technology", technology.as_str())
        .field("lost_for_s", *lost_for_ms as f64 / 1000.0),
        Event::ModemStoppedAnswering { modem, error } => tags("modem")
            .tag("modem", modem)
            .field("answering", 0i64)
            .field("error", error.as_str()),
        Event::ModemAnswersAgain {
            modem,
            silent_for_ms,
        } => tags("modem")
            .tag("modem", modem)
            .field("answering", 1i64)
            .field("silent_for_s", *silent_for_ms as f64 / 1000.0),
        _ => return None,
    };
    Some(line.timestamp(ts).close_line().build())
}

fn change(line: Tags, modem: &str, kind: &str) -> Tags {
    line.tag("modem", modem).tag("change", kind)
}

/// Tags `plmn` and `operator` (`unknown` when absent; the operator falls back to the PLMN).
fn network(line: Tags, plmn: Option<&str>, operator: Option<&str>) -> Tags {
    line.tag("plmn", plmn.unwrap_or(UNKNOWN))
        .tag("operator", operator.or(plmn).unwrap_or(UNKNOWN))
}

/// 5, 4, 3 (3G or 2G) or 0 (no service).
fn generation(technology: Technology) -> i64 {
    match technology.generation() {
        Generation::G5 => 5,
        Generation::G4 => 4,
        Generation::G3G2 => 3,
        Generation::None => 0,
    }
}

/// The reading's fields: the values it has, `generation`, `in_service`, one 0/1 field per
/// generation (their mean over time is the share), `usable_5g` (5G with quality fair or better), `rsrp`/`sinr` as the coverage report uses them
/// (NR SS-values on 5G, else the LTE values), band, ARFCN and cell id when known.
fn sample(line: Tags, signal: &Signal, quality: Quality) -> Fields {
    let in_service = signal.in_service();
    let generation = if in_service {
        generation(signal.technology)
    } else {
        0
    };
    let mut line = line
        .field("generation", generation)
        .field("in_service", i64::from(in_service));
    for (key, g) in [("on_5g", 5), ("on_4g", 4), ("on_3g_2g", 3), ("on_none", 0)] {
        line = line.field(key, i64::from(generation == g));
    }
    line = line.field(
        "usable_5g",
        i64::from(generation == 5 && quality.is_usable()),
    );
    let nr = signal.technology.is_5g();
    let best_rsrp = if nr { signal.nr_rsrp_dbm } else { None }.or(signal.rsrp_dbm);
    let best_sinr = if nr { signal.nr_sinr_db } else { None }.or(signal.sinr_db);
    for (key, value) in [
        ("rsrp_dbm", signal.rsrp_dbm),
        ("rsrq_db", signal.rsrq_db),
        ("sinr_db", signal.sinr_db),
        ("rssi_dbm", signal.rssi_dbm),
        ("nr_rsrp_dbm", signal.nr_rsrp_dbm),
        ("nr_rsrq_db", signal.nr_rsrq_db),
        ("nr_sinr_db", signal.nr_sinr_db),
        ("rsrp", best_rsrp.filter(|_| in_service)),
        ("sinr", best_sinr.filter(|_| in_service)),
    ] {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            line = line.field(key, v);
        }
    }
    if let Some(band) = &signal.band {
        line = line.field("band", band.as_str());
    }
    if let Some(arfcn) = signal.arfcn {
        line = line.field("arfcn", i64::from(arfcn));
    }
    if let Some(cell) = &signal.cell_id {
        line = line.field("cell_id", cell.as_str());
    }
    line.field("registration", name(&signal.registration).as_str())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{line, ts};

    #[test]
    fn cellular_events_have_their_exact_lines() {
        let t = ts();
        let tags = "province=thanh-hoa,agent=lang-a";
        let table = [
            (
                r#""type":"cellular_signal_sampled","modem":"viettel","technology":"nr5g_nsa","plmn":"452-04","operator":"Viettel","registration":"home","rsrp_dbm":-95.0,"rsrq_db":-11.0,"sinr_db":8.0,"nr_rsrp_dbm":-88.0,"nr_rsrq_db":-11.0,"nr_sinr_db":14.5,"band":"B3+n41","arfcn":1300,"cell_id":"1A2D001","quality":"good""#,
                format!(
                    "cellular,{tags},modem=viettel,technology=nr5g_nsa,plmn=452-04,operator=Viettel,quality=good generation=5i,in_service=1i,on_5g=1i,on_4g=0i,on_3g_2g=0i,on_none=0i,usable_5g=1i,rsrp_dbm=-95,rsrq_db=-11,sinr_db=8,nr_rsrp_dbm=-88,nr_rsrq_db=-11,nr_sinr_db=14.5,rsrp=-88,sinr=14.5,band=\"B3+n41\",arfcn=1300i,cell_id=\"1A2D001\",registration=\"home\" {t}\n"
                ),
            ),
            (
                r#""type":"cellular_signal_sampled","modem":"mobi","technology":"wcdma","plmn":"452-01","operator":"MobiFone","registration":"roaming","rssi_dbm":-77.0,"quality":"fair""#,
                format!(
                    "cellular,{tags},modem=mobi,technology=wcdma,plmn=452-01,operator=MobiFone,quality=fair generation=3i,in_service=1i,on_5g=0i,on_4g=0i,on_3g_2g=1i,on_none=0i,usable_5g=0i,rssi_dbm=-77,registration=\"roaming\" {t}\n"
                ),
            ),
            (
                r#""type":"cellular_signal_sampled","modem":"vinaphone","technology":"none","registration":"searching","quality":"no_service""#,
                format!(
                    "cellular,{tags},modem=vinaphone,technology=none,plmn=unknown,operator=unknown,quality=no_service generation=0i,in_service=0i,on_5g=0i,on_4g=0i,on_3g_2g=0i,on_none=1i,usable_5g=0i,registration=\"searching\" {t}\n"
                ),
            ),
            (
                r#""type":"cellular_technology_changed","modem":"viettel","from":"nr5g_nsa","to":"lte","plmn":"452-04","operator":"Viettel""#,
                format!(
                    "cellular_change,{tags},modem=viettel,change=technology,plmn=452-04,operator=Viettel from=\"nr5g_nsa\",to=\"lte\",generation=4i {t}\n"
                ),
            ),
            (
                r#""type":"cellular_operator_changed","modem":"viettel","from_plmn":"452-04","to_plmn":"452-02","operator":"VinaPhone""#,
                format!(
                    "cellular_change,{tags},modem=viettel,change=operator,plmn=452-02,operator=VinaPhone from_plmn=\"452-04\",to_plmn=\"452-02\" {t}\n"
                ),
            ),
            (
                r#""type":"cellular_service_lost","modem":"vinaphone","last_technology":"lte","plmn":"452-02","registration":"searching""#,
                format!(
                    "cellular_change,{tags},modem=vinaphone,change=service_lost,plmn=452-02,operator=452-02 in_service=0i,last_technology=\"lte\",registration=\"searching\" {t}\n"
                ),
            ),
            (
                r#""type":"cellular_service_restored","modem":"vinaphone","technology":"lte","plmn":"452-02","operator":"VinaPhone","lost_for_ms":600000"#,
                format!(
                    "cellular_change,{tags},modem=vinaphone,change=service_restored,plmn=452-02,operator=VinaPhone in_service=1i,technology=\"lte\",lost_for_s=600 {t}\n"
                ),
            ),
            (
                r#""type":"modem_stopped_answering","modem":"mobifone","error":"/dev/ttyUSB2: no answer""#,
                format!(
                    "modem,{tags},modem=mobifone answering=0i,error=\"/dev/ttyUSB2: no answer\" {t}\n"
                ),
            ),
            (
                r#""type":"modem_answers_again","modem":"mobifone","silent_for_ms":300000"#,
                format!("modem,{tags},modem=mobifone answering=1i,silent_for_s=300 {t}\n"),
            ),
        ];
        for (event, expected) in table {
            assert_eq!(line(event), expected, "for {event}");
        }
    }
}
