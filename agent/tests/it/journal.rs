//! The journal on temp directories: round trip through a reopen, torn and corrupt tails, overflow
//! with exact `journal_overflowed` ranges, trimming by watermark across boots, the lock, and the
//! read-only inspection.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netmon_agent::journal::{self, Damage, Journal, JournalError, Lost};
use netmon_events::{Ack, BootAck, BootId, Envelope, Event, testing};

use netmon_harness::Scratch;

/// A typical probe round of `boot`, seq `seq`.
pub fn round(boot: &str, seq: u64) -> Envelope {
    let event = Event::ProbeRoundCompleted {
        target: testing::target("UBND xã Cẩm Tú", "10.20.0.1"),
        sent: 3,
        received: 3,
        rtt_min_ms: Some(1.204),
        rtt_avg_ms: Some(1.5),
        rtt_max_ms: Some(1.796),
        rtt_mdev_ms: Some(0.296),
        loss_pct: 0.0,
    };
    testing::envelope("thanh-hoa-cam-tu-giang-trung", boot, seq, event)
}

fn boot(s: &str) -> BootId {
    s.parse().unwrap()
}

fn ack(pairs: &[(&str, u64)]) -> Ack {
    Ack {
        acks: pairs
            .iter()
            .map(|(b, seq)| BootAck {
                boot: boot(b),
                seq: *seq,
            })
            .collect(),
    }
}

/// Every unacknowledged event in the journal, as (boot, seq).
fn keys(journal: &Journal) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let selected = journal.select(from, 100, 64 * 1024).unwrap();
        if selected.events.is_empty() && selected.next == from {
            return out;
        }
        out.extend(selected.events.iter().map(|e| (e.boot.to_string(), e.seq)));
        from = selected.next;
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

fn seqs(range: std::ops::RangeInclusive<u64>, b: &str) -> Vec<(String, u64)> {
    range.map(|s| (b.to_owned(), s)).collect()
}

#[test]
fn append_and_reopen_round_trip() {
    let dir = Scratch::new("journal-round-trip").unwrap();
    let originals: Vec<Envelope> = (1..=250).map(|s| round("boot-a", s)).collect();
    {
        let (journal, recovery) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(recovery.records, 0);
        for e in &originals {
            assert_eq!(journal.append(e).unwrap(), vec![]);
        }
        journal.sync().unwrap();
    }
    let (journal, recovery) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(recovery.records, 250);
    assert!(recovery.truncations.is_empty());
    assert!(
        segments(dir.path()).len() > 1,
        "64 KiB segments: 250 rounds span several"
    );
    let mut read = Vec::new();
    let mut from = 0;
    while read.len() < 250 {
        let selected = journal.select(from, 100, 64 * 1024).unwrap();
        assert!(selected.events.len() <= 100);
        read.extend(selected.events);
        from = selected.next;
    }
    assert_eq!(read, originals, "byte-exact events, in order");
    let backlog = journal.backlog();
    assert_eq!(backlog.events, 250);
    assert_eq!(backlog.oldest, Some((boot("boot-a"), 1)));
    assert_eq!(backlog.newest, Some((boot("boot-a"), 250)));
}

