//! `[upstreams.NAME.health]`, `[upstreams.NAME.outlier]`, `fallback`, `[routes.retry]` and `[limits]`: one test per
//! rule, each checking the key path and the line.

use super::*;
use crate::resilience::{HealthCheck, Limits, OutlierDetection, RetryPolicy};

/// The base file with `tables` appended after the route `web` (so `[routes.retry]` belongs to it).
fn with(tables: &str) -> String {
    file(&[LISTEN, UPSTREAMS, ROUTE, tables])
}

/// The base file with `keys` added to the route `web` itself.
fn with_route_keys(keys: &str) -> String {
    file(&[LISTEN, UPSTREAMS, &format!("{ROUTE}{keys}")])
}

/// The canary's health check from `[upstreams.canary.health]` holding `keys`.
fn health(keys: &str) -> Option<HealthCheck> {
    accepted(&with(&format!("[upstreams.canary.health]\n{keys}"))).upstreams[1]
        .health
        .clone()
}

/// The canary's outlier detection from `[upstreams.canary.outlier]` holding `keys`.
fn outlier(keys: &str) -> OutlierDetection {
    accepted(&with(&format!("[upstreams.canary.outlier]\n{keys}"))).upstreams[1]
        .outlier
        .clone()
}

#[test]
fn every_new_section_parses_into_the_model() {
    let text = file(&[
        LISTEN,
        "[upstreams.blue]\nservers = [\"127.0.0.1:9101\"]\n",
        "[upstreams.canary]\nservers = [\"127.0.0.1:9102\", \"127.0.0.1:9103\"]\n\
         [upstreams.canary.health]\npath = \"/healthz\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nhealthy = 4\n\
         unhealthy = 6\n\
         [upstreams.canary.outlier]\nconsecutive_failures = 7\nbase_ejection = \"15s\"\nmax_ejection = \"2m\"\n\
         max_ejected_percent = 25\n",
        "[[routes]]\nname = \"web\"\nweights = { blue = 90, canary = 10 }\nfallback = \"blue\"\n\
         [routes.retry]\nattempts = 2\nbudget_percent = 10\n",
        "[limits]\nheader_timeout = \"5s\"\nmax_header_bytes = 16384\nmax_body_bytes = 10485760\n",
    ]);
    let config = accepted(&text);
    assert_eq!(config.upstreams[0].health, None);
    assert_eq!(config.upstreams[0].outlier, OutlierDetection::default());
    let canary = &config.upstreams[1];
    assert_eq!(
        canary.health,
        Some(HealthCheck {
            path: "/healthz".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            healthy: 4,
            unhealthy: 6,
        })
    );
    assert_eq!(
        canary.outlier,
        OutlierDetection {
            consecutive_failures: 7,
            base_ejection: Duration::from_secs(15),
            max_ejection: Duration::from_secs(120),
            max_ejected_percent: 25,
        }
    );
    let route = &config.routes[0];
    assert_eq!(route.fallback.as_deref(), Some("blue"));
    assert_eq!(
        route.retry,
        RetryPolicy {
            attempts: 2,
            budget_percent: 10
        }
    );
    assert_eq!(
        config.limits,
        Limits {
            header_timeout: Duration::from_secs(5),
            max_header_bytes: 16_384,
            max_body_bytes: Some(10_485_760),
        }
    );
}

#[test]
fn defaults_apply_when_the_sections_are_absent() {
    let config = accepted(&file(&[LISTEN, UPSTREAMS, ROUTE]));
    for upstream in &config.upstreams {
        assert_eq!(upstream.health, None, "active checks are off without the table");
        assert_eq!(upstream.outlier, OutlierDetection::default());
    }
    assert_eq!(config.routes[0].fallback, None);
    assert_eq!(config.routes[0].retry, RetryPolicy::default());
    assert_eq!(config.limits, Limits::default());
    // The documented defaults.
    assert_eq!(
        (RetryPolicy::default().attempts, RetryPolicy::default().budget_percent),
        (1, 20)
    );
    assert_eq!(Limits::default().max_header_bytes, 65_536);
    assert_eq!(Limits::default().max_body_bytes, None);
}

