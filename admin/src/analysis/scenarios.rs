//! The judge on situations a rollout operator would recognise.

use std::time::Duration;

use super::support::{spread, window};
use super::{AnalysisConfig, CheckKind, Verdict, judge};

fn config() -> AnalysisConfig {
    AnalysisConfig::default()
}

#[test]
fn healthy_canary_passes() {
    let stable = spread(1_000, 10, 10_000, 30_000);
    let canary = spread(1_000, 12, 10_000, 30_000);
    let j = judge(&config(), &stable, &canary);
    assert_eq!(j.overall, Verdict::Pass, "{j:#?}");
    assert_eq!(j.error_rate.checks.len(), 2);
    assert!(
        j.error_rate.reason.contains("no significant increase"),
        "{}",
        j.error_rate.reason
    );
}

#[test]
fn one_error_in_three_requests_does_not_fail_a_five_percent_guard() {
    let j = judge(&config(), &spread(3, 0, 1_000, 2_000), &spread(3, 1, 1_000, 2_000));
    assert_eq!(j.error_rate.verdict, Verdict::Inconclusive, "{j:#?}");
    assert_eq!(j.latency.verdict, Verdict::Inconclusive);
    assert_eq!(j.overall, Verdict::Inconclusive);
}

#[test]
fn no_traffic_is_inconclusive_not_failed() {
    let j = judge(&config(), &spread(0, 0, 0, 0), &spread(0, 0, 0, 0));
    assert_eq!(j.overall, Verdict::Inconclusive);
    assert!(
        j.error_rate.reason.contains("too little traffic"),
        "{}",
        j.error_rate.reason
    );
    let j = judge(
        &config(),
        &spread(5_000, 5, 1_000, 2_000),
        &spread(150, 0, 1_000, 2_000),
    );
    assert_eq!(j.overall, Verdict::Inconclusive, "{j:#?}");
}

#[test]
fn a_broken_canary_fails_even_below_min_requests() {
    // 40 of 50 failing: the exact tests are valid at any count.
    let j = judge(&config(), &spread(50, 0, 1_000, 2_000), &spread(50, 40, 1_000, 2_000));
    assert_eq!(j.error_rate.verdict, Verdict::Fail, "{j:#?}");
    assert_eq!(j.overall, Verdict::Fail);
    assert_eq!(j.latency.verdict, Verdict::Inconclusive);
}

#[test]
fn five_percent_errors_against_none_fail_on_the_increase() {
    let j = judge(
        &config(),
        &spread(1_000, 0, 10_000, 30_000),
        &spread(1_000, 50, 10_000, 30_000),
    );
    assert_eq!(j.error_rate.verdict, Verdict::Fail, "{j:#?}");
    let increase = &j.error_rate.checks[1];
    assert_eq!(increase.kind, CheckKind::ErrorRateIncrease);
    assert_eq!(increase.verdict, Verdict::Fail);
    assert!(increase.p_value.unwrap() < 0.01);
    assert!(
        j.error_rate.reason.contains("exceeds stable"),
        "{}",
        j.error_rate.reason
    );
}

#[test]
fn small_increase_within_the_margin_passes() {
    // +0.5 points with a 1-point margin.
    let j = judge(
        &config(),
        &spread(5_000, 50, 10_000, 30_000),
        &spread(5_000, 75, 10_000, 30_000),
    );
    assert_eq!(j.error_rate.verdict, Verdict::Pass, "{j:#?}");
}

#[test]
fn hundred_ms_slower_canary_fails_the_latency_ratio() {
    let stable = spread(1_000, 0, 20_000, 60_000);
    let canary = spread(1_000, 0, 120_000, 160_000);
    let j = judge(&config(), &stable, &canary);
    assert_eq!(j.latency.verdict, Verdict::Fail, "{j:#?}");
    assert_eq!(j.latency.checks[1].verdict, Verdict::Fail);
    assert_eq!(j.latency.checks[0].verdict, Verdict::Pass);
    assert_eq!(j.error_rate.verdict, Verdict::Pass);
    assert_eq!(j.overall, Verdict::Fail);
}

#[test]
fn ten_percent_slower_is_within_a_twenty_percent_tolerance() {
    let stable = spread(2_000, 0, 20_000, 60_000);
    let canary = spread(2_000, 0, 22_000, 66_000);
    let j = judge(&config(), &stable, &canary);
    assert_eq!(j.latency.verdict, Verdict::Pass, "{j:#?}");
    // Without tolerance the same shift is significant.
    let strict = AnalysisConfig {
        max_latency_ratio: 1.0,
        min_latency_increase: Duration::ZERO,
        ..config()
    };
    assert_eq!(judge(&strict, &stable, &canary).latency.verdict, Verdict::Fail);
}

#[test]
fn p99_guard_fails_a_slow_tail_even_when_stable_is_as_slow() {
    let slow = window(1_000, 0, (0..1_000).map(|i| if i % 50 == 0 { 900_000 } else { 20_000 }));
    let j = judge(&config(), &slow, &slow);
    assert_eq!(j.latency.checks[0].verdict, Verdict::Fail, "{j:#?}");
    assert_eq!(j.latency.checks[1].verdict, Verdict::Pass);
    assert!(j.latency.reason.contains("guard"));
    // Below min_requests the guard does not fire.
    let few = window(100, 0, (0..100).map(|_| 900_000));
    let j = judge(&config(), &slow, &few);
    assert_eq!(j.latency.checks[0].verdict, Verdict::Inconclusive);
    let relaxed = AnalysisConfig {
        max_latency_p99: Duration::from_secs(2),
        ..config()
    };
    assert_eq!(judge(&relaxed, &slow, &slow).latency.verdict, Verdict::Pass);
}

#[test]
fn the_decision_serialises_for_the_log() {
    let j = judge(
        &config(),
        &spread(1_000, 10, 10_000, 30_000),
        &spread(1_000, 60, 10_000, 30_000),
    );
    let json = serde_json::to_value(&j).unwrap();
    assert_eq!(json["overall"], "fail");
    assert_eq!(json["error_rate"]["checks"][1]["kind"], "error_rate_increase");
    assert!(json["error_rate"]["checks"][1]["p_value"].as_f64().unwrap() < 0.01);
    assert_eq!(json["latency"]["canary"]["requests"], 1_000);
}
