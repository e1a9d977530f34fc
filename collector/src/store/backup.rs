//! `backup` and `restore`: a copy of the store taken while the daemon runs, and put back with
//! the daemon stopped (`docs/operations.md`, "Backup and restore").
//!
//! Both copy with SQLite's online backup API ([`copy`]). The source is opened read-only and held
//! in one read transaction for the whole copy, so the copy is the store as of one commit, and
//! never restarts however often the daemon commits meanwhile: in WAL mode a reader does not hold
//! up the writer, whose commits go to the WAL (which is not checkpointed past the copy's point
//! until it is done, so it grows by what is written during the copy). Pages are copied
//! [`PAGES_PER_STEP`] at a time with a [`PAUSE`] between steps, so that the disk is shared with
//! the writer. The copy is written to `{to}.partial`, synced and renamed: a file at `{to}` is
//! always a whole copy. The copy is a single file (journal mode `delete`: reading it leaves no
//! `-wal` beside it), private to its owner (0600).
//!
//! `restore` refuses while the daemon answers on its HTTP port, checks the file is a store this
//! collector can open (a netmon schema no newer than its own, `PRAGMA quick_check` clean), copies
//! it beside the store, removes what belonged to the file it replaces — its `-wal` (whose frames
//! would be applied to the new file) and `-shm`, and the snapshot `{store}.snapshot` (ADR 15: the
//! first start replays the restored store) — gives the copy the owner of the store's directory
//! (restored as root for a `DynamicUser` service) and renames it into place.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::schema::SCHEMA_VERSION;
use crate::cli::daemon_client::{self, GetError};
use crate::cli::failure::Failure;
use crate::cli::table::Lang;
use crate::config::Config;

/// Pages copied per step: 16 MiB at the default page size of 4 KiB.
pub const PAGES_PER_STEP: i32 = 4096;
/// The pause between two steps, leaving the disk to the daemon's writer.
pub const PAUSE: Duration = Duration::from_millis(5);
/// How long `restore` waits for the daemon's HTTP port to answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(2);

/// What a copy holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Stored events in the copy.
    pub events: u64,
    /// The highest store position (`events.id`) in the copy, 0 when empty.
    pub position: i64,
    /// The copy's size on disk.
    pub bytes: u64,
}

/// Why a copy was not made.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The destination exists and replacing it was not asked for (`--force`).
    #[error("{} exists", .0.display())]
    Exists(PathBuf),
    /// The source is not a store this collector can read, or copying failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// `backup --to FILE`: an online copy of the configured store.
pub fn backup(
    config: &Config,
    to: &Path,
    force: bool,
    lang: Lang,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let store = &config.store.path;
    not_the_store(store, "--to", to, lang)?;
    let started = Instant::now();
    let copied = copy_to(store, to, force).map_err(|e| refusal(e, lang))?;
    let (what, to, secs) = (
        summary(&copied, lang),
        to.display(),
        started.elapsed().as_secs_f64(),
    );
    let text = lang.pick(
        format!("Đã sao lưu {what} vào {to} trong {secs:.1} giây.\n"),
        format!("Backed up {what} to {to} in {secs:.1} s.\n"),
    );
    out.write_all(text.as_bytes()).context("writing output")?;
    Ok(())
}

/// `restore --from FILE`: the backup in the configured store's place, the daemon stopped.
pub fn restore(
    config: &Config,
    from: &Path,
    force: bool,
    lang: Lang,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let store = &config.store.path;
    let address = daemon_client::reachable(config.http.listen);
    match daemon_client::health(address, DAEMON_TIMEOUT) {
        Err(GetError::Connect(..)) => {}
        _ => {
            return Err(Failure::Runtime(anyhow!(lang.pick(
                format!(
                    "có tiến trình đang trả lời tại {address} (http.listen): hãy dừng collector trước khi khôi phục"
                ),
                format!(
                    "something answers at {address} (http.listen): stop the collector before restoring"
                ),
            ))));
        }
    }
    not_the_store(store, "--from", from, lang)?;
    let copied = restore_to(from, store, force).map_err(|e| refusal(e, lang))?;
    let (what, from, store) = (summary(&copied, lang), from.display(), store.display());
    let text = lang.pick(
        format!("Đã khôi phục {what} từ {from} vào {store}. Hãy khởi động collector.\n"),
        format!("Restored {what} from {from} into {store}. Start the collector.\n"),
    );
    out.write_all(text.as_bytes()).context("writing output")?;
    Ok(())
}

