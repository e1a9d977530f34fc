//! The collector against a real Mosquitto broker: `run` in-process, messages published with
//! `mosquitto_pub`, results read through the HTTP API, the store and the CLI commands.
//!
//! Needs a broker: `mosquitto -p 18830 &` then
//! `NETMON_TEST_MQTT=mqtt://127.0.0.1:18830 cargo test -p netmon-collector`.
//! Every test uses its own province, agent ids and client id, so tests share one broker.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use netmon_collector::cli;
use netmon_collector::cli::daemon_client;
use netmon_collector::cli::table::Lang;
use netmon_collector::config::Config;
use netmon_collector::store::{Query, Store};
use netmon_events::{Ack, BootId};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod support;
use netmon_harness::broker::{free_port, host_port};
use netmon_harness::{Scratch, wait_for_async};
use support::{clear_retained, publish, shared_url};

const STARTED: &str = r#""type":"agent_started","version":"0.1.0","targets":1"#;
const HEARTBEAT: &str = r#""type":"agent_heartbeat","uptime_s":5,"backlog":0"#;
const ROUND: &str = r#""type":"probe_round_completed","target":{"name":"UBND xã Kiên Thọ","address":"10.30.0.1","role":"commune"},"sent":3,"received":3,"rtt_avg_ms":2.5,"loss_pct":0.0"#;
const DOWN: &str = r#""type":"link_went_down","target":{"name":"UBND xã Kiên Thọ","address":"10.30.0.1","role":"commune"},"since":"2026-11-23T02:00:03.000Z","reason":"no_reply","failed_rounds":3"#;

/// One test's world: a temporary directory, a unique province and client id, a config file.
struct World {
    /// Held for its lifetime: removed when the test passes, kept when it fails.
    _dir: Scratch,
    province: String,
    config: Config,
}

impl World {
    fn new() -> Self {
        let url = shared_url();
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let dir = Scratch::new("collector-it").unwrap();
        let port = free_port().unwrap();
        let province = format!("test-{id}");
        let file = dir.join("collector.toml");
        std::fs::write(
            &file,
            format!(
                "[mqtt]\nurl = \"{url}\"\nclient_id = \"collector-{id}\"\nprovince = \"{province}\"\n\
                 [store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
                dir.join("events.db").display()
            ),
        )
        .unwrap();
        let config = Config::load_with_env(&file, []).unwrap();
        Self {
            _dir: dir,
            province,
            config,
        }
    }

    fn topic(&self, agent: &str, kind: &str) -> String {
        format!("netmon/v1/{}/{agent}/{kind}", self.province)
    }

    fn start(
        &self,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let token = CancellationToken::new();
        let task = tokio::spawn(netmon_collector::run(self.config.clone(), token.clone()));
        (token, task)
    }

    async fn get(&self, path: &str) -> Option<String> {
        let address = self.config.http.listen;
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            daemon_client::get(address, &path, Duration::from_secs(2))
        })
        .await
        .unwrap()
        .ok()
    }

    async fn intake(&self) -> Value {
        serde_json::from_str(&self.get("/api/v1/intake").await.unwrap()).unwrap()
    }

    /// Waits until the collector is subscribed: it has taken a retained status message that was
    /// published before it connected.
    async fn wait_subscribed(&self, probe_agent: &str) {
        publish(
            &self.topic(probe_agent, "status"),
            br#"{"status":"online","boot":"p","version":"t"}"#,
            true,
        );
        wait_for("the retained status message", || async {
            let body = self.get("/api/v1/intake").await?;
            let v: Value = serde_json::from_str(&body).ok()?;
            (v["messages"].as_u64()? >= 1).then_some(())
        })
        .await;
    }

    fn store(&self) -> Store {
        Store::open_read_only(&self.config.store.path).unwrap()
    }
}

fn envelope(agent: &str, boot: &str, seq: u64, event: &str) -> String {
    format!(
        r#"{{"v":1,"agent":"{agent}","boot":"{boot}","seq":{seq},"time":"2026-11-23T02:00:0{}.000Z","mono_ms":{seq}000,{event}}}"#,
        seq % 10
    )
}

/// The harness's [`wait_for_async`], for at most 15 s.
async fn wait_for<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_async(what, Duration::from_secs(15), check).await
}