#[test]
fn empty_sections_take_the_defaults() {
    assert_eq!(health(""), Some(HealthCheck::default()));
    assert_eq!(outlier(""), OutlierDetection::default());
    let config = accepted(&with("[routes.retry]\n\n[limits]\n"));
    assert_eq!(config.routes[0].retry, RetryPolicy::default());
    assert_eq!(config.limits, Limits::default());
}

#[test]
fn keys_left_out_of_a_section_take_their_defaults() {
    assert_eq!(
        health("path = \"/ready\"\n"),
        Some(HealthCheck {
            path: "/ready".into(),
            ..HealthCheck::default()
        })
    );
    assert_eq!(
        outlier("max_ejected_percent = 100\n"),
        OutlierDetection {
            max_ejected_percent: 100,
            ..OutlierDetection::default()
        }
    );
    let config = accepted(&with("[routes.retry]\nattempts = 0\n\n[limits]\nmax_body_bytes = 1\n"));
    assert_eq!(
        config.routes[0].retry,
        RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        }
    );
    assert_eq!(
        config.limits,
        Limits {
            max_body_bytes: Some(1),
            ..Limits::default()
        }
    );
}

// ---- [upstreams.NAME.health] ----

#[test]
fn health_path_starts_with_slash() {
    let text = with("[upstreams.canary.health]\npath = \"healthz\"\n");
    let message = rejected(&text, "upstreams.canary.health.path", "path =");
    assert_eq!(message, "`healthz` must start with `/`; e.g. \"/healthz\"");
}

#[test]
fn health_path_fits_in_a_request_line() {
    for bad in ["/health check", "/healthz#top", "/gesundheit/ü"] {
        let text = with(&format!("[upstreams.canary.health]\npath = \"{bad}\"\n"));
        let message = rejected(&text, "upstreams.canary.health.path", "path =");
        assert!(message.contains("percent-encode"), "{message}");
    }
    assert_eq!(
        health("path = \"/healthz?deep=1\"\n").expect("health").path,
        "/healthz?deep=1"
    );
}

#[test]
fn health_interval_is_a_positive_duration() {
    let text = with("[upstreams.canary.health]\ninterval = \"0s\"\n");
    let message = rejected(&text, "upstreams.canary.health.interval", "interval");
    assert!(message.contains("greater than zero"), "{message}");

    let text = with("[upstreams.canary.health]\ninterval = \"5\"\n");
    let message = rejected(&text, "upstreams.canary.health.interval", "interval");
    assert!(message.contains("\"1m30s\""), "{message}");
}

#[test]
fn health_timeout_is_a_positive_duration() {
    let text = with("[upstreams.canary.health]\ntimeout = \"0ms\"\n");
    let message = rejected(&text, "upstreams.canary.health.timeout", "timeout");
    assert!(message.contains("greater than zero"), "{message}");
}

#[test]
fn health_timeout_is_at_most_the_interval() {
    let text = with("[upstreams.canary.health]\ninterval = \"2s\"\ntimeout = \"2s1ms\"\n");
    let message = rejected(&text, "upstreams.canary.health.timeout", "timeout");
    assert!(
        message.starts_with("timeout 2.001s is longer than the interval 2s"),
        "{message}"
    );

    let check = health("interval = \"2s\"\ntimeout = \"2s\"\n").expect("health");
    assert_eq!(
        (check.interval, check.timeout),
        (Duration::from_secs(2), Duration::from_secs(2))
    );
}

#[test]
fn health_interval_shorter_than_the_default_timeout_is_blamed_on_the_interval() {
    let text = with("[upstreams.canary.health]\npath = \"/\"\ninterval = \"500ms\"\n");
    let message = rejected(&text, "upstreams.canary.health.interval", "interval");
    assert!(message.contains("shorter than the default timeout 1s"), "{message}");
    assert!(message.contains("set `timeout`"), "{message}");

    let check = health("interval = \"500ms\"\ntimeout = \"100ms\"\n").expect("health");
    assert_eq!(check.timeout, Duration::from_millis(100));
}

