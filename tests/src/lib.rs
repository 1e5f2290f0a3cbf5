//! Test harness: DynamoDB Local (one JVM per test binary, started on first use, killed with
//! the test process), an in-process emulator per test, and clients wired like the Lambdas are.
#![allow(clippy::missing_panics_doc)]

use aws_config::{BehaviorVersion, Region};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

/// Where cargo puts debug binaries (`$CARGO_TARGET_DIR/debug` or `target/debug`).
pub fn debug_bin(name: &str) -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"))
        .join("debug")
        .join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

/// The endpoint of the shared DynamoDB Local, started on first use. Set `DYNAMODB_ENDPOINT` to
/// use one already running; otherwise the jar is taken from `DYNAMODB_LOCAL_DIR` or
/// `.tools/dynamodb-local` (installed by `make test`).
pub fn dynamodb_endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| match std::env::var("DYNAMODB_ENDPOINT") {
            Ok(e) => e,
            Err(_) => start_dynamodb_local(LOOPBACK, free_port()).unwrap_or_else(|e| panic!("{e}")),
        })
        .clone()
}

/// The loopback address every local listener binds by default.
pub const LOOPBACK: &str = "127.0.0.1";

/// The checks member.yaml enables and its scheduled audit targets (a test keeps them equal).
pub const MEMBER_CHECKS: [&str; 14] = [
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK",
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK",
    "LOGGING_DISABLED_CHECK",
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
];

/// Where the local stacks listen: `BIND_ADDRESS` (e.g. `0.0.0.0` to be reached from other
/// machines), default loopback only.
pub fn bind_address() -> String {
    std::env::var("BIND_ADDRESS").ok().filter(|a| !a.trim().is_empty()).unwrap_or_else(|| LOOPBACK.into())
}

/// The host to reach, from this machine, a listener bound to `host` (the loopback address
/// for a wildcard).
pub fn reachable(host: &str) -> &str {
    match host {
        "0.0.0.0" | "::" | "[::]" => LOOPBACK,
        other => other,
    }
}

