//! `sluice check FILE`: validate and summarise a configuration.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use sluice_config::{Config, percent, shares};

/// Prints a one-screen summary of a valid file (exit 0) or the error (exit 1).
pub(crate) fn check(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            print!("{}", summary(&config));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// What an operator wants to see before deploying a file: where it listens, where it sends what share.
pub(crate) fn summary(config: &Config) -> String {
    let mut out = String::new();
    let source = config
        .source
        .as_deref()
        .map_or_else(|| "<config>".into(), |p| p.display().to_string());
    let _ = writeln!(out, "{source}: valid");
    let listen: Vec<String> = config.listen.http.iter().map(|a| format!("http://{a}")).collect();
    let _ = writeln!(out, "listen    {}", listen.join(", "));
    for upstream in &config.upstreams {
        let servers: Vec<String> = upstream.servers.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "upstream  {:<12} {}", upstream.name, servers.join(", "));
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
        let _ = writeln!(
            out,
            "route     {:<12} host {hosts} prefix {}",
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
    }
    out
}
