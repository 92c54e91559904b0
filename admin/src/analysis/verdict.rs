//! What the judge decides, with the numbers behind it for the decision log.

use serde::Serialize;
use sluice_proxy::telemetry::window::WindowStats;

/// The decision on one metric, or on the whole interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Enough data, and no significant regression.
    Pass,
    /// A significant regression, or an absolute guard crossed.
    Fail,
    /// Too little data to decide either way; holds the step without counting as a failure.
    Inconclusive,
}

impl Verdict {
    /// Fail if either fails, else Inconclusive if either is, else Pass.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Fail, _) | (_, Verdict::Fail) => Verdict::Fail,
            (Verdict::Inconclusive, _) | (_, Verdict::Inconclusive) => Verdict::Inconclusive,
            _ => Verdict::Pass,
        }
    }
}

/// One side's numbers over the interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// Requests completed.
    pub requests: u64,
    /// Upstream errors among them.
    pub errors: u64,
    /// errors / requests, `None` without requests.
    pub error_rate: Option<f64>,
    /// Observations in the latency histogram.
    pub latency_samples: u64,
    /// Median latency (bucket upper edge), microseconds.
    pub p50_micros: Option<u64>,
    /// 99th percentile latency (bucket upper edge), microseconds.
    pub p99_micros: Option<u64>,
}

impl Side {
    /// Summarises a window.
    pub fn of(stats: &WindowStats) -> Side {
        let micros = |q: f64| {
            stats
                .quantile(q)
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        };
        Side {
            requests: stats.requests,
            errors: stats.errors,
            error_rate: stats.error_rate(),
            latency_samples: stats.latency.iter().sum(),
            p50_micros: micros(0.5),
            p99_micros: micros(0.99),
        }
    }
}

/// Which check a [`Check`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Canary error rate against `max_error_rate`: exact one-sided binomial test.
    ErrorRateGuard,
    /// Canary minus stable error rate against `max_error_rate_increase`: Farrington–Manning / exact unconditional.
    ErrorRateIncrease,
    /// Canary p99 against `max_latency_p99`.
    LatencyP99Guard,
    /// Canary latencies against stable × `max_latency_ratio`: one-sided Mann-Whitney U.
    LatencyRatio,
}

/// One check within a metric, with everything the decision log shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What was checked.
    pub kind: CheckKind,
    /// How: "exact binomial", "farrington_manning", "exact_unconditional", "mann_whitney_u", "threshold".
    pub method: &'static str,
    /// The observed quantity: canary rate, rate difference, P(canary > scaled stable), or p99 in ms.
    pub observed: Option<f64>,
    /// Its limit from the config: rate, margin, ratio, or p99 in ms.
    pub limit: f64,
    /// The test statistic (successes, z, or U₁), if a test ran.
    pub statistic: Option<f64>,
    /// The one-sided p-value, if a test ran.
    pub p_value: Option<f64>,
    /// The significance level, 1 − confidence, for tests.
    pub alpha: Option<f64>,
    /// This check's own verdict.
    pub verdict: Verdict,
}

/// The decision on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    /// The metric's verdict: the worst of its checks, Inconclusive below `min_requests`.
    pub verdict: Verdict,
    /// One sentence a person can act on.
    pub reason: String,
    /// The stable version's numbers.
    pub stable: Side,
    /// The canary's numbers.
    pub canary: Side,
    /// The checks that ran (or could not).
    pub checks: Vec<Check>,
}

/// One interval's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// Error-rate checks.
    pub error_rate: MetricResult,
    /// Latency checks.
    pub latency: MetricResult,
    /// Fail if any metric fails, else Inconclusive if any is, else Pass.
    pub overall: Verdict,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_beats_inconclusive_beats_pass() {
        use Verdict::*;
        let all = [Pass, Fail, Inconclusive];
        for a in all {
            for b in all {
                let expected = if a == Fail || b == Fail {
                    Fail
                } else if a == Inconclusive || b == Inconclusive {
                    Inconclusive
                } else {
                    Pass
                };
                assert_eq!(a.and(b), expected);
            }
        }
    }
}
