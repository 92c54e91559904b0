//! Running a [`LoadSpec`]: open the connections, then either let each send back to back (closed loop) or hand
//! requests to idle connections at fixed intended times (open loop), recording into a [`LiveStats`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderName;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::connection::{Connection, RequestTemplate};
use crate::error::{ErrorKind, LoadError};
use crate::live::{Batch, FLUSH_AFTER, FLUSH_EVERY, LiveStats};
use crate::report::Report;
use crate::spec::{LoadSpec, Mode, Protocol, Target, is_local_ip};

/// Closed loop: pause after a failed connect before trying again, so a dead target is not hammered.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// Run `spec` to its end and return what it measured.
pub async fn run(spec: &LoadSpec) -> Result<Report, LoadError> {
    run_with(spec, LiveStats::new()).await
}

/// Run `spec`, recording into `live` as it goes so another task can watch (and [`LiveStats::stop`] it);
/// returns the final report. Fails before sending anything if the spec is invalid, the target is not on this
/// machine (unless allowed), or the first connection cannot be opened; later failures are counted as errors.
pub async fn run_with(spec: &LoadSpec, live: LiveStats) -> Result<Report, LoadError> {
    spec.validate()?;
    let addrs = resolve(&spec.target, spec.allow_remote).await?;
    let template = RequestTemplate::new(spec).map_err(LoadError::InvalidSpec)?;
    let (addr, connections) = open_all(&addrs, spec.protocol, spec.connections).await?;
    let ctx = Arc::new(Context {
        addr,
        protocol: spec.protocol,
        template,
        tally: spec.tally_header.clone(),
        timeout: spec.timeout,
        live: live.clone(),
    });

    let start = Instant::now();
    let end = spec.duration.map(|duration| start + duration);
    let mut lanes = JoinSet::new();
    match spec.mode {
        Mode::Closed => {
            live.start(start, false);
            let issued = Arc::new(AtomicU64::new(0));
            for connection in connections {
                let lane = Lane::new(Arc::clone(&ctx), connection);
                lanes.spawn(closed_loop(lane, end, spec.requests, Arc::clone(&issued)));
            }
        }
        Mode::Open { rate } => {
            live.start(start, true);
            let (idle_tx, idle_rx) = mpsc::channel(connections.len());
            let mut jobs = Vec::with_capacity(connections.len());
            for (id, connection) in connections.into_iter().enumerate() {
                let (job_tx, job_rx) = mpsc::channel(1);
                jobs.push(job_tx);
                let lane = Lane::new(Arc::clone(&ctx), connection);
                // Every connection starts idle; the channel holds one id per connection, so this cannot fail.
                let _ = idle_tx.try_send(id);
                lanes.spawn(open_loop_lane(lane, id, idle_tx.clone(), job_rx));
            }
            drop(idle_tx);
            let schedule = Schedule {
                start,
                end,
                requests: spec.requests,
                rate,
            };
            dispatch(schedule, idle_rx, jobs, &live).await;
        }
    }
    while let Some(joined) = lanes.join_next().await {
        if let Err(error) = joined {
            tracing::warn!(%error, "load connection task failed");
        }
    }
    live.finish(Instant::now());
    Ok(live.snapshot())
}

/// The addresses `target` resolves to, all on this machine unless `allow_remote`.
async fn resolve(target: &Target, allow_remote: bool) -> Result<Vec<SocketAddr>, LoadError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host(), target.port()))
        .await
        .map_err(|source| LoadError::Resolve {
            host: target.host().to_owned(),
            source,
        })?
        .collect();
    if !allow_remote && let Some(remote) = addrs.iter().find(|addr| !is_local_ip(addr.ip())) {
        return Err(LoadError::Remote {
            host: format!("{} ({})", target.host(), remote.ip()),
        });
    }
    if addrs.is_empty() {
        return Err(LoadError::Resolve {
            host: target.host().to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        });
    }
    Ok(addrs)
}

