//! `[routes.rollout]`, `[routes.rollout.analysis]` and `[[routes.rollout.webhooks]]`: one test per rule, each
//! checking the key path and the line.

use super::*;
use crate::rollout::{AnalysisSettings, Rollout, Strategy, Webhook, WebhookKind};

/// The stable and canary every test's rollout starts with.
const VERSIONS: &str = "stable = \"blue\"\ncanary = \"canary\"\n";

/// The base file with `[routes.rollout]` holding `keys` (after `stable` and `canary`), then `tables`.
fn with(keys: &str, tables: &str) -> String {
    file(&[
        LISTEN,
        UPSTREAMS,
        ROUTE,
        &format!("[routes.rollout]\n{VERSIONS}{keys}"),
        tables,
    ])
}

/// The base file with `[routes.rollout]` holding exactly `keys` (no `stable` or `canary` added).
fn with_exactly(keys: &str) -> String {
    file(&[LISTEN, UPSTREAMS, ROUTE, &format!("[routes.rollout]\n{keys}")])
}

/// The rollout parsed from `[routes.rollout]` holding `keys`, then `tables`.
fn rollout(keys: &str, tables: &str) -> Rollout {
    accepted(&with(keys, tables)).routes[0]
        .rollout
        .clone()
        .expect("the route has a rollout")
}

/// The analysis settings parsed from `[routes.rollout.analysis]` holding `keys`.
fn analysis(keys: &str) -> AnalysisSettings {
    rollout("", &format!("[routes.rollout.analysis]\n{keys}")).analysis
}

/// A `[[routes.rollout.webhooks]]` table holding `keys`.
fn hook(keys: &str) -> String {
    with("", &format!("[[routes.rollout.webhooks]]\n{keys}"))
}

/// The rollout with every default, for `stable = "blue"` and `canary = "canary"`.
fn defaults() -> Rollout {
    Rollout {
        strategy: Strategy::Canary,
        stable: "blue".into(),
        canary: "canary".into(),
        steps: vec![5, 10, 25, 50, 100],
        interval: Duration::from_secs(30),
        failure_threshold: 2,
        min_requests: 200,
        progress_deadline: Duration::from_secs(600),
        analysis: AnalysisSettings::default(),
        webhooks: vec![],
        revision: None,
    }
}

#[test]
fn every_key_parses_into_the_model() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { blue = 100, canary = 0 }\n\
         [routes.rollout]\nstrategy = \"canary\"\nstable = \"blue\"\ncanary = \"canary\"\nsteps = [1, 20, 100]\n\
         interval = \"5s\"\nfailure_threshold = 3\nmin_requests = 50\nprogress_deadline = \"1m\"\n\
         revision = \"build-1234\"\n\
         [routes.rollout.analysis]\nmax_error_rate = 0.1\nmax_error_rate_increase = 0.02\n\
         max_latency_p99 = \"250ms\"\nmax_latency_ratio = 1.5\nconfidence = 0.95\n\
         [[routes.rollout.webhooks]]\nkind = \"pre-rollout\"\nurl = \"http://127.0.0.1:9000/hooks/pre\"\n\
         timeout = \"2s\"\n\
         [[routes.rollout.webhooks]]\nkind = \"rollback\"\nurl = \"http://hooks.internal/rollback?route=web\"\n",
    ]);
    let route = &accepted(&text).routes[0];
    assert_eq!(
        route.rollout,
        Some(Rollout {
            strategy: Strategy::Canary,
            stable: "blue".into(),
            canary: "canary".into(),
            steps: vec![1, 20, 100],
            interval: Duration::from_secs(5),
            failure_threshold: 3,
            min_requests: 50,
            progress_deadline: Duration::from_secs(60),
            analysis: AnalysisSettings {
                max_error_rate: 0.1,
                max_error_rate_increase: 0.02,
                max_latency_p99: Duration::from_millis(250),
                max_latency_ratio: 1.5,
                confidence: 0.95,
            },
            webhooks: vec![
                Webhook {
                    kind: WebhookKind::PreRollout,
                    url: "http://127.0.0.1:9000/hooks/pre".into(),
                    timeout: Duration::from_secs(2),
                },
                Webhook {
                    kind: WebhookKind::Rollback,
                    url: "http://hooks.internal/rollback?route=web".into(),
                    timeout: Duration::from_secs(5),
                },
            ],
            revision: Some("build-1234".into()),
        })
    );
    // The rollout does not change the route's own weights.
    let weights: Vec<(&str, u32)> = route.weights.iter().map(|w| (w.upstream.as_str(), w.weight)).collect();
    assert_eq!(weights, [("blue", 100), ("canary", 0)]);
}

