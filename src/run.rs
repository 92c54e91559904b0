//! `sluice run --config FILE`: validate, bind, serve; reload on file change, SIGHUP or the admin API; drain on
//! SIGTERM/SIGINT.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sluice_config::{OpenOptions, Store};
use sluice_proxy::tls::{CertificateReloader, Certificates};
use sluice_proxy::{Drain, Listener, Proxy, Table};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::EXIT_BAD_CONFIG;

/// How long file events settle before a reload: editors write in several steps.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(100);

pub(crate) fn run(path: &Path, discard_state: bool) -> anyhow::Result<ExitCode> {
    // Validate the file and the state file before touching any port: a bad file must not take over a listener.
    let store = match Store::<Table>::open(path, &OpenOptions { discard_state }) {
        Ok(store) => Arc::new(store),
        Err(err) => {
            eprintln!("sluice: refusing to start: {err}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    let config = Arc::clone(&store.state().effective);
    // Certificates are checked before any port too: a refused one is a config error like any other.
    let certificates = match &config.tls {
        Some(tls) => match Certificates::load(tls, config.source.as_deref()) {
            Ok(certificates) => Some(Arc::new(certificates)),
            Err(err) => {
                eprintln!("sluice: refusing to start: {err}");
                return Ok(ExitCode::from(EXIT_BAD_CONFIG));
            }
        },
        None => None,
    };
    let workers = config.runtime.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |w| w.get(),
    );
    // One worker needs no work stealing: the current-thread scheduler skips its atomics and cross-thread queues,
    // and every task (client and upstream connections) runs on the thread that `block_on` drives.
    let mut runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    let runtime = runtime.enable_all().build().context("starting the async runtime")?;
    let code = runtime.block_on(serve(store, certificates, path));
    // A writer stuck on a stalled log destination must not keep a drained process from exiting.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}

async fn serve(
    store: Arc<Store<Table>>,
    certificates: Option<Arc<Certificates>>,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let config = Arc::clone(&store.state().effective);
    let mut listeners = Vec::with_capacity(config.listen.http.len() + config.listen.https.len());
    // `https` first: the lines announcing them are printed in this order, and the first `http` one tells scripts
    // and tests that everything is up.
    if let Some(certificates) = &certificates {
        for info in certificates.status().certificates {
            for warning in &info.warnings {
                tracing::warn!(cert = %info.cert.display(), "{warning}");
            }
        }
        let server_config = certificates.server_config();
        for addr in &config.listen.https {
            let tcp = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding listen.https address {addr}"))?;
            listeners.push(("https", Listener::tls(tcp, Arc::clone(&server_config))));
        }
    }
    for addr in &config.listen.http {
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding listen.http address {addr}"))?;
        listeners.push(("http", Listener::plain(tcp)));
    }
    let tls =
        certificates.map(|certificates| CertificateReloader::spawn(Arc::clone(&store), certificates, WATCH_DEBOUNCE));
    let reloader = tls.as_ref().map(|(reloader, _)| reloader.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let controller = sluice_admin::controller::Controller::new(Arc::clone(&store));
    let controller_task = tokio::spawn(Arc::clone(&controller).run(stopped(stop_rx.clone())));
    let admin_task = match &config.admin {
        Some(admin) => {
            let token = match &admin.token_file {
                Some(file) => Some(sluice_admin::load_token(file).context("reading [admin] token_file")?),
                None => None,
            };
            let listener = TcpListener::bind(admin.listen)
                .await
                .with_context(|| format!("binding admin.listen address {}", admin.listen))?;
            let local = listener.local_addr().context("reading the admin address")?;
            println!("sluice admin listening on http://{local}");
            let mut state =
                sluice_admin::AdminState::new(Arc::clone(&store), token).with_controller(Arc::clone(&controller));
            if let Some(reloader) = &reloader {
                state = state.with_tls(reloader.clone());
            }
            let state = Arc::new(state);
            Some(tokio::spawn(sluice_admin::serve(
                listener,
                state,
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };

    let watch_store = Arc::clone(&store);
    let watch_reloader = reloader.clone();
    let _watcher = sluice_config::watch_file(path, WATCH_DEBOUNCE, move || {
        log_reload(&watch_store, "file watcher");
        if let Some(reloader) = &watch_reloader {
            reloader.request("file watcher");
        }
    })
    .map_err(|err| tracing::warn!("{err}; reload with SIGHUP or the admin API instead"))
    .ok();
    // An edit between loading the file and starting the watch would otherwise go unseen until the next one.
    if sluice_config::Config::load(path).ok().as_ref() != Some(&*store.state().file) {
        log_reload(&store, "file watcher");
        if let Some(reloader) = &reloader {
            reloader.request("file watcher");
        }
    }
    let proxy = Proxy::new(Arc::clone(&store));
    let signals = tokio::spawn(signals(Arc::clone(&store), Arc::clone(&proxy), reloader, stop_tx));
    // Plain lines on stdout so scripts and tests can find ephemeral ports; the proxy's come last, once all is up.
    let mut serving = Vec::with_capacity(listeners.len());
    for (scheme, listener) in listeners {
        let local = listener.local_addr().context("reading the bound address")?;
        println!("sluice listening on {scheme}://{local}");
        serving.push(listener);
    }
    let health = tokio::spawn(sluice_proxy::supervise_health(Arc::clone(&store)));

    let timeouts = config.timeouts.clone();
    tracing::info!(
        routes = config.routes.len(),
        upstreams = config.upstreams.len(),
        version = store.state().version,
        "serving"
    );
    let drain = sluice_proxy::serve(serving, proxy, timeouts.idle, timeouts.drain, stopped(stop_rx)).await;
    match drain {
        Drain::Complete => tracing::info!("drained; exiting"),
        Drain::TimedOut { open } => {
            tracing::warn!(open, drain = ?timeouts.drain, "drain timeout passed; closing remaining connections");
        }
    }
    signals.abort();
    health.abort();
    if let Some((_, task)) = tls {
        task.abort();
    }
    let _ = controller_task.await;
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reloads and logs the outcome; the store records it for the state endpoint either way.
fn log_reload(store: &Store<Table>, trigger: &str) {
    match store.reload(trigger) {
        Ok(version) => tracing::info!(trigger, version, "configuration reloaded"),
        Err(err) => tracing::error!(trigger, "configuration rejected, the last good one stays live: {err}"),
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// SIGHUP reloads the config and re-reads the certificates; SIGUSR1 reopens the access log (logrotate); SIGTERM and
/// SIGINT start the drain.
///
/// The handlers are installed when this is called, not when the future first runs: a signal sent right after the
/// "listening" lines (scripts, tests) must not meet the default action, which for SIGHUP ends the process.
fn signals(
    store: Arc<Store<Table>>,
    proxy: Arc<Proxy>,
    reloader: Option<CertificateReloader>,
    stop: watch::Sender<bool>,
) -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let installed = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
    );
    async move {
        let (Ok(term), Ok(int), Ok(hup), Ok(usr1)) = installed else {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            return;
        };
        handle_signals(store, proxy, reloader, stop, [term, int, hup, usr1]).await;
    }
}

async fn handle_signals(
    store: Arc<Store<Table>>,
    proxy: Arc<Proxy>,
    reloader: Option<CertificateReloader>,
    stop: watch::Sender<bool>,
    [mut term, mut int, mut hup, mut usr1]: [tokio::signal::unix::Signal; 4],
) {
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: reopening the access log");
                proxy.reopen_access_log();
                continue;
            }
            _ = hup.recv() => {
                let store = Arc::clone(&store);
                // Reloading reads and fsyncs files: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || log_reload(&store, "SIGHUP")).await;
                if let Some(reloader) = &reloader {
                    // The reload task logs the outcome.
                    let _ = reloader.reload("SIGHUP").await;
                }
                continue;
            }
        };
        tracing::info!(signal = name, "shutting down: no new connections");
        let _ = stop.send(true);
        return;
    }
}
