//! Pure: which parts of a report's window come from daily rollups and which from raw readings,
//! and the report built from them. The whole days up to the last one rolled up are read as
//! rollups; what is before the first whole day (a window that does not start at midnight) and
//! after the last rolled-up one (today, yesterday before its rollup) is folded from the raw
//! readings, the part after going on from the last rollups' carry. Each part covers its own
//! time only, so nothing is counted twice. Without any rolled-up whole day in the window the
//! report is the raw fold alone, as before rollups.

use chrono::{DateTime, Utc};

use super::day::Day;
use super::{Coverage, ROLLUP_TYPE, Report, Scope, TYPES};
use crate::inventory::Inventory;
use crate::store::StoredEvent;

/// How a report reads its window.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Raw readings before the first rolled-up day (the fold starts an hour before).
    pub head: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Whole days read as rollups.
    pub rolled: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Raw readings after them, or the whole window.
    pub tail: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// What [`report`] asks its reader for: the stored events of `types` with an effective time in
/// `[from, to)`, in store order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Read {
    pub types: &'static [&'static str],
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

const ROLLUPS: &[&str] = &[ROLLUP_TYPE];

/// Reads what a [`Read`] asks for, calling the callback with each stored event.
pub type Reader<'r> = dyn FnMut(Read, &mut dyn FnMut(&StoredEvent)) + 'r;

impl Plan {
    /// The plan for `[from, to)` when every day ending at or before `through` (epoch ms; 0:
    /// none) is rolled up.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, through: i64) -> Plan {
        let first = Day::starting_from(from.timestamp_millis()).start();
        let last = Day::of(to.timestamp_millis()).start().min(through);
        let time = DateTime::<Utc>::from_timestamp_millis;
        match (first < last, time(first), time(last)) {
            (true, Some(first), Some(last)) => Plan {
                head: (from < first).then_some((from, first)),
                rolled: Some((first, last)),
                tail: (last < to).then_some((last, to)),
            },
            _ => Plan {
                head: None,
                rolled: None,
                tail: Some((from, to)),
            },
        }
    }
}

/// The report over `scope` from rollups where there are and raw readings elsewhere (`plan`);
/// `read` calls its callback with the stored events asked for.
pub fn report(
    scope: &Scope,
    inventory: Option<&Inventory>,
    plan: &Plan,
    read: &mut Reader<'_>,
) -> Report {
    let part = |from, to| Scope {
        from,
        to,
        ..scope.clone()
    };
    let mut all = Coverage::new(scope.clone(), inventory);
    if let Some((from, to)) = plan.head {
        let mut head = Coverage::new(part(from, to), inventory);
        let select = Read {
            types: TYPES,
            from: head.reads_from(),
            to,
        };
        read(select, &mut |e| head.apply(e));
        all.absorb(head);
    }
    let mut tail = plan
        .tail
        .map(|(from, to)| (Coverage::new(part(from, to), inventory), from, to));
    if let Some((from, to)) = plan.rolled {
        read(
            Read {
                types: ROLLUPS,
                from,
                to,
            },
            &mut |e| {
                all.add_rollup(e);
                if let Some((tail, ..)) = tail.as_mut() {
                    tail.resume(e);
                }
            },
        );
    }
    if let Some((mut tail, tail_from, tail_to)) = tail {
        // After rollups, they hold everything before the tail; else the fold starts early.
        let raw_from = if plan.rolled.is_some() {
            tail_from
        } else {
            tail.reads_from()
        };
        read(
            Read {
                types: TYPES,
                from: raw_from,
                to: tail_to,
            },
            &mut |e| tail.apply(e),
        );
        all.absorb(tail);
    }
    all.finish()
}
