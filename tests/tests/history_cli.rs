//! The `audit-history` binary against a table filled by real ingests (emulator + DynamoDB
//! Local): every command's answer checked against the emulator's findings and the digests.

use audit_shared::digest::Digest;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use system_tests::stack::{Stack, CHECKS};
use system_tests::{debug_bin, dynamodb_endpoint};

const DEADLINES: &str = "CRITICAL=2,HIGH=3,MEDIUM=4,LOW=5";

/// Runs `audit-history` with `args` against the stack's table; its stdout.
fn cli(stack: &Stack, args: &[&str]) -> String {
    system_tests::audit_history(&stack.table, args, &[("OVERDUE_DAYS", DEADLINES)])
}

fn json_rows(stack: &Stack, args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str::<Value>(&cli(stack, &all)).unwrap().as_array().cloned().unwrap()
}

async fn digest(stack: &Stack, task: &str) -> Digest {
    let item = stack
        .ddb
        .get_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(format!("TASK#{task}")))
        .key("sk", AttributeValue::S("DIGEST".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("digest stored");
    serde_dynamo::from_item(item).unwrap()
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn every_command_answers_from_the_table() {
    let stack = Stack::new(&["--drift-share", "0.3", "--fleet-devices", "400"], &[("OVERDUE_DAYS", DEADLINES)]).await;
    stack.configure(&CHECKS).await;
    stack.schedule_daily("daily-fleet").await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let task = stack.ingest_next_scheduled_run().await;
        tasks.push(task);
    }
    let last = tasks.last().unwrap();
    let last_start = stack.summary(last).await.outline.task_start_time;
    let d = digest(&stack, last).await;
    let l = d.lifecycle.as_ref().unwrap();

    // runs: newest first, the open counts the digests had.
    let runs = json_rows(&stack, &["runs", "--audit", "daily-fleet"]);
    let listed: Vec<&str> = runs.iter().map(|r| r["task"].as_str().unwrap()).collect();
    assert_eq!(listed, tasks.iter().rev().map(String::as_str).collect::<Vec<_>>());
    let critical_open = d.severities.iter().find(|s| s.severity == "CRITICAL").unwrap().open;
    assert_eq!(runs[0]["CRITICAL"], json!(critical_open));

    // open: the last run's findings; by check; overdue as the digest counted them (same time).
    let expected = stack.emulator_findings(last).await;
    let at = iso(last_start);
    let open = json_rows(&stack, &["open", "--audit", "daily-fleet", "--at", &at]);
    let open_keys: BTreeSet<(String, String)> = open
        .iter()
        .map(|r| (r["check"].as_str().unwrap().to_owned(), r["resource"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(open_keys, expected);
    let check = CHECKS[0];
    let by_check = json_rows(&stack, &["open", "--audit", "daily-fleet", "--check", check, "--at", &at]);
    assert_eq!(by_check.len(), expected.iter().filter(|(c, _)| c == check).count());
    let overdue = json_rows(&stack, &["open", "--audit", "daily-fleet", "--overdue", "--at", &at]);
    assert_eq!(overdue.len() as u64, l.overdue_count);
    assert!(!overdue.is_empty() && overdue.iter().all(|r| r["overdue"] == "yes"));
    let old = json_rows(&stack, &["open", "--audit", "daily-fleet", "--min-age-days", "3", "--at", &at]);
    let buckets: u64 = l.open_by_age.values().map(|b| b[1] + b[2] + b[3]).sum();
    assert!(old.len() as u64 >= buckets, "every finding of 7 days and more is at least 3 days old");
    assert!(open.len() > old.len(), "younger ones are left out");

    // resource: a finding that came back shows its earlier episode and the open one.
    if let Some(back) = l.came_back.first() {
        let rows = json_rows(&stack, &["resource", &back.finding.resource_key]);
        let of_check: Vec<_> = rows.iter().filter(|r| r["check"] == json!(back.finding.check_name)).collect();
        assert!(of_check.len() >= 2, "{rows:?}");
        assert_eq!(of_check.last().unwrap()["resolved"], "open");
    }

    // task: an earlier run's findings, rebuilt from the episodes.
    let third = json_rows(&stack, &["task", &tasks[2]]);
    let third_keys: BTreeSet<(String, String)> = third
        .iter()
        .map(|r| (r["check"].as_str().unwrap().to_owned(), r["resource"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(third_keys, stack.emulator_findings(&tasks[2]).await);

    // stats: over every run, the sums of what the digests reported.
    let (mut opened, mut resolved, mut came_back) = (0, 0, 0);
    for t in &tasks {
        let d = digest(&stack, t).await;
        let back = d.lifecycle.as_ref().map_or(0, |l| l.came_back_count);
        opened += d.new_count + back;
        came_back += back;
        resolved += d.resolved_count;
    }
    let stats =
        json_rows(&stack, &["stats", "--audit", "daily-fleet", "--since", "2026-01-01", "--at", &iso(last_start + 1)]);
    let sum = |k: &str| stats.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("opened"), sum("resolved")), (opened, resolved));
    assert_eq!(sum("came_back"), came_back);
    assert_eq!(sum("open_at_end") as usize, expected.len());

    // Formats: CSV starts with its header, the table ends with its row count.
    assert!(cli(&stack, &["runs", "--audit", "daily-fleet", "-o", "csv"]).starts_with("task,status,started,CRITICAL"));
    assert!(cli(&stack, &["runs", "--audit", "daily-fleet"]).ends_with(&format!("({} rows)\n", tasks.len())));
}

#[tokio::test]
async fn errors_name_what_was_wrong() {
    let stack = Stack::new(&[], &[]).await;
    let run = |args: &[&str]| {
        std::process::Command::new(debug_bin("audit-history"))
            .args(args)
            .env("TABLE_NAME", &stack.table)
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let err = |args: &[&str]| {
        let out = run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(err(&["task", "nope"]).contains("no task nope in the table"));
    assert!(err(&["open", "--audit", "a", "--severity", "URGENT"]).contains("unknown severity 'URGENT'"));
    assert!(
        err(&["stats", "--audit", "a", "--since", "2026-02-01", "--until", "2026-01-01"]).contains("before --since")
    );
    assert!(err(&["open", "--audit", "a", "--overdue-days", "HIGH=0"]).contains("deadline '0' must be"));
    let no_table = std::process::Command::new(debug_bin("audit-history"))
        .args(["runs", "--audit", "a"])
        .env_remove("TABLE_NAME")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&no_table.stderr).contains("pass --table or set TABLE_NAME"));
}
