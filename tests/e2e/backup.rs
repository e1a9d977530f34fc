//! Backup and restore (ADR 15, `docs/operations.md`): a backup taken while events stream in, the
//! store destroyed, the backup restored, the collector started on it: the state is the one the
//! backup's events make, and every event the backup holds is in the restored store.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use netmon_events::encode_batch;
use netmon_events::testing::{Boot, came_back, events_topic, round, started, target, went_down};
use netmon_tests::daemons::{CANARY_AGENT, daemon_command, free_port, read_events};
use netmon_tests::{Collector, CollectorConfig, Scratch, publish, shared_url, unique, wait_for};
use serde_json::Value;

/// The streaming agents' names begin so.
const STREAMING: &str = "tram-";
/// Events each streaming agent publishes, in one batch.
const BATCH: usize = 10;
/// How long the collector takes at most to declare silent an agent with a usual gap: 4 s of
/// `silence.min_quiet`, a tick, and time to spare.
const SILENCE_DECLARED: Duration = Duration::from_secs(20);

#[test]
fn backup_while_streaming_then_destroy_restore_and_start_gives_the_backups_state() {
    let scratch = Scratch::new("backup").unwrap();
    let province = unique("backup");
    let mut collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let url = shared_url();

    // Before the stream: Thôn Giang Trung up, down and back; Thôn Thọ Liên down.
    let commune = target("UBND xã Cẩm Tú", "10.20.0.1");
    let kien_tho = target("UBND xã Kiên Thọ", "10.21.0.1");
    let mut a = Boot::new("giang-trung");
    let mut a_events = vec![a.next(started()), a.next(round(&commune, 3))];
    let down_since = a.time() + chrono::Duration::seconds(1);
    for _ in 0..3 {
        a_events.push(a.next(round(&commune, 0)));
    }
    a_events.push(a.next(went_down(&commune, down_since)));
    a_events.push(a.next(came_back(&commune, down_since, 4000)));
    let mut b = Boot::new("tho-lien");
    let b_since = b.time() + chrono::Duration::seconds(1);
    let b_events = vec![
        b.next(started()),
        b.next(round(&kien_tho, 0)),
        b.next(went_down(&kien_tho, b_since)),
    ];
    for (agent, events) in [("giang-trung", &a_events), ("tho-lien", &b_events)] {
        publish(&url, &events_topic(&province, agent), &encode_batch(events)).unwrap();
    }
    wait_for(
        "both agents folded into /api/v1/state",
        Duration::from_secs(20),
        || {
            let state = collector.get_json("/api/v1/state").ok()?;
            let folded = last_seq(&state, "giang-trung") == Some(a_events.len() as u64)
                && last_seq(&state, "tho-lien") == Some(b_events.len() as u64);
            folded.then_some(())
        },
    );

    settle(&collector);
    let before = collector.get_json("/api/v1/state").unwrap();

    // The stream: one agent after another, each one batch (no usual gap, so none is declared
    // silent within `silence.after`, an hour), until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = {
        let (stop, url, province) = (stop.clone(), url.clone(), province.clone());
        std::thread::spawn(move || {
            let link = target("UBND xã Tam Thanh", "10.22.0.1");
            let mut agents = 0;
            while !stop.load(Ordering::Relaxed) {
                agents += 1;
                let agent = streaming(agents);
                let mut boot = Boot::new(&agent);
                let mut batch = vec![boot.next(started())];
                batch.extend((1..BATCH).map(|_| boot.next(round(&link, 3))));
                publish(
                    &url,
                    &events_topic(&province, &agent),
                    &encode_batch(&batch),
                )
                .unwrap();
            }
            agents
        })
    };
    let streamed = |state: &Value| {
        let agents = state["agents"].as_array().into_iter().flatten();
        agents
            .filter(|view| {
                view["agent"]
                    .as_str()
                    .is_some_and(|a| a.starts_with(STREAMING))
                    && view["last_seq"] == BATCH as u64
            })
            .count()
    };
    wait_for(
        "the first streaming agents in the live state",
        Duration::from_secs(20),
        || {
            let state = collector.get_json("/api/v1/state").ok()?;
            (streamed(&state) >= 10).then_some(())
        },
    );

    // The backup, while the stream goes on.
    let backup = scratch.join("backup.db");
    let made = collector_cli(&collector.config_path, "backup", &backup, &["--lang", "en"]);
    assert_success(&made, "backup");
    let said = String::from_utf8_lossy(&made.stdout);
    assert!(said.starts_with("Backed up "), "{said}");
    assert!(said.contains(" events (up to position "), "{said}");
    assert!(said.contains(" bytes = "), "{said}");
    let again = collector_cli(&collector.config_path, "backup", &backup, &[]);
    assert_eq!(again.status.code(), Some(64), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("đã tồn tại; thêm --force"),
        "{again:?}"
    );

    // A configuration whose store is the backup, on a port nothing listens on.
    let backup_config = CollectorConfig {
        store_path: backup.display().to_string(),
        http_listen: format!("127.0.0.1:{}", free_port().unwrap()),
        ..collector.config.clone()
    };
    let backup_config_path = scratch
        .write("backup.toml", backup_config.to_toml())
        .unwrap();
    let in_backup = read_events(&backup_config_path, &[]).unwrap();
    // The streaming agents in the backup: the first ones, each whole (a batch is one commit).
    let mut in_backup_streamed = 0;
    for n in 1.. {
        let seqs = seqs_of(&in_backup, &streaming(n));
        if seqs.is_empty() {
            break;
        }
        assert_eq!(
            seqs,
            (1..=BATCH as u64).collect::<Vec<_>>(),
            "{}",
            streaming(n)
        );
        in_backup_streamed = n;
    }
    assert!(in_backup_streamed >= 10, "{in_backup_streamed}");
    assert!(
        seqs_of(&in_backup, &streaming(in_backup_streamed + 2)).is_empty(),
        "the backup holds the first streaming agents, without a gap"
    );
    // The stream went on past the backup: it was taken mid-stream.
    wait_for(
        "streamed events stored after the backup",
        Duration::from_secs(20),
        || {
            let state = collector.get_json("/api/v1/state").ok()?;
            (streamed(&state) > in_backup_streamed + 5).then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    let sent = streamer.join().unwrap();
    wait_for(
        "every streaming agent in the live state",
        Duration::from_secs(20),
        || {
            let state = collector.get_json("/api/v1/state").ok()?;
            (streamed(&state) == sent).then_some(())
        },
    );

    // Restore refuses while the daemon answers.
    let refused = collector_cli(&collector.config_path, "restore", &backup, &["--force"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("hãy dừng collector"),
        "{refused:?}"
    );

    // Stop, destroy the store, restore.
    let status = collector.proc.terminate(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "{status}: {}", collector.proc.log());
    let store = Path::new(&collector.config.store_path);
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", store.display());
        if Path::new(&path).exists() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let restored = collector_cli(&collector.config_path, "restore", &backup, &[]);
    assert_success(&restored, "restore");
    let said = String::from_utf8_lossy(&restored.stdout);
    assert!(
        said.starts_with(&format!(
            "Đã khôi phục {} sự kiện (đến vị trí ",
            in_backup.len()
        )),
        "{said}"
    );
    let lines = |events: &[netmon_tests::StoredEvent]| {
        events.iter().map(|e| e.line.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        lines(&read_events(&collector.config_path, &[]).unwrap()),
        lines(&in_backup),
        "the restored store is the backup, event for event"
    );
    // The state the backup's events make, rebuilt from the backup by `status` (no daemon there).
    let expected = status_json(&backup_config_path);

    // Start on the restored store.
    let collector = Collector::start("restored", collector.config.clone(), &scratch, None).unwrap();
    let after = collector.get_json("/api/v1/state").unwrap();
    assert_eq!(
        after, expected,
        "the restored collector's state is the backup's"
    );
    assert_eq!(streamed(&after), in_backup_streamed);
    // What was folded before the backup is there as it was.
    for list in ["agents", "links"] {
        for entry in before[list].as_array().unwrap() {
            assert!(
                after[list].as_array().unwrap().contains(entry),
                "{list}: {entry} is not in the restored state {after}"
            );
        }
    }
    // Nothing the backup held was lost by starting on it.
    let now_stored = read_events(&collector.config_path, &[]).unwrap();
    assert!(
        lines(&now_stored).starts_with(&lines(&in_backup)),
        "the restored store must keep every event of the backup"
    );
}

/// The `n`th streaming agent.
fn streaming(n: usize) -> String {
    format!("{STREAMING}{n:04}")
}

/// Waits until the collector has nothing more to declare within `silence.after`: an agent sent
/// more than one message (the canary may have, one a second until one was stored) has a usual
/// gap and is declared silent soon after its last one. The restored collector would declare it
/// at its start, a change the backup cannot hold.
fn settle(collector: &Collector) {
    let canary = collector.events(&["--agent", CANARY_AGENT]).unwrap();
    let messages: BTreeSet<_> = canary.iter().filter_map(|e| e.received()).collect();
    if messages.len() > 1 {
        wait_for("the canary declared silent", SILENCE_DECLARED, || {
            let state = collector.get_json("/api/v1/state").ok()?;
            let view = state["agents"]
                .as_array()?
                .iter()
                .find(|view| view["agent"] == CANARY_AGENT)?
                .clone();
            (view["online"] == false).then_some(())
        });
    }
}

/// `netmon-collector COMMAND --config CONFIG --to|--from FILE EXTRA…`.
fn collector_cli(config: &Path, command: &str, file: &Path, extra: &[&str]) -> Output {
    let flag = if command == "backup" {
        "--to"
    } else {
        "--from"
    };
    daemon_command("netmon-collector")
        .arg(command)
        .arg("--config")
        .arg(config)
        .arg(flag)
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `status --json` of `config` (the state rebuilt from its store when no daemon answers).
fn status_json(config: &Path) -> Value {
    let output = daemon_command("netmon-collector")
        .arg("status")
        .arg("--config")
        .arg(config)
        .arg("--json")
        .output()
        .unwrap();
    assert_success(&output, "status --json");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The `last_seq` of `agent` in a `/api/v1/state` document.
fn last_seq(state: &Value, agent: &str) -> Option<u64> {
    state["agents"]
        .as_array()?
        .iter()
        .find(|view| view["agent"] == agent)?["last_seq"]
        .as_u64()
}

/// The seqs of `agent`'s stored events, in store order.
fn seqs_of(events: &[netmon_tests::StoredEvent], agent: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.envelope.agent.as_str() == agent)
        .map(|e| e.envelope.seq)
        .collect()
}