#[test]
fn defaults_apply_to_keys_left_out() {
    assert_eq!(rollout("", ""), defaults());
    assert_eq!(rollout("", "[routes.rollout.analysis]\n"), defaults());
    assert_eq!(accepted(&file(&[LISTEN, UPSTREAMS, ROUTE])).routes[0].rollout, None);
    // The documented analysis defaults.
    assert_eq!(
        AnalysisSettings::default(),
        AnalysisSettings {
            max_error_rate: 0.05,
            max_error_rate_increase: 0.01,
            max_latency_p99: Duration::from_millis(500),
            max_latency_ratio: 1.2,
            confidence: 0.99,
        }
    );
    // One analysis key leaves the others at their defaults.
    assert_eq!(
        analysis("confidence = 0.9\n"),
        AnalysisSettings {
            confidence: 0.9,
            ..AnalysisSettings::default()
        }
    );
}

#[test]
fn example_file_parses() {
    let config = accepted(include_str!("../../../../examples/rollout.toml"));
    let route = &config.routes[0];
    let rollout = route.rollout.clone().expect("the example has a rollout");
    assert_eq!(
        rollout,
        Rollout {
            revision: Some("build-1234".into()),
            webhooks: vec![
                Webhook {
                    kind: WebhookKind::PreRollout,
                    url: "http://127.0.0.1:9000/hooks/pre".into(),
                    timeout: Duration::from_secs(5),
                },
                Webhook {
                    kind: WebhookKind::ConfirmPromotion,
                    url: "http://127.0.0.1:9000/hooks/promote".into(),
                    timeout: Duration::from_secs(10),
                },
                Webhook {
                    kind: WebhookKind::Rollback,
                    url: "http://127.0.0.1:9000/hooks/rollback".into(),
                    timeout: Duration::from_secs(5),
                },
            ],
            // The example spells out every other default.
            ..defaults()
        }
    );
    let weights: Vec<(&str, u32)> = route.weights.iter().map(|w| (w.upstream.as_str(), w.weight)).collect();
    assert_eq!(weights, [("blue", 100), ("canary", 0)]);
}

#[test]
fn example_file_blue_green_alternative_is_valid_too() {
    let text = include_str!("../../../../examples/rollout.toml");
    let (canary, blue_green) = ("\nstrategy = \"canary\"", "\n# strategy = \"blue_green\"");
    assert!(text.contains(canary), "the example no longer has `{canary}`");
    assert!(text.contains(blue_green), "the example no longer has `{blue_green}`");
    let swapped = text
        .replace(canary, "\n# strategy = \"canary\"")
        .replace(blue_green, "\nstrategy = \"blue_green\"");
    let config = accepted(&swapped);
    let rollout = config.routes[0].rollout.clone().expect("rollout");
    assert_eq!(rollout.strategy, Strategy::BlueGreen);
}

#[test]
fn strategy_is_canary_or_blue_green() {
    assert_eq!(rollout("strategy = \"canary\"\n", "").strategy, Strategy::Canary);
    assert_eq!(rollout("strategy = \"blue_green\"\n", "").strategy, Strategy::BlueGreen);
    let text = with("strategy = \"blue-green\"\n", "");
    let message = rejected(&text, "routes[0].rollout.strategy", "strategy =");
    assert!(message.contains("did you mean `blue_green`?"), "{message}");
    let text = with("strategy = \"linear\"\n", "");
    let message = rejected(&text, "routes[0].rollout.strategy", "strategy =");
    assert!(!message.contains("did you mean"), "{message}");
    assert!(
        message.contains("\"canary\"") && message.contains("\"blue_green\""),
        "{message}"
    );
}

#[test]
fn stable_is_required() {
    let text = with_exactly("canary = \"canary\"\n");
    let message = rejected(&text, "routes[0].rollout.stable", "[routes.rollout]");
    assert!(message.contains("stable = \"blue\""), "{message}");
    assert!(message.contains("(blue, canary)"), "{message}");
}

#[test]
fn stable_is_one_of_the_route_weights() {
    let text = with_exactly("stable = \"bleu\"\ncanary = \"canary\"\n");
    let message = rejected(&text, "routes[0].rollout.stable", "stable =");
    assert!(message.contains("did you mean `blue`?"), "{message}");
    assert!(message.contains("blue, canary"), "{message}");
}

