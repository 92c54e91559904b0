//! What a run measured: a latency histogram in microseconds, counts by status, error kind and tally value,
//! late sends; mergeable, and subtractable to get the figures of one interval.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::ErrorKind;

/// Largest latency the histogram tells apart, in microseconds (one hour); longer ones are recorded as this.
const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the histogram: 0.1 % resolution.
const SIGNIFICANT_DIGITS: u8 = 3;

/// The figures of a run, or of part of one.
#[derive(Debug, Clone)]
pub struct Report {
    /// Requests finished: responses plus errors.
    pub requests: u64,
    /// Wall time the figures cover.
    pub duration: Duration,
    /// Latency of every response, in microseconds, to the end of its body. Closed loop: from the actual send;
    /// open loop: from the intended send time. Failed requests are counted in `errors` only.
    pub latency: Histogram<u64>,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Responses by the value of the tally header; responses without it are not counted.
    pub tally: BTreeMap<String, u64>,
    /// Open loop only: sends that found every connection busy at their intended time and so went out late.
    pub late_sends: Option<u64>,
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self {
            requests: 0,
            duration: Duration::ZERO,
            latency: Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS).expect("constant bounds are valid"),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            tally: BTreeMap::new(),
            late_sends: None,
        }
    }

    /// Responses received (requests that did not fail).
    pub fn responses(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// Requests that failed.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Requests finished per second over `duration` (0 for an empty duration).
    pub fn rate(&self) -> f64 {
        let seconds = self.duration.as_secs_f64();
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    /// Latency at `quantile` (0.0–1.0) as a duration; zero when nothing was recorded.
    pub fn quantile(&self, quantile: f64) -> Duration {
        if self.latency.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latency.value_at_quantile(quantile))
    }

    /// The usual latency figures.
    pub fn latency_summary(&self) -> LatencySummary {
        let empty = self.latency.is_empty();
        let at = |q: f64| if empty { 0 } else { self.latency.value_at_quantile(q) };
        LatencySummary {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: if empty { 0 } else { self.latency.max() },
            mean: if empty { 0.0 } else { self.latency.mean() },
        }
    }

    /// Add `other`'s counts to these. Durations are not added: runs merged side by side cover the same time,
    /// so the longer one is kept.
    pub fn merge(&mut self, other: &Report) {
        self.requests += other.requests;
        self.duration = self.duration.max(other.duration);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        add_counts(&mut self.statuses, &other.statuses);
        add_counts(&mut self.errors, &other.errors);
        add_counts(&mut self.tally, &other.tally);
        self.late_sends = match (self.late_sends, other.late_sends) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }

    /// The figures of the interval between an `earlier` snapshot of the same run and this one: counts and
    /// latencies recorded since, over the time passed since.
    pub fn since(&self, earlier: &Report) -> Report {
        let mut latency = self.latency.clone();
        if latency.subtract(&earlier.latency).is_err() {
            // `earlier` is not a prefix of this run; the whole histogram is the best answer left.
            latency = self.latency.clone();
        }
        Report {
            requests: self.requests.saturating_sub(earlier.requests),
            duration: self.duration.saturating_sub(earlier.duration),
            latency,
            statuses: sub_counts(&self.statuses, &earlier.statuses),
            errors: sub_counts(&self.errors, &earlier.errors),
            tally: sub_counts(&self.tally, &earlier.tally),
            late_sends: self
                .late_sends
                .map(|late| late.saturating_sub(earlier.late_sends.unwrap_or(0))),
        }
    }

    /// The figures as printed by `--json`.
    pub fn summary(&self) -> Summary {
        Summary {
            requests: self.requests,
            responses: self.responses(),
            duration_s: self.duration.as_secs_f64(),
            rate: self.rate(),
            latency_us: self.latency_summary(),
            statuses: self.statuses.iter().map(|(code, n)| (code.to_string(), *n)).collect(),
            errors: self.errors.iter().map(|(kind, n)| (kind.as_str(), *n)).collect(),
            tally: self.tally.clone(),
            late_sends: self.late_sends,
        }
    }

    /// Record one response.
    #[cfg(test)]
    fn record_response(&mut self, status: u16, latency_us: u64, tally: Option<&str>) {
        self.requests += 1;
        self.latency.saturating_record(latency_us.max(1));
        *self.statuses.entry(status).or_default() += 1;
        if let Some(value) = tally {
            match self.tally.get_mut(value) {
                Some(count) => *count += 1,
                None => {
                    self.tally.insert(value.to_owned(), 1);
                }
            }
        }
    }

    /// Record one failed request.
    #[cfg(test)]
    fn record_error(&mut self, kind: ErrorKind) {
        self.requests += 1;
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// Latency figures in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

/// A report as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Requests finished: responses plus errors.
    pub requests: u64,
    /// Responses received.
    pub responses: u64,
    /// Seconds covered.
    pub duration_s: f64,
    /// Achieved requests per second.
    pub rate: f64,
    /// Latency figures in microseconds.
    pub latency_us: LatencySummary,
    /// Responses by status code.
    pub statuses: BTreeMap<String, u64>,
    /// Failed requests by kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Responses by tally header value.
    pub tally: BTreeMap<String, u64>,
    /// Open loop: sends that went out late because every connection was busy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_sends: Option<u64>,
}

/// Add every count of `from` to `into`.
fn add_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, count) in from {
        *into.entry(key.clone()).or_default() += count;
    }
}