async fn stop(token: CancellationToken, task: tokio::task::JoinHandle<anyhow::Result<()>>) {
    token.cancel();
    let result = tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("the collector did not stop within 15 s")
        .unwrap();
    result.expect("the collector stopped with an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_refuses_counts_and_survives_a_restart() {
    let world = World::new();
    let (token, task) = world.start();
    wait_for("healthz", || async { world.get("/healthz").await }).await;
    world.wait_subscribed("probe").await;

    let events = world.topic("kien-tho", "events");
    let good = format!(
        "[{},{},{}]",
        envelope("kien-tho", "b1", 1, STARTED),
        envelope("kien-tho", "b1", 2, ROUND),
        envelope("kien-tho", "b1", 3, DOWN)
    );
    publish(&events, good.as_bytes(), false);
    publish(&events, good.as_bytes(), false); // a second delivery
    publish(&events, b"{not json", false);
    publish(&events, &vec![b' '; 300 * 1024], false);
    publish(
        &events,
        envelope("thieu-trung", "b1", 4, HEARTBEAT).as_bytes(),
        false,
    );
    let forbidden = r#""type":"agent_went_silent","reason":"last_will""#;
    publish(
        &events,
        envelope("kien-tho", "b1", 5, forbidden).as_bytes(),
        false,
    );
    publish(
        &world.topic("kien-tho", "status"),
        br#"{"status":"offline"}"#,
        false,
    );

    let counters = wait_for("8 messages", || async {
        let v = world.intake().await;
        (v["messages"] == 8).then_some(v)
    })
    .await;
    assert_eq!(counters["events_stored"], 3, "{counters}");
    assert_eq!(counters["duplicates"], 3, "{counters}");
    assert_eq!(counters["messages_rejected"], 4, "{counters}");
    assert_eq!(counters["silence_events"], 1, "{counters}");
    let by = &counters["rejected_by_reason"];
    assert_eq!(
        (
            &by["malformed"],
            &by["oversized"],
            &by["agent_mismatch"],
            &by["forbidden_type"]
        ),
        (&1.into(), &1.into(), &1.into(), &1.into()),
        "{counters}"
    );

    let state: Value = serde_json::from_str(&world.get("/api/v1/state").await.unwrap()).unwrap();
    let agent = &state["agents"][0];
    assert_eq!(agent["agent"], "kien-tho");
    assert_eq!(
        agent["online"], false,
        "the last will made it silent: {state}"
    );
    assert_eq!(state["links"][0]["status"], "down");
    assert_eq!(state["links"][0]["name"], "UBND xã Kiên Thọ");

    // The store, read-only while the daemon runs; the CLI reads the same.
    let stored = world.store().query(&Query::default()).unwrap();
    // The alert book's own events (the link and the silence opened alerts) are checked apart.
    let alerting = stored
        .iter()
        .filter(|e| matches!(e.envelope.event, netmon_events::Event::AlertOpened { .. }))
        .count();
    assert!(alerting >= 1, "the outage opened an alert");
    let types: Vec<_> = stored
        .iter()
        .filter(|e| !e.envelope.event.is_alerting())
        .map(|e| e.envelope.event.type_name())
        .collect();
    assert_eq!(
        types,
        [
            "agent_started",
            "probe_round_completed",
            "link_went_down",
            "agent_went_silent"
        ]
    );
    let mut out = Vec::new();
    cli::events(
        &world.config,
        None,
        Some("link_went_down".into()),
        0,
        true,
        Lang::Vi,
        &mut out,
    )
    .unwrap();
    let line: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (line["stored"]["id"].as_i64(), line["seq"].as_u64()),
        (Some(3), Some(3))
    );
    let live = status_json(&world.config);

    stop(token, task).await;
    // The daemon is gone: status rebuilds the same state from the store.
    assert_eq!(status_json(&world.config), live);

    // Published while the collector is down: the broker keeps it in the persistent session.
    publish(
        &events,
        envelope("kien-tho", "b1", 4, HEARTBEAT).as_bytes(),
        false,
    );
    let (token, task) = world.start();
    let state = wait_for("the event queued while stopped", || async {
        let body = world.get("/api/v1/state").await?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["agents"][0]["last_seq"] == 4).then_some(v)
    })
    .await;
    assert_eq!(state["agents"][0]["online"], true);
    assert_eq!(state["agents"][0]["events"], 5);
    // Only the queued message came: everything taken before the stop had been acknowledged.
    let counters = world.intake().await;
    assert_eq!(
        (&counters["messages"], &counters["duplicates"]),
        (&1.into(), &0.into()),
        "{counters}"
    );
    stop(token, task).await;
    let agent_made = world
        .store()
        .query(&Query::default())
        .unwrap()
        .iter()
        .filter(|e| !e.envelope.event.is_alerting())
        .count();
    assert_eq!(agent_made, 5);
    clear_retained(&world.topic("probe", "status"));
}

