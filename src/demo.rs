//! `sluice demo`: embedded blue and canary upstreams behind sluice with a 90/10 split, no files needed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sluice_config::Config;
use sluice_proxy::Proxy;
use tokio::net::TcpListener;

/// Options of `sluice demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Address the demo proxy listens on; an ephemeral port is used when this one is taken.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Requests the demo sends through the proxy to show the split.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    requests: u32,
    /// Exit after showing the split instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
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
    let canary = sluice_loadtest::upstream("canary")
        .spawn()
        .await
        .context("starting the canary upstream")?;
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
        weights = {{ blue = 90, canary = 10 }}
        [timeouts]
        drain = "2s"
        "#,
        blue = blue.addr(),
        canary = canary.addr(),
    );
    let config = Arc::new(Config::from_toml(&text, None).context("the demo's embedded config")?);
    let proxy = Proxy::from_config((*config).clone()).map_err(anyhow::Error::msg)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_proxy::serve(
        vec![listener],
        proxy,
        config.timeouts.idle,
        config.timeouts.drain,
        async move {
            let _ = stop_rx.await;
        },
    ));

    println!("sluice demo: blue on {}, canary on {}", blue.addr(), canary.addr());
    println!("sluice demo: proxy on http://{addr} splitting route `web` 90 % blue / 10 % canary");
    let tally = send(addr, args.requests).await?;
    let total: u64 = tally.values().sum();
    println!("sluice demo: sent {total} requests through the proxy; each answer named its version:");
    for (version, count) in &tally {
        println!(
            "  {version:<8} {count:>7}  {:>6.2} %",
            *count as f64 * 100.0 / total as f64
        );
    }
    if !args.exit {
        println!("sluice demo: try `curl -i http://{addr}/` or `curl http://{addr}/echo`; Ctrl-C to stop");
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    blue.shutdown().await;
    canary.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Sends `n` GETs over keep-alive connections and counts the `x-upstream` header of each answer.
async fn send(addr: SocketAddr, n: u32) -> anyhow::Result<BTreeMap<String, u64>> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("http://{addr}/").parse().context("demo URI")?;
    let mut tally = BTreeMap::new();
    for _ in 0..n {
        let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri.clone()))
            .await
            .context("the proxy did not answer within 5 s")?
            .context("request through the proxy")?;
        let version = response
            .headers()
            .get("x-upstream")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| format!("status {}", response.status()), str::to_owned);
        response
            .into_body()
            .collect()
            .await
            .context("reading a demo response")?;
        *tally.entry(version).or_insert(0) += 1;
    }
    Ok(tally)
}
