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

/// `audit-history` with `args` against the stack's table: (exit success, stdout, stderr).
fn attempt(stack: &Stack, args: &[&str]) -> (bool, String, String) {
    let out = system_tests::audit_history_output(&stack.table, args, &[("OVERDUE_DAYS", DEADLINES)]);
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// `open --audit daily-fleet` and `more`.
fn open_cmd<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["open", "--audit", "daily-fleet"];
    args.extend_from_slice(more);
    args
}

/// The one-line error `args` fail with.
fn refused(stack: &Stack, args: &[&str]) -> String {
    let (ok, out, err) = attempt(stack, args);
    assert!(!ok && out.is_empty(), "{args:?} should fail with nothing on stdout: {out}");
    err
}

/// Inputs that name nothing, or nothing that exists, are refused with a reason (exit non-zero),
/// never answered with an empty success; the forms the help and the digests print are accepted.
#[tokio::test]
async fn every_input_gets_an_exact_answer_or_a_reason() {
    let stack = Stack::new(&["--drift-share", "0.3", "--fleet-devices", "300"], &[("OVERDUE_DAYS", DEADLINES)]).await;
    stack.configure(&CHECKS).await;
    stack.schedule_daily("daily-fleet").await;
    let tasks = [stack.ingest_next_scheduled_run().await, stack.ingest_next_scheduled_run().await];
    let with = open_cmd;

    // Ranges, named by the flag.
    for (args, flag) in [
        (with(&["--min-age-days", "106751991168"]), "--min-age-days"),
        (with(&["--min-age-days=-5"]), "--min-age-days"),
        (with(&["--min-age-days", "-5"]), "--min-age-days"),
        (vec!["runs", "--audit", "daily-fleet", "--limit", "0"], "--limit"),
        (vec!["runs", "--audit", "daily-fleet", "--limit", "-1"], "--limit"),
        (vec!["runs", "--audit", "daily-fleet", "--limit", "1001"], "--limit"),
    ] {
        let err = refused(&stack, &args);
        assert!(err.contains(flag) && err.contains("is not in"), "{args:?}: {err}");
    }
    assert_eq!(json_rows(&stack, &["runs", "--audit", "daily-fleet", "--limit", "1"]).len(), 1);
    assert!(json_rows(&stack, &with(&["--min-age-days", "36500"])).is_empty(), "nothing is a hundred years old");

    // Names that are not there.
    let err = refused(&stack, &with(&["--check", "NOT_A_CHECK"]));
    assert!(err.contains("'NOT_A_CHECK' is not an audit check") && err.contains(CHECKS[0]), "{err}");
    let err = refused(&stack, &with(&["--check", "device_certificate_age_check"]));
    assert!(err.contains("did you mean DEVICE_CERTIFICATE_AGE_CHECK"), "{err}");
    // A check the audit does not run is a check: no findings, no error.
    assert!(json_rows(&stack, &with(&["--check", "LOGGING_DISABLED_CHECK"])).is_empty());
    for cmd in ["runs", "open"] {
        let err = refused(&stack, &[cmd, "--audit", "weekly-nope"]);
        assert!(err.contains("no run of audit 'weekly-nope'") && err.contains("daily-fleet"), "{cmd}: {err}");
    }
    let err = refused(&stack, &["stats", "--audit", "weekly-nope", "--since", "2026-01-01"]);
    assert!(err.contains("no run of audit 'weekly-nope'"), "{err}");
    let err = refused(&stack, &["--member", "111122223333:eu-west-1", "runs", "--audit", "daily-fleet"]);
    assert!(
        err.contains("member 111122223333:eu-west-1 is not one") && err.contains("123456789012:us-east-1"),
        "{err}"
    );
    assert!(refused(&stack, &["--member", "1111:eu-west-1", "members"]).contains("not 12 digits"));

    // The hub's own account-region, as `members` prints it, is the unprefixed history.
    let members = json_rows(&stack, &["members"]);
    assert_eq!(members.len(), 1);
    let home = format!("{}:{}", members[0]["account"].as_str().unwrap(), members[0]["region"].as_str().unwrap());
    assert_eq!(members[0]["streams"], json!(["daily-fleet"]), "lists are arrays");
    assert_eq!(
        json_rows(&stack, &["--member", &home, "runs", "--audit", "daily-fleet"]),
        json_rows(&stack, &["runs", "--audit", "daily-fleet"])
    );
    assert!(refused(&stack, &["members", "--at", "2026-01-01T00:00:00Z"]).contains("--at does not apply"));
    // This emulator's clock is in January: judged now, its daily audit is long overdue.
    assert_eq!(members[0]["state"], json!("silent"), "{members:?}");
    let missed = members[0]["missed"][0].as_str().unwrap();
    assert!(missed.starts_with("DAILY audit daily-fleet was due 2026-01-"), "{missed}");
    assert_eq!(members[0]["schedules"], json!(["daily-fleet DAILY"]), "read from the account");

    // Retiring a member: named, with a reason, never the hub's own; once.
    use audit_shared::ports::MemberStore;
    let gone = audit_shared::member::Member::new("444455556666", "eu-west-1").unwrap();
    let store =
        audit_shared::aws::dynamodb::DynamoMemberStore::new(stack.ddb.clone(), stack.table.clone(), Default::default());
    store.note_notification(&gone, "t1", "daily", 1_000, 2_000).await.unwrap();
    assert!(refused(&stack, &["retire", "--reason", "x"]).contains("retire needs --member"));
    assert!(refused(&stack, &["--member", &home, "retire", "--reason", "x"]).contains("the hub's own account-region"));
    assert!(refused(&stack, &["--member", "777788889999:eu-west-1", "retire", "--reason", "x"]).contains("is not one"));
    assert!(refused(&stack, &["--member", &gone.to_string(), "retire", "--reason", " "]).contains("--reason is empty"));
    let retired = json_rows(&stack, &["--member", &gone.to_string(), "retire", "--reason", "decommissioned, SEC-210"]);
    assert_eq!(retired[0]["state"], json!("retired"));
    assert_eq!(retired[0]["retired_why"], json!("retired with audit-history: decommissioned, SEC-210"));
    let (ok, _, err) = attempt(&stack, &["--member", &gone.to_string(), "retire", "--reason", "again"]);
    assert!(ok && err.contains("retired already"), "{err}");
    let again = json_rows(&stack, &["members"]);
    let row = again.iter().find(|r| r["account"] == json!("444455556666")).unwrap();
    assert_eq!(row["retired_why"], json!("retired with audit-history: decommissioned, SEC-210"), "unchanged");
    // Its old daily audit (epoch 1 s) is long overdue, but a retired member is not silent.
    assert_eq!(row["missed"], json!([]));

    // --at: as the history stood then.
    let first_start = stack.summary(&tasks[0]).await.outline.task_start_time;
    let at = iso(first_start);
    let runs = json_rows(&stack, &["runs", "--audit", "daily-fleet", "--at", &at]);
    assert_eq!(runs.iter().map(|r| r["task"].as_str().unwrap()).collect::<Vec<_>>(), [tasks[0].as_str()]);
    assert_eq!(keys(&json_rows(&stack, &with(&["--at", &at]))), stack.emulator_findings(&tasks[0]).await);
    let err = refused(&stack, &["task", &tasks[1], "--at", &at]);
    assert!(err.contains("after --at"), "{err}");
    let stats = json_rows(&stack, &["stats", "--audit", "daily-fleet", "--since", "2026-01-01", "--at", &at]);
    let open_then: u64 = stats.iter().map(|r| r["open_at_end"].as_u64().unwrap()).sum();
    assert_eq!(open_then as usize, stack.emulator_findings(&tasks[0]).await.len(), "the period ends at --at");
    assert_eq!(
        stats.iter().map(|r| r["severity"].as_str().unwrap()).collect::<Vec<_>>(),
        ["CRITICAL", "HIGH", "MEDIUM", "LOW"],
        "every severity, LOW too"
    );
    assert!(stats.iter().all(|r| r.get("fix_median_seconds").is_some() && r.get("fix_median").is_none()));
    let all_stats = json_rows(&stack, &["stats", "--audit", "daily-fleet", "--since", "2026-01-01"]);
    let resolved: Vec<&Value> = all_stats.iter().filter(|r| r["resolved"].as_u64().unwrap() > 0).collect();
    assert!(!resolved.is_empty() && resolved.iter().all(|r| r["fix_p90_seconds"].as_u64().is_some()), "{resolved:?}");
    let err =
        refused(&stack, &["stats", "--audit", "daily-fleet", "--since", "2026-01-02", "--at", "2026-01-01T00:00:00Z"]);
    assert!(err.contains("--until 2026-01-01 is before --since") || err.contains("after"), "{err}");

    // Resources in the forms the help and the digests show.
    let open = json_rows(&stack, &with(&[]));
    assert!(open.iter().all(|r| r["age_seconds"].as_i64().is_some() && r.get("age").is_none()));
    let policy =
        open.iter().find_map(|r| r["resource"].as_str().filter(|k| k.starts_with("policyVersionIdentifier"))).unwrap();
    let (name, version) = {
        let parts: Vec<&str> = policy.split('|').map(|p| p.split_once('=').unwrap().1).collect();
        (parts[0].to_owned(), parts[1].to_owned())
    };
    // Without the age, which grows between two calls.
    let resource_rows = |typed: &str| -> Vec<Value> {
        let mut rows = json_rows(&stack, &["resource", typed, "--include-muted"]);
        rows.iter_mut().for_each(|r| drop(r.as_object_mut().unwrap().remove("age_seconds")));
        rows
    };
    let stored = resource_rows(policy);
    assert!(!stored.is_empty());
    assert_eq!(resource_rows(&format!("policyName={name}|policyVersionId={version}")), stored, "the help's form");
    assert_eq!(resource_rows(&format!("{name} v{version}")), stored, "the digest's label");
    assert!(resource_rows(&format!("policyName={name}"))
        .iter()
        .all(|r| r["resource"].as_str().unwrap().contains(&name)));
    let cert =
        open.iter().find_map(|r| r["resource"].as_str().and_then(|k| k.strip_prefix("deviceCertificateId="))).unwrap();
    let by_key = resource_rows(&format!("deviceCertificateId={cert}"));
    assert_eq!(resource_rows(cert), by_key, "the bare id");
    assert_eq!(resource_rows(&format!("{}…", &cert[..16])), by_key, "the digest's cut id");
    assert_eq!(resource_rows(&cert[..20]), by_key, "a unique prefix");
    let err = refused(&stack, &["resource", "deviceCertificateId=", "--include-muted"]);
    assert!(err.contains("matches") && err.contains("resources") && err.contains("type more"), "{err}");
    assert!(refused(&stack, &["resource", "zzzz-nothing"]).contains("no resource matches 'zzzz-nothing'"));
    assert!(refused(&stack, &["resource", "thing=x"]).contains("unknown resource field 'thing'"));

    // Identifiers stay strings whatever they look like; `| head -1` ends quietly.
    assert!(json_rows(&stack, &["runs", "--audit", "daily-fleet"]).iter().all(|r| r["task"].is_string()));
    let mut child = std::process::Command::new(debug_bin("audit-history"))
        .args(["open", "--audit", "daily-fleet", "-o", "json"])
        .env("TABLE_NAME", &stack.table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint())
        .envs([("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// AWS errors are one line naming what to fix: the table that does not exist, the endpoint
/// that does not answer, the credentials that are missing.
#[tokio::test]
async fn aws_errors_are_one_line_a_person_can_act_on() {
    let _ = dynamodb_endpoint();
    let run = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(debug_bin("audit-history"))
            .args(["runs", "--audit", "a"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.len() < 450, "{err}");
        err
    };
    let keys = [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")];
    let ddb = dynamodb_endpoint();
    let mut missing = keys.to_vec();
    missing.extend([("AWS_ENDPOINT_URL_DYNAMODB", ddb.as_str()), ("TABLE_NAME", "no-such-table")]);
    assert!(run(&missing).contains("table 'no-such-table' does not exist"));
    let mut down = keys.to_vec();
    down.extend([("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9"), ("TABLE_NAME", "t")]);
    assert!(run(&down).contains("cannot reach http://127.0.0.1:9"));
    let no_keys = [("AWS_REGION", "us-east-1"), ("TABLE_NAME", "t"), ("AWS_ENDPOINT_URL_DYNAMODB", ddb.as_str())];
    assert!(run(&no_keys).contains("no AWS credentials"));
    assert!(run(&[("TABLE_NAME", "t"), ("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y")])
        .contains("no AWS region"));
}

/// Muted findings follow one rule everywhere: listed only with `--include-muted`, and what
/// `task` lists then agrees with what `runs` counts for the same run.
#[tokio::test]
async fn muted_findings_follow_one_rule_everywhere() {
    let stack = Stack::new(&["--drift-share", "0", "--fleet-devices", "300"], &[("OVERDUE_DAYS", DEADLINES)]).await;
    stack.configure(&CHECKS).await;
    stack.schedule_daily("daily-fleet").await;
    let first = stack.ingest_next_scheduled_run().await;
    let cert = stack
        .emulator_findings(&first)
        .await
        .into_iter()
        .find_map(|(c, k)| {
            (c == CHECKS[0]).then(|| k.strip_prefix("deviceCertificateId=").map(str::to_owned)).flatten()
        })
        .expect("a certificate finding");
    stack
        .iot
        .create_audit_suppression()
        .check_name(CHECKS[0])
        .resource_identifier(aws_sdk_iot::types::ResourceIdentifier::builder().device_certificate_id(&cert).build())
        .suppress_indefinitely(true)
        .send()
        .await
        .unwrap();
    let second = stack.ingest_next_scheduled_run().await;
    let counted: u64 = {
        let runs = json_rows(&stack, &["runs", "--audit", "daily-fleet", "--limit", "1"]);
        ["CRITICAL", "HIGH", "MEDIUM", "LOW"].iter().map(|s| runs[0][s].as_u64().unwrap()).sum()
    };
    let listed = json_rows(&stack, &["task", &second]);
    let with_muted = json_rows(&stack, &["task", &second, "--include-muted"]);
    assert_eq!(listed.len() as u64, counted, "task and runs agree");
    assert_eq!(with_muted.len(), listed.len() + 1);
    assert!(listed.iter().all(|r| r["muted"] == ""));
    let (_, _, note) = attempt(&stack, &["task", &second]);
    assert!(note.contains("1 muted finding(s) not listed"), "{note}");
    let open = json_rows(&stack, &["open", "--audit", "daily-fleet"]);
    assert_eq!(open.len(), listed.len(), "open (now) is the latest run's");
    let typed = format!("deviceCertificateId={cert}");
    assert!(json_rows(&stack, &["resource", &typed]).iter().all(|r| r["muted"] == ""));
    assert!(json_rows(&stack, &["resource", &typed, "--include-muted"]).iter().any(|r| r["muted"] == "yes"));
}
