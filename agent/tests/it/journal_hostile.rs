//! The journal against damaged or hostile files in its directory (audit F9): segment names at the
//! end of `u64`, a `journal_overflowed` record declaring a range that runs backwards in a full
//! journal, a sparse 300 MB segment, a segment larger than any agent writes, a garbage
//! `acked.json` for `run` and `netmon-agent journal` alike, and a seeded random loop over all of
//! them. Opening never panics and the journal stays usable: appending and reading back work.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use netmon_agent::journal::{self, Damage, Journal, disk, record};
use netmon_events::{BootId, Envelope, Event};

use crate::journal::round;
use netmon_harness::Scratch;

/// Smallest journal: 16 KiB segments.
const MAX_BYTES: u64 = 64 * 1024;

/// A round of `boot` with any `seq` (the shared `round` derives times from it).
fn round_at(boot: &str, seq: u64) -> Envelope {
    Envelope {
        seq,
        ..round(boot, 1)
    }
}

fn record_of(envelope: &Envelope) -> Vec<u8> {
    record::encode(&serde_json::to_vec(envelope).unwrap())
}

/// Rounds of `boot` from `first` until at least `bytes` of records.
fn rounds_filling(boot: &str, first: u64, bytes: usize) -> (Vec<u8>, u64) {
    let (mut out, mut seq) = (Vec::new(), first);
    while out.len() < bytes {
        out.extend(record_of(&round(boot, seq)));
        seq += 1;
    }
    (out, seq - 1)
}

fn overflowed(boot: &str, seq: u64, dropped: &str, first: u64, last: u64) -> Envelope {
    Envelope {
        event: Event::JournalOverflowed {
            dropped_boot: dropped.parse().unwrap(),
            first_seq: first,
            last_seq: last,
            count: last.wrapping_sub(first).wrapping_add(1),
        },
        ..round_at(boot, seq)
    }
}

fn write_segment(dir: &Path, number: u64, bytes: &[u8]) {
    std::fs::write(dir.join(disk::segment_name(number)), bytes).unwrap();
}

/// Every unacknowledged event, as (boot, seq).
fn keys(journal: &Journal) -> Vec<(String, u64)> {
    let (mut out, mut from) = (Vec::new(), 0);
    loop {
        let selected = journal.select(from, 100, 64 * 1024).unwrap();
        if selected.events.is_empty() && selected.next == from {
            return out;
        }
        out.extend(selected.events.iter().map(|e| (e.boot.to_string(), e.seq)));
        from = selected.next;
    }
}

fn seqs(boot: &str, range: std::ops::RangeInclusive<u64>) -> Vec<(String, u64)> {
    range.map(|s| (boot.to_owned(), s)).collect()
}

fn segment_numbers(dir: &Path) -> Vec<u64> {
    disk::list_segments(dir).unwrap()
}

/// Appends `count` rounds of a new boot and checks they read back, before and after a reopen:
/// the journal is usable.
fn still_usable(dir: &Path, journal: Journal, count: u64) {
    for s in 1..=count {
        journal.append(&round("usable", s)).unwrap();
    }
    let tail = |keys: Vec<(String, u64)>| -> Vec<(String, u64)> {
        keys.into_iter().filter(|(b, _)| b == "usable").collect()
    };
    assert_eq!(tail(keys(&journal)), seqs("usable", 1..=count));
    journal.sync().unwrap();
    drop(journal);
    let (journal, recovery) = Journal::open(dir, MAX_BYTES).unwrap();
    assert!(recovery.truncations.is_empty(), "{recovery:?}");
    assert_eq!(tail(keys(&journal)), seqs("usable", 1..=count));
}

#[test]
fn a_full_segment_named_u64_max_is_renumbered_and_the_journal_goes_on() {
    let dir = Scratch::new("journal-u64-max").unwrap();
    let (full, last) = rounds_filling("boot-a", 1, 16 * 1024);
    write_segment(dir.path(), u64::MAX, &full);
    let (journal, recovery) = Journal::open(dir.path(), MAX_BYTES).unwrap();
    assert_eq!(recovery.records as u64, last);
    assert_eq!(keys(&journal), seqs("boot-a", 1..=last));
    assert_eq!(
        segment_numbers(dir.path()),
        [1, 2],
        "renumbered, then a new active segment"
    );
    still_usable(dir.path(), journal, 5);

    // With an ordinary segment before it, and one just below the end.
    let dir = Scratch::new("journal-u64-max-2").unwrap();
    let (older, _) = rounds_filling("boot-a", 1, 100);
    write_segment(dir.path(), 7, &older);
    write_segment(dir.path(), u64::MAX - 1, &record_of(&round("boot-b", 1)));
    write_segment(dir.path(), u64::MAX, &full);
    let (journal, _) = Journal::open(dir.path(), MAX_BYTES).unwrap();
    assert_eq!(segment_numbers(dir.path()), [1, 2, 3, 4]);
    assert_eq!(keys(&journal).len() as u64, 1 + 1 + last);
    still_usable(dir.path(), journal, 5);

    // Inspection only reads: it names the same records and renames nothing.
    let dir = Scratch::new("journal-u64-max-3").unwrap();
    write_segment(dir.path(), u64::MAX, &full);
    assert_eq!(journal::inspect(dir.path()).unwrap().records as u64, last);
    assert_eq!(segment_numbers(dir.path()), [u64::MAX]);
}

