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

/// Starts an on-demand audit of `checks` now, without advancing the clock.
async fn start_on_demand(stack: &Stack, checks: &[&str]) -> String {
    let checks = checks.iter().map(|c| c.to_string()).collect();
    stack.iot.start_on_demand_audit_task().set_target_check_names(Some(checks)).send().await.unwrap().task_id.unwrap()
}

fn keys(rows: &[Value]) -> BTreeSet<(String, String)> {
    rows.iter().map(|r| (r["check"].as_str().unwrap().to_owned(), r["resource"].as_str().unwrap().to_owned())).collect()
}

/// On-demand audits share one stream and each runs its own checks: runs that end (and are
/// delivered) in the opposite order of their starts, or start in the same millisecond, each
/// apply their own checks; a run is late only for a check a run started no earlier applied.
/// `task` answers each task's own findings, as ListAuditFindings does, and says what it lacks.
#[tokio::test]
async fn on_demand_runs_ending_out_of_order_each_keep_their_checks_exactly_once() {
    let stack = Stack::new(
        &["--frozen-clock", "--fail-check", "LOGGING_DISABLED_CHECK"],
        &[("ON_DEMAND_DIGEST", "true"), ("OVERDUE_DAYS", DEADLINES)],
    )
    .await;
    let mut all = CHECKS.to_vec();
    all.push("LOGGING_DISABLED_CHECK");
    stack.configure(&all).await;
    // X (checks 0 and 2), then Y (checks 1 and 2) a second later.
    let x = start_on_demand(&stack, &[CHECKS[0], CHECKS[2]]).await;
    // Early (check 3) is late for its only check once Z1 is applied: it changes nothing.
    let early = start_on_demand(&stack, &[CHECKS[3]]).await;
    stack.advance(1.0).await;
    let y = start_on_demand(&stack, &[CHECKS[1], CHECKS[2]]).await;
    // Same start: two audits of different checks in the same millisecond.
    stack.advance(1.0).await;
    let z1 = start_on_demand(&stack, &[CHECKS[3]]).await;
    let z2 = start_on_demand(&stack, &[CHECKS[1]]).await;
    let failed = start_on_demand(&stack, &["LOGGING_DISABLED_CHECK"]).await;
    stack.advance(10.0).await;
    // Delivered newest first: Y, then X (late for check 2 only), then Z2 and Z1.
    for t in [&y, &x, &z2, &z1, &failed, &early] {
        stack.deliver(&[stack.notification(t).await]).await.unwrap();
    }
    stack.drain().await;
    let start = |s: audit_shared::summary::TaskSummary| s.outline.task_start_time;
    assert_eq!(start(stack.summary(&z1).await), start(stack.summary(&z2).await), "started together");

    let of_check = |set: &BTreeSet<(String, String)>, c: &str| -> BTreeSet<(String, String)> {
        set.iter().filter(|(k, _)| k == c).cloned().collect()
    };
    let (fx, fy) = (stack.emulator_findings(&x).await, stack.emulator_findings(&y).await);
    let (fz1, fz2) = (stack.emulator_findings(&z1).await, stack.emulator_findings(&z2).await);
    for f in [&fx, &fy, &fz1, &fz2] {
        assert!(!f.is_empty(), "every audit has findings");
    }
    // X applied check 0; check 2 was applied first by Y (started later).
    let sx = stack.summary(&x).await;
    assert_eq!(sx.lifecycle, audit_shared::summary::LifecycleState::Applied);
    assert_eq!(sx.late_checks.keys().cloned().collect::<Vec<_>>(), vec![CHECKS[2].to_string()]);
    assert_eq!(sx.late_checks[CHECKS[2]].task_id, y);
    let dx = digest(&stack, &x).await;
    assert!(dx.not_applied.contains_key(CHECKS[2]) && dx.not_compared.is_none(), "{dx:?}");
    assert_eq!(dx.new_count as usize, of_check(&fx, CHECKS[0]).len(), "X's new findings are its check 0's");
    // Z1 and Z2, started together, both applied (different checks); Z2 applied check 1 after Y.
    for t in [&y, &z1, &z2] {
        let s = stack.summary(t).await;
        assert_eq!(s.lifecycle, audit_shared::summary::LifecycleState::Applied, "{t}");
        assert!(s.late_checks.is_empty(), "{t}: {:?}", s.late_checks);
    }
    // The history holds every applied finding exactly once: the stream's open episodes are
    // X's check 0, Y's check 2 and Z1's check 3 as found, and check 1 as Z2 (the latest) found it.
    let open = json_rows(&stack, &["open", "--audit", "~on-demand", "--include-muted"]);
    let open_keys = keys(&open);
    assert_eq!(open.len(), open_keys.len(), "no finding twice");
    let mut expected = of_check(&fx, CHECKS[0]);
    expected.extend(of_check(&fy, CHECKS[2]));
    expected.extend(fz1.iter().cloned());
    expected.extend(fz2.iter().cloned());
    assert_eq!(open_keys, expected);

    // task: exactly what ListAuditFindings returns for the checks the task applied.
    assert_eq!(keys(&json_rows(&stack, &["task", &y])), fy);
    assert_eq!(keys(&json_rows(&stack, &["task", &z1])), fz1);
    assert_eq!(keys(&json_rows(&stack, &["task", &z2])), fz2);
    let out = system_tests::audit_history_output(&stack.table, &["task", &x, "-o", "json"], &[]);
    assert!(out.status.success());
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys(&rows), of_check(&fx, CHECKS[0]), "only the check X applied");
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(note.contains(CHECKS[2]) && note.contains(&y), "says which check is missing and why: {note}");
    // A run late for every check kept nothing: said so, naming the run that applied first.
    let se = stack.summary(&early).await;
    assert_eq!(se.lifecycle, audit_shared::summary::LifecycleState::NotTracked);
    assert!(digest(&stack, &early).await.not_compared.is_some());
    let out = system_tests::audit_history_output(&stack.table, &["task", &early], &[]);
    let why = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && why.contains("not kept") && why.contains(&z1), "{why}");
    // A FAILED task (its one check failed) found nothing: no rows, not another run's findings.
    assert!(stack.emulator_findings(&failed).await.is_empty());
    assert_eq!(json_rows(&stack, &["task", &failed]), Vec::<Value>::new());
}
