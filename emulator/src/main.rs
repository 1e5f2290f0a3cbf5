//! `device-defender-emulator --port N`: serves the IoT, SNS, SQS, STS and Organizations operations and the
//! admin API on 127.0.0.1:N until Ctrl-C or SIGTERM; `--operations` prints the operations.

use clap::Parser;
use device_defender_emulator::{start, Options};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let opts = Options::parse();
    if opts.operations {
        print!("{}", device_defender_emulator::served::markdown());
        return std::process::ExitCode::SUCCESS;
    }
    let filter = EnvFilter::try_from_env("EMULATOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if opts.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let running = match start(opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("device-defender-emulator: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // The first stdout line is the address: scripts and tests read it (useful with --port 0).
    println!("device-defender-emulator listening on {}", running.url());
    wait_for_shutdown().await;
    running.stop().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
