//! The lab helpers do what the other tests rely on: a link carries pings, a cut link carries none,
//! a restored link carries them again, and `add_loss(20)` loses about one echo in five.

use std::process::Command;
use std::time::Duration;

use netmon_tests::broker::{mosquitto_pub, publish_in};
use netmon_tests::{Broker, Lab, Scratch};

/// Sends `count` echoes from `from` to `addr` with fping (10 ms apart) and returns how many came
/// back. fping exits non-zero when some are lost, so its status is not checked.
fn echoes_received(lab: &Lab, from: &str, addr: &str, count: u32) -> u32 {
    let mut fping = Command::new("fping");
    fping.args([
        "-q",
        "-c",
        &count.to_string(),
        "-p",
        "10",
        "-t",
        "300",
        addr,
    ]);
    let output = lab.output_in(from, &fping).unwrap();
    // "10.100.0.2 : xmt/rcv/%loss = 200/159/20%, min/avg/max = …" on stderr.
    let text = String::from_utf8_lossy(&output.stderr);
    let counts = text
        .split("xmt/rcv/%loss = ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected fping output: {text}"));
    let mut parts = counts.split(['/', '%', ',']);
    let sent: u32 = parts.next().unwrap().trim().parse().unwrap();
    let received: u32 = parts.next().unwrap().trim().parse().unwrap();
    assert_eq!(sent, count, "fping output: {text}");
    received
}

#[test]
fn lab_helpers_cut_restore_and_loss() {
    let mut lab = Lab::new().unwrap();
    let village = lab.add_namespace("village").unwrap();
    let commune = lab.add_namespace("commune").unwrap();
    lab.connect("link", "village", "commune").unwrap();
    let target = lab.addr("link", "commune").unwrap().to_string();

    assert_eq!(
        echoes_received(&lab, "village", &target, 20),
        20,
        "an intact link loses nothing"
    );

    lab.cut("link").unwrap();
    assert_eq!(
        echoes_received(&lab, "village", &target, 10),
        0,
        "a cut link carries nothing"
    );

    lab.restore("link").unwrap();
    assert_eq!(
        echoes_received(&lab, "village", &target, 20),
        20,
        "a restored link works again"
    );

    lab.add_loss("commune", 20).unwrap();
    let sent = 500;
    let received = echoes_received(&lab, "village", &target, sent);
    let loss = 100.0 * f64::from(sent - received) / f64::from(sent);
    eprintln!("20 % configured loss: {loss:.1} % measured over {sent} echoes");
    // 500 Bernoulli trials at p = 0.2: sd ≈ 1.8 %, so 12–28 % is more than 4 sd either side.
    assert!((12.0..=28.0).contains(&loss), "measured loss {loss:.1} %");

    lab.clear_loss("commune").unwrap();
    assert_eq!(
        echoes_received(&lab, "village", &target, 20),
        20,
        "loss cleared"
    );

    // Dropping the lab deletes the namespaces.
    drop(lab);
    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for ns in [&village, &commune] {
        assert!(
            !listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str())),
            "{ns} still exists"
        );
    }
}

#[test]
fn lab_helpers_private_broker_is_reachable_over_the_uplink() {
    let scratch = Scratch::new("lab-broker").unwrap();
    let mut lab = Lab::new().unwrap();
    lab.add_namespace("province").unwrap();
    lab.add_namespace("village").unwrap();
    lab.connect("uplink", "village", "province").unwrap();
    let mut broker = Broker::start_in(&lab, "province", &scratch).unwrap();
    let url = format!(
        "mqtt://{}:{}",
        lab.addr("uplink", "province").unwrap(),
        broker.port
    );

    let village = lab.ns("village").unwrap().to_owned();
    publish_in(
        Some(&village),
        &url,
        "netmon-test/hello",
        "xin chào".as_bytes(),
    )
    .unwrap();

    lab.cut("uplink").unwrap();
    let mut unreachable = mosquitto_pub(&url, "netmon-test/hello").unwrap();
    unreachable.args(["-m", "x", "--quiet"]);
    let output = lab.output_in("village", &unreachable).unwrap();
    assert!(
        !output.status.success(),
        "the broker must be unreachable over a cut uplink"
    );

    let status = broker.proc.terminate(Duration::from_secs(5)).unwrap();
    assert!(status.success(), "mosquitto exited with {status}");
}
