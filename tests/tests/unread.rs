//! Findings that cannot be read: invocations that never have time to read a page (a deadline
//! always past) back off and stop, and a task the account does not know; in both the digest says
//! what was not read and the history keeps every open finding open.

use audit_notification::handler::handle;
use audit_shared::summary::{IngestState, LifecycleState};
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::stack::{Stack, CHECKS};
use system_tests::{admin, sns_event};

/// Every message of the continuation queue, delayed ones included (the emulator's admin API).
async fn queued(stack: &Stack) -> Vec<Value> {
    admin(&stack.url, "GET", "/_emulator/queues/continuation", Value::Null).await["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// One SQS record of `body`, as the event source mapping delivers it.
fn sqs_record(body: &str) -> Value {
    json!({ "Records": [{ "messageId": "m", "receiptHandle": "r", "body": body, "attributes": {},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:continuation", "awsRegion": "us-east-1" }] })
}

#[tokio::test]
async fn invocations_without_time_to_read_back_off_then_stop_and_the_digest_says_what_was_not_read() {
    // Every invocation has 10 s left and keeps a 30 s margin: its deadline is always past.
    let stack = Stack::new(
        &[],
        &[("DEADLINE_MARGIN_MS", "30000"), ("STALL_RETRY_SECS", "7"), ("MAX_STALLED_INVOCATIONS", "4")],
    )
    .await;
    stack.configure(&CHECKS).await;
    stack.schedule_daily("daily").await;
    // A first run applied with time to spare: its findings are open.
    let first = {
        let r = admin(&stack.url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
        let task = r["tasksEnded"][0].as_str().unwrap().to_owned();
        let plenty = handle(&stack.hub, sns_event(&[stack.notification(&task).await]), "req", Duration::from_secs(900));
        plenty.await.unwrap();
        task
    };
    let open_before = system_tests::count_open(&stack.ddb, &stack.table, "daily").await;
    assert!(open_before > 100, "the first run opened its findings: {open_before}");
    let r = admin(&stack.url, "POST", "/_emulator/clock/advance", json!({ "toNextScheduledRun": true })).await;
    let task = r["tasksEnded"][0].as_str().unwrap().to_owned();
    let short = Duration::from_secs(10);
    handle(&stack.hub, sns_event(&[stack.notification(&task).await]), "req", short).await.unwrap();
    // Three continuations, each delayed twice as long as the one before; none re-queued at once.
    for (stalled, delay) in [(1, 7.0), (2, 14.0), (3, 28.0)] {
        let messages = queued(&stack).await;
        assert_eq!(messages.len(), 1, "one continuation after invocation {stalled}: {messages:?}");
        let body = messages[0]["body"].as_str().unwrap().to_owned();
        let c: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((c["taskId"].as_str(), c["stalled"].as_u64()), (Some(task.as_str()), Some(stalled)));
        let visible_in = messages[0]["visibleInSeconds"].as_f64().unwrap();
        assert!(visible_in > delay - 2.0 && visible_in <= delay, "delayed {delay} s, visible in {visible_in}");
        let s = stack.summary(&task).await;
        assert_eq!((s.ingest, s.pages_read), (IngestState::Ingesting, 0), "nothing read yet");
        stack.sqs.purge_queue().queue_url(&stack.queue_url).send().await.unwrap();
        let out = handle(&stack.hub, sqs_record(&body), "req-sqs", short).await.unwrap();
        assert_eq!(out, json!({ "batchItemFailures": [] }));
    }
    // The fourth in a row stops: nothing queued, the run recorded, the digest says why.
    assert!(queued(&stack).await.is_empty(), "no continuation after the limit");
    let s = stack.summary(&task).await;
    assert_eq!(s.ingest, IngestState::Complete);
    assert_eq!(s.lifecycle, LifecycleState::NotTracked, "nothing read, nothing applied");
    let mut non_compliant: Vec<String> =
        s.outline.checks.iter().filter(|c| c.non_compliant > 0).map(|c| c.check_name.to_string()).collect();
    non_compliant.sort();
    assert_eq!(s.unread_checks.keys().cloned().collect::<Vec<_>>(), non_compliant);
    let why = &s.unread_checks[&non_compliant[0]];
    assert!(why.starts_with("no page of findings was read in 4 invocations in a row"), "{why}");
    let digest = stack.digests().await.into_iter().find(|d| d["message"].as_str().unwrap().contains(&task)).unwrap();
    let (subject, body) = (digest["subject"].as_str().unwrap(), digest["message"].as_str().unwrap());
    assert!(subject.starts_with("daily: findings NOT READ"), "{subject}");
    assert!(body.contains("Could not read the findings of these checks") && body.contains(why.as_str()), "{body}");
    assert!(body.contains("Not compared: its findings could not be read"), "{body}");
    // The first run's findings are still open: an unread run resolves nothing.
    assert_eq!(system_tests::count_open(&stack.ddb, &stack.table, "daily").await, open_before);
    assert_ne!(first, task);
}

#[tokio::test]
async fn a_notification_of_a_task_the_account_does_not_know_changes_no_history_and_says_so() {
    let stack = Stack::new(&[], &[]).await;
    stack.configure(&CHECKS).await;
    stack.schedule_daily("daily").await;
    let first = stack.ingest_next_scheduled_run().await;
    let open_before = system_tests::count_open(&stack.ddb, &stack.table, "daily").await;
    // A later run of the same audit, by its notification alone: the account never ran it.
    let mut n: Value = serde_json::from_str(&stack.notification(&first).await).unwrap();
    let unknown = "0123456789abcdef0123456789abcdef";
    n["taskId"] = json!(unknown);
    n["taskStartTime"] = json!(n["taskStartTime"].as_i64().unwrap() + 43_200_000);
    // With a compliant check too: applied, it would resolve that check's open findings.
    n["auditDetails"].as_array_mut().unwrap().push(json!({ "checkName": "LOGGING_DISABLED_CHECK",
        "checkRunStatus": "COMPLETED_COMPLIANT", "nonCompliantResourcesCount": 0, "totalResourcesCount": 1 }));
    n["totalChecksCount"] = json!(n["totalChecksCount"].as_i64().unwrap() + 1);
    n["compliantChecksCount"] = json!(n["compliantChecksCount"].as_i64().unwrap() + 1);
    stack.deliver(&[n.to_string()]).await.unwrap();
    let s = stack.summary(unknown).await;
    assert_eq!(s.lifecycle, LifecycleState::NotTracked);
    assert_eq!(s.unread_checks.len(), CHECKS.len() + 1, "every completed check, the compliant one too: {s:?}");
    assert!(s.unread_checks.values().all(|why| why.contains("the account does not know task")), "{s:?}");
    assert!(s.open_by_severity().values().all(|n| *n == 0), "no count of the history's");
    let digest = stack.digests().await.into_iter().find(|d| d["message"].as_str().unwrap().contains(unknown)).unwrap();
    let subject = digest["subject"].as_str().unwrap();
    assert!(subject.starts_with("daily: findings NOT READ") && !subject.contains(" open"), "{subject}");
    assert_eq!(system_tests::count_open(&stack.ddb, &stack.table, "daily").await, open_before, "nothing resolved");
    // `audit-history runs` lists it, said for what it is.
    let runs = system_tests::audit_history(&stack.table, &["runs", "--audit", "daily"], &[]);
    let line = runs.lines().find(|l| l.contains(unknown)).unwrap_or_else(|| panic!("{runs}"));
    assert!(line.contains("COMPLETED (findings not read)"), "{line}");
    // The next real run compares with the first, not with the unread one.
    let next = stack.ingest_next_scheduled_run().await;
    let digest = stack.digests().await.into_iter().find(|d| d["message"].as_str().unwrap().contains(&next)).unwrap();
    assert!(digest["message"].as_str().unwrap().contains(&format!("Compared with the previous run: task {first}")));
}
