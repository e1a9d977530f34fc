//! The agent journal's record scanner and segment loading on hostile bytes.
//!
//! The input is a journal directory: segment files (names from a set that includes 0, 1, the
//! largest numbers and arbitrary ones; contents made of raw bytes, records with a valid CRC around
//! arbitrary payloads, and records of small envelopes, `journal_overflowed` ones included),
//! `acked.json` and `overflowed`. Asserts that `record::scan` of every segment is consistent (the
//! records tile the good prefix from offset 0, each decodes, damage exactly when bytes are left),
//! that `load_segment` keeps a prefix of the scan, and that `inspect` and `Journal::open` (with
//! appends, acknowledgements, selects and a re-open after them) return errors, never panic.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netmon_agent::journal::{Journal, disk, inspect, record};
use netmon_events::{Ack, AgentId, BootAck, BootId, Envelope, Event};

#[derive(Arbitrary, Debug)]
enum Chunk {
    Raw(Vec<u8>),
    /// A record with a valid CRC around arbitrary bytes.
    Record(Vec<u8>),
    /// A record of a heartbeat (boot slot, seq).
    Heartbeat(u8, u64),
    /// Records of heartbeats (boot slot, first seq, count up to 2047): a full segment from a
    /// small input.
    Run(u8, u64, u16),
    /// A record of `journal_overflowed` declaring (boot slot, first, last, count) lost.
    Overflowed(u8, u8, u64, u64, u64),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Small(u8),
    Max(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Append(u8, u64),
    /// Appends (boot slot, first seq, count up to 1023): enough to fill the journal.
    AppendMany(u8, u64, u16),
    Acknowledge(Vec<(u8, u64)>),
    Select(u64, u8, u16),
    Sync,
    Reopen,
}

#[derive(Arbitrary, Debug)]
struct Input {
    segments: Vec<(Name, Vec<Chunk>)>,
    acked: Option<Vec<u8>>,
    overflowed: Option<Vec<u8>>,
    /// In units of 64 KiB above the minimum.
    max_bytes: u8,
    ops: Vec<Op>,
}

const BOOTS: [&str; 4] = ["b1", "b2", "b3", "b4"];

fn boot(slot: u8) -> BootId {
    BootId::new(BOOTS[slot as usize % BOOTS.len()]).expect("a valid boot id")
}

fn envelope(slot: u8, seq: u64, event: Event) -> Envelope {
    Envelope {
        v: 1,
        agent: AgentId::new("fuzz-agent").expect("a valid agent id"),
        boot: boot(slot),
        seq,
        time: chrono::DateTime::UNIX_EPOCH,
        mono_ms: 0,
        event,
    }
}

fn heartbeat(slot: u8, seq: u64) -> Envelope {
    envelope(
        slot,
        seq,
        Event::AgentHeartbeat {
            uptime_s: 0,
            backlog: 0,
        },
    )
}

fn bytes_of(chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        match chunk {
            Chunk::Raw(bytes) => out.extend_from_slice(bytes),
            Chunk::Record(payload) => out.extend(record::encode(payload)),
            Chunk::Heartbeat(slot, seq) => {
                let json = serde_json::to_vec(&heartbeat(*slot, *seq)).expect("encodes");
                out.extend(record::encode(&json));
            }
            Chunk::Run(slot, first, count) => {
                for i in 0..u64::from(*count % 2048) {
                    let seq = first.wrapping_add(i);
                    let json = serde_json::to_vec(&heartbeat(*slot, seq)).expect("encodes");
                    out.extend(record::encode(&json));
                }
            }
            Chunk::Overflowed(slot, dropped, first, last, count) => {
                let event = Event::JournalOverflowed {
                    dropped_boot: boot(*dropped),
                    first_seq: *first,
                    last_seq: *last,
                    count: *count,
                };
                let json = serde_json::to_vec(&envelope(*slot, 1, event)).expect("encodes");
                out.extend(record::encode(&json));
            }
        }
    }
    out
}

fn check_scan(bytes: &[u8]) -> record::Scan {
    let scan = record::scan(bytes);
    assert!(scan.good_len <= bytes.len());
    assert_eq!(scan.damage.is_none(), scan.good_len == bytes.len());
    let mut offset = 0;
    for span in &scan.records {
        assert_eq!(span.offset, offset, "records do not tile the good prefix");
        assert!(record::decode(&bytes[span.offset..span.offset + span.len]).is_ok());
        offset += span.len;
    }
    assert_eq!(offset, scan.good_len);
    scan
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("netmon-fuzz-journal-{}", std::process::id()))
    })
}

fuzz_target!(|input: Input| {
    let dir = scratch();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("a scratch directory");
    for (name, chunks) in input.segments.iter().take(4) {
        let number = match name {
            Name::Small(n) => u64::from(*n % 4),
            Name::Max(n) => u64::MAX - u64::from(*n % 4),
            Name::Any(n) => *n,
        };
        let bytes = bytes_of(chunks);
        let scan = check_scan(&bytes);
        std::fs::write(dir.join(disk::segment_name(number)), &bytes).expect("writes");
        let loaded = disk::load_segment(dir, number).expect("a segment just written loads");
        assert!(loaded.scan.good_len <= scan.good_len);
        assert!(loaded.scan.records.len() <= scan.records.len());
        assert_eq!(loaded.keys.len(), loaded.scan.records.len());
        assert_eq!(loaded.declares.len(), loaded.keys.len());
    }
    if let Some(acked) = &input.acked {
        std::fs::write(dir.join("acked.json"), acked).expect("writes");
    }
    if let Some(overflowed) = &input.overflowed {
        std::fs::write(dir.join("overflowed"), overflowed).expect("writes");
    }
    let _ = inspect(dir);
    let max_bytes = (1 + u64::from(input.max_bytes % 16)) * 64 * 1024;
    let Ok((mut journal, _)) = Journal::open(dir, max_bytes) else {
        return;
    };
    let mut from = 0;
    for op in input.ops.iter().take(32) {
        match op {
            Op::Append(slot, seq) => {
                let _ = journal.append(&heartbeat(*slot, seq.saturating_add(1)));
            }
            Op::AppendMany(slot, first, count) => {
                for i in 0..u64::from(*count % 1024) {
                    let seq = first.saturating_add(1).saturating_add(i);
                    let _ = journal.append(&heartbeat(*slot, seq));
                }
            }
            Op::Acknowledge(acks) => {
                let acks = acks
                    .iter()
                    .take(16)
                    .map(|(slot, seq)| BootAck {
                        boot: boot(*slot),
                        seq: *seq,
                    })
                    .collect();
                let _ = journal.acknowledge(&Ack { acks });
            }
            Op::Select(start, events, bytes) => {
                let start = if start % 2 == 0 { from } else { *start };
                if let Ok(selected) =
                    journal.select(start, usize::from(*events), usize::from(*bytes))
                {
                    assert!(selected.events.len() <= usize::from(*events));
                    from = selected.next;
                }
            }
            Op::Sync => {
                let _ = journal.sync();
            }
            Op::Reopen => {
                drop(journal);
                match Journal::open(dir, max_bytes) {
                    Ok((reopened, _)) => journal = reopened,
                    Err(_) => return,
                }
            }
        }
        let _ = journal.backlog();
        let _ = journal.watermark();
    }
});