#[test]
fn health_thresholds_are_at_least_one() {
    for (key, value) in [("healthy", "0"), ("unhealthy", "0"), ("unhealthy", "-1")] {
        let text = with(&format!("[upstreams.canary.health]\npath = \"/\"\n{key} = {value}\n"));
        let message = rejected(&text, &format!("upstreams.canary.health.{key}"), &format!("{key} ="));
        assert!(
            message.starts_with(&format!("{value} is too small; use at least 1")),
            "{message}"
        );
    }
    let text = with("[upstreams.canary.health]\nhealthy = 5000000000\n");
    let message = rejected(&text, "upstreams.canary.health.healthy", "healthy");
    assert!(message.starts_with("5000000000 is too large"), "{message}");

    let check = health("healthy = 1\nunhealthy = 1\n").expect("health");
    assert_eq!((check.healthy, check.unhealthy), (1, 1));
}

#[test]
fn health_threshold_of_the_wrong_type_says_what_is_expected() {
    let text = with("[upstreams.canary.health]\nhealthy = \"2\"\n");
    let message = rejected(&text, "upstreams.canary.health.healthy", "healthy");
    assert_eq!(message, "found string \"2\"; expected an integer of at least 1");

    let text = with("[upstreams.canary.health]\ninterval = 5\n");
    let message = rejected(&text, "upstreams.canary.health.interval", "interval");
    assert!(
        message.ends_with("expected a duration string, e.g. `\"250ms\"`, `\"5s\"`, `\"1m30s\"`"),
        "{message}"
    );
}

#[test]
fn health_unknown_key_suggests_the_nearest() {
    let text = with("[upstreams.canary.health]\nintervall = \"1s\"\n");
    let message = rejected(&text, "upstreams.canary.health.intervall", "intervall");
    assert_eq!(
        message,
        "unknown key `intervall`; did you mean `interval`? valid keys: path, interval, timeout, healthy, unhealthy"
    );
}

#[test]
fn upstream_unknown_table_suggests_health_or_outlier() {
    let text = with("[upstreams.canary.helth]\npath = \"/\"\n");
    let message = rejected(&text, "upstreams.canary.helth", "[upstreams.canary.helth]");
    assert_eq!(
        message,
        "unknown key `helth`; did you mean `health`? valid keys: servers, health, outlier, protocol, tls"
    );

    let text = with("[upstreams.canary.outliers]\n");
    let message = rejected(&text, "upstreams.canary.outliers", "[upstreams.canary.outliers]");
    assert!(message.contains("did you mean `outlier`?"), "{message}");
}

// ---- [upstreams.NAME.outlier] ----

#[test]
fn outlier_consecutive_failures_is_at_least_one() {
    let text = with("[upstreams.canary.outlier]\nconsecutive_failures = 0\n");
    let message = rejected(
        &text,
        "upstreams.canary.outlier.consecutive_failures",
        "consecutive_failures",
    );
    assert!(message.starts_with("0 is too small; use at least 1"), "{message}");
    assert_eq!(outlier("consecutive_failures = 1\n").consecutive_failures, 1);
}

#[test]
fn outlier_base_ejection_is_a_positive_duration() {
    let text = with("[upstreams.canary.outlier]\nbase_ejection = \"0s\"\n");
    let message = rejected(&text, "upstreams.canary.outlier.base_ejection", "base_ejection");
    assert!(message.contains("greater than zero"), "{message}");
}

#[test]
fn outlier_max_ejection_is_a_positive_duration() {
    let text = with("[upstreams.canary.outlier]\nmax_ejection = \"ten minutes\"\n");
    let message = rejected(&text, "upstreams.canary.outlier.max_ejection", "max_ejection");
    assert!(message.contains("is not a duration"), "{message}");
}

