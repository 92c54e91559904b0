//! `sluice demo`: the whole idea in one command. Embedded blue and canary upstreams, sluice in front with an
//! automatic canary rollout, built-in load, and a live view until the canary is promoted or rolled back.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sluice_admin::controller::{Controller, Input};
use sluice_config::{Config, Phase, Snapshot as _, Store};
use sluice_loadtest::{LiveStats, LoadSpec, Mode, Target};
use sluice_proxy::{Proxy, Table};
use tokio::net::TcpListener;

/// Options of `sluice demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Address the demo proxy listens on; an ephemeral port is used when this one is taken.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Make the canary misbehave so the controller rolls it back: `errors` (8 % of answers are 500s) or
    /// `latency` (150 ms slower).
    #[arg(long, value_name = "KIND", num_args = 0..=1, default_missing_value = "errors")]
    faulty_canary: Option<Fault>,
    /// Seconds per analysis interval (one per rollout step). Each interval needs 100 canary requests at the
    /// first step (10 % of `--rate`), so rate × interval should be at least 1,000.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=60))]
    interval: u64,
    /// Requests per second the built-in load sends (open loop).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(50..=20_000))]
    rate: u32,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Fault {
    Errors,
    Latency,
}

pub(crate) fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(tour(args))
}

async fn tour(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let blue = sluice_loadtest::upstream("blue")
        .spawn()
        .await
        .context("starting the blue upstream")?;
    let mut canary = sluice_loadtest::upstream("canary");
    match args.faulty_canary {
        Some(Fault::Errors) => canary = canary.fail_rate(0.08),
        Some(Fault::Latency) => canary = canary.latency(Duration::from_millis(150)),
        None => {}
    }
    let canary = canary.spawn().await.context("starting the canary upstream")?;
    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(err) => {
            tracing::info!("{} is not available ({err}); using an ephemeral port", args.listen);
            TcpListener::bind((args.listen.ip(), 0))
                .await
                .context("binding the demo listener")?
        }
    };
    let addr = listener.local_addr().context("reading the demo address")?;
    let text = format!(
        r#"
        [listen]
        http = ["{addr}"]
        [upstreams.blue]
        servers = ["{blue}"]
        [upstreams.canary]
        servers = ["{canary}"]
        [[routes]]
        name = "web"
        weights = {{ blue = 100, canary = 0 }}
        [routes.rollout]
        stable = "blue"
        canary = "canary"
        steps = [10, 25, 50, 100]
        interval = "{interval}s"
        failure_threshold = 2
        min_requests = {min_requests}
        progress_deadline = "60s"
        [timeouts]
        drain = "2s"
        "#,
        blue = blue.addr(),
        canary = canary.addr(),
        interval = args.interval,
        // Enough for the judge to show a clean canary is under the 5 % error guard at 99 % confidence (about 90
        // requests); the first step (10 %) must bring that much per interval, see `--rate` and `--interval`.
        min_requests = 100,
    );
    let config = Config::from_toml(&text, None).context("the demo's embedded config")?;
    let store = Arc::new(Store::<Table>::from_config(config).map_err(anyhow::Error::msg)?);
    let proxy = Proxy::new(Arc::clone(&store));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(sluice_proxy::serve(
        vec![listener],
        proxy,
        store.state().effective.timeouts.idle,
        store.state().effective.timeouts.drain,
        stopped(stop_rx.clone()),
    ));
    let controller = Controller::new(Arc::clone(&store));
    let controller_task = tokio::spawn(Arc::clone(&controller).run(stopped(stop_rx)));

    println!(
        "sluice demo: blue on {}, canary on {}{}",
        blue.addr(),
        canary.addr(),
        match args.faulty_canary {
            Some(Fault::Errors) => " (faulty: 8 % errors)",
            Some(Fault::Latency) => " (faulty: +150 ms)",
            None => "",
        }
    );
    println!(
        "sluice demo: proxy on http://{addr}; {} req/s of built-in load; rollout 10 → 25 → 50 → 100 %, one analysis every {} s",
        args.rate, args.interval
    );

    let mut spec = LoadSpec::new(Target::from_addr(addr, "/").context("demo load target")?);
    spec.mode = Mode::Open {
        rate: f64::from(args.rate),
    };
    spec.connections = 64;
    let live = LiveStats::new();
    let load = tokio::spawn({
        let (spec, live) = (spec, live.clone());
        async move { sluice_loadtest::run_with(&spec, live).await }
    });
    // A second of traffic on blue alone, then the rollout starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    controller
        .command(
            "web",
            Input::Start {
                revision: Some("demo".into()),
            },
            "sluice demo",
        )
        .await
        .map_err(anyhow::Error::msg)?;

    let started = Instant::now();
    let mut shown = 0;
    let outcome = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let table = store.load();
        let state = table.state();
        let weights: Vec<String> = state.effective.routes[0]
            .weights
            .iter()
            .map(|w| format!("{} {:>3}", w.upstream, w.weight))
            .collect();
        let mut line = format!(
            "{:>4.0}s  weights {}  |",
            started.elapsed().as_secs_f64(),
            weights.join(" / ")
        );
        for version in ["blue", "canary"] {
            // The last complete second: the current one has only just begun.
            let telemetry = table.telemetry();
            let second = telemetry.now_secs().saturating_sub(1);
            let s = telemetry.stats_at(&table.config().routes[0].name, version, second, Duration::from_secs(1));
            if let Some(s) = s.filter(|s| s.requests > 0) {
                let p99 = s.quantile(0.99).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                let errors = s.error_rate().unwrap_or(0.0) * 100.0;
                line.push_str(&format!(
                    " {version} {:>4} req/s {errors:>5.1} % err p99 {p99:>6.1} ms |",
                    s.requests
                ));
            }
        }
        let (phase, step) = state
            .overrides
            .rollouts
            .get("web")
            .map_or((Phase::Idle, 0), |r| (r.phase, r.step));
        line.push_str(&format!(" {} step {}", phase.as_str(), step + 1));
        println!("{line}");
        let decisions = controller.decisions("web");
        for d in decisions.iter().skip(shown) {
            println!("      controller: {}", d.note);
        }
        shown = decisions.len();
        if matches!(phase, Phase::Succeeded | Phase::Failed) {
            break state.overrides.rollouts.get("web").cloned();
        }
        if started.elapsed() > Duration::from_secs(180) {
            break None;
        }
    };
    live.stop();
    let report = load.await.context("the load task")?.context("the built-in load")?;
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = controller_task.await;
    blue.shutdown().await;
    canary.shutdown().await;

    println!();
    let tally: Vec<String> = report.tally.iter().map(|(v, n)| format!("{v} {n}")).collect();
    println!(
        "sluice demo: {} requests in {:.0} s ({}), {} answered with an error, p99 {:.1} ms as the load generator saw it",
        report.requests,
        started.elapsed().as_secs_f64(),
        tally.join(", "),
        report.error_count()
            + report
                .statuses
                .iter()
                .filter(|(s, _)| **s >= 500)
                .map(|(_, n)| n)
                .sum::<u64>(),
        report.quantile(0.99).as_secs_f64() * 1000.0
    );
    match outcome {
        Some(r) if r.phase == Phase::Succeeded => {
            println!("sluice demo: PROMOTED — {}", r.reason.unwrap_or_default());
        }
        Some(r) => {
            println!("sluice demo: ROLLED BACK — {}", r.reason.unwrap_or_default());
        }
        None => {
            println!("sluice demo: the rollout did not finish within 3 minutes");
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("sluice demo: try `sluice demo --faulty-canary` (errors) or `--faulty-canary latency` to see a rollback");
    Ok(ExitCode::SUCCESS)
}
