//! `[routes.sticky]` and `[[routes.match]]`: one test per rule, each checking the key path and the line.

use super::*;
use crate::sticky::{MatchRule, MatchValue, PinKeyFiles, SessionKey, Sticky, StickyMode};

/// The base file with `extra` appended to the route `web`.
fn with(extra: &str) -> String {
    file(&[LISTEN, UPSTREAMS, ROUTE, extra])
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A config file in a temporary directory beside the files in `keys`; returns the load result and the directory.
fn load_with_keys(extra: &str, keys: &[(&str, &[u8])]) -> (Result<Config, ConfigError>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, bytes) in keys {
        std::fs::write(dir.path().join(name), bytes).expect("write key");
    }
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, with(extra)).expect("write config");
    (Config::load(&path), dir)
}

#[test]
fn sticky_defaults_are_bucket_24h_route_name_salt_and_the_sluice_id_cookie() {
    let config = accepted(&with("[routes.sticky]\n"));
    assert_eq!(
        config.routes[0].sticky,
        Some(Sticky {
            mode: StickyMode::Bucket,
            key: None,
            cookie_max_age: Duration::from_secs(86_400),
            salt: "web".into(),
        })
    );
    assert_eq!(config.routes[0].matches, vec![]);
    assert_eq!(accepted(&with("")).routes[0].sticky, None);
}

#[test]
fn sticky_keys_parse() {
    let text = with(
        "[routes.sticky]\nmode = \"bucket\"\nkey = \"header:X-User-Id\"\ncookie_max_age = \"1h30m\"\nsalt = \"s1\"\n",
    );
    let sticky = accepted(&text).routes[0].sticky.clone().expect("sticky");
    assert_eq!(sticky.key, Some(SessionKey::Header("x-user-id".into())));
    assert_eq!(sticky.cookie_max_age, Duration::from_secs(5_400));
    assert_eq!(sticky.salt, "s1");
    for (key, want) in [
        ("cookie:session", SessionKey::Cookie("session".into())),
        ("query:uid", SessionKey::Query("uid".into())),
    ] {
        let text = with(&format!("[routes.sticky]\nkey = \"{key}\"\n"));
        assert_eq!(
            accepted(&text).routes[0].sticky.clone().expect("sticky").key,
            Some(want)
        );
        assert_eq!(SessionKey::Cookie("session".into()).to_string(), "cookie:session");
    }
}

#[test]
fn sticky_mode_is_bucket_or_pin() {
    let text = with("[routes.sticky]\nmode = \"hash\"\n");
    let message = rejected(&text, "routes[0].sticky.mode", "mode = \"hash\"");
    assert!(
        message.contains("\"bucket\"") && message.contains("\"pin\""),
        "{message}"
    );
}

#[test]
fn sticky_key_has_a_kind_and_a_valid_name() {
    for (bad, says) in [
        ("x-user-id", "has no kind"),
        ("body:uid", "unknown kind `body`"),
        ("header:", "empty name"),
        ("header:x user", "not a header name"),
        ("cookie:a;b", "not a cookie name"),
        ("query:a&b", "not a query parameter name"),
    ] {
        let text = with(&format!("[routes.sticky]\nkey = \"{bad}\"\n"));
        let message = rejected(&text, "routes[0].sticky.key", "key =");
        assert!(message.contains(says), "{bad}: {message}");
    }
}

#[test]
fn sticky_cookie_max_age_is_a_duration_of_at_least_a_second() {
    let text = with("[routes.sticky]\ncookie_max_age = \"1 day\"\n");
    rejected(&text, "routes[0].sticky.cookie_max_age", "cookie_max_age");
    let text = with("[routes.sticky]\ncookie_max_age = \"500ms\"\n");
    let message = rejected(&text, "routes[0].sticky.cookie_max_age", "cookie_max_age");
    assert!(message.contains("at least \"1s\""), "{message}");
    let text = with("[routes.sticky]\ncookie_max_age = 3600\n");
    let message = rejected(&text, "routes[0].sticky.cookie_max_age", "cookie_max_age");
    assert!(message.contains("duration string"), "{message}");
}

#[test]
fn sticky_salt_is_not_empty() {
    let text = with("[routes.sticky]\nsalt = \"\"\n");
    rejected(&text, "routes[0].sticky.salt", "salt =");
}

#[test]
fn sticky_unknown_key_suggests_the_nearest() {
    let text = with("[routes.sticky]\ncookie_maxage = \"1h\"\n");
    let message = rejected(&text, "routes[0].sticky.cookie_maxage", "cookie_maxage");
    assert!(message.contains("did you mean `cookie_max_age`?"), "{message}");
}

