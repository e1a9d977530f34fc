//! The daily coverage rollups at the writer's tick (ADR 17): once a Vietnam day has ended and
//! `coverage::rollup::ROLLUP_AFTER_MS` (a day) more have passed, its readings are read from the store — on a thread of
//! its own, with a read-only connection, so that a province's day (millions of readings) never
//! holds the writer up — and folded by the pure `coverage::rollup::DayRollup`; the writer then
//! appends the day's `coverage_day_rolled_up` events and moves the cursors in one transaction
//! (`Store::append_rollups`). One day at a time, oldest first; a store with a year of readings
//! and no rollups catches up a day per tick. Retention deletes no reading of a day not rolled
//! up (`store/retention.rs`).

use std::sync::mpsc;
use std::thread;

use chrono::DateTime;
use tracing::{debug, info, warn};

use super::{Now, Recorder};
use crate::coverage::day::Day;
use crate::coverage::rollup::{self, DayRollup, Rolled};
use crate::coverage::{ROLLUP_TYPE, TYPES};
use crate::store::rollups::{ROLLED_THROUGH, ROLLUP_FROM};
use crate::store::{NewEvent, Store, StoreError};

/// How long the job rests after finding nothing due (or failing).
const REST_MS: u64 = 60_000;
/// The longest rest until a day comes due (the wall clock may jump meanwhile).
const LONGEST_REST_MS: i64 = 3_600_000;

/// What the next rollup can do.
#[derive(Debug)]
pub enum Next {
    /// A day computed, to append.
    Day(Computed),
    /// The next day is due at this wall time (epoch ms).
    Until(i64),
    /// No reading at all yet.
    Nothing,
}

/// A day's rollups, computed, waiting to be appended.
#[derive(Debug)]
pub struct Computed {
    pub day: Day,
    /// The smallest id among the day's items (the next day's scan starts there).
    pub from_id: i64,
    pub rolled: Vec<Rolled>,
}

/// Where the rollups stand in the writer.
#[derive(Debug, Default)]
pub struct Rollups {
    running: Option<mpsc::Receiver<Result<Next, StoreError>>>,
    rest_until: u64,
}

impl Recorder {
    /// At the tick: appends a day's rollups computed since the last tick, or starts computing
    /// the next day due. Never waits for the computation.
    pub fn roll_up(&mut self, now: Now) {
        if let Some(running) = &self.rollups.running {
            match running.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    warn!("coverage rollup computation ended without an answer; again in a minute");
                    self.rollups.running = None;
                    self.rollups.rest_until = now.mono_ms + REST_MS;
                }
                Ok(answer) => {
                    self.rollups.running = None;
                    self.take_rollups(answer, now);
                }
            }
            return;
        }
        if now.mono_ms < self.rollups.rest_until {
            return;
        }
        let Some(path) = self.store.path() else {
            return;
        };
        let (send, receive) = mpsc::channel();
        let now_ms = now.wall.timestamp_millis();
        let spawned = thread::Builder::new()
            .name("coverage-rollup".into())
            .spawn(move || {
                let answer =
                    Store::open_read_only(&path).and_then(|store| next_day(&store, now_ms));
                let _ = send.send(answer);
            });
        match spawned {
            Ok(_) => self.rollups.running = Some(receive),
            Err(e) => {
                warn!(error = %e, "coverage rollup thread not started; again in a minute");
                self.rollups.rest_until = now.mono_ms + REST_MS;
            }
        }
    }

    /// Rolls up every day due at `now` here and now, on this thread (tests and tools).
    pub fn roll_up_all(&mut self, now: Now) -> Result<usize, StoreError> {
        let mut days = 0;
        while let Next::Day(computed) = next_day(&self.store, now.wall.timestamp_millis())? {
            self.append_day(computed, now)?;
            days += 1;
        }
        Ok(days)
    }

    fn take_rollups(&mut self, answer: Result<Next, StoreError>, now: Now) {
        match answer {
            Ok(Next::Day(computed)) => {
                if let Err(e) = self.append_day(computed, now) {
                    self.counters.store_errors += 1;
                    warn!(error = %e, "coverage rollups not stored; again in a minute");
                    self.rollups.rest_until = now.mono_ms + REST_MS;
                }
            }
            Ok(Next::Until(due)) => {
                let wait =
                    (due - now.wall.timestamp_millis()).clamp(REST_MS as i64, LONGEST_REST_MS);
                self.rollups.rest_until = now.mono_ms + wait as u64;
            }
            Ok(Next::Nothing) => self.rollups.rest_until = now.mono_ms + REST_MS,
            Err(e) => {
                warn!(error = %e, "coverage rollups not computed; again in a minute");
                self.rollups.rest_until = now.mono_ms + REST_MS;
            }
        }
    }

    /// Appends one day's rollups with the cursors, and folds them.
    fn append_day(&mut self, computed: Computed, now: Now) -> Result<(), StoreError> {
        let saved = self.next_seq;
        let start = DateTime::from_timestamp_millis(computed.day.start()).unwrap_or(now.wall);
        // Collector-made events of the day, filed at its midnight.
        let events: Vec<NewEvent> = computed
            .rolled
            .into_iter()
            .map(|rolled| {
                let mut event = self.made(rolled.agent, rolled.province, rolled.event, now);
                event.time = start;
                event.envelope.time = start;
                event
            })
            .collect();
        let through = computed.day.end();
        let appended = self
            .store
            .append_rollups(&events, through, computed.from_id)
            .inspect_err(|_| self.next_seq = saved)?;
        for stored in appended.iter().filter_map(|a| a.stored()) {
            self.state.apply(stored);
            self.alerting.apply(stored);
            self.targets.apply(stored);
        }
        let day = computed.day.date();
        info!(%day, modems = events.len(), "coverage rolled up");
        Ok(())
    }
}

/// Reads what the next day due at `now_ms` needs and folds it.
pub fn next_day(store: &Store, now_ms: i64) -> Result<Next, StoreError> {
    let through = store.projection_position(ROLLED_THROUGH)?;
    let earliest = if through > 0 {
        None
    } else {
        store.earliest_reading()?
    };
    let Some(day) = rollup::next_day(through, earliest) else {
        return Ok(Next::Nothing);
    };
    if !rollup::due(day, now_ms) {
        return Ok(Next::Until(rollup::due_at(day)));
    }
    let first_id = store.projection_position(ROLLUP_FROM)?;
    // What was stored by the time the day came due (all of it, when the rollup is on time).
    let ids = first_id..store.first_received_at(first_id, rollup::due_at(day))?;
    let time = |ms| DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let mut fold = DayRollup::new(day);
    let mut unreadable = 0u64;
    store.for_each_of_in(
        &[ROLLUP_TYPE],
        time(day.prev().start()),
        time(day.start()),
        first_id..i64::MAX,
        |_, event| match event {
            Ok(event) => fold.carry_from(&event),
            Err(_) => unreadable += 1,
        },
    )?;
    let mut from_id = None;
    store.for_each_of_in(
        TYPES,
        time(day.start()),
        time(day.end()),
        ids,
        |id, event| match event {
            Ok(event) => {
                from_id.get_or_insert(id);
                fold.apply(&event);
            }
            Err(_) => unreadable += 1,
        },
    )?;
    if unreadable > 0 {
        warn!(day = %day.date(), unreadable, "coverage rollup: stored events could not be read");
    }
    let rolled = fold.finish();
    debug!(day = %day.date(), modems = rolled.len(), "coverage rollup computed");
    Ok(Next::Day(Computed {
        day,
        from_id: from_id.unwrap_or(first_id),
        rolled,
    }))
}