#[test]
fn stable_must_be_weighted_even_if_the_upstream_exists() {
    // `green` is an upstream, but the route does not weigh it.
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[upstreams.green]\nservers = [\"127.0.0.1:9104\"]\n",
        ROUTE,
        "[routes.rollout]\nstable = \"green\"\ncanary = \"canary\"\n",
    ]);
    let message = rejected(&text, "routes[0].rollout.stable", "stable =");
    assert!(message.contains("`green` is not in the route's weights"), "{message}");
    assert!(message.contains("weight 0"), "{message}");
}

#[test]
fn canary_is_required() {
    let text = with_exactly("stable = \"blue\"\n");
    let message = rejected(&text, "routes[0].rollout.canary", "[routes.rollout]");
    assert!(message.contains("canary = \"canary\""), "{message}");
}

#[test]
fn canary_is_one_of_the_route_weights() {
    let text = with_exactly("stable = \"blue\"\ncanary = \"canery\"\n");
    let message = rejected(&text, "routes[0].rollout.canary", "canary = \"canery\"");
    assert!(message.contains("did you mean `canary`?"), "{message}");
}

#[test]
fn canary_differs_from_stable() {
    let text = with_exactly("stable = \"blue\"\ncanary = \"blue\"\n");
    let message = rejected(&text, "routes[0].rollout.canary", "canary = \"blue\"");
    assert!(message.contains("also the stable version"), "{message}");
    assert!(message.contains("weights: canary"), "{message}");
}

#[test]
fn steps_are_not_empty() {
    for strategy in ["canary", "blue_green"] {
        let text = with(&format!("strategy = \"{strategy}\"\nsteps = []\n"), "");
        let message = rejected(&text, "routes[0].rollout.steps", "steps =");
        assert!(message.contains("no steps"), "{message}");
    }
}

#[test]
fn canary_steps_are_percentages_from_1_to_100() {
    for (steps, bad, size) in [("[0, 50, 100]", 0, "too small"), ("[-5, 100]", 0, "too small")] {
        let text = with(&format!("steps = {steps}\n"), "");
        let message = rejected(&text, &format!("routes[0].rollout.steps[{bad}]"), "steps =");
        assert!(message.contains(size) && message.contains("1 to 100"), "{message}");
    }
    let text = with("steps = [5, 101]\n", "");
    let message = rejected(&text, "routes[0].rollout.steps[1]", "steps =");
    assert!(message.contains("101 is too large"), "{message}");
    assert_eq!(rollout("steps = [100]\n", "").steps, [100]);
}

#[test]
fn canary_steps_increase_strictly() {
    let text = with("steps = [5, 25, 25, 100]\n", "");
    let message = rejected(&text, "routes[0].rollout.steps[2]", "steps =");
    assert!(
        message.contains("step 25 is not above the step before it (25)"),
        "{message}"
    );
    let text = with("steps = [50, 10, 100]\n", "");
    rejected(&text, "routes[0].rollout.steps[1]", "steps =");
}

#[test]
fn canary_steps_end_at_100() {
    let text = with("steps = [5, 10, 50]\n", "");
    let message = rejected(&text, "routes[0].rollout.steps[2]", "steps =");
    assert!(
        message.contains("the last step is 50") && message.contains("100"),
        "{message}"
    );
}

#[test]
fn blue_green_steps_only_count() {
    let parsed = rollout("strategy = \"blue_green\"\nsteps = [100, 100, 0]\n", "");
    assert_eq!(
        (parsed.strategy, parsed.steps),
        (Strategy::BlueGreen, vec![100, 100, 0])
    );
    assert_eq!(rollout("strategy = \"blue_green\"\n", "").steps, [5, 10, 25, 50, 100]);
    let text = with("strategy = \"blue_green\"\nsteps = [1, -1]\n", "");
    let message = rejected(&text, "routes[0].rollout.steps[1]", "steps =");
    assert!(
        message.contains("-1 is too small") && message.contains("number of steps"),
        "{message}"
    );
}

#[test]
fn steps_are_integers() {
    let text = with("steps = [5, \"10\", 100]\n", "");
    let message = rejected(&text, "routes[0].rollout.steps[1]", "steps =");
    assert!(
        message.contains("expected an integer percentage from 1 to 100"),
        "{message}"
    );
    let text = with("steps = 5\n", "");
    let message = rejected(&text, "routes[0].rollout.steps", "steps =");
    assert!(message.contains("a list of percentages"), "{message}");
}

