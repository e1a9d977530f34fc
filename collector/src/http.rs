//! The HTTP API (axum): health, live state and intake counters. Handlers read the writer's latest
//! snapshot from a `watch` channel; nothing here takes a lock or touches the store.
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /healthz` | `200 ok` once the state is rebuilt, `503 rebuilding` before |
//! | `GET /api/v1/state` | [`crate::api::StateView`] as JSON |
//! | `GET /api/v1/intake` | [`crate::api::IntakeCounters`] as JSON |
//! | `GET /api/v1/projections` | [`crate::api::Projections`] as JSON |

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
/// The InfluxDB projection's counters (`None` when it is not configured).
pub type InfluxCounters = watch::Receiver<Option<api::ProjectionCounters>>;

/// The API's routes over the snapshots and the projections' counters.
pub fn router(snapshots: Snapshots, influx: InfluxCounters) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/state", get(state))
        .route("/api/v1/intake", get(intake))
        .with_state(snapshots)
        .merge(
            Router::new()
                .route("/api/v1/projections", get(projections))
                .with_state(influx),
        )
}

/// Serves until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    snapshots: Snapshots,
    influx: InfluxCounters,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(snapshots, influx))
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

async fn projections(Extract(influx): Extract<InfluxCounters>) -> Response {
    let influx = influx.borrow().clone();
    Json(api::Projections { influx }).into_response()
}
