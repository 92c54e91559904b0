//! What the user sees: progress on stderr while running, and the summary or JSON at the end.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_loadtest::{LiveStats, LoadSpec, Mode, Protocol, Report};

/// How often progress is refreshed.
const TICK: Duration = Duration::from_secs(1);

/// Show progress until the run finishes: a bar when stderr is a terminal, a plain line a second otherwise.
pub(crate) async fn progress(live: LiveStats, spec: LoadSpec) {
    if std::io::stderr().is_terminal() {
        bar(live, &spec).await;
    } else {
        lines(live).await;
    }
}

/// An indicatif bar over the duration (or the request count), with the last second's rate and the errors.
async fn bar(live: LiveStats, spec: &LoadSpec) {
    let (length, by_time) = match (spec.duration, spec.requests) {
        (Some(duration), _) => (u64::try_from(duration.as_millis()).unwrap_or(u64::MAX), true),
        (None, Some(requests)) => (requests, false),
        (None, None) => (0, false),
    };
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    let template = "{spinner} {elapsed_precise} [{wide_bar}] {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    let mut previous = live.snapshot();
    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if live.is_finished() {
            break;
        }
        let now = live.snapshot();
        let second = now.since(&previous);
        bar.set_position(if by_time {
            u64::try_from(now.duration.as_millis()).unwrap_or(u64::MAX)
        } else {
            now.requests
        });
        bar.set_message(status_line(&now, &second));
        previous = now;
    }
    bar.finish_and_clear();
}

/// One plain line a second, for logs and pipes.
async fn lines(live: LiveStats) {
    let mut previous = live.snapshot();
    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if live.is_finished() {
            break;
        }
        let now = live.snapshot();
        let second = now.since(&previous);
        eprintln!(
            "sluice-load: {:>5.1}s {}",
            now.duration.as_secs_f64(),
            status_line(&now, &second)
        );
        previous = now;
    }
}

/// `N requests  R req/s  E errors  p99 X`: totals, with rate and p99 over the last interval.
fn status_line(total: &Report, last: &Report) -> String {
    let mut line = format!(
        "{} requests  {:.0} req/s  {} errors",
        total.requests,
        last.rate(),
        total.error_count()
    );
    if !last.latency.is_empty() {
        let _ = write!(line, "  p99 {}", micros(last.latency_summary().p99));
    }
    if let Some(late) = total.late_sends.filter(|late| *late > 0) {
        let _ = write!(line, "  {late} late");
    }
    line
}

/// The run described in one line.
fn describe(spec: &LoadSpec) -> String {
    let protocol = match spec.protocol {
        Protocol::Http1 => "HTTP/1.1",
        Protocol::H2 => "h2c",
    };
    let mode = match spec.mode {
        Mode::Closed => "closed loop".to_owned(),
        Mode::Open { rate } => format!("open loop at {rate} req/s"),
    };
    format!(
        "{} {} · {protocol} · {mode} · {} connections",
        spec.method, spec.target, spec.connections
    )
}

/// The summary printed at the end without `--json`.
pub(crate) fn summary(spec: &LoadSpec, report: &Report) -> String {
    let latency = report.latency_summary();
    let mut text = String::new();
    let _ = writeln!(text, "{}", describe(spec));
    let _ = writeln!(
        text,
        "  requests    {} in {:.2} s = {:.1} req/s ({} responses, {} errors)",
        report.requests,
        report.duration.as_secs_f64(),
        report.rate(),
        report.responses(),
        report.error_count()
    );
    let _ = writeln!(
        text,
        "  latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
        micros(latency.p50),
        micros(latency.p90),
        micros(latency.p99),
        micros(latency.p999),
        micros(latency.max),
        micros(latency.mean.round() as u64)
    );
    if let Mode::Open { .. } = spec.mode {
        let _ = writeln!(
            text,
            "              (open loop: measured from each request's intended send time)"
        );
    }
    let statuses = counts(report.statuses.iter().map(|(code, n)| (code.to_string(), *n)), None);
    let _ = writeln!(text, "  statuses    {}", or_none(statuses));
    let errors = counts(report.errors.iter().map(|(kind, n)| (kind.to_string(), *n)), None);
    let _ = writeln!(text, "  errors      {}", or_none(errors));
    if let Some(name) = &spec.tally_header {
        let tally = counts(
            report.tally.iter().map(|(value, n)| (value.clone(), *n)),
            Some(report.responses()),
        );
        let _ = writeln!(text, "  {:<11} {}", name.as_str(), or_none(tally));
    }
    if let Some(late) = report.late_sends {
        let _ = writeln!(
            text,
            "  late sends  {late} (every connection was busy at the intended time; raise --connections to avoid)"
        );
    }
    text
}

/// `key: n` pairs, with the share of `whole` when given.
fn counts(pairs: impl Iterator<Item = (String, u64)>, whole: Option<u64>) -> String {
    let mut text = String::new();
    for (key, n) in pairs {
        if !text.is_empty() {
            text.push_str("  ");
        }
        let _ = write!(text, "{key}: {n}");
        if let Some(whole) = whole.filter(|whole| *whole > 0) {
            let _ = write!(text, " ({:.1} %)", n as f64 * 100.0 / whole as f64);
        }
    }
    text
}

/// `text`, or `none` when empty.
fn or_none(text: String) -> String {
    if text.is_empty() { "none".to_owned() } else { text }
}

/// Microseconds in the most readable unit.
fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1_000.0)
    } else {
        format!("{:.3} s", us as f64 / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(20_410), "20.41 ms");
        assert_eq!(micros(1_234_000), "1.234 s");
    }
}
