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
    /// Findings/s DynamoDB Local accepts for the same findings written alone (see `store_alone`).
    store_rate: f64,
    findings: u64,
    secs: f64,
    ingest_secs: f64,
    throttled: u64,
    rss_mb: f64,
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
    // The function's EMF lines carry IngestDuration (reading + storing, without the digest) and
    // Throttles (attempts answered with ThrottlingException, retried ones included).
    let emf = std::thread::spawn(move || {
        use std::io::BufRead;
        let metric = |v: &Value, name: &str| v.get(name).and_then(Value::as_f64).unwrap_or(0.0);
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .fold((0.0, 0.0), |(ms, throttled), v| {
                (ms + metric(&v, "IngestDuration"), throttled + metric(&v, "Throttles"))
            })
    });
    let pid = child.id();
    api.ready().await;
    let start = Instant::now();
    let out = api.invoke(sns_event(&[message]), Duration::from_secs(900)).await;
    let secs = start.elapsed().as_secs_f64();
    let rss_mb = status_kb(pid, "VmHWM:") as f64 / 1024.0;
    let _ = child.kill();
    let _ = child.wait();
    let (ingest_ms, throttled) = emf.join().unwrap_or_default();
    let count = count_findings(&c.dynamodb, &table, &task).await;
    let store_rate = store_alone(&url, &c, &task).await;
    Row {
        mode,
        store_rate,
        findings: findings as u64,
        secs,
        ingest_secs: ingest_ms / 1000.0,
        throttled: throttled as u64,
        rss_mb,
        stored: count,
        error: out.err().map(|e| e.to_string()),
    }
}

/// Cold starts measured, before anything else runs: on two cores shared with a JVM, a single
/// sample says more about the JVM's garbage collector than about the bootstrap.
const INIT_SAMPLES: usize = 15;

/// One cold start of the bootstrap: exec until it first polls for an invocation, in ms. Init
/// builds the clients but calls nothing, so the endpoints need not answer.
async fn init_once(bin: &str) -> f64 {
    let env = [
        ("AWS_ENDPOINT_URL_IOT", "http://127.0.0.1:9".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9".to_owned()),
        ("TABLE_NAME", "bench".to_owned()),
        ("DIGEST_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:digest".to_owned()),
        ("CONTINUATION_QUEUE_URL", "http://127.0.0.1:9/123456789012/continuation".to_owned()),
    ];
    let api = RuntimeApi::start().await;
    let spawned = Instant::now();
    let mut child = spawn_bootstrap_with(std::path::Path::new(bin), api.addr, &env, std::process::Stdio::null());
    let ms = api.ready().await.duration_since(spawned).as_secs_f64() * 1000.0;
    let _ = child.kill();
    let _ = child.wait();
    ms
}

/// How fast DynamoDB Local stores this task's findings when nothing else limits it: faults and
/// rate limits off, every finding read first, then written into a fresh table through the same
/// adapter with the function's write pattern (one writer per check, a page at a time). On a
/// small machine DynamoDB Local, not the 2,500/s read ceiling, can be the bound of the ingest;
/// this column says which.
async fn store_alone(url: &str, c: &audit_notification::Clients, task: &str) -> f64 {
    use audit_shared::aws::{dynamodb::DynamoTaskStore, iot::IotAuditReader};
    use audit_shared::ports::{AuditReader, TaskStore};
    admin(url, "PUT", "/_emulator/faults", json!({})).await;
    let reader = IotAuditReader::new(c.iot.clone());
    let outline = reader.describe_task(task).await.expect("task described");
    let mut pages_by_check = Vec::new();
    for check in CHECKS {
        let (mut pages, mut token) = (Vec::new(), None);
        loop {
            let page = reader.list_findings(task, check, token).await.expect("findings read");
            token = page.next_token.clone();
            pages.push(page.findings);
            if token.is_none() {
                break;
            }
        }
        pages_by_check.push(pages);
    }
    let n: usize = pages_by_check.iter().flatten().map(Vec::len).sum();
    let table = unique("bench-store");
    audit_shared::aws::dynamodb::create_table(&c.dynamodb, &table).await.unwrap();
    let store = std::sync::Arc::new(DynamoTaskStore::new(c.dynamodb.clone(), table, 400));
    let outline = std::sync::Arc::new(outline);
    let start = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for pages in pages_by_check {
        let (store, outline) = (store.clone(), outline.clone());
        writers.spawn(async move {
            for page in pages {
                store.put_findings(&outline, &page).await.expect("findings stored");
            }
        });
    }
    writers.join_all().await;
    n as f64 / start.elapsed().as_secs_f64()
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
    let mut inits = Vec::new();
    for _ in 0..INIT_SAMPLES {
        inits.push(init_once(&bin).await);
    }
    inits.sort_by(f64::total_cmp);
    println!(
        "init (exec to first runtime poll), {INIT_SAMPLES} cold starts: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        inits[INIT_SAMPLES / 2],
        inits[INIT_SAMPLES * 9 / 10],
        inits[INIT_SAMPLES - 1]
    );
    println!();
    println!(
        "seconds: the whole invocation (ingest + digest); ingest s: reading and storing only (EMF IngestDuration)"
    );
    println!();
    println!("store alone: findings/s DynamoDB Local takes for the same findings written alone (no reading)");
    println!("% of reachable: findings/s over the lower of 2,500/s and store alone");
    println!("throttled attempts: ThrottlingException answers the SDK retried (EMF Throttles); error: what surfaced");
    println!();
    println!("| mode | findings | seconds | ingest s | findings/s (ingest) | % of 2,500/s | store alone /s | % of reachable | peak RSS MB | stored | throttled attempts | error |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let modes: Vec<&'static str> = match std::env::var("BENCH_MODES") {
        Ok(v) => ["unlimited", "aws-quota"].into_iter().filter(|m| v.split(',').any(|w| w.trim() == *m)).collect(),
        Err(_) => vec!["unlimited", "aws-quota"],
    };
    // DynamoDB Local is a JVM: its first ~10^4 writes run interpreted, about 20% slower. AWS's
    // DynamoDB is always warm, so warm it with one ingest that is not reported.
    let warm = run(&bin, "unlimited", 10_000).await;
    eprintln!("(warm-up: one unlimited 10^4 ingest, {:.1} s, not reported)", warm.secs);
    for mode in modes {
        for &n in &sizes {
            let r = run(&bin, mode, n).await;
            let rate = r.findings as f64 / if r.ingest_secs > 0.0 { r.ingest_secs } else { r.secs };
            let (pct, reachable) = if mode == "aws-quota" {
                let pct = |of: f64| format!("{:.0}%", rate / of * 100.0);
                (pct(2500.0), pct(r.store_rate.min(2500.0)))
            } else {
                ("-".into(), format!("{:.0}%", rate / r.store_rate * 100.0))
            };
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.0} | {} | {:.0} | {} | {:.1} | {} | {} | {} |",
                r.mode,
                r.findings,
                r.secs,
                r.ingest_secs,
                rate,
                pct,
                r.store_rate,
                reachable,
                r.rss_mb,
                r.stored,
                r.throttled,
                r.error.as_deref().unwrap_or("-")
            );
        }
    }
}
