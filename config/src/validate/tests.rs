//! One test per validation rule, each checking the key path and the line the error points at.

use std::path::PathBuf;

use super::*;

mod edge;
mod resilience;
mod rollout;
mod sticky;
mod tls;
mod transport;

const LISTEN: &str = "[listen]\nhttp = [\"127.0.0.1:8080\"]\n";
const UPSTREAMS: &str = "[upstreams.blue]\nservers = [\"127.0.0.1:9101\"]\n\n\
                         [upstreams.canary]\nservers = [\"127.0.0.1:9102\", \"127.0.0.1:9103\"]\n";
const ROUTE: &str = "[[routes]]\nname = \"web\"\nweights = { blue = 90, canary = 10 }\n";

/// A file made of `parts`, one blank line between them.
fn file(parts: &[&str]) -> String {
    parts.join("\n")
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the test's text"));
    text[..at].matches('\n').count() + 1
}

/// Asserts that `text` is rejected at `key_path`, on the line holding `needle`; returns the message.
#[track_caller]
fn rejected(text: &str, key_path: &str, needle: &str) -> String {
    let err = Config::from_toml(text, None).expect_err("config should be rejected");
    let ConfigError::Invalid {
        location,
        key_path: got_path,
        message,
    } = &err
    else {
        panic!("expected an Invalid error, got {err:?}");
    };
    assert_eq!(got_path, key_path, "key path of: {err}");
    assert_eq!(location.line, line_of(text, needle), "line of: {err}");
    message.clone()
}

#[track_caller]
fn accepted(text: &str) -> Config {
    Config::from_toml(text, None).unwrap_or_else(|err| panic!("config should be accepted: {err}"))
}

#[test]
fn example_file_parses() {
    let config = accepted(include_str!("../../../examples/sluice.toml"));
    assert_eq!(config.listen.http, vec!["127.0.0.1:8080".parse().expect("address")]);
    let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["blue", "canary"]);
    assert_eq!(config.upstreams[1].servers.len(), 2);
    let route = &config.routes[0];
    assert_eq!(route.name, "web");
    assert_eq!(route.hosts, vec![HostPattern::Any]);
    let weights: Vec<(&str, u32)> = route.weights.iter().map(|w| (w.upstream.as_str(), w.weight)).collect();
    assert_eq!(weights, [("blue", 90), ("canary", 10)]);
    assert_eq!(config.runtime.workers, NonZeroUsize::new(2));
    // The example spells out the defaults of the optional sections it shows.
    assert_eq!(route.fallback.as_deref(), Some("blue"));
    assert_eq!(route.retry, crate::resilience::RetryPolicy::default());
    assert_eq!(
        config.upstreams[1].outlier,
        crate::resilience::OutlierDetection::default()
    );
    assert_eq!(config.limits, crate::resilience::Limits::default());
    assert_eq!(config.upstreams[1].health, None);
}

#[test]
fn example_file_commented_out_keys_are_valid_too() {
    let text = include_str!("../../../examples/sluice.toml");
    let commented = [
        "# [upstreams.canary.health]",
        "# path =",
        "# interval =",
        "# timeout =",
        "# healthy =",
        "# unhealthy =",
        "# max_body_bytes =",
    ];
    let mut uncommented = text.to_owned();
    for line in commented {
        assert!(uncommented.contains(line), "the example no longer has `{line}`");
        uncommented = uncommented.replace(line, &line[2..]);
    }
    let config = accepted(&uncommented);
    let health = config.upstreams[1].health.clone().expect("health table uncommented");
    assert_eq!(health.path, "/healthz");
    assert_eq!(
        (health.interval, health.timeout),
        (Duration::from_secs(1), Duration::from_millis(500))
    );
    assert_eq!(config.limits.max_body_bytes, Some(10 * 1024 * 1024));
}

#[test]
fn defaults_fill_in_optional_keys() {
    let config = accepted(&file(&[LISTEN, UPSTREAMS, ROUTE]));
    assert_eq!(config.source, None);
    assert_eq!(config.routes[0].hosts, vec![]);
    assert_eq!(config.routes[0].path_prefix, "/");
    assert_eq!(config.runtime, Runtime { workers: None });
    assert_eq!(config.timeouts, Timeouts::default());
}

