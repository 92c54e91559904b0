//! Path-prefix rewrites per route (`strip_prefix`, `rewrite_prefix`), so `/api/users` can reach an upstream that
//! serves `/users` or `/v2/users`.

/// The path and query to send upstream for `path_and_query`, on a route matched by `prefix`.
///
/// - `strip`: remove `prefix` from the front of the path (the same byte prefix the router matched);
/// - `replacement`: then put this in front, with exactly one `/` at the join.
///
/// The query is kept as it is, the path never ends up empty (`/` at least) and a path that does not start with
/// `prefix` is returned unchanged. With neither `strip` nor `replacement` the input comes back as it was.
pub(crate) fn rewrite_path(path_and_query: &str, prefix: &str, strip: bool, replacement: Option<&str>) -> String {
    let (path, query) = match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    };
    let rest = match path.strip_prefix(prefix) {
        Some(rest) if strip => rest,
        Some(_) => path,
        None => return ensure_path(path_and_query),
    };
    let mut out = String::with_capacity(path_and_query.len() + replacement.map_or(0, str::len) + 1);
    match replacement {
        Some(head) if !head.is_empty() => {
            if !head.starts_with('/') {
                out.push('/');
            }
            if rest.is_empty() {
                out.push_str(head);
            } else {
                out.push_str(head.trim_end_matches('/'));
                out.push('/');
                out.push_str(rest.trim_start_matches('/'));
            }
        }
        _ => {
            if !rest.starts_with('/') {
                out.push('/');
            }
            out.push_str(rest);
        }
    }
    out.push_str(query);
    out
}

fn ensure_path(path_and_query: &str) -> String {
    if path_and_query.starts_with('/') {
        path_and_query.to_owned()
    } else {
        format!("/{path_and_query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_keeps_the_query() {
        assert_eq!(rewrite_path("/api/users?x=1", "/api", true, None), "/users?x=1");
        assert_eq!(rewrite_path("/api/users", "/api/", true, None), "/users");
        assert_eq!(rewrite_path("/api/a/b?q=/api", "/api", true, None), "/a/b?q=/api");
    }

    #[test]
    fn strip_never_leaves_an_empty_path() {
        assert_eq!(rewrite_path("/api", "/api", true, None), "/");
        assert_eq!(rewrite_path("/api?x=1", "/api", true, None), "/?x=1");
        assert_eq!(rewrite_path("/api/", "/api/", true, None), "/");
    }

    #[test]
    fn replacement_joins_with_one_slash() {
        assert_eq!(
            rewrite_path("/api/users?x=1", "/api", true, Some("/v2/")),
            "/v2/users?x=1"
        );
        assert_eq!(rewrite_path("/api/users", "/api/", true, Some("/v2/")), "/v2/users");
        assert_eq!(rewrite_path("/api/users", "/api", true, Some("/v2")), "/v2/users");
        assert_eq!(rewrite_path("/api/users", "/api", true, Some("v2")), "/v2/users");
        assert_eq!(rewrite_path("/api", "/api", true, Some("/v2/")), "/v2/");
        assert_eq!(rewrite_path("/api?x=1", "/api", true, Some("/v2")), "/v2?x=1");
        assert_eq!(rewrite_path("/api/users", "/api", true, Some("/")), "/users");
    }

    #[test]
    fn replacement_without_strip_prepends() {
        assert_eq!(
            rewrite_path("/api/users?x=1", "/api", false, Some("/v2/")),
            "/v2/api/users?x=1"
        );
    }

    #[test]
    fn no_rule_or_no_match_leaves_the_path() {
        assert_eq!(rewrite_path("/api/users?x=1", "/api", false, None), "/api/users?x=1");
        assert_eq!(rewrite_path("/other?x=1", "/api", true, Some("/v2/")), "/other?x=1");
        assert_eq!(rewrite_path("/users", "/", true, None), "/users");
        assert_eq!(rewrite_path("/users", "/", true, Some("/v2/")), "/v2/users");
    }
}
