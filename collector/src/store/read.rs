//! The store's queries, for either row layout: schema 5 (`rows.rs`), or the text rows of
//! schemas 1–4 (`legacy.rs`) that a read-only opener may meet. Each query is one SQL text with a
//! few fragments that differ between the two; the indexes they use are in `schema.rs`.

use std::ops::Range;

use chrono::{DateTime, Utc};
use netmon_events::{AgentId, BootId, Event};
use rusqlite::types::Value;
use rusqlite::{Params, params, params_from_iter};

use super::codes::{self, AGENT_MADE, INDEXED};
use super::{
    BootRow, LoadedBoot, Overflow, Page, Query, Store, StoreError, StoredEvent, legacy, millis,
    parse_time, rows, sql_u64,
};

/// How a file's events are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Schema 5.
    Compact,
    /// Schemas 1 to 4 (`table` is `events_v4` while a migration is under way).
    Text { version: i64, table: &'static str },
}

impl Layout {
    pub(super) fn columns(self) -> &'static str {
        match self {
            Layout::Compact => rows::COLUMNS,
            Layout::Text { version, .. } => legacy::columns(version),
        }
    }

    pub(super) fn table(self) -> &'static str {
        match self {
            Layout::Compact => "events",
            Layout::Text { table, .. } => table,
        }
    }

    /// A time as the `time` column holds it.
    fn time(self, time: DateTime<Utc>) -> Value {
        match self {
            Layout::Compact => Value::Integer(time.timestamp_millis()),
            Layout::Text { .. } => Value::Text(millis(time)),
        }
    }

    /// An event type as the `type` column holds it (`None`: no row has it).
    fn type_value(self, name: &str) -> Option<Value> {
        match self {
            Layout::Compact => codes::code(name).map(Value::Integer),
            Layout::Text { .. } => Some(Value::Text(name.to_string())),
        }
    }

    /// The condition of the partial type index, for a query of types that are all in it.
    fn type_index(self, types: &[&str]) -> String {
        let indexed = types
            .iter()
            .all(|t| codes::code(t).is_some_and(codes::indexed));
        match self {
            Layout::Compact if indexed => format!(" AND {INDEXED}"),
            _ => String::new(),
        }
    }

    /// The condition "the event is filed under agent `?n`" (and boot `?n+1` when `boot`).
    fn key(self, n: usize, boot: bool) -> String {
        match (self, boot) {
            (Layout::Compact, false) => {
                format!("stream IN (SELECT id FROM streams WHERE agent = ?{n})")
            }
            (Layout::Compact, true) => format!(
                "stream IN (SELECT id FROM streams WHERE agent = ?{n} AND boot = ?{})",
                n + 1
            ),
            (Layout::Text { .. }, false) => format!("agent = ?{n}"),
            (Layout::Text { .. }, true) => format!("agent = ?{n} AND boot = ?{}", n + 1),
        }
    }

    fn agent_made(self) -> &'static str {
        match self {
            Layout::Compact => AGENT_MADE,
            Layout::Text { .. } => "origin = 'agent'",
        }
    }
}

