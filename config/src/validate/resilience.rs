//! `[upstreams.NAME.health]`, `[upstreams.NAME.outlier]`, `fallback`, `[routes.retry]` and `[limits]`: one check per
//! rule, each error pointing at the offending text.

use std::time::Duration;

use toml::Spanned;

use super::unknown_upstream;
use crate::document::Document;
use crate::duration;
use crate::error::ConfigError;
use crate::file::{HealthFile, LimitsFile, OutlierFile, RetryFile};
use crate::key_path::child;
use crate::model::Upstream;
use crate::resilience::{HealthCheck, Limits, OutlierDetection, RetryPolicy};

/// The largest `retry.attempts`: more would multiply the load a failing version sees.
const MAX_RETRY_ATTEMPTS: i64 = 3;
/// Bounds of `limits.max_header_bytes`: 1 KiB to 1 MiB.
const HEADER_BYTES: (i64, i64) = (1024, 1024 * 1024);

impl Document<'_> {
    /// `upstreams.NAME.health`, present in the file; keys left out take [`HealthCheck::default`].
    pub(super) fn health(&self, upstream_key: &str, health: &Spanned<HealthFile>) -> Result<HealthCheck, ConfigError> {
        let key = child(upstream_key, "health");
        let file = health.get_ref();
        let defaults = HealthCheck::default();

        let path = match &file.path {
            None => defaults.path,
            Some(path) => {
                let text = path.get_ref();
                let problem = if !text.starts_with('/') {
                    "must start with `/`".to_owned()
                } else if let Some(c) = text.chars().find(|&c| !c.is_ascii_graphic() || c == '#') {
                    format!(
                        "cannot be sent in a request line as written ({c:?}); percent-encode spaces and non-ASCII \
                         characters (a space is %20) and leave out any `#fragment`"
                    )
                } else {
                    String::new()
                };
                if !problem.is_empty() {
                    let message = format!("`{text}` {problem}; e.g. \"/healthz\"");
                    return Err(self.error(path.span(), child(&key, "path"), message));
                }
                text.clone()
            }
        };

        let interval = self.duration(&key, "interval", &file.interval, defaults.interval)?;
        let timeout = self.duration(&key, "timeout", &file.timeout, defaults.timeout)?;
        if timeout > interval {
            // Blame the key the operator wrote: the timeout if given, else the interval that undercuts the default.
            let error = match &file.timeout {
                Some(written) => self.error(
                    written.span(),
                    child(&key, "timeout"),
                    format!(
                        "timeout {timeout:?} is longer than the interval {interval:?}, so one check would still be \
                         running when the next starts; use a timeout of at most the interval"
                    ),
                ),
                // The defaults agree, so the interval was written.
                None => self.error(
                    file.interval.as_ref().map_or(health.span(), Spanned::span),
                    child(&key, "interval"),
                    format!(
                        "interval {interval:?} is shorter than the default timeout {timeout:?}; use an interval of at \
                         least {timeout:?}, or set `timeout` to at most the interval"
                    ),
                ),
            };
            return Err(error);
        }

        let healthy = self.integer(
            &key,
            "healthy",
            file.healthy.as_ref(),
            defaults.healthy,
            (1, i64::from(u32::MAX)),
            "use at least 1 (consecutive passing checks that bring a down server back), e.g. 2",
        )?;
        let unhealthy = self.integer(
            &key,
            "unhealthy",
            file.unhealthy.as_ref(),
            defaults.unhealthy,
            (1, i64::from(u32::MAX)),
            "use at least 1 (consecutive failed checks that take a server down), e.g. 3",
        )?;
        Ok(HealthCheck {
            path,
            interval,
            timeout,
            healthy,
            unhealthy,
        })
    }

    /// `upstreams.NAME.outlier`; keys left out (or the whole table) take [`OutlierDetection::default`].
    pub(super) fn outlier(&self, upstream_key: &str, file: &OutlierFile) -> Result<OutlierDetection, ConfigError> {
        let key = child(upstream_key, "outlier");
        let defaults = OutlierDetection::default();
        let consecutive_failures = self.integer(
            &key,
            "consecutive_failures",
            file.consecutive_failures.as_ref(),
            defaults.consecutive_failures,
            (1, i64::from(u32::MAX)),
            "use at least 1 (consecutive upstream failures that eject a server), e.g. 5",
        )?;
        let base_ejection = self.duration(&key, "base_ejection", &file.base_ejection, defaults.base_ejection)?;
        let max_ejection = self.duration(&key, "max_ejection", &file.max_ejection, defaults.max_ejection)?;
        if max_ejection < base_ejection {
            let error = match &file.max_ejection {
                Some(written) => self.error(
                    written.span(),
                    child(&key, "max_ejection"),
                    format!(
                        "max_ejection {max_ejection:?} is shorter than base_ejection {base_ejection:?}; use at least \
                         base_ejection (the first ejection lasts base_ejection, each one after it in a row twice as \
                         long, up to max_ejection)"
                    ),
                ),
                // The defaults agree, so base_ejection was written.
                None => self.error(
                    file.base_ejection.as_ref().map_or(0..0, Spanned::span),
                    child(&key, "base_ejection"),
                    format!(
                        "base_ejection {base_ejection:?} is longer than the default max_ejection {max_ejection:?}; \
                         use at most {max_ejection:?}, or set `max_ejection` to at least base_ejection"
                    ),
                ),
            };
            return Err(error);
        }
        let max_ejected_percent = self.integer(
            &key,
            "max_ejected_percent",
            file.max_ejected_percent.as_ref(),
            defaults.max_ejected_percent,
            (0, 100),
            "use 0 to 100 (the share of the upstream's servers that may be ejected at once), e.g. 50",
        )?;
        Ok(OutlierDetection {
            consecutive_failures,
            base_ejection,
            max_ejection,
            max_ejected_percent,
        })
    }

    /// `routes[i].fallback`: any existing upstream, whether or not the route's `weights` name it.
    pub(super) fn fallback(
        &self,
        route_key: &str,
        fallback: Option<&Spanned<String>>,
        upstreams: &[Upstream],
    ) -> Result<Option<String>, ConfigError> {
        let Some(name) = fallback else {
            return Ok(None);
        };
        if !upstreams.iter().any(|u| u.name == *name.get_ref()) {
            let message = unknown_upstream(name.get_ref(), upstreams);
            return Err(self.error(name.span(), child(route_key, "fallback"), message));
        }
        Ok(Some(name.get_ref().clone()))
    }

    /// `routes[i].retry`; keys left out (or the whole table) take [`RetryPolicy::default`].
    pub(super) fn retry(&self, route_key: &str, file: &RetryFile) -> Result<RetryPolicy, ConfigError> {
        let key = child(route_key, "retry");
        let defaults = RetryPolicy::default();
        let attempts = self.integer(
            &key,
            "attempts",
            file.attempts.as_ref(),
            defaults.attempts,
            (0, MAX_RETRY_ATTEMPTS),
            "use 0 to 3 (extra attempts on another server of the same version; 0 turns retries off), e.g. 1",
        )?;
        let budget_percent = self.integer(
            &key,
            "budget_percent",
            file.budget_percent.as_ref(),
            defaults.budget_percent,
            (0, 100),
            "use 0 to 100 (the extra load retries may add, in percent of the route's requests), e.g. 20",
        )?;
        Ok(RetryPolicy {
            attempts,
            budget_percent,
        })
    }

    /// `[limits]`; keys left out (or the whole table) take [`Limits::default`].
    pub(super) fn limits(&self, file: &LimitsFile) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        let header_timeout = self.duration(
            "limits",
            "header_timeout",
            &file.header_timeout,
            defaults.header_timeout,
        )?;
        let max_header_bytes = self.integer(
            "limits",
            "max_header_bytes",
            file.max_header_bytes.as_ref(),
            defaults.max_header_bytes,
            HEADER_BYTES,
            "use 1024 to 1048576 (1 KiB to 1 MiB), e.g. 65536",
        )?;
        let max_body_bytes = file
            .max_body_bytes
            .as_ref()
            .map(|value| {
                self.bounded(
                    "limits",
                    "max_body_bytes",
                    value,
                    (1, i64::MAX),
                    "use at least 1, e.g. 10485760 (10 MiB), or leave `max_body_bytes` out for no limit",
                )
            })
            .transpose()?;
        Ok(Limits {
            header_timeout,
            max_header_bytes,
            max_body_bytes,
        })
    }

    /// The positive duration at `table_key.name`, or `default` when the key is left out.
    pub(super) fn duration(
        &self,
        table_key: &str,
        name: &str,
        text: &Option<Spanned<String>>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match text {
            None => Ok(default),
            Some(text) => duration::parse_positive(text.get_ref())
                .map_err(|why| self.error(text.span(), child(table_key, name), why.to_string())),
        }
    }

    /// The integer at `table_key.name` within `min..=max`, or `default` when the key is left out; `valid` says
    /// what to write instead.
    pub(super) fn integer<T: TryFrom<i64>>(
        &self,
        table_key: &str,
        name: &str,
        value: Option<&Spanned<i64>>,
        default: T,
        (min, max): (i64, i64),
        valid: &str,
    ) -> Result<T, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => self.bounded(table_key, name, value, (min, max), valid),
        }
    }

    /// The integer at `table_key.name`, which must be within `min..=max`; `valid` says what to write instead.
    pub(super) fn bounded<T: TryFrom<i64>>(
        &self,
        table_key: &str,
        name: &str,
        value: &Spanned<i64>,
        (min, max): (i64, i64),
        valid: &str,
    ) -> Result<T, ConfigError> {
        let number = *value.get_ref();
        match T::try_from(number) {
            Ok(converted) if (min..=max).contains(&number) => Ok(converted),
            _ => {
                let size = if number < min { "too small" } else { "too large" };
                let message = format!("{number} is {size}; {valid}");
                Err(self.error(value.span(), child(table_key, name), message))
            }
        }
    }
}
