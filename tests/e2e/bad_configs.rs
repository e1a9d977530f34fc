//! A bad config makes `check` exit 64 with a message naming the file and the key, for both
//! daemons.

use netmon_tests::daemons::daemon_command;
use netmon_tests::{Scratch, shared_url};

const AGENT: &str = r#"agent_id = "thon-giang-trung"
province = "thanh-hoa"

[mqtt]
url = "mqtt://127.0.0.1:1883"
keep_alive = "5s"

[probe]
interval = "1s"
count = 3
timeout = "1s"
down_after = 3

[heartbeat]
interval = "10s"

[[targets]]
name = "UBND xã Cẩm Tú"
address = "10.20.0.1"
role = "commune"
"#;

const COLLECTOR: &str = r#"[mqtt]
url = "mqtt://127.0.0.1:1883"
client_id = "netmon-collector"
province = "thanh-hoa"

[store]
path = "/tmp/netmon-never-created.db"

[http]
listen = "127.0.0.1:8080"

[silence]
after = "35s"
"#;

/// Runs `binary check --config FILE`; returns (exit code, stdout + stderr).
fn check(binary: &str, file: &std::path::Path) -> (Option<i32>, String) {
    let output = daemon_command(binary)
        .arg("check")
        .arg("--config")
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// (case name, config text, key the message must name)
fn cases(
    good: &str,
    bad_duration: (&str, &str, &str),
    missing: (&str, &str),
    unknown: (&str, &str, &str),
) -> Vec<(String, String, String)> {
    let (from, to, duration_key) = bad_duration;
    let (line, missing_key) = missing;
    let (after, insert, unknown_key) = unknown;
    assert!(good.contains(from) && good.contains(line) && good.contains(after));
    vec![
        (
            "bad-duration".into(),
            good.replace(from, to),
            duration_key.into(),
        ),
        (
            "missing-key".into(),
            good.replace(line, ""),
            missing_key.into(),
        ),
        (
            "unknown-key".into(),
            good.replace(after, &format!("{after}{insert}")),
            unknown_key.into(),
        ),
    ]
}

fn assert_refused(binary: &str, good: &str, cases: Vec<(String, String, String)>) {
    let scratch = Scratch::new(&format!("bad-config-{binary}")).unwrap();
    let path = scratch.write("good.toml", good).unwrap();
    let (code, text) = check(binary, &path);
    assert_eq!(
        code,
        Some(0),
        "{binary} check must accept the good config: {text}"
    );
    for (name, text, key) in cases {
        let path = scratch.write(&format!("{name}.toml"), &text).unwrap();
        let (code, message) = check(binary, &path);
        assert_eq!(
            code,
            Some(64),
            "{binary} check on {name}: exit {code:?}, output: {message}"
        );
        assert!(
            message.contains(&path.display().to_string()),
            "{binary} {name}: the message must name the file {}: {message}",
            path.display()
        );
        assert!(
            message.contains(&key),
            "{binary} {name}: the message must name {key:?}: {message}"
        );
    }
}

#[test]
fn bad_configs_exit_64_naming_the_key() {
    // Not needed for `check`, but every test must run in the full environment.
    let _ = shared_url();
    assert_refused(
        "netmon-agent",
        AGENT,
        cases(
            AGENT,
            ("interval = \"1s\"", "interval = \"soon\"", "probe.interval"),
            ("agent_id = \"thon-giang-trung\"\n", "agent_id"),
            ("down_after = 3\n", "colour = \"blue\"\n", "colour"),
        ),
    );
    assert_refused(
        "netmon-collector",
        COLLECTOR,
        cases(
            COLLECTOR,
            ("after = \"35s\"", "after = \"soon\"", "silence.after"),
            ("url = \"mqtt://127.0.0.1:1883\"\n", "url"),
            ("after = \"35s\"\n", "afterr = \"3s\"\n", "afterr"),
        ),
    );
}

/// The example configs in `deploy/examples/` (the documentation of every key) are accepted as
/// they are: the docs cannot drift from what the daemons read.
#[test]
fn example_configs_pass_check() {
    let _ = shared_url();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    for (binary, file) in [
        ("netmon-agent", "agent.toml"),
        ("netmon-collector", "collector.toml"),
    ] {
        let (code, text) = check(binary, &examples.join(file));
        assert_eq!(code, Some(0), "{binary} check {file}: {text}");
    }
}
