//! `sluice run --config FILE`: validate, bind, serve, drain on SIGTERM/SIGINT.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sluice_config::Config;
use sluice_proxy::{Drain, Proxy};
use tokio::net::TcpListener;

use crate::EXIT_BAD_CONFIG;

pub(crate) fn run(path: &Path) -> anyhow::Result<ExitCode> {
    // Validate before touching any port: a bad file must not take over a listener.
    let config = match Config::load(path) {
        Ok(config) => Arc::new(config),
        Err(err) => {
            eprintln!("sluice: refusing to start: {err}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
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
    runtime.block_on(serve(config))
}

async fn serve(config: Arc<Config>) -> anyhow::Result<ExitCode> {
    let mut listeners = Vec::with_capacity(config.listen.http.len());
    for addr in &config.listen.http {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding listen.http address {addr}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        // A plain line on stdout so scripts and tests can find an ephemeral port.
        println!("sluice listening on http://{local}");
        listeners.push(listener);
    }
    let proxy = Proxy::from_config((*config).clone()).map_err(anyhow::Error::msg)?;
    let timeouts = config.timeouts.clone();
    tracing::info!(
        routes = config.routes.len(),
        upstreams = config.upstreams.len(),
        "serving"
    );
    let drain = sluice_proxy::serve(listeners, proxy, timeouts.idle, timeouts.drain, shutdown_signal()).await;
    match drain {
        Drain::Complete => tracing::info!("drained; exiting"),
        Drain::TimedOut { open } => {
            tracing::warn!(open, drain = ?timeouts.drain, "drain timeout passed; closing remaining connections");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutting down: no new connections");
}
