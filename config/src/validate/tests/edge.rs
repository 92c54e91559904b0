//! `trusted_proxies`, `listen.proxy_protocol`, `[access_log]`, `[request_id]`, and a route's `access_log`, path
//! rewrite and `[routes.headers]`: one test per rule, each checking the key path and the line.

use super::*;
use crate::edge::{AccessLog, Cidr, LogFormat, RequestId, Template, TemplatePart};

/// The base file with `top` before everything (top-level keys) and `extra` appended to the route `web`.
fn with(top: &str, extra: &str) -> String {
    file(&[top, LISTEN, UPSTREAMS, ROUTE, extra])
}

/// The base file with `[routes.headers]` holding `rules`.
fn headers(rules: &str) -> String {
    with("", &format!("[routes.headers]\n{rules}\n"))
}

fn cidr(addr: &str, prefix: u8) -> Cidr {
    Cidr {
        addr: addr.parse().expect("address"),
        prefix,
    }
}

fn literal(text: &str) -> Template {
    Template {
        parts: vec![TemplatePart::Literal(text.into())],
    }
}

#[test]
fn edge_defaults_are_off_and_empty() {
    let config = accepted(&with("", ""));
    assert_eq!(config.trusted_proxies, vec![]);
    assert!(!config.listen.proxy_protocol);
    assert_eq!(config.access_log, None);
    assert_eq!(config.request_id, RequestId::default());
    assert_eq!(config.request_id.header, "x-request-id");
    let route = &config.routes[0];
    assert_eq!(route.access_log_sample, 1.0);
    assert!(!route.strip_prefix);
    assert_eq!(route.rewrite_prefix, None);
    assert!(route.headers.is_empty());
}

#[test]
fn trusted_proxies_take_blocks_and_single_addresses() {
    let text = with(
        "trusted_proxies = [\"10.0.0.0/8\", \"192.168.1.7\", \"2001:db8::/32\", \"::1\", \"::ffff:172.16.0.0/108\", \
         \"0.0.0.0/0\"]\n",
        "",
    );
    let config = accepted(&text);
    assert_eq!(
        config.trusted_proxies,
        vec![
            cidr("10.0.0.0", 8),
            cidr("192.168.1.7", 32),
            cidr("2001:db8::", 32),
            cidr("::1", 128),
            cidr("172.16.0.0", 12),
            cidr("0.0.0.0", 0),
        ]
    );
}

#[test]
fn trusted_proxies_entry_is_an_address() {
    for bad in ["10.0.0/8", "example.com", "", "10.0.0.0/"] {
        let text = with(&format!("trusted_proxies = [\"10.0.0.0/8\", \"{bad}\"]\n"), "");
        let message = rejected(&text, "trusted_proxies[1]", "trusted_proxies");
        assert!(
            message.contains("not an IPv4 or IPv6 address") || message.contains("prefix length"),
            "{bad}: {message}"
        );
    }
}

#[test]
fn trusted_proxies_prefix_is_at_most_32_or_128() {
    for (bad, max) in [
        ("10.0.0.0/33", "0 to 32"),
        ("::/129", "0 to 128"),
        ("10.0.0.0/-1", "0 to 32"),
    ] {
        let text = with(&format!("trusted_proxies = [\"{bad}\"]\n"), "");
        let message = rejected(&text, "trusted_proxies[0]", "trusted_proxies");
        assert!(message.contains(max), "{bad}: {message}");
    }
}

#[test]
fn trusted_proxies_refuse_host_bits_after_the_prefix() {
    let text = with("trusted_proxies = [\"10.1.2.3/8\"]\n", "");
    let message = rejected(&text, "trusted_proxies[0]", "trusted_proxies");
    assert!(
        message.contains("`10.0.0.0/8`") && message.contains("`10.1.2.3/32`"),
        "{message}"
    );
    let text = with("trusted_proxies = [\"2001:db8::1/32\"]\n", "");
    let message = rejected(&text, "trusted_proxies[0]", "trusted_proxies");
    assert!(message.contains("`2001:db8::/32`"), "{message}");
}

