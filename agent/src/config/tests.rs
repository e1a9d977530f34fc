//! The environment overrides through `Config::load_with_env`: what they replace, how their text
//! is read for each kind of key, and the errors they get.

use std::time::Duration;

use super::load_with_section_and_env as load;

#[test]
fn an_integer_override_replaces_the_files_value() {
    let c = load("[probe]\ncount = 4\n", &[("NETMON_PROBE__COUNT", "6")]).unwrap();
    assert_eq!(c.probe.count, 6);
    let c = load("", &[("NETMON_JOURNAL__MAX_BYTES", "65536")]).unwrap();
    assert_eq!(c.journal.max_bytes, 65536);
}

#[test]
fn a_string_override_and_names_in_any_case() {
    let c = load(
        "[probe]\ninterval = \"5s\"\nreport_every = \"10s\"\n",
        &[
            ("NETMON_PROBE__INTERVAL", "2s"),
            ("NETMON_Mqtt__UserName", "cam-tu"),
            ("NETMON_province", "thanh-hoa"),
        ],
    )
    .unwrap();
    assert_eq!(c.probe.interval, Duration::from_secs(2));
    assert_eq!(c.mqtt.credentials, Some(("cam-tu".into(), String::new())));
    assert_eq!(c.province.as_str(), "thanh-hoa");
}

#[test]
fn a_boolean_or_number_override_where_text_is_wanted_is_its_text() {
    // As the config crate read them: the value is typed first, then converted to the key's type.
    let c = load(
        "",
        &[
            ("NETMON_MQTT__USERNAME", "TRUE"),
            ("NETMON_MQTT__PASSWORD", "1234"),
            ("NETMON_PROBE__COUNT", "true"),
        ],
    )
    .unwrap();
    assert_eq!(c.mqtt.credentials, Some(("true".into(), "1234".into())));
    assert_eq!(c.probe.count, 1);
}

#[test]
fn overrides_are_refused_naming_their_key() {
    for (env, key, problem) in [
        (
            ("NETMON_PROBE__COLOUR", "3"),
            "probe.colour",
            "unknown field `colour`",
        ),
        (
            ("NETMON_MQTT__TLS__CA", "x"),
            "mqtt.tls",
            "unknown field `tls`",
        ),
        (
            ("NETMON_JOURNAL__DRAIN_RATE", "fast"),
            "journal.drain_rate",
            "expected an integer, got string \"fast\"",
        ),
        (
            ("NETMON_PROBE__COUNT", "0"),
            "probe.count",
            "expected an integer from 1 to 100, got 0",
        ),
    ] {
        let error = load("", &[env]).unwrap_err();
        assert_eq!(error.key, key, "{error}");
        assert!(error.problem.starts_with(problem), "{error}");
    }
}