#[test]
fn names_that_are_not_exactly_segment_names_are_ignored() {
    let dir = Scratch::new("journal-names").unwrap();
    write_segment(dir.path(), 1, &record_of(&round("boot-a", 1)));
    let other = record_of(&round("boot-x", 1));
    for name in [
        "1.seg",
        "+1.seg",
        "00000000000000000001.seg.tmp",
        "99999999999999999999.seg",
        "0000000000000000000１.seg",
    ] {
        std::fs::write(dir.path().join(name), &other).unwrap();
    }
    std::fs::create_dir(dir.path().join(disk::segment_name(9))).unwrap();
    let (journal, recovery) = Journal::open(dir.path(), MAX_BYTES).unwrap();
    assert_eq!(recovery.records, 1);
    assert_eq!(keys(&journal), seqs("boot-a", 1..=1));
    still_usable(dir.path(), journal, 3);
}

/// The audit's input: a valid-CRC `journal_overflowed` of boot b declaring `1000..=900` of boot
/// a, in a full journal that has to drop it.
#[test]
fn a_backward_overflow_range_for_another_boot_in_a_full_journal() {
    let dir = Scratch::new("journal-backward").unwrap();
    let mut first = record_of(&overflowed("boot-b", 1, "boot-a", 1000, 900));
    let (rest, last) = rounds_filling("boot-b", 2, 16 * 1024);
    first.extend(rest);
    write_segment(dir.path(), 1, &first);
    let (more, _) = rounds_filling("boot-b", last + 1, 3 * 16 * 1024);
    write_segment(dir.path(), 2, &more);
    let (journal, recovery) = Journal::open(dir.path(), MAX_BYTES).unwrap();
    // No agent writes that record: it is damage, and the rest of its segment is cut with it.
    assert_eq!(recovery.truncations.len(), 1);
    assert_eq!(recovery.truncations[0].segment, 1);
    assert_eq!(recovery.truncations[0].offset, 0);
    assert_eq!(recovery.truncations[0].damage, Damage::NotAnEnvelope);
    // The journal is full: appends drop the oldest segments, and every lost range is a range.
    let mut lost = Vec::new();
    for s in 1..=200 {
        lost.extend(journal.append(&round("boot-c", s)).unwrap());
    }
    assert!(!lost.is_empty());
    assert!(
        lost.iter()
            .all(|l| l.first_seq <= l.last_seq && l.count() >= 1)
    );

    // The same record appended at run time (the recorder never makes one) is no range either.
    journal
        .append(&overflowed("boot-c", 201, "boot-b", 1000, 900))
        .unwrap();
    let mut lost = Vec::new();
    for s in 202..=600 {
        lost.extend(journal.append(&round("boot-c", s)).unwrap());
    }
    assert!(lost.iter().all(|l| l.first_seq <= l.last_seq));
    assert!(
        lost.iter()
            .all(|l| l.boot != "boot-b".parse::<BootId>().unwrap())
    );
    still_usable(dir.path(), journal, 5);
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A 300 MB sparse segment (records, then a hole of zeros; or a hole behind a length that claims
/// the largest payload): recovery reads one record at a time, so the agent's peak memory does
/// not grow with the file (it grew by 320 MB when segments were read whole).
#[test]
fn a_sparse_300_mb_segment_costs_no_memory() {
    const SIZE: u64 = 300 * 1000 * 1000;
    let dir = Scratch::new("journal-sparse").unwrap();
    let (good, last) = rounds_filling("boot-a", 1, 4096);
    write_segment(dir.path(), 1, &good);
    let mut claims = good.clone();
    claims.extend_from_slice(&(record::MAX_PAYLOAD as u32).to_le_bytes());
    claims.extend_from_slice(&[0xAB; 4]);
    write_segment(dir.path(), 2, &claims);
    for number in [1, 2] {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(disk::segment_name(number)))
            .unwrap();
        file.set_len(SIZE).unwrap();
    }
    let before = peak_rss();
    let inspection = journal::inspect(dir.path()).unwrap();
    assert_eq!(inspection.damaged_bytes, 2 * (SIZE - good.len() as u64));
    let (journal, recovery) = Journal::open(dir.path(), MAX_BYTES).unwrap();
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 16 << 20, "peak RSS grew by {grown} bytes");
    let damages: Vec<(u64, u64, Damage)> = recovery
        .truncations
        .iter()
        .map(|t| (t.offset, t.bytes, t.damage))
        .collect();
    let cut = SIZE - good.len() as u64;
    assert_eq!(
        damages,
        [
            (good.len() as u64, cut, Damage::BadLength(0)),
            (good.len() as u64, cut, Damage::BadChecksum)
        ]
    );
    let mut expected = seqs("boot-a", 1..=last);
    expected.extend(seqs("boot-a", 1..=last));
    assert_eq!(keys(&journal), expected);
    still_usable(dir.path(), journal, 5);
}

