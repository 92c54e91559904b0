//! `[routes.rollout]`, `[routes.rollout.analysis]` and `[[routes.rollout.webhooks]]`: one check per rule, each error
//! pointing at the offending text.

use std::ops::{Bound, RangeBounds};
use std::time::Duration;

use toml::Spanned;

use crate::document::{Document, nearest};
use crate::error::ConfigError;
use crate::file::{AnalysisFile, RolloutFile, WebhookFile};
use crate::key_path::{child, index};
use crate::model::Weight;
use crate::rollout::{AnalysisSettings, Rollout, Strategy, Webhook, WebhookKind};

/// `steps` when the file does not say.
const DEFAULT_STEPS: [u32; 5] = [5, 10, 25, 50, 100];
/// `interval` when the file does not say.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// `failure_threshold` when the file does not say.
const DEFAULT_FAILURE_THRESHOLD: u32 = 2;
/// `min_requests` when the file does not say.
const DEFAULT_MIN_REQUESTS: u64 = 200;
/// `progress_deadline` when the file does not say.
const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(10 * 60);
/// A webhook's `timeout` when the file does not say.
const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// The names `strategy` takes, for suggestions.
const STRATEGIES: [&str; 2] = ["canary", "blue_green"];
/// Every webhook kind, in the order the gates are met.
const WEBHOOK_KINDS: [WebhookKind; 5] = [
    WebhookKind::PreRollout,
    WebhookKind::PreStep,
    WebhookKind::ConfirmPromotion,
    WebhookKind::PostRollout,
    WebhookKind::Rollback,
];
/// A webhook URL to copy from.
const URL_EXAMPLE: &str = "e.g. \"http://127.0.0.1:9000/hooks/pre\"";