/// A consistent copy of the store at `store` in a new file `to` (replaced when `force`).
pub fn copy_to(store: &Path, to: &Path, force: bool) -> Result<Copied, CopyError> {
    if !force && to.exists() {
        return Err(CopyError::Exists(to.to_owned()));
    }
    let partial = sibling(to, ".partial");
    let copied = copy(store, &partial)?;
    put_in_place(&partial, to, force)?;
    Ok(copied)
}

/// Puts a copy of the backup `from` in the place of the store at `store` (replaced when
/// `force`), with nothing left of the store it replaces.
pub fn restore_to(from: &Path, store: &Path, force: bool) -> Result<Copied, CopyError> {
    check(from)?;
    if !force && store.exists() {
        return Err(CopyError::Exists(store.to_owned()));
    }
    let partial = sibling(store, ".partial");
    let copied = copy(from, &partial)?;
    // Before the rename: a `-wal` left beside the new file would be applied to it.
    for leftover in ["-wal", "-shm", ".snapshot", ".snapshot.tmp"] {
        let path = sibling(store, leftover);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed with the store it belonged to")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("removing {}", path.display()))
                    .into());
            }
        }
    }
    owned_like_its_directory(&partial, store)?;
    put_in_place(&partial, store, force)?;
    Ok(copied)
}

/// Gives `file`, to be renamed to `store`, the owner of the store's directory: restored as root
/// into the state directory of a service (`DynamicUser=yes`), the store must still be the
/// service's to write.
fn owned_like_its_directory(file: &Path, store: &Path) -> anyhow::Result<()> {
    let dir = directory_of(store);
    let owner = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    let now = std::fs::metadata(file)?;
    if (now.uid(), now.gid()) == (owner.uid(), owner.gid()) {
        return Ok(());
    }
    std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid())).with_context(|| {
        format!(
            "giving {} the owner of {} (uid {}, gid {}); restore as root or as that user",
            file.display(),
            dir.display(),
            owner.uid(),
            owner.gid()
        )
    })
}

/// Checks that `path` is a store this collector can open: a netmon schema no newer than its
/// own, with an `events` table, and a clean `PRAGMA quick_check`.
pub fn check(path: &Path) -> anyhow::Result<()> {
    let conn = open_source(path)?;
    let quick: String = conn
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .with_context(|| format!("checking {}", path.display()))?;
    if quick != "ok" {
        bail!("{}: damaged (quick_check: {quick})", path.display());
    }
    Ok(())
}

/// Copies the store at `from` to a new file `to` with the online backup API, in one read
/// transaction of the source (see the module's text), and syncs it.
pub fn copy(from: &Path, to: &Path) -> anyhow::Result<Copied> {
    copy_in_steps(from, to, PAGES_PER_STEP)
}