#[test]
fn display_is_file_line_column_key_path_message() {
    let text = file(&[LISTEN, "[upstreams.blue]\nservrs = [\"127.0.0.1:9101\"]\n", ROUTE]);
    let err = Config::from_toml(&text, Some(Path::new("etc/sluice.toml"))).expect_err("typo");
    assert_eq!(
        err.to_string(),
        "etc/sluice.toml:5:1: upstreams.blue.servrs: unknown key `servrs`; did you mean `servers`? valid keys: servers, health, \
         outlier, protocol, tls"
    );
    assert_eq!(err.key_path(), Some("upstreams.blue.servrs"));
    let location = err.location().expect("a located error");
    assert_eq!(
        (location.file.as_deref(), location.line, location.column),
        (Some(Path::new("etc/sluice.toml")), 5, 1)
    );

    let err = Config::from_toml(&text, None).expect_err("typo");
    assert!(
        err.to_string().starts_with("<config>:5:1: upstreams.blue.servrs: "),
        "{err}"
    );
}

#[test]
fn syntax_error_points_at_the_bad_token() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { blue = 90, canary = }\n",
    ]);
    let message = rejected(&text, "routes[0].weights", "canary = }");
    assert!(message.starts_with("invalid TOML: "), "{message}");
    let location = Config::from_toml(&text, None)
        .expect_err("bad")
        .location()
        .cloned()
        .expect("location");
    assert_eq!(location.column, "weights = { blue = 90, canary = ".len() + 1);
}

#[test]
fn type_error_says_what_is_expected() {
    let text = file(&[LISTEN, UPSTREAMS, ROUTE, "[runtime]\nworkers = \"two\"\n"]);
    let message = rejected(&text, "runtime.workers", "workers =");
    assert_eq!(message, "found string \"two\"; expected an integer of at least 1");
}

#[test]
fn unknown_key_in_a_table_suggests_the_nearest() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\npath-prefix = \"/\"\nweights = { blue = 1 }\n",
    ]);
    let message = rejected(&text, "routes[0].path-prefix", "path-prefix");
    assert!(
        message.starts_with("unknown key `path-prefix`; did you mean `path_prefix`? valid keys: "),
        "{message}"
    );
    assert!(message.contains("hosts"), "{message}");
}

#[test]
fn unknown_top_level_table_suggests_the_nearest() {
    let text = file(&[LISTEN, UPSTREAMS, ROUTE, "[timeout]\nconnect = \"1s\"\n"]);
    let message = rejected(&text, "timeout", "[timeout]");
    assert!(
        message.starts_with("unknown key `timeout`; did you mean `timeouts`?"),
        "{message}"
    );

    let text = file(&[LISTEN, UPSTREAMS, "[[route]]\nname = \"web\"\n"]);
    let message = rejected(&text, "route", "[[route]]");
    assert!(
        message.starts_with("unknown key `route`; did you mean `routes`?"),
        "{message}"
    );
}

#[test]
fn unknown_key_far_from_any_gets_no_suggestion() {
    let text = file(&[LISTEN, UPSTREAMS, ROUTE, "[runtime]\nzzz = 1\n"]);
    let message = rejected(&text, "runtime.zzz", "zzz");
    assert_eq!(message, "unknown key `zzz`; valid keys: workers");
}

#[test]
fn upstream_name_must_be_lower_case_word() {
    let text = file(&[LISTEN, "[upstreams.Blue]\nservers = [\"127.0.0.1:9101\"]\n", ROUTE]);
    let message = rejected(&text, "upstreams.Blue", "[upstreams.Blue]");
    assert!(message.contains("lower-case"), "{message}");
}

#[test]
fn upstream_defined_twice_is_named() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[upstreams.blue]\nservers = [\"127.0.0.1:9104\"]\n",
        ROUTE,
    ]);
    let err = Config::from_toml(&text, None).expect_err("duplicate table");
    let location = err.location().expect("location");
    // The second `[upstreams.blue]`, not the first.
    assert_eq!(location.line, line_of(&text, "9104") - 1, "{err}");
    assert_eq!(err.key_path(), Some("upstreams.blue"));
    assert!(err.to_string().contains("duplicate key `blue`"), "{err}");
}

#[test]
fn at_least_one_upstream() {
    let text = file(&[LISTEN, ROUTE]);
    let message = rejected(&text, "upstreams", "[listen]");
    assert!(message.contains("[upstreams.NAME]"), "{message}");
}

#[test]
fn upstream_needs_servers() {
    let text = file(&[
        LISTEN,
        "[upstreams.blue]\n",
        "[upstreams.canary]\nservers = [\"127.0.0.1:9102\"]\n",
        ROUTE,
    ]);
    rejected(&text, "upstreams.blue.servers", "[upstreams.blue]");

    let text = file(&[
        LISTEN,
        "[upstreams.blue]\nservers = []\n",
        "[upstreams.canary]\nservers = [\"127.0.0.1:9102\"]\n",
        ROUTE,
    ]);
    let message = rejected(&text, "upstreams.blue.servers", "servers = []");
    assert!(message.contains("at least one server"), "{message}");
}

