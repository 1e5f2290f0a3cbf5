//! A local AWS IoT Device Defender audit API.
//!
//! Serves the IoT audit operations (configuration, audits, tasks, findings, suppressions, tags)
//! on their real paths and rest-json wire format, backed by a seeded synthetic fleet and a
//! virtual clock, and the SNS, SQS, STS and Organizations calls its users make ([`served`]
//! lists them all); publishes audit notifications to its own SNS and delivers them to a local
//! Lambda. See `README.md` for use and `ARCHITECTURE.md` for the module map.
//!
//! Use in-process (tests, benchmarks) with [`start`]; the binary wraps the same call.

pub mod account;
pub mod admin;
pub mod clock;
pub mod delivery;
pub mod error;
pub mod faults;
pub mod findings;
pub mod fleet;
pub mod messaging;
pub mod operation;
pub mod options;
pub mod organizations;
pub mod pagination;
pub mod scope;
pub mod served;
pub mod server;
pub mod sns;
pub mod sqs;
pub mod state;
pub mod sts;
pub mod suppressions;
pub mod tags;
pub mod tasks;
pub mod tenants;
pub mod wire;

pub use options::Options;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("port {port} on {host} is already in use; stop what holds it or pass --port with another port (0 picks a free one)")]
    PortTaken { host: String, port: u16 },
    #[error("cannot listen on {host}:{port}: {source}")]
    Bind { host: String, port: u16, source: std::io::Error },
    #[error("invalid option: {0}")]
    Options(String),
}

/// A running emulator; dropping it (or calling [`Running::stop`]) stops the server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Shared state, for in-process inspection.
    pub emulator: Arc<server::Emulator>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Binds and starts serving in the background of the current tokio runtime.
pub async fn start(opts: Options) -> Result<Running, StartError> {
    let (host, port) = (opts.host.clone(), opts.port);
    let listener = TcpListener::bind((host.as_str(), port)).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            StartError::PortTaken { host: host.clone(), port }
        } else {
            StartError::Bind { host: host.clone(), port, source }
        }
    })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { host: host.clone(), port, source })?;
    let emulator = server::Emulator::new(opts, format!("http://{addr}")).map_err(StartError::Options)?;
    let app = server::router(emulator.clone());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let ticker_emu = emulator.clone();
    let poll_emu = emulator.clone();
    let task = tokio::spawn(async move {
        // With a running clock, tasks finish and audits fire without anyone calling in.
        let ticker = tokio::spawn(async move {
            if ticker_emu.opts.frozen_clock {
                return;
            }
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                every.tick().await;
                ticker_emu.sync();
            }
        });
        let pollers = tokio::spawn(delivery::poll_queues(poll_emu));
        let served = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stop_rx.await;
        });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "server stopped");
        }
        ticker.abort();
        pollers.abort();
    });
    Ok(Running { addr, emulator, stop: Some(stop_tx), task: Some(task) })
}
