//! The InfluxDB projection (I/O): reads the store after its cursor, turns events into points
//! ([`line_protocol`]), POSTs them as line protocol (reqwest, gzip) and moves the cursor only
//! after a 2xx. `docs/adr/0009-influx-line-protocol-over-reqwest.md`.
//!
//! - 429, 5xx, network errors: the same batch is retried with backoff 1 s → 60 s; one WARN per
//!   outage, one INFO when the server is back (with how far behind the projection was).
//! - Other 4xx: the server's reason is logged and counted; the batch is bisected until the bad
//!   points are isolated, those are skipped and the rest written. A 4xx is never retried as is.
//! - The writer's snapshot `watch` wakes the task when new events are committed; a partial batch
//!   waits at most `flush_interval` for more.
//!
//! Beside it: [`config`] (the `[influx]` section), [`line_protocol`] (pure: a stored event → a
//! point, the agreed schema) and [`replay`] (`replay influx`: re-projects the store).

pub mod config;
pub mod line_protocol;
pub mod replay;
pub use config::{InfluxApi, InfluxConfig};

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use flate2::Compression;
use flate2::write::GzEncoder;
use netmon_mqtt::Backoff;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::ProjectionCounters;

use crate::store::{Page, Store};
use line_protocol::Point;

/// The projection's name in the `projections` table.
pub const NAME: &str = "influx";
/// The waits between attempts at a failing server: 1 s doubling to 60 s.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// What one request came to.
#[derive(Debug)]
enum Outcome {
    Written,
    /// 429, 5xx or no answer: try the same points again later.
    Transient(String),
    /// Another 4xx: these points as a whole are refused.
    Rejected(String),
}

/// The HTTP side: one client, the write URL and its query, the auth header.
#[derive(Debug, Clone)]
pub struct Sink {
    client: reqwest::Client,
    url: String,
    query: Vec<(&'static str, String)>,
    token: Option<String>,
    gzip: bool,
}

/// The result of delivering a batch that the server answered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub written: u64,
    pub rejected: u64,
}

impl Sink {
    pub fn new(config: &InfluxConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("netmon-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client for influx.url")?;
        let mut query = Vec::new();
        let (path, token) = match &config.api {
            InfluxApi::V2 { org, bucket, token } => {
                query.push(("org", org.clone()));
                query.push(("bucket", bucket.clone()));
                ("/api/v2/write", token.clone())
            }
            InfluxApi::V1 {
                database,
                retention_policy,
                credentials,
            } => {
                query.push(("db", database.clone()));
                if let Some(rp) = retention_policy {
                    query.push(("rp", rp.clone()));
                }
                if let Some((u, p)) = credentials {
                    query.push(("u", u.clone()));
                    query.push(("p", p.clone()));
                }
                ("/write", None)
            }
        };
        query.push(("precision", "ms".into()));
        Ok(Self {
            client,
            url: format!("{}{path}", config.url),
            query,
            token,
            gzip: config.gzip,
        })
    }

