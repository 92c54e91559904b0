//! Run one demo upstream by hand, to aim `sluice-load` (or sluice) at:
//!
//! ```text
//! cargo run -p sluice-loadtest --example upstream -- --latency 20ms --stall-after 5s --stall 1s
//! ```
//!
//! Prints its address, then serves until Ctrl-C. With `--stall`, every request arriving in the stall window
//! waits until the window ends.

use std::time::Duration;

use clap::Parser;

/// A demo upstream on 127.0.0.1 (a free port unless the address is taken from the output).
#[derive(Debug, Parser)]
struct Args {
    /// Name sent in x-upstream
    #[arg(long, default_value = "stable")]
    name: String,
    /// Latency added to every answer
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    latency: Duration,
    /// Share of requests answered 500
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Stall this long...
    #[arg(long, value_parser = humantime::parse_duration)]
    stall: Option<Duration>,
    /// ...this long after the first request arrives
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    stall_after: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let up = sluice_loadtest::upstream(args.name)
        .latency(args.latency)
        .fail_rate(args.fail_rate)
        .spawn()
        .await?;
    println!("http://{}/", up.addr());
    if let Some(stall) = args.stall {
        while up.requests() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(args.stall_after).await;
        eprintln!("stalling for {stall:?}");
        up.stall(stall);
    }
    tokio::signal::ctrl_c().await?;
    up.shutdown().await;
    Ok(())
}
