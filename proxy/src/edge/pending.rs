//! An access-log line under construction: filled in as the request goes, written when its response ends.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::Request;
use http::header::{CONTENT_LENGTH, HeaderValue, REFERER, USER_AGENT};

use super::access_log::{AccessLog, Entry};

/// A line waiting for the response to end.
#[derive(Debug)]
pub(crate) struct PendingLog {
    log: AccessLog,
    /// Boxed once here and handed to the writer as is.
    entry: Box<Entry>,
}

impl PendingLog {
    pub(crate) fn new<B>(log: &AccessLog, req: &Request<B>, client_ip: IpAddr, request_id: &HeaderValue) -> PendingLog {
        let headers = req.headers();
        let bytes_in = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        PendingLog {
            log: log.clone(),
            entry: Box::new(Entry {
                time: SystemTime::now(),
                client_ip,
                method: req.method().clone(),
                path: req
                    .uri()
                    .path_and_query()
                    .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
                http_version: req.version(),
                status: 0,
                bytes_in,
                bytes_out: 0,
                duration: Duration::ZERO,
                route: None,
                version: None,
                upstream: None,
                request_id: Some(request_id.clone()),
                retried: false,
                fallback: false,
                user_agent: headers.get(USER_AGENT).cloned(),
                referer: headers.get(REFERER).cloned(),
            }),
        }
    }

    /// Notes which route, version and server took the request.
    pub(crate) fn routed(&mut self, route: &Arc<str>, version: Option<&Arc<str>>, upstream: Option<Arc<str>>) {
        self.entry.route = Some(Arc::clone(route));
        self.entry.version = version.cloned();
        self.entry.upstream = upstream;
    }

    /// Notes that the answer came from a retry and/or the fallback.
    pub(crate) fn rescued(&mut self, retried: bool, fallback: bool) {
        self.entry.retried |= retried;
        self.entry.fallback |= fallback;
    }

    /// Writes the line (never waits: a full log drops and counts it).
    pub(crate) fn finish(mut self, status: u16, bytes_out: u64, duration: Duration) {
        self.entry.status = status;
        self.entry.bytes_out = bytes_out;
        self.entry.duration = duration;
        let PendingLog { log, entry } = self;
        log.log_boxed(entry);
    }
}
