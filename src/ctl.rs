//! `sluice ctl`: the admin API (docs/admin-api.md) from the command line.
//!
//! Arguments are checked locally first (weight pairs, URL, token), then one HTTP/1.1 request is sent; the answer is
//! printed as a table, or as the server's JSON with `--json`.

mod client;
mod render;
mod target;
mod weights;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_config::Config;

use self::client::{Answer, Call, CallError, segment};
use self::target::{Target, resolve_admin, resolve_token};

/// Exit statuses, shown under `sluice ctl --help`.
const EXIT_STATUS: &str = "\
Exit status:
  0   the server accepted the request (2xx)
  1   the server answered with an error; `sluice ctl: <status>: <message>` goes to stderr
  2   the admin API could not be reached or gave no answer within 10 s; the URL and the reason go to stderr
      (clap's own command-line syntax errors also exit 2)
  64  nothing was sent: a bad weight pair, --admin URL, --config file or token file";

/// Exit status when nothing was sent because the arguments, config file or token are wrong (as `sluice run`).
const EXIT_USAGE: u8 = 64;
/// Exit status when the server answered with a non-2xx status or an unreadable body.
const EXIT_SERVER_ERROR: u8 = 1;
/// Exit status when the admin API could not be reached.
const EXIT_UNREACHABLE: u8 = 2;

/// Options of `sluice ctl`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_STATUS)]
pub(crate) struct CtlArgs {
    /// Admin API base URL, `http://host:port` [default: the --config file's `[admin] listen`, else
    /// http://127.0.0.1:9901]
    #[arg(long, value_name = "URL", global = true)]
    admin: Option<String>,
    /// sluice config file whose `[admin]` section gives the URL (`listen`) and the token (`token_file`)
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// File holding the bearer token sent with changes (weights, drain, enable, reload, rollout commands); without it:
    /// $SLUICE_ADMIN_TOKEN (the token itself), else the --config file's `[admin] token_file`
    #[arg(long, value_name = "PATH", global = true)]
    token_file: Option<PathBuf>,
    /// Print the server's JSON answer as is (for scripts) instead of tables
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Show the live version, the last reload, each route's weights and each upstream's servers
    State,
    /// Replace a route's weights as a whole, e.g. `sluice ctl weights web blue=80 canary=20`
    Weights {
        /// Route name
        route: String,
        /// New weights, one non-negative integer per upstream; all 0 makes the route answer 503
        #[arg(value_name = "UPSTREAM=WEIGHT", required = true)]
        pairs: Vec<String>,
    },
    /// Send no new requests to a server; requests in flight finish
    Drain {
        /// Upstream name
        upstream: String,
        /// Server address as in the config, e.g. 127.0.0.1:9101
        addr: String,
    },
    /// Send requests to a drained server again
    Enable {
        /// Upstream name
        upstream: String,
        /// Server address as in the config, e.g. 127.0.0.1:9101
        addr: String,
    },
    /// Re-read the config file; an invalid file is refused and the live config kept
    Reload,
    /// Show the latest changes, oldest first
    Events {
        /// How many events [server default: 100]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        limit: Option<u16>,
    },
    /// Drive or show a route's automatic rollout (`[routes.rollout]`), e.g. `sluice ctl rollout status web`
    Rollout {
        /// What to do: `status` shows the phase, step, canary share and latest decisions; the others change it
        #[arg(value_enum)]
        action: RolloutAction,
        /// Route name
        route: String,
        /// With `start`: the revision this rollout is for (shown in the status and the decision log)
        #[arg(long, value_name = "R")]
        revision: Option<String>,
    },
}

/// `sluice ctl rollout ACTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RolloutAction {
    /// Start a new rollout (from idle, succeeded or failed)
    Start,
    /// Hold the rollout where it is
    Pause,
    /// Continue a paused rollout
    Resume,
    /// Skip to 100 % on the canary now
    Promote,
    /// Roll back to 0 % on the canary now
    Abort,
    /// Show where the rollout is (read-only)
    Status,
}

impl RolloutAction {
    fn as_str(self) -> &'static str {
        match self {
            RolloutAction::Start => "start",
            RolloutAction::Pause => "pause",
            RolloutAction::Resume => "resume",
            RolloutAction::Promote => "promote",
            RolloutAction::Abort => "abort",
            RolloutAction::Status => "status",
        }
    }
}

