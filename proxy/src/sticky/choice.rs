//! A route's sticky settings, compiled from the config when the table is built, and the per-request choice.
//!
//! Order for one request: match rules, then the sticky mode, then (for routes without `sticky`) the smooth weighted
//! schedule. Nothing here allocates when the request carries its key; a `Set-Cookie` value is built only when a
//! cookie is issued.

use std::time::{Duration, SystemTime};

use http::HeaderValue;
use sluice_config::{MatchValue, SessionKey, StickyMode};

use super::bucket::{Layout, bucket, salt_seed};
use super::key::{KeySource, cookie_value, new_session_id, set_cookie};
use super::pin::PinKeys;
use super::rule::{Condition, MatchRule, ValueMatch};
use crate::table::RouteEntry;

/// The proxy-issued session cookie of bucket mode, used when the configured key is absent or none is configured.
pub(crate) const SESSION_COOKIE: &str = "sluice_id";

/// The pin cookie of a route is `sluice_pin_<route>`, so routes pin independently.
const PIN_COOKIE_PREFIX: &str = "sluice_pin_";

/// How a route keeps a client on one version.
#[derive(Debug)]
pub(crate) struct Sticky {
    mode: Mode,
    max_age: Duration,
}

#[derive(Debug)]
enum Mode {
    Bucket {
        /// `None`: the `sluice_id` cookie is the key.
        key: Option<KeySource>,
        layout: Layout,
        seed: u64,
    },
    Pin {
        keys: PinKeys,
        /// `sluice_pin_<route>`.
        cookie: Box<str>,
    },
}

impl Sticky {
    /// Compiles `sticky` for a route whose versions have `weights` (in layout order).
    pub(crate) fn new(route: &str, sticky: &sluice_config::Sticky, weights: &[u32]) -> Result<Self, String> {
        let mode = match &sticky.mode {
            StickyMode::Bucket => Mode::Bucket {
                key: sticky
                    .key
                    .as_ref()
                    .map(|k| k.to_string().parse::<KeySource>())
                    .transpose()
                    .map_err(|e| format!("route `{route}`: {e}"))?,
                layout: Layout::new(weights),
                seed: salt_seed(&sticky.salt),
            },
            StickyMode::Pin(files) => Mode::Pin {
                keys: PinKeys::new(files.key.clone(), files.previous_key.clone()),
                cookie: format!("{PIN_COOKIE_PREFIX}{route}").into_boxed_str(),
            },
        };
        Ok(Sticky {
            mode,
            max_age: sticky.cookie_max_age,
        })
    }

    /// The version of `route` for `req`, and a `Set-Cookie` value when a cookie is issued; `None` when every weight
    /// is 0. `secure`: the request came over TLS, so the cookie gets `Secure`.
    pub(crate) fn choose<B>(
        &self,
        req: &http::Request<B>,
        route: &RouteEntry,
        secure: bool,
    ) -> Option<(usize, Option<HeaderValue>)> {
        match &self.mode {
            Mode::Bucket { key, layout, seed } => {
                let found = key.as_ref().and_then(|k| k.extract(req));
                match found.or_else(|| cookie_value(req.headers(), SESSION_COOKIE)) {
                    Some(key) => layout.version_for(bucket(key, *seed)).map(|v| (v, None)),
                    None => {
                        let id = new_session_id();
                        let version = layout.version_for(bucket(id.as_bytes(), *seed))?;
                        Some((version, Some(set_cookie(SESSION_COOKIE, &id, self.max_age, secure))))
                    }
                }
            }
            Mode::Pin { keys, cookie } => {
                let now = SystemTime::now();
                let pinned = cookie_value(req.headers(), cookie).map(|value| {
                    let value = std::str::from_utf8(value).map_err(|_| super::pin::PinError::Malformed)?;
                    keys.verify(value, route.name(), now)
                });
                match pinned {
                    Some(Ok(name)) => {
                        let live = route.version_index(name).filter(|&v| route.weights[v] > 0);
                        if let Some(v) = live {
                            return Some((v, None));
                        }
                        tracing::debug!(
                            route = route.name(),
                            version = name,
                            "pinned version has no weight; re-pinning"
                        );
                    }
                    Some(Err(why)) => tracing::debug!(route = route.name(), "{why}; re-pinning"),
                    None => {}
                }
                let v = route.schedule.next()?;
                let value = keys.sign(route.name(), &route.versions[v].pool.name, now + self.max_age);
                Some((v, Some(set_cookie(cookie, &value, self.max_age, secure))))
            }
        }
    }

    /// The bucket layout, in bucket mode.
    pub(crate) fn layout(&self) -> Option<&Layout> {
        match &self.mode {
            Mode::Bucket { layout, .. } => Some(layout),
            Mode::Pin { .. } => None,
        }
    }
}

/// Compiles a config match rule; `version` is its index among the route's versions.
pub(crate) fn compile_rule(rule: &sluice_config::MatchRule, version: usize) -> Result<MatchRule, String> {
    let value = match &rule.value {
        MatchValue::Exact(text) => ValueMatch::Exact(text.clone()),
        MatchValue::Regex(pattern) => {
            ValueMatch::regex(pattern).map_err(|e| format!("match rule regex `{pattern}`: {e}"))?
        }
    };
    let cond = match &rule.on {
        SessionKey::Header(name) => Condition::Header {
            name: http::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("match rule header name `{name}` is not valid"))?,
            value,
        },
        SessionKey::Cookie(name) => Condition::Cookie {
            name: name.clone(),
            value,
        },
        SessionKey::Query(name) => Condition::Query {
            name: name.clone(),
            value,
        },
    };
    Ok(MatchRule { cond, version })
}

#[cfg(test)]
mod tests;