/// [`copy`], `pages` pages per step.
fn copy_in_steps(from: &Path, to: &Path, pages: i32) -> anyhow::Result<Copied> {
    let source = open_source(from)?;
    match std::fs::remove_file(to) {
        Ok(()) => {
            tracing::info!(path = %to.display(), "removed the partial copy of an earlier attempt")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("removing {}", to.display()))),
    }
    // The read transaction: what it sees is what is copied, the counts included.
    source.execute_batch("BEGIN DEFERRED")?;
    let (events, position): (i64, i64) = source
        .query_row(
            "SELECT count(*), coalesce(max(id), 0) FROM events",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .with_context(|| format!("counting the events of {}", from.display()))?;
    let mut target = Connection::open(to).with_context(|| format!("creating {}", to.display()))?;
    {
        let backup = Backup::new(&source, &mut target)
            .with_context(|| format!("starting the copy of {}", from.display()))?;
        loop {
            match backup
                .step(pages)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?
            {
                StepResult::Done => break,
                // More to copy, or the source busy for a moment: the pause, then the next step.
                _ => std::thread::sleep(PAUSE),
            }
        }
    }
    source.execute_batch("COMMIT")?;
    // The copy is one file: reading it (`events`, `restore`) leaves no `-wal` or `-shm` beside
    // it. The daemon turns WAL on again when it opens the store.
    let mode: String = target
        .query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))
        .with_context(|| format!("making {} a single file", to.display()))?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("{}: journal mode {mode} instead of delete", to.display());
    }
    target
        .close()
        .map_err(|(_, e)| e)
        .with_context(|| format!("closing {}", to.display()))?;
    let file = std::fs::File::open(to).with_context(|| format!("opening {}", to.display()))?;
    // What the store holds (agents, addresses, contacts) is for the collector's user only.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private (0600)", to.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", to.display()))?;
    let bytes = file.metadata()?.len();
    Ok(Copied {
        events: u64::try_from(events).unwrap_or(0),
        position,
        bytes,
    })
}

/// The store at `path`, read-only (while the daemon writes to it), if it is one this collector
/// can open.
fn open_source(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {} read-only", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .with_context(|| format!("{}: not an SQLite database", path.display()))?;
    let events: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'",
        [],
        |row| row.get(0),
    )?;
    if version < 1 || events == 0 {
        bail!("{}: not a netmon event store", path.display());
    }
    if version > SCHEMA_VERSION {
        bail!(
            "{}: store schema version {version} is newer than this collector's {SCHEMA_VERSION}; use a newer collector",
            path.display()
        );
    }
    Ok(conn)
}

/// Renames the synced copy `partial` to `to` and syncs the directory.
fn put_in_place(partial: &Path, to: &Path, force: bool) -> Result<(), CopyError> {
    // Checked again: `to` may have appeared during the copy.
    if !force && to.exists() {
        let _ = std::fs::remove_file(partial);
        return Err(CopyError::Exists(to.to_owned()));
    }
    std::fs::rename(partial, to)
        .with_context(|| format!("renaming {} to {}", partial.display(), to.display()))?;
    let dir = directory_of(to);
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the directory {}", dir.display()))?;
    Ok(())
}

/// The directory `path` is in.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `{path}{suffix}`, beside `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A refusal to overwrite is a usage error (exit 64, `--force` decides); the rest are runtime.
fn refusal(e: CopyError, lang: Lang) -> Failure {
    match e {
        CopyError::Exists(path) => Failure::Usage(lang.pick(
            format!("{} đã tồn tại; thêm --force để ghi đè", path.display()),
            format!("{} exists; add --force to replace it", path.display()),
        )),
        CopyError::Failed(e) => Failure::Runtime(e),
    }
}

/// A usage error when `file` (given as `flag`) is the store itself.
fn not_the_store(store: &Path, flag: &str, file: &Path, lang: Lang) -> Result<(), Failure> {
    if same_file(store, file) {
        return Err(Failure::Usage(format!(
            "{flag} {}: {}",
            file.display(),
            lang.pick("đây chính là kho sự kiện", "that is the store itself")
        )));
    }
    Ok(())
}

/// "N events (up to position P, B bytes = M MiB)".
fn summary(copied: &Copied, lang: Lang) -> String {
    let Copied {
        events,
        position,
        bytes,
    } = copied;
    let mib = *bytes as f64 / (1024.0 * 1024.0);
    lang.pick(
        format!("{events} sự kiện (đến vị trí {position}, {bytes} byte = {mib:.1} MiB)"),
        format!("{events} events (up to position {position}, {bytes} bytes = {mib:.1} MiB)"),
    )
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
