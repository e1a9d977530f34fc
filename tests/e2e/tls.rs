//! MQTT over TLS: a Mosquitto with a certificate from a private CA; the agent and the collector
//! connect with `mqtts://` and `ca_file`, and the agent's events reach the store.

use std::process::Command;
use std::time::Duration;

use netmon_events::Event;
use netmon_tests::daemons::free_port;
use netmon_tests::wait::poll_until;
use netmon_tests::{
    Agent, AgentConfig, Collector, CollectorConfig, Proc, Scratch, TargetConfig, shared_url,
    unique, wait_for,
};

#[test]
fn agent_and_collector_speak_mqtt_over_tls() {
    let _ = shared_url();
    let scratch = Scratch::new("tls").unwrap();
    netmon_tests::certs::make_certificates(scratch.path()).unwrap();
    let dir = scratch.path().display().to_string();
    let port = free_port().unwrap();
    let config = scratch
        .write(
            "mosquitto.conf",
            format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n\
                 cafile {dir}/ca.pem\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key\n"
            ),
        )
        .unwrap();
    let mut command = Command::new("mosquitto");
    command.arg("-c").arg(&config);
    let mut broker = Proc::spawn("mosquitto-tls", command, &scratch.join("mosquitto.log")).unwrap();
    let ready = poll_until(Duration::from_secs(10), || {
        broker.assert_running().unwrap();
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
            .arg(scratch.join("ca.pem"))
            .args(["-t", "netmon-test/probe", "-m", "x"])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        status.success().then_some(())
    });
    assert!(
        ready.is_some(),
        "TLS mosquitto did not start: {}",
        broker.log()
    );

    let url = format!("mqtts://127.0.0.1:{port}");
    let ca_file = Some(scratch.join("ca.pem").display().to_string());
    let province = unique("tls");
    let collector = Collector::start(
        "collector",
        CollectorConfig {
            mqtt_url: url.clone(),
            ca_file: ca_file.clone(),
            client_id: unique("collector"),
            province: Some(province.clone()),
            store_path: scratch.join("events.db").display().to_string(),
            snapshot_every: None,
            http_listen: format!("127.0.0.1:{}", free_port().unwrap()),
            silence_after: "1h".into(),
            delivery: Default::default(),
            influx: None,
            inventory: None,
            http_token: None,
            extra_toml: String::new(),
        },
        &scratch,
        None,
    )
    .unwrap();

    let agent_id = unique("thon-tls");
    let mut config = AgentConfig::new(&agent_id, &province, &url);
    config.ca_file = ca_file;
    config.targets.push(TargetConfig {
        name: "Máy này".into(),
        address: "127.0.0.1".into(),
        role: "gateway".into(),
    });
    let mut agent = Agent::start("agent", config, &scratch, None).unwrap();

    wait_for(
        "an answered probe window over TLS",
        Duration::from_secs(30),
        || {
            agent.proc.assert_running().unwrap();
            let windows = collector
                .events(&["--agent", &agent_id, "--type", "probe_window_completed"])
                .unwrap();
            windows
            .iter()
            .any(|w| matches!(w.envelope.event, Event::ProbeWindowCompleted { received, .. } if received > 0))
            .then_some(())
        },
    );
}