/// A segment of 2 MiB of valid records (an agent writes at most 1 MiB): what lies past the bound
/// is cut like damage, whole records before it are kept.
#[test]
fn a_segment_larger_than_an_agent_writes_is_cut_at_the_bound() {
    let dir = Scratch::new("journal-too-large").unwrap();
    let (big, _) = rounds_filling("boot-a", 1, 2 << 20);
    write_segment(dir.path(), 1, &big);
    let (journal, recovery) = Journal::open(dir.path(), MAX_BYTES).unwrap();
    assert_eq!(recovery.truncations.len(), 1);
    let cut = &recovery.truncations[0];
    assert_eq!(cut.damage, Damage::TooLarge);
    assert!(cut.offset <= record::MAX_SEGMENT_BYTES);
    assert!(
        cut.offset + 1000 > record::MAX_SEGMENT_BYTES,
        "whole records up to the bound"
    );
    assert_eq!(keys(&journal).len(), recovery.records);
    still_usable(dir.path(), journal, 5);
}

fn cli_config(dir: &Scratch, journal: &Path) -> std::path::PathBuf {
    dir.write(
        "agent.toml",
        format!(
            r#"
agent_id = "hue-phu-vinh-01"
province = "hue"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[journal]
dir = "{}"
[[targets]]
name = "UBND xã Phú Vinh"
address = "127.0.0.1"
role = "commune"
"#,
            journal.display()
        ),
    )
    .unwrap()
}

/// A garbage `acked.json`: the agent (`Journal::open`) and `netmon-agent journal` both warn and go
/// on as if nothing were acknowledged, and show the same backlog.
#[test]
fn a_garbage_watermark_file_is_ignored_by_run_and_by_the_journal_command() {
    let dir = Scratch::new("journal-acked").unwrap();
    let journal_dir = dir.path().join("journal");
    {
        let (journal, _) = Journal::open(&journal_dir, MAX_BYTES).unwrap();
        for s in 1..=5 {
            journal.append(&round("boot-a", s)).unwrap();
        }
        journal.sync().unwrap();
    }
    let config = cli_config(&dir, &journal_dir);
    let garbage: [&[u8]; 4] = [
        b"{\"acks\": [{\"boot\": \"boot-a\", \"seq\": ",
        b"\x1b]0;owned\x07\xff\xfe",
        br#"{"acks":[{"boot":"boot-a","seq":18446744073709551616}]}"#,
        &[b' '; 100 * 1024],
    ];
    for bytes in garbage {
        std::fs::write(journal_dir.join("acked.json"), bytes).unwrap();
        let inspection = journal::inspect(&journal_dir).unwrap();
        assert_eq!(inspection.backlog.events, 5);
        assert!(inspection.acked.acks.is_empty());
        assert!(inspection.acked_problem.is_some());

        let out = Command::new(env!("CARGO_BIN_EXE_netmon-agent"))
            .args(["journal", "--json", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["backlog_events"], 5);
        assert_eq!(report["acked"], serde_json::json!([]));
        assert!(report["acked_unreadable"].is_string(), "{report}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unreadable watermark"), "{stderr}");
        let out = Command::new(env!("CARGO_BIN_EXE_netmon-agent"))
            .args(["journal", "--lang", "en", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("unreadable, taken as nothing acknowledged"),
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );

        let (journal, _) = Journal::open(&journal_dir, MAX_BYTES).unwrap();
        assert_eq!(
            journal.backlog(),
            inspection.backlog,
            "run sees the same backlog"
        );
    }
}

/// xorshift64: a seeded, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn seq(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => u64::MAX - self.below(3),
            2 => i64::MAX as u64 + self.below(3),
            _ => 1 + self.below(2000),
        }
    }

    fn boot(&mut self) -> &'static str {
        ["boot-a", "boot-b", "boot-c"][self.below(3) as usize]
    }

    fn bytes(&mut self, len: u64) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Random segment contents: valid records (rounds, overflow declarations with any range, other
/// JSON), random bytes, then random mutations.
fn random_segment(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..rng.below(40) {
        match rng.below(8) {
            0..=3 => {
                let (boot, seq) = (rng.boot(), rng.seq());
                bytes.extend(record_of(&round_at(boot, seq)));
            }
            4 => {
                let (boot, seq, dropped) = (rng.boot(), rng.seq(), rng.boot());
                let (first, last) = (rng.seq(), rng.seq());
                bytes.extend(record_of(&overflowed(boot, seq, dropped, first, last)));
            }
            5 => {
                let json = format!(r#"{{"boot":"{}","seq":{}}}"#, rng.boot(), rng.seq());
                bytes.extend(record::encode(json.as_bytes()));
            }
            6 => {
                let len = rng.below(64);
                let junk = rng.bytes(len);
                bytes.extend(record::encode(&junk));
            }
            _ => {
                let len = rng.below(32);
                bytes.extend(rng.bytes(len));
            }
        }
    }
    for _ in 0..rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(3) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            _ => {
                let word = (rng.next() as u32).to_le_bytes();
                bytes.splice(at..at, word);
            }
        }
    }
    bytes
}

