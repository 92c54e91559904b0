//! The TOML file as written: serde types that mirror the file's keys and keep their spans.
//!
//! Everything a rule can reject is `Spanned`, and sections whose absence deserves a better message than serde's
//! "missing field" are optional here and required in `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    pub(crate) listen: Option<Spanned<ListenFile>>,
    #[serde(default)]
    pub(crate) upstreams: BTreeMap<Spanned<String>, Spanned<UpstreamFile>>,
    pub(crate) routes: Option<Spanned<Vec<Spanned<RouteFile>>>>,
    #[serde(default)]
    pub(crate) runtime: RuntimeFile,
    #[serde(default)]
    pub(crate) timeouts: TimeoutsFile,
    pub(crate) admin: Option<Spanned<AdminFile>>,
    #[serde(default)]
    pub(crate) limits: LimitsFile,
    pub(crate) trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) access_log: Option<Spanned<AccessLogFile>>,
    pub(crate) request_id: Option<Spanned<RequestIdFile>>,
    pub(crate) tls: Option<Spanned<TlsFile>>,
}

/// `[listen]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenFile {
    pub(crate) http: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) https: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) proxy_protocol: Option<Spanned<bool>>,
}

/// `[tls]`: the certificates the `https` listeners serve; checked in `validate/tls.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    pub(crate) certificates: Option<Spanned<Vec<Spanned<CertificateFile>>>>,
}

/// One `[[tls.certificates]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertificateFile {
    pub(crate) hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) cert: Option<Spanned<String>>,
    pub(crate) key: Option<Spanned<String>>,
}

/// `[upstreams.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamFile {
    pub(crate) servers: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) health: Option<Spanned<HealthFile>>,
    #[serde(default)]
    pub(crate) outlier: OutlierFile,
    pub(crate) protocol: Option<Spanned<String>>,
    pub(crate) tls: Option<Spanned<UpstreamTlsFile>>,
}

/// `[upstreams.NAME] tls`: `true`, `false`, or a table with `ca` and `server_name`.
#[derive(Debug)]
pub(crate) enum UpstreamTlsFile {
    Enabled(bool),
    Settings(UpstreamTlsSettingsFile),
}

// By hand rather than `#[serde(untagged)]`: untagged buffers the value and loses the spans (and the precise
// "unknown key" errors) that the table's fields need.
impl<'de> Deserialize<'de> for UpstreamTlsFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TlsVisitor;
        impl<'de> serde::de::Visitor<'de> for TlsVisitor {
            type Value = UpstreamTlsFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`true`, `false` or a table")
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Self::Value, E> {
                Ok(UpstreamTlsFile::Enabled(value))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let settings = Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(UpstreamTlsFile::Settings(settings))
            }
        }
        deserializer.deserialize_any(TlsVisitor)
    }
}

/// `[upstreams.NAME.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamTlsSettingsFile {
    pub(crate) ca: Option<Spanned<String>>,
    pub(crate) server_name: Option<Spanned<String>>,
}

// Counts and percentages below are signed so that a negative one gets sluice's message rather than serde's
// "expected u32", as for weights.

/// `[upstreams.NAME.health]`: durations as written, parsed in `validate/resilience.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthFile {
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) healthy: Option<Spanned<i64>>,
    pub(crate) unhealthy: Option<Spanned<i64>>,
}

/// `[upstreams.NAME.outlier]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutlierFile {
    pub(crate) consecutive_failures: Option<Spanned<i64>>,
    pub(crate) base_ejection: Option<Spanned<String>>,
    pub(crate) max_ejection: Option<Spanned<String>>,
    pub(crate) max_ejected_percent: Option<Spanned<i64>>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteFile {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) path_prefix: Option<Spanned<String>>,
    // Signed so that a negative weight gets sluice's message rather than serde's "expected u32".
    pub(crate) weights: Option<Spanned<BTreeMap<Spanned<String>, Spanned<i64>>>>,
    pub(crate) sticky: Option<Spanned<StickyFile>>,
    #[serde(rename = "match")]
    pub(crate) matches: Option<Spanned<Vec<Spanned<MatchFile>>>>,
    pub(crate) fallback: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) retry: RetryFile,
    pub(crate) rollout: Option<Spanned<RolloutFile>>,
    /// The sample share; integers (`0`, `1`) are accepted as for `[routes.rollout.analysis]`.
    pub(crate) access_log: Option<Spanned<f64>>,
    pub(crate) strip_prefix: Option<Spanned<bool>>,
    pub(crate) rewrite_prefix: Option<Spanned<String>>,
    pub(crate) headers: Option<Spanned<HeadersFile>>,
    pub(crate) redirect_http_to_https: Option<Spanned<bool>>,
}

