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
