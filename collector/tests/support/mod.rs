//! The collector's integration tests publish to the shared broker (`NETMON_TEST_MQTT`, started by
//! `tests/run`) through the harness's `mosquitto_pub`; these bind its URL and fail loudly.
// Each test binary uses part of this module.
#![allow(clippy::unwrap_used, dead_code)]

pub use netmon_harness::broker::shared_url;

/// Publishes with QoS 1 to the shared broker; returns once the broker has the message.
pub fn publish(topic: &str, payload: &[u8], retain: bool) {
    let url = shared_url();
    let sent = if retain {
        netmon_harness::broker::publish_retained(&url, topic, payload)
    } else {
        netmon_harness::broker::publish(&url, topic, payload)
    };
    sent.unwrap();
}

/// Clears a retained message on the shared broker (publishes an empty retained one).
pub fn clear_retained(topic: &str) {
    netmon_harness::broker::clear_retained(&shared_url(), topic).unwrap();
}
