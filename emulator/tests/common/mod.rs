//! Test harness: spawns the emulator binary on a free port and builds SDK clients for it.
#![allow(dead_code)]

use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A spawned `device-defender-emulator` process, killed on drop.
pub struct Emu {
    child: Child,
    pub url: String,
    pub iot: aws_sdk_iot::Client,
    pub http: reqwest::Client,
}

/// 2026-01-15T00:00:00Z, a Thursday: the frozen clock's start unless a test picks another.
pub const START: &str = "2026-01-15T00:00:00Z";

impl Emu {
    /// Starts the emulator with a frozen clock at [`START`] and `args` on top.
    pub fn start(args: &[&str]) -> Emu {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_device-defender-emulator"));
        cmd.args([
            "--port",
            "0",
            "--frozen-clock",
            "--start-time",
            START,
            "--fleet-devices",
            "500",
            "--task-duration-secs",
            "60",
        ]);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("emulator binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("emulator prints its address");
        let url = line.trim().rsplit(' ').next().expect("address on the first line").to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected first line: {line}");
        let iot = aws_sdk_iot::Client::from_conf(
            aws_sdk_iot::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
                .endpoint_url(&url)
                .retry_config(aws_sdk_iot::config::retry::RetryConfig::disabled())
                .build(),
        );
        Emu { child, url, iot, http: reqwest::Client::new() }
    }

    /// An SNS client for the emulator.
    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .region(aws_sdk_sns::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sns::config::Credentials::new("test", "test", None, None, "tests"))
                .endpoint_url(&self.url)
                .build(),
        )
    }

    /// POSTs JSON to an admin endpoint and returns the JSON answer.
    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}/_emulator/{path}", self.url)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "admin {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// GETs an admin endpoint.
    pub async fn admin_get(&self, path: &str) -> Value {
        self.http.get(format!("{}/_emulator/{path}", self.url)).send().await.unwrap().json().await.unwrap()
    }

    /// Advances the virtual clock.
    pub async fn advance(&self, seconds: f64) -> Value {
        self.admin("clock/advance", serde_json::json!({ "seconds": seconds })).await
    }

    /// Enables `checks` with a role (the first configuration).
    pub async fn enable(&self, checks: &[&str]) {
        let mut req = self.iot.update_account_audit_configuration().role_arn("arn:aws:iam::123456789012:role/audit");
        for c in checks {
            req = req.audit_check_configurations(
                *c,
                aws_sdk_iot::types::AuditCheckConfiguration::builder().enabled(true).build(),
            );
        }
        req.send().await.expect("configuration accepted");
    }

    /// Starts an on-demand audit of `checks` and advances the clock until it has ended.
    pub async fn run_audit(&self, checks: &[&str]) -> String {
        let id = self
            .iot
            .start_on_demand_audit_task()
            .set_target_check_names(Some(checks.iter().map(|c| c.to_string()).collect()))
            .send()
            .await
            .expect("audit starts")
            .task_id
            .unwrap();
        self.advance(61.0).await;
        id
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The error code of an SDK error (`None` for non-service errors).
pub fn code<E: aws_sdk_iot::error::ProvideErrorMetadata, R>(e: &aws_sdk_iot::error::SdkError<E, R>) -> Option<String> {
    e.as_service_error().and_then(|s| s.code()).map(str::to_owned)
}

/// The message of an SDK error.
pub fn message<E: aws_sdk_iot::error::ProvideErrorMetadata, R>(e: &aws_sdk_iot::error::SdkError<E, R>) -> String {
    e.as_service_error().and_then(|s| s.message()).unwrap_or_default().to_owned()
}

pub const ALL_DEVICE_CHECKS: [&str; 4] = [
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_AGE_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
];