#[test]
fn interval_is_a_positive_duration() {
    assert_eq!(rollout("interval = \"1m30s\"\n", "").interval, Duration::from_secs(90));
    let text = with("interval = \"0s\"\n", "");
    let message = rejected(&text, "routes[0].rollout.interval", "interval =");
    assert!(message.contains("greater than zero"), "{message}");
    let text = with("interval = \"30\"\n", "");
    rejected(&text, "routes[0].rollout.interval", "interval =");
}

#[test]
fn failure_threshold_is_at_least_1() {
    assert_eq!(rollout("failure_threshold = 1\n", "").failure_threshold, 1);
    let text = with("failure_threshold = 0\n", "");
    let message = rejected(&text, "routes[0].rollout.failure_threshold", "failure_threshold =");
    assert!(message.contains("0 is too small; use at least 1"), "{message}");
}

#[test]
fn min_requests_is_at_least_1() {
    assert_eq!(rollout("min_requests = 1\n", "").min_requests, 1);
    let text = with("min_requests = -200\n", "");
    let message = rejected(&text, "routes[0].rollout.min_requests", "min_requests =");
    assert!(message.contains("-200 is too small; use at least 1"), "{message}");
}

#[test]
fn progress_deadline_is_positive_and_at_least_the_interval() {
    let parsed = rollout("interval = \"1m\"\nprogress_deadline = \"1m\"\n", "");
    assert_eq!(parsed.progress_deadline, parsed.interval);
    let text = with("progress_deadline = \"0s\"\n", "");
    rejected(&text, "routes[0].rollout.progress_deadline", "progress_deadline =");
    let text = with("interval = \"2m\"\nprogress_deadline = \"1m\"\n", "");
    let message = rejected(&text, "routes[0].rollout.progress_deadline", "progress_deadline =");
    assert!(message.contains("shorter than the interval"), "{message}");
}

#[test]
fn interval_longer_than_the_default_deadline_blames_the_interval() {
    let text = with("interval = \"15m\"\n", "");
    let message = rejected(&text, "routes[0].rollout.interval", "interval =");
    assert!(message.contains("default progress_deadline"), "{message}");
}

#[test]
fn revision_is_a_non_empty_string() {
    assert_eq!(
        rollout("revision = \"build-7\"\n", "").revision.as_deref(),
        Some("build-7")
    );
    let text = with("revision = \" \"\n", "");
    let message = rejected(&text, "routes[0].rollout.revision", "revision =");
    assert!(message.contains("leave `revision` out"), "{message}");
    let text = with("revision = 1234\n", "");
    let message = rejected(&text, "routes[0].rollout.revision", "revision =");
    assert!(message.contains("found integer `1234`; expected a string"), "{message}");
}

#[test]
fn unknown_rollout_keys_suggest_the_nearest() {
    let text = with("step = [5, 100]\n", "");
    let message = rejected(&text, "routes[0].rollout.step", "step =");
    assert!(message.contains("did you mean `steps`?"), "{message}");
    let text = with("", "[routes.rollout.analysis]\nmax_error = 0.1\n");
    let message = rejected(&text, "routes[0].rollout.analysis.max_error", "max_error =");
    assert!(message.contains("did you mean `max_error_rate`?"), "{message}");
    let text = hook("kind = \"pre-step\"\nurl = \"http://127.0.0.1:9000/\"\ntimout = \"1s\"\n");
    let message = rejected(&text, "routes[0].rollout.webhooks[0].timout", "timout =");
    assert!(message.contains("did you mean `timeout`?"), "{message}");
}

#[test]
fn max_error_rate_is_between_0_and_1_exclusive() {
    assert_eq!(analysis("max_error_rate = 0.5\n").max_error_rate, 0.5);
    for (value, problem) in [
        ("0", "too small"),
        ("0.0", "too small"),
        ("1", "too large"),
        ("1.5", "too large"),
    ] {
        let text = with("", &format!("[routes.rollout.analysis]\nmax_error_rate = {value}\n"));
        let message = rejected(&text, "routes[0].rollout.analysis.max_error_rate", "max_error_rate =");
        assert!(message.contains(problem), "{value}: {message}");
        assert!(message.contains("greater than 0 and less than 1"), "{message}");
    }
    let text = with("", "[routes.rollout.analysis]\nmax_error_rate = nan\n");
    let message = rejected(&text, "routes[0].rollout.analysis.max_error_rate", "max_error_rate =");
    assert!(message.contains("NaN is not a number"), "{message}");
}

