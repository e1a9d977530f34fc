//! Tests of `backup` and `restore` on real SQLite files.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::intake::clock::ClockSource;
use crate::store::testkit::{TempDir, envelope_json, temp_dir};
use crate::store::{NewEvent, Origin, Query, Store, StoredEvent};

const HEARTBEAT: &str = r#""type":"agent_heartbeat","uptime_s":30,"backlog":0"#;

fn heartbeats(agent: &str, seqs: std::ops::Range<u64>) -> Vec<NewEvent> {
    seqs.map(|seq| {
        let envelope: netmon_events::Envelope =
            serde_json::from_str(&envelope_json(agent, "boot-1", seq, HEARTBEAT)).unwrap();
        NewEvent {
            province: "thanh-hoa".parse().unwrap(),
            received: envelope.time,
            origin: Origin::Agent,
            time: envelope.time,
            clock: ClockSource::Agent,
            late: false,
            envelope,
        }
    })
    .collect()
}

/// A store at `dir/events.db` holding `n` heartbeats of agent `a`.
fn store_with(dir: &TempDir, n: u64) -> PathBuf {
    let path = dir.path().join("events.db");
    Store::open(&path)
        .unwrap()
        .append(&heartbeats("a", 1..n + 1), &[])
        .unwrap();
    path
}

fn all(path: &Path) -> Vec<StoredEvent> {
    Store::open_read_only(path)
        .unwrap()
        .query(&Query::default())
        .unwrap()
}

/// A configuration whose store is `store` and whose HTTP port is `listen`.
fn config(dir: &TempDir, store: &Path, listen: &str) -> Config {
    let file = dir.path().join("collector.toml");
    std::fs::write(
        &file,
        format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nclient_id = \"c\"\nprovince = \"thanh-hoa\"\n\
             [store]\npath = \"{}\"\n[http]\nlisten = \"{listen}\"\n",
            store.display()
        ),
    )
    .unwrap();
    Config::load_with_env(&file, []).unwrap()
}

/// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_copy_taken_while_the_writer_commits_is_one_commit_of_the_store() {
    let dir = temp_dir();
    let path = store_with(&dir, 2000);
    // The writer keeps committing, one event a transaction, during the whole copy.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut store = Store::open(&path).unwrap();
            let mut seq = 1;
            while !stop.load(Ordering::Relaxed) {
                store.append(&heartbeats("b", seq..seq + 1), &[]).unwrap();
                seq += 1;
            }
            seq - 1
        })
    };
    // Four pages a step: a hundred steps or so, with the writer's commits in between.
    let copy = dir.path().join("copy.db");
    let copied = copy_in_steps(&path, &copy, 4).unwrap();
    // A single file: nothing of the copy's own journal is left beside it.
    for leftover in ["-wal", "-shm", "-journal"] {
        assert!(!sibling(&copy, leftover).exists(), "{leftover}");
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0, "the writer committed during the copy");

    let source = all(&path);
    let copied_events = all(&copy);
    assert_eq!(copied.events, copied_events.len() as u64);
    assert!(copied.events >= 2000);
    assert_eq!(copied.position, copied_events.last().unwrap().id);
    assert_eq!(copied.bytes, std::fs::metadata(&copy).unwrap().len());
    // Exactly the store up to one position: the same events, none missing.
    assert_eq!(copied_events[..], source[..copied_events.len()]);
    assert_eq!(
        Store::open_read_only(&copy).unwrap().count().unwrap(),
        copied.events
    );
    // A single file, private, whose readers leave nothing beside it.
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        Store::open_read_only(&copy)
            .unwrap()
            .journal_mode()
            .unwrap(),
        "delete"
    );
    assert!(!sibling(&copy, "-wal").exists());
    // It is a store the daemon opens (WAL, writable) and appends to.
    let mut reopened = Store::open(&copy).unwrap();
    assert_eq!(reopened.journal_mode().unwrap(), "wal");
    reopened.append(&heartbeats("c", 1..2), &[]).unwrap();
}

