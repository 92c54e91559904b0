//! `sluice check FILE`: validate and summarise a configuration.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use sluice_config::{Config, MatchValue, StickyMode, percent, shares};
use sluice_proxy::tls::{CertificateInfo, Certificates};

/// Prints a one-screen summary of a valid file (exit 0) or the error (exit 1). Certificates are read and checked
/// as `sluice run` would (key matches, not expired), so a file that passes here starts.
pub(crate) fn check(file: &Path) -> ExitCode {
    let config = match Config::load(file) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let certificates = match &config.tls {
        Some(tls) => match Certificates::check(tls, config.source.as_deref()) {
            Ok(infos) => infos,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
        },
        None => Vec::new(),
    };
    print!("{}", summary(&config));
    print!("{}", tls_summary(&certificates));
    ExitCode::SUCCESS
}

/// Each certificate entry: the names it serves, its subject and expiry, and hosts it does not cover.
fn tls_summary(certificates: &[CertificateInfo]) -> String {
    let mut out = String::new();
    for (i, c) in certificates.iter().enumerate() {
        let default = if i == 0 { " (default)" } else { "" };
        let days = c
            .not_after
            .duration_since(std::time::SystemTime::now())
            .map_or(0, |left| left.as_secs() / 86_400);
        let _ = writeln!(out, "tls       {}{default}  {}", c.hosts.join(","), c.cert.display());
        let _ = writeln!(
            out,
            "            subject {}  names {}  expires in {days} days",
            c.subject,
            c.names.join(",")
        );
        for warning in &c.warnings {
            let _ = writeln!(out, "            warning: {warning}");
        }
    }
    out
}