/// Starts DynamoDB Local (in memory) listening on `host`:`port` only, and waits until it
/// accepts connections. DynamoDB Local has no option for the address (it listens on every
/// interface), so it is started through `tests/java/LoopbackDynamoDbLocal.java`, which sets its
/// server's address before starting it (Java's source-file mode: needs a JDK, 11+). The JVM is
/// owned by a thread that lives as long as the process: `PR_SET_PDEATHSIG` kills it when the
/// process ends, however it ends.
pub fn start_dynamodb_local(host: &str, port: u16) -> Result<String, String> {
    let dir = std::env::var("DYNAMODB_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".tools/dynamodb-local"));
    let jar = dir.join("DynamoDBLocal.jar");
    if !jar.exists() {
        return Err(format!("DynamoDB Local not found at {} — run `make tools`", jar.display()));
    }
    let reach = reachable(host).to_owned();
    if std::net::TcpStream::connect((reach.as_str(), port)).is_ok() {
        return Err(format!("port {port} is already in use; stop what holds it or choose another port"));
    }
    let launcher = workspace().join("tests/java/LoopbackDynamoDbLocal.java");
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let host = host.to_owned();
    std::thread::spawn(move || {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("java");
        cmd.arg(format!("-Ddynamodb.host={host}"))
            .arg(format!("-Djava.library.path={}", dir.join("DynamoDBLocal_lib").display()))
            .arg("-cp")
            .arg(&jar)
            .arg(&launcher)
            .args(["-inMemory", "-port", &port.to_string(), "-disableTelemetry"])
            // It writes dynamodb-local-metadata.json into its working directory: keep it there.
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                tx.send(Ok(())).ok();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let status = child.wait();
                let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                tx.send(Err(format!("DynamoDB Local exited ({status:?}): {tail}"))).ok();
            }
            Err(e) => {
                tx.send(Err(format!("cannot start java for DynamoDB Local: {e}"))).ok();
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())??;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect((reach.as_str(), port)).is_err() {
        if let Ok(Err(why)) = rx.try_recv() {
            return Err(why);
        }
        if Instant::now() > deadline {
            return Err(format!("DynamoDB Local did not start on port {port} within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(format!("http://{reach}:{port}"))
}

/// Starts a compiled Lambda bootstrap against a Runtime API at `runtime_api`, with the Lambda
/// environment, dummy credentials and `env` on top. It dies with this process (`PDEATHSIG`).
pub fn spawn_bootstrap(
    bin: &std::path::Path,
    runtime_api: std::net::SocketAddr,
    env: &[(&str, String)],
) -> std::process::Child {
    spawn_bootstrap_with(bin, runtime_api, env, std::process::Stdio::null())
}

/// [`spawn_bootstrap`] with the function's stdout (its JSON logs and EMF metrics) sent to `stdout`.
pub fn spawn_bootstrap_with(
    bin: &std::path::Path,
    runtime_api: std::net::SocketAddr,
    env: &[(&str, String)],
    stdout: std::process::Stdio,
) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut cmd = std::process::Command::new(bin);
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("RUST_LOG", "warn")
        .stdout(stdout);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

/// The findings of a task as the table answers them (`prefix`: its member's key prefix, empty
/// for the hub's own): rebuilt from its stream's episodes, as (check, resource key), in table
/// order.
pub async fn run_findings(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    prefix: &str,
    summary: &audit_shared::summary::TaskSummary,
) -> Vec<(String, String)> {
    let store =
        audit_shared::aws::dynamodb::DynamoEpisodeStore::new(ddb.clone(), table.to_owned(), 400, Default::default())
            .for_member(prefix.to_owned());
    let episodes = store.run_findings(summary).await.expect("the table answers");
    episodes.into_iter().map(|e| (e.finding.check_name.to_string(), e.resource_key)).collect()
}

/// How many open episodes (open findings) an audit stream has in the table.
pub async fn count_open(ddb: &aws_sdk_dynamodb::Client, table: &str, stream: &str) -> u64 {
    use audit_shared::aws::dynamodb::episode_store::shard_pk;
    use aws_sdk_dynamodb::types::{AttributeValue, Select};
    let mut total = 0;
    for shard in 0..audit_shared::lifecycle::EPISODE_SHARDS {
        let pages: Vec<_> = ddb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p AND begins_with(sk, :o)")
            .expression_attribute_values(":p", AttributeValue::S(shard_pk(stream, shard)))
            .expression_attribute_values(":o", AttributeValue::S("O#".into()))
            .select(Select::Count)
            .limit(audit_shared::aws::dynamodb::QUERY_PAGE_LIMIT)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("the table answers");
        total += pages.iter().map(|p| p.count as u64).sum::<u64>();
    }
    total
}

/// Runs the `audit-history` binary with `args` against `table` in DynamoDB Local (`env` added);
/// its stdout, after checking it succeeded.
pub fn audit_history(table: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = audit_history_output(table, args, env);
    assert!(out.status.success(), "audit-history {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs the compiled `audit-history` against `table` in DynamoDB Local: its whole output.
pub fn audit_history_output(table: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(debug_bin("audit-history"))
        .args(args)
        .env("TABLE_NAME", table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .envs(env.iter().copied())
        .output()
        .expect("audit-history runs (cargo build --workspace builds it)")
}

/// SDK configuration with dummy credentials, a fixed region, and `retries` attempts (adaptive).
pub async fn sdk(retries: u32) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"))
        .retry_config(
            aws_config::retry::RetryConfig::adaptive()
                .with_max_attempts(retries)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_millis(500)),
        )
        .load()
        .await
}

/// Clients for the emulator (IoT, SNS, SQS) and DynamoDB Local.
pub async fn clients(emulator_url: &str, retries: u32) -> audit_notification::Clients {
    clients_of(emulator_url, &dynamodb_endpoint(), retries).await
}

/// [`clients`] with DynamoDB at `ddb` (a local stack's own DynamoDB Local).
pub async fn clients_of(emulator_url: &str, ddb: &str, retries: u32) -> audit_notification::Clients {
    let sdk = sdk(retries).await;
    audit_notification::Clients {
        iot: aws_sdk_iot::Client::from_conf(
            aws_sdk_iot::config::Builder::from(&sdk).endpoint_url(emulator_url).build(),
        ),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(ddb).build(),
        ),
        sns: aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&sdk).endpoint_url(emulator_url).build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(emulator_url).build(),
        ),
    }
}

/// The messages of the queue at `url` not deleted yet: visible, in flight and delayed (SQS's
/// three approximate counts).
pub async fn messages_waiting(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let counts = [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
        A::ApproximateNumberOfMessagesDelayed,
    ];
    let a = sqs
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(counts.to_vec()))
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    counts.iter().filter_map(|c| a.get(c)?.parse::<usize>().ok()).sum()
}

/// An IoT client of the emulator at `url` acting in `key`'s account (`--access-key`), in `region`.
pub fn iot_as(url: &str, key: &str, region: &str) -> aws_sdk_iot::Client {
    aws_sdk_iot::Client::from_conf(
        aws_sdk_iot::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_iot::config::Credentials::new(key, "secret", None, None, "tests"))
            .endpoint_url(url)
            .build(),
    )
}

/// An SNS client of the emulator at `url` acting in `key`'s account, in `region`.
pub fn sns_as(url: &str, key: &str, region: &str) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_sns::config::Credentials::new(key, "secret", None, None, "tests"))
            .endpoint_url(url)
            .build(),
    )
}