    async fn post(&self, points: &[Point]) -> Outcome {
        let mut body = Vec::with_capacity(points.iter().map(Vec::len).sum());
        for p in points {
            body.extend_from_slice(p);
        }
        let mut request = self
            .client
            .post(&self.url)
            .query(&self.query)
            .header("Content-Type", "text/plain; charset=utf-8");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if self.gzip {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            match encoder.write_all(&body).and_then(|()| encoder.finish()) {
                Ok(zipped) => {
                    body = zipped;
                    request = request.header("Content-Encoding", "gzip");
                }
                Err(e) => return Outcome::Transient(format!("gzip: {e}")),
            }
        }
        match request.body(body).send().await {
            Err(e) => Outcome::Transient(format!("{e:#}")),
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    return Outcome::Written;
                }
                let text = response.text().await.unwrap_or_default();
                let reason = format!(
                    "HTTP {status}: {}",
                    text.trim().chars().take(500).collect::<String>()
                );
                if status.as_u16() == 429 || status.is_server_error() || !status.is_client_error() {
                    Outcome::Transient(reason)
                } else {
                    Outcome::Rejected(reason)
                }
            }
        }
    }

    /// Writes `points`: all at once, else (on a 4xx) halves until the refused points are alone,
    /// which are skipped. `Err` on a transient failure: nothing can be said about the batch and
    /// it is to be sent again (points already written are rewritten identically).
    pub async fn deliver(
        &self,
        points: &[Point],
        last_error: &mut Option<String>,
    ) -> Result<Delivered, String> {
        let mut done = Delivered::default();
        let mut ranges = Vec::new();
        ranges.push(0..points.len());
        while let Some(range) = ranges.pop() {
            if range.is_empty() {
                continue;
            }
            match self.post(&points[range.clone()]).await {
                Outcome::Written => done.written += range.len() as u64,
                Outcome::Transient(reason) => return Err(reason),
                Outcome::Rejected(reason) if range.len() == 1 => {
                    let line = String::from_utf8_lossy(&points[range.start]);
                    warn!(reason = %reason, point = %line.trim_end(), "the server refused a point; skipped");
                    *last_error = Some(reason);
                    done.rejected += 1;
                }
                Outcome::Rejected(reason) => {
                    warn!(reason = %reason, points = range.len(), "the server refused a batch; isolating the bad points");
                    *last_error = Some(reason);
                    let middle = range.start + range.len() / 2;
                    ranges.push(middle..range.end);
                    ranges.push(range.start..middle);
                }
            }
        }
        Ok(done)
    }
}

/// Runs a store call on the blocking pool (the store is SQLite).
async fn blocking<T: Send + 'static>(
    store: Store,
    f: impl FnOnce(&mut Store) -> T + Send + 'static,
) -> anyhow::Result<(Store, T)> {
    tokio::task::spawn_blocking(move || {
        let mut store = store;
        let out = f(&mut store);
        (store, out)
    })
    .await
    .context("the store task failed")
}

