//! Retention (ADR 15): raw measurements and heartbeats are deleted once older than
//! `store.keep_measurements`,
//! everything else once older than `store.keep_facts`, a bounded step at a time between the
//! writer's batches, and the freed pages go back to the file system (`incremental_vacuum`).
//!
//! Each class walks the table in id order from a cursor kept in `projections`
//! (`retention:measurements`, `retention:facts`): a step deletes the class's rows older than the
//! cutoff among the next [`STEP_IDS`] ids and moves the cursor up to the first row of the class
//! it keeps. Rows are in id order as they arrived, so the cursor stops where the kept history
//! begins; a row stored late with an old time is deleted when the cursor reaches its id, which
//! keeps it a little longer than asked, never shorter.
//!
//! `cellular_signal_sampled` is a measurement too, but never deleted from a day that is not
//! rolled up yet (`store/rollups.rs`, ADR 17): the coverage report reads its daily rollups
//! beyond `store.keep_measurements`.

use std::time::Duration;

use rusqlite::params;

use super::rollups::ROLLED_THROUGH;
use super::{Store, StoreError, position, set_position};

/// Ids one step looks at: a step deletes at most this many rows, in a few milliseconds.
pub const STEP_IDS: i64 = 5_000;
/// Free pages handed back per step (4 KiB each).
pub const VACUUM_PAGES: i64 = 2_000;

/// What a retention period applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `probe_window_completed`, `probe_round_completed`, `interface_counters_sampled`,
    /// `cellular_signal_sampled` (once its day is rolled up), and `agent_heartbeat` (only the
    /// newest one means anything: it is folded into the state).
    Measurements,
    /// Every other event.
    Facts,
}

impl Class {
    /// The rows of this class, as an SQL condition on `type` (`codes.rs`: the raw measurements
    /// are codes 1–3, the cellular reading 10, the heartbeat 13; 0 is a schema-4 row that did
    /// not decode, kept as a fact).
    fn condition(self) -> &'static str {
        match self {
            Class::Measurements => "(type BETWEEN 1 AND 3 OR type = 10 OR type = 13)",
            Class::Facts => "NOT (type BETWEEN 1 AND 3 OR type = 10 OR type = 13)",
        }
    }

    /// What of the class may go besides its age, as SQL: a cellular reading only from a day
    /// already rolled up (before `rolled_through`, the [`ROLLED_THROUGH`] cursor).
    fn guard(self, rolled_through: i64) -> String {
        match self {
            Class::Measurements => format!(" AND (type != 10 OR time < {rolled_through})"),
            Class::Facts => String::new(),
        }
    }

    fn cursor(self) -> &'static str {
        match self {
            Class::Measurements => "retention:measurements",
            Class::Facts => "retention:facts",
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub deleted: usize,
    /// The cursor reached kept history or the newest row: nothing more to do for now.
    pub caught_up: bool,
}

impl Store {
    /// One retention step for `class`: deletes its rows with an effective time before
    /// `cutoff_ms` among the [`STEP_IDS`] ids after its cursor, moves the cursor, and hands
    /// back up to [`VACUUM_PAGES`] free pages. One transaction; the vacuum after it.
    pub fn sweep(&mut self, class: Class, cutoff_ms: i64) -> Result<Swept, StoreError> {
        let tx = self.conn.transaction()?;
        let cursor = position(&tx, class.cursor())?;
        let newest: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| {
            row.get(0)
        })?;
        if cursor >= newest {
            return Ok(Swept {
                deleted: 0,
                caught_up: true,
            });
        }
        let end = newest.min(cursor.saturating_add(STEP_IDS));
        let condition = class.condition();
        let guard = class.guard(position(&tx, ROLLED_THROUGH)?);
        let deleted = tx.execute(
            &format!(
                "DELETE FROM events WHERE id > ?1 AND id <= ?2 AND {condition} AND time < ?3{guard}"
            ),
            params![cursor, end, cutoff_ms],
        )?;
        let kept: Option<i64> = tx.query_row(
            &format!("SELECT min(id) FROM events WHERE id > ?1 AND id <= ?2 AND {condition}"),
            params![cursor, end],
            |row| row.get(0),
        )?;
        let moved = kept.map_or(end, |id| id - 1);
        if moved != cursor {
            set_position(&tx, class.cursor(), moved)?;
        }
        tx.commit()?;
        if deleted > 0 {
            // Each step of the pragma frees one page: run it to the end.
            let mut vacuum = self
                .conn
                .prepare(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
            let mut rows = vacuum.query([])?;
            while rows.next()?.is_some() {}
        }
        Ok(Swept {
            deleted,
            caught_up: kept.is_some() || end == newest,
        })
    }
}

/// When each class is swept next (pure): a step at every tick while there is work, then a rest.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub keep_measurements: Option<Duration>,
    pub keep_facts: Option<Duration>,
    /// Per class: monotonic ms before which a class that caught up is not swept again, and the
    /// rows deleted since it last caught up.
    rest_until: [u64; 2],
    deleted: [usize; 2],
}

/// How long a class that caught up rests.
pub const REST: Duration = Duration::from_secs(60);

impl Schedule {
    pub fn new(keep_measurements: Option<Duration>, keep_facts: Option<Duration>) -> Self {
        Self {
            keep_measurements,
            keep_facts,
            ..Self::default()
        }
    }

    /// The classes to sweep at `mono_ms`, with their cutoffs for the wall time `now_ms`.
    pub fn due(&self, mono_ms: u64, now_ms: i64) -> Vec<(Class, i64)> {
        [
            (Class::Measurements, self.keep_measurements),
            (Class::Facts, self.keep_facts),
        ]
        .into_iter()
        .filter(|(class, _)| mono_ms >= self.rest_until[index(*class)])
        .filter_map(|(class, keep)| {
            let keep = i64::try_from(keep?.as_millis()).ok()?;
            Some((class, now_ms.saturating_sub(keep)))
        })
        .collect()
    }

    /// Records a step of `class` at `mono_ms` (a failed one as caught up: it rests too).
    /// Returns the rows deleted since the class last caught up, when it catches up now.
    pub fn swept(&mut self, class: Class, swept: Swept, mono_ms: u64) -> Option<usize> {
        let i = index(class);
        self.deleted[i] = self.deleted[i].saturating_add(swept.deleted);
        if !swept.caught_up {
            return None;
        }
        self.rest_until[i] = mono_ms.saturating_add(REST.as_millis() as u64);
        Some(std::mem::take(&mut self.deleted[i]))
    }
}

fn index(class: Class) -> usize {
    match class {
        Class::Measurements => 0,
        Class::Facts => 1,
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
