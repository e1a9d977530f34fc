//! The daemon against a real Mosquitto (started by the test on a free loopback port, stopped at
//! the end): retained status, gap-free events, graceful shutdown with `offline`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use netmon_agent::Config;
use netmon_events::{AgentStatus, Envelope, Event, decode_batch};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use crate::support::TempDir;

/// A Mosquitto child process, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start() -> Broker {
        // Ask the kernel for a free port, release it, and hand it to Mosquitto.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("mosquitto")
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (apt install mosquitto)");
        Broker { child, port }
    }

    /// Waits until the broker accepts TCP connections (bounded).
    async fn ready(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("mosquitto did not listen on port {} within 5 s", self.port);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_status_and_gap_free_events_and_stops_cleanly() {
    let broker = Broker::start();
    broker.ready().await;
    let dir = TempDir::new("daemon");
    let path = dir.write(
        "agent.toml",
        &format!(
            r#"
agent_id = "hue-phu-vinh-01"
province = "hue"
[mqtt]
url = "mqtt://127.0.0.1:{}"
[probe]
interval = "200ms"
count = 2
[heartbeat]
interval = "1s"
[[targets]]
name = "UBND xã Phú Vinh"
address = "127.80.0.1"
role = "commune"
[[targets]]
name = "Nhà văn hoá thôn"
address = "127.80.0.2"
role = "gateway"
"#,
            broker.port
        ),
    );
    let config = Config::load_with_env(&path, Some(Default::default())).unwrap();

    // Subscribe before the agent starts so that nothing is missed.
    let mut options = MqttOptions::new("test-observer", "127.0.0.1", broker.port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (observer, mut observed) = AsyncClient::new(options, 16);
    observer
        .subscribe("netmon/v1/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        if let MqttEvent::Incoming(Packet::SubAck(_)) = observed.poll().await.unwrap() {
            break;
        }
    }

    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(netmon_agent::run(config, shutdown.clone()));
    let mut events: Vec<Envelope> = Vec::new();
    let mut statuses: Vec<AgentStatus> = Vec::new();
    let mut stopping = false;
    let collect = async {
        loop {
            let MqttEvent::Incoming(Packet::Publish(p)) = observed.poll().await.unwrap() else {
                continue;
            };
            if p.topic == "netmon/v1/hue/hue-phu-vinh-01/status" {
                statuses.push(AgentStatus::from_json(&p.payload).unwrap());
                if statuses.last() == Some(&AgentStatus::Offline) {
                    return;
                }
            } else {
                assert_eq!(p.topic, "netmon/v1/hue/hue-phu-vinh-01/events");
                for e in decode_batch(&p.payload).unwrap().events {
                    events.push(e.unwrap());
                }
                let rounds = events
                    .iter()
                    .filter(|e| matches!(e.event, Event::ProbeRoundCompleted { .. }))
                    .count();
                let beats = events
                    .iter()
                    .filter(|e| matches!(e.event, Event::AgentHeartbeat { .. }))
                    .count();
                if rounds >= 6 && beats >= 1 && !stopping {
                    stopping = true;
                    shutdown.cancel();
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("the agent published rounds, a heartbeat and, at shutdown, offline within 20 s");
    tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert!(
        matches!(statuses.first(), Some(AgentStatus::Online { .. })),
        "{statuses:?}"
    );
    assert!(matches!(
        events[0].event,
        Event::AgentStarted { targets: 2, .. }
    ));
    let boot = &events[0].boot;
    assert!(events.iter().all(|e| &e.boot == boot));
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free from 1"
    );
    for e in &events {
        if let Event::ProbeRoundCompleted { sent, received, .. } = e.event {
            assert_eq!((sent, received), (2, 2), "loopback answers every echo");
        }
    }
}
