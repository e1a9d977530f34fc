//! `netmon-agent snmp`: what each configured device says right now — two polls `sample` apart,
//! the interfaces with their rates, utilisation, errors and status, the device's uptime — the
//! first thing an officer runs when a commune says "the network is slow". Needs no broker and
//! touches no journal. Text in Vietnamese (default) or English, or one JSON object per device
//! per line: `{"device":{…},"uptime_s":…,"interfaces":[<interface_counters_sampled bodies>],
//! "missing":[…],"error":null|"…"}`.

use std::fmt::Write as _;
use std::time::Duration;

use netmon_events::{Device, Event};

use crate::config::{Config, SnmpDevice};
use crate::output::Lang;
use crate::recorder::Clock;
use crate::snmp::device::DeviceState;
use crate::snmp::poller::read;
use crate::snmp::session::Client;

/// What one device said.
#[derive(Debug, Clone)]
pub struct DeviceReport {
    pub device: Device,
    pub uptime_s: Option<u64>,
    /// `interface_counters_sampled` events of the second poll.
    pub samples: Vec<Event>,
    /// Configured interfaces the device does not have.
    pub missing: Vec<String>,
    /// Why the device could not be read.
    pub error: Option<String>,
}

/// Polls every device (or the one at `only`, as configured) twice, `sample` apart, all devices
/// at once.
pub async fn read_now(config: &Config, only: Option<&str>, sample: Duration) -> Vec<DeviceReport> {
    let clock = Clock::start();
    let devices: Vec<&SnmpDevice> = config
        .snmp
        .devices
        .iter()
        .filter(|d| {
            only.is_none_or(|a| {
                d.address == a || d.socket.to_string() == a || d.socket.ip().to_string() == a
            })
        })
        .collect();
    let mut reads = tokio::task::JoinSet::new();
    for (order, device) in devices.into_iter().enumerate() {
        let device = device.clone();
        let mut client = Client::new(&device, &config.snmp);
        reads.spawn(async move {
            (
                order,
                read_device(&device, &mut client, &clock, sample).await,
            )
        });
    }
    let mut reports = Vec::new();
    while let Some(done) = reads.join_next().await {
        if let Ok(report) = done {
            reports.push(report);
        }
    }
    reports.sort_by_key(|(order, _)| *order);
    reports.into_iter().map(|(_, r)| r).collect()
}

async fn read_device(
    device: &SnmpDevice,
    client: &mut Client,
    clock: &Clock,
    sample: Duration,
) -> DeviceReport {
    let mut state = DeviceState::new(device.address.clone(), device.interfaces.clone());
    let mut report = DeviceReport {
        device: state.device().clone(),
        uptime_s: None,
        samples: Vec::new(),
        missing: Vec::new(),
        error: None,
    };
    for round in 0..2 {
        if round == 1 {
            tokio::time::sleep(sample).await;
        }
        match read(client, clock).await {
            Ok((snapshot, mono_ms)) => {
                state.observe(&snapshot, mono_ms);
                report.uptime_s = snapshot.uptime_ticks.map(|t| u64::from(t) / 100);
                report.missing = state.missing(&snapshot);
                // A window of the two polls: the rates over `sample`.
                report.samples = state.report();
            }
            Err(e) => {
                report.error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    report.device = state.device().clone();
    report
}

/// One JSON object per device per line.
pub fn json(reports: &[DeviceReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let line = serde_json::json!({
            "device": r.device,
            "uptime_s": r.uptime_s,
            "interfaces": r.samples,
            "missing": r.missing,
            "error": r.error,
        });
        let _ = writeln!(out, "{line}");
    }
    out
}

/// A table per device.
pub fn text(reports: &[DeviceReport], sample: Duration, lang: Lang) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str(lang.pick(
            "Không có thiết bị SNMP nào trong cấu hình ([[snmp.devices]]).\n",
            "No SNMP devices configured ([[snmp.devices]]).\n",
        ));
    }
    for r in reports {
        let name = r
            .device
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {}{name}",
            lang.pick("Thiết bị", "Device"),
            r.device.address
        );
        if let Some(error) = &r.error {
            let _ = writeln!(out, "  {}: {error}", lang.pick("LỖI", "ERROR"));
            continue;
        }
        if let Some(up) = r.uptime_s {
            let _ = writeln!(
                out,
                "  {}: {}d {:02}:{:02}:{:02}; {} {}",
                lang.pick("Thời gian chạy", "Uptime"),
                up / 86_400,
                up / 3600 % 24,
                up / 60 % 60,
                up % 60,
                lang.pick("mẫu đo", "sample"),
                humantime::format_duration(sample)
            );
        }
        let _ = writeln!(
            out,
            "  {:>5}  {:<16} {:<14} {:>10} {:>12} {:>12} {:>7} {:>7} {:>9}  {}",
            "#",
            lang.pick("giao diện", "interface"),
            lang.pick("trạng thái", "status"),
            lang.pick("tốc độ", "speed"),
            lang.pick("vào", "in"),
            lang.pick("ra", "out"),
            lang.pick("%vào", "in%"),
            lang.pick("%ra", "out%"),
            lang.pick("lỗi/s", "errors/s"),
            lang.pick("mô tả", "alias"),
        );
        for sample in &r.samples {
            if let Event::InterfaceCountersSampled {
                interface,
                in_bps,
                out_bps,
                speed_bps,
                in_util_pct,
                out_util_pct,
                in_errors_ps,
                out_errors_ps,
                oper_status,
                ..
            } = sample
            {
                let pct = |p: &Option<f64>| p.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}"));
                let _ = writeln!(
                    out,
                    "  {:>5}  {:<16} {:<14} {:>10} {:>12} {:>12} {:>7} {:>7} {:>9.2}  {}",
                    interface.index,
                    interface.name,
                    format!("{oper_status:?}").to_lowercase(),
                    speed_bps.map_or_else(|| "-".to_owned(), |s| bits(s as f64)),
                    bits(*in_bps),
                    bits(*out_bps),
                    pct(in_util_pct),
                    pct(out_util_pct),
                    in_errors_ps + out_errors_ps,
                    interface.alias.as_deref().unwrap_or(""),
                );
            }
        }
        if !r.missing.is_empty() {
            let _ = writeln!(
                out,
                "  {}: {}",
                lang.pick("Không tìm thấy", "Not found"),
                r.missing.join(", ")
            );
        }
    }
    out
}

/// `12.3 Mbit/s`-style rates.
fn bits(bps: f64) -> String {
    let (value, unit) = match bps {
        b if b >= 1e9 => (b / 1e9, "Gbit/s"),
        b if b >= 1e6 => (b / 1e6, "Mbit/s"),
        b if b >= 1e3 => (b / 1e3, "kbit/s"),
        b => (b, "bit/s"),
    };
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_people_write_them() {
        assert_eq!(bits(0.0), "0.0 bit/s");
        assert_eq!(bits(8_000_000.0), "8.0 Mbit/s");
        assert_eq!(bits(10e9), "10.0 Gbit/s");
    }
}
