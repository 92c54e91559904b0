//! A/A and detection simulations: the judge on generated traffic, many seeds.
//!
//! Run with `--nocapture` to see the measured rates; the assertions leave room for sampling noise.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use sluice_proxy::telemetry::histogram::{BUCKETS, bucket_of};
use sluice_proxy::telemetry::window::WindowStats;

use super::{AnalysisConfig, Verdict, judge};

/// One side's traffic: error probability, and log-normal latency with this median (µs) and log-sd.
#[derive(Clone, Copy)]
struct Traffic {
    error_rate: f64,
    median_micros: f64,
    sigma: f64,
}

const BASE: Traffic = Traffic {
    error_rate: 0.01,
    median_micros: 20_000.0,
    sigma: 0.5,
};

fn generate(rng: &mut SmallRng, traffic: Traffic, requests: u64) -> WindowStats {
    let mut stats = WindowStats {
        requests,
        errors: 0,
        latency: vec![0; BUCKETS],
    };
    for _ in 0..requests {
        if rng.random::<f64>() < traffic.error_rate {
            stats.errors += 1;
        }
        // Box–Muller.
        let (u1, u2) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let micros = traffic.median_micros * (traffic.sigma * normal).exp();
        stats.latency[bucket_of(micros as u64)] += 1;
    }
    stats
}

/// Share of `runs` intervals whose overall verdict is Fail, and of error-rate and latency fails.
fn fail_rates(config: &AnalysisConfig, canary: Traffic, requests: u64, runs: u64, seed: u64) -> (f64, f64, f64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut overall, mut errors, mut latency) = (0, 0, 0);
    for _ in 0..runs {
        let stable = generate(&mut rng, BASE, requests);
        let canary = generate(&mut rng, canary, requests);
        let j = judge(config, &stable, &canary);
        overall += u64::from(j.overall == Verdict::Fail);
        errors += u64::from(j.error_rate.verdict == Verdict::Fail);
        latency += u64::from(j.latency.verdict == Verdict::Fail);
    }
    let share = |n: u64| n as f64 / runs as f64;
    (share(overall), share(errors), share(latency))
}

#[test]
fn identical_versions_are_rarely_failed() {
    let config = AnalysisConfig::default();
    let (rate, errors, latency) = fail_rates(&config, BASE, 1_000, 200, 1);
    eprintln!(
        "A/A, default config (margin 1 point, ratio 1.2, confidence 0.99), 200 runs x 1,000 requests/side: \
         false Fail {:.1} % (error rate {:.1} %, latency {:.1} %)",
        rate * 100.0,
        errors * 100.0,
        latency * 100.0
    );
    assert!(rate <= 0.05, "false fail rate {rate}");

    // At the edge of the null (no margin, no tolerance) each test should fail about α of the time: calibration.
    let edge = AnalysisConfig {
        max_error_rate_increase: 0.0,
        max_latency_ratio: 1.0,
        confidence: 0.95,
        min_latency_increase: std::time::Duration::ZERO,
        ..config
    };
    let (rate, errors, latency) = fail_rates(&edge, BASE, 1_000, 400, 2);
    eprintln!(
        "A/A at the null boundary (margin 0, ratio 1.0, confidence 0.95), 400 runs: false Fail {:.1} % \
         (error rate {:.1} %, latency {:.1} %; each should be about 5 %)",
        rate * 100.0,
        errors * 100.0,
        latency * 100.0
    );
    assert!(errors <= 0.09 && latency <= 0.09, "error {errors}, latency {latency}");
}

#[test]
fn regressions_are_detected() {
    let config = AnalysisConfig::default();
    let worse_errors = Traffic {
        error_rate: BASE.error_rate + 0.05,
        ..BASE
    };
    let (rate, errors, _) = fail_rates(&config, worse_errors, 1_000, 200, 3);
    eprintln!(
        "+5 points errors (1 % -> 6 %), 1,000 requests/side: detected {:.1} % (error rate {:.1} %)",
        rate * 100.0,
        errors * 100.0
    );
    assert!(errors >= 0.9, "{errors}");

    let slower = Traffic {
        median_micros: BASE.median_micros * 1.5,
        ..BASE
    };
    let (rate, _, latency) = fail_rates(&config, slower, 1_000, 200, 4);
    eprintln!(
        "+50 % latency, ratio tolerance 1.2, 1,000 requests/side: detected {:.1} % (latency {:.1} %)",
        rate * 100.0,
        latency * 100.0
    );
    assert!(latency >= 0.9, "{latency}");
}

#[test]
fn detection_table_for_the_issue() {
    // Issue 6 asks for +2 and +5 points of errors and +20 % latency at 100 and 1,000 requests per side.
    let config = AnalysisConfig::default();
    let strict = AnalysisConfig {
        max_latency_ratio: 1.0,
        min_latency_increase: std::time::Duration::ZERO,
        ..AnalysisConfig::default()
    };
    let cases: [(&str, &AnalysisConfig, Traffic); 4] = [
        (
            "+2 points errors",
            &config,
            Traffic {
                error_rate: 0.03,
                ..BASE
            },
        ),
        (
            "+5 points errors",
            &config,
            Traffic {
                error_rate: 0.06,
                ..BASE
            },
        ),
        (
            "+20 % latency, tolerance 1.2",
            &config,
            Traffic {
                median_micros: 24_000.0,
                ..BASE
            },
        ),
        (
            "+20 % latency, tolerance 1.0",
            &strict,
            Traffic {
                median_micros: 24_000.0,
                ..BASE
            },
        ),
    ];
    let mut seed = 10;
    for (name, config, canary) in cases {
        for requests in [100, 1_000] {
            seed += 1;
            let (rate, errors, latency) = fail_rates(config, canary, requests, 100, seed);
            eprintln!(
                "{name:<30} {requests:>5} requests/side: Fail {:>5.1} % (error rate {:>5.1} %, latency {:>5.1} %)",
                rate * 100.0,
                errors * 100.0,
                latency * 100.0
            );
        }
    }
    // The +5 points case must be caught at 1,000 requests; the +20 % latency case without tolerance too.
    let (_, errors, _) = fail_rates(
        &config,
        Traffic {
            error_rate: 0.06,
            ..BASE
        },
        1_000,
        50,
        99,
    );
    assert!(errors >= 0.9);
    let (_, _, latency) = fail_rates(
        &strict,
        Traffic {
            median_micros: 24_000.0,
            ..BASE
        },
        1_000,
        50,
        98,
    );
    assert!(latency >= 0.9);
}
