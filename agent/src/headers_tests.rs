//! Tests of the header rule: batches and watermarks in, tables and header decisions out.
#![allow(clippy::unwrap_used)]
use netmon_events::testing::{self, target};

use super::*;

const AGENT: &str = "thanh-hoa-cam-tu-giang-trung";
const NOW: &str = "b-now";
const EARLIER: &str = "b-earlier";

fn targets() -> Vec<Target> {
    vec![
        target("Cổng thôn Giang Trung", "192.168.1.1"),
        target("UBND xã Cẩm Tú", "10.20.0.1"),
        target("Trung tâm tỉnh", "10.36.0.10"),
    ]
}

fn headers() -> Headers {
    Headers::new(NOW.parse().unwrap(), DescribedTarget::numbered(&targets()))
}

fn event(boot: &str, seq: u64, event: Event) -> Envelope {
    testing::envelope(AGENT, boot, seq, event)
}

fn window(boot: &str, seq: u64, t: usize) -> Envelope {
    event(boot, seq, testing::window(&targets()[t], 180))
}

fn overflowed(seq: u64, dropped: &str, first: u64, last: u64) -> Envelope {
    event(
        NOW,
        seq,
        Event::JournalOverflowed {
            dropped_boot: dropped.parse().unwrap(),
            first_seq: first,
            last_seq: last,
            count: last - first + 1,
        },
    )
}

fn include(b: &BatchTargets) -> bool {
    b.header == HeaderTargets::Include
}

#[test]
fn this_boot_carries_its_table_until_the_description_is_acknowledged() {
    let mut h = headers();
    let first = [
        event(NOW, 1, testing::started()),
        event(NOW, 2, testing::described(&targets())),
    ];
    // (batch, watermark of this boot, header carries the table)
    let table: Vec<(Vec<Envelope>, Option<u64>, bool)> = vec![
        (first.to_vec(), None, true),
        (vec![window(NOW, 3, 0)], None, true),
        (vec![window(NOW, 4, 1)], Some(1), true),
        (vec![window(NOW, 5, 2)], Some(2), false),
        (vec![window(NOW, 6, 0)], Some(5), false),
    ];
    for (batch, acked, expected) in table {
        let b = h.for_batch(&batch, acked);
        assert_eq!(
            include(&b),
            expected,
            "seq {} acked {acked:?}",
            batch[0].seq
        );
        assert_eq!(b.table, DescribedTarget::numbered(&targets()));
        assert_eq!(h.describing(acked), expected);
    }
}

#[test]
fn a_description_the_journal_dropped_is_carried_for_good() {
    let table: &[(u64, u64, bool)] = &[
        // The dropped range holds the description: acknowledged means declared lost.
        (1, 40, true),
        (2, 2, true),
        // Ranges that miss it change nothing.
        (3, 90, false),
    ];
    for &(first, last, dropped) in table {
        let mut h = headers();
        let b = h.for_batch(&[overflowed(120, NOW, first, last)], Some(100));
        assert_eq!(include(&b), dropped, "{first}..={last}");
        assert_eq!(
            include(&h.for_batch(&[window(NOW, 121, 0)], Some(200))),
            dropped
        );
    }
    // Another boot's loss is not this boot's.
    let mut h = headers();
    h.for_batch(&[overflowed(3, EARLIER, 1, 500)], Some(3));
    assert!(!h.describing(Some(3)));
}

#[test]
fn an_earlier_boot_always_carries_a_table_rebuilt_from_its_events() {
    let mut h = headers();
    // Its description is gone (acknowledged and trimmed, or dropped): the targets the batch
    // names, keyed in the order they first appear.
    let batch = [
        window(EARLIER, 700, 2),
        window(EARLIER, 701, 0),
        window(EARLIER, 702, 2),
    ];
    let b = h.for_batch(&batch, Some(699));
    assert!(include(&b));
    let named: Vec<(u16, &str)> = b
        .table
        .iter()
        .map(|d| (d.key, d.target.name.as_str()))
        .collect();
    assert_eq!(named, [(1, "Trung tâm tỉnh"), (2, "Cổng thôn Giang Trung")]);
    // With its description in the batch: that table, as the boot keyed it.
    let batch = [
        event(EARLIER, 2, testing::described(&targets())),
        window(EARLIER, 3, 2),
    ];
    let b = h.for_batch(&batch, None);
    assert_eq!(
        (b.header, b.table),
        (
            HeaderTargets::Include,
            DescribedTarget::numbered(&targets())
        )
    );
    // Events naming no target: an empty table (the encoder then leaves the header out).
    let b = h.for_batch(&[event(EARLIER, 9, testing::started())], None);
    assert!(b.table.is_empty());
    // This boot is not affected.
    assert!(h.describing(None) && !h.describing(Some(2)));
}

#[test]
fn batches_decode_to_what_was_journalled() {
    // Every decision, encoded and decoded without any stored description, gives the envelopes
    // back, except for an Omit batch, which needs the collector's stored table.
    let mut h = headers();
    let sender = netmon_events::Sender {
        boot: NOW.parse().unwrap(),
        mono_ms: 1,
    };
    let many: Vec<Target> = (0..300)
        .map(|i| target(&format!("t{i}"), &format!("10.1.{}.{}", i / 200, i % 200)))
        .collect();
    let big = DescribedTarget::numbered(&many);
    let batches = vec![
        vec![window(EARLIER, 5, 1), window(EARLIER, 6, 2)],
        vec![
            event(NOW, 1, testing::started()),
            event(NOW, 2, testing::described(&targets())),
            window(NOW, 3, 0),
        ],
        // A boot with more targets than a table holds: the rest go in full.
        vec![
            event(EARLIER, 8, testing::window(&many[299], 180)),
            event(EARLIER, 9, testing::window(&many[3], 180)),
        ],
    ];
    for batch in batches {
        let b = h.for_batch(&batch, None);
        let payload = netmon_events::encode_compact(&sender, &batch, &b.table, b.header).unwrap();
        let decoded: Vec<Envelope> = netmon_events::decode_batch(&payload)
            .unwrap()
            .events
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(decoded, batch);
    }
    let payload = netmon_events::encode_compact(
        &sender,
        &[event(EARLIER, 8, testing::window(&many[299], 180))],
        &big,
        HeaderTargets::Include,
    )
    .unwrap();
    assert!(netmon_events::decode_batch(&payload).is_ok());
}
