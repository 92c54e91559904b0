//! `[routes.sticky]` and `[[routes.match]]`: one check per rule, each error pointing at the offending text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::unknown_upstream;
use crate::document::Document;
use crate::duration;
use crate::error::ConfigError;
use crate::file::{MatchFile, MatchValueFile, StickyFile};
use crate::key_path::{child, index};
use crate::model::Upstream;
use crate::sticky::{MatchRule, MatchValue, PIN_KEY_MIN_LEN, PinKeyFiles, SessionKey, Sticky, StickyMode};

/// `cookie_max_age` when the file does not say.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

impl Document<'_> {
    /// `routes[i].sticky` of the route named `route`.
    pub(super) fn sticky(
        &self,
        route_key: &str,
        route: &str,
        sticky: &Spanned<StickyFile>,
    ) -> Result<Sticky, ConfigError> {
        let key = child(route_key, "sticky");
        let file = sticky.get_ref();
        let pin = match &file.mode {
            None => false,
            Some(mode) => match mode.get_ref().as_str() {
                "bucket" => false,
                "pin" => true,
                other => {
                    let message = format!(
                        "unknown mode `{other}`; use \"bucket\" (hash a session key onto the versions) or \"pin\" \
                         (a signed cookie remembers the version)"
                    );
                    return Err(self.error(mode.span(), child(&key, "mode"), message));
                }
            },
        };

        let session_key = match &file.key {
            None => None,
            Some(_) if pin => return Err(self.only_in(&file.key, &key, "key", "bucket")),
            Some(text) => Some(
                parse_session_key(text.get_ref())
                    .map_err(|message| self.error(text.span(), child(&key, "key"), message))?,
            ),
        };

        let cookie_max_age = match &file.cookie_max_age {
            None => DEFAULT_MAX_AGE,
            Some(text) => {
                let age_key = child(&key, "cookie_max_age");
                let age = duration::parse_positive(text.get_ref())
                    .map_err(|why| self.error(text.span(), &age_key, why.to_string()))?;
                if age < Duration::from_secs(1) {
                    let message = "cookies count their Max-Age in whole seconds; use at least \"1s\", e.g. \"24h\"";
                    return Err(self.error(text.span(), age_key, message));
                }
                age
            }
        };

        let salt = match &file.salt {
            None => route.to_owned(),
            Some(_) if pin => return Err(self.only_in(&file.salt, &key, "salt", "bucket")),
            Some(text) if text.get_ref().is_empty() => {
                let message = "an empty salt; leave `salt` out to use the route's name, or give any non-empty string";
                return Err(self.error(text.span(), child(&key, "salt"), message));
            }
            Some(text) => text.get_ref().clone(),
        };

        let mode = if pin {
            let Some(key_file) = &file.pin_key_file else {
                let message = "pin mode signs its cookies: add `pin_key_file = \"pin.key\"`, a file of at least 32 \
                               random bytes (e.g. from `openssl rand -base64 48`)";
                let span = file.mode.as_ref().map_or(sticky.span(), Spanned::span);
                return Err(self.error(span, child(&key, "pin_key_file"), message));
            };
            let (key_file, pin_key) = self.pin_key(&key, "pin_key_file", key_file)?;
            let (previous_key_file, previous_key) = match &file.pin_previous_key_file {
                None => (None, None),
                Some(path) => {
                    let (path, bytes) = self.pin_key(&key, "pin_previous_key_file", path)?;
                    (Some(path), Some(bytes))
                }
            };
            StickyMode::Pin(PinKeyFiles {
                key_file,
                key: pin_key,
                previous_key_file,
                previous_key,
            })
        } else {
            for (name, value) in [
                ("pin_key_file", &file.pin_key_file),
                ("pin_previous_key_file", &file.pin_previous_key_file),
            ] {
                if value.is_some() {
                    return Err(self.only_in(value, &key, name, "pin"));
                }
            }
            StickyMode::Bucket
        };
        Ok(Sticky {
            mode,
            key: session_key,
            cookie_max_age,
            salt,
        })
    }

    /// "`name` only applies in `mode` mode", at the value of `name`.
    fn only_in(&self, value: &Option<Spanned<String>>, sticky_key: &str, name: &str, mode: &str) -> ConfigError {
        let span = value.as_ref().map_or(0..0, Spanned::span);
        let message = if mode == "pin" {
            format!("`{name}` only applies in pin mode; add `mode = \"pin\"` or remove `{name}`")
        } else {
            format!(
                "`{name}` only applies in bucket mode (pin mode assigns by weight and remembers the version in its \
                 cookie); remove `{name}` or use `mode = \"bucket\"`"
            )
        };
        self.error(span, child(sticky_key, name), message)
    }

    /// Reads a pin key file named at `sticky_key.name`, relative to the config file's directory.
    fn pin_key(&self, sticky_key: &str, name: &str, path: &Spanned<String>) -> Result<(PathBuf, Vec<u8>), ConfigError> {
        let key = child(sticky_key, name);
        if path.get_ref().trim().is_empty() {
            return Err(self.error(path.span(), key, "an empty path; give the key file's name"));
        }
        let dir = self.source.path.and_then(Path::parent).unwrap_or(Path::new(""));
        let resolved = dir.join(path.get_ref());
        let bytes = std::fs::read(&resolved).map_err(|err| {
            let message = format!("cannot read pin key file `{}`: {err}", resolved.display());
            self.error(path.span(), &key, message)
        })?;
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < PIN_KEY_MIN_LEN {
            let message = format!(
                "pin key file `{}` holds {} bytes after trimming whitespace; use at least {PIN_KEY_MIN_LEN} random \
                 bytes, e.g. `openssl rand -base64 48 > {}`",
                resolved.display(),
                trimmed.len(),
                path.get_ref()
            );
            return Err(self.error(path.span(), key, message));
        }
        Ok((resolved, trimmed.to_vec()))
    }

    /// `routes[i].match`, in file order.
    pub(super) fn matches(
        &self,
        route_key: &str,
        rules: Option<&Spanned<Vec<Spanned<MatchFile>>>>,
        upstreams: &[Upstream],
    ) -> Result<Vec<MatchRule>, ConfigError> {
        let Some(rules) = rules else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(rules.get_ref().len());
        for (i, rule) in rules.get_ref().iter().enumerate() {
            out.push(self.match_rule(&index(&child(route_key, "match"), i), rule, upstreams)?);
        }
        Ok(out)
    }

    fn match_rule(
        &self,
        key: &str,
        rule: &Spanned<MatchFile>,
        upstreams: &[Upstream],
    ) -> Result<MatchRule, ConfigError> {
        let file = rule.get_ref();
        let given: Vec<(&str, &Spanned<MatchValueFile>)> = [
            ("header", &file.header),
            ("cookie", &file.cookie),
            ("query", &file.query),
        ]
        .into_iter()
        .filter_map(|(kind, value)| value.as_ref().map(|v| (kind, v)))
        .collect();
        let (kind, condition) = match given[..] {
            [] => {
                let message = "a match rule needs one of `header`, `cookie` or `query`, e.g. \
                               `header = { name = \"x-canary\", value = \"always\" }`";
                return Err(self.error(rule.span(), key, message));
            }
            [one] => one,
            [(first, _), (second, value), ..] => {
                let message = format!(
                    "a match rule compares one thing, but this one has both `{first}` and `{second}`; split it into \
                     two `[[routes.match]]` rules"
                );
                return Err(self.error(value.span(), child(key, second), message));
            }
        };
        let cond_key = child(key, kind);
        let cond = condition.get_ref();
        let Some(name) = &cond.name else {
            let message = format!("missing `name`: which {kind} to compare, e.g. `name = \"x-canary\"`");
            return Err(self.error(condition.span(), child(&cond_key, "name"), message));
        };
        let on = parse_session_key(&format!("{kind}:{}", name.get_ref()))
            .map_err(|message| self.error(name.span(), child(&cond_key, "name"), message))?;
        let value = match (&cond.value, &cond.regex) {
            (Some(_), Some(regex)) => {
                let message = "give either `value` (exact) or `regex`, not both";
                return Err(self.error(regex.span(), child(&cond_key, "regex"), message));
            }
            (None, None) => {
                let message = "missing `value` or `regex`: e.g. `value = \"always\"` or `regex = \"^(alpha|beta)$\"`";
                return Err(self.error(condition.span(), child(&cond_key, "value"), message));
            }
            (Some(value), None) if value.get_ref().is_empty() => {
                let message = "an empty value never matches (an absent or empty value is no match); give a value";
                return Err(self.error(value.span(), child(&cond_key, "value"), message));
            }
            (Some(value), None) => MatchValue::Exact(value.get_ref().clone()),
            (None, Some(regex)) => {
                // Compiled exactly as the proxy will: anchored to the whole value, over bytes.
                if let Err(err) = regex::bytes::Regex::new(&format!("^(?:{})$", regex.get_ref())) {
                    let message = format!("invalid regex: {}", err.to_string().trim());
                    return Err(self.error(regex.span(), child(&cond_key, "regex"), message));
                }
                MatchValue::Regex(regex.get_ref().clone())
            }
        };
        let Some(version) = &file.version else {
            let message = "missing `version`: the upstream these requests go to, e.g. `version = \"canary\"`";
            return Err(self.error(rule.span(), child(key, "version"), message));
        };
        if !upstreams.iter().any(|u| u.name == *version.get_ref()) {
            let message = unknown_upstream(version.get_ref(), upstreams);
            return Err(self.error(version.span(), child(key, "version"), message));
        }
        Ok(MatchRule {
            on,
            value,
            version: version.get_ref().clone(),
        })
    }
}