#[test]
fn server_must_be_host_and_port() {
    let text = file(&[
        LISTEN,
        "[upstreams.blue]\nservers = [\"127.0.0.1:9101\",\n  \"app.internal\"]\n",
        ROUTE,
    ]);
    let message = rejected(&text, "upstreams.blue.servers[1]", "\"app.internal\"");
    assert!(message.contains("has no port"), "{message}");
}

#[test]
fn server_port_is_1_to_65535() {
    for port in ["0", "65536", "http"] {
        let text = file(&[
            LISTEN,
            &format!("[upstreams.blue]\nservers = [\"127.0.0.1:{port}\"]\n"),
            ROUTE,
        ]);
        let message = rejected(&text, "upstreams.blue.servers[0]", "servers =");
        assert!(message.contains("1 to 65535"), "{message}");
    }
}

#[test]
fn server_ipv6_needs_brackets() {
    let text = file(&[LISTEN, "[upstreams.blue]\nservers = [\"::1:9101\"]\n", ROUTE]);
    let message = rejected(&text, "upstreams.blue.servers[0]", "servers =");
    assert!(message.contains("without brackets"), "{message}");

    let text = file(&[
        LISTEN,
        "[upstreams.blue]\nservers = [\"[::1]:9101\"]\n",
        "[upstreams.canary]\nservers = [\"Canary.Internal:80\"]\n",
        ROUTE,
    ]);
    let config = accepted(&text);
    assert_eq!(
        config.upstreams[0].servers[0],
        ServerAddr {
            host: "::1".into(),
            port: 9101
        }
    );
    assert_eq!(config.upstreams[1].servers[0].to_string(), "canary.internal:80");
}

#[test]
fn server_listed_twice_in_an_upstream() {
    let text = file(&[
        LISTEN,
        "[upstreams.blue]\nservers = [\"127.0.0.1:9101\", \"127.0.0.1:9102\",\n  \"127.0.0.1:9101\"]\n",
        ROUTE,
    ]);
    let message = rejected(&text, "upstreams.blue.servers[2]", "  \"127.0.0.1:9101\"]");
    assert!(message.contains("already listed as servers[0]"), "{message}");
}

#[test]
fn listen_is_required() {
    let text = file(&[UPSTREAMS, ROUTE]);
    rejected(&text, "listen", "[upstreams.blue]");

    let text = file(&["[listen]\n", UPSTREAMS, ROUTE]);
    rejected(&text, "listen.http", "[listen]");
}

#[test]
fn listen_needs_an_address() {
    let text = file(&["[listen]\nhttp = []\n", UPSTREAMS, ROUTE]);
    let message = rejected(&text, "listen.http", "http = []");
    assert!(message.contains("at least one address"), "{message}");
}

#[test]
fn listen_address_is_ip_and_port() {
    let text = file(&[
        "[listen]\nhttp = [\"127.0.0.1:8080\", \"localhost:8081\"]\n",
        UPSTREAMS,
        ROUTE,
    ]);
    let message = rejected(&text, "listen.http[1]", "http =");
    assert!(message.contains("IP:port"), "{message}");
}

#[test]
fn listen_port_zero_is_allowed() {
    let config = accepted(&file(&[
        "[listen]\nhttp = [\"127.0.0.1:0\", \"[::1]:0\"]\n",
        UPSTREAMS,
        ROUTE,
    ]));
    assert_eq!(config.listen.http.len(), 2);
    assert!(config.listen.http.iter().all(|a| a.port() == 0));
}

#[test]
fn listen_address_listed_twice() {
    let text = file(&[
        "[listen]\nhttp = [\"127.0.0.1:8080\",\n  \"127.0.0.1:8080\"]\n",
        UPSTREAMS,
        ROUTE,
    ]);
    rejected(&text, "listen.http[1]", "  \"127.0.0.1:8080\"]");
}

#[test]
fn at_least_one_route() {
    let text = file(&[LISTEN, UPSTREAMS]);
    let message = rejected(&text, "routes", "[listen]");
    assert!(message.contains("[[routes]]"), "{message}");

    // Top-level keys go before the first table header.
    let text = file(&["routes = []\n", LISTEN, UPSTREAMS]);
    rejected(&text, "routes", "routes = []");
}

