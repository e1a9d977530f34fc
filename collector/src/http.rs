//! The HTTP API (axum): health, live state and intake counters. Handlers read the writer's latest
//! snapshot from a `watch` channel; nothing here takes a lock or touches the store.
//!
//! | route | answer |
//! |-------|--------|
//! | `GET /healthz` | `200 ok` once the state is rebuilt, `503 rebuilding` before |
//! | `GET /api/v1/state` | [`crate::api::StateView`] as JSON |
//! | `GET /api/v1/intake` | [`crate::api::IntakeCounters`] as JSON |
//! | `GET /api/v1/projections` | [`crate::api::Projections`] as JSON |
//! | `GET /api/v1/alerts[?open=true]` | [`crate::api::AlertsView`] as JSON |
//! | `POST /api/v1/alerts/{id}/ack` | `{"by": …, "note": …}` → acknowledges; bearer token |
//! | `POST /api/v1/silences` | `{"site", "until", "from"?, "by", "note"?}` → silences a site; bearer token |
//!
//! The POST routes need `Authorization: Bearer <http.token>`; without a configured token they are
//! refused (403), with a wrong or missing one too (401). Commands go to the writer over a channel
//! and are answered once recorded.

use std::sync::Arc;

use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::inventory::Inventory;
use crate::recorder::CommandError;
use crate::writer::{Command, Snapshot};

type Snapshots = watch::Receiver<Arc<Snapshot>>;
/// The InfluxDB projection's counters (`None` when it is not configured).
pub type InfluxCounters = watch::Receiver<Option<api::ProjectionCounters>>;

/// What the routes read from and write to.
#[derive(Debug, Clone)]
pub struct Api {
    pub snapshots: Snapshots,
    pub influx: InfluxCounters,
    pub commands: mpsc::Sender<Command>,
    /// `http.token`; `None` refuses every POST.
    pub token: Option<Arc<str>>,
    pub inventory: Option<Arc<Inventory>>,
}

/// The API's routes.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/state", get(state))
        .route("/api/v1/intake", get(intake))
        .with_state(api.snapshots.clone())
        .merge(
            Router::new()
                .route("/api/v1/projections", get(projections))
                .with_state(api.influx.clone()),
        )
        .merge(
            Router::new()
                .route("/api/v1/alerts", get(alerts))
                .route("/api/v1/alerts/{id}/ack", post(acknowledge))
                .route("/api/v1/silences", post(silence))
                .with_state(api),
        )
}

/// Serves until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    api: Api,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(api))
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

#[derive(Debug, Deserialize)]
struct AlertsQuery {
    #[serde(default)]
    open: bool,
}

async fn alerts(Extract(api): Extract<Api>, Query(query): Query<AlertsQuery>) -> Response {
    let snapshot = api.snapshots.borrow().clone();
    if !snapshot.ready {
        return (StatusCode::SERVICE_UNAVAILABLE, "rebuilding").into_response();
    }
    let body = api::alerts_json(&snapshot.book, api.inventory.as_deref(), query.open);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: String,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    site: String,
    from: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    by: String,
    note: Option<String>,
}

/// A JSON error answer: `{"error": …}`.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Checks the bearer token; `Some` is the refusal to answer with.
fn authorise(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &api.token else {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "commands are disabled: set http.token in the collector's configuration",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare without an early exit, so that timing does not tell how much matched.
    let matches = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if matches {
        None
    } else {
        Some(refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

/// Sends `command` to the writer and turns its answer into a response.
async fn submit(
    api: &Api,
    command: impl FnOnce(oneshot::Sender<Result<(), CommandError>>) -> Command,
) -> Response {
    let (reply, answer) = oneshot::channel();
    if api.commands.send(command(reply)).await.is_err() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the collector is stopping");
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::OK, Json(serde_json::json!({ "ok": true }))).into_response(),
        Ok(Err(CommandError::NotFound(m))) => refuse(StatusCode::NOT_FOUND, m),
        Ok(Err(CommandError::Invalid(m))) => refuse(StatusCode::UNPROCESSABLE_ENTITY, m),
        Ok(Err(e @ CommandError::Store(_))) => {
            refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "the collector is stopping"),
    }
}

/// A command's JSON body, or why axum could not read it.
type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// The body of an authorised command; the refusal to answer with otherwise.
fn accept<T>(api: &Api, headers: &HeaderMap, body: Body<T>) -> Result<T, Box<Response>> {
    if let Some(answer) = authorise(api, headers) {
        return Err(Box::new(answer));
    }
    body.map(|Json(body)| body)
        .map_err(|e| Box::new(refuse(StatusCode::BAD_REQUEST, e.body_text())))
}

async fn acknowledge(
    Extract(api): Extract<Api>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Body<AckBody>,
) -> Response {
    let body = match accept(&api, &headers, body) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    submit(&api, |reply| Command::Acknowledge {
        alert: id,
        by: body.by,
        note: body.note,
        reply,
    })
    .await
}

async fn silence(
    Extract(api): Extract<Api>,
    headers: HeaderMap,
    body: Body<SilenceBody>,
) -> Response {
    let body = match accept(&api, &headers, body) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    submit(&api, |reply| Command::Silence {
        site: body.site,
        from: body.from,
        until: body.until,
        by: body.by,
        note: body.note,
        reply,
    })
    .await
}