#[test]
fn pin_mode_reads_its_key_files_relative_to_the_config() {
    let extra = "[routes.sticky]\nmode = \"pin\"\npin_key_file = \"pin.key\"\npin_previous_key_file = \"old.key\"\n";
    let old = b"fedcba9876543210fedcba9876543210xyz";
    let mut padded = b"  ".to_vec();
    padded.extend_from_slice(KEY);
    padded.extend_from_slice(b"\n");
    let (config, dir) = load_with_keys(extra, &[("pin.key", &padded), ("old.key", old)]);
    let sticky = config.expect("valid").routes[0].sticky.clone().expect("sticky");
    assert_eq!(
        sticky.mode,
        StickyMode::Pin(PinKeyFiles {
            key_file: dir.path().join("pin.key"),
            key: KEY.to_vec(),
            previous_key_file: Some(dir.path().join("old.key")),
            previous_key: Some(old.to_vec()),
        })
    );
    let shown = format!("{:?}", sticky.mode);
    assert!(shown.contains("<redacted>") && !shown.contains("48, 49"), "{shown}");
}

#[test]
fn pin_mode_needs_a_key_file() {
    let text = with("[routes.sticky]\nmode = \"pin\"\n");
    let message = rejected(&text, "routes[0].sticky.pin_key_file", "mode = \"pin\"");
    assert!(message.contains("pin_key_file = \"pin.key\""), "{message}");
}

#[test]
fn pin_key_file_must_be_readable_and_named_in_the_error() {
    let extra = "[routes.sticky]\nmode = \"pin\"\npin_key_file = \"missing.key\"\n";
    let (config, dir) = load_with_keys(extra, &[]);
    let err = config.expect_err("missing key file");
    assert_eq!(err.key_path(), Some("routes[0].sticky.pin_key_file"));
    assert_eq!(
        err.location().expect("located").line,
        line_of(&with(extra), "pin_key_file")
    );
    assert!(
        err.to_string()
            .contains(&dir.path().join("missing.key").display().to_string()),
        "{err}"
    );
}

#[test]
fn pin_key_is_at_least_32_bytes_after_trimming() {
    let extra = "[routes.sticky]\nmode = \"pin\"\npin_key_file = \"pin.key\"\n";
    let (config, _dir) = load_with_keys(extra, &[("pin.key", b"  short key, 31 bytes long.......\n")]);
    let err = config.expect_err("short key");
    assert_eq!(err.key_path(), Some("routes[0].sticky.pin_key_file"));
    assert_eq!(
        err.location().expect("located").line,
        line_of(&with(extra), "pin_key_file")
    );
    assert!(err.to_string().contains("holds 31 bytes"), "{err}");

    let extra = "[routes.sticky]\nmode = \"pin\"\npin_key_file = \"pin.key\"\npin_previous_key_file = \"old.key\"\n";
    let (config, _dir) = load_with_keys(extra, &[("pin.key", KEY), ("old.key", b"")]);
    let err = config.expect_err("empty previous key");
    assert_eq!(err.key_path(), Some("routes[0].sticky.pin_previous_key_file"));
}

#[test]
fn pin_settings_only_in_pin_mode_and_bucket_settings_only_in_bucket_mode() {
    let text = with("[routes.sticky]\npin_key_file = \"pin.key\"\n");
    let message = rejected(&text, "routes[0].sticky.pin_key_file", "pin_key_file");
    assert!(message.contains("mode = \"pin\""), "{message}");
    let text = with("[routes.sticky]\nmode = \"bucket\"\npin_previous_key_file = \"old.key\"\n");
    rejected(&text, "routes[0].sticky.pin_previous_key_file", "pin_previous_key_file");
    for (key, line) in [("key", "key = \"header:x-user-id\""), ("salt", "salt = \"s\"")] {
        let text = with(&format!(
            "[routes.sticky]\nmode = \"pin\"\n{line}\npin_key_file = \"pin.key\"\n"
        ));
        let message = rejected(&text, &format!("routes[0].sticky.{key}"), line);
        assert!(message.contains("only applies in bucket mode"), "{message}");
    }
}

#[test]
fn match_rules_parse_in_file_order() {
    let text = with(
        "[[routes.match]]\nheader = { name = \"X-Canary\", value = \"always\" }\nversion = \"canary\"\n\n\
         [[routes.match]]\ncookie = { name = \"tier\", regex = \"^(alpha|beta)$\" }\nversion = \"blue\"\n\n\
         [[routes.match]]\nquery = { name = \"track\", value = \"preview\" }\nversion = \"canary\"\n",
    );
    assert_eq!(
        accepted(&text).routes[0].matches,
        vec![
            MatchRule {
                on: SessionKey::Header("x-canary".into()),
                value: MatchValue::Exact("always".into()),
                version: "canary".into(),
            },
            MatchRule {
                on: SessionKey::Cookie("tier".into()),
                value: MatchValue::Regex("^(alpha|beta)$".into()),
                version: "blue".into(),
            },
            MatchRule {
                on: SessionKey::Query("track".into()),
                value: MatchValue::Exact("preview".into()),
                version: "canary".into(),
            },
        ]
    );
}