/// `status --json` output.
fn status_json(config: &Config) -> String {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    cli::status(config, true, Lang::En, &mut out, &mut err).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_cleanly_when_the_broker_is_unreachable() {
    let world = World::new();
    let mut config = world.config.clone();
    // A loopback port with nothing listening.
    config.mqtt.port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = CancellationToken::new();
    let task = tokio::spawn(netmon_collector::run(config.clone(), token.clone()));
    let address = config.http.listen;
    wait_for("healthz without a broker", || async {
        tokio::task::spawn_blocking(move || {
            daemon_client::get(address, "/healthz", Duration::from_secs(2))
        })
        .await
        .unwrap()
        .ok()
    })
    .await;
    stop(token, task).await;
}

/// A plain MQTT subscriber (its own clean session) whose messages arrive on a channel.
struct Subscriber {
    rx: tokio::sync::mpsc::Receiver<rumqttc::Publish>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    async fn new(filter: &str) -> Self {
        let (host, port) = host_port(&shared_url()).unwrap();
        let id = format!("sub-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut options = rumqttc::MqttOptions::new(id, host, port);
        options.set_clean_session(true);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
        client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        if tx.send(p).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("test subscriber lost the broker: {e}"),
                }
            }
        });
        Self { rx, task }
    }

    /// Waits (15 s at most) for an ack on `topic` whose watermark for `boot` is `seq`; returns
    /// the whole ack and whether it came as a retained message.
    async fn ack(&mut self, topic: &str, boot: &str, seq: u64) -> (Ack, bool) {
        let boot: BootId = boot.parse().unwrap();
        let wait = async {
            loop {
                let message = self.rx.recv().await.expect("subscriber stopped");
                if message.topic != topic {
                    continue;
                }
                let ack = Ack::from_json(&message.payload)
                    .unwrap_or_else(|e| panic!("bad ack on {topic}: {e}"));
                if ack.seq_for(&boot) == Some(seq) {
                    return (ack, message.retain);
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .unwrap_or_else(|_| panic!("no ack with {boot} = {seq} on {topic} within 15 s"))
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A batch as agents send it, with the sender's clock.
fn batch_from(agent: &str, boot: &str, mono_ms: u64, seqs: &[(u64, &str)]) -> Vec<u8> {
    let events: Vec<String> = seqs
        .iter()
        .map(|(seq, event)| envelope(agent, boot, *seq, event))
        .collect();
    format!(
        r#"{{"sender":{{"boot":"{boot}","mono_ms":{mono_ms}}},"events":[{}]}}"#,
        events.join(",")
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_a_retained_watermark_and_rebuilds_it_after_a_restart() {
    let world = World::new();
    let ack_topic = world.topic("dinh-long", "ack");
    let mut acks = Subscriber::new(&format!("netmon/v1/{}/+/ack", world.province)).await;
    let (token, task) = world.start();
    wait_for("healthz", || async { world.get("/healthz").await }).await;
    world.wait_subscribed("probe").await;

    let events = world.topic("dinh-long", "events");
    // 1, 2 and 4: the watermark stops at the gap.
    publish(
        &events,
        &batch_from(
            "dinh-long",
            "b1",
            4_000,
            &[(1, STARTED), (2, HEARTBEAT), (4, HEARTBEAT)],
        ),
        false,
    );
    let (ack, _) = acks.ack(&ack_topic, "b1", 2).await;
    assert_eq!(ack.acks.len(), 1, "{ack:?}");
    // A newcomer gets it as a retained message.
    let mut newcomer = Subscriber::new(&ack_topic).await;
    let (_, retained) = newcomer.ack(&ack_topic, "b1", 2).await;
    assert!(retained, "the watermark must be retained");
    drop(newcomer);
    stop(token, task).await;

    // After a restart the seqs above the watermark are rebuilt from the store: 3 fills the gap
    // and the watermark jumps to 4.
    let (token, task) = world.start();
    wait_for("healthz", || async { world.get("/healthz").await }).await;
    publish(
        &events,
        &batch_from("dinh-long", "b1", 5_000, &[(3, HEARTBEAT)]),
        false,
    );
    acks.ack(&ack_topic, "b1", 4).await;
    let mut newcomer = Subscriber::new(&ack_topic).await;
    let (_, retained) = newcomer.ack(&ack_topic, "b1", 4).await;
    assert!(retained);
    stop(token, task).await;
    assert_eq!(world.store().count().unwrap(), 4);
    clear_retained(&ack_topic);
    clear_retained(&world.topic("probe", "status"));
}