/// Open the first connection on the first address that answers (failing the run if none does), then the
/// other `count - 1` at once on that address. Those that fail are left to their lane to retry, as errors.
async fn open_all(
    addrs: &[SocketAddr],
    protocol: Protocol,
    count: usize,
) -> Result<(SocketAddr, Vec<Option<Connection>>), LoadError> {
    let mut failure = None;
    let mut first = None;
    for &addr in addrs {
        match Connection::open(addr, protocol).await {
            Ok(connection) => {
                first = Some((addr, connection));
                break;
            }
            Err(error) => {
                failure = Some(LoadError::Connect {
                    addr,
                    reason: error.to_string(),
                });
            }
        }
    }
    let Some((addr, connection)) = first else {
        return Err(failure.unwrap_or_else(|| LoadError::InvalidSpec("no address to connect to".into())));
    };

    let mut connections: Vec<Option<Connection>> = Vec::with_capacity(count);
    connections.push(Some(connection));
    connections.resize_with(count, || None);
    let mut opening = JoinSet::new();
    for slot in 1..count {
        opening.spawn(async move { (slot, Connection::open(addr, protocol).await) });
    }
    while let Some(joined) = opening.join_next().await {
        match joined {
            Ok((slot, Ok(connection))) => connections[slot] = Some(connection),
            Ok((slot, Err(error))) => tracing::debug!(%addr, slot, %error, "connection failed; retrying in the run"),
            Err(error) => tracing::warn!(%error, "connect task failed"),
        }
    }
    Ok((addr, connections))
}

/// What every lane shares.
#[derive(Debug)]
struct Context {
    /// Where to connect.
    addr: SocketAddr,
    /// HTTP/1.1 or h2c.
    protocol: Protocol,
    /// The request to send.
    template: RequestTemplate,
    /// Response header to count values of.
    tally: Option<HeaderName>,
    /// Longest wait for one response.
    timeout: Duration,
    /// Where outcomes go.
    live: LiveStats,
}

/// One connection's worth of the run: at most one request in flight.
#[derive(Debug)]
struct Lane {
    /// Shared settings.
    ctx: Arc<Context>,
    /// The open connection; `None` after a failure until the next request reconnects.
    connection: Option<Connection>,
    /// Outcomes not yet flushed.
    batch: Batch,
    /// When the batch was last flushed.
    flushed_at: Instant,
}

/// How one request ended, as far as the lane's loop cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// A response, or an error on an open connection.
    Done,
    /// No connection could be opened.
    ConnectFailed,
}

impl Lane {
    /// A lane starting with `connection`, if it opened.
    fn new(ctx: Arc<Context>, connection: Option<Connection>) -> Self {
        Self {
            ctx,
            connection,
            batch: Batch::default(),
            flushed_at: Instant::now(),
        }
    }

    /// Send one request and record its outcome, with latency counted from `from` (the intended send time in
    /// open loop) or from now.
    async fn request(&mut self, from: Option<Instant>) -> Sent {
        let from = from.unwrap_or_else(Instant::now);
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => match Connection::open(self.ctx.addr, self.ctx.protocol).await {
                Ok(connection) => self.connection.insert(connection),
                Err(error) => {
                    tracing::debug!(addr = %self.ctx.addr, %error, "connect failed");
                    self.batch.error(ErrorKind::Connect);
                    self.flush_if_due();
                    return Sent::ConnectFailed;
                }
            },
        };
        let exchange = connection.exchange(self.ctx.template.build(), self.ctx.tally.as_ref());
        match tokio::time::timeout(self.ctx.timeout, exchange).await {
            Ok(Ok((status, tally))) => {
                let tally = tally.as_ref().map(|value| value.as_bytes());
                self.batch.response(status, from.elapsed(), tally);
            }
            Ok(Err(error)) => {
                tracing::debug!(addr = %self.ctx.addr, %error, "request failed");
                self.batch.error(ErrorKind::of_hyper(&error));
                self.connection = None;
            }
            Err(_elapsed) => {
                self.batch.error(ErrorKind::Timeout);
                self.connection = None;
            }
        }
        self.flush_if_due();
        Sent::Done
    }

    /// Flush the batch if it is full or old.
    fn flush_if_due(&mut self) {
        if self.batch.len() >= FLUSH_EVERY as u64 || self.flushed_at.elapsed() >= FLUSH_AFTER {
            self.flush();
        }
    }

    /// Add the batch to the live report.
    fn flush(&mut self) {
        self.ctx.live.flush(&mut self.batch);
        self.flushed_at = Instant::now();
    }
}

