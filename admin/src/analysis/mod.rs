//! The rollout judge: pure statistics comparing a canary with the stable version over the same seconds.
//!
//! [`judge`] takes both versions' [`WindowStats`] for one interval and returns a [`Judgement`]: per metric
//! Pass, Fail or Inconclusive, with the counts, rates, quantiles, statistics, p-values and thresholds behind it.
//! No I/O, no clocks: the controller calls it and writes the result to the decision log.
//!
//! - Error rate ([`error_rate`]): exact one-sided binomial test against `max_error_rate`, and a one-sided
//!   non-inferiority test of canary − stable against `max_error_rate_increase` ([`proportion`]: exact
//!   unconditional for small counts, Farrington–Manning score z otherwise).
//! - Latency ([`latency`]): canary p99 against `max_latency_p99`, and one-sided Mann-Whitney U ([`mann_whitney`])
//!   of canary against stable × `max_latency_ratio` on the histogram buckets.
//! - Numerics: [`normal`] (erfc), [`gamma`] (log-gamma), [`binomial`], [`fisher`].

pub mod binomial;
pub mod error_rate;
pub mod fisher;
pub mod gamma;
pub mod latency;
pub mod mann_whitney;
pub mod normal;
pub mod proportion;
mod verdict;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod simulation;
#[cfg(test)]
mod support;

use std::time::Duration;

pub use sluice_proxy::telemetry::window::WindowStats;
pub use verdict::{Check, CheckKind, Judgement, MetricResult, Side, Verdict};

/// The thresholds of one route's analysis (the config crate maps `[routes.rollout.analysis]` onto this).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    /// Absolute guard on the canary's error rate (0.05 = 5 %).
    pub max_error_rate: f64,
    /// Allowed canary − stable error rate (0.01 = one percentage point): the non-inferiority margin.
    pub max_error_rate_increase: f64,
    /// Absolute guard on the canary's p99 latency.
    pub max_latency_p99: Duration,
    /// Allowed canary / stable latency ratio.
    pub max_latency_ratio: f64,
    /// Confidence of every test (0.99: fail at p < 0.01).
    pub confidence: f64,
    /// Requests (and latency samples) needed on each side to pass; fewer is inconclusive.
    pub min_requests: u64,
    /// Latency increases smaller than this are never judged a regression, whatever the ratio: two time windows on
    /// a busy host differ by fractions of a millisecond that no user notices.
    pub min_latency_increase: Duration,
}

impl Default for AnalysisConfig {
    /// The example in the rollout design (issue 6).
    fn default() -> Self {
        AnalysisConfig {
            max_error_rate: 0.05,
            max_error_rate_increase: 0.01,
            max_latency_p99: Duration::from_millis(500),
            max_latency_ratio: 1.2,
            confidence: 0.99,
            min_requests: 200,
            min_latency_increase: Duration::from_millis(5),
        }
    }
}

impl AnalysisConfig {
    /// The significance level, 1 − confidence.
    pub fn alpha(&self) -> f64 {
        (1.0 - self.confidence).clamp(0.0, 1.0)
    }
}

/// Judges one interval: the canary against the stable version over exactly the same seconds.
pub fn judge(config: &AnalysisConfig, stable: &WindowStats, canary: &WindowStats) -> Judgement {
    let error_rate = error_rate::judge(config, stable, canary);
    let latency = latency::judge(config, stable, canary);
    let overall = error_rate.verdict.and(latency.verdict);
    Judgement {
        error_rate,
        latency,
        overall,
    }
}
