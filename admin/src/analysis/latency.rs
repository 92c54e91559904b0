//! The latency metric: an absolute p99 guard and Mann-Whitney U against the stable version with a ratio tolerance.
//!
//! The ratio tolerance shifts the null: H0 says canary latency is stochastically at most `max_latency_ratio` ×
//! stable latency. The stable histogram is scaled (each bucket's midpoint × ratio, re-binned) and the canary is
//! tested for being stochastically greater than that. Canary samples in the same bucket as scaled stable ones
//! count as ties, so the comparison is exact to a bucket (≤ 6.25 %).

use sluice_proxy::telemetry::window::WindowStats;

use super::AnalysisConfig;
use super::mann_whitney::{Alternative, scale_with_floor, u_test};
use super::verdict::{Check, CheckKind, MetricResult, Side, Verdict};

/// Judges the canary's latency against the p99 guard and against the stable version over the same seconds.
pub fn judge(config: &AnalysisConfig, stable: &WindowStats, canary: &WindowStats) -> MetricResult {
    let alpha = config.alpha();
    let min = config.min_requests.max(1);
    let (n1, n0): (u64, u64) = (canary.latency.iter().sum(), stable.latency.iter().sum());
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let limit_ms = ms(config.max_latency_p99);

    let p99 = canary.quantile(0.99);
    let guard = Check {
        kind: CheckKind::LatencyP99Guard,
        method: "threshold",
        observed: p99.map(ms),
        limit: limit_ms,
        statistic: None,
        p_value: None,
        alpha: None,
        verdict: match p99 {
            Some(_) if n1 < min => Verdict::Inconclusive,
            Some(p99) if p99 > config.max_latency_p99 => Verdict::Fail,
            Some(_) => Verdict::Pass,
            None => Verdict::Inconclusive,
        },
    };

    let ratio = if config.max_latency_ratio.is_finite() && config.max_latency_ratio > 0.0 {
        config.max_latency_ratio
    } else {
        1.0
    };
    let enough = n1 >= min && n0 >= min;
    let test = if enough {
        u_test(
            &canary.latency,
            &scale_with_floor(&stable.latency, ratio, config.min_latency_increase.as_micros() as f64),
            Alternative::Greater,
        )
    } else {
        None
    };
    let shift = Check {
        kind: CheckKind::LatencyRatio,
        method: "mann_whitney_u",
        observed: test.map(|t| t.superiority()),
        limit: ratio,
        statistic: test.map(|t| t.u1),
        p_value: test.map(|t| t.p_value),
        alpha: Some(alpha),
        verdict: match test {
            Some(t) if t.p_value < alpha => Verdict::Fail,
            Some(_) => Verdict::Pass,
            None => Verdict::Inconclusive,
        },
    };

    let verdict = guard.verdict.and(shift.verdict);
    let quantile_ms = |s: &WindowStats, q: f64| {
        s.quantile(q)
            .map_or_else(|| "n/a".to_owned(), |d| format!("{:.1} ms", ms(d)))
    };
    let reason = if guard.verdict == Verdict::Fail {
        format!(
            "canary p99 {} is above the {limit_ms:.1} ms guard ({n1} samples)",
            quantile_ms(canary, 0.99)
        )
    } else if shift.verdict == Verdict::Fail {
        format!(
            "canary latency (p50 {}, p99 {}) is significantly above {ratio} × stable (p50 {}, p99 {}) \
             (Mann-Whitney U z = {:.2}, p = {:.3e} < {alpha})",
            quantile_ms(canary, 0.5),
            quantile_ms(canary, 0.99),
            quantile_ms(stable, 0.5),
            quantile_ms(stable, 0.99),
            test.map_or(0.0, |t| t.z),
            test.map_or(1.0, |t| t.p_value),
        )
    } else if !enough {
        format!("too few latency samples: canary {n1} and stable {n0}, {min} needed on each side")
    } else {
        format!(
            "canary latency (p50 {}, p99 {}) is not significantly above {ratio} × stable (p50 {}, p99 {}) (p = {:.3})",
            quantile_ms(canary, 0.5),
            quantile_ms(canary, 0.99),
            quantile_ms(stable, 0.5),
            quantile_ms(stable, 0.99),
            test.map_or(1.0, |t| t.p_value),
        )
    };
    MetricResult {
        verdict,
        reason,
        stable: Side::of(stable),
        canary: Side::of(canary),
        checks: vec![guard, shift],
    }
}
