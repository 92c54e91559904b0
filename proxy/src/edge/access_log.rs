//! The access log, written off the request path: requests hand an [`Entry`] to a bounded channel with `try_send`
//! and never wait; a writer on a blocking thread formats lines into a buffered writer, flushing whenever the
//! channel is momentarily empty. Lines that do not fit (or cannot be written) are dropped and counted.
//!
//! The writer runs on tokio's blocking pool, so a stalled disk (or a FIFO nobody reads) stalls only the writer.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Version};
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON object per line.
    Json,
    /// nginx's `combined`: `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer"
    /// "$http_user_agent"`, with the time in UTC.
    Combined,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    Stdout,
    /// Opened for append (created if missing) and reopened on [`AccessLog::reopen`].
    File(PathBuf),
}

/// One request, as the access log records it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) time: SystemTime,
    pub(crate) client_ip: IpAddr,
    pub(crate) method: Method,
    /// Path and query as the client sent them.
    pub(crate) path: String,
    pub(crate) http_version: Version,
    pub(crate) status: u16,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) duration: Duration,
    pub(crate) route: Option<Arc<str>>,
    /// The version chosen (blue, green, canary...).
    pub(crate) version: Option<Arc<str>>,
    /// The upstream server that answered.
    pub(crate) upstream: Option<Arc<str>>,
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) retried: bool,
    pub(crate) fallback: bool,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) referer: Option<HeaderValue>,
}

#[derive(Debug)]
enum Msg {
    Entry(Box<Entry>),
    /// Wakes the writer so a pending reopen happens without waiting for traffic.
    Reopen,
}

#[derive(Debug)]
struct Shared {
    /// A Prometheus counter (an atomic underneath), so `/metrics` shows the drops.
    dropped: prometheus::IntCounter,
    reopen: AtomicBool,
}

/// The request path's handle on the access log. Cheap to clone; the writer ends when every clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

impl AccessLog {
    /// Starts the writer (on tokio's blocking pool, so this needs a runtime) with room for `buffer` lines in flight.
    pub(crate) fn start(
        format: Format,
        destination: Destination,
        buffer: usize,
        dropped: prometheus::IntCounter,
    ) -> (AccessLog, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let shared = Arc::new(Shared {
            dropped,
            reopen: AtomicBool::new(false),
        });
        let writer = Writer {
            format,
            destination,
            shared: Arc::clone(&shared),
            out: None,
            failing: false,
        };
        let handle = tokio::task::spawn_blocking(move || writer.run(rx));
        (AccessLog { tx, shared }, handle)
    }

    #[cfg(test)]
    /// Queues a line; never waits. When the channel is full or the writer gone, the line is dropped and counted.
    pub(crate) fn log(&self, entry: Entry) {
        self.log_boxed(Box::new(entry));
    }

    /// Like [`AccessLog::log`] for an entry already on the heap (the request path builds it boxed once).
    pub(crate) fn log_boxed(&self, entry: Box<Entry>) {
        if self.tx.try_send(Msg::Entry(entry)).is_err() {
            self.shared.dropped.inc();
        }
    }

    /// Lines dropped so far: channel full, writer gone, or the destination failing.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.get()
    }

    /// Closes and reopens the file (logrotate's SIGUSR1 convention) before the next line is written.
    pub(crate) fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
        // If the channel is full the writer sees the flag with the next line anyway.
        let _ = self.tx.try_send(Msg::Reopen);
    }
}

/// How long the writer sleeps when it has caught up.
const POLL: std::time::Duration = std::time::Duration::from_millis(10);

