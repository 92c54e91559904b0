//! The controller task: every tick, for each route with a rollout, run due analyses and gates, and write every
//! transition through the store's one write path (persisted, so a restart resumes at the same step).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::IntGaugeVec;
use serde::Serialize;
use sluice_config::{Phase, Rollout, RolloutState, Store, Strategy, WebhookKind, Weight, unix_millis};
use sluice_proxy::Table;
use sluice_proxy::telemetry::window::{HORIZON_SECS, WindowStats};
use tokio::time::Instant;

use super::machine::{self, Gate, Input, Transition};
use super::webhook::Hooks;
use crate::analysis::{self, AnalysisConfig, Judgement};

/// How often the controller looks at its rollouts; analyses themselves run once per `interval`.
const TICK: Duration = Duration::from_millis(200);
/// Decisions kept per route for `GET .../rollout`.
const LOG_KEPT: usize = 200;

/// One entry of a route's decision log.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Unix milliseconds.
    pub at_ms: u64,
    /// Phase after the decision.
    pub phase: &'static str,
    /// Step index after the decision.
    pub step: usize,
    /// What happened.
    pub note: String,
    /// The analysis, when this decision came from one: counts, rates, quantiles, p-values, thresholds, verdicts.
    pub judgement: Option<Judgement>,
}

/// Drives every route's rollout.
#[derive(Debug)]
pub struct Controller {
    store: Arc<Store<Table>>,
    hooks: Hooks,
    logs: Mutex<HashMap<String, VecDeque<Decision>>>,
    /// When each route's current analysis interval started (in memory: after a restart a full interval is waited).
    interval_start: Mutex<HashMap<String, Instant>>,
    /// Serialises transitions: the tick and operator commands never interleave on a route.
    apply: tokio::sync::Mutex<()>,
    phase: IntGaugeVec,
    canary_weight: IntGaugeVec,
    clock: Clock,
}

/// Wall-clock milliseconds at the controller's start plus tokio time since: real time in production, and under
/// a paused test clock the deadlines move with the test.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall_ms: u64,
    start: Instant,
}

