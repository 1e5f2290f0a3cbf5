//! `make bench` (organization part): N member account-regions, each its own Device Defender
//! with its own ListAuditFindings quota, each ending an audit at the same moment, ingested at
//! once by one hub (the audit-notification library with its real adapters, in this process:
//! one tokio task per notification, as many concurrent invocations would be) into one
//! DynamoDB Local table. Prints aggregate findings/s against N × the per-member ceiling,
//! whether every member's stored count is exact, and the throttled calls the emulator counted
//! per member (0 means no member's quota was ever exceeded).
//!
//! The per-member quota is scaled down (`BENCH_MEMBER_RATE`, default 0.5 calls/s, i.e. 125
//! findings/s per member; the hub paces at 98% of it) so that N × the ceiling stays under what the single DynamoDB Local
//! of this machine writes (~2,100 findings/s on first runs): at AWS's 10 calls/s, ten members
//! would ask 25,000 findings/s of it. Every call also takes 100 ms more (`--latency-ms`).
//! `BENCH_MEMBERS` (default 10) and `BENCH_MEMBER_DEVICES` (default 40000: ~25,000 findings
//! per member, ~100 pages, so that each check's last, partial page weighs little) size it.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use system_tests::stack::{Stack, CHECKS};
use system_tests::{admin, iot_as};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Member {
    key: String,
    account: String,
    region: &'static str,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let n: usize = env_or("BENCH_MEMBERS", 10);
    let rate: f64 = env_or("BENCH_MEMBER_RATE", 0.5);
    let devices: u32 = env_or("BENCH_MEMBER_DEVICES", 40_000);
    let members: Vec<Member> = (0..n)
        .map(|i| Member {
            key: format!("MEMBER{i}"),
            account: format!("{:012}", 210_000_000_000u64 + i as u64),
            region: if i % 2 == 0 { "us-east-1" } else { "eu-west-1" },
        })
        .collect();
    let mut args: Vec<String> = vec![
        "--rate-limits".into(),
        "--rate-limit".into(),
        format!("ListAuditFindings={rate}"),
        "--latency-ms".into(),
        "100".into(),
        "--fleet-devices".into(),
        devices.to_string(),
    ];
    for m in &members {
        args.extend(["--access-key".into(), format!("{}={}", m.key, m.account)]);
        args.extend(["--role".into(), format!("arn:aws:iam::{}:role/hub-{}=123456789012", m.account, m.region)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The hub paces each member at 98% of its quota: at a scaled-down quota the emulator's bucket
    // holds one call, so a call arriving a few ms early would be throttled (AWS's 10/s bucket
    // holds ten).
    let rate_s = (rate * 0.98).to_string();
    let stack = Arc::new(
        Stack::new(&args, &[("MEMBER_ROLE_NAME", "hub"), ("FINDINGS_RATE_LIMIT", &rate_s), ("LEASE_MS", "60000")])
            .await,
    );

    // Every member: its audit configuration, one on-demand audit of the four checks.
    let mut tasks = Vec::new();
    for m in &members {
        let iot = iot_as(&stack.url, &m.key, m.region);
        let mut req =
            iot.update_account_audit_configuration().role_arn(format!("arn:aws:iam::{}:role/audit", m.account));
        for c in CHECKS {
            req = req.audit_check_configurations(
                c,
                aws_sdk_iot::types::AuditCheckConfiguration::builder().enabled(true).build(),
            );
        }
        req.send().await.expect("configured");
        let ids = CHECKS.iter().map(|c| c.to_string()).collect();
        let task =
            iot.start_on_demand_audit_task().set_target_check_names(Some(ids)).send().await.unwrap().task_id.unwrap();
        tasks.push(task);
    }
    stack.advance(60.0).await;
    let mut records = Vec::new();
    for (m, task) in members.iter().zip(&tasks) {
        let path = format!("/_emulator/notifications/{task}?account={}&region={}", m.account, m.region);
        let message = admin(&stack.url, "GET", &path, Value::Null).await.to_string();
        records.push((format!("arn:aws:sns:{}:{}:audit", m.region, m.account), message));
    }

    // All at once: one invocation per member notification.
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for r in records {
        let stack = stack.clone();
        // As Lambda does for an asynchronous invocation that failed: two retries.
        running.spawn(async move {
            let mut last = Err(String::new());
            for _ in 0..3 {
                last = stack.hub_deliver(std::slice::from_ref(&r)).await;
                if last.is_ok() {
                    break;
                }
            }
            last
        });
    }
    while let Some(r) = running.join_next().await {
        r.expect("task").expect("ingested within Lambda's retries");
    }
    stack.drain().await;
    let secs = started.elapsed().as_secs_f64();

    let (mut stored, mut expected, mut throttled, mut exact) = (0i64, 0i64, 0u64, true);
    for (m, task) in members.iter().zip(&tasks) {
        let key = format!("TASK#{}#{}#{task}", m.account, m.region);
        let item = stack
            .ddb
            .get_item()
            .table_name(&stack.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("SUMMARY".into()))
            .send()
            .await
            .unwrap()
            .item
            .expect("summary stored");
        let s: audit_shared::summary::TaskSummary = serde_dynamo::from_item(item).unwrap();
        let (got, want) = (
            s.progress.values().map(|p| p.stored).sum::<i64>(),
            s.outline.checks.iter().map(|c| c.non_compliant).sum::<i64>(),
        );
        exact &= got == want;
        stored += got;
        expected += want;
        let t = admin(
            &stack.url,
            "GET",
            &format!("/_emulator/throttled?account={}&region={}", m.account, m.region),
            json!(null),
        )
        .await;
        throttled += t["throttled"].as_u64().unwrap_or(0);
    }
    let ceiling = rate * 250.0;
    let rate_got = stored as f64 / secs;
    println!(
        "\n## Organization: {n} member account-regions at once, one hub (quota scaled down, 100 ms added per call)\n"
    );
    println!("| members | per-member ceiling | N × ceiling | findings stored (expected) | time | findings/s | of N × ceiling | throttled | exact |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|");
    println!(
        "| {n} | {ceiling:.0}/s | {:.0}/s | {stored} ({expected}) | {secs:.1} s | {rate_got:.0} | {:.0}% | {throttled} | {} |",
        ceiling * n as f64,
        100.0 * rate_got / (ceiling * n as f64),
        if exact { "yes" } else { "NO" }
    );
}
