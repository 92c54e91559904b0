//! Live state as the API shows it: the JSON documents of `docs/admin-api.md`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice_config::{
    Event, HostPattern, Phase, ReloadOutcome, Rollout, RolloutState, Route, Snapshot as _, Store, Strategy, percent,
    shares,
};
use sluice_proxy::Table;
use sluice_proxy::tls::TlsStatus;

use crate::controller::Decision;
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

/// `state.tls`: the certificates serving now and how the last reload went.
pub(crate) fn tls(status: &TlsStatus) -> Value {
    let certificates: Vec<Value> = status
        .certificates
        .iter()
        .map(|c| {
            json!({
                "hosts": c.hosts,
                "cert": c.cert.display().to_string(),
                "key": c.key.display().to_string(),
                "subject": c.subject,
                "names": c.names,
                "not_after": time(c.not_after),
                "warnings": c.warnings,
            })
        })
        .collect();
    json!({
        "certificates": certificates,
        "loaded_at": time(status.loaded_at),
        "reloads": { "ok": status.reloads_ok, "failed": status.reloads_failed },
        "last_error": status.last_error.as_ref().map(|e| json!({
            "at": time(e.at),
            "trigger": e.trigger,
            "message": e.message,
        })),
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

/// `GET /api/v1/routes/{route}/rollout` (and the answer to its commands): the rollout's config, where it is, and
/// the decision log, oldest first.
pub(crate) fn rollout(route: &str, config: &Rollout, state: &RolloutState, decisions: &[Decision]) -> Value {
    let analysis = &config.analysis;
    let decisions: Vec<Value> = decisions
        .iter()
        .map(|d| {
            let mut value = serde_json::to_value(d).unwrap_or_else(|e| json!({ "error": e.to_string() }));
            value["at"] = json!(time_ms(d.at_ms));
            value
        })
        .collect();
    json!({
        "route": route,
        "config": {
            "strategy": match config.strategy {
                Strategy::Canary => "canary",
                Strategy::BlueGreen => "blue_green",
            },
            "stable": config.stable,
            "canary": config.canary,
            "steps": config.steps,
            "interval_s": config.interval.as_secs_f64(),
            "failure_threshold": config.failure_threshold,
            "min_requests": config.min_requests,
            "progress_deadline_s": config.progress_deadline.as_secs_f64(),
            "analysis": {
                "max_error_rate": analysis.max_error_rate,
                "max_error_rate_increase": analysis.max_error_rate_increase,
                "max_latency_p99_ms": analysis.max_latency_p99.as_secs_f64() * 1000.0,
                "max_latency_ratio": analysis.max_latency_ratio,
                "confidence": analysis.confidence,
            },
            "revision": config.revision,
        },
        "state": {
            "phase": state.phase.as_str(),
            "step": state.step,
            "canary_percent": canary_percent(config, state),
            "failures": state.failures,
            "paused_from": state.paused_from.map(Phase::as_str),
            "reason": state.reason,
            "revision": state.revision,
            "stable": state.stable,
            "canary": state.canary,
            "started_at": (state.started_at_ms > 0).then(|| time_ms(state.started_at_ms)),
            "last_conclusive_at": (state.last_conclusive_ms > 0).then(|| time_ms(state.last_conclusive_ms)),
        },
        "decisions": decisions,
    })
}

/// The canary's share the rollout's phase stands for: the step's percent while progressing (a blue-green rollout
/// analyses after its switch, at 100), 100 once succeeded, 0 before traffic moves and after a rollback; a paused
/// rollout holds the share of the phase it paused.
fn canary_percent(config: &Rollout, state: &RolloutState) -> u32 {
    let phase = match state.phase {
        Phase::Paused => state.paused_from.unwrap_or(Phase::Progressing),
        phase => phase,
    };
    let step = config.steps.get(state.step).copied().unwrap_or(0);
    match (phase, config.strategy) {
        (Phase::Succeeded, _) | (Phase::Progressing, Strategy::BlueGreen) => 100,
        (Phase::Progressing | Phase::Promoting, Strategy::Canary) => step,
        _ => 0,
    }
}

/// [`time`] of Unix milliseconds.
fn time_ms(ms: u64) -> String {
    time(UNIX_EPOCH + Duration::from_millis(ms))
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

    fn sample(strategy: Strategy) -> Rollout {
        Rollout {
            strategy,
            stable: "blue".into(),
            canary: "canary".into(),
            steps: vec![5, 25, 100],
            interval: Duration::from_millis(1500),
            failure_threshold: 2,
            min_requests: 200,
            progress_deadline: Duration::from_secs(600),
            analysis: sluice_config::AnalysisSettings::default(),
            webhooks: Vec::new(),
            revision: Some("build-7".into()),
        }
    }

    #[test]
    fn canary_percent_follows_the_phase() {
        let config = sample(Strategy::Canary);
        let mut state = crate::controller::idle(&config);
        let mut at = |phase, paused_from, step| {
            state.phase = phase;
            state.paused_from = paused_from;
            state.step = step;
            canary_percent(&config, &state)
        };
        assert_eq!(at(Phase::Idle, None, 0), 0);
        assert_eq!(at(Phase::Initializing, None, 0), 0);
        assert_eq!(at(Phase::Progressing, None, 1), 25);
        assert_eq!(at(Phase::Promoting, None, 1), 25);
        assert_eq!(at(Phase::Paused, Some(Phase::Progressing), 1), 25);
        assert_eq!(at(Phase::Paused, Some(Phase::Initializing), 0), 0);
        assert_eq!(at(Phase::Succeeded, None, 1), 100);
        assert_eq!(at(Phase::Failed, None, 1), 0);
        let blue_green = sample(Strategy::BlueGreen);
        let mut state = crate::controller::idle(&blue_green);
        state.phase = Phase::Promoting;
        assert_eq!(canary_percent(&blue_green, &state), 0, "before the switch");
        state.phase = Phase::Progressing;
        state.step = 2;
        assert_eq!(canary_percent(&blue_green, &state), 100, "analysing after the switch");
    }

    #[test]
    fn rollout_document_spells_durations_and_times() {
        let config = sample(Strategy::BlueGreen);
        let mut state = crate::controller::idle(&config);
        let doc = rollout("web", &config, &state, &[]);
        assert_eq!(doc["config"]["strategy"], "blue_green");
        assert_eq!(doc["config"]["interval_s"], 1.5);
        assert_eq!(doc["config"]["analysis"]["max_latency_p99_ms"], 500.0);
        assert_eq!(doc["state"]["started_at"], Value::Null, "never started");
        state.started_at_ms = 1_795_408_200_123;
        let decision = Decision {
            at_ms: 1_795_408_200_123,
            phase: "initializing",
            step: 0,
            note: "rollout started".into(),
            judgement: None,
        };
        let doc = rollout("web", &config, &state, &[decision]);
        assert_eq!(doc["state"]["started_at"], "2026-11-23T04:30:00.123Z");
        assert_eq!(doc["decisions"][0]["at"], "2026-11-23T04:30:00.123Z");
        assert_eq!(doc["decisions"][0]["at_ms"], 1_795_408_200_123_u64);
        assert_eq!(doc["decisions"][0]["note"], "rollout started");
    }
}
