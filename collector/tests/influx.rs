//! The InfluxDB projection against a real VictoriaMetrics started by the test (Debian package
//! `victoria-metrics`) and the shared Mosquitto broker (`NETMON_TEST_MQTT`, see `mqtt.rs`):
//! events go in over MQTT, the collector runs in-process with `[influx] api = "v2"`, and the
//! points are read back through VictoriaMetrics' `/api/v1/export` (metric
//! `measurement_field`, tags as labels) and compared with the store's effective times.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use netmon_collector::config::Config;
use netmon_collector::store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod support;
use netmon_harness::{Scratch, wait_for_async};
use support::{publish, shared_url};

const TARGET: &str = "Trạm y tế, xã Kiên Thọ = \\\"A\\\"";
const TARGET_NAME: &str = "Trạm y tế, xã Kiên Thọ = \"A\"";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private VictoriaMetrics on a loopback port; killed by pid when dropped.
struct Victoria {
    child: Child,
    port: u16,
}

impl Victoria {
    fn start(dir: &std::path::Path) -> Self {
        let port = free_port();
        let child = Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.join("vm").display()))
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("vm.log")).unwrap())
            .spawn()
            .expect("victoria-metrics not found: apt-get install victoria-metrics");
        Self { child, port }
    }

    fn get(&self, path: &str) -> Option<String> {
        let address = format!("127.0.0.1:{}", self.port).parse().unwrap();
        netmon_collector::cli::daemon_client::get(address, path, Duration::from_secs(2)).ok()
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The harness's [`wait_for_async`] for a blocking check (HTTP), for at most 30 s.
async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    wait_for_async(what, Duration::from_secs(30), || {
        std::future::ready(tokio::task::block_in_place(&mut check))
    })
    .await
}

