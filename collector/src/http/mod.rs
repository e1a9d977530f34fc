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
//! refused (403), with a wrong or missing one (401). With `http.read_token` set, the `GET /api/v1/…`
//! routes need it or `http.token` (401 otherwise); `/healthz` never needs a token. Tokens are
//! checked before anything else of the request, its body included ([`auth`]).
//!
//! Commands go to the writer over a channel and are answered once recorded. Their bodies are at
//! most [`MAX_BODY`] bytes: a longer `Content-Length` is refused (413) before the body is read, a
//! chunked body once it passes the limit. Every request must be answered within
//! `http.request_timeout` (408); the connection limits are in [`server`].

mod auth;
pub mod config;
mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State as Extract};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::health::{self, IntakeHealth};
use crate::intake::recorder::CommandError;
use crate::inventory::Inventory;
use crate::writer::{OperatorCommand, Snapshot};
use auth::{Refusal, Tokens};
pub use server::Limits;

/// The largest command body, in bytes. The longest valid one — `by` and `note` of 500
/// characters of Vietnamese (up to 3 bytes each in UTF-8), a site id and two times — is about
/// 3.2 KB.
pub const MAX_BODY: usize = 4096;

type Snapshots = watch::Receiver<Arc<Snapshot>>;
/// The InfluxDB projection's counters (`None` when it is not configured).
pub type InfluxCounters = watch::Receiver<Option<api::ProjectionCounters>>;

/// What the routes read from and write to.
#[derive(Clone)]
pub struct Api {
    pub snapshots: Snapshots,
    pub influx: InfluxCounters,
    pub commands: mpsc::Sender<OperatorCommand>,
    /// `http.token`; `None` refuses every POST.
    pub token: Option<Arc<str>>,
    /// `http.read_token`; `None` leaves the GET routes open.
    pub read_token: Option<Arc<str>>,
    pub inventory: Option<Arc<Inventory>>,
    /// Timeouts and the connection limit of `[http]`.
    pub limits: Limits,
    /// The MQTT connection, as the intake reports it (for `/healthz`).
    pub intake_health: watch::Receiver<IntakeHealth>,
}

impl std::fmt::Debug for Api {
    /// Without the tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("read_token", &self.read_token.as_ref().map(|_| "<set>"))
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The API's routes.
pub fn router(api: Api) -> Router {
    let tokens = Arc::new(Tokens::new(api.token.as_deref(), api.read_token.as_deref()));
    let reads = Router::new()
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
                .with_state(api.clone()),
        )
        .route_layer(from_fn_with_state(Arc::clone(&tokens), may_read));
    // Layers run outermost last: the token, then the length, then the handler reads the body.
    let commands = Router::new()
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/silences", post(silence))
        .with_state(api.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .route_layer(from_fn(short_body))
        .route_layer(from_fn_with_state(tokens, may_command));
    Router::new()
        .route("/healthz", get(healthz))
        .with_state((api.snapshots.clone(), api.intake_health.clone()))
        .merge(reads)
        .merge(commands)
        .layer(from_fn_with_state(api.limits.request_timeout, in_time))
}

/// Serves until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    api: Api,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let limits = api.limits;
    server::serve(listener, router(api), limits, stop).await
}

/// Answers 408 to a request not answered within `timeout` (its body read included).
async fn in_time(Extract(timeout): Extract<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request took longer than {timeout:?}"),
        ),
    }
}

/// The read routes: the read token when one is configured.
async fn may_read(Extract(tokens): Extract<Arc<Tokens>>, request: Request, next: Next) -> Response {
    match tokens.read(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refused(refusal),
    }
}

/// The commands: the command token, checked before the body is read.
async fn may_command(
    Extract(tokens): Extract<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    match tokens.command(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refused(refusal),
    }
}

/// Refuses a declared body over [`MAX_BODY`] before reading any of it.
async fn short_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return too_large();
    }
    next.run(request).await
}

fn too_large() -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is longer than {MAX_BODY} bytes"),
    )
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Disabled => refuse(
            StatusCode::FORBIDDEN,
            "commands are disabled: set http.token in the collector's configuration",
        ),
        Refusal::Unauthorised => refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"),
    }
}

/// `200 ok`, or `503` with one reason a line (see `health.rs`).
async fn healthz(
    Extract((snapshots, intake)): Extract<(Snapshots, watch::Receiver<IntakeHealth>)>,
) -> Response {
    let snapshot = snapshots.borrow().clone();
    let intake = intake.borrow().clone();
    let reasons = health::judge(snapshot.ready, &snapshot.health, &intake, Utc::now());
    if reasons.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        let body = reasons.join("\n") + "\n";
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
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

/// Sends `command` to the writer and turns its answer into a response.
async fn submit(
    api: &Api,
    command: impl FnOnce(oneshot::Sender<Result<(), CommandError>>) -> OperatorCommand,
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

/// The body of a command (its token was checked by [`may_command`]); the refusal to answer
/// with otherwise: 413 past [`MAX_BODY`], 400 for anything else axum could not read.
fn accept<T>(body: Body<T>) -> Result<T, Box<Response>> {
    body.map(|Json(body)| body).map_err(|e| {
        Box::new(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            refuse(StatusCode::BAD_REQUEST, e.body_text())
        })
    })
}

async fn acknowledge(
    Extract(api): Extract<Api>,
    Path(id): Path<u64>,
    body: Body<AckBody>,
) -> Response {
    let body = match accept(body) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    submit(&api, |reply| OperatorCommand::Acknowledge {
        alert: id,
        by: body.by,
        note: body.note,
        reply,
    })
    .await
}

async fn silence(Extract(api): Extract<Api>, body: Body<SilenceBody>) -> Response {
    let body = match accept(body) {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    submit(&api, |reply| OperatorCommand::Silence {
        site: body.site,
        from: body.from,
        until: body.until,
        by: body.by,
        note: body.note,
        reply,
    })
    .await
}