#[test]
fn trusted_proxies_list_each_block_once() {
    let text = with("trusted_proxies = [\"10.0.0.0/8\",\n  \"10.0.0.0/8\"]\n", "");
    let message = rejected(&text, "trusted_proxies[1]", "  \"10.0.0.0/8\"]");
    assert!(message.contains("trusted_proxies[0]"), "{message}");
}

#[test]
fn listen_proxy_protocol_is_a_bool() {
    let text = file(&[
        "[listen]\nhttp = [\"127.0.0.1:8080\"]\nproxy_protocol = true\n",
        UPSTREAMS,
        ROUTE,
    ]);
    assert!(accepted(&text).listen.proxy_protocol);
    let text = file(&[
        "[listen]\nhttp = [\"127.0.0.1:8080\"]\nproxy_protocol = \"v2\"\n",
        UPSTREAMS,
        ROUTE,
    ]);
    let message = rejected(&text, "listen.proxy_protocol", "proxy_protocol");
    assert!(message.contains("`true` or `false`"), "{message}");
}

#[test]
fn access_log_table_turns_it_on_with_defaults() {
    let config = accepted(&with("", "[access_log]\n"));
    assert_eq!(
        config.access_log,
        Some(AccessLog {
            format: LogFormat::Json,
            path: None,
            buffer: 8192,
        })
    );
    let text = with(
        "",
        "[access_log]\nformat = \"combined\"\npath = \"-\"\nbuffer = 1000000\n",
    );
    let log = accepted(&text).access_log.expect("access log");
    assert_eq!(
        (log.format, log.path, log.buffer),
        (LogFormat::Combined, None, 1_000_000)
    );
}

#[test]
fn access_log_format_is_json_or_combined() {
    let text = with("", "[access_log]\nformat = \"common\"\n");
    let message = rejected(&text, "access_log.format", "format =");
    assert!(
        message.contains("\"json\"") && message.contains("\"combined\""),
        "{message}"
    );
}

#[test]
fn access_log_path_is_relative_to_the_config_file() {
    let text = with("", "[access_log]\npath = \"logs/access.log\"\n");
    let config = Config::from_toml(&text, Some(Path::new("etc/sluice/sluice.toml"))).expect("valid");
    let log = config.access_log.expect("access log");
    assert_eq!(log.path, Some(PathBuf::from("etc/sluice/logs/access.log")));
    let text = with("", "[access_log]\npath = \"/var/log/sluice/access.log\"\n");
    let log = accepted(&text).access_log.expect("access log");
    assert_eq!(log.path, Some(PathBuf::from("/var/log/sluice/access.log")));
}

#[test]
fn access_log_path_is_not_empty() {
    let text = with("", "[access_log]\npath = \" \"\n");
    let message = rejected(&text, "access_log.path", "path =");
    assert!(message.contains("\"-\" for stdout"), "{message}");
}

#[test]
fn access_log_buffer_is_1_to_a_million() {
    for bad in ["0", "-5", "1000001"] {
        let text = with("", &format!("[access_log]\nbuffer = {bad}\n"));
        let message = rejected(&text, "access_log.buffer", "buffer =");
        assert!(message.contains("use 1 to 1000000"), "{bad}: {message}");
    }
}

#[test]
fn request_id_header_is_a_lower_cased_header_name() {
    let config = accepted(&with("", "[request_id]\nheader = \"X-Correlation-Id\"\n"));
    assert_eq!(config.request_id.header, "x-correlation-id");
    assert_eq!(accepted(&with("", "[request_id]\n")).request_id, RequestId::default());
    for (bad, says) in [
        ("x request", "not a header name"),
        ("", "empty header name"),
        ("Connection", "hop-by-hop"),
        ("host", "`host`"),
    ] {
        let text = with("", &format!("[request_id]\nheader = \"{bad}\"\n"));
        let message = rejected(&text, "request_id.header", "header =");
        assert!(message.contains(says), "{bad}: {message}");
    }
}

