//! What each endpoint does. Changes go through the store's write path on the blocking pool: it persists with
//! fsync under a lock. A client that hangs up mid-change does not cancel it; the change is atomic either way.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use sluice_config::{Rollout, RolloutState, Weight, WeightSource, WriteError};

use crate::controller::{self, Input};
use crate::error::{ApiError, Call};
use crate::server::AdminState;
use crate::{metrics, reply, stats, view};

/// Events listed when no `limit` is given.
const EVENTS_DEFAULT: usize = 100;
/// The most events listed (all the store keeps).
const EVENTS_MAX: usize = 256;

pub(crate) fn state(admin: &AdminState) -> Response<Full<Bytes>> {
    let mut state = view::state(admin.store());
    state["tls"] = admin
        .tls()
        .map_or(Value::Null, |tls| view::tls(&tls.certificates().status()));
    reply::json(StatusCode::OK, &state)
}

pub(crate) fn metrics(admin: &AdminState) -> Result<Response<Full<Bytes>>, ApiError> {
    Ok(reply::exposition(metrics::exposition(admin.store())?))
}

pub(crate) fn stats(admin: &AdminState, route: &str, query: Option<&str>) -> Result<Response<Full<Bytes>>, ApiError> {
    let table = admin.store().load();
    let Some(found) = table.config().routes.iter().find(|r| r.name == route) else {
        return Err(ApiError::NotFound(format!("unknown route `{route}`")));
    };
    let window = stats::window(query)?;
    let now = table.telemetry().now_secs();
    let body = json!({
        "route": route,
        "window_s": window.as_secs(),
        "versions": stats::route(&table, found, now, window),
    });
    Ok(reply::json(StatusCode::OK, &body))
}

pub(crate) fn events(admin: &AdminState, query: Option<&str>) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut limit = EVENTS_DEFAULT;
    for pair in query.unwrap_or_default().split('&') {
        if let Some(value) = pair.strip_prefix("limit=") {
            limit = value.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "`limit` must be a whole number (at most {EVENTS_MAX}), got `{value}`"
                ))
            })?;
        }
    }
    let events = admin.store().events(limit.min(EVENTS_MAX));
    Ok(reply::json(StatusCode::OK, &view::events(&events)))
}

pub(crate) async fn weights(
    admin: &Arc<AdminState>,
    route: String,
    weights: Vec<Weight>,
    who: String,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let store = Arc::clone(admin.store());
    let name = route.clone();
    let version = write(Call::Weights, move || {
        store.set_weights(&name, weights, WeightSource::Admin, &who)
    })
    .await?;
    tracing::info!(route, version, "admin api set weights");
    let table = admin.store().load();
    // A reload that removed the route may have landed in between.
    let Some(found) = table.config().routes.iter().find(|r| r.name == route) else {
        return Err(ApiError::Conflict(format!(
            "route `{route}` was removed by a reload after the change"
        )));
    };
    let mut body = view::route(&table, found);
    body["version"] = json!(version);
    Ok(reply::json(StatusCode::OK, &body))
}

pub(crate) async fn server(
    admin: &Arc<AdminState>,
    upstream: String,
    server: String,
    drain: bool,
    who: String,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let store = Arc::clone(admin.store());
    let (u, s) = (upstream.clone(), server.clone());
    let version = write(Call::Server, move || store.set_drained(&u, &s, drain, &who)).await?;
    let state = if drain { "drained" } else { "active" };
    tracing::info!(upstream, server, version, state, "admin api changed a server");
    let body = json!({ "version": version, "upstream": upstream, "server": server, "state": state });
    Ok(reply::json(StatusCode::OK, &body))
}

pub(crate) async fn reload(admin: &Arc<AdminState>, who: String) -> Result<Response<Full<Bytes>>, ApiError> {
    let store = Arc::clone(admin.store());
    let caller = who.clone();
    let reloaded = write(Call::Reload, move || store.reload(&caller)).await;
    // Certificates are re-read whatever became of the config: a reload is how an operator says "read the files".
    let certificates = match admin.tls() {
        Some(tls) => Some(tls.reload(&who).await),
        None => None,
    };
    let version = reloaded?;
    tracing::info!(version, "admin api reloaded the config file");
    // Another reload may have finished since; its notes are not this one's.
    let notes = admin
        .store()
        .last_reload()
        .filter(|o| o.result == Ok(version))
        .map(|o| o.notes)
        .unwrap_or_default();
    let mut body = json!({ "version": version, "notes": notes });
    if let Some(outcome) = certificates {
        body["certificates"] = json!({ "ok": outcome.is_ok(), "error": outcome.err() });
    }
    Ok(reply::json(StatusCode::OK, &body))
}

/// The operator commands of `POST /api/v1/routes/{route}/rollout/{command}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RolloutCommand {
    Start,
    Pause,
    Resume,
    Promote,
    Abort,
}

