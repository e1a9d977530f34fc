//! Tests of the snapshot file on a real store: snapshot + tail is the full replay's fold; a
//! damaged file, one of another format, build, schema or configuration, one beyond the store's
//! end (a store restored from an older backup) or of another store is ignored, said why at WARN,
//! and the store replayed whole.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use netmon_events::testing::{Boot, came_back, described, round, started, target, went_down};
use netmon_events::{Envelope, encode_batch};
use rumqttc::{Publish, QoS};

use super::format::{self, Expected};
use super::{Folded, SnapshotFile, fold_key};
use crate::alerts::{Alerting, AlertsConfig};
use crate::intake::clock::ClockPolicy;
use crate::intake::recorder::tests::warnings_during;
use crate::intake::recorder::{Now, Recorder};
use crate::store::Store;
use crate::store::testkit::{TempDir, temp_dir};

const SILENCE_AFTER: Duration = Duration::from_secs(3600);

fn store_path(dir: &TempDir) -> PathBuf {
    dir.path().join("events.db")
}

fn file(store: &Path) -> SnapshotFile {
    SnapshotFile::beside(store, Duration::from_secs(1))
}

/// A recorder on `store` with `alerting`, from its snapshot when `snapshots`.
fn open_with(store: &Path, snapshots: bool, alerting: Alerting) -> Recorder {
    let snapshots = snapshots.then(|| file(store));
    let opened = Store::open(store).unwrap();
    let policy = ClockPolicy::default();
    Recorder::rebuild_from(opened, snapshots, None, SILENCE_AFTER, policy, alerting).unwrap()
}

fn open(store: &Path, snapshots: bool) -> Recorder {
    open_with(store, snapshots, Alerting::default())
}

fn now() -> Now {
    Now {
        wall: Utc::now().trunc_subsecs(3),
        mono_ms: 1,
    }
}

fn feed(rec: &mut Recorder, events: &[Envelope]) {
    let topic = format!("netmon/v1/thanh-hoa/{}/events", events[0].agent);
    let message = Publish::new(topic, QoS::AtLeastOnce, encode_batch(events));
    rec.record(&[message], now()).unwrap();
}

/// Two agents: a link up, down and back; another that goes down. The first part, a snapshot,
/// then the rest (the tail), all in `store`.
fn history(store: &Path) {
    let mut rec = open(store, true);
    let link = target("UBND xã Cẩm Tú", "10.20.0.1");
    let mut a = Boot::new("giang-trung");
    let mut b = Boot::new("tho-lien");
    feed(
        &mut rec,
        &[
            a.next(started()),
            a.next(described(std::slice::from_ref(&link))),
        ],
    );
    feed(&mut rec, &[a.next(round(&link, 3)), b.next(started())]);
    feed(&mut rec, &[b.next(round(&link, 3))]);
    let since = a.time();
    feed(
        &mut rec,
        &[a.next(round(&link, 0)), a.next(went_down(&link, since))],
    );
    rec.snapshot_now(now());
    feed(&mut rec, &[a.next(came_back(&link, since, 3000))]);
    feed(
        &mut rec,
        &[b.next(round(&link, 0)), b.next(went_down(&link, b.time()))],
    );
}

/// The snapshot file beside `store`, rewritten by `change` (the checksum made right again).
fn rewrite(store: &Path, change: impl FnOnce(&mut format::Header, &mut Folded)) {
    let path = file(store).path().to_owned();
    let bytes = std::fs::read(&path).unwrap();
    let expected = Expected {
        schema: crate::store::schema::SCHEMA_VERSION,
        build: format::build(),
        fold: fold_key(&Alerting::default()),
    };
    let (mut header, mut folded) = format::decode(&bytes, &expected).unwrap();
    change(&mut header, &mut folded);
    std::fs::write(&path, format::encode(&header, &folded).unwrap()).unwrap();
}

/// Opens `store` from its snapshot: the WARN lines logged, and whether the fold equals the full
/// replay's.
fn reopen(store: &Path) -> (Vec<String>, bool) {
    let mut rec = None;
    let lines = warnings_during(|| rec = Some(open(store, true)));
    let same = rec.unwrap().folded() == open(store, false).folded();
    (lines, same)
}

fn ignored_because(store: &Path, why: &str) {
    let (lines, same) = reopen(store);
    assert!(same, "the full replay's fold");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("snapshot ignored") && l.contains(why)),
        "no WARN saying {why:?}: {lines:#?}"
    );
}

