//! The command line, and turning it into a [`LoadSpec`].

use std::time::Duration;

use clap::{ArgGroup, Parser};
use http::{HeaderName, HeaderValue, Method};
use sluice_loadtest::{LoadSpec, Mode, Protocol, Target};

/// Closed-loop connections when `--connections` is not given.
const CLOSED_CONNECTIONS: usize = 50;
/// Open-loop connection pool when `--connections` is not given.
const OPEN_CONNECTIONS: usize = 100;

/// HTTP load generator for sluice: closed loop, or open loop at a fixed rate with latency measured from the
/// intended send time (no coordinated omission).
#[derive(Debug, Parser)]
#[command(name = "sluice-load", version)]
#[command(group(ArgGroup::new("bound").required(true).multiple(true).args(["duration", "requests"])))]
#[command(after_help = "\
Examples:
  sluice-load -c 50 -d 10s http://127.0.0.1:8080/          closed loop, 50 connections
  sluice-load --rate 2000 --duration 10s                   open loop at 2000 req/s on 127.0.0.1:8080
  sluice-load --h2 -X POST --body-size 4096 -n 10000 URL    h2c POSTs, 10,000 requests

Exit status: 0 after a run (even with failed requests), 64 for bad arguments or a refused target,
1 when the target cannot be reached.")]
pub(crate) struct Cli {
    /// Target URL: http://host[:port][/path] (h2 is spoken as h2c with prior knowledge)
    #[arg(default_value = "http://127.0.0.1:8080/")]
    pub(crate) url: String,

    /// Keep-alive connections [default: 50 closed loop, 100 open loop]. Closed loop: each sends back to
    /// back. Open loop: the pool that sends draw from, one request in flight per connection
    #[arg(short, long, value_name = "N")]
    pub(crate) connections: Option<usize>,

    /// Open loop: send R requests per second at evenly spread intended times
    #[arg(short, long, value_name = "R")]
    pub(crate) rate: Option<f64>,

    /// Stop starting requests after this long (e.g. 10s, 1m, 500ms; a bare number is seconds)
    #[arg(short, long, value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,

    /// Stop after this many requests (with --duration too: whichever comes first)
    #[arg(short = 'n', long, value_name = "N")]
    pub(crate) requests: Option<u64>,

    /// Speak HTTP/2 over cleartext (h2c, prior knowledge) instead of HTTP/1.1
    #[arg(long)]
    pub(crate) h2: bool,

    /// Request method [default: GET, or POST with --body-size]
    #[arg(short = 'X', long)]
    pub(crate) method: Option<Method>,

    /// Add a request header, 'name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'", value_parser = parse_header)]
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,

    /// Send a body of this many bytes with each request
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub(crate) body_size: usize,

    /// Count responses by the value of this response header ('' to turn off)
    #[arg(long, value_name = "NAME", default_value = "x-upstream")]
    pub(crate) tally_header: String,

    /// Give up on a response after this long; counted as a timeout error
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) timeout: Duration,

    /// Print one JSON object at the end instead of the summary
    #[arg(long)]
    pub(crate) json: bool,

    /// No progress on stderr while running
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Allow a target outside 127.0.0.0/8, ::1 and localhost
    #[arg(long)]
    pub(crate) allow_remote: bool,

    /// Runtime worker threads [default: one per core]
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
}

impl Cli {
    /// The run the arguments describe, checked.
    pub(crate) fn spec(&self) -> Result<LoadSpec, String> {
        let target = Target::parse(&self.url).map_err(|error| error.to_string())?;
        let mut spec = LoadSpec::new(target);
        spec.mode = match self.rate {
            Some(rate) => Mode::Open { rate },
            None => Mode::Closed,
        };
        spec.connections = self.connections.unwrap_or(match spec.mode {
            Mode::Closed => CLOSED_CONNECTIONS,
            Mode::Open { .. } => OPEN_CONNECTIONS,
        });
        spec.duration = self.duration;
        spec.requests = self.requests;
        spec.protocol = if self.h2 { Protocol::H2 } else { Protocol::Http1 };
        spec.method = self
            .method
            .clone()
            .unwrap_or(if self.body_size > 0 { Method::POST } else { Method::GET });
        for (name, value) in &self.headers {
            spec.headers.append(name.clone(), value.clone());
        }
        spec.body_size = self.body_size;
        spec.tally_header = if self.tally_header.is_empty() {
            None
        } else {
            Some(
                HeaderName::try_from(self.tally_header.as_str())
                    .map_err(|_| format!("--tally-header `{}` is not a header name", self.tally_header))?,
            )
        };
        spec.timeout = self.timeout;
        spec.allow_remote = self.allow_remote;
        spec.validate().map_err(|error| error.to_string())?;
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        Ok(spec)
    }
}

/// A duration like `10s`, `1m30s`, `250ms`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is not a duration"));
    }
    humantime::parse_duration(text).map_err(|error| format!("`{text}` is not a duration ({error}); try 10s or 500ms"))
}

/// A header written `name: value`.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a header; write 'name: value'"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|_| format!("`{}` is not a header name", name.trim()))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|_| format!("the value of `{name}` is not valid"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sluice-load").chain(args.iter().copied()))
    }

    #[test]
    fn a_bound_is_required() {
        assert!(parse(&["http://127.0.0.1:1/"]).is_err());
        assert!(parse(&["-d", "1s"]).is_ok());
        assert!(parse(&["-n", "5"]).is_ok());
        assert!(parse(&["-n", "5", "-d", "2"]).is_ok());
    }

    #[test]
    fn arguments_make_the_spec() {
        let cli = parse(&[
            "--rate",
            "2000",
            "-d",
            "10s",
            "--h2",
            "-H",
            "x-a: b",
            "-H",
            "x-a: c",
            "--body-size",
            "10",
        ])
        .unwrap();
        let spec = cli.spec().unwrap();
        assert_eq!(spec.mode, Mode::Open { rate: 2000.0 });
        assert_eq!(spec.connections, OPEN_CONNECTIONS);
        assert_eq!(spec.duration, Some(Duration::from_secs(10)));
        assert_eq!(spec.protocol, Protocol::H2);
        assert_eq!(spec.method, Method::POST);
        assert_eq!(spec.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(spec.target.to_string(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn remote_target_needs_allow_remote() {
        let cli = parse(&["-n", "1", "http://example.com/"]).unwrap();
        let error = cli.spec().unwrap_err();
        assert!(error.contains("--allow-remote"), "{error}");
        let cli = parse(&["-n", "1", "--allow-remote", "http://example.com/"]).unwrap();
        assert!(cli.spec().is_ok());
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(parse(&["-n", "1", "-H", "nocolon"]).is_err());
        assert!(parse(&["-d", "soon"]).is_err());
        assert!(
            parse(&["-n", "1", "--tally-header", "bad header"])
                .unwrap()
                .spec()
                .is_err()
        );
        assert!(parse(&["-n", "1", "--rate", "0"]).unwrap().spec().is_err());
    }
}
