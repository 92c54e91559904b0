//! Where `sluice ctl` sends its requests, and which bearer token it sends with them.
//!
//! Pure resolution rules (flag, environment, config file, default) kept apart from any I/O so they can be tested.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use sluice_config::Config;

/// The admin API address when neither `--admin` nor a config file with `[admin]` says otherwise.
pub(super) const DEFAULT_ADMIN: &str = "http://127.0.0.1:9901";

/// Environment variable holding the bearer token itself (not a path).
pub(super) const TOKEN_ENV: &str = "SLUICE_ADMIN_TOKEN";

/// A validated `http://host[:port]` base URL, kept without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AdminUrl {
    base: String,
}

impl AdminUrl {
    /// Accepts `http://host:port` (an optional trailing `/`, the port defaulting to 80) and nothing else.
    pub(super) fn parse(text: &str) -> Result<AdminUrl, String> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "admin URL `{text}` has no scheme; write it as `http://{text}`, e.g. `{DEFAULT_ADMIN}`"
            ));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err(format!(
                "admin URL `{text}`: https is not supported; the admin API speaks plain HTTP, use `http://{rest}`"
            ));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!(
                "admin URL `{text}`: scheme `{scheme}` is not supported; use `http://host:port`"
            ));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(format!("admin URL `{text}` has no host; use `http://host:port`"));
        }
        if let Some(extra) = authority.find(['/', '?', '#']).map(|i| &authority[i..]) {
            return Err(format!(
                "admin URL `{text}`: `{extra}` is not allowed; give only `http://host:port`, sluice ctl adds the \
                 API paths itself"
            ));
        }
        if authority.contains('@') {
            return Err(format!(
                "admin URL `{text}`: user info is not supported; pass a token with --token-file"
            ));
        }
        let uri: http::Uri = format!("http://{authority}/")
            .parse()
            .map_err(|err| format!("admin URL `{text}` is not a valid URL: {err}"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("admin URL `{text}` has no host; use `http://host:port`"));
        }
        // `http::Uri` accepts any characters after the host's `:`; the port is checked here.
        let after_host = authority.rsplit_once(']').map_or(authority, |(_, rest)| rest);
        if let Some((_, port)) = after_host.rsplit_once(':') {
            match port.parse::<u16>() {
                _ if port.is_empty() => {
                    return Err(format!("admin URL `{text}` has an empty port; use `http://host:port`"));
                }
                Ok(0) => return Err(format!("admin URL `{text}`: port 0 cannot be connected to")),
                Ok(_) if port.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => return Err(format!("admin URL `{text}`: `{port}` is not a port number (1-65535)")),
            }
        }
        Ok(AdminUrl {
            base: format!("http://{authority}"),
        })
    }

    /// The URL to reach a listener bound to `listen`; a wildcard address (`0.0.0.0`, `[::]`) is reached via loopback.
    pub(super) fn from_listen(listen: SocketAddr) -> AdminUrl {
        let ip = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        AdminUrl {
            base: format!("http://{}", SocketAddr::new(ip, listen.port())),
        }
    }

    /// The full URL of `path_and_query`, which must start with `/`.
    pub(super) fn join(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }
}

impl fmt::Display for AdminUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

/// The admin URL and why it was chosen (the reason goes into "cannot reach" messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) url: AdminUrl,
    pub(super) origin: Origin,
}

/// Where the admin URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// `--admin URL`.
    Flag,
    /// The `[admin] listen` of this config file.
    Config(PathBuf),
    /// The built-in default; the path is a config file given without an `[admin]` section.
    Default { config_without_admin: Option<PathBuf> },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("from --admin"),
            Origin::Config(path) => write!(f, "[admin] listen in {}", path.display()),
            Origin::Default {
                config_without_admin: None,
            } => f.write_str("the default; use --admin or --config"),
            Origin::Default {
                config_without_admin: Some(path),
            } => {
                write!(f, "the default, as {} has no [admin] section", path.display())
            }
        }
    }
}