#[test]
fn snapshot_and_tail_give_the_full_replays_fold() {
    let dir = temp_dir();
    let store = store_path(&dir);
    history(&store);
    let loaded = file(&store).load(
        &Store::open(&store).unwrap(),
        fold_key(&Alerting::default()),
    );
    let loaded = loaded.expect("the snapshot is usable");
    let full = open(&store, false).folded();
    assert!(loaded.state.last_id < full.state.last_id, "events after it");
    assert_ne!(loaded, full);
    let (lines, same) = reopen(&store);
    assert!(same);
    assert!(lines.is_empty(), "{lines:#?}");
}

#[test]
fn a_damaged_snapshot_is_ignored() {
    let dir = temp_dir();
    let store = store_path(&dir);
    history(&store);
    let path = file(&store).path().to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    ignored_because(&store, "the file is damaged");
    std::fs::write(&path, &bytes[..middle]).unwrap();
    ignored_because(&store, "the file is damaged");
    std::fs::write(&path, "not a snapshot").unwrap();
    ignored_because(&store, "not a snapshot file");
}

#[test]
fn a_snapshot_of_another_format_schema_or_build_is_ignored() {
    let dir = temp_dir();
    let store = store_path(&dir);
    history(&store);
    let path = file(&store).path().to_owned();
    let good = std::fs::read(&path).unwrap();
    let mut other = good.clone();
    other[format::MAGIC.len()..format::MAGIC.len() + 4].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&path, other).unwrap();
    ignored_because(&store, "format version 2; this build reads version 1");
    std::fs::write(&path, &good).unwrap();
    rewrite(&store, |h, _| h.schema -= 1);
    ignored_because(&store, "written for store schema");
    std::fs::write(&path, &good).unwrap();
    rewrite(&store, |h, _| h.build = "0.0.9+00000000".into());
    ignored_because(&store, "written by build \"0.0.9+00000000\"");
}

#[test]
fn a_snapshot_folded_with_other_alert_settings_is_ignored() {
    let dir = temp_dir();
    let store = store_path(&dir);
    history(&store);
    let config = AlertsConfig {
        loss_pct: 25.0,
        ..AlertsConfig::default()
    };
    let mut rec = None;
    let lines = warnings_during(|| {
        rec = Some(open_with(&store, true, Alerting::new(config.clone(), None)))
    });
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[alerts] or the inventory"))
    );
    let full = open_with(&store, false, Alerting::new(config, None)).folded();
    assert_eq!(rec.unwrap().folded(), full);
}

/// A store restored from a backup older than the snapshot: the snapshot is beyond its end.
#[test]
fn a_snapshot_beyond_the_stores_end_is_ignored() {
    let dir = temp_dir();
    let store = store_path(&dir);
    let backup = dir.path().join("backup.db");
    {
        let mut rec = open(&store, true);
        let mut a = Boot::new("giang-trung");
        feed(&mut rec, &[a.next(started())]);
        let sql = "VACUUM INTO ?1";
        let to = backup.display().to_string();
        rec.store().conn().execute(sql, [to]).unwrap();
        feed(&mut rec, &[a.next(round(&target("xã", "10.20.0.1"), 3))]);
        rec.snapshot_now(now());
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = store.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    std::fs::copy(&backup, &store).unwrap();
    ignored_because(&store, "beyond the store's last event 1");
}

#[test]
fn a_snapshot_of_another_store_is_ignored() {
    let dir = temp_dir();
    let store = store_path(&dir);
    history(&store);
    let other = dir.path().join("other.db");
    {
        let mut rec = open(&other, false);
        let mut c = Boot::new("cam-tu");
        let events: Vec<_> = (0..20).map(|_| c.next(started())).collect();
        feed(&mut rec, &events);
    }
    std::fs::copy(file(&store).path(), file(&other).path()).unwrap();
    ignored_because(&other, "another store");
}

#[test]
fn due_every_interval_when_something_new_was_stored_and_once_soon_after_a_replay() {
    let mut file = file(Path::new("/nonexistent/events.db"));
    assert!(!file.due(999, 10), "not before the interval");
    assert!(file.due(1000, 10));
    file.position = 10;
    file.next_ms = 2000;
    assert!(!file.due(5000, 10), "nothing new");
    assert!(file.due(5000, 11));
    file.next_ms = 9000;
    file.soon();
    assert!(file.due(0, 11));
}
