//! The error-rate metric: an absolute guard and a margin over the stable version, each an exact or score test.

use sluice_proxy::telemetry::window::WindowStats;

use super::verdict::{Check, CheckKind, MetricResult, Side, Verdict};
use super::{AnalysisConfig, binomial, proportion};

/// Judges the canary's error rate against the guard and against the stable version over the same seconds.
///
/// Each check fails only when its test is significant at `confidence` — exact tests stay valid at any count, so
/// a plainly broken canary fails before `min_requests` — and otherwise passes only when both sides have
/// `min_requests`; below that it is inconclusive.
pub fn judge(config: &AnalysisConfig, stable: &WindowStats, canary: &WindowStats) -> MetricResult {
    let alpha = config.alpha();
    let enough = stable.requests >= config.min_requests.max(1) && canary.requests >= config.min_requests.max(1);
    let quiet = if enough { Verdict::Pass } else { Verdict::Inconclusive };
    let decide = |p: f64| if p < alpha { Verdict::Fail } else { quiet };
    let (x1, n1) = (canary.errors.min(canary.requests), canary.requests);
    let (x0, n0) = (stable.errors.min(stable.requests), stable.requests);
    let rate1 = (n1 > 0).then(|| x1 as f64 / n1 as f64);
    let rate0 = (n0 > 0).then(|| x0 as f64 / n0 as f64);

    let guard_p = (n1 > 0).then(|| binomial::test_greater(x1, n1, config.max_error_rate));
    // Passing needs evidence, not just no alarm: the canary's rate must be significantly BELOW the guard
    // (exact one-sided binomial test of H0: p ≥ guard). With too few requests to show that (e.g. 1 error in 20),
    // the guard is inconclusive — a plainly bad canary must never be promoted just because its traffic was small.
    let below_p = (n1 > 0).then(|| 1.0 - binomial::sf(x1 + 1, n1, config.max_error_rate));
    let shown_below = below_p.is_some_and(|p| p < alpha);
    let guard = Check {
        kind: CheckKind::ErrorRateGuard,
        method: "exact_binomial",
        observed: rate1,
        limit: config.max_error_rate,
        statistic: guard_p.map(|_| x1 as f64),
        p_value: guard_p,
        alpha: Some(alpha),
        verdict: match guard_p.map(decide) {
            Some(Verdict::Pass) if !shown_below => Verdict::Inconclusive,
            Some(verdict) => verdict,
            None => Verdict::Inconclusive,
        },
    };

    let increase = proportion::test_difference_greater(x1, n1, x0, n0, config.max_error_rate_increase);
    let difference = rate1.zip(rate0).map(|(a, b)| a - b);
    let relative = Check {
        kind: CheckKind::ErrorRateIncrease,
        method: match increase.map(|o| o.method) {
            Some(proportion::Method::ExactUnconditional) => "exact_unconditional",
            Some(proportion::Method::FarringtonManning) => "farrington_manning",
            None => "none",
        },
        observed: difference,
        limit: config.max_error_rate_increase,
        statistic: increase.map(|o| o.z),
        p_value: increase.map(|o| o.p_value),
        alpha: Some(alpha),
        verdict: increase.map_or(Verdict::Inconclusive, |o| decide(o.p_value)),
    };

    let verdict = guard.verdict.and(relative.verdict);
    let percent = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), |r| format!("{:.2} %", r * 100.0));
    let reason = if guard.verdict == Verdict::Fail {
        format!(
            "canary error rate {} ({x1}/{n1}) is significantly above the {:.2} % guard \
             (exact binomial p = {:.3e} < {alpha})",
            percent(rate1),
            config.max_error_rate * 100.0,
            guard_p.unwrap_or(1.0),
        )
    } else if relative.verdict == Verdict::Fail {
        format!(
            "canary error rate {} ({x1}/{n1}) exceeds stable {} ({x0}/{n0}) by significantly more than {:.2} points \
             ({} z = {:.2}, p = {:.3e} < {alpha})",
            percent(rate1),
            percent(rate0),
            config.max_error_rate_increase * 100.0,
            relative.method,
            relative.statistic.unwrap_or(0.0),
            relative.p_value.unwrap_or(1.0),
        )
    } else if enough && !shown_below {
        format!(
            "too little traffic to show the canary's error rate {} ({x1}/{n1}) is below the {:.2} % guard \
             (exact binomial p = {:.3} ≥ {alpha}); holding",
            percent(rate1),
            config.max_error_rate * 100.0,
            below_p.unwrap_or(1.0),
        )
    } else if !enough {
        format!(
            "too little traffic: canary {n1} and stable {n0} requests, {} needed on each side",
            config.min_requests.max(1)
        )
    } else {
        format!(
            "canary error rate {} ({x1}/{n1}) vs stable {} ({x0}/{n0}): no significant increase beyond {:.2} points \
             (p = {:.3}) and not significantly above the {:.2} % guard (p = {:.3})",
            percent(rate1),
            percent(rate0),
            config.max_error_rate_increase * 100.0,
            relative.p_value.unwrap_or(1.0),
            config.max_error_rate * 100.0,
            guard_p.unwrap_or(1.0),
        )
    };
    MetricResult {
        verdict,
        reason,
        stable: Side::of(stable),
        canary: Side::of(canary),
        checks: vec![guard, relative],
    }
}

#[cfg(test)]
mod power_tests {
    use super::*;

    fn stats(requests: u64, errors: u64) -> WindowStats {
        WindowStats {
            requests,
            errors,
            latency: vec![0; sluice_proxy::telemetry::histogram::BUCKETS],
        }
    }

    fn config(min_requests: u64) -> AnalysisConfig {
        AnalysisConfig {
            min_requests,
            ..AnalysisConfig::default()
        }
    }

    #[test]
    fn a_small_sample_with_errors_is_never_a_pass() {
        // 8 % errors seen as 2 in 20: not significant against either limit, and not shown to be under the guard.
        let result = judge(&config(20), &stats(2_000, 0), &stats(20, 2));
        assert_eq!(result.verdict, Verdict::Inconclusive, "{}", result.reason);
        assert!(result.reason.contains("too little traffic"), "{}", result.reason);
    }

    #[test]
    fn enough_clean_requests_pass() {
        let result = judge(&config(100), &stats(2_000, 20), &stats(200, 2));
        assert_eq!(result.verdict, Verdict::Pass, "{}", result.reason);
    }

    #[test]
    fn ninety_clean_requests_are_the_least_that_shows_a_rate_under_five_percent() {
        // 0.95^90 ≈ 0.0099 < 0.01, 0.95^89 ≈ 0.0104.
        assert_eq!(
            judge(&config(1), &stats(1_000, 0), &stats(90, 0)).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(&config(1), &stats(1_000, 0), &stats(89, 0)).verdict,
            Verdict::Inconclusive
        );
    }
}