/// `--admin` wins; then `[admin] listen` of the `--config` file; then [`DEFAULT_ADMIN`].
pub(super) fn resolve_admin(flag: Option<&str>, config: Option<(&Path, &Config)>) -> Result<Target, String> {
    if let Some(text) = flag {
        return Ok(Target {
            url: AdminUrl::parse(text)?,
            origin: Origin::Flag,
        });
    }
    match config {
        Some((path, Config { admin: Some(admin), .. })) => Ok(Target {
            url: AdminUrl::from_listen(admin.listen),
            origin: Origin::Config(path.to_owned()),
        }),
        Some((path, _)) => Ok(Target {
            url: AdminUrl::parse(DEFAULT_ADMIN)?,
            origin: Origin::Default {
                config_without_admin: Some(path.to_owned()),
            },
        }),
        None => Ok(Target {
            url: AdminUrl::parse(DEFAULT_ADMIN)?,
            origin: Origin::Default {
                config_without_admin: None,
            },
        }),
    }
}

/// Where the bearer token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenSource {
    /// A file named by `--token-file` or by the config's `[admin] token_file`.
    File(PathBuf),
    /// The value of [`TOKEN_ENV`].
    Env(String),
}

/// `--token-file` wins; then a non-empty `SLUICE_ADMIN_TOKEN`; then the `--config` file's `[admin] token_file`.
pub(super) fn resolve_token(flag: Option<&Path>, env: Option<String>, config: Option<&Config>) -> Option<TokenSource> {
    if let Some(path) = flag {
        return Some(TokenSource::File(path.to_owned()));
    }
    if let Some(token) = env.filter(|t| !t.trim().is_empty()) {
        return Some(TokenSource::Env(token.trim().to_owned()));
    }
    config
        .and_then(|c| c.admin.as_ref())
        .and_then(|a| a.token_file.clone())
        .map(TokenSource::File)
}

