//! Match rules: "requests with header/cookie/query X matching Y go to version V", checked before the split.

use http::header::HeaderName;

use super::key::{cookie_value, query_value};

/// Sends requests that meet `cond` to version `version` (an index into the route's versions).
#[derive(Debug, Clone)]
pub(crate) struct MatchRule {
    pub(crate) cond: Condition,
    pub(crate) version: usize,
}

/// What a rule looks at. An absent or empty value never matches.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    /// Any value of the header (there may be several) matches.
    Header { name: HeaderName, value: ValueMatch },
    /// The first non-empty cookie of the name, as sent.
    Cookie { name: String, value: ValueMatch },
    /// The first non-empty query parameter of the name, raw (not percent-decoded).
    Query { name: String, value: ValueMatch },
}

/// How a value is compared.
///
/// The regex works on bytes (`regex::bytes`), because header, cookie and query values are bytes and need not be
/// UTF-8; it must match the whole value, so build it with [`ValueMatch::regex`], which anchors it.
#[derive(Debug, Clone)]
pub(crate) enum ValueMatch {
    Exact(String),
    Regex(regex::bytes::Regex),
}

impl ValueMatch {
    /// A regex that must match the whole value: `pattern` is compiled as `^(?:pattern)$`.
    pub(crate) fn regex(pattern: &str) -> Result<Self, regex::Error> {
        regex::bytes::Regex::new(&format!("^(?:{pattern})$")).map(Self::Regex)
    }

    pub(crate) fn matches(&self, value: &[u8]) -> bool {
        match self {
            Self::Exact(want) => value == want.as_bytes(),
            Self::Regex(re) => re.is_match(value),
        }
    }
}

impl Condition {
    pub(crate) fn matches<B>(&self, req: &http::Request<B>) -> bool {
        match self {
            Self::Header { name, value } => req
                .headers()
                .get_all(name)
                .iter()
                .any(|v| !v.is_empty() && value.matches(v.as_bytes())),
            Self::Cookie { name, value } => cookie_value(req.headers(), name).is_some_and(|v| value.matches(v)),
            Self::Query { name, value } => req
                .uri()
                .query()
                .and_then(|q| query_value(q, name))
                .is_some_and(|v| value.matches(v)),
        }
    }
}

/// The version of the first rule that `req` meets, in order. Allocation-free.
pub(crate) fn first_match<B>(rules: &[MatchRule], req: &http::Request<B>) -> Option<usize> {
    rules.iter().find(|r| r.cond.matches(req)).map(|r| r.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::builder().uri(uri);
        for &(n, v) in headers {
            b = b.header(n, v);
        }
        b.body(()).unwrap()
    }

    fn exact(s: &str) -> ValueMatch {
        ValueMatch::Exact(s.to_owned())
    }

    fn header(name: &'static str, value: ValueMatch, version: usize) -> MatchRule {
        MatchRule {
            cond: Condition::Header {
                name: HeaderName::from_static(name),
                value,
            },
            version,
        }
    }

    #[test]
    fn header_exact() {
        let rules = [header("x-beta", exact("yes"), 1)];
        assert_eq!(first_match(&rules, &req("/", &[("x-beta", "yes")])), Some(1));
        assert_eq!(first_match(&rules, &req("/", &[("x-beta", "YES")])), None);
        assert_eq!(first_match(&rules, &req("/", &[("x-beta", "yes!")])), None);
        // Any of several values.
        assert_eq!(
            first_match(&rules, &req("/", &[("x-beta", "no"), ("x-beta", "yes")])),
            Some(1)
        );
    }

    #[test]
    fn absent_or_empty_header_never_matches() {
        let rules = [header("x-beta", ValueMatch::regex(".*").unwrap(), 1)];
        assert_eq!(first_match(&rules, &req("/", &[])), None);
        assert_eq!(first_match(&rules, &req("/", &[("x-beta", "")])), None);
        assert_eq!(first_match(&rules, &req("/", &[("x-other", "1")])), None);
    }

    #[test]
    fn regex_is_anchored_to_the_whole_value() {
        let rules = [header(
            "user-agent",
            ValueMatch::regex("Mozilla/.*Firefox/1[0-9]{2}(\\..*)?").unwrap(),
            2,
        )];
        assert_eq!(
            first_match(&rules, &req("/", &[("user-agent", "Mozilla/5.0 Firefox/128.0")])),
            Some(2)
        );
        assert_eq!(
            first_match(&rules, &req("/", &[("user-agent", "x Mozilla/5.0 Firefox/128.0")])),
            None
        );
        assert_eq!(
            first_match(&rules, &req("/", &[("user-agent", "Mozilla/5.0 Firefox/99.0")])),
            None
        );
        // An alternation is anchored as a whole, not just its first branch.
        let alt = ValueMatch::regex("a|ab").unwrap();
        assert!(alt.matches(b"ab") && alt.matches(b"a") && !alt.matches(b"abc") && !alt.matches(b"xa"));
    }

    #[test]
    fn regex_matches_non_utf8_values() {
        let v = ValueMatch::regex("(?-u)team-.").unwrap();
        assert!(v.matches(b"team-\xff"));
        assert!(ValueMatch::regex("(").is_err());
    }

    #[test]
    fn cookie_rule() {
        let rules = [MatchRule {
            cond: Condition::Cookie {
                name: "tier".into(),
                value: exact("gold"),
            },
            version: 1,
        }];
        assert_eq!(first_match(&rules, &req("/", &[("cookie", "a=1; tier=gold")])), Some(1));
        assert_eq!(first_match(&rules, &req("/", &[("cookie", "tier=silver")])), None);
        assert_eq!(first_match(&rules, &req("/", &[("x-tier", "gold")])), None);
    }

    #[test]
    fn query_rule() {
        let value = ValueMatch::regex("canary|preview").unwrap();
        let rules = [MatchRule {
            cond: Condition::Query {
                name: "track".into(),
                value,
            },
            version: 2,
        }];
        assert_eq!(first_match(&rules, &req("/p?x=1&track=preview", &[])), Some(2));
        assert_eq!(first_match(&rules, &req("/p?track=stable", &[])), None);
        assert_eq!(first_match(&rules, &req("/p", &[])), None);
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = [
            header("x-beta", exact("yes"), 1),
            header("x-internal", exact("1"), 2),
            header("x-beta", ValueMatch::regex(".+").unwrap(), 0),
        ];
        let both = req("/", &[("x-beta", "yes"), ("x-internal", "1")]);
        assert_eq!(first_match(&rules, &both), Some(1));
        assert_eq!(first_match(&rules, &req("/", &[("x-internal", "1")])), Some(2));
        assert_eq!(first_match(&rules, &req("/", &[("x-beta", "no")])), Some(0));
        assert_eq!(first_match(&[], &both), None);
    }
}