#[test]
fn backup_refuses_to_overwrite_without_force_and_says_what_it_copied() {
    let dir = temp_dir();
    let path = store_with(&dir, 3);
    let config = config(&dir, &path, &closed_port());
    let to = dir.path().join("backup.db");
    let mut out = Vec::new();
    backup(&config, &to, false, Lang::Vi, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("Đã sao lưu 3 sự kiện (đến vị trí 3, ")
            && text.contains(&format!(" MiB) vào {} trong ", to.display()))
            && text.ends_with(" giây.\n"),
        "{text}"
    );
    assert!(!sibling(&to, ".partial").exists());

    let err = backup(&config, &to, false, Lang::En, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, Failure::Usage(m) if m.contains("exists; add --force")),
        "{err}"
    );
    let err = backup(&config, &to, false, Lang::Vi, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("đã tồn tại"), "{err}");

    Store::open(&path)
        .unwrap()
        .append(&heartbeats("a", 4..6), &[])
        .unwrap();
    let mut out = Vec::new();
    backup(&config, &to, true, Lang::En, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(&format!(
            "Backed up 5 events (up to position 5, {} bytes = ",
            std::fs::metadata(&to).unwrap().len()
        )) && text.contains(&format!(" MiB) to {} in ", to.display())),
        "{text}"
    );
    assert_eq!(all(&to).len(), 5);

    let err = backup(&config, &path, true, Lang::En, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, Failure::Usage(m) if m.contains("the store itself")),
        "{err}"
    );
}

#[test]
fn only_a_netmon_store_of_a_readable_schema_is_copied_or_restored() {
    let dir = temp_dir();
    let to = dir.path().join("to.db");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "không phải cơ sở dữ liệu\n".repeat(100)).unwrap();
    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); PRAGMA user_version = 1;")
        .unwrap();
    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE events(id INTEGER PRIMARY KEY); PRAGMA user_version = 99;")
        .unwrap();
    for (file, expected) in [
        (dir.path().join("missing.db"), "no such file"),
        (text, "not an SQLite database"),
        (other, "not a netmon event store"),
        (newer, "schema version 99 is newer"),
    ] {
        let err = copy_to(&file, &to, false).unwrap_err().to_string();
        assert!(err.contains(expected), "{file:?}: {err}");
        let err = check(&file).unwrap_err();
        assert!(format!("{err:#}").contains(expected), "{file:?}: {err:#}");
        assert!(!to.exists());
    }
}

#[test]
fn restore_replaces_the_store_and_what_belonged_to_it() {
    let dir = temp_dir();
    let path = store_with(&dir, 10);
    let saved = dir.path().join("saved.db");
    copy_to(&path, &saved, false).unwrap();
    // The store goes on, then is lost; its WAL, shared memory and snapshot stay behind.
    Store::open(&path)
        .unwrap()
        .append(&heartbeats("a", 11..21), &[])
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    for leftover in ["-wal", "-shm", ".snapshot"] {
        std::fs::write(sibling(&path, leftover), b"stale").unwrap();
    }
    let config = config(&dir, &path, &closed_port());
    let mut out = Vec::new();
    restore(&config, &saved, false, Lang::En, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        text,
        format!(
            "Restored 10 events (up to position 10, {bytes} bytes = {:.1} MiB) from {} into {}. Start the collector.\n",
            bytes as f64 / 1024.0 / 1024.0,
            saved.display(),
            path.display(),
        )
    );
    for leftover in ["-wal", "-shm", ".snapshot", ".partial"] {
        assert!(!sibling(&path, leftover).exists(), "{leftover}");
    }
    assert_eq!(all(&path), all(&saved));
    // Once the store exists again, only --force replaces it.
    let err = restore(&config, &saved, false, Lang::Vi, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, Failure::Usage(m) if m.contains("đã tồn tại; thêm --force")),
        "{err}"
    );
    Store::open(&path)
        .unwrap()
        .append(&heartbeats("a", 11..12), &[])
        .unwrap();
    let mut out = Vec::new();
    restore(&config, &saved, true, Lang::Vi, &mut out).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("Đã khôi phục 10 sự kiện (đến vị trí 10, "),
    );
    assert_eq!(all(&path).len(), 10);
}

#[test]
fn restore_refuses_while_the_daemon_answers() {
    let dir = temp_dir();
    let path = store_with(&dir, 2);
    let saved = dir.path().join("saved.db");
    copy_to(&path, &saved, false).unwrap();
    std::fs::remove_file(&path).unwrap();
    // A daemon's HTTP port: every connection gets a 503 (it may be replaying).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let _ = std::io::Read::read(&mut stream, &mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 8\r\nconnection: close\r\n\r\nreplay\r\n",
            );
        }
    });
    let config = config(&dir, &path, &listen);
    let err = restore(&config, &saved, true, Lang::En, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, Failure::Runtime(_)) && err.to_string().contains("stop the collector"),
        "{err}"
    );
    let err = restore(&config, &saved, true, Lang::Vi, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("hãy dừng collector"), "{err}");
    assert!(!path.exists(), "nothing was restored");
}