/// A unique name for a table or topic of one test.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

/// The emulator's virtual time (epoch ms).
pub async fn virtual_now(url: &str) -> i64 {
    (admin(url, "GET", "/_emulator/clock", Value::Null).await["now"].as_f64().unwrap_or_default() * 1000.0) as i64
}

/// Admin call to the emulator (`method` GET, POST, PUT or DELETE; JSON in and out).
pub async fn admin(url: &str, method: &str, path: &str, body: Value) -> Value {
    let client = reqwest::Client::new();
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = client.request(m, format!("{url}{path}"));
    if !body.is_null() {
        req = req.json(&body);
    }
    let r = req.send().await.expect("emulator reachable");
    assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// The SNS Lambda event that carries `messages` (as the emulator delivers it), from the
/// default account-region's audit topic.
pub fn sns_event(messages: &[String]) -> Value {
    let topic = "arn:aws:sns:us-east-1:123456789012:audit";
    sns_event_from(&messages.iter().map(|m| (topic.to_owned(), m.clone())).collect::<Vec<_>>())
}

/// The SNS Lambda event of `(topic ARN, message)` records.
pub fn sns_event_from(records: &[(String, String)]) -> Value {
    json!({ "Records": records.iter().enumerate().map(|(i, (topic, m))| json!({
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:audit:sub",
        "Sns": {
            "Type": "Notification",
            "MessageId": format!("00000000-0000-0000-0000-{i:012}"),
            "TopicArn": topic,
            "Subject": null,
            "Message": m,
            "Timestamp": "2026-01-15T00:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://example.com/cert.pem",
            "UnsubscribeUrl": "https://example.com/unsubscribe",
            "MessageAttributes": {}
        }
    })).collect::<Vec<_>>() })
}

/// The SQS Lambda event for messages received from the continuation queue (what the event
/// source mapping sends).
pub fn sqs_event(msgs: &[aws_sdk_sqs::types::Message]) -> Value {
    json!({ "Records": msgs.iter().map(|m| json!({
        "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
        "attributes": {}, "messageAttributes": {}, "md5OfBody": m.md5_of_body,
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:continuation", "awsRegion": "us-east-1"
    })).collect::<Vec<_>>() })
}

pub mod local;
pub mod stack;

/// A minimal Lambda Runtime API (the interface a `bootstrap` polls), to run the real compiled
/// functions as Lambda would: events go in with [`RuntimeApi::invoke`], the function's answer
/// comes back. Records when the function first polled (its init time).
pub mod runtime_api {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::Value;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    use tokio::sync::{mpsc, oneshot};

    type Pending = (String, Value, u64, oneshot::Sender<Result<Value, Value>>);

    struct Inner {
        queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
        waiting: Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>,
        first_poll: Mutex<Option<Instant>>,
    }

    /// The runtime API server.
    pub struct RuntimeApi {
        pub addr: std::net::SocketAddr,
        tx: mpsc::Sender<Pending>,
        inner: Arc<Inner>,
        counter: std::sync::atomic::AtomicU64,
    }

    impl RuntimeApi {
        /// Serves on a free loopback port.
        pub async fn start() -> RuntimeApi {
            let (tx, rx) = mpsc::channel(64);
            let inner = Arc::new(Inner {
                queue: tokio::sync::Mutex::new(rx),
                waiting: Mutex::new(HashMap::new()),
                first_poll: Mutex::new(None),
            });
            let app = axum::Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
                .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .with_state(inner.clone());
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
            RuntimeApi { addr, tx, inner, counter: Default::default() }
        }

        /// When the function first asked for an event.
        pub fn first_poll(&self) -> Option<Instant> {
            *self.inner.first_poll.lock().unwrap()
        }

        /// Waits until the function first polls for an invocation (its init is over); when.
        pub async fn ready(&self) -> Instant {
            loop {
                if let Some(at) = self.first_poll() {
                    return at;
                }
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }
        }

        /// Invokes the function with `event` and a deadline `timeout` from now; returns its
        /// answer, or the error it reported.
        pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Value, Value> {
            let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let id = format!("00000000-0000-4000-8000-{n:012}");
            let deadline = (SystemTime::now() + timeout).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
            let (done_tx, done_rx) = oneshot::channel();
            self.tx.send((id, event, deadline, done_tx)).await.expect("runtime API running");
            done_rx.await.expect("the function answered")
        }
    }

    async fn next(State(inner): State<Arc<Inner>>) -> Response {
        inner.first_poll.lock().unwrap().get_or_insert_with(Instant::now);
        let Some((id, event, deadline, done)) = inner.queue.lock().await.recv().await else {
            return StatusCode::GONE.into_response();
        };
        inner.waiting.lock().unwrap().insert(id.clone(), done);
        let mut h = HeaderMap::new();
        h.insert("Lambda-Runtime-Aws-Request-Id", HeaderValue::from_str(&id).unwrap());
        h.insert("Lambda-Runtime-Deadline-Ms", HeaderValue::from_str(&deadline.to_string()).unwrap());
        h.insert(
            "Lambda-Runtime-Invoked-Function-Arn",
            HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:local"),
        );
        h.insert("Lambda-Runtime-Trace-Id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
        (h, axum::Json(event)).into_response()
    }

    async fn response(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: axum::body::Bytes) -> StatusCode {
        let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(tx) = inner.waiting.lock().unwrap().remove(&id) {
            let _ = tx.send(Ok(v));
        }
        StatusCode::ACCEPTED
    }

    async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: axum::body::Bytes) -> StatusCode {
        let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(tx) = inner.waiting.lock().unwrap().remove(&id) {
            let _ = tx.send(Err(v));
        }
        StatusCode::ACCEPTED
    }

    async fn init_error(body: axum::body::Bytes) -> StatusCode {
        eprintln!("function init error: {}", String::from_utf8_lossy(&body));
        StatusCode::ACCEPTED
    }
}

/// A local HTTP listener standing in for CloudFormation's presigned response URL (and for any
/// endpoint a test wants to watch): records every request body with its method and path.
pub struct Recorder {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>> = Default::default();
        let store = seen.clone();
        let app =
            axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, body: String| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push((method.to_string(), uri.path().to_owned(), body));
                    ""
                }
            });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Recorder { url: format!("http://{addr}"), seen }
    }

    /// Everything received so far: (method, path, body).
    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// config-sync's configuration as its environment in the template would give it.
pub fn sync_config(table: &str, digest_topic: &str, drift_auto_repair: bool) -> config_sync::Config {
    let repair = if drift_auto_repair { "true" } else { "false" };
    let env = audit_shared::settings::from_pairs(&[
        ("TABLE_NAME", table),
        ("DIGEST_TOPIC_ARN", digest_topic),
        ("RETENTION_DAYS", "400"),
        ("DRIFT_AUTO_REPAIR", repair),
    ]);
    config_sync::Config::from_lookup(|k| env.optional(k)).expect("a valid config-sync environment")
}
