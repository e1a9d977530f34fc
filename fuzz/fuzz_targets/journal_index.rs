//! The agent journal's in-memory `Index` under arbitrary sequences of operations (pushes with
//! arbitrary seqs, segments and declared ranges, acknowledgements, segment removals, selects).
//!
//! Asserts no panic and the index's promises: `select` returns at most `max_events`
//! unacknowledged records in ordinal order at or after `from` and never more than `max_bytes`
//! unless one record is larger, and continues after them; `pending` agrees with `backlog`; a
//! removed segment is gone and its lost ranges are non-empty (`first_seq <= last_seq`); the
//! watermark lists at most `MAX_ACK_BOOTS` boots and never goes down.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netmon_agent::journal::{Index, Lost};
use netmon_events::{Ack, BootAck, BootId, MAX_ACK_BOOTS};

#[derive(Arbitrary, Debug)]
enum Op {
    Push {
        boot: u8,
        seq: u64,
        segment: u8,
        offset: u64,
        len: u32,
        declares: Option<(u8, u64, u64)>,
    },
    /// A run of records of one boot, as the journal appends them: seqs `first..first + count`.
    Run {
        boot: u8,
        first: u64,
        count: u8,
        segment: u8,
    },
    Acknowledge(Vec<(u8, u64)>),
    RemoveSegment(u8),
    AcknowledgedSegments(u8),
    Select(u64, u8, u16),
    Pending(u64, u8),
    Backlog,
}

fn boot(slot: u8) -> BootId {
    BootId::new(format!("b{}", slot % 24)).expect("a valid boot id")
}

fuzz_target!(|ops: Vec<Op>| {
    let mut index = Index::new();
    for op in ops.into_iter().take(256) {
        match op {
            Op::Push {
                boot: b,
                seq,
                segment,
                offset,
                len,
                declares,
            } => {
                let declares = declares.map(|(d, first, last)| Lost {
                    boot: boot(d),
                    first_seq: first,
                    last_seq: last,
                });
                let before = index.next_ordinal();
                let ordinal = index.push(
                    &boot(b),
                    seq,
                    u64::from(segment),
                    offset,
                    len,
                    declares.as_ref(),
                );
                assert_eq!(ordinal, before);
            }
            Op::Run {
                boot: b,
                first,
                count,
                segment,
            } => {
                for i in 0..u64::from(count) {
                    let Some(seq) = first.checked_add(i) else {
                        break;
                    };
                    index.push(&boot(b), seq, u64::from(segment), i * 200, 200, None);
                }
            }
            Op::Acknowledge(acks) => {
                let before = index.watermark();
                let ack = Ack {
                    acks: acks
                        .iter()
                        .take(MAX_ACK_BOOTS)
                        .map(|(b, seq)| BootAck {
                            boot: boot(*b),
                            seq: *seq,
                        })
                        .collect(),
                };
                index.acknowledge(&ack);
                let after = index.watermark();
                for old in &before.acks {
                    if let Some(seq) = after.seq_for(&old.boot) {
                        assert!(seq >= old.seq, "a watermark went down");
                    }
                }
            }
            Op::RemoveSegment(segment) => {
                let segment = u64::from(segment);
                for lost in index.remove_segment(segment) {
                    assert!(
                        lost.first_seq <= lost.last_seq,
                        "an empty lost range {lost:?}"
                    );
                    assert!(lost.count() >= 1);
                }
                let (left, _) = index.select(0, usize::MAX, usize::MAX);
                assert!(left.iter().all(|e| e.segment != segment));
            }
            Op::AcknowledgedSegments(active) => {
                let segments = index.acknowledged_segments(u64::from(active));
                assert!(!segments.contains(&u64::from(active)));
            }
            Op::Select(from, max_events, max_bytes) => {
                let (max_events, max_bytes) = (usize::from(max_events), usize::from(max_bytes));
                let (taken, next) = index.select(from, max_events, max_bytes);
                assert!(taken.len() <= max_events);
                assert!(next >= from);
                let bytes: usize = taken.iter().map(|e| e.len as usize).sum();
                assert!(taken.len() <= 1 || bytes <= max_bytes);
                assert!(taken.windows(2).all(|w| w[0].ordinal < w[1].ordinal));
                assert!(taken.iter().all(|e| e.ordinal >= from && e.ordinal < next));
                for e in &taken {
                    let _ = index.boot_of(e);
                }
            }
            Op::Pending(from, cap) => {
                assert!(index.pending(from, usize::from(cap)) <= usize::from(cap));
            }
            Op::Backlog => {
                let backlog = index.backlog();
                let pending = index.pending(0, usize::MAX);
                assert_eq!(backlog.events, pending as u64);
            }
        }
        assert!(index.watermark().acks.len() <= MAX_ACK_BOOTS);
    }
});