/// `later` minus `earlier`, dropping keys left at zero.
fn sub_counts<K: Ord + Clone>(later: &BTreeMap<K, u64>, earlier: &BTreeMap<K, u64>) -> BTreeMap<K, u64> {
    later
        .iter()
        .filter_map(|(key, count)| {
            let left = count.saturating_sub(earlier.get(key).copied().unwrap_or(0));
            (left > 0).then(|| (key.clone(), left))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut report = Report::new();
        for ms in 1..=1000u64 {
            report.record_response(200, ms * 1000, Some("stable"));
        }
        report.record_response(503, 5_000_000, Some("canary"));
        report.record_error(ErrorKind::Timeout);
        report.duration = Duration::from_secs(2);
        report
    }

    #[test]
    fn percentiles_match_the_samples() {
        let summary = sample().latency_summary();
        // 1..=1000 ms plus one 5 s outlier: 1001 samples; 3 significant digits.
        assert!((500_000..=501_500).contains(&summary.p50), "{summary:?}");
        assert!((900_000..=901_500).contains(&summary.p90), "{summary:?}");
        assert!((990_000..=991_500).contains(&summary.p99), "{summary:?}");
        assert!((999_000..=1_001_000).contains(&summary.p999), "{summary:?}");
        assert!((4_995_000..=5_005_000).contains(&summary.max), "{summary:?}");
    }

    #[test]
    fn counts_and_json() {
        let report = sample();
        assert_eq!(report.requests, 1002);
        assert_eq!(report.responses(), 1001);
        assert_eq!(report.error_count(), 1);
        assert!((report.rate() - 501.0).abs() < 1e-9);
        let json = serde_json::to_value(report.summary()).unwrap();
        assert_eq!(json["requests"], 1002);
        assert_eq!(json["statuses"]["200"], 1000);
        assert_eq!(json["statuses"]["503"], 1);
        assert_eq!(json["errors"]["timeout"], 1);
        assert_eq!(json["tally"]["stable"], 1000);
        assert_eq!(json["tally"]["canary"], 1);
        assert!(json.get("late_sends").is_none());
        assert!(json["latency_us"]["p999"].as_u64().unwrap() >= 999_000);
    }

    #[test]
    fn merge_then_since_gives_back_the_part() {
        let first = sample();
        let mut both = first.clone();
        let mut second = Report::new();
        second.record_response(200, 42, Some("canary"));
        second.record_error(ErrorKind::Reset);
        second.late_sends = Some(3);
        second.duration = Duration::from_secs(3);
        both.merge(&second);
        assert_eq!(both.requests, 1004);
        assert_eq!(both.tally["canary"], 2);
        assert_eq!(both.late_sends, Some(3));
        assert_eq!(both.duration, Duration::from_secs(3));

        let part = both.since(&first);
        assert_eq!(part.requests, 2);
        assert_eq!(part.latency.len(), 1);
        assert_eq!(part.statuses, BTreeMap::from([(200, 1)]));
        assert_eq!(part.errors, BTreeMap::from([(ErrorKind::Reset, 1)]));
        assert_eq!(part.tally, BTreeMap::from([("canary".to_owned(), 1)]));
        assert_eq!(part.duration, Duration::from_secs(1));
    }

    #[test]
    fn empty_report_has_zeros() {
        let report = Report::new();
        assert_eq!(report.rate(), 0.0);
        assert_eq!(report.latency_summary().max, 0);
        assert_eq!(report.quantile(0.99), Duration::ZERO);
    }
}