impl Clock {
    fn new() -> Clock {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Clock {
            wall_ms,
            start: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.wall_ms
            .saturating_add(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

impl Controller {
    /// A controller over `store`, registering its gauges in the telemetry registry.
    pub fn new(store: Arc<Store<Table>>) -> Arc<Controller> {
        let gauge = |name: &str, help: &str| {
            let vec = IntGaugeVec::new(prometheus::Opts::new(name, help), &["route"]).expect("valid metric");
            // A second controller in one process (tests) shares the first one's families.
            let _ = store.load().telemetry().registry().register(Box::new(vec.clone()));
            vec
        };
        Arc::new(Controller {
            hooks: Hooks::new(),
            logs: Mutex::new(HashMap::new()),
            interval_start: Mutex::new(HashMap::new()),
            apply: tokio::sync::Mutex::new(()),
            clock: Clock::new(),
            phase: gauge(
                "sluice_rollout_phase",
                "Rollout phase per route: 0 idle, 1 initializing, 2 progressing, 3 promoting, 4 succeeded, 5 failed, 6 paused.",
            ),
            canary_weight: gauge(
                "sluice_rollout_canary_weight",
                "Percent of the route's traffic on the canary.",
            ),
            store,
        })
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.tick().await,
                () = &mut shutdown => return,
            }
        }
    }

    /// The rollout config and state of `route`.
    pub fn rollout(&self, route: &str) -> Option<(Rollout, RolloutState)> {
        let state = self.store.state();
        let config = state
            .effective
            .routes
            .iter()
            .find(|r| r.name == route)?
            .rollout
            .clone()?;
        let current = state
            .overrides
            .rollouts
            .get(route)
            .cloned()
            .unwrap_or_else(|| machine::idle(&config));
        Some((config, current))
    }

    /// The decision log of `route`, oldest first.
    pub fn decisions(&self, route: &str) -> Vec<Decision> {
        let logs = self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        logs.get(route).map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }

    /// An operator command (start, pause, resume, promote, abort). Err when the route has no rollout or the
    /// command means nothing in the current phase.
    pub async fn command(&self, route: &str, input: Input, who: &str) -> Result<RolloutState, String> {
        let _guard = self.apply.lock().await;
        let (rollout, state) = self
            .rollout(route)
            .ok_or_else(|| format!("route `{route}` has no [routes.rollout]"))?;
        let name = format!("{input:?}");
        let Some(transition) = machine::step(&rollout, &state, input, self.clock.now_ms()) else {
            return Err(format!(
                "cannot {} a rollout that is {}",
                name.to_lowercase(),
                state.phase.as_str()
            ));
        };
        self.commit(route, &rollout, transition, None, who).await
    }

    async fn tick(&self) {
        let _guard = self.apply.lock().await;
        let routes: Vec<String> = self
            .store
            .state()
            .effective
            .routes
            .iter()
            .filter(|r| r.rollout.is_some())
            .map(|r| r.name.clone())
            .collect();
        for route in routes {
            if let Err(err) = self.advance(&route).await {
                tracing::warn!(route, "rollout step failed: {err}");
            }
        }
    }

    /// One look at `route`: a new revision starts a rollout; due analyses and open gates move it along.
    async fn advance(&self, route: &str) -> Result<(), String> {
        let Some((rollout, state)) = self.rollout(route) else {
            return Ok(());
        };
        self.phase.with_label_values(&[route]).set(state.phase.code());
        if rollout.revision.is_some() && rollout.revision != state.revision && !state.phase.is_active() {
            if state.phase != Phase::Paused {
                let input = Input::Start {
                    revision: rollout.revision.clone(),
                };
                if let Some(t) = machine::step(&rollout, &state, input, self.clock.now_ms()) {
                    self.commit(route, &rollout, t, None, "controller (new revision)")
                        .await?;
                }
            }
            return Ok(());
        }
        match state.phase {
            Phase::Initializing => self.gate(route, &rollout, &state, Gate::PreRollout).await,
            Phase::Promoting => self.gate(route, &rollout, &state, Gate::ConfirmPromotion).await,
            Phase::Progressing => {
                let due = {
                    let mut starts = self
                        .interval_start
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let start = *starts.entry(route.to_owned()).or_insert_with(Instant::now);
                    start.elapsed() >= rollout.interval
                };
                if !due {
                    return Ok(());
                }
                let judgement = self.judge(route, &rollout);
                let verdict = judgement.overall;
                let Some(t) = machine::step(&rollout, &state, Input::Analysis(verdict), self.clock.now_ms()) else {
                    return Ok(());
                };
                let gate = t.gate;
                let next = self.commit(route, &rollout, t, Some(judgement), "controller").await?;
                if let Some(gate) = gate {
                    self.gate(route, &rollout, &next, gate).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Compares canary with stable over the interval that just ended, the same seconds for both.
    fn judge(&self, route: &str, rollout: &Rollout) -> Judgement {
        let table = self.store.load();
        let telemetry = table.telemetry();
        // The current second is still filling: judge up to the last complete one.
        let now = telemetry.now_secs().saturating_sub(1);
        let stats = |version: &str, span: Duration| {
            telemetry
                .stats_at(route, version, now, span)
                .unwrap_or_else(WindowStats::empty)
        };
        let stable = match rollout.strategy {
            Strategy::Canary => stats(&rollout.stable, rollout.interval),
            // After the switch the old version gets no traffic: every request of it still in the windows came
            // before the switch, which makes it the baseline (and it survives a restart).
            Strategy::BlueGreen => stats(&rollout.stable, Duration::from_secs(HORIZON_SECS)),
        };
        let canary = stats(&rollout.canary, rollout.interval);
        let config = AnalysisConfig {
            max_error_rate: rollout.analysis.max_error_rate,
            max_error_rate_increase: rollout.analysis.max_error_rate_increase,
            max_latency_p99: rollout.analysis.max_latency_p99,
            max_latency_ratio: rollout.analysis.max_latency_ratio,
            confidence: rollout.analysis.confidence,
            min_requests: rollout.min_requests,
            ..AnalysisConfig::default()
        };
        analysis::judge(&config, &stable, &canary)
    }

    /// Asks a gate's webhooks and feeds the answer to the machine.
    async fn gate(&self, route: &str, rollout: &Rollout, state: &RolloutState, gate: Gate) -> Result<(), String> {
        let kind = match gate {
            Gate::PreRollout => WebhookKind::PreRollout,
            Gate::PreStep => WebhookKind::PreStep,
            Gate::ConfirmPromotion => WebhookKind::ConfirmPromotion,
        };
        let answer = self
            .hooks
            .gate(&rollout.webhooks, kind, &payload(route, rollout, state, kind))
            .await;
        if let Err(why) = &answer {
            tracing::warn!(route, "gate closed: {why}");
            self.log(route, state, format!("gate closed: {why}"), None);
        }
        if let Some(t) = machine::step(rollout, state, Input::Gate(answer.is_ok()), self.clock.now_ms()) {
            // A refused gate that only holds changes nothing worth a new version.
            if t.state != *state || t.canary_percent.is_some() {
                self.commit(route, rollout, t, None, "controller").await?;
            }
        }
        Ok(())
    }

    /// Writes a transition through the store (weights and state in one persisted commit), logs it, and fires the
    /// informational webhooks.
    async fn commit(
        &self,
        route: &str,
        rollout: &Rollout,
        transition: Transition,
        judgement: Option<Judgement>,
        who: &str,
    ) -> Result<RolloutState, String> {
        let Transition {
            state,
            canary_percent,
            note,
            ..
        } = transition;
        let weights = canary_percent.map(|p| {
            vec![
                Weight {
                    upstream: rollout.stable.clone(),
                    weight: 100 - p.min(100),
                },
                Weight {
                    upstream: rollout.canary.clone(),
                    weight: p.min(100),
                },
            ]
        });
        // Every transition follows an analysis, a gate or a command: the next analysis covers a full fresh interval.
        self.interval_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(route.to_owned(), Instant::now());
        let store = Arc::clone(&self.store);
        let (r, s, w, n, who_owned) = (route.to_owned(), state.clone(), weights, note.clone(), who.to_owned());
        tokio::task::spawn_blocking(move || store.set_rollout(&r, s, w, &who_owned, &n))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        tracing::info!(route, phase = state.phase.as_str(), step = state.step, "{note}");
        self.phase.with_label_values(&[route]).set(state.phase.code());
        if let Some(p) = canary_percent {
            self.canary_weight.with_label_values(&[route]).set(i64::from(p));
        }
        self.log(route, &state, note, judgement);
        let informational = match state.phase {
            Phase::Succeeded => Some(WebhookKind::PostRollout),
            Phase::Failed => Some(WebhookKind::Rollback),
            _ => None,
        };
        if let Some(kind) = informational {
            let hooks = self.hooks.clone();
            let (webhooks, body) = (rollout.webhooks.clone(), payload(route, rollout, &state, kind));
            // Informational: never hold the controller for them.
            tokio::spawn(async move {
                if let Err(why) = hooks.gate(&webhooks, kind, &body).await {
                    tracing::warn!("{why}");
                }
            });
        }
        Ok(state)
    }

    fn log(&self, route: &str, state: &RolloutState, note: String, judgement: Option<Judgement>) {
        let mut logs = self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let log = logs.entry(route.to_owned()).or_default();
        if log.len() == LOG_KEPT {
            log.pop_front();
        }
        log.push_back(Decision {
            at_ms: self.clock.now_ms(),
            phase: state.phase.as_str(),
            step: state.step,
            note,
            judgement,
        });
    }
}

fn payload(route: &str, rollout: &Rollout, state: &RolloutState, kind: WebhookKind) -> serde_json::Value {
    serde_json::json!({
        "route": route,
        "kind": kind.as_str(),
        "phase": state.phase.as_str(),
        "step": state.step,
        "canary_percent": rollout.steps.get(state.step),
        "stable": state.stable,
        "canary": state.canary,
        "revision": state.revision,
        "reason": state.reason,
        "at_ms": unix_millis(SystemTime::now()),
    })
}