struct Writer {
    format: Format,
    destination: Destination,
    shared: Arc<Shared>,
    out: Option<BufWriter<Box<dyn Write + Send>>>,
    /// Whether the last write failed, so a failing disk is reported once, not per line.
    failing: bool,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        self.open();
        let mut line = String::with_capacity(512);
        loop {
            let msg = match rx.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Empty) => {
                    // Poll rather than park: a parked receiver makes every `try_send` on the request path wake a
                    // thread (a syscall per request); polling every few milliseconds costs the request path nothing
                    // and turns a burst of lines into one write.
                    self.flush();
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            };
            if self.shared.reopen.swap(false, Ordering::AcqRel) {
                self.flush();
                self.open();
            }
            if let Msg::Entry(entry) = msg {
                line.clear();
                match self.format {
                    Format::Json => json_line(&entry, &mut line),
                    Format::Combined => combined_line(&entry, &mut line),
                }
                self.write(line.as_bytes());
            }
        }
        self.flush();
    }

    fn open(&mut self) {
        self.out = None;
        let sink: Box<dyn Write + Send> = match &self.destination {
            Destination::Stdout => Box::new(io::stdout()),
            Destination::File(path) => match OpenOptions::new().create(true).append(true).open(path) {
                Ok(file) => Box::new(file),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot open the access log; dropping lines");
                    return;
                }
            },
        };
        self.out = Some(BufWriter::with_capacity(64 * 1024, sink));
    }

    fn write(&mut self, line: &[u8]) {
        let Some(out) = &mut self.out else {
            self.shared.dropped.inc();
            return;
        };
        match out.write_all(line) {
            Ok(()) => self.failing = false,
            Err(error) => {
                self.shared.dropped.inc();
                if !self.failing {
                    tracing::warn!(%error, "cannot write the access log; dropping lines");
                    self.failing = true;
                }
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.out
            && let Err(error) = out.flush()
            && !self.failing
        {
            tracing::warn!(%error, "cannot flush the access log");
            self.failing = true;
        }
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// `{"time":"2000-10-10T13:55:36.123Z","client_ip":...}` and a newline.
fn json_line(e: &Entry, out: &mut String) {
    let (date, (h, m, s), millis) = civil(e.time);
    let _ = write!(
        out,
        r#"{{"time":"{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z","client_ip":"{}","method":"#,
        date.0, date.1, date.2, e.client_ip
    );
    json_str(out, e.method.as_str());
    out.push_str(r#","path":"#);
    json_str(out, &e.path);
    let _ = write!(
        out,
        r#","protocol":"{}","status":{},"bytes_in":{},"bytes_out":{},"duration_ms":{:.3},"route":"#,
        protocol(e.http_version),
        e.status,
        e.bytes_in,
        e.bytes_out,
        e.duration.as_secs_f64() * 1000.0
    );
    json_opt(out, e.route.as_deref());
    out.push_str(r#","version":"#);
    json_opt(out, e.version.as_deref());
    out.push_str(r#","upstream":"#);
    json_opt(out, e.upstream.as_deref());
    out.push_str(r#","request_id":"#);
    json_header(out, e.request_id.as_ref());
    let _ = write!(
        out,
        r#","retried":{},"fallback":{},"user_agent":"#,
        e.retried, e.fallback
    );
    json_header(out, e.user_agent.as_ref());
    out.push_str(r#","referer":"#);
    json_header(out, e.referer.as_ref());
    out.push_str("}\n");
}

fn json_str(out: &mut String, s: &str) {
    // serde_json's escaping of a &str into a String cannot fail.
    out.push_str(&serde_json::to_string(s).expect("a string always serializes"));
}

fn json_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
}

fn json_header(out: &mut String, value: Option<&HeaderValue>) {
    match value {
        Some(v) => json_str(out, &String::from_utf8_lossy(v.as_bytes())),
        None => out.push_str("null"),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /a?b HTTP/1.1" 200 2326 "-" "curl/8.0"` and a newline.
fn combined_line(e: &Entry, out: &mut String) {
    let ((year, month, day), (h, m, s), _) = civil(e.time);
    let _ = write!(
        out,
        "{} - - [{day:02}/{}/{year:04}:{h:02}:{m:02}:{s:02} +0000] \"{} ",
        e.client_ip,
        MONTHS[usize::from(month - 1)],
        e.method
    );
    escape_nginx(out, e.path.as_bytes());
    let _ = write!(out, " {}\" {} {} \"", protocol(e.http_version), e.status, e.bytes_out);
    escape_header(out, e.referer.as_ref());
    out.push_str("\" \"");
    escape_header(out, e.user_agent.as_ref());
    out.push_str("\"\n");
}

fn escape_header(out: &mut String, value: Option<&HeaderValue>) {
    match value {
        Some(v) if !v.is_empty() => escape_nginx(out, v.as_bytes()),
        _ => out.push('-'),
    }
}

/// nginx's default log escaping: `"`, `\`, control characters and bytes above 0x7e become `\xHH`.
fn escape_nginx(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
}

/// UTC `(year, month 1..=12, day)`, `(hour, minute, second)` and milliseconds of `time` (clamped at the epoch).
fn civil(time: SystemTime) -> ((i64, u8, u8), (u64, u64, u64), u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).expect("days since 1970 fit in i64");
    let rem = secs % 86_400;
    // Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u8::try_from(doy - (153 * mp + 2) / 5 + 1).expect("day of month is 1..=31");
    let month = u8::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).expect("month is 1..=12");
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        (year, month, day),
        (rem / 3600, rem / 60 % 60, rem % 60),
        since.subsec_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn entry(path: &str) -> Entry {
        Entry {
            // 10/Oct/2000:13:55:36 UTC, nginx's documentation example.
            time: UNIX_EPOCH + Duration::from_millis(971_186_136_250),
            client_ip: "203.0.113.9".parse().unwrap(),
            method: Method::GET,
            path: path.to_owned(),
            http_version: Version::HTTP_11,
            status: 200,
            bytes_in: 12,
            bytes_out: 2326,
            duration: Duration::from_micros(1500),
            route: Some("api".into()),
            version: Some("canary".into()),
            upstream: Some("10.0.0.7:8080".into()),
            request_id: Some(HeaderValue::from_static("abc")),
            retried: true,
            fallback: false,
            user_agent: Some(HeaderValue::from_static("curl/8.5.0 \"quoted\"")),
            referer: None,
        }
    }

    async fn wait_for(path: &std::path::Path, lines: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= lines {
                return text;
            }
            assert!(Instant::now() < deadline, "{} has {text:?}", path.display());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(UNIX_EPOCH), ((1970, 1, 1), (0, 0, 0), 0));
        let t = UNIX_EPOCH + Duration::from_millis(971_186_136_250);
        assert_eq!(civil(t), ((2000, 10, 10), (13, 55, 36), 250));
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(
            civil(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            ((2024, 2, 29), (23, 59, 59), 0)
        );
    }

    #[tokio::test]
    async fn json_lines_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let (log, writer) = AccessLog::start(
            Format::Json,
            Destination::File(path.clone()),
            64,
            prometheus::IntCounter::new("dropped", "test").unwrap(),
        );
        log.log(entry("/api/users?x=1"));
        log.log(entry("/b"));
        drop(log);
        writer.await.unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let v = &lines[0];
        assert_eq!(v["time"], "2000-10-10T13:55:36.250Z");
        assert_eq!(v["client_ip"], "203.0.113.9");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/api/users?x=1");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes_in"], 12);
        assert_eq!(v["bytes_out"], 2326);
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["route"], "api");
        assert_eq!(v["version"], "canary");
        assert_eq!(v["upstream"], "10.0.0.7:8080");
        assert_eq!(v["request_id"], "abc");
        assert_eq!(v["retried"], true);
        assert_eq!(v["fallback"], false);
        assert_eq!(v["user_agent"], "curl/8.5.0 \"quoted\"");
        assert_eq!(v["referer"], serde_json::Value::Null);
        assert_eq!(lines[1]["path"], "/b");
    }

    #[tokio::test]
    async fn combined_lines_parse_as_combined_log_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let (log, writer) = AccessLog::start(
            Format::Combined,
            Destination::File(path.clone()),
            64,
            prometheus::IntCounter::new("dropped", "test").unwrap(),
        );
        log.log(entry("/api/users?x=1"));
        let mut with_referer = entry("/a\"c");
        with_referer.referer = Some(HeaderValue::from_static("https://example.com/"));
        with_referer.http_version = Version::HTTP_2;
        with_referer.method = Method::POST;
        log.log(with_referer);
        drop(log);
        writer.await.unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"203.0.113.9 - - [10/Oct/2000:13:55:36 +0000] "GET /api/users?x=1 HTTP/1.1" 200 2326 "-" "curl/8.5.0 \x22quoted\x22""#
        );
        // The usual combined-format pattern (as in GoAccess / Apache log parsers).
        let combined = regex::Regex::new(
            r#"^(\S+) (\S+) (\S+) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$"#,
        )
        .unwrap();
        for line in &lines {
            assert!(combined.is_match(line), "{line}");
        }
        let caps = combined.captures(lines[1]).unwrap();
        assert_eq!(&caps[5], "POST");
        assert_eq!(&caps[6], r"/a\x22c");
        assert_eq!(&caps[7], "HTTP/2.0");
        assert_eq!(&caps[10], "https://example.com/");
    }

    #[tokio::test]
    async fn a_stalled_destination_drops_and_counts_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stalled.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // Opening a FIFO for writing blocks until a reader comes: a stalled disk.
        let (log, writer) = AccessLog::start(
            Format::Json,
            Destination::File(fifo.clone()),
            4,
            prometheus::IntCounter::new("dropped", "test").unwrap(),
        );

        let started = Instant::now();
        for i in 0..1000 {
            log.log(entry(&format!("/{i}")));
        }
        let elapsed = started.elapsed();
        assert_eq!(log.dropped(), 996, "4 lines fit the channel, the rest are dropped");
        assert!(elapsed < Duration::from_millis(200), "log() waited: {elapsed:?}");

        // Unstall: a reader takes what was queued, then the writer ends with the last handle.
        let reader = std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap());
        drop(log);
        writer.await.unwrap();
        let text = reader.join().unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
    }

    #[tokio::test]
    async fn reopen_after_rename_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let rotated = dir.path().join("access.log.1");
        let (log, writer) = AccessLog::start(
            Format::Json,
            Destination::File(path.clone()),
            64,
            prometheus::IntCounter::new("dropped", "test").unwrap(),
        );
        log.log(entry("/before"));
        wait_for(&path, 1).await;

        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        log.log(entry("/after"));
        let fresh = wait_for(&path, 1).await;
        drop(log);
        writer.await.unwrap();

        assert!(fresh.contains("/after") && !fresh.contains("/before"), "{fresh}");
        let old = std::fs::read_to_string(&rotated).unwrap();
        assert!(old.contains("/before") && !old.contains("/after"), "{old}");
    }
}