/// Reads the token a source names: a file's content without surrounding whitespace, never empty.
pub(super) fn read_token(source: &TokenSource) -> Result<String, String> {
    match source {
        TokenSource::Env(token) => Ok(token.clone()),
        TokenSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("cannot read the token file {}: {err}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!("the token file {} is empty", path.display()));
            }
            Ok(token.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(text, Some(Path::new("/etc/sluice/sluice.toml"))).unwrap()
    }

    const BASE: &str = r#"
        [listen]
        http = ["127.0.0.1:8080"]
        [upstreams.blue]
        servers = ["127.0.0.1:9101"]
        [[routes]]
        name = "web"
        weights = { blue = 100 }
    "#;

    fn with_admin(admin: &str) -> Config {
        config(&format!("{BASE}\n[admin]\n{admin}\n"))
    }

    #[test]
    fn admin_url_accepts_http_host_port() {
        for (text, base) in [
            ("http://127.0.0.1:9901", "http://127.0.0.1:9901"),
            ("http://127.0.0.1:9901/", "http://127.0.0.1:9901"),
            ("HTTP://admin.internal:80", "http://admin.internal:80"),
            ("http://[::1]:9901", "http://[::1]:9901"),
            ("http://localhost", "http://localhost"),
        ] {
            assert_eq!(AdminUrl::parse(text).unwrap().to_string(), base, "{text}");
        }
        let url = AdminUrl::parse("http://127.0.0.1:9901/").unwrap();
        assert_eq!(url.join("/api/v1/state"), "http://127.0.0.1:9901/api/v1/state");
    }

    #[test]
    fn admin_url_refuses_everything_else_and_says_why() {
        for (text, expected) in [
            ("https://127.0.0.1:9901", "https is not supported"),
            ("127.0.0.1:9901", "write it as `http://127.0.0.1:9901`"),
            ("ftp://host:21", "scheme `ftp` is not supported"),
            ("http://", "has no host"),
            ("http://127.0.0.1:9901/admin", "`/admin` is not allowed"),
            ("http://127.0.0.1:9901?x=1", "`?x=1` is not allowed"),
            ("http://user@127.0.0.1:9901", "user info is not supported"),
            ("http://127.0.0.1:notaport", "`notaport` is not a port number"),
            ("http://127.0.0.1:70000", "`70000` is not a port number"),
            ("http://bad host:80", "not a valid URL"),
            ("http://127.0.0.1:", "empty port"),
            ("http://127.0.0.1:0", "port 0"),
        ] {
            let err = AdminUrl::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn wildcard_listen_is_reached_through_loopback() {
        let url = |s: &str| AdminUrl::from_listen(s.parse().unwrap()).to_string();
        assert_eq!(url("0.0.0.0:9901"), "http://127.0.0.1:9901");
        assert_eq!(url("[::]:9901"), "http://[::1]:9901");
        assert_eq!(url("10.0.0.5:9901"), "http://10.0.0.5:9901");
    }

    #[test]
    fn admin_flag_wins_over_config() {
        let c = with_admin(r#"listen = "127.0.0.1:7000""#);
        let target = resolve_admin(Some("http://10.1.2.3:9000"), Some((Path::new("s.toml"), &c))).unwrap();
        assert_eq!(target.url.to_string(), "http://10.1.2.3:9000");
        assert_eq!(target.origin, Origin::Flag);
    }

    #[test]
    fn config_admin_listen_is_used_without_flag() {
        let c = with_admin(r#"listen = "127.0.0.1:7000""#);
        let target = resolve_admin(None, Some((Path::new("s.toml"), &c))).unwrap();
        assert_eq!(target.url.to_string(), "http://127.0.0.1:7000");
        assert_eq!(target.origin, Origin::Config("s.toml".into()));
    }

    #[test]
    fn default_without_flag_or_admin_section() {
        let c = config(BASE);
        let target = resolve_admin(None, Some((Path::new("s.toml"), &c))).unwrap();
        assert_eq!(target.url.to_string(), DEFAULT_ADMIN);
        assert_eq!(
            target.origin,
            Origin::Default {
                config_without_admin: Some("s.toml".into())
            }
        );
        assert!(target.origin.to_string().contains("s.toml has no [admin] section"));

        let target = resolve_admin(None, None).unwrap();
        assert_eq!(target.url.to_string(), DEFAULT_ADMIN);
        assert_eq!(
            target.origin,
            Origin::Default {
                config_without_admin: None
            }
        );
    }

    #[test]
    fn bad_admin_flag_is_an_error_even_with_a_config() {
        let c = with_admin(r#"listen = "127.0.0.1:7000""#);
        assert!(resolve_admin(Some("https://x:1"), Some((Path::new("s.toml"), &c))).is_err());
    }

    #[test]
    fn token_order_flag_then_env_then_config() {
        let c = with_admin("listen = \"127.0.0.1:7000\"\ntoken_file = \"admin.token\"");
        let from_config = TokenSource::File("/etc/sluice/admin.token".into());
        let flag = Path::new("/run/flag.token");
        let env = || Some("s3cret".to_owned());

        assert_eq!(
            resolve_token(Some(flag), env(), Some(&c)),
            Some(TokenSource::File(flag.into()))
        );
        assert_eq!(
            resolve_token(None, env(), Some(&c)),
            Some(TokenSource::Env("s3cret".into()))
        );
        assert_eq!(resolve_token(None, None, Some(&c)), Some(from_config.clone()));
        // An empty variable counts as unset.
        assert_eq!(resolve_token(None, Some("  ".into()), Some(&c)), Some(from_config));
        assert_eq!(resolve_token(None, None, Some(&config(BASE))), None);
        assert_eq!(resolve_token(None, None, None), None);
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "abc123\n").unwrap();
        assert_eq!(read_token(&TokenSource::File(path.clone())).unwrap(), "abc123");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token(&TokenSource::File(path)).unwrap_err().contains("is empty"));
        let missing = dir.path().join("missing");
        let err = read_token(&TokenSource::File(missing.clone())).unwrap_err();
        assert!(err.contains(&missing.display().to_string()), "{err}");
    }
}
