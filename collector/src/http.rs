//! The HTTP API (axum): health, live state and intake counters. Handlers read the writer's latest
//! snapshot from a `watch` channel; nothing here takes a lock or touches the store.
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /healthz` | `200 ok` once the state is rebuilt, `503 rebuilding` before |
//! | `GET /api/v1/state` | [`crate::api::StateView`] as JSON |
//! | `GET /api/v1/intake` | [`crate::api::IntakeCounters`] as JSON |

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::writer::Snapshot;

type Snapshots = watch::Receiver<Arc<Snapshot>>;

/// The API's routes over the snapshots.
pub fn router(snapshots: Snapshots) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/state", get(state))
        .route("/api/v1/intake", get(intake))
        .with_state(snapshots)
}

/// Serves until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    snapshots: Snapshots,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(snapshots))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

async fn healthz(Extract(snapshots): Extract<Snapshots>) -> Response {
    if snapshots.borrow().ready {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "rebuilding").into_response()
    }
}

async fn state(Extract(snapshots): Extract<Snapshots>) -> Response {
    let snapshot = snapshots.borrow().clone();
    if !snapshot.ready {
        return (StatusCode::SERVICE_UNAVAILABLE, "rebuilding").into_response();
    }
    let body = api::state_json(&snapshot.state);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn intake(Extract(snapshots): Extract<Snapshots>) -> Response {
    let snapshot = snapshots.borrow().clone();
    Json(snapshot.counters.clone()).into_response()
}