impl Document<'_> {
    /// `routes[i].rollout` of a route whose validated weights are `weights`; keys left out take their defaults.
    pub(super) fn rollout(
        &self,
        route_key: &str,
        rollout: &Spanned<RolloutFile>,
        weights: &[Weight],
    ) -> Result<Rollout, ConfigError> {
        let key = child(route_key, "rollout");
        let file = rollout.get_ref();
        let strategy = self.strategy(&key, file.strategy.as_ref())?;

        let stable = self.version(&key, "stable", rollout, file.stable.as_ref(), weights)?;
        let canary = self.version(&key, "canary", rollout, file.canary.as_ref(), weights)?;
        if canary == stable {
            let others: Vec<&str> = weights
                .iter()
                .map(|w| w.upstream.as_str())
                .filter(|&name| name != stable)
                .collect();
            let choose = if others.is_empty() {
                "add the new version to the route's `weights` (with weight 0 until the rollout starts)".to_owned()
            } else {
                format!("name another upstream of the route's weights: {}", others.join(", "))
            };
            let message = format!("`{canary}` is also the stable version; the canary is the new version, so {choose}");
            let span = file.canary.as_ref().map_or(rollout.span(), Spanned::span);
            return Err(self.error(span, child(&key, "canary"), message));
        }

        let steps = self.steps(&key, strategy, file.steps.as_ref())?;
        let interval = self.duration(&key, "interval", &file.interval, DEFAULT_INTERVAL)?;
        let failure_threshold = self.integer(
            &key,
            "failure_threshold",
            file.failure_threshold.as_ref(),
            DEFAULT_FAILURE_THRESHOLD,
            (1, i64::from(u32::MAX)),
            "use at least 1 (consecutive failed analyses that roll back), e.g. 2",
        )?;
        let min_requests = self.integer(
            &key,
            "min_requests",
            file.min_requests.as_ref(),
            DEFAULT_MIN_REQUESTS,
            (1, i64::MAX),
            "use at least 1 (requests per version per interval below which an analysis is inconclusive), e.g. 200",
        )?;
        let progress_deadline = self.duration(
            &key,
            "progress_deadline",
            &file.progress_deadline,
            DEFAULT_PROGRESS_DEADLINE,
        )?;
        if progress_deadline < interval {
            // Blame the key the operator wrote: the deadline if given, else the interval that outgrows the default.
            let error = match &file.progress_deadline {
                Some(written) => self.error(
                    written.span(),
                    child(&key, "progress_deadline"),
                    format!(
                        "progress_deadline {progress_deadline:?} is shorter than the interval {interval:?}, so the \
                         rollout would fail before its first analysis; use at least the interval, e.g. ten intervals"
                    ),
                ),
                // The defaults agree, so the interval was written.
                None => self.error(
                    file.interval.as_ref().map_or(rollout.span(), Spanned::span),
                    child(&key, "interval"),
                    format!(
                        "interval {interval:?} is longer than the default progress_deadline {progress_deadline:?}; \
                         use an interval of at most {progress_deadline:?}, or set `progress_deadline` to at least \
                         the interval"
                    ),
                ),
            };
            return Err(error);
        }

        let revision = match &file.revision {
            None => None,
            Some(text) if text.get_ref().trim().is_empty() => {
                let message = "an empty revision; leave `revision` out, or give the build being rolled out, e.g. \
                               \"build-1234\" (a new value on reload starts a new rollout)";
                return Err(self.error(text.span(), child(&key, "revision"), message));
            }
            Some(text) => Some(text.get_ref().clone()),
        };
        let analysis = self.analysis(&key, &file.analysis)?;
        let webhooks = self.webhooks(&key, file.webhooks.as_ref())?;
        Ok(Rollout {
            strategy,
            stable,
            canary,
            steps,
            interval,
            failure_threshold,
            min_requests,
            progress_deadline,
            analysis,
            webhooks,
            revision,
        })
    }

    /// `rollout.strategy`; canary when left out.
    fn strategy(&self, key: &str, strategy: Option<&Spanned<String>>) -> Result<Strategy, ConfigError> {
        let Some(text) = strategy else {
            return Ok(Strategy::Canary);
        };
        match text.get_ref().as_str() {
            "canary" => Ok(Strategy::Canary),
            "blue_green" => Ok(Strategy::BlueGreen),
            other => {
                let mut message = format!("unknown strategy `{other}`; ");
                if let Some(near) = nearest(other, &STRATEGIES) {
                    message.push_str(&format!("did you mean `{near}`? "));
                }
                message.push_str(
                    "use \"canary\" (the canary's share grows step by step) or \"blue_green\" (one switch from 0 % \
                     to 100 %)",
                );
                Err(self.error(text.span(), child(key, "strategy"), message))
            }
        }
    }

    /// `rollout.stable` or `rollout.canary`: required, and one of the route's weighted upstreams.
    fn version(
        &self,
        key: &str,
        name: &str,
        rollout: &Spanned<RolloutFile>,
        value: Option<&Spanned<String>>,
        weights: &[Weight],
    ) -> Result<String, ConfigError> {
        let names: Vec<&str> = weights.iter().map(|w| w.upstream.as_str()).collect();
        let Some(value) = value else {
            let role = if name == "stable" {
                "the version serving users now"
            } else {
                "the new version"
            };
            // The route's weights are validated non-empty; "blue" only keeps this total.
            let example = names
                .get(usize::from(name != "stable"))
                .or(names.first())
                .unwrap_or(&"blue");
            let message = format!(
                "missing `{name}`: {role}, one of the route's weights ({}), e.g. `{name} = \"{example}\"`",
                names.join(", ")
            );
            return Err(self.error(rollout.span(), child(key, name), message));
        };
        let text = value.get_ref();
        if names.contains(&text.as_str()) {
            return Ok(text.clone());
        }
        let mut message = format!("`{text}` is not in the route's weights; ");
        if let Some(near) = nearest(text, &names) {
            message.push_str(&format!("did you mean `{near}`? "));
        }
        message.push_str(&format!(
            "the weights name: {} (a version the route does not weigh yet goes into `weights` with weight 0)",
            names.join(", ")
        ));
        Err(self.error(value.span(), child(key, name), message))
    }

    /// `rollout.steps`: canary steps increase from 1 to 100 and end at 100; blue-green only counts them.
    fn steps(
        &self,
        key: &str,
        strategy: Strategy,
        steps: Option<&Spanned<Vec<Spanned<i64>>>>,
    ) -> Result<Vec<u32>, ConfigError> {
        let steps_key = child(key, "steps");
        let Some(steps) = steps else {
            return Ok(DEFAULT_STEPS.to_vec());
        };
        let list = steps.get_ref();
        let Some(last) = list.last() else {
            let message = match strategy {
                Strategy::Canary => {
                    "no steps; list the canary's share of traffic at each step in percent, ending \
                                     at 100, e.g. [5, 10, 25, 50, 100], or leave `steps` out for that default"
                }
                Strategy::BlueGreen => {
                    "no steps; for blue_green the number of steps is the number of analyses \
                                        after the switch, e.g. [5, 10, 25, 50, 100] for five, or leave `steps` out"
                }
            };
            return Err(self.error(steps.span(), steps_key, message));
        };
        let (range, valid) = match strategy {
            Strategy::Canary => (
                (1, 100),
                "each step is the canary's share of traffic in percent, from 1 to 100",
            ),
            Strategy::BlueGreen => (
                (0, i64::from(u32::MAX)),
                "for blue_green only the number of steps counts (analyses after the switch); use non-negative \
                 integers, e.g. [5, 10, 25, 50, 100]",
            ),
        };
        let mut out: Vec<u32> = Vec::with_capacity(list.len());
        for (i, step) in list.iter().enumerate() {
            let step_key = index(&steps_key, i);
            let number = *step.get_ref();
            let value = match u32::try_from(number) {
                Ok(value) if (range.0..=range.1).contains(&number) => value,
                _ => {
                    let size = if number < range.0 { "too small" } else { "too large" };
                    return Err(self.error(step.span(), step_key, format!("{number} is {size}; {valid}")));
                }
            };
            // Not a let chain: the workspace's rust-version is 1.85.
            if let (Strategy::Canary, Some(&before)) = (strategy, out.last().filter(|&&before| value <= before)) {
                let message = format!(
                    "step {value} is not above the step before it ({before}); the canary's share must grow at each \
                     step, e.g. [5, 10, 25, 50, 100]"
                );
                return Err(self.error(step.span(), step_key, message));
            }
            out.push(value);
        }
        if strategy == Strategy::Canary && *last.get_ref() != 100 {
            let message = format!(
                "the last step is {}; a canary rollout ends with all traffic on the canary, so end the steps with \
                 100, e.g. [5, 10, 25, 50, 100]",
                last.get_ref()
            );
            return Err(self.error(last.span(), index(&steps_key, list.len() - 1), message));
        }
        Ok(out)
    }

    /// `rollout.analysis`; keys left out (or the whole table) take [`AnalysisSettings::default`].
    fn analysis(&self, rollout_key: &str, file: &AnalysisFile) -> Result<AnalysisSettings, ConfigError> {
        let key = child(rollout_key, "analysis");
        let defaults = AnalysisSettings::default();
        let max_error_rate = self.number(
            &key,
            "max_error_rate",
            file.max_error_rate.as_ref(),
            defaults.max_error_rate,
            (Bound::Excluded(0.0), Bound::Excluded(1.0)),
            "use a fraction greater than 0 and less than 1 (0.05 fails a canary answering more than 5 % errors), \
             e.g. 0.05",
        )?;
        let max_error_rate_increase = self.number(
            &key,
            "max_error_rate_increase",
            file.max_error_rate_increase.as_ref(),
            defaults.max_error_rate_increase,
            (Bound::Included(0.0), Bound::Excluded(1.0)),
            "use a fraction of at least 0 and less than 1 (how far the canary's error rate may exceed the stable's; \
             0.01 is one percentage point), e.g. 0.01",
        )?;
        let max_latency_p99 =
            self.duration(&key, "max_latency_p99", &file.max_latency_p99, defaults.max_latency_p99)?;
        let max_latency_ratio = self.number(
            &key,
            "max_latency_ratio",
            file.max_latency_ratio.as_ref(),
            defaults.max_latency_ratio,
            (Bound::Included(1.0), Bound::Excluded(f64::INFINITY)),
            "use a finite number of at least 1.0 (1.2 lets the canary be 20 % slower than the stable), e.g. 1.2",
        )?;
        let confidence = self.number(
            &key,
            "confidence",
            file.confidence.as_ref(),
            defaults.confidence,
            (Bound::Included(0.5), Bound::Excluded(1.0)),
            "use at least 0.5 and less than 1 (the statistical tests' confidence), e.g. 0.99",
        )?;
        Ok(AnalysisSettings {
            max_error_rate,
            max_error_rate_increase,
            max_latency_p99,
            max_latency_ratio,
            confidence,
        })
    }

    /// The number at `table_key.name` within `range`, or `default` when the key is left out; `valid` says what to
    /// write instead. NaN is in no range.
    pub(super) fn number(
        &self,
        table_key: &str,
        name: &str,
        value: Option<&Spanned<f64>>,
        default: f64,
        range: (Bound<f64>, Bound<f64>),
        valid: &str,
    ) -> Result<f64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let number = *value.get_ref();
        if range.contains(&number) {
            return Ok(number);
        }
        let problem = if number.is_nan() {
            "is not a number"
        } else if (Bound::Unbounded, range.1).contains(&number) {
            // Below the upper bound, so it failed the lower one.
            "is too small"
        } else {
            "is too large"
        };
        let message = format!("{number} {problem}; {valid}");
        Err(self.error(value.span(), child(table_key, name), message))
    }

    /// `rollout.webhooks`, in file order.
    fn webhooks(
        &self,
        rollout_key: &str,
        webhooks: Option<&Spanned<Vec<Spanned<WebhookFile>>>>,
    ) -> Result<Vec<Webhook>, ConfigError> {
        let Some(webhooks) = webhooks else {
            return Ok(Vec::new());
        };
        let list_key = child(rollout_key, "webhooks");
        webhooks
            .get_ref()
            .iter()
            .enumerate()
            .map(|(i, hook)| self.webhook(&index(&list_key, i), hook))
            .collect()
    }

    fn webhook(&self, key: &str, hook: &Spanned<WebhookFile>) -> Result<Webhook, ConfigError> {
        let file = hook.get_ref();
        let names: Vec<&str> = WEBHOOK_KINDS.iter().map(|k| k.as_str()).collect();
        let Some(kind_text) = &file.kind else {
            let message = format!(
                "missing `kind`: the gate that calls the hook, one of {}, e.g. `kind = \"pre-rollout\"`",
                names.join(", ")
            );
            return Err(self.error(hook.span(), child(key, "kind"), message));
        };
        let Some(kind) = WebhookKind::parse(kind_text.get_ref()) else {
            let mut message = format!("unknown webhook kind `{}`; ", kind_text.get_ref());
            if let Some(near) = nearest(kind_text.get_ref(), &names) {
                message.push_str(&format!("did you mean `{near}`? "));
            }
            message.push_str(&format!("kinds: {}", names.join(", ")));
            return Err(self.error(kind_text.span(), child(key, "kind"), message));
        };
        let Some(url) = &file.url else {
            let message = format!("missing `url`: where the hook is POSTed, {URL_EXAMPLE}");
            return Err(self.error(hook.span(), child(key, "url"), message));
        };
        check_url(url.get_ref()).map_err(|message| self.error(url.span(), child(key, "url"), message))?;
        let timeout = self.duration(key, "timeout", &file.timeout, DEFAULT_WEBHOOK_TIMEOUT)?;
        Ok(Webhook {
            kind,
            url: url.get_ref().clone(),
            timeout,
        })
    }
}