/// Header name → value as written; parsed in `validate/edge.rs`.
pub(crate) type HeaderMapFile = Spanned<BTreeMap<Spanned<String>, Spanned<String>>>;

/// `[routes.headers]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadersFile {
    pub(crate) request_set: Option<HeaderMapFile>,
    pub(crate) request_add: Option<HeaderMapFile>,
    pub(crate) request_remove: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) response_set: Option<HeaderMapFile>,
    pub(crate) response_add: Option<HeaderMapFile>,
    pub(crate) response_remove: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[routes.retry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryFile {
    pub(crate) attempts: Option<Spanned<i64>>,
    pub(crate) budget_percent: Option<Spanned<i64>>,
}

/// `[routes.rollout]`: names, durations and counts as written, parsed in `validate/rollout.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutFile {
    pub(crate) strategy: Option<Spanned<String>>,
    pub(crate) stable: Option<Spanned<String>>,
    pub(crate) canary: Option<Spanned<String>>,
    pub(crate) steps: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) failure_threshold: Option<Spanned<i64>>,
    pub(crate) min_requests: Option<Spanned<i64>>,
    pub(crate) progress_deadline: Option<Spanned<String>>,
    pub(crate) revision: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) analysis: AnalysisFile,
    pub(crate) webhooks: Option<Spanned<Vec<Spanned<WebhookFile>>>>,
}

/// `[routes.rollout.analysis]`: TOML integers are accepted where a float is expected (`0`, `1`) and range-checked
/// like any other number.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnalysisFile {
    pub(crate) max_error_rate: Option<Spanned<f64>>,
    pub(crate) max_error_rate_increase: Option<Spanned<f64>>,
    pub(crate) max_latency_p99: Option<Spanned<String>>,
    pub(crate) max_latency_ratio: Option<Spanned<f64>>,
    pub(crate) confidence: Option<Spanned<f64>>,
}

/// One `[[routes.rollout.webhooks]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookFile {
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
}

/// `[routes.sticky]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StickyFile {
    pub(crate) mode: Option<Spanned<String>>,
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) cookie_max_age: Option<Spanned<String>>,
    pub(crate) salt: Option<Spanned<String>>,
    pub(crate) pin_key_file: Option<Spanned<String>>,
    pub(crate) pin_previous_key_file: Option<Spanned<String>>,
}

/// One `[[routes.match]]` entry: exactly one of `header`, `cookie`, `query`, and `version`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchFile {
    pub(crate) header: Option<Spanned<MatchValueFile>>,
    pub(crate) cookie: Option<Spanned<MatchValueFile>>,
    pub(crate) query: Option<Spanned<MatchValueFile>>,
    pub(crate) version: Option<Spanned<String>>,
}

/// `{ name = "...", value = "..." }` or `{ name = "...", regex = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchValueFile {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) value: Option<Spanned<String>>,
    pub(crate) regex: Option<Spanned<String>>,
}

/// `[runtime]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuntimeFile {
    pub(crate) workers: Option<Spanned<i64>>,
}

/// `[timeouts]`: durations as written, parsed in `validate.rs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutsFile {
    pub(crate) connect: Option<Spanned<String>>,
    pub(crate) response_header: Option<Spanned<String>>,
    pub(crate) idle: Option<Spanned<String>>,
    pub(crate) drain: Option<Spanned<String>>,
}

/// `[admin]`: the admin API listener and where runtime state is kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminFile {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) token_file: Option<Spanned<String>>,
    pub(crate) state_file: Option<Spanned<String>>,
}

/// `[limits]`: what a client may send.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    pub(crate) header_timeout: Option<Spanned<String>>,
    pub(crate) max_header_bytes: Option<Spanned<i64>>,
    pub(crate) max_body_bytes: Option<Spanned<i64>>,
}

/// `[access_log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessLogFile {
    pub(crate) format: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) buffer: Option<Spanned<i64>>,
}

/// `[request_id]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestIdFile {
    pub(crate) header: Option<Spanned<String>>,
}