impl Store {
    /// Calls `f` with each event of `sql` (which selects `Layout::columns`), in its order.
    pub(super) fn each<P: Params>(
        &self,
        sql: &str,
        params: P,
        mut f: impl FnMut(i64, Result<StoredEvent, StoreError>),
    ) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let event = match self.layout {
                Layout::Compact => self.rows.borrow_mut().decode(&self.conn, row),
                Layout::Text { .. } => legacy::from_row(row),
            };
            f(id, event);
            count += 1;
        }
        Ok(count)
    }

    /// Calls `f` with every event in store order (for replay), or with the error of a row that
    /// cannot be decoded. Returns the number of rows; fails only if SQLite fails.
    pub fn for_each(
        &self,
        mut f: impl FnMut(Result<StoredEvent, StoreError>),
    ) -> Result<u64, StoreError> {
        let (columns, table) = (self.layout.columns(), self.layout.table());
        let sql = format!("SELECT {columns} FROM {table} ORDER BY id");
        self.each(&sql, [], |_, event| f(event))
    }

    /// [`Store::for_each`] over the events of `types` whose effective time is in `[from, to)`
    /// only, still in store order (for reports: the other rows are not even decoded).
    pub fn for_each_of(
        &self,
        types: &[&str],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut f: impl FnMut(Result<StoredEvent, StoreError>),
    ) -> Result<u64, StoreError> {
        let Some((sql, values)) = of_types_sql(self.layout, types, from, to, None) else {
            return Ok(0);
        };
        self.each(&sql, params_from_iter(values), |_, event| f(event))
    }

    /// Events matching the filters, oldest first.
    pub fn query(&self, query: &Query) -> Result<Vec<StoredEvent>, StoreError> {
        let Some((sql, values)) = query_sql(self.layout, query) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut failed = None;
        self.each(&sql, params_from_iter(values), |_, event| match event {
            Ok(event) => out.push(event),
            Err(e) => failed = failed.take().or(Some(e)),
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        out.reverse();
        Ok(out)
    }

    /// The number of stored events.
    pub fn count(&self) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", self.layout.table());
        let n: i64 = self.conn.query_row(&sql, [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The highest collector `seq` stored under `boot`, for tests and diagnostics.
    pub fn max_seq(&self, boot: &str) -> Result<Option<u64>, StoreError> {
        let filter = match self.layout {
            Layout::Compact => "stream IN (SELECT id FROM streams WHERE boot = ?1)",
            Layout::Text { .. } => "boot = ?1",
        };
        let sql = format!(
            "SELECT max(seq) FROM {} WHERE {filter}",
            self.layout.table()
        );
        let seq: Option<i64> = self
            .conn
            .query_row(&sql, [boot], |row| row.get(0))
            .optional_flat()?;
        Ok(seq.and_then(|s| u64::try_from(s).ok()))
    }

    /// Every boot row with the highest agent-made seq stored or refused for it (0 if none).
    pub fn boots(&self) -> Result<Vec<LoadedBoot>, StoreError> {
        // Schema 5: per stream of the boot, its newest agent-made row by the (stream, seq) key.
        let stored = match self.layout {
            Layout::Compact => format!(
                "(SELECT max((SELECT e.seq FROM events e WHERE e.stream = s.id AND e.{AGENT_MADE}
                   ORDER BY e.seq DESC LIMIT 1))
                 FROM streams s WHERE s.agent = b.agent AND s.boot = b.boot)"
            ),
            Layout::Text { table, .. } => format!(
                "(SELECT max(seq) FROM {table} e
                  WHERE e.agent = b.agent AND e.boot = b.boot AND e.origin = 'agent')"
            ),
        };
        let sql = format!(
            "SELECT b.agent, b.boot, b.watermark, b.epoch, b.first_received, b.last_received,
                    max(coalesce({stored}, 0),
                        coalesce((SELECT max(seq) FROM refusals r
                          WHERE r.agent = b.agent AND r.boot = b.boot), 0))
             FROM boots b ORDER BY b.agent, b.boot"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let bad = |problem: String| StoreError::BadRow { id: 0, problem };
            let agent: String = row.get(0)?;
            let boot: String = row.get(1)?;
            let epoch: Option<String> = row.get(3)?;
            let first: String = row.get(4)?;
            let last: String = row.get(5)?;
            let max_seq: Option<i64> = row.get(6)?;
            out.push(LoadedBoot {
                row: BootRow {
                    agent: AgentId::new(agent).map_err(|e| bad(format!("boots: {e}")))?,
                    boot: BootId::new(boot).map_err(|e| bad(format!("boots: {e}")))?,
                    watermark: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                    epoch: epoch.as_deref().map(parse_time).transpose().map_err(bad)?,
                    first_received: parse_time(&first).map_err(bad)?,
                    last_received: parse_time(&last).map_err(bad)?,
                },
                max_seq: max_seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// The agent-made seqs of `agent`/`boot` stored or refused above `watermark`, ascending.
    pub fn seqs_above(
        &self,
        agent: &AgentId,
        boot: &BootId,
        watermark: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let layout = self.layout;
        let sql = format!(
            "SELECT seq FROM {} WHERE {} AND seq > ?3 AND {}
             UNION SELECT seq FROM refusals WHERE agent = ?1 AND boot = ?2 AND seq > ?3
             ORDER BY seq",
            layout.table(),
            layout.key(1, true),
            layout.agent_made()
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let seqs = stmt
            .query_map(
                params![agent.as_str(), boot.as_str(), sql_u64(watermark)?],
                |row| row.get::<_, i64>(0),
            )?
            .filter_map(|seq| seq.map(|s| u64::try_from(s).ok()).transpose())
            .collect::<Result<_, _>>()?;
        Ok(seqs)
    }

    /// Every stored `journal_overflowed`, in store order. Unreadable rows are skipped (they are
    /// reported by the replay).
    pub fn overflows(&self) -> Result<Vec<Overflow>, StoreError> {
        let sql = overflows_sql(self.layout);
        let mut out = Vec::new();
        self.each(&sql, [], |_, stored| {
            let Ok(stored) = stored else { return };
            if let Event::JournalOverflowed {
                dropped_boot,
                first_seq,
                last_seq,
                ..
            } = stored.envelope.event
            {
                out.push(Overflow {
                    agent: stored.envelope.agent,
                    dropped_boot,
                    first_seq,
                    last_seq,
                    received: stored.received,
                });
            }
        })?;
        Ok(out)
    }

    /// At most `limit` events with an id above `after` (and an effective time at or after
    /// `since`), in id order, for projections. Rows that cannot be decoded are counted and
    /// skipped; `last_id` covers them too.
    pub fn events_after(
        &self,
        after: i64,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let layout = self.layout;
        let sql = format!(
            "SELECT {} FROM {} WHERE id > ?1 AND (?2 IS NULL OR time >= ?2) ORDER BY id LIMIT ?3",
            layout.columns(),
            layout.table()
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let since = since.map(|t| layout.time(t));
        let mut page = Page {
            last_id: after,
            ..Page::default()
        };
        self.each(&sql, params![after, since, limit], |id, event| {
            page.last_id = id;
            match event {
                Ok(event) => page.events.push(event),
                Err(e) => {
                    tracing::warn!(id, error = %e, "skipping an undecodable row");
                    page.undecodable += 1;
                }
            }
        })?;
        Ok(page)
    }

    /// The highest store id (0 when empty).
    pub fn max_id(&self) -> Result<i64, StoreError> {
        let sql = format!("SELECT coalesce(max(id), 0) FROM {}", self.layout.table());
        Ok(self.conn.query_row(&sql, [], |row| row.get(0))?)
    }

    /// The number of events with an id above `after` (and a time at or after `since`).
    pub fn count_after(&self, after: i64, since: Option<DateTime<Utc>>) -> Result<u64, StoreError> {
        let layout = self.layout;
        let sql = format!(
            "SELECT count(*) FROM {} WHERE id > ?1 AND (?2 IS NULL OR time >= ?2)",
            layout.table()
        );
        let since = since.map(|t| layout.time(t));
        let n: i64 = self
            .conn
            .query_row(&sql, params![after, since], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// The SQL and values of [`Store::for_each_of`] (and of `for_each_of_in`, with an id range);
/// `None` when no row can match.
pub(super) fn of_types_sql(
    layout: Layout,
    types: &[&str],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    ids: Option<Range<i64>>,
) -> Option<(String, Vec<Value>)> {
    let mut values: Vec<Value> = types.iter().filter_map(|t| layout.type_value(t)).collect();
    if values.is_empty() {
        return None;
    }
    let placeholders = vec!["?"; values.len()].join(", ");
    let in_ids = if ids.is_some() {
        " AND id >= ? AND id < ?"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE type IN ({placeholders}){} AND time >= ? AND time < ?{in_ids}
         ORDER BY id",
        layout.columns(),
        layout.table(),
        layout.type_index(types),
    );
    values.extend([layout.time(from), layout.time(to)]);
    if let Some(ids) = ids {
        values.extend([Value::Integer(ids.start), Value::Integer(ids.end)]);
    }
    Some((sql, values))
}

/// The SQL and values of [`Store::query`]; `None` when no row can match.
pub(super) fn query_sql(layout: Layout, query: &Query) -> Option<(String, Vec<Value>)> {
    let limit = query
        .limit
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut conditions = Vec::new();
    let mut values = vec![Value::Integer(limit)];
    if let Some(agent) = &query.agent {
        values.push(Value::Text(agent.clone()));
        conditions.push(layout.key(values.len(), false));
    }
    if let Some(name) = &query.event_type {
        values.push(layout.type_value(name)?);
        let index = layout.type_index(&[name]);
        conditions.push(format!("type = ?{}{index}", values.len()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY id DESC LIMIT ?1",
        layout.columns(),
        layout.table()
    );
    Some((sql, values))
}

/// The SQL of [`Store::overflows`].
pub(super) fn overflows_sql(layout: Layout) -> String {
    let name = "journal_overflowed";
    let kind = match layout {
        Layout::Compact => codes::code(name).unwrap_or_default().to_string(),
        Layout::Text { .. } => format!("'{name}'"),
    };
    format!(
        "SELECT {} FROM {} WHERE type = {kind}{} AND {} ORDER BY id",
        layout.columns(),
        layout.table(),
        layout.type_index(&[name]),
        layout.agent_made()
    )
}

/// `query_row` of a value that may be absent or NULL.
trait OptionalFlat<T> {
    fn optional_flat(self) -> Result<Option<T>, rusqlite::Error>;
}

impl<T> OptionalFlat<T> for Result<Option<T>, rusqlite::Error> {
    fn optional_flat(self) -> Result<Option<T>, rusqlite::Error> {
        use rusqlite::OptionalExtension;
        Ok(self.optional()?.flatten())
    }
}
