//! Model types for automatic rollouts: how a route moves traffic from its stable version to a new one, and how
//! each step is judged.

use std::time::Duration;

/// `[routes.rollout]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Canary (stepwise) or blue-green (one switch).
    pub strategy: Strategy,
    /// The version serving users now (a route upstream).
    pub stable: String,
    /// The new version (a route upstream).
    pub canary: String,
    /// Canary: percent of traffic at each step, increasing, ending at 100. Blue-green: how many intervals the
    /// post-switch analysis lasts is `steps.len()`.
    pub steps: Vec<u32>,
    /// One analysis per interval.
    pub interval: Duration,
    /// Consecutive failed analyses that roll back.
    pub failure_threshold: u32,
    /// Requests per side per interval below which an analysis is inconclusive.
    pub min_requests: u64,
    /// Inconclusive for this long (since the last conclusive analysis) fails the rollout.
    pub progress_deadline: Duration,
    /// The thresholds the judge applies.
    pub analysis: AnalysisSettings,
    /// Hooks called at the rollout's gates.
    pub webhooks: Vec<Webhook>,
    /// When set and changed by a file reload, a new rollout starts (CI pipelines bump it).
    pub revision: Option<String>,
}

/// How a rollout moves traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Stepwise shares to the canary, each step analysed.
    Canary,
    /// 0 % to the new version until an atomic switch to 100 %, then analysed; failure switches back.
    BlueGreen,
}

/// `[routes.rollout.analysis]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisSettings {
    /// Absolute guard on the canary's error rate (0.05 = 5 %).
    pub max_error_rate: f64,
    /// Allowed increase of the canary's error rate over the stable's (judged with a statistical test).
    pub max_error_rate_increase: f64,
    /// Absolute guard on the canary's p99 latency.
    pub max_latency_p99: Duration,
    /// Allowed ratio of canary to stable latency (judged with Mann-Whitney U).
    pub max_latency_ratio: f64,
    /// Confidence of the statistical tests (0.99).
    pub confidence: f64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            max_error_rate: 0.05,
            max_error_rate_increase: 0.01,
            max_latency_p99: Duration::from_millis(500),
            max_latency_ratio: 1.2,
            confidence: 0.99,
        }
    }
}

/// `[[routes.rollout.webhooks]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Which gate calls it.
    pub kind: WebhookKind,
    /// `http://host:port/path`.
    pub url: String,
    /// A call that takes longer closes the gate.
    pub timeout: Duration,
}

/// The gates a webhook can guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookKind {
    /// Before any traffic moves; a failure aborts the rollout.
    PreRollout,
    /// Before each traffic increase (confirm-traffic-increase); a failure holds the step.
    PreStep,
    /// Before promotion to 100 % (or the blue-green switch); a failure holds.
    ConfirmPromotion,
    /// After success (informational).
    PostRollout,
    /// After a rollback (informational).
    Rollback,
}

impl WebhookKind {
    /// The name used in the file and in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::PreRollout => "pre-rollout",
            WebhookKind::PreStep => "pre-step",
            WebhookKind::ConfirmPromotion => "confirm-promotion",
            WebhookKind::PostRollout => "post-rollout",
            WebhookKind::Rollback => "rollback",
        }
    }

    /// Parses [`WebhookKind::as_str`]'s names.
    pub fn parse(text: &str) -> Option<WebhookKind> {
        [
            WebhookKind::PreRollout,
            WebhookKind::PreStep,
            WebhookKind::ConfirmPromotion,
            WebhookKind::PostRollout,
            WebhookKind::Rollback,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// No rollout has run.
    Idle,
    /// Running pre-rollout webhooks.
    Initializing,
    /// At a step, analysing.
    Progressing,
    /// Passed the last step; waiting for the confirm-promotion gate.
    Promoting,
    /// The canary took all traffic and is the new stable version.
    Succeeded,
    /// Rolled back to 0 % canary.
    Failed,
    /// Held by an operator.
    Paused,
}

impl Phase {
    /// Lower-case name for the API, metrics and the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Initializing => "initializing",
            Phase::Progressing => "progressing",
            Phase::Promoting => "promoting",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Paused => "paused",
        }
    }

    /// Parses [`Phase::as_str`]'s names.
    pub fn parse(text: &str) -> Option<Phase> {
        [
            Phase::Idle,
            Phase::Initializing,
            Phase::Progressing,
            Phase::Promoting,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Paused,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }

    /// A number for the `sluice_rollout_phase` gauge.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Whether the controller acts on the route in this phase.
    pub fn is_active(self) -> bool {
        matches!(self, Phase::Initializing | Phase::Progressing | Phase::Promoting)
    }
}

/// A route's rollout progress: persisted with every transition so a restart resumes where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutState {
    /// Where it is.
    pub phase: Phase,
    /// Index into `steps` (canary), or analyses done after the switch (blue-green).
    pub step: usize,
    /// Consecutive failed analyses.
    pub failures: u32,
    /// The phase to return to when resumed (set while paused).
    pub paused_from: Option<Phase>,
    /// Why it failed, or the last notable event.
    pub reason: Option<String>,
    /// The file's `revision` this rollout ran for.
    pub revision: Option<String>,
    /// The stable and canary of this rollout (a promotion swaps what "stable" means for the next one).
    pub stable: String,
    /// See `stable`.
    pub canary: String,
    /// Milliseconds since the Unix epoch: when it started, and when the last conclusive analysis was.
    pub started_at_ms: u64,
    /// See `started_at_ms`.
    pub last_conclusive_ms: u64,
}
