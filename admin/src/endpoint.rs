//! What each endpoint does. Changes go through the store's write path on the blocking pool: it persists with
//! fsync under a lock. A client that hangs up mid-change does not cancel it; the change is atomic either way.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use sluice_config::{Weight, WeightSource, WriteError};

use crate::error::{ApiError, Call};
use crate::server::AdminState;
use crate::{metrics, reply, stats, view};

/// Events listed when no `limit` is given.
const EVENTS_DEFAULT: usize = 100;
/// The most events listed (all the store keeps).
const EVENTS_MAX: usize = 256;

pub(crate) fn state(admin: &AdminState) -> Response<Full<Bytes>> {
    reply::json(StatusCode::OK, &view::state(admin.store()))
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
    let version = write(Call::Reload, move || store.reload(&who)).await?;
    tracing::info!(version, "admin api reloaded the config file");
    // Another reload may have finished since; its notes are not this one's.
    let notes = admin
        .store()
        .last_reload()
        .filter(|o| o.result == Ok(version))
        .map(|o| o.notes)
        .unwrap_or_default();
    Ok(reply::json(
        StatusCode::OK,
        &json!({ "version": version, "notes": notes }),
    ))
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