#[test]
fn max_error_rate_is_a_number() {
    let text = with("", "[routes.rollout.analysis]\nmax_error_rate = \"5%\"\n");
    let message = rejected(&text, "routes[0].rollout.analysis.max_error_rate", "max_error_rate =");
    assert!(message.contains("found string"), "{message}");
    assert!(
        message.contains("expected a number greater than 0 and less than 1"),
        "{message}"
    );
}

#[test]
fn max_error_rate_increase_is_from_0_below_1() {
    // A TOML integer is accepted where it is in range.
    assert_eq!(analysis("max_error_rate_increase = 0\n").max_error_rate_increase, 0.0);
    for (value, problem) in [("-0.01", "too small"), ("1", "too large")] {
        let text = with(
            "",
            &format!("[routes.rollout.analysis]\nmax_error_rate_increase = {value}\n"),
        );
        let message = rejected(
            &text,
            "routes[0].rollout.analysis.max_error_rate_increase",
            "max_error_rate_increase =",
        );
        assert!(message.contains(problem), "{value}: {message}");
    }
}

#[test]
fn max_latency_p99_is_a_positive_duration() {
    assert_eq!(
        analysis("max_latency_p99 = \"1s\"\n").max_latency_p99,
        Duration::from_secs(1)
    );
    let text = with("", "[routes.rollout.analysis]\nmax_latency_p99 = \"0ms\"\n");
    let message = rejected(&text, "routes[0].rollout.analysis.max_latency_p99", "max_latency_p99 =");
    assert!(message.contains("greater than zero"), "{message}");
}

#[test]
fn max_latency_ratio_is_at_least_1() {
    assert_eq!(analysis("max_latency_ratio = 1\n").max_latency_ratio, 1.0);
    assert_eq!(analysis("max_latency_ratio = 3\n").max_latency_ratio, 3.0);
    for (value, problem) in [("0.9", "too small"), ("inf", "too large")] {
        let text = with("", &format!("[routes.rollout.analysis]\nmax_latency_ratio = {value}\n"));
        let message = rejected(
            &text,
            "routes[0].rollout.analysis.max_latency_ratio",
            "max_latency_ratio =",
        );
        assert!(
            message.contains(problem) && message.contains("at least 1.0"),
            "{value}: {message}"
        );
    }
}

#[test]
fn confidence_is_from_half_below_1() {
    assert_eq!(analysis("confidence = 0.5\n").confidence, 0.5);
    for (value, problem) in [("0.49", "too small"), ("1", "too large"), ("1.0", "too large")] {
        let text = with("", &format!("[routes.rollout.analysis]\nconfidence = {value}\n"));
        let message = rejected(&text, "routes[0].rollout.analysis.confidence", "confidence =");
        assert!(message.contains(problem), "{value}: {message}");
    }
}

#[test]
fn webhooks_keep_file_order_and_default_their_timeout() {
    let parsed = rollout(
        "",
        "[[routes.rollout.webhooks]]\nkind = \"pre-step\"\nurl = \"http://127.0.0.1:9000/step\"\n\
         [[routes.rollout.webhooks]]\nkind = \"confirm-promotion\"\nurl = \"http://127.0.0.1:9000\"\n\
         [[routes.rollout.webhooks]]\nkind = \"post-rollout\"\nurl = \"http://[::1]:9000/done\"\n\
         [[routes.rollout.webhooks]]\nkind = \"pre-step\"\nurl = \"http://hooks:8080/again\"\n",
    );
    let kinds: Vec<WebhookKind> = parsed.webhooks.iter().map(|w| w.kind).collect();
    assert_eq!(
        kinds,
        [
            WebhookKind::PreStep,
            WebhookKind::ConfirmPromotion,
            WebhookKind::PostRollout,
            WebhookKind::PreStep
        ]
    );
    assert!(parsed.webhooks.iter().all(|w| w.timeout == Duration::from_secs(5)));
    assert_eq!(rollout("webhooks = []\n", "").webhooks, []);
}