/// What a value at `key_path` should look like, for type errors; `None` when the path is not a known key.
pub(crate) fn expected_at(key_path: &str) -> Option<&'static str> {
    let hint = match shape(key_path).as_str() {
        "" => {
            "`trusted_proxies` and tables `[listen]`, `[upstreams.NAME]`, `[[routes]]`, `[runtime]`, `[timeouts]`, \
             `[admin]`, `[limits]`, `[access_log]`, `[request_id]` and `[tls]`"
        }
        "admin" => "a table with `listen` and optionally `token_file` and `state_file`",
        "admin.listen" => "a socket address string, e.g. `\"127.0.0.1:9901\"`",
        "admin.token_file" | "admin.state_file" => "a file path string, relative to the config file's directory",
        "listen" => {
            "a table with `http = [\"127.0.0.1:8080\"]` and/or `https = [\"0.0.0.0:8443\"]`, and optionally \
             `proxy_protocol`"
        }
        "listen.proxy_protocol" | "routes[].strip_prefix" | "routes[].redirect_http_to_https" => "`true` or `false`",
        "listen.https" => "a list of socket addresses, e.g. `[\"0.0.0.0:8443\"]`",
        "listen.https[]" => "a socket address string, e.g. `\"0.0.0.0:8443\"`",
        "tls" => "a table `[tls]` with `certificates`",
        "tls.certificates" => "an array of tables, written `[[tls.certificates]]`",
        "tls.certificates[]" => "a table with `hosts`, `cert` and `key`",
        "tls.certificates[].hosts" => "a list of host names, e.g. `[\"example.com\", \"*.example.com\"]`",
        "tls.certificates[].hosts[]" => "a host name string: `\"example.com\"` or `\"*.example.com\"`",
        "tls.certificates[].cert" | "tls.certificates[].key" => {
            "a PEM file path string, relative to the config file's directory"
        }
        "trusted_proxies" => "a list of address blocks or addresses, e.g. `[\"10.0.0.0/8\", \"192.168.1.7\"]`",
        "trusted_proxies[]" => "an address block or address string, e.g. `\"10.0.0.0/8\"` or `\"2001:db8::/32\"`",
        "access_log" => "a table `[access_log]` with optionally `format`, `path` and `buffer`",
        "access_log.format" => "`\"json\"` or `\"combined\"`",
        "access_log.path" => "`\"-\"` for stdout, or a file path string, relative to the config file's directory",
        "access_log.buffer" => "an integer from 1 to 1000000",
        "request_id" => "a table `[request_id]` with `header`",
        "request_id.header" => "a header name string, e.g. `\"x-request-id\"`",
        "routes[].access_log" => "a number from 0.0 to 1.0: the share of the route's requests logged",
        "routes[].rewrite_prefix" => "a string starting with `/`, e.g. `\"/v2/\"`",
        "routes[].headers" => {
            "a table `[routes.headers]` with `request_set`, `request_add`, `request_remove`, `response_set`, \
             `response_add` and `response_remove`"
        }
        "routes[].headers.request_set"
        | "routes[].headers.request_add"
        | "routes[].headers.response_set"
        | "routes[].headers.response_add" => "an inline table of header name → value, e.g. `{ \"x-env\" = \"prod\" }`",
        "routes[].headers.request_set.*"
        | "routes[].headers.request_add.*"
        | "routes[].headers.response_set.*"
        | "routes[].headers.response_add.*" => {
            "a header value string; may use `$client_ip`, `$request_id`, `$version` and `$route`"
        }
        "routes[].headers.request_remove" | "routes[].headers.response_remove" => {
            "a list of header names, e.g. `[\"x-internal\"]`"
        }
        "routes[].headers.request_remove[]" | "routes[].headers.response_remove[]" => "a header name string",
        "listen.http" => "a list of socket addresses, e.g. `[\"127.0.0.1:8080\"]`",
        "listen.http[]" => "a socket address string, e.g. `\"127.0.0.1:8080\"`",
        "upstreams" => "tables `[upstreams.NAME]`",
        "upstreams.*" => {
            "a table with `servers = [\"host:port\", ...]` and optionally `protocol`, `tls`, `health` and `outlier`"
        }
        "upstreams.*.protocol" => "`\"http1\"`, `\"h2\"` or `\"h2c\"`",
        "upstreams.*.tls" => "`true`, `false`, or a table `[upstreams.NAME.tls]` with `ca` and `server_name`",
        "upstreams.*.tls.ca" | "upstreams.*.tls.server_name" => "a string",
        "upstreams.*.servers" => "a list of `\"host:port\"` strings",
        "upstreams.*.servers[]" => "a `\"host:port\"` string, e.g. `\"127.0.0.1:9101\"`",
        "upstreams.*.health" => {
            "a table `[upstreams.NAME.health]` with `path`, `interval`, `timeout`, `healthy` and `unhealthy`"
        }
        "upstreams.*.health.path" => "a path string starting with `/`, e.g. `\"/healthz\"`",
        "upstreams.*.health.healthy" | "upstreams.*.health.unhealthy" => "an integer of at least 1",
        "upstreams.*.outlier" => {
            "a table `[upstreams.NAME.outlier]` with `consecutive_failures`, `base_ejection`, `max_ejection` and \
             `max_ejected_percent`"
        }
        "upstreams.*.outlier.consecutive_failures" => "an integer of at least 1",
        "upstreams.*.outlier.max_ejected_percent" => "an integer from 0 to 100",
        "routes" => "an array of tables, written `[[routes]]`",
        "routes[]" => {
            "a table with `name`, `weights` and optionally `hosts`, `path_prefix`, `sticky`, `match`, `fallback`, \
             `retry`, `rollout`, `access_log`, `strip_prefix`, `rewrite_prefix`, `headers` and \
             `redirect_http_to_https`"
        }
        "routes[].name" => "a string of `a-z`, `0-9`, `_` and `-`",
        "routes[].hosts" => "a list of host patterns, e.g. `[\"example.com\", \"*.example.com\"]`",
        "routes[].hosts[]" => "a host pattern string: `\"*\"`, `\"example.com\"` or `\"*.example.com\"`",
        "routes[].path_prefix" => "a string starting with `/`",
        "routes[].weights" => "an inline table of upstream weights, e.g. `{ blue = 90, canary = 10 }`",
        "routes[].weights.*" => "a non-negative integer",
        "routes[].sticky" => "a table `[routes.sticky]` with `mode`, `key`, `cookie_max_age`, `salt`, `pin_key_file`",
        "routes[].sticky.mode" => "`\"bucket\"` or `\"pin\"`",
        "routes[].sticky.key" => "a string `\"header:NAME\"`, `\"cookie:NAME\"` or `\"query:NAME\"`",
        "routes[].sticky.cookie_max_age" => "a duration string, e.g. `\"24h\"`",
        "routes[].sticky.salt" => "a string",
        "routes[].sticky.pin_key_file" | "routes[].sticky.pin_previous_key_file" => {
            "a file path string, relative to the config file's directory"
        }
        "routes[].match" => "an array of tables, written `[[routes.match]]`",
        "routes[].match[]" => "a table with one of `header`, `cookie`, `query`, and `version`",
        "routes[].match[].header" | "routes[].match[].cookie" | "routes[].match[].query" => {
            "an inline table, e.g. `{ name = \"x-canary\", value = \"always\" }` or with `regex` instead of `value`"
        }
        "routes[].match[].header.name" | "routes[].match[].cookie.name" | "routes[].match[].query.name" => "a string",
        "routes[].match[].header.value" | "routes[].match[].cookie.value" | "routes[].match[].query.value" => {
            "a string"
        }
        "routes[].match[].header.regex" | "routes[].match[].cookie.regex" | "routes[].match[].query.regex" => {
            "a regex string, e.g. `\"^(alpha|beta)$\"`"
        }
        "routes[].match[].version" => "the name of an upstream, e.g. `\"canary\"`",
        "routes[].fallback" => "the name of an upstream, e.g. `\"blue\"`",
        "routes[].retry" => "a table `[routes.retry]` with `attempts` and `budget_percent`",
        "routes[].retry.attempts" => "an integer from 0 to 3",
        "routes[].retry.budget_percent" => "an integer from 0 to 100",
        "routes[].rollout" => {
            "a table `[routes.rollout]` with `stable`, `canary` and optionally `strategy`, `steps`, `interval`, \
             `failure_threshold`, `min_requests`, `progress_deadline`, `revision`, `analysis` and `webhooks`"
        }
        "routes[].rollout.strategy" => "`\"canary\"` or `\"blue_green\"`",
        "routes[].rollout.stable" | "routes[].rollout.canary" => {
            "the name of an upstream in the route's `weights`, e.g. `\"blue\"`"
        }
        "routes[].rollout.steps" => "a list of percentages, e.g. `[5, 10, 25, 50, 100]`",
        "routes[].rollout.steps[]" => "an integer percentage from 1 to 100",
        "routes[].rollout.failure_threshold" | "routes[].rollout.min_requests" => "an integer of at least 1",
        "routes[].rollout.revision" => "a string, e.g. `\"build-1234\"`",
        "routes[].rollout.analysis" => {
            "a table `[routes.rollout.analysis]` with `max_error_rate`, `max_error_rate_increase`, \
             `max_latency_p99`, `max_latency_ratio` and `confidence`"
        }
        "routes[].rollout.analysis.max_error_rate" => "a number greater than 0 and less than 1, e.g. `0.05`",
        "routes[].rollout.analysis.max_error_rate_increase" => "a number of at least 0 and less than 1, e.g. `0.01`",
        "routes[].rollout.analysis.max_latency_ratio" => "a number of at least 1.0, e.g. `1.2`",
        "routes[].rollout.analysis.confidence" => "a number of at least 0.5 and less than 1, e.g. `0.99`",
        "routes[].rollout.webhooks" => "an array of tables, written `[[routes.rollout.webhooks]]`",
        "routes[].rollout.webhooks[]" => "a table with `kind`, `url` and optionally `timeout`",
        "routes[].rollout.webhooks[].kind" => {
            "one of `\"pre-rollout\"`, `\"pre-step\"`, `\"confirm-promotion\"`, `\"post-rollout\"` or \
             `\"rollback\"`"
        }
        "routes[].rollout.webhooks[].url" => {
            "an `http://host[:port][/path]` string, e.g. `\"http://127.0.0.1:9000/hooks/pre\"`"
        }
        "runtime" => "a table with `workers`",
        "runtime.workers" => "an integer of at least 1",
        "timeouts" => "a table of durations",
        "timeouts.connect"
        | "timeouts.response_header"
        | "timeouts.idle"
        | "timeouts.drain"
        | "upstreams.*.health.interval"
        | "upstreams.*.health.timeout"
        | "upstreams.*.outlier.base_ejection"
        | "upstreams.*.outlier.max_ejection"
        | "limits.header_timeout"
        | "routes[].rollout.interval"
        | "routes[].rollout.progress_deadline"
        | "routes[].rollout.analysis.max_latency_p99"
        | "routes[].rollout.webhooks[].timeout" => "a duration string, e.g. `\"250ms\"`, `\"5s\"`, `\"1m30s\"`",
        "limits" => "a table with `header_timeout`, `max_header_bytes` and `max_body_bytes`",
        "limits.max_header_bytes" => "an integer from 1024 to 1048576",
        "limits.max_body_bytes" => "an integer of at least 1",
        _ => return None,
    };
    Some(hint)
}