impl RolloutCommand {
    pub(crate) fn parse(segment: &str) -> Option<RolloutCommand> {
        Some(match segment {
            "start" => RolloutCommand::Start,
            "pause" => RolloutCommand::Pause,
            "resume" => RolloutCommand::Resume,
            "promote" => RolloutCommand::Promote,
            "abort" => RolloutCommand::Abort,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            RolloutCommand::Start => "start",
            RolloutCommand::Pause => "pause",
            RolloutCommand::Resume => "resume",
            RolloutCommand::Promote => "promote",
            RolloutCommand::Abort => "abort",
        }
    }

    /// What would make the command mean something, for a 409.
    fn hint(self) -> &'static str {
        match self {
            RolloutCommand::Start => "abort the running or paused rollout first, or let it finish",
            RolloutCommand::Pause => "only a running rollout (initializing, progressing, promoting) can be paused",
            RolloutCommand::Resume => "only a paused rollout can be resumed",
            RolloutCommand::Promote | RolloutCommand::Abort => "the rollout is not running; start one first",
        }
    }
}

const START_SHAPE: &str = "the body of `start` is empty or a JSON object like {\"revision\": \"build-1234\"}";

/// The controller input of a rollout command; `start` takes an optional `{"revision": "..."}` body, the others
/// ignore theirs.
pub(crate) fn rollout_input(command: RolloutCommand, body: &[u8]) -> Result<Input, ApiError> {
    Ok(match command {
        RolloutCommand::Start => Input::Start {
            revision: start_revision(body)?,
        },
        RolloutCommand::Pause => Input::Pause,
        RolloutCommand::Resume => Input::Resume,
        RolloutCommand::Promote => Input::Promote,
        RolloutCommand::Abort => Input::Abort,
    })
}

fn start_revision(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON ({e}); {START_SHAPE}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::BadRequest(START_SHAPE.to_owned()));
    };
    if let Some(key) = fields.keys().find(|k| *k != "revision") {
        return Err(ApiError::BadRequest(format!("unknown field `{key}`; {START_SHAPE}")));
    }
    match fields.get("revision") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(revision)) if !revision.trim().is_empty() => Ok(Some(revision.clone())),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`revision` must be a non-empty string, got {other}"
        ))),
    }
}

/// A route's rollout config and state from the live state, with or without a controller running: 404 for an
/// unknown route or one without `[routes.rollout]`.
fn rollout_of(admin: &AdminState, route: &str) -> Result<(Rollout, RolloutState), ApiError> {
    let live = admin.store().state();
    let Some(found) = live.effective.routes.iter().find(|r| r.name == route) else {
        return Err(ApiError::NotFound(format!("unknown route `{route}`")));
    };
    let Some(config) = &found.rollout else {
        return Err(ApiError::NotFound(format!(
            "route `{route}` has no automatic rollout; add a [routes.rollout] section to its config"
        )));
    };
    let state = live
        .overrides
        .rollouts
        .get(route)
        .cloned()
        .unwrap_or_else(|| controller::idle(config));
    Ok((config.clone(), state))
}

fn rollout_document(admin: &AdminState, route: &str, config: &Rollout, state: &RolloutState) -> Value {
    let decisions = admin.controller().map(|c| c.decisions(route)).unwrap_or_default();
    view::rollout(route, config, state, &decisions)
}

pub(crate) fn rollout(admin: &AdminState, route: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let (config, state) = rollout_of(admin, route)?;
    Ok(reply::json(
        StatusCode::OK,
        &rollout_document(admin, route, &config, &state),
    ))
}

pub(crate) async fn rollout_command(
    admin: &Arc<AdminState>,
    route: String,
    command: RolloutCommand,
    input: Input,
    who: String,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (config, _) = rollout_of(admin, &route)?;
    let Some(controller) = admin.controller() else {
        return Err(ApiError::Unavailable(
            "the promotion controller is not running in this sluice process; rollout commands cannot be applied"
                .to_owned(),
        ));
    };
    // Spawned: a client that hangs up does not cut a transition (its persisting and its log entry) in half.
    let task = {
        let (controller, route) = (Arc::clone(controller), route.clone());
        tokio::spawn(async move { controller.command(&route, input, &who).await })
    };
    let outcome = task
        .await
        .map_err(|err| ApiError::Internal(format!("the rollout command did not complete: {err}")))?;
    let state = match outcome {
        Ok(state) => state,
        Err(message) => {
            // A reload may have removed the rollout (or the route) since the check above.
            let Some((_, now)) = controller.rollout(&route) else {
                return Err(ApiError::NotFound(message));
            };
            return Err(ApiError::Conflict(format!(
                "cannot {} the rollout of route `{route}`: it is {}; {}",
                command.as_str(),
                now.phase.as_str(),
                command.hint()
            )));
        }
    };
    tracing::info!(
        route,
        command = command.as_str(),
        phase = state.phase.as_str(),
        "admin api rollout command"
    );
    let body = rollout_document(admin, &route, &config, &state);
    Ok(reply::json(StatusCode::OK, &body))
}

async fn write<F>(call: Call, change: F) -> Result<u64, ApiError>
where
    F: FnOnce() -> Result<u64, WriteError> + Send + 'static,
{
    match tokio::task::spawn_blocking(change).await {
        Ok(Ok(version)) => Ok(version),
        Ok(Err(err)) => Err(ApiError::from_write(err, call)),
        Err(err) => Err(ApiError::Internal(format!("the change did not complete: {err}"))),
    }
}
