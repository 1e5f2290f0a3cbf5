//! What the local stacks (`local-stack`, `local-org`) share: functions behind their own Lambda
//! Runtime APIs with an invoke endpoint in front (the shape `cargo lambda watch` serves), and
//! reading the emulator's SNS outbox.

use crate::admin;
use crate::runtime_api::RuntimeApi;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A port from the environment variable `var`, else `default`.
pub fn port(var: &str, default: u16) -> u16 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Prints a numbered step of a demo.
pub fn step(n: usize, text: &str) {
    println!("\n[{n}] {text}");
}

/// Prints the error and exits 1.
pub fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("local-stack: {msg}");
    std::process::exit(1)
}

/// A function's bootstrap process and its Runtime API.
pub struct Function {
    /// Where the function takes its invocations.
    pub api: RuntimeApi,
    child: std::sync::Mutex<std::process::Child>,
}

impl Function {
    /// Kills the bootstrap.
    pub fn stop(&self) {
        let mut c = self.child.lock().unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Where a function's log lines go.
#[derive(Clone, Debug)]
pub enum Logs {
    /// Printed, prefixed with the function's name, as `cargo lambda watch` shows them.
    Print,
    /// Appended to this file, prefixed the same way (the demo keeps its own output readable).
    File(std::path::PathBuf),
}

/// Starts a function's bootstrap behind its own Runtime API, its log lines (JSON, as in
/// CloudWatch) printed; `FUNCTION_LOG` sets the level (`log_level` when unset).
pub async fn spawn_function(name: &str, env: &[(&str, String)], log_level: &str) -> Function {
    spawn_function_logging(name, env, log_level, Logs::Print).await
}

/// [`spawn_function`], its log lines sent to `logs`.
pub async fn spawn_function_logging(name: &str, env: &[(&str, String)], log_level: &str, logs: Logs) -> Function {
    use std::io::{BufRead, Write};
    let bin = crate::debug_bin(name);
    if !bin.exists() {
        fail(format!("{} is missing: run `cargo build --workspace --bins` (make demo does)", bin.display()));
    }
    let api = RuntimeApi::start().await;
    let mut env = env.to_vec();
    env.push(("RUST_LOG", std::env::var("FUNCTION_LOG").unwrap_or_else(|_| log_level.into())));
    let mut child = crate::spawn_bootstrap_with(&bin, api.addr, &env, std::process::Stdio::piped());
    if let Some(out) = child.stdout.take() {
        let prefix = name.to_owned();
        let mut file = match &logs {
            Logs::Print => None,
            Logs::File(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| fail(format!("cannot write {}: {e}", path.display()))),
            ),
        };
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                match file.as_mut() {
                    Some(f) => {
                        let _ = writeln!(f, "{prefix:>18} | {line}");
                    }
                    None => println!("{prefix:>18} | {line}"),
                }
            }
        });
    }
    Function { api, child: std::sync::Mutex::new(child) }
}

/// The invoke endpoint in front of the functions, listening on `host`:`port`.
pub async fn invoke_gateway(host: &str, port: u16, functions: Arc<HashMap<String, Function>>) -> String {
    use axum::extract::{Path, State};
    let app = axum::Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(
                |State(f): State<Arc<HashMap<String, Function>>>, Path(name): Path<String>, body: String| async move {
                    let Some(function) = f.get(&name) else {
                        return (axum::http::StatusCode::NOT_FOUND, format!("{{\"message\":\"no function {name}\"}}"));
                    };
                    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    match function.api.invoke(event, Duration::from_secs(900)).await {
                        Ok(v) => (axum::http::StatusCode::OK, v.to_string()),
                        Err(e) => (axum::http::StatusCode::OK, e.to_string()),
                    }
                },
            ),
        )
        .with_state(functions);
    let l = tokio::net::TcpListener::bind((host, port))
        .await
        .unwrap_or_else(|e| fail(format!("{host}:{port} (invoke endpoint) cannot be bound: {e}; set INVOKE_PORT")));
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{}:{port}", crate::reachable(host))
}

/// The messages the emulator's SNS published to `topic`.
pub async fn outbox(url: &str, topic: &str) -> Vec<Value> {
    admin(url, "GET", &format!("/_emulator/outbox?topicArn={topic}"), Value::Null).await["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (at most 5 minutes) until `topic` has `n` messages; all of them.
pub async fn wait_for_digests(url: &str, topic: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let m = outbox(url, topic).await;
        if m.len() >= n {
            return m;
        }
        if Instant::now() > deadline {
            fail(format!("no digest {n} after 5 minutes; the emulator's outbox holds {}", m.len()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The emulator's flags both local stacks share: the address and port, the fleet (`devices`,
/// 5% of them non-compliant), 30-second audits, and delivery of SNS and the continuation queue
/// to the functions behind the invoke endpoint on `invoke_port`.
pub fn emulator_args(host: &str, emu_port: u16, devices: &str, invoke_port: u16) -> Vec<String> {
    let invoke_url =
        format!("http://{}:{invoke_port}/2015-03-31/functions/{{function}}/invocations", crate::reachable(host));
    [
        "--host",
        host,
        "--port",
        &emu_port.to_string(),
        "--fleet-devices",
        devices,
        "--noncompliant-share",
        "0.05",
        "--task-duration-secs",
        "30",
        "--lambda-invoke-url",
        &invoke_url,
        "--sqs-lambda",
        "continuation=audit-notification",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
