//! `make bench` (ingest part): the real, release-built `audit-notification` bootstrap, run
//! behind a Lambda Runtime API, ingesting tasks of 10^3, 10^4 and 10^5 findings from the
//! emulator into DynamoDB Local. Prints findings/s, peak RSS of the function process, init
//! time (exec to first runtime poll) and the stripped binary size, in two modes:
//! - `unlimited`: no rate limit anywhere;
//! - `aws-quota`: the emulator enforces AWS's rate limits and adds 100 ms to every call; the
//!   function paces itself at 10 ListAuditFindings/s. Ceiling: 10 pages/s × 250 = 2,500 findings/s.
//!
//! The task's findings are spread over four device-certificate checks (read in parallel).
//! Set `AUDIT_NOTIFICATION_BIN` to the binary (default: target/release/audit-notification),
//! `BENCH_SIZES` (default `1000,10000,100000`) and `BENCH_MODES` (default `unlimited,aws-quota`)
//! to run a part, `DYNAMODB_ENDPOINT` to use a DynamoDB Local already running.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use system_tests::runtime_api::RuntimeApi;
use system_tests::{
    admin, clients, count_findings, dynamodb_endpoint, sns_event, spawn_bootstrap_with, unique, workspace,
};

const CHECKS: [&str; 4] = [
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_AGE_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
];

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Row {
    mode: &'static str,
    findings: u64,
    secs: f64,
    ingest_secs: f64,
    rss_mb: f64,
    init_ms: f64,
    stored: u64,
    error: Option<String>,
}

async fn run(bin: &str, mode: &'static str, findings: u32) -> Row {
    let devices = (findings / 4).to_string();
    let mut args =
        vec!["--fleet-devices", devices.as_str(), "--noncompliant-share", "1.0", "--task-duration-secs", "1"];
    if mode == "aws-quota" {
        args.extend(["--rate-limits", "--latency-ms", "100"]);
    }
    let emu =
        device_defender_emulator::start(device_defender_emulator::Options::from_args(&args).unwrap()).await.unwrap();
    let url = emu.url();
    let c = clients(&url, 3).await;
    let table = unique("bench");
    audit_shared::aws::dynamodb::create_table(&c.dynamodb, &table).await.unwrap();
    let digest = c.sns.create_topic().name("digest").send().await.unwrap().topic_arn.unwrap();
    let queue = c.sqs.create_queue().queue_name("continuation").send().await.unwrap().queue_url.unwrap();
    let cfg: serde_json::Map<String, Value> =
        CHECKS.iter().map(|c| (c.to_string(), json!({ "enabled": true }))).collect();
    let update = c
        .iot
        .update_account_audit_configuration()
        .role_arn("arn:aws:iam::123456789012:role/audit")
        .set_audit_check_configurations(Some(
            cfg.keys()
                .map(|k| (k.clone(), aws_sdk_iot::types::AuditCheckConfiguration::builder().enabled(true).build()))
                .collect(),
        ));
    // The configuration calls are rate limited too in aws-quota mode: retry them.
    for _ in 0..20 {
        if update.clone().send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut task = None;
    for _ in 0..20 {
        if let Ok(t) = c
            .iot
            .start_on_demand_audit_task()
            .set_target_check_names(Some(CHECKS.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
        {
            task = t.task_id;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let task = task.expect("audit started");
    admin(&url, "POST", "/_emulator/clock/advance", json!({ "seconds": 5 })).await;
    let message = admin(&url, "GET", &format!("/_emulator/notifications/{task}"), Value::Null).await.to_string();

    let api = RuntimeApi::start().await;
    let rate = if mode == "aws-quota" { "10" } else { "100000" };
    let spawned = Instant::now();
    let env = [
        ("AWS_ENDPOINT_URL_IOT", url.clone()),
        ("AWS_ENDPOINT_URL_SNS", url.clone()),
        ("AWS_ENDPOINT_URL_SQS", url.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint()),
        ("TABLE_NAME", table.clone()),
        ("DIGEST_TOPIC_ARN", digest.clone()),
        ("CONTINUATION_QUEUE_URL", queue.clone()),
        ("FINDINGS_RATE_LIMIT", rate.to_owned()),
    ];
    let mut child = spawn_bootstrap_with(std::path::Path::new(bin), api.addr, &env, std::process::Stdio::piped());
    let stdout = child.stdout.take().expect("piped stdout");
    // The function's EMF line carries IngestDuration: reading + storing, without the digest.
    let emf = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .filter_map(|v| v.get("IngestDuration").and_then(Value::as_f64))
            .sum::<f64>()
    });
    let pid = child.id();
    while api.first_poll().is_none() {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let init_ms = api.first_poll().unwrap().duration_since(spawned).as_secs_f64() * 1000.0;
    let start = Instant::now();
    let out = api.invoke(sns_event(&[message]), Duration::from_secs(900)).await;
    let secs = start.elapsed().as_secs_f64();
    let rss_mb = status_kb(pid, "VmHWM:") as f64 / 1024.0;
    let _ = child.kill();
    let _ = child.wait();
    let ingest_secs = emf.join().unwrap_or(0.0) / 1000.0;
    let count = count_findings(&c.dynamodb, &table, &task).await;
    Row {
        mode,
        findings: findings as u64,
        secs,
        ingest_secs,
        rss_mb,
        init_ms,
        stored: count,
        error: out.err().map(|e| e.to_string()),
    }
}

#[tokio::main]
async fn main() {
    let bin = std::env::var("AUDIT_NOTIFICATION_BIN")
        .unwrap_or_else(|_| workspace().join("target/release/audit-notification").display().to_string());
    let size = std::fs::metadata(&bin)
        .unwrap_or_else(|_| {
            panic!("{bin} not found: `cargo build --release -p audit-notification` first (make bench does)")
        })
        .len();
    let sizes: Vec<u32> = std::env::var("BENCH_SIZES")
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|_| vec![1_000, 10_000, 100_000]);
    println!("audit-notification ingest benchmark");
    println!("binary: {bin} ({:.1} MB stripped)", size as f64 / 1_048_576.0);
    println!();
    println!(
        "seconds: the whole invocation (ingest + digest); ingest s: reading and storing only (EMF IngestDuration)"
    );
    println!();
    println!("| mode | findings | seconds | ingest s | findings/s (ingest) | % of 2,500/s | peak RSS MB | init ms | stored | error |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let modes: Vec<&'static str> = match std::env::var("BENCH_MODES") {
        Ok(v) => ["unlimited", "aws-quota"].into_iter().filter(|m| v.split(',').any(|w| w.trim() == *m)).collect(),
        Err(_) => vec!["unlimited", "aws-quota"],
    };
    for mode in modes {
        for &n in &sizes {
            let r = run(&bin, mode, n).await;
            let rate = r.findings as f64 / if r.ingest_secs > 0.0 { r.ingest_secs } else { r.secs };
            let pct = if mode == "aws-quota" { format!("{:.0}%", rate / 2500.0 * 100.0) } else { "-".into() };
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.0} | {} | {:.1} | {:.1} | {} | {} |",
                r.mode,
                r.findings,
                r.secs,
                r.ingest_secs,
                rate,
                pct,
                r.rss_mb,
                r.init_ms,
                r.stored,
                r.error.as_deref().unwrap_or("-")
            );
        }
    }
}