/// What an operator wants to see before deploying a file: where it listens, where it sends what share.
pub(crate) fn summary(config: &Config) -> String {
    let mut out = String::new();
    let source = config
        .source
        .as_deref()
        .map_or_else(|| "<config>".into(), |p| p.display().to_string());
    let _ = writeln!(out, "{source}: valid");
    let listen: Vec<String> = config
        .listen
        .http
        .iter()
        .map(|a| format!("http://{a}"))
        .chain(config.listen.https.iter().map(|a| format!("https://{a}")))
        .collect();
    let _ = writeln!(out, "listen    {}", listen.join(", "));
    for upstream in &config.upstreams {
        let servers: Vec<String> = upstream.servers.iter().map(ToString::to_string).collect();
        // The transport only when it is not the default plain HTTP/1.1.
        let transport = match (&upstream.tls, upstream.protocol) {
            (None, sluice_config::UpstreamProtocol::Http1) => String::new(),
            (None, protocol) => format!("  ({protocol})"),
            (Some(tls), protocol) => {
                let trust = tls
                    .ca
                    .as_ref()
                    .map_or_else(|| "system roots".to_owned(), |ca| format!("ca {}", ca.display()));
                format!("  ({protocol} over TLS, {trust})")
            }
        };
        let _ = writeln!(out, "upstream  {:<12} {}{transport}", upstream.name, servers.join(", "));
    }
    for route in &config.routes {
        let hosts = if route.hosts.is_empty() {
            "*".to_owned()
        } else {
            route
                .hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let redirect = if route.redirect_http_to_https {
            "  (http redirects to https)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "route     {:<12} host {hosts} prefix {}{redirect}",
            route.name, route.path_prefix
        );
        let weights: Vec<u32> = route.weights.iter().map(|w| w.weight).collect();
        for (w, share) in route.weights.iter().zip(shares(&weights)) {
            let _ = writeln!(
                out,
                "            {:<12} weight {:>6}  {:>6} %",
                w.upstream,
                w.weight,
                percent(share)
            );
        }
        sticky_summary(&mut out, route);
        if let Some(r) = &route.rollout {
            let steps: Vec<String> = r.steps.iter().map(ToString::to_string).collect();
            let strategy = match r.strategy {
                sluice_config::Strategy::Canary => "canary",
                sluice_config::Strategy::BlueGreen => "blue-green",
            };
            let _ = writeln!(
                out,
                "            rollout {strategy}  {} -> {}  steps {} %  every {}s  rollback after {} failed analyses",
                r.stable,
                r.canary,
                steps.join(", "),
                r.interval.as_secs(),
                r.failure_threshold
            );
        }
    }
    out
}

/// A sticky route's mode and, in bucket mode, each version's bucket range; then its match rules.
fn sticky_summary(out: &mut String, route: &sluice_config::Route) {
    if let Some(sticky) = &route.sticky {
        let key = sticky
            .key
            .as_ref()
            .map_or_else(|| "cookie sluice_id (issued)".to_owned(), ToString::to_string);
        let max_age = sticky.cookie_max_age.as_secs();
        match &sticky.mode {
            StickyMode::Bucket => {
                let _ = writeln!(
                    out,
                    "            sticky bucket  key {key}  salt {:?}  max-age {max_age}s",
                    sticky.salt
                );
                // The same function the router lays its buckets out with, over the same order of versions.
                let weights: Vec<u32> = route.weights.iter().map(|w| w.weight).collect();
                let ranges: Vec<String> = sluice_proxy::bucket_ranges(&weights)
                    .into_iter()
                    .map(|(v, range)| format!("{} {}..{}", route.weights[v].upstream, range.start, range.end))
                    .collect();
                let _ = writeln!(out, "            buckets        {}", ranges.join("  "));
            }
            StickyMode::Pin(keys) => {
                let _ = writeln!(
                    out,
                    "            sticky pin     cookie sluice_pin_{}  max-age {max_age}s  key {}{}",
                    route.name,
                    keys.key_file.display(),
                    keys.previous_key_file
                        .as_ref()
                        .map_or_else(String::new, |p| format!(" (previous {})", p.display()))
                );
            }
        }
    }
    for rule in &route.matches {
        let test = match &rule.value {
            MatchValue::Exact(value) => format!("= {value:?}"),
            MatchValue::Regex(pattern) => format!("~ /{pattern}/"),
        };
        let _ = writeln!(out, "            match          {} {test} -> {}", rule.on, rule.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_routes_show_their_bucket_ranges_and_rules() {
        let config = Config::from_toml(include_str!("../examples/sticky.toml"), None).expect("valid example");
        let out = summary(&config);
        assert!(
            out.contains("sticky bucket  key header:x-user-id  salt \"web\"  max-age 86400s"),
            "{out}"
        );
        assert!(out.contains("buckets        canary 0..500  blue 500..10000\n"), "{out}");
        assert!(
            out.contains("match          header:x-canary = \"always\" -> canary\n"),
            "{out}"
        );
        assert!(
            out.contains("match          cookie:cohort ~ /beta-[0-9]+/ -> canary\n"),
            "{out}"
        );
    }

    #[test]
    fn upstreams_show_their_transport_unless_plain_http1() {
        let text = "[listen]\nhttp = [\"127.0.0.1:8080\"]\n\
                    [upstreams.blue]\nservers = [\"127.0.0.1:9101\"]\n\
                    [upstreams.grpc]\nservers = [\"127.0.0.1:9102\"]\nprotocol = \"h2c\"\n\
                    [upstreams.api]\nservers = [\"api.internal:443\"]\nprotocol = \"h2\"\ntls = true\n\
                    [[routes]]\nname = \"web\"\nweights = { blue = 1, grpc = 0, api = 0 }\n";
        let out = summary(&Config::from_toml(text, None).expect("valid"));
        assert!(out.contains("upstream  blue         127.0.0.1:9101\n"), "{out}");
        assert!(out.contains("upstream  grpc         127.0.0.1:9102  (h2c)\n"), "{out}");
        assert!(
            out.contains("upstream  api          api.internal:443  (h2 over TLS, system roots)\n"),
            "{out}"
        );
    }
}
