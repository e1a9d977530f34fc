//! The accept loop: axum's router served over hyper's HTTP/1 connections, with the limits that
//! `axum::serve` cannot set (it gives hyper no timer, so no header timeout fires).
//!
//! - At most `max_connections` connections at once: each holds a semaphore permit; one accepted
//!   beyond that is closed at once, so idle sockets cannot use up the process's descriptors
//!   (SQLite and the MQTT client need some too).
//! - A connection must send a request's headers within `header_timeout` of waiting for them: on a
//!   new connection, and between requests on a kept-alive one (hyper's `header_read_timeout`).
//! - A connection lives at most [`MAX_AGE`]: then it is asked to finish its request and close,
//!   and dropped `request_timeout` later whatever it does (a client that stops reading a large
//!   answer).
//!
//! The per-request timeout and the body limit are layers of the router (`http.rs`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// The longest a connection is kept, whatever it does.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Refused connections are reported at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The connection limits of `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl From<&super::config::HttpConfig> for Limits {
    fn from(http: &super::config::HttpConfig) -> Self {
        Self {
            header_timeout: http.header_timeout,
            request_timeout: http.request_timeout,
            max_connections: http.max_connections,
        }
    }
}

/// Serves `router` on `listener` until `stop` fires; then stops accepting, lets the requests in
/// flight finish (at most `request_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut refused = Refused::default();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory: wait rather than spin.
                warn!(error = %e, "accepting an HTTP connection failed; retrying in 1s");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(stream);
            refused.note(limits.max_connections);
            continue;
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => Ok(()),
                () = tokio::time::sleep(MAX_AGE) => Ok(()),
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "HTTP connection ended");
                return;
            }
            // Stopping, or too old: finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            if tokio::time::timeout(limits.request_timeout, connection)
                .await
                .is_err()
            {
                debug!(%peer, "HTTP connection dropped: it did not finish in time");
            }
        });
    }
    connections.close();
    let grace = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        debug!("HTTP connections still open at shutdown are dropped");
    }
    Ok(())
}

/// An accept error that concerns only the connection being accepted.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Connections closed for want of a permit, reported at most every [`REPORT_EVERY`].
#[derive(Debug, Default)]
struct Refused {
    count: u64,
    reported: Option<Instant>,
}

impl Refused {
    fn note(&mut self, limit: usize) {
        self.count += 1;
        let now = Instant::now();
        if self.reported.is_none_or(|at| now - at >= REPORT_EVERY) {
            warn!(
                refused = self.count,
                limit, "HTTP connections refused: http.max_connections are open"
            );
            self.count = 0;
            self.reported = Some(now);
        }
    }
}