/// Why `sluice ctl` did not succeed; each maps to one exit status.
#[derive(Debug)]
enum Failure {
    /// Nothing was sent.
    Usage(String),
    /// The server answered with a non-2xx status.
    Server {
        status: StatusCode,
        message: String,
        hint: Option<&'static str>,
    },
    /// The server answered 2xx with something that is not the JSON the API promises.
    BadAnswer(String),
    /// The admin API could not be reached.
    Unreachable { target: Target, reason: String },
}

pub(crate) fn ctl(args: CtlArgs) -> anyhow::Result<ExitCode> {
    match run(args) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(failure) => Ok(report(&failure)),
    }
}

fn report(failure: &Failure) -> ExitCode {
    let (code, message) = describe(failure);
    eprint!("{message}");
    ExitCode::from(code)
}

/// The exit status and the stderr text of a failure.
fn describe(failure: &Failure) -> (u8, String) {
    match failure {
        Failure::Usage(message) => (EXIT_USAGE, format!("sluice ctl: {message}\n")),
        Failure::Server { status, message, hint } => {
            let mut text = format!("sluice ctl: {status}: {message}\n");
            if let Some(hint) = hint {
                text.push_str(&format!("sluice ctl: hint: {hint}\n"));
            }
            (EXIT_SERVER_ERROR, text)
        }
        Failure::BadAnswer(message) => (EXIT_SERVER_ERROR, format!("sluice ctl: {message}\n")),
        Failure::Unreachable { target, reason } => (
            EXIT_UNREACHABLE,
            format!(
                "sluice ctl: cannot reach the admin API at {} ({}): {reason}\n",
                target.url, target.origin
            ),
        ),
    }
}

fn run(args: CtlArgs) -> Result<(), Failure> {
    let config = match &args.config {
        Some(path) => Some(Config::load(path).map_err(|err| Failure::Usage(err.to_string()))?),
        None => None,
    };
    let target =
        resolve_admin(args.admin.as_deref(), args.config.as_deref().zip(config.as_ref())).map_err(Failure::Usage)?;
    let (method, path, body) = request(&args.command)?;
    let token = if method == Method::GET {
        // Reads are open; only changes need the token, so a missing token file must not block `state`.
        None
    } else {
        let env = std::env::var(target::TOKEN_ENV).ok();
        match resolve_token(args.token_file.as_deref(), env, config.as_ref()) {
            Some(source) => Some(target::read_token(&source).map_err(Failure::Usage)?),
            None => None,
        }
    };
    let sent_token = token.is_some();
    let call = Call {
        method,
        url: target.url.join(&path),
        body,
        token,
    };
    let answer = match client::send(call) {
        Ok(answer) => answer,
        Err(CallError::Local(message)) => return Err(Failure::Usage(message)),
        Err(CallError::Unreachable(reason)) => return Err(Failure::Unreachable { target, reason }),
    };
    if !answer.status.is_success() {
        return Err(server_error(&answer, sent_token));
    }
    let output = if args.json {
        let mut text = String::from_utf8_lossy(&answer.body).into_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    } else {
        table(&args.command, &answer, &target)?
    };
    // A closed pipe (`sluice ctl state | head -1`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    Ok(())
}

/// Method, path and JSON body of each command; weight pairs are checked here, before anything is sent.
fn request(command: &CtlCommand) -> Result<(Method, String, Option<Value>), Failure> {
    Ok(match command {
        CtlCommand::State => (Method::GET, "/api/v1/state".to_owned(), None),
        CtlCommand::Weights { route, pairs } => {
            let body = weights::parse_pairs(pairs).map_err(Failure::Usage)?;
            (
                Method::PUT,
                format!("/api/v1/routes/{}/weights", segment(route)),
                Some(body),
            )
        }
        CtlCommand::Drain { upstream, addr } => (Method::POST, server_path(upstream, addr, "drain"), None),
        CtlCommand::Enable { upstream, addr } => (Method::POST, server_path(upstream, addr, "enable"), None),
        CtlCommand::Reload => (Method::POST, "/api/v1/reload".to_owned(), None),
        CtlCommand::Events { limit: Some(n) } => (Method::GET, format!("/api/v1/events?limit={n}"), None),
        CtlCommand::Events { limit: None } => (Method::GET, "/api/v1/events".to_owned(), None),
        CtlCommand::Rollout {
            action,
            route,
            revision,
        } => rollout_request(*action, route, revision.as_deref())?,
    })
}

