//! Properties every input must satisfy: p-values are probabilities, more canary errors never make the canary
//! look better, and a canary identical to stable never fails a comparison.

use proptest::prelude::*;
use sluice_proxy::telemetry::histogram::BUCKETS;
use sluice_proxy::telemetry::window::WindowStats;

use super::mann_whitney::{Alternative, u_test};
use super::{AnalysisConfig, CheckKind, Verdict, binomial, fisher, judge, proportion};

fn histogram() -> impl Strategy<Value = Vec<u64>> {
    // A handful of occupied buckets around 1–100 ms, like real traffic.
    prop::collection::vec((160usize..300, 0u64..400), 0..12).prop_map(|cells| {
        let mut h = vec![0; BUCKETS];
        for (b, c) in cells {
            h[b] += c;
        }
        h
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn p_values_are_probabilities(
        n1 in 1u64..600, n0 in 1u64..600, f1 in 0.0f64..=1.0, f0 in 0.0f64..=1.0,
        limit in 0.0f64..0.5, margin in 0.0f64..0.2,
    ) {
        let (x1, x0) = ((n1 as f64 * f1) as u64, (n0 as f64 * f0) as u64);
        let p = binomial::test_greater(x1, n1, limit);
        prop_assert!((0.0..=1.0).contains(&p), "binomial {p}");
        let out = proportion::test_difference_greater(x1, n1, x0, n0, margin).unwrap();
        prop_assert!((0.0..=1.0).contains(&out.p_value), "{out:?}");
        let normal = proportion::farrington_manning(x1, n1, x0, n0, margin);
        prop_assert!((0.0..=1.0).contains(&normal.p_value), "{normal:?}");
        let f = fisher::exact_greater(x1, n1 - x1, x0, n0 - x0);
        prop_assert!((0.0..=1.0).contains(&f), "fisher {f}");
    }

    #[test]
    fn mann_whitney_p_values_are_probabilities(x in histogram(), y in histogram()) {
        for alternative in [Alternative::Less, Alternative::Greater] {
            if let Some(t) = u_test(&x, &y, alternative) {
                prop_assert!((0.0..=1.0).contains(&t.p_value), "{t:?}");
                prop_assert!((0.0..=1.0).contains(&t.superiority()));
            }
        }
    }

    #[test]
    fn more_canary_errors_never_raise_the_p_value(
        n1 in 1u64..400, n0 in 1u64..400, f1 in 0.0f64..=1.0, f0 in 0.0f64..0.3, margin in 0.0f64..0.1,
    ) {
        let x1 = ((n1 as f64 * f1) as u64).min(n1 - 1);
        let x0 = (n0 as f64 * f0) as u64;
        let before = proportion::test_difference_greater(x1, n1, x0, n0, margin).unwrap().p_value;
        let after = proportion::test_difference_greater(x1 + 1, n1, x0, n0, margin).unwrap().p_value;
        prop_assert!(after <= before * (1.0 + 1e-12) + 1e-15, "{x1}/{n1} vs {x0}/{n0}: {before} -> {after}");
        let guard_before = binomial::test_greater(x1, n1, margin);
        let guard_after = binomial::test_greater(x1 + 1, n1, margin);
        prop_assert!(guard_after <= guard_before * (1.0 + 1e-12) + 1e-15);
    }

    #[test]
    fn more_canary_errors_never_raise_the_p_value_at_large_counts(
        n in 1_000u64..20_000, rate in 0.0f64..0.05, extra in 1u64..20, margin in 0.0f64..0.02,
    ) {
        // Crosses the exact/normal switch on the expected error count.
        let x0 = (n as f64 * rate) as u64;
        let mut last = f64::INFINITY;
        for x1 in x0..x0 + extra {
            let p = proportion::test_difference_greater(x1, n, x0, n, margin).unwrap().p_value;
            prop_assert!(p <= last * (1.0 + 1e-12) + 1e-15, "{x1}/{n} vs {x0}/{n}: {last} -> {p}");
            last = p;
        }
    }

    #[test]
    fn identical_canary_never_fails(
        requests in 0u64..3_000, rate in 0.0f64..0.05, latency in histogram(),
        margin in 0.0f64..0.02, ratio in 1.0f64..1.5, confidence in 0.9f64..0.999,
    ) {
        let errors = (requests as f64 * rate) as u64;
        let stats = WindowStats { requests, errors, latency };
        let config = AnalysisConfig {
            max_error_rate_increase: margin,
            max_latency_ratio: ratio,
            confidence,
            max_error_rate: 0.05,
            max_latency_p99: std::time::Duration::from_secs(10),
            min_requests: 50,
            min_latency_increase: std::time::Duration::ZERO,
        };
        let j = judge(&config, &stats, &stats);
        prop_assert_ne!(j.overall, Verdict::Fail, "{:#?}", j);
        for check in j.error_rate.checks.iter().chain(&j.latency.checks) {
            if matches!(check.kind, CheckKind::ErrorRateIncrease | CheckKind::LatencyRatio) {
                prop_assert!(check.p_value.is_none_or(|p| p >= 0.5 - 1e-9), "{check:?}");
            }
        }
    }
}