/// The projection task: runs until `shutdown`, publishing its counters on `counters`. `notify`
/// changes whenever the writer has committed something. `inventory` adds the site tags and
/// coordinates to the points.
pub async fn run<T: Send + Sync>(
    config: InfluxConfig,
    inventory: Option<std::sync::Arc<crate::inventory::Inventory>>,
    store_path: PathBuf,
    mut notify: watch::Receiver<T>,
    counters: watch::Sender<Option<ProjectionCounters>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sink = Sink::new(&config)?;
    let path = store_path.clone();
    let mut store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .context("the store task failed")?
        .with_context(|| {
            format!(
                "opening the store {} for the influx projection",
                store_path.display()
            )
        })?;
    let mut stats = ProjectionCounters {
        position: store.projection_position(NAME)?,
        ..ProjectionCounters::default()
    };
    info!(position = stats.position, url = %config.url, "influx projection started");
    let mut read = stats.position;
    let mut pending: Vec<Point> = Vec::new();
    let mut pending_since: Option<Instant> = None;
    let mut backoff = RETRY;
    let mut outage: Option<Instant> = None;
    loop {
        // Take what is there, up to a full batch.
        let room = config.batch_points.saturating_sub(pending.len());
        let (s, page) = blocking(store, move |s| {
            (s.events_after(read, None, room), s.max_id())
        })
        .await?;
        store = s;
        let (page, max_id): (Page, i64) = (page.0?, page.1?);
        if page.last_id > read {
            pending.extend(
                page.events
                    .iter()
                    .filter_map(|e| line_protocol::point(e, inventory.as_deref())),
            );
            pending_since.get_or_insert_with(Instant::now);
            read = page.last_id;
        }
        stats.behind = max_id - stats.position;
        counters.send_replace(Some(stats.clone()));

        let due = pending_since.is_some_and(|t| t.elapsed() >= config.flush_interval);
        if read > stats.position && (pending.len() >= config.batch_points || due) {
            match sink.deliver(&pending, &mut stats.last_error).await {
                Ok(done) => {
                    if let Some(since) = outage.take() {
                        info!(
                            down_for = %humantime::format_duration(Duration::from_secs(since.elapsed().as_secs())),
                            behind = max_id - stats.position,
                            "the influx server is back; catching up"
                        );
                    }
                    backoff.reset();
                    stats.points_written += done.written;
                    stats.rejected_points += done.rejected;
                    stats.position = read;
                    let (s, saved) =
                        blocking(store, move |s| s.set_projection_position(NAME, read)).await?;
                    store = s;
                    saved.context("saving the influx projection's position")?;
                    stats.behind = max_id - stats.position;
                    counters.send_replace(Some(stats.clone()));
                    pending.clear();
                    pending_since = None;
                    continue;
                }
                Err(reason) => {
                    if outage.is_none() {
                        warn!(reason = %reason, behind = max_id - stats.position, "cannot write to the influx server; retrying with backoff");
                        outage = Some(Instant::now());
                    }
                    stats.last_error = Some(reason);
                    counters.send_replace(Some(stats.clone()));
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(backoff.next_wait()) => {}
                    }
                    continue;
                }
            }
        }
        let deadline = pending_since.map_or_else(
            || Instant::now() + config.flush_interval,
            |t| t + config.flush_interval,
        );
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            changed = notify.changed() => if changed.is_err() {
                // The writer is gone: keep going on the timer only.
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep_until(deadline) => {}
                }
            },
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Read;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    use super::*;

    /// A write endpoint on loopback: refuses (400) a body holding a line with `bad`, answers
    /// `status` to everything when set, records every accepted line.
    async fn server(status: Option<u16>) -> (String, Arc<Mutex<Vec<String>>>) {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let seen = accepted.clone();
        let app = Router::new().route(
            "/api/v2/write",
            post(move |headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    assert_eq!(headers["authorization"], "Token s3cret");
                    assert_eq!(headers["content-encoding"], "gzip");
                    let mut text = String::new();
                    flate2::read::GzDecoder::new(&body[..])
                        .read_to_string(&mut text)
                        .unwrap();
                    if let Some(code) = status {
                        return StatusCode::from_u16(code).unwrap();
                    }
                    if text.contains("bad") {
                        return StatusCode::BAD_REQUEST;
                    }
                    seen.lock().unwrap().extend(text.lines().map(String::from));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, accepted)
    }

    fn sink(url: &str) -> Sink {
        Sink::new(&InfluxConfig {
            url: url.into(),
            api: InfluxApi::V2 {
                org: "o".into(),
                bucket: "b".into(),
                token: Some("s3cret".into()),
            },
            batch_points: 100,
            flush_interval: Duration::from_secs(1),
            gzip: true,
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn points(names: &[&str]) -> Vec<Point> {
        names
            .iter()
            .map(|n| format!("m,t={n} f=1i 1\n").into_bytes())
            .collect()
    }

    #[tokio::test]
    async fn a_refused_batch_is_bisected_and_only_the_bad_points_are_skipped() {
        let (url, accepted) = server(None).await;
        let mut last_error = None;
        let names = ["a", "bad1", "c", "d", "e", "bad2", "g"];
        let done = sink(&url)
            .deliver(&points(&names), &mut last_error)
            .await
            .unwrap();
        assert_eq!(
            done,
            Delivered {
                written: 5,
                rejected: 2
            }
        );
        let mut got = accepted.lock().unwrap().clone();
        got.sort();
        let want: Vec<String> = ["a", "c", "d", "e", "g"]
            .iter()
            .map(|n| format!("m,t={n} f=1i 1"))
            .collect();
        assert_eq!(got, want);
        assert!(last_error.unwrap().contains("400"));
    }

    #[tokio::test]
    async fn overload_server_errors_and_no_server_are_transient() {
        for code in [429, 503] {
            let (url, accepted) = server(Some(code)).await;
            let err = sink(&url)
                .deliver(&points(&["a", "b"]), &mut None)
                .await
                .unwrap_err();
            assert!(err.contains(&code.to_string()), "{err}");
            assert!(accepted.lock().unwrap().is_empty());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(
            sink(&format!("http://127.0.0.1:{port}"))
                .deliver(&points(&["a"]), &mut None)
                .await
                .is_err()
        );
    }
}
