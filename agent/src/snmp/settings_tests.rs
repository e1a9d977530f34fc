//! Tests of the `[snmp]` section: defaults, overrides, and errors that name the key.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::config::Config;

fn load(snmp: &str) -> Result<Config, ConfigError> {
    crate::config::load_with_section(snmp)
}

#[test]
fn devices_are_read_with_defaults_and_overrides() {
    let c = load(
        "[snmp]\ninterval = \"30s\"\n[[snmp.devices]]\naddress = \"192.0.2.1\"\ncommunity = \"c\"\n\
         [[snmp.devices.interfaces]]\nname = \"wan\"\ncapacity_bps = 8000000\n\
         [[snmp.devices.interfaces]]\nindex = 3\n\
         [[snmp.devices]]\naddress = \"[2001:db8::1]:1161\"\nversion = \"3\"\nuser = \"u\"\n\
         auth_protocol = \"sha256\"\nauth_password = \"12345678\"\ninterval = \"5s\"\n",
    )
    .unwrap();
    let s = &c.snmp;
    assert_eq!(
        (s.timeout, s.retries, s.max_repetitions),
        (Duration::from_secs(2), 2, 10)
    );
    let d = &s.devices[0];
    assert_eq!(d.socket, "192.0.2.1:161".parse().unwrap());
    assert_eq!(
        (d.version, d.interval),
        (SnmpVersion::V2c, Duration::from_secs(30))
    );
    assert_eq!(
        d.interfaces,
        [
            WatchedInterface {
                key: InterfaceKey::Name("wan".into()),
                capacity_bps: Some(8_000_000)
            },
            WatchedInterface {
                key: InterfaceKey::Index(3),
                capacity_bps: None
            },
        ]
    );
    let v3 = &s.devices[1];
    assert_eq!(
        (v3.socket.port(), v3.interval),
        (1161, Duration::from_secs(5))
    );
    assert!(matches!(
        &v3.credentials,
        SnmpCredentials::User {
            auth: Some((SnmpAuth::Sha256, _)),
            privacy: None,
            ..
        }
    ));
    assert!(load("").unwrap().snmp.devices.is_empty());
}

#[test]
fn report_windows_are_at_least_a_poll_long() {
    let minute = Duration::from_secs(60);
    // Default: five minutes; a device polled every 10 minutes reports at every poll.
    let c = load(
        "[[snmp.devices]]\naddress = \"192.0.2.1\"\ncommunity = \"c\"\n\
         [[snmp.devices]]\naddress = \"192.0.2.2\"\ncommunity = \"c\"\ninterval = \"10m\"\n",
    )
    .unwrap();
    let windows: Vec<_> = c.snmp.devices.iter().map(|d| d.report_every).collect();
    assert_eq!(
        (c.snmp.report_every, windows),
        (5 * minute, vec![5 * minute, 10 * minute])
    );
    // Unset with a poll interval above five minutes: the poll interval.
    let c = load("[snmp]\ninterval = \"6m\"\n").unwrap();
    assert_eq!(c.snmp.report_every, 6 * minute);
    // Set: as given, from snmp.interval up.
    let c = load("[snmp]\nreport_every = \"10s\"\n").unwrap();
    assert_eq!(c.snmp.report_every, Duration::from_secs(10));
    let e = load("[snmp]\nreport_every = \"5s\"\n").unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.problem.as_str()),
        (
            "snmp.report_every",
            "expected at least snmp.interval (10s), got 5s"
        )
    );
}

#[test]
fn errors_name_the_key() {
    let key = |snmp: &str| load(snmp).unwrap_err().key;
    assert_eq!(
        key("[[snmp.devices]]\naddress = \"router\"\ncommunity = \"c\"\n"),
        "snmp.devices[0].address"
    );
    assert_eq!(
        key("[[snmp.devices]]\naddress = \"192.0.2.1\"\n"),
        "snmp.devices[0].community"
    );
    assert_eq!(
        key("[[snmp.devices]]\naddress = \"192.0.2.1\"\nversion = \"2\"\ncommunity = \"c\"\n"),
        "snmp.devices[0].version"
    );
    assert_eq!(
        key(
            "[[snmp.devices]]\naddress = \"192.0.2.1\"\nversion = \"3\"\nuser = \"u\"\npriv_protocol = \"aes\"\npriv_password = \"12345678\"\n"
        ),
        "snmp.devices[0].priv_protocol"
    );
    assert_eq!(
        key(
            "[[snmp.devices]]\naddress = \"192.0.2.1\"\ncommunity = \"c\"\n[[snmp.devices.interfaces]]\nname = \"a\"\nindex = 1\n"
        ),
        "snmp.devices[0].interfaces[0].name"
    );
    assert_eq!(key("[snmp]\ninterval = \"0s\"\n"), "snmp.interval");
    assert_eq!(key("[snmp]\nbogus = 1\n"), "snmp.bogus");
}