#[test]
fn match_version_may_be_an_upstream_outside_the_weights() {
    let text = file(&[
        LISTEN,
        UPSTREAMS,
        "[upstreams.green]\nservers = [\"127.0.0.1:9104\"]\n",
        ROUTE,
        "[[routes.match]]\nheader = { name = \"x-green\", value = \"1\" }\nversion = \"green\"\n",
    ]);
    assert_eq!(accepted(&text).routes[0].matches[0].version, "green");
}

#[test]
fn match_version_is_an_existing_upstream() {
    let text = with("[[routes.match]]\nheader = { name = \"x\", value = \"1\" }\nversion = \"canry\"\n");
    let message = rejected(&text, "routes[0].match[0].version", "version = \"canry\"");
    assert!(message.contains("did you mean `canary`?"), "{message}");
    let text = with("[[routes.match]]\nheader = { name = \"x\", value = \"1\" }\n");
    rejected(&text, "routes[0].match[0].version", "[[routes.match]]");
}

#[test]
fn match_needs_exactly_one_of_header_cookie_query() {
    let text = with("[[routes.match]]\nversion = \"canary\"\n");
    let message = rejected(&text, "routes[0].match[0]", "[[routes.match]]");
    assert!(message.contains("one of `header`, `cookie` or `query`"), "{message}");
    let text = with(
        "[[routes.match]]\nheader = { name = \"x\", value = \"1\" }\nquery = { name = \"q\", value = \"1\" }\n\
         version = \"canary\"\n",
    );
    let message = rejected(&text, "routes[0].match[0].query", "query =");
    assert!(message.contains("both `header` and `query`"), "{message}");
}

#[test]
fn match_condition_needs_a_valid_name() {
    let text = with("[[routes.match]]\nheader = { value = \"1\" }\nversion = \"canary\"\n");
    rejected(&text, "routes[0].match[0].header.name", "header =");
    let text = with("[[routes.match]]\ncookie = { name = \"a b\", value = \"1\" }\nversion = \"canary\"\n");
    let message = rejected(&text, "routes[0].match[0].cookie.name", "cookie =");
    assert!(message.contains("not a cookie name"), "{message}");
}

#[test]
fn match_condition_has_value_or_regex_not_both_not_empty() {
    let text = with("[[routes.match]]\nheader = { name = \"x\" }\nversion = \"canary\"\n");
    rejected(&text, "routes[0].match[0].header.value", "header =");
    let text =
        with("[[routes.match]]\nheader = { name = \"x\", value = \"1\", regex = \"1\" }\nversion = \"canary\"\n");
    rejected(&text, "routes[0].match[0].header.regex", "header =");
    let text = with("[[routes.match]]\nheader = { name = \"x\", value = \"\" }\nversion = \"canary\"\n");
    let message = rejected(&text, "routes[0].match[0].header.value", "header =");
    assert!(message.contains("never matches"), "{message}");
}

#[test]
fn match_regex_is_checked_at_load() {
    let text = with(
        "[[routes.match]]\nheader = { name = \"x\", value = \"1\" }\nversion = \"canary\"\n\n\
         [[routes.match]]\nquery = { name = \"q\", regex = \"(alpha|beta\" }\nversion = \"canary\"\n",
    );
    let message = rejected(&text, "routes[0].match[1].query.regex", "regex =");
    assert!(message.starts_with("invalid regex: "), "{message}");
}

#[test]
fn match_unknown_key_suggests_the_nearest() {
    let text = with("[[routes.match]]\nheadr = { name = \"x\", value = \"1\" }\nversion = \"canary\"\n");
    let message = rejected(&text, "routes[0].match[0].headr", "headr");
    assert!(message.contains("did you mean `header`?"), "{message}");
    let text = with("[[routes.match]]\nheader = { name = \"x\", valu = \"1\" }\nversion = \"canary\"\n");
    let message = rejected(&text, "routes[0].match[0].header.valu", "header =");
    assert!(message.contains("did you mean `value`?"), "{message}");
}

#[test]
fn sticky_example_file_parses() {
    let config = accepted(include_str!("../../../../examples/sticky.toml"));
    let web = &config.routes[0];
    let sticky = web.sticky.clone().expect("sticky");
    assert_eq!(sticky.mode, StickyMode::Bucket);
    assert_eq!(sticky.key, Some(SessionKey::Header("x-user-id".into())));
    assert_eq!(web.matches[0].version, "canary");
}