fn rollout_request(
    action: RolloutAction,
    route: &str,
    revision: Option<&str>,
) -> Result<(Method, String, Option<Value>), Failure> {
    let path = format!("/api/v1/routes/{}/rollout", segment(route));
    if revision.is_some() && action != RolloutAction::Start {
        return Err(Failure::Usage(format!(
            "--revision goes with `rollout start`, not `rollout {}`",
            action.as_str()
        )));
    }
    Ok(match action {
        RolloutAction::Status => (Method::GET, path, None),
        RolloutAction::Start => (
            Method::POST,
            format!("{path}/start"),
            revision.map(|r| json!({ "revision": r })),
        ),
        other => (Method::POST, format!("{path}/{}", other.as_str()), None),
    })
}

fn server_path(upstream: &str, addr: &str, action: &str) -> String {
    format!(
        "/api/v1/upstreams/{}/servers/{}/{action}",
        segment(upstream),
        segment(addr)
    )
}

fn table(command: &CtlCommand, answer: &Answer, target: &Target) -> Result<String, Failure> {
    let json: Value = serde_json::from_slice(&answer.body).map_err(|err| {
        Failure::BadAnswer(format!(
            "{} answered {} but not with JSON ({err}): {}",
            target.url,
            answer.status,
            excerpt(&answer.body)
        ))
    })?;
    let rendered = match command {
        CtlCommand::State => render::state(&json),
        CtlCommand::Weights { .. } => render::weights(&json),
        CtlCommand::Drain { .. } | CtlCommand::Enable { .. } => render::server(&json),
        CtlCommand::Reload => render::reload(&json),
        CtlCommand::Events { .. } => render::events(&json),
        CtlCommand::Rollout { .. } => render::rollout(&json),
    };
    rendered.map_err(|err| Failure::BadAnswer(format!("unexpected answer from {}: {err}", target.url)))
}

/// A non-2xx answer: the server's `{"error": "..."}` message, else the start of its body, else the status' reason.
fn server_error(answer: &Answer, sent_token: bool) -> Failure {
    let message = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| Some(excerpt(&answer.body)).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "(no message)".to_owned());
    let hint = (answer.status == StatusCode::UNAUTHORIZED && !sent_token).then_some(
        "no token was sent; pass --token-file PATH, set SLUICE_ADMIN_TOKEN, or --config FILE with `[admin] token_file`",
    );
    Failure::Server {
        status: answer.status,
        message,
        hint,
    }
}

