//! `netmon-collector replay influx`: re-projects the store (from a time, or everything) into the
//! configured InfluxDB server. Reads the store read-only and never touches the daemon's cursor;
//! the points are the same bytes the daemon writes, so replaying over existing data rewrites
//! identical points.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use netmon_mqtt::Backoff;

use super::Sink;
use super::line_protocol::{self, Point};
use crate::config::Config;
use crate::store::Store;

/// Transient failures tolerated in a row before the replay gives up.
const ATTEMPTS: u32 = 6;
/// The waits between those attempts: 2 s doubling to 32 s.
const RETRY: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(32));

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub events: u64,
    pub points_written: u64,
    pub rejected_points: u64,
    pub elapsed: Duration,
}

/// Replays every event with an effective time at or after `from` into `[influx]`, calling
/// `progress(done, total)` after every batch.
pub async fn replay_influx(
    config: &Config,
    from: Option<DateTime<Utc>>,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<ReplayReport> {
    let influx = config
        .influx
        .as_ref()
        .ok_or_else(|| anyhow!("{}: no [influx] section", config.file.display()))?;
    let sink = Sink::new(influx)?;
    let store = Store::open_read_only(&config.store.path)
        .with_context(|| format!("opening the store {}", config.store.path.display()))?;
    let total = store.count_after(0, from)?;
    let started = Instant::now();
    let mut report = ReplayReport::default();
    let mut last_error = None;
    let mut after = 0;
    progress(0, total);
    loop {
        let page = store.events_after(after, from, influx.batch_points)?;
        if page.last_id == after {
            break;
        }
        after = page.last_id;
        let inventory = config.inventory.as_deref();
        let points: Vec<Point> = page
            .events
            .iter()
            .filter_map(|e| line_protocol::point(e, inventory))
            .collect();
        let mut attempt = 0;
        let done = loop {
            match sink.deliver(&points, &mut last_error).await {
                Ok(done) => break done,
                Err(reason) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    let wait = RETRY.nth(attempt - 1);
                    tracing::warn!(reason = %reason, attempt, wait_s = wait.as_secs(), "influx write failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(reason) => {
                    return Err(anyhow!("writing to {}: {reason}", influx.url));
                }
            }
        };
        report.events += page.events.len() as u64 + page.undecodable;
        report.points_written += done.written;
        report.rejected_points += done.rejected;
        progress(report.events, total);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Prints progress: a redrawn bar on a terminal, a plain line every 10 % otherwise.
#[derive(Debug)]
pub struct Progress<W: Write> {
    out: W,
    terminal: bool,
    last_decile: Option<u64>,
}

impl<W: Write> Progress<W> {
    pub fn new(out: W, terminal: bool) -> Self {
        Self {
            out,
            terminal,
            last_decile: None,
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if self.terminal {
            let filled = usize::try_from(pct * 30 / 100).unwrap_or(30).min(30);
            let _ = write!(
                self.out,
                "\r[{}{}] {pct:>3}% {done}/{total} events",
                "#".repeat(filled),
                "-".repeat(30 - filled)
            );
            if done >= total {
                let _ = writeln!(self.out);
            }
        } else if self.last_decile != Some(pct / 10) {
            self.last_decile = Some(pct / 10);
            let _ = writeln!(self.out, "replay: {done}/{total} events ({pct}%)");
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn plain_progress_prints_a_line_per_tenth() {
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, false);
        for done in (0..=100).step_by(5) {
            p.update(done, 100);
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 11, "{text}");
        assert!(text.ends_with("replay: 100/100 events (100%)\n"));
    }
}
