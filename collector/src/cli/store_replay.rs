//! Reading the store from a command while the daemon may run: opened read-only, every event (or
//! those of some types in a time range) in store order, unreadable rows counted, not fatal.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::failure::Failure;
use crate::config::Config;
use crate::store::Store;

/// The stored events [`replay_store`] reads: all, or those of some types in a time range.
pub(crate) type Selection<'a> = Option<(&'a [&'a str], DateTime<Utc>, DateTime<Utc>)>;

/// Calls `f` with every stored event (of `select`) in store order (the store opened read-only);
/// the rows that cannot be read are skipped and counted on `err`.
pub(crate) fn replay_store(
    config: &Config,
    err: &mut impl Write,
    select: Selection,
    mut f: impl FnMut(&crate::store::StoredEvent),
) -> Result<(), Failure> {
    let store = open_read_only(config)?;
    let mut unreadable = 0;
    let mut each = |row: Result<_, _>| match row {
        Ok(event) => f(&event),
        Err(_) => unreadable += 1,
    };
    match select {
        None => store.for_each(&mut each),
        Some((types, from, to)) => store.for_each_of(types, from, to, &mut each),
    }
    .context("reading the store")?;
    if unreadable > 0 {
        writeln!(
            err,
            "{unreadable} stored events could not be read and were skipped"
        )
        .context("writing output")?;
    }
    Ok(())
}

pub(crate) fn open_read_only(config: &Config) -> Result<Store, Failure> {
    let path = &config.store.path;
    Store::open_read_only(path)
        .with_context(|| format!("opening the store {} read-only", path.display()))
        .map_err(Failure::Runtime)
}