/// Every series of the export: (metric name, labels, values, timestamps).
fn export(vm: &Victoria, selector: &str) -> Vec<Value> {
    let query: String = url_escape(selector);
    let Some(body) = vm.get(&format!("/api/v1/export?match[]={query}")) else {
        return Vec::new();
    };
    body.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A series' values as numbers (VictoriaMetrics prints 2.0 as 2).
fn values(series: &Value) -> Vec<f64> {
    series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn series<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|s| s["metric"]["__name__"] == name)
        .unwrap_or_else(|| panic!("no series {name} in {all:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_victoria_metrics_with_effective_times() {
    let url = shared_url();
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let dir = Scratch::new("influx-it").unwrap();
    let vm = Victoria::start(dir.path());
    wait_for("VictoriaMetrics /health", || {
        vm.get("/health").filter(|b| b.trim() == "OK")
    })
    .await;

    let province = format!("test-{id}");
    let http = free_port();
    let file = dir.join("collector.toml");
    std::fs::write(
        &file,
        format!(
            "[mqtt]\nurl = \"{url}\"\nclient_id = \"collector-{id}\"\nprovince = \"{province}\"\n\
             [store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
             [influx]\nurl = \"http://127.0.0.1:{}\"\napi = \"v2\"\norg = \"netmon\"\nbucket = \"netmon\"\n\
             batch_points = 2\nflush_interval = \"100ms\"\n",
            dir.join("events.db").display(),
            vm.port
        ),
    )
    .unwrap();
    let config = Config::load_with_env(&file, []).unwrap();
    let token = CancellationToken::new();
    let task = tokio::spawn(netmon_collector::run(config.clone(), token.clone()));
    let api = |path: &str| {
        netmon_collector::cli::daemon_client::get(config.http.listen, path, Duration::from_secs(2))
            .ok()
    };
    // Subscribed once a retained status published before has been taken.
    publish(
        &format!("netmon/v1/{province}/probe/status"),
        br#"{"status":"online","boot":"p","version":"t"}"#,
        true,
    );
    wait_for("the retained status", || {
        let v: Value = serde_json::from_str(&api("/api/v1/intake")?).ok()?;
        (v["messages"].as_u64()? >= 1).then_some(())
    })
    .await;

    // Times near now, so that the clock check keeps them and VictoriaMetrics keeps them.
    let now = chrono::Utc::now() - chrono::TimeDelta::seconds(30);
    let target =
        format!(r#""target":{{"name":"{TARGET}","address":"10.30.0.1","role":"commune"}}"#);
    let events = [
        r#""type":"agent_started","version":"0.1.0","targets":1"#.to_string(),
        format!(
            r#""type":"probe_round_completed",{target},"sent":4,"received":3,"rtt_min_ms":1.5,"rtt_avg_ms":2.25,"rtt_max_ms":3.5,"rtt_mdev_ms":0.75,"loss_pct":25.0"#
        ),
        format!(
            r#""type":"link_went_down",{target},"since":"{}","reason":"no_reply","failed_rounds":3"#,
            netmon_collector::store::millis(now)
        ),
        r#""type":"agent_heartbeat","uptime_s":42,"backlog":7"#.to_string(),
        format!(
            r#""type":"probe_round_completed",{target},"sent":4,"received":4,"rtt_min_ms":1.0,"rtt_avg_ms":2.0,"rtt_max_ms":3.0,"rtt_mdev_ms":0.5,"loss_pct":0.0"#
        ),
    ];
    let envelopes: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let seq = i as u64 + 1;
            let time = netmon_collector::store::millis(now + chrono::TimeDelta::seconds(seq as i64));
            format!(r#"{{"v":1,"agent":"kien-tho","boot":"b1","seq":{seq},"time":"{time}","mono_ms":{},{e}}}"#, seq * 1000 + 100_000)
        })
        .collect();
    publish(
        &format!("netmon/v1/{province}/kien-tho/events"),
        format!("[{}]", envelopes.join(",")).as_bytes(),
        false,
    );

    // The projection catches up with the store: position = last id, nothing behind.
    let store = Store::open_read_only(&config.store.path).unwrap();
    let projections = wait_for("the projection to deliver 5 events", || {
        let v: Value = serde_json::from_str(&api("/api/v1/projections")?).ok()?;
        let influx = &v["influx"];
        (influx["points_written"].as_u64()? >= 5 && influx["behind"] == 0).then(|| v.clone())
    })
    .await;
    // The collector's alert events (none have time series) are left aside.
    let stored: Vec<_> = store
        .query(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|e| !e.envelope.event.is_alerting())
        .collect();
    assert_eq!(stored.len(), 5);
    assert!(projections["influx"]["position"].as_i64().unwrap() >= stored[4].id);
    assert_eq!(projections["influx"]["rejected_points"], 0);
    let ms = |i: usize| stored[i].time.timestamp_millis();

    let probes = wait_for("probe series in VictoriaMetrics", || {
        let all = export(
            &vm,
            &format!("{{__name__=~\"probe_.*\",province=\"{province}\"}}"),
        );
        let complete = all
            .iter()
            .find(|s| s["metric"]["__name__"] == "probe_rtt_avg_ms")
            .is_some_and(|s| s["values"].as_array().is_some_and(|v| v.len() == 2));
        complete.then_some(all)
    })
    .await;
    let avg = series(&probes, "probe_rtt_avg_ms");
    assert_eq!(avg["metric"]["target"], TARGET_NAME);
    assert_eq!(avg["metric"]["agent"], "kien-tho");
    assert_eq!(avg["metric"]["address"], "10.30.0.1");
    assert_eq!(avg["metric"]["role"], "commune");
    assert_eq!(values(avg), vec![2.25, 2.0]);
    assert_eq!(avg["timestamps"], serde_json::json!([ms(1), ms(4)]));
    let loss = series(&probes, "probe_loss_pct");
    assert_eq!(values(loss), vec![25.0, 0.0]);
    assert_eq!(values(series(&probes, "probe_sent")), vec![4.0, 4.0]);

    let agent = export(
        &vm,
        &format!("{{__name__=~\"(agent|link)_.*\",province=\"{province}\"}}"),
    );
    let uptime = series(&agent, "agent_uptime_s");
    assert_eq!(values(uptime), vec![42.0]);
    assert_eq!(uptime["timestamps"], serde_json::json!([ms(3)]));
    assert_eq!(values(series(&agent, "agent_backlog")), vec![7.0]);
    assert_eq!(
        series(&agent, "agent_started")["timestamps"],
        serde_json::json!([ms(0)])
    );
    let up = series(&agent, "link_up");
    assert_eq!(values(up), vec![0.0]);
    assert_eq!(up["timestamps"], serde_json::json!([ms(2)]));
    assert_eq!(up["metric"]["target"], TARGET_NAME);

    // The cursor survives a restart: nothing is re-sent (points_written starts again at 0).
    token.cancel();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("the collector did not stop")
        .unwrap()
        .unwrap();
    let reopened = Store::open(&config.store.path).unwrap();
    let position = reopened.projection_position("influx").unwrap();
    assert!(position >= stored[4].id);
    assert!(position <= reopened.max_id().unwrap());
    drop(vm);
}