#[test]
fn route_needs_a_name() {
    let text = file(&[LISTEN, UPSTREAMS, "[[routes]]\nweights = { blue = 1 }\n"]);
    rejected(&text, "routes[0].name", "[[routes]]");
}

#[test]
fn route_name_must_be_lower_case_word() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"my web\"\nweights = { blue = 1 }\n",
    ]);
    let message = rejected(&text, "routes[0].name", "my web");
    assert!(message.contains("' '"), "{message}");

    let text = file(&[LISTEN, UPSTREAMS, "[[routes]]\nname = \"\"\nweights = { blue = 1 }\n"]);
    rejected(&text, "routes[0].name", "name = \"\"");
}

#[test]
fn route_names_are_unique() {
    let second = "[[routes]]\nname = \"web\"\npath_prefix = \"/api\"\nweights = { blue = 1 }\n";
    let text = file(&[LISTEN, UPSTREAMS, ROUTE, second]);
    let message = rejected(&text, "routes[1].name", "name = \"web\"\npath_prefix");
    assert!(message.contains("already used by routes[0]"), "{message}");
}

#[test]
fn weights_are_required_and_non_empty() {
    let text = file(&[LISTEN, UPSTREAMS, "[[routes]]\nname = \"web\"\n"]);
    rejected(&text, "routes[0].weights", "[[routes]]");

    let text = file(&[LISTEN, UPSTREAMS, "[[routes]]\nname = \"web\"\nweights = {}\n"]);
    let message = rejected(&text, "routes[0].weights", "weights = {}");
    assert!(message.contains("at least one upstream"), "{message}");
}

#[test]
fn weight_names_an_existing_upstream() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { blue = 90, canery = 10 }\n",
    ]);
    let message = rejected(&text, "routes[0].weights.canery", "weights =");
    assert_eq!(
        message,
        "unknown upstream `canery`; did you mean `canary`? upstreams: blue, canary"
    );
}

#[test]
fn weight_is_non_negative() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { blue = -1, canary = 10 }\n",
    ]);
    let message = rejected(&text, "routes[0].weights.blue", "weights =");
    assert!(message.contains("negative"), "{message}");

    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { blue = 5000000000 }\n",
    ]);
    let message = rejected(&text, "routes[0].weights.blue", "weights =");
    assert!(message.contains("at most 4294967295"), "{message}");
}

#[test]
fn weight_is_an_integer() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { blue = 1.5 }\n",
    ]);
    let message = rejected(&text, "routes[0].weights.blue", "weights =");
    assert!(message.ends_with("expected a non-negative integer"), "{message}");
}

#[test]
fn some_weight_is_positive() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { blue = 0, canary = 0 }\n",
    ]);
    let message = rejected(&text, "routes[0].weights", "weights =");
    assert!(message.contains("weight > 0"), "{message}");
}

#[test]
fn weights_keep_file_order() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nweights = { canary = 1, blue = 0 }\n",
    ]);
    let config = accepted(&text);
    let order: Vec<&str> = config.routes[0].weights.iter().map(|w| w.upstream.as_str()).collect();
    assert_eq!(order, ["canary", "blue"]);
}

#[test]
fn path_prefix_starts_with_slash() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\npath_prefix = \"api\"\nweights = { blue = 1 }\n",
    ]);
    let message = rejected(&text, "routes[0].path_prefix", "path_prefix");
    assert!(message.contains("must start with `/`"), "{message}");
}

#[test]
fn path_prefix_has_no_query() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\npath_prefix = \"/a?b\"\nweights = { blue = 1 }\n",
    ]);
    rejected(&text, "routes[0].path_prefix", "path_prefix");
}

#[test]
fn hosts_are_lower_cased_patterns() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nhosts = [\"WWW.Example.com\", \"*.Example.org\"]\nweights = { blue = 1 }\n",
    ]);
    let config = accepted(&text);
    assert_eq!(
        config.routes[0].hosts,
        vec![
            HostPattern::Exact("www.example.com".into()),
            HostPattern::Suffix(".example.org".into())
        ]
    );
}

#[test]
fn hosts_reject_other_wildcards() {
    for bad in ["*example.com", "www.*.com", "example.*"] {
        let route =
            format!("[[routes]]\nname = \"web\"\nhosts = [\"a.com\",\n  \"{bad}\"]\nweights = {{ blue = 1 }}\n");
        let text = file(&[LISTEN, UPSTREAMS, &route]);
        let message = rejected(&text, "routes[0].hosts[1]", bad);
        assert!(message.contains("\"*.example.com\""), "{message}");
    }
}

