//! The `sluice` binary: wires config, proxy and the demo together behind a small CLI.

mod check;
mod ctl;
mod demo;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc's malloc sends most of the proxy's per-request allocations (from many connections at once, freed in
// another order) past its per-thread cache into the shared bins: about 330 instructions per allocation and free
// under load, 10 % of the request path (callgrind). mimalloc's per-thread free lists cost a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a configuration or state file that cannot be used (sysexits.h: EX_USAGE).
const EXIT_BAD_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "A traffic-splitting reverse proxy for blue, green and canary versions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve traffic as the configuration file says.
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Start even if the state file (runtime weights, drained servers) cannot be read, dropping it and using
        /// the config file's weights.
        #[arg(long)]
        discard_state: bool,
    },
    /// Validate a configuration file and print a summary; exit 1 when it is invalid.
    Check {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Drive a running sluice through its admin API.
    Ctl(ctl::CtlArgs),
    /// Start embedded blue and canary upstreams behind sluice with a 90/10 split and show it working.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's live view already shows every controller decision; its info logs would only repeat them between
    // the view's lines. RUST_LOG still wins.
    let default_level = if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run { config, discard_state } => run::run(&config, discard_state),
        Command::Check { file } => return check::check(&file),
        Command::Demo(args) => demo::demo(args),
        Command::Ctl(args) => ctl::ctl(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sluice: {err:#}");
            ExitCode::FAILURE
        }
    }
}