#[test]
fn route_access_log_is_a_share_from_0_to_1() {
    for (value, want) in [("0.25", 0.25), ("0", 0.0), ("1", 1.0), ("0.0", 0.0)] {
        let config = accepted(&with("", &format!("access_log = {value}\n")));
        assert_eq!(config.routes[0].access_log_sample, want, "{value}");
    }
    for bad in ["1.5", "-0.1", "nan"] {
        let text = with("", &format!("access_log = {bad}\n"));
        let message = rejected(&text, "routes[0].access_log", "access_log =");
        assert!(message.contains("from 0.0"), "{bad}: {message}");
    }
    let text = with("", "access_log = true\n");
    let message = rejected(&text, "routes[0].access_log", "access_log =");
    assert!(message.contains("a number from 0.0 to 1.0"), "{message}");
}

#[test]
fn strip_prefix_is_a_bool() {
    let config = accepted(&with("", "path_prefix = \"/api/\"\nstrip_prefix = true\n"));
    assert!(config.routes[0].strip_prefix);
    assert_eq!(config.routes[0].rewrite_prefix, None);
    let text = with("", "strip_prefix = 1\n");
    let message = rejected(&text, "routes[0].strip_prefix", "strip_prefix");
    assert!(message.contains("`true` or `false`"), "{message}");
}

#[test]
fn rewrite_prefix_starts_with_a_slash_and_is_a_path() {
    let config = accepted(&with(
        "",
        "path_prefix = \"/api/\"\nrewrite_prefix = \"/v2/\"\nstrip_prefix = false\n",
    ));
    assert_eq!(config.routes[0].rewrite_prefix.as_deref(), Some("/v2/"));
    let config = accepted(&with("", "path_prefix = \"/api\"\nrewrite_prefix = \"/v2\"\n"));
    assert_eq!(config.routes[0].rewrite_prefix.as_deref(), Some("/v2"));
    for (bad, says) in [
        ("v2/", "must start with `/`"),
        ("/v2?x=1", "cannot contain"),
        ("/v 2/", "cannot contain"),
    ] {
        let text = with("", &format!("path_prefix = \"/api/\"\nrewrite_prefix = \"{bad}\"\n"));
        let message = rejected(&text, "routes[0].rewrite_prefix", "rewrite_prefix");
        assert!(message.contains(says), "{bad}: {message}");
    }
}

#[test]
fn rewrite_prefix_ends_with_a_slash_when_path_prefix_does() {
    let text = with("", "path_prefix = \"/api/\"\nrewrite_prefix = \"/v2\"\n");
    let message = rejected(&text, "routes[0].rewrite_prefix", "rewrite_prefix");
    assert!(message.contains("`/v2users`"), "{message}");
}

#[test]
fn rewrite_prefix_conflicts_with_strip_prefix() {
    let text = with(
        "",
        "path_prefix = \"/api/\"\nstrip_prefix = true\nrewrite_prefix = \"/v2/\"\n",
    );
    let message = rejected(&text, "routes[0].rewrite_prefix", "rewrite_prefix");
    assert!(message.contains("keep one"), "{message}");
}

#[test]
fn header_rules_parse_lower_cased_in_file_order() {
    let text = headers(
        "request_set = { \"X-Env\" = \"prod\", \"x-client\" = \"$client_ip\", \"a-first\" = \"\" }\n\
         request_add = { \"x-trace\" = \"id=${request_id};v=$version $$5\" }\n\
         request_remove = [\"X-Internal\"]\n\
         response_set = { \"x-served-by\" = \"$version\", \"host\" = \"$route\" }\n\
         response_add = {}\n\
         response_remove = [\"server\", \"x-powered-by\"]",
    );
    let rules = accepted(&text).routes[0].headers.clone();
    assert_eq!(
        rules.request_set,
        vec![
            ("x-env".to_owned(), literal("prod")),
            (
                "x-client".to_owned(),
                Template {
                    parts: vec![TemplatePart::ClientIp]
                }
            ),
            ("a-first".to_owned(), Template::default()),
        ]
    );
    assert_eq!(
        rules.request_add,
        vec![(
            "x-trace".to_owned(),
            Template {
                parts: vec![
                    TemplatePart::Literal("id=".into()),
                    TemplatePart::RequestId,
                    TemplatePart::Literal(";v=".into()),
                    TemplatePart::Version,
                    TemplatePart::Literal(" $5".into()),
                ]
            }
        )]
    );
    assert_eq!(rules.request_remove, ["x-internal"]);
    assert_eq!(rules.response_set[1].0, "host");
    assert_eq!(rules.response_set[1].1.parts, [TemplatePart::Route]);
    assert_eq!(rules.response_add, vec![]);
    assert_eq!(rules.response_remove, ["server", "x-powered-by"]);
}

