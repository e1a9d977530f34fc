//! Helpers shared by the collector's integration tests: the broker from `NETMON_TEST_MQTT` and
//! publishing through `mosquitto_pub`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use netmon_mqtt::BrokerUrl;

/// The broker from `NETMON_TEST_MQTT`, as (url, host, port). Fails loudly when unset.
pub fn broker() -> (String, String, u16) {
    let url = std::env::var("NETMON_TEST_MQTT").unwrap_or_else(|_| {
        panic!(
            "NETMON_TEST_MQTT is not set: start a broker (mosquitto -p 18830 &) and run with \
             NETMON_TEST_MQTT=mqtt://127.0.0.1:18830"
        )
    });
    let broker = BrokerUrl::parse(&url).unwrap_or_else(|e| panic!("NETMON_TEST_MQTT: {e}"));
    assert!(
        !broker.tls,
        "NETMON_TEST_MQTT={url:?}: expected mqtt://host:port"
    );
    (url, broker.host, broker.port)
}

/// Publishes with QoS 1 through `mosquitto_pub`, which returns once the broker has the message.
pub fn publish(topic: &str, payload: &[u8], retain: bool) {
    let (_, host, port) = broker();
    let mut command = Command::new("mosquitto_pub");
    command
        .args([
            "-h",
            &host,
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-s",
        ])
        .stdin(Stdio::piped());
    if retain {
        command.arg("-r");
    }
    let mut child = command
        .spawn()
        .expect("mosquitto_pub not found: apt-get install mosquitto-clients");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "mosquitto_pub to {topic} failed: {status}"
    );
}