#[test]
fn outlier_max_ejection_is_at_least_base_ejection() {
    let text = with("[upstreams.canary.outlier]\nbase_ejection = \"30s\"\nmax_ejection = \"20s\"\n");
    let message = rejected(&text, "upstreams.canary.outlier.max_ejection", "max_ejection");
    assert!(
        message.starts_with("max_ejection 20s is shorter than base_ejection 30s"),
        "{message}"
    );

    let detection = outlier("base_ejection = \"30s\"\nmax_ejection = \"30s\"\n");
    assert_eq!(detection.max_ejection, Duration::from_secs(30));
}

#[test]
fn outlier_base_ejection_longer_than_the_default_max_is_blamed_on_base_ejection() {
    let text = with("[upstreams.canary.outlier]\nbase_ejection = \"10m\"\n");
    let message = rejected(&text, "upstreams.canary.outlier.base_ejection", "base_ejection");
    assert!(
        message.contains("longer than the default max_ejection 300s"),
        "{message}"
    );

    let detection = outlier("base_ejection = \"10m\"\nmax_ejection = \"1h\"\n");
    assert_eq!(detection.base_ejection, Duration::from_secs(600));
}

#[test]
fn outlier_max_ejected_percent_is_0_to_100() {
    for (value, size) in [("101", "too large"), ("-1", "too small")] {
        let text = with(&format!("[upstreams.canary.outlier]\nmax_ejected_percent = {value}\n"));
        let message = rejected(
            &text,
            "upstreams.canary.outlier.max_ejected_percent",
            "max_ejected_percent",
        );
        assert!(
            message.starts_with(&format!("{value} is {size}; use 0 to 100")),
            "{message}"
        );
    }
    assert_eq!(outlier("max_ejected_percent = 0\n").max_ejected_percent, 0);
    assert_eq!(outlier("max_ejected_percent = 100\n").max_ejected_percent, 100);

    let text = with("[upstreams.canary.outlier]\nmax_ejected_percent = 50.5\n");
    let message = rejected(
        &text,
        "upstreams.canary.outlier.max_ejected_percent",
        "max_ejected_percent",
    );
    assert!(message.ends_with("expected an integer from 0 to 100"), "{message}");
}

// ---- routes[].fallback ----

#[test]
fn fallback_names_an_existing_upstream() {
    let text = with_route_keys("fallback = \"blu\"\n");
    let message = rejected(&text, "routes[0].fallback", "fallback");
    assert_eq!(
        message,
        "unknown upstream `blu`; did you mean `blue`? upstreams: blue, canary"
    );

    let text = with_route_keys("fallback = \"stable\"\n");
    let message = rejected(&text, "routes[0].fallback", "fallback");
    assert_eq!(message, "unknown upstream `stable`; upstreams: blue, canary");
}

#[test]
fn fallback_need_not_be_in_the_weights() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { canary = 1 }\nfallback = \"blue\"\n",
    ]);
    assert_eq!(accepted(&text).routes[0].fallback.as_deref(), Some("blue"));
}

#[test]
fn fallback_of_the_wrong_type_says_what_is_expected() {
    let text = with_route_keys("fallback = [\"blue\"]\n");
    let message = rejected(&text, "routes[0].fallback", "fallback");
    assert!(
        message.ends_with("expected the name of an upstream, e.g. `\"blue\"`"),
        "{message}"
    );
}

// ---- [routes.retry] ----

#[test]
fn retry_attempts_are_0_to_3() {
    for (value, size) in [("4", "too large"), ("-1", "too small")] {
        let text = with(&format!("[routes.retry]\nattempts = {value}\n"));
        let message = rejected(&text, "routes[0].retry.attempts", "attempts");
        assert!(
            message.starts_with(&format!("{value} is {size}; use 0 to 3")),
            "{message}"
        );
    }
    for value in [0, 3] {
        let config = accepted(&with(&format!("[routes.retry]\nattempts = {value}\n")));
        assert_eq!(config.routes[0].retry.attempts, value);
    }
}