#[test]
fn hosts_have_no_port() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nhosts = [\"example.com:8080\"]\nweights = { blue = 1 }\n",
    ]);
    let message = rejected(&text, "routes[0].hosts[0]", "hosts =");
    assert!(message.contains("port"), "{message}");
}

#[test]
fn hosts_list_is_not_empty() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nhosts = []\nweights = { blue = 1 }\n",
    ]);
    let message = rejected(&text, "routes[0].hosts", "hosts = []");
    assert!(message.contains("leave `hosts` out"), "{message}");
}

#[test]
fn hosts_listed_twice_in_a_route() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[[routes]]\nname = \"web\"\nhosts = [\"a.com\", \"A.com\"]\nweights = { blue = 1 }\n",
    ]);
    rejected(&text, "routes[0].hosts[1]", "hosts =");
}

#[test]
fn routes_with_same_host_and_prefix_conflict() {
    let first =
        "[[routes]]\nname = \"web\"\nhosts = [\"example.com\"]\npath_prefix = \"/api\"\nweights = { blue = 1 }\n";
    let second = "[[routes]]\nname = \"api\"\nhosts = [\"other.com\", \"example.com\"]\npath_prefix = \"/api\"\nweights = { canary = 1 }\n";
    let text = file(&[LISTEN, UPSTREAMS, first, second]);
    let message = rejected(&text, "routes[1].hosts[1]", "hosts = [\"other.com\"");
    assert!(message.contains("`web` (routes[0]) and `api`"), "{message}");
    assert!(
        message.contains("host `example.com` with path_prefix `/api`"),
        "{message}"
    );
}

#[test]
fn omitted_hosts_conflict_with_star() {
    let second = "[[routes]]\nname = \"other\"\nhosts = [\"*\"]\nweights = { canary = 1 }\n";
    let text = file(&[LISTEN, UPSTREAMS, ROUTE, second]);
    let message = rejected(&text, "routes[1].hosts[0]", "hosts = [\"*\"]");
    assert!(message.contains("`web` (routes[0]) and `other`"), "{message}");

    // Different prefixes do not conflict: the longest matching one wins.
    let second = "[[routes]]\nname = \"other\"\npath_prefix = \"/api/\"\nweights = { canary = 1 }\n";
    accepted(&file(&[LISTEN, UPSTREAMS, ROUTE, second]));
}

#[test]
fn durations_parse() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        ROUTE,
        "[timeouts]\nconnect = \"250ms\"\nidle = \"1m30s\"\ndrain = \"5\"\n",
    ]);
    let message = rejected(&text, "timeouts.drain", "drain");
    assert!(message.contains("\"1m30s\""), "{message}");

    let text = file(&[
        LISTEN,
        UPSTREAMS,
        ROUTE,
        "[timeouts]\nconnect = \"250ms\"\nidle = \"1m30s\"\n",
    ]);
    let timeouts = accepted(&text).timeouts;
    assert_eq!(timeouts.connect, Duration::from_millis(250));
    assert_eq!(timeouts.idle, Duration::from_secs(90));
    assert_eq!(timeouts.drain, Timeouts::default().drain);
}

#[test]
fn timeouts_are_positive() {
    let text = file(&[LISTEN, UPSTREAMS, ROUTE, "[timeouts]\nresponse_header = \"0s\"\n"]);
    let message = rejected(&text, "timeouts.response_header", "response_header");
    assert!(message.contains("greater than zero"), "{message}");
}

#[test]
fn workers_at_least_one() {
    for workers in ["0", "-2"] {
        let text = file(&[LISTEN, UPSTREAMS, ROUTE, &format!("[runtime]\nworkers = {workers}\n")]);
        let message = rejected(&text, "runtime.workers", "workers");
        assert!(message.contains("at least 1"), "{message}");
    }
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("sluice-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.toml");
    std::fs::write(&good, file(&[LISTEN, UPSTREAMS, ROUTE])).expect("write");
    assert_eq!(Config::load(&good).expect("valid").source, Some(good.clone()));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, file(&[LISTEN, UPSTREAMS, ROUTE, "[runtime]\nworkers = 0\n"])).expect("write");
    let err = Config::load(&bad).expect_err("invalid");
    assert!(err.to_string().starts_with(&format!("{}:", bad.display())), "{err}");

    let missing: PathBuf = dir.join("missing.toml");
    let err = Config::load(&missing).expect_err("missing");
    assert!(
        matches!(err, ConfigError::Io { ref path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(err.location().is_none() && err.key_path().is_none());
    std::fs::remove_dir_all(&dir).expect("clean up");
}
