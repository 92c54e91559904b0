//! Names and addresses as written in the file: upstream servers, route host patterns, and sluice's own names.
//!
//! Each parser returns a message saying what would be valid; `validate.rs` adds the location.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::model::{HostPattern, ServerAddr};

/// Checks a route or upstream name against `[a-z0-9_-]+`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if name.is_empty() {
        Err("name is empty; use lower-case letters, digits, `_` and `-`".to_owned())
    } else if let Some(bad) = name.chars().find(|&c| !valid(c)) {
        Err(format!(
            "name `{name}` contains {bad:?}; use only lower-case letters, digits, `_` and `-`"
        ))
    } else {
        Ok(())
    }
}

/// Parses a listener address: an IP literal and a port, where port 0 asks the OS for one.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "`{text}` is not a socket address; use IP:port, e.g. \"127.0.0.1:8080\", \"0.0.0.0:80\" or \"[::1]:8080\""
        )
    })
}

/// Parses an upstream server as `host:port`, with IPv6 literals in brackets.
pub(crate) fn parse_server(text: &str) -> Result<ServerAddr, String> {
    let form = "use host:port, e.g. \"127.0.0.1:9101\", \"app.internal:80\" or \"[::1]:9101\"";
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((inside, port)) = bracketed.split_once("]:") else {
            return Err(format!("`{text}` has no port after the bracketed IPv6 address; {form}"));
        };
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("`{inside}` is not an IPv6 address; {form}"))?;
        // Normalised so that `[::0001]` and `[::1]` count as the same server.
        (ip.to_string(), port)
    } else {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("`{text}` has no port; {form}"));
        };
        if host.contains(':') {
            return Err(format!("`{text}` looks like an IPv6 address without brackets; {form}"));
        }
        let host = host.to_ascii_lowercase();
        if host.parse::<IpAddr>().is_err() {
            check_dns_name(&host).map_err(|why| format!("`{text}`: {why}; {form}"))?;
        }
        (host, port)
    };
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(ServerAddr { host, port }),
        _ => Err(format!(
            "`{text}` has port `{port}`; a port is a number from 1 to 65535"
        )),
    }
}

/// Parses a route host pattern: `*`, an exact DNS name, or `*.suffix`. Names are lower-cased.
pub(crate) fn parse_host_pattern(text: &str) -> Result<HostPattern, String> {
    let form = "use \"*\", an exact name like \"example.com\", or \"*.example.com\"";
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    let lower = text.to_ascii_lowercase();
    if let Some(suffix) = lower.strip_prefix("*.") {
        return match check_dns_name(suffix) {
            Ok(()) => Ok(HostPattern::Suffix(format!(".{suffix}"))),
            Err(why) => Err(format!("`{text}`: {why}; {form}")),
        };
    }
    if lower.contains('*') {
        return Err(format!(
            "`{text}` uses `*` other than as \"*\" or a leading \"*.\"; {form}"
        ));
    }
    if lower.contains(':') {
        return Err(format!(
            "`{text}` has a port; routes match the host without its port; {form}"
        ));
    }
    check_dns_name(&lower).map_err(|why| format!("`{text}`: {why}; {form}"))?;
    Ok(HostPattern::Exact(lower))
}

/// Checks a lower-cased DNS name: dot-separated labels of letters, digits, `-` and `_`, each 1–63 long.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty host name".to_owned());
    }
    if name.len() > 253 {
        return Err("host name longer than 253 characters".to_owned());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label in host name (leading, trailing or doubled `.`)".to_owned());
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        // Underscores are not valid in host names, but container and service-discovery names use them.
        if let Some(bad) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(format!("{bad:?} is not allowed in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, port: u16) -> ServerAddr {
        ServerAddr {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn names() {
        assert!(check_name("canary_2-b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("Blue").is_err());
        assert!(check_name("a.b").is_err());
    }

    #[test]
    fn servers() {
        assert_eq!(parse_server("127.0.0.1:9101"), Ok(server("127.0.0.1", 9101)));
        assert_eq!(parse_server("App.Internal:80"), Ok(server("app.internal", 80)));
        assert_eq!(parse_server("[::0001]:9101"), Ok(server("::1", 9101)));
        assert!(parse_server("127.0.0.1").is_err());
        assert!(parse_server("127.0.0.1:0").is_err());
        assert!(parse_server("127.0.0.1:65536").is_err());
        assert!(parse_server("::1:9101").is_err());
        assert!(parse_server("[::1]").is_err());
        assert!(parse_server("[nope]:80").is_err());
        assert!(parse_server("bad host:80").is_err());
        assert!(parse_server(":80").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert!(parse_listen("127.0.0.1:0").is_ok());
        assert!(parse_listen("[::1]:8080").is_ok());
        assert!(parse_listen("localhost:8080").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
    }

    #[test]
    fn host_patterns() {
        assert_eq!(parse_host_pattern("*"), Ok(HostPattern::Any));
        assert_eq!(
            parse_host_pattern("Example.COM"),
            Ok(HostPattern::Exact("example.com".into()))
        );
        assert_eq!(
            parse_host_pattern("*.Example.com"),
            Ok(HostPattern::Suffix(".example.com".into()))
        );
        for bad in [
            "*example.com",
            "a.*.com",
            "example.*",
            "**",
            "*.",
            "example.com:8080",
            "exa mple.com",
            "",
        ] {
            assert!(parse_host_pattern(bad).is_err(), "{bad} should be rejected");
        }
    }
}
