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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

/// The endpoint of the shared DynamoDB Local, started on first use. Set `DYNAMODB_ENDPOINT` to
/// use one already running; otherwise the jar is taken from `DYNAMODB_LOCAL_DIR` or
/// `.tools/dynamodb-local` (installed by `make test`).
pub fn dynamodb_endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| {
            if let Ok(e) = std::env::var("DYNAMODB_ENDPOINT") {
                return e;
            }
            let dir = std::env::var("DYNAMODB_LOCAL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| workspace().join(".tools/dynamodb-local"));
            let jar = dir.join("DynamoDBLocal.jar");
            assert!(
                jar.exists(),
                "DynamoDB Local not found at {} — run `make tools` (part of `make test`)",
                jar.display()
            );
            let port = free_port();
            let (tx, rx) = std::sync::mpsc::channel();
            // A thread that lives as long as the process owns the JVM: PR_SET_PDEATHSIG kills it
            // when that thread (so the test process) ends.
            std::thread::spawn(move || {
                use std::os::unix::process::CommandExt;
                let mut cmd = std::process::Command::new("java");
                cmd.arg(format!("-Djava.library.path={}", dir.join("DynamoDBLocal_lib").display()))
                    .arg("-jar")
                    .arg(&jar)
                    .args(["-inMemory", "-port", &port.to_string(), "-disableTelemetry"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let mut child = cmd.spawn().expect("java starts DynamoDB Local");
                tx.send(()).ok();
                let _ = child.wait();
            });
            rx.recv().expect("DynamoDB Local thread started");
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "DynamoDB Local did not start on port {port} within 60 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            format!("http://127.0.0.1:{port}")
        })
        .clone()
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
    let sdk = sdk(retries).await;
    let ddb = dynamodb_endpoint();
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

/// A unique name for a table or topic of one test.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
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

/// The SNS Lambda event that carries `message` (as the emulator delivers it).
pub fn sns_event(messages: &[String]) -> Value {
    json!({ "Records": messages.iter().enumerate().map(|(i, m)| json!({
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:audit:sub",
        "Sns": {
            "Type": "Notification",
            "MessageId": format!("00000000-0000-0000-0000-{i:012}"),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:audit",
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