/// Closed loop: send back to back until the deadline, the request budget or a stop.
async fn closed_loop(mut lane: Lane, end: Option<Instant>, requests: Option<u64>, issued: Arc<AtomicU64>) {
    let live = lane.ctx.live.clone();
    loop {
        if live.is_stopped() || end.is_some_and(|end| Instant::now() >= end) {
            break;
        }
        if requests.is_some_and(|max| issued.fetch_add(1, Ordering::Relaxed) >= max) {
            break;
        }
        if lane.request(None).await == Sent::ConnectFailed {
            tokio::select! {
                () = tokio::time::sleep(CONNECT_BACKOFF) => {}
                () = live.stopped() => {}
            }
        }
    }
    lane.flush();
}

/// Open loop, one connection: take the next intended send time, send, say it is idle again, repeat.
async fn open_loop_lane(mut lane: Lane, id: usize, idle: mpsc::Sender<usize>, mut jobs: mpsc::Receiver<Instant>) {
    while let Some(intended) = jobs.recv().await {
        lane.request(Some(intended)).await;
        if idle.send(id).await.is_err() {
            break;
        }
    }
    lane.flush();
}

/// When the open loop sends.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// The first intended send time.
    start: Instant,
    /// No intended send time at or after this.
    end: Option<Instant>,
    /// At most this many sends.
    requests: Option<u64>,
    /// Sends per second.
    rate: f64,
}

impl Schedule {
    /// The intended time of send number `index`, if it is within the bounds.
    fn intended(&self, index: u64) -> Option<Instant> {
        if self.requests.is_some_and(|max| index >= max) {
            return None;
        }
        let at = self.start + Duration::from_secs_f64(index as f64 / self.rate);
        if self.end.is_some_and(|end| at >= end) {
            return None;
        }
        Some(at)
    }
}

/// The open-loop scheduler: at each intended time hand the send to an idle connection; if none is idle, wait
/// for the first that frees up. Its latency still counts from the intended time, so a stall is charged to every
/// request that should have gone out during it (no coordinated omission).
///
/// A send is late when every connection was busy at its intended time: either it had to wait, or it was meant
/// for a moment before the last wait ended and is only going out now, while the schedule catches up.
async fn dispatch(
    schedule: Schedule,
    mut idle: mpsc::Receiver<usize>,
    jobs: Vec<mpsc::Sender<Instant>>,
    live: &LiveStats,
) {
    let mut index = 0;
    let mut last_wait_ended: Option<Instant> = None;
    while let Some(intended) = schedule.intended(index) {
        if intended > Instant::now() {
            tokio::select! {
                () = tokio::time::sleep_until(intended) => {}
                () = live.stopped() => break,
            }
        }
        if live.is_stopped() {
            break;
        }
        let lane = match idle.try_recv() {
            Ok(lane) => {
                if last_wait_ended.is_some_and(|ended| intended < ended) {
                    live.add_late_send();
                }
                lane
            }
            Err(TryRecvError::Empty) => {
                let lane = tokio::select! {
                    lane = idle.recv() => match lane {
                        Some(lane) => lane,
                        None => break,
                    },
                    () = live.stopped() => break,
                };
                live.add_late_send();
                last_wait_ended = Some(Instant::now());
                lane
            }
            Err(TryRecvError::Disconnected) => break,
        };
        // The lane is idle and its queue holds one, so this does not wait.
        if jobs[lane].send(intended).await.is_err() {
            break;
        }
        index += 1;
    }
}