#[test]
fn header_names_are_tokens() {
    let text = headers("request_set = { \"x env\" = \"prod\" }");
    let message = rejected(&text, "routes[0].headers.request_set.\"x env\"", "request_set");
    assert!(message.contains("not a header name"), "{message}");
    let text = headers("response_remove = [\"x-ok\", \"bad:name\"]");
    let message = rejected(&text, "routes[0].headers.response_remove[1]", "response_remove");
    assert!(message.contains("not a header name"), "{message}");
}

#[test]
fn header_rules_cannot_touch_hop_by_hop_or_framing_headers() {
    for (list, rule) in [
        ("request_set", "request_set = { \"Connection\" = \"close\" }"),
        ("request_add", "request_add = { \"te\" = \"trailers\" }"),
        ("request_remove", "request_remove = [\"upgrade\"]"),
        ("response_set", "response_set = { \"keep-alive\" = \"timeout=5\" }"),
        ("response_add", "response_add = { \"trailer\" = \"x\" }"),
        ("response_remove", "response_remove = [\"Proxy-Authenticate\"]"),
        ("request_remove", "request_remove = [\"transfer-encoding\"]"),
        ("request_remove", "request_remove = [\"proxy-authorization\"]"),
    ] {
        let text = headers(rule);
        let err = Config::from_toml(&text, None).expect_err(rule);
        let path = err.key_path().expect("key path").to_owned();
        assert!(path.starts_with(&format!("routes[0].headers.{list}")), "{rule}: {path}");
        assert!(err.to_string().contains("hop-by-hop"), "{rule}: {err}");
    }
    let text = headers("response_set = { \"content-length\" = \"0\" }");
    let message = rejected(&text, "routes[0].headers.response_set.content-length", "response_set");
    assert!(message.contains("frames the message"), "{message}");
}

#[test]
fn request_rules_cannot_touch_host() {
    for (key, rule) in [
        (
            "routes[0].headers.request_set.Host",
            "request_set = { \"Host\" = \"example.com\" }",
        ),
        (
            "routes[0].headers.request_add.host",
            "request_add = { \"host\" = \"example.com\" }",
        ),
        ("routes[0].headers.request_remove[0]", "request_remove = [\"host\"]"),
    ] {
        let message = rejected(&headers(rule), key, "request_");
        assert!(
            message.contains("`host` is forwarded as the client sent it"),
            "{rule}: {message}"
        );
    }
}

#[test]
fn header_values_use_only_known_variables() {
    for (value, says) in [
        ("$client", "unknown variable `$client`"),
        ("$client_ipv4", "unknown variable `$client_ipv4`"),
        ("${host}", "unknown variable `$host`"),
        ("cost: $", "a `$` without a variable name"),
        ("$-x", "a `$` without a variable name"),
        ("${route", "without a closing"),
    ] {
        let text = headers(&format!("response_set = {{ \"x-a\" = \"{value}\" }}"));
        let message = rejected(&text, "routes[0].headers.response_set.x-a", "response_set");
        assert!(message.contains(says), "{value}: {message}");
        if says.starts_with("unknown") {
            assert!(
                message.contains("$client_ip, $request_id, $version, $route"),
                "{message}"
            );
        }
    }
    let config = accepted(&headers("response_set = { \"x-a\" = \"${route}x$$\" }"));
    assert_eq!(
        config.routes[0].headers.response_set[0].1.parts,
        [TemplatePart::Route, TemplatePart::Literal("x$".into())]
    );
}