/// Checks a webhook URL: `http://host[:port][/path]`, the host as for an upstream server, port 80 by default.
fn check_url(text: &str) -> Result<(), String> {
    let form = format!("use http://host[:port][/path], {URL_EXAMPLE}");
    let scheme = text.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    let rest = match (scheme.as_deref(), text.get(7..)) {
        (Some("http"), Some(rest)) => rest,
        (Some("https"), _) => {
            return Err(format!(
                "`{text}`: https is not supported for webhooks yet; serve the hook over http (e.g. on localhost or \
                 through a sidecar), {URL_EXAMPLE}"
            ));
        }
        (Some(scheme), _) => return Err(format!("`{text}` has scheme `{scheme}`; {form}")),
        (None, _) => return Err(format!("`{text}` has no `http://`; {form}")),
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(format!("`{text}` has no host; {form}"));
    }
    if authority.contains('@') {
        return Err(format!(
            "`{text}` carries credentials (`user@`); sluice sends none, so put the host alone; {form}"
        ));
    }
    let has_port = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.contains("]:"),
        None => authority.contains(':'),
    };
    let server = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    if crate::address::parse_server(&server).is_err() {
        return Err(format!(
            "`{text}`: `{authority}` is not a host with an optional port from 1 to 65535 (an IPv4 address, a DNS \
             name, or an IPv6 address in brackets); {form}"
        ));
    }
    if !path.is_empty() && !path.starts_with('/') {
        return Err(format!("`{text}`: the path must start with `/`; {form}"));
    }
    if let Some(c) = path.chars().find(|&c| !c.is_ascii_graphic() || c == '#') {
        return Err(format!(
            "`{text}`: the path cannot be sent in a request line as written ({c:?}); percent-encode spaces and \
             non-ASCII characters (a space is %20) and leave out any `#fragment`"
        ));
    }
    Ok(())
}