/// The first line of a body, at most 200 characters, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.trim().lines().next().unwrap_or("");
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn message(failure: Failure) -> (StatusCode, String, Option<&'static str>) {
        match failure {
            Failure::Server { status, message, hint } => (status, message, hint),
            other => panic!("expected a server error, got {other:?}"),
        }
    }

    #[test]
    fn server_error_uses_the_error_field() {
        let (status, msg, hint) = message(server_error(&answer(404, r#"{"error": "unknown route `x`"}"#), true));
        assert_eq!(
            format!("sluice ctl: {status}: {msg}"),
            "sluice ctl: 404 Not Found: unknown route `x`"
        );
        assert_eq!(hint, None);
    }

    #[test]
    fn server_error_falls_back_to_body_then_reason() {
        assert_eq!(
            message(server_error(&answer(502, "bad gateway\nmore"), true)).1,
            "bad gateway"
        );
        assert_eq!(message(server_error(&answer(500, ""), true)).1, "(no message)");
    }

    #[test]
    fn unauthorized_without_token_hints_where_tokens_come_from() {
        let (_, _, hint) = message(server_error(
            &answer(401, r#"{"error": "missing bearer token"}"#),
            false,
        ));
        assert!(hint.is_some_and(|h| h.contains("SLUICE_ADMIN_TOKEN")));
        assert_eq!(message(server_error(&answer(401, "{}"), true)).2, None);
    }

    #[test]
    fn requests_follow_the_api_contract() {
        let path = |c: CtlCommand| {
            let (method, path, body) = request(&c).unwrap();
            (method, path, body.map(|b| b.to_string()))
        };
        assert_eq!(path(CtlCommand::State), (Method::GET, "/api/v1/state".into(), None));
        assert_eq!(
            path(CtlCommand::Weights {
                route: "web".into(),
                pairs: vec!["blue=80".into(), "canary=20".into()]
            }),
            (
                Method::PUT,
                "/api/v1/routes/web/weights".into(),
                Some(r#"{"blue":80,"canary":20}"#.into())
            )
        );
        assert_eq!(
            path(CtlCommand::Drain {
                upstream: "blue".into(),
                addr: "[::1]:9101".into()
            }),
            (
                Method::POST,
                "/api/v1/upstreams/blue/servers/%5B::1%5D:9101/drain".into(),
                None
            )
        );
        assert_eq!(
            path(CtlCommand::Enable {
                upstream: "blue".into(),
                addr: "127.0.0.1:9101".into()
            }),
            (
                Method::POST,
                "/api/v1/upstreams/blue/servers/127.0.0.1:9101/enable".into(),
                None
            )
        );
        assert_eq!(path(CtlCommand::Reload), (Method::POST, "/api/v1/reload".into(), None));
        assert_eq!(
            path(CtlCommand::Events { limit: Some(5) }),
            (Method::GET, "/api/v1/events?limit=5".into(), None)
        );
        assert_eq!(
            path(CtlCommand::Events { limit: None }),
            (Method::GET, "/api/v1/events".into(), None)
        );
    }

    #[test]
    fn rollout_requests_follow_the_api_contract() {
        let path = |action, revision: Option<&str>| {
            let c = CtlCommand::Rollout {
                action,
                route: "web".into(),
                revision: revision.map(str::to_owned),
            };
            let (method, path, body) = request(&c).unwrap();
            (method, path, body.map(|b| b.to_string()))
        };
        assert_eq!(
            path(RolloutAction::Status, None),
            (Method::GET, "/api/v1/routes/web/rollout".into(), None)
        );
        assert_eq!(
            path(RolloutAction::Start, None),
            (Method::POST, "/api/v1/routes/web/rollout/start".into(), None)
        );
        assert_eq!(
            path(RolloutAction::Start, Some("build-7")),
            (
                Method::POST,
                "/api/v1/routes/web/rollout/start".into(),
                Some(r#"{"revision":"build-7"}"#.into())
            )
        );
        for (action, word) in [
            (RolloutAction::Pause, "pause"),
            (RolloutAction::Resume, "resume"),
            (RolloutAction::Promote, "promote"),
            (RolloutAction::Abort, "abort"),
        ] {
            assert_eq!(
                path(action, None),
                (Method::POST, format!("/api/v1/routes/web/rollout/{word}"), None)
            );
        }
        let misplaced = CtlCommand::Rollout {
            action: RolloutAction::Abort,
            route: "web".into(),
            revision: Some("x".into()),
        };
        match request(&misplaced) {
            Err(Failure::Usage(m)) => assert!(m.contains("--revision goes with `rollout start`"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rollout_command_line_parses() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            ctl: CtlArgs,
        }
        let cli = Cli::try_parse_from(["ctl", "rollout", "start", "web", "--revision", "b7", "--json"]).unwrap();
        assert!(cli.ctl.json);
        match cli.ctl.command {
            CtlCommand::Rollout {
                action,
                route,
                revision,
            } => assert_eq!(
                (action, route.as_str(), revision.as_deref()),
                (RolloutAction::Start, "web", Some("b7"))
            ),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["ctl", "rollout", "restart", "web"]).is_err());
        assert!(
            Cli::try_parse_from(["ctl", "rollout", "status"]).is_err(),
            "the route is required"
        );
    }

    #[test]
    fn bad_pairs_are_usage_errors_before_sending() {
        let c = CtlCommand::Weights {
            route: "web".into(),
            pairs: vec!["canary=abc".into()],
        };
        match request(&c) {
            Err(Failure::Usage(m)) => assert!(m.contains("weight for `canary` must be a non-negative integer")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exit_statuses_and_messages() {
        let target = resolve_admin(None, None).unwrap();
        let unreachable = Failure::Unreachable {
            target,
            reason: "tcp connect error: Connection refused".into(),
        };
        assert_eq!(
            describe(&unreachable),
            (
                2,
                "sluice ctl: cannot reach the admin API at http://127.0.0.1:9901 (the default; use --admin or \
                 --config): tcp connect error: Connection refused\n"
                    .to_owned()
            )
        );
        let config = resolve_admin(Some("http://10.0.0.1:9901"), None).unwrap();
        let (code, text) = describe(&Failure::Unreachable {
            target: config,
            reason: "no answer within 10 s".into(),
        });
        assert_eq!(
            (code, text.as_str()),
            (
                2,
                "sluice ctl: cannot reach the admin API at http://10.0.0.1:9901 (from --admin): no answer within 10 s\n"
            )
        );
        let server = server_error(&answer(422, r#"{"error": "sluice.toml:3:1: bad"}"#), true);
        assert_eq!(
            describe(&server),
            (
                1,
                "sluice ctl: 422 Unprocessable Entity: sluice.toml:3:1: bad\n".to_owned()
            )
        );
        assert_eq!(describe(&Failure::Usage("x".into())).0, 64);
    }
}
