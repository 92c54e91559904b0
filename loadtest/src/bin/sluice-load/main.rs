//! `sluice-load`: parse the command line, check the target, run the load with progress on stderr, print the
//! summary or JSON on stdout.

mod cli;
mod output;

use std::process::ExitCode;

use clap::Parser;
use sluice_loadtest::{LiveStats, LoadError, run_with};
use tracing_subscriber::EnvFilter;

use crate::cli::Cli;

/// Exit status for bad arguments or a refused target (EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let spec = match cli.spec() {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("sluice-load: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sluice-load: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    runtime.block_on(async {
        let live = LiveStats::new();
        let progress = (!cli.quiet).then(|| tokio::spawn(output::progress(live.clone(), spec.clone())));
        // Ctrl-C ends the run early; the summary of what was measured is still printed.
        let stopper = live.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stopper.stop();
            }
        });

        let result = run_with(&spec, live).await;
        if let Some(progress) = progress {
            // A run that failed before starting never finishes its clock, so its progress is cut short.
            if result.is_err() {
                progress.abort();
            }
            let _ = progress.await;
        }
        match result {
            Ok(report) => {
                if cli.json {
                    match serde_json::to_string(&report.summary()) {
                        Ok(json) => println!("{json}"),
                        Err(error) => {
                            eprintln!("sluice-load: cannot write JSON: {error}");
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    print!("{}", output::summary(&spec, &report));
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("sluice-load: {error}");
                match error {
                    LoadError::InvalidTarget { .. } | LoadError::Remote { .. } | LoadError::InvalidSpec(_) => {
                        ExitCode::from(EXIT_USAGE)
                    }
                    LoadError::Resolve { .. } | LoadError::Connect { .. } => ExitCode::FAILURE,
                }
            }
        }
    })
}