fn random_acked(rng: &mut Rng) -> Vec<u8> {
    match rng.below(5) {
        0 => {
            let acks: Vec<String> = (0..rng.below(20))
                .map(|_| format!(r#"{{"boot":"{}","seq":{}}}"#, rng.boot(), rng.seq()))
                .collect();
            format!(r#"{{"acks":[{}]}}"#, acks.join(",")).into_bytes()
        }
        1 => br#"{"acks":[{"boot":"boot-a","seq":-1}]}"#.to_vec(),
        2 => Vec::new(),
        _ => {
            let len = rng.below(200);
            rng.bytes(len)
        }
    }
}

/// Seeded random journal directories: opening (and inspecting) never panics, never fails, and the
/// journal stays usable. 300 directories, seed 0x5EED_F9F9, about 10 s in a debug build.
#[test]
fn random_journal_directories_never_panic_and_stay_usable() {
    const SEED: u64 = 0x5EED_F9F9;
    const DIRECTORIES: usize = 300;
    let mut rng = Rng(SEED);
    let started = Instant::now();
    for i in 0..DIRECTORIES {
        let dir = Scratch::new("journal-random").unwrap();
        for _ in 0..rng.below(5) {
            let number = match rng.below(4) {
                0 => u64::MAX - rng.below(3),
                1 => rng.next(),
                _ => rng.below(6),
            };
            write_segment(dir.path(), number, &random_segment(&mut rng));
        }
        if rng.below(4) == 0 {
            let bytes = random_segment(&mut rng);
            std::fs::write(dir.path().join("5.seg"), bytes).unwrap();
        }
        if rng.below(2) == 0 {
            std::fs::write(dir.path().join("acked.json"), random_acked(&mut rng)).unwrap();
        }
        if rng.below(3) == 0 {
            let text = match rng.below(3) {
                0 => u64::MAX.to_string(),
                1 => "-1".to_owned(),
                _ => String::from_utf8_lossy(&rng.bytes(10)).into_owned(),
            };
            std::fs::write(dir.path().join("overflowed"), text).unwrap();
        }
        let label = format!("directory {i} of seed {SEED:#x}");
        let _ = journal::inspect(dir.path()).unwrap_or_else(|e| panic!("{label}: inspect: {e}"));
        let (journal, _) =
            Journal::open(dir.path(), MAX_BYTES).unwrap_or_else(|e| panic!("{label}: open: {e}"));
        let _ = keys(&journal);
        let _ = (journal.backlog(), journal.watermark(), journal.overflowed());
        for s in 1..=(1 + rng.below(300)) {
            for lost in journal.append(&round("fresh", s)).unwrap() {
                assert!(lost.first_seq <= lost.last_seq, "{label}: {lost:?}");
            }
        }
        let n = keys(&journal).iter().filter(|(b, _)| b == "fresh").count();
        assert!(n > 0, "{label}");
        still_usable(dir.path(), journal, 3);
    }
    eprintln!(
        "{DIRECTORIES} random journal directories (seed {SEED:#x}) in {:?}",
        started.elapsed()
    );
}