#[test]
fn webhook_kind_is_required() {
    let text = hook("url = \"http://127.0.0.1:9000/\"\n");
    let message = rejected(
        &text,
        "routes[0].rollout.webhooks[0].kind",
        "[[routes.rollout.webhooks]]",
    );
    assert!(
        message.contains("pre-rollout, pre-step, confirm-promotion, post-rollout, rollback"),
        "{message}"
    );
}

#[test]
fn webhook_kind_is_known() {
    let text = hook("kind = \"pre_rollout\"\nurl = \"http://127.0.0.1:9000/\"\n");
    let message = rejected(&text, "routes[0].rollout.webhooks[0].kind", "kind =");
    assert!(message.contains("did you mean `pre-rollout`?"), "{message}");
    let text = hook("kind = \"deploy\"\nurl = \"http://127.0.0.1:9000/\"\n");
    let message = rejected(&text, "routes[0].rollout.webhooks[0].kind", "kind =");
    assert!(!message.contains("did you mean"), "{message}");
}

#[test]
fn webhook_url_is_required() {
    let text = hook("kind = \"rollback\"\n");
    let message = rejected(
        &text,
        "routes[0].rollout.webhooks[0].url",
        "[[routes.rollout.webhooks]]",
    );
    assert!(message.contains("http://127.0.0.1:9000/hooks/pre"), "{message}");
}

#[test]
fn webhook_url_is_plain_http() {
    for (url, says) in [
        ("https://hooks.example.com/pre", "https is not supported"),
        ("ftp://127.0.0.1/pre", "scheme `ftp`"),
        ("127.0.0.1:9000/pre", "no `http://`"),
    ] {
        let text = hook(&format!("kind = \"pre-rollout\"\nurl = \"{url}\"\n"));
        let message = rejected(&text, "routes[0].rollout.webhooks[0].url", "url =");
        assert!(message.contains(says), "{url}: {message}");
    }
}

#[test]
fn webhook_url_has_a_host_and_a_valid_port() {
    for (url, says) in [
        ("http:///pre", "no host"),
        ("http://127.0.0.1:0/pre", "port from 1 to 65535"),
        ("http://127.0.0.1:99999/pre", "port from 1 to 65535"),
        ("http://::1/pre", "IPv6 address in brackets"),
        ("http://user@127.0.0.1/pre", "credentials"),
        ("http://bad host/pre", "not a host"),
    ] {
        let text = hook(&format!("kind = \"pre-rollout\"\nurl = \"{url}\"\n"));
        let message = rejected(&text, "routes[0].rollout.webhooks[0].url", "url =");
        assert!(message.contains(says), "{url}: {message}");
    }
}

#[test]
fn webhook_url_path_is_sendable() {
    for (url, says) in [
        ("http://127.0.0.1:9000/a b", "percent-encode"),
        ("http://127.0.0.1:9000/pre#frag", "fragment"),
        ("http://127.0.0.1:9000?x=1", "must start with `/`"),
    ] {
        let text = hook(&format!("kind = \"pre-rollout\"\nurl = \"{url}\"\n"));
        let message = rejected(&text, "routes[0].rollout.webhooks[0].url", "url =");
        assert!(message.contains(says), "{url}: {message}");
    }
}

#[test]
fn webhook_timeout_is_a_positive_duration() {
    let text = hook("kind = \"pre-rollout\"\nurl = \"http://127.0.0.1:9000/\"\ntimeout = \"0s\"\n");
    let message = rejected(&text, "routes[0].rollout.webhooks[0].timeout", "timeout =");
    assert!(message.contains("greater than zero"), "{message}");
}

#[test]
fn second_webhook_errors_name_its_index() {
    let text = with(
        "",
        "[[routes.rollout.webhooks]]\nkind = \"pre-rollout\"\nurl = \"http://127.0.0.1:9000/a\"\n\
         [[routes.rollout.webhooks]]\nkind = \"rollback\"\nurl = \"https://127.0.0.1:9000/b\"\n",
    );
    rejected(&text, "routes[0].rollout.webhooks[1].url", "url = \"https");
}

#[test]
fn rollout_of_a_later_route_names_its_index() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        ROUTE,
        "[[routes]]\nname = \"api\"\npath_prefix = \"/api/\"\nweights = { blue = 1 }\n\
         [routes.rollout]\nstable = \"blue\"\ncanary = \"canary\"\n",
    ]);
    let message = rejected(&text, "routes[1].rollout.canary", "canary = \"canary\"");
    assert!(message.contains("the weights name: blue"), "{message}");
}