/// Writes 10 rounds, damages the last record with `damage`, reopens.
fn damaged_tail(
    label: &str,
    damage: impl Fn(&mut Vec<u8>),
) -> (Scratch, Journal, journal::Recovery) {
    let dir = Scratch::new(label).unwrap();
    {
        let (journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        for s in 1..=10 {
            journal.append(&round("boot-a", s)).unwrap();
        }
        journal.sync().unwrap();
    }
    let files = segments(dir.path());
    assert_eq!(files.len(), 1);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    damage(&mut bytes);
    std::fs::write(&files[0], &bytes).unwrap();
    let (journal, recovery) = Journal::open(dir.path(), 1 << 20).unwrap();
    (dir, journal, recovery)
}

#[test]
fn a_torn_tail_is_cut_and_everything_before_it_kept() {
    let record = round("boot-a", 10);
    let record_len = 8 + serde_json::to_vec(&record).unwrap().len() as u64;
    let (dir, journal, recovery) = damaged_tail("journal-torn", |bytes| {
        let len = bytes.len();
        bytes.truncate(len - 5);
    });
    assert_eq!(recovery.records, 9);
    assert_eq!(recovery.truncations.len(), 1);
    let cut = &recovery.truncations[0];
    assert_eq!(cut.damage, Damage::Partial);
    assert_eq!(cut.bytes, record_len - 5);
    assert_eq!(keys(&journal), seqs(1..=9, "boot-a"));
    // The journal goes on where the good part ended, and the result reads back whole.
    journal.append(&round("boot-b", 1)).unwrap();
    drop(journal);
    let (journal, recovery) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert!(recovery.truncations.is_empty());
    let mut expected = seqs(1..=9, "boot-a");
    expected.push(("boot-b".into(), 1));
    assert_eq!(keys(&journal), expected);
}

#[test]
fn flipped_bytes_in_the_last_record_are_cut() {
    let (_dir, journal, recovery) = damaged_tail("journal-flipped", |bytes| {
        let at = bytes.len() - 20;
        bytes[at] ^= 0xff;
        bytes[at + 1] ^= 0x01;
    });
    assert_eq!(recovery.records, 9);
    assert_eq!(recovery.truncations[0].damage, Damage::BadChecksum);
    assert_eq!(keys(&journal), seqs(1..=9, "boot-a"));
}

#[test]
fn zeros_after_a_power_cut_are_cut() {
    let (_dir, journal, recovery) = damaged_tail("journal-zeros", |bytes| {
        bytes.extend_from_slice(&[0; 4096]);
    });
    assert_eq!(recovery.records, 10);
    assert_eq!(recovery.truncations[0].damage, Damage::BadLength(0));
    assert_eq!(recovery.truncations[0].bytes, 4096);
    assert_eq!(keys(&journal), seqs(1..=10, "boot-a"));
}

#[test]
fn corruption_inside_an_older_segment_loses_only_the_rest_of_that_segment() {
    let dir = Scratch::new("journal-middle").unwrap();
    {
        // 64 KiB journal: 16 KiB segments of ~50 rounds each.
        let (journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        for s in 1..=150 {
            journal.append(&round("boot-a", s)).unwrap();
        }
    }
    let files = segments(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    // All rounds have the same record size: the first segment holds `per` of them.
    let record_len = 8 + serde_json::to_vec(&round("boot-a", 1)).unwrap().len();
    let per = std::fs::metadata(&files[0]).unwrap().len() / record_len as u64;
    // Damage the 10th record of the first segment.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[9 * record_len + 30] ^= 0x55;
    std::fs::write(&files[0], &bytes).unwrap();
    let (journal, recovery) = Journal::open(dir.path(), 64 * 1024).unwrap();
    assert_eq!(recovery.truncations.len(), 1);
    assert_eq!(recovery.truncations[0].offset, 9 * record_len as u64);
    let mut expected = seqs(1..=9, "boot-a");
    expected.extend(seqs(per + 1..=150, "boot-a"));
    assert_eq!(keys(&journal), expected, "lost: 10..={per}");
}

#[test]
fn overflow_drops_the_oldest_and_reports_exact_ranges() {
    let dir = Scratch::new("journal-overflow").unwrap();
    let (journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
    let mut lost: Vec<Lost> = Vec::new();
    // Boot a: 1..=150 (fits), of which 1..=20 acknowledged; then boot b: 1..=400.
    for s in 1..=150 {
        lost.extend(journal.append(&round("boot-a", s)).unwrap());
    }
    assert!(lost.is_empty(), "150 rounds fit in 64 KiB");
    journal.acknowledge(&ack(&[("boot-a", 20)])).unwrap();
    for s in 1..=400 {
        lost.extend(journal.append(&round("boot-b", s)).unwrap());
    }
    assert!(journal.disk_bytes() <= 64 * 1024);
    assert!(!lost.is_empty());
    // Nothing acknowledged is reported lost; every lost range is contiguous and exact.
    let mut lost_keys = BTreeSet::new();
    for run in &lost {
        assert!(run.first_seq <= run.last_seq);
        assert_eq!(run.count(), run.last_seq - run.first_seq + 1);
        for s in run.first_seq..=run.last_seq {
            assert!(
                lost_keys.insert((run.boot.to_string(), s)),
                "reported twice"
            );
        }
    }
    assert_eq!(lost[0].boot, boot("boot-a"));
    assert_eq!(lost[0].first_seq, 21, "1..=20 were acknowledged, not lost");
    let kept: BTreeSet<(String, u64)> = keys(&journal).into_iter().collect();
    assert!(kept.is_disjoint(&lost_keys));
    // Kept + lost = every unacknowledged event ever appended.
    let all: BTreeSet<(String, u64)> = seqs(21..=150, "boot-a")
        .into_iter()
        .chain(seqs(1..=400, "boot-b"))
        .collect();
    let union: BTreeSet<_> = kept.union(&lost_keys).cloned().collect();
    assert_eq!(union, all);
    // What is kept is the newest: a suffix of boot b.
    let newest_lost_b = lost_keys
        .iter()
        .filter(|(b, _)| b == "boot-b")
        .map(|(_, s)| *s)
        .max()
        .unwrap_or(0);
    assert_eq!(
        keys(&journal),
        seqs(newest_lost_b + 1..=400, "boot-b"),
        "the oldest were dropped"
    );
    let total: u64 = lost.iter().map(Lost::count).sum();
    assert_eq!(journal.overflowed(), total);
    drop(journal);
    assert_eq!(
        journal::inspect(dir.path()).unwrap().overflowed,
        total,
        "persisted"
    );
}

#[test]
fn acknowledgements_trim_across_boots_and_persist() {
    let dir = Scratch::new("journal-trim").unwrap();
    {
        let (journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        for s in 1..=300 {
            journal.append(&round("boot-a", s)).unwrap();
        }
        for s in 1..=300 {
            journal.append(&round("boot-b", s)).unwrap();
        }
        let before = segments(dir.path()).len();
        let deleted = journal
            .acknowledge(&ack(&[("boot-a", 300), ("boot-b", 100)]))
            .unwrap();
        assert!(deleted >= 2, "boot a's segments are gone ({deleted})");
        assert_eq!(segments(dir.path()).len(), before - deleted);
        // A lower watermark never takes anything back.
        journal.acknowledge(&ack(&[("boot-b", 50)])).unwrap();
        let backlog = journal.backlog();
        assert_eq!(backlog.events, 200);
        assert_eq!(backlog.oldest, Some((boot("boot-b"), 101)));
        assert_eq!(keys(&journal), seqs(101..=300, "boot-b"));
        journal.sync().unwrap();
    }
    let (journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(
        journal.backlog().events,
        200,
        "the watermark survives a restart"
    );
    assert_eq!(keys(&journal), seqs(101..=300, "boot-b"));
    let inspection = journal::inspect(dir.path()).unwrap();
    assert_eq!(inspection.backlog.events, 200);
    assert_eq!(inspection.acked.seq_for(&boot("boot-b")), Some(100));
}

#[test]
fn the_lock_keeps_a_second_agent_out_and_inspection_changes_nothing() {
    let dir = Scratch::new("journal-lock").unwrap();
    let (journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
    for s in 1..=5 {
        journal.append(&round("boot-a", s)).unwrap();
    }
    match Journal::open(dir.path(), 1 << 20) {
        Err(JournalError::Locked { dir: locked }) => assert_eq!(locked, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Read-only inspection works while the journal is open, even with a torn tail, and leaves
    // every file as it was.
    let files = segments(dir.path());
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes.extend_from_slice(&[7, 0, 0]);
    std::fs::write(&files[0], &bytes).unwrap();
    let listing = |d: &Path| {
        let mut v: Vec<(PathBuf, u64)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path(), e.metadata().unwrap().len())
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    let inspection = journal::inspect(dir.path()).unwrap();
    assert_eq!(inspection.records, 5);
    assert_eq!(inspection.backlog.events, 5);
    assert_eq!(inspection.damaged_bytes, 3);
    assert_eq!(listing(dir.path()), before);
    drop(journal);
    let (_journal, recovery) = Journal::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(recovery.records, 5);
    assert_eq!(recovery.truncations[0].bytes, 3);
}
