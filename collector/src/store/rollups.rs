//! The store's side of the daily coverage rollups (ADR 17): where they stand, the readings of a
//! day, and the rollups appended together with the cursors that say so.
//!
//! Two cursors in `projections`: [`ROLLED_THROUGH`], the end (epoch ms, a Vietnam midnight) of
//! the last day rolled up — retention deletes no `cellular_signal_sampled` at or after it —
//! and [`ROLLUP_FROM`], the smallest id of that day's items: the next day's items (effective
//! time after midnight) were all stored after it, so its scan starts there instead of at the
//! first row. A day's scan ends at the first row received once the day was due
//! ([`Store::first_received_at`]): what a timely rollup could not have seen is left out of a
//! late one too, and a store catching up on a year reads each row about once.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params_from_iter};

use super::codes::{self, INDEXED};
use super::read::{Layout, of_types_sql};
use super::{Appended, NewEvent, Store, StoreError, StoredEvent, set_position, write};

/// The end of the last Vietnam day rolled up, epoch ms (0: none yet).
pub const ROLLED_THROUGH: &str = "rollup:coverage";
/// The smallest store id among the items of the last day rolled up.
pub const ROLLUP_FROM: &str = "rollup:coverage:from";

impl Store {
    /// The file this connection has open (`None` for an in-memory database).
    pub fn path(&self) -> Option<PathBuf> {
        self.conn
            .path()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    /// The earliest effective time of any `cellular_signal_sampled` (one pass over the type
    /// index, once: before the first rollup).
    pub fn earliest_reading(&self) -> Result<Option<i64>, StoreError> {
        if self.layout != Layout::Compact {
            return Ok(None);
        }
        let code = codes::code("cellular_signal_sampled").unwrap_or(10);
        Ok(self.conn.query_row(
            &format!("SELECT min(time) FROM events WHERE type = ?1 AND {INDEXED}"),
            [code],
            |row| row.get(0),
        )?)
    }

    /// The first id at or after `from_id` of a row received at or after `received_ms` (the
    /// reception time grows with the id, as rows are appended), or one past the last row; a
    /// binary search, a few dozen lookups by id.
    pub fn first_received_at(&self, from_id: i64, received_ms: i64) -> Result<i64, StoreError> {
        if self.layout != Layout::Compact {
            return Ok(from_id);
        }
        let last: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| {
                    row.get(0)
                })?;
        let mut at = self.conn.prepare_cached(
            "SELECT id, time + received_dt FROM events WHERE id >= ?1 ORDER BY id LIMIT 1",
        )?;
        let (mut low, mut high) = (from_id, last + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            let row: Option<(i64, i64)> = at
                .query_row([middle], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            match row {
                Some((id, received)) if id < high => {
                    if received < received_ms {
                        low = id + 1;
                    } else {
                        high = id;
                    }
                }
                _ => high = middle,
            }
        }
        Ok(high)
    }

    /// [`Store::for_each_of`] over the rows with an id in `ids` only; `f` gets each row's id.
    pub fn for_each_of_in(
        &self,
        types: &[&str],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        ids: std::ops::Range<i64>,
        f: impl FnMut(i64, Result<StoredEvent, StoreError>),
    ) -> Result<u64, StoreError> {
        if self.layout != Layout::Compact {
            return Ok(0);
        }
        let Some((sql, values)) = of_types_sql(self.layout, types, from, to, Some(ids)) else {
            return Ok(0);
        };
        self.each(&sql, params_from_iter(values), f)
    }

    /// Appends a day's rollups and moves both cursors, in one transaction: a day is rolled up
    /// wholly or not at all (a crash between would roll it up twice, and count it twice).
    pub fn append_rollups(
        &mut self,
        events: &[NewEvent],
        through: i64,
        from_id: i64,
    ) -> Result<Vec<Appended>, StoreError> {
        if let Layout::Text { version, .. } = self.layout {
            return Err(StoreError::OlderSchema(version));
        }
        let rows = self.rows.get_mut();
        let tx = self.conn.transaction()?;
        let written = write(&tx, rows, events, &[], &[]).and_then(|out| {
            set_position(&tx, ROLLED_THROUGH, through)?;
            set_position(&tx, ROLLUP_FROM, from_id)?;
            Ok(out)
        });
        match written.and_then(|out| Ok(tx.commit().map(|()| out)?)) {
            Ok(out) => Ok(out),
            Err(e) => {
                rows.forget();
                Err(e)
            }
        }
    }
}
