//! Pure: the probe events' points, all in measurement `probe` (the table in `mod.rs` and
//! `dashboards/README.md`). An old agent's `probe_round_completed` and a new agent's
//! `probe_window_completed` (ADR 14) share the measurement, its tags and the fields they have
//! in common, so one query serves a fleet that upgrades over months; the window-only fields
//! (percentiles, rounds, down time) are simply absent on round points.

use influxdb_line_protocol::builder::{AfterField, AfterMeasurement, LineProtocolBuilder};
use netmon_events::{Event, RTT_PERCENTILES};

use super::{Point, clamp, target_tags};

type Tags = LineProtocolBuilder<Vec<u8>, AfterMeasurement>;
type Fields = LineProtocolBuilder<Vec<u8>, AfterField>;

/// The fields of a window's `rtt_pct_ms`, in its order: the 10th, 20th … 90th percentile
/// (`rtt_p50_ms` is the median).
pub const PERCENTILE_FIELDS: [&str; RTT_PERCENTILES] = [
    "rtt_p10_ms",
    "rtt_p20_ms",
    "rtt_p30_ms",
    "rtt_p40_ms",
    "rtt_p50_ms",
    "rtt_p60_ms",
    "rtt_p70_ms",
    "rtt_p80_ms",
    "rtt_p90_ms",
];

/// The `probe` point of a round or a window; `None` for other events. `line` is the measurement
/// with the common tags.
pub(super) fn point(event: &Event, line: Tags, ts: i64) -> Option<Point> {
    let line = match event {
        Event::ProbeRoundCompleted {
            target,
            sent,
            received,
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            rtt_mdev_ms,
            loss_pct,
        } => echoes(
            target_tags(line, target),
            *sent,
            *received,
            *loss_pct,
            [rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_mdev_ms],
        ),
        Event::ProbeWindowCompleted {
            target,
            window_ms,
            rounds,
            failed_rounds,
            longest_failed_run,
            down_ms,
            sent,
            received,
            loss_pct,
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            rtt_mdev_ms,
            rtt_pct_ms,
        } => {
            let mut line = echoes(
                target_tags(line, target),
                *sent,
                *received,
                *loss_pct,
                [rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_mdev_ms],
            );
            if *received > 0 {
                for (key, ms) in PERCENTILE_FIELDS.iter().zip(rtt_pct_ms.iter().flatten()) {
                    if ms.is_finite() {
                        line = line.field(key, *ms);
                    }
                }
            }
            line.field("window_ms", clamp(*window_ms))
                .field("rounds", i64::from(*rounds))
                .field("failed_rounds", i64::from(*failed_rounds))
                .field("longest_failed_run", i64::from(*longest_failed_run))
                .field("down_ms", clamp(*down_ms))
        }
        _ => return None,
    };
    Some(line.timestamp(ts).close_line().build())
}

/// The fields rounds and windows share: echoes sent and received, loss, and the RTTs (only
/// when something was received, finite values only).
fn echoes(line: Tags, sent: u32, received: u32, loss_pct: f64, rtts: [&Option<f64>; 4]) -> Fields {
    let mut line = line
        .field("sent", i64::from(sent))
        .field("received", i64::from(received))
        .field("loss_pct", loss_pct);
    if received > 0 {
        for (key, value) in ["rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_mdev_ms"]
            .into_iter()
            .zip(rtts)
        {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                line = line.field(key, v);
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::tests::{line, ts};

    const TARGET: &str =
        r#""target":{"name":"UBND xã Kiên Thọ","address":"10.30.0.1","role":"commune"}"#;
    const TAGS: &str = "probe,province=thanh-hoa,agent=lang-a,target=UBND\\ xã\\ Kiên\\ Thọ,address=10.30.0.1,role=commune";

    /// A round and a window of the same target have the same tags: one series, so an upgraded
    /// agent's line in a dashboard goes on where its rounds stopped.
    #[test]
    fn rounds_and_windows_have_their_exact_lines() {
        let t = ts();
        let table = [
            (
                format!(
                    r#""type":"probe_round_completed",{TARGET},"sent":3,"received":2,"rtt_min_ms":1.5,"rtt_avg_ms":2.25,"rtt_max_ms":3.0,"rtt_mdev_ms":0.5,"loss_pct":33.3"#
                ),
                format!(
                    "{TAGS} sent=3i,received=2i,loss_pct=33.3,rtt_min_ms=1.5,rtt_avg_ms=2.25,rtt_max_ms=3,rtt_mdev_ms=0.5 {t}\n"
                ),
            ),
            (
                format!(
                    r#""type":"probe_round_completed",{TARGET},"sent":3,"received":0,"loss_pct":100.0"#
                ),
                format!("{TAGS} sent=3i,received=0i,loss_pct=100 {t}\n"),
            ),
            (
                format!(
                    r#""type":"probe_window_completed",{TARGET},"window_ms":60000,"rounds":60,"failed_rounds":4,"longest_failed_run":3,"down_ms":0,"sent":180,"received":170,"loss_pct":5.56,"rtt_min_ms":11.2,"rtt_avg_ms":14.83,"rtt_max_ms":96.4,"rtt_mdev_ms":3.07,"rtt_pct_ms":[11.9,12.3,12.8,13.1,13.5,14.0,14.6,15.9,19.25]"#
                ),
                format!(
                    "{TAGS} sent=180i,received=170i,loss_pct=5.56,rtt_min_ms=11.2,rtt_avg_ms=14.83,rtt_max_ms=96.4,rtt_mdev_ms=3.07,rtt_p10_ms=11.9,rtt_p20_ms=12.3,rtt_p30_ms=12.8,rtt_p40_ms=13.1,rtt_p50_ms=13.5,rtt_p60_ms=14,rtt_p70_ms=14.6,rtt_p80_ms=15.9,rtt_p90_ms=19.25,window_ms=60000i,rounds=60i,failed_rounds=4i,longest_failed_run=3i,down_ms=0i {t}\n"
                ),
            ),
            (
                // Nothing received: no RTT field at all, the link held down for 48 s of it.
                format!(
                    r#""type":"probe_window_completed",{TARGET},"window_ms":60000,"rounds":60,"failed_rounds":60,"longest_failed_run":60,"down_ms":48000,"sent":180,"received":0,"loss_pct":100.0"#
                ),
                format!(
                    "{TAGS} sent=180i,received=0i,loss_pct=100,window_ms=60000i,rounds=60i,failed_rounds=60i,longest_failed_run=60i,down_ms=48000i {t}\n"
                ),
            ),
        ];
        for (event, expected) in table {
            assert_eq!(line(&event), expected, "for {event}");
        }
    }
}