/// Parses `header:NAME`, `cookie:NAME` or `query:NAME`; the message says what would be valid.
pub(crate) fn parse_session_key(text: &str) -> Result<SessionKey, String> {
    let forms = "expected \"header:NAME\", \"cookie:NAME\" or \"query:NAME\", e.g. \"header:x-user-id\"";
    let Some((kind, name)) = text.split_once(':') else {
        return Err(format!("`{text}` has no kind; {forms}"));
    };
    if name.is_empty() {
        return Err(format!("`{text}` has an empty name; {forms}"));
    }
    match kind {
        "header" if name.bytes().all(is_token_byte) => Ok(SessionKey::Header(name.to_ascii_lowercase())),
        "header" => Err(format!(
            "`{name}` is not a header name; use letters, digits and !#$%&'*+-.^_`|~, e.g. \"x-user-id\""
        )),
        "cookie" if name.bytes().all(is_token_byte) => Ok(SessionKey::Cookie(name.to_owned())),
        "cookie" => Err(format!(
            "`{name}` is not a cookie name; use letters, digits and !#$%&'*+-.^_`|~, e.g. \"session\""
        )),
        "query" if name.bytes().all(|b| b.is_ascii_graphic() && !b"&=#".contains(&b)) => {
            Ok(SessionKey::Query(name.to_owned()))
        }
        "query" => Err(format!(
            "`{name}` is not a query parameter name; use printable characters other than `&`, `=` and `#`"
        )),
        _ => Err(format!("`{text}` has an unknown kind `{kind}`; {forms}")),
    }
}

/// An RFC 9110 token character: what header and cookie names are made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