#[test]
fn header_values_are_valid_header_text() {
    for value in ["a\\nb", "caf\u{e9}", "a\\u0000"] {
        let text = headers(&format!("request_set = {{ \"x-a\" = \"{value}\" }}"));
        let message = rejected(&text, "routes[0].headers.request_set.x-a", "request_set");
        assert!(message.contains("cannot hold"), "{value}: {message}");
    }
    let config = accepted(&headers("request_set = { \"x-a\" = \"a\\tb c!~\" }"));
    assert_eq!(config.routes[0].headers.request_set[0].1, literal("a\tb c!~"));
}

#[test]
fn header_names_are_listed_once_ignoring_case() {
    let text = headers("request_set = { \"x-env\" = \"a\", \"X-Env\" = \"b\" }");
    let message = rejected(&text, "routes[0].headers.request_set.X-Env", "request_set");
    assert!(message.contains("case-insensitive"), "{message}");
    let text = headers("response_remove = [\"server\", \"Server\"]");
    let message = rejected(&text, "routes[0].headers.response_remove[1]", "response_remove");
    assert!(message.contains("response_remove[0]"), "{message}");
}

#[test]
fn a_header_is_not_both_written_and_removed() {
    let text = headers("request_add = { \"x-a\" = \"1\" }\nrequest_remove = [\"X-A\"]");
    let message = rejected(&text, "routes[0].headers.request_remove[0]", "request_remove");
    assert!(message.contains("`request_add`"), "{message}");
    let text = headers("response_set = { \"x-a\" = \"1\" }\nresponse_remove = [\"x-b\", \"x-a\"]");
    let message = rejected(&text, "routes[0].headers.response_remove[1]", "response_remove");
    assert!(message.contains("`response_set`"), "{message}");
    // The same name in different directions is fine.
    accepted(&headers(
        "request_set = { \"x-a\" = \"1\" }\nresponse_remove = [\"x-a\"]",
    ));
}

#[test]
fn edge_unknown_keys_suggest_the_nearest() {
    let message = rejected(
        &headers("request_sets = {}"),
        "routes[0].headers.request_sets",
        "request_sets",
    );
    assert!(message.contains("did you mean `request_set`?"), "{message}");
    let text = with("", "[access_log]\nfromat = \"json\"\n");
    let message = rejected(&text, "access_log.fromat", "fromat");
    assert!(message.contains("did you mean `format`?"), "{message}");
    let text = with("trusted_proxy = [\"10.0.0.0/8\"]\n", "");
    let message = rejected(&text, "trusted_proxy", "trusted_proxy");
    assert!(message.contains("did you mean `trusted_proxies`?"), "{message}");
    let text = with("", "strip_prefixes = true\n");
    let message = rejected(&text, "routes[0].strip_prefixes", "strip_prefixes");
    assert!(message.contains("did you mean `strip_prefix`?"), "{message}");
}

#[test]
fn edge_example_file_parses() {
    let config = accepted(include_str!("../../../../examples/edge.toml"));
    assert_eq!(
        config.trusted_proxies,
        vec![cidr("10.0.0.0", 8), cidr("192.168.1.7", 32)]
    );
    assert!(!config.listen.proxy_protocol);
    let log = config.access_log.clone().expect("access log");
    assert_eq!((log.format, log.path, log.buffer), (LogFormat::Json, None, 8192));
    assert_eq!(config.request_id, RequestId::default());
    let api = &config.routes[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.access_log_sample, 1.0);
    assert_eq!(api.rewrite_prefix.as_deref(), Some("/v2/"));
    assert_eq!(api.headers.request_set.len(), 2);
    assert_eq!(api.headers.response_remove, ["server"]);
    assert_eq!(config.routes[1].access_log_sample, 0.1);
    assert!(config.routes[1].strip_prefix);
}