/// The schema position of a key path: indices become `[]`, user-chosen names (upstreams, weights) become `*`.
fn shape(key_path: &str) -> String {
    let mut out = String::with_capacity(key_path.len());
    let mut parent = "";
    for (i, segment) in key_path.split('.').enumerate() {
        let (name, indexed) = match segment.find('[') {
            Some(at) => (&segment[..at], true),
            None => (segment, false),
        };
        if i > 0 {
            out.push('.');
        }
        out.push_str(
            if matches!(
                parent,
                "upstreams" | "weights" | "request_set" | "request_add" | "response_set" | "response_add"
            ) {
                "*"
            } else {
                name
            },
        );
        if indexed {
            out.push_str("[]");
        }
        parent = name;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_replaces_names_and_indices() {
        assert_eq!(shape("routes[3].weights.blue"), "routes[].weights.*");
        assert_eq!(shape("upstreams.blue.servers[1]"), "upstreams.*.servers[]");
        assert_eq!(expected_at("routes[0].weights.canary"), Some("a non-negative integer"));
        assert_eq!(expected_at("nonsense.key"), None);
        assert_eq!(shape("upstreams.canary.health.interval"), "upstreams.*.health.interval");
        assert_eq!(
            expected_at("upstreams.canary.outlier.max_ejected_percent"),
            Some("an integer from 0 to 100")
        );
        assert_eq!(
            shape("routes[0].rollout.webhooks[2].timeout"),
            "routes[].rollout.webhooks[].timeout"
        );
        assert_eq!(
            expected_at("routes[1].rollout.steps[3]"),
            Some("an integer percentage from 1 to 100")
        );
    }
}
