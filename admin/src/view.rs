//! Live state as the API shows it: the JSON documents of `docs/admin-api.md`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice_config::{Event, HostPattern, ReloadOutcome, Route, Snapshot as _, Store, percent, shares};
use sluice_proxy::Table;

use crate::stats;

/// `GET /api/v1/state`.
pub(crate) fn state(store: &Store<Table>) -> Value {
    // One snapshot: the routes, their bucket ranges and the version all come from the same table.
    let table = store.load();
    let live = table.state();
    let (ok, failed) = store.reload_counts();
    let path = |p: Option<std::path::PathBuf>| p.map(|p| p.display().to_string());
    let routes: Vec<Value> = live.effective.routes.iter().map(|r| route(&table, r)).collect();
    let upstreams: Vec<Value> = live
        .effective
        .upstreams
        .iter()
        .map(|u| {
            let servers: Vec<Value> = u
                .servers
                .iter()
                .map(|s| {
                    let addr = s.to_string();
                    let state = table.server_state(&u.name, &addr).unwrap_or("active");
                    json!({ "addr": addr, "state": state })
                })
                .collect();
            json!({ "name": u.name, "servers": servers })
        })
        .collect();
    json!({
        "version": live.version,
        "published_at": time(live.published_at),
        "config_file": path(store.config_path()),
        "state_file": path(store.state_path()),
        "reloads": { "ok": ok, "failed": failed },
        "last_reload": store.last_reload().as_ref().map(reload),
        "routes": routes,
        "upstreams": upstreams,
    })
}

/// One route as in `state.routes[]`, with its versions' stats over the last [`stats::DEFAULT_WINDOW`].
pub(crate) fn route(table: &Table, route: &Route) -> Value {
    let live = table.state();
    let now = table.telemetry().now_secs();
    let raw: Vec<u32> = route.weights.iter().map(|w| w.weight).collect();
    let weights: Vec<Value> = route
        .weights
        .iter()
        .zip(shares(&raw))
        .map(|(w, share)| json!({ "upstream": w.upstream, "weight": w.weight, "share_percent": percent(share) }))
        .collect();
    // No host patterns means any host, which the file spells `*`.
    let hosts: Vec<String> = if route.hosts.is_empty() {
        vec![HostPattern::Any.to_string()]
    } else {
        route.hosts.iter().map(ToString::to_string).collect()
    };
    let (source, set_at) = live.weight_origin(&route.name);
    json!({
        "name": route.name,
        "hosts": hosts,
        "path_prefix": route.path_prefix,
        "weights": weights,
        "weights_source": source.as_str(),
        "weights_set_at": set_at.map(time),
        // Sticky routes: which of the 10,000 buckets each version holds (`from` inclusive, `to` exclusive).
        "buckets": table.route(&route.name).and_then(|r| r.bucket_ranges()).map(|ranges| {
            ranges
                .into_iter()
                .map(|(upstream, range)| json!({ "upstream": upstream, "from": range.start, "to": range.end }))
                .collect::<Vec<Value>>()
        }),
        "stats": stats::route(table, route, now, stats::DEFAULT_WINDOW),
    })
}

fn reload(outcome: &ReloadOutcome) -> Value {
    let (version, error) = match &outcome.result {
        Ok(version) => (Some(*version), None),
        Err(error) => (None, Some(error.as_str())),
    };
    json!({
        "at": time(outcome.at),
        "trigger": outcome.trigger,
        "ok": outcome.result.is_ok(),
        "version": version,
        "error": error,
        "notes": outcome.notes,
    })
}

/// `GET /api/v1/events`.
pub(crate) fn events(events: &[Event]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "version": e.version,
                "at": time(e.at),
                "who": e.who,
                "what": e.what,
                "before": e.before,
                "after": e.after,
            })
        })
        .collect();
    json!({ "events": events })
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-23T04:30:00.123Z`. Times outside years 1970–9999 (a clock
/// gone wrong, a hand-edited state file) are clamped rather than failing the whole document.
pub(crate) fn time(at: SystemTime) -> String {
    const LAST: Duration = Duration::from_millis(253_402_300_799_999);
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).min(LAST);
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(
            time(UNIX_EPOCH + Duration::from_millis(1_795_408_200_123)),
            "2026-11-23T04:30:00.123Z"
        );
        assert_eq!(time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            time(UNIX_EPOCH + Duration::from_millis(u64::MAX)),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