#[test]
fn retry_budget_percent_is_0_to_100() {
    for (value, size) in [("101", "too large"), ("-5", "too small")] {
        let text = with(&format!("[routes.retry]\nbudget_percent = {value}\n"));
        let message = rejected(&text, "routes[0].retry.budget_percent", "budget_percent");
        assert!(
            message.starts_with(&format!("{value} is {size}; use 0 to 100")),
            "{message}"
        );
    }
    let config = accepted(&with("[routes.retry]\nbudget_percent = 100\n"));
    assert_eq!(config.routes[0].retry.budget_percent, 100);
}

#[test]
fn retry_of_the_second_route_is_named_by_index() {
    let second = "[[routes]]\nname = \"api\"\npath_prefix = \"/api/\"\nweights = { blue = 1 }\n\
                  [routes.retry]\nattempts = 9\n";
    let text = file(&[LISTEN, UPSTREAMS, ROUTE, second]);
    rejected(&text, "routes[1].retry.attempts", "attempts");
}

#[test]
fn retry_unknown_key_suggests_the_nearest() {
    let text = with("[routes.retry]\nattempt = 1\n");
    let message = rejected(&text, "routes[0].retry.attempt", "attempt");
    assert_eq!(
        message,
        "unknown key `attempt`; did you mean `attempts`? valid keys: attempts, budget_percent"
    );
}

// ---- [limits] ----

#[test]
fn limits_header_timeout_is_a_positive_duration() {
    let text = with("[limits]\nheader_timeout = \"0s\"\n");
    let message = rejected(&text, "limits.header_timeout", "header_timeout");
    assert!(message.contains("greater than zero"), "{message}");
    let config = accepted(&with("[limits]\nheader_timeout = \"2s500ms\"\n"));
    assert_eq!(config.limits.header_timeout, Duration::from_millis(2500));
}

#[test]
fn limits_max_header_bytes_is_1_kib_to_1_mib() {
    for (value, size) in [("1023", "too small"), ("1048577", "too large"), ("-1", "too small")] {
        let text = with(&format!("[limits]\nmax_header_bytes = {value}\n"));
        let message = rejected(&text, "limits.max_header_bytes", "max_header_bytes");
        assert!(
            message.starts_with(&format!("{value} is {size}; use 1024 to 1048576")),
            "{message}"
        );
    }
    for value in [1024, 1_048_576] {
        let config = accepted(&with(&format!("[limits]\nmax_header_bytes = {value}\n")));
        assert_eq!(config.limits.max_header_bytes, value);
    }
}

#[test]
fn limits_max_body_bytes_is_at_least_one() {
    for value in ["0", "-1"] {
        let text = with(&format!("[limits]\nmax_body_bytes = {value}\n"));
        let message = rejected(&text, "limits.max_body_bytes", "max_body_bytes");
        assert!(
            message.starts_with(&format!("{value} is too small; use at least 1")),
            "{message}"
        );
        assert!(message.contains("leave `max_body_bytes` out for no limit"), "{message}");
    }
}

#[test]
fn limits_of_the_wrong_type_say_what_is_expected() {
    let text = with("[limits]\nmax_header_bytes = \"64KiB\"\n");
    let message = rejected(&text, "limits.max_header_bytes", "max_header_bytes");
    assert_eq!(
        message,
        "found string \"64KiB\"; expected an integer from 1024 to 1048576"
    );

    let text = file(&["limits = 5\n", LISTEN, UPSTREAMS, ROUTE]);
    let message = rejected(&text, "limits", "limits =");
    assert!(message.contains("`header_timeout`"), "{message}");
}

#[test]
fn unknown_limits_key_or_table_suggests_the_nearest() {
    let text = with("[limits]\nmax_body_size = 1\n");
    let message = rejected(&text, "limits.max_body_size", "max_body_size");
    assert!(
        message.starts_with("unknown key `max_body_size`; did you mean `max_body_bytes`?"),
        "{message}"
    );

    let text = with("[limit]\nheader_timeout = \"1s\"\n");
    let message = rejected(&text, "limit", "[limit]");
    assert!(
        message.starts_with("unknown key `limit`; did you mean `limits`?"),
        "{message}"
    );
}
