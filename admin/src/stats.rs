//! Live per-version stats from the data plane's rolling windows: the `stats` of each route in
//! `GET /api/v1/state`, and `GET /api/v1/routes/{route}/stats?window=30s`.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_config::{Route, Snapshot as _};
use sluice_proxy::Table;
use sluice_proxy::telemetry::window::{HORIZON_SECS, WindowStats};

use crate::error::ApiError;
use crate::router::decode;

/// The window `GET /api/v1/state` shows, and the stats endpoint's default.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// The quantiles shown, as (key, q).
const QUANTILES: [(&str, f64); 3] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)];

/// `window` from a query string: a duration such as `30s` or `5m`, in whole seconds, 1 s up to the windows'
/// horizon (300 s); [`DEFAULT_WINDOW`] when absent.
pub(crate) fn window(query: Option<&str>) -> Result<Duration, ApiError> {
    let mut window = DEFAULT_WINDOW;
    for pair in query.unwrap_or_default().split('&') {
        let Some(raw) = pair.strip_prefix("window=") else {
            continue;
        };
        let bad = |why: &str| {
            ApiError::BadRequest(format!(
                "`window` must be a duration of whole seconds from 1s to {HORIZON_SECS}s, such as `30s` or `5m`; \
                 got `{raw}`{why}"
            ))
        };
        let text = decode(raw).map_err(|_| bad(""))?;
        let parsed = humantime::parse_duration(text.trim()).map_err(|e| bad(&format!(" ({e})")))?;
        if parsed.subsec_nanos() != 0 || parsed.is_zero() || parsed.as_secs() > HORIZON_SECS {
            return Err(bad(""));
        }
        window = parsed;
    }
    Ok(window)
}

/// The stats of every version of `route` over the `window` ending with second `now_secs` of the telemetry clock:
/// all versions cover the same seconds, so they can be compared.
pub(crate) fn route(table: &Table, route: &Route, now_secs: u64, window: Duration) -> Vec<Value> {
    versions(table, route)
        .into_iter()
        .map(|upstream| {
            let stats = table
                .telemetry()
                .stats_at(&route.name, upstream, now_secs, window)
                .unwrap_or_else(WindowStats::empty);
            version(upstream, window, &stats)
        })
        .collect()
}

/// The route's versions in the data plane's layout order: the file's weights, then upstreams runtime weights
/// added, then upstreams only match rules name. A version an admin call left out (weight 0) still shows, with the
/// traffic it served before.
fn versions<'a>(table: &'a Table, route: &'a Route) -> Vec<&'a str> {
    let file_route = table.state().file.routes.iter().find(|r| r.name == route.name);
    let mut names: Vec<&str> = Vec::new();
    let file_names = file_route
        .into_iter()
        .flat_map(|r| r.weights.iter().map(|w| w.upstream.as_str()));
    let effective = route.weights.iter().map(|w| w.upstream.as_str());
    let matched = route.matches.iter().map(|m| m.version.as_str());
    for name in file_names.chain(effective).chain(matched) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// One version's object.
fn version(upstream: &str, window: Duration, stats: &WindowStats) -> Value {
    let latency = (stats.requests > 0).then(|| {
        let quantiles: serde_json::Map<String, Value> = QUANTILES
            .iter()
            .map(|&(key, q)| (key.to_owned(), json!(stats.quantile(q).map(millis))))
            .collect();
        Value::Object(quantiles)
    });
    json!({
        "upstream": upstream,
        "window_s": window.as_secs(),
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": stats.error_rate(),
        "latency_ms": latency,
    })
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(query: &str) -> String {
        match window(Some(query)) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn windows() {
        assert_eq!(window(None).unwrap(), Duration::from_secs(60));
        assert_eq!(window(Some("")).unwrap(), Duration::from_secs(60));
        assert_eq!(window(Some("window=30s")).unwrap(), Duration::from_secs(30));
        assert_eq!(window(Some("x=1&window=5m")).unwrap(), Duration::from_secs(300));
        assert_eq!(window(Some("window=1m%2030s")).unwrap(), Duration::from_secs(90));
        for bad in [
            "window=",
            "window=30",
            "window=abc",
            "window=0s",
            "window=301s",
            "window=6m",
            "window=1500ms",
        ] {
            let message = err(bad);
            assert!(message.contains("`window`"), "{bad}: {message}");
            assert!(message.contains(&format!("got `{}`", &bad[7..])), "{bad}: {message}");
        }
    }
}
